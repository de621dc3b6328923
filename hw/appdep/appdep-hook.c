/*
 * appdep: the hook entry
 *
 * What runs when a hook fires: a hook provider (appdep-tcg.c,
 * appdep-kvm.c) calls appdep_hook_fire() on the vCPU thread of the hit.
 * The entry counts the hit, lets the layer the hook belongs to fill the
 * record from guest memory (appdep-syscall.c for the syscall hooks,
 * appdep-linux.c for the TCP function hooks), stamps it and pushes it
 * into the vCPU's ring (appdep-ring.c), from where the main loop drains
 * it (appdep.c).
 *
 * Everything here runs on the vCPU thread (or, for the qtest-only
 * appdep_hook_fire_test(), in the main loop under the BQL): it never
 * blocks, never allocates and never takes the BQL.  A record that
 * cannot be made or stored is counted as a drop.
 *
 * Copyright (c) 2026 appdep authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qemu/timer.h"
#include "hw/core/cpu.h"
#include "system/qtest.h"
#include "hw/appdep/appdep.h"

/*
 * Count the hit and fill @rec for it: 1 for a record, 0 when filtered
 * (not a TCP/IP event), -1 on bad guest memory (reason in *@why).
 */
static int appdep_fill(AppdepRun *run, CPUState *cs, AppdepHookKind kind,
                       const AppdepRegs *regs, AppdepThreadRecord *rec,
                       const char **why)
{
    struct timespec ts;
    int ret;

    memset(rec, 0, sizeof(*rec));
    qatomic_inc(&run->hits[kind]);
    /* the syscall layer sits above the Linux walkers, not inside them */
    if (appdep_hook_is_syscall(kind)) {
        ret = appdep_syscall_event(&run->profile, &run->kernel, cs, kind,
                                   regs, rec, why);
    } else {
        ret = appdep_linux_event(&run->profile, &run->kernel, cs, kind, regs,
                                 rec, why);
    }
    if (ret == 0) {
        qatomic_inc(&run->filtered);
        return 0;
    }
    /* Bad events take a serial too: every loss leaves a gap. */
    rec->serial = qatomic_fetch_inc(&run->serial);
    if (ret < 0) {
        qatomic_inc(&run->drop_bad_memory);
        return -1;
    }
    clock_gettime(CLOCK_REALTIME, &ts);
    rec->time_ns = ts.tv_sec * NANOSECONDS_PER_SECOND + ts.tv_nsec;
    memcpy(rec->vm, run->vm, sizeof(rec->vm));
    rec->vcpu = cs->cpu_index;
    return 1;
}

/* Queue @rec on @cs's ring, or count it as a ring-full drop. */
static void appdep_push(AppdepRun *run, CPUState *cs,
                        const AppdepThreadRecord *rec)
{
    unsigned idx = cs->cpu_index;
    AppdepRing *ring = idx < run->nrings ?
                       qatomic_load_acquire(&run->rings[idx]) : NULL;

    if (!ring || !appdep_ring_push(ring, rec)) {
        qatomic_inc(&run->drop_ring_full);
    }
}

void appdep_hook_fire(AppdepRun *run, CPUState *cs, AppdepHookKind kind,
                      const AppdepRegs *regs)
{
    AppdepThreadRecord rec;
    const char *why;
    int64_t t0;

    if (!qatomic_read(&run->armed) || kind >= APPDEP_HOOK_COUNT) {
        return;
    }
    t0 = get_clock();
    if (appdep_fill(run, cs, kind, regs, &rec, &why) > 0) {
        appdep_push(run, cs, &rec);
    }
    qatomic_add(&run->hook_ns, get_clock() - t0);
}

bool appdep_hook_fire_test(AppdepState *s, AppdepHookKind kind,
                           const AppdepRegs *regs, AppdepThreadRecord *rec,
                           Error **errp)
{
    CPUState *cs = first_cpu;
    const char *why = NULL;
    int ret;

    if (!qtest_enabled()) {
        error_setg(errp, "x-appdep-test-event is only available under qtest");
        return false;
    }
    if (!qatomic_read(&s->run->armed)) {
        error_setg(errp, "inspection is not enabled");
        return false;
    }
    if (!s->run->hooked[kind]) {
        error_setg(errp, "mechanism %s does not hook '%s'",
                   AppdepMechanism_str(s->mechanism),
                   AppdepHookKind_str(kind));
        return false;
    }
    ret = appdep_fill(s->run, cs, kind, regs, rec, &why);
    if (ret < 0) {
        error_setg(errp, "bad guest memory: %s", why);
        return false;
    }
    if (ret == 0) {
        error_setg(errp, "filtered: not a TCP/IP event");
        return false;
    }
    appdep_push(s->run, cs, rec);
    return true;
}
