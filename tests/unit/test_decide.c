/* Unit tests for daemons/dispatch/decide.c (with cases.c and registry.c underneath): one
 * submission in, one decision out, the in-memory cases updated. No database, no sockets. */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "dispatch.h"
#include "util.h"
#include "validate.h"
#include "wire.h"

#define R(x)    ONEGRID__V1__REASON__REASON_##x
#define KIND(x) ONEGRID__V1__DECISION__KIND__KIND_##x
#define S(x)    ONEGRID__V1__STATUS_UPDATE__STATUS__STATUS_##x
#define NOW     T_NOW

struct fixture {
    struct og_registry *reg;
    struct og_cases *cases;
    struct og_decider dc;
};

static struct og_rule rule(int64_t id, int version, const char *category, const char *prefix,
                           const char *unit, int priority)
{
    struct og_rule r = {.id = id,
                        .version = version,
                        .category = (char *)category,
                        .unit = (char *)unit,
                        .priority = priority,
                        .valid_from = INT64_MIN,
                        .valid_to = INT64_MAX};
    snprintf(r.prefix, sizeof(r.prefix), "%s", prefix);
    return r;
}

static int setup(void **state)
{
    static const struct og_category_info cats[] = {
        {"facility.handrail", "community", 3, "workday", false, NULL},
        {"hazard.gas", "district", 2, "hour", true, NULL},
        {"env.unrouted", "community", 1, "day", false, NULL},
    };
    struct fixture *fx = calloc(1, sizeof(*fx));
    if (!fx)
        return -1;
    *state = fx;
    fx->reg = og_registry_new();
    fx->cases = og_cases_new();
    if (!fx->reg || !fx->cases)
        return -1;
    struct og_registry *r = fx->reg;
    if (og_registry_add_area(r, "650204001001", "community", "650204001", "650204") ||
        og_registry_add_area(r, "650204001002", "community", "650204001", "650204") ||
        og_registry_add_area(r, "650205001001", "community", "650205001", "650205") ||
        og_registry_add_source(r, "zongzhi") || og_registry_add_source(r, "iot.gas") ||
        og_registry_add_crosswalk(r, "zongzhi", "BJT-QY-03", "650204001001") ||
        og_registry_add_crosswalk(r, "zongzhi", "BJT-QY-04", "650204001002") ||
        og_registry_add_crosswalk(r, "iot.gas", "GAS-0042", "650204001002") ||
        og_registry_add_crosswalk(r, "zongzhi", "OTHER-01", "650205001001") ||
        og_registry_add_crosswalk(r, "zongzhi", "NOWHERE-1", "650204009009") ||
        og_registry_add_unit(r, "unit-a", "650204001001") ||
        og_registry_add_unit(r, "unit-b", "650204001002") ||
        og_registry_add_unit(r, "unit-gas", "650204") ||
        /* The district's supervisor, its centre, which checks and closes (监督中心,
         * 指挥中心). */
        og_registry_add_unit(r, "sup-dist", "650204") ||
        og_registry_add_supervisor(r, "650204", "sup-dist") ||
        /* zongzhi speaks for every unit of the tests and may send every case action;
         * iot.gas only reports. */
        og_registry_add_unit_grant(r, "zongzhi", "unit-*") ||
        og_registry_add_unit_grant(r, "zongzhi", "sup-*"))
        return -1;
    for (int a = 0; a < OG_ACTION_COUNT; a++)
        if (og_registry_add_action_grant(r, "zongzhi", og_action_name(a)))
            return -1;
    for (size_t i = 0; i < OG_ARRAY_SIZE(cats); i++)
        if (og_registry_add_category(r, &cats[i]))
            return -1;
    struct og_rule rules[] = {
        rule(7, 2, "facility.handrail", "650204001001", "unit-a", 0),
        rule(8, 1, "facility.handrail", "650204001002", "unit-b", 0),
        rule(9, 3, "hazard.gas", "650204", "unit-gas", 0),
    };
    for (size_t i = 0; i < OG_ARRAY_SIZE(rules); i++)
        if (og_registry_add_rule(r, &rules[i]))
            return -1;
    fx->dc.reg = fx->reg;
    fx->dc.cases = fx->cases;
    fx->dc.shard = "650204";
    return 0;
}

static int teardown(void **state)
{
    struct fixture *fx = *state;
    og_registry_destroy(&fx->reg);
    og_cases_destroy(&fx->cases);
    free(fx);
    return 0;
}

/* An empty decision to fill (free with decision_free). */
static Onegrid__V1__Decision *decision_new(void)
{
    Onegrid__V1__Decision *d = calloc(1, sizeof(*d));
    assert_non_null(d);
    onegrid__v1__decision__init(d);
    return d;
}

/* Runs og_decide on x's envelope from source x->e.source. Returns a new decision (free
 * with decision_free). */
static Onegrid__V1__Decision *decide_at(struct fixture *fx, struct ex *x, int64_t now)
{
    Onegrid__V1__Submission s = ONEGRID__V1__SUBMISSION__INIT;
    Onegrid__V1__Decision *d = decision_new();
    s.publisher = (char *)"local";
    s.source = x->e.source;
    s.event = &x->e;
    assert_int_equal(og_decide(&fx->dc, &s, now, d), 0);
    return d;
}

static Onegrid__V1__Decision *decide(struct fixture *fx, struct ex *x)
{
    return decide_at(fx, x, NOW);
}

static void decision_free(Onegrid__V1__Decision *d)
{
    onegrid__v1__decision__free_unpacked(d, NULL);
}

/* Checks a refusal: kind, reason and a word of the text. Frees d. */
static void expect_reject(const char *name, Onegrid__V1__Decision *d, Onegrid__V1__Reason reason,
                          const char *needle)
{
    if (d->kind != KIND(REJECT))
        fail_msg("%s: kind %d, expected REJECT", name, d->kind);
    if (!d->rejection)
        fail_msg("%s: REJECT without a rejection", name);
    if (d->rejection->reason != reason)
        fail_msg("%s: reason %d (%s), expected %d", name, d->rejection->reason, d->rejection->text,
                 reason);
    if (needle && !strstr(d->rejection->text, needle))
        fail_msg("%s: text \"%s\" does not mention \"%s\"", name, d->rejection->text, needle);
    decision_free(d);
}

/* Opens a handrail case at BJT-QY-03 and returns its id (static buffer). */
static const char *open_handrail(struct fixture *fx)
{
    static char id[32];
    struct ex x;
    ex_report(&x);
    Onegrid__V1__Decision *d = decide(fx, &x);
    assert_int_equal(d->kind, KIND(OPEN_CASE));
    snprintf(id, sizeof(id), "%s", d->case_id);
    decision_free(d);
    return id;
}

/* Opens a case from the gas alert at GAS-0042 (hazard.gas: a field check is required);
 * returns its id (static buffer). */
static const char *open_gas(struct fixture *fx)
{
    static char id[32];
    struct ex x;
    ex_alert(&x);
    Onegrid__V1__Decision *d = decide(fx, &x);
    assert_int_equal(d->kind, KIND(OPEN_CASE));
    snprintf(id, sizeof(id), "%s", d->case_id);
    decision_free(d);
    return id;
}

/* Opens a report of a category no rule routes (env.unrouted): a case in "reported" that no
 * unit holds. Returns its id (static buffer). */
static const char *open_unrouted(struct fixture *fx)
{
    static char id[32];
    struct ex x;
    ex_report(&x);
    x.report.category = (char *)"env.unrouted";
    Onegrid__V1__Decision *d = decide(fx, &x);
    assert_string_equal(d->state, OG_STATE_REPORTED);
    snprintf(id, sizeof(id), "%s", d->case_id);
    decision_free(d);
    return id;
}

/* A status update from unit for case_id. */
static Onegrid__V1__Decision *status(struct fixture *fx, const char *case_id, const char *unit,
                                     int st, int64_t now)
{
    struct ex x;
    ex_status(&x);
    x.status.case_id = (char *)case_id;
    x.status.unit = (char *)unit;
    x.status.status = st;
    return decide_at(fx, &x, now);
}

/* True for the statuses only the supervision or command side sends (核查, 结案, 作废). */
static bool centre_status(int st)
{
    return st == S(CHECKED_OK) || st == S(CHECK_FAILED) || st == S(CLOSED) || st == S(VOIDED);
}

/* Moves case_id through statuses, each step allowed: sent by unit, or by sup-dist for the
 * steps that are not the holder's (centre_status). */
static void walk(struct fixture *fx, const char *case_id, const char *unit, const int *sts,
                 size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const char *who = centre_status(sts[i]) ? "sup-dist" : unit;
        Onegrid__V1__Decision *d = status(fx, case_id, who, sts[i], NOW + 60 * (int64_t)i);
        if (d->kind != KIND(UPDATE_CASE))
            fail_msg("step %zu (status %d) refused: %s", i, sts[i],
                     d->rejection ? d->rejection->text : "?");
        decision_free(d);
    }
}

/* Reports ---------------------------------------------------------------------------- */

static void test_report_opens_cases(void **state)
{
    struct fixture *fx = *state;
    struct ex x;
    Onegrid__V1__Decision *d;

    ex_report(&x);
    d = decide(fx, &x);
    assert_int_equal(d->kind, KIND(OPEN_CASE));
    assert_string_equal(d->case_id, "650204-00000001");
    assert_string_equal(d->district, "650204");
    assert_string_equal(d->grid, "650204001001");
    assert_string_equal(d->category, "facility.handrail");
    assert_string_equal(d->unit, "unit-a");
    assert_int_equal(d->rule_id, 7);
    assert_int_equal(d->rule_version, 2);
    assert_string_equal(d->state, OG_STATE_DISPATCHED);
    assert_string_equal(d->previous_state, "");
    assert_int_equal(d->contacts, 1);
    assert_non_null(d->opened);
    assert_int_equal(d->opened->seconds, NOW);
    assert_null(d->closed);
    assert_null(d->rejection);
    decision_free(d);

    /* The next case of the district gets the next number, routed by its own rule. */
    x.e.id = (char *)"evt-0002";
    x.e.subject = (char *)"BJT-QY-04";
    d = decide(fx, &x);
    assert_int_equal(d->kind, KIND(OPEN_CASE));
    assert_string_equal(d->case_id, "650204-00000002");
    assert_string_equal(d->grid, "650204001002");
    assert_string_equal(d->unit, "unit-b");
    assert_int_equal(d->rule_id, 8);
    assert_int_equal(d->rule_version, 1);
    decision_free(d);

    /* The cases are held in memory as decided. */
    assert_int_equal(og_cases_count(fx->cases), 2);
    struct og_case *c = og_cases_find(fx->cases, "650204-00000001");
    assert_non_null(c);
    assert_string_equal(c->state, OG_STATE_DISPATCHED);
    assert_string_equal(c->unit, "unit-a");
    assert_string_equal(c->area, "650204001001");
    assert_int_equal(c->opened, NOW);
    assert_null(og_cases_find(fx->cases, "650204-00000003"));
}

static void test_sensor_alert_opens_case(void **state)
{
    struct fixture *fx = *state;
    struct ex x;
    ex_alert(&x);
    Onegrid__V1__Decision *d = decide(fx, &x);
    assert_int_equal(d->kind, KIND(OPEN_CASE));
    assert_string_equal(d->case_id, "650204-00000001");
    assert_string_equal(d->grid, "650204001002");
    assert_string_equal(d->category, "hazard.gas");
    assert_string_equal(d->unit, "unit-gas");
    assert_int_equal(d->rule_id, 9);
    assert_int_equal(d->rule_version, 3);
    assert_string_equal(d->state, OG_STATE_DISPATCHED);
    decision_free(d);
}

static void test_report_without_rule_is_reported(void **state)
{
    struct fixture *fx = *state;
    struct ex x;
    ex_report(&x);
    x.report.category = (char *)"env.unrouted";
    Onegrid__V1__Decision *d = decide(fx, &x);
    assert_int_equal(d->kind, KIND(OPEN_CASE));
    assert_string_equal(d->case_id, "650204-00000001");
    assert_string_equal(d->state, OG_STATE_REPORTED);
    assert_string_equal(d->unit, "");
    assert_int_equal(d->rule_id, 0);
    assert_int_equal(d->rule_version, 0);
    decision_free(d);
    struct og_case *c = og_cases_find(fx->cases, "650204-00000001");
    assert_non_null(c);
    assert_null(c->unit);
    /* Nobody holds it: a meeting may close it, or give it to a unit on a new clock. */
    ex_decision(&x);
    x.decision.n_case_ids = 1;
    x.decision.action = ONEGRID__V1__MEETING_DECISION__ACTION__ACTION_ASSIGN;
    x.decision.unit = (char *)"unit-b";
    d = decide_at(fx, &x, NOW + 3600);
    assert_int_equal(d->kind, KIND(UPDATE_CASE));
    assert_string_equal(d->state, OG_STATE_DISPATCHED);
    assert_string_equal(d->previous_state, OG_STATE_REPORTED);
    assert_string_equal(d->unit, "unit-b");
    assert_int_equal(d->deadline->seconds, NOW + 3600 + 3600); /* env.unrouted: 1 "day" = 1 h */
    decision_free(d);
    free(fx->dc.more);
    fx->dc.more = NULL;
}

static void test_report_refusals(void **state)
{
    struct fixture *fx = *state;
    struct ex x;

    ex_report(&x);
    x.e.source = (char *)"weibo";
    expect_reject("unknown source", decide(fx, &x), R(UNAUTHORISED_SOURCE), "weibo");

    ex_report(&x);
    x.e.subject = (char *)"BJT-QY-99";
    expect_reject("unknown subject", decide(fx, &x), R(UNKNOWN_GRID), "BJT-QY-99");

    /* A grid id of another source: the crosswalk is per source. */
    ex_alert(&x);
    x.e.subject = (char *)"BJT-QY-03";
    expect_reject("subject of another source", decide(fx, &x), R(UNKNOWN_GRID), "BJT-QY-03");

    ex_report(&x);
    x.e.subject = (char *)"OTHER-01";
    expect_reject("area outside the shard", decide(fx, &x), R(UNKNOWN_GRID), "650205001001");

    ex_report(&x);
    x.e.subject = (char *)"NOWHERE-1";
    expect_reject("area without a district", decide(fx, &x), R(UNKNOWN_GRID), "NOWHERE-1");

    ex_report(&x);
    x.report.category = (char *)"facility.elevator";
    expect_reject("unknown category", decide(fx, &x), R(UNKNOWN_CATEGORY), "facility.elevator");

    ex_alert(&x);
    x.alert.category = (char *)"hazard.flood";
    expect_reject("unknown alert category", decide(fx, &x), R(UNKNOWN_CATEGORY), "hazard.flood");

    /* No refusal opened a case or used a number. */
    assert_int_equal(og_cases_count(fx->cases), 0);
    assert_string_equal(open_handrail(fx), "650204-00000001");
}

