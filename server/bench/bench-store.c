/*
 * appdep-bench-store: insert rate and query latency of the LMDB store
 * (server/store/).  Figures, not a test.
 *
 *   appdep-bench-store [--count N] [--batch B] [--sync MODE] [--dir DIR]
 *                      [--span S] [--jitter-us J] [--threads T]
 *                      [--queries] [--keep]
 *
 * Inserts N synthetic messages spread evenly over S seconds, in batches
 * of B, and prints the committed rate.  The traffic is request trees of
 * four tiers (T threads over 16 VMs: VMs 0-3 clients, 4-7 web, 8-11 app,
 * 12-15 db): a client calls a web thread, which calls two app threads,
 * each calling a db thread; 5 exchanges, 10 messages, both ends of each
 * seen (two thread index entries); a tree is up to J us late.  MODE:
 * durable (default), nometasync, nosync, or all (one fresh store per
 * mode).  With --queries it times, on the last store: a one-hour range
 * scan, the same with a limit, a one-hour thread_range, the one-hour
 * dependency map (range + exchanges + map), and trajectory queries: per
 * root through the thread index (query.c, median and p99 over many
 * roots), and the trajectory query of one web VM over an hour and over a
 * minute, both the API's way (load the window) and through query.c
 * (not used by the API: exact only for one-request-at-a-time servers,
 * docs/server.md).
 *
 * Copyright (c) 2026 appdep authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <glib.h>
#include <glib/gstdio.h>
#include "query.h"
#include "server-limits.h"
#include "store.h"
#include "trajectory.h"

#define BENCH_VMS           16
#define BENCH_MAX_THREADS   (BENCH_VMS * 1024)
#define BENCH_T_BASE        1700000000000000000ULL
#define BENCH_HOUR_NS       (3600ULL * APPDEP_NS_PER_S)
#define BENCH_QUERY_REPEAT  5
#define BENCH_QUERY_LIMIT   1000
#define BENCH_MAX_BATCH     (1 << 20)
#define BENCH_TREE_MSGS     10      /* messages of one request tree */
#define BENCH_TRAJ_ROOTS    2000    /* roots timed one by one */
#define BENCH_API_MARGIN_NS (APPDEP_API_TRAJ_MARGIN_S * APPDEP_NS_PER_S)
#define BENCH_API_LIMIT     20      /* trees an API query shows */

typedef struct BenchOpts {
    gint64 count;
    gint batch;
    char *sync;
    char *dir;
    gint64 span_s;
    gint64 jitter_us;
    gint threads;
    gboolean queries;
    gboolean keep;
} BenchOpts;

static AppdepThreadId threads[BENCH_MAX_THREADS];
static unsigned nthreads;

/* @n threads spread over BENCH_VMS VMs. */
static void init_threads(unsigned n)
{
    unsigned i;

    nthreads = n;
    for (i = 0; i < n; i++) {
        AppdepThreadId *t = &threads[i];

        g_snprintf(t->vm, sizeof(t->vm), "vm-%02u", i % BENCH_VMS);
        t->pid = 1000 + i / BENCH_VMS / 8;
        t->tid = 1000 + i / BENCH_VMS;
        g_snprintf(t->comm, sizeof(t->comm), "worker-%u", t->pid);
    }
}

