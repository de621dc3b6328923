/*
 * appdep: Linux x86_64 walkers
 *
 * Finds the running kernel's KASLR slide and page_offset_base when
 * arming, and turns a hook hit (registers) into a per-thread record by
 * reading the current task and the struct sock from guest memory.
 * Derived facts are cross-checked before they are trusted: the slide
 * against linux_banner, the per-cpu base against this_cpu_off.
 *
 * Copyright (c) 2026 appdep authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "hw/core/cpu.h"
#include "hw/appdep/appdep.h"
#include "trace.h"

#define LINUX_AF_INET   2
#define LINUX_AF_INET6  10
#define LINUX_BANNER_PREFIX "Linux version "

/* Cut @s at its first newline (linux_banner ends with one). */
static void chomp(char *s)
{
    s[strcspn(s, "\n")] = '\0';
}

bool appdep_linux_probe(const AppdepProfile *p, CPUState *cs, uint64_t lstar,
                        AppdepKernel *k, Error **errp)
{
    uint64_t slide, pob;
    g_autofree char *want = g_strdup(p->banner);
    unsigned i;

    memset(k, 0, sizeof(*k));
    if (!lstar) {
        error_setg(errp, "the guest kernel has not set up MSR_LSTAR yet "
                   "(still booting?): enable inspection once it is up");
        return false;
    }
    slide = lstar - p->sym_entry_syscall_64;
    if (lstar < p->sym_entry_syscall_64 || slide >= APPDEP_MAX_KASLR_SLIDE ||
        slide % APPDEP_KASLR_ALIGN) {
        error_setg(errp, "MSR_LSTAR 0x%" PRIx64 " is not entry_SYSCALL_64 "
                   "(0x%" PRIx64 ") plus a KASLR slide: the guest does not "
                   "run the kernel of the profile (%s)", lstar,
                   p->sym_entry_syscall_64, p->banner);
        return false;
    }
    if (!appdep_mem_read_virt(cs, p->sym_linux_banner + slide, k->banner,
                              APPDEP_MAX_BANNER)) {
        error_setg(errp, "cannot read linux_banner at 0x%" PRIx64
                   ": the guest does not run the kernel of the profile (%s)",
                   p->sym_linux_banner + slide, p->banner);
        return false;
    }
    k->banner[APPDEP_MAX_BANNER] = '\0';
    chomp(k->banner);
    chomp(want);
    if (strcmp(k->banner, want)) {
        g_autofree char *found = g_strescape(k->banner, NULL);

        error_setg(errp, "the running kernel does not match the profile: "
                   "expected '%s', found '%s'", want,
                   g_str_has_prefix(k->banner, LINUX_BANNER_PREFIX) ?
                   found : "(no Linux banner at linux_banner)");
        return false;
    }
    if (!appdep_mem_read_virt(cs, p->sym_page_offset_base + slide, &pob,
                              sizeof(pob))) {
        error_setg(errp, "cannot read page_offset_base");
        return false;
    }
    pob = le64_to_cpu(pob);
    /* Randomized in PUD (1 GiB) steps; 0 only in qtest's flat memory. */
    if (pob & ((1ULL << 30) - 1)) {
        error_setg(errp, "page_offset_base 0x%" PRIx64 " is not 1 GiB "
                   "aligned", pob);
        return false;
    }
    k->slide = slide;
    k->page_offset_base = pob;
    for (i = 0; i < APPDEP_HOOK_COUNT; i++) {
        k->hook_addr[i] = p->sym_hook[i] ? p->sym_hook[i] + slide : 0;
    }
    return true;
}

static bool is_v4_mapped(const uint8_t *a)
{
    static const uint8_t prefix[12] = { [10] = 0xff, [11] = 0xff };

    return !memcmp(a, prefix, sizeof(prefix));
}

/* See appdep.h. */
int appdep_linux_sock(const AppdepProfile *p, const AppdepKernel *k,
                     CPUState *cs, uint64_t sk, AppdepThreadRecord *rec,
                     const char **why)
{
    uint16_t family, num, dport;

    if (!appdep_read_u16(k, cs, sk + p->off_skc_family, &family)) {
        *why = "struct sock is not readable";
        return -1;
    }
    if (family != LINUX_AF_INET && family != LINUX_AF_INET6) {
        return 0;
    }
    if (!appdep_read_u16(k, cs, sk + p->off_skc_num, &num) ||
        !appdep_mem_read(k, cs, sk + p->off_skc_dport, &dport,
                         sizeof(dport))) {
        *why = "struct sock ports are not readable";
        return -1;
    }
    rec->sport = num;
    rec->dport = be16_to_cpu(dport);
    memset(rec->saddr, 0, sizeof(rec->saddr));
    memset(rec->daddr, 0, sizeof(rec->daddr));
    if (family == LINUX_AF_INET6) {
        if (!appdep_mem_read(k, cs, sk + p->off_skc_v6_rcv_saddr, rec->saddr,
                             16) ||
            !appdep_mem_read(k, cs, sk + p->off_skc_v6_daddr, rec->daddr,
                             16)) {
            *why = "struct sock IPv6 addresses are not readable";
            return -1;
        }
        /* An AF_INET6 socket talking IPv4 carries v4-mapped addresses. */
        if (!is_v4_mapped(rec->daddr)) {
            rec->family = APPDEP_FAMILY_IPV6;
            return rec->sport && rec->dport;    /* as for IPv4, below */
        }
        memset(rec->saddr, 0, sizeof(rec->saddr));
        memset(rec->daddr, 0, sizeof(rec->daddr));
    }
    if (!appdep_mem_read(k, cs, sk + p->off_skc_rcv_saddr, rec->saddr, 4) ||
        !appdep_mem_read(k, cs, sk + p->off_skc_daddr, rec->daddr, 4)) {
        *why = "struct sock IPv4 addresses are not readable";
        return -1;
    }
    rec->family = APPDEP_FAMILY_IPV4;
    /*
     * A socket without both ports is not a connection (e.g. the close of
     * a socket whose connect() failed): nothing for the analysis.
     */
    return rec->sport && rec->dport;
}

