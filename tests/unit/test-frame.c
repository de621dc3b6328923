/*
 * Unit tests: frames between the forward daemon and the APM server
 * (monitor/common/frame.c): round trips, truncation at every length, corrupted
 * fields, and random mutations.
 *
 * Copyright (c) 2026 appdep authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include <errno.h>
#include <glib.h>
#include "frame.h"
#include "wire-status.h"

#define FUZZ_ROUNDS 20000

/* Heap copy of exactly @n bytes (at least 1), so overreads are caught. */
static uint8_t *copy_exact(const uint8_t *p, size_t n)
{
    uint8_t *q = g_malloc(n);

    memcpy(q, p, n);
    return q;
}

static AppdepFrameHello *sample_hello(uint32_t nvms)
{
    AppdepFrameHello *h = g_new0(AppdepFrameHello, 1);
    uint32_t i;

    h->protocol = APPDEP_FRAME_PROTOCOL;
    g_strlcpy(h->host, "host1", sizeof(h->host));
    h->nvms = nvms;
    for (i = 0; i < nvms; i++) {
        AppdepFrameVm *vm = &h->vms[i];

        g_snprintf(vm->vm, sizeof(vm->vm), "vm-%u", i);
        vm->enabled = i % 2;
        vm->naddr = i % (APPDEP_FRAME_MAX_ADDRS + 1);
        for (unsigned j = 0; j < vm->naddr; j++) {
            vm->addrs[j].family = j % 2 ? APPDEP_FAMILY_IPV6
                                        : APPDEP_FAMILY_IPV4;
            vm->addrs[j].addr[0] = 10;
            vm->addrs[j].addr[3] = i;
            if (j % 2) {
                vm->addrs[j].addr[15] = j;
            }
        }
    }
    return h;
}

static void assert_same_hello(const AppdepFrameHello *a,
                              const AppdepFrameHello *b)
{
    g_assert_cmpuint(a->protocol, ==, b->protocol);
    g_assert_cmpstr(a->host, ==, b->host);
    g_assert_cmpuint(a->nvms, ==, b->nvms);
    for (uint32_t i = 0; i < a->nvms; i++) {
        g_assert_cmpstr(a->vms[i].vm, ==, b->vms[i].vm);
        g_assert_cmpint(a->vms[i].enabled, ==, b->vms[i].enabled);
        g_assert_cmpuint(a->vms[i].naddr, ==, b->vms[i].naddr);
        g_assert(!memcmp(a->vms[i].addrs, b->vms[i].addrs,
                         sizeof(a->vms[i].addrs)));
    }
}

static AppdepThreadRecord sample_record(unsigned i)
{
    AppdepThreadRecord r = {
        .time_ns = 1700000000000000000ULL + i,
        .serial = i,
        .op = APPDEP_OP_SEND + i % 3,
        .family = APPDEP_FAMILY_IPV4,
        .pid = 1000 + i,
        .tid = 2000 + i,
        .saddr = { 10, 0, 0, 1 },
        .daddr = { 10, 0, 0, 2 },
        .sport = 80,
        .dport = 40000,
        .seq = i * 7,
        .bytes = i,
    };

    g_snprintf(r.vm, sizeof(r.vm), "vm-%u", i % 3);
    g_snprintf(r.comm, sizeof(r.comm), "c%u", i);
    return r;
}

static void test_hello_roundtrip(void)
{
    uint32_t counts[] = { 0, 1, 5, APPDEP_FRAME_MAX_VMS };

    for (unsigned k = 0; k < G_N_ELEMENTS(counts); k++) {
        g_autofree AppdepFrameHello *in = sample_hello(counts[k]);
        g_autofree AppdepFrameHello *out = g_new0(AppdepFrameHello, 1);
        g_autofree uint8_t *buf = g_malloc(APPDEP_FRAME_HELLO_MAX_LEN);
        int len;

        len = appdep_frame_encode_hello(in, buf, APPDEP_FRAME_HELLO_MAX_LEN);
        g_assert_cmpint(len, ==, appdep_frame_hello_len(counts[k]));
        g_assert_cmpint(appdep_frame_decode_hello(buf, len, out), ==,
                        APPDEP_WIRE_OK);
        assert_same_hello(in, out);
        /* too small a buffer: refused, nothing written beyond it */
        g_assert_cmpint(appdep_frame_encode_hello(in, buf, len - 1), ==,
                        -ENOSPC);
    }
}

