#include "dispatch.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uthash.h>

#include "db.h"
#include "util.h"

struct area {
    char code[OG_CODE_MAX];
    char district[8];
    UT_hash_handle hh;
};

struct name { /* a source system, a unit */
    char *code;
    UT_hash_handle hh;
};

struct xwalk {
    char *key; /* "source\x1fgrid id" */
    char area[OG_CODE_MAX];
    UT_hash_handle hh;
};

struct category {
    struct og_category_info info;
    char *code, *unit_level, *time_unit, *kind;
    UT_hash_handle hh;
};

struct severity_limit {
    char *key; /* "category\x1fseverity" */
    int limit;
    char unit[16];
    UT_hash_handle hh;
};

struct supervisor {
    char area[OG_CODE_MAX];
    char *unit;
    UT_hash_handle hh;
};

/* A grid's boundary: a ring of n vertices (lon, lat pairs; the last joins the first) and
 * its bounding box, checked before the ring. */
struct boundary {
    char grid[OG_CODE_MAX];
    double *lonlat;
    size_t n;
    double min_lon, max_lon, min_lat, max_lat;
};

/* The boundaries of the grids of one community (the first 12 digits of their codes): a
 * point is tested against one community's grids, not the whole city's. */
struct community {
    char code[13];
    struct boundary *grids;
    size_t n, cap;
    UT_hash_handle hh;
};

/* A right granted to a source system: "source\x1funit", "source\x1fprefix*" or
 * "source\x1faction". */
struct grant {
    char *key;
    UT_hash_handle hh;
};

/* Unit prefixes granted ("CGJ-*"), few: searched in a list. */
struct prefix_grant {
    char *source, *prefix;
    struct prefix_grant *next;
};

struct og_registry {
    struct grant *grants;
    struct prefix_grant *prefix_grants;
    struct severity_limit *severity_limits;
    struct supervisor *supervisors;
    struct area *areas;
    struct name *sources, *units;
    struct xwalk *xwalk;
    struct category *categories;
    struct og_rule *rules;
    size_t n_rules, cap_rules;
    struct og_calendar *calendar;
    struct community *communities;
    size_t n_boundaries;
};

struct og_registry *og_registry_new(void)
{
    struct og_registry *r = calloc(1, sizeof(*r));
    if (r && !(r->calendar = og_calendar_new())) {
        free(r);
        r = NULL;
    }
    return r;
}

struct og_calendar *og_registry_calendar(struct og_registry *r)
{
    return r->calendar;
}

static void free_names(struct name **head)
{
    struct name *n, *tmp;
    HASH_ITER(hh, *head, n, tmp)
    {
        HASH_DEL(*head, n);
        free(n->code);
        free(n);
    }
}

static void free_grants(struct og_registry *r)
{
    struct grant *g, *tmp;
    HASH_ITER(hh, r->grants, g, tmp)
    {
        HASH_DEL(r->grants, g);
        free(g->key);
        free(g);
    }
    while (r->prefix_grants) {
        struct prefix_grant *p = r->prefix_grants;
        r->prefix_grants = p->next;
        free(p->source);
        free(p->prefix);
        free(p);
    }
}

