/* Working days and deadlines (daemons/dispatch/calendar.c): weekends, public holidays,
 * make-up working days (调休), working hours across days, all in China Standard Time. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "dispatch.h"
#include "util.h"

/* Seconds for a China Standard Time wall-clock time "YYYY-MM-DDTHH:MM". */
static int64_t cst(const char *s)
{
    char buf[64];
    int64_t t;
    int32_t ns;
    snprintf(buf, sizeof(buf), "%.32s:00+08:00", s);
    assert_int_equal(og_time_parse(buf, &t, &ns), 0);
    return t;
}

static int64_t day_of(const char *date)
{
    char buf[64];
    snprintf(buf, sizeof(buf), "%.32sT00:00", date);
    return (cst(buf) + 8 * 3600) / 86400;
}

/* The 2026 National Day week: Oct 1-7 off (Thu..Wed), make-up days Sun Sep 20, Sat Oct 10. */
static struct og_calendar *national_day(void)
{
    struct og_calendar *cal = og_calendar_new();
    static const char *off[] = {"2026-10-01", "2026-10-02", "2026-10-05", "2026-10-06",
                                "2026-10-07"};
    assert_non_null(cal);
    for (size_t i = 0; i < OG_ARRAY_SIZE(off); i++)
        assert_int_equal(og_calendar_set(cal, day_of(off[i]), false), 0);
    assert_int_equal(og_calendar_set(cal, day_of("2026-09-20"), true), 0);
    assert_int_equal(og_calendar_set(cal, day_of("2026-10-10"), true), 0);
    return cal;
}

static void test_working_days(void **state)
{
    struct og_calendar *cal = national_day();
    struct {
        const char *day;
        bool working;
    } cases[] = {
        {"2026-11-23", true},  /* Monday */
        {"2026-11-27", true},  /* Friday */
        {"2026-11-28", false}, /* Saturday */
        {"2026-11-29", false}, /* Sunday */
        {"2026-10-01", false}, /* holiday on a Thursday */
        {"2026-10-03", false}, /* holiday on a Saturday (not listed: a weekend anyway) */
        {"2026-10-10", true},  /* make-up working Saturday */
        {"2026-09-20", true},  /* make-up working Sunday */
        {"1969-12-31", true},  /* a Wednesday before the epoch */
    };
    for (size_t i = 0; i < OG_ARRAY_SIZE(cases); i++)
        if (og_calendar_working(cal, day_of(cases[i].day)) != cases[i].working)
            fail_msg("%s: expected %s", cases[i].day, cases[i].working ? "working" : "rest");
    assert_int_equal(og_calendar_count(cal), 7);
    og_calendar_destroy(&cal);
    assert_null(cal);
}

static void test_deadlines(void **state)
{
    struct og_calendar *cal = national_day();
    struct {
        const char *start;
        int limit;
        const char *unit;
        const char *due;
    } cases[] = {
        /* hours run day and night, holidays too */
        {"2026-10-01T10:00", 2, "hours", "2026-10-01T12:00"},
        {"2026-09-30T23:00", 24, "hours", "2026-10-01T23:00"},
        /* working days: the end of the n-th working day after the start day */
        {"2026-11-23T10:00", 5, "working_days", "2026-11-30T17:00"}, /* Mon -> next Mon */
        {"2026-11-27T16:00", 1, "working_days", "2026-11-30T17:00"}, /* Fri -> Mon */
        {"2026-11-28T10:00", 1, "working_days", "2026-11-30T17:00"}, /* Sat -> Mon */
        {"2026-09-30T10:00", 1, "working_days", "2026-10-08T17:00"}, /* over the holiday */
        {"2026-09-30T10:00", 2, "working_days", "2026-10-09T17:00"},
        {"2026-09-30T10:00", 3, "working_days", "2026-10-10T17:00"}, /* make-up Saturday */
        {"2026-09-18T10:00", 1, "working_days", "2026-09-20T17:00"}, /* Fri -> make-up Sun */
        {"2026-09-18T10:00", 2, "working_days", "2026-09-21T17:00"},
        {"2026-09-19T10:00", 1, "working_days", "2026-09-20T17:00"}, /* Sat -> make-up Sun */
        /* working hours: only 09:00-17:00 of working days count */
        {"2026-11-23T10:00", 4, "working_hours", "2026-11-23T14:00"},
        {"2026-11-23T15:00", 4, "working_hours", "2026-11-24T11:00"},
        {"2026-11-23T07:00", 1, "working_hours", "2026-11-23T10:00"}, /* before opening */
        {"2026-11-23T18:00", 1, "working_hours", "2026-11-24T10:00"}, /* after closing */
        {"2026-11-27T16:00", 2, "working_hours", "2026-11-30T10:00"}, /* over the weekend */
        {"2026-09-30T16:00", 3, "working_hours", "2026-10-08T11:00"}, /* over the holiday */
        {"2026-11-23T09:00", 8, "working_hours", "2026-11-23T17:00"}, /* one whole day */
    };
    for (size_t i = 0; i < OG_ARRAY_SIZE(cases); i++) {
        int64_t got = og_calendar_deadline(cal, cst(cases[i].start), cases[i].limit, cases[i].unit);
        int64_t want = cst(cases[i].due);
        char g[48], w[48];
        if (got != want)
            fail_msg("%s + %d %s: due %s, expected %s", cases[i].start, cases[i].limit,
                     cases[i].unit, og_time_format(got, 0, g, sizeof(g)),
                     og_time_format(want, 0, w, sizeof(w)));
    }
    og_calendar_destroy(&cal);
}

/* Working time between two instants, and adding it back: the arithmetic a paused clock
 * (an extension request pending) resumes with. */