/* Who may send what: the authenticated source, never the payload. Each kind of case
 * action from a source without the grant is refused UNAUTHORISED_SOURCE before the case
 * is looked at; the same from zongzhi (granted) passes that check. */
static void test_authorisation(void **state)
{
    struct fixture *fx = *state;
    struct ex x;
    char id[32];

    snprintf(id, sizeof(id), "%s", open_handrail(fx)); /* held by unit-a */

    /* A status update for the holding unit, sent by the key of source iot.gas (the attack
     * of the issue: iot moved a chengguan case to ACCEPTED by naming its unit). */
    ex_status(&x);
    x.status.case_id = id;
    x.e.source = (char *)"iot.gas";
    expect_reject("status from a source not speaking for the unit", decide(fx, &x),
                  R(UNAUTHORISED_SOURCE), "may not speak for unit \"unit-a\"");
    /* Also for a case that does not exist: the answer tells nothing about cases. */
    x.status.case_id = (char *)"650204-99999999";
    expect_reject("status for an unknown case, unauthorised", decide(fx, &x),
                  R(UNAUTHORISED_SOURCE), "unit-a");
    /* A grant for one unit is not one for another. */
    og_registry_add_unit_grant(fx->reg, "iot.gas", "unit-gas");
    x.status.case_id = id;
    expect_reject("a grant for another unit", decide(fx, &x), R(UNAUTHORISED_SOURCE), "unit-a");

    ex_evaluation(&x);
    x.evaluation.case_id = id;
    x.e.source = (char *)"iot.gas";
    expect_reject("evaluation", decide(fx, &x), R(UNAUTHORISED_SOURCE), "may not send evaluation");

    ex_decision(&x);
    x.e.source = (char *)"iot.gas";
    expect_reject("meeting decision", decide(fx, &x), R(UNAUTHORISED_SOURCE),
                  "may not send meeting_decision");

    ex_split(&x);
    x.split.case_id = id;
    x.e.source = (char *)"iot.gas";
    expect_reject("split", decide(fx, &x), R(UNAUTHORISED_SOURCE), "may not send split");

    /* Mediation: iot.gas now speaks for unit-gas, but may not record mediations. */
    Onegrid__V1__Mediation med = ONEGRID__V1__MEDIATION__INIT;
    ex_status(&x);
    x.status.case_id = id;
    x.status.unit = (char *)"unit-gas";
    x.status.status = ONEGRID__V1__STATUS_UPDATE__STATUS__STATUS_RESOLVED;
    x.status.mediation = &med;
    x.e.source = (char *)"iot.gas";
    expect_reject("mediation", decide(fx, &x), R(UNAUTHORISED_SOURCE), "may not send mediation");

    /* Allowed from zongzhi: each passes the grant check and meets the case's own rules. */
    ex_status(&x);
    x.status.case_id = id;
    Onegrid__V1__Decision *d = decide(fx, &x);
    assert_int_equal(d->kind, KIND(UPDATE_CASE));
    decision_free(d);
    ex_evaluation(&x);
    x.evaluation.case_id = id;
    expect_reject("evaluation from zongzhi: past the grant, refused by the lifecycle",
                  decide(fx, &x), R(INVALID_TRANSITION), NULL);
    ex_split(&x);
    x.split.case_id = id;
    expect_reject("split from zongzhi: past the grant, refused for the report", decide(fx, &x),
                  R(INVALID_FIELD), NULL);
}

/* Extension decisions: a supervising unit's approval needs the extension_decision grant
 * too, besides speaking for that unit. */
static void test_authorisation_extension(void **state)
{
    struct fixture *fx = *state;
    struct ex x;
    char id[32];

    snprintf(id, sizeof(id), "%s", open_handrail(fx));
    ex_status(&x);
    x.status.case_id = id;
    x.status.status = ONEGRID__V1__STATUS_UPDATE__STATUS__STATUS_EXTENSION_REQUESTED;
    x.status.extension_working_days = 2;
    Onegrid__V1__Decision *d = decide(fx, &x);
    assert_int_equal(d->kind, KIND(UPDATE_CASE));
    decision_free(d);

    /* dangjian speaks for the street's supervisor but was not granted extension decisions. */
    og_registry_add_source(fx->reg, "dangjian");
    og_registry_add_unit_grant(fx->reg, "dangjian", "sup-street");
    ex_status(&x);
    x.e.id = (char *)"st-10";
    x.e.source = (char *)"dangjian";
    x.status.case_id = id;
    x.status.unit = (char *)"sup-street";
    x.status.status = ONEGRID__V1__STATUS_UPDATE__STATUS__STATUS_EXTENDED;
    x.status.extension_working_days = 2;
    expect_reject("extension decision without the grant", decide(fx, &x), R(UNAUTHORISED_SOURCE),
                  "may not send extension_decision");
    og_registry_add_action_grant(fx->reg, "dangjian", "extension_decision");
    d = decide(fx, &x);
    assert_int_equal(d->kind, KIND(UPDATE_CASE));
    decision_free(d);
}

/* A refusal quoting a long value is cut on a character boundary: PostgreSQL refuses a
 * text cut inside a UTF-8 character, and the real reason was lost. The longest subject
 * intake lets through (64 characters of 4 bytes) leaves the whole text: it used to be cut
 * at 255 bytes, inside the quoted subject, losing the reason's explanation (review). */
static void test_refusal_text_stays_utf8(void **state)
{
    struct fixture *fx = *state;
    struct ex x;
    char subject[400 * 3 + 1] = "";

    for (int i = 0; i < 64; i++)
        strcat(subject, "\xf0\x9f\x98\x80"); /* U+1F600, 4 bytes */
    ex_report(&x);
    x.e.subject = subject;
    Onegrid__V1__Decision *d = decide(fx, &x);
    assert_int_equal(d->kind, KIND(REJECT));
    assert_non_null(strstr(d->rejection->text, subject));
    assert_non_null(strstr(d->rejection->text, "zongzhi"));
    decision_free(d);

    subject[0] = '\0';
    for (int i = 0; i < 400; i++)
        strcat(subject, "\xe7\xbd\x91"); /* 网, 3 bytes: 10 + 3k never ends at 1024 */
    d = decide(fx, &x);
    assert_int_equal(d->kind, KIND(REJECT));
    assert_true(strlen(d->rejection->text) <= OG_REFUSAL_TEXT_MAX);
    assert_true(strlen(d->rejection->text) > 1000);
    assert_true(og_utf8_valid((const uint8_t *)d->rejection->text, strlen(d->rejection->text)));
    decision_free(d);
}

static void test_intake_rejection_stands(void **state)
{
    struct fixture *fx = *state;
    Onegrid__V1__Submission s = ONEGRID__V1__SUBMISSION__INIT;
    Onegrid__V1__Nack n = ONEGRID__V1__NACK__INIT;
    Onegrid__V1__Decision *d = calloc(1, sizeof(*d));
    struct ex x;

    assert_non_null(d);
    onegrid__v1__decision__init(d);
    n.reason = R(INVALID_UTF8);
    n.text = (char *)"subject: not valid UTF-8";
    s.publisher = (char *)"local";
    s.source = (char *)"zongzhi";
    s.rejection = &n;
    assert_int_equal(og_decide(&fx->dc, &s, NOW, d), 0);
    assert_int_equal(d->kind, KIND(REJECT));
    assert_int_equal(og_cases_count(fx->cases), 0);
    decision_free(d);

    /* Even with a decoded event alongside (intake keeps it for the record). */
    ex_report(&x);
    d = decision_new();
    s.event = &x.e;
    n.reason = R(UNAUTHORISED_SOURCE);
    assert_int_equal(og_decide(&fx->dc, &s, NOW, d), 0);
    assert_int_equal(d->kind, KIND(REJECT));
    assert_int_equal(og_cases_count(fx->cases), 0);
    decision_free(d);
}

/* Status updates and evaluations ----------------------------------------------------- */

static void test_status_update_moves_state(void **state)
{
    struct fixture *fx = *state;
    const char *id = open_handrail(fx);
    Onegrid__V1__Decision *d = status(fx, id, "unit-a", S(ACCEPTED), NOW + 60);
    assert_int_equal(d->kind, KIND(UPDATE_CASE));
    assert_string_equal(d->case_id, id);
    assert_string_equal(d->previous_state, OG_STATE_DISPATCHED);
    assert_string_equal(d->state, OG_STATE_ACCEPTED);
    /* The decision describes the whole case, not only what changed. */
    assert_string_equal(d->unit, "unit-a");
    assert_string_equal(d->district, "650204");
    assert_string_equal(d->grid, "650204001001");
    assert_string_equal(d->category, "facility.handrail");
    assert_int_equal(d->rule_id, 7);
    assert_int_equal(d->rule_version, 2);
    assert_non_null(d->opened);
    assert_int_equal(d->opened->seconds, NOW);
    decision_free(d);
    assert_string_equal(og_cases_find(fx->cases, id)->state, OG_STATE_ACCEPTED);

    /* A step the state does not allow. */
    d = status(fx, id, "sup-dist", S(CHECKED_OK), NOW + 120);
    expect_reject("checked_ok while accepted", d, R(INVALID_TRANSITION), "accepted");
    assert_string_equal(og_cases_find(fx->cases, id)->state, OG_STATE_ACCEPTED);
}

/* 核查 and 结案/作废 are the supervision and command side's: a unit never checks, closes or
 * voids its own case, and a source needs the check or close action to send them. Before,
 * the unit that resolved a case could pass its own check and close it. */
static void test_separation_of_duties(void **state)
{
    struct fixture *fx = *state;
    static const int to_resolved[] = {S(ACCEPTED), S(RESOLVED)};
    struct ex x;
    Onegrid__V1__Decision *d;
    char id[32];
    snprintf(id, sizeof(id), "%s", open_gas(fx));
    walk(fx, id, "unit-gas", to_resolved, OG_ARRAY_SIZE(to_resolved));
    expect_reject("the holder checks its own case", status(fx, id, "unit-gas", S(CHECKED_OK), NOW),
                  R(INVALID_TRANSITION), "may not check its own case");
    expect_reject("a unit that supervises nothing checks it",
                  status(fx, id, "unit-b", S(CHECKED_OK), NOW), R(INVALID_TRANSITION),
                  "supervising unit");
    expect_reject("the holder fails its own check",
                  status(fx, id, "unit-gas", S(CHECK_FAILED), NOW), R(INVALID_TRANSITION),
                  "may not check its own case");
    /* A source with the unit's grant but not the action's. */
    og_registry_add_source(fx->reg, "dangjian");
    og_registry_add_unit_grant(fx->reg, "dangjian", "sup-*");
    ex_status(&x);
    x.e.source = (char *)"dangjian";
    x.status.case_id = id;
    x.status.unit = (char *)"sup-dist";
    x.status.status = S(CHECKED_OK);
    expect_reject("a source without the check action", decide(fx, &x), R(UNAUTHORISED_SOURCE),
                  "may not send check");
    x.status.status = S(VOIDED);
    expect_reject("a source without the close action", decide(fx, &x), R(UNAUTHORISED_SOURCE),
                  "may not send close");
    assert_string_equal(og_cases_find(fx->cases, id)->state, OG_STATE_RESOLVED);
    /* The centre checks it; the holder may not close it, the centre does. */
    d = status(fx, id, "sup-dist", S(CHECKED_OK), NOW + 60);
    assert_int_equal(d->kind, KIND(UPDATE_CASE));
    assert_string_equal(d->unit, "unit-gas"); /* the case stays the unit's */
    decision_free(d);
    expect_reject("the holder closes its own case", status(fx, id, "unit-gas", S(CLOSED), NOW),
                  R(INVALID_TRANSITION), "may not close or void its own case");
    d = status(fx, id, "sup-dist", S(CLOSED), NOW + 120);
    assert_int_equal(d->kind, KIND(UPDATE_CASE));
    assert_string_equal(d->state, OG_STATE_CLOSED);
    decision_free(d);
    /* An unrouted report (no unit holds it) is voided by the centre; before, by nobody. */
    snprintf(id, sizeof(id), "%s", open_unrouted(fx));
    d = status(fx, id, "sup-dist", S(VOIDED), NOW);
    assert_int_equal(d->kind, KIND(UPDATE_CASE));
    assert_string_equal(d->state, OG_STATE_VOIDED);
    decision_free(d);
}

static void test_status_update_refusals(void **state)
{
    struct fixture *fx = *state;
    const char *id = open_handrail(fx);

    expect_reject("another unit", status(fx, id, "unit-b", S(ACCEPTED), NOW), R(INVALID_TRANSITION),
                  "unit-b");
    expect_reject("unknown unit", status(fx, id, "unit-zz", S(ACCEPTED), NOW), R(UNKNOWN_UNIT),
                  "unit-zz");
    expect_reject("unknown case", status(fx, "650204-00000099", "unit-a", S(ACCEPTED), NOW),
                  R(UNKNOWN_CASE), "650204-00000099");
    /* Nothing moved. */
    assert_string_equal(og_cases_find(fx->cases, id)->state, OG_STATE_DISPATCHED);

    /* An unrouted case is held by no unit: no unit may move it. */
    struct ex x;
    ex_report(&x);
    x.report.category = (char *)"env.unrouted";
    Onegrid__V1__Decision *d = decide(fx, &x);
    char unrouted[32];
    snprintf(unrouted, sizeof(unrouted), "%s", d->case_id);
    decision_free(d);
    expect_reject("unrouted case", status(fx, unrouted, "unit-a", S(ACCEPTED), NOW),
                  R(INVALID_TRANSITION), "no unit");

    /* A meeting decision is refused with a reason, not dropped. */
    ex_decision(&x);
    expect_reject("meeting decision", decide(fx, &x), R(INVALID_TRANSITION), "decision");
}

