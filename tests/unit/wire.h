/* Test helpers: a hand encoder for protobuf wire bytes (to write what protobuf-c will not:
 * NUL inside strings, invalid UTF-8, unknown fields, repeated oneof members) and a
 * complete, valid Envelope of each kind to start from. Header-only, static inline, for
 * the unit tests alone. */
#ifndef OG_TEST_WIRE_H
#define OG_TEST_WIRE_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "onegrid/v1/event.pb-c.h"

/* 2026-11-20T01:15:00Z: the tests' "now". */
#define T_NOW 1795137300LL

struct wbuf {
    uint8_t data[16384];
    size_t len;
};

static inline void w_raw(struct wbuf *b, const void *p, size_t n)
{
    if (n > sizeof(b->data) - b->len)
        abort(); /* a test built something far larger than any it means to */
    memcpy(b->data + b->len, p, n);
    b->len += n;
}

static inline void w_varint(struct wbuf *b, uint64_t v)
{
    do {
        uint8_t byte = (uint8_t)(v & 0x7f);
        v >>= 7;
        if (v)
            byte |= 0x80;
        w_raw(b, &byte, 1);
    } while (v);
}

static inline void w_tag(struct wbuf *b, unsigned field, unsigned wire_type)
{
    w_varint(b, ((uint64_t)field << 3) | wire_type);
}

/* A length-delimited field (string, bytes, message) with the given raw bytes. */
static inline void w_ld(struct wbuf *b, unsigned field, const void *p, size_t n)
{
    w_tag(b, field, 2);
    w_varint(b, n);
    w_raw(b, p, n);
}

static inline void w_int(struct wbuf *b, unsigned field, uint64_t v)
{
    w_tag(b, field, 0);
    w_varint(b, v);
}

/* Appends the packed form of m. */
static inline void w_msg(struct wbuf *b, const ProtobufCMessage *m)
{
    size_t n = protobuf_c_message_get_packed_size(m);
    if (n > sizeof(b->data) - b->len)
        abort();
    b->len += protobuf_c_message_pack(m, b->data + b->len);
}

/* Appends m as field `field` of the enclosing message. */
static inline void w_sub(struct wbuf *b, unsigned field, const ProtobufCMessage *m)
{
    struct wbuf tmp = {.len = 0};
    w_msg(&tmp, m);
    w_ld(b, field, tmp.data, tmp.len);
}

/* One Envelope with storage for every payload; fill with one of the ex_* below. */
struct ex {
    Onegrid__V1__Envelope e;
    Onegrid__V1__Timestamp time;
    Onegrid__V1__Location location;
    Onegrid__V1__NewReport report;
    Onegrid__V1__Contact contact;
    Onegrid__V1__StatusUpdate status;
    Onegrid__V1__Evaluation evaluation;
    Onegrid__V1__SensorAlert alert;
    Onegrid__V1__MeetingDecision decision;
    Onegrid__V1__CaseSplit split;
    char *case_ids[2];
};

static inline void ex_base(struct ex *x, const char *type)
{
    memset(x, 0, sizeof(*x));
    onegrid__v1__envelope__init(&x->e);
    onegrid__v1__timestamp__init(&x->time);
    onegrid__v1__location__init(&x->location);
    onegrid__v1__new_report__init(&x->report);
    onegrid__v1__contact__init(&x->contact);
    onegrid__v1__status_update__init(&x->status);
    onegrid__v1__evaluation__init(&x->evaluation);
    onegrid__v1__sensor_alert__init(&x->alert);
    onegrid__v1__meeting_decision__init(&x->decision);
    onegrid__v1__case_split__init(&x->split);
    x->e.id = (char *)"evt-0001";
    x->e.source = (char *)"zongzhi";
    x->e.type = (char *)type;
    x->time.seconds = T_NOW - 600;
    x->time.nanos = 250000000;
    x->e.time = &x->time;
}

