#include "frame_check.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "util.h"
#include "validate.h"

/* Byte bounds: each is 4 bytes per character of the limit intake enforces on publishers
 * (event.proto), or the size of the buffer the receiver keeps the value in. */
#define ID_MAX             64  /* ids: event, case, unit, sensor (printable ASCII for event ids) */
#define SOURCE_MAX         32  /* source system codes */
#define NAME_MAX_          256 /* publisher names, categories (64 characters), types */
#define CASE_ID_MAX        31  /* dispatch keeps case ids in char[32] */
#define AREA_MAX           15  /* unified area codes: 6 to 15 digits */
#define STATE_MAX          15  /* case states: char[16] */
#define TEXT_MAX           16384
#define MAX_RETURNED_UNITS 1000
/* The size of a frame intake refused: intake takes frames of at most 2 x max_event_bytes
 * + 4096 bytes (max_event_bytes at most 4 MiB); og.rejection.raw_size is an integer. */
#define RAW_SIZE_MAX (16u << 20)

static int bad(char *why, size_t whylen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int bad(char *why, size_t whylen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, whylen, fmt, ap);
    va_end(ap);
    return -EBADMSG;
}

/* A string of min..max bytes of valid UTF-8. */
static int text(const char *name, const char *s, size_t min, size_t max, char *why, size_t whylen)
{
    size_t n;
    if (!s)
        return bad(why, whylen, "%s: missing", name);
    n = strnlen(s, max + 1);
    if (n < min || n > max)
        return bad(why, whylen, "%s: %s%zu bytes, allowed %zu..%zu", name, n > max ? "over " : "",
                   n, min, max);
    if (!og_utf8_valid((const uint8_t *)s, n))
        return bad(why, whylen, "%s: not valid UTF-8", name);
    return 0;
}

/* An event id: 1..64 printable ASCII characters without spaces (event.proto). */
static int event_id(const char *name, const char *s, char *why, size_t whylen)
{
    if (text(name, s, 1, ID_MAX, why, whylen))
        return -EBADMSG;
    for (const char *c = s; *c; c++)
        if (*c < 0x21 || *c > 0x7e)
            return bad(why, whylen, "%s: not printable ASCII", name);
    return 0;
}

/* s is "" (a dispatch that does not say) or one of the NULL-terminated values. */
static int one_of(const char *name, const char *s, const char *const *values, char *why,
                  size_t whylen)
{
    if (!s)
        return bad(why, whylen, "%s: missing", name);
    if (!*s)
        return 0;
    for (size_t i = 0; values[i]; i++)
        if (strcmp(s, values[i]) == 0)
            return 0;
    return bad(why, whylen, "%s: not a known value", name);
}

static int timestamp(const char *name, const Onegrid__V1__Timestamp *t, bool required, char *why,
                     size_t whylen)
{
    if (!t)
        return required ? bad(why, whylen, "%s: missing", name) : 0;
    if (t->seconds < OG_TIME_MIN || t->seconds > OG_TIME_MAX || t->nanos < 0 ||
        t->nanos > 999999999)
        return bad(why, whylen, "%s: out of range", name);
    return 0;
}

static int nack(const char *name, const Onegrid__V1__Nack *n, char *why, size_t whylen)
{
    if (!n)
        return bad(why, whylen, "%s: missing", name);
    /* Any reason but none: a newer intake may know reasons this daemon does not. */
    if (n->reason == ONEGRID__V1__REASON__REASON_UNSPECIFIED)
        return bad(why, whylen, "%s.reason: unspecified", name);
    return text(name, n->text, 0, TEXT_MAX, why, whylen);
}

/* The payload of an event to be decided or stored: what dispatch computes with and what
 * archive records. Sub-messages must be there for their oneof case. */
