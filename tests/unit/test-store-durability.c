/*
 * Unit tests: the LMDB log database (server/store/) under damage and
 * over time: corrupted values, a schema it does not know, migration of
 * older schemas, stale and concurrent readers, the per-thread record log.
 *
 * Copyright (c) 2026 appdep authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "test-store-util.h"

/* ---- raw LMDB access, to damage a store behind its back ---- */

typedef struct Raw {
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
} Raw;

static void raw_open(Raw *r, const char *dir, const char *db)
{
    g_assert_cmpint(mdb_env_create(&r->env), ==, 0);
    g_assert_cmpint(mdb_env_set_maxdbs(r->env, 4), ==, 0);
    g_assert_cmpint(mdb_env_open(r->env, dir, 0, 0600), ==, 0);
    g_assert_cmpint(mdb_txn_begin(r->env, NULL, 0, &r->txn), ==, 0);
    g_assert_cmpint(mdb_dbi_open(r->txn, db, 0, &r->dbi), ==, 0);
}

static void raw_close(Raw *r)
{
    g_assert_cmpint(mdb_txn_commit(r->txn), ==, 0);
    mdb_env_close(r->env);
}

/* Overwrite the value of the @n-th key of @r's database. */
static void raw_set_nth(Raw *r, unsigned n, const void *val, size_t len)
{
    MDB_cursor *cur;
    MDB_val k, d;
    uint8_t key[APPDEP_STORE_MSG_KEY_LEN];
    unsigned i;

    g_assert_cmpint(mdb_cursor_open(r->txn, r->dbi, &cur), ==, 0);
    g_assert_cmpint(mdb_cursor_get(cur, &k, &d, MDB_FIRST), ==, 0);
    for (i = 0; i < n; i++) {
        g_assert_cmpint(mdb_cursor_get(cur, &k, &d, MDB_NEXT), ==, 0);
    }
    /* a value of another size moves the node: k must not point into it */
    g_assert_cmpuint(k.mv_size, ==, sizeof(key));
    memcpy(key, k.mv_data, sizeof(key));
    k.mv_data = key;
    d.mv_size = len;
    d.mv_data = (void *)val;
    g_assert_cmpint(mdb_cursor_put(cur, &k, &d, MDB_CURRENT), ==, 0);
    mdb_cursor_close(cur);
}

static void test_corrupt(Fixture *f, gconstpointer data)
{
    g_autoptr(GArray) out = msg_array();
    uint8_t val[APPDEP_STORE_VALUE_MAX], key8[8] = { 0 };
    size_t n;
    AppdepMessage m[10], other;
    AppdepStoreStats st;
    AppdepStore *s;
    MDB_val k, d;
    Raw r;
    unsigned i;
    int rc;

    s = open_store(f, NULL);
    for (i = 0; i < G_N_ELEMENTS(m); i++) {
        m[i] = sample(i, T_BASE + i * NS);
        m[i].sender.tid = 7;            /* one sender thread for all */
    }
    put(s, m, G_N_ELEMENTS(m));
    appdep_store_close(s);

    raw_open(&r, f->dir, "msg");
    raw_set_nth(&r, 2, "short", 5);                 /* bad length */
    n = appdep_store_encode(&m[4], val);
    val[0] = 9;                                     /* unknown version */
    raw_set_nth(&r, 4, val, n);
    other = m[6];
    other.send_ns += 1;                             /* disagrees with key */
    n = appdep_store_encode(&other, val);
    raw_set_nth(&r, 6, val, n);
    other = m[8];
    memset(other.sender.vm, 'x', APPDEP_WIRE_VM_LEN);    /* another vm */
    n = appdep_store_encode(&other, val);
    raw_set_nth(&r, 8, val, n);
    /* A key of the wrong size, sorting inside the range. */
    key8[0] = (T_BASE + 5 * NS) >> 56;
    for (i = 1; i < 8; i++) {
        key8[i] = (T_BASE + 5 * NS) >> (56 - 8 * i);
    }
    k.mv_size = sizeof(key8);
    k.mv_data = key8;
    d.mv_size = 3;
    d.mv_data = "bad";
    g_assert_cmpint(mdb_put(r.txn, r.dbi, &k, &d, 0), ==, 0);
    raw_close(&r);

    s = open_store(f, NULL);
    /* 2, 4, 6 and the bad key; 8 decodes (a full-length vm is legal). */
    rc = appdep_store_range(s, 0, UINT64_MAX, out, 0);
    g_assert_cmpint(rc, ==, 4);
    g_assert_cmpuint(out->len, ==, 7);
    for (i = 0; i < out->len; i++) {
        uint64_t b = g_array_index(out, AppdepMessage, i).bytes;
        g_assert_true(b != 2 && b != 4 && b != 6);
    }

    /*
     * Via the thread index: 2, 4, 6, and 8, whose value no longer names
     * the thread its index key belongs to.  The bad key is not indexed.
     */
    g_array_set_size(out, 0);
    rc = appdep_store_thread_range(s, "vm-client", 7, 0, UINT64_MAX, out, 0);
    g_assert_cmpint(rc, ==, 4);
    g_assert_cmpuint(out->len, ==, 6);
    appdep_store_stats(s, &st);
    g_assert_cmpuint(st.corrupt, ==, 8);

    rc = appdep_store_expire(s, UINT64_MAX);
    g_assert_cmpint(rc, ==, 0);     /* retention 0: keep forever */
    appdep_store_close(s);

    {
        AppdepStoreOptions opt = { .retention_s = 1 };

        /* Expire removes them, and says how many it could not decode. */
        s = open_store(f, &opt);
        rc = appdep_store_expire(s, UINT64_MAX);
        g_assert_cmpint(rc, ==, 4);
        g_assert_cmpuint(count(s), ==, 0);
        /* Thread keys it could not find are left behind, and skipped. */
        g_array_set_size(out, 0);
        rc = appdep_store_thread_range(s, "vm-client", 7, 0, UINT64_MAX,
                                       out, 0);
        g_assert_cmpint(rc, ==, 4);
        g_assert_cmpuint(out->len, ==, 0);
        appdep_store_close(s);
    }
}

