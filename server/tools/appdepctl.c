/*
 * appdepctl: command line client of the APM server's HTTP API
 * (docs/api.md).
 *
 *   appdepctl [--server ADDR:PORT] COMMAND [OPTIONS] [ARGS]
 *
 * Exit status: 0 ok, 1 the server reported an error, 2 usage, 3 the
 * server cannot be reached (or does not speak HTTP).
 *
 * A tiny blocking HTTP/1.1 client: one request per connection
 * ("Connection: close"), the whole response read into memory (bounded).
 *
 * Copyright (c) 2026 appdep authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <gio/gio.h>
#include <json-glib/json-glib.h>
#include "server-limits.h"


enum {
    CTL_EXIT_OK = 0,
    CTL_EXIT_SERVER = 1,
    CTL_EXIT_USAGE = 2,
    CTL_EXIT_UNREACHABLE = 3,
};

static const char *server_addr = APPDEP_API_LISTEN_DEFAULT;

typedef struct CtlResponse {
    unsigned status;
    GString *body;
} CtlResponse;

static void response_clear(CtlResponse *r)
{
    if (r->body) {
        g_string_free(r->body, TRUE);
        r->body = NULL;
    }
}

/* Typed members of an answer that may not have them: defaults then. */
static gint64 member_int(JsonObject *o, const char *name)
{
    JsonNode *n = json_object_get_member(o, name);

    return n && JSON_NODE_HOLDS_VALUE(n) &&
           json_node_get_value_type(n) == G_TYPE_INT64
           ? json_node_get_int(n) : 0;
}

static const char *member_str(JsonObject *o, const char *name)
{
    JsonNode *n = json_object_get_member(o, name);

    return n && JSON_NODE_HOLDS_VALUE(n) &&
           json_node_get_value_type(n) == G_TYPE_STRING
           ? json_node_get_string(n) : "";
}

static bool member_bool(JsonObject *o, const char *name)
{
    JsonNode *n = json_object_get_member(o, name);

    return n && JSON_NODE_HOLDS_VALUE(n) &&
           json_node_get_value_type(n) == G_TYPE_BOOLEAN &&
           json_node_get_boolean(n);
}

static JsonObject *member_obj(JsonObject *o, const char *name)
{
    JsonNode *n = json_object_get_member(o, name);

    return n && JSON_NODE_HOLDS_OBJECT(n) ? json_node_get_object(n) : NULL;
}

static JsonArray *member_arr(JsonObject *o, const char *name)
{
    JsonNode *n = json_object_get_member(o, name);

    return n && JSON_NODE_HOLDS_ARRAY(n) ? json_node_get_array(n) : NULL;
}

static const char *element_str(JsonArray *a, guint i)
{
    JsonNode *n = json_array_get_element(a, i);

    return n && JSON_NODE_HOLDS_VALUE(n) &&
           json_node_get_value_type(n) == G_TYPE_STRING
           ? json_node_get_string(n) : "?";
}

/* Decode a chunked body in place; false if malformed. */
static bool dechunk(GString *b)
{
    GString *out = g_string_sized_new(b->len);
    size_t off = 0;

    for (;;) {
        const char *line = b->str + off;
        const char *eol = g_strstr_len(line, b->len - off, "\r\n");
        char *end;
        guint64 n;

        if (!eol) {
            break;
        }
        n = g_ascii_strtoull(line, &end, 16);
        if (end == line || (end != eol && *end != ';')) {
            break;
        }
        off = eol + 2 - b->str;
        if (n == 0) {
            g_string_assign(b, out->str);
            g_string_free(out, TRUE);
            return true;
        }
        if (n > b->len - off || b->len - off - n < 2) {
            break;
        }
        g_string_append_len(out, b->str + off, n);
        off += n + 2;
    }
    g_string_free(out, TRUE);
    return false;
}

/*
 * @method @path (with query) to the server, @body (JSON, may be NULL).
 * Returns 0 with *@resp filled (any HTTP status), or -1 with a message
 * printed: the server cannot be reached or the answer is not HTTP.
 */
