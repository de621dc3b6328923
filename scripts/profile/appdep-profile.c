/*
 * appdep-profile: build the per-kernel profile appdep needs to read a
 * Linux guest (symbol addresses and struct member offsets) from the
 * kernel image alone: vmlinuz -> vmlinux -> kallsyms + BTF -> JSON.
 *
 * Copyright (c) 2026 appdep authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <bpf/btf.h>
#include <glib.h>
#include <json-glib/json-glib.h>

#include "btf-offsets.h"
#include "decompress.h"
#include "kallsyms.h"
#include "appdep-profile-keys.h"
#include "profile-limits.h"
#include "vmlinux-elf.h"

#define EXIT_USAGE                      2
#define BANNER_PREFIX                   "Linux version "
#define SYSCALL_ENTRY_SCAN              512     /* bytes of entry_SYSCALL_64 */

typedef struct MemberRef {
    const char *type;
    const char *member;
} MemberRef;

/* The keys QEMU reads (hw/appdep/appdep-profile-keys.h). */
typedef struct SymbolKey {
    const char *name;
    AppdepProfileNeed need;
} SymbolKey;

typedef struct MemberKey {
    MemberRef ref;
    AppdepProfileNeed need;
} MemberKey;

static const SymbolKey symbol_keys[] = {
#define SYMBOL_KEY(name, field, need, use) { name, APPDEP_PROFILE_NEED_##need },
    APPDEP_PROFILE_SYMBOLS(SYMBOL_KEY)
#undef SYMBOL_KEY
};

