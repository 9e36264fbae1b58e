/* What every onegrid daemon's main does the same way: parse "-c FILE", load the config,
 * install signal handlers that set flags, and talk to systemd (READY, STATUS, STOPPING).
 * Logs, since only daemons call it. */
#ifndef OG_DAEMON_H
#define OG_DAEMON_H

#include <signal.h>

#include "config.h"

extern volatile sig_atomic_t og_stop_requested;
extern volatile sig_atomic_t og_reload_requested;

/* Parses argv (-c FILE, -v, -h, --version), loads the config and installs SIGTERM,
 * SIGINT and SIGHUP handlers. Exits the process with a usage message on bad arguments;
 * returns NULL when the config cannot be loaded (already logged). */
struct og_config *og_daemon_start(int argc, char **argv, const char *name);
/* sd_notify READY=1 plus a status line, and the "<5>ready" log line scripts wait for. */
void og_daemon_ready(const char *status_fmt, ...) __attribute__((format(printf, 1, 2)));
void og_daemon_status(const char *status_fmt, ...) __attribute__((format(printf, 1, 2)));
void og_daemon_stopping(void);
/* Brackets a configuration or registry reload for systemd (Type=notify on systemd 252 has
 * no notify-reload: RELOADING=1 with MONOTONIC_USEC=, then READY=1). */
void og_daemon_reloading(void);
void og_daemon_reloaded(void);

#endif
