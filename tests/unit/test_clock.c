/* Unit tests for daemons/dispatch/clock.c: whether dispatch may trust its wall clock. The
 * readings are made up (microseconds), so a 30-day step takes no time. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "dispatch.h"
#include "util.h"

#define SEC   1000000LL
#define DAY   (86400 * SEC)
#define BOUND (60 * SEC)
#define WALL0 (1795137300LL * SEC) /* 2026-11-20T01:15:00Z */
#define BOOT0 (1234 * SEC)

static struct og_clock start(void)
{
    struct og_clock k;
    og_clock_init(&k, BOUND, WALL0, BOOT0);
    return k;
}

/* t seconds after start, with the wall clock off by `off` microseconds. */
static enum og_clock_change at(struct og_clock *k, int64_t t, int64_t off)
{
    return og_clock_observe(k, WALL0 + t * SEC + off, BOOT0 + t * SEC);
}

/* The database's clock read at t, `db` microseconds ahead of the true time, by a wall
 * clock off by `off`, with a 2 ms round trip. */
static enum og_clock_change db_at(struct og_clock *k, int64_t t, int64_t db, int64_t off)
{
    int64_t w0 = WALL0 + t * SEC + off;
    return og_clock_observe_db(k, WALL0 + t * SEC + 1000 + db, w0, w0 + 2000);
}

static void test_steady_clock_is_trusted(void **state)
{
    (void)state;
    struct og_clock k = start();
    assert_true(og_clock_trusted(&k));
    for (int t = 1; t < 1000; t += 7)
        assert_int_equal(at(&k, t, 0), OG_CLOCK_UNCHANGED);
    assert_true(og_clock_trusted(&k));
}

static void test_small_corrections_never_hold(void **state)
{
    (void)state;
    struct og_clock k = start();
    /* An operator corrects a slow clock by a few seconds, more than once, and NTP slews
     * it by 500 ppm: all absorbed, each agreement the new reference. */
    int64_t off = 0;
    for (int t = 10; t <= 1500; t += 10) {
        off += (t % 100 == 0) ? 5 * SEC : -5000; /* +5 s every 100 s, -0.5 ms/10 s */
        assert_int_equal(at(&k, t, off), OG_CLOCK_UNCHANGED);
    }
    assert_true(og_clock_trusted(&k));
    /* 15 corrections of 5 s add up to more than the bound: each is judged against the
     * last agreement, not against the start. */
    assert_true(off > BOUND);
}

static void test_bound_is_inclusive(void **state)
{
    (void)state;
    struct og_clock k = start();
    assert_int_equal(at(&k, 10, BOUND), OG_CLOCK_UNCHANGED);
    /* The agreement at +60 s is the reference now: another 60 s is fine too. */
    assert_int_equal(at(&k, 20, 2 * BOUND), OG_CLOCK_UNCHANGED);
    assert_int_equal(at(&k, 30, 3 * BOUND + 1), OG_CLOCK_LOST);
    assert_false(og_clock_trusted(&k));
}

static void test_step_ahead_holds_until_it_is_undone(void **state)
{
    (void)state;
    struct og_clock k = start();
    char what[256];
    assert_int_equal(at(&k, 10, 0), OG_CLOCK_UNCHANGED);
    assert_int_equal(at(&k, 11, 30 * DAY), OG_CLOCK_LOST);
    og_clock_describe(&k, what, sizeof(what));
    assert_non_null(strstr(what, "30.0 days"));
    assert_non_null(strstr(what, "ahead of the boot-time clock"));
    /* It stays off while it stays stepped, however long: logged once, not again. */
    for (int t = 12; t < 200; t++)
        assert_int_equal(at(&k, t, 30 * DAY), OG_CLOCK_UNCHANGED);
    assert_false(og_clock_trusted(&k));
    /* Undone: the wall clock is back where boot time says it should be. */
    assert_int_equal(at(&k, 200, 0), OG_CLOCK_REGAINED);
    assert_true(og_clock_trusted(&k));
}

static void test_step_back_holds_too(void **state)
{
    (void)state;
    struct og_clock k = start();
    char what[256];
    assert_int_equal(at(&k, 5, -30 * DAY), OG_CLOCK_LOST);
    og_clock_describe(&k, what, sizeof(what));
    assert_non_null(strstr(what, "behind the boot-time clock"));
    assert_int_equal(at(&k, 6, -2 * SEC), OG_CLOCK_REGAINED);
    /* A step of 2 minutes back (more than the bound) is one too. */
    assert_int_equal(at(&k, 7, -2 * SEC - 120 * SEC), OG_CLOCK_LOST);
    assert_int_equal(at(&k, 8, -2 * SEC), OG_CLOCK_REGAINED);
}

static void test_suspend_is_not_a_step(void **state)
{
    (void)state;
    struct og_clock k = start();
    /* The machine slept two hours: boot time counts it as the wall clock does. */
    assert_int_equal(at(&k, 7200, 0), OG_CLOCK_UNCHANGED);
    assert_true(og_clock_trusted(&k));
}

