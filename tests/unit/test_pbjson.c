/* Unit tests for daemons/common/pbjson.c: JSON -> protobuf (what onegridctl publish reads)
 * and protobuf -> JSON (what archive stores). Every message built here is freed: the
 * suite also runs under ASan/LSan. */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "onegrid/v1/internal.pb-c.h"
#include "pbjson.h"
#include "util.h"
#include "wire.h"

/* The example report of wire.h (ex_report) as a publisher would write it in JSON. */
static const char full_event[] =
    "{"
    "\"id\": \"evt-0001\", \"source\": \"zongzhi\", \"type\": \"report\","
    "\"time\": \"2026-11-20T09:05:00.25+08:00\","
    "\"subject\": \"BJT-QY-03\","
    "\"location\": {\"latitude\": 39.9042, \"longitude\": 116.4074,"
    "              \"address\": \"沁苑社区 12号楼 3单元\"},"
    "\"report\": {\"category\": \"facility.handrail\", \"title\": \"楼道扶手松动\","
    "             \"description\": \"3单元二楼扶手松动, 老人上下楼不安全\","
    "             \"channel\": \"CHANNEL_DOOR_VISIT\","
    "             \"contact\": {\"name\": \"王阿姨\", \"phone\": \"+86 138-0000-0000\"}}"
    "}";

/* Parses text as JSON, then as a message of type d. NULL with err filled on failure. */
static ProtobufCMessage *parse_text(const char *text, const ProtobufCMessageDescriptor *d,
                                    char *err, size_t errlen)
{
    json_object *obj = json_tokener_parse(text);
    ProtobufCMessage *m;
    if (!obj)
        fail_msg("test JSON does not parse: %s", text);
    err[0] = '\0';
    m = og_pbjson_parse(obj, d, err, errlen);
    json_object_put(obj);
    return m;
}

static Onegrid__V1__Envelope *parse_env(const char *text, char *err, size_t errlen)
{
    return (Onegrid__V1__Envelope *)parse_text(text, &onegrid__v1__envelope__descriptor, err,
                                               errlen);
}

/* Expects text to be refused with an error that mentions each needle. */
static void refused(const char *text, const ProtobufCMessageDescriptor *d, const char *needle1,
                    const char *needle2)
{
    char err[256];
    ProtobufCMessage *m = parse_text(text, d, err, sizeof(err));
    if (m) {
        protobuf_c_message_free_unpacked(m, NULL);
        fail_msg("accepted: %s", text);
    }
    if (needle1 && !strstr(err, needle1))
        fail_msg("error \"%s\" for %s does not mention \"%s\"", err, text, needle1);
    if (needle2 && !strstr(err, needle2))
        fail_msg("error \"%s\" for %s does not mention \"%s\"", err, text, needle2);
}

static void refused_env(const char *text, const char *needle1, const char *needle2)
{
    refused(text, &onegrid__v1__envelope__descriptor, needle1, needle2);
}

/* Parsing ---------------------------------------------------------------------------- */

static void test_parse_full_event(void **state)
{
    char err[256];
    Onegrid__V1__Envelope *e = parse_env(full_event, err, sizeof(err));
    if (!e)
        fail_msg("full event refused: %s", err);
    assert_string_equal(e->id, "evt-0001");
    assert_string_equal(e->source, "zongzhi");
    assert_string_equal(e->type, "report");
    assert_string_equal(e->subject, "BJT-QY-03");
    assert_non_null(e->time);
    assert_int_equal(e->time->seconds, T_NOW - 600); /* 09:05+08:00 = 01:05Z */
    assert_int_equal(e->time->nanos, 250000000);
    assert_non_null(e->location);
    assert_true(e->location->latitude == 39.9042);
    assert_true(e->location->longitude == 116.4074);
    assert_string_equal(e->location->address, "沁苑社区 12号楼 3单元");
    assert_int_equal(e->payload_case, ONEGRID__V1__ENVELOPE__PAYLOAD_REPORT);
    assert_non_null(e->report);
    assert_string_equal(e->report->category, "facility.handrail");
    assert_string_equal(e->report->title, "楼道扶手松动");
    assert_int_equal(e->report->channel, ONEGRID__V1__CHANNEL__CHANNEL_DOOR_VISIT);
    assert_non_null(e->report->contact);
    assert_string_equal(e->report->contact->name, "王阿姨");
    assert_string_equal(e->report->contact->phone, "+86 138-0000-0000");

    /* The same event built with the protobuf-c API packs to the same bytes. */
    struct ex x;
    struct wbuf want, got = {.len = 0};
    ex_report(&x);
    ex_pack(&x, &want);
    w_msg(&got, &e->base);
    assert_int_equal(got.len, want.len);
    assert_memory_equal(got.data, want.data, want.len);
    protobuf_c_message_free_unpacked(&e->base, NULL);
}

