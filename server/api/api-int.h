/*
 * appdep server: what the HTTP API's files share (api-http.c,
 * api-handlers.c) and nobody else sees.  The public side is
 * server.h (start/stop) and api.h (the pure parsers).
 *
 * Copyright (c) 2026 appdep authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef APPDEP_API_INT_H
#define APPDEP_API_INT_H

#include <glib.h>
#include "api.h"
#include "server.h"

#define CTYPE_JSON  "application/json"
#define CTYPE_TEXT  "text/plain; charset=utf-8"
#define CTYPE_DOT   "text/vnd.graphviz; charset=utf-8"

/* The HTTP status codes the handlers answer with (RFC 9110). */
enum {
    API_HTTP_OK = 200,
    API_HTTP_ACCEPTED = 202,
    API_HTTP_BAD_REQUEST = 400,
    API_HTTP_NOT_FOUND = 404,
    API_HTTP_METHOD_NOT_ALLOWED = 405,
    API_HTTP_TOO_MANY_REQUESTS = 429,
    API_HTTP_INTERNAL_SERVER_ERROR = 500,
    API_HTTP_BAD_GATEWAY = 502,
    API_HTTP_SERVICE_UNAVAILABLE = 503,
    API_HTTP_GATEWAY_TIMEOUT = 504,
};

struct MHD_Connection;
struct MHD_Daemon;

/*
 * One request.  Reference counted: MHD's connection holds one reference
 * (dropped in its completion callback), and so does everything on the
 * main loop that may still answer it.
 */
typedef struct ApiRequest {
    gint refs;                      /* atomic */
    AppdepApi *api;                 /* its server's API, outlives it */
    char method[8];
    char *path;
    GHashTable *query;              /* key -> value, both owned */
    GString *body;
    /* set in MHD's thread before dispatch, then read-only: */
    unsigned early_status;          /* answer at once, without dispatch */
    const char *early_error;
    bool replied;                   /* a response was queued */
    bool overflow;                  /* the body did not fit */
    uint64_t discarded;             /* body bytes dropped */
    bool dispatched;
    /* guarded by api->lock: */
    struct MHD_Connection *conn;    /* NULL once MHD is done with it */
    bool suspended;
    bool done;                      /* status/ctype/reply are ready */
    unsigned status;
    const char *ctype;
    GString *reply;
} ApiRequest;

/*
 * The API of one server (AppdepServer.api).  Reference counted: the
 * server holds one reference until appdep_api_stop(), and every request
 * one, since a request may be answered late (a RESULT, a timeout).
 */
struct AppdepApi {
    gint refs;                      /* atomic */
    struct MHD_Daemon *daemon;      /* main loop (start/stop) */
    AppdepServer *srv;
    GMainContext *ctx;
    uint16_t port;
    GMutex lock;
    GCond idle;                     /* workers dropped to 0 */
    GHashTable *suspended;          /* lock: ApiRequest * */
    unsigned workers;               /* lock: query threads running */
    uint64_t requests, errors;      /* lock */
};


/* ---- api-http.c: requests (the handlers' side) ---- */

ApiRequest *api_req_ref(ApiRequest *req);
void api_req_unref(gpointer req);

/*
 * Answer @req with @status and @body (taken; @ctype static) unless it
 * was answered already.  Resumes the connection.  Any thread.
 */
void api_reply(ApiRequest *req, unsigned status, const char *ctype,
               GString *body);
/* The same for a JSON @body, to which a newline is added. */
void api_reply_json(ApiRequest *req, unsigned status, GString *body);
/* {"error": TEXT} as a new string. */
GString *api_error_body(const char *text);
/* Answer with {"error": the printf of @fmt}. */
void api_error(ApiRequest *req, unsigned status, const char *fmt, ...)
    G_GNUC_PRINTF(3, 4);
/* Whether @req was answered.  Any thread. */
bool api_is_done(ApiRequest *req);
/*
 * Only the NULL-terminated @allowed query keys are accepted; otherwise
 * @req is answered 400 and false returned.  Main loop.
 */
bool api_query_check(ApiRequest *req, const char *const *allowed);
/* The value of query key @key, or NULL. */
const char *api_query_get(ApiRequest *req, const char *key);

/* ---- api-handlers.c ---- */

/*
 * Main loop: act on one collected request (an idle source's callback,
 * @opaque the ApiRequest, whose reference the source holds).
 */
gboolean api_dispatch(gpointer opaque);

#endif /* APPDEP_API_INT_H */
