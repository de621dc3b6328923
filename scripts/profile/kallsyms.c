/*
 * appdep-profile: recover the symbol table from a kernel's kallsyms tables.
 * See kallsyms.h for the table layouts this understands.
 *
 * Every read goes through the bounded readers below; every position is
 * computed so that it cannot wrap (positions are < len, counts are capped
 * by APPDEP_KALLSYMS_MAX_SYMS before they scale anything).
 *
 * Copyright (c) 2026 appdep authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <errno.h>
#include <string.h>

#include "kallsyms.h"
#include "profile-limits.h"

#define KS_NUM_TOKENS           256
#define KS_TOKEN_INDEX_SIZE     (KS_NUM_TOKENS * sizeof(uint16_t))
/* kallsyms_seqs_of_names: 3 bytes per symbol. */
#define KS_SEQ_SIZE             3
/* Lowest plausible relative_base: the x86_64 kernel half. */
#define KS_MIN_KERNEL_ADDR      0xffff800000000000ull

typedef struct KsBlob {
    const uint8_t *buf;
    size_t len;
} KsBlob;

typedef struct KsTokens {
    size_t table_off;
    size_t index_off;
    uint16_t index[KS_NUM_TOKENS];
    uint8_t length[KS_NUM_TOKENS];
} KsTokens;

typedef struct KsNames {
    size_t num_syms_off;
    size_t names_off;
    size_t markers_off;
    uint32_t num_syms;
    bool has_seqs;
} KsNames;

/* True if [off, off + n) lies inside the blob. */
static bool blob_has(const KsBlob *b, size_t off, size_t n)
{
    return off <= b->len && n <= b->len - off;
}

static bool blob_u16(const KsBlob *b, size_t off, uint16_t *v)
{
    uint16_t x;

    if (!blob_has(b, off, sizeof(x))) {
        return false;
    }
    memcpy(&x, b->buf + off, sizeof(x));
    *v = GUINT16_FROM_LE(x);
    return true;
}

static bool blob_u32(const KsBlob *b, size_t off, uint32_t *v)
{
    uint32_t x;

    if (!blob_has(b, off, sizeof(x))) {
        return false;
    }
    memcpy(&x, b->buf + off, sizeof(x));
    *v = GUINT32_FROM_LE(x);
    return true;
}

static bool blob_u64(const KsBlob *b, size_t off, uint64_t *v)
{
    uint64_t x;

    if (!blob_has(b, off, sizeof(x))) {
        return false;
    }
    memcpy(&x, b->buf + off, sizeof(x));
    *v = GUINT64_FROM_LE(x);
    return true;
}

/* Round @x up to the table alignment; SIZE_MAX if that would wrap. */
static size_t ks_align(size_t x)
{
    if (x > SIZE_MAX - (APPDEP_KALLSYMS_ALIGN - 1)) {
        return SIZE_MAX;
    }
    return (x + APPDEP_KALLSYMS_ALIGN - 1) &
           ~(size_t)(APPDEP_KALLSYMS_ALIGN - 1);
}

static bool token_char_ok(uint8_t c)
{
    return c > ' ' && c < 0x7f;
}

/*
 * Check that token string @k starts at @table_off + index[k], holds only
 * printable characters and ends with a NUL exactly where the next one
 * starts (for the last token: anywhere within APPDEP_KALLSYMS_MAX_TOKEN_LEN).
 */
static bool tokens_check_table(const KsBlob *b, KsTokens *t, size_t table_off)
{
    size_t end;

    for (int k = 0; k < KS_NUM_TOKENS; k++) {
        size_t start = table_off + t->index[k];
        size_t n = 0;

        if (!blob_has(b, start, 1)) {
            return false;
        }
        while (n <= APPDEP_KALLSYMS_MAX_TOKEN_LEN &&
               blob_has(b, start + n, 1) && b->buf[start + n] != 0) {
            if (!token_char_ok(b->buf[start + n])) {
                return false;
            }
            n++;
        }
        if (n == 0 || n > APPDEP_KALLSYMS_MAX_TOKEN_LEN ||
            !blob_has(b, start + n, 1)) {
            return false;
        }
        if (k < KS_NUM_TOKENS - 1 && t->index[k + 1] != t->index[k] + n + 1) {
            return false;
        }
        t->length[k] = n;
    }
    /* Only alignment padding may separate the table from its index. */
    end = table_off + t->index[KS_NUM_TOKENS - 1] +
          t->length[KS_NUM_TOKENS - 1] + 1;
    if (end > t->index_off || t->index_off - end >= APPDEP_KALLSYMS_ALIGN) {
        return false;
    }
    for (size_t i = end; i < t->index_off; i++) {
        if (b->buf[i] != 0) {
            return false;
        }
    }
    t->table_off = table_off;
    return true;
}

