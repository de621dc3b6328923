/*
 * appdep-fwd: the forward daemon, one per physical host.
 *
 *   appdep-fwd --config FILE
 *
 * It listens on one unix socket per VM for QEMU's record stream, batches
 * the records into BATCH frames and ships them to the APM server over
 * TCP; it executes the server's COMMAND frames against the VMs' QMP
 * sockets and tracks their inspection state for the HELLO inventory.
 *
 * Batches.  Numbers increase by one per batch that is kept (memory or
 * spool) for the whole life of the spool directory, across restarts (a
 * restart may skip up to APPDEP_SPOOL_BATCH_RESERVE numbers).  A batch
 * stays in the daemon's hands until an ACK covers it (ACK n: every batch
 * <= n is committed).  After a reconnect every unacknowledged batch is
 * sent again, in order, with its old number, before anything newer: the
 * server may see a batch twice, always under the same number, and drops
 * any batch whose number is <= the highest it committed for this host.
 *
 * Where a new batch goes: to the in-memory queue when connected, when
 * nothing spooled is waiting and when the queue is under queue-max-bytes;
 * otherwise appended to the spool (monitor/fwd/spool.h); when the spool is
 * full it is dropped and its records counted.  The queue is refilled
 * from the spool, oldest first, as ACKs free it, so the order on the
 * wire is the batch order.  Records are read from QEMU at any rate:
 * memory stays bounded by queue-max-bytes, one open batch and fixed
 * per-connection buffers.
 *
 * On SIGTERM/SIGINT the daemon stops reading records, closes the open
 * batch, waits up to APPDEP_FWD_EXIT_WAIT_MS for the server's ACKs, then
 * writes every unacknowledged batch that is only in memory to the spool
 * so the next start replays it.  SIGUSR1 logs a status line.
 *
 * Copyright (c) 2026 appdep authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include <errno.h>
#include <gio/gio.h>
#include <glib-unix.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include "frame.h"
#include "fwd-limits.h"
#include "qmp.h"
#include "spool.h"
#include "stream.h"

#define FWD_NAME                    "appdep-fwd"

#define fwd_log(fmt, ...) \
    fprintf(stderr, FWD_NAME ": " fmt "\n", ## __VA_ARGS__)

typedef struct Fwd Fwd;

typedef struct FwdBatch {
    uint64_t batch;
    uint32_t count;
    bool on_disk;               /* also in a spool file */
    size_t len;
    uint8_t *frame;
} FwdBatch;

typedef struct FwdVm {
    Fwd *fwd;
    char *name;
    char *qmp_path;
    char *rec_path;
    AppdepFrameVm inv;          /* inventory entry, sent in HELLO */
    GSocket *listener;
    GSource *listen_src;
    GPtrArray *clients;         /* FwdClient */
    AppdepQmp *qmp;
    char *qmp_last_why;         /* last QMP failure logged */
} FwdVm;

typedef struct FwdClient {
    FwdVm *vm;
    GSocket *sock;
    GSource *src;
    uint8_t *buf;
    size_t have;
    uint64_t offset;            /* stream offset of buf[0] */
    unsigned garbage_logged;
} FwdClient;

typedef struct FwdCmd {
    Fwd *fwd;
    unsigned gen;               /* server connection it came on */
    uint64_t id;
    uint8_t op;
    FwdVm *vm;
} FwdCmd;

struct Fwd {
    /* configuration */
    char *config_path;
    char *server;
    char *host;
    char *spool_dir;
    uint64_t spool_max;
    uint64_t queue_max;
    uint32_t batch_records;
    uint32_t batch_ms;
    uint32_t status_s;
    GPtrArray *vms;             /* FwdVm */

    GMainLoop *loop;
    AppdepSpool *spool;
    uint64_t next_batch;

    /* the batch being filled */
    uint8_t *open;
    uint32_t open_count;
    guint batch_timer;

    /* unacknowledged batches in memory, oldest first */
    GQueue queue;
    uint64_t queue_bytes;
    GList *unsent;              /* first link not sent on this connection */

    /* server connection */
    GSocketClient *client;
    GCancellable *connecting;
    GSocketConnection *conn;
    GSocket *sock;
    GSource *in_src;
    GSource *out_src;
    guint reconnect;
    unsigned backoff_ms;
    unsigned gen;               /* bumped per connection */
    uint8_t rbuf[APPDEP_FWD_SERVER_RBUF];
    size_t rlen;
    uint64_t rx_offset;         /* bytes received on this connection */
    GQueue ctrl;                /* GBytes: HELLO and RESULT frames */
    GBytes *wctrl;              /* control frame being written */
    FwdBatch *wbatch;           /* batch being written */
    const uint8_t *wptr;
    size_t wlen;
    size_t woff;
    uint64_t last_sent;         /* highest batch fully written */
    gint64 last_progress;       /* monotonic us: connect or ACK */
    bool was_connected;
    char *last_connect_err;

    bool exiting;
    guint exit_timer;
    guint tick;
    gint64 next_status;

    /* counters, for the status line */
    uint64_t records_in;
    uint64_t records_acked;
    uint64_t records_spooled;
    uint64_t records_dropped;
    uint64_t batches_dropped;
    uint64_t batches_sent;
    uint64_t garbage_events;
    uint64_t garbage_bytes;
    uint64_t commands;
    bool spooling;              /* "spooling" logged since the last drain */
    bool dropping;              /* "dropping" logged since the last success */
};

static void fwd_pump(Fwd *f);
static void fwd_server_drop(Fwd *f, const char *fmt, ...) G_GNUC_PRINTF(2, 3);
static void fwd_refill(Fwd *f);

/* ---- small helpers ---------------------------------------------------- */

static void source_destroy(GSource **src)
{
    if (*src) {
        g_source_destroy(*src);
        g_source_unref(*src);
        *src = NULL;
    }
}

static void clear_timer(guint *id)
{
    if (*id) {
        g_source_remove(*id);
        *id = 0;
    }
}

static void fwd_batch_free(FwdBatch *b)
{
    if (b) {
        g_free(b->frame);
        g_free(b);
    }
}

/* Printable, bounded copy of untrusted text for the log. */
static char *escape_text(const char *s)
{
    GString *out = g_string_new(NULL);

    for (; *s && out->len < APPDEP_FRAME_MSG_LEN; s++) {
        unsigned char c = *s;

        if (c < 0x20 || c >= 0x7f || c == '\\') {
            g_string_append_printf(out, "\\x%02x", c);
        } else {
            g_string_append_c(out, c);
        }
    }
    return g_string_free(out, FALSE);
}

