/*
 * appdep server: the HTTP API's pure parsers (api.h): routes, query
 * values, bodies.  Strings in, values out, no I/O, any thread.
 *
 * Copyright (c) 2026 appdep authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include <errno.h>
#include <string.h>
#include <json-glib/json-glib.h>
#include "api.h"

/* ---- pure parsers ------------------------------------------------------ */

int appdep_api_parse_u64(const char *s, uint64_t min, uint64_t max,
                         uint64_t *out, const char **why)
{
    g_autoptr(GError) err = NULL;
    guint64 v;

    if (!s || !*s) {
        *why = "empty number";
        return -EINVAL;
    }
    /* the whole range first: a number too large is not one out of range */
    if (!g_ascii_string_to_unsigned(s, 10, 0, G_MAXUINT64, &v, &err)) {
        bool big = g_error_matches(err, G_NUMBER_PARSER_ERROR,
                                   G_NUMBER_PARSER_ERROR_OUT_OF_BOUNDS);

        *why = big ? "number too large" : "not a decimal number";
        return big ? -ERANGE : -EINVAL;
    }
    if (v < min || v > max) {
        *why = "number out of range";
        return -ERANGE;
    }
    *out = v;
    return 0;
}

int appdep_api_parse_window(const char *from, const char *to,
                            const char *last, uint64_t now_ns,
                            uint64_t *t0, uint64_t *t1, const char **why)
{
    uint64_t a, b;
    const char *w;

    if (last) {
        uint64_t s;

        if (from || to) {
            *why = "'last' excludes 'from' and 'to'";
            return -EINVAL;
        }
        if (appdep_api_parse_u64(last, 1, now_ns / APPDEP_NS_PER_S, &s,
                                 &w) < 0) {
            *why = "bad 'last': seconds, 1 up to the age of the epoch";
            return -EINVAL;
        }
        *t0 = now_ns - s * APPDEP_NS_PER_S;
        *t1 = now_ns;
        return 0;
    }
    b = now_ns;
    if (to && appdep_api_parse_u64(to, 1, UINT64_MAX, &b, &w) < 0) {
        *why = "bad 'to': nanoseconds since the epoch";
        return -EINVAL;
    }
    a = b > APPDEP_API_DEFAULT_WINDOW_NS ? b - APPDEP_API_DEFAULT_WINDOW_NS
                                         : 0;
    if (from && appdep_api_parse_u64(from, 0, UINT64_MAX, &a, &w) < 0) {
        *why = "bad 'from': nanoseconds since the epoch";
        return -EINVAL;
    }
    if (a >= b) {
        *why = "'from' must be before 'to'";
        return -ERANGE;
    }
    *t0 = a;
    *t1 = b;
    return 0;
}

bool appdep_api_body_fits(size_t have, size_t more)
{
    return have <= APPDEP_API_MAX_BODY_LEN &&
           more <= APPDEP_API_MAX_BODY_LEN - have;
}

/* Parse @body as one JSON object; NULL (with *@why) if it is not. */
static JsonParser *parse_object(const char *body, size_t len,
                                JsonObject **obj, const char **why)
{
    g_autoptr(JsonParser) p = json_parser_new();
    JsonNode *root;

    if (len == 0) {
        *why = "empty body, want a JSON object";
        return NULL;
    }
    if (len > APPDEP_API_MAX_BODY_LEN) {
        *why = "body too large";
        return NULL;
    }
    if (memchr(body, '\0', len) ||
        !json_parser_load_from_data(p, body, len, NULL)) {
        *why = "body is not valid JSON";
        return NULL;
    }
    root = json_parser_get_root(p);
    if (!root || !JSON_NODE_HOLDS_OBJECT(root)) {
        *why = "body is not a JSON object";
        return NULL;
    }
    *obj = json_node_get_object(root);
    return g_steal_pointer(&p);
}

/* Every member of @obj is one of the NULL-terminated @known. */
static bool only_members(JsonObject *obj, const char *const *known)
{
    g_autoptr(GList) names = json_object_get_members(obj);
    GList *l;

    for (l = names; l; l = l->next) {
        if (!g_strv_contains(known, l->data)) {
            return false;
        }
    }
    return true;
}

/*
 * Parse @body as one JSON object whose members are all among @known;
 * NULL with *@why (@usage when a member is unknown) if it is not.
 */
static JsonParser *parse_body(const char *body, size_t len,
                              const char *const *known, const char *usage,
                              JsonObject **obj, const char **why)
{
    g_autoptr(JsonParser) p = parse_object(body, len, obj, why);

    if (p && !only_members(*obj, known)) {
        *why = usage;
        return NULL;
    }
    return g_steal_pointer(&p);
}

/*
 * Member @name of @obj if it is a value of @type; NULL when it is absent
 * (*@present false) or of another type (*@present true).
 */
static JsonNode *typed_member(JsonObject *obj, const char *name, GType type,
                              bool *present)
{
    JsonNode *n = json_object_get_member(obj, name);

    *present = n != NULL;
    if (!n || !JSON_NODE_HOLDS_VALUE(n) ||
        json_node_get_value_type(n) != type) {
        return NULL;
    }
    return n;
}

