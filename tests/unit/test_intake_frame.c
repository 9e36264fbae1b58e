/* Unit tests for og_intake_frame (daemons/intake/intake.c): one publisher frame in, the
 * DATA frame for dispatch out, with the idempotency key for valid events and a digest
 * key, a bounded copy and a SHA-256 for refusals; and og_intake_check_listen, which keeps
 * intake off the network while publishers do not authenticate. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "intake.h"
#include "util.h"
#include "validate.h"
#include "wire.h"

#define R(x) ONEGRID__V1__REASON__REASON_##x

static const struct og_intake_opts opts = {
    .max_event_bytes = 4096,
    .max_rejected_bytes = 64,
    .max_age = 30 * 86400,
    .max_future = 300,
};

#define NOW_US (T_NOW * 1000000 + 123456)

static void check_rejection(const Onegrid__V1__Frame *f, const uint8_t *buf, size_t len,
                            const char *publisher)
{
    const Onegrid__V1__Submission *s = f->submission;
    uint8_t digest[crypto_hash_sha256_BYTES];
    char hex[2 * sizeof(digest) + 1], key[256];
    size_t keep = len < opts.max_rejected_bytes ? len : opts.max_rejected_bytes;

    assert_int_equal(f->kind, ONEGRID__V1__FRAME__KIND__KIND_DATA);
    assert_non_null(s->rejection);
    assert_true(s->rejection->reason != R(UNSPECIFIED));
    assert_true(strlen(s->rejection->text) > 0);
    assert_string_equal(s->publisher, publisher);
    assert_non_null(s->received);
    /* Evidence: a bounded copy, the full size, the SHA-256 of the whole frame. */
    assert_int_equal(s->raw.len, keep);
    if (keep)
        assert_memory_equal(s->raw.data, buf, keep);
    assert_int_equal(s->raw_size, len);
    assert_int_equal(s->raw_sha256.len, 32);
    crypto_hash_sha256(digest, buf, len);
    assert_memory_equal(s->raw_sha256.data, digest, 32);
    /* The key: "!" + the digest in hex, then the publisher. */
    assert_true(f->key[0] == '!');
    snprintf(key, sizeof(key), "!%s\x1f%s", og_hex(digest, sizeof(digest), hex), publisher);
    assert_string_equal(f->key, key);
}

static void test_valid_event(void **state)
{
    struct ex x;
    struct wbuf b;
    ex_report(&x);
    ex_pack(&x, &b);
    Onegrid__V1__Frame *f = og_intake_frame(&opts, "local", NULL, b.data, b.len, NOW_US);
    assert_non_null(f);
    assert_int_equal(f->kind, ONEGRID__V1__FRAME__KIND__KIND_DATA);
    assert_string_equal(f->key, "zongzhi\x1f"
                                "evt-0001");
    Onegrid__V1__Submission *s = f->submission;
    assert_non_null(s);
    assert_string_equal(s->publisher, "local");
    assert_string_equal(s->source, "zongzhi");
    assert_non_null(s->received);
    assert_int_equal(s->received->seconds, T_NOW);
    assert_int_equal(s->received->nanos, 123456000);
    assert_non_null(s->event);
    assert_null(s->rejection);
    assert_string_equal(s->event->id, "evt-0001");
    assert_string_equal(s->event->report->title, "楼道扶手松动");
    /* No copy of the bytes is kept for a valid event, but their size and digest are: should
     * dispatch refuse it, the record names the bytes received, not a re-encoding. */
    assert_int_equal(s->raw.len, 0);
    assert_int_equal(s->raw_size, b.len);
    assert_int_equal(s->raw_sha256.len, 32);
    uint8_t digest[32];
    crypto_hash_sha256(digest, b.data, b.len);
    assert_memory_equal(s->raw_sha256.data, digest, 32);
    /* The frame packs (it goes on the link as is). */
    struct wbuf out = {.len = 0};
    w_msg(&out, &f->base);
    assert_true(out.len > b.len);
    og_intake_frame_free(&f);
    assert_null(f);
    og_intake_frame_free(&f); /* NULL is fine */
}