static int http_request(const char *method, const char *path,
                        const char *body, CtlResponse *resp)
{
    g_autoptr(GSocketClient) client = g_socket_client_new();
    g_autoptr(GSocketConnection) conn = NULL;
    g_autoptr(GString) req = g_string_new(NULL);
    g_autoptr(GString) raw = g_string_new(NULL);
    g_autoptr(GError) err = NULL;
    g_autofree char *buf = g_malloc(APPDEP_CTL_READ_CHUNK);
    GInputStream *in;
    const char *hdr_end, *p;
    char *line_end;
    unsigned status;
    gssize n;

    memset(resp, 0, sizeof(*resp));
    g_socket_client_set_timeout(client, APPDEP_CTL_TIMEOUT_S);
    conn = g_socket_client_connect_to_host(client, server_addr,
                                           APPDEP_API_PORT_DEFAULT, NULL, &err);
    if (!conn) {
        fprintf(stderr, "appdepctl: cannot reach %s: %s\n", server_addr,
                err->message);
        return -1;
    }
    g_string_printf(req, "%s %s HTTP/1.1\r\nHost: %s\r\n"
                    "Connection: close\r\nAccept: */*\r\n",
                    method, path, server_addr);
    if (body) {
        g_string_append_printf(req, "Content-Type: application/json\r\n"
                               "Content-Length: %zu\r\n", strlen(body));
    } else if (!strcmp(method, "POST")) {
        g_string_append(req, "Content-Length: 0\r\n");
    }
    g_string_append(req, "\r\n");
    if (body) {
        g_string_append(req, body);
    }
    if (!g_output_stream_write_all(
            g_io_stream_get_output_stream(G_IO_STREAM(conn)), req->str,
            req->len, NULL, NULL, &err)) {
        fprintf(stderr, "appdepctl: %s: %s\n", server_addr, err->message);
        return -1;
    }
    in = g_io_stream_get_input_stream(G_IO_STREAM(conn));
    while ((n = g_input_stream_read(in, buf, APPDEP_CTL_READ_CHUNK, NULL,
                                    &err)) > 0) {
        if (raw->len + n > APPDEP_CTL_MAX_RESPONSE) {
            fprintf(stderr, "appdepctl: %s: response larger than %d "
                    "bytes\n", server_addr, APPDEP_CTL_MAX_RESPONSE);
            return -1;
        }
        g_string_append_len(raw, buf, n);
    }
    if (n < 0) {
        fprintf(stderr, "appdepctl: %s: %s\n", server_addr, err->message);
        return -1;
    }

    hdr_end = g_strstr_len(raw->str, raw->len, "\r\n\r\n");
    if (!hdr_end || sscanf(raw->str, "HTTP/1.%*1[01] %3u", &status) != 1 ||
        status < 100 || status > 599) {
        fprintf(stderr, "appdepctl: %s: not an HTTP response\n",
                server_addr);
        return -1;
    }
    resp->status = status;
    resp->body = g_string_new_len(hdr_end + 4,
                                  raw->len - (hdr_end + 4 - raw->str));
    /* headers we honour: Transfer-Encoding: chunked, Content-Length */
    for (p = strstr(raw->str, "\r\n") + 2; p < hdr_end;
         p = line_end + 2) {
        line_end = strstr(p, "\r\n");
        if (!g_ascii_strncasecmp(p, "transfer-encoding:", 18) &&
            g_strstr_len(p, line_end - p, "chunked")) {
            if (!dechunk(resp->body)) {
                fprintf(stderr, "appdepctl: %s: bad chunked body\n",
                        server_addr);
                response_clear(resp);
                return -1;
            }
        } else if (!g_ascii_strncasecmp(p, "content-length:", 15)) {
            guint64 len = g_ascii_strtoull(p + 15, NULL, 10);

            if (len > resp->body->len) {
                fprintf(stderr, "appdepctl: %s: response cut short\n",
                        server_addr);
                response_clear(resp);
                return -1;
            }
            g_string_truncate(resp->body, len);
        }
    }
    return 0;
}

/* Parse a JSON body; NULL if it is not JSON. */
static JsonNode *parse_json(const GString *body)
{
    g_autoptr(JsonParser) p = json_parser_new();

    if (!json_parser_load_from_data(p, body->str, body->len, NULL) ||
        !json_parser_get_root(p)) {
        return NULL;
    }
    return json_node_copy(json_parser_get_root(p));
}

