/*
 * appdep-server: connections from forward daemons.
 *
 * Frames (appdep-wire.h, monitor/common/frame.h) are untrusted: every header is
 * checked before its body is read, the input buffer is bounded by the
 * frame size limit, and a peer that sends anything malformed, or frames
 * out of protocol order, is disconnected with a logged reason (its
 * daemon reconnects and replays what was not acknowledged).  A BATCH is
 * acknowledged only once its records are committed to LMDB; a replayed
 * batch (number not above the last committed one of that daemon) is
 * acknowledged again and not stored twice.
 *
 * Group commit: the batches received in one main-loop iteration, from
 * every daemon, are committed in one LMDB transaction (one sync), then
 * acknowledged and fed to the converter in the order they arrived.
 *
 * Main loop only.
 *
 * Copyright (c) 2026 appdep authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include <errno.h>
#include "log.h"
#include "server.h"


struct AppdepPeer {
    AppdepServer *srv;
    GSocketConnection *conn;
    GSocket *sock;
    GSource *in_src, *out_src;
    char name[APPDEP_NET_PEER_NAME_LEN];  /* remote address, for logs */
    char host[APPDEP_FRAME_HOST_LEN + 1];
    bool hello;
    GByteArray *in, *out;
};

/* A received batch waiting for the group commit. */
typedef struct NetBatch {
    AppdepPeer *peer;           /* NULL once the peer is gone */
    char host[APPDEP_FRAME_HOST_LEN + 1];
    uint64_t batch;
    uint32_t n;
    AppdepThreadRecord *recs;
} NetBatch;

static void net_batch_free(gpointer p)
{
    NetBatch *b = p;

    g_free(b->recs);
    g_free(b);
}

typedef struct Command {
    uint64_t id;
    AppdepPeer *peer;
    AppdepCommandDone *done;
    void *opaque;
    guint timer;
} Command;

static void peer_log(AppdepPeer *p, const char *fmt, ...) G_GNUC_PRINTF(2, 3);

/*
 * Log a warning about peer @p.  Its host name comes from its HELLO,
 * untrusted: it is escaped.
 */
static void peer_log(AppdepPeer *p, const char *fmt, ...)
{
    g_autofree char *msg = NULL;
    g_autofree char *host = appdep_log_escape(p->host);
    va_list ap;

    va_start(ap, fmt);
    msg = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    appdep_log(APPDEP_LOG_WARN, "daemon %s%s%s: %s", p->name,
               p->host[0] ? " host " : "", host, msg);
}

static void command_finish(AppdepServer *srv, Command *c, int status,
                           const char *message)
{
    if (c->timer) {
        g_source_remove(c->timer);
    }
    g_hash_table_steal(srv->commands, &c->id);
    c->done(status, message, c->opaque);
    g_free(c);
}

static void peer_close(AppdepPeer *p)
{
    AppdepServer *srv = p->srv;
    GHashTableIter it;
    gpointer k, v;
    GList *pending = NULL, *l;

    g_hash_table_iter_init(&it, srv->vms);
    while (g_hash_table_iter_next(&it, &k, &v)) {
        AppdepVm *vm = v;

        if (vm->peer == p) {
            vm->peer = NULL;
        }
    }
    g_hash_table_iter_init(&it, srv->commands);
    while (g_hash_table_iter_next(&it, &k, &v)) {
        if (((Command *)v)->peer == p) {
            pending = g_list_prepend(pending, v);
        }
    }
    for (l = pending; l; l = l->next) {
        command_finish(srv, l->data, -ECONNRESET,
                       "the forward daemon disconnected");
    }
    g_list_free(pending);
    /* its batches are still committed, but nobody is told */
    for (guint i = 0; srv->batches && i < srv->batches->len; i++) {
        NetBatch *b = g_ptr_array_index(srv->batches, i);

        if (b->peer == p) {
            b->peer = NULL;
        }
    }
    srv->peers = g_list_remove(srv->peers, p);
    if (p->in_src) {
        g_source_destroy(p->in_src);
        g_source_unref(p->in_src);
    }
    if (p->out_src) {
        g_source_destroy(p->out_src);
        g_source_unref(p->out_src);
    }
    g_io_stream_close(G_IO_STREAM(p->conn), NULL, NULL);
    g_object_unref(p->conn);
    g_byte_array_free(p->in, TRUE);
    g_byte_array_free(p->out, TRUE);
    g_free(p);
}

