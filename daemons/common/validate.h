/* Everything intake checks before an event goes further: the frame size, the raw wire
 * bytes against the schema (protobuf-c itself accepts unknown fields and enum values,
 * does not check UTF-8, truncates strings at NUL and lets a repeated oneof member win
 * silently), then the meaning of each field. A refusal is a normal result: a Reason and
 * a text naming the field, never an abort. */
#ifndef OG_VALIDATE_H
#define OG_VALIDATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "onegrid/v1/event.pb-c.h"

/* Longest refusal text archive stores or answers, in bytes (cut on a character boundary). */
#define OG_REFUSAL_TEXT_MAX 1024

struct og_verdict {
    Onegrid__V1__Reason reason; /* ONEGRID__V1__REASON__REASON_UNSPECIFIED when valid */
    char text[256];
};

struct og_limits {
    size_t max_bytes;   /* frames above this are REASON_TOO_LARGE */
    int64_t now;        /* seconds since the epoch, the reference for time checks */
    int64_t max_age;    /* seconds an event's time may lie in the past */
    int64_t max_future; /* seconds it may lie in the future (clock skew) */
    bool authenticated; /* the publisher's key names its source: `source` may be empty */
};

/* Checks the raw bytes of an Envelope. On success returns the decoded Envelope (free it
 * with onegrid__v1__envelope__free_unpacked(e, NULL)) and v->reason is UNSPECIFIED;
 * otherwise returns NULL with v filled. */
Onegrid__V1__Envelope *og_validate_envelope(const uint8_t *buf, size_t len,
                                            const struct og_limits *lim, struct og_verdict *v);

/* Checks raw bytes against descriptor d only (wire structure, unknown fields, UTF-8,
 * NUL, enums, oneofs); 0 when clean, else -EINVAL with v filled. Exposed for tests and
 * for other messages that cross a trust boundary. */
int og_validate_wire(const ProtobufCMessageDescriptor *d, const uint8_t *buf, size_t len,
                     struct og_verdict *v);

/* The payload name that Envelope.type must carry for a payload case ("report", ...), or
 * NULL for none. */
const char *og_payload_type(Onegrid__V1__Envelope__PayloadCase c);

/* Whether s is a source system code as og.source_system.code allows it:
 * ^[a-z0-9][a-z0-9_.-]{0,31}$. What an event names as its source, and what intake's
 * publishers file binds a key to. */
bool og_source_code_ok(const char *s);

/* The enum name of a reason ("REASON_UNKNOWN_GRID"); never NULL. */
const char *og_reason_name(Onegrid__V1__Reason r);

#endif
