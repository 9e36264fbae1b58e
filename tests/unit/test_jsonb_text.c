/* Unit tests for daemons/common/jsonb_text.c: the text PostgreSQL 15 gives for a json-c tree
 * as jsonb. Each expected text below is what `SELECT '<json-c's text>'::jsonb::text` gave
 * on PostgreSQL 15; tests/integration/jsonb_text.sh checks random trees against the server
 * itself. */
#include <float.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "jsonb_text.h"

/* Expects og_jsonb_text(j) to be want, byte for byte, with its length; releases j. */
static void expect_text(json_object *j, const char *want)
{
    size_t len = 0;
    char *got = og_jsonb_text(j, &len);
    if (!got)
        fail_msg("og_jsonb_text returned NULL");
    if (strcmp(got, want) != 0 || len != strlen(want)) {
        print_error("expected: %s\nactual:   %s (length %zu)\n", want, got, len);
        free(got);
        json_object_put(j);
        fail();
    }
    free(got);
    json_object_put(j);
}

/* JSON text as json-c reads it: its doubles keep the text they were read from. */
static json_object *parsed(const char *text)
{
    json_object *j = json_tokener_parse(text);
    if (!j)
        fail_msg("test JSON does not parse: %s", text);
    return j;
}

static json_object *array_of_doubles(const double *d, size_t n)
{
    json_object *a = json_object_new_array();
    for (size_t i = 0; i < n; i++)
        json_object_array_add(a, json_object_new_double(d[i]));
    return a;
}

/* prefix, then n zeros, then suffix: PostgreSQL's long numbers, counted from its output. */
static char *with_zeros(const char *prefix, size_t n, const char *suffix)
{
    size_t p = strlen(prefix), s = strlen(suffix);
    char *t = malloc(p + n + s + 1);
    assert_non_null(t);
    memcpy(t, prefix, p);
    memset(t + p, '0', n);
    memcpy(t + p + n, suffix, s + 1);
    return t;
}

static void test_key_order(void **state)
{
    /* Shorter keys first, by their bytes (not their escaped text: a"b is 3 bytes long),
     * then by memcmp: 0x7f before "aa", "é" (c3 a9) after "bb", "中文" (6 bytes) last. */
    static const char *const keys[] = {"bb", "a",    "ab",   "é",  "z",   "aa", "",
                                       "ba", "中文", "a\"b", "\n", "abc", "bé", "\x7f"};
    json_object *o = json_object_new_object();
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
        json_object_object_add(o, keys[i], json_object_new_int((int)i));
    expect_text(o, "{\"\": 6, \"\\n\": 10, \"a\": 1, \"z\": 4, \"\x7f\": 13, \"aa\": 5, \"ab\": 2, "
                   "\"ba\": 7, \"bb\": 0, \"é\": 3, \"a\\\"b\": 9, \"abc\": 11, \"bé\": 12, "
                   "\"中文\": 8}");

    o = json_object_new_object();
    json_object_object_add(o, "kéy\n\"", json_object_new_string("v"));
    expect_text(o, "{\"kéy\\n\\\"\": \"v\"}");
}

static void test_nested(void **state)
{
    json_object *o = json_object_new_object(), *list = json_object_new_array();
    json_object *inner = json_object_new_object(), *x = json_object_new_object();
    json_object *yy = json_object_new_object(), *deep = json_object_new_array();

    json_object_array_add(list, json_object_new_int(1));
    json_object_object_add(inner, "b", json_object_new_array());
    json_object_object_add(inner, "a", json_object_new_object());
    json_object_array_add(list, inner);
    json_object_array_add(deep, json_object_new_array());
    json_object_array_add(list, deep);
    json_object_array_add(list, NULL);
    json_object_array_add(list, json_object_new_boolean(1));
    json_object_array_add(list, json_object_new_boolean(0));
    json_object_object_add(o, "list", list);
    json_object_object_add(yy, "z", NULL);
    json_object_object_add(x, "yy", yy);
    json_object_object_add(o, "x", x);
    json_object_object_add(o, "", json_object_new_string(""));
    expect_text(o, "{\"\": \"\", \"x\": {\"yy\": {\"z\": null}}, "
                   "\"list\": [1, {\"a\": {}, \"b\": []}, [[]], null, true, false]}");
}

static void test_empty(void **state)
{
    expect_text(json_object_new_object(), "{}");
    expect_text(json_object_new_array(), "[]");
    expect_text(parsed("[{}, [], {\"a\": {}}, [[], {}]]"), "[{}, [], {\"a\": {}}, [[], {}]]");
}

static void test_scalars(void **state)
{
    size_t len = 99;
    char *t = og_jsonb_text(NULL, &len);
    assert_non_null(t);
    assert_string_equal(t, "null");
    assert_int_equal(len, 4);
    free(t);
    expect_text(json_object_new_boolean(1), "true");
    expect_text(json_object_new_boolean(0), "false");
    expect_text(json_object_new_string("中文"), "\"中文\"");
    expect_text(json_object_new_int(0), "0");

    /* len may be NULL. */
    t = og_jsonb_text(NULL, NULL);
    assert_non_null(t);
    assert_string_equal(t, "null");
    free(t);
}

