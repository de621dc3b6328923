/*
 * appdep-server: the APM server.
 *
 *   appdep-server --db DIR [--listen ADDR:PORT] [--http ADDR:PORT]
 *                 [--retention SECONDS]
 *
 * Ingests per-thread records from forward daemons (net.c), commits them
 * to LMDB before acknowledging, converts them into inter-thread messages
 * (convert.c) committed in batches every second, and answers the HTTP
 * JSON API (api/): inventory, inspect on/off, learning, trajectories
 * and dependency maps.  One GLib main loop; one LMDB writer.
 *
 * Copyright (c) 2026 appdep authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include <errno.h>
#include <glib-unix.h>
#include <stdio.h>
#include "log.h"
#include "server.h"

static void collect(const AppdepMessage *m, void *opaque)
{
    g_array_append_val(((AppdepServer *)opaque)->pending, *m);
}

/* Commit the messages the converter finished.  Main loop. */
static void commit_messages(AppdepServer *srv, bool all)
{
    int rc;

    appdep_converter_flush(srv->conv, all);
    if (!srv->pending->len) {
        return;
    }
    rc = appdep_store_put_batch(srv->store,
                                (AppdepMessage *)srv->pending->data,
                                srv->pending->len);
    if (rc < 0) {
        appdep_log(APPDEP_LOG_ERROR, "cannot store %u messages: %s",
                   srv->pending->len, appdep_store_strerror(rc));
        if (srv->pending->len < APPDEP_SERVER_MAX_PENDING) {
            return;         /* keep them and try again next time */
        }
        appdep_log(APPDEP_LOG_ERROR, "%u messages dropped (more than %d "
                   "waiting)", srv->pending->len, APPDEP_SERVER_MAX_PENDING);
        srv->dropped += srv->pending->len;
    } else {
        srv->messages += srv->pending->len - rc;
    }
    g_array_set_size(srv->pending, 0);
}

static gboolean on_flush(gpointer opaque)
{
    commit_messages(opaque, false);
    return G_SOURCE_CONTINUE;
}

static gboolean on_maintenance(gpointer opaque)
{
    AppdepServer *srv = opaque;
    int dead = 0, rc;

    rc = appdep_store_expire(srv->store, appdep_now_ns());
    if (rc < 0) {
        appdep_log(APPDEP_LOG_ERROR, "expiry: %s", appdep_store_strerror(rc));
    }
    appdep_store_reader_check(srv->store, &dead);
    return G_SOURCE_CONTINUE;
}

static gboolean on_signal(gpointer opaque)
{
    g_main_loop_quit(opaque);
    return G_SOURCE_REMOVE;
}

static void command_free(gpointer p)
{
    g_free(p);
}

/*
 * --export-records: write the stored per-thread records of @db as a
 * record stream (appdep-wire.h) to @path, then exit.  LMDB lets this run
 * beside a live server.
 */
static int export_records(AppdepStore *store, const char *path)
{
    g_autoptr(GArray) recs = g_array_new(FALSE, FALSE,
                                         sizeof(AppdepThreadRecord));
    g_autoptr(GByteArray) out = g_byte_array_new();
    g_autoptr(GError) err = NULL;
    guint i;
    int rc;

    rc = appdep_store_records_range(store, 0, UINT64_MAX, recs, 0);
    if (rc < 0) {
        appdep_log(APPDEP_LOG_ERROR, "%s", appdep_store_strerror(rc));
        return 1;
    }
    g_byte_array_set_size(out, recs->len * APPDEP_WIRE_THREAD_LEN);
    for (i = 0; i < recs->len; i++) {
        appdep_wire_encode_thread(&g_array_index(recs, AppdepThreadRecord,
                                                 i),
                                  out->data + i * APPDEP_WIRE_THREAD_LEN);
    }
    if (!g_file_set_contents(path, (char *)out->data, out->len, &err)) {
        appdep_log(APPDEP_LOG_ERROR, "%s", err->message);
        return 1;
    }
    appdep_log(APPDEP_LOG_INFO, "%u records exported to %s%s", recs->len,
               path, rc ? " (corrupt items skipped)" : "");
    return 0;
}

