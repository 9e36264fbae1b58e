/* Unit tests for daemons/dispatch/registry.c, built with the og_registry_add_* building
 * blocks (no database): the crosswalk, districts, and the routing rule chosen for a case. */
#include <errno.h>
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

#define NOW 1795137300LL

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
    struct og_registry *r = og_registry_new();
    static const struct og_category_info cats[] = {
        {"facility.handrail", "street", 3, "workday", false, NULL},
        {"hazard.gas", "district", 2, "hour", true, NULL},
        {"env.litter", "community", 1, "day", false, NULL},
    };
    if (!r)
        return -1;
    *state = r;
    /* District 650204, street 650204001, two communities, their grids; another district. */
    if (og_registry_add_area(r, "650204", "district", "", "650204") ||
        og_registry_add_area(r, "650204001", "street", "650204", "650204") ||
        og_registry_add_area(r, "650204001001", "community", "650204001", "650204") ||
        og_registry_add_area(r, "650204001002", "community", "650204001", "650204") ||
        og_registry_add_area(r, "650204001001001", "grid", "650204001001", "650204") ||
        og_registry_add_area(r, "650205001001", "community", "650205001", "650205"))
        return -1;
    if (og_registry_add_source(r, "zongzhi") || og_registry_add_source(r, "12345"))
        return -1;
    if (og_registry_add_crosswalk(r, "zongzhi", "BJT-QY-03", "650204001001") ||
        og_registry_add_crosswalk(r, "zongzhi", "BJT-QY-04", "650204001002") ||
        og_registry_add_crosswalk(r, "12345", "QY-03", "650204001001001") ||
        og_registry_add_crosswalk(r, "zongzhi", "OTHER-01", "650205001001"))
        return -1;
    for (size_t i = 0; i < OG_ARRAY_SIZE(cats); i++)
        if (og_registry_add_category(r, &cats[i]))
            return -1;
    if (og_registry_add_unit(r, "unit-street", "650204001") ||
        og_registry_add_unit(r, "unit-community", "650204001001") ||
        og_registry_add_unit(r, "unit-gas", "650204"))
        return -1;

    struct og_rule rules[] = {
        /* District-wide catch-all. */
        rule(1, 1, NULL, "650204", "unit-district", 0),
        /* Street-level catch-all and a category rule at the same prefix. */
        rule(2, 1, NULL, "650204001", "unit-street-any", 0),
        rule(3, 1, "facility.handrail", "650204001", "unit-street", 0),
        /* Community rule for handrails: longer prefix. */
        rule(4, 1, "facility.handrail", "650204001001", "unit-community", 0),
        /* Gas: two rules at the same prefix, priority decides. */
        rule(5, 1, "hazard.gas", "650204", "unit-gas-low", 1),
        rule(6, 1, "hazard.gas", "650204", "unit-gas", 5),
    };
    for (size_t i = 0; i < OG_ARRAY_SIZE(rules); i++)
        if (og_registry_add_rule(r, &rules[i]))
            return -1;
    /* Litter in community 650204001002: rule 7 version 1 expired an hour ago, its version
     * 2 took over then. */
    struct og_rule v1 = rule(7, 1, "env.litter", "650204001002", "unit-litter-old", 0);
    struct og_rule v2 = rule(7, 2, "env.litter", "650204001002", "unit-litter-new", 0);
    v1.valid_to = NOW - 3600;
    v2.valid_from = NOW - 3600;
    if (og_registry_add_rule(r, &v1) || og_registry_add_rule(r, &v2))
        return -1;
    /* A rule not yet in force. */
    struct og_rule future = rule(8, 1, "env.litter", "650204001001", "unit-litter-future", 9);
    future.valid_from = NOW + 86400;
    return og_registry_add_rule(r, &future) ? -1 : 0;
}

static int teardown(void **state)
{
    struct og_registry *r = *state;
    og_registry_destroy(&r);
    assert_null(r);
    og_registry_destroy(&r); /* NULL is fine */
    return 0;
}

