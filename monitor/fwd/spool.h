/*
 * appdep-fwd spool: BATCH frames kept on disk while the server is away.
 *
 * A spool directory holds append-only files named after the number of
 * their first batch, "%020" PRIu64 ".spool", each a plain sequence of
 * BATCH frames exactly as sent on the wire (monitor/common/frame.h), in batch
 * order; the name order of the files is the batch order.  A file is
 * deleted once every batch in it has been read back and acknowledged.
 * The file "next-batch" holds a decimal batch number no batch has used
 * yet, so numbering keeps increasing across restarts.  The total size of
 * the spool files is bounded; an append that does not fit fails.
 *
 * Errors are 0 / -errno; the functions do not log: after a failure,
 * appdep_spool_error() says what happened (file, offset, reason).
 * Main-loop thread only; disk I/O is synchronous (short appends).
 *
 * Copyright (c) 2026 appdep authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef APPDEP_SPOOL_H
#define APPDEP_SPOOL_H

#include <glib.h>
#include <stdint.h>
#include "fwd-limits.h"


typedef struct AppdepSpool AppdepSpool;

/*
 * Open (creating it if needed) the spool in @dir, bounded by @max_bytes.
 * Existing files are scanned frame by frame: a torn tail (a crash in the
 * middle of an append) is cut off, and *@repaired counts the files that
 * were cut or removed (appdep_spool_error() describes the last one).
 * *@next_batch is the first batch number free for use.  *@sp is set
 * even on failure, so that appdep_spool_error() can be read; free it.
 */
int appdep_spool_open(const char *dir, uint64_t max_bytes, AppdepSpool **sp,
                      uint64_t *next_batch, unsigned *repaired);
void appdep_spool_free(AppdepSpool *sp);

/* Text describing the last failure (owned by @sp; "" if none). */
const char *appdep_spool_error(AppdepSpool *sp);

/*
 * Persist that batch numbers below @next + APPDEP_SPOOL_BATCH_RESERVE may
 * be in use; cheap unless @next crossed the previous reservation.
 */
int appdep_spool_reserve(AppdepSpool *sp, uint64_t next);

/*
 * Append the BATCH frame @frame (@len bytes, batch number @batch, larger
 * than any appended before unless @new_file).  @new_file starts a new
 * file named after @batch, for a run of batches older than the spool's
 * tail (the daemon's unspooled batches, written at exit).  -ENOSPC when
 * it does not fit in the bound; on a write error the file is cut back.
 */
int appdep_spool_append(AppdepSpool *sp, const uint8_t *frame, size_t len,
                        uint64_t batch, bool new_file);

/*
 * Read the oldest batch not read yet into a new buffer (*@frame, g_free
 * it).  Returns 1 and fills the outputs, 0 when everything was read, or
 * -errno (a corrupt frame: -EBADMSG; the rest of that file is skipped).
 */
int appdep_spool_read(AppdepSpool *sp, uint8_t **frame, size_t *len,
                      uint64_t *batch);

/* Are there batches not read yet? */
bool appdep_spool_has_unread(AppdepSpool *sp);

/* Every batch <= @batch is committed: delete the files wholly covered. */
int appdep_spool_ack(AppdepSpool *sp, uint64_t batch);

/* Bytes in spool files, and the number of files. */
uint64_t appdep_spool_bytes(AppdepSpool *sp);
unsigned appdep_spool_files(AppdepSpool *sp);

#endif
