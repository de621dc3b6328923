/*
 * appdep record streams: resynchronising decoder and JSON rendering.
 *
 * Pure functions, shared by appdep-dump, the forward daemon and the
 * server.  A stream is untrusted: garbage is reported with its byte
 * offset and skipped up to the next valid header.
 *
 * Copyright (c) 2026 appdep authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef APPDEP_STREAM_H
#define APPDEP_STREAM_H

#include <glib.h>
#include "appdep-wire.h"

enum AppdepStreamResult {
    APPDEP_STREAM_RECORD = 1,   /* *rec filled, *consumed bytes used */
    APPDEP_STREAM_NEED_MORE = 0,/* nothing consumed; call again with more */
    APPDEP_STREAM_SKIP = -1,    /* *consumed bytes of garbage; *why says why */
};

/*
 * Decode the next item from @buf (@len bytes).  @eof says no more bytes
 * will follow, so a partial record is garbage rather than "need more".
 * Never reads outside @buf.  *@why is a static string.
 */
int appdep_stream_next(const uint8_t *buf, size_t len, bool eof,
                       AppdepThreadRecord *rec, size_t *consumed,
                       const char **why);

/* Append @r as one JSON object (no newline) to @out. */
void appdep_record_to_json(const AppdepThreadRecord *r, GString *out);

/* Text of an address with its NUL: INET6_ADDRSTRLEN (46), rounded up. */
#define APPDEP_ADDR_STR_LEN 48

/* Render an address of @family (APPDEP_FAMILY_*) into @buf (>= 46 bytes). */
const char *appdep_addr_to_str(uint8_t family, const uint8_t *addr,
                               char *buf, size_t size);

#endif
