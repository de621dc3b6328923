/*
 * appdep: kernel profiles
 *
 * A profile describes one guest kernel build: its banner, the link-time
 * addresses of the symbols appdep needs and the struct member offsets
 * it reads.  scripts/profile/appdep-profile writes it from a vmlinuz;
 * the format is documented in docs/profile.md.  The file is untrusted
 * input: every field is type- and range-checked here, once, so the hot
 * path can use the values as they are.
 *
 * Copyright (c) 2026 appdep authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qemu/cutils.h"
#include "qobject/qdict.h"
#include "qobject/qjson.h"
#include "qobject/qnum.h"
#include "qobject/qstring.h"
#include "hw/appdep/appdep.h"

#define APPDEP_PROFILE_FORMAT 1

static const char *const hook_symbol[APPDEP_HOOK_COUNT] = {
    [APPDEP_HOOK_KIND_SEND] = "tcp_sendmsg",
    [APPDEP_HOOK_KIND_RECV] = "tcp_cleanup_rbuf",
    [APPDEP_HOOK_KIND_CLOSE] = "tcp_close",
    [APPDEP_HOOK_KIND_SYSCALL_ENTER] = "do_syscall_64",
    [APPDEP_HOOK_KIND_SYSCALL_EXIT] = "syscall_return_site",
};

const char *appdep_hook_symbol(const AppdepProfile *p, AppdepHookKind kind)
{
    return hook_symbol[kind];
}

static bool get_symbol(QDict *syms, const char *name, uint64_t *val,
                       Error **errp)
{
    const char *s = qdict_get_try_str(syms, name);
    const char *end;

    if (!s) {
        error_setg(errp, "profile: symbol '%s' is missing", name);
        return false;
    }
    if (qemu_strtou64(s, &end, 16, val) < 0 || *end) {
        error_setg(errp, "profile: symbol '%s' is not a hex address: '%s'",
                   name, s);
        return false;
    }
    return true;
}

static bool get_offset(QDict *offs, const char *name, uint32_t *val,
                       Error **errp)
{
    QObject *o = qdict_get(offs, name);
    QNum *n = o ? qobject_to(QNum, o) : NULL;
    uint64_t v;

    if (!o) {
        error_setg(errp, "profile: offset '%s' is missing", name);
        return false;
    }
    if (!n || !qnum_get_try_uint(n, &v) || v >= APPDEP_MAX_STRUCT_OFFSET) {
        error_setg(errp, "profile: offset '%s' is not an integer in "
                   "[0, %#x)", name, APPDEP_MAX_STRUCT_OFFSET);
        return false;
    }
    *val = v;
    return true;
}

/*
 * The syscall layer's symbols and offsets: optional (older profiles lack
 * them), but when one is there they must all be, and be valid.
 */
static bool get_syscall_layer(AppdepProfile *p, QDict *syms, QDict *offs,
                              Error **errp)
{
    static const struct {
        const char *name;
        size_t field;
    } off[] = {
        { "task_struct.files", offsetof(AppdepProfile, off_task_files) },
        { "files_struct.fdt", offsetof(AppdepProfile, off_files_fdt) },
        { "fdtable.max_fds", offsetof(AppdepProfile, off_fdt_max_fds) },
        { "fdtable.fd", offsetof(AppdepProfile, off_fdt_fd) },
        { "file.f_op", offsetof(AppdepProfile, off_file_f_op) },
        { "file.private_data",
          offsetof(AppdepProfile, off_file_private_data) },
        { "socket.sk", offsetof(AppdepProfile, off_socket_sk) },
        { "sock.sk_protocol", offsetof(AppdepProfile, off_sk_protocol) },
        { "sock.sk_type", offsetof(AppdepProfile, off_sk_type) },
        { "pt_regs.orig_ax", offsetof(AppdepProfile, off_regs_orig_ax) },
        { "pt_regs.ax", offsetof(AppdepProfile, off_regs_ax) },
        { "pt_regs.di", offsetof(AppdepProfile, off_regs_di) },
        { "pt_regs.si", offsetof(AppdepProfile, off_regs_si) },
        { "pt_regs.dx", offsetof(AppdepProfile, off_regs_dx) },
    };
    unsigned i;

    if (!qdict_haskey(syms, "syscall_return_site")) {
        return true;                /* no syscall layer in this profile */
    }
    if (!get_symbol(syms, "socket_file_ops", &p->sym_socket_file_ops, errp) ||
        !get_symbol(syms, hook_symbol[APPDEP_HOOK_KIND_SYSCALL_ENTER],
                    &p->sym_hook[APPDEP_HOOK_KIND_SYSCALL_ENTER], errp) ||
        !get_symbol(syms, hook_symbol[APPDEP_HOOK_KIND_SYSCALL_EXIT],
                    &p->sym_hook[APPDEP_HOOK_KIND_SYSCALL_EXIT], errp)) {
        return false;
    }
    for (i = 0; i < ARRAY_SIZE(off); i++) {
        if (!get_offset(offs, off[i].name,
                        (uint32_t *)((char *)p + off[i].field), errp)) {
            return false;
        }
    }
    if (qdict_haskey(offs, "file.f_count")) {
        if (!get_offset(offs, "file.f_count", &p->off_file_f_count, errp)) {
            return false;
        }
        p->has_f_count = true;
    }
    p->has_syscall = true;
    return true;
}

