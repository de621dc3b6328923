/*
 * QTest for appdep: the QMP/HMP contract and the introspection core.
 *
 * The qtest accelerator runs no guest code, so no hook can fire.  The
 * test writes fake kernel structures (banner, per-cpu area, task,
 * sockets) into guest RAM at low addresses (the CPU stays in real mode,
 * so a "virtual" address equals the physical one), loads a matching
 * fake profile, sets MSR_LSTAR through the qtest-only x-lstar property
 * and feeds register values to the core with x-appdep-test-event.  The
 * records also travel the real chardev path to a unix socket the test
 * listens on, where they are decoded with the shared wire header.
 *
 * Copyright (c) 2026 appdep authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include <sys/socket.h>
#include <sys/un.h>
#include <poll.h>
#include "libqtest.h"
#include "qobject/qdict.h"
#include "qobject/qlist.h"
#include "qobject/qnum.h"
#include "../../hw/appdep/appdep-wire.h"

#define SLIDE           0x200000ULL
#define SYM_ENTRY       0x1000000ULL
#define SYM_BANNER      0x100000ULL
#define SYM_POB         0x101000ULL
#define SYM_SENDMSG     0x1100000ULL
#define SYM_CLEANUP     0x1100100ULL
#define SYM_CLOSE       0x1100200ULL
#define PCPU_THIS_OFF   0x100ULL
#define PCPU_CURRENT    0x200ULL
#define PCPU_HOT        0x300ULL
#define PCPU_BASE       0x400000ULL
#define TASK            0x500000ULL
#define SOCK4           0x600000ULL
#define SOCK6           0x610000ULL
#define SOCK_MAPPED     0x620000ULL
#define SOCK_UNIX       0x630000ULL
/* the syscall layer's fake file table, pt_regs and user memory */
#define SYM_SOCKET_FOPS 0x1200000ULL
#define SYM_DO_SYSCALL  0x1100400ULL
#define SYM_SYSRET_SITE 0x1000080ULL
#define FILES           0x640000ULL
#define FDT             0x650000ULL
#define FDARR           0x660000ULL
#define FILE_SOCK       0x670000ULL
#define FILE_REG        0x671000ULL
#define FILE_UDP        0x672000ULL
#define SOCKET          0x680000ULL
#define SOCKET_UDP      0x681000ULL
#define SOCK_UDP        0x690000ULL
#define REGS            0x6a0000ULL
#define USER_PHYS       0x6b0000ULL
#define PML4            0x6c0000ULL
#define USER_VA         0x400000ULL
#define NR_READ         0
#define NR_WRITE        1
#define NR_OPEN         2
#define NR_CLOSE        3
#define NR_WRITEV       20
#define ENABLE \
    "{'execute': 'x-appdep-inspect', 'arguments': {'enable': true}}"
#define BANNER          "Linux version 6.1.0-qtest (appdep@qtest) #1 SMP"

static const char profile_fmt[] =
    "{\"appdep_profile\": 1, \"banner\": \"" BANNER "\","
    " \"release\": \"6.1.0-qtest\", \"build_id\": \"00\","
    " \"current_layout\": \"current_task\","
    " \"symbols\": {\"entry_SYSCALL_64\": \"0x1000000\","
    "   \"linux_banner\": \"0x100000\", \"page_offset_base\": \"0x101000\","
    "   \"this_cpu_off\": \"0x100\", \"current_task\": \"0x200\","
    "   \"tcp_sendmsg\": \"0x1100000\", \"tcp_cleanup_rbuf\": \"0x1100100\","
    "   \"tcp_close\": \"0x1100200\", \"tcp_recvmsg\": \"0x1100300\"},"
    " \"offsets\": {\"task_struct.pid\": 2416, \"task_struct.tgid\": 2420,"
    "   \"task_struct.comm\": 2976, \"sock_common.skc_daddr\": 0,"
    "   \"sock_common.skc_rcv_saddr\": 4, \"sock_common.skc_dport\": 12,"
    "   \"sock_common.skc_num\": 14, \"sock_common.skc_family\": 16,"
    "   \"sock_common.skc_v6_daddr\": 56, \"sock_common.skc_v6_rcv_saddr\": 72,"
    "   \"tcp_sock.write_seq\": 1852, \"tcp_sock.copied_seq\": 1468%s}}";

typedef struct Fixture {
    QTestState *qts;
    char *dir;
    char *profile;
    int listen_fd;
    int rec_fd;
} Fixture;

static char *write_file(const char *dir, const char *name, const char *text)
{
    char *path = g_build_filename(dir, name, NULL);

    g_assert(g_file_set_contents(path, text, -1, NULL));
    return path;
}

static int listen_unix(const char *path)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);

    g_assert(fd >= 0);
    g_assert(strlen(path) < sizeof(sa.sun_path));
    strcpy(sa.sun_path, path);
    g_assert(bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
    g_assert(listen(fd, 1) == 0);
    return fd;
}

