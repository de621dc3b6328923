/*
 * wlsrv: workload server for the accuracy harness (scripts/accuracy.py).
 *
 * Serves requests with a request id (proto.h, ProtoWl) under one of the
 * server models appdep must get right, and prints a SERVE line per request
 * and a CALL line per upstream call (wl.h):
 *
 *   thread  one thread per connection, many requests per connection
 *   fork    one process per connection
 *   pool    an acceptor thread polls the connections, reads each request
 *           and queues it; a fixed pool of worker threads takes requests
 *           from the queue, makes the calls and replies
 *   event   one thread, epoll: client connections and upstream connections
 *           (kept open and reused, new ones connected without blocking)
 *   broker  thread per connection; PUB stores a message id, FETCH waits
 *           for one and delivers it
 *
 * With --upstream (repeatable), each request makes one call to every
 * upstream, all sent before any reply is read (fan-out), before it is
 * answered. Upstream connections are new for every call, or kept per
 * thread (--up-keepalive), or taken from a pool shared by the threads
 * (--up-pool N).
 */
#define _GNU_SOURCE
#include "gt.h"
#include "net.h"
#include "proto.h"
#include "wl.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define SRV_BACKLOG 128
#define SRV_MAX_UP 4
#define SRV_MAX_WORKERS 64
#define SRV_MAX_CONNS 512
#define SRV_MAX_POOL 64
#define SRV_MAX_QUEUE 4096
#define SRV_CONNECT_TIMEOUT_S 60.0
#define SRV_FETCH_WAIT_S 120

enum { MODEL_THREAD, MODEL_FORK, MODEL_POOL, MODEL_EVENT, MODEL_BROKER };
enum { UP_CONNECT, UP_KEEPALIVE, UP_POOL };

typedef struct Upstream {
    const char *hostport;
    pthread_mutex_t mu;             /* guards free_fd, nfree, total */
    pthread_cond_t cv;
    int free_fd[SRV_MAX_POOL];
    int nfree;
    int total;
} Upstream;

static int model = MODEL_THREAD;
static int up_mode = UP_CONNECT;
static int up_pool_max = 2;
static Upstream ups[SRV_MAX_UP];
static int nups;
static __thread int tl_fd1[SRV_MAX_UP];     /* keep-alive fd + 1, 0: none */

static void usage(FILE *f)
{
    fprintf(f,
        "usage: wlsrv PORT [--model thread|fork|pool|event|broker]\n"
        "             [--workers N] [--upstream HOST:PORT]...\n"
        "             [--up-keepalive | --up-pool N] [--tag N] [--name COMM]\n");
}

