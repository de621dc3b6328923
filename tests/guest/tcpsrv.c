/*
 * tcpsrv: thread-per-connection (or, with --fork, process-per-connection)
 * TCP request/reply server for the guest lab. Listens on PORT on IPv4 and,
 * when the kernel has it, IPv6 (v6only, so every connection has one plain
 * address family). Each connection is served until the client closes it;
 * each request (see proto.h) gets one reply. With --upstream the serving
 * thread makes one request to another server before replying, which gives
 * boot tests nested (indirect) dependencies.
 *
 * Prints "LISTEN {...}" once listening, then GT lines (gt.h).
 */
#define _GNU_SOURCE
#include "gt.h"
#include "net.h"
#include "proto.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define SRV_BACKLOG 128
#define SRV_UPSTREAM_TIMEOUT_S 30.0

typedef struct SrvConfig {
    unsigned port;
    bool fork_mode;
    size_t reply_bytes;         /* 0: same size as the request */
    const char *up_host;        /* NULL: no upstream */
    unsigned up_port;
    bool up_ipv6;
    size_t up_bytes;
} SrvConfig;

static SrvConfig cfg;

static void usage(FILE *f)
{
    fprintf(f,
        "usage: tcpsrv PORT [--fork] [--reply-bytes N] [--quiet]\n"
        "              [--upstream HOST:PORT [--upstream-bytes N]]\n"
        "  Serves framed requests (tests/guest/proto.h), one reply each,\n"
        "  until the client closes. One thread per connection, or one\n"
        "  process with --fork. --reply-bytes sets the reply size when the\n"
        "  client does not ask for one (default: the request's size).\n"
        "  --upstream: before each reply, do one request of --upstream-bytes\n"
        "  (default 64) on a new connection to HOST:PORT ([v6addr]:PORT).\n"
        "  --quiet: no GT lines (benchmarks).\n");
}

/* One request to the upstream server on a fresh connection. */
static int srv_call_upstream(char *buf)
{
    GtConn up;
    long n;
    int fd = net_connect(cfg.up_host, cfg.up_port, cfg.up_ipv6,
                         SRV_UPSTREAM_TIMEOUT_S);

    if (fd < 0) {
        return fd;
    }
    gt_conn_init(&up, fd);
    gt_event(&up, "connect", 0);
    net_fill_msg(buf, cfg.up_bytes, 0);
    n = gt_send_all(&up, buf, cfg.up_bytes);
    if (n >= 0) {
        n = gt_recv_msg(&up, buf, PROTO_MAX_MSG);
    }
    gt_close(&up);
    return n > 0 ? 0 : (n == 0 ? -ECONNRESET : (int)n);
}

/* Serve one connection until the peer closes; takes ownership of @fd. */
static void srv_serve(int fd)
{
    GtConn c;
    char *buf = malloc(PROTO_MAX_MSG);
    int one = 1;

    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    gt_conn_init(&c, fd);
    gt_event(&c, "accept", 0);
    if (!buf) {
        gt_close(&c);
        return;
    }
    for (;;) {
        ProtoHdr h;
        size_t reply;
        long n = gt_recv_msg(&c, buf, PROTO_MAX_MSG);

        if (n <= 0) {
            if (n < 0) {
                fprintf(stderr, "tcpsrv: conn %d: recv: %s\n", c.id,
                        strerror((int)-n));
            }
            break;
        }
        memcpy(&h, buf, sizeof(h));
        reply = ntohl(h.reply);
        if (reply == 0) {
            reply = cfg.reply_bytes ? cfg.reply_bytes : (size_t)n;
        }
        if (reply < PROTO_HDR_LEN || reply > PROTO_MAX_MSG) {
            fprintf(stderr, "tcpsrv: conn %d: bad reply size %zu\n", c.id, reply);
            break;
        }
        if (cfg.up_host && srv_call_upstream(buf) < 0) {
            fprintf(stderr, "tcpsrv: conn %d: upstream call failed\n", c.id);
        }
        net_fill_msg(buf, reply, 0);
        n = gt_send_all(&c, buf, reply);
        if (n < 0) {
            fprintf(stderr, "tcpsrv: conn %d: send: %s\n", c.id,
                    strerror((int)-n));
            break;
        }
    }
    gt_close(&c);
    free(buf);
}

static void *srv_thread(void *arg)
{
    srv_serve((int)(long)arg);
    return NULL;
}

/* Listening socket on @family, or -errno. */
static int srv_listen(int family)
{
    int one = 1;
    int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_storage ss;
    socklen_t len;

    if (fd < 0) {
        return -errno;
    }
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    memset(&ss, 0, sizeof(ss));
    if (family == AF_INET6) {
        struct sockaddr_in6 *s6 = (void *)&ss;
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons(cfg.port);
        s6->sin6_addr = in6addr_any;
        len = sizeof(*s6);
    } else {
        struct sockaddr_in *s4 = (void *)&ss;
        s4->sin_family = AF_INET;
        s4->sin_port = htons(cfg.port);
        s4->sin_addr.s_addr = htonl(INADDR_ANY);
        len = sizeof(*s4);
    }
    if (bind(fd, (struct sockaddr *)&ss, len) < 0 ||
        listen(fd, SRV_BACKLOG) < 0) {
        int err = errno;
        close(fd);
        return -err;
    }
    return fd;
}

