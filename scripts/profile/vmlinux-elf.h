/*
 * appdep-profile: read the pieces of a vmlinux ELF file the profile needs
 * (sections by name, bytes at a link-time address, the GNU build-id).
 *
 * The file is untrusted: every header field is checked against the file
 * size before it is used. Errors are negative errnos:
 *   -ENOEXEC  not an x86_64 ELF file, or a corrupt header
 *   -ENOENT   no such section / address not backed by file contents
 *
 * Copyright (c) 2026 appdep authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef APPDEP_PROFILE_VMLINUX_ELF_H
#define APPDEP_PROFILE_VMLINUX_ELF_H

#include <stddef.h>
#include <stdint.h>

#include <glib.h>

typedef struct AppdepVmlinux AppdepVmlinux;

/*
 * Open the ELF file @buf[0..@len). @buf is borrowed and must outlive the
 * returned object (free with appdep_vmlinux_free()).
 */
int appdep_vmlinux_open(const uint8_t *buf, size_t len, AppdepVmlinux **out);

/*
 * Find the section called @name: set *@data and *@size (borrowed from the
 * file buffer) and, if @addr is not NULL, its link address. SHT_NOBITS sections
 * are reported as missing.
 */
int appdep_vmlinux_section(const AppdepVmlinux *v, const char *name,
                           const uint8_t **data, size_t *size,
                           uint64_t *addr);

/*
 * Point *@p at the file bytes backing [@vaddr, @vaddr + @n) through the
 * PT_LOAD program headers; the whole range must be in one segment.
 */
int appdep_vmlinux_at(const AppdepVmlinux *v, uint64_t vaddr, size_t n,
                      const uint8_t **p);

/*
 * Copy the NUL-terminated string at link address @vaddr, of at most
 * @max_len characters, into a new string *@out (g_free()). -EINVAL if it
 * is not terminated within @max_len.
 */
int appdep_vmlinux_string(const AppdepVmlinux *v, uint64_t vaddr,
                          size_t max_len, char **out);

/* The GNU build-id from the SHT_NOTE sections, as lower-case hex (g_free()). */
int appdep_vmlinux_build_id(const AppdepVmlinux *v, char **hex);

/* Free @v; NULL is accepted. */
void appdep_vmlinux_free(AppdepVmlinux *v);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(AppdepVmlinux, appdep_vmlinux_free)

#endif /* APPDEP_PROFILE_VMLINUX_ELF_H */
