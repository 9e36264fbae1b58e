/* onegrid-archive: arguments, configuration, sockets, readiness; the work is in
 * archive.c and store.c. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

#include "archive.h"
#include "daemon.h"
#include "log.h"
#include "metrics.h"
#include "util.h"

static const char *const known_keys[] = {"metrics_listen",
                                         "metrics_allow_remote",
                                         "listen",
                                         "conninfo",
                                         "batch_max",
                                         "batch_wait_ms",
                                         "credit",
                                         "drain_ms",
                                         "name",
                                         "signing_key",
                                         "link_secret_key_file",
                                         "link_clients_file",
                                         "lock_timeout_ms",
                                         NULL};

int main(int argc, char **argv)
{
    struct og_config *cfg = og_daemon_start(argc, argv, "onegrid-archive");
    struct og_archive_opts o = {0};
    struct og_link_server *srv = NULL;
    struct og_link_keys keys = {0};
    struct og_store *store = NULL;
    struct og_archive *a = NULL;
    struct og_metrics_server *metrics = NULL;
    void *ctx = NULL;
    long batch_max, wait_ms, credit, drain_ms, lock_ms;
    char err[512], host[64], name[128];
    /* Until the configuration is known to be good, a failure is the configuration's. */
    int rc = OG_EXIT_CONFIG;

    if (!cfg)
        return OG_EXIT_CONFIG;
    if (og_config_check_keys(cfg, "archive", known_keys, err, sizeof(err)) ||
        og_config_int(cfg, "archive", "batch_max", 1000, 1, 10000, &batch_max, err, sizeof(err)) ||
        og_config_int(cfg, "archive", "batch_wait_ms", 0, 0, 10000, &wait_ms, err, sizeof(err)) ||
        og_config_int(cfg, "archive", "credit", 2000, 1, 100000, &credit, err, sizeof(err)) ||
        og_config_int(cfg, "archive", "drain_ms", 10000, 0, 600000, &drain_ms, err, sizeof(err)) ||
        og_config_int(cfg, "archive", "lock_timeout_ms", 20000, 0, 3600000, &lock_ms, err,
                      sizeof(err))) {
        og_err("%s", err);
        goto out;
    }
    const char *listen = og_config_get(cfg, "archive", "listen");
    const char *conninfo =
        og_config_str(cfg, "archive", "conninfo", og_config_get(cfg, "database", "conninfo"));
    if (!listen || !conninfo) {
        og_err("[archive] listen and conninfo (or [database] conninfo) are required");
        goto out;
    }
    if (og_metrics_server_config(cfg, "archive", !og_check_config, &metrics, err, sizeof(err)) <
        0) {
        og_err("%s", err);
        goto out;
    }
    /* The link from dispatch: CURVE with archive's own key pair, required on tcp://. */
    if (og_link_keys_read(cfg, "archive", listen, NULL, NULL, &keys, err, sizeof(err)) < 0) {
        og_err("%s", err);
        goto out;
    }
    if (gethostname(host, sizeof(host)) != 0)
        snprintf(host, sizeof(host), "localhost");
    /* The name is stored with each batch (og.batch.archive): cut, it could end inside a
     * character, and every batch would then fail in the database for ever. */
    const char *named = og_config_str(cfg, "archive", "name", host);
    if (!*named || strlen(named) >= sizeof(name)) {
        og_err("[archive] name: %zu bytes; give 1 to %zu", strlen(named), sizeof(name) - 1);
        goto out;
    }
    /* No control character (og_utf8_safe's: C0, DEL, C1): the name is shown to auditors. */
    char safe[sizeof(name)];
    if (strcmp(og_utf8_safe((const uint8_t *)named, strlen(named), safe, sizeof(safe)), named) !=
        0) {
        og_err("[archive] name: \"%s\" has control characters (shown as ?): the name is shown "
               "to auditors",
               safe);
        goto out;
    }
    snprintf(name, sizeof(name), "%s", named);
    o.batch_max = (size_t)batch_max;
    o.batch_wait = wait_ms * 1000;
    o.name = name;

    store = og_store_new(conninfo, name);
    if (!store) {
        og_err("out of memory");
        goto out;
    }
    og_store_lock_timeout(store, lock_ms);
    /* The key that signs every chain link: kept here, never in the database, so that
     * whoever owns the database cannot rewrite the record and sign it again. */
    const char *signing_key = og_config_get(cfg, "archive", "signing_key");
    if (signing_key) {
        if (og_store_signing_key(store, signing_key, err, sizeof(err)) < 0) {
            og_err("[archive] signing_key: %s", err);
            goto out;
        }
    } else {
        og_warn("no [archive] signing_key: chain links are not signed, so whoever owns the "
                "database can rewrite the record and recompute its chains unseen "
                "(docs/auditing.md)");
    }
    if (og_check_config) {
        rc = og_daemon_check("archive", listen, NULL, NULL, conninfo);
        goto out;
    }
    if (og_daemon_check_endpoints("archive", listen, NULL, NULL))
        goto out;
    /* Start even when PostgreSQL is away: records are held (and credit with them) until
     * it is back, which is what the rest of the pipeline expects. */
    int db = og_store_connect(store, err, sizeof(err));
    if (db == -EPROTO) { /* a schema this build was not made for */
        og_err("%s", err);
        goto out;
    }
    if (db < 0)
        og_warn("database unavailable at start, will retry: %s", err);
    rc = EXIT_FAILURE;
    ctx = zmq_ctx_new();
    struct og_link_server_opts so = {
        .endpoints = listen, .credit = (uint32_t)credit, .keys = &keys, .log = og_log_warning_line};
    srv = og_link_server_open(ctx, &so, err, sizeof(err));
    if (!srv) {
        og_err("listening socket: %s", err);
        goto out;
    }
    if (og_link_keys_server(&keys))
        og_notice("CURVE: link clients authenticate; %zu keys in %s", og_link_server_auth_keys(srv),
                  keys.clients_file);
    og_link_keys_clear(&keys);
    a = og_archive_new(&o, srv, store);
    if (!a) {
        og_err("out of memory");
        goto out;
    }
    og_daemon_ready("listening on %s, batches of up to %ld", listen, batch_max);
    rc = og_archive_run(a, (int)drain_ms) == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
out:
    og_metrics_server_stop(&metrics);
    og_link_keys_clear(&keys);
    og_archive_destroy(&a);
    og_link_server_destroy(&srv);
    og_store_destroy(&store);
    if (ctx)
        zmq_ctx_term(ctx);
    og_config_destroy(&cfg);
    return rc;
}