static void test_full_lifecycle_and_evaluation(void **state)
{
    struct fixture *fx = *state;
    const char *id = open_handrail(fx);
    char case_id[32];
    static const int to_closed[] = {S(ACCEPTED), S(IN_PROGRESS), S(RESOLVED), S(CLOSED)};
    snprintf(case_id, sizeof(case_id), "%s", id);

    /* facility.handrail needs no field check: resolved -> closed directly. */
    walk(fx, case_id, "unit-a", to_closed, 3);
    Onegrid__V1__Decision *d = status(fx, case_id, "sup-dist", S(CLOSED), NOW + 500);
    assert_int_equal(d->kind, KIND(UPDATE_CASE));
    assert_string_equal(d->previous_state, OG_STATE_RESOLVED);
    assert_string_equal(d->state, OG_STATE_CLOSED);
    assert_non_null(d->closed);
    assert_int_equal(d->closed->seconds, NOW + 500);
    decision_free(d);

    /* 不满意 reopens the case for the same unit; it is no longer closed. */
    struct ex x;
    ex_evaluation(&x);
    x.evaluation.case_id = case_id;
    x.evaluation.result = ONEGRID__V1__EVALUATION__RESULT__RESULT_UNSATISFIED;
    d = decide_at(fx, &x, NOW + 900);
    assert_int_equal(d->kind, KIND(UPDATE_CASE));
    assert_string_equal(d->previous_state, OG_STATE_CLOSED);
    assert_string_equal(d->state, OG_STATE_DISPATCHED);
    assert_string_equal(d->unit, "unit-a");
    assert_null(d->closed);
    decision_free(d);
    assert_int_equal(og_cases_find(fx->cases, case_id)->closed, 0);

    /* Evaluating a case that is not closed is refused. */
    x.evaluation.result = ONEGRID__V1__EVALUATION__RESULT__RESULT_SATISFIED;
    expect_reject("evaluation of a dispatched case", decide(fx, &x), R(INVALID_TRANSITION),
                  "closed");

    /* Round two, satisfied: evaluated, and the close time kept. */
    walk(fx, case_id, "unit-a", to_closed, 4);
    d = decide_at(fx, &x, NOW + 2000);
    assert_int_equal(d->kind, KIND(UPDATE_CASE));
    assert_string_equal(d->state, OG_STATE_EVALUATED);
    assert_non_null(d->closed);
    assert_int_equal(d->closed->seconds, NOW + 180); /* the 4th step of walk */
    decision_free(d);

    /* Evaluation of an unknown case. */
    x.evaluation.case_id = (char *)"650204-00000042";
    expect_reject("evaluation of an unknown case", decide(fx, &x), R(UNKNOWN_CASE),
                  "650204-00000042");
}

static void test_field_check_required(void **state)
{
    struct fixture *fx = *state;
    char id[32];
    snprintf(id, sizeof(id), "%s", open_gas(fx));

    /* hazard.gas requires a field check: resolved -> closed is refused. */
    static const int to_resolved[] = {S(ACCEPTED), S(RESOLVED)};
    walk(fx, id, "unit-gas", to_resolved, 2);
    expect_reject("close without check", status(fx, id, "sup-dist", S(CLOSED), NOW),
                  R(INVALID_TRANSITION), "STATUS_CLOSED");
    static const int checked[] = {S(CHECKED_OK), S(CLOSED)};
    walk(fx, id, "unit-gas", checked, 2);
    assert_string_equal(og_cases_find(fx->cases, id)->state, OG_STATE_CLOSED);
}

/* cases.c numbering ------------------------------------------------------------------ */

static void test_case_numbering(void **state)
{
    struct og_cases *cs = og_cases_new();
    assert_non_null(cs);
    struct og_case *a = og_cases_open(cs, "650204", "650204001001", "x");
    struct og_case *b = og_cases_open(cs, "650205", "650205001001", "x");
    struct og_case *c = og_cases_open(cs, "650204", "650204001002", "y");
    assert_non_null(a);
    assert_non_null(b);
    assert_non_null(c);
    assert_string_equal(a->id, "650204-00000001");
    assert_string_equal(b->id, "650205-00000001"); /* numbered per district */
    assert_string_equal(c->id, "650204-00000002");
    assert_int_equal(a->contacts, 1);
    assert_null(a->unit);
    assert_int_equal(og_case_set_unit(a, "unit-a"), 0);
    assert_string_equal(a->unit, "unit-a");
    assert_int_equal(og_case_set_unit(a, NULL), 0);
    assert_null(a->unit);
    assert_int_equal(og_case_set_unit(a, "unit-b"), 0);
    assert_ptr_equal(og_cases_find(cs, "650204-00000002"), c);
    assert_int_equal(og_cases_count(cs), 3);
    og_cases_destroy(&cs);
    assert_null(cs);
    og_cases_destroy(&cs);
}

/* Case work: merges and splits, extension requests, returns, severity ------------------ */

/* The base fixture plus: supervisors at community, street and district level (who
 * approve extensions), a street-wide handrail rule to unit-c (where a return goes), a
 * routine demand due in 5 working days, an extreme gas leak due in 1 hour, merging on. */
static int setup_casework(void **state)
{
    static const struct og_category_info demand = {"demand.general", "community", 5,
                                                   "working_days",   false,       "demand"};
    if (setup(state))
        return -1;
    struct fixture *fx = *state;
    struct og_registry *r = fx->reg;
    struct og_rule extra[] = {
        rule(10, 1, "facility.handrail", "650204001", "unit-c", 0),
        rule(11, 1, "demand.general", "650204001001", "unit-a", 0),
    };
    if (og_registry_add_unit(r, "unit-c", "650204001") ||
        og_registry_add_unit(r, "sup-comm", "650204001001") ||
        og_registry_add_unit(r, "sup-street", "650204001") ||
        og_registry_add_supervisor(r, "650204001001", "sup-comm") ||
        og_registry_add_supervisor(r, "650204001", "sup-street") ||
        og_registry_add_category(r, &demand) ||
        og_registry_add_severity_limit(r, "hazard.gas", 1, 1, "hours"))
        return -1;
    for (size_t i = 0; i < OG_ARRAY_SIZE(extra); i++)
        if (og_registry_add_rule(r, &extra[i]))
            return -1;
    fx->dc.merge.window = 72 * 3600;
    fx->dc.merge.distance_m = 150;
    return 0;
}

/* Takes the further decisions og_decide left in dc.more (the caller owns them). */
static Onegrid__V1__Decision *take_more(struct fixture *fx)
{
    Onegrid__V1__Decision *m = fx->dc.n_more ? fx->dc.more[0] : NULL;
    assert_true(fx->dc.n_more <= 1);
    free(fx->dc.more);
    fx->dc.more = NULL;
    fx->dc.n_more = 0;
    return m;
}

static Onegrid__V1__Decision *split_off(struct fixture *fx, const char *case_id,
                                        const char *event_id, int64_t now)
{
    struct ex x;
    ex_split(&x);
    x.split.case_id = (char *)case_id;
    x.split.report_event_id = (char *)event_id;
    return decide_at(fx, &x, now);
}

static void test_split_merged_report(void **state)
{
    struct fixture *fx = *state;
    char first[32];
    struct ex x;

    snprintf(first, sizeof(first), "%s", open_handrail(fx));
    /* The same handrail again, 40 m away, from a 12345-style second report. */
    ex_report(&x);
    x.e.id = (char *)"evt-0002";
    x.location.latitude += 0.0003;
    x.time.seconds += 3600;
    x.report.severity = ONEGRID__V1__SENSOR_ALERT__SEVERITY__SEVERITY_MINOR;
    Onegrid__V1__Decision *d = decide(fx, &x);
    assert_int_equal(d->kind, KIND(MERGE));
    assert_string_equal(d->case_id, first);
    assert_int_equal(d->contacts, 2);
    decision_free(d);

    /* Refusals first: nothing changes. */
    expect_reject("the report that opened the case", split_off(fx, first, "evt-0001", NOW),
                  R(INVALID_FIELD), "did not join");
    expect_reject("an unknown case", split_off(fx, "650204-00000099", "evt-0002", NOW),
                  R(UNKNOWN_CASE), "650204-00000099");
    char other[32];
    ex_report(&x);
    x.e.id = (char *)"evt-0003";
    x.e.subject = (char *)"BJT-QY-04";
    d = decide(fx, &x);
    assert_int_equal(d->kind, KIND(OPEN_CASE));
    snprintf(other, sizeof(other), "%s", d->case_id);
    decision_free(d);
    expect_reject("the report named with another case", split_off(fx, other, "evt-0002", NOW),
                  R(INVALID_FIELD), "did not join");
    assert_int_equal(og_cases_find(fx->cases, first)->contacts, 2);

    /* The split: a new case from the report's own facts, the old one a contact less. */
    d = split_off(fx, first, "evt-0002", NOW + 7200);
    Onegrid__V1__Decision *m = take_more(fx);
    assert_int_equal(d->kind, KIND(OPEN_CASE));
    assert_string_not_equal(d->case_id, first);
    assert_string_equal(d->split_from, first);
    assert_string_equal(d->report_source, "zongzhi");
    assert_string_equal(d->report_event_id, "evt-0002");
    assert_string_equal(d->state, OG_STATE_DISPATCHED);
    assert_string_equal(d->unit, "unit-a");
    assert_int_equal(d->rule_id, 7);
    assert_int_equal(d->contacts, 1);
    assert_int_equal(d->severity, 4);
    assert_int_equal(d->opened->seconds, NOW + 7200);
    assert_non_null(m);
    assert_int_equal(m->kind, KIND(SPLIT));
    assert_string_equal(m->case_id, first);
    assert_string_equal(m->split_to, d->case_id);
    assert_int_equal(m->contacts, 1);
    struct og_case *n = og_cases_find(fx->cases, d->case_id);
    assert_non_null(n);
    assert_int_equal(n->occurred, T_NOW - 600 + 3600);
    assert_true(n->has_location);
    assert_int_equal(og_cases_find(fx->cases, first)->contacts, 1);
    decision_free(d);
    decision_free(m);

    /* Split once: the report is no longer a merged report of the case. */
    expect_reject("split twice", split_off(fx, first, "evt-0002", NOW + 7300), R(INVALID_FIELD),
                  "did not join");
    assert_null(take_more(fx));
}

static void test_split_refused_when_finished(void **state)
{
    struct fixture *fx = *state;
    struct ex x;
    char first[32];
    snprintf(first, sizeof(first), "%s", open_handrail(fx));
    ex_report(&x);
    x.e.id = (char *)"evt-0002";
    decision_free(decide(fx, &x));
    static const int steps[] = {S(ACCEPTED), S(RESOLVED), S(CLOSED)};
    walk(fx, first, "unit-a", steps, OG_ARRAY_SIZE(steps));
    expect_reject("a closed case", split_off(fx, first, "evt-0002", NOW + 3600),
                  R(INVALID_TRANSITION), "closed");
    /* 不满意 reopens it: open again, its merged report can be split off again. */
    ex_evaluation(&x);
    x.evaluation.case_id = first;
    x.evaluation.result = ONEGRID__V1__EVALUATION__RESULT__RESULT_UNSATISFIED;
    decision_free(decide_at(fx, &x, NOW + 7200));
    Onegrid__V1__Decision *d = split_off(fx, first, "evt-0002", NOW + 7300);
    assert_int_equal(d->kind, KIND(OPEN_CASE));
    decision_free(d);
    decision_free(take_more(fx));
}

static Onegrid__V1__Decision *extension(struct fixture *fx, const char *case_id, const char *unit,
                                        int st, int days, int64_t now)
{
    struct ex x;
    ex_status(&x);
    x.status.case_id = (char *)case_id;
    x.status.unit = (char *)unit;
    x.status.status = st;
    x.status.extension_working_days = days;
    return decide_at(fx, &x, now);
}

/* A status update of unit on case_id (for extensions: days), which intake received at
 * received, decided by dispatch at now. Returns the decision (free with decision_free). */
static Onegrid__V1__Decision *extension_received(struct fixture *fx, const char *case_id,
                                                 const char *unit, int st, int days,
                                                 int64_t received, int64_t now)
{
    struct ex x;
    Onegrid__V1__Submission sub = ONEGRID__V1__SUBMISSION__INIT;
    Onegrid__V1__Timestamp got = ONEGRID__V1__TIMESTAMP__INIT;
    Onegrid__V1__Decision *d = decision_new();
    ex_status(&x);
    x.status.case_id = (char *)case_id;
    x.status.unit = (char *)unit;
    x.status.status = st;
    x.status.extension_working_days = days;
    got.seconds = received;
    sub.publisher = (char *)"local";
    sub.source = x.e.source;
    sub.event = &x.e;
    sub.received = &got;
    assert_int_equal(og_decide(&fx->dc, &sub, now, d), 0);
    return d;
}

/* unit-a's request for 1 working day more on case_id, which intake received at received,
 * decided by dispatch at now. Returns the decision (free with decision_free). */
static Onegrid__V1__Decision *request_received(struct fixture *fx, const char *case_id,
                                               int64_t received, int64_t now)
{
    return extension_received(fx, case_id, "unit-a", S(EXTENSION_REQUESTED), 1, received, now);
}

/* Opens a routine demand (5 working days) at BJT-QY-03; returns its id (static). */
static const char *open_demand(struct fixture *fx, int64_t now)
{
    static char id[32];
    struct ex x;
    ex_report(&x);
    x.report.category = (char *)"demand.general";
    Onegrid__V1__Decision *d = decide_at(fx, &x, now);
    assert_int_equal(d->kind, KIND(OPEN_CASE));
    snprintf(id, sizeof(id), "%s", d->case_id);
    decision_free(d);
    return id;
}

/* Opens a routine demand at NOW into id (32 bytes); returns its case in memory. */
static struct og_case *demand_case(struct fixture *fx, char *id)
{
    snprintf(id, 32, "%s", open_demand(fx, NOW));
    struct og_case *c = og_cases_find(fx->cases, id);
    assert_non_null(c);
    return c;
}

