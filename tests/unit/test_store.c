/* Unit tests for archive's store without a database: which frames from the link archive
 * accepts (og_store_check), which database errors blame a record (og_db_record_error),
 * and the steps from a record to its refusal and to a minimal refusal. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "archive.h"
#include "db.h"
#include "link.h"

/* A well-formed record: an event that opens a case. Owned by the caller (free_unpacked
 * after a pack/unpack round trip, as archive receives it). */
static Onegrid__V1__Frame *record(void)
{
    Onegrid__V1__Timestamp received = ONEGRID__V1__TIMESTAMP__INIT;
    Onegrid__V1__NewReport report = ONEGRID__V1__NEW_REPORT__INIT;
    Onegrid__V1__Envelope e = ONEGRID__V1__ENVELOPE__INIT;
    Onegrid__V1__Submission sub = ONEGRID__V1__SUBMISSION__INIT;
    Onegrid__V1__Decision d = ONEGRID__V1__DECISION__INIT;
    Onegrid__V1__Frame f = ONEGRID__V1__FRAME__INIT;
    uint8_t *buf;
    size_t len;

    received.seconds = 1795137300;
    report.title = "井盖缺失";
    e.id = "e-1";
    e.source = "chengguan";
    e.type = "report";
    e.payload_case = ONEGRID__V1__ENVELOPE__PAYLOAD_REPORT;
    e.report = &report;
    sub.publisher = "local";
    sub.source = "chengguan";
    sub.received = &received;
    sub.event = &e;
    d.kind = ONEGRID__V1__DECISION__KIND__KIND_OPEN_CASE;
    d.case_id = "650203-1";
    d.district = "650203";
    d.grid = "650203001001001";
    d.category = "城管-井盖";
    d.state = "DISPATCHED";
    f.kind = ONEGRID__V1__FRAME__KIND__KIND_DATA;
    f.key = "chengguan\x1f"
            "e-1";
    f.shard = "6502";
    f.epoch = 1;
    f.submission = &sub;
    f.decision = &d;
    buf = og_pack(&f.base, &len);
    assert_non_null(buf);
    Onegrid__V1__Frame *out = onegrid__v1__frame__unpack(NULL, len, buf);
    free(buf);
    assert_non_null(out);
    return out;
}

static void assert_refused(Onegrid__V1__Frame *f, const char *why_part)
{
    char why[128] = "";
    assert_int_equal(og_store_check(f, why, sizeof(why)), -EINVAL);
    assert_non_null(strstr(why, why_part));
    onegrid__v1__frame__free_unpacked(f, NULL);
}

static void test_check_good(void **state)
{
    char why[128];
    Onegrid__V1__Frame *f = record();
    assert_int_equal(og_store_check(f, why, sizeof(why)), 0);
    /* A refusal by intake: no decision, the submission's own rejection. */
    onegrid__v1__decision__free_unpacked(f->decision, NULL);
    f->decision = NULL;
    onegrid__v1__envelope__free_unpacked(f->submission->event, NULL);
    f->submission->event = NULL;
    f->submission->rejection = calloc(1, sizeof(*f->submission->rejection));
    onegrid__v1__nack__init(f->submission->rejection);
    assert_int_equal(og_store_check(f, why, sizeof(why)), 0);
    onegrid__v1__frame__free_unpacked(f, NULL);
}

