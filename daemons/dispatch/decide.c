#include "dispatch.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"
#include "validate.h"

static int set_str(char **dst, const char *s)
{
    char *copy = strdup(s ? s : "");
    if (!copy)
        return -ENOMEM;
    *dst = copy;
    return 0;
}

static Onegrid__V1__Timestamp *ts(int64_t seconds)
{
    Onegrid__V1__Timestamp *t;
    if (seconds == 0)
        return NULL;
    t = malloc(sizeof(*t));
    if (t) {
        onegrid__v1__timestamp__init(t);
        t->seconds = seconds;
    }
    return t;
}

static int refuse(Onegrid__V1__Decision *d, Onegrid__V1__Reason reason, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int refuse(Onegrid__V1__Decision *d, Onegrid__V1__Reason reason, const char *fmt, ...)
{
    /* As long as archive stores and answers: a subject of 64 four-byte characters quoted
     * in it left no room for the rest of the text in 256 bytes (review). */
    char text[OG_REFUSAL_TEXT_MAX + 1];
    va_list ap;
    Onegrid__V1__Nack *n = malloc(sizeof(*n));
    if (!n)
        return -ENOMEM;
    onegrid__v1__nack__init(n);
    va_start(ap, fmt);
    og_safe_vformat(text, sizeof(text), fmt, ap); /* on a character boundary */
    va_end(ap);
    n->reason = reason;
    d->kind = ONEGRID__V1__DECISION__KIND__KIND_REJECT;
    d->rejection = n;
    return set_str(&n->text, text);
}

/* Describes case c, as it now is, in d (which then carries absolute values only). */
static int describe(Onegrid__V1__Decision *d, const struct og_case *c, const char *previous,
                    int64_t now)
{
    d->decided = ts(now);
    if (!d->decided)
        return -ENOMEM;
    d->rule_id = c->rule_id;
    d->rule_version = c->rule_version;
    d->contacts = c->contacts;
    d->escalation_level = c->escalation_level;
    d->opened = ts(c->opened);
    d->deadline = ts(c->deadline);
    d->closed = ts(c->closed);
    d->severity = c->severity;
    d->paused_at = ts(c->paused_at);
    d->extension_days = c->paused_at ? c->extension_days : 0;
    d->clock_started = ts(c->deadline ? c->clock_started : 0);
    d->extension_lapsed = ts(c->lapsed_at);
    d->lapsed_paused_at = ts(c->lapsed_at ? c->lapsed_paused_at : 0);
    d->lapsed_paused_deadline = ts(c->lapsed_at ? c->lapsed_paused_deadline : 0);
    if ((c->paused_at && !d->paused_at) || (c->deadline && c->clock_started && !d->clock_started) ||
        (c->lapsed_at && !d->extension_lapsed) ||
        (c->lapsed_at && c->lapsed_paused_at && !d->lapsed_paused_at) ||
        (c->lapsed_at && c->lapsed_paused_deadline && !d->lapsed_paused_deadline))
        return -ENOMEM;
    if (c->n_returned) {
        d->returned_units = calloc(c->n_returned, sizeof(*d->returned_units));
        if (!d->returned_units)
            return -ENOMEM;
        for (size_t i = 0; i < c->n_returned; i++, d->n_returned_units++)
            if (set_str(&d->returned_units[i], c->returned_units[i]))
                return -ENOMEM;
    }
    if (set_str(&d->case_id, c->id) || set_str(&d->district, c->district) ||
        set_str(&d->grid, c->area) || set_str(&d->category, c->category) ||
        set_str(&d->unit, c->unit) || set_str(&d->state, c->state) ||
        set_str(&d->supervisor, c->supervisor) || set_str(&d->previous_state, previous) ||
        set_str(&d->stage, og_lifecycle_stage(c->state)) ||
        set_str(&d->clock, og_lifecycle_clock(c)) || (c->opened && !d->opened) ||
        (c->deadline && !d->deadline) || (c->closed && !d->closed))
        return -ENOMEM;
    return 0;
}

/* The time limit of case c's stages: the catalogue's limit for its CAP severity where
 * there is one, else its category's. False when the category is unknown. */
static bool case_limit(const struct og_decider *dc, const struct og_case *c, int *limit,
                       const char **unit)
{
    const struct og_category_info *cat = og_registry_category(dc->reg, c->category);
    if (!cat)
        return false;
    *limit = cat->time_limit;
    *unit = cat->time_unit;
    if (c->severity)
        og_registry_severity_limit(dc->reg, c->category, c->severity, limit, unit);
    return true;
}

/* The pause a lapse ended (lapse, unlapse) is kept only until the clock changes again
 * otherwise: a new clock, a pause ended, days granted, the clock stopped. A decision on
 * the lapsed request that comes later then leaves the clock as it is: recomputing from
 * that pause would undo the change (review: a return's new clock, due at the same close
 * as the lapse's, was moved back a day). */
static void forget_lapsed_pause(struct og_case *c)
{
    c->lapsed_paused_at = 0;
    c->lapsed_paused_deadline = 0;
}

/* Starts a new clock for c at now (filing, re-routing, reopening, a meeting's assignment). */
static void new_clock(struct og_decider *dc, struct og_case *c, int64_t now)
{
    int limit;
    const char *unit;
    c->deadline = case_limit(dc, c, &limit, &unit)
                      ? og_calendar_deadline(og_registry_calendar(dc->reg), now, limit, unit)
                      : 0;
    c->clock_started = c->deadline ? now : 0;
    c->paused_at = 0;
    c->extension_days = 0;
    forget_lapsed_pause(c);
}

/* The deadline c's paused clock would have if it ran again from now. */
static int64_t resumed_deadline(const struct og_decider *dc, const struct og_case *c, int64_t now)
{
    int limit;
    const char *unit = "hours";
    case_limit(dc, c, &limit, &unit);
    return og_calendar_resume(og_registry_calendar(dc->reg), c->deadline, c->paused_at, now, unit);
}

/* A paused clock runs again from now with the time it had left. */
static void resume_clock(struct og_decider *dc, struct og_case *c, int64_t now)
{
    if (!c->paused_at)
        return;
    int64_t before = c->deadline;
    c->deadline = resumed_deadline(dc, c, now);
    /* The time limit it runs against is the same length: the pause is not time used. */
    if (c->clock_started)
        c->clock_started += c->deadline - before;
    c->paused_at = 0;
    c->extension_days = 0;
    forget_lapsed_pause(c);
}

/* c's pending extension request lapses undecided at `at`: its clock runs again from then.
 * The pause is kept (lapsed_paused_*) for a decision on the request that was received
 * before then but comes after (unlapse). */
static void lapse(struct og_decider *dc, struct og_case *c, int64_t at)
{
    int64_t paused_at = c->paused_at, paused_deadline = c->deadline;
    resume_clock(dc, c, at);
    c->lapsed_at = at;
    c->lapsed_paused_at = paused_at;
    c->lapsed_paused_deadline = paused_deadline;
}

/* A step (a supervisor's approval or refusal, the unit's own next step) that intake
 * received at `received`, while c's last request was pending, decided after the lapse was
 * recorded: the clock runs again as of its receipt, as if it had come first, not as of
 * the lapse (which gave the unit the time in between). If the unit has asked again since,
 * the paused clock is that one's. Only while the pause the lapse ended is kept
 * (forget_lapsed_pause) and the deadline is still the one the lapse left; not where the
 * case does not know the pause (a lapse recorded before migration 029), or this was
 * received before that request was made. Once: the pause is forgotten. */
static void unlapse(struct og_decider *dc, struct og_case *c, int64_t received)
{
    if (!c->lapsed_paused_at || !c->lapsed_paused_deadline || received < c->lapsed_paused_at ||
        received >= c->lapsed_at)
        return;
    struct og_case was = *c;
    was.deadline = c->lapsed_paused_deadline;
    was.paused_at = c->lapsed_paused_at;
    if (resumed_deadline(dc, &was, c->lapsed_at) == c->deadline) {
        int64_t before = c->deadline;
        c->deadline = resumed_deadline(dc, &was, received);
        if (c->clock_started)
            c->clock_started += c->deadline - before;
    }
    forget_lapsed_pause(c);
}

/* The same, recorded by decision d of the unit's next step, which came before dispatch's
 * scan recorded the lapse: d says the deadline the lapse left (lapse_deadline), as the
 * step may move it again. */
static int lapse_recorded(struct og_decider *dc, struct og_case *c, int64_t at,
                          Onegrid__V1__Decision *d)
{
    lapse(dc, c, at);
    if (c->deadline && !(d->lapse_deadline = ts(c->deadline)))
        return -ENOMEM;
    return 0;
}

/* Supervision (督办) starts over: no level, no supervising unit. */
static void clear_supervision(struct og_case *c)
{
    c->escalation_level = 0;
    free(c->supervisor);
    c->supervisor = NULL;
}

/* True when unit supervises case c: the unit registered for its community, street or
 * district (the ones it escalates to), who approve or refuse its extensions. */
static bool supervises(const struct og_decider *dc, const struct og_case *c, const char *unit)
{
    static const int prefix[] = {12, 9, 6};
    for (size_t i = 0; i < sizeof(prefix) / sizeof(prefix[0]); i++) {
        char area[OG_CODE_MAX];
        snprintf(area, sizeof(area), "%.*s", prefix[i], c->area);
        const char *s = og_registry_supervisor(dc->reg, area);
        if (s && strcmp(s, unit) == 0)
            return true;
    }
    return false;
}

static int open_case(struct og_decider *dc, const Onegrid__V1__Submission *s, const char *subject,
                     const char *category, int64_t now, Onegrid__V1__Decision *d)
{
    const char *area, *district;
    const struct og_rule *rule;
    struct og_case *c;

    area = og_registry_map(dc->reg, s->source, subject);
    if (!area)
        return refuse(d, ONEGRID__V1__REASON__REASON_UNKNOWN_GRID,
                      "subject: \"%s\" is not a grid id of source \"%s\" in the crosswalk", subject,
                      s->source);
    district = og_registry_district(dc->reg, area);
    if (!district || strncmp(area, dc->shard, strlen(dc->shard)) != 0)
        return refuse(d, ONEGRID__V1__REASON__REASON_UNKNOWN_GRID,
                      "subject: \"%s\" maps to area %s, outside this dispatch's shard %s", subject,
                      area, dc->shard);
    if (!og_registry_category(dc->reg, category))
        return refuse(d, ONEGRID__V1__REASON__REASON_UNKNOWN_CATEGORY,
                      "category: \"%s\" is not in the category catalogue", category);
    const struct og_category_info *cat = og_registry_category(dc->reg, category);
    const Onegrid__V1__Location *loc = s->event->location;
    int64_t occurred = s->event->time ? s->event->time->seconds : now;
    bool on_spot = s->event->payload_case == ONEGRID__V1__ENVELOPE__PAYLOAD_REPORT &&
                   s->event->report->handled_on_spot;
    if (on_spot && strcmp(cat->unit_level, "community") != 0 &&
        strcmp(cat->unit_level, "grid") != 0)
        return refuse(d, ONEGRID__V1__REASON__REASON_INVALID_FIELD,
                      "report.handled_on_spot: %s is handled at %s level, not by the community",
                      category, cat->unit_level);
    /* 最多跑一次: the same problem reported again, by any grid system, joins its case. A
     * report handled on the spot is its own, finished case. */
    c = on_spot
            ? NULL
            : og_cases_find_merge(dc->cases, category, area, loc != NULL, loc ? loc->latitude : 0,
                                  loc ? loc->longitude : 0, occurred, &dc->merge);
    int severity = 0;
    if (s->event->payload_case == ONEGRID__V1__ENVELOPE__PAYLOAD_SENSOR_ALERT)
        severity = s->event->sensor_alert->severity;
    else if (s->event->payload_case == ONEGRID__V1__ENVELOPE__PAYLOAD_REPORT)
        severity = s->event->report->severity;
    if (c) {
        /* Remember the report's own facts: an operator may split it off again. */
        struct og_report rep = {.occurred = occurred, .severity = severity};
        snprintf(rep.case_id, sizeof(rep.case_id), "%s", c->id);
        snprintf(rep.area, sizeof(rep.area), "%s", area);
        if (loc) {
            rep.has_location = true;
            rep.latitude = loc->latitude;
            rep.longitude = loc->longitude;
        }
        if (og_cases_add_report(dc->cases, s->source, s->event->id, &rep) < 0)
            return -ENOMEM;
        c->contacts++;
        d->kind = ONEGRID__V1__DECISION__KIND__KIND_MERGE;
        if (describe(d, c, c->state, now) < 0 || set_str(&d->report_area, area) < 0)
            return -ENOMEM;
        return 0;
    }
    /* A report its source places only in a community (or a street) opens its case on the
     * grid whose boundary holds its position, when exactly one does; a grid the source
     * names stays (og_registry_locate never leaves area). Merging above compared the
     * area the crosswalk gave. */
    if (loc) {
        const char *grid = og_registry_locate(dc->reg, area, loc->latitude, loc->longitude);
        if (grid)
            area = grid;
    }
    c = og_cases_open(dc->cases, district, area, category);
    if (!c)
        return -ENOMEM;
    c->opened = now;
    c->occurred = occurred;
    if (loc) {
        c->has_location = true;
        c->latitude = loc->latitude;
        c->longitude = loc->longitude;
    }
    /* The clock starts at filing: the category's time limit on the working calendar, or
     * the catalogue's limit for the hazard's CAP severity where it gives one; the case
     * keeps its severity for every later clock. */
    c->severity = severity;
    new_clock(dc, c, now);
    rule = og_registry_route(dc->reg, category, area, now);
    if (on_spot) {
        /* 社区自办: the community's own unit handled it; the case is closed as it opens. */
        char community[13];
        snprintf(community, sizeof(community), "%.12s", area);
        const char *unit = og_registry_supervisor(dc->reg, community);
        if (og_case_set_unit(c, unit ? unit : rule ? rule->unit : NULL))
            return -ENOMEM;
        c->rule_id = !unit && rule ? rule->id : 0;
        c->rule_version = !unit && rule ? rule->version : 0;
        c->closed = now;
        snprintf(c->state, sizeof(c->state), "%s", OG_STATE_CLOSED);
    } else if (rule) {
        if (og_case_set_unit(c, rule->unit))
            return -ENOMEM;
        c->rule_id = rule->id;
        c->rule_version = rule->version;
        snprintf(c->state, sizeof(c->state), "%s", OG_STATE_DISPATCHED);
    } else {
        /* No rule: the case is filed and waits for an operator to route it. */
        snprintf(c->state, sizeof(c->state), "%s", OG_STATE_REPORTED);
    }
    d->kind = ONEGRID__V1__DECISION__KIND__KIND_OPEN_CASE;
    return describe(d, c, "", now);
}

/* Case id, from memory or else from the database (a final case). NULL with *rc set: a
 * refusal (0, UNKNOWN_CASE in d) or the fetch's failure (negative, d untouched). */
static struct og_case *find_case(struct og_decider *dc, const char *id, Onegrid__V1__Decision *d,
                                 int *rc)
{
    struct og_case *c = og_cases_find(dc->cases, id);
    if (!c && dc->fetch) {
        if ((*rc = dc->fetch(dc->fetch_arg, id)) < 0)
            return NULL;
        c = og_cases_find(dc->cases, id);
    }
    if (!c)
        *rc = refuse(d, ONEGRID__V1__REASON__REASON_UNKNOWN_CASE,
                     "case_id: \"%s\" is not a case of shard %s", id, dc->shard);
    return c;
}

static int move(struct og_case *c, const char *next, int64_t now, Onegrid__V1__Decision *d)
{
    char previous[sizeof(c->state)];
    snprintf(previous, sizeof(previous), "%s", c->state);
    snprintf(c->state, sizeof(c->state), "%s", next);
    if (strcmp(next, OG_STATE_CLOSED) == 0)
        c->closed = now;
    else if (!og_lifecycle_final(next))
        c->closed = 0;
    d->kind = ONEGRID__V1__DECISION__KIND__KIND_UPDATE_CASE;
    return describe(d, c, previous, now);
}

/* 调解: the written agreement a dispute was resolved with goes on record in the decision,
 * with the day its follow-up visit (回访) is due. */
static int record_mediation(const Onegrid__V1__Mediation *m, Onegrid__V1__Decision *d)
{
    size_t len = protobuf_c_message_get_packed_size(&m->base);
    uint8_t *buf = malloc(len ? len : 1);
    if (!buf)
        return -ENOMEM;
    protobuf_c_message_pack(&m->base, buf);
    d->mediation = onegrid__v1__mediation__unpack(NULL, len, buf);
    free(buf);
    d->follow_up_due = ts(m->agreement_date->seconds + (int64_t)m->follow_up_days * 86400);
    return d->mediation && d->follow_up_due ? 0 : -ENOMEM;
}

/* 退回: the unit says the case is not its remit. Re-route it at once: the best rule that
 * names a unit that has not returned it yet, else the district's supervising unit (if it
 * has not returned it either); the case gets a new clock. With neither it stays
 * "returned", unassigned, for a joint meeting or an operator, on the clock and with the
 * supervision it had (both run on: it escalates) — a case never bounces back
 * to a unit that returned it. The decision records who returned it, so returns are
 * counted (退回率, 准确派遣率). */
static int reroute(struct og_decider *dc, struct og_case *c, int64_t now, Onegrid__V1__Decision *d)
{
    char previous[sizeof(c->state)], district[8];
    char *returned_by = c->unit;
    int rc;

    if (og_case_add_returned(c, returned_by) < 0)
        return -ENOMEM;
    const struct og_rule *rule = og_registry_route_except(dc->reg, c->category, c->area, now,
                                                          c->returned_units, c->n_returned);
    const char *unit = rule ? rule->unit : NULL;
    snprintf(previous, sizeof(previous), "%s", c->state);
    snprintf(district, sizeof(district), "%.6s", c->area);
    if (!unit) {
        unit = og_registry_supervisor(dc->reg, district);
        for (size_t i = 0; unit && i < c->n_returned; i++)
            if (strcmp(unit, c->returned_units[i]) == 0)
                unit = NULL;
    }
    c->unit = unit ? strdup(unit) : NULL;
    if (unit && !c->unit) {
        c->unit = returned_by;
        return -ENOMEM;
    }
    c->rule_id = rule ? rule->id : 0;
    c->rule_version = rule ? rule->version : 0;
    snprintf(c->state, sizeof(c->state), "%s", unit ? OG_STATE_DISPATCHED : OG_STATE_RETURNED);
    /* A new holder gets a new clock, and supervision starts over with it. With nobody to
     * take it the last holder's clock runs on, and so does its supervision: started over
     * under the same deadline, the next escalation would repeat one made already (its id
     * names the level and the deadline), a duplicate never stored. */
    if (unit) {
        new_clock(dc, c, now);
        clear_supervision(c);
    }
    d->kind = ONEGRID__V1__DECISION__KIND__KIND_UPDATE_CASE;
    rc = describe(d, c, previous, now);
    if (rc == 0)
        rc = set_str(&d->returned_by, returned_by);
    free(returned_by);
    return rc < 0 ? -ENOMEM : 0;
}

/* 联席会: a joint meeting assigns shelved demand-list cases to a unit (on a new clock) or
 * closes them. All or nothing: one case that is unknown or not shelved refuses the event.
 * The first case's decision goes in d, the others in dc->more. */
static int meeting(struct og_decider *dc, const Onegrid__V1__MeetingDecision *m, int64_t now,
                   Onegrid__V1__Decision *d)
{
    bool assign = m->action == ONEGRID__V1__MEETING_DECISION__ACTION__ACTION_ASSIGN;
    int rc = 0;

    if (assign && !og_registry_has_unit(dc->reg, m->unit))
        return refuse(d, ONEGRID__V1__REASON__REASON_UNKNOWN_UNIT,
                      "decision.unit: \"%s\" is not a registered handling unit", m->unit);
    for (size_t i = 0; i < m->n_case_ids; i++) {
        struct og_case *c = find_case(dc, m->case_ids[i], d, &rc);
        if (!c)
            return rc;
        /* Besides the demand list, a meeting may give a unit a case nobody holds: one
         * returned that no rule and no supervisor could place, or one filed without a
         * routing rule (reported). */
        bool stranded = ((strcmp(c->state, OG_STATE_RETURNED) == 0 && !c->unit) ||
                         strcmp(c->state, OG_STATE_REPORTED) == 0) &&
                        assign;
        if (strcmp(c->state, OG_STATE_SHELVED) != 0 && !stranded)
            return refuse(d, ONEGRID__V1__REASON__REASON_INVALID_TRANSITION,
                          "decision: case %s is %s, not in the demand list (需求清单)", c->id,
                          c->state);
        for (size_t k = 0; k < i; k++)
            if (strcmp(m->case_ids[k], m->case_ids[i]) == 0)
                return refuse(d, ONEGRID__V1__REASON__REASON_INVALID_FIELD,
                              "decision.case_ids: %s is listed twice", c->id);
    }
    dc->more = calloc(m->n_case_ids, sizeof(*dc->more));
    if (!dc->more && m->n_case_ids > 1)
        return -ENOMEM;
    for (size_t i = 0; i < m->n_case_ids; i++) {
        struct og_case *c = og_cases_find(dc->cases, m->case_ids[i]);
        Onegrid__V1__Decision *di = d;
        if (i > 0) {
            di = dc->more[dc->n_more] = calloc(1, sizeof(*di));
            if (!di)
                return -ENOMEM;
            onegrid__v1__decision__init(di);
            dc->n_more++;
        }
        if (assign) {
            if (og_case_set_unit(c, m->unit))
                return -ENOMEM;
            c->rule_id = 0; /* the meeting's decision, not a rule */
            c->rule_version = 0;
            /* A new clock for the unit, and supervision starts over with it: the levels a
             * stranded case reached are not the unit's. */
            new_clock(dc, c, now);
            clear_supervision(c);
            rc = move(c, OG_STATE_DISPATCHED, now, di);
        } else {
            rc = move(c, OG_STATE_CLOSED, now, di);
        }
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* A unit's status update on a case: the lifecycle step, and the extension clock (延期):
 * a request pauses the clock; a supervising unit's approval resumes it and adds the days
 * granted, its refusal resumes it as it was; any other step lets a pending request lapse
 * and the clock run again. */
/* Refuses an action the authenticated source was not granted (UNAUTHORISED_SOURCE). */
static int unauthorised(Onegrid__V1__Decision *d, const char *source, enum og_action a)
{
    return refuse(d, ONEGRID__V1__REASON__REASON_UNAUTHORISED_SOURCE,
                  "source \"%s\" may not send %s (og.source_action_grant)", source,
                  og_action_name(a));
}

static int status_update(struct og_decider *dc, const char *source,
                         const Onegrid__V1__StatusUpdate *u, int64_t received, int64_t now,
                         Onegrid__V1__Decision *d)
{
    const int st = u->status;
    const bool approve = st == ONEGRID__V1__STATUS_UPDATE__STATUS__STATUS_EXTENDED,
               refuse_ext = st == ONEGRID__V1__STATUS_UPDATE__STATUS__STATUS_EXTENSION_REFUSED,
               request = st == ONEGRID__V1__STATUS_UPDATE__STATUS__STATUS_EXTENSION_REQUESTED;
    struct og_case *c;
    const char *next;
    char why[200];
    int rc = 0;

    /* Who may speak for the unit comes before the case: the answer must not tell a source
     * without the right which cases exist. (Unit codes are no secret.) */
    if (!og_registry_has_unit(dc->reg, u->unit))
        return refuse(d, ONEGRID__V1__REASON__REASON_UNKNOWN_UNIT,
                      "status.unit: \"%s\" is not a registered handling unit", u->unit);
    if (!og_registry_speaks_for(dc->reg, source, u->unit))
        return refuse(d, ONEGRID__V1__REASON__REASON_UNAUTHORISED_SOURCE,
                      "source \"%s\" may not speak for unit \"%s\" (og.source_unit_grant)", source,
                      u->unit);
    if (u->mediation && !og_registry_may(dc->reg, source, OG_ACTION_MEDIATION))
        return unauthorised(d, source, OG_ACTION_MEDIATION);
    /* 核查 and 结案/作废 are the supervision and command side's (监督中心, 指挥中心): a
     * grant of the action, and never the unit that holds the case. */
    const int duty = st == ONEGRID__V1__STATUS_UPDATE__STATUS__STATUS_CHECKED_OK ||
                             st == ONEGRID__V1__STATUS_UPDATE__STATUS__STATUS_CHECK_FAILED
                         ? OG_ACTION_CHECK
                     : st == ONEGRID__V1__STATUS_UPDATE__STATUS__STATUS_CLOSED ||
                             st == ONEGRID__V1__STATUS_UPDATE__STATUS__STATUS_VOIDED
                         ? OG_ACTION_CLOSE
                         : -1;
    if (duty >= 0 && !og_registry_may(dc->reg, source, (enum og_action)duty))
        return unauthorised(d, source, (enum og_action)duty);
    if (!(c = find_case(dc, u->case_id, d, &rc)))
        return rc;
    bool holder = c->unit && strcmp(c->unit, u->unit) == 0;
    bool supervisor = supervises(dc, c, u->unit);
    /* An extension request is judged as it stood when intake received this update, not
     * when dispatch decides it (away, or holding its events while the database is): one
     * that had lapsed by then lapsed first, as of its moment; one that lapsed only later
     * (the scan came first) was still pending for this update. */
    if (received > now || received < c->opened)
        received = now;
    const int64_t lapses = og_extension_lapses(dc, c);
    const bool lapsed_before = c->paused_at && lapses && received >= lapses;
    /* Received before the lapse dispatch recorded last (so while that request was pending):
     * about that request, also when the unit has asked again since (a request pending now
     * was received after that lapse), not the one pending now (review: a late refusal of
     * the first request ended the second). */
    const bool lapsed_after = c->lapsed_at && received < c->lapsed_at;
    const bool pending = c->paused_at && !lapsed_before && !lapsed_after;
    if (duty >= 0 && holder)
        return refuse(d, ONEGRID__V1__REASON__REASON_INVALID_TRANSITION,
                      "status.unit: case %s is held by \"%s\", which may not %s its own case "
                      "(separation of duties: the supervision or command centre does)",
                      c->id, u->unit, duty == OG_ACTION_CHECK ? "check" : "close or void");
    /* The centre: a supervising unit of the case's community, street or district (the
     * units it escalates to), not any unit the source speaks for. */
    if (duty >= 0 && !supervisor)
        return refuse(d, ONEGRID__V1__REASON__REASON_INVALID_TRANSITION,
                      "status.unit: case %s is %s by a supervising unit of its community, "
                      "street or district (og.supervisor), not \"%s\"",
                      c->id, duty == OG_ACTION_CHECK ? "checked" : "closed or voided", u->unit);
    if (refuse_ext && lapsed_before) {
        char at[48];
        return refuse(d, ONEGRID__V1__REASON__REASON_INVALID_TRANSITION,
                      "case %s: no extension request is pending: it lapsed undecided at %s, "
                      "before this was received",
                      c->id, og_time_format(lapses, 0, at, sizeof(at)));
    }
    if (refuse_ext && !pending && !lapsed_after)
        return refuse(d, ONEGRID__V1__REASON__REASON_INVALID_TRANSITION,
                      "case %s: no extension request is pending", c->id);
    /* 延期 is approved (a pending request, or directly) or refused by a supervising unit,
     * never by the unit whose deadline it moves: its own word would be a payload field
     * granting it a right (DESIGN, authorisation). */
    if (approve || refuse_ext) {
        if (!og_registry_may(dc->reg, source, OG_ACTION_EXTENSION_DECISION))
            return unauthorised(d, source, OG_ACTION_EXTENSION_DECISION);
        /* Not the unit that holds it, even where it also supervises the community. */
        if (!supervisor || holder)
            return refuse(d, ONEGRID__V1__REASON__REASON_INVALID_TRANSITION,
                          "status.unit: an extension of case %s is decided by a supervising "
                          "unit of its community, street or district, not \"%s\"",
                          c->id, u->unit);
    } else if (duty < 0 && !holder) {
        return refuse(d, ONEGRID__V1__REASON__REASON_INVALID_TRANSITION,
                      "status.unit: case %s is held by \"%s\", not \"%s\"", c->id,
                      c->unit ? c->unit : "no unit", u->unit);
    }
    const struct og_category_info *cat = og_registry_category(dc->reg, c->category);
    next = og_lifecycle_status(c->state, st, cat ? cat->check_required : true, why, sizeof(why));
    if (!next)
        return refuse(d, ONEGRID__V1__REASON__REASON_INVALID_TRANSITION, "case %s: %s", c->id, why);
    if (u->mediation && (!cat || !cat->kind || strcmp(cat->kind, "dispute") != 0))
        return refuse(d, ONEGRID__V1__REASON__REASON_INVALID_FIELD,
                      "status.mediation: case %s is a %s, not a dispute", c->id,
                      cat && cat->kind ? cat->kind : "case of unknown kind");
    if (request) {
        if (pending || lapsed_after)
            return refuse(d, ONEGRID__V1__REASON__REASON_INVALID_TRANSITION,
                          "case %s: an extension request was already pending when this one "
                          "was received",
                          c->id);
        /* Asked when intake received it: a request sent in time is not late because it
         * waited (an outage, a clock held untrusted) before it was decided. Intake's clock
         * is another machine's: a receipt time in the future, or before the case was
         * opened, is not believed (above). After a lapse, against the clock resumed then. */
        int64_t due = lapsed_before ? resumed_deadline(dc, c, lapses) : c->deadline;
        if (!due || received >= due)
            return refuse(d, ONEGRID__V1__REASON__REASON_INVALID_TRANSITION,
                          "case %s: %s; an extension is requested before the deadline", c->id,
                          due ? "the deadline had passed when it was received" : "no clock runs");
        if (lapsed_before && (rc = lapse_recorded(dc, c, lapses, d)) < 0)
            return rc;
        c->paused_at = received;
        c->extension_days = u->extension_working_days;
        return move(c, next, now, d);
    }
    /* Decided, or lapsed by the unit's next step; or lapsed undecided before this came. The
     * clock runs again as of when intake received this, as a request pauses it then: the
     * time dispatch took to decide it (away, or holding its events while the database was)
     * is neither the unit's nor given to it (review: a refusal received at 02:55 and
     * decided at 04:00 gave the unit an hour more). So too for a step received while a
     * request was pending that lapsed before dispatch decided the step (lapsed_after): the
     * scan had resumed the clock as of the lapse; the step moves it back to its receipt
     * (unlapse). */
    if (lapsed_before && (rc = lapse_recorded(dc, c, lapses, d)) < 0)
        return rc;
    if (lapsed_after) {
        unlapse(dc, c, received);
        /* A request the unit made since stays pending through a decision on the lapsed one
         * and through the unit's work on the case, but ends (its pause used no time) where
         * it could not have been made had this come first: this takes the case from the
         * unit's hands (resolved, returned, shelved, voided: review, a voided case kept a
         * pending request), or (below) the clock this leaves had run out when it was
         * made. */
        if (c->paused_at && !approve && !refuse_ext &&
            (strcmp(og_lifecycle_stage(next), OG_STAGE_HANDLING) != 0 ||
             strcmp(next, OG_STATE_RETURNED) == 0 || strcmp(next, OG_STATE_SHELVED) == 0))
            resume_clock(dc, c, c->paused_at);
    } else {
        resume_clock(dc, c, c->paused_at && received < c->paused_at ? c->paused_at : received);
    }
    if (strcmp(next, OG_STATE_RETURNED) == 0)
        return reroute(dc, c, now, d);
    if (strcmp(next, OG_STATE_SHELVED) == 0) {
        /* Into the demand list: no unit can meet a deadline alone, so none runs. */
        c->deadline = 0;
        c->clock_started = 0;
        forget_lapsed_pause(c);
        clear_supervision(c);
    } else if (approve) {
        if (!c->deadline) /* a clock starts with it, when the approval was given */
            c->clock_started = received;
        c->deadline = og_calendar_deadline(og_registry_calendar(dc->reg),
                                           c->deadline ? c->deadline : received,
                                           u->extension_working_days, "working_days");
        forget_lapsed_pause(c);
    }
    if (lapsed_after && c->paused_at && c->deadline && c->deadline <= c->paused_at)
        resume_clock(dc, c, c->paused_at); /* as above: an approval's days included */
    bool taking = og_cases_takes_reports(c->state);
    if ((rc = move(c, next, now, d)) == 0 && u->mediation)
        rc = record_mediation(u->mediation, d);
    /* Back to work after a failed check: it takes reports of its problem again (a merge
     * lookup drops a resolved case from the index; a restarted dispatch indexes it). */
    if (rc == 0 && !taking && og_cases_takes_reports(c->state) && og_cases_index(dc->cases, c) < 0)
        rc = -ENOMEM;
    return rc;
}

/* 拆分: an operator says a merged report is not the same problem. It leaves its case and
 * opens a case of its own from its own facts (area, time, position, severity), routed by
 * today's rules on a new clock. d gets the new case (the event opens it, the ack names
 * it); dc->more the old case with one contact less. */
static int split(struct og_decider *dc, const Onegrid__V1__CaseSplit *sp, int64_t now,
                 Onegrid__V1__Decision *d)
{
    struct og_case *c, *n;
    struct og_report *r;
    const char *district;
    int rc = 0;

    if (!(c = find_case(dc, sp->case_id, d, &rc)))
        return rc;
    if (og_lifecycle_final(c->state))
        return refuse(d, ONEGRID__V1__REASON__REASON_INVALID_TRANSITION,
                      "split: case %s is %s; a report of a finished case is not split off "
                      "(report the problem again instead)",
                      c->id, c->state);
    r = og_cases_find_report(dc->cases, sp->report_source, sp->report_event_id);
    if (!r || strcmp(r->case_id, c->id) != 0)
        return refuse(d, ONEGRID__V1__REASON__REASON_INVALID_FIELD,
                      "split: report %s/%s did not join case %s by a merge", sp->report_source,
                      sp->report_event_id, c->id);
    district = og_registry_district(dc->reg, r->area);
    if (!district)
        return refuse(d, ONEGRID__V1__REASON__REASON_UNKNOWN_GRID,
                      "split: the report's area %s is no longer in the registry", r->area);
    dc->more = calloc(1, sizeof(*dc->more));
    if (!dc->more || !(dc->more[0] = calloc(1, sizeof(**dc->more))))
        return -ENOMEM;
    onegrid__v1__decision__init(dc->more[0]);
    dc->n_more = 1;
    const char *area = r->area; /* on its grid, where its position says (as when filed) */
    if (r->has_location) {
        const char *grid = og_registry_locate(dc->reg, area, r->latitude, r->longitude);
        if (grid)
            area = grid;
    }
    if (!(n = og_cases_open(dc->cases, district, area, c->category)))
        return -ENOMEM;
    n->opened = now;
    n->occurred = r->occurred;
    n->has_location = r->has_location;
    n->latitude = r->latitude;
    n->longitude = r->longitude;
    n->severity = r->severity;
    new_clock(dc, n, now);
    const struct og_rule *rule = og_registry_route(dc->reg, n->category, n->area, now);
    if (rule) {
        if (og_case_set_unit(n, rule->unit))
            return -ENOMEM;
        n->rule_id = rule->id;
        n->rule_version = rule->version;
    }
    snprintf(n->state, sizeof(n->state), "%s", rule ? OG_STATE_DISPATCHED : OG_STATE_REPORTED);
    c->contacts--;
    d->kind = ONEGRID__V1__DECISION__KIND__KIND_OPEN_CASE;
    Onegrid__V1__Decision *m = dc->more[0];
    if (describe(d, n, "", now) < 0 || set_str(&d->report_source, sp->report_source) < 0 ||
        set_str(&d->report_event_id, sp->report_event_id) < 0 ||
        set_str(&d->split_from, c->id) < 0 || describe(m, c, c->state, now) < 0 ||
        set_str(&m->report_source, sp->report_source) < 0 ||
        set_str(&m->report_event_id, sp->report_event_id) < 0 || set_str(&m->split_to, n->id) < 0)
        return -ENOMEM;
    m->kind = ONEGRID__V1__DECISION__KIND__KIND_SPLIT;
    og_cases_drop_report(dc->cases, r);
    return 0;
}

int og_decide(struct og_decider *dc, const Onegrid__V1__Submission *s, int64_t now,
              Onegrid__V1__Decision *d)
{
    const Onegrid__V1__Envelope *e = s->event;
    struct og_case *c;
    const char *next;
    char why[200];
    int rc = 0;

    if (s->rejection || !e) {
        d->kind = ONEGRID__V1__DECISION__KIND__KIND_REJECT; /* intake's refusal stands */
        return 0;
    }
    if (!og_registry_has_source(dc->reg, s->source))
        return refuse(d, ONEGRID__V1__REASON__REASON_UNAUTHORISED_SOURCE,
                      "source: \"%s\" is not a registered source system", s->source);
    switch (e->payload_case) {
    case ONEGRID__V1__ENVELOPE__PAYLOAD_REPORT:
        return open_case(dc, s, e->subject, e->report->category, now, d);
    case ONEGRID__V1__ENVELOPE__PAYLOAD_SENSOR_ALERT:
        return open_case(dc, s, e->subject, e->sensor_alert->category, now, d);
    case ONEGRID__V1__ENVELOPE__PAYLOAD_STATUS:
        return status_update(dc, s->source, e->status, s->received ? s->received->seconds : now,
                             now, d);
    case ONEGRID__V1__ENVELOPE__PAYLOAD_EVALUATION:
        if (!og_registry_may(dc->reg, s->source, OG_ACTION_EVALUATION))
            return unauthorised(d, s->source, OG_ACTION_EVALUATION);
        if (!(c = find_case(dc, e->evaluation->case_id, d, &rc)))
            return rc;
        next = og_lifecycle_evaluation(c->state, e->evaluation->result, why, sizeof(why));
        if (!next)
            return refuse(d, ONEGRID__V1__REASON__REASON_INVALID_TRANSITION, "case %s: %s", c->id,
                          why);
        if (strcmp(next, OG_STATE_DISPATCHED) == 0) {
            /* Reopened after an unsatisfied evaluation: a new clock for the rework (at the
             * case's severity), and supervision starts over with it. */
            new_clock(dc, c, now);
            clear_supervision(c);
            /* Held by nobody (社区自办 where the community has no supervising unit and no
             * rule routes it): routed now, as a report is, else filed for an operator, never
             * "dispatched" to nobody, where no unit could move it. */
            if (!c->unit) {
                const struct og_rule *rule = og_registry_route(dc->reg, c->category, c->area, now);
                if (rule && og_case_set_unit(c, rule->unit))
                    return -ENOMEM;
                c->rule_id = rule ? rule->id : 0;
                c->rule_version = rule ? rule->version : 0;
                if (!rule)
                    next = OG_STATE_REPORTED;
            }
            /* Open again: it takes reports of the same problem again (最多跑一次). */
            if (og_cases_index(dc->cases, c) < 0)
                return -ENOMEM;
        }
        return move(c, next, now, d);
    case ONEGRID__V1__ENVELOPE__PAYLOAD_DECISION:
        if (!og_registry_may(dc->reg, s->source, OG_ACTION_MEETING_DECISION))
            return unauthorised(d, s->source, OG_ACTION_MEETING_DECISION);
        return meeting(dc, e->decision, now, d);
    case ONEGRID__V1__ENVELOPE__PAYLOAD_SPLIT:
        if (!og_registry_may(dc->reg, s->source, OG_ACTION_SPLIT))
            return unauthorised(d, s->source, OG_ACTION_SPLIT);
        return split(dc, e->split, now, d);
    default:
        return refuse(d, ONEGRID__V1__REASON__REASON_MISSING_FIELD, "payload: required");
    }
}

int64_t og_extension_lapses(const struct og_decider *dc, const struct og_case *c)
{
    if (!c->paused_at || dc->extension_decision_days <= 0)
        return 0;
    return og_calendar_deadline(og_registry_calendar(dc->reg), c->paused_at,
                                dc->extension_decision_days, "working_days");
}

int og_lapse(struct og_decider *dc, struct og_case *c, int64_t now, Onegrid__V1__Decision *d)
{
    int64_t lapses = og_extension_lapses(dc, c);
    if (!lapses || now < lapses)
        return 0;
    /* As of the moment it lapsed, not of this scan: a dispatch that was away, or scans
     * seldom, gives the unit no more time than one that saw it at once. */
    lapse(dc, c, lapses);
    d->kind = ONEGRID__V1__DECISION__KIND__KIND_UPDATE_CASE;
    return describe(d, c, c->state, now) < 0 ? -ENOMEM : 1;
}

int og_escalate(struct og_decider *dc, struct og_case *c, int64_t now, Onegrid__V1__Decision *d)
{
    static const size_t prefix[] = {0, 12, 9, 6}; /* community, street, district codes */
    char area[OG_CODE_MAX];
    const char *unit, *limit_unit;
    int limit;

    /* Only a running clock makes a case overdue: the rule audit.overdue_cases reads from
     * og.case.clock, which each decision sets to og_lifecycle_clock. */
    if (strcmp(og_lifecycle_clock(c), OG_CLOCK_RUNNING) != 0 || now < c->deadline ||
        c->escalation_level >= 3 || !case_limit(dc, c, &limit, &limit_unit) || limit <= 0)
        return 0;
    /* Level n is due one more time limit of the case (on the working calendar) after level
     * n - 1: the deadline, then a time limit later, then another. The time limit, not the
     * time since the case was filed: a case reopened 90 days on, or re-routed, escalates at
     * the pace of its clock. */
    if (c->escalation_level > 0 &&
        now < og_calendar_deadline(og_registry_calendar(dc->reg), c->deadline,
                                   limit * c->escalation_level, limit_unit))
        return 0;
    /* One level per call: each level is its own event and decision in the record. A
     * level whose supervisor holds the case itself (a community's own unit handling it,
     * 社区自办; a street's or district's unit it was returned to) is passed over for the
     * next: nobody supervises their own case (a quickstart trial found 46 of 341 such).
     * At the district's, with nobody above, the level is reached with no supervisor. */
    do {
        c->escalation_level++;
        snprintf(area, sizeof(area), "%.*s", (int)prefix[c->escalation_level], c->area);
        unit = og_registry_supervisor(dc->reg, area);
    } while (unit && c->unit && strcmp(unit, c->unit) == 0 && c->escalation_level < 3);
    if (unit && c->unit && strcmp(unit, c->unit) == 0)
        unit = NULL;
    free(c->supervisor);
    c->supervisor = unit ? strdup(unit) : NULL;
    if (unit && !c->supervisor)
        return -ENOMEM;
    d->kind = ONEGRID__V1__DECISION__KIND__KIND_ESCALATE;
    return describe(d, c, c->state, now) < 0 ? -ENOMEM : 1;
}