static void test_authenticated_source(void **state)
{
    struct ex x;
    struct wbuf b;
    Onegrid__V1__Frame *f;

    /* The envelope names the source the publisher is registered for. */
    ex_report(&x);
    ex_pack(&x, &b);
    f = og_intake_frame(&opts, "zongzhi-key", "zongzhi", b.data, b.len, NOW_US);
    assert_non_null(f);
    assert_null(f->submission->rejection);
    assert_string_equal(f->key, "zongzhi\x1f"
                                "evt-0001");
    assert_string_equal(f->submission->publisher, "zongzhi-key");
    og_intake_frame_free(&f);

    /* Another source than the key's: refused, attributed to the key's source. */
    x.e.source = (char *)"12345";
    ex_pack(&x, &b);
    f = og_intake_frame(&opts, "zongzhi-key", "zongzhi", b.data, b.len, NOW_US);
    assert_non_null(f);
    assert_non_null(f->submission->rejection);
    assert_int_equal(f->submission->rejection->reason, R(UNAUTHORISED_SOURCE));
    assert_non_null(strstr(f->submission->rejection->text, "12345"));
    assert_string_equal(f->submission->source, "zongzhi");
    check_rejection(f, b.data, b.len, "zongzhi-key");
    /* The decoded event is kept for the record. */
    assert_non_null(f->submission->event);
    assert_string_equal(f->submission->event->source, "12345");
    og_intake_frame_free(&f);
}

/* event.proto, Envelope.source: "When the publisher authenticates with CURVE, its key
 * decides the source and this field must be empty or equal to it." */
static void test_authenticated_empty_source(void **state)
{
    struct ex x;
    struct wbuf b;
    ex_report(&x);
    x.e.source = (char *)"";
    ex_pack(&x, &b);
    Onegrid__V1__Frame *f = og_intake_frame(&opts, "zongzhi-key", "zongzhi", b.data, b.len, NOW_US);
    assert_non_null(f);
    if (f->submission->rejection) {
        char text[300];
        snprintf(text, sizeof(text), "%s (%s)", f->submission->rejection->text,
                 og_reason_name(f->submission->rejection->reason));
        og_intake_frame_free(&f);
        fail_msg("empty source from an authenticated publisher refused: %s", text);
    }
    assert_string_equal(f->key, "zongzhi\x1f"
                                "evt-0001");
    assert_string_equal(f->submission->source, "zongzhi");
    og_intake_frame_free(&f);

    /* Without authentication an empty source stays refused. */
    f = og_intake_frame(&opts, "local", NULL, b.data, b.len, NOW_US);
    assert_non_null(f);
    assert_non_null(f->submission->rejection);
    assert_int_equal(f->submission->rejection->reason, R(MISSING_FIELD));
    og_intake_frame_free(&f);
}

static void test_garbage(void **state)
{
    uint8_t garbage[300];
    for (size_t i = 0; i < sizeof(garbage); i++)
        garbage[i] = (uint8_t)(0xff - i);
    Onegrid__V1__Frame *f = og_intake_frame(&opts, "local", NULL, garbage, sizeof(garbage), NOW_US);
    assert_non_null(f);
    check_rejection(f, garbage, sizeof(garbage), "local");
    assert_int_equal(f->submission->rejection->reason, R(UNDECODABLE));
    assert_null(f->submission->event);
    assert_string_equal(f->submission->source, "");
    og_intake_frame_free(&f);

    /* Shorter than max_rejected_bytes: kept whole. */
    f = og_intake_frame(&opts, "local", NULL, garbage, 10, NOW_US);
    assert_non_null(f);
    check_rejection(f, garbage, 10, "local");
    og_intake_frame_free(&f);

    /* Empty. */
    f = og_intake_frame(&opts, "local", NULL, garbage, 0, NOW_US);
    assert_non_null(f);
    check_rejection(f, garbage, 0, "local");
    assert_int_equal(f->submission->rejection->reason, R(UNDECODABLE));
    og_intake_frame_free(&f);
}

