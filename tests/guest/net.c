/* Socket helpers; see net.h. */
#define _GNU_SOURCE
#include "net.h"
#include "proto.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define NET_RETRY_NS 100000000L     /* 100 ms between connect attempts */

double net_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int net_connect(const char *host, unsigned port, bool ipv6, double timeout_s)
{
    struct sockaddr_storage ss;
    socklen_t sslen;
    double deadline = net_now() + timeout_s;
    int one = 1;

    memset(&ss, 0, sizeof(ss));
    if (ipv6) {
        struct sockaddr_in6 *s6 = (void *)&ss;
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons(port);
        if (inet_pton(AF_INET6, host, &s6->sin6_addr) != 1) {
            return -EINVAL;
        }
        sslen = sizeof(*s6);
    } else {
        struct sockaddr_in *s4 = (void *)&ss;
        s4->sin_family = AF_INET;
        s4->sin_port = htons(port);
        if (inet_pton(AF_INET, host, &s4->sin_addr) != 1) {
            return -EINVAL;
        }
        sslen = sizeof(*s4);
    }

    for (;;) {
        int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
        int err;

        if (fd < 0) {
            return -errno;
        }
        if (connect(fd, (struct sockaddr *)&ss, sslen) == 0) {
            /* Small lock-step messages: do not let Nagle delay them. */
            setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
            return fd;
        }
        err = errno;
        close(fd);
        if (err != ECONNREFUSED && err != EHOSTUNREACH &&
            err != ENETUNREACH && err != ETIMEDOUT && err != EINTR) {
            return -err;
        }
        if (net_now() >= deadline) {
            return -err;
        }
        nanosleep(&(struct timespec){ .tv_nsec = NET_RETRY_NS }, NULL);
    }
}

void net_fill_msg(void *buf, size_t len, size_t reply)
{
    ProtoHdr h = { .len = htonl((uint32_t)len), .reply = htonl((uint32_t)reply) };

    memset(buf, 'a', len);
    memcpy(buf, &h, sizeof(h));
}