static void test_schema_mismatch(Fixture *f, gconstpointer data)
{
    uint8_t v[8] = { 99 };
    MDB_val k = { 6, "schema" }, d = { sizeof(v), v };
    AppdepStore *s = open_store(f, NULL);
    Raw r;

    appdep_store_close(s);
    raw_open(&r, f->dir, "meta");
    g_assert_cmpint(mdb_put(r.txn, r.dbi, &k, &d, 0), ==, 0);
    raw_close(&r);
    s = NULL;
    g_assert_cmpint(appdep_store_open(&s, f->dir, NULL), ==, -EPROTO);
    g_assert_null(s);
}

/* A schema 1 thread key: vm | 0 | tid BE | send_ns BE | uniq BE. */
static size_t v1_thread_key(uint8_t *key, const AppdepThreadId *t,
                            const uint8_t mkey[16])
{
    size_t n = strlen(t->vm);

    memcpy(key, t->vm, n);
    key[n++] = 0;
    key[n++] = t->tid >> 24;
    key[n++] = t->tid >> 16;
    key[n++] = t->tid >> 8;
    key[n++] = t->tid;
    memcpy(key + n, mkey, 16);
    return n + 16;
}

/*
 * A store written by schema 1 (plain thread keys, @data NULL) or schema 2
 * (one MDB_DUPSORT key per thread, @data non-NULL), both with version 1
 * values, is migrated at open: its thread index is rebuilt.
 */
