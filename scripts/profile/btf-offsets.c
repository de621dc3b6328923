/*
 * appdep-profile: struct member offsets from a kernel's BTF.
 *
 * Copyright (c) 2026 appdep authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <errno.h>
#include <limits.h>
#include <string.h>

#include <bpf/btf.h>
#include <bpf/libbpf.h>

#include "btf-offsets.h"
#include "profile-limits.h"

#define BITS_PER_BYTE   8

int appdep_btf_load(const uint8_t *data, size_t size, struct btf **out)
{
    struct btf *btf;

    if (size > UINT32_MAX) {
        return -EFBIG;
    }
    /* libbpf >= 1.0: NULL and errno on error (libbpf_get_error is gone) */
    btf = btf__new(data, (uint32_t)size);
    if (!btf) {
        return errno > 0 ? -errno : -EINVAL;
    }
    *out = btf;
    return 0;
}

/* Search @type_id's members, descending into anonymous ones. */
static int member_find(const struct btf *btf, uint32_t type_id,
                       const char *member, int depth, uint32_t *bit_offset)
{
    const struct btf_type *t = btf__type_by_id(btf, type_id);
    const struct btf_member *m;
    int ret = -ENOENT;

    if (!t || !btf_is_composite(t)) {
        return -ENOENT;
    }
    if (depth > APPDEP_BTF_MAX_DEPTH) {
        return -ELOOP;
    }
    m = btf_members(t);
    for (uint16_t i = 0; i < btf_vlen(t); i++, m++) {
        const char *name = btf__name_by_offset(btf, m->name_off);
        uint32_t bit = btf_member_bit_offset(t, i);

        if (name && name[0]) {
            if (strcmp(name, member) != 0) {
                continue;
            }
            if (btf_member_bitfield_size(t, i) != 0 || bit % BITS_PER_BYTE) {
                return -EINVAL;
            }
            *bit_offset = bit;
            return 0;
        } else {
            int sub = btf__resolve_type(btf, m->type);
            uint32_t inner;
            int r;

            if (sub < 0) {
                continue;
            }
            r = member_find(btf, sub, member, depth + 1, &inner);
            if (r == 0) {
                if (inner > UINT32_MAX - bit) {
                    return -EINVAL;
                }
                *bit_offset = bit + inner;
                return 0;
            }
            if (r != -ENOENT) {
                ret = r;
            }
        }
    }
    return ret;
}

int appdep_btf_member_offset(const struct btf *btf, const char *type,
                             const char *member, uint32_t *offset)
{
    uint32_t bit;
    int id;
    int ret;

    id = btf__find_by_name_kind(btf, type, BTF_KIND_STRUCT);
    if (id < 0) {
        id = btf__find_by_name_kind(btf, type, BTF_KIND_UNION);
    }
    if (id < 0) {
        return -ENOENT;
    }
    ret = member_find(btf, id, member, 0, &bit);
    if (ret < 0) {
        return ret;
    }
    *offset = bit / BITS_PER_BYTE;
    return 0;
}
