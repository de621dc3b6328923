/*
 * appdep server: the learning phase (see learn.h).
 *
 * A session moves ENABLING -> COLLECTING -> (next round: ENABLING ...)
 * -> DONE, or to FAILED.  Every step is a main loop callback: the
 * forward daemons' RESULTs, the enable timeout and the collect timer.
 * Sessions are reference counted so that a RESULT arriving after the
 * session was dropped (shutdown, eviction) finds it still allocated and
 * marked cancelled.
 *
 * Copyright (c) 2026 appdep authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include <errno.h>
#include <stdarg.h>
#include <string.h>
#include "hash.h"
#include "learn.h"

/* ---- peer discovery (pure) --------------------------------------------- */

static guint addr_hash(gconstpointer p)
{
    return appdep_hash_bytes(p, sizeof(AppdepFrameAddr));
}

static gboolean addr_equal(gconstpointer a, gconstpointer b)
{
    return !memcmp(a, b, sizeof(AppdepFrameAddr));
}

static gpointer addr_dup(const AppdepFrameAddr *a)
{
    AppdepFrameAddr *k = g_new(AppdepFrameAddr, 1);

    *k = *a;
    return k;
}

/* @a as a key: IPv4 keeps its first 4 bytes, the rest zeroed. */
static void addr_key(AppdepFrameAddr *k, uint8_t family, const uint8_t *a)
{
    memset(k, 0, sizeof(*k));
    k->family = family;
    memcpy(k->addr, a, family == APPDEP_FAMILY_IPV4 ? 4 : 16);
}

/* Loopback, unspecified or of an unknown family: not a peer VM. */
static bool addr_skip(const AppdepFrameAddr *k)
{
    static const uint8_t zero[16];
    const uint8_t *a = k->addr;

    if (k->family == APPDEP_FAMILY_IPV4) {
        return a[0] == 127 || !memcmp(a, zero, 4);
    }
    if (k->family != APPDEP_FAMILY_IPV6) {
        return true;
    }
    if (!memcmp(a, zero, 16) || (!memcmp(a, zero, 15) && a[15] == 1)) {
        return true;
    }
    /* ::ffff:127.x.y.z and ::ffff:0.0.0.0 */
    return !memcmp(a, zero, 10) && a[10] == 0xff && a[11] == 0xff &&
           (a[12] == 127 || !memcmp(a + 12, zero, 4));
}

static void note_vm(const AppdepVm *vm, AppdepLearnPeer *p,
                    GHashTable *learned, GPtrArray *new_vms)
{
    guint i;

    if (!vm) {
        return;
    }
    g_strlcpy(p->vm, vm->name, sizeof(p->vm));
    if (g_hash_table_contains(learned, p->vm)) {
        return;
    }
    for (i = 0; i < new_vms->len; i++) {
        if (!strcmp(new_vms->pdata[i], p->vm)) {
            return;
        }
    }
    g_ptr_array_add(new_vms, g_strdup(p->vm));
}

int appdep_learn_discover(const AppdepMessage *msgs, size_t n,
                          GHashTable *learned, AppdepVmLookupFn *lookup,
                          void *opaque, GArray *peers, GPtrArray *new_vms)
{
    g_autoptr(GHashTable) seen = g_hash_table_new_full(addr_hash, addr_equal,
                                                       g_free, NULL);
    size_t i;
    guint k;
    int added = 0;

    /* addresses unmapped so far may belong to a VM reported since */
    for (k = 0; k < peers->len; k++) {
        AppdepLearnPeer *p = &g_array_index(peers, AppdepLearnPeer, k);

        if (!p->vm[0]) {
            note_vm(lookup(opaque, p->addr.family, p->addr.addr), p, learned,
                    new_vms);
        }
    }
    for (k = 0; k < peers->len; k++) {
        g_hash_table_add(seen, addr_dup(&g_array_index(peers,
                                                       AppdepLearnPeer,
                                                       k).addr));
    }

    for (i = 0; i < n; i++) {
        const AppdepMessage *m = &msgs[i];
        int end;

        for (end = 0; end < 2; end++) {
            const AppdepThreadId *t = end ? &m->receiver : &m->sender;
            bool is_client;
            AppdepFrameAddr key;
            AppdepLearnPeer p;

            if (!t->tid || !g_hash_table_contains(learned, t->vm)) {
                continue;
            }
            /* the sender of a request, the receiver of a response */
            is_client = (end == 0) == (m->direction == APPDEP_DIR_REQUEST);
            addr_key(&key, m->conn.family,
                     is_client ? m->conn.saddr : m->conn.caddr);
            if (addr_skip(&key) || g_hash_table_contains(seen, &key) ||
                peers->len >= APPDEP_LEARN_MAX_PEERS) {
                continue;
            }
            memset(&p, 0, sizeof(p));
            p.addr = key;
            note_vm(lookup(opaque, key.family, key.addr), &p, learned,
                    new_vms);
            g_array_append_val(peers, p);
            g_hash_table_add(seen, addr_dup(&key));
            added++;
        }
    }
    return added;
}