bool appdep_linux_tcp_op(const AppdepProfile *p, const AppdepKernel *k,
                         CPUState *cs, uint64_t sk, uint8_t op,
                         uint64_t bytes, AppdepThreadRecord *rec,
                         const char **why)
{
    uint32_t seq;

    rec->op = op;
    rec->bytes = bytes;
    if (op == APPDEP_OP_RECV) {
        if (!appdep_read_u32(k, cs, sk + p->off_copied_seq, &seq)) {
            *why = "tcp_sock.copied_seq is not readable";
            return false;
        }
        rec->seq = seq - (uint32_t)bytes;
        return true;
    }
    if (!appdep_read_u32(k, cs, sk + p->off_write_seq, &rec->seq)) {
        *why = "tcp_sock.write_seq is not readable";
        return false;
    }
    return true;
}

uint64_t appdep_linux_current(const AppdepProfile *p, const AppdepKernel *k,
                              CPUState *cs, const AppdepRegs *r,
                              AppdepThreadRecord *rec, const char **why)
{
    uint64_t pcpu, self, current, current_va;

    /*
     * A hooked function runs in kernel mode after swapgs, so GS.base is
     * the per-cpu base; it is a kernel (negative) address.  Fall back to
     * KERNEL_GS_BASE for a hook that fires before swapgs.
     */
    pcpu = (r->gs_base >> 63) ? r->gs_base : r->kernel_gs_base;
    if (!appdep_read_u64(k, cs, pcpu + p->sym_this_cpu_off, &self) ||
        self != pcpu) {
        *why = "per-cpu base fails the this_cpu_off cross-check";
        return 0;
    }
    current_va = pcpu + p->sym_current;
    if (p->pcpu_hot) {
        current_va += p->off_pcpu_hot_current;
    }
    if (!appdep_read_u64(k, cs, current_va, &current) || !current) {
        *why = "current task pointer is not readable";
        return 0;
    }
    if (!appdep_read_u32(k, cs, current + p->off_task_tgid, &rec->pid) ||
        !appdep_read_u32(k, cs, current + p->off_task_pid, &rec->tid) ||
        !appdep_mem_read(k, cs, current + p->off_task_comm, rec->comm,
                         APPDEP_WIRE_COMM_LEN)) {
        *why = "task_struct is not readable";
        return 0;
    }
    rec->comm[APPDEP_WIRE_COMM_LEN] = '\0';
    return current;
}

int appdep_linux_event(const AppdepProfile *p, const AppdepKernel *k,
                       CPUState *cs, AppdepHookKind kind,
                       const AppdepRegs *r, AppdepThreadRecord *rec,
                       const char **why)
{
    uint64_t sk = r->rdi;
    bool ok = false;
    int ret;

    /* tcp_cleanup_rbuf(sk, 0): nothing was read, no event; no reads */
    if (kind == APPDEP_HOOK_KIND_RECV && (int32_t)r->rsi <= 0) {
        return 0;
    }
    if (!appdep_linux_current(p, k, cs, r, rec, why)) {
        goto bad;
    }
    ret = appdep_linux_sock(p, k, cs, sk, rec, why);
    if (ret < 0) {
        goto bad;
    }
    if (ret == 0) {
        return 0;
    }
    switch (kind) {
    case APPDEP_HOOK_KIND_SEND:
        /* tcp_sendmsg(sk, msg, size): write_seq is the first new byte */
        ok = appdep_linux_tcp_op(p, k, cs, sk, APPDEP_OP_SEND, r->rdx, rec,
                                 why);
        break;
    case APPDEP_HOOK_KIND_RECV:
        /*
         * tcp_cleanup_rbuf(sk, copied) runs after the copy, so
         * copied_seq already counts it (copied <= 0 was dismissed).
         */
        ok = appdep_linux_tcp_op(p, k, cs, sk, APPDEP_OP_RECV,
                                 (uint32_t)r->rsi, rec, why);
        break;
    case APPDEP_HOOK_KIND_CLOSE:
        ok = appdep_linux_tcp_op(p, k, cs, sk, APPDEP_OP_CLOSE, 0, rec, why);
        break;
    default:
        g_assert_not_reached();
    }
    if (ok) {
        return 1;
    }

bad:
    trace_appdep_linux_event_bad(kind, *why);
    return -1;
}
