/*
 * appdep server: per-thread records -> inter-thread records (messages).
 *
 * A connection is observed from one or both of its ends, each by the VM
 * that owns that end.  Every record says which way its bytes go: a send
 * by end X and a receive by the other end Y both carry X->Y data.  The
 * records of a connection, put in time order, form runs of one data
 * direction; each run is one *message*: its sends give the sender
 * thread, the bytes and the TCP sequence number, the receives of the
 * same sequence range give the receiver thread and the receive time.
 * The client is the end on an ephemeral port when only one is (Linux's
 * ip_local_port_range), else the end that sends the first message; its
 * messages are requests, the other end's responses.
 *
 * Records may arrive out of order across VMs: a connection's records are
 * held for a lateness window (stream time, the newest record time seen)
 * before they are turned into messages.  A close from both ends, a gap in
 * the sequence numbers or the idle timeout ends a connection, so a 4-tuple
 * reused by a later connection starts afresh.
 *
 * Pure: no I/O, no clock (time is the records' time); single-threaded.
 *
 * Copyright (c) 2026 appdep authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef APPDEP_CONVERT_H
#define APPDEP_CONVERT_H

#include <glib.h>
#include "appdep-wire.h"
#include "server-limits.h"

/* Linux's default ip_local_port_range: the ports connect() picks */
#define APPDEP_CONV_EPHEMERAL_MIN  32768
#define APPDEP_CONV_EPHEMERAL_MAX  60999

typedef struct AppdepThreadId {      /* one guest thread */
    char vm[APPDEP_WIRE_VM_LEN + 1];
    uint32_t pid, tid;
    char comm[APPDEP_WIRE_COMM_LEN + 1];
} AppdepThreadId;

typedef struct AppdepConn {          /* one TCP connection, client side first */
    uint8_t family;                  /* APPDEP_FAMILY_* */
    uint8_t caddr[16], saddr[16];    /* client, server address */
    uint16_t cport, sport;           /* client port, server (listening) port */
} AppdepConn;

enum AppdepDirection { APPDEP_DIR_REQUEST = 1, APPDEP_DIR_RESPONSE = 2 };

typedef struct AppdepMessage {       /* one inter-thread record */
    uint64_t send_ns;                /* first send of the message */
    uint64_t recv_ns;                /* last receive of it (0: not seen) */
    AppdepThreadId sender, receiver; /* tid 0: that end was not observed */
    uint8_t direction;               /* AppdepDirection */
    uint64_t bytes;
    uint32_t seq;                    /* TCP seq of its first byte */
    AppdepConn conn;
} AppdepMessage;

typedef struct AppdepConverter AppdepConverter;

/* Called for each finished message; @m lives until the call returns. */
typedef void AppdepEmitFn(const AppdepMessage *m, void *opaque);

typedef struct AppdepConvStats {
    uint64_t records;                /* fed */
    uint64_t messages;               /* emitted */
    uint64_t connections;            /* finished */
    uint64_t evicted;                /* records lost to the per-connection or
                                        connection-count caps */
} AppdepConvStats;

AppdepConverter *appdep_converter_new(AppdepEmitFn *emit, void *opaque);
void appdep_converter_free(AppdepConverter *c);    /* accepts NULL */

/* Take one per-thread record.  Messages come out of flush(). */
void appdep_converter_feed(AppdepConverter *c, const AppdepThreadRecord *r);

/*
 * Emit every message that is final: older than the lateness window
 * behind the newest record seen.  With @all, emit everything held (end
 * of stream).
 */
void appdep_converter_flush(AppdepConverter *c, bool all);

void appdep_converter_stats(const AppdepConverter *c, AppdepConvStats *st);

/* Helpers shared by the server's modules. */
bool appdep_thread_equal(const AppdepThreadId *a, const AppdepThreadId *b);

#endif
