/* Unit tests for daemons/common/validate.c: valid envelopes of each kind pass, and every
 * Reason the validator gives comes with a text that names the field. Envelopes are built
 * with the generated protobuf-c API and packed; what protobuf-c cannot produce (NUL in a
 * string, invalid UTF-8, unknown fields, a oneof member twice) is hand-encoded. */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "util.h"
#include "validate.h"
#include "wire.h"

#define R(x) ONEGRID__V1__REASON__REASON_##x

static const struct og_limits lim = {
    .max_bytes = 65536,
    .now = T_NOW,
    .max_age = 30 * 86400,
    .max_future = 300,
};

/* Runs the validator on b and checks the outcome: reason, and (for refusals) that every
 * needle is in the text. Fails the test with the case's name otherwise. */
static void expect_with(const char *name, const uint8_t *buf, size_t len, const struct og_limits *l,
                        Onegrid__V1__Reason reason, const char *needle1, const char *needle2)
{
    struct og_verdict v;
    memset(&v, 0x5a, sizeof(v)); /* the validator must set every field it reports */
    Onegrid__V1__Envelope *e = og_validate_envelope(buf, len, l, &v);
    if (reason == R(UNSPECIFIED)) {
        if (!e || v.reason != R(UNSPECIFIED))
            fail_msg("%s: expected valid, got %s: %s", name, og_reason_name(v.reason),
                     v.reason == R(UNSPECIFIED) ? "" : v.text);
        onegrid__v1__envelope__free_unpacked(e, NULL);
        return;
    }
    if (e) {
        onegrid__v1__envelope__free_unpacked(e, NULL);
        fail_msg("%s: expected %s, got a valid envelope", name, og_reason_name(reason));
    }
    if (v.reason != reason)
        fail_msg("%s: expected %s, got %s (\"%s\")", name, og_reason_name(reason),
                 og_reason_name(v.reason), v.text);
    if (!memchr(v.text, '\0', sizeof(v.text)))
        fail_msg("%s: text not terminated", name);
    if (needle1 && !strstr(v.text, needle1))
        fail_msg("%s: text \"%s\" does not mention \"%s\"", name, v.text, needle1);
    if (needle2 && !strstr(v.text, needle2))
        fail_msg("%s: text \"%s\" does not mention \"%s\"", name, v.text, needle2);
}

static void expect(const char *name, const struct wbuf *b, Onegrid__V1__Reason reason,
                   const char *needle)
{
    expect_with(name, b->data, b->len, &lim, reason, needle, NULL);
}

static void expect_ex(const char *name, const struct ex *x, Onegrid__V1__Reason reason,
                      const char *needle)
{
    struct wbuf b;
    ex_pack(x, &b);
    expect(name, &b, reason, needle);
}

/* Valid events ----------------------------------------------------------------------- */

static void test_valid_report(void **state)
{
    struct ex x;
    struct wbuf b;
    struct og_verdict v;
    ex_report(&x);
    ex_pack(&x, &b);
    Onegrid__V1__Envelope *e = og_validate_envelope(b.data, b.len, &lim, &v);
    assert_non_null(e);
    assert_int_equal(v.reason, R(UNSPECIFIED));
    assert_string_equal(e->id, "evt-0001");
    assert_string_equal(e->source, "zongzhi");
    assert_int_equal(e->payload_case, ONEGRID__V1__ENVELOPE__PAYLOAD_REPORT);
    assert_string_equal(e->report->title, "楼道扶手松动");
    assert_string_equal(e->report->contact->phone, "+86 138-0000-0000");
    assert_int_equal(e->time->seconds, T_NOW - 600);
    assert_true(fabs(e->location->latitude - 39.9042) < 1e-12);
    onegrid__v1__envelope__free_unpacked(e, NULL);

    /* Optional parts may be left out. */
    x.e.location = NULL;
    x.report.contact = NULL;
    x.report.description = (char *)"";
    expect_ex("report without location, contact, description", &x, R(UNSPECIFIED), NULL);
}

