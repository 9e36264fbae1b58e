/* Unit tests for daemons/common/frame_check.c: frames as each hop sends them pass; frames
 * that break an invariant of their hop are caught, with the reason named; drops are
 * logged at most once a minute. The last test sends hand-made frames over a real ZeroMQ
 * socket to a link server, as a broken peer would reach dispatch. */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <zmq.h>

#include "frame_check.h"
#include "link.h"
#include "util.h"
#include "wire.h"

#define INTAKE_DISPATCH  OG_FRAME_HOP_INTAKE_DISPATCH
#define DISPATCH_ARCHIVE OG_FRAME_HOP_DISPATCH_ARCHIVE
#define ARCHIVE_DISPATCH OG_FRAME_HOP_ARCHIVE_DISPATCH
#define DISPATCH_INTAKE  OG_FRAME_HOP_DISPATCH_INTAKE
#define KIND(x)          ONEGRID__V1__DECISION__KIND__KIND_##x

/* One frame with storage for everything it may point to. */
struct fx {
    struct ex x;
    Onegrid__V1__Timestamp received, decided, opened, deadline;
    Onegrid__V1__Submission sub;
    Onegrid__V1__Nack nack;
    Onegrid__V1__Decision dec, more;
    Onegrid__V1__Decision *more_list[1];
    Onegrid__V1__Mediation mediation;
    Onegrid__V1__Reply reply;
    Onegrid__V1__Ack ack;
    Onegrid__V1__Frame f;
    char key[300];
    uint8_t raw[10], digest[32];
    char why[256];
};

static void set_key(struct fx *z)
{
    snprintf(z->key, sizeof(z->key), "%s\x1f%s", z->sub.source, z->x.e.id);
}

/* What intake sends for a valid event. */
static void from_intake(struct fx *z, void (*example)(struct ex *))
{
    memset(z, 0, sizeof(*z));
    example(&z->x);
    onegrid__v1__timestamp__init(&z->received);
    onegrid__v1__submission__init(&z->sub);
    onegrid__v1__frame__init(&z->f);
    z->received.seconds = T_NOW;
    z->sub.publisher = (char *)"local";
    z->sub.source = z->x.e.source;
    z->sub.received = &z->received;
    z->sub.event = &z->x.e;
    set_key(z);
    z->f.kind = ONEGRID__V1__FRAME__KIND__KIND_DATA;
    z->f.key = z->key;
    z->f.submission = &z->sub;
}

/* What intake sends for bytes it refused. */
static void refusal_from_intake(struct fx *z)
{
    from_intake(z, ex_report);
    onegrid__v1__nack__init(&z->nack);
    z->nack.reason = ONEGRID__V1__REASON__REASON_UNDECODABLE;
    z->nack.text = (char *)"not a valid onegrid.v1.Envelope";
    z->sub.event = NULL;
    z->sub.rejection = &z->nack;
    z->sub.source = (char *)"";
    z->sub.raw.data = z->raw;
    z->sub.raw.len = sizeof(z->raw);
    z->sub.raw_size = 4000;
    z->sub.raw_sha256.data = z->digest;
    z->sub.raw_sha256.len = sizeof(z->digest);
    snprintf(z->key, sizeof(z->key), "!%064d\x1flocal", 0);
}

/* What dispatch sends archive: the event and the case it opened. */
static void to_archive(struct fx *z, void (*example)(struct ex *))
{
    from_intake(z, example);
    onegrid__v1__decision__init(&z->dec);
    onegrid__v1__timestamp__init(&z->decided);
    onegrid__v1__timestamp__init(&z->opened);
    onegrid__v1__timestamp__init(&z->deadline);
    z->decided.seconds = z->opened.seconds = T_NOW;
    z->deadline.seconds = T_NOW + 7200;
    z->dec.kind = KIND(OPEN_CASE);
    z->dec.case_id = (char *)"650204-00000001";
    z->dec.district = (char *)"650204";
    z->dec.grid = (char *)"650204001001";
    z->dec.category = (char *)"facility.handrail";
    z->dec.unit = (char *)"unit-a";
    z->dec.state = (char *)"dispatched";
    z->dec.contacts = 1;
    z->dec.decided = &z->decided;
    z->dec.opened = &z->opened;
    z->dec.deadline = &z->deadline;
    z->f.decision = &z->dec;
    z->f.epoch = 3;
    z->f.shard = (char *)"6502";
}

