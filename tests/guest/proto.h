/*
 * Wire format shared by tcpsrv and tcpcli.
 *
 * Each request and each reply is one message: an 8-byte header followed by
 * padding, so a message of B bytes puts exactly B bytes on the wire.
 *   u32 len    total message length in bytes, header included (network order)
 *   u32 reply  requests: reply length the client asks for, 0 = server's
 *              choice; replies: 0
 * The exchange is lock-step (one request, one reply), so a receiver never
 * reads past the end of a message.
 *
 * The workload programs (wlsrv, wlcli; see wl.h) put a request id in every
 * message, right after the header:
 *   u64 id     request id (network order); a reply echoes its request's
 *              id, a FETCH reply carries the id of the message delivered
 *   u32 op     PROTO_OP_*
 *   u32 arg    FETCH replies: 1 when a message is delivered, else 0
 */
#ifndef APPDEP_GUEST_PROTO_H
#define APPDEP_GUEST_PROTO_H

#include <stdint.h>

#define PROTO_HDR_LEN 8u
#define PROTO_MAX_MSG (1u << 20)    /* 1 MiB */
#define PROTO_BENCH_BYTES 64u

typedef struct ProtoHdr {
    uint32_t len;
    uint32_t reply;
} ProtoHdr;

typedef struct ProtoWl {
    ProtoHdr h;
    uint64_t id;
    uint32_t op;
    uint32_t arg;
} ProtoWl;

#define PROTO_WL_LEN 24u            /* sizeof(ProtoWl), the smallest message */

enum {
    PROTO_OP_CALL = 1,              /* a request that wants its reply */
    PROTO_OP_PUB = 2,               /* broker: store a message, ack */
    PROTO_OP_FETCH = 3,             /* broker: wait for a message, deliver */
};

#endif