static void set_nodelay(int fd)
{
    int one = 1;

    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

/* ---- upstream connections (thread, fork, pool models) ---------------- */

static int up_get(int u)
{
    Upstream *up = &ups[u];
    int fd;

    if (up_mode == UP_KEEPALIVE && tl_fd1[u]) {
        return tl_fd1[u] - 1;
    }
    if (up_mode == UP_POOL) {
        pthread_mutex_lock(&up->mu);
        while (!up->nfree && up->total >= up_pool_max) {
            pthread_cond_wait(&up->cv, &up->mu);
        }
        if (up->nfree) {
            fd = up->free_fd[--up->nfree];
            pthread_mutex_unlock(&up->mu);
            return fd;
        }
        up->total++;
        pthread_mutex_unlock(&up->mu);
    }
    fd = wl_connect(up->hostport, SRV_CONNECT_TIMEOUT_S);
    if (up_mode == UP_KEEPALIVE && fd >= 0) {
        tl_fd1[u] = fd + 1;
    }
    if (up_mode == UP_POOL && fd < 0) {
        pthread_mutex_lock(&up->mu);
        up->total--;
        pthread_cond_signal(&up->cv);
        pthread_mutex_unlock(&up->mu);
    }
    return fd;
}

static void up_put(int u, int fd, bool ok)
{
    Upstream *up = &ups[u];

    if (up_mode == UP_KEEPALIVE) {
        if (!ok) {
            close(fd);
            tl_fd1[u] = 0;
        }
        return;
    }
    if (up_mode == UP_POOL) {
        pthread_mutex_lock(&up->mu);
        if (ok) {
            up->free_fd[up->nfree++] = fd;
        } else {
            close(fd);
            up->total--;
        }
        pthread_cond_signal(&up->cv);
        pthread_mutex_unlock(&up->mu);
        return;
    }
    close(fd);
}

/* ---- broker ---------------------------------------------------------- */

static pthread_mutex_t broker_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t broker_cv = PTHREAD_COND_INITIALIZER;
static uint64_t broker_q[SRV_MAX_QUEUE];    /* guarded by broker_mu */
static unsigned broker_head, broker_len;

static void broker_put(uint64_t id)
{
    pthread_mutex_lock(&broker_mu);
    if (broker_len < SRV_MAX_QUEUE) {
        broker_q[(broker_head + broker_len++) % SRV_MAX_QUEUE] = id;
        pthread_cond_signal(&broker_cv);
    }
    pthread_mutex_unlock(&broker_mu);
}

/* The oldest message, waiting for one at most SRV_FETCH_WAIT_S; 0: none. */
static uint64_t broker_take(void)
{
    struct timespec dl;
    uint64_t id = 0;

    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += SRV_FETCH_WAIT_S;
    pthread_mutex_lock(&broker_mu);
    while (!broker_len &&
           pthread_cond_timedwait(&broker_cv, &broker_mu, &dl) == 0) {
    }
    if (broker_len) {
        id = broker_q[broker_head];
        broker_head = (broker_head + 1) % SRV_MAX_QUEUE;
        broker_len--;
    }
    pthread_mutex_unlock(&broker_mu);
    return id;
}

/* ---- one request (thread, fork, pool, broker models) ------------------ */

/*
 * Serve @req, read from @c by thread @rtid at @t0: the upstream calls
 * (all sent, then all replies read), then the reply. Returns 0 or -errno
 * of the reply's send.
 */
static int srv_handle(const GtConn *c, const WlMsg *req, pid_t rtid,
                      long long t0)
{
    GtConn up[SRV_MAX_UP];
    int fds[SRV_MAX_UP];
    uint64_t ids[SRV_MAX_UP], msg = 0;
    long long ct0[SRV_MAX_UP];
    int u, rc;

    if (req->op == PROTO_OP_PUB) {
        broker_put(req->id);
    } else if (req->op == PROTO_OP_FETCH) {
        msg = broker_take();
    }
    for (u = 0; u < nups && req->op == PROTO_OP_CALL; u++) {
        fds[u] = up_get(u);
        if (fds[u] >= 0) {
            gt_conn_init(&up[u], fds[u]);
            ids[u] = wl_new_id();
            ct0[u] = wl_now_ns();
            if (wl_send_req(&up[u], ids[u], PROTO_OP_CALL) < 0) {
                up_put(u, fds[u], false);
                fds[u] = -1;
            }
        }
        if (fds[u] < 0) {
            fprintf(stderr, "wlsrv: upstream %s: call failed\n",
                    ups[u].hostport);
        }
    }
    for (u = 0; u < nups && req->op == PROTO_OP_CALL; u++) {
        WlMsg rep;

        if (fds[u] < 0) {
            continue;
        }
        rc = wl_recv_msg(&up[u], &rep);
        if (!rc) {
            wl_log_call(&up[u], ids[u], req->id, PROTO_OP_CALL,
                        wl_req_bytes(ids[u]), rep.len, ct0[u], wl_now_ns(),
                        0);
        } else {
            fprintf(stderr, "wlsrv: upstream %s: reply: %s\n",
                    ups[u].hostport, strerror(-rc));
        }
        up_put(u, fds[u], !rc);
    }
    rc = wl_send_reply(c, req, req->op == PROTO_OP_FETCH ? msg : req->id,
                       msg != 0);
    if (!rc) {
        wl_log_serve(c, req, rtid, req->reply ? req->reply : PROTO_WL_LEN,
                     t0, wl_now_ns(), msg);
    }
    return rc;
}

/* Serve one connection until the peer closes; takes ownership of @fd. */
static void srv_conn(int fd)
{
    GtConn c;

    set_nodelay(fd);
    gt_conn_init(&c, fd);
    for (;;) {
        WlMsg m;

        if (wl_recv_msg(&c, &m) < 0 ||
            srv_handle(&c, &m, gt_gettid(), wl_now_ns()) < 0) {
            break;
        }
    }
    close(fd);
}

static void *srv_conn_thread(void *arg)
{
    srv_conn((int)(long)arg);
    return NULL;
}

static int srv_listen(unsigned port)
{
    struct sockaddr_in s4 = { .sin_family = AF_INET,
                              .sin_port = htons(port),
                              .sin_addr.s_addr = htonl(INADDR_ANY) };
    int one = 1;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    if (fd < 0) {
        return -errno;
    }
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, (struct sockaddr *)&s4, sizeof(s4)) < 0 ||
        listen(fd, SRV_BACKLOG) < 0) {
        int err = errno;
        close(fd);
        return -err;
    }
    return fd;
}

