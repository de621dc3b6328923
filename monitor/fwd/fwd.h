/*
 * appdep-fwd: the daemon's state and the calls between its files.
 *
 * Private to monitor/fwd/.  Everything runs on the main-loop thread (the
 * default GMainContext); nothing here is thread-safe, nothing needs to be.
 *
 * The files, bottom to top (a file calls only the ones before it):
 *   batch.c     sealed batches: numbering, the in-memory queue of
 *               unacknowledged batches, the spool policy, shutdown to spool
 *   uplink.c    the server connection: HELLO, BATCH out, ACK in,
 *               reconnect with backoff; hands COMMAND frames to the
 *               callback given to fwd_uplink_start()
 *   commands.c  the server's COMMANDs and the VMs' inspection state, over
 *               QMP (qmp.c); RESULT and HELLO go out through uplink.c
 *   records.c   the VMs' record sockets and the open batch they fill
 *   config.c    the GKeyFile configuration, checked whole before use
 *   main.c      options, signals, timers, startup and shutdown
 * The spool (spool.c) and the QMP client (qmp.c) are libraries below all
 * of them; every limit is in fwd-limits.h.
 *
 * Copyright (c) 2026 appdep authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef APPDEP_FWD_H
#define APPDEP_FWD_H

#include <gio/gio.h>
#include <stdbool.h>
#include <stdint.h>
#include "frame.h"
#include "fwd-limits.h"
#include "log.h"
#include "qmp.h"
#include "spool.h"

#define FWD_NAME                    "appdep-fwd"

typedef struct Fwd Fwd;

/* A sealed batch: a whole BATCH frame, numbered. */
typedef struct FwdBatch {
    uint64_t batch;
    uint32_t count;
    bool on_disk;               /* also in a spool file */
    size_t len;
    uint8_t *frame;
} FwdBatch;

/* A [vm NAME] of the configuration and what the daemon holds for it. */
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

/* One record connection from QEMU. */
typedef struct FwdClient {
    FwdVm *vm;
    GSocket *sock;
    GSource *src;
    uint8_t *buf;
    size_t have;
    uint64_t offset;            /* stream offset of buf[0] */
    unsigned garbage_logged;
} FwdClient;

/* A COMMAND from the server, while QEMU runs it. */
typedef struct FwdCmd {
    Fwd *fwd;
    unsigned gen;               /* server connection it came on */
    uint64_t id;
    uint8_t op;
    FwdVm *vm;
} FwdCmd;

/* What uplink.c does with a COMMAND frame it received (commands.c). */
typedef void (*FwdCommandFn)(Fwd *f, const AppdepFrameCommand *c);

struct Fwd {
    /* configuration (config.c) */
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

    /* the batch being filled (records.c) */
    uint8_t *open;
    uint32_t open_count;
    guint batch_timer;

    /* unacknowledged batches in memory, oldest first (batch.c) */
    GQueue queue;
    uint64_t queue_bytes;
    GList *unsent;              /* first link not sent on this connection */

    /* server connection (uplink.c) */
    FwdCommandFn on_command;
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
    char *last_connect_err;

    /* shutdown and timers (main.c) */
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

/* ---- small helpers, shared by every file ------------------------------- */

static inline void fwd_source_destroy(GSource **src)
{
    if (*src) {
        g_source_destroy(*src);
        g_source_unref(*src);
        *src = NULL;
    }
}

static inline void fwd_clear_timer(guint *id)
{
    if (*id) {
        g_source_remove(*id);
        *id = 0;
    }
}

/* True while a server connection is up. */
static inline bool fwd_connected(Fwd *f)
{
    return f->sock != NULL;
}

/* ---- batch.c ----------------------------------------------------------- */

/* Free a batch; NULL is fine. */
void fwd_batch_free(FwdBatch *b);

/*
 * Close the open batch (f->open, f->open_count records), number it and
 * put it in the queue or the spool; drop it, counted, if the spool is
 * full.  Logs when spooling or dropping starts.  Returns 1 when the batch
 * went to the in-memory queue (the caller wakes the writer with
 * fwd_pump()), else 0.
 */
int fwd_seal(Fwd *f);

/*
 * Load spooled batches into the queue while connected and the queue has
 * room.  Logs spool read errors and the end of a spooling episode.
 */
void fwd_refill(Fwd *f);

/*
 * Every batch <= @batch is committed: free those in memory and tell the
 * spool.  Returns 0, or the spool's -errno (appdep_spool_error() says
 * why).  Does not refill or write: the caller does.
 */
int fwd_acked(Fwd *f, uint64_t batch);

/*
 * At exit: write the unacknowledged batches held only in memory to the
 * spool, so that the next start replays them.  Logs what was saved and
 * lost.
 */
void fwd_spool_queue(Fwd *f);

/* ---- uplink.c ---------------------------------------------------------- */

/*
 * Start connecting to f->server (first attempt from the main loop, then
 * reconnecting with backoff).  COMMAND frames go to @on_command.
 */
void fwd_uplink_start(Fwd *f, FwdCommandFn on_command);

/* Write control frames first, then unsent batches, until it would block. */
void fwd_pump(Fwd *f);

/*
 * Queue a control frame (HELLO, RESULT) of @len bytes, copied, and write
 * it.  Ignored while disconnected; drops a server that does not read.
 */
void fwd_push_ctrl(Fwd *f, const uint8_t *frame, size_t len);

/* Send the inventory (HELLO) again, if connected. */
void fwd_send_hello(Fwd *f);

/*
 * Log why, close the server connection keeping every unacknowledged
 * batch, and reconnect later (or end the main loop when exiting).
 */
void fwd_server_drop(Fwd *f, const char *fmt, ...) G_GNUC_PRINTF(2, 3);

/* Close the server connection, if any; the queue is kept for a resend. */
void fwd_server_close(Fwd *f);

/* ---- commands.c -------------------------------------------------------- */

/* Start the QMP client of @vm; it reports inspection state changes. */
void fwd_vm_start_qmp(FwdVm *vm);

/* Run the server's COMMAND @c (given to fwd_uplink_start()). */
void fwd_command(Fwd *f, const AppdepFrameCommand *c);

/* ---- records.c --------------------------------------------------------- */

/*
 * Listen on @vm's record socket, replacing a stale socket file but no
 * other kind of file.  0, or -errno with *@errp set.
 */
int fwd_vm_listen(FwdVm *vm, GError **errp);

/* Stop taking records: close the listener and drain the connections. */
void fwd_vm_stop_records(FwdVm *vm);

/* Close @vm's listener and remove its socket file, if listening. */
void fwd_vm_close_listener(FwdVm *vm);

/* Free a record connection, decoding nothing more; NULL is fine. */
void fwd_client_free(FwdClient *c);

/* ---- config.c ---------------------------------------------------------- */

/*
 * Read the configuration file @path into @f (f->vms must exist).
 * Returns 0, or -EINVAL with @why naming the group and key at fault.
 */
int fwd_load_config(Fwd *f, const char *path, GString *why);

/* Free a VM and what it holds; NULL is fine. */
void fwd_vm_free(FwdVm *vm);

#endif
