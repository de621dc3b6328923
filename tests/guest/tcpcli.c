/*
 * tcpcli: multi-threaded TCP client for the guest lab.
 *
 *   tcpcli HOST PORT --conns C --reqs R --bytes B [--threads T] [--ipv6]
 *          [--reply-bytes N] [--connect-timeout S] [--no-pin] [--quiet]
 *   tcpcli HOST PORT --bench N [--ipv6]
 *
 * T threads share the C connections round-robin (connection j belongs to
 * thread j % T); each thread pins itself to one CPU, round-robin over the
 * CPUs it may run on, then, one connection after the other: connects, does
 * R lock-step exchanges of a B-byte request and its reply, closes.
 * Prints GT lines (gt.h) and, at the end, "DONE {...}". Exit status 0 when
 * every exchange succeeded.
 *
 * --bench N: N round trips of 64-byte messages on one connection, no GT
 * lines; prints "BENCH {"reqs":N,"seconds":S,"rps":X}".
 */
#define _GNU_SOURCE
#include "gt.h"
#include "net.h"
#include "proto.h"

#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CLI_MAX_THREADS 256
#define CLI_MAX_CONNS 100000
#define CLI_MAX_REQS 10000000

typedef struct CliConfig {
    const char *host;
    unsigned port;
    bool ipv6;
    bool pin;
    unsigned long conns;
    unsigned long reqs;
    size_t bytes;
    size_t reply_bytes;         /* 0: server's choice */
    unsigned long threads;
    double connect_timeout;
} CliConfig;

typedef struct CliThread {
    pthread_t thread;
    unsigned long index;
    int cpu;                    /* pinned CPU, -1 if not pinned */
    unsigned long errors;
    unsigned long exchanges;
} CliThread;

static CliConfig cfg;
static cpu_set_t cli_cpus;      /* CPUs the process may run on (read-only) */

static void usage(FILE *f)
{
    fprintf(f,
        "usage: tcpcli HOST PORT --conns C --reqs R --bytes B [--threads T]\n"
        "              [--ipv6] [--reply-bytes N] [--connect-timeout S]\n"
        "              [--no-pin] [--quiet]\n"
        "       tcpcli HOST PORT --bench N [--ipv6]\n"
        "  HOST is a numeric address. T threads (default 1) share the C\n"
        "  connections round-robin, each pinned to its own CPU (round-robin\n"
        "  over the allowed CPUs) unless --no-pin. Each connection does R\n"
        "  exchanges of a B-byte request (B >= %u) and its reply, then closes.\n"
        "  Connects are retried for S seconds (default 30): the server may\n"
        "  still be booting. --bench N: N round trips of 64 bytes on one\n"
        "  connection, prints BENCH {\"reqs\",\"seconds\",\"rps\"}.\n",
        PROTO_HDR_LEN);
}

/* Pin the calling thread to the @index-th allowed CPU; returns it or -1. */
static int cli_pin(unsigned long index)
{
    int n = CPU_COUNT(&cli_cpus);
    int want, cpu, seen = 0;
    cpu_set_t one;

    if (n <= 0) {
        return -1;
    }
    want = (int)(index % (unsigned long)n);
    for (cpu = 0; cpu < CPU_SETSIZE; cpu++) {
        if (!CPU_ISSET(cpu, &cli_cpus)) {
            continue;
        }
        if (seen++ == want) {
            CPU_ZERO(&one);
            CPU_SET(cpu, &one);
            if (sched_setaffinity(0, sizeof(one), &one) < 0) {
                return -1;
            }
            return cpu;
        }
    }
    return -1;
}

/* One connection: connect, cfg.reqs exchanges, close. Returns errors. */
static unsigned long cli_one_conn(char *buf, unsigned long *exchanges)
{
    GtConn c;
    unsigned long r;
    int fd = net_connect(cfg.host, cfg.port, cfg.ipv6, cfg.connect_timeout);

    if (fd < 0) {
        fprintf(stderr, "tcpcli: connect %s:%u: %s\n", cfg.host, cfg.port,
                strerror(-fd));
        return 1;
    }
    gt_conn_init(&c, fd);
    gt_event(&c, "connect", 0);
    for (r = 0; r < cfg.reqs; r++) {
        long n;

        net_fill_msg(buf, cfg.bytes, cfg.reply_bytes);
        n = gt_send_all(&c, buf, cfg.bytes);
        if (n >= 0) {
            n = gt_recv_msg(&c, buf, PROTO_MAX_MSG);
        }
        if (n <= 0) {
            fprintf(stderr, "tcpcli: conn %d: exchange %lu: %s\n", c.id, r,
                    n == 0 ? "server closed" : strerror((int)-n));
            gt_close(&c);
            return 1;
        }
        (*exchanges)++;
    }
    gt_close(&c);
    return 0;
}

static void *cli_thread(void *arg)
{
    CliThread *t = arg;
    char *buf = malloc(PROTO_MAX_MSG);
    unsigned long j;

    t->cpu = cfg.pin ? cli_pin(t->index) : -1;
    if (!buf) {
        t->errors++;
        return NULL;
    }
    for (j = t->index; j < cfg.conns; j += cfg.threads) {
        t->errors += cli_one_conn(buf, &t->exchanges);
    }
    free(buf);
    return NULL;
}

