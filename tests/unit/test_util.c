/* Unit tests for daemons/common/util.c: RFC 3339 parsing and formatting, UTF-8 checks,
 * idempotency keys, hex. Expected epoch values were computed independently (Python's
 * datetime), not with the code under test. */
#include <errno.h>
#include <stdlib.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "util.h"

/* og_time_parse ---------------------------------------------------------------------- */

struct time_case {
    const char *text;
    int rc;
    int64_t seconds;
    int32_t nanos;
};

static const struct time_case time_cases[] = {
    /* Offsets */
    {"1970-01-01T00:00:00Z", 0, 0, 0},
    {"2026-11-20T01:15:00Z", 0, 1795137300, 0},
    {"2026-11-20T09:15:00+08:00", 0, 1795137300, 0},
    {"2026-11-20T01:15:00-05:30", 0, 1795157100, 0},
    {"2026-11-19T19:45:00-05:30", 0, 1795137300, 0},
    {"2026-03-01T00:00:00+14:00", 0, 1772272800, 0},
    {"2026-11-20t01:15:00z", 0, 1795137300, 0}, /* RFC 3339 allows lowercase */
    {"2026-11-20 01:15:00Z", 0, 1795137300, 0}, /* and a space (section 5.6 note) */
    {"1969-12-31T23:59:59Z", 0, -1, 0},
    {"0001-01-01T00:00:00Z", 0, -62135596800LL, 0},
    {"9999-12-31T23:59:59Z", 0, 253402300799LL, 0},
    /* Fractions of 1..9 digits and more (truncated to nanoseconds) */
    {"2026-11-20T01:15:00.5Z", 0, 1795137300, 500000000},
    {"2026-11-20T01:15:00.05Z", 0, 1795137300, 50000000},
    {"2026-11-20T01:15:00.123Z", 0, 1795137300, 123000000},
    {"2026-11-20T01:15:00.123456Z", 0, 1795137300, 123456000},
    {"2026-11-20T01:15:00.12345678Z", 0, 1795137300, 123456780},
    {"2026-11-20T01:15:00.123456789Z", 0, 1795137300, 123456789},
    {"2026-11-20T01:15:00.000000001Z", 0, 1795137300, 1},
    {"2026-11-20T01:15:00.1234567891234Z", 0, 1795137300, 123456789},
    {"2026-11-20T09:15:00.999999999+08:00", 0, 1795137300, 999999999},
    {"2026-11-20T01:15:00.Z", -EINVAL, 0, 0}, /* a dot needs digits */
    /* Leap days */
    {"2024-02-29T12:00:00Z", 0, 1709208000, 0},
    {"2000-02-29T00:00:00Z", 0, 951782400, 0}, /* divisible by 400 */
    {"2023-02-29T00:00:00Z", -EINVAL, 0, 0},
    {"2100-02-29T00:00:00Z", -EINVAL, 0, 0}, /* divisible by 100, not by 400 */
    {"2024-02-30T00:00:00Z", -EINVAL, 0, 0},
    /* Leap second: POSIX time has none; the parser takes the last instant of :59 */
    {"2016-12-31T23:59:60Z", 0, 1483228799, 999999999},
    {"2016-12-31T23:59:61Z", -EINVAL, 0, 0},
    /* Out of range fields */
    {"2026-13-01T00:00:00Z", -EINVAL, 0, 0},
    {"2026-00-01T00:00:00Z", -EINVAL, 0, 0},
    {"2026-01-00T00:00:00Z", -EINVAL, 0, 0},
    {"2026-01-32T00:00:00Z", -EINVAL, 0, 0},
    {"2026-04-31T00:00:00Z", -EINVAL, 0, 0},
    {"2026-01-01T24:00:00Z", -EINVAL, 0, 0},
    {"2026-01-01T00:60:00Z", -EINVAL, 0, 0},
    {"0000-01-01T00:00:00Z", -EINVAL, 0, 0},
    {"2026-01-01T00:00:00+24:00", -EINVAL, 0, 0},
    {"2026-01-01T00:00:00+08:60", -EINVAL, 0, 0},
    /* Malformed */
    {"2026-11-20T01:15:00", -EINVAL, 0, 0}, /* missing offset */
    {"2026-11-20", -EINVAL, 0, 0},
    {"2026-11-20T01:15Z", -EINVAL, 0, 0},
    {"2026-11-20T01:15:00+0800", -EINVAL, 0, 0},
    {"2026-11-20T01:15:00+08", -EINVAL, 0, 0},
    {"2026-11-20T01:15:00Zx", -EINVAL, 0, 0}, /* trailing garbage */
    {"2026-11-20T01:15:00Z ", -EINVAL, 0, 0},
    {"2026-11-20T09:15:00+08:00:00", -EINVAL, 0, 0},
    {"2026-11-20X01:15:00Z", -EINVAL, 0, 0},
    {"26-11-20T01:15:00Z", -EINVAL, 0, 0},
    {"2026/11/20T01:15:00Z", -EINVAL, 0, 0},
    {"2026-1-20T01:15:00Z", -EINVAL, 0, 0},
    {"", -EINVAL, 0, 0},
    {"yesterday", -EINVAL, 0, 0},
};