static int payload(const Onegrid__V1__Envelope *e, bool may_be_empty, char *why, size_t whylen)
{
    const char *type = og_payload_type(e->payload_case);

    switch (e->payload_case) {
    case ONEGRID__V1__ENVELOPE__PAYLOAD__NOT_SET:
        /* dispatch's own events (an escalation) carry their meaning in the decision. */
        return may_be_empty ? 0 : bad(why, whylen, "event: no payload");
    case ONEGRID__V1__ENVELOPE__PAYLOAD_REPORT: {
        const Onegrid__V1__NewReport *r = e->report;
        if (!r)
            return bad(why, whylen, "event.report: missing for its payload case");
        if (text("report.category", r->category, 1, NAME_MAX_, why, whylen) ||
            text("report.title", r->title, 0, 512, why, whylen) ||
            text("report.description", r->description, 0, TEXT_MAX, why, whylen))
            return -EBADMSG;
        if (r->severity < 0 || r->severity > 4)
            return bad(why, whylen, "report.severity: %d, allowed 0..4", (int)r->severity);
        if (r->contact && (text("report.contact.name", r->contact->name, 0, 256, why, whylen) ||
                           text("report.contact.phone", r->contact->phone, 0, 128, why, whylen)))
            return -EBADMSG;
        break;
    }
    case ONEGRID__V1__ENVELOPE__PAYLOAD_SENSOR_ALERT: {
        const Onegrid__V1__SensorAlert *a = e->sensor_alert;
        if (!a)
            return bad(why, whylen, "event.sensor_alert: missing for its payload case");
        if (text("sensor_alert.category", a->category, 1, NAME_MAX_, why, whylen) ||
            text("sensor_alert.sensor_id", a->sensor_id, 0, 256, why, whylen) ||
            text("sensor_alert.title", a->title, 0, 512, why, whylen) ||
            text("sensor_alert.reading", a->reading, 0, 1024, why, whylen))
            return -EBADMSG;
        if (a->severity < 0 || a->severity > 4)
            return bad(why, whylen, "sensor_alert.severity: %d, allowed 0..4", (int)a->severity);
        break;
    }
    case ONEGRID__V1__ENVELOPE__PAYLOAD_STATUS: {
        const Onegrid__V1__StatusUpdate *s = e->status;
        if (!s)
            return bad(why, whylen, "event.status: missing for its payload case");
        if (text("status.case_id", s->case_id, 1, ID_MAX, why, whylen) ||
            text("status.unit", s->unit, 1, ID_MAX, why, whylen) ||
            text("status.note", s->note, 0, 4096, why, whylen))
            return -EBADMSG;
        /* Deadlines are counted forward day by day: bound the days asked for. */
        if (s->extension_working_days < 0 || s->extension_working_days > 30)
            return bad(why, whylen, "status.extension_working_days: %d, allowed 0..30",
                       (int)s->extension_working_days);
        if (s->mediation) {
            const Onegrid__V1__Mediation *m = s->mediation;
            if (timestamp("status.mediation.agreement_date", m->agreement_date, true, why,
                          whylen) ||
                text("status.mediation.agreement_sha256", m->agreement_sha256, 0, 64, why,
                     whylen) ||
                text("status.mediation.mediator", m->mediator, 0, 256, why, whylen))
                return -EBADMSG;
            if (m->follow_up_days < 1 || m->follow_up_days > 90)
                return bad(why, whylen, "status.mediation.follow_up_days: %d, allowed 1..90",
                           (int)m->follow_up_days);
        }
        break;
    }
    case ONEGRID__V1__ENVELOPE__PAYLOAD_EVALUATION: {
        const Onegrid__V1__Evaluation *v = e->evaluation;
        if (!v)
            return bad(why, whylen, "event.evaluation: missing for its payload case");
        if (text("evaluation.case_id", v->case_id, 1, ID_MAX, why, whylen) ||
            text("evaluation.comment", v->comment, 0, 4096, why, whylen))
            return -EBADMSG;
        break;
    }
    case ONEGRID__V1__ENVELOPE__PAYLOAD_DECISION: {
        const Onegrid__V1__MeetingDecision *m = e->decision;
        if (!m)
            return bad(why, whylen, "event.decision: missing for its payload case");
        if (m->n_case_ids < 1 || m->n_case_ids > 100 || !m->case_ids)
            return bad(why, whylen, "decision.case_ids: %zu, allowed 1..100", m->n_case_ids);
        for (size_t i = 0; i < m->n_case_ids; i++)
            if (text("decision.case_ids[]", m->case_ids[i], 1, ID_MAX, why, whylen))
                return -EBADMSG;
        if (text("decision.unit", m->unit, 0, ID_MAX, why, whylen) ||
            text("decision.minutes_ref", m->minutes_ref, 0, 512, why, whylen))
            return -EBADMSG;
        break;
    }
    case ONEGRID__V1__ENVELOPE__PAYLOAD_SPLIT: {
        const Onegrid__V1__CaseSplit *s = e->split;
        if (!s)
            return bad(why, whylen, "event.split: missing for its payload case");
        if (text("split.case_id", s->case_id, 1, ID_MAX, why, whylen) ||
            text("split.report_source", s->report_source, 1, ID_MAX, why, whylen) ||
            text("split.report_event_id", s->report_event_id, 1, ID_MAX, why, whylen) ||
            text("split.note", s->note, 0, 4096, why, whylen))
            return -EBADMSG;
        break;
    }
    default:
        return bad(why, whylen, "event: unknown payload case %d", (int)e->payload_case);
    }
    if (strcmp(e->type, type) != 0)
        return bad(why, whylen, "event.type: \"%.32s\" does not name its payload (%s)", e->type,
                   type);
    return 0;
}

