/* onegrid-intake: takes publishers' events on a ROUTER socket, validates them, passes
 * valid events and refusals alike to dispatch over the reliable link, and answers each
 * publisher only when the outcome comes back committed.
 *
 * intake.c  the engine: turning a publisher frame into a Submission, the publisher-facing
 *           socket, the loop
 * waiters.c the Submits waiting for the answer to each key
 * main.c    arguments, configuration, sockets, readiness */
#ifndef OG_INTAKE_H
#define OG_INTAKE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "link.h"
#include "onegrid/v1/internal.pb-c.h"
#include "zsock.h"

#define OG_MAX_TAG 64 /* bytes of a Submit's tag (docs/integrating.md) */

struct og_intake_opts {
    size_t max_event_bytes;    /* larger frames are REASON_TOO_LARGE */
    size_t max_rejected_bytes; /* how much of a refused frame is kept as evidence */
    int64_t max_age;           /* seconds an event's time may lie in the past */
    int64_t max_future;        /* seconds it may lie in the future */
};

/* intake.c */

/* Builds the DATA frame for one publisher frame: a Submission carrying either the valid
 * Envelope or the refusal with a bounded copy of the bytes; the key is the idempotency
 * key for valid events and a digest of the bytes for refusals. auth_source is the source
 * system the publisher authenticated as, or NULL without authentication. Returns NULL only
 * on ENOMEM; free with og_intake_frame_free(). */
Onegrid__V1__Frame *og_intake_frame(const struct og_intake_opts *o, const char *publisher,
                                    const char *auth_source, const uint8_t *buf, size_t len,
                                    int64_t now_us);
/* The DATA frame for bytes that are not even a Submit: a refusal with reason and text. */
Onegrid__V1__Frame *og_intake_refusal(const struct og_intake_opts *o, const char *publisher,
                                      const uint8_t *buf, size_t len, Onegrid__V1__Reason reason,
                                      const char *text, int64_t now_us);
void og_intake_frame_free(Onegrid__V1__Frame **f);

struct og_intake;

struct og_zap;

/* Takes ownership of neither socket nor zap. zap: the CURVE publishers' keys (zap.h), or
 * NULL when publishers do not authenticate (every one is "local"). */
struct og_intake *og_intake_new(const struct og_intake_opts *o, void *publishers,
                                struct og_zap *zap, struct og_link_client *dispatch);
void og_intake_destroy(struct og_intake **in);
/* Runs until og_stop_requested, then drains: stops reading publishers and waits up to
 * drain_ms for the answers of what is in flight. Returns 0, or -errno on a fatal error. */
int og_intake_run(struct og_intake *in, int drain_ms);

/* waiters.c */

/* Who waits for the answer to each key. An entry is one (routing id, tag) pair; identical
 * Submits from it (resends while the first is in flight) are counted in it. The table
 * owns its copies of keys, routing ids and tags. */
struct og_waiters;
struct og_waiter {
    const uint8_t *route;
    size_t route_len;
    const uint8_t *tag;
    size_t tag_len;
    uint32_t copies; /* Submits waiting, each owed its own answer */
};

/* A table holding at most max entries. NULL on ENOMEM. */
struct og_waiters *og_waiters_new(size_t max);
void og_waiters_destroy(struct og_waiters **ws);
/* Records one Submit waiting on key. 0; -ENOBUFS when a new entry is needed and max are
 * held (og_waiters_full: stop reading publishers); -EINVAL (route or tag too long);
 * -ENOMEM. */
int og_waiters_add(struct og_waiters *ws, const char *key, const uint8_t *route, size_t route_len,
                   const uint8_t *tag, size_t tag_len);
/* Calls fn (unless NULL) for each entry waiting on key, in the order they came (first:
 * the entry whose first Submit came first), then forgets key. The og_waiter is valid
 * during the call only. Returns the number of Submits that waited. */
size_t og_waiters_take(struct og_waiters *ws, const char *key,
                       void (*fn)(const struct og_waiter *w, bool first, void *arg), void *arg);
bool og_waiters_full(const struct og_waiters *ws);
/* Submits waiting, and entries held. */
size_t og_waiters_submits(const struct og_waiters *ws);
size_t og_waiters_entries(const struct og_waiters *ws);

#endif
