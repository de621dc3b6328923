/*
 * Unit tests: kernel image decompression (scripts/profile/decompress.c):
 * round trips through every supported format, bzImage header and raw-scan
 * payload location, and clean failures on truncated, corrupt, oversized
 * and foreign input.
 *
 * Copyright (c) 2026 appdep authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include <glib.h>
#include <lz4.h>
#include <lzma.h>
#include <zlib.h>
#include <zstd.h>

#include "decompress.h"
#include "profile-limits.h"

/* Over one lz4 legacy block, so multi-block streams are exercised. */
#define TEST_PAYLOAD_LEN    (APPDEP_LZ4_LEGACY_BLOCK_SIZE + 12345)
#define TEST_MAX_OUT        (64u * APPDEP_MIB)
#define TEST_FUZZ_ROUNDS    50
/* Damaged streams are made from a prefix of the payload, to stay quick. */
#define TEST_FUZZ_LEN       (64u * 1024u)

/* bzImage setup header fields used by the fake image. */
#define BZ_SETUP_SECTS      1
#define BZ_PM_START         ((BZ_SETUP_SECTS + 1) * 512)
#define BZ_PAYLOAD_OFFSET   0x40

static GBytes *payload;

/*
 * An "ELF file": the magic, then 64-byte pieces drawn from a few random
 * ones, which every format compresses quickly but not to nothing.
 */
static GBytes *make_payload(void)
{
    uint8_t *p = g_malloc(TEST_PAYLOAD_LEN);
    uint8_t pieces[16][64];
    GRand *r = g_rand_new_with_seed(3);

    for (size_t i = 0; i < sizeof(pieces); i++) {
        pieces[i / 64][i % 64] = g_rand_int(r);
    }
    for (size_t i = 0; i < TEST_PAYLOAD_LEN; i += 64) {
        memcpy(p + i, pieces[g_rand_int_range(r, 0, 16)],
               MIN(64, TEST_PAYLOAD_LEN - i));
    }
    memcpy(p, "\x7f" "ELF", 4);
    g_rand_free(r);
    return g_bytes_new_take(p, TEST_PAYLOAD_LEN);
}

static GByteArray *compress_xz(GBytes *in)
{
    size_t len;
    const uint8_t *src = g_bytes_get_data(in, &len);
    GByteArray *out = g_byte_array_sized_new(len);
    size_t pos = 0;

    g_byte_array_set_size(out, lzma_stream_buffer_bound(len));
    g_assert_cmpint(lzma_easy_buffer_encode(1, LZMA_CHECK_CRC32, NULL, src, len,
                                            out->data, &pos, out->len),
                    ==, LZMA_OK);
    g_byte_array_set_size(out, pos);
    return out;
}

static GByteArray *compress_gzip(GBytes *in)
{
    size_t len;
    const uint8_t *src = g_bytes_get_data(in, &len);
    GByteArray *out = g_byte_array_new();
    z_stream zs = { 0 };

    g_byte_array_set_size(out, deflateBound(&zs, len) + 64);
    g_assert_cmpint(deflateInit2(&zs, 1, Z_DEFLATED, 16 + MAX_WBITS, 8,
                                 Z_DEFAULT_STRATEGY), ==, Z_OK);
    g_byte_array_set_size(out, deflateBound(&zs, len));
    zs.next_in = (Bytef *)src;
    zs.avail_in = len;
    zs.next_out = out->data;
    zs.avail_out = out->len;
    g_assert_cmpint(deflate(&zs, Z_FINISH), ==, Z_STREAM_END);
    g_byte_array_set_size(out, zs.total_out);
    deflateEnd(&zs);
    return out;
}

static GByteArray *compress_zstd(GBytes *in)
{
    size_t len;
    const uint8_t *src = g_bytes_get_data(in, &len);
    GByteArray *out = g_byte_array_new();
    size_t n;

    g_byte_array_set_size(out, ZSTD_compressBound(len));
    n = ZSTD_compress(out->data, out->len, src, len, 1);
    g_assert_false(ZSTD_isError(n));
    g_byte_array_set_size(out, n);
    return out;
}