/* Conversion delay: the converter's lateness window plus one flush. */
#define LEARN_CONVERT_DELAY_S \
    ((unsigned)(APPDEP_CONV_LATENESS_NS / APPDEP_NS_PER_S) + 1)

/* ---- sessions (main loop) ---------------------------------------------- */

typedef struct LearnSession {
    unsigned refs;
    bool cancelled;                 /* dropped: callbacks do nothing */
    uint64_t id;
    AppdepServer *srv;
    AppdepAppSpec app;
    char spec[APPDEP_APPSPEC_MAX_LEN];
    uint32_t window_s;
    AppdepLearnState state;
    unsigned round;
    uint64_t started_ns, finished_ns;
    GHashTable *learned;            /* VM name -> AppdepLearnVm * (in vms) */
    GPtrArray *vms;                 /* AppdepLearnVm *, owned, in order */
    GArray *peers;                  /* AppdepLearnPeer */
    unsigned pending;               /* inspect commands in flight */
    guint timer;                    /* enable timeout or collect timer */
    uint64_t scanned;
    GArray *log;                    /* AppdepLearnLog */
    uint64_t log_dropped;
} LearnSession;

typedef struct LearnInspect {
    LearnSession *s;
    AppdepLearnVm *vm;
} LearnInspect;

/* The learning sessions of one server (AppdepServer.learn). */
struct AppdepLearn {
    GHashTable *sessions;           /* id -> LearnSession * */
    uint64_t next_id;
};

static void learn_vm_free(gpointer p)
{
    AppdepLearnVm *v = p;

    g_free(v->error);
    g_free(v);
}

static void learn_log_clear(gpointer p)
{
    g_free(((AppdepLearnLog *)p)->text);
}

static LearnSession *session_ref(LearnSession *s)
{
    s->refs++;
    return s;
}

static void session_unref(LearnSession *s)
{
    if (!s || --s->refs) {
        return;
    }
    if (s->timer) {
        g_source_remove(s->timer);
    }
    g_hash_table_unref(s->learned);
    g_ptr_array_unref(s->vms);
    g_array_unref(s->peers);
    g_array_unref(s->log);
    g_free(s);
}

/* Drop from the table: pending callbacks become no-ops. */
static void session_cancel(gpointer p)
{
    LearnSession *s = p;

    s->cancelled = true;
    if (s->timer) {
        g_source_remove(s->timer);
        s->timer = 0;
    }
    session_unref(s);
}

static void G_GNUC_PRINTF(2, 3)
learn_log(LearnSession *s, const char *fmt, ...)
{
    AppdepLearnLog l;
    va_list ap;

    if (s->log->len >= APPDEP_LEARN_MAX_LOG) {
        s->log_dropped++;
        return;
    }
    va_start(ap, fmt);
    l.text = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    l.time_ns = appdep_now_ns();
    g_array_append_val(s->log, l);
}

static void learn_finish(LearnSession *s, AppdepLearnState state)
{
    s->state = state;
    s->finished_ns = appdep_now_ns();
    if (s->timer) {
        g_source_remove(s->timer);
        s->timer = 0;
    }
}

static const AppdepVm *server_by_addr(void *opaque, uint8_t family,
                                      const uint8_t *addr)
{
    AppdepServer *srv = opaque;

    return srv->inventory->vm_by_addr(srv->inventory_opaque, family, addr);
}

static void learn_round(LearnSession *s, GPtrArray *names);

