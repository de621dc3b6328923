/*
 * Unit tests: trajectories and dependency maps (server/trajectory.c).
 *
 * Copyright (c) 2026 appdep authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include <glib.h>
#include <string.h>
#include "render.h"
#include "trajectory.h"

#define MS 1000000ULL
#define T0 (1700000000ULL * 1000000000ULL)

static void thread(AppdepThreadId *t, const char *vm, const char *comm,
                   uint32_t tid)
{
    memset(t, 0, sizeof(*t));
    g_strlcpy(t->vm, vm, sizeof(t->vm));
    g_strlcpy(t->comm, comm, sizeof(t->comm));
    t->pid = tid - tid % 10;
    t->tid = tid;
}

/*
 * One exchange between @cli and @srv on connection (10.0.0.c:cport ->
 * 10.0.0.s:sport): request sent at @t, received at t+1ms, response
 * sent at @t_resp, received 1 ms later.
 */
static void exchange(GArray *out, const AppdepThreadId *cli, uint8_t c,
                     uint16_t cport, const AppdepThreadId *srv, uint8_t s,
                     uint16_t sport, uint64_t t, uint64_t t_resp)
{
    AppdepMessage req, resp;

    memset(&req, 0, sizeof(req));
    req.conn.family = APPDEP_FAMILY_IPV4;
    req.conn.caddr[0] = req.conn.saddr[0] = 10;
    req.conn.caddr[3] = c;
    req.conn.saddr[3] = s;
    req.conn.cport = cport;
    req.conn.sport = sport;
    resp = req;
    req.direction = APPDEP_DIR_REQUEST;
    req.sender = *cli;
    req.receiver = *srv;
    req.send_ns = t;
    req.recv_ns = t + MS;
    req.bytes = 64;
    resp.direction = APPDEP_DIR_RESPONSE;
    resp.sender = *srv;
    resp.receiver = *cli;
    resp.send_ns = t_resp;
    resp.recv_ns = t_resp + MS;
    resp.bytes = 200;
    /* responses first: the pairing must not depend on input order */
    g_array_append_val(out, resp);
    g_array_append_val(out, req);
}

/*
 * client -> web (thread 21) -> app (31) -> db (41), and web also calls
 * cache (51) directly: a fan-out plus an indirect dependency.  A second
 * request is served concurrently by web thread 22.
 */
static GArray *three_tier(void)
{
    GArray *m = g_array_new(FALSE, FALSE, sizeof(AppdepMessage));
    AppdepThreadId cli, cli2, web, web2, app, app2, db, cache;

    thread(&cli, "client", "tcpcli", 11);
    thread(&cli2, "client", "tcpcli", 12);
    thread(&web, "web", "tcpsrv", 21);
    thread(&web2, "web", "tcpsrv", 22);
    thread(&app, "app", "tcpsrv", 31);
    thread(&app2, "app", "tcpsrv", 32);
    thread(&db, "db", "pgsql", 41);
    thread(&cache, "cache", "memcd", 51);

    exchange(m, &cli, 1, 40000, &web, 2, 8080, T0, T0 + 20 * MS);
    exchange(m, &web, 2, 50000, &app, 3, 9090, T0 + 2 * MS, T0 + 10 * MS);
    exchange(m, &app, 3, 51000, &db, 4, 5432, T0 + 4 * MS, T0 + 7 * MS);
    exchange(m, &web, 2, 52000, &cache, 5, 11211, T0 + 13 * MS,
             T0 + 15 * MS);
    /* the concurrent request, on other threads */
    exchange(m, &cli2, 1, 40001, &web2, 2, 8080, T0 + 1 * MS, T0 + 30 * MS);
    exchange(m, &web2, 2, 50001, &app2, 3, 9090, T0 + 5 * MS, T0 + 25 * MS);
    return m;
}

static void check_nested(const AppdepTrajNode *n)
{
    guint i;

    for (i = 0; i < n->children->len; i++) {
        const AppdepTrajNode *c = g_ptr_array_index(n->children, i);

        g_assert_cmpuint(c->start_ns, >=, n->start_ns);
        g_assert_cmpuint(c->end_ns, <=, n->end_ns);
        check_nested(c);
    }
}