static int cli_bench(unsigned long n)
{
    char buf[PROTO_BENCH_BYTES];
    GtConn c;
    double t0, secs;
    unsigned long i;
    int fd;

    gt_init("tcpcli", false);
    fd = net_connect(cfg.host, cfg.port, cfg.ipv6, cfg.connect_timeout);
    if (fd < 0) {
        fprintf(stderr, "tcpcli: connect %s:%u: %s\n", cfg.host, cfg.port,
                strerror(-fd));
        return 1;
    }
    gt_conn_init(&c, fd);
    t0 = net_now();
    for (i = 0; i < n; i++) {
        long r;

        net_fill_msg(buf, sizeof(buf), sizeof(buf));
        r = gt_send_all(&c, buf, sizeof(buf));
        if (r >= 0) {
            r = gt_recv_msg(&c, buf, sizeof(buf));
        }
        if (r <= 0) {
            fprintf(stderr, "tcpcli: bench round %lu: %s\n", i,
                    r == 0 ? "server closed" : strerror((int)-r));
            gt_close(&c);
            return 1;
        }
    }
    secs = net_now() - t0;
    gt_close(&c);
    gt_printf("BENCH {\"reqs\":%lu,\"seconds\":%.6f,\"rps\":%.1f}", n, secs,
              secs > 0 ? (double)n / secs : 0.0);
    return 0;
}

int main(int argc, char **argv)
{
    static CliThread threads[CLI_MAX_THREADS];
    unsigned long bench = 0, i, errors = 0, exchanges = 0;
    bool quiet = false;

    cfg.threads = 1;
    cfg.pin = true;
    cfg.connect_timeout = 30.0;
    if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        usage(stdout);
        return 0;
    }
    if (argc < 3) {
        usage(stderr);
        return 2;
    }
    cfg.host = argv[1];
    cfg.port = (unsigned)gt_parse_ulong("PORT", argv[2], 65535);
    for (int a = 3; a < argc; a++) {
        const char *o = argv[a];
        bool has_val = a + 1 < argc;

        if (!strcmp(o, "--ipv6")) {
            cfg.ipv6 = true;
        } else if (!strcmp(o, "--no-pin")) {
            cfg.pin = false;
        } else if (!strcmp(o, "--quiet")) {
            quiet = true;
        } else if (!strcmp(o, "--conns") && has_val) {
            cfg.conns = gt_parse_ulong(o, argv[++a], CLI_MAX_CONNS);
        } else if (!strcmp(o, "--reqs") && has_val) {
            cfg.reqs = gt_parse_ulong(o, argv[++a], CLI_MAX_REQS);
        } else if (!strcmp(o, "--bytes") && has_val) {
            cfg.bytes = gt_parse_ulong(o, argv[++a], PROTO_MAX_MSG);
        } else if (!strcmp(o, "--reply-bytes") && has_val) {
            cfg.reply_bytes = gt_parse_ulong(o, argv[++a], PROTO_MAX_MSG);
        } else if (!strcmp(o, "--threads") && has_val) {
            cfg.threads = gt_parse_ulong(o, argv[++a], CLI_MAX_THREADS);
        } else if (!strcmp(o, "--connect-timeout") && has_val) {
            cfg.connect_timeout = (double)gt_parse_ulong(o, argv[++a], 3600);
        } else if (!strcmp(o, "--bench") && has_val) {
            bench = gt_parse_ulong(o, argv[++a], CLI_MAX_REQS);
        } else {
            fprintf(stderr, "tcpcli: unknown or incomplete option '%s'\n", o);
            usage(stderr);
            return 2;
        }
    }
    signal(SIGPIPE, SIG_IGN);
    if (bench) {
        return cli_bench(bench);
    }
    if (!cfg.conns || !cfg.reqs || cfg.bytes < PROTO_HDR_LEN || !cfg.threads ||
        (cfg.reply_bytes && cfg.reply_bytes < PROTO_HDR_LEN)) {
        fprintf(stderr, "tcpcli: need --conns >= 1, --reqs >= 1, --bytes >= %u,"
                " --threads >= 1, --reply-bytes 0 or >= %u\n",
                PROTO_HDR_LEN, PROTO_HDR_LEN);
        return 2;
    }
    gt_init("tcpcli", !quiet);
    if (sched_getaffinity(0, sizeof(cli_cpus), &cli_cpus) < 0) {
        CPU_ZERO(&cli_cpus);
    }
    for (i = 0; i < cfg.threads; i++) {
        threads[i].index = i;
        if (pthread_create(&threads[i].thread, NULL, cli_thread, &threads[i])) {
            perror("tcpcli: pthread_create");
            return 1;
        }
    }
    for (i = 0; i < cfg.threads; i++) {
        pthread_join(threads[i].thread, NULL);
        errors += threads[i].errors;
        exchanges += threads[i].exchanges;
    }
    gt_printf("DONE {\"prog\":\"tcpcli\",\"pid\":%d,\"conns\":%lu,"
              "\"exchanges\":%lu,\"errors\":%lu}", (int)getpid(), cfg.conns,
              exchanges, errors);
    return errors ? 1 : 0;
}
