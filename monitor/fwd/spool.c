/*
 * appdep-fwd spool: BATCH frames kept on disk while the server is away.
 *
 * Copyright (c) 2026 appdep authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sys/stat.h>
#include <unistd.h>
#include "frame.h"
#include "spool.h"

#define SPOOL_SUFFIX        ".spool"
#define SPOOL_DIGITS        20
#define SPOOL_STATE         "next-batch"

typedef struct SpoolFile {
    char *path;
    uint64_t first;             /* first and last batch in the file */
    uint64_t last;
    uint64_t size;
    uint64_t read_off;          /* bytes read back so far */
} SpoolFile;

struct AppdepSpool {
    char *dir;
    uint64_t max_bytes;
    uint64_t bytes;
    uint64_t reserved;          /* persisted in SPOOL_STATE */
    GQueue files;               /* SpoolFile, ordered by first batch */
    SpoolFile *current;         /* last appended to, or NULL */
    char *error;
};

static void spool_file_free(SpoolFile *f)
{
    if (f) {
        g_free(f->path);
        g_free(f);
    }
}

static int spool_fail(AppdepSpool *sp, int err, const char *fmt, ...)
    G_GNUC_PRINTF(3, 4);

/* Record the text of a failure; returns @err (negative errno). */
static int spool_fail(AppdepSpool *sp, int err, const char *fmt, ...)
{
    va_list ap;

    g_free(sp->error);
    va_start(ap, fmt);
    sp->error = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    return err;
}

const char *appdep_spool_error(AppdepSpool *sp)
{
    return sp->error ? sp->error : "";
}

static ssize_t pread_full(int fd, uint8_t *buf, size_t len, off_t off)
{
    size_t done = 0;

    while (done < len) {
        ssize_t r = pread(fd, buf + done, len - done, off + done);

        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r < 0) {
            return -errno;
        }
        if (r == 0) {
            break;
        }
        done += r;
    }
    return done;
}

static int write_full(int fd, const uint8_t *buf, size_t len)
{
    size_t done = 0;

    while (done < len) {
        ssize_t r = write(fd, buf + done, len - done);

        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r < 0) {
            return -errno;
        }
        done += r;
    }
    return 0;
}

/*
 * Read the fixed part of the BATCH frame at @off of @fd (file size
 * @size): its length and batch number.  -EBADMSG if it is not one.
 */
static int read_batch_head(int fd, uint64_t off, uint64_t size,
                           uint32_t *len, uint64_t *batch)
{
    uint8_t head[APPDEP_FRAME_BATCH_FIXED_LEN];
    uint16_t type;
    ssize_t r;

    r = pread_full(fd, head, sizeof(head), off);
    if (r < 0) {
        return r;
    }
    if ((size_t)r < sizeof(head) ||
        appdep_frame_check_header(head, r, &type, len) != APPDEP_WIRE_OK ||
        type != APPDEP_WIRE_BATCH || *len > size - off ||
        appdep_frame_batch_len(appdep_wire_get32(head + 24)) != *len) {
        return -EBADMSG;
    }
    *batch = appdep_wire_get64(head + 16);
    return *batch ? 0 : -EBADMSG;
}

/* Scan one spool file; cut a torn or corrupt tail.  NULL: file removed. */
static SpoolFile *scan_file(AppdepSpool *sp, const char *path,
                            uint64_t min_batch, unsigned *repaired)
{
    g_autofree SpoolFile *f = g_new0(SpoolFile, 1);
    struct stat st;
    uint64_t off = 0;
    int fd, ret = 0;

    fd = open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0 || fstat(fd, &st) < 0) {
        spool_fail(sp, -errno, "%s: %s", path, g_strerror(errno));
        if (fd >= 0) {
            close(fd);
        }
        (*repaired)++;
        return NULL;
    }
    while (off < (uint64_t)st.st_size) {
        uint32_t len;
        uint64_t batch;

        ret = read_batch_head(fd, off, st.st_size, &len, &batch);
        if (ret == 0 && batch <= MAX(f->last, min_batch - 1)) {
            ret = -EBADMSG;     /* out of order: cannot be trusted */
        }
        if (ret < 0) {
            break;
        }
        if (!f->first) {
            f->first = batch;
        }
        f->last = batch;
        off += len;
    }
    if (off < (uint64_t)st.st_size) {
        spool_fail(sp, -EBADMSG, "%s: bad frame at offset %" PRIu64
                   " (%s), cut %" PRIu64 " bytes", path, off,
                   ret == -EBADMSG ? "torn or corrupt" : g_strerror(-ret),
                   (uint64_t)st.st_size - off);
        (*repaired)++;
        if (ftruncate(fd, off) < 0) {
            off = 0;            /* cannot repair: give the file up */
        }
    }
    close(fd);
    if (!off) {
        unlink(path);
        return NULL;
    }
    f->path = g_strdup(path);
    f->size = off;
    return g_steal_pointer(&f);
}

