/*
 * The one byte hash of the daemons: 32-bit FNV-1a.
 *
 * Used for GHashTable keys that are fixed-size structs (addresses, message
 * ids) and inside the store's batch index.  FNV-1a is enough there: the
 * keys are short, the tables are private to one request or one batch, and
 * bench-ingest measured it faster than g_bytes_hash (which needs a GBytes
 * per key) on 12-byte keys.
 *
 * Copyright (c) 2026 appdep authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef APPDEP_HASH_H
#define APPDEP_HASH_H

#include <stddef.h>
#include <stdint.h>

#define APPDEP_FNV_OFFSET   2166136261u
#define APPDEP_FNV_PRIME    16777619u

/* Continue an FNV-1a hash @h over @len bytes at @p.  Pure. */
static inline uint32_t appdep_hash_more(uint32_t h, const void *p, size_t len)
{
    const uint8_t *b = p;
    size_t i;

    for (i = 0; i < len; i++) {
        h = (h ^ b[i]) * APPDEP_FNV_PRIME;
    }
    return h;
}

/* FNV-1a of @len bytes at @p.  Pure. */
static inline uint32_t appdep_hash_bytes(const void *p, size_t len)
{
    return appdep_hash_more(APPDEP_FNV_OFFSET, p, len);
}

#endif
