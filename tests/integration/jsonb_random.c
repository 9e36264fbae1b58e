/* jsonb_random: random json-c trees and og_jsonb_text's text for each, for
 * tests/integration/jsonb_text.sh, which asks PostgreSQL whether that text is its own.
 *
 *   jsonb_random SEED COUNT
 *
 * prints COUNT lines "N<TAB>JSONC<TAB>OURS": N from 1, JSONC the text json-c writes for
 * tree N (as archive sends it to the database), OURS og_jsonb_text's, both as lowercase
 * hex so that any byte survives COPY. The same SEED gives the same lines on any machine
 * (a generator of its own, not rand()). Trees are objects most of the time, as events
 * are: keys short enough to share lengths, with multibyte characters, control bytes,
 * quotes and backslashes; strings of the same; integers of every width; doubles of every
 * magnitude (random bit patterns, subnormals, decimals, integral values, -0.0) and
 * numbers as json-c reads them from text, which keep that text. Never a NaN or an
 * infinity: PostgreSQL refuses those, json-c's text included. */
#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jsonb_text.h"

static uint64_t rng_state;

/* splitmix64: small, and the same sequence everywhere. */
static uint64_t rnd(void)
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* A number in [0, n). */
static unsigned below(unsigned n)
{
    return (unsigned)(rnd() % n);
}

struct text {
    char b[512];
    size_t n;
};

static void add(struct text *t, const char *s, size_t n)
{
    if (t->n + n < sizeof(t->b)) {
        memcpy(t->b + t->n, s, n);
        t->n += n;
        t->b[t->n] = '\0';
    }
}

/* Code point cp as UTF-8. */
static void add_utf8(struct text *t, uint32_t cp)
{
    char u[4];
    size_t n;
    if (cp < 0x80) {
        u[0] = (char)cp;
        n = 1;
    } else if (cp < 0x800) {
        u[0] = (char)(0xc0 | cp >> 6);
        u[1] = (char)(0x80 | (cp & 0x3f));
        n = 2;
    } else if (cp < 0x10000) {
        u[0] = (char)(0xe0 | cp >> 12);
        u[1] = (char)(0x80 | (cp >> 6 & 0x3f));
        u[2] = (char)(0x80 | (cp & 0x3f));
        n = 3;
    } else {
        u[0] = (char)(0xf0 | cp >> 18);
        u[1] = (char)(0x80 | (cp >> 12 & 0x3f));
        u[2] = (char)(0x80 | (cp >> 6 & 0x3f));
        u[3] = (char)(0x80 | (cp & 0x3f));
        n = 4;
    }
    add(t, u, n);
}

/* One character of a key or string: mostly what sorts and escapes differently. */
static void add_char(struct text *t, int narrow)
{
    static const char few[] = "abAB_/ \"\\\x7f";
    uint32_t cp;
    switch (below(narrow ? 6 : 9)) {
    case 0:
    case 1:
        cp = (uint32_t)few[below(sizeof(few) - 1)];
        break;
    case 2:
        cp = 1 + below(0x1f); /* a control byte, never NUL */
        break;
    case 3:
        cp = (uint32_t[]){0xe9, 0x4e2d, 0x6587, 0xdf}[below(4)]; /* é 中 文 ß */
        break;
    case 4:
        cp = 0x80 + below(0x800 - 0x80);
        break;
    case 5:
        cp = 0x20 + below(0x5f);
        break;
    case 6:
        do
            cp = 0x800 + below(0x10000 - 0x800);
        while (cp >= 0xd800 && cp <= 0xdfff);
        break;
    case 7:
        cp = 0x10000 + below(0x110000 - 0x10000);
        break;
    default:
        cp = 0x20 + below(0x5f);
    }
    add_utf8(t, cp);
}

static void random_string(struct text *t, unsigned max, int narrow)
{
    unsigned n = below(max + 1);
    t->n = 0;
    t->b[0] = '\0';
    for (unsigned i = 0; i < n; i++)
        add_char(t, narrow);
}

/* -1 or 1. */
static int sign(void)
{
    return below(2) ? -1 : 1;
}

/* Every draw below is a statement of its own: C leaves unspecified the order in which the
 * operands of one expression (or a call's arguments) are evaluated, and the same seed must
 * give the same trees whatever the compiler chose. */

static json_object *random_int(void)
{
    uint64_t r;
    unsigned shift;
    switch (below(8)) {
    case 0:
        return json_object_new_int64(below(2) ? INT64_MIN : INT64_MAX);
    case 1:
        return json_object_new_uint64(rnd() | (1ULL << 63));
    case 2:
        return json_object_new_int((int)below(21) - 10);
    default: /* every width from 0 to 63 bits, either sign */
        r = rnd() >> 1;
        shift = below(64);
        return json_object_new_int64((int64_t)(r >> shift) * sign());
    }
}

