/*
 * appdep server: the log database of inter-thread records, on LMDB.
 * Key layout, error, thread and lifetime rules: store.h.
 *
 * Copyright (c) 2026 appdep authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include <errno.h>
#include <limits.h>
#include <lmdb.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>
#include <glib/gstdio.h>
#include "store.h"

#define STORE_MAX_DBS           5       /* msg, thread, threads, meta, rec */
#define STORE_META_SCHEMA       "schema"
#define STORE_META_UNIQ         "uniq"
#define STORE_META_RETENTION    "retention"
#define STORE_META_BATCH        "batch:"    /* + host: last batch committed */
#define STORE_NS_PER_S          1000000000ULL
/* thread index buckets: 2^30 ns (~1.07 s) of send times per key */
#define STORE_INDEX_BUCKET_SHIFT 30
#define STORE_INDEX_KEY_MAX     (8 + APPDEP_STORE_THREAD_PREFIX_MAX)
#define STORE_PREFETCH          8       /* messages fetched ahead */
#define STORE_KNOWN_MAX         (1u << 20)  /* threads cached as listed */

/*
 * Value layout, version 2 (written), little-endian, variable length
 * (offsets):
 *    0 u16 version (2)  2 u8 direction  3 u8 family  4 u32 seq
 *    8 u64 send_ns  16 u64 recv_ns  24 u64 bytes
 *   32 u16 cport  34 u16 sport  36 u8 alen (4: IPv4, 16: IPv6)
 *   37 u8 caddr[alen]  37 + alen u8 saddr[alen]
 *   then the sender and the receiver, each:
 *        +0 u32 pid  +4 u32 tid  +8 u8 vm_len  +9 u8 comm_len
 *        +10 u8 vm[vm_len]  u8 comm[comm_len] (no NUL)
 * 64 bytes for an IPv4 message between threads without names; with
 * short VM and command names about 80, where version 1 took 248.
 *
 * Version 1 (schema 2 stores; read, no longer written), 248 bytes:
 *    0 u16 version  2 u8 direction  3 u8 family  4 u32 seq
 *    8 u64 send_ns  16 u64 recv_ns  24 u64 bytes
 *   32 sender, 120 receiver, each STORE_THREAD_LEN bytes:
 *        +0 u8 vm[64] (NUL-padded)  +64 u32 pid  +68 u32 tid
 *        +72 u8 comm[16] (NUL-padded)
 *  208 u8 caddr[16]  224 u8 saddr[16]  240 u16 cport  242 u16 sport
 *  244 u32 reserved (0)
 */
#define STORE_V1_VERSION        1
#define STORE_V1_LEN            248
#define STORE_THREAD_LEN        (APPDEP_WIRE_VM_LEN + 8 + APPDEP_WIRE_COMM_LEN)
#define STORE_OFF_SENDER        32
#define STORE_OFF_RECEIVER      (STORE_OFF_SENDER + STORE_THREAD_LEN)
#define STORE_OFF_CONN          (STORE_OFF_RECEIVER + STORE_THREAD_LEN)
#define STORE_V2_FIXED          37      /* up to the addresses */
#define STORE_V2_THREAD_FIXED   10      /* pid, tid, the two lengths */

G_STATIC_ASSERT(STORE_OFF_CONN + 40 == STORE_V1_LEN);
G_STATIC_ASSERT(STORE_V2_FIXED + 2 * 16 +
                2 * (STORE_V2_THREAD_FIXED + APPDEP_WIRE_VM_LEN +
                     APPDEP_WIRE_COMM_LEN) <= APPDEP_STORE_VALUE_MAX);


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

/* ---- codes ---- */

/* LMDB returns errno values positive and its own codes negative. */
static int store_err(int rc)
{
    return rc > 0 ? -rc : rc;
}

const char *appdep_store_strerror(int err)
{
    if (err == 0 || (err >= MDB_KEYEXIST && err <= MDB_LAST_ERRCODE)) {
        return mdb_strerror(err);
    }
    return g_strerror(err < 0 ? -err : err);
}

static void stat_add(_Atomic uint64_t *ctr, uint64_t n)
{
    atomic_fetch_add_explicit(ctr, n, memory_order_relaxed);
}

/* ---- codec (pure) ---- */

static void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = v >> 24;
    p[1] = v >> 16;
    p[2] = v >> 8;
    p[3] = v;
}

static void put_be64(uint8_t *p, uint64_t v)
{
    put_be32(p, v >> 32);
    put_be32(p + 4, v);
}

static uint64_t get_be64(const uint8_t *p)
{
    uint64_t v = 0;
    int i;

    for (i = 0; i < 8; i++) {
        v = v << 8 | p[i];
    }
    return v;
}

/* A string of the struct fits its wire field when terminated in time. */
static bool str_fits(const char *s, size_t field)
{
    return memchr(s, '\0', field + 1) != NULL;
}

/* A NUL-padded field: after the first NUL, only NULs (canonical form). */
static bool field_padded(const uint8_t *p, size_t n)
{
    const uint8_t *nul = memchr(p, 0, n);
    size_t i;

    if (!nul) {
        return true;
    }
    for (i = nul - p; i < n; i++) {
        if (p[i]) {
            return false;
        }
    }
    return true;
}

bool appdep_store_message_valid(const AppdepMessage *m)
{
    if (m->direction != APPDEP_DIR_REQUEST &&
        m->direction != APPDEP_DIR_RESPONSE) {
        return false;
    }
    if (m->conn.family != APPDEP_FAMILY_IPV4 &&
        m->conn.family != APPDEP_FAMILY_IPV6) {
        return false;
    }
    return str_fits(m->sender.vm, APPDEP_WIRE_VM_LEN) &&
           str_fits(m->sender.comm, APPDEP_WIRE_COMM_LEN) &&
           str_fits(m->receiver.vm, APPDEP_WIRE_VM_LEN) &&
           str_fits(m->receiver.comm, APPDEP_WIRE_COMM_LEN);
}

