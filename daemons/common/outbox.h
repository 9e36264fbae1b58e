/* libonegrid's durable outbox: an append-only file holding every event handed to the
 * publisher until its answer arrives, so that a publisher process that dies loses
 * nothing: the next one reads the file and sends what was unanswered again.
 *
 * Format: a sequence of records, each [u32 length of the rest][u32 CRC-32 of the rest]
 * [u8 kind][u64 token][payload]; kind 1 adds an event (payload: its bytes), kind 2 says
 * the event with that token was answered (no payload). Integers little-endian.
 *
 * Reading: a bad record (length out of range, or CRC mismatch) with no good record after
 * it is the one a dying process was writing: it is cut off without a word. A bad record
 * with good records after it is damage: reading skips to the next good record, counts
 * what it skipped (struct og_outbox_stats), keeps the original file as PATH.corrupt and
 * rewrites the outbox without the damage.
 *
 * When most of the file is answered events, the live ones are copied to PATH.tmp (created
 * O_EXCL|O_NOFOLLOW), which is fsynced, renamed over PATH and its directory fsynced; only
 * then does the outbox use the new file and the new offsets. One process at a time: open
 * takes an exclusive flock on the file and fails when another holds it.
 *
 * Nothing here logs; the outbox owns the file and the copies it returns on open. */
#ifndef OG_OUTBOX_H
#define OG_OUTBOX_H

#include <stddef.h>
#include <stdint.h>

struct og_outbox;

/* What opening found, for the caller to report. */
struct og_outbox_stats {
    size_t events;          /* unanswered events handed back */
    size_t corrupt_records; /* damaged records skipped (a stretch of damaged bytes counts as
                             * one): each was an event now lost or an answer forgotten (that
                             * event is sent again and answered "duplicate") */
    uint64_t corrupt_bytes; /* bytes they took */
    uint64_t torn_bytes;    /* cut off the end: a record a dying process was writing */
    int keep_error;         /* 0, or -errno when the damaged original could not be kept
                             * aside and the outbox rewritten: it is then left as it is,
                             * and the next open skips the damage again */
    char kept_as[4096];     /* where the damaged original was kept; "" when not */
};

/* Opens (creating) path, with live events limited to max_bytes of payload. For each
 * unanswered event in the file, calls each(token, data, len, arg) in the order they were
 * added. stats (may be NULL) is filled on success. Returns NULL with err filled, also
 * when another process (or another og_outbox_open in this one) has the file open:
 * "outbox \"PATH\" is in use by another process". */
struct og_outbox *
og_outbox_open(const char *path, size_t max_bytes,
               void (*each)(uint64_t token, const uint8_t *data, size_t len, void *arg), void *arg,
               struct og_outbox_stats *stats, char *err, size_t errlen);
void og_outbox_close(struct og_outbox **ob);
/* Appends an event. Not yet durable: see og_outbox_sync. Returns 0, -ENOBUFS when the
 * live events would exceed max_bytes (answers make room), -EMSGSIZE when the event alone
 * would, or -errno from write: -ENOSPC or -EDQUOT when the file system is full. On
 * failure nothing was added. */
int og_outbox_add(struct og_outbox *ob, uint64_t token, const void *data, size_t len);
/* Records that token was answered, and compacts the file when it is mostly answered
 * events. The event is forgotten in any case; -errno says the record could not be written
 * (should the process die before the next compaction, the event is sent again and
 * answered "duplicate") or the compaction failed (the file stays as it was; retried after
 * some more answers). */
int og_outbox_done(struct og_outbox *ob, uint64_t token);
/* Rewrites the file with the live events only. On failure (-errno) the outbox and its file
 * are as they were, except when only the final fsync of the directory failed: the new file
 * is in use then, and og_outbox_sync retries that fsync. */
int og_outbox_compact(struct og_outbox *ob);
/* Makes every record appended so far durable (fdatasync), if any was. */
int og_outbox_sync(struct og_outbox *ob);
/* Bytes of live (unanswered) event payload. */
size_t og_outbox_live_bytes(const struct og_outbox *ob);

#endif
