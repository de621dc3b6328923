/*
 * appdep-profile: extract the vmlinux ELF from a kernel image.
 *
 * A bzImage is a real-mode setup block followed by a small decompressor
 * whose payload (the compressed vmlinux) is located by the setup header's
 * payload_offset/payload_length fields (boot protocol 2.08+, see
 * Documentation/arch/x86/boot.rst). Images without that header are
 * scanned for the magics of the formats the kernel build can produce.
 *
 * Copyright (c) 2026 appdep authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <string.h>

#include <glib.h>
#include <lz4.h>
#include <lzma.h>
#include <zlib.h>
#include <zstd.h>

#include "decompress.h"
#include "profile-limits.h"

/* First output allocation; doubled as needed up to the caller's limit. */
#define APPDEP_DECOMPRESS_INITIAL_OUT   (4u * APPDEP_MIB)

/* x86 boot protocol setup header (Documentation/arch/x86/boot.rst). */
#define BZ_SETUP_SECTS_OFF      0x1f1
#define BZ_HDRS_MAGIC_OFF       0x202
#define BZ_VERSION_OFF          0x206
#define BZ_PAYLOAD_OFFSET_OFF   0x248
#define BZ_PAYLOAD_LENGTH_OFF   0x24c
#define BZ_HEADER_END           0x250
#define BZ_SECTOR_SIZE          512
#define BZ_DEFAULT_SETUP_SECTS  4
#define BZ_MIN_PAYLOAD_VERSION  0x0208

#define LZ4_LEGACY_MAGIC        0x184C2102u

static const uint8_t elf_magic[] = { 0x7f, 'E', 'L', 'F' };

typedef struct AppdepMagic {
    AppdepCompression comp;
    const uint8_t *bytes;
    size_t len;
    bool scan;          /* distinctive enough to look for in a raw scan */
} AppdepMagic;

static const uint8_t gzip_magic[] = { 0x1f, 0x8b, 0x08 };
static const uint8_t xz_magic[] = { 0xfd, '7', 'z', 'X', 'Z', 0x00 };
static const uint8_t lz4_magic[] = { 0x02, 0x21, 0x4c, 0x18 };
static const uint8_t zstd_magic[] = { 0x28, 0xb5, 0x2f, 0xfd };
static const uint8_t bzip2_magic[] = { 'B', 'Z', 'h' };
static const uint8_t lzma_magic[] = { 0x5d, 0x00, 0x00 };

static const AppdepMagic magics[] = {
    { APPDEP_COMP_GZIP, gzip_magic, sizeof(gzip_magic), true },
    { APPDEP_COMP_XZ, xz_magic, sizeof(xz_magic), true },
    { APPDEP_COMP_LZ4, lz4_magic, sizeof(lz4_magic), true },
    { APPDEP_COMP_ZSTD, zstd_magic, sizeof(zstd_magic), true },
    { APPDEP_COMP_BZIP2, bzip2_magic, sizeof(bzip2_magic), false },
    { APPDEP_COMP_LZMA, lzma_magic, sizeof(lzma_magic), false },
};

const char *appdep_compression_name(AppdepCompression c)
{
    switch (c) {
    case APPDEP_COMP_NONE:
        return "none";
    case APPDEP_COMP_GZIP:
        return "gzip";
    case APPDEP_COMP_XZ:
        return "xz";
    case APPDEP_COMP_LZMA:
        return "lzma";
    case APPDEP_COMP_LZ4:
        return "lz4";
    case APPDEP_COMP_ZSTD:
        return "zstd";
    case APPDEP_COMP_BZIP2:
        return "bzip2";
    default:
        return "unknown";
    }
}

static AppdepCompression detect_magic(const uint8_t *p, size_t len,
                                      bool scan_only)
{
    for (size_t i = 0; i < G_N_ELEMENTS(magics); i++) {
        if (scan_only && !magics[i].scan) {
            continue;
        }
        if (len >= magics[i].len &&
            !memcmp(p, magics[i].bytes, magics[i].len)) {
            return magics[i].comp;
        }
    }
    return APPDEP_COMP_UNKNOWN;
}

static uint32_t get_le32(const uint8_t *p)
{
    uint32_t v;

    memcpy(&v, p, sizeof(v));
    return GUINT32_FROM_LE(v);
}

/* Output buffer that grows by doubling up to a hard limit. */
typedef struct OutBuf {
    uint8_t *data;
    size_t len;
    size_t cap;
    size_t max;
} OutBuf;

