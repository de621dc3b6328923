/*
 * Unit tests: per-thread -> inter-thread conversion (server/convert.c)
 * on synthetic record streams.
 *
 * Copyright (c) 2026 appdep authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include <glib.h>
#include <string.h>
#include "convert.h"

#define MS 1000000ULL
#define T0 (1700000000ULL * 1000000000ULL)

typedef struct Host {
    const char *vm;
    uint8_t ip;             /* 10.0.0.ip */
} Host;

static const Host CLI = { "cli", 1 }, SRV = { "srv", 2 }, DB = { "db", 3 };

static uint64_t serial;

static AppdepThreadRecord rec(const Host *h, uint32_t tid, const char *comm,
                              uint8_t op, uint16_t lport, const Host *peer,
                              uint16_t rport, uint64_t t, uint32_t seq,
                              uint64_t bytes)
{
    AppdepThreadRecord r;

    memset(&r, 0, sizeof(r));
    g_strlcpy(r.vm, h->vm, sizeof(r.vm));
    g_strlcpy(r.comm, comm, sizeof(r.comm));
    r.pid = tid - tid % 10;
    r.tid = tid;
    r.op = op;
    r.family = APPDEP_FAMILY_IPV4;
    r.saddr[0] = 10;
    r.saddr[3] = h->ip;
    r.daddr[0] = 10;
    r.daddr[3] = peer->ip;
    r.sport = lport;
    r.dport = rport;
    r.time_ns = t;
    r.seq = seq;
    r.bytes = bytes;
    r.serial = serial++;
    return r;
}

static void collect(const AppdepMessage *m, void *opaque)
{
    g_array_append_val((GArray *)opaque, *m);
}

typedef struct Run {
    AppdepConverter *cv;
    GArray *out;
} Run;

static void run_init(Run *r)
{
    r->out = g_array_new(FALSE, FALSE, sizeof(AppdepMessage));
    r->cv = appdep_converter_new(collect, r->out);
}

static void run_free(Run *r)
{
    appdep_converter_free(r->cv);
    g_array_free(r->out, TRUE);
}

static void feed(Run *r, const AppdepThreadRecord *recs, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++) {
        appdep_converter_feed(r->cv, &recs[i]);
    }
}

#define MSG(r, i) (&g_array_index((r)->out, AppdepMessage, (i)))

/* One exchange: 64-byte request read as 8 + 56, 100-byte reply. */
static size_t exchange(AppdepThreadRecord *v, uint64_t t, uint16_t cport,
                       uint32_t cseq, uint32_t sseq, uint32_t ctid,
                       uint32_t stid)
{
    size_t n = 0;

    v[n++] = rec(&CLI, ctid, "cli", APPDEP_OP_SEND, cport, &SRV, 80, t,
                 cseq, 64);
    v[n++] = rec(&SRV, stid, "srv", APPDEP_OP_RECV, 80, &CLI, cport,
                 t + 1 * MS, cseq, 8);
    v[n++] = rec(&SRV, stid, "srv", APPDEP_OP_RECV, 80, &CLI, cport,
                 t + 2 * MS, cseq + 8, 56);
    v[n++] = rec(&SRV, stid, "srv", APPDEP_OP_SEND, 80, &CLI, cport,
                 t + 5 * MS, sseq, 100);
    v[n++] = rec(&CLI, ctid, "cli", APPDEP_OP_RECV, cport, &SRV, 80,
                 t + 6 * MS, sseq, 100);
    return n;
}

static void check_exchange(Run *r, unsigned i, uint32_t ctid, uint32_t stid,
                           uint16_t cport, uint64_t t)
{
    AppdepMessage *req = MSG(r, i), *resp = MSG(r, i + 1);

    g_assert_cmpint(req->direction, ==, APPDEP_DIR_REQUEST);
    g_assert_cmpstr(req->sender.vm, ==, "cli");
    g_assert_cmpuint(req->sender.tid, ==, ctid);
    g_assert_cmpstr(req->receiver.vm, ==, "srv");
    g_assert_cmpuint(req->receiver.tid, ==, stid);
    g_assert_cmpuint(req->bytes, ==, 64);
    g_assert_cmpuint(req->send_ns, ==, t);
    g_assert_cmpuint(req->recv_ns, ==, t + 2 * MS);
    g_assert_cmpuint(req->conn.cport, ==, cport);
    g_assert_cmpuint(req->conn.sport, ==, 80);
    g_assert_cmpuint(req->conn.caddr[3], ==, 1);
    g_assert_cmpuint(req->conn.saddr[3], ==, 2);

    g_assert_cmpint(resp->direction, ==, APPDEP_DIR_RESPONSE);
    g_assert_cmpuint(resp->sender.tid, ==, stid);
    g_assert_cmpuint(resp->receiver.tid, ==, ctid);
    g_assert_cmpuint(resp->bytes, ==, 100);
    g_assert_cmpuint(resp->send_ns, ==, t + 5 * MS);
    g_assert_cmpuint(resp->recv_ns, ==, t + 6 * MS);
    g_assert_cmpuint(resp->conn.cport, ==, cport);
}