/* lz4 legacy frame, as "lz4 -l" writes it. */
static GByteArray *compress_lz4(GBytes *in)
{
    size_t len;
    const uint8_t *src = g_bytes_get_data(in, &len);
    GByteArray *out = g_byte_array_new();
    g_autofree char *block = g_malloc(LZ4_COMPRESSBOUND(
                                          APPDEP_LZ4_LEGACY_BLOCK_SIZE));

    g_byte_array_append(out, (const uint8_t *)"\x02\x21\x4c\x18", 4);
    for (size_t pos = 0; pos < len; pos += APPDEP_LZ4_LEGACY_BLOCK_SIZE) {
        int chunk = MIN(len - pos, APPDEP_LZ4_LEGACY_BLOCK_SIZE);
        int n = LZ4_compress_default((const char *)src + pos, block, chunk,
                                     LZ4_COMPRESSBOUND(
                                         APPDEP_LZ4_LEGACY_BLOCK_SIZE));
        uint32_t le = GUINT32_TO_LE(n);

        g_assert_cmpint(n, >, 0);
        g_byte_array_append(out, (uint8_t *)&le, 4);
        g_byte_array_append(out, (uint8_t *)block, n);
    }
    return out;
}

typedef GByteArray *(*Compressor)(GBytes *in);

typedef struct Format {
    AppdepCompression comp;
    Compressor compress;
} Format;

static const Format formats[] = {
    { APPDEP_COMP_XZ, compress_xz },
    { APPDEP_COMP_GZIP, compress_gzip },
    { APPDEP_COMP_ZSTD, compress_zstd },
    { APPDEP_COMP_LZ4, compress_lz4 },
};

/* A bzImage's trailer: the decompressed size, little-endian. */
static void append_size_trailer(GByteArray *b)
{
    uint32_t le = GUINT32_TO_LE(TEST_PAYLOAD_LEN);

    g_byte_array_append(b, (uint8_t *)&le, 4);
}

static void assert_payload(const uint8_t *out, size_t out_len)
{
    g_assert_cmpuint(out_len, ==, g_bytes_get_size(payload));
    g_assert_true(!memcmp(out, g_bytes_get_data(payload, NULL), out_len));
}

static void test_round_trip(void)
{
    for (size_t i = 0; i < G_N_ELEMENTS(formats); i++) {
        g_autoptr(GByteArray) c = formats[i].compress(payload);
        g_autofree uint8_t *out = NULL;
        size_t out_len = 0;

        append_size_trailer(c);
        g_assert_cmpint(appdep_decompress_stream(formats[i].comp, c->data,
                                                 c->len, TEST_MAX_OUT, &out,
                                                 &out_len, NULL), ==, 0);
        assert_payload(out, out_len);
    }
}

static void test_truncated(void)
{
    for (size_t i = 0; i < G_N_ELEMENTS(formats); i++) {
        g_autoptr(GByteArray) c = formats[i].compress(payload);
        size_t cuts[] = { 0, 1, 5, c->len / 3, c->len / 2, c->len - 9,
                          c->len - 1 };

        for (size_t k = 0; k < G_N_ELEMENTS(cuts); k++) {
            g_autofree uint8_t *copy = g_memdup2(c->data, cuts[k]);
            uint8_t *out = NULL;
            size_t out_len = 0;
            const char *why = NULL;
            int ret;

            ret = appdep_decompress_stream(formats[i].comp, copy, cuts[k],
                                           TEST_MAX_OUT, &out, &out_len, &why);
            if (formats[i].comp == APPDEP_COMP_LZ4 && ret == 0) {
                /* lz4 legacy has no end marker: a cut at a block boundary
                 * is indistinguishable from a shorter stream. */
                g_assert_cmpuint(out_len, <, TEST_PAYLOAD_LEN);
                g_free(out);
                continue;
            }
            g_assert_cmpint(ret, ==, -EBADMSG);
            g_assert_nonnull(why);
            g_assert_null(out);
        }
    }
}

static void test_garbage(void)
{
    static const uint8_t junk[] = "this is not a compressed stream at all";

    for (size_t i = 0; i < G_N_ELEMENTS(formats); i++) {
        uint8_t *out = NULL;
        size_t out_len = 0;
        const char *why = NULL;

        g_assert_cmpint(appdep_decompress_stream(formats[i].comp, junk,
                                                 sizeof(junk), TEST_MAX_OUT,
                                                 &out, &out_len, &why),
                        ==, -EBADMSG);
        g_assert_nonnull(why);
    }
}

