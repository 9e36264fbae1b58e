/* Unit tests for daemons/common/link.c: a real ZeroMQ client and server over an ipc://
 * endpoint in a private mkdtemp directory, driven by a small poll loop with a deadline
 * (og_link_client_tick / og_link_client_recv / og_link_server_recv), as the daemons do. */
#include <errno.h>
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

#include "link.h"
#include "util.h"

#define MAX_RX      64
#define LONG_RESEND (20 * 1000000) /* no resend within any test */

struct got {
    Onegrid__V1__Frame *f;
    struct og_route from;
    bool answered;
    int64_t at; /* monotonic us when the server took it */
};

struct link {
    void *ctx;
    char dir[64];
    char endpoint[128];
    struct og_link_server *srv;
    struct og_link_client *cli;
    /* What the server received, in order. */
    struct got rx[MAX_RX];
    size_t n_rx;
    /* What the client delivered to on_answer, in order. */
    char answers[MAX_RX][64];
    size_t n_answers;
    bool answer_without_reply;
    /* When the client sent each DATA frame (first sends and resends, in order), read just
     * after the tick that sent it: the client's own schedule, which a loaded machine can
     * only delay, unlike the server's receive times. */
    /* When each copy went, as an interval: the client sent it in a tick that began at lo
     * and had returned by hi (a loaded machine can stop the test anywhere between). */
    int64_t sent_lo[MAX_RX], sent_hi[MAX_RX];
    size_t n_sent;
};

static int setup(void **state)
{
    struct link *l = calloc(1, sizeof(*l));
    if (!l)
        return -1;
    snprintf(l->dir, sizeof(l->dir), "/tmp/og-test-link-XXXXXX");
    if (!mkdtemp(l->dir)) {
        free(l);
        return -1;
    }
    snprintf(l->endpoint, sizeof(l->endpoint), "ipc://%s/link.sock", l->dir);
    l->ctx = zmq_ctx_new();
    *state = l;
    return l->ctx ? 0 : -1;
}

static int teardown(void **state)
{
    struct link *l = *state;
    char path[128];
    for (size_t i = 0; i < l->n_rx; i++)
        onegrid__v1__frame__free_unpacked(l->rx[i].f, NULL);
    og_link_client_destroy(&l->cli);
    og_link_server_destroy(&l->srv);
    zmq_ctx_term(l->ctx);
    snprintf(path, sizeof(path), "%s/link.sock", l->dir);
    unlink(path);
    rmdir(l->dir);
    free(l);
    return 0;
}

/* A server with credit, and a client with max_queue and resend_us. */
static void start(struct link *l, uint32_t credit, size_t max_queue, int64_t resend_us)
{
    char err[256];
    l->srv = og_link_server_new(l->ctx, l->endpoint, credit, err, sizeof(err));
    if (!l->srv)
        fail_msg("server: %s", err);
    l->cli = og_link_client_new(l->ctx, l->endpoint, "unit-test", max_queue, resend_us, NULL, err,
                                sizeof(err));
    if (!l->cli)
        fail_msg("client: %s", err);
}

static void on_answer(Onegrid__V1__Frame *a, void *arg)
{
    struct link *l = arg;
    if (l->n_answers < MAX_RX)
        snprintf(l->answers[l->n_answers++], sizeof(l->answers[0]), "%s", a->key);
    if (a->kind != ONEGRID__V1__FRAME__KIND__KIND_ANSWER || !a->reply)
        l->answer_without_reply = true;
    onegrid__v1__frame__free_unpacked(a, NULL); /* the callback owns it */
}

static size_t unanswered_at_server(const struct link *l)
{
    size_t n = 0;
    for (size_t i = 0; i < l->n_rx; i++)
        n += !l->rx[i].answered;
    return n;
}

/* Runs both ends for up to ms milliseconds, or until done(l). Returns done(l) (true when
 * no done is given). Records the most frames the server held unanswered at once. */
