/*
 * appdep-profile: extract the vmlinux ELF from a kernel image.
 *
 * Pure functions: bytes in, bytes out; nothing is printed. Every function
 * returns 0 on success or a negative errno; when it fails and @detail is
 * not NULL, *@detail is set to a static string that says why (it may quote
 * the decompression library's own message).
 *
 *   -ENOEXEC          not a kernel image (no ELF, no bzImage, no payload)
 *   -EPROTONOSUPPORT  a bzImage whose payload compression is unsupported
 *   -EBADMSG          the compressed stream is corrupt or truncated, or it
 *                     does not decompress to an ELF file
 *   -EFBIG            the output would exceed the caller's limit
 *   -ENOMEM           a decompressor could not allocate its state
 *
 * Copyright (c) 2026 appdep authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef APPDEP_PROFILE_DECOMPRESS_H
#define APPDEP_PROFILE_DECOMPRESS_H

#include <stddef.h>
#include <stdint.h>

typedef enum AppdepCompression {
    APPDEP_COMP_NONE,           /* already an ELF file */
    APPDEP_COMP_GZIP,
    APPDEP_COMP_XZ,
    APPDEP_COMP_LZMA,           /* legacy .lzma; only behind a bzImage header */
    APPDEP_COMP_LZ4,            /* lz4 legacy frame, as the kernel uses */
    APPDEP_COMP_ZSTD,
    APPDEP_COMP_BZIP2,          /* recognised, not supported */
    APPDEP_COMP_UNKNOWN,
} AppdepCompression;

/* Name of @c for messages ("xz", "lz4", ...). */
const char *appdep_compression_name(AppdepCompression c);

/*
 * Decompress one stream of format @c from @in[0..@in_len) into a new
 * buffer of at most @max_out bytes. Trailing bytes after the end of the
 * stream are ignored (a bzImage appends the decompressed size). The stream
 * must end within @in_len, else -EBADMSG ("truncated").
 * On success *@out (free with g_free()) and *@out_len are set.
 */
int appdep_decompress_stream(AppdepCompression c,
                             const uint8_t *in, size_t in_len,
                             size_t max_out, uint8_t **out, size_t *out_len,
                             const char **detail);

/*
 * Return the vmlinux ELF contained in the kernel image @img[0..@img_len):
 * an ELF file is copied as is; an x86 bzImage's payload is located through
 * its setup header (boot protocol >= 2.08) and decompressed; anything else
 * is scanned for compressed-stream magics, trying each in file order until
 * one decompresses to an ELF file. At most @max_out bytes are produced.
 * On success *@out (free with g_free()), *@out_len and, if @comp is not
 * NULL, the compression found are set.
 */
int appdep_kernel_extract(const uint8_t *img, size_t img_len, size_t max_out,
                          uint8_t **out, size_t *out_len,
                          AppdepCompression *comp, const char **detail);

#endif /* APPDEP_PROFILE_DECOMPRESS_H */