/* Random damage to valid streams: fail or succeed, never misbehave. */
static void test_corrupt_random(void)
{
    GRand *r = g_rand_new_with_seed(7);
    g_autoptr(GBytes) small = g_bytes_new_from_bytes(payload, 0, TEST_FUZZ_LEN);

    for (size_t i = 0; i < G_N_ELEMENTS(formats); i++) {
        g_autoptr(GByteArray) c = formats[i].compress(small);

        for (int round = 0; round < TEST_FUZZ_ROUNDS; round++) {
            g_autofree uint8_t *copy = g_memdup2(c->data, c->len);
            g_autofree uint8_t *out = NULL;
            size_t out_len = 0;
            int ret;

            for (int k = 0; k < 3; k++) {
                copy[g_rand_int_range(r, 0, c->len)] ^=
                    1 << g_rand_int_range(r, 0, 8);
            }
            ret = appdep_decompress_stream(formats[i].comp, copy, c->len,
                                           TEST_MAX_OUT, &out, &out_len, NULL);
            g_assert_true(ret == 0 || ret == -EBADMSG || ret == -EFBIG);
            if (ret == 0) {
                g_assert_cmpuint(out_len, <=, TEST_MAX_OUT);
            }
        }
    }
    g_rand_free(r);
}

static void test_size_limit(void)
{
    for (size_t i = 0; i < G_N_ELEMENTS(formats); i++) {
        g_autoptr(GByteArray) c = formats[i].compress(payload);
        uint8_t *out = NULL;
        size_t out_len = 0;

        g_assert_cmpint(appdep_decompress_stream(formats[i].comp, c->data,
                                                 c->len, APPDEP_MIB, &out,
                                                 &out_len, NULL), ==, -EFBIG);
        g_assert_null(out);
    }
}

static GByteArray *make_bzimage(GByteArray *compressed, bool header_only)
{
    GByteArray *img = g_byte_array_new();
    uint32_t v;

    g_byte_array_set_size(img, BZ_PM_START + BZ_PAYLOAD_OFFSET);
    memset(img->data, 0xcc, img->len);
    img->data[0x1f1] = BZ_SETUP_SECTS;
    memcpy(img->data + 0x202, "HdrS", 4);
    img->data[0x206] = 0x0f;        /* boot protocol 2.15 */
    img->data[0x207] = 0x02;
    v = GUINT32_TO_LE(BZ_PAYLOAD_OFFSET);
    memcpy(img->data + 0x248, &v, 4);
    v = GUINT32_TO_LE(compressed->len + 4);
    memcpy(img->data + 0x24c, &v, 4);
    if (!header_only) {
        g_byte_array_append(img, compressed->data, compressed->len);
        append_size_trailer(img);
    }
    return img;
}

static void test_bzimage(void)
{
    for (size_t i = 0; i < G_N_ELEMENTS(formats); i++) {
        g_autoptr(GByteArray) c = formats[i].compress(payload);
        g_autoptr(GByteArray) img = make_bzimage(c, false);
        g_autofree uint8_t *out = NULL;
        size_t out_len = 0;
        AppdepCompression comp = APPDEP_COMP_UNKNOWN;

        g_assert_cmpint(appdep_kernel_extract(img->data, img->len,
                                              TEST_MAX_OUT, &out, &out_len,
                                              &comp, NULL), ==, 0);
        g_assert_cmpint(comp, ==, formats[i].comp);
        assert_payload(out, out_len);
    }
}

