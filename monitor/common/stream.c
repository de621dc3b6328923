/*
 * appdep record streams: resynchronising decoder and JSON rendering.
 *
 * Copyright (c) 2026 appdep authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include <arpa/inet.h>
#include <sys/socket.h>
#include "stream.h"
#include "json-out.h"
#include "wire-status.h"

/*
 * Offset of the next plausible header in @buf after position 0, or the
 * number of bytes that can be dropped safely when there is none (a
 * header may start in the last bytes).
 */
static size_t resync(const uint8_t *buf, size_t len, bool eof)
{
    uint16_t type;
    uint32_t l;
    size_t i;

    for (i = 1; i + 4 <= len; i++) {
        int st;

        if (appdep_wire_get32(buf + i) != APPDEP_WIRE_MAGIC) {
            continue;
        }
        st = appdep_wire_check_header(buf + i, len - i, &type, &l);
        if (st == APPDEP_WIRE_OK || st == APPDEP_WIRE_BAD_TYPE ||
            st == APPDEP_WIRE_SHORT) {
            return i;
        }
    }
    if (eof || len < 4) {
        return len;
    }
    return len - 3;
}

int appdep_stream_next(const uint8_t *buf, size_t len, bool eof,
                       AppdepThreadRecord *rec, size_t *consumed,
                       const char **why)
{
    uint16_t type;
    uint32_t l;
    size_t used = 0;
    int st;

    *consumed = 0;
    if (!len) {
        return APPDEP_STREAM_NEED_MORE;
    }
    st = appdep_wire_check_header(buf, len, &type, &l);
    if (st == APPDEP_WIRE_SHORT ||
        ((st == APPDEP_WIRE_OK || st == APPDEP_WIRE_BAD_TYPE) && len < l)) {
        if (!eof) {
            return APPDEP_STREAM_NEED_MORE;
        }
        *why = "truncated record at end of stream";
        *consumed = len;
        return APPDEP_STREAM_SKIP;
    }
    if (st == APPDEP_WIRE_OK) {
        st = appdep_wire_decode_thread(buf, len, rec, &used);
        if (st == APPDEP_WIRE_OK) {
            *consumed = used;
            return APPDEP_STREAM_RECORD;
        }
    }
    if (st == APPDEP_WIRE_BAD_TYPE) {
        *why = appdep_wire_status_str(st);
        *consumed = l;
        return APPDEP_STREAM_SKIP;
    }
    /*
     * A bad field usually means this "record" is the head of a record cut
     * short followed by the next one: rescan rather than skip its length.
     */
    *why = appdep_wire_status_str(st);
    *consumed = resync(buf, len, eof);
    return APPDEP_STREAM_SKIP;
}

const char *appdep_addr_to_str(uint8_t family, const uint8_t *addr,
                               char *buf, size_t size)
{
    if (!inet_ntop(family == APPDEP_FAMILY_IPV6 ? AF_INET6 : AF_INET, addr,
                   buf, size)) {
        g_strlcpy(buf, "?", size);
    }
    return buf;
}

void appdep_record_to_json(const AppdepThreadRecord *r, GString *out)
{
    char s[APPDEP_ADDR_STR_LEN], d[APPDEP_ADDR_STR_LEN];

    g_string_append_printf(out, "{\"time_ns\":%" G_GUINT64_FORMAT ",\"vm\":",
                           r->time_ns);
    appdep_json_str(out, r->vm);
    g_string_append_printf(out, ",\"op\":\"%s\",\"pid\":%u,\"tid\":%u,"
                           "\"comm\":", appdep_wire_op_name(r->op),
                           r->pid, r->tid);
    appdep_json_str(out, r->comm);
    g_string_append_printf(out, ",\"family\":\"%s\",\"saddr\":\"%s\","
                           "\"sport\":%u,\"daddr\":\"%s\",\"dport\":%u,"
                           "\"bytes\":%" G_GUINT64_FORMAT ",\"seq\":%u}",
                           r->family == APPDEP_FAMILY_IPV6 ? "ipv6" : "ipv4",
                           appdep_addr_to_str(r->family, r->saddr, s,
                                              sizeof(s)),
                           r->sport,
                           appdep_addr_to_str(r->family, r->daddr, d,
                                              sizeof(d)),
                           r->dport, r->bytes, r->seq);
}