static bool fwd_connected(Fwd *f)
{
    return f->sock != NULL;
}

static void fwd_status(Fwd *f, const char *why)
{
    uint64_t unsent = 0;
    GList *l;

    for (l = f->unsent; l; l = l->next) {
        unsent++;
    }
    fwd_log("status (%s): server=%s next-batch=%" PRIu64 " queue=%u batches/"
            "%" PRIu64 " bytes unsent=%" PRIu64 " spool=%u files/%" PRIu64
            " of %" PRIu64 " bytes records: in=%" PRIu64 " acked=%" PRIu64
            " spooled=%" PRIu64 " dropped=%" PRIu64 " (batches %" PRIu64
            ") garbage=%" PRIu64 " events/%" PRIu64 " bytes commands=%"
            PRIu64, why, fwd_connected(f) ? "up" : "down", f->next_batch,
            f->queue.length, f->queue_bytes, unsent,
            appdep_spool_files(f->spool), appdep_spool_bytes(f->spool),
            f->spool_max, f->records_in, f->records_acked, f->records_spooled,
            f->records_dropped, f->batches_dropped, f->garbage_events,
            f->garbage_bytes, f->commands);
}

/* ---- control frames to the server ------------------------------------ */

static void fwd_push_ctrl(Fwd *f, const uint8_t *frame, size_t len)
{
    if (!fwd_connected(f)) {
        return;
    }
    if (f->ctrl.length >= APPDEP_FWD_MAX_CTRL) {
        fwd_server_drop(f, "server does not read its control frames");
        return;
    }
    g_queue_push_tail(&f->ctrl, g_bytes_new(frame, len));
    fwd_pump(f);
}

static void fwd_send_hello(Fwd *f)
{
    g_autofree AppdepFrameHello *h = g_new0(AppdepFrameHello, 1);
    g_autofree uint8_t *buf = NULL;
    guint i;
    int len;

    g_strlcpy(h->host, f->host, sizeof(h->host));
    h->protocol = APPDEP_FRAME_PROTOCOL;
    h->nvms = f->vms->len;
    for (i = 0; i < f->vms->len; i++) {
        h->vms[i] = ((FwdVm *)f->vms->pdata[i])->inv;
    }
    buf = g_malloc(APPDEP_FRAME_HELLO_MAX_LEN);
    len = appdep_frame_encode_hello(h, buf, APPDEP_FRAME_HELLO_MAX_LEN);
    /* the configuration was checked against the same limits */
    g_assert(len > 0);
    fwd_push_ctrl(f, buf, len);
}

static void fwd_vm_set_enabled(FwdVm *vm, bool enabled, const char *why)
{
    if (vm->inv.enabled == enabled) {
        return;
    }
    vm->inv.enabled = enabled;
    fwd_log("vm %s: inspection %s (%s)", vm->name, enabled ? "on" : "off",
            why);
    fwd_send_hello(vm->fwd);
}

/* ---- batches ---------------------------------------------------------- */

/* Every batch <= @batch is committed. */
static void fwd_acked(Fwd *f, uint64_t batch)
{
    FwdBatch *b;
    int ret;

    while ((b = g_queue_peek_head(&f->queue)) && b->batch <= batch) {
        g_assert(f->unsent != f->queue.head && b != f->wbatch);
        g_queue_pop_head(&f->queue);
        f->queue_bytes -= b->len;
        f->records_acked += b->count;
        fwd_batch_free(b);
    }
    ret = appdep_spool_ack(f->spool, batch);
    if (ret < 0) {
        fwd_log("spool: %s", appdep_spool_error(f->spool));
    }
    f->last_progress = g_get_monotonic_time();
    fwd_refill(f);
    fwd_pump(f);
}

static void fwd_queue_push(Fwd *f, FwdBatch *b)
{
    g_queue_push_tail(&f->queue, b);
    f->queue_bytes += b->len;
    if (!f->unsent) {
        f->unsent = f->queue.tail;
    }
}

/* Load spooled batches into the queue while it has room. */
static void fwd_refill(Fwd *f)
{
    while (fwd_connected(f) && f->queue_bytes < f->queue_max &&
           appdep_spool_has_unread(f->spool)) {
        FwdBatch *b = g_new0(FwdBatch, 1);
        int ret;

        ret = appdep_spool_read(f->spool, &b->frame, &b->len, &b->batch);
        if (ret <= 0) {
            g_free(b);
            if (ret < 0) {
                fwd_log("spool: %s", appdep_spool_error(f->spool));
                continue;
            }
            break;
        }
        b->count = appdep_wire_get32(b->frame + 24);
        b->on_disk = true;
        fwd_queue_push(f, b);
    }
    if (!appdep_spool_has_unread(f->spool) && f->spooling) {
        f->spooling = false;
        fwd_log("spool drained: new batches go straight to the server");
    }
}

/* Close the open batch, number it and put it in the queue or the spool. */
static void fwd_seal(Fwd *f)
{
    uint32_t count = f->open_count;
    size_t len = appdep_frame_batch_len(count);
    int ret;

    clear_timer(&f->batch_timer);
    if (!count) {
        return;
    }
    f->open_count = 0;
    appdep_frame_encode_batch_header(f->next_batch, count, f->open, len);

    if (fwd_connected(f) && !appdep_spool_has_unread(f->spool) &&
        f->queue_bytes + len <= f->queue_max) {
        FwdBatch *b = g_new0(FwdBatch, 1);

        b->batch = f->next_batch++;
        b->count = count;
        b->len = len;
        b->frame = g_realloc(g_steal_pointer(&f->open), len);
        f->open = g_malloc(appdep_frame_batch_len(f->batch_records));
        fwd_queue_push(f, b);
        fwd_pump(f);
    } else {
        ret = appdep_spool_append(f->spool, f->open, len, f->next_batch,
                                  false);
        if (ret < 0) {
            f->records_dropped += count;
            f->batches_dropped++;
            if (!f->dropping) {
                f->dropping = true;
                fwd_log("spool: %s: dropping batches (records counted)",
                        appdep_spool_error(f->spool));
            }
            return;
        }
        if (!f->spooling) {
            f->spooling = true;
            fwd_log("spooling batches from %" PRIu64 " (server %s)",
                    f->next_batch, fwd_connected(f) ? "busy" : "unreachable");
        }
        f->dropping = false;
        f->next_batch++;
        f->records_spooled += count;
    }
    ret = appdep_spool_reserve(f->spool, f->next_batch);
    if (ret < 0) {
        fwd_log("spool: %s", appdep_spool_error(f->spool));
    }
}