/* archive's answer: stored, case 650204-00000001. */
static void from_archive(struct fx *z)
{
    memset(z, 0, sizeof(*z));
    onegrid__v1__frame__init(&z->f);
    onegrid__v1__reply__init(&z->reply);
    onegrid__v1__ack__init(&z->ack);
    snprintf(z->key, sizeof(z->key),
             "zongzhi\x1f"
             "evt-0001");
    z->f.kind = ONEGRID__V1__FRAME__KIND__KIND_ANSWER;
    z->f.key = z->key;
    z->f.epoch = 3;
    z->f.reply = &z->reply;
    z->reply.event_id = (char *)"evt-0001";
    z->reply.source = (char *)"zongzhi";
    z->reply.result_case = ONEGRID__V1__REPLY__RESULT_ACK;
    z->reply.ack = &z->ack;
    z->ack.outcome = ONEGRID__V1__ACK__OUTCOME__OUTCOME_STORED;
    z->ack.case_id = (char *)"650204-00000001";
}

static int check(struct fx *z, enum og_frame_hop hop)
{
    z->why[0] = '\0';
    return og_frame_check(&z->f, hop, z->why, sizeof(z->why));
}

#define assert_ok(z, hop)                                                                          \
    do {                                                                                           \
        int rc_ = check(z, hop);                                                                   \
        if (rc_ != 0)                                                                              \
            fail_msg("refused: %s", (z)->why);                                                     \
    } while (0)

#define assert_bad(z, hop, text)                                                                   \
    do {                                                                                           \
        assert_int_equal(check(z, hop), -EBADMSG);                                                 \
        if (!strstr((z)->why, text))                                                               \
            fail_msg("why: \"%s\", expected it to mention \"%s\"", (z)->why, text);                \
    } while (0)