int main(int argc, char **argv)
{
    g_autofree char *db = NULL, *listen = NULL, *http = NULL;
    g_autofree char *export_path = NULL;
    gint64 retention = 0, map_mb = 0;
    g_autoptr(GError) err = NULL;
    g_autoptr(GOptionContext) ctx = NULL;
    GOptionEntry entries[] = {
        { "db", 'd', 0, G_OPTION_ARG_FILENAME, &db,
          "LMDB directory (created if needed)", "DIR" },
        { "listen", 'l', 0, G_OPTION_ARG_STRING, &listen,
          "Address for forward daemons (default "
          APPDEP_SERVER_LISTEN_DEFAULT ")",
          "ADDR:PORT" },
        { "http", 'H', 0, G_OPTION_ARG_STRING, &http,
          "Address of the HTTP API (default " APPDEP_API_LISTEN_DEFAULT ")",
          "ADDR:PORT" },
        { "retention", 'r', 0, G_OPTION_ARG_INT64, &retention,
          "Delete messages older than SECONDS (default: keep)", "SECONDS" },
        { "map-size", 0, 0, G_OPTION_ARG_INT64, &map_mb,
          "Initial LMDB map size in MiB (it grows when full)", "MIB" },
        { "export-records", 0, 0, G_OPTION_ARG_FILENAME, &export_path,
          "Write the stored per-thread records to FILE (a record stream "
          "for appdep-dump / appdep-analyze) and exit", "FILE" },
        { NULL }
    };
    AppdepStoreOptions opt = { 0 };
    AppdepServer srv = { 0 };
    GMainLoop *loop;
    int rc;

    appdep_log_init("appdep-server", APPDEP_LOG_INFO);
    ctx = g_option_context_new(NULL);
    g_option_context_set_summary(ctx,
        "The appdep APM server: ingests per-thread records from forward\n"
        "daemons, stores them in LMDB, converts them into inter-thread\n"
        "records and serves trajectories and dependency maps over HTTP\n"
        "(see docs/api.md; the CLI is appdepctl).");
    g_option_context_add_main_entries(ctx, entries, NULL);
    if (!g_option_context_parse(ctx, &argc, &argv, &err)) {
        appdep_log(APPDEP_LOG_ERROR, "%s (try --help)", err->message);
        return 2;
    }
    if (!db || argc != 1 || retention < 0 || map_mb < 0) {
        appdep_log(APPDEP_LOG_ERROR, "--db DIR is required; --retention and "
                   "--map-size must be positive (try --help)");
        return 2;
    }
    opt.retention_s = retention;
    opt.map_size = (uint64_t)map_mb << 20;
    rc = appdep_store_open(&srv.store, db, &opt);
    if (rc) {
        appdep_log(APPDEP_LOG_ERROR, "%s: %s", db, appdep_store_strerror(rc));
        return 1;
    }
    if (export_path) {
        rc = export_records(srv.store, export_path);
        appdep_store_close(srv.store);
        return rc;
    }
    srv.inventory = &appdep_net_inventory;
    srv.inventory_opaque = &srv;
    srv.pending = g_array_new(FALSE, FALSE, sizeof(AppdepMessage));
    srv.conv = appdep_converter_new(collect, &srv);
    srv.vms = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, g_free);
    srv.commands = g_hash_table_new_full(g_int64_hash, g_int64_equal, NULL,
                                         command_free);
    if (appdep_net_listen(&srv, listen ? listen : APPDEP_SERVER_LISTEN_DEFAULT,
                          &err) < 0 ||
        appdep_api_start(&srv, http ? http : APPDEP_API_LISTEN_DEFAULT,
                         &err) < 0) {
        appdep_log(APPDEP_LOG_ERROR, "%s", err->message);
        appdep_store_close(srv.store);
        return 1;
    }
    appdep_log(APPDEP_LOG_INFO, "daemons on %s, API on http://%s, db %s",
               listen ? listen : APPDEP_SERVER_LISTEN_DEFAULT,
               http ? http : APPDEP_API_LISTEN_DEFAULT, db);

    loop = g_main_loop_new(NULL, FALSE);
    g_timeout_add(APPDEP_SERVER_FLUSH_MS, on_flush, &srv);
    g_timeout_add_seconds(APPDEP_SERVER_MAINT_S, on_maintenance, &srv);
    g_unix_signal_add(SIGINT, on_signal, loop);
    g_unix_signal_add(SIGTERM, on_signal, loop);
    g_main_loop_run(loop);

    appdep_api_stop(&srv);
    commit_messages(&srv, true);
    appdep_log(APPDEP_LOG_INFO, "exiting: %" G_GUINT64_FORMAT " records, %"
               G_GUINT64_FORMAT " messages committed this run",
               srv.records, srv.messages);
    appdep_converter_free(srv.conv);
    appdep_store_close(srv.store);
    g_main_loop_unref(loop);
    return 0;
}
