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

#endif
