/*
 * Text for the APPDEP_WIRE_* statuses of the record and frame decoders
 * (hw/appdep/appdep-wire.h, frame.h, stream.h).
 *
 * Copyright (c) 2026 appdep authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef APPDEP_WIRE_STATUS_H
#define APPDEP_WIRE_STATUS_H

/*
 * Static text for an APPDEP_WIRE_* status, for log messages ("bad
 * magic", "field out of range"...); "malformed" for any other value.
 * Pure; any thread.
 */
const char *appdep_wire_status_str(int status);

#endif