static gboolean peer_writable(GSocket *sock, GIOCondition cond,
                              gpointer opaque);

/* Send what is queued; returns false when the peer had to be closed. */
static bool peer_flush(AppdepPeer *p)
{
    g_autoptr(GError) err = NULL;
    gssize n;

    while (p->out->len) {
        n = g_socket_send(p->sock, (char *)p->out->data, p->out->len, NULL,
                          &err);
        if (n < 0) {
            if (g_error_matches(err, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK)) {
                break;
            }
            peer_log(p, "send: %s", err->message);
            peer_close(p);
            return false;
        }
        g_byte_array_remove_range(p->out, 0, n);
    }
    if (p->out->len && !p->out_src) {
        p->out_src = g_socket_create_source(p->sock, G_IO_OUT, NULL);
        g_source_set_callback(p->out_src, G_SOURCE_FUNC(peer_writable), p,
                              NULL);
        g_source_attach(p->out_src, NULL);
    } else if (!p->out->len && p->out_src) {
        g_source_destroy(p->out_src);
        g_source_unref(p->out_src);
        p->out_src = NULL;
    }
    return true;
}

static gboolean peer_writable(GSocket *sock, GIOCondition cond,
                              gpointer opaque)
{
    AppdepPeer *p = opaque;
    GSource *src = p->out_src;

    g_source_ref(src);
    if (peer_flush(p) && p->out_src == src) {
        g_source_unref(src);
        return G_SOURCE_CONTINUE;
    }
    g_source_unref(src);
    return G_SOURCE_REMOVE;
}

static bool peer_queue(AppdepPeer *p, const uint8_t *buf, size_t len)
{
    if (p->out->len + len > APPDEP_NET_MAX_OUT) {
        peer_log(p, "not reading what we send: disconnected");
        peer_close(p);
        return false;
    }
    g_byte_array_append(p->out, buf, len);
    return peer_flush(p);
}

static void inventory_update(AppdepPeer *p, const AppdepFrameHello *h)
{
    AppdepServer *srv = p->srv;
    uint32_t i;

    for (i = 0; i < h->nvms; i++) {
        const AppdepFrameVm *fv = &h->vms[i];
        AppdepVm *vm = g_hash_table_lookup(srv->vms, fv->vm);

        if (!vm) {
            vm = g_new0(AppdepVm, 1);
            g_strlcpy(vm->name, fv->vm, sizeof(vm->name));
            g_hash_table_insert(srv->vms, vm->name, vm);
        }
        g_strlcpy(vm->host, h->host, sizeof(vm->host));
        vm->enabled = fv->enabled;
        vm->naddr = MIN(fv->naddr, APPDEP_FRAME_MAX_ADDRS);
        memcpy(vm->addrs, fv->addrs, sizeof(vm->addrs));
        vm->peer = p;
    }
}

static const AppdepVm *net_vm_by_addr(void *opaque, uint8_t family,
                                      const uint8_t *addr)
{
    AppdepServer *srv = opaque;
    GHashTableIter it;
    gpointer k, v;
    size_t alen = family == APPDEP_FAMILY_IPV6 ? 16 : 4;

    g_hash_table_iter_init(&it, srv->vms);
    while (g_hash_table_iter_next(&it, &k, &v)) {
        const AppdepVm *vm = v;
        unsigned i;

        for (i = 0; i < vm->naddr; i++) {
            if (vm->addrs[i].family == family &&
                !memcmp(vm->addrs[i].addr, addr, alen)) {
                return vm;
            }
        }
    }
    return NULL;
}

/* @p was closed: its later batches in @batches have nobody to tell. */
static void forget_peer(GPtrArray *batches, guint from, AppdepPeer *p)
{
    for (guint i = from; i < batches->len; i++) {
        NetBatch *b = g_ptr_array_index(batches, i);

        if (b->peer == p) {
            b->peer = NULL;
        }
    }
}

/*
 * Commit every received batch in one transaction, then feed the
 * converter and acknowledge, in arrival order.  On a store error nothing
 * is acknowledged and the daemons concerned are disconnected: they keep
 * their batches and send them again.
 */