static void test_valid_sensor_alert(void **state)
{
    struct ex x;
    ex_alert(&x);
    expect_ex("sensor alert", &x, R(UNSPECIFIED), NULL);
    x.alert.reading = (char *)"";
    expect_ex("sensor alert without reading", &x, R(UNSPECIFIED), NULL);
}

static void test_valid_status_update(void **state)
{
    struct ex x;
    ex_status(&x);
    expect_ex("status update without subject", &x, R(UNSPECIFIED), NULL);
    x.e.subject = (char *)"BJT-QY-03";
    expect_ex("status update with subject", &x, R(UNSPECIFIED), NULL);
    x.status.note = (char *)"";
    expect_ex("status update without note", &x, R(UNSPECIFIED), NULL);
}

static void test_valid_evaluation_and_decision(void **state)
{
    struct ex x;
    ex_evaluation(&x);
    expect_ex("evaluation", &x, R(UNSPECIFIED), NULL);
    ex_decision(&x);
    expect_ex("decision assign", &x, R(UNSPECIFIED), NULL);
    x.decision.action = ONEGRID__V1__MEETING_DECISION__ACTION__ACTION_CLOSE;
    x.decision.unit = (char *)"";
    expect_ex("decision close without unit", &x, R(UNSPECIFIED), NULL);
}

static void test_time_window_edges(void **state)
{
    struct ex x;
    ex_report(&x);
    x.time.seconds = T_NOW + 300;
    expect_ex("time exactly max_future ahead", &x, R(UNSPECIFIED), NULL);
    x.time.seconds = T_NOW - 30 * 86400;
    expect_ex("time exactly max_age old", &x, R(UNSPECIFIED), NULL);
    x.time.nanos = 999999999;
    expect_ex("nanos 999999999", &x, R(UNSPECIFIED), NULL);
}

/* TOO_LARGE -------------------------------------------------------------------------- */

static void test_too_large(void **state)
{
    struct ex x;
    struct wbuf b;
    struct og_limits l = lim;
    ex_report(&x);
    ex_pack(&x, &b);
    l.max_bytes = b.len;
    expect_with("exactly max_bytes", b.data, b.len, &l, R(UNSPECIFIED), NULL, NULL);
    l.max_bytes = b.len - 1;
    char size[32];
    snprintf(size, sizeof(size), "%zu", b.len);
    expect_with("one byte over max_bytes", b.data, b.len, &l, R(TOO_LARGE), size, NULL);
    /* Size is checked before anything is read: garbage over the limit is TOO_LARGE. */
    memset(b.data, 0xff, 200);
    l.max_bytes = 100;
    expect_with("garbage over max_bytes", b.data, 200, &l, R(TOO_LARGE), "200", "100");
}

/* UNDECODABLE ------------------------------------------------------------------------ */

static void test_undecodable(void **state)
{
    static const struct {
        const char *name;
        const char *bytes;
        size_t len;
        const char *needle;
    } cases[] = {
        {"empty event", "", 0, "empty event: no Envelope in the Submit"},
        {"garbage: unterminated varint tag", "\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff", 11,
         "tag"},
        {"field number 0", "\x00\x01", 2, "tag"},
        {"id length runs past the end",
         "\x0a\x05"
         "ab",
         4, "id"},
        {"id length varint cut short", "\x0a\x80", 2, "id"},
        {"id with wire type 0 (varint)", "\x08\x01", 2, "id"},
        {"time (message) with wire type 5", "\x25\x01\x02\x03\x04", 5, "time"},
        {"id with wire type 1, truncated", "\x09\x01\x02", 3, "id"},
        {"group wire type 3 on id", "\x0b", 1, "id"},
        {"plain text", "hello, world", 12, NULL},
    };
    for (size_t i = 0; i < OG_ARRAY_SIZE(cases); i++)
        expect_with(cases[i].name, (const uint8_t *)cases[i].bytes, cases[i].len, &lim,
                    R(UNDECODABLE), cases[i].needle, NULL);

    /* A valid envelope cut in the middle of its report. */
    struct ex x;
    struct wbuf b;
    ex_report(&x);
    ex_pack(&x, &b);
    b.len -= 5;
    expect("valid envelope truncated by 5 bytes", &b, R(UNDECODABLE), "report");

    /* Wrong wire type inside a nested message: report.channel as a string. */
    struct wbuf inner = {.len = 0};
    w_ld(&inner, 4, "x", 1);
    ex_report(&x);
    x.e.payload_case = ONEGRID__V1__ENVELOPE__PAYLOAD__NOT_SET;
    x.e.report = NULL;
    ex_pack(&x, &b);
    w_ld(&b, 10, inner.data, inner.len);
    expect("report.channel with wire type 2", &b, R(UNDECODABLE), "channel");

    /* A varint cut short at the end of a nested message. */
    inner.len = 0;
    w_tag(&inner, 4, 0);
    ex_report(&x);
    x.e.payload_case = ONEGRID__V1__ENVELOPE__PAYLOAD__NOT_SET;
    x.e.report = NULL;
    ex_pack(&x, &b);
    w_ld(&b, 10, inner.data, inner.len);
    expect("report.channel varint missing", &b, R(UNDECODABLE), "channel");
}