static double random_double(void)
{
    static const double special[] = {0.0,     -0.0, DBL_MAX, -DBL_MAX,  DBL_MIN, 5e-324, 1e-05,
                                     1.5e-07, 1e20, 31.2304, -121.4737, 0.1,     90};
    double d;
    uint64_t r;
    int m, x;
    switch (below(6)) {
    case 0:
        do { /* any finite bit pattern: every exponent, subnormals too */
            r = rnd();
            memcpy(&d, &r, sizeof(d));
        } while (!isfinite(d));
        return d;
    case 1: /* a decimal as people write them */
        m = (int)below(2000001) - 1000000;
        x = (int)below(61) - 30;
        return m * pow(10, x);
    case 2: /* integral: json-c adds ".0" */
        r = rnd();
        r >>= 11 + below(53);
        return (double)(int64_t)r * sign();
    case 3: /* in [0, 1) times any power of two a double has */
        d = (double)(rnd() >> 11) / 9007199254740992.0;
        x = (int)below(2098) - 1074;
        return ldexp(d, x) * sign();
    case 4:
        return special[below(sizeof(special) / sizeof(special[0]))];
    default:
        d = below(100000) / 100.0;
        return d * sign();
    }
}

/* A number as json-c reads it from text: a double keeps that text ("1.50", "2.0E-3"). */
static json_object *parsed_number(void)
{
    static const char *const exp_signs[] = {"", "+", "-"};
    char text[96];
    const char *minus = below(2) ? "-" : "";
    uint64_t whole;
    size_t n;
    json_object *j;

    if (below(4)) {
        whole = below(1000);
    } else {
        whole = rnd();
        whole >>= 11 + below(53);
    }
    n = (size_t)snprintf(text, sizeof(text), "%s%" PRIu64, minus, whole);
    if (below(3)) {
        int width = (int)below(6) + 1;
        unsigned frac = below(1000000);
        n += (size_t)snprintf(text + n, sizeof(text) - n, ".%0*u", width, frac);
    }
    if (below(2)) {
        const char *e = below(2) ? "e" : "E";
        const char *esign = exp_signs[below(3)];
        unsigned ex = below(300);
        snprintf(text + n, sizeof(text) - n, "%s%s%u", e, esign, ex);
    }
    j = json_tokener_parse(text);
    return j ? j : json_object_new_string(text);
}

/* At depth 0 an object; below depth 4 anything (objects most often); deeper, no more
 * objects or arrays, so that every tree ends. */
static json_object *random_tree(int depth)
{
    unsigned kind = depth == 0 ? 0 : depth < 4 ? below(10) : 1 + below(6);
    struct text s;

    switch (kind) {
    case 0:
    case 7:
    case 8: {
        json_object *o = json_object_new_object();
        unsigned n = below(8);
        for (unsigned i = 0; i < n; i++) {
            random_string(&s, 4, 1);
            json_object_object_add(o, s.b, random_tree(depth + 1));
        }
        return o;
    }
    case 9: {
        json_object *a = json_object_new_array();
        unsigned n = below(6);
        for (unsigned i = 0; i < n; i++)
            json_object_array_add(a, random_tree(depth + 1));
        return a;
    }
    case 1:
        random_string(&s, 24, 0);
        return json_object_new_string(s.b);
    case 2:
        return random_int();
    case 3:
    case 4:
        return json_object_new_double(random_double());
    case 5:
        return parsed_number();
    default:
        switch (below(3)) {
        case 0:
            return json_object_new_boolean(1);
        case 1:
            return json_object_new_boolean(0);
        default:
            return NULL;
        }
    }
}

static void print_hex(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        printf("%02x", (unsigned char)s[i]);
}

int main(int argc, char **argv)
{
    char *end;
    unsigned long count;

    if (argc != 3) {
        fprintf(stderr, "usage: jsonb_random SEED COUNT\n");
        return 2;
    }
    rng_state = strtoull(argv[1], &end, 10);
    if (*end || !*argv[1]) {
        fprintf(stderr, "jsonb_random: bad seed \"%s\"\n", argv[1]);
        return 2;
    }
    count = strtoul(argv[2], &end, 10);
    if (*end || !*argv[2]) {
        fprintf(stderr, "jsonb_random: bad count \"%s\"\n", argv[2]);
        return 2;
    }
    for (unsigned long i = 1; i <= count; i++) {
        /* Mostly objects, as events are; now and then any value at the top. */
        json_object *j = random_tree(below(8) ? 0 : 3);
        /* A copy: og_jsonb_text writes a number at the top into the same print buffer. */
        char *jc = strdup(json_object_to_json_string_ext(j, JSON_C_TO_STRING_PLAIN |
                                                                JSON_C_TO_STRING_NOSLASHESCAPE));
        size_t len;
        char *ours = og_jsonb_text(j, &len);
        if (!jc || !ours) {
            fprintf(stderr, "jsonb_random: out of memory\n");
            return 1;
        }
        printf("%lu\t", i);
        print_hex(jc, strlen(jc));
        putchar('\t');
        print_hex(ours, len);
        putchar('\n');
        free(jc);
        free(ours);
        json_object_put(j);
    }
    return fflush(stdout) == 0 ? 0 : 1;
}
