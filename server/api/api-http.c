/*
 * appdep server: the HTTP JSON API (docs/api.md), on libmicrohttpd:
 * request lifetime, MHD's callbacks, start and stop.  The only file
 * that knows MHD; the handlers are in api-handlers.c.
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
#include "api-int.h"
#include "learn.h"
#include "render.h"

/* ---- requests ---------------------------------------------------------- */

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

ApiRequest *api_req_ref(ApiRequest *req)
{
    g_atomic_int_inc(&req->refs);
    return req;
}

void api_req_unref(gpointer p)
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
void api_reply(ApiRequest *req, unsigned status, const char *ctype,
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

void api_reply_json(ApiRequest *req, unsigned status, GString *body)
{
    g_string_append_c(body, '\n');
    api_reply(req, status, CTYPE_JSON, body);
}

GString *api_error_body(const char *text)
{
    GString *b = g_string_new(NULL);

    appdep_render_error(b, text);
    return b;
}

void api_error(ApiRequest *req, unsigned status, const char *fmt, ...)
{
    g_autofree char *text = NULL;
    va_list ap;

    va_start(ap, fmt);
    text = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    api_reply_json(req, status, api_error_body(text));
}

bool api_is_done(ApiRequest *req)
{
    AppdepApi *api = req->api;
    bool done;

    g_mutex_lock(&api->lock);
    done = req->done;
    g_mutex_unlock(&api->lock);
    return done;
}

/* Only the NULL-terminated @allowed query keys are accepted. */
bool api_query_check(ApiRequest *req, const char *const *allowed)
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

const char *api_query_get(ApiRequest *req, const char *key)
{
    return g_hash_table_lookup(req->query, key);
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
    g_autoptr(GString) b = api_error_body(text);

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
        g_source_set_callback(src, api_dispatch, api_req_ref(req),
                              api_req_unref);
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
    api_req_unref(req);
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
            req->reply = api_error_body("the server is shutting down");
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

