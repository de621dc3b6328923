/*
 * appdep: hypervisor-level tracing of guest TCP threads
 *
 *   -object appdep,id=ID,chardev=CHR,profile=PATH[,vm=NAME][,rearm=on]
 *
 * A user-creatable object, invisible to the guest.  When armed (QMP
 * x-appdep-inspect, HMP "appdep on") it hooks the guest kernel's
 * tcp_sendmsg, tcp_cleanup_rbuf and tcp_close (or, when those do not fit
 * in KVM's debug registers, the system-call layer: appdep-choice.h),
 * reads the current thread and the connection from guest memory at each
 * hit, and streams one fixed-size record per event
 * (hw/appdep/appdep-wire.h) to the chardev.
 *
 * Threads: vCPU threads fill per-vCPU rings (appdep_hook_fire(),
 * appdep-hook.c); a main-loop timer, here, drains the rings to the
 * chardev with non-blocking writes.  A slow or absent consumer costs
 * records (counted), never guest time.
 *
 * Copyright (c) 2026 appdep authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qapi/qapi-events-appdep.h"
#include "qemu/cutils.h"
#include "qemu/timer.h"
#include "qemu/uuid.h"
#include "qom/object_interfaces.h"
#include "chardev/char.h"
#include "hw/boards.h"
#include "hw/core/cpu.h"
#include "system/reset.h"
#include "system/system.h"
#include "system/tcg.h"
#include "system/kvm.h"
#include "system/qtest.h"
#include "system/hw_accel.h"
#include "target/i386/cpu.h"
#include "hw/appdep/appdep.h"
#include "hw/appdep/appdep-choice.h"
#include "trace.h"

/*
 * The armed object, if any: the hook providers keep one hook set for the
 * whole VM, so one object at a time may inspect it.  (The providers reach
 * the run through their own hook set, not through this pointer.)  BQL.
 */
static AppdepState *appdep_armed_state;

static const char *appdep_id(AppdepState *s)
{
    return object_get_canonical_path_component(OBJECT(s));
}

AppdepState *appdep_find(const char *id, Error **errp)
{
    Object *obj;
    bool ambiguous = false;

    if (id) {
        obj = object_resolve_path_component(object_get_objects_root(), id);
        if (!obj || !object_dynamic_cast(obj, TYPE_APPDEP)) {
            error_setg(errp, "no appdep object with id '%s'", id);
            return NULL;
        }
        return APPDEP(obj);
    }
    obj = object_resolve_path_type("", TYPE_APPDEP, &ambiguous);
    if (!obj) {
        error_setg(errp, ambiguous ?
                   "there are several appdep objects: give 'id'" :
                   "there is no appdep object (add -object appdep,...)");
        return NULL;
    }
    return APPDEP(obj);
}

/* ---- output --------------------------------------------------------- */

static void appdep_drain_timer_arm(AppdepState *s);

/*
 * Give every vCPU a ring: those present when arming, and those
 * hot-plugged since (their first events, until the next drain, count as
 * ring-full drops).  Main loop, BQL.
 */
static void appdep_add_rings(AppdepRun *run)
{
    CPUState *cs;

    CPU_FOREACH(cs) {
        if (cs->cpu_index < run->nrings && !run->rings[cs->cpu_index]) {
            qatomic_store_release(&run->rings[cs->cpu_index],
                                  appdep_ring_new());
        }
    }
}

/*
 * Move records from the rings to the chardev.  Main loop, BQL.  Writes
 * are non-blocking: what the peer does not take stays pending, and the
 * rings fill up (and drop, counted) behind it.
 */
