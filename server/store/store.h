/*
 * appdep server: the log database of inter-thread records, on LMDB.
 *
 * One environment directory holds these named databases:
 *
 *   msg     key  send_ns (u64 BE) | uniq (u64 BE)           16 bytes
 *           val  the message, at most APPDEP_STORE_VALUE_MAX bytes
 *                (layout in store-codec.c: little-endian, versioned; names
 *                and IPv4 addresses take only their length, ~80 bytes)
 *   thread  key  bucket (u64 BE, send_ns >> 30) | vm | 0 | tid (u32 BE)
 *                                                         <= 77 bytes
 *           val  the sorted msg keys (16 bytes each) of the messages
 *                the thread sent or received with send_ns in that bucket
 *                (~1.07 s), one entry per end whose tid is not 0: "what
 *                did this thread send or receive in [t0, t1)" is one key
 *                per bucket of the range that has one
 *   threads key  vm | 0 | tid (u32 BE) -> empty: every thread indexed
 *                (kept when its messages expire)
 *   meta    "schema" -> u32 LE, "uniq" -> u64 LE (next uniq),
 *           "retention" -> u64 LE (seconds, as last opened with)
 *   rec     the per-thread records (appdep_store_put_records below)
 *
 * Big-endian keys make LMDB's memcmp order the numeric order; uniq, a
 * counter persisted in meta, keeps messages with the same send_ns apart.
 *
 * Errors: every function returning int returns a negative code on
 * failure: either -errno, or one of LMDB's own codes (MDB_MAP_FULL,
 * MDB_CORRUPTED, ... all negative and below -30000, so they never collide
 * with -errno).  appdep_store_strerror() turns either into text.  Scans
 * and put_batch return a non-negative count of the items they skipped as
 * invalid on success (0: none), so `ret < 0` is the error test.
 *
 * Threads: one writer thread (the server's event loop) calls open, close,
 * put_batch, expire and reader_check.  The query functions (range,
 * thread_range, count, stats) may be called from any number of other
 * threads at the same time (the environment is opened with MDB_NOTLS);
 * each runs its own short read transaction.  close must not race with
 * anything.
 *
 * Lifetime: nothing returned points into the map.  Query results are
 * copied into the caller's GArray before the read transaction ends.
 *
 * Copyright (c) 2026 appdep authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef APPDEP_STORE_H
#define APPDEP_STORE_H

#include <glib.h>
#include <stdint.h>
#include "convert.h"

#define APPDEP_STORE_SCHEMA             5
#define APPDEP_STORE_VALUE_VERSION      2       /* written; 1 is read too */
#define APPDEP_STORE_VALUE_MAX          256     /* encoded AppdepMessage */
#define APPDEP_STORE_MSG_KEY_LEN        16
#define APPDEP_STORE_THREAD_PREFIX_MAX  (APPDEP_WIRE_VM_LEN + 1 + 4)

/* Map sizes, readers, expiry chunk, grow retries: server-limits.h. */

/* How hard a commit pushes to disk; see mdb_env_open(3). */
typedef enum AppdepStoreSync {
    APPDEP_STORE_SYNC_DURABLE = 0,  /* fsync data and meta at every commit */
    APPDEP_STORE_SYNC_NOMETASYNC,   /* MDB_NOMETASYNC: the last commit may be
                                       lost by a crash, the database not */
    APPDEP_STORE_SYNC_NONE,         /* MDB_NOSYNC: the OS writes back; a
                                       crash may lose recent commits and,
                                       with a filesystem that reorders
                                       writes, corrupt the database */
} AppdepStoreSync;

typedef struct AppdepStoreOptions {
    uint64_t map_size;          /* initial map, bytes; 0: default */
    uint64_t max_map_size;      /* growth stops here, bytes; 0: default */
    uint64_t retention_s;       /* expire() deletes older; 0: keep forever */
    AppdepStoreSync sync;
} AppdepStoreOptions;

