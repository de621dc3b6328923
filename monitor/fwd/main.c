/*
 * appdep-fwd: the forward daemon, one per physical host.
 *
 *   appdep-fwd --config FILE
 *
 * It listens on one unix socket per VM for QEMU's record stream
 * (records.c), batches the records into BATCH frames (batch.c) and ships
 * them to the APM server over TCP (uplink.c); it executes the server's
 * COMMAND frames against the VMs' QMP sockets and tracks their inspection
 * state for the HELLO inventory (commands.c).  fwd.h says how the files
 * depend on each other.
 *
 * On SIGTERM/SIGINT the daemon stops reading records, closes the open
 * batch, waits up to APPDEP_FWD_EXIT_WAIT_MS for the server's ACKs, then
 * writes every unacknowledged batch that is only in memory to the spool
 * so the next start replays it.  A second signal exits at once.  SIGUSR1
 * logs a status line, as does a timer every status-interval seconds.
 *
 * Copyright (c) 2026 appdep authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include <glib-unix.h>
#include <inttypes.h>
#include <signal.h>
#include "fwd.h"

static void fwd_status(Fwd *f, const char *why)
{
    uint64_t unsent = 0;
    GList *l;

    for (l = f->unsent; l; l = l->next) {
        unsent++;
    }
    appdep_log(APPDEP_LOG_INFO,
               "status (%s): server=%s next-batch=%" PRIu64 " queue=%u "
               "batches/%" PRIu64 " bytes unsent=%" PRIu64 " spool=%u files/%"
               PRIu64 " of %" PRIu64 " bytes records: in=%" PRIu64 " acked=%"
               PRIu64 " spooled=%" PRIu64 " dropped=%" PRIu64 " (batches %"
               PRIu64 ") garbage=%" PRIu64 " events/%" PRIu64 " bytes "
               "commands=%" PRIu64, why, fwd_connected(f) ? "up" : "down",
               f->next_batch, f->queue.length, f->queue_bytes, unsent,
               appdep_spool_files(f->spool), appdep_spool_bytes(f->spool),
               f->spool_max, f->records_in, f->records_acked,
               f->records_spooled, f->records_dropped, f->batches_dropped,
               f->garbage_events, f->garbage_bytes, f->commands);
}

static gboolean fwd_tick_cb(gpointer opaque)
{
    Fwd *f = opaque;
    gint64 now = g_get_monotonic_time();

    /* sent batches the server never acknowledges: it is stuck */
    if (fwd_connected(f) && f->queue.head && f->unsent != f->queue.head &&
        now - f->last_progress > APPDEP_FWD_ACK_TIMEOUT_MS * 1000LL) {
        fwd_server_drop(f, "no ACK for %d ms", APPDEP_FWD_ACK_TIMEOUT_MS);
    }
    if (f->status_s && now >= f->next_status) {
        f->next_status = now + f->status_s * G_USEC_PER_SEC;
        fwd_status(f, "periodic");
    }
    return G_SOURCE_CONTINUE;
}

static gboolean fwd_exit_timer_cb(gpointer opaque)
{
    Fwd *f = opaque;

    f->exit_timer = 0;
    appdep_log(APPDEP_LOG_WARN,
               "shutdown: %u batches still unacknowledged after %d ms",
               f->queue.length, APPDEP_FWD_EXIT_WAIT_MS);
    g_main_loop_quit(f->loop);
    return G_SOURCE_REMOVE;
}

static gboolean fwd_term_cb(gpointer opaque)
{
    Fwd *f = opaque;
    guint i;

    if (f->exiting) {
        g_main_loop_quit(f->loop);
        return G_SOURCE_CONTINUE;
    }
    appdep_log(APPDEP_LOG_INFO,
               "shutting down: closing record streams, flushing batches");
    f->exiting = true;
    fwd_clear_timer(&f->reconnect);
    if (f->connecting) {
        g_cancellable_cancel(f->connecting);
        g_clear_object(&f->connecting);
    }
    for (i = 0; i < f->vms->len; i++) {
        fwd_vm_stop_records(f->vms->pdata[i]);
    }
    if (fwd_seal(f) > 0) {
        fwd_pump(f);
    }
    if (fwd_connected(f) && !g_queue_is_empty(&f->queue)) {
        f->exit_timer = g_timeout_add(APPDEP_FWD_EXIT_WAIT_MS,
                                      fwd_exit_timer_cb, f);
    } else {
        g_main_loop_quit(f->loop);
    }
    return G_SOURCE_CONTINUE;
}

static gboolean fwd_usr1_cb(gpointer opaque)
{
    fwd_status(opaque, "SIGUSR1");
    return G_SOURCE_CONTINUE;
}

static void fwd_free(Fwd *f)
{
    if (f->vms) {
        g_ptr_array_free(f->vms, TRUE);
    }
    fwd_server_close(f);
    g_queue_clear_full(&f->queue, (GDestroyNotify)fwd_batch_free);
    fwd_clear_timer(&f->batch_timer);
    fwd_clear_timer(&f->reconnect);
    fwd_clear_timer(&f->exit_timer);
    fwd_clear_timer(&f->tick);
    g_clear_object(&f->connecting);
    g_clear_object(&f->client);
    appdep_spool_free(f->spool);
    if (f->loop) {
        g_main_loop_unref(f->loop);
    }
    g_free(f->open);
    g_free(f->server);
    g_free(f->host);
    g_free(f->spool_dir);
    g_free(f->last_connect_err);
}

