/*
 * appdep-fwd: the server's COMMANDs and the VMs' inspection state.
 *
 * Each VM's QMP socket (qmp.c) tells whether its appdep object inspects
 * (x-query-appdep at connect, APPDEP_INSPECT events after); the state is
 * the "enabled" flag of the VM's HELLO entry, and a HELLO goes out on
 * every change.  A COMMAND (inspect on/off) becomes x-appdep-inspect on
 * that VM's QMP socket; its outcome goes back as a RESULT, if the server
 * connection it came on is still up.
 *
 * Main-loop thread only.
 *
 * Copyright (c) 2026 appdep authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include <errno.h>
#include <inttypes.h>
#include "fwd.h"

static void fwd_vm_set_enabled(FwdVm *vm, bool enabled, const char *why)
{
    if (vm->inv.enabled == enabled) {
        return;
    }
    vm->inv.enabled = enabled;
    appdep_log(APPDEP_LOG_INFO, "vm %s: inspection %s (%s)", vm->name,
               enabled ? "on" : "off", why);
    fwd_send_hello(vm->fwd);
}

static void fwd_qmp_event(const char *event, JsonObject *data, void *opaque)
{
    FwdVm *vm = opaque;
    JsonNode *n;

    if (strcmp(event, "APPDEP_INSPECT") || !data) {
        return;
    }
    n = json_object_get_member(data, "enabled");
    if (n && JSON_NODE_TYPE(n) == JSON_NODE_VALUE &&
        json_node_get_value_type(n) == G_TYPE_BOOLEAN) {
        fwd_vm_set_enabled(vm, json_node_get_boolean(n), "APPDEP_INSPECT");
    }
}

static void fwd_query_reply(int status, const char *error, JsonNode *ret,
                            void *opaque)
{
    FwdVm *vm = opaque;
    JsonObject *o;
    JsonNode *n;

    if (status == -ECANCELED) {
        return;
    }
    if (status < 0 || JSON_NODE_TYPE(ret) != JSON_NODE_OBJECT) {
        /* no appdep object, or an older QEMU: nothing to inspect */
        fwd_vm_set_enabled(vm, false, "x-query-appdep failed");
        return;
    }
    o = json_node_get_object(ret);
    n = json_object_get_member(o, "enabled");
    if (n && JSON_NODE_TYPE(n) == JSON_NODE_VALUE &&
        json_node_get_value_type(n) == G_TYPE_BOOLEAN) {
        fwd_vm_set_enabled(vm, json_node_get_boolean(n), "x-query-appdep");
    }
}

static void fwd_qmp_state(bool ready, int status, const char *why,
                          void *opaque)
{
    FwdVm *vm = opaque;

    if (ready) {
        g_clear_pointer(&vm->qmp_last_why, g_free);
        appdep_log(APPDEP_LOG_INFO, "vm %s: QMP connected", vm->name);
        appdep_qmp_execute(vm->qmp, "x-query-appdep", NULL, fwd_query_reply,
                           vm);
        return;
    }
    if (status == -ECANCELED) {
        return;
    }
    /* a QEMU that stays away is reported once, not at every retry */
    if (!vm->qmp_last_why || strcmp(vm->qmp_last_why, why)) {
        g_autofree char *text = appdep_log_escape(why);

        appdep_log(APPDEP_LOG_WARN, "vm %s: QMP: %s", vm->name, text);
        g_free(vm->qmp_last_why);
        vm->qmp_last_why = g_strdup(why);
    }
    fwd_vm_set_enabled(vm, false, "QMP connection lost");
}

void fwd_vm_start_qmp(FwdVm *vm)
{
    vm->qmp = appdep_qmp_new(vm->qmp_path, fwd_qmp_event, fwd_qmp_state, vm);
}

static void fwd_send_result(Fwd *f, unsigned gen, uint64_t id, int status,
                            const char *msg)
{
    AppdepFrameResult r = { .id = id, .status = status };
    uint8_t buf[APPDEP_FRAME_RESULT_LEN];
    int len;

    g_strlcpy(r.message, msg ? msg : "", sizeof(r.message));
    if (gen != f->gen || !fwd_connected(f)) {
        appdep_log(APPDEP_LOG_WARN, "command %" PRIu64 ": server connection "
                   "gone, result lost", id);
        return;
    }
    len = appdep_frame_encode_result(&r, buf, sizeof(buf));
    g_assert(len > 0);
    fwd_push_ctrl(f, buf, len);
}

static void fwd_command_reply(int status, const char *error, JsonNode *ret,
                              void *opaque)
{
    g_autofree FwdCmd *cmd = opaque;
    g_autofree char *text = appdep_log_escape(error);
    Fwd *f = cmd->fwd;

    appdep_log(APPDEP_LOG_INFO, "command %" PRIu64 ": vm %s inspect %s: %s%s",
               cmd->id, cmd->vm->name,
               cmd->op == APPDEP_CMD_INSPECT_ON ? "on" : "off",
               status ? "failed: " : "done", text);
    if (!status) {
        fwd_vm_set_enabled(cmd->vm, cmd->op == APPDEP_CMD_INSPECT_ON,
                           "command");
    }
    if (status != -ECANCELED) {
        fwd_send_result(f, cmd->gen, cmd->id, status, error);
    }
}

void fwd_command(Fwd *f, const AppdepFrameCommand *c)
{
    g_autofree char *name = appdep_log_escape(c->vm);
    g_autofree char *msg = NULL;
    JsonObject *args;
    FwdCmd *cmd;
    guint i;

    f->commands++;
    for (i = 0; i < f->vms->len; i++) {
        FwdVm *vm = f->vms->pdata[i];

        if (!strcmp(vm->name, c->vm)) {
            cmd = g_new0(FwdCmd, 1);
            cmd->fwd = f;
            cmd->gen = f->gen;
            cmd->id = c->id;
            cmd->op = c->op;
            cmd->vm = vm;
            args = json_object_new();
            json_object_set_boolean_member(args, "enable",
                                           c->op == APPDEP_CMD_INSPECT_ON);
            appdep_qmp_execute(vm->qmp, "x-appdep-inspect", args,
                               fwd_command_reply, cmd);
            return;
        }
    }
    appdep_log(APPDEP_LOG_INFO, "command %" PRIu64 ": no VM '%s' on this host",
               c->id, name);
    msg = g_strdup_printf("no VM '%s' on host %s", c->vm, f->host);
    fwd_send_result(f, f->gen, c->id, -ENOENT, msg);
}