static void write_fake_kernel(QTestState *qts)
{
    static const uint8_t v4_local[4] = { 10, 0, 0, 1 };
    static const uint8_t v4_remote[4] = { 10, 0, 0, 2 };
    static const uint8_t v6_local[16] = { 0xfd, [15] = 1 };
    static const uint8_t v6_remote[16] = { 0xfd, [15] = 2 };
    static const uint8_t mapped_local[16] = { [10] = 0xff, [11] = 0xff,
                                              192, 168, 1, 1 };
    static const uint8_t mapped_remote[16] = { [10] = 0xff, [11] = 0xff,
                                               192, 168, 1, 2 };
    static const uint8_t dport_be[2] = { 8080 >> 8, 8080 & 0xff };

    qtest_writeq(qts, SYM_POB + SLIDE, 0);
    /* per-cpu area: this_cpu_off points back at it, current_task */
    qtest_writeq(qts, PCPU_BASE + PCPU_THIS_OFF, PCPU_BASE);
    qtest_writeq(qts, PCPU_BASE + PCPU_CURRENT, TASK);
    qtest_writel(qts, TASK + 0x970, 1235);      /* pid: the thread */
    qtest_writel(qts, TASK + 0x974, 1234);      /* tgid: the process */
    qtest_memwrite(qts, TASK + 0xba0, "fakeproc", 9);

    qtest_memwrite(qts, SOCK4 + 0, v4_remote, 4);
    qtest_memwrite(qts, SOCK4 + 4, v4_local, 4);
    qtest_memwrite(qts, SOCK4 + 12, dport_be, 2);
    qtest_writew(qts, SOCK4 + 14, 40000);
    qtest_writew(qts, SOCK4 + 16, 2);           /* AF_INET */
    qtest_writel(qts, SOCK4 + 0x73c, 1000);     /* write_seq */
    qtest_writel(qts, SOCK4 + 0x5bc, 5064);     /* copied_seq */

    qtest_memwrite(qts, SOCK6 + 56, v6_remote, 16);
    qtest_memwrite(qts, SOCK6 + 72, v6_local, 16);
    qtest_memwrite(qts, SOCK6 + 12, dport_be, 2);
    qtest_writew(qts, SOCK6 + 14, 40001);
    qtest_writew(qts, SOCK6 + 16, 10);          /* AF_INET6 */
    qtest_writel(qts, SOCK6 + 0x73c, 0xfffffff0);

    qtest_memwrite(qts, SOCK_MAPPED + 0, mapped_remote + 12, 4);
    qtest_memwrite(qts, SOCK_MAPPED + 4, mapped_local + 12, 4);
    qtest_memwrite(qts, SOCK_MAPPED + 56, mapped_remote, 16);
    qtest_memwrite(qts, SOCK_MAPPED + 72, mapped_local, 16);
    qtest_memwrite(qts, SOCK_MAPPED + 12, dport_be, 2);
    qtest_writew(qts, SOCK_MAPPED + 14, 40002);
    qtest_writew(qts, SOCK_MAPPED + 16, 10);

    qtest_writew(qts, SOCK_UNIX + 16, 1);       /* AF_UNIX */
}

/* Replace the first @from in @s by @to. */
static char *replace(const char *s, const char *from, const char *to)
{
    const char *at = strstr(s, from);

    g_assert(at);
    return g_strdup_printf("%.*s%s%s", (int)(at - s), s, to,
                           at + strlen(from));
}

/* The syscall layer's symbols and offsets (as appdep-profile writes). */
static const char syscall_syms[] =
    "\"tcp_close\": \"0x1100200\", \"do_syscall_64\": \"0x1100400\","
    " \"syscall_return_site\": \"0x1000080\","
    " \"socket_file_ops\": \"0x1200000\",";
static const char syscall_offsets[] =
    ", \"task_struct.files\": 3048, \"files_struct.fdt\": 32,"
    " \"fdtable.max_fds\": 0, \"fdtable.fd\": 8, \"file.f_op\": 40,"
    " \"file.private_data\": 200, \"file.f_count\": 56, \"socket.sk\": 24,"
    " \"sock.sk_protocol\": 516, \"sock.sk_type\": 514,"
    " \"pt_regs.orig_ax\": 120, \"pt_regs.ax\": 80, \"pt_regs.di\": 112,"
    " \"pt_regs.si\": 104, \"pt_regs.dx\": 96";

/*
 * The profile: 6.1's per-cpu current_task by default; with @data
 * "pcpu_hot", 6.2+'s pcpu_hot.current_task (at PCPU_HOT + 8).
 */
static char *make_profile(gconstpointer data)
{
    g_autofree char *text = NULL;
    g_autofree char *t1 = NULL;

    if (data && !strcmp(data, "syscall")) {
        text = g_strdup_printf(profile_fmt, syscall_offsets);
        return replace(text, "\"tcp_close\": \"0x1100200\",", syscall_syms);
    }
    if (!data || strcmp(data, "pcpu_hot")) {
        return g_strdup_printf(profile_fmt, "");
    }
    text = g_strdup_printf(profile_fmt, ", \"pcpu_hot.current_task\": 8");
    t1 = replace(text, "\"current_layout\": \"current_task\"",
                 "\"current_layout\": \"pcpu_hot\"");
    return replace(t1, "\"current_task\": \"0x200\"",
                   "\"pcpu_hot\": \"0x300\"");
}

static void fixture_setup(Fixture *f, gconstpointer data)
{
    g_autofree char *sock = NULL;
    g_autofree char *text = make_profile(data);

    f->dir = g_dir_make_tmp("appdep-test-XXXXXX", NULL);
    g_assert(f->dir);
    f->profile = write_file(f->dir, "profile.json", text);
    sock = g_build_filename(f->dir, "rec.sock", NULL);
    f->listen_fd = listen_unix(sock);
    f->qts = qtest_initf("-machine q35 -m 128M "
                         "-chardev socket,id=rec,path=%s "
                         "-object appdep,id=appdep0,chardev=rec,"
                         "profile=%s,vm=qtest-vm", sock, f->profile);
    f->rec_fd = accept(f->listen_fd, NULL, NULL);
    g_assert(f->rec_fd >= 0);
}

static void fixture_teardown(Fixture *f, gconstpointer data)
{
    g_autofree char *cmd = g_strdup_printf("rm -rf '%s'", f->dir);

    qtest_quit(f->qts);
    if (f->rec_fd >= 0) {
        close(f->rec_fd);
    }
    close(f->listen_fd);
    g_assert(system(cmd) == 0);
    g_free(f->profile);
    g_free(f->dir);
}

/* Expect an error whose description contains @needle; returns nothing. */
static void assert_error(QDict *resp, const char *needle)
{
    QDict *err;
    const char *desc;

    g_assert(resp);
    err = qdict_get_qdict(resp, "error");
    g_assert(err);
    desc = qdict_get_str(err, "desc");
    if (!strstr(desc, needle)) {
        g_printerr("error '%s' lacks '%s'\n", desc, needle);
        g_assert_not_reached();
    }
    qobject_unref(resp);
}

static uint64_t get_u64(QDict *d, const char *key)
{
    return qnum_get_uint(qobject_to(QNum, qdict_get(d, key)));
}