static void test_migrate_v1(Fixture *f, gconstpointer data)
{
    const bool dupsort = data != NULL;
    const uint8_t one[8] = { dupsort ? 2 : 1 }, four[8] = { 4 };
    g_autoptr(GArray) tids = g_array_new(FALSE, FALSE, sizeof(uint32_t));
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi msg, thread, meta;
    g_autoptr(GArray) out = g_array_new(FALSE, FALSE, sizeof(AppdepMessage));
    AppdepStore *s = NULL;
    unsigned i;

    g_assert_cmpint(g_mkdir_with_parents(f->dir, 0700), ==, 0);
    g_assert_cmpint(mdb_env_create(&env), ==, 0);
    g_assert_cmpint(mdb_env_set_maxdbs(env, 4), ==, 0);
    g_assert_cmpint(mdb_env_open(env, f->dir, 0, 0600), ==, 0);
    g_assert_cmpint(mdb_txn_begin(env, NULL, 0, &txn), ==, 0);
    g_assert_cmpint(mdb_dbi_open(txn, "msg", MDB_CREATE, &msg), ==, 0);
    g_assert_cmpint(mdb_dbi_open(txn, "thread",
                                 MDB_CREATE | (dupsort ? MDB_DUPSORT |
                                               MDB_DUPFIXED : 0),
                                 &thread), ==, 0);
    g_assert_cmpint(mdb_dbi_open(txn, "meta", MDB_CREATE, &meta), ==, 0);
    for (i = 0; i < 4; i++) {
        AppdepMessage m = sample(i, 1000 + i);
        uint8_t mkey[16] = { 0 }, val[V1_LEN];
        uint8_t tkey[APPDEP_STORE_THREAD_PREFIX_MAX + 16];
        MDB_val k = { sizeof(mkey), mkey }, d = { sizeof(val), val };
        MDB_val e = { 0, NULL };

        /* send_ns 1000 + i BE, uniq i BE */
        mkey[6] = (uint8_t)((1000 + i) >> 8);
        mkey[7] = (uint8_t)((1000 + i) & 0xff);
        mkey[15] = i;
        encode_v1(&m, val);
        g_assert_cmpint(mdb_put(txn, msg, &k, &d, 0), ==, 0);
        k.mv_data = tkey;
        if (dupsort) {
            /* vm | 0 | tid -> the msg keys */
            MDB_val v = { sizeof(mkey), mkey };

            k.mv_size = v1_thread_key(tkey, &m.sender, mkey) - 16;
            g_assert_cmpint(mdb_put(txn, thread, &k, &v, 0), ==, 0);
            k.mv_size = v1_thread_key(tkey, &m.receiver, mkey) - 16;
            g_assert_cmpint(mdb_put(txn, thread, &k, &v, 0), ==, 0);
            continue;
        }
        k.mv_size = v1_thread_key(tkey, &m.sender, mkey);
        g_assert_cmpint(mdb_put(txn, thread, &k, &e, 0), ==, 0);
        k.mv_size = v1_thread_key(tkey, &m.receiver, mkey);
        g_assert_cmpint(mdb_put(txn, thread, &k, &e, 0), ==, 0);
    }
    {
        MDB_val k = { 6, "schema" }, d = { 8, (void *)one };
        MDB_val ku = { 4, "uniq" }, du = { 8, (void *)four };

        g_assert_cmpint(mdb_put(txn, meta, &k, &d, 0), ==, 0);
        g_assert_cmpint(mdb_put(txn, meta, &ku, &du, 0), ==, 0);
    }
    g_assert_cmpint(mdb_txn_commit(txn), ==, 0);
    mdb_env_close(env);

    g_assert_cmpint(appdep_store_open(&s, f->dir, NULL), ==, 0);
    /* sender tid 1000 + i % 7: messages 0..3 have one each */
    g_assert_cmpint(appdep_store_thread_range(s, "vm-client", 1002, 0,
                                              UINT64_MAX, out, 0), ==, 0);
    g_assert_cmpuint(out->len, ==, 1);
    g_assert_cmpuint(g_array_index(out, AppdepMessage, 0).send_ns, ==, 1002);
    g_array_set_size(out, 0);
    g_assert_cmpint(appdep_store_thread_range(s, "vm-server", 2001, 0,
                                              UINT64_MAX, out, 0), ==, 0);
    g_assert_cmpuint(out->len, ==, 1);
    /* and new messages go into the new index */
    {
        AppdepMessage m = sample(2, 5000);

        g_assert_cmpint(appdep_store_put_batch(s, &m, 1), ==, 0);
    }
    g_array_set_size(out, 0);
    g_assert_cmpint(appdep_store_thread_range(s, "vm-client", 1002, 0,
                                              UINT64_MAX, out, 0), ==, 0);
    g_assert_cmpuint(out->len, ==, 2);
    /* the threads are listed: vm-client's senders 1000..1003 */
    g_assert_cmpint(appdep_store_vm_threads(s, "vm-client", tids), ==, 0);
    g_assert_cmpuint(tids->len, ==, 4);
    g_assert_cmpuint(g_array_index(tids, uint32_t, 0), ==, 1000);
    g_assert_cmpuint(g_array_index(tids, uint32_t, 3), ==, 1003);
    appdep_store_close(s);

    /* reopened: the current schema now, nothing to migrate */
    s = NULL;
    g_assert_cmpint(appdep_store_open(&s, f->dir, NULL), ==, 0);
    g_array_set_size(out, 0);
    g_assert_cmpint(appdep_store_thread_range(s, "vm-client", 1002, 0,
                                              UINT64_MAX, out, 0), ==, 0);
    g_assert_cmpuint(out->len, ==, 2);
    appdep_store_close(s);
}