static gboolean fwd_batch_timer_cb(gpointer opaque)
{
    Fwd *f = opaque;

    f->batch_timer = 0;
    fwd_seal(f);
    return G_SOURCE_REMOVE;
}

static void fwd_add_record(Fwd *f, const AppdepThreadRecord *rec)
{
    appdep_wire_encode_thread(rec, f->open + APPDEP_FRAME_BATCH_FIXED_LEN +
                              (size_t)f->open_count * APPDEP_WIRE_THREAD_LEN);
    f->open_count++;
    f->records_in++;
    if (f->open_count == f->batch_records) {
        fwd_seal(f);
    } else if (!f->batch_timer) {
        f->batch_timer = g_timeout_add(f->batch_ms, fwd_batch_timer_cb, f);
    }
}

/* ---- record streams from QEMU ---------------------------------------- */

static void fwd_client_free(FwdClient *c)
{
    if (!c) {
        return;
    }
    source_destroy(&c->src);
    if (c->sock) {
        g_socket_close(c->sock, NULL);
        g_object_unref(c->sock);
    }
    g_free(c->buf);
    g_free(c);
}

/* Decode what is buffered; @eof: nothing more will come. */
static void fwd_client_decode(FwdClient *c, bool eof)
{
    Fwd *f = c->vm->fwd;
    size_t pos = 0;

    while (pos < c->have) {
        AppdepThreadRecord rec;
        const char *why = NULL;
        size_t used;
        int ret;

        ret = appdep_stream_next(c->buf + pos, c->have - pos, eof, &rec,
                                 &used, &why);
        if (ret == APPDEP_STREAM_NEED_MORE) {
            break;
        }
        if (ret == APPDEP_STREAM_RECORD) {
            fwd_add_record(f, &rec);
        } else {
            f->garbage_events++;
            f->garbage_bytes += used;
            if (c->garbage_logged < APPDEP_FWD_GARBAGE_LOG_MAX) {
                fwd_log("vm %s: record stream offset %" PRIu64 ": %s, "
                        "skipped %zu bytes%s", c->vm->name, c->offset + pos,
                        why, used, ++c->garbage_logged == APPDEP_FWD_GARBAGE_LOG_MAX ?
                        " (further garbage on this connection only counted)" :
                        "");
            }
        }
        pos += used;
    }
    memmove(c->buf, c->buf + pos, c->have - pos);
    c->have -= pos;
    c->offset += pos;
}

static void fwd_client_close(FwdClient *c, const char *why)
{
    fwd_client_decode(c, true);
    fwd_log("vm %s: record stream closed after %" PRIu64 " bytes (%s)",
            c->vm->name, c->offset, why);
    g_ptr_array_remove(c->vm->clients, c);
}

static gboolean fwd_client_cb(GSocket *sock, GIOCondition cond,
                              gpointer opaque)
{
    FwdClient *c = opaque;
    unsigned i;

    for (i = 0; i < APPDEP_FWD_READS_PER_DISPATCH; i++) {
        g_autoptr(GError) err = NULL;
        gssize r;

        r = g_socket_receive(sock, (char *)c->buf + c->have,
                             APPDEP_FWD_REC_BUF - c->have, NULL, &err);
        if (r < 0 && g_error_matches(err, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK)) {
            break;
        }
        if (r <= 0) {
            fwd_client_close(c, r ? err->message : "end of stream");
            return G_SOURCE_REMOVE;
        }
        c->have += r;
        fwd_client_decode(c, false);
    }
    return G_SOURCE_CONTINUE;
}

static gboolean fwd_accept_cb(GSocket *listener, GIOCondition cond,
                              gpointer opaque)
{
    FwdVm *vm = opaque;

    for (;;) {
        g_autoptr(GError) err = NULL;
        GSocket *sock = g_socket_accept(listener, NULL, &err);
        FwdClient *c;

        if (!sock) {
            if (!g_error_matches(err, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK)) {
                fwd_log("vm %s: accept on %s: %s", vm->name, vm->rec_path,
                        err->message);
            }
            break;
        }
        if (vm->clients->len >= APPDEP_FWD_MAX_CLIENTS) {
            fwd_log("vm %s: more than %d record connections, refused",
                    vm->name, APPDEP_FWD_MAX_CLIENTS);
            g_socket_close(sock, NULL);
            g_object_unref(sock);
            continue;
        }
        g_socket_set_blocking(sock, FALSE);
        c = g_new0(FwdClient, 1);
        c->vm = vm;
        c->sock = sock;
        c->buf = g_malloc(APPDEP_FWD_REC_BUF);
        c->src = g_socket_create_source(sock, G_IO_IN | G_IO_HUP | G_IO_ERR,
                                        NULL);
        g_source_set_callback(c->src, G_SOURCE_FUNC(fwd_client_cb), c, NULL);
        g_source_attach(c->src, NULL);
        g_ptr_array_add(vm->clients, c);
        fwd_log("vm %s: record stream connected", vm->name);
    }
    return G_SOURCE_CONTINUE;
}

static int fwd_vm_listen(FwdVm *vm, GError **errp)
{
    g_autoptr(GSocketAddress) addr = NULL;

    unlink(vm->rec_path);
    vm->listener = g_socket_new(G_SOCKET_FAMILY_UNIX, G_SOCKET_TYPE_STREAM,
                                G_SOCKET_PROTOCOL_DEFAULT, errp);
    if (!vm->listener) {
        return -EIO;
    }
    addr = g_unix_socket_address_new(vm->rec_path);
    if (!g_socket_bind(vm->listener, addr, FALSE, errp) ||
        !g_socket_listen(vm->listener, errp)) {
        return -EIO;
    }
    g_socket_set_blocking(vm->listener, FALSE);
    vm->listen_src = g_socket_create_source(vm->listener, G_IO_IN, NULL);
    g_source_set_callback(vm->listen_src, G_SOURCE_FUNC(fwd_accept_cb), vm,
                          NULL);
    g_source_attach(vm->listen_src, NULL);
    return 0;
}

/* Stop taking records: close listeners and drain connections. */
static void fwd_vm_stop_records(FwdVm *vm)
{
    source_destroy(&vm->listen_src);
    if (vm->listener) {
        g_socket_close(vm->listener, NULL);
        g_clear_object(&vm->listener);
        unlink(vm->rec_path);
    }
    while (vm->clients->len) {
        fwd_client_close(vm->clients->pdata[vm->clients->len - 1],
                         "shutting down");
    }
}

