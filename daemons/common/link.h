/* The reliable link every internal hop runs (intake -> dispatch -> archive): the client
 * side keeps each DATA frame until the server answers its key, never has more unanswered
 * than the credit the server granted at HELLO, and resends after a timeout; the server
 * side grants credit and sends answers back to the route a frame came from. After a
 * reconnect (a restarted peer) everything unanswered is resent at once; otherwise the
 * wait before a resend doubles each time, up to 16 times the first. A resend is
 * harmless because every receiver treats a key it already holds as the same message.
 * The link owns the frames it is given (it keeps packed copies); answers it returns are
 * the caller's to free with onegrid__v1__frame__free_unpacked(f, NULL). Nothing here logs:
 * counters say what happened. */
#ifndef OG_LINK_H
#define OG_LINK_H

/* The largest frame a link takes from its peer (a larger one ends the connection): an event
 * is at most max_event_bytes, and a refused one carries its raw bytes too (intake's
 * configuration keeps both under this, with room for the rest of the frame). */
#define OG_LINK_MAX_FRAME (4 * 1024 * 1024)
/* What a frame holds besides the event and a refused event's raw bytes, at most. */
#define OG_LINK_FRAME_OVERHEAD (64 * 1024)

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "link_keys.h"
#include "onegrid/v1/internal.pb-c.h"
#include "zsock.h"

struct og_link_stats {
    uint64_t sent;        /* DATA frames sent, first time */
    uint64_t resent;      /* DATA frames sent again after a timeout */
    uint64_t answered;    /* answers matched to a pending key */
    uint64_t stray;       /* answers for keys not pending (answer to a resend) */
    uint64_t send_fail;   /* sends refused by the socket (EAGAIN): retried later */
    uint64_t bad_frames;  /* frames that could not be decoded */
    uint64_t disconnects; /* client: connections to the server lost */
    uint64_t reconnects;  /* client: connections made again (everything unanswered resent) */
    uint64_t forgotten;   /* server: senders of keys forgotten for room (they resend) */
    uint64_t hellos;      /* server: HELLOs answered */
};

/* Client ----------------------------------------------------------------------------- */

struct og_link_client;

/* A DEALER connected to endpoint. name is sent in HELLO for the server's logs.
 * max_queue bounds the frames held (queued + unanswered). With keys that name the
 * server's public key (og_link_keys_client), a CURVE client with the daemon's key pair;
 * keys may be NULL. */
struct og_link_client *og_link_client_new(void *ctx, const char *endpoint, const char *name,
                                          size_t max_queue, int64_t resend_us,
                                          const struct og_link_keys *keys, char *err,
                                          size_t errlen);
void og_link_client_destroy(struct og_link_client **c);
void *og_link_client_socket(struct og_link_client *c);

/* Queues a DATA frame (f->key must be set). Returns 0 when queued, 1 when a frame with
 * this key is already held (nothing is done), -ENOBUFS when the queue is full, -ENOMEM. */
int og_link_client_send(struct og_link_client *c, const Onegrid__V1__Frame *f);
/* Handles everything readable. For each ANSWER to a held key, removes the key and calls
 * on_answer(answer, arg); the callback takes ownership of the frame. Returns the number
 * of answers delivered. */
int og_link_client_recv(struct og_link_client *c,
                        void (*on_answer)(Onegrid__V1__Frame *answer, void *arg), void *arg);
/* Sends queued frames within credit and resends unanswered ones whose time has come.
 * Call it after every poll. */
void og_link_client_tick(struct og_link_client *c);
/* Frames held: queued plus unanswered. */
size_t og_link_client_held(const struct og_link_client *c);
bool og_link_client_full(const struct og_link_client *c);
/* How many more frames og_link_client_send would take. */
size_t og_link_client_room(const struct og_link_client *c);
/* How long the server has been silent while frames were held (queued or unanswered):
 * 0 when nothing is held. now is og_mono_us(). */
