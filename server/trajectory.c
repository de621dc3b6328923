/*
 * appdep server: application trajectories and dependency maps (the
 * model; their JSON, text and DOT forms are in render.c).
 *
 * Copyright (c) 2026 appdep authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include <string.h>
#include "stream.h"
#include "trajectory.h"

struct AppdepExchanges {
    GArray *ex;                 /* AppdepExchange, by request time */
    guint *parent;              /* per exchange: its parent, or NO_PARENT */
    GPtrArray *kids;            /* per exchange: GArray of child indices in
                                   time order, or NULL */
};

#define NO_PARENT G_MAXUINT

/*
 * What one thread did, as seen in the exchanges (attribution of calls to
 * the requests a thread serves).  At equal times a request opens before a
 * call and closes after it: a call sent at the instant the request
 * arrived or was answered still belongs to it.
 */
enum EvKind {
    EV_OPEN,                    /* a request this thread serves arrived */
    EV_RECV_REQ,                /* this thread read a request */
    EV_CALL_RECV,               /* this thread read the reply to a call */
    EV_CALL_SEND,               /* this thread sent a request (a call) */
    EV_CLOSE,                   /* this thread answered a request */
};

typedef struct ThreadEv {
    uint64_t t;
    guint kind;
    guint ex;
} ThreadEv;

static guint thread_hash(gconstpointer p)
{
    const AppdepThreadId *t = p;

    return g_str_hash(t->vm) ^ (t->tid * 2654435761u) ^ t->pid;
}

static gboolean thread_eq(gconstpointer a, gconstpointer b)
{
    return appdep_thread_equal(a, b);
}

/* Sort messages by connection then time, through an index array. */
static gint msg_conn_time_cmp(gconstpointer a, gconstpointer b,
                              gpointer opaque)
{
    const AppdepMessage *msgs = opaque;
    const AppdepMessage *x = &msgs[*(const guint *)a];
    const AppdepMessage *y = &msgs[*(const guint *)b];
    int c = memcmp(&x->conn, &y->conn, sizeof(x->conn));

    if (c) {
        return c;
    }
    return x->send_ns < y->send_ns ? -1 : x->send_ns > y->send_ns;
}

static gint ex_time_cmp(gconstpointer a, gconstpointer b)
{
    const AppdepExchange *x = a, *y = b;

    return x->req.send_ns < y->req.send_ns ? -1 :
           x->req.send_ns > y->req.send_ns;
}

static gint ev_cmp(gconstpointer a, gconstpointer b)
{
    const ThreadEv *x = a, *y = b;

    if (x->t != y->t) {
        return x->t < y->t ? -1 : 1;
    }
    if (x->kind != y->kind) {
        return x->kind < y->kind ? -1 : 1;
    }
    return x->ex < y->ex ? -1 : x->ex > y->ex;
}

/*
 * The thread that served @e: the one that answered it, else the one that
 * read the request.  They differ when a thread reads requests and hands
 * them to workers (an acceptor feeding a thread pool): the worker made
 * the calls and sent the answer.
 */
const AppdepThreadId *appdep_exchange_server(const AppdepExchange *e)
{
    if (e->has_resp && e->resp.sender.tid) {
        return &e->resp.sender;
    }
    return &e->req.receiver;
}

/* When the request reached the server, and when it was answered. */
static uint64_t served_from(const AppdepExchange *e)
{
    return e->req.recv_ns ? e->req.recv_ns : e->req.send_ns;
}

static uint64_t served_until(const AppdepExchange *e)
{
    return e->has_resp ? e->resp.send_ns : 0;
}

static void free_array(gpointer p)
{
    if (p) {
        g_array_free(p, TRUE);
    }
}

static void add_ev(GHashTable *threads, const AppdepThreadId *t, uint64_t at,
                   guint kind, guint ex)
{
    GArray *evs;
    ThreadEv ev = { .t = at, .kind = kind, .ex = ex };

    if (!t->tid) {
        return;
    }
    evs = g_hash_table_lookup(threads, t);
    if (!evs) {
        evs = g_array_new(FALSE, FALSE, sizeof(ThreadEv));
        g_hash_table_insert(threads, (gpointer)t, evs);
    }
    g_array_append_val(evs, ev);
}

static bool in_open(const GArray *open, guint k)
{
    guint i;

    for (i = 0; i < open->len; i++) {
        if (g_array_index(open, guint, i) == k) {
            return true;
        }
    }
    return false;
}

