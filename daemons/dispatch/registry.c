#include "dispatch.h"

#include <errno.h>
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

struct og_registry {
    struct severity_limit *severity_limits;
    struct supervisor *supervisors;
    struct area *areas;
    struct name *sources, *units;
    struct xwalk *xwalk;
    struct category *categories;
    struct og_rule *rules;
    size_t n_rules, cap_rules;
    struct og_calendar *calendar;
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

void og_registry_destroy(struct og_registry **rp)
{
    struct og_registry *r = *rp;
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

const char *og_registry_map(const struct og_registry *r, const char *source, const char *grid)
{
    char key[256];
    struct xwalk *x;
    if (og_event_key(source, grid, key, sizeof(key)))
        return NULL;
    HASH_FIND_STR(r->xwalk, key, x);
    return x ? x->area : NULL;
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
    return og_registry_route_except(r, category, area, t, NULL);
}

const struct og_rule *og_registry_route_except(const struct og_registry *r, const char *category,
                                               const char *area, int64_t t, const char *except)
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
        if (except && strcmp(x->unit, except) == 0)
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
    if (strcmp(what, "calendar") == 0)
        return og_calendar_count(r->calendar);
    return 0;
}

/* Loading ------------------------------------------------------------------------------ */

static PGresult *query(PGconn *c, const char *sql, char *err, size_t errlen)
{
    PGresult *res = PQexec(c, sql);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        og_db_error(c, res, err, errlen);
        PQclear(res);
        return NULL;
    }
    return res;
}

static int64_t bound(const PGresult *res, int row, int col, int64_t inf)
{
    return PQgetisnull(res, row, col) ? inf : strtoll(PQgetvalue(res, row, col), NULL, 10);
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

    if (rc || !(res = query(c, "SELECT area_code, unit_code FROM og.supervisor", err, errlen)))
        return rc ? rc : -EIO;
    for (int i = 0; rc == 0 && i < PQntuples(res); i++)
        rc = og_registry_add_supervisor(r, PQgetvalue(res, i, 0), PQgetvalue(res, i, 1));
    PQclear(res);

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
