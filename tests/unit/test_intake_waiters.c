/* Unit tests for the waiters' table (daemons/intake/waiters.c): every Submit recorded on a
 * key is handed back when the key's answer comes, however many there were, in the order
 * they came, and a full table refuses only what would need a new entry. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "intake.h"
#include "util.h"

#define MAX_SEEN 2048

/* What og_waiters_take handed over, copied (its og_waiter is valid during the call only). */
struct seen {
    size_t n;
    struct {
        uint8_t route[OG_MAX_ROUTE], tag[OG_MAX_TAG];
        size_t route_len, tag_len;
        uint32_t copies;
        int64_t since_us;
        bool first;
    } w[MAX_SEEN];
};

static void record(const struct og_waiter *w, bool first, void *arg)
{
    struct seen *s = arg;
    assert_true(s->n < MAX_SEEN);
    memcpy(s->w[s->n].route, w->route, w->route_len);
    memcpy(s->w[s->n].tag, w->tag, w->tag_len);
    s->w[s->n].route_len = w->route_len;
    s->w[s->n].tag_len = w->tag_len;
    s->w[s->n].copies = w->copies;
    s->w[s->n].since_us = w->since_us;
    s->w[s->n].first = first;
    s->n++;
}

static int add(struct og_waiters *ws, const char *key, const char *route, const char *tag)
{
    return og_waiters_add(ws, key, (const uint8_t *)route, strlen(route), (const uint8_t *)tag,
                          strlen(tag), 100);
}

/* Ten identical Submits and ten with other tags, all in flight on one key at once: twenty
 * answers are owed. (intake kept 8 and the ninth was never answered.) */
static void test_every_copy_is_answered(void **state)
{
    (void)state;
    struct og_waiters *ws = og_waiters_new(1000, 0);
    static struct seen s;
    char tag[8];

    assert_non_null(ws);
    memset(&s, 0, sizeof(s));
    for (int i = 0; i < 10; i++)
        assert_int_equal(add(ws, "k", "pub-1", "aa"), 0);
    for (int i = 0; i < 10; i++) {
        snprintf(tag, sizeof(tag), "t%02d", i);
        assert_int_equal(add(ws, "k", "pub-1", tag), 0);
    }
    assert_int_equal(og_waiters_submits(ws), 20);
    assert_int_equal(og_waiters_entries(ws), 11);

    assert_int_equal(og_waiters_take(ws, "k", record, &s), 20);
    assert_int_equal(s.n, 11);
    assert_true(s.w[0].first);
    assert_int_equal(s.w[0].copies, 10);
    assert_memory_equal(s.w[0].tag, "aa", 2);
    assert_memory_equal(s.w[0].route, "pub-1", 5);
    for (int i = 0; i < 10; i++) {
        snprintf(tag, sizeof(tag), "t%02d", i);
        assert_false(s.w[1 + i].first);
        assert_int_equal(s.w[1 + i].copies, 1);
        assert_int_equal(s.w[1 + i].tag_len, 3);
        assert_memory_equal(s.w[1 + i].tag, tag, 3);
    }
    /* Taken means forgotten. */
    assert_int_equal(og_waiters_submits(ws), 0);
    assert_int_equal(og_waiters_entries(ws), 0);
    s.n = 0;
    assert_int_equal(og_waiters_take(ws, "k", record, &s), 0);
    assert_int_equal(s.n, 0);
    og_waiters_destroy(&ws);
    assert_null(ws);
}

/* Many connections waiting on one key (a publisher that reconnected again and again, or
 * many publishers sending one event), in the order they came. */
