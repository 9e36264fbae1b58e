#include "dispatch.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uthash.h>

#include "db.h"

struct entry {
    struct og_case c; /* first: a case's address is its entry's */
    unsigned held;    /* decisions on it on their way to archive (og_cases_hold) */
    size_t n_reports; /* merged reports of it in memory */
    UT_hash_handle hh;
};

struct seq { /* the last case number used in a district */
    char district[8];
    int64_t last;
    UT_hash_handle hh;
};

/* Open cases by "category\x1fcommunity code": where a new report looks for its problem. */
struct bucket {
    char *key;
    struct og_case **cases;
    size_t n, cap;
    UT_hash_handle hh;
};

struct report_entry {
    struct og_report r;
    UT_hash_handle hh;
};

struct og_cases {
    struct entry *by_id;
    struct seq *seqs;
    int64_t floor; /* every district numbers above it (og.database_generation) */
    struct bucket *buckets;
    struct report_entry *reports; /* merged reports, by "source\x1fevent id" */
    /* The walk under way (og_cases_walk): the case it visits next, NULL at its end. */
    struct entry *walk;
    bool walking;
};

static void free_case(struct og_case *c)
{
    free(c->category);
    free(c->unit);
    free(c->supervisor);
    for (size_t i = 0; i < c->n_returned; i++)
        free(c->returned_units[i]);
    free(c->returned_units);
}

struct og_cases *og_cases_new(void)
{
    return calloc(1, sizeof(struct og_cases));
}

void og_cases_destroy(struct og_cases **csp)
{
    struct og_cases *cs = *csp;
    struct entry *e, *te;
    struct seq *s, *ts;
    if (!cs)
        return;
    HASH_ITER(hh, cs->by_id, e, te)
    {
        HASH_DEL(cs->by_id, e);
        free_case(&e->c);
        free(e);
    }
    struct report_entry *r, *tr;
    HASH_ITER(hh, cs->reports, r, tr)
    {
        HASH_DEL(cs->reports, r);
        free(r->r.key);
        free(r);
    }
    HASH_ITER(hh, cs->seqs, s, ts)
    {
        HASH_DEL(cs->seqs, s);
        free(s);
    }
    struct bucket *b, *tb;
    HASH_ITER(hh, cs->buckets, b, tb)
    {
        HASH_DEL(cs->buckets, b);
        free(b->key);
        free(b->cases);
        free(b);
    }
    free(cs);
    *csp = NULL;
}

static struct seq *seq_of(struct og_cases *cs, const char *district)
{
    struct seq *s;
    HASH_FIND_STR(cs->seqs, district, s);
    if (s)
        return s;
    s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    snprintf(s->district, sizeof(s->district), "%s", district);
    s->last = cs->floor;
    HASH_ADD_STR(cs->seqs, district, s);
    return s;
}

/* Numbering in district goes on above last. 0 or -ENOMEM. */
static int number_after(struct og_cases *cs, const char *district, int64_t last)
{
    struct seq *s = seq_of(cs, district);
    if (!s)
        return -ENOMEM;
    if (last > s->last)
        s->last = last;
    return 0;
}

/* The case number in an id ("650204-00000042": 42), 0 when it has none. */
static int64_t number_of(const char *id)
{
    const char *dash = strrchr(id, '-');
    return dash ? strtoll(dash + 1, NULL, 10) : 0;
}

static struct og_case *add(struct og_cases *cs, const char *id, const char *district,
                           const char *area, const char *category)
{
    struct entry *e = calloc(1, sizeof(*e));
    if (!e)
        return NULL;
    snprintf(e->c.id, sizeof(e->c.id), "%s", id);
    snprintf(e->c.district, sizeof(e->c.district), "%s", district);
    snprintf(e->c.area, sizeof(e->c.area), "%s", area);
    e->c.category = strdup(category);
    if (!e->c.category) {
        free(e);
        return NULL;
    }
    e->c.contacts = 1;
    HASH_ADD_STR(cs->by_id, c.id, e);
    return &e->c;
}