/* Print the server's error of @r and return CTL_EXIT_SERVER. */
static int server_error(const CtlResponse *r)
{
    g_autoptr(JsonNode) root = parse_json(r->body);
    const char *msg = NULL;

    if (root && JSON_NODE_HOLDS_OBJECT(root)) {
        msg = member_str(json_node_get_object(root), "error");
    }
    fprintf(stderr, "appdepctl: server: %u: %s\n", r->status,
            msg && *msg ? msg : g_strchomp(r->body->str));
    return CTL_EXIT_SERVER;
}

/* One request; exit code, *@out the parsed JSON object on 2xx. */
static int call_json(const char *method, const char *path, const char *body,
                     JsonNode **out)
{
    CtlResponse r;
    JsonNode *root;
    int ret;

    if (http_request(method, path, body, &r) < 0) {
        return CTL_EXIT_UNREACHABLE;
    }
    if (r.status < 200 || r.status > 299) {
        ret = server_error(&r);
        response_clear(&r);
        return ret;
    }
    root = parse_json(r.body);
    response_clear(&r);
    if (!root) {
        fprintf(stderr, "appdepctl: %s: the answer is not JSON\n",
                server_addr);
        return CTL_EXIT_UNREACHABLE;
    }
    *out = root;
    return CTL_EXIT_OK;
}

/* One request whose body is printed as it is (to @file or stdout). */
static int call_raw(const char *path, const char *file)
{
    CtlResponse r;
    int ret = CTL_EXIT_OK;

    if (http_request("GET", path, NULL, &r) < 0) {
        return CTL_EXIT_UNREACHABLE;
    }
    if (r.status < 200 || r.status > 299) {
        ret = server_error(&r);
    } else if (file) {
        g_autoptr(GError) err = NULL;

        if (!g_file_set_contents(file, r.body->str, r.body->len, &err)) {
            fprintf(stderr, "appdepctl: %s\n", err->message);
            ret = CTL_EXIT_USAGE;
        }
    } else {
        fwrite(r.body->str, 1, r.body->len, stdout);
    }
    response_clear(&r);
    return ret;
}

static void print_json(JsonNode *root)
{
    g_autoptr(JsonGenerator) gen = json_generator_new();
    g_autofree char *s = NULL;

    json_generator_set_pretty(gen, TRUE);
    json_generator_set_root(gen, root);
    s = json_generator_to_data(gen, NULL);
    printf("%s\n", s);
}

static int usage_error(GOptionContext *ctx, const char *fmt, ...)
    G_GNUC_PRINTF(2, 3);

static int usage_error(GOptionContext *ctx, const char *fmt, ...)
{
    g_autofree char *msg = NULL;
    va_list ap;

    va_start(ap, fmt);
    msg = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    fprintf(stderr, "appdepctl: %s (try --help)\n", msg);
    return CTL_EXIT_USAGE;
}

/* Parse the options of a command; CTL_EXIT_OK or CTL_EXIT_USAGE. */
static int parse_options(GOptionContext *ctx, int *argc, char ***argv)
{
    g_autoptr(GError) err = NULL;

    if (!g_option_context_parse(ctx, argc, argv, &err)) {
        return usage_error(ctx, "%s", err->message);
    }
    return CTL_EXIT_OK;
}

static bool all_digits(const char *s)
{
    if (!s || !*s) {
        return false;
    }
    for (; *s; s++) {
        if (!g_ascii_isdigit(*s)) {
            return false;
        }
    }
    return true;
}

/* Append &key=value (value escaped) to @q when @value is set. */
static void query_add(GString *q, const char *key, const char *value)
{
    g_autofree char *v = NULL;

    if (!value) {
        return;
    }
    v = g_uri_escape_string(value, NULL, FALSE);
    g_string_append_printf(q, "%c%s=%s", strchr(q->str, '?') ? '&' : '?',
                           key, v);
}

/* --from/--to/--last into @q; CTL_EXIT_USAGE when malformed. */
static int window_args(GOptionContext *ctx, GString *q, const char *from,
                       const char *to, const char *last)
{
    if (from && !all_digits(from)) {
        return usage_error(ctx, "--from wants nanoseconds since the epoch");
    }
    if (to && !all_digits(to)) {
        return usage_error(ctx, "--to wants nanoseconds since the epoch");
    }
    if (last && !all_digits(last)) {
        return usage_error(ctx, "--last wants seconds");
    }
    if (last && (from || to)) {
        return usage_error(ctx, "--last excludes --from and --to");
    }
    query_add(q, "from", from);
    query_add(q, "to", to);
    query_add(q, "last", last);
    return CTL_EXIT_OK;
}

