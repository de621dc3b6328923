/*
 * appdep-fwd: a minimal asynchronous QMP client over a unix socket.
 *
 * Copyright (c) 2026 appdep authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include <errno.h>
#include <fcntl.h>
#include <glib-unix.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include "qmp.h"

#define QMP_CAPS_ID         0

enum QmpState {
    QMP_DOWN,
    QMP_GREETING,           /* connected, waiting for {"QMP": ...} */
    QMP_NEGOTIATING,        /* qmp_capabilities sent */
    QMP_READY,
};

typedef struct QmpCmd {
    char *line;             /* the request, newline-terminated */
    gint64 id;
    AppdepQmpReplyFn reply;
    void *opaque;
} QmpCmd;

struct AppdepQmp {
    char *path;
    AppdepQmpEventFn event;
    AppdepQmpStateFn state_fn;
    void *opaque;

    enum QmpState state;
    int fd;
    guint in_watch;
    guint out_watch;
    guint deadline;         /* timeout of the current exchange */
    guint retry;            /* reconnect timer */
    unsigned backoff_ms;
    GString *rbuf;
    GString *wbuf;
    GQueue pending;         /* QmpCmd not sent yet */
    QmpCmd *inflight;
    gint64 next_id;
};

static void qmp_flush(AppdepQmp *q);
static int qmp_connect(AppdepQmp *q);

static void qmp_cmd_free(QmpCmd *c)
{
    if (c) {
        g_free(c->line);
        g_free(c);
    }
}

static void qmp_cmd_finish(QmpCmd *c, int status, const char *error,
                           JsonNode *ret)
{
    c->reply(status, error, ret, c->opaque);
    qmp_cmd_free(c);
}

static void qmp_fail_all(AppdepQmp *q, int status, const char *why)
{
    QmpCmd *c;

    if (q->inflight) {
        c = g_steal_pointer(&q->inflight);
        qmp_cmd_finish(c, status, why, NULL);
    }
    while ((c = g_queue_pop_head(&q->pending))) {
        qmp_cmd_finish(c, status, why, NULL);
    }
}

static void clear_source(guint *id)
{
    if (*id) {
        g_source_remove(*id);
        *id = 0;
    }
}

static gboolean qmp_retry_cb(gpointer opaque)
{
    AppdepQmp *q = opaque;
    int ret;

    q->retry = 0;
    ret = qmp_connect(q);
    if (ret < 0) {
        g_autofree char *why = g_strdup_printf("QMP socket %s: %s", q->path,
                                               g_strerror(-ret));

        q->backoff_ms = MIN(q->backoff_ms * 2, APPDEP_QMP_BACKOFF_MAX_MS);
        q->retry = g_timeout_add(q->backoff_ms, qmp_retry_cb, q);
        q->state_fn(false, ret, why, q->opaque);
    }
    return G_SOURCE_REMOVE;
}

/* Close the connection, fail what is pending, schedule a reconnect. */
static void qmp_drop(AppdepQmp *q, int status, const char *why)
{
    bool was_up = q->state != QMP_DOWN;

    clear_source(&q->in_watch);
    clear_source(&q->out_watch);
    clear_source(&q->deadline);
    if (q->fd >= 0) {
        close(q->fd);
        q->fd = -1;
    }
    q->state = QMP_DOWN;
    g_string_truncate(q->rbuf, 0);
    g_string_truncate(q->wbuf, 0);
    qmp_fail_all(q, status, why);
    if (!q->retry) {
        q->retry = g_timeout_add(q->backoff_ms, qmp_retry_cb, q);
    }
    if (was_up || status != -ECANCELED) {
        q->state_fn(false, status, why, q->opaque);
    }
}

static gboolean qmp_deadline_cb(gpointer opaque)
{
    AppdepQmp *q = opaque;
    g_autofree char *why = g_strdup_printf("no reply from QEMU within %d ms",
                                           APPDEP_QMP_TIMEOUT_MS);

    q->deadline = 0;
    qmp_drop(q, -ETIMEDOUT, why);
    return G_SOURCE_REMOVE;
}

static void qmp_arm_deadline(AppdepQmp *q)
{
    clear_source(&q->deadline);
    q->deadline = g_timeout_add(APPDEP_QMP_TIMEOUT_MS, qmp_deadline_cb, q);
}

/* Send the next queued command if nothing is in flight. */
static void qmp_kick(AppdepQmp *q)
{
    if (q->state != QMP_READY || q->inflight ||
        g_queue_is_empty(&q->pending)) {
        return;
    }
    q->inflight = g_queue_pop_head(&q->pending);
    g_string_append(q->wbuf, q->inflight->line);
    qmp_arm_deadline(q);
    qmp_flush(q);
}

static gboolean qmp_out_cb(gint fd, GIOCondition cond, gpointer opaque)
{
    AppdepQmp *q = opaque;

    q->out_watch = 0;
    qmp_flush(q);
    return G_SOURCE_REMOVE;
}