/* Is there a kallsyms_token_index at @index_off, and its table before it? */
static bool tokens_find_at(const KsBlob *b, size_t index_off, KsTokens *t)
{
    size_t last, lo, hi;

    if (!blob_has(b, index_off, KS_TOKEN_INDEX_SIZE)) {
        return false;
    }
    for (int k = 0; k < KS_NUM_TOKENS; k++) {
        blob_u16(b, index_off + k * sizeof(uint16_t), &t->index[k]);
        if (k == 0 ? t->index[0] != 0 :
            t->index[k] <= t->index[k - 1] ||
            t->index[k] - t->index[k - 1] > APPDEP_KALLSYMS_MAX_TOKEN_LEN + 1) {
            return false;
        }
    }
    t->index_off = index_off;

    /*
     * The last token (1..MAX_TOKEN_LEN chars + NUL) ends less than one
     * alignment unit before the index, which bounds where the table starts.
     */
    last = t->index[KS_NUM_TOKENS - 1];
    if (index_off < last + 2) {
        return false;
    }
    hi = index_off - last - 2;
    lo = last + APPDEP_KALLSYMS_MAX_TOKEN_LEN + APPDEP_KALLSYMS_ALIGN;
    lo = index_off > lo ? index_off - lo : 0;
    for (size_t off = hi - hi % APPDEP_KALLSYMS_ALIGN; off >= lo;
         off -= APPDEP_KALLSYMS_ALIGN) {
        if (tokens_check_table(b, t, off)) {
            return true;
        }
        if (off < APPDEP_KALLSYMS_ALIGN) {
            break;
        }
    }
    return false;
}

/* Read a kallsyms_names entry length (one byte, or two if the MSB is set). */
static bool names_entry(const KsBlob *b, size_t *pos, size_t limit,
                        size_t *len)
{
    uint8_t c;

    if (*pos >= limit) {
        return false;
    }
    c = b->buf[(*pos)++];
    *len = c;
    if (c & 0x80) {
        if (*pos >= limit) {
            return false;
        }
        *len = (c & 0x7f) | ((size_t)b->buf[(*pos)++] << 7);
    }
    return *len > 0 && *len <= limit - *pos;
}

/*
 * Is @num_syms_off kallsyms_num_syms, followed by kallsyms_names and
 * kallsyms_markers (and possibly kallsyms_seqs_of_names) ending exactly at
 * the token table?
 */
static bool names_try(const KsBlob *b, const KsTokens *t, size_t num_syms_off,
                      KsNames *n)
{
    size_t limit = t->table_off;
    size_t pos, markers_off, markers_end, nmarkers;
    uint32_t num;

    if (!blob_u32(b, num_syms_off, &num) ||
        num < APPDEP_KALLSYMS_MIN_SYMS || num > APPDEP_KALLSYMS_MAX_SYMS) {
        return false;
    }
    n->names_off = ks_align(num_syms_off + sizeof(uint32_t));
    /* Each entry is at least a length byte and one token. */
    if (n->names_off >= limit || (limit - n->names_off) / 2 < num) {
        return false;
    }
    pos = n->names_off;
    for (uint32_t i = 0; i < num; i++) {
        size_t len;

        if (!names_entry(b, &pos, limit, &len)) {
            return false;
        }
        pos += len;
    }
    nmarkers = (num + APPDEP_KALLSYMS_MARKER_STRIDE - 1) /
               APPDEP_KALLSYMS_MARKER_STRIDE;
    markers_off = ks_align(pos);
    if (markers_off > limit ||
        (limit - markers_off) / sizeof(uint32_t) < nmarkers) {
        return false;
    }
    markers_end = markers_off + nmarkers * sizeof(uint32_t);
    if (ks_align(markers_end) == limit) {
        n->has_seqs = false;
    } else if (ks_align(ks_align(markers_end) + (size_t)num * KS_SEQ_SIZE) ==
               limit) {
        n->has_seqs = true;
    } else {
        return false;
    }

    /* Every 256th entry must start where kallsyms_markers says. */
    pos = n->names_off;
    for (uint32_t i = 0; i < num; i++) {
        size_t len;

        if (i % APPDEP_KALLSYMS_MARKER_STRIDE == 0) {
            uint32_t m = 0;

            blob_u32(b, markers_off + (i / APPDEP_KALLSYMS_MARKER_STRIDE) *
                     sizeof(uint32_t), &m);
            if (m != pos - n->names_off) {
                return false;
            }
        }
        names_entry(b, &pos, limit, &len);
        pos += len;
    }
    n->num_syms_off = num_syms_off;
    n->markers_off = markers_off;
    n->num_syms = num;
    return true;
}