static void spawn_detached(void *(*fn)(void *), void *arg)
{
    pthread_t t;
    pthread_attr_t attr;

    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    if (pthread_create(&t, &attr, fn, arg)) {
        perror("wlsrv: pthread_create");
        exit(1);
    }
    pthread_attr_destroy(&attr);
}

static void run_thread_or_fork(int lfd)
{
    for (;;) {
        int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);

        if (fd < 0) {
            continue;
        }
        if (model == MODEL_FORK) {
            pid_t pid = fork();

            if (pid == 0) {
                close(lfd);
                srv_conn(fd);
                _exit(0);
            }
            close(fd);
        } else {
            spawn_detached(srv_conn_thread, (void *)(long)fd);
        }
    }
}

/* ---- pool: acceptor + queue + workers --------------------------------- */

typedef struct PoolConn {
    int fd;                         /* -1: slot free */
    bool busy;                      /* a worker has its request */
    GtConn c;
} PoolConn;

typedef struct Job {
    PoolConn *pc;
    WlMsg req;
    pid_t rtid;
    long long t0;
} Job;

static PoolConn pool_conns[SRV_MAX_CONNS];
static pthread_mutex_t pool_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t pool_cv = PTHREAD_COND_INITIALIZER;
static Job pool_q[SRV_MAX_QUEUE];   /* guarded by pool_mu */
static unsigned pool_head, pool_len;
static int pool_wake[2];            /* workers -> acceptor: a conn is idle */

static void *pool_worker(void *arg)
{
    for (;;) {
        Job j;
        char b = 0;
        int rc;

        pthread_mutex_lock(&pool_mu);
        while (!pool_len) {
            pthread_cond_wait(&pool_cv, &pool_mu);
        }
        j = pool_q[pool_head];
        pool_head = (pool_head + 1) % SRV_MAX_QUEUE;
        pool_len--;
        pthread_mutex_unlock(&pool_mu);
        rc = srv_handle(&j.pc->c, &j.req, j.rtid, j.t0);
        if (rc < 0) {
            shutdown(j.pc->fd, SHUT_RDWR);     /* the acceptor closes it */
        }
        __atomic_store_n(&j.pc->busy, false, __ATOMIC_RELEASE);
        if (write(pool_wake[1], &b, 1) < 0) {
            /* the acceptor polls again within its timeout anyway */
        }
    }
    return NULL;
}

