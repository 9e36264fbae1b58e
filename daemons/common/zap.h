/* A ZAP handler (ZeroMQ RFC 27): which CURVE client keys the one CURVE server socket of a
 * process lets in. The keys file lists them, one per line:
 *
 *     PUBLIC-KEY  SOURCE  [NAME]    # comment
 *
 * PUBLIC-KEY: the client's CURVE public key (40 Z85 characters, `onegridctl keygen`).
 * For intake's publishers file, SOURCE is the source system code the publisher publishes
 * for (an event's source must be empty or this) and NAME what onegrid records as the
 * publisher (default: SOURCE); several keys may share a name (one system, several
 * machines), but a name has one source. For a link's clients file (dispatch's and
 * archive's), SOURCE is the connecting daemon's name ("intake", "dispatch-650204"). A
 * comment starts with '#' at the start of a field (Z85 keys may contain '#'). Nothing here
 * logs: refusals go, rate-limited, to the caller's log function. */
#ifndef OG_ZAP_H
#define OG_ZAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct og_zap;

struct og_zap_opts {
    const char *keys_file;
    const char *domain; /* keys are let in for requests of this ZAP domain only (the socket's) */
    const char *peer;   /* what a client is called in refusals: "publisher", "link client" */
    void (*log)(void *arg, const char *line); /* a refusal or failure, rate-limited; or NULL */
    void *log_arg;
};

/* Reads o->keys_file and binds the handler in ctx (before any CURVE server socket of ctx
 * binds). NULL with err filled ("FILE:LINE: ..."). */
struct og_zap *og_zap_new(void *ctx, const struct og_zap_opts *o, char *err, size_t errlen);
void og_zap_destroy(struct og_zap **z);
/* Reads keys_file as og_zap_new would, and forgets it: 0, or -errno with err filled. */
int og_zap_keys_check(const char *keys_file, char *err, size_t errlen);
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
