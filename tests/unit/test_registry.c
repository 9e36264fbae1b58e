/* Unit tests for daemons/dispatch/registry.c, built with the og_registry_add_* building
 * blocks (no database): the crosswalk, districts, the routing rule chosen for a case, and
 * the grid a position falls in. */
#include <errno.h>
#include <math.h>
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
    assert_int_equal(og_registry_count(r, "boundaries"), 0);
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

/* Grid boundaries ------------------------------------------------------------------------ */

/* Street 650204001: community QY (650204001001) with
 *   G1  a square                       lon 85.000-85.010, lat 45.000-45.010
 *   G2  a U east of it, sharing G1's east edge; its notch (lon 85.015-85.025, lat 45.004
 *       up) is open at the top         lon 85.010-85.030, lat 45.000-45.010
 *   G3, G4  two squares overlapping in lon 85.005-85.010, lat 45.020-45.030
 *   G5  a right triangle with a diagonal edge from (85.050, 45.000) to (85.040, 45.007)
 * community KL (650204001002) with K1 at lon 85.100-85.110, lat 45.000-45.010, and
 * community HP (650204001003) with no boundary at all. Street 650204002: SP1, a triangle
 * at lon 85.200-85.210, lat 45.000-45.010. Coordinates are lon, lat pairs;
 * og_registry_locate takes lat, lon. */
#define QY  "650204001001"
#define G1  QY "001"
#define G2  QY "002"
#define G3  QY "003"
#define G4  QY "004"
#define G5  QY "005"
#define KL  "650204001002"
#define K1  KL "001"
#define HP  "650204001003"
#define SP1 "650204002001001"

static const double g1[] = {85.000, 45.000, 85.010, 45.000, 85.010, 45.010, 85.000, 45.010};
static const double g2[] = {85.010, 45.000, 85.030, 45.000, 85.030, 45.010, 85.025, 45.010,
                            85.025, 45.004, 85.015, 45.004, 85.015, 45.010, 85.010, 45.010};
static const double g3[] = {85.000, 45.020, 85.010, 45.020, 85.010, 45.030, 85.000, 45.030};
static const double g4[] = {85.005, 45.020, 85.015, 45.020, 85.015, 45.030, 85.005, 45.030};
static const double g5[] = {85.040, 45.000, 85.050, 45.000, 85.040, 45.007};
static const double k1[] = {85.100, 45.000, 85.110, 45.000, 85.110, 45.010, 85.100, 45.010};
/* Closed as GeoJSON closes a ring: the first vertex again at the end. */
static const double sp1[] = {85.200, 45.000, 85.210, 45.000, 85.200, 45.010, 85.200, 45.000};

static int setup_boundaries(void **state)
{
    struct og_registry *r = og_registry_new();
    if (!r)
        return -1;
    *state = r;
    if (og_registry_add_boundary(r, G1, g1, OG_ARRAY_SIZE(g1) / 2) ||
        og_registry_add_boundary(r, G2, g2, OG_ARRAY_SIZE(g2) / 2) ||
        og_registry_add_boundary(r, G3, g3, OG_ARRAY_SIZE(g3) / 2) ||
        og_registry_add_boundary(r, G4, g4, OG_ARRAY_SIZE(g4) / 2) ||
        og_registry_add_boundary(r, G5, g5, OG_ARRAY_SIZE(g5) / 2) ||
        og_registry_add_boundary(r, K1, k1, OG_ARRAY_SIZE(k1) / 2) ||
        og_registry_add_boundary(r, SP1, sp1, OG_ARRAY_SIZE(sp1) / 2))
        return -1;
    return 0;
}

struct locate_case {
    const char *name;
    const char *area;
    double lat, lon;
    const char *grid; /* NULL: none */
};

