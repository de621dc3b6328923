/*
 * appdep-fwd: the configuration file.
 *
 * A GKeyFile with one [fwd] group and one [vm NAME] group per VM (see
 * --help).  Every key is checked against its bounds (fwd-limits.h and
 * the frame limits the HELLO must fit), unknown groups and keys are
 * rejected, and an error names the group and key at fault.  Nothing is
 * opened or started here.
 *
 * Main thread, before the main loop runs.
 *
 * Copyright (c) 2026 appdep authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include <errno.h>
#include <inttypes.h>
#include "fwd.h"

static int cfg_u64(GKeyFile *kf, const char *group, const char *key,
                   uint64_t def, uint64_t min, uint64_t max, uint64_t *out,
                   GString *why)
{
    g_autofree char *s = g_key_file_get_string(kf, group, key, NULL);
    guint64 v;

    if (!s) {
        *out = def;
        return 0;
    }
    g_strstrip(s);
    if (!g_ascii_string_to_unsigned(s, 10, min, max, &v, NULL)) {
        g_string_printf(why, "[%s] %s: '%s' is not a number from %" PRIu64
                        " to %" PRIu64, group, key, s, min, max);
        return -EINVAL;
    }
    *out = v;
    return 0;
}

static int cfg_str(GKeyFile *kf, const char *group, const char *key,
                   bool required, char **out, GString *why)
{
    g_autofree char *s = g_key_file_get_string(kf, group, key, NULL);

    if (s) {
        g_strstrip(s);
    }
    if (!s || !*s) {
        if (required) {
            g_string_printf(why, "[%s] %s: missing", group, key);
            return -EINVAL;
        }
        return 0;
    }
    *out = g_steal_pointer(&s);
    return 0;
}

/* Every key of @group must be one of @known (NULL-terminated). */
static int cfg_check_keys(GKeyFile *kf, const char *group,
                          const char *const *known, GString *why)
{
    g_auto(GStrv) keys = g_key_file_get_keys(kf, group, NULL, NULL);
    guint i;

    for (i = 0; keys && keys[i]; i++) {
        if (!g_strv_contains(known, keys[i])) {
            g_string_printf(why, "[%s] %s: unknown key", group, keys[i]);
            return -EINVAL;
        }
    }
    return 0;
}

static int cfg_addresses(GKeyFile *kf, const char *group, AppdepFrameVm *inv,
                         GString *why)
{
    g_auto(GStrv) list = g_key_file_get_string_list(kf, group, "addresses",
                                                    NULL, NULL);
    guint i;

    for (i = 0; list && list[i]; i++) {
        g_autoptr(GInetAddress) a = NULL;
        char *s = g_strstrip(list[i]);
        AppdepFrameAddr *slot;

        if (!*s) {
            continue;
        }
        if (inv->naddr == APPDEP_FRAME_MAX_ADDRS) {
            g_string_printf(why, "[%s] addresses: more than %d", group,
                            APPDEP_FRAME_MAX_ADDRS);
            return -EINVAL;
        }
        a = g_inet_address_new_from_string(s);
        if (!a) {
            g_string_printf(why, "[%s] addresses: '%s' is not an IPv4 or "
                            "IPv6 address", group, s);
            return -EINVAL;
        }
        slot = &inv->addrs[inv->naddr++];
        slot->family = g_inet_address_get_family(a) == G_SOCKET_FAMILY_IPV6 ?
                       APPDEP_FAMILY_IPV6 : APPDEP_FAMILY_IPV4;
        memcpy(slot->addr, g_inet_address_to_bytes(a),
               g_inet_address_get_native_size(a));
    }
    return 0;
}

void fwd_vm_free(FwdVm *vm)
{
    if (!vm) {
        return;
    }
    appdep_qmp_free(vm->qmp);
    if (vm->clients) {
        g_ptr_array_free(vm->clients, TRUE);
    }
    fwd_vm_close_listener(vm);
    g_free(vm->name);
    g_free(vm->qmp_path);
    g_free(vm->rec_path);
    g_free(vm->qmp_last_why);
    g_free(vm);
}

static const char *const fwd_keys[] = {
    "server", "host", "spool-dir", "spool-max-bytes", "queue-max-bytes",
    "batch-records", "batch-ms", "status-interval", NULL
};
static const char *const vm_keys[] = { "qmp", "records", "addresses", NULL };