static const MemberKey member_keys[] = {
#define MEMBER_KEY(type, member, field, need, use) \
    { { type, member }, APPDEP_PROFILE_NEED_##need },
    APPDEP_PROFILE_OFFSETS(MEMBER_KEY)
#undef MEMBER_KEY
};

static const char description[] =
    "Reads an x86_64 Linux kernel image (a bzImage vmlinuz compressed with\n"
    "gzip, xz, lzma, lz4 or zstd, or an uncompressed vmlinux ELF) and writes\n"
    "the profile appdep needs to inspect a guest running that exact kernel\n"
    "build. Symbols come from the kernel's embedded kallsyms tables (a\n"
    "Debian System.map is a stub), struct offsets from its .BTF section\n"
    "(CONFIG_DEBUG_INFO_BTF=y is required).\n"
    "\n"
    "Output (JSON):\n"
    "  {\n"
    "    \"appdep_profile\": 1,               format version\n"
    "    \"banner\": \"Linux version ...\",     linux_banner, no newline\n"
    "    \"release\": \"6.1.0-56-amd64\",       third word of the banner\n"
    "    \"build_id\": \"hex\",                 GNU build-id of vmlinux\n"
    "    \"current_layout\": \"current_task\",  or \"pcpu_hot\" (6.2+):\n"
    "                                       where the per-cpu current\n"
    "                                       task pointer lives\n"
    "    \"symbols\": { \"tcp_sendmsg\": \"0xffffffff8188bf40\", ... },\n"
    "                 link-time addresses as hex strings; per-cpu\n"
    "                 variables (current_task, pcpu_hot, this_cpu_off)\n"
    "                 are offsets into the per-cpu area\n"
    "    \"offsets\": { \"task_struct.pid\": 2416, ... }\n"
    "                 byte offsets of members in their struct; sock_common\n"
    "                 sits at offset 0 of struct sock\n"
    "  }\n"
    "\n"
    "Exit status: 0 on success, 1 if the image cannot be profiled (the\n"
    "message says why), 2 on a usage error.";

typedef struct ProfileCtx {
    const char *path;
    bool verbose;
    AppdepVmlinux *vm;
    AppdepKallsyms *ks;
    struct btf *btf;
    JsonBuilder *jb;
} ProfileCtx;

static void G_GNUC_PRINTF(3, 0) say(const ProfileCtx *c, const char *tag,
                                     const char *fmt, va_list ap)
{
    g_autofree char *msg = g_strdup_vprintf(fmt, ap);

    fprintf(stderr, "appdep-profile: %s: %s%s\n", c->path, tag, msg);
}

/* The profile cannot be made: why.  The caller returns the failure. */
static void G_GNUC_PRINTF(2, 3) fail(const ProfileCtx *c, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    say(c, "", fmt, ap);
    va_end(ap);
}

/* The profile is made without something optional: what. */
static void G_GNUC_PRINTF(2, 3) warn(const ProfileCtx *c, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    say(c, "warning: ", fmt, ap);
    va_end(ap);
}

static void json_add_symbol(ProfileCtx *c, const AppdepKsym *s)
{
    g_autofree char *hex = g_strdup_printf("0x%" G_GINT64_MODIFIER "x",
                                           (guint64)s->addr);

    json_builder_set_member_name(c->jb, s->name);
    json_builder_add_string_value(c->jb, hex);
}

static bool json_add_member(ProfileCtx *c, const MemberRef *m, bool required)
{
    g_autofree char *key = g_strdup_printf("%s.%s", m->type, m->member);
    uint32_t off;
    int ret;

    ret = appdep_btf_member_offset(c->btf, m->type, m->member, &off);
    if (ret < 0) {
        if (required || ret != -ENOENT) {
            const char *why = ret == -ENOENT ? "no such struct or member"
                                             : g_strerror(-ret);

            if (required) {
                fail(c, "BTF: cannot get the offset of %s: %s", key, why);
                return false;
            }
            warn(c, "BTF: cannot get the offset of %s: %s", key, why);
            return true;
        }
        return true;
    }
    json_builder_set_member_name(c->jb, key);
    json_builder_add_int_value(c->jb, off);
    if (c->verbose) {
        fprintf(stderr, "  %-30s 0x%x\n", key, off);
    }
    return true;
}

static bool find_kallsyms(ProfileCtx *c, const uint8_t *elf, size_t elf_len)
{
    const uint8_t *rodata;
    size_t rodata_len;
    uint64_t rodata_addr;
    uint64_t base = 0;
    int ret = -ENOENT;

    /* The tables live in .rodata; scanning just it is faster and safer. */
    if (appdep_vmlinux_section(c->vm, ".rodata", &rodata, &rodata_len,
                               &rodata_addr) == 0 &&
        rodata_addr % APPDEP_KALLSYMS_ALIGN == 0) {
        ret = appdep_kallsyms_parse(rodata, rodata_len, &c->ks);
        base = rodata_addr;
    }
    if (ret < 0) {
        /* File offsets of a vmlinux keep the link alignment. */
        ret = appdep_kallsyms_parse(elf, elf_len, &c->ks);
        base = 0;
    }
    if (ret < 0) {
        fail(c, "%s", ret == -EINVAL
             ? "the kallsyms tables are corrupt"
             : "kallsyms tables not found (kernel built without "
               "CONFIG_KALLSYMS, or an unknown table layout)");
        return false;
    }
    if (c->verbose) {
        const AppdepKallsyms *ks = c->ks;

        fprintf(stderr, "kallsyms: %zu symbols, order %s, %s, "
                "seqs_of_names %s, relative_base 0x%" G_GINT64_MODIFIER "x\n"
                "  %s 0x%" G_GINT64_MODIFIER "x: offsets 0x%zx "
                "relative_base 0x%zx num_syms 0x%zx names 0x%zx "
                "markers 0x%zx token_table 0x%zx token_index 0x%zx\n",
                ks->num_syms,
                ks->order == APPDEP_KALLSYMS_OFFSETS_FIRST ? "offsets-first"
                                                          : "offsets-last",
                ks->absolute_percpu ? "absolute percpu" : "all relative",
                ks->has_seqs_of_names ? "before token_table" : "n/a",
                (guint64)ks->relative_base,
                base ? ".rodata" : "file", (guint64)base,
                ks->offsets_off, ks->relative_base_off, ks->num_syms_off,
                ks->names_off, ks->markers_off, ks->token_table_off,
                ks->token_index_off);
    }
    return true;
}

/* Read linux_banner, checking that kallsyms pointed at the right string. */
static char *read_banner(ProfileCtx *c, const AppdepKsym *sym)
{
    g_autofree char *banner = NULL;
    size_t n;

    if (appdep_vmlinux_string(c->vm, sym->addr, APPDEP_PROFILE_MAX_BANNER_LEN,
                              &banner) < 0 ||
        !g_str_has_prefix(banner, BANNER_PREFIX)) {
        fail(c, "self-check failed: linux_banner (0x%" G_GINT64_MODIFIER "x) "
             "does not point to \"" BANNER_PREFIX "...\" in the image: "
             "the kallsyms tables were misread", (guint64)sym->addr);
        return NULL;
    }
    n = strlen(banner);
    while (n > 0 && (banner[n - 1] == '\n' || banner[n - 1] == '\r')) {
        banner[--n] = '\0';
    }
    for (size_t i = 0; i < n; i++) {
        if (!g_ascii_isprint(banner[i])) {
            fail(c, "linux_banner holds a non-printable character");
            return NULL;
        }
    }
    return g_steal_pointer(&banner);
}

/*
 * Add the syscall layer's symbols that the kernel has (the return site
 * aside: see find_syscall_return_site()).  True when QEMU would find all
 * the symbols and offsets the layer needs: only then may the profile
 * offer the layer, since QEMU refuses a profile that offers it without
 * them.
 */
static bool json_add_syscall_symbols(ProfileCtx *c)
{
    bool ok = true;

    for (size_t i = 0; i < G_N_ELEMENTS(symbol_keys); i++) {
        const char *name = symbol_keys[i].name;
        const AppdepKsym *s;

        if (symbol_keys[i].need != APPDEP_PROFILE_NEED_SYSCALL ||
            !strcmp(name, APPDEP_PROFILE_SYSCALL_MARK)) {
            continue;
        }
        s = appdep_kallsyms_lookup(c->ks, name);
        if (!s) {
            ok = false;
            continue;
        }
        if (appdep_kallsyms_count_addrs(c->ks, s->name) > 1) {
            warn(c, "%s is ambiguous, left out", s->name);
            ok = false;
            continue;
        }
        json_add_symbol(c, s);
    }
    for (size_t i = 0; i < G_N_ELEMENTS(member_keys); i++) {
        const MemberKey *k = &member_keys[i];
        uint32_t off;

        if (k->need == APPDEP_PROFILE_NEED_SYSCALL &&
            appdep_btf_member_offset(c->btf, k->ref.type, k->ref.member,
                                     &off) < 0) {
            ok = false;
        }
    }
    return ok;
}

/*
 * The syscall-layer provider hooks the instruction after entry_SYSCALL_64's
 * "call do_syscall_64": there the syscall has returned, RSP points to its
 * pt_regs and GS is still the kernel's.  Find that call (opcode e8, rel32)
 * in the first bytes of entry_SYSCALL_64.  Returns 0 when not found.
 */
static uint64_t find_syscall_return_site(ProfileCtx *c)
{
    const AppdepKsym *entry = appdep_kallsyms_lookup(c->ks, "entry_SYSCALL_64");
    const AppdepKsym *target = appdep_kallsyms_lookup(c->ks, "do_syscall_64");
    const uint8_t *text;

    if (!entry || !target ||
        appdep_kallsyms_count_addrs(c->ks, "do_syscall_64") > 1 ||
        appdep_vmlinux_at(c->vm, entry->addr, SYSCALL_ENTRY_SCAN, &text) < 0) {
        return 0;
    }
    for (size_t i = 0; i + 5 <= SYSCALL_ENTRY_SCAN; i++) {
        int32_t rel;

        if (text[i] != 0xe8) {
            continue;
        }
        memcpy(&rel, text + i + 1, sizeof(rel));
        rel = GINT32_FROM_LE(rel);
        if (entry->addr + i + 5 + (int64_t)rel == target->addr) {
            return entry->addr + i + 5;
        }
    }
    return 0;
}

static bool build_profile(ProfileCtx *c, const uint8_t *elf, size_t elf_len)
{
    g_autofree char *banner = NULL;
    g_autofree char *build_id = NULL;
    g_auto(GStrv) words = NULL;
    const AppdepKsym *cur;
    const char *layout;
    const uint8_t *btf_data;
    size_t btf_len;
    uint32_t sk_common_off;
    uint64_t return_site;
    bool syscall_ok;
    int ret;

    ret = appdep_vmlinux_open(elf, elf_len, &c->vm);
    if (ret < 0) {
        fail(c, "the decompressed kernel is not a valid x86_64 ELF file");
        return false;
    }
    if (!find_kallsyms(c, elf, elf_len)) {
        return false;
    }
    for (size_t i = 0; i < G_N_ELEMENTS(symbol_keys); i++) {
        const char *name = symbol_keys[i].name;

        if (symbol_keys[i].need != APPDEP_PROFILE_NEED_ALWAYS) {
            continue;
        }
        if (!appdep_kallsyms_lookup(c->ks, name)) {
            fail(c, "required symbol %s not found in kallsyms", name);
            return false;
        }
        /* A hook on the wrong one of two same-named statics fails silently. */
        if (appdep_kallsyms_count_addrs(c->ks, name) > 1) {
            fail(c, "required symbol %s is ambiguous: several addresses "
                 "carry that name", name);
            return false;
        }
    }
    cur = appdep_kallsyms_lookup(c->ks, "current_task");
    layout = "current_task";
    if (!cur) {
        cur = appdep_kallsyms_lookup(c->ks, "pcpu_hot");
        layout = "pcpu_hot";
    }
    if (!cur) {
        fail(c, "neither current_task (<= 6.1) nor pcpu_hot (6.2+) found "
             "in kallsyms");
        return false;
    }
    if (appdep_kallsyms_count_addrs(c->ks, cur->name) > 1) {
        fail(c, "required symbol %s is ambiguous: several addresses "
             "carry that name", cur->name);
        return false;
    }
    banner = read_banner(c, appdep_kallsyms_lookup(c->ks, "linux_banner"));
    if (!banner) {
        return false;
    }
    words = g_strsplit(banner, " ", 4);
    if (g_strv_length(words) < 3 || !words[2][0]) {
        fail(c, "cannot read the release from the banner \"%s\"", banner);
        return false;
    }
    ret = appdep_vmlinux_build_id(c->vm, &build_id);
    if (ret < 0) {
        fail(c, "no GNU build-id note in the kernel");
        return false;
    }

    ret = appdep_vmlinux_section(c->vm, ".BTF", &btf_data, &btf_len, NULL);
    if (ret == -ENOENT) {
        fail(c, "the kernel has no .BTF section: the kernel was built "
             "without CONFIG_DEBUG_INFO_BTF");
        return false;
    }
    if (ret == 0) {
        ret = appdep_btf_load(btf_data, btf_len, &c->btf);
    }
    if (ret < 0) {
        fail(c, "cannot parse the .BTF section: %s", g_strerror(-ret));
        return false;
    }
    /* Offsets of sock_common members are used as offsets into a sock. */
    ret = appdep_btf_member_offset(c->btf, "sock", "__sk_common",
                                   &sk_common_off);
    if (ret < 0 || sk_common_off != 0) {
        fail(c, "BTF: struct sock does not start with its sock_common");
        return false;
    }

    c->jb = json_builder_new();
    json_builder_begin_object(c->jb);
    json_builder_set_member_name(c->jb, "appdep_profile");
    json_builder_add_int_value(c->jb, APPDEP_PROFILE_FORMAT);
    json_builder_set_member_name(c->jb, "banner");
    json_builder_add_string_value(c->jb, banner);
    json_builder_set_member_name(c->jb, "release");
    json_builder_add_string_value(c->jb, words[2]);
    json_builder_set_member_name(c->jb, "build_id");
    json_builder_add_string_value(c->jb, build_id);
    json_builder_set_member_name(c->jb, "current_layout");
    json_builder_add_string_value(c->jb, layout);

    json_builder_set_member_name(c->jb, "symbols");
    json_builder_begin_object(c->jb);
    for (size_t i = 0; i < G_N_ELEMENTS(symbol_keys); i++) {
        if (symbol_keys[i].need == APPDEP_PROFILE_NEED_ALWAYS) {
            json_add_symbol(c, appdep_kallsyms_lookup(c->ks,
                                                      symbol_keys[i].name));
        }
    }
    json_add_symbol(c, cur);
    syscall_ok = json_add_syscall_symbols(c);
    return_site = find_syscall_return_site(c);
    if (return_site && syscall_ok) {
        g_autofree char *hex = g_strdup_printf("0x%" G_GINT64_MODIFIER "x",
                                               (guint64)return_site);

        json_builder_set_member_name(c->jb, APPDEP_PROFILE_SYSCALL_MARK);
        json_builder_add_string_value(c->jb, hex);
    } else if (c->verbose) {
        fprintf(stderr, "%s: the syscall layer is unavailable\n",
                !return_site ? "no call to do_syscall_64 in entry_SYSCALL_64"
                             : "a symbol or an offset it needs is missing");
    }
    json_builder_end_object(c->jb);

    if (c->verbose) {
        fprintf(stderr, "offsets:\n");
    }
    json_builder_set_member_name(c->jb, "offsets");
    json_builder_begin_object(c->jb);
    for (size_t i = 0; i < G_N_ELEMENTS(member_keys); i++) {
        const MemberKey *k = &member_keys[i];
        bool required = k->need == APPDEP_PROFILE_NEED_ALWAYS ||
            (k->need == APPDEP_PROFILE_NEED_PCPU_HOT &&
             !strcmp(layout, "pcpu_hot"));

        if (k->need == APPDEP_PROFILE_NEED_PCPU_HOT && !required) {
            continue;
        }
        if (!json_add_member(c, &k->ref, required)) {
            return false;
        }
    }
    json_builder_end_object(c->jb);
    json_builder_end_object(c->jb);
    return true;
}

static bool write_profile(ProfileCtx *c, const char *out_path)
{
    g_autoptr(JsonGenerator) gen = json_generator_new();
    g_autoptr(JsonNode) root = json_builder_get_root(c->jb);
    g_autoptr(GError) err = NULL;
    g_autofree char *text = NULL;
    g_autofree char *data = NULL;

    json_generator_set_pretty(gen, TRUE);
    json_generator_set_indent(gen, 2);
    json_generator_set_root(gen, root);
    text = json_generator_to_data(gen, NULL);
    data = g_strconcat(text, "\n", NULL);
    if (!out_path || !strcmp(out_path, "-")) {
        return fputs(data, stdout) >= 0 && fflush(stdout) == 0;
    }
    if (!g_file_set_contents(out_path, data, -1, &err)) {
        fprintf(stderr, "appdep-profile: %s\n", err->message);
        return false;
    }
    return true;
}

int main(int argc, char **argv)
{
    g_autofree char *out_path = NULL;
    gboolean verbose = FALSE;
    GOptionEntry entries[] = {
        { "output", 'o', 0, G_OPTION_ARG_FILENAME, &out_path,
          "Write the profile to FILE (default: standard output)", "FILE" },
        { "verbose", 'v', 0, G_OPTION_ARG_NONE, &verbose,
          "Report on standard error where the tables were found", NULL },
        { NULL }
    };
    g_autoptr(GOptionContext) octx =
        g_option_context_new("VMLINUZ|VMLINUX - build an appdep kernel "
                             "profile");
    g_autoptr(GError) err = NULL;
    g_autoptr(GMappedFile) mf = NULL;
    g_autofree uint8_t *elf = NULL;
    ProfileCtx c = { 0 };
    AppdepCompression comp = APPDEP_COMP_UNKNOWN;
    const char *detail = NULL;
    size_t elf_len = 0;
    size_t img_len;
    bool ok;
    int ret;

    g_option_context_add_main_entries(octx, entries, NULL);
    g_option_context_set_description(octx, description);
    if (!g_option_context_parse(octx, &argc, &argv, &err)) {
        fprintf(stderr, "appdep-profile: %s (see --help)\n", err->message);
        return EXIT_USAGE;
    }
    if (argc != 2) {
        fprintf(stderr, "appdep-profile: expected one kernel image "
                "(see --help)\n");
        return EXIT_USAGE;
    }
    c.path = argv[1];
    c.verbose = verbose;

    /* Writable means a private copy-on-write mapping: libelf may not care,
     * but nothing of ours can then alter the file. */
    mf = g_mapped_file_new(c.path, TRUE, &err);
    if (!mf) {
        fprintf(stderr, "appdep-profile: %s\n", err->message);
        return EXIT_FAILURE;
    }
    img_len = g_mapped_file_get_length(mf);
    if (img_len > APPDEP_PROFILE_MAX_IMAGE_SIZE) {
        fail(&c, "file larger than %u MiB: not a kernel image",
             APPDEP_PROFILE_MAX_IMAGE_SIZE / APPDEP_MIB);
        return EXIT_FAILURE;
    }
    ret = appdep_kernel_extract((const uint8_t *)g_mapped_file_get_contents(mf),
                                img_len, APPDEP_PROFILE_MAX_VMLINUX_SIZE,
                                &elf, &elf_len, &comp, &detail);
    if (ret < 0) {
        fail(&c, "%s", detail ? detail : g_strerror(-ret));
        return EXIT_FAILURE;
    }
    if (c.verbose) {
        fprintf(stderr, "image: %zu bytes, compression %s, vmlinux %zu "
                "bytes\n", img_len, appdep_compression_name(comp), elf_len);
    }

    ok = build_profile(&c, elf, elf_len) && write_profile(&c, out_path);

    if (c.jb) {
        g_object_unref(c.jb);
    }
    btf__free(c.btf);
    appdep_kallsyms_free(c.ks);
    appdep_vmlinux_free(c.vm);
    return ok ? EXIT_SUCCESS : EXIT_FAILURE;
}
