#include "dispatch.h"

#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uthash.h>

#include "db.h"

struct entry {
    struct og_case c;
    UT_hash_handle hh;
};

struct seq { /* the last case number used in a district */
    char district[8];
    long last;
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
    struct bucket *buckets;
    struct report_entry *reports; /* merged reports, by "source\x1fevent id" */
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
    HASH_ADD_STR(cs->seqs, district, s);
    return s;
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

struct og_case *og_cases_find(struct og_cases *cs, const char *id)
{
    struct entry *e;
    HASH_FIND_STR(cs->by_id, id, e);
    return e ? &e->c : NULL;
}

static int bucket_key(const char *category, const char *area, char *key, size_t size)
{
    /* Reports only known at street or district level are too vague to merge. */
    if (strlen(area) < 12)
        return -EINVAL;
    return snprintf(key, size, "%s\x1f%.12s", category, area) < (int)size ? 0 : -EINVAL;
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
        if (og_lifecycle_final(c->state) || strcmp(c->state, OG_STATE_RESOLVED) == 0 ||
            strcmp(c->state, OG_STATE_CHECKED) == 0) {
            b->cases[i] = b->cases[--b->n];
            continue;
        }
        i++;
        if (llabs(occurred - c->occurred) > rule->window || !nested(area, c->area))
            continue;
        if (has_location && c->has_location &&
            og_distance_m(latitude, longitude, c->latitude, c->longitude) > rule->distance_m)
            continue;
        if (!best || llabs(occurred - c->occurred) < llabs(occurred - best->occurred))
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
    snprintf(id, sizeof(id), "%s-%08ld", district, s->last + 1);
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
        HASH_DEL(cs->reports, old);
        free(old->r.key);
        free(old);
    }
    HASH_ADD_KEYPTR(hh, cs->reports, e->r.key, strlen(e->r.key), e);
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

int og_cases_each(struct og_cases *cs, int (*fn)(struct og_case *c, void *arg), void *arg)
{
    struct entry *e, *t;
    int rc = 0;
    HASH_ITER(hh, cs->by_id, e, t)
    {
        if ((rc = fn(&e->c, arg)) != 0)
            break;
    }
    return rc;
}

size_t og_cases_count(const struct og_cases *cs)
{
    return HASH_COUNT(cs->by_id);
}

static int64_t secs(const PGresult *r, int row, int col)
{
    return PQgetisnull(r, row, col) ? 0 : strtoll(PQgetvalue(r, row, col), NULL, 10);
}

/* The reports merged into the shard's cases, as memory holds them since the merge: a
 * closed case may be reopened (不满意) and its reports split off then. Evaluated and
 * voided cases never open again. */
static int load_reports(struct og_cases *cs, PGconn *c, const char *shard, char *err, size_t errlen)
{
    const char *params[] = {shard};
    PGresult *r = og_db_query(c,
                              "SELECT r.source_system, r.source_event_id, r.case_id, r.area_code, "
                              "floor(extract(epoch FROM r.occurred_at))::bigint, r.latitude, "
                              "r.longitude, coalesce(r.severity, 0) "
                              "FROM og.case_report r JOIN og.case k USING (case_id) "
                              "WHERE k.shard = $1 AND r.joined = 'merged' "
                              "AND k.state NOT IN ('evaluated', 'voided')",
                              1, params, err, errlen);
    int rc = 0;

    if (!r)
        return -EIO;
    for (int i = 0; i < PQntuples(r) && rc == 0; i++) {
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
        if ((rc = og_cases_add_report(cs, PQgetvalue(r, i, 0), PQgetvalue(r, i, 1), &rep)) < 0)
            snprintf(err, errlen, "out of memory loading merged reports");
    }
    PQclear(r);
    return rc;
}

int og_cases_load(struct og_cases *cs, PGconn *c, const char *shard, char *err, size_t errlen)
{
    const char *params[] = {shard};
    PGresult *r = og_db_query(
        c,
        "SELECT case_id, district_code, area_code, category_code, state, unit_code, "
        "coalesce(rule_id, 0), coalesce(rule_version, 0), contacts, "
        "floor(extract(epoch FROM opened_at))::bigint, "
        "floor(extract(epoch FROM deadline_at))::bigint, "
        "floor(extract(epoch FROM closed_at))::bigint, escalation_level, supervisor_unit, "
        "latitude, longitude, floor(extract(epoch FROM occurred_at))::bigint, "
        "coalesce(severity, 0), floor(extract(epoch FROM paused_at))::bigint, "
        "coalesce(extension_days, 0), array_to_string(returned_units, chr(31)) "
        "FROM og.case WHERE shard = $1",
        1, params, err, errlen);
    int rc = 0;

    if (!r)
        return -EIO;
    for (int i = 0; i < PQntuples(r); i++) {
        const char *id = PQgetvalue(r, i, 0), *district = PQgetvalue(r, i, 1);
        struct og_case *k = add(cs, id, district, PQgetvalue(r, i, 2), PQgetvalue(r, i, 3));
        struct seq *s = seq_of(cs, district);
        const char *dash = strrchr(id, '-');
        if (!k || !s || og_case_set_unit(k, PQgetisnull(r, i, 5) ? NULL : PQgetvalue(r, i, 5))) {
            rc = -ENOMEM;
            snprintf(err, errlen, "out of memory loading cases");
            break;
        }
        snprintf(k->state, sizeof(k->state), "%s", PQgetvalue(r, i, 4));
        k->rule_id = secs(r, i, 6);
        k->rule_version = (int)secs(r, i, 7);
        k->contacts = (int)secs(r, i, 8);
        k->opened = secs(r, i, 9);
        k->deadline = secs(r, i, 10);
        k->closed = secs(r, i, 11);
        k->escalation_level = (int)secs(r, i, 12);
        if (!PQgetisnull(r, i, 13) && !(k->supervisor = strdup(PQgetvalue(r, i, 13)))) {
            rc = -ENOMEM;
            snprintf(err, errlen, "out of memory loading cases");
            break;
        }
        k->occurred = secs(r, i, 16);
        if (!PQgetisnull(r, i, 14) && !PQgetisnull(r, i, 15)) {
            k->has_location = true;
            k->latitude = strtod(PQgetvalue(r, i, 14), NULL);
            k->longitude = strtod(PQgetvalue(r, i, 15), NULL);
        }
        k->severity = (int)secs(r, i, 17);
        k->paused_at = secs(r, i, 18);
        k->extension_days = (int)secs(r, i, 19);
        if (!PQgetisnull(r, i, 20) && *PQgetvalue(r, i, 20)) {
            char *units = PQgetvalue(r, i, 20), *save = NULL;
            for (char *u = strtok_r(units, "\x1f", &save); u; u = strtok_r(NULL, "\x1f", &save))
                if (og_case_add_returned(k, u) < 0) {
                    rc = -ENOMEM;
                    break;
                }
            if (rc < 0) {
                snprintf(err, errlen, "out of memory loading cases");
                break;
            }
        }
        if (!og_lifecycle_final(k->state) && og_cases_index(cs, k) < 0) {
            rc = -ENOMEM;
            snprintf(err, errlen, "out of memory loading cases");
            break;
        }
        if (dash && strtol(dash + 1, NULL, 10) > s->last)
            s->last = strtol(dash + 1, NULL, 10);
    }
    PQclear(r);
    return rc < 0 ? rc : load_reports(cs, c, shard, err, errlen);
}