static void test_hello_invalid(void)
{
    g_autofree AppdepFrameHello *h = sample_hello(2);
    uint8_t buf[APPDEP_FRAME_HELLO_FIXED_LEN + 3 * APPDEP_FRAME_VM_LEN];

    h->nvms = APPDEP_FRAME_MAX_VMS + 1;
    g_assert_cmpint(appdep_frame_encode_hello(h, buf, sizeof(buf)), ==,
                    -EINVAL);
    h->nvms = 2;
    h->vms[1].naddr = APPDEP_FRAME_MAX_ADDRS + 1;
    g_assert_cmpint(appdep_frame_encode_hello(h, buf, sizeof(buf)), ==,
                    -EINVAL);
    h->vms[1].naddr = 1;
    h->vms[1].addrs[0].family = 5;
    g_assert_cmpint(appdep_frame_encode_hello(h, buf, sizeof(buf)), ==,
                    -EINVAL);
    h->vms[1].addrs[0].family = APPDEP_FAMILY_IPV4;
    h->host[0] = '\0';
    g_assert_cmpint(appdep_frame_encode_hello(h, buf, sizeof(buf)), ==,
                    -EINVAL);
}

/* Corrupt one field of an encoded HELLO: the decoder must refuse it. */
static void test_hello_corrupt(void)
{
    g_autofree AppdepFrameHello *in = sample_hello(3);
    g_autofree AppdepFrameHello *out = g_new0(AppdepFrameHello, 1);
    uint8_t good[APPDEP_FRAME_HELLO_FIXED_LEN + 3 * APPDEP_FRAME_VM_LEN];
    uint8_t buf[sizeof(good)];
    uint8_t *vm1 = buf + APPDEP_FRAME_HELLO_FIXED_LEN + APPDEP_FRAME_VM_LEN;
    struct {
        size_t off;
        uint8_t val;
        int want;
    } cases[] = {
        { 0, 0x42, APPDEP_WIRE_BAD_MAGIC },
        { 4, 2, APPDEP_WIRE_BAD_VERSION },
        { 6, APPDEP_WIRE_BATCH, APPDEP_WIRE_BAD_LENGTH },
        { 6, APPDEP_WIRE_ACK, APPDEP_WIRE_BAD_LENGTH },
        { 6, 99, APPDEP_WIRE_BAD_TYPE },
        { 8, 1, APPDEP_WIRE_BAD_LENGTH },
        { 12, 1, APPDEP_WIRE_BAD_FIELD },
        { 16, 2, APPDEP_WIRE_BAD_VERSION },                 /* protocol */
        { 20, 4, APPDEP_WIRE_BAD_LENGTH },                  /* nvms */
        { 23, 0x80, APPDEP_WIRE_BAD_LENGTH },               /* nvms huge */
        { 24, 0, APPDEP_WIRE_BAD_FIELD },                   /* empty host */
        { 24 + 10, 'x', APPDEP_WIRE_BAD_FIELD },            /* after NUL */
    };
    int len = appdep_frame_encode_hello(in, good, sizeof(good));

    g_assert_cmpint(len, ==, sizeof(good));
    for (unsigned i = 0; i < G_N_ELEMENTS(cases); i++) {
        memcpy(buf, good, len);
        buf[cases[i].off] = cases[i].val;
        g_assert_cmpint(appdep_frame_decode_hello(buf, len, out), ==,
                        cases[i].want);
    }
    /* the VM entries */
    memcpy(buf, good, len);
    vm1[0] = 0;
    g_assert_cmpint(appdep_frame_decode_hello(buf, len, out), ==,
                    APPDEP_WIRE_BAD_FIELD);
    memcpy(buf, good, len);
    vm1[64] = 2;                                /* enabled not a bool */
    g_assert_cmpint(appdep_frame_decode_hello(buf, len, out), ==,
                    APPDEP_WIRE_BAD_FIELD);
    memcpy(buf, good, len);
    vm1[65] = APPDEP_FRAME_MAX_ADDRS + 1;       /* naddr */
    g_assert_cmpint(appdep_frame_decode_hello(buf, len, out), ==,
                    APPDEP_WIRE_BAD_FIELD);
    memcpy(buf, good, len);
    vm1[72] = 5;                                /* family of address 0 */
    g_assert_cmpint(appdep_frame_decode_hello(buf, len, out), ==,
                    APPDEP_WIRE_BAD_FIELD);
    memcpy(buf, good, len);
    vm1[72 + 2 + 4] = 1;                        /* IPv4 beyond 4 bytes */
    g_assert_cmpint(appdep_frame_decode_hello(buf, len, out), ==,
                    APPDEP_WIRE_BAD_FIELD);
    memcpy(buf, good, len);
    vm1[72 + 3 * APPDEP_FRAME_ADDR_LEN] = 4;    /* unused address slot */
    g_assert_cmpint(appdep_frame_decode_hello(buf, len, out), ==,
                    APPDEP_WIRE_BAD_FIELD);
}