static void net_commit(AppdepServer *srv)
{
    g_autoptr(GPtrArray) batches = srv->batches;
    g_autofree AppdepStoreRecordBatch *sb = NULL;
    guint i;
    int rc;

    if (srv->commit_src) {
        g_source_remove(srv->commit_src);
        srv->commit_src = 0;
    }
    if (!batches || !batches->len) {
        return;
    }
    /* a new array collects what arrives while peers are closed below */
    srv->batches = g_ptr_array_new_with_free_func(net_batch_free);
    srv->batch_records = 0;
    sb = g_new0(AppdepStoreRecordBatch, batches->len);
    for (i = 0; i < batches->len; i++) {
        NetBatch *b = g_ptr_array_index(batches, i);

        sb[i] = (AppdepStoreRecordBatch) {
            .recs = b->recs, .n = b->n, .host = b->host, .batch = b->batch,
        };
    }
    rc = appdep_store_put_record_batches(srv->store, sb, batches->len);
    for (i = 0; i < batches->len; i++) {
        NetBatch *b = g_ptr_array_index(batches, i);
        uint8_t ack[APPDEP_FRAME_ACK_LEN];

        if (rc < 0) {
            if (b->peer) {
                /* not acknowledged: the daemon sends it again */
                AppdepPeer *p = b->peer;

                peer_log(p, "batch %" G_GUINT64_FORMAT ": cannot store: %s",
                         b->batch, appdep_store_strerror(rc));
                peer_close(p);
                forget_peer(batches, i, p);
            }
            continue;
        }
        if (!sb[i].duplicate) {
            for (uint32_t j = 0; j < b->n; j++) {
                appdep_converter_feed(srv->conv, &b->recs[j]);
            }
            srv->records += b->n;
        }
        if (b->peer) {
            AppdepPeer *p = b->peer;

            appdep_frame_encode_ack(b->batch, ack, sizeof(ack));
            if (!peer_queue(p, ack, sizeof(ack))) {
                forget_peer(batches, i, p);         /* it was closed */
            }
        }
    }
}

static gboolean net_commit_cb(gpointer opaque)
{
    AppdepServer *srv = opaque;

    srv->commit_src = 0;
    net_commit(srv);
    return G_SOURCE_REMOVE;
}

/* Queue a batch for the group commit.  False: the peer was closed. */
static bool handle_batch(AppdepPeer *p, const uint8_t *buf, size_t len)
{
    AppdepServer *srv = p->srv;
    AppdepFrameBatch b;
    NetBatch *nb;
    uint32_t i;

    if (appdep_frame_decode_batch(buf, len, &b) < 0 || !b.batch) {
        peer_log(p, "malformed BATCH frame: disconnected");
        srv->bad_peers++;
        peer_close(p);
        return false;
    }
    nb = g_new0(NetBatch, 1);
    nb->recs = g_new(AppdepThreadRecord, b.count ?: 1);
    for (i = 0; i < b.count; i++) {
        if (appdep_frame_batch_record(&b, i, &nb->recs[i]) < 0) {
            peer_log(p, "batch %" G_GUINT64_FORMAT ": record %u is "
                     "malformed: disconnected", b.batch, i);
            net_batch_free(nb);
            srv->bad_peers++;
            peer_close(p);
            return false;
        }
    }
    nb->peer = p;
    g_strlcpy(nb->host, p->host, sizeof(nb->host));
    nb->batch = b.batch;
    nb->n = b.count;
    if (!srv->batches) {
        srv->batches = g_ptr_array_new_with_free_func(net_batch_free);
    }
    g_ptr_array_add(srv->batches, nb);
    srv->batch_records += b.count;
    if (srv->batch_records >= APPDEP_NET_GROUP_MAX_RECORDS) {
        net_commit(srv);
        return g_list_find(srv->peers, p) != NULL;
    }
    if (!srv->commit_src) {
        /* after the other ready sockets of this iteration are read */
        srv->commit_src = g_idle_add_full(G_PRIORITY_DEFAULT, net_commit_cb,
                                          srv, NULL);
    }
    return true;
}

