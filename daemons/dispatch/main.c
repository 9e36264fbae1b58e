/* onegrid-dispatch: arguments, configuration, sockets, readiness; the work is in
 * dispatch.c and the modules it names. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

#include "daemon.h"
#include "db.h"
#include "dispatch.h"
#include "log.h"
#include "metrics.h"

static const char *const known_keys[] = {"metrics_listen",
                                         "metrics_allow_remote",
                                         "listen",
                                         "archive",
                                         "shard",
                                         "conninfo",
                                         "credit",
                                         "window",
                                         "resend_ms",
                                         "drain_ms",
                                         "escalation_scan_ms",
                                         "merge_window_hours",
                                         "merge_distance_m",
                                         "max_clock_step_s",
                                         "link_secret_key_file",
                                         "link_clients_file",
                                         "archive_public_key_file",
                                         "lock_timeout_ms",
                                         "extension_decision_days",
                                         NULL};

int main(int argc, char **argv)
{
    struct og_config *cfg = og_daemon_start(argc, argv, "onegrid-dispatch");
    struct og_dispatch_opts o = {0};
    struct og_link_server *in = NULL;
    struct og_link_client *out = NULL;
    struct og_link_keys keys = {0};
    struct og_dispatch *d = NULL;
    struct og_metrics_server *metrics = NULL;
    void *ctx = NULL;
    long credit, window, resend_ms, drain_ms, scan_ms, merge_hours, merge_m, clock_step_s,
        decision_days;
    long lock_ms;
    char err[512], host[64], holder[128];
    /* Until the configuration is known to be good, a failure is the configuration's. */
    int rc = OG_EXIT_CONFIG;

    if (!cfg)
        return OG_EXIT_CONFIG;
    if (og_config_check_keys(cfg, "dispatch", known_keys, err, sizeof(err)) ||
        og_config_int(cfg, "dispatch", "credit", 2000, 1, 100000, &credit, err, sizeof(err)) ||
        og_config_int(cfg, "dispatch", "window", 4000, 1, 100000, &window, err, sizeof(err)) ||
        og_config_int(cfg, "dispatch", "resend_ms", 5000, 100, 600000, &resend_ms, err,
                      sizeof(err)) ||
        og_config_int(cfg, "dispatch", "drain_ms", 10000, 0, 600000, &drain_ms, err, sizeof(err)) ||
        og_config_int(cfg, "dispatch", "escalation_scan_ms", 60000, 100, 3600000, &scan_ms, err,
                      sizeof(err)) ||
        og_config_int(cfg, "dispatch", "extension_decision_days", 1, 0, 30, &decision_days, err,
                      sizeof(err)) ||
        og_config_int(cfg, "dispatch", "merge_window_hours", 72, 0, 24 * 365, &merge_hours, err,
                      sizeof(err)) ||
        og_config_int(cfg, "dispatch", "merge_distance_m", 150, 1, 100000, &merge_m, err,
                      sizeof(err)) ||
        og_config_int(cfg, "dispatch", "max_clock_step_s", 60, 1, 86400, &clock_step_s, err,
                      sizeof(err)) ||
        og_config_int(cfg, "dispatch", "lock_timeout_ms", 10000, 0, 3600000, &lock_ms, err,
                      sizeof(err))) {
        og_err("%s", err);
        goto out;
    }
    const char *listen = og_config_get(cfg, "dispatch", "listen");
    const char *archive = og_config_get(cfg, "dispatch", "archive");
    o.shard = og_config_get(cfg, "dispatch", "shard");
    o.conninfo =
        og_config_str(cfg, "dispatch", "conninfo", og_config_get(cfg, "database", "conninfo"));
    if (!listen || !archive || !o.shard || !o.conninfo) {
        og_err("[dispatch] listen, archive, shard and conninfo (or [database] conninfo) are "
               "required");
        goto out;
    }
    /* A shard is a prefix of the unified area codes (digits): anything else would start,
     * take an epoch and refuse every report as outside it, blaming the publishers. */
    if (!*o.shard || strlen(o.shard) > 15 || strspn(o.shard, "0123456789") != strlen(o.shard)) {
        og_err("[dispatch] shard: \"%s\" is not a unified area code prefix (1 to 15 digits: "
               "6502 for a city, 650204 for a district)",
               o.shard);
        goto out;
    }
    if (og_metrics_server_config(cfg, "dispatch", !og_check_config, &metrics, err, sizeof(err)) <
        0) {
        og_err("%s", err);
        goto out;
    }
    if (gethostname(host, sizeof(host)) != 0)
        snprintf(host, sizeof(host), "localhost");
    snprintf(holder, sizeof(holder), "%s:%ld", host, (long)getpid());
    o.holder = holder;
    o.drain_ms = (int)drain_ms;
    o.escalation_scan_us = (int64_t)scan_ms * 1000;
    o.max_clock_step_us = (int64_t)clock_step_s * 1000000;
    o.lock_timeout_ms = lock_ms;
    o.merge.window = (int64_t)merge_hours * 3600;
    o.extension_decision_days = (int)decision_days;
    o.merge.distance_m = (double)merge_m;

    /* The links: CURVE with dispatch's own key pair, required on tcp://. */
    if (og_link_keys_read(cfg, "dispatch", listen, "archive", archive, &keys, err, sizeof(err)) <
        0) {
        og_err("%s", err);
        goto out;
    }
    if (og_check_config) {
        rc = og_daemon_check("dispatch", listen, "archive", archive, o.conninfo);
        goto out;
    }
    if (og_daemon_check_endpoints("dispatch", listen, "archive", archive))
        goto out;
    rc = EXIT_FAILURE;
    ctx = zmq_ctx_new();
    out = og_link_client_new(ctx, archive, "dispatch", (size_t)window, (int64_t)resend_ms * 1000,
                             &keys, err, sizeof(err));
    if (!out) {
        og_err("link to archive: %s", err);
        goto out;
    }
    /* PostgreSQL may be away (restarting, or not up yet at boot): keep trying, with
     * backoff up to 5 s, until it answers or we are told to stop. */
    for (long wait_ms = 100;; wait_ms *= 2) {
        /* A schema this build was not made for will not change by waiting. */
        int schema = og_db_schema_probe(o.conninfo, "onegrid-dispatch", err, sizeof(err));
        if (schema == -EPROTO) {
            og_err("%s", err);
            rc = OG_EXIT_CONFIG;
            goto out;
        }
        if (schema == 0 && (d = og_dispatch_new(&o, NULL, out)))
            break;
        if (schema < 0)
            og_err("could not load state from the database (retrying): %s", err);
        if (wait_ms > 5000)
            wait_ms = 5000;
        og_daemon_waiting("waiting for the database to load state");
        for (long slept = 0; slept < wait_ms && !og_stop_requested; slept += 50)
            usleep(50000);
        if (og_stop_requested) {
            rc = EXIT_SUCCESS;
            goto out;
        }
    }
    /* Listen only once state is loaded, so intake's frames wait in intake meanwhile. */
    struct og_link_server_opts so = {
        .endpoints = listen, .credit = (uint32_t)credit, .keys = &keys, .log = og_log_warning_line};
    in = og_link_server_open(ctx, &so, err, sizeof(err));
    if (!in) {
        og_err("listening socket: %s", err);
        goto out;
    }
    if (og_link_keys_server(&keys))
        og_notice("CURVE: link clients authenticate; %zu keys in %s", og_link_server_auth_keys(in),
                  keys.clients_file);
    og_link_keys_clear(&keys);
    og_dispatch_set_intake(d, in);
    og_daemon_ready("shard %s epoch %llu, listening on %s, archive at %s", o.shard,
                    (unsigned long long)og_dispatch_epoch(d), listen, archive);
    rc = og_dispatch_run(d);
    if (rc == -ESTALE)
        og_notice("exiting so that a restart reloads committed state");
    rc = rc == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
out:
    og_metrics_server_stop(&metrics);
    og_link_keys_clear(&keys);
    og_dispatch_destroy(&d);
    og_link_server_destroy(&in);
    og_link_client_destroy(&out);
    if (ctx)
        zmq_ctx_term(ctx);
    og_config_destroy(&cfg);
    return rc;
}