static void test_batch_roundtrip(void)
{
    uint32_t counts[] = { 0, 1, 3, APPDEP_FRAME_MAX_RECORDS };

    for (unsigned k = 0; k < G_N_ELEMENTS(counts); k++) {
        uint32_t n = counts[k];
        g_autofree AppdepThreadRecord *recs = g_new0(AppdepThreadRecord,
                                                     MAX(n, 1));
        size_t size = appdep_frame_batch_len(n);
        g_autofree uint8_t *buf = g_malloc(size);
        AppdepFrameBatch b;
        int len;

        for (uint32_t i = 0; i < n; i++) {
            recs[i] = sample_record(i);
        }
        len = appdep_frame_encode_batch(77 + k, recs, n, buf, size);
        g_assert_cmpint(len, ==, size);
        g_assert_cmpint(appdep_frame_decode_batch(buf, len, &b), ==,
                        APPDEP_WIRE_OK);
        g_assert_cmpuint(b.batch, ==, 77 + k);
        g_assert_cmpuint(b.count, ==, n);
        for (uint32_t i = 0; i < n; i++) {
            AppdepThreadRecord r;

            g_assert_cmpint(appdep_frame_batch_record(&b, i, &r), ==,
                            APPDEP_WIRE_OK);
            g_assert_cmpuint(r.serial, ==, i);
            g_assert_cmpstr(r.comm, ==, recs[i].comm);
            g_assert_cmpuint(r.seq, ==, recs[i].seq);
        }
        g_assert_cmpint(appdep_frame_batch_record(&b, n, NULL), ==,
                        APPDEP_WIRE_SHORT);
    }
    g_assert_cmpuint(appdep_frame_batch_len(APPDEP_FRAME_MAX_RECORDS),
                     ==, APPDEP_FRAME_MAX_LEN);
    g_assert_cmpuint(appdep_frame_batch_len(APPDEP_FRAME_MAX_RECORDS + 1),
                     ==, 0);
    g_assert_cmpint(appdep_frame_encode_batch_header(0, 1, NULL, 0), ==,
                    -EINVAL);
    g_assert_cmpint(appdep_frame_encode_batch_header(1, 1, NULL, 10), ==,
                    -ENOSPC);
}

