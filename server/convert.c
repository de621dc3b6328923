/*
 * appdep server: per-thread records -> inter-thread records (messages).
 *
 * Copyright (c) 2026 appdep authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include <string.h>
#include "convert.h"

#define APPDEP_CONV_THREAD_SCAN 4       /* newest threads compared per record */
#define APPDEP_CONV_PREFETCH    4       /* connections fetched ahead by flush */

G_STATIC_ASSERT(APPDEP_CONV_MAX_THREADS <= UINT16_MAX);

/* One end of a connection: family, address, port. */
typedef struct End {
    uint8_t family;
    uint8_t addr[16];
    uint16_t port;
} End;

/*
 * A data record as a connection holds it: what the messages need of it,
 * the thread an index into the connection's threads (a record is 176
 * bytes, most of them the thread's names, the same for many records).
 */
typedef struct Event {
    uint64_t time_ns;
    uint64_t serial;
    uint64_t bytes;
    uint32_t seq;
    uint16_t thread;            /* in Conn.threads */
    uint8_t op;                 /* APPDEP_OP_SEND or APPDEP_OP_RECV */
    uint8_t from;               /* end index whose bytes it carries */
} Event;

/* A connection, keyed by its two ends in a canonical order. */
typedef struct Conn {
    End end[2];                 /* end[0] <= end[1] (end_cmp order) */
    GArray *events;             /* Event; [head, len) held */
    GArray *threads;            /* AppdepThreadId the events point to */
    guint head;                 /* events before it are consumed */
    bool unsorted;              /* an event arrived out of time order */
    uint64_t min_ns;            /* oldest held event, UINT64_MAX: none */
    uint64_t last_ns;           /* newest record time */
    uint64_t closed_ns[2];      /* close time per end, 0: open */
    bool have_seq[2];           /* per end: seq_lo/seq_hi are set */
    uint32_t seq_lo[2];         /* per end: sequence range of the data */
    uint32_t seq_hi[2];         /* seen from it (sends or receives) */
    int client;                 /* end index of the client, -1 unknown */
    guint pos;                  /* in AppdepConverter.list */
} Conn;

struct AppdepConverter {
    AppdepEmitFn *emit;
    void *opaque;
    GHashTable *conns;          /* End[2] bytes -> Conn (owned) */
    GPtrArray *list;            /* the same Conns, for flush's walk */
    Conn *last;                 /* the connection of the last record fed */
    uint64_t now_ns;            /* newest record time seen */
    AppdepConvStats st;
};

/* The words of an End (padding zeroed by end_of), loaded unaligned. */
#define END_WORDS   (sizeof(End) / 4)
G_STATIC_ASSERT(sizeof(End) % 4 == 0);

/* A total order on ends (any will do: it only makes the key canonical). */
static int end_cmp(const End *a, const End *b)
{
    uint32_t x[END_WORDS], y[END_WORDS];
    size_t i;

    memcpy(x, a, sizeof(x));
    memcpy(y, b, sizeof(y));
    for (i = 0; i < END_WORDS; i++) {
        if (x[i] != y[i]) {
            return x[i] < y[i] ? -1 : 1;
        }
    }
    return 0;
}

/* Two connection keys (End[2]) are the same. */
static bool key_equal(const void *a, const void *b)
{
    uint64_t x[2 * sizeof(End) / 8], y[2 * sizeof(End) / 8];
    uint64_t d = 0;
    size_t i;

    memcpy(x, a, sizeof(x));
    memcpy(y, b, sizeof(y));
    for (i = 0; i < G_N_ELEMENTS(x); i++) {
        d |= x[i] ^ y[i];
    }
    return d == 0;
}

static void end_of(End *e, uint8_t family, const uint8_t *addr, uint16_t port)
{
    memset(e, 0, sizeof(*e));
    e->family = family;
    memcpy(e->addr, addr, family == APPDEP_FAMILY_IPV6 ? 16 : 4);
    e->port = port;
}