static struct entry *entry_of(struct og_cases *cs, const char *id)
{
    struct entry *e;
    HASH_FIND_STR(cs->by_id, id, e);
    return e;
}

struct og_case *og_cases_find(struct og_cases *cs, const char *id)
{
    struct entry *e = entry_of(cs, id);
    return e ? &e->c : NULL;
}

static int bucket_key(const char *category, const char *area, char *key, size_t size)
{
    /* Reports only known at street or district level are too vague to merge. */
    if (strlen(area) < 12)
        return -EINVAL;
    return snprintf(key, size, "%s\x1f%.12s", category, area) < (int)size ? 0 : -EINVAL;
}

bool og_cases_takes_reports(const char *state)
{
    return !og_lifecycle_final(state) && strcmp(state, OG_STATE_RESOLVED) != 0 &&
           strcmp(state, OG_STATE_CHECKED) != 0;
}

int og_cases_index(struct og_cases *cs, struct og_case *c)
{
    char key[128];
    struct bucket *b;
    if (bucket_key(c->category, c->area, key, sizeof(key)) < 0)
        return 0;
    HASH_FIND_STR(cs->buckets, key, b);
    if (!b) {
        b = calloc(1, sizeof(*b));
        if (!b || !(b->key = strdup(key))) {
            free(b);
            return -ENOMEM;
        }
        HASH_ADD_KEYPTR(hh, cs->buckets, b->key, strlen(b->key), b);
    }
    for (size_t i = 0; i < b->n; i++)
        if (b->cases[i] == c) /* reopened before a merge lookup dropped it */
            return 0;
    if (b->n == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 4;
        struct og_case **v = realloc(b->cases, cap * sizeof(*v));
        if (!v)
            return -ENOMEM;
        b->cases = v;
        b->cap = cap;
    }
    b->cases[b->n++] = c;
    return 0;
}

/* Takes c out of the merge index: it leaves memory. */
static void unindex(struct og_cases *cs, const struct og_case *c)
{
    char key[128];
    struct bucket *b;
    if (bucket_key(c->category, c->area, key, sizeof(key)) < 0)
        return;
    HASH_FIND_STR(cs->buckets, key, b);
    if (!b)
        return;
    for (size_t i = 0; i < b->n;) {
        if (b->cases[i] == c)
            b->cases[i] = b->cases[--b->n];
        else
            i++;
    }
    if (b->n == 0) {
        HASH_DEL(cs->buckets, b);
        free(b->key);
        free(b->cases);
        free(b);
    }
}

double og_distance_m(double lat1, double lon1, double lat2, double lon2)
{
    const double r = 6371008.8, rad = M_PI / 180;
    double dlat = (lat2 - lat1) * rad, dlon = (lon2 - lon1) * rad;
    double a = sin(dlat / 2) * sin(dlat / 2) +
               cos(lat1 * rad) * cos(lat2 * rad) * sin(dlon / 2) * sin(dlon / 2);
    return 2 * r * atan2(sqrt(a), sqrt(1 - a));
}

static bool nested(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    return strncmp(a, b, la < lb ? la : lb) == 0;
}