static int outbuf_grow(OutBuf *o)
{
    size_t ncap;

    if (o->cap >= o->max) {
        return -EFBIG;
    }
    ncap = o->cap ? o->cap * 2 : APPDEP_DECOMPRESS_INITIAL_OUT;
    if (ncap > o->max || ncap < o->cap) {
        ncap = o->max;
    }
    o->data = g_realloc(o->data, ncap);
    o->cap = ncap;
    return 0;
}

/* Append @len bytes, failing with -EFBIG past the limit. */
static int outbuf_append(OutBuf *o, const uint8_t *p, size_t len)
{
    while (o->cap - o->len < len) {
        int r = outbuf_grow(o);

        if (r < 0) {
            return r;
        }
    }
    memcpy(o->data + o->len, p, len);
    o->len += len;
    return 0;
}

static int decompress_gzip(const uint8_t *in, size_t in_len, OutBuf *o,
                           const char **detail)
{
    z_stream zs = { 0 };
    size_t in_pos = 0;
    int ret = 0;

    if (inflateInit2(&zs, 16 + MAX_WBITS) != Z_OK) {
        *detail = "gzip: cannot initialise zlib";
        return -ENOMEM;
    }
    for (;;) {
        size_t room;
        int zr;

        if (o->len == o->cap && (ret = outbuf_grow(o)) < 0) {
            *detail = "gzip: output exceeds the size limit";
            break;
        }
        if (zs.avail_in == 0 && in_pos < in_len) {
            size_t chunk = MIN(in_len - in_pos, (size_t)UINT_MAX);

            zs.next_in = (Bytef *)(in + in_pos);
            zs.avail_in = chunk;
            in_pos += chunk;
        }
        room = MIN(o->cap - o->len, (size_t)UINT_MAX);
        zs.next_out = o->data + o->len;
        zs.avail_out = room;
        zr = inflate(&zs, Z_NO_FLUSH);
        o->len += room - zs.avail_out;
        if (zr == Z_STREAM_END) {
            break;
        }
        if (zr == Z_OK || zr == Z_BUF_ERROR) {
            if (zs.avail_out == 0 || zs.avail_in > 0 || in_pos < in_len) {
                continue;
            }
            *detail = "gzip: compressed stream is truncated";
        } else {
            *detail = zs.msg ? zs.msg : "gzip: compressed data is corrupt";
        }
        ret = -EBADMSG;
        break;
    }
    inflateEnd(&zs);
    return ret;
}

/* xz (.xz container) and legacy lzma (.lzma), both through liblzma. */
static int decompress_lzma(AppdepCompression c, const uint8_t *in,
                           size_t in_len, OutBuf *o, const char **detail)
{
    lzma_stream ls = LZMA_STREAM_INIT;
    lzma_ret lr;
    int ret = 0;

    if (c == APPDEP_COMP_XZ) {
        lr = lzma_stream_decoder(&ls, APPDEP_PROFILE_XZ_MEMLIMIT, 0);
    } else {
        lr = lzma_alone_decoder(&ls, APPDEP_PROFILE_XZ_MEMLIMIT);
    }
    if (lr != LZMA_OK) {
        *detail = "xz: cannot initialise liblzma";
        return -ENOMEM;
    }
    ls.next_in = in;
    ls.avail_in = in_len;
    for (;;) {
        size_t room;

        if (o->len == o->cap && (ret = outbuf_grow(o)) < 0) {
            *detail = "xz: output exceeds the size limit";
            break;
        }
        room = o->cap - o->len;
        ls.next_out = o->data + o->len;
        ls.avail_out = room;
        /* All input is present: LZMA_FINISH makes a short stream an error. */
        lr = lzma_code(&ls, LZMA_FINISH);
        o->len += room - ls.avail_out;
        if (lr == LZMA_STREAM_END) {
            break;
        }
        if (lr == LZMA_OK) {
            continue;
        }
        switch (lr) {
        case LZMA_BUF_ERROR:
            *detail = "xz: compressed stream is truncated";
            ret = -EBADMSG;
            break;
        case LZMA_MEM_ERROR:
            *detail = "xz: out of memory";
            ret = -ENOMEM;
            break;
        case LZMA_MEMLIMIT_ERROR:
            *detail = "xz: stream needs more memory than allowed";
            ret = -EBADMSG;
            break;
        case LZMA_FORMAT_ERROR:
            *detail = "xz: not an xz/lzma stream";
            ret = -EBADMSG;
            break;
        case LZMA_OPTIONS_ERROR:
            *detail = "xz: unsupported stream options";
            ret = -EBADMSG;
            break;
        default:
            *detail = "xz: compressed data is corrupt";
            ret = -EBADMSG;
            break;
        }
        break;
    }
    lzma_end(&ls);
    return ret;
}

