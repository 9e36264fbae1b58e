/* Unit tests for daemons/common/window.c, the delivery core of the publisher and of every
 * link: credit, answers, the resend schedule (1x, 2x, 4x, 8x, 16x, 16x...), resends that
 * touch only what is due, requeue order after a reconnect. Times are given, not read. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "window.h"

#define R 1000 /* resend_us */

struct sink {
    char sent[64][16]; /* what each send carried, in order */
    bool resend[64];
    size_t n;
    size_t refuse_after; /* the socket "blocks" after this many sends */
};

static int record(void *arg, const uint8_t *buf, size_t len, bool resend)
{
    struct sink *s = arg;
    if (s->n >= s->refuse_after || s->n >= 64)
        return -EAGAIN;
    snprintf(s->sent[s->n], sizeof(s->sent[0]), "%.*s", (int)len, (const char *)buf);
    s->resend[s->n] = resend;
    s->n++;
    return 0;
}

static void add(struct og_window *w, const char *key)
{
    assert_int_equal(og_window_add(w, key, strlen(key), (uint8_t *)strdup(key), strlen(key)), 0);
}

static void test_credit_and_answers(void **state)
{
    struct og_window *w = og_window_new(10, R);
    struct sink s = {.refuse_after = 64};
    add(w, "a");
    add(w, "b");
    add(w, "c");
    uint8_t *dup = (uint8_t *)strdup("a");
    assert_int_equal(og_window_add(w, "a", 1, dup, 1), 1); /* held: not taken */
    free(dup);
    assert_int_equal(og_window_pump(w, 2, 0, record, &s), 2);
    assert_string_equal(s.sent[0], "a");
    assert_string_equal(s.sent[1], "b");
    assert_int_equal(og_window_inflight(w), 2);
    assert_int_equal(og_window_queued(w), 1);
    /* An answer for a message never sent is a stray; for an unknown one too. */
    assert_int_equal(og_window_answered(w, "c", 1), -EAGAIN);
    assert_int_equal(og_window_answered(w, "x", 1), -ENOENT);
    assert_int_equal(og_window_answered(w, "a", 1), 0);
    assert_int_equal(og_window_answered(w, "a", 1), -ENOENT);
    assert_int_equal(og_window_pump(w, 2, 1, record, &s), 1);
    assert_string_equal(s.sent[2], "c");
    assert_false(s.resend[2]);
    assert_int_equal(og_window_held(w), 2);
    og_window_destroy(&w);
    assert_null(w);
}

/* A reconnect before anything was sent: nothing to requeue (and no heap yet). */
static void test_requeue_empty(void **state)
{
    struct og_window *w = og_window_new(4, R);
    og_window_requeue(w);
    add(w, "a");
    og_window_requeue(w);
    assert_int_equal(og_window_queued(w), 1);
    og_window_destroy(&w);
}

static void test_max_held(void **state)
{
    struct og_window *w = og_window_new(2, R);
    add(w, "a");
    add(w, "b");
    uint8_t *buf = (uint8_t *)strdup("c");
    assert_int_equal(og_window_add(w, "c", 1, buf, 1), -ENOBUFS);
    free(buf);
    og_window_destroy(&w);
}

static void test_backoff(void **state)
{
    struct og_window *w = og_window_new(10, R);
    struct sink s = {.refuse_after = 64};
    int64_t t = 0;
    add(w, "a");
    og_window_pump(w, 1, t, record, &s);
    /* Resends at R, then 2R, 4R, 8R, 16R, 16R later. */
    static const int64_t waits[] = {1, 2, 4, 8, 16, 16, 16};
    for (size_t i = 0; i < sizeof(waits) / sizeof(*waits); i++) {
        assert_int_equal(og_window_next_due(w), t + waits[i] * R);
        assert_int_equal(og_window_pump(w, 1, t + waits[i] * R - 1, record, &s), 0);
        t += waits[i] * R;
        assert_int_equal(og_window_pump(w, 1, t, record, &s), 1);
        assert_true(s.resend[s.n - 1]);
    }
    og_window_destroy(&w);
}

/* A resend touches only what is due: the 50 messages sent later are not resent when the
 * first one is, and are resent together when their time comes. */
