/* Request ids, framing and ground-truth lines of the workloads; see wl.h. */
#define _GNU_SOURCE
#include "wl.h"
#include "net.h"

#include <arpa/inet.h>
#include <endian.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define WL_SIZE_SPREAD_REQ 900u
#define WL_SIZE_SPREAD_RESP 1200u
#define WL_MIN_BYTES 64u

static unsigned wl_tag = 1;
static uint32_t wl_counter;

void wl_init(unsigned tag)
{
    wl_tag = tag & 0xffff;
}

uint64_t wl_new_id(void)
{
    uint32_t n = __atomic_add_fetch(&wl_counter, 1, __ATOMIC_RELAXED);

    return ((uint64_t)wl_tag << 48) | ((uint64_t)(getpid() & 0xffff) << 32) |
           n;
}

static uint64_t wl_mix(uint64_t id)
{
    id ^= id >> 33;
    id *= 0xff51afd7ed558ccdULL;
    id ^= id >> 33;
    return id;
}

size_t wl_req_bytes(uint64_t id)
{
    return WL_MIN_BYTES + wl_mix(id) % WL_SIZE_SPREAD_REQ;
}

size_t wl_resp_bytes(uint64_t id)
{
    return WL_MIN_BYTES + (wl_mix(id) >> 20) % WL_SIZE_SPREAD_RESP;
}

long long wl_now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

void wl_set_comm(const char *name)
{
    prctl(PR_SET_NAME, name, 0, 0, 0);
}

void wl_fill(void *buf, size_t len, size_t reply, uint64_t id, uint32_t op,
             uint32_t arg)
{
    ProtoWl w = {
        .h = { .len = htonl((uint32_t)len), .reply = htonl((uint32_t)reply) },
        .id = htobe64(id), .op = htonl(op), .arg = htonl(arg),
    };

    memset(buf, 'w', len);
    memcpy(buf, &w, sizeof(w));
}

int wl_parse(const void *buf, size_t len, WlMsg *m)
{
    ProtoWl w;

    if (len < PROTO_WL_LEN) {
        return -EPROTO;
    }
    memcpy(&w, buf, sizeof(w));
    m->len = ntohl(w.h.len);
    m->reply = ntohl(w.h.reply);
    m->id = be64toh(w.id);
    m->op = ntohl(w.op);
    m->arg = ntohl(w.arg);
    if (m->len != len || m->len > WL_MAX_MSG ||
        (m->reply && (m->reply < PROTO_WL_LEN || m->reply > WL_MAX_MSG))) {
        return -EPROTO;
    }
    return 0;
}

int wl_send_req(const GtConn *c, uint64_t id, uint32_t op)
{
    char buf[WL_MAX_MSG];
    size_t len = wl_req_bytes(id);
    long n;

    wl_fill(buf, len, wl_resp_bytes(id), id, op, 0);
    n = gt_send_all(c, buf, len);
    return n < 0 ? (int)n : 0;
}

int wl_recv_msg(const GtConn *c, WlMsg *m)
{
    char buf[WL_MAX_MSG];
    long n = gt_recv_msg(c, buf, sizeof(buf));

    if (n <= 0) {
        return n == 0 ? -ECONNRESET : (int)n;
    }
    return wl_parse(buf, (size_t)n, m);
}

int wl_send_reply(const GtConn *c, const WlMsg *req, uint64_t id,
                  uint32_t arg)
{
    char buf[WL_MAX_MSG];
    size_t len = req->reply ? req->reply : PROTO_WL_LEN;
    long n;

    wl_fill(buf, len, 0, id, req->op, arg);
    n = gt_send_all(c, buf, len);
    return n < 0 ? (int)n : 0;
}

int wl_call(const GtConn *c, uint64_t id, uint64_t parent, uint32_t op,
            WlMsg *rep)
{
    long long t0 = wl_now_ns();
    int rc = wl_send_req(c, id, op);

    if (!rc) {
        rc = wl_recv_msg(c, rep);
    }
    if (!rc) {
        wl_log_call(c, id, parent, op, wl_req_bytes(id), rep->len, t0,
                    wl_now_ns(), op == PROTO_OP_FETCH && rep->arg ? rep->id
                                                                  : 0);
    }
    return rc;
}

static const char *wl_op_name(uint32_t op)
{
    return op == PROTO_OP_PUB ? "pub" : op == PROTO_OP_FETCH ? "fetch"
                                                             : "call";
}

void wl_log_call(const GtConn *c, uint64_t id, uint64_t parent, uint32_t op,
                 size_t req, size_t resp, long long t0, long long t1,
                 uint64_t got)
{
    char comm[17] = "";

    prctl(PR_GET_NAME, comm, 0, 0, 0);
    gt_printf("CALL {\"id\":%llu,\"parent\":%llu,\"op\":\"%s\",\"pid\":%d,"
              "\"tid\":%d,\"comm\":\"%s\",\"laddr\":\"%s\",\"lport\":%u,"
              "\"raddr\":\"%s\",\"rport\":%u,\"req\":%zu,\"resp\":%zu,"
              "\"t0\":%lld,\"t1\":%lld,\"got\":%llu}",
              (unsigned long long)id, (unsigned long long)parent,
              wl_op_name(op), (int)getpid(), (int)gt_gettid(), comm,
              c->laddr, c->lport, c->raddr, c->rport, req, resp, t0, t1,
              (unsigned long long)got);
}

void wl_log_serve(const GtConn *c, const WlMsg *req, pid_t rtid,
                  size_t resp, long long t0, long long t1, uint64_t msg)
{
    char comm[17] = "";

    prctl(PR_GET_NAME, comm, 0, 0, 0);
    gt_printf("SERVE {\"id\":%llu,\"op\":\"%s\",\"pid\":%d,\"tid\":%d,"
              "\"rtid\":%d,\"comm\":\"%s\",\"laddr\":\"%s\",\"lport\":%u,"
              "\"raddr\":\"%s\",\"rport\":%u,\"req\":%zu,\"resp\":%zu,"
              "\"t0\":%lld,\"t1\":%lld,\"msg\":%llu}",
              (unsigned long long)req->id, wl_op_name(req->op),
              (int)getpid(), (int)gt_gettid(), (int)rtid, comm, c->laddr,
              c->lport, c->raddr, c->rport, req->len, resp, t0, t1,
              (unsigned long long)msg);
}

int wl_connect(const char *hostport, double timeout_s)
{
    char host[64];
    const char *colon = strrchr(hostport, ':');
    size_t hl;

    if (!colon || (hl = (size_t)(colon - hostport)) == 0 ||
        hl >= sizeof(host)) {
        return -EINVAL;
    }
    memcpy(host, hostport, hl);
    host[hl] = '\0';
    return net_connect(host, (unsigned)atoi(colon + 1), false, timeout_s);
}
