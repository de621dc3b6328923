/*
 * appdep server store: the writer thread's functions: put_batch, expire.
 *
 * Copyright (c) 2026 appdep authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include <errno.h>
#include <limits.h>
#include <stdatomic.h>
#include <string.h>
#include "store-int.h"

/*
 * Insert the batch's index entries (ctx->ends, ctx->vals: @n of them, in
 * key order) grouped per thread, threads in key order: each lands next
 * to the last one.
 */
static int put_thread_index(AppdepStore *s, MDB_txn *txn, PutCtx *ctx,
                            size_t n)
{
    g_autofree uint8_t *grouped = g_malloc(n * APPDEP_STORE_MSG_KEY_LEN ?: 1);
    g_autofree uint32_t *fill = NULL;
    GArray *th = ctx->threads;
    uint8_t last[STORE_INDEX_KEY_MAX];
    size_t last_len;
    MDB_val k, d;
    MDB_cursor *cur;
    uint32_t next = 0;
    size_t i;
    int rc;

    for (i = 0; i < th->len; i++) {
        IndexThread *it = &g_array_index(th, IndexThread, i);

        it->first = next;
        next += it->n;
    }
    fill = g_new0(uint32_t, th->len ?: 1);
    for (i = 0; i < n; i++) {
        const IndexThread *it = &g_array_index(th, IndexThread, ctx->ends[i]);
        uint8_t *dst = grouped + (size_t)(it->first + fill[ctx->ends[i]]) *
                                 APPDEP_STORE_MSG_KEY_LEN;
        const uint8_t *src = ctx->vals + i * APPDEP_STORE_MSG_KEY_LEN;

        /* a thread that sent to itself: one entry */
        if (fill[ctx->ends[i]] &&
            !memcmp(dst - APPDEP_STORE_MSG_KEY_LEN, src,
                    APPDEP_STORE_MSG_KEY_LEN)) {
            continue;
        }
        memcpy(dst, src, APPDEP_STORE_MSG_KEY_LEN);
        fill[ctx->ends[i]]++;
    }
    for (i = 0; i < th->len; i++) {
        g_array_index(th, IndexThread, i).n = fill[i];
    }
    g_array_sort(th, store_cmp_index_thread);    /* slots are stale now */

    rc = mdb_cursor_open(txn, s->thread_dbi, &cur);
    if (rc) {
        return rc;
    }
    /* keys after the last stored one (most: their bucket is new) append */
    rc = mdb_cursor_get(cur, &k, &d, MDB_LAST);
    if (rc == 0) {
        last_len = MIN(k.mv_size, sizeof(last));
        memcpy(last, k.mv_data, last_len);
    } else if (rc == MDB_NOTFOUND) {
        rc = 0;
        last_len = 0;
    }
    for (i = 0; i < th->len && !rc; i++) {
        const IndexThread *it = &g_array_index(th, IndexThread, i);
        bool append = !last_len ||
                      store_key_cmp(it->key, it->len, last, last_len) > 0;

        k.mv_size = it->len;
        k.mv_data = (void *)it->key;
        rc = store_index_add(cur, &k, grouped + (size_t)it->first *
                                APPDEP_STORE_MSG_KEY_LEN, it->n, append);
        if (append) {
            memcpy(last, it->key, it->len);
            last_len = it->len;
        }
    }
    mdb_cursor_close(cur);
    /* the threads not known to be listed in "threads" yet */
    for (i = 0; i < th->len && !rc; i++) {
        IndexThread *it = &g_array_index(th, IndexThread, i);
        uint8_t save = it->key[7];
        MDB_val k = { it->len - 8, it->key + 8 }, e = { 0, NULL };
        bool known;

        it->key[7] = it->len - 8;       /* len | vm | 0 | tid, in place */
        known = g_hash_table_contains(s->known, it->key + 7);
        if (!known) {
            g_ptr_array_add(ctx->fresh, g_memdup2(it->key + 7, it->len - 7));
        }
        it->key[7] = save;
        if (!known) {
            rc = mdb_put(txn, s->threads_dbi, &k, &e, MDB_NOOVERWRITE);
            if (rc == MDB_KEYEXIST) {
                rc = 0;
            }
        }
    }
    return rc;
}

