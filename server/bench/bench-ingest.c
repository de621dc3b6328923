/*
 * appdep-bench-ingest: per-thread records converted and committed per
 * second, on one core (figures, not a test).
 *
 *   appdep-bench-ingest [--exchanges N] [--conns C] [--sync MODE]
 *                       [--commit-every N] [--rounds N] [--no-record-log]
 *
 * Synthesises the records of N request/response exchanges between
 * client and server threads of 16 VMs (each exchange: a send and a
 * receive on each side, so 4 per-thread records and 2 inter-thread
 * messages), then times, --rounds times (medians printed): the
 * conversion alone, and end to end: conversion plus durable commit in
 * the server's batching (flush every 4096 records, put_batch every
 * --commit-every records, into a new store each round), with the share
 * of put_batch; then the record log the server also keeps
 * (put_records), one commit per forwarder frame of 1024 records and one
 * per --commit-every records.
 *
 * Copyright (c) 2026 appdep authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include <glib/gstdio.h>
#include <stdio.h>
#include <string.h>
#include "convert.h"
#include "store.h"

#define BENCH_VMS           16
#define BENCH_FLUSH_EVERY   4096    /* converter flushes, records */
#define BENCH_FRAME_RECORDS 1024    /* appdep-fwd's default batch */
#define BENCH_GROUP_RECORDS 65536   /* net.c's group commit, at most */

static AppdepThreadRecord rec(unsigned vm, unsigned peer, uint32_t tid,
                              uint8_t op, uint16_t lport, uint16_t rport,
                              uint64_t t, uint32_t seq, uint64_t bytes)
{
    AppdepThreadRecord r;

    memset(&r, 0, sizeof(r));
    g_snprintf(r.vm, sizeof(r.vm), "vm%u", vm);
    g_strlcpy(r.comm, vm % 2 ? "server" : "client", sizeof(r.comm));
    r.pid = tid - tid % 8;
    r.tid = tid;
    r.op = op;
    r.family = APPDEP_FAMILY_IPV4;
    r.saddr[0] = r.daddr[0] = 10;
    r.saddr[3] = vm + 1;
    r.daddr[3] = peer + 1;
    r.sport = lport;
    r.dport = rport;
    r.time_ns = t;
    r.seq = seq;
    r.bytes = bytes;
    return r;
}

static void count_msg(const AppdepMessage *m, void *opaque)
{
    (*(uint64_t *)opaque)++;
}

static void keep_msg(const AppdepMessage *m, void *opaque)
{
    g_array_append_val((GArray *)opaque, *m);
}