static void test_parse_enums(void **state)
{
    char err[256];
    Onegrid__V1__Envelope *e;

    e = parse_env("{\"report\": {\"channel\": 2}}", err, sizeof(err));
    assert_non_null(e);
    assert_int_equal(e->report->channel, ONEGRID__V1__CHANNEL__CHANNEL_DOOR_VISIT);
    protobuf_c_message_free_unpacked(&e->base, NULL);

    /* Unknown numbers are kept as given, so that tests can send them to intake. */
    e = parse_env("{\"report\": {\"channel\": 99}}", err, sizeof(err));
    assert_non_null(e);
    assert_int_equal(e->report->channel, 99);
    protobuf_c_message_free_unpacked(&e->base, NULL);
    e = parse_env("{\"report\": {\"channel\": -2147483648}}", err, sizeof(err));
    assert_non_null(e);
    assert_true((int)e->report->channel == INT32_MIN);
    protobuf_c_message_free_unpacked(&e->base, NULL);
    /* Beyond int32, json-c's json_object_get_int used to give INT32_MAX silently. */
    refused_env("{\"report\": {\"channel\": 2147483648}}", "report.channel", "range");
    refused_env("{\"report\": {\"channel\": -2147483649}}", "report.channel", "range");
    refused_env("{\"report\": {\"channel\": 18446744073709551615}}", "report.channel", "range");

    e = parse_env("{\"status\": {\"status\": \"STATUS_CHECK_FAILED\"}}", err, sizeof(err));
    assert_non_null(e);
    assert_int_equal(e->status->status, ONEGRID__V1__STATUS_UPDATE__STATUS__STATUS_CHECK_FAILED);
    protobuf_c_message_free_unpacked(&e->base, NULL);

    refused_env("{\"report\": {\"channel\": \"CHANNEL_CARRIER_PIGEON\"}}", "report.channel",
                "enum");
    /* Names are the proto enum names, case and all. */
    refused_env("{\"report\": {\"channel\": \"channel_hotline\"}}", "report.channel", NULL);
    refused_env("{\"report\": {\"channel\": \"HOTLINE\"}}", "report.channel", NULL);
    refused_env("{\"report\": {\"channel\": 1.5}}", "report.channel", NULL);
}

static void test_parse_unknown_key(void **state)
{
    refused_env("{\"report\": {\"title\": \"x\", \"colour\": \"red\"}}", "report.colour",
                "unknown");
    refused_env("{\"colour\": \"red\"}", "colour", "unknown");
    refused_env("{\"report\": {\"contact\": {\"email\": \"a@b\"}}}", "report.contact.email",
                "unknown");
    /* JSON names (lowerCamelCase) are not accepted: keys are the proto field names. */
    refused_env("{\"sensorAlert\": {}}", "sensorAlert", "unknown");
}