static int store_put_txn(AppdepStore *s, MDB_txn *txn, void *opaque)
{
    PutCtx *ctx = opaque;
    uint64_t uniq = atomic_load(&s->next_uniq);
    uint64_t last_ns = 0;
    bool have_last = false;
    size_t nidx = 0;
    MDB_cursor *cur;
    MDB_val k, d;
    size_t i;
    int rc;

    if (ctx->n > UINT64_MAX - uniq) {
        return -EOVERFLOW;
    }
    /* this body may run again after a map growth: start afresh */
    g_array_set_size(ctx->threads, 0);
    g_ptr_array_set_size(ctx->fresh, 0);
    memset(ctx->slots, 0, ctx->nslots * sizeof(*ctx->slots));
    rc = mdb_cursor_open(txn, s->msg_dbi, &cur);
    if (rc) {
        return rc;
    }
    rc = mdb_cursor_get(cur, &k, &d, MDB_LAST);
    if (rc == 0 && k.mv_size == APPDEP_STORE_MSG_KEY_LEN) {
        last_ns = get_be64(k.mv_data);
        have_last = true;
    } else if (rc != MDB_NOTFOUND && rc != 0) {
        goto out;
    }

    for (i = 0; i < ctx->n; i++) {
        const AppdepMessage *m = &ctx->msgs[ctx->order[i]];
        uint8_t mkey[APPDEP_STORE_MSG_KEY_LEN];
        uint8_t val[APPDEP_STORE_VALUE_MAX];
        unsigned flags = MDB_NOOVERWRITE;

        /* time order is not the batch's order: fetch ahead */
        if (i + STORE_PREFETCH < ctx->n) {
            const char *p = (const char *)&ctx->msgs[ctx->order[i +
                                                               STORE_PREFETCH]];
            size_t off;

            for (off = 0; off < sizeof(*m); off += 64) {
                __builtin_prefetch(p + off);
            }
        }

        /*
         * uniq grows with every key, so a message not older than the
         * newest stored one sorts last: append it, which fills pages
         * completely instead of splitting them in half.
         */
        if (!have_last || m->send_ns >= last_ns) {
            flags |= MDB_APPEND;
        }
        store_msg_key(mkey, m->send_ns, uniq++);
        k.mv_size = sizeof(mkey);
        k.mv_data = mkey;
        d.mv_size = appdep_store_encode(m, val);
        d.mv_data = val;
        rc = mdb_cursor_put(cur, &k, &d, flags);
        if (rc) {
            goto out;
        }
        if (m->sender.tid) {
            ctx->ends[nidx] = store_index_thread(ctx, &m->sender, m->send_ns);
            g_array_index(ctx->threads, IndexThread, ctx->ends[nidx]).n++;
            memcpy(ctx->vals + nidx++ * APPDEP_STORE_MSG_KEY_LEN, mkey,
                   APPDEP_STORE_MSG_KEY_LEN);
        }
        if (m->receiver.tid) {
            ctx->ends[nidx] = store_index_thread(ctx, &m->receiver,
                                                 m->send_ns);
            g_array_index(ctx->threads, IndexThread, ctx->ends[nidx]).n++;
            memcpy(ctx->vals + nidx++ * APPDEP_STORE_MSG_KEY_LEN, mkey,
                   APPDEP_STORE_MSG_KEY_LEN);
        }
    }
    rc = put_thread_index(s, txn, ctx, nidx);
    if (!rc) {
        rc = store_meta_put_u64(txn, s->meta_dbi, STORE_META_UNIQ, uniq);
    }
out:
    mdb_cursor_close(cur);
    return rc;
}
int appdep_store_put_batch(AppdepStore *s, const AppdepMessage *msgs,
                           size_t n)
{
    g_autofree size_t *order = g_new(size_t, n ?: 1);
    g_autofree uint32_t *ends = NULL;
    g_autofree uint8_t *vals = NULL;
    g_autoptr(GArray) threads = NULL;
    g_autoptr(GPtrArray) fresh = g_ptr_array_new_with_free_func(g_free);
    PutCtx ctx = { .msgs = msgs, .order = order };
    size_t rejected;
    int rc;

    ctx.n = store_order_by_time(msgs, n, order);
    rejected = n - ctx.n;
    if (ctx.n == 0) {
        stat_add(&s->rejected, rejected);
        return MIN(rejected, (size_t)INT_MAX);
    }
    ctx.ends = ends = g_new(uint32_t, 2 * ctx.n);
    ctx.vals = vals = g_malloc(2 * ctx.n * APPDEP_STORE_MSG_KEY_LEN);
    ctx.threads = threads = g_array_new(FALSE, FALSE, sizeof(IndexThread));
    ctx.nslots = STORE_INDEX_SLOTS_MIN;
    ctx.slots = g_new0(uint32_t, ctx.nslots);
    ctx.fresh = fresh;

    rc = store_write(s, store_put_txn, &ctx);
    g_free(ctx.slots);      /* index_slots_grow() may have replaced it */
    if (rc) {
        return rc;
    }
    /* committed: remember them (a cache: emptied when it grows large) */
    if (g_hash_table_size(s->known) + fresh->len > APPDEP_STORE_KNOWN_MAX) {
        g_hash_table_remove_all(s->known);
    }
    while (fresh->len) {
        g_hash_table_add(s->known, g_ptr_array_steal_index_fast(fresh, 0));
    }
    atomic_fetch_add(&s->next_uniq, ctx.n);
    stat_add(&s->committed, ctx.n);
    stat_add(&s->rejected, rejected);
    return MIN(rejected, (size_t)INT_MAX);
}