/* Search backwards from the token table for kallsyms_num_syms. */
static bool names_find(const KsBlob *b, const KsTokens *t, KsNames *n)
{
    size_t off;

    if (t->table_off < sizeof(uint32_t)) {
        return false;
    }
    off = t->table_off - sizeof(uint32_t);
    off -= off % APPDEP_KALLSYMS_ALIGN;
    for (;;) {
        if (names_try(b, t, off, n)) {
            return true;
        }
        if (off < APPDEP_KALLSYMS_ALIGN) {
            return false;
        }
        off -= APPDEP_KALLSYMS_ALIGN;
    }
}

/*
 * Decode kallsyms_offsets at @offsets_off against @relative_base into
 * @ks->syms[].addr, choosing the absolute-percpu mode if any offset is
 * negative. Fails unless the addresses are sorted, as kallsyms sorts them.
 */
static bool addrs_decode(const KsBlob *b, size_t offsets_off, size_t rb_off,
                         uint32_t num, AppdepKallsyms *ks)
{
    uint64_t rb;
    bool abs_percpu = false;
    uint64_t prev = 0;

    if (!blob_u64(b, rb_off, &rb) || rb < KS_MIN_KERNEL_ADDR ||
        !blob_has(b, offsets_off, (size_t)num * sizeof(int32_t))) {
        return false;
    }
    for (uint32_t i = 0; i < num; i++) {
        uint32_t v = 0;

        blob_u32(b, offsets_off + i * sizeof(int32_t), &v);
        if ((int32_t)v < 0) {
            abs_percpu = true;
            break;
        }
    }
    for (uint32_t i = 0; i < num; i++) {
        uint32_t v = 0;
        int32_t off;
        uint64_t addr;

        blob_u32(b, offsets_off + i * sizeof(int32_t), &v);
        off = (int32_t)v;
        if (!abs_percpu) {
            addr = rb + v;
        } else if (off >= 0) {
            addr = (uint64_t)off;
        } else {
            addr = rb + (uint64_t)(-(int64_t)off - 1);
        }
        if (addr < prev || (addr < rb && (!abs_percpu || off < 0))) {
            return false;       /* unsorted, or wrapped around */
        }
        prev = addr;
        ks->syms[i].addr = addr;
    }
    ks->relative_base = rb;
    ks->absolute_percpu = abs_percpu;
    ks->offsets_off = offsets_off;
    ks->relative_base_off = rb_off;
    return true;
}

/* Locate kallsyms_offsets/_relative_base for either table order. */
static bool addrs_find(const KsBlob *b, const KsTokens *t, const KsNames *n,
                       AppdepKallsyms *ks)
{
    size_t offsets_size = ks_align((size_t)n->num_syms * sizeof(int32_t));

    /* Offsets first: offsets, relative_base, num_syms. */
    if (n->num_syms_off >= sizeof(uint64_t) + offsets_size) {
        size_t rb_off = n->num_syms_off - sizeof(uint64_t);

        if (addrs_decode(b, rb_off - offsets_size, rb_off, n->num_syms, ks)) {
            ks->order = APPDEP_KALLSYMS_OFFSETS_FIRST;
            ks->has_seqs_of_names = n->has_seqs;
            return true;
        }
    }
    /* Offsets last: token_index, offsets, relative_base, seqs_of_names. */
    if (!n->has_seqs) {
        size_t offsets_off = ks_align(t->index_off + KS_TOKEN_INDEX_SIZE);

        if (blob_has(b, offsets_off, offsets_size) &&
            addrs_decode(b, offsets_off, offsets_off + offsets_size,
                         n->num_syms, ks)) {
            ks->order = APPDEP_KALLSYMS_OFFSETS_LAST;
            ks->has_seqs_of_names = false;
            return true;
        }
    }
    return false;
}