/*
 * The prologue of a command @name that takes no argument and GETs
 * @path: parse its options (--json), call the server, and print the raw
 * JSON when asked or when the answer is not of @type.  Returns
 * CTL_EXIT_OK with *@root set when the command should print the answer
 * as text, or the command's exit status with *@root NULL.
 */
static int ctl_get_json(int argc, char **argv, const char *name,
                        const char *summary, const char *path,
                        JsonNodeType type, JsonNode **root)
{
    gboolean json = FALSE;
    GOptionEntry entries[] = {
        { "json", 'j', 0, G_OPTION_ARG_NONE, &json, "Print the raw JSON",
          NULL },
        { NULL }
    };
    g_autoptr(GOptionContext) ctx = g_option_context_new(summary);
    g_autoptr(JsonNode) answer = NULL;
    int ret;

    *root = NULL;
    g_option_context_add_main_entries(ctx, entries, NULL);
    if ((ret = parse_options(ctx, &argc, &argv)) != CTL_EXIT_OK) {
        return ret;
    }
    if (argc != 1) {
        return usage_error(ctx, "%s takes no argument", name);
    }
    ret = call_json("GET", path, NULL, &answer);
    if (ret != CTL_EXIT_OK) {
        return ret;
    }
    if (json || JSON_NODE_TYPE(answer) != type) {
        print_json(answer);
        return CTL_EXIT_OK;
    }
    *root = g_steal_pointer(&answer);
    return CTL_EXIT_OK;
}

/* ---- commands ----------------------------------------------------------- */

static int cmd_status(int argc, char **argv)
{
    g_autoptr(JsonNode) root = NULL;
    JsonObject *o, *st;
    JsonArray *hosts;
    int ret;
    guint i;

    ret = ctl_get_json(argc, argv, "status", "- server counters",
                       "/v1/status", JSON_NODE_OBJECT, &root);
    if (!root) {
        return ret;
    }
    o = json_node_get_object(root);
    printf("records      %" G_GINT64_FORMAT "\n", member_int(o, "records"));
    printf("messages     %" G_GINT64_FORMAT "\n", member_int(o, "messages"));
    printf("pending      %" G_GINT64_FORMAT "\n", member_int(o, "pending"));
    printf("bad peers    %" G_GINT64_FORMAT "\n", member_int(o, "bad_peers"));
    st = member_obj(o, "store");
    if (st) {
        printf("store        %" G_GINT64_FORMAT " records, %"
               G_GINT64_FORMAT " messages, map %.1f MiB "
               "(grown %" G_GINT64_FORMAT " times), %" G_GINT64_FORMAT
               " expired, %" G_GINT64_FORMAT " corrupt\n",
               member_int(st, "records"), member_int(st, "messages"),
               member_int(st, "map_size") / 1048576.0,
               member_int(st, "map_grows"), member_int(st, "expired"),
               member_int(st, "corrupt"));
    }
    st = member_obj(o, "daemons");
    if (st) {
        printf("daemons      %" G_GINT64_FORMAT " connected",
               member_int(st, "connected"));
        hosts = member_arr(st, "hosts");
        for (i = 0; hosts && i < json_array_get_length(hosts); i++) {
            printf("%s%s", i ? ", " : ": ",
                   element_str(hosts, i));
        }
        printf("\n");
    }
    printf("vms          %" G_GINT64_FORMAT " (%" G_GINT64_FORMAT
           " enabled)\n", member_int(o, "vms"), member_int(o, "vms_enabled"));
    return CTL_EXIT_OK;
}

static int cmd_vms(int argc, char **argv)
{
    g_autoptr(JsonNode) root = NULL;
    JsonArray *vms;
    int ret;
    guint i, j;

    ret = ctl_get_json(argc, argv, "vms",
                       "- the VMs the forward daemons report", "/v1/vms",
                       JSON_NODE_ARRAY, &root);
    if (!root) {
        return ret;
    }
    vms = json_node_get_array(root);
    printf("%-24s %-16s %-8s %s\n", "VM", "HOST", "INSPECT", "ADDRESSES");
    for (i = 0; i < json_array_get_length(vms); i++) {
        JsonObject *v = json_array_get_object_element(vms, i);
        JsonArray *addrs;

        if (!v) {
            continue;
        }
        addrs = member_arr(v, "addresses");
        printf("%-24s %-16s %-8s ", member_str(v, "name"),
               member_str(v, "host"),
               member_bool(v, "enabled") ? "on" : "off");
        for (j = 0; addrs && j < json_array_get_length(addrs); j++) {
            printf("%s%s", j ? " " : "",
                   element_str(addrs, j));
        }
        printf("\n");
    }
    if (!json_array_get_length(vms)) {
        printf("(no VM reported: is a forward daemon connected?)\n");
    }
    return CTL_EXIT_OK;
}