void og_registry_destroy(struct og_registry **rp)
{
    struct og_registry *r = *rp;
    if (r)
        free_grants(r);
    struct area *a, *ta;
    struct xwalk *x, *tx;
    struct category *c, *tc;
    if (!r)
        return;
    HASH_ITER(hh, r->areas, a, ta)
    {
        HASH_DEL(r->areas, a);
        free(a);
    }
    HASH_ITER(hh, r->xwalk, x, tx)
    {
        HASH_DEL(r->xwalk, x);
        free(x->key);
        free(x);
    }
    HASH_ITER(hh, r->categories, c, tc)
    {
        HASH_DEL(r->categories, c);
        free(c->code);
        free(c->unit_level);
        free(c->time_unit);
        free(c->kind);
        free(c);
    }
    struct severity_limit *sl, *tsl;
    HASH_ITER(hh, r->severity_limits, sl, tsl)
    {
        HASH_DEL(r->severity_limits, sl);
        free(sl->key);
        free(sl);
    }
    struct supervisor *sv, *tsv;
    HASH_ITER(hh, r->supervisors, sv, tsv)
    {
        HASH_DEL(r->supervisors, sv);
        free(sv->unit);
        free(sv);
    }
    struct community *cm, *tcm;
    HASH_ITER(hh, r->communities, cm, tcm)
    {
        HASH_DEL(r->communities, cm);
        for (size_t i = 0; i < cm->n; i++)
            free(cm->grids[i].lonlat);
        free(cm->grids);
        free(cm);
    }
    free_names(&r->sources);
    free_names(&r->units);
    for (size_t i = 0; i < r->n_rules; i++) {
        free(r->rules[i].category);
        free(r->rules[i].unit);
    }
    free(r->rules);
    og_calendar_destroy(&r->calendar);
    free(r);
    *rp = NULL;
}

int og_registry_add_area(struct og_registry *r, const char *code, const char *level,
                         const char *parent, const char *district)
{
    struct area *a;
    if (strlen(code) >= OG_CODE_MAX || strlen(district) >= sizeof(a->district))
        return -EINVAL;
    a = calloc(1, sizeof(*a));
    if (!a)
        return -ENOMEM;
    strcpy(a->code, code);
    strcpy(a->district, district);
    HASH_ADD_STR(r->areas, code, a);
    return 0;
}

static int add_name(struct name **head, const char *code)
{
    struct name *n = calloc(1, sizeof(*n));
    if (!n || !(n->code = strdup(code))) {
        free(n);
        return -ENOMEM;
    }
    HASH_ADD_KEYPTR(hh, *head, n->code, strlen(n->code), n);
    return 0;
}

int og_registry_add_source(struct og_registry *r, const char *code)
{
    return add_name(&r->sources, code);
}

int og_registry_add_unit(struct og_registry *r, const char *code, const char *area)
{
    return add_name(&r->units, code);
}

int og_registry_add_crosswalk(struct og_registry *r, const char *source, const char *grid_id,
                              const char *area)
{
    char key[256];
    struct xwalk *x;
    if (og_event_key(source, grid_id, key, sizeof(key)) || strlen(area) >= OG_CODE_MAX)
        return -EINVAL;
    x = calloc(1, sizeof(*x));
    if (!x || !(x->key = strdup(key))) {
        free(x);
        return -ENOMEM;
    }
    strcpy(x->area, area);
    HASH_ADD_KEYPTR(hh, r->xwalk, x->key, strlen(x->key), x);
    return 0;
}

int og_registry_add_category(struct og_registry *r, const struct og_category_info *info)
{
    struct category *c = calloc(1, sizeof(*c));
    if (!c)
        return -ENOMEM;
    c->code = strdup(info->code);
    c->unit_level = strdup(info->unit_level);
    c->time_unit = strdup(info->time_unit);
    c->kind = info->kind ? strdup(info->kind) : NULL;
    if (!c->code || !c->unit_level || !c->time_unit || (info->kind && !c->kind)) {
        free(c->code);
        free(c->unit_level);
        free(c->time_unit);
        free(c->kind);
        free(c);
        return -ENOMEM;
    }
    c->info = *info;
    c->info.code = c->code;
    c->info.unit_level = c->unit_level;
    c->info.time_unit = c->time_unit;
    c->info.kind = c->kind;
    HASH_ADD_KEYPTR(hh, r->categories, c->code, strlen(c->code), c);
    return 0;
}

