#include "daemon.h"

#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>
#include <time.h>
#include <systemd/sd-daemon.h>

#include "db.h"
#include "frame_check.h"
#include "log.h"
#include "util.h"
#include "zsock.h"

volatile sig_atomic_t og_stop_requested;
volatile sig_atomic_t og_reload_requested;
int og_check_config;

static const char *daemon_name = "onegrid";
static const char *config_path = "";
static uint64_t watchdog_usec;   /* WatchdogSec= of the unit, 0 without */
static uint64_t watchdog_last;   /* CLOCK_MONOTONIC of the last WATCHDOG=1, in us */

static uint64_t mono_usec(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static void on_signal(int sig)
{
    if (sig == SIGHUP)
        og_reload_requested = 1;
    else
        og_stop_requested = 1;
}

static void usage(const char *name, FILE *out)
{
    fprintf(out,
            "usage: %s -c FILE [-v]\n"
            "  -c, --config FILE   configuration file (see deploy/conf/onegrid.conf)\n"
            "  -v, --verbose       log debug messages too\n"
            "      --check-config  check the configuration (sections, keys, ranges, endpoints,\n"
            "                      key files; the database schema when it is reachable)\n"
            "                      without binding anything, and exit: 0 good, 78 not\n"
            "      --version       print the version and exit\n",
            name);
}

struct og_config *og_daemon_start(int argc, char **argv, const char *name)
{
    static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
                                         {"verbose", no_argument, NULL, 'v'},
                                         {"help", no_argument, NULL, 'h'},
                                         {"version", no_argument, NULL, 'V'},
                                         {"check-config", no_argument, NULL, 'C'},
                                         {NULL, 0, NULL, 0}};
    const char *path = NULL;
    struct og_config *cfg;
    struct sigaction sa;
    char err[512];
    int c;

    while ((c = getopt_long(argc, argv, "c:vh", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            path = optarg;
            break;
        case 'v':
            og_log_set_level(LOG_DEBUG);
            break;
        case 'h':
            usage(name, stdout);
            exit(0);
        case 'V':
            printf("%s %s\n", name, ONEGRID_VERSION);
            exit(0);
        case 'C':
            og_check_config = 1;
            break;
        default:
            usage(name, stderr);
            exit(2);
        }
    }
    if (!path || optind != argc) {
        usage(name, stderr);
        exit(2);
    }
    static const char *const sections[] = {"database", "intake", "dispatch", "archive", NULL};
    daemon_name = name;
    config_path = path;
    cfg = og_config_load(path, err, sizeof(err));
    if (cfg && og_config_check_sections(cfg, sections, err, sizeof(err)) < 0) {
        og_err("\"%s\": %s", path, err);
        og_config_destroy(&cfg);
        return NULL;
    }
    if (!cfg) {
        og_err("%s", err);
        return NULL;
    }
    if (sd_watchdog_enabled(0, &watchdog_usec) <= 0)
        watchdog_usec = 0;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    return cfg;
}

void og_daemon_ready(const char *fmt, ...)
{
    char status[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(status, sizeof(status), fmt, ap);
    va_end(ap);
    og_notice("ready: %s", status);
    sd_notifyf(0, "READY=1\nSTATUS=%s", status);
}

void og_daemon_status(const char *fmt, ...)
{
    char status[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(status, sizeof(status), fmt, ap);
    va_end(ap);
    sd_notifyf(0, "STATUS=%s", status);
}

void og_daemon_stopping(void)
{
    sd_notify(0, "STOPPING=1");
}

void og_daemon_watchdog(void)
{
    uint64_t now;
    if (!watchdog_usec)
        return;
    now = mono_usec();
    if (now - watchdog_last >= watchdog_usec / 2) {
        sd_notify(0, "WATCHDOG=1");
        watchdog_last = now;
    }
}

void og_daemon_waiting(const char *status)
{
    /* 15 s from now: more than the caller's longest pause between calls (5 s). */
    sd_notifyf(0, "EXTEND_TIMEOUT_USEC=15000000\nSTATUS=%s", status);
    og_daemon_watchdog();
}

int og_daemon_check_endpoints(const char *section, const char *listen, const char *next_key,
                              const char *next)
{
    char err[512];
    int rc;
    if (listen && og_endpoint_check(listen, true, err, sizeof(err)) < 0) {
        og_err("[%s] listen: %s", section, err);
        return OG_EXIT_CONFIG;
    }
    if (next && (rc = og_endpoint_check(next, false, err, sizeof(err))) != 0) {
        if (rc < 0) {
            og_err("[%s] %s: %s", section, next_key, err);
            return OG_EXIT_CONFIG;
        }
        og_warn("[%s] %s: %s", section, next_key, err);
    }
    return 0;
}

int og_daemon_check(const char *section, const char *listen, const char *next_key,
                    const char *next, const char *conninfo)
{
    char err[512], schema[600] = "";
    if (og_daemon_check_endpoints(section, listen, next_key, next))
        return OG_EXIT_CONFIG;
    if (conninfo) {
        int rc = og_db_schema_probe(conninfo, daemon_name, err, sizeof(err));
        if (rc == -EPROTO) {
            og_err("%s", err);
            return OG_EXIT_CONFIG;
        }
        if (rc < 0)
            snprintf(schema, sizeof(schema),
                     "; the database could not be reached, so its schema was not checked (%s)",
                     err);
        else
            snprintf(schema, sizeof(schema), "; the database schema is version %03d, as needed",
                     og_db_schema_version());
    }
    printf("%s: configuration \"%s\" is good%s\n", daemon_name, config_path, schema);
    return 0;
}

void og_daemon_reloading(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    sd_notifyf(0, "RELOADING=1\nMONOTONIC_USEC=%llu",
               (unsigned long long)ts.tv_sec * 1000000ULL + (unsigned long long)ts.tv_nsec / 1000);
}

void og_daemon_reloaded(void)
{
    sd_notify(0, "READY=1");
}

void og_daemon_watch_hop(struct og_daemon_hop *h, const struct og_link_client *c)
{
    int64_t now = og_mono_us(), silent = og_link_client_silent_us(c, now);
    int64_t limit = 3 * og_link_client_resend_us(c);

    if (silent > limit && (!h->warned_at || now - h->warned_at >= 60000000)) {
        og_warn("%s has not answered for %.0f s while %zu frames wait for it%s: is it running, "
                "and listening where %s says? (with CURVE: is this daemon's link key in its "
                "link_clients_file, and its public key the one configured here?)",
                h->name, (double)silent / 1e6, og_link_client_held(c),
                og_link_client_connected(c) ? "" : " (not connected)", h->setting);
        h->warned_at = now;
    } else if (h->warned_at && silent <= og_link_client_resend_us(c)) {
        og_notice("%s answers again", h->name);
        h->warned_at = 0;
    }
}

void og_daemon_frame_dropped(struct og_frame_drops *drops, const char *from, const char *key,
                             const char *why)
{
    char k[80], text[256];
    uint64_t n = og_frame_check_count(drops, og_mono_us());
    if (!key)
        key = "";
    if (n)
        og_warn("dropped %llu malformed frame%s from %s (%llu in all); the last, key \"%s\": %s",
                (unsigned long long)n, n == 1 ? "" : "s", from, (unsigned long long)drops->total,
                og_utf8_safe((const uint8_t *)key, strlen(key), k, sizeof(k)),
                og_utf8_safe((const uint8_t *)why, strlen(why), text, sizeof(text)));
}
