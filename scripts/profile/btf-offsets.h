/*
 * appdep-profile: struct member offsets from a kernel's BTF.
 *
 * Errors are negative errnos:
 *   -ENOENT   no such struct, or no such member (also inside anonymous
 *             structs/unions)
 *   -EINVAL   the member is a bitfield or not byte-aligned
 *   -ELOOP    anonymous members nest deeper than APPDEP_BTF_MAX_DEPTH
 *   others    from libbpf when the BTF data is invalid
 *
 * Copyright (c) 2026 appdep authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef APPDEP_PROFILE_BTF_OFFSETS_H
#define APPDEP_PROFILE_BTF_OFFSETS_H

#include <stddef.h>
#include <stdint.h>

struct btf;

/*
 * Parse raw BTF (the contents of a .BTF section) into *@out, which owns a
 * copy of the data (free with btf__free()).
 */
int appdep_btf_load(const uint8_t *data, size_t size, struct btf **out);

/*
 * Byte offset of @member in struct (or union) @type, following anonymous
 * struct/union members, e.g. ("sock_common", "skc_daddr").
 */
int appdep_btf_member_offset(const struct btf *btf, const char *type,
                             const char *member, uint32_t *offset);

#endif /* APPDEP_PROFILE_BTF_OFFSETS_H */