static void qmp_flush(AppdepQmp *q)
{
    while (q->wbuf->len) {
        ssize_t r = send(q->fd, q->wbuf->str, q->wbuf->len, MSG_NOSIGNAL);

        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r < 0 && errno == EAGAIN) {
            if (!q->out_watch) {
                q->out_watch = g_unix_fd_add(q->fd, G_IO_OUT, qmp_out_cb, q);
            }
            return;
        }
        if (r < 0) {
            int err = errno;
            g_autofree char *why = g_strdup_printf("QMP socket %s: %s",
                                                   q->path, g_strerror(err));

            qmp_drop(q, -err, why);
            return;
        }
        g_string_erase(q->wbuf, 0, r);
    }
}

/* Integer "id" of a reply, or -1. */
static gint64 reply_id(JsonObject *o)
{
    JsonNode *n = json_object_get_member(o, "id");

    if (!n || JSON_NODE_TYPE(n) != JSON_NODE_VALUE ||
        json_node_get_value_type(n) != G_TYPE_INT64) {
        return -1;
    }
    return json_node_get_int(n);
}

/* Text of an "error" member, bounded, or a fixed string. */
static const char *error_desc(JsonObject *o)
{
    JsonObject *e = json_object_get_object_member(o, "error");
    JsonNode *d = e ? json_object_get_member(e, "desc") : NULL;

    if (!d || JSON_NODE_TYPE(d) != JSON_NODE_VALUE ||
        json_node_get_value_type(d) != G_TYPE_STRING) {
        return "QEMU returned an error without a description";
    }
    return json_node_get_string(d);
}

/* Handle one complete line; false if the connection was dropped. */
static bool qmp_handle_line(AppdepQmp *q, const char *line, size_t len)
{
    g_autoptr(JsonParser) parser = json_parser_new();
    JsonObject *o;
    JsonNode *root;

    if (!len) {
        return true;
    }
    if (!json_parser_load_from_data(parser, line, len, NULL) ||
        !(root = json_parser_get_root(parser)) ||
        JSON_NODE_TYPE(root) != JSON_NODE_OBJECT) {
        qmp_drop(q, -EPROTO, "QEMU sent a line that is not a JSON object");
        return false;
    }
    o = json_node_get_object(root);
    switch (q->state) {
    case QMP_GREETING:
        /*
         * QEMU may write an event to a client that connected before the
         * monitor handled the open and sent its greeting: skip it.
         */
        if (json_object_has_member(o, "event")) {
            break;
        }
        if (!json_object_has_member(o, "QMP")) {
            qmp_drop(q, -EPROTO, "QMP greeting expected");
            return false;
        }
        g_string_append_printf(q->wbuf, "{\"execute\": \"qmp_capabilities\", "
                               "\"id\": %d}\n", QMP_CAPS_ID);
        q->state = QMP_NEGOTIATING;
        qmp_arm_deadline(q);
        qmp_flush(q);
        return q->state != QMP_DOWN;
    case QMP_NEGOTIATING:
        if (json_object_has_member(o, "event")) {
            break;
        }
        if (reply_id(o) != QMP_CAPS_ID || !json_object_has_member(o, "return")) {
            g_autofree char *why = g_strdup_printf("qmp_capabilities: %s",
                                                   error_desc(o));

            qmp_drop(q, -EPROTO, why);
            return false;
        }
        clear_source(&q->deadline);
        q->state = QMP_READY;
        q->backoff_ms = APPDEP_QMP_BACKOFF_MIN_MS;
        q->state_fn(true, 0, NULL, q->opaque);
        qmp_kick(q);
        return q->state != QMP_DOWN;
    case QMP_READY:
        break;
    case QMP_DOWN:
        return false;
    }
    if (json_object_has_member(o, "event")) {
        JsonNode *ev = json_object_get_member(o, "event");
        JsonNode *data = json_object_get_member(o, "data");

        if (JSON_NODE_TYPE(ev) == JSON_NODE_VALUE &&
            json_node_get_value_type(ev) == G_TYPE_STRING) {
            q->event(json_node_get_string(ev),
                     data && JSON_NODE_TYPE(data) == JSON_NODE_OBJECT ?
                     json_node_get_object(data) : NULL, q->opaque);
        }
        return q->state != QMP_DOWN;
    }
    if (q->inflight && reply_id(o) == q->inflight->id) {
        QmpCmd *c = g_steal_pointer(&q->inflight);

        clear_source(&q->deadline);
        if (json_object_has_member(o, "return")) {
            qmp_cmd_finish(c, 0, NULL, json_object_get_member(o, "return"));
        } else {
            qmp_cmd_finish(c, -EIO, error_desc(o), NULL);
        }
        qmp_kick(q);
    }
    /* replies nobody waits for (after a timeout) are ignored */
    return q->state != QMP_DOWN;
}

