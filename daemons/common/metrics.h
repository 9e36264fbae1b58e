/* A daemon's Prometheus metrics: a process-wide registry of counters, gauges and
 * histograms, and an HTTP server (libmicrohttpd, on its own thread) that serves them in the
 * text exposition format 0.0.4 at /metrics, and a one-line health record at /health.
 *
 * The registry is process-wide, like the default registry of Prometheus client libraries,
 * so that a module counts with one line and no handle travels through its constructor.
 * The daemon's thread writes values, the server's thread reads them: every value is a C11
 * atomic (relaxed: a scrape sees each value as it was at some instant, not all of them at
 * one instant); the list of series is behind a mutex, taken to register and to render,
 * never to count. Series are registered once and live until the process exits; their
 * number never depends on input: label values come from the code (enum names), never
 * from a peer. Every og_metrics_* call on a NULL series does nothing. Nothing here logs. */
#ifndef OG_METRICS_H
#define OG_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "link.h"

struct og_metric;

/* Registers a series name{labels} (labels: "" or NULL, or `key="value",...` as written by
 * the code) and returns it; the same name and labels again return the same series. help
 * is the family's HELP line (the first one registered counts). NULL on ENOMEM, or when
 * name is registered with another type. Counter names end in _total. */
struct og_metric *og_metrics_counter(const char *name, const char *labels, const char *help);
struct og_metric *og_metrics_gauge(const char *name, const char *labels, const char *help);
/* A histogram with n upper bounds (ascending; +Inf is added). */
struct og_metric *og_metrics_histogram(const char *name, const char *labels, const char *help,
                                       const double *bounds, size_t n);

void og_metrics_inc(struct og_metric *c);
void og_metrics_add(struct og_metric *c, uint64_t n);
/* Sets a counter kept elsewhere (a module's own statistics) to its current value. */
void og_metrics_counter_set(struct og_metric *c, uint64_t v);
void og_metrics_set(struct og_metric *g, int64_t v);
void og_metrics_observe(struct og_metric *h, double v);
/* The value of a counter or gauge (for tests); 0 for NULL. */
int64_t og_metrics_value(const struct og_metric *m);

/* One series per rejection reason (onegrid.v1.Reason, REASON_UNSPECIFIED to the last
 * value): out[r] is name{reason="too_large"} for REASON_TOO_LARGE, and so on. labels:
 * further labels, or NULL. out holds OG_METRICS_REASONS entries. */
#define OG_METRICS_REASONS 32
void og_metrics_by_reason(struct og_metric **out, const char *name, const char *labels,
                          const char *help);
/* The series of out for reason r (an unknown value counts as REASON_UNSPECIFIED). */
struct og_metric *og_metrics_reason(struct og_metric **out, int r);

/* The main loop turned (og_mono_us() now): onegrid_loop_stall_seconds at a scrape is the
 * time since. A loop stuck in a call (a database that does not answer) shows there. */
void og_metrics_loop(void);
/* The last error (database unavailable, say), with the time it happened: served at
 * /health and as onegrid_last_error_timestamp_seconds. text is copied (cut to fit). */
void og_metrics_error(const char *text);

/* The gauges and counters of one link end, updated from the daemon's thread (call
 * og_metrics_link_update* each loop turn). peer names the other end ("dispatch"). */
struct og_metrics_link {
    struct og_metric *queued, *in_flight, *credit, *connected;
    struct og_metric *sent, *resent, *send_failures, *reconnects, *bad_frames, *forgotten;
};
void og_metrics_link_client_init(struct og_metrics_link *ml, const char *peer);
void og_metrics_link_client_update(struct og_metrics_link *ml, const struct og_link_client *c);
void og_metrics_link_server_init(struct og_metrics_link *ml, const char *peer);
void og_metrics_link_server_update(struct og_metrics_link *ml, const struct og_link_server *s);

/* The registry in the text exposition format 0.0.4, in a new buffer (free it), *len set.
 * NULL on ENOMEM. */
char *og_metrics_render(size_t *len);

/* Server ----------------------------------------------------------------------------- */

struct og_metrics_server;

/* Checks a metrics_listen value: "HOST:PORT" with HOST an IPv4 address or a bracketed
 * IPv6 address ("[::1]:9731"), PORT 1..65535. Without allow_remote only loopback
 * addresses (127.0.0.0/8, ::1) are taken: the metrics have no authentication. 0, or
 * -EINVAL / -EPERM with err filled. */
int og_metrics_check_listen(const char *listen, bool allow_remote, char *err, size_t errlen);
/* Serves /metrics and /health on listen for daemon ("intake") on a thread of its own:
 * at most a few connections, each with a short timeout; GET and HEAD only. Registers
 * onegrid_build_info and the process's metrics. NULL with err filled (the address is
 * taken, say). */
struct og_metrics_server *og_metrics_server_start(const char *listen, bool allow_remote,
                                                  const char *daemon, char *err, size_t errlen);
/* The server section asks for: none (*s NULL, 0) without metrics_listen, else one
 * started on it (metrics_allow_remote = yes|no, default no); with start false (a
 * configuration check) the keys are checked and nothing is bound. 0, or -errno with err
 * filled. */
struct og_config;
int og_metrics_server_config(const struct og_config *cfg, const char *section, bool start,
                             struct og_metrics_server **s, char *err, size_t errlen);
/* Stops the thread and closes the socket. Accepts NULL; sets *s to NULL. */
void og_metrics_server_stop(struct og_metrics_server **s);

#endif