/* Read what the learned VMs exchanged since the lookback; next step. */
static gboolean learn_collected(gpointer opaque)
{
    LearnSession *s = opaque;
    g_autoptr(GPtrArray) new_vms = g_ptr_array_new_with_free_func(g_free);
    g_autoptr(GArray) msgs = g_array_new(FALSE, FALSE,
                                         sizeof(AppdepMessage));
    uint64_t t = s->started_ns > APPDEP_LEARN_LOOKBACK_S * APPDEP_NS_PER_S
                 ? s->started_ns - APPDEP_LEARN_LOOKBACK_S * APPDEP_NS_PER_S
                 : 0;
    uint64_t scanned = 0;
    guint peers_before = s->peers->len, unmapped = 0, k;
    g_autoptr(GString) names = g_string_new(NULL);
    int ret;

    s->timer = 0;
    /* page through in chunks; equal times re-read are harmless here */
    while (scanned < APPDEP_LEARN_MAX_SCAN) {
        uint64_t last;

        g_array_set_size(msgs, 0);
        ret = appdep_store_range(s->srv->store, t, UINT64_MAX, msgs,
                                 APPDEP_LEARN_SCAN_CHUNK);
        if (ret < 0) {
            learn_log(s, "round %u: cannot read the store: %s", s->round,
                      appdep_store_strerror(ret));
            learn_finish(s, APPDEP_LEARN_FAILED);
            return G_SOURCE_REMOVE;
        }
        scanned += msgs->len;
        appdep_learn_discover((AppdepMessage *)msgs->data, msgs->len,
                              s->learned, server_by_addr, s->srv, s->peers,
                              new_vms);
        if (msgs->len < APPDEP_LEARN_SCAN_CHUNK) {
            break;
        }
        last = g_array_index(msgs, AppdepMessage, msgs->len - 1).send_ns;
        t = last > t ? last : t + 1;
    }
    s->scanned += scanned;
    if (scanned >= APPDEP_LEARN_MAX_SCAN) {
        learn_log(s, "round %u: read only the first %u messages",
                  s->round, APPDEP_LEARN_MAX_SCAN);
    }
    for (k = peers_before; k < s->peers->len; k++) {
        unmapped += !g_array_index(s->peers, AppdepLearnPeer, k).vm[0];
    }
    for (k = 0; k < new_vms->len; k++) {
        g_string_append_printf(names, "%s%s", k ? ", " : "",
                               (char *)new_vms->pdata[k]);
    }
    learn_log(s, "round %u: %" G_GUINT64_FORMAT " messages read, %u new "
              "peer addresses (%u not in the inventory), new VMs: %s",
              s->round, scanned, s->peers->len - peers_before, unmapped,
              new_vms->len ? names->str : "none");
    if (!new_vms->len) {
        learn_log(s, "done: %u VMs learned in %u rounds",
                  g_hash_table_size(s->learned), s->round);
        learn_finish(s, APPDEP_LEARN_DONE);
    } else if (s->round >= APPDEP_LEARN_MAX_ROUNDS) {
        learn_log(s, "done: round cap (%d) reached, not enabled: %s",
                  APPDEP_LEARN_MAX_ROUNDS, names->str);
        learn_finish(s, APPDEP_LEARN_DONE);
    } else {
        learn_round(s, new_vms);
    }
    return G_SOURCE_REMOVE;
}

/* Every VM of the round answered (or timed out): collect. */
static void learn_enabled(LearnSession *s)
{
    AppdepLearnVm *root = s->vms->pdata[0];

    if (s->round == 1 && root->state == APPDEP_LEARN_VM_FAILED) {
        learn_log(s, "failed: cannot enable %s: %s", root->name,
                  root->error ? root->error : "unknown error");
        learn_finish(s, APPDEP_LEARN_FAILED);
        return;
    }
    s->state = APPDEP_LEARN_COLLECTING;
    learn_log(s, "round %u: collecting for %u s", s->round, s->window_s);
    /*
     * The converter emits a message once the lateness window has passed
     * behind it (and the server flushes every second): wait for that too,
     * or the last requests of the window are not in the store yet.
     */
    s->timer = g_timeout_add_seconds(s->window_s + LEARN_CONVERT_DELAY_S,
                                     learn_collected, s);
}

