/*
 * appdep: TCG translation-time hook, called from the translator loop.
 *
 * Copyright (c) 2026 appdep authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef HW_APPDEP_TCG_H
#define HW_APPDEP_TCG_H

#include "exec/vaddr.h"

/*
 * Called by translator_loop() right after an instruction's insn_start
 * op, on the vCPU thread that translates.  Emits a helper call when
 * @pc is a hooked guest address.  Without hooks it is one RCU pointer
 * load.
 */
void appdep_tcg_insn_start(vaddr pc);

#endif