/* An event intake accepted (or dispatch's own): everything the receivers use. */
static int event(const Onegrid__V1__Envelope *e, bool may_be_empty, char *why, size_t whylen)
{
    const Onegrid__V1__Location *l = e->location;
    if (event_id("event.id", e->id, why, whylen) ||
        text("event.source", e->source, 0, SOURCE_MAX, why, whylen) ||
        text("event.type", e->type, 0, NAME_MAX_, why, whylen) ||
        timestamp("event.time", e->time, true, why, whylen) ||
        text("event.subject", e->subject, 0, 256, why, whylen))
        return -EBADMSG;
    if (l && (!isfinite(l->latitude) || !isfinite(l->longitude) || fabs(l->latitude) > 90 ||
              fabs(l->longitude) > 180))
        return bad(why, whylen, "event.location: not a WGS 84 position");
    if (l && text("event.location.address", l->address, 0, 1024, why, whylen))
        return -EBADMSG;
    return payload(e, may_be_empty, why, whylen);
}

static int submission(const Onegrid__V1__Frame *f, bool may_be_empty, char *why, size_t whylen)
{
    const Onegrid__V1__Submission *s = f->submission;
    const Onegrid__V1__Envelope *e = s->event;
    size_t ls, li;

    if (text("submission.publisher", s->publisher, 1, NAME_MAX_, why, whylen) ||
        text("submission.source", s->source, 0, SOURCE_MAX, why, whylen) ||
        timestamp("submission.received", s->received, true, why, whylen))
        return -EBADMSG;
    if (s->tag.len > 64 || (s->tag.len && !s->tag.data))
        return bad(why, whylen, "submission.tag: %zu bytes, at most 64", s->tag.len);
    if (s->raw_size > RAW_SIZE_MAX)
        return bad(why, whylen, "submission.raw_size: %u, at most %u", (unsigned)s->raw_size,
                   RAW_SIZE_MAX);
    if (s->rejection) {
        /* intake's refusal: the event, if decoded at all, only names what was refused. */
        if (nack("submission.rejection", s->rejection, why, whylen))
            return -EBADMSG;
        if (s->raw.len > s->raw_size || (s->raw.len && !s->raw.data))
            return bad(why, whylen, "submission.raw: %zu bytes of a %u-byte frame", s->raw.len,
                       (unsigned)s->raw_size);
        if (s->raw_sha256.len != 32 || !s->raw_sha256.data)
            return bad(why, whylen, "submission.raw_sha256: %zu bytes, not 32", s->raw_sha256.len);
        if (e && (text("event.id", e->id, 0, 128, why, whylen) ||
                  text("event.source", e->source, 0, SOURCE_MAX, why, whylen)))
            return -EBADMSG;
        return 0;
    }
    if (!e)
        return bad(why, whylen, "submission: neither an event nor a rejection");
    if ((s->raw_sha256.len != 0 && s->raw_sha256.len != 32) ||
        (s->raw_sha256.len && !s->raw_sha256.data) || s->raw.len)
        return bad(why, whylen, "submission: an event with raw bytes or a %zu-byte digest",
                   s->raw_sha256.len);
    if (text("submission.source", s->source, 1, SOURCE_MAX, why, whylen) ||
        event(e, may_be_empty, why, whylen))
        return -EBADMSG;
    /* The key is what every hop and the database deduplicate on: it must name this event. */
    ls = strlen(s->source);
    li = strlen(e->id);
    if (strlen(f->key) != ls + 1 + li || memcmp(f->key, s->source, ls) != 0 ||
        f->key[ls] != '\x1f' || memcmp(f->key + ls + 1, e->id, li) != 0)
        return bad(why, whylen, "key: not the event's \"source\\x1fid\"");
    return 0;
}

