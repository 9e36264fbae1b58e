/* Small helpers shared by every onegrid program: clocks, RFC 3339 times, UTF-8 checks,
 * idempotency keys. Pure functions; nothing here logs or allocates unless it says so. */
#ifndef OG_UTIL_H
#define OG_UTIL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define OG_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* The times onegrid takes, as RFC 3339 and PostgreSQL's timestamptz share them:
 * 0001-01-01T00:00:00Z .. 9999-12-31T23:59:59Z, in Unix seconds. */
#define OG_TIME_MIN (-62135596800LL)
#define OG_TIME_MAX 253402300799LL

/* Wall clock and monotonic clock in microseconds. */
int64_t og_now_us(void);
int64_t og_mono_us(void);

/* Parses an RFC 3339 date-time ("2026-11-20T09:15:00+08:00", "(...)Z", optional fraction).
 * Returns 0 and sets *seconds and *nanos, or -EINVAL. */
int og_time_parse(const char *s, int64_t *seconds, int32_t *nanos);
/* Formats seconds/nanos as RFC 3339 UTC ("2026-11-20T01:15:00Z", or with .nnnnnnnnnZ
 * when nanos != 0) into buf (at least 40 bytes). Returns buf. */
char *og_time_format(int64_t seconds, int32_t nanos, char *buf, size_t size);

/* True when s[0..len) is valid UTF-8 (no overlongs, no surrogates, max U+10FFFF). */
bool og_utf8_valid(const uint8_t *s, size_t len);
/* Number of code points in valid UTF-8 s[0..len). */
size_t og_utf8_length(const uint8_t *s, size_t len);
/* The longest prefix of valid UTF-8 s[0..len) that is at most max bytes and ends on a
 * character boundary: where to cut a text so that it stays valid UTF-8. */
size_t og_utf8_cut(const char *s, size_t len, size_t max);
/* Copies s[0..len) into buf (size > 0) as text that is safe to store and to log: valid
 * UTF-8 (each invalid byte becomes '?'), no control characters (each becomes '?'), cut
 * on a character boundary to fit size - 1 bytes. Returns buf. */
char *og_utf8_safe(const uint8_t *s, size_t len, char *buf, size_t size);
/* vsnprintf into buf (size > 0), then made safe as og_utf8_safe does: for texts that
 * quote what a peer sent (refusal texts, log lines). Returns buf. */
char *og_safe_vformat(char *buf, size_t size, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));

/* The idempotency key of an event, "source\x1fid", into buf. Returns -ENAMETOOLONG when
 * it does not fit. */
int og_event_key(const char *source, const char *id, char *buf, size_t size);

/* Retrying something that failed (a database that went away): each failure doubles the
 * wait, from 100 ms up to 5 s; a success resets it. Times are og_mono_us() values. */
struct og_backoff {
    int64_t wait;  /* 0 while things work */
    int64_t until; /* no retry before this */
};

/* Records a failure; returns true when it is the first of a run (log it once). */
bool og_backoff_failed(struct og_backoff *b);
/* Records a success; returns true when it ends a run of failures. */
bool og_backoff_succeeded(struct og_backoff *b);
bool og_backoff_ready(const struct og_backoff *b);

/* Lowercase hex of len bytes into buf (2*len+1 bytes). Returns buf. */
char *og_hex(const uint8_t *data, size_t len, char *buf);

/* Where a secret key file named in the config is: "credential:NAME" is the credential
 * NAME that systemd passed to the service (LoadCredential=NAME:FILE, a file in
 * $CREDENTIALS_DIRECTORY that only the service may read); anything else is a path. 0, or
 * -ENOENT with err filled (no credentials directory, or NAME not a plain file name). */
int og_secret_path(const char *spec, char *path, size_t size, char *err, size_t errlen);
/* Whether a secret key file's mode (st_mode) keeps it private: no bit for group or others.
 * A credential (spec "credential:NAME") is the exception for the group bits but write:
 * systemd makes it 0400 and lets the service's user read it by an ACL entry, whose mask
 * stat shows as the group's bits (0440). */
bool og_secret_mode_ok(const char *spec, unsigned mode);

#endif