static void test_tree(void)
{
    g_autoptr(GArray) m = three_tier();
    AppdepExchanges *x = appdep_exchanges_new((AppdepMessage *)m->data,
                                              m->len);
    g_autoptr(GArray) roots = appdep_trajectory_roots(x, "web", NULL, 8080);
    AppdepTrajNode *t, *app, *db, *cache;
    g_autoptr(GString) s = g_string_new(NULL);

    g_assert_cmpuint(appdep_exchanges_len(x), ==, 6);
    g_assert_cmpuint(roots->len, ==, 2);

    t = appdep_trajectory_build(x, g_array_index(roots, guint, 0));
    g_assert_cmpuint(t->ex->req.sender.tid, ==, 11);
    g_assert_cmpuint(appdep_exchange_server(t->ex)->tid, ==, 21);
    g_assert_cmpuint(t->start_ns, ==, T0);
    g_assert_cmpuint(t->end_ns, ==, T0 + 21 * MS);
    g_assert_cmpuint(t->children->len, ==, 2);
    app = g_ptr_array_index(t->children, 0);
    cache = g_ptr_array_index(t->children, 1);
    g_assert_cmpstr(appdep_exchange_server(app->ex)->vm, ==, "app");
    g_assert_cmpstr(appdep_exchange_server(cache->ex)->vm, ==, "cache");
    g_assert_cmpuint(app->children->len, ==, 1);
    db = g_ptr_array_index(app->children, 0);
    g_assert_cmpstr(appdep_exchange_server(db->ex)->comm, ==, "pgsql");
    g_assert_cmpuint(db->children->len, ==, 0);
    g_assert_cmpuint(cache->children->len, ==, 0);
    check_nested(t);

    appdep_trajectory_to_json(t, s);
    g_assert(strstr(s->str, "\"server\":{\"vm\":\"db\",\"comm\":\"pgsql\""));
    g_assert(g_str_has_prefix(s->str, "{\"client\":{\"vm\":\"client\""));
    g_string_truncate(s, 0);
    appdep_trajectory_to_text(t, s);
    g_assert(strstr(s->str, "    app/tcpsrv[31] -> db/pgsql[41]:5432"));
    appdep_traj_node_free(t);

    /* the concurrent request: its own thread, its own child only */
    t = appdep_trajectory_build(x, g_array_index(roots, guint, 1));
    g_assert_cmpuint(appdep_exchange_server(t->ex)->tid, ==, 22);
    g_assert_cmpuint(t->children->len, ==, 1);
    check_nested(t);
    appdep_traj_node_free(t);
    appdep_exchanges_free(x);
}

static void test_map(void)
{
    g_autoptr(GArray) m = three_tier();
    AppdepExchanges *x = appdep_exchanges_new((AppdepMessage *)m->data,
                                              m->len);
    GArray *edges = appdep_map_build(x, T0, T0 + 3600 * 1000 * MS);
    g_autoptr(GString) s = g_string_new(NULL);
    guint i, found = 0;

    g_assert_cmpuint(edges->len, ==, 4);
    for (i = 0; i < edges->len; i++) {
        AppdepEdge *e = &g_array_index(edges, AppdepEdge, i);

        if (!strcmp(e->client.vm, "client")) {
            g_assert_cmpstr(e->server.vm, ==, "web");
            g_assert_cmpuint(e->server.port, ==, 8080);
            g_assert_cmpuint(e->calls, ==, 2);
            g_assert_cmpuint(e->req_bytes, ==, 128);
            g_assert_cmpuint(e->resp_bytes, ==, 400);
            g_assert_cmpuint(e->latency_max_ns, ==, 30 * MS);
            g_assert_cmpuint(e->latency_sum_ns / e->latency_n, ==,
                             (21 + 30) * MS / 2);
            found |= 1;
        } else if (!strcmp(e->server.vm, "app")) {
            g_assert_cmpuint(e->calls, ==, 2);
            found |= 2;
        } else if (!strcmp(e->server.vm, "db")) {
            g_assert_cmpuint(e->calls, ==, 1);
            found |= 4;
        } else {
            g_assert_cmpstr(e->server.vm, ==, "cache");
            found |= 8;
        }
    }
    g_assert_cmpuint(found, ==, 15);
    appdep_map_to_dot(edges, s);
    g_assert(strstr(s->str, "\"client/tcpcli\" -> \"web/tcpsrv:8080\""));
    g_string_truncate(s, 0);
    appdep_map_to_json(edges, s);
    g_assert(g_str_has_prefix(s->str, "{\"edges\":[{\"client\":"));
    g_array_free(edges, TRUE);

    /* a window that excludes everything */
    edges = appdep_map_build(x, T0 + 1000 * MS, T0 + 2000 * MS);
    g_assert_cmpuint(edges->len, ==, 0);
    g_array_free(edges, TRUE);
    appdep_exchanges_free(x);
}