/* ---- QMP -------------------------------------------------------------- */

static void fwd_qmp_event(const char *event, JsonObject *data, void *opaque)
{
    FwdVm *vm = opaque;
    JsonNode *n;

    if (strcmp(event, "APPDEP_INSPECT") || !data) {
        return;
    }
    n = json_object_get_member(data, "enabled");
    if (n && JSON_NODE_TYPE(n) == JSON_NODE_VALUE &&
        json_node_get_value_type(n) == G_TYPE_BOOLEAN) {
        fwd_vm_set_enabled(vm, json_node_get_boolean(n), "APPDEP_INSPECT");
    }
}

static void fwd_query_reply(int status, const char *error, JsonNode *ret,
                            void *opaque)
{
    FwdVm *vm = opaque;
    JsonObject *o;
    JsonNode *n;

    if (status == -ECANCELED) {
        return;
    }
    if (status < 0 || JSON_NODE_TYPE(ret) != JSON_NODE_OBJECT) {
        /* no appdep object, or an older QEMU: nothing to inspect */
        fwd_vm_set_enabled(vm, false, "x-query-appdep failed");
        return;
    }
    o = json_node_get_object(ret);
    n = json_object_get_member(o, "enabled");
    if (n && JSON_NODE_TYPE(n) == JSON_NODE_VALUE &&
        json_node_get_value_type(n) == G_TYPE_BOOLEAN) {
        fwd_vm_set_enabled(vm, json_node_get_boolean(n), "x-query-appdep");
    }
}

static void fwd_qmp_state(bool ready, int status, const char *why,
                          void *opaque)
{
    FwdVm *vm = opaque;

    if (ready) {
        g_clear_pointer(&vm->qmp_last_why, g_free);
        fwd_log("vm %s: QMP connected", vm->name);
        appdep_qmp_execute(vm->qmp, "x-query-appdep", NULL, fwd_query_reply,
                           vm);
        return;
    }
    if (status == -ECANCELED) {
        return;
    }
    /* a QEMU that stays away is reported once, not at every retry */
    if (!vm->qmp_last_why || strcmp(vm->qmp_last_why, why)) {
        fwd_log("vm %s: QMP: %s", vm->name, why);
        g_free(vm->qmp_last_why);
        vm->qmp_last_why = g_strdup(why);
    }
    fwd_vm_set_enabled(vm, false, "QMP connection lost");
}

static void fwd_send_result(Fwd *f, unsigned gen, uint64_t id, int status,
                            const char *msg)
{
    AppdepFrameResult r = { .id = id, .status = status };
    uint8_t buf[APPDEP_FRAME_RESULT_LEN];
    int len;

    g_strlcpy(r.message, msg ? msg : "", sizeof(r.message));
    if (gen != f->gen || !fwd_connected(f)) {
        fwd_log("command %" PRIu64 ": server connection gone, result lost",
                id);
        return;
    }
    len = appdep_frame_encode_result(&r, buf, sizeof(buf));
    g_assert(len > 0);
    fwd_push_ctrl(f, buf, len);
}

static void fwd_command_reply(int status, const char *error, JsonNode *ret,
                              void *opaque)
{
    g_autofree FwdCmd *cmd = opaque;
    g_autofree char *text = escape_text(error ? error : "");
    Fwd *f = cmd->fwd;

    fwd_log("command %" PRIu64 ": vm %s inspect %s: %s%s", cmd->id,
            cmd->vm->name, cmd->op == APPDEP_CMD_INSPECT_ON ? "on" : "off",
            status ? "failed: " : "done", text);
    if (!status) {
        fwd_vm_set_enabled(cmd->vm, cmd->op == APPDEP_CMD_INSPECT_ON,
                           "command");
    }
    if (status != -ECANCELED) {
        fwd_send_result(f, cmd->gen, cmd->id, status, error);
    }
}

static void fwd_command(Fwd *f, const AppdepFrameCommand *c)
{
    g_autofree char *name = escape_text(c->vm);
    g_autofree char *msg = NULL;
    JsonObject *args;
    FwdCmd *cmd;
    guint i;

    f->commands++;
    for (i = 0; i < f->vms->len; i++) {
        FwdVm *vm = f->vms->pdata[i];

        if (!strcmp(vm->name, c->vm)) {
            cmd = g_new0(FwdCmd, 1);
            cmd->fwd = f;
            cmd->gen = f->gen;
            cmd->id = c->id;
            cmd->op = c->op;
            cmd->vm = vm;
            args = json_object_new();
            json_object_set_boolean_member(args, "enable",
                                           c->op == APPDEP_CMD_INSPECT_ON);
            appdep_qmp_execute(vm->qmp, "x-appdep-inspect", args,
                               fwd_command_reply, cmd);
            return;
        }
    }
    fwd_log("command %" PRIu64 ": no VM '%s' on this host", c->id, name);
    msg = g_strdup_printf("no VM '%s' on host %s", c->vm, f->host);
    fwd_send_result(f, f->gen, c->id, -ENOENT, msg);
}

/* ---- server connection ------------------------------------------------ */

static gboolean fwd_reconnect_cb(gpointer opaque);

static void fwd_schedule_reconnect(Fwd *f)
{
    if (f->exiting || f->reconnect) {
        return;
    }
    f->reconnect = g_timeout_add(f->backoff_ms, fwd_reconnect_cb, f);
    f->backoff_ms = MIN(f->backoff_ms * 2, APPDEP_FWD_BACKOFF_MAX_MS);
}

static void fwd_server_close(Fwd *f)
{
    source_destroy(&f->in_src);
    source_destroy(&f->out_src);
    if (f->conn) {
        g_io_stream_close(G_IO_STREAM(f->conn), NULL, NULL);
        g_clear_object(&f->conn);
    }
    f->sock = NULL;
    g_queue_clear_full(&f->ctrl, (GDestroyNotify)g_bytes_unref);
    g_clear_pointer(&f->wctrl, g_bytes_unref);
    f->wbatch = NULL;
    f->wlen = f->woff = 0;
    f->rlen = 0;
    f->unsent = f->queue.head;
    f->gen++;
}

