/*
 * appdep-fwd: sealed batches, the queue and the spool policy.
 *
 * Batches.  Numbers increase by one per batch that is kept (memory or
 * spool) for the whole life of the spool directory, across restarts (a
 * restart may skip up to APPDEP_SPOOL_BATCH_RESERVE numbers).  A batch
 * stays in the daemon's hands until an ACK covers it (ACK n: every batch
 * <= n is committed).  After a reconnect every unacknowledged batch is
 * sent again, in order, with its old number, before anything newer: the
 * server may see a batch twice, always under the same number, and drops
 * any batch whose number is <= the highest it committed for this host.
 *
 * Where a new batch goes: to the in-memory queue when connected, when
 * nothing spooled is waiting and when the queue is under queue-max-bytes;
 * otherwise appended to the spool (spool.h); when the spool is full it is
 * dropped and its records counted.  The queue is refilled from the spool,
 * oldest first, as ACKs free it, so the order on the wire is the batch
 * order.
 *
 * Main-loop thread only.
 *
 * Copyright (c) 2026 appdep authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include <inttypes.h>
#include "fwd.h"

void fwd_batch_free(FwdBatch *b)
{
    if (b) {
        g_free(b->frame);
        g_free(b);
    }
}

static void fwd_queue_push(Fwd *f, FwdBatch *b)
{
    g_queue_push_tail(&f->queue, b);
    f->queue_bytes += b->len;
    if (!f->unsent) {
        f->unsent = f->queue.tail;
    }
}

int fwd_acked(Fwd *f, uint64_t batch)
{
    FwdBatch *b;

    while ((b = g_queue_peek_head(&f->queue)) && b->batch <= batch) {
        g_assert(f->unsent != f->queue.head && b != f->wbatch);
        g_queue_pop_head(&f->queue);
        f->queue_bytes -= b->len;
        f->records_acked += b->count;
        fwd_batch_free(b);
    }
    return appdep_spool_ack(f->spool, batch);
}

void fwd_refill(Fwd *f)
{
    while (fwd_connected(f) && f->queue_bytes < f->queue_max &&
           appdep_spool_has_unread(f->spool)) {
        FwdBatch *b = g_new0(FwdBatch, 1);
        int ret;

        ret = appdep_spool_read(f->spool, &b->frame, &b->len, &b->batch);
        if (ret <= 0) {
            g_free(b);
            if (ret < 0) {
                appdep_log(APPDEP_LOG_WARN, "spool: %s",
                           appdep_spool_error(f->spool));
                continue;
            }
            break;
        }
        b->count = appdep_wire_get32(b->frame + 24);
        b->on_disk = true;
        fwd_queue_push(f, b);
    }
    if (!appdep_spool_has_unread(f->spool) && f->spooling) {
        f->spooling = false;
        appdep_log(APPDEP_LOG_INFO,
                   "spool drained: new batches go straight to the server");
    }
}

int fwd_seal(Fwd *f)
{
    uint32_t count = f->open_count;
    size_t len = appdep_frame_batch_len(count);
    int queued = 0;
    int ret;

    fwd_clear_timer(&f->batch_timer);
    if (!count) {
        return 0;
    }
    f->open_count = 0;
    appdep_frame_encode_batch_header(f->next_batch, count, f->open, len);

    if (fwd_connected(f) && !appdep_spool_has_unread(f->spool) &&
        f->queue_bytes + len <= f->queue_max) {
        FwdBatch *b = g_new0(FwdBatch, 1);

        b->batch = f->next_batch++;
        b->count = count;
        b->len = len;
        b->frame = g_realloc(g_steal_pointer(&f->open), len);
        f->open = g_malloc(appdep_frame_batch_len(f->batch_records));
        fwd_queue_push(f, b);
        queued = 1;
    } else {
        ret = appdep_spool_append(f->spool, f->open, len, f->next_batch,
                                  false);
        if (ret < 0) {
            f->records_dropped += count;
            f->batches_dropped++;
            if (!f->dropping) {
                f->dropping = true;
                appdep_log(APPDEP_LOG_WARN,
                           "spool: %s: dropping batches (records counted)",
                           appdep_spool_error(f->spool));
            }
            return 0;
        }
        if (!f->spooling) {
            f->spooling = true;
            appdep_log(APPDEP_LOG_INFO,
                       "spooling batches from %" PRIu64 " (server %s)",
                       f->next_batch,
                       fwd_connected(f) ? "busy" : "unreachable");
        }
        f->dropping = false;
        f->next_batch++;
        f->records_spooled += count;
    }
    ret = appdep_spool_reserve(f->spool, f->next_batch);
    if (ret < 0) {
        appdep_log(APPDEP_LOG_WARN, "spool: %s", appdep_spool_error(f->spool));
    }
    return queued;
}

void fwd_spool_queue(Fwd *f)
{
    bool new_run = true;
    uint64_t saved = 0, lost = 0;
    GList *l;

    for (l = f->queue.head; l; l = l->next) {
        FwdBatch *b = l->data;

        if (b->on_disk) {
            new_run = true;
            continue;
        }
        if (appdep_spool_append(f->spool, b->frame, b->len, b->batch,
                                new_run) < 0) {
            appdep_log(APPDEP_LOG_WARN,
                       "shutdown: batch %" PRIu64 " not spooled: %s",
                       b->batch, appdep_spool_error(f->spool));
            f->records_dropped += b->count;
            f->batches_dropped++;
            lost++;
            new_run = true;
            continue;
        }
        f->records_spooled += b->count;
        saved++;
        new_run = false;
    }
    if (saved || lost) {
        appdep_log(APPDEP_LOG_INFO, "shutdown: %" PRIu64 " unacknowledged "
                   "batches spooled for replay, %" PRIu64 " lost",
                   saved, lost);
    }
}