/* An untraced client shows up by address; hostile names are escaped. */
static void test_untraced_and_escaping(void)
{
    GArray *m = g_array_new(FALSE, FALSE, sizeof(AppdepMessage));
    AppdepThreadId nobody, evil;
    AppdepExchanges *x;
    GArray *edges;
    g_autoptr(GString) s = g_string_new(NULL);

    memset(&nobody, 0, sizeof(nobody));
    thread(&evil, "vm\"x", "a\\b\n", 21);
    exchange(m, &nobody, 9, 40000, &evil, 2, 80, T0, T0 + MS);
    x = appdep_exchanges_new((AppdepMessage *)m->data, m->len);
    edges = appdep_map_build(x, 0, UINT64_MAX);
    g_assert_cmpuint(edges->len, ==, 1);
    g_assert_cmpstr(g_array_index(edges, AppdepEdge, 0).client.addr, ==,
                    "10.0.0.9");
    appdep_map_to_json(edges, s);
    g_assert(strstr(s->str, "\"vm\":\"vm\\\"x\",\"program\":\"a\\\\b\\u000a\""));
    g_string_truncate(s, 0);
    appdep_map_to_dot(edges, s);
    g_assert(strstr(s->str, "\"10.0.0.9\" -> \"vm\\\"x/a\\\\b?:80\""));
    g_array_free(edges, TRUE);
    appdep_exchanges_free(x);
    g_array_free(m, TRUE);
}

/*
 * One exchange with every time and thread given: the request sent by @cli
 * at @t[0], read by @rcv at @t[1]; the response sent by @ans at @t[2],
 * read by @cli at @t[3].  Connection 10.0.0.c:cport -> 10.0.0.s:sport.
 */
static void exchange_at(GArray *out, const AppdepThreadId *cli, uint8_t c,
                        uint16_t cport, const AppdepThreadId *rcv,
                        const AppdepThreadId *ans, uint8_t s, uint16_t sport,
                        const uint64_t t[4])
{
    exchange(out, cli, c, cport, rcv, s, sport, t[0], t[2]);
    g_array_index(out, AppdepMessage, out->len - 1).recv_ns = t[1];
    g_array_index(out, AppdepMessage, out->len - 2).sender = *ans;
    g_array_index(out, AppdepMessage, out->len - 2).recv_ns = t[3];
}

/*
 * The client ports of the children of each root on client port @cport,
 * "," between children and "|" between roots, in time order.
 */
static GString *kids_of(const AppdepExchanges *x, uint16_t cport)
{
    g_autoptr(GArray) roots = appdep_trajectory_roots(x, "web", NULL, 8080);
    GString *out = g_string_new(NULL);
    guint i, j;

    for (i = 0; i < roots->len; i++) {
        AppdepTrajNode *t = appdep_trajectory_build(
            x, g_array_index(roots, guint, i));

        if (t->ex->req.conn.cport == cport) {
            if (out->len) {
                g_string_append_c(out, '|');
            }
            for (j = 0; j < t->children->len; j++) {
                const AppdepTrajNode *k = g_ptr_array_index(t->children, j);

                g_string_append_printf(out, "%s%u", j ? "," : "",
                                       k->ex->req.conn.cport);
            }
            check_nested(t);
        }
        appdep_traj_node_free(t);
    }
    return out;
}

#define AT(a, b, c, d) ((const uint64_t[4]){ T0 + (a), T0 + (b), T0 + (c), \
                                             T0 + (d) })

/*
 * A thread pool fed by an acceptor: thread 61 reads requests A and C and
 * queues them; worker 62 answers A, then C, calling the backend for each.
 * The server of each is the worker, and each call belongs to the request
 * the worker answers next, although C was waiting while A's call ran.
 */
