/*
 * appdep: stubs for targets built without CONFIG_APPDEP
 *
 * Copyright (c) 2026 appdep authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qapi/qapi-commands-appdep.h"
#include "monitor/hmp.h"
#include "monitor/monitor.h"
#include "hw/appdep/appdep-tcg.h"

#define APPDEP_ABSENT "appdep is not available in this QEMU binary"

void appdep_tcg_insn_start(vaddr pc)
{
}

AppdepInfo *qmp_x_query_appdep(const char *id, Error **errp)
{
    error_setg(errp, APPDEP_ABSENT);
    return NULL;
}

void qmp_x_appdep_inspect(const char *id, bool enable, Error **errp)
{
    error_setg(errp, APPDEP_ABSENT);
}

AppdepTestRecord *qmp_x_appdep_test_event(const char *id, AppdepHookKind hook,
                                          uint64_t rdi, uint64_t rsi,
                                          uint64_t rdx, uint64_t gs_base,
                                          uint64_t kernel_gs_base,
                                          bool has_rsp, uint64_t rsp,
                                          bool has_cr3, uint64_t cr3,
                                          Error **errp)
{
    error_setg(errp, APPDEP_ABSENT);
    return NULL;
}

void hmp_appdep(Monitor *mon, const QDict *qdict)
{
    monitor_printf(mon, APPDEP_ABSENT "\n");
}

void hmp_info_appdep(Monitor *mon, const QDict *qdict)
{
    monitor_printf(mon, APPDEP_ABSENT "\n");
}
