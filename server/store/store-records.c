/*
 * appdep server store: the per-thread record log (the rec database and the
 * batch: meta keys).
 *
 * Copyright (c) 2026 appdep authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include <errno.h>
#include <limits.h>
#include <stdatomic.h>
#include <string.h>
#include "store-int.h"


typedef struct RecCtx {
    AppdepStoreRecordBatch *b;
    size_t nb;
    uint64_t used;          /* out: uniq values taken */
} RecCtx;

/* One batch into the open transaction; *@uniq advances.  Writer. */
static int store_put_one_batch(AppdepStore *s, MDB_txn *txn,
                               AppdepStoreRecordBatch *b, uint64_t *uniq)
{
    char mkey[sizeof(STORE_META_BATCH) + APPDEP_FRAME_HOST_LEN + 1];
    uint64_t last = 0, last_ns = 0;
    MDB_cursor *cur;
    bool found;
    MDB_val k, d;
    size_t i;
    int rc;

    g_snprintf(mkey, sizeof(mkey), "%s%s", STORE_META_BATCH, b->host);
    /* an earlier batch of the same transaction is seen here too */
    rc = store_meta_get_u64(txn, s->meta_dbi, mkey, &last, &found);
    if (rc) {
        return rc;
    }
    b->duplicate = found && b->batch <= last;
    if (b->duplicate) {
        return 0;
    }
    if (b->n > UINT64_MAX - *uniq) {
        return -EOVERFLOW;
    }
    rc = mdb_cursor_open(txn, s->rec_dbi, &cur);
    if (rc) {
        return rc;
    }
    rc = mdb_cursor_get(cur, &k, &d, MDB_LAST);
    if (rc == 0 && k.mv_size == APPDEP_STORE_MSG_KEY_LEN) {
        last_ns = get_be64(k.mv_data);
    } else if (rc != MDB_NOTFOUND && rc != 0) {
        mdb_cursor_close(cur);
        return rc;
    }
    for (i = 0; i < b->n; i++) {
        uint8_t key[APPDEP_STORE_MSG_KEY_LEN];
        unsigned flags = MDB_RESERVE | MDB_NOOVERWRITE;

        /* as in msg: a record not older than the newest is appended */
        if (b->recs[i].time_ns >= last_ns) {
            flags |= MDB_APPEND;
            last_ns = b->recs[i].time_ns;
        }
        store_msg_key(key, b->recs[i].time_ns, (*uniq)++);
        k.mv_size = sizeof(key);
        k.mv_data = key;
        d.mv_size = APPDEP_WIRE_THREAD_LEN;
        rc = mdb_cursor_put(cur, &k, &d, flags);
        if (rc) {
            mdb_cursor_close(cur);
            return rc;
        }
        appdep_wire_encode_thread(&b->recs[i], d.mv_data);
    }
    mdb_cursor_close(cur);
    return store_meta_put_u64(txn, s->meta_dbi, mkey, b->batch);
}

static int store_put_records_txn(AppdepStore *s, MDB_txn *txn, void *opaque)
{
    RecCtx *ctx = opaque;
    uint64_t first = atomic_load(&s->next_uniq), uniq = first;
    size_t i;
    int rc;

    for (i = 0; i < ctx->nb; i++) {
        rc = store_put_one_batch(s, txn, &ctx->b[i], &uniq);
        if (rc) {
            return rc;
        }
    }
    ctx->used = uniq - first;
    return ctx->used ? store_meta_put_u64(txn, s->meta_dbi, STORE_META_UNIQ,
                                          uniq)
                     : 0;
}

int appdep_store_put_record_batches(AppdepStore *s,
                                    AppdepStoreRecordBatch *b, size_t nb)
{
    RecCtx ctx = { .b = b, .nb = nb };
    size_t i;
    int rc;

    for (i = 0; i < nb; i++) {
        if (!b[i].host || strlen(b[i].host) > APPDEP_FRAME_HOST_LEN ||
            !b[i].batch || (b[i].n && !b[i].recs)) {
            return -EINVAL;
        }
    }
    rc = store_write(s, store_put_records_txn, &ctx);
    if (rc) {
        return rc;
    }
    atomic_fetch_add(&s->next_uniq, ctx.used);
    return 0;
}

int appdep_store_put_records(AppdepStore *s, const AppdepThreadRecord *recs,
                             size_t n, const char *host, uint64_t batch)
{
    AppdepStoreRecordBatch b = {
        .recs = recs, .n = n, .host = host, .batch = batch,
    };
    int rc = appdep_store_put_record_batches(s, &b, 1);

    return rc ? rc : b.duplicate ? 1 : 0;
}

int appdep_store_last_batch(AppdepStore *s, const char *host, uint64_t *batch)
{
    char key[sizeof(STORE_META_BATCH) + APPDEP_FRAME_HOST_LEN + 1];
    MDB_txn *txn;
    bool found;
    int rc;

    *batch = 0;
    if (!host || strlen(host) > APPDEP_FRAME_HOST_LEN) {
        return -EINVAL;
    }
    g_snprintf(key, sizeof(key), "%s%s", STORE_META_BATCH, host);
    rc = store_begin(s, MDB_RDONLY, &txn);
    if (rc) {
        return store_err(rc);
    }
    rc = store_meta_get_u64(txn, s->meta_dbi, key, batch, &found);
    store_end_read(s, txn);
    return store_err(rc);
}

/* stored records are validated like any other input */
static bool append_record(GArray *out, const MDB_val *d, uint64_t time_ns)
{
    AppdepThreadRecord r;
    size_t used;

    if (appdep_wire_decode_thread(d->mv_data, d->mv_size, &r, &used) !=
        APPDEP_WIRE_OK || used != d->mv_size || r.time_ns != time_ns) {
        return false;
    }
    g_array_append_val(out, r);
    return true;
}

int appdep_store_records_range(AppdepStore *s, uint64_t t0, uint64_t t1,
                               GArray *out, size_t limit)
{
    if (!out || g_array_get_element_size(out) != sizeof(AppdepThreadRecord)) {
        return -EINVAL;
    }
    return store_scan_time_range(s, s->rec_dbi, t0, t1, out, limit,
                                 append_record);
}

int appdep_store_record_count(AppdepStore *s, uint64_t *n)
{
    return store_dbi_entries(s, s->rec_dbi, n);
}
