/*
 * Ground-truth ("GT") lines printed by the guest test programs.
 *
 * Every traffic event a test program causes is printed on stdout as one
 * line, written with a single write(2) so lines of concurrent threads never
 * interleave:
 *
 *   GT {"prog":"tcpcli","pid":90,"tid":91,"comm":"tcpcli","cpu":1,
 *       "family":"ipv4","laddr":"10.0.0.1","lport":40000,
 *       "raddr":"10.0.0.2","rport":8080,"op":"send","bytes":64,
 *       "conn":3,"ts_ns":1700000000123456789}
 *
 * op is one of connect, accept, send, recv, close. bytes is the return
 * value of that one syscall (0 for connect, accept and close). conn numbers
 * the connections of one process. ts_ns is CLOCK_REALTIME of the guest.
 * Boot tests compare these lines with what the hypervisor traced.
 *
 * Thread rules: all functions are thread-safe.
 */
#ifndef APPDEP_GUEST_GT_H
#define APPDEP_GUEST_GT_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#define GT_MAX_LINE 512
#define GT_MAX_ADDR 64          /* INET6_ADDRSTRLEN (46) rounded up */

/* One TCP connection as seen from this end. */
typedef struct GtConn {
    int fd;
    int id;                     /* per-process connection number */
    bool ipv6;
    char laddr[GT_MAX_ADDR];
    char raddr[GT_MAX_ADDR];
    unsigned lport;
    unsigned rport;
} GtConn;

/* Set the program name printed as "prog" and whether lines are printed. */
void gt_init(const char *prog, bool enabled);

/*
 * Fill @c from the connected socket @fd (getsockname/getpeername). IPv4
 * addresses mapped into IPv6 are printed as IPv4. Returns 0 or -errno.
 */
int gt_conn_init(GtConn *c, int fd);

/* Print one GT line for @op on @c that moved @bytes (syscall result). */
void gt_event(const GtConn *c, const char *op, long bytes);

/*
 * send(2)/recv(2) exactly @len bytes, looping on partial transfers and
 * EINTR; one GT line per syscall that moved bytes. Returns @len, 0 when
 * the peer closed before the first byte (recv only), or -errno (also
 * -ECONNRESET when the peer closed in the middle of a message).
 */
long gt_send_all(const GtConn *c, const void *buf, size_t len);
long gt_recv_all(const GtConn *c, void *buf, size_t len);

/*
 * Receive one framed message (see proto.h) into @buf of @cap bytes: loops
 * until the length in its header has arrived. Returns the message length,
 * 0 when the peer closed cleanly between messages, or -errno (-EPROTO for a
 * bad header).
 */
long gt_recv_msg(const GtConn *c, void *buf, size_t cap);

/* close(2) the connection and print its GT line. */
void gt_close(GtConn *c);

/* Print a free-form line, "PREFIX {json}" style, in one write. */
void gt_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Thread id of the caller (gettid). */
pid_t gt_gettid(void);

/* Parse a non-negative decimal that fits @max; exits with a message if not. */
unsigned long gt_parse_ulong(const char *what, const char *s, unsigned long max);

#endif
