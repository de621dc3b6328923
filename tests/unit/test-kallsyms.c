/*
 * Unit tests: the kallsyms table finder/decoder (scripts/profile/kallsyms.c)
 * on synthetic tables in both table orders and both address modes, and on
 * truncated and corrupted copies of them (which must fail cleanly).
 *
 * Copyright (c) 2026 appdep authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <errno.h>
#include <string.h>

#include <glib.h>

#include "kallsyms.h"
#include "profile-limits.h"

#define TEST_NUM_SYMS       1000
#define TEST_NUM_PERCPU     5
#define TEST_RELATIVE_BASE  0xffffffff81000000ull
#define TEST_LONG_NAME_LEN  300
#define TEST_FUZZ_ROUNDS    400
#define NUM_TOKENS          256

typedef struct TestSym {
    char type;
    char *name;
    uint64_t addr;
} TestSym;

typedef struct TestTables {
    TestSym syms[TEST_NUM_SYMS];
    char *tokens[NUM_TOKENS];
    GByteArray *blob;
    /* Where the builder put things, to aim corruptions. */
    size_t names_off;
    size_t markers_off;
    size_t offsets_off;
    size_t token_index_off;
} TestTables;

/* Multi-character tokens for the codes that are not printable characters. */
static const char *const multi_tokens[] = {
    "tcp_", "sys_", "__x64_", "send", "msg", "init", "_task", "current",
    "linux_", "banner", "Ttcp_", "ttcp_", "sym_", "00", "_", "Dsym_",
};

static void build_tokens(TestTables *t)
{
    unsigned next_multi = 0;

    for (int c = 0; c < NUM_TOKENS; c++) {
        if (c > ' ' && c < 0x7f) {
            t->tokens[c] = g_strdup_printf("%c", c);
        } else if (next_multi < G_N_ELEMENTS(multi_tokens)) {
            t->tokens[c] = g_strdup(multi_tokens[next_multi++]);
        } else {
            t->tokens[c] = g_strdup_printf("z%02x", c);
        }
    }
}

/* Greedy encoding of "<type><name>" with the longest matching token. */
static GByteArray *encode_name(const TestTables *t, const char *s)
{
    GByteArray *out = g_byte_array_new();

    while (*s) {
        int best = (unsigned char)*s;
        size_t best_len = 1;

        for (int c = 0; c < NUM_TOKENS; c++) {
            size_t l = strlen(t->tokens[c]);

            if (l > best_len && !strncmp(s, t->tokens[c], l)) {
                best = c;
                best_len = l;
            }
        }
        if (best_len == 1) {
            g_assert_true(*s > ' ' && *s < 0x7f);
        }
        g_byte_array_append(out, (uint8_t[]){ best }, 1);
        s += best_len;
    }
    return out;
}

static void build_syms(TestTables *t, bool percpu)
{
    uint64_t addr = TEST_RELATIVE_BASE;

    for (int i = 0; i < TEST_NUM_SYMS; i++) {
        TestSym *s = &t->syms[i];

        if (percpu && i < TEST_NUM_PERCPU) {
            s->type = 'D';
            s->addr = 0x1000 * i + (i == TEST_NUM_PERCPU - 1 ? 0x1fb80 : 0);
            s->name = g_strdup(i == TEST_NUM_PERCPU - 1 ? "current_task"
                                                        : "percpu_var");
            continue;
        }
        s->type = i % 3 ? 't' : 'T';
        s->addr = addr;
        addr += 16 * (i % 7);        /* duplicates addresses too */
        if (i == TEST_NUM_SYMS / 2) {
            s->name = g_strdup("tcp_sendmsg");
        } else if (i == TEST_NUM_SYMS / 3) {
            s->name = g_strnfill(TEST_LONG_NAME_LEN, 'q');
        } else if (i == TEST_NUM_SYMS - 1) {
            s->name = g_strdup("linux_banner");
        } else {
            s->name = g_strdup_printf("sym_%05d", i);
        }
    }
}

static void put(GByteArray *b, const void *p, size_t len)
{
    g_byte_array_append(b, p, len);
}

static void put_u32(GByteArray *b, uint32_t v)
{
    v = GUINT32_TO_LE(v);
    put(b, &v, sizeof(v));
}

