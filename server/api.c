/*
 * appdep server: the HTTP JSON API (docs/api.md), on libmicrohttpd.
 *
 * MHD runs its own polling thread.  A request is collected there (path,
 * query arguments and body, each bounded), then its connection is
 * suspended and the request handed to the server's main loop by an idle
 * source: the server state is single-threaded.  The main loop answers it
 * at once, or later (a forward daemon's RESULT, a timeout, a store query
 * run in a worker thread); answering stores the response and resumes the
 * connection, whose access handler then queues the response.
 *
 * Request lifetime: an ApiRequest is reference counted.  MHD's
 * connection holds one reference (dropped in the completion callback),
 * and so does everything on the main loop that may still answer it (the
 * dispatch idle source, an inspect in flight, a query task).  Answering
 * twice is harmless: the first answer wins.
 *
 * Copyright (c) 2026 appdep authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include <errno.h>
#include <stdarg.h>
#include <string.h>
#include <microhttpd.h>
#include <json-glib/json-glib.h>
#include "server.h"
#include "api.h"
#include "learn.h"
#include "render.h"
#include "trajectory.h"
#include "query.h"

#define CTYPE_JSON  "application/json"
#define CTYPE_TEXT  "text/plain; charset=utf-8"
#define CTYPE_DOT   "text/vnd.graphviz; charset=utf-8"

/* ---- pure parsers ------------------------------------------------------ */

int appdep_api_parse_u64(const char *s, uint64_t min, uint64_t max,
                         uint64_t *out, const char **why)
{
    g_autoptr(GError) err = NULL;
    guint64 v;

    if (!s || !*s) {
        *why = "empty number";
        return -EINVAL;
    }
    /* the whole range first: a number too large is not one out of range */
    if (!g_ascii_string_to_unsigned(s, 10, 0, G_MAXUINT64, &v, &err)) {
        bool big = g_error_matches(err, G_NUMBER_PARSER_ERROR,
                                   G_NUMBER_PARSER_ERROR_OUT_OF_BOUNDS);

        *why = big ? "number too large" : "not a decimal number";
        return big ? -ERANGE : -EINVAL;
    }
    if (v < min || v > max) {
        *why = "number out of range";
        return -ERANGE;
    }
    *out = v;
    return 0;
}

int appdep_api_parse_window(const char *from, const char *to,
                            const char *last, uint64_t now_ns,
                            uint64_t *t0, uint64_t *t1, const char **why)
{
    uint64_t a, b;
    const char *w;

    if (last) {
        uint64_t s;

        if (from || to) {
            *why = "'last' excludes 'from' and 'to'";
            return -EINVAL;
        }
        if (appdep_api_parse_u64(last, 1, now_ns / APPDEP_NS_PER_S, &s,
                                 &w) < 0) {
            *why = "bad 'last': seconds, 1 up to the age of the epoch";
            return -EINVAL;
        }
        *t0 = now_ns - s * APPDEP_NS_PER_S;
        *t1 = now_ns;
        return 0;
    }
    b = now_ns;
    if (to && appdep_api_parse_u64(to, 1, UINT64_MAX, &b, &w) < 0) {
        *why = "bad 'to': nanoseconds since the epoch";
        return -EINVAL;
    }
    a = b > APPDEP_API_DEFAULT_WINDOW_NS ? b - APPDEP_API_DEFAULT_WINDOW_NS
                                         : 0;
    if (from && appdep_api_parse_u64(from, 0, UINT64_MAX, &a, &w) < 0) {
        *why = "bad 'from': nanoseconds since the epoch";
        return -EINVAL;
    }
    if (a >= b) {
        *why = "'from' must be before 'to'";
        return -ERANGE;
    }
    *t0 = a;
    *t1 = b;
    return 0;
}

bool appdep_api_body_fits(size_t have, size_t more)
{
    return have <= APPDEP_API_MAX_BODY_LEN &&
           more <= APPDEP_API_MAX_BODY_LEN - have;
}

/* Parse @body as one JSON object; NULL (with *@why) if it is not. */
static JsonParser *parse_object(const char *body, size_t len,
                                JsonObject **obj, const char **why)
{
    g_autoptr(JsonParser) p = json_parser_new();
    JsonNode *root;

    if (len == 0) {
        *why = "empty body, want a JSON object";
        return NULL;
    }
    if (len > APPDEP_API_MAX_BODY_LEN) {
        *why = "body too large";
        return NULL;
    }
    if (memchr(body, '\0', len) ||
        !json_parser_load_from_data(p, body, len, NULL)) {
        *why = "body is not valid JSON";
        return NULL;
    }
    root = json_parser_get_root(p);
    if (!root || !JSON_NODE_HOLDS_OBJECT(root)) {
        *why = "body is not a JSON object";
        return NULL;
    }
    *obj = json_node_get_object(root);
    return g_steal_pointer(&p);
}

/* Every member of @obj is one of the NULL-terminated @known. */
static bool only_members(JsonObject *obj, const char *const *known)
{
    g_autoptr(GList) names = json_object_get_members(obj);
    GList *l;

    for (l = names; l; l = l->next) {
        if (!g_strv_contains(known, l->data)) {
            return false;
        }
    }
    return true;
}

int appdep_api_parse_inspect(const char *body, size_t len, bool *enable,
                             const char **why)
{
    static const char *const known[] = { "enable", NULL };
    g_autoptr(JsonParser) p = NULL;
    JsonObject *obj;
    JsonNode *n;

    p = parse_object(body, len, &obj, why);
    if (!p) {
        return -EINVAL;
    }
    if (!only_members(obj, known)) {
        *why = "unknown member, want {\"enable\": true|false}";
        return -EINVAL;
    }
    n = json_object_get_member(obj, "enable");
    if (!n || !JSON_NODE_HOLDS_VALUE(n) ||
        json_node_get_value_type(n) != G_TYPE_BOOLEAN) {
        *why = "want {\"enable\": true|false}";
        return -EINVAL;
    }
    *enable = json_node_get_boolean(n);
    return 0;
}