static void test_parse_wrong_types(void **state)
{
    static const struct {
        const char *json;
        const char *path;
    } cases[] = {
        {"{\"id\": 5}", "id"},
        {"{\"id\": true}", "id"},
        {"{\"id\": [\"a\"]}", "id"},
        {"{\"id\": {}}", "id"},
        {"{\"location\": \"here\"}", "location"},
        {"{\"location\": [39.9, 116.4]}", "location"},
        {"{\"location\": {\"latitude\": \"39.9\"}}", "location.latitude"},
        {"{\"location\": {\"latitude\": true}}", "location.latitude"},
        {"{\"report\": {\"channel\": true}}", "report.channel"},
        {"{\"report\": {\"title\": 128}}", "report.title"},
        {"{\"report\": 5}", "report"},
        {"{\"time\": 1795137300}", "time"},
        {"{\"time\": {\"seconds\": 1795137300}}", "time"},
        {"{\"time\": \"2026-11-20 09:15\"}", "time"},
        {"{\"time\": \"2026-11-20T09:15:00\"}", "time"},
        {"{\"decision\": {\"case_ids\": \"650204-00000001\"}}", "decision.case_ids"},
        {"{\"decision\": {\"case_ids\": [\"650204-00000001\", 7]}}", "decision.case_ids"},
    };
    for (size_t i = 0; i < OG_ARRAY_SIZE(cases); i++)
        refused_env(cases[i].json, cases[i].path, NULL);

    /* Not an object at all. */
    char err[256];
    json_object *arr = json_tokener_parse("[1, 2]");
    assert_non_null(arr);
    assert_null(og_pbjson_parse(arr, &onegrid__v1__envelope__descriptor, err, sizeof(err)));
    assert_non_null(strstr(err, "object"));
    json_object_put(arr);

    /* Integers: out of range for the field, floats for integers, bytes refused. */
    refused("{\"credit\": 4294967296}", &onegrid__v1__frame__descriptor, "credit", "range");
    refused("{\"credit\": 3.5}", &onegrid__v1__frame__descriptor, "credit", "integer");
    refused("{\"submission\": {\"raw\": \"00ff\"}}", &onegrid__v1__frame__descriptor,
            "submission.raw", "bytes");
}

static void test_parse_integers(void **state)
{
    char err[256];
    Onegrid__V1__Frame *f = (Onegrid__V1__Frame *)parse_text(
        "{\"kind\": \"KIND_DATA\", \"key\": \"k\", \"epoch\": 9007199254740993, \"credit\": "
        "4294967295, \"decision\": {\"rule_id\": -5, \"rule_version\": 2}}",
        &onegrid__v1__frame__descriptor, err, sizeof(err));
    if (!f)
        fail_msg("frame refused: %s", err);
    assert_int_equal(f->kind, ONEGRID__V1__FRAME__KIND__KIND_DATA);
    assert_true(f->epoch == 9007199254740993ULL); /* above 2^53: no trip through double */
    assert_true(f->credit == 4294967295U);
    assert_non_null(f->decision);
    assert_true(f->decision->rule_id == -5);
    assert_int_equal(f->decision->rule_version, 2);
    protobuf_c_message_free_unpacked(&f->base, NULL);
}

static void test_parse_nul_refused(void **state)
{
    refused_env("{\"report\": {\"title\": \"a\\u0000b\"}}", "report.title", "NUL");
    refused_env("{\"id\": \"\\u0000\"}", "id", "NUL");
    /* Other escapes are fine. */
    char err[256];
    Onegrid__V1__Envelope *e =
        parse_env("{\"report\": {\"title\": \"a\\u0001\\u6c81\\n\"}}", err, sizeof(err));
    assert_non_null(e);
    assert_string_equal(e->report->title, "a\x01沁\n");
    protobuf_c_message_free_unpacked(&e->base, NULL);
}

/* Found by tests/fuzz (fuzz_pbjson): a time in years 0001 or 9999 whose offset takes it
 * out of them was taken, and rendered as year 0000 or 10000, which no reader takes back. */
