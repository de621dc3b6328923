/*
 * appdep server: an application, VM[/PROGRAM][:PORT], as the API's
 * queries and learning name it.  Pure: strings in, values out, no I/O,
 * any thread.
 *
 * Copyright (c) 2026 appdep authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef APPDEP_APPSPEC_H
#define APPDEP_APPSPEC_H

#include <glib.h>
#include <stdbool.h>
#include <stdint.h>
#include "appdep-wire.h"

/* An application: VM[/PROGRAM][:PORT]. */
typedef struct AppdepAppSpec {
    char vm[APPDEP_WIRE_VM_LEN + 1];
    char comm[APPDEP_WIRE_COMM_LEN + 1];    /* "": any program */
    uint16_t port;                          /* 0: any port */
} AppdepAppSpec;

/* The longest spec, with its NUL: VM/PROGRAM:65535. */
#define APPDEP_APPSPEC_MAX_LEN  (APPDEP_WIRE_VM_LEN + 1 + \
                                 APPDEP_WIRE_COMM_LEN + 7)

/*
 * Parse "VM[/PROGRAM][:PORT]" with VM 1..64 bytes, PROGRAM 1..16, PORT
 * 1..65535 into @app.  0, or -EINVAL / -E2BIG with *@why set to a static
 * English sentence for the client.
 */
int appdep_appspec_parse(const char *spec, AppdepAppSpec *app,
                         const char **why);

/* @app as "VM[/PROGRAM][:PORT]" into @buf of APPDEP_APPSPEC_MAX_LEN. */
void appdep_appspec_format(const AppdepAppSpec *app,
                           char buf[APPDEP_APPSPEC_MAX_LEN]);

/* A VM name as it may appear in a path: 1..64 printable bytes, no '/'. */
bool appdep_vm_name_ok(const char *name);

#endif /* APPDEP_APPSPEC_H */