/* Counters since open; a snapshot, any thread. */
typedef struct AppdepStoreStats {
    uint64_t map_size;          /* current map size, bytes */
    uint64_t map_grows;         /* MDB_MAP_FULL -> grow -> retry */
    uint64_t committed;         /* messages committed by put_batch */
    uint64_t rejected;          /* messages put_batch refused as invalid */
    uint64_t corrupt;           /* stored items scans skipped as invalid */
    uint64_t expired;           /* messages deleted by expire */
    uint64_t stale_readers;     /* reader slots of dead processes cleared */
    uint64_t next_uniq;         /* next uniq to be assigned */
} AppdepStoreStats;

typedef struct AppdepStore AppdepStore;

/*
 * Open (creating @dir, mode 0700, and the databases if needed) the store
 * in @dir.  @opt may be NULL (all defaults).  Clears the reader slots of
 * dead processes (mdb_reader_check) before anything else.
 *
 * On success *@out is the new store (free with appdep_store_close) and 0
 * is returned.  Errors: -EINVAL (bad option), -errno from mkdir, LMDB's
 * codes from mdb_env_open and friends, -EPROTO when the directory holds a
 * store of a newer schema version.  Older schemas (1 to 4) are migrated
 * in the opening transaction: their thread index is rebuilt from msg
 * (their version 1 values are still read, not rewritten).  An
 * environment may be opened only once per process (LMDB's rule).
 * Writer thread.
 */
int appdep_store_open(AppdepStore **out, const char *dir,
                      const AppdepStoreOptions *opt);

/* Close @s; accepts NULL.  No other call on @s may be running. */
void appdep_store_close(AppdepStore *s);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(AppdepStore, appdep_store_close)

/*
 * Store @n messages in one write transaction.  Returns only after the
 * commit: on return >= 0 every valid message of the batch is committed
 * (and durable, unless the store was opened with a weaker sync mode).
 * Messages that fail appdep_store_message_valid() are skipped; the return
 * value is how many (stats.rejected counts them too).
 *
 * When the map is full the transaction is aborted, the map doubled (up to
 * max_map_size) and the batch retried.  Errors (nothing of the batch is
 * committed): MDB_MAP_FULL when the batch does not fit in max_map_size,
 * MDB_TXN_FULL when the batch is too large for one transaction,
 * MDB_KEYEXIST when the uniq counter in meta is behind the stored keys (a
 * damaged store), other LMDB codes, -EOVERFLOW when the uniq counter is
 * exhausted.  Keys are inserted in key order (messages in time order,
 * appended when not older than the newest stored one; thread keys
 * sorted), which is what makes large batches cheap.  Writer thread.
 */
int appdep_store_put_batch(AppdepStore *s, const AppdepMessage *msgs,
                           size_t n);

/*
 * Append to @out (a GArray of AppdepMessage, not cleared first) the
 * messages with t0 <= send_ns < t1, in (send_ns, arrival) order; stop after
 * @limit messages (0: no limit; when out grew by @limit there may be more:
 * ask again from the last send_ns, de-duplicating equal times).
 *
 * Stored values that fail to decode are skipped and counted; the return
 * value is that count.  Errors (@out is left as it was on entry): -EINVAL
 * (@out of another element size), LMDB codes.  Any thread.
 */
int appdep_store_range(AppdepStore *s, uint64_t t0, uint64_t t1,
                       GArray *out, size_t limit);

/*
 * Like appdep_store_range(), restricted to the messages that thread @tid
 * of VM @vm sent or received (as sender or receiver, by send_ns).  It
 * reads one index key per bucket of [t0, t1) that holds any (buckets
 * without keys are skipped, those with only other threads' keys cost a
 * seek each): an unbounded range over a long store costs a seek per
 * bucket after the thread's first.  An index entry whose message is
 * missing or undecodable is skipped and counted.
 * Errors: -EINVAL also when @vm is longer than APPDEP_WIRE_VM_LEN or @tid
 * is 0.  Any thread.
 */
int appdep_store_thread_range(AppdepStore *s, const char *vm, uint32_t tid,
                              uint64_t t0, uint64_t t1, GArray *out,
                              size_t limit);