static QDict *query(QTestState *qts)
{
    QDict *resp = qtest_qmp(qts, "{'execute': 'x-query-appdep'}");
    QDict *ret;

    g_assert(qdict_haskey(resp, "return"));
    ret = qdict_get_qdict(resp, "return");
    qobject_ref(ret);
    qobject_unref(resp);
    return ret;
}

static void set_lstar(QTestState *qts, uint64_t lstar)
{
    qtest_qmp_assert_success(qts, "{'execute': 'qom-set', 'arguments': "
                             "{'path': '/objects/appdep0', "
                             "'property': 'x-lstar', 'value': %" PRIu64 "}}",
                             lstar);
}

static void write_banner(QTestState *qts, const char *banner)
{
    qtest_memwrite(qts, SYM_BANNER + SLIDE, banner, strlen(banner) + 1);
}

static void expect_inspect_event(QTestState *qts, bool enabled,
                                 const char *reason)
{
    QDict *ev = qtest_qmp_eventwait_ref(qts, "APPDEP_INSPECT");
    QDict *data = qdict_get_qdict(ev, "data");

    g_assert_cmpstr(qdict_get_str(data, "id"), ==, "appdep0");
    g_assert_cmpstr(qdict_get_str(data, "vm"), ==, "qtest-vm");
    g_assert(qdict_get_bool(data, "enabled") == enabled);
    g_assert_cmpstr(qdict_get_str(data, "reason"), ==, reason);
    qobject_unref(ev);
}

static void arm(Fixture *f)
{
    write_fake_kernel(f->qts);
    write_banner(f->qts, BANNER "\n");
    set_lstar(f->qts, SYM_ENTRY + SLIDE);
    qtest_qmp_assert_success(f->qts, "{'execute': 'x-appdep-inspect', "
                             "'arguments': {'enable': true}}");
    expect_inspect_event(f->qts, true, "command");
}

static QDict *test_event(QTestState *qts, const char *hook, uint64_t rdi,
                         uint64_t rsi, uint64_t rdx, uint64_t gs)
{
    return qtest_qmp(qts, "{'execute': 'x-appdep-test-event', 'arguments': "
                     "{'hook': %s, 'rdi': %" PRIu64 ", 'rsi': %" PRIu64
                     ", 'rdx': %" PRIu64 ", 'gs-base': %" PRIu64
                     ", 'kernel-gs-base': %" PRIu64 "}}",
                     hook, rdi, rsi, rdx, gs, gs);
}

/* The "return" of a successful x-appdep-test-event (the record). */
static QDict *take_return(QDict *resp)
{
    QDict *ret;

    if (!qdict_haskey(resp, "return")) {
        g_printerr("%s\n", qdict_get_str(qdict_get_qdict(resp, "error"),
                                         "desc"));
        g_assert_not_reached();
    }
    ret = qdict_get_qdict(resp, "return");
    qobject_ref(ret);
    qobject_unref(resp);
    return ret;
}

static QDict *event_ok(QTestState *qts, const char *hook, uint64_t rdi,
                       uint64_t rsi, uint64_t rdx)
{
    return take_return(test_event(qts, hook, rdi, rsi, rdx, PCPU_BASE));
}

/* Read exactly @n records from the stream, within a few seconds. */
static void read_records(Fixture *f, AppdepThreadRecord *out, unsigned n)
{
    size_t want = n * APPDEP_WIRE_THREAD_LEN, have = 0, used = 0;
    g_autofree uint8_t *buf = g_malloc(want);
    gint64 deadline = g_get_monotonic_time() + 10 * G_USEC_PER_SEC;
    unsigned i;

    while (have < want) {
        struct pollfd pfd = { .fd = f->rec_fd, .events = POLLIN };
        ssize_t r;

        g_assert(g_get_monotonic_time() < deadline);
        if (poll(&pfd, 1, 50) <= 0) {
            continue;
        }
        r = read(f->rec_fd, buf + have, want - have);
        g_assert(r > 0);
        have += r;
    }
    for (i = 0; i < n; i++) {
        g_assert_cmpint(appdep_wire_decode_thread(
                            buf + i * APPDEP_WIRE_THREAD_LEN,
                            want - i * APPDEP_WIRE_THREAD_LEN, &out[i], &used),
                        ==, APPDEP_WIRE_OK);
        g_assert_cmpuint(used, ==, APPDEP_WIRE_THREAD_LEN);
    }
}

static void test_query_disarmed(Fixture *f, gconstpointer data)
{
    QDict *info = query(f->qts);

    g_assert_cmpstr(qdict_get_str(info, "id"), ==, "appdep0");
    g_assert_cmpstr(qdict_get_str(info, "vm"), ==, "qtest-vm");
    g_assert(!qdict_get_bool(info, "enabled"));
    g_assert_cmpstr(qdict_get_str(info, "mechanism"), ==, "none");
    g_assert_cmpstr(qdict_get_str(info, "profile-banner"), ==, BANNER);
    g_assert(!qdict_haskey(info, "kaslr-slide"));
    g_assert(qlist_empty(qdict_get_qlist(info, "hooks")));
    g_assert_cmpint(qdict_get_int(info, "records-emitted"), ==, 0);
    g_assert_cmpint(qdict_get_int(info, "records-dropped"), ==, 0);
    qobject_unref(info);

    assert_error(qtest_qmp(f->qts, "{'execute': 'x-query-appdep', "
                           "'arguments': {'id': 'nope'}}"),
                 "no appdep object with id 'nope'");
    assert_error(qtest_qmp(f->qts, "{'execute': 'x-appdep-inspect', "
                           "'arguments': {'enable': false}}"),
                 "not enabled");
}