static void test_database_offset_learnt_at_start(void **state)
{
    (void)state;
    struct og_clock k = start();
    /* Run under faketime 15 days behind the database: a constant difference is fine. */
    assert_int_equal(db_at(&k, 0, 15 * DAY, 0), OG_CLOCK_UNCHANGED);
    assert_true(k.db_known);
    assert_true(k.db_ref > 15 * DAY - SEC && k.db_ref < 15 * DAY + SEC);
    assert_int_equal(db_at(&k, 100, 15 * DAY + 30 * SEC, 0), OG_CLOCK_UNCHANGED);
    assert_true(og_clock_trusted(&k));
}

static void test_database_clock_step_holds(void **state)
{
    (void)state;
    struct og_clock k = start();
    char what[256];
    assert_int_equal(db_at(&k, 0, 0, 0), OG_CLOCK_UNCHANGED);
    /* The database's host stepped an hour ahead: which clock is right is not known. */
    assert_int_equal(db_at(&k, 10, 3600 * SEC, 0), OG_CLOCK_LOST);
    og_clock_describe(&k, what, sizeof(what));
    assert_non_null(strstr(what, "database's clock moved"));
    assert_int_equal(at(&k, 11, 0), OG_CLOCK_UNCHANGED); /* the wall clock alone is fine */
    assert_false(og_clock_trusted(&k));
    assert_int_equal(db_at(&k, 20, 0, 0), OG_CLOCK_REGAINED);
}

static void test_both_witnesses_must_agree_again(void **state)
{
    (void)state;
    struct og_clock k = start();
    assert_int_equal(db_at(&k, 0, 0, 0), OG_CLOCK_UNCHANGED);
    /* dispatch's clock steps +30 days: boot time and the database both see it. */
    assert_int_equal(at(&k, 1, 30 * DAY), OG_CLOCK_LOST);
    assert_int_equal(db_at(&k, 2, 0, 30 * DAY), OG_CLOCK_UNCHANGED);
    assert_true(k.wall_off && k.db_off);
    /* Back: boot time agrees at once; the database's witness still says off until read. */
    assert_int_equal(at(&k, 3, 0), OG_CLOCK_UNCHANGED);
    assert_false(og_clock_trusted(&k));
    assert_int_equal(db_at(&k, 4, 0, 0), OG_CLOCK_REGAINED);
    /* The reference was not learnt from the stepped clock. */
    assert_true(k.db_ref > -SEC && k.db_ref < SEC);
}

static void test_no_learning_from_a_stepped_clock(void **state)
{
    (void)state;
    struct og_clock k = start();
    /* The first reading of the database comes while the wall clock is stepped. */
    assert_int_equal(at(&k, 1, 30 * DAY), OG_CLOCK_LOST);
    assert_int_equal(db_at(&k, 2, 0, 30 * DAY), OG_CLOCK_UNCHANGED);
    assert_false(k.db_known);
    assert_int_equal(at(&k, 3, 0), OG_CLOCK_REGAINED);
    assert_int_equal(db_at(&k, 4, 0, 0), OG_CLOCK_UNCHANGED);
    assert_true(k.db_known);
    assert_true(og_clock_trusted(&k));
}

static void test_slow_round_trip_says_nothing(void **state)
{
    (void)state;
    struct og_clock k = start();
    assert_int_equal(db_at(&k, 0, 0, 0), OG_CLOCK_UNCHANGED);
    /* 40 s between the two wall readings (a stopped server): no judgement either way. */
    assert_int_equal(og_clock_observe_db(&k, WALL0 + 3600 * SEC, WALL0, WALL0 + 40 * SEC),
                     OG_CLOCK_UNCHANGED);
    /* A wall clock that went backwards during the query, likewise. */
    assert_int_equal(og_clock_observe_db(&k, WALL0 + 3600 * SEC, WALL0, WALL0 - SEC),
                     OG_CLOCK_UNCHANGED);
    assert_true(og_clock_trusted(&k));
}

static void test_boot_clock_runs(void **state)
{
    (void)state;
    int64_t a = og_clock_boot_us(), m = og_mono_us(), b = og_clock_boot_us();
    assert_true(b >= a);
    assert_true(b >= m); /* boot time is monotonic time plus time suspended */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_steady_clock_is_trusted),
        cmocka_unit_test(test_small_corrections_never_hold),
        cmocka_unit_test(test_bound_is_inclusive),
        cmocka_unit_test(test_step_ahead_holds_until_it_is_undone),
        cmocka_unit_test(test_step_back_holds_too),
        cmocka_unit_test(test_suspend_is_not_a_step),
        cmocka_unit_test(test_database_offset_learnt_at_start),
        cmocka_unit_test(test_database_clock_step_holds),
        cmocka_unit_test(test_both_witnesses_must_agree_again),
        cmocka_unit_test(test_no_learning_from_a_stepped_clock),
        cmocka_unit_test(test_slow_round_trip_says_nothing),
        cmocka_unit_test(test_boot_clock_runs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