static void test_pool(void)
{
    g_autoptr(GArray) m = g_array_new(FALSE, FALSE, sizeof(AppdepMessage));
    AppdepThreadId c1, c2, acc, wrk, be;
    AppdepExchanges *x;
    g_autoptr(GString) a = NULL, c = NULL;

    thread(&c1, "client", "cli", 11);
    thread(&c2, "client", "cli", 12);
    thread(&acc, "web", "srv", 61);
    thread(&wrk, "web", "srv", 62);
    thread(&be, "db", "db", 71);
    exchange_at(m, &c1, 1, 40000, &acc, &wrk, 2, 8080,
                AT(0, 1 * MS, 10 * MS, 11 * MS));
    exchange_at(m, &c2, 1, 40001, &acc, &wrk, 2, 8080,
                AT(1 * MS, 2 * MS, 20 * MS, 21 * MS));
    exchange_at(m, &wrk, 2, 50000, &be, &be, 4, 5432,
                AT(3 * MS, 4 * MS, 7 * MS, 8 * MS));
    exchange_at(m, &wrk, 2, 50001, &be, &be, 4, 5432,
                AT(12 * MS, 13 * MS, 17 * MS, 18 * MS));
    x = appdep_exchanges_new((AppdepMessage *)m->data, m->len);
    a = kids_of(x, 40000);
    c = kids_of(x, 40001);
    g_assert_cmpstr(a->str, ==, "50000");
    g_assert_cmpstr(c->str, ==, "50001");
    g_assert_cmpuint(appdep_exchange_server(appdep_exchanges_get(x, 0))->tid,
                     ==, 62);
    appdep_exchanges_free(x);
}

/*
 * An event loop (thread 61) serves A and B at once over kept-open
 * backend connections: it reads A, calls for A, reads B, calls for B,
 * then answers both.  Each call belongs to the request read just before
 * it.  Then C and D: C's call needs a new connection, and D, read while
 * it connects, is called for first on a kept connection; C's call on the
 * new connection still belongs to C.
 */
static void test_event_loop(void)
{
    g_autoptr(GArray) m = g_array_new(FALSE, FALSE, sizeof(AppdepMessage));
    AppdepThreadId c1, c2, ev, be;
    AppdepExchanges *x;
    g_autoptr(GString) a = NULL, b = NULL, c = NULL, d = NULL;

    thread(&c1, "client", "cli", 11);
    thread(&c2, "client", "cli", 12);
    thread(&ev, "web", "srv", 61);
    thread(&be, "db", "db", 71);
    /* earlier traffic on the kept connections: no request was open */
    exchange_at(m, &ev, 2, 50000, &be, &be, 4, 5432,
                AT(0, 1 * MS, 2 * MS, 3 * MS));
    exchange_at(m, &ev, 2, 50001, &be, &be, 4, 5432,
                AT(4 * MS, 5 * MS, 6 * MS, 7 * MS));
    exchange_at(m, &c1, 1, 40000, &ev, &ev, 2, 8080,
                AT(10 * MS, 11 * MS, 30 * MS, 31 * MS));
    exchange_at(m, &ev, 2, 50000, &be, &be, 4, 5432,
                AT(12 * MS, 13 * MS, 20 * MS, 21 * MS));
    exchange_at(m, &c2, 1, 40001, &ev, &ev, 2, 8080,
                AT(14 * MS, 15 * MS, 32 * MS, 33 * MS));
    exchange_at(m, &ev, 2, 50001, &be, &be, 4, 5432,
                AT(16 * MS, 17 * MS, 22 * MS, 29 * MS));
    /* C (read at 41) connects; D (read at 43) is called for at 44 */
    exchange_at(m, &c1, 1, 40000, &ev, &ev, 2, 8080,
                AT(40 * MS, 41 * MS, 60 * MS, 61 * MS));
    exchange_at(m, &c2, 1, 40001, &ev, &ev, 2, 8080,
                AT(42 * MS, 43 * MS, 62 * MS, 63 * MS));
    exchange_at(m, &ev, 2, 50000, &be, &be, 4, 5432,
                AT(44 * MS, 45 * MS, 50 * MS, 51 * MS));
    exchange_at(m, &ev, 2, 50002, &be, &be, 4, 5432,
                AT(46 * MS, 47 * MS, 52 * MS, 53 * MS));
    x = appdep_exchanges_new((AppdepMessage *)m->data, m->len);
    a = kids_of(x, 40000);
    b = kids_of(x, 40001);
    /* two roots per client connection: A then C, B then D */
    g_assert_cmpstr(a->str, ==, "50000|50002");
    g_assert_cmpstr(b->str, ==, "50001|50000");
    appdep_exchanges_free(x);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/trajectory/tree", test_tree);
    g_test_add_func("/trajectory/map", test_map);
    g_test_add_func("/trajectory/untraced-and-escaping",
                    test_untraced_and_escaping);
    g_test_add_func("/trajectory/pool", test_pool);
    g_test_add_func("/trajectory/event-loop", test_event_loop);
    return g_test_run();
}