static void test_parse_time_bounds(void **state)
{
    char err[256];
    Onegrid__V1__Envelope *e;

    refused_env("{\"time\": \"0001-01-01T00:30:00+01:00\"}", "time", "0001-01-01T00:00:00Z");
    refused_env("{\"time\": \"9999-12-31T23:59:59-21:00\"}", "time", "9999-12-31T23:59:59Z");
    refused_env("{\"time\": \"0000-06-01T00:00:00Z\"}", "time", "RFC 3339");
    /* The bounds themselves are times, in any offset that keeps them in range. */
    e = parse_env("{\"time\": \"0001-01-01T00:30:00+00:30\"}", err, sizeof(err));
    if (!e)
        fail_msg("lowest time refused: %s", err);
    assert_true(e->time->seconds == -62135596800LL);
    protobuf_c_message_free_unpacked(&e->base, NULL);
    e = parse_env("{\"time\": \"9999-12-31T23:59:59.999999999Z\"}", err, sizeof(err));
    if (!e)
        fail_msg("highest time refused: %s", err);
    assert_true(e->time->seconds == 253402300799LL);
    assert_int_equal(e->time->nanos, 999999999);
    protobuf_c_message_free_unpacked(&e->base, NULL);
}

static void test_parse_oneof(void **state)
{
    refused_env("{\"report\": {\"title\": \"t\"}, \"status\": {\"case_id\": \"c\"}}", "status",
                "oneof");
    refused_env("{\"sensor_alert\": {}, \"report\": {}}", "report", "oneof");
    /* A member given as null does not count. */
    char err[256];
    Onegrid__V1__Envelope *e =
        parse_env("{\"report\": null, \"status\": {\"case_id\": \"c\"}}", err, sizeof(err));
    if (!e)
        fail_msg("null member refused: %s", err);
    assert_int_equal(e->payload_case, ONEGRID__V1__ENVELOPE__PAYLOAD_STATUS);
    assert_string_equal(e->status->case_id, "c");
    protobuf_c_message_free_unpacked(&e->base, NULL);
    /* An empty member is still a member. */
    e = parse_env("{\"evaluation\": {}}", err, sizeof(err));
    assert_non_null(e);
    assert_int_equal(e->payload_case, ONEGRID__V1__ENVELOPE__PAYLOAD_EVALUATION);
    assert_non_null(e->evaluation);
    protobuf_c_message_free_unpacked(&e->base, NULL);
}

static void test_parse_failure_midway_frees(void **state)
{
    /* Errors deep inside, after allocations: ASan/LSan would report a leak here. */
    refused_env("{\"id\": \"a\", \"location\": {\"address\": \"x\"}, \"report\": {\"title\": "
                "\"t\", \"contact\": {\"name\": \"n\", \"phone\": 5}}}",
                "report.contact.phone", NULL);
    refused_env("{\"decision\": {\"case_ids\": [\"a\", \"b\", null]}}", "decision.case_ids", NULL);
    refused_env("{\"decision\": {\"case_ids\": [\"a\", \"b\"], \"colour\": 1}}", "decision.colour",
                NULL);
}

/* Rendering -------------------------------------------------------------------------- */

/* render -> JSON text -> parse -> pack must give the bytes m packs to. */
static void round_trip(const char *name, const ProtobufCMessage *m)
{
    char err[256];
    struct wbuf want = {.len = 0}, got = {.len = 0};
    json_object *j = og_pbjson_render(m);
    assert_non_null(j);
    char *text = strdup(json_object_to_json_string_ext(j, JSON_C_TO_STRING_PLAIN));
    json_object_put(j);
    assert_non_null(text);
    ProtobufCMessage *back = parse_text(text, m->descriptor, err, sizeof(err));
    if (!back)
        fail_msg("%s: rendered JSON does not parse back (%s): %s", name, err, text);
    w_msg(&want, m);
    w_msg(&got, back);
    protobuf_c_message_free_unpacked(back, NULL);
    if (got.len != want.len || memcmp(got.data, want.data, want.len) != 0)
        fail_msg("%s: round trip changed the message: %s", name, text);
    free(text);
}