static void test_extension_request_pauses_clock(void **state)
{
    struct fixture *fx = *state;
    struct og_calendar *cal = og_registry_calendar(fx->reg);
    char id[32];
    struct og_case *c = demand_case(fx, id);
    int64_t due = c->deadline, asked = NOW + 3600, decided = NOW + 3 * 86400;
    assert_int_equal(due, og_calendar_deadline(cal, NOW, 5, "working_days"));

    expect_reject("a refusal with nothing pending",
                  extension(fx, id, "sup-street", S(EXTENSION_REFUSED), 0, asked),
                  R(INVALID_TRANSITION), "no extension request is pending");
    expect_reject("a request from another unit",
                  extension(fx, id, "unit-b", S(EXTENSION_REQUESTED), 3, asked),
                  R(INVALID_TRANSITION), "held by");
    Onegrid__V1__Decision *d = extension(fx, id, "unit-a", S(EXTENSION_REQUESTED), 3, asked);
    assert_int_equal(d->kind, KIND(UPDATE_CASE));
    assert_string_equal(d->state, OG_STATE_DISPATCHED);
    assert_non_null(d->paused_at);
    assert_int_equal(d->paused_at->seconds, asked);
    assert_int_equal(d->extension_days, 3);
    assert_int_equal(d->deadline->seconds, due);
    decision_free(d);

    /* While it is pending, the clock does not escalate, however late it gets. */
    Onegrid__V1__Decision e = ONEGRID__V1__DECISION__INIT;
    assert_int_equal(og_escalate(&fx->dc, c, due + 30 * 86400, &e), 0);
    assert_int_equal(c->escalation_level, 0);

    expect_reject("a second request", extension(fx, id, "unit-a", S(EXTENSION_REQUESTED), 2, asked),
                  R(INVALID_TRANSITION), "already pending");
    expect_reject("approved by the unit itself",
                  extension(fx, id, "unit-a", S(EXTENDED), 3, decided), R(INVALID_TRANSITION),
                  "supervising unit");
    expect_reject("approved by a unit that does not supervise it",
                  extension(fx, id, "unit-b", S(EXTENDED), 3, decided), R(INVALID_TRANSITION),
                  "supervising unit");

    /* The street office approves 2 of the 3 days: the clock resumes with the working time
     * it had left, then 2 working days more. */
    d = extension(fx, id, "sup-street", S(EXTENDED), 2, decided);
    assert_int_equal(d->kind, KIND(UPDATE_CASE));
    assert_null(d->paused_at);
    assert_int_equal(d->extension_days, 0);
    int64_t resumed = og_calendar_resume(cal, due, asked, decided, "working_days");
    assert_true(resumed > due);
    assert_int_equal(d->deadline->seconds, og_calendar_deadline(cal, resumed, 2, "working_days"));
    assert_string_equal(d->unit, "unit-a"); /* the holder stays */
    decision_free(d);

    /* A second request, refused by the community: resumed, nothing added. */
    int64_t due2 = c->deadline, asked2 = decided + 3600, refused = decided + 86400;
    decision_free(extension(fx, id, "unit-a", S(EXTENSION_REQUESTED), 5, asked2));
    d = extension(fx, id, "sup-comm", S(EXTENSION_REFUSED), 0, refused);
    assert_int_equal(d->kind, KIND(UPDATE_CASE));
    assert_null(d->paused_at);
    assert_int_equal(d->deadline->seconds,
                     og_calendar_resume(cal, due2, asked2, refused, "working_days"));
    decision_free(d);

    /* A request pending when the unit resolves the case lapses; the clock is resumed so
     * that the on-time measure counts the pause. */
    int64_t due3 = c->deadline, asked3 = refused + 60;
    decision_free(extension(fx, id, "unit-a", S(EXTENSION_REQUESTED), 1, asked3));
    decision_free(status(fx, id, "unit-a", S(ACCEPTED), asked3 + 60));
    assert_int_equal(c->paused_at, 0);
    assert_int_equal(c->deadline,
                     og_calendar_resume(cal, due3, asked3, asked3 + 60, "working_days"));

    /* Received in time, decided late (dispatch away, or its clock untrusted, meanwhile): it
     * was asked in time, and the clock paused when intake received it. Before, dispatch's
     * own time decided, and the request was refused for a reason not in it. */
    int64_t was_due = c->deadline;
    Onegrid__V1__Decision *late = request_received(fx, id, was_due - 60, was_due + 3600);
    if (late->kind != KIND(UPDATE_CASE))
        fail_msg("a request received in time, decided late: %s",
                 late->rejection ? late->rejection->text : "?");
    assert_int_equal(c->paused_at, was_due - 60);
    decision_free(late);
    /* Refused, to let the clock run again for what follows. */
    late = extension(fx, id, "sup-street", S(EXTENSION_REFUSED), 0, was_due + 3660);
    assert_int_equal(late->kind, KIND(UPDATE_CASE));
    decision_free(late);

    /* An intake clock far behind (a receipt before the case was opened) is not believed:
     * dispatch's own time decides, and it is past the deadline. */
    expect_reject("a receipt time before the case was opened",
                  request_received(fx, id, c->opened - 86400, c->deadline + 60),
                  R(INVALID_TRANSITION), "deadline had passed");

    /* Too late: a request after the deadline is refused. */
    expect_reject("a request after the deadline",
                  extension(fx, id, "unit-a", S(EXTENSION_REQUESTED), 1, c->deadline + 1),
                  R(INVALID_TRANSITION), "deadline had passed when it was received");
}

static int escalate(struct fixture *fx, struct og_case *c, int64_t now);

/* A request no supervising unit decides lapses at the close of the extension_decision_days-th
 * working day after intake received it: the clock runs again as of then (not as of the
 * scan that noticed), and the case can be overdue and escalated. Before, a pending request
 * paused the clock for ever: a unit that asked was never overdue unless someone answered. */
static void test_extension_request_lapses(void **state)
{
    struct fixture *fx = *state;
    struct og_calendar *cal = og_registry_calendar(fx->reg);
    char id[32];
    struct og_case *c = demand_case(fx, id);
    int64_t due = c->deadline, asked = NOW + 3600;
    Onegrid__V1__Decision *d;

    decision_free(extension(fx, id, "unit-a", S(EXTENSION_REQUESTED), 3, asked));
    assert_int_equal(c->paused_at, asked);
    /* Never, where requests wait for their decision for ever. */
    fx->dc.extension_decision_days = 0;
    assert_int_equal(og_extension_lapses(&fx->dc, c), 0);
    d = decision_new();
    assert_int_equal(og_lapse(&fx->dc, c, due + 365 * 86400, d), 0);
    assert_int_equal(c->paused_at, asked);

    fx->dc.extension_decision_days = 1;
    int64_t lapses = og_extension_lapses(&fx->dc, c);
    assert_int_equal(lapses, og_calendar_deadline(cal, asked, 1, "working_days"));
    assert_true(lapses > asked && lapses < due);
    assert_int_equal(og_lapse(&fx->dc, c, lapses - 1, d), 0);
    assert_int_equal(c->paused_at, asked);

    /* Noticed three days late: resumed as of the lapse all the same. */
    assert_int_equal(og_lapse(&fx->dc, c, lapses + 3 * 86400, d), 1);
    assert_int_equal(d->kind, KIND(UPDATE_CASE));
    assert_string_equal(d->state, OG_STATE_DISPATCHED);
    assert_string_equal(d->previous_state, OG_STATE_DISPATCHED);
    assert_string_equal(d->unit, "unit-a");
    assert_null(d->paused_at);
    assert_int_equal(d->extension_days, 0);
    assert_string_equal(d->clock, OG_CLOCK_RUNNING);
    int64_t resumed = og_calendar_resume(cal, due, asked, lapses, "working_days");
    assert_true(resumed > due);
    assert_int_equal(d->deadline->seconds, resumed);
    assert_int_equal(c->deadline, resumed);
    assert_int_equal(c->paused_at, 0);
    decision_free(d);
    d = decision_new();
    assert_int_equal(og_lapse(&fx->dc, c, lapses + 4 * 86400, d), 0); /* once */
    decision_free(d);

    /* Nothing is pending now: a refusal intake received after the lapse is refused. One it
     * received before (dispatch away until the scan had lapsed the request) found it
     * pending: recorded, and the clock runs as of its receipt (test_refusal_received_
     * before_a_recorded_lapse). A second request received then is refused: one was
     * pending. */
    expect_reject("a refusal after the lapse",
                  extension(fx, id, "sup-street", S(EXTENSION_REFUSED), 0, lapses + 3600),
                  R(INVALID_TRANSITION), "no extension request is pending");
    assert_int_equal(c->lapsed_at, lapses);
    expect_reject("a request received while the first was pending",
                  extension_received(fx, id, "unit-a", S(EXTENSION_REQUESTED), 2, lapses - 60,
                                     lapses + 4 * 86400),
                  R(INVALID_TRANSITION), "already pending when this one was received");
    d = extension_received(fx, id, "sup-street", S(EXTENSION_REFUSED), 0, lapses - 60,
                           lapses + 4 * 86400);
    assert_int_equal(d->kind, KIND(UPDATE_CASE));
    resumed = og_calendar_resume(cal, due, asked, lapses - 60, "working_days");
    assert_int_equal(d->deadline->seconds, resumed);
    assert_non_null(d->extension_lapsed);
    assert_int_equal(d->extension_lapsed->seconds, lapses);
    decision_free(d);
    /* Past the resumed deadline the case is overdue again. */
    assert_int_equal(escalate(fx, c, resumed - 1), 0);
    assert_int_equal(escalate(fx, c, resumed + 1), 1);
    assert_int_equal(c->escalation_level, 1);
}

/* The other order: dispatch decides an update before its scan saw the lapse (it was away
 * across it, and its first turn decided its inbox). The update is judged as received: a
 * refusal received after the lapse is refused for that; the unit's next request, received
 * after it, is a new one against the clock resumed at the lapse, not "already pending". */
/* A demand case whose unit asked for 3 working days at NOW + 1 h, with a working day to
 * decide (extension_decision_days 1): *asked, when the request lapses (*lapses) and the
 * deadline the lapse leaves (*resumed). */
static struct og_case *lapsing_request(struct fixture *fx, char *id, int64_t *asked,
                                       int64_t *lapses, int64_t *resumed)
{
    struct og_case *c = demand_case(fx, id);
    int64_t due = c->deadline;
    *asked = NOW + 3600;
    fx->dc.extension_decision_days = 1;
    decision_free(extension(fx, id, "unit-a", S(EXTENSION_REQUESTED), 3, *asked));
    *lapses = og_extension_lapses(&fx->dc, c);
    *resumed =
        og_calendar_resume(og_registry_calendar(fx->reg), due, *asked, *lapses, "working_days");
    return c;
}

static void test_extension_lapse_judged_by_receipt(void **state)
{
    struct fixture *fx = *state;
    struct og_calendar *cal = og_registry_calendar(fx->reg);
    char id[32];
    int64_t asked, lapses, resumed;
    struct og_case *c = lapsing_request(fx, id, &asked, &lapses, &resumed);
    int64_t late = lapses + 86400;

    expect_reject(
        "a refusal received after the lapse",
        extension_received(fx, id, "sup-street", S(EXTENSION_REFUSED), 0, lapses + 60, late),
        R(INVALID_TRANSITION), "lapsed undecided at");
    assert_int_equal(c->paused_at, asked); /* a refusal changes nothing */
    Onegrid__V1__Decision *d =
        extension_received(fx, id, "unit-a", S(EXTENSION_REQUESTED), 2, lapses + 60, late);
    assert_int_equal(d->kind, KIND(UPDATE_CASE));
    assert_int_equal(d->paused_at->seconds, lapses + 60);
    assert_int_equal(d->extension_days, 2);
    assert_int_equal(d->deadline->seconds, resumed); /* resumed at the lapse, paused again */
    assert_int_equal(d->extension_lapsed->seconds, lapses);
    assert_non_null(d->lapse_deadline); /* this decision records the lapse */
    assert_int_equal(d->lapse_deadline->seconds, resumed);
    decision_free(d);
    /* A supervisor's refusal of the second, received in time: resumed as of its receipt. */
    d = extension_received(fx, id, "sup-street", S(EXTENSION_REFUSED), 0, lapses + 120,
                           lapses + 180);
    assert_int_equal(d->kind, KIND(UPDATE_CASE));
    assert_null(d->lapse_deadline); /* no lapse of its own to record */
    assert_null(d->paused_at);
    assert_int_equal(d->deadline->seconds,
                     og_calendar_resume(cal, resumed, lapses + 60, lapses + 120, "working_days"));
    decision_free(d);
}

/* A supervisor's refusal or approval that intake received while the request was pending,
 * which dispatch decides only after its scan recorded the lapse (it was away, or held the
 * event while the database was): the clock runs again as of the receipt, from the pause the
 * lapse kept, not as of the lapse. Before, the refusal left the clock the lapse had resumed
 * and the approval added its days to it: the unit was given the time from the receipt to
 * the lapse (here a working day). lapsing_request's request, lapsed by the scan an hour
 * after it lapsed; *due: the deadline the request paused. */
static struct og_case *lapsed_request(struct fixture *fx, char *id, int64_t *asked, int64_t *lapses,
                                      int64_t *resumed, int64_t *due)
{
    struct og_case *c = lapsing_request(fx, id, asked, lapses, resumed);
    *due = c->deadline;
    Onegrid__V1__Decision *d = decision_new();
    assert_int_equal(og_lapse(&fx->dc, c, *lapses + 3600, d), 1);
    assert_int_equal(d->deadline->seconds, *resumed);
    /* The decision carries the pause the lapse ended. */
    assert_non_null(d->lapsed_paused_at);
    assert_int_equal(d->lapsed_paused_at->seconds, *asked);
    assert_non_null(d->lapsed_paused_deadline);
    assert_int_equal(d->lapsed_paused_deadline->seconds, *due);
    decision_free(d);
    return c;
}

static void test_refusal_received_before_a_recorded_lapse(void **state)
{
    struct fixture *fx = *state;
    struct og_calendar *cal = og_registry_calendar(fx->reg);
    char id[32];
    int64_t asked, lapses, resumed, due;
    struct og_case *c = lapsed_request(fx, id, &asked, &lapses, &resumed, &due);
    /* The lapse moved the clock's start on as far as its deadline. */
    int64_t started = c->clock_started - (resumed - due);

    /* A refusal received a minute after the request, decided after the lapse. */
    int64_t refused = asked + 60;
    int64_t at_refusal = og_calendar_resume(cal, due, asked, refused, "working_days");
    assert_true(at_refusal < resumed); /* or this test could not tell */
    Onegrid__V1__Decision *d =
        extension_received(fx, id, "sup-street", S(EXTENSION_REFUSED), 0, refused, lapses + 7200);
    assert_int_equal(d->kind, KIND(UPDATE_CASE));
    assert_null(d->paused_at);
    assert_int_equal(d->deadline->seconds, at_refusal);
    assert_int_equal(c->deadline, at_refusal);
    assert_int_equal(c->clock_started, started + (at_refusal - due));
    assert_int_equal(d->extension_lapsed->seconds, lapses); /* the lapse stays recorded */
    decision_free(d);
    /* Once: the same refusal again moves nothing (the deadline is no longer the lapse's). */
    d = extension_received(fx, id, "sup-street", S(EXTENSION_REFUSED), 0, refused + 1,
                           lapses + 7300);
    assert_int_equal(d->deadline->seconds, at_refusal);
    decision_free(d);
    /* Received before the request was made: no pause of it to end. */
    d = extension_received(fx, id, "sup-street", S(EXTENSION_REFUSED), 0, asked - 60,
                           lapses + 7400);
    assert_int_equal(c->deadline, at_refusal);
    decision_free(d);
}

