/*
 * The one log of the daemons (log.h).
 *
 * Copyright (c) 2026 appdep authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include <stdio.h>
#include <unistd.h>

#include "log.h"

/* Set once by appdep_log_init() before threads start; read-only after. */
static const char *log_prog = "appdep";
static AppdepLogLevel log_max = APPDEP_LOG_INFO;

static const char *const log_tag[] = {
    [APPDEP_LOG_ERROR] = "error: ",
    [APPDEP_LOG_WARN] = "warning: ",
    [APPDEP_LOG_INFO] = "",
    [APPDEP_LOG_DEBUG] = "debug: ",
};

void appdep_log_init(const char *prog, AppdepLogLevel max)
{
    log_prog = prog;
    log_max = max;
}

bool appdep_log_enabled(AppdepLogLevel level)
{
    return level <= log_max;
}

void appdep_log(AppdepLogLevel level, const char *fmt, ...)
{
    g_autofree char *msg = NULL;
    g_autofree char *line = NULL;
    va_list ap;

    if (!appdep_log_enabled(level)) {
        return;
    }
    va_start(ap, fmt);
    msg = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    line = g_strdup_printf("%s: %s%s\n", log_prog,
                           log_tag[level <= APPDEP_LOG_DEBUG ? level
                                   : APPDEP_LOG_DEBUG], msg);
    fputs(line, stderr);
    fflush(stderr);
}

char *appdep_log_escape(const char *s)
{
    GString *out = g_string_new(NULL);

    for (; s && *s; s++) {
        unsigned char c = *s;

        if (out->len >= APPDEP_LOG_MAX_UNTRUSTED) {
            g_string_append(out, "...");
            break;
        }
        if (c < 0x20 || c >= 0x7f || c == '\\') {
            g_string_append_printf(out, "\\x%02x", c);
        } else {
            g_string_append_c(out, c);
        }
    }
    return g_string_free(out, FALSE);
}
