/* onegrid-intake: arguments, configuration, sockets, readiness; the work is in intake.c. */
#include <sodium.h>
#include <stdlib.h>
#include <zmq.h>

#include "daemon.h"
#include "intake.h"
#include "log.h"
#include "zap.h"
#include "zsock.h"

static const char *const known_keys[] = {
    "listen", "dispatch",  "max_event_bytes", "max_rejected_bytes",    "max_event_age_days",
    "window", "resend_ms", "drain_ms",        "curve_secret_key_file", "curve_publishers_file",
    NULL};

int main(int argc, char **argv)
{
    struct og_config *cfg = og_daemon_start(argc, argv, "onegrid-intake");
    struct og_intake_opts o = {0};
    struct og_link_client *dispatch = NULL;
    struct og_intake *in = NULL;
    struct og_zap *zap = NULL;
    void *ctx = NULL, *pub = NULL;
    char secret[41] = "";
    long max_bytes, max_rej, age_days, window, resend_ms, drain_ms;
    char err[512], bound[256];
    int rc = EXIT_FAILURE;

    if (!cfg)
        return EXIT_FAILURE;
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
        og_config_int(cfg, "intake", "drain_ms", 10000, 0, 600000, &drain_ms, err, sizeof(err))) {
        og_err("%s", err);
        goto out;
    }
    const char *listen = og_config_get(cfg, "intake", "listen");
    const char *dispatch_ep = og_config_get(cfg, "intake", "dispatch");
    if (!listen || !dispatch_ep) {
        og_err("[intake] listen and dispatch are required");
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

    /* CURVE: publishers prove who they are with their keys; both files or neither. */
    const char *key_file = og_config_get(cfg, "intake", "curve_secret_key_file");
    const char *pubs_file = og_config_get(cfg, "intake", "curve_publishers_file");
    if (!key_file != !pubs_file) {
        og_err("[intake] curve_secret_key_file and curve_publishers_file go together");
        goto out;
    }
    if (key_file && og_curve_key_read(key_file, secret, err, sizeof(err)) < 0) {
        og_err("curve_secret_key_file %s", err);
        goto out;
    }

    ctx = zmq_ctx_new();
    if (pubs_file) { /* the ZAP handler is bound before the socket it vets */
        zap = og_zap_new(ctx, pubs_file, err, sizeof(err));
        if (!zap) {
            og_err("curve_publishers_file: %s", err);
            goto out;
        }
        og_notice("CURVE: publishers authenticate; %zu keys in %s", og_zap_count(zap), pubs_file);
    }
    /* Oversized frames are answered by us (REASON_TOO_LARGE). libzmq's own limit drops
     * the connection without a word (PITFALLS.md), so it sits far above ours and only
     * guards memory against abuse: 16 MiB, or 4x max_event_bytes if that is more. */
    int64_t zmq_limit = (int64_t)max_bytes * 4 + 4096;
    pub = og_router_new_curve(ctx, listen, zmq_limit > (16 << 20) ? zmq_limit : (16 << 20),
                              zap ? secret : NULL, "onegrid", err, sizeof(err));
    sodium_memzero(secret, sizeof(secret));
    if (!pub) {
        og_err("publishers' socket: %s", err);
        goto out;
    }
    dispatch = og_link_client_new(ctx, dispatch_ep, "intake", (size_t)window,
                                  (int64_t)resend_ms * 1000, err, sizeof(err));
    if (!dispatch) {
        og_err("link to dispatch: %s", err);
        goto out;
    }
    in = og_intake_new(&o, pub, zap, dispatch);
    if (!in) {
        og_err("out of memory");
        goto out;
    }
    og_router_endpoint(pub, bound, sizeof(bound));
    og_daemon_ready("listening on %s (last bound: %s), dispatch at %s", listen, bound, dispatch_ep);
    rc = og_intake_run(in, (int)drain_ms) == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
out:
    og_intake_destroy(&in);
    og_link_client_destroy(&dispatch);
    if (pub)
        zmq_close(pub);
    og_zap_destroy(&zap);
    if (ctx)
        zmq_ctx_term(ctx);
    og_config_destroy(&cfg);
    return rc;
}