static void test_arm_errors(Fixture *f, gconstpointer data)
{

    write_fake_kernel(f->qts);
    /* the vCPU never ran a kernel: MSR_LSTAR is 0 */
    assert_error(qtest_qmp(f->qts, ENABLE), "MSR_LSTAR");

    set_lstar(f->qts, SYM_ENTRY + SLIDE + 1);
    assert_error(qtest_qmp(f->qts, ENABLE), "plus a KASLR slide");
    set_lstar(f->qts, SYM_ENTRY - 0x200000);
    assert_error(qtest_qmp(f->qts, ENABLE), "plus a KASLR slide");

    set_lstar(f->qts, SYM_ENTRY + SLIDE);
    assert_error(qtest_qmp(f->qts, ENABLE), "no Linux banner");
    write_banner(f->qts, "Linux version 5.10.0-other (x@y) #2 SMP\n");
    assert_error(qtest_qmp(f->qts, ENABLE),
                 "expected '" BANNER "', found 'Linux version 5.10.0-other");

    write_banner(f->qts, BANNER "\n");
    qtest_writeq(f->qts, SYM_POB + SLIDE, 0x12345);
    assert_error(qtest_qmp(f->qts, ENABLE), "page_offset_base");

    /* nothing was armed by the failures */
    {
        QDict *info = query(f->qts);

        g_assert(!qdict_get_bool(info, "enabled"));
        qobject_unref(info);
    }
    assert_error(test_event(f->qts, "send", SOCK4, 0, 64, PCPU_BASE),
                 "not enabled");
}

static void test_arm_disarm(Fixture *f, gconstpointer data)
{
    QDict *info;
    QList *hooks;
    g_autofree char *hmp = NULL;

    arm(f);
    info = query(f->qts);
    g_assert(qdict_get_bool(info, "enabled"));
    g_assert_cmpuint(get_u64(info, "kaslr-slide"), ==, SLIDE);
    g_assert_cmpstr(qdict_get_str(info, "banner"), ==, BANNER);
    hooks = qdict_get_qlist(info, "hooks");
    g_assert_cmpint(qlist_size(hooks), ==, 3);
    {
        QDict *h = qobject_to(QDict, qlist_peek(hooks));

        g_assert_cmpstr(qdict_get_str(h, "function"), ==, "tcp_sendmsg");
        g_assert_cmpuint(get_u64(h, "address"), ==,
                         SYM_SENDMSG + SLIDE);
    }
    qobject_unref(info);

    assert_error(qtest_qmp(f->qts, "{'execute': 'x-appdep-inspect', "
                           "'arguments': {'enable': true}}"),
                 "already enabled");
    assert_error(qtest_qmp(f->qts, "{'execute': 'object-del', "
                           "'arguments': {'id': 'appdep0'}}"),
                 "can not be deleted");

    hmp = qtest_hmp(f->qts, "info appdep");
    g_assert(strstr(hmp, "inspection on"));
    g_assert(strstr(hmp, "tcp_cleanup_rbuf"));
    g_free(qtest_hmp(f->qts, "appdep off"));
    expect_inspect_event(f->qts, false, "command");
    g_free(hmp);
    hmp = qtest_hmp(f->qts, "info appdep");
    g_assert(strstr(hmp, "inspection off"));

    g_free(qtest_hmp(f->qts, "appdep on"));
    expect_inspect_event(f->qts, true, "command");
    qtest_qmp_assert_success(f->qts, "{'execute': 'x-appdep-inspect', "
                             "'arguments': {'enable': false, "
                             "'id': 'appdep0'}}");
    expect_inspect_event(f->qts, false, "command");
}

static void test_reset_disarms(Fixture *f, gconstpointer data)
{
    QDict *info;

    arm(f);
    qtest_qmp_assert_success(f->qts, "{'execute': 'system_reset'}");
    expect_inspect_event(f->qts, false, "guest-reset");
    info = query(f->qts);
    g_assert(!qdict_get_bool(info, "enabled"));
    qobject_unref(info);
}

static void test_reset_rearms(Fixture *f, gconstpointer data)
{
    QDict *info;

    qtest_qmp_assert_success(f->qts, "{'execute': 'qom-set', 'arguments': "
                             "{'path': '/objects/appdep0', "
                             "'property': 'rearm', 'value': true}}");
    arm(f);
    qtest_qmp_assert_success(f->qts, "{'execute': 'system_reset'}");
    expect_inspect_event(f->qts, false, "guest-reset");
    /* the "new kernel" (same fake one) is up: re-armed automatically */
    expect_inspect_event(f->qts, true, "rearm");
    info = query(f->qts);
    g_assert(qdict_get_bool(info, "enabled"));
    qobject_unref(info);
}

