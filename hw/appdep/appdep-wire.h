/*
 * appdep record wire format, shared by QEMU (hw/appdep), the forward
 * daemon (monitor/) and the APM server (server/).
 *
 * A stream is a sequence of records.  Every record starts with a fixed
 * 16-byte header {magic, version, type, length}; all integers are
 * little-endian and fixed width, whatever the host.  `length` is the size
 * of the whole record, header included, so a reader that does not know a
 * type can skip it, and a reader that meets garbage can resynchronise by
 * scanning for the next valid header.
 *
 * This header is self-contained (C99 + stdint) and the codec below is pure:
 * bytes in, struct out, no allocation, no I/O.
 *
 * Copyright (c) 2026 appdep authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef APPDEP_WIRE_H
#define APPDEP_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define APPDEP_WIRE_MAGIC       0x50444441u /* "ADDP" in memory order */
#define APPDEP_WIRE_VERSION     1
#define APPDEP_WIRE_HDR_LEN     16
/* No record of any type is larger: a header claiming more is garbage. */
#define APPDEP_WIRE_MAX_LEN     4096

#define APPDEP_WIRE_VM_LEN      64  /* VM id, NUL-padded, not terminated */
#define APPDEP_WIRE_COMM_LEN    16  /* task comm, as the kernel's TASK_COMM_LEN */

enum AppdepWireType {
    APPDEP_WIRE_THREAD = 1,     /* per-thread traffic record */
};

/*
 * Frames between the forward daemon (monitor/) and the APM server
 * (server/), over TCP.  Same 16-byte header; types from 16; their own
 * size limit.  Layouts (offsets from the frame start, after the header):
 *
 * HELLO     fwd -> server, first frame of a connection; also sent again
 *           whenever the inventory changes
 *   16 u32 protocol (APPDEP_FRAME_PROTOCOL)  20 u32 nvms
 *   24 u8 host[64]  (NUL-padded)
 *   88 nvms x VM entry (APPDEP_FRAME_VM_LEN bytes each):
 *        +0 u8 vm[64]  +64 u8 enabled  +65 u8 naddr  +66 u16 0  +68 u32 0
 *        +72 4 x { u8 family, u8 0, u8 addr[16], u16 0 }   (20 bytes each)
 * BATCH     fwd -> server
 *   16 u64 batch (per-daemon sequence number, from 1, +1 per batch)
 *   24 u32 count  28 u32 0   32 count x thread record (176 bytes each)
 * ACK       server -> fwd: every batch <= this one is committed
 *   16 u64 batch
 * COMMAND   server -> fwd
 *   16 u64 id  24 u8 vm[64]  88 u8 op (1 inspect on, 2 inspect off)
 *   89 u8[7] 0
 * RESULT    fwd -> server
 *   16 u64 id  24 i32 status (0 or -errno)  28 u32 0  32 u8 message[256]
 */
enum AppdepFrameType {
    APPDEP_WIRE_HELLO = 16,
    APPDEP_WIRE_BATCH = 17,
    APPDEP_WIRE_ACK = 18,
    APPDEP_WIRE_COMMAND = 19,
    APPDEP_WIRE_RESULT = 20,
};

#define APPDEP_FRAME_PROTOCOL       1
/* The server listens on it, forward daemons connect to it. */
#define APPDEP_FRAME_PORT_DEFAULT   7400
#define APPDEP_FRAME_HOST_LEN       64
#define APPDEP_FRAME_MAX_VMS        256
#define APPDEP_FRAME_MAX_ADDRS      4
#define APPDEP_FRAME_VM_LEN         152
#define APPDEP_FRAME_MAX_RECORDS    4096
#define APPDEP_FRAME_MSG_LEN        256
#define APPDEP_FRAME_MAX_LEN \
    (32 + APPDEP_FRAME_MAX_RECORDS * APPDEP_WIRE_THREAD_LEN)

enum AppdepCommandOp {
    APPDEP_CMD_INSPECT_ON = 1,
    APPDEP_CMD_INSPECT_OFF = 2,
};

enum AppdepWireOp {
    APPDEP_OP_SEND = 1,
    APPDEP_OP_RECV = 2,
    APPDEP_OP_CLOSE = 3,
    APPDEP_OP__MAX
};

enum AppdepWireFamily {
    APPDEP_FAMILY_IPV4 = 4,
    APPDEP_FAMILY_IPV6 = 6,
};

/*
 * One per-thread traffic event, decoded.  Addresses are in network byte
 * order (IPv4 in the first 4 bytes), ports and everything else in host
 * order.  "local" is the side of the guest thread that was observed.
 */
typedef struct AppdepThreadRecord {
    uint64_t time_ns;           /* host CLOCK_REALTIME, ns */
    uint64_t serial;            /* per-VM emission counter: gaps are drops */
    char vm[APPDEP_WIRE_VM_LEN + 1];
    uint8_t op;                 /* enum AppdepWireOp */
    uint8_t family;             /* enum AppdepWireFamily */
    uint16_t vcpu;
    uint32_t pid;               /* process: the kernel's tgid */
    uint32_t tid;               /* thread: the kernel's pid */
    char comm[APPDEP_WIRE_COMM_LEN + 1];
    uint8_t saddr[16];          /* local address */
    uint8_t daddr[16];          /* remote address */
    uint16_t sport;             /* local port */
    uint16_t dport;             /* remote port */
    uint32_t seq;               /* TCP write_seq (send/close) or copied_seq (recv) */
    uint64_t bytes;
} AppdepThreadRecord;

