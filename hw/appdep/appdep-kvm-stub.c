/*
 * appdep: no KVM provider in a QEMU built without KVM
 *
 * Copyright (c) 2026 appdep authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "hw/appdep/appdep.h"

const AppdepHookProvider *appdep_kvm_provider(void)
{
    return NULL;
}

unsigned appdep_kvm_free_debugregs(void)
{
    return 0;
}
