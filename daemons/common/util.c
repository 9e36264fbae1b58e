#include "util.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int64_t og_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t og_mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int digits(const char **p, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)**p))
            return -EINVAL;
        v = v * 10 + (**p - '0');
        (*p)++;
    }
    *out = v;
    return 0;
}

static int expect(const char **p, const char *set)
{
    if (**p == '\0' || !strchr(set, **p))
        return -EINVAL;
    (*p)++;
    return 0;
}

/* Days from 1970-01-01 to y-m-d in the proleptic Gregorian calendar (Howard Hinnant's
 * days_from_civil); timegm() would depend on TZ handling we do not need. */
static int64_t days_from_civil(int y, int m, int d)
{
    y -= m <= 2;
    const int64_t era = (y >= 0 ? y : y - 399) / 400;
    const int64_t yoe = y - era * 400;
    const int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    const int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

int og_time_parse(const char *s, int64_t *seconds, int32_t *nanos)
{
    static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    const char *p = s;
    int y, mo, d, h, mi, sec, oh = 0, om = 0, sign = 0;
    int32_t ns = 0;

    if (digits(&p, 4, &y) || expect(&p, "-") || digits(&p, 2, &mo) || expect(&p, "-") ||
        digits(&p, 2, &d) || expect(&p, "Tt ") || digits(&p, 2, &h) || expect(&p, ":") ||
        digits(&p, 2, &mi) || expect(&p, ":") || digits(&p, 2, &sec))
        return -EINVAL;
    if (*p == '.') {
        int n = 0;
        p++;
        while (isdigit((unsigned char)*p)) {
            if (n < 9) {
                ns = ns * 10 + (*p - '0');
                n++;
            }
            p++;
        }
        if (n == 0)
            return -EINVAL;
        for (; n < 9; n++)
            ns *= 10;
    }
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        sign = *p == '+' ? 1 : -1;
        p++;
        if (digits(&p, 2, &oh) || expect(&p, ":") || digits(&p, 2, &om))
            return -EINVAL;
    } else {
        return -EINVAL;
    }
    if (*p != '\0' || y < 1 || mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] || h > 23 ||
        mi > 59 || sec > 60 || oh > 23 || om > 59)
        return -EINVAL;
    if (mo == 2 && d == 29 && !((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
        return -EINVAL;
    if (sec == 60) /* leap second: POSIX time has none; take the next second */
        sec = 59, ns = 999999999;
    *seconds =
        days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec - sign * (oh * 3600 + om * 60);
    *nanos = ns;
    return 0;
}

char *og_time_format(int64_t seconds, int32_t nanos, char *buf, size_t size)
{
    time_t t = (time_t)seconds;
    struct tm tm;
    int n;

    if (!gmtime_r(&t, &tm)) {
        snprintf(buf, size, "invalid-time(%lld)", (long long)seconds);
        return buf;
    }
    /* By hand, not strftime: %Y does not pad years below 1000 to four digits. */
    /* In long long: tm_year + 1900 overflows an int for years past INT_MAX - 1900. */
    n = snprintf(buf, size, "%04lld-%02d-%02dT%02d:%02d:%02d", (long long)tm.tm_year + 1900,
                 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
    if (n < 0 || (size_t)n >= size)
        return buf;
    if (nanos > 0)
        snprintf(buf + n, size - (size_t)n, ".%09dZ", (int)nanos);
    else
        snprintf(buf + n, size - (size_t)n, "Z");
    return buf;
}

/* Length of the valid UTF-8 character at s[0..len), or 0 when it is not one. */
static size_t utf8_char(const uint8_t *s, size_t len)
{
    uint8_t c = s[0];
    uint32_t cp;
    size_t n;
    if (c < 0x80)
        return 1;
    else if ((c & 0xE0) == 0xC0)
        n = 1, cp = c & 0x1F;
    else if ((c & 0xF0) == 0xE0)
        n = 2, cp = c & 0x0F;
    else if ((c & 0xF8) == 0xF0)
        n = 3, cp = c & 0x07;
    else
        return 0;
    if (len <= n) /* truncated sequence */
        return 0;
    for (size_t k = 1; k <= n; k++) {
        if ((s[k] & 0xC0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[k] & 0x3F);
    }
    if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) ||
        cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return n + 1;
}

bool og_utf8_valid(const uint8_t *s, size_t len)
{
    for (size_t i = 0, n; i < len; i += n)
        if (!(n = utf8_char(s + i, len - i)))
            return false;
    return true;
}

size_t og_utf8_cut(const char *s, size_t len, size_t max)
{
    size_t i = 0, n;
    while (i < len && (n = utf8_char((const uint8_t *)s + i, len - i)) && i + n <= max)
        i += n;
    return i;
}

char *og_utf8_safe(const uint8_t *s, size_t len, char *buf, size_t size)
{
    size_t i = 0, o = 0;
    while (i < len) {
        size_t n = utf8_char(s + i, len - i);
        bool control = n == 1 && (s[i] < 0x20 || s[i] == 0x7F);
        /* C1 controls (U+0080..U+009F) are two bytes: C2 80..C2 9F. */
        control = control || (n == 2 && s[i] == 0xC2 && s[i + 1] < 0xA0);
        size_t out = n && !control ? n : 1;
        if (o + out > size - 1)
            break;
        if (n && !control)
            memcpy(buf + o, s + i, n);
        else
            buf[o] = '?';
        o += out;
        i += n ? n : 1;
    }
    buf[o] = '\0';
    return buf;
}

char *og_safe_vformat(char *buf, size_t size, const char *fmt, va_list ap)
{
    char raw[1024];
    int n = vsnprintf(raw, sizeof(raw), fmt, ap);
    size_t len = n < 0 ? 0 : (size_t)n < sizeof(raw) ? (size_t)n : sizeof(raw) - 1;
    return og_utf8_safe((const uint8_t *)raw, len, buf, size);
}

size_t og_utf8_length(const uint8_t *s, size_t len)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++)
        if ((s[i] & 0xC0) != 0x80)
            n++;
    return n;
}

int og_event_key(const char *source, const char *id, char *buf, size_t size)
{
    int n = snprintf(buf, size, "%s\x1f%s", source, id);
    return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

char *og_hex(const uint8_t *data, size_t len, char *buf)
{
    static const char hexd[] = "0123456789abcdef";
    for (size_t i = 0; i < len; i++) {
        buf[2 * i] = hexd[data[i] >> 4];
        buf[2 * i + 1] = hexd[data[i] & 15];
    }
    buf[2 * len] = '\0';
    return buf;
}

bool og_backoff_failed(struct og_backoff *b)
{
    bool first = b->wait == 0;
    b->wait = first ? 100000 : b->wait * 2;
    if (b->wait > 5000000)
        b->wait = 5000000;
    b->until = og_mono_us() + b->wait;
    return first;
}

bool og_backoff_succeeded(struct og_backoff *b)
{
    bool was_failing = b->wait != 0;
    b->wait = 0;
    b->until = 0;
    return was_failing;
}

bool og_backoff_ready(const struct og_backoff *b)
{
    return og_mono_us() >= b->until;
}

int og_secret_path(const char *spec, char *path, size_t size, char *err, size_t errlen)
{
    static const char prefix[] = "credential:";
    const char *name = spec + sizeof(prefix) - 1, *dir;

    if (strncmp(spec, prefix, sizeof(prefix) - 1) != 0) {
        snprintf(path, size, "%s", spec);
        return 0;
    }
    if (!*name || strchr(name, '/') || strcmp(name, ".") == 0 || strcmp(name, "..") == 0) {
        snprintf(err, errlen, "\"%s\": a credential is named by a plain file name", spec);
        return -ENOENT;
    }
    dir = getenv("CREDENTIALS_DIRECTORY");
    if (!dir || !*dir) {
        snprintf(err, errlen,
                 "\"%s\": no credentials were passed to this process ($CREDENTIALS_DIRECTORY "
                 "is not set: LoadCredential=%s:FILE in the unit)",
                 spec, name);
        return -ENOENT;
    }
    snprintf(path, size, "%s/%s", dir, name);
    return 0;
}

bool og_secret_mode_ok(const char *spec, unsigned mode)
{
    if (strncmp(spec, "credential:", 11) == 0)
        return (mode & 027) == 0;
    return (mode & 077) == 0;
}
