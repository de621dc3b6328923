/*
 * appdep: the rule that chooses how hooks are installed (see the header)
 *
 * Copyright (c) 2026 appdep authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include <stdio.h>
#include <string.h>
#include "appdep-choice.h"

/* The first part of a reason that choose_syscall() completes. */
#define APPDEP_CHOICE_WHY_LEN   128

/* Write a reason or an error text into a caller's buffer (truncated). */
#define SAY(buf, len, ...) snprintf((buf), (len), __VA_ARGS__)

static const char *accel_name(AppdepAccelKind a)
{
    return a == APPDEP_ACCEL_TCG ? "TCG" : a == APPDEP_ACCEL_KVM ? "KVM"
                                                                 : "this";
}

/* The syscall layer by the accelerator's means, or an error. */
static bool choose_syscall(const AppdepChoiceInput *in, AppdepChoice *out,
                           const char *why, char *err, unsigned errlen)
{
    if (!in->syscall_available) {
        SAY(err, errlen, "%s, but the profile lacks what the syscall layer "
            "needs (do_syscall_64, its return site in entry_SYSCALL_64, "
            "socket_file_ops, file table and pt_regs offsets): make it "
            "again with this appdep-profile", why);
        return false;
    }
    if (in->accel == APPDEP_ACCEL_KVM &&
        in->syscall_points > in->debugregs) {
        SAY(err, errlen, "%s, but the syscall layer needs %u debug "
            "registers and only %u are free (a debugger holds the others)",
            why, in->syscall_points, in->debugregs);
        return false;
    }
    out->syscall_layer = true;
    out->debugregs = in->accel == APPDEP_ACCEL_KVM;
    SAY(out->reason, sizeof(out->reason), "%s: syscall layer (%u hooks) "
        "with %s", why, in->syscall_points,
        out->debugregs ? "KVM debug registers" : "TCG translation-time hooks");
    return true;
}

bool appdep_choose(const AppdepChoiceInput *in, AppdepChoice *out,
                   char *err, unsigned errlen)
{
    char why[APPDEP_CHOICE_WHY_LEN];

    memset(out, 0, sizeof(*out));
    if (in->accel == APPDEP_ACCEL_OTHER) {
        SAY(err, errlen, "appdep needs the TCG or KVM accelerator");
        return false;
    }
    switch (in->force) {
    case APPDEP_FORCE_TCG_TRANSLATE:
        if (in->accel != APPDEP_ACCEL_TCG) {
            SAY(err, errlen, "mechanism=tcg-translate needs the TCG "
                "accelerator; this VM runs %s", accel_name(in->accel));
            return false;
        }
        out->syscall_layer = false;
        out->debugregs = false;
        SAY(out->reason, sizeof(out->reason), "forced by mechanism="
            "tcg-translate: %u functions with TCG translation-time hooks",
            in->functions);
        return true;
    case APPDEP_FORCE_KVM_DEBUGREG:
        if (in->accel != APPDEP_ACCEL_KVM) {
            SAY(err, errlen, "mechanism=kvm-debugreg needs the KVM "
                "accelerator; this VM runs %s", accel_name(in->accel));
            return false;
        }
        if (in->functions > in->debugregs) {
            SAY(err, errlen, "mechanism=kvm-debugreg: %u functions to hook "
                "but only %u debug registers are free", in->functions,
                in->debugregs);
            return false;
        }
        out->debugregs = true;
        SAY(out->reason, sizeof(out->reason), "forced by mechanism="
            "kvm-debugreg: %u functions in %u free debug registers",
            in->functions, in->debugregs);
        return true;
    case APPDEP_FORCE_SYSCALL:
        return choose_syscall(in, out, "forced by mechanism=syscall", err,
                              errlen);
    case APPDEP_FORCE_AUTO:
        break;
    }
    if (in->accel == APPDEP_ACCEL_TCG) {
        SAY(out->reason, sizeof(out->reason), "TCG: %u functions with "
            "translation-time hooks (no limit on their number)",
            in->functions);
        return true;
    }
    if (in->functions <= in->debugregs) {
        out->debugregs = true;
        SAY(out->reason, sizeof(out->reason), "KVM: %u functions fit the "
            "%u free debug registers", in->functions, in->debugregs);
        return true;
    }
    SAY(why, sizeof(why), "KVM: %u functions exceed the %u free debug "
        "registers", in->functions, in->debugregs);
    return choose_syscall(in, out, why, err, errlen);
}