static void test_time_parse_table(void **state)
{
    for (size_t i = 0; i < OG_ARRAY_SIZE(time_cases); i++) {
        const struct time_case *c = &time_cases[i];
        int64_t seconds = 42424242;
        int32_t nanos = 4242;
        int rc = og_time_parse(c->text, &seconds, &nanos);
        if (rc != c->rc || (rc == 0 && (seconds != c->seconds || nanos != c->nanos)))
            fail_msg("og_time_parse(\"%s\"): rc %d seconds %lld nanos %d; expected rc %d seconds "
                     "%lld nanos %d",
                     c->text, rc, (long long)seconds, (int)nanos, c->rc, (long long)c->seconds,
                     (int)c->nanos);
        if (rc != 0) {
            /* A refusal leaves the outputs alone. */
            assert_int_equal(seconds, 42424242);
            assert_int_equal(nanos, 4242);
        }
    }
}

/* og_time_format --------------------------------------------------------------------- */

static void test_time_format(void **state)
{
    char buf[48];
    assert_string_equal(og_time_format(0, 0, buf, sizeof(buf)), "1970-01-01T00:00:00Z");
    assert_string_equal(og_time_format(1795137300, 0, buf, sizeof(buf)), "2026-11-20T01:15:00Z");
    assert_string_equal(og_time_format(1795137300, 5, buf, sizeof(buf)),
                        "2026-11-20T01:15:00.000000005Z");
    assert_string_equal(og_time_format(1709208000, 123456789, buf, sizeof(buf)),
                        "2024-02-29T12:00:00.123456789Z");
    assert_string_equal(og_time_format(-1, 0, buf, sizeof(buf)), "1969-12-31T23:59:59Z");
    assert_ptr_equal(og_time_format(0, 0, buf, sizeof(buf)), buf);
}

static void test_time_round_trip(void **state)
{
    static const struct {
        int64_t seconds;
        int32_t nanos;
    } points[] = {
        {0, 0},
        {1, 1},
        {-1, 0},
        {951782400, 0},
        {1483228799, 999999999},
        {1709208000, 500000000},
        {1795137300, 123456789},
        {253402300799LL, 999999999},
        {-30610224000LL, 0}, /* 1000-01-01 */
    };
    for (size_t i = 0; i < OG_ARRAY_SIZE(points); i++) {
        char buf[48];
        int64_t s = 0;
        int32_t ns = -1;
        og_time_format(points[i].seconds, points[i].nanos, buf, sizeof(buf));
        if (og_time_parse(buf, &s, &ns) != 0 || s != points[i].seconds || ns != points[i].nanos)
            fail_msg("round trip of %lld.%09d through \"%s\" gave %lld.%09d",
                     (long long)points[i].seconds, (int)points[i].nanos, buf, (long long)s,
                     (int)ns);
    }
}

