#include "jsonb_text.h"

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* numeric's limits in PostgreSQL 15: 131072 digits before the point, 16383 after it.
 * Text beyond them is refused ("value overflows numeric format"). */
#define NUMERIC_MAX_INT_DIGITS 131072
#define NUMERIC_MAX_DSCALE     16383
/* numeric refuses an exponent this large or larger (either sign), even on zero. */
#define EXPONENT_LIMIT (INT_MAX / 2)

struct buf {
    char *p;
    size_t len, cap;
    bool oom;
};

static void put(struct buf *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (n > SIZE_MAX / 2 - b->len) {
        b->oom = true;
        return;
    }
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        char *p;
        while (cap < b->len + n + 1)
            cap *= 2;
        p = realloc(b->p, cap);
        if (!p) {
            b->oom = true;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void put_str(struct buf *b, const char *s)
{
    put(b, s, strlen(s));
}

/* As jsonb writes a string: the five short escapes and \" \\, \u00xx in lowercase for the
 * other control bytes, every other byte as it is (0x7f and UTF-8 too; "/" as well). A NUL
 * byte comes out as \u0000, which jsonb refuses, as it refuses json-c's text for it. */
static void put_string(struct buf *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    size_t start = 0;

    put(b, "\"", 1);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        const char *esc = NULL;
        char u[7];
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        put(b, s + start, i - start);
        start = i + 1;
        switch (c) {
        case '\b':
            esc = "\\b";
            break;
        case '\f':
            esc = "\\f";
            break;
        case '\n':
            esc = "\\n";
            break;
        case '\r':
            esc = "\\r";
            break;
        case '\t':
            esc = "\\t";
            break;
        case '"':
            esc = "\\\"";
            break;
        case '\\':
            esc = "\\\\";
            break;
        default:
            memcpy(u, "\\u00", 4);
            u[4] = hex[c >> 4];
            u[5] = hex[c & 0xf];
            u[6] = '\0';
            esc = u;
        }
        put_str(b, esc);
    }
    put(b, s + start, n - start);
    put(b, "\"", 1);
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* A JSON number's digits: those before the point at t + int_at, those after it at
 * t + frac_at. */
struct digits {
    const char *t;
    size_t int_at, nint, frac_at, nfrac;
};

/* The k-th of the digits, counting from the first before the point; '0' outside them. */
static char digit(const struct digits *d, long long k)
{
    if (k < 0 || k >= (long long)(d->nint + d->nfrac))
        return '0';
    if (k < (long long)d->nint)
        return d->t[d->int_at + (size_t)k];
    return d->t[d->frac_at + (size_t)k - d->nint];
}

/* JSON number text t[0..n) as PostgreSQL's numeric writes it back: jsonb keeps numbers as
 * numeric. The digits with the point moved by the exponent: no exponent, no leading zeros
 * but one before the point, no sign on zero, and as many digits after the point as
 * numeric's display scale, those after the point in the text less the exponent, at least
 * none ("1.50" stays "1.50", "1.5e-1" is "0.15", "1e+20" is a 1 and 20 zeros). Text that
 * is not a JSON number (json-c's NaN, Infinity) or beyond numeric's limits is written as it
 * is: PostgreSQL refuses it, as it refuses json-c's text for it. */
static void put_number(struct buf *b, const char *t, size_t n)
{
    struct digits d = {.t = t};
    size_t i = 0, ndig, first;
    bool neg = false, eneg = false;
    long long e = 0, point, dscale, k;

    if (i < n && t[i] == '-') {
        neg = true;
        i++;
    }
    d.int_at = i;
    if (i < n && t[i] == '0')
        i++;
    else
        while (i < n && is_digit(t[i]))
            i++;
    d.nint = i - d.int_at;
    if (d.nint == 0)
        goto verbatim;
    if (i < n && t[i] == '.') {
        d.frac_at = ++i;
        while (i < n && is_digit(t[i]))
            i++;
        d.nfrac = i - d.frac_at;
        if (d.nfrac == 0)
            goto verbatim;
    }
    if (i < n && (t[i] == 'e' || t[i] == 'E')) {
        size_t exp_at;
        i++;
        if (i < n && (t[i] == '+' || t[i] == '-'))
            eneg = t[i++] == '-';
        exp_at = i;
        for (; i < n && is_digit(t[i]); i++)
            if (e < EXPONENT_LIMIT)
                e = e * 10 + (t[i] - '0');
        if (i == exp_at || e >= EXPONENT_LIMIT)
            goto verbatim;
        if (eneg)
            e = -e;
    }
    ndig = d.nint + d.nfrac;
    if (i != n || ndig >= (size_t)EXPONENT_LIMIT)
        goto verbatim;

    /* The value's point falls after the first `point` digits (before them when < 0). */
    for (first = 0; first < ndig && digit(&d, (long long)first) == '0'; first++)
        ;
    point = (long long)d.nint + e;
    dscale = (long long)d.nfrac - e;
    if (dscale < 0)
        dscale = 0;
    if (dscale > NUMERIC_MAX_DSCALE ||
        (first < ndig && point - (long long)first > NUMERIC_MAX_INT_DIGITS))
        goto verbatim;

    if (first == ndig) {
        put(b, "0", 1);
    } else {
        if (neg)
            put(b, "-", 1);
        if (point <= (long long)first)
            put(b, "0", 1);
        for (k = (long long)first; k < point; k++) {
            char c = digit(&d, k);
            put(b, &c, 1);
        }
    }
    if (dscale > 0)
        put(b, ".", 1);
    for (k = point; k < point + dscale; k++) {
        char c = digit(&d, k);
        put(b, &c, 1);
    }
    return;

verbatim:
    put(b, t, n);
}

struct member {
    const char *key;
    size_t len;
    json_object *val;
};

/* jsonb's order of keys: shorter first (in bytes), then by memcmp of the bytes, not by
 * collation. Keys of one json-c object are distinct, so no two compare equal. */
static int member_cmp(const void *a, const void *b)
{
    const struct member *x = a, *y = b;
    if (x->len != y->len)
        return x->len < y->len ? -1 : 1;
    return memcmp(x->key, y->key, x->len);
}

static void put_value(struct buf *b, json_object *j)
{
    switch (json_object_get_type(j)) {
    case json_type_null:
        put_str(b, "null");
        break;
    case json_type_boolean:
        put_str(b, json_object_get_boolean(j) ? "true" : "false");
        break;
    case json_type_int:
    case json_type_double: {
        /* json-c's own text for the number, so that its digits are the ones json-c sends
         * (%.17g with ".0" added for a double, a parsed double's text as it was read, a
         * uint64 above INT64_MAX), then as numeric writes them. */
        size_t n = 0;
        const char *t = json_object_to_json_string_length(j, JSON_C_TO_STRING_PLAIN, &n);
        if (!t)
            b->oom = true;
        else
            put_number(b, t, n);
        break;
    }
    case json_type_string:
        put_string(b, json_object_get_string(j), (size_t)json_object_get_string_len(j));
        break;
    case json_type_array: {
        size_t n = json_object_array_length(j);
        put(b, "[", 1);
        for (size_t i = 0; i < n && !b->oom; i++) {
            if (i)
                put(b, ", ", 2);
            put_value(b, json_object_array_get_idx(j, i));
        }
        put(b, "]", 1);
        break;
    }
    case json_type_object: {
        size_t n = (size_t)json_object_object_length(j), i = 0;
        struct member *m;
        if (n == 0) {
            put(b, "{}", 2);
            break;
        }
        m = malloc(n * sizeof(*m));
        if (!m) {
            b->oom = true;
            break;
        }
        json_object_object_foreach(j, key, val)
        {
            m[i].key = key;
            m[i].len = strlen(key);
            m[i].val = val;
            i++;
        }
        qsort(m, n, sizeof(*m), member_cmp);
        put(b, "{", 1);
        for (i = 0; i < n && !b->oom; i++) {
            if (i)
                put(b, ", ", 2);
            put_string(b, m[i].key, m[i].len);
            put(b, ": ", 2);
            put_value(b, m[i].val);
        }
        put(b, "}", 1);
        free(m);
        break;
    }
    }
}

char *og_jsonb_text(json_object *j, size_t *len)
{
    struct buf b = {0};

    put_value(&b, j);
    if (b.oom) {
        free(b.p);
        return NULL;
    }
    if (len)
        *len = b.len;
    return b.p;
}