int appdep_api_parse_learn(const char *body, size_t len, AppdepAppSpec *app,
                           uint32_t *window_s, const char **why)
{
    static const char *const known[] = { "app", "window_s", NULL };
    g_autoptr(JsonParser) p = NULL;
    JsonObject *obj;
    JsonNode *n;

    p = parse_object(body, len, &obj, why);
    if (!p) {
        return -EINVAL;
    }
    if (!only_members(obj, known)) {
        *why = "unknown member, want {\"app\": SPEC, \"window_s\": N}";
        return -EINVAL;
    }
    n = json_object_get_member(obj, "app");
    if (!n || !JSON_NODE_HOLDS_VALUE(n) ||
        json_node_get_value_type(n) != G_TYPE_STRING) {
        *why = "want {\"app\": \"VM[/PROGRAM][:PORT]\"}";
        return -EINVAL;
    }
    if (appdep_appspec_parse(json_node_get_string(n), app, why) < 0) {
        return -EINVAL;
    }
    *window_s = APPDEP_LEARN_DEFAULT_WINDOW_S;
    n = json_object_get_member(obj, "window_s");
    if (n) {
        gint64 v;

        if (!JSON_NODE_HOLDS_VALUE(n) ||
            json_node_get_value_type(n) != G_TYPE_INT64) {
            *why = "'window_s' must be an integer";
            return -EINVAL;
        }
        v = json_node_get_int(n);
        if (v < APPDEP_LEARN_MIN_WINDOW_S || v > APPDEP_LEARN_MAX_WINDOW_S) {
            *why = "'window_s' out of range (1..3600)";
            return -ERANGE;
        }
        *window_s = v;
    }
    return 0;
}

static const char *const route_methods[] = {
    [APPDEP_API_ROUTE_STATUS] = "GET",
    [APPDEP_API_ROUTE_VMS] = "GET",
    [APPDEP_API_ROUTE_INSPECT] = "POST",
    [APPDEP_API_ROUTE_MAP] = "GET",
    [APPDEP_API_ROUTE_TRAJECTORIES] = "GET",
    [APPDEP_API_ROUTE_LEARN_START] = "POST",
    [APPDEP_API_ROUTE_LEARN_LIST] = "GET",
    [APPDEP_API_ROUTE_LEARN_GET] = "GET",
};

int appdep_api_route(const char *method, const char *path,
                     AppdepApiRoute *route, char *arg, size_t arg_size)
{
    static const struct {
        const char *path;
        AppdepApiRoute route;
    } fixed[] = {
        { "/v1/status", APPDEP_API_ROUTE_STATUS },
        { "/v1/vms", APPDEP_API_ROUTE_VMS },
        { "/v1/map", APPDEP_API_ROUTE_MAP },
        { "/v1/trajectories", APPDEP_API_ROUTE_TRAJECTORIES },
    };
    const char *rest, *slash;
    AppdepApiRoute r = 0;
    size_t i;

    if (arg_size) {
        arg[0] = '\0';
    }
    if (strnlen(path, APPDEP_API_MAX_URL_LEN + 1) > APPDEP_API_MAX_URL_LEN) {
        return -ENOENT;
    }
    for (i = 0; i < G_N_ELEMENTS(fixed); i++) {
        if (!strcmp(path, fixed[i].path)) {
            r = fixed[i].route;
        }
    }
    if (!r && !strcmp(path, "/v1/learn")) {
        r = strcmp(method, "POST") ? APPDEP_API_ROUTE_LEARN_LIST
                                   : APPDEP_API_ROUTE_LEARN_START;
    }
    if (!r && g_str_has_prefix(path, "/v1/learn/")) {
        rest = path + strlen("/v1/learn/");
        if (!*rest || strchr(rest, '/') || strlen(rest) >= arg_size) {
            return -ENOENT;
        }
        g_strlcpy(arg, rest, arg_size);
        r = APPDEP_API_ROUTE_LEARN_GET;
    }
    if (!r && g_str_has_prefix(path, "/v1/vms/")) {
        rest = path + strlen("/v1/vms/");
        slash = strchr(rest, '/');
        if (!slash || slash == rest || strcmp(slash, "/inspect") ||
            (size_t)(slash - rest) >= arg_size) {
            return -ENOENT;
        }
        memcpy(arg, rest, slash - rest);
        arg[slash - rest] = '\0';
        r = APPDEP_API_ROUTE_INSPECT;
    }
    if (!r) {
        return -ENOENT;
    }
    if (strcmp(method, route_methods[r])) {
        return -EPERM;
    }
    *route = r;
    return 0;
}

/* ---- requests ---------------------------------------------------------- */

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

static AppdepApi *api_ref(AppdepApi *api)
{
    g_atomic_int_inc(&api->refs);
    return api;
}

static void api_unref(AppdepApi *api)
{
    if (!api || !g_atomic_int_dec_and_test(&api->refs)) {
        return;
    }
    g_hash_table_unref(api->suspended);
    g_mutex_clear(&api->lock);
    g_cond_clear(&api->idle);
    g_free(api);
}

static ApiRequest *req_ref(ApiRequest *req)
{
    g_atomic_int_inc(&req->refs);
    return req;
}