static bool pump(struct link *l, int ms, bool (*done)(const struct link *), size_t *max_unanswered)
{
    int64_t deadline = og_mono_us() + (int64_t)ms * 1000;
    do {
        zmq_pollitem_t items[] = {
            {og_link_client_socket(l->cli), 0, ZMQ_POLLIN, 0},
            {l->srv ? og_link_server_socket(l->srv) : NULL, 0, ZMQ_POLLIN, 0},
        };
        int64_t tick_began = og_mono_us();
        og_link_client_tick(l->cli);
        const struct og_link_stats *st = og_link_client_stats(l->cli);
        int64_t ticked = og_mono_us();
        while (l->n_sent < st->sent + st->resent && l->n_sent < MAX_RX) {
            l->sent_lo[l->n_sent] = tick_began;
            l->sent_hi[l->n_sent++] = ticked;
        }
        zmq_poll(items, l->srv ? 2 : 1, 5);
        og_link_client_recv(l->cli, on_answer, l);
        while (l->srv) {
            struct og_route from;
            Onegrid__V1__Frame *f = NULL;
            int rc = og_link_server_recv(l->srv, &from, &f);
            if (rc == -EAGAIN)
                break;
            if (rc == 1) {
                if (l->n_rx == MAX_RX)
                    fail_msg("more than %d frames at the server", MAX_RX);
                l->rx[l->n_rx].f = f;
                l->rx[l->n_rx].from = from;
                l->rx[l->n_rx].answered = false;
                l->rx[l->n_rx].at = og_mono_us();
                l->n_rx++;
            } else {
                assert_int_equal(rc, 0);
            }
        }
        if (max_unanswered && unanswered_at_server(l) > *max_unanswered)
            *max_unanswered = unanswered_at_server(l);
        if (done && done(l))
            return true;
    } while (og_mono_us() < deadline);
    return !done;
}

static bool connected(const struct link *l)
{
    return og_link_client_connected(l->cli);
}

static void connect_or_fail(struct link *l)
{
    if (!pump(l, 2000, connected, NULL))
        fail_msg("no credit from the server within 2 s");
}

static size_t want_rx, want_answers;

static bool rx_reached(const struct link *l)
{
    return l->n_rx >= want_rx;
}

static bool answers_reached(const struct link *l)
{
    return l->n_answers >= want_answers;
}

/* Queues a DATA frame with key and a small submission. Returns og_link_client_send's rc. */
static int send_key(struct link *l, const char *key)
{
    Onegrid__V1__Frame f = ONEGRID__V1__FRAME__INIT;
    Onegrid__V1__Submission s = ONEGRID__V1__SUBMISSION__INIT;
    f.kind = ONEGRID__V1__FRAME__KIND__KIND_DATA;
    f.key = (char *)key;
    f.submission = &s;
    s.publisher = (char *)"local";
    s.source = (char *)"zongzhi";
    return og_link_client_send(l->cli, &f);
}

/* Sends the server's ANSWER for key to the route of received frame i. */
static int answer_key(struct link *l, size_t i, const char *key)
{
    Onegrid__V1__Frame a = ONEGRID__V1__FRAME__INIT;
    Onegrid__V1__Reply r = ONEGRID__V1__REPLY__INIT;
    Onegrid__V1__Ack ack = ONEGRID__V1__ACK__INIT;
    a.kind = ONEGRID__V1__FRAME__KIND__KIND_ANSWER;
    a.key = (char *)key;
    a.reply = &r;
    r.event_id = (char *)"e";
    r.result_case = ONEGRID__V1__REPLY__RESULT_ACK;
    r.ack = &ack;
    ack.outcome = ONEGRID__V1__ACK__OUTCOME__OUTCOME_STORED;
    return og_link_server_answer(l->srv, &l->rx[i].from, &a);
}

static void answer(struct link *l, size_t i)
{
    assert_true(i < l->n_rx);
    assert_int_equal(answer_key(l, i, l->rx[i].f->key), 0);
    l->rx[i].answered = true;
}

static size_t count_answers(const struct link *l, const char *key)
{
    size_t n = 0;
    for (size_t i = 0; i < l->n_answers; i++)
        n += strcmp(l->answers[i], key) == 0;
    return n;
}

/* Tests ------------------------------------------------------------------------------ */

static void test_handshake_grants_credit(void **state)
{
    struct link *l = *state;
    start(l, 3, 16, LONG_RESEND);
    assert_false(og_link_client_connected(l->cli));
    connect_or_fail(l);
    assert_true(og_link_client_connected(l->cli));
    /* HELLO is handled inside the server: nothing is handed to the caller. */
    assert_int_equal(l->n_rx, 0);
    assert_int_equal(og_link_client_stats(l->cli)->sent, 0);
    assert_int_equal(og_link_server_stats(l->srv)->bad_frames, 0);
    /* The first connection is not a reconnect. */
    assert_int_equal(og_link_client_stats(l->cli)->reconnects, 0);
}