/*
 * The request a call belongs to, among the requests @open that its thread
 * was serving when it sent the call.  One open request: that one (the
 * thread rule).  Several (one thread serving many requests: an event
 * loop, or a worker whose next requests already wait in a queue): the
 * thread's last act before the call decides.  Having read a request, it
 * calls on that request's behalf; after a call or its reply, it works on
 * that call's request; after answering a request, a synchronous worker
 * turns to the next one it answers (the open request answered first).
 * A call that is the first exchange on a new connection was decided when
 * the connection was opened, which no record shows: an event loop may
 * have read other requests while connecting.  It goes to the oldest open
 * request that has no call yet, if there is one.
 */
static guint attribute(const AppdepExchanges *x, const GArray *open,
                       const guint *ncalls, guint call, guint last_kind,
                       guint last_ex)
{
    guint i, best = NO_PARENT;

    if (!open->len) {
        return NO_PARENT;
    }
    if (open->len == 1) {
        return g_array_index(open, guint, 0);
    }
    if (g_array_index(x->ex, AppdepExchange, call).first_on_conn) {
        for (i = 0; i < open->len; i++) {
            guint k = g_array_index(open, guint, i);

            if (!ncalls[k] &&
                (best == NO_PARENT ||
                 served_from(&g_array_index(x->ex, AppdepExchange, k)) <
                 served_from(&g_array_index(x->ex, AppdepExchange, best)))) {
                best = k;
            }
        }
        if (best != NO_PARENT) {
            return best;
        }
    }
    if (last_kind == EV_RECV_REQ && in_open(open, last_ex)) {
        return last_ex;
    }
    if ((last_kind == EV_CALL_SEND || last_kind == EV_CALL_RECV) &&
        x->parent[last_ex] != NO_PARENT && in_open(open, x->parent[last_ex])) {
        return x->parent[last_ex];
    }
    for (i = 0; i < open->len; i++) {
        guint k = g_array_index(open, guint, i);
        const AppdepExchange *e = &g_array_index(x->ex, AppdepExchange, k);
        const AppdepExchange *b;

        if (best == NO_PARENT) {
            best = k;
            continue;
        }
        b = &g_array_index(x->ex, AppdepExchange, best);
        if (served_until(e) < served_until(b) ||
            (served_until(e) == served_until(b) &&
             served_from(e) < served_from(b))) {
            best = k;
        }
    }
    return best;
}

/*
 * Attribute the calls of one thread, walking its events in time order;
 * @ncalls counts the calls attributed to each exchange so far.
 */
static void attribute_thread(AppdepExchanges *x, GArray *evs, guint *ncalls)
{
    g_autoptr(GArray) open = g_array_new(FALSE, FALSE, sizeof(guint));
    guint i, j, last_kind = EV_CLOSE, last_ex = NO_PARENT;

    g_array_sort(evs, ev_cmp);
    for (i = 0; i < evs->len; i++) {
        const ThreadEv *ev = &g_array_index(evs, ThreadEv, i);

        switch (ev->kind) {
        case EV_OPEN:
            g_array_append_val(open, ev->ex);
            break;
        case EV_CLOSE:
            for (j = 0; j < open->len; j++) {
                if (g_array_index(open, guint, j) == ev->ex) {
                    g_array_remove_index(open, j);
                    break;
                }
            }
            last_kind = EV_CLOSE;
            break;
        case EV_CALL_SEND:
            x->parent[ev->ex] = attribute(x, open, ncalls, ev->ex, last_kind,
                                          last_ex);
            if (x->parent[ev->ex] != NO_PARENT) {
                ncalls[x->parent[ev->ex]]++;
            }
            /* fall through */
        case EV_RECV_REQ:
        case EV_CALL_RECV:
            last_kind = ev->kind;
            last_ex = ev->ex;
            break;
        }
    }
}

