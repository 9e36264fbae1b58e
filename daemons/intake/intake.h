/* onegrid-intake: takes publishers' events on a ROUTER socket, validates them, passes
 * valid events and refusals alike to dispatch over the reliable link, and answers each
 * publisher only when the outcome comes back committed.
 *
 * intake.c    the engine: turning a publisher frame into a Submission, the publisher-facing
 *             socket, the loop
 * waiters.c   the Submits waiting for the answer to each key
 * peers.c     the publishers' connections: handshakes, and what each makes libzmq hold
 * main.c      arguments, configuration, sockets, readiness */
#ifndef OG_INTAKE_H
#define OG_INTAKE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "link.h"
#include "onegrid/v1/internal.pb-c.h"
#include "ratelimit.h"
#include "zsock.h"

#define OG_MAX_TAG 64 /* bytes of a Submit's tag (docs/integrating.md) */

struct og_intake_opts {
    size_t max_event_bytes;    /* larger frames are REASON_TOO_LARGE */
    size_t max_rejected_bytes; /* how much of a refused frame is kept as evidence */
    int64_t max_age;           /* seconds an event's time may lie in the past */
    int64_t max_future;        /* seconds it may lie in the future */
    size_t max_unanswered;     /* per publisher connection; more are answered REASON_BUSY */
    size_t max_inflight_bytes; /* of events passed on and unanswered; then stop reading */
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
/* The DATA frame for the bytes of one Submit as a publisher sent them: og_intake_frame of
 * the Envelope it carries, with the Submit's tag (copied to tag, its length to *tag_len),
 * or the refusal of a Submit that is not valid (no tag could be read: *tag_len 0). What
 * intake's publisher socket does with every message of one frame. NULL only on ENOMEM. */
Onegrid__V1__Frame *og_intake_submit(const struct og_intake_opts *o, const char *publisher,
                                     const char *auth_source, const uint8_t *buf, size_t len,
                                     int64_t now_us, uint8_t tag[OG_MAX_TAG], size_t *tag_len);
void og_intake_frame_free(Onegrid__V1__Frame **f);
/* Whether intake may listen on listen (a comma-separated list): at least one endpoint,
 * and without CURVE (curve false) none that the network may reach (tcp:// on an address
 * other than loopback, or another network transport) unless allow_unauthenticated. 0, or
 * -EINVAL / -EPERM with err filled. */
int og_intake_check_listen(const char *listen, bool curve, bool allow_unauthenticated, char *err,
                           size_t errlen);

struct og_intake;

struct og_zap;
struct og_peers;

/* Takes ownership of none of its arguments. zap: the CURVE publishers' keys (zap.h), or
 * NULL when publishers do not authenticate (every one is "local"). peers: the publishers'
 * connections (peers.c), or NULL. */
struct og_intake *og_intake_new(const struct og_intake_opts *o, void *publishers,
                                struct og_zap *zap, struct og_peers *peers,
                                struct og_link_client *dispatch);
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
    uint32_t copies;  /* Submits waiting, each owed its own answer */
    int64_t since_us; /* og_mono_us() when the first of them came (0: not known) */
};

/* A table holding at most max entries, and at most per_route of them for one routing id
 * (0: no such limit). NULL on ENOMEM. */
struct og_waiters *og_waiters_new(size_t max, size_t per_route);
void og_waiters_destroy(struct og_waiters **ws);
/* Whether og_waiters_add could record this Submit: 0; -EDQUOT when it needs a new entry
 * and its routing id holds per_route; -ENOBUFS when it needs one and max are held
 * (og_waiters_full: stop reading publishers); -EINVAL (route or tag too long). */
int og_waiters_room(const struct og_waiters *ws, const char *key, const uint8_t *route,
                    size_t route_len, const uint8_t *tag, size_t tag_len);
/* Records one Submit waiting on key; bytes: the size of what was passed on for a key new
 * to the table (counted in og_waiters_bytes until the key is taken). 0, an error of
 * og_waiters_room, or -ENOMEM. */
int og_waiters_add(struct og_waiters *ws, const char *key, const uint8_t *route, size_t route_len,
                   const uint8_t *tag, size_t tag_len, size_t bytes);
/* Calls fn (unless NULL) for each entry waiting on key, in the order they came (first:
 * the entry whose first Submit came first), then forgets key. The og_waiter is valid
 * during the call only. Returns the number of Submits that waited. */
size_t og_waiters_take(struct og_waiters *ws, const char *key,
                       void (*fn)(const struct og_waiter *w, bool first, void *arg), void *arg);
bool og_waiters_full(const struct og_waiters *ws);
/* Remembers the digest (raw_sha256) of the Submit passed on for key. */
void og_waiters_set_digest(struct og_waiters *ws, const char *key, const uint8_t digest[32]);
/* True when key waits for the answer to a Submit whose digest is known and is not digest:
 * another event under the same source and id. */
bool og_waiters_differs(const struct og_waiters *ws, const char *key, const uint8_t digest[32]);
/* Submits waiting, entries held, and the bytes of their keys. */
size_t og_waiters_submits(const struct og_waiters *ws);
size_t og_waiters_entries(const struct og_waiters *ws);
size_t og_waiters_bytes(const struct og_waiters *ws);
/* Entries held for one routing id. */
size_t og_waiters_route_entries(const struct og_waiters *ws, const uint8_t *route,
                                size_t route_len);

/* peers.c */

struct og_peers_opts {
    uint64_t hold_max;      /* bytes a connection may have sent that intake has not read as
                             * whole messages; beyond, it is dropped */
    size_t memory_max;      /* resident memory beyond which the connection holding the most
                             * is dropped; 0: no bound */
    size_t memory_mb;       /* max_memory_mb, for the log (also when memory_max is 0) */
    int64_t maxmsg;         /* the socket's ZMQ_MAXMSGSIZE, for the log */
    size_t max_event_bytes; /* likewise */
    bool curve;             /* publishers use CURVE (framing costs more) */
    size_t max_connections; /* open at once; more are dropped at once */
    size_t max_per_address; /* open at once from one IP address */
};
struct og_peers_stats {
    size_t connections;        /* open now */
    uint64_t refused, dropped; /* handshakes failed; connections ended on intake's side */
};

/* Watches router's connections (a ROUTER of ctx, not yet bound). NULL with err filled. */
struct og_peers *og_peers_new(void *ctx, void *router, const struct og_peers_opts *o, char *err,
                              size_t errlen);
/* Stops watching router; accepts NULL, sets *p to NULL. */
void og_peers_destroy(struct og_peers **p, void *router);
/* The monitor's socket, to poll for ZMQ_POLLIN. */
void *og_peers_socket(const struct og_peers *p);
/* Reads what the monitor reported: connections made and ended, handshakes failed (logged,
 * at most once a minute per address and cause). */
void og_peers_events(struct og_peers *p, int64_t now_us);
/* Intake read a whole message (parts, bytes) from connection fd (og_zmsg.fd). */
void og_peers_read(struct og_peers *p, int fd, size_t parts, size_t bytes, int64_t now_us);
/* Drops the connections that hold too much (logged). accounted: bytes intake holds
 * knowingly (events in flight), not counted against memory_max. Cheap: call it every
 * loop turn. */
void og_peers_check(struct og_peers *p, int64_t now_us, size_t accounted);
/* Resident memory, as last looked at, is over half of memory_max: the loop should turn
 * more often, so that a connection growing fast is seen before it takes the rest. */
bool og_peers_pressed(const struct og_peers *p);
const struct og_peers_stats *og_peers_stats(const struct og_peers *p);

#endif
