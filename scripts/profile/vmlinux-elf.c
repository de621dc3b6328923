/*
 * appdep-profile: read the pieces of a vmlinux ELF file the profile needs.
 *
 * libelf parses the headers (elf_memory() never writes to a native-endian
 * image); section and segment contents are addressed directly in the
 * buffer, each range checked against the file size first.
 *
 * Copyright (c) 2026 appdep authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include <gelf.h>
#include <libelf.h>

#include "profile-limits.h"
#include "vmlinux-elf.h"

#define GNU_NOTE_NAME       "GNU"
#define NOTE_ALIGN          4

struct AppdepVmlinux {
    Elf *elf;
    const uint8_t *buf;
    size_t len;
    size_t shstrndx;
};

static bool range_ok(size_t len, uint64_t off, uint64_t n)
{
    return off <= len && n <= len - off;
}

int appdep_vmlinux_open(const uint8_t *buf, size_t len, AppdepVmlinux **out)
{
    g_autoptr(AppdepVmlinux) v = g_new0(AppdepVmlinux, 1);
    GElf_Ehdr ehdr;

    if (elf_version(EV_CURRENT) == EV_NONE) {
        return -ENOEXEC;
    }
    v->buf = buf;
    v->len = len;
    /* elf_memory() takes a non-const pointer but only reads native data. */
    v->elf = elf_memory((char *)buf, len);
    if (!v->elf || elf_kind(v->elf) != ELF_K_ELF ||
        gelf_getclass(v->elf) != ELFCLASS64 ||
        !gelf_getehdr(v->elf, &ehdr) || ehdr.e_machine != EM_X86_64 ||
        ehdr.e_ident[EI_DATA] != ELFDATA2LSB ||
        elf_getshdrstrndx(v->elf, &v->shstrndx) != 0) {
        return -ENOEXEC;
    }
    *out = g_steal_pointer(&v);
    return 0;
}

int appdep_vmlinux_section(const AppdepVmlinux *v, const char *name,
                           const uint8_t **data, size_t *size,
                           uint64_t *addr)
{
    Elf_Scn *scn = NULL;

    while ((scn = elf_nextscn(v->elf, scn)) != NULL) {
        GElf_Shdr sh;
        const char *sname;

        if (!gelf_getshdr(scn, &sh)) {
            return -ENOEXEC;
        }
        sname = elf_strptr(v->elf, v->shstrndx, sh.sh_name);
        if (!sname || strcmp(sname, name) != 0) {
            continue;
        }
        if (sh.sh_type == SHT_NOBITS) {
            return -ENOENT;
        }
        if (!range_ok(v->len, sh.sh_offset, sh.sh_size)) {
            return -ENOEXEC;
        }
        *data = v->buf + sh.sh_offset;
        *size = sh.sh_size;
        if (addr) {
            *addr = sh.sh_addr;
        }
        return 0;
    }
    return -ENOENT;
}

/* File bytes at @vaddr and how many follow it in the same PT_LOAD segment. */
static int vmlinux_map(const AppdepVmlinux *v, uint64_t vaddr,
                       const uint8_t **p, size_t *avail)
{
    size_t phnum;

    if (elf_getphdrnum(v->elf, &phnum) != 0) {
        return -ENOEXEC;
    }
    for (size_t i = 0; i < phnum; i++) {
        GElf_Phdr ph;
        uint64_t rel;

        if (!gelf_getphdr(v->elf, i, &ph)) {
            return -ENOEXEC;
        }
        if (ph.p_type != PT_LOAD || vaddr < ph.p_vaddr) {
            continue;
        }
        rel = vaddr - ph.p_vaddr;
        if (rel >= ph.p_filesz) {
            continue;
        }
        if (!range_ok(v->len, ph.p_offset, ph.p_filesz)) {
            return -ENOEXEC;
        }
        *p = v->buf + ph.p_offset + rel;
        *avail = ph.p_filesz - rel;
        return 0;
    }
    return -ENOENT;
}

int appdep_vmlinux_at(const AppdepVmlinux *v, uint64_t vaddr, size_t n,
                      const uint8_t **p)
{
    size_t avail;
    int ret = vmlinux_map(v, vaddr, p, &avail);

    if (ret == 0 && n > avail) {
        ret = -ENOENT;
    }
    return ret;
}

int appdep_vmlinux_string(const AppdepVmlinux *v, uint64_t vaddr,
                          size_t max_len, char **out)
{
    const uint8_t *p;
    const uint8_t *nul;
    size_t avail;
    int ret = vmlinux_map(v, vaddr, &p, &avail);

    if (ret < 0) {
        return ret;
    }
    nul = memchr(p, 0, MIN(avail, max_len + 1));
    if (!nul) {
        return -EINVAL;
    }
    *out = g_strndup((const char *)p, nul - p);
    return 0;
}

/* Note fields are 32-bit: rounding up in size_t cannot wrap. */
static size_t note_align(uint32_t n)
{
    return ((size_t)n + NOTE_ALIGN - 1) & ~(size_t)(NOTE_ALIGN - 1);
}

/* Look for NT_GNU_BUILD_ID in one note section. */
static bool build_id_in_notes(const uint8_t *p, size_t len, char **hex)
{
    size_t pos = 0;

    while (len - pos >= sizeof(Elf64_Nhdr)) {
        Elf64_Nhdr nh;
        size_t name_off, desc_off, namesz_al, descsz_al;

        memcpy(&nh, p + pos, sizeof(nh));
        name_off = pos + sizeof(nh);
        namesz_al = note_align(nh.n_namesz);
        descsz_al = note_align(nh.n_descsz);
        if (namesz_al > len - name_off) {
            return false;
        }
        desc_off = name_off + namesz_al;
        if (descsz_al > len - desc_off) {
            return false;
        }
        if (nh.n_type == NT_GNU_BUILD_ID &&
            nh.n_namesz == sizeof(GNU_NOTE_NAME) &&
            !memcmp(p + name_off, GNU_NOTE_NAME, sizeof(GNU_NOTE_NAME)) &&
            nh.n_descsz > 0 &&
            nh.n_descsz <= APPDEP_PROFILE_MAX_BUILD_ID_LEN) {
            GString *s = g_string_sized_new(nh.n_descsz * 2);

            for (size_t i = 0; i < nh.n_descsz; i++) {
                g_string_append_printf(s, "%02x", p[desc_off + i]);
            }
            *hex = g_string_free(s, FALSE);
            return true;
        }
        pos = desc_off + descsz_al;
    }
    return false;
}

int appdep_vmlinux_build_id(const AppdepVmlinux *v, char **hex)
{
    Elf_Scn *scn = NULL;

    while ((scn = elf_nextscn(v->elf, scn)) != NULL) {
        GElf_Shdr sh;

        if (!gelf_getshdr(scn, &sh)) {
            return -ENOEXEC;
        }
        if (sh.sh_type != SHT_NOTE) {
            continue;
        }
        if (!range_ok(v->len, sh.sh_offset, sh.sh_size)) {
            return -ENOEXEC;
        }
        if (build_id_in_notes(v->buf + sh.sh_offset, sh.sh_size, hex)) {
            return 0;
        }
    }
    return -ENOENT;
}

void appdep_vmlinux_free(AppdepVmlinux *v)
{
    if (!v) {
        return;
    }
    if (v->elf) {
        elf_end(v->elf);
    }
    g_free(v);
}
