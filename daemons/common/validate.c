#include "validate.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "util.h"

#define MAX_DEPTH 8
/* The earliest mediation agreement taken: 2000-01-01T00:00:00Z. */
#define OG_AGREEMENT_DATE_MIN 946684800LL

static int refuse(struct og_verdict *v, Onegrid__V1__Reason reason, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int refuse(struct og_verdict *v, Onegrid__V1__Reason reason, const char *fmt, ...)
{
    va_list ap;
    v->reason = reason;
    va_start(ap, fmt);
    /* Cut on a character boundary: the text quotes the publisher's values, and
     * PostgreSQL refuses a string cut inside a UTF-8 character. */
    og_safe_vformat(v->text, sizeof(v->text), fmt, ap);
    va_end(ap);
    return -EINVAL;
}

const char *og_reason_name(Onegrid__V1__Reason r)
{
    const ProtobufCEnumValue *ev =
        protobuf_c_enum_descriptor_get_value(&onegrid__v1__reason__descriptor, r);
    return ev ? ev->name : "REASON_UNSPECIFIED";
}

const char *og_payload_type(Onegrid__V1__Envelope__PayloadCase c)
{
    switch (c) {
    case ONEGRID__V1__ENVELOPE__PAYLOAD_REPORT:
        return "report";
    case ONEGRID__V1__ENVELOPE__PAYLOAD_STATUS:
        return "status";
    case ONEGRID__V1__ENVELOPE__PAYLOAD_EVALUATION:
        return "evaluation";
    case ONEGRID__V1__ENVELOPE__PAYLOAD_SENSOR_ALERT:
        return "sensor_alert";
    case ONEGRID__V1__ENVELOPE__PAYLOAD_DECISION:
        return "decision";
    case ONEGRID__V1__ENVELOPE__PAYLOAD_SPLIT:
        return "split";
    default:
        return NULL;
    }
}

/* Wire level ------------------------------------------------------------------------ */

static int read_varint(const uint8_t **p, const uint8_t *end, uint64_t *out)
{
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (*p >= end)
            return -EINVAL;
        uint8_t b = *(*p)++;
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *out = v;
            return 0;
        }
    }
    return -EINVAL;
}

static bool is_varint_type(ProtobufCType t)
{
    switch (t) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_BOOL:
    case PROTOBUF_C_TYPE_ENUM:
        return true;
    default:
        return false;
    }
}

static int wire_type_of(ProtobufCType t)
{
    if (is_varint_type(t))
        return 0;
    switch (t) {
    case PROTOBUF_C_TYPE_FIXED64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_DOUBLE:
        return 1;
    case PROTOBUF_C_TYPE_FIXED32:
    case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_FLOAT:
        return 5;
    default:
        return 2; /* string, bytes, message */
    }
}

static int check_enum(const ProtobufCFieldDescriptor *f, const ProtobufCMessageDescriptor *d,
                      uint64_t value, struct og_verdict *v)
{
    if (!protobuf_c_enum_descriptor_get_value(f->descriptor, (int)(int32_t)value))
        return refuse(v, ONEGRID__V1__REASON__REASON_UNKNOWN_ENUM,
                      "%s.%s: %lld is not a value of %s", d->short_name, f->name,
                      (long long)(int32_t)value,
                      ((const ProtobufCEnumDescriptor *)f->descriptor)->name);
    return 0;
}