struct og_case *og_cases_find_merge(struct og_cases *cs, const char *category, const char *area,
                                    bool has_location, double latitude, double longitude,
                                    int64_t occurred, const struct og_merge_rule *rule)
{
    char key[128];
    struct bucket *b;
    struct og_case *best = NULL;

    if (rule->window <= 0 || bucket_key(category, area, key, sizeof(key)) < 0)
        return NULL;
    HASH_FIND_STR(cs->buckets, key, b);
    if (!b)
        return NULL;
    /* Drop cases that no longer take reports while looking: the bucket stays small. */
    for (size_t i = 0; i < b->n;) {
        struct og_case *c = b->cases[i];
        if (!og_cases_takes_reports(c->state)) {
            b->cases[i] = b->cases[--b->n];
            continue;
        }
        i++;
        if (llabs(occurred - c->occurred) > rule->window || !nested(area, c->area))
            continue;
        if (has_location && c->has_location &&
            og_distance_m(latitude, longitude, c->latitude, c->longitude) > rule->distance_m)
            continue;
        /* The nearest in time; of two as near, the one opened first (the lower number of
         * its district: ids sort as they are numbered). Not the first in the bucket: its
         * order is memory's, which a restart changes. */
        long long dc = llabs(occurred - c->occurred),
                  db = best ? llabs(occurred - best->occurred) : 0;
        if (!best || dc < db || (dc == db && strcmp(c->id, best->id) < 0))
            best = c;
    }
    return best;
}

struct og_case *og_cases_open(struct og_cases *cs, const char *district, const char *area,
                              const char *category)
{
    struct seq *s = seq_of(cs, district);
    char id[32];
    if (!s)
        return NULL;
    snprintf(id, sizeof(id), "%s-%08" PRId64, district, s->last + 1);
    struct og_case *c = add(cs, id, district, area, category);
    if (c)
        s->last++;
    if (c && og_cases_index(cs, c) < 0)
        return NULL;
    return c;
}

static char *report_key(const char *source, const char *event_id)
{
    size_t n = strlen(source) + strlen(event_id) + 2;
    char *key = malloc(n);
    if (key)
        snprintf(key, n, "%s\x1f%s", source, event_id);
    return key;
}

/* Counts a merged report of case_id in or out, for eviction. */
static void count_report(struct og_cases *cs, const char *case_id, bool in)
{
    struct entry *e = entry_of(cs, case_id);
    if (!e)
        return;
    if (in)
        e->n_reports++;
    else if (e->n_reports > 0)
        e->n_reports--;
}

int og_cases_add_report(struct og_cases *cs, const char *source, const char *event_id,
                        const struct og_report *r)
{
    struct report_entry *e = calloc(1, sizeof(*e)), *old;
    if (!e || !(e->r.key = report_key(source, event_id))) {
        free(e);
        return -ENOMEM;
    }
    char *key = e->r.key;
    e->r = *r;
    e->r.key = key;
    HASH_FIND_STR(cs->reports, key, old);
    if (old) { /* a resend decided again after a reload: the newer record stands */
        count_report(cs, old->r.case_id, false);
        HASH_DEL(cs->reports, old);
        free(old->r.key);
        free(old);
    }
    HASH_ADD_KEYPTR(hh, cs->reports, e->r.key, strlen(e->r.key), e);
    count_report(cs, e->r.case_id, true);
    return 0;
}

struct og_report *og_cases_find_report(struct og_cases *cs, const char *source,
                                       const char *event_id)
{
    struct report_entry *e;
    char *key = report_key(source, event_id);
    if (!key)
        return NULL;
    HASH_FIND_STR(cs->reports, key, e);
    free(key);
    return e ? &e->r : NULL;
}

void og_cases_drop_report(struct og_cases *cs, struct og_report *r)
{
    struct report_entry *e = (struct report_entry *)((char *)r - offsetof(struct report_entry, r));
    count_report(cs, e->r.case_id, false);
    HASH_DEL(cs->reports, e);
    free(e->r.key);
    free(e);
}

int og_case_add_returned(struct og_case *c, const char *unit)
{
    char **v = realloc(c->returned_units, (c->n_returned + 1) * sizeof(*v));
    if (!v)
        return -ENOMEM;
    c->returned_units = v;
    if (!(v[c->n_returned] = strdup(unit)))
        return -ENOMEM;
    c->n_returned++;
    return 0;
}

int og_case_set_unit(struct og_case *c, const char *unit)
{
    char *u = unit ? strdup(unit) : NULL;
    if (unit && !u)
        return -ENOMEM;
    free(c->unit);
    c->unit = u;
    return 0;
}

