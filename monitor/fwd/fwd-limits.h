/*
 * appdep-fwd: every named limit and default of the forward daemon.
 *
 * Frame and record limits are not here: the APM server shares them, so
 * they live in hw/appdep/appdep-wire.h and monitor/common/frame.h.
 *
 * Copyright (c) 2026 appdep authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef APPDEP_FWD_LIMITS_H
#define APPDEP_FWD_LIMITS_H

#include "appdep-wire.h"

/* Configuration defaults and bounds ([fwd] group, config.c). */
#define APPDEP_FWD_DEFAULT_PORT         APPDEP_FRAME_PORT_DEFAULT
#define APPDEP_FWD_DEFAULT_SPOOL_MAX    (256ULL * 1024 * 1024)
#define APPDEP_FWD_DEFAULT_QUEUE_MAX    (16ULL * 1024 * 1024)
#define APPDEP_FWD_DEFAULT_BATCH_RECORDS 1024
#define APPDEP_FWD_DEFAULT_BATCH_MS     100
#define APPDEP_FWD_DEFAULT_STATUS_S     60
#define APPDEP_FWD_MAX_BATCH_MS         600000
#define APPDEP_FWD_MAX_STATUS_S         86400

/* Server connection (uplink.c). */
#define APPDEP_FWD_CONNECT_TIMEOUT_S    5
#define APPDEP_FWD_BACKOFF_MIN_MS       200
#define APPDEP_FWD_BACKOFF_MAX_MS       5000
#define APPDEP_FWD_ACK_TIMEOUT_MS       30000   /* sent batches, no ACK: drop */
#define APPDEP_FWD_SERVER_RBUF          256     /* ACK and COMMAND fit */
#define APPDEP_FWD_MAX_CTRL             256     /* queued HELLO/RESULT frames */

/* Timers and shutdown (main.c). */
#define APPDEP_FWD_EXIT_WAIT_MS         3000
#define APPDEP_FWD_TICK_MS              1000

/* Record streams from QEMU (records.c). */
#define APPDEP_FWD_REC_BUF              (64 * 1024)
#define APPDEP_FWD_READS_PER_DISPATCH   8
#define APPDEP_FWD_MAX_CLIENTS          4       /* record connections per VM */
/* Garbage log lines per connection; further garbage is only counted. */
#define APPDEP_FWD_GARBAGE_LOG_MAX      10

/* The QMP client (qmp.c). */
#define APPDEP_QMP_TIMEOUT_MS           5000    /* per exchange */
#define APPDEP_QMP_MAX_LINE             (1024 * 1024)
#define APPDEP_QMP_MAX_PENDING          32      /* queued commands per client */
#define APPDEP_QMP_BACKOFF_MIN_MS       500
#define APPDEP_QMP_BACKOFF_MAX_MS       30000
#define APPDEP_QMP_READ_CHUNK           4096    /* bytes per recv() */

/* The spool (spool.c). */
/* A spool file is closed for appending beyond this size. */
#define APPDEP_SPOOL_FILE_MAX           (16 * 1024 * 1024)
/* Batch numbers persisted this far ahead of the one in use. */
#define APPDEP_SPOOL_BATCH_RESERVE      4096
/* Bytes read from the "next-batch" state file. */
#define APPDEP_SPOOL_STATE_MAX          32

#endif
