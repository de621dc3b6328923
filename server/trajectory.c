/*
 * appdep server: application trajectories and dependency maps.
 *
 * Copyright (c) 2026 appdep authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include <string.h>
#include "stream.h"
#include "trajectory.h"

struct AppdepExchanges {
    GArray *ex;                 /* AppdepExchange, by request time */
    GHashTable *by_client;      /* AppdepThreadId * (in ex) -> GArray of
                                   indices, time order */
    GHashTable *is_child;       /* index + 1 when some exchange calls it */
};

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

const AppdepThreadId *appdep_exchange_server(const AppdepExchange *e)
{
    if (e->req.receiver.tid || !e->has_resp) {
        return &e->req.receiver;
    }
    return &e->resp.sender;
}

/* When the server thread had the request, and when it answered. */
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
    g_array_free(p, TRUE);
}

/* Indices of @k's exchanges whose request left in [t0, t1]. */
static void client_range(const AppdepExchanges *x, const AppdepThreadId *t,
                         uint64_t t0, uint64_t t1, GArray *out)
{
    GArray *idx = g_hash_table_lookup(x->by_client, t);
    guint lo = 0, hi, i;

    if (!idx || !t->tid) {
        return;
    }
    hi = idx->len;
    while (lo < hi) {           /* first request at or after t0 */
        guint mid = (lo + hi) / 2;
        const AppdepExchange *e = &g_array_index(
            x->ex, AppdepExchange, g_array_index(idx, guint, mid));

        if (e->req.send_ns < t0) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    for (i = lo; i < idx->len; i++) {
        guint k = g_array_index(idx, guint, i);

        if (g_array_index(x->ex, AppdepExchange, k).req.send_ns > t1) {
            break;
        }
        g_array_append_val(out, k);
    }
}

AppdepExchanges *appdep_exchanges_new(const AppdepMessage *msgs, size_t n)
{
    AppdepExchanges *x = g_new0(AppdepExchanges, 1);
    g_autofree guint *order = g_new(guint, n ?: 1);
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
        if (b && b->direction == APPDEP_DIR_RESPONSE &&
            !memcmp(&a->conn, &b->conn, sizeof(a->conn))) {
            e.resp = *b;
            e.has_resp = true;
            i++;
        }
        g_array_append_val(x->ex, e);
    }
    g_array_sort(x->ex, ex_time_cmp);

    /* keys point into x->ex, which no longer changes */
    x->by_client = g_hash_table_new_full(thread_hash, thread_eq, NULL,
                                         free_array);
    for (i = 0; i < x->ex->len; i++) {
        const AppdepExchange *e = &g_array_index(x->ex, AppdepExchange, i);
        GArray *idx;

        if (!e->req.sender.tid) {
            continue;
        }
        idx = g_hash_table_lookup(x->by_client, &e->req.sender);
        if (!idx) {
            idx = g_array_new(FALSE, FALSE, sizeof(guint));
            g_hash_table_insert(x->by_client, (gpointer)&e->req.sender, idx);
        }
        g_array_append_val(idx, i);
    }
    /* mark every exchange that is the child of another */
    x->is_child = g_hash_table_new(g_direct_hash, g_direct_equal);
    for (i = 0; i < x->ex->len; i++) {
        const AppdepExchange *e = &g_array_index(x->ex, AppdepExchange, i);
        g_autoptr(GArray) kids = g_array_new(FALSE, FALSE, sizeof(guint));
        guint j;

        if (!served_until(e)) {
            continue;
        }
        client_range(x, appdep_exchange_server(e), served_from(e),
                     served_until(e), kids);
        for (j = 0; j < kids->len; j++) {
            g_hash_table_add(x->is_child,
                             GUINT_TO_POINTER(g_array_index(kids, guint, j) +
                                              1));
        }
    }
    return x;
}

