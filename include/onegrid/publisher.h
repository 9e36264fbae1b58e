/* libonegrid: what another grid system links to publish events to onegrid reliably.
 *
 * The publisher keeps every event it is given until onegrid answers it (stored,
 * duplicate, or rejected with a reason), never has more than `window` events unanswered,
 * and resends any event whose answer is late. Resending is always safe: onegrid stores an
 * event once per (source, id), and answers a resend (the same token) "stored" when that
 * submission was the one stored; another submission of a stored event is "duplicate".
 *
 * Events are the serialised bytes of onegrid.v1.Envelope (proto/onegrid/v1/event.proto).
 * The publisher copies what it is given; answers passed to the callback are valid only
 * during the call. Not thread-safe: use one publisher per thread.
 *
 * With an outbox file (opts.outbox_path), every event handed over is appended to it and
 * made durable (fdatasync) before it is first sent, and stays there until answered: a
 * publisher process that dies loses nothing, because the next og_publisher_new on the
 * same file sends the unanswered events again, with their tokens, and their answers come
 * through the callback like any other. Without one, unanswered events live in memory only.
 * One process at a time per outbox file. */
#ifndef ONEGRID_PUBLISHER_H
#define ONEGRID_PUBLISHER_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define OG_API __attribute__((visibility("default")))

enum og_outcome {
    OG_OUTCOME_STORED = 1,    /* committed now */
    OG_OUTCOME_DUPLICATE = 2, /* (source, id) was already stored */
    OG_OUTCOME_REJECTED = 3,  /* refused; reason and text say why; the refusal is recorded */
};

struct og_answer {
    uint64_t token; /* what was given to og_publisher_send */
    enum og_outcome outcome;
    const char *event_id; /* "" when the event could not be decoded */
    const char *source;
    const char *case_id;     /* stored and duplicate: the case the event belongs to */
    int reason;              /* rejected: an onegrid.v1.Reason number */
    const char *reason_name; /* rejected: e.g. "REASON_UNKNOWN_GRID" */
    const char *text;        /* rejected: what was wrong, for people */
};

typedef void (*og_answer_fn)(const struct og_answer *answer, void *arg);

struct og_publisher_opts {
    unsigned window;         /* events unanswered at most; default 500 */
    unsigned resend_ms;      /* resend an unanswered event after this long; default 10000 */
    size_t max_held;         /* events held (queued + unanswered) at most; default 100000 */
    const char *outbox_path; /* durable outbox file, or NULL to keep events in memory only */
    size_t max_outbox_bytes; /* unanswered event bytes the outbox may hold; default 64 MiB */
    /* CURVE, when onegrid-intake requires it: intake's public key and this publisher's
     * own key pair, 40 Z85 characters each (`onegridctl keygen` makes them; the operators
     * list the public key in intake's publishers file). NULL server key: no CURVE. */
    const char *curve_server_key;
    const char *curve_public_key;
    const char *curve_secret_key;
};

struct og_publisher;

/* Connects to onegrid-intake at endpoint ("tcp://host:7300", "ipc:///run/onegrid/intake.sock").
 * o may be NULL for defaults. With an outbox, the events it still holds are queued first
 * (og_publisher_held counts them). Returns NULL with err filled. On success err is "" or a
 * warning to show (damaged outbox records were skipped; the original file is kept). */
OG_API struct og_publisher *
og_publisher_new(const char *endpoint, const struct og_publisher_opts *o, char *err, size_t errlen);
/* Stops and frees; events still held are dropped (check og_publisher_held first). */
OG_API void og_publisher_destroy(struct og_publisher **p);

/* Hands over one event. token identifies it in the answer and must be unique among held
 * events, including those recovered from the outbox. Returns 0, -EEXIST (token held),
 * -ENOBUFS (max_held or max_outbox_bytes reached: poll for answers, then send again),
 * -EMSGSIZE (the event alone exceeds max_outbox_bytes), -ENOSPC or -EDQUOT (the outbox's
 * file system is full: wait for space), -ENOMEM, or another -errno when the outbox cannot
 * be written. */
OG_API int og_publisher_send(struct og_publisher *p, uint64_t token, const void *envelope,
                             size_t len);

/* Sends, resends and receives for up to timeout_ms (0: without waiting), calling fn once
 * for each answer: it returns as soon as answers came, after the whole timeout when none
 * did, and at once when no event is held (there is nothing to wait for: a caller pacing
 * its events sleeps until the next is due). Before sending new events it makes the outbox
 * durable. Returns the number of answers, or a negative errno (-EIO and friends: the
 * outbox could not be synced; nothing new is sent until it can be). */
OG_API int og_publisher_poll(struct og_publisher *p, int timeout_ms, og_answer_fn fn, void *arg);

/* Events held: queued plus unanswered. */
OG_API size_t og_publisher_held(const struct og_publisher *p);
/* Events sent again because their answer was late. */
OG_API uint64_t og_publisher_resent(const struct og_publisher *p);

#ifdef __cplusplus
}
#endif

#endif