static void test_batch_corrupt(void)
{
    AppdepThreadRecord recs[2] = { sample_record(1), sample_record(2) };
    uint8_t good[APPDEP_FRAME_BATCH_FIXED_LEN + 2 * APPDEP_WIRE_THREAD_LEN];
    uint8_t buf[sizeof(good)];
    AppdepFrameBatch b;
    AppdepThreadRecord r;

    g_assert_cmpint(appdep_frame_encode_batch(5, recs, 2, good, sizeof(good)),
                    ==, sizeof(good));
    memcpy(buf, good, sizeof(buf));
    appdep_wire_put32(buf + 24, 3);             /* count vs length */
    g_assert_cmpint(appdep_frame_decode_batch(buf, sizeof(buf), &b), ==,
                    APPDEP_WIRE_BAD_LENGTH);
    memcpy(buf, good, sizeof(buf));
    appdep_wire_put32(buf + 24, 0xffffffffu);   /* count overflow */
    g_assert_cmpint(appdep_frame_decode_batch(buf, sizeof(buf), &b), ==,
                    APPDEP_WIRE_BAD_LENGTH);
    memcpy(buf, good, sizeof(buf));
    appdep_wire_put64(buf + 16, 0);             /* batch 0 */
    g_assert_cmpint(appdep_frame_decode_batch(buf, sizeof(buf), &b), ==,
                    APPDEP_WIRE_BAD_FIELD);
    memcpy(buf, good, sizeof(buf));
    buf[28] = 1;                                /* reserved */
    g_assert_cmpint(appdep_frame_decode_batch(buf, sizeof(buf), &b), ==,
                    APPDEP_WIRE_BAD_FIELD);
    memcpy(buf, good, sizeof(buf));
    appdep_wire_put32(buf + 8, sizeof(buf) + 1);    /* not whole records */
    g_assert_cmpint(appdep_frame_decode_batch(buf, sizeof(buf), &b), ==,
                    APPDEP_WIRE_BAD_LENGTH);
    memcpy(buf, good, sizeof(buf));
    buf[32 + APPDEP_WIRE_THREAD_LEN] ^= 0xff;   /* magic of record 1 */
    g_assert_cmpint(appdep_frame_decode_batch(buf, sizeof(buf), &b), ==,
                    APPDEP_WIRE_BAD_FIELD);
    memcpy(buf, good, sizeof(buf));
    appdep_wire_put32(buf + 32 + 8, 4096);      /* record claims more */
    g_assert_cmpint(appdep_frame_decode_batch(buf, sizeof(buf), &b), ==,
                    APPDEP_WIRE_BAD_FIELD);
    memcpy(buf, good, sizeof(buf));
    buf[32 + APPDEP_WIRE_THREAD_LEN + 12] = 1;  /* reserved of record 1 */
    g_assert_cmpint(appdep_frame_decode_batch(buf, sizeof(buf), &b), ==,
                    APPDEP_WIRE_BAD_FIELD);
    /* the reserved word in a record's body fails that record only */
    memcpy(buf, good, sizeof(buf));
    buf[32 + 164] = 1;                          /* reserved of record 0 */
    g_assert_cmpint(appdep_frame_decode_batch(buf, sizeof(buf), &b), ==,
                    APPDEP_WIRE_OK);
    g_assert_cmpint(appdep_frame_batch_record(&b, 0, &r), ==,
                    APPDEP_WIRE_BAD_FIELD);
    g_assert_cmpint(appdep_frame_batch_record(&b, 1, &r), ==,
                    APPDEP_WIRE_OK);
    /* a bad field fails that record only */
    memcpy(buf, good, sizeof(buf));
    buf[32 + 96] = 9;                           /* op of record 0 */
    g_assert_cmpint(appdep_frame_decode_batch(buf, sizeof(buf), &b), ==,
                    APPDEP_WIRE_OK);
    g_assert_cmpint(appdep_frame_batch_record(&b, 0, &r), ==,
                    APPDEP_WIRE_BAD_FIELD);
    g_assert_cmpint(appdep_frame_batch_record(&b, 1, &r), ==,
                    APPDEP_WIRE_OK);
}