/* A word at a time: the key is hashed for every record fed. */
static guint conn_hash(gconstpointer k)
{
    const uint8_t *p = k;
    uint64_t h = 0x9e3779b97f4a7c15ull, w;
    size_t i;

    G_STATIC_ASSERT(2 * sizeof(End) % 8 == 0);
    for (i = 0; i < 2 * sizeof(End); i += 8) {
        memcpy(&w, p + i, 8);
        h = (h ^ w) * 0xff51afd7ed558ccdull;
        h ^= h >> 32;
    }
    return (guint)h;
}

static gboolean conn_equal(gconstpointer a, gconstpointer b)
{
    return key_equal(a, b);
}

static void conn_free(gpointer p)
{
    Conn *c = p;

    g_array_free(c->events, TRUE);
    g_array_free(c->threads, TRUE);
    g_free(c);
}

bool appdep_thread_equal(const AppdepThreadId *a, const AppdepThreadId *b)
{
    return a->tid == b->tid && a->pid == b->pid && !strcmp(a->vm, b->vm);
}

AppdepConverter *appdep_converter_new(AppdepEmitFn *emit, void *opaque)
{
    AppdepConverter *c = g_new0(AppdepConverter, 1);

    c->emit = emit;
    c->opaque = opaque;
    c->conns = g_hash_table_new_full(conn_hash, conn_equal, NULL, conn_free);
    c->list = g_ptr_array_new();
    return c;
}

void appdep_converter_free(AppdepConverter *c)
{
    if (c) {
        g_hash_table_destroy(c->conns);
        g_ptr_array_free(c->list, TRUE);
        g_free(c);
    }
}

void appdep_converter_stats(const AppdepConverter *c, AppdepConvStats *st)
{
    *st = c->st;
}

static void thread_of(AppdepThreadId *t, const AppdepThreadRecord *r)
{
    g_strlcpy(t->vm, r->vm, sizeof(t->vm));
    t->pid = r->pid;
    t->tid = r->tid;
    g_strlcpy(t->comm, r->comm, sizeof(t->comm));
}

static bool thread_is(const AppdepThreadId *t, const AppdepThreadRecord *r)
{
    return t->tid == r->tid && t->pid == r->pid &&
           !strncmp(t->vm, r->vm, sizeof(t->vm)) &&
           !strncmp(t->comm, r->comm, sizeof(t->comm));
}

/*
 * Keep in c->threads only the threads of the held events (when it
 * reached APPDEP_CONV_MAX_THREADS: at most APPDEP_CONV_MAX_EVENTS are
 * held, so at least half of it is freed).
 */
static void conn_threads_compact(Conn *c)
{
    g_autofree uint16_t *map = g_new(uint16_t, c->threads->len);
    GArray *keep = g_array_new(FALSE, FALSE, sizeof(AppdepThreadId));
    guint i;

    memset(map, 0xff, c->threads->len * sizeof(*map));
    for (i = c->head; i < c->events->len; i++) {
        Event *e = &g_array_index(c->events, Event, i);

        if (map[e->thread] == UINT16_MAX) {
            map[e->thread] = keep->len;
            g_array_append_val(keep, g_array_index(c->threads,
                                                   AppdepThreadId,
                                                   e->thread));
        }
        e->thread = map[e->thread];
    }
    g_array_free(c->threads, TRUE);
    c->threads = keep;
}

/*
 * The index in c->threads of the thread of @r, added when it is not
 * among the newest ones (a thread may then be there twice: harmless).
 */
static uint16_t conn_thread(Conn *c, const AppdepThreadRecord *r)
{
    guint n = c->threads->len, i;
    guint stop = n > APPDEP_CONV_THREAD_SCAN ? n - APPDEP_CONV_THREAD_SCAN
                                             : 0;
    AppdepThreadId t;

    for (i = n; i-- > stop;) {
        if (thread_is(&g_array_index(c->threads, AppdepThreadId, i), r)) {
            return i;
        }
    }
    if (n >= APPDEP_CONV_MAX_THREADS) {
        conn_threads_compact(c);
    }
    thread_of(&t, r);
    g_array_append_val(c->threads, t);
    return c->threads->len - 1;
}

