/*
 * appdep-profile: recover the symbol table from a kernel's kallsyms tables.
 *
 * A stripped vmlinux has no ELF symbol table, but CONFIG_KALLSYMS puts a
 * compressed one in .rodata (the kernel's scripts/kallsyms.c). Nothing
 * points at it, so the tables are found by their shape:
 * kallsyms_token_table/_token_index (256 NUL-terminated tokens and their
 * 256 increasing u16 offsets) first,
 * then kallsyms_num_syms followed by kallsyms_names, whose group offsets
 * must equal kallsyms_markers, then kallsyms_offsets and
 * kallsyms_relative_base at the place the table order puts them.
 *
 * Two table orders exist:
 *  - "offsets first" (up to 6.3): offsets, relative_base, num_syms, names,
 *    markers, [seqs_of_names], token_table, token_index (seqs_of_names
 *    appeared in 6.2 and was backported to 6.1.y: Debian's 6.1 has it);
 *  - "offsets last" (6.4+, commit "scripts/kallsyms: change the output
 *    order"): num_syms, names, markers, token_table, token_index, offsets,
 *    relative_base, seqs_of_names.
 * Addresses are base-relative. With CONFIG_KALLSYMS_ABSOLUTE_PERCPU (x86
 * up to 6.14) a non-negative offset is an absolute value (a per-cpu
 * variable's offset in the per-cpu area) and a negative one means
 * relative_base - 1 - offset; otherwise every address is
 * relative_base + (u32)offset. The mode is recognised from the data.
 *
 * Pure functions: bytes in, table out; nothing is printed. Errors are
 * negative errnos:
 *   -ENOENT   no consistent set of kallsyms tables in the buffer
 *   -EINVAL   tables found but inconsistent (bad name, unsorted addresses)
 *
 * Copyright (c) 2026 appdep authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef APPDEP_PROFILE_KALLSYMS_H
#define APPDEP_PROFILE_KALLSYMS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <glib.h>

typedef enum AppdepKallsymsOrder {
    APPDEP_KALLSYMS_OFFSETS_FIRST,
    APPDEP_KALLSYMS_OFFSETS_LAST,
} AppdepKallsymsOrder;

typedef struct AppdepKsym {
    uint64_t addr;          /* link-time address (per-cpu: area offset) */
    char type;              /* nm-style type letter: 'T', 't', 'D', ... */
    char *name;
} AppdepKsym;

typedef struct AppdepKallsyms {
    AppdepKsym *syms;       /* in kallsyms order (sorted by address) */
    size_t num_syms;
    GHashTable *by_name;    /* name -> AppdepKsym *, first (lowest) wins */
    GStringChunk *strings;  /* private: storage of the names */

    /* Where the tables were found: offsets into the parsed buffer. */
    AppdepKallsymsOrder order;
    bool absolute_percpu;
    bool has_seqs_of_names; /* known only for the offsets-first order */
    uint64_t relative_base;
    size_t offsets_off;
    size_t relative_base_off;
    size_t num_syms_off;
    size_t names_off;
    size_t markers_off;
    size_t token_table_off;
    size_t token_index_off;
} AppdepKallsyms;

/*
 * Find and decode the kallsyms tables in @buf[0..@len). @buf must start
 * at a link address aligned to APPDEP_KALLSYMS_ALIGN (an ELF section such
 * as .rodata, or a whole vmlinux file): table positions are computed with
 * the linker's alignment relative to it.
 * On success *@out is set to a new table (free with appdep_kallsyms_free());
 * it does not reference @buf.
 */
int appdep_kallsyms_parse(const uint8_t *buf, size_t len,
                          AppdepKallsyms **out);

/* The symbol called @name, or NULL. Borrowed from @ks. */
const AppdepKsym *appdep_kallsyms_lookup(const AppdepKallsyms *ks,
                                         const char *name);

/*
 * How many distinct addresses carry the name @name (static symbols of
 * different files may share one). Linear in the table size.
 */
size_t appdep_kallsyms_count_addrs(const AppdepKallsyms *ks, const char *name);

/* Free @ks; NULL is accepted. */
void appdep_kallsyms_free(AppdepKallsyms *ks);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(AppdepKallsyms, appdep_kallsyms_free)

#endif /* APPDEP_PROFILE_KALLSYMS_H */
