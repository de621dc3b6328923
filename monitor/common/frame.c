/*
 * appdep frames between the forward daemon and the APM server.
 *
 * Copyright (c) 2026 appdep authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include <errno.h>
#include "frame.h"

/* Offsets inside a HELLO VM entry. */
#define VM_ENABLED_OFF      64
#define VM_NADDR_OFF        65
#define VM_ADDRS_OFF        72

size_t appdep_frame_hello_len(uint32_t nvms)
{
    if (nvms > APPDEP_FRAME_MAX_VMS) {
        return 0;
    }
    return APPDEP_FRAME_HELLO_FIXED_LEN + (size_t)nvms * APPDEP_FRAME_VM_LEN;
}

size_t appdep_frame_batch_len(uint32_t count)
{
    if (count > APPDEP_FRAME_MAX_RECORDS) {
        return 0;
    }
    return APPDEP_FRAME_BATCH_FIXED_LEN +
           (size_t)count * APPDEP_WIRE_THREAD_LEN;
}

static bool all_zero(const uint8_t *p, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++) {
        if (p[i]) {
            return false;
        }
    }
    return true;
}

/* Is @l a length a frame of @type may have? */
static bool frame_len_ok(uint16_t type, uint32_t l)
{
    switch (type) {
    case APPDEP_WIRE_HELLO:
        return l >= APPDEP_FRAME_HELLO_FIXED_LEN &&
               l <= APPDEP_FRAME_HELLO_MAX_LEN &&
               (l - APPDEP_FRAME_HELLO_FIXED_LEN) % APPDEP_FRAME_VM_LEN == 0;
    case APPDEP_WIRE_BATCH:
        return l >= APPDEP_FRAME_BATCH_FIXED_LEN &&
               (l - APPDEP_FRAME_BATCH_FIXED_LEN) % APPDEP_WIRE_THREAD_LEN == 0;
    case APPDEP_WIRE_ACK:
        return l == APPDEP_FRAME_ACK_LEN;
    case APPDEP_WIRE_COMMAND:
        return l == APPDEP_FRAME_COMMAND_LEN;
    case APPDEP_WIRE_RESULT:
        return l == APPDEP_FRAME_RESULT_LEN;
    default:
        return true;
    }
}

static bool frame_type_known(uint16_t type)
{
    return type >= APPDEP_WIRE_HELLO && type <= APPDEP_WIRE_RESULT;
}

int appdep_frame_check_header(const uint8_t *buf, size_t avail,
                              uint16_t *type, uint32_t *len)
{
    uint16_t t;
    uint32_t l;
    int ret;

    ret = appdep_wire_check_hdr(buf, avail, APPDEP_FRAME_MAX_LEN, &t, &l);
    if (ret != APPDEP_WIRE_OK) {
        return ret;
    }
    if (!frame_len_ok(t, l)) {
        return APPDEP_WIRE_BAD_LENGTH;
    }
    *type = t;
    *len = l;
    return frame_type_known(t) ? APPDEP_WIRE_OK : APPDEP_WIRE_BAD_TYPE;
}

/*
 * Common prologue of the decoders: a valid header of @want with the whole
 * frame in @avail.  Stores the frame length in *@len.
 */
static int frame_begin(const uint8_t *buf, size_t avail, uint16_t want,
                       uint32_t *len)
{
    uint16_t type;
    int ret;

    ret = appdep_frame_check_header(buf, avail, &type, len);
    if (ret != APPDEP_WIRE_OK) {
        return ret;
    }
    if (type != want) {
        return APPDEP_WIRE_BAD_TYPE;
    }
    if (avail < *len) {
        return APPDEP_WIRE_SHORT;
    }
    return APPDEP_WIRE_OK;
}

/* A NUL-padded text field: no byte after the first NUL may be set. */
static bool str_field_ok(const uint8_t *p, size_t n)
{
    size_t i;

    for (i = 0; i < n && p[i]; i++) {
        /* nothing: find the end */
    }
    return all_zero(p + i, n - i);
}

