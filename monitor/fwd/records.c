/*
 * appdep-fwd: record intake from the VMs' unix sockets.
 *
 * Each VM has a record socket this daemon listens on; QEMU's chardev
 * connects to it (at most APPDEP_FWD_MAX_CLIENTS connections per VM).
 * Records are read at any rate and decoded with the resynchronising
 * stream decoder (stream.h): garbage is counted, and logged with its
 * stream offset at most APPDEP_FWD_GARBAGE_LOG_MAX times per connection.
 * Each record is re-encoded into the open batch, which is sealed
 * (batch.c) when it holds batch-records records or batch-ms after its
 * first one.  Memory stays bounded: fixed per-connection buffers and one
 * open batch.
 *
 * Main-loop thread only.
 *
 * Copyright (c) 2026 appdep authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include <errno.h>
#include <inttypes.h>
#include <sys/stat.h>
#include <unistd.h>
#include "fwd.h"
#include "stream.h"

static gboolean fwd_batch_timer_cb(gpointer opaque)
{
    Fwd *f = opaque;

    f->batch_timer = 0;
    if (fwd_seal(f) > 0) {
        fwd_pump(f);
    }
    return G_SOURCE_REMOVE;
}

static void fwd_add_record(Fwd *f, const AppdepThreadRecord *rec)
{
    appdep_wire_encode_thread(rec, f->open + APPDEP_FRAME_BATCH_FIXED_LEN +
                              (size_t)f->open_count * APPDEP_WIRE_THREAD_LEN);
    f->open_count++;
    f->records_in++;
    if (f->open_count == f->batch_records) {
        if (fwd_seal(f) > 0) {
            fwd_pump(f);
        }
    } else if (!f->batch_timer) {
        f->batch_timer = g_timeout_add(f->batch_ms, fwd_batch_timer_cb, f);
    }
}

void fwd_client_free(FwdClient *c)
{
    if (!c) {
        return;
    }
    fwd_source_destroy(&c->src);
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
                appdep_log(APPDEP_LOG_WARN, "vm %s: record stream offset %"
                           PRIu64 ": %s, skipped %zu bytes%s", c->vm->name,
                           c->offset + pos, why, used,
                           ++c->garbage_logged == APPDEP_FWD_GARBAGE_LOG_MAX ?
                           " (further garbage on this connection only "
                           "counted)" : "");
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
    appdep_log(APPDEP_LOG_INFO, "vm %s: record stream closed after %" PRIu64
               " bytes (%s)", c->vm->name, c->offset, why);
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
                appdep_log(APPDEP_LOG_WARN, "vm %s: accept on %s: %s",
                           vm->name, vm->rec_path, err->message);
            }
            break;
        }
        if (vm->clients->len >= APPDEP_FWD_MAX_CLIENTS) {
            appdep_log(APPDEP_LOG_WARN,
                       "vm %s: more than %d record connections, refused",
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
        appdep_log(APPDEP_LOG_INFO, "vm %s: record stream connected",
                   vm->name);
    }
    return G_SOURCE_CONTINUE;
}

int fwd_vm_listen(FwdVm *vm, GError **errp)
{
    g_autoptr(GSocketAddress) addr = NULL;
    struct stat st;

    /* a stale socket of an earlier run goes; anything else is not ours */
    if (lstat(vm->rec_path, &st) == 0) {
        if (!S_ISSOCK(st.st_mode)) {
            g_set_error(errp, G_IO_ERROR, G_IO_ERROR_EXISTS,
                        "exists and is not a socket; not removing it");
            return -EEXIST;
        }
        unlink(vm->rec_path);
    }
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

void fwd_vm_close_listener(FwdVm *vm)
{
    fwd_source_destroy(&vm->listen_src);
    if (vm->listener) {
        g_socket_close(vm->listener, NULL);
        g_clear_object(&vm->listener);
        unlink(vm->rec_path);
    }
}

void fwd_vm_stop_records(FwdVm *vm)
{
    fwd_vm_close_listener(vm);
    while (vm->clients->len) {
        fwd_client_close(vm->clients->pdata[vm->clients->len - 1],
                         "shutting down");
    }
}
