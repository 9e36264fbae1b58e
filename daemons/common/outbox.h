/* libonegrid's durable outbox: an append-only file holding every event handed to the
 * publisher until its answer arrives, so that a publisher process that dies loses
 * nothing: the next one reads the file and sends what was unanswered again.
 *
 * Format: a sequence of records, each [u32 length of the rest][u32 CRC-32 of the rest]
 * [u8 kind][u64 token][payload]; kind 1 adds an event (payload: its bytes), kind 2 says
 * the event with that token was answered (no payload). Integers little-endian. A torn or
 * corrupt record can only be the last one written: reading stops there and the file is
 * cut back to the last good record. When most of the file is answered events, the live
 * ones are copied to a new file that replaces it (write, fsync, rename, fsync the dir).
 * Nothing here logs; the outbox owns the file and the copies it returns on open. */
#ifndef OG_OUTBOX_H
#define OG_OUTBOX_H

#include <stddef.h>
#include <stdint.h>

struct og_outbox;

/* Opens (creating) path, with live events limited to max_bytes of payload. For each
 * unanswered event in the file, calls each(token, data, len, arg) in the order they were
 * added. Returns NULL with err filled. */
struct og_outbox *og_outbox_open(const char *path, size_t max_bytes,
                                 void (*each)(uint64_t token, const uint8_t *data, size_t len,
                                              void *arg),
                                 void *arg, char *err, size_t errlen);
void og_outbox_close(struct og_outbox **ob);
/* Appends an event. Not yet durable: see og_outbox_sync. Returns 0, -ENOSPC when the
 * live events would exceed max_bytes, or -errno from write. */
int og_outbox_add(struct og_outbox *ob, uint64_t token, const void *data, size_t len);
/* Appends "answered" for token (compacting the file when it is mostly answered events). */
int og_outbox_done(struct og_outbox *ob, uint64_t token);
/* Makes every record appended so far durable (fdatasync), if any was. */
int og_outbox_sync(struct og_outbox *ob);
/* Bytes of live (unanswered) event payload. */
size_t og_outbox_live_bytes(const struct og_outbox *ob);

#endif