static void test_records(Fixture *f, gconstpointer data)
{
    AppdepThreadRecord rec[4];
    QDict *r, *info;

    arm(f);
    r = event_ok(f->qts, "send", SOCK4, 0, 64);
    g_assert_cmpint(qdict_get_int(r, "pid"), ==, 1234);
    g_assert_cmpint(qdict_get_int(r, "tid"), ==, 1235);
    g_assert_cmpstr(qdict_get_str(r, "comm"), ==, "fakeproc");
    g_assert_cmpint(qdict_get_int(r, "family"), ==, 4);
    g_assert_cmpstr(qdict_get_str(r, "saddr"), ==, "10.0.0.1");
    g_assert_cmpint(qdict_get_int(r, "sport"), ==, 40000);
    g_assert_cmpstr(qdict_get_str(r, "daddr"), ==, "10.0.0.2");
    g_assert_cmpint(qdict_get_int(r, "dport"), ==, 8080);
    g_assert_cmpint(qdict_get_int(r, "bytes"), ==, 64);
    g_assert_cmpint(qdict_get_int(r, "seq"), ==, 1000);
    qobject_unref(r);

    /* receive: copied_seq already counts the bytes just copied */
    r = event_ok(f->qts, "recv", SOCK4, 100, 0);
    g_assert_cmpint(qdict_get_int(r, "bytes"), ==, 100);
    g_assert_cmpint(qdict_get_int(r, "seq"), ==, 4964);
    qobject_unref(r);

    r = event_ok(f->qts, "send", SOCK6, 0, 7);
    g_assert_cmpint(qdict_get_int(r, "family"), ==, 6);
    g_assert_cmpstr(qdict_get_str(r, "saddr"), ==, "fd00::1");
    g_assert_cmpstr(qdict_get_str(r, "daddr"), ==, "fd00::2");
    g_assert_cmpint(qdict_get_int(r, "sport"), ==, 40001);
    g_assert_cmpuint(get_u64(r, "seq"), ==, 0xfffffff0);
    qobject_unref(r);

    /* an AF_INET6 socket talking IPv4 is reported as IPv4 */
    r = event_ok(f->qts, "close", SOCK_MAPPED, 0, 0);
    g_assert_cmpint(qdict_get_int(r, "family"), ==, 4);
    g_assert_cmpstr(qdict_get_str(r, "saddr"), ==, "192.168.1.1");
    g_assert_cmpstr(qdict_get_str(r, "daddr"), ==, "192.168.1.2");
    g_assert_cmpint(qdict_get_int(r, "bytes"), ==, 0);
    qobject_unref(r);

    /* the same four records reach the chardev, in order */
    read_records(f, rec, 4);
    g_assert_cmpint(rec[0].op, ==, APPDEP_OP_SEND);
    g_assert_cmpstr(rec[0].vm, ==, "qtest-vm");
    g_assert_cmpstr(rec[0].comm, ==, "fakeproc");
    g_assert_cmpint(rec[0].pid, ==, 1234);
    g_assert_cmpint(rec[0].tid, ==, 1235);
    g_assert_cmpint(rec[0].sport, ==, 40000);
    g_assert_cmpint(rec[0].dport, ==, 8080);
    g_assert_cmpint(rec[0].saddr[3], ==, 1);
    g_assert_cmpint(rec[0].daddr[3], ==, 2);
    g_assert_cmpint(rec[0].seq, ==, 1000);
    g_assert_cmpint(rec[0].bytes, ==, 64);
    g_assert(rec[0].time_ns > 1700000000ULL * 1000000000ULL);
    g_assert_cmpint(rec[1].op, ==, APPDEP_OP_RECV);
    g_assert_cmpint(rec[2].family, ==, APPDEP_FAMILY_IPV6);
    g_assert_cmpint(rec[3].op, ==, APPDEP_OP_CLOSE);
    g_assert_cmpuint(rec[1].serial, ==, rec[0].serial + 1);
    g_assert_cmpuint(rec[3].serial, ==, rec[0].serial + 3);

    info = query(f->qts);
    g_assert_cmpint(qdict_get_int(info, "records-emitted"), ==, 4);
    g_assert_cmpint(qdict_get_int(info, "records-dropped"), ==, 0);
    qobject_unref(info);
}

/* 6.2+ layout: current is pcpu_hot.current_task */
static void test_pcpu_hot(Fixture *f, gconstpointer data)
{
    QDict *r;

    arm(f);
    /* the 6.1 slot holds a decoy: reading it would give the wrong task */
    qtest_writeq(f->qts, PCPU_BASE + PCPU_CURRENT, 0x7fff0000000ULL);
    qtest_writeq(f->qts, PCPU_BASE + PCPU_HOT + 8, TASK);
    r = event_ok(f->qts, "send", SOCK4, 0, 33);
    g_assert_cmpint(qdict_get_int(r, "tid"), ==, 1235);
    g_assert_cmpstr(qdict_get_str(r, "comm"), ==, "fakeproc");
    g_assert_cmpint(qdict_get_int(r, "bytes"), ==, 33);
    qobject_unref(r);
}

static void test_garbage(Fixture *f, gconstpointer data)
{
    QDict *info, *drops;
    AppdepThreadRecord rec;

    arm(f);
    /* struct sock pointer outside guest RAM */
    assert_error(test_event(f->qts, "send", 0xdead00000000ULL, 0, 1,
                            PCPU_BASE), "struct sock is not readable");
    /* a per-cpu base that does not point back at itself */
    assert_error(test_event(f->qts, "send", SOCK4, 0, 1, PCPU_BASE + 0x1000),
                 "this_cpu_off cross-check");
    /* a per-cpu base near the top of the address space (wraps) */
    assert_error(test_event(f->qts, "send", SOCK4, 0, 1, ~0ULL - 8),
                 "this_cpu_off cross-check");
    /* current points outside RAM */
    qtest_writeq(f->qts, PCPU_BASE + PCPU_CURRENT, 0x7fff0000000ULL);
    assert_error(test_event(f->qts, "send", SOCK4, 0, 1, PCPU_BASE),
                 "task_struct is not readable");
    qtest_writeq(f->qts, PCPU_BASE + PCPU_CURRENT, 0);
    assert_error(test_event(f->qts, "send", SOCK4, 0, 1, PCPU_BASE),
                 "current task pointer");
    qtest_writeq(f->qts, PCPU_BASE + PCPU_CURRENT, TASK);
    /* MMIO is never read: the IOAPIC page is not RAM */
    assert_error(test_event(f->qts, "send", 0xfec00000ULL, 0, 1, PCPU_BASE),
                 "struct sock is not readable");
    /* not an inet socket: filtered, not dropped */
    assert_error(test_event(f->qts, "send", SOCK_UNIX, 0, 1, PCPU_BASE),
                 "filtered");
    /* a socket whose connect() failed has no ports: not a connection */
    qtest_writew(f->qts, SOCK4 + 14, 0);
    assert_error(test_event(f->qts, "close", SOCK4, 0, 0, PCPU_BASE),
                 "filtered");
    qtest_writew(f->qts, SOCK4 + 14, 40000);
    /* the same for IPv6 (a refused connect: no remote port) */
    qtest_writew(f->qts, SOCK6 + 12, 0);
    assert_error(test_event(f->qts, "close", SOCK6, 0, 0, PCPU_BASE),
                 "filtered");
    qtest_writew(f->qts, SOCK6 + 12, 8080 >> 8 | (8080 & 0xff) << 8);
    /* a receive of nothing is no event */
    assert_error(test_event(f->qts, "recv", SOCK4, 0, 0, PCPU_BASE),
                 "filtered");

    info = query(f->qts);
    drops = qdict_get_qdict(info, "drops");
    g_assert_cmpint(qdict_get_int(drops, "bad-guest-memory"), ==, 6);
    g_assert_cmpint(qdict_get_int(info, "records-dropped"), ==, 6);
    g_assert_cmpint(qdict_get_int(info, "records-filtered"), ==, 4);
    qobject_unref(info);

    /* and the core still works: the record after the losses has a gap */
    qobject_unref(event_ok(f->qts, "send", SOCK4, 0, 1));
    read_records(f, &rec, 1);
    g_assert_cmpuint(rec.serial, ==, 6);
}