static void test_too_large(void **state)
{
    static uint8_t big[5000];
    memset(big, 'x', sizeof(big));
    Onegrid__V1__Frame *f = og_intake_frame(&opts, "local", NULL, big, sizeof(big), NOW_US);
    assert_non_null(f);
    check_rejection(f, big, sizeof(big), "local");
    assert_int_equal(f->submission->rejection->reason, R(TOO_LARGE));
    og_intake_frame_free(&f);
}

static void test_invalid_event(void **state)
{
    struct ex x;
    struct wbuf b;
    ex_report(&x);
    x.report.title = (char *)"";
    ex_pack(&x, &b);
    Onegrid__V1__Frame *f = og_intake_frame(&opts, "local", NULL, b.data, b.len, NOW_US);
    assert_non_null(f);
    /* Refused for a field, with the refused bytes; clean on the wire, so the record keeps
     * the decoded event and is attributed to its source. */
    check_rejection(f, b.data, b.len, "local");
    assert_int_equal(f->submission->rejection->reason, R(MISSING_FIELD));
    assert_non_null(strstr(f->submission->rejection->text, "report.title"));
    assert_non_null(f->submission->event);
    assert_string_equal(f->submission->event->id, "evt-0001");
    assert_string_equal(f->submission->source, "zongzhi");
    og_intake_frame_free(&f);

    /* Too old for max_age, judged against now_us. */
    ex_report(&x);
    ex_pack(&x, &b);
    f = og_intake_frame(&opts, "local", NULL, b.data, b.len, NOW_US + 31LL * 86400 * 1000000);
    assert_non_null(f);
    assert_non_null(f->submission->rejection);
    assert_int_equal(f->submission->rejection->reason, R(INVALID_TIME));
    assert_non_null(f->submission->event);
    og_intake_frame_free(&f);

    /* Refused on the wire (a NUL in a string): nothing decoded is attached. */
    ex_report(&x);
    x.e.subject = (char *)"";
    ex_pack(&x, &b);
    w_ld(&b, 5, "A\0B", 3);
    f = og_intake_frame(&opts, "local", NULL, b.data, b.len, NOW_US);
    assert_non_null(f);
    check_rejection(f, b.data, b.len, "local");
    assert_int_equal(f->submission->rejection->reason, R(EMBEDDED_NUL));
    assert_null(f->submission->event);
    assert_string_equal(f->submission->source, "");
    og_intake_frame_free(&f);

    /* An unchecked id too long to keep is not kept: the record is bounded. */
    char id[201];
    memset(id, 'i', 200);
    id[200] = '\0';
    ex_report(&x);
    x.e.id = id;
    ex_pack(&x, &b);
    f = og_intake_frame(&opts, "local", NULL, b.data, b.len, NOW_US);
    assert_non_null(f);
    assert_int_equal(f->submission->rejection->reason, R(INVALID_FIELD));
    assert_null(f->submission->event);
    og_intake_frame_free(&f);
    ex_report(&x);
    x.e.source = (char *)"abcdefghijabcdefghijabcdefghijabcdefghij"; /* 40 */
    ex_pack(&x, &b);
    f = og_intake_frame(&opts, "local", NULL, b.data, b.len, NOW_US);
    assert_non_null(f);
    assert_int_equal(f->submission->rejection->reason, R(UNAUTHORISED_SOURCE));
    /* The source is not kept, the id is: the answer names the event refused. */
    assert_non_null(f->submission->event);
    assert_string_equal(f->submission->event->id, "evt-0001");
    assert_string_equal(f->submission->event->source, "");
    assert_string_equal(f->submission->source, "");
    og_intake_frame_free(&f);
}

