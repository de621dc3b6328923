/*
 * appdep: kernel profiles
 *
 * A profile describes one guest kernel build: its banner, the link-time
 * addresses of the symbols appdep needs and the struct member offsets
 * it reads.  scripts/profile/appdep-profile writes it from a vmlinuz;
 * the format is documented in docs/profile.md, and the keys are listed
 * once, for both, in appdep-profile-keys.h.  The file is untrusted
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
#include "hw/appdep/appdep-profile-keys.h"

/* The keys of appdep-profile-keys.h, with where each goes. */
typedef struct AppdepProfileKey {
    const char *name;
    size_t field;               /* in AppdepProfile */
    AppdepProfileNeed need;
} AppdepProfileKey;

static const AppdepProfileKey profile_symbols[] = {
#define APPDEP_SYMBOL(name, field, need, use) \
    { name, offsetof(AppdepProfile, field), APPDEP_PROFILE_NEED_##need },
    APPDEP_PROFILE_SYMBOLS(APPDEP_SYMBOL)
#undef APPDEP_SYMBOL
};

static const AppdepProfileKey profile_offsets[] = {
#define APPDEP_OFFSET(type, member, field, need, use) \
    { type "." member, offsetof(AppdepProfile, field), \
      APPDEP_PROFILE_NEED_##need },
    APPDEP_PROFILE_OFFSETS(APPDEP_OFFSET)
#undef APPDEP_OFFSET
};

const char *appdep_hook_symbol(const AppdepProfile *p, AppdepHookKind kind)
{
    size_t field = offsetof(AppdepProfile, sym_hook) +
                   kind * sizeof(p->sym_hook[0]);
    unsigned i;

    for (i = 0; i < ARRAY_SIZE(profile_symbols); i++) {
        if (profile_symbols[i].field == field) {
            return profile_symbols[i].name;
        }
    }
    return "?";
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
 * Whether this profile must have keys of @need.  The syscall layer's are
 * optional (older profiles lack them), but when its mark is there they
 * must all be, and be valid.
 */
static bool profile_wants(const AppdepProfile *p, QDict *syms,
                          AppdepProfileNeed need)
{
    switch (need) {
    case APPDEP_PROFILE_NEED_ALWAYS:
        return true;
    case APPDEP_PROFILE_NEED_CURRENT_TASK:
        return !p->pcpu_hot;
    case APPDEP_PROFILE_NEED_PCPU_HOT:
        return p->pcpu_hot;
    case APPDEP_PROFILE_NEED_SYSCALL:
        return qdict_haskey(syms, APPDEP_PROFILE_SYSCALL_MARK);
    case APPDEP_PROFILE_NEED_OPTIONAL:
        break;
    }
    return false;
}

/*
 * The keys of the lists that this profile must have, or may have: those
 * of the syscall layer when @syscall, else the others.
 */
static bool get_keys(AppdepProfile *p, QDict *syms, QDict *offs,
                     bool syscall, Error **errp)
{
    unsigned i;

    for (i = 0; i < ARRAY_SIZE(profile_symbols); i++) {
        const AppdepProfileKey *k = &profile_symbols[i];

        if ((k->need == APPDEP_PROFILE_NEED_SYSCALL) == syscall &&
            profile_wants(p, syms, k->need) &&
            !get_symbol(syms, k->name,
                        (uint64_t *)((char *)p + k->field), errp)) {
            return false;
        }
    }
    for (i = 0; i < ARRAY_SIZE(profile_offsets); i++) {
        const AppdepProfileKey *k = &profile_offsets[i];
        uint32_t *val = (uint32_t *)((char *)p + k->field);

        if ((k->need == APPDEP_PROFILE_NEED_SYSCALL) == syscall &&
            profile_wants(p, syms, k->need) &&
            !get_offset(offs, k->name, val, errp)) {
            return false;
        }
        /* file.f_count: used when present, by the syscall layer only */
        if (k->need == APPDEP_PROFILE_NEED_OPTIONAL && syscall &&
            qdict_haskey(offs, k->name)) {
            if (!get_offset(offs, k->name, val, errp)) {
                return false;
            }
            p->has_f_count = true;
        }
    }
    return true;
}

static bool appdep_profile_parse_root(AppdepProfile *p, QDict *root,
                                      Error **errp)
{
    QDict *syms, *offs;
    const char *banner, *release, *layout;
    int64_t format;

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
    if (!get_keys(p, syms, offs, false, errp)) {
        return false;
    }
    p->has_syscall = profile_wants(p, syms, APPDEP_PROFILE_NEED_SYSCALL);
    if (p->has_syscall && !get_keys(p, syms, offs, true, errp)) {
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