/* The consumer goes away: records are dropped and counted, QEMU goes on. */
static void test_consumer_gone(Fixture *f, gconstpointer data)
{
    gint64 deadline = g_get_monotonic_time() + 10 * G_USEC_PER_SEC;
    QDict *info;
    int64_t lost = 0;
    unsigned i;

    arm(f);
    close(f->rec_fd);
    f->rec_fd = -1;
    while (!lost) {
        g_assert(g_get_monotonic_time() < deadline);
        for (i = 0; i < 10; i++) {
            qobject_unref(event_ok(f->qts, "send", SOCK4, 0, 1));
        }
        g_usleep(20 * 1000);
        info = query(f->qts);
        lost = qdict_get_int(qdict_get_qdict(info, "drops"), "no-consumer");
        qobject_unref(info);
    }
    g_assert_cmpint(lost, >, 0);
}

static void test_bad_profiles(Fixture *f, gconstpointer data)
{
    static const struct {
        const char *text;
        const char *error;
    } cases[] = {
        { "{", "profile: " },
        { "[1, 2]", "not a JSON object" },
        { "{\"appdep_profile\": 2}", "'appdep_profile' must be 1" },
        { "{\"appdep_profile\": 1, \"banner\": \"Windows\"}",
          "'banner' must be" },
    };
    g_autofree char *missing_sym = NULL;
    g_autofree char *bad_off = NULL;
    unsigned i;

    for (i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autofree char *path = write_file(f->dir, "bad.json",
                                           cases[i].text);

        assert_error(qtest_qmp(f->qts, "{'execute': 'object-add', "
                               "'arguments': {'qom-type': 'appdep', "
                               "'id': 'bad', 'chardev': 'rec', "
                               "'profile': %s}}", path), cases[i].error);
    }
    assert_error(qtest_qmp(f->qts, "{'execute': 'object-add', "
                           "'arguments': {'qom-type': 'appdep', "
                           "'id': 'bad', 'chardev': 'rec', "
                           "'profile': '/nonexistent/p.json'}}"),
                 "cannot read profile");
    assert_error(qtest_qmp(f->qts, "{'execute': 'object-add', "
                           "'arguments': {'qom-type': 'appdep', "
                           "'id': 'bad', 'chardev': 'nochr', "
                           "'profile': %s}}", f->profile),
                 "chardev 'nochr' not found");

    /* a profile without tcp_close, and one with a negative offset */
    missing_sym = g_strdup_printf(profile_fmt, "");
    strstr(missing_sym, "\"tcp_close\"")[1] = 'X';
    {
        g_autofree char *path = write_file(f->dir, "nosym.json",
                                           missing_sym);

        assert_error(qtest_qmp(f->qts, "{'execute': 'object-add', "
                               "'arguments': {'qom-type': 'appdep', "
                               "'id': 'bad', 'chardev': 'rec', "
                               "'profile': %s}}", path),
                     "symbol 'tcp_close' is missing");
    }
    bad_off = g_strdup_printf(profile_fmt, "");
    memcpy(strstr(bad_off, "2416"), "-416", 4);
    {
        g_autofree char *path = write_file(f->dir, "badoff.json", bad_off);

        assert_error(qtest_qmp(f->qts, "{'execute': 'object-add', "
                               "'arguments': {'qom-type': 'appdep', "
                               "'id': 'bad', 'chardev': 'rec', "
                               "'profile': %s}}", path),
                     "offset 'task_struct.pid' is not an integer");
    }
    /* the object that works is unaffected */
    qobject_unref(query(f->qts));
}

/* The file table, a pt_regs and a user page, for the syscall layer. */
static void write_fake_files(QTestState *qts)
{
    uint64_t iov[4] = { USER_VA + 0x100, 10, USER_VA + 0x200, 22 };

    qtest_writeq(qts, TASK + 3048, FILES);
    qtest_writeq(qts, FILES + 32, FDT);
    qtest_writel(qts, FDT + 0, 8);                  /* max_fds */
    qtest_writeq(qts, FDT + 8, FDARR);
    qtest_writeq(qts, FDARR + 3 * 8, FILE_SOCK);    /* fd 3: TCP socket */
    qtest_writeq(qts, FDARR + 4 * 8, FILE_REG);     /* fd 4: a file */
    qtest_writeq(qts, FDARR + 5 * 8, 0);            /* fd 5: not open */
    qtest_writeq(qts, FDARR + 6 * 8, FILE_UDP);     /* fd 6: UDP socket */
    qtest_writeq(qts, FDARR + 7 * 8, 0xdead000000000000ULL); /* garbage */

    qtest_writeq(qts, FILE_SOCK + 40, SYM_SOCKET_FOPS + SLIDE);
    qtest_writeq(qts, FILE_SOCK + 200, SOCKET);
    qtest_writeq(qts, FILE_SOCK + 56, 1);           /* f_count */
    qtest_writeq(qts, SOCKET + 24, SOCK4);
    qtest_writew(qts, SOCK4 + 514, 1);              /* SOCK_STREAM */
    qtest_writew(qts, SOCK4 + 516, 6);              /* IPPROTO_TCP */

    qtest_writeq(qts, FILE_REG + 40, 0xffffffff81000000ULL);
    qtest_writeq(qts, FILE_UDP + 40, SYM_SOCKET_FOPS + SLIDE);
    qtest_writeq(qts, FILE_UDP + 200, SOCKET_UDP);
    qtest_writeq(qts, SOCKET_UDP + 24, SOCK_UDP);
    qtest_writew(qts, SOCK_UDP + 514, 2);           /* SOCK_DGRAM */
    qtest_writew(qts, SOCK_UDP + 516, 17);          /* IPPROTO_UDP */

    /* 4-level page tables mapping USER_VA (PD index 2) to USER_PHYS */
    qtest_writeq(qts, PML4, (PML4 + 0x1000) | 1);
    qtest_writeq(qts, PML4 + 0x1000, (PML4 + 0x2000) | 1);
    qtest_writeq(qts, PML4 + 0x2000 + 2 * 8, (PML4 + 0x3000) | 1);
    qtest_writeq(qts, PML4 + 0x3000, USER_PHYS | 1);
    qtest_memwrite(qts, USER_PHYS, iov, sizeof(iov));
}