/* One thread, version 2; returns the bytes written. */
static size_t encode_thread(const AppdepThreadId *t, uint8_t *p)
{
    size_t vlen = strnlen(t->vm, APPDEP_WIRE_VM_LEN);
    size_t clen = strnlen(t->comm, APPDEP_WIRE_COMM_LEN);

    appdep_wire_put32(p, t->pid);
    appdep_wire_put32(p + 4, t->tid);
    p[8] = vlen;
    p[9] = clen;
    memcpy(p + STORE_V2_THREAD_FIXED, t->vm, vlen);
    memcpy(p + STORE_V2_THREAD_FIXED + vlen, t->comm, clen);
    return STORE_V2_THREAD_FIXED + vlen + clen;
}

/* IPv4 addresses fill the first 4 bytes of their fields: store those. */
static size_t addr_len(const AppdepConn *c)
{
    uint32_t w[6];

    if (c->family != APPDEP_FAMILY_IPV4) {
        return 16;
    }
    memcpy(w, c->caddr + 4, 12);
    memcpy(w + 3, c->saddr + 4, 12);
    return (w[0] | w[1] | w[2] | w[3] | w[4] | w[5]) ? 16 : 4;
}

size_t appdep_store_encode(const AppdepMessage *m,
                           uint8_t buf[APPDEP_STORE_VALUE_MAX])
{
    size_t alen = addr_len(&m->conn), n;

    appdep_wire_put16(buf, APPDEP_STORE_VALUE_VERSION);
    buf[2] = m->direction;
    buf[3] = m->conn.family;
    appdep_wire_put32(buf + 4, m->seq);
    appdep_wire_put64(buf + 8, m->send_ns);
    appdep_wire_put64(buf + 16, m->recv_ns);
    appdep_wire_put64(buf + 24, m->bytes);
    appdep_wire_put16(buf + 32, m->conn.cport);
    appdep_wire_put16(buf + 34, m->conn.sport);
    buf[36] = alen;
    memcpy(buf + STORE_V2_FIXED, m->conn.caddr, alen);
    memcpy(buf + STORE_V2_FIXED + alen, m->conn.saddr, alen);
    n = STORE_V2_FIXED + 2 * alen;
    n += encode_thread(&m->sender, buf + n);
    n += encode_thread(&m->receiver, buf + n);
    return n;
}

static bool decode_thread_v1(const uint8_t *p, AppdepThreadId *t)
{
    const uint8_t *comm = p + APPDEP_WIRE_VM_LEN + 8;

    if (!field_padded(p, APPDEP_WIRE_VM_LEN) ||
        !field_padded(comm, APPDEP_WIRE_COMM_LEN)) {
        return false;
    }
    appdep_wire_get_str(t->vm, p, APPDEP_WIRE_VM_LEN);
    t->pid = appdep_wire_get32(p + APPDEP_WIRE_VM_LEN);
    t->tid = appdep_wire_get32(p + APPDEP_WIRE_VM_LEN + 4);
    appdep_wire_get_str(t->comm, comm, APPDEP_WIRE_COMM_LEN);
    return true;
}

/* The first 32 bytes, the same in versions 1 and 2 (length checked). */
static void decode_head(const uint8_t *buf, AppdepMessage *m)
{
    m->direction = buf[2];
    m->conn.family = buf[3];
    m->seq = appdep_wire_get32(buf + 4);
    m->send_ns = appdep_wire_get64(buf + 8);
    m->recv_ns = appdep_wire_get64(buf + 16);
    m->bytes = appdep_wire_get64(buf + 24);
}

static int decode_v1(const uint8_t *buf, size_t len, AppdepMessage *m)
{
    const uint8_t *c = buf + STORE_OFF_CONN;

    if (len != STORE_V1_LEN || appdep_wire_get32(c + 36) != 0) {
        return -EBADMSG;
    }
    decode_head(buf, m);
    if (!decode_thread_v1(buf + STORE_OFF_SENDER, &m->sender) ||
        !decode_thread_v1(buf + STORE_OFF_RECEIVER, &m->receiver)) {
        return -EBADMSG;
    }
    memcpy(m->conn.caddr, c, 16);
    memcpy(m->conn.saddr, c + 16, 16);
    m->conn.cport = appdep_wire_get16(c + 32);
    m->conn.sport = appdep_wire_get16(c + 34);
    return 0;
}

/*
 * One thread of a version 2 value at *@off of @len bytes: lengths within
 * their fields and the value, no NUL inside the names (the form encode
 * writes); *@off moves past it.
 */
static bool decode_thread_v2(const uint8_t *buf, size_t len, size_t *off,
                             AppdepThreadId *t)
{
    const uint8_t *p = buf + *off;
    size_t vlen, clen;

    if (len - *off < STORE_V2_THREAD_FIXED) {
        return false;
    }
    vlen = p[8];
    clen = p[9];
    if (vlen > APPDEP_WIRE_VM_LEN || clen > APPDEP_WIRE_COMM_LEN ||
        len - *off - STORE_V2_THREAD_FIXED < vlen + clen ||
        memchr(p + STORE_V2_THREAD_FIXED, 0, vlen + clen)) {
        return false;
    }
    t->pid = appdep_wire_get32(p);
    t->tid = appdep_wire_get32(p + 4);
    memcpy(t->vm, p + STORE_V2_THREAD_FIXED, vlen);
    t->vm[vlen] = '\0';
    memcpy(t->comm, p + STORE_V2_THREAD_FIXED + vlen, clen);
    t->comm[clen] = '\0';
    *off += STORE_V2_THREAD_FIXED + vlen + clen;
    return true;
}