static void appdep_drain(void *opaque)
{
    AppdepState *s = opaque;
    AppdepRun *run = s->run;
    unsigned i, room, n, moved = 0;
    guint old;
    int w;

    if (qatomic_read(&run->armed)) {
        appdep_add_rings(run);
    }
    for (i = 0; i < run->nrings; i++) {
        if (!run->rings[i]) {
            continue;
        }
        room = (APPDEP_MAX_PENDING - s->pending->len) /
               APPDEP_WIRE_THREAD_LEN;
        if (!room) {
            break;
        }
        old = s->pending->len;
        g_byte_array_set_size(s->pending,
                              old + room * APPDEP_WIRE_THREAD_LEN);
        n = appdep_ring_pop(run->rings[i], s->pending->data + old, room);
        g_byte_array_set_size(s->pending, old + n * APPDEP_WIRE_THREAD_LEN);
        moved += n;
    }
    if (s->pending->len && !qemu_chr_fe_backend_open(&s->chr)) {
        /* nobody listens: a partly written record counts as lost */
        s->drop_no_consumer += DIV_ROUND_UP(s->pending->len,
                                            APPDEP_WIRE_THREAD_LEN);
        g_byte_array_set_size(s->pending, 0);
        /* the next consumer starts at a record boundary */
        s->written_bytes -= s->written_bytes % APPDEP_WIRE_THREAD_LEN;
    }
    if (s->pending->len) {
        w = qemu_chr_fe_write(&s->chr, s->pending->data, s->pending->len);
        trace_appdep_drain(moved, w);
        if (w > 0) {
            s->written_bytes += w;
            s->emitted = s->written_bytes / APPDEP_WIRE_THREAD_LEN;
            g_byte_array_remove_range(s->pending, 0, w);
        }
    }
    if (qatomic_read(&run->armed) || s->pending->len || moved) {
        appdep_drain_timer_arm(s);
    }
}

static void appdep_drain_timer_arm(AppdepState *s)
{
    timer_mod(s->drain_timer,
              qemu_clock_get_ms(QEMU_CLOCK_REALTIME) + APPDEP_DRAIN_MS);
}

/* ---- arming --------------------------------------------------------- */

static void appdep_emit(AppdepState *s, bool enabled,
                        AppdepInspectReason reason)
{
    qapi_event_send_appdep_inspect(appdep_id(s), s->run->vm, enabled,
                                   reason);
}

/*
 * Choose the mechanism (appdep-choice.c) and the hooks it needs.  Under
 * qtest nothing is hooked (x-appdep-test-event plays the hits), but the
 * choice is made as under TCG so that it can be tested.
 */
static bool appdep_choose_mechanism(AppdepState *s, bool hooked[],
                                    const AppdepHookProvider **prov,
                                    Error **errp)
{
    static const AppdepForce force[] = {
        [APPDEP_MECHANISM_CHOICE_AUTO] = APPDEP_FORCE_AUTO,
        [APPDEP_MECHANISM_CHOICE_TCG_TRANSLATE] = APPDEP_FORCE_TCG_TRANSLATE,
        [APPDEP_MECHANISM_CHOICE_KVM_DEBUGREG] = APPDEP_FORCE_KVM_DEBUGREG,
        [APPDEP_MECHANISM_CHOICE_SYSCALL] = APPDEP_FORCE_SYSCALL,
    };
    AppdepChoiceInput in = {
        .accel = APPDEP_ACCEL_OTHER,
        .force = force[s->force],
        .functions = APPDEP_FUNCTION_HOOKS,
        .syscall_points = APPDEP_SYSCALL_HOOKS,
        .syscall_available = s->run->profile.has_syscall,
    };
    AppdepChoice c;
    char err[APPDEP_CHOICE_TEXT_LEN];
    unsigned i;

    *prov = NULL;
    if (tcg_enabled() || qtest_enabled()) {
        in.accel = APPDEP_ACCEL_TCG;
        *prov = tcg_enabled() ? appdep_tcg_provider() : NULL;
    } else if (kvm_enabled()) {
        in.accel = APPDEP_ACCEL_KVM;
        in.debugregs = appdep_kvm_free_debugregs();
        *prov = appdep_kvm_provider();
    }
    if (!appdep_choose(&in, &c, err, sizeof(err))) {
        error_setg(errp, "%s", err);
        return false;
    }
    for (i = 0; i < APPDEP_HOOK_COUNT; i++) {
        hooked[i] = appdep_hook_is_syscall(i) == c.syscall_layer;
    }
    if (c.syscall_layer) {
        s->mechanism = c.debugregs ? APPDEP_MECHANISM_SYSCALL_KVM
                                   : APPDEP_MECHANISM_SYSCALL_TCG;
    } else {
        s->mechanism = c.debugregs ? APPDEP_MECHANISM_KVM_DEBUGREG
                                   : APPDEP_MECHANISM_TCG_TRANSLATE;
    }
    g_free(s->mechanism_reason);
    s->mechanism_reason = g_strdup(c.reason);
    return true;
}

