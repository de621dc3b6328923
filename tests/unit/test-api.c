/*
 * Unit tests: the HTTP API's pure parsers (server/api/api-parse.c) and the
 * learning phase's peer discovery (server/learn.c).
 *
 * Copyright (c) 2026 appdep authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include <errno.h>
#include <string.h>
#include <glib.h>
#include "server.h"
#include "api.h"
#include "learn.h"

#define NS APPDEP_NS_PER_S

static void test_app(void)
{
    AppdepAppSpec a;
    const char *why = NULL;
    g_autofree char *long_vm = g_strnfill(APPDEP_WIRE_VM_LEN, 'v');
    g_autofree char *too_long_vm = g_strnfill(APPDEP_WIRE_VM_LEN + 1, 'v');
    g_autofree char *spec = NULL;

    g_assert_cmpint(appdep_appspec_parse("web", &a, &why), ==, 0);
    g_assert_cmpstr(a.vm, ==, "web");
    g_assert_cmpstr(a.comm, ==, "");
    g_assert_cmpuint(a.port, ==, 0);

    g_assert_cmpint(appdep_appspec_parse("web/nginx:8080", &a, &why), ==, 0);
    g_assert_cmpstr(a.vm, ==, "web");
    g_assert_cmpstr(a.comm, ==, "nginx");
    g_assert_cmpuint(a.port, ==, 8080);

    g_assert_cmpint(appdep_appspec_parse("db:5432", &a, &why), ==, 0);
    g_assert_cmpstr(a.vm, ==, "db");
    g_assert_cmpuint(a.port, ==, 5432);

    spec = g_strdup_printf("%s/0123456789abcdef:65535", long_vm);
    g_assert_cmpint(appdep_appspec_parse(spec, &a, &why), ==, 0);
    g_assert_cmpstr(a.vm, ==, long_vm);
    g_assert_cmpstr(a.comm, ==, "0123456789abcdef");
    g_assert_cmpuint(a.port, ==, 65535);

    static const char *const bad[] = {
        "", "/x", ":80", "web:", "web:0", "web:65536", "web:80x", "web:-1",
        "web/", "web/0123456789abcdefg", "web/a/b", "w\x01" "b", "web/a\tb",
        "web:99999999999999999999999",
    };
    for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
        why = NULL;
        g_assert_cmpint(appdep_appspec_parse(bad[i], &a, &why), <, 0);
        g_assert_nonnull(why);
    }
    g_assert_cmpint(appdep_appspec_parse(too_long_vm, &a, &why), <, 0);
    g_assert_cmpint(appdep_appspec_parse(NULL, &a, &why), <, 0);
}

static void test_u64(void)
{
    const char *why;
    uint64_t v;

    g_assert_cmpint(appdep_api_parse_u64("0", 0, 10, &v, &why), ==, 0);
    g_assert_cmpuint(v, ==, 0);
    g_assert_cmpint(appdep_api_parse_u64("18446744073709551615", 0,
                                         UINT64_MAX, &v, &why), ==, 0);
    g_assert_cmpuint(v, ==, UINT64_MAX);
    g_assert_cmpint(appdep_api_parse_u64("18446744073709551616", 0,
                                         UINT64_MAX, &v, &why), ==, -ERANGE);
    g_assert_cmpint(appdep_api_parse_u64("99999999999999999999999", 0,
                                         UINT64_MAX, &v, &why), ==, -ERANGE);
    g_assert_cmpint(appdep_api_parse_u64("11", 0, 10, &v, &why), ==,
                    -ERANGE);
    g_assert_cmpint(appdep_api_parse_u64("0", 1, 10, &v, &why), ==, -ERANGE);
    static const char *const bad[] = { "", "-1", "+1", " 1", "1 ", "1x",
                                       "0x10", "1e3", "1.5" };
    for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
        g_assert_cmpint(appdep_api_parse_u64(bad[i], 0, UINT64_MAX, &v,
                                             &why), ==, -EINVAL);
    }
    g_assert_cmpint(appdep_api_parse_u64(NULL, 0, 1, &v, &why), ==, -EINVAL);
}

static void test_window(void)
{
    const uint64_t now = 1700000000ULL * NS;
    uint64_t t0, t1;
    const char *why;

    /* defaults: the last hour */
    g_assert_cmpint(appdep_api_parse_window(NULL, NULL, NULL, now, &t0, &t1,
                                            &why), ==, 0);
    g_assert_cmpuint(t1, ==, now);
    g_assert_cmpuint(t0, ==, now - APPDEP_API_DEFAULT_WINDOW_NS);

    g_assert_cmpint(appdep_api_parse_window(NULL, NULL, "60", now, &t0, &t1,
                                            &why), ==, 0);
    g_assert_cmpuint(t0, ==, now - 60 * NS);
    g_assert_cmpuint(t1, ==, now);

    g_assert_cmpint(appdep_api_parse_window("100", "200", NULL, now, &t0,
                                            &t1, &why), ==, 0);
    g_assert_cmpuint(t0, ==, 100);
    g_assert_cmpuint(t1, ==, 200);

    /* "to" alone: an hour before it, clamped at 0 */
    g_assert_cmpint(appdep_api_parse_window(NULL, "5", NULL, now, &t0, &t1,
                                            &why), ==, 0);
    g_assert_cmpuint(t0, ==, 0);
    g_assert_cmpuint(t1, ==, 5);

    g_assert_cmpint(appdep_api_parse_window("200", "200", NULL, now, &t0,
                                            &t1, &why), ==, -ERANGE);
    g_assert_cmpint(appdep_api_parse_window("300", "200", NULL, now, &t0,
                                            &t1, &why), ==, -ERANGE);
    g_assert_cmpint(appdep_api_parse_window("1", NULL, "5", now, &t0, &t1,
                                            &why), ==, -EINVAL);
    g_assert_cmpint(appdep_api_parse_window(NULL, NULL, "0", now, &t0, &t1,
                                            &why), ==, -EINVAL);
    /* more seconds than since the epoch would underflow */
    g_assert_cmpint(appdep_api_parse_window(NULL, NULL, "1700000001", now,
                                            &t0, &t1, &why), ==, -EINVAL);
    g_assert_cmpint(appdep_api_parse_window("x", NULL, NULL, now, &t0, &t1,
                                            &why), ==, -EINVAL);
    g_assert_cmpint(appdep_api_parse_window(NULL, "0", NULL, now, &t0, &t1,
                                            &why), ==, -EINVAL);
}