static void put_u64(GByteArray *b, uint64_t v)
{
    v = GUINT64_TO_LE(v);
    put(b, &v, sizeof(v));
}

static void put_align(GByteArray *b)
{
    static const uint8_t zero[APPDEP_KALLSYMS_ALIGN];

    put(b, zero, (APPDEP_KALLSYMS_ALIGN - b->len % APPDEP_KALLSYMS_ALIGN) %
        APPDEP_KALLSYMS_ALIGN);
}

static void put_junk(GByteArray *b, size_t len, uint32_t seed)
{
    GRand *r = g_rand_new_with_seed(seed);

    for (size_t i = 0; i < len; i++) {
        g_byte_array_append(b, (uint8_t[]){ g_rand_int(r) }, 1);
    }
    g_rand_free(r);
}

static void put_offsets(TestTables *t, GByteArray *b, bool percpu)
{
    put_align(b);
    t->offsets_off = b->len;
    for (int i = 0; i < TEST_NUM_SYMS; i++) {
        uint64_t a = t->syms[i].addr;
        int64_t off;

        if (percpu) {
            off = a < TEST_RELATIVE_BASE
                  ? (int64_t)a : -(int64_t)(a - TEST_RELATIVE_BASE) - 1;
        } else {
            off = a - TEST_RELATIVE_BASE;
        }
        put_u32(b, (uint32_t)off);
    }
    put_align(b);
    put_u64(b, TEST_RELATIVE_BASE);
}

static void put_names_markers(TestTables *t, GByteArray *b)
{
    g_autoptr(GArray) markers = g_array_new(FALSE, FALSE, sizeof(uint32_t));

    put_align(b);
    put_u32(b, TEST_NUM_SYMS);
    put_align(b);
    t->names_off = b->len;
    for (int i = 0; i < TEST_NUM_SYMS; i++) {
        g_autofree char *full = g_strdup_printf("%c%s", t->syms[i].type,
                                                t->syms[i].name);
        g_autoptr(GByteArray) enc = encode_name(t, full);

        if (i % APPDEP_KALLSYMS_MARKER_STRIDE == 0) {
            uint32_t m = b->len - t->names_off;

            g_array_append_val(markers, m);
        }
        if (enc->len > 0x7f) {
            put(b, (uint8_t[]){ (enc->len & 0x7f) | 0x80, enc->len >> 7 }, 2);
        } else {
            put(b, (uint8_t[]){ enc->len }, 1);
        }
        put(b, enc->data, enc->len);
    }
    put_align(b);
    t->markers_off = b->len;
    for (guint i = 0; i < markers->len; i++) {
        put_u32(b, g_array_index(markers, uint32_t, i));
    }
}

static void put_seqs(GByteArray *b)
{
    put_align(b);
    for (int i = 0; i < TEST_NUM_SYMS; i++) {
        put(b, (uint8_t[]){ i >> 16, i >> 8, i }, 3);
    }
}

static void put_tokens(TestTables *t, GByteArray *b)
{
    uint16_t index[NUM_TOKENS];
    size_t start;

    put_align(b);
    start = b->len;
    for (int c = 0; c < NUM_TOKENS; c++) {
        index[c] = b->len - start;
        put(b, t->tokens[c], strlen(t->tokens[c]) + 1);
    }
    put_align(b);
    t->token_index_off = b->len;
    for (int c = 0; c < NUM_TOKENS; c++) {
        uint16_t v = GUINT16_TO_LE(index[c]);

        put(b, &v, sizeof(v));
    }
}

typedef enum TestLayout {
    LAYOUT_FIRST,           /* offsets first, no seqs_of_names (<= 6.1) */
    LAYOUT_FIRST_SEQS,      /* offsets first, seqs (6.2, Debian 6.1.y) */
    LAYOUT_LAST,            /* offsets last (6.4+) */
} TestLayout;

static TestTables *tables_new(TestLayout layout, bool percpu)
{
    TestTables *t = g_new0(TestTables, 1);
    GByteArray *b = g_byte_array_new();

    build_tokens(t);
    build_syms(t, percpu);
    put_junk(b, 77, 1);
    if (layout != LAYOUT_LAST) {
        put_offsets(t, b, percpu);
    }
    put_names_markers(t, b);
    if (layout == LAYOUT_FIRST_SEQS) {
        put_seqs(b);
    }
    put_tokens(t, b);
    if (layout == LAYOUT_LAST) {
        put_offsets(t, b, percpu);
        put_seqs(b);
    }
    put_junk(b, 123, 2);
    t->blob = b;
    return t;
}

