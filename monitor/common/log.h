/*
 * The one log of the daemons: appdep-fwd, appdep-server and the tools.
 *
 * Lines go to stderr as "PROG: msg" (info), "PROG: warning: msg",
 * "PROG: error: msg" or "PROG: debug: msg"; under systemd the journal
 * adds time and level.  Text that came from a guest or a peer (a comm, a
 * VM or host name, an error string from QEMU) must pass through
 * appdep_log_escape() before it is formatted into a line, so nothing a
 * tenant controls can reach an operator's terminal as control bytes.
 *
 * Why not g_log_structured(): GLib's default writer prefixes
 * "(process:PID): DOMAIN-LEVEL **: time:" and would change every line the
 * tests and operators grep for; a writer of our own for it would be the
 * same thirty lines as this file.
 *
 * Only top-level functions (main, event-loop callbacks) log; helpers
 * return codes.
 *
 * Copyright (c) 2026 appdep authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef APPDEP_LOG_H
#define APPDEP_LOG_H

#include <glib.h>
#include <stdbool.h>

typedef enum AppdepLogLevel {
    APPDEP_LOG_ERROR,
    APPDEP_LOG_WARN,
    APPDEP_LOG_INFO,
    APPDEP_LOG_DEBUG,
} AppdepLogLevel;

/* Longest untrusted string a log line carries (escaped bytes count). */
#define APPDEP_LOG_MAX_UNTRUSTED    256

/*
 * Name the program (a static string) and the most verbose level printed
 * (default APPDEP_LOG_INFO).  Call once from main() before other threads
 * start.
 */
void appdep_log_init(const char *prog, AppdepLogLevel max);

/* True when @level would be printed.  Any thread. */
bool appdep_log_enabled(AppdepLogLevel level);

/*
 * Print one line at @level.  Any thread (one write(2) per line, so lines
 * of two threads do not interleave).
 */
void appdep_log(AppdepLogLevel level, const char *fmt, ...) G_GNUC_PRINTF(2, 3);

/*
 * A printable copy of untrusted @s for a log line: bytes outside
 * 0x20..0x7e and the backslash become \xNN; at most
 * APPDEP_LOG_MAX_UNTRUSTED output bytes, then "...".  NULL gives "".
 * Returns a string the caller g_free()s.  Pure; any thread.
 */
char *appdep_log_escape(const char *s);

#endif