static void test_same_bytes_same_key(void **state)
{
    uint8_t garbage[] = {0xde, 0xad, 0xbe, 0xef, 0x00, 0x01};
    Onegrid__V1__Frame *a = og_intake_frame(&opts, "local", NULL, garbage, sizeof(garbage), NOW_US);
    Onegrid__V1__Frame *b =
        og_intake_frame(&opts, "local", NULL, garbage, sizeof(garbage), NOW_US + 5000000);
    assert_non_null(a);
    assert_non_null(b);
    /* A resent refused frame is the same message, whenever it comes. */
    assert_string_equal(a->key, b->key);
    og_intake_frame_free(&b);
    /* Other bytes, another key. */
    garbage[5] = 0x02;
    b = og_intake_frame(&opts, "local", NULL, garbage, sizeof(garbage), NOW_US);
    assert_non_null(b);
    assert_string_not_equal(a->key, b->key);
    og_intake_frame_free(&b);
    og_intake_frame_free(&a);

    /* Valid events: the key is the idempotency key, whatever the bytes around it. */
    struct ex x;
    struct wbuf w1, w2;
    ex_report(&x);
    ex_pack(&x, &w1);
    x.report.description = (char *)"另一种说法";
    ex_pack(&x, &w2);
    a = og_intake_frame(&opts, "local", NULL, w1.data, w1.len, NOW_US);
    b = og_intake_frame(&opts, "local", NULL, w2.data, w2.len, NOW_US + 1000);
    assert_non_null(a);
    assert_non_null(b);
    assert_null(a->submission->rejection);
    assert_null(b->submission->rejection);
    assert_string_equal(a->key, b->key);
    og_intake_frame_free(&a);
    og_intake_frame_free(&b);
}

static int listen_ok(const char *listen, bool curve, bool allow)
{
    char err[512] = "";
    int rc = og_intake_check_listen(listen, curve, allow, err, sizeof(err));
    if (rc < 0)
        assert_true(strstr(err, "[intake] listen") != NULL);
    return rc;
}

/* Without CURVE: ipc:// and loopback tcp:// only, unless the operator says
 * allow_unauthenticated; with CURVE anything; never nothing at all. */
static void test_check_listen(void **state)
{
    (void)state;
    char err[512];

    assert_int_equal(listen_ok("ipc:///run/onegrid/intake.sock", false, false), 0);
    assert_int_equal(listen_ok("tcp://127.0.0.1:7300", false, false), 0);
    assert_int_equal(listen_ok("tcp://127.1.2.3:7300, ipc:///x", false, false), 0);
    assert_int_equal(listen_ok("tcp://[::1]:7300", false, false), 0);
    assert_int_equal(listen_ok("tcp://[::ffff:127.0.0.1]:7300", false, false), 0);
    assert_int_equal(listen_ok("tcp://lo:7300", false, false), 0);
    assert_int_equal(listen_ok("tcp://0.0.0.0:7300", false, false), -EPERM);
    assert_int_equal(listen_ok("tcp://*:7300", false, false), -EPERM);
    assert_int_equal(listen_ok("ipc:///x tcp://10.1.2.3:7300", false, false), -EPERM);
    assert_int_equal(listen_ok("tcp://127.0.0.1.evil:7300", false, false), -EPERM);
    assert_int_equal(listen_ok("tcp://1127.0.0.1:7300", false, false), -EPERM);
    assert_int_equal(listen_ok("tcp://eth0:7300", false, false), -EPERM);
    assert_int_equal(listen_ok("tcp://[::]:7300", false, false), -EPERM);
    assert_int_equal(listen_ok("ws://127.0.0.1:7300", false, false), -EPERM);
    assert_int_equal(listen_ok("tcp://0.0.0.0:7300", true, false), 0);
    assert_int_equal(listen_ok("tcp://0.0.0.0:7300", false, true), 0);
    assert_int_equal(listen_ok("", true, true), -EINVAL);
    assert_int_equal(listen_ok(" , ", false, false), -EINVAL);
    assert_int_equal(og_intake_check_listen("tcp://*:1", false, false, err, sizeof(err)), -EPERM);
    assert_non_null(strstr(err, "allow_unauthenticated = yes"));
}

int main(void)
{
    if (sodium_init() < 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_event),
        cmocka_unit_test(test_authenticated_source),
        cmocka_unit_test(test_authenticated_empty_source),
        cmocka_unit_test(test_garbage),
        cmocka_unit_test(test_too_large),
        cmocka_unit_test(test_invalid_event),
        cmocka_unit_test(test_same_bytes_same_key),
        cmocka_unit_test(test_check_listen),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
