/*
 * appdep-fwd: the connection to the APM server.
 *
 * One TCP connection at a time.  It opens with a HELLO (the inventory,
 * sent again whenever it changes), then carries every unacknowledged
 * batch of the queue (batch.c) in order, control frames (HELLO, RESULT)
 * first.  The server answers with ACKs, which free batches, and COMMANDs,
 * handed to the callback given to fwd_uplink_start().  Anything wrong
 * from the server (a bad frame, an ACK for a batch never made, no ACK for
 * APPDEP_FWD_ACK_TIMEOUT_MS) drops the connection; batches are kept and
 * sent again after a reconnect, with backoff.
 *
 * Main-loop thread only.
 *
 * Copyright (c) 2026 appdep authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include <inttypes.h>
#include "fwd.h"
#include "wire-status.h"

static gboolean fwd_reconnect_cb(gpointer opaque);

void fwd_push_ctrl(Fwd *f, const uint8_t *frame, size_t len)
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

void fwd_send_hello(Fwd *f)
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

static void fwd_schedule_reconnect(Fwd *f)
{
    if (f->exiting || f->reconnect) {
        return;
    }
    f->reconnect = g_timeout_add(f->backoff_ms, fwd_reconnect_cb, f);
    f->backoff_ms = MIN(f->backoff_ms * 2, APPDEP_FWD_BACKOFF_MAX_MS);
}

void fwd_server_close(Fwd *f)
{
    fwd_source_destroy(&f->in_src);
    fwd_source_destroy(&f->out_src);
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

void fwd_server_drop(Fwd *f, const char *fmt, ...)
{
    g_autofree char *why = NULL;
    va_list ap;

    va_start(ap, fmt);
    why = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    appdep_log(APPDEP_LOG_WARN, "server %s: %s; dropping the connection, %u "
               "unacknowledged batches kept", f->server, why,
               f->queue.length);
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

    fwd_source_destroy(&f->out_src);
    fwd_pump(f);
    return G_SOURCE_REMOVE;
}

void fwd_pump(Fwd *f)
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

/* An ACK for @batch arrived.  False if the connection was dropped. */
static bool fwd_server_ack(Fwd *f, uint64_t batch)
{
    if (batch >= f->next_batch) {
        fwd_server_drop(f, "ACK %" PRIu64 " for a batch that does not "
                        "exist (next is %" PRIu64 ")", batch, f->next_batch);
        return false;
    }
    f->backoff_ms = APPDEP_FWD_BACKOFF_MIN_MS;
    /*
     * A server may acknowledge its high-water mark, beyond what this
     * connection carried: only what was sent here is freed, the rest is
     * resent and acknowledged again.
     */
    if (fwd_acked(f, MIN(batch, f->last_sent)) < 0) {
        appdep_log(APPDEP_LOG_WARN, "spool: %s", appdep_spool_error(f->spool));
    }
    f->last_progress = g_get_monotonic_time();
    fwd_refill(f);
    fwd_pump(f);
    return true;
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
                            appdep_wire_status_str(st));
            return false;
        }
        if (f->rlen < len) {
            break;
        }
        if (type == APPDEP_WIRE_ACK) {
            uint64_t batch = 0;

            appdep_frame_decode_ack(f->rbuf, f->rlen, &batch);
            if (!fwd_server_ack(f, batch)) {
                return false;
            }
        } else {
            AppdepFrameCommand c;

            st = appdep_frame_decode_command(f->rbuf, f->rlen, &c);
            if (st != APPDEP_WIRE_OK) {
                fwd_server_drop(f, "bad COMMAND at offset %" PRIu64 ": %s",
                                f->rx_offset, appdep_wire_status_str(st));
                return false;
            }
            f->on_command(f, &c);
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
            appdep_log(APPDEP_LOG_WARN, "server %s: %s; retrying with backoff",
                       f->server, err->message);
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
     * would end an idle connection after APPDEP_FWD_CONNECT_TIMEOUT_S:
     * idleness is normal here (APPDEP_FWD_ACK_TIMEOUT_MS guards the real
     * failure).
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
    appdep_log(APPDEP_LOG_INFO, "server %s: connected; replaying %u queued "
               "batches and %" PRIu64 " spooled bytes", f->server,
               f->queue.length, appdep_spool_bytes(f->spool));
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
                                          APPDEP_FWD_DEFAULT_PORT,
                                          f->connecting, fwd_connected_cb, f);
    return G_SOURCE_REMOVE;
}

void fwd_uplink_start(Fwd *f, FwdCommandFn on_command)
{
    f->on_command = on_command;
    f->client = g_socket_client_new();
    g_socket_client_set_timeout(f->client, APPDEP_FWD_CONNECT_TIMEOUT_S);
    f->backoff_ms = APPDEP_FWD_BACKOFF_MIN_MS;
    f->reconnect = g_idle_add(fwd_reconnect_cb, f);
}