static void run_pool(int lfd, int workers)
{
    struct pollfd pfd[SRV_MAX_CONNS + 2];
    PoolConn *map[SRV_MAX_CONNS + 2];
    int i;

    if (pipe2(pool_wake, O_CLOEXEC | O_NONBLOCK) < 0) {
        perror("wlsrv: pipe");
        exit(1);
    }
    for (i = 0; i < SRV_MAX_CONNS; i++) {
        pool_conns[i].fd = -1;
    }
    for (i = 0; i < workers; i++) {
        spawn_detached(pool_worker, NULL);
    }
    for (;;) {
        int n = 0;

        pfd[n].fd = lfd;
        pfd[n++].events = POLLIN;
        pfd[n].fd = pool_wake[0];
        pfd[n++].events = POLLIN;
        for (i = 0; i < SRV_MAX_CONNS; i++) {
            PoolConn *pc = &pool_conns[i];

            if (pc->fd >= 0 && !__atomic_load_n(&pc->busy, __ATOMIC_ACQUIRE)) {
                map[n] = pc;
                pfd[n].fd = pc->fd;
                pfd[n++].events = POLLIN;
            }
        }
        if (poll(pfd, (nfds_t)n, 1000) < 0) {
            continue;
        }
        if (pfd[1].revents & POLLIN) {
            char b[64];
            while (read(pool_wake[0], b, sizeof(b)) > 0) {
            }
        }
        for (i = 2; i < n; i++) {
            PoolConn *pc = map[i];
            Job j;

            if (!pfd[i].revents) {
                continue;
            }
            if (wl_recv_msg(&pc->c, &j.req) < 0) {
                close(pc->fd);
                pc->fd = -1;
                continue;
            }
            j.pc = pc;
            j.rtid = gt_gettid();
            j.t0 = wl_now_ns();
            pc->busy = true;
            pthread_mutex_lock(&pool_mu);
            if (pool_len < SRV_MAX_QUEUE) {
                pool_q[(pool_head + pool_len++) % SRV_MAX_QUEUE] = j;
                pthread_cond_signal(&pool_cv);
            } else {
                pc->busy = false;       /* overloaded: drop the request */
            }
            pthread_mutex_unlock(&pool_mu);
        }
        if (pfd[0].revents & POLLIN) {
            int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);

            for (i = 0; fd >= 0 && i < SRV_MAX_CONNS; i++) {
                if (pool_conns[i].fd < 0) {
                    set_nodelay(fd);
                    pool_conns[i].fd = fd;
                    pool_conns[i].busy = false;
                    gt_conn_init(&pool_conns[i].c, fd);
                    fd = -1;
                }
            }
            if (fd >= 0) {
                close(fd);
            }
        }
    }
}

/* ---- event: one thread, epoll ----------------------------------------- */

typedef struct EvConn EvConn;
struct EvConn {
    int fd;
    bool backend;
    bool connecting;
    GtConn c;
    char buf[WL_MAX_MSG];
    size_t have;
    WlMsg req;                      /* client: the request in service */
    long long t0;
    EvConn *peer;                   /* client <-> backend of one request */
    uint64_t call_id;               /* backend: the call in flight */
    long long ct0;
    EvConn *next_free;              /* backend: idle list */
};

static int ev_ep;
static EvConn *ev_free;             /* idle backend connections */

/* Send all of @len bytes on a non-blocking socket; 0 or -errno. */
static int send_nb(int fd, const void *buf, size_t len)
{
    size_t done = 0;

    while (done < len) {
        ssize_t n = send(fd, (const char *)buf + done, len - done,
                         MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EAGAIN || errno == EINTR) {
                struct pollfd p = { .fd = fd, .events = POLLOUT };
                poll(&p, 1, 1000);
                continue;
            }
            return -errno;
        }
        done += (size_t)n;
    }
    return 0;
}

static void ev_close(EvConn *e)
{
    epoll_ctl(ev_ep, EPOLL_CTL_DEL, e->fd, NULL);
    close(e->fd);
    if (e->peer) {
        e->peer->peer = NULL;
    }
    free(e);
}

static void ev_watch(EvConn *e, int op, uint32_t events)
{
    struct epoll_event ev = { .events = events, .data.ptr = e };

    epoll_ctl(ev_ep, op, e->fd, &ev);
}

static void ev_reply(EvConn *cl)
{
    char buf[WL_MAX_MSG];
    size_t len = cl->req.reply ? cl->req.reply : PROTO_WL_LEN;

    wl_fill(buf, len, 0, cl->req.id, cl->req.op, 0);
    if (send_nb(cl->fd, buf, len) == 0) {
        wl_log_serve(&cl->c, &cl->req, gt_gettid(), len, cl->t0,
                     wl_now_ns(), 0);
    }
}

