/*
 * Unit tests: the LMDB log database (server/store/): value codec, time
 * and thread range scans, key order, map growth, retention, persistence.
 * Damage, migration, readers and the record log: test-store-durability.c.
 *
 * Copyright (c) 2026 appdep authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "test-store-util.h"

/* ---- codec ---- */

static void test_codec(void)
{
    uint8_t buf[APPDEP_STORE_VALUE_MAX], bad[APPDEP_STORE_VALUE_MAX];
    uint8_t v1[V1_LEN];
    AppdepMessage m = sample(3, T_BASE), out, x;
    size_t n, off;

    /* Full-length strings: no terminator stored. */
    memset(m.sender.vm, 'v', APPDEP_WIRE_VM_LEN);
    m.sender.vm[APPDEP_WIRE_VM_LEN] = '\0';
    memset(m.receiver.comm, 'c', APPDEP_WIRE_COMM_LEN);
    m.receiver.comm[APPDEP_WIRE_COMM_LEN] = '\0';
    g_assert_true(appdep_store_message_valid(&m));
    n = appdep_store_encode(&m, buf);
    g_assert_cmpuint(n, <=, APPDEP_STORE_VALUE_MAX);
    g_assert_cmpint(appdep_store_decode(buf, n, &out), ==, 0);
    assert_same(&m, &out);
    g_assert_cmpuint(out.seq, ==, m.seq);
    g_assert_cmpuint(out.conn.cport, ==, m.conn.cport);
    g_assert_cmpmem(out.conn.caddr, 16, m.conn.caddr, 16);

    /* An IPv4 message with short names: 4-byte addresses, short value. */
    x = sample(1, T_BASE);
    x.conn.caddr[15] = 0;
    g_assert_cmpuint(x.conn.family, ==, APPDEP_FAMILY_IPV4);
    g_snprintf(x.sender.vm, sizeof(x.sender.vm), "vm1");
    g_snprintf(x.sender.comm, sizeof(x.sender.comm), "curl");
    g_assert_cmpuint(appdep_store_encode(&x, bad), ==,
                     37 + 8 + 10 + 7 + 10 + 9 + 5);
    g_assert_cmpint(appdep_store_decode(bad, 37 + 8 + 10 + 7 + 10 + 9 + 5,
                                        &out), ==, 0);
    assert_same(&x, &out);
    g_assert_cmpmem(out.conn.saddr, 16, x.conn.saddr, 16);

    /* Version 1 values (schema 2 stores) are still read. */
    encode_v1(&m, v1);
    g_assert_cmpint(appdep_store_decode(v1, sizeof(v1), &out), ==, 0);
    assert_same(&m, &out);
    g_assert_cmpint(appdep_store_decode(v1, sizeof(v1) - 1, &out), ==,
                    -EBADMSG);
    v1[V1_LEN - 1] = 1;                             /* reserved */
    g_assert_cmpint(appdep_store_decode(v1, sizeof(v1), &out), ==,
                    -EBADMSG);
    encode_v1(&m, v1);
    v1[120 + 9 + 1] = 'x';      /* after the receiver's vm ("vm-server") */
    g_assert_cmpint(appdep_store_decode(v1, sizeof(v1), &out), ==,
                    -EBADMSG);

    /* Invalid messages. */
    x = m;
    x.direction = 0;
    g_assert_false(appdep_store_message_valid(&x));
    x = m;
    x.conn.family = 5;
    g_assert_false(appdep_store_message_valid(&x));
    x = m;
    memset(x.sender.comm, 'c', sizeof(x.sender.comm));  /* unterminated */
    g_assert_false(appdep_store_message_valid(&x));

    /* Every length short of the value, and one byte more. */
    for (off = 0; off < n; off++) {
        g_assert_cmpint(appdep_store_decode(buf, off, &out), ==, -EBADMSG);
    }
    memcpy(bad, buf, n);
    bad[n] = 0;
    g_assert_cmpint(appdep_store_decode(bad, n + 1, &out), ==, -EBADMSG);
    /* Version, enums, address length. */
    memcpy(bad, buf, n);
    bad[0] = 9;
    g_assert_cmpint(appdep_store_decode(bad, n, &out), ==, -EBADMSG);
    memcpy(bad, buf, n);
    bad[2] = 3;
    g_assert_cmpint(appdep_store_decode(bad, n, &out), ==, -EBADMSG);
    memcpy(bad, buf, n);
    bad[3] = 0;
    g_assert_cmpint(appdep_store_decode(bad, n, &out), ==, -EBADMSG);
    memcpy(bad, buf, n);
    bad[36] = 5;
    g_assert_cmpint(appdep_store_decode(bad, n, &out), ==, -EBADMSG);
    /* A NUL inside the sender's vm, and a vm length over its field. */
    off = 37 + 2 * 16;
    memcpy(bad, buf, n);
    bad[off + 10 + 3] = 0;
    g_assert_cmpint(appdep_store_decode(bad, n, &out), ==, -EBADMSG);
    memcpy(bad, buf, n);
    bad[off + 8] = APPDEP_WIRE_VM_LEN + 1;
    g_assert_cmpint(appdep_store_decode(bad, n, &out), ==, -EBADMSG);
    memcpy(bad, buf, n);
    bad[off + 8] = 0xff;
    g_assert_cmpint(appdep_store_decode(bad, n, &out), ==, -EBADMSG);
}

