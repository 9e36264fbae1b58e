/* The delivery core every sender in onegrid runs — libonegrid's publisher towards intake and
 * the link client on every hop between the daemons: messages kept by key until answered,
 * never more in flight than the receiver's credit, resent when due. A message first waits
 * resend_us for its answer, then twice that, up to 16 times (a receiver that does not answer
 * is busy or waiting for its database: more copies would only queue up in front of it);
 * after a reconnect everything unanswered goes out again at once, in the order it was
 * added, because whatever was in flight was lost with the old connection. Resends walk only
 * what is due (a heap ordered by due time), never every held message.
 * The window owns the packed messages it is given; nothing here logs or does I/O itself:
 * the caller's send callback does. */
#ifndef OG_WINDOW_H
#define OG_WINDOW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct og_window;

struct og_window *og_window_new(size_t max_held, int64_t resend_us);
/* Frees every held message. Accepts NULL; sets *w to NULL. */
void og_window_destroy(struct og_window **w);

/* Adds a message under key (copied) to the end of the queue; the window takes buf (malloc'ed,
 * freed by the window) when it returns 0. 1 when key is held already (buf is not taken),
 * -ENOBUFS when max_held messages are held, -ENOMEM. */
int og_window_add(struct og_window *w, const void *key, size_t keylen, uint8_t *buf, size_t len);
/* The answer for key came: forgets the message, in flight or requeued after a reconnect
 * (the answer to a copy sent before it is as good as any). 0; -ENOENT when key is not
 * held; -EAGAIN when it was never sent (not an answer to it: it stays). */
int og_window_answered(struct og_window *w, const void *key, size_t keylen);
/* True when key is held. */
bool og_window_holds(const struct og_window *w, const void *key, size_t keylen);

/* What pump calls for each message it sends: 0 when sent, < 0 to stop pumping (the socket
 * would block: the message stays where it was). resend is true for a message sent before. */
typedef int (*og_window_send_fn)(void *arg, const uint8_t *buf, size_t len, bool resend);
/* Resends the messages whose time has come (oldest due first), then sends queued ones
 * while fewer than credit are in flight. Returns how many it sent. */
size_t og_window_pump(struct og_window *w, size_t credit, int64_t now, og_window_send_fn send,
                      void *arg);
/* After a reconnect: every message in flight goes back to the queue, ahead of those never
 * sent, in the order they were added, to go out at the next pump within the new credit. */
void og_window_requeue(struct og_window *w);
/* Forgets every message (after a fencing change they are worthless). */
void og_window_clear(struct og_window *w);

size_t og_window_held(const struct og_window *w);
/* The key of the message added last of those held (*keylen its length), or NULL when none is
 * held. */
const void *og_window_newest_key(const struct og_window *w, size_t *keylen);
size_t og_window_inflight(const struct og_window *w);
size_t og_window_queued(const struct og_window *w);
/* When the next resend is due (og_mono_us() clock), or INT64_MAX when nothing is in flight. */
int64_t og_window_next_due(const struct og_window *w);

#endif