/* INVALID_UTF8 / EMBEDDED_NUL --------------------------------------------------------- */

/* A valid report without subject, then a hand-encoded subject with the given bytes. */
static void report_with_subject(struct wbuf *b, const char *subject, size_t n)
{
    struct ex x;
    ex_report(&x);
    x.e.subject = (char *)"";
    ex_pack(&x, b);
    w_ld(b, 5, subject, n);
}

/* x's envelope with its NewReport hand-encoded: x's report packed, then extra. */
static void report_with_extra_from(const struct ex *x, struct wbuf *b, const struct wbuf *extra)
{
    struct ex hdr = *x;
    struct wbuf inner = {.len = 0};
    w_msg(&inner, &x->report.base);
    w_raw(&inner, extra->data, extra->len);
    hdr.e.payload_case = ONEGRID__V1__ENVELOPE__PAYLOAD__NOT_SET;
    hdr.e.report = NULL;
    ex_pack(&hdr, b);
    w_ld(b, 10, inner.data, inner.len);
}

/* The example report with extra bytes at the end of its NewReport. */
static void report_with_extra(struct wbuf *b, const struct wbuf *extra)
{
    struct ex x;
    ex_report(&x);
    report_with_extra_from(&x, b, extra);
}

static void test_invalid_utf8(void **state)
{
    struct wbuf b;
    struct ex x;

    report_with_subject(&b, "BJT-\xc0\x80", 6);
    expect("subject with overlong NUL", &b, R(INVALID_UTF8), "subject");
    report_with_subject(&b, "\xed\xa0\x80", 3);
    expect("subject with a surrogate", &b, R(INVALID_UTF8), "subject");
    report_with_subject(&b, "BJT\xe6\xb2", 5);
    expect("subject with a truncated sequence", &b, R(INVALID_UTF8), "subject");
    report_with_subject(&b, "\xf4\x90\x80\x80", 4);
    expect("subject above U+10FFFF", &b, R(INVALID_UTF8), "subject");

    /* Two levels down: report.contact.name. */
    struct wbuf contact = {.len = 0}, extra = {.len = 0};
    w_ld(&contact, 1, "\xff\xfe", 2);
    w_ld(&extra, 5, contact.data, contact.len);
    ex_report(&x);
    x.report.contact = NULL;
    report_with_extra_from(&x, &b, &extra);
    expect("report.contact.name with 0xff", &b, R(INVALID_UTF8), "name");

    /* protobuf-c packs such a string without complaint: title with a lone continuation. */
    ex_report(&x);
    x.report.title = (char *)"bad \x80 title";
    expect_ex("report.title with a lone continuation byte", &x, R(INVALID_UTF8), "title");
}

static void test_embedded_nul(void **state)
{
    struct wbuf b, extra = {.len = 0};
    struct ex x;

    report_with_subject(&b, "BJT\0QY", 6);
    expect("subject with NUL inside", &b, R(EMBEDDED_NUL), "subject");
    report_with_subject(&b, "\0", 1);
    expect("subject that is one NUL", &b, R(EMBEDDED_NUL), "subject");

    /* report.description with a NUL: protobuf-c would silently cut it at the NUL. */
    ex_report(&x);
    x.report.description = (char *)"";
    w_ld(&extra, 3, "before\0after", 12);
    report_with_extra_from(&x, &b, &extra);
    expect("report.description with NUL", &b, R(EMBEDDED_NUL), "description");
}