/* A child process that dies inside a read transaction leaves a stale slot. */
static void leave_stale_reader(const char *dir)
{
    pid_t pid = fork();
    int status;

    g_assert_cmpint(pid, >=, 0);
    if (pid == 0) {
        MDB_env *env;
        MDB_txn *txn;

        if (mdb_env_create(&env) || mdb_env_set_maxdbs(env, 4) ||
            mdb_env_open(env, dir, MDB_NOTLS, 0600) ||
            mdb_txn_begin(env, NULL, MDB_RDONLY, &txn)) {
            _exit(1);
        }
        _exit(0);           /* no abort, no close */
    }
    g_assert_cmpint(waitpid(pid, &status, 0), ==, pid);
    g_assert_true(WIFEXITED(status));
    g_assert_cmpint(WEXITSTATUS(status), ==, 0);
}

/*
 * A child process that keeps the environment open until @fd[0] is
 * closed on the other side: with it alive, the lock file is not
 * reinitialised at open, so stale slots survive until the reader check.
 */
static pid_t hold_env(const char *dir, int *wfd)
{
    int to_child[2], to_parent[2];
    pid_t pid;
    char c;

    g_assert_cmpint(pipe(to_child), ==, 0);
    g_assert_cmpint(pipe(to_parent), ==, 0);
    pid = fork();
    g_assert_cmpint(pid, >=, 0);
    if (pid == 0) {
        MDB_env *env;

        close(to_child[1]);
        close(to_parent[0]);
        if (mdb_env_create(&env) || mdb_env_set_maxdbs(env, 4) ||
            mdb_env_open(env, dir, MDB_NOTLS, 0600)) {
            _exit(1);
        }
        if (write(to_parent[1], "r", 1) != 1) {
            _exit(1);
        }
        while (read(to_child[0], &c, 1) > 0) {
            /* until EOF */
        }
        mdb_env_close(env);
        _exit(0);
    }
    close(to_child[0]);
    close(to_parent[1]);
    g_assert_cmpint(read(to_parent[0], &c, 1), ==, 1);
    close(to_parent[0]);
    *wfd = to_child[1];
    return pid;
}

static void test_stale_readers(Fixture *f, gconstpointer data)
{
    AppdepStoreStats st;
    AppdepStore *s;
    int dead = -1, wfd, status;
    pid_t holder;

    s = open_store(f, NULL);
    appdep_store_close(s);

    /* At open. */
    holder = hold_env(f->dir, &wfd);
    leave_stale_reader(f->dir);
    s = open_store(f, NULL);
    appdep_store_stats(s, &st);
    g_assert_cmpuint(st.stale_readers, ==, 1);

    /* While open: the periodic check. */
    leave_stale_reader(f->dir);
    g_assert_cmpint(appdep_store_reader_check(s, &dead), ==, 0);
    g_assert_cmpint(dead, ==, 1);
    g_assert_cmpint(appdep_store_reader_check(s, &dead), ==, 0);
    g_assert_cmpint(dead, ==, 0);
    appdep_store_stats(s, &st);
    g_assert_cmpuint(st.stale_readers, ==, 2);
    appdep_store_close(s);

    close(wfd);
    g_assert_cmpint(waitpid(holder, &status, 0), ==, holder);
    g_assert_true(WIFEXITED(status));
    g_assert_cmpint(WEXITSTATUS(status), ==, 0);
}

/* Readers on other threads while the writer grows the map. */
typedef struct ReaderCtx {
    AppdepStore *s;
    gint stop;
    uint64_t scans;
    int error;
} ReaderCtx;

static gpointer reader_thread(gpointer opaque)
{
    ReaderCtx *ctx = opaque;
    g_autoptr(GArray) out = msg_array();
    uint64_t n, last = 0;
    int rc;

    while (!g_atomic_int_get(&ctx->stop)) {
        g_array_set_size(out, 0);
        rc = appdep_store_range(ctx->s, 0, UINT64_MAX, out, 0);
        if (rc == 0) {
            rc = appdep_store_count(ctx->s, &n);
        }
        if (rc == 0 && out->len < last) {
            rc = -EIO;      /* a committed message vanished */
        }
        if (rc) {
            ctx->error = rc;
            break;
        }
        last = out->len;
        ctx->scans++;
    }
    return NULL;
}

