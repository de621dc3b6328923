/*
 * Text for the APPDEP_WIRE_* statuses (wire-status.h).
 *
 * The wording is what appdep-dump and the daemons' logs print; the tool
 * tests match some of it.
 *
 * Copyright (c) 2026 appdep authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "appdep-wire.h"
#include "wire-status.h"

const char *appdep_wire_status_str(int status)
{
    switch (status) {
    case APPDEP_WIRE_OK:
        return "ok";
    case APPDEP_WIRE_SHORT:
        return "truncated";
    case APPDEP_WIRE_BAD_MAGIC:
        return "bad magic";
    case APPDEP_WIRE_BAD_VERSION:
        return "unsupported version";
    case APPDEP_WIRE_BAD_LENGTH:
        return "bad length";
    case APPDEP_WIRE_BAD_TYPE:
        return "unknown record type";
    case APPDEP_WIRE_BAD_FIELD:
        return "field out of range";
    default:
        return "malformed";
    }
}