/* Forgets case e and its merged reports. */
static void drop(struct og_cases *cs, struct entry *e)
{
    struct report_entry *r, *tr;

    if (!e)
        return;
    /* O(merged reports in memory), only for a case that has any. */
    if (e->n_reports > 0) {
        HASH_ITER(hh, cs->reports, r, tr)
        {
            if (strcmp(r->r.case_id, e->c.id) != 0)
                continue;
            HASH_DEL(cs->reports, r);
            free(r->r.key);
            free(r);
        }
    }
    unindex(cs, &e->c);
    if (cs->walk == e)
        cs->walk = e->hh.next;
    HASH_DEL(cs->by_id, e);
    free_case(&e->c);
    free(e);
}

struct og_case *og_cases_put(struct og_cases *cs, const struct og_case *c)
{
    struct og_case *k;
    char *category;

    if (entry_of(cs, c->id) || !(k = add(cs, c->id, c->district, c->area, c->category)))
        return NULL;
    category = k->category;
    *k = *c;
    k->category = category;
    k->unit = k->supervisor = NULL;
    k->returned_units = NULL;
    k->n_returned = 0;
    if ((c->unit && !(k->unit = strdup(c->unit))) ||
        (c->supervisor && !(k->supervisor = strdup(c->supervisor))))
        goto fail;
    for (size_t i = 0; i < c->n_returned; i++)
        if (og_case_add_returned(k, c->returned_units[i]) < 0)
            goto fail;
    if (number_after(cs, k->district, number_of(k->id)) < 0 ||
        (!og_lifecycle_final(k->state) && og_cases_index(cs, k) < 0))
        goto fail;
    return k;
fail:
    drop(cs, (struct entry *)k);
    return NULL;
}

void og_cases_hold(struct og_cases *cs, const char *id)
{
    struct entry *e = entry_of(cs, id);
    if (e)
        e->held++;
}

void og_cases_release(struct og_cases *cs, const char *id)
{
    struct entry *e = entry_of(cs, id);
    if (e && e->held > 0)
        e->held--;
    og_cases_evict(cs, id);
}

bool og_cases_evict(struct og_cases *cs, const char *id)
{
    struct entry *e = entry_of(cs, id);

    if (!e || e->held > 0 || !og_lifecycle_final(e->c.state))
        return false;
    drop(cs, e);
    return true;
}

void og_cases_walk_begin(struct og_cases *cs)
{
    cs->walk = cs->by_id;
    cs->walking = cs->walk != NULL;
}

bool og_cases_walking(const struct og_cases *cs)
{
    return cs->walking;
}

/* uthash keeps its elements in a list in the order they were added, which rehashing does
 * not change: a case added during the walk is visited (at its end), and drop moves the
 * walk past a case it forgets. */
int og_cases_walk(struct og_cases *cs, size_t max, int (*fn)(struct og_case *c, void *arg),
                  void *arg)
{
    for (size_t n = 0; n < max && cs->walk; n++) {
        struct entry *e = cs->walk;
        int rc = fn(&e->c, arg);
        if (rc != 0)
            return rc; /* the walk stays here: e is visited again by the next step */
        if (cs->walk == e)
            cs->walk = e->hh.next;
    }
    cs->walking = cs->walk != NULL;
    return 0;
}

size_t og_cases_count(const struct og_cases *cs)
{
    return HASH_COUNT(cs->by_id);
}

/* Loading and fetching ------------------------------------------------------------------ */

/* A time as whole seconds since 1970. date_part gives a double, a little cheaper than
 * extract's numeric (the load of 50,000 open cases took a tenth less of the server's time).
 * floor() of it is exact for any time before the year 2242, where a double's step grows
 * past a microsecond; deadlines and receipts are nowhere near. */
#define EPOCH(col) "floor(date_part('epoch', " col "))::bigint"

