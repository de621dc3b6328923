/*
 * appdep: KVM hook provider (hardware debug registers)
 *
 * Each hooked address takes one x86 debug register as an instruction
 * breakpoint, in slots reserved with kvm_x86_reserve_hw_breakpoints()
 * (target/i386/kvm: gdb can neither take nor wipe them, and is told
 * that appdep holds them when it wants one).  A hit is a KVM_EXIT_DEBUG
 * that kvm.c hands to appdep_kvm_hit() on the vCPU thread before the
 * BQL is taken and before the re-inject logic: the registers come from
 * KVM_GET_REGS/KVM_GET_SREGS (no full state synchronisation), the hook
 * runs, and the vCPU resumes with RFLAGS.RF set, so the guest neither
 * stops nor sees a #DB.  No int3 is ever written into the guest.
 *
 * While appdep holds debug registers (KVM_GUESTDBG_USE_HW_BP), the
 * guest's own hardware breakpoints do not fire: KVM owns DR0-DR7.
 *
 * Copyright (c) 2026 appdep authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/rcu.h"
#include "qapi/error.h"
#include "system/kvm.h"
#include "cpu.h"
#include "kvm/kvm_i386.h"
#include "hw/appdep/appdep.h"

typedef struct AppdepKvmHooks {
    struct rcu_head rcu;
    AppdepRun *run;
    unsigned n;
    AppdepHookKind kind[APPDEP_X86_DEBUG_REGS]; /* by debug-register index */
} AppdepKvmHooks;

static AppdepKvmHooks *appdep_kvm_hooks;   /* RCU */

/*
 * The registers the hooks need, fetched lean: KVM_GET_REGS and
 * KVM_GET_SREGS, not a full state synchronisation.  When QEMU holds the
 * vCPU state (cs->vcpu_dirty, e.g. after a monitor read), it is used.
 */
static bool appdep_kvm_get_regs(CPUState *cs, struct kvm_regs *kr,
                                struct kvm_sregs *ks)
{
    CPUX86State *env = &X86_CPU(cs)->env;

    if (!cs->vcpu_dirty) {
        return !kvm_vcpu_ioctl(cs, KVM_GET_REGS, kr) &&
               !kvm_vcpu_ioctl(cs, KVM_GET_SREGS, ks);
    }
    memset(kr, 0, sizeof(*kr));
    memset(ks, 0, sizeof(*ks));
    kr->rdi = env->regs[R_EDI];
    kr->rsi = env->regs[R_ESI];
    kr->rdx = env->regs[R_EDX];
    kr->rsp = env->regs[R_ESP];
    ks->gs.base = env->segs[R_GS].base;
    ks->cr3 = env->cr[3];
    return true;
}

/*
 * Resume past the instruction breakpoint: RFLAGS.RF suppresses it for
 * one instruction, else it faults again at once.
 */
static bool appdep_kvm_set_rf(CPUState *cs, struct kvm_regs *kr)
{
    if (cs->vcpu_dirty) {
        X86_CPU(cs)->env.eflags |= RF_MASK;
        return true;
    }
    kr->rflags |= RF_MASK;
    return !kvm_vcpu_ioctl(cs, KVM_SET_REGS, kr);
}

/*
 * A debug exit for appdep's slots, bit i of @hits for the hook set's
 * i-th address (KVMHwBreakpointOwner.hit).  vCPU thread, no BQL.
 */
static bool appdep_kvm_hit(CPUState *cs, unsigned hits)
{
    AppdepKvmHooks *h;
    struct kvm_regs kr;
    struct kvm_sregs ks;
    AppdepRegs regs;
    unsigned i;

    if (!appdep_kvm_get_regs(cs, &kr, &ks)) {
        return false;
    }
    regs = (AppdepRegs) {
        .rdi = kr.rdi,
        .rsi = kr.rsi,
        .rdx = kr.rdx,
        .rsp = kr.rsp,
        .gs_base = ks.gs.base,
        /* every hook runs after swapgs: GS.base is the per-cpu base */
        .kernel_gs_base = 0,
        .cr3 = ks.cr3,
    };
    WITH_RCU_READ_LOCK_GUARD() {
        h = qatomic_rcu_read(&appdep_kvm_hooks);
        for (i = 0; h && i < h->n; i++) {
            if (hits & (1 << i)) {
                appdep_hook_fire(h->run, cs, h->kind[i], &regs);
            }
        }
    }
    return appdep_kvm_set_rf(cs, &kr);
}

/* Who holds the reserved slots, for kvm.c and gdb's error. */
static const KVMHwBreakpointOwner appdep_kvm_owner = {
    .name = "appdep",
    .how_to_free = "disable its inspection (x-appdep-inspect) to free them",
    .hit = appdep_kvm_hit,
};

static bool appdep_kvm_arm(AppdepState *s, const uint64_t *addr,
                           Error **errp)
{
    AppdepKvmHooks *h = g_new0(AppdepKvmHooks, 1);
    uint64_t dr[APPDEP_X86_DEBUG_REGS];
    unsigned i;
    int ret;

    h->run = s->run;
    for (i = 0; i < APPDEP_HOOK_COUNT; i++) {
        if (!addr[i]) {
            continue;
        }
        if (h->n == APPDEP_X86_DEBUG_REGS) {
            g_free(h);
            error_setg(errp, "more hooks than the %d debug registers",
                       APPDEP_X86_DEBUG_REGS);
            return false;
        }
        dr[h->n] = addr[i];
        h->kind[h->n++] = i;
    }
    qatomic_rcu_set(&appdep_kvm_hooks, h);
    ret = kvm_x86_reserve_hw_breakpoints(&appdep_kvm_owner, dr, h->n);
    if (ret < 0) {
        error_setg(errp, "cannot take %u debug registers: %u are free "
                   "(a debugger holds the others)", h->n,
                   kvm_x86_free_hw_breakpoints());
        qatomic_rcu_set(&appdep_kvm_hooks, NULL);
        g_free_rcu(h, rcu);
        return false;
    }
    return true;
}

/*
 * Main loop, BQL.  The hook set is unpublished before this returns, so
 * no hit that starts later can reach the run, which the object frees
 * with call_rcu() once deleted (as in appdep-tcg.c).
 */
static void appdep_kvm_disarm(AppdepState *s)
{
    AppdepKvmHooks *old;

    kvm_x86_release_hw_breakpoints();
    old = qatomic_xchg(&appdep_kvm_hooks, NULL);
    if (old) {
        g_free_rcu(old, rcu);
    }
}

static const AppdepHookProvider appdep_kvm = {
    .arm = appdep_kvm_arm,
    .disarm = appdep_kvm_disarm,
};

const AppdepHookProvider *appdep_kvm_provider(void)
{
    return &appdep_kvm;
}

unsigned appdep_kvm_free_debugregs(void)
{
    return kvm_x86_free_hw_breakpoints();
}
