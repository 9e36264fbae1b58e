/* Unit tests for daemons/dispatch/lifecycle.c: every (state, status) pair, with and
 * without a required field check, against a table written from the workflow (GB/T 30428:
 * dispatched -> accepted -> in progress -> resolved -> checked -> closed -> evaluated,
 * with void, return and rework as side exits), not copied from the code. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "dispatch.h"
#include "onegrid/v1/event.pb-c.h"
#include "util.h"

#define S(x) ONEGRID__V1__STATUS_UPDATE__STATUS__STATUS_##x

static const char *const states[] = {
    OG_STATE_REPORTED, OG_STATE_DISPATCHED, OG_STATE_ACCEPTED, OG_STATE_IN_PROGRESS,
    OG_STATE_RESOLVED, OG_STATE_CHECKED,    OG_STATE_CLOSED,   OG_STATE_EVALUATED,
    OG_STATE_VOIDED,   OG_STATE_RETURNED,   OG_STATE_SHELVED,
};

/* Every status value, the unspecified one and two that are not defined. */
static const int statuses[] = {
    S(UNSPECIFIED),       S(ACCEPTED), S(IN_PROGRESS),
    S(RESOLVED),          S(RETURNED), S(CHECKED_OK),
    S(CHECK_FAILED),      S(CLOSED),   S(VOIDED),
    S(SHELVED),           S(EXTENDED), S(EXTENSION_REQUESTED),
    S(EXTENSION_REFUSED), 99,          -1,
};

struct allowed {
    const char *from;
    int status;
    const char *to;
    int check; /* 1: only when a field check is required, 0: only when not, -1: either */
};

static const struct allowed allowed[] = {
    {OG_STATE_DISPATCHED, S(ACCEPTED), OG_STATE_ACCEPTED, -1},
    {OG_STATE_DISPATCHED, S(IN_PROGRESS), OG_STATE_IN_PROGRESS, -1},
    {OG_STATE_DISPATCHED, S(RETURNED), OG_STATE_RETURNED, -1},
    {OG_STATE_DISPATCHED, S(VOIDED), OG_STATE_VOIDED, -1},
    {OG_STATE_ACCEPTED, S(IN_PROGRESS), OG_STATE_IN_PROGRESS, -1},
    {OG_STATE_ACCEPTED, S(RESOLVED), OG_STATE_RESOLVED, -1},
    {OG_STATE_ACCEPTED, S(RETURNED), OG_STATE_RETURNED, -1},
    {OG_STATE_ACCEPTED, S(VOIDED), OG_STATE_VOIDED, -1},
    {OG_STATE_IN_PROGRESS, S(RESOLVED), OG_STATE_RESOLVED, -1},
    {OG_STATE_RESOLVED, S(CHECKED_OK), OG_STATE_CHECKED, -1},
    {OG_STATE_RESOLVED, S(CHECK_FAILED), OG_STATE_IN_PROGRESS, -1}, /* rework (返工) */
    {OG_STATE_RESOLVED, S(CLOSED), OG_STATE_CLOSED, 0},             /* no field check needed */
    {OG_STATE_CHECKED, S(CLOSED), OG_STATE_CLOSED, -1},
    {OG_STATE_REPORTED, S(VOIDED), OG_STATE_VOIDED, -1},
    {OG_STATE_ACCEPTED, S(SHELVED), OG_STATE_SHELVED, -1}, /* into the demand list */
    {OG_STATE_IN_PROGRESS, S(SHELVED), OG_STATE_SHELVED, -1},
    {OG_STATE_DISPATCHED, S(EXTENDED), OG_STATE_DISPATCHED, -1}, /* 延期: state unchanged */
    {OG_STATE_ACCEPTED, S(EXTENDED), OG_STATE_ACCEPTED, -1},
    {OG_STATE_IN_PROGRESS, S(EXTENDED), OG_STATE_IN_PROGRESS, -1},
    /* 申请延期 and its refusal: state unchanged (decide.c pauses and resumes the clock) */
    {OG_STATE_DISPATCHED, S(EXTENSION_REQUESTED), OG_STATE_DISPATCHED, -1},
    {OG_STATE_ACCEPTED, S(EXTENSION_REQUESTED), OG_STATE_ACCEPTED, -1},
    {OG_STATE_IN_PROGRESS, S(EXTENSION_REQUESTED), OG_STATE_IN_PROGRESS, -1},
    {OG_STATE_DISPATCHED, S(EXTENSION_REFUSED), OG_STATE_DISPATCHED, -1},
    {OG_STATE_ACCEPTED, S(EXTENSION_REFUSED), OG_STATE_ACCEPTED, -1},
    {OG_STATE_IN_PROGRESS, S(EXTENSION_REFUSED), OG_STATE_IN_PROGRESS, -1},
};

