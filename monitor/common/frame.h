/*
 * appdep frames between the forward daemon and the APM server.
 *
 * Pure encode/decode functions for the frame types documented in
 * hw/appdep/appdep-wire.h (HELLO, BATCH, ACK, COMMAND, RESULT): bytes in,
 * struct out, no allocation, no I/O, no logging.  Shared by appdep-fwd
 * and appdep-server; safe to call from any thread.
 *
 * Error convention (one for the whole API):
 *   - decoders return an APPDEP_WIRE_* status (appdep-wire.h; text
 *     from appdep_wire_status_str(), wire-status.h):
 *     APPDEP_WIRE_OK, APPDEP_WIRE_SHORT (fewer bytes than the header
 *     announces: nothing consumed, call again with more), or a negative
 *     "this frame is bad" status.  On anything but APPDEP_WIRE_OK the
 *     output struct is unspecified.
 *   - encoders return the frame length in bytes (> 0), -ENOSPC when the
 *     buffer is too small, or -EINVAL when a field is out of range.
 *     They never write past @size.
 *
 * Every length read from a frame is checked, in 64-bit arithmetic, before
 * it is used; a frame is never larger than APPDEP_FRAME_MAX_LEN.
 *
 * Copyright (c) 2026 appdep authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef APPDEP_FRAME_H
#define APPDEP_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "appdep-wire.h"

/* Fixed parts of the frames (bytes, header included). */
#define APPDEP_FRAME_HELLO_FIXED_LEN    88
#define APPDEP_FRAME_BATCH_FIXED_LEN    32
#define APPDEP_FRAME_ACK_LEN            24
#define APPDEP_FRAME_COMMAND_LEN        96
#define APPDEP_FRAME_RESULT_LEN         (32 + APPDEP_FRAME_MSG_LEN)
#define APPDEP_FRAME_ADDR_LEN           20 /* one address slot of a VM entry */

/* Largest HELLO: it must fit in the frame limit too. */
#define APPDEP_FRAME_HELLO_MAX_LEN \
    (APPDEP_FRAME_HELLO_FIXED_LEN + APPDEP_FRAME_MAX_VMS * APPDEP_FRAME_VM_LEN)

typedef struct AppdepFrameAddr {
    uint8_t family;                 /* APPDEP_FAMILY_IPV4 or _IPV6 */
    uint8_t addr[16];               /* network order; IPv4 in the first 4 */
} AppdepFrameAddr;

typedef struct AppdepFrameVm {
    char vm[APPDEP_WIRE_VM_LEN + 1];
    bool enabled;                   /* inspection armed */
    uint8_t naddr;                  /* <= APPDEP_FRAME_MAX_ADDRS */
    AppdepFrameAddr addrs[APPDEP_FRAME_MAX_ADDRS];
} AppdepFrameVm;

/* HELLO: about 40 KiB; allocate it rather than put it on a small stack. */
typedef struct AppdepFrameHello {
    uint32_t protocol;              /* APPDEP_FRAME_PROTOCOL */
    char host[APPDEP_FRAME_HOST_LEN + 1];
    uint32_t nvms;                  /* <= APPDEP_FRAME_MAX_VMS */
    AppdepFrameVm vms[APPDEP_FRAME_MAX_VMS];
} AppdepFrameHello;

/*
 * A decoded BATCH.  @records points into the frame that was decoded and
 * lives as long as that buffer: @count records of APPDEP_WIRE_THREAD_LEN
 * bytes each, read them with appdep_frame_batch_record().
 */
typedef struct AppdepFrameBatch {
    uint64_t batch;
    uint32_t count;                 /* <= APPDEP_FRAME_MAX_RECORDS */
    const uint8_t *records;
} AppdepFrameBatch;

typedef struct AppdepFrameCommand {
    uint64_t id;
    char vm[APPDEP_WIRE_VM_LEN + 1];    /* never empty */
    uint8_t op;                         /* enum AppdepCommandOp */
} AppdepFrameCommand;