static int name_cmp(gconstpointer a, gconstpointer b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool is_spool_name(const char *name)
{
    size_t i;

    if (strlen(name) != SPOOL_DIGITS + strlen(SPOOL_SUFFIX) ||
        strcmp(name + SPOOL_DIGITS, SPOOL_SUFFIX)) {
        return false;
    }
    for (i = 0; i < SPOOL_DIGITS; i++) {
        if (!g_ascii_isdigit(name[i])) {
            return false;
        }
    }
    return true;
}

static uint64_t read_state(const char *dir)
{
    g_autofree char *path = g_build_filename(dir, SPOOL_STATE, NULL);
    g_autofree char *text = NULL;
    gsize len;
    guint64 v;

    if (!g_file_get_contents(path, &text, &len, NULL) ||
        len > APPDEP_SPOOL_STATE_MAX ||
        !g_ascii_string_to_unsigned(g_strstrip(text), 10, 1, G_MAXUINT64 / 2,
                                    &v, NULL)) {
        return 1;
    }
    return v;
}

int appdep_spool_reserve(AppdepSpool *sp, uint64_t next)
{
    g_autofree char *path = NULL;
    g_autofree char *text = NULL;
    g_autoptr(GError) err = NULL;

    if (next + APPDEP_SPOOL_BATCH_RESERVE / 2 <= sp->reserved) {
        return 0;
    }
    path = g_build_filename(sp->dir, SPOOL_STATE, NULL);
    text = g_strdup_printf("%" PRIu64 "\n", next + APPDEP_SPOOL_BATCH_RESERVE);
    /* g_file_set_contents writes a temporary file and renames it */
    if (!g_file_set_contents(path, text, -1, &err)) {
        return spool_fail(sp, -EIO, "%s", err->message);
    }
    sp->reserved = next + APPDEP_SPOOL_BATCH_RESERVE;
    return 0;
}

int appdep_spool_open(const char *dir, uint64_t max_bytes, AppdepSpool **out,
                      uint64_t *next_batch, unsigned *repaired)
{
    g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func(g_free);
    AppdepSpool *sp = g_new0(AppdepSpool, 1);
    g_autoptr(GDir) d = NULL;
    g_autoptr(GError) err = NULL;
    const char *name;
    uint64_t next;
    guint i;
    int ret;

    sp->dir = g_strdup(dir);
    sp->max_bytes = max_bytes;
    g_queue_init(&sp->files);
    *out = sp;
    *repaired = 0;
    if (g_mkdir_with_parents(dir, 0700) < 0) {
        return spool_fail(sp, -errno, "%s: %s", dir, g_strerror(errno));
    }
    d = g_dir_open(dir, 0, &err);
    if (!d) {
        return spool_fail(sp, -EACCES, "%s", err->message);
    }
    while ((name = g_dir_read_name(d))) {
        if (is_spool_name(name)) {
            g_ptr_array_add(names, g_strdup(name));
        }
    }
    g_ptr_array_sort(names, name_cmp);
    next = read_state(dir);
    for (i = 0; i < names->len; i++) {
        g_autofree char *path = g_build_filename(dir, names->pdata[i], NULL);
        SpoolFile *f = scan_file(sp, path, 1, repaired);
        SpoolFile *prev = g_queue_peek_tail(&sp->files);

        if (f && prev && f->first <= prev->last) {
            /* overlapping files: keep the older, flag the other */
            spool_fail(sp, -EBADMSG, "%s: batches overlap the previous "
                       "file, ignored", path);
            (*repaired)++;
            spool_file_free(f);
            continue;
        }
        if (f) {
            sp->current = f;
            sp->bytes += f->size;
            next = MAX(next, f->last + 1);
            g_queue_push_tail(&sp->files, f);
        }
    }
    *next_batch = next;
    ret = appdep_spool_reserve(sp, next);
    if (ret < 0) {
        return ret;
    }
    return 0;
}

void appdep_spool_free(AppdepSpool *sp)
{
    if (!sp) {
        return;
    }
    g_queue_clear_full(&sp->files, (GDestroyNotify)spool_file_free);
    g_free(sp->dir);
    g_free(sp->error);
    g_free(sp);
}

static gint file_first_cmp(gconstpointer a, gconstpointer b, gpointer unused)
{
    const SpoolFile *x = a, *y = b;

    return x->first < y->first ? -1 : x->first > y->first;
}

int appdep_spool_append(AppdepSpool *sp, const uint8_t *frame, size_t len,
                        uint64_t batch, bool new_file)
{
    SpoolFile *f = new_file ? NULL : sp->current;
    bool fresh = false;
    struct stat st;
    int fd, ret;

    if (len > sp->max_bytes || sp->bytes > sp->max_bytes - len) {
        return spool_fail(sp, -ENOSPC, "spool full (%" PRIu64 " of %" PRIu64
                          " bytes)", sp->bytes, sp->max_bytes);
    }
    if (!f || f->size + len > APPDEP_SPOOL_FILE_MAX || batch <= f->last) {
        g_autofree char *name = g_strdup_printf("%020" PRIu64 SPOOL_SUFFIX,
                                                batch);

        f = g_new0(SpoolFile, 1);
        f->path = g_build_filename(sp->dir, name, NULL);
        f->first = batch;
        fresh = true;
    }
    fd = open(f->path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        ret = spool_fail(sp, -errno, "%s: %s", f->path, g_strerror(errno));
        goto fail;
    }
    if (fresh && fstat(fd, &st) == 0 && st.st_size) {
        close(fd);
        ret = spool_fail(sp, -EEXIST, "%s: exists already", f->path);
        goto fail;
    }
    ret = write_full(fd, frame, len);
    if (ret < 0) {
        spool_fail(sp, ret, "%s: %s", f->path, g_strerror(-ret));
        /* no torn frame may stay behind */
        if (ftruncate(fd, f->size) < 0) {
            /* the scan at the next start cuts it */
        }
        close(fd);
        goto fail;
    }
    close(fd);
    f->size += len;
    f->last = batch;
    sp->bytes += len;
    if (fresh) {
        g_queue_insert_sorted(&sp->files, f, file_first_cmp, NULL);
    }
    sp->current = f;
    return 0;

fail:
    if (fresh) {
        if (!f->size) {
            unlink(f->path);
        }
        spool_file_free(f);
    }
    return ret;
}

static SpoolFile *first_unread(AppdepSpool *sp)
{
    GList *l;

    for (l = sp->files.head; l; l = l->next) {
        SpoolFile *f = l->data;

        if (f->read_off < f->size) {
            return f;
        }
    }
    return NULL;
}

bool appdep_spool_has_unread(AppdepSpool *sp)
{
    return first_unread(sp) != NULL;
}

int appdep_spool_read(AppdepSpool *sp, uint8_t **frame, size_t *len,
                      uint64_t *batch)
{
    SpoolFile *f = first_unread(sp);
    g_autofree uint8_t *buf = NULL;
    uint32_t flen;
    ssize_t r;
    int fd, ret;

    if (!f) {
        return 0;
    }
    fd = open(f->path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        ret = spool_fail(sp, -errno, "%s: %s", f->path, g_strerror(errno));
        f->read_off = f->size;
        return ret;
    }
    ret = read_batch_head(fd, f->read_off, f->size, &flen, batch);
    if (ret == 0) {
        buf = g_malloc(flen);
        r = pread_full(fd, buf, flen, f->read_off);
        ret = r < 0 ? (int)r : (r == flen ? 0 : -EBADMSG);
    }
    close(fd);
    if (ret < 0) {
        spool_fail(sp, ret, "%s: offset %" PRIu64 ": %s; rest skipped",
                   f->path, f->read_off, g_strerror(-ret));
        f->read_off = f->size;
        return ret;
    }
    f->read_off += flen;
    *len = flen;
    *frame = g_steal_pointer(&buf);
    return 1;
}

int appdep_spool_ack(AppdepSpool *sp, uint64_t batch)
{
    SpoolFile *f;
    int ret = 0;

    while ((f = g_queue_peek_head(&sp->files)) &&
           f->read_off == f->size && f->last <= batch) {
        if (unlink(f->path) < 0 && errno != ENOENT) {
            ret = spool_fail(sp, -errno, "%s: %s", f->path,
                             g_strerror(errno));
        }
        sp->bytes -= f->size;
        if (f == sp->current) {
            sp->current = NULL;
        }
        spool_file_free(g_queue_pop_head(&sp->files));
    }
    return ret;
}

uint64_t appdep_spool_bytes(AppdepSpool *sp)
{
    return sp->bytes;
}

unsigned appdep_spool_files(AppdepSpool *sp)
{
    return sp->files.length;
}