static void tables_free(TestTables *t)
{
    for (int i = 0; i < TEST_NUM_SYMS; i++) {
        g_free(t->syms[i].name);
    }
    for (int c = 0; c < NUM_TOKENS; c++) {
        g_free(t->tokens[c]);
    }
    g_byte_array_unref(t->blob);
    g_free(t);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC(TestTables, tables_free)

static void assert_tables_equal(const TestTables *t, const AppdepKallsyms *ks)
{
    g_assert_cmpuint(ks->num_syms, ==, TEST_NUM_SYMS);
    for (int i = 0; i < TEST_NUM_SYMS; i++) {
        g_assert_cmpstr(ks->syms[i].name, ==, t->syms[i].name);
        g_assert_cmpint(ks->syms[i].type, ==, t->syms[i].type);
        g_assert_cmphex(ks->syms[i].addr, ==, t->syms[i].addr);
    }
}

static void check_layout(TestLayout layout, bool percpu)
{
    g_autoptr(TestTables) t = tables_new(layout, percpu);
    g_autoptr(AppdepKallsyms) ks = NULL;
    const AppdepKsym *s;

    g_assert_cmpint(appdep_kallsyms_parse(t->blob->data, t->blob->len, &ks),
                    ==, 0);
    assert_tables_equal(t, ks);
    g_assert_cmpint(ks->order, ==, layout == LAYOUT_LAST
                    ? APPDEP_KALLSYMS_OFFSETS_LAST
                    : APPDEP_KALLSYMS_OFFSETS_FIRST);
    g_assert_cmpint(ks->has_seqs_of_names, ==, layout == LAYOUT_FIRST_SEQS);
    g_assert_cmpint(ks->absolute_percpu, ==, percpu);
    g_assert_cmphex(ks->relative_base, ==, TEST_RELATIVE_BASE);
    g_assert_cmpuint(ks->names_off, ==, t->names_off);
    g_assert_cmpuint(ks->markers_off, ==, t->markers_off);
    g_assert_cmpuint(ks->offsets_off, ==, t->offsets_off);
    g_assert_cmpuint(ks->token_index_off, ==, t->token_index_off);

    s = appdep_kallsyms_lookup(ks, "tcp_sendmsg");
    g_assert_nonnull(s);
    g_assert_cmphex(s->addr, ==, t->syms[TEST_NUM_SYMS / 2].addr);
    g_assert_null(appdep_kallsyms_lookup(ks, "no_such_symbol"));
    if (percpu) {
        s = appdep_kallsyms_lookup(ks, "current_task");
        g_assert_nonnull(s);
        g_assert_cmphex(s->addr, ==, 0x1000 * (TEST_NUM_PERCPU - 1) + 0x1fb80);
        /* Duplicate names: the first one (lowest address) wins. */
        s = appdep_kallsyms_lookup(ks, "percpu_var");
        g_assert_true(s == &ks->syms[0]);
    }
}

static void test_offsets_first(void)
{
    check_layout(LAYOUT_FIRST, true);
}

static void test_offsets_first_seqs(void)
{
    check_layout(LAYOUT_FIRST_SEQS, true);
}

static void test_offsets_last(void)
{
    check_layout(LAYOUT_LAST, true);
}

static void test_relative_only(void)
{
    check_layout(LAYOUT_FIRST_SEQS, false);
    check_layout(LAYOUT_LAST, false);
}

static void test_empty(void)
{
    static const uint8_t zeros[4096];
    AppdepKallsyms *ks = NULL;

    g_assert_cmpint(appdep_kallsyms_parse(zeros, 0, &ks), ==, -ENOENT);
    g_assert_cmpint(appdep_kallsyms_parse(zeros, 1, &ks), ==, -ENOENT);
    g_assert_cmpint(appdep_kallsyms_parse(zeros, sizeof(zeros), &ks),
                    ==, -ENOENT);
    g_assert_null(ks);
    appdep_kallsyms_free(NULL);
}

/*
 * Every prefix of the blob either fails cleanly or, once all the tables
 * are inside it, decodes to the same table.
 */
static void test_truncated(void)
{
    g_autoptr(TestTables) t = tables_new(LAYOUT_LAST, true);
    size_t len = t->blob->len;

    for (size_t cut = 0; cut < len; cut++) {
        /* A fresh copy so that a read past the cut is caught by ASan. */
        g_autofree uint8_t *copy = g_memdup2(t->blob->data, cut);
        g_autoptr(AppdepKallsyms) ks = NULL;
        int ret = appdep_kallsyms_parse(copy, cut, &ks);

        if (ret == 0) {
            assert_tables_equal(t, ks);
        } else {
            g_assert_true(ret == -ENOENT || ret == -EINVAL);
            g_assert_null(ks);
        }
    }
}

static int parse_modified(const TestTables *t, size_t off, uint8_t val)
{
    g_autofree uint8_t *copy = g_memdup2(t->blob->data, t->blob->len);
    g_autoptr(AppdepKallsyms) ks = NULL;

    copy[off] = val;
    return appdep_kallsyms_parse(copy, t->blob->len, &ks);
}

static void test_corrupt_targeted(void)
{
    g_autoptr(TestTables) t = tables_new(LAYOUT_FIRST_SEQS, true);
    size_t len_byte = t->names_off;

    /* A marker that does not match the names. */
    g_assert_cmpint(parse_modified(t, t->markers_off + 4, 0x55), ==, -ENOENT);
    /* A token index that is not increasing. */
    g_assert_cmpint(parse_modified(t, t->token_index_off + 20, 0xff), ==,
                    -ENOENT);
    /* A wrong symbol count: names, markers and tokens no longer line up. */
    g_assert_cmpint(parse_modified(t, t->names_off - 8, 0x01), ==, -ENOENT);
    /* An address out of order. */
    g_assert_cmpint(parse_modified(t, t->offsets_off + 4 * 100 + 2, 0x7f), ==,
                    -ENOENT);
    /* A first name whose type is not a letter: consistent tables, bad name. */
    g_assert_cmpint(parse_modified(t, len_byte + 1, '1'), ==, -EINVAL);
}

/* Random byte changes: parse may fail or succeed, but never misbehave. */
static void test_corrupt_random(void)
{
    g_autoptr(TestTables) t = tables_new(LAYOUT_FIRST_SEQS, true);
    GRand *r = g_rand_new_with_seed(42);

    for (int round = 0; round < TEST_FUZZ_ROUNDS; round++) {
        g_autofree uint8_t *copy = g_memdup2(t->blob->data, t->blob->len);
        g_autoptr(AppdepKallsyms) ks = NULL;
        int flips = g_rand_int_range(r, 1, 5);
        int ret;

        for (int i = 0; i < flips; i++) {
            copy[g_rand_int_range(r, 0, t->blob->len)] = g_rand_int(r);
        }
        ret = appdep_kallsyms_parse(copy, t->blob->len, &ks);
        if (ret == 0) {
            g_assert_cmpuint(ks->num_syms, >=, APPDEP_KALLSYMS_MIN_SYMS);
            for (size_t i = 0; i < ks->num_syms; i++) {
                g_assert_nonnull(ks->syms[i].name);
                g_assert_cmpuint(strlen(ks->syms[i].name), <,
                                 APPDEP_KALLSYMS_MAX_NAME_LEN);
            }
        } else {
            g_assert_true(ret == -ENOENT || ret == -EINVAL);
        }
    }
    g_rand_free(r);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/kallsyms/offsets-first", test_offsets_first);
    g_test_add_func("/kallsyms/offsets-first-seqs", test_offsets_first_seqs);
    g_test_add_func("/kallsyms/offsets-last", test_offsets_last);
    g_test_add_func("/kallsyms/relative-only", test_relative_only);
    g_test_add_func("/kallsyms/empty", test_empty);
    g_test_add_func("/kallsyms/truncated", test_truncated);
    g_test_add_func("/kallsyms/corrupt-targeted", test_corrupt_targeted);
    g_test_add_func("/kallsyms/corrupt-random", test_corrupt_random);
    return g_test_run();
}