static gint event_cmp(gconstpointer a, gconstpointer b)
{
    const Event *x = a, *y = b;

    if (x->time_ns != y->time_ns) {
        return x->time_ns < y->time_ns ? -1 : 1;
    }
    /* same instant: a send comes before the receive of its bytes */
    if (x->op != y->op) {
        return x->op == APPDEP_OP_SEND ? -1 : 1;
    }
    return x->serial < y->serial ? -1 : x->serial > y->serial;
}

static bool ephemeral(uint16_t port)
{
    return port >= APPDEP_CONV_EPHEMERAL_MIN &&
           port <= APPDEP_CONV_EPHEMERAL_MAX;
}

/*
 * Which end of @c is the client.  When exactly one end uses a port of
 * Linux's ephemeral range, it is the one that connected; otherwise the
 * end @first that sent the first message observed.  The port rule also
 * holds when the observation starts in the middle of a connection (a
 * server restart, inspection enabled late).
 */
static int client_end(const Conn *c, int first)
{
    bool e0 = ephemeral(c->end[0].port), e1 = ephemeral(c->end[1].port);

    if (e0 != e1) {
        return e0 ? 0 : 1;
    }
    return first;
}

/*
 * Turn the events [from, to) of @c, all carrying data from end @src,
 * into one message and emit it.
 */
static void emit_run(AppdepConverter *cv, Conn *c, GArray *ev, guint from,
                     guint to, int src)
{
    AppdepMessage m;
    bool have_send = false, have_recv = false;
    uint64_t recv_bytes = 0;
    guint i;

    memset(&m, 0, sizeof(m));
    if (c->client < 0) {
        c->client = client_end(c, src);
    }
    for (i = from; i < to; i++) {
        const Event *r = &g_array_index(ev, Event, i);

        if (r->op == APPDEP_OP_SEND) {
            if (!have_send) {
                m.sender = g_array_index(c->threads, AppdepThreadId,
                                         r->thread);
                m.send_ns = r->time_ns;
                m.seq = r->seq;
                have_send = true;
            }
            m.bytes += r->bytes;
        } else {
            if (!have_recv) {
                m.receiver = g_array_index(c->threads, AppdepThreadId,
                                           r->thread);
                have_recv = true;
                if (!have_send) {
                    m.seq = r->seq;
                    m.send_ns = r->time_ns;
                }
            }
            m.recv_ns = r->time_ns;
            recv_bytes += r->bytes;
        }
    }
    if (!have_send) {
        m.bytes = recv_bytes;       /* the sender was not observed */
    }
    m.direction = src == c->client ? APPDEP_DIR_REQUEST : APPDEP_DIR_RESPONSE;
    m.conn.family = c->end[0].family;
    memcpy(m.conn.caddr, c->end[c->client].addr, 16);
    m.conn.cport = c->end[c->client].port;
    memcpy(m.conn.saddr, c->end[!c->client].addr, 16);
    m.conn.sport = c->end[!c->client].port;
    cv->st.messages++;
    cv->emit(&m, cv->opaque);
}

/*
 * Emit the final messages of @c.  A run is final when a later run exists
 * (the other end answered) and it is older than @horizon, or when
 * @all.  Consumed events are removed.
 */
