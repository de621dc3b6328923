/*
 * appdep: no TCG in this build
 *
 * Copyright (c) 2026 appdep authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "hw/appdep/appdep.h"

const AppdepHookProvider *appdep_tcg_provider(void)
{
    return NULL;
}