int main(int argc, char **argv)
{
    g_autoptr(GOptionContext) ctx = NULL;
    g_autoptr(GError) err = NULL;
    g_autoptr(GString) why = g_string_new(NULL);
    g_autofree char *config = NULL;
    g_autofree char *summary = NULL;
    GOptionEntry entries[] = {
        { "config", 'c', 0, G_OPTION_ARG_FILENAME, &config,
          "Configuration file (GKeyFile INI)", "FILE" },
        { NULL }
    };
    Fwd fwd = { 0 }, *f = &fwd;
    unsigned repaired = 0;
    guint i;
    int ret;

    appdep_log_init(FWD_NAME, APPDEP_LOG_INFO);
    ctx = g_option_context_new(NULL);
    summary = g_strdup_printf(
        "Forward appdep records from the local QEMUs to the APM server.\n"
        "\n"
        "The configuration file has one [fwd] group and one [vm NAME] group\n"
        "per VM:\n"
        "  [fwd]\n"
        "  server=HOST:PORT         APM server (port %d if omitted)\n"
        "  host=NAME                this physical host's name\n"
        "  spool-dir=DIR            batches kept here while the server is away\n"
        "  spool-max-bytes=N        spool bound (%llu)\n"
        "  queue-max-bytes=N        in-memory unacknowledged batches (%llu)\n"
        "  batch-records=N          records per batch, at most %d (%d)\n"
        "  batch-ms=N               longest wait before a batch is sent (%d)\n"
        "  status-interval=S        status line every S seconds, 0: off (%d)\n"
        "  [vm NAME]\n"
        "  qmp=PATH                 QEMU's QMP unix socket (QEMU listens)\n"
        "  records=PATH             record socket this daemon listens on\n"
        "  addresses=A;B            the VM's IP addresses (at most %d)\n"
        "\n"
        "SIGTERM/SIGINT flush and exit; SIGUSR1 logs a status line.",
        APPDEP_FWD_DEFAULT_PORT, APPDEP_FWD_DEFAULT_SPOOL_MAX,
        APPDEP_FWD_DEFAULT_QUEUE_MAX, APPDEP_FRAME_MAX_RECORDS,
        APPDEP_FWD_DEFAULT_BATCH_RECORDS, APPDEP_FWD_DEFAULT_BATCH_MS,
        APPDEP_FWD_DEFAULT_STATUS_S, APPDEP_FRAME_MAX_ADDRS);
    g_option_context_set_summary(ctx, summary);
    g_option_context_add_main_entries(ctx, entries, NULL);
    if (!g_option_context_parse(ctx, &argc, &argv, &err)) {
        appdep_log(APPDEP_LOG_ERROR, "%s (try --help)", err->message);
        return 1;
    }
    if (!config || argc != 1) {
        appdep_log(APPDEP_LOG_ERROR, "give --config FILE (try --help)");
        return 1;
    }
    signal(SIGPIPE, SIG_IGN);

    f->vms = g_ptr_array_new_with_free_func((GDestroyNotify)fwd_vm_free);
    g_queue_init(&f->queue);
    g_queue_init(&f->ctrl);
    if (fwd_load_config(f, config, why) < 0) {
        appdep_log(APPDEP_LOG_ERROR, "config %s: %s", config, why->str);
        fwd_free(f);
        return 1;
    }
    ret = appdep_spool_open(f->spool_dir, f->spool_max, &f->spool,
                            &f->next_batch, &repaired);
    if (repaired) {
        appdep_log(APPDEP_LOG_WARN,
                   "spool: %u damaged files repaired; last: %s", repaired,
                   appdep_spool_error(f->spool));
    }
    if (ret < 0) {
        appdep_log(APPDEP_LOG_ERROR, "spool: %s",
                   appdep_spool_error(f->spool));
        fwd_free(f);
        return 1;
    }
    f->open = g_malloc(appdep_frame_batch_len(f->batch_records));
    f->loop = g_main_loop_new(NULL, FALSE);
    for (i = 0; i < f->vms->len; i++) {
        FwdVm *vm = f->vms->pdata[i];

        if (fwd_vm_listen(vm, &err) < 0) {
            appdep_log(APPDEP_LOG_ERROR, "vm %s: records=%s: %s", vm->name,
                       vm->rec_path, err->message);
            fwd_free(f);
            return 1;
        }
        fwd_vm_start_qmp(vm);
    }
    fwd_uplink_start(f, fwd_command);
    f->tick = g_timeout_add(APPDEP_FWD_TICK_MS, fwd_tick_cb, f);
    f->next_status = g_get_monotonic_time() + f->status_s * G_USEC_PER_SEC;
    g_unix_signal_add(SIGTERM, fwd_term_cb, f);
    g_unix_signal_add(SIGINT, fwd_term_cb, f);
    g_unix_signal_add(SIGUSR1, fwd_usr1_cb, f);

    appdep_log(APPDEP_LOG_INFO, "started: host %s, %u VMs, server %s, "
               "spool %s (%" PRIu64 " bytes, next batch %" PRIu64 ")",
               f->host, f->vms->len, f->server, f->spool_dir,
               appdep_spool_bytes(f->spool), f->next_batch);
    g_main_loop_run(f->loop);

    fwd_spool_queue(f);
    fwd_status(f, "exit");
    fwd_free(f);
    return 0;
}
