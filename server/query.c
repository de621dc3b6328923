/*
 * appdep server: trajectory queries over the store, reading only the
 * threads and time intervals a trajectory involves.  What is read and
 * why: query.h.
 *
 * Copyright (c) 2026 appdep authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include <errno.h>
#include <string.h>
#include "hash.h"
#include "query.h"

/* What tells two stored messages apart (a message is read once per end). */
typedef struct MsgId {
    uint64_t send_ns;
    uint32_t seq, sender_pid, sender_tid;
    uint8_t direction;
    AppdepConn conn;
} MsgId;

/* Messages gathered from several threads, each once. */
typedef struct MsgSet {
    GArray *msgs;               /* AppdepMessage, in the order added */
    GHashTable *seen;           /* MsgId * (owned) */
} MsgSet;

static void msg_id(MsgId *id, const AppdepMessage *m)
{
    memset(id, 0, sizeof(*id));     /* padding too: hashed and compared */
    id->send_ns = m->send_ns;
    id->seq = m->seq;
    id->sender_pid = m->sender.pid;
    id->sender_tid = m->sender.tid;
    id->direction = m->direction;
    id->conn = m->conn;
}

static guint msg_id_hash(gconstpointer p)
{
    return appdep_hash_bytes(p, sizeof(MsgId));
}

static gboolean msg_id_eq(gconstpointer a, gconstpointer b)
{
    return !memcmp(a, b, sizeof(MsgId));
}

static void set_init(MsgSet *set)
{
    set->msgs = g_array_new(FALSE, FALSE, sizeof(AppdepMessage));
    set->seen = g_hash_table_new_full(msg_id_hash, msg_id_eq, g_free, NULL);
}

static void set_clear(MsgSet *set)
{
    g_array_free(set->msgs, TRUE);
    g_hash_table_destroy(set->seen);
}

static void set_add(MsgSet *set, const AppdepMessage *m)
{
    MsgId *id = g_new(MsgId, 1);

    msg_id(id, m);
    if (!g_hash_table_add(set->seen, id)) {
        return;             /* already there: the table freed @id */
    }
    g_array_append_val(set->msgs, *m);
}

/* Threads to read, each once: (vm, tid) -> position in the queue. */
typedef struct ThreadQueue {
    GArray *queue;              /* AppdepThreadId */
    GHashTable *seen;           /* "vm|tid" (owned) */
} ThreadQueue;

static void queue_init(ThreadQueue *q)
{
    q->queue = g_array_new(FALSE, FALSE, sizeof(AppdepThreadId));
    q->seen = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
}

static void queue_clear(ThreadQueue *q)
{
    g_array_free(q->queue, TRUE);
    g_hash_table_destroy(q->seen);
}

static void queue_push(ThreadQueue *q, const AppdepThreadId *t)
{
    if (!t->tid ||
        !g_hash_table_add(q->seen, g_strdup_printf("%s|%u", t->vm, t->tid))) {
        return;
    }
    g_array_append_val(q->queue, *t);
}

/* Add thread @t's messages with send_ns in [t0, t1) to @set; @got too. */
static int read_thread(AppdepStore *s, const AppdepThreadId *t, uint64_t t0,
                       uint64_t t1, MsgSet *set, GArray *got)
{
    guint i;
    int rc;

    g_array_set_size(got, 0);
    rc = appdep_store_thread_range(s, t->vm, t->tid, t0, t1, got, 0);
    if (rc < 0) {
        return rc;
    }
    for (i = 0; i < got->len; i++) {
        set_add(set, &g_array_index(got, AppdepMessage, i));
    }
    return 0;
}

/*
 * The first message on @r's connection after @r among thread @t's
 * messages with send_ns < @t1, read in growing chunks; *@found false
 * when there is none.  0 or a store code.
 */
static int first_on_conn(AppdepStore *s, const AppdepThreadId *t,
                         const AppdepMessage *r, uint64_t t1,
                         AppdepMessage *next, bool *found)
{
    g_autoptr(GArray) out = g_array_new(FALSE, FALSE, sizeof(AppdepMessage));
    size_t limit = APPDEP_QUERY_PAIR_FIRST;
    MsgId rid;

    *found = false;
    if (!t->tid || r->send_ns >= t1) {
        return 0;
    }
    msg_id(&rid, r);
    for (;;) {
        bool past = false;
        guint i;
        int rc;

        g_array_set_size(out, 0);
        rc = appdep_store_thread_range(s, t->vm, t->tid, r->send_ns, t1, out,
                                       limit);
        if (rc < 0) {
            return rc;
        }
        for (i = 0; i < out->len; i++) {
            const AppdepMessage *m = &g_array_index(out, AppdepMessage, i);
            MsgId id;

            if (memcmp(&m->conn, &r->conn, sizeof(m->conn))) {
                continue;
            }
            msg_id(&id, m);
            /* at equal times the thread's order is the arrival order */
            if (!past && msg_id_eq(&id, &rid)) {
                past = true;
                continue;
            }
            if (past || m->send_ns > r->send_ns) {
                *next = *m;
                *found = true;
                return 0;
            }
        }
        if (out->len < limit) {
            return 0;
        }
        limit *= 4;
    }
}

