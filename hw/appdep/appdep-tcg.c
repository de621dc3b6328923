/*
 * appdep: TCG hook provider
 *
 * At translation time, appdep_tcg_insn_start() emits a call to
 * appdep_tcg_helper() before each hooked instruction.  The helper runs
 * exactly once per execution of that instruction, before it, on the
 * vCPU thread, and never stops the VM.  Changing the hook set flushes
 * the translation cache so that no stale TB keeps (or lacks) a call.
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
    if (h) {
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
 * Swap the hook set and flush the translation cache.  Runs as safe work
 * on a vCPU thread while all vCPUs are quiescent: with one vCPU,
 * tb_flush() from the main loop would flush the code buffer under the
 * running vCPU.
 */
static void appdep_tcg_publish_work(CPUState *cs, run_on_cpu_data data)
{
    AppdepTcgHooks *old = qatomic_xchg(&appdep_tcg_hooks, data.host_ptr);

    if (old) {
        g_free_rcu(old, rcu);
    }
    /* retranslate everything: hooked TBs gain or lose the call */
    tb_flush(cs);
}

/* Main loop, BQL.  Takes effect before any vCPU runs guest code again. */
static void appdep_tcg_publish(AppdepTcgHooks *h)
{
    async_safe_run_on_cpu(first_cpu, appdep_tcg_publish_work,
                          RUN_ON_CPU_HOST_PTR(h));
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