static void test_small_frames(void)
{
    AppdepFrameCommand c = { .id = 0x1122334455667788ULL,
                             .op = APPDEP_CMD_INSPECT_OFF }, c2;
    AppdepFrameResult r = { .id = 9, .status = -ENOENT }, r2;
    uint8_t buf[APPDEP_FRAME_RESULT_LEN];
    uint64_t batch = 0;

    g_assert_cmpint(appdep_frame_encode_ack(123, buf, sizeof(buf)), ==,
                    APPDEP_FRAME_ACK_LEN);
    g_assert_cmpint(appdep_frame_decode_ack(buf, APPDEP_FRAME_ACK_LEN, &batch),
                    ==, APPDEP_WIRE_OK);
    g_assert_cmpuint(batch, ==, 123);
    g_assert_cmpint(appdep_frame_decode_command(buf, APPDEP_FRAME_ACK_LEN,
                                                &c2), ==,
                    APPDEP_WIRE_BAD_TYPE);

    g_assert_cmpint(appdep_frame_encode_command(&c, buf, sizeof(buf)), ==,
                    -EINVAL);           /* no VM */
    memset(c.vm, 'v', APPDEP_WIRE_VM_LEN);   /* full width, no NUL */
    g_assert_cmpint(appdep_frame_encode_command(&c, buf, sizeof(buf)), ==,
                    APPDEP_FRAME_COMMAND_LEN);
    g_assert_cmpint(appdep_frame_decode_command(buf, sizeof(buf), &c2), ==,
                    APPDEP_WIRE_OK);
    g_assert_cmpuint(c2.id, ==, c.id);
    g_assert_cmpstr(c2.vm, ==, c.vm);
    g_assert_cmpuint(c2.op, ==, c.op);
    buf[88] = 3;
    g_assert_cmpint(appdep_frame_decode_command(buf, sizeof(buf), &c2), ==,
                    APPDEP_WIRE_BAD_FIELD);
    buf[88] = 1;
    buf[95] = 1;
    g_assert_cmpint(appdep_frame_decode_command(buf, sizeof(buf), &c2), ==,
                    APPDEP_WIRE_BAD_FIELD);

    g_strlcpy(r.message, "there is no appdep object", sizeof(r.message));
    g_assert_cmpint(appdep_frame_encode_result(&r, buf, sizeof(buf)), ==,
                    APPDEP_FRAME_RESULT_LEN);
    g_assert_cmpint(appdep_frame_decode_result(buf, sizeof(buf), &r2), ==,
                    APPDEP_WIRE_OK);
    g_assert_cmpuint(r2.id, ==, 9);
    g_assert_cmpint(r2.status, ==, -ENOENT);
    g_assert_cmpstr(r2.message, ==, r.message);
    appdep_wire_put32(buf + 24, 5);             /* positive status */
    g_assert_cmpint(appdep_frame_decode_result(buf, sizeof(buf), &r2), ==,
                    APPDEP_WIRE_BAD_FIELD);
    /* a full-width message stays bounded */
    memset(r.message, 'm', APPDEP_FRAME_MSG_LEN);
    r.message[APPDEP_FRAME_MSG_LEN] = '\0';
    appdep_frame_encode_result(&r, buf, sizeof(buf));
    g_assert_cmpint(appdep_frame_decode_result(buf, sizeof(buf), &r2), ==,
                    APPDEP_WIRE_OK);
    g_assert_cmpuint(strlen(r2.message), ==, APPDEP_FRAME_MSG_LEN);
    r.status = 1;
    g_assert_cmpint(appdep_frame_encode_result(&r, buf, sizeof(buf)), ==,
                    -EINVAL);
    g_assert_cmpint(appdep_frame_encode_ack(1, buf, 23), ==, -ENOSPC);
}