static const struct locate_case locate_cases[] = {
    /* inside, outside */
    {"inside a square", QY, 45.005, 85.005, G1},
    {"between the grids of the community", QY, 45.015, 85.005, NULL},
    {"far away", QY, 46.000, 86.000, NULL},
    {"just outside the square", QY, 45.005, 84.999999, NULL},
    /* on the ring */
    {"on an edge", QY, 45.000, 85.005, G1},
    {"on another edge", QY, 45.005, 85.000, G1},
    {"on a vertex", QY, 45.000, 85.000, G1},
    /* A third of the way along the diagonal, its decimals rounded to a hair (1e-13
     * degrees) outside: on the edge within the tolerance for rounding. */
    {"on a diagonal edge", QY, 45.0023333333334, 85.0466666666667, G5},
    {"0.1 m outside the diagonal edge", QY, 45.0023343333333, 85.0466676666667, NULL},
    {"0.1 m inside the diagonal edge", QY, 45.0023323333333, 85.0466656666667, G5},
    {"on the border of two neighbours: ambiguous", QY, 45.005, 85.010, NULL},
    {"on a vertex two neighbours share: ambiguous", QY, 45.010, 85.010, NULL},
    /* concave */
    {"in the notch of the U (inside its bounding box)", QY, 45.007, 85.020, NULL},
    {"in the notch's opening at the top", QY, 45.010, 85.020, NULL},
    {"in the U's west arm", QY, 45.007, 85.012, G2},
    {"in the U's east arm", QY, 45.007, 85.028, G2},
    {"in the U's base", QY, 45.002, 85.020, G2},
    {"level with the notch's floor (the ray runs along an edge)", QY, 45.004, 85.012, G2},
    {"on the notch's floor", QY, 45.004, 85.020, G2},
    {"on a reflex vertex", QY, 45.004, 85.015, G2},
    /* overlapping grids */
    {"in two overlapping grids: ambiguous", QY, 45.025, 85.007, NULL},
    {"in the first only", QY, 45.025, 85.002, G3},
    {"in the second only", QY, 45.025, 85.013, G4},
    /* other communities, other levels */
    {"a grid of another community is not considered", QY, 45.005, 85.105, NULL},
    {"... but is from its own community", KL, 45.005, 85.105, K1},
    {"... and from the street", "650204001", 45.005, 85.105, K1},
    {"... and from the district", "650204", 45.005, 85.105, K1},
    {"a grid of another street is not considered", "650204001", 45.003, 85.203, NULL},
    {"... but is from the district (closed ring)", "650204", 45.003, 85.203, SP1},
    {"overlap is ambiguous from the street too", "650204001", 45.025, 85.007, NULL},
    {"a community without boundaries", HP, 45.005, 85.005, NULL},
    {"a city code prefixes no grid", "650200", 45.005, 85.005, NULL},
    {"a code shorter than a district", "6502", 45.005, 85.005, NULL},
    {"an empty code", "", 45.005, 85.005, NULL},
    /* refinement only below the mapped area */
    {"a mapped grid whose boundary holds the point", G1, 45.005, 85.005, G1},
    {"a mapped grid is not moved to its neighbour", G1, 45.002, 85.020, NULL},
    {"nor the other way", G2, 45.005, 85.005, NULL},
    {"a mapped grid of two overlapping ones keeps its own", G3, 45.025, 85.007, G3},
    {"a mapped grid with no boundary", QY "009", 45.005, 85.005, NULL},
    /* positions that are no positions */
    {"latitude NaN", QY, NAN, 85.005, NULL},
    {"longitude infinite", QY, 45.005, INFINITY, NULL},
    {"latitude out of range", QY, 95.0, 85.005, NULL},
};

static void test_locate(void **state)
{
    struct og_registry *r = *state;
    assert_int_equal(og_registry_count(r, "boundaries"), 7);
    for (size_t i = 0; i < OG_ARRAY_SIZE(locate_cases); i++) {
        const struct locate_case *c = &locate_cases[i];
        const char *got = og_registry_locate(r, c->area, c->lat, c->lon);
        if ((got == NULL) != (c->grid == NULL) || (got && strcmp(got, c->grid) != 0))
            fail_msg("%s: (%.6f, %.6f) under %s: got %s, expected %s", c->name, c->lat, c->lon,
                     c->area, got ? got : "none", c->grid ? c->grid : "none");
    }
}

static void test_add_boundary_rejects(void **state)
{
    struct og_registry *r = *state;
    double bad[] = {85.3, 45.0, 85.4, 45.0, 85.4, 45.1};
    assert_int_equal(og_registry_add_boundary(r, QY, g1, 4), -EINVAL);
    assert_int_equal(og_registry_add_boundary(r, "65020400100100", g1, 4), -EINVAL);
    assert_int_equal(og_registry_add_boundary(r, "6502040010010011", g1, 4), -EINVAL);
    assert_int_equal(og_registry_add_boundary(r, "65020400100100x", g1, 4), -EINVAL);
    assert_int_equal(og_registry_add_boundary(r, "", g1, 4), -EINVAL);
    assert_int_equal(og_registry_add_boundary(r, QY "010", g1, 2), -EINVAL);
    assert_int_equal(og_registry_add_boundary(r, QY "010", g1, 0), -EINVAL);
    bad[0] = NAN;
    assert_int_equal(og_registry_add_boundary(r, QY "010", bad, 3), -EINVAL);
    bad[0] = 180.5;
    assert_int_equal(og_registry_add_boundary(r, QY "010", bad, 3), -EINVAL);
    bad[0] = 85.3;
    bad[5] = -90.5;
    assert_int_equal(og_registry_add_boundary(r, QY "010", bad, 3), -EINVAL);
    bad[5] = INFINITY;
    assert_int_equal(og_registry_add_boundary(r, QY "010", bad, 3), -EINVAL);
    assert_int_equal(og_registry_add_boundary(r, G1, k1, 4), -EEXIST);
    assert_int_equal(og_registry_count(r, "boundaries"), 7);
    /* G1 is unchanged by the refused duplicate. */
    assert_string_equal(og_registry_locate(r, QY, 45.005, 85.005), G1);
    assert_null(og_registry_locate(r, QY, 45.005, 85.105));

    /* The registry keeps its own copy of the vertices. */
    bad[5] = 45.1;
    assert_int_equal(og_registry_add_boundary(r, QY "010", bad, 3), 0);
    bad[0] = bad[2] = bad[4] = 0;
    assert_string_equal(og_registry_locate(r, QY, 45.02, 85.38), QY "010");
    assert_int_equal(og_registry_count(r, "boundaries"), 8);
}