/*
 * Append to @tids (a GArray of uint32_t, not cleared first) the thread
 * ids of VM @vm that were ever indexed (also those whose messages have
 * expired since), in ascending order.  0, -EINVAL (@tids of another element size, @vm NULL or longer
 * than APPDEP_WIRE_VM_LEN) or an LMDB code (@tids left as it was).  Any
 * thread.
 */
int appdep_store_vm_threads(AppdepStore *s, const char *vm, GArray *tids);

/* Number of messages stored, in *@n.  0 or LMDB code.  Any thread. */
int appdep_store_count(AppdepStore *s, uint64_t *n);

/*
 * Delete every message with send_ns < @now_ns - retention, and its thread
 * keys, in transactions of APPDEP_STORE_EXPIRE_CHUNK messages (readers
 * never see a half-deleted message).  No-op when the retention is 0.  A
 * value that no longer decodes is deleted too (its thread keys, which
 * cannot be found, stay behind: thread_range skips them).  Returns the
 * number of such undecodable values, or an LMDB code; chunks committed
 * before an error stay committed.  Writer thread.
 */
int appdep_store_expire(AppdepStore *s, uint64_t now_ns);

/*
 * Clear the reader slots of processes that died inside a read
 * transaction (mdb_reader_check), which otherwise keep old pages from
 * being reused and make the file grow.  *@dead (may be NULL) gets the
 * number cleared.  0 or LMDB code.  Call now and then; any thread.
 */
int appdep_store_reader_check(AppdepStore *s, int *dead);

/* Snapshot of the counters.  Any thread. */
void appdep_store_stats(AppdepStore *s, AppdepStoreStats *st);

/* Text for any code this module returns (static storage). */
const char *appdep_store_strerror(int err);

/*
 * The value codec, pure.  A message is valid when its direction and
 * family are known and its strings are terminated within their fields.
 * encode writes a valid @m in the current version and returns its length
 * (at most APPDEP_STORE_VALUE_MAX).  decode reads versions 1 and 2: it
 * checks the length against every field, the version, every enum, every
 * reserved byte and the canonical form of strings and addresses, and
 * returns 0 or -EBADMSG.
 */
bool appdep_store_message_valid(const AppdepMessage *m);
size_t appdep_store_encode(const AppdepMessage *m,
                           uint8_t buf[APPDEP_STORE_VALUE_MAX]);
int appdep_store_decode(const uint8_t *buf, size_t len, AppdepMessage *m);

/*
 * Per-thread records, as received from the forward daemons: the log the
 * inter-thread messages are derived from.
 *
 * appdep_store_put_records() commits @n records of batch @batch from
 * forward daemon @host in one transaction together with the new "last
 * batch of @host", so a batch replayed after a restart of either side is
 * recognised: returns 1 (nothing written) when @batch is not newer than
 * the last committed one, 0 when committed, or an error (nothing
 * committed).  Writer thread.
 *
 * appdep_store_put_record_batches() does the same for @nb batches (of
 * one or several daemons, in order) in one transaction: one commit and
 * one sync for all (group commit).  Each batch's @duplicate tells
 * whether it was skipped.  Returns 0 or an error (nothing committed).
 * Writer thread.
 *
 * appdep_store_records_range() copies the records with time_ns in
 * [t0, t1) into @out (GArray of AppdepThreadRecord), time order; returns
 * the number of corrupt items skipped, or an error.  Any thread.
 */
typedef struct AppdepStoreRecordBatch {
    const AppdepThreadRecord *recs;
    size_t n;
    const char *host;
    uint64_t batch;
    bool duplicate;             /* out */
} AppdepStoreRecordBatch;

int appdep_store_put_records(AppdepStore *s, const AppdepThreadRecord *recs,
                             size_t n, const char *host, uint64_t batch);
int appdep_store_put_record_batches(AppdepStore *s,
                                    AppdepStoreRecordBatch *b, size_t nb);
int appdep_store_last_batch(AppdepStore *s, const char *host,
                            uint64_t *batch);
int appdep_store_records_range(AppdepStore *s, uint64_t t0, uint64_t t1,
                               GArray *out, size_t limit);
int appdep_store_record_count(AppdepStore *s, uint64_t *n);

#endif /* APPDEP_STORE_H */