static void test_valid_frames_pass(void **state)
{
    (void)state;
    void (*examples[])(struct ex *) = {ex_report,     ex_alert,    ex_status,
                                       ex_evaluation, ex_decision, ex_split};
    struct fx z;

    for (size_t i = 0; i < OG_ARRAY_SIZE(examples); i++) {
        from_intake(&z, examples[i]);
        assert_ok(&z, INTAKE_DISPATCH);
        to_archive(&z, examples[i]);
        assert_ok(&z, DISPATCH_ARCHIVE);
    }
    refusal_from_intake(&z);
    assert_ok(&z, INTAKE_DISPATCH);

    /* The longest category intake takes, 64 characters of 4 bytes each: a frame that
     * failed here was never answered (intake and its publisher resent it for ever). */
    char category[64 * 4 + 1] = "";
    for (int i = 0; i < 64; i++)
        strcat(category, "\xf0\xa0\x80\x80"); /* U+20000 */
    from_intake(&z, ex_report);
    z.x.report.category = category;
    assert_ok(&z, INTAKE_DISPATCH);
    to_archive(&z, ex_report);
    z.x.report.category = category;
    z.dec.category = category;
    assert_ok(&z, DISPATCH_ARCHIVE);

    /* dispatch's conclusions, each value og.case takes. */
    static const char *const stages[] = {"handling", "checking", "final"};
    static const char *const clocks[] = {"running", "paused", "none"};
    for (size_t i = 0; i < OG_ARRAY_SIZE(stages); i++) {
        to_archive(&z, ex_report);
        z.dec.stage = (char *)stages[i];
        z.dec.clock = (char *)clocks[i];
        assert_ok(&z, DISPATCH_ARCHIVE);
    }

    /* dispatch refuses an event (its own reason), or passes intake's refusal on. */
    to_archive(&z, ex_report);
    onegrid__v1__nack__init(&z.nack);
    z.nack.reason = ONEGRID__V1__REASON__REASON_UNKNOWN_GRID;
    z.nack.text = (char *)"subject: not in the crosswalk";
    onegrid__v1__decision__init(&z.dec);
    z.dec.kind = KIND(REJECT);
    z.dec.rejection = &z.nack;
    assert_ok(&z, DISPATCH_ARCHIVE);
    refusal_from_intake(&z);
    onegrid__v1__decision__init(&z.dec);
    z.dec.kind = KIND(REJECT);
    z.f.decision = &z.dec;
    z.f.epoch = 3;
    z.f.shard = (char *)"6502";
    assert_ok(&z, DISPATCH_ARCHIVE);

    /* An escalation: dispatch's own event, with no payload. */
    to_archive(&z, ex_report);
    z.x.e.payload_case = ONEGRID__V1__ENVELOPE__PAYLOAD__NOT_SET;
    z.x.e.report = NULL;
    z.x.e.type = (char *)"escalation";
    z.x.e.id = (char *)"esc-650204-00000001-1";
    z.x.e.source = z.sub.source = (char *)"onegrid";
    set_key(&z);
    z.dec.kind = KIND(ESCALATE);
    z.dec.escalation_level = 1;
    assert_ok(&z, DISPATCH_ARCHIVE);

    /* An extension request that lapsed undecided: dispatch's own event, with no payload. */
    z.x.e.type = (char *)"extension_lapsed";
    z.x.e.id = (char *)"lapse-650204-00000001-1796176800";
    set_key(&z);
    z.dec.kind = KIND(UPDATE_CASE);
    z.dec.escalation_level = 0;
    assert_ok(&z, DISPATCH_ARCHIVE);
    /* Not under another source or type. */
    z.x.e.type = (char *)"status";
    assert_bad(&z, DISPATCH_ARCHIVE, "no payload");
    z.x.e.type = (char *)"extension_lapsed";
    z.x.e.source = z.sub.source = (char *)"zongzhi";
    set_key(&z);
    assert_bad(&z, DISPATCH_ARCHIVE, "no payload");

    /* A joint meeting's decision on two cases. */
    to_archive(&z, ex_decision);
    z.dec.kind = KIND(UPDATE_CASE);
    z.more = z.dec;
    z.more.case_id = (char *)"650204-00000002";
    z.more_list[0] = &z.more;
    z.f.more_decisions = z.more_list;
    z.f.n_more_decisions = 1;
    assert_ok(&z, DISPATCH_ARCHIVE);

    from_archive(&z);
    assert_ok(&z, ARCHIVE_DISPATCH);
    assert_ok(&z, DISPATCH_INTAKE);
    z.reply.result_case = ONEGRID__V1__REPLY__RESULT_NACK;
    z.reply.nack = &z.nack;
    onegrid__v1__nack__init(&z.nack);
    z.nack.reason = ONEGRID__V1__REASON__REASON_UNKNOWN_CASE;
    assert_ok(&z, ARCHIVE_DISPATCH);
    /* The answer to a record of an older epoch: no reply, the shard's current epoch. */
    from_archive(&z);
    z.f.reply = NULL;
    z.f.epoch = 4;
    assert_ok(&z, ARCHIVE_DISPATCH);
}

/* The frame of the issue: DATA with an OPEN_CASE decision and no event (archive
 * dereferenced NULL), made byte by byte as a broken peer would send it. */