static void fwd_server_drop(Fwd *f, const char *fmt, ...)
{
    g_autofree char *why = NULL;
    va_list ap;

    va_start(ap, fmt);
    why = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    fwd_log("server %s: %s; dropping the connection, %u unacknowledged "
            "batches kept", f->server, why, f->queue.length);
    fwd_server_close(f);
    if (f->exiting) {
        g_main_loop_quit(f->loop);
        return;
    }
    fwd_schedule_reconnect(f);
}

static gboolean fwd_out_cb(GSocket *sock, GIOCondition cond, gpointer opaque)
{
    Fwd *f = opaque;

    source_destroy(&f->out_src);
    fwd_pump(f);
    return G_SOURCE_REMOVE;
}

/* Write control frames first, then unsent batches, until it would block. */
static void fwd_pump(Fwd *f)
{
    while (fwd_connected(f)) {
        g_autoptr(GError) err = NULL;
        gssize r;

        if (f->woff == f->wlen) {
            if (!g_queue_is_empty(&f->ctrl)) {
                gsize n;

                f->wctrl = g_queue_pop_head(&f->ctrl);
                f->wptr = g_bytes_get_data(f->wctrl, &n);
                f->wlen = n;
            } else if (f->unsent) {
                f->wbatch = f->unsent->data;
                f->unsent = f->unsent->next;
                f->wptr = f->wbatch->frame;
                f->wlen = f->wbatch->len;
            } else {
                return;
            }
            f->woff = 0;
        }
        r = g_socket_send(f->sock, (const char *)f->wptr + f->woff,
                          f->wlen - f->woff, NULL, &err);
        if (r < 0 && g_error_matches(err, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK)) {
            if (!f->out_src) {
                f->out_src = g_socket_create_source(f->sock, G_IO_OUT, NULL);
                g_source_set_callback(f->out_src, G_SOURCE_FUNC(fwd_out_cb),
                                      f, NULL);
                g_source_attach(f->out_src, NULL);
            }
            return;
        }
        if (r < 0) {
            fwd_server_drop(f, "send: %s", err->message);
            return;
        }
        f->woff += r;
        if (f->woff == f->wlen) {
            if (f->wbatch) {
                f->last_sent = f->wbatch->batch;
                f->batches_sent++;
                f->wbatch = NULL;
            }
            g_clear_pointer(&f->wctrl, g_bytes_unref);
        }
    }
}

/* Parse frames from the server; false if the connection was dropped. */
static bool fwd_server_parse(Fwd *f)
{
    while (f->rlen >= APPDEP_WIRE_HDR_LEN) {
        uint16_t type;
        uint32_t len;
        int st;

        st = appdep_frame_check_header(f->rbuf, f->rlen, &type, &len);
        if (st == APPDEP_WIRE_OK &&
            type != APPDEP_WIRE_ACK && type != APPDEP_WIRE_COMMAND) {
            st = APPDEP_WIRE_BAD_TYPE;
        }
        if (st != APPDEP_WIRE_OK) {
            fwd_server_drop(f, "bad frame at offset %" PRIu64 ": %s",
                            f->rx_offset, st == APPDEP_WIRE_BAD_TYPE ?
                            "unexpected frame type" :
                            appdep_frame_status_str(st));
            return false;
        }
        if (f->rlen < len) {
            break;
        }
        if (type == APPDEP_WIRE_ACK) {
            uint64_t batch = 0;

            appdep_frame_decode_ack(f->rbuf, f->rlen, &batch);
            if (batch >= f->next_batch) {
                fwd_server_drop(f, "ACK %" PRIu64 " for a batch that does "
                                "not exist (next is %" PRIu64 ")", batch,
                                f->next_batch);
                return false;
            }
            f->backoff_ms = APPDEP_FWD_BACKOFF_MIN_MS;
            /*
             * A server may acknowledge its high-water mark, beyond what
             * this connection carried: only what was sent here is freed,
             * the rest is resent and acknowledged again.
             */
            fwd_acked(f, MIN(batch, f->last_sent));
        } else {
            AppdepFrameCommand c;

            st = appdep_frame_decode_command(f->rbuf, f->rlen, &c);
            if (st != APPDEP_WIRE_OK) {
                fwd_server_drop(f, "bad COMMAND at offset %" PRIu64 ": %s",
                                f->rx_offset, appdep_frame_status_str(st));
                return false;
            }
            fwd_command(f, &c);
        }
        if (!fwd_connected(f)) {
            return false;
        }
        memmove(f->rbuf, f->rbuf + len, f->rlen - len);
        f->rlen -= len;
        f->rx_offset += len;
        if (f->exiting && g_queue_is_empty(&f->queue)) {
            g_main_loop_quit(f->loop);
        }
    }
    return true;
}

static gboolean fwd_in_cb(GSocket *sock, GIOCondition cond, gpointer opaque)
{
    Fwd *f = opaque;
    g_autoptr(GError) err = NULL;
    gssize r;

    r = g_socket_receive(sock, (char *)f->rbuf + f->rlen,
                         sizeof(f->rbuf) - f->rlen, NULL, &err);
    if (r < 0 && g_error_matches(err, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK)) {
        return G_SOURCE_CONTINUE;
    }
    if (r <= 0) {
        /* fwd_server_drop destroys this source */
        fwd_server_drop(f, "%s", r ? err->message : "connection closed");
        return G_SOURCE_CONTINUE;
    }
    f->rlen += r;
    fwd_server_parse(f);
    return G_SOURCE_CONTINUE;
}

static void fwd_connected_cb(GObject *obj, GAsyncResult *res, gpointer opaque)
{
    Fwd *f = opaque;
    g_autoptr(GError) err = NULL;
    GSocketConnection *conn;

    conn = g_socket_client_connect_to_host_finish(G_SOCKET_CLIENT(obj), res,
                                                  &err);
    if (g_error_matches(err, G_IO_ERROR, G_IO_ERROR_CANCELLED)) {
        return;
    }
    g_clear_object(&f->connecting);
    if (!conn) {
        /* an absent server is reported once, not at every retry */
        if (!f->last_connect_err || strcmp(f->last_connect_err, err->message)) {
            fwd_log("server %s: %s; retrying with backoff", f->server,
                    err->message);
            g_free(f->last_connect_err);
            f->last_connect_err = g_strdup(err->message);
        }
        fwd_schedule_reconnect(f);
        return;
    }
    g_clear_pointer(&f->last_connect_err, g_free);
    f->conn = conn;
    f->sock = g_socket_connection_get_socket(conn);
    g_socket_set_blocking(f->sock, FALSE);
    /*
     * The client's connect timeout is inherited by the socket, where it
     * would end an idle connection after APPDEP_FWD_CONNECT_TIMEOUT_S: idleness
     * is normal here (APPDEP_FWD_ACK_TIMEOUT_MS guards the real failure).
     */
    g_socket_set_timeout(f->sock, 0);
    g_socket_set_keepalive(f->sock, TRUE);
    f->rx_offset = 0;
    f->last_sent = 0;
    f->last_progress = g_get_monotonic_time();
    f->unsent = f->queue.head;
    f->in_src = g_socket_create_source(f->sock, G_IO_IN | G_IO_HUP | G_IO_ERR,
                                       NULL);
    g_source_set_callback(f->in_src, G_SOURCE_FUNC(fwd_in_cb), f, NULL);
    g_source_attach(f->in_src, NULL);
    fwd_log("server %s: connected; replaying %u queued batches and %" PRIu64
            " spooled bytes", f->server, f->queue.length,
            appdep_spool_bytes(f->spool));
    fwd_send_hello(f);
    fwd_refill(f);
    fwd_pump(f);
}