static void test_working_time(void **state)
{
    struct og_calendar *cal = national_day();
    struct {
        const char *from, *to;
        int64_t minutes; /* of working time */
    } between[] = {
        {"2026-11-23T10:00", "2026-11-23T12:30", 150}, /* within one day */
        {"2026-11-23T07:00", "2026-11-23T20:00", 480}, /* the whole working day */
        {"2026-11-27T16:00", "2026-11-30T10:00", 120}, /* Fri 1 h + Mon 1 h */
        {"2026-11-28T10:00", "2026-11-29T16:00", 0},   /* a weekend */
        {"2026-09-30T16:00", "2026-10-08T09:30", 90},  /* across the holidays */
        {"2026-10-09T16:00", "2026-10-10T10:00", 120}, /* into a make-up Saturday */
        {"2026-11-23T12:00", "2026-11-23T11:00", 0},   /* backwards */
    };
    (void)state;
    for (size_t i = 0; i < OG_ARRAY_SIZE(between); i++) {
        int64_t got = og_calendar_working_between(cal, cst(between[i].from), cst(between[i].to));
        if (got != between[i].minutes * 60)
            fail_msg("%s .. %s: %lld s of working time, expected %lld", between[i].from,
                     between[i].to, (long long)got, (long long)between[i].minutes * 60);
    }
    assert_int_equal(og_calendar_add_working(cal, cst("2026-11-27T16:00"), 2 * 3600),
                     cst("2026-11-30T10:00"));
    assert_int_equal(og_calendar_add_working(cal, cst("2026-09-30T16:00"), 90 * 60),
                     cst("2026-10-08T09:30"));
    assert_int_equal(og_calendar_add_working(cal, cst("2026-11-28T12:00"), 0),
                     cst("2026-11-28T12:00"));
    og_calendar_destroy(&cal);
}

/* A paused clock keeps the working time it had left. */
static void test_resume(void **state)
{
    struct og_calendar *cal = national_day();
    (void)state;
    /* Working hours: due Tue 16:00, paused Mon 10:00 with 7 + 7 = 14 working hours left,
     * resumed Thu 15:00: 2 h Thu, 8 h Fri, 4 h Mon -> Mon 13:00. */
    int64_t due = cst("2026-11-24T16:00");
    assert_int_equal(og_calendar_resume(cal, due, cst("2026-11-23T10:00"), cst("2026-11-26T15:00"),
                                        "working_hours"),
                     cst("2026-11-30T13:00"));
    /* Working days end at the close of a working day: the same pause gives Mon 17:00. */
    assert_int_equal(og_calendar_resume(cal, due, cst("2026-11-23T10:00"), cst("2026-11-26T15:00"),
                                        "working_days"),
                     cst("2026-11-30T17:00"));
    /* Plain hours: the deadline moves by the time paused, night and weekend included. */
    assert_int_equal(
        og_calendar_resume(cal, due, cst("2026-11-23T10:00"), cst("2026-11-26T15:00"), "hours"),
        due + cst("2026-11-26T15:00") - cst("2026-11-23T10:00"));
    /* Resumed over the National Day holidays: Sep 30 16:00 with 3 h left (due Oct 8
     * 11:00), resumed Oct 8 09:00 -> 3 working hours later, Oct 8 12:00. */
    assert_int_equal(og_calendar_resume(cal, cst("2026-10-08T11:00"), cst("2026-09-30T16:00"),
                                        cst("2026-10-08T09:00"), "working_hours"),
                     cst("2026-10-08T12:00"));
    /* Nothing paused, or no clock: unchanged. */
    assert_int_equal(og_calendar_resume(cal, due, cst("2026-11-23T10:00"), cst("2026-11-23T10:00"),
                                        "working_hours"),
                     due);
    assert_int_equal(og_calendar_resume(cal, 0, cst("2026-11-23T10:00"), cst("2026-11-26T15:00"),
                                        "working_hours"),
                     0);
    og_calendar_destroy(&cal);
}

static void test_no_working_days(void **state)
{
    /* A calendar that (wrongly) lists ten years as holidays must not loop for ever. */
    struct og_calendar *cal = og_calendar_new();
    int64_t d0 = day_of("2026-11-23");
    for (int64_t d = d0; d < d0 + 3700; d++)
        assert_int_equal(og_calendar_set(cal, d, false), 0);
    assert_int_equal(og_calendar_deadline(cal, cst("2026-11-23T10:00"), 3, "working_hours"),
                     cst("2026-11-23T13:00"));
    assert_int_equal(og_calendar_deadline(cal, cst("2026-11-23T10:00"), 2, "working_days"),
                     cst("2026-11-25T10:00"));
    og_calendar_destroy(&cal);
}

/* A limit the registry should never hold (migration 032 bounds it) still gives a deadline
 * a timestamp can hold: archive refuses a decision due after the year 9999, so one would
 * be sent again for ever and its report never answered. */
static void test_limit_beyond_time(void **state)
{
    struct og_calendar *cal = og_calendar_new();
    const char *units[] = {"hours", "working_hours", "working_days"};
    for (size_t i = 0; i < 3; i++) {
        int64_t d = og_calendar_deadline(cal, cst("2026-11-23T10:00"), INT32_MAX, units[i]);
        assert_true(d > cst("2026-11-23T10:00"));
        assert_true(d <= OG_TIME_MAX);
    }
    assert_int_equal(og_calendar_add_working(cal, OG_TIME_MAX - 10, 3600), OG_TIME_MAX);
    og_calendar_destroy(&cal);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_working_days),
        cmocka_unit_test(test_deadlines),
        cmocka_unit_test(test_limit_beyond_time),
        cmocka_unit_test(test_working_time),
        cmocka_unit_test(test_resume),
        cmocka_unit_test(test_no_working_days),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