static void req_unref(gpointer p)
{
    ApiRequest *req = p;

    if (!req || !g_atomic_int_dec_and_test(&req->refs)) {
        return;
    }
    api_unref(req->api);
    g_free(req->path);
    if (req->query) {
        g_hash_table_unref(req->query);
    }
    if (req->body) {
        g_string_free(req->body, TRUE);
    }
    if (req->reply) {
        g_string_free(req->reply, TRUE);
    }
    g_free(req);
}

/*
 * Answer @req with @status and @body (taken; ctype static) unless it was
 * answered already.  Resumes the connection.  Any thread.
 */
static void api_reply(ApiRequest *req, unsigned status, const char *ctype,
                      GString *body)
{
    AppdepApi *api = req->api;

    g_mutex_lock(&api->lock);
    if (req->done) {
        g_mutex_unlock(&api->lock);
        g_string_free(body, TRUE);
        return;
    }
    req->done = true;
    req->status = status;
    req->ctype = ctype;
    req->reply = body;
    if (status >= 400) {
        api->errors++;
    }
    if (req->suspended && req->conn) {
        req->suspended = false;
        g_hash_table_remove(api->suspended, req);
        MHD_resume_connection(req->conn);
    }
    g_mutex_unlock(&api->lock);
}

static void api_reply_json(ApiRequest *req, unsigned status, GString *body)
{
    g_string_append_c(body, '\n');
    api_reply(req, status, CTYPE_JSON, body);
}

static GString *error_body(const char *text)
{
    GString *b = g_string_new(NULL);

    appdep_render_error(b, text);
    return b;
}

static void G_GNUC_PRINTF(3, 4)
api_error(ApiRequest *req, unsigned status, const char *fmt, ...)
{
    g_autofree char *text = NULL;
    va_list ap;

    va_start(ap, fmt);
    text = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    api_reply_json(req, status, error_body(text));
}

static bool api_is_done(ApiRequest *req)
{
    AppdepApi *api = req->api;
    bool done;

    g_mutex_lock(&api->lock);
    done = req->done;
    g_mutex_unlock(&api->lock);
    return done;
}

/* Only the NULL-terminated @allowed query keys are accepted. */
static bool query_check(ApiRequest *req, const char *const *allowed)
{
    GHashTableIter it;
    gpointer key;

    g_hash_table_iter_init(&it, req->query);
    while (g_hash_table_iter_next(&it, &key, NULL)) {
        if (!g_strv_contains(allowed, key)) {
            g_autofree char *k = g_strescape(key, NULL);

            api_error(req, MHD_HTTP_BAD_REQUEST,
                      "unknown query argument '%s'", k);
            return false;
        }
    }
    return true;
}

static const char *query_get(ApiRequest *req, const char *key)
{
    return g_hash_table_lookup(req->query, key);
}

/* ---- handlers (main loop) ----------------------------------------------- */

static void handle_status(ApiRequest *req, AppdepServer *srv)
{
    static const char *const allowed[] = { NULL };
    AppdepApi *api = req->api;
    AppdepServerStatus st = { .time_ns = appdep_now_ns() };
    GString *b;

    if (!query_check(req, allowed)) {
        return;
    }
    if (srv->store) {
        appdep_store_stats(srv->store, &st.store);
        st.store_error = appdep_store_count(srv->store, &st.stored_messages);
        if (st.store_error >= 0) {
            st.store_error = appdep_store_record_count(srv->store,
                                                       &st.stored_records);
        }
    }
    g_mutex_lock(&api->lock);
    st.api_requests = api->requests;
    st.api_errors = api->errors;
    g_mutex_unlock(&api->lock);

    b = g_string_new(NULL);
    appdep_render_status(b, srv, &st);
    api_reply_json(req, MHD_HTTP_OK, b);
}

static void handle_vms(ApiRequest *req, AppdepServer *srv)
{
    static const char *const allowed[] = { NULL };
    GString *b;

    if (!query_check(req, allowed)) {
        return;
    }
    b = g_string_new(NULL);
    appdep_render_vms(b, srv);
    api_reply_json(req, MHD_HTTP_OK, b);
}

typedef struct ApiInspect {
    ApiRequest *req;
    char vm[APPDEP_WIRE_VM_LEN + 1];
    bool enable;
    guint timer;
} ApiInspect;

/* The daemon's RESULT (or its loss).  Main loop. */
static void inspect_done(int status, const char *message, void *opaque)
{
    ApiInspect *op = opaque;
    GString *b;

    if (op->timer) {
        g_source_remove(op->timer);
    }
    b = g_string_new(NULL);
    appdep_render_inspect(b, op->vm, op->enable, status, message);
    /* net.c's own command timeout is a timeout too */
    api_reply_json(op->req, status == 0 ? MHD_HTTP_OK :
                   status == -ETIMEDOUT ? MHD_HTTP_GATEWAY_TIMEOUT
                                        : MHD_HTTP_BAD_GATEWAY, b);
    req_unref(op->req);
    g_free(op);
}

static gboolean inspect_timeout(gpointer opaque)
{
    ApiInspect *op = opaque;

    /* op stays until the daemon answers or its connection goes */
    op->timer = 0;
    api_error(op->req, MHD_HTTP_GATEWAY_TIMEOUT,
              "no result from the forward daemon of VM '%s' within %d s",
              op->vm, APPDEP_API_INSPECT_TIMEOUT_S);
    return G_SOURCE_REMOVE;
}