static void test_data_arrives_with_key(void **state)
{
    struct link *l = *state;
    start(l, 3, 16, LONG_RESEND);
    /* Frames queued before the handshake wait for credit, then go. */
    assert_int_equal(send_key(l, "zongzhi\x1f"
                                 "e-1"),
                     0);
    assert_int_equal(send_key(l, "zongzhi\x1f"
                                 "e-2"),
                     0);
    assert_int_equal(og_link_client_held(l->cli), 2);
    want_rx = 2;
    if (!pump(l, 2000, rx_reached, NULL))
        fail_msg("server got %zu of 2 frames", l->n_rx);
    assert_string_equal(l->rx[0].f->key, "zongzhi\x1f"
                                         "e-1");
    assert_string_equal(l->rx[1].f->key, "zongzhi\x1f"
                                         "e-2");
    assert_int_equal(l->rx[0].f->kind, ONEGRID__V1__FRAME__KIND__KIND_DATA);
    assert_non_null(l->rx[0].f->submission);
    assert_string_equal(l->rx[0].f->submission->source, "zongzhi");
    assert_true(l->rx[0].from.len > 0);
    assert_int_equal(og_link_client_stats(l->cli)->sent, 2);
    /* Still held until answered. */
    assert_int_equal(og_link_client_held(l->cli), 2);
    assert_int_equal(l->n_answers, 0);
}

static void test_credit_bounds_unanswered(void **state)
{
    struct link *l = *state;
    char key[16];
    size_t max_unanswered = 0;
    start(l, 3, 16, LONG_RESEND);
    connect_or_fail(l);
    for (int i = 0; i < 10; i++) {
        snprintf(key, sizeof(key), "k%02d", i);
        assert_int_equal(send_key(l, key), 0);
    }
    assert_int_equal(og_link_client_held(l->cli), 10);

    /* Unanswered, the server gets exactly the credit, however long it waits. */
    pump(l, 300, NULL, &max_unanswered);
    assert_int_equal(l->n_rx, 3);
    assert_int_equal(og_link_client_stats(l->cli)->sent, 3);
    assert_int_equal(og_link_client_held(l->cli), 10);

    /* An answer for a key that is held but not yet sent is not delivered. */
    assert_int_equal(answer_key(l, 0, "k09"), 0);
    /* One answer releases one frame. */
    answer(l, 0);
    want_answers = 1;
    assert_true(pump(l, 2000, answers_reached, &max_unanswered));
    pump(l, 200, NULL, &max_unanswered);
    assert_int_equal(l->n_answers, 1);
    assert_string_equal(l->answers[0], "k00");
    assert_false(l->answer_without_reply);
    assert_int_equal(l->n_rx, 4);
    assert_string_equal(l->rx[3].f->key, "k03");
    assert_int_equal(og_link_client_stats(l->cli)->stray, 1);
    assert_int_equal(og_link_client_held(l->cli), 9);

    /* Answer everything as it comes; the window never exceeds the credit. */
    int64_t deadline = og_mono_us() + 3000000;
    while (l->n_answers < 10 && og_mono_us() < deadline) {
        for (size_t i = 0; i < l->n_rx; i++)
            if (!l->rx[i].answered)
                answer(l, i);
        pump(l, 20, NULL, &max_unanswered);
    }
    assert_int_equal(l->n_answers, 10);
    assert_int_equal(l->n_rx, 10); /* nothing resent */
    assert_true(max_unanswered <= 3);
    for (int i = 0; i < 10; i++) {
        snprintf(key, sizeof(key), "k%02d", i);
        assert_string_equal(l->rx[i].f->key, key); /* in order */
        if (count_answers(l, key) != 1)
            fail_msg("%s delivered %zu times", key, count_answers(l, key));
    }
    const struct og_link_stats *st = og_link_client_stats(l->cli);
    assert_int_equal(st->sent, 10);
    assert_int_equal(st->answered, 10);
    assert_int_equal(st->resent, 0);
    assert_int_equal(og_link_client_held(l->cli), 0);
    assert_int_equal(og_link_server_stats(l->srv)->answered, 11);
}

static void test_same_key_twice(void **state)
{
    struct link *l = *state;
    start(l, 3, 16, LONG_RESEND);
    connect_or_fail(l);
    assert_int_equal(send_key(l, "dup"), 0);
    assert_int_equal(send_key(l, "dup"), 1);
    pump(l, 100, NULL, NULL);
    assert_int_equal(send_key(l, "dup"), 1); /* also once sent */
    pump(l, 200, NULL, NULL);
    assert_int_equal(l->n_rx, 1);
    assert_int_equal(og_link_client_stats(l->cli)->sent, 1);
    assert_int_equal(og_link_client_held(l->cli), 1);
    answer(l, 0);
    want_answers = 1;
    assert_true(pump(l, 2000, answers_reached, NULL));
    assert_int_equal(og_link_client_held(l->cli), 0);
    /* Once answered the key is free again: a new message under it is sent. */
    assert_int_equal(send_key(l, "dup"), 0);
    want_rx = 2;
    assert_true(pump(l, 2000, rx_reached, NULL));
}

