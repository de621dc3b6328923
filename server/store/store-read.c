/*
 * appdep server store: reads, any thread: time range, thread range, the
 * threads of a VM, counts and statistics.
 *
 * Copyright (c) 2026 appdep authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include <errno.h>
#include <limits.h>
#include <stdatomic.h>
#include <string.h>
#include "store-int.h"


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

/*
 * Copy the items of @dbi (keys time BE | uniq BE) with time in [t0, t1)
 * into @out, at most @limit (0: all), through @take.  Any thread.
 * Returns the corrupt items skipped, or an error with @out unchanged.
 */
int store_scan_time_range(AppdepStore *s, MDB_dbi dbi, uint64_t t0,
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
    store_msg_key(start, t0, 0);
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
    return store_scan_time_range(s, s->msg_dbi, t0, t1, out, limit,
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
        klen = store_index_key(key, *b << STORE_INDEX_BUCKET_SHIFT, vm, tid);
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
        for (i = store_index_lower_bound(vals, n, t0); i < n; i++) {
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
    plen = store_thread_prefix(start, vm, 0);
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

int store_dbi_entries(AppdepStore *s, MDB_dbi dbi, uint64_t *n)
{
    MDB_txn *txn;
    MDB_stat st;
    int rc;

    *n = 0;
    rc = store_begin(s, MDB_RDONLY, &txn);
    if (rc) {
        return store_err(rc);
    }
    rc = mdb_stat(txn, dbi, &st);
    store_end_read(s, txn);
    if (rc) {
        return store_err(rc);
    }
    *n = st.ms_entries;
    return 0;
}

int appdep_store_count(AppdepStore *s, uint64_t *n)
{
    return store_dbi_entries(s, s->msg_dbi, n);
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