/* Every year the validator accepts (0001..9999, validate.c check_time) must format as
 * RFC 3339, which requires four year digits, so that pbjson's render -> parse round trip
 * holds for any stored Timestamp. */
static void test_time_format_small_years(void **state)
{
    static const struct {
        int64_t seconds;
        const char *text;
    } cases[] = {
        {-62135596800LL, "0001-01-01T00:00:00Z"},
        {-30610224001LL, "0999-12-31T23:59:59Z"},
    };
    for (size_t i = 0; i < OG_ARRAY_SIZE(cases); i++) {
        char buf[48];
        int64_t s = 0;
        int32_t ns = 0;
        og_time_format(cases[i].seconds, 0, buf, sizeof(buf));
        if (strcmp(buf, cases[i].text) != 0)
            fail_msg("og_time_format(%lld) = \"%s\", expected \"%s\"", (long long)cases[i].seconds,
                     buf, cases[i].text);
        assert_int_equal(og_time_parse(buf, &s, &ns), 0);
        assert_int_equal(s, cases[i].seconds);
    }
}

/* og_utf8_valid / og_utf8_length ------------------------------------------------------ */

struct utf8_case {
    const char *name;
    const char *bytes;
    size_t len;
    bool valid;
    size_t chars; /* og_utf8_length when valid */
};

#define U(name, lit, valid, chars)                                                                 \
    {                                                                                              \
        name, lit, sizeof(lit) - 1, valid, chars                                                   \
    }

static const struct utf8_case utf8_cases[] = {
    U("empty", "", true, 0),
    U("ascii", "Hello, grid 12!", true, 15),
    U("ascii DEL", "\x7f", true, 1),
    U("2-byte U+00E9", "caf\xc3\xa9", true, 4),
    U("2-byte lowest U+0080", "\xc2\x80", true, 1),
    U("3-byte U+6C81 U+82D1", "\xe6\xb2\x81\xe8\x8b\x91", true, 2), /* 沁苑 */
    U("3-byte lowest U+0800", "\xe0\xa0\x80", true, 1),
    U("3-byte U+FFFD", "\xef\xbf\xbd", true, 1),
    U("3-byte U+E000 after surrogates", "\xee\x80\x80", true, 1),
    U("4-byte U+1F600", "\xf0\x9f\x98\x80", true, 1),
    U("4-byte max U+10FFFF", "\xf4\x8f\xbf\xbf", true, 1),
    U("mixed", "a\xc3\xa9\xe6\xb2\x81\xf0\x9f\x98\x80z", true, 5),
    U("overlong C0 80 (NUL)", "\xc0\x80", false, 0),
    U("overlong C1 BF", "\xc1\xbf", false, 0),
    U("overlong 3-byte E0 80 80", "\xe0\x80\x80", false, 0),
    U("overlong 3-byte E0 9F BF", "\xe0\x9f\xbf", false, 0),
    U("overlong 4-byte F0 8F BF BF", "\xf0\x8f\xbf\xbf", false, 0),
    U("surrogate ED A0 80", "\xed\xa0\x80", false, 0),
    U("surrogate ED BF BF", "\xed\xbf\xbf", false, 0),
    U("above U+10FFFF F4 90 80 80", "\xf4\x90\x80\x80", false, 0),
    U("F5 lead", "\xf5\x80\x80\x80", false, 0),
    U("F8 lead", "\xf8\x88\x80\x80\x80", false, 0),
    U("FF byte", "a\xff", false, 0),
    U("lone continuation", "\x80", false, 0),
    U("continuation after ascii", "ab\xbf", false, 0),
    U("truncated 2-byte at end", "abc\xc3", false, 0),
    U("truncated 3-byte at end", "abc\xe6\xb2", false, 0),
    U("truncated 4-byte at end", "abc\xf0\x9f\x98", false, 0),
    U("lead then ascii", "\xe6\x41\x41", false, 0),
    U("4-byte lead then 3 bytes then end", "\xf0\x9f\x98", false, 0),
};

