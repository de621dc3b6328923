/*
 * appdep-analyze: dependency map and trajectories from record files.
 *
 *   appdep-analyze [--app VM[/PROGRAM][:PORT]] [--dot FILE] [--json]
 *                  [--trajectories N] RECORDS...
 *
 * Reads per-thread record streams (appdep-dump --save, or a chardev
 * file), converts them into inter-thread messages, and prints the
 * dependency map and the trajectories of the selected application's
 * requests.  The offline counterpart of the APM server's queries: the
 * same conversion and trajectory modules.
 *
 * Copyright (c) 2026 appdep authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include "stream.h"
#include "convert.h"
#include "render.h"
#include "trajectory.h"

static void collect(const AppdepMessage *m, void *opaque)
{
    g_array_append_val((GArray *)opaque, *m);
}

/* Feed every record of @path to @cv; returns the records read or -errno. */
static long feed_file(AppdepConverter *cv, const char *path)
{
    g_autofree char *data = NULL;
    g_autoptr(GError) err = NULL;
    gsize len, off = 0;
    long n = 0;

    if (!g_file_get_contents(path, &data, &len, &err)) {
        fprintf(stderr, "appdep-analyze: %s\n", err->message);
        return -EIO;
    }
    while (off < len) {
        AppdepThreadRecord r;
        const char *why;
        size_t used;
        int ret = appdep_stream_next((uint8_t *)data + off, len - off, true,
                                     &r, &used, &why);

        if (ret == APPDEP_STREAM_RECORD) {
            appdep_converter_feed(cv, &r);
            n++;
        } else if (ret == APPDEP_STREAM_SKIP) {
            fprintf(stderr, "appdep-analyze: %s: offset %zu: %s, skipped "
                    "%zu bytes\n", path, off, why, used);
        } else {
            break;
        }
        off += used;
    }
    return n;
}

/* "vm[/program][:port]" */
static bool parse_app(const char *spec, char **vm, char **comm,
                      uint16_t *port)
{
    g_autofree char *s = g_strdup(spec);
    char *colon = strrchr(s, ':'), *slash;

    *port = 0;
    if (colon) {
        char *end;
        unsigned long p = strtoul(colon + 1, &end, 10);

        if (*end || !p || p > 65535) {
            return false;
        }
        *port = p;
        *colon = '\0';
    }
    slash = strchr(s, '/');
    *comm = slash ? g_strdup(slash + 1) : NULL;
    if (slash) {
        *slash = '\0';
    }
    *vm = g_strdup(s);
    return **vm != '\0';
}

int main(int argc, char **argv)
{
    g_autofree char *app = NULL, *dot = NULL;
    g_autofree char *vm = NULL, *comm = NULL;
    gboolean json = FALSE;
    gint ntraj = 1;
    uint16_t port = 0;
    g_autoptr(GError) err = NULL;
    g_autoptr(GOptionContext) ctx = NULL;
    g_autoptr(GArray) msgs = g_array_new(FALSE, FALSE, sizeof(AppdepMessage));
    g_autoptr(GString) out = g_string_new(NULL);
    GOptionEntry entries[] = {
        { "app", 'a', 0, G_OPTION_ARG_STRING, &app,
          "Application whose requests to follow: VM[/PROGRAM][:PORT] "
          "(default: every root request)", "APP" },
        { "trajectories", 't', 0, G_OPTION_ARG_INT, &ntraj,
          "How many trajectories to print (default 1, 0: none)", "N" },
        { "dot", 'd', 0, G_OPTION_ARG_FILENAME, &dot,
          "Also write the dependency map as Graphviz DOT to FILE", "FILE" },
        { "json", 'j', 0, G_OPTION_ARG_NONE, &json,
          "Print JSON ({\"map\": ..., \"trajectories\": [...]}) instead "
          "of text", NULL },
        { NULL }
    };
    AppdepConverter *cv;
    AppdepExchanges *x;
    AppdepConvStats st;
    GArray *edges;
    g_autoptr(GArray) roots = NULL;
    long total = 0;
    int i;
    guint k;

    ctx = g_option_context_new("RECORDS...");
    g_option_context_set_summary(ctx,
        "Convert appdep per-thread records into inter-thread messages and\n"
        "print the dependency map (per application: VM + program +\n"
        "listening port, with calls, bytes and latency per edge) and the\n"
        "trajectories of requests (nested exchanges with time periods).");
    g_option_context_add_main_entries(ctx, entries, NULL);
    if (!g_option_context_parse(ctx, &argc, &argv, &err)) {
        fprintf(stderr, "appdep-analyze: %s (try --help)\n", err->message);
        return 2;
    }
    if (argc < 2) {
        fprintf(stderr, "appdep-analyze: give record files (try --help)\n");
        return 2;
    }
    if (app && !parse_app(app, &vm, &comm, &port)) {
        fprintf(stderr, "appdep-analyze: --app wants VM[/PROGRAM][:PORT], "
                "not '%s'\n", app);
        return 2;
    }

    cv = appdep_converter_new(collect, msgs);
    for (i = 1; i < argc; i++) {
        long n = feed_file(cv, argv[i]);

        if (n < 0) {
            appdep_converter_free(cv);
            return 1;
        }
        total += n;
    }
    appdep_converter_flush(cv, true);
    appdep_converter_stats(cv, &st);
    appdep_converter_free(cv);

    x = appdep_exchanges_new((AppdepMessage *)msgs->data, msgs->len);
    edges = appdep_map_build(x, 0, UINT64_MAX);
    roots = appdep_trajectory_roots(x, vm, comm, port);

    if (json) {
        g_string_append(out, "{\"map\":");
        appdep_map_to_json(edges, out);
        g_string_append(out, ",\"trajectories\":[");
    } else {
        g_string_append_printf(out, "%ld records -> %u messages, %zu "
                               "exchanges\n\ndependency map:\n", total,
                               msgs->len, appdep_exchanges_len(x));
        appdep_map_to_text(edges, out);
    }
    for (k = 0; k < roots->len && (int)k < ntraj; k++) {
        AppdepTrajNode *t = appdep_trajectory_build(
            x, g_array_index(roots, guint, k));

        if (json) {
            if (k) {
                g_string_append_c(out, ',');
            }
            appdep_trajectory_to_json(t, out);
        } else {
            g_string_append_printf(out, "\ntrajectory %u of %u:\n", k + 1,
                                   roots->len);
            appdep_trajectory_to_text(t, out);
        }
        appdep_traj_node_free(t);
    }
    if (json) {
        g_string_append(out, "]}\n");
    } else if (app && !roots->len) {
        g_string_append_printf(out, "\nno request to %s\n", app);
    }
    fputs(out->str, stdout);

    if (dot) {
        g_autoptr(GString) d = g_string_new(NULL);

        appdep_map_to_dot(edges, d);
        if (!g_file_set_contents(dot, d->str, d->len, &err)) {
            fprintf(stderr, "appdep-analyze: %s\n", err->message);
            g_array_free(edges, TRUE);
            appdep_exchanges_free(x);
            return 1;
        }
    }
    g_array_free(edges, TRUE);
    appdep_exchanges_free(x);
    return 0;
}