static int decode_v2(const uint8_t *buf, size_t len, AppdepMessage *m)
{
    size_t alen, off;

    if (len < STORE_V2_FIXED) {
        return -EBADMSG;
    }
    decode_head(buf, m);
    m->conn.cport = appdep_wire_get16(buf + 32);
    m->conn.sport = appdep_wire_get16(buf + 34);
    alen = buf[36];
    if ((alen != 4 && alen != 16) || len - STORE_V2_FIXED < 2 * alen) {
        return -EBADMSG;
    }
    memcpy(m->conn.caddr, buf + STORE_V2_FIXED, alen);
    memcpy(m->conn.saddr, buf + STORE_V2_FIXED + alen, alen);
    /* the canonical form: 4 bytes exactly for IPv4 with a zero tail */
    if (alen != addr_len(&m->conn)) {
        return -EBADMSG;
    }
    off = STORE_V2_FIXED + 2 * alen;
    if (!decode_thread_v2(buf, len, &off, &m->sender) ||
        !decode_thread_v2(buf, len, &off, &m->receiver) || off != len) {
        return -EBADMSG;
    }
    return 0;
}

int appdep_store_decode(const uint8_t *buf, size_t len, AppdepMessage *m)
{
    int rc;

    if (len < 2) {
        return -EBADMSG;
    }
    memset(m, 0, sizeof(*m));
    switch (appdep_wire_get16(buf)) {
    case APPDEP_STORE_VALUE_VERSION:
        rc = decode_v2(buf, len, m);
        break;
    case STORE_V1_VERSION:
        rc = decode_v1(buf, len, m);
        break;
    default:
        rc = -EBADMSG;
    }
    if (rc == 0 && !appdep_store_message_valid(m)) {
        rc = -EBADMSG;
    }
    return rc;
}

/* ---- keys ---- */

static void msg_key(uint8_t key[APPDEP_STORE_MSG_KEY_LEN], uint64_t send_ns,
                    uint64_t uniq)
{
    put_be64(key, send_ns);
    put_be64(key + 8, uniq);
}

/* vm | 0 | tid BE: the prefix of a thread's keys; returns its length. */
static size_t thread_prefix(uint8_t *key, const char *vm, uint32_t tid)
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
static size_t index_key(uint8_t *key, uint64_t send_ns, const char *vm,
                        uint32_t tid)
{
    put_be64(key, send_ns >> STORE_INDEX_BUCKET_SHIFT);
    return 8 + thread_prefix(key + 8, vm, tid);
}

/* The keys of AppdepStore.known: len | bytes. */
static guint known_hash(gconstpointer p)
{
    const uint8_t *k = p;
    guint h = 2166136261u;
    size_t i;

    for (i = 0; i <= k[0]; i++) {
        h = (h ^ k[i]) * 16777619u;
    }
    return h;
}

static gboolean known_equal(gconstpointer a, gconstpointer b)
{
    const uint8_t *x = a, *y = b;

    return x[0] == y[0] && !memcmp(x + 1, y + 1, x[0]);
}

/* The first of the @n sorted msg keys at @vals not below (@t, 0). */
static size_t index_lower_bound(const uint8_t *vals, size_t n, uint64_t t)
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

/* ---- transactions ---- */

static void gate_enter(AppdepStore *s)
{
    g_mutex_lock(&s->gate_lock);
    while (s->gate_closed) {
        g_cond_wait(&s->gate_cond, &s->gate_lock);
    }
    s->gate_active++;
    g_mutex_unlock(&s->gate_lock);
}

static void gate_leave(AppdepStore *s)
{
    g_mutex_lock(&s->gate_lock);
    if (--s->gate_active == 0 && s->gate_closed) {
        g_cond_broadcast(&s->gate_cond);
    }
    g_mutex_unlock(&s->gate_lock);
}

/* Wait until no transaction is open, and keep new ones out. */
static void gate_close(AppdepStore *s)
{
    g_mutex_lock(&s->gate_lock);
    while (s->gate_closed) {        /* another resizer first */
        g_cond_wait(&s->gate_cond, &s->gate_lock);
    }
    s->gate_closed = true;
    while (s->gate_active) {
        g_cond_wait(&s->gate_cond, &s->gate_lock);
    }
    g_mutex_unlock(&s->gate_lock);
}

static void gate_open(AppdepStore *s)
{
    g_mutex_lock(&s->gate_lock);
    s->gate_closed = false;
    g_cond_broadcast(&s->gate_cond);
    g_mutex_unlock(&s->gate_lock);
}

/*
 * Another process grew the map (MDB_MAP_RESIZED): adopt its size.  We are
 * the only writer, so this should not happen, but it is cheap to handle.
 */
static int store_adopt_map_size(AppdepStore *s)
{
    MDB_envinfo info;
    int rc;

    gate_close(s);
    rc = mdb_env_set_mapsize(s->env, 0);
    if (rc == 0) {
        mdb_env_info(s->env, &info);
        atomic_store(&s->map_size, info.me_mapsize);
    }
    gate_open(s);
    return rc;
}

/* Begin a transaction inside the gate; LMDB code. */
static int store_begin(AppdepStore *s, unsigned flags, MDB_txn **txn)
{
    int rc;

    for (;;) {
        gate_enter(s);
        rc = mdb_txn_begin(s->env, NULL, flags, txn);
        if (rc == 0) {
            return 0;
        }
        gate_leave(s);
        if (rc != MDB_MAP_RESIZED) {
            return rc;
        }
        rc = store_adopt_map_size(s);
        if (rc) {
            return rc;
        }
    }
}