static gint cmp_double(gconstpointer a, gconstpointer b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

static double median(double *v, size_t n)
{
    qsort(v, n, sizeof(*v), (int (*)(const void *, const void *))cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static void remove_dir(const char *dir)
{
    g_autofree char *cmd = g_strdup_printf("rm -rf '%s'", dir);

    if (system(cmd)) {
        fprintf(stderr, "appdep-bench-ingest: cannot remove %s\n", dir);
    }
}

/* Conversion alone; seconds. */
static double run_convert(const AppdepThreadRecord *recs, size_t nrec,
                          uint64_t *nmsg)
{
    AppdepConverter *cv = appdep_converter_new(count_msg, nmsg);
    gint64 t0 = g_get_monotonic_time();
    size_t i;

    *nmsg = 0;
    for (i = 0; i < nrec; i++) {
        appdep_converter_feed(cv, &recs[i]);
        if (i % BENCH_FLUSH_EVERY == BENCH_FLUSH_EVERY - 1) {
            appdep_converter_flush(cv, false);
        }
    }
    appdep_converter_flush(cv, true);
    t0 = g_get_monotonic_time() - t0;
    appdep_converter_free(cv);
    return t0 / 1e6;
}

/*
 * Conversion with durable commits, as the server batches them, into a
 * new store: seconds in all (*@total) and in put_batch (*@put).  0 or -1.
 */
static int run_ingest(const AppdepThreadRecord *recs, size_t nrec,
                      size_t commit_every, const AppdepStoreOptions *opt,
                      double *total, double *put, uint64_t *nmsg)
{
    g_autoptr(GArray) msgs = g_array_new(FALSE, FALSE, sizeof(AppdepMessage));
    g_autoptr(GError) err = NULL;
    g_autofree char *dir = g_dir_make_tmp("appdep-bench-ingest-XXXXXX", &err);
    AppdepStore *store = NULL;
    AppdepConverter *cv;
    gint64 t0, tc, put_us = 0;
    size_t i;
    int rc;

    if (!dir || appdep_store_open(&store, dir, opt)) {
        fprintf(stderr, "appdep-bench-ingest: cannot open a store\n");
        return -1;
    }
    *nmsg = 0;
    cv = appdep_converter_new(keep_msg, msgs);
    t0 = g_get_monotonic_time();
    for (i = 0; i < nrec; i++) {
        appdep_converter_feed(cv, &recs[i]);
        if (i % BENCH_FLUSH_EVERY == BENCH_FLUSH_EVERY - 1) {
            appdep_converter_flush(cv, false);
        }
        if (i % commit_every == commit_every - 1 || i == nrec - 1) {
            appdep_converter_flush(cv, i == nrec - 1);
            tc = g_get_monotonic_time();
            rc = appdep_store_put_batch(store, (AppdepMessage *)msgs->data,
                                        msgs->len);
            put_us += g_get_monotonic_time() - tc;
            if (rc < 0) {
                fprintf(stderr, "appdep-bench-ingest: %s\n",
                        appdep_store_strerror(rc));
                return -1;
            }
            *nmsg += msgs->len;
            g_array_set_size(msgs, 0);
        }
    }
    *total = (g_get_monotonic_time() - t0) / 1e6;
    *put = put_us / 1e6;
    appdep_converter_free(cv);
    appdep_store_close(store);
    remove_dir(dir);
    return 0;
}

/*
 * The record log the server commits before acknowledging each frame
 * (put_records), @per records per durable commit; seconds, or < 0.
 */
static double run_record_log(const AppdepThreadRecord *recs, size_t nrec,
                             size_t per, const AppdepStoreOptions *opt)
{
    g_autoptr(GError) err = NULL;
    g_autofree char *dir = g_dir_make_tmp("appdep-bench-ingest-XXXXXX", &err);
    AppdepStore *store = NULL;
    uint64_t batch = 1;
    gint64 t0;
    size_t i;
    int rc;

    if (!dir || appdep_store_open(&store, dir, opt)) {
        fprintf(stderr, "appdep-bench-ingest: cannot open a store\n");
        return -1;
    }
    t0 = g_get_monotonic_time();
    for (i = 0; i < nrec; i += per) {
        rc = appdep_store_put_records(store, &recs[i], MIN(per, nrec - i),
                                      "fwd", batch++);
        if (rc < 0) {
            fprintf(stderr, "appdep-bench-ingest: %s\n",
                    appdep_store_strerror(rc));
            return -1;
        }
    }
    t0 = g_get_monotonic_time() - t0;
    appdep_store_close(store);
    remove_dir(dir);
    return t0 / 1e6;
}

int main(int argc, char **argv)
{
    gint64 nex = 500000, nconns = 2000, commit_every = 200000;
    gint64 rounds = 1;
    gboolean no_log = FALSE;
    g_autofree char *sync = NULL;
    g_autoptr(GError) err = NULL;
    g_autoptr(GOptionContext) ctx = NULL;
    GOptionEntry entries[] = {
        { "exchanges", 'n', 0, G_OPTION_ARG_INT64, &nex,
          "request/response exchanges (500000)", "N" },
        { "conns", 'c', 0, G_OPTION_ARG_INT64, &nconns,
          "concurrent connections (2000)", "C" },
        { "sync", 's', 0, G_OPTION_ARG_STRING, &sync,
          "durable (default) or nosync", "MODE" },
        { "commit-every", 'e', 0, G_OPTION_ARG_INT64, &commit_every,
          "records between two commits (200000: the server commits once "
          "a second, and the synthetic traffic is 200000 records/s)", "N" },
        { "rounds", 'r', 0, G_OPTION_ARG_INT64, &rounds,
          "rounds of conversion and ingest; medians are printed (1)", "N" },
        { "no-record-log", 0, 0, G_OPTION_ARG_NONE, &no_log,
          "skip the record log figures (for profiling)", NULL },
        { NULL }
    };
    g_autofree AppdepThreadRecord *recs = NULL;
    g_autofree double *conv_s = NULL, *e2e_s = NULL, *put_s = NULL;
    AppdepStoreOptions opt = { 0 };
    uint64_t nmsg = 0, ncommitted = 0, t = 1700000000ULL * APPDEP_NS_PER_S;
    size_t nrec, i, k = 0;
    gint64 r;
    double share;

    ctx = g_option_context_new(NULL);
    g_option_context_add_main_entries(ctx, entries, NULL);
    if (!g_option_context_parse(ctx, &argc, &argv, &err) || nex < 1 ||
        nconns < 1 || nconns > 60000 || commit_every < 1 || rounds < 1 ||
        rounds > 100) {
        fprintf(stderr, "appdep-bench-ingest: bad arguments (try --help)\n");
        return 2;
    }
    if (sync && !strcmp(sync, "nosync")) {
        opt.sync = APPDEP_STORE_SYNC_NONE;
    } else if (sync && strcmp(sync, "durable")) {
        fprintf(stderr, "appdep-bench-ingest: --sync durable|nosync\n");
        return 2;
    }

    nrec = 4 * (size_t)nex;
    recs = g_new(AppdepThreadRecord, nrec);
    for (i = 0; i < (size_t)nex; i++) {
        unsigned c = i % nconns, cvm = 2 * (c % (BENCH_VMS / 2));
        unsigned svm = cvm + 1;
        uint32_t cseq = 1000 + (uint32_t)(i / nconns) * 64;
        uint32_t sseq = 9000 + (uint32_t)(i / nconns) * 200;
        uint16_t cport = 32768 + c;

        t += 20000;     /* 50k exchanges per second of traffic */
        recs[k++] = rec(cvm, svm, 100 + c, APPDEP_OP_SEND, cport, 8080, t,
                        cseq, 64);
        recs[k++] = rec(svm, cvm, 5000 + c % 256, APPDEP_OP_RECV, 8080,
                        cport, t + 1000, cseq, 64);
        recs[k++] = rec(svm, cvm, 5000 + c % 256, APPDEP_OP_SEND, 8080,
                        cport, t + 5000, sseq, 200);
        recs[k++] = rec(cvm, svm, 100 + c, APPDEP_OP_RECV, cport, 8080,
                        t + 6000, sseq, 200);
    }

    printf("%zu per-thread records, %" G_GINT64_FORMAT " connections, %s "
           "commits every %" G_GINT64_FORMAT " records, %" G_GINT64_FORMAT
           " rounds\n", nrec, nconns,
           opt.sync == APPDEP_STORE_SYNC_NONE ? "nosync" : "durable",
           commit_every, rounds);
    conv_s = g_new(double, rounds);
    e2e_s = g_new(double, rounds);
    put_s = g_new(double, rounds);
    for (r = 0; r < rounds; r++) {
        conv_s[r] = run_convert(recs, nrec, &nmsg);
        if (run_ingest(recs, nrec, commit_every, &opt, &e2e_s[r], &put_s[r],
                       &ncommitted) < 0) {
            return 1;
        }
        printf("  round %" G_GINT64_FORMAT ": conversion %.0f msg/s, end to "
               "end %.0f msg/s, put_batch %.0f msg/s\n", r + 1,
               nmsg / conv_s[r], ncommitted / e2e_s[r],
               ncommitted / put_s[r]);
    }
    share = median(put_s, rounds) / median(e2e_s, rounds);
    printf("%zu per-thread records -> %" G_GUINT64_FORMAT " inter-thread "
           "messages (medians of %" G_GINT64_FORMAT " rounds)\n", nrec, nmsg,
           rounds);
    printf("  conversion only:         %10.0f records/s  %10.0f messages/s\n",
           nrec / median(conv_s, rounds), nmsg / median(conv_s, rounds));
    printf("  end to end, conversion + durable commit:\n"
           "                           %10.0f records/s  %10.0f messages/s "
           "committed\n", nrec / median(e2e_s, rounds),
           ncommitted / median(e2e_s, rounds));
    printf("  put_batch alone:         %10.0f records/s  %10.0f messages/s"
           "  (%.0f%% of end to end)\n", nrec / median(put_s, rounds),
           ncommitted / median(put_s, rounds), 100.0 * share);
    if (!no_log) {
        double frames = run_record_log(recs, nrec, BENCH_FRAME_RECORDS, &opt);
        double group = run_record_log(recs, nrec, BENCH_GROUP_RECORDS, &opt);
        double e2e = median(e2e_s, rounds);

        if (frames < 0 || group < 0) {
            return 1;
        }
        printf("  record log, one commit per %d-record frame: %10.0f "
               "records/s\n", BENCH_FRAME_RECORDS, nrec / frames);
        printf("  record log, group commit of %d records:  %10.0f "
               "records/s\n", BENCH_GROUP_RECORDS, nrec / group);
        /* what one server core does per record: the three stages */
        printf("  whole server path (record log in groups, conversion, "
               "commit), stages summed:\n"
               "                           %10.0f records/s  %10.0f "
               "messages/s\n", nrec / (group + e2e),
               ncommitted / (group + e2e));
    }
    return 0;
}