static void test_resend_after_timeout(void **state)
{
    struct link *l = *state;
    start(l, 3, 16, 200000); /* 200 ms */
    connect_or_fail(l);
    assert_int_equal(send_key(l, "slow"), 0);
    want_rx = 1;
    assert_true(pump(l, 1000, rx_reached, NULL));
    /* No answer: after 200 ms it comes again. */
    want_rx = 2;
    if (!pump(l, 1500, rx_reached, NULL))
        fail_msg("not resent within 1.5 s (resend_us 200 ms)");
    /* Not before its time: counted from when the client sent each (to within the ticks that
     * sent them, the longest way; test_resend_backs_off), not from when the server saw the
     * first, which a loaded machine delays. */
    assert_true(l->n_sent >= 2);
    assert_true(l->sent_hi[1] - l->sent_lo[0] >= 199000);
    assert_string_equal(l->rx[1].f->key, "slow");
    const struct og_link_stats *st = og_link_client_stats(l->cli);
    assert_true(st->resent >= 1);
    assert_int_equal(st->sent, 1);

    /* Both copies answered: one delivery, the other answer is stray. */
    answer(l, 0);
    answer(l, 1);
    want_answers = 1;
    assert_true(pump(l, 1000, answers_reached, NULL));
    pump(l, 100, NULL, NULL);
    assert_int_equal(l->n_answers, 1);
    assert_int_equal(count_answers(l, "slow"), 1);
    assert_int_equal(st->answered, 1);
    assert_true(st->stray >= 1);
    /* Answered: no more resends. */
    size_t n = l->n_rx;
    uint64_t resent = st->resent;
    pump(l, 450, NULL, NULL);
    assert_int_equal(st->resent, resent);
    assert_int_equal(l->n_rx, n);
    assert_int_equal(og_link_client_held(l->cli), 0);
}

/* While the peer stays connected the wait before each resend doubles, up to 16 times
 * resend_us: with 20 ms, copies go 20, 40, 80, 160, 320 ms after the one before, then every
 * 320 ms. Judged by when the client sent them (a loaded machine delays the server's receipt
 * of one copy more than the next, which made receive gaps look early), each known only to
 * within the tick that sent it: a copy is early only if it went sooner than the wait even
 * counted from the start of the tick before to the end of its own (counted from the end of
 * the one and the start of the other, a preempted test made a gap of 320 ms look like 313).
 * The cap is judged by the shortest of the last three waits, counted the other way: without
 * it they would be 640, 1280 and 2560 ms, and one late tick cannot make all three look
 * long. */
static void test_resend_backs_off(void **state)
{
    struct link *l = *state;
    static const int64_t expect_ms[] = {20, 40, 80, 160, 320, 320, 320, 320};
    start(l, 3, 16, 20000);
    connect_or_fail(l);
    assert_int_equal(send_key(l, "stalled"), 0);
    want_rx = 1 + OG_ARRAY_SIZE(expect_ms);
    if (!pump(l, 15000, rx_reached, NULL))
        fail_msg("%zu copies within 15 s, expected %zu", l->n_rx, want_rx);
    assert_true(l->n_sent >= want_rx);
    int64_t shortest_capped = INT64_MAX;
    for (size_t i = 0; i < OG_ARRAY_SIZE(expect_ms); i++) {
        int64_t longest_ms = (l->sent_hi[i + 1] - l->sent_lo[i]) / 1000;
        int64_t shortest_ms = (l->sent_lo[i + 1] - l->sent_hi[i]) / 1000;
        assert_string_equal(l->rx[i + 1].f->key, "stalled");
        /* Never early: 1 ms of slack for the clock reads' rounding. */
        if (longest_ms < expect_ms[i] - 1)
            fail_msg("copy %zu went at most %lld ms after the one before, expected at least "
                     "%lld ms",
                     i + 1, (long long)longest_ms, (long long)expect_ms[i]);
        if (i >= 5 && shortest_ms < shortest_capped)
            shortest_capped = shortest_ms;
    }
    if (shortest_capped * 10 >= 320 * 17)
        fail_msg("the waits after the 5th copy did not stay at 320 ms: the shortest was %lld ms",
                 (long long)shortest_capped);
    assert_int_equal(og_link_client_stats(l->cli)->sent, 1);
    assert_true(og_link_client_stats(l->cli)->resent >= OG_ARRAY_SIZE(expect_ms));
}

