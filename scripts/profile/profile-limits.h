/*
 * appdep-profile: every limit of the kernel profile tool.
 *
 * The kernel image is untrusted input: each size, count and length read
 * from it is checked against one of these before it is used.
 *
 * Copyright (c) 2026 appdep authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef APPDEP_PROFILE_LIMITS_H
#define APPDEP_PROFILE_LIMITS_H

#define APPDEP_MIB (1024u * 1024u)

/* Largest kernel image file accepted (a Debian vmlinuz is 8-15 MiB). */
#define APPDEP_PROFILE_MAX_IMAGE_SIZE       (256u * APPDEP_MIB)
/* Largest decompressed vmlinux (Debian 6.x: 53-66 MiB). */
#define APPDEP_PROFILE_MAX_VMLINUX_SIZE     (256u * APPDEP_MIB)
/* Compressed-stream magics tried when an image has no bzImage header. */
#define APPDEP_PROFILE_MAX_PAYLOAD_TRIES    64
/* Memory the xz/lzma decoder may use (the kernel uses small dictionaries). */
#define APPDEP_PROFILE_XZ_MEMLIMIT          (256u * APPDEP_MIB)
/* lz4 legacy frame: fixed decompressed block size, from the lz4 format. */
#define APPDEP_LZ4_LEGACY_BLOCK_SIZE        (8u * APPDEP_MIB)

/* kallsyms: a real kernel has 10^4..10^6 symbols. */
#define APPDEP_KALLSYMS_MIN_SYMS            256
#define APPDEP_KALLSYMS_MAX_SYMS            (4u * 1024u * 1024u)
/* Symbols per kallsyms_markers entry (the kernel's scripts/kallsyms.c). */
#define APPDEP_KALLSYMS_MARKER_STRIDE       256
/* Longest symbol name, type character included (KSYM_NAME_LEN is 512). */
#define APPDEP_KALLSYMS_MAX_NAME_LEN        512
/* Longest token of kallsyms_token_table (real ones are < 20 bytes). */
#define APPDEP_KALLSYMS_MAX_TOKEN_LEN       128
/* Alignment of every kallsyms table (ALGN is .balign 8 on 64-bit). */
#define APPDEP_KALLSYMS_ALIGN               8

/* Nesting of anonymous structs/unions followed when looking up a member. */
#define APPDEP_BTF_MAX_DEPTH                8
/* Longest linux_banner accepted. */
#define APPDEP_PROFILE_MAX_BANNER_LEN       1024
/* Longest GNU build-id accepted, in bytes. */
#define APPDEP_PROFILE_MAX_BUILD_ID_LEN     64

#endif /* APPDEP_PROFILE_LIMITS_H */