/*
 * Wire layout of APPDEP_WIRE_THREAD (offsets from the record start):
 *    0 u32 magic   4 u16 version   6 u16 type   8 u32 length  12 u32 reserved
 *   16 u64 time_ns 24 u64 serial  32 u8 vm[64]
 *   96 u8 op  97 u8 family  98 u16 vcpu  100 u32 pid  104 u32 tid
 *  108 u8 comm[16]  124 u8 saddr[16]  140 u8 daddr[16]
 *  156 u16 sport  158 u16 dport  160 u32 seq  164 u32 reserved
 *  168 u64 bytes
 */
#define APPDEP_WIRE_THREAD_LEN  176

/*
 * Decoder statuses.  The failures lie below -1000, apart from every
 * -errno, so that a status can never be taken for an errno or the
 * other way round.
 */
enum AppdepWireStatus {
    APPDEP_WIRE_OK = 0,
    APPDEP_WIRE_SHORT = -1001,      /* need more bytes; nothing consumed */
    APPDEP_WIRE_BAD_MAGIC = -1002,
    APPDEP_WIRE_BAD_VERSION = -1003,
    APPDEP_WIRE_BAD_LENGTH = -1004,
    APPDEP_WIRE_BAD_TYPE = -1005,   /* well-formed header, unknown type: skip */
    APPDEP_WIRE_BAD_FIELD = -1006,  /* known type, field out of range */
};

static inline void appdep_wire_put16(uint8_t *p, uint16_t v)
{
    p[0] = v;
    p[1] = v >> 8;
}

static inline void appdep_wire_put32(uint8_t *p, uint32_t v)
{
    appdep_wire_put16(p, v);
    appdep_wire_put16(p + 2, v >> 16);
}

static inline void appdep_wire_put64(uint8_t *p, uint64_t v)
{
    appdep_wire_put32(p, v);
    appdep_wire_put32(p + 4, v >> 32);
}

static inline uint16_t appdep_wire_get16(const uint8_t *p)
{
    return p[0] | (uint16_t)p[1] << 8;
}

static inline uint32_t appdep_wire_get32(const uint8_t *p)
{
    return appdep_wire_get16(p) | (uint32_t)appdep_wire_get16(p + 2) << 16;
}

static inline uint64_t appdep_wire_get64(const uint8_t *p)
{
    return appdep_wire_get32(p) | (uint64_t)appdep_wire_get32(p + 4) << 32;
}

static inline const char *appdep_wire_op_name(unsigned op)
{
    switch (op) {
    case APPDEP_OP_SEND:
        return "send";
    case APPDEP_OP_RECV:
        return "recv";
    case APPDEP_OP_CLOSE:
        return "close";
    default:
        return NULL;
    }
}

/* Bounded copy of a NUL-padded field into a terminated string. */
static inline void appdep_wire_get_str(char *dst, const uint8_t *src,
                                       size_t n)
{
    size_t i;

    for (i = 0; i < n && src[i]; i++) {
        dst[i] = (char)src[i];
    }
    dst[i] = '\0';
}

/* Bounded copy of a string into a NUL-padded field (already zeroed). */
static inline void appdep_wire_put_str(uint8_t *dst, const char *src,
                                       size_t n)
{
    size_t i;

    for (i = 0; i < n && src[i]; i++) {
        dst[i] = (uint8_t)src[i];
    }
}

/* Encode @r into @buf, which holds APPDEP_WIRE_THREAD_LEN bytes. */
static inline void appdep_wire_encode_thread(const AppdepThreadRecord *r,
                                             uint8_t *buf)
{
    memset(buf, 0, APPDEP_WIRE_THREAD_LEN);
    appdep_wire_put32(buf, APPDEP_WIRE_MAGIC);
    appdep_wire_put16(buf + 4, APPDEP_WIRE_VERSION);
    appdep_wire_put16(buf + 6, APPDEP_WIRE_THREAD);
    appdep_wire_put32(buf + 8, APPDEP_WIRE_THREAD_LEN);
    appdep_wire_put64(buf + 16, r->time_ns);
    appdep_wire_put64(buf + 24, r->serial);
    appdep_wire_put_str(buf + 32, r->vm, APPDEP_WIRE_VM_LEN);
    buf[96] = r->op;
    buf[97] = r->family;
    appdep_wire_put16(buf + 98, r->vcpu);
    appdep_wire_put32(buf + 100, r->pid);
    appdep_wire_put32(buf + 104, r->tid);
    appdep_wire_put_str(buf + 108, r->comm, APPDEP_WIRE_COMM_LEN);
    memcpy(buf + 124, r->saddr, 16);
    memcpy(buf + 140, r->daddr, 16);
    appdep_wire_put16(buf + 156, r->sport);
    appdep_wire_put16(buf + 158, r->dport);
    appdep_wire_put32(buf + 160, r->seq);
    appdep_wire_put64(buf + 168, r->bytes);
}