/* End a read transaction begun with store_begin(). */
static void store_end_read(AppdepStore *s, MDB_txn *txn)
{
    mdb_txn_abort(txn);
    gate_leave(s);
}

/* Double the map, up to max_map_size; LMDB code. */
static int store_grow(AppdepStore *s)
{
    uint64_t cur = atomic_load(&s->map_size);
    uint64_t next = MIN(cur * 2, s->max_map_size);
    int rc;

    if (cur >= s->max_map_size) {
        return MDB_MAP_FULL;
    }
    gate_close(s);
    rc = mdb_env_set_mapsize(s->env, next);
    if (rc == 0) {
        atomic_store(&s->map_size, next);
        stat_add(&s->map_grows, 1);
    }
    gate_open(s);
    return rc;
}

/*
 * The body of a write transaction: LMDB code or -errno.  It may run
 * several times (after a map growth), so it must restart its work from
 * @opaque's inputs each time and only record outputs there.
 */
typedef int StoreWriteFn(AppdepStore *s, MDB_txn *txn, void *opaque);

/*
 * Run @fn in a write transaction and commit; on MDB_MAP_FULL, abort, grow
 * the map and run it again.  Returns 0 once committed, or a code of this
 * module (nothing committed).  Writer thread.
 */
static int store_write(AppdepStore *s, StoreWriteFn *fn, void *opaque)
{
    MDB_txn *txn;
    int tries, rc;

    for (tries = 0; ; tries++) {
        rc = store_begin(s, 0, &txn);
        if (rc) {
            return store_err(rc);
        }
        rc = fn(s, txn, opaque);
        if (rc == 0) {
            rc = mdb_txn_commit(txn);       /* frees txn, even on error */
        } else {
            mdb_txn_abort(txn);
        }
        gate_leave(s);
        if (rc != MDB_MAP_FULL || tries >= APPDEP_STORE_MAX_GROW_RETRIES) {
            return store_err(rc);
        }
        rc = store_grow(s);
        if (rc) {
            return store_err(rc);
        }
    }
}

/* ---- open / close ---- */

typedef struct OpenCtx {
    uint64_t retention_s;
    uint64_t next_uniq;     /* out */
} OpenCtx;

static int meta_get_u64(MDB_txn *txn, MDB_dbi dbi, const char *name,
                        uint64_t *v, bool *found)
{
    MDB_val k = { strlen(name), (void *)name }, d;
    int rc = mdb_get(txn, dbi, &k, &d);

    *found = false;
    if (rc == MDB_NOTFOUND) {
        return 0;
    }
    if (rc) {
        return rc;
    }
    if (d.mv_size != 8) {
        return MDB_CORRUPTED;
    }
    *v = appdep_wire_get64(d.mv_data);
    *found = true;
    return 0;
}

