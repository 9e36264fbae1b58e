/* onegrid-intake's ZAP handler (ZeroMQ RFC 27) for CURVE publishers. The publishers file
 * lists the keys let in, one per line:
 *
 *     PUBLIC-KEY  SOURCE  [NAME]    # comment
 *
 * PUBLIC-KEY: the publisher's CURVE public key (40 Z85 characters, `onegridctl keygen`);
 * SOURCE: the source system code it publishes for (an event's source must be empty or
 * this); NAME: what onegrid records as the publisher (default: SOURCE). A comment starts
 * with '#' at the start of a field (Z85 keys may contain '#'). Several keys may
 * share a name (one system, several machines), but a name has one source. */
#ifndef OG_ZAP_H
#define OG_ZAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct og_zap;

/* Reads publishers_file and binds the handler in ctx (before any CURVE server socket of
 * ctx binds). It lets keys in for requests of ZAP domain domain only (the one intake's
 * socket sets). NULL with err filled ("FILE:LINE: ..."). */
struct og_zap *og_zap_new(void *ctx, const char *publishers_file, const char *domain, char *err,
                          size_t errlen);
void og_zap_destroy(struct og_zap **z);
/* The handler's socket, to poll for ZMQ_POLLIN. */
void *og_zap_socket(const struct og_zap *z);
/* Answers every pending request (a refused key is logged at most once a minute per
 * address; 4096 keys are remembered, the one seen longest ago forgotten first). */
void og_zap_handle(struct og_zap *z, int64_t now_us);
/* The source system of the publisher a message's User-Id names, or NULL. */
const char *og_zap_source(const struct og_zap *z, const char *name);
/* Keys listed. */
size_t og_zap_count(const struct og_zap *z);

#endif
