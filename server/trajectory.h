/*
 * appdep server: application trajectories and dependency maps.
 *
 * An *exchange* is a request message and the response that follows it
 * on the same connection.  A trajectory is a tree of exchanges rooted at
 * one request to the selected application: the children of an exchange
 * served by thread T (the thread that answered it) are the exchanges T
 * started between the request's arrival and the answer (the thread rule
 * of docs/design.md §6), found recursively, so indirect dependencies
 * appear.  Every exchange has at most one parent: when T was serving
 * several requests at once (an event loop, or a worker whose next
 * requests already wait in a queue), a call goes to the request T last
 * acted for (see attribute() in trajectory.c); docs/accuracy.md measures
 * how often that is right, server model by server model.  A dependency
 * map aggregates the exchanges of a time window per application: VM +
 * program (+ listening port for servers).
 *
 * Pure: inputs are message arrays, outputs are trees, maps and text.
 *
 * Copyright (c) 2026 appdep authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef APPDEP_TRAJECTORY_H
#define APPDEP_TRAJECTORY_H

#include <glib.h>
#include "convert.h"
#include "stream.h"

typedef struct AppdepExchange {
    AppdepMessage req;
    AppdepMessage resp;
    bool has_resp;
    bool first_on_conn;         /* no earlier exchange on its connection
                                   among the messages given */
} AppdepExchange;

typedef struct AppdepTrajNode {
    const AppdepExchange *ex;
    uint64_t start_ns;          /* request sent (or received) */
    uint64_t end_ns;            /* response received (or sent); 0 unknown */
    GPtrArray *children;        /* AppdepTrajNode *, by start time */
} AppdepTrajNode;

typedef struct AppdepExchanges AppdepExchanges;

/* Pair the requests and responses of @n messages (any order). */
AppdepExchanges *appdep_exchanges_new(const AppdepMessage *msgs, size_t n);
void appdep_exchanges_free(AppdepExchanges *x);             /* NULL ok */
size_t appdep_exchanges_len(const AppdepExchanges *x);
const AppdepExchange *appdep_exchanges_get(const AppdepExchanges *x,
                                           size_t i);

/* The thread that served @e (request receiver, else response sender). */
const AppdepThreadId *appdep_exchange_server(const AppdepExchange *e);

/*
 * Index of the exchanges whose server is @vm/@comm (NULL: any comm) and,
 * if @port != 0, whose server port is @port, with no parent: the roots a
 * trajectory query starts from.  Returns exchange indices, time order.
 */
GArray *appdep_trajectory_roots(const AppdepExchanges *x, const char *vm,
                                const char *comm, uint16_t port);

/* The tree below exchange @root; free with appdep_traj_node_free(). */
AppdepTrajNode *appdep_trajectory_build(const AppdepExchanges *x,
                                        size_t root);
void appdep_traj_node_free(AppdepTrajNode *n);              /* NULL ok */

/* JSON and text forms: render.h. */

/* Dependency map */

typedef struct AppdepApp {
    char vm[APPDEP_WIRE_VM_LEN + 1];    /* "" when not observed: addr */
    char comm[APPDEP_WIRE_COMM_LEN + 1];
    char addr[APPDEP_ADDR_STR_LEN];     /* textual address of the VM end */
    uint16_t port;                      /* listening port, 0 for clients */
} AppdepApp;

typedef struct AppdepEdge {
    AppdepApp client, server;
    uint64_t calls;
    uint64_t req_bytes, resp_bytes;
    uint64_t latency_sum_ns, latency_max_ns, latency_n;
} AppdepEdge;

/* Aggregate the exchanges with request time in [t0, t1). */
GArray *appdep_map_build(const AppdepExchanges *x, uint64_t t0,
                         uint64_t t1);
/* JSON, text and DOT forms: render.h. */

#endif