static void test_many_connections_in_order(void **state)
{
    (void)state;
    struct og_waiters *ws = og_waiters_new(100000, 0);
    static struct seen s;
    char route[16];

    memset(&s, 0, sizeof(s));
    for (int i = 0; i < 1500; i++) {
        snprintf(route, sizeof(route), "r%d", i);
        assert_int_equal(add(ws, "k", route, "t"), 0);
    }
    assert_int_equal(add(ws, "other", "r0", "t"), 0);
    assert_int_equal(og_waiters_take(ws, "k", record, &s), 1500);
    assert_int_equal(s.n, 1500);
    for (int i = 0; i < 1500; i++) {
        snprintf(route, sizeof(route), "r%d", i);
        assert_int_equal(s.w[i].route_len, strlen(route));
        assert_memory_equal(s.w[i].route, route, strlen(route));
        assert_true(s.w[i].first == (i == 0));
    }
    assert_int_equal(og_waiters_submits(ws), 1);
    og_waiters_destroy(&ws);
}

/* A full table refuses a Submit that needs a new entry, never a copy of one it holds;
 * an answer makes room again. */
static void test_full(void **state)
{
    (void)state;
    struct og_waiters *ws = og_waiters_new(3, 0);

    assert_int_equal(add(ws, "k1", "a", "1"), 0);
    assert_int_equal(add(ws, "k1", "b", "1"), 0);
    assert_false(og_waiters_full(ws));
    assert_int_equal(add(ws, "k2", "a", "2"), 0);
    assert_true(og_waiters_full(ws));
    assert_int_equal(add(ws, "k3", "a", "3"), -ENOBUFS);
    assert_int_equal(add(ws, "k1", "c", "1"), -ENOBUFS);
    assert_int_equal(add(ws, "k1", "a", "1"), 0); /* a resend: counted */
    assert_int_equal(og_waiters_submits(ws), 4);
    assert_int_equal(og_waiters_entries(ws), 3);
    assert_int_equal(og_waiters_take(ws, "k1", NULL, NULL), 3);
    assert_false(og_waiters_full(ws));
    assert_int_equal(add(ws, "k3", "a", "3"), 0);
    assert_int_equal(og_waiters_submits(ws), 2);
    og_waiters_destroy(&ws);
}

/* Where the routing id ends and the tag begins is part of an entry's identity, and the
 * empty tag (refused Submits) is a tag like any other. */
static void test_route_and_tag_apart(void **state)
{
    (void)state;
    struct og_waiters *ws = og_waiters_new(10, 0);
    static struct seen s;
    uint8_t long_route[OG_MAX_ROUTE + 1] = {0}, long_tag[OG_MAX_TAG + 1] = {0};

    memset(&s, 0, sizeof(s));
    assert_int_equal(add(ws, "k", "ab", "c"), 0);
    assert_int_equal(add(ws, "k", "a", "bc"), 0);
    assert_int_equal(add(ws, "k", "a", ""), 0);
    assert_int_equal(add(ws, "k", "a", ""), 0);
    assert_int_equal(og_waiters_entries(ws), 3);
    assert_int_equal(og_waiters_add(ws, "k", long_route, sizeof(long_route), NULL, 0, 0), -EINVAL);
    assert_int_equal(og_waiters_add(ws, "k", long_route, 1, long_tag, sizeof(long_tag), 0),
                     -EINVAL);
    assert_int_equal(og_waiters_add(ws, "k", long_route, OG_MAX_ROUTE, long_tag, OG_MAX_TAG, 0), 0);
    assert_int_equal(og_waiters_take(ws, "k", record, &s), 5);
    assert_int_equal(s.n, 4);
    assert_int_equal(s.w[2].tag_len, 0);
    assert_int_equal(s.w[2].copies, 2);
    assert_int_equal(s.w[3].route_len, OG_MAX_ROUTE);
    assert_int_equal(s.w[3].tag_len, OG_MAX_TAG);
    og_waiters_destroy(&ws);
}

/* One connection holds at most per_route entries, whatever the table holds in all: more
 * are refused -EDQUOT (intake answers them REASON_BUSY), resends of what it holds are
 * not, other connections are not, and each answer gives one back. The bytes passed on
 * are counted once per key, until the key is answered. */