static void handle_inspect(ApiRequest *req, AppdepServer *srv,
                           const char *vm)
{
    static const char *const allowed[] = { NULL };
    const char *why;
    ApiInspect *op;
    bool enable;
    int ret;

    if (!query_check(req, allowed)) {
        return;
    }
    if (!appdep_vm_name_ok(vm)) {
        api_error(req, MHD_HTTP_BAD_REQUEST,
                  "bad VM name: 1 to 64 printable bytes, no '/'");
        return;
    }
    if (appdep_api_parse_inspect(req->body->str, req->body->len, &enable,
                                 &why) < 0) {
        api_error(req, MHD_HTTP_BAD_REQUEST, "%s", why);
        return;
    }
    if (!srv->vms || !g_hash_table_lookup(srv->vms, vm)) {
        api_error(req, MHD_HTTP_NOT_FOUND, "no such VM: '%s'", vm);
        return;
    }
    op = g_new0(ApiInspect, 1);
    op->req = req_ref(req);
    g_strlcpy(op->vm, vm, sizeof(op->vm));
    op->enable = enable;
    ret = srv->inventory->inspect(srv->inventory_opaque, vm, enable,
                                  inspect_done, op);
    if (ret < 0) {
        req_unref(op->req);
        g_free(op);
        if (ret == -ENOENT) {
            api_error(req, MHD_HTTP_NOT_FOUND, "VM '%s' is not reported by "
                      "any connected forward daemon", vm);
        } else {
            api_error(req, MHD_HTTP_BAD_GATEWAY, "cannot send the command "
                      "for VM '%s': %s", vm, g_strerror(-ret));
        }
        return;
    }
    /* inspect_done may have run already: then op is gone */
    if (!api_is_done(req)) {
        op->timer = g_timeout_add_seconds(APPDEP_API_INSPECT_TIMEOUT_S,
                                          inspect_timeout, op);
    }
}

/* Map and trajectory queries run in a worker thread (store reads). */
typedef enum ApiFormat { FMT_JSON, FMT_TEXT, FMT_DOT } ApiFormat;

typedef struct ApiQuery {
    AppdepApi *api;
    AppdepStore *store;
    bool trajectories;
    uint64_t t0, t1;
    ApiFormat format;
    AppdepAppSpec app;
    uint64_t limit;
    uint64_t margin_ns;         /* trajectories: read before and after */
    /* result */
    unsigned status;
    const char *ctype;
    GString *out;
} ApiQuery;

/* Load [t0, t1) into a new array; NULL and an error text in @q. */
static GArray *query_load(ApiQuery *q, uint64_t t0, uint64_t t1,
                          bool *truncated)
{
    g_autoptr(GArray) msgs = g_array_new(FALSE, FALSE,
                                         sizeof(AppdepMessage));
    int ret;

    ret = appdep_store_range(q->store, t0, t1, msgs,
                             APPDEP_API_MAX_MESSAGES + 1);
    if (ret < 0) {
        q->status = MHD_HTTP_INTERNAL_SERVER_ERROR;
        q->out = error_body(appdep_store_strerror(ret));
        return NULL;
    }
    *truncated = msgs->len > APPDEP_API_MAX_MESSAGES;
    if (*truncated) {
        g_array_set_size(msgs, APPDEP_API_MAX_MESSAGES);
    }
    return g_steal_pointer(&msgs);
}

static void query_map(ApiQuery *q)
{
    g_autoptr(GArray) msgs = NULL;
    g_autoptr(GArray) edges = NULL;
    AppdepExchanges *x;
    bool truncated;

    msgs = query_load(q, q->t0, q->t1, &truncated);
    if (!msgs) {
        return;
    }
    x = appdep_exchanges_new((AppdepMessage *)msgs->data, msgs->len);
    edges = appdep_map_build(x, q->t0, q->t1);
    q->status = MHD_HTTP_OK;
    q->out = g_string_new(NULL);
    switch (q->format) {
    case FMT_JSON:
        q->ctype = CTYPE_JSON;
        appdep_render_map_window(q->out, q->t0, q->t1, msgs->len,
                                 appdep_exchanges_len(x), truncated, edges);
        break;
    case FMT_DOT:
        q->ctype = CTYPE_DOT;
        appdep_map_to_dot(edges, q->out);
        break;
    case FMT_TEXT:
        q->ctype = CTYPE_TEXT;
        if (truncated) {
            g_string_append_printf(q->out, "(truncated to the first %u "
                                   "messages of the window)\n",
                                   APPDEP_API_MAX_MESSAGES);
        }
        appdep_map_to_text(edges, q->out);
        break;
    }
    appdep_exchanges_free(x);
}

/*
 * The trees are built from the whole window's exchanges, plus a margin
 * on both sides: after, for children that end after the window; before,
 * because attributing a call to one of the requests its thread was
 * serving needs that thread's other requests too, which may have begun
 * before the root.  A narrow window (one request) reads little: the cost
 * follows the messages in the window and its margins.  query.c's reads of the
 * involved threads over the root's interval alone give wrong trees for
 * thread pools, event loops and brokers (scripts/accuracy.py measures
 * it), so the API does not use them.
 */
