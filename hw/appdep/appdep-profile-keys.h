/*
 * appdep: the keys of a kernel profile, listed once
 *
 * A profile (docs/profile.md) holds the link-time addresses of kernel
 * symbols ("symbols") and struct member offsets ("offsets").  This
 * header is the one list of them.  QEMU's parser (appdep-profile.c)
 * reads exactly these; the tool that writes profiles
 * (scripts/profile/appdep-profile.c) writes exactly these, and fails
 * only when a key QEMU always needs is missing.  Pure C, no QEMU, so
 * that both include it.
 *
 * Each list is an X-macro.  For symbols:
 *   X(json name, AppdepProfile field, need, what QEMU uses it for)
 * for offsets (json name "type.member"):
 *   X(type, member, AppdepProfile field, need, what QEMU uses it for)
 * The field is expanded by QEMU only.  "need" is one of
 * APPDEP_PROFILE_NEED_* without the prefix:
 *   ALWAYS        required in every profile
 *   CURRENT_TASK  required with current_layout "current_task" (<= 6.1)
 *   PCPU_HOT      required with current_layout "pcpu_hot" (6.2+)
 *   SYSCALL       the syscall layer: a profile has all of these or none,
 *                 and has them when it has APPDEP_PROFILE_SYSCALL_MARK
 *   OPTIONAL      used when present
 *
 * Copyright (c) 2026 appdep authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef HW_APPDEP_PROFILE_KEYS_H
#define HW_APPDEP_PROFILE_KEYS_H

/* The format version, "appdep_profile" in the JSON. */
#define APPDEP_PROFILE_FORMAT   1

typedef enum AppdepProfileNeed {
    APPDEP_PROFILE_NEED_ALWAYS,
    APPDEP_PROFILE_NEED_CURRENT_TASK,
    APPDEP_PROFILE_NEED_PCPU_HOT,
    APPDEP_PROFILE_NEED_SYSCALL,
    APPDEP_PROFILE_NEED_OPTIONAL,
} AppdepProfileNeed;

/*
 * The syscall layer's return site: not a kernel symbol but an address
 * the tool finds in entry_SYSCALL_64.  Its presence says the profile
 * has the syscall layer.
 */
#define APPDEP_PROFILE_SYSCALL_MARK "syscall_return_site"

#define APPDEP_PROFILE_SYMBOLS(X)                                           \
    X("entry_SYSCALL_64", sym_entry_syscall_64, ALWAYS,                     \
      "the KASLR slide, from MSR_LSTAR")                                    \
    X("linux_banner", sym_linux_banner, ALWAYS,                             \
      "the running kernel is the profile's")                                \
    X("page_offset_base", sym_page_offset_base, ALWAYS,                     \
      "the direct map")                                                     \
    X("this_cpu_off", sym_this_cpu_off, ALWAYS,                             \
      "the per-cpu base cross-check (a per-cpu offset)")                    \
    X("current_task", sym_current, CURRENT_TASK,                            \
      "the current task (a per-cpu offset)")                                \
    X("pcpu_hot", sym_current, PCPU_HOT,                                    \
      "the current task (a per-cpu offset)")                                \
    X("tcp_sendmsg", sym_hook[APPDEP_HOOK_KIND_SEND], ALWAYS,               \
      "the send hook")                                                      \
    X("tcp_cleanup_rbuf", sym_hook[APPDEP_HOOK_KIND_RECV], ALWAYS,          \
      "the receive hook")                                                   \
    X("tcp_close", sym_hook[APPDEP_HOOK_KIND_CLOSE], ALWAYS,                \
      "the close hook")                                                     \
    X("socket_file_ops", sym_socket_file_ops, SYSCALL,                      \
      "an fd is a socket")                                                  \
    X("do_syscall_64", sym_hook[APPDEP_HOOK_KIND_SYSCALL_ENTER], SYSCALL,   \
      "the syscall-enter hook")                                             \
    X(APPDEP_PROFILE_SYSCALL_MARK, sym_hook[APPDEP_HOOK_KIND_SYSCALL_EXIT], \
      SYSCALL, "the syscall-exit hook")

#define APPDEP_PROFILE_OFFSETS(X)                                           \
    X("pcpu_hot", "current_task", off_pcpu_hot_current, PCPU_HOT,           \
      "the current task")                                                   \
    X("task_struct", "pid", off_task_pid, ALWAYS, "record: tid")            \
    X("task_struct", "tgid", off_task_tgid, ALWAYS, "record: pid")          \
    X("task_struct", "comm", off_task_comm, ALWAYS, "record: comm")         \
    X("sock_common", "skc_daddr", off_skc_daddr, ALWAYS, "IPv4 peer")       \
    X("sock_common", "skc_rcv_saddr", off_skc_rcv_saddr, ALWAYS,            \
      "IPv4 local address")                                                 \
    X("sock_common", "skc_dport", off_skc_dport, ALWAYS, "peer port")       \
    X("sock_common", "skc_num", off_skc_num, ALWAYS, "local port")          \
    X("sock_common", "skc_family", off_skc_family, ALWAYS, "IPv4 or IPv6")  \
    X("sock_common", "skc_v6_daddr", off_skc_v6_daddr, ALWAYS, "IPv6 peer") \
    X("sock_common", "skc_v6_rcv_saddr", off_skc_v6_rcv_saddr, ALWAYS,      \
      "IPv6 local address")                                                 \
    X("tcp_sock", "write_seq", off_write_seq, ALWAYS, "send, close: seq")   \
    X("tcp_sock", "copied_seq", off_copied_seq, ALWAYS, "receive: seq")     \
    X("task_struct", "files", off_task_files, SYSCALL, "fd -> file")        \
    X("files_struct", "fdt", off_files_fdt, SYSCALL, "fd -> file")          \
    X("fdtable", "max_fds", off_fdt_max_fds, SYSCALL, "fd -> file")         \
    X("fdtable", "fd", off_fdt_fd, SYSCALL, "fd -> file")                   \
    X("file", "f_op", off_file_f_op, SYSCALL, "the file is a socket")       \
    X("file", "private_data", off_file_private_data, SYSCALL,               \
      "file -> socket")                                                     \
    X("socket", "sk", off_socket_sk, SYSCALL, "socket -> sock")             \
    X("sock", "sk_protocol", off_sk_protocol, SYSCALL, "the sock is TCP")   \
    X("sock", "sk_type", off_sk_type, SYSCALL, "the sock is TCP")           \
    X("pt_regs", "orig_ax", off_regs_orig_ax, SYSCALL, "syscall number")    \
    X("pt_regs", "ax", off_regs_ax, SYSCALL, "syscall result")              \
    X("pt_regs", "di", off_regs_di, SYSCALL, "syscall argument 1")          \
    X("pt_regs", "si", off_regs_si, SYSCALL, "syscall argument 2")          \
    X("pt_regs", "dx", off_regs_dx, SYSCALL, "syscall argument 3")          \
    X("file", "f_count", off_file_f_count, OPTIONAL,                        \
      "syscall layer: a close() that keeps the file open")

#endif