static int cmd_inspect(int argc, char **argv)
{
    g_autoptr(GOptionContext) ctx = g_option_context_new(
        "VM on|off - switch a VM's inspection (waits for its daemon)");
    g_autoptr(JsonNode) root = NULL;
    g_autofree char *vm = NULL;
    g_autofree char *path = NULL;
    bool on;
    int ret;

    if ((ret = parse_options(ctx, &argc, &argv)) != CTL_EXIT_OK) {
        return ret;
    }
    if (argc != 3) {
        return usage_error(ctx, "inspect wants VM on|off");
    }
    if (!strcmp(argv[2], "on")) {
        on = true;
    } else if (!strcmp(argv[2], "off")) {
        on = false;
    } else {
        return usage_error(ctx, "inspect wants on or off, not '%s'",
                           argv[2]);
    }
    vm = g_uri_escape_string(argv[1], NULL, FALSE);
    path = g_strdup_printf("/v1/vms/%s/inspect", vm);
    ret = call_json("POST", path, on ? "{\"enable\":true}"
                                     : "{\"enable\":false}", &root);
    if (ret == CTL_EXIT_OK) {
        printf("%s: inspection %s\n", argv[1], on ? "on" : "off");
    }
    return ret;
}

static int cmd_map(int argc, char **argv)
{
    g_autofree char *from = NULL, *to = NULL, *last = NULL;
    g_autofree char *format = NULL, *file = NULL;
    GOptionEntry entries[] = {
        { "from", 0, 0, G_OPTION_ARG_STRING, &from,
          "Window start, ns since the epoch", "NS" },
        { "to", 0, 0, G_OPTION_ARG_STRING, &to,
          "Window end (excluded), ns since the epoch (default: now)", "NS" },
        { "last", 'l', 0, G_OPTION_ARG_STRING, &last,
          "The last SECONDS (default: the last hour)", "SECONDS" },
        { "format", 'f', 0, G_OPTION_ARG_STRING, &format,
          "text (default), json or dot", "FORMAT" },
        { "output", 'o', 0, G_OPTION_ARG_FILENAME, &file,
          "Write to FILE instead of standard output", "FILE" },
        { NULL }
    };
    g_autoptr(GOptionContext) ctx = g_option_context_new(
        "- the dependency map of a time window");
    g_autoptr(GString) q = g_string_new("/v1/map");
    int ret;

    g_option_context_add_main_entries(ctx, entries, NULL);
    if ((ret = parse_options(ctx, &argc, &argv)) != CTL_EXIT_OK) {
        return ret;
    }
    if (argc != 1) {
        return usage_error(ctx, "map takes no argument");
    }
    if (format && strcmp(format, "text") && strcmp(format, "json") &&
        strcmp(format, "dot")) {
        return usage_error(ctx, "--format wants text, json or dot");
    }
    if ((ret = window_args(ctx, q, from, to, last)) != CTL_EXIT_OK) {
        return ret;
    }
    query_add(q, "format", format ? format : "text");
    return call_raw(q->str, file);
}