static void test_simple(void)
{
    AppdepThreadRecord v[8];
    Run r;
    size_t n;

    run_init(&r);
    n = exchange(v, T0, 40000, 1000, 5000, 11, 21);
    feed(&r, v, n);
    appdep_converter_flush(r.cv, false);
    /* the response is the last run: not final yet */
    g_assert_cmpuint(r.out->len, ==, 0);
    appdep_converter_flush(r.cv, true);
    g_assert_cmpuint(r.out->len, ==, 2);
    check_exchange(&r, 0, 11, 21, 40000, T0);
    run_free(&r);
}

/* The server's VM reports before the client's: same messages. */
static void test_out_of_order(void)
{
    AppdepThreadRecord v[8], w[8];
    Run r;
    size_t n, i, k = 0;

    run_init(&r);
    n = exchange(v, T0, 40000, 1000, 5000, 11, 21);
    for (i = 0; i < n; i++) {
        if (!strcmp(v[i].vm, "srv")) {
            w[k++] = v[i];
        }
    }
    for (i = 0; i < n; i++) {
        if (!strcmp(v[i].vm, "cli")) {
            w[k++] = v[i];
        }
    }
    feed(&r, w, k);
    appdep_converter_flush(r.cv, true);
    g_assert_cmpuint(r.out->len, ==, 2);
    check_exchange(&r, 0, 11, 21, 40000, T0);
    run_free(&r);
}

/* Two connections whose records interleave. */
static void test_interleaved(void)
{
    AppdepThreadRecord a[8], b[8], w[16];
    Run r;
    size_t n, i, k = 0;
    unsigned seen = 0;

    run_init(&r);
    n = exchange(a, T0, 40000, 1000, 5000, 11, 21);
    exchange(b, T0 + 500000, 40001, 7000, 9000, 12, 22);
    for (i = 0; i < n; i++) {
        w[k++] = a[i];
        w[k++] = b[i];
    }
    feed(&r, w, k);
    appdep_converter_flush(r.cv, true);
    g_assert_cmpuint(r.out->len, ==, 4);
    for (i = 0; i < 4; i += 2) {
        if (MSG(&r, i)->conn.cport == 40000) {
            check_exchange(&r, i, 11, 21, 40000, T0);
            seen |= 1;
        } else {
            check_exchange(&r, i, 12, 22, 40001, T0 + 500000);
            seen |= 2;
        }
    }
    g_assert_cmpuint(seen, ==, 3);
    run_free(&r);
}

/* Keep-alive: three exchanges on one connection, then both close. */
static void test_keepalive(void)
{
    AppdepThreadRecord v[32];
    Run r;
    size_t n = 0;
    unsigned i;

    run_init(&r);
    for (i = 0; i < 3; i++) {
        n += exchange(v + n, T0 + i * 100 * MS, 40000, 1000 + 64 * i,
                      5000 + 100 * i, 11, 21);
    }
    v[n++] = rec(&CLI, 11, "cli", APPDEP_OP_CLOSE, 40000, &SRV, 80,
                 T0 + 400 * MS, 1192, 0);
    v[n++] = rec(&SRV, 21, "srv", APPDEP_OP_CLOSE, 80, &CLI, 40000,
                 T0 + 401 * MS, 5300, 0);
    feed(&r, v, n);
    appdep_converter_flush(r.cv, true);
    g_assert_cmpuint(r.out->len, ==, 6);
    for (i = 0; i < 3; i++) {
        check_exchange(&r, 2 * i, 11, 21, 40000, T0 + i * 100 * MS);
        g_assert_cmpuint(MSG(&r, 2 * i)->seq, ==, 1000 + 64 * i);
    }
    run_free(&r);
}