/* An approval so received: the days granted from the clock resumed at its receipt. */
static void test_approval_received_before_a_recorded_lapse(void **state)
{
    struct fixture *fx = *state;
    struct og_calendar *cal = og_registry_calendar(fx->reg);
    char id[32];
    int64_t asked, lapses, resumed, due;
    (void)lapsed_request(fx, id, &asked, &lapses, &resumed, &due);
    int64_t approved = asked + 60;
    Onegrid__V1__Decision *d =
        extension_received(fx, id, "sup-street", S(EXTENDED), 3, approved, lapses + 7200);
    assert_int_equal(d->kind, KIND(UPDATE_CASE));
    int64_t granted = og_calendar_deadline(
        cal, og_calendar_resume(cal, due, asked, approved, "working_days"), 3, "working_days");
    assert_true(granted < og_calendar_deadline(cal, resumed, 3, "working_days"));
    assert_int_equal(d->deadline->seconds, granted);
    decision_free(d);
}

/* A return (退回) after the lapse gave the next unit a clock of its own: a refusal received
 * before the lapse, decided after both, leaves that clock as it is. */
static void test_refusal_before_a_recorded_lapse_after_a_return(void **state)
{
    struct fixture *fx = *state;
    char id[32];
    int64_t asked, lapses, resumed, due;
    struct og_case *c = lapsed_request(fx, id, &asked, &lapses, &resumed, &due);
    decision_free(
        extension_received(fx, id, "unit-a", S(RETURNED), 0, lapses + 3700, lapses + 3700));
    int64_t next_clock = c->deadline;
    assert_true(next_clock != resumed);
    Onegrid__V1__Decision *d = extension_received(fx, id, "sup-street", S(EXTENSION_REFUSED), 0,
                                                  asked + 60, lapses + 7200);
    assert_int_equal(d->kind, KIND(UPDATE_CASE));
    assert_int_equal(c->deadline, next_clock);
    decision_free(d);
}

/* The review of the first form (guarded by the deadline alone): a return the morning after
 * the lapse gave the next unit a clock due at the same close as the lapse's; the late
 * refusal then moved that unit's deadline back a day. The pause is forgotten with a new
 * clock. */
static void test_late_refusal_leaves_a_new_clock_due_at_the_same_close(void **state)
{
    struct fixture *fx = *state;
    char id[32];
    int64_t asked, lapses, resumed, due;
    struct og_case *c = lapsed_request(fx, id, &asked, &lapses, &resumed, &due);
    int64_t ret = lapses + 16 * 3600; /* 09:00 the day after the lapse */
    decision_free(extension_received(fx, id, "unit-a", S(RETURNED), 0, ret, ret));
    assert_string_equal(c->unit, "sup-dist");
    int64_t next_clock = c->deadline, next_started = c->clock_started;
    assert_int_equal(next_clock, resumed); /* the same close, or this could not tell */
    Onegrid__V1__Decision *d =
        extension_received(fx, id, "sup-street", S(EXTENSION_REFUSED), 0, asked + 60, ret + 3600);
    assert_int_equal(d->kind, KIND(UPDATE_CASE));
    assert_null(d->lapsed_paused_at); /* forgotten with the new clock */
    decision_free(d);
    assert_int_equal(c->deadline, next_clock);
    assert_int_equal(c->clock_started, next_started);
}

/* The unit asked again after the lapse; the refusal of the first request, received before
 * the lapse, is decided while the second is pending: it is about the first. The second stays
 * pending (before: the refusal ended it), and the clock it paused is the one the refusal
 * would have left. */
static void test_late_refusal_of_the_first_request_while_a_second_waits(void **state)
{
    struct fixture *fx = *state;
    struct og_calendar *cal = og_registry_calendar(fx->reg);
    char id[32];
    int64_t asked, lapses, resumed, due;
    struct og_case *c = lapsed_request(fx, id, &asked, &lapses, &resumed, &due);
    int64_t again = lapses + 3700;
    decision_free(extension_received(fx, id, "unit-a", S(EXTENSION_REQUESTED), 2, again, again));
    assert_int_equal(c->paused_at, again);
    Onegrid__V1__Decision *d = extension_received(fx, id, "sup-street", S(EXTENSION_REFUSED), 0,
                                                  asked + 60, lapses + 7200);
    assert_int_equal(d->kind, KIND(UPDATE_CASE));
    assert_non_null(d->paused_at);
    assert_int_equal(d->paused_at->seconds, again); /* the second request still waits */
    assert_int_equal(d->extension_days, 2);
    assert_int_equal(d->deadline->seconds,
                     og_calendar_resume(cal, due, asked, asked + 60, "working_days"));
    decision_free(d);
}

/* A lapse recorded before migration 029 (the pause unknown): nothing moves, as before. */
static void test_late_refusal_of_a_lapse_without_its_pause(void **state)
{
    struct fixture *fx = *state;
    char id[32];
    int64_t asked, lapses, resumed, due;
    struct og_case *c = lapsed_request(fx, id, &asked, &lapses, &resumed, &due);
    c->lapsed_paused_at = c->lapsed_paused_deadline = 0; /* as cases.c loads NULL */
    int64_t started = c->clock_started;
    Onegrid__V1__Decision *d = extension_received(fx, id, "sup-street", S(EXTENSION_REFUSED), 0,
                                                  asked + 60, lapses + 7200);
    assert_int_equal(d->kind, KIND(UPDATE_CASE));
    assert_int_equal(c->deadline, resumed);
    assert_int_equal(c->clock_started, started);
    assert_null(d->lapsed_paused_at);
    assert_null(d->lapsed_paused_deadline);
    decision_free(d);
}

/* The unit's own next step (accepted), received while its request was pending, ends the
 * pause as of its receipt, as a refusal does, when dispatch decides it after the scan
 * recorded the lapse. So does a refusal after a lapse the unit's step recorded. */
static void test_holder_step_received_before_a_recorded_lapse(void **state)
{
    struct fixture *fx = *state;
    struct og_calendar *cal = og_registry_calendar(fx->reg);
    char id[32];
    int64_t asked, lapses, resumed, due;
    struct og_case *c = lapsed_request(fx, id, &asked, &lapses, &resumed, &due);
    Onegrid__V1__Decision *d =
        extension_received(fx, id, "unit-a", S(ACCEPTED), 0, asked + 60, lapses + 7200);
    assert_int_equal(d->kind, KIND(UPDATE_CASE));
    decision_free(d);
    assert_int_equal(c->deadline, og_calendar_resume(cal, due, asked, asked + 60, "working_days"));
}

static void test_late_refusal_after_a_lapse_a_step_recorded(void **state)
{
    struct fixture *fx = *state;
    struct og_calendar *cal = og_registry_calendar(fx->reg);
    char id[32];
    int64_t asked, lapses, resumed;
    struct og_case *c = lapsing_request(fx, id, &asked, &lapses, &resumed);
    int64_t due = c->deadline;
    Onegrid__V1__Decision *d =
        extension_received(fx, id, "unit-a", S(ACCEPTED), 0, lapses + 60, lapses + 60);
    assert_non_null(d->lapsed_paused_at);
    assert_int_equal(d->lapsed_paused_deadline->seconds, due);
    assert_int_equal(d->deadline->seconds, resumed);
    decision_free(d);
    d = extension_received(fx, id, "sup-street", S(EXTENSION_REFUSED), 0, asked + 60, lapses + 120);
    assert_int_equal(d->deadline->seconds,
                     og_calendar_resume(cal, due, asked, asked + 60, "working_days"));
    decision_free(d);
}

/* The second review: the unit's own step that takes the case from its hands (resolved),
 * received before the lapse and decided while the unit's next request waits, ends that
 * request (its pause using no time): had it come first, the request could not have been
 * made. Before, the resolved case kept a pending request. */
static void test_late_resolution_ends_a_request_made_since(void **state)
{
    struct fixture *fx = *state;
    char id[32];
    int64_t asked, lapses, resumed, due;
    struct og_case *c = lapsed_request(fx, id, &asked, &lapses, &resumed, &due);
    int64_t again = lapses + 3700;
    decision_free(extension_received(fx, id, "unit-a", S(ACCEPTED), 0, asked + 30, asked + 30));
    decision_free(extension_received(fx, id, "unit-a", S(EXTENSION_REQUESTED), 2, again, again));
    assert_int_equal(c->paused_at, again);
    Onegrid__V1__Decision *d =
        extension_received(fx, id, "unit-a", S(RESOLVED), 0, asked + 60, lapses + 7200);
    assert_int_equal(d->kind, KIND(UPDATE_CASE));
    assert_string_equal(d->state, OG_STATE_RESOLVED);
    assert_null(d->paused_at);
    assert_int_equal(c->paused_at, 0);
    decision_free(d);
}

/* And a refusal of the lapsed request that leaves a clock which had run out when the unit
 * asked again: that request was late, had the refusal come first. It ends; the case is
 * overdue from the deadline the refusal leaves. */
static void test_late_refusal_ends_a_request_made_too_late(void **state)
{
    struct fixture *fx = *state;
    struct og_calendar *cal = og_registry_calendar(fx->reg);
    char id[32];
    struct og_case *c = demand_case(fx, id);
    int64_t due = c->deadline, asked = due - 2 * 3600; /* two hours before its deadline */
    fx->dc.extension_decision_days = 1;
    decision_free(extension_received(fx, id, "unit-a", S(EXTENSION_REQUESTED), 3, asked, asked));
    int64_t lapses = og_extension_lapses(&fx->dc, c);
    Onegrid__V1__Decision *d = decision_new();
    assert_int_equal(og_lapse(&fx->dc, c, lapses + 600, d), 1);
    decision_free(d);
    int64_t again = lapses + 3600;
    assert_true(again < c->deadline); /* in time against the clock the lapse left */
    decision_free(extension_received(fx, id, "unit-a", S(EXTENSION_REQUESTED), 2, again, again));
    assert_int_equal(c->paused_at, again);
    d = extension_received(fx, id, "sup-street", S(EXTENSION_REFUSED), 0, asked + 60, again + 600);
    assert_int_equal(d->kind, KIND(UPDATE_CASE));
    int64_t left = og_calendar_resume(cal, due, asked, asked + 60, "working_days");
    assert_true(left <= again);
    assert_int_equal(c->deadline, left);
    assert_int_equal(c->paused_at, 0);
    assert_null(d->paused_at);
    decision_free(d);
}

/* A lapse the unit's next step records (the step came before dispatch's scan did) is told
 * in that decision: lapse_deadline, the deadline the lapse left, which the step may change
 * again. A return (退回) gives the next unit a clock of its own: without lapse_deadline,
 * audit.extensions showed that unit's deadline as the one the lapse left. */
static void test_lapse_deadline_before_the_step(void **state)
{
    struct fixture *fx = *state;
    char id[32];
    int64_t asked, lapses, resumed;
    (void)lapsing_request(fx, id, &asked, &lapses, &resumed);
    /* Decided a week after the lapse (dispatch away): the next unit's clock starts then. */
    int64_t late = lapses + 7 * 86400;
    Onegrid__V1__Decision *d =
        extension_received(fx, id, "unit-a", S(RETURNED), 0, lapses + 60, late);
    assert_int_equal(d->kind, KIND(UPDATE_CASE));
    assert_string_not_equal(d->unit, "unit-a"); /* re-routed: a new clock */
    assert_int_equal(d->extension_lapsed->seconds, lapses);
    assert_non_null(d->lapse_deadline);
    assert_int_equal(d->lapse_deadline->seconds, resumed);
    assert_non_null(d->deadline);
    assert_true(d->deadline->seconds != resumed);
    decision_free(d);
}

/* A decision on an extension request resumes the clock as of when intake received it, not
 * when dispatch decided it: a refusal received at once but decided a week later gives the
 * unit no week more, and an approval adds its days to that same clock (review). */
static void test_extension_decided_as_received(void **state)
{
    struct fixture *fx = *state;
    struct og_calendar *cal = og_registry_calendar(fx->reg);
    char refused_id[32], approved_id[32];
    fx->dc.merge.window = 0; /* two cases of one report */
    struct og_case *refused_case = demand_case(fx, refused_id);
    struct og_case *approved_case = demand_case(fx, approved_id);
    int64_t asked = NOW + 3600, answered = NOW + 7200, decided = answered + 7 * 86400;
    int64_t due = refused_case->deadline;
    assert_int_equal(approved_case->deadline, due);
    /* A receipt before the request is not believed: resumed at the pause. */
    int64_t early = NOW + 1800;

    decision_free(request_received(fx, refused_id, asked, asked));
    decision_free(request_received(fx, approved_id, asked, asked));
    Onegrid__V1__Decision *d = extension_received(fx, refused_id, "sup-street",
                                                  S(EXTENSION_REFUSED), 0, answered, decided);
    assert_int_equal(d->kind, KIND(UPDATE_CASE));
    assert_null(d->paused_at);
    int64_t resumed = og_calendar_resume(cal, due, asked, answered, "working_days");
    assert_int_equal(d->deadline->seconds, resumed);
    assert_int_equal(refused_case->deadline, resumed);
    decision_free(d);

    d = extension_received(fx, approved_id, "sup-street", S(EXTENDED), 2, answered, decided);
    assert_int_equal(d->kind, KIND(UPDATE_CASE));
    assert_int_equal(d->deadline->seconds, og_calendar_deadline(cal, resumed, 2, "working_days"));
    decision_free(d);

    /* Paused again; a refusal whose receipt is before the pause resumes it at the pause. */
    decision_free(request_received(fx, refused_id, answered + 60, decided + 60));
    int64_t before = refused_case->deadline;
    d = extension_received(fx, refused_id, "sup-street", S(EXTENSION_REFUSED), 0, early,
                           decided + 120);
    assert_int_equal(d->kind, KIND(UPDATE_CASE));
    assert_int_equal(d->deadline->seconds, before);
    decision_free(d);
}

/* When the current clock started (Decision.clock_started, og.case.clock_started_at): the
 * colours of audit.case_clocks measure the time limit from it. Before, they measured from
 * the filing, and a case re-routed or reopened long after was yellow at once. */
