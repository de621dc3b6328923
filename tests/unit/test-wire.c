/*
 * Unit tests: record codec (hw/appdep/appdep-wire.h) and the
 * resynchronising stream decoder (monitor/common/stream.c), including
 * truncated and corrupted input.
 *
 * Copyright (c) 2026 appdep authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include <glib.h>
#include "appdep-wire.h"
#include "stream.h"

static AppdepThreadRecord sample(unsigned i)
{
    AppdepThreadRecord r = {
        .time_ns = 1700000000000000000ULL + i,
        .serial = i,
        .op = APPDEP_OP_SEND + i % 3,
        .family = i % 2 ? APPDEP_FAMILY_IPV6 : APPDEP_FAMILY_IPV4,
        .vcpu = i % 4,
        .pid = 1000 + i,
        .tid = 2000 + i,
        .saddr = { 10, 0, 0, 1 },
        .daddr = { 10, 0, 0, 2, [15] = (uint8_t)i },
        .sport = 8080,
        .dport = 40000 + i,
        .seq = 0xfffffff0u + i,
        .bytes = 64ULL << (i % 40),
    };

    g_snprintf(r.vm, sizeof(r.vm), "vm-%u", i);
    g_snprintf(r.comm, sizeof(r.comm), "comm%u", i);
    return r;
}

static void assert_same(const AppdepThreadRecord *a,
                        const AppdepThreadRecord *b)
{
    g_assert_cmpuint(a->time_ns, ==, b->time_ns);
    g_assert_cmpuint(a->serial, ==, b->serial);
    g_assert_cmpstr(a->vm, ==, b->vm);
    g_assert_cmpuint(a->op, ==, b->op);
    g_assert_cmpuint(a->family, ==, b->family);
    g_assert_cmpuint(a->vcpu, ==, b->vcpu);
    g_assert_cmpuint(a->pid, ==, b->pid);
    g_assert_cmpuint(a->tid, ==, b->tid);
    g_assert_cmpstr(a->comm, ==, b->comm);
    g_assert(!memcmp(a->saddr, b->saddr, 16));
    g_assert(!memcmp(a->daddr, b->daddr, 16));
    g_assert_cmpuint(a->sport, ==, b->sport);
    g_assert_cmpuint(a->dport, ==, b->dport);
    g_assert_cmpuint(a->seq, ==, b->seq);
    g_assert_cmpuint(a->bytes, ==, b->bytes);
}

static void test_roundtrip(void)
{
    uint8_t buf[APPDEP_WIRE_THREAD_LEN];
    unsigned i;

    for (i = 0; i < 64; i++) {
        AppdepThreadRecord in = sample(i), out;
        size_t used = 0;

        appdep_wire_encode_thread(&in, buf);
        g_assert_cmpint(appdep_wire_decode_thread(buf, sizeof(buf), &out,
                                                  &used), ==, APPDEP_WIRE_OK);
        g_assert_cmpuint(used, ==, APPDEP_WIRE_THREAD_LEN);
        assert_same(&in, &out);
    }
}

/* Full-width strings stay bounded: no terminator on the wire. */
static void test_long_strings(void)
{
    AppdepThreadRecord in = sample(1), out;
    uint8_t buf[APPDEP_WIRE_THREAD_LEN];
    size_t used;

    memset(in.vm, 'v', APPDEP_WIRE_VM_LEN);
    in.vm[APPDEP_WIRE_VM_LEN] = '\0';
    memset(in.comm, 'c', APPDEP_WIRE_COMM_LEN);
    in.comm[APPDEP_WIRE_COMM_LEN] = '\0';
    appdep_wire_encode_thread(&in, buf);
    g_assert_cmpint(appdep_wire_decode_thread(buf, sizeof(buf), &out, &used),
                    ==, APPDEP_WIRE_OK);
    g_assert_cmpuint(strlen(out.vm), ==, APPDEP_WIRE_VM_LEN);
    g_assert_cmpuint(strlen(out.comm), ==, APPDEP_WIRE_COMM_LEN);
}

static void test_truncated(void)
{
    AppdepThreadRecord in = sample(3), out;
    uint8_t buf[APPDEP_WIRE_THREAD_LEN];
    size_t n, used;

    appdep_wire_encode_thread(&in, buf);
    for (n = 0; n < sizeof(buf); n++) {
        g_assert_cmpint(appdep_wire_decode_thread(buf, n, &out, &used), ==,
                        APPDEP_WIRE_SHORT);
    }
}