static void test_body_limit(void)
{
    g_assert_true(appdep_api_body_fits(0, APPDEP_API_MAX_BODY_LEN));
    g_assert_false(appdep_api_body_fits(0, APPDEP_API_MAX_BODY_LEN + 1));
    g_assert_true(appdep_api_body_fits(APPDEP_API_MAX_BODY_LEN - 1, 1));
    g_assert_false(appdep_api_body_fits(APPDEP_API_MAX_BODY_LEN, 1));
    /* the sum would wrap: must still be refused */
    g_assert_false(appdep_api_body_fits(10, SIZE_MAX));
    g_assert_false(appdep_api_body_fits(SIZE_MAX, 10));
}

static void test_route(void)
{
    char arg[APPDEP_API_MAX_URL_LEN + 1];
    AppdepApiRoute r;
    g_autofree char *long_path = NULL;
    g_autofree char *pad = g_strnfill(APPDEP_API_MAX_URL_LEN, 'a');

    g_assert_cmpint(appdep_api_route("GET", "/v1/status", &r, arg,
                                     sizeof(arg)), ==, 0);
    g_assert_cmpint(r, ==, APPDEP_API_ROUTE_STATUS);
    g_assert_cmpint(appdep_api_route("GET", "/v1/vms", &r, arg,
                                     sizeof(arg)), ==, 0);
    g_assert_cmpint(r, ==, APPDEP_API_ROUTE_VMS);
    g_assert_cmpint(appdep_api_route("POST", "/v1/vms/web-1/inspect", &r,
                                     arg, sizeof(arg)), ==, 0);
    g_assert_cmpint(r, ==, APPDEP_API_ROUTE_INSPECT);
    g_assert_cmpstr(arg, ==, "web-1");
    g_assert_cmpint(appdep_api_route("GET", "/v1/map", &r, arg,
                                     sizeof(arg)), ==, 0);
    g_assert_cmpint(r, ==, APPDEP_API_ROUTE_MAP);
    g_assert_cmpint(appdep_api_route("GET", "/v1/trajectories", &r, arg,
                                     sizeof(arg)), ==, 0);
    g_assert_cmpint(r, ==, APPDEP_API_ROUTE_TRAJECTORIES);
    g_assert_cmpint(appdep_api_route("POST", "/v1/learn", &r, arg,
                                     sizeof(arg)), ==, 0);
    g_assert_cmpint(r, ==, APPDEP_API_ROUTE_LEARN_START);
    g_assert_cmpint(appdep_api_route("GET", "/v1/learn", &r, arg,
                                     sizeof(arg)), ==, 0);
    g_assert_cmpint(r, ==, APPDEP_API_ROUTE_LEARN_LIST);
    g_assert_cmpint(appdep_api_route("GET", "/v1/learn/42", &r, arg,
                                     sizeof(arg)), ==, 0);
    g_assert_cmpint(r, ==, APPDEP_API_ROUTE_LEARN_GET);
    g_assert_cmpstr(arg, ==, "42");

    /* wrong method on a resource that exists */
    g_assert_cmpint(appdep_api_route("POST", "/v1/status", &r, arg,
                                     sizeof(arg)), ==, -EPERM);
    g_assert_cmpint(appdep_api_route("GET", "/v1/vms/web/inspect", &r, arg,
                                     sizeof(arg)), ==, -EPERM);
    g_assert_cmpint(appdep_api_route("POST", "/v1/learn/1", &r, arg,
                                     sizeof(arg)), ==, -EPERM);

    static const char *const none[] = {
        "/", "", "/v1", "/v1/", "/v1/status/", "/v2/status", "/v1/vms/",
        "/v1/vms/web", "/v1/vms//inspect", "/v1/vms/web/inspect/",
        "/v1/vms/a/b/inspect", "/v1/learn/", "/v1/learn/1/x", "/v1/maps",
    };
    for (size_t i = 0; i < G_N_ELEMENTS(none); i++) {
        g_assert_cmpint(appdep_api_route("GET", none[i], &r, arg,
                                         sizeof(arg)), ==, -ENOENT);
        g_assert_cmpint(appdep_api_route("POST", none[i], &r, arg,
                                         sizeof(arg)), ==, -ENOENT);
    }
    /* an argument longer than the caller's buffer */
    g_assert_cmpint(appdep_api_route("GET", "/v1/learn/123456789", &r, arg,
                                     4), ==, -ENOENT);
    long_path = g_strdup_printf("/v1/learn/%s", pad);
    g_assert_cmpint(appdep_api_route("GET", long_path, &r, arg, sizeof(arg)),
                    ==, -ENOENT);
}