static int decode_vm(const uint8_t *p, AppdepFrameVm *vm)
{
    unsigned i;

    if (!str_field_ok(p, APPDEP_WIRE_VM_LEN) || !p[0]) {
        return APPDEP_WIRE_BAD_FIELD;
    }
    appdep_wire_get_str(vm->vm, p, APPDEP_WIRE_VM_LEN);
    if (p[VM_ENABLED_OFF] > 1 || p[VM_NADDR_OFF] > APPDEP_FRAME_MAX_ADDRS ||
        !all_zero(p + 66, VM_ADDRS_OFF - 66)) {
        return APPDEP_WIRE_BAD_FIELD;
    }
    vm->enabled = p[VM_ENABLED_OFF];
    vm->naddr = p[VM_NADDR_OFF];
    memset(vm->addrs, 0, sizeof(vm->addrs));
    for (i = 0; i < APPDEP_FRAME_MAX_ADDRS; i++) {
        const uint8_t *a = p + VM_ADDRS_OFF + i * APPDEP_FRAME_ADDR_LEN;

        if (i >= vm->naddr) {
            if (!all_zero(a, APPDEP_FRAME_ADDR_LEN)) {
                return APPDEP_WIRE_BAD_FIELD;
            }
            continue;
        }
        if ((a[0] != APPDEP_FAMILY_IPV4 && a[0] != APPDEP_FAMILY_IPV6) ||
            a[1] || a[18] || a[19] ||
            (a[0] == APPDEP_FAMILY_IPV4 && !all_zero(a + 6, 12))) {
            return APPDEP_WIRE_BAD_FIELD;
        }
        vm->addrs[i].family = a[0];
        memcpy(vm->addrs[i].addr, a + 2, 16);
    }
    return APPDEP_WIRE_OK;
}

int appdep_frame_decode_hello(const uint8_t *buf, size_t avail,
                              AppdepFrameHello *h)
{
    uint32_t len, i;
    int ret;

    ret = frame_begin(buf, avail, APPDEP_WIRE_HELLO, &len);
    if (ret != APPDEP_WIRE_OK) {
        return ret;
    }
    h->protocol = appdep_wire_get32(buf + 16);
    if (h->protocol != APPDEP_FRAME_PROTOCOL) {
        return APPDEP_WIRE_BAD_VERSION;
    }
    h->nvms = appdep_wire_get32(buf + 20);
    /* check_header bounded len, so nvms is compared in range */
    if (h->nvms > APPDEP_FRAME_MAX_VMS ||
        appdep_frame_hello_len(h->nvms) != len) {
        return APPDEP_WIRE_BAD_LENGTH;
    }
    if (!str_field_ok(buf + 24, APPDEP_FRAME_HOST_LEN) || !buf[24]) {
        return APPDEP_WIRE_BAD_FIELD;
    }
    appdep_wire_get_str(h->host, buf + 24, APPDEP_FRAME_HOST_LEN);
    for (i = 0; i < h->nvms; i++) {
        ret = decode_vm(buf + APPDEP_FRAME_HELLO_FIXED_LEN +
                        (size_t)i * APPDEP_FRAME_VM_LEN, &h->vms[i]);
        if (ret != APPDEP_WIRE_OK) {
            return ret;
        }
    }
    return APPDEP_WIRE_OK;
}

int appdep_frame_decode_batch(const uint8_t *buf, size_t avail,
                              AppdepFrameBatch *b)
{
    uint32_t len, i;
    int ret;

    ret = frame_begin(buf, avail, APPDEP_WIRE_BATCH, &len);
    if (ret != APPDEP_WIRE_OK) {
        return ret;
    }
    b->batch = appdep_wire_get64(buf + 16);
    b->count = appdep_wire_get32(buf + 24);
    if (b->count > APPDEP_FRAME_MAX_RECORDS ||
        appdep_frame_batch_len(b->count) != len) {
        return APPDEP_WIRE_BAD_LENGTH;
    }
    if (b->batch == 0 || appdep_wire_get32(buf + 28) != 0) {
        return APPDEP_WIRE_BAD_FIELD;
    }
    b->records = buf + APPDEP_FRAME_BATCH_FIXED_LEN;
    for (i = 0; i < b->count; i++) {
        const uint8_t *r = b->records + (size_t)i * APPDEP_WIRE_THREAD_LEN;
        uint16_t type;
        uint32_t l;

        /* the slot is fixed-size: a record claiming another size lies */
        ret = appdep_wire_check_header(r, APPDEP_WIRE_THREAD_LEN, &type, &l);
        if (ret != APPDEP_WIRE_OK) {
            return APPDEP_WIRE_BAD_FIELD;
        }
    }
    return APPDEP_WIRE_OK;
}

