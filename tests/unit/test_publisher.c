/* Unit tests for libonegrid's publisher against a stand-in intake (a real ROUTER over
 * ipc:// in a private directory): it runs the same delivery core as the links, so after a
 * reconnect (intake restarted) it resends what was unanswered at once, not after resend_ms;
 * and an answer to a copy sent before the reconnect is taken; a poll waits its timeout. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

#include <cmocka.h>

#include "onegrid/publisher.h"
#include "onegrid/v1/event.pb-c.h"
#include "util.h"
#include "zsock.h"

#define LONG_RESEND_MS 60000 /* no resend by timeout can happen within a test */

struct fixture {
    char dir[64], endpoint[128];
    void *ctx, *intake;
    struct og_publisher *pub;
    int answers, stored;
};

static int setup(void **state)
{
    struct fixture *fx = calloc(1, sizeof(*fx));
    char err[256];
    snprintf(fx->dir, sizeof(fx->dir), "/tmp/og-pub-XXXXXX");
    if (!mkdtemp(fx->dir))
        return -1;
    snprintf(fx->endpoint, sizeof(fx->endpoint), "ipc://%s/intake.sock", fx->dir);
    fx->ctx = zmq_ctx_new();
    fx->intake = og_router_new(fx->ctx, fx->endpoint, 1 << 20, err, sizeof(err));
    struct og_publisher_opts o = {.window = 10, .resend_ms = LONG_RESEND_MS};
    fx->pub = og_publisher_new(fx->endpoint, &o, err, sizeof(err));
    if (!fx->intake || !fx->pub)
        return -1;
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *fx = *state;
    og_publisher_destroy(&fx->pub);
    if (fx->intake)
        zmq_close(fx->intake);
    zmq_ctx_term(fx->ctx);
    char path[160];
    snprintf(path, sizeof(path), "%s/intake.sock", fx->dir);
    unlink(path);
    rmdir(fx->dir);
    free(fx);
    return 0;
}

static void on_answer(const struct og_answer *a, void *arg)
{
    struct fixture *fx = arg;
    fx->answers++;
    fx->stored += a->outcome == OG_OUTCOME_STORED;
}

/* Polls the publisher until the stand-in intake has a Submit, for up to ms; fills route
 * and the Submit's tag. */
static bool intake_got(struct fixture *fx, int ms, struct og_route *route, uint8_t tag[8])
{
    int64_t until = og_mono_us() + (int64_t)ms * 1000;
    while (og_mono_us() < until) {
        struct og_zmsg m;
        og_publisher_poll(fx->pub, 20, on_answer, fx);
        if (og_zrecv(fx->intake, &m) == 0) {
            Onegrid__V1__Submit *s =
                m.n == 2 ? onegrid__v1__submit__unpack(NULL, m.size[1], m.data[1]) : NULL;
            bool ok = s && s->tag.len == 8;
            if (ok) {
                memcpy(route->id, m.data[0], m.size[0]);
                route->len = m.size[0];
                memcpy(tag, s->tag.data, 8);
            }
            if (s)
                onegrid__v1__submit__free_unpacked(s, NULL);
            og_zmsg_close(&m);
            if (ok)
                return true;
        }
    }
    return false;
}

static void answer(struct fixture *fx, const struct og_route *route, const uint8_t tag[8])
{
    Onegrid__V1__Reply r = ONEGRID__V1__REPLY__INIT;
    Onegrid__V1__Ack ack = ONEGRID__V1__ACK__INIT;
    uint8_t buf[128];
    r.tag.data = (uint8_t *)tag;
    r.tag.len = 8;
    r.event_id = "e-1";
    r.source = "zongzhi";
    r.result_case = ONEGRID__V1__REPLY__RESULT_ACK;
    r.ack = &ack;
    ack.outcome = ONEGRID__V1__ACK__OUTCOME__OUTCOME_STORED;
    ack.case_id = "650204-00000001";
    size_t len = protobuf_c_message_pack(&r.base, buf);
    const void *parts[] = {route->id, buf};
    size_t sizes[] = {route->len, len};
    assert_int_equal(og_zsend(fx->intake, parts, sizes, 2), 0);
}

static void test_reconnect_resends_at_once(void **state)
{
    struct fixture *fx = *state;
    struct og_route route;
    uint8_t tag[8];
    char err[256];

    assert_int_equal(og_publisher_send(fx->pub, 1, "event-bytes", 11), 0);
    if (!intake_got(fx, 10000, &route, tag))
        fail_msg("the first Submit never reached intake");

    /* intake goes away with the event unanswered, and comes back at the same endpoint. */
    zmq_close(fx->intake);
    fx->intake = NULL;
    int64_t t0 = og_mono_us();
    while (!(fx->intake = og_router_new(fx->ctx, fx->endpoint, 1 << 20, err, sizeof(err)))) {
        if (og_mono_us() - t0 > 10000000)
            fail_msg("intake again, for 10 s: %s", err);
        og_publisher_poll(fx->pub, 10, on_answer, fx);
    }
    /* libzmq's reconnect backoff can take a few seconds on a loaded machine; a resend by
     * timeout would take LONG_RESEND_MS. */
    if (!intake_got(fx, 20000, &route, tag))
        fail_msg("the unanswered event was not resent within 20 s of intake's return "
                 "(resend_ms is %d)",
                 LONG_RESEND_MS);
    assert_int_equal(og_publisher_resent(fx->pub), 1);

    answer(fx, &route, tag);
    int64_t until = og_mono_us() + 10000000;
    while (fx->answers == 0 && og_mono_us() < until)
        og_publisher_poll(fx->pub, 50, on_answer, fx);
    assert_int_equal(fx->answers, 1);
    assert_int_equal(fx->stored, 1);
    assert_int_equal(og_publisher_held(fx->pub), 0);
}

static void test_duplicate_token(void **state)
{
    struct fixture *fx = *state;
    assert_int_equal(og_publisher_send(fx->pub, 7, "a", 1), 0);
    assert_int_equal(og_publisher_send(fx->pub, 7, "b", 1), -EEXIST);
    assert_int_equal(og_publisher_held(fx->pub), 1);
}

/* A poll with events unanswered and no answer coming waits its whole timeout, short ones
 * too: a 1 ms timeout returned at once (what was left of it, rounded down to whole
 * milliseconds, was 0), and a publisher pacing its events 1 ms apart spun a core. */
static void test_poll_waits_its_timeout(void **state)
{
    struct fixture *fx = *state;
    assert_int_equal(og_publisher_send(fx->pub, 1, "event-bytes", 11), 0);
    for (int ms = 1; ms <= 3; ms++) {
        int64_t t0 = og_mono_us();
        assert_int_equal(og_publisher_poll(fx->pub, ms, on_answer, fx), 0);
        int64_t waited = og_mono_us() - t0;
        if (waited < (int64_t)ms * 1000)
            fail_msg("og_publisher_poll with a timeout of %d ms returned after %lld us", ms,
                     (long long)waited);
    }
    assert_int_equal(fx->answers, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_reconnect_resends_at_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_duplicate_token, setup, teardown),
        cmocka_unit_test_setup_teardown(test_poll_waits_its_timeout, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