/* clang-format off */
#define CASE_COLUMNS                                                                               \
    "case_id, district_code, area_code, category_code, state, unit_code, "                         \
    "coalesce(rule_id, 0), coalesce(rule_version, 0), contacts, "                                  \
    EPOCH("opened_at") ", "                                                                        \
    EPOCH("deadline_at") ", "                                                                      \
    EPOCH("closed_at") ", escalation_level, supervisor_unit, latitude, longitude, "                \
    EPOCH("occurred_at") ", "                                                                      \
    "coalesce(severity, 0), "                                                                      \
    EPOCH("paused_at") ", "                                                                        \
    "coalesce(extension_days, 0), array_to_string(returned_units, chr(31)), "                      \
    EPOCH("clock_started_at") ", "                                                                 \
    EPOCH("extension_lapsed_at") ", "                                                              \
    EPOCH("lapsed_paused_at") ", "                                                                 \
    EPOCH("lapsed_paused_deadline_at") " "

#define REPORT_COLUMNS                                                                             \
    "r.source_system, r.source_event_id, r.case_id, r.area_code, "                                 \
    EPOCH("r.occurred_at") ", r.latitude, r.longitude, coalesce(r.severity, 0) "
/* clang-format on */

static int64_t secs(const PGresult *r, int row, int col)
{
    return PQgetisnull(r, row, col) ? 0 : strtoll(PQgetvalue(r, row, col), NULL, 10);
}

static char *text_or_null(const PGresult *r, int row, int col)
{
    return PQgetisnull(r, row, col) ? NULL : PQgetvalue(r, row, col);
}

/* Puts the case in row i of r (CASE_COLUMNS) into memory. 0 or -ENOMEM. */
static int put_row(struct og_cases *cs, const PGresult *r, int i)
{
    struct og_case k = {0};
    const char *returned = text_or_null(r, i, 20);
    char *units = NULL, **list = NULL;
    int rc = 0;

    snprintf(k.id, sizeof(k.id), "%s", PQgetvalue(r, i, 0));
    snprintf(k.district, sizeof(k.district), "%s", PQgetvalue(r, i, 1));
    snprintf(k.area, sizeof(k.area), "%s", PQgetvalue(r, i, 2));
    k.category = PQgetvalue(r, i, 3);
    snprintf(k.state, sizeof(k.state), "%s", PQgetvalue(r, i, 4));
    k.unit = text_or_null(r, i, 5);
    k.rule_id = secs(r, i, 6);
    k.rule_version = (int)secs(r, i, 7);
    k.contacts = (int)secs(r, i, 8);
    k.opened = secs(r, i, 9);
    k.deadline = secs(r, i, 10);
    k.closed = secs(r, i, 11);
    k.escalation_level = (int)secs(r, i, 12);
    k.supervisor = text_or_null(r, i, 13);
    if (!PQgetisnull(r, i, 14) && !PQgetisnull(r, i, 15)) {
        k.has_location = true;
        k.latitude = strtod(PQgetvalue(r, i, 14), NULL);
        k.longitude = strtod(PQgetvalue(r, i, 15), NULL);
    }
    k.occurred = secs(r, i, 16);
    k.severity = (int)secs(r, i, 17);
    k.paused_at = secs(r, i, 18);
    k.extension_days = (int)secs(r, i, 19);
    k.clock_started = secs(r, i, 21);
    k.lapsed_at = secs(r, i, 22);
    k.lapsed_paused_at = secs(r, i, 23);
    k.lapsed_paused_deadline = secs(r, i, 24);
    if (returned && *returned) {
        size_t n = 1;
        char *save = NULL;
        for (const char *p = returned; *p; p++)
            n += *p == '\x1f';
        if (!(units = strdup(returned)) || !(list = calloc(n, sizeof(*list)))) {
            rc = -ENOMEM;
            goto out;
        }
        for (char *u = strtok_r(units, "\x1f", &save); u; u = strtok_r(NULL, "\x1f", &save))
            list[k.n_returned++] = u;
        k.returned_units = list;
    }
    if (!og_cases_put(cs, &k))
        rc = -ENOMEM;
out:
    free(units);
    free(list);
    return rc;
}