static void test_strerror(void)
{
    g_assert_nonnull(strstr(appdep_store_strerror(MDB_MAP_FULL),
                            "MDB_MAP_FULL"));
    g_assert_cmpstr(appdep_store_strerror(-ENOENT), ==, g_strerror(ENOENT));
    g_assert_nonnull(appdep_store_strerror(-EBADMSG));
}

/* ---- store ---- */

static void test_roundtrip(Fixture *f, gconstpointer data)
{
    g_autoptr(AppdepStore) s = open_store(f, NULL);
    g_autoptr(GArray) out = msg_array();
    AppdepMessage m[100];
    AppdepStoreStats st;
    unsigned i;

    for (i = 0; i < G_N_ELEMENTS(m); i++) {
        m[i] = sample(i, T_BASE + i * NS);
    }
    put(s, m, 50);
    put(s, m + 50, 50);
    g_assert_cmpuint(count(s), ==, 100);
    g_assert_cmpint(appdep_store_range(s, 0, UINT64_MAX, out, 0), ==, 0);
    g_assert_cmpuint(out->len, ==, 100);
    for (i = 0; i < out->len; i++) {
        assert_same(&m[i], &g_array_index(out, AppdepMessage, i));
    }
    appdep_store_stats(s, &st);
    g_assert_cmpuint(st.committed, ==, 100);
    g_assert_cmpuint(st.next_uniq, ==, 100);
    g_assert_cmpuint(st.corrupt, ==, 0);

    /* An empty batch commits nothing and is fine. */
    put(s, NULL, 0);
    g_assert_cmpuint(count(s), ==, 100);
}

static void test_invalid_args(Fixture *f, gconstpointer data)
{
    g_autoptr(AppdepStore) s = open_store(f, NULL);
    g_autoptr(GArray) out = msg_array();
    g_autoptr(GArray) wrong = g_array_new(FALSE, TRUE, 4);
    AppdepStoreOptions bad = { .map_size = 1 << 20, .max_map_size = 1 << 19 };
    AppdepStore *s2 = NULL;
    AppdepMessage m[3] = {
        sample(0, 10), sample(1, 20), sample(2, 30),
    };
    char longvm[APPDEP_WIRE_VM_LEN + 2];

    /* A bad message is skipped and reported, the others committed. */
    m[1].direction = 7;
    g_assert_cmpint(appdep_store_put_batch(s, m, 3), ==, 1);
    g_assert_cmpuint(count(s), ==, 2);

    g_assert_cmpint(appdep_store_range(s, 0, 100, wrong, 0), ==, -EINVAL);
    g_assert_cmpint(appdep_store_thread_range(s, "vm-client", 0, 0, 100,
                                              out, 0), ==, -EINVAL);
    memset(longvm, 'a', sizeof(longvm) - 1);
    longvm[sizeof(longvm) - 1] = '\0';
    g_assert_cmpint(appdep_store_thread_range(s, longvm, 1, 0, 100,
                                              out, 0), ==, -EINVAL);
    g_assert_cmpuint(out->len, ==, 0);

    g_assert_cmpint(appdep_store_open(&s2, "/nonexistent-dir/x", &bad), ==,
                    -EINVAL);
    g_assert_null(s2);
    appdep_store_close(NULL);
}