static void test_clock_started(void **state)
{
    struct fixture *fx = *state;
    struct og_calendar *cal = og_registry_calendar(fx->reg);
    Onegrid__V1__Decision *d;
    struct ex x;
    ex_report(&x);
    x.report.category = (char *)"demand.general";
    d = decide_at(fx, &x, NOW);
    assert_non_null(d->clock_started);
    assert_int_equal(d->clock_started->seconds, NOW); /* routed at once: filing */
    char id[32];
    snprintf(id, sizeof(id), "%s", d->case_id);
    decision_free(d);
    struct og_case *c = og_cases_find(fx->cases, id);

    /* A pause is not time used: the start moves on as far as the deadline does. */
    int64_t asked = NOW + 3600, refused = NOW + 2 * 86400, due = c->deadline;
    decision_free(extension(fx, id, "unit-a", S(EXTENSION_REQUESTED), 3, asked));
    d = extension(fx, id, "sup-street", S(EXTENSION_REFUSED), 0, refused);
    int64_t resumed = og_calendar_resume(cal, due, asked, refused, "working_days");
    assert_int_equal(d->clock_started->seconds, NOW + (resumed - due));
    decision_free(d);
    /* An approved extension lengthens the limit: the start stays. */
    int64_t started = c->clock_started;
    d = extension(fx, id, "sup-street", S(EXTENDED), 2, refused + 60);
    assert_int_equal(d->clock_started->seconds, started);
    decision_free(d);

    /* Returned 30 days on and re-routed: a new clock, from then. */
    int64_t later = NOW + 30 * 86400;
    decision_free(status(fx, id, "unit-a", S(ACCEPTED), later - 60));
    d = status(fx, id, "unit-a", S(RETURNED), later);
    assert_int_equal(d->kind, KIND(UPDATE_CASE));
    assert_non_null(d->deadline);
    assert_int_equal(d->clock_started->seconds, later);
    decision_free(d);

    /* Shelved into the demand list: no clock, no start. */
    d = status(fx, id, c->unit, S(ACCEPTED), later + 60);
    decision_free(d);
    d = status(fx, id, c->unit, S(SHELVED), later + 120);
    assert_string_equal(d->state, OG_STATE_SHELVED);
    assert_null(d->deadline);
    assert_null(d->clock_started);
    decision_free(d);
}

static void test_extension_without_request(void **state)
{
    struct fixture *fx = *state;
    struct og_calendar *cal = og_registry_calendar(fx->reg);
    char id[32];
    struct og_case *c = demand_case(fx, id);
    int64_t due = c->deadline;
    /* The holder may not extend its own deadline, however it words it (an approval given
     * elsewhere, it once could say): it would never be overdue. */
    expect_reject("the holder extends its own deadline",
                  extension(fx, id, "unit-a", S(EXTENDED), 2, NOW + 60), R(INVALID_TRANSITION),
                  "supervising unit");
    assert_int_equal(c->deadline, due);
    /* A supervising unit may grant one directly. */
    Onegrid__V1__Decision *d = extension(fx, id, "sup-dist", S(EXTENDED), 1, NOW + 120);
    assert_int_equal(d->kind, KIND(UPDATE_CASE));
    assert_int_equal(d->deadline->seconds, og_calendar_deadline(cal, due, 1, "working_days"));
    decision_free(d);
    /* But other status updates stay the holder's. */
    expect_reject("a supervisor's status update", status(fx, id, "sup-dist", S(ACCEPTED), NOW),
                  R(INVALID_TRANSITION), "held by");
}

static void test_return_never_bounces(void **state)
{
    struct fixture *fx = *state;
    char id[32];
    snprintf(id, sizeof(id), "%s", open_handrail(fx));
    /* unit-a returns it: the street-wide rule gives it to unit-c. */
    Onegrid__V1__Decision *d = status(fx, id, "unit-a", S(RETURNED), NOW + 60);
    assert_string_equal(d->unit, "unit-c");
    assert_string_equal(d->returned_by, "unit-a");
    assert_int_equal(d->rule_id, 10);
    decision_free(d);
    /* unit-c returns it: not back to unit-a; the district's supervising unit. */
    d = status(fx, id, "unit-c", S(RETURNED), NOW + 120);
    assert_string_equal(d->unit, "sup-dist");
    assert_string_equal(d->state, OG_STATE_DISPATCHED);
    assert_int_equal(d->rule_id, 0);
    decision_free(d);
    /* The district returns it too: nobody left; it waits, returned, for a meeting. */
    d = status(fx, id, "sup-dist", S(RETURNED), NOW + 180);
    assert_string_equal(d->state, OG_STATE_RETURNED);
    assert_string_equal(d->unit, "");
    assert_int_equal(d->n_returned_units, 3);
    assert_string_equal(d->returned_units[0], "unit-a");
    assert_string_equal(d->returned_units[1], "unit-c");
    assert_string_equal(d->returned_units[2], "sup-dist");
    decision_free(d);
}

/* A return that leaves nobody to route to starts no clock: the last holder's runs on, and
 * so does its supervision. Clearing it put the level back to 0 under the same deadline, and
 * the next scan's escalation ("esc-<case>-1-<deadline>") was a duplicate of the one made
 * while the unit held it: never stored, the record at level 0 for ever (review). */
static void test_stranded_return_keeps_supervision(void **state)
{
    struct fixture *fx = *state;
    char id[32];
    snprintf(id, sizeof(id), "%s", open_handrail(fx));
    decision_free(status(fx, id, "unit-a", S(RETURNED), NOW + 60));
    decision_free(status(fx, id, "unit-c", S(RETURNED), NOW + 120));
    struct og_case *c = og_cases_find(fx->cases, id);
    assert_non_null(c);
    assert_string_equal(c->unit, "sup-dist");
    int64_t due = c->deadline;
    assert_int_equal(escalate(fx, c, due), 1);
    assert_int_equal(c->escalation_level, 1);
    assert_string_equal(c->supervisor, "sup-comm");

    Onegrid__V1__Decision *d = status(fx, id, "sup-dist", S(RETURNED), due + 60);
    assert_string_equal(d->state, OG_STATE_RETURNED);
    assert_int_equal(d->deadline->seconds, due);
    assert_int_equal(d->escalation_level, 1);
    assert_string_equal(d->supervisor, "sup-comm");
    decision_free(d);
    assert_int_equal(c->escalation_level, 1);
    /* The clock runs on: the next level when it is due, never level 1 again. */
    assert_int_equal(escalate(fx, c, due + 120), 0);
    int64_t at = due + 120;
    while (!escalate(fx, c, at) && at < due + 400 * 86400)
        at += 3600;
    assert_int_equal(c->escalation_level, 2);
    assert_string_equal(c->supervisor, "sup-street");
}

/* 社区自办 where the community has no supervising unit and no rule routes the category:
 * the case is closed as it opens, held by nobody. An unsatisfied evaluation reopens it
 * for rework; with nobody to hold it, it is filed for an operator (reported), as a report
 * no rule routes is. It was "dispatched" to nobody: no unit could send a status update
 * about it, and no meeting could assign it (review). */
static void test_reopened_unheld_case_waits_for_routing(void **state)
{
    struct fixture *fx = *state;
    struct ex x;
    ex_report(&x);
    x.report.category = (char *)"env.unrouted";
    x.report.handled_on_spot = true;
    Onegrid__V1__Decision *d = decide(fx, &x);
    assert_string_equal(d->state, OG_STATE_CLOSED);
    assert_string_equal(d->unit, "");
    char id[32];
    snprintf(id, sizeof(id), "%s", d->case_id);
    decision_free(d);

    ex_evaluation(&x);
    x.evaluation.case_id = id;
    x.evaluation.result = ONEGRID__V1__EVALUATION__RESULT__RESULT_UNSATISFIED;
    d = decide(fx, &x);
    assert_int_equal(d->kind, KIND(UPDATE_CASE));
    assert_string_equal(d->state, OG_STATE_REPORTED);
    assert_string_equal(d->unit, "");
    decision_free(d);
}

static void test_severity_sets_every_clock(void **state)
{
    struct fixture *fx = *state;
    struct ex x;
    ex_alert(&x);
    x.alert.severity = ONEGRID__V1__SENSOR_ALERT__SEVERITY__SEVERITY_EXTREME;
    Onegrid__V1__Decision *d = decide(fx, &x);
    char id[32];
    snprintf(id, sizeof(id), "%s", d->case_id);
    assert_int_equal(d->severity, 1);
    assert_int_equal(d->deadline->seconds, NOW + 3600); /* 1 h, not the category's 2 h */
    decision_free(d);
    /* Returned: the new clock runs at the same severity. */
    d = status(fx, id, "unit-gas", S(RETURNED), NOW + 600);
    assert_string_equal(d->unit, "sup-dist");
    assert_int_equal(d->deadline->seconds, NOW + 600 + 3600);
    assert_int_equal(d->severity, 1);
    decision_free(d);
}

/* Merge boundaries (最多跑一次), table-driven on og_cases_find_merge: one open case filed
 * at a grid of community 650204001001 at T with a position; each row a new report. */
static void test_merge_boundaries(void **state)
{
    const double lat = 45.5960, lon = 84.8800, m_per_deg = 6371008.8 * M_PI / 180;
    const struct og_merge_rule rule = {.window = 72 * 3600, .distance_m = 150};
    struct {
        const char *name;
        const char *category, *area;
        bool has_location;
        double dlat_m;     /* metres north of the case's position */
        int64_t dt;        /* seconds after the case's report */
        const char *state; /* the case's state (NULL: dispatched) */
        bool joins;
    } rows[] = {
        {"same place, same time", "facility.handrail", "650204001001001", true, 0, 0, NULL, true},
        {"149 m away", "facility.handrail", "650204001001001", true, 149, 0, NULL, true},
        {"151 m away", "facility.handrail", "650204001001001", true, 151, 0, NULL, false},
        {"no position: no distance test", "facility.handrail", "650204001001001", false, 0, 0, NULL,
         true},
        {"72 h later, the edge", "facility.handrail", "650204001001001", true, 0, 72 * 3600, NULL,
         true},
        {"72 h and 1 s later", "facility.handrail", "650204001001001", true, 0, 72 * 3600 + 1, NULL,
         false},
        {"72 h earlier", "facility.handrail", "650204001001001", true, 0, -72 * 3600, NULL, true},
        {"72 h and 1 s earlier", "facility.handrail", "650204001001001", true, 0, -72 * 3600 - 1,
         NULL, false},
        {"another category", "facility.streetlight", "650204001001001", true, 0, 0, NULL, false},
        {"the community above (a 12345 call)", "facility.handrail", "650204001001", false, 0, 0,
         NULL, true},
        {"another grid of the community", "facility.handrail", "650204001001002", true, 0, 0, NULL,
         false},
        {"another community", "facility.handrail", "650204001002", false, 0, 0, NULL, false},
        {"known only at street level", "facility.handrail", "650204001", false, 0, 0, NULL, false},
        {"case accepted", "facility.handrail", "650204001001001", true, 0, 0, OG_STATE_ACCEPTED,
         true},
        {"case shelved", "facility.handrail", "650204001001001", true, 0, 0, OG_STATE_SHELVED,
         true},
        {"case resolved", "facility.handrail", "650204001001001", true, 0, 0, OG_STATE_RESOLVED,
         false},
        {"case checked", "facility.handrail", "650204001001001", true, 0, 0, OG_STATE_CHECKED,
         false},
        {"case closed", "facility.handrail", "650204001001001", true, 0, 0, OG_STATE_CLOSED, false},
        {"case voided", "facility.handrail", "650204001001001", true, 0, 0, OG_STATE_VOIDED, false},
    };
    (void)state;
    for (size_t i = 0; i < OG_ARRAY_SIZE(rows); i++) {
        struct og_cases *cs = og_cases_new();
        assert_non_null(cs);
        struct og_case *c = og_cases_open(cs, "650204", "650204001001001", "facility.handrail");
        assert_non_null(c);
        snprintf(c->state, sizeof(c->state), "%s",
                 rows[i].state ? rows[i].state : OG_STATE_DISPATCHED);
        c->occurred = T_NOW;
        c->has_location = true;
        c->latitude = lat;
        c->longitude = lon;
        struct og_case *got =
            og_cases_find_merge(cs, rows[i].category, rows[i].area, rows[i].has_location,
                                lat + rows[i].dlat_m / m_per_deg, lon, T_NOW + rows[i].dt, &rule);
        if ((got != NULL) != rows[i].joins)
            fail_msg("%s: %s, expected %s", rows[i].name, got ? "joins" : "opens a case",
                     rows[i].joins ? "joins" : "opens a case");
        /* Merging off: never. */
        const struct og_merge_rule off = {.window = 0, .distance_m = 150};
        assert_null(og_cases_find_merge(cs, rows[i].category, rows[i].area, rows[i].has_location,
                                        lat, lon, T_NOW, &off));
        og_cases_destroy(&cs);
    }
}

/* Of two open cases that both qualify, the one whose report is nearest in time. */
static void test_merge_nearest_in_time(void **state)
{
    const struct og_merge_rule rule = {.window = 72 * 3600, .distance_m = 150};
    struct og_cases *cs = og_cases_new();
    (void)state;
    assert_non_null(cs);
    struct og_case *a = og_cases_open(cs, "650204", "650204001001001", "facility.handrail");
    struct og_case *b = og_cases_open(cs, "650204", "650204001001001", "facility.handrail");
    assert_non_null(a);
    assert_non_null(b);
    snprintf(a->state, sizeof(a->state), "%s", OG_STATE_DISPATCHED);
    snprintf(b->state, sizeof(b->state), "%s", OG_STATE_DISPATCHED);
    a->occurred = T_NOW - 10 * 3600;
    b->occurred = T_NOW - 2 * 3600;
    assert_ptr_equal(
        og_cases_find_merge(cs, "facility.handrail", "650204001001001", false, 0, 0, T_NOW, &rule),
        b);
    assert_ptr_equal(og_cases_find_merge(cs, "facility.handrail", "650204001001001", false, 0, 0,
                                         T_NOW - 12 * 3600, &rule),
                     a);
    og_cases_destroy(&cs);
}

/* Which of two cases, their reports 10 minutes before and after t, a report at t joins,
 * with memory holding them in the order given (first, second). */
static const char *merge_tie(const char *first, const char *second)
{
    static char joined[32];
    const struct og_merge_rule rule = {.window = 72 * 3600, .distance_m = 150};
    struct og_cases *cs = og_cases_new();
    const char *ids[] = {first, second};
    assert_non_null(cs);
    for (int i = 0; i < 2; i++) {
        struct og_case c = {.contacts = 1};
        snprintf(c.id, sizeof(c.id), "%s", ids[i]);
        snprintf(c.district, sizeof(c.district), "650204");
        snprintf(c.area, sizeof(c.area), "650204001001001");
        c.category = (char *)"facility.handrail";
        snprintf(c.state, sizeof(c.state), "%s", OG_STATE_DISPATCHED);
        c.occurred = strcmp(ids[i], "650204-00000001") == 0 ? T_NOW - 600 : T_NOW + 600;
        assert_non_null(og_cases_put(cs, &c));
    }
    struct og_case *c =
        og_cases_find_merge(cs, "facility.handrail", "650204001001001", false, 0, 0, T_NOW, &rule);
    assert_non_null(c);
    snprintf(joined, sizeof(joined), "%s", c->id);
    og_cases_destroy(&cs);
    return joined;
}