/* A syscall-layer hook: pt_regs at REGS holds nr, result and arguments. */
static QDict *syscall_event(QTestState *qts, const char *hook, uint64_t nr,
                            uint64_t fd, uint64_t si, uint64_t dx,
                            uint64_t ax)
{
    qtest_writeq(qts, REGS + 120, nr);
    qtest_writeq(qts, REGS + 80, ax);
    qtest_writeq(qts, REGS + 112, fd);
    qtest_writeq(qts, REGS + 104, si);
    qtest_writeq(qts, REGS + 96, dx);
    /* syscall-enter: do_syscall_64(regs, nr); syscall-exit: RSP = regs */
    return qtest_qmp(qts, "{'execute': 'x-appdep-test-event', 'arguments': "
                     "{'hook': %s, 'rdi': %" PRIu64 ", 'rsi': %" PRIu64
                     ", 'rdx': 0, 'rsp': %" PRIu64 ", 'cr3': %" PRIu64
                     ", 'gs-base': %" PRIu64 ", 'kernel-gs-base': %" PRIu64 "}}",
                     hook, (uint64_t)REGS, nr, (uint64_t)REGS, (uint64_t)PML4,
                     (uint64_t)PCPU_BASE, (uint64_t)PCPU_BASE);
}

static QDict *syscall_ok(QTestState *qts, const char *hook, uint64_t nr,
                         uint64_t fd, uint64_t si, uint64_t dx, uint64_t ax)
{
    return take_return(syscall_event(qts, hook, nr, fd, si, dx, ax));
}

static void set_mechanism(QTestState *qts, const char *m)
{
    qtest_qmp_assert_success(qts, "{'execute': 'qom-set', 'arguments': "
                             "{'path': '/objects/appdep0', 'property': "
                             "'mechanism', 'value': %s}}", m);
}

/* Forced and automatic choices, as reported; refusals with reasons. */
static void test_mechanism(Fixture *f, gconstpointer data)
{
    QDict *info, *hook;
    QList *hooks;
    char *hmp;

    write_fake_kernel(f->qts);
    write_banner(f->qts, BANNER "\n");
    set_lstar(f->qts, SYM_ENTRY + SLIDE);

    set_mechanism(f->qts, "kvm-debugreg");
    assert_error(qtest_qmp(f->qts, ENABLE), "needs the KVM accelerator");
    info = query(f->qts);
    g_assert_cmpstr(qdict_get_str(info, "mechanism"), ==, "none");
    qobject_unref(info);

    set_mechanism(f->qts, "syscall");
    qtest_qmp_assert_success(f->qts, ENABLE);
    expect_inspect_event(f->qts, true, "command");
    info = query(f->qts);
    g_assert_cmpstr(qdict_get_str(info, "mechanism"), ==, "syscall-tcg");
    g_assert(strstr(qdict_get_str(info, "mechanism-reason"),
                    "forced by mechanism=syscall"));
    hooks = qdict_get_qlist(info, "hooks");
    g_assert_cmpint(qlist_size(hooks), ==, 2);
    hook = qobject_to(QDict, qlist_peek(hooks));
    g_assert_cmpstr(qdict_get_str(hook, "function"), ==, "do_syscall_64");
    g_assert_cmpuint(get_u64(hook, "address"), ==, SYM_DO_SYSCALL + SLIDE);
    qobject_unref(info);
    hmp = qtest_hmp(f->qts, "info appdep");
    g_assert(strstr(hmp, "inspection on, mechanism syscall-tcg"));
    g_assert(strstr(hmp, "mechanism chosen: forced by mechanism=syscall"));
    g_assert(strstr(hmp, "hook do_syscall_64"));
    g_free(hmp);

    /* not while armed; a function hook is not installed */
    assert_error(qtest_qmp(f->qts, "{'execute': 'qom-set', 'arguments': "
                           "{'path': '/objects/appdep0', 'property': "
                           "'mechanism', 'value': 'auto'}}"),
                 "disable inspection first");
    assert_error(test_event(f->qts, "send", SOCK4, 0, 1, PCPU_BASE),
                 "does not hook 'send'");
    qtest_qmp_assert_success(f->qts, "{'execute': 'x-appdep-inspect', "
                             "'arguments': {'enable': false}}");
    expect_inspect_event(f->qts, false, "command");

    set_mechanism(f->qts, "auto");
    qtest_qmp_assert_success(f->qts, ENABLE);
    expect_inspect_event(f->qts, true, "command");
    info = query(f->qts);
    g_assert_cmpstr(qdict_get_str(info, "mechanism"), ==, "tcg-translate");
    g_assert(strstr(qdict_get_str(info, "mechanism-reason"),
                    "translation-time"));
    g_assert_cmpint(qlist_size(qdict_get_qlist(info, "hooks")), ==, 3);
    qobject_unref(info);
    assert_error(syscall_event(f->qts, "syscall-enter", NR_WRITE, 3, 0, 1, 0),
                 "does not hook 'syscall-enter'");
}

/* A profile without the syscall layer cannot be forced to use it. */
static void test_mechanism_no_syscall(Fixture *f, gconstpointer data)
{
    write_fake_kernel(f->qts);
    write_banner(f->qts, BANNER "\n");
    set_lstar(f->qts, SYM_ENTRY + SLIDE);
    set_mechanism(f->qts, "syscall");
    assert_error(qtest_qmp(f->qts, ENABLE), "profile lacks");
}