/*
 * Port reuse: after both ends closed, the same 4-tuple carries a new
 * connection, on which the *other* end happens to speak first.
 */
static void test_port_reuse(void)
{
    AppdepThreadRecord v[32];
    Run r;
    size_t n;

    run_init(&r);
    n = exchange(v, T0, 40000, 1000, 5000, 11, 21);
    v[n++] = rec(&CLI, 11, "cli", APPDEP_OP_CLOSE, 40000, &SRV, 80,
                 T0 + 10 * MS, 1064, 0);
    v[n++] = rec(&SRV, 21, "srv", APPDEP_OP_CLOSE, 80, &CLI, 40000,
                 T0 + 11 * MS, 5100, 0);
    feed(&r, v, n);
    /* a new connection, new sequence numbers; the server greets first */
    v[0] = rec(&SRV, 23, "srv", APPDEP_OP_SEND, 80, &CLI, 40000,
               T0 + 50 * MS, 777000, 10);
    v[1] = rec(&CLI, 13, "cli", APPDEP_OP_RECV, 40000, &SRV, 80,
               T0 + 51 * MS, 777000, 10);
    v[2] = rec(&CLI, 13, "cli", APPDEP_OP_SEND, 40000, &SRV, 80,
               T0 + 52 * MS, 999000, 20);
    feed(&r, v, 3);
    appdep_converter_flush(r.cv, true);
    g_assert_cmpuint(r.out->len, ==, 4);
    check_exchange(&r, 0, 11, 21, 40000, T0);
    /* a new connection: the server's greeting is still a response (the
     * client is on the ephemeral port), the client's send a request */
    g_assert_cmpuint(MSG(&r, 2)->sender.tid, ==, 23);
    g_assert_cmpint(MSG(&r, 2)->direction, ==, APPDEP_DIR_RESPONSE);
    g_assert_cmpuint(MSG(&r, 2)->receiver.tid, ==, 13);
    g_assert_cmpuint(MSG(&r, 2)->seq, ==, 777000);
    g_assert_cmpuint(MSG(&r, 3)->sender.tid, ==, 13);
    g_assert_cmpint(MSG(&r, 3)->direction, ==, APPDEP_DIR_REQUEST);
    g_assert_cmpuint(MSG(&r, 3)->receiver.tid, ==, 0);
    run_free(&r);
}

/*
 * Port reuse seen in the other order: the server VM's records of the new
 * connection (its receive of the new request) reach the converter before
 * the client VM's send of it.  Its sequence numbers are outside the old
 * connection's, so it still starts the new connection.
 */
static void test_port_reuse_server_first(void)
{
    AppdepThreadRecord v[32];
    Run r;
    size_t n;

    run_init(&r);
    n = exchange(v, T0, 40000, 1000, 5000, 11, 21);
    v[n++] = rec(&CLI, 11, "cli", APPDEP_OP_CLOSE, 40000, &SRV, 80,
                 T0 + 10 * MS, 1064, 0);
    v[n++] = rec(&SRV, 21, "srv", APPDEP_OP_CLOSE, 80, &CLI, 40000,
                 T0 + 11 * MS, 5100, 0);
    feed(&r, v, n);
    v[0] = rec(&SRV, 23, "srv", APPDEP_OP_RECV, 80, &CLI, 40000,
               T0 + 51 * MS, 999000, 64);
    v[1] = rec(&SRV, 23, "srv", APPDEP_OP_SEND, 80, &CLI, 40000,
               T0 + 53 * MS, 777000, 100);
    v[2] = rec(&CLI, 13, "cli", APPDEP_OP_SEND, 40000, &SRV, 80,
               T0 + 50 * MS, 999000, 64);
    v[3] = rec(&CLI, 13, "cli", APPDEP_OP_RECV, 40000, &SRV, 80,
               T0 + 54 * MS, 777000, 100);
    feed(&r, v, 4);
    appdep_converter_flush(r.cv, true);
    g_assert_cmpuint(r.out->len, ==, 4);
    check_exchange(&r, 0, 11, 21, 40000, T0);
    g_assert_cmpuint(MSG(&r, 2)->sender.tid, ==, 13);
    g_assert_cmpuint(MSG(&r, 2)->receiver.tid, ==, 23);
    g_assert_cmpint(MSG(&r, 2)->direction, ==, APPDEP_DIR_REQUEST);
    g_assert_cmpuint(MSG(&r, 2)->seq, ==, 999000);
    g_assert_cmpuint(MSG(&r, 3)->sender.tid, ==, 23);
    g_assert_cmpuint(MSG(&r, 3)->receiver.tid, ==, 13);
    g_assert_cmpint(MSG(&r, 3)->direction, ==, APPDEP_DIR_RESPONSE);
    run_free(&r);
}