/* Equally near in time: the case opened first, whatever order memory holds them in (the
 * order they were opened in one dispatch, the order the database streams them to one
 * restarted: the report joined one case or the other by that alone; review). */
static void test_merge_tie_is_the_first_case(void **state)
{
    (void)state;
    assert_string_equal(merge_tie("650204-00000001", "650204-00000002"), "650204-00000001");
    assert_string_equal(merge_tie("650204-00000002", "650204-00000001"), "650204-00000001");
}

/* og_escalate on c at now: its result (1 escalated, 0 not); the decision is dropped. */
static int escalate(struct fixture *fx, struct og_case *c, int64_t now)
{
    Onegrid__V1__Decision *e = decision_new();
    int rc = og_escalate(&fx->dc, c, now, e);
    decision_free(e);
    return rc;
}

/* A case a meeting gives to a unit starts supervision over with its new clock: the levels
 * the stranded case reached before are not the new unit's. Before, escalation_level stayed
 * at 3 and the new unit was never escalated, however late. */
static void test_meeting_starts_supervision_over(void **state)
{
    struct fixture *fx = *state;
    struct ex x;
    Onegrid__V1__Decision *d;
    struct og_case *c = og_cases_find(fx->cases, open_unrouted(fx));
    assert_non_null(c);
    assert_true(c->deadline > 0);
    int64_t late = c->deadline + 30 * 86400;
    for (int level = 1; level <= 3; level++)
        assert_int_equal(escalate(fx, c, late), 1);
    assert_int_equal(c->escalation_level, 3);
    assert_string_equal(c->supervisor, "sup-dist");

    ex_decision(&x);
    x.decision.n_case_ids = 1;
    x.decision.unit = (char *)"unit-b";
    d = decide_at(fx, &x, late);
    assert_int_equal(d->kind, KIND(UPDATE_CASE));
    assert_string_equal(d->state, OG_STATE_DISPATCHED);
    assert_int_equal(d->escalation_level, 0);
    assert_string_equal(d->supervisor, "");
    decision_free(d);
    free(fx->dc.more);
    fx->dc.more = NULL;
    assert_int_equal(c->escalation_level, 0);
    assert_null(c->supervisor);
    /* unit-b's own clock: escalated to the community once it runs out. */
    assert_int_equal(escalate(fx, c, c->deadline - 1), 0);
    assert_int_equal(escalate(fx, c, c->deadline), 1);
    assert_int_equal(c->escalation_level, 1);
    assert_string_equal(c->supervisor, "sup-comm");
}

/* A joint meeting gives an unrouted case to unit at now; returns the case. */
static struct og_case *given_to(struct fixture *fx, const char *unit, int64_t now)
{
    struct ex x;
    struct og_case *c = og_cases_find(fx->cases, open_unrouted(fx));
    assert_non_null(c);
    ex_decision(&x);
    x.decision.n_case_ids = 1;
    x.decision.case_ids[0] = c->id;
    x.decision.unit = (char *)unit;
    Onegrid__V1__Decision *d = decide_at(fx, &x, now);
    assert_int_equal(d->kind, KIND(UPDATE_CASE));
    decision_free(d);
    free(fx->dc.more);
    fx->dc.more = NULL;
    assert_string_equal(c->unit, unit);
    return c;
}

/* Nobody supervises their own case: a level whose supervisor holds the case is passed
 * over for the next, due when the passed-over one was; at the district's, with nobody
 * above, the level is reached with no supervisor (the quickstart had communities' own
 * units supervising the cases they handled: 46 of 341 escalations). */
static void test_escalation_passes_over_the_holder(void **state)
{
    struct fixture *fx = *state;
    struct og_calendar *cal = og_registry_calendar(fx->reg);
    fx->dc.merge.window = 0; /* three cases of one report */
    struct og_case *c = given_to(fx, "sup-comm", NOW);
    int64_t due = c->deadline;
    assert_true(due > NOW);
    assert_int_equal(escalate(fx, c, due - 1), 0);
    assert_int_equal(escalate(fx, c, due), 1);
    assert_int_equal(c->escalation_level, 2);
    assert_string_equal(c->supervisor, "sup-street");
    /* Level 3 keeps its pace: two time limits (1 day each) after the deadline. */
    int64_t third = og_calendar_deadline(cal, due, 2, "day");
    assert_int_equal(escalate(fx, c, third - 1), 0);
    assert_int_equal(escalate(fx, c, third), 1);
    assert_int_equal(c->escalation_level, 3);
    assert_string_equal(c->supervisor, "sup-dist");

    c = given_to(fx, "sup-street", NOW);
    assert_int_equal(escalate(fx, c, c->deadline), 1);
    assert_string_equal(c->supervisor, "sup-comm");
    int64_t second = og_calendar_deadline(cal, c->deadline, 1, "day");
    assert_int_equal(escalate(fx, c, second), 1);
    assert_int_equal(c->escalation_level, 3);
    assert_string_equal(c->supervisor, "sup-dist");

    c = given_to(fx, "sup-dist", NOW);
    for (int level = 1; level <= 3; level++)
        assert_int_equal(escalate(fx, c, c->deadline + 30 * 86400), 1);
    assert_int_equal(c->escalation_level, 3);
    assert_null(c->supervisor);
}

/* Supervision keeps the pace of the case's clock: a demand reopened 90 days after it was
 * filed, on a new clock of 5 working days, goes to the street one time limit after the
 * community, not 90 days later (the time since filing, as it once did). */
static void test_escalation_paced_by_time_limit(void **state)
{
    struct fixture *fx = *state;
    struct og_calendar *cal = og_registry_calendar(fx->reg);
    static const int to_closed[] = {S(ACCEPTED), S(IN_PROGRESS), S(RESOLVED), S(CLOSED)};
    char id[32];
    snprintf(id, sizeof(id), "%s", open_demand(fx, NOW));
    walk(fx, id, "unit-a", to_closed, OG_ARRAY_SIZE(to_closed));
    struct ex x;
    ex_evaluation(&x);
    x.evaluation.case_id = id;
    x.evaluation.result = ONEGRID__V1__EVALUATION__RESULT__RESULT_UNSATISFIED;
    int64_t reopened = NOW + 90 * 86400;
    Onegrid__V1__Decision *d = decide_at(fx, &x, reopened);
    assert_string_equal(d->state, OG_STATE_DISPATCHED);
    decision_free(d);
    struct og_case *c = og_cases_find(fx->cases, id);
    int64_t due = og_calendar_deadline(cal, reopened, 5, "working_days");
    assert_int_equal(c->deadline, due);
    int64_t street = og_calendar_deadline(cal, due, 5, "working_days");
    int64_t district = og_calendar_deadline(cal, due, 10, "working_days");
    assert_int_equal(escalate(fx, c, due - 1), 0);
    assert_int_equal(escalate(fx, c, due), 1);
    assert_int_equal(escalate(fx, c, street - 1), 0);
    assert_int_equal(escalate(fx, c, street), 1);
    assert_string_equal(c->supervisor, "sup-street");
    assert_int_equal(escalate(fx, c, district - 1), 0);
    assert_int_equal(escalate(fx, c, district), 1);
    assert_int_equal(c->escalation_level, 3);
    assert_string_equal(c->supervisor, "sup-dist");
    assert_int_equal(escalate(fx, c, district + 365 * 86400), 0);
}

/* A gas alert at GAS-0042 (no position) at time t, from event id. Returns the decision. */
static Onegrid__V1__Decision *gas_alert(struct fixture *fx, const char *id, int64_t t)
{
    struct ex x;
    ex_alert(&x);
    x.e.id = (char *)id;
    x.time.seconds = t;
    return decide_at(fx, &x, NOW);
}

/* A case whose check fails goes back to work and takes reports of its problem again, as
 * a dispatch restarted then would have it: a merge lookup made while it was resolved had
 * dropped it from the merge index, and the same problem reported again opened a second
 * case (or joined another) in the running dispatch only. */
static void test_failed_check_takes_reports_again(void **state)
{
    struct fixture *fx = *state;
    static const int to_resolved[] = {S(ACCEPTED), S(IN_PROGRESS), S(RESOLVED)};
    char x_id[32], y_id[32];
    Onegrid__V1__Decision *d = gas_alert(fx, "gas-1", NOW - 600);
    assert_int_equal(d->kind, KIND(OPEN_CASE));
    snprintf(x_id, sizeof(x_id), "%s", d->case_id);
    decision_free(d);
    walk(fx, x_id, "unit-gas", to_resolved, OG_ARRAY_SIZE(to_resolved));
    /* Two days later, another leak in the community: X is resolved, so a case of its own. */
    d = gas_alert(fx, "gas-2", NOW - 600 + 48 * 3600);
    assert_int_equal(d->kind, KIND(OPEN_CASE));
    snprintf(y_id, sizeof(y_id), "%s", d->case_id);
    decision_free(d);
    assert_string_not_equal(x_id, y_id);
    /* X's check fails: it is worked on again. */
    d = status(fx, x_id, "sup-dist", S(CHECK_FAILED), NOW + 600);
    assert_int_equal(d->kind, KIND(UPDATE_CASE));
    assert_string_equal(d->state, OG_STATE_IN_PROGRESS);
    decision_free(d);
    /* X's leak reported again, at X's time: it joins X (nearest in time), not Y. */
    d = gas_alert(fx, "gas-3", NOW - 600);
    assert_int_equal(d->kind, KIND(MERGE));
    assert_string_equal(d->case_id, x_id);
    decision_free(d);
}

/* Final cases leave memory; the database gives them back -------------------------------- */

/* PostgreSQL behind dc->fetch: copies of the cases that left memory, as archive committed
 * them, and the reports merged into them. */
struct fake_db {
    struct og_cases *memory; /* the decider's */
    struct og_cases *rows;
    struct {
        char source[16], event_id[16];
        struct og_report r;
    } reports[4];
    size_t n_reports;
    int fail; /* returned instead of reading: a database fault */
    unsigned calls;
};

static int fake_fetch(void *arg, const char *id)
{
    struct fake_db *db = arg;
    struct og_case *c;
    db->calls++;
    if (db->fail)
        return db->fail;
    if (!(c = og_cases_find(db->rows, id)))
        return 0;
    if (!og_cases_put(db->memory, c))
        return -ENOMEM;
    for (size_t i = 0; i < db->n_reports; i++)
        if (strcmp(db->reports[i].r.case_id, id) == 0 &&
            og_cases_add_report(db->memory, db->reports[i].source, db->reports[i].event_id,
                                &db->reports[i].r) < 0)
            return -ENOMEM;
    return 0;
}

static void fake_db_init(struct fixture *fx, struct fake_db *db)
{
    memset(db, 0, sizeof(*db));
    db->memory = fx->cases;
    db->rows = og_cases_new();
    assert_non_null(db->rows);
    fx->dc.fetch = fake_fetch;
    fx->dc.fetch_arg = db;
}

/* Remembers merged report source/event_id as the database has it. */
static void fake_db_keep_report(struct fake_db *db, const char *source, const char *event_id)
{
    struct og_report *r = og_cases_find_report(db->memory, source, event_id);
    assert_non_null(r);
    assert_true(db->n_reports < OG_ARRAY_SIZE(db->reports));
    snprintf(db->reports[db->n_reports].source, sizeof(db->reports[0].source), "%s", source);
    snprintf(db->reports[db->n_reports].event_id, sizeof(db->reports[0].event_id), "%s", event_id);
    db->reports[db->n_reports].r = *r;
    db->reports[db->n_reports++].r.key = NULL;
}

/* Archive answered the decision that made case id final: the database has it, memory lets
 * it go (dispatch: og_cases_hold when sending, og_cases_release on the answer). */
static void fake_db_commit(struct fake_db *db, const char *id)
{
    struct og_case *c = og_cases_find(db->memory, id);
    assert_non_null(c);
    og_cases_evict(db->rows, id); /* an older copy */
    assert_non_null(og_cases_put(db->rows, c));
    og_cases_hold(db->memory, id);
    assert_false(og_cases_evict(db->memory, id)); /* in flight: it stays */
    assert_non_null(og_cases_find(db->memory, id));
    og_cases_release(db->memory, id);
    assert_null(og_cases_find(db->memory, id));
}

/* og_decide's return value, d initialised by the caller. */
static int decide_rc(struct fixture *fx, struct ex *x, int64_t now, Onegrid__V1__Decision *d)
{
    Onegrid__V1__Submission s = ONEGRID__V1__SUBMISSION__INIT;
    onegrid__v1__decision__init(d);
    s.publisher = (char *)"local";
    s.source = x->e.source;
    s.event = &x->e;
    return og_decide(&fx->dc, &s, now, d);
}

/* Opens the handrail case at BJT-QY-03, merges report evt-0002 into it and closes it. */
static const char *closed_with_merged_report(struct fixture *fx)
{
    static char id[32];
    static const int steps[] = {S(ACCEPTED), S(RESOLVED), S(CLOSED)};
    struct ex x;
    snprintf(id, sizeof(id), "%s", open_handrail(fx));
    ex_report(&x);
    x.e.id = (char *)"evt-0002";
    Onegrid__V1__Decision *d = decide(fx, &x);
    assert_int_equal(d->kind, KIND(MERGE));
    decision_free(d);
    walk(fx, id, "unit-a", steps, OG_ARRAY_SIZE(steps));
    return id;
}

static void test_final_case_leaves_memory(void **state)
{
    struct fixture *fx = *state;
    struct fake_db db;
    char first[32], second[32];
    struct ex x;

    fake_db_init(fx, &db);
    snprintf(first, sizeof(first), "%s", closed_with_merged_report(fx));
    ex_report(&x);
    x.e.id = (char *)"evt-0003";
    x.e.subject = (char *)"BJT-QY-04";
    Onegrid__V1__Decision *d = decide(fx, &x);
    snprintf(second, sizeof(second), "%s", d->case_id);
    decision_free(d);
    size_t n = og_cases_count(fx->cases);

    /* Open cases stay, whatever is in flight. */
    og_cases_hold(fx->cases, second);
    og_cases_release(fx->cases, second);
    assert_false(og_cases_evict(fx->cases, second));
    assert_non_null(og_cases_find(fx->cases, second));
    /* The closed one goes when archive has answered, its merged report with it. */
    fake_db_commit(&db, first);
    assert_int_equal(og_cases_count(fx->cases), n - 1);
    assert_null(og_cases_find_report(fx->cases, "zongzhi", "evt-0002"));
    /* The same problem again opens a case numbered after every other: the merge index no
     * longer points at the closed case (ASan would see it), numbering goes on. */
    ex_report(&x);
    x.e.id = (char *)"evt-0004";
    d = decide(fx, &x);
    assert_int_equal(d->kind, KIND(OPEN_CASE));
    assert_string_equal(d->case_id, "650204-00000003");
    decision_free(d);
    og_cases_destroy(&db.rows);
}