/* Adds the merged report in row i of r (REPORT_COLUMNS). 0 or -ENOMEM. */
static int put_report_row(struct og_cases *cs, const PGresult *r, int i)
{
    struct og_report rep = {0};
    snprintf(rep.case_id, sizeof(rep.case_id), "%s", PQgetvalue(r, i, 2));
    snprintf(rep.area, sizeof(rep.area), "%s", PQgetvalue(r, i, 3));
    rep.occurred = secs(r, i, 4);
    if (!PQgetisnull(r, i, 5) && !PQgetisnull(r, i, 6)) {
        rep.has_location = true;
        rep.latitude = strtod(PQgetvalue(r, i, 5), NULL);
        rep.longitude = strtod(PQgetvalue(r, i, 6), NULL);
    }
    rep.severity = (int)secs(r, i, 7);
    return og_cases_add_report(cs, PQgetvalue(r, i, 0), PQgetvalue(r, i, 1), &rep);
}

/* Runs sql in single-row mode and passes each row to put as it arrives, so that no result
 * ever holds the shard. After a failure the remaining results are still read: the
 * connection stays usable. 0, or -EIO or -ENOMEM with err filled. */
static int stream(struct og_cases *cs, PGconn *c, const char *sql, int n, const char *const *params,
                  int (*put)(struct og_cases *, const PGresult *, int), char *err, size_t errlen)
{
    PGresult *r;
    int rc = 0;

    if (!PQsendQueryParams(c, sql, n, NULL, params, NULL, NULL, 0))
        return og_db_error(c, NULL, err, errlen);
    PQsetSingleRowMode(c); /* were it refused, the rows would come in one result: fine too */
    while ((r = PQgetResult(c))) {
        ExecStatusType st = PQresultStatus(r);
        if (st == PGRES_SINGLE_TUPLE || st == PGRES_TUPLES_OK) {
            for (int i = 0; rc == 0 && i < PQntuples(r); i++)
                if ((rc = put(cs, r, i)) < 0)
                    snprintf(err, errlen, "out of memory loading cases");
        } else if (rc == 0) {
            rc = og_db_error(c, r, err, errlen);
        }
        PQclear(r);
    }
    return rc;
}

/* A case's number, as index og.case_number (deploy/sql/030_dispatch_start.sql) has it,
 * spelt the same, or the planner does not use the index: NULL for an id that is not
 * "DISTRICT-NUMBER" (og_cases_open makes none). */
#define CASE_NUMBER                                                                                \
    "(CASE WHEN starts_with(case_id, district_code || '-') "                                       \
    "AND substr(case_id, length(district_code) + 2) ~ '^[0-9]{1,18}$' "                            \
    "THEN substr(case_id, length(district_code) + 2)::bigint END)"

/* Each district's highest case number, closed cases included: numbering goes on above
 * it. Read from the end of each district's range of og.case_number, the districts found
 * by skipping through it (one pass over the shard's rows took 0.3 s to 1 s at a million
 * cases, and grew with the closed cases). And above the floor of the database's
 * generation: after a restore, the numbers the lost time gave are taken, in every
 * district, one with no case left included (first row). */