int og_registry_add_rule(struct og_registry *r, const struct og_rule *rule)
{
    struct og_rule *x;
    if (strlen(rule->prefix) >= OG_CODE_MAX)
        return -EINVAL;
    if (r->n_rules == r->cap_rules) {
        size_t cap = r->cap_rules ? r->cap_rules * 2 : 64;
        x = realloc(r->rules, cap * sizeof(*x));
        if (!x)
            return -ENOMEM;
        r->rules = x;
        r->cap_rules = cap;
    }
    x = &r->rules[r->n_rules];
    *x = *rule;
    x->category = rule->category ? strdup(rule->category) : NULL;
    x->unit = strdup(rule->unit);
    if ((rule->category && !x->category) || !x->unit) {
        free(x->category);
        free(x->unit);
        return -ENOMEM;
    }
    r->n_rules++;
    return 0;
}

int og_registry_add_severity_limit(struct og_registry *r, const char *category, int severity,
                                   int limit, const char *unit)
{
    struct severity_limit *sl = calloc(1, sizeof(*sl));
    char key[96];
    if (!sl)
        return -ENOMEM;
    snprintf(key, sizeof(key), "%s\x1f%d", category, severity);
    snprintf(sl->unit, sizeof(sl->unit), "%s", unit);
    sl->limit = limit;
    if (!(sl->key = strdup(key))) {
        free(sl);
        return -ENOMEM;
    }
    HASH_ADD_KEYPTR(hh, r->severity_limits, sl->key, strlen(sl->key), sl);
    return 0;
}

bool og_registry_severity_limit(const struct og_registry *r, const char *category, int severity,
                                int *limit, const char **unit)
{
    struct severity_limit *sl;
    char key[96];
    snprintf(key, sizeof(key), "%s\x1f%d", category, severity);
    HASH_FIND_STR(r->severity_limits, key, sl);
    if (!sl)
        return false;
    *limit = sl->limit;
    *unit = sl->unit;
    return true;
}

int og_registry_add_supervisor(struct og_registry *r, const char *area, const char *unit)
{
    struct supervisor *sv;
    if (strlen(area) >= OG_CODE_MAX)
        return -EINVAL;
    sv = calloc(1, sizeof(*sv));
    if (!sv || !(sv->unit = strdup(unit))) {
        free(sv);
        return -ENOMEM;
    }
    strcpy(sv->area, area);
    HASH_ADD_STR(r->supervisors, area, sv);
    return 0;
}

const char *og_registry_supervisor(const struct og_registry *r, const char *area)
{
    struct supervisor *sv;
    HASH_FIND_STR(r->supervisors, area, sv);
    return sv ? sv->unit : NULL;
}

bool og_registry_has_source(const struct og_registry *r, const char *source)
{
    struct name *n;
    HASH_FIND_STR(r->sources, source, n);
    return n != NULL;
}

bool og_registry_has_unit(const struct og_registry *r, const char *unit)
{
    struct name *n;
    HASH_FIND_STR(r->units, unit, n);
    return n != NULL;
}

static const char *const action_names[OG_ACTION_COUNT] = {
    [OG_ACTION_EVALUATION] = "evaluation",
    [OG_ACTION_MEETING_DECISION] = "meeting_decision",
    [OG_ACTION_SPLIT] = "split",
    [OG_ACTION_MEDIATION] = "mediation",
    [OG_ACTION_EXTENSION_DECISION] = "extension_decision",
    [OG_ACTION_CHECK] = "check",
    [OG_ACTION_CLOSE] = "close",
};

const char *og_action_name(enum og_action a)
{
    return a < OG_ACTION_COUNT ? action_names[a] : "unknown";
}

static int add_grant(struct og_registry *r, const char *source, const char *what)
{
    struct grant *g = calloc(1, sizeof(*g));
    size_t n = strlen(source) + strlen(what) + 2;
    if (!g || !(g->key = malloc(n))) {
        free(g);
        return -ENOMEM;
    }
    snprintf(g->key, n, "%s\x1f%s", source, what);
    struct grant *old;
    HASH_FIND_STR(r->grants, g->key, old);
    if (old) { /* granted twice: once is enough */
        free(g->key);
        free(g);
        return 0;
    }
    HASH_ADD_KEYPTR(hh, r->grants, g->key, strlen(g->key), g);
    return 0;
}

