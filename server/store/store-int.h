/*
 * appdep server store: what the store's files share and nobody else
 * sees.  The public API, its errors, threads and lifetimes: store.h.
 *
 *   store.c          LMDB environment, resize gate, transactions, open,
 *                    schema migration, close
 *   store-codec.c    the value codec (pure)
 *   store-index.c    key builders, the batch's thread lookup table,
 *                    the time order of a batch (in memory, no LMDB txn)
 *   store-write.c    put_batch, expire (writer thread)
 *   store-read.c     range, thread range, VM threads, counts, stats
 *   store-records.c  the per-thread record log
 *
 * Copyright (c) 2026 appdep authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef APPDEP_STORE_INT_H
#define APPDEP_STORE_INT_H

#include <lmdb.h>
#include <stdatomic.h>
#include <string.h>
#include "store.h"

#define STORE_MAX_DBS           5       /* msg, thread, threads, meta, rec */
#define STORE_META_SCHEMA       "schema"
#define STORE_META_UNIQ         "uniq"
#define STORE_META_RETENTION    "retention"
#define STORE_META_BATCH        "batch:"    /* + host: last batch committed */
/* thread index buckets: 2^30 ns (~1.07 s) of send times per key */
#define STORE_INDEX_BUCKET_SHIFT 30
#define STORE_INDEX_KEY_MAX     (8 + APPDEP_STORE_THREAD_PREFIX_MAX)
#define STORE_PREFETCH          8       /* messages fetched ahead */
#define STORE_INDEX_SLOTS_MIN   1024    /* thread lookup table, initial */

G_STATIC_ASSERT(STORE_INDEX_KEY_MAX <= UINT8_MAX);

struct AppdepStore {
    MDB_env *env;
    MDB_dbi msg_dbi, thread_dbi, threads_dbi, meta_dbi, rec_dbi;
    /*
     * Threads known to be in "threads" (len | vm | 0 | tid BE, the
     * key); a cache of the writer thread, filled after commits.
     */
    GHashTable *known;
    /*
     * mdb_env_set_mapsize() must not run while any transaction of this
     * process is open: every transaction is inside the gate (gate_active
     * counts them), a resize closes it (gate_closed) and waits for them to
     * drain.  Unlike a GRWLock (reader-preferring on glibc), a closed gate
     * stops new readers, so busy readers cannot starve the writer.  All
     * three fields are guarded by gate_lock.
     */
    GMutex gate_lock;
    GCond gate_cond;
    unsigned gate_active;
    bool gate_closed;
    uint64_t max_map_size;          /* constant after open */
    uint64_t retention_ns;          /* constant after open */
    _Atomic uint64_t map_size;      /* written with the gate closed */
    _Atomic uint64_t next_uniq;     /* written by the writer thread only */
    _Atomic uint64_t map_grows;
    _Atomic uint64_t committed;
    _Atomic uint64_t rejected;
    _Atomic uint64_t corrupt;
    _Atomic uint64_t expired;
    _Atomic uint64_t stale_readers;
};

/* ---- small helpers (inline: the write path calls them per message) ---- */

/* LMDB returns errno values positive and its own codes negative. */
static inline int store_err(int rc)
{
    return rc > 0 ? -rc : rc;
}

static inline void stat_add(_Atomic uint64_t *ctr, uint64_t n)
{
    atomic_fetch_add_explicit(ctr, n, memory_order_relaxed);
}

static inline void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = v >> 24;
    p[1] = v >> 16;
    p[2] = v >> 8;
    p[3] = v;
}

static inline void put_be64(uint8_t *p, uint64_t v)
{
    put_be32(p, v >> 32);
    put_be32(p + 4, v);
}

static inline uint64_t get_be64(const uint8_t *p)
{
    uint64_t v = 0;
    int i;

    for (i = 0; i < 8; i++) {
        v = v << 8 | p[i];
    }
    return v;
}

/* A string of the struct fits its wire field when terminated in time. */
static inline bool str_fits(const char *s, size_t field)
{
    return memchr(s, '\0', field + 1) != NULL;
}

/* ---- store.c: transactions and the meta database ---- */

/*
 * Begin a transaction inside the resize gate (@flags: MDB_RDONLY or 0).
 * LMDB code.  A read transaction ends with store_end_read().
 */