static void test_concurrent_readers(Fixture *f, gconstpointer data)
{
    AppdepStoreOptions opt = {
        .map_size = 256 << 10,
        .max_map_size = 64 << 20,
    };
    g_autoptr(AppdepStore) s = open_store(f, &opt);
    g_autofree AppdepMessage *m = g_new(AppdepMessage, GROW_N);
    ReaderCtx ctx[2] = { { .s = s }, { .s = s } };
    GThread *th[2];
    AppdepStoreStats st;
    unsigned i;

    for (i = 0; i < GROW_N; i++) {
        m[i] = sample(i, T_BASE + i);
    }
    for (i = 0; i < 2; i++) {
        th[i] = g_thread_new("reader", reader_thread, &ctx[i]);
    }
    for (i = 0; i < GROW_N; i += GROW_BATCH) {
        put(s, m + i, GROW_BATCH);
    }
    for (i = 0; i < 2; i++) {
        g_atomic_int_set(&ctx[i].stop, 1);
        g_thread_join(th[i]);
        g_assert_cmpint(ctx[i].error, ==, 0);
        g_test_message("reader %u: %" G_GUINT64_FORMAT " scans", i,
                       ctx[i].scans);
    }
    appdep_store_stats(s, &st);
    g_assert_cmpuint(st.map_grows, >=, 3);
    g_assert_cmpuint(count(s), ==, GROW_N);
}

static AppdepThreadRecord sample_record(unsigned i)
{
    AppdepThreadRecord r;

    memset(&r, 0, sizeof(r));
    r.time_ns = 1700000000000000000ULL + (uint64_t)(i % 7) * 1000 + i;
    r.serial = i;
    g_snprintf(r.vm, sizeof(r.vm), "vm%u", i % 3);
    g_snprintf(r.comm, sizeof(r.comm), "c%u", i);
    r.op = APPDEP_OP_SEND + i % 3;
    r.family = APPDEP_FAMILY_IPV4;
    r.pid = 100 + i;
    r.tid = 200 + i;
    r.saddr[0] = 10;
    r.daddr[3] = i;
    r.sport = 8080;
    r.dport = 40000 + i;
    r.seq = i * 64;
    r.bytes = 64;
    return r;
}

/* Records: committed with their batch number, replays are refused. */
/* Group commit: several daemons' batches in one transaction. */
static void test_record_batches(Fixture *f, gconstpointer data)
{
    AppdepThreadRecord in[30];
    g_autoptr(GArray) out = g_array_new(FALSE, FALSE,
                                        sizeof(AppdepThreadRecord));
    AppdepStoreRecordBatch b[4] = {
        { .recs = in, .n = 10, .host = "host1", .batch = 1 },
        { .recs = in + 10, .n = 10, .host = "host2", .batch = 7 },
        { .recs = in + 20, .n = 10, .host = "host1", .batch = 2 },
        /* a replay of host1's batch 1 within the same group */
        { .recs = in, .n = 10, .host = "host1", .batch = 1 },
    };
    AppdepStoreRecordBatch bad = { .recs = in, .n = 1, .host = "h" };
    AppdepStore *s = open_store(f, NULL);
    uint64_t n, last;
    unsigned i;

    for (i = 0; i < G_N_ELEMENTS(in); i++) {
        in[i] = sample_record(i);
    }
    g_assert_cmpint(appdep_store_put_record_batches(s, b, 4), ==, 0);
    g_assert_false(b[0].duplicate || b[1].duplicate || b[2].duplicate);
    g_assert_true(b[3].duplicate);
    g_assert_cmpint(appdep_store_record_count(s, &n), ==, 0);
    g_assert_cmpuint(n, ==, 30);
    g_assert_cmpint(appdep_store_last_batch(s, "host1", &last), ==, 0);
    g_assert_cmpuint(last, ==, 2);
    g_assert_cmpint(appdep_store_last_batch(s, "host2", &last), ==, 0);
    g_assert_cmpuint(last, ==, 7);
    /* one bad batch: nothing of the group is committed */
    b[2].batch = 3;
    g_assert_cmpint(appdep_store_put_record_batches(s, &b[2], 1), ==, 0);
    g_assert_cmpint(appdep_store_put_record_batches(s, &bad, 1), ==,
                    -EINVAL);
    appdep_store_close(s);

    /* the single-batch call continues the same numbering after a reopen */
    s = open_store(f, NULL);
    g_assert_cmpint(appdep_store_put_records(s, in, 5, "host1", 3), ==, 1);
    g_assert_cmpint(appdep_store_put_records(s, in, 5, "host1", 4), ==, 0);
    g_assert_cmpint(appdep_store_records_range(s, 0, UINT64_MAX, out, 0),
                    ==, 0);
    g_assert_cmpuint(out->len, ==, 45);
    appdep_store_close(s);
}