/* UNKNOWN_FIELD ---------------------------------------------------------------------- */

static void test_unknown_field(void **state)
{
    struct ex x;
    struct wbuf b, extra = {.len = 0};

    ex_report(&x);
    ex_pack(&x, &b);
    w_int(&b, 99, 1);
    expect("envelope field 99 (varint)", &b, R(UNKNOWN_FIELD), "99");
    expect("envelope field 99 names the message", &b, R(UNKNOWN_FIELD), "Envelope");

    ex_report(&x);
    ex_pack(&x, &b);
    w_ld(&b, 7, "x", 1); /* a gap in the numbering: field 7 does not exist */
    expect("envelope field 7 (string)", &b, R(UNKNOWN_FIELD), "7");

    w_int(&extra, 99, 5);
    report_with_extra(&b, &extra);
    expect("NewReport field 99", &b, R(UNKNOWN_FIELD), "NewReport");
    expect("NewReport field 99 number", &b, R(UNKNOWN_FIELD), "99");
}

/* UNKNOWN_ENUM ----------------------------------------------------------------------- */

static void test_unknown_enum(void **state)
{
    struct ex x;
    ex_report(&x);
    x.report.channel = (Onegrid__V1__Channel)99;
    expect_ex("report.channel 99", &x, R(UNKNOWN_ENUM), "channel");
    expect_ex("report.channel 99 value", &x, R(UNKNOWN_ENUM), "99");
    x.report.channel = (Onegrid__V1__Channel)-1;
    expect_ex("report.channel -1", &x, R(UNKNOWN_ENUM), "channel");

    ex_status(&x);
    x.status.status = (Onegrid__V1__StatusUpdate__Status)99;
    expect_ex("status.status 99", &x, R(UNKNOWN_ENUM), "status");

    ex_alert(&x);
    x.alert.severity = (Onegrid__V1__SensorAlert__Severity)5;
    expect_ex("sensor_alert.severity 5", &x, R(UNKNOWN_ENUM), "severity");
}

/* MISSING_FIELD ---------------------------------------------------------------------- */

static void test_missing_field(void **state)
{
    struct ex x;

    ex_report(&x);
    x.e.payload_case = ONEGRID__V1__ENVELOPE__PAYLOAD__NOT_SET;
    x.e.report = NULL;
    expect_ex("no payload", &x, R(MISSING_FIELD), "payload");

    ex_report(&x);
    x.report.title = (char *)"";
    expect_ex("empty report.title", &x, R(MISSING_FIELD), "report.title");
    /* White space alone says nothing on a work list (review: " " and "\n" passed). */
    x.report.title = (char *)" \n\t\xe3\x80\x80\xc2\xa0";
    expect_ex("white-space report.title", &x, R(MISSING_FIELD),
              "report.title: required (white space only)");
    x.report.title = (char *)" \xe3\x80\x80扶手 ";
    expect_ex("a report.title with white space around it", &x, R(UNSPECIFIED), NULL);

    ex_report(&x);
    x.report.channel = ONEGRID__V1__CHANNEL__CHANNEL_UNSPECIFIED;
    expect_ex("report.channel 0", &x, R(MISSING_FIELD), "report.channel");

    ex_report(&x);
    x.report.category = (char *)"";
    expect_ex("empty report.category", &x, R(MISSING_FIELD), "report.category");

    ex_report(&x);
    x.e.subject = (char *)"";
    expect_ex("report without subject", &x, R(MISSING_FIELD), "subject");

    ex_report(&x);
    x.e.id = (char *)"";
    expect_ex("no id", &x, R(MISSING_FIELD), "id");

    ex_report(&x);
    x.e.source = (char *)"";
    expect_ex("no source", &x, R(MISSING_FIELD), "source");

    ex_status(&x);
    x.status.case_id = (char *)"";
    expect_ex("status without case_id", &x, R(MISSING_FIELD), "status.case_id");

    ex_status(&x);
    x.status.unit = (char *)"";
    expect_ex("status without unit", &x, R(MISSING_FIELD), "status.unit");

    ex_status(&x);
    x.status.status = ONEGRID__V1__STATUS_UPDATE__STATUS__STATUS_UNSPECIFIED;
    expect_ex("status.status 0", &x, R(MISSING_FIELD), "status.status");

    ex_evaluation(&x);
    x.evaluation.result = ONEGRID__V1__EVALUATION__RESULT__RESULT_UNSPECIFIED;
    expect_ex("evaluation.result 0", &x, R(MISSING_FIELD), "evaluation.result");

    ex_alert(&x);
    x.alert.certainty = ONEGRID__V1__SENSOR_ALERT__CERTAINTY__CERTAINTY_UNSPECIFIED;
    expect_ex("sensor_alert.certainty 0", &x, R(MISSING_FIELD), "sensor_alert.certainty");

    ex_alert(&x);
    x.alert.sensor_id = (char *)"";
    expect_ex("sensor_alert without sensor_id", &x, R(MISSING_FIELD), "sensor_alert.sensor_id");

    ex_decision(&x);
    x.decision.n_case_ids = 0;
    expect_ex("decision without case_ids", &x, R(MISSING_FIELD), "decision.case_ids");

    ex_decision(&x);
    x.decision.unit = (char *)"";
    expect_ex("decision assign without unit", &x, R(MISSING_FIELD), "decision.unit");
}