static void test_bodies(void)
{
    AppdepAppSpec a;
    const char *why;
    uint32_t w;
    bool en;

#define INSPECT(s) appdep_api_parse_inspect(s, strlen(s), &en, &why)
    g_assert_cmpint(INSPECT("{\"enable\": true}"), ==, 0);
    g_assert_true(en);
    g_assert_cmpint(INSPECT("{\"enable\":false}"), ==, 0);
    g_assert_false(en);
    g_assert_cmpint(INSPECT(""), ==, -EINVAL);
    g_assert_cmpint(INSPECT("{"), ==, -EINVAL);
    g_assert_cmpint(INSPECT("[true]"), ==, -EINVAL);
    g_assert_cmpint(INSPECT("true"), ==, -EINVAL);
    g_assert_cmpint(INSPECT("{}"), ==, -EINVAL);
    g_assert_cmpint(INSPECT("{\"enable\": 1}"), ==, -EINVAL);
    g_assert_cmpint(INSPECT("{\"enable\": \"true\"}"), ==, -EINVAL);
    g_assert_cmpint(INSPECT("{\"enable\": null}"), ==, -EINVAL);
    g_assert_cmpint(INSPECT("{\"enabled\": true}"), ==, -EINVAL);
    g_assert_cmpint(INSPECT("{\"enable\": true, \"x\": 1}"), ==, -EINVAL);
    /* a NUL inside the body */
    g_assert_cmpint(appdep_api_parse_inspect("{\"enable\":true}\0", 16, &en,
                                             &why), ==, -EINVAL);
#undef INSPECT

#define LEARN(s) appdep_api_parse_learn(s, strlen(s), &a, &w, &why)
    g_assert_cmpint(LEARN("{\"app\": \"web/nginx:80\"}"), ==, 0);
    g_assert_cmpstr(a.vm, ==, "web");
    g_assert_cmpuint(w, ==, APPDEP_LEARN_DEFAULT_WINDOW_S);
    g_assert_cmpint(LEARN("{\"app\": \"db\", \"window_s\": 5}"), ==, 0);
    g_assert_cmpuint(w, ==, 5);
    g_assert_cmpint(LEARN("{\"app\": \"db\", \"window_s\": 0}"), ==, -ERANGE);
    g_assert_cmpint(LEARN("{\"app\": \"db\", \"window_s\": 3601}"), ==,
                    -ERANGE);
    g_assert_cmpint(LEARN("{\"app\": \"db\", \"window_s\": -5}"), ==,
                    -ERANGE);
    g_assert_cmpint(LEARN("{\"app\": \"db\", \"window_s\": 2.5}"), ==,
                    -EINVAL);
    g_assert_cmpint(LEARN("{\"app\": \"db\", \"window_s\": \"5\"}"), ==,
                    -EINVAL);
    g_assert_cmpint(LEARN("{\"app\": \"db\", "
                          "\"window_s\": 99999999999999999999}"), <, 0);
    g_assert_cmpint(LEARN("{\"app\": 5}"), ==, -EINVAL);
    g_assert_cmpint(LEARN("{\"app\": \"\"}"), ==, -EINVAL);
    g_assert_cmpint(LEARN("{\"app\": \"db:0\"}"), ==, -EINVAL);
    g_assert_cmpint(LEARN("{\"window_s\": 5}"), ==, -EINVAL);
    g_assert_cmpint(LEARN("{\"app\": \"db\", \"other\": 1}"), ==, -EINVAL);
#undef LEARN

    /* deeply nested input must fail cleanly, not overflow anything */
    {
        g_autofree char *open = g_strnfill(APPDEP_API_MAX_BODY_LEN / 2, '[');
        g_autofree char *close = g_strnfill(APPDEP_API_MAX_BODY_LEN / 2, ']');
        g_autofree char *deep = g_strconcat(open, close, NULL);

        g_assert_cmpint(appdep_api_parse_inspect(deep, strlen(deep), &en,
                                                 &why), ==, -EINVAL);
    }
    {
        g_autofree char *big = g_strnfill(APPDEP_API_MAX_BODY_LEN + 1, ' ');

        g_assert_cmpint(appdep_api_parse_inspect(big, strlen(big), &en,
                                                 &why), ==, -EINVAL);
        g_assert_cmpstr(why, ==, "body too large");
    }
}