static gboolean qmp_in_cb(gint fd, GIOCondition cond, gpointer opaque)
{
    AppdepQmp *q = opaque;
    char buf[APPDEP_QMP_READ_CHUNK];
    ssize_t r;
    char *nl;

    r = recv(q->fd, buf, sizeof(buf), 0);
    if (r < 0 && (errno == EINTR || errno == EAGAIN)) {
        return G_SOURCE_CONTINUE;
    }
    if (r <= 0) {
        int err = r ? errno : ECONNRESET;
        g_autofree char *why = g_strdup_printf("QMP socket %s: %s", q->path,
                                               r ? g_strerror(err) :
                                               "QEMU closed the connection");

        q->in_watch = 0;
        qmp_drop(q, -err, why);
        return G_SOURCE_REMOVE;
    }
    g_string_append_len(q->rbuf, buf, r);
    while ((nl = memchr(q->rbuf->str, '\n', q->rbuf->len))) {
        size_t len = nl - q->rbuf->str;
        g_autofree char *line = g_strndup(q->rbuf->str, len);

        g_string_erase(q->rbuf, 0, len + 1);
        if (!qmp_handle_line(q, line, len)) {
            /* qmp_drop removed this watch */
            q->in_watch = 0;
            return G_SOURCE_REMOVE;
        }
    }
    if (q->rbuf->len > APPDEP_QMP_MAX_LINE) {
        q->in_watch = 0;
        qmp_drop(q, -EMSGSIZE, "QEMU sent an oversized QMP line");
        return G_SOURCE_REMOVE;
    }
    return G_SOURCE_CONTINUE;
}

static int qmp_connect(AppdepQmp *q)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    int fd;

    if (strlen(q->path) >= sizeof(sa.sun_path)) {
        return -ENAMETOOLONG;
    }
    strcpy(sa.sun_path, q->path);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return -errno;
    }
    /* a unix connect completes at once or fails (EAGAIN: backlog full) */
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        int err = errno;

        close(fd);
        return -err;
    }
    clear_source(&q->retry);
    q->fd = fd;
    q->state = QMP_GREETING;
    q->in_watch = g_unix_fd_add(fd, G_IO_IN | G_IO_HUP | G_IO_ERR,
                                qmp_in_cb, q);
    qmp_arm_deadline(q);
    return 0;
}

AppdepQmp *appdep_qmp_new(const char *path, AppdepQmpEventFn event,
                          AppdepQmpStateFn state, void *opaque)
{
    AppdepQmp *q = g_new0(AppdepQmp, 1);

    q->path = g_strdup(path);
    q->event = event;
    q->state_fn = state;
    q->opaque = opaque;
    q->fd = -1;
    q->rbuf = g_string_new(NULL);
    q->wbuf = g_string_new(NULL);
    q->backoff_ms = APPDEP_QMP_BACKOFF_MIN_MS;
    q->next_id = QMP_CAPS_ID + 1;
    g_queue_init(&q->pending);
    q->retry = g_idle_add(qmp_retry_cb, q);
    return q;
}

void appdep_qmp_free(AppdepQmp *q)
{
    if (!q) {
        return;
    }
    clear_source(&q->in_watch);
    clear_source(&q->out_watch);
    clear_source(&q->deadline);
    clear_source(&q->retry);
    if (q->fd >= 0) {
        close(q->fd);
    }
    qmp_fail_all(q, -ECANCELED, "shutting down");
    g_string_free(q->rbuf, TRUE);
    g_string_free(q->wbuf, TRUE);
    g_free(q->path);
    g_free(q);
}

bool appdep_qmp_ready(AppdepQmp *q)
{
    return q->state == QMP_READY;
}

void appdep_qmp_execute(AppdepQmp *q, const char *command, JsonObject *args,
                        AppdepQmpReplyFn reply, void *opaque)
{
    g_autoptr(JsonNode) node = json_node_new(JSON_NODE_OBJECT);
    JsonObject *o = json_object_new();
    g_autofree char *text = NULL;
    QmpCmd *c;
    int ret;

    if (g_queue_get_length(&q->pending) >= APPDEP_QMP_MAX_PENDING) {
        if (args) {
            json_object_unref(args);
        }
        json_object_unref(o);
        reply(-EBUSY, "too many QMP commands queued", NULL, opaque);
        return;
    }
    c = g_new0(QmpCmd, 1);
    c->id = q->next_id++;
    c->reply = reply;
    c->opaque = opaque;
    json_object_set_string_member(o, "execute", command);
    if (args) {
        json_object_set_object_member(o, "arguments", args);
    }
    json_object_set_int_member(o, "id", c->id);
    json_node_take_object(node, o);
    text = json_to_string(node, FALSE);
    c->line = g_strconcat(text, "\n", NULL);
    g_queue_push_tail(&q->pending, c);

    if (q->state == QMP_DOWN) {
        ret = qmp_connect(q);
        if (ret < 0) {
            g_autofree char *why = g_strdup_printf("QMP socket %s: %s",
                                                   q->path, g_strerror(-ret));

            qmp_fail_all(q, ret, why);
            return;
        }
    }
    qmp_kick(q);
}
