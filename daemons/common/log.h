/* Logging for the daemons: one line per message on stderr, prefixed with the syslog
 * priority as "<N>" so the journal keeps it (no timestamps: the journal adds them).
 * Only the daemons and onegridctl log; the rest of daemons/common returns error codes
 * and fills caller-owned error buffers instead. */
#ifndef OG_LOG_H
#define OG_LOG_H

#include <syslog.h>

/* Messages less important than level (a LOG_* priority) are dropped. Default LOG_INFO. */
void og_log_set_level(int level);
void og_log(int priority, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* A warning line a module of daemons/common handed over (a callback for og_zap_opts.log
 * and the like); arg is unused. */
void og_log_warning_line(void *arg, const char *line);

#define og_err(...)    og_log(LOG_ERR, __VA_ARGS__)
#define og_warn(...)   og_log(LOG_WARNING, __VA_ARGS__)
#define og_notice(...) og_log(LOG_NOTICE, __VA_ARGS__)
#define og_info(...)   og_log(LOG_INFO, __VA_ARGS__)
#define og_debug(...)  og_log(LOG_DEBUG, __VA_ARGS__)

#endif
