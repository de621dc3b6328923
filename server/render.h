/*
 * appdep server: every answer the server renders, in one place.
 *
 * Trajectories and dependency maps as JSON, text and DOT (the API,
 * appdep-analyze), and the HTTP API's JSON answers: errors, status, the
 * inventory, inspect results, learning sessions.  Renderers append to
 * @out and read their inputs only.  Every JSON string goes through
 * appdep_json_str() (monitor/common/json-out.h).  The output is the API's
 * contract (docs/api.md): tests/tools/test_api.py and scripts/ parse it.
 *
 * Threads: the trajectory and map renderers run on any thread (the API's
 * query workers); those given the AppdepServer run on the main loop.
 *
 * Copyright (c) 2026 appdep authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef APPDEP_RENDER_H
#define APPDEP_RENDER_H

#include <glib.h>
#include "learn.h"
#include "server.h"
#include "trajectory.h"

/* ---- trajectories and maps ---- */

void appdep_trajectory_to_json(const AppdepTrajNode *n, GString *out);
void appdep_trajectory_to_text(const AppdepTrajNode *n, GString *out);
void appdep_map_to_json(const GArray *edges, GString *out);
void appdep_map_to_dot(const GArray *edges, GString *out);
void appdep_map_to_text(const GArray *edges, GString *out);

/*
 * GET /v1/map as JSON: the window [@t0, @t1), how many messages and
 * exchanges it held, whether it was cut at the query limit, and the map.
 */
void appdep_render_map_window(GString *out, uint64_t t0, uint64_t t1,
                              unsigned messages, size_t exchanges,
                              bool truncated, const GArray *edges);

/* ---- HTTP API answers (JSON) ---- */

/* {"error": @text} */
void appdep_render_error(GString *out, const char *text);

/* What GET /v1/status shows besides the server's own counters. */
typedef struct AppdepServerStatus {
    uint64_t time_ns;
    AppdepStoreStats store;         /* with srv->store only */
    uint64_t stored_messages, stored_records;
    int store_error;                /* 0 or the count's store code */
    uint64_t api_requests, api_errors;
} AppdepServerStatus;

/* GET /v1/status of @srv (main loop). */
void appdep_render_status(GString *out, AppdepServer *srv,
                          const AppdepServerStatus *st);

/* GET /v1/vms: the inventory of @srv, by name (main loop). */
void appdep_render_vms(GString *out, AppdepServer *srv);

/* The answer of POST /v1/vms/{vm}/inspect, @status 0 or -errno. */
void appdep_render_inspect(GString *out, const char *vm, bool enable,
                           int status, const char *message);

/* POST /v1/learn: where session @id is. */
void appdep_render_learn_started(GString *out, uint64_t id);

/* GET /v1/learn/{id} */
void appdep_render_learn(GString *out, const AppdepLearnStatus *st);

/* GET /v1/learn: @list of AppdepLearnStatus (appdep_learn_list()). */
void appdep_render_learn_list(GString *out, const GArray *list);

#endif /* APPDEP_RENDER_H */