static void test_range_bounds(Fixture *f, gconstpointer data)
{
    g_autoptr(AppdepStore) s = open_store(f, NULL);
    g_autoptr(GArray) out = msg_array();
    AppdepMessage m[3] = {
        sample(0, 10), sample(1, 20), sample(2, 30),
    };

    put(s, m, 3);

    g_assert_cmpint(appdep_store_range(s, 10, 30, out, 0), ==, 0);
    g_assert_cmpuint(out->len, ==, 2);
    g_assert_cmpuint(g_array_index(out, AppdepMessage, 0).send_ns, ==, 10);
    g_assert_cmpuint(g_array_index(out, AppdepMessage, 1).send_ns, ==, 20);

    g_array_set_size(out, 0);
    g_assert_cmpint(appdep_store_range(s, 11, 30, out, 0), ==, 0);
    g_assert_cmpuint(out->len, ==, 1);
    g_assert_cmpuint(g_array_index(out, AppdepMessage, 0).send_ns, ==, 20);

    g_array_set_size(out, 0);
    g_assert_cmpint(appdep_store_range(s, 10, 31, out, 0), ==, 0);
    g_assert_cmpuint(out->len, ==, 3);

    g_array_set_size(out, 0);
    g_assert_cmpint(appdep_store_range(s, 30, 30, out, 0), ==, 0);
    g_assert_cmpint(appdep_store_range(s, 31, 10, out, 0), ==, 0);
    g_assert_cmpint(appdep_store_range(s, 31, UINT64_MAX, out, 0), ==, 0);
    g_assert_cmpint(appdep_store_range(s, 0, 10, out, 0), ==, 0);
    g_assert_cmpuint(out->len, ==, 0);

    /* limit, and results are appended */
    g_assert_cmpint(appdep_store_range(s, 0, 100, out, 2), ==, 0);
    g_assert_cmpuint(out->len, ==, 2);
    g_assert_cmpint(appdep_store_range(s, 25, 100, out, 2), ==, 0);
    g_assert_cmpuint(out->len, ==, 3);
    g_assert_cmpuint(g_array_index(out, AppdepMessage, 2).send_ns, ==, 30);
}

static gint cmp_u64(gconstpointer a, gconstpointer b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

    return x < y ? -1 : x > y;
}

/* Big-endian keys: memcmp order is numeric order across byte boundaries. */
static void test_key_order(Fixture *f, gconstpointer data)
{
    static const uint64_t times[] = {
        0x8000000000000000ULL, 1, 0x100000000ULL, 0xffffffffULL,
        0x7fffffffffffffffULL, 256, 255, UINT64_MAX - 1, 0,
        0x100000001ULL, 0x8000000000000001ULL, 0x1000000000000ULL,
    };
    g_autoptr(AppdepStore) s = open_store(f, NULL);
    g_autoptr(GArray) out = msg_array();
    g_autoptr(GArray) sorted = g_array_new(FALSE, FALSE, sizeof(uint64_t));
    unsigned i;

    /* One batch per message, so most are inserted out of order. */
    for (i = 0; i < G_N_ELEMENTS(times); i++) {
        AppdepMessage m = sample(i, times[i]);

        put(s, &m, 1);
        g_array_append_val(sorted, times[i]);
    }
    g_array_sort(sorted, cmp_u64);

    g_assert_cmpint(appdep_store_range(s, 0, UINT64_MAX, out, 0), ==, 0);
    g_assert_cmpuint(out->len, ==, G_N_ELEMENTS(times));
    for (i = 0; i < out->len; i++) {
        g_assert_cmpuint(g_array_index(out, AppdepMessage, i).send_ns, ==,
                         g_array_index(sorted, uint64_t, i));
    }

    /* Boundaries across 2^32 and 2^63. */
    g_array_set_size(out, 0);
    g_assert_cmpint(appdep_store_range(s, 0xffffffffULL, 0x100000001ULL,
                                       out, 0), ==, 0);
    g_assert_cmpuint(out->len, ==, 2);
    g_assert_cmpuint(g_array_index(out, AppdepMessage, 0).send_ns, ==,
                     0xffffffffULL);
    g_assert_cmpuint(g_array_index(out, AppdepMessage, 1).send_ns, ==,
                     0x100000000ULL);
    g_array_set_size(out, 0);
    g_assert_cmpint(appdep_store_range(s, 0x7fffffffffffffffULL,
                                       0x8000000000000001ULL, out, 0), ==, 0);
    g_assert_cmpuint(out->len, ==, 2);
    g_assert_cmpuint(g_array_index(out, AppdepMessage, 1).send_ns, ==,
                     0x8000000000000000ULL);
}

