/*
 * appdep: the rule that chooses how hooks are installed
 *
 * Pure logic, no QEMU dependency, so that it is unit-tested outside QEMU
 * (tests/unit/test-choice.c).
 *
 * Two layers can be hooked: the kernel's TCP functions (tcp_sendmsg,
 * tcp_cleanup_rbuf, tcp_close) or the system-call layer (the entry and
 * the return of do_syscall_64, filtered by syscall number).  Two ways
 * to hook an address: a TCG translation-time helper call (any number of
 * addresses) or a KVM hardware debug register (4 on x86, minus those a
 * debugger holds).
 *
 *   TCG: translation-time hooks on the functions.
 *   KVM: debug registers on the functions when they fit, else debug
 *        registers on the syscall layer (which needs fewer).
 *   A forced mode is honoured or refused with the reason, never
 *   silently replaced.
 *
 * Copyright (c) 2026 appdep authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef HW_APPDEP_CHOICE_H
#define HW_APPDEP_CHOICE_H

#include <stdbool.h>

typedef enum AppdepAccelKind {
    APPDEP_ACCEL_TCG,
    APPDEP_ACCEL_KVM,
    APPDEP_ACCEL_OTHER,
} AppdepAccelKind;

typedef enum AppdepForce {
    APPDEP_FORCE_AUTO,
    APPDEP_FORCE_TCG_TRANSLATE,     /* function hooks, TCG */
    APPDEP_FORCE_KVM_DEBUGREG,      /* function hooks, KVM debug registers */
    APPDEP_FORCE_SYSCALL,           /* syscall layer, by either means */
} AppdepForce;

typedef struct AppdepChoiceInput {
    AppdepAccelKind accel;
    AppdepForce force;
    unsigned functions;         /* function hooks wanted */
    unsigned syscall_points;    /* hooks the syscall layer needs */
    bool syscall_available;     /* the profile has what the layer needs */
    unsigned debugregs;         /* debug registers free for appdep */
} AppdepChoiceInput;

/* Room for a reason or an error text (the longest is ~230 bytes). */
#define APPDEP_CHOICE_TEXT_LEN  256

typedef struct AppdepChoice {
    bool syscall_layer;         /* else the TCP functions */
    bool debugregs;             /* KVM debug registers, else TCG */
    char reason[APPDEP_CHOICE_TEXT_LEN];    /* why: for x-query-appdep */
} AppdepChoice;

/*
 * Choose.  Returns true and fills @out, or false with the reason in
 * @err (of @errlen bytes, APPDEP_CHOICE_TEXT_LEN is enough).
 *
 * The error is a caller's buffer rather than an Error **: this file is
 * plain C without QEMU, so that the unit test links it alone; the
 * caller (appdep.c) turns the text into an Error.
 */
bool appdep_choose(const AppdepChoiceInput *in, AppdepChoice *out,
                   char *err, unsigned errlen);

#endif
