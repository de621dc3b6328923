/*
 * appdep-fwd: a minimal asynchronous QMP client over a unix socket.
 *
 * QEMU is the server (-qmp unix:PATH,server=on,wait=off).  The client
 * connects on demand, reads the greeting, negotiates (qmp_capabilities)
 * and then runs commands one at a time, matching replies by "id"; events
 * arriving in between go to the event callback.  Every exchange has a
 * deadline; a timeout, a malformed or oversized line or EOF drops the
 * connection and fails what was pending.  After a drop the client
 * reconnects by itself, with backoff, so events keep flowing.
 *
 * Main-loop thread only (the default GMainContext).  Nothing here logs:
 * failures reach the callbacks as (-errno, text).
 *
 * Copyright (c) 2026 appdep authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef APPDEP_QMP_H
#define APPDEP_QMP_H

#include <stdbool.h>
#include <json-glib/json-glib.h>
#include "fwd-limits.h"


typedef struct AppdepQmp AppdepQmp;

/*
 * Reply to one command: @status 0 and @ret (the "return" member, borrowed
 * for the call) or -errno and @error (QEMU's "desc", or why the exchange
 * failed).
 */
typedef void (*AppdepQmpReplyFn)(int status, const char *error,
                                 JsonNode *ret, void *opaque);
/* An event: its name and "data" object (may be NULL), borrowed. */
typedef void (*AppdepQmpEventFn)(const char *event, JsonObject *data,
                                 void *opaque);
/*
 * The connection became ready (@ready, @why NULL) or was lost or could
 * not be made (@ready false, @status -errno and @why say why).
 */
typedef void (*AppdepQmpStateFn)(bool ready, int status, const char *why,
                                 void *opaque);

/* A client for the QMP socket @path; it connects at once. */
AppdepQmp *appdep_qmp_new(const char *path, AppdepQmpEventFn event,
                          AppdepQmpStateFn state, void *opaque);
/* Fails what is pending with -ECANCELED (callbacks run), then frees. */
void appdep_qmp_free(AppdepQmp *q);

/*
 * Run @command with @args (a JSON object or NULL; taken over).  @reply
 * runs exactly once, possibly before this returns (-EBUSY when the queue
 * is full, or the connection attempt failed at once).
 */
void appdep_qmp_execute(AppdepQmp *q, const char *command, JsonObject *args,
                        AppdepQmpReplyFn reply, void *opaque);

bool appdep_qmp_ready(AppdepQmp *q);

#endif
