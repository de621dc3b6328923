/*
 * appdep server: the HTTP API's handlers, on the main loop: status,
 * inventory, inspect, map and trajectory queries (run in a worker
 * thread), learning.  api-http.c hands them the collected request;
 * render.c writes the answers.
 *
 * Copyright (c) 2026 appdep authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include <errno.h>
#include <string.h>
#include "api-int.h"
#include "learn.h"
#include "query.h"
#include "render.h"
#include "trajectory.h"

/* ---- handlers (main loop) ----------------------------------------------- */

static void handle_status(ApiRequest *req, AppdepServer *srv)
{
    static const char *const allowed[] = { NULL };
    AppdepApi *api = req->api;
    AppdepServerStatus st = { .time_ns = appdep_now_ns() };
    GString *b;

    if (!api_query_check(req, allowed)) {
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
    api_reply_json(req, API_HTTP_OK, b);
}

static void handle_vms(ApiRequest *req, AppdepServer *srv)
{
    static const char *const allowed[] = { NULL };
    GString *b;

    if (!api_query_check(req, allowed)) {
        return;
    }
    b = g_string_new(NULL);
    appdep_render_vms(b, srv);
    api_reply_json(req, API_HTTP_OK, b);
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
    api_reply_json(op->req, status == 0 ? API_HTTP_OK :
                   status == -ETIMEDOUT ? API_HTTP_GATEWAY_TIMEOUT
                                        : API_HTTP_BAD_GATEWAY, b);
    api_req_unref(op->req);
    g_free(op);
}

static gboolean inspect_timeout(gpointer opaque)
{
    ApiInspect *op = opaque;

    /* op stays until the daemon answers or its connection goes */
    op->timer = 0;
    api_error(op->req, API_HTTP_GATEWAY_TIMEOUT,
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

    if (!api_query_check(req, allowed)) {
        return;
    }
    if (!appdep_vm_name_ok(vm)) {
        api_error(req, API_HTTP_BAD_REQUEST,
                  "bad VM name: 1 to 64 printable bytes, no '/'");
        return;
    }
    if (appdep_api_parse_inspect(req->body->str, req->body->len, &enable,
                                 &why) < 0) {
        api_error(req, API_HTTP_BAD_REQUEST, "%s", why);
        return;
    }
    if (!srv->vms || !g_hash_table_lookup(srv->vms, vm)) {
        api_error(req, API_HTTP_NOT_FOUND, "no such VM: '%s'", vm);
        return;
    }
    op = g_new0(ApiInspect, 1);
    op->req = api_req_ref(req);
    g_strlcpy(op->vm, vm, sizeof(op->vm));
    op->enable = enable;
    ret = srv->inventory->inspect(srv->inventory_opaque, vm, enable,
                                  inspect_done, op);
    if (ret < 0) {
        api_req_unref(op->req);
        g_free(op);
        if (ret == -ENOENT) {
            api_error(req, API_HTTP_NOT_FOUND, "VM '%s' is not reported by "
                      "any connected forward daemon", vm);
        } else {
            api_error(req, API_HTTP_BAD_GATEWAY, "cannot send the command "
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
        q->status = API_HTTP_INTERNAL_SERVER_ERROR;
        q->out = api_error_body(appdep_store_strerror(ret));
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
    q->status = API_HTTP_OK;
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
        q->status = API_HTTP_INTERNAL_SERVER_ERROR;
        q->out = api_error_body(appdep_store_strerror(ret));
        return;
    }
    q->status = API_HTTP_OK;
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
    api_req_unref(req);
}

static void query_start(ApiRequest *req, ApiQuery *q)
{
    AppdepApi *api = req->api;
    g_autoptr(GTask) task = g_task_new(NULL, NULL, query_done,
                                       api_req_ref(req));

    g_mutex_lock(&api->lock);
    api->workers++;
    g_mutex_unlock(&api->lock);
    g_task_set_task_data(task, q, query_free);
    g_task_run_in_thread(task, query_thread);
}

static bool parse_format(ApiRequest *req, ApiQuery *q, bool dot_ok)
{
    const char *f = api_query_get(req, "format");

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
    api_error(req, API_HTTP_BAD_REQUEST, "bad 'format': want json%s or text",
              dot_ok ? ", dot" : "");
    return false;
}

static ApiQuery *query_new(ApiRequest *req, AppdepServer *srv)
{
    g_autofree ApiQuery *q = g_new0(ApiQuery, 1);
    const char *why;

    if (!srv->store) {
        api_error(req, API_HTTP_SERVICE_UNAVAILABLE, "no store");
        return NULL;
    }
    q->api = req->api;
    q->store = srv->store;
    if (appdep_api_parse_window(api_query_get(req, "from"),
                                api_query_get(req, "to"),
                                api_query_get(req, "last"), appdep_now_ns(),
                                &q->t0, &q->t1, &why) < 0) {
        api_error(req, API_HTTP_BAD_REQUEST, "%s", why);
        return NULL;
    }
    return g_steal_pointer(&q);
}

static void handle_map(ApiRequest *req, AppdepServer *srv)
{
    static const char *const allowed[] = { "from", "to", "last", "format",
                                           NULL };
    g_autofree ApiQuery *q = NULL;

    if (!api_query_check(req, allowed)) {
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
    const char *app = api_query_get(req, "app"), *limit, *margin, *why;
    uint64_t margin_s = APPDEP_API_TRAJ_MARGIN_S;

    if (!api_query_check(req, allowed)) {
        return;
    }
    if (!app) {
        api_error(req, API_HTTP_BAD_REQUEST,
                  "missing 'app': want app=VM[/PROGRAM][:PORT]");
        return;
    }
    q = query_new(req, srv);
    if (!q || !parse_format(req, q, false)) {
        return;
    }
    if (appdep_appspec_parse(app, &q->app, &why) < 0) {
        api_error(req, API_HTTP_BAD_REQUEST, "%s", why);
        return;
    }
    q->trajectories = true;
    q->limit = APPDEP_API_DEFAULT_TRAJ_LIMIT;
    limit = api_query_get(req, "limit");
    if (limit && appdep_api_parse_u64(limit, 1, APPDEP_API_MAX_TRAJ_LIMIT,
                                      &q->limit, &why) < 0) {
        api_error(req, API_HTTP_BAD_REQUEST, "bad 'limit': %s (1..%d)", why,
                  APPDEP_API_MAX_TRAJ_LIMIT);
        return;
    }
    margin = api_query_get(req, "margin_s");
    if (margin && appdep_api_parse_u64(margin, 0, APPDEP_API_TRAJ_MAX_MARGIN_S,
                                       &margin_s, &why) < 0) {
        api_error(req, API_HTTP_BAD_REQUEST, "bad 'margin_s': %s (0..%d)",
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

    if (!api_query_check(req, allowed)) {
        return;
    }
    if (appdep_api_parse_learn(req->body->str, req->body->len, &app,
                               &window_s, &why) < 0) {
        api_error(req, API_HTTP_BAD_REQUEST, "%s", why);
        return;
    }
    ret = appdep_learn_start(srv, &app, window_s, &id);
    if (ret == -ENOENT) {
        api_error(req, API_HTTP_NOT_FOUND, "no such VM: '%s'", app.vm);
        return;
    } else if (ret == -EBUSY) {
        api_error(req, API_HTTP_TOO_MANY_REQUESTS, "%d learning sessions "
                  "are running already", APPDEP_LEARN_MAX_RUNNING);
        return;
    } else if (ret < 0) {
        api_error(req, API_HTTP_BAD_REQUEST, "cannot start learning: %s",
                  g_strerror(-ret));
        return;
    }
    b = g_string_new(NULL);
    appdep_render_learn_started(b, id);
    api_reply_json(req, API_HTTP_ACCEPTED, b);
}

static void handle_learn_get(ApiRequest *req, AppdepServer *srv,
                             const char *arg)
{
    static const char *const allowed[] = { NULL };
    AppdepLearnStatus st;
    const char *why;
    uint64_t id;
    GString *b;

    if (!api_query_check(req, allowed)) {
        return;
    }
    if (appdep_api_parse_u64(arg, 1, UINT64_MAX, &id, &why) < 0) {
        api_error(req, API_HTTP_BAD_REQUEST, "bad learning id: %s", why);
        return;
    }
    if (appdep_learn_status(srv, id, &st) < 0) {
        api_error(req, API_HTTP_NOT_FOUND, "no learning session %"
                  G_GUINT64_FORMAT, id);
        return;
    }
    b = g_string_new(NULL);
    appdep_render_learn(b, &st);
    api_reply_json(req, API_HTTP_OK, b);
}

static void handle_learn_list(ApiRequest *req, AppdepServer *srv)
{
    static const char *const allowed[] = { NULL };
    g_autoptr(GArray) list = NULL;
    GString *b;

    if (!api_query_check(req, allowed)) {
        return;
    }
    list = appdep_learn_list(srv);
    b = g_string_new(NULL);
    appdep_render_learn_list(b, list);
    api_reply_json(req, API_HTTP_OK, b);
}

/* Main loop: act on one collected request. */
gboolean api_dispatch(gpointer opaque)
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
        api_error(req, API_HTTP_METHOD_NOT_ALLOWED,
                  "method not allowed on this resource");
        return G_SOURCE_REMOVE;
    } else if (ret < 0) {
        api_error(req, API_HTTP_NOT_FOUND, "no such resource");
        return G_SOURCE_REMOVE;
    }
    if (req->body->len && route != APPDEP_API_ROUTE_INSPECT &&
        route != APPDEP_API_ROUTE_LEARN_START) {
        api_error(req, API_HTTP_BAD_REQUEST, "this request takes no body");
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