/* A resident's report with location and contact, Chinese text included. */
static inline void ex_report(struct ex *x)
{
    ex_base(x, "report");
    x->e.subject = (char *)"BJT-QY-03";
    x->location.latitude = 39.9042;
    x->location.longitude = 116.4074;
    x->location.address = (char *)"沁苑社区 12号楼 3单元";
    x->e.location = &x->location;
    x->report.category = (char *)"facility.handrail";
    x->report.title = (char *)"楼道扶手松动";
    x->report.description = (char *)"3单元二楼扶手松动, 老人上下楼不安全";
    x->report.channel = ONEGRID__V1__CHANNEL__CHANNEL_DOOR_VISIT;
    x->contact.name = (char *)"王阿姨";
    x->contact.phone = (char *)"+86 138-0000-0000";
    x->report.contact = &x->contact;
    x->e.payload_case = ONEGRID__V1__ENVELOPE__PAYLOAD_REPORT;
    x->e.report = &x->report;
}

static inline void ex_alert(struct ex *x)
{
    ex_base(x, "sensor_alert");
    x->e.id = (char *)"alert-77";
    x->e.source = (char *)"iot.gas";
    x->e.subject = (char *)"GAS-0042";
    x->alert.category = (char *)"hazard.gas";
    x->alert.sensor_id = (char *)"CH4-0042";
    x->alert.title = (char *)"燃气浓度超限";
    x->alert.urgency = ONEGRID__V1__SENSOR_ALERT__URGENCY__URGENCY_IMMEDIATE;
    x->alert.severity = ONEGRID__V1__SENSOR_ALERT__SEVERITY__SEVERITY_SEVERE;
    x->alert.certainty = ONEGRID__V1__SENSOR_ALERT__CERTAINTY__CERTAINTY_OBSERVED;
    x->alert.reading = (char *)"CH4 2.3 %LEL";
    x->e.payload_case = ONEGRID__V1__ENVELOPE__PAYLOAD_SENSOR_ALERT;
    x->e.sensor_alert = &x->alert;
}

static inline void ex_status(struct ex *x)
{
    ex_base(x, "status");
    x->e.id = (char *)"st-9";
    x->status.case_id = (char *)"650204-00000001";
    x->status.status = ONEGRID__V1__STATUS_UPDATE__STATUS__STATUS_ACCEPTED;
    x->status.unit = (char *)"unit-a";
    x->status.note = (char *)"已受理";
    x->e.payload_case = ONEGRID__V1__ENVELOPE__PAYLOAD_STATUS;
    x->e.status = &x->status;
}

static inline void ex_evaluation(struct ex *x)
{
    ex_base(x, "evaluation");
    x->e.id = (char *)"ev-3";
    x->evaluation.case_id = (char *)"650204-00000001";
    x->evaluation.result = ONEGRID__V1__EVALUATION__RESULT__RESULT_SATISFIED;
    x->e.payload_case = ONEGRID__V1__ENVELOPE__PAYLOAD_EVALUATION;
    x->e.evaluation = &x->evaluation;
}

static inline void ex_decision(struct ex *x)
{
    ex_base(x, "decision");
    x->e.id = (char *)"md-1";
    x->case_ids[0] = (char *)"650204-00000001";
    x->case_ids[1] = (char *)"650204-00000002";
    x->decision.n_case_ids = 2;
    x->decision.case_ids = x->case_ids;
    x->decision.action = ONEGRID__V1__MEETING_DECISION__ACTION__ACTION_ASSIGN;
    x->decision.unit = (char *)"unit-b";
    x->e.payload_case = ONEGRID__V1__ENVELOPE__PAYLOAD_DECISION;
    x->e.decision = &x->decision;
}

/* An operator splits report zongzhi/evt-0002 off case 650204-00000001 (拆分). */
static inline void ex_split(struct ex *x)
{
    ex_base(x, "split");
    x->e.id = (char *)"split-1";
    x->split.case_id = (char *)"650204-00000001";
    x->split.report_source = (char *)"zongzhi";
    x->split.report_event_id = (char *)"evt-0002";
    x->split.note = (char *)"不是同一处扶手";
    x->e.payload_case = ONEGRID__V1__ENVELOPE__PAYLOAD_SPLIT;
    x->e.split = &x->split;
}

static inline void ex_pack(const struct ex *x, struct wbuf *b)
{
    b->len = 0;
    w_msg(b, &x->e.base);
}

#endif