static bool has_grant(const struct og_registry *r, const char *source, const char *what)
{
    char key[256];
    struct grant *g;
    if (snprintf(key, sizeof(key), "%s\x1f%s", source, what) >= (int)sizeof(key))
        return false;
    HASH_FIND_STR(r->grants, key, g);
    return g != NULL;
}

int og_registry_add_unit_grant(struct og_registry *r, const char *source, const char *unit_pattern)
{
    size_t n = strlen(unit_pattern);
    if (n == 0 || !*source)
        return -EINVAL;
    if (unit_pattern[n - 1] != '*')
        return add_grant(r, source, unit_pattern);
    struct prefix_grant *p = calloc(1, sizeof(*p));
    if (!p || !(p->source = strdup(source)) || !(p->prefix = strndup(unit_pattern, n - 1))) {
        if (p)
            free(p->source);
        free(p);
        return -ENOMEM;
    }
    p->next = r->prefix_grants;
    r->prefix_grants = p;
    return 0;
}

int og_registry_add_action_grant(struct og_registry *r, const char *source, const char *action)
{
    for (int a = 0; a < OG_ACTION_COUNT; a++)
        if (strcmp(action, action_names[a]) == 0)
            return add_grant(r, source, action_names[a]);
    return -EINVAL;
}

bool og_registry_speaks_for(const struct og_registry *r, const char *source, const char *unit)
{
    if (has_grant(r, source, unit))
        return true;
    for (const struct prefix_grant *p = r->prefix_grants; p; p = p->next)
        if (strcmp(p->source, source) == 0 && strncmp(unit, p->prefix, strlen(p->prefix)) == 0)
            return true;
    return false;
}

bool og_registry_may(const struct og_registry *r, const char *source, enum og_action a)
{
    return a < OG_ACTION_COUNT && has_grant(r, source, action_names[a]);
}

const char *og_registry_map(const struct og_registry *r, const char *source, const char *grid)
{
    char key[256];
    struct xwalk *x;
    if (og_event_key(source, grid, key, sizeof(key)))
        return NULL;
    HASH_FIND_STR(r->xwalk, key, x);
    return x ? x->area : NULL;
}

/* Grid boundaries ------------------------------------------------------------------------ */

/* How far from an edge a point still counts as on it, in degrees: about 0.1 mm, far below
 * what a GPS fix means. It only absorbs the rounding of a point computed to lie on an edge
 * that is not parallel to an axis. */
#define EDGE_EPS 1e-9

/* True when s is exactly n decimal digits. */
static bool all_digits(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return false;
    return s[n] == '\0';
}

int og_registry_add_boundary(struct og_registry *r, const char *grid, const double *lonlat,
                             size_t n_points)
{
    struct community *cm;
    struct boundary *b;
    double *copy;

    if (!all_digits(grid, 15) || n_points < 3 || n_points > SIZE_MAX / (2 * sizeof(*copy)))
        return -EINVAL;
    for (size_t i = 0; i < n_points; i++) /* written so that NaN fails too */
        if (!(fabs(lonlat[2 * i]) <= 180 && fabs(lonlat[2 * i + 1]) <= 90))
            return -EINVAL;
    HASH_FIND(hh, r->communities, grid, 12, cm);
    for (size_t i = 0; cm && i < cm->n; i++)
        if (strcmp(cm->grids[i].grid, grid) == 0)
            return -EEXIST;
    if (!(copy = malloc(2 * n_points * sizeof(*copy))))
        return -ENOMEM;
    memcpy(copy, lonlat, 2 * n_points * sizeof(*copy));
    if (!cm) {
        if (!(cm = calloc(1, sizeof(*cm)))) {
            free(copy);
            return -ENOMEM;
        }
        memcpy(cm->code, grid, 12);
        HASH_ADD_STR(r->communities, code, cm);
    }
    if (cm->n == cm->cap) {
        size_t cap = cm->cap ? cm->cap * 2 : 8;
        if (!(b = realloc(cm->grids, cap * sizeof(*b)))) {
            free(copy); /* an empty community may stay behind: it matches nothing */
            return -ENOMEM;
        }
        cm->grids = b;
        cm->cap = cap;
    }
    b = &cm->grids[cm->n++];
    strcpy(b->grid, grid);
    b->lonlat = copy;
    b->n = n_points;
    b->min_lon = b->max_lon = copy[0];
    b->min_lat = b->max_lat = copy[1];
    for (size_t i = 1; i < n_points; i++) {
        double lon = copy[2 * i], lat = copy[2 * i + 1];
        b->min_lon = lon < b->min_lon ? lon : b->min_lon;
        b->max_lon = lon > b->max_lon ? lon : b->max_lon;
        b->min_lat = lat < b->min_lat ? lat : b->min_lat;
        b->max_lat = lat > b->max_lat ? lat : b->max_lat;
    }
    r->n_boundaries++;
    return 0;
}