static int cmd_trajectory(int argc, char **argv)
{
    g_autofree char *from = NULL, *to = NULL, *last = NULL, *limit = NULL;
    g_autofree char *margin = NULL;
    gboolean json = FALSE;
    GOptionEntry entries[] = {
        { "from", 0, 0, G_OPTION_ARG_STRING, &from,
          "Window start, ns since the epoch", "NS" },
        { "to", 0, 0, G_OPTION_ARG_STRING, &to,
          "Window end (excluded), ns since the epoch (default: now)", "NS" },
        { "last", 'l', 0, G_OPTION_ARG_STRING, &last,
          "The last SECONDS (default: the last hour)", "SECONDS" },
        { "limit", 'n', 0, G_OPTION_ARG_STRING, &limit,
          "Show at most N trajectories (server default "
          G_STRINGIFY(APPDEP_API_DEFAULT_TRAJ_LIMIT) ")", "N" },
        { "margin", 'm', 0, G_OPTION_ARG_STRING, &margin,
          "Read S seconds before and after the window: requests longer "
          "than that may be attributed wrongly (server default "
          G_STRINGIFY(APPDEP_API_TRAJ_MARGIN_S) ")", "S" },
        { "json", 'j', 0, G_OPTION_ARG_NONE, &json, "Print JSON", NULL },
        { NULL }
    };
    g_autoptr(GOptionContext) ctx = g_option_context_new(
        "VM[/PROGRAM][:PORT] - the request trees of an application");
    g_autoptr(GString) q = g_string_new("/v1/trajectories");
    int ret;

    g_option_context_add_main_entries(ctx, entries, NULL);
    if ((ret = parse_options(ctx, &argc, &argv)) != CTL_EXIT_OK) {
        return ret;
    }
    if (argc != 2) {
        return usage_error(ctx, "trajectory wants one application");
    }
    if (limit && !all_digits(limit)) {
        return usage_error(ctx, "--limit wants a number");
    }
    if (margin && !all_digits(margin)) {
        return usage_error(ctx, "--margin wants a number of seconds");
    }
    query_add(q, "app", argv[1]);
    if ((ret = window_args(ctx, q, from, to, last)) != CTL_EXIT_OK) {
        return ret;
    }
    query_add(q, "limit", limit);
    query_add(q, "margin_s", margin);
    query_add(q, "format", json ? "json" : "text");
    return call_raw(q->str, NULL);
}

/* Print the log lines of a learning session from *@shown on. */
static void learn_print_log(JsonObject *o, guint *shown, gint64 t0)
{
    JsonArray *log = member_arr(o, "log");

    for (; log && *shown < json_array_get_length(log); (*shown)++) {
        JsonObject *l = json_array_get_object_element(log, *shown);

        if (l) {
            printf("[%7.1f s] %s\n",
                   (member_int(l, "time_ns") - t0) / 1e9,
                   member_str(l, "text"));
        }
    }
    fflush(stdout);
}

static void print_names(const char *title, JsonArray *a)
{
    guint i;

    printf("%s", title);
    for (i = 0; a && i < json_array_get_length(a); i++) {
        printf("%s%s", i ? ", " : " ", element_str(a, i));
    }
    printf("%s\n", a && json_array_get_length(a) ? "" : " none");
}