static void test_open_case_without_event(void **state)
{
    (void)state;
    struct wbuf b = {.len = 0}, dec = {.len = 0};
    Onegrid__V1__Frame *f;
    char why[256];

    w_int(&b, 1, ONEGRID__V1__FRAME__KIND__KIND_DATA);
    w_ld(&b, 2, "k-19", 4);
    w_ld(&b, 4, "", 0); /* an empty Submission */
    w_int(&dec, 1, KIND(OPEN_CASE));
    w_ld(&b, 5, dec.data, dec.len);
    w_int(&b, 3, 7); /* epoch */
    w_ld(&b, 9, "6502", 4);
    f = onegrid__v1__frame__unpack(NULL, b.len, b.data);
    assert_non_null(f);
    assert_int_equal(og_frame_check(f, DISPATCH_ARCHIVE, why, sizeof(why)), -EBADMSG);
    assert_non_null(strstr(why, "submission"));
    /* From intake it would be wrong twice over: already decided. */
    assert_int_equal(og_frame_check(f, INTAKE_DISPATCH, why, sizeof(why)), -EBADMSG);
    assert_non_null(strstr(why, "decision"));
    onegrid__v1__frame__free_unpacked(f, NULL);
}

static void test_malformed_from_intake(void **state)
{
    (void)state;
    struct fx z;
    char long_key[300];

    from_intake(&z, ex_report);
    z.f.submission = NULL;
    assert_bad(&z, INTAKE_DISPATCH, "submission: missing");

    from_intake(&z, ex_report);
    z.sub.event = NULL;
    assert_bad(&z, INTAKE_DISPATCH, "neither an event nor a rejection");

    from_intake(&z, ex_report);
    z.f.kind = ONEGRID__V1__FRAME__KIND__KIND_ANSWER;
    assert_bad(&z, INTAKE_DISPATCH, "kind");

    from_intake(&z, ex_report);
    z.f.key = (char *)"";
    assert_bad(&z, INTAKE_DISPATCH, "key");

    from_intake(&z, ex_report);
    memset(long_key, 'k', sizeof(long_key) - 1);
    long_key[sizeof(long_key) - 1] = '\0';
    z.f.key = long_key;
    assert_bad(&z, INTAKE_DISPATCH, "key: over 256 bytes");

    from_intake(&z, ex_report);
    z.f.key = (char *)"zongzhi\x1f\xff\xfe";
    assert_bad(&z, INTAKE_DISPATCH, "key: not valid UTF-8");

    /* The key must name the event: it is what the database deduplicates on. */
    from_intake(&z, ex_report);
    snprintf(z.key, sizeof(z.key),
             "zongzhi\x1f"
             "evt-0002");
    assert_bad(&z, INTAKE_DISPATCH, "key: not the event's");
    from_intake(&z, ex_report);
    z.sub.source = (char *)"12345";
    assert_bad(&z, INTAKE_DISPATCH, "key: not the event's");

    from_intake(&z, ex_report);
    z.sub.received = NULL;
    assert_bad(&z, INTAKE_DISPATCH, "submission.received: missing");

    from_intake(&z, ex_report);
    z.sub.publisher = (char *)"";
    assert_bad(&z, INTAKE_DISPATCH, "submission.publisher");

    from_intake(&z, ex_report);
    z.f.decision = &z.dec;
    assert_bad(&z, INTAKE_DISPATCH, "before dispatch decided");

    from_intake(&z, ex_report);
    z.f.reply = &z.reply;
    assert_bad(&z, INTAKE_DISPATCH, "reply");

    /* A payload case without its message (protobuf-c never decodes one, a bug could). */
    from_intake(&z, ex_report);
    z.x.e.report = NULL;
    assert_bad(&z, INTAKE_DISPATCH, "event.report: missing");

    from_intake(&z, ex_report);
    z.x.e.type = (char *)"status";
    assert_bad(&z, INTAKE_DISPATCH, "does not name its payload");

    from_intake(&z, ex_report);
    z.x.e.payload_case = ONEGRID__V1__ENVELOPE__PAYLOAD__NOT_SET;
    assert_bad(&z, INTAKE_DISPATCH, "no payload");

    from_intake(&z, ex_report);
    z.x.e.payload_case = 99;
    assert_bad(&z, INTAKE_DISPATCH, "unknown payload case");

    from_intake(&z, ex_report);
    z.x.e.time = NULL;
    assert_bad(&z, INTAKE_DISPATCH, "event.time: missing");

    from_intake(&z, ex_report);
    z.x.time.seconds = INT64_MIN;
    assert_bad(&z, INTAKE_DISPATCH, "event.time: out of range");

    from_intake(&z, ex_report);
    z.x.location.latitude = NAN;
    assert_bad(&z, INTAKE_DISPATCH, "event.location");

    from_intake(&z, ex_report);
    z.x.e.id = (char *)"evt 1";
    set_key(&z);
    assert_bad(&z, INTAKE_DISPATCH, "event.id: not printable ASCII");

    from_intake(&z, ex_report);
    z.x.report.category = (char *)"";
    assert_bad(&z, INTAKE_DISPATCH, "report.category");

    from_intake(&z, ex_report);
    z.x.report.severity = 99;
    assert_bad(&z, INTAKE_DISPATCH, "report.severity");

    from_intake(&z, ex_alert);
    z.x.alert.severity = -1;
    assert_bad(&z, INTAKE_DISPATCH, "sensor_alert.severity");

    /* Deadlines are counted day by day: a billion working days would never finish. */
    from_intake(&z, ex_status);
    z.x.status.status = ONEGRID__V1__STATUS_UPDATE__STATUS__STATUS_EXTENSION_REQUESTED;
    z.x.status.extension_working_days = 1000000000;
    assert_bad(&z, INTAKE_DISPATCH, "extension_working_days");

    from_intake(&z, ex_status);
    z.x.status.case_id = (char *)"";
    assert_bad(&z, INTAKE_DISPATCH, "status.case_id");

    from_intake(&z, ex_status);
    onegrid__v1__mediation__init(&z.mediation);
    z.mediation.follow_up_days = 30;
    z.x.status.mediation = &z.mediation;
    assert_bad(&z, INTAKE_DISPATCH, "agreement_date: missing");

    from_intake(&z, ex_decision);
    z.x.decision.n_case_ids = 0;
    assert_bad(&z, INTAKE_DISPATCH, "decision.case_ids");
    from_intake(&z, ex_decision);
    z.x.decision.n_case_ids = 101;
    assert_bad(&z, INTAKE_DISPATCH, "decision.case_ids");

    from_intake(&z, ex_split);
    z.x.split.report_event_id = (char *)"";
    assert_bad(&z, INTAKE_DISPATCH, "split.report_event_id");

    refusal_from_intake(&z);
    z.sub.raw_sha256.len = 31;
    assert_bad(&z, INTAKE_DISPATCH, "raw_sha256");
    refusal_from_intake(&z);
    z.sub.raw_size = 3;
    assert_bad(&z, INTAKE_DISPATCH, "submission.raw");
    /* og.rejection.raw_size is an integer: 2^31 failed its refusal and its minimal refusal
     * alike, and archive held the batch for ever (review). */
    refusal_from_intake(&z);
    z.sub.raw_size = 2147483648u;
    assert_bad(&z, INTAKE_DISPATCH, "raw_size");
    refusal_from_intake(&z);
    z.nack.reason = ONEGRID__V1__REASON__REASON_UNSPECIFIED;
    assert_bad(&z, INTAKE_DISPATCH, "reason: unspecified");
}