/*
 * One large unsorted batch (sorted by radix passes over the time
 * offsets), with equal times that must keep their batch order, a span
 * of more than 2^48 ns, and a few invalid messages.
 */
static void test_batch_order(Fixture *f, gconstpointer data)
{
    g_autoptr(AppdepStore) s = open_store(f, NULL);
    g_autoptr(GArray) out = msg_array();
    g_autofree AppdepMessage *m = g_new(AppdepMessage, 5000);
    GRand *rnd = g_rand_new_with_seed(3);
    unsigned i;

    for (i = 0; i < 5000; i++) {
        uint64_t t = T_BASE + g_rand_int_range(rnd, 0, 1000) *
                     (i % 7 ? 1000003ULL : 1ULL << 40);

        m[i] = sample(i, t);
        m[i].bytes = i;
        if (i % 1000 == 999) {
            m[i].direction = 0;                 /* invalid: skipped */
        }
    }
    g_rand_free(rnd);
    g_assert_cmpint(appdep_store_put_batch(s, m, 5000), ==, 5);
    g_assert_cmpint(appdep_store_range(s, 0, UINT64_MAX, out, 0), ==, 0);
    g_assert_cmpuint(out->len, ==, 4995);
    for (i = 1; i < out->len; i++) {
        const AppdepMessage *a = &g_array_index(out, AppdepMessage, i - 1);
        const AppdepMessage *b = &g_array_index(out, AppdepMessage, i);

        g_assert_true(a->send_ns < b->send_ns ||
                      (a->send_ns == b->send_ns && a->bytes < b->bytes));
        g_assert_cmpuint(b->bytes % 1000, !=, 999);
    }
}