static gboolean fwd_reconnect_cb(gpointer opaque)
{
    Fwd *f = opaque;

    f->reconnect = 0;
    f->connecting = g_cancellable_new();
    g_socket_client_connect_to_host_async(f->client, f->server,
                                          APPDEP_FWD_DEFAULT_PORT, f->connecting,
                                          fwd_connected_cb, f);
    return G_SOURCE_REMOVE;
}

/* ---- timers and signals ----------------------------------------------- */

static gboolean fwd_tick_cb(gpointer opaque)
{
    Fwd *f = opaque;
    gint64 now = g_get_monotonic_time();

    /* sent batches the server never acknowledges: it is stuck */
    if (fwd_connected(f) && f->queue.head && f->unsent != f->queue.head &&
        now - f->last_progress > APPDEP_FWD_ACK_TIMEOUT_MS * 1000LL) {
        fwd_server_drop(f, "no ACK for %d ms", APPDEP_FWD_ACK_TIMEOUT_MS);
    }
    if (f->status_s && now >= f->next_status) {
        f->next_status = now + f->status_s * G_USEC_PER_SEC;
        fwd_status(f, "periodic");
    }
    return G_SOURCE_CONTINUE;
}

static gboolean fwd_exit_timer_cb(gpointer opaque)
{
    Fwd *f = opaque;

    f->exit_timer = 0;
    fwd_log("shutdown: %u batches still unacknowledged after %d ms",
            f->queue.length, APPDEP_FWD_EXIT_WAIT_MS);
    g_main_loop_quit(f->loop);
    return G_SOURCE_REMOVE;
}

static gboolean fwd_term_cb(gpointer opaque)
{
    Fwd *f = opaque;
    guint i;

    if (f->exiting) {
        g_main_loop_quit(f->loop);
        return G_SOURCE_CONTINUE;
    }
    fwd_log("shutting down: closing record streams, flushing batches");
    f->exiting = true;
    clear_timer(&f->reconnect);
    if (f->connecting) {
        g_cancellable_cancel(f->connecting);
        g_clear_object(&f->connecting);
    }
    for (i = 0; i < f->vms->len; i++) {
        fwd_vm_stop_records(f->vms->pdata[i]);
    }
    fwd_seal(f);
    if (fwd_connected(f) && !g_queue_is_empty(&f->queue)) {
        f->exit_timer = g_timeout_add(APPDEP_FWD_EXIT_WAIT_MS, fwd_exit_timer_cb, f);
    } else {
        g_main_loop_quit(f->loop);
    }
    return G_SOURCE_CONTINUE;
}

static gboolean fwd_usr1_cb(gpointer opaque)
{
    fwd_status(opaque, "SIGUSR1");
    return G_SOURCE_CONTINUE;
}

/* Write the unacknowledged batches held only in memory to the spool. */
static void fwd_spool_queue(Fwd *f)
{
    bool new_run = true;
    uint64_t saved = 0, lost = 0;
    GList *l;

    for (l = f->queue.head; l; l = l->next) {
        FwdBatch *b = l->data;

        if (b->on_disk) {
            new_run = true;
            continue;
        }
        if (appdep_spool_append(f->spool, b->frame, b->len, b->batch,
                                new_run) < 0) {
            fwd_log("shutdown: batch %" PRIu64 " not spooled: %s", b->batch,
                    appdep_spool_error(f->spool));
            f->records_dropped += b->count;
            f->batches_dropped++;
            lost++;
            new_run = true;
            continue;
        }
        f->records_spooled += b->count;
        saved++;
        new_run = false;
    }
    if (saved || lost) {
        fwd_log("shutdown: %" PRIu64 " unacknowledged batches spooled for "
                "replay, %" PRIu64 " lost", saved, lost);
    }
}

/* ---- configuration ---------------------------------------------------- */

static int cfg_u64(GKeyFile *kf, const char *group, const char *key,
                   uint64_t def, uint64_t min, uint64_t max, uint64_t *out,
                   GString *why)
{
    g_autofree char *s = g_key_file_get_string(kf, group, key, NULL);
    guint64 v;

    if (!s) {
        *out = def;
        return 0;
    }
    g_strstrip(s);
    if (!g_ascii_string_to_unsigned(s, 10, min, max, &v, NULL)) {
        g_string_printf(why, "[%s] %s: '%s' is not a number from %" PRIu64
                        " to %" PRIu64, group, key, s, min, max);
        return -EINVAL;
    }
    *out = v;
    return 0;
}

static int cfg_str(GKeyFile *kf, const char *group, const char *key,
                   bool required, char **out, GString *why)
{
    g_autofree char *s = g_key_file_get_string(kf, group, key, NULL);

    if (s) {
        g_strstrip(s);
    }
    if (!s || !*s) {
        if (required) {
            g_string_printf(why, "[%s] %s: missing", group, key);
            return -EINVAL;
        }
        return 0;
    }
    *out = g_steal_pointer(&s);
    return 0;
}

/* Every key of @group must be one of @known (NULL-terminated). */
static int cfg_check_keys(GKeyFile *kf, const char *group,
                          const char *const *known, GString *why)
{
    g_auto(GStrv) keys = g_key_file_get_keys(kf, group, NULL, NULL);
    guint i;

    for (i = 0; keys && keys[i]; i++) {
        if (!g_strv_contains(known, keys[i])) {
            g_string_printf(why, "[%s] %s: unknown key", group, keys[i]);
            return -EINVAL;
        }
    }
    return 0;
}

