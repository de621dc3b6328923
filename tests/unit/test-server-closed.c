/*
 * libappdep-server is closed: this program links every object of the
 * library (meson link_whole) and defines nothing of its own, so any
 * reference into the executable's files (net.c, main.c) would fail the
 * link.  The API and learning reach the forward daemons only through
 * the server's AppdepInventoryOps.
 *
 * Copyright (c) 2026 appdep authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include <stdio.h>
#include "server.h"

int main(void)
{
    /* keep one reference so the link is not optimized into nothing */
    int (*volatile start)(AppdepServer *, const char *, GError **) =
        appdep_api_start;

    printf("1..1\n");
    printf("%s 1 - libappdep-server links whole without net.c\n",
           start ? "ok" : "not ok");
    return 0;
}