static void conn_flush(AppdepConverter *cv, Conn *c, uint64_t horizon,
                       bool all)
{
    GArray *ev = c->events;
    guint i, start, done;
    int src = -1;

    /* nothing can be final before the horizon: done without a look */
    if (!all && c->min_ns >= horizon) {
        return;
    }
    if (c->unsorted) {
        g_array_remove_range(ev, 0, c->head);
        c->head = 0;
        g_array_sort(ev, event_cmp);
        c->unsorted = false;
    }
    /* nothing can be final before the horizon: done at once */
    if (c->head >= ev->len ||
        (!all && g_array_index(ev, Event, c->head).time_ns >= horizon)) {
        c->min_ns = c->head < ev->len ?
                    g_array_index(ev, Event, c->head).time_ns : UINT64_MAX;
        return;
    }
    start = done = c->head;
    for (i = c->head; i <= ev->len; i++) {
        const Event *r = i < ev->len ? &g_array_index(ev, Event, i) : NULL;
        int d = r ? r->from : -1;

        if (r && (d == src || src < 0)) {
            src = d;
            continue;
        }
        /* events [start, i) are one run from @src */
        if (start < i) {
            const Event *last = &g_array_index(ev, Event, i - 1);

            if (!all && (!r || last->time_ns >= horizon)) {
                break;
            }
            emit_run(cv, c, ev, start, i, src);
            done = i;
        }
        start = i;
        src = d;
    }
    /* consumed events are dropped in bulk, not one memmove per flush */
    c->head = done;
    if (c->head == ev->len) {
        g_array_set_size(ev, 0);
        g_array_set_size(c->threads, 0);
        c->head = 0;
        c->min_ns = UINT64_MAX;
        return;
    }
    c->min_ns = g_array_index(ev, Event, c->head).time_ns;
    if (c->head > APPDEP_CONV_COMPACT && c->head > ev->len / 2) {
        g_array_remove_range(ev, 0, c->head);
        c->head = 0;
    }
}

/* Forget @c (and free it). */
static void conn_remove(AppdepConverter *cv, Conn *c)
{
    Conn *moved = g_ptr_array_index(cv->list, cv->list->len - 1);

    g_ptr_array_index(cv->list, c->pos) = moved;
    moved->pos = c->pos;
    g_ptr_array_set_size(cv->list, cv->list->len - 1);
    if (cv->last == c) {
        cv->last = NULL;
    }
    g_hash_table_remove(cv->conns, c->end);
}

/* Finish @c: emit all it holds. */
static void conn_finish(AppdepConverter *cv, Conn *c)
{
    conn_flush(cv, c, 0, true);
    cv->st.connections++;
}

/* Widen the sequence range of the data from end @d by a record's. */
static void seq_note(Conn *c, int d, uint32_t seq, uint64_t bytes)
{
    uint32_t end = seq + (uint32_t)bytes;

    if (!c->have_seq[d]) {
        c->have_seq[d] = true;
        c->seq_lo[d] = seq;
        c->seq_hi[d] = end;
        return;
    }
    if ((int32_t)(seq - c->seq_lo[d]) < 0) {
        c->seq_lo[d] = seq;
    }
    if ((int32_t)(end - c->seq_hi[d]) > 0) {
        c->seq_hi[d] = end;
    }
}

/*
 * Whether data record @r (from end @d) belongs to another connection on
 * the same 4-tuple than @c: once an end of @c closed, data outside the
 * sequence range seen from that end is a new connection's (a new initial
 * sequence number).  Both ends' records of the new connection are
 * recognised, in whichever order the VMs' streams deliver them.
 */
static bool seq_new_conn(const Conn *c, int d, const AppdepThreadRecord *r)
{
    if (!(c->closed_ns[0] || c->closed_ns[1]) || !c->have_seq[d]) {
        return false;
    }
    return (int32_t)(r->seq - c->seq_lo[d]) < 0 ||
           (int32_t)(c->seq_hi[d] - r->seq) < 0;
}