static int walk(const ProtobufCMessageDescriptor *d, const uint8_t *p, const uint8_t *end,
                int depth, struct og_verdict *v)
{
    /* Which singular fields and oneof groups were seen; our messages have < 64 fields. */
    uint64_t seen = 0;
    const ProtobufCFieldDescriptor *oneof_seen[64] = {0};

    if (depth > MAX_DEPTH)
        return refuse(v, ONEGRID__V1__REASON__REASON_UNDECODABLE, "messages nested too deeply");
    while (p < end) {
        uint64_t tag, n;
        if (read_varint(&p, end, &tag) || tag >> 3 == 0 || tag >> 3 > 536870911)
            return refuse(v, ONEGRID__V1__REASON__REASON_UNDECODABLE, "%s: malformed field tag",
                          d->short_name);
        unsigned number = (unsigned)(tag >> 3), wt = tag & 7;
        const ProtobufCFieldDescriptor *f = protobuf_c_message_descriptor_get_field(d, number);
        if (!f)
            return refuse(v, ONEGRID__V1__REASON__REASON_UNKNOWN_FIELD,
                          "%s: field number %u is not defined in this version of the schema",
                          d->name, number);
        unsigned idx = (unsigned)(f - d->fields);
        bool packed =
            f->label == PROTOBUF_C_LABEL_REPEATED && wt == 2 && wire_type_of(f->type) != 2;
        if (!packed && (int)wt != wire_type_of(f->type))
            return refuse(v, ONEGRID__V1__REASON__REASON_UNDECODABLE,
                          "%s.%s: wire type %u does not match the field's type", d->short_name,
                          f->name, wt);
        if (f->label != PROTOBUF_C_LABEL_REPEATED) {
            if (idx < 64 && (seen & (1ULL << idx)))
                return refuse(v, ONEGRID__V1__REASON__REASON_INVALID_FIELD,
                              "%s.%s: appears more than once", d->short_name, f->name);
            if (idx < 64)
                seen |= 1ULL << idx;
        }
        if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
            /* Fields of one oneof share a quantifier_offset (the case member). */
            for (unsigned i = 0; i < OG_ARRAY_SIZE(oneof_seen); i++) {
                const ProtobufCFieldDescriptor *o = oneof_seen[i];
                if (o && o->quantifier_offset == f->quantifier_offset && o != f)
                    return refuse(v, ONEGRID__V1__REASON__REASON_MULTIPLE_PAYLOADS,
                                  "%s: both %s and %s are set; a oneof takes exactly one",
                                  d->short_name, o->name, f->name);
            }
            oneof_seen[idx % 64] = f;
        }
        switch (wt) {
        case 0:
            if (read_varint(&p, end, &n))
                return refuse(v, ONEGRID__V1__REASON__REASON_UNDECODABLE, "%s.%s: malformed varint",
                              d->short_name, f->name);
            if (f->type == PROTOBUF_C_TYPE_ENUM && check_enum(f, d, n, v))
                return -EINVAL;
            break;
        case 1:
        case 5: {
            size_t size = wt == 1 ? 8 : 4;
            if ((size_t)(end - p) < size)
                return refuse(v, ONEGRID__V1__REASON__REASON_UNDECODABLE, "%s.%s: truncated",
                              d->short_name, f->name);
            p += size;
            break;
        }
        case 2: {
            if (read_varint(&p, end, &n) || n > (uint64_t)(end - p))
                return refuse(v, ONEGRID__V1__REASON__REASON_UNDECODABLE,
                              "%s.%s: length runs past the end of the message", d->short_name,
                              f->name);
            const uint8_t *q = p, *qend = p + n;
            p = qend;
            if (f->type == PROTOBUF_C_TYPE_STRING) {
                if (memchr(q, 0, n))
                    return refuse(v, ONEGRID__V1__REASON__REASON_EMBEDDED_NUL,
                                  "%s.%s: contains a NUL character", d->short_name, f->name);
                if (!og_utf8_valid(q, n))
                    return refuse(v, ONEGRID__V1__REASON__REASON_INVALID_UTF8,
                                  "%s.%s: not valid UTF-8", d->short_name, f->name);
            } else if (f->type == PROTOBUF_C_TYPE_MESSAGE) {
                if (walk(f->descriptor, q, qend, depth + 1, v))
                    return -EINVAL;
            } else if (packed) {
                while (q < qend) {
                    uint64_t e;
                    if (wire_type_of(f->type) != 0 || read_varint(&q, qend, &e))
                        return refuse(v, ONEGRID__V1__REASON__REASON_UNDECODABLE,
                                      "%s.%s: malformed packed field", d->short_name, f->name);
                    if (f->type == PROTOBUF_C_TYPE_ENUM && check_enum(f, d, e, v))
                        return -EINVAL;
                }
            }
            break;
        }
        default:
            return refuse(v, ONEGRID__V1__REASON__REASON_UNDECODABLE,
                          "%s.%s: groups are not supported", d->short_name, f->name);
        }
    }
    return 0;
}