static bool saw_disconnect(const struct link *l)
{
    return og_link_client_stats(l->cli)->disconnects > 0;
}

/* The server goes away with what it received unanswered, and the client sees it go. */
static void server_gone(struct link *l)
{
    for (size_t i = 0; i < l->n_rx; i++)
        onegrid__v1__frame__free_unpacked(l->rx[i].f, NULL);
    l->n_rx = 0;
    og_link_server_destroy(&l->srv);
    if (!pump(l, 10000, saw_disconnect, NULL))
        fail_msg("client did not see the server go");
}

/* A new server at the same endpoint, with credit. libzmq closes the old listener a moment
 * later, in its I/O thread; until then a new server at the same path is refused ("another
 * process is listening there"). */
static void server_again(struct link *l, uint32_t credit)
{
    char err[256];
    int64_t t0 = og_mono_us();
    while (!(l->srv = og_link_server_new(l->ctx, l->endpoint, credit, err, sizeof(err)))) {
        if (og_mono_us() - t0 > 10000000)
            fail_msg("server again, for 10 s: %s", err);
        pump(l, 10, NULL, NULL);
    }
}

/* A frame queued while the server was away goes out after the older ones lost with it,
 * whenever the daemon's loop looks at its socket monitor. Here the client is ticked (it
 * sends) but not read (og_link_client_recv, which also reads the monitor) while a new
 * server comes up: the loop of a daemon busy elsewhere. Before the fix the client took
 * the new connection for the old one, with the old credit, and r2 reached the new server
 * before r1 (which the old one took and never answered): archive stored a later decision
 * about a case before an earlier one. */
static void test_reconnect_keeps_order(void **state)
{
    struct link *l = *state;
    start(l, 3, 16, LONG_RESEND);
    connect_or_fail(l);
    assert_int_equal(send_key(l, "r1"), 0);
    want_rx = 1;
    assert_true(pump(l, 2000, rx_reached, NULL));
    server_gone(l);
    /* Queued while no server is there, with credit to spare had the old one still counted. */
    assert_int_equal(send_key(l, "r2"), 0);
    pump(l, 20, NULL, NULL);
    server_again(l, 3);
    /* Ticked, never read, until the new server hears its first frame (libzmq reconnects
     * within its 2 s backoff cap): HELLO, not DATA. */
    uint64_t bad = og_link_server_stats(l->srv)->bad_frames;
    bool heard = false, data_first = false;
    int64_t t0 = og_mono_us();
    while (!heard && og_mono_us() - t0 < 15000000) {
        zmq_pollitem_t item = {og_link_server_socket(l->srv), 0, ZMQ_POLLIN, 0};
        og_link_client_tick(l->cli);
        zmq_poll(&item, 1, 5);
        for (;;) {
            struct og_route from;
            Onegrid__V1__Frame *f = NULL;
            int rc = og_link_server_recv(l->srv, &from, &f);
            if (rc == -EAGAIN)
                break;
            if (rc == 1) {
                data_first = !heard;
                heard = true;
                onegrid__v1__frame__free_unpacked(f, NULL);
                break;
            }
            assert_int_equal(rc, 0);
            if (og_link_server_stats(l->srv)->bad_frames == bad) {
                heard = true; /* HELLO (answered with CREDIT) */
                break;
            }
        }
    }
    if (!heard)
        fail_msg("the new server heard nothing from the client for 15 s");
    if (data_first)
        fail_msg("a DATA frame reached the new server before the client asked it for credit "
                 "(HELLO): the client took the new connection for the old one");

    /* Then, read too: r1 first, then r2, each once, and both answered. */
    want_rx = 2;
    if (!pump(l, 10000, rx_reached, NULL))
        fail_msg("the new server got %zu of 2 frames", l->n_rx);
    pump(l, 100, NULL, NULL);
    assert_int_equal(l->n_rx, 2);
    assert_string_equal(l->rx[0].f->key, "r1");
    assert_string_equal(l->rx[1].f->key, "r2");
    answer(l, 0);
    answer(l, 1);
    want_answers = 2;
    assert_true(pump(l, 5000, answers_reached, NULL));
    assert_string_equal(l->answers[0], "r1");
    assert_string_equal(l->answers[1], "r2");
    assert_int_equal(og_link_client_held(l->cli), 0);
}

/* A restarted server: credit is asked for again and everything unanswered is resent at
 * once, long before resend_us. */
