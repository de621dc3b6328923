/*
 * appdep server: trajectory queries over the store.
 *
 * appdep_query_window() is what the HTTP API uses: the exchanges of a
 * window and of a margin before and after it, and the roots in the
 * window.  It is exact for every server model as long as requests are
 * shorter than the margin, and its cost follows the messages read: the
 * trajectory of one request reads its own period and the margins.
 *
 * The other two functions read only the threads and time intervals a
 * trajectory involves:
 *
 * appdep_trajectory_roots() and appdep_trajectory_build() work on the
 * exchanges of a whole time window; loading a window of a busy store
 * costs far more than the trees in it.  These functions gather, through
 * the store's per-thread index (appdep_store_thread_range()), only the
 * messages the same computation looks at, and run it on them:
 *
 * - the tree below a root request: the messages of the root's server
 *   thread during the root's interval (request sent to response
 *   received), then of the server threads of the calls made in it, and
 *   so on down: every thread of the tree, over the root's interval;
 * - the roots served by an application: the messages of the threads of
 *   its VM over the window, and those of the client threads of the
 *   requests they received (a request is a root unless its client thread
 *   made it while serving another request, which that thread's own
 *   messages tell).
 *
 * The results are those of the window computation only as long as
 * every thread's messages that matter lie in the intervals read, which
 * holds for servers whose threads serve one request at a time
 * (tests/unit/test-query.c compares both on such nested multi-tier
 * traffic).  It does not hold for a thread that was already serving
 * other requests when the root began (queued requests of a pool worker,
 * an event loop's concurrent requests, brokers): the attribution of a
 * call among the requests its thread serves needs those too, and the
 * trees differ (scripts/accuracy.py).  Nor for a connection used by a
 * third thread.  The HTTP API therefore does not use these functions;
 * docs/server.md says what an exact fast path needs.
 *
 * Errors: 0 or a store code (negative, appdep_store_strerror()).
 * Threads: any (store reads only).
 *
 * Copyright (c) 2026 appdep authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef APPDEP_QUERY_H
#define APPDEP_QUERY_H

#include <glib.h>
#include "store.h"
#include "trajectory.h"

#define APPDEP_QUERY_PAIR_FIRST     64      /* messages first read to find
                                               a request's response */

/* A window's exchanges and the roots of an application in it. */
typedef struct AppdepQueryWindow {
    GArray *msgs;               /* AppdepMessage: what was read */
    AppdepExchanges *x;
    GArray *roots;              /* guint: exchanges of @x, in time order */
    bool truncated;             /* more than max_msgs in the range */
} AppdepQueryWindow;

/*
 * Read the messages sent in [@t0 - @margin_ns, @t1 + @margin_ns) (at
 * most @max_msgs, 0 for no limit), pair them into exchanges, and keep
 * the roots appdep_trajectory_roots(@vm, @comm, @port) finds whose
 * request was sent in [@t0, @t1).  The margin after the window holds
 * children that end after it; the margin before, the requests the
 * involved threads were already serving, which the attribution of their
 * calls needs.  Free with appdep_query_window_clear().
 */
int appdep_query_window(AppdepStore *s, uint64_t t0, uint64_t t1,
                        uint64_t margin_ns, guint max_msgs, const char *vm,
                        const char *comm, uint16_t port,
                        AppdepQueryWindow *w);
void appdep_query_window_clear(AppdepQueryWindow *w);

/*
 * Fill @roots (GArray of AppdepMessage, emptied first) with the requests
 * of the trajectories appdep_trajectory_roots(@vm, @comm, @port) finds
 * among the messages with send_ns in [@w0, @w1), keeping those sent
 * before @t1, in time order.  @comm may be NULL (any), @port 0 (any).
 */
int appdep_query_roots(AppdepStore *s, uint64_t w0, uint64_t w1,
                       const char *vm, const char *comm, uint16_t port,
                       uint64_t t1, GArray *roots);

/*
 * The tree appdep_trajectory_build() gives below request @req among the
 * messages with send_ns in [@w0, @w1), in *@out (free with
 * appdep_traj_node_free(); its exchanges are owned by the tree).
 * -ENOENT when @req is not stored in the window; *@out NULL on error.
 */
int appdep_query_trajectory(AppdepStore *s, uint64_t w0, uint64_t w1,
                            const AppdepMessage *req, AppdepTrajNode **out);

#endif /* APPDEP_QUERY_H */
