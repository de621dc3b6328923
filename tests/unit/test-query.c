/*
 * Unit tests: targeted trajectory queries (server/query.c) against the
 * whole-window computation (server/trajectory.c over appdep_store_range)
 * on a store holding nested multi-tier traffic.
 *
 * Copyright (c) 2026 appdep authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include <glib.h>
#include <glib/gstdio.h>
#include <string.h>
#include "query.h"
#include "render.h"

#define US 1000ULL
#define MS 1000000ULL
#define T0 (1700000000ULL * 1000000000ULL)
#define ROOTS 60

static void thread(AppdepThreadId *t, const char *vm, const char *comm,
                   uint32_t tid)
{
    memset(t, 0, sizeof(*t));
    g_strlcpy(t->vm, vm, sizeof(t->vm));
    g_strlcpy(t->comm, comm, sizeof(t->comm));
    t->pid = tid ? tid - tid % 10 : 0;
    t->tid = tid;
}

/*
 * One exchange: request sent by @cli at t[0] to @srv, read at t[1]; the
 * response sent at t[2], read at t[3] (0: not seen).  Connection
 * 10.0.0.c:cport -> 10.0.0.s:sport.
 */
static void exchange(GArray *out, const AppdepThreadId *cli, uint8_t c,
                     uint16_t cport, const AppdepThreadId *srv, uint8_t s,
                     uint16_t sport, const uint64_t t[4], bool answered)
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
    req.send_ns = t[0];
    req.recv_ns = srv->tid ? t[1] : 0;
    req.bytes = 64;
    req.seq = cport * 7u;
    g_array_append_val(out, req);
    if (answered) {
        resp.direction = APPDEP_DIR_RESPONSE;
        resp.sender = *srv;
        resp.receiver = *cli;
        resp.send_ns = t[2];
        resp.recv_ns = cli->tid ? t[3] : 0;
        resp.bytes = 200;
        resp.seq = sport * 13u + cport;
        g_array_append_val(out, resp);
    }
}

/*
 * ROOTS requests, 3 ms apart, each taking 8 ms, from four client threads
 * (every fifth from an untraced client) to a pool of four web workers
 * (nginx:80): each worker serves one request at a time, the requests
 * overlap across workers.  A web worker calls app (pool of four, :8080)
 * twice, app calls db (:5432), and web calls an untraced cache
 * (10.0.0.9:11211) over one connection per worker, reused by every
 * request.  The last request is never answered.
 */
static GArray *traffic(void)
{
    GArray *m = g_array_new(FALSE, FALSE, sizeof(AppdepMessage));
    AppdepThreadId cli[4], web[4], app[4], db[4], anon, cache;
    uint16_t port = 30000;
    unsigned k, i;

    for (i = 0; i < 4; i++) {
        thread(&cli[i], "client", "curl", 11 + i);
        thread(&web[i], "web", "nginx", 21 + i);
        thread(&app[i], "app", "java", 31 + i);
        thread(&db[i], "db", "postgres", 41 + i);
    }
    thread(&anon, "", "", 0);
    thread(&cache, "", "", 0);
    for (k = 0; k < ROOTS; k++) {
        uint64_t t = T0 + k * 3 * MS;
        const AppdepThreadId *c = k % 5 == 4 ? &anon : &cli[k % 4];
        const AppdepThreadId *w = &web[k % 4];
        uint64_t tr[4] = { t, t + 100 * US, t + 7500 * US, t + 7600 * US };
        unsigned j;

        exchange(m, c, 1, port++, w, 2, 80, tr, k != ROOTS - 1);
        for (j = 0; j < 2; j++) {
            const AppdepThreadId *a = &app[(2 * k + j) % 4];
            uint64_t ta = t + (1 + 3 * j) * MS;
            uint64_t tw[4] = { ta, ta + 50 * US, ta + 2 * MS,
                               ta + 2 * MS + 50 * US };
            uint64_t td[4] = { ta + 300 * US, ta + 350 * US, ta + 1 * MS,
                               ta + 1 * MS + 50 * US };

            exchange(m, w, 2, port++, a, 3, 8080, tw, true);
            exchange(m, a, 3, port++, &db[(2 * k + j) % 4], 4, 5432, td,
                     true);
        }
        {
            uint64_t tc[4] = { t + 6 * MS, 0, t + 6500 * US,
                               t + 6600 * US };

            exchange(m, w, 2, 40000 + k % 4, &cache, 9, 11211, tc, true);
        }
    }
    return m;
}

/* The trees of the roots of @app in [t0, t1), the window way. */
static GPtrArray *window_trees(AppdepStore *s, uint64_t t0, uint64_t t1,
                               uint64_t w1, const char *vm, uint16_t port)
{
    g_autoptr(GArray) msgs = g_array_new(FALSE, FALSE,
                                         sizeof(AppdepMessage));
    g_autoptr(GArray) roots = NULL;
    GPtrArray *out = g_ptr_array_new_with_free_func(g_free);
    AppdepExchanges *x;
    guint i;

    g_assert_cmpint(appdep_store_range(s, t0, w1, msgs, 0), ==, 0);
    x = appdep_exchanges_new((AppdepMessage *)msgs->data, msgs->len);
    roots = appdep_trajectory_roots(x, vm, NULL, port);
    for (i = 0; i < roots->len; i++) {
        guint k = g_array_index(roots, guint, i);
        AppdepTrajNode *t;
        GString *js;

        if (appdep_exchanges_get(x, k)->req.send_ns >= t1) {
            continue;
        }
        t = appdep_trajectory_build(x, k);
        js = g_string_new(NULL);
        appdep_trajectory_to_json(t, js);
        g_ptr_array_add(out, g_string_free(js, FALSE));
        appdep_traj_node_free(t);
    }
    appdep_exchanges_free(x);
    return out;
}