/*
 * The checks every header gets, record or frame, in this order: at least
 * APPDEP_WIRE_HDR_LEN bytes (else APPDEP_WIRE_SHORT), magic, version,
 * the reserved word at 12 zero (else APPDEP_WIRE_BAD_FIELD), and a length
 * from APPDEP_WIRE_HDR_LEN to @max_len (else APPDEP_WIRE_BAD_LENGTH).
 * On APPDEP_WIRE_OK stores type and length; the caller checks the type.
 */
static inline int appdep_wire_check_hdr(const uint8_t *buf, size_t avail,
                                        uint32_t max_len, uint16_t *type,
                                        uint32_t *len)
{
    uint32_t l;

    if (avail < APPDEP_WIRE_HDR_LEN) {
        return APPDEP_WIRE_SHORT;
    }
    if (appdep_wire_get32(buf) != APPDEP_WIRE_MAGIC) {
        return APPDEP_WIRE_BAD_MAGIC;
    }
    if (appdep_wire_get16(buf + 4) != APPDEP_WIRE_VERSION) {
        return APPDEP_WIRE_BAD_VERSION;
    }
    if (appdep_wire_get32(buf + 12) != 0) {
        return APPDEP_WIRE_BAD_FIELD;
    }
    l = appdep_wire_get32(buf + 8);
    if (l < APPDEP_WIRE_HDR_LEN || l > max_len) {
        return APPDEP_WIRE_BAD_LENGTH;
    }
    *type = appdep_wire_get16(buf + 6);
    *len = l;
    return APPDEP_WIRE_OK;
}

/*
 * Check the record header at @buf (@avail bytes available), as
 * appdep_wire_check_hdr() with APPDEP_WIRE_MAX_LEN.  On success returns
 * APPDEP_WIRE_OK, or APPDEP_WIRE_BAD_TYPE for a well-formed header of an
 * unknown type, and stores the record length in *@len; the caller may skip
 * *@len bytes.  Any other status means "not a header here".
 */
static inline int appdep_wire_check_header(const uint8_t *buf, size_t avail,
                                           uint16_t *type, uint32_t *len)
{
    int ret;

    ret = appdep_wire_check_hdr(buf, avail, APPDEP_WIRE_MAX_LEN, type, len);
    if (ret != APPDEP_WIRE_OK) {
        return ret;
    }
    if (*type == APPDEP_WIRE_THREAD && *len != APPDEP_WIRE_THREAD_LEN) {
        return APPDEP_WIRE_BAD_LENGTH;
    }
    return *type == APPDEP_WIRE_THREAD ? APPDEP_WIRE_OK : APPDEP_WIRE_BAD_TYPE;
}

/*
 * Decode one thread record from @buf (@avail bytes).  Returns
 * APPDEP_WIRE_OK and the record length in *@consumed, or a negative
 * status; on APPDEP_WIRE_BAD_TYPE *@consumed is the length to skip.  An
 * unknown op or family, or a reserved word (12, 164) not zero, is
 * APPDEP_WIRE_BAD_FIELD.
 */
static inline int appdep_wire_decode_thread(const uint8_t *buf, size_t avail,
                                            AppdepThreadRecord *r,
                                            size_t *consumed)
{
    uint16_t type;
    uint32_t len;
    int ret;

    ret = appdep_wire_check_header(buf, avail, &type, &len);
    if (ret == APPDEP_WIRE_BAD_TYPE) {
        *consumed = len;
    }
    if (ret != APPDEP_WIRE_OK) {
        return ret;
    }
    if (avail < len) {
        return APPDEP_WIRE_SHORT;
    }
    r->time_ns = appdep_wire_get64(buf + 16);
    r->serial = appdep_wire_get64(buf + 24);
    appdep_wire_get_str(r->vm, buf + 32, APPDEP_WIRE_VM_LEN);
    r->op = buf[96];
    r->family = buf[97];
    r->vcpu = appdep_wire_get16(buf + 98);
    r->pid = appdep_wire_get32(buf + 100);
    r->tid = appdep_wire_get32(buf + 104);
    appdep_wire_get_str(r->comm, buf + 108, APPDEP_WIRE_COMM_LEN);
    memcpy(r->saddr, buf + 124, 16);
    memcpy(r->daddr, buf + 140, 16);
    r->sport = appdep_wire_get16(buf + 156);
    r->dport = appdep_wire_get16(buf + 158);
    r->seq = appdep_wire_get32(buf + 160);
    r->bytes = appdep_wire_get64(buf + 168);
    *consumed = len;
    if (!appdep_wire_op_name(r->op) ||
        (r->family != APPDEP_FAMILY_IPV4 && r->family != APPDEP_FAMILY_IPV6) ||
        appdep_wire_get32(buf + 164) != 0) {
        return APPDEP_WIRE_BAD_FIELD;   /* *consumed: skip it */
    }
    return APPDEP_WIRE_OK;
}

#endif /* APPDEP_WIRE_H */
