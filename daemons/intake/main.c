/* onegrid-intake: arguments, configuration, sockets, readiness; the work is in intake.c. */
#include <errno.h>
#include <sodium.h>
#include <string.h>
#include <stdlib.h>
#include <zmq.h>

#include "daemon.h"
#include "intake.h"
#include "link.h"
#include "log.h"
#include "metrics.h"
#include "zap.h"
#include "zsock.h"

static const char *const known_keys[] = {"metrics_listen",
                                         "metrics_allow_remote",
                                         "listen",
                                         "dispatch",
                                         "max_event_bytes",
                                         "max_rejected_bytes",
                                         "max_event_age_days",
                                         "window",
                                         "resend_ms",
                                         "drain_ms",
                                         "curve_secret_key_file",
                                         "curve_publishers_file",
                                         "allow_unauthenticated",
                                         "max_unanswered",
                                         "max_memory_mb",
                                         "link_secret_key_file",
                                         "dispatch_public_key_file",
                                         NULL};

/* Whole messages libzmq queues per publisher connection while intake does not read (it
 * waits for dispatch): each up to the frame limit, so this times that is what a
 * connection can make intake hold. Publishers wait in their own queues instead. */
#define PUBLISHER_RCVHWM 4
/* Publisher connections open at once, in all and from one IP address (several machines
 * behind one NAT count as one): each costs libzmq about 25 KiB before it sends a byte,
 * and intake two file descriptors. Fewer when max_memory_mb holds fewer (connections()). */
#define MAX_CONNECTIONS 1024
#define MAX_PER_ADDRESS 64
/* What max_memory_mb must hold at least, and what of it is intake's own (its code,
 * libraries and tables), not the publishers'. */
#define MIN_CONNECTIONS 4
#define OWN_BYTES       (8u << 20)
/* What libzmq keeps for a connection besides its messages (buffers, the pipe, CURVE's
 * state), rounded up. */
#define CONNECTION_BYTES (32u << 10)
/* A publisher's handshake (CURVE and ZAP included) takes milliseconds. */
#define HANDSHAKE_MS 5000
/* The ZAP domain of the publishers' socket. */
#define ZAP_DOMAIN "onegrid"

/* Under AddressSanitizer resident memory holds its shadow and its quarantine of freed
 * blocks: it says nothing of what publishers make intake hold, and max_memory_mb is not
 * applied (hold_max still is). */
#if defined(__SANITIZE_ADDRESS__)
#define SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SANITIZED 1
#endif
#endif
#ifndef SANITIZED
#define SANITIZED 0
#endif

/* How many publisher connections max_memory_mb holds, each making intake hold up to
 * hold_max (whole messages waiting while intake does not read, and one arriving): the
 * memory bound must hold with every connection full, not only with the one that holds the
 * most dropped a second at a time (a few hundred connections each holding what it may
 * took intake past 280 MiB). 0, or -EINVAL with err filled. */
static int connections(long memory_mb, uint64_t hold_max, long max_bytes, size_t *out, char *err,
                       size_t errlen)
{
    uint64_t each = hold_max + CONNECTION_BYTES;
    uint64_t room = ((uint64_t)memory_mb << 20) - OWN_BYTES;
    uint64_t n = room / each;
    if (n < MIN_CONNECTIONS) {
        snprintf(err, errlen,
                 "[intake] max_memory_mb (%ld) holds %llu publisher connections, fewer than %d: "
                 "with max_event_bytes = %ld each may make intake hold %llu KiB; raise "
                 "max_memory_mb to at least %llu",
                 memory_mb, (unsigned long long)n, MIN_CONNECTIONS, max_bytes,
                 (unsigned long long)(each >> 10),
                 (unsigned long long)((OWN_BYTES + MIN_CONNECTIONS * each + (1u << 20) - 1) >> 20));
        return -EINVAL;
    }
    *out = n < MAX_CONNECTIONS ? (size_t)n : MAX_CONNECTIONS;
    return 0;
}

/* "yes" or "no" (default no). 0, or -EINVAL with err filled. */
static int config_yes(const struct og_config *cfg, const char *key, bool *out, char *err,
                      size_t errlen)
{
    const char *v = og_config_str(cfg, "intake", key, "no");
    *out = strcmp(v, "yes") == 0;
    if (*out || strcmp(v, "no") == 0)
        return 0;
    snprintf(err, errlen, "[intake] %s: \"%s\" is neither yes nor no", key, v);
    return -EINVAL;
}