/* 5,000 grids: 50 streets of 10 communities of 10 grids. Community (s, c) is a 0.01 x
 * 0.01 degree square at lon 84 + 0.02 s, lat 45 + 0.02 c (empty land between them), cut
 * into 10 strips of 0.001 degrees from west to east, grid 1 to 10. */
#define N_STREETS     50
#define N_COMMUNITIES 10
#define N_GRIDS       10

static void grid_code(char *buf, size_t len, int s, int c, int g)
{
    snprintf(buf, len, "650204%03d%03d%03d", s, c, g);
}

static void test_locate_many(void **state)
{
    struct og_registry *r = og_registry_new();
    char code[32], area[32];
    unsigned seed = 12345;
    (void)state;
    assert_non_null(r);
    for (int s = 1; s <= N_STREETS; s++)
        for (int c = 1; c <= N_COMMUNITIES; c++)
            for (int g = 1; g <= N_GRIDS; g++) {
                double w = 84 + 0.02 * s + 0.001 * (g - 1), e = w + 0.001;
                double so = 45 + 0.02 * c, n = so + 0.01;
                double ring[] = {w, so, e, so, e, n, w, n};
                grid_code(code, sizeof(code), s, c, g);
                assert_int_equal(og_registry_add_boundary(r, code, ring, 4), 0);
            }
    assert_int_equal(og_registry_count(r, "boundaries"), 5000);

    for (int s = 1; s <= N_STREETS; s++)
        for (int c = 1; c <= N_COMMUNITIES; c++)
            for (int g = 1; g <= N_GRIDS; g++) {
                /* Somewhere well inside the strip (10 % to 90 % across it). */
                seed = seed * 1103515245 + 12345;
                double fx = 0.1 + 0.8 * ((seed >> 16) % 1000) / 1000.0;
                seed = seed * 1103515245 + 12345;
                double fy = 0.1 + 0.8 * ((seed >> 16) % 1000) / 1000.0;
                double lon = 84 + 0.02 * s + 0.001 * (g - 1 + fx), lat = 45 + 0.02 * c + 0.01 * fy;
                grid_code(code, sizeof(code), s, c, g);
                snprintf(area, sizeof(area), "%.12s", code);
                const char *got = og_registry_locate(r, area, lat, lon);
                if (!got || strcmp(got, code) != 0)
                    fail_msg("(%.6f, %.6f) under %s: got %s, expected %s", lat, lon, area,
                             got ? got : "none", code);
                assert_string_equal(og_registry_locate(r, code, lat, lon), code);
                /* Street and district scan more communities: a sample of the points. */
                if ((s * 100 + c * 10 + g) % 37 == 0) {
                    snprintf(area, sizeof(area), "%.9s", code);
                    assert_string_equal(og_registry_locate(r, area, lat, lon), code);
                    assert_string_equal(og_registry_locate(r, "650204", lat, lon), code);
                }
                /* The same point under the neighbouring community finds nothing. */
                snprintf(area, sizeof(area), "650204%03d%03d", s, c % N_COMMUNITIES + 1);
                assert_null(og_registry_locate(r, area, lat, lon));
            }
    /* Between communities, and on the border of two strips. */
    assert_null(og_registry_locate(r, "650204", 45.035, 84.025));
    assert_null(og_registry_locate(r, "650204007003", 45.065, 84.145));
    assert_null(og_registry_locate(r, "650204007003", 45.065, 84.14 + 0.001 * 3));
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
        cmocka_unit_test_setup_teardown(test_locate, setup_boundaries, teardown),
        cmocka_unit_test_setup_teardown(test_add_boundary_rejects, setup_boundaries, teardown),
        cmocka_unit_test(test_locate_many),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