static const char *status_name(int status)
{
    const ProtobufCEnumValue *v = protobuf_c_enum_descriptor_get_value(
        &onegrid__v1__status_update__status__descriptor, status);
    return v ? v->name : NULL;
}

static const char *expected_next(const char *state, int status, bool check_required)
{
    for (size_t i = 0; i < OG_ARRAY_SIZE(allowed); i++) {
        const struct allowed *a = &allowed[i];
        if (strcmp(a->from, state) == 0 && a->status == status &&
            (a->check == -1 || a->check == (int)check_required))
            return a->to;
    }
    return NULL;
}

static void test_status_every_pair(void **state)
{
    size_t n_allowed = 0, n_refused = 0;
    for (int check = 0; check <= 1; check++)
        for (size_t i = 0; i < OG_ARRAY_SIZE(states); i++)
            for (size_t k = 0; k < OG_ARRAY_SIZE(statuses); k++) {
                const char *st = states[i];
                int status = statuses[k];
                char why[200];
                memset(why, 0, sizeof(why));
                const char *want = expected_next(st, status, check);
                const char *got = og_lifecycle_status(st, status, check, why, sizeof(why));
                if (want) {
                    n_allowed++;
                    if (!got || strcmp(got, want) != 0)
                        fail_msg("%s on %s (check_required %d): got %s, expected %s",
                                 status_name(status), st, check, got ? got : "NULL (refused)",
                                 want);
                    continue;
                }
                n_refused++;
                if (got)
                    fail_msg("status %d on %s (check_required %d): allowed to %s, expected "
                             "refused",
                             status, st, check, got);
                /* The why names the state, and the status when it has a name. */
                if (!strstr(why, st))
                    fail_msg("why \"%s\" does not name the state %s", why, st);
                if (status_name(status) && !strstr(why, status_name(status)))
                    fail_msg("why \"%s\" does not name %s", why, status_name(status));
            }
    /* 24 steps either way plus resolved -> closed without a check. */
    assert_int_equal(n_allowed, 24 * 2 + 1);
    assert_int_equal(n_refused, 2 * OG_ARRAY_SIZE(states) * OG_ARRAY_SIZE(statuses) - 49);
}

static void test_status_returns_constants(void **state)
{
    char why[64];
    /* The result is one of the OG_STATE_* strings (static), safe to keep. */
    const char *a = og_lifecycle_status(OG_STATE_DISPATCHED, S(ACCEPTED), false, why, sizeof(why));
    const char *b = og_lifecycle_status(OG_STATE_DISPATCHED, S(ACCEPTED), true, why, sizeof(why));
    assert_non_null(a);
    assert_ptr_equal(a, b);
    /* A short why buffer is filled, terminated, not overrun. */
    char tiny[8];
    memset(tiny, 'x', sizeof(tiny));
    assert_null(og_lifecycle_status(OG_STATE_CLOSED, S(ACCEPTED), true, tiny, sizeof(tiny)));
    assert_int_equal(strlen(tiny), sizeof(tiny) - 1);
}