static int load_numbers(struct og_cases *cs, PGconn *c, const char *shard, char *err, size_t errlen)
{
    const char *params[] = {shard};
    PGresult *r = og_db_query(c,
                              "WITH RECURSIVE d(code) AS ("
                              " SELECT min(district_code) FROM og.case WHERE shard = $1"
                              " UNION ALL"
                              " SELECT (SELECT min(k.district_code) FROM og.case k"
                              "          WHERE k.shard = $1 AND k.district_code > d.code)"
                              "   FROM d WHERE d.code IS NOT NULL), "
                              "n(code, last) AS ("
                              " SELECT d.code, (SELECT max" CASE_NUMBER " FROM og.case"
                              "                  WHERE shard = $1 AND district_code = d.code)"
                              "   FROM d WHERE d.code IS NOT NULL) "
                              "SELECT NULL, og.generation_moved('case_number') "
                              "UNION ALL "
                              "SELECT code, last FROM n WHERE last IS NOT NULL "
                              "ORDER BY 1 NULLS FIRST",
                              1, params, err, errlen);
    int rc = 0;

    if (!r)
        return -EIO;
    if (PQntuples(r) < 1 || !PQgetisnull(r, 0, 0)) {
        PQclear(r);
        snprintf(err, errlen, "no case number floor read (og.database_generation)");
        return -EIO;
    }
    cs->floor = secs(r, 0, 1);
    for (int i = 1; rc == 0 && i < PQntuples(r); i++)
        if ((rc = number_after(cs, PQgetvalue(r, i, 0), secs(r, i, 1))) < 0)
            snprintf(err, errlen, "out of memory loading case numbers");
    PQclear(r);
    return rc;
}

int og_cases_load(struct og_cases *cs, PGconn *c, const char *shard, char *err, size_t errlen)
{
    const char *params[] = {shard};
    int rc = load_numbers(cs, c, shard, err, errlen);

    if (rc == 0)
        rc = stream(cs, c,
                    "SELECT " CASE_COLUMNS "FROM og.case WHERE shard = $1 AND stage <> 'final'", 1,
                    params, put_row, err, errlen);
    /* The reports merged into them: an operator may split one off (拆分). A closed case's
     * come with it when an event fetches it. "stage <> 'final'" and "joined = 'merged'"
     * are the predicates of indexes og.case_open and og.case_report_joined_merged (030):
     * the queries read the open cases and the merged reports, not the shard's record. The
     * stage alone says final (og_lifecycle_stage wrote it): the state's test as well made
     * PostgreSQL count the open cases twice over, 2,445 expected of 50,154 at 1M. */
    if (rc == 0)
        rc = stream(cs, c,
                    "SELECT " REPORT_COLUMNS "FROM og.case_report r JOIN og.case k USING (case_id) "
                    "WHERE k.shard = $1 AND k.stage <> 'final' AND r.joined = 'merged'",
                    1, params, put_report_row, err, errlen);
    return rc;
}

int og_cases_fetch(struct og_cases *cs, PGconn *c, const char *shard, const char *id, char *err,
                   size_t errlen)
{
    const char *params[] = {id, shard};
    PGresult *r;
    int rc;

    if (og_cases_find(cs, id))
        return 1;
    r = og_db_query(c, "SELECT " CASE_COLUMNS "FROM og.case WHERE case_id = $1 AND shard = $2", 2,
                    params, err, errlen);
    if (!r)
        return -EIO;
    rc = PQntuples(r) == 0 ? 0 : put_row(cs, r, 0) < 0 ? -ENOMEM : 1;
    PQclear(r);
    if (rc == 1) {
        /* Its merged reports: reopened (不满意), it may have one split off. */
        r = og_db_query(c,
                        "SELECT " REPORT_COLUMNS "FROM og.case_report r "
                        "WHERE r.case_id = $1 AND r.joined = 'merged'",
                        1, params, err, errlen);
        if (!r)
            rc = -EIO;
        for (int i = 0; r && rc == 1 && i < PQntuples(r); i++)
            if (put_report_row(cs, r, i) < 0)
                rc = -ENOMEM;
        PQclear(r);
        if (rc < 0) /* never half a case: the next attempt fetches it whole */
            drop(cs, entry_of(cs, id));
    }
    if (rc == -ENOMEM)
        snprintf(err, errlen, "out of memory fetching case %s", id);
    return rc;
}