/* splitmix64: cheap, reproducible */
static uint64_t mix(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

/* Tier of VM v: 0 clients, 1 web, 2 app, 3 db. */
static const AppdepThreadId *tier_thread(unsigned tier, uint64_t pick)
{
    unsigned per_vm = MAX(nthreads / BENCH_VMS, 1);
    unsigned vm = tier * (BENCH_VMS / 4) + pick % (BENCH_VMS / 4);
    unsigned k = (pick / (BENCH_VMS / 4)) % per_vm;

    return &threads[MIN(vm + k * BENCH_VMS, nthreads - 1)];
}

/*
 * Message @i: message i % 10 of request tree i / 10, which starts at
 * tree * 10 * step_ns (less its lateness).  In time order: the client's
 * request to web; web's first call to app, app's call to db, db's and
 * app's answers; the same for the second call; web's answer.  Every
 * exchange has its own connection.
 */
static void make_message(AppdepMessage *m, uint64_t i, uint64_t step_ns,
                         uint64_t jitter_ns)
{
    static const struct {
        uint8_t cli, srv;       /* tiers */
        uint8_t ex;             /* exchange of the tree */
        uint8_t dir;
        uint32_t at_us;         /* since the tree's start */
    } plan[BENCH_TREE_MSGS] = {
        { 0, 1, 0, APPDEP_DIR_REQUEST, 0 },
        { 1, 2, 1, APPDEP_DIR_REQUEST, 1000 },
        { 2, 3, 2, APPDEP_DIR_REQUEST, 1300 },
        { 2, 3, 2, APPDEP_DIR_RESPONSE, 2000 },
        { 1, 2, 1, APPDEP_DIR_RESPONSE, 3000 },
        { 1, 2, 3, APPDEP_DIR_REQUEST, 4000 },
        { 2, 3, 4, APPDEP_DIR_REQUEST, 4300 },
        { 2, 3, 4, APPDEP_DIR_RESPONSE, 5000 },
        { 1, 2, 3, APPDEP_DIR_RESPONSE, 6000 },
        { 0, 1, 0, APPDEP_DIR_RESPONSE, 7500 },
    };
    static const uint16_t sport[4] = { 0, 80, 8080, 5432 };
    uint64_t tree = i / BENCH_TREE_MSGS, r = mix(tree);
    unsigned j = i % BENCH_TREE_MSGS;
    /* the threads of each tier in this tree (app: one per call) */
    uint64_t pick[4][2] = {
        { r, r }, { tree, tree }, { 2 * tree, 2 * tree + 1 },
        { 2 * tree, 2 * tree + 1 },
    };
    unsigned call = plan[j].ex >= 3;
    const AppdepThreadId *cli = tier_thread(plan[j].cli,
                                            pick[plan[j].cli][call]);
    const AppdepThreadId *srv = tier_thread(plan[j].srv,
                                            pick[plan[j].srv][call]);
    uint64_t start = BENCH_T_BASE + tree * BENCH_TREE_MSGS * step_ns -
                     (jitter_ns ? (r >> 32) % jitter_ns : 0);
    uint64_t conn = tree * 5 + plan[j].ex;

    memset(m, 0, sizeof(*m));
    m->send_ns = start + plan[j].at_us * 1000ULL;
    m->recv_ns = m->send_ns + 50000;
    m->direction = plan[j].dir;
    m->sender = plan[j].dir == APPDEP_DIR_REQUEST ? *cli : *srv;
    m->receiver = plan[j].dir == APPDEP_DIR_REQUEST ? *srv : *cli;
    m->bytes = plan[j].dir == APPDEP_DIR_REQUEST ? 64 + (r & 0xff) : 1000;
    m->seq = (uint32_t)(conn * 7919);
    m->conn.family = APPDEP_FAMILY_IPV4;
    m->conn.caddr[0] = m->conn.saddr[0] = 10;
    m->conn.caddr[2] = (cli - threads) % BENCH_VMS;
    m->conn.saddr[2] = (srv - threads) % BENCH_VMS;
    m->conn.caddr[3] = (conn >> 16) & 0xff;
    m->conn.cport = 1024 + conn % 64000;
    m->conn.sport = sport[plan[j].srv];
}

static bool parse_sync(const char *name, AppdepStoreSync *sync)
{
    if (!strcmp(name, "durable")) {
        *sync = APPDEP_STORE_SYNC_DURABLE;
    } else if (!strcmp(name, "nometasync")) {
        *sync = APPDEP_STORE_SYNC_NOMETASYNC;
    } else if (!strcmp(name, "nosync")) {
        *sync = APPDEP_STORE_SYNC_NONE;
    } else {
        return false;
    }
    return true;
}

static void remove_store(const char *dir)
{
    g_autoptr(GDir) d = g_dir_open(dir, 0, NULL);
    const char *name;

    while (d && (name = g_dir_read_name(d))) {
        g_autofree char *p = g_build_filename(dir, name, NULL);
        g_unlink(p);
    }
    g_rmdir(dir);
}

static uint64_t file_size(const char *dir)
{
    g_autofree char *p = g_build_filename(dir, "data.mdb", NULL);
    GStatBuf st;

    return g_stat(p, &st) == 0 ? (uint64_t)st.st_size : 0;
}

/* Insert, print the rate; returns 0 or a store code. */
static int bench_insert(AppdepStore *s, const BenchOpts *o, const char *mode)
{
    g_autofree AppdepMessage *batch = g_new(AppdepMessage, o->batch);
    uint64_t step_ns = (uint64_t)o->span_s * APPDEP_NS_PER_S / o->count;
    uint64_t jitter_ns = (uint64_t)o->jitter_us * 1000;
    gint64 put_us = 0, t0 = g_get_monotonic_time(), wall_us;
    uint64_t done = 0;
    AppdepStoreStats st;
    int rc;

    while (done < (uint64_t)o->count) {
        size_t n = MIN((uint64_t)o->batch, o->count - done);
        gint64 t;
        size_t i;

        for (i = 0; i < n; i++) {
            make_message(&batch[i], done + i, step_ns, jitter_ns);
        }
        t = g_get_monotonic_time();
        rc = appdep_store_put_batch(s, batch, n);
        put_us += g_get_monotonic_time() - t;
        if (rc < 0) {
            return rc;
        }
        done += n;
    }
    wall_us = g_get_monotonic_time() - t0;
    appdep_store_stats(s, &st);
    printf("insert %-10s %" G_GUINT64_FORMAT " msgs, batch %d, %u threads: "
           "%.0f msgs/s committed (put_batch only), %.0f msgs/s with "
           "generation; map %" G_GUINT64_FORMAT " MiB after %"
           G_GUINT64_FORMAT " grows, file %" G_GUINT64_FORMAT " MiB\n",
           mode, done, o->batch, nthreads, done / (put_us / 1e6),
           done / (wall_us / 1e6), st.map_size >> 20, st.map_grows,
           file_size(o->dir) >> 20);
    return 0;
}

typedef int QueryFn(AppdepStore *s, uint64_t t0, GArray *out);

static int q_range(AppdepStore *s, uint64_t t0, GArray *out)
{
    return appdep_store_range(s, t0, t0 + BENCH_HOUR_NS, out, 0);
}

static int q_range_limit(AppdepStore *s, uint64_t t0, GArray *out)
{
    return appdep_store_range(s, t0, t0 + BENCH_HOUR_NS, out,
                              BENCH_QUERY_LIMIT);
}

static int q_thread(AppdepStore *s, uint64_t t0, GArray *out)
{
    const AppdepThreadId *t = &threads[nthreads / 2];

    return appdep_store_thread_range(s, t->vm, t->tid, t0,
                                     t0 + BENCH_HOUR_NS, out, 0);
}

static int cmp_i64(const void *a, const void *b)
{
    gint64 x = *(const gint64 *)a, y = *(const gint64 *)b;

    return x < y ? -1 : x > y;
}

static int time_query(AppdepStore *s, const char *name, QueryFn *fn,
                      uint64_t t0)
{
    g_autoptr(GArray) out = g_array_new(FALSE, FALSE, sizeof(AppdepMessage));
    gint64 us[BENCH_QUERY_REPEAT];
    unsigned i;
    int rc;

    for (i = 0; i < BENCH_QUERY_REPEAT; i++) {
        gint64 t = g_get_monotonic_time();

        g_array_set_size(out, 0);
        rc = fn(s, t0 + i * BENCH_HOUR_NS, out);
        us[i] = g_get_monotonic_time() - t;
        if (rc < 0) {
            return rc;
        }
    }
    qsort(us, BENCH_QUERY_REPEAT, sizeof(us[0]), cmp_i64);
    printf("query  %-22s %7u results: min %.3f ms, median %.3f ms, "
           "max %.3f ms\n", name, out->len, us[0] / 1e3,
           us[BENCH_QUERY_REPEAT / 2] / 1e3,
           us[BENCH_QUERY_REPEAT - 1] / 1e3);
    return 0;
}

static void print_lat(const char *name, gint64 *us, unsigned n,
                      const char *extra)
{
    qsort(us, n, sizeof(us[0]), cmp_i64);
    printf("query  %-34s %s: median %.3f ms, p99 %.3f ms, max %.3f ms "
           "(%u runs)\n", name, extra, us[n / 2] / 1e3,
           us[n * 99 / 100] / 1e3, us[n - 1] / 1e3, n);
}

/* The one-hour map, as the API builds it: range, exchanges, map. */
static int time_map(AppdepStore *s, uint64_t t0)
{
    gint64 us[BENCH_QUERY_REPEAT];
    guint nmsg = 0, nedge = 0;
    unsigned i;

    for (i = 0; i < BENCH_QUERY_REPEAT; i++) {
        g_autoptr(GArray) msgs = g_array_new(FALSE, FALSE,
                                             sizeof(AppdepMessage));
        uint64_t a = t0 + i * BENCH_HOUR_NS;
        gint64 t = g_get_monotonic_time();
        AppdepExchanges *x;
        GArray *edges;
        int rc;

        rc = appdep_store_range(s, a, a + BENCH_HOUR_NS, msgs, 0);
        if (rc < 0) {
            return rc;
        }
        x = appdep_exchanges_new((AppdepMessage *)msgs->data, msgs->len);
        edges = appdep_map_build(x, a, a + BENCH_HOUR_NS);
        us[i] = g_get_monotonic_time() - t;
        nmsg = msgs->len;
        nedge = edges->len;
        g_array_free(edges, TRUE);
        appdep_exchanges_free(x);
    }
    {
        g_autofree char *what = g_strdup_printf("%u msgs, %u edges", nmsg,
                                                nedge);

        print_lat("map 1 h", us, BENCH_QUERY_REPEAT, what);
    }
    return 0;
}

static unsigned tree_size(const AppdepTrajNode *n)
{
    unsigned k = 1;
    guint i;

    for (i = 0; i < n->children->len; i++) {
        k += tree_size(g_ptr_array_index(n->children, i));
    }
    return k;
}

/* One tree per root, through the thread index, over many roots. */
static int time_trajectories(AppdepStore *s, const BenchOpts *o)
{
    uint64_t step_ns = (uint64_t)o->span_s * APPDEP_NS_PER_S / o->count;
    uint64_t trees = o->count / BENCH_TREE_MSGS;
    unsigned n = MIN(BENCH_TRAJ_ROOTS, trees), i, full = 0;
    g_autofree gint64 *us = g_new(gint64, n ?: 1);

    if (!n) {
        return 0;
    }
    for (i = 0; i < n; i++) {
        uint64_t tree = trees * i / n;
        AppdepMessage req;
        AppdepTrajNode *t = NULL;
        gint64 t0;
        int rc;

        make_message(&req, tree * BENCH_TREE_MSGS, step_ns,
                     (uint64_t)o->jitter_us * 1000);
        t0 = g_get_monotonic_time();
        /* the window of an API query of the hour around it */
        rc = appdep_query_trajectory(s, req.send_ns - BENCH_HOUR_NS / 2,
                                     req.send_ns + BENCH_HOUR_NS / 2 +
                                     BENCH_API_MARGIN_NS, &req, &t);
        us[i] = g_get_monotonic_time() - t0;
        if (rc < 0) {
            return rc;
        }
        full += tree_size(t) == 5;
        appdep_traj_node_free(t);
    }
    {
        g_autofree char *what = g_strdup_printf("%u/%u trees complete", full,
                                                n);

        print_lat("trajectory of one root (query.c)", us, n, what);
    }

    /* the API's way: the window of one request and the margins */
    full = 0;
    for (i = 0; i < n; i++) {
        uint64_t tree = trees * i / n;
        AppdepMessage req;
        AppdepQueryWindow w;
        gint64 t0;
        int rc;

        make_message(&req, tree * BENCH_TREE_MSGS, step_ns,
                     (uint64_t)o->jitter_us * 1000);
        t0 = g_get_monotonic_time();
        rc = appdep_query_window(s, req.send_ns, req.send_ns + 1,
                                 BENCH_API_MARGIN_NS, APPDEP_API_MAX_MESSAGES,
                                 tier_thread(1, 0)->vm, NULL, 0, &w);
        if (rc < 0) {
            return rc;
        }
        if (w.roots->len) {
            AppdepTrajNode *t = appdep_trajectory_build(
                w.x, g_array_index(w.roots, guint, 0));

            full += tree_size(t) == 5;
            appdep_traj_node_free(t);
        }
        us[i] = g_get_monotonic_time() - t0;
        appdep_query_window_clear(&w);
    }
    {
        g_autofree char *what = g_strdup_printf(
            "%u/%u trees complete, margin %d s", full, n,
            APPDEP_API_TRAJ_MARGIN_S);

        print_lat("trajectory of one request (API)", us, n, what);
    }
    return 0;
}

/* The API's trajectory query of app @vm over [a, b): old and new way. */
static int time_api_traj(AppdepStore *s, const char *name, const char *vm,
                         uint64_t a, uint64_t b, bool old)
{
    gint64 us[BENCH_QUERY_REPEAT];
    guint nroots = 0;
    unsigned i, r;
    int rc;

    for (i = 0; i < BENCH_QUERY_REPEAT; i++) {
        uint64_t t0 = a + i * (b - a), t1 = t0 + (b - a);
        uint64_t w1 = t1 + BENCH_API_MARGIN_NS;
        gint64 t = g_get_monotonic_time();

        if (old) {
            AppdepQueryWindow w;

            rc = appdep_query_window(s, t0, t1, BENCH_API_MARGIN_NS, 0, vm,
                                     NULL, 0, &w);
            if (rc < 0) {
                return rc;
            }
            nroots = w.roots->len;
            for (r = 0; r < MIN(nroots, BENCH_API_LIMIT); r++) {
                appdep_traj_node_free(appdep_trajectory_build(
                    w.x, g_array_index(w.roots, guint, r)));
            }
            appdep_query_window_clear(&w);
        } else {
            g_autoptr(GArray) roots = g_array_new(FALSE, FALSE,
                                                  sizeof(AppdepMessage));

            rc = appdep_query_roots(s, t0, w1, vm, NULL, 0, t1, roots);
            for (r = 0; rc == 0 && r < MIN(roots->len, BENCH_API_LIMIT);
                 r++) {
                AppdepTrajNode *tree = NULL;

                rc = appdep_query_trajectory(
                    s, t0, w1, &g_array_index(roots, AppdepMessage, r),
                    &tree);
                appdep_traj_node_free(tree);
            }
            if (rc < 0) {
                return rc;
            }
            nroots = roots->len;
        }
        us[i] = g_get_monotonic_time() - t;
    }
    {
        g_autofree char *what = g_strdup_printf("%u roots, %d shown", nroots,
                                                BENCH_API_LIMIT);

        print_lat(name, us, BENCH_QUERY_REPEAT, what);
    }
    return 0;
}

static int bench_queries(AppdepStore *s, const BenchOpts *o)
{
    uint64_t t0 = BENCH_T_BASE + (uint64_t)o->span_s * APPDEP_NS_PER_S / 4;
    const char *web = tier_thread(1, 0)->vm;
    uint64_t n;
    gint64 t;
    int rc;

    t = g_get_monotonic_time();
    rc = appdep_store_count(s, &n);
    if (rc) {
        return rc;
    }
    printf("query  count                  %7" G_GUINT64_FORMAT
           " messages: %.3f ms\n", n, (g_get_monotonic_time() - t) / 1e3);
    rc = time_query(s, "range 1 h", q_range, t0);
    if (!rc) {
        rc = time_query(s, "range 1 h, limit 1000", q_range_limit, t0);
    }
    if (!rc) {
        rc = time_query(s, "thread_range 1 h", q_thread, t0);
    }
    if (!rc) {
        rc = time_map(s, t0);
    }
    if (!rc) {
        rc = time_trajectories(s, o);
    }
    if (!rc) {
        rc = time_api_traj(s, "trajectories 1 h, window (API)", web, t0,
                           t0 + BENCH_HOUR_NS, true);
    }
    if (!rc) {
        rc = time_api_traj(s, "trajectories 1 h, query.c", web, t0,
                           t0 + BENCH_HOUR_NS, false);
    }
    if (!rc) {
        rc = time_api_traj(s, "trajectories 1 min, window (API)", web,
                           t0, t0 + 60 * APPDEP_NS_PER_S, true);
    }
    if (!rc) {
        rc = time_api_traj(s, "trajectories 1 min, query.c", web, t0,
                           t0 + 60 * APPDEP_NS_PER_S, false);
    }
    return rc;
}

static int run(const BenchOpts *o, const char *mode, bool queries)
{
    AppdepStoreOptions opt = { 0 };
    g_autoptr(AppdepStore) s = NULL;
    int rc;

    if (!parse_sync(mode, &opt.sync)) {
        fprintf(stderr, "unknown --sync mode: %s\n", mode);
        return -EINVAL;
    }
    remove_store(o->dir);
    rc = appdep_store_open(&s, o->dir, &opt);
    if (!rc) {
        rc = bench_insert(s, o, mode);
    }
    if (!rc && queries) {
        rc = bench_queries(s, o);
    }
    if (rc < 0) {
        fprintf(stderr, "store: %s\n", appdep_store_strerror(rc));
    }
    g_clear_pointer(&s, appdep_store_close);
    if (!o->keep) {
        remove_store(o->dir);
    }
    return rc;
}

int main(int argc, char **argv)
{
    static const char *const all[] = { "durable", "nometasync", "nosync" };
    BenchOpts o = {
        .count = 10000000, .batch = 100000, .span_s = 86400,
        .jitter_us = 1000, .threads = 1024,
    };
    GOptionEntry entries[] = {
        { "count", 'n', 0, G_OPTION_ARG_INT64, &o.count,
          "messages to insert (10000000)", "N" },
        { "batch", 'b', 0, G_OPTION_ARG_INT, &o.batch,
          "messages per transaction (100000: the server commits the "
          "messages of one second at once)", "B" },
        { "sync", 's', 0, G_OPTION_ARG_STRING, &o.sync,
          "durable, nometasync, nosync or all (durable)", "MODE" },
        { "dir", 'd', 0, G_OPTION_ARG_FILENAME, &o.dir,
          "store directory (a fresh temporary one)", "DIR" },
        { "span", 0, 0, G_OPTION_ARG_INT64, &o.span_s,
          "seconds of traffic the messages cover (86400)", "S" },
        { "jitter-us", 0, 0, G_OPTION_ARG_INT64, &o.jitter_us,
          "up to how late a message arrives, us (1000)", "J" },
        { "threads", 't', 0, G_OPTION_ARG_INT, &o.threads,
          "distinct threads, over 16 VMs (1024)", "T" },
        { "queries", 'q', 0, G_OPTION_ARG_NONE, &o.queries,
          "then time range and thread_range queries", NULL },
        { "keep", 'k', 0, G_OPTION_ARG_NONE, &o.keep,
          "keep the store directory", NULL },
        { NULL }
    };
    g_autoptr(GOptionContext) ctx = g_option_context_new("- store benchmark");
    g_autoptr(GError) err = NULL;
    g_autofree char *tmp = NULL;
    unsigned i;
    int rc = 0;

    g_option_context_add_main_entries(ctx, entries, NULL);
    if (!g_option_context_parse(ctx, &argc, &argv, &err)) {
        fprintf(stderr, "%s\n", err->message);
        return 2;
    }
    if (o.count <= 0 || o.batch <= 0 || o.batch > BENCH_MAX_BATCH ||
        o.span_s <= 0 || o.jitter_us < 0 || o.threads < 1 ||
        o.threads > BENCH_MAX_THREADS) {
        fprintf(stderr, "bad arguments\n");
        return 2;
    }
    if (!o.dir) {
        tmp = g_dir_make_tmp("appdep-bench-store-XXXXXX", &err);
        if (!tmp) {
            fprintf(stderr, "%s\n", err->message);
            return 1;
        }
        o.dir = g_strdup(tmp);
    }
    init_threads(o.threads);

    if (!o.sync || strcmp(o.sync, "all")) {
        rc = run(&o, o.sync ?: "durable", o.queries);
    } else {
        for (i = 0; i < G_N_ELEMENTS(all) && !rc; i++) {
            rc = run(&o, all[i], o.queries && i == G_N_ELEMENTS(all) - 1);
        }
    }
    g_free(o.dir);
    g_free(o.sync);
    return rc ? 1 : 0;
}
