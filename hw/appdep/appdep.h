/*
 * appdep: hypervisor-level tracing of guest TCP threads (internal API)
 *
 * Layers, one file each (a file calls only the ones listed below it,
 * except the hook providers, which call back into the hook entry):
 *   appdep-qmp.c      QMP and HMP commands
 *   appdep.c          object, lifecycle, arm/disarm, output drain
 *   appdep-hook.c     the hook entry (vCPU thread): fill, stamp, push
 *   appdep-syscall.c  syscall-layer walkers: syscall number, fd -> socket
 *   appdep-linux.c    Linux walkers: KASLR, per-cpu, current, struct sock
 *   appdep-mem.c      bounded, RAM-only guest memory reads, typed reads
 *   appdep-profile.c  kernel profile (symbols and struct offsets)
 *   appdep-choice.c   the rule that chooses the hook mechanism
 *   appdep-ring.c     per-vCPU single-producer record rings
 *   appdep-tcg.c      hook provider: TCG translation-time helper call
 *   appdep-kvm.c      hook provider: KVM hardware debug registers
 *
 * A hook provider installs the hooks and, on the vCPU thread that hits
 * one, calls appdep_hook_fire() with the register values the
 * introspection core needs.  The core never knows how the hook fired,
 * nor which layer (TCP functions or system calls) is hooked: the
 * hook kind says what the registers mean.
 *
 * Copyright (c) 2026 appdep authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef HW_APPDEP_H
#define HW_APPDEP_H

#include "qom/object.h"
#include "chardev/char-fe.h"
#include "qapi/qapi-types-appdep.h"
#include "qemu/rcu.h"
#include "hw/appdep/appdep-wire.h"

#define TYPE_APPDEP "appdep"
OBJECT_DECLARE_SIMPLE_TYPE(AppdepState, APPDEP)

/* Limits */
#define APPDEP_MAX_PROFILE_SIZE   (1024 * 1024)  /* profile JSON file */
#define APPDEP_MAX_BANNER         256            /* linux_banner bytes read */
#define APPDEP_MAX_STRUCT_OFFSET  0x10000        /* any struct member offset */
#define APPDEP_MAX_KASLR_SLIDE    (1ULL << 30)   /* x86_64 text KASLR range */
#define APPDEP_KASLR_ALIGN        (2ULL << 20)
#define APPDEP_DIRECT_MAP_SPAN    (1ULL << 46)   /* 64 TiB, 4-level paging */
#define APPDEP_RING_SLOTS         4096           /* per vCPU, power of two */
#define APPDEP_DRAIN_MS           20
#define APPDEP_MAX_PENDING        (1024 * APPDEP_WIRE_THREAD_LEN)
#define APPDEP_REARM_MS           500

#define APPDEP_MAX_IOV            64             /* iovecs summed per send */
#define APPDEP_X86_DEBUG_REGS     4              /* DR0..DR3 */

#define APPDEP_HOOK_COUNT         APPDEP_HOOK_KIND__MAX
#define APPDEP_FUNCTION_HOOKS     3   /* send, recv, close */
#define APPDEP_SYSCALL_HOOKS      2   /* syscall-enter, syscall-exit */

static inline bool appdep_hook_is_syscall(AppdepHookKind kind)
{
    return kind == APPDEP_HOOK_KIND_SYSCALL_ENTER ||
           kind == APPDEP_HOOK_KIND_SYSCALL_EXIT;
}

/* A kernel profile: link-time symbols and struct offsets (immutable). */
typedef struct AppdepProfile {
    char *banner;
    char *release;
    bool pcpu_hot;                      /* 6.2+: current in pcpu_hot */
    uint64_t sym_entry_syscall_64;
    uint64_t sym_linux_banner;
    uint64_t sym_page_offset_base;
    uint64_t sym_this_cpu_off;          /* per-cpu offset */
    uint64_t sym_current;               /* per-cpu offset: current_task or pcpu_hot */
    uint64_t sym_hook[APPDEP_HOOK_COUNT];
    uint32_t off_pcpu_hot_current;
    uint32_t off_task_pid;
    uint32_t off_task_tgid;
    uint32_t off_task_comm;
    uint32_t off_skc_daddr;
    uint32_t off_skc_rcv_saddr;
    uint32_t off_skc_dport;
    uint32_t off_skc_num;
    uint32_t off_skc_family;
    uint32_t off_skc_v6_daddr;
    uint32_t off_skc_v6_rcv_saddr;
    uint32_t off_write_seq;
    uint32_t off_copied_seq;

    /* the syscall layer: all set, or has_syscall is false */
    bool has_syscall;
    bool has_f_count;
    uint64_t sym_socket_file_ops;
    uint32_t off_task_files;
    uint32_t off_files_fdt;
    uint32_t off_fdt_max_fds;
    uint32_t off_fdt_fd;
    uint32_t off_file_f_op;
    uint32_t off_file_private_data;
    uint32_t off_file_f_count;
    uint32_t off_socket_sk;
    uint32_t off_sk_protocol;
    uint32_t off_sk_type;
    uint32_t off_regs_orig_ax;
    uint32_t off_regs_ax;
    uint32_t off_regs_di;
    uint32_t off_regs_si;
    uint32_t off_regs_dx;
} AppdepProfile;