static void test_reconnect_resends_at_once(void **state)
{
    struct link *l = *state;
    start(l, 3, 16, LONG_RESEND);
    connect_or_fail(l);
    assert_int_equal(send_key(l, "r1"), 0);
    assert_int_equal(send_key(l, "r2"), 0);
    assert_int_equal(send_key(l, "r3"), 0);
    assert_int_equal(send_key(l, "r4"), 0); /* beyond the credit: still queued */
    want_rx = 3;
    assert_true(pump(l, 2000, rx_reached, NULL));

    /* The server goes away with three frames unanswered, and comes back. */
    server_gone(l);
    server_again(l, 3);
    int64_t t0 = og_mono_us();
    want_rx = 3;
    /* libzmq's reconnect backoff reaches its 2 s cap while the server is away, so the
     * reconnect can take that long, longer on a loaded machine; what this test is about is
     * that it comes far sooner than the resend timeout. */
    if (!pump(l, LONG_RESEND / 2000, rx_reached, NULL))
        fail_msg("%lld ms after the server came back it had %zu of 3 frames (client: %llu "
                 "disconnects, %llu reconnects)%s",
                 (long long)(og_mono_us() - t0) / 1000, l->n_rx,
                 (unsigned long long)og_link_client_stats(l->cli)->disconnects,
                 (unsigned long long)og_link_client_stats(l->cli)->reconnects,
                 og_link_client_stats(l->cli)->reconnects
                     ? ""
                     : ": it did not take the new connection for a reconnect (a missed first "
                       "CONNECTED event of its socket monitor?)");
    const struct og_link_stats *st = og_link_client_stats(l->cli);
    assert_int_equal(st->reconnects, 1);
    assert_int_equal(st->resent, 3);
    assert_int_equal(st->sent, 3);
    /* The new server got the unanswered ones, r4 still waits for credit. */
    pump(l, 100, NULL, NULL);
    assert_int_equal(l->n_rx, 3);
    for (size_t i = 0; i < 3; i++)
        assert_true(strcmp(l->rx[i].f->key, "r4") != 0);

    /* Answers flow again, and r4 goes. */
    int64_t deadline = og_mono_us() + 10000000;
    while (l->n_answers < 4 && og_mono_us() < deadline) {
        for (size_t i = 0; i < l->n_rx; i++)
            if (!l->rx[i].answered)
                answer(l, i);
        pump(l, 20, NULL, NULL);
    }
    assert_int_equal(l->n_answers, 4);
    assert_int_equal(count_answers(l, "r1"), 1);
    assert_int_equal(count_answers(l, "r4"), 1);
    assert_int_equal(og_link_client_held(l->cli), 0);
}

/* HELLO names the newest frame the client holds; the server follows the client until that
 * one came, so a receiver knows when it has all a sender held as it came back (dispatch
 * scans for escalations only then). A sender whose HELLO is older than the bound given
 * is not followed any more. */
static void test_hello_names_what_is_held(void **state)
{
    struct link *l = *state;
    start(l, 2, 16, LONG_RESEND);
    /* Held before the server ever heard the client: three, with credit for two. */
    assert_int_equal(send_key(l, "h1"), 0);
    assert_int_equal(send_key(l, "h2"), 0);
    assert_int_equal(send_key(l, "h3"), 0);
    want_rx = 2;
    assert_true(pump(l, 5000, rx_reached, NULL));
    pump(l, 50, NULL, NULL);
    assert_int_equal(l->n_rx, 2);
    assert_true(og_link_server_stats(l->srv)->hellos >= 1);
    assert_int_equal(og_link_server_catching_up(l->srv, 60000000), 1);
    /* The third comes once one is answered: all the client held is in. */
    answer(l, 0);
    want_rx = 3;
    assert_true(pump(l, 5000, rx_reached, NULL));
    assert_string_equal(l->rx[2].f->key, "h3");
    assert_int_equal(og_link_server_catching_up(l->srv, 60000000), 0);
}

/* A sender that keeps resending (answers slow) is not caught up by its resends: only the
 * newest frame it held counts. */
static void test_resends_do_not_catch_up(void **state)
{
    struct link *l = *state;
    start(l, 1, 16, 20000); /* credit 1, resend after 20 ms */
    assert_int_equal(send_key(l, "r1"), 0);
    assert_int_equal(send_key(l, "r2"), 0);
    want_rx = 4; /* r1 and at least three resends of it */
    assert_true(pump(l, 5000, rx_reached, NULL));
    for (size_t i = 0; i < l->n_rx; i++)
        assert_string_equal(l->rx[i].f->key, "r1");
    assert_int_equal(og_link_server_catching_up(l->srv, 60000000), 1);
    /* Not followed past the bound: a sender that went away keeps nothing waiting. */
    assert_int_equal(og_link_server_catching_up(l->srv, 0), 0);
}

