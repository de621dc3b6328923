/* Ground-truth line printing and exact-size socket I/O; see gt.h. */
#define _GNU_SOURCE
#include "gt.h"
#include "proto.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static const char *gt_prog = "?";
static bool gt_enabled = true;

void gt_init(const char *prog, bool enabled)
{
    gt_prog = prog;
    gt_enabled = enabled;
}

pid_t gt_gettid(void)
{
    return (pid_t)syscall(SYS_gettid);
}

/* Write all of @buf to stdout; a short write to a tty is retried. */
static void gt_write(const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = write(STDOUT_FILENO, buf, len);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return;
        }
        buf += n;
        len -= (size_t)n;
    }
}

void gt_printf(const char *fmt, ...)
{
    char line[GT_MAX_LINE];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(line, sizeof(line) - 1, fmt, ap);
    va_end(ap);
    if (n < 0) {
        return;
    }
    if ((size_t)n > sizeof(line) - 2) {
        n = sizeof(line) - 2;
    }
    line[n++] = '\n';
    gt_write(line, (size_t)n);
}

/* Format @sa into @buf/@port; v4-mapped IPv6 is shown as IPv4. */
static void gt_format_addr(const struct sockaddr_storage *sa, char *buf,
                           unsigned *port, bool *ipv6)
{
    if (sa->ss_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const void *)sa;
        *port = ntohs(s6->sin6_port);
        if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr)) {
            inet_ntop(AF_INET, &s6->sin6_addr.s6_addr[12], buf, GT_MAX_ADDR);
            *ipv6 = false;
        } else {
            inet_ntop(AF_INET6, &s6->sin6_addr, buf, GT_MAX_ADDR);
            *ipv6 = true;
        }
    } else {
        const struct sockaddr_in *s4 = (const void *)sa;
        *port = ntohs(s4->sin_port);
        inet_ntop(AF_INET, &s4->sin_addr, buf, GT_MAX_ADDR);
        *ipv6 = false;
    }
}

int gt_conn_init(GtConn *c, int fd)
{
    static int next_id;
    struct sockaddr_storage sa;
    socklen_t len;

    memset(c, 0, sizeof(*c));
    c->fd = fd;
    c->id = __atomic_add_fetch(&next_id, 1, __ATOMIC_RELAXED);
    len = sizeof(sa);
    if (getsockname(fd, (struct sockaddr *)&sa, &len) < 0) {
        return -errno;
    }
    gt_format_addr(&sa, c->laddr, &c->lport, &c->ipv6);
    len = sizeof(sa);
    if (getpeername(fd, (struct sockaddr *)&sa, &len) < 0) {
        return -errno;
    }
    gt_format_addr(&sa, c->raddr, &c->rport, &c->ipv6);
    return 0;
}

void gt_event(const GtConn *c, const char *op, long bytes)
{
    char comm[17] = "";
    struct timespec ts;

    if (!gt_enabled) {
        return;
    }
    prctl(PR_GET_NAME, comm, 0, 0, 0);
    clock_gettime(CLOCK_REALTIME, &ts);
    /* comm is chosen by the program itself: no escaping needed here. */
    gt_printf("GT {\"prog\":\"%s\",\"pid\":%d,\"tid\":%d,\"comm\":\"%s\","
              "\"cpu\":%d,\"family\":\"%s\",\"laddr\":\"%s\",\"lport\":%u,"
              "\"raddr\":\"%s\",\"rport\":%u,\"op\":\"%s\",\"bytes\":%ld,"
              "\"conn\":%d,\"ts_ns\":%lld}",
              gt_prog, (int)getpid(), (int)gt_gettid(), comm, sched_getcpu(),
              c->ipv6 ? "ipv6" : "ipv4", c->laddr, c->lport, c->raddr,
              c->rport, op, bytes, c->id,
              (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec);
}

long gt_send_all(const GtConn *c, const void *buf, size_t len)
{
    size_t done = 0;

    while (done < len) {
        ssize_t n = send(c->fd, (const char *)buf + done, len - done,
                         MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return -errno;
        }
        gt_event(c, "send", (long)n);
        done += (size_t)n;
    }
    return (long)len;
}

long gt_recv_all(const GtConn *c, void *buf, size_t len)
{
    size_t done = 0;

    while (done < len) {
        ssize_t n = recv(c->fd, (char *)buf + done, len - done, 0);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return -errno;
        }
        if (n == 0) {
            return done == 0 ? 0 : -ECONNRESET;
        }
        gt_event(c, "recv", (long)n);
        done += (size_t)n;
    }
    return (long)len;
}

long gt_recv_msg(const GtConn *c, void *buf, size_t cap)
{
    size_t done = 0, want = PROTO_HDR_LEN;

    if (cap < PROTO_HDR_LEN) {
        return -EINVAL;
    }
    /* Ask for the whole buffer: lock-step peers never send past one message. */
    while (done < want) {
        ssize_t n = recv(c->fd, (char *)buf + done, cap - done, 0);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return -errno;
        }
        if (n == 0) {
            return done == 0 ? 0 : -ECONNRESET;
        }
        gt_event(c, "recv", (long)n);
        done += (size_t)n;
        if (want == PROTO_HDR_LEN && done >= PROTO_HDR_LEN) {
            ProtoHdr h;
            memcpy(&h, buf, sizeof(h));
            want = ntohl(h.len);
            if (want < PROTO_HDR_LEN || want > cap) {
                return -EPROTO;
            }
        }
        if (done > want) {
            return -EPROTO;
        }
    }
    return (long)done;
}

void gt_close(GtConn *c)
{
    if (c->fd < 0) {
        return;
    }
    close(c->fd);
    c->fd = -1;
    gt_event(c, "close", 0);
}

unsigned long gt_parse_ulong(const char *what, const char *s, unsigned long max)
{
    char *end;
    unsigned long v;

    errno = 0;
    v = strtoul(s, &end, 10);
    if (errno || end == s || *end || s[0] == '-' || v > max) {
        fprintf(stderr, "%s: bad value '%s' (0..%lu)\n", what, s, max);
        exit(2);
    }
    return v;
}
