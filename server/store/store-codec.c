/*
 * appdep server store: the value codec, versions 1 and 2 (pure: bytes in,
 * struct out; any thread).
 *
 * Copyright (c) 2026 appdep authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include <errno.h>
#include <string.h>
#include "store-int.h"

/*
 * Value layout, version 2 (written), little-endian, variable length
 * (offsets):
 *    0 u16 version (2)  2 u8 direction  3 u8 family  4 u32 seq
 *    8 u64 send_ns  16 u64 recv_ns  24 u64 bytes
 *   32 u16 cport  34 u16 sport  36 u8 alen (4: IPv4, 16: IPv6)
 *   37 u8 caddr[alen]  37 + alen u8 saddr[alen]
 *   then the sender and the receiver, each:
 *        +0 u32 pid  +4 u32 tid  +8 u8 vm_len  +9 u8 comm_len
 *        +10 u8 vm[vm_len]  u8 comm[comm_len] (no NUL)
 * 64 bytes for an IPv4 message between threads without names; with
 * short VM and command names about 80, where version 1 took 248.
 *
 * Version 1 (schema 2 stores; read, no longer written), 248 bytes:
 *    0 u16 version  2 u8 direction  3 u8 family  4 u32 seq
 *    8 u64 send_ns  16 u64 recv_ns  24 u64 bytes
 *   32 sender, 120 receiver, each STORE_THREAD_LEN bytes:
 *        +0 u8 vm[64] (NUL-padded)  +64 u32 pid  +68 u32 tid
 *        +72 u8 comm[16] (NUL-padded)
 *  208 u8 caddr[16]  224 u8 saddr[16]  240 u16 cport  242 u16 sport
 *  244 u32 reserved (0)
 */
#define STORE_V1_VERSION        1
#define STORE_V1_LEN            248
#define STORE_THREAD_LEN        (APPDEP_WIRE_VM_LEN + 8 + APPDEP_WIRE_COMM_LEN)
#define STORE_OFF_SENDER        32
#define STORE_OFF_RECEIVER      (STORE_OFF_SENDER + STORE_THREAD_LEN)
#define STORE_OFF_CONN          (STORE_OFF_RECEIVER + STORE_THREAD_LEN)
#define STORE_V2_FIXED          37      /* up to the addresses */
#define STORE_V2_THREAD_FIXED   10      /* pid, tid, the two lengths */

G_STATIC_ASSERT(STORE_OFF_CONN + 40 == STORE_V1_LEN);
G_STATIC_ASSERT(STORE_V2_FIXED + 2 * 16 +
                2 * (STORE_V2_THREAD_FIXED + APPDEP_WIRE_VM_LEN +
                     APPDEP_WIRE_COMM_LEN) <= APPDEP_STORE_VALUE_MAX);

/* A NUL-padded field: after the first NUL, only NULs (canonical form). */
static bool field_padded(const uint8_t *p, size_t n)
{
    const uint8_t *nul = memchr(p, 0, n);
    size_t i;

    if (!nul) {
        return true;
    }
    for (i = nul - p; i < n; i++) {
        if (p[i]) {
            return false;
        }
    }
    return true;
}

bool appdep_store_message_valid(const AppdepMessage *m)
{
    if (m->direction != APPDEP_DIR_REQUEST &&
        m->direction != APPDEP_DIR_RESPONSE) {
        return false;
    }
    if (m->conn.family != APPDEP_FAMILY_IPV4 &&
        m->conn.family != APPDEP_FAMILY_IPV6) {
        return false;
    }
    return str_fits(m->sender.vm, APPDEP_WIRE_VM_LEN) &&
           str_fits(m->sender.comm, APPDEP_WIRE_COMM_LEN) &&
           str_fits(m->receiver.vm, APPDEP_WIRE_VM_LEN) &&
           str_fits(m->receiver.comm, APPDEP_WIRE_COMM_LEN);
}

/* One thread, version 2; returns the bytes written. */
static size_t encode_thread(const AppdepThreadId *t, uint8_t *p)
{
    size_t vlen = strnlen(t->vm, APPDEP_WIRE_VM_LEN);
    size_t clen = strnlen(t->comm, APPDEP_WIRE_COMM_LEN);

    appdep_wire_put32(p, t->pid);
    appdep_wire_put32(p + 4, t->tid);
    p[8] = vlen;
    p[9] = clen;
    memcpy(p + STORE_V2_THREAD_FIXED, t->vm, vlen);
    memcpy(p + STORE_V2_THREAD_FIXED + vlen, t->comm, clen);
    return STORE_V2_THREAD_FIXED + vlen + clen;
}

/* IPv4 addresses fill the first 4 bytes of their fields: store those. */
static size_t addr_len(const AppdepConn *c)
{
    uint32_t w[6];

    if (c->family != APPDEP_FAMILY_IPV4) {
        return 16;
    }
    memcpy(w, c->caddr + 4, 12);
    memcpy(w + 3, c->saddr + 4, 12);
    return (w[0] | w[1] | w[2] | w[3] | w[4] | w[5]) ? 16 : 4;
}

size_t appdep_store_encode(const AppdepMessage *m,
                           uint8_t buf[APPDEP_STORE_VALUE_MAX])
{
    size_t alen = addr_len(&m->conn), n;

    appdep_wire_put16(buf, APPDEP_STORE_VALUE_VERSION);
    buf[2] = m->direction;
    buf[3] = m->conn.family;
    appdep_wire_put32(buf + 4, m->seq);
    appdep_wire_put64(buf + 8, m->send_ns);
    appdep_wire_put64(buf + 16, m->recv_ns);
    appdep_wire_put64(buf + 24, m->bytes);
    appdep_wire_put16(buf + 32, m->conn.cport);
    appdep_wire_put16(buf + 34, m->conn.sport);
    buf[36] = alen;
    memcpy(buf + STORE_V2_FIXED, m->conn.caddr, alen);
    memcpy(buf + STORE_V2_FIXED + alen, m->conn.saddr, alen);
    n = STORE_V2_FIXED + 2 * alen;
    n += encode_thread(&m->sender, buf + n);
    n += encode_thread(&m->receiver, buf + n);
    return n;
}

