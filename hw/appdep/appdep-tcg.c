/*
 * appdep: TCG hook provider
 *
 * At translation time, appdep_tcg_insn_start() emits a call to
 * appdep_tcg_helper() before each hooked instruction.  The helper runs
 * exactly once per execution of that instruction, before it, on the
 * vCPU thread, and never stops the VM.  Changing the hook set flushes
 * the translation cache so that no stale TB keeps (or lacks) a call.
 *
 * Lifetime: the hook set points to the object's AppdepRun.  The set is
 * swapped synchronously when arming and disarming (appdep_tcg_publish),
 * so the run, freed with call_rcu() after the object is deleted, which
 * needs inspection off, outlives every reader that can reach it.
 *
 * The helper is called with TCG_CALL_NO_WG: TCG writes the guest
 * registers back to env before the call, so env holds the arguments of
 * the hooked function.  env->eip is stale inside a TB, which is why the
 * hook kind is a constant argument.
 *
 * With CF_PCREL a TB may be reused at another virtual address that maps
 * the same physical page.  Kernel text has a single mapping, so a hook
 * never fires at an alias.
 *
 * Copyright (c) 2026 appdep authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/rcu.h"
#include "qapi/error.h"
#include "exec/exec-all.h"
#include "exec/tb-flush.h"
#include "tcg/helper-info.h"
#include "exec/helper-head.h.inc"
#include "tcg/tcg.h"
#include "tcg/tcg-op.h"
#include "cpu.h"
#include "hw/appdep/appdep.h"
#include "hw/appdep/appdep-tcg.h"

typedef struct AppdepTcgHooks {
    struct rcu_head rcu;
    AppdepRun *run;
    uint64_t addr[APPDEP_HOOK_COUNT];
} AppdepTcgHooks;

/* RCU: written by the main loop, read at translation and in the helper */
static AppdepTcgHooks *appdep_tcg_hooks;

/* vCPU thread, inside a TB. */
static void appdep_tcg_helper(CPUArchState *env, uint32_t kind)
{
    AppdepTcgHooks *h;
    AppdepRegs regs = {
        .rdi = env->regs[R_EDI],
        .rsi = env->regs[R_ESI],
        .rdx = env->regs[R_EDX],
        .rsp = env->regs[R_ESP],
        .gs_base = env->segs[R_GS].base,
        .kernel_gs_base = env->kernelgsbase,
        .cr3 = env->cr[3],
    };

    RCU_READ_LOCK_GUARD();
    h = qatomic_rcu_read(&appdep_tcg_hooks);
    /* a TB translated for an earlier set may call for another kind */
    if (h && kind < APPDEP_HOOK_COUNT && h->addr[kind]) {
        appdep_hook_fire(h->run, env_cpu(env), kind, &regs);
    }
}

static TCGHelperInfo appdep_tcg_helper_info = {
    .func = appdep_tcg_helper,
    .name = "appdep_hook",
    .flags = TCG_CALL_NO_WG,
    .typemask = dh_typemask(void, 0) | dh_typemask(env, 1) |
                dh_typemask(i32, 2),
};

void appdep_tcg_insn_start(vaddr pc)
{
    AppdepTcgHooks *h;
    unsigned i;

    RCU_READ_LOCK_GUARD();
    h = qatomic_rcu_read(&appdep_tcg_hooks);
    if (likely(!h)) {
        return;
    }
    for (i = 0; i < APPDEP_HOOK_COUNT; i++) {
        if (h->addr[i] && h->addr[i] == pc) {
            tcg_gen_call2(appdep_tcg_helper_info.func,
                          &appdep_tcg_helper_info, NULL,
                          tcgv_ptr_temp(tcg_env),
                          tcgv_i32_temp(tcg_constant_i32(i)));
            return;
        }
    }
}

/*
 * Retranslate everything: hooked TBs gain or lose the call.  Runs as
 * safe work on a vCPU thread while all vCPUs are quiescent: with one
 * vCPU, tb_flush() from the main loop would flush the code buffer under
 * the running vCPU.
 */
static void appdep_tcg_flush_work(CPUState *cs, run_on_cpu_data data)
{
    tb_flush(cs);
}

/*
 * Publish hook set @h (NULL for none) and have the translation cache
 * flushed before any vCPU runs guest code again.  Main loop, BQL.
 *
 * The swap happens here, at once, not in the safe work: that is what
 * makes object-del after a disarm safe.  Once appdep_tcg_disarm()
 * returns, no RCU reader can newly find the old set, hence its run, so
 * the grace period of the call_rcu() that frees the run (at finalize,
 * later) covers every reader that still holds it.  Were the swap left
 * to the safe work, a vCPU entering cpu_exec() after that grace period
 * but before the safe work ran would still load the old set and
 * dereference its freed run.  Until the flush, TBs translated with the
 * old set still call the helper, which finds the new set and ignores a
 * kind the set does not hook.
 */
static void appdep_tcg_publish(AppdepTcgHooks *h)
{
    AppdepTcgHooks *old = qatomic_xchg(&appdep_tcg_hooks, h);

    if (old) {
        g_free_rcu(old, rcu);
    }
    async_safe_run_on_cpu(first_cpu, appdep_tcg_flush_work, RUN_ON_CPU_NULL);
}

static bool appdep_tcg_arm(AppdepState *s, const uint64_t *addr,
                           Error **errp)
{
    AppdepTcgHooks *h = g_new0(AppdepTcgHooks, 1);

    h->run = s->run;
    memcpy(h->addr, addr, sizeof(h->addr));
    appdep_tcg_publish(h);
    return true;
}

static void appdep_tcg_disarm(AppdepState *s)
{
    appdep_tcg_publish(NULL);
}

static const AppdepHookProvider appdep_tcg = {
    .arm = appdep_tcg_arm,
    .disarm = appdep_tcg_disarm,
};

const AppdepHookProvider *appdep_tcg_provider(void)
{
    return &appdep_tcg;
}