AppdepExchanges *appdep_exchanges_new(const AppdepMessage *msgs, size_t n)
{
    AppdepExchanges *x = g_new0(AppdepExchanges, 1);
    g_autofree guint *order = g_new(guint, n ?: 1);
    g_autoptr(GHashTable) threads = NULL;
    g_autofree guint *ncalls = NULL;
    GHashTableIter it;
    gpointer v;
    guint i;

    for (i = 0; i < n; i++) {
        order[i] = i;
    }
    g_qsort_with_data(order, n, sizeof(*order), msg_conn_time_cmp,
                      (gpointer)msgs);
    x->ex = g_array_sized_new(FALSE, TRUE, sizeof(AppdepExchange), n / 2);
    for (i = 0; i < n; i++) {
        const AppdepMessage *a = &msgs[order[i]];
        const AppdepMessage *b = i + 1 < n ? &msgs[order[i + 1]] : NULL;
        AppdepExchange e;

        if (a->direction != APPDEP_DIR_REQUEST) {
            continue;           /* a response without its request */
        }
        memset(&e, 0, sizeof(e));
        e.req = *a;
        e.first_on_conn = !i || memcmp(&a->conn, &msgs[order[i - 1]].conn,
                                       sizeof(a->conn));
        if (b && b->direction == APPDEP_DIR_RESPONSE &&
            !memcmp(&a->conn, &b->conn, sizeof(a->conn))) {
            e.resp = *b;
            e.has_resp = true;
            i++;
        }
        g_array_append_val(x->ex, e);
    }
    g_array_sort(x->ex, ex_time_cmp);

    /* every thread's acts; keys point into x->ex, which no longer changes */
    threads = g_hash_table_new_full(thread_hash, thread_eq, NULL, free_array);
    for (i = 0; i < x->ex->len; i++) {
        const AppdepExchange *e = &g_array_index(x->ex, AppdepExchange, i);
        const AppdepThreadId *srv = appdep_exchange_server(e);

        if (served_until(e)) {
            add_ev(threads, srv, served_from(e), EV_OPEN, i);
            add_ev(threads, srv, served_until(e), EV_CLOSE, i);
        }
        if (e->req.recv_ns) {
            add_ev(threads, &e->req.receiver, e->req.recv_ns, EV_RECV_REQ, i);
        }
        add_ev(threads, &e->req.sender, e->req.send_ns, EV_CALL_SEND, i);
        if (e->has_resp && e->resp.recv_ns) {
            add_ev(threads, &e->resp.receiver, e->resp.recv_ns, EV_CALL_RECV,
                   i);
        }
    }
    x->parent = g_new(guint, x->ex->len ?: 1);
    for (i = 0; i < x->ex->len; i++) {
        x->parent[i] = NO_PARENT;
    }
    ncalls = g_new0(guint, x->ex->len ?: 1);
    g_hash_table_iter_init(&it, threads);
    while (g_hash_table_iter_next(&it, NULL, &v)) {
        attribute_thread(x, v, ncalls);
    }
    x->kids = g_ptr_array_new_full(x->ex->len, free_array);
    g_ptr_array_set_size(x->kids, x->ex->len);
    for (i = 0; i < x->ex->len; i++) {
        GArray *k;

        if (x->parent[i] == NO_PARENT) {
            continue;
        }
        k = g_ptr_array_index(x->kids, x->parent[i]);
        if (!k) {
            k = g_array_new(FALSE, FALSE, sizeof(guint));
            g_ptr_array_index(x->kids, x->parent[i]) = k;
        }
        g_array_append_val(k, i);
    }
    return x;
}

void appdep_exchanges_free(AppdepExchanges *x)
{
    if (x) {
        g_array_free(x->ex, TRUE);
        g_free(x->parent);
        g_ptr_array_free(x->kids, TRUE);
        g_free(x);
    }
}

size_t appdep_exchanges_len(const AppdepExchanges *x)
{
    return x->ex->len;
}

const AppdepExchange *appdep_exchanges_get(const AppdepExchanges *x,
                                           size_t i)
{
    return &g_array_index(x->ex, AppdepExchange, i);
}

GArray *appdep_trajectory_roots(const AppdepExchanges *x, const char *vm,
                                const char *comm, uint16_t port)
{
    GArray *out = g_array_new(FALSE, FALSE, sizeof(guint));
    guint i;

    for (i = 0; i < x->ex->len; i++) {
        const AppdepExchange *e = &g_array_index(x->ex, AppdepExchange, i);
        const AppdepThreadId *s = appdep_exchange_server(e);

        if (x->parent[i] != NO_PARENT) {
            continue;
        }
        if ((vm && strcmp(s->vm, vm)) || (comm && strcmp(s->comm, comm)) ||
            (port && e->req.conn.sport != port)) {
            continue;
        }
        g_array_append_val(out, i);
    }
    return out;
}