/* True when (x, y) is within EDGE_EPS of the segment from (ax, ay) to (bx, by). */
static bool on_edge(double ax, double ay, double bx, double by, double x, double y)
{
    double dx = bx - ax, dy = by - ay, len2 = dx * dx + dy * dy, t, ex, ey;
    if (x < (ax < bx ? ax : bx) - EDGE_EPS || x > (ax > bx ? ax : bx) + EDGE_EPS ||
        y < (ay < by ? ay : by) - EDGE_EPS || y > (ay > by ? ay : by) + EDGE_EPS)
        return false;
    t = len2 > 0 ? ((x - ax) * dx + (y - ay) * dy) / len2 : 0;
    t = t < 0 ? 0 : t > 1 ? 1 : t;
    ex = ax + t * dx - x;
    ey = ay + t * dy - y;
    return ex * ex + ey * ey <= EDGE_EPS * EDGE_EPS;
}

/* Even-odd rule in the plane of (lon, lat): a ray from the point towards growing longitude
 * crosses the ring an odd number of times when the point is inside. Each edge spans its
 * lower end up to, not including, its upper end, so a ray through a vertex is counted
 * once where the ring passes it and twice (or not at all) where the ring turns back there.
 * A point on the ring counts as inside. Treating degrees as a plane is fine at the scale of
 * a grid (hundreds of metres; straight edges in lon/lat and on the ground differ by far
 * less than a GPS fix), not across the antimeridian or near a pole. */
static bool contains(const struct boundary *b, double x, double y)
{
    bool in = false;
    if (x < b->min_lon - EDGE_EPS || x > b->max_lon + EDGE_EPS || y < b->min_lat - EDGE_EPS ||
        y > b->max_lat + EDGE_EPS)
        return false;
    for (size_t i = 0, j = b->n - 1; i < b->n; j = i++) {
        double xi = b->lonlat[2 * i], yi = b->lonlat[2 * i + 1];
        double xj = b->lonlat[2 * j], yj = b->lonlat[2 * j + 1];
        if (on_edge(xi, yi, xj, yj, x, y))
            return true;
        if ((yi > y) != (yj > y) && x < xi + (y - yi) * (xj - xi) / (yj - yi))
            in = !in;
    }
    return in;
}

/* Counts the grids of cm under area (its first len characters) that contain (x, y), up
 * to two; *found is the first. */
static void locate_in(const struct community *cm, const char *area, size_t len, double x, double y,
                      const char **found, int *hits)
{
    for (size_t i = 0; i < cm->n && *hits < 2; i++) {
        const struct boundary *b = &cm->grids[i];
        if (strncmp(b->grid, area, len) == 0 && contains(b, x, y) && (*hits)++ == 0)
            *found = b->grid;
    }
}