static void query_trajectories(ApiQuery *q)
{
    AppdepQueryWindow w;
    uint64_t shown = 0;
    guint k;
    int ret;

    ret = appdep_query_window(q->store, q->t0, q->t1, q->margin_ns,
                              APPDEP_API_MAX_MESSAGES, q->app.vm,
                              q->app.comm[0] ? q->app.comm : NULL,
                              q->app.port, &w);
    if (ret < 0) {
        q->status = MHD_HTTP_INTERNAL_SERVER_ERROR;
        q->out = error_body(appdep_store_strerror(ret));
        return;
    }
    q->status = MHD_HTTP_OK;
    q->out = g_string_new(NULL);
    if (q->format == FMT_JSON) {
        q->ctype = CTYPE_JSON;
        g_string_append_c(q->out, '[');
    } else {
        q->ctype = CTYPE_TEXT;
    }
    for (k = 0; k < w.roots->len && shown < q->limit; k++) {
        AppdepTrajNode *t = appdep_trajectory_build(
            w.x, g_array_index(w.roots, guint, k));

        if (q->format == FMT_JSON) {
            if (shown) {
                g_string_append_c(q->out, ',');
            }
            appdep_trajectory_to_json(t, q->out);
        } else {
            g_string_append_printf(q->out, "trajectory %" G_GUINT64_FORMAT
                                   ":\n", shown + 1);
            appdep_trajectory_to_text(t, q->out);
        }
        appdep_traj_node_free(t);
        shown++;
    }
    if (q->format == FMT_JSON) {
        g_string_append(q->out, "]\n");
    } else if (!w.roots->len) {
        g_string_append(q->out, "no request to the application in the "
                        "window\n");
    } else {
        g_string_append_printf(q->out, "%" G_GUINT64_FORMAT " of %u "
                               "trajectories shown%s\n", shown,
                               w.roots->len, w.truncated
                               ? " (window truncated)" : "");
    }
    appdep_query_window_clear(&w);
}

static void query_free(gpointer p)
{
    ApiQuery *q = p;

    if (q->out) {
        g_string_free(q->out, TRUE);
    }
    g_free(q);
}

/* Worker thread: only the store is touched. */
static void query_thread(GTask *task, gpointer source, gpointer data,
                         GCancellable *cancel)
{
    ApiQuery *q = data;
    AppdepApi *api = q->api;

    if (q->trajectories) {
        query_trajectories(q);
    } else {
        query_map(q);
    }
    g_mutex_lock(&api->lock);
    if (--api->workers == 0) {
        g_cond_broadcast(&api->idle);
    }
    g_mutex_unlock(&api->lock);
    g_task_return_boolean(task, TRUE);
}

/* Main loop: the worker's answer. */
static void query_done(GObject *source, GAsyncResult *res, gpointer opaque)
{
    ApiRequest *req = opaque;
    ApiQuery *q = g_task_get_task_data(G_TASK(res));

    api_reply(req, q->status, q->ctype ? q->ctype : CTYPE_JSON,
              g_steal_pointer(&q->out));
    req_unref(req);
}

static void query_start(ApiRequest *req, ApiQuery *q)
{
    AppdepApi *api = req->api;
    g_autoptr(GTask) task = g_task_new(NULL, NULL, query_done, req_ref(req));

    g_mutex_lock(&api->lock);
    api->workers++;
    g_mutex_unlock(&api->lock);
    g_task_set_task_data(task, q, query_free);
    g_task_run_in_thread(task, query_thread);
}

static bool parse_format(ApiRequest *req, ApiQuery *q, bool dot_ok)
{
    const char *f = query_get(req, "format");

    q->format = FMT_JSON;
    if (!f || !strcmp(f, "json")) {
        return true;
    }
    if (!strcmp(f, "text")) {
        q->format = FMT_TEXT;
        return true;
    }
    if (dot_ok && !strcmp(f, "dot")) {
        q->format = FMT_DOT;
        return true;
    }
    api_error(req, MHD_HTTP_BAD_REQUEST, "bad 'format': want json%s or text",
              dot_ok ? ", dot" : "");
    return false;
}

static ApiQuery *query_new(ApiRequest *req, AppdepServer *srv)
{
    g_autofree ApiQuery *q = g_new0(ApiQuery, 1);
    const char *why;

    if (!srv->store) {
        api_error(req, MHD_HTTP_SERVICE_UNAVAILABLE, "no store");
        return NULL;
    }
    q->api = req->api;
    q->store = srv->store;
    if (appdep_api_parse_window(query_get(req, "from"), query_get(req, "to"),
                                query_get(req, "last"), appdep_now_ns(), &q->t0,
                                &q->t1, &why) < 0) {
        api_error(req, MHD_HTTP_BAD_REQUEST, "%s", why);
        return NULL;
    }
    return g_steal_pointer(&q);
}

static void handle_map(ApiRequest *req, AppdepServer *srv)
{
    static const char *const allowed[] = { "from", "to", "last", "format",
                                           NULL };
    g_autofree ApiQuery *q = NULL;

    if (!query_check(req, allowed)) {
        return;
    }
    q = query_new(req, srv);
    if (!q || !parse_format(req, q, true)) {
        return;
    }
    query_start(req, g_steal_pointer(&q));
}

static void handle_trajectories(ApiRequest *req, AppdepServer *srv)
{
    static const char *const allowed[] = { "app", "from", "to", "last",
                                           "limit", "format", "margin_s",
                                           NULL };
    g_autofree ApiQuery *q = NULL;
    const char *app = query_get(req, "app"), *limit, *margin, *why;
    uint64_t margin_s = APPDEP_API_TRAJ_MARGIN_S;

    if (!query_check(req, allowed)) {
        return;
    }
    if (!app) {
        api_error(req, MHD_HTTP_BAD_REQUEST,
                  "missing 'app': want app=VM[/PROGRAM][:PORT]");
        return;
    }
    q = query_new(req, srv);
    if (!q || !parse_format(req, q, false)) {
        return;
    }
    if (appdep_appspec_parse(app, &q->app, &why) < 0) {
        api_error(req, MHD_HTTP_BAD_REQUEST, "%s", why);
        return;
    }
    q->trajectories = true;
    q->limit = APPDEP_API_DEFAULT_TRAJ_LIMIT;
    limit = query_get(req, "limit");
    if (limit && appdep_api_parse_u64(limit, 1, APPDEP_API_MAX_TRAJ_LIMIT,
                                      &q->limit, &why) < 0) {
        api_error(req, MHD_HTTP_BAD_REQUEST, "bad 'limit': %s (1..%d)", why,
                  APPDEP_API_MAX_TRAJ_LIMIT);
        return;
    }
    margin = query_get(req, "margin_s");
    if (margin && appdep_api_parse_u64(margin, 0, APPDEP_API_TRAJ_MAX_MARGIN_S,
                                       &margin_s, &why) < 0) {
        api_error(req, MHD_HTTP_BAD_REQUEST, "bad 'margin_s': %s (0..%d)",
                  why, APPDEP_API_TRAJ_MAX_MARGIN_S);
        return;
    }
    q->margin_ns = margin_s * APPDEP_NS_PER_S;
    query_start(req, g_steal_pointer(&q));
}