static void test_malformed_to_archive(void **state)
{
    (void)state;
    struct fx z;

    to_archive(&z, ex_report);
    z.f.decision = NULL;
    assert_bad(&z, DISPATCH_ARCHIVE, "decision: missing");

    to_archive(&z, ex_report);
    z.f.epoch = 0;
    assert_bad(&z, DISPATCH_ARCHIVE, "epoch");

    to_archive(&z, ex_report);
    z.f.shard = (char *)"";
    assert_bad(&z, DISPATCH_ARCHIVE, "shard");

    to_archive(&z, ex_report);
    z.dec.kind = 99;
    assert_bad(&z, DISPATCH_ARCHIVE, "decision.kind");

    to_archive(&z, ex_report);
    z.dec.case_id = (char *)"";
    assert_bad(&z, DISPATCH_ARCHIVE, "decision.case_id");

    to_archive(&z, ex_report);
    z.dec.decided = NULL;
    assert_bad(&z, DISPATCH_ARCHIVE, "decision.decided");

    to_archive(&z, ex_report);
    z.dec.escalation_level = 7;
    assert_bad(&z, DISPATCH_ARCHIVE, "escalation_level");

    /* The pause a lapse ended: a time the database can store, or none. */
    to_archive(&z, ex_report);
    Onegrid__V1__Timestamp far = ONEGRID__V1__TIMESTAMP__INIT;
    far.seconds = INT64_MAX;
    z.dec.lapsed_paused_deadline = &far;
    assert_bad(&z, DISPATCH_ARCHIVE, "decision.lapsed_paused_deadline");
    to_archive(&z, ex_report);
    z.dec.lapsed_paused_at = &far;
    assert_bad(&z, DISPATCH_ARCHIVE, "decision.lapsed_paused_at");

    /* dispatch's conclusions: one of og.case's values, or none (an older dispatch). */
    to_archive(&z, ex_report);
    z.dec.stage = (char *)"waiting";
    assert_bad(&z, DISPATCH_ARCHIVE, "decision.stage: not a known value");

    to_archive(&z, ex_report);
    z.dec.clock = (char *)"ticking";
    assert_bad(&z, DISPATCH_ARCHIVE, "decision.clock: not a known value");

    /* The district names a chain: 6 digits. One named "shard:6502" was stored and never
     * chained, and verify failed for good (review). */
    to_archive(&z, ex_report);
    z.dec.district = (char *)"shard:6502";
    assert_bad(&z, DISPATCH_ARCHIVE, "not 6 digits");
    to_archive(&z, ex_report);
    z.dec.district = (char *)"6502041";
    assert_bad(&z, DISPATCH_ARCHIVE, "not 6 digits");

    /* Only dispatch's own events may carry an event without a payload. */
    to_archive(&z, ex_report);
    z.x.e.payload_case = ONEGRID__V1__ENVELOPE__PAYLOAD__NOT_SET;
    assert_bad(&z, DISPATCH_ARCHIVE, "no payload");

    /* A refusal with no reason anywhere. */
    to_archive(&z, ex_report);
    onegrid__v1__decision__init(&z.dec);
    z.dec.kind = KIND(REJECT);
    assert_bad(&z, DISPATCH_ARCHIVE, "decision.rejection: missing");

    /* Storing as an event what intake refused. */
    refusal_from_intake(&z);
    z.f.decision = &z.dec;
    onegrid__v1__decision__init(&z.dec);
    z.dec.kind = KIND(OPEN_CASE);
    z.f.epoch = 3;
    z.f.shard = (char *)"6502";
    assert_bad(&z, DISPATCH_ARCHIVE, "the submission is a refusal");

    to_archive(&z, ex_report);
    z.dec.kind = KIND(MERGE);
    assert_bad(&z, DISPATCH_ARCHIVE, "report_area");

    to_archive(&z, ex_decision);
    z.more = z.dec;
    z.more.kind = KIND(REJECT);
    z.more_list[0] = &z.more;
    z.f.more_decisions = z.more_list;
    z.f.n_more_decisions = 1;
    assert_bad(&z, DISPATCH_ARCHIVE, "more_decisions: a refusal");

    /* What archive needs to store the record: a district for its chain, a new case's grid
     * and category; a further decision only moves a case that exists. */
    to_archive(&z, ex_report);
    z.dec.district = (char *)"";
    assert_bad(&z, DISPATCH_ARCHIVE, "decision.district: missing");

    to_archive(&z, ex_report);
    z.dec.grid = (char *)"";
    assert_bad(&z, DISPATCH_ARCHIVE, "without its grid or category");

    to_archive(&z, ex_decision);
    z.more = z.dec;
    z.more.kind = KIND(OPEN_CASE);
    z.more_list[0] = &z.more;
    z.f.more_decisions = z.more_list;
    z.f.n_more_decisions = 1;
    assert_bad(&z, DISPATCH_ARCHIVE, "more_decisions: opens a case");

    to_archive(&z, ex_decision);
    z.more_list[0] = NULL;
    z.f.more_decisions = z.more_list;
    z.f.n_more_decisions = 1;
    assert_bad(&z, DISPATCH_ARCHIVE, "decision: missing");
}