/* The next message on @req's connection among those of its two ends. */
static int find_next(AppdepStore *s, const AppdepMessage *req, uint64_t w1,
                     AppdepMessage *next, bool *found)
{
    AppdepMessage b;
    bool fb;
    int rc;

    rc = first_on_conn(s, &req->sender, req, w1, next, found);
    if (!rc) {
        rc = first_on_conn(s, &req->receiver, req,
                           *found ? next->send_ns + 1 : w1, &b, &fb);
    }
    if (!rc && fb && (!*found || b.send_ns < next->send_ns)) {
        *next = b;
        *found = true;
    }
    return rc;
}

/* A node that owns its exchange: freed whole by appdep_traj_node_free. */
typedef struct QueryNode {
    AppdepTrajNode n;           /* first: &n is the allocation */
    AppdepExchange ex;
} QueryNode;

static AppdepTrajNode *copy_tree(const AppdepTrajNode *t)
{
    QueryNode *q = g_new0(QueryNode, 1);
    guint i;

    q->ex = *t->ex;
    q->n.ex = &q->ex;
    q->n.start_ns = t->start_ns;
    q->n.end_ns = t->end_ns;
    q->n.children = g_ptr_array_new_full(
        t->children->len, (GDestroyNotify)appdep_traj_node_free);
    for (i = 0; i < t->children->len; i++) {
        g_ptr_array_add(q->n.children,
                        copy_tree(g_ptr_array_index(t->children, i)));
    }
    return &q->n;
}

int appdep_query_trajectory(AppdepStore *s, uint64_t w0, uint64_t w1,
                            const AppdepMessage *req, AppdepTrajNode **out)
{
    g_autoptr(GArray) got = g_array_new(FALSE, FALSE, sizeof(AppdepMessage));
    AppdepMessage resp;
    AppdepExchanges *x;
    AppdepTrajNode *tree;
    ThreadQueue q;
    MsgSet set;
    MsgId rid;
    uint64_t lo, hi, end;
    bool has_resp;
    size_t i, root = SIZE_MAX;
    int rc;

    *out = NULL;
    if (req->send_ns < w0 || req->send_ns >= w1) {
        return -ENOENT;
    }
    rc = find_next(s, req, w1, &resp, &has_resp);
    if (rc) {
        return rc;
    }
    has_resp = has_resp && resp.direction == APPDEP_DIR_RESPONSE;

    /* the root's interval: every call of the tree was made in it */
    lo = req->recv_ns && req->recv_ns < req->send_ns ? req->recv_ns
                                                     : req->send_ns;
    lo = MAX(lo, w0);
    end = has_resp ? MAX(resp.send_ns, resp.recv_ns) : req->send_ns;
    hi = end >= w1 ? w1 : end + 1;

    set_init(&set);
    queue_init(&q);
    set_add(&set, req);
    if (has_resp) {
        set_add(&set, &resp);
        queue_push(&q, &resp.sender);
    }
    queue_push(&q, &req->receiver);
    for (i = 0; i < q.queue->len && i < APPDEP_QUERY_MAX_THREADS; i++) {
        AppdepThreadId t = g_array_index(q.queue, AppdepThreadId, i);
        guint j;

        rc = read_thread(s, &t, lo, hi, &set, got);
        if (rc) {
            break;
        }
        /* downstream only: the servers of the calls this thread made */
        for (j = 0; j < got->len; j++) {
            const AppdepMessage *m = &g_array_index(got, AppdepMessage, j);

            if (m->direction == APPDEP_DIR_REQUEST &&
                m->sender.tid == t.tid && !strcmp(m->sender.vm, t.vm)) {
                queue_push(&q, &m->receiver);
            } else if (m->direction == APPDEP_DIR_RESPONSE &&
                       m->receiver.tid == t.tid &&
                       !strcmp(m->receiver.vm, t.vm)) {
                queue_push(&q, &m->sender);
            }
        }
    }
    queue_clear(&q);
    if (rc) {
        set_clear(&set);
        return rc;
    }

    x = appdep_exchanges_new((AppdepMessage *)set.msgs->data, set.msgs->len);
    set_clear(&set);
    msg_id(&rid, req);
    for (i = 0; i < appdep_exchanges_len(x); i++) {
        MsgId id;

        msg_id(&id, &appdep_exchanges_get(x, i)->req);
        if (msg_id_eq(&id, &rid)) {
            root = i;
            break;
        }
    }
    if (root == SIZE_MAX) {
        appdep_exchanges_free(x);
        return -ENOENT;
    }
    tree = appdep_trajectory_build(x, root);
    *out = copy_tree(tree);
    appdep_traj_node_free(tree);
    appdep_exchanges_free(x);
    return 0;
}