static void test_syscall_records(Fixture *f, gconstpointer data)
{
    AppdepThreadRecord rec[4];
    QDict *r;

    write_fake_kernel(f->qts);
    write_fake_files(f->qts);
    write_banner(f->qts, BANNER "\n");
    set_lstar(f->qts, SYM_ENTRY + SLIDE);
    set_mechanism(f->qts, "syscall");
    qtest_qmp_assert_success(f->qts, ENABLE);
    expect_inspect_event(f->qts, true, "command");

    /* write(3, buf, 64) at the entry: write_seq before the data */
    r = syscall_ok(f->qts, "syscall-enter", NR_WRITE, 3, 0, 64, 0);
    g_assert_cmpstr(qdict_get_str(r, "op"), ==, "send");
    g_assert_cmpint(qdict_get_int(r, "tid"), ==, 1235);
    g_assert_cmpstr(qdict_get_str(r, "saddr"), ==, "10.0.0.1");
    g_assert_cmpint(qdict_get_int(r, "dport"), ==, 8080);
    g_assert_cmpint(qdict_get_int(r, "bytes"), ==, 64);
    g_assert_cmpint(qdict_get_int(r, "seq"), ==, 1000);
    qobject_unref(r);

    /* writev(3, iov, 2): the iovecs are read from user memory */
    r = syscall_ok(f->qts, "syscall-enter", NR_WRITEV, 3, USER_VA, 2, 0);
    g_assert_cmpint(qdict_get_int(r, "bytes"), ==, 32);
    qobject_unref(r);

    /* read(3, ...) = 100 at the return: copied_seq counts them */
    r = syscall_ok(f->qts, "syscall-exit", NR_READ, 3, 0, 4096, 100);
    g_assert_cmpstr(qdict_get_str(r, "op"), ==, "recv");
    g_assert_cmpint(qdict_get_int(r, "bytes"), ==, 100);
    g_assert_cmpint(qdict_get_int(r, "seq"), ==, 4964);
    qobject_unref(r);

    /* close(3), the last reference */
    r = syscall_ok(f->qts, "syscall-enter", NR_CLOSE, 3, 0, 0, 0);
    g_assert_cmpstr(qdict_get_str(r, "op"), ==, "close");
    qobject_unref(r);

    read_records(f, rec, 4);
    g_assert_cmpint(rec[0].op, ==, APPDEP_OP_SEND);
    g_assert_cmpint(rec[1].bytes, ==, 32);
    g_assert_cmpint(rec[2].op, ==, APPDEP_OP_RECV);
    g_assert_cmpint(rec[3].op, ==, APPDEP_OP_CLOSE);

    /* what is not a TCP send, receive or close gives no record */
    assert_error(syscall_event(f->qts, "syscall-enter", NR_OPEN, 3, 0, 0, 0),
                 "filtered");
    assert_error(syscall_event(f->qts, "syscall-enter", NR_READ, 3, 0, 0, 0),
                 "filtered");                       /* read: at the exit */
    assert_error(syscall_event(f->qts, "syscall-exit", NR_WRITE, 3, 0, 0, 5),
                 "filtered");                       /* write: at the entry */
    assert_error(syscall_event(f->qts, "syscall-exit", NR_READ, 3, 0, 0,
                               (uint64_t)-11), "filtered");  /* EAGAIN */
    assert_error(syscall_event(f->qts, "syscall-enter", NR_WRITE, 4, 0, 9, 0),
                 "filtered");                       /* a regular file */
    assert_error(syscall_event(f->qts, "syscall-enter", NR_WRITE, 5, 0, 9, 0),
                 "filtered");                       /* not open */
    assert_error(syscall_event(f->qts, "syscall-enter", NR_WRITE, 6, 0, 9, 0),
                 "filtered");                       /* UDP */
    assert_error(syscall_event(f->qts, "syscall-enter", NR_WRITE, 99, 0, 9,
                               0), "filtered");     /* >= max_fds */
    assert_error(syscall_event(f->qts, "syscall-enter", NR_WRITEV, 3,
                               0x7ff000000000ULL, 2, 0),
                 "filtered");                       /* unmapped iovec */
    /* close of one of two references: the connection stays open */
    qtest_writeq(f->qts, FILE_SOCK + 56, 2);
    assert_error(syscall_event(f->qts, "syscall-enter", NR_CLOSE, 3, 0, 0, 0),
                 "filtered");

    /* garbage: counted as bad guest memory, never trusted */
    assert_error(syscall_event(f->qts, "syscall-enter", NR_WRITE, 7, 0, 9, 0),
                 "bad guest memory: struct file is not readable");
    qtest_writeq(f->qts, TASK + 3048, 0xdead000000000000ULL);
    assert_error(syscall_event(f->qts, "syscall-enter", NR_WRITE, 3, 0, 9, 0),
                 "file table is not readable");
}

static void add_test_data(const char *name, const char *data,
                          void (*fn)(Fixture *, gconstpointer))
{
    g_autofree char *path = g_strdup_printf("/appdep/%s", name);

    g_test_add(path, Fixture, data, fixture_setup, fn, fixture_teardown);
}

static void add_test(const char *name,
                     void (*fn)(Fixture *, gconstpointer))
{
    add_test_data(name, NULL, fn);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    add_test("query-disarmed", test_query_disarmed);
    add_test("arm-errors", test_arm_errors);
    add_test("arm-disarm", test_arm_disarm);
    add_test("reset-disarms", test_reset_disarms);
    add_test("reset-rearms", test_reset_rearms);
    add_test("records", test_records);
    add_test_data("pcpu-hot", "pcpu_hot", test_pcpu_hot);
    add_test("garbage", test_garbage);
    add_test("consumer-gone", test_consumer_gone);
    add_test("bad-profiles", test_bad_profiles);
    add_test_data("mechanism", "syscall", test_mechanism);
    add_test("mechanism-no-syscall", test_mechanism_no_syscall);
    add_test_data("syscall-records", "syscall", test_syscall_records);
    return g_test_run();
}