static void test_corrupted(void)
{
    AppdepThreadRecord in = sample(2), out;
    uint8_t good[APPDEP_WIRE_THREAD_LEN], buf[APPDEP_WIRE_THREAD_LEN];
    size_t used;

    appdep_wire_encode_thread(&in, good);

    memcpy(buf, good, sizeof(buf));
    buf[0] ^= 1;
    g_assert_cmpint(appdep_wire_decode_thread(buf, sizeof(buf), &out, &used),
                    ==, APPDEP_WIRE_BAD_MAGIC);
    memcpy(buf, good, sizeof(buf));
    appdep_wire_put16(buf + 4, 2);
    g_assert_cmpint(appdep_wire_decode_thread(buf, sizeof(buf), &out, &used),
                    ==, APPDEP_WIRE_BAD_VERSION);
    memcpy(buf, good, sizeof(buf));
    appdep_wire_put32(buf + 8, 8);
    g_assert_cmpint(appdep_wire_decode_thread(buf, sizeof(buf), &out, &used),
                    ==, APPDEP_WIRE_BAD_LENGTH);
    appdep_wire_put32(buf + 8, APPDEP_WIRE_MAX_LEN + 1);
    g_assert_cmpint(appdep_wire_decode_thread(buf, sizeof(buf), &out, &used),
                    ==, APPDEP_WIRE_BAD_LENGTH);
    appdep_wire_put32(buf + 8, 0xffffffffu);
    g_assert_cmpint(appdep_wire_decode_thread(buf, sizeof(buf), &out, &used),
                    ==, APPDEP_WIRE_BAD_LENGTH);
    /* a thread record must have exactly its length */
    appdep_wire_put32(buf + 8, APPDEP_WIRE_THREAD_LEN + 8);
    g_assert_cmpint(appdep_wire_decode_thread(buf, sizeof(buf), &out, &used),
                    ==, APPDEP_WIRE_BAD_LENGTH);

    memcpy(buf, good, sizeof(buf));
    appdep_wire_put16(buf + 6, 99);
    used = 0;
    g_assert_cmpint(appdep_wire_decode_thread(buf, sizeof(buf), &out, &used),
                    ==, APPDEP_WIRE_BAD_TYPE);
    g_assert_cmpuint(used, ==, APPDEP_WIRE_THREAD_LEN);

    memcpy(buf, good, sizeof(buf));
    buf[96] = 0;                                /* op */
    g_assert_cmpint(appdep_wire_decode_thread(buf, sizeof(buf), &out, &used),
                    ==, APPDEP_WIRE_BAD_FIELD);
    memcpy(buf, good, sizeof(buf));
    buf[97] = 5;                                /* family */
    g_assert_cmpint(appdep_wire_decode_thread(buf, sizeof(buf), &out, &used),
                    ==, APPDEP_WIRE_BAD_FIELD);
    g_assert_cmpuint(used, ==, APPDEP_WIRE_THREAD_LEN);
}

/* The reserved words of a record (12, 164) must be zero, as in a frame. */
static void test_reserved(void)
{
    AppdepThreadRecord in = sample(3), out;
    uint8_t good[APPDEP_WIRE_THREAD_LEN], buf[APPDEP_WIRE_THREAD_LEN];
    static const size_t off[] = { 12, 15, 164, 167 };
    uint16_t type;
    uint32_t len;
    size_t used, i;

    appdep_wire_encode_thread(&in, good);
    g_assert_cmpuint(appdep_wire_get32(good + 12), ==, 0);
    g_assert_cmpuint(appdep_wire_get32(good + 164), ==, 0);
    for (i = 0; i < G_N_ELEMENTS(off); i++) {
        memcpy(buf, good, sizeof(buf));
        buf[off[i]] = 1;
        g_assert_cmpint(appdep_wire_decode_thread(buf, sizeof(buf), &out,
                                                  &used),
                        ==, APPDEP_WIRE_BAD_FIELD);
    }
    /* the header check alone catches the one in the header */
    memcpy(buf, good, sizeof(buf));
    buf[13] = 0x80;
    g_assert_cmpint(appdep_wire_check_header(buf, sizeof(buf), &type, &len),
                    ==, APPDEP_WIRE_BAD_FIELD);
    /* and a stream skips such a record but keeps the next one */
    {
        uint8_t two[2 * APPDEP_WIRE_THREAD_LEN];
        const char *why = NULL;
        size_t pos = 0;
        unsigned recs = 0, skips = 0;

        memcpy(two, good, sizeof(good));
        two[164] = 1;
        memcpy(two + sizeof(good), good, sizeof(good));
        while (pos < sizeof(two)) {
            int ret = appdep_stream_next(two + pos, sizeof(two) - pos, true,
                                         &out, &used, &why);

            g_assert_cmpint(ret, !=, APPDEP_STREAM_NEED_MORE);
            recs += ret == APPDEP_STREAM_RECORD;
            skips += ret == APPDEP_STREAM_SKIP;
            pos += used;
        }
        g_assert_cmpuint(recs, ==, 1);
        g_assert_cmpuint(skips, >=, 1);
        assert_same(&out, &in);
    }
}