int appdep_query_roots(AppdepStore *s, uint64_t w0, uint64_t w1,
                       const char *vm, const char *comm, uint16_t port,
                       uint64_t t1, GArray *roots)
{
    g_autoptr(GArray) tids = g_array_new(FALSE, FALSE, sizeof(uint32_t));
    g_autoptr(GArray) got = g_array_new(FALSE, FALSE, sizeof(AppdepMessage));
    g_autoptr(GArray) idx = NULL;
    AppdepExchanges *x;
    ThreadQueue clients;
    MsgSet set;
    guint i, j;
    int rc;

    g_array_set_size(roots, 0);
    rc = appdep_store_vm_threads(s, vm, tids);
    if (rc) {
        return rc;
    }
    set_init(&set);
    queue_init(&clients);
    for (i = 0; i < tids->len && !rc; i++) {
        AppdepThreadId t = { .tid = g_array_index(tids, uint32_t, i) };

        g_strlcpy(t.vm, vm, sizeof(t.vm));
        rc = read_thread(s, &t, w0, w1, &set, got);
        /* the clients of the requests this thread served */
        for (j = 0; !rc && j < got->len; j++) {
            const AppdepMessage *m = &g_array_index(got, AppdepMessage, j);

            if (m->direction == APPDEP_DIR_REQUEST &&
                m->receiver.tid == t.tid && !strcmp(m->receiver.vm, vm) &&
                strcmp(m->sender.vm, vm)) {
                queue_push(&clients, &m->sender);
            } else if (m->direction == APPDEP_DIR_RESPONSE &&
                       m->sender.tid == t.tid && !strcmp(m->sender.vm, vm) &&
                       strcmp(m->receiver.vm, vm)) {
                queue_push(&clients, &m->receiver);
            }
        }
    }
    /* whether a client made a request while serving one: its messages */
    for (i = 0; i < clients.queue->len && !rc; i++) {
        rc = read_thread(s, &g_array_index(clients.queue, AppdepThreadId, i),
                         w0, w1, &set, got);
    }
    queue_clear(&clients);
    if (rc) {
        set_clear(&set);
        return rc;
    }
    x = appdep_exchanges_new((AppdepMessage *)set.msgs->data, set.msgs->len);
    set_clear(&set);
    idx = appdep_trajectory_roots(x, vm, comm, port);
    for (i = 0; i < idx->len; i++) {
        const AppdepExchange *e = appdep_exchanges_get(
            x, g_array_index(idx, guint, i));

        if (e->req.send_ns >= w0 && e->req.send_ns < t1) {
            g_array_append_val(roots, e->req);
        }
    }
    appdep_exchanges_free(x);
    return 0;
}

int appdep_query_window(AppdepStore *s, uint64_t t0, uint64_t t1,
                        uint64_t margin_ns, guint max_msgs, const char *vm,
                        const char *comm, uint16_t port,
                        AppdepQueryWindow *w)
{
    uint64_t w0 = t0 > margin_ns ? t0 - margin_ns : 0;
    uint64_t w1 = t1 > UINT64_MAX - margin_ns ? UINT64_MAX : t1 + margin_ns;
    g_autoptr(GArray) all = NULL;
    guint k;
    int ret;

    memset(w, 0, sizeof(*w));
    w->msgs = g_array_new(FALSE, FALSE, sizeof(AppdepMessage));
    ret = appdep_store_range(s, w0, w1, w->msgs, max_msgs ? max_msgs + 1 : 0);
    if (ret < 0) {
        appdep_query_window_clear(w);
        return ret;
    }
    if (max_msgs && w->msgs->len > max_msgs) {
        w->truncated = true;
        g_array_set_size(w->msgs, max_msgs);
    }
    w->x = appdep_exchanges_new((AppdepMessage *)w->msgs->data,
                                w->msgs->len);
    all = appdep_trajectory_roots(w->x, vm, comm, port);
    w->roots = g_array_new(FALSE, FALSE, sizeof(guint));
    for (k = 0; k < all->len; k++) {
        guint i = g_array_index(all, guint, k);
        uint64_t sent = appdep_exchanges_get(w->x, i)->req.send_ns;

        if (sent >= t0 && sent < t1) {
            g_array_append_val(w->roots, i);
        }
    }
    return 0;
}

void appdep_query_window_clear(AppdepQueryWindow *w)
{
    if (w->x) {
        appdep_exchanges_free(w->x);
    }
    if (w->roots) {
        g_array_unref(w->roots);
    }
    if (w->msgs) {
        g_array_unref(w->msgs);
    }
    memset(w, 0, sizeof(*w));
}
