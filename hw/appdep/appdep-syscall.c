/*
 * appdep: syscall-layer walkers
 *
 * When the TCP functions cannot all be hooked (more of them than free
 * debug registers), appdep hooks the system-call layer instead, at two
 * addresses whatever the number of functions:
 *
 *   syscall-enter  do_syscall_64(regs, nr): RDI is the struct pt_regs of
 *                  the call, RSI its number.  Send-type calls (write,
 *                  writev, sendto, sendmsg) and close are recorded here,
 *                  before they act: the sequence number is write_seq
 *                  before the data is queued, as tcp_sendmsg sees it, and
 *                  close still finds its fd.
 *   syscall-exit   the instruction after "call do_syscall_64" in
 *                  entry_SYSCALL_64: RSP points to the pt_regs, whose ax
 *                  now holds the result.  Receive-type calls (read,
 *                  readv, recvfrom, recvmsg) are recorded here, with the
 *                  bytes actually received.
 *
 * The fd is resolved through the current task's file table to its file,
 * which must be a socket (f_op == socket_file_ops), then to the struct
 * sock, which must be TCP.  What this layer does not see, compared with
 * the function hooks (docs/mechanisms.md, "Differences from the function
 * hooks"): sendmmsg, recvmmsg, sendfile and splice; 32-bit (int 0x80)
 * callers; the implicit close of a socket when its process exits; and a
 * close() that drops one of several references (after fork or dup) is
 * filtered out, since the connection stays open.
 *
 * Copyright (c) 2026 appdep authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "hw/core/cpu.h"
#include "hw/appdep/appdep.h"
#include "trace.h"

/* x86_64 system-call numbers (arch/x86/entry/syscalls/syscall_64.tbl) */
enum {
    NR_READ = 0,
    NR_WRITE = 1,
    NR_CLOSE = 3,
    NR_READV = 19,
    NR_WRITEV = 20,
    NR_SENDTO = 44,
    NR_RECVFROM = 45,
    NR_SENDMSG = 46,
    NR_RECVMSG = 47,
};

#define LINUX_IPPROTO_TCP   6
#define LINUX_SOCK_STREAM   1
#define USER_MSGHDR_IOV     16      /* struct user_msghdr: msg_iov */
#define USER_MSGHDR_IOVLEN  24      /* msg_iovlen */
#define USER_SPACE_END      (1ULL << 47)

/* Sum the iov_len of @cnt iovecs at user address @iov (bounded). */
static bool sum_iovec(CPUState *cs, const AppdepRegs *r, uint64_t iov,
                      uint64_t cnt, uint64_t *total)
{
    uint64_t v[2 * APPDEP_MAX_IOV];
    unsigned i;

    /* Past APPDEP_MAX_IOV the sum is short: documented. */
    cnt = MIN(cnt, APPDEP_MAX_IOV);
    *total = 0;
    if (iov >= USER_SPACE_END ||
        !appdep_mem_read_user(cs, r->cr3, iov, v, cnt * 16)) {
        return false;
    }
    for (i = 0; i < cnt; i++) {
        *total += le64_to_cpu(v[2 * i + 1]);
    }
    return true;
}

/*
 * The struct sock of TCP socket @fd of task @task: 1 with *@sk set, 0
 * when @fd is not an open TCP socket (nothing to record), -1 on bad
 * memory.  *@single is false when other references to the file exist.
 */
static int fd_to_sock(const AppdepProfile *p, const AppdepKernel *k,
                      CPUState *cs, uint64_t task, uint64_t fd, uint64_t *sk,
                      bool *single, const char **why)
{
    uint64_t files, fdt, fdarr, file, fop, sock, count;
    uint32_t max_fds;
    uint16_t proto, type;

    if (!appdep_read_u64(k, cs, task + p->off_task_files, &files) ||
        !appdep_read_u64(k, cs, files + p->off_files_fdt, &fdt) ||
        !appdep_read_u32(k, cs, fdt + p->off_fdt_max_fds, &max_fds) ||
        !appdep_read_u64(k, cs, fdt + p->off_fdt_fd, &fdarr)) {
        *why = "the task's file table is not readable";
        return -1;
    }
    if (fd >= max_fds) {
        return 0;                   /* the call fails with EBADF */
    }
    if (!appdep_read_u64(k, cs, fdarr + 8 * fd, &file)) {
        *why = "the task's fd array is not readable";
        return -1;
    }
    if (!file) {
        return 0;
    }
    if (!appdep_read_u64(k, cs, file + p->off_file_f_op, &fop)) {
        *why = "struct file is not readable";
        return -1;
    }
    if (fop != p->sym_socket_file_ops + k->slide) {
        return 0;                   /* a file, a pipe, ...: not a socket */
    }
    if (!appdep_read_u64(k, cs, file + p->off_file_private_data, &sock) ||
        !appdep_read_u64(k, cs, sock + p->off_socket_sk, sk) ||
        !appdep_read_u16(k, cs, *sk + p->off_sk_protocol, &proto) ||
        !appdep_read_u16(k, cs, *sk + p->off_sk_type, &type)) {
        *why = "the socket behind the fd is not readable";
        return -1;
    }
    if (proto != LINUX_IPPROTO_TCP || type != LINUX_SOCK_STREAM) {
        return 0;
    }
    *single = true;
    if (p->has_f_count) {
        if (!appdep_read_u64(k, cs, file + p->off_file_f_count, &count)) {
            *why = "struct file's reference count is not readable";
            return -1;
        }
        *single = count <= 1;
    }
    return 1;
}