/* dispatch's conclusions (Decision.stage, .clock): the values og.case's checks allow. */
static const char *const stages[] = {"handling", "checking", "final", NULL};
static const char *const clocks[] = {"running", "paused", "none", NULL};

static int decision(const Onegrid__V1__Frame *f, const Onegrid__V1__Decision *d, bool first,
                    char *why, size_t whylen)
{
    const Onegrid__V1__Submission *s = f->submission;

    if (!d)
        return bad(why, whylen, "decision: missing");
    switch (d->kind) {
    case ONEGRID__V1__DECISION__KIND__KIND_REJECT:
        if (!first)
            return bad(why, whylen, "more_decisions: a refusal");
        /* dispatch's own reason, or intake's, which stands. */
        return nack("decision.rejection", d->rejection ? d->rejection : s->rejection, why, whylen);
    case ONEGRID__V1__DECISION__KIND__KIND_OPEN_CASE:
    case ONEGRID__V1__DECISION__KIND__KIND_UPDATE_CASE:
    case ONEGRID__V1__DECISION__KIND__KIND_ESCALATE:
    case ONEGRID__V1__DECISION__KIND__KIND_MERGE:
    case ONEGRID__V1__DECISION__KIND__KIND_SPLIT:
        break;
    default:
        return bad(why, whylen, "decision.kind: %d", (int)d->kind);
    }
    /* Every other kind stores the event it decided on. */
    if (s->rejection || !s->event)
        return bad(why, whylen, "decision: stores an event, but the submission is a refusal");
    if (text("decision.case_id", d->case_id, 1, CASE_ID_MAX, why, whylen) ||
        text("decision.district", d->district, 0, AREA_MAX, why, whylen) ||
        text("decision.grid", d->grid, 0, AREA_MAX, why, whylen) ||
        text("decision.category", d->category, 0, NAME_MAX_, why, whylen) ||
        text("decision.unit", d->unit, 0, ID_MAX, why, whylen) ||
        text("decision.state", d->state, 1, STATE_MAX, why, whylen) ||
        text("decision.previous_state", d->previous_state, 0, STATE_MAX, why, whylen) ||
        text("decision.supervisor", d->supervisor, 0, ID_MAX, why, whylen) ||
        text("decision.report_area", d->report_area, 0, AREA_MAX, why, whylen) ||
        text("decision.returned_by", d->returned_by, 0, ID_MAX, why, whylen) ||
        text("decision.report_source", d->report_source, 0, ID_MAX, why, whylen) ||
        text("decision.report_event_id", d->report_event_id, 0, 128, why, whylen) ||
        text("decision.split_from", d->split_from, 0, CASE_ID_MAX, why, whylen) ||
        text("decision.split_to", d->split_to, 0, CASE_ID_MAX, why, whylen) ||
        one_of("decision.stage", d->stage, stages, why, whylen) ||
        one_of("decision.clock", d->clock, clocks, why, whylen) ||
        timestamp("decision.decided", d->decided, true, why, whylen) ||
        timestamp("decision.opened", d->opened, false, why, whylen) ||
        timestamp("decision.deadline", d->deadline, false, why, whylen) ||
        timestamp("decision.closed", d->closed, false, why, whylen) ||
        timestamp("decision.paused_at", d->paused_at, false, why, whylen) ||
        timestamp("decision.clock_started", d->clock_started, false, why, whylen) ||
        timestamp("decision.extension_lapsed", d->extension_lapsed, false, why, whylen) ||
        timestamp("decision.lapse_deadline", d->lapse_deadline, false, why, whylen) ||
        timestamp("decision.lapsed_paused_at", d->lapsed_paused_at, false, why, whylen) ||
        timestamp("decision.lapsed_paused_deadline", d->lapsed_paused_deadline, false, why,
                  whylen) ||
        timestamp("decision.follow_up_due", d->follow_up_due, false, why, whylen))
        return -EBADMSG;
    if (d->escalation_level < 0 || d->escalation_level > 3 || d->severity < 0 || d->severity > 4 ||
        d->contacts < 0 || d->extension_days < 0 || d->extension_days > 366)
        return bad(why, whylen,
                   "decision: escalation_level %d, severity %d, contacts %d or "
                   "extension_days %d out of range",
                   (int)d->escalation_level, (int)d->severity, (int)d->contacts,
                   (int)d->extension_days);
    if (d->n_returned_units > MAX_RETURNED_UNITS || (d->n_returned_units && !d->returned_units))
        return bad(why, whylen, "decision.returned_units: %zu", d->n_returned_units);
    for (size_t i = 0; i < d->n_returned_units; i++)
        if (text("decision.returned_units[]", d->returned_units[i], 1, ID_MAX, why, whylen))
            return -EBADMSG;
    /* archive stores what follows under the district's chain and opens the case with its
     * grid and category; a further decision moves a case that exists. */
    if (!*d->district)
        return bad(why, whylen, "decision.district: missing");
    /* A county code (GB/T 2260): the chains are the districts' (og.district_records). */
    if (strlen(d->district) != 6 || strspn(d->district, "0123456789") != 6)
        return bad(why, whylen, "decision.district: \"%s\" is not 6 digits", d->district);
    switch (d->kind) {
    case ONEGRID__V1__DECISION__KIND__KIND_OPEN_CASE:
        if (!first)
            return bad(why, whylen, "more_decisions: opens a case");
        if (!*d->grid || !*d->category)
            return bad(why, whylen, "decision: a new case without its grid or category");
        break;
    case ONEGRID__V1__DECISION__KIND__KIND_ESCALATE:
        if (d->escalation_level < 1)
            return bad(why, whylen, "decision: an escalation to level 0");
        break;
    case ONEGRID__V1__DECISION__KIND__KIND_MERGE:
        if (!*d->report_area)
            return bad(why, whylen, "decision: a merge without report_area");
        break;
    case ONEGRID__V1__DECISION__KIND__KIND_SPLIT:
        if (!*d->split_to || !*d->report_source || !*d->report_event_id)
            return bad(why, whylen, "decision: a split without split_to or its report");
        break;
    default:
        break;
    }
    return 0;
}