static void test_counts_and_names(void **state)
{
    struct og_registry *r = *state;
    assert_int_equal(og_registry_count(r, "areas"), 6);
    assert_int_equal(og_registry_count(r, "sources"), 2);
    assert_int_equal(og_registry_count(r, "crosswalk"), 4);
    assert_int_equal(og_registry_count(r, "categories"), 3);
    assert_int_equal(og_registry_count(r, "units"), 3);
    assert_int_equal(og_registry_count(r, "rules"), 9);
    assert_int_equal(og_registry_count(r, "nonsense"), 0);
    assert_true(og_registry_has_source(r, "zongzhi"));
    assert_true(og_registry_has_source(r, "12345"));
    assert_false(og_registry_has_source(r, "weibo"));
    assert_false(og_registry_has_source(r, "Zongzhi"));
    assert_true(og_registry_has_unit(r, "unit-gas"));
    assert_false(og_registry_has_unit(r, "unit-nobody"));

    const struct og_category_info *c = og_registry_category(r, "hazard.gas");
    assert_non_null(c);
    assert_string_equal(c->code, "hazard.gas");
    assert_string_equal(c->unit_level, "district");
    assert_int_equal(c->time_limit, 2);
    assert_string_equal(c->time_unit, "hour");
    assert_true(c->check_required);
    assert_null(og_registry_category(r, "hazard"));
}

static void test_map(void **state)
{
    struct og_registry *r = *state;
    assert_string_equal(og_registry_map(r, "zongzhi", "BJT-QY-03"), "650204001001");
    assert_string_equal(og_registry_map(r, "zongzhi", "BJT-QY-04"), "650204001002");
    assert_string_equal(og_registry_map(r, "12345", "QY-03"), "650204001001001");
    /* The same grid id under another source is another grid (or none). */
    assert_null(og_registry_map(r, "12345", "BJT-QY-03"));
    assert_null(og_registry_map(r, "zongzhi", "QY-03"));
    assert_null(og_registry_map(r, "zongzhi", "BJT-QY-05"));
    assert_null(og_registry_map(r, "zongzhi", "bjt-qy-03"));
    assert_null(og_registry_map(r, "weibo", "BJT-QY-03"));
    /* The separator cannot be forged by moving characters between source and grid id. */
    assert_null(og_registry_map(r, "zongzh",
                                "i\x1f"
                                "BJT-QY-03"));
    /* A key too long for the lookup buffer is a miss, not a crash. */
    char longid[400];
    memset(longid, 'G', sizeof(longid) - 1);
    longid[sizeof(longid) - 1] = '\0';
    assert_null(og_registry_map(r, "zongzhi", longid));
}

static void test_district(void **state)
{
    struct og_registry *r = *state;
    assert_string_equal(og_registry_district(r, "650204001001"), "650204");
    assert_string_equal(og_registry_district(r, "650204001001001"), "650204");
    assert_string_equal(og_registry_district(r, "650204"), "650204");
    assert_string_equal(og_registry_district(r, "650205001001"), "650205");
    assert_null(og_registry_district(r, "650204009"));
    assert_null(og_registry_district(r, ""));
}

static void test_add_rejects_bad_codes(void **state)
{
    struct og_registry *r = *state;
    assert_int_equal(og_registry_add_area(r, "6502040010010011", "grid", "", "650204"), -EINVAL);
    assert_int_equal(og_registry_add_area(r, "650204009", "street", "", "65020400"), -EINVAL);
    assert_int_equal(og_registry_add_crosswalk(r, "zongzhi", "X", "6502040010010011"), -EINVAL);
    assert_int_equal(og_registry_count(r, "areas"), 6);
    assert_int_equal(og_registry_count(r, "crosswalk"), 4);
}

struct route_case {
    const char *name;
    const char *category;
    const char *area;
    int64_t t;
    int64_t rule_id; /* 0: no rule */
    int version;
    const char *unit;
};

