/* onegrid-archive: receives dispatch's records over the reliable link, writes them to
 * PostgreSQL in batches (one transaction each, synchronous_commit on, idempotent on the
 * event key), and answers each record only after its batch committed.
 *
 * store.c    one batch into PostgreSQL: pipelined calls of the og.store_* functions
 * archive.c  the engine: collecting batches, fencing, outages, answering
 * main.c     arguments, configuration, sockets, readiness */
#ifndef OG_ARCHIVE_H
#define OG_ARCHIVE_H

#include <stddef.h>
#include <stdint.h>

#include "link.h"
#include "onegrid/v1/internal.pb-c.h"

/* store.c */

struct og_store;

/* One record of a batch: the frame in, the reply out (owned by the item after a commit;
 * free with og_store_item_clear). */
struct og_store_item {
    Onegrid__V1__Frame *frame;
    Onegrid__V1__Reply *reply;
};

struct og_store *og_store_new(const char *conninfo, const char *name);
void og_store_destroy(struct og_store **s);
/* (Re)connects and prepares the statements. 0, or -EIO with err filled. */
int og_store_connect(struct og_store *s, char *err, size_t errlen);
/* Commits items (all of one shard and epoch) in one transaction and fills their replies.
 * Returns 0; -ESTALE when the epoch is no longer current (*current set: nothing was
 * stored); -EIO when the connection failed (the outcome may be unknown: commit the same
 * items again, the event keys make that safe); -EINVAL when the database refused a
 * statement (nothing was stored; err says why). */
int og_store_commit(struct og_store *s, const char *shard, uint64_t epoch,
                    struct og_store_item *items, size_t n, uint64_t *current, char *err,
                    size_t errlen);
/* Replaces item's record with a refusal (REASON_STORAGE_REFUSED with text), for a record
 * the database will not take, so that it is recorded instead of retried for ever. */
int og_store_refuse(struct og_store_item *item, const char *text);
void og_store_item_clear(struct og_store_item *item);

/* archive.c */

struct og_archive_opts {
    size_t batch_max;   /* records per transaction */
    int64_t batch_wait; /* microseconds a record may wait for more to join its batch */
    const char *name;   /* recorded in og.batch.archive */
};

struct og_archive;

struct og_archive *og_archive_new(const struct og_archive_opts *o, struct og_link_server *srv,
                                  struct og_store *store);
void og_archive_destroy(struct og_archive **a);
/* Runs until og_stop_requested; then commits and answers what it holds (for up to
 * drain_ms while the database is reachable) and returns 0. */
int og_archive_run(struct og_archive *a, int drain_ms);

#endif