/* Member @off of the struct pt_regs at @regs. */
static bool read_reg(const AppdepKernel *k, CPUState *cs, uint64_t regs,
                     uint32_t off, uint64_t *v)
{
    return appdep_read_u64(k, cs, regs + off, v);
}

int appdep_syscall_event(const AppdepProfile *p, const AppdepKernel *k,
                         CPUState *cs, AppdepHookKind kind,
                         const AppdepRegs *r, AppdepThreadRecord *rec,
                         const char **why)
{
    uint64_t regs, nr, fd, ret = 0, bytes = 0, task, sk, a1, a2;
    uint8_t op;
    bool single;
    int found;

    /* Filter on the syscall number first: most syscalls cost one test. */
    if (kind == APPDEP_HOOK_KIND_SYSCALL_ENTER) {
        regs = r->rdi;
        nr = r->rsi;
        if (nr != NR_WRITE && nr != NR_WRITEV && nr != NR_SENDTO &&
            nr != NR_SENDMSG && nr != NR_CLOSE) {
            return 0;
        }
    } else {
        regs = r->rsp;
        if (!read_reg(k, cs, regs, p->off_regs_orig_ax, &nr)) {
            *why = "pt_regs on the kernel stack is not readable";
            goto bad;
        }
        if (nr != NR_READ && nr != NR_READV && nr != NR_RECVFROM &&
            nr != NR_RECVMSG) {
            return 0;
        }
        if (!read_reg(k, cs, regs, p->off_regs_ax, &ret)) {
            *why = "pt_regs on the kernel stack is not readable";
            goto bad;
        }
        if ((int64_t)ret <= 0) {
            return 0;               /* nothing received, or an error */
        }
    }
    if (!read_reg(k, cs, regs, p->off_regs_di, &fd)) {
        *why = "pt_regs is not readable";
        goto bad;
    }
    task = appdep_linux_current(p, k, cs, r, rec, why);
    if (!task) {
        goto bad;
    }
    found = fd_to_sock(p, k, cs, task, fd, &sk, &single, why);
    if (found < 0) {
        goto bad;
    }
    if (found == 0) {
        return 0;
    }
    found = appdep_linux_sock(p, k, cs, sk, rec, why);
    if (found < 0) {
        goto bad;
    }
    if (found == 0) {
        return 0;
    }

    switch (nr) {
    case NR_WRITE:
    case NR_SENDTO:
    case NR_WRITEV:
    case NR_SENDMSG:
        if (!read_reg(k, cs, regs, p->off_regs_si, &a1) ||
            !read_reg(k, cs, regs, p->off_regs_dx, &a2)) {
            *why = "pt_regs is not readable";
            goto bad;
        }
        if (nr == NR_WRITE || nr == NR_SENDTO) {
            bytes = a2;
        } else if (nr == NR_WRITEV) {
            if (!sum_iovec(cs, r, a1, a2, &bytes)) {
                return 0;           /* a bad iovec: the call fails */
            }
        } else {
            uint64_t iov, cnt;

            if (a1 >= USER_SPACE_END ||
                !appdep_mem_read_user(cs, r->cr3, a1 + USER_MSGHDR_IOV,
                                      &iov, 8) ||
                !appdep_mem_read_user(cs, r->cr3, a1 + USER_MSGHDR_IOVLEN,
                                      &cnt, 8) ||
                !sum_iovec(cs, r, le64_to_cpu(iov), le64_to_cpu(cnt),
                           &bytes)) {
                return 0;
            }
        }
        if (!bytes) {
            return 0;
        }
        op = APPDEP_OP_SEND;
        break;
    case NR_CLOSE:
        if (!single) {
            return 0;               /* other references keep it open */
        }
        op = APPDEP_OP_CLOSE;
        break;
    default:
        /* receive-type, at the return: copied_seq counts the bytes */
        op = APPDEP_OP_RECV;
        bytes = ret;
        break;
    }
    if (appdep_linux_tcp_op(p, k, cs, sk, op, bytes, rec, why)) {
        return 1;
    }

bad:
    trace_appdep_syscall_event_bad(kind, *why);
    return -1;
}
