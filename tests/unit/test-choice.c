/*
 * Unit tests of the rule that chooses appdep's hook mechanism
 * (hw/appdep/appdep-choice.c).
 *
 * Copyright (c) 2026 appdep authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include <glib.h>
#include "appdep-choice.h"

static AppdepChoiceInput base(AppdepAccelKind accel, AppdepForce force)
{
    return (AppdepChoiceInput) {
        .accel = accel, .force = force, .functions = 3,
        .syscall_points = 2, .syscall_available = true, .debugregs = 4,
    };
}

static bool choose(const AppdepChoiceInput *in, AppdepChoice *c, char *err)
{
    err[0] = '\0';
    return appdep_choose(in, c, err, 256);
}

static void test_tcg_auto(void)
{
    AppdepChoiceInput in = base(APPDEP_ACCEL_TCG, APPDEP_FORCE_AUTO);
    AppdepChoice c;
    char err[256];

    /* TCG has no limit: functions, however many */
    for (in.functions = 1; in.functions <= 64; in.functions *= 2) {
        g_assert_true(choose(&in, &c, err));
        g_assert_false(c.syscall_layer);
        g_assert_false(c.debugregs);
        g_assert_nonnull(strstr(c.reason, "translation-time"));
    }
}

static void test_kvm_fit(void)
{
    AppdepChoiceInput in = base(APPDEP_ACCEL_KVM, APPDEP_FORCE_AUTO);
    AppdepChoice c;
    char err[256];

    for (in.functions = 1; in.functions <= 4; in.functions++) {
        g_assert_true(choose(&in, &c, err));
        g_assert_false(c.syscall_layer);
        g_assert_true(c.debugregs);
        g_assert_nonnull(strstr(c.reason, "fit"));
    }
}

static void test_kvm_exceed(void)
{
    AppdepChoiceInput in = base(APPDEP_ACCEL_KVM, APPDEP_FORCE_AUTO);
    AppdepChoice c;
    char err[256];

    in.functions = 5;
    g_assert_true(choose(&in, &c, err));
    g_assert_true(c.syscall_layer);
    g_assert_true(c.debugregs);
    g_assert_nonnull(strstr(c.reason, "5 functions exceed the 4"));

    /* a debugger holds 2 of 4: 3 functions no longer fit, 2 points do */
    in.functions = 3;
    in.debugregs = 2;
    g_assert_true(choose(&in, &c, err));
    g_assert_true(c.syscall_layer);
    g_assert_nonnull(strstr(c.reason, "exceed the 2 free"));

    /* ...and with 1 free, nothing fits */
    in.debugregs = 1;
    g_assert_false(choose(&in, &c, err));
    g_assert_nonnull(strstr(err, "needs 2 debug registers and only 1"));

    /* the syscall layer is needed but the profile lacks it */
    in.debugregs = 2;
    in.syscall_available = false;
    g_assert_false(choose(&in, &c, err));
    g_assert_nonnull(strstr(err, "profile lacks"));
}

static void test_forced(void)
{
    AppdepChoiceInput in;
    AppdepChoice c;
    char err[256];

    in = base(APPDEP_ACCEL_TCG, APPDEP_FORCE_SYSCALL);
    g_assert_true(choose(&in, &c, err));
    g_assert_true(c.syscall_layer);
    g_assert_false(c.debugregs);
    g_assert_nonnull(strstr(c.reason, "forced by mechanism=syscall"));

    in = base(APPDEP_ACCEL_KVM, APPDEP_FORCE_SYSCALL);
    g_assert_true(choose(&in, &c, err));
    g_assert_true(c.syscall_layer);
    g_assert_true(c.debugregs);

    in = base(APPDEP_ACCEL_TCG, APPDEP_FORCE_TCG_TRANSLATE);
    g_assert_true(choose(&in, &c, err));
    g_assert_false(c.syscall_layer);
    g_assert_nonnull(strstr(c.reason, "forced"));

    in = base(APPDEP_ACCEL_KVM, APPDEP_FORCE_KVM_DEBUGREG);
    g_assert_true(choose(&in, &c, err));
    g_assert_false(c.syscall_layer);
    g_assert_true(c.debugregs);
}

static void test_forced_refused(void)
{
    AppdepChoiceInput in;
    AppdepChoice c;
    char err[256];

    in = base(APPDEP_ACCEL_KVM, APPDEP_FORCE_TCG_TRANSLATE);
    g_assert_false(choose(&in, &c, err));
    g_assert_nonnull(strstr(err, "needs the TCG accelerator; this VM runs "
                            "KVM"));

    in = base(APPDEP_ACCEL_TCG, APPDEP_FORCE_KVM_DEBUGREG);
    g_assert_false(choose(&in, &c, err));
    g_assert_nonnull(strstr(err, "needs the KVM accelerator"));

    /* forced debug registers never fall back to the syscall layer */
    in = base(APPDEP_ACCEL_KVM, APPDEP_FORCE_KVM_DEBUGREG);
    in.functions = 5;
    g_assert_false(choose(&in, &c, err));
    g_assert_nonnull(strstr(err, "5 functions to hook but only 4"));

    in = base(APPDEP_ACCEL_TCG, APPDEP_FORCE_SYSCALL);
    in.syscall_available = false;
    g_assert_false(choose(&in, &c, err));
    g_assert_nonnull(strstr(err, "profile lacks"));

    in = base(APPDEP_ACCEL_OTHER, APPDEP_FORCE_AUTO);
    g_assert_false(choose(&in, &c, err));
    g_assert_nonnull(strstr(err, "TCG or KVM"));
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/choice/tcg-auto", test_tcg_auto);
    g_test_add_func("/choice/kvm-functions-fit", test_kvm_fit);
    g_test_add_func("/choice/kvm-functions-exceed", test_kvm_exceed);
    g_test_add_func("/choice/forced", test_forced);
    g_test_add_func("/choice/forced-refused", test_forced_refused);
    return g_test_run();
}