static void test_thread_range(Fixture *f, gconstpointer data)
{
    g_autoptr(AppdepStore) s = open_store(f, NULL);
    g_autoptr(GArray) out = msg_array();
    AppdepMessage m[6];
    unsigned i;

    for (i = 0; i < G_N_ELEMENTS(m); i++) {
        m[i] = sample(i, 100 + i * 10);
        strcpy(m[i].sender.vm, "a");
        m[i].sender.tid = 1;
        strcpy(m[i].receiver.vm, "b");
        m[i].receiver.tid = 2;
    }
    /* Look-alikes: vm "ab" tid 1, vm "a" tid 256, vm "a" tid 0x01000000. */
    strcpy(m[1].sender.vm, "ab");
    m[2].sender.tid = 256;
    m[3].sender.tid = 0x01000000;
    /* a/1 receives (a response from b/2). */
    m[4].sender = m[0].receiver;
    m[4].receiver = m[0].sender;
    /* receiver not seen */
    m[5].receiver.tid = 0;
    put(s, m, G_N_ELEMENTS(m));

    /* a/1: sent 0 and 5, received 4 */
    g_assert_cmpint(appdep_store_thread_range(s, "a", 1, 0, UINT64_MAX,
                                              out, 0), ==, 0);
    g_assert_cmpuint(out->len, ==, 3);
    assert_same(&g_array_index(out, AppdepMessage, 0), &m[0]);
    assert_same(&g_array_index(out, AppdepMessage, 1), &m[4]);
    assert_same(&g_array_index(out, AppdepMessage, 2), &m[5]);

    /* b/2: received 0..3, sent 4; not 5 (receiver unseen) */
    g_array_set_size(out, 0);
    g_assert_cmpint(appdep_store_thread_range(s, "b", 2, 0, UINT64_MAX,
                                              out, 0), ==, 0);
    g_assert_cmpuint(out->len, ==, 5);
    for (i = 0; i < 5; i++) {
        assert_same(&g_array_index(out, AppdepMessage, i), &m[i]);
    }

    /* Time window on a thread: [110, 140) -> 1, 2, 3 */
    g_array_set_size(out, 0);
    g_assert_cmpint(appdep_store_thread_range(s, "b", 2, 110, 140,
                                              out, 0), ==, 0);
    g_assert_cmpuint(out->len, ==, 3);
    g_assert_cmpuint(g_array_index(out, AppdepMessage, 0).send_ns, ==, 110);
    g_assert_cmpuint(g_array_index(out, AppdepMessage, 2).send_ns, ==, 130);

    /* Look-alikes are their own threads. */
    g_array_set_size(out, 0);
    g_assert_cmpint(appdep_store_thread_range(s, "ab", 1, 0, UINT64_MAX,
                                              out, 0), ==, 0);
    g_assert_cmpuint(out->len, ==, 1);
    g_assert_cmpuint(g_array_index(out, AppdepMessage, 0).send_ns, ==, 110);
    g_array_set_size(out, 0);
    g_assert_cmpint(appdep_store_thread_range(s, "a", 256, 0, UINT64_MAX,
                                              out, 0), ==, 0);
    g_assert_cmpuint(out->len, ==, 1);
    g_assert_cmpuint(g_array_index(out, AppdepMessage, 0).send_ns, ==, 120);
    g_array_set_size(out, 0);
    g_assert_cmpint(appdep_store_thread_range(s, "b", 1, 0, UINT64_MAX,
                                              out, 0), ==, 0);
    g_assert_cmpint(appdep_store_thread_range(s, "", 2, 0, UINT64_MAX,
                                              out, 0), ==, 0);
    g_assert_cmpuint(out->len, ==, 0);

    /* limit */
    g_assert_cmpint(appdep_store_thread_range(s, "b", 2, 0, UINT64_MAX,
                                              out, 2), ==, 0);
    g_assert_cmpuint(out->len, ==, 2);
}

/* A thread talking to itself (loopback, same tid) is listed once. */
static void test_thread_self(Fixture *f, gconstpointer data)
{
    g_autoptr(AppdepStore) s = open_store(f, NULL);
    g_autoptr(GArray) out = msg_array();
    AppdepMessage m = sample(0, 5);

    m.receiver = m.sender;
    put(s, &m, 1);
    g_assert_cmpint(appdep_store_thread_range(s, m.sender.vm, m.sender.tid,
                                              0, 10, out, 0), ==, 0);
    g_assert_cmpuint(out->len, ==, 1);
}

#define SAME_TIME_N     10000

static void test_same_time(Fixture *f, gconstpointer data)
{
    g_autoptr(AppdepStore) s = open_store(f, NULL);
    g_autoptr(GArray) out = msg_array();
    g_autofree AppdepMessage *m = g_new(AppdepMessage, SAME_TIME_N);
    unsigned i;

    for (i = 0; i < SAME_TIME_N; i++) {
        m[i] = sample(i, T_BASE);
    }
    for (i = 0; i < SAME_TIME_N; i += 1000) {
        put(s, m + i, 1000);
    }
    g_assert_cmpuint(count(s), ==, SAME_TIME_N);
    g_assert_cmpint(appdep_store_range(s, T_BASE, T_BASE + 1, out, 0), ==, 0);
    g_assert_cmpuint(out->len, ==, SAME_TIME_N);
    for (i = 0; i < SAME_TIME_N; i++) {
        /* arrival order among equal times */
        g_assert_cmpuint(g_array_index(out, AppdepMessage, i).bytes, ==, i);
    }
    g_array_set_size(out, 0);
    g_assert_cmpint(appdep_store_thread_range(s, "vm-client", 1000,
                                              T_BASE, T_BASE + 1, out, 0),
                    ==, 0);
    g_assert_cmpuint(out->len, ==, (SAME_TIME_N + 6) / 7);
}

