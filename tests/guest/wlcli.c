/*
 * wlcli: workload client for the accuracy harness (scripts/accuracy.py).
 *
 *   wlcli HOST:PORT [--threads T] [--conns C] [--reqs R] [--gap-ms G]
 *                   [--pool P] [--produce] [--consume N] [--tag N]
 *                   [--name COMM]
 *
 * Default: T threads share C connections round-robin (connection j belongs
 * to thread j % T); each connection does R requests (keep-alive when R > 1)
 * and is closed. --pool P: the T threads share a pool of P persistent
 * connections; each thread does R requests, taking a free connection for
 * each and giving it back. --produce: the requests are broker PUBs.
 * --consume N: one connection, FETCH until N messages were delivered.
 * G milliseconds pass between two requests of a thread. Prints one CALL
 * line per request (wl.h), then "DONE {...}"; exit status 0 when every
 * request succeeded.
 */
#define _GNU_SOURCE
#include "gt.h"
#include "net.h"
#include "proto.h"
#include "wl.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define CLI_MAX_THREADS 64
#define CLI_MAX_POOL 64
#define CLI_CONNECT_TIMEOUT_S 60.0

typedef struct CliThread {
    pthread_t thread;
    unsigned long index;
    unsigned long errors;
    unsigned long done;
} CliThread;

static const char *target;
static unsigned long threads = 1, conns = 1, reqs = 1, gap_ms, pool_size;
static unsigned long consume;
static uint32_t op = PROTO_OP_CALL;

static pthread_mutex_t pool_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t pool_cv = PTHREAD_COND_INITIALIZER;
static GtConn pool[CLI_MAX_POOL];     /* guarded by pool_mu */
static bool pool_busy[CLI_MAX_POOL];

static void usage(FILE *f)
{
    fprintf(f,
        "usage: wlcli HOST:PORT [--threads T] [--conns C] [--reqs R]\n"
        "             [--gap-ms G] [--pool P] [--produce] [--consume N]\n"
        "             [--tag N] [--name COMM]\n");
}

static void pause_gap(void)
{
    if (gap_ms) {
        struct timespec ts = { .tv_sec = (time_t)(gap_ms / 1000),
                               .tv_nsec = (long)(gap_ms % 1000) * 1000000L };
        nanosleep(&ts, NULL);
    }
}

static int cli_open(GtConn *c)
{
    int fd = wl_connect(target, CLI_CONNECT_TIMEOUT_S);

    if (fd < 0) {
        fprintf(stderr, "wlcli: connect %s: %s\n", target, strerror(-fd));
        return fd;
    }
    gt_conn_init(c, fd);
    return 0;
}

/* One request on @c; errors are counted in @t. */
static void cli_request(CliThread *t, const GtConn *c)
{
    WlMsg rep;
    int rc = wl_call(c, wl_new_id(), 0, op, &rep);

    if (rc < 0) {
        fprintf(stderr, "wlcli: request: %s\n", strerror(-rc));
        t->errors++;
    } else {
        t->done++;
    }
}

static void *cli_thread(void *arg)
{
    CliThread *t = arg;
    unsigned long j, r;

    if (pool_size) {
        for (r = 0; r < reqs; r++) {
            unsigned long k;

            pthread_mutex_lock(&pool_mu);
            for (;;) {
                for (k = 0; k < pool_size && pool_busy[k]; k++) {
                }
                if (k < pool_size) {
                    break;
                }
                pthread_cond_wait(&pool_cv, &pool_mu);
            }
            pool_busy[k] = true;
            pthread_mutex_unlock(&pool_mu);
            if (pool[k].fd < 0 && cli_open(&pool[k]) < 0) {
                t->errors++;
            } else {
                cli_request(t, &pool[k]);
            }
            pthread_mutex_lock(&pool_mu);
            pool_busy[k] = false;
            pthread_cond_signal(&pool_cv);
            pthread_mutex_unlock(&pool_mu);
            pause_gap();
        }
        return NULL;
    }
    for (j = t->index; j < conns; j += threads) {
        GtConn c;

        if (cli_open(&c) < 0) {
            t->errors++;
            continue;
        }
        for (r = 0; r < reqs; r++) {
            cli_request(t, &c);
            pause_gap();
        }
        close(c.fd);
    }
    return NULL;
}

static int cli_consume(void)
{
    GtConn c;
    unsigned long got = 0, tries = 0;

    if (cli_open(&c) < 0) {
        return 1;
    }
    while (got < consume && tries++ < consume * 4) {
        WlMsg rep;

        if (wl_call(&c, wl_new_id(), 0, PROTO_OP_FETCH, &rep) < 0) {
            break;
        }
        got += rep.arg != 0;
    }
    close(c.fd);
    gt_printf("DONE {\"prog\":\"wlcli\",\"pid\":%d,\"consumed\":%lu}",
              (int)getpid(), got);
    return got == consume ? 0 : 1;
}

int main(int argc, char **argv)
{
    static CliThread th[CLI_MAX_THREADS];
    unsigned long i, errors = 0, done = 0;
    const char *name = "wlcli";

    if (argc < 2 || !strcmp(argv[1], "--help")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    target = argv[1];
    for (int a = 2; a < argc; a++) {
        const char *o = argv[a];
        bool v = a + 1 < argc;

        if (!strcmp(o, "--threads") && v) {
            threads = gt_parse_ulong(o, argv[++a], CLI_MAX_THREADS);
        } else if (!strcmp(o, "--conns") && v) {
            conns = gt_parse_ulong(o, argv[++a], 100000);
        } else if (!strcmp(o, "--reqs") && v) {
            reqs = gt_parse_ulong(o, argv[++a], 1000000);
        } else if (!strcmp(o, "--gap-ms") && v) {
            gap_ms = gt_parse_ulong(o, argv[++a], 60000);
        } else if (!strcmp(o, "--pool") && v) {
            pool_size = gt_parse_ulong(o, argv[++a], CLI_MAX_POOL);
        } else if (!strcmp(o, "--produce")) {
            op = PROTO_OP_PUB;
        } else if (!strcmp(o, "--consume") && v) {
            consume = gt_parse_ulong(o, argv[++a], 1000000);
        } else if (!strcmp(o, "--tag") && v) {
            wl_init((unsigned)gt_parse_ulong(o, argv[++a], 65535));
        } else if (!strcmp(o, "--name") && v) {
            name = argv[++a];
        } else {
            usage(stderr);
            return 2;
        }
    }
    if (!threads || !conns || !reqs) {
        usage(stderr);
        return 2;
    }
    gt_init("wlcli", false);
    wl_set_comm(name);
    signal(SIGPIPE, SIG_IGN);
    if (consume) {
        return cli_consume();
    }
    for (i = 0; i < pool_size; i++) {
        pool[i].fd = -1;
    }
    for (i = 0; i < threads; i++) {
        th[i].index = i;
        if (pthread_create(&th[i].thread, NULL, cli_thread, &th[i])) {
            perror("wlcli: pthread_create");
            return 1;
        }
    }
    for (i = 0; i < threads; i++) {
        pthread_join(th[i].thread, NULL);
        errors += th[i].errors;
        done += th[i].done;
    }
    for (i = 0; i < pool_size; i++) {
        if (pool[i].fd >= 0) {
            close(pool[i].fd);
        }
    }
    gt_printf("DONE {\"prog\":\"wlcli\",\"pid\":%d,\"requests\":%lu,"
              "\"errors\":%lu}", (int)getpid(), done, errors);
    return errors ? 1 : 0;
}
