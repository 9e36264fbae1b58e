/* onegrid-archive: receives dispatch's records over the reliable link, writes them to
 * PostgreSQL in batches (one transaction each, synchronous_commit on, idempotent on the
 * event key), and answers each record only after its batch committed.
 *
 * store.c    one batch into PostgreSQL: one og.store_opened call for the events that
 *            open cases, one og.store_moved call for those that each move a case no other
 *            record names, pipelined og.store_* calls for the other records, and the
 *            signatures of the chain links it appends
 * archive.c  the engine: collecting batches, fencing, outages, answering
 * main.c     arguments, configuration, sockets, readiness */
#ifndef OG_ARCHIVE_H
#define OG_ARCHIVE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "link.h"
#include "onegrid/v1/internal.pb-c.h"

/* store.c */

struct og_store;
struct og_rendered;

/* One record of a batch: the frame in, the reply out (owned by the item after a commit;
 * free with og_store_item_clear). minimal: the record is stored as a minimal refusal (see
 * og_store_refuse_minimal). rendered: what og_store_item_prepare made of the frame ahead
 * of its commit (NULL: made when it is sent). */
struct og_store_item {
    Onegrid__V1__Frame *frame;
    Onegrid__V1__Reply *reply;
    struct og_rendered *rendered;
    bool minimal;
};

struct og_store *og_store_new(const char *conninfo, const char *name);
void og_store_destroy(struct og_store **s);
/* Bounds each lock wait of the connections made from now on by ms (og_store_new: no
 * limit; og_db_limit_lock_waits: a lock_timeout the server, database or role sets is
 * kept): a statement that waits longer for a lock (one an operator holds) is then
 * cancelled by the server and fails as a fault (-EIO), retried after a backoff, while the
 * main loop goes on. A statement that is slow but not waiting is never cancelled (retried,
 * it would be slow again, for ever), nor is a COMMIT waiting for a synchronous standby (one
 * that is returns OK without the standby's word; tests/integration/sync_commit_wait.sh). */
void og_store_lock_timeout(struct og_store *s, long ms);
/* Whether the last connection made is still up, as far as libpq knows (for the metrics). */
bool og_store_connected(const struct og_store *s);
/* The ledger rows whose digests archive made, in batches committed since it started; and
 * whether it still makes them (og.end_batch found none that differs from its own). */
uint64_t og_store_given_rows(const struct og_store *s);
bool og_store_own_digests(const struct og_store *s);
/* Reads the Ed25519 secret key file path (og_chainsig_secret_read: refused when its group
 * or others may read it); from then on every link a commit appends to a hash chain is
 * signed with it, in the same transaction (og.sign_link). The key stays in s and is wiped
 * by og_store_destroy. 0, or a negative errno with err filled. */
int og_store_signing_key(struct og_store *s, const char *path, char *err, size_t errlen);
/* (Re)connects, checks the schema (og_db_schema_check) and prepares the statements. 0,
 * -EPROTO when the schema is not the one this build needs, or -EIO, with err filled. */
int og_store_connect(struct og_store *s, char *err, size_t errlen);
/* Asks the server to cancel what the connection is running: from another thread than the
 * one using it (PQcancel), og_store_connect's set-up statements included. The call in
 * progress then fails as a fault (-EIO). 0, or -EIO with err filled ("not connected" while
 * og_store_connect has no connection yet: libpq's connect_timeout bounds that part). */
int og_store_cancel(struct og_store *s, char *err, size_t errlen);
/* Commits items (all of one shard and epoch) in one transaction and fills their replies.
 * Returns 0; -ESTALE when the epoch is no longer current (*current set: nothing was
 * stored); -EINVAL when the statement of record *bad failed because of the record's own
 * content (og_db_record_error: nothing was stored; err says why); -ENOENT when it failed
 * because the record names a case or report the database does not have (SQLSTATE OG002:
 * the decision was made against memory that disagrees with the committed state; nothing
 * was stored); -EIO for any other
 * failure, a fault of the database or the connection (nothing was stored, or the outcome
 * is unknown when the connection was lost around COMMIT: commit the same items again,
 * the event keys make that safe). */
int og_store_commit(struct og_store *s, const char *shard, uint64_t epoch,
                    struct og_store_item *items, size_t n, uint64_t *current, size_t *bad,
                    char *err, size_t errlen);
/* Retires dispatch epoch `epoch` of shard (og.retire_epoch), in a transaction of its own:
 * og.begin_batch refuses every later batch of it (-ESTALE). For after a record of it was
 * left out (-ENOENT), once what came before it is committed and before anything is
 * answered. 1 when it retired it, 0 when the epoch was no longer current (retired already,
 * or a dispatch took a newer one), or -EIO with err filled. */
int og_store_retire_epoch(struct og_store *s, const char *shard, uint64_t epoch, char *err,
                          size_t errlen);
/* Replaces item's record with a refusal (REASON_STORAGE_REFUSED with text, cut to fit
 * and made safe), for an accepted record the database will not take, so that it is
 * recorded instead of retried for ever. -EEXIST when item is a refusal already (use
 * og_store_refuse_minimal), -ENOMEM. */
int og_store_refuse(struct og_store_item *item, const char *text);
/* Marks a refusal the database will not take either to be stored with safe values only:
 * its reason, the digest and size of the bytes received, safe identifiers, no free text
 * and no raw bytes. -EEXIST when it is minimal already: nothing simpler is left to try. */
int og_store_refuse_minimal(struct og_store_item *item);
void og_store_item_clear(struct og_store_item *item);
/* Makes ahead what the commit sends of an accepted record (its JSON and canonical bytes),
 * while another batch commits. Without memory it is made when it is sent instead. */
void og_store_item_prepare(struct og_store_item *item);
/* Frees the reply and what og_store_item_prepare made (not the frame). */
void og_store_item_free(struct og_store_item *item);

/* archive.c */

struct og_archive_opts {
    size_t batch_max;   /* records per transaction */
    int64_t batch_wait; /* microseconds a record that finds the database idle may wait for
                           more to join its batch (one that came during a commit does not);
                           0 by default: dispatch sends its records in bursts already */
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
