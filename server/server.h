/*
 * appdep-server: shared state of the APM server's modules.
 *
 * One GLib main loop runs everything that touches this state: ingest
 * (net.c), the HTTP API (api/, libmicrohttpd in its own thread hands
 * requests to the main loop), learning (learn.c) and the periodic
 * flush/expiry timers (main.c).  Only the store's read functions may be
 * called from other threads.
 *
 * Copyright (c) 2026 appdep authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef APPDEP_SERVER_H
#define APPDEP_SERVER_H

#include <gio/gio.h>
#include "convert.h"
#include "store.h"
#include "frame.h"
#include "server-limits.h"

/* The wall clock in ns since the epoch (the records' time base). */
static inline uint64_t appdep_now_ns(void)
{
    return (uint64_t)g_get_real_time() * (APPDEP_NS_PER_S / G_USEC_PER_SEC);
}

/* One VM of the inventory, as reported by its host's forward daemon. */
typedef struct AppdepVm {
    char name[APPDEP_WIRE_VM_LEN + 1];
    char host[APPDEP_FRAME_HOST_LEN + 1];
    bool enabled;
    uint8_t naddr;
    AppdepFrameAddr addrs[APPDEP_FRAME_MAX_ADDRS];
    struct AppdepPeer *peer;        /* its daemon's connection, or NULL */
} AppdepVm;

typedef struct AppdepPeer AppdepPeer;  /* a forward daemon connection */

/* Completion of a command sent to a forward daemon. */
typedef void AppdepCommandDone(int status, const char *message,
                               void *opaque);

/*
 * The inventory and the forward daemons, as the API and learning see
 * them: net.c provides the real one (appdep_net_inventory), the tests
 * their own.  Main loop only.
 */
typedef struct AppdepInventoryOps {
    /* The VM that owns @addr (family APPDEP_FAMILY_*), or NULL. */
    const AppdepVm *(*vm_by_addr)(void *opaque, uint8_t family,
                                  const uint8_t *addr);
    /*
     * Send an inspect command for @vm to its daemon; @done runs once
     * (maybe before this returns) with the result (0 or -errno and a
     * message).  Returns -ENOENT when no connected daemon reports @vm,
     * another -errno when the command cannot be sent (then @done never
     * runs).
     */
    int (*inspect)(void *opaque, const char *vm, bool enable,
                   AppdepCommandDone *done, void *done_opaque);
} AppdepInventoryOps;

typedef struct AppdepApi AppdepApi;         /* api/api-http.c */
typedef struct AppdepLearn AppdepLearn;     /* learn.c */

typedef struct AppdepServer {
    const AppdepInventoryOps *inventory;
    void *inventory_opaque;         /* its first argument */
    AppdepApi *api;                 /* appdep_api_start() .. _stop() */
    AppdepLearn *learn;             /* learning sessions, or NULL */
    AppdepStore *store;
    AppdepConverter *conv;
    GArray *pending;                /* AppdepMessage from conv, to commit */
    GHashTable *vms;                /* name -> AppdepVm */
    GHashTable *last_batch;         /* host -> uint64_t*: last committed */
    GList *peers;                   /* AppdepPeer */
    GPtrArray *batches;             /* net.c: received, not committed yet */
    uint64_t batch_records;         /* records in @batches */
    guint commit_src;               /* net.c: the group commit, scheduled */
    uint64_t next_command;
    GHashTable *commands;           /* id -> pending command */
    uint64_t records;               /* committed per-thread records */
    uint64_t messages;              /* committed inter-thread records */
    uint64_t dropped;               /* messages the store refused past
                                       APPDEP_SERVER_MAX_PENDING */
    uint64_t bad_peers;             /* connections dropped for bad input */
} AppdepServer;

/* net.c: forward daemons */
int appdep_net_listen(AppdepServer *srv, const char *addr, GError **errp);
/* The inventory of the connected daemons (opaque: the AppdepServer). */
extern const AppdepInventoryOps appdep_net_inventory;

/*
 * api/: the HTTP JSON API of @srv, which must have its inventory set.
 * Stop answers the requests still pending and ends learning.  Main loop.
 */
int appdep_api_start(AppdepServer *srv, const char *addr, GError **errp);
void appdep_api_stop(AppdepServer *srv);
/* The port the API listens on (for port 0: the bound one); main loop. */
uint16_t appdep_api_port(AppdepServer *srv);

#endif