static void test_resends_only_due(void **state)
{
    struct og_window *w = og_window_new(100, R);
    struct sink s = {.refuse_after = 64};
    char key[8];
    add(w, "early");
    og_window_pump(w, 100, 0, record, &s);
    for (int i = 0; i < 50; i++) {
        snprintf(key, sizeof(key), "k%02d", i);
        add(w, key);
    }
    struct sink many = {.refuse_after = 1000};
    assert_int_equal(og_window_pump(w, 100, R / 2, record, &many), 50);
    assert_int_equal(og_window_pump(w, 100, R, record, &many), 1);
    assert_string_equal(many.sent[50], "early");
    assert_int_equal(og_window_next_due(w), R / 2 + R);
    og_window_destroy(&w);
}

/* A socket that blocks: nothing is lost, the rest goes at the next pump. */
static void test_blocked_send(void **state)
{
    struct og_window *w = og_window_new(10, R);
    struct sink s = {.refuse_after = 1};
    add(w, "a");
    add(w, "b");
    assert_int_equal(og_window_pump(w, 10, 0, record, &s), 1);
    assert_int_equal(og_window_queued(w), 1);
    s.refuse_after = 64;
    assert_int_equal(og_window_pump(w, 10, 0, record, &s), 1);
    assert_string_equal(s.sent[1], "b");
    og_window_destroy(&w);
}

/* After a reconnect everything unanswered goes out at once, in the order it was added,
 * ahead of what was never sent, as resends. */
static void test_requeue(void **state)
{
    struct og_window *w = og_window_new(10, R);
    struct sink s = {.refuse_after = 64};
    add(w, "a");
    add(w, "b");
    add(w, "c");
    add(w, "d");
    og_window_pump(w, 3, 0, record, &s);                /* a b c in flight */
    assert_int_equal(og_window_answered(w, "b", 1), 0); /* b answered */
    og_window_pump(w, 3, 10 * R, record, &s);           /* a c resent (a first), d sent */
    og_window_requeue(w);
    assert_int_equal(og_window_inflight(w), 0);
    assert_int_equal(og_window_queued(w), 3);
    assert_int_equal(og_window_next_due(w), INT64_MAX);
    s.n = 0;
    assert_int_equal(og_window_pump(w, 2, 10 * R + 1, record, &s), 2);
    assert_string_equal(s.sent[0], "a");
    assert_string_equal(s.sent[1], "c");
    assert_true(s.resend[0] && s.resend[1]);
    /* A late answer to a copy from before the reconnect counts for the requeued d. */
    assert_int_equal(og_window_answered(w, "d", 1), 0);
    assert_int_equal(og_window_queued(w), 0);
    assert_int_equal(og_window_held(w), 2);
    og_window_clear(w);
    assert_int_equal(og_window_held(w), 0);
    og_window_destroy(&w);
    og_window_destroy(&w); /* NULL is fine */
}

/* Answers in any order keep the heap sound: every remaining message is resent once when
 * all are due. */
static void test_heap_removals(void **state)
{
    struct og_window *w = og_window_new(64, R);
    struct sink s = {.refuse_after = 1000};
    char key[8];
    for (int i = 0; i < 40; i++) {
        snprintf(key, sizeof(key), "m%02d", i);
        add(w, key);
        og_window_pump(w, 64, i, record, &s); /* due times R + i */
    }
    for (int i = 0; i < 40; i += 3) {
        snprintf(key, sizeof(key), "m%02d", (i * 7) % 40);
        og_window_answered(w, key, strlen(key));
    }
    size_t left = og_window_inflight(w);
    struct sink r = {.refuse_after = 1000};
    assert_int_equal(og_window_pump(w, 64, R + 100, record, &r), left);
    for (size_t i = 1; i < r.n; i++) /* oldest due first */
        assert_true(strcmp(r.sent[i - 1], r.sent[i]) < 0);
    og_window_destroy(&w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_credit_and_answers),
        cmocka_unit_test(test_max_held),
        cmocka_unit_test(test_backoff),
        cmocka_unit_test(test_resends_only_due),
        cmocka_unit_test(test_blocked_send),
        cmocka_unit_test(test_requeue),
        cmocka_unit_test(test_heap_removals),
        cmocka_unit_test(test_requeue_empty),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