static void test_json_str(void)
{
    g_autoptr(GString) s = g_string_new(NULL);

    appdep_json_str(s, "a\"b\\c\n\x01\x7f" "d\xff");
    g_assert_cmpstr(s->str, ==, "\"a\\\"b\\\\c\\u000a\\u0001\\u007fd"
                    "\xef\xbf\xbd\"");
}

/* ---- learning: peer discovery ------------------------------------------ */

static AppdepVm inv[3];

static void inv_vm(AppdepVm *vm, const char *name, uint8_t last)
{
    memset(vm, 0, sizeof(*vm));
    g_strlcpy(vm->name, name, sizeof(vm->name));
    vm->naddr = 1;
    vm->addrs[0].family = APPDEP_FAMILY_IPV4;
    vm->addrs[0].addr[0] = 10;
    vm->addrs[0].addr[3] = last;
}

static const AppdepVm *inv_lookup(void *opaque, uint8_t family,
                                  const uint8_t *addr)
{
    unsigned *calls = opaque;

    (*calls)++;
    for (size_t i = 0; i < G_N_ELEMENTS(inv); i++) {
        if (inv[i].name[0] && family == inv[i].addrs[0].family &&
            !memcmp(addr, inv[i].addrs[0].addr, 4)) {
            return &inv[i];
        }
    }
    return NULL;
}