static void test_records(Fixture *f, gconstpointer data)
{
    AppdepThreadRecord in[100];
    g_autoptr(GArray) out = g_array_new(FALSE, FALSE,
                                        sizeof(AppdepThreadRecord));
    AppdepStore *s = open_store(f, NULL);
    uint64_t n, last;
    unsigned i;

    for (i = 0; i < 100; i++) {
        in[i] = sample_record(i);
    }
    g_assert_cmpint(appdep_store_put_records(s, in, 60, "host1", 1), ==, 0);
    g_assert_cmpint(appdep_store_put_records(s, in + 60, 40, "host1", 2),
                    ==, 0);
    /* a replay of batch 2, and an older one: nothing written */
    g_assert_cmpint(appdep_store_put_records(s, in + 60, 40, "host1", 2),
                    ==, 1);
    g_assert_cmpint(appdep_store_put_records(s, in, 60, "host1", 1), ==, 1);
    /* another daemon has its own numbering */
    g_assert_cmpint(appdep_store_put_records(s, in, 1, "host2", 1), ==, 0);
    g_assert_cmpint(appdep_store_put_records(s, in, 1, "", 0), ==, -EINVAL);
    g_assert_cmpint(appdep_store_record_count(s, &n), ==, 0);
    g_assert_cmpuint(n, ==, 101);
    g_assert_cmpint(appdep_store_last_batch(s, "host1", &last), ==, 0);
    g_assert_cmpuint(last, ==, 2);
    appdep_store_close(s);

    /* after a restart the numbering is remembered */
    s = open_store(f, NULL);
    g_assert_cmpint(appdep_store_put_records(s, in, 10, "host1", 2), ==, 1);
    g_assert_cmpint(appdep_store_records_range(s, 0, UINT64_MAX, out, 0),
                    ==, 0);
    g_assert_cmpuint(out->len, ==, 101);
    for (i = 1; i < out->len; i++) {
        g_assert_cmpuint(g_array_index(out, AppdepThreadRecord, i - 1).time_ns,
                         <=, g_array_index(out, AppdepThreadRecord, i).time_ns);
    }
    /* content: every input record is there once (host2 repeats in[0]) */
    for (i = 0; i < 100; i++) {
        guint j, hits = 0;

        uint8_t want[APPDEP_WIRE_THREAD_LEN], got[APPDEP_WIRE_THREAD_LEN];

        appdep_wire_encode_thread(&in[i], want);
        for (j = 0; j < out->len; j++) {
            appdep_wire_encode_thread(&g_array_index(out, AppdepThreadRecord,
                                                     j), got);
            hits += !memcmp(got, want, sizeof(got));
        }
        g_assert_cmpuint(hits, ==, i == 0 ? 2 : 1);
    }
    g_array_set_size(out, 0);
    g_assert_cmpint(appdep_store_records_range(s, in[5].time_ns,
                                               in[5].time_ns + 1, out, 0),
                    ==, 0);
    g_assert_cmpuint(out->len, >=, 1);
    appdep_store_close(s);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    ADD("/store/corrupt", test_corrupt);
    ADD("/store/schema-mismatch", test_schema_mismatch);
    ADD("/store/migrate-v1", test_migrate_v1);
    g_test_add("/store/migrate-v2", Fixture, "dupsort", fixture_setup,
               test_migrate_v1, fixture_teardown);
    ADD("/store/stale-readers", test_stale_readers);
    ADD("/store/concurrent-readers", test_concurrent_readers);
    ADD("/store/records", test_records);
    ADD("/store/record-batches", test_record_batches);
    return g_test_run();
}