static void test_bzimage_errors(void)
{
    g_autoptr(GByteArray) c = compress_xz(payload);
    g_autoptr(GByteArray) img = make_bzimage(c, false);
    g_autoptr(GByteArray) empty = make_bzimage(c, true);
    uint8_t *out = NULL;
    size_t out_len = 0;
    const char *why = NULL;

    /* Payload cut short. */
    g_assert_cmpint(appdep_kernel_extract(img->data, img->len / 2,
                                          TEST_MAX_OUT, &out, &out_len,
                                          NULL, &why), ==, -EBADMSG);
    g_assert_nonnull(why);
    /* File ends before the payload. */
    g_assert_cmpint(appdep_kernel_extract(empty->data, empty->len,
                                          TEST_MAX_OUT, &out, &out_len,
                                          NULL, &why), ==, -EBADMSG);
    /* Unknown compression magic. */
    img->data[BZ_PM_START + BZ_PAYLOAD_OFFSET] = 0x99;
    g_assert_cmpint(appdep_kernel_extract(img->data, img->len,
                                          TEST_MAX_OUT, &out, &out_len,
                                          NULL, &why), ==, -EPROTONOSUPPORT);
    /* bzip2: recognised, not supported. */
    memcpy(img->data + BZ_PM_START + BZ_PAYLOAD_OFFSET, "BZh9", 4);
    g_assert_cmpint(appdep_kernel_extract(img->data, img->len,
                                          TEST_MAX_OUT, &out, &out_len,
                                          NULL, &why), ==, -EPROTONOSUPPORT);
    g_assert_null(out);
}

static void test_raw_scan(void)
{
    g_autoptr(GByteArray) c = compress_zstd(payload);
    g_autoptr(GByteArray) img = g_byte_array_new();
    g_autofree uint8_t *out = NULL;
    size_t out_len = 0;
    AppdepCompression comp;

    /* A stray gzip magic with junk behind it comes first. */
    g_byte_array_append(img, (const uint8_t *)"junk\x1f\x8b\x08junkjunk", 15);
    g_byte_array_append(img, c->data, c->len);
    g_assert_cmpint(appdep_kernel_extract(img->data, img->len, TEST_MAX_OUT,
                                          &out, &out_len, &comp, NULL), ==, 0);
    g_assert_cmpint(comp, ==, APPDEP_COMP_ZSTD);
    assert_payload(out, out_len);
}

static void test_not_kernel(void)
{
    static const uint8_t text[] = "#!/bin/sh\necho hello\n";
    g_autoptr(GBytes) plain = g_bytes_new_static("no ELF here, just text", 22);
    g_autoptr(GByteArray) c = compress_xz(plain);
    uint8_t *out = NULL;
    size_t out_len = 0;
    const char *why = NULL;

    g_assert_cmpint(appdep_kernel_extract(text, sizeof(text), TEST_MAX_OUT,
                                          &out, &out_len, NULL, &why),
                    ==, -ENOEXEC);
    g_assert_nonnull(why);
    g_assert_cmpint(appdep_kernel_extract(text, 0, TEST_MAX_OUT,
                                          &out, &out_len, NULL, &why),
                    ==, -ENOEXEC);
    /* A valid stream that does not hold an ELF file. */
    g_assert_cmpint(appdep_kernel_extract(c->data, c->len, TEST_MAX_OUT,
                                          &out, &out_len, NULL, &why),
                    ==, -EBADMSG);
    g_assert_null(out);
}

static void test_elf_passthrough(void)
{
    g_autofree uint8_t *out = NULL;
    size_t out_len = 0;
    AppdepCompression comp;
    size_t len;
    const uint8_t *p = g_bytes_get_data(payload, &len);

    g_assert_cmpint(appdep_kernel_extract(p, len, TEST_MAX_OUT, &out,
                                          &out_len, &comp, NULL), ==, 0);
    g_assert_cmpint(comp, ==, APPDEP_COMP_NONE);
    assert_payload(out, out_len);
}

int main(int argc, char **argv)
{
    int ret;

    g_test_init(&argc, &argv, NULL);
    payload = make_payload();
    g_test_add_func("/decompress/round-trip", test_round_trip);
    g_test_add_func("/decompress/truncated", test_truncated);
    g_test_add_func("/decompress/garbage", test_garbage);
    g_test_add_func("/decompress/corrupt-random", test_corrupt_random);
    g_test_add_func("/decompress/size-limit", test_size_limit);
    g_test_add_func("/decompress/bzimage", test_bzimage);
    g_test_add_func("/decompress/bzimage-errors", test_bzimage_errors);
    g_test_add_func("/decompress/raw-scan", test_raw_scan);
    g_test_add_func("/decompress/not-kernel", test_not_kernel);
    g_test_add_func("/decompress/elf-passthrough", test_elf_passthrough);
    ret = g_test_run();
    g_bytes_unref(payload);
    return ret;
}