/* A decision's unit is bounded whatever its action: a 65-byte unit with ACTION_CLOSE passed
 * intake, dispatch's frame check dropped the frame unanswered, intake resent it for ever,
 * and each such frame held a slot of dispatch's window until intake restarted. */
static void test_decision_unit_bounded(void **state)
{
    struct ex x;
    char unit[66];
    (void)state;
    memset(unit, 'U', 65);
    unit[65] = '\0';
    ex_decision(&x);
    x.decision.action = ONEGRID__V1__MEETING_DECISION__ACTION__ACTION_CLOSE;
    x.decision.unit = unit;
    expect_ex("decision close with a 65-byte unit", &x, R(INVALID_FIELD), "decision.unit");
    unit[64] = '\0';
    expect_ex("decision close with a 64-byte unit", &x, R(UNSPECIFIED), NULL);
    x.decision.unit = (char *)"单位";
    expect_ex("decision close with a unit not printable ASCII", &x, R(INVALID_FIELD),
              "decision.unit");
}

/* INVALID_FIELD ---------------------------------------------------------------------- */

static void test_invalid_field_lengths(void **state)
{
    struct ex x;
    char title[3 * 130 + 1];

    /* 128 ASCII characters pass, 129 do not. */
    memset(title, 'a', 129);
    title[128] = '\0';
    ex_report(&x);
    x.report.title = title;
    expect_ex("title of 128 ASCII characters", &x, R(UNSPECIFIED), NULL);
    title[128] = 'a';
    title[129] = '\0';
    expect_ex("title of 129 ASCII characters", &x, R(INVALID_FIELD), "report.title");
    expect_ex("title of 129 ASCII characters, count", &x, R(INVALID_FIELD), "129");

    /* Characters, not bytes: 128 Chinese characters are 384 bytes and pass. */
    title[0] = '\0';
    for (int i = 0; i < 128; i++)
        strcat(title, "网");
    assert_int_equal(strlen(title), 384);
    expect_ex("title of 128 Chinese characters", &x, R(UNSPECIFIED), NULL);
    strcat(title, "格");
    expect_ex("title of 129 Chinese characters", &x, R(INVALID_FIELD), "report.title");

    /* id: 64 characters, printable ASCII only. */
    char id[70];
    memset(id, 'i', 65);
    id[64] = '\0';
    ex_status(&x);
    x.e.id = id;
    expect_ex("id of 64 characters", &x, R(UNSPECIFIED), NULL);
    id[64] = 'i';
    id[65] = '\0';
    expect_ex("id of 65 characters", &x, R(INVALID_FIELD), "id");
    x.e.id = (char *)"evt 1";
    expect_ex("id with a space", &x, R(INVALID_FIELD), "id");
    x.e.id = (char *)"事件1";
    expect_ex("id with non-ASCII", &x, R(INVALID_FIELD), "id");

    ex_report(&x);
    x.contact.phone = (char *)"138-0000-0000 ext 5";
    expect_ex("phone with letters", &x, R(INVALID_FIELD), "report.contact.phone");
    x.contact.phone = (char *)" + - ";
    expect_ex("phone without a digit", &x, R(INVALID_FIELD), "report.contact.phone: no digit");
    x.contact.phone = (char *)"";
    expect_ex("no phone", &x, R(UNSPECIFIED), NULL);

    ex_decision(&x);
    char *many[101];
    for (int i = 0; i < 101; i++)
        many[i] = (char *)"650204-00000001";
    x.decision.case_ids = many;
    x.decision.n_case_ids = 100;
    expect_ex("decision with 100 case_ids", &x, R(UNSPECIFIED), NULL);
    x.decision.n_case_ids = 101;
    expect_ex("decision with 101 case_ids", &x, R(INVALID_FIELD), "decision.case_ids");
}

