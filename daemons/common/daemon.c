#include "daemon.h"

#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <systemd/sd-daemon.h>

#include "log.h"

volatile sig_atomic_t og_stop_requested;
volatile sig_atomic_t og_reload_requested;

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
            "      --version       print the version and exit\n",
            name);
}

struct og_config *og_daemon_start(int argc, char **argv, const char *name)
{
    static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
                                         {"verbose", no_argument, NULL, 'v'},
                                         {"help", no_argument, NULL, 'h'},
                                         {"version", no_argument, NULL, 'V'},
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
        default:
            usage(name, stderr);
            exit(2);
        }
    }
    if (!path || optind != argc) {
        usage(name, stderr);
        exit(2);
    }
    cfg = og_config_load(path, err, sizeof(err));
    if (!cfg) {
        og_err("%s", err);
        return NULL;
    }
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