static void test_stray_answer(void **state)
{
    struct link *l = *state;
    start(l, 3, 16, LONG_RESEND);
    connect_or_fail(l);
    assert_int_equal(send_key(l, "real"), 0);
    want_rx = 1;
    assert_true(pump(l, 1000, rx_reached, NULL));
    assert_int_equal(answer_key(l, 0, "nope"), 0);
    pump(l, 200, NULL, NULL);
    assert_int_equal(l->n_answers, 0);
    assert_int_equal(og_link_client_stats(l->cli)->stray, 1);
    assert_int_equal(og_link_client_stats(l->cli)->answered, 0);
    assert_int_equal(og_link_client_held(l->cli), 1);
    answer(l, 0);
    want_answers = 1;
    assert_true(pump(l, 1000, answers_reached, NULL));
    assert_string_equal(l->answers[0], "real");
    assert_int_equal(og_link_client_stats(l->cli)->stray, 1);
}

static void count_answer(Onegrid__V1__Frame *a, void *arg)
{
    (*(int *)arg)++;
    onegrid__v1__frame__free_unpacked(a, NULL);
}

/* The server's one answer table: an answer goes to whoever sent its key last (a restarted
 * sender's resend), once; a key forgotten or answered has no sender any more. */
static void test_answer_table(void **state)
{
    struct link *l = *state;
    char err[256];
    int b_answers = 0;
    start(l, 8, 16, LONG_RESEND);
    connect_or_fail(l);
    struct og_link_client *b =
        og_link_client_new(l->ctx, l->endpoint, "second", 16, LONG_RESEND, NULL, err, sizeof(err));
    assert_non_null(b);
    assert_int_equal(send_key(l, "k"), 0);
    want_rx = 1;
    assert_true(pump(l, 2000, rx_reached, NULL));

    /* The same key from a second sender. */
    Onegrid__V1__Frame f = ONEGRID__V1__FRAME__INIT;
    Onegrid__V1__Submission sub = ONEGRID__V1__SUBMISSION__INIT;
    f.kind = ONEGRID__V1__FRAME__KIND__KIND_DATA;
    f.key = (char *)"k";
    f.submission = &sub;
    sub.publisher = (char *)"local";
    sub.source = (char *)"zongzhi";
    assert_int_equal(og_link_client_send(b, &f), 0);
    want_rx = 2;
    int64_t until = og_mono_us() + 5000000;
    while (l->n_rx < 2 && og_mono_us() < until) {
        og_link_client_tick(b);
        og_link_client_recv(b, count_answer, &b_answers);
        pump(l, 10, rx_reached, NULL);
    }
    assert_int_equal(l->n_rx, 2);

    Onegrid__V1__Frame a = ONEGRID__V1__FRAME__INIT;
    Onegrid__V1__Reply r = ONEGRID__V1__REPLY__INIT;
    Onegrid__V1__Ack ack = ONEGRID__V1__ACK__INIT;
    a.kind = ONEGRID__V1__FRAME__KIND__KIND_ANSWER;
    a.key = (char *)"k";
    a.reply = &r;
    r.result_case = ONEGRID__V1__REPLY__RESULT_ACK;
    r.ack = &ack;
    ack.outcome = ONEGRID__V1__ACK__OUTCOME__OUTCOME_STORED;
    assert_int_equal(og_link_server_reply(l->srv, &a), 0);
    assert_int_equal(og_link_server_reply(l->srv, &a), -ENOENT); /* answered once */
    until = og_mono_us() + 5000000;
    while (b_answers == 0 && og_mono_us() < until) {
        og_link_client_recv(b, count_answer, &b_answers);
        pump(l, 10, NULL, NULL);
    }
    assert_int_equal(b_answers, 1);
    pump(l, 100, NULL, NULL);
    assert_int_equal(l->n_answers, 0); /* not the first sender */

    assert_int_equal(send_key(l, "j"), 0);
    want_rx = 3;
    assert_true(pump(l, 2000, rx_reached, NULL));
    og_link_server_forget(l->srv, "j");
    a.key = (char *)"j";
    assert_int_equal(og_link_server_reply(l->srv, &a), -ENOENT);
    og_link_client_destroy(&b);
}

