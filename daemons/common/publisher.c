/* libonegrid's publisher (include/onegrid/publisher.h). */
#include "onegrid/publisher.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "onegrid/v1/event.pb-c.h"
#include "outbox.h"
#include "util.h"
#include "validate.h"
#include "window.h"
#include "zsock.h"

struct og_publisher {
    void *ctx, *sock;
    struct og_zmonitor *monitor; /* reconnects: what was in flight is resent at once */
    struct og_outbox *outbox;    /* NULL: memory only */
    struct og_publisher_opts o;
    struct og_window *window; /* every held event, as its packed Submit, by token */
    int recovery_failed;
    uint64_t resent, disconnects;
};

static void recovered(uint64_t token, const uint8_t *data, size_t len, void *arg);

struct og_publisher *og_publisher_new(const char *endpoint, const struct og_publisher_opts *o,
                                      char *err, size_t errlen)
{
    struct og_publisher *p = calloc(1, sizeof(*p));
    if (!p) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    if (o)
        p->o = *o;
    if (!p->o.window)
        p->o.window = 500;
    if (!p->o.resend_ms)
        p->o.resend_ms = 10000;
    if (!p->o.max_held)
        p->o.max_held = 100000;
    if (!p->o.max_outbox_bytes)
        p->o.max_outbox_bytes = 64u << 20;
    p->ctx = zmq_ctx_new();
    p->sock = p->ctx
                  ? og_dealer_new_curve(p->ctx, endpoint, p->o.curve_server_key,
                                        p->o.curve_public_key, p->o.curve_secret_key, err, errlen)
                  : NULL;
    if (!p->sock) {
        if (p->ctx)
            zmq_ctx_term(p->ctx);
        free(p);
        return NULL;
    }
    /* max_held is checked by og_publisher_send, not here: an outbox written with a higher
     * max_held is recovered whole, and drained. */
    p->window = og_window_new(SIZE_MAX, (int64_t)p->o.resend_ms * 1000);
    p->monitor = p->window ? og_zmonitor_new(p->ctx, p->sock, err, errlen) : NULL;
    if (!p->monitor) {
        if (!p->window)
            snprintf(err, errlen, "out of memory");
        og_publisher_destroy(&p);
        return NULL;
    }
    if (p->o.outbox_path) {
        struct og_outbox_stats st;
        p->outbox =
            og_outbox_open(p->o.outbox_path, p->o.max_outbox_bytes, recovered, p, &st, err, errlen);
        if (!p->outbox || p->recovery_failed) {
            if (p->outbox)
                snprintf(err, errlen, "out of memory recovering the outbox");
            og_publisher_destroy(&p);
            return NULL;
        }
        /* Damage is no reason to fail (the rest was recovered), but the caller must hear of
         * it, and the library does not log: a warning in err, which is "" otherwise. */
        if (st.corrupt_records > 0 && st.keep_error == 0)
            snprintf(err, errlen,
                     "outbox \"%s\": skipped %zu damaged record%s (%llu bytes); the original "
                     "file is kept as \"%s\"",
                     p->o.outbox_path, st.corrupt_records, st.corrupt_records == 1 ? "" : "s",
                     (unsigned long long)st.corrupt_bytes, st.kept_as);
        else if (st.corrupt_records > 0)
            snprintf(err, errlen,
                     "outbox \"%s\": skipped %zu damaged record%s (%llu bytes); the file is "
                     "left as it is (could not keep a copy and rewrite it: %s)",
                     p->o.outbox_path, st.corrupt_records, st.corrupt_records == 1 ? "" : "s",
                     (unsigned long long)st.corrupt_bytes, strerror(-st.keep_error));
        else if (errlen > 0)
            err[0] = '\0';
    }
    return p;
}

void og_publisher_destroy(struct og_publisher **pp)
{
    struct og_publisher *p = *pp;
    if (!p)
        return;
    og_window_destroy(&p->window);
    og_outbox_close(&p->outbox);
    og_zmonitor_destroy(&p->monitor, p->sock);
    zmq_close(p->sock);
    zmq_ctx_term(p->ctx);
    free(p);
    *pp = NULL;
}

static void token_key(uint64_t token, uint8_t key[8])
{
    for (int i = 0; i < 8; i++)
        key[i] = (uint8_t)(token >> (56 - 8 * i));
}

/* Queues an event in memory (it is already in the outbox, if there is one), packed once
 * as the Submit that carries it: its tag is the token. */
static int enqueue(struct og_publisher *p, uint64_t token, const void *envelope, size_t len)
{
    Onegrid__V1__Submit s = ONEGRID__V1__SUBMIT__INIT;
    uint8_t tag[8], *buf;
    size_t n;
    int rc;

    token_key(token, tag);
    s.tag.data = tag;
    s.tag.len = sizeof(tag);
    s.event.data = (uint8_t *)envelope;
    s.event.len = len;
    n = protobuf_c_message_get_packed_size(&s.base);
    if (!(buf = malloc(n ? n : 1)))
        return -ENOMEM;
    protobuf_c_message_pack(&s.base, buf);
    if ((rc = og_window_add(p->window, tag, sizeof(tag), buf, n)) != 0)
        free(buf);
    return rc == 1 ? -EEXIST : rc;
}

static void recovered(uint64_t token, const uint8_t *data, size_t len, void *arg)
{
    struct og_publisher *p = arg;
    if (enqueue(p, token, data, len) < 0)
        p->recovery_failed = 1;
}

