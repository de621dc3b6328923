/*
 * appdep-dump: print an appdep record stream as JSON lines.
 *
 *   appdep-dump FILE|-             read a file (or stdin)
 *   appdep-dump --listen PATH      listen on a unix socket for QEMU
 *
 * One JSON object per record on stdout; malformed input is reported on
 * stderr with its byte offset and skipped to the next valid header.
 *
 * Copyright (c) 2026 appdep authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include "log.h"
#include "stream.h"

#define DUMP_BUF_SIZE (64 * 1024)

static guint64 max_records;
static FILE *save_file;          /* --save: valid records, re-encoded */
static guint64 n_records;
static guint64 n_errors;

/* Dump one stream; returns false once max_records is reached. */
static bool dump_fd(int fd, const char *name)
{
    g_autofree uint8_t *buf = g_malloc(DUMP_BUF_SIZE);
    g_autoptr(GString) line = g_string_new(NULL);
    size_t have = 0;
    guint64 offset = 0;         /* stream offset of buf[0] */
    bool eof = false;

    while (!eof || have) {
        AppdepThreadRecord rec;
        const char *why;
        size_t used;
        int ret;

        if (!eof && have < DUMP_BUF_SIZE) {
            ssize_t r = read(fd, buf + have, DUMP_BUF_SIZE - have);

            if (r < 0 && errno == EINTR) {
                continue;
            }
            if (r < 0) {
                appdep_log(APPDEP_LOG_ERROR, "%s: read: %s", name,
                           g_strerror(errno));
                return true;
            }
            eof = r == 0;
            have += r;
        }
        for (;;) {
            ret = appdep_stream_next(buf, have, eof, &rec, &used, &why);
            if (ret == APPDEP_STREAM_NEED_MORE) {
                break;
            }
            if (ret == APPDEP_STREAM_RECORD) {
                if (save_file) {
                    uint8_t enc[APPDEP_WIRE_THREAD_LEN];

                    appdep_wire_encode_thread(&rec, enc);
                    fwrite(enc, 1, sizeof(enc), save_file);
                }
                g_string_truncate(line, 0);
                appdep_record_to_json(&rec, line);
                g_string_append_c(line, '\n');
                fwrite(line->str, 1, line->len, stdout);
                if (save_file) {
                    fflush(save_file);
                }
                if (++n_records == max_records) {
                    fflush(stdout);
                    return false;
                }
            } else {
                n_errors++;
                appdep_log(APPDEP_LOG_INFO, "%s: offset %" G_GUINT64_FORMAT
                           ": %s, skipped %zu bytes", name, offset, why, used);
            }
            memmove(buf, buf + used, have - used);
            have -= used;
            offset += used;
            if (!have) {
                break;
            }
        }
        fflush(stdout);
    }
    return true;
}

static int listen_unix(const char *path)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    int fd;

    if (strlen(path) >= sizeof(sa.sun_path)) {
        appdep_log(APPDEP_LOG_ERROR, "socket path too long: %s", path);
        return -1;
    }
    strcpy(sa.sun_path, path);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        appdep_log(APPDEP_LOG_ERROR, "socket: %s", g_strerror(errno));
        return -1;
    }
    unlink(path);
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
        listen(fd, 4) < 0) {
        int err = errno;

        appdep_log(APPDEP_LOG_ERROR, "%s: %s", path, g_strerror(err));
        close(fd);
        return -1;
    }
    return fd;
}

int main(int argc, char **argv)
{
    g_autofree char *listen_path = NULL;
    g_autofree char *save_path = NULL;
    gboolean once = FALSE;
    gint64 count = 0;
    g_autoptr(GError) err = NULL;
    g_autoptr(GOptionContext) ctx = NULL;
    GOptionEntry entries[] = {
        { "listen", 'l', 0, G_OPTION_ARG_FILENAME, &listen_path,
          "Listen on the unix socket PATH (QEMU's chardev connects to it) "
          "and dump each connection in turn", "PATH" },
        { "once", '1', 0, G_OPTION_ARG_NONE, &once,
          "With --listen: exit after the first connection ends", NULL },
        { "count", 'n', 0, G_OPTION_ARG_INT64, &count,
          "Exit after N records", "N" },
        { "save", 's', 0, G_OPTION_ARG_FILENAME, &save_path,
          "Also append every valid record, in the binary format, to FILE",
          "FILE" },
        { NULL }
    };
    int ret = 0;

    appdep_log_init("appdep-dump", APPDEP_LOG_INFO);
    ctx = g_option_context_new("[FILE|-]");
    g_option_context_set_summary(ctx,
        "Print an appdep record stream as JSON lines, one record per line,\n"
        "with the keys time_ns, vm, op (send|recv|close), pid, tid, comm,\n"
        "family (ipv4|ipv6), saddr, sport, daddr, dport (local side first),\n"
        "bytes and seq.  Malformed input is reported on stderr with its\n"
        "byte offset and skipped to the next valid record header.\n"
        "Exit status: 0, or 2 when malformed input was seen.");
    g_option_context_add_main_entries(ctx, entries, NULL);
    if (!g_option_context_parse(ctx, &argc, &argv, &err)) {
        appdep_log(APPDEP_LOG_ERROR, "%s (try --help)", err->message);
        return 1;
    }
    if (count < 0) {
        appdep_log(APPDEP_LOG_ERROR, "--count must be positive");
        return 1;
    }
    max_records = count;
    if (save_path) {
        save_file = fopen(save_path, "ab");
        if (!save_file) {
            appdep_log(APPDEP_LOG_ERROR, "%s: %s", save_path,
                       g_strerror(errno));
            return 1;
        }
    }
    signal(SIGPIPE, SIG_IGN);

    if (listen_path) {
        int lfd;

        if (argc != 1) {
            appdep_log(APPDEP_LOG_ERROR, "--listen takes no FILE");
            return 1;
        }
        lfd = listen_unix(listen_path);
        if (lfd < 0) {
            return 1;
        }
        for (;;) {
            int fd = accept(lfd, NULL, NULL);
            bool more;

            if (fd < 0) {
                if (errno == EINTR) {
                    continue;
                }
                appdep_log(APPDEP_LOG_ERROR, "accept: %s",
                           g_strerror(errno));
                ret = 1;
                break;
            }
            more = dump_fd(fd, listen_path);
            close(fd);
            if (!more || once) {
                break;
            }
        }
        close(lfd);
        unlink(listen_path);
    } else {
        const char *path = argc == 2 ? argv[1] : NULL;
        int fd;

        if (argc != 2) {
            appdep_log(APPDEP_LOG_ERROR, "give one FILE, '-', or --listen "
                       "PATH (try --help)");
            return 1;
        }
        fd = strcmp(path, "-") ? open(path, O_RDONLY | O_CLOEXEC) : 0;
        if (fd < 0) {
            appdep_log(APPDEP_LOG_ERROR, "%s: %s", path, g_strerror(errno));
            return 1;
        }
        dump_fd(fd, path);
        if (fd) {
            close(fd);
        }
    }
    return ret ? ret : (n_errors ? 2 : 0);
}