/* Every prefix of every frame type: SHORT, never a read past the end. */
static void test_truncation(void)
{
    g_autofree AppdepFrameHello *h = sample_hello(4);
    g_autofree AppdepFrameHello *ho = g_new0(AppdepFrameHello, 1);
    AppdepThreadRecord recs[3] = {
        sample_record(0), sample_record(1), sample_record(2)
    };
    AppdepFrameCommand c = { .id = 1, .vm = "web1", .op = 1 }, co;
    AppdepFrameResult r = { .id = 1, .status = -5, .message = "x" }, ro;
    AppdepFrameBatch b;
    uint64_t a;
    size_t n;

    struct {
        uint8_t buf[APPDEP_FRAME_BATCH_FIXED_LEN + 3 * APPDEP_WIRE_THREAD_LEN +
                    APPDEP_FRAME_HELLO_FIXED_LEN + 4 * APPDEP_FRAME_VM_LEN];
        int len;
    } f[5];

    f[0].len = appdep_frame_encode_hello(h, f[0].buf, sizeof(f[0].buf));
    f[1].len = appdep_frame_encode_batch(3, recs, 3, f[1].buf,
                                         sizeof(f[1].buf));
    f[2].len = appdep_frame_encode_ack(3, f[2].buf, sizeof(f[2].buf));
    f[3].len = appdep_frame_encode_command(&c, f[3].buf, sizeof(f[3].buf));
    f[4].len = appdep_frame_encode_result(&r, f[4].buf, sizeof(f[4].buf));
    for (unsigned k = 0; k < G_N_ELEMENTS(f); k++) {
        g_assert_cmpint(f[k].len, >, 0);
        for (n = 0; n < (size_t)f[k].len; n++) {
            /* an exact-size heap copy, so a read past it is caught */
            g_autofree uint8_t *p = copy_exact(f[k].buf, n ? n : 1);

            g_assert_cmpint(appdep_frame_decode_hello(p, n, ho), ==,
                            k == 0 || n < APPDEP_WIRE_HDR_LEN ?
                            APPDEP_WIRE_SHORT : APPDEP_WIRE_BAD_TYPE);
            g_assert_cmpint(appdep_frame_decode_batch(p, n, &b), ==,
                            k == 1 || n < APPDEP_WIRE_HDR_LEN ?
                            APPDEP_WIRE_SHORT : APPDEP_WIRE_BAD_TYPE);
            g_assert_cmpint(appdep_frame_decode_ack(p, n, &a), ==,
                            k == 2 || n < APPDEP_WIRE_HDR_LEN ?
                            APPDEP_WIRE_SHORT : APPDEP_WIRE_BAD_TYPE);
            g_assert_cmpint(appdep_frame_decode_command(p, n, &co), ==,
                            k == 3 || n < APPDEP_WIRE_HDR_LEN ?
                            APPDEP_WIRE_SHORT : APPDEP_WIRE_BAD_TYPE);
            g_assert_cmpint(appdep_frame_decode_result(p, n, &ro), ==,
                            k == 4 || n < APPDEP_WIRE_HDR_LEN ?
                            APPDEP_WIRE_SHORT : APPDEP_WIRE_BAD_TYPE);
        }
    }
}

static void test_check_header(void)
{
    uint8_t buf[APPDEP_WIRE_THREAD_LEN];
    AppdepThreadRecord rec = sample_record(0);
    uint16_t type;
    uint32_t len;

    /* a thread record is not a frame, but it can be skipped */
    appdep_wire_encode_thread(&rec, buf);
    g_assert_cmpint(appdep_frame_check_header(buf, sizeof(buf), &type, &len),
                    ==, APPDEP_WIRE_BAD_TYPE);
    g_assert_cmpuint(len, ==, APPDEP_WIRE_THREAD_LEN);
    /* lengths beyond the frame limit, and the largest allowed */
    appdep_wire_put16(buf + 6, APPDEP_WIRE_BATCH);
    appdep_wire_put32(buf + 8, APPDEP_FRAME_MAX_LEN);
    g_assert_cmpint(appdep_frame_check_header(buf, 16, &type, &len), ==,
                    APPDEP_WIRE_OK);
    appdep_wire_put32(buf + 8, APPDEP_FRAME_MAX_LEN + APPDEP_WIRE_THREAD_LEN);
    g_assert_cmpint(appdep_frame_check_header(buf, 16, &type, &len), ==,
                    APPDEP_WIRE_BAD_LENGTH);
    appdep_wire_put32(buf + 8, 0xffffffffu);
    g_assert_cmpint(appdep_frame_check_header(buf, 16, &type, &len), ==,
                    APPDEP_WIRE_BAD_LENGTH);
    appdep_wire_put32(buf + 8, 15);
    appdep_wire_put16(buf + 6, 200);
    g_assert_cmpint(appdep_frame_check_header(buf, 16, &type, &len), ==,
                    APPDEP_WIRE_BAD_LENGTH);
    g_assert_cmpint(appdep_frame_check_header(buf, 15, &type, &len), ==,
                    APPDEP_WIRE_SHORT);
    g_assert_cmpstr(appdep_wire_status_str(APPDEP_WIRE_BAD_MAGIC), ==,
                    "bad magic");
}

/*
 * Random mutations of valid frames: decoders return a status, never
 * crash, and whatever they accept re-encodes to a valid frame.
 */