/* dispatch's own events carry their meaning in the decision, and no payload: an escalation
 * (督办), and an extension request that lapsed undecided (its clock runs again). */
static bool own_event(const Onegrid__V1__Frame *f)
{
    const Onegrid__V1__Envelope *e = f->submission->event;
    if (f->decision->kind == ONEGRID__V1__DECISION__KIND__KIND_ESCALATE)
        return true;
    return f->decision->kind == ONEGRID__V1__DECISION__KIND__KIND_UPDATE_CASE && e && e->source &&
           e->type && strcmp(e->source, "onegrid") == 0 && strcmp(e->type, "extension_lapsed") == 0;
}

static int reply(const Onegrid__V1__Reply *r, char *why, size_t whylen)
{
    if (text("reply.event_id", r->event_id, 0, 128, why, whylen) ||
        text("reply.source", r->source, 0, SOURCE_MAX, why, whylen))
        return -EBADMSG;
    if (r->tag.len > 64)
        return bad(why, whylen, "reply.tag: %zu bytes, at most 64", r->tag.len);
    switch (r->result_case) {
    case ONEGRID__V1__REPLY__RESULT_ACK:
        if (!r->ack)
            return bad(why, whylen, "reply.ack: missing for its result case");
        if (r->ack->outcome == ONEGRID__V1__ACK__OUTCOME__OUTCOME_UNSPECIFIED)
            return bad(why, whylen, "reply.ack.outcome: unspecified");
        return text("reply.ack.case_id", r->ack->case_id, 0, CASE_ID_MAX, why, whylen);
    case ONEGRID__V1__REPLY__RESULT_NACK:
        return nack("reply.nack", r->nack, why, whylen);
    default:
        return bad(why, whylen, "reply: neither ack nor nack");
    }
}

