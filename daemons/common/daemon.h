/* What every onegrid daemon's main does the same way: parse "-c FILE", load the config,
 * install signal handlers that set flags, and talk to systemd (READY, STATUS, STOPPING).
 * Logs, since only daemons call it. */
#ifndef OG_DAEMON_H
#define OG_DAEMON_H

#include <signal.h>

#include "config.h"
#include "link.h"

extern volatile sig_atomic_t og_stop_requested;
extern volatile sig_atomic_t og_reload_requested;
/* --check-config was given: check everything without binding, print the verdict, exit. */
extern int og_check_config;

/* The exit status for a configuration the daemon cannot run with (sysexits.h EX_CONFIG):
 * the units say RestartPreventExitStatus=78, so systemd does not restart it in a loop. A
 * database schema other than the one this build needs exits so too. */
#define OG_EXIT_CONFIG 78

/* Parses argv (-c FILE, -v, -h, --version, --check-config), loads the config, refuses a
 * section no daemon reads, and installs SIGTERM, SIGINT and SIGHUP handlers. Exits the
 * process with a usage message on bad arguments; returns NULL when the config cannot be
 * loaded (already logged: exit with OG_EXIT_CONFIG). */
struct og_config *og_daemon_start(int argc, char **argv, const char *name);
/* sd_notify READY=1 plus a status line, and the "<5>ready" log line scripts wait for. */
void og_daemon_ready(const char *status_fmt, ...) __attribute__((format(printf, 1, 2)));
void og_daemon_status(const char *status_fmt, ...) __attribute__((format(printf, 1, 2)));
void og_daemon_stopping(void);
/* Tells systemd's watchdog (WatchdogSec=) the main loop is alive: call it every turn; it
 * sends WATCHDOG=1 at most every half interval, and nothing without a watchdog. */
void og_daemon_watchdog(void);
/* While start-up waits (for the database): STATUS=status, and EXTEND_TIMEOUT_USEC so
 * that TimeoutStartSec= does not end a daemon that is only waiting; call it at least
 * every few seconds. Feeds the watchdog too. */
void og_daemon_waiting(const char *status);
/* Watches the next daemon of the pipeline: says (warning) when it has not answered for
 * three resend intervals while something waits for it, again every minute while that
 * lasts, and (notice) when it answers within a resend interval again. Call og_daemon_watch_hop every loop turn. */
struct og_daemon_hop {
    const char *name;     /* "dispatch", "archive" */
    const char *setting;  /* the setting that says where it is: "[intake] dispatch" */
    int64_t warned_at;    /* og_mono_us() of the last warning, 0: none since it answered */
};
void og_daemon_watch_hop(struct og_daemon_hop *h, const struct og_link_client *c);
struct og_frame_drops;
/* Says that a malformed frame from a link (from: "intake", "dispatch") was dropped, as
 * often as og_frame_check_count lets it (frame_check.h), with the count since and in all,
 * and the last one's key and why. */
void og_daemon_frame_dropped(struct og_frame_drops *drops, const char *from, const char *key,
                             const char *why);
/* Checks a daemon's endpoints without binding or connecting (og_endpoint_check): listen
 * (NULL: none) and the next hop's, named next_key in section (NULL: none). An invalid one
 * is logged; one to connect to that has no socket yet is a warning (the next daemon is
 * not up, or the path is mistyped). 0, or OG_EXIT_CONFIG. */
int og_daemon_check_endpoints(const char *section, const char *listen, const char *next_key,
                              const char *next);
/* --check-config, once the config is read and checked: the endpoints as above, and with
 * conninfo (NULL: none) the database schema against this build's, when the database can
 * be reached (when not, says so). Prints the verdict; returns the exit status: 0, or
 * OG_EXIT_CONFIG. */
int og_daemon_check(const char *section, const char *listen, const char *next_key,
                    const char *next, const char *conninfo);
/* Brackets a configuration or registry reload for systemd (Type=notify on systemd 252 has
 * no notify-reload: RELOADING=1 with MONOTONIC_USEC=, then READY=1). */
void og_daemon_reloading(void);
void og_daemon_reloaded(void);

#endif