static void ev_send_call(EvConn *be)
{
    char buf[WL_MAX_MSG];
    size_t len = wl_req_bytes(be->call_id);

    wl_fill(buf, len, wl_resp_bytes(be->call_id), be->call_id,
            PROTO_OP_CALL, 0);
    be->ct0 = wl_now_ns();
    if (send_nb(be->fd, buf, len) < 0 && be->peer) {
        fprintf(stderr, "wlsrv: event: upstream send failed\n");
    }
}

/* A whole request from client @cl: call the backend, or reply at once. */
static void ev_request(EvConn *cl)
{
    EvConn *be;

    if (!nups) {
        ev_reply(cl);
        return;
    }
    be = ev_free;
    if (be) {
        ev_free = be->next_free;
    } else {
        struct sockaddr_in sa = { .sin_family = AF_INET };
        char host[64];
        const char *colon = strrchr(ups[0].hostport, ':');
        int fd;

        snprintf(host, sizeof(host), "%.*s",
                 (int)(colon - ups[0].hostport), ups[0].hostport);
        inet_pton(AF_INET, host, &sa.sin_addr);
        sa.sin_port = htons((uint16_t)atoi(colon + 1));
        fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        be = calloc(1, sizeof(*be));
        be->fd = fd;
        be->backend = true;
        set_nodelay(fd);
        if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 &&
            errno == EINPROGRESS) {
            be->connecting = true;
            ev_watch(be, EPOLL_CTL_ADD, EPOLLOUT);
        } else {
            ev_watch(be, EPOLL_CTL_ADD, EPOLLIN);
            gt_conn_init(&be->c, fd);
        }
    }
    be->peer = cl;
    cl->peer = be;
    be->call_id = wl_new_id();
    be->have = 0;
    if (!be->connecting) {
        ev_send_call(be);
    }
}

/* Read what @e has; returns a whole message's length, 0 more to come, or
 * -1 when the connection is done. */
static long ev_read(EvConn *e)
{
    ssize_t n = recv(e->fd, e->buf + e->have, sizeof(e->buf) - e->have, 0);
    uint32_t len;

    if (n < 0) {
        return errno == EAGAIN || errno == EINTR ? 0 : -1;
    }
    if (n == 0) {
        return -1;
    }
    e->have += (size_t)n;
    if (e->have < PROTO_WL_LEN) {
        return 0;
    }
    memcpy(&len, e->buf, sizeof(len));
    len = ntohl(len);
    if (len < PROTO_WL_LEN || len > sizeof(e->buf) || e->have > len) {
        return -1;
    }
    return e->have == len ? (long)len : 0;
}

static void ev_event(EvConn *e, uint32_t events)
{
    long n;

    if (e->connecting) {
        int err = 0;
        socklen_t l = sizeof(err);

        getsockopt(e->fd, SOL_SOCKET, SO_ERROR, &err, &l);
        if (err) {
            fprintf(stderr, "wlsrv: event: connect: %s\n", strerror(err));
            if (e->peer) {
                ev_close(e->peer);
            }
            ev_close(e);
            return;
        }
        e->connecting = false;
        gt_conn_init(&e->c, e->fd);
        ev_watch(e, EPOLL_CTL_MOD, EPOLLIN);
        ev_send_call(e);
        return;
    }
    n = ev_read(e);
    if (n < 0) {
        EvConn **p;

        if (e->backend && e->peer) {
            ev_close(e->peer);
        }
        for (p = &ev_free; *p; p = &(*p)->next_free) {
            if (*p == e) {
                *p = e->next_free;      /* an idle upstream went away */
                break;
            }
        }
        ev_close(e);
        return;
    }
    if (n == 0) {
        return;
    }
    if (!e->backend) {
        if (wl_parse(e->buf, (size_t)n, &e->req) < 0) {
            ev_close(e);
            return;
        }
        e->have = 0;
        e->t0 = wl_now_ns();
        ev_request(e);
        return;
    }
    {
        EvConn *cl = e->peer;
        WlMsg rep;

        if (wl_parse(e->buf, (size_t)n, &rep) < 0) {
            if (cl) {
                ev_close(cl);
            }
            ev_close(e);
            return;
        }
        e->have = 0;
        if (cl) {
            wl_log_call(&e->c, e->call_id, cl->req.id, PROTO_OP_CALL,
                        wl_req_bytes(e->call_id), rep.len, e->ct0,
                        wl_now_ns(), 0);
            ev_reply(cl);
            cl->peer = NULL;
        }
        e->peer = NULL;
        e->next_free = ev_free;
        ev_free = e;
    }
}

