/*
 * What the store's unit tests share: a temporary store directory per
 * test, sample messages, the version 1 value encoder (an independent
 * oracle of the old layout) and checked wrappers of the store API.
 *
 * Copyright (c) 2026 appdep authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef APPDEP_TEST_STORE_UTIL_H
#define APPDEP_TEST_STORE_UTIL_H

#include <errno.h>
#include <lmdb.h>
#include <sys/wait.h>
#include <unistd.h>
#include <glib.h>
#include <glib/gstdio.h>
#include "store.h"

#define NS      1000000000ULL
/* a store grown in many batches (map growth, concurrent readers) */
#define GROW_N          20000
#define GROW_BATCH      500
#define T_BASE  1700000000000000000ULL

typedef struct Fixture {
    char *dir;
} Fixture;

static inline void fixture_setup(Fixture *f, gconstpointer data)
{
    g_autoptr(GError) err = NULL;

    f->dir = g_dir_make_tmp("appdep-store-XXXXXX", &err);
    g_assert_no_error(err);
}

static inline void fixture_teardown(Fixture *f, gconstpointer data)
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

static inline AppdepMessage sample(unsigned i, uint64_t send_ns)
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
static inline void assert_same(const AppdepMessage *a, const AppdepMessage *b)
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

static inline void encode_v1_thread(const AppdepThreadId *t, uint8_t *p)
{
    appdep_wire_put_str(p, t->vm, APPDEP_WIRE_VM_LEN);
    appdep_wire_put32(p + 64, t->pid);
    appdep_wire_put32(p + 68, t->tid);
    appdep_wire_put_str(p + 72, t->comm, APPDEP_WIRE_COMM_LEN);
}

static inline void encode_v1(const AppdepMessage *m, uint8_t buf[V1_LEN])
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

static inline GArray *msg_array(void)
{
    return g_array_new(FALSE, TRUE, sizeof(AppdepMessage));
}

static inline AppdepStore *open_store(Fixture *f, const AppdepStoreOptions *opt)
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

static inline uint64_t count(AppdepStore *s)
{
    uint64_t n = UINT64_MAX;

    g_assert_cmpint(appdep_store_count(s, &n), ==, 0);
    return n;
}

static inline void put(AppdepStore *s, const AppdepMessage *m, size_t n)
{
    int rc = appdep_store_put_batch(s, m, n);

    if (rc) {
        g_test_message("put: %s", appdep_store_strerror(rc));
    }
    g_assert_cmpint(rc, ==, 0);
}

#define ADD(name, fn) \
    g_test_add(name, Fixture, NULL, fixture_setup, fn, fixture_teardown)

#endif