void appdep_exchanges_free(AppdepExchanges *x)
{
    if (x) {
        g_array_free(x->ex, TRUE);
        g_hash_table_destroy(x->by_client);
        g_hash_table_destroy(x->is_child);
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

        if (g_hash_table_contains(x->is_child, GUINT_TO_POINTER(i + 1))) {
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
    g_autoptr(GArray) kids = g_array_new(FALSE, FALSE, sizeof(guint));
    guint i;

    n->ex = e;
    n->start_ns = e->req.send_ns;
    n->end_ns = e->has_resp ? (e->resp.recv_ns ? e->resp.recv_ns
                                               : e->resp.send_ns) : 0;
    n->children = g_ptr_array_new_with_free_func(
        (GDestroyNotify)appdep_traj_node_free);
    (*budget)--;
    if (depth >= APPDEP_TRAJ_MAX_DEPTH || !served_until(e)) {
        return n;
    }
    client_range(x, appdep_exchange_server(e), served_from(e),
                 served_until(e), kids);
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

static void thread_json(GString *out, const AppdepThreadId *t)
{
    g_string_append(out, "{\"vm\":");
    appdep_json_bytes(out, t->vm);
    g_string_append(out, ",\"comm\":");
    appdep_json_bytes(out, t->comm);
    g_string_append_printf(out, ",\"pid\":%u,\"tid\":%u}", t->pid, t->tid);
}

void appdep_trajectory_to_json(const AppdepTrajNode *n, GString *out)
{
    const AppdepExchange *e = n->ex;
    char c[48], s[48];
    guint i;

    g_string_append(out, "{\"client\":");
    thread_json(out, &e->req.sender);
    g_string_append(out, ",\"server\":");
    thread_json(out, appdep_exchange_server(e));
    g_string_append_printf(out, ",\"conn\":{\"client\":\"%s:%u\","
                           "\"server\":\"%s:%u\"}",
                           appdep_conn_addr_str(e->req.conn.family,
                                                e->req.conn.caddr, c,
                                                sizeof(c)),
                           e->req.conn.cport,
                           appdep_conn_addr_str(e->req.conn.family,
                                                e->req.conn.saddr, s,
                                                sizeof(s)),
                           e->req.conn.sport);
    g_string_append_printf(out, ",\"start_ns\":%" G_GUINT64_FORMAT
                           ",\"end_ns\":%" G_GUINT64_FORMAT
                           ",\"latency_ns\":%" G_GUINT64_FORMAT
                           ",\"request_bytes\":%" G_GUINT64_FORMAT
                           ",\"response_bytes\":%" G_GUINT64_FORMAT
                           ",\"children\":[",
                           n->start_ns, n->end_ns,
                           n->end_ns > n->start_ns ? n->end_ns - n->start_ns
                                                   : 0,
                           e->req.bytes, e->has_resp ? e->resp.bytes : 0);
    for (i = 0; i < n->children->len; i++) {
        if (i) {
            g_string_append_c(out, ',');
        }
        appdep_trajectory_to_json(g_ptr_array_index(n->children, i), out);
    }
    g_string_append(out, "]}");
}

static void app_label(GString *out, const AppdepThreadId *t, uint8_t family,
                      const uint8_t *addr)
{
    char a[48];

    if (t->tid) {
        g_string_append_printf(out, "%s/%s[%u]", t->vm, t->comm, t->tid);
    } else {
        g_string_append_printf(out, "%s (not traced)",
                               appdep_conn_addr_str(family, addr, a,
                                                    sizeof(a)));
    }
}

static void text_node(const AppdepTrajNode *n, GString *out, unsigned depth,
                      uint64_t t_base)
{
    const AppdepExchange *e = n->ex;
    guint i;

    g_string_append_printf(out, "%*s", depth * 2, "");
    app_label(out, &e->req.sender, e->req.conn.family, e->req.conn.caddr);
    g_string_append(out, " -> ");
    app_label(out, appdep_exchange_server(e), e->req.conn.family,
              e->req.conn.saddr);
    g_string_append_printf(out, ":%u  [%.3f, ", e->req.conn.sport,
                           (n->start_ns - t_base) / 1e6);
    if (n->end_ns) {
        g_string_append_printf(out, "%.3f] ms, %.3f ms, ",
                               (n->end_ns - t_base) / 1e6,
                               (n->end_ns - n->start_ns) / 1e6);
    } else {
        g_string_append(out, "?] ms, ");
    }
    g_string_append_printf(out, "%" G_GUINT64_FORMAT " B / %" G_GUINT64_FORMAT
                           " B\n", e->req.bytes,
                           e->has_resp ? e->resp.bytes : 0);
    for (i = 0; i < n->children->len; i++) {
        text_node(g_ptr_array_index(n->children, i), out, depth + 1, t_base);
    }
}

void appdep_trajectory_to_text(const AppdepTrajNode *n, GString *out)
{
    text_node(n, out, 0, n->start_ns);
}

/* ---- dependency maps ------------------------------------------------ */

static void app_of(AppdepApp *a, const AppdepThreadId *t, uint8_t family,
                   const uint8_t *addr, uint16_t port)
{
    memset(a, 0, sizeof(*a));
    appdep_conn_addr_str(family, addr, a->addr, sizeof(a->addr));
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

static void app_json(GString *out, const AppdepApp *a)
{
    g_string_append(out, "{\"vm\":");
    appdep_json_bytes(out, a->vm);
    g_string_append(out, ",\"program\":");
    appdep_json_bytes(out, a->comm);
    g_string_append_printf(out, ",\"address\":\"%s\",\"port\":%u}", a->addr,
                           a->port);
}

void appdep_map_to_json(const GArray *edges, GString *out)
{
    guint i;

    g_string_append(out, "{\"edges\":[");
    for (i = 0; i < edges->len; i++) {
        const AppdepEdge *e = &g_array_index(edges, AppdepEdge, i);

        g_string_append(out, i ? ",{\"client\":" : "{\"client\":");
        app_json(out, &e->client);
        g_string_append(out, ",\"server\":");
        app_json(out, &e->server);
        g_string_append_printf(out, ",\"calls\":%" G_GUINT64_FORMAT
                               ",\"request_bytes\":%" G_GUINT64_FORMAT
                               ",\"response_bytes\":%" G_GUINT64_FORMAT
                               ",\"latency_avg_ns\":%" G_GUINT64_FORMAT
                               ",\"latency_max_ns\":%" G_GUINT64_FORMAT "}",
                               e->calls, e->req_bytes, e->resp_bytes,
                               e->latency_n ? e->latency_sum_ns / e->latency_n
                                            : 0,
                               e->latency_max_ns);
    }
    g_string_append(out, "]}");
}

static void app_name(GString *out, const AppdepApp *a)
{
    if (a->vm[0]) {
        g_string_append_printf(out, "%s/%s", a->vm, a->comm);
    } else {
        g_string_append(out, a->addr);
    }
    if (a->port) {
        g_string_append_printf(out, ":%u", a->port);
    }
}

/* DOT identifiers: quoted, with quotes and backslashes escaped. */
static void dot_id(GString *out, const AppdepApp *a)
{
    g_autoptr(GString) name = g_string_new(NULL);
    const char *p;

    app_name(name, a);
    g_string_append_c(out, '"');
    for (p = name->str; *p; p++) {
        if (*p == '"' || *p == '\\') {
            g_string_append_c(out, '\\');
        }
        g_string_append_c(out, (unsigned char)*p >= 0x20 ? *p : '?');
    }
    g_string_append_c(out, '"');
}

void appdep_map_to_dot(const GArray *edges, GString *out)
{
    guint i;

    g_string_append(out, "digraph appdep {\n  rankdir=LR;\n"
                    "  node [shape=box, fontname=\"Helvetica\"];\n");
    for (i = 0; i < edges->len; i++) {
        const AppdepEdge *e = &g_array_index(edges, AppdepEdge, i);

        g_string_append(out, "  ");
        dot_id(out, &e->client);
        g_string_append(out, " -> ");
        dot_id(out, &e->server);
        g_string_append_printf(out, " [label=\"%" G_GUINT64_FORMAT
                               " calls\\n%.2f ms avg\"];\n", e->calls,
                               e->latency_n ? e->latency_sum_ns /
                               (double)e->latency_n / 1e6 : 0.0);
    }
    g_string_append(out, "}\n");
}

void appdep_map_to_text(const GArray *edges, GString *out)
{
    guint i;

    for (i = 0; i < edges->len; i++) {
        const AppdepEdge *e = &g_array_index(edges, AppdepEdge, i);

        g_string_append(out, "  ");
        app_name(out, &e->client);
        g_string_append(out, " -> ");
        app_name(out, &e->server);
        g_string_append_printf(out, "  %" G_GUINT64_FORMAT " calls, %"
                               G_GUINT64_FORMAT " B out, %" G_GUINT64_FORMAT
                               " B back, latency avg %.3f ms, max %.3f ms\n",
                               e->calls, e->req_bytes, e->resp_bytes,
                               e->latency_n ? e->latency_sum_ns /
                               (double)e->latency_n / 1e6 : 0.0,
                               e->latency_max_ns / 1e6);
    }
}