/* The same through query.c. */
static GPtrArray *targeted_trees(AppdepStore *s, uint64_t t0, uint64_t t1,
                                 uint64_t w1, const char *vm, uint16_t port)
{
    g_autoptr(GArray) roots = g_array_new(FALSE, FALSE,
                                          sizeof(AppdepMessage));
    GPtrArray *out = g_ptr_array_new_with_free_func(g_free);
    guint i;

    g_assert_cmpint(appdep_query_roots(s, t0, w1, vm, NULL, port, t1,
                                       roots), ==, 0);
    for (i = 0; i < roots->len; i++) {
        AppdepTrajNode *t = NULL;
        GString *js = g_string_new(NULL);

        g_assert_cmpint(appdep_query_trajectory(
                            s, t0, w1, &g_array_index(roots, AppdepMessage,
                                                      i), &t), ==, 0);
        appdep_trajectory_to_json(t, js);
        g_ptr_array_add(out, g_string_free(js, FALSE));
        appdep_traj_node_free(t);
    }
    return out;
}

static void compare(AppdepStore *s, uint64_t t0, uint64_t t1,
                    const char *vm, uint16_t port, guint expect_min)
{
    uint64_t w1 = t1 + 60000 * MS;
    g_autoptr(GPtrArray) a = window_trees(s, t0, t1, w1, vm, port);
    g_autoptr(GPtrArray) b = targeted_trees(s, t0, t1, w1, vm, port);
    guint i;

    g_assert_cmpuint(a->len, >=, expect_min);
    g_assert_cmpuint(a->len, ==, b->len);
    for (i = 0; i < a->len; i++) {
        g_assert_cmpstr(g_ptr_array_index(a, i), ==,
                        g_ptr_array_index(b, i));
    }
}

static void test_same_trees(void)
{
    g_autoptr(GError) err = NULL;
    g_autofree char *dir = g_dir_make_tmp("appdep-test-query-XXXXXX", &err);
    g_autoptr(GArray) m = traffic();
    g_autoptr(GArray) roots = g_array_new(FALSE, FALSE,
                                          sizeof(AppdepMessage));
    g_autoptr(AppdepStore) s = NULL;
    g_autoptr(GString) js = g_string_new(NULL);
    AppdepTrajNode *t = NULL;
    uint64_t w1 = T0 + 3600000 * MS;
    const char *const files[] = { "data.mdb", "lock.mdb" };
    unsigned i;

    g_assert_nonnull(dir);
    g_assert_cmpint(appdep_store_open(&s, dir, NULL), ==, 0);
    /* two batches, the second partly older than the first */
    g_assert_cmpint(appdep_store_put_batch(s, (AppdepMessage *)m->data + 40,
                                           m->len - 40), ==, 0);
    g_assert_cmpint(appdep_store_put_batch(s, (AppdepMessage *)m->data, 40),
                    ==, 0);

    /* the nesting is there: web -> app -> db, and the untraced cache */
    g_assert_cmpint(appdep_query_roots(s, T0, w1, "web", "nginx", 80, w1,
                                       roots), ==, 0);
    g_assert_cmpuint(roots->len, ==, ROOTS);
    g_assert_cmpint(appdep_query_trajectory(
                        s, T0, w1, &g_array_index(roots, AppdepMessage, 0),
                        &t), ==, 0);
    g_assert_cmpuint(t->children->len, ==, 3);
    g_assert_cmpuint(((AppdepTrajNode *)g_ptr_array_index(t->children, 0))
                     ->children->len, ==, 1);
    appdep_trajectory_to_json(t, js);
    g_assert(strstr(js->str, "\"vm\":\"db\""));
    appdep_traj_node_free(t);

    /* whole range; windows cutting requests; the middle tier as the app */
    compare(s, T0, w1, "web", 80, ROOTS);
    compare(s, T0 + 10 * MS, T0 + 100 * MS, "web", 80, 25);
    compare(s, T0 + 1 * MS, T0 + 50 * MS, "web", 0, 10);
    compare(s, T0 + 5 * MS, T0 + 170 * MS, "app", 8080, 1);
    compare(s, T0, w1, "db", 5432, 0);
    compare(s, T0 + 1200 * US, w1, "db", 5432, 1);
    compare(s, T0, w1, "web", 81, 0);

    /* a request that is not in the window */
    g_assert_cmpint(appdep_query_trajectory(
                        s, T0 + 1, w1, &g_array_index(roots, AppdepMessage, 0),
                        &t), ==, -ENOENT);
    g_assert_null(t);

    g_clear_pointer(&s, appdep_store_close);
    for (i = 0; i < G_N_ELEMENTS(files); i++) {
        g_autofree char *p = g_build_filename(dir, files[i], NULL);

        g_unlink(p);
    }
    g_rmdir(dir);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/query/same-trees", test_same_trees);
    return g_test_run();
}
