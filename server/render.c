/*
 * appdep server: every answer the server renders (see render.h).
 *
 * Copyright (c) 2026 appdep authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include <errno.h>
#include <string.h>
#include "json-out.h"
#include "render.h"

/* ---- trajectories -------------------------------------------------------- */

static void thread_json(GString *out, const AppdepThreadId *t)
{
    g_string_append(out, "{\"vm\":");
    appdep_json_str(out, t->vm);
    g_string_append(out, ",\"comm\":");
    appdep_json_str(out, t->comm);
    g_string_append_printf(out, ",\"pid\":%u,\"tid\":%u}", t->pid, t->tid);
}

void appdep_trajectory_to_json(const AppdepTrajNode *n, GString *out)
{
    const AppdepExchange *e = n->ex;
    char c[APPDEP_ADDR_STR_LEN], s[APPDEP_ADDR_STR_LEN];
    guint i;

    g_string_append(out, "{\"client\":");
    thread_json(out, &e->req.sender);
    g_string_append(out, ",\"server\":");
    thread_json(out, appdep_exchange_server(e));
    g_string_append_printf(out, ",\"conn\":{\"client\":\"%s:%u\","
                           "\"server\":\"%s:%u\"}",
                           appdep_addr_to_str(e->req.conn.family,
                                                e->req.conn.caddr, c,
                                                sizeof(c)),
                           e->req.conn.cport,
                           appdep_addr_to_str(e->req.conn.family,
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
    char a[APPDEP_ADDR_STR_LEN];

    if (t->tid) {
        g_string_append_printf(out, "%s/%s[%u]", t->vm, t->comm, t->tid);
    } else {
        g_string_append_printf(out, "%s (not traced)",
                               appdep_addr_to_str(family, addr, a,
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

static void app_json(GString *out, const AppdepApp *a)
{
    g_string_append(out, "{\"vm\":");
    appdep_json_str(out, a->vm);
    g_string_append(out, ",\"program\":");
    appdep_json_str(out, a->comm);
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

/* ---- HTTP API answers ---------------------------------------------------- */

void appdep_render_map_window(GString *out, uint64_t t0, uint64_t t1,
                              unsigned messages, size_t exchanges,
                              bool truncated, const GArray *edges)
{
    g_autoptr(GString) map = g_string_new(NULL);

    /* the map's own object ({"edges":[...]}) with the window added */
    appdep_map_to_json(edges, map);
    g_assert(map->str[0] == '{');
    g_string_append_printf(out, "{\"from\":%" G_GUINT64_FORMAT
                           ",\"to\":%" G_GUINT64_FORMAT
                           ",\"messages\":%u,\"exchanges\":%zu"
                           ",\"truncated\":%s,%s\n",
                           t0, t1, messages, exchanges,
                           truncated ? "true" : "false", map->str + 1);
}

void appdep_render_error(GString *out, const char *text)
{
    g_string_append(out, "{\"error\":");
    appdep_json_str(out, text);
    g_string_append(out, "}");
}

static void addr_json(GString *out, const AppdepFrameAddr *a)
{
    char buf[APPDEP_ADDR_STR_LEN];

    appdep_json_str(out, appdep_addr_to_str(a->family, a->addr, buf,
                                              sizeof(buf)));
}

static gint str_cmp(gconstpointer a, gconstpointer b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The inventory's VM names, sorted; free with g_ptr_array_unref. */
static GPtrArray *vm_names(AppdepServer *srv)
{
    GPtrArray *names = g_ptr_array_new();
    GHashTableIter it;
    gpointer key;

    if (srv->vms) {
        g_hash_table_iter_init(&it, srv->vms);
        while (g_hash_table_iter_next(&it, &key, NULL)) {
            g_ptr_array_add(names, key);
        }
    }
    g_ptr_array_sort(names, str_cmp);
    return names;
}

void appdep_render_status(GString *b, AppdepServer *srv,
                          const AppdepServerStatus *st)
{
    g_autoptr(GPtrArray) names = vm_names(srv);
    g_autoptr(GHashTable) hosts = g_hash_table_new(g_str_hash, g_str_equal);
    unsigned enabled = 0, i;

    g_string_append_c(b, '{');
    g_string_append_printf(b, "\"time_ns\":%" G_GUINT64_FORMAT
                           ",\"records\":%" G_GUINT64_FORMAT
                           ",\"messages\":%" G_GUINT64_FORMAT
                           ",\"bad_peers\":%" G_GUINT64_FORMAT
                           ",\"pending\":%u"
                           ",\"dropped\":%" G_GUINT64_FORMAT,
                           st->time_ns, srv->records, srv->messages,
                           srv->bad_peers,
                           srv->pending ? srv->pending->len : 0,
                           srv->dropped);
    if (srv->conv) {
        AppdepConvStats cs;

        appdep_converter_stats(srv->conv, &cs);
        g_string_append_printf(b, ",\"converter\":{\"records\":%"
                               G_GUINT64_FORMAT ",\"messages\":%"
                               G_GUINT64_FORMAT ",\"connections\":%"
                               G_GUINT64_FORMAT ",\"evicted\":%"
                               G_GUINT64_FORMAT "}",
                               cs.records, cs.messages, cs.connections,
                               cs.evicted);
    }
    g_string_append(b, ",\"store\":");
    if (srv->store) {
        g_string_append_printf(b, "{\"messages\":%" G_GUINT64_FORMAT
                               ",\"records\":%" G_GUINT64_FORMAT
                               ",\"map_size\":%" G_GUINT64_FORMAT
                               ",\"map_grows\":%" G_GUINT64_FORMAT
                               ",\"committed\":%" G_GUINT64_FORMAT
                               ",\"rejected\":%" G_GUINT64_FORMAT
                               ",\"corrupt\":%" G_GUINT64_FORMAT
                               ",\"expired\":%" G_GUINT64_FORMAT
                               ",\"stale_readers\":%" G_GUINT64_FORMAT,
                               st->stored_messages, st->stored_records,
                               st->store.map_size, st->store.map_grows,
                               st->store.committed, st->store.rejected,
                               st->store.corrupt, st->store.expired,
                               st->store.stale_readers);
        if (st->store_error < 0) {
            g_string_append(b, ",\"error\":");
            appdep_json_str(b, appdep_store_strerror(st->store_error));
        }
        g_string_append_c(b, '}');
    } else {
        g_string_append(b, "null");
    }

    /* A daemon's host is known from the VMs it reports. */
    g_string_append(b, ",\"daemons\":{\"connected\":");
    g_string_append_printf(b, "%u,\"hosts\":[", g_list_length(srv->peers));
    for (i = 0; i < names->len; i++) {
        const AppdepVm *vm = g_hash_table_lookup(srv->vms,
                                                 names->pdata[i]);

        enabled += vm->enabled;
        if (vm->peer && !g_hash_table_contains(hosts, vm->host)) {
            if (g_hash_table_size(hosts)) {
                g_string_append_c(b, ',');
            }
            g_hash_table_add(hosts, (gpointer)vm->host);
            appdep_json_str(b, vm->host);
        }
    }
    g_string_append_printf(b, "]},\"vms\":%u,\"vms_enabled\":%u"
                           ",\"api\":{\"requests\":%" G_GUINT64_FORMAT
                           ",\"errors\":%" G_GUINT64_FORMAT "}}",
                           names->len, enabled, st->api_requests,
                           st->api_errors);
}

void appdep_render_vms(GString *b, AppdepServer *srv)
{
    g_autoptr(GPtrArray) names = vm_names(srv);
    unsigned i, j;

    g_string_append_c(b, '[');
    for (i = 0; i < names->len; i++) {
        const AppdepVm *vm = g_hash_table_lookup(srv->vms, names->pdata[i]);

        g_string_append(b, i ? ",{\"name\":" : "{\"name\":");
        appdep_json_str(b, vm->name);
        g_string_append(b, ",\"host\":");
        appdep_json_str(b, vm->host);
        g_string_append_printf(b, ",\"enabled\":%s,\"connected\":%s"
                               ",\"addresses\":[",
                               vm->enabled ? "true" : "false",
                               vm->peer ? "true" : "false");
        for (j = 0; j < vm->naddr && j < APPDEP_FRAME_MAX_ADDRS; j++) {
            if (j) {
                g_string_append_c(b, ',');
            }
            addr_json(b, &vm->addrs[j]);
        }
        g_string_append(b, "]}");
    }
    g_string_append_c(b, ']');
}

void appdep_render_inspect(GString *b, const char *vm, bool enable,
                           int status, const char *message)
{
    if (status == 0) {
        g_string_append(b, "{\"vm\":");
        appdep_json_str(b, vm);
        g_string_append_printf(b, ",\"enabled\":%s}",
                               enable ? "true" : "false");
        return;
    }
    g_string_append(b, "{\"error\":");
    appdep_json_str(b, message && *message ? message : g_strerror(-status));
    g_string_append(b, ",\"vm\":");
    appdep_json_str(b, vm);
    g_string_append_printf(b, ",\"status\":%d}", status);
}

void appdep_render_learn_started(GString *b, uint64_t id)
{
    g_string_append_printf(b, "{\"id\":%" G_GUINT64_FORMAT ",\"url\":"
                           "\"/v1/learn/%" G_GUINT64_FORMAT "\"}", id, id);
}

/* ---- learning ----------------------------------------------------------- */

static const char *const state_names[] = {
    [APPDEP_LEARN_ENABLING] = "enabling",
    [APPDEP_LEARN_COLLECTING] = "collecting",
    [APPDEP_LEARN_DONE] = "done",
    [APPDEP_LEARN_FAILED] = "failed",
};

static const char *const vm_state_names[] = {
    [APPDEP_LEARN_VM_PENDING] = "enabling",
    [APPDEP_LEARN_VM_ENABLED] = "enabled",
    [APPDEP_LEARN_VM_WAS_ENABLED] = "already-enabled",
    [APPDEP_LEARN_VM_FAILED] = "failed",
};

void appdep_render_learn(GString *out, const AppdepLearnStatus *s)
{
    char buf[APPDEP_ADDR_STR_LEN];
    guint i, n;

    g_string_append_printf(out, "{\"id\":%" G_GUINT64_FORMAT ",\"app\":",
                           s->id);
    appdep_json_str(out, s->spec);
    g_string_append_printf(out, ",\"window_s\":%u,\"state\":\"%s\""
                           ",\"round\":%u,\"max_rounds\":%d"
                           ",\"started_ns\":%" G_GUINT64_FORMAT
                           ",\"finished_ns\":%" G_GUINT64_FORMAT
                           ",\"scanned\":%" G_GUINT64_FORMAT ",\"vms\":[",
                           s->window_s, state_names[s->state], s->round,
                           APPDEP_LEARN_MAX_ROUNDS, s->started_ns,
                           s->finished_ns, s->scanned);
    for (i = 0; i < s->vms->len; i++) {
        AppdepLearnVm *v = s->vms->pdata[i];

        g_string_append(out, i ? ",{\"name\":" : "{\"name\":");
        appdep_json_str(out, v->name);
        g_string_append_printf(out, ",\"round\":%u,\"state\":\"%s\"",
                               v->round, vm_state_names[v->state]);
        if (v->error) {
            g_string_append(out, ",\"error\":");
            appdep_json_str(out, v->error);
        }
        g_string_append_c(out, '}');
    }
    g_string_append(out, "],\"enabled\":[");
    for (i = n = 0; i < s->vms->len; i++) {
        AppdepLearnVm *v = s->vms->pdata[i];

        if (v->state == APPDEP_LEARN_VM_ENABLED ||
            v->state == APPDEP_LEARN_VM_WAS_ENABLED) {
            if (n++) {
                g_string_append_c(out, ',');
            }
            appdep_json_str(out, v->name);
        }
    }
    g_string_append(out, "],\"peers\":[");
    for (i = 0; i < s->peers->len; i++) {
        AppdepLearnPeer *p = &g_array_index(s->peers, AppdepLearnPeer, i);

        g_string_append(out, i ? ",{\"addr\":" : "{\"addr\":");
        appdep_json_str(out, appdep_addr_to_str(p->addr.family,
                                                  p->addr.addr, buf,
                                                  sizeof(buf)));
        g_string_append(out, ",\"vm\":");
        if (p->vm[0]) {
            appdep_json_str(out, p->vm);
        } else {
            g_string_append(out, "null");
        }
        g_string_append_c(out, '}');
    }
    g_string_append(out, "],\"unmapped\":[");
    for (i = n = 0; i < s->peers->len; i++) {
        AppdepLearnPeer *p = &g_array_index(s->peers, AppdepLearnPeer, i);

        if (!p->vm[0]) {
            if (n++) {
                g_string_append_c(out, ',');
            }
            appdep_json_str(out, appdep_addr_to_str(p->addr.family,
                                                      p->addr.addr, buf,
                                                      sizeof(buf)));
        }
    }
    g_string_append(out, "],\"log\":[");
    for (i = 0; i < s->log->len; i++) {
        AppdepLearnLog *l = &g_array_index(s->log, AppdepLearnLog, i);

        g_string_append_printf(out, "%s{\"time_ns\":%" G_GUINT64_FORMAT
                               ",\"text\":", i ? "," : "", l->time_ns);
        appdep_json_str(out, l->text);
        g_string_append_c(out, '}');
    }
    g_string_append_printf(out, "],\"log_dropped\":%" G_GUINT64_FORMAT "}",
                           s->log_dropped);
}

void appdep_render_learn_list(GString *out, const GArray *list)
{
    guint i;

    g_string_append_c(out, '[');
    for (i = 0; i < list->len; i++) {
        const AppdepLearnStatus *s = &g_array_index(list, AppdepLearnStatus,
                                                    i);

        g_string_append_printf(out, "%s{\"id\":%" G_GUINT64_FORMAT
                               ",\"app\":", i ? "," : "", s->id);
        appdep_json_str(out, s->spec);
        g_string_append_printf(out, ",\"state\":\"%s\",\"round\":%u}",
                               state_names[s->state], s->round);
    }
    g_string_append_c(out, ']');
}