int og_validate_wire(const ProtobufCMessageDescriptor *d, const uint8_t *buf, size_t len,
                     struct og_verdict *v)
{
    static const uint8_t empty[1];
    v->reason = ONEGRID__V1__REASON__REASON_UNSPECIFIED;
    v->text[0] = '\0';
    if (!buf) /* an empty bytes field: protobuf-c leaves its data NULL (NULL + 0 is UB) */
        buf = empty, len = 0;
    return walk(d, buf, buf + len, 0, v);
}

/* Meaning ---------------------------------------------------------------------------- */

/* A string field's length in characters: required ones must have min >= 1. */
static int check_str(struct og_verdict *v, const char *name, const char *s, size_t min, size_t max)
{
    size_t n = og_utf8_length((const uint8_t *)s, strlen(s));
    if (n == 0 && min > 0)
        return refuse(v, ONEGRID__V1__REASON__REASON_MISSING_FIELD, "%s: required", name);
    if (n < min || n > max)
        return refuse(v, ONEGRID__V1__REASON__REASON_INVALID_FIELD,
                      "%s: %zu characters, allowed %zu..%zu", name, n, min, max);
    return 0;
}

/* A title: 1..128 characters, not white space alone (spaces, tabs, line breaks, U+00A0,
 * U+3000), which would say nothing on a work list. */
static int check_title(struct og_verdict *v, const char *name, const char *s)
{
    if (check_str(v, name, s, 1, 128))
        return -EINVAL;
    for (const char *c = s; *c;) {
        if (*c == ' ' || *c == '\t' || *c == '\n' || *c == '\r' || *c == '\v' || *c == '\f')
            c++;
        else if (strncmp(c, "\xc2\xa0", 2) == 0)
            c += 2;
        else if (strncmp(c, "\xe3\x80\x80", 3) == 0)
            c += 3;
        else
            return 0;
    }
    return refuse(v, ONEGRID__V1__REASON__REASON_MISSING_FIELD, "%s: required (white space only)",
                  name);
}

static int check_enum_set(struct og_verdict *v, const char *name, int value)
{
    if (value == 0)
        return refuse(v, ONEGRID__V1__REASON__REASON_MISSING_FIELD, "%s: required", name);
    return 0;
}

static int check_id(struct og_verdict *v, const char *name, const char *s)
{
    if (check_str(v, name, s, 1, 64))
        return -EINVAL;
    for (const char *c = s; *c; c++)
        if (*c < 0x21 || *c > 0x7e)
            return refuse(v, ONEGRID__V1__REASON__REASON_INVALID_FIELD,
                          "%s: only printable ASCII without spaces is allowed", name);
    return 0;
}