static void test_utf8_table(void **state)
{
    for (size_t i = 0; i < OG_ARRAY_SIZE(utf8_cases); i++) {
        const struct utf8_case *c = &utf8_cases[i];
        bool v = og_utf8_valid((const uint8_t *)c->bytes, c->len);
        if (v != c->valid)
            fail_msg("og_utf8_valid(%s) = %d, expected %d", c->name, v, c->valid);
        if (c->valid && og_utf8_length((const uint8_t *)c->bytes, c->len) != c->chars)
            fail_msg("og_utf8_length(%s) = %zu, expected %zu", c->name,
                     og_utf8_length((const uint8_t *)c->bytes, c->len), c->chars);
    }
}

static void test_utf8_length_bounds(void **state)
{
    /* The length argument is honoured: no reading up to a NUL, and a sequence cut by it
     * is invalid even though the buffer goes on. */
    const uint8_t s[] = {0xe6, 0xb2, 0x81, 0xe8, 0x8b, 0x91, 'x'};
    assert_int_equal(og_utf8_length(s, 3), 1);
    assert_int_equal(og_utf8_length(s, 7), 3);
    assert_true(og_utf8_valid(s, 3));
    assert_false(og_utf8_valid(s, 5));
    assert_true(og_utf8_valid(s, 0));
    /* An embedded NUL is valid UTF-8 (U+0000); refusing it is validate.c's job. */
    assert_true(og_utf8_valid((const uint8_t *)"a\0b", 3));
}

/* og_event_key / og_hex -------------------------------------------------------------- */

static void test_event_key(void **state)
{
    char buf[16];
    assert_int_equal(og_event_key("zongzhi", "e-1", buf, sizeof(buf)), 0);
    assert_memory_equal(buf,
                        "zongzhi\x1f"
                        "e-1",
                        12);
    assert_int_equal(strlen(buf), 11);

    /* "ab\x1fcd" is 5 characters: it fits in 6 bytes, not in 5. */
    char small[6];
    assert_int_equal(og_event_key("ab", "cd", small, 6), 0);
    assert_string_equal(small, "ab\x1f"
                               "cd");
    assert_int_equal(og_event_key("ab", "cd", small, 5), -ENAMETOOLONG);
    assert_int_equal(og_event_key("zongzhi", "0123456789", buf, sizeof(buf)), -ENAMETOOLONG);
}

static void test_hex(void **state)
{
    const uint8_t data[] = {0x00, 0x01, 0x7f, 0x80, 0xab, 0xff};
    char buf[2 * sizeof(data) + 1];
    assert_string_equal(og_hex(data, sizeof(data), buf), "00017f80abff");
    assert_string_equal(og_hex(data, 0, buf), "");
}

/* A year past INT_MAX (gmtime's tm_year still fits an int, tm_year + 1900 does not):
 * formatted, without signed overflow (UBSan). */
static void test_time_format_huge_year(void **state)
{
    char buf[64];
    int64_t seconds = (2147484000LL - 1970) * 31556952LL;
    og_time_format(seconds, 0, buf, sizeof(buf));
    assert_true(strncmp(buf, "214748", 6) == 0);
    assert_non_null(strchr(buf, 'T'));
}

static void test_utf8_cut(void **state)
{
    /* "网格" is two 3-byte characters: a cut never splits one. */
    const char *s = "ab\xe7\xbd\x91\xe6\xa0\xbc";
    size_t len = strlen(s);
    assert_int_equal(og_utf8_cut(s, len, 100), len);
    assert_int_equal(og_utf8_cut(s, len, 8), 8);
    assert_int_equal(og_utf8_cut(s, len, 7), 5);
    assert_int_equal(og_utf8_cut(s, len, 5), 5);
    assert_int_equal(og_utf8_cut(s, len, 4), 2);
    assert_int_equal(og_utf8_cut(s, len, 2), 2);
    assert_int_equal(og_utf8_cut(s, len, 0), 0);
    /* An invalid byte ends the valid prefix. */
    assert_int_equal(og_utf8_cut("ab\xff"
                                 "cd",
                                 5, 100),
                     2);
    assert_int_equal(og_utf8_cut("ab\xe7\xbd", 4, 100), 2); /* truncated character */
}