static void test_map_growth(Fixture *f, gconstpointer data)
{
    AppdepStoreOptions opt = {
        .map_size = 256 << 10,
        .max_map_size = 64 << 20,
    };
    g_autoptr(AppdepStore) s = open_store(f, &opt);
    g_autoptr(GArray) out = msg_array();
    g_autofree AppdepMessage *m = g_new(AppdepMessage, GROW_N);
    AppdepStoreStats st;
    unsigned i;

    /* Out of order batches too, so not everything is an append. */
    for (i = 0; i < GROW_N; i++) {
        m[i] = sample(i, T_BASE + (uint64_t)(i % 3 ? i : GROW_N - i) * 1000);
    }
    for (i = 0; i < GROW_N; i += GROW_BATCH) {
        put(s, m + i, GROW_BATCH);
    }
    appdep_store_stats(s, &st);
    g_test_message("map grew %" G_GUINT64_FORMAT " times to %" G_GUINT64_FORMAT
                   " bytes", st.map_grows, st.map_size);
    g_assert_cmpuint(st.map_grows, >=, 3);
    g_assert_cmpuint(st.map_size, <=, opt.max_map_size);
    g_assert_cmpuint(count(s), ==, GROW_N);

    g_assert_cmpint(appdep_store_range(s, 0, UINT64_MAX, out, 0), ==, 0);
    g_assert_cmpuint(out->len, ==, GROW_N);
    for (i = 1; i < out->len; i++) {
        g_assert_cmpuint(g_array_index(out, AppdepMessage, i - 1).send_ns, <=,
                         g_array_index(out, AppdepMessage, i).send_ns);
    }
    for (i = 0; i < out->len; i++) {
        const AppdepMessage *o = &g_array_index(out, AppdepMessage, i);
        assert_same(o, &m[o->bytes]);
    }
}

/* At max_map_size: the batch fails whole, what was committed stays. */
static void test_map_full(Fixture *f, gconstpointer data)
{
    AppdepStoreOptions opt = {
        .map_size = 256 << 10,
        .max_map_size = 512 << 10,
    };
    g_autoptr(AppdepStore) s = open_store(f, &opt);
    AppdepMessage m[100];
    uint64_t committed = 0;
    unsigned i, b;
    int rc = 0;

    for (b = 0; b < 1000 && rc == 0; b++) {
        for (i = 0; i < G_N_ELEMENTS(m); i++) {
            m[i] = sample(i, T_BASE + b * 1000 + i);
        }
        rc = appdep_store_put_batch(s, m, G_N_ELEMENTS(m));
        if (rc == 0) {
            committed += G_N_ELEMENTS(m);
        }
    }
    g_assert_cmpint(rc, ==, MDB_MAP_FULL);
    g_assert_nonnull(strstr(appdep_store_strerror(rc), "MDB_MAP_FULL"));
    g_assert_cmpuint(committed, >, 0);
    g_assert_cmpuint(count(s), ==, committed);
}

#define EXPIRE_N        20000   /* > APPDEP_STORE_EXPIRE_CHUNK */