/*
 * lz4 legacy frame (what the kernel's "lz4 -l" writes): the magic, then
 * blocks of [le32 compressed size][data], each decompressing to exactly
 * APPDEP_LZ4_LEGACY_BLOCK_SIZE bytes except the last. The format has no
 * end marker: the stream ends after a short block, at the end of the input,
 * or at a word that cannot be a block size (a bzImage's size trailer).
 */
static int decompress_lz4(const uint8_t *in, size_t in_len, OutBuf *o,
                          const char **detail)
{
    const size_t bound = LZ4_COMPRESSBOUND(APPDEP_LZ4_LEGACY_BLOCK_SIZE);
    g_autofree uint8_t *block = NULL;
    size_t pos;

    if (in_len < sizeof(lz4_magic) || get_le32(in) != LZ4_LEGACY_MAGIC) {
        *detail = "lz4: not an lz4 legacy frame";
        return -EBADMSG;
    }
    block = g_malloc(APPDEP_LZ4_LEGACY_BLOCK_SIZE);
    pos = sizeof(lz4_magic);
    while (in_len - pos >= sizeof(uint32_t)) {
        uint32_t csize = get_le32(in + pos);
        int n;
        int r;

        if (csize == LZ4_LEGACY_MAGIC) {
            /* Concatenated frames. */
            pos += sizeof(uint32_t);
            continue;
        }
        if (csize == 0 || csize > bound) {
            break;
        }
        pos += sizeof(uint32_t);
        if (csize > in_len - pos) {
            *detail = "lz4: compressed stream is truncated";
            return -EBADMSG;
        }
        n = LZ4_decompress_safe((const char *)in + pos, (char *)block,
                                (int)csize, APPDEP_LZ4_LEGACY_BLOCK_SIZE);
        if (n < 0) {
            *detail = "lz4: compressed data is corrupt";
            return -EBADMSG;
        }
        r = outbuf_append(o, block, n);
        if (r < 0) {
            *detail = "lz4: output exceeds the size limit";
            return r;
        }
        pos += csize;
        if ((size_t)n < APPDEP_LZ4_LEGACY_BLOCK_SIZE) {
            break;
        }
    }
    if (o->len == 0) {
        *detail = "lz4: stream holds no data";
        return -EBADMSG;
    }
    return 0;
}

static int decompress_zstd(const uint8_t *in, size_t in_len, OutBuf *o,
                           const char **detail)
{
    ZSTD_DCtx *dctx = ZSTD_createDCtx();
    ZSTD_inBuffer ib = { in, in_len, 0 };
    int ret = 0;

    if (!dctx) {
        *detail = "zstd: cannot initialise libzstd";
        return -ENOMEM;
    }
    for (;;) {
        ZSTD_outBuffer ob;
        size_t zr;

        if (o->len == o->cap && (ret = outbuf_grow(o)) < 0) {
            *detail = "zstd: output exceeds the size limit";
            break;
        }
        ob.dst = o->data + o->len;
        ob.size = o->cap - o->len;
        ob.pos = 0;
        zr = ZSTD_decompressStream(dctx, &ob, &ib);
        o->len += ob.pos;
        if (ZSTD_isError(zr)) {
            /* ZSTD_getErrorName() returns a static string. */
            *detail = ZSTD_getErrorName(zr);
            ret = -EBADMSG;
            break;
        }
        if (zr == 0) {
            break;      /* end of the first frame */
        }
        if (ib.pos == ib.size && ob.pos < ob.size) {
            *detail = "zstd: compressed stream is truncated";
            ret = -EBADMSG;
            break;
        }
    }
    ZSTD_freeDCtx(dctx);
    return ret;
}

int appdep_decompress_stream(AppdepCompression c,
                             const uint8_t *in, size_t in_len,
                             size_t max_out, uint8_t **out, size_t *out_len,
                             const char **detail)
{
    OutBuf o = { .max = max_out };
    const char *why = NULL;
    int ret;

    switch (c) {
    case APPDEP_COMP_GZIP:
        ret = decompress_gzip(in, in_len, &o, &why);
        break;
    case APPDEP_COMP_XZ:
    case APPDEP_COMP_LZMA:
        ret = decompress_lzma(c, in, in_len, &o, &why);
        break;
    case APPDEP_COMP_LZ4:
        ret = decompress_lz4(in, in_len, &o, &why);
        break;
    case APPDEP_COMP_ZSTD:
        ret = decompress_zstd(in, in_len, &o, &why);
        break;
    case APPDEP_COMP_BZIP2:
        why = "bzip2-compressed kernels are not supported";
        ret = -EPROTONOSUPPORT;
        break;
    default:
        why = "unknown compression format";
        ret = -EPROTONOSUPPORT;
        break;
    }
    if (ret < 0) {
        g_free(o.data);
        if (detail) {
            *detail = why;
        }
        return ret;
    }
    *out = o.data;
    *out_len = o.len;
    return 0;
}