int og_frame_check(const Onegrid__V1__Frame *f, enum og_frame_hop hop, char *why, size_t whylen)
{
    bool data = hop == OG_FRAME_HOP_INTAKE_DISPATCH || hop == OG_FRAME_HOP_DISPATCH_ARCHIVE;

    if (!f)
        return bad(why, whylen, "no frame");
    if (f->kind !=
        (data ? ONEGRID__V1__FRAME__KIND__KIND_DATA : ONEGRID__V1__FRAME__KIND__KIND_ANSWER))
        return bad(why, whylen, "kind: %d where %s is expected", (int)f->kind,
                   data ? "KIND_DATA" : "KIND_ANSWER");
    if (text("key", f->key, 1, OG_FRAME_KEY_MAX, why, whylen))
        return -EBADMSG;
    if (f->n_more_decisions && !f->more_decisions)
        return bad(why, whylen, "more_decisions: missing");

    if (!data) {
        if (f->submission || f->decision || f->n_more_decisions)
            return bad(why, whylen, "an answer carries a submission or a decision");
        if (f->reply)
            return reply(f->reply, why, whylen);
        /* archive's answer to a record it did not store (of an older epoch, naming a case
         * the database does not have, or decided after such a record): no reply, an epoch. */
        if (hop == OG_FRAME_HOP_DISPATCH_INTAKE || f->epoch == 0)
            return bad(why, whylen, "reply: missing");
        return 0;
    }

    if (f->reply)
        return bad(why, whylen, "reply: in a DATA frame");
    if (!f->submission)
        return bad(why, whylen, "submission: missing");
    if (hop == OG_FRAME_HOP_INTAKE_DISPATCH) {
        /* dispatch fills these in: a frame that has them already was not sent by intake. */
        if (f->decision || f->n_more_decisions)
            return bad(why, whylen, "decision: present before dispatch decided");
        return submission(f, false, why, whylen);
    }

    if (f->epoch == 0)
        return bad(why, whylen, "epoch: missing");
    if (text("shard", f->shard, 1, AREA_MAX, why, whylen))
        return -EBADMSG;
    if (!f->decision)
        return bad(why, whylen, "decision: missing");
    if (submission(f, own_event(f), why, whylen) || decision(f, f->decision, true, why, whylen))
        return -EBADMSG;
    if (f->n_more_decisions && f->decision->kind == ONEGRID__V1__DECISION__KIND__KIND_REJECT)
        return bad(why, whylen, "more_decisions: with a refusal");
    for (size_t i = 0; i < f->n_more_decisions; i++)
        if (decision(f, f->more_decisions[i], false, why, whylen))
            return -EBADMSG;
    return 0;
}

uint64_t og_frame_check_count(struct og_frame_drops *d, int64_t now_us)
{
    uint64_t n;

    d->total++;
    d->unlogged++;
    if (d->logged && now_us - d->logged_at < OG_FRAME_LOG_INTERVAL_US)
        return 0;
    n = d->unlogged;
    d->unlogged = 0;
    d->logged = true;
    d->logged_at = now_us;
    return n;
}