/* Parse "HOST:PORT" or "[V6]:PORT" into cfg.up_*; exits on error. */
static void srv_parse_upstream(char *s)
{
    char *colon = strrchr(s, ':');

    if (!colon) {
        fprintf(stderr, "tcpsrv: --upstream wants HOST:PORT\n");
        exit(2);
    }
    *colon = '\0';
    cfg.up_port = (unsigned)gt_parse_ulong("--upstream port", colon + 1, 65535);
    if (s[0] == '[' && colon[-1] == ']') {
        colon[-1] = '\0';
        s++;
        cfg.up_ipv6 = true;
    }
    cfg.up_host = s;
}

int main(int argc, char **argv)
{
    struct pollfd pfd[2];
    int nfd = 0;
    bool quiet = false;
    int i;

    cfg.up_bytes = 64;
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    cfg.port = (unsigned)gt_parse_ulong("PORT", argv[1], 65535);
    for (i = 2; i < argc; i++) {
        const char *a = argv[i];
        bool has_val = i + 1 < argc;

        if (!strcmp(a, "--fork")) {
            cfg.fork_mode = true;
        } else if (!strcmp(a, "--quiet")) {
            quiet = true;
        } else if (!strcmp(a, "--reply-bytes") && has_val) {
            cfg.reply_bytes = gt_parse_ulong(a, argv[++i], PROTO_MAX_MSG);
            if (cfg.reply_bytes < PROTO_HDR_LEN) {
                fprintf(stderr, "tcpsrv: --reply-bytes must be >= %u\n",
                        PROTO_HDR_LEN);
                return 2;
            }
        } else if (!strcmp(a, "--upstream") && has_val) {
            srv_parse_upstream(argv[++i]);
        } else if (!strcmp(a, "--upstream-bytes") && has_val) {
            cfg.up_bytes = gt_parse_ulong(a, argv[++i], PROTO_MAX_MSG);
            if (cfg.up_bytes < PROTO_HDR_LEN) {
                fprintf(stderr, "tcpsrv: --upstream-bytes must be >= %u\n",
                        PROTO_HDR_LEN);
                return 2;
            }
        } else {
            fprintf(stderr, "tcpsrv: unknown or incomplete option '%s'\n", a);
            usage(stderr);
            return 2;
        }
    }
    gt_init("tcpsrv", !quiet);
    signal(SIGPIPE, SIG_IGN);
    if (cfg.fork_mode) {
        signal(SIGCHLD, SIG_IGN);     /* children are reaped automatically */
    }

    pfd[nfd].fd = srv_listen(AF_INET);
    if (pfd[nfd].fd < 0) {
        fprintf(stderr, "tcpsrv: listen on port %u: %s\n", cfg.port,
                strerror(-pfd[nfd].fd));
        return 1;
    }
    pfd[nfd++].events = POLLIN;
    pfd[nfd].fd = srv_listen(AF_INET6);
    if (pfd[nfd].fd >= 0) {
        pfd[nfd++].events = POLLIN;
    }
    gt_printf("LISTEN {\"prog\":\"tcpsrv\",\"pid\":%d,\"port\":%u,"
              "\"ipv6\":%s,\"fork\":%s}", (int)getpid(), cfg.port,
              nfd == 2 ? "true" : "false", cfg.fork_mode ? "true" : "false");

    for (;;) {
        if (poll(pfd, (nfds_t)nfd, -1) < 0) {
            if (errno == EINTR) {
                continue;
            }
            perror("tcpsrv: poll");
            return 1;
        }
        for (i = 0; i < nfd; i++) {
            int fd;

            if (!(pfd[i].revents & POLLIN)) {
                continue;
            }
            fd = accept4(pfd[i].fd, NULL, NULL, SOCK_CLOEXEC);
            if (fd < 0) {
                continue;
            }
            if (cfg.fork_mode) {
                pid_t pid = fork();
                if (pid == 0) {
                    close(pfd[0].fd);
                    if (nfd == 2) {
                        close(pfd[1].fd);
                    }
                    srv_serve(fd);
                    _exit(0);
                }
                if (pid < 0) {
                    perror("tcpsrv: fork");
                }
                close(fd);
            } else {
                pthread_t t;
                pthread_attr_t attr;

                pthread_attr_init(&attr);
                pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
                if (pthread_create(&t, &attr, srv_thread, (void *)(long)fd)) {
                    perror("tcpsrv: pthread_create");
                    close(fd);
                }
                pthread_attr_destroy(&attr);
            }
        }
    }
}
