/*
 * appdep: QMP and HMP commands
 *
 * Copyright (c) 2026 appdep authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qapi/qapi-commands-appdep.h"
#include "qobject/qdict.h"
#include "monitor/hmp.h"
#include "monitor/monitor.h"
#include "hw/appdep/appdep.h"

AppdepInfo *qmp_x_query_appdep(const char *id, Error **errp)
{
    AppdepState *s = appdep_find(id, errp);

    return s ? appdep_info(s) : NULL;
}

void qmp_x_appdep_inspect(const char *id, bool enable, Error **errp)
{
    AppdepState *s = appdep_find(id, errp);

    if (!s) {
        return;
    }
    if (enable) {
        appdep_arm(s, APPDEP_INSPECT_REASON_COMMAND, errp);
    } else {
        appdep_disarm(s, APPDEP_INSPECT_REASON_COMMAND, errp);
    }
}

static char *appdep_addr_str(uint8_t family, const uint8_t *a)
{
    char buf[INET6_ADDRSTRLEN];

    inet_ntop(family == APPDEP_FAMILY_IPV6 ? AF_INET6 : AF_INET, a, buf,
              sizeof(buf));
    return g_strdup(buf);
}

AppdepTestRecord *qmp_x_appdep_test_event(const char *id, AppdepHookKind hook,
                                          uint64_t rdi, uint64_t rsi,
                                          uint64_t rdx, uint64_t gs_base,
                                          uint64_t kernel_gs_base,
                                          bool has_rsp, uint64_t rsp,
                                          bool has_cr3, uint64_t cr3,
                                          Error **errp)
{
    AppdepState *s = appdep_find(id, errp);
    AppdepRegs regs = {
        .rdi = rdi, .rsi = rsi, .rdx = rdx,
        .gs_base = gs_base, .kernel_gs_base = kernel_gs_base,
        .rsp = has_rsp ? rsp : 0, .cr3 = has_cr3 ? cr3 : 0,
    };
    AppdepThreadRecord rec;
    AppdepTestRecord *r;

    if (!s || !appdep_hook_fire_test(s, hook, &regs, &rec, errp)) {
        return NULL;
    }
    r = g_new0(AppdepTestRecord, 1);
    r->op = rec.op == APPDEP_OP_SEND ? APPDEP_RECORD_OP_SEND :
            rec.op == APPDEP_OP_RECV ? APPDEP_RECORD_OP_RECV :
                                       APPDEP_RECORD_OP_CLOSE;
    r->pid = rec.pid;
    r->tid = rec.tid;
    r->comm = g_strdup(rec.comm);
    r->family = rec.family;
    r->saddr = appdep_addr_str(rec.family, rec.saddr);
    r->sport = rec.sport;
    r->daddr = appdep_addr_str(rec.family, rec.daddr);
    r->dport = rec.dport;
    r->bytes = rec.bytes;
    r->seq = rec.seq;
    return r;
}

void hmp_appdep(Monitor *mon, const QDict *qdict)
{
    Error *err = NULL;

    qmp_x_appdep_inspect(NULL, qdict_get_bool(qdict, "state"), &err);
    hmp_handle_error(mon, err);
}

void hmp_info_appdep(Monitor *mon, const QDict *qdict)
{
    Error *err = NULL;
    g_autoptr(AppdepInfo) info = qmp_x_query_appdep(NULL, &err);
    AppdepHookInfoList *h;

    if (hmp_handle_error(mon, err)) {
        return;
    }
    monitor_printf(mon, "appdep %s: vm %s, inspection %s, mechanism %s\n",
                   info->id, info->vm, info->enabled ? "on" : "off",
                   AppdepMechanism_str(info->mechanism));
    if (info->mechanism_reason) {
        monitor_printf(mon, "  mechanism chosen: %s\n",
                       info->mechanism_reason);
    }
    monitor_printf(mon, "  profile: %s\n", info->profile_banner);
    if (info->enabled) {
        monitor_printf(mon, "  kernel:  %s\n  KASLR slide: 0x%" PRIx64 "\n",
                       info->banner, info->kaslr_slide);
    }
    for (h = info->hooks; h; h = h->next) {
        monitor_printf(mon, "  hook %-18s 0x%016" PRIx64 " hits %" PRIu64
                       "\n", h->value->function, h->value->address,
                       h->value->hits);
    }
    monitor_printf(mon, "  records: emitted %" PRIu64 ", filtered %" PRIu64
                   ", dropped %" PRIu64 " (ring full %" PRIu64
                   ", no consumer %" PRIu64 ", bad guest memory %" PRIu64
                   ")\n", info->records_emitted, info->records_filtered,
                   info->records_dropped, info->drops->ring_full,
                   info->drops->no_consumer, info->drops->bad_guest_memory);
    monitor_printf(mon, "  time in hooks: %" PRIu64 " us\n",
                   info->hook_ns / 1000);
}
