/*
 * appdep server store: the LMDB environment, the resize gate,
 * transactions, open, schema migration and close.  Key layout, error,
 * thread and lifetime rules: store.h; the other files: store-int.h.
 *
 * Copyright (c) 2026 appdep authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include <errno.h>
#include <lmdb.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>
#include <glib/gstdio.h>
#include "store-int.h"

/* ---- codes ---- */

const char *appdep_store_strerror(int err)
{
    if (err == 0 || (err >= MDB_KEYEXIST && err <= MDB_LAST_ERRCODE)) {
        return mdb_strerror(err);
    }
    return g_strerror(err < 0 ? -err : err);
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
int store_begin(AppdepStore *s, unsigned flags, MDB_txn **txn)
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
void store_end_read(AppdepStore *s, MDB_txn *txn)
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
 * Run @fn in a write transaction and commit; on MDB_MAP_FULL, abort, grow
 * the map and run it again.  Returns 0 once committed, or a code of this
 * module (nothing committed).  Writer thread.
 */
int store_write(AppdepStore *s, StoreWriteFn *fn, void *opaque)
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

int store_meta_get_u64(MDB_txn *txn, MDB_dbi dbi, const char *name,
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

int store_meta_put_u64(MDB_txn *txn, MDB_dbi dbi, const char *name,
                        uint64_t v)
{
    uint8_t buf[8];
    MDB_val k = { strlen(name), (void *)name }, d = { sizeof(buf), buf };

    appdep_wire_put64(buf, v);
    return mdb_put(txn, dbi, &k, &d, 0);
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
        k.mv_size = store_index_key(key, m->send_ns, ends[i]->vm,
                                    ends[i]->tid);
        k.mv_data = key;
        rc = mdb_cursor_open(txn, s->thread_dbi, &cur);
        if (!rc) {
            /* a thread that sent to itself: one entry (the merge) */
            rc = store_index_add(cur, &k, mk->mv_data, 1, false);
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
    return store_meta_put_u64(txn, s->meta_dbi, STORE_META_SCHEMA,
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
        rc = store_meta_get_u64(txn, s->meta_dbi, STORE_META_SCHEMA, &schema,
                                &found);
    }
    if (rc) {
        return rc;
    }
    if (!found) {
        rc = store_meta_put_u64(txn, s->meta_dbi, STORE_META_SCHEMA,
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
        rc = store_meta_get_u64(txn, s->meta_dbi, STORE_META_UNIQ, &uniq,
                                &found);
    }
    if (!rc) {
        rc = store_meta_put_u64(txn, s->meta_dbi, STORE_META_RETENTION,
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
        opt->retention_s > UINT64_MAX / APPDEP_NS_PER_S) {
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
    s->known = g_hash_table_new_full(store_known_hash, store_known_equal,
                                     g_free, NULL);
    g_mutex_init(&s->gate_lock);
    g_cond_init(&s->gate_cond);
    s->max_map_size = max_map;
    s->retention_ns = opt->retention_s * APPDEP_NS_PER_S;

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