static void test_escapes(void **state)
{
    char all[32];
    json_object *a = json_object_new_array();

    json_object_array_add(a, json_object_new_string("\b\f\n\r\t\"\\/\x01\x1f"
                                                    "a\x7f"
                                                    "é中文"));
    expect_text(a, "[\"\\b\\f\\n\\r\\t\\\"\\\\/\\u0001\\u001fa\x7f"
                   "é中文\"]");

    /* Every control byte: \u00xx in lowercase but for the five short escapes. */
    for (int c = 1; c < 32; c++)
        all[c - 1] = (char)c;
    all[31] = '\0';
    a = json_object_new_array();
    json_object_array_add(a, json_object_new_string(all));
    expect_text(a, "[\"\\u0001\\u0002\\u0003\\u0004\\u0005\\u0006\\u0007\\b\\t\\n\\u000b\\f\\r"
                   "\\u000e\\u000f\\u0010\\u0011\\u0012\\u0013\\u0014\\u0015\\u0016\\u0017\\u0018"
                   "\\u0019\\u001a\\u001b\\u001c\\u001d\\u001e\\u001f\"]");

    /* A NUL inside a string is written as json-c writes it, \u0000, which jsonb refuses
     * (as it refuses json-c's text for it); the string does not end there. */
    expect_text(json_object_new_string_len("a\0b", 3), "\"a\\u0000b\"");
}

static void test_integers(void **state)
{
    json_object *a = json_object_new_array();
    json_object_array_add(a, json_object_new_int64(INT64_MIN));
    json_object_array_add(a, json_object_new_int64(INT64_MAX));
    json_object_array_add(a, json_object_new_uint64(UINT64_MAX));
    json_object_array_add(a, json_object_new_int(0));
    json_object_array_add(a, json_object_new_int(-1));
    json_object_array_add(a, json_object_new_int(INT32_MIN));
    expect_text(a, "[-9223372036854775808, 9223372036854775807, 18446744073709551615, 0, -1, "
                   "-2147483648]");
}

static void test_doubles(void **state)
{
    /* json-c writes %.17g (with ".0" when that has neither point nor exponent); numeric
     * keeps every digit, with no exponent and the scale of that text. */
    static const double d[] = {31.2304, -121.4737, 1e-05, 1.5e-07, 1e+20,    123456789012345678.0,
                               0.1,     -0.5,      90,    0.0,     -0.0,     1e16,
                               1e17,    100.25,    0.5,   1e15,    12345.678};
    expect_text(array_of_doubles(d, sizeof(d) / sizeof(d[0])),
                "[31.230399999999999, -121.47369999999999, 0.000010000000000000001, "
                "0.00000014999999999999999, 100000000000000000000, 123456789012345680, "
                "0.10000000000000001, -0.5, 90.0, 0.0, 0.0, 10000000000000000.0, "
                "100000000000000000, 100.25, 0.5, 1000000000000000.0, 12345.678]");

    /* Each on its own, as the first and only value. */
    expect_text(json_object_new_double(0.0), "0.0");
    expect_text(json_object_new_double(-0.0), "0.0");
    expect_text(json_object_new_double(90), "90.0");
    expect_text(json_object_new_double(1e-05), "0.000010000000000000001");
}

static void test_double_extremes(void **state)
{
    /* The zeros counted from PostgreSQL's output for 4.9406564584124654e-324,
     * 1.7976931348623157e+308, 2.2250738585072014e-308 and -1e-300. */
    struct {
        double d;
        char *want;
    } c[] = {
        {5e-324, with_zeros("0.", 323, "49406564584124654")},
        {DBL_MAX, with_zeros("17976931348623157", 292, "")},
        {DBL_MIN, with_zeros("0.", 307, "22250738585072014")},
        {-1e-300, with_zeros("-0.", 299, "1")},
    };
    for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
        expect_text(json_object_new_double(c[i].d), c[i].want);
        free(c[i].want);
    }
}

static void test_parsed_numbers(void **state)
{
    /* Doubles json-c read keep the text they were read from, and json-c sends that text:
     * numeric keeps its scale ("1.50", "0.000"), even with an exponent ("2.0e-3"). */
    expect_text(parsed("[1.50, 1E5, 2.0e-3, -0.0, 1e-7, 0e-3, -0e5, 1.5E+2, 123.456e1, -0, "
                       "0.000, 1e0]"),
                "[1.50, 100000, 0.0020, 0.0, 0.0000001, 0.000, 0, 150, 1234.56, 0, 0.000, 1]");
}

static void test_numeric_limits(void **state)
{
    /* At numeric's limits PostgreSQL still takes them: 131072 digits before the point,
     * 16383 after it, a zero's exponent below INT_MAX / 2. */
    char *big = with_zeros("1", 131071, ""), *small = with_zeros("0.", 16382, "1");
    expect_text(parsed("1e131071"), big);
    expect_text(parsed("1e-16383"), small);
    expect_text(parsed("0e1073741822"), "0");
    free(big);
    free(small);

    /* Past them PostgreSQL refuses the number ("value overflows numeric format"), so it
     * is left as json-c wrote it, to be refused the same way. */
    expect_text(parsed("[1e131072, 1e-16384, 0.0e-16383, 0e1073741823, 0e-99999999999]"),
                "[1e131072, 1e-16384, 0.0e-16383, 0e1073741823, 0e-99999999999]");
}

static void test_not_finite(void **state)
{
    /* What json-c writes, which PostgreSQL refuses, as it refuses json-c's text. */
    static const double d[] = {NAN, INFINITY, -INFINITY};
    expect_text(array_of_doubles(d, 3), "[NaN, Infinity, -Infinity]");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_key_order),      cmocka_unit_test(test_nested),
        cmocka_unit_test(test_empty),          cmocka_unit_test(test_scalars),
        cmocka_unit_test(test_escapes),        cmocka_unit_test(test_integers),
        cmocka_unit_test(test_doubles),        cmocka_unit_test(test_double_extremes),
        cmocka_unit_test(test_parsed_numbers), cmocka_unit_test(test_numeric_limits),
        cmocka_unit_test(test_not_finite),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