static bool appdep_profile_parse_root(AppdepProfile *p, QDict *root,
                                      Error **errp)
{
    QDict *syms, *offs;
    const char *banner, *release, *layout;
    int64_t format;
    unsigned i;

    format = qdict_get_try_int(root, "appdep_profile", -1);
    if (format != APPDEP_PROFILE_FORMAT) {
        error_setg(errp, "profile: 'appdep_profile' must be %d (this QEMU "
                   "reads format %d)", APPDEP_PROFILE_FORMAT,
                   APPDEP_PROFILE_FORMAT);
        return false;
    }
    banner = qdict_get_try_str(root, "banner");
    if (!banner || !g_str_has_prefix(banner, "Linux version ") ||
        strlen(banner) > APPDEP_MAX_BANNER) {
        error_setg(errp, "profile: 'banner' must be a string starting with "
                   "'Linux version ', at most %d bytes", APPDEP_MAX_BANNER);
        return false;
    }
    release = qdict_get_try_str(root, "release");
    layout = qdict_get_try_str(root, "current_layout");
    if (!layout || (strcmp(layout, "current_task") &&
                    strcmp(layout, "pcpu_hot"))) {
        error_setg(errp, "profile: 'current_layout' must be 'current_task' "
                   "or 'pcpu_hot'");
        return false;
    }
    p->pcpu_hot = !strcmp(layout, "pcpu_hot");

    syms = qdict_get_qdict(root, "symbols");
    offs = qdict_get_qdict(root, "offsets");
    if (!syms || !offs) {
        error_setg(errp, "profile: 'symbols' and 'offsets' must be objects");
        return false;
    }
    if (!get_symbol(syms, "entry_SYSCALL_64", &p->sym_entry_syscall_64,
                    errp) ||
        !get_symbol(syms, "linux_banner", &p->sym_linux_banner, errp) ||
        !get_symbol(syms, "page_offset_base", &p->sym_page_offset_base,
                    errp) ||
        !get_symbol(syms, "this_cpu_off", &p->sym_this_cpu_off, errp) ||
        !get_symbol(syms, p->pcpu_hot ? "pcpu_hot" : "current_task",
                    &p->sym_current, errp)) {
        return false;
    }
    for (i = 0; i < APPDEP_FUNCTION_HOOKS; i++) {
        if (!get_symbol(syms, hook_symbol[i], &p->sym_hook[i], errp)) {
            return false;
        }
    }
    if (p->pcpu_hot &&
        !get_offset(offs, "pcpu_hot.current_task", &p->off_pcpu_hot_current,
                    errp)) {
        return false;
    }
    if (!get_offset(offs, "task_struct.pid", &p->off_task_pid, errp) ||
        !get_offset(offs, "task_struct.tgid", &p->off_task_tgid, errp) ||
        !get_offset(offs, "task_struct.comm", &p->off_task_comm, errp) ||
        !get_offset(offs, "sock_common.skc_daddr", &p->off_skc_daddr, errp) ||
        !get_offset(offs, "sock_common.skc_rcv_saddr", &p->off_skc_rcv_saddr,
                    errp) ||
        !get_offset(offs, "sock_common.skc_dport", &p->off_skc_dport, errp) ||
        !get_offset(offs, "sock_common.skc_num", &p->off_skc_num, errp) ||
        !get_offset(offs, "sock_common.skc_family", &p->off_skc_family,
                    errp) ||
        !get_offset(offs, "sock_common.skc_v6_daddr", &p->off_skc_v6_daddr,
                    errp) ||
        !get_offset(offs, "sock_common.skc_v6_rcv_saddr",
                    &p->off_skc_v6_rcv_saddr, errp) ||
        !get_offset(offs, "tcp_sock.write_seq", &p->off_write_seq, errp) ||
        !get_offset(offs, "tcp_sock.copied_seq", &p->off_copied_seq, errp) ||
        !get_syscall_layer(p, syms, offs, errp)) {
        return false;
    }
    p->banner = g_strdup(banner);
    p->release = g_strdup(release ? release : "");
    return true;
}

bool appdep_profile_parse(AppdepProfile *p, const char *json, size_t len,
                          Error **errp)
{
    g_autofree char *text = g_strndup(json, len);
    QObject *obj;
    QDict *root;
    bool ok;

    memset(p, 0, sizeof(*p));
    if (strlen(text) != len) {
        error_setg(errp, "profile: contains a NUL byte");
        return false;
    }
    obj = qobject_from_json(text, errp);
    if (!obj) {
        error_prepend(errp, "profile: ");
        return false;
    }
    root = qobject_to(QDict, obj);
    if (!root) {
        error_setg(errp, "profile: not a JSON object");
        qobject_unref(obj);
        return false;
    }
    ok = appdep_profile_parse_root(p, root, errp);
    qobject_unref(obj);
    return ok;
}

bool appdep_profile_load(AppdepProfile *p, const char *path, Error **errp)
{
    g_autofree char *text = NULL;
    g_autoptr(GError) gerr = NULL;
    gsize len;

    if (!g_file_get_contents(path, &text, &len, &gerr)) {
        error_setg(errp, "cannot read profile: %s", gerr->message);
        return false;
    }
    if (len > APPDEP_MAX_PROFILE_SIZE) {
        error_setg(errp, "profile %s: larger than %d bytes", path,
                   APPDEP_MAX_PROFILE_SIZE);
        return false;
    }
    if (!appdep_profile_parse(p, text, len, errp)) {
        error_prepend(errp, "%s: ", path);
        return false;
    }
    return true;
}

void appdep_profile_clear(AppdepProfile *p)
{
    g_free(p->banner);
    g_free(p->release);
    memset(p, 0, sizeof(*p));
}