static void learn_vm_result(LearnSession *s, AppdepLearnVm *v, int status,
                            const char *message)
{
    if (status == 0) {
        v->state = APPDEP_LEARN_VM_ENABLED;
        learn_log(s, "round %u: %s enabled", s->round, v->name);
    } else {
        v->state = APPDEP_LEARN_VM_FAILED;
        v->error = g_strdup(message && *message ? message
                                                : g_strerror(-status));
        learn_log(s, "round %u: %s not enabled: %s", s->round, v->name,
                  v->error);
    }
}

static void learn_inspect_done(int status, const char *message,
                               void *opaque)
{
    LearnInspect *li = opaque;
    LearnSession *s = li->s;

    if (!s->cancelled && li->vm->state == APPDEP_LEARN_VM_PENDING) {
        learn_vm_result(s, li->vm, status, message);
        if (--s->pending == 0) {
            if (s->timer) {
                g_source_remove(s->timer);
                s->timer = 0;
            }
            learn_enabled(s);
        }
    }
    session_unref(s);
    g_free(li);
}

static gboolean learn_enable_timeout(gpointer opaque)
{
    LearnSession *s = opaque;
    guint i;

    s->timer = 0;
    for (i = 0; i < s->vms->len; i++) {
        AppdepLearnVm *v = s->vms->pdata[i];

        if (v->state == APPDEP_LEARN_VM_PENDING) {
            learn_vm_result(s, v, -ETIMEDOUT, "no result from its forward "
                            "daemon in time");
        }
    }
    s->pending = 0;
    learn_enabled(s);
    return G_SOURCE_REMOVE;
}

/* Take @names into the session and enable them. */
static void learn_round(LearnSession *s, GPtrArray *names)
{
    guint i;

    s->round++;
    s->state = APPDEP_LEARN_ENABLING;
    /* held while sending, so a RESULT delivered at once cannot end it */
    s->pending++;
    for (i = 0; i < names->len; i++) {
        const char *name = names->pdata[i];
        const AppdepVm *vm = g_hash_table_lookup(s->srv->vms, name);
        AppdepLearnVm *v = g_new0(AppdepLearnVm, 1);
        LearnInspect *li;
        int ret;

        g_strlcpy(v->name, name, sizeof(v->name));
        v->round = s->round;
        g_ptr_array_add(s->vms, v);
        g_hash_table_insert(s->learned, v->name, v);
        if (!vm) {
            learn_vm_result(s, v, -ENOENT, "no longer in the inventory");
            continue;
        }
        if (vm->enabled) {
            v->state = APPDEP_LEARN_VM_WAS_ENABLED;
            learn_log(s, "round %u: %s was enabled already", s->round,
                      v->name);
            continue;
        }
        li = g_new0(LearnInspect, 1);
        li->s = session_ref(s);
        li->vm = v;
        v->state = APPDEP_LEARN_VM_PENDING;
        s->pending++;
        learn_log(s, "round %u: enabling %s", s->round, v->name);
        ret = s->srv->inventory->inspect(s->srv->inventory_opaque, name,
                                         true, learn_inspect_done, li);
        if (ret < 0) {
            s->pending--;
            session_unref(s);
            g_free(li);
            learn_vm_result(s, v, ret, ret == -ENOENT
                            ? "no connected forward daemon reports it"
                            : NULL);
        }
    }
    if (--s->pending) {
        s->timer = g_timeout_add_seconds(APPDEP_API_INSPECT_TIMEOUT_S,
                                         learn_enable_timeout, s);
    } else {
        learn_enabled(s);
    }
}

/* Keep at most APPDEP_LEARN_MAX_SESSIONS: drop the oldest finished. */
static void sessions_trim(GHashTable *sessions)
{
    while (g_hash_table_size(sessions) >= APPDEP_LEARN_MAX_SESSIONS) {
        GHashTableIter it;
        gpointer val;
        LearnSession *oldest = NULL;

        g_hash_table_iter_init(&it, sessions);
        while (g_hash_table_iter_next(&it, NULL, &val)) {
            LearnSession *s = val;

            if (s->state >= APPDEP_LEARN_DONE &&
                (!oldest || s->id < oldest->id)) {
                oldest = s;
            }
        }
        if (!oldest) {
            return;
        }
        g_hash_table_remove(sessions, &oldest->id);
    }
}