static int meta_put_u64(MDB_txn *txn, MDB_dbi dbi, const char *name,
                        uint64_t v)
{
    uint8_t buf[8];
    MDB_val k = { strlen(name), (void *)name }, d = { sizeof(buf), buf };

    appdep_wire_put64(buf, v);
    return mdb_put(txn, dbi, &k, &d, 0);
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
static int index_add(MDB_cursor *cur, MDB_val *k, const uint8_t *vals,
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
static int key_cmp(const uint8_t *a, size_t alen, const uint8_t *b,
                   size_t blen)
{
    int c = memcmp(a, b, MIN(alen, blen));

    return c ? c : (alen > blen) - (alen < blen);
}

/* Index the ends of one stored message (migration); LMDB code. */
static int index_message(AppdepStore *s, MDB_txn *txn, const MDB_val *mk,
                         const AppdepMessage *m)
{
    const AppdepThreadId *ends[2] = { &m->sender, &m->receiver };
    unsigned i;
    int rc = 0;

    for (i = 0; i < 2 && !rc; i++) {
        uint8_t key[STORE_INDEX_KEY_MAX];
        MDB_val k, e = { 0, NULL };
        MDB_cursor *cur;

        if (!ends[i]->tid) {
            continue;
        }
        k.mv_size = index_key(key, m->send_ns, ends[i]->vm, ends[i]->tid);
        k.mv_data = key;
        rc = mdb_cursor_open(txn, s->thread_dbi, &cur);
        if (!rc) {
            /* a thread that sent to itself: one entry (the merge) */
            rc = index_add(cur, &k, mk->mv_data, 1, false);
            mdb_cursor_close(cur);
        }
        if (!rc) {
            k.mv_size -= 8;
            k.mv_data = key + 8;
            rc = mdb_put(txn, s->threads_dbi, &k, &e, 0);
        }
    }
    return rc;
}

/*
 * Schemas 1 to 3 had the thread index keyed by thread only (schema 1:
 * one plain key per entry, vm | 0 | tid | msg key -> empty; 2 and 3: the
 * entries as the sorted duplicate values of one key per thread).  Drop
 * it and rebuild it from msg, bucketed, with the list of threads, in the
 * open transaction (so an interrupted migration leaves the old schema).
 */
static int store_rebuild_index(AppdepStore *s, MDB_txn *txn)
{
    MDB_cursor *cur;
    MDB_val k, d;
    MDB_dbi old;
    int rc;

    /* schemas 2 to 4 made it MDB_DUPSORT | MDB_DUPFIXED, 1 plain */
    rc = mdb_dbi_open(txn, "thread", MDB_DUPSORT | MDB_DUPFIXED, &old);
    if (rc == MDB_INCOMPATIBLE) {
        rc = mdb_dbi_open(txn, "thread", 0, &old);
    }
    if (!rc) {
        rc = mdb_drop(txn, old, 1);
    }
    if (!rc) {
        rc = mdb_dbi_open(txn, "thread", MDB_CREATE, &s->thread_dbi);
    }
    if (!rc) {
        rc = mdb_dbi_open(txn, "threads", MDB_CREATE, &s->threads_dbi);
    }
    if (!rc) {
        rc = mdb_cursor_open(txn, s->msg_dbi, &cur);
    }
    if (rc) {
        return rc;
    }
    for (rc = mdb_cursor_get(cur, &k, &d, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &k, &d, MDB_NEXT)) {
        AppdepMessage m;

        if (k.mv_size == APPDEP_STORE_MSG_KEY_LEN &&
            appdep_store_decode(d.mv_data, d.mv_size, &m) == 0 &&
            m.send_ns == get_be64(k.mv_data)) {
            rc = index_message(s, txn, &k, &m);
            if (rc) {
                break;
            }
        }
    }
    mdb_cursor_close(cur);
    if (rc != MDB_NOTFOUND) {
        return rc;
    }
    return meta_put_u64(txn, s->meta_dbi, STORE_META_SCHEMA,
                        APPDEP_STORE_SCHEMA);
}

static int store_open_txn(AppdepStore *s, MDB_txn *txn, void *opaque)
{
    OpenCtx *ctx = opaque;
    uint64_t schema = 0, uniq = 0;
    bool found;
    int rc;

    rc = mdb_dbi_open(txn, "msg", MDB_CREATE, &s->msg_dbi);
    if (!rc) {
        rc = mdb_dbi_open(txn, "meta", MDB_CREATE, &s->meta_dbi);
    }
    if (!rc) {
        rc = mdb_dbi_open(txn, "rec", MDB_CREATE, &s->rec_dbi);
    }
    if (!rc) {
        rc = meta_get_u64(txn, s->meta_dbi, STORE_META_SCHEMA, &schema,
                          &found);
    }
    if (rc) {
        return rc;
    }
    if (!found) {
        rc = meta_put_u64(txn, s->meta_dbi, STORE_META_SCHEMA,
                          APPDEP_STORE_SCHEMA);
    } else if (schema >= 1 && schema < APPDEP_STORE_SCHEMA) {
        /* version 1 values (schemas 1 and 2) are still read */
        rc = store_rebuild_index(s, txn);
    } else if (schema != APPDEP_STORE_SCHEMA) {
        return -EPROTO;
    }
    if (!rc) {
        rc = mdb_dbi_open(txn, "thread", MDB_CREATE, &s->thread_dbi);
    }
    if (!rc) {
        rc = mdb_dbi_open(txn, "threads", MDB_CREATE, &s->threads_dbi);
    }
    if (!rc) {
        rc = meta_get_u64(txn, s->meta_dbi, STORE_META_UNIQ, &uniq, &found);
    }
    if (!rc) {
        rc = meta_put_u64(txn, s->meta_dbi, STORE_META_RETENTION,
                          ctx->retention_s);
    }
    ctx->next_uniq = uniq;
    return rc;
}

static uint64_t round_to_page(uint64_t v)
{
    uint64_t page = sysconf(_SC_PAGESIZE);

    return v / page * page;
}

int appdep_store_open(AppdepStore **out, const char *dir,
                      const AppdepStoreOptions *opt)
{
    static const AppdepStoreOptions defaults;
    g_autoptr(AppdepStore) s = NULL;
    OpenCtx ctx = { 0 };
    unsigned flags = MDB_NOTLS;
    uint64_t map_size, max_map;
    MDB_envinfo info;
    int dead = 0;
    int rc;

    *out = NULL;
    if (!opt) {
        opt = &defaults;
    }
    map_size = round_to_page(opt->map_size ?: APPDEP_STORE_DEFAULT_MAP_SIZE);
    max_map = round_to_page(opt->max_map_size ?: APPDEP_STORE_DEFAULT_MAX_MAP);
    if (map_size < APPDEP_STORE_MIN_MAP_SIZE || max_map < map_size ||
        opt->retention_s > UINT64_MAX / STORE_NS_PER_S) {
        return -EINVAL;
    }
    switch (opt->sync) {
    case APPDEP_STORE_SYNC_DURABLE:
        break;
    case APPDEP_STORE_SYNC_NOMETASYNC:
        flags |= MDB_NOMETASYNC;
        break;
    case APPDEP_STORE_SYNC_NONE:
        flags |= MDB_NOSYNC;
        break;
    default:
        return -EINVAL;
    }
    if (g_mkdir_with_parents(dir, 0700) < 0) {
        return -errno;
    }

    s = g_new0(AppdepStore, 1);
    s->known = g_hash_table_new_full(known_hash, known_equal, g_free, NULL);
    g_mutex_init(&s->gate_lock);
    g_cond_init(&s->gate_cond);
    s->max_map_size = max_map;
    s->retention_ns = opt->retention_s * STORE_NS_PER_S;

    rc = mdb_env_create(&s->env);
    if (rc) {
        s->env = NULL;
        return store_err(rc);
    }
    rc = mdb_env_set_maxdbs(s->env, STORE_MAX_DBS);
    if (!rc) {
        rc = mdb_env_set_maxreaders(s->env, APPDEP_STORE_MAX_READERS);
    }
    if (!rc) {
        rc = mdb_env_set_mapsize(s->env, map_size);
    }
    if (!rc) {
        rc = mdb_env_open(s->env, dir, flags, 0600);
    }
    if (!rc) {
        rc = mdb_reader_check(s->env, &dead);
    }
    if (rc) {
        return store_err(rc);
    }
    s->stale_readers = dead;

    /* An existing file may be larger than the map asked for. */
    mdb_env_info(s->env, &info);
    s->map_size = info.me_mapsize;
    if (s->max_map_size < s->map_size) {
        s->max_map_size = s->map_size;
    }

    ctx.retention_s = opt->retention_s;
    rc = store_write(s, store_open_txn, &ctx);
    if (rc) {
        return rc;
    }
    s->next_uniq = ctx.next_uniq;
    *out = g_steal_pointer(&s);
    return 0;
}

void appdep_store_close(AppdepStore *s)
{
    if (!s) {
        return;
    }
    if (s->env) {
        mdb_env_close(s->env);
    }
    if (s->known) {
        g_hash_table_destroy(s->known);
    }
    g_cond_clear(&s->gate_cond);
    g_mutex_clear(&s->gate_lock);
    g_free(s);
}

/* ---- writes ---- */

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

#define STORE_INDEX_SLOTS_MIN   1024    /* thread lookup table, initial */

G_STATIC_ASSERT(STORE_INDEX_KEY_MAX <= UINT8_MAX);

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
static uint32_t index_thread(PutCtx *ctx, const AppdepThreadId *t,
                             uint64_t send_ns)
{
    uint64_t bucket = send_ns >> STORE_INDEX_BUCKET_SHIFT;
    uint32_t h = 2166136261u, *slot;
    size_t vlen;
    IndexThread it;

    for (vlen = 0; vlen < APPDEP_WIRE_VM_LEN && t->vm[vlen]; vlen++) {
        h = (h ^ (uint8_t)t->vm[vlen]) * 16777619u;
    }
    h = (h ^ t->tid ^ (uint32_t)bucket) * 0x9e3779b1u;
    h ^= h >> 16;
    slot = index_slot(ctx, h, bucket, t->vm, vlen, t->tid);
    if (*slot) {
        return *slot - 1;
    }
    it.len = index_key(it.key, send_ns, t->vm, t->tid);
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
static gint cmp_index_thread(gconstpointer a, gconstpointer b)
{
    const IndexThread *x = a, *y = b;
    int c = memcmp(x->key, y->key, MIN(x->len, y->len));

    return c ? c : (int)x->len - (int)y->len;
}

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
    g_array_sort(th, cmp_index_thread);    /* slots are stale now */

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
                      key_cmp(it->key, it->len, last, last_len) > 0;

        k.mv_size = it->len;
        k.mv_data = (void *)it->key;
        rc = index_add(cur, &k, grouped + (size_t)it->first *
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
        msg_key(mkey, m->send_ns, uniq++);
        k.mv_size = sizeof(mkey);
        k.mv_data = mkey;
        d.mv_size = appdep_store_encode(m, val);
        d.mv_data = val;
        rc = mdb_cursor_put(cur, &k, &d, flags);
        if (rc) {
            goto out;
        }
        if (m->sender.tid) {
            ctx->ends[nidx] = index_thread(ctx, &m->sender, m->send_ns);
            g_array_index(ctx->threads, IndexThread, ctx->ends[nidx]).n++;
            memcpy(ctx->vals + nidx++ * APPDEP_STORE_MSG_KEY_LEN, mkey,
                   APPDEP_STORE_MSG_KEY_LEN);
        }
        if (m->receiver.tid) {
            ctx->ends[nidx] = index_thread(ctx, &m->receiver, m->send_ns);
            g_array_index(ctx->threads, IndexThread, ctx->ends[nidx]).n++;
            memcpy(ctx->vals + nidx++ * APPDEP_STORE_MSG_KEY_LEN, mkey,
                   APPDEP_STORE_MSG_KEY_LEN);
        }
    }
    rc = put_thread_index(s, txn, ctx, nidx);
    if (!rc) {
        rc = meta_put_u64(txn, s->meta_dbi, STORE_META_UNIQ, uniq);
    }
out:
    mdb_cursor_close(cur);
    return rc;
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
static size_t order_by_time(const AppdepMessage *msgs, size_t n,
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

    ctx.n = order_by_time(msgs, n, order);
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
    if (g_hash_table_size(s->known) + fresh->len > STORE_KNOWN_MAX) {
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
    MDB_val k = { index_key(key, get_be64(mkey), t->vm, t->tid), key }, d;
    g_autofree uint8_t *rest = NULL;
    size_t n, i;
    int rc = mdb_get(txn, s->thread_dbi, &k, &d);

    if (rc) {
        return rc == MDB_NOTFOUND ? 0 : rc;
    }
    n = d.mv_size / w;
    i = index_lower_bound(d.mv_data, n, get_be64(mkey));
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

/* ---- reads ---- */

/* Decode a msg value into a new element of @out; false if corrupt. */
static bool append_decoded(GArray *out, const MDB_val *d, uint64_t send_ns)
{
    guint len = out->len;
    AppdepMessage *m;

    g_array_set_size(out, len + 1);
    m = &g_array_index(out, AppdepMessage, len);
    if (appdep_store_decode(d->mv_data, d->mv_size, m) < 0 ||
        m->send_ns != send_ns) {
        g_array_set_size(out, len);
        return false;
    }
    return true;
}

static bool check_out(GArray *out)
{
    return out && g_array_get_element_size(out) == sizeof(AppdepMessage);
}

/* Finish a scan: LMDB code -> our code, @out restored on error. */
static int scan_result(AppdepStore *s, GArray *out, guint len0, int rc,
                       uint64_t corrupt)
{
    stat_add(&s->corrupt, corrupt);
    if (rc) {
        g_array_set_size(out, len0);
        return store_err(rc);
    }
    return MIN(corrupt, (uint64_t)INT_MAX);
}

/* Decode one stored item with time @t into @out; false: corrupt. */
typedef bool ScanTakeFn(GArray *out, const MDB_val *d, uint64_t t);

/*
 * Copy the items of @dbi (keys time BE | uniq BE) with time in [t0, t1)
 * into @out, at most @limit (0: all), through @take.  Any thread.
 * Returns the corrupt items skipped, or an error with @out unchanged.
 */
static int scan_time_range(AppdepStore *s, MDB_dbi dbi, uint64_t t0,
                           uint64_t t1, GArray *out, size_t limit,
                           ScanTakeFn *take)
{
    uint8_t start[APPDEP_STORE_MSG_KEY_LEN];
    MDB_val k = { sizeof(start), start }, d;
    guint len0 = out->len;
    uint64_t corrupt = 0;
    MDB_txn *txn;
    MDB_cursor *cur;
    MDB_cursor_op op = MDB_SET_RANGE;
    int rc;

    if (t0 >= t1) {
        return 0;
    }
    rc = store_begin(s, MDB_RDONLY, &txn);
    if (rc) {
        return store_err(rc);
    }
    rc = mdb_cursor_open(txn, dbi, &cur);
    if (rc) {
        store_end_read(s, txn);
        return store_err(rc);
    }
    msg_key(start, t0, 0);
    while (!limit || out->len - len0 < limit) {
        uint64_t t;

        rc = mdb_cursor_get(cur, &k, &d, op);
        op = MDB_NEXT;
        if (rc) {
            break;
        }
        if (k.mv_size != APPDEP_STORE_MSG_KEY_LEN) {
            corrupt++;
            continue;
        }
        t = get_be64(k.mv_data);
        if (t >= t1) {
            break;
        }
        if (!take(out, &d, t)) {
            corrupt++;
        }
    }
    if (rc == MDB_NOTFOUND) {
        rc = 0;
    }
    mdb_cursor_close(cur);
    store_end_read(s, txn);
    return scan_result(s, out, len0, rc, corrupt);
}

int appdep_store_range(AppdepStore *s, uint64_t t0, uint64_t t1,
                       GArray *out, size_t limit)
{
    if (!check_out(out)) {
        return -EINVAL;
    }
    return scan_time_range(s, s->msg_dbi, t0, t1, out, limit,
                           append_decoded);
}

static bool thread_matches(const AppdepThreadId *t, const char *vm,
                           uint32_t tid)
{
    return t->tid == tid && strcmp(t->vm, vm) == 0;
}

/*
 * The index key of thread @vm/@tid in bucket *@b or the next one that
 * has it, up to @blast: its value in *@d, its bucket in *@b.
 * MDB_NOTFOUND when there is none.  The keys are bucket-major: a seek
 * that lands on another thread's key moves on to the next bucket, one
 * that lands in a later bucket moves there (empty buckets are skipped).
 */
static int thread_seek(MDB_cursor *cur, const char *vm, uint32_t tid,
                       uint64_t *b, uint64_t blast, MDB_val *d)
{
    uint8_t key[STORE_INDEX_KEY_MAX];
    size_t klen;
    MDB_val k;
    int rc;

    while (*b <= blast) {
        klen = index_key(key, *b << STORE_INDEX_BUCKET_SHIFT, vm, tid);
        k.mv_size = klen;
        k.mv_data = key;
        rc = mdb_cursor_get(cur, &k, d, MDB_SET_RANGE);
        if (rc) {
            return rc;
        }
        if (k.mv_size < 8) {
            return MDB_CORRUPTED;
        }
        if (get_be64(k.mv_data) > *b) {
            *b = get_be64(k.mv_data);
            continue;
        }
        if (k.mv_size == klen && !memcmp(k.mv_data, key, klen)) {
            return 0;
        }
        if (*b == blast) {
            break;
        }
        ++*b;
    }
    return MDB_NOTFOUND;
}

int appdep_store_thread_range(AppdepStore *s, const char *vm, uint32_t tid,
                              uint64_t t0, uint64_t t1, GArray *out,
                              size_t limit)
{
    MDB_val d;
    guint len0;
    uint64_t corrupt = 0, b, blast;
    bool done = false;
    MDB_txn *txn;
    MDB_cursor *cur;
    int rc;

    if (!check_out(out) || !vm || !str_fits(vm, APPDEP_WIRE_VM_LEN) ||
        !tid) {
        return -EINVAL;
    }
    len0 = out->len;
    if (t0 >= t1) {
        return 0;
    }
    rc = store_begin(s, MDB_RDONLY, &txn);
    if (rc) {
        return store_err(rc);
    }
    rc = mdb_cursor_open(txn, s->thread_dbi, &cur);
    if (rc) {
        store_end_read(s, txn);
        return store_err(rc);
    }
    b = t0 >> STORE_INDEX_BUCKET_SHIFT;
    blast = (t1 - 1) >> STORE_INDEX_BUCKET_SHIFT;
    /* the thread's key of each bucket: its msg keys in time order */
    for (rc = thread_seek(cur, vm, tid, &b, blast, &d); !rc && !done;
         rc = thread_seek(cur, vm, tid, &b, blast, &d)) {
        /* the value stays valid in this read transaction */
        const uint8_t *vals = d.mv_data;
        size_t n = d.mv_size / APPDEP_STORE_MSG_KEY_LEN, i;

        if (d.mv_size % APPDEP_STORE_MSG_KEY_LEN) {
            corrupt++;
        }
        for (i = index_lower_bound(vals, n, t0); i < n; i++) {
            MDB_val mk = { APPDEP_STORE_MSG_KEY_LEN,
                           (void *)(vals + i * APPDEP_STORE_MSG_KEY_LEN) };
            MDB_val md;
            uint64_t send_ns = get_be64(mk.mv_data);

            if (send_ns >= t1 || (limit && out->len - len0 >= limit)) {
                done = true;
                break;
            }
            rc = mdb_get(txn, s->msg_dbi, &mk, &md);
            if (rc == MDB_NOTFOUND) {
                rc = 0;
                corrupt++;
                continue;
            }
            if (rc) {
                done = true;
                break;
            }
            if (!append_decoded(out, &md, send_ns)) {
                corrupt++;
                continue;
            }
            if (!thread_matches(&g_array_index(out, AppdepMessage,
                                               out->len - 1).sender,
                                vm, tid) &&
                !thread_matches(&g_array_index(out, AppdepMessage,
                                               out->len - 1).receiver,
                                vm, tid)) {
                /* The index points at a message of another thread. */
                g_array_set_size(out, out->len - 1);
                corrupt++;
            }
        }
        if (done || b == blast) {
            break;
        }
        b++;
    }
    if (rc == MDB_NOTFOUND) {
        rc = 0;
    }
    mdb_cursor_close(cur);
    store_end_read(s, txn);
    return scan_result(s, out, len0, rc, corrupt);
}

int appdep_store_vm_threads(AppdepStore *s, const char *vm, GArray *tids)
{
    uint8_t start[APPDEP_STORE_THREAD_PREFIX_MAX];
    size_t plen;
    guint len0;
    MDB_val k, d;
    MDB_txn *txn;
    MDB_cursor *cur;
    MDB_cursor_op op = MDB_SET_RANGE;
    int rc;

    if (!tids || g_array_get_element_size(tids) != sizeof(uint32_t) ||
        !vm || !str_fits(vm, APPDEP_WIRE_VM_LEN)) {
        return -EINVAL;
    }
    len0 = tids->len;
    plen = thread_prefix(start, vm, 0);
    rc = store_begin(s, MDB_RDONLY, &txn);
    if (rc) {
        return store_err(rc);
    }
    rc = mdb_cursor_open(txn, s->threads_dbi, &cur);
    if (rc) {
        store_end_read(s, txn);
        return store_err(rc);
    }
    k.mv_size = plen;
    k.mv_data = start;
    for (;;) {
        const uint8_t *kp;
        uint32_t tid;

        rc = mdb_cursor_get(cur, &k, &d, op);
        op = MDB_NEXT;
        if (rc) {
            break;
        }
        kp = k.mv_data;
        /* vm | 0 comes first: a key of another VM ends the run */
        if (k.mv_size != plen || memcmp(kp, start, plen - 4) != 0) {
            break;
        }
        tid = (uint32_t)kp[plen - 4] << 24 | (uint32_t)kp[plen - 3] << 16 |
              (uint32_t)kp[plen - 2] << 8 | kp[plen - 1];
        g_array_append_val(tids, tid);
    }
    if (rc == MDB_NOTFOUND) {
        rc = 0;
    }
    mdb_cursor_close(cur);
    store_end_read(s, txn);
    if (rc) {
        g_array_set_size(tids, len0);
        return store_err(rc);
    }
    return 0;
}

int appdep_store_count(AppdepStore *s, uint64_t *n)
{
    MDB_txn *txn;
    MDB_stat st;
    int rc;

    *n = 0;
    rc = store_begin(s, MDB_RDONLY, &txn);
    if (rc) {
        return store_err(rc);
    }
    rc = mdb_stat(txn, s->msg_dbi, &st);
    store_end_read(s, txn);
    if (rc) {
        return store_err(rc);
    }
    *n = st.ms_entries;
    return 0;
}

int appdep_store_reader_check(AppdepStore *s, int *dead)
{
    int n = 0;
    int rc = mdb_reader_check(s->env, &n);

    if (dead) {
        *dead = n;
    }
    if (rc) {
        return store_err(rc);
    }
    stat_add(&s->stale_readers, n);
    return 0;
}

void appdep_store_stats(AppdepStore *s, AppdepStoreStats *st)
{
    st->map_size = atomic_load(&s->map_size);
    st->map_grows = atomic_load(&s->map_grows);
    st->committed = atomic_load(&s->committed);
    st->rejected = atomic_load(&s->rejected);
    st->corrupt = atomic_load(&s->corrupt);
    st->expired = atomic_load(&s->expired);
    st->stale_readers = atomic_load(&s->stale_readers);
    st->next_uniq = atomic_load(&s->next_uniq);
}

/* ---- per-thread records ---- */

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
    rc = meta_get_u64(txn, s->meta_dbi, mkey, &last, &found);
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
        msg_key(key, b->recs[i].time_ns, (*uniq)++);
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
    return meta_put_u64(txn, s->meta_dbi, mkey, b->batch);
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
    return ctx->used ? meta_put_u64(txn, s->meta_dbi, STORE_META_UNIQ, uniq)
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
    rc = meta_get_u64(txn, s->meta_dbi, key, batch, &found);
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
    return scan_time_range(s, s->rec_dbi, t0, t1, out, limit,
                           append_record);
}

int appdep_store_record_count(AppdepStore *s, uint64_t *n)
{
    MDB_txn *txn;
    MDB_stat st;
    int rc;

    *n = 0;
    rc = store_begin(s, MDB_RDONLY, &txn);
    if (rc) {
        return store_err(rc);
    }
    rc = mdb_stat(txn, s->rec_dbi, &st);
    store_end_read(s, txn);
    if (rc) {
        return store_err(rc);
    }
    *n = st.ms_entries;
    return 0;
}