static void test_invalid_field_twice(void **state)
{
    struct ex x;
    struct wbuf b, extra = {.len = 0};

    /* A singular field twice: protobuf-c would keep the last silently. */
    ex_report(&x);
    ex_pack(&x, &b);
    w_ld(&b, 5, "OTHER-01", 8);
    expect("subject twice", &b, R(INVALID_FIELD), "subject");

    ex_report(&x);
    ex_pack(&x, &b);
    w_ld(&b, 1, "evt-0002", 8);
    expect("id twice", &b, R(INVALID_FIELD), "id");

    /* Inside NewReport: title twice. */
    w_ld(&extra, 2, "second title", 12);
    report_with_extra(&b, &extra);
    expect("report.title twice", &b, R(INVALID_FIELD), "title");

    /* The same oneof member twice is a repeated field, not two payloads. */
    ex_report(&x);
    ex_pack(&x, &b);
    w_sub(&b, 10, &x.report.base);
    expect("report twice", &b, R(INVALID_FIELD), "report");
}

/* INVALID_TIME ----------------------------------------------------------------------- */

static void test_invalid_time(void **state)
{
    struct ex x;

    ex_report(&x);
    x.e.time = NULL;
    expect_ex("no time", &x, R(INVALID_TIME), "time");

    ex_report(&x);
    x.time.seconds = T_NOW + 301;
    expect_ex("time beyond max_future", &x, R(INVALID_TIME), "future");

    ex_report(&x);
    x.time.seconds = T_NOW + 86400;
    expect_ex("time a day ahead", &x, R(INVALID_TIME), "time");

    ex_report(&x);
    x.time.seconds = T_NOW - 30 * 86400 - 1;
    expect_ex("time older than max_age", &x, R(INVALID_TIME), "older");

    ex_report(&x);
    x.time.nanos = 1000000000;
    expect_ex("nanos 1e9", &x, R(INVALID_TIME), "time");

    ex_report(&x);
    x.time.nanos = -1;
    expect_ex("nanos -1", &x, R(INVALID_TIME), "time");

    ex_report(&x);
    x.time.seconds = 253402300800LL; /* year 10000 */
    expect_ex("seconds past year 9999", &x, R(INVALID_TIME), "time");

    ex_report(&x);
    x.time.seconds = 0;
    x.time.nanos = 0;
    expect_ex("time at the epoch (empty Timestamp)", &x, R(INVALID_TIME), "time");
}

/* INVALID_LOCATION ------------------------------------------------------------------- */

