/*
 * appdep server: the HTTP JSON API (docs/api.md).
 *
 * appdep_api_start() / appdep_api_stop() are declared in server.h.  This
 * header holds the API's limits and the pure request parsers, kept apart
 * from acting on a request so they can be unit-tested: strings in,
 * values out, no I/O, no server state, any thread.
 *
 * Error convention of the parsers: 0 on success or -EINVAL (bad syntax)
 * / -ERANGE (a number out of bounds) / -E2BIG (too long), with *@why set
 * to a static English sentence for the client's {"error": ...}.
 *
 * Copyright (c) 2026 appdep authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef APPDEP_API_H
#define APPDEP_API_H

#include <glib.h>
#include <stdbool.h>
#include <stdint.h>
#include "appdep-wire.h"
#include "appspec.h"
#include "json-out.h"
#include "server-limits.h"

typedef enum AppdepApiRoute {
    APPDEP_API_ROUTE_STATUS = 1,    /* GET  /v1/status */
    APPDEP_API_ROUTE_VMS,           /* GET  /v1/vms */
    APPDEP_API_ROUTE_INSPECT,       /* POST /v1/vms/{vm}/inspect */
    APPDEP_API_ROUTE_MAP,           /* GET  /v1/map */
    APPDEP_API_ROUTE_TRAJECTORIES,  /* GET  /v1/trajectories */
    APPDEP_API_ROUTE_LEARN_START,   /* POST /v1/learn */
    APPDEP_API_ROUTE_LEARN_LIST,    /* GET  /v1/learn */
    APPDEP_API_ROUTE_LEARN_GET,     /* GET  /v1/learn/{id} */
} AppdepApiRoute;

/*
 * Map @method and @path (decoded, without query) to a route and its path
 * argument ({vm} or {id}, copied into @arg of @arg_size bytes, "" when the
 * route has none).  Returns 0, -ENOENT (no such resource: 404) or -EPERM
 * (the resource exists, the method is wrong: 405).
 */
int appdep_api_route(const char *method, const char *path,
                     AppdepApiRoute *route, char *arg, size_t arg_size);

/* Decimal digits only (no sign, space or suffix), @min <= value <= @max. */
int appdep_api_parse_u64(const char *s, uint64_t min, uint64_t max,
                         uint64_t *out, const char **why);

/*
 * The time window [*@t0, *@t1) of a query from its optional "from", "to"
 * (ns since the epoch) and "last" (seconds before @now_ns) arguments
 * (NULL: absent).  "last" excludes "from" and "to"; "to" defaults to
 * @now_ns, "from" to "to" minus APPDEP_API_DEFAULT_WINDOW_NS (or 0).
 * from < to is required.
 */
int appdep_api_parse_window(const char *from, const char *to,
                            const char *last, uint64_t now_ns,
                            uint64_t *t0, uint64_t *t1, const char **why);

/* Whether @have + @more bytes of body still fit APPDEP_API_MAX_BODY_LEN. */
bool appdep_api_body_fits(size_t have, size_t more);

/* Body of POST /v1/vms/{vm}/inspect: {"enable": BOOL}. */
int appdep_api_parse_inspect(const char *body, size_t len, bool *enable,
                             const char **why);

/* Body of POST /v1/learn: {"app": SPEC[, "window_s": N]}. */
int appdep_api_parse_learn(const char *body, size_t len, AppdepAppSpec *app,
                           uint32_t *window_s, const char **why);

#endif /* APPDEP_API_H */
