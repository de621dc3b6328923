/*
 * appdep-bench-store: insert rate and query latency of the LMDB store
 * (server/store.c).  Figures, not a test.
 *
 *   appdep-bench-store [--count N] [--batch B] [--sync MODE] [--dir DIR]
 *                      [--span S] [--jitter-us J] [--threads T]
 *                      [--queries] [--keep]
 *
 * Inserts N synthetic messages (T threads over 16 VMs, both ends of every
 * message seen, so two thread keys each) spread evenly over S seconds,
 * each up to J us late, in batches of B, and prints the committed rate.
 * MODE: durable (default), nometasync, nosync, or all (one fresh store
 * per mode).  With --queries it times a one-hour range scan, the same
 * with a limit, and a one-hour thread_range, on the last store.
 *
 * Copyright (c) 2026 appdep authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <glib.h>
#include <glib/gstdio.h>
#include "store.h"

#define BENCH_VMS           16
#define BENCH_MAX_THREADS   (BENCH_VMS * 1024)
#define BENCH_T_BASE        1700000000000000000ULL
#define BENCH_NS_PER_S      1000000000ULL
#define BENCH_HOUR_NS       (3600ULL * BENCH_NS_PER_S)
#define BENCH_QUERY_REPEAT  5
#define BENCH_QUERY_LIMIT   1000
#define BENCH_MAX_BATCH     (1 << 20)

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

static void make_message(AppdepMessage *m, uint64_t i, uint64_t step_ns,
                         uint64_t jitter_ns)
{
    uint64_t r = mix(i);
    unsigned a = r % nthreads;
    unsigned b = (r >> 16) % nthreads;

    memset(m, 0, sizeof(*m));
    m->send_ns = BENCH_T_BASE + i * step_ns -
                 (jitter_ns ? (r >> 32) % jitter_ns : 0);
    m->recv_ns = m->send_ns + 50000;
    m->sender = threads[a];
    m->receiver = threads[b];
    m->direction = i & 1 ? APPDEP_DIR_RESPONSE : APPDEP_DIR_REQUEST;
    m->bytes = r & 0xffff;
    m->seq = r >> 32;
    m->conn.family = APPDEP_FAMILY_IPV4;
    m->conn.caddr[0] = 10;
    m->conn.caddr[3] = a % BENCH_VMS;
    m->conn.saddr[0] = 10;
    m->conn.saddr[3] = b % BENCH_VMS;
    m->conn.cport = 32768 + (r & 0x7fff);
    m->conn.sport = 8080;
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
    uint64_t step_ns = (uint64_t)o->span_s * BENCH_NS_PER_S / o->count;
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

static int bench_queries(AppdepStore *s, const BenchOpts *o)
{
    uint64_t t0 = BENCH_T_BASE + (uint64_t)o->span_s * BENCH_NS_PER_S / 4;
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
        .count = 2000000, .batch = 4096, .span_s = 86400, .jitter_us = 1000,
        .threads = 1024,
    };
    GOptionEntry entries[] = {
        { "count", 'n', 0, G_OPTION_ARG_INT64, &o.count,
          "messages to insert (2000000)", "N" },
        { "batch", 'b', 0, G_OPTION_ARG_INT, &o.batch,
          "messages per transaction (4096)", "B" },
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