static void test_max_queue(void **state)
{
    struct link *l = *state;
    start(l, 2, 4, LONG_RESEND);
    assert_int_equal(og_link_client_room(l->cli), 4);
    assert_false(og_link_client_full(l->cli));
    for (int i = 0; i < 4; i++) {
        char key[8];
        snprintf(key, sizeof(key), "q%d", i);
        assert_int_equal(send_key(l, key), 0);
        assert_int_equal(og_link_client_room(l->cli), 3 - i);
    }
    assert_true(og_link_client_full(l->cli));
    assert_int_equal(send_key(l, "q4"), -ENOBUFS);
    assert_int_equal(send_key(l, "q0"), 1); /* a held key is still recognised */
    assert_int_equal(og_link_client_held(l->cli), 4);

    /* Sent frames count as held until answered: full stays full. */
    connect_or_fail(l);
    want_rx = 2;
    assert_true(pump(l, 1000, rx_reached, NULL));
    assert_true(og_link_client_full(l->cli));
    assert_int_equal(send_key(l, "q4"), -ENOBUFS);
    answer(l, 0);
    want_answers = 1;
    assert_true(pump(l, 1000, answers_reached, NULL));
    assert_false(og_link_client_full(l->cli));
    assert_int_equal(og_link_client_room(l->cli), 1);
    assert_int_equal(send_key(l, "q4"), 0);
    assert_int_equal(og_link_client_room(l->cli), 0);
    assert_int_equal(send_key(l, "q5"), -ENOBUFS);

    og_link_client_drop_all(l->cli);
    assert_int_equal(og_link_client_held(l->cli), 0);
    assert_int_equal(og_link_client_room(l->cli), 4);
    assert_false(og_link_client_full(l->cli));
}

static void test_server_bad_input(void **state)
{
    struct link *l = *state;
    char err[256];
    start(l, 3, 16, LONG_RESEND);
    connect_or_fail(l);

    /* A peer that sends garbage, and a DATA frame without a key. */
    void *raw = og_dealer_new(l->ctx, l->endpoint, err, sizeof(err));
    assert_non_null(raw);
    Onegrid__V1__Frame nokey = ONEGRID__V1__FRAME__INIT;
    nokey.kind = ONEGRID__V1__FRAME__KIND__KIND_DATA;
    size_t len;
    uint8_t *packed = og_pack(&nokey.base, &len);
    assert_non_null(packed);
    const void *p1[] = {"\xff\xff\xff"};
    const size_t s1[] = {3};
    const void *p2[] = {packed};
    const size_t s2[] = {len};
    int64_t deadline = og_mono_us() + 2000000;
    int sent = 0;
    while (sent < 2 && og_mono_us() < deadline) { /* IMMEDIATE: wait for the connection */
        if (sent == 0 && og_zsend(raw, p1, s1, 1) == 0)
            sent++;
        if (sent == 1 && og_zsend(raw, p2, s2, 1) == 0)
            sent++;
        usleep(2000);
    }
    free(packed);
    assert_int_equal(sent, 2);
    deadline = og_mono_us() + 2000000;
    while (og_link_server_stats(l->srv)->bad_frames < 2 && og_mono_us() < deadline)
        pump(l, 20, NULL, NULL);
    assert_int_equal(og_link_server_stats(l->srv)->bad_frames, 2);
    assert_int_equal(l->n_rx, 0);
    zmq_close(raw);

    /* An answer to a peer that is not there. */
    struct og_route nobody = {.len = 6};
    memcpy(nobody.id, "nobody", 6);
    Onegrid__V1__Frame a = ONEGRID__V1__FRAME__INIT;
    a.kind = ONEGRID__V1__FRAME__KIND__KIND_ANSWER;
    a.key = (char *)"x";
    assert_int_equal(og_link_server_answer(l->srv, &nobody, &a), -EHOSTUNREACH);
    assert_int_equal(og_link_server_stats(l->srv)->send_fail, 1);
}

static void test_new_errors(void **state)
{
    struct link *l = *state;
    char err[256] = "";
    assert_null(og_link_server_new(l->ctx, "nonsense://x", 1, err, sizeof(err)));
    assert_non_null(strstr(err, "nonsense://x"));
    err[0] = '\0';
    assert_null(og_link_client_new(l->ctx, "nonsense://y", "t", 1, 1, NULL, err, sizeof(err)));
    assert_non_null(strstr(err, "nonsense://y"));
    og_link_client_destroy(&l->cli); /* NULL is fine */
    og_link_server_destroy(&l->srv);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_handshake_grants_credit),
        T(test_data_arrives_with_key),
        T(test_credit_bounds_unanswered),
        T(test_same_key_twice),
        T(test_resend_after_timeout),
        T(test_resend_backs_off),
        T(test_reconnect_resends_at_once),
        T(test_reconnect_keeps_order),
        T(test_hello_names_what_is_held),
        T(test_resends_do_not_catch_up),
        T(test_stray_answer),
        T(test_answer_table),
        T(test_max_queue),
        T(test_server_bad_input),
        T(test_new_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