static void test_evaluation(void **state)
{
    static const int results[] = {
        ONEGRID__V1__EVALUATION__RESULT__RESULT_SATISFIED,
        ONEGRID__V1__EVALUATION__RESULT__RESULT_ACCEPTABLE,
        ONEGRID__V1__EVALUATION__RESULT__RESULT_UNSATISFIED,
    };
    char why[200];

    assert_string_equal(og_lifecycle_evaluation(OG_STATE_CLOSED, results[0], why, sizeof(why)),
                        OG_STATE_EVALUATED);
    assert_string_equal(og_lifecycle_evaluation(OG_STATE_CLOSED, results[1], why, sizeof(why)),
                        OG_STATE_EVALUATED);
    /* 不满意 reopens the case for its unit. */
    assert_string_equal(og_lifecycle_evaluation(OG_STATE_CLOSED, results[2], why, sizeof(why)),
                        OG_STATE_DISPATCHED);

    for (size_t i = 0; i < OG_ARRAY_SIZE(states); i++) {
        if (strcmp(states[i], OG_STATE_CLOSED) == 0)
            continue;
        for (size_t k = 0; k < OG_ARRAY_SIZE(results); k++) {
            why[0] = '\0';
            const char *got = og_lifecycle_evaluation(states[i], results[k], why, sizeof(why));
            if (got)
                fail_msg("evaluation %d of a %s case allowed (to %s)", results[k], states[i], got);
            if (!strstr(why, states[i]))
                fail_msg("why \"%s\" does not name the state %s", why, states[i]);
        }
    }
}

static void test_final(void **state)
{
    static const struct {
        const char *state;
        bool final;
    } cases[] = {
        {OG_STATE_REPORTED, false},
        {OG_STATE_DISPATCHED, false},
        {OG_STATE_ACCEPTED, false},
        {OG_STATE_IN_PROGRESS, false},
        {OG_STATE_RESOLVED, false},
        {OG_STATE_CHECKED, false},
        {OG_STATE_RETURNED, false},
        {OG_STATE_CLOSED, true},
        {OG_STATE_EVALUATED, true},
        {OG_STATE_VOIDED, true},
        {"", false},
        {"CLOSED", false},
    };
    for (size_t i = 0; i < OG_ARRAY_SIZE(cases); i++)
        if (og_lifecycle_final(cases[i].state) != cases[i].final)
            fail_msg("og_lifecycle_final(\"%s\") != %d", cases[i].state, cases[i].final);
}

/* dispatch's conclusions (Decision.stage, .clock; og.case's columns): every state has a
 * stage, final exactly where og_lifecycle_final says; only a handling case with a deadline
 * has a clock, paused while an extension request is pending. */
static void test_stage_and_clock(void **state)
{
    (void)state;
    for (size_t i = 0; i < OG_ARRAY_SIZE(states); i++) {
        const char *stage = og_lifecycle_stage(states[i]);
        const char *want =
            og_lifecycle_final(states[i]) ? OG_STAGE_FINAL
            : strcmp(states[i], OG_STATE_RESOLVED) == 0 || strcmp(states[i], OG_STATE_CHECKED) == 0
                ? OG_STAGE_CHECKING
                : OG_STAGE_HANDLING;
        assert_string_equal(stage, want);

        struct og_case c = {.deadline = 1700000000};
        snprintf(c.state, sizeof(c.state), "%s", states[i]);
        bool handling = strcmp(stage, OG_STAGE_HANDLING) == 0;
        assert_string_equal(og_lifecycle_clock(&c), handling ? OG_CLOCK_RUNNING : OG_CLOCK_NONE);
        c.paused_at = 1700000000 - 3600;
        assert_string_equal(og_lifecycle_clock(&c), handling ? OG_CLOCK_PAUSED : OG_CLOCK_NONE);
        c.deadline = 0; /* no time limit (shelved, or a category without one) */
        c.paused_at = 0;
        assert_string_equal(og_lifecycle_clock(&c), OG_CLOCK_NONE);
    }
    assert_string_equal(og_lifecycle_stage(OG_STATE_SHELVED), OG_STAGE_HANDLING);
    assert_string_equal(og_lifecycle_stage(OG_STATE_RETURNED), OG_STAGE_HANDLING);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_status_every_pair), cmocka_unit_test(test_status_returns_constants),
        cmocka_unit_test(test_evaluation),        cmocka_unit_test(test_final),
        cmocka_unit_test(test_stage_and_clock),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