static int cfg_addresses(GKeyFile *kf, const char *group, AppdepFrameVm *inv,
                         GString *why)
{
    g_auto(GStrv) list = g_key_file_get_string_list(kf, group, "addresses",
                                                    NULL, NULL);
    guint i;

    for (i = 0; list && list[i]; i++) {
        g_autoptr(GInetAddress) a = NULL;
        char *s = g_strstrip(list[i]);
        AppdepFrameAddr *slot;

        if (!*s) {
            continue;
        }
        if (inv->naddr == APPDEP_FRAME_MAX_ADDRS) {
            g_string_printf(why, "[%s] addresses: more than %d", group,
                            APPDEP_FRAME_MAX_ADDRS);
            return -EINVAL;
        }
        a = g_inet_address_new_from_string(s);
        if (!a) {
            g_string_printf(why, "[%s] addresses: '%s' is not an IPv4 or "
                            "IPv6 address", group, s);
            return -EINVAL;
        }
        slot = &inv->addrs[inv->naddr++];
        slot->family = g_inet_address_get_family(a) == G_SOCKET_FAMILY_IPV6 ?
                       APPDEP_FAMILY_IPV6 : APPDEP_FAMILY_IPV4;
        memcpy(slot->addr, g_inet_address_to_bytes(a),
               g_inet_address_get_native_size(a));
    }
    return 0;
}

static void fwd_vm_free(FwdVm *vm)
{
    if (!vm) {
        return;
    }
    appdep_qmp_free(vm->qmp);
    if (vm->clients) {
        g_ptr_array_free(vm->clients, TRUE);
    }
    source_destroy(&vm->listen_src);
    if (vm->listener) {
        g_socket_close(vm->listener, NULL);
        g_object_unref(vm->listener);
        unlink(vm->rec_path);
    }
    g_free(vm->name);
    g_free(vm->qmp_path);
    g_free(vm->rec_path);
    g_free(vm->qmp_last_why);
    g_free(vm);
}

static const char *const fwd_keys[] = {
    "server", "host", "spool-dir", "spool-max-bytes", "queue-max-bytes",
    "batch-records", "batch-ms", "status-interval", NULL
};
static const char *const vm_keys[] = { "qmp", "records", "addresses", NULL };

static int fwd_load_config(Fwd *f, const char *path, GString *why)
{
    g_autoptr(GKeyFile) kf = g_key_file_new();
    g_autoptr(GError) err = NULL;
    g_auto(GStrv) groups = NULL;
    uint64_t v;
    guint i;
    int ret;

    if (!g_key_file_load_from_file(kf, path, G_KEY_FILE_NONE, &err)) {
        g_string_printf(why, "%s", err->message);
        return -EINVAL;
    }
    if (!g_key_file_has_group(kf, "fwd")) {
        g_string_printf(why, "[fwd]: missing group");
        return -EINVAL;
    }
    if ((ret = cfg_check_keys(kf, "fwd", fwd_keys, why)) < 0 ||
        (ret = cfg_str(kf, "fwd", "server", true, &f->server, why)) < 0 ||
        (ret = cfg_str(kf, "fwd", "host", true, &f->host, why)) < 0 ||
        (ret = cfg_str(kf, "fwd", "spool-dir", true, &f->spool_dir,
                       why)) < 0 ||
        (ret = cfg_u64(kf, "fwd", "spool-max-bytes", APPDEP_FWD_DEFAULT_SPOOL_MAX,
                       0, G_MAXINT64, &f->spool_max, why)) < 0 ||
        (ret = cfg_u64(kf, "fwd", "batch-records", APPDEP_FWD_DEFAULT_BATCH_RECORDS,
                       1, APPDEP_FRAME_MAX_RECORDS, &v, why)) < 0) {
        return ret;
    }
    f->batch_records = v;
    if ((ret = cfg_u64(kf, "fwd", "batch-ms", APPDEP_FWD_DEFAULT_BATCH_MS, 1,
                       APPDEP_FWD_MAX_BATCH_MS, &v, why)) < 0) {
        return ret;
    }
    f->batch_ms = v;
    if ((ret = cfg_u64(kf, "fwd", "status-interval", APPDEP_FWD_DEFAULT_STATUS_S, 0,
                       APPDEP_FWD_MAX_STATUS_S, &v, why)) < 0) {
        return ret;
    }
    f->status_s = v;
    /* the queue always holds at least one full batch */
    if ((ret = cfg_u64(kf, "fwd", "queue-max-bytes", APPDEP_FWD_DEFAULT_QUEUE_MAX,
                       appdep_frame_batch_len(f->batch_records), G_MAXINT64,
                       &f->queue_max, why)) < 0) {
        return ret;
    }
    if (strlen(f->host) > APPDEP_FRAME_HOST_LEN) {
        g_string_printf(why, "[fwd] host: longer than %d bytes",
                        APPDEP_FRAME_HOST_LEN);
        return -EINVAL;
    }

    groups = g_key_file_get_groups(kf, NULL);
    for (i = 0; groups[i]; i++) {
        const char *g = groups[i];
        FwdVm *vm;

        if (!strcmp(g, "fwd")) {
            continue;
        }
        if (!g_str_has_prefix(g, "vm ") || !g[3]) {
            g_string_printf(why, "[%s]: unknown group (expected [fwd] or "
                            "[vm NAME])", g);
            return -EINVAL;
        }
        if (strlen(g + 3) > APPDEP_WIRE_VM_LEN) {
            g_string_printf(why, "[%s]: VM name longer than %d bytes", g,
                            APPDEP_WIRE_VM_LEN);
            return -EINVAL;
        }
        if (f->vms->len == APPDEP_FRAME_MAX_VMS) {
            g_string_printf(why, "[%s]: more than %d VMs", g,
                            APPDEP_FRAME_MAX_VMS);
            return -EINVAL;
        }
        vm = g_new0(FwdVm, 1);
        vm->fwd = f;
        vm->name = g_strdup(g + 3);
        vm->clients = g_ptr_array_new_with_free_func(
            (GDestroyNotify)fwd_client_free);
        g_strlcpy(vm->inv.vm, vm->name, sizeof(vm->inv.vm));
        g_ptr_array_add(f->vms, vm);
        if ((ret = cfg_check_keys(kf, g, vm_keys, why)) < 0 ||
            (ret = cfg_str(kf, g, "qmp", true, &vm->qmp_path, why)) < 0 ||
            (ret = cfg_str(kf, g, "records", true, &vm->rec_path, why)) < 0 ||
            (ret = cfg_addresses(kf, g, &vm->inv, why)) < 0) {
            return ret;
        }
    }
    if (!f->vms->len) {
        g_string_printf(why, "no [vm NAME] group");
        return -EINVAL;
    }
    return 0;
}

