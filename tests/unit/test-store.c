/*
 * Unit tests: the LMDB log database (server/store/): value codec, time
 * and thread range scans, key order, map growth, retention, persistence,
 * corrupted data, stale readers, readers concurrent with growth.
 *
 * Copyright (c) 2026 appdep authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include <errno.h>
#include <lmdb.h>
#include <sys/wait.h>
#include <unistd.h>
#include <glib.h>
#include <glib/gstdio.h>
#include "store.h"

#define NS      1000000000ULL
#define T_BASE  1700000000000000000ULL

typedef struct Fixture {
    char *dir;
} Fixture;

static void fixture_setup(Fixture *f, gconstpointer data)
{
    g_autoptr(GError) err = NULL;

    f->dir = g_dir_make_tmp("appdep-store-XXXXXX", &err);
    g_assert_no_error(err);
}

static void fixture_teardown(Fixture *f, gconstpointer data)
{
    g_autoptr(GDir) d = g_dir_open(f->dir, 0, NULL);
    const char *name;

    while (d && (name = g_dir_read_name(d))) {
        g_autofree char *p = g_build_filename(f->dir, name, NULL);
        g_unlink(p);
    }
    g_rmdir(f->dir);
    g_free(f->dir);
}

static AppdepMessage sample(unsigned i, uint64_t send_ns)
{
    AppdepMessage m = {
        .send_ns = send_ns,
        .recv_ns = send_ns + 1000 + i,
        .sender = { .pid = 100 + i % 7, .tid = 1000 + i % 7 },
        .receiver = { .pid = 200 + i % 5, .tid = 2000 + i % 5 },
        .direction = i % 2 ? APPDEP_DIR_RESPONSE : APPDEP_DIR_REQUEST,
        .bytes = i,
        .seq = 0xfffffff0u + i,
        .conn = {
            .family = i % 3 ? APPDEP_FAMILY_IPV4 : APPDEP_FAMILY_IPV6,
            .caddr = { 10, 0, 0, 1, [15] = (uint8_t)i },
            .saddr = { 10, 0, 0, 2 },
            .cport = 40000 + i % 1000,
            .sport = 8080,
        },
    };

    g_snprintf(m.sender.vm, sizeof(m.sender.vm), "vm-client");
    g_snprintf(m.sender.comm, sizeof(m.sender.comm), "curl");
    g_snprintf(m.receiver.vm, sizeof(m.receiver.vm), "vm-server");
    g_snprintf(m.receiver.comm, sizeof(m.receiver.comm), "nginx");
    return m;
}

/* Field by field, through the canonical encoding. */
static void assert_same(const AppdepMessage *a, const AppdepMessage *b)
{
    uint8_t ea[APPDEP_STORE_VALUE_MAX], eb[APPDEP_STORE_VALUE_MAX];
    size_t na = appdep_store_encode(a, ea), nb = appdep_store_encode(b, eb);

    g_assert_cmpuint(a->send_ns, ==, b->send_ns);
    g_assert_cmpuint(a->bytes, ==, b->bytes);
    g_assert_cmpstr(a->sender.vm, ==, b->sender.vm);
    g_assert_cmpstr(a->receiver.comm, ==, b->receiver.comm);
    g_assert_cmpmem(ea, na, eb, nb);
}

/* The version 1 value layout (schema 2 stores), store.c. */
#define V1_LEN  248

static void encode_v1_thread(const AppdepThreadId *t, uint8_t *p)
{
    appdep_wire_put_str(p, t->vm, APPDEP_WIRE_VM_LEN);
    appdep_wire_put32(p + 64, t->pid);
    appdep_wire_put32(p + 68, t->tid);
    appdep_wire_put_str(p + 72, t->comm, APPDEP_WIRE_COMM_LEN);
}

static void encode_v1(const AppdepMessage *m, uint8_t buf[V1_LEN])
{
    memset(buf, 0, V1_LEN);
    appdep_wire_put16(buf, 1);
    buf[2] = m->direction;
    buf[3] = m->conn.family;
    appdep_wire_put32(buf + 4, m->seq);
    appdep_wire_put64(buf + 8, m->send_ns);
    appdep_wire_put64(buf + 16, m->recv_ns);
    appdep_wire_put64(buf + 24, m->bytes);
    encode_v1_thread(&m->sender, buf + 32);
    encode_v1_thread(&m->receiver, buf + 120);
    memcpy(buf + 208, m->conn.caddr, 16);
    memcpy(buf + 224, m->conn.saddr, 16);
    appdep_wire_put16(buf + 240, m->conn.cport);
    appdep_wire_put16(buf + 242, m->conn.sport);
}

static GArray *msg_array(void)
{
    return g_array_new(FALSE, TRUE, sizeof(AppdepMessage));
}

static AppdepStore *open_store(Fixture *f, const AppdepStoreOptions *opt)
{
    AppdepStore *s = NULL;
    int rc = appdep_store_open(&s, f->dir, opt);

    if (rc) {
        g_test_message("open: %s", appdep_store_strerror(rc));
    }
    g_assert_cmpint(rc, ==, 0);
    g_assert_nonnull(s);
    return s;
}

static uint64_t count(AppdepStore *s)
{
    uint64_t n = UINT64_MAX;

    g_assert_cmpint(appdep_store_count(s, &n), ==, 0);
    return n;
}

static void put(AppdepStore *s, const AppdepMessage *m, size_t n)
{
    int rc = appdep_store_put_batch(s, m, n);

    if (rc) {
        g_test_message("put: %s", appdep_store_strerror(rc));
    }
    g_assert_cmpint(rc, ==, 0);
}

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

#define GROW_N          20000
#define GROW_BATCH      500

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

#define ADD(name, fn) \
    g_test_add(name, Fixture, NULL, fixture_setup, fn, fixture_teardown)

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
