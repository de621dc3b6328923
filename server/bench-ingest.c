/*
 * appdep-bench-ingest: per-thread records converted and committed per
 * second, on one core (figures, not a test).
 *
 *   appdep-bench-ingest [--exchanges N] [--conns C] [--sync MODE]
 *
 * Synthesises the records of N request/response exchanges between
 * client and server threads of 16 VMs (each exchange: a send and a
 * receive on each side, so 4 per-thread records and 2 inter-thread
 * messages), then times: the conversion alone, and conversion plus
 * commit in the server's batching (flush every 4096 records, put_batch
 * every --commit-every records), with the share of put_batch; then the
 * record log the server also keeps (put_records), one commit per
 * forwarder frame of 1024 records and one per --commit-every records.
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

int main(int argc, char **argv)
{
    gint64 nex = 500000, nconns = 2000, commit_every = 200000;
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
        { NULL }
    };
    g_autofree AppdepThreadRecord *recs = NULL;
    g_autoptr(GArray) msgs = g_array_new(FALSE, FALSE, sizeof(AppdepMessage));
    g_autofree char *dir = NULL;
    AppdepStoreOptions opt = { 0 };
    AppdepConverter *cv;
    AppdepStore *store = NULL;
    uint64_t nmsg = 0, t = 1700000000ULL * 1000000000ULL;
    size_t nrec, i, k = 0;
    gint64 t0, t1, t2, t3, tc, commit_us = 0, rec_us[2];
    int rc;

    ctx = g_option_context_new(NULL);
    g_option_context_add_main_entries(ctx, entries, NULL);
    if (!g_option_context_parse(ctx, &argc, &argv, &err) || nex < 1 ||
        nconns < 1 || nconns > 60000 || commit_every < 1) {
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

    /* 1: conversion alone */
    cv = appdep_converter_new(count_msg, &nmsg);
    t0 = g_get_monotonic_time();
    for (i = 0; i < nrec; i++) {
        appdep_converter_feed(cv, &recs[i]);
        if (i % BENCH_FLUSH_EVERY == BENCH_FLUSH_EVERY - 1) {
            appdep_converter_flush(cv, false);
        }
    }
    appdep_converter_flush(cv, true);
    t1 = g_get_monotonic_time();
    appdep_converter_free(cv);

    /* 2 and 3: conversion with commits, as the server batches them */
    dir = g_dir_make_tmp("appdep-bench-ingest-XXXXXX", &err);
    if (!dir || (rc = appdep_store_open(&store, dir, &opt))) {
        fprintf(stderr, "appdep-bench-ingest: cannot open a store\n");
        return 1;
    }
    cv = appdep_converter_new(keep_msg, msgs);
    t2 = g_get_monotonic_time();
    for (i = 0; i < nrec; i++) {
        appdep_converter_feed(cv, &recs[i]);
        if (i % BENCH_FLUSH_EVERY == BENCH_FLUSH_EVERY - 1) {
            appdep_converter_flush(cv, false);
        }
        if (i % commit_every == (size_t)commit_every - 1 || i == nrec - 1) {
            appdep_converter_flush(cv, i == nrec - 1);
            tc = g_get_monotonic_time();
            rc = appdep_store_put_batch(store, (AppdepMessage *)msgs->data,
                                        msgs->len);
            commit_us += g_get_monotonic_time() - tc;
            if (rc < 0) {
                fprintf(stderr, "appdep-bench-ingest: %s\n",
                        appdep_store_strerror(rc));
                return 1;
            }
            g_array_set_size(msgs, 0);
        }
    }
    t3 = g_get_monotonic_time();
    appdep_converter_free(cv);

    /*
     * 4: the record log the server commits before acknowledging each
     * frame (put_records), one durable commit per forwarder frame, and
     * with the frames of a whole commit interval merged into one.
     */
    for (k = 0; k < 2; k++) {
        size_t per = k ? (size_t)commit_every : BENCH_FRAME_RECORDS;
        uint64_t batch = 1;
        gint64 t = g_get_monotonic_time();

        for (i = 0; i < nrec; i += per) {
            rc = appdep_store_put_records(store, &recs[i], MIN(per, nrec - i),
                                          k ? "merged" : "frames", batch++);
            if (rc < 0) {
                fprintf(stderr, "appdep-bench-ingest: %s\n",
                        appdep_store_strerror(rc));
                return 1;
            }
        }
        rec_us[k] = g_get_monotonic_time() - t;
    }
    appdep_store_close(store);
    {
        g_autofree char *cmd = g_strdup_printf("rm -rf '%s'", dir);

        if (system(cmd)) {
            fprintf(stderr, "appdep-bench-ingest: cannot remove %s\n", dir);
        }
    }

    printf("%zu per-thread records -> %" G_GUINT64_FORMAT " inter-thread "
           "messages, %" G_GINT64_FORMAT " connections, %s commits every %"
           G_GINT64_FORMAT " records\n", nrec, nmsg, nconns,
           opt.sync == APPDEP_STORE_SYNC_NONE ? "nosync" : "durable",
           commit_every);
    printf("  conversion only:      %10.0f records/s  %10.0f messages/s\n",
           nrec / ((t1 - t0) / 1e6), nmsg / ((t1 - t0) / 1e6));
    printf("  conversion + commit:  %10.0f records/s  %10.0f messages/s\n",
           nrec / ((t3 - t2) / 1e6), nmsg / ((t3 - t2) / 1e6));
    printf("  of which put_batch:   %10.0f records/s  %10.0f messages/s"
           "  (%.0f%% of the time)\n", nrec / (commit_us / 1e6),
           nmsg / (commit_us / 1e6), 100.0 * commit_us / (t3 - t2));
    printf("  record log, one commit per %d-record frame: %10.0f records/s\n",
           BENCH_FRAME_RECORDS, nrec / (rec_us[0] / 1e6));
    printf("  record log, one commit per %" G_GINT64_FORMAT " records: "
           "%10.0f records/s\n", commit_every, nrec / (rec_us[1] / 1e6));
    return 0;
}