static void test_expire(Fixture *f, gconstpointer data)
{
    AppdepStoreOptions opt = { .retention_s = 10 };
    g_autoptr(AppdepStore) s = open_store(f, &opt);
    g_autoptr(GArray) out = msg_array();
    g_autofree AppdepMessage *m = g_new(AppdepMessage, EXPIRE_N);
    AppdepStoreStats st;
    uint64_t step = 100 * NS / EXPIRE_N;    /* EXPIRE_N messages in 100 s */
    uint64_t cutoff = T_BASE + 40 * NS;
    uint64_t kept;
    unsigned i;

    G_STATIC_ASSERT(EXPIRE_N > 2 * APPDEP_STORE_EXPIRE_CHUNK);
    for (i = 0; i < EXPIRE_N; i++) {
        m[i] = sample(i, T_BASE + i * step);
    }
    for (i = 0; i < EXPIRE_N; i += 4000) {
        put(s, m + i, 4000);
    }
    kept = EXPIRE_N - (cutoff - T_BASE + step - 1) / step;

    /* Nothing is old enough yet. */
    g_assert_cmpint(appdep_store_expire(s, T_BASE + 10 * NS), ==, 0);
    g_assert_cmpuint(count(s), ==, EXPIRE_N);

    g_assert_cmpint(appdep_store_expire(s, T_BASE + 50 * NS), ==, 0);
    g_assert_cmpuint(count(s), ==, kept);
    appdep_store_stats(s, &st);
    g_assert_cmpuint(st.expired, ==, EXPIRE_N - kept);

    g_assert_cmpint(appdep_store_range(s, 0, UINT64_MAX, out, 0), ==, 0);
    g_assert_cmpuint(out->len, ==, kept);
    g_assert_cmpuint(g_array_index(out, AppdepMessage, 0).send_ns, >=, cutoff);
    g_assert_cmpuint(g_array_index(out, AppdepMessage, 0).send_ns, <,
                     cutoff + step);

    /* Thread keys went with their messages: no dangling index entries. */
    g_array_set_size(out, 0);
    g_assert_cmpint(appdep_store_thread_range(s, "vm-server", 2000, 0,
                                              UINT64_MAX, out, 0), ==, 0);
    g_assert_cmpuint(out->len, ==, (kept + 4) / 5);
    g_assert_cmpuint(g_array_index(out, AppdepMessage, 0).send_ns, >=, cutoff);
    appdep_store_stats(s, &st);
    g_assert_cmpuint(st.corrupt, ==, 0);

    /* Everything */
    g_assert_cmpint(appdep_store_expire(s, UINT64_MAX), ==, 0);
    g_assert_cmpuint(count(s), ==, 0);
}

static void test_expire_forever(Fixture *f, gconstpointer data)
{
    g_autoptr(AppdepStore) s = open_store(f, NULL);
    AppdepMessage m = sample(0, 1);

    put(s, &m, 1);
    g_assert_cmpint(appdep_store_expire(s, UINT64_MAX), ==, 0);
    g_assert_cmpuint(count(s), ==, 1);
}

static void test_reopen(Fixture *f, gconstpointer data)
{
    g_autoptr(GArray) out = msg_array();
    AppdepStoreStats st;
    AppdepMessage m[10];
    AppdepStore *s;
    unsigned i, round;

    for (round = 0; round < 3; round++) {
        s = open_store(f, NULL);
        appdep_store_stats(s, &st);
        g_assert_cmpuint(st.next_uniq, ==, round * 10);
        /* Same times every round: only uniq tells them apart. */
        for (i = 0; i < G_N_ELEMENTS(m); i++) {
            m[i] = sample(round * 10 + i, T_BASE + i);
        }
        put(s, m, G_N_ELEMENTS(m));
        appdep_store_close(s);
    }

    s = open_store(f, NULL);
    g_assert_cmpuint(count(s), ==, 30);
    g_assert_cmpint(appdep_store_range(s, 0, UINT64_MAX, out, 0), ==, 0);
    g_assert_cmpuint(out->len, ==, 30);
    for (i = 0; i < out->len; i++) {
        /* time i / 3, then round: all three rounds survived */
        const AppdepMessage *o = &g_array_index(out, AppdepMessage, i);
        g_assert_cmpuint(o->send_ns, ==, T_BASE + i / 3);
        g_assert_cmpuint(o->bytes, ==, (i % 3) * 10 + i / 3);
    }
    appdep_store_close(s);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/store/codec", test_codec);
    g_test_add_func("/store/strerror", test_strerror);
    ADD("/store/roundtrip", test_roundtrip);
    ADD("/store/invalid-args", test_invalid_args);
    ADD("/store/range-bounds", test_range_bounds);
    ADD("/store/key-order", test_key_order);
    ADD("/store/batch-order", test_batch_order);
    ADD("/store/thread-range", test_thread_range);
    ADD("/store/thread-self", test_thread_self);
    ADD("/store/same-time", test_same_time);
    ADD("/store/map-growth", test_map_growth);
    ADD("/store/map-full", test_map_full);
    ADD("/store/expire", test_expire);
    ADD("/store/expire-forever", test_expire_forever);
    ADD("/store/reopen", test_reopen);
    return g_test_run();
}
