/*
 * appdep: bounded reads of guest memory
 *
 * The guest is an adversary: a pointer read from its memory may point
 * anywhere.  These reads only ever copy from guest RAM (never MMIO, so a
 * read has no device side effect), never fault the guest, never touch
 * the TLB, and are bounded by the caller's length.
 *
 * Most kernel objects appdep reads per event (per-cpu area, task_struct,
 * struct sock, struct file) live in the direct map, so a virtual address
 * there translates to a guest-physical one by subtracting
 * page_offset_base, without a page-table walk.  Other addresses go
 * through the vCPU's page tables (cpu_get_phys_page_attrs_debug()): the
 * kernel image at arm time, and, on the hot path of the syscall layer,
 * the pt_regs on the vmap'd kernel stack at every hooked syscall.  User
 * memory (the syscall layer's iovecs) is translated by appdep_walk()
 * with the CR3 of the hit.
 *
 * Copyright (c) 2026 appdep authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "exec/memory.h"
#include "hw/core/cpu.h"
#include "cpu.h"
#include "hw/appdep/appdep.h"

/*
 * Copy @len bytes at guest-physical @gpa of @as into @buf, RAM only.
 * Any thread.
 */
static bool appdep_mem_read_phys(AddressSpace *as, hwaddr gpa, void *buf,
                                 size_t len)
{
    uint8_t *out = buf;

    RCU_READ_LOCK_GUARD();
    while (len) {
        hwaddr xlat, l = len;
        MemoryRegion *mr;

        if (gpa + len < gpa) {
            return false;
        }
        mr = address_space_translate(as, gpa, &xlat, &l, false,
                                     MEMTXATTRS_UNSPECIFIED);
        if (!memory_region_is_ram(mr) || memory_region_is_ram_device(mr) ||
            l == 0) {
            return false;
        }
        memcpy(out, (uint8_t *)memory_region_get_ram_ptr(mr) + xlat, l);
        out += l;
        gpa += l;
        len -= l;
    }
    return true;
}

/*
 * Read through @cs's page tables, page by page.  Any thread; from a
 * thread other than @cs's it races with the guest's page-table updates,
 * which is harmless for the kernel mappings it is used for.
 */
bool appdep_mem_read_virt(CPUState *cs, uint64_t va, void *buf, size_t len)
{
    uint8_t *out = buf;

    while (len) {
        uint64_t page = va & TARGET_PAGE_MASK;
        size_t l = MIN(len, page + TARGET_PAGE_SIZE - va);
        MemTxAttrs attrs;
        hwaddr pa = cpu_get_phys_page_attrs_debug(cs, page, &attrs);

        if (pa == -1 ||
            !appdep_mem_read_phys(cpu_get_address_space(cs,
                                  cpu_asidx_from_attrs(cs, attrs)),
                                  pa + (va - page), out, l)) {
            return false;
        }
        va += l;
        out += l;
        len -= l;
    }
    return true;
}

/*
 * Read a kernel object at @va.  vCPU thread of @cs (or the main loop
 * for the qtest-only command).  No allocation, no blocking.
 */
bool appdep_mem_read(const AppdepKernel *k, CPUState *cs, uint64_t va,
                     void *buf, size_t len)
{
    uint64_t off = va - k->page_offset_base;

    if (va < k->page_offset_base || off >= APPDEP_DIRECT_MAP_SPAN ||
        len > APPDEP_DIRECT_MAP_SPAN - off) {
        return appdep_mem_read_virt(cs, va, buf, len);
    }
    return appdep_mem_read_phys(cs->as, off, buf, len);
}

/*
 * Typed little-endian reads of kernel objects, as appdep_mem_read().
 * False when the memory is not readable RAM.
 */
bool appdep_read_u64(const AppdepKernel *k, CPUState *cs, uint64_t va,
                     uint64_t *v)
{
    if (!appdep_mem_read(k, cs, va, v, sizeof(*v))) {
        return false;
    }
    *v = le64_to_cpu(*v);
    return true;
}

bool appdep_read_u32(const AppdepKernel *k, CPUState *cs, uint64_t va,
                     uint32_t *v)
{
    if (!appdep_mem_read(k, cs, va, v, sizeof(*v))) {
        return false;
    }
    *v = le32_to_cpu(*v);
    return true;
}

bool appdep_read_u16(const AppdepKernel *k, CPUState *cs, uint64_t va,
                     uint16_t *v)
{
    if (!appdep_mem_read(k, cs, va, v, sizeof(*v))) {
        return false;
    }
    *v = le16_to_cpu(*v);
    return true;
}

#define PTE_PRESENT     (1ULL << 0)
#define PTE_LARGE       (1ULL << 7)
#define PTE_ADDR_MASK   0x000ffffffffff000ULL

/*
 * Translate user address @va with the 4-level page tables at @cr3.
 * Returns the guest-physical address or -1.  The walk only reads RAM.
 */
static hwaddr appdep_walk(CPUState *cs, uint64_t cr3, uint64_t va)
{
    uint64_t table = cr3 & PTE_ADDR_MASK, e = 0;
    int level;

    for (level = 3; level >= 0; level--) {
        unsigned shift = 12 + 9 * level;
        uint64_t idx = (va >> shift) & 511;

        if (!appdep_mem_read_phys(cs->as, table + idx * 8, &e, sizeof(e))) {
            return -1;
        }
        e = le64_to_cpu(e);
        if (!(e & PTE_PRESENT)) {
            return -1;
        }
        if (level == 0 || ((level == 1 || level == 2) && (e & PTE_LARGE))) {
            uint64_t mask = (1ULL << shift) - 1;

            return ((e & PTE_ADDR_MASK) & ~mask) | (va & mask);
        }
        table = e & PTE_ADDR_MASK;
    }
    return -1;
}

bool appdep_mem_read_user(CPUState *cs, uint64_t cr3, uint64_t va,
                          void *buf, size_t len)
{
    uint8_t *out = buf;

    if (!cr3) {
        return false;
    }
    while (len) {
        size_t l = MIN(len, TARGET_PAGE_SIZE - (va & ~TARGET_PAGE_MASK));
        hwaddr pa = appdep_walk(cs, cr3, va);

        if (pa == (hwaddr)-1 || !appdep_mem_read_phys(cs->as, pa, out, l)) {
            return false;
        }
        va += l;
        out += l;
        len -= l;
    }
    return true;
}