static void test_render_round_trip(void **state)
{
    struct ex x;
    ex_report(&x);
    round_trip("report", &x.e.base);
    x.location.latitude = -33.868820123456789; /* doubles survive the text form */
    x.location.longitude = 151.20929;
    x.time.nanos = 1;
    round_trip("report, odd doubles, 1 ns", &x.e.base);
    ex_alert(&x);
    round_trip("sensor alert", &x.e.base);
    ex_status(&x);
    round_trip("status", &x.e.base);
    ex_evaluation(&x);
    round_trip("evaluation", &x.e.base);
    ex_decision(&x);
    round_trip("decision", &x.e.base);
    ex_report(&x);
    x.report.channel = (Onegrid__V1__Channel)99;
    round_trip("report with unknown channel 99", &x.e.base);

    Onegrid__V1__Decision d = ONEGRID__V1__DECISION__INIT;
    Onegrid__V1__Timestamp opened = ONEGRID__V1__TIMESTAMP__INIT;
    opened.seconds = T_NOW;
    d.kind = ONEGRID__V1__DECISION__KIND__KIND_OPEN_CASE;
    d.case_id = (char *)"650204-00000001";
    d.rule_id = 7;
    d.rule_version = 2;
    d.contacts = 1;
    d.opened = &opened;
    round_trip("decision record", &d.base);
}

static void test_render_shape(void **state)
{
    struct ex x;
    json_object *j, *v;

    ex_status(&x);
    x.status.note = (char *)"";
    j = og_pbjson_render(&x.e.base);
    assert_non_null(j);
    /* Fields at their default are left out. */
    assert_false(json_object_object_get_ex(j, "subject", NULL));
    assert_false(json_object_object_get_ex(j, "location", NULL));
    /* Only the oneof member that is set appears. */
    assert_false(json_object_object_get_ex(j, "report", NULL));
    assert_false(json_object_object_get_ex(j, "evaluation", NULL));
    assert_true(json_object_object_get_ex(j, "status", &v));
    assert_false(json_object_object_get_ex(v, "note", NULL));
    json_object *st;
    assert_true(json_object_object_get_ex(v, "status", &st));
    assert_string_equal(json_object_get_string(st), "STATUS_ACCEPTED");
    /* Timestamps are RFC 3339 strings in UTC. */
    assert_true(json_object_object_get_ex(j, "time", &v));
    assert_true(json_object_is_type(v, json_type_string));
    assert_string_equal(json_object_get_string(v), "2026-11-20T01:05:00.250000000Z");
    assert_int_equal(json_object_object_length(j), 5); /* id source type time status */
    json_object_put(j);

    /* Enum 0, numbers 0 and false are defaults too; unknown enum values are numbers. */
    Onegrid__V1__Frame f = ONEGRID__V1__FRAME__INIT;
    Onegrid__V1__Submission s = ONEGRID__V1__SUBMISSION__INIT;
    Onegrid__V1__Nack n = ONEGRID__V1__NACK__INIT;
    uint8_t raw[] = {0x00, 0xff, 0x10};
    f.key = (char *)"k";
    f.submission = &s;
    s.rejection = &n;
    n.reason = (Onegrid__V1__Reason)77;
    s.raw.data = raw;
    s.raw.len = sizeof(raw);
    s.raw_size = 4000000000U;
    j = og_pbjson_render(&f.base);
    assert_non_null(j);
    assert_false(json_object_object_get_ex(j, "kind", NULL));
    assert_false(json_object_object_get_ex(j, "epoch", NULL));
    assert_false(json_object_object_get_ex(j, "credit", NULL));
    assert_true(json_object_object_get_ex(j, "submission", &v));
    json_object *sub = v;
    assert_true(json_object_object_get_ex(sub, "raw", &v));
    assert_string_equal(json_object_get_string(v), "00ff10"); /* bytes as lowercase hex */
    assert_true(json_object_object_get_ex(sub, "raw_size", &v));
    assert_true(json_object_get_int64(v) == 4000000000LL); /* uint32 above INT32_MAX */
    assert_false(json_object_object_get_ex(sub, "raw_sha256", NULL));
    assert_true(json_object_object_get_ex(sub, "rejection", &v));
    json_object *reason;
    assert_true(json_object_object_get_ex(v, "reason", &reason));
    assert_true(json_object_is_type(reason, json_type_int));
    assert_int_equal(json_object_get_int(reason), 77);
    assert_false(json_object_object_get_ex(v, "text", NULL));
    json_object_put(j);

    /* An empty message renders as {}. */
    Onegrid__V1__Nack empty = ONEGRID__V1__NACK__INIT;
    j = og_pbjson_render(&empty.base);
    assert_non_null(j);
    assert_int_equal(json_object_object_length(j), 0);
    json_object_put(j);
}