int appdep_api_parse_inspect(const char *body, size_t len, bool *enable,
                             const char **why)
{
    static const char *const known[] = { "enable", NULL };
    g_autoptr(JsonParser) p = NULL;
    JsonObject *obj;
    JsonNode *n;
    bool present;

    p = parse_body(body, len, known,
                   "unknown member, want {\"enable\": true|false}", &obj, why);
    if (!p) {
        return -EINVAL;
    }
    n = typed_member(obj, "enable", G_TYPE_BOOLEAN, &present);
    if (!n) {
        *why = "want {\"enable\": true|false}";
        return -EINVAL;
    }
    *enable = json_node_get_boolean(n);
    return 0;
}

int appdep_api_parse_learn(const char *body, size_t len, AppdepAppSpec *app,
                           uint32_t *window_s, const char **why)
{
    static const char *const known[] = { "app", "window_s", NULL };
    g_autoptr(JsonParser) p = NULL;
    JsonObject *obj;
    JsonNode *n;
    bool present;

    p = parse_body(body, len, known,
                   "unknown member, want {\"app\": SPEC, \"window_s\": N}",
                   &obj, why);
    if (!p) {
        return -EINVAL;
    }
    n = typed_member(obj, "app", G_TYPE_STRING, &present);
    if (!n) {
        *why = "want {\"app\": \"VM[/PROGRAM][:PORT]\"}";
        return -EINVAL;
    }
    if (appdep_appspec_parse(json_node_get_string(n), app, why) < 0) {
        return -EINVAL;
    }
    *window_s = APPDEP_LEARN_DEFAULT_WINDOW_S;
    n = typed_member(obj, "window_s", G_TYPE_INT64, &present);
    if (present) {
        gint64 v;

        if (!n) {
            *why = "'window_s' must be an integer";
            return -EINVAL;
        }
        v = json_node_get_int(n);
        if (v < APPDEP_LEARN_MIN_WINDOW_S || v > APPDEP_LEARN_MAX_WINDOW_S) {
            *why = "'window_s' out of range ("
                   G_STRINGIFY(APPDEP_LEARN_MIN_WINDOW_S) ".."
                   G_STRINGIFY(APPDEP_LEARN_MAX_WINDOW_S) ")";
            return -ERANGE;
        }
        *window_s = v;
    }
    return 0;
}

static const char *const route_methods[] = {
    [APPDEP_API_ROUTE_STATUS] = "GET",
    [APPDEP_API_ROUTE_VMS] = "GET",
    [APPDEP_API_ROUTE_INSPECT] = "POST",
    [APPDEP_API_ROUTE_MAP] = "GET",
    [APPDEP_API_ROUTE_TRAJECTORIES] = "GET",
    [APPDEP_API_ROUTE_LEARN_START] = "POST",
    [APPDEP_API_ROUTE_LEARN_LIST] = "GET",
    [APPDEP_API_ROUTE_LEARN_GET] = "GET",
};

int appdep_api_route(const char *method, const char *path,
                     AppdepApiRoute *route, char *arg, size_t arg_size)
{
    static const struct {
        const char *path;
        AppdepApiRoute route;
    } fixed[] = {
        { "/v1/status", APPDEP_API_ROUTE_STATUS },
        { "/v1/vms", APPDEP_API_ROUTE_VMS },
        { "/v1/map", APPDEP_API_ROUTE_MAP },
        { "/v1/trajectories", APPDEP_API_ROUTE_TRAJECTORIES },
    };
    const char *rest, *slash;
    AppdepApiRoute r = 0;
    size_t i;

    if (arg_size) {
        arg[0] = '\0';
    }
    if (strnlen(path, APPDEP_API_MAX_URL_LEN + 1) > APPDEP_API_MAX_URL_LEN) {
        return -ENOENT;
    }
    for (i = 0; i < G_N_ELEMENTS(fixed); i++) {
        if (!strcmp(path, fixed[i].path)) {
            r = fixed[i].route;
        }
    }
    if (!r && !strcmp(path, "/v1/learn")) {
        r = strcmp(method, "POST") ? APPDEP_API_ROUTE_LEARN_LIST
                                   : APPDEP_API_ROUTE_LEARN_START;
    }
    if (!r && g_str_has_prefix(path, "/v1/learn/")) {
        rest = path + strlen("/v1/learn/");
        if (!*rest || strchr(rest, '/') || strlen(rest) >= arg_size) {
            return -ENOENT;
        }
        g_strlcpy(arg, rest, arg_size);
        r = APPDEP_API_ROUTE_LEARN_GET;
    }
    if (!r && g_str_has_prefix(path, "/v1/vms/")) {
        rest = path + strlen("/v1/vms/");
        slash = strchr(rest, '/');
        if (!slash || slash == rest || strcmp(slash, "/inspect") ||
            (size_t)(slash - rest) >= arg_size) {
            return -ENOENT;
        }
        memcpy(arg, rest, slash - rest);
        arg[slash - rest] = '\0';
        r = APPDEP_API_ROUTE_INSPECT;
    }
    if (!r) {
        return -ENOENT;
    }
    if (strcmp(method, route_methods[r])) {
        return -EPERM;
    }
    *route = r;
    return 0;
}

