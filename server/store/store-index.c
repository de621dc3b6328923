/*
 * appdep server store: the in-memory algorithms of a write: key
 * builders, the batch's thread lookup table (PutCtx), the merge of index
 * values and the time order of a batch.  Why not GHashTable and qsort:
 * the lookup table and the radix sort are what bench-ingest measured
 * fastest for a batch (docs/server.md, the ingest figures).  Any thread;
 * store_index_add() runs inside the caller's write transaction.
 *
 * Copyright (c) 2026 appdep authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include <string.h>
#include "hash.h"
#include "store-int.h"

/* ---- keys ---- */

void store_msg_key(uint8_t key[APPDEP_STORE_MSG_KEY_LEN], uint64_t send_ns,
                    uint64_t uniq)
{
    put_be64(key, send_ns);
    put_be64(key + 8, uniq);
}

/* vm | 0 | tid BE: the prefix of a thread's keys; returns its length. */
size_t store_thread_prefix(uint8_t *key, const char *vm, uint32_t tid)
{
    size_t vlen = strnlen(vm, APPDEP_WIRE_VM_LEN);

    memcpy(key, vm, vlen);
    key[vlen] = 0;
    put_be32(key + vlen + 1, tid);
    return vlen + 1 + 4;
}

/*
 * bucket BE | vm | 0 | tid BE: a key of the thread index, holding the
 * thread's messages sent in that bucket of time; returns its length.
 */
size_t store_index_key(uint8_t *key, uint64_t send_ns, const char *vm,
                        uint32_t tid)
{
    put_be64(key, send_ns >> STORE_INDEX_BUCKET_SHIFT);
    return 8 + store_thread_prefix(key + 8, vm, tid);
}

/* The keys of AppdepStore.known: len | bytes. */
guint store_known_hash(gconstpointer p)
{
    const uint8_t *k = p;

    return appdep_hash_bytes(k, (size_t)k[0] + 1);
}

gboolean store_known_equal(gconstpointer a, gconstpointer b)
{
    const uint8_t *x = a, *y = b;

    return x[0] == y[0] && !memcmp(x + 1, y + 1, x[0]);
}

/* The first of the @n sorted msg keys at @vals not below (@t, 0). */
size_t store_index_lower_bound(const uint8_t *vals, size_t n, uint64_t t)
{
    size_t lo = 0, hi = n;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;

        if (get_be64(vals + mid * APPDEP_STORE_MSG_KEY_LEN) < t) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo;
}

/*
 * Add @n msg keys (sorted, distinct) to the index key @k: its value is
 * the sorted array of its msg keys.  A new key is written as is; an
 * existing one is rewritten with the union (one stored key per bucket
 * and thread, so a rewrite is of at most a bucket of that thread).  A
 * stored value of a length that is not a multiple of a msg key is cut to
 * one.  @append: @k sorts after every stored key (MDB_APPEND, no
 * search).  LMDB code.
 */
int store_index_add(MDB_cursor *cur, MDB_val *k, const uint8_t *vals,
                     size_t n, bool append)
{
    const size_t w = APPDEP_STORE_MSG_KEY_LEN;
    g_autofree uint8_t *merged = NULL;
    const uint8_t *old;
    size_t nold, i = 0, j = 0, m = 0;
    MDB_val d;
    int rc;

    if (!append) {
        rc = mdb_cursor_get(cur, k, &d, MDB_SET);
        if (rc != MDB_NOTFOUND) {
            if (rc) {
                return rc;
            }
            old = d.mv_data;
            nold = d.mv_size / w;
            merged = g_malloc((nold + n) * w ?: 1);
            /* a merge of two sorted runs, duplicates once */
            while (i < nold || j < n) {
                int c = i == nold ? 1 : j == n ? -1 :
                        memcmp(old + i * w, vals + j * w, w);

                memcpy(merged + m++ * w, c <= 0 ? old + i * w : vals + j * w,
                       w);
                i += c <= 0;
                j += c >= 0;
            }
            vals = merged;
            n = m;
        }
    }
    d.mv_size = n * w;
    d.mv_data = (void *)vals;
    return mdb_cursor_put(cur, k, &d, append ? MDB_APPEND : 0);
}

/* LMDB's default order of two keys. */
int store_key_cmp(const uint8_t *a, size_t alen, const uint8_t *b,
                   size_t blen)
{
    int c = memcmp(a, b, MIN(alen, blen));

    return c ? c : (alen > blen) - (alen < blen);
}

static uint32_t *index_slot(PutCtx *ctx, uint32_t hash, uint64_t bucket,
                            const char *vm, size_t vlen, uint32_t tid)
{
    size_t mask = ctx->nslots - 1, pos;

    for (pos = hash & mask; ctx->slots[pos]; pos = (pos + 1) & mask) {
        const IndexThread *it = &g_array_index(ctx->threads, IndexThread,
                                               ctx->slots[pos] - 1);

        if (it->hash == hash && it->tid == tid && it->bucket == bucket &&
            it->len == 8 + vlen + 5 && !memcmp(it->key + 8, vm, vlen)) {
            break;
        }
    }
    return &ctx->slots[pos];
}

/* Double the lookup table. */
static void index_slots_grow(PutCtx *ctx)
{
    guint i;

    g_free(ctx->slots);
    ctx->nslots *= 2;
    ctx->slots = g_new0(uint32_t, ctx->nslots);
    for (i = 0; i < ctx->threads->len; i++) {
        const IndexThread *it = &g_array_index(ctx->threads, IndexThread, i);

        *index_slot(ctx, it->hash, it->bucket, (const char *)it->key + 8,
                    it->len - 8 - 5, it->tid) = i + 1;
    }
}