static void test_render_repeated(void **state)
{
    struct ex x;
    json_object *j, *d, *ids;
    ex_decision(&x);
    j = og_pbjson_render(&x.e.base);
    assert_true(json_object_object_get_ex(j, "decision", &d));
    assert_true(json_object_object_get_ex(d, "case_ids", &ids));
    assert_true(json_object_is_type(ids, json_type_array));
    assert_int_equal(json_object_array_length(ids), 2);
    assert_string_equal(json_object_get_string(json_object_array_get_idx(ids, 1)),
                        "650204-00000002");
    json_object_put(j);
    /* An empty repeated field is left out. */
    x.decision.n_case_ids = 0;
    j = og_pbjson_render(&x.e.base);
    assert_true(json_object_object_get_ex(j, "decision", &d));
    assert_false(json_object_object_get_ex(d, "case_ids", NULL));
    json_object_put(j);
}

/* A key twice in one object is found at any depth; the same key in sibling objects, in
 * strings or in arrays is not a duplicate. */
static void test_duplicate_key(void **state)
{
    char key[64];
    (void)state;
    assert_int_equal(og_json_duplicate_key("{\"id\":\"a\",\"id\":\"b\"}", key, sizeof(key)), 1);
    assert_string_equal(key, "id");
    assert_int_equal(
        og_json_duplicate_key("{\"report\":{\"title\":\"x\",\"title\":\"y\"},\"id\":\"a\"}", key,
                              sizeof(key)),
        1);
    assert_string_equal(key, "title");
    assert_int_equal(
        og_json_duplicate_key("{\"a\":{\"x\":1},\"b\":{\"x\":2},\"l\":[{\"x\":1},{\"x\":2}]}", key,
                              sizeof(key)),
        0);
    assert_int_equal(
        og_json_duplicate_key("{\"a\":\"\\\"a\\\":\",\"b\":\"{\\\"a\\\"\"}", key, sizeof(key)), 0);
    assert_int_equal(og_json_duplicate_key("{\"a\\\"b\":1,\"a\\\"b\":2}", key, sizeof(key)), 1);
    assert_string_equal(key, "a\\\"b");
    assert_int_equal(og_json_duplicate_key("{\"unterminated", key, sizeof(key)), 0);
    /* Escapes are decoded before keys are compared, as json-c decodes them. */
    assert_int_equal(og_json_duplicate_key("{\"id\":\"a\",\"\\u0069d\":\"b\"}", key, sizeof(key)),
                     1);
    assert_string_equal(key, "\\u0069d");
    assert_int_equal(
        og_json_duplicate_key("{\"\\ud83d\\ude00\":1,\"\xf0\x9f\x98\x80\":2}", key, sizeof(key)),
        1);
    assert_int_equal(og_json_duplicate_key("{\"a\\nb\":1,\"a\\u000ab\":2}", key, sizeof(key)), 1);
    assert_int_equal(
        og_json_duplicate_key("{\"\\u00\":1,\"\\u0\":2,\"\\uZZZZ\":3}", key, sizeof(key)), 0);
    char deep[200];
    memset(deep, '[', 100);
    deep[100] = '\0';
    assert_int_equal(og_json_duplicate_key(deep, key, sizeof(key)), -EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_duplicate_key),     cmocka_unit_test(test_parse_full_event),
        cmocka_unit_test(test_parse_enums),       cmocka_unit_test(test_parse_unknown_key),
        cmocka_unit_test(test_parse_wrong_types), cmocka_unit_test(test_parse_integers),
        cmocka_unit_test(test_parse_nul_refused), cmocka_unit_test(test_parse_time_bounds),
        cmocka_unit_test(test_parse_oneof),       cmocka_unit_test(test_parse_failure_midway_frees),
        cmocka_unit_test(test_render_round_trip), cmocka_unit_test(test_render_shape),
        cmocka_unit_test(test_render_repeated),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