typedef struct ExpireCtx {
    uint64_t cutoff_ns;
    uint64_t deleted;       /* out, this chunk */
    uint64_t corrupt;       /* out, this chunk */
    bool done;              /* out: nothing older left */
} ExpireCtx;

/* Delete one index entry; @mkey is its message's key. */
static int del_thread_value(AppdepStore *s, MDB_txn *txn,
                            const AppdepThreadId *t, const void *mkey)
{
    const size_t w = APPDEP_STORE_MSG_KEY_LEN;
    uint8_t key[STORE_INDEX_KEY_MAX];
    MDB_val k = { store_index_key(key, get_be64(mkey), t->vm, t->tid),
                  key }, d;
    g_autofree uint8_t *rest = NULL;
    size_t n, i;
    int rc = mdb_get(txn, s->thread_dbi, &k, &d);

    if (rc) {
        return rc == MDB_NOTFOUND ? 0 : rc;
    }
    n = d.mv_size / w;
    i = store_index_lower_bound(d.mv_data, n, get_be64(mkey));
    while (i < n && memcmp((uint8_t *)d.mv_data + i * w, mkey, w) < 0) {
        i++;
    }
    if (i == n || memcmp((uint8_t *)d.mv_data + i * w, mkey, w)) {
        return 0;
    }
    if (n == 1) {
        return mdb_del(txn, s->thread_dbi, &k, NULL);
    }
    /* d points into the map: copy what stays before writing it */
    rest = g_malloc((n - 1) * w);
    memcpy(rest, d.mv_data, i * w);
    memcpy(rest + i * w, (uint8_t *)d.mv_data + (i + 1) * w, (n - 1 - i) * w);
    d.mv_size = (n - 1) * w;
    d.mv_data = rest;
    return mdb_put(txn, s->thread_dbi, &k, &d, 0);
}

static int store_expire_txn(AppdepStore *s, MDB_txn *txn, void *opaque)
{
    ExpireCtx *ctx = opaque;
    MDB_cursor *cur;
    MDB_val k, d;
    int rc;

    ctx->deleted = ctx->corrupt = 0;
    ctx->done = false;
    rc = mdb_cursor_open(txn, s->msg_dbi, &cur);
    if (rc) {
        return rc;
    }
    while (ctx->deleted + ctx->corrupt < APPDEP_STORE_EXPIRE_CHUNK) {
        AppdepMessage m;
        uint8_t mkey[APPDEP_STORE_MSG_KEY_LEN];
        uint64_t send_ns;

        /* Always the oldest: we delete from the front. */
        rc = mdb_cursor_get(cur, &k, &d, MDB_FIRST);
        if (rc == MDB_NOTFOUND) {
            rc = 0;
            ctx->done = true;
            break;
        }
        if (rc) {
            break;
        }
        if (k.mv_size != APPDEP_STORE_MSG_KEY_LEN) {
            /* Not ours: a key of another length sorts anywhere. */
            ctx->corrupt++;
            rc = mdb_cursor_del(cur, 0);
            if (rc) {
                break;
            }
            continue;
        }
        send_ns = get_be64(k.mv_data);
        memcpy(mkey, k.mv_data, sizeof(mkey));
        if (send_ns >= ctx->cutoff_ns) {
            ctx->done = true;
            break;
        }
        if (appdep_store_decode(d.mv_data, d.mv_size, &m) == 0 &&
            m.send_ns == send_ns) {
            if (m.sender.tid) {
                rc = del_thread_value(s, txn, &m.sender, mkey);
            }
            if (!rc && m.receiver.tid) {
                rc = del_thread_value(s, txn, &m.receiver, mkey);
            }
            if (rc) {
                break;
            }
            ctx->deleted++;
        } else {
            ctx->corrupt++;
        }
        rc = mdb_cursor_del(cur, 0);
        if (rc) {
            break;
        }
    }
    mdb_cursor_close(cur);
    return rc;
}

int appdep_store_expire(AppdepStore *s, uint64_t now_ns)
{
    ExpireCtx ctx = { 0 };
    uint64_t corrupt = 0;
    int rc;

    if (!s->retention_ns || now_ns <= s->retention_ns) {
        return 0;
    }
    ctx.cutoff_ns = now_ns - s->retention_ns;
    do {
        rc = store_write(s, store_expire_txn, &ctx);
        if (rc) {
            return rc;
        }
        stat_add(&s->expired, ctx.deleted);
        stat_add(&s->corrupt, ctx.corrupt);
        corrupt += ctx.corrupt;
    } while (!ctx.done);
    return MIN(corrupt, (uint64_t)INT_MAX);
}

