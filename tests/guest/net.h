/* Small socket helpers shared by the guest test programs. */
#ifndef APPDEP_GUEST_NET_H
#define APPDEP_GUEST_NET_H

#include <stdbool.h>
#include <stddef.h>

/*
 * Connect a TCP socket to @host (numeric IPv4 or IPv6 literal) port @port,
 * retrying refused/unreachable attempts until @timeout_s seconds passed
 * (the peer guest may still be booting). Returns the fd or -errno.
 */
int net_connect(const char *host, unsigned port, bool ipv6, double timeout_s);

/*
 * Build one framed request or reply (see proto.h) of exactly @len bytes in
 * @buf (which holds at least @len bytes), asking for a reply of @reply bytes.
 */
void net_fill_msg(void *buf, size_t len, size_t reply);

/* Seconds on CLOCK_MONOTONIC. */
double net_now(void);

#endif