static void handle_learn_start(ApiRequest *req, AppdepServer *srv)
{
    static const char *const allowed[] = { NULL };
    AppdepAppSpec app;
    const char *why;
    uint32_t window_s;
    uint64_t id;
    GString *b;
    int ret;

    if (!query_check(req, allowed)) {
        return;
    }
    if (appdep_api_parse_learn(req->body->str, req->body->len, &app,
                               &window_s, &why) < 0) {
        api_error(req, MHD_HTTP_BAD_REQUEST, "%s", why);
        return;
    }
    ret = appdep_learn_start(srv, &app, window_s, &id);
    if (ret == -ENOENT) {
        api_error(req, MHD_HTTP_NOT_FOUND, "no such VM: '%s'", app.vm);
        return;
    } else if (ret == -EBUSY) {
        api_error(req, MHD_HTTP_TOO_MANY_REQUESTS, "%d learning sessions "
                  "are running already", APPDEP_LEARN_MAX_RUNNING);
        return;
    } else if (ret < 0) {
        api_error(req, MHD_HTTP_BAD_REQUEST, "cannot start learning: %s",
                  g_strerror(-ret));
        return;
    }
    b = g_string_new(NULL);
    appdep_render_learn_started(b, id);
    api_reply_json(req, MHD_HTTP_ACCEPTED, b);
}

static void handle_learn_get(ApiRequest *req, AppdepServer *srv,
                             const char *arg)
{
    static const char *const allowed[] = { NULL };
    AppdepLearnStatus st;
    const char *why;
    uint64_t id;
    GString *b;

    if (!query_check(req, allowed)) {
        return;
    }
    if (appdep_api_parse_u64(arg, 1, UINT64_MAX, &id, &why) < 0) {
        api_error(req, MHD_HTTP_BAD_REQUEST, "bad learning id: %s", why);
        return;
    }
    if (appdep_learn_status(srv, id, &st) < 0) {
        api_error(req, MHD_HTTP_NOT_FOUND, "no learning session %"
                  G_GUINT64_FORMAT, id);
        return;
    }
    b = g_string_new(NULL);
    appdep_render_learn(b, &st);
    api_reply_json(req, MHD_HTTP_OK, b);
}

static void handle_learn_list(ApiRequest *req, AppdepServer *srv)
{
    static const char *const allowed[] = { NULL };
    g_autoptr(GArray) list = NULL;
    GString *b;

    if (!query_check(req, allowed)) {
        return;
    }
    list = appdep_learn_list(srv);
    b = g_string_new(NULL);
    appdep_render_learn_list(b, list);
    api_reply_json(req, MHD_HTTP_OK, b);
}

/* Main loop: act on one collected request. */
static gboolean api_dispatch(gpointer opaque)
{
    ApiRequest *req = opaque;
    AppdepApi *api = req->api;
    AppdepServer *srv = api->srv;
    char arg[APPDEP_API_MAX_URL_LEN + 1];
    AppdepApiRoute route;
    int ret;

    if (api_is_done(req)) {
        return G_SOURCE_REMOVE;         /* answered by appdep_api_stop */
    }
    g_mutex_lock(&api->lock);
    api->requests++;
    g_mutex_unlock(&api->lock);

    ret = appdep_api_route(req->method, req->path, &route, arg, sizeof(arg));
    if (ret == -EPERM) {
        api_error(req, MHD_HTTP_METHOD_NOT_ALLOWED,
                  "method not allowed on this resource");
        return G_SOURCE_REMOVE;
    } else if (ret < 0) {
        api_error(req, MHD_HTTP_NOT_FOUND, "no such resource");
        return G_SOURCE_REMOVE;
    }
    if (req->body->len && route != APPDEP_API_ROUTE_INSPECT &&
        route != APPDEP_API_ROUTE_LEARN_START) {
        api_error(req, MHD_HTTP_BAD_REQUEST, "this request takes no body");
        return G_SOURCE_REMOVE;
    }
    switch (route) {
    case APPDEP_API_ROUTE_STATUS:
        handle_status(req, srv);
        break;
    case APPDEP_API_ROUTE_VMS:
        handle_vms(req, srv);
        break;
    case APPDEP_API_ROUTE_INSPECT:
        handle_inspect(req, srv, arg);
        break;
    case APPDEP_API_ROUTE_MAP:
        handle_map(req, srv);
        break;
    case APPDEP_API_ROUTE_TRAJECTORIES:
        handle_trajectories(req, srv);
        break;
    case APPDEP_API_ROUTE_LEARN_START:
        handle_learn_start(req, srv);
        break;
    case APPDEP_API_ROUTE_LEARN_LIST:
        handle_learn_list(req, srv);
        break;
    case APPDEP_API_ROUTE_LEARN_GET:
        handle_learn_get(req, srv, arg);
        break;
    }
    return G_SOURCE_REMOVE;
}

/* ---- MHD's thread -------------------------------------------------------- */