static void test_per_route(void **state)
{
    (void)state;
    struct og_waiters *ws = og_waiters_new(100, 2);
    const uint8_t *a = (const uint8_t *)"a";

    assert_int_equal(add(ws, "k1", "a", "1"), 0);
    assert_int_equal(add(ws, "k2", "a", "2"), 0);
    assert_int_equal(og_waiters_route_entries(ws, a, 1), 2);
    assert_int_equal(og_waiters_room(ws, "k3", a, 1, (const uint8_t *)"3", 1), -EDQUOT);
    assert_int_equal(add(ws, "k3", "a", "3"), -EDQUOT);
    assert_int_equal(add(ws, "k1", "a", "4"), -EDQUOT); /* another tag: another entry */
    assert_int_equal(og_waiters_room(ws, "k1", a, 1, (const uint8_t *)"1", 1), 0);
    assert_int_equal(add(ws, "k1", "a", "1"), 0); /* a resend */
    assert_int_equal(add(ws, "k3", "b", "3"), 0);
    assert_int_equal(add(ws, "k1", "b", "1"), 0);
    assert_int_equal(og_waiters_bytes(ws), 300);
    assert_int_equal(og_waiters_take(ws, "k1", NULL, NULL), 3);
    assert_int_equal(og_waiters_bytes(ws), 200);
    assert_int_equal(og_waiters_route_entries(ws, a, 1), 1);
    assert_int_equal(og_waiters_route_entries(ws, (const uint8_t *)"b", 1), 1);
    assert_int_equal(add(ws, "k3", "a", "3"), 0);
    assert_int_equal(og_waiters_take(ws, "k2", NULL, NULL), 1);
    assert_int_equal(og_waiters_take(ws, "k3", NULL, NULL), 2);
    assert_int_equal(og_waiters_route_entries(ws, a, 1), 0);
    assert_int_equal(og_waiters_bytes(ws), 0);
    assert_int_equal(og_waiters_entries(ws), 0);
    og_waiters_destroy(&ws);
}

/* Destroying a table that still holds Submits frees them (ASan checks); NULL is fine. */
static void test_destroy(void **state)
{
    (void)state;
    struct og_waiters *ws = og_waiters_new(10, 0), *none = NULL;
    assert_int_equal(add(ws, "k1", "a", "1"), 0);
    assert_int_equal(add(ws, "k2", "a", "1"), 0);
    assert_int_equal(add(ws, "k2", "a", "1"), 0);
    og_waiters_destroy(&ws);
    assert_null(ws);
    og_waiters_destroy(&none);
}

/* Each entry says when its first Submit came (onegrid_intake_answer_seconds is timed from
 * it): a copy keeps the first one's time, another entry has its own. */
static void test_since_the_first_copy(void **state)
{
    (void)state;
    struct og_waiters *ws = og_waiters_new(10, 0);
    static struct seen s;

    memset(&s, 0, sizeof(s));
    int64_t before = og_mono_us();
    assert_int_equal(add(ws, "k", "a", "1"), 0);
    int64_t after = og_mono_us();
    while (og_mono_us() <= after) /* the clock moves on (a microsecond) */
        ;
    assert_int_equal(add(ws, "k", "a", "1"), 0);
    assert_int_equal(add(ws, "k", "b", "1"), 0);
    assert_int_equal(og_waiters_take(ws, "k", record, &s), 3);
    assert_int_equal(s.n, 2);
    assert_int_equal(s.w[0].copies, 2);
    assert_true(s.w[0].since_us >= before && s.w[0].since_us <= after);
    assert_true(s.w[1].since_us > after);
    og_waiters_destroy(&ws);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_copy_is_answered),
        cmocka_unit_test(test_many_connections_in_order),
        cmocka_unit_test(test_full),
        cmocka_unit_test(test_route_and_tag_apart),
        cmocka_unit_test(test_per_route),
        cmocka_unit_test(test_destroy),
        cmocka_unit_test(test_since_the_first_copy),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