int64_t og_link_client_silent_us(const struct og_link_client *c, int64_t now);
/* The resend interval the client was made with. */
int64_t og_link_client_resend_us(const struct og_link_client *c);
/* True once the server has granted credit (answered HELLO). */
bool og_link_client_connected(const struct og_link_client *c);
const struct og_link_stats *og_link_client_stats(const struct og_link_client *c);
/* Frames sent and not answered yet (the rest of og_link_client_held is queued), and the
 * credit the server granted (0 until it answered HELLO): for the metrics. */
size_t og_link_client_inflight(const struct og_link_client *c);
uint32_t og_link_client_credit(const struct og_link_client *c);
/* Forgets every held frame (after a fencing change the frames are worthless). */
void og_link_client_drop_all(struct og_link_client *c);

/* Server ----------------------------------------------------------------------------- */

struct og_link_server;

/* A ROUTER bound to endpoints, without CURVE. */
struct og_link_server *og_link_server_new(void *ctx, const char *endpoints, uint32_t credit,
                                          char *err, size_t errlen);
struct og_link_server_opts {
    const char *endpoints;
    uint32_t credit;
    /* With keys that name a clients file (og_link_keys_server): a CURVE server that lets
     * in those keys only, through a ZAP handler of its own (the process's only one), whose
     * requests og_link_server_auth answers. NULL: none. */
    const struct og_link_keys *keys;
    void (*log)(void *arg, const char *line); /* the ZAP handler's refusals, rate-limited */
    void *log_arg;
};
struct og_link_server *og_link_server_open(void *ctx, const struct og_link_server_opts *o,
                                           char *err, size_t errlen);
/* The ZAP handler's socket, to poll for ZMQ_POLLIN, or NULL without CURVE. */
void *og_link_server_auth_socket(struct og_link_server *s);
/* Answers the pending ZAP requests (who may connect); a no-op without CURVE. Call it
 * whenever its socket is readable: a client's handshake waits for the answer. */
void og_link_server_auth(struct og_link_server *s);
/* The keys let in. */
size_t og_link_server_auth_keys(const struct og_link_server *s);
void og_link_server_destroy(struct og_link_server **s);
void *og_link_server_socket(struct og_link_server *s);

/* Receives one DATA frame if any: 1 and *f (caller frees) and *from filled, 0 when a
 * control frame was handled internally or a bad frame dropped, -EAGAIN when nothing is
 * readable. The server remembers who sent each key last, for og_link_server_reply: the
 * one answer table of every receiving hop. */
int og_link_server_recv(struct og_link_server *s, struct og_route *from, Onegrid__V1__Frame **f);
/* Sends the ANSWER frame for answer->key to whoever sent that key last, and forgets the
 * key. 0, -ENOENT when no sender is known (it resends and is answered then), or -errno
 * as og_link_server_answer. */
int og_link_server_reply(struct og_link_server *s, const Onegrid__V1__Frame *answer);
/* Forgets who sent key: for a frame dropped without an answer (its sender resends). */
void og_link_server_forget(struct og_link_server *s, const char *key);
/* Sends an ANSWER frame for key to route. Returns 0 or -errno (-EHOSTUNREACH: that peer is
 * gone; it will resend and be answered again). */
int og_link_server_answer(struct og_link_server *s, const struct og_route *to,
                          const Onegrid__V1__Frame *answer);
const struct og_link_stats *og_link_server_stats(const struct og_link_server *s);
/* How many senders that said HELLO in the last expire_us have not yet sent all they held
 * as they said it (HELLO names the newest of those frames; they come in order). 0 once each
 * has; a sender whose HELLO is older is not counted (one that went away again does not keep
 * it up for ever). */
size_t og_link_server_catching_up(struct og_link_server *s, int64_t expire_us);
/* The credit granted to each sender (for the metrics). */
uint32_t og_link_server_credit(const struct og_link_server *s);

/* Packs any protobuf-c message into a new buffer (free it). NULL on ENOMEM. */
uint8_t *og_pack(const ProtobufCMessage *m, size_t *len);

#endif
