/*
 * appdep server: application specs (see appspec.h).
 *
 * Copyright (c) 2026 appdep authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include <errno.h>
#include <string.h>
#include "appspec.h"

bool appdep_vm_name_ok(const char *name)
{
    size_t i, len = strnlen(name, APPDEP_WIRE_VM_LEN + 1);

    if (len == 0 || len > APPDEP_WIRE_VM_LEN) {
        return false;
    }
    for (i = 0; i < len; i++) {
        if (name[i] < 0x20 || name[i] > 0x7e || name[i] == '/') {
            return false;
        }
    }
    return true;
}

int appdep_appspec_parse(const char *spec, AppdepAppSpec *app,
                         const char **why)
{
    char buf[APPDEP_APPSPEC_MAX_LEN];
    char *colon, *slash;
    size_t len;

    memset(app, 0, sizeof(*app));
    if (!spec || !*spec) {
        *why = "empty application, want VM[/PROGRAM][:PORT]";
        return -EINVAL;
    }
    len = strnlen(spec, sizeof(buf));
    if (len >= sizeof(buf)) {
        *why = "application too long, want VM[/PROGRAM][:PORT]";
        return -E2BIG;
    }
    memcpy(buf, spec, len + 1);

    colon = strrchr(buf, ':');
    if (colon) {
        guint64 port;

        /* decimal digits only: no sign, space or suffix */
        if (!g_ascii_string_to_unsigned(colon + 1, 10, 1, 65535, &port,
                                        NULL)) {
            *why = "bad port in application, want VM[/PROGRAM][:PORT] "
                   "with PORT 1..65535";
            return -EINVAL;
        }
        app->port = port;
        *colon = '\0';
    }
    slash = strchr(buf, '/');
    if (slash) {
        size_t clen = strlen(slash + 1);
        size_t i;

        if (clen == 0 || clen > APPDEP_WIRE_COMM_LEN) {
            *why = "bad program in application: 1 to 16 bytes";
            return -EINVAL;
        }
        for (i = 0; i < clen; i++) {
            if (slash[1 + i] < 0x20 || slash[1 + i] > 0x7e ||
                slash[1 + i] == '/') {
                *why = "bad program in application: printable ASCII only";
                return -EINVAL;
            }
        }
        memcpy(app->comm, slash + 1, clen + 1);
        *slash = '\0';
    }
    if (!appdep_vm_name_ok(buf)) {
        *why = "bad VM in application: 1 to 64 printable bytes, no '/'";
        return -EINVAL;
    }
    g_strlcpy(app->vm, buf, sizeof(app->vm));
    return 0;
}

void appdep_appspec_format(const AppdepAppSpec *app,
                           char buf[APPDEP_APPSPEC_MAX_LEN])
{
    size_t len;

    g_snprintf(buf, APPDEP_APPSPEC_MAX_LEN, "%s%s%s", app->vm,
               app->comm[0] ? "/" : "", app->comm);
    if (app->port) {
        len = strlen(buf);
        g_snprintf(buf + len, APPDEP_APPSPEC_MAX_LEN - len, ":%u",
                   app->port);
    }
}