/* Handle one complete frame.  False: the peer was closed. */
static bool handle_frame(AppdepPeer *p, uint16_t type, const uint8_t *buf,
                         size_t len)
{
    AppdepServer *srv = p->srv;

    if (type != APPDEP_WIRE_HELLO && !p->hello) {
        peer_log(p, "frame type %u before HELLO: disconnected", type);
        goto bad;
    }
    switch (type) {
    case APPDEP_WIRE_HELLO: {
        g_autofree AppdepFrameHello *h = g_new0(AppdepFrameHello, 1);

        if (appdep_frame_decode_hello(buf, len, h) < 0 ||
            h->protocol != APPDEP_FRAME_PROTOCOL || !h->host[0] ||
            (p->hello && strcmp(h->host, p->host))) {
            peer_log(p, "bad HELLO: disconnected");
            goto bad;
        }
        g_strlcpy(p->host, h->host, sizeof(p->host));
        p->hello = true;
        inventory_update(p, h);
        return true;
    }
    case APPDEP_WIRE_BATCH:
        return handle_batch(p, buf, len);
    case APPDEP_WIRE_RESULT: {
        AppdepFrameResult r;
        Command *c;

        if (appdep_frame_decode_result(buf, len, &r) < 0) {
            peer_log(p, "malformed RESULT: disconnected");
            goto bad;
        }
        c = g_hash_table_lookup(srv->commands, &r.id);
        if (c && c->peer == p) {
            command_finish(srv, c, r.status, r.message);
        }
        return true;
    }
    default:
        peer_log(p, "unexpected frame type %u: disconnected", type);
        goto bad;
    }
bad:
    srv->bad_peers++;
    peer_close(p);
    return false;
}

static gboolean peer_readable(GSocket *sock, GIOCondition cond,
                              gpointer opaque)
{
    AppdepPeer *p = opaque;
    g_autoptr(GError) err = NULL;
    gssize n;
    size_t off = 0;

    if (p->in->len >= APPDEP_FRAME_MAX_LEN) {
        peer_log(p, "frame larger than the limit: disconnected");
        p->srv->bad_peers++;
        peer_close(p);
        return G_SOURCE_REMOVE;
    }
    g_byte_array_set_size(p->in, p->in->len + APPDEP_NET_READ_CHUNK);
    n = g_socket_receive(sock, (char *)p->in->data + p->in->len -
                         APPDEP_NET_READ_CHUNK, APPDEP_NET_READ_CHUNK, NULL,
                         &err);
    if (n < 0 && g_error_matches(err, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK)) {
        g_byte_array_set_size(p->in, p->in->len - APPDEP_NET_READ_CHUNK);
        return G_SOURCE_CONTINUE;
    }
    if (n <= 0) {
        if (n < 0) {
            peer_log(p, "receive: %s", err->message);
        }
        peer_close(p);
        return G_SOURCE_REMOVE;
    }
    g_byte_array_set_size(p->in, p->in->len - APPDEP_NET_READ_CHUNK + n);

    while (p->in->len - off >= APPDEP_WIRE_HDR_LEN) {
        uint16_t type;
        uint32_t flen;
        int rc = appdep_frame_check_header(p->in->data + off,
                                           p->in->len - off, &type, &flen);

        if (rc == APPDEP_WIRE_SHORT) {
            break;
        }
        if (rc < 0 && rc != APPDEP_WIRE_BAD_TYPE) {
            peer_log(p, "bad frame header at byte %zu: disconnected", off);
            p->srv->bad_peers++;
            peer_close(p);
            return G_SOURCE_REMOVE;
        }
        if (p->in->len - off < flen) {
            break;
        }
        if (!handle_frame(p, type, p->in->data + off, flen)) {
            return G_SOURCE_REMOVE;
        }
        off += flen;
    }
    g_byte_array_remove_range(p->in, 0, off);
    return G_SOURCE_CONTINUE;
}