bool og_source_code_ok(const char *s)
{
    size_t n = strlen(s);
    bool ok = n >= 1 && n <= 32 && ((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= '0' && s[0] <= '9'));
    for (size_t i = 1; ok && i < n; i++)
        ok = (s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_' ||
             s[i] == '.' || s[i] == '-';
    return ok;
}

static int check_source(struct og_verdict *v, const char *s, bool authenticated)
{
    size_t n = strlen(s);
    if (n == 0 && authenticated)
        return 0;
    if (n == 0)
        return refuse(v, ONEGRID__V1__REASON__REASON_MISSING_FIELD, "source: required");
    if (!og_source_code_ok(s))
        return refuse(v, ONEGRID__V1__REASON__REASON_UNAUTHORISED_SOURCE,
                      "source: \"%s\" is not a source system code", s);
    return 0;
}

static int check_time(struct og_verdict *v, const Onegrid__V1__Timestamp *t,
                      const struct og_limits *lim)
{
    char when[48];
    if (!t)
        return refuse(v, ONEGRID__V1__REASON__REASON_INVALID_TIME, "time: required");
    if (t->nanos < 0 || t->nanos > 999999999 || t->seconds < OG_TIME_MIN ||
        t->seconds > OG_TIME_MAX)
        return refuse(v, ONEGRID__V1__REASON__REASON_INVALID_TIME, "time: out of range");
    og_time_format(t->seconds, t->nanos, when, sizeof(when));
    if (t->seconds > lim->now + lim->max_future)
        return refuse(v, ONEGRID__V1__REASON__REASON_INVALID_TIME, "time: %s is in the future",
                      when);
    if (t->seconds < lim->now - lim->max_age)
        return refuse(v, ONEGRID__V1__REASON__REASON_INVALID_TIME,
                      "time: %s is older than %lld days", when, (long long)(lim->max_age / 86400));
    return 0;
}

static int check_location(struct og_verdict *v, const Onegrid__V1__Location *l)
{
    if (!l)
        return 0;
    if (!isfinite(l->latitude) || !isfinite(l->longitude) || l->latitude < -90 ||
        l->latitude > 90 || l->longitude < -180 || l->longitude > 180)
        return refuse(v, ONEGRID__V1__REASON__REASON_INVALID_LOCATION,
                      "location: (%g, %g) is not a WGS 84 latitude and longitude", l->latitude,
                      l->longitude);
    if (l->latitude == 0 && l->longitude == 0)
        return refuse(v, ONEGRID__V1__REASON__REASON_INVALID_LOCATION,
                      "location: (0, 0) is a placeholder; omit location when it is unknown");
    return check_str(v, "location.address", l->address, 0, 256);
}

static int check_phone(struct og_verdict *v, const char *s)
{
    if (check_str(v, "report.contact.phone", s, 0, 32))
        return -EINVAL;
    for (const char *c = s; *c; c++)
        if (!strchr("0123456789+- ", *c))
            return refuse(v, ONEGRID__V1__REASON__REASON_INVALID_FIELD,
                          "report.contact.phone: only digits, spaces, '+' and '-' are allowed");
    if (*s && !strpbrk(s, "0123456789")) /* "   " or "+-": no number to call */
        return refuse(v, ONEGRID__V1__REASON__REASON_INVALID_FIELD,
                      "report.contact.phone: no digit (leave it empty when there is no number)");
    return 0;
}

static int check_payload(struct og_verdict *v, const Onegrid__V1__Envelope *e,
                         const struct og_limits *lim)
{
    switch (e->payload_case) {
    case ONEGRID__V1__ENVELOPE__PAYLOAD_REPORT: {
        const Onegrid__V1__NewReport *r = e->report;
        if (check_str(v, "subject", e->subject, 1, 64) ||
            check_str(v, "report.category", r->category, 1, 64) ||
            check_title(v, "report.title", r->title) ||
            check_str(v, "report.description", r->description, 0, 4096) ||
            check_enum_set(v, "report.channel", r->channel))
            return -EINVAL;
        if (r->contact && (check_str(v, "report.contact.name", r->contact->name, 0, 64) ||
                           check_phone(v, r->contact->phone)))
            return -EINVAL;
        return 0;
    }
    case ONEGRID__V1__ENVELOPE__PAYLOAD_STATUS: {
        const Onegrid__V1__StatusUpdate *s = e->status;
        if (check_id(v, "status.case_id", s->case_id) ||
            check_enum_set(v, "status.status", s->status) || check_id(v, "status.unit", s->unit) ||
            check_str(v, "status.note", s->note, 0, 1024))
            return -EINVAL;
        if (s->mediation) {
            const Onegrid__V1__Mediation *m = s->mediation;
            size_t hl = strlen(m->agreement_sha256);
            bool hex = hl == 64 && strspn(m->agreement_sha256, "0123456789abcdef") == 64;
            if (s->status != ONEGRID__V1__STATUS_UPDATE__STATUS__STATUS_RESOLVED)
                return refuse(v, ONEGRID__V1__REASON__REASON_INVALID_FIELD,
                              "status.mediation: only with STATUS_RESOLVED");
            if (m->parties < 2 || m->parties > 20)
                return refuse(v, ONEGRID__V1__REASON__REASON_INVALID_FIELD,
                              "status.mediation.parties: %d, allowed 2..20", m->parties);
            if (!hex)
                return refuse(v, ONEGRID__V1__REASON__REASON_INVALID_FIELD,
                              "status.mediation.agreement_sha256: 64 lowercase hex digits");
            if (!m->agreement_date)
                return refuse(v, ONEGRID__V1__REASON__REASON_MISSING_FIELD,
                              "status.mediation.agreement_date: required");
            /* Bounded like every time: a year-0 date was stored once, and every read of
             * audit.mediations failed on it for good (the ledger is append-only). */
            if (m->agreement_date->nanos < 0 || m->agreement_date->nanos > 999999999 ||
                m->agreement_date->seconds < OG_AGREEMENT_DATE_MIN)
                return refuse(v, ONEGRID__V1__REASON__REASON_INVALID_FIELD,
                              "status.mediation.agreement_date: before 2000-01-01 or not a time");
            if (m->agreement_date->seconds > lim->now + lim->max_future)
                return refuse(v, ONEGRID__V1__REASON__REASON_INVALID_FIELD,
                              "status.mediation.agreement_date: in the future");
            if (m->follow_up_days < 1 || m->follow_up_days > 90)
                return refuse(v, ONEGRID__V1__REASON__REASON_INVALID_FIELD,
                              "status.mediation.follow_up_days: %d, allowed 1..90",
                              m->follow_up_days);
            if (check_str(v, "status.mediation.mediator", m->mediator, 0, 64))
                return -EINVAL;
        }
        bool days = s->status == ONEGRID__V1__STATUS_UPDATE__STATUS__STATUS_EXTENDED ||
                    s->status == ONEGRID__V1__STATUS_UPDATE__STATUS__STATUS_EXTENSION_REQUESTED;
        if (days != (s->extension_working_days != 0) || s->extension_working_days < 0 ||
            s->extension_working_days > 30)
            return refuse(v, ONEGRID__V1__REASON__REASON_INVALID_FIELD,
                          "status.extension_working_days: 1..30 with STATUS_EXTENDED or "
                          "STATUS_EXTENSION_REQUESTED, absent otherwise");
        return 0;
    }
    case ONEGRID__V1__ENVELOPE__PAYLOAD_EVALUATION: {
        const Onegrid__V1__Evaluation *ev = e->evaluation;
        return check_id(v, "evaluation.case_id", ev->case_id) ||
                       check_enum_set(v, "evaluation.result", ev->result) ||
                       check_str(v, "evaluation.comment", ev->comment, 0, 1024)
                   ? -EINVAL
                   : 0;
    }
    case ONEGRID__V1__ENVELOPE__PAYLOAD_SENSOR_ALERT: {
        const Onegrid__V1__SensorAlert *a = e->sensor_alert;
        return check_str(v, "subject", e->subject, 1, 64) ||
                       check_str(v, "sensor_alert.category", a->category, 1, 64) ||
                       check_id(v, "sensor_alert.sensor_id", a->sensor_id) ||
                       check_title(v, "sensor_alert.title", a->title) ||
                       check_enum_set(v, "sensor_alert.urgency", a->urgency) ||
                       check_enum_set(v, "sensor_alert.severity", a->severity) ||
                       check_enum_set(v, "sensor_alert.certainty", a->certainty) ||
                       check_str(v, "sensor_alert.reading", a->reading, 0, 256)
                   ? -EINVAL
                   : 0;
    }
    case ONEGRID__V1__ENVELOPE__PAYLOAD_DECISION: {
        const Onegrid__V1__MeetingDecision *m = e->decision;
        if (m->n_case_ids < 1 || m->n_case_ids > 100)
            return refuse(v,
                          m->n_case_ids ? ONEGRID__V1__REASON__REASON_INVALID_FIELD
                                        : ONEGRID__V1__REASON__REASON_MISSING_FIELD,
                          "decision.case_ids: %zu given, allowed 1..100", m->n_case_ids);
        for (size_t i = 0; i < m->n_case_ids; i++)
            if (check_id(v, "decision.case_ids[]", m->case_ids[i]))
                return -EINVAL;
        if (check_enum_set(v, "decision.action", m->action) ||
            check_str(v, "decision.minutes_ref", m->minutes_ref, 0, 128))
            return -EINVAL;
        /* Required to assign; any action's unit is bounded as dispatch's frame check
         * bounds it: a frame dispatch drops is never answered. */
        if (m->action == ONEGRID__V1__MEETING_DECISION__ACTION__ACTION_ASSIGN ||
            (m->unit && m->unit[0]))
            return check_id(v, "decision.unit", m->unit);
        return 0;
    }
    case ONEGRID__V1__ENVELOPE__PAYLOAD_SPLIT: {
        const Onegrid__V1__CaseSplit *sp = e->split;
        return check_id(v, "split.case_id", sp->case_id) ||
                       check_id(v, "split.report_source", sp->report_source) ||
                       check_id(v, "split.report_event_id", sp->report_event_id) ||
                       check_str(v, "split.note", sp->note, 0, 1024)
                   ? -EINVAL
                   : 0;
    }
    default:
        return refuse(v, ONEGRID__V1__REASON__REASON_MISSING_FIELD,
                      "payload: required (report, status, evaluation, sensor_alert, decision "
                      "or split)");
    }
}

Onegrid__V1__Envelope *og_validate_envelope(const uint8_t *buf, size_t len,
                                            const struct og_limits *lim, struct og_verdict *v)
{
    Onegrid__V1__Envelope *e;
    const char *want;

    v->reason = ONEGRID__V1__REASON__REASON_UNSPECIFIED;
    v->text[0] = '\0';
    if (len > lim->max_bytes) {
        refuse(v, ONEGRID__V1__REASON__REASON_TOO_LARGE, "event is %zu bytes, at most %zu allowed",
               len, lim->max_bytes);
        return NULL;
    }
    if (len == 0) {
        refuse(v, ONEGRID__V1__REASON__REASON_UNDECODABLE,
               "empty event: no Envelope in the Submit");
        return NULL;
    }
    if (og_validate_wire(&onegrid__v1__envelope__descriptor, buf, len, v))
        return NULL;
    e = onegrid__v1__envelope__unpack(NULL, len, buf);
    if (!e) {
        refuse(v, ONEGRID__V1__REASON__REASON_UNDECODABLE, "not a valid onegrid.v1.Envelope");
        return NULL;
    }
    if (check_id(v, "id", e->id) || check_source(v, e->source, lim->authenticated) ||
        check_time(v, e->time, lim) || check_location(v, e->location) || check_payload(v, e, lim))
        goto refused;
    want = og_payload_type(e->payload_case);
    if (strcmp(e->type, want) != 0) {
        refuse(v, ONEGRID__V1__REASON__REASON_TYPE_MISMATCH,
               "type: \"%s\" does not match the payload, which is a %s", e->type, want);
        goto refused;
    }
    if (e->payload_case != ONEGRID__V1__ENVELOPE__PAYLOAD_REPORT &&
        e->payload_case != ONEGRID__V1__ENVELOPE__PAYLOAD_SENSOR_ALERT &&
        check_str(v, "subject", e->subject, 0, 64))
        goto refused;
    return e;
refused:
    onegrid__v1__envelope__free_unpacked(e, NULL);
    return NULL;
}
