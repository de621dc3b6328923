/*
 * appdep server: the learning phase (docs/design.md §6).
 *
 * Starting from one application's VM, a learning session enables
 * inspection VM by VM: enable the VMs of the current round (through
 * their forward daemons), collect for a window, read the messages of the
 * learned VMs from the store, take the other end of each of their
 * connections, map those addresses to VMs of the inventory, and start a
 * new round with the VMs not yet learned.  It ends when a round finds no
 * new VM (done), when the round cap is reached (done, with a note), or
 * when the first VM cannot be enabled (failed).  Discovery and generation
 * are then the API's map and trajectory queries.
 *
 * Peer discovery is VM-wide: every thread of a learned VM counts, not only
 * the selected program's, since a program's worker threads may carry other
 * names and its peers' programs are not known in advance.
 *
 * Threads: everything runs on the server's main loop, except
 * appdep_learn_discover(), which is pure.  Rendering a session is the
 * API's (render.h): this module returns its status.
 *
 * Copyright (c) 2026 appdep authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef APPDEP_LEARN_H
#define APPDEP_LEARN_H

#include "appspec.h"
#include "server.h"

/* One peer address seen by a learned VM, and the VM it belongs to. */
typedef struct AppdepLearnPeer {
    AppdepFrameAddr addr;
    char vm[APPDEP_WIRE_VM_LEN + 1];        /* "": not in the inventory */
} AppdepLearnPeer;

/* The VM owning an address, or NULL (AppdepInventoryOps.vm_by_addr). */
typedef const AppdepVm *AppdepVmLookupFn(void *opaque, uint8_t family,
                                         const uint8_t *addr);

/*
 * One discovery step, pure.  For each of the @n messages, each end that a
 * VM of @learned (a set of VM names) observed contributes the address of
 * the connection's other end.  Loopback and unspecified addresses are
 * skipped.  New addresses (not in @peers yet) are appended to @peers (a
 * GArray of AppdepLearnPeer) with the VM @lookup maps them to; the names
 * of mapped VMs not in @learned are appended to @new_vms (g_strdup'ed,
 * each once, in order of discovery; @new_vms should free with g_free).
 * @peers stops growing at APPDEP_LEARN_MAX_PEERS.  Returns the number of
 * addresses appended to @peers.
 */
int appdep_learn_discover(const AppdepMessage *msgs, size_t n,
                          GHashTable *learned, AppdepVmLookupFn *lookup,
                          void *opaque, GArray *peers, GPtrArray *new_vms);

/*
 * Start a session for @app, collecting @window_s seconds per round.
 * *@id gets its id.  Errors: -ENOENT (the app's VM is not in the
 * inventory), -EBUSY (APPDEP_LEARN_MAX_RUNNING sessions are running),
 * -ERANGE (window out of bounds).  Main loop.
 */
int appdep_learn_start(AppdepServer *srv, const AppdepAppSpec *app,
                       uint32_t window_s, uint64_t *id);

typedef enum AppdepLearnState {
    APPDEP_LEARN_ENABLING,
    APPDEP_LEARN_COLLECTING,
    APPDEP_LEARN_DONE,
    APPDEP_LEARN_FAILED,
} AppdepLearnState;

typedef enum AppdepLearnVmState {
    APPDEP_LEARN_VM_PENDING,        /* inspect sent, no RESULT yet */
    APPDEP_LEARN_VM_ENABLED,
    APPDEP_LEARN_VM_WAS_ENABLED,    /* enabled before the session */
    APPDEP_LEARN_VM_FAILED,
} AppdepLearnVmState;

/* One VM a session took in. */
typedef struct AppdepLearnVm {
    char name[APPDEP_WIRE_VM_LEN + 1];
    unsigned round;
    AppdepLearnVmState state;
    char *error;                    /* why it failed, or NULL */
} AppdepLearnVm;

/* One line of a session's log. */
typedef struct AppdepLearnLog {
    uint64_t time_ns;
    char *text;
} AppdepLearnLog;

/*
 * A session as the API shows it.  Borrowed from the session: valid until
 * the main loop runs again; do not modify.
 */
typedef struct AppdepLearnStatus {
    uint64_t id;
    const char *spec;               /* VM[/PROGRAM][:PORT] */
    uint32_t window_s;
    AppdepLearnState state;
    unsigned round;
    uint64_t started_ns, finished_ns; /* finished_ns 0: running */
    uint64_t scanned;               /* messages read */
    const GPtrArray *vms;           /* AppdepLearnVm *, in order */
    const GArray *peers;            /* AppdepLearnPeer */
    const GArray *log;              /* AppdepLearnLog */
    uint64_t log_dropped;           /* lines past APPDEP_LEARN_MAX_LOG */
} AppdepLearnStatus;

/* Session @id into *@st; -ENOENT.  Main loop. */
int appdep_learn_status(AppdepServer *srv, uint64_t id,
                        AppdepLearnStatus *st);

/*
 * Every kept session, by id: a new GArray of AppdepLearnStatus (free
 * with g_array_unref; the statuses are borrowed as above).  Main loop.
 */
GArray *appdep_learn_list(AppdepServer *srv);

/*
 * Forget every session; callbacks still pending from forward daemons
 * become no-ops.  Main loop, at shutdown.
 */
void appdep_learn_shutdown(AppdepServer *srv);

#endif /* APPDEP_LEARN_H */
