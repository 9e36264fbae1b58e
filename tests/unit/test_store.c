/* Unit tests for archive's store without a database: which database errors blame a record
 * (og_db_record_error), and the steps from a record to its refusal and to a minimal
 * refusal. (Which frames archive accepts from the link: test_frame_check.) */
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

static void test_record_errors(void **state)
{
    /* The record's own content. */
    static const char *const record_level[] = {"22021", "22P02", "22001", "23505",
                                               "23514", "23502", "54000"};
    /* Faults around the record: retried, never blamed on it. */
    static const char *const faults[] = {
        "57014", "55P03", "53100", "53200", "53300", "58030", "XX000", "XX001", "08006", "08007",
        "57P01", "40001", "40P01", "42501", "42883", "P0001", "25P02", "OG001", "", NULL,
        /* A case the database does not have: the decision is wrong, not the event. */
        "OG002"};
    for (size_t i = 0; i < sizeof(record_level) / sizeof(*record_level); i++)
        assert_true(og_db_record_error(record_level[i]));
    for (size_t i = 0; i < sizeof(faults) / sizeof(*faults); i++)
        assert_false(og_db_record_error(faults[i]));
    assert_false(og_db_record_error("2"));
    assert_false(og_db_record_error("220210"));
}

static void test_refusal_steps(void **state)
{
    struct og_store_item it = {.frame = record()};
    /* What the commit sends of an accepted record can be made ahead, once. */
    og_store_item_prepare(&it);
    assert_non_null(it.rendered);
    struct og_rendered *made = it.rendered;
    og_store_item_prepare(&it);
    assert_ptr_equal(it.rendered, made);
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
    /* A refusal is not made ahead (it is sent as a refusal, from the frame). */
    struct og_store_item refusal = {.frame = it.frame};
    og_store_item_prepare(&refusal);
    assert_null(refusal.rendered);
    og_store_item_free(&it);
    assert_null(it.rendered);
    onegrid__v1__frame__free_unpacked(it.frame, NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_record_errors),
        cmocka_unit_test(test_refusal_steps),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
