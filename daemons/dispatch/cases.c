#include "dispatch.h"

#include <errno.h>
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

struct og_cases {
    struct entry *by_id;
    struct seq *seqs;
};

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
        free(e->c.category);
        free(e->c.unit);
        free(e->c.supervisor);
        free(e);
    }
    HASH_ITER(hh, cs->seqs, s, ts)
    {
        HASH_DEL(cs->seqs, s);
        free(s);
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
    return c;
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

int og_cases_load(struct og_cases *cs, PGconn *c, const char *shard, char *err, size_t errlen)
{
    const char *params[] = {shard};
    PGresult *r =
        PQexecParams(c,
                     "SELECT case_id, district_code, area_code, category_code, state, unit_code, "
                     "coalesce(rule_id, 0), coalesce(rule_version, 0), contacts, "
                     "floor(extract(epoch FROM opened_at))::bigint, "
                     "floor(extract(epoch FROM deadline_at))::bigint, "
                     "floor(extract(epoch FROM closed_at))::bigint "
                     "FROM og.case WHERE shard = $1",
                     1, NULL, params, NULL, NULL, 0);
    int rc = 0;

    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        rc = og_db_error(c, r, err, errlen);
        PQclear(r);
        return rc;
    }
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
        if (dash && strtol(dash + 1, NULL, 10) > s->last)
            s->last = strtol(dash + 1, NULL, 10);
    }
    PQclear(r);
    return rc;
}