/* ---- main ------------------------------------------------------------- */

static void fwd_free(Fwd *f)
{
    if (f->vms) {
        g_ptr_array_free(f->vms, TRUE);
    }
    fwd_server_close(f);
    g_queue_clear_full(&f->queue, (GDestroyNotify)fwd_batch_free);
    clear_timer(&f->batch_timer);
    clear_timer(&f->reconnect);
    clear_timer(&f->exit_timer);
    clear_timer(&f->tick);
    g_clear_object(&f->connecting);
    g_clear_object(&f->client);
    appdep_spool_free(f->spool);
    if (f->loop) {
        g_main_loop_unref(f->loop);
    }
    g_free(f->open);
    g_free(f->server);
    g_free(f->host);
    g_free(f->spool_dir);
    g_free(f->config_path);
    g_free(f->last_connect_err);
}

int main(int argc, char **argv)
{
    g_autoptr(GOptionContext) ctx = NULL;
    g_autoptr(GError) err = NULL;
    g_autoptr(GString) why = g_string_new(NULL);
    g_autofree char *config = NULL;
    g_autofree char *summary = NULL;
    GOptionEntry entries[] = {
        { "config", 'c', 0, G_OPTION_ARG_FILENAME, &config,
          "Configuration file (GKeyFile INI)", "FILE" },
        { NULL }
    };
    Fwd fwd = { 0 }, *f = &fwd;
    unsigned repaired = 0;
    guint i;
    int ret;

    ctx = g_option_context_new(NULL);
    summary = g_strdup_printf(
        "Forward appdep records from the local QEMUs to the APM server.\n"
        "\n"
        "The configuration file has one [fwd] group and one [vm NAME] group\n"
        "per VM:\n"
        "  [fwd]\n"
        "  server=HOST:PORT         APM server (port %d if omitted)\n"
        "  host=NAME                this physical host's name\n"
        "  spool-dir=DIR            batches kept here while the server is away\n"
        "  spool-max-bytes=N        spool bound (%llu)\n"
        "  queue-max-bytes=N        in-memory unacknowledged batches (%llu)\n"
        "  batch-records=N          records per batch, at most %d (%d)\n"
        "  batch-ms=N               longest wait before a batch is sent (%d)\n"
        "  status-interval=S        status line every S seconds, 0: off (%d)\n"
        "  [vm NAME]\n"
        "  qmp=PATH                 QEMU's QMP unix socket (QEMU listens)\n"
        "  records=PATH             record socket this daemon listens on\n"
        "  addresses=A;B            the VM's IP addresses (at most %d)\n"
        "\n"
        "SIGTERM/SIGINT flush and exit; SIGUSR1 logs a status line.",
        APPDEP_FWD_DEFAULT_PORT, APPDEP_FWD_DEFAULT_SPOOL_MAX,
        APPDEP_FWD_DEFAULT_QUEUE_MAX, APPDEP_FRAME_MAX_RECORDS,
        APPDEP_FWD_DEFAULT_BATCH_RECORDS, APPDEP_FWD_DEFAULT_BATCH_MS,
        APPDEP_FWD_DEFAULT_STATUS_S, APPDEP_FRAME_MAX_ADDRS);
    g_option_context_set_summary(ctx, summary);
    g_option_context_add_main_entries(ctx, entries, NULL);
    if (!g_option_context_parse(ctx, &argc, &argv, &err)) {
        fprintf(stderr, FWD_NAME ": %s (try --help)\n", err->message);
        return 1;
    }
    if (!config || argc != 1) {
        fprintf(stderr, FWD_NAME ": give --config FILE (try --help)\n");
        return 1;
    }
    signal(SIGPIPE, SIG_IGN);

    f->vms = g_ptr_array_new_with_free_func((GDestroyNotify)fwd_vm_free);
    g_queue_init(&f->queue);
    g_queue_init(&f->ctrl);
    if (fwd_load_config(f, config, why) < 0) {
        fprintf(stderr, FWD_NAME ": config %s: %s\n", config, why->str);
        fwd_free(f);
        return 1;
    }
    ret = appdep_spool_open(f->spool_dir, f->spool_max, &f->spool,
                            &f->next_batch, &repaired);
    if (repaired) {
        fwd_log("spool: %u damaged files repaired; last: %s", repaired,
                appdep_spool_error(f->spool));
    }
    if (ret < 0) {
        fwd_log("spool: %s", appdep_spool_error(f->spool));
        fwd_free(f);
        return 1;
    }
    f->open = g_malloc(appdep_frame_batch_len(f->batch_records));
    f->loop = g_main_loop_new(NULL, FALSE);
    for (i = 0; i < f->vms->len; i++) {
        FwdVm *vm = f->vms->pdata[i];

        if (fwd_vm_listen(vm, &err) < 0) {
            fwd_log("vm %s: records=%s: %s", vm->name, vm->rec_path,
                    err->message);
            fwd_free(f);
            return 1;
        }
        vm->qmp = appdep_qmp_new(vm->qmp_path, fwd_qmp_event, fwd_qmp_state,
                                 vm);
    }
    f->client = g_socket_client_new();
    g_socket_client_set_timeout(f->client, APPDEP_FWD_CONNECT_TIMEOUT_S);
    f->backoff_ms = APPDEP_FWD_BACKOFF_MIN_MS;
    f->reconnect = g_idle_add(fwd_reconnect_cb, f);
    f->tick = g_timeout_add(APPDEP_FWD_TICK_MS, fwd_tick_cb, f);
    f->next_status = g_get_monotonic_time() + f->status_s * G_USEC_PER_SEC;
    g_unix_signal_add(SIGTERM, fwd_term_cb, f);
    g_unix_signal_add(SIGINT, fwd_term_cb, f);
    g_unix_signal_add(SIGUSR1, fwd_usr1_cb, f);

    fwd_log("started: host %s, %u VMs, server %s, spool %s (%" PRIu64
            " bytes, next batch %" PRIu64 ")", f->host, f->vms->len,
            f->server, f->spool_dir, appdep_spool_bytes(f->spool),
            f->next_batch);
    g_main_loop_run(f->loop);

    fwd_spool_queue(f);
    fwd_status(f, "exit");
    fwd_free(f);
    return 0;
}