static void test_invalid_location(void **state)
{
    static const struct {
        const char *name;
        double lat, lon;
    } bad[] = {
        {"lat 91", 91, 116},        {"lat -90.5", -90.5, 116}, {"lon 180.1", 39, 180.1},
        {"lon -181", 39, -181},     {"lat NaN", NAN, 116},     {"lon NaN", 39, NAN},
        {"lat inf", INFINITY, 116}, {"(0, 0)", 0, 0},
    };
    struct ex x;
    for (size_t i = 0; i < OG_ARRAY_SIZE(bad); i++) {
        ex_report(&x);
        x.location.latitude = bad[i].lat;
        x.location.longitude = bad[i].lon;
        expect_ex(bad[i].name, &x, R(INVALID_LOCATION), "location");
    }
    /* The corners of the range, and (0, x) on the equator, are fine. */
    ex_report(&x);
    x.location.latitude = 90;
    x.location.longitude = -180;
    expect_ex("(90, -180)", &x, R(UNSPECIFIED), NULL);
    x.location.latitude = 0;
    x.location.longitude = 32.5;
    expect_ex("(0, 32.5)", &x, R(UNSPECIFIED), NULL);
}

/* MULTIPLE_PAYLOADS ------------------------------------------------------------------ */

static void test_multiple_payloads(void **state)
{
    struct ex x, y;
    struct wbuf b;

    ex_report(&x);
    ex_alert(&y);
    x.e.payload_case = ONEGRID__V1__ENVELOPE__PAYLOAD__NOT_SET;
    x.e.report = NULL;
    ex_pack(&x, &b);
    ex_report(&x);
    w_sub(&b, 10, &x.report.base);
    w_sub(&b, 13, &y.alert.base);
    expect("report (10) then sensor_alert (13)", &b, R(MULTIPLE_PAYLOADS), "report");
    expect("report (10) then sensor_alert (13), second name", &b, R(MULTIPLE_PAYLOADS),
           "sensor_alert");

    /* Order does not matter, nor do other fields in between: status (11), the header,
     * evaluation (12). */
    struct wbuf c = {.len = 0};
    ex_status(&y);
    w_sub(&c, 11, &y.status.base);
    ex_status(&x);
    x.e.payload_case = ONEGRID__V1__ENVELOPE__PAYLOAD__NOT_SET;
    x.e.status = NULL;
    ex_pack(&x, &b);
    w_raw(&c, b.data, b.len);
    ex_evaluation(&y);
    w_sub(&c, 12, &y.evaluation.base);
    expect("status, header, evaluation", &c, R(MULTIPLE_PAYLOADS), "status");
    expect("status, header, evaluation names both", &c, R(MULTIPLE_PAYLOADS), "evaluation");
}

/* TYPE_MISMATCH / UNAUTHORISED_SOURCE ------------------------------------------------ */

static void test_type_mismatch(void **state)
{
    struct ex x;
    ex_report(&x);
    x.e.type = (char *)"status";
    expect_ex("type status on a report", &x, R(TYPE_MISMATCH), "type");
    expect_ex("type status on a report names the payload", &x, R(TYPE_MISMATCH), "report");
    x.e.type = (char *)"";
    expect_ex("empty type", &x, R(TYPE_MISMATCH), "type");
    x.e.type = (char *)"Report";
    expect_ex("type with capital", &x, R(TYPE_MISMATCH), "type");
    ex_alert(&x);
    x.e.type = (char *)"sensor-alert";
    expect_ex("sensor-alert", &x, R(TYPE_MISMATCH), "sensor_alert");
}

static void test_unauthorised_source(void **state)
{
    static const char *const bad[] = {"Weibo!",   "Zongzhi", "zong zhi",
                                      "-zongzhi", "_x",      "0123456789012345678901234567890123"};
    struct ex x;
    for (size_t i = 0; i < OG_ARRAY_SIZE(bad); i++) {
        ex_report(&x);
        x.e.source = (char *)bad[i];
        char name[64];
        snprintf(name, sizeof(name), "source \"%s\"", bad[i]);
        expect_ex(name, &x, R(UNAUTHORISED_SOURCE), "source");
    }
    ex_report(&x);
    x.e.source = (char *)"Weibo!";
    expect_ex("source text quotes the value", &x, R(UNAUTHORISED_SOURCE), "Weibo!");
    x.e.source = (char *)"12345";
    expect_ex("source 12345 (a code may start with a digit)", &x, R(UNSPECIFIED), NULL);
    x.e.source = (char *)"a.b_c-d";
    expect_ex("source a.b_c-d", &x, R(UNSPECIFIED), NULL);
}

/* og_validate_wire, names ------------------------------------------------------------ */