bool appdep_arm(AppdepState *s, AppdepInspectReason reason, Error **errp)
{
    AppdepRun *run = s->run;
    const AppdepHookProvider *prov = NULL;
    AppdepKernel kernel;
    bool hooked[APPDEP_HOOK_COUNT];
    uint64_t addr[APPDEP_HOOK_COUNT];
    CPUState *cs;
    uint64_t lstar;
    unsigned i;

    if (qatomic_read(&run->armed)) {
        error_setg(errp, "inspection is already enabled");
        return false;
    }
    if (appdep_armed_state) {
        error_setg(errp, "appdep object '%s' already inspects this VM",
                   appdep_id(appdep_armed_state));
        return false;
    }
    cs = first_cpu;
    if (!cs) {
        error_setg(errp, "the machine has no CPU");
        return false;
    }
    if (!appdep_choose_mechanism(s, hooked, &prov, errp)) {
        s->mechanism = APPDEP_MECHANISM_NONE;
        return false;
    }
    /* KVM keeps the registers in the kernel: fetch them once, here. */
    cpu_synchronize_state(cs);
    lstar = X86_CPU(cs)->env.lstar;
    if (qtest_enabled() && s->x_lstar) {
        lstar = s->x_lstar;
    }
    if (!appdep_linux_probe(&run->profile, cs, lstar, &kernel, errp)) {
        s->mechanism = APPDEP_MECHANISM_NONE;
        return false;
    }
    run->kernel = kernel;
    for (i = 0; i < APPDEP_HOOK_COUNT; i++) {
        run->hooked[i] = hooked[i];
        addr[i] = hooked[i] ? kernel.hook_addr[i] : 0;
    }

    appdep_add_rings(run);
    if (prov && !prov->arm(s, addr, errp)) {
        s->mechanism = APPDEP_MECHANISM_NONE;
        return false;
    }
    s->provider = prov;
    appdep_armed_state = s;
    qatomic_set(&run->armed, true);
    timer_del(s->rearm_timer);
    appdep_drain_timer_arm(s);
    trace_appdep_arm(appdep_id(s), kernel.slide, kernel.page_offset_base);
    appdep_emit(s, true, reason);
    return true;
}

bool appdep_disarm(AppdepState *s, AppdepInspectReason reason, Error **errp)
{
    const AppdepHookProvider *prov = s->provider;

    if (!qatomic_read(&s->run->armed)) {
        if (timer_pending(s->rearm_timer)) {
            /* disarming also cancels a pending automatic re-arm */
            timer_del(s->rearm_timer);
            return true;
        }
        error_setg(errp, "inspection is not enabled");
        return false;
    }
    qatomic_set(&s->run->armed, false);
    if (prov) {
        prov->disarm(s);
    }
    s->provider = NULL;
    s->mechanism = APPDEP_MECHANISM_NONE;
    appdep_armed_state = NULL;
    trace_appdep_disarm(appdep_id(s), AppdepInspectReason_str(reason));
    appdep_emit(s, false, reason);
    /* the drain timer keeps running until the rings are empty */
    return true;
}

static void appdep_rearm_tick(void *opaque)
{
    AppdepState *s = opaque;
    Error *err = NULL;

    if (!appdep_arm(s, APPDEP_INSPECT_REASON_REARM, &err)) {
        error_free(err);
        timer_mod(s->rearm_timer,
                  qemu_clock_get_ms(QEMU_CLOCK_REALTIME) + APPDEP_REARM_MS);
    }
}

/*
 * A guest reset: the next kernel boots with a new KASLR slide, so the
 * hooks are stale.  Main loop, BQL, vCPUs stopped.
 */
static void appdep_reset(void *opaque)
{
    AppdepState *s = opaque;

    if (!qatomic_read(&s->run->armed)) {
        return;
    }
    appdep_disarm(s, APPDEP_INSPECT_REASON_GUEST_RESET, &error_abort);
    if (s->rearm) {
        timer_mod(s->rearm_timer,
                  qemu_clock_get_ms(QEMU_CLOCK_REALTIME) + APPDEP_REARM_MS);
    }
}