int og_publisher_send(struct og_publisher *p, uint64_t token, const void *envelope, size_t len)
{
    uint8_t key[8];
    int rc;

    token_key(token, key);
    if (og_window_holds(p->window, key, sizeof(key)))
        return -EEXIST;
    if (og_window_held(p->window) >= p->o.max_held)
        return -ENOBUFS;
    if (p->outbox && (rc = og_outbox_add(p->outbox, token, envelope, len)) < 0)
        return rc;
    return enqueue(p, token, envelope, len);
}

static int send_submit(void *arg, const uint8_t *buf, size_t len, bool resend)
{
    struct og_publisher *p = arg;
    const void *parts[] = {buf};
    size_t sizes[] = {len};
    if (og_zsend(p->sock, parts, sizes, 1) < 0)
        return -EAGAIN;
    p->resent += resend;
    return 0;
}

static int pump(struct og_publisher *p)
{
    int rc;

    /* A reconnect lost whatever was in flight: all of it goes out again at once. */
    if (og_zmonitor_poll(p->monitor, &p->disconnects) > 0)
        og_window_requeue(p->window);
    /* An event leaves only once it is on disk: one fdatasync covers all queued so far. */
    if (og_window_queued(p->window) && og_window_inflight(p->window) < p->o.window && p->outbox &&
        (rc = og_outbox_sync(p->outbox)) < 0)
        return rc;
    og_window_pump(p->window, p->o.window, og_mono_us(), send_submit, p);
    return 0;
}

static int deliver(struct og_publisher *p, const struct og_zmsg *m, og_answer_fn fn, void *arg)
{
    Onegrid__V1__Reply *r;
    struct og_answer a = {0};
    uint64_t token = 0;

    if (m->n != 1)
        return 0; /* not an answer of this protocol */
    r = onegrid__v1__reply__unpack(NULL, m->size[0], m->data[0]);
    if (!r)
        return 0; /* keep the event; the resend will be answered again */
    if (r->tag.len != 8) {
        onegrid__v1__reply__free_unpacked(r, NULL); /* not about one of our events */
        return 0;
    }
    for (int i = 0; i < 8; i++)
        token = token << 8 | r->tag.data[i];
    a.token = token;
    a.event_id = r->event_id;
    a.source = r->source;
    a.case_id = "";
    a.reason_name = "";
    a.text = "";
    if (r->result_case == ONEGRID__V1__REPLY__RESULT_ACK) {
        a.outcome = r->ack->outcome == ONEGRID__V1__ACK__OUTCOME__OUTCOME_DUPLICATE
                        ? OG_OUTCOME_DUPLICATE
                        : OG_OUTCOME_STORED;
        a.case_id = r->ack->case_id;
    } else if (r->result_case == ONEGRID__V1__REPLY__RESULT_NACK &&
               r->nack->reason == ONEGRID__V1__REASON__REASON_BUSY) {
        /* Not an answer: intake holds as many of our Submits as it takes. The event stays
         * held and goes again when its resend time comes. */
        onegrid__v1__reply__free_unpacked(r, NULL);
        return 0;
    } else if (r->result_case == ONEGRID__V1__REPLY__RESULT_NACK) {
        a.outcome = OG_OUTCOME_REJECTED;
        a.reason = r->nack->reason;
        a.reason_name = og_reason_name(r->nack->reason);
        a.text = r->nack->text;
    } else {
        onegrid__v1__reply__free_unpacked(r, NULL);
        return 0;
    }
    if (og_window_answered(p->window, r->tag.data, 8) < 0) {
        /* not held (an answer to a copy already answered) or never sent */
        onegrid__v1__reply__free_unpacked(r, NULL);
        return 0;
    }
    /* If "done" cannot be written the event is sent again after a restart (same token:
     * answered "stored" again): nothing is lost, so the answer is delivered now. */
    if (p->outbox)
        og_outbox_done(p->outbox, token);
    fn(&a, arg);
    onegrid__v1__reply__free_unpacked(r, NULL);
    return 1;
}

int og_publisher_poll(struct og_publisher *p, int timeout_ms, og_answer_fn fn, void *arg)
{
    zmq_pollitem_t item = {p->sock, 0, ZMQ_POLLIN, 0};
    int64_t until = og_mono_us() + (int64_t)timeout_ms * 1000;
    int answers = 0;

    for (;;) {
        struct og_zmsg m;
        int64_t left_us;
        int rc = pump(p);
        if (rc < 0)
            return rc;
        while (og_zrecv(p->sock, &m) == 0) {
            answers += deliver(p, &m, fn, arg);
            og_zmsg_close(&m);
        }
        left_us = until - og_mono_us();
        if (answers > 0 || left_us <= 0 || og_window_held(p->window) == 0)
            return answers;
        /* Whole milliseconds, rounded up: rounded down, what was left of a short timeout
         * (1 ms, less a microsecond of work) was 0, and a caller polling with it spun. Wake
         * at least every 100 ms to resend what is late. */
        long left = (long)((left_us + 999) / 1000);
        if (zmq_poll(&item, 1, left < 100 ? left : 100) < 0 && errno != EINTR)
            return -errno;
    }
}

size_t og_publisher_held(const struct og_publisher *p)
{
    return og_window_held(p->window);
}

uint64_t og_publisher_resent(const struct og_publisher *p)
{
    return p->resent;
}