static void test_validate_wire_other_message(void **state)
{
    struct og_verdict v;
    struct wbuf b = {.len = 0};
    Onegrid__V1__Nack n = ONEGRID__V1__NACK__INIT;
    n.reason = R(UNKNOWN_GRID);
    n.text = (char *)"subject: unknown";
    w_msg(&b, &n.base);
    assert_int_equal(og_validate_wire(&onegrid__v1__nack__descriptor, b.data, b.len, &v), 0);
    assert_int_equal(v.reason, R(UNSPECIFIED));
    w_int(&b, 1, 77); /* reason twice, and 77 is no Reason */
    assert_int_equal(og_validate_wire(&onegrid__v1__nack__descriptor, b.data, b.len, &v), -EINVAL);
    assert_int_equal(v.reason, R(INVALID_FIELD));
    b.len = 0;
    w_int(&b, 1, 77);
    assert_int_equal(og_validate_wire(&onegrid__v1__nack__descriptor, b.data, b.len, &v), -EINVAL);
    assert_int_equal(v.reason, R(UNKNOWN_ENUM));
    assert_non_null(strstr(v.text, "reason"));
    /* An empty message is clean on the wire. */
    assert_int_equal(og_validate_wire(&onegrid__v1__nack__descriptor, b.data, 0, &v), 0);
}

static void test_reason_name(void **state)
{
    assert_string_equal(og_reason_name(R(UNSPECIFIED)), "REASON_UNSPECIFIED");
    assert_string_equal(og_reason_name(R(TOO_LARGE)), "REASON_TOO_LARGE");
    assert_string_equal(og_reason_name(R(UNKNOWN_GRID)), "REASON_UNKNOWN_GRID");
    assert_string_equal(og_reason_name(R(STORAGE_REFUSED)), "REASON_STORAGE_REFUSED");
    assert_non_null(og_reason_name((Onegrid__V1__Reason)999));
    assert_string_equal(og_reason_name((Onegrid__V1__Reason)999), "REASON_UNSPECIFIED");
}

static void test_payload_type(void **state)
{
    assert_string_equal(og_payload_type(ONEGRID__V1__ENVELOPE__PAYLOAD_REPORT), "report");
    assert_string_equal(og_payload_type(ONEGRID__V1__ENVELOPE__PAYLOAD_STATUS), "status");
    assert_string_equal(og_payload_type(ONEGRID__V1__ENVELOPE__PAYLOAD_EVALUATION), "evaluation");
    assert_string_equal(og_payload_type(ONEGRID__V1__ENVELOPE__PAYLOAD_SENSOR_ALERT),
                        "sensor_alert");
    assert_string_equal(og_payload_type(ONEGRID__V1__ENVELOPE__PAYLOAD_DECISION), "decision");
    assert_null(og_payload_type(ONEGRID__V1__ENVELOPE__PAYLOAD__NOT_SET));
    assert_null(og_payload_type((Onegrid__V1__Envelope__PayloadCase)99));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_report),
        cmocka_unit_test(test_valid_sensor_alert),
        cmocka_unit_test(test_valid_status_update),
        cmocka_unit_test(test_valid_evaluation_and_decision),
        cmocka_unit_test(test_time_window_edges),
        cmocka_unit_test(test_too_large),
        cmocka_unit_test(test_undecodable),
        cmocka_unit_test(test_invalid_utf8),
        cmocka_unit_test(test_embedded_nul),
        cmocka_unit_test(test_unknown_field),
        cmocka_unit_test(test_unknown_enum),
        cmocka_unit_test(test_missing_field),
        cmocka_unit_test(test_decision_unit_bounded),
        cmocka_unit_test(test_invalid_field_lengths),
        cmocka_unit_test(test_invalid_field_twice),
        cmocka_unit_test(test_invalid_time),
        cmocka_unit_test(test_invalid_location),
        cmocka_unit_test(test_multiple_payloads),
        cmocka_unit_test(test_type_mismatch),
        cmocka_unit_test(test_unauthorised_source),
        cmocka_unit_test(test_validate_wire_other_message),
        cmocka_unit_test(test_reason_name),
        cmocka_unit_test(test_payload_type),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