static const struct route_case route_cases[] = {
    {"longest prefix wins (community over street over district)", "facility.handrail",
     "650204001001", NOW, 4, 1, "unit-community"},
    {"longest prefix wins for a grid below the community", "facility.handrail", "650204001001001",
     NOW, 4, 1, "unit-community"},
    {"category rule beats catch-all at equal prefix", "facility.handrail", "650204001002", NOW, 3,
     1, "unit-street"},
    {"catch-all at the street when no category rule", "env.noise", "650204001002", NOW, 2, 1,
     "unit-street-any"},
    {"longer catch-all beats a shorter category rule", "hazard.gas", "650204001001", NOW, 2, 1,
     "unit-street-any"},
    {"district catch-all for an area outside the street", "env.noise", "650204002001", NOW, 1, 1,
     "unit-district"},
    {"priority breaks ties", "hazard.gas", "650204002001", NOW, 6, 1, "unit-gas"},
    {"expired version 1 is not used, version 2 is", "env.litter", "650204001002", NOW, 7, 2,
     "unit-litter-new"},
    {"valid_to is exclusive", "env.litter", "650204001002", NOW - 3600, 7, 2, "unit-litter-new"},
    {"version 1 before it expired", "env.litter", "650204001002", NOW - 3601, 7, 1,
     "unit-litter-old"},
    {"a rule not yet in force is not used", "env.litter", "650204001001", NOW, 2, 1,
     "unit-street-any"},
    {"... and is used once in force", "env.litter", "650204001001", NOW + 86400, 8, 1,
     "unit-litter-future"},
    {"no rule for another district", "facility.handrail", "650205001001", NOW, 0, 0, NULL},
    {"a prefix must match from the start", "facility.handrail", "165020400100", NOW, 0, 0, NULL},
};

static void test_route(void **state)
{
    struct og_registry *r = *state;
    for (size_t i = 0; i < OG_ARRAY_SIZE(route_cases); i++) {
        const struct route_case *c = &route_cases[i];
        const struct og_rule *got = og_registry_route(r, c->category, c->area, c->t);
        if (!c->rule_id) {
            if (got)
                fail_msg("%s: got rule %lld v%d (%s), expected none", c->name, (long long)got->id,
                         got->version, got->unit);
            continue;
        }
        if (!got)
            fail_msg("%s: no rule, expected %lld v%d", c->name, (long long)c->rule_id, c->version);
        if (got->id != c->rule_id || got->version != c->version || strcmp(got->unit, c->unit))
            fail_msg("%s: got rule %lld v%d (%s), expected %lld v%d (%s)", c->name,
                     (long long)got->id, got->version, got->unit, (long long)c->rule_id, c->version,
                     c->unit);
    }
}

static void test_route_ties_and_empty(void **state)
{
    /* Equal on everything: the older (lower id) rule, whatever the insertion order. */
    struct og_registry *r = og_registry_new();
    assert_non_null(r);
    assert_null(og_registry_route(r, "facility.handrail", "650204001001", NOW));
    struct og_rule b = rule(20, 1, "x", "6502", "unit-b", 0);
    struct og_rule a = rule(10, 1, "x", "6502", "unit-a", 0);
    assert_int_equal(og_registry_add_rule(r, &b), 0);
    assert_int_equal(og_registry_add_rule(r, &a), 0);
    const struct og_rule *got = og_registry_route(r, "x", "650204", NOW);
    assert_non_null(got);
    assert_int_equal(got->id, 10);
    /* The registry keeps its own copies of a rule's strings. */
    char unit[] = "unit-c", cat[] = "y";
    struct og_rule c = rule(30, 1, cat, "65", unit, 0);
    assert_int_equal(og_registry_add_rule(r, &c), 0);
    unit[0] = cat[0] = 'Z';
    got = og_registry_route(r, "y", "650204", NOW);
    assert_non_null(got);
    assert_string_equal(got->unit, "unit-c");
    assert_string_equal(got->category, "y");
    /* Many rules: the array grows and keeps earlier ones. */
    for (int i = 0; i < 200; i++) {
        struct og_rule m = rule(100 + i, 1, "z", "9", "unit-m", i);
        assert_int_equal(og_registry_add_rule(r, &m), 0);
    }
    got = og_registry_route(r, "z", "99", NOW);
    assert_non_null(got);
    assert_int_equal(got->id, 299);
    assert_int_equal(og_registry_route(r, "x", "650204", NOW)->id, 10);
    og_registry_destroy(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_counts_and_names, setup, teardown),
        cmocka_unit_test_setup_teardown(test_map, setup, teardown),
        cmocka_unit_test_setup_teardown(test_district, setup, teardown),
        cmocka_unit_test_setup_teardown(test_add_rejects_bad_codes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_route, setup, teardown),
        cmocka_unit_test(test_route_ties_and_empty),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