static void test_malformed_answers(void **state)
{
    (void)state;
    struct fx z;

    from_archive(&z);
    z.f.kind = ONEGRID__V1__FRAME__KIND__KIND_DATA;
    assert_bad(&z, ARCHIVE_DISPATCH, "kind");

    from_archive(&z);
    z.reply.result_case = ONEGRID__V1__REPLY__RESULT__NOT_SET;
    assert_bad(&z, ARCHIVE_DISPATCH, "neither ack nor nack");

    from_archive(&z);
    z.reply.ack = NULL;
    assert_bad(&z, ARCHIVE_DISPATCH, "reply.ack: missing");

    from_archive(&z);
    z.reply.result_case = ONEGRID__V1__REPLY__RESULT_NACK;
    z.reply.nack = NULL;
    assert_bad(&z, ARCHIVE_DISPATCH, "reply.nack: missing");

    from_archive(&z);
    z.ack.outcome = ONEGRID__V1__ACK__OUTCOME__OUTCOME_UNSPECIFIED;
    assert_bad(&z, ARCHIVE_DISPATCH, "outcome");

    from_archive(&z);
    z.ack.case_id = (char *)"650204-0000000000000000000000000001";
    assert_bad(&z, ARCHIVE_DISPATCH, "reply.ack.case_id");

    from_archive(&z);
    z.f.submission = &z.sub;
    assert_bad(&z, ARCHIVE_DISPATCH, "carries a submission");

    /* No reply and no epoch: neither an answer nor a fence. */
    from_archive(&z);
    z.f.reply = NULL;
    z.f.epoch = 0;
    assert_bad(&z, ARCHIVE_DISPATCH, "reply: missing");
    /* dispatch always answers intake with a reply. */
    from_archive(&z);
    z.f.reply = NULL;
    assert_bad(&z, DISPATCH_INTAKE, "reply: missing");
}