static enum MHD_Result queue(struct MHD_Connection *conn, unsigned status,
                             const char *ctype, const char *body, size_t len)
{
    struct MHD_Response *r;
    enum MHD_Result ret;

    r = MHD_create_response_from_buffer(len, (void *)body,
                                        MHD_RESPMEM_MUST_COPY);
    if (!r) {
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    ret = MHD_queue_response(conn, status, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result queue_error(ApiRequest *req,
                                   struct MHD_Connection *conn,
                                   unsigned status, const char *text)
{
    AppdepApi *api = req->api;
    g_autoptr(GString) b = error_body(text);

    g_string_append_c(b, '\n');
    req->replied = true;
    g_mutex_lock(&api->lock);
    api->requests++;
    api->errors++;
    g_mutex_unlock(&api->lock);
    return queue(conn, status, CTYPE_JSON, b->str, b->len);
}

static enum MHD_Result collect_arg(void *opaque, enum MHD_ValueKind kind,
                                   const char *key, const char *value)
{
    ApiRequest *req = opaque;

    if (req->early_status) {
        return MHD_NO;
    }
    if (g_hash_table_size(req->query) >= APPDEP_API_MAX_QUERY_ARGS) {
        req->early_status = MHD_HTTP_BAD_REQUEST;
        req->early_error = "too many query arguments";
        return MHD_NO;
    }
    if (!value) {
        value = "";
    }
    if (strlen(key) > APPDEP_API_MAX_ARG_LEN ||
        strlen(value) > APPDEP_API_MAX_ARG_LEN) {
        req->early_status = MHD_HTTP_BAD_REQUEST;
        req->early_error = "query argument too long";
        return MHD_NO;
    }
    if (g_hash_table_contains(req->query, key)) {
        req->early_status = MHD_HTTP_BAD_REQUEST;
        req->early_error = "repeated query argument";
        return MHD_NO;
    }
    g_hash_table_insert(req->query, g_strdup(key), g_strdup(value));
    return MHD_YES;
}

/* First call for a request: check what is known before the body. */
static ApiRequest *req_new(AppdepApi *api, struct MHD_Connection *conn,
                           const char *url, const char *method)
{
    ApiRequest *req = g_new0(ApiRequest, 1);
    const char *clen;

    req->refs = 1;
    req->api = api_ref(api);
    req->body = g_string_new(NULL);
    req->query = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
                                       g_free);
    if (strcmp(method, "GET") && strcmp(method, "POST")) {
        req->early_status = MHD_HTTP_METHOD_NOT_ALLOWED;
        req->early_error = "only GET and POST are served";
        return req;
    }
    g_strlcpy(req->method, method, sizeof(req->method));
    if (strnlen(url, APPDEP_API_MAX_URL_LEN + 1) > APPDEP_API_MAX_URL_LEN) {
        req->early_status = MHD_HTTP_URI_TOO_LONG;
        req->early_error = "path too long";
        return req;
    }
    req->path = g_strdup(url);
    clen = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                       MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (clen) {
        uint64_t n;
        const char *why;

        if (appdep_api_parse_u64(clen, 0, UINT64_MAX, &n, &why) < 0 ||
            n > APPDEP_API_MAX_BODY_LEN) {
            req->early_status = MHD_HTTP_CONTENT_TOO_LARGE;
            req->early_error = "body too large";
            return req;
        }
    }
    MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, collect_arg, req);
    return req;
}

static enum MHD_Result api_access(void *cls, struct MHD_Connection *conn,
                                  const char *url, const char *method,
                                  const char *version,
                                  const char *upload_data,
                                  size_t *upload_size, void **con_cls)
{
    AppdepApi *api = cls;
    ApiRequest *req = *con_cls;
    g_autoptr(GString) reply = NULL;
    GSource *src;
    unsigned status;
    const char *ctype;

    if (!req) {
        req = req_new(api, conn, url, method);
        *con_cls = req;
        if (req->early_status) {
            return queue_error(req, conn, req->early_status,
                               req->early_error);
        }
        return MHD_YES;
    }
    if (req->replied) {
        *upload_size = 0;           /* discard the rest */
        return MHD_YES;
    }
    if (*upload_size) {
        /*
         * MHD cannot answer in the middle of an upload: drop what does
         * not fit, answer at its end, and hang up on an endless one.
         */
        if (req->overflow || !appdep_api_body_fits(req->body->len,
                                                   *upload_size)) {
            req->overflow = true;
            req->discarded += *upload_size;
            *upload_size = 0;
            return req->discarded > APPDEP_API_MAX_DISCARD ? MHD_NO
                                                            : MHD_YES;
        }
        g_string_append_len(req->body, upload_data, *upload_size);
        *upload_size = 0;
        return MHD_YES;
    }
    if (req->overflow) {
        return queue_error(req, conn, MHD_HTTP_CONTENT_TOO_LARGE,
                           "body too large");
    }
    if (!req->dispatched) {
        req->dispatched = true;
        g_mutex_lock(&api->lock);
        req->conn = conn;
        req->suspended = true;
        g_hash_table_add(api->suspended, req);
        MHD_suspend_connection(conn);
        g_mutex_unlock(&api->lock);

        /* an idle source, never a direct call: this is not the loop */
        src = g_idle_source_new();
        g_source_set_callback(src, api_dispatch, req_ref(req), req_unref);
        g_source_attach(src, api->ctx);
        g_source_unref(src);
        return MHD_YES;
    }

    /* resumed: the answer is ready */
    g_mutex_lock(&api->lock);
    status = req->status;
    ctype = req->ctype;
    reply = g_steal_pointer(&req->reply);
    g_mutex_unlock(&api->lock);
    req->replied = true;
    if (!reply) {
        return MHD_NO;
    }
    return queue(conn, status, ctype, reply->str, reply->len);
}

static void api_completed(void *cls, struct MHD_Connection *conn,
                          void **con_cls, enum MHD_RequestTerminationCode toe)
{
    AppdepApi *api = cls;
    ApiRequest *req = *con_cls;

    if (!req) {
        return;
    }
    g_mutex_lock(&api->lock);
    req->conn = NULL;
    if (req->suspended) {
        req->suspended = false;
        g_hash_table_remove(api->suspended, req);
    }
    g_mutex_unlock(&api->lock);
    req_unref(req);
    *con_cls = NULL;
}

/* ---- start / stop (main loop) ------------------------------------------ */

static int parse_listen(const char *addr, struct sockaddr_storage *ss,
                        socklen_t *sslen, bool *v6, uint16_t *port)
{
    g_autofree char *host = NULL;
    g_autoptr(GInetAddress) ia = NULL;
    g_autoptr(GSocketAddress) sa = NULL;
    const char *colon = strrchr(addr, ':'), *why;
    uint64_t p;

    if (!colon || colon == addr ||
        appdep_api_parse_u64(colon + 1, 0, 65535, &p, &why) < 0) {
        return -EINVAL;
    }
    host = g_strndup(addr, colon - addr);
    if (host[0] == '[' && host[strlen(host) - 1] == ']') {
        memmove(host, host + 1, strlen(host) - 2);
        host[strlen(host) - 2] = '\0';
    }
    ia = g_inet_address_new_from_string(host);
    if (!ia) {
        return -EINVAL;
    }
    sa = g_inet_socket_address_new(ia, p);
    *sslen = g_socket_address_get_native_size(sa);
    if (!g_socket_address_to_native(sa, ss, sizeof(*ss), NULL)) {
        return -EINVAL;
    }
    *v6 = g_inet_address_get_family(ia) == G_SOCKET_FAMILY_IPV6;
    *port = p;
    return 0;
}

int appdep_api_start(AppdepServer *srv, const char *addr, GError **errp)
{
    struct sockaddr_storage ss;
    const union MHD_DaemonInfo *info;
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL |
                     MHD_ALLOW_SUSPEND_RESUME;
    socklen_t sslen;
    uint16_t port;
    AppdepApi *api;
    bool v6;
    int err;

    if (srv->api) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_EXISTS,
                    "the HTTP API is running already");
        return -EBUSY;
    }
    if (parse_listen(addr, &ss, &sslen, &v6, &port) < 0) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                    "bad HTTP address '%s': want IP:PORT or [IPV6]:PORT",
                    addr);
        return -EINVAL;
    }
    if (v6) {
        flags |= MHD_USE_IPv6;
    }
    api = g_new0(AppdepApi, 1);
    api->refs = 1;
    g_mutex_init(&api->lock);
    g_cond_init(&api->idle);
    api->suspended = g_hash_table_new(NULL, NULL);
    api->srv = srv;
    api->ctx = g_main_context_ref_thread_default();
    errno = 0;
    api->daemon = MHD_start_daemon(flags, port, NULL, NULL, api_access, api,
                                  MHD_OPTION_SOCK_ADDR, &ss,
                                  MHD_OPTION_CONNECTION_LIMIT,
                                  (unsigned)APPDEP_API_MAX_CONNECTIONS,
                                  MHD_OPTION_CONNECTION_TIMEOUT,
                                  (unsigned)APPDEP_API_CONN_TIMEOUT_S,
                                  MHD_OPTION_CONNECTION_MEMORY_LIMIT,
                                  (size_t)APPDEP_API_CONN_MEMORY,
                                  MHD_OPTION_NOTIFY_COMPLETED, api_completed,
                                  api,
                                  MHD_OPTION_END);
    if (!api->daemon) {
        err = errno ? errno : EIO;
        g_main_context_unref(api->ctx);
        api_unref(api);
        g_set_error(errp, G_IO_ERROR, g_io_error_from_errno(err),
                    "cannot serve HTTP on %s: %s", addr, g_strerror(err));
        return -err;
    }
    info = MHD_get_daemon_info(api->daemon, MHD_DAEMON_INFO_BIND_PORT);
    api->port = info ? info->port : port;
    srv->api = api;
    return 0;
}