int appdep_frame_batch_record(const AppdepFrameBatch *b, uint32_t i,
                              AppdepThreadRecord *r)
{
    size_t used;

    if (i >= b->count) {
        return APPDEP_WIRE_SHORT;
    }
    return appdep_wire_decode_thread(b->records +
                                     (size_t)i * APPDEP_WIRE_THREAD_LEN,
                                     APPDEP_WIRE_THREAD_LEN, r, &used);
}

int appdep_frame_decode_ack(const uint8_t *buf, size_t avail,
                            uint64_t *batch)
{
    uint32_t len;
    int ret;

    ret = frame_begin(buf, avail, APPDEP_WIRE_ACK, &len);
    if (ret != APPDEP_WIRE_OK) {
        return ret;
    }
    *batch = appdep_wire_get64(buf + 16);
    return APPDEP_WIRE_OK;
}

int appdep_frame_decode_command(const uint8_t *buf, size_t avail,
                                AppdepFrameCommand *c)
{
    uint32_t len;
    int ret;

    ret = frame_begin(buf, avail, APPDEP_WIRE_COMMAND, &len);
    if (ret != APPDEP_WIRE_OK) {
        return ret;
    }
    c->id = appdep_wire_get64(buf + 16);
    if (!str_field_ok(buf + 24, APPDEP_WIRE_VM_LEN) || !buf[24]) {
        return APPDEP_WIRE_BAD_FIELD;
    }
    appdep_wire_get_str(c->vm, buf + 24, APPDEP_WIRE_VM_LEN);
    c->op = buf[88];
    if ((c->op != APPDEP_CMD_INSPECT_ON && c->op != APPDEP_CMD_INSPECT_OFF) ||
        !all_zero(buf + 89, 7)) {
        return APPDEP_WIRE_BAD_FIELD;
    }
    return APPDEP_WIRE_OK;
}

int appdep_frame_decode_result(const uint8_t *buf, size_t avail,
                               AppdepFrameResult *r)
{
    uint32_t len;
    int ret;

    ret = frame_begin(buf, avail, APPDEP_WIRE_RESULT, &len);
    if (ret != APPDEP_WIRE_OK) {
        return ret;
    }
    r->id = appdep_wire_get64(buf + 16);
    r->status = (int32_t)appdep_wire_get32(buf + 24);
    if (r->status > 0 || appdep_wire_get32(buf + 28) != 0 ||
        !str_field_ok(buf + 32, APPDEP_FRAME_MSG_LEN)) {
        return APPDEP_WIRE_BAD_FIELD;
    }
    appdep_wire_get_str(r->message, buf + 32, APPDEP_FRAME_MSG_LEN);
    return APPDEP_WIRE_OK;
}

/* Zero @len bytes of @buf and write a frame header; @len <= @size checked. */
static void put_header(uint8_t *buf, uint16_t type, uint32_t len)
{
    memset(buf, 0, len);
    appdep_wire_put32(buf, APPDEP_WIRE_MAGIC);
    appdep_wire_put16(buf + 4, APPDEP_WIRE_VERSION);
    appdep_wire_put16(buf + 6, type);
    appdep_wire_put32(buf + 8, len);
}

int appdep_frame_encode_hello(const AppdepFrameHello *h, uint8_t *buf,
                              size_t size)
{
    size_t len = appdep_frame_hello_len(h->nvms);
    uint32_t i;
    unsigned j;

    if (!len || !h->host[0]) {
        return -EINVAL;
    }
    for (i = 0; i < h->nvms; i++) {
        const AppdepFrameVm *vm = &h->vms[i];

        if (!vm->vm[0] || vm->naddr > APPDEP_FRAME_MAX_ADDRS) {
            return -EINVAL;
        }
        for (j = 0; j < vm->naddr; j++) {
            if (vm->addrs[j].family != APPDEP_FAMILY_IPV4 &&
                vm->addrs[j].family != APPDEP_FAMILY_IPV6) {
                return -EINVAL;
            }
        }
    }
    if (size < len) {
        return -ENOSPC;
    }
    put_header(buf, APPDEP_WIRE_HELLO, len);
    appdep_wire_put32(buf + 16, APPDEP_FRAME_PROTOCOL);
    appdep_wire_put32(buf + 20, h->nvms);
    appdep_wire_put_str(buf + 24, h->host, APPDEP_FRAME_HOST_LEN);
    for (i = 0; i < h->nvms; i++) {
        const AppdepFrameVm *vm = &h->vms[i];
        uint8_t *p = buf + APPDEP_FRAME_HELLO_FIXED_LEN +
                     (size_t)i * APPDEP_FRAME_VM_LEN;

        appdep_wire_put_str(p, vm->vm, APPDEP_WIRE_VM_LEN);
        p[VM_ENABLED_OFF] = vm->enabled;
        p[VM_NADDR_OFF] = vm->naddr;
        for (j = 0; j < vm->naddr; j++) {
            uint8_t *a = p + VM_ADDRS_OFF + j * APPDEP_FRAME_ADDR_LEN;

            a[0] = vm->addrs[j].family;
            memcpy(a + 2, vm->addrs[j].addr,
                   vm->addrs[j].family == APPDEP_FAMILY_IPV4 ? 4 : 16);
        }
    }
    return len;
}

