/*
 * appdep-api-harness: the HTTP API (server/api/) and learning
 * (server/learn.c) over a real store, without forward daemons, for
 * tests/tools/test_api.py.
 *
 *   appdep-api-harness --db DIR [--http ADDR:PORT] [--vm NAME=ADDR,...]
 *                      [--seed]
 *
 * Prints "port N" once the API listens, then serves until SIGTERM or
 * SIGINT and exits 0 after a clean stop.
 *
 * Stands in for server/net.c through the server's AppdepInventoryOps
 * (no net.c symbol is defined here): the inventory is the --vm list (host
 * "harness"), and an inspect command completes 20 ms later with success,
 * except for VMs named "bad*" (fails with a QEMU-like message) and
 * "mute*" (answers only after the API's timeout).  --seed stores
 * 3-tier traffic from the last 30 s: cli (10.0.0.1) -> web (10.0.0.2:80)
 * -> db (10.0.0.3:5432), and web -> 10.9.9.9:53 (outside the inventory).
 *
 * Copyright (c) 2026 appdep authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <glib-unix.h>
#include "server.h"
#include "api.h"

#define HARNESS_REPLY_MS        20
#define HARNESS_MUTE_S          (APPDEP_API_INSPECT_TIMEOUT_S + 2)
#define HARNESS_SEED_N          5
#define MS                      1000000ULL

typedef struct FakeCommand {
    AppdepServer *srv;
    char vm[APPDEP_WIRE_VM_LEN + 1];
    bool enable;
    AppdepCommandDone *done;
    void *opaque;
} FakeCommand;

static gboolean fake_reply(gpointer p)
{
    FakeCommand *c = p;
    AppdepVm *vm = g_hash_table_lookup(c->srv->vms, c->vm);

    if (g_str_has_prefix(c->vm, "bad")) {
        c->done(-EIO, "qemu: appdep: cannot arm inspection: no profile "
                "loaded", c->opaque);
    } else if (g_str_has_prefix(c->vm, "mute")) {
        c->done(-ETIMEDOUT, "", c->opaque);
    } else {
        if (vm) {
            vm->enabled = c->enable;
        }
        c->done(0, "", c->opaque);
    }
    g_free(c);
    return G_SOURCE_REMOVE;
}

static int fake_inspect(void *srv_opaque, const char *vm, bool enable,
                        AppdepCommandDone *done, void *opaque)
{
    AppdepServer *srv = srv_opaque;
    FakeCommand *c;

    if (!g_hash_table_lookup(srv->vms, vm)) {
        return -ENOENT;
    }
    c = g_new0(FakeCommand, 1);
    c->srv = srv;
    g_strlcpy(c->vm, vm, sizeof(c->vm));
    c->enable = enable;
    c->done = done;
    c->opaque = opaque;
    if (g_str_has_prefix(vm, "mute")) {
        g_timeout_add_seconds(HARNESS_MUTE_S, fake_reply, c);
    } else {
        g_timeout_add(HARNESS_REPLY_MS, fake_reply, c);
    }
    return 0;
}

static const AppdepVm *fake_vm_by_addr(void *opaque, uint8_t family,
                                       const uint8_t *addr)
{
    AppdepServer *srv = opaque;
    GHashTableIter it;
    gpointer val;
    unsigned i;

    g_hash_table_iter_init(&it, srv->vms);
    while (g_hash_table_iter_next(&it, NULL, &val)) {
        const AppdepVm *vm = val;

        for (i = 0; i < vm->naddr; i++) {
            if (vm->addrs[i].family == family &&
                !memcmp(vm->addrs[i].addr, addr,
                        family == APPDEP_FAMILY_IPV4 ? 4 : 16)) {
                return vm;
            }
        }
    }
    return NULL;
}

static const AppdepInventoryOps fake_inventory = {
    .vm_by_addr = fake_vm_by_addr,
    .inspect = fake_inspect,
};

/* --vm NAME=ADDR[,ADDR...] */
static bool add_vm(AppdepServer *srv, const char *spec)
{
    g_auto(GStrv) kv = g_strsplit(spec, "=", 2);
    g_auto(GStrv) addrs = NULL;
    AppdepVm *vm;
    unsigned i;

    if (!kv[0] || !kv[1] || !*kv[0] || strlen(kv[0]) > APPDEP_WIRE_VM_LEN) {
        return false;
    }
    vm = g_new0(AppdepVm, 1);
    g_strlcpy(vm->name, kv[0], sizeof(vm->name));
    g_strlcpy(vm->host, "harness", sizeof(vm->host));
    addrs = g_strsplit(kv[1], ",", APPDEP_FRAME_MAX_ADDRS);
    for (i = 0; addrs[i] && i < APPDEP_FRAME_MAX_ADDRS; i++) {
        g_autoptr(GInetAddress) ia = g_inet_address_new_from_string(addrs[i]);

        if (!ia) {
            g_free(vm);
            return false;
        }
        vm->addrs[i].family =
            g_inet_address_get_family(ia) == G_SOCKET_FAMILY_IPV6
            ? APPDEP_FAMILY_IPV6 : APPDEP_FAMILY_IPV4;
        memcpy(vm->addrs[i].addr, g_inet_address_to_bytes(ia),
               g_inet_address_get_native_size(ia));
    }
    vm->naddr = i;
    g_hash_table_insert(srv->vms, vm->name, vm);
    return true;
}

static void thread(AppdepThreadId *t, const char *vm, const char *comm,
                   uint32_t tid)
{
    memset(t, 0, sizeof(*t));
    if (!vm) {
        return;                 /* that end was not observed */
    }
    g_strlcpy(t->vm, vm, sizeof(t->vm));
    g_strlcpy(t->comm, comm, sizeof(t->comm));
    t->pid = tid;
    t->tid = tid;
}