/* Both ports outside the ephemeral range: the first speaker is client. */
static void test_first_speaker(void)
{
    AppdepThreadRecord v[4];
    Run r;

    run_init(&r);
    v[0] = rec(&SRV, 23, "srv", APPDEP_OP_SEND, 80, &CLI, 1000, T0, 5, 10);
    v[1] = rec(&CLI, 13, "cli", APPDEP_OP_RECV, 1000, &SRV, 80, T0 + MS, 5,
               10);
    v[2] = rec(&CLI, 13, "cli", APPDEP_OP_SEND, 1000, &SRV, 80, T0 + 2 * MS,
               9, 20);
    feed(&r, v, 3);
    appdep_converter_flush(r.cv, true);
    g_assert_cmpuint(r.out->len, ==, 2);
    g_assert_cmpint(MSG(&r, 0)->direction, ==, APPDEP_DIR_REQUEST);
    g_assert_cmpuint(MSG(&r, 0)->sender.tid, ==, 23);
    g_assert_cmpuint(MSG(&r, 0)->conn.sport, ==, 1000);
    run_free(&r);
}

/* Observation starts mid-connection with a response: still a response. */
static void test_mid_connection(void)
{
    AppdepThreadRecord v[8];
    Run r;
    size_t n;

    run_init(&r);
    n = exchange(v, T0, 40000, 1000, 5000, 11, 21);
    feed(&r, v + 3, n - 3);         /* only the response */
    n = exchange(v, T0 + 10 * MS, 40000, 1064, 5100, 11, 21);
    feed(&r, v, n);
    appdep_converter_flush(r.cv, true);
    g_assert_cmpuint(r.out->len, ==, 3);
    g_assert_cmpint(MSG(&r, 0)->direction, ==, APPDEP_DIR_RESPONSE);
    check_exchange(&r, 1, 11, 21, 40000, T0 + 10 * MS);
    run_free(&r);
}

/* Only the client is traced: the receiver is unknown, bytes still right. */
static void test_one_end(void)
{
    AppdepThreadRecord v[8], w[8];
    Run r;
    size_t n, i, k = 0;

    run_init(&r);
    n = exchange(v, T0, 40000, 1000, 5000, 11, 21);
    for (i = 0; i < n; i++) {
        if (!strcmp(v[i].vm, "srv")) {
            w[k++] = v[i];
        }
    }
    feed(&r, w, k);
    appdep_converter_flush(r.cv, true);
    g_assert_cmpuint(r.out->len, ==, 2);
    /* seen from the server only: the request's sender is unknown */
    g_assert_cmpuint(MSG(&r, 0)->sender.tid, ==, 0);
    g_assert_cmpuint(MSG(&r, 0)->receiver.tid, ==, 21);
    g_assert_cmpuint(MSG(&r, 0)->bytes, ==, 64);
    g_assert_cmpint(MSG(&r, 0)->direction, ==, APPDEP_DIR_REQUEST);
    g_assert_cmpuint(MSG(&r, 1)->sender.tid, ==, 21);
    g_assert_cmpuint(MSG(&r, 1)->bytes, ==, 100);
    g_assert_cmpuint(MSG(&r, 0)->conn.caddr[3], ==, 1);
    run_free(&r);
}

/* Messages become final once the lateness window has passed. */
static void test_lateness(void)
{
    AppdepThreadRecord v[16];
    Run r;
    size_t n;

    run_init(&r);
    n = exchange(v, T0, 40000, 1000, 5000, 11, 21);
    feed(&r, v, n);
    appdep_converter_flush(r.cv, false);
    g_assert_cmpuint(r.out->len, ==, 0);
    /* later traffic elsewhere moves stream time past the window */
    n = exchange(v, T0 + APPDEP_CONV_LATENESS_NS + 100 * MS, 40001, 3000,
                 8000, 12, 22);
    feed(&r, v, n);
    appdep_converter_flush(r.cv, false);
    /* the request of the first connection is final, its response is
     * the last run and waits for more (the connection is still open) */
    g_assert_cmpuint(r.out->len, ==, 1);
    g_assert_cmpint(MSG(&r, 0)->direction, ==, APPDEP_DIR_REQUEST);
    appdep_converter_flush(r.cv, true);
    g_assert_cmpuint(r.out->len, ==, 4);
    run_free(&r);
}