int appdep_learn_start(AppdepServer *srv, const AppdepAppSpec *app,
                       uint32_t window_s, uint64_t *id)
{
    g_autoptr(GPtrArray) first = g_ptr_array_new();
    GHashTable *sessions;
    GHashTableIter it;
    gpointer val;
    LearnSession *s;
    unsigned running = 0;

    if (window_s < APPDEP_LEARN_MIN_WINDOW_S ||
        window_s > APPDEP_LEARN_MAX_WINDOW_S) {
        return -ERANGE;
    }
    if (!srv->vms || !g_hash_table_lookup(srv->vms, app->vm)) {
        return -ENOENT;
    }
    if (!srv->learn) {
        srv->learn = g_new0(AppdepLearn, 1);
        srv->learn->sessions = g_hash_table_new_full(g_int64_hash,
                                                     g_int64_equal, NULL,
                                                     session_cancel);
        srv->learn->next_id = 1;
    }
    sessions = srv->learn->sessions;
    g_hash_table_iter_init(&it, sessions);
    while (g_hash_table_iter_next(&it, NULL, &val)) {
        running += ((LearnSession *)val)->state < APPDEP_LEARN_DONE;
    }
    if (running >= APPDEP_LEARN_MAX_RUNNING) {
        return -EBUSY;
    }
    sessions_trim(sessions);

    s = g_new0(LearnSession, 1);
    s->refs = 1;
    s->id = srv->learn->next_id++;
    s->srv = srv;
    s->app = *app;
    appdep_appspec_format(app, s->spec);
    s->window_s = window_s;
    s->started_ns = appdep_now_ns();
    s->learned = g_hash_table_new(g_str_hash, g_str_equal);
    s->vms = g_ptr_array_new_with_free_func(learn_vm_free);
    s->peers = g_array_new(FALSE, TRUE, sizeof(AppdepLearnPeer));
    s->log = g_array_new(FALSE, TRUE, sizeof(AppdepLearnLog));
    g_array_set_clear_func(s->log, learn_log_clear);
    g_hash_table_insert(sessions, &s->id, s);
    *id = s->id;

    learn_log(s, "learning %s, %u s per round", s->spec, window_s);
    g_ptr_array_add(first, s->app.vm);
    learn_round(s, first);
    return 0;
}

/* @s as its status: borrowed, valid while the main loop does not run. */
static void session_status(const LearnSession *s, AppdepLearnStatus *st)
{
    *st = (AppdepLearnStatus) {
        .id = s->id, .spec = s->spec, .window_s = s->window_s,
        .state = s->state, .round = s->round,
        .started_ns = s->started_ns, .finished_ns = s->finished_ns,
        .scanned = s->scanned, .vms = s->vms, .peers = s->peers,
        .log = s->log, .log_dropped = s->log_dropped,
    };
}

int appdep_learn_status(AppdepServer *srv, uint64_t id,
                        AppdepLearnStatus *st)
{
    LearnSession *s = srv->learn ? g_hash_table_lookup(srv->learn->sessions,
                                                       &id)
                                 : NULL;

    if (!s) {
        return -ENOENT;
    }
    session_status(s, st);
    return 0;
}

static gint id_cmp(gconstpointer a, gconstpointer b)
{
    const LearnSession *x = *(LearnSession *const *)a;
    const LearnSession *y = *(LearnSession *const *)b;

    return x->id < y->id ? -1 : x->id > y->id;
}

GArray *appdep_learn_list(AppdepServer *srv)
{
    g_autoptr(GPtrArray) all = g_ptr_array_new();
    GArray *out = g_array_new(FALSE, FALSE, sizeof(AppdepLearnStatus));
    GHashTableIter it;
    gpointer val;
    guint i;

    if (srv->learn) {
        g_hash_table_iter_init(&it, srv->learn->sessions);
        while (g_hash_table_iter_next(&it, NULL, &val)) {
            g_ptr_array_add(all, val);
        }
    }
    g_ptr_array_sort(all, id_cmp);
    g_array_set_size(out, all->len);
    for (i = 0; i < all->len; i++) {
        session_status(all->pdata[i], &g_array_index(out, AppdepLearnStatus,
                                                     i));
    }
    return out;
}

void appdep_learn_shutdown(AppdepServer *srv)
{
    if (srv->learn) {
        g_hash_table_destroy(srv->learn->sessions);
        g_free(srv->learn);
        srv->learn = NULL;
    }
}