const char *og_registry_locate(const struct og_registry *r, const char *area, double latitude,
                               double longitude)
{
    size_t len = strlen(area);
    const char *found = NULL;
    struct community *cm, *tmp;
    int hits = 0;

    if (len < 6 || len > 15 || !(fabs(latitude) <= 90) || !(fabs(longitude) <= 180))
        return NULL;
    if (len >= 12) {
        HASH_FIND(hh, r->communities, area, 12, cm);
        if (cm)
            locate_in(cm, area, len, longitude, latitude, &found, &hits);
    } else {
        /* A street or a district: every community under it, O(communities) (hundreds in a
         * city); a community or a grid looks at one community's grids only. */
        HASH_ITER(hh, r->communities, cm, tmp)
        {
            if (hits < 2 && strncmp(cm->code, area, len) == 0)
                locate_in(cm, area, len, longitude, latitude, &found, &hits);
        }
    }
    return hits == 1 ? found : NULL;
}

const char *og_registry_district(const struct og_registry *r, const char *area)
{
    struct area *a;
    HASH_FIND_STR(r->areas, area, a);
    return a ? a->district : NULL;
}

const struct og_category_info *og_registry_category(const struct og_registry *r, const char *code)
{
    struct category *c;
    HASH_FIND_STR(r->categories, code, c);
    return c ? &c->info : NULL;
}

/* True when a beats b for the same case (see og_registry_route). */
static bool better(const struct og_rule *a, const struct og_rule *b)
{
    size_t la = strlen(a->prefix), lb = strlen(b->prefix);
    if (la != lb)
        return la > lb;
    if ((a->category != NULL) != (b->category != NULL))
        return a->category != NULL;
    if (a->priority != b->priority)
        return a->priority > b->priority;
    return a->id < b->id; /* stable: the older rule */
}

const struct og_rule *og_registry_route(const struct og_registry *r, const char *category,
                                        const char *area, int64_t t)
{
    return og_registry_route_except(r, category, area, t, NULL, 0);
}

const struct og_rule *og_registry_route_except(const struct og_registry *r, const char *category,
                                               const char *area, int64_t t, char *const *except,
                                               size_t n_except)
{
    /* O(rules) per case; a district has hundreds of rules, not millions. */
    const struct og_rule *best = NULL;
    for (size_t i = 0; i < r->n_rules; i++) {
        const struct og_rule *x = &r->rules[i];
        if (strncmp(area, x->prefix, strlen(x->prefix)) != 0)
            continue;
        if (x->category && strcmp(x->category, category) != 0)
            continue;
        if (t < x->valid_from || t >= x->valid_to)
            continue;
        bool excluded = false;
        for (size_t k = 0; k < n_except && !excluded; k++)
            excluded = strcmp(x->unit, except[k]) == 0;
        if (excluded)
            continue;
        if (!best || better(x, best))
            best = x;
    }
    return best;
}

size_t og_registry_count(const struct og_registry *r, const char *what)
{
    if (strcmp(what, "areas") == 0)
        return HASH_COUNT(r->areas);
    if (strcmp(what, "crosswalk") == 0)
        return HASH_COUNT(r->xwalk);
    if (strcmp(what, "sources") == 0)
        return HASH_COUNT(r->sources);
    if (strcmp(what, "categories") == 0)
        return HASH_COUNT(r->categories);
    if (strcmp(what, "units") == 0)
        return HASH_COUNT(r->units);
    if (strcmp(what, "rules") == 0)
        return r->n_rules;
    if (strcmp(what, "supervisors") == 0)
        return HASH_COUNT(r->supervisors);
    if (strcmp(what, "grants") == 0) {
        size_t n = HASH_COUNT(r->grants);
        for (const struct prefix_grant *p = r->prefix_grants; p; p = p->next)
            n++;
        return n;
    }
    if (strcmp(what, "calendar") == 0)
        return og_calendar_count(r->calendar);
    if (strcmp(what, "boundaries") == 0)
        return r->n_boundaries;
    return 0;
}

/* Loading ------------------------------------------------------------------------------ */

static PGresult *query(PGconn *c, const char *sql, char *err, size_t errlen)
{
    return og_db_query(c, sql, 0, NULL, err, errlen);
}

