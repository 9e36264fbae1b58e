/* Checks a Frame received on an internal link (intake -> dispatch -> archive, and the
 * answers back) before anything acts on it: the sub-messages its hop needs are there and
 * those it must not carry are not, the key and every string the receiver uses are
 * bounded and valid UTF-8, the key names the event it carries, numbers the receiver
 * computes with are in range, and a decision's kind matches what it carries. The sender
 * is one of our own daemons, so a frame that fails is a bug or an impostor: the caller
 * counts it, logs it (og_frame_check_count rate-limits that) and drops it.
 *
 * What is not checked: whatever the receiver ignores or overwrites, fields it does not
 * know (a daemon of the next release may send them), enum values it handles by refusing
 * the event, and meaning that the receiver decides itself (a case id it does not know).
 * Limit: the link decodes the frame before this sees it, and protobuf-c cuts a string at
 * an embedded NUL while decoding, so such a string is checked as cut.
 *
 * Pure functions: nothing here logs or allocates; the caller owns the frame. */
#ifndef OG_FRAME_CHECK_H
#define OG_FRAME_CHECK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "onegrid/v1/internal.pb-c.h"

/* Which hop a frame arrived on, and so what it must hold. */
enum og_frame_hop {
    OG_FRAME_HOP_INTAKE_DISPATCH,  /* DATA: a submission, nothing decided yet */
    OG_FRAME_HOP_DISPATCH_ARCHIVE, /* DATA: a submission, its decision(s), shard and epoch */
    OG_FRAME_HOP_ARCHIVE_DISPATCH, /* ANSWER: a reply, or (no reply) the shard's epoch */
    OG_FRAME_HOP_DISPATCH_INTAKE,  /* ANSWER: a reply */
};

#define OG_FRAME_KEY_MAX 255 /* bytes of a frame's key ("source\x1fid", or a refusal's) */

/* 0 when f keeps the invariants of hop; else -EBADMSG with why filled ("submission:
 * missing"), naming the first broken one. */
int og_frame_check(const Onegrid__V1__Frame *f, enum og_frame_hop hop, char *why, size_t whylen);

/* Counting dropped frames, and logging them at most once a minute. Zero-initialise. */
struct og_frame_drops {
    uint64_t total;    /* dropped since start */
    uint64_t unlogged; /* dropped since the last log line */
    int64_t logged_at; /* og_mono_us() of the last log line */
    bool logged;       /* a line was written */
};

#define OG_FRAME_LOG_INTERVAL_US (60 * 1000000LL)

/* Counts one dropped frame at now_us (og_mono_us()). Returns how many drops the caller
 * should report in a log line now (this one and those not yet reported), or 0 when a
 * line was written less than OG_FRAME_LOG_INTERVAL_US ago. */
uint64_t og_frame_check_count(struct og_frame_drops *d, int64_t now_us);

#endif
