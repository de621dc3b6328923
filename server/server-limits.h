/*
 * appdep server: every named limit of the APM server, its modules and
 * appdepctl, with its reason, in one place (OpenBSD style).  Constants
 * only: any file of server/ may include it, and so may another program
 * that must agree with the server (the default ports).
 *
 * Copyright (c) 2026 appdep authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef APPDEP_SERVER_LIMITS_H
#define APPDEP_SERVER_LIMITS_H

#include <glib.h>
#include "appdep-wire.h"

/* Nanoseconds per second: every time in the server is ns since the epoch. */
#define APPDEP_NS_PER_S                 1000000000ULL

/* ---- ports and addresses ---- */

/* Forward daemons connect here (the protocol's port, appdep-wire.h). */
#define APPDEP_SERVER_PORT_DEFAULT      APPDEP_FRAME_PORT_DEFAULT
/* The HTTP API (docs/api.md); appdepctl's default. */
#define APPDEP_API_PORT_DEFAULT         7401
#define APPDEP_SERVER_LISTEN_DEFAULT \
    "127.0.0.1:" G_STRINGIFY(APPDEP_SERVER_PORT_DEFAULT)
#define APPDEP_API_LISTEN_DEFAULT \
    "127.0.0.1:" G_STRINGIFY(APPDEP_API_PORT_DEFAULT)

/* ---- main.c: the main loop ---- */

#define APPDEP_SERVER_FLUSH_MS          1000    /* converter -> store */
#define APPDEP_SERVER_MAINT_S           60      /* expiry, stale readers */
/*
 * Messages kept for a retry while the store refuses them; past this they
 * are dropped (and counted: "dropped" in /v1/status) so that a store that
 * stays broken cannot take all memory.
 */
#define APPDEP_SERVER_MAX_PENDING       1000000

/* ---- net.c: forward daemons (untrusted peers) ---- */

#define APPDEP_NET_READ_CHUNK           (1024 * 1024)   /* several frames per
                                                           read: one commit */
#define APPDEP_NET_MAX_OUT              (4 * 1024 * 1024) /* queued to one
                                                             daemon */
#define APPDEP_NET_COMMAND_TIMEOUT_S    10
/* a daemon's address:port in logs (an IPv6 address is at most 45) */
#define APPDEP_NET_PEER_NAME_LEN        64
#define APPDEP_NET_GROUP_MAX_RECORDS    (64 * 1024)     /* commit at once
                                                           past this */

/* ---- convert.c: per-thread records -> messages ---- */

#define APPDEP_CONV_LATENESS_NS         (2ULL * APPDEP_NS_PER_S)
#define APPDEP_CONV_IDLE_NS             (30ULL * APPDEP_NS_PER_S)
#define APPDEP_CONV_MAX_CONNS           65536
#define APPDEP_CONV_MAX_EVENTS          4096    /* per connection */
#define APPDEP_CONV_COMPACT             256     /* consumed events kept at
                                                   most */
/* distinct threads of a connection's held events, before a compaction */
#define APPDEP_CONV_MAX_THREADS         (2 * APPDEP_CONV_MAX_EVENTS)

/* ---- trajectory.c, query.c ---- */

#define APPDEP_TRAJ_MAX_DEPTH           32
#define APPDEP_TRAJ_MAX_NODES           100000
#define APPDEP_QUERY_MAX_THREADS        4096    /* threads read for one tree */

/* ---- store ---- */

#define APPDEP_STORE_DEFAULT_MAP_SIZE   (64ULL << 20)   /* 64 MiB */
#define APPDEP_STORE_DEFAULT_MAX_MAP    (64ULL << 30)   /* 64 GiB */
#define APPDEP_STORE_MIN_MAP_SIZE       (64ULL << 10)   /* 64 KiB */
#define APPDEP_STORE_MAX_READERS        126
#define APPDEP_STORE_EXPIRE_CHUNK       8192    /* messages per txn */
#define APPDEP_STORE_MAX_GROW_RETRIES   64      /* MDB_MAP_FULL retries */
#define APPDEP_STORE_KNOWN_MAX          (1u << 20)  /* threads cached as
                                                       listed */

/* ---- the HTTP API: what a client may send (requests are untrusted) ---- */

#define APPDEP_API_MAX_URL_LEN          512     /* path, without query */
#define APPDEP_API_MAX_QUERY_ARGS       8
#define APPDEP_API_MAX_ARG_LEN          256     /* one query key or value */
#define APPDEP_API_MAX_BODY_LEN         4096
#define APPDEP_API_MAX_DISCARD          (1024 * 1024) /* of a too large body,
                                                         then hang up */
#define APPDEP_API_CONN_MEMORY          (32 * 1024) /* request line+headers */
#define APPDEP_API_MAX_CONNECTIONS      64
#define APPDEP_API_CONN_TIMEOUT_S       30      /* idle client */

/* ---- the HTTP API: what the server does for one request ---- */

#define APPDEP_API_INSPECT_TIMEOUT_S    10      /* wait for a daemon RESULT */
#define APPDEP_API_DEFAULT_WINDOW_NS    (3600ULL * APPDEP_NS_PER_S)
/*
 * Trajectory queries read this much before and after their window: the
 * requests the involved threads were already serving (thread pools,
 * event loops) and children ending after the window.  A request longer
 * than the margin can be attributed wrongly; margin_s changes it.
 */
#define APPDEP_API_TRAJ_MARGIN_S        10
#define APPDEP_API_TRAJ_MAX_MARGIN_S    3600
#define APPDEP_API_MAX_MESSAGES         500000  /* loaded by one query */
#define APPDEP_API_DEFAULT_TRAJ_LIMIT   20
#define APPDEP_API_MAX_TRAJ_LIMIT       1000

/* ---- learn.c: the learning phase ---- */

#define APPDEP_LEARN_MAX_ROUNDS         8
#define APPDEP_LEARN_DEFAULT_WINDOW_S   30
#define APPDEP_LEARN_MIN_WINDOW_S       1
#define APPDEP_LEARN_MAX_WINDOW_S       3600
#define APPDEP_LEARN_LOOKBACK_S         300     /* history read before start */
#define APPDEP_LEARN_MAX_SCAN           200000  /* messages read per round */
#define APPDEP_LEARN_SCAN_CHUNK         20000   /* messages per store read */
#define APPDEP_LEARN_MAX_PEERS          1024    /* peer addresses per session */
#define APPDEP_LEARN_MAX_LOG            256     /* log lines kept */
#define APPDEP_LEARN_MAX_SESSIONS       32      /* kept, oldest finished go */
#define APPDEP_LEARN_MAX_RUNNING        4

/* ---- appdepctl ---- */

#define APPDEP_CTL_TIMEOUT_S            60      /* connect, and each
                                                   read/write */
#define APPDEP_CTL_MAX_RESPONSE         (256 * 1024 * 1024)
#define APPDEP_CTL_READ_CHUNK           65536
#define APPDEP_CTL_POLL_MS              500     /* learn progress */

#endif /* APPDEP_SERVER_LIMITS_H */