/* A three-tier chain: srv calls db while serving the client. */
static void test_chain(void)
{
    AppdepThreadRecord v[16];
    Run r;
    size_t n = 0;
    unsigned i, up = 0;

    run_init(&r);
    n += exchange(v, T0, 40000, 1000, 5000, 11, 21);
    /* between receiving (T0+2ms) and replying (T0+5ms), srv/21 asks db */
    v[n++] = rec(&SRV, 21, "srv", APPDEP_OP_SEND, 50000, &DB, 5432,
                 T0 + 3 * MS, 100, 30);
    v[n++] = rec(&DB, 31, "db", APPDEP_OP_RECV, 5432, &SRV, 50000,
                 T0 + 3 * MS + 100000, 100, 30);
    v[n++] = rec(&DB, 31, "db", APPDEP_OP_SEND, 5432, &SRV, 50000,
                 T0 + 4 * MS, 200, 40);
    v[n++] = rec(&SRV, 21, "srv", APPDEP_OP_RECV, 50000, &DB, 5432,
                 T0 + 4 * MS + 100000, 200, 40);
    feed(&r, v, n);
    appdep_converter_flush(r.cv, true);
    g_assert_cmpuint(r.out->len, ==, 4);
    for (i = 0; i < 4; i++) {
        AppdepMessage *m = MSG(&r, i);

        if (m->conn.sport == 5432) {
            up++;
            g_assert_cmpuint(m->direction == APPDEP_DIR_REQUEST ?
                             m->sender.tid : m->receiver.tid, ==, 21);
            g_assert_cmpuint(m->direction == APPDEP_DIR_REQUEST ?
                             m->receiver.tid : m->sender.tid, ==, 31);
        }
    }
    g_assert_cmpuint(up, ==, 2);
    run_free(&r);
}

/* Random garbage records never crash the converter. */
static void test_garbage(void)
{
    g_autoptr(GRand) rnd = g_rand_new_with_seed(7);
    AppdepConvStats st;
    Run r;
    unsigned i;

    run_init(&r);
    for (i = 0; i < 20000; i++) {
        AppdepThreadRecord x;
        uint8_t *p = (uint8_t *)&x;
        size_t j;

        for (j = 0; j < sizeof(x); j++) {
            p[j] = g_rand_int(rnd);
        }
        x.vm[APPDEP_WIRE_VM_LEN] = '\0';
        x.comm[APPDEP_WIRE_COMM_LEN] = '\0';
        x.op = 1 + g_rand_int_range(rnd, 0, 3);
        x.family = g_rand_boolean(rnd) ? APPDEP_FAMILY_IPV4
                                       : APPDEP_FAMILY_IPV6;
        x.sport = g_rand_int_range(rnd, 1, 4);
        x.dport = g_rand_int_range(rnd, 1, 4);
        x.saddr[0] = x.daddr[0] = 0;
        appdep_converter_feed(r.cv, &x);
        if (i % 1000 == 0) {
            appdep_converter_flush(r.cv, false);
        }
    }
    appdep_converter_flush(r.cv, true);
    appdep_converter_stats(r.cv, &st);
    g_assert_cmpuint(st.records, ==, 20000);
    run_free(&r);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/convert/simple", test_simple);
    g_test_add_func("/convert/out-of-order", test_out_of_order);
    g_test_add_func("/convert/interleaved", test_interleaved);
    g_test_add_func("/convert/keepalive", test_keepalive);
    g_test_add_func("/convert/port-reuse", test_port_reuse);
    g_test_add_func("/convert/port-reuse-server-first",
                    test_port_reuse_server_first);
    g_test_add_func("/convert/first-speaker", test_first_speaker);
    g_test_add_func("/convert/mid-connection", test_mid_connection);
    g_test_add_func("/convert/one-end", test_one_end);
    g_test_add_func("/convert/lateness", test_lateness);
    g_test_add_func("/convert/chain", test_chain);
    g_test_add_func("/convert/garbage", test_garbage);
    return g_test_run();
}