/* One request/response between 10.0.0.c:cport and 10.0.0.s:sport. */
static void exchange(GArray *out, const AppdepThreadId *cli, uint8_t c,
                     uint16_t cport, const AppdepThreadId *srv,
                     const uint8_t *saddr, uint16_t sport, uint64_t t,
                     uint64_t t_resp)
{
    AppdepMessage req, resp;

    memset(&req, 0, sizeof(req));
    req.conn.family = APPDEP_FAMILY_IPV4;
    req.conn.caddr[0] = 10;
    req.conn.caddr[3] = c;
    memcpy(req.conn.saddr, saddr, 4);
    req.conn.cport = cport;
    req.conn.sport = sport;
    resp = req;
    req.direction = APPDEP_DIR_REQUEST;
    req.sender = *cli;
    req.receiver = *srv;
    req.send_ns = t;
    req.recv_ns = srv->tid ? t + MS / 10 : 0;
    req.seq = 1000;
    req.bytes = 100;
    resp.direction = APPDEP_DIR_RESPONSE;
    resp.sender = *srv;
    resp.receiver = *cli;
    resp.send_ns = t_resp;
    resp.recv_ns = t_resp + MS / 10;
    resp.seq = 5000;
    resp.bytes = 300;
    g_array_append_val(out, req);
    g_array_append_val(out, resp);
}

static int seed(AppdepServer *srv)
{
    static const uint8_t web_a[4] = { 10, 0, 0, 2 }, db_a[4] = { 10, 0, 0, 3 };
    static const uint8_t dns_a[4] = { 10, 9, 9, 9 };
    g_autoptr(GArray) m = g_array_new(FALSE, FALSE, sizeof(AppdepMessage));
    uint64_t now = appdep_now_ns();
    AppdepThreadId cli, web, db, none;
    unsigned i;

    thread(&cli, "cli", "curl", 11);
    thread(&web, "web", "nginx", 21);
    thread(&db, "db", "postgres", 31);
    thread(&none, NULL, NULL, 0);
    for (i = 0; i < HARNESS_SEED_N; i++) {
        uint64_t t = now - 30000 * MS + i * 1000 * MS;

        exchange(m, &cli, 1, 40000 + i, &web, web_a, 80, t, t + 10 * MS);
        exchange(m, &web, 2, 50000 + i, &db, db_a, 5432, t + 2 * MS,
                 t + 6 * MS);
        exchange(m, &web, 2, 51000 + i, &none, dns_a, 53, t + 7 * MS,
                 t + 8 * MS);
    }
    return appdep_store_put_batch(srv->store, (AppdepMessage *)m->data,
                                  m->len);
}

static gboolean quit(gpointer loop)
{
    g_main_loop_quit(loop);
    return G_SOURCE_REMOVE;
}

int main(int argc, char **argv)
{
    g_autofree char *db = NULL, *http = NULL;
    g_auto(GStrv) vms = NULL;
    gboolean do_seed = FALSE;
    GOptionEntry entries[] = {
        { "db", 0, 0, G_OPTION_ARG_FILENAME, &db, "Store directory", "DIR" },
        { "http", 0, 0, G_OPTION_ARG_STRING, &http, "API address",
          "ADDR:PORT" },
        { "vm", 0, 0, G_OPTION_ARG_STRING_ARRAY, &vms, "Fake VM",
          "NAME=ADDR[,ADDR]" },
        { "seed", 0, 0, G_OPTION_ARG_NONE, &do_seed, "Store test traffic",
          NULL },
        { NULL }
    };
    g_autoptr(GOptionContext) ctx = g_option_context_new(NULL);
    g_autoptr(GError) err = NULL;
    g_autoptr(GMainLoop) loop = g_main_loop_new(NULL, FALSE);
    AppdepServer srv = { 0 };
    int ret;
    unsigned i;

    g_option_context_add_main_entries(ctx, entries, NULL);
    if (!g_option_context_parse(ctx, &argc, &argv, &err) || !db) {
        fprintf(stderr, "appdep-api-harness: %s\n",
                err ? err->message : "--db is required");
        return 2;
    }
    srv.inventory = &fake_inventory;
    srv.inventory_opaque = &srv;
    srv.vms = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, g_free);
    srv.pending = g_array_new(FALSE, FALSE, sizeof(AppdepMessage));
    for (i = 0; vms && vms[i]; i++) {
        if (!add_vm(&srv, vms[i])) {
            fprintf(stderr, "appdep-api-harness: bad --vm '%s'\n", vms[i]);
            return 2;
        }
    }
    ret = appdep_store_open(&srv.store, db, NULL);
    if (ret < 0) {
        fprintf(stderr, "appdep-api-harness: %s: %s\n", db,
                appdep_store_strerror(ret));
        return 1;
    }
    if (do_seed && (ret = seed(&srv)) < 0) {
        fprintf(stderr, "appdep-api-harness: seed: %s\n",
                appdep_store_strerror(ret));
        return 1;
    }
    if (appdep_api_start(&srv, http ? http : "127.0.0.1:0", &err) < 0) {
        fprintf(stderr, "appdep-api-harness: %s\n", err->message);
        return 1;
    }
    printf("port %u\n", appdep_api_port(&srv));
    fflush(stdout);

    g_unix_signal_add(SIGTERM, quit, loop);
    g_unix_signal_add(SIGINT, quit, loop);
    g_main_loop_run(loop);

    appdep_api_stop(&srv);
    appdep_store_close(srv.store);
    g_array_unref(srv.pending);
    g_hash_table_unref(srv.vms);
    return 0;
}