/* Facts about the running guest kernel, found when arming. */
typedef struct AppdepKernel {
    uint64_t slide;
    uint64_t page_offset_base;
    uint64_t hook_addr[APPDEP_HOOK_COUNT];
    char banner[APPDEP_MAX_BANNER + 1];
} AppdepKernel;

/* What a hook provider hands to the introspection core. */
typedef struct AppdepRegs {
    uint64_t rdi;
    uint64_t rsi;
    uint64_t rdx;
    uint64_t rsp;
    uint64_t gs_base;
    uint64_t kernel_gs_base;
    uint64_t cr3;               /* for reads of user memory */
} AppdepRegs;

/* A per-vCPU ring of encoded records: one producer, one consumer. */
typedef struct AppdepRing {
    uint32_t head;      /* next slot to fill; written by the vCPU thread */
    uint32_t tail;      /* next slot to drain; written by the main loop */
    uint8_t slot[APPDEP_RING_SLOTS][APPDEP_WIRE_THREAD_LEN];
} AppdepRing;

/*
 * Everything the vCPU hot path touches.  Reached through the hook
 * provider's RCU-published hook set, which disarm unpublishes before it
 * returns (the object can be deleted only once disarmed), and freed with
 * call_rcu(), so a vCPU still inside a hook when the object goes away
 * never sees freed memory.
 */
typedef struct AppdepRun {
    struct rcu_head rcu;
    AppdepProfile profile;
    AppdepKernel kernel;        /* written only while disarmed */
    char vm[APPDEP_WIRE_VM_LEN + 1];
    bool armed;                 /* atomic */
    uint64_t serial;            /* atomic */
    bool hooked[APPDEP_HOOK_COUNT];     /* written only while disarmed */
    uint64_t hits[APPDEP_HOOK_COUNT];   /* atomic */
    uint64_t filtered;          /* atomic */
    uint64_t hook_ns;           /* atomic */
    uint64_t drop_ring_full;    /* atomic */
    uint64_t drop_bad_memory;   /* atomic */
    unsigned nrings;
    AppdepRing **rings;         /* indexed by cpu_index; set before arming */
} AppdepRun;

struct AppdepState {
    Object parent_obj;

    /* properties */
    char *chardev_id;
    char *profile_path;
    char *vm;
    bool rearm;
    AppdepMechanismChoice force;
    uint64_t x_lstar;           /* qtest only: overrides MSR_LSTAR */

    /* BQL */
    CharBackend chr;
    AppdepRun *run;
    AppdepMechanism mechanism;
    char *mechanism_reason;
    const struct AppdepHookProvider *provider;  /* when armed */
    QEMUTimer *drain_timer;
    QEMUTimer *rearm_timer;
    GByteArray *pending;        /* encoded records not yet written */
    uint64_t written_bytes;
    uint64_t emitted;
    uint64_t drop_no_consumer;
};

typedef struct AppdepHookProvider {
    /*
     * Install hooks at @addr[kind] for every kind whose address is not
     * 0.  Main loop, BQL held.  The provider calls appdep_hook_fire() on
     * the vCPU thread of a hit.
     */
    bool (*arm)(AppdepState *s, const uint64_t *addr, Error **errp);
    /* Remove the hooks.  Main loop, BQL held.  Never fails. */
    void (*disarm)(AppdepState *s);
} AppdepHookProvider;

/* appdep.c */
AppdepState *appdep_find(const char *id, Error **errp);
bool appdep_arm(AppdepState *s, AppdepInspectReason reason, Error **errp);
bool appdep_disarm(AppdepState *s, AppdepInspectReason reason, Error **errp);
AppdepInfo *appdep_info(AppdepState *s);

/* appdep-hook.c */
/*
 * A hook of @kind fired on @cs.  vCPU thread: never blocks, never
 * allocates; the record goes to the vCPU's ring or is counted as a drop.
 */