int main(int argc, char **argv)
{
    struct og_config *cfg = og_daemon_start(argc, argv, "onegrid-intake");
    struct og_intake_opts o = {0};
    struct og_link_client *dispatch = NULL;
    struct og_intake *in = NULL;
    struct og_zap *zap = NULL;
    void *ctx = NULL, *pub = NULL;
    char secret[41] = "";
    struct og_link_keys link_keys = {0};
    struct og_peers *peers = NULL;
    struct og_metrics_server *metrics = NULL;
    long max_bytes, max_rej, age_days, window, resend_ms, drain_ms, max_unanswered, memory_mb;
    bool allow_unauthenticated;
    char err[512], bound[256];
    /* Until the configuration is known to be good, a failure is the configuration's. */
    int rc = OG_EXIT_CONFIG;

    if (!cfg)
        return OG_EXIT_CONFIG;
    if (og_config_check_keys(cfg, "intake", known_keys, err, sizeof(err)) ||
        og_config_int(cfg, "intake", "max_event_bytes", 65536, 256, 4 << 20, &max_bytes, err,
                      sizeof(err)) ||
        og_config_int(cfg, "intake", "max_rejected_bytes", 4096, 0, 1 << 20, &max_rej, err,
                      sizeof(err)) ||
        og_config_int(cfg, "intake", "max_event_age_days", 30, 1, 3650, &age_days, err,
                      sizeof(err)) ||
        og_config_int(cfg, "intake", "window", 2000, 1, 100000, &window, err, sizeof(err)) ||
        og_config_int(cfg, "intake", "resend_ms", 5000, 100, 600000, &resend_ms, err,
                      sizeof(err)) ||
        og_config_int(cfg, "intake", "drain_ms", 10000, 0, 600000, &drain_ms, err, sizeof(err)) ||
        og_config_int(cfg, "intake", "max_unanswered", 1000, 1, 100000, &max_unanswered, err,
                      sizeof(err)) ||
        og_config_int(cfg, "intake", "max_memory_mb", 48, 24, 65536, &memory_mb, err,
                      sizeof(err)) ||
        config_yes(cfg, "allow_unauthenticated", &allow_unauthenticated, err, sizeof(err))) {
        og_err("%s", err);
        goto out;
    }
    /* A refused event goes to dispatch whole, with its raw bytes: a frame larger than the
     * link takes would end the connection, and be resent, for ever. */
    if ((int64_t)max_bytes + max_rej > OG_LINK_MAX_FRAME - OG_LINK_FRAME_OVERHEAD) {
        og_err("[intake] max_event_bytes (%ld) plus max_rejected_bytes (%ld) must be at most %d: "
               "a refused event travels with both to dispatch, in a frame of at most %d bytes",
               max_bytes, max_rej, OG_LINK_MAX_FRAME - OG_LINK_FRAME_OVERHEAD, OG_LINK_MAX_FRAME);
        goto out;
    }
    /* Frames a little over max_event_bytes are answered by us (REASON_TOO_LARGE, and
     * recorded). libzmq's own limit drops the connection without an answer (PITFALLS.md;
     * peers.c logs it): twice ours, and room for the Submit around the event. It bounds
     * every frame of a connection, its handshake's too, before anyone authenticated. */
    int64_t maxmsg = (int64_t)max_bytes * 2 + 4096;
    /* What one connection can make intake hold: the whole messages libzmq queues while
     * intake does not read, one more arriving, and its framing. */
    uint64_t hold_max = (uint64_t)(PUBLISHER_RCVHWM + 1) * (uint64_t)maxmsg + (64u << 10);
    size_t max_connections;
    if (connections(memory_mb, hold_max, max_bytes, &max_connections, err, sizeof(err)) < 0) {
        og_err("%s", err);
        goto out;
    }
    const char *listen = og_config_get(cfg, "intake", "listen");
    const char *dispatch_ep = og_config_get(cfg, "intake", "dispatch");
    if (!listen || !dispatch_ep) {
        og_err("[intake] listen and dispatch are required");
        goto out;
    }
    if (og_metrics_server_config(cfg, "intake", !og_check_config, &metrics, err, sizeof(err)) < 0) {
        og_err("%s", err);
        goto out;
    }
    if (sodium_init() < 0) {
        og_err("libsodium could not be initialised");
        goto out;
    }
    o.max_event_bytes = (size_t)max_bytes;
    o.max_rejected_bytes = (size_t)max_rej;
    o.max_age = age_days * 86400;
    o.max_future = 300;
    o.max_unanswered = (size_t)max_unanswered;
    /* The events passed on and unanswered are held until answered: bound their bytes,
     * not only their number (window), or 2000 large events would take 128 MiB. */
    o.max_inflight_bytes = (size_t)max_bytes * 4 > (16u << 20) ? (size_t)max_bytes * 4 : 16u << 20;

    /* CURVE: publishers prove who they are with their keys; both files or neither. */
    const char *key_file = og_config_get(cfg, "intake", "curve_secret_key_file");
    const char *pubs_file = og_config_get(cfg, "intake", "curve_publishers_file");
    if (!key_file != !pubs_file) {
        og_err("[intake] curve_secret_key_file and curve_publishers_file go together");
        goto out;
    }
    if (og_intake_check_listen(listen, key_file != NULL, allow_unauthenticated, err, sizeof(err)) <
        0) {
        og_err("%s", err);
        goto out;
    }
    if (!key_file && allow_unauthenticated)
        og_warn("[intake] allow_unauthenticated = yes: publishers do not authenticate, and "
                "whoever reaches %s may publish as any source system",
                listen);
    if (key_file && og_curve_key_read(key_file, secret, err, sizeof(err)) < 0) {
        og_err("curve_secret_key_file %s", err);
        goto out;
    }
    /* The link to dispatch: CURVE with intake's own link key, required on tcp://. */
    if (og_link_keys_read(cfg, "intake", NULL, "dispatch", dispatch_ep, &link_keys, err,
                          sizeof(err)) < 0) {
        og_err("%s", err);
        goto out;
    }

    ctx = zmq_ctx_new();
    if (pubs_file) { /* the ZAP handler is bound before the socket it vets */
        struct og_zap_opts zo = {.keys_file = pubs_file,
                                 .domain = ZAP_DOMAIN,
                                 .peer = "publisher",
                                 .log = og_log_warning_line};
        zap = og_zap_new(ctx, &zo, err, sizeof(err));
        if (!zap) {
            og_err("curve_publishers_file: %s", err);
            goto out;
        }
        og_notice("CURVE: publishers authenticate; %zu keys in %s", og_zap_count(zap), pubs_file);
    }
    if (og_check_config) {
        rc = og_daemon_check("intake", listen, "dispatch", dispatch_ep, NULL);
        goto out;
    }
    if (og_daemon_check_endpoints("intake", listen, "dispatch", dispatch_ep))
        goto out;
    rc = EXIT_FAILURE;
    struct og_router_opts ro = {.maxmsg = maxmsg,
                                .rcvhwm = PUBLISHER_RCVHWM,
                                .handshake_ms = HANDSHAKE_MS,
                                .server_secret = zap ? secret : NULL,
                                .zap_domain = ZAP_DOMAIN};
    pub = og_router_open(ctx, &ro, err, sizeof(err));
    sodium_memzero(secret, sizeof(secret));
    if (!pub) {
        og_err("publishers' socket: %s", err);
        goto out;
    }
    /* Watching connections before any is made: see peers.c. */
    struct og_peers_opts po = {.hold_max = hold_max,
                               .memory_max = SANITIZED ? 0 : (size_t)memory_mb << 20,
                               .memory_mb = (size_t)memory_mb,
                               .maxmsg = maxmsg,
                               .max_event_bytes = (size_t)max_bytes,
                               .curve = zap != NULL,
                               .max_connections = max_connections,
                               /* one address may not take every connection */
                               .max_per_address = max_connections / 2 < MAX_PER_ADDRESS
                                                      ? max_connections / 2
                                                      : MAX_PER_ADDRESS};
    og_notice("publisher connections: at most %zu at once, %zu from one address (what "
              "max_memory_mb = %ld holds, each up to %llu KiB)",
              po.max_connections, po.max_per_address, memory_mb,
              (unsigned long long)((po.hold_max + CONNECTION_BYTES) >> 10));
    peers = og_peers_new(ctx, pub, &po, err, sizeof(err));
    if (!peers || og_router_bind(pub, listen, err, sizeof(err)) < 0) {
        og_err("publishers' socket: %s", err);
        goto out;
    }
    dispatch = og_link_client_new(ctx, dispatch_ep, "intake", (size_t)window,
                                  (int64_t)resend_ms * 1000, &link_keys, err, sizeof(err));
    og_link_keys_clear(&link_keys);
    if (!dispatch) {
        og_err("link to dispatch: %s", err);
        goto out;
    }
    in = og_intake_new(&o, pub, zap, peers, dispatch);
    if (!in) {
        og_err("out of memory");
        goto out;
    }
    og_router_endpoint(pub, bound, sizeof(bound));
    og_daemon_ready("listening on %s (last bound: %s), dispatch at %s", listen, bound, dispatch_ep);
    rc = og_intake_run(in, (int)drain_ms) == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
out:
    og_metrics_server_stop(&metrics);
    og_link_keys_clear(&link_keys);
    og_intake_destroy(&in);
    og_link_client_destroy(&dispatch);
    og_peers_destroy(&peers, pub);
    if (pub)
        zmq_close(pub);
    og_zap_destroy(&zap);
    if (ctx)
        zmq_ctx_term(ctx);
    og_config_destroy(&cfg);
    return rc;
}
