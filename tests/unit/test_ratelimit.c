/* Unit tests for the rate limit of a daemon's log lines about peers
 * (daemons/common/ratelimit.c): each key at most once per interval, its repeats counted;
 * a bounded table that forgets the key seen longest ago; a budget of lines for all keys
 * together, so that a flood of new keys cannot flood the journal. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cmocka.h>

#include "ratelimit.h"

#define S INT64_C(1000000) /* a second, in microseconds */

static bool allow(struct og_ratelimit *rl, const char *key, int64_t now, uint64_t *repeats,
                  uint64_t *dropped)
{
    uint64_t r, d;
    bool ok = og_ratelimit_allow(rl, key, now, repeats ? repeats : &r, dropped ? dropped : &d);
    return ok;
}

/* Once, then not again within the interval; after it, once more with the repeats. */
static void test_once_per_interval(void **state)
{
    (void)state;
    struct og_ratelimit *rl = og_ratelimit_new(10, 100, 60 * S);
    uint64_t repeats, dropped;

    assert_true(allow(rl, "key a 192.0.2.7", 1 * S, &repeats, &dropped));
    assert_int_equal(repeats, 0);
    for (int i = 0; i < 5; i++)
        assert_false(allow(rl, "key a 192.0.2.7", 2 * S + i, NULL, NULL));
    assert_true(allow(rl, "key a 192.0.2.8", 3 * S, NULL, NULL)); /* another address */
    assert_false(allow(rl, "key a 192.0.2.7", 60 * S, NULL, NULL));
    assert_true(allow(rl, "key a 192.0.2.7", 61 * S, &repeats, &dropped));
    assert_int_equal(repeats, 6);
    assert_int_equal(dropped, 0);
    og_ratelimit_destroy(&rl);
    assert_null(rl);
    og_ratelimit_destroy(&rl);
}

/* A full table forgets the key seen longest ago, not the newest: after 1,000 keys each
 * new key is still remembered (intake's first version stopped remembering and logged
 * every attempt of every key past the 1,000th). */
static void test_bounded_forgets_oldest(void **state)
{
    (void)state;
    struct og_ratelimit *rl = og_ratelimit_new(3, 100, 60 * S);

    assert_true(allow(rl, "a", 1 * S, NULL, NULL));
    assert_true(allow(rl, "b", 1 * S, NULL, NULL));
    assert_true(allow(rl, "c", 1 * S, NULL, NULL));
    assert_false(allow(rl, "a", 2 * S, NULL, NULL)); /* a seen again: b is now the oldest */
    assert_true(allow(rl, "d", 3 * S, NULL, NULL));
    assert_int_equal(og_ratelimit_count(rl), 3);
    assert_false(allow(rl, "a", 4 * S, NULL, NULL)); /* remembered */
    assert_false(allow(rl, "d", 4 * S, NULL, NULL)); /* the newest: remembered */
    assert_false(allow(rl, "c", 4 * S, NULL, NULL));
    assert_true(allow(rl, "b", 5 * S, NULL, NULL)); /* forgotten: new again */
    assert_int_equal(og_ratelimit_count(rl), 3);
    for (int i = 0; i < 10000; i++) { /* many keys: the table stays at 3 */
        char key[16];
        snprintf(key, sizeof(key), "k%d", i);
        allow(rl, key, 6 * S + i * 60 * S, NULL, NULL);
        assert_false(allow(rl, key, 6 * S + i * 60 * S + 1, NULL, NULL));
    }
    assert_int_equal(og_ratelimit_count(rl), 3);
    og_ratelimit_destroy(&rl);
}

/* All keys together get burst lines per interval; what the budget held back is counted
 * on the next line, and a held-back key is logged when it next comes. */
static void test_budget(void **state)
{
    (void)state;
    struct og_ratelimit *rl = og_ratelimit_new(100, 2, 60 * S);
    uint64_t repeats, dropped;

    assert_true(allow(rl, "a", 1 * S, NULL, NULL));
    assert_true(allow(rl, "b", 1 * S, NULL, NULL));
    assert_false(allow(rl, "c", 1 * S, NULL, NULL));
    assert_false(allow(rl, "d", 2 * S, NULL, NULL));
    assert_true(allow(rl, "c", 62 * S, &repeats, &dropped));
    assert_int_equal(repeats, 1);
    assert_int_equal(dropped, 2);
    assert_true(allow(rl, "d", 62 * S, &repeats, &dropped));
    assert_int_equal(dropped, 0);
    assert_false(allow(rl, "e", 62 * S, NULL, NULL));
    og_ratelimit_destroy(&rl);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_once_per_interval),
        cmocka_unit_test(test_bounded_forgets_oldest),
        cmocka_unit_test(test_budget),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
