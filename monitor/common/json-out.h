/*
 * The one JSON string writer of the daemons.
 *
 * Every JSON document the forward daemon, appdep-dump and the APM server
 * build by hand (bulk output: record streams, maps, trajectories) writes
 * its strings through appdep_json_str(), so one VM name renders the same
 * in every answer.  Small control answers use json-glib's JsonBuilder,
 * whose generator escapes the same way for valid UTF-8.
 *
 * Copyright (c) 2026 appdep authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef APPDEP_JSON_OUT_H
#define APPDEP_JSON_OUT_H

#include <glib.h>

/*
 * Append @s (NUL-terminated, untrusted bytes: a guest comm, a VM name from
 * a peer) to @out as a quoted JSON string.  Valid UTF-8 is kept as it is;
 * each invalid sequence becomes U+FFFD; quotes, backslashes, control
 * characters and DEL are escaped (\uXXXX).  The output is always valid
 * JSON.  Pure; any thread.
 */
void appdep_json_str(GString *out, const char *s);

#endif
