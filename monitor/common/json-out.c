/*
 * The one JSON string writer of the daemons (json-out.h).
 *
 * Copyright (c) 2026 appdep authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "json-out.h"

void appdep_json_str(GString *out, const char *s)
{
    g_autofree char *fixed = NULL;
    const unsigned char *p;

    if (!g_utf8_validate(s, -1, NULL)) {
        fixed = g_utf8_make_valid(s, -1);
        s = fixed;
    }
    g_string_append_c(out, '"');
    for (p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\') {
            g_string_append_c(out, '\\');
            g_string_append_c(out, *p);
        } else if (*p < 0x20 || *p == 0x7f) {
            g_string_append_printf(out, "\\u%04x", *p);
        } else {
            g_string_append_c(out, *p);
        }
    }
    g_string_append_c(out, '"');
}