static void test_drops_logged_once_a_minute(void **state)
{
    (void)state;
    struct og_frame_drops d = {0};
    const int64_t t0 = 0, min = OG_FRAME_LOG_INTERVAL_US;

    assert_int_equal(og_frame_check_count(&d, t0), 1); /* the first is logged at once */
    for (int i = 1; i <= 500; i++)
        assert_int_equal(og_frame_check_count(&d, t0 + i * 1000), 0);
    /* A minute on: one line for all 501 since the last, this one included. */
    assert_int_equal(og_frame_check_count(&d, t0 + min), 501);
    assert_int_equal(og_frame_check_count(&d, t0 + min + 1), 0);
    assert_int_equal(d.total, 503);
    assert_int_equal(og_frame_check_count(&d, t0 + 3 * min), 2);
}

/* Hand-made frames over a real socket to a link server, as a broken peer would send them
 * to dispatch: the link decodes them, the check sorts them. */
static void test_over_the_wire(void **state)
{
    (void)state;
    char dir[] = "/tmp/og-test-frame-XXXXXX", endpoint[128], path[128], err[256], why[256];
    void *ctx = zmq_ctx_new(), *dealer;
    struct og_link_server *srv;
    struct wbuf bad = {.len = 0}, dec = {.len = 0};
    struct fx good, mismatch;
    Onegrid__V1__Frame hello = ONEGRID__V1__FRAME__INIT;
    uint8_t *buf;
    size_t len;
    int linger = 0, results[3] = {1, 1, 1}, n = 0;

    assert_non_null(mkdtemp(dir));
    snprintf(endpoint, sizeof(endpoint), "ipc://%s/dispatch.sock", dir);
    srv = og_link_server_new(ctx, endpoint, 10, err, sizeof(err));
    assert_non_null(srv);
    dealer = zmq_socket(ctx, ZMQ_DEALER);
    zmq_setsockopt(dealer, ZMQ_LINGER, &linger, sizeof(linger));
    assert_int_equal(zmq_connect(dealer, endpoint), 0);

    hello.kind = ONEGRID__V1__FRAME__KIND__KIND_HELLO;
    hello.sender = (char *)"impostor";
    buf = og_pack(&hello.base, &len);
    assert_int_equal(zmq_send(dealer, buf, len, 0), (int)len);
    free(buf);
    /* 1: decided already, and no event. */
    w_int(&bad, 1, ONEGRID__V1__FRAME__KIND__KIND_DATA);
    w_ld(&bad, 2, "zongzhi\x1fx", 9);
    w_ld(&bad, 4, "", 0);
    w_int(&dec, 1, KIND(OPEN_CASE));
    w_ld(&bad, 5, dec.data, dec.len);
    assert_int_equal(zmq_send(dealer, bad.data, bad.len, 0), (int)bad.len);
    /* 2: what intake sends. */
    from_intake(&good, ex_report);
    buf = og_pack(&good.f.base, &len);
    assert_int_equal(zmq_send(dealer, buf, len, 0), (int)len);
    free(buf);
    /* 3: a key for another event than the one carried. */
    from_intake(&mismatch, ex_alert);
    snprintf(mismatch.key, sizeof(mismatch.key),
             "iot.gas\x1f"
             "alert-78");
    buf = og_pack(&mismatch.f.base, &len);
    assert_int_equal(zmq_send(dealer, buf, len, 0), (int)len);
    free(buf);

    for (int64_t until = og_mono_us() + 10 * 1000000; n < 3 && og_mono_us() < until;) {
        zmq_pollitem_t item = {og_link_server_socket(srv), 0, ZMQ_POLLIN, 0};
        struct og_route from;
        Onegrid__V1__Frame *f = NULL;
        zmq_poll(&item, 1, 100);
        while (n < 3) {
            int rc = og_link_server_recv(srv, &from, &f);
            if (rc < 0)
                break;
            if (rc == 0)
                continue; /* the HELLO, answered inside the link */
            results[n++] = og_frame_check(f, INTAKE_DISPATCH, why, sizeof(why));
            onegrid__v1__frame__free_unpacked(f, NULL);
        }
    }
    assert_int_equal(n, 3);
    assert_int_equal(results[0], -EBADMSG);
    assert_int_equal(results[1], 0);
    assert_int_equal(results[2], -EBADMSG);

    zmq_close(dealer);
    og_link_server_destroy(&srv);
    zmq_ctx_term(ctx);
    snprintf(path, sizeof(path), "%s/dispatch.sock", dir);
    unlink(path);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_frames_pass),
        cmocka_unit_test(test_open_case_without_event),
        cmocka_unit_test(test_malformed_from_intake),
        cmocka_unit_test(test_malformed_to_archive),
        cmocka_unit_test(test_malformed_answers),
        cmocka_unit_test(test_drops_logged_once_a_minute),
        cmocka_unit_test(test_over_the_wire),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