/* A message on 10.0.0.c:cport -> 10.0.0.s:sport. */
static AppdepMessage msg(uint8_t dir, const char *svm, uint32_t stid,
                         const char *rvm, uint32_t rtid, uint8_t c,
                         uint8_t s)
{
    AppdepMessage m;

    memset(&m, 0, sizeof(m));
    m.direction = dir;
    if (svm) {
        g_strlcpy(m.sender.vm, svm, sizeof(m.sender.vm));
        m.sender.tid = stid;
    }
    if (rvm) {
        g_strlcpy(m.receiver.vm, rvm, sizeof(m.receiver.vm));
        m.receiver.tid = rtid;
    }
    m.conn.family = APPDEP_FAMILY_IPV4;
    m.conn.caddr[0] = m.conn.saddr[0] = 10;
    m.conn.caddr[3] = c;
    m.conn.saddr[3] = s;
    m.conn.cport = 40000;
    m.conn.sport = 80;
    return m;
}

static void test_discover(void)
{
    g_autoptr(GHashTable) learned = g_hash_table_new(g_str_hash,
                                                     g_str_equal);
    g_autoptr(GArray) peers = g_array_new(FALSE, TRUE,
                                          sizeof(AppdepLearnPeer));
    g_autoptr(GPtrArray) new_vms = g_ptr_array_new_with_free_func(g_free);
    AppdepMessage m[8];
    unsigned calls = 0;
    int n;

    inv_vm(&inv[0], "web", 2);
    inv_vm(&inv[1], "db", 3);
    inv_vm(&inv[2], "cli", 1);
    g_hash_table_add(learned, (gpointer)"web");

    /* cli(.1) -> web(.2): only web observed, as receiver of a request */
    m[0] = msg(APPDEP_DIR_REQUEST, NULL, 0, "web", 21, 1, 2);
    /* web answers: web is the sender of a response, peer is the client */
    m[1] = msg(APPDEP_DIR_RESPONSE, "web", 21, NULL, 0, 1, 2);
    /* web(.2) -> db(.3), web the sender of the request */
    m[2] = msg(APPDEP_DIR_REQUEST, "web", 21, "db", 31, 2, 3);
    /* web -> 10.0.0.9, not in the inventory; web receives the response */
    m[3] = msg(APPDEP_DIR_RESPONSE, NULL, 0, "web", 21, 2, 9);
    /* web over loopback: skipped */
    m[4] = msg(APPDEP_DIR_REQUEST, "web", 22, "web", 23, 2, 2);
    m[4].conn.caddr[0] = m[4].conn.saddr[0] = 127;
    /* between two VMs not learned: ignored */
    m[5] = msg(APPDEP_DIR_REQUEST, "cli", 11, "db", 31, 1, 3);
    /* an observed end with tid 0 does not count */
    m[6] = msg(APPDEP_DIR_REQUEST, "web", 0, NULL, 0, 2, 8);
    /* the unspecified address: skipped */
    m[7] = msg(APPDEP_DIR_REQUEST, "web", 21, NULL, 0, 2, 0);
    m[7].conn.saddr[0] = 0;

    n = appdep_learn_discover(m, G_N_ELEMENTS(m), learned, inv_lookup,
                              &calls, peers, new_vms);
    g_assert_cmpint(n, ==, 3);
    g_assert_cmpuint(peers->len, ==, 3);
    g_assert_cmpuint(g_array_index(peers, AppdepLearnPeer, 0).addr.addr[3],
                     ==, 1);
    g_assert_cmpstr(g_array_index(peers, AppdepLearnPeer, 0).vm, ==, "cli");
    g_assert_cmpstr(g_array_index(peers, AppdepLearnPeer, 1).vm, ==, "db");
    g_assert_cmpstr(g_array_index(peers, AppdepLearnPeer, 2).vm, ==, "");
    g_assert_cmpuint(g_array_index(peers, AppdepLearnPeer, 2).addr.addr[3],
                     ==, 9);
    g_assert_cmpuint(new_vms->len, ==, 2);
    g_assert_cmpstr(new_vms->pdata[0], ==, "cli");
    g_assert_cmpstr(new_vms->pdata[1], ==, "db");
    g_assert_cmpuint(calls, ==, 3);        /* one lookup per new address */

    /*
     * Next round: cli and db learned.  db sees web's address (a learned
     * VM: no new VM), nothing else is new.
     */
    g_hash_table_add(learned, (gpointer)"cli");
    g_hash_table_add(learned, (gpointer)"db");
    g_ptr_array_set_size(new_vms, 0);
    n = appdep_learn_discover(m, G_N_ELEMENTS(m), learned, inv_lookup,
                              &calls, peers, new_vms);
    g_assert_cmpint(n, ==, 1);
    g_assert_cmpstr(g_array_index(peers, AppdepLearnPeer, 3).vm, ==, "web");
    g_assert_cmpuint(new_vms->len, ==, 0);

    /* 10.0.0.9 joins the inventory: the unmapped peer maps now */
    inv_vm(&inv[2], "dns", 9);
    n = appdep_learn_discover(NULL, 0, learned, inv_lookup, &calls, peers,
                              new_vms);
    g_assert_cmpint(n, ==, 0);
    g_assert_cmpuint(new_vms->len, ==, 1);
    g_assert_cmpstr(new_vms->pdata[0], ==, "dns");
    g_assert_cmpstr(g_array_index(peers, AppdepLearnPeer, 2).vm, ==, "dns");
    g_assert_cmpuint(peers->len, ==, 4);
}