int appdep_frame_encode_batch_header(uint64_t batch, uint32_t count,
                                     uint8_t *buf, size_t size)
{
    size_t len = appdep_frame_batch_len(count);

    if (!len || !batch) {
        return -EINVAL;
    }
    if (size < len) {
        return -ENOSPC;
    }
    /* only the fixed part: the caller fills the records */
    memset(buf, 0, APPDEP_FRAME_BATCH_FIXED_LEN);
    appdep_wire_put32(buf, APPDEP_WIRE_MAGIC);
    appdep_wire_put16(buf + 4, APPDEP_WIRE_VERSION);
    appdep_wire_put16(buf + 6, APPDEP_WIRE_BATCH);
    appdep_wire_put32(buf + 8, len);
    appdep_wire_put64(buf + 16, batch);
    appdep_wire_put32(buf + 24, count);
    return len;
}

int appdep_frame_encode_batch(uint64_t batch, const AppdepThreadRecord *recs,
                              uint32_t count, uint8_t *buf, size_t size)
{
    int len = appdep_frame_encode_batch_header(batch, count, buf, size);
    uint32_t i;

    if (len < 0) {
        return len;
    }
    for (i = 0; i < count; i++) {
        appdep_wire_encode_thread(&recs[i], buf + APPDEP_FRAME_BATCH_FIXED_LEN +
                                  (size_t)i * APPDEP_WIRE_THREAD_LEN);
    }
    return len;
}

int appdep_frame_encode_ack(uint64_t batch, uint8_t *buf, size_t size)
{
    if (size < APPDEP_FRAME_ACK_LEN) {
        return -ENOSPC;
    }
    put_header(buf, APPDEP_WIRE_ACK, APPDEP_FRAME_ACK_LEN);
    appdep_wire_put64(buf + 16, batch);
    return APPDEP_FRAME_ACK_LEN;
}

int appdep_frame_encode_command(const AppdepFrameCommand *c, uint8_t *buf,
                                size_t size)
{
    if (!c->vm[0] ||
        (c->op != APPDEP_CMD_INSPECT_ON && c->op != APPDEP_CMD_INSPECT_OFF)) {
        return -EINVAL;
    }
    if (size < APPDEP_FRAME_COMMAND_LEN) {
        return -ENOSPC;
    }
    put_header(buf, APPDEP_WIRE_COMMAND, APPDEP_FRAME_COMMAND_LEN);
    appdep_wire_put64(buf + 16, c->id);
    appdep_wire_put_str(buf + 24, c->vm, APPDEP_WIRE_VM_LEN);
    buf[88] = c->op;
    return APPDEP_FRAME_COMMAND_LEN;
}

int appdep_frame_encode_result(const AppdepFrameResult *r, uint8_t *buf,
                               size_t size)
{
    if (r->status > 0) {
        return -EINVAL;
    }
    if (size < APPDEP_FRAME_RESULT_LEN) {
        return -ENOSPC;
    }
    put_header(buf, APPDEP_WIRE_RESULT, APPDEP_FRAME_RESULT_LEN);
    appdep_wire_put64(buf + 16, r->id);
    appdep_wire_put32(buf + 24, (uint32_t)r->status);
    appdep_wire_put_str(buf + 32, r->message, APPDEP_FRAME_MSG_LEN);
    return APPDEP_FRAME_RESULT_LEN;
}