static void test_fuzz(void)
{
    g_autofree AppdepFrameHello *h = sample_hello(3);
    g_autofree AppdepFrameHello *ho = g_new0(AppdepFrameHello, 1);
    AppdepThreadRecord recs[2] = { sample_record(0), sample_record(1) };
    AppdepFrameCommand c = { .id = 1, .vm = "web1", .op = 1 }, co;
    AppdepFrameResult r = { .id = 1, .status = -5, .message = "x" }, ro;
    g_autoptr(GRand) rnd = g_rand_new_with_seed(0xadd9);
    uint8_t seeds[5][APPDEP_FRAME_HELLO_FIXED_LEN + 3 * APPDEP_FRAME_VM_LEN];
    int lens[5];
    unsigned accepted = 0;

    lens[0] = appdep_frame_encode_hello(h, seeds[0], sizeof(seeds[0]));
    lens[1] = appdep_frame_encode_batch(1, recs, 2, seeds[1],
                                        sizeof(seeds[1]));
    lens[2] = appdep_frame_encode_ack(1, seeds[2], sizeof(seeds[2]));
    lens[3] = appdep_frame_encode_command(&c, seeds[3], sizeof(seeds[3]));
    lens[4] = appdep_frame_encode_result(&r, seeds[4], sizeof(seeds[4]));

    for (unsigned i = 0; i < FUZZ_ROUNDS; i++) {
        unsigned k = g_rand_int_range(rnd, 0, 5);
        size_t n = lens[k];
        g_autofree uint8_t *p = NULL;
        unsigned flips = g_rand_int_range(rnd, 1, 4);
        uint8_t out[APPDEP_FRAME_HELLO_FIXED_LEN + 3 * APPDEP_FRAME_VM_LEN];
        AppdepFrameBatch b;
        uint64_t a;
        uint16_t type;
        uint32_t len;

        if (g_rand_boolean(rnd)) {
            n = g_rand_int_range(rnd, 0, n + 1);
        }
        p = copy_exact(seeds[k], MAX(n, 1));
        for (unsigned j = 0; j < flips && n; j++) {
            p[g_rand_int_range(rnd, 0, n)] = g_rand_int_range(rnd, 0, 256);
        }
        if (appdep_frame_check_header(p, n, &type, &len) == APPDEP_WIRE_OK) {
            g_assert_cmpuint(len, <=, APPDEP_FRAME_MAX_LEN);
        }
        if (appdep_frame_decode_hello(p, n, ho) == APPDEP_WIRE_OK) {
            g_assert_cmpint(appdep_frame_encode_hello(ho, out, sizeof(out)),
                            >, 0);
            accepted++;
        }
        if (appdep_frame_decode_batch(p, n, &b) == APPDEP_WIRE_OK) {
            AppdepThreadRecord rec;

            g_assert(b.records + (size_t)b.count * APPDEP_WIRE_THREAD_LEN <=
                     p + n);
            for (uint32_t j = 0; j < b.count; j++) {
                appdep_frame_batch_record(&b, j, &rec);
            }
            accepted++;
        }
        if (appdep_frame_decode_ack(p, n, &a) == APPDEP_WIRE_OK) {
            accepted++;
        }
        if (appdep_frame_decode_command(p, n, &co) == APPDEP_WIRE_OK) {
            g_assert_cmpint(appdep_frame_encode_command(&co, out, sizeof(out)),
                            ==, APPDEP_FRAME_COMMAND_LEN);
            accepted++;
        }
        if (appdep_frame_decode_result(p, n, &ro) == APPDEP_WIRE_OK) {
            g_assert_cmpint(appdep_frame_encode_result(&ro, out, sizeof(out)),
                            ==, APPDEP_FRAME_RESULT_LEN);
            accepted++;
        }
    }
    /* some mutations hit only payload bytes: they must still decode */
    g_assert_cmpuint(accepted, >, 0);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/frame/hello/roundtrip", test_hello_roundtrip);
    g_test_add_func("/frame/hello/invalid", test_hello_invalid);
    g_test_add_func("/frame/hello/corrupt", test_hello_corrupt);
    g_test_add_func("/frame/batch/roundtrip", test_batch_roundtrip);
    g_test_add_func("/frame/batch/corrupt", test_batch_corrupt);
    g_test_add_func("/frame/small", test_small_frames);
    g_test_add_func("/frame/truncation", test_truncation);
    g_test_add_func("/frame/check-header", test_check_header);
    g_test_add_func("/frame/fuzz", test_fuzz);
    return g_test_run();
}