static void run_event(int lfd)
{
    EvConn lst = { .fd = lfd };
    struct epoll_event evs[64];

    ev_ep = epoll_create1(EPOLL_CLOEXEC);
    fcntl(lfd, F_SETFL, O_NONBLOCK);
    ev_watch(&lst, EPOLL_CTL_ADD, EPOLLIN);
    for (;;) {
        int n = epoll_wait(ev_ep, evs, 64, -1), i;

        for (i = 0; i < n; i++) {
            EvConn *e = evs[i].data.ptr;

            if (e == &lst) {
                int fd;

                while ((fd = accept4(lfd, NULL, NULL,
                                     SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
                    EvConn *cl = calloc(1, sizeof(*cl));

                    cl->fd = fd;
                    set_nodelay(fd);
                    gt_conn_init(&cl->c, fd);
                    ev_watch(cl, EPOLL_CTL_ADD, EPOLLIN);
                }
                continue;
            }
            ev_event(e, evs[i].events);
        }
    }
}

int main(int argc, char **argv)
{
    unsigned port;
    int workers = 4, lfd, i;
    const char *name = "wlsrv";

    if (argc < 2 || !strcmp(argv[1], "--help")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    port = (unsigned)gt_parse_ulong("PORT", argv[1], 65535);
    for (i = 2; i < argc; i++) {
        const char *a = argv[i];
        bool v = i + 1 < argc;

        if (!strcmp(a, "--model") && v) {
            const char *m = argv[++i];
            model = !strcmp(m, "fork") ? MODEL_FORK :
                    !strcmp(m, "pool") ? MODEL_POOL :
                    !strcmp(m, "event") ? MODEL_EVENT :
                    !strcmp(m, "broker") ? MODEL_BROKER :
                    !strcmp(m, "thread") ? MODEL_THREAD : -1;
            if (model < 0) {
                fprintf(stderr, "wlsrv: unknown model '%s'\n", m);
                return 2;
            }
        } else if (!strcmp(a, "--workers") && v) {
            workers = (int)gt_parse_ulong(a, argv[++i], SRV_MAX_WORKERS);
        } else if (!strcmp(a, "--upstream") && v && nups < SRV_MAX_UP) {
            ups[nups].hostport = argv[++i];
            pthread_mutex_init(&ups[nups].mu, NULL);
            pthread_cond_init(&ups[nups].cv, NULL);
            nups++;
        } else if (!strcmp(a, "--up-keepalive")) {
            up_mode = UP_KEEPALIVE;
        } else if (!strcmp(a, "--up-pool") && v) {
            up_mode = UP_POOL;
            up_pool_max = (int)gt_parse_ulong(a, argv[++i], SRV_MAX_POOL);
        } else if (!strcmp(a, "--tag") && v) {
            wl_init((unsigned)gt_parse_ulong(a, argv[++i], 65535));
        } else if (!strcmp(a, "--name") && v) {
            name = argv[++i];
        } else {
            usage(stderr);
            return 2;
        }
    }
    if (workers < 1 || up_pool_max < 1) {
        usage(stderr);
        return 2;
    }
    gt_init("wlsrv", false);
    wl_set_comm(name);
    signal(SIGPIPE, SIG_IGN);
    if (model == MODEL_FORK) {
        signal(SIGCHLD, SIG_IGN);
    }
    lfd = srv_listen(port);
    if (lfd < 0) {
        fprintf(stderr, "wlsrv: listen on %u: %s\n", port, strerror(-lfd));
        return 1;
    }
    gt_printf("LISTEN {\"prog\":\"wlsrv\",\"pid\":%d,\"port\":%u}",
              (int)getpid(), port);
    switch (model) {
    case MODEL_POOL:
        run_pool(lfd, workers);
        break;
    case MODEL_EVENT:
        run_event(lfd);
        break;
    default:
        run_thread_or_fork(lfd);
    }
    return 0;
}