static AppdepTrajNode *build(const AppdepExchanges *x, guint k,
                             unsigned depth, unsigned *budget)
{
    const AppdepExchange *e = &g_array_index(x->ex, AppdepExchange, k);
    AppdepTrajNode *n = g_new0(AppdepTrajNode, 1);
    const GArray *kids = g_ptr_array_index(x->kids, k);
    guint i;

    n->ex = e;
    n->start_ns = e->req.send_ns;
    n->end_ns = e->has_resp ? (e->resp.recv_ns ? e->resp.recv_ns
                                               : e->resp.send_ns) : 0;
    n->children = g_ptr_array_new_with_free_func(
        (GDestroyNotify)appdep_traj_node_free);
    (*budget)--;
    if (depth >= APPDEP_TRAJ_MAX_DEPTH || !kids) {
        return n;
    }
    for (i = 0; i < kids->len && *budget; i++) {
        g_ptr_array_add(n->children,
                        build(x, g_array_index(kids, guint, i), depth + 1,
                              budget));
    }
    return n;
}

AppdepTrajNode *appdep_trajectory_build(const AppdepExchanges *x,
                                        size_t root)
{
    unsigned budget = APPDEP_TRAJ_MAX_NODES;

    if (root >= x->ex->len) {
        return NULL;
    }
    return build(x, root, 0, &budget);
}

void appdep_traj_node_free(AppdepTrajNode *n)
{
    if (n) {
        g_ptr_array_free(n->children, TRUE);
        g_free(n);
    }
}

/* ---- dependency maps ------------------------------------------------ */

static void app_of(AppdepApp *a, const AppdepThreadId *t, uint8_t family,
                   const uint8_t *addr, uint16_t port)
{
    memset(a, 0, sizeof(*a));
    appdep_addr_to_str(family, addr, a->addr, sizeof(a->addr));
    if (t->tid) {
        g_strlcpy(a->vm, t->vm, sizeof(a->vm));
        g_strlcpy(a->comm, t->comm, sizeof(a->comm));
    }
    a->port = port;
}

static char *app_key(const AppdepApp *a)
{
    return a->vm[0] ? g_strdup_printf("%s|%s|%u", a->vm, a->comm, a->port)
                    : g_strdup_printf("@%s|%u", a->addr, a->port);
}

GArray *appdep_map_build(const AppdepExchanges *x, uint64_t t0, uint64_t t1)
{
    g_autoptr(GHashTable) at = g_hash_table_new_full(g_str_hash, g_str_equal,
                                                     g_free, NULL);
    GArray *edges = g_array_new(FALSE, TRUE, sizeof(AppdepEdge));
    guint i;

    for (i = 0; i < x->ex->len; i++) {
        const AppdepExchange *e = &g_array_index(x->ex, AppdepExchange, i);
        AppdepApp cl, sv;
        AppdepEdge *ed;
        g_autofree char *kc = NULL, *ks = NULL;
        char *key;
        gpointer pos;

        if (e->req.send_ns < t0 || e->req.send_ns >= t1) {
            continue;
        }
        app_of(&cl, &e->req.sender, e->req.conn.family, e->req.conn.caddr, 0);
        app_of(&sv, appdep_exchange_server(e), e->req.conn.family,
               e->req.conn.saddr, e->req.conn.sport);
        kc = app_key(&cl);
        ks = app_key(&sv);
        key = g_strconcat(kc, " -> ", ks, NULL);
        if (g_hash_table_lookup_extended(at, key, NULL, &pos)) {
            g_free(key);
            ed = &g_array_index(edges, AppdepEdge, GPOINTER_TO_UINT(pos));
        } else {
            AppdepEdge z = { .client = cl, .server = sv };

            g_hash_table_insert(at, key, GUINT_TO_POINTER(edges->len));
            g_array_append_val(edges, z);
            ed = &g_array_index(edges, AppdepEdge, edges->len - 1);
        }
        ed->calls++;
        ed->req_bytes += e->req.bytes;
        if (e->has_resp) {
            uint64_t end = e->resp.recv_ns ? e->resp.recv_ns
                                           : e->resp.send_ns;

            ed->resp_bytes += e->resp.bytes;
            if (end > e->req.send_ns) {
                ed->latency_sum_ns += end - e->req.send_ns;
                ed->latency_max_ns = MAX(ed->latency_max_ns,
                                         end - e->req.send_ns);
                ed->latency_n++;
            }
        }
    }
    return edges;
}