static void test_utf8_safe(void **state)
{
    char buf[16];
    const uint8_t ok[] = "\xe7\xbd\x91\xe6\xa0\xbc ok";
    assert_string_equal(og_utf8_safe(ok, sizeof(ok) - 1, buf, sizeof(buf)), (const char *)ok);
    /* Invalid bytes, NUL, C0 and C1 controls and DEL become '?'. */
    const uint8_t bad[] = {'a', 0xff, 'b', 0x00, 'c', '\n', 0x7f, 0xc2, 0x85, 'd'};
    assert_string_equal(og_utf8_safe(bad, sizeof(bad), buf, sizeof(buf)), "a?b?c???d");
    assert_true(og_utf8_valid((const uint8_t *)buf, strlen(buf)));
    /* Bounded, and cut on a character boundary: 5 bytes fit "ab" and one 3-byte char. */
    const uint8_t cjk[] = "ab\xe7\xbd\x91\xe6\xa0\xbc";
    assert_string_equal(og_utf8_safe(cjk, sizeof(cjk) - 1, buf, 7), "ab\xe7\xbd\x91");
    assert_string_equal(og_utf8_safe(cjk, sizeof(cjk) - 1, buf, 5), "ab");
    assert_string_equal(og_utf8_safe(cjk, 0, buf, 1), "");
    /* A truncated character at the end of the input is one invalid byte per byte. */
    assert_string_equal(og_utf8_safe(cjk, 4, buf, sizeof(buf)), "ab??");
}

static void test_clocks(void **state)
{
    /* Wall clock after 2024-01-01 and in microseconds, monotonic never going back. */
    int64_t now = og_now_us();
    assert_true(now > 1704067200LL * 1000000);
    assert_true(now < 4102444800LL * 1000000);
    int64_t a = og_mono_us(), b = og_mono_us();
    assert_true(b >= a);
}

/* A secret key file's mode: private, or, for a systemd credential, readable by the ACL
 * that shows as the group's read bit; "credential:NAME" resolves in $CREDENTIALS_DIRECTORY. */
static void test_secret(void **state)
{
    char path[64], err[256];
    (void)state;
    assert_true(og_secret_mode_ok("/etc/k", 0100600));
    assert_false(og_secret_mode_ok("/etc/k", 0100640));
    assert_false(og_secret_mode_ok("/etc/k", 0100604));
    assert_true(og_secret_mode_ok("credential:k", 0100440));
    assert_false(og_secret_mode_ok("credential:k", 0100460));
    assert_false(og_secret_mode_ok("credential:k", 0100444));
    assert_int_equal(og_secret_path("/etc/k", path, sizeof(path), err, sizeof(err)), 0);
    assert_string_equal(path, "/etc/k");
    unsetenv("CREDENTIALS_DIRECTORY");
    assert_int_equal(og_secret_path("credential:k", path, sizeof(path), err, sizeof(err)), -ENOENT);
    setenv("CREDENTIALS_DIRECTORY", "/run/credentials/x", 1);
    assert_int_equal(og_secret_path("credential:k", path, sizeof(path), err, sizeof(err)), 0);
    assert_string_equal(path, "/run/credentials/x/k");
    assert_int_equal(og_secret_path("credential:../k", path, sizeof(path), err, sizeof(err)),
                     -ENOENT);
    unsetenv("CREDENTIALS_DIRECTORY");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_secret),
        cmocka_unit_test(test_time_parse_table),
        cmocka_unit_test(test_time_format),
        cmocka_unit_test(test_time_round_trip),
        cmocka_unit_test(test_time_format_small_years),
        cmocka_unit_test(test_utf8_table),
        cmocka_unit_test(test_utf8_length_bounds),
        cmocka_unit_test(test_event_key),
        cmocka_unit_test(test_hex),
        cmocka_unit_test(test_clocks),
        cmocka_unit_test(test_utf8_cut),
        cmocka_unit_test(test_utf8_safe),
        cmocka_unit_test(test_time_format_huge_year),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