/* Expand every name; fails on a name that is too long or has no type. */
static bool names_decode(const KsBlob *b, const KsTokens *t, const KsNames *n,
                         AppdepKallsyms *ks)
{
    char name[APPDEP_KALLSYMS_MAX_NAME_LEN + 1];
    size_t pos = n->names_off;

    for (uint32_t i = 0; i < n->num_syms; i++) {
        size_t len, out = 0;
        AppdepKsym *sym = &ks->syms[i];

        /* names_try() walked these already: the entries are in bounds. */
        names_entry(b, &pos, t->table_off, &len);
        for (size_t j = 0; j < len; j++) {
            uint8_t code = b->buf[pos + j];
            size_t tl = t->length[code];

            if (tl > APPDEP_KALLSYMS_MAX_NAME_LEN - out) {
                return false;
            }
            memcpy(name + out, b->buf + t->table_off + t->index[code], tl);
            out += tl;
        }
        pos += len;
        name[out] = '\0';
        if (out < 2 || !g_ascii_isalpha(name[0])) {
            return false;
        }
        sym->type = name[0];
        sym->name = g_string_chunk_insert(ks->strings, name + 1);
        if (!g_hash_table_contains(ks->by_name, sym->name)) {
            g_hash_table_insert(ks->by_name, sym->name, sym);
        }
    }
    return true;
}

static AppdepKallsyms *kallsyms_new(uint32_t num)
{
    AppdepKallsyms *ks = g_new0(AppdepKallsyms, 1);

    ks->syms = g_new0(AppdepKsym, num);
    ks->num_syms = num;
    ks->by_name = g_hash_table_new(g_str_hash, g_str_equal);
    ks->strings = g_string_chunk_new(APPDEP_MIB);
    return ks;
}

int appdep_kallsyms_parse(const uint8_t *buf, size_t len,
                          AppdepKallsyms **out)
{
    KsBlob b = { buf, len };
    int ret = -ENOENT;

    if (len < KS_TOKEN_INDEX_SIZE) {
        return -ENOENT;
    }
    for (size_t off = 0; off <= len - KS_TOKEN_INDEX_SIZE;
         off += APPDEP_KALLSYMS_ALIGN) {
        g_autoptr(AppdepKallsyms) ks = NULL;
        KsTokens t;
        KsNames n;

        /* Cheap filter before the full check: index[0] == 0 < index[1]. */
        if (buf[off] || buf[off + 1] || (!buf[off + 2] && !buf[off + 3])) {
            continue;
        }
        if (!tokens_find_at(&b, off, &t) || !names_find(&b, &t, &n)) {
            continue;
        }
        ks = kallsyms_new(n.num_syms);
        if (!addrs_find(&b, &t, &n, ks)) {
            continue;
        }
        /* The tables are consistent; a bad name now means corruption. */
        if (!names_decode(&b, &t, &n, ks)) {
            ret = -EINVAL;
            continue;
        }
        ks->num_syms_off = n.num_syms_off;
        ks->names_off = n.names_off;
        ks->markers_off = n.markers_off;
        ks->token_table_off = t.table_off;
        ks->token_index_off = t.index_off;
        *out = g_steal_pointer(&ks);
        return 0;
    }
    return ret;
}

const AppdepKsym *appdep_kallsyms_lookup(const AppdepKallsyms *ks,
                                         const char *name)
{
    return g_hash_table_lookup(ks->by_name, name);
}

size_t appdep_kallsyms_count_addrs(const AppdepKallsyms *ks, const char *name)
{
    size_t n = 0;
    uint64_t last = 0;

    /* Sorted by address: equal addresses are adjacent. */
    for (size_t i = 0; i < ks->num_syms; i++) {
        if (!strcmp(ks->syms[i].name, name) &&
            (n == 0 || ks->syms[i].addr != last)) {
            last = ks->syms[i].addr;
            n++;
        }
    }
    return n;
}

void appdep_kallsyms_free(AppdepKallsyms *ks)
{
    if (!ks) {
        return;
    }
    if (ks->by_name) {
        g_hash_table_destroy(ks->by_name);
    }
    if (ks->strings) {
        g_string_chunk_free(ks->strings);
    }
    g_free(ks->syms);
    g_free(ks);
}