uint16_t appdep_api_port(AppdepServer *srv)
{
    return srv->api ? srv->api->port : 0;
}

void appdep_api_stop(AppdepServer *srv)
{
    AppdepApi *api = srv->api;
    GHashTableIter it;
    gpointer key;

    if (!api) {
        return;
    }
    /* MHD must not be stopped with suspended connections: answer them */
    g_mutex_lock(&api->lock);
    g_hash_table_iter_init(&it, api->suspended);
    while (g_hash_table_iter_next(&it, &key, NULL)) {
        ApiRequest *req = key;

        if (!req->done) {
            req->done = true;
            req->status = MHD_HTTP_SERVICE_UNAVAILABLE;
            req->ctype = CTYPE_JSON;
            req->reply = error_body("the server is shutting down");
        }
        req->suspended = false;
        if (req->conn) {
            MHD_resume_connection(req->conn);
        }
        g_hash_table_iter_remove(&it);
    }
    /* query threads read the store, which main.c closes next */
    while (api->workers) {
        g_cond_wait(&api->idle, &api->lock);
    }
    g_mutex_unlock(&api->lock);

    MHD_stop_daemon(api->daemon);
    api->daemon = NULL;
    appdep_learn_shutdown(srv);
    g_main_context_unref(api->ctx);
    api->ctx = NULL;
    api->srv = NULL;
    srv->api = NULL;
    api_unref(api);         /* requests still referenced keep it */
}