static int cmd_learn(int argc, char **argv)
{
    gint window = 0;
    GOptionEntry entries[] = {
        { "window", 'w', 0, G_OPTION_ARG_INT, &window,
          "Collect SECONDS per round (server default "
          G_STRINGIFY(APPDEP_LEARN_DEFAULT_WINDOW_S) ")", "SECONDS" },
        { NULL }
    };
    g_autoptr(GOptionContext) ctx = g_option_context_new(
        "VM[/PROGRAM][:PORT] - learn an application's VMs, round by round");
    g_autoptr(JsonNode) root = NULL;
    g_autoptr(JsonBuilder) jb = json_builder_new();
    g_autoptr(JsonGenerator) gen = json_generator_new();
    g_autoptr(JsonNode) req = NULL;
    g_autofree char *body = NULL, *path = NULL;
    const char *state = "";
    gint64 id, t0 = 0;
    guint shown = 0;
    int ret;

    g_option_context_add_main_entries(ctx, entries, NULL);
    if ((ret = parse_options(ctx, &argc, &argv)) != CTL_EXIT_OK) {
        return ret;
    }
    if (argc != 2) {
        return usage_error(ctx, "learn wants one application");
    }
    if (window < 0) {
        return usage_error(ctx, "--window wants a positive number");
    }
    json_builder_begin_object(jb);
    json_builder_set_member_name(jb, "app");
    json_builder_add_string_value(jb, argv[1]);
    if (window) {
        json_builder_set_member_name(jb, "window_s");
        json_builder_add_int_value(jb, window);
    }
    json_builder_end_object(jb);
    req = json_builder_get_root(jb);
    json_generator_set_root(gen, req);
    body = json_generator_to_data(gen, NULL);

    ret = call_json("POST", "/v1/learn", body, &root);
    if (ret != CTL_EXIT_OK) {
        return ret;
    }
    id = JSON_NODE_HOLDS_OBJECT(root)
         ? member_int(json_node_get_object(root), "id") : 0;
    if (id <= 0) {
        fprintf(stderr, "appdepctl: the server gave no learning id\n");
        return CTL_EXIT_UNREACHABLE;
    }
    path = g_strdup_printf("/v1/learn/%" G_GINT64_FORMAT, id);
    printf("learning session %" G_GINT64_FORMAT "\n", id);

    for (;;) {
        JsonObject *o;

        g_clear_pointer(&root, json_node_unref);
        ret = call_json("GET", path, NULL, &root);
        if (ret != CTL_EXIT_OK) {
            return ret;
        }
        if (!JSON_NODE_HOLDS_OBJECT(root)) {
            fprintf(stderr, "appdepctl: unexpected learning progress\n");
            return CTL_EXIT_UNREACHABLE;
        }
        o = json_node_get_object(root);
        if (!t0) {
            t0 = member_int(o, "started_ns");
        }
        learn_print_log(o, &shown, t0);
        state = member_str(o, "state");
        if (!strcmp(state, "done") || !strcmp(state, "failed")) {
            print_names("enabled VMs:",
                        member_arr(o, "enabled"));
            print_names("peers not in the inventory:",
                        member_arr(o, "unmapped"));
            break;
        }
        g_usleep(APPDEP_CTL_POLL_MS * 1000);
    }
    if (strcmp(state, "done")) {
        fprintf(stderr, "appdepctl: learning failed\n");
        return CTL_EXIT_SERVER;
    }
    printf("next: appdepctl map --last SECONDS, appdepctl trajectory %s\n",
           argv[1]);
    return CTL_EXIT_OK;
}

static const struct {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *help;
} commands[] = {
    { "status", cmd_status, "server counters" },
    { "vms", cmd_vms, "the VMs the forward daemons report" },
    { "inspect", cmd_inspect, "VM on|off: switch a VM's inspection" },
    { "map", cmd_map, "the dependency map of a time window" },
    { "trajectory", cmd_trajectory, "APP: the request trees of an app" },
    { "learn", cmd_learn, "APP: learn an application's VMs" },
};

static void usage(FILE *f)
{
    size_t i;

    fprintf(f, "Usage: appdepctl [--server ADDR:PORT] COMMAND [--help] "
            "[OPTIONS] [ARGS]\n\nCommands:\n");
    for (i = 0; i < G_N_ELEMENTS(commands); i++) {
        fprintf(f, "  %-12s %s\n", commands[i].name, commands[i].help);
    }
    fprintf(f, "\nThe server defaults to %s.  APP is VM[/PROGRAM][:PORT].\n"
            "Exit status: 0 ok, 1 server error, 2 usage, 3 server not "
            "reachable.\n", APPDEP_API_LISTEN_DEFAULT);
}

int main(int argc, char **argv)
{
    int i = 1;
    size_t c;

    while (i < argc && argv[i][0] == '-') {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return CTL_EXIT_OK;
        } else if ((!strcmp(argv[i], "--server") || !strcmp(argv[i], "-s"))
                   && i + 1 < argc) {
            server_addr = argv[i + 1];
            i += 2;
        } else if (g_str_has_prefix(argv[i], "--server=")) {
            server_addr = argv[i] + strlen("--server=");
            i++;
        } else {
            fprintf(stderr, "appdepctl: unknown option '%s' (try --help)\n",
                    argv[i]);
            return CTL_EXIT_USAGE;
        }
    }
    if (i >= argc) {
        usage(stderr);
        return CTL_EXIT_USAGE;
    }
    for (c = 0; c < G_N_ELEMENTS(commands); c++) {
        if (!strcmp(argv[i], commands[c].name)) {
            g_autofree char *prog = g_strdup_printf("appdepctl %s",
                                                    argv[i]);

            /* the command's argv: argv[0] names it for --help */
            argv[i] = prog;
            g_set_prgname(prog);
            return commands[c].fn(argc - i, argv + i);
        }
    }
    fprintf(stderr, "appdepctl: unknown command '%s' (try --help)\n",
            argv[i]);
    return CTL_EXIT_USAGE;
}