static bool is_elf(const uint8_t *p, size_t len)
{
    return len >= sizeof(elf_magic) && !memcmp(p, elf_magic, sizeof(elf_magic));
}

/* Decompress one payload candidate and insist on an ELF result. */
static int extract_payload(AppdepCompression c, const uint8_t *in,
                           size_t in_len, size_t max_out, uint8_t **out,
                           size_t *out_len, const char **detail)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    int ret;

    ret = appdep_decompress_stream(c, in, in_len, max_out, &buf, &len, detail);
    if (ret < 0) {
        return ret;
    }
    if (!is_elf(buf, len)) {
        g_free(buf);
        if (detail) {
            *detail = "the decompressed payload is not an ELF file";
        }
        return -EBADMSG;
    }
    *out = buf;
    *out_len = len;
    return 0;
}

int appdep_kernel_extract(const uint8_t *img, size_t img_len, size_t max_out,
                          uint8_t **out, size_t *out_len,
                          AppdepCompression *comp, const char **detail)
{
    const char *first_detail = NULL;
    int first_err = 0;
    unsigned tries = 0;
    AppdepCompression c;

    if (is_elf(img, img_len)) {
        if (img_len > max_out) {
            if (detail) {
                *detail = "the ELF image exceeds the size limit";
            }
            return -EFBIG;
        }
        *out = g_memdup2(img, img_len);
        *out_len = img_len;
        if (comp) {
            *comp = APPDEP_COMP_NONE;
        }
        return 0;
    }

    if (img_len >= BZ_HEADER_END &&
        !memcmp(img + BZ_HDRS_MAGIC_OFF, "HdrS", 4) &&
        (img[BZ_VERSION_OFF] | img[BZ_VERSION_OFF + 1] << 8) >=
        BZ_MIN_PAYLOAD_VERSION) {
        size_t setup_sects = img[BZ_SETUP_SECTS_OFF];
        size_t start, avail, plen;

        if (setup_sects == 0) {
            setup_sects = BZ_DEFAULT_SETUP_SECTS;
        }
        /* Both terms are < 2^32: the sum cannot wrap a 64-bit size_t. */
        start = (setup_sects + 1) * BZ_SECTOR_SIZE +
                (size_t)get_le32(img + BZ_PAYLOAD_OFFSET_OFF);
        plen = get_le32(img + BZ_PAYLOAD_LENGTH_OFF);
        if (start >= img_len) {
            if (detail) {
                *detail = "bzImage payload lies beyond the end of the file "
                          "(truncated image?)";
            }
            return -EBADMSG;
        }
        avail = MIN(plen, img_len - start);
        c = detect_magic(img + start, avail, false);
        if (comp) {
            *comp = c;
        }
        if (c == APPDEP_COMP_UNKNOWN) {
            if (detail) {
                *detail = "bzImage payload has an unknown compression format";
            }
            return -EPROTONOSUPPORT;
        }
        return extract_payload(c, img + start, avail, max_out, out, out_len,
                               detail);
    }

    /* No setup header: try every distinctive magic, in file order. */
    for (size_t pos = 0; pos < img_len; pos++) {
        const char *why = NULL;
        int ret;

        c = detect_magic(img + pos, img_len - pos, true);
        if (c == APPDEP_COMP_UNKNOWN) {
            continue;
        }
        ret = extract_payload(c, img + pos, img_len - pos, max_out, out,
                              out_len, &why);
        if (ret == 0) {
            if (comp) {
                *comp = c;
            }
            return 0;
        }
        /* Report the first candidate's failure: later ones are likelier
         * to be stray magic bytes inside compressed data. */
        if (!first_err) {
            first_err = ret;
            first_detail = why;
            if (comp) {
                *comp = c;
            }
        }
        if (++tries >= APPDEP_PROFILE_MAX_PAYLOAD_TRIES) {
            break;
        }
    }
    if (first_err) {
        if (detail) {
            *detail = first_detail;
        }
        return first_err;
    }
    if (detail) {
        *detail = "not a kernel image: no ELF header, no bzImage header and "
                  "no compressed payload";
    }
    return -ENOEXEC;
}