void appdep_hook_fire(AppdepRun *run, CPUState *cs, AppdepHookKind kind,
                      const AppdepRegs *regs);
/* As appdep_hook_fire(), for the qtest-only command: returns the record. */
bool appdep_hook_fire_test(AppdepState *s, AppdepHookKind kind,
                           const AppdepRegs *regs, AppdepThreadRecord *rec,
                           Error **errp);

/* appdep-profile.c */
bool appdep_profile_parse(AppdepProfile *p, const char *json, size_t len,
                          Error **errp);
bool appdep_profile_load(AppdepProfile *p, const char *path, Error **errp);
void appdep_profile_clear(AppdepProfile *p);
const char *appdep_hook_symbol(const AppdepProfile *p, AppdepHookKind kind);

/* appdep-mem.c */
/*
 * Read user memory at @va through the 4-level page tables at @cr3 (the
 * syscall layer's iovecs).  Any thread.
 */
bool appdep_mem_read_user(CPUState *cs, uint64_t cr3, uint64_t va,
                          void *buf, size_t len);
bool appdep_mem_read(const AppdepKernel *k, CPUState *cs, uint64_t va,
                     void *buf, size_t len);
bool appdep_mem_read_virt(CPUState *cs, uint64_t va, void *buf, size_t len);
/* Little-endian integers, read as appdep_mem_read() does. */
bool appdep_read_u64(const AppdepKernel *k, CPUState *cs, uint64_t va,
                     uint64_t *v);
bool appdep_read_u32(const AppdepKernel *k, CPUState *cs, uint64_t va,
                     uint32_t *v);
bool appdep_read_u16(const AppdepKernel *k, CPUState *cs, uint64_t va,
                     uint16_t *v);

/* appdep-linux.c */
bool appdep_linux_probe(const AppdepProfile *p, CPUState *cs, uint64_t lstar,
                        AppdepKernel *k, Error **errp);
/*
 * Fill @rec for a function hook (send, recv, close) of @kind from guest
 * memory.  Returns 1 for a record, 0 when the event is not TCP over
 * IPv4/IPv6 (filtered), -1 when guest memory is bad, with a static
 * reason in *@why.  vCPU thread.
 */
int appdep_linux_event(const AppdepProfile *p, const AppdepKernel *k,
                       CPUState *cs, AppdepHookKind kind,
                       const AppdepRegs *r, AppdepThreadRecord *rec,
                       const char **why);
/* The current task (pid, tid, comm) into @rec; returns its address or 0. */
uint64_t appdep_linux_current(const AppdepProfile *p, const AppdepKernel *k,
                              CPUState *cs, const AppdepRegs *r,
                              AppdepThreadRecord *rec, const char **why);
/*
 * The 4-tuple of socket @sk into @rec: 1, 0 (not IPv4/IPv6, or without
 * both ports: not a connection), -1 (bad memory, reason in *@why).
 */
int appdep_linux_sock(const AppdepProfile *p, const AppdepKernel *k,
                      CPUState *cs, uint64_t sk, AppdepThreadRecord *rec,
                      const char **why);
/*
 * Set @rec's op (APPDEP_OP_*), bytes and sequence number for TCP socket
 * @sk: write_seq for a send (before the data is queued) or a close,
 * copied_seq minus @bytes for a receive (after the copy).  False on bad
 * memory, reason in *@why.
 */
bool appdep_linux_tcp_op(const AppdepProfile *p, const AppdepKernel *k,
                         CPUState *cs, uint64_t sk, uint8_t op,
                         uint64_t bytes, AppdepThreadRecord *rec,
                         const char **why);

/*
 * appdep-syscall.c: as appdep_linux_event(), for the syscall hooks.  A
 * layer above appdep-linux.c, whose walkers it uses.
 */
int appdep_syscall_event(const AppdepProfile *p, const AppdepKernel *k,
                         CPUState *cs, AppdepHookKind kind,
                         const AppdepRegs *r, AppdepThreadRecord *rec,
                         const char **why);

/* appdep-ring.c */
AppdepRing *appdep_ring_new(void);
bool appdep_ring_push(AppdepRing *r, const AppdepThreadRecord *rec);
unsigned appdep_ring_pop(AppdepRing *r, uint8_t *buf, unsigned max);

/* appdep-tcg.c */
const AppdepHookProvider *appdep_tcg_provider(void);

/* appdep-kvm.c (NULL without KVM) */
const AppdepHookProvider *appdep_kvm_provider(void);
/* Debug registers free for appdep (those a debugger does not hold). */
unsigned appdep_kvm_free_debugregs(void);

#endif