void appdep_converter_feed(AppdepConverter *cv, const AppdepThreadRecord *r)
{
    End key[2], local, remote;
    Conn *c;
    Event e;
    int side;

    cv->st.records++;
    end_of(&local, r->family, r->saddr, r->sport);
    end_of(&remote, r->family, r->daddr, r->dport);
    side = end_cmp(&local, &remote) <= 0 ? 0 : 1;
    key[side] = local;
    key[!side] = remote;
    if (r->time_ns > cv->now_ns) {
        cv->now_ns = r->time_ns;
    }

    /* a connection's records tend to come together: try the last one */
    c = cv->last;
    if (!c || !key_equal(c->end, key)) {
        c = g_hash_table_lookup(cv->conns, key);
    }
    if (c && r->op != APPDEP_OP_CLOSE &&
        seq_new_conn(c, r->op == APPDEP_OP_SEND ? side : !side, r)) {
        /* a closed 4-tuple carries a new connection: finish the old one */
        conn_finish(cv, c);
        conn_remove(cv, c);
        c = NULL;
    }
    cv->last = NULL;
    if (!c) {
        if (g_hash_table_size(cv->conns) >= APPDEP_CONV_MAX_CONNS) {
            cv->st.evicted++;
            return;
        }
        c = g_new0(Conn, 1);
        memcpy(c->end, key, sizeof(key));
        c->events = g_array_new(FALSE, FALSE, sizeof(Event));
        c->threads = g_array_new(FALSE, FALSE, sizeof(AppdepThreadId));
        c->client = -1;
        c->min_ns = UINT64_MAX;
        g_hash_table_insert(cv->conns, c->end, c);
        c->pos = cv->list->len;
        g_ptr_array_add(cv->list, c);
    }
    cv->last = c;
    if (r->time_ns > c->last_ns) {
        c->last_ns = r->time_ns;
    }
    if (r->op == APPDEP_OP_CLOSE) {
        c->closed_ns[side] = r->time_ns ? r->time_ns : 1;
        return;
    }
    seq_note(c, r->op == APPDEP_OP_SEND ? side : !side, r->seq, r->bytes);
    if (c->events->len - c->head >= APPDEP_CONV_MAX_EVENTS) {
        /* a connection that never turns around: emit what it has */
        conn_flush(cv, c, 0, true);
        if (c->events->len - c->head >= APPDEP_CONV_MAX_EVENTS) {
            cv->st.evicted++;
            return;
        }
    }
    e.time_ns = r->time_ns;
    e.serial = r->serial;
    e.bytes = r->bytes;
    e.seq = r->seq;
    e.op = r->op;
    e.from = r->op == APPDEP_OP_SEND ? side : !side;
    e.thread = conn_thread(c, r);
    if (c->events->len > c->head &&
        event_cmp(&e, &g_array_index(c->events, Event,
                                     c->events->len - 1)) < 0) {
        c->unsorted = true;
    }
    if (e.time_ns < c->min_ns) {
        c->min_ns = e.time_ns;
    }
    g_array_append_val(c->events, e);
}

/*
 * Fetch ahead what flushing connection @i of cv->list reads: each step
 * reads a pointer the previous one fetched (Conn, its events' GArray,
 * their held head), so they are spread over the next iterations.
 */
static void conn_prefetch(AppdepConverter *cv, guint i)
{
    GPtrArray *l = cv->list;

    if (i + 2 * APPDEP_CONV_PREFETCH < l->len) {
        __builtin_prefetch(g_ptr_array_index(l, i + 2 * APPDEP_CONV_PREFETCH));
    }
    if (i + APPDEP_CONV_PREFETCH < l->len) {
        Conn *c = g_ptr_array_index(l, i + APPDEP_CONV_PREFETCH);

        __builtin_prefetch(c->events);
    }
    if (i + 1 < l->len) {
        Conn *c = g_ptr_array_index(l, i + 1);

        __builtin_prefetch(c->events->data + c->head * sizeof(Event));
    }
}

void appdep_converter_flush(AppdepConverter *cv, bool all)
{
    uint64_t horizon = cv->now_ns > APPDEP_CONV_LATENESS_NS ?
                       cv->now_ns - APPDEP_CONV_LATENESS_NS : 0;
    guint i = 0;

    while (i < cv->list->len) {
        Conn *c = g_ptr_array_index(cv->list, i);
        bool closed = c->closed_ns[0] && c->closed_ns[1];
        bool idle = c->last_ns + APPDEP_CONV_IDLE_NS < cv->now_ns;

        conn_prefetch(cv, i);
        if (all || ((closed || idle) && c->last_ns < horizon)) {
            conn_finish(cv, c);
            conn_remove(cv, c);     /* the last one moves to i */
        } else {
            conn_flush(cv, c, horizon, false);
            i++;
        }
    }
}