static bool decode_thread_v1(const uint8_t *p, AppdepThreadId *t)
{
    const uint8_t *comm = p + APPDEP_WIRE_VM_LEN + 8;

    if (!field_padded(p, APPDEP_WIRE_VM_LEN) ||
        !field_padded(comm, APPDEP_WIRE_COMM_LEN)) {
        return false;
    }
    appdep_wire_get_str(t->vm, p, APPDEP_WIRE_VM_LEN);
    t->pid = appdep_wire_get32(p + APPDEP_WIRE_VM_LEN);
    t->tid = appdep_wire_get32(p + APPDEP_WIRE_VM_LEN + 4);
    appdep_wire_get_str(t->comm, comm, APPDEP_WIRE_COMM_LEN);
    return true;
}

/* The first 32 bytes, the same in versions 1 and 2 (length checked). */
static void decode_head(const uint8_t *buf, AppdepMessage *m)
{
    m->direction = buf[2];
    m->conn.family = buf[3];
    m->seq = appdep_wire_get32(buf + 4);
    m->send_ns = appdep_wire_get64(buf + 8);
    m->recv_ns = appdep_wire_get64(buf + 16);
    m->bytes = appdep_wire_get64(buf + 24);
}

static int decode_v1(const uint8_t *buf, size_t len, AppdepMessage *m)
{
    const uint8_t *c = buf + STORE_OFF_CONN;

    if (len != STORE_V1_LEN || appdep_wire_get32(c + 36) != 0) {
        return -EBADMSG;
    }
    decode_head(buf, m);
    if (!decode_thread_v1(buf + STORE_OFF_SENDER, &m->sender) ||
        !decode_thread_v1(buf + STORE_OFF_RECEIVER, &m->receiver)) {
        return -EBADMSG;
    }
    memcpy(m->conn.caddr, c, 16);
    memcpy(m->conn.saddr, c + 16, 16);
    m->conn.cport = appdep_wire_get16(c + 32);
    m->conn.sport = appdep_wire_get16(c + 34);
    return 0;
}

/*
 * One thread of a version 2 value at *@off of @len bytes: lengths within
 * their fields and the value, no NUL inside the names (the form encode
 * writes); *@off moves past it.
 */
static bool decode_thread_v2(const uint8_t *buf, size_t len, size_t *off,
                             AppdepThreadId *t)
{
    const uint8_t *p = buf + *off;
    size_t vlen, clen;

    if (len - *off < STORE_V2_THREAD_FIXED) {
        return false;
    }
    vlen = p[8];
    clen = p[9];
    if (vlen > APPDEP_WIRE_VM_LEN || clen > APPDEP_WIRE_COMM_LEN ||
        len - *off - STORE_V2_THREAD_FIXED < vlen + clen ||
        memchr(p + STORE_V2_THREAD_FIXED, 0, vlen + clen)) {
        return false;
    }
    t->pid = appdep_wire_get32(p);
    t->tid = appdep_wire_get32(p + 4);
    memcpy(t->vm, p + STORE_V2_THREAD_FIXED, vlen);
    t->vm[vlen] = '\0';
    memcpy(t->comm, p + STORE_V2_THREAD_FIXED + vlen, clen);
    t->comm[clen] = '\0';
    *off += STORE_V2_THREAD_FIXED + vlen + clen;
    return true;
}

static int decode_v2(const uint8_t *buf, size_t len, AppdepMessage *m)
{
    size_t alen, off;

    if (len < STORE_V2_FIXED) {
        return -EBADMSG;
    }
    decode_head(buf, m);
    m->conn.cport = appdep_wire_get16(buf + 32);
    m->conn.sport = appdep_wire_get16(buf + 34);
    alen = buf[36];
    if ((alen != 4 && alen != 16) || len - STORE_V2_FIXED < 2 * alen) {
        return -EBADMSG;
    }
    memcpy(m->conn.caddr, buf + STORE_V2_FIXED, alen);
    memcpy(m->conn.saddr, buf + STORE_V2_FIXED + alen, alen);
    /* the canonical form: 4 bytes exactly for IPv4 with a zero tail */
    if (alen != addr_len(&m->conn)) {
        return -EBADMSG;
    }
    off = STORE_V2_FIXED + 2 * alen;
    if (!decode_thread_v2(buf, len, &off, &m->sender) ||
        !decode_thread_v2(buf, len, &off, &m->receiver) || off != len) {
        return -EBADMSG;
    }
    return 0;
}

int appdep_store_decode(const uint8_t *buf, size_t len, AppdepMessage *m)
{
    int rc;

    if (len < 2) {
        return -EBADMSG;
    }
    memset(m, 0, sizeof(*m));
    switch (appdep_wire_get16(buf)) {
    case APPDEP_STORE_VALUE_VERSION:
        rc = decode_v2(buf, len, m);
        break;
    case STORE_V1_VERSION:
        rc = decode_v1(buf, len, m);
        break;
    default:
        rc = -EBADMSG;
    }
    if (rc == 0 && !appdep_store_message_valid(m)) {
        rc = -EBADMSG;
    }
    return rc;
}