AppdepInfo *appdep_info(AppdepState *s)
{
    AppdepRun *run = s->run;
    AppdepInfo *info = g_new0(AppdepInfo, 1);
    bool armed = qatomic_read(&run->armed);
    unsigned i;

    info->id = g_strdup(appdep_id(s));
    info->vm = g_strdup(run->vm);
    info->enabled = armed;
    info->mechanism = s->mechanism;
    if (armed) {
        info->mechanism_reason = g_strdup(s->mechanism_reason);
    }
    info->profile_banner = g_strdup(run->profile.banner);
    if (armed) {
        info->banner = g_strdup(run->kernel.banner);
        info->has_kaslr_slide = true;
        info->kaslr_slide = run->kernel.slide;
        for (i = APPDEP_HOOK_COUNT; i-- > 0;) {
            AppdepHookInfo *h;

            if (!run->hooked[i]) {
                continue;
            }
            h = g_new0(AppdepHookInfo, 1);

            h->function = g_strdup(appdep_hook_symbol(&run->profile, i));
            h->address = run->kernel.hook_addr[i];
            h->hits = qatomic_read(&run->hits[i]);
            QAPI_LIST_PREPEND(info->hooks, h);
        }
    }
    info->records_emitted = s->emitted;
    info->records_filtered = qatomic_read(&run->filtered);
    info->hook_ns = qatomic_read(&run->hook_ns);
    info->drops = g_new0(AppdepDrops, 1);
    info->drops->ring_full = qatomic_read(&run->drop_ring_full);
    info->drops->bad_guest_memory = qatomic_read(&run->drop_bad_memory);
    info->drops->no_consumer = s->drop_no_consumer;
    info->records_dropped = info->drops->ring_full +
                            info->drops->bad_guest_memory +
                            info->drops->no_consumer;
    return info;
}

/* ---- object --------------------------------------------------------- */

static void appdep_complete(UserCreatable *uc, Error **errp)
{
    AppdepState *s = APPDEP(uc);
    AppdepRun *run;
    Chardev *chr;
    MachineState *ms = MACHINE(qdev_get_machine());
    g_autofree char *vm = NULL;

    if (!s->chardev_id || !s->profile_path) {
        error_setg(errp, "appdep: 'chardev' and 'profile' are required");
        return;
    }
    chr = qemu_chr_find(s->chardev_id);
    if (!chr) {
        error_setg(errp, "appdep: chardev '%s' not found", s->chardev_id);
        return;
    }
    if (s->vm) {
        vm = g_strdup(s->vm);
    } else if (qemu_name) {
        vm = g_strdup(qemu_name);
    } else if (qemu_uuid_set) {
        vm = qemu_uuid_unparse_strdup(&qemu_uuid);
    } else {
        vm = g_strdup_printf("qemu-%d", (int)getpid());
    }
    if (!*vm || strlen(vm) > APPDEP_WIRE_VM_LEN) {
        error_setg(errp, "appdep: vm id must be 1 to %d bytes",
                   APPDEP_WIRE_VM_LEN);
        return;
    }

    run = g_new0(AppdepRun, 1);
    if (!appdep_profile_load(&run->profile, s->profile_path, errp)) {
        g_free(run);
        return;
    }
    if (!qemu_chr_fe_init(&s->chr, chr, errp)) {
        appdep_profile_clear(&run->profile);
        g_free(run);
        return;
    }
    pstrcpy(run->vm, sizeof(run->vm), vm);
    run->nrings = ms->smp.max_cpus;
    run->rings = g_new0(AppdepRing *, run->nrings);
    s->run = run;
    s->pending = g_byte_array_new();
    s->drain_timer = timer_new_ms(QEMU_CLOCK_REALTIME, appdep_drain, s);
    s->rearm_timer = timer_new_ms(QEMU_CLOCK_REALTIME, appdep_rearm_tick, s);
    qemu_register_reset(appdep_reset, s);
}

static bool appdep_can_be_deleted(UserCreatable *uc)
{
    AppdepState *s = APPDEP(uc);

    return !s->run || !qatomic_read(&s->run->armed);
}

static void appdep_run_free(AppdepRun *run)
{
    unsigned i;

    for (i = 0; i < run->nrings; i++) {
        g_free(run->rings[i]);
    }
    g_free(run->rings);
    appdep_profile_clear(&run->profile);
    g_free(run);
}

static void appdep_finalize(Object *obj)
{
    AppdepState *s = APPDEP(obj);

    if (s->run) {
        qemu_unregister_reset(appdep_reset, s);
        timer_free(s->drain_timer);
        timer_free(s->rearm_timer);
        qemu_chr_fe_deinit(&s->chr, false);
        g_byte_array_free(s->pending, true);
        /*
         * A vCPU may still be inside a hook: free after a grace period.
         * This is enough because inspection is off (can_be_deleted) and
         * the providers unpublish their hook set, the only way a vCPU
         * reaches the run, synchronously in disarm: a hook that starts
         * now cannot find the run any more.
         */
        call_rcu(s->run, appdep_run_free, rcu);
    }
    g_free(s->mechanism_reason);
    g_free(s->chardev_id);
    g_free(s->profile_path);
    g_free(s->vm);
}