typedef struct AppdepFrameResult {
    uint64_t id;
    int32_t status;                     /* 0 or -errno */
    char message[APPDEP_FRAME_MSG_LEN + 1];
} AppdepFrameResult;

/* Frame sizes for a given number of entries; 0 if above the limit. */
size_t appdep_frame_hello_len(uint32_t nvms);
size_t appdep_frame_batch_len(uint32_t count);

/*
 * Check the frame header at @buf (@avail bytes available).  Returns
 * APPDEP_WIRE_OK for a known frame type whose length is consistent with
 * that type (fixed-size frames exact; HELLO and BATCH a whole number of
 * entries) and at most APPDEP_FRAME_MAX_LEN, storing type and length; or
 * APPDEP_WIRE_BAD_TYPE for a well-formed header of an unknown type (a
 * thread record is one: it is not a frame), with *@len set so that it can
 * be skipped; APPDEP_WIRE_SHORT with fewer than APPDEP_WIRE_HDR_LEN bytes;
 * any other status means the stream is not framed here.
 */
int appdep_frame_check_header(const uint8_t *buf, size_t avail,
                              uint16_t *type, uint32_t *len);

/*
 * Decoders: @buf holds @avail bytes starting at a frame header; only the
 * frame's own length is read.  They check the header (wrong frame type:
 * APPDEP_WIRE_BAD_TYPE), the counts against the length, reserved bytes
 * (must be zero: APPDEP_WIRE_BAD_FIELD) and enumerations.  HELLO with a
 * protocol other than APPDEP_FRAME_PROTOCOL: APPDEP_WIRE_BAD_VERSION.
 * The records of a BATCH are only checked for their header; decode each
 * one with appdep_frame_batch_record() so a bad record fails alone.
 */
int appdep_frame_decode_hello(const uint8_t *buf, size_t avail,
                              AppdepFrameHello *h);
int appdep_frame_decode_batch(const uint8_t *buf, size_t avail,
                              AppdepFrameBatch *b);
int appdep_frame_decode_ack(const uint8_t *buf, size_t avail,
                            uint64_t *batch);
int appdep_frame_decode_command(const uint8_t *buf, size_t avail,
                                AppdepFrameCommand *c);
int appdep_frame_decode_result(const uint8_t *buf, size_t avail,
                               AppdepFrameResult *r);

/* Record @i of a decoded batch: appdep_wire_decode_thread()'s statuses. */
int appdep_frame_batch_record(const AppdepFrameBatch *b, uint32_t i,
                              AppdepThreadRecord *r);

/*
 * Encoders: write one frame into @buf (@size bytes).  Strings longer than
 * their field are truncated, as appdep_wire_put_str() does.
 */
int appdep_frame_encode_hello(const AppdepFrameHello *h, uint8_t *buf,
                              size_t size);
int appdep_frame_encode_ack(uint64_t batch, uint8_t *buf, size_t size);
int appdep_frame_encode_command(const AppdepFrameCommand *c, uint8_t *buf,
                                size_t size);
int appdep_frame_encode_result(const AppdepFrameResult *r, uint8_t *buf,
                               size_t size);

/*
 * BATCH is built in place: appdep_frame_encode_batch_header() writes the
 * 32-byte fixed part for @count records; the caller then stores record i
 * at APPDEP_FRAME_BATCH_FIXED_LEN + i * APPDEP_WIRE_THREAD_LEN (with
 * appdep_wire_encode_thread()).  Returns the whole frame's length; @size
 * must cover the whole frame.  appdep_frame_encode_batch() does it all
 * from an array of records.
 */
int appdep_frame_encode_batch_header(uint64_t batch, uint32_t count,
                                     uint8_t *buf, size_t size);
int appdep_frame_encode_batch(uint64_t batch, const AppdepThreadRecord *recs,
                              uint32_t count, uint8_t *buf, size_t size);

#endif