/* The scan for overdue cases walks them a step at a time (dispatch decides intake's events
 * between the steps): each case is visited once, whatever came and went meanwhile, and a
 * step that stopped to wait begins again with the case it stopped at. */
struct walk_log {
    char seen[16][32];
    size_t n_seen, calls;
    const char *refuse_once; /* the case whose first visit waits (returns 1) */
};

static int walk_visit(struct og_case *c, void *arg)
{
    struct walk_log *w = arg;
    w->calls++;
    if (w->refuse_once && strcmp(c->id, w->refuse_once) == 0) {
        w->refuse_once = NULL;
        return 1;
    }
    assert_true(w->n_seen < OG_ARRAY_SIZE(w->seen));
    snprintf(w->seen[w->n_seen++], sizeof(w->seen[0]), "%s", c->id);
    return 0;
}

static void test_cases_walked_in_steps(void **state)
{
    struct og_cases *cs = ((struct fixture *)*state)->cases;
    char id[12][32];
    struct walk_log w = {0};

    for (int i = 0; i < 10; i++) {
        struct og_case *c = og_cases_open(cs, "650204", "650204001001001", "facility.handrail");
        assert_non_null(c);
        snprintf(id[i], sizeof(id[i]), "%s", c->id);
    }
    og_cases_walk_begin(cs);
    assert_true(og_cases_walking(cs));
    assert_int_equal(og_cases_walk(cs, 3, walk_visit, &w), 0);
    assert_int_equal(w.n_seen, 3);
    assert_true(og_cases_walking(cs));
    /* Between steps: the case the walk is at and one further on leave memory (final), and
     * a new case comes. */
    for (int i = 3; i <= 6; i += 3) {
        struct og_case *c = og_cases_find(cs, id[i]);
        snprintf(c->state, sizeof(c->state), "%s", OG_STATE_CLOSED);
        assert_true(og_cases_evict(cs, id[i]));
    }
    struct og_case *fresh = og_cases_open(cs, "650204", "650204001001002", "facility.handrail");
    assert_non_null(fresh);
    snprintf(id[10], sizeof(id[10]), "%s", fresh->id);
    /* A step that waits at a case stops there, and the next begins with it. */
    w.refuse_once = id[4];
    assert_int_equal(og_cases_walk(cs, 3, walk_visit, &w), 1);
    assert_int_equal(w.n_seen, 3);
    assert_true(og_cases_walking(cs));
    size_t steps = 0;
    while (og_cases_walking(cs) && steps++ < 10)
        assert_int_equal(og_cases_walk(cs, 3, walk_visit, &w), 0);
    assert_false(og_cases_walking(cs));
    assert_int_equal(steps, 2); /* the 5th, 6th and 8th cases; the 9th, 10th and the new one */
    const int expect[] = {0, 1, 2, 4, 5, 7, 8, 9, 10};
    assert_int_equal(w.n_seen, OG_ARRAY_SIZE(expect));
    for (size_t i = 0; i < OG_ARRAY_SIZE(expect); i++)
        assert_string_equal(w.seen[i], id[expect[i]]);
    assert_int_equal(w.calls, OG_ARRAY_SIZE(expect) + 1);
    /* A walk over again visits every case in memory, and ends with the step that reaches
     * its end. */
    og_cases_walk_begin(cs);
    w.n_seen = 0;
    assert_int_equal(og_cases_walk(cs, 100, walk_visit, &w), 0);
    assert_int_equal(w.n_seen, og_cases_count(cs));
    assert_false(og_cases_walking(cs));
    /* The walk at the last case when it leaves memory: the walk is past the end, and a case
     * added then waits for the next walk. */
    size_t n = og_cases_count(cs);
    og_cases_walk_begin(cs);
    w.n_seen = 0;
    assert_int_equal(og_cases_walk(cs, n - 1, walk_visit, &w), 0);
    assert_true(og_cases_walking(cs));
    snprintf(fresh->state, sizeof(fresh->state), "%s", OG_STATE_CLOSED);
    assert_true(og_cases_evict(cs, id[10])); /* the last added */
    assert_non_null(og_cases_open(cs, "650204", "650204001001002", "facility.handrail"));
    assert_int_equal(og_cases_walk(cs, 100, walk_visit, &w), 0);
    assert_int_equal(w.n_seen, n - 1);
    assert_false(og_cases_walking(cs));
}

/* A refusal of a closed case's event, with the case in memory, to compare with. */
struct refusal {
    Onegrid__V1__Reason reason;
    char text[256];
};

static void refused(Onegrid__V1__Decision *d, struct refusal *r)
{
    assert_int_equal(d->kind, KIND(REJECT));
    r->reason = d->rejection->reason;
    snprintf(r->text, sizeof(r->text), "%s", d->rejection->text);
    decision_free(d);
}

static void same_refusal(const char *name, Onegrid__V1__Decision *d, const struct refusal *r)
{
    expect_reject(name, d, r->reason, r->text);
}

static void test_closed_case_fetched_on_demand(void **state)
{
    struct fixture *fx = *state;
    struct fake_db db;
    struct refusal st, meet, spl;
    char first[32], other[32];
    struct ex x, ev, md, sp;

    fake_db_init(fx, &db);
    snprintf(first, sizeof(first), "%s", closed_with_merged_report(fx));
    ex_status(&x);
    x.status.case_id = first;
    x.status.status = S(ACCEPTED);
    ex_decision(&md);
    md.case_ids[0] = first;
    md.decision.n_case_ids = 1;
    md.decision.action = ONEGRID__V1__MEETING_DECISION__ACTION__ACTION_CLOSE;
    ex_split(&sp);
    sp.split.case_id = first;
    /* What a dispatch that held every case answered. */
    refused(decide(fx, &x), &st);
    refused(decide(fx, &md), &meet);
    refused(decide(fx, &sp), &spl);
    assert_int_equal(st.reason, R(INVALID_TRANSITION));
    assert_int_equal(meet.reason, R(INVALID_TRANSITION));
    assert_int_equal(spl.reason, R(INVALID_TRANSITION));
    assert_int_equal(db.calls, 0);

    fake_db_keep_report(&db, "zongzhi", "evt-0002");
    fake_db_commit(&db, first);
    /* Now each is read from the database, answered the same, and let go again. */
    same_refusal("status update of a closed case", decide(fx, &x), &st);
    assert_true(og_cases_evict(fx->cases, first));
    same_refusal("meeting on a closed case", decide(fx, &md), &meet);
    assert_null(fx->dc.more);
    assert_true(og_cases_evict(fx->cases, first));
    same_refusal("split of a closed case's report", decide(fx, &sp), &spl);
    assert_true(og_cases_evict(fx->cases, first));
    assert_int_equal(db.calls, 3);
    ex_evaluation(&ev);
    ev.evaluation.case_id = (char *)"650204-00000099";
    expect_reject("no such case in the database either", decide(fx, &ev), R(UNKNOWN_CASE),
                  "650204-00000099");
    assert_int_equal(db.calls, 4);

    /* 不满意: reopened from the database; open, it stays, takes the same problem's reports
     * again, and the report merged before it closed can be split off. */
    ev.evaluation.case_id = first;
    ev.evaluation.result = ONEGRID__V1__EVALUATION__RESULT__RESULT_UNSATISFIED;
    Onegrid__V1__Decision *d = decide_at(fx, &ev, NOW + 7200);
    assert_int_equal(d->kind, KIND(UPDATE_CASE));
    assert_string_equal(d->previous_state, OG_STATE_CLOSED);
    assert_string_equal(d->state, OG_STATE_DISPATCHED);
    assert_string_equal(d->unit, "unit-a");
    assert_int_equal(d->contacts, 2);
    assert_null(d->closed);
    assert_true(d->deadline->seconds > NOW + 7200);
    decision_free(d);
    assert_false(og_cases_evict(fx->cases, first));
    x.status.case_id = first; /* and its unit takes it up again */
    d = decide_at(fx, &x, NOW + 7300);
    assert_int_equal(d->kind, KIND(UPDATE_CASE));
    assert_string_equal(d->state, OG_STATE_ACCEPTED);
    decision_free(d);
    struct ex again;
    ex_report(&again);
    again.e.id = (char *)"evt-0005";
    d = decide_at(fx, &again, NOW + 7400);
    assert_int_equal(d->kind, KIND(MERGE));
    assert_string_equal(d->case_id, first);
    decision_free(d);
    d = split_off(fx, first, "evt-0002", NOW + 7500);
    assert_int_equal(d->kind, KIND(OPEN_CASE));
    assert_string_equal(d->split_from, first);
    decision_free(d);
    decision_free(take_more(fx));
    assert_int_equal(db.calls, 5);

    /* 满意 on another closed case from the database: evaluated, its close time kept. */
    static const int to_closed[] = {S(ACCEPTED), S(RESOLVED), S(CLOSED)};
    ex_report(&again);
    again.e.id = (char *)"evt-0006";
    again.e.subject = (char *)"BJT-QY-04";
    d = decide(fx, &again);
    snprintf(other, sizeof(other), "%s", d->case_id);
    decision_free(d);
    walk(fx, other, "unit-b", to_closed, OG_ARRAY_SIZE(to_closed));
    fake_db_commit(&db, other);
    ev.evaluation.case_id = other;
    ev.evaluation.result = ONEGRID__V1__EVALUATION__RESULT__RESULT_SATISFIED;
    d = decide_at(fx, &ev, NOW + 9000);
    assert_int_equal(d->kind, KIND(UPDATE_CASE));
    assert_string_equal(d->state, OG_STATE_EVALUATED);
    assert_int_equal(d->closed->seconds, NOW + 120); /* walk's third step */
    decision_free(d);
    og_cases_destroy(&db.rows);
}

static void test_fetch_fault_is_no_refusal(void **state)
{
    struct fixture *fx = *state;
    struct fake_db db;
    Onegrid__V1__Decision d;
    char first[32];
    struct ex xs[4];

    fake_db_init(fx, &db);
    snprintf(first, sizeof(first), "%s", closed_with_merged_report(fx));
    fake_db_keep_report(&db, "zongzhi", "evt-0002");
    fake_db_commit(&db, first);
    size_t n = og_cases_count(fx->cases);
    ex_status(&xs[0]);
    xs[0].status.case_id = first;
    ex_evaluation(&xs[1]);
    xs[1].evaluation.case_id = first;
    ex_decision(&xs[2]);
    xs[2].case_ids[0] = first;
    xs[2].decision.n_case_ids = 1;
    ex_split(&xs[3]);
    xs[3].split.case_id = first;

    /* The database fails: og_decide says so and decides nothing. */
    db.fail = -EIO;
    for (size_t i = 0; i < OG_ARRAY_SIZE(xs); i++) {
        assert_int_equal(decide_rc(fx, &xs[i], NOW, &d), -EIO);
        assert_int_equal(d.kind, KIND(UNSPECIFIED));
        assert_null(d.rejection);
        assert_string_equal(d.case_id ? d.case_id : "", "");
        assert_int_equal(fx->dc.n_more, 0);
        assert_int_equal(og_cases_count(fx->cases), n);
    }
    assert_int_equal(db.calls, 4);
    /* It works again: the same evaluation is decided as if nothing had happened. */
    db.fail = 0;
    Onegrid__V1__Decision *e = decide_at(fx, &xs[1], NOW + 60);
    assert_int_equal(e->kind, KIND(UPDATE_CASE));
    assert_string_equal(e->state, OG_STATE_EVALUATED);
    decision_free(e);
    og_cases_destroy(&db.rows);
}

#define T(f)  cmocka_unit_test_setup_teardown(f, setup, teardown)
#define TC(f) cmocka_unit_test_setup_teardown(f, setup_casework, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_report_opens_cases),
        T(test_sensor_alert_opens_case),
        T(test_report_without_rule_is_reported),
        T(test_report_refusals),
        T(test_refusal_text_stays_utf8),
        cmocka_unit_test_setup_teardown(test_authorisation, setup_casework, teardown),
        cmocka_unit_test_setup_teardown(test_meeting_starts_supervision_over, setup_casework,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_escalation_passes_over_the_holder, setup_casework,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_failed_check_takes_reports_again, setup_casework,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_escalation_paced_by_time_limit, setup_casework,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_authorisation_extension, setup_casework, teardown),
        T(test_intake_rejection_stands),
        T(test_status_update_moves_state),
        T(test_status_update_refusals),
        T(test_separation_of_duties),
        T(test_full_lifecycle_and_evaluation),
        T(test_field_check_required),
        cmocka_unit_test(test_case_numbering),
        cmocka_unit_test(test_merge_boundaries),
        cmocka_unit_test(test_merge_nearest_in_time),
        cmocka_unit_test(test_merge_tie_is_the_first_case),
        cmocka_unit_test_setup_teardown(test_reopened_unheld_case_waits_for_routing, setup,
                                        teardown),
        TC(test_split_merged_report),
        TC(test_split_refused_when_finished),
        TC(test_extension_request_pauses_clock),
        TC(test_extension_request_lapses),
        TC(test_extension_lapse_judged_by_receipt),
        TC(test_refusal_received_before_a_recorded_lapse),
        TC(test_approval_received_before_a_recorded_lapse),
        TC(test_refusal_before_a_recorded_lapse_after_a_return),
        TC(test_late_refusal_leaves_a_new_clock_due_at_the_same_close),
        TC(test_late_refusal_of_the_first_request_while_a_second_waits),
        TC(test_late_refusal_of_a_lapse_without_its_pause),
        TC(test_holder_step_received_before_a_recorded_lapse),
        TC(test_late_refusal_after_a_lapse_a_step_recorded),
        TC(test_late_resolution_ends_a_request_made_since),
        TC(test_late_refusal_ends_a_request_made_too_late),
        TC(test_lapse_deadline_before_the_step),
        TC(test_extension_decided_as_received),
        TC(test_clock_started),
        TC(test_extension_without_request),
        TC(test_return_never_bounces),
        TC(test_stranded_return_keeps_supervision),
        TC(test_severity_sets_every_clock),
        TC(test_final_case_leaves_memory),
        TC(test_cases_walked_in_steps),
        TC(test_closed_case_fetched_on_demand),
        TC(test_fetch_fault_is_no_refusal),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