/* Decode a whole buffer the way a reader would; count records and skips. */
static void decode_all(const uint8_t *buf, size_t len, size_t chunk,
                       GArray *recs, unsigned *skips)
{
    size_t off = 0, avail = 0;

    *skips = 0;
    while (off < len) {
        AppdepThreadRecord r;
        const char *why;
        size_t used;
        bool eof;
        int ret;

        avail = MIN(len - off, MAX(avail, chunk));
        eof = off + avail == len;
        ret = appdep_stream_next(buf + off, avail, eof, &r, &used, &why);
        if (ret == APPDEP_STREAM_NEED_MORE) {
            g_assert(!eof);
            g_assert_cmpuint(used, ==, 0);
            avail += chunk;
            continue;
        }
        g_assert_cmpuint(used, >, 0);
        g_assert_cmpuint(used, <=, avail);
        if (ret == APPDEP_STREAM_RECORD) {
            g_array_append_val(recs, r);
        } else {
            g_assert(why && *why);
            (*skips)++;
        }
        off += used;
        avail -= used;
    }
}

static void test_stream_resync(void)
{
    GByteArray *s = g_byte_array_new();
    g_autoptr(GArray) recs = g_array_new(FALSE, FALSE,
                                         sizeof(AppdepThreadRecord));
    static const uint8_t junk[] = "junk that is not a record";
    uint8_t rec[APPDEP_WIRE_THREAD_LEN];
    unsigned i, skips;
    size_t chunk;

    for (i = 0; i < 10; i++) {
        AppdepThreadRecord r = sample(i);

        appdep_wire_encode_thread(&r, rec);
        if (i % 3 == 1) {
            g_byte_array_append(s, junk, sizeof(junk) - 1 - i);
        }
        if (i == 5) {
            /* a record cut short by a restarting writer */
            g_byte_array_append(s, rec, 70);
        }
        g_byte_array_append(s, rec, sizeof(rec));
    }
    for (chunk = 1; chunk <= 700; chunk = chunk * 3 + 1) {
        g_array_set_size(recs, 0);
        decode_all(s->data, s->len, chunk, recs, &skips);
        g_assert_cmpuint(recs->len, ==, 10);
        for (i = 0; i < 10; i++) {
            AppdepThreadRecord want = sample(i);

            assert_same(&g_array_index(recs, AppdepThreadRecord, i), &want);
        }
        g_assert_cmpuint(skips, >=, 3);
    }
    g_byte_array_free(s, TRUE);
}

/* Random bytes, with and without magic numbers sprinkled in: no crash. */
static void test_stream_fuzz(void)
{
    g_autoptr(GRand) rnd = g_rand_new_with_seed(42);
    g_autoptr(GArray) recs = g_array_new(FALSE, FALSE,
                                         sizeof(AppdepThreadRecord));
    unsigned round, skips;

    for (round = 0; round < 200; round++) {
        size_t len = g_rand_int_range(rnd, 0, 4000), i;
        g_autofree uint8_t *buf = g_malloc(len + 1);

        for (i = 0; i < len; i++) {
            buf[i] = g_rand_int(rnd);
        }
        for (i = 0; i + 16 <= len; i += g_rand_int_range(rnd, 1, 300)) {
            appdep_wire_put32(buf + i, APPDEP_WIRE_MAGIC);
            if (g_rand_boolean(rnd)) {
                appdep_wire_put16(buf + i + 4, APPDEP_WIRE_VERSION);
                appdep_wire_put16(buf + i + 6, APPDEP_WIRE_THREAD);
                appdep_wire_put32(buf + i + 8, APPDEP_WIRE_THREAD_LEN);
            }
        }
        g_array_set_size(recs, 0);
        decode_all(buf, len, g_rand_int_range(rnd, 1, 500), recs, &skips);
    }
}

static void test_json(void)
{
    AppdepThreadRecord r = sample(0);
    g_autoptr(GString) s = g_string_new(NULL);

    strcpy(r.comm, "a\"b\\\x01\xff");
    appdep_record_to_json(&r, s);
    g_assert_cmpstr(s->str, ==,
        "{\"time_ns\":1700000000000000000,\"vm\":\"vm-0\",\"op\":\"send\","
        "\"pid\":1000,\"tid\":2000,\"comm\":\"a\\\"b\\\\\\u0001\xef\xbf\xbd\","
        "\"family\":\"ipv4\",\"saddr\":\"10.0.0.1\",\"sport\":8080,"
        "\"daddr\":\"10.0.0.2\",\"dport\":40000,\"bytes\":64,"
        "\"seq\":4294967280}");
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/wire/roundtrip", test_roundtrip);
    g_test_add_func("/wire/long-strings", test_long_strings);
    g_test_add_func("/wire/truncated", test_truncated);
    g_test_add_func("/wire/corrupted", test_corrupted);
    g_test_add_func("/wire/reserved", test_reserved);
    g_test_add_func("/stream/resync", test_stream_resync);
    g_test_add_func("/stream/fuzz", test_stream_fuzz);
    g_test_add_func("/stream/json", test_json);
    return g_test_run();
}