static void test_discover_cap(void)
{
    g_autoptr(GHashTable) learned = g_hash_table_new(g_str_hash,
                                                     g_str_equal);
    g_autoptr(GArray) peers = g_array_new(FALSE, TRUE,
                                          sizeof(AppdepLearnPeer));
    g_autoptr(GPtrArray) new_vms = g_ptr_array_new_with_free_func(g_free);
    g_autoptr(GArray) m = g_array_new(FALSE, FALSE, sizeof(AppdepMessage));
    unsigned calls = 0, i;
    int n;

    memset(inv, 0, sizeof(inv));
    g_hash_table_add(learned, (gpointer)"web");
    for (i = 0; i < APPDEP_LEARN_MAX_PEERS + 100; i++) {
        AppdepMessage x = msg(APPDEP_DIR_REQUEST, "web", 21, NULL, 0, 2, 0);

        x.conn.saddr[1] = 1 + i / 250;
        x.conn.saddr[3] = 1 + i % 250;
        g_array_append_val(m, x);
        /* the same peer again */
        g_array_append_val(m, x);
    }
    n = appdep_learn_discover((AppdepMessage *)m->data, m->len, learned,
                              inv_lookup, &calls, peers, new_vms);
    g_assert_cmpint(n, ==, APPDEP_LEARN_MAX_PEERS);
    g_assert_cmpuint(peers->len, ==, APPDEP_LEARN_MAX_PEERS);
    g_assert_cmpuint(new_vms->len, ==, 0);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/api/app", test_app);
    g_test_add_func("/api/u64", test_u64);
    g_test_add_func("/api/window", test_window);
    g_test_add_func("/api/body-limit", test_body_limit);
    g_test_add_func("/api/route", test_route);
    g_test_add_func("/api/bodies", test_bodies);
    g_test_add_func("/api/json-str", test_json_str);
    g_test_add_func("/learn/discover", test_discover);
    g_test_add_func("/learn/discover-cap", test_discover_cap);
    return g_test_run();
}