static gboolean on_incoming(GSocketService *svc, GSocketConnection *conn,
                            GObject *source, gpointer opaque)
{
    AppdepServer *srv = opaque;
    AppdepPeer *p = g_new0(AppdepPeer, 1);
    g_autoptr(GSocketAddress) ra = g_socket_connection_get_remote_address(
        conn, NULL);

    p->srv = srv;
    p->conn = g_object_ref(conn);
    p->sock = g_socket_connection_get_socket(conn);
    p->in = g_byte_array_new();
    p->out = g_byte_array_new();
    if (ra && G_IS_INET_SOCKET_ADDRESS(ra)) {
        g_autofree char *a = g_inet_address_to_string(
            g_inet_socket_address_get_address(G_INET_SOCKET_ADDRESS(ra)));

        g_snprintf(p->name, sizeof(p->name), "%s:%u", a,
                   g_inet_socket_address_get_port(
                       G_INET_SOCKET_ADDRESS(ra)));
    } else {
        g_strlcpy(p->name, "?", sizeof(p->name));
    }
    g_socket_set_blocking(p->sock, FALSE);
    p->in_src = g_socket_create_source(p->sock, G_IO_IN | G_IO_HUP | G_IO_ERR,
                                       NULL);
    g_source_set_callback(p->in_src, G_SOURCE_FUNC(peer_readable), p, NULL);
    g_source_attach(p->in_src, NULL);
    srv->peers = g_list_prepend(srv->peers, p);
    return TRUE;
}

int appdep_net_listen(AppdepServer *srv, const char *addr, GError **errp)
{
    g_autoptr(GSocketAddress) sa = NULL;
    GSocketService *svc;
    g_autofree char *host = NULL;
    guint16 port;
    const char *colon = addr ? strrchr(addr, ':') : NULL;
    char *end;
    unsigned long p;

    if (!colon) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                    "--listen wants HOST:PORT, not '%s'", addr);
        return -EINVAL;
    }
    p = strtoul(colon + 1, &end, 10);
    if (*end || !p || p > 65535) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                    "bad port in '%s'", addr);
        return -EINVAL;
    }
    port = p;
    host = g_strndup(addr, colon - addr);
    sa = g_inet_socket_address_new_from_string(host, port);
    if (!sa) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                    "bad address '%s' (a numeric IP address is needed)",
                    host);
        return -EINVAL;
    }
    svc = g_socket_service_new();
    if (!g_socket_listener_add_address(G_SOCKET_LISTENER(svc), sa,
                                       G_SOCKET_TYPE_STREAM,
                                       G_SOCKET_PROTOCOL_TCP, NULL, NULL,
                                       errp)) {
        g_object_unref(svc);
        return -EADDRINUSE;
    }
    g_signal_connect(svc, "incoming", G_CALLBACK(on_incoming), srv);
    g_socket_service_start(svc);
    return 0;
}

static gboolean command_timeout(gpointer opaque)
{
    Command *c = opaque;

    c->timer = 0;
    command_finish(c->peer->srv, c, -ETIMEDOUT,
                   "no answer from the forward daemon");
    return G_SOURCE_REMOVE;
}

static int net_inspect(void *srv_opaque, const char *vm, bool enable,
                       AppdepCommandDone *done, void *opaque)
{
    AppdepServer *srv = srv_opaque;
    AppdepVm *v = g_hash_table_lookup(srv->vms, vm);
    AppdepFrameCommand fc;
    uint8_t buf[APPDEP_FRAME_COMMAND_LEN];
    Command *c;

    if (!v || !v->peer) {
        return -ENOENT;
    }
    memset(&fc, 0, sizeof(fc));
    fc.id = ++srv->next_command;
    g_strlcpy(fc.vm, vm, sizeof(fc.vm));
    fc.op = enable ? APPDEP_CMD_INSPECT_ON : APPDEP_CMD_INSPECT_OFF;
    if (appdep_frame_encode_command(&fc, buf, sizeof(buf)) < 0) {
        return -EINVAL;
    }
    c = g_new0(Command, 1);
    c->id = fc.id;
    c->peer = v->peer;
    c->done = done;
    c->opaque = opaque;
    c->timer = g_timeout_add_seconds(APPDEP_NET_COMMAND_TIMEOUT_S,
                                     command_timeout, c);
    g_hash_table_insert(srv->commands, &c->id, c);
    if (!peer_queue(v->peer, buf, sizeof(buf))) {
        return 0;           /* closed: the command already failed */
    }
    return 0;
}

const AppdepInventoryOps appdep_net_inventory = {
    .vm_by_addr = net_vm_by_addr,
    .inspect = net_inspect,
};