#define APPDEP_STR_PROP(field)                                          \
    static char *appdep_get_##field(Object *obj, Error **errp)          \
    {                                                                   \
        return g_strdup(APPDEP(obj)->field);                            \
    }                                                                   \
    static void appdep_set_##field(Object *obj, const char *v,          \
                                   Error **errp)                        \
    {                                                                   \
        AppdepState *s = APPDEP(obj);                                   \
                                                                        \
        if (s->run) {                                                   \
            error_setg(errp, "cannot change this property of a "        \
                       "created appdep object");                        \
            return;                                                     \
        }                                                               \
        g_free(s->field);                                               \
        s->field = g_strdup(v);                                         \
    }

APPDEP_STR_PROP(chardev_id)
APPDEP_STR_PROP(profile_path)
APPDEP_STR_PROP(vm)

static bool appdep_get_rearm(Object *obj, Error **errp)
{
    return APPDEP(obj)->rearm;
}

static void appdep_set_rearm(Object *obj, bool v, Error **errp)
{
    APPDEP(obj)->rearm = v;
}

static int appdep_get_mechanism(Object *obj, Error **errp)
{
    return APPDEP(obj)->force;
}

static void appdep_set_mechanism(Object *obj, int v, Error **errp)
{
    AppdepState *s = APPDEP(obj);

    if (s->run && qatomic_read(&s->run->armed)) {
        error_setg(errp, "cannot change the mechanism while inspecting: "
                   "disable inspection first");
        return;
    }
    s->force = v;
}

static void appdep_instance_init(Object *obj)
{
    AppdepState *s = APPDEP(obj);

    /*
     * For qtests only: the fake guest of tests/qtest/appdep-test.c never
     * sets MSR_LSTAR, so the test gives its value.  Read only under qtest
     * (appdep_arm()); the x- prefix says it is not a stable interface.
     */
    object_property_add_uint64_ptr(obj, "x-lstar", &s->x_lstar,
                                   OBJ_PROP_FLAG_READWRITE);
}

static void appdep_class_init(ObjectClass *oc, void *data)
{
    UserCreatableClass *ucc = USER_CREATABLE_CLASS(oc);

    ucc->complete = appdep_complete;
    ucc->can_be_deleted = appdep_can_be_deleted;
    object_class_property_add_str(oc, "chardev", appdep_get_chardev_id,
                                  appdep_set_chardev_id);
    object_class_property_set_description(oc, "chardev",
        "chardev that receives the record stream");
    object_class_property_add_str(oc, "profile", appdep_get_profile_path,
                                  appdep_set_profile_path);
    object_class_property_set_description(oc, "profile",
        "kernel profile (JSON) made by appdep-profile");
    object_class_property_add_str(oc, "vm", appdep_get_vm, appdep_set_vm);
    object_class_property_set_description(oc, "vm",
        "VM id in records (default: -name, else -uuid)");
    object_class_property_add_bool(oc, "rearm", appdep_get_rearm,
                                   appdep_set_rearm);
    object_class_property_set_description(oc, "rearm",
        "re-arm automatically after a guest reset");
    object_class_property_add_enum(oc, "mechanism", "AppdepMechanismChoice",
                                   &AppdepMechanismChoice_lookup,
                                   appdep_get_mechanism,
                                   appdep_set_mechanism);
    object_class_property_set_description(oc, "mechanism",
        "how to hook the guest kernel: auto (default), tcg-translate, "
        "kvm-debugreg or syscall (forced, for testing)");
}

static const TypeInfo appdep_info_type = {
    .name = TYPE_APPDEP,
    .parent = TYPE_OBJECT,
    .instance_size = sizeof(AppdepState),
    .instance_init = appdep_instance_init,
    .instance_finalize = appdep_finalize,
    .class_init = appdep_class_init,
    .interfaces = (InterfaceInfo[]) {
        { TYPE_USER_CREATABLE },
        { }
    },
};

static void appdep_register_types(void)
{
    type_register_static(&appdep_info_type);
}

type_init(appdep_register_types)