static int64_t bound(const PGresult *res, int row, int col, int64_t inf)
{
    return PQgetisnull(res, row, col) ? inf : strtoll(PQgetvalue(res, row, col), NULL, 10);
}

/* A boundary as the loader reads it: "lon lat lon lat ..." (array_to_string). */
static int add_boundary_text(struct og_registry *r, const char *grid, const char *text)
{
    size_t n = 1, k;
    const char *p = text;
    char *end;
    double *v;
    int rc;

    for (const char *q = text; *q; q++)
        n += *q == ' ';
    if (!(v = malloc(n * sizeof(*v))))
        return -ENOMEM;
    for (k = 0; k < n; k++, p = end + 1) {
        v[k] = strtod(p, &end);
        if (end == p || *end != (k + 1 < n ? ' ' : '\0'))
            break;
    }
    rc = k == n && n % 2 == 0 ? og_registry_add_boundary(r, grid, v, n / 2) : -EINVAL;
    free(v);
    return rc;
}

int og_registry_load(struct og_registry *r, PGconn *c, char *err, size_t errlen)
{
    PGresult *res;
    int rc = 0;

    if (!(res =
              query(c, "SELECT code, level, coalesce(parent_code, ''), district_code FROM og.area",
                    err, errlen)))
        return -EIO;
    for (int i = 0; rc == 0 && i < PQntuples(res); i++)
        rc = og_registry_add_area(r, PQgetvalue(res, i, 0), PQgetvalue(res, i, 1),
                                  PQgetvalue(res, i, 2), PQgetvalue(res, i, 3));
    PQclear(res);

    if (rc || !(res = query(c, "SELECT code FROM og.source_system", err, errlen)))
        return rc ? rc : -EIO;
    for (int i = 0; rc == 0 && i < PQntuples(res); i++)
        rc = og_registry_add_source(r, PQgetvalue(res, i, 0));
    PQclear(res);

    if (rc ||
        !(res = query(c, "SELECT source_system, source_grid_id, area_code FROM og.grid_crosswalk",
                      err, errlen)))
        return rc ? rc : -EIO;
    for (int i = 0; rc == 0 && i < PQntuples(res); i++)
        rc = og_registry_add_crosswalk(r, PQgetvalue(res, i, 0), PQgetvalue(res, i, 1),
                                       PQgetvalue(res, i, 2));
    PQclear(res);

    if (rc || !(res = query(c,
                            "SELECT code, unit_level, time_limit, time_unit, check_required, kind "
                            "FROM og.category",
                            err, errlen)))
        return rc ? rc : -EIO;
    for (int i = 0; rc == 0 && i < PQntuples(res); i++) {
        struct og_category_info info = {PQgetvalue(res, i, 0),           PQgetvalue(res, i, 1),
                                        atoi(PQgetvalue(res, i, 2)),     PQgetvalue(res, i, 3),
                                        PQgetvalue(res, i, 4)[0] == 't', PQgetvalue(res, i, 5)};
        rc = og_registry_add_category(r, &info);
    }
    PQclear(res);

    if (rc || !(res = query(c, "SELECT code, area_code FROM og.handling_unit", err, errlen)))
        return rc ? rc : -EIO;
    for (int i = 0; rc == 0 && i < PQntuples(res); i++)
        rc = og_registry_add_unit(r, PQgetvalue(res, i, 0), PQgetvalue(res, i, 1));
    PQclear(res);

    if (rc ||
        !(res = query(
              c,
              "SELECT rule_id, version, category_code, area_prefix, unit_code, priority, "
              "CASE WHEN isfinite(valid_from) THEN floor(extract(epoch FROM valid_from))::bigint "
              "END, "
              "CASE WHEN isfinite(valid_to) THEN floor(extract(epoch FROM valid_to))::bigint END "
              "FROM og.routing_rule ORDER BY rule_id",
              err, errlen)))
        return rc ? rc : -EIO;
    for (int i = 0; rc == 0 && i < PQntuples(res); i++) {
        struct og_rule rule = {0};
        rule.id = strtoll(PQgetvalue(res, i, 0), NULL, 10);
        rule.version = atoi(PQgetvalue(res, i, 1));
        rule.category = PQgetisnull(res, i, 2) ? NULL : PQgetvalue(res, i, 2);
        snprintf(rule.prefix, sizeof(rule.prefix), "%s", PQgetvalue(res, i, 3));
        rule.unit = PQgetvalue(res, i, 4);
        rule.priority = atoi(PQgetvalue(res, i, 5));
        rule.valid_from = bound(res, i, 6, INT64_MIN);
        rule.valid_to = bound(res, i, 7, INT64_MAX);
        rc = og_registry_add_rule(r, &rule);
    }
    PQclear(res);

    if (rc || !(res = query(c,
                            "SELECT category_code, severity, time_limit, time_unit "
                            "FROM og.severity_limit",
                            err, errlen)))
        return rc ? rc : -EIO;
    for (int i = 0; rc == 0 && i < PQntuples(res); i++)
        rc = og_registry_add_severity_limit(r, PQgetvalue(res, i, 0), atoi(PQgetvalue(res, i, 1)),
                                            atoi(PQgetvalue(res, i, 2)), PQgetvalue(res, i, 3));
    PQclear(res);

    if (rc || !(res = query(c, "SELECT source_system, unit_pattern FROM og.source_unit_grant", err,
                            errlen)))
        return rc ? rc : -EIO;
    for (int i = 0; rc == 0 && i < PQntuples(res); i++)
        rc = og_registry_add_unit_grant(r, PQgetvalue(res, i, 0), PQgetvalue(res, i, 1));
    PQclear(res);
    if (rc ||
        !(res = query(c, "SELECT source_system, action FROM og.source_action_grant", err, errlen)))
        return rc ? rc : -EIO;
    for (int i = 0; rc == 0 && i < PQntuples(res); i++)
        if ((rc = og_registry_add_action_grant(r, PQgetvalue(res, i, 0), PQgetvalue(res, i, 1))))
            snprintf(err, errlen, "og.source_action_grant: unknown action \"%s\"",
                     PQgetvalue(res, i, 1));
    PQclear(res);
    if (rc)
        return rc;

    if (rc || !(res = query(c, "SELECT area_code, unit_code FROM og.supervisor", err, errlen)))
        return rc ? rc : -EIO;
    for (int i = 0; rc == 0 && i < PQntuples(res); i++)
        rc = og_registry_add_supervisor(r, PQgetvalue(res, i, 0), PQgetvalue(res, i, 1));
    PQclear(res);

    if (rc || !(res = query(c,
                            "SELECT area_code, array_to_string(vertices, ' ') "
                            "FROM og.grid_boundary",
                            err, errlen)))
        return rc ? rc : -EIO;
    for (int i = 0; rc == 0 && i < PQntuples(res); i++)
        if ((rc = add_boundary_text(r, PQgetvalue(res, i, 0), PQgetvalue(res, i, 1))))
            snprintf(err, errlen, "grid boundary of %s: %s", PQgetvalue(res, i, 0),
                     rc == -EINVAL ? "not a ring of lon/lat pairs in range" : strerror(-rc));
    PQclear(res);
    if (rc)
        return rc;

    if (rc || !(res = query(c, "SELECT (day - date '1970-01-01'), working FROM og.calendar_day",
                            err, errlen)))
        return rc ? rc : -EIO;
    for (int i = 0; rc == 0 && i < PQntuples(res); i++)
        rc = og_calendar_set(r->calendar, strtoll(PQgetvalue(res, i, 0), NULL, 10),
                             PQgetvalue(res, i, 1)[0] == 't');
    PQclear(res);
    if (rc)
        snprintf(err, errlen, "registry: %s", strerror(-rc));
    return rc;
}