int store_begin(AppdepStore *s, unsigned flags, MDB_txn **txn);
void store_end_read(AppdepStore *s, MDB_txn *txn);

/*
 * The body of a write transaction: LMDB code or -errno.  It may run
 * several times (after a map growth), so it must restart its work from
 * @opaque's inputs each time and only record outputs there.
 * store_write() runs it in a write transaction and commits, growing the
 * map and retrying on MDB_MAP_FULL: 0 once committed, or a store code
 * (nothing committed).  Writer thread.
 */
typedef int StoreWriteFn(AppdepStore *s, MDB_txn *txn, void *opaque);
int store_write(AppdepStore *s, StoreWriteFn *fn, void *opaque);

/* An 8-byte big-endian value of the meta database; LMDB code. */
int store_meta_get_u64(MDB_txn *txn, MDB_dbi dbi, const char *name,
                       uint64_t *v, bool *found);
int store_meta_put_u64(MDB_txn *txn, MDB_dbi dbi, const char *name,
                       uint64_t v);

/* ---- store-index.c: keys and in-memory write helpers ---- */

void store_msg_key(uint8_t key[APPDEP_STORE_MSG_KEY_LEN], uint64_t send_ns,
                   uint64_t uniq);
size_t store_thread_prefix(uint8_t *key, const char *vm, uint32_t tid);
size_t store_index_key(uint8_t *key, uint64_t send_ns, const char *vm,
                       uint32_t tid);
/* The hash and equality of AppdepStore.known keys (len | bytes). */
guint store_known_hash(gconstpointer p);
gboolean store_known_equal(gconstpointer a, gconstpointer b);
size_t store_index_lower_bound(const uint8_t *vals, size_t n, uint64_t t);
int store_index_add(MDB_cursor *cur, MDB_val *k, const uint8_t *vals,
                    size_t n, bool append);
int store_key_cmp(const uint8_t *a, size_t alen, const uint8_t *b,
                  size_t blen);

/*
 * The thread index entries of one batch, grouped per index key: threads[]
 * are the distinct (bucket, thread) pairs (their key, bucket BE | vm | 0
 * | tid BE), vals[] the 16-byte values (send_ns BE | uniq BE), each
 * key's a run of vals starting at its first, in batch (key) order.
 */
typedef struct IndexThread {
    uint8_t len;
    uint8_t key[STORE_INDEX_KEY_MAX];
    uint64_t bucket;            /* for the lookup in PutCtx.slots */
    uint32_t tid, hash;
    uint32_t first, n;          /* its run in vals */
} IndexThread;

typedef struct PutCtx {
    const AppdepMessage *msgs;
    const size_t *order;    /* indexes of the valid messages, time order */
    size_t n;               /* entries in order */
    GArray *threads;        /* scratch: IndexThread */
    uint32_t *slots;        /* scratch: open addressing on IndexThread.hash,
                               index in threads + 1, 0: free */
    size_t nslots;          /* a power of 2, over twice threads->len */
    uint32_t *ends;         /* scratch, 2 * n: thread of each entry */
    uint8_t *vals;          /* scratch, 2 * n values */
    GPtrArray *fresh;       /* out: len | vm | 0 | tid BE of the threads
                               added to "threads", for s->known */
} PutCtx;

uint32_t store_index_thread(PutCtx *ctx, const AppdepThreadId *t,
                            uint64_t send_ns);
gint store_cmp_index_thread(gconstpointer a, gconstpointer b);
size_t store_order_by_time(const AppdepMessage *msgs, size_t n,
                           size_t *order);

/* ---- store-read.c ---- */

/* Decode one stored item with time @t into @out; false: corrupt. */
typedef bool ScanTakeFn(GArray *out, const MDB_val *d, uint64_t t);
int store_scan_time_range(AppdepStore *s, MDB_dbi dbi, uint64_t t0,
                          uint64_t t1, GArray *out, size_t limit,
                          ScanTakeFn *take);
/* The number of entries of @dbi; 0 or a store code.  Any thread. */
int store_dbi_entries(AppdepStore *s, MDB_dbi dbi, uint64_t *n);

#endif /* APPDEP_STORE_INT_H */
