/*
 * appdep: per-vCPU record rings
 *
 * One ring per vCPU, so each has exactly one producer (that vCPU's
 * thread) and one consumer (the main loop's drain timer): a
 * lock-free single-producer single-consumer queue of encoded records.
 * A full ring drops the new record; the vCPU never waits.
 *
 * Copyright (c) 2026 appdep authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/atomic.h"
#include "hw/appdep/appdep.h"

QEMU_BUILD_BUG_ON(APPDEP_RING_SLOTS & (APPDEP_RING_SLOTS - 1));

AppdepRing *appdep_ring_new(void)
{
    return g_new0(AppdepRing, 1);
}

/* vCPU thread (the ring's only producer).  False when full. */
bool appdep_ring_push(AppdepRing *r, const AppdepThreadRecord *rec)
{
    uint32_t head = r->head;
    uint32_t tail = qatomic_load_acquire(&r->tail);

    if (head - tail >= APPDEP_RING_SLOTS) {
        return false;
    }
    appdep_wire_encode_thread(rec, r->slot[head % APPDEP_RING_SLOTS]);
    qatomic_store_release(&r->head, head + 1);
    return true;
}

/*
 * Main loop (the ring's only consumer).  Copies up to @max records into
 * @buf (@max * APPDEP_WIRE_THREAD_LEN bytes) and returns how many.
 */
unsigned appdep_ring_pop(AppdepRing *r, uint8_t *buf, unsigned max)
{
    uint32_t tail = r->tail;
    uint32_t head = qatomic_load_acquire(&r->head);
    unsigned n = 0;

    while (tail != head && n < max) {
        memcpy(buf + n * APPDEP_WIRE_THREAD_LEN,
               r->slot[tail % APPDEP_RING_SLOTS], APPDEP_WIRE_THREAD_LEN);
        tail++;
        n++;
    }
    qatomic_store_release(&r->tail, tail);
    return n;
}