/*
 * The index in ctx->threads of the key of thread @t for a message sent
 * at @send_ns, added if new (2 lookups per message).
 */
uint32_t store_index_thread(PutCtx *ctx, const AppdepThreadId *t,
                             uint64_t send_ns)
{
    uint64_t bucket = send_ns >> STORE_INDEX_BUCKET_SHIFT;
    size_t vlen = strnlen(t->vm, APPDEP_WIRE_VM_LEN);
    uint32_t h = appdep_hash_bytes(t->vm, vlen), *slot;
    IndexThread it;

    /* FNV-1a of the name, then the tid and bucket mixed in */
    h = (h ^ t->tid ^ (uint32_t)bucket) * 0x9e3779b1u;
    h ^= h >> 16;
    slot = index_slot(ctx, h, bucket, t->vm, vlen, t->tid);
    if (*slot) {
        return *slot - 1;
    }
    it.len = store_index_key(it.key, send_ns, t->vm, t->tid);
    it.bucket = bucket;
    it.tid = t->tid;
    it.hash = h;
    it.first = it.n = 0;
    g_array_append_val(ctx->threads, it);
    *slot = ctx->threads->len;
    if (ctx->threads->len * 2 >= ctx->nslots) {
        index_slots_grow(ctx);
    }
    return ctx->threads->len - 1;
}

/* LMDB's default key order: memcmp, then the shorter first. */
gint store_cmp_index_thread(gconstpointer a, gconstpointer b)
{
    const IndexThread *x = a, *y = b;
    int c = memcmp(x->key, y->key, MIN(x->len, y->len));

    return c ? c : (int)x->len - (int)y->len;
}


/* A message to store: its time and its index in the caller's array. */
typedef struct TimeIdx {
    uint64_t t;
    size_t i;
} TimeIdx;

/* Time order, arrival order among equal times. */
static int cmp_time_idx(const void *a, const void *b)
{
    const TimeIdx *x = a, *y = b;

    if (x->t != y->t) {
        return x->t < y->t ? -1 : 1;
    }
    return x->i < y->i ? -1 : x->i > y->i;
}

#define STORE_RADIX_BITS        16
#define STORE_RADIX_MIN         1024    /* fewer pairs: qsort */

/*
 * Sort @ti (@k pairs, in index order) by time, equal times in index
 * order, like cmp_time_idx: an LSD radix sort of the time offsets from
 * the oldest, 16 bits per pass (a batch spans seconds: 2 or 3 passes),
 * each pass stable.  @tmp holds @k pairs.
 */
static void radix_sort_time(TimeIdx *ti, TimeIdx *tmp, size_t k)
{
    g_autofree size_t *count = g_new(size_t, 1u << STORE_RADIX_BITS);
    uint64_t tmin = UINT64_MAX, span = 0;
    unsigned shift;
    size_t i;

    for (i = 0; i < k; i++) {
        tmin = MIN(tmin, ti[i].t);
    }
    for (i = 0; i < k; i++) {
        span |= ti[i].t - tmin;
    }
    for (shift = 0; shift < 64 && span >> shift; shift += STORE_RADIX_BITS) {
        size_t sum = 0, c;
        TimeIdx *swap;

        memset(count, 0, sizeof(size_t) << STORE_RADIX_BITS);
        for (i = 0; i < k; i++) {
            count[((ti[i].t - tmin) >> shift) &
                  ((1u << STORE_RADIX_BITS) - 1)]++;
        }
        for (i = 0; i < 1u << STORE_RADIX_BITS; i++) {
            c = count[i];
            count[i] = sum;
            sum += c;
        }
        for (i = 0; i < k; i++) {
            tmp[count[((ti[i].t - tmin) >> shift) &
                      ((1u << STORE_RADIX_BITS) - 1)]++] = ti[i];
        }
        swap = ti;
        ti = tmp;
        tmp = swap;
    }
    if (shift / STORE_RADIX_BITS % 2) {
        memcpy(tmp, ti, k * sizeof(*ti));      /* back into the caller's */
    }
}

/*
 * Fill @order with the indexes of the @n valid messages of @msgs in
 * (send_ns, index) order; returns how many.  Sorting small (time, index)
 * pairs keeps the messages themselves out of the cache; an already
 * sorted batch is not sorted again.
 */
size_t store_order_by_time(const AppdepMessage *msgs, size_t n,
                            size_t *order)
{
    g_autofree TimeIdx *ti = g_new(TimeIdx, n ?: 1);
    bool sorted = true;
    size_t i, k = 0;

    for (i = 0; i < n; i++) {
        if (!appdep_store_message_valid(&msgs[i])) {
            continue;
        }
        ti[k].t = msgs[i].send_ns;
        ti[k].i = i;
        if (k && ti[k].t < ti[k - 1].t) {
            sorted = false;
        }
        k++;
    }
    if (!sorted && k < STORE_RADIX_MIN) {
        qsort(ti, k, sizeof(*ti), cmp_time_idx);
    } else if (!sorted) {
        g_autofree TimeIdx *tmp = g_new(TimeIdx, k);

        radix_sort_time(ti, tmp, k);
    }
    for (i = 0; i < k; i++) {
        order[i] = ti[i].i;
    }
    return k;
}