static void test_check_malformed(void **state)
{
    Onegrid__V1__Frame *f;

    /* The frame the attacker sent: an OPEN_CASE decision and no event (it crashed
     * archive, which dereferenced the missing event). */
    f = record();
    onegrid__v1__envelope__free_unpacked(f->submission->event, NULL);
    f->submission->event = NULL;
    assert_refused(f, "without its event");

    f = record();
    onegrid__v1__submission__free_unpacked(f->submission, NULL);
    f->submission = NULL;
    assert_refused(f, "no submission");

    f = record();
    f->shard[0] = '\0'; /* unpacked strings are the frame's own */
    assert_refused(f, "no shard");

    f = record();
    f->key[0] = '\0';
    assert_refused(f, "no key");

    f = record();
    f->kind = ONEGRID__V1__FRAME__KIND__KIND_ANSWER;
    assert_refused(f, "not a DATA frame");

    f = record();
    onegrid__v1__timestamp__free_unpacked(f->submission->received, NULL);
    f->submission->received = NULL;
    assert_refused(f, "receipt time");

    f = record();
    f->submission->received->nanos = -1;
    assert_refused(f, "receipt time");

    f = record();
    f->decision->kind = 99; /* protobuf-c does not check enum values */
    assert_refused(f, "unknown kind");

    f = record();
    f->decision->kind = ONEGRID__V1__DECISION__KIND__KIND_UNSPECIFIED;
    assert_refused(f, "unknown kind");

    f = record();
    f->decision->district[0] = '\0';
    assert_refused(f, "district");

    f = record();
    f->decision->grid[0] = '\0';
    assert_refused(f, "new case without");

    /* A refusal without its reason. */
    f = record();
    f->decision->kind = ONEGRID__V1__DECISION__KIND__KIND_REJECT;
    assert_refused(f, "without its reason");

    /* An accepted decision on a refused submission. */
    f = record();
    f->submission->rejection = calloc(1, sizeof(*f->submission->rejection));
    onegrid__v1__nack__init(f->submission->rejection);
    assert_refused(f, "without its event");

    /* A further decision that would open a case. */
    f = record();
    f->more_decisions = calloc(1, sizeof(*f->more_decisions));
    f->more_decisions[0] = calloc(1, sizeof(**f->more_decisions));
    onegrid__v1__decision__init(f->more_decisions[0]);
    f->n_more_decisions = 1;
    f->more_decisions[0]->kind = ONEGRID__V1__DECISION__KIND__KIND_OPEN_CASE;
    assert_refused(f, "further decision");
}

static void test_record_errors(void **state)
{
    /* The record's own content. */
    static const char *const record_level[] = {"22021", "22P02", "22001", "23505",
                                               "23514", "23502", "54000", "OG002"};
    /* Faults around the record: retried, never blamed on it. */
    static const char *const faults[] = {
        "57014", "55P03", "53100", "53200", "53300", "58030", "XX000", "XX001", "08006", "08007",
        "57P01", "40001", "40P01", "42501", "42883", "P0001", "25P02", "OG001", "",      NULL};
    for (size_t i = 0; i < sizeof(record_level) / sizeof(*record_level); i++)
        assert_true(og_db_record_error(record_level[i]));
    for (size_t i = 0; i < sizeof(faults) / sizeof(*faults); i++)
        assert_false(og_db_record_error(faults[i]));
    assert_false(og_db_record_error("2"));
    assert_false(og_db_record_error("220210"));
}

static void test_refusal_steps(void **state)
{
    struct og_store_item it = {record(), NULL, false};
    /* An accepted record becomes a refusal with a text made safe. */
    assert_int_equal(og_store_refuse_minimal(&it), -EINVAL);
    assert_int_equal(og_store_refuse(&it, "ERROR:  bad \xe7\xbd byte\n"), 0);
    assert_int_equal(it.frame->decision->kind, ONEGRID__V1__DECISION__KIND__KIND_REJECT);
    assert_int_equal(it.frame->decision->rejection->reason,
                     ONEGRID__V1__REASON__REASON_STORAGE_REFUSED);
    assert_string_equal(it.frame->decision->rejection->text, "ERROR:  bad ?? byte?");
    /* A refusal is not refused again: next is the minimal one, then nothing. */
    assert_int_equal(og_store_refuse(&it, "again"), -EEXIST);
    assert_int_equal(og_store_refuse_minimal(&it), 0);
    assert_true(it.minimal);
    assert_int_equal(og_store_refuse_minimal(&it), -EEXIST);
    char why[128];
    assert_int_equal(og_store_check(it.frame, why, sizeof(why)), 0);
    onegrid__v1__frame__free_unpacked(it.frame, NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_check_good),
        cmocka_unit_test(test_check_malformed),
        cmocka_unit_test(test_record_errors),
        cmocka_unit_test(test_refusal_steps),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
