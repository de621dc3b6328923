/*
 * Ground truth per request for the workload programs wlsrv and wlcli.
 *
 * Every request carries a request id (proto.h, ProtoWl). Each program
 * prints one line per request it made or served, with a single write(2):
 *
 *   CALL {"id":ID,"parent":PID,"op":"call","pid":P,"tid":T,"comm":"wlcli",
 *         "laddr":"10.0.0.1","lport":40000,"raddr":"10.0.0.2","rport":8001,
 *         "req":B,"resp":B,"t0":NS,"t1":NS,"got":ID}
 *       the caller's side: request ID sent by thread T on that connection
 *       (PARENT: the request being served when the call was made, 0 for a
 *       client's own request), B bytes each way, t0 before the send, t1
 *       after the whole reply arrived; FETCH calls add "got", the id of the
 *       message delivered (0: none).
 *   SERVE {"id":ID,"op":"call","pid":P,"tid":T,"rtid":R,"comm":"wlsrv",
 *          "laddr":...,"lport":8001,"raddr":...,"rport":40000,
 *          "req":B,"resp":B,"t0":NS,"t1":NS,"msg":ID}
 *       the server's side: thread R read the request, thread T (the one
 *       that handled it and made its calls) sent the reply; t0 once the
 *       request was read, t1 once the reply was sent; FETCH adds "msg".
 *
 * The true trajectory of a client request is its CALL line, the SERVE line
 * with the same id, and recursively the CALL lines whose parent is that id.
 * Times are the guest's CLOCK_REALTIME.
 *
 * Message sizes are a function of the request id (wl_req_bytes,
 * wl_resp_bytes), between PROTO_WL_LEN and one TCP segment.
 *
 * Thread rules: all functions are thread-safe.
 */
#ifndef APPDEP_GUEST_WL_H
#define APPDEP_GUEST_WL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include "gt.h"
#include "proto.h"

#define WL_MAX_MSG 2048u            /* every workload message fits */

/* A request or reply as read from the wire. */
typedef struct WlMsg {
    uint64_t id;
    uint32_t op;
    uint32_t arg;
    size_t len;                     /* bytes on the wire */
    size_t reply;                   /* requests: reply length asked for */
} WlMsg;

/* Set the tag (1..65535) mixed into the ids of this program. */
void wl_init(unsigned tag);

/* A new request id, unique across the lab (tag, pid, counter). */
uint64_t wl_new_id(void);

size_t wl_req_bytes(uint64_t id);
size_t wl_resp_bytes(uint64_t id);

/* Nanoseconds of CLOCK_REALTIME. */
long long wl_now_ns(void);

/* Set the calling thread's name (comm), at most 15 bytes. */
void wl_set_comm(const char *name);

/*
 * Send one request (@op, id @id, the sizes of @id) on @c; receive its
 * reply into @rep. Both return 0 or -errno (-ECONNRESET when the peer
 * closed). wl_call does both and prints the CALL line.
 */
int wl_send_req(const GtConn *c, uint64_t id, uint32_t op);
int wl_recv_msg(const GtConn *c, WlMsg *m);
int wl_call(const GtConn *c, uint64_t id, uint64_t parent, uint32_t op,
            WlMsg *rep);

/* Send the reply to @req (its asked-for length), with @id and @arg. */
int wl_send_reply(const GtConn *c, const WlMsg *req, uint64_t id,
                  uint32_t arg);

/* Parse a received message from @buf of @len bytes; -EPROTO if bad. */
int wl_parse(const void *buf, size_t len, WlMsg *m);

/* Fill @buf (>= @len bytes) with a message. */
void wl_fill(void *buf, size_t len, size_t reply, uint64_t id, uint32_t op,
             uint32_t arg);

/* Print the CALL / SERVE line of one request. */
void wl_log_call(const GtConn *c, uint64_t id, uint64_t parent, uint32_t op,
                 size_t req, size_t resp, long long t0, long long t1,
                 uint64_t got);
void wl_log_serve(const GtConn *c, const WlMsg *req, pid_t rtid,
                  size_t resp, long long t0, long long t1, uint64_t msg);

/* Connect to "HOST:PORT" (numeric IPv4), retrying for @timeout_s; fd or
 * -errno. */
int wl_connect(const char *hostport, double timeout_s);

#endif