int fwd_load_config(Fwd *f, const char *path, GString *why)
{
    g_autoptr(GKeyFile) kf = g_key_file_new();
    g_autoptr(GError) err = NULL;
    g_auto(GStrv) groups = NULL;
    uint64_t v;
    guint i;
    int ret;

    if (!g_key_file_load_from_file(kf, path, G_KEY_FILE_NONE, &err)) {
        g_string_printf(why, "%s", err->message);
        return -EINVAL;
    }
    if (!g_key_file_has_group(kf, "fwd")) {
        g_string_printf(why, "[fwd]: missing group");
        return -EINVAL;
    }
    if ((ret = cfg_check_keys(kf, "fwd", fwd_keys, why)) < 0 ||
        (ret = cfg_str(kf, "fwd", "server", true, &f->server, why)) < 0 ||
        (ret = cfg_str(kf, "fwd", "host", true, &f->host, why)) < 0 ||
        (ret = cfg_str(kf, "fwd", "spool-dir", true, &f->spool_dir,
                       why)) < 0 ||
        (ret = cfg_u64(kf, "fwd", "spool-max-bytes",
                       APPDEP_FWD_DEFAULT_SPOOL_MAX, 0, G_MAXINT64,
                       &f->spool_max, why)) < 0 ||
        (ret = cfg_u64(kf, "fwd", "batch-records",
                       APPDEP_FWD_DEFAULT_BATCH_RECORDS, 1,
                       APPDEP_FRAME_MAX_RECORDS, &v, why)) < 0) {
        return ret;
    }
    f->batch_records = v;
    if ((ret = cfg_u64(kf, "fwd", "batch-ms", APPDEP_FWD_DEFAULT_BATCH_MS, 1,
                       APPDEP_FWD_MAX_BATCH_MS, &v, why)) < 0) {
        return ret;
    }
    f->batch_ms = v;
    if ((ret = cfg_u64(kf, "fwd", "status-interval",
                       APPDEP_FWD_DEFAULT_STATUS_S, 0,
                       APPDEP_FWD_MAX_STATUS_S, &v, why)) < 0) {
        return ret;
    }
    f->status_s = v;
    /* the queue always holds at least one full batch */
    if ((ret = cfg_u64(kf, "fwd", "queue-max-bytes",
                       APPDEP_FWD_DEFAULT_QUEUE_MAX,
                       appdep_frame_batch_len(f->batch_records), G_MAXINT64,
                       &f->queue_max, why)) < 0) {
        return ret;
    }
    if (strlen(f->host) > APPDEP_FRAME_HOST_LEN) {
        g_string_printf(why, "[fwd] host: longer than %d bytes",
                        APPDEP_FRAME_HOST_LEN);
        return -EINVAL;
    }

    groups = g_key_file_get_groups(kf, NULL);
    for (i = 0; groups[i]; i++) {
        const char *g = groups[i];
        FwdVm *vm;

        if (!strcmp(g, "fwd")) {
            continue;
        }
        if (!g_str_has_prefix(g, "vm ") || !g[3]) {
            g_string_printf(why, "[%s]: unknown group (expected [fwd] or "
                            "[vm NAME])", g);
            return -EINVAL;
        }
        if (strlen(g + 3) > APPDEP_WIRE_VM_LEN) {
            g_string_printf(why, "[%s]: VM name longer than %d bytes", g,
                            APPDEP_WIRE_VM_LEN);
            return -EINVAL;
        }
        if (f->vms->len == APPDEP_FRAME_MAX_VMS) {
            g_string_printf(why, "[%s]: more than %d VMs", g,
                            APPDEP_FRAME_MAX_VMS);
            return -EINVAL;
        }
        vm = g_new0(FwdVm, 1);
        vm->fwd = f;
        vm->name = g_strdup(g + 3);
        vm->clients = g_ptr_array_new_with_free_func(
            (GDestroyNotify)fwd_client_free);
        g_strlcpy(vm->inv.vm, vm->name, sizeof(vm->inv.vm));
        g_ptr_array_add(f->vms, vm);
        if ((ret = cfg_check_keys(kf, g, vm_keys, why)) < 0 ||
            (ret = cfg_str(kf, g, "qmp", true, &vm->qmp_path, why)) < 0 ||
            (ret = cfg_str(kf, g, "records", true, &vm->rec_path, why)) < 0 ||
            (ret = cfg_addresses(kf, g, &vm->inv, why)) < 0) {
            return ret;
        }
    }
    if (!f->vms->len) {
        g_string_printf(why, "no [vm NAME] group");
        return -EINVAL;
    }
    return 0;
}
