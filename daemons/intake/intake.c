#include "intake.h"
#include "zap.h"

#include <errno.h>
#include <stdarg.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "daemon.h"
#include "log.h"
#include "metrics.h"
#include "util.h"
#include "validate.h"

#define BURST 256 /* publisher frames read per loop turn */

static Onegrid__V1__Timestamp *new_timestamp(int64_t us)
{
    Onegrid__V1__Timestamp *t = malloc(sizeof(*t));
    if (!t)
        return NULL;
    onegrid__v1__timestamp__init(t);
    t->seconds = us / 1000000;
    t->nanos = (int32_t)(us % 1000000) * 1000;
    return t;
}

/* A new DATA frame with an empty Submission, or NULL on ENOMEM. */
static Onegrid__V1__Frame *new_frame(const char *publisher, int64_t now_us)
{
    Onegrid__V1__Frame *f = calloc(1, sizeof(*f));
    Onegrid__V1__Submission *s = calloc(1, sizeof(*s));

    if (!f || !s) {
        free(f);
        free(s);
        return NULL;
    }
    onegrid__v1__frame__init(f);
    onegrid__v1__submission__init(s);
    f->kind = ONEGRID__V1__FRAME__KIND__KIND_DATA;
    f->submission = s;
    if (!(s->publisher = strdup(publisher)) || !(s->received = new_timestamp(now_us)))
        og_intake_frame_free(&f);
    return f;
}

/* Makes f a refusal of buf for v: who, why, and a bounded copy of the bytes. Its key is
 * the digest, so a resent refused frame is the same message all the way to the database.
 * Takes e (the decoded event, or NULL). 0 or -ENOMEM. */
static int fill_refusal(Onegrid__V1__Frame *f, const struct og_intake_opts *o,
                        const char *auth_source, Onegrid__V1__Envelope *e, const uint8_t *buf,
                        size_t len, const struct og_verdict *v)
{
    Onegrid__V1__Submission *s = f->submission;
    uint8_t digest[crypto_hash_sha256_BYTES];
    char hex[2 * crypto_hash_sha256_BYTES + 1], key[256];
    size_t keep = len < o->max_rejected_bytes ? len : o->max_rejected_bytes;
    Onegrid__V1__Nack *n;

    /* Refused for its meaning, not its bytes: decode it again so that the record names
     * the source and event id (bounded: they were not checked). */
    if (!e && len <= o->max_event_bytes &&
        og_validate_wire(&onegrid__v1__envelope__descriptor, buf, len, &(struct og_verdict){0}) ==
            0)
        e = onegrid__v1__envelope__unpack(NULL, len, buf);
    if (e && strlen(e->id) > 128) {
        onegrid__v1__envelope__free_unpacked(e, NULL);
        e = NULL;
    }
    /* A source too long to be one is not kept, but the id is: the publisher needs it in
     * the answer to know which event was refused. */
    s->event = e; /* the submission owns it from here, on every path */
    if (e && strlen(e->source) > 32) {
        char *none = strdup("");
        if (!none)
            return -ENOMEM;
        free(e->source);
        e->source = none;
    }
    n = s->rejection = calloc(1, sizeof(*n));
    if (!n)
        return -ENOMEM;
    onegrid__v1__nack__init(n);
    n->reason = v->reason;
    crypto_hash_sha256(digest, buf, len);
    snprintf(key, sizeof(key), "!%s\x1f%s", og_hex(digest, sizeof(digest), hex), s->publisher);
    s->raw.data = malloc(keep ? keep : 1);
    s->raw_sha256.data = malloc(sizeof(digest));
    if (!(n->text = strdup(v->text)) ||
        !(s->source = strdup(auth_source ? auth_source : (e ? e->source : ""))) ||
        !(f->key = strdup(key)) || !s->raw.data || !s->raw_sha256.data)
        return -ENOMEM;
    if (keep) /* an empty Submit's event is NULL (memcpy from NULL is undefined) */
        memcpy(s->raw.data, buf, keep);
    s->raw.len = keep;
    s->raw_size = (uint32_t)len;
    memcpy(s->raw_sha256.data, digest, sizeof(digest));
    s->raw_sha256.len = sizeof(digest);
    return 0;
}

Onegrid__V1__Frame *og_intake_frame(const struct og_intake_opts *o, const char *publisher,
                                    const char *auth_source, const uint8_t *buf, size_t len,
                                    int64_t now_us)
{
    struct og_limits lim = {o->max_event_bytes, now_us / 1000000, o->max_age, o->max_future,
                            auth_source != NULL};
    struct og_verdict v;
    Onegrid__V1__Frame *f = new_frame(publisher, now_us);
    Onegrid__V1__Envelope *e;
    char key[256];

    if (!f)
        return NULL;
    e = og_validate_envelope(buf, len, &lim, &v);
    if (e && auth_source && *e->source && strcmp(e->source, auth_source) != 0) {
        v.reason = ONEGRID__V1__REASON__REASON_UNAUTHORISED_SOURCE;
        snprintf(v.text, sizeof(v.text),
                 "source: \"%s\" is not the source this publisher is registered for (\"%s\")",
                 e->source, auth_source);
    }
    if (e && v.reason == ONEGRID__V1__REASON__REASON_UNSPECIFIED) {
        const char *src = auth_source ? auth_source : e->source;
        Onegrid__V1__Submission *s = f->submission;
        s->event = e;
        /* The digest and size of the exact bytes received: should dispatch refuse the event,
         * its record names these, not those of a re-encoding (once per publisher, bytes and
         * reason). */
        s->raw_size = (uint32_t)len;
        if (og_event_key(src, e->id, key, sizeof(key)) || !(s->source = strdup(src)) ||
            !(f->key = strdup(key)) || !(s->raw_sha256.data = malloc(crypto_hash_sha256_BYTES))) {
            og_intake_frame_free(&f);
            return NULL;
        }
        crypto_hash_sha256(s->raw_sha256.data, buf ? buf : (const uint8_t *)"", len);
        s->raw_sha256.len = crypto_hash_sha256_BYTES;
        return f;
    }
    if (fill_refusal(f, o, auth_source, e, buf, len, &v) < 0)
        og_intake_frame_free(&f);
    return f;
}

Onegrid__V1__Frame *og_intake_refusal(const struct og_intake_opts *o, const char *publisher,
                                      const uint8_t *buf, size_t len, Onegrid__V1__Reason reason,
                                      const char *text, int64_t now_us)
{
    struct og_verdict v = {.reason = reason};
    Onegrid__V1__Frame *f = new_frame(publisher, now_us);

    snprintf(v.text, sizeof(v.text), "%s", text);
    /* Not an Envelope at all (a broken Submit): no event to decode from these bytes. */
    struct og_intake_opts no_decode = *o;
    no_decode.max_event_bytes = 0;
    if (f && fill_refusal(f, &no_decode, NULL, NULL, buf, len, &v) < 0)
        og_intake_frame_free(&f);
    return f;
}

/* True for an address a tcp:// bind reaches from this host only: 127.0.0.0/8, ::1, or
 * the loopback interface by name. Anything else (*, 0.0.0.0, an interface, another
 * address) may be reachable from the network. */
static bool loopback_host(const char *host, size_t len)
{
    char h[64];
    if (len >= sizeof(h))
        return false;
    memcpy(h, host, len);
    h[len] = '\0';
    if (strcmp(h, "lo") == 0 || strcmp(h, "[::1]") == 0 || strcmp(h, "::1") == 0)
        return true;
    if (strncmp(h, "[::ffff:", 8) == 0 && h[len - 1] == ']') { /* an IPv4-mapped address */
        h[len - 1] = '\0';
        memmove(h, h + 8, len - 8);
    }
    unsigned a, b, c, d;
    char end;
    return sscanf(h, "%u.%u.%u.%u%c", &a, &b, &c, &d, &end) == 4 && a == 127 && b < 256 &&
           c < 256 && d < 256;
}

int og_intake_check_listen(const char *listen, bool curve, bool allow_unauthenticated, char *err,
                           size_t errlen)
{
    char *list = strdup(listen ? listen : ""), *save = NULL;
    int n = 0, rc = 0;

    if (!list) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    for (char *ep = strtok_r(list, ", ", &save); ep && rc == 0; ep = strtok_r(NULL, ", ", &save)) {
        n++;
        if (strncmp(ep, "ipc://", 6) == 0 || strncmp(ep, "inproc://", 9) == 0 || curve ||
            allow_unauthenticated)
            continue;
        const char *host = strncmp(ep, "tcp://", 6) == 0 ? ep + 6 : NULL;
        const char *colon = host ? strrchr(host, ':') : NULL;
        if (host && colon && loopback_host(host, (size_t)(colon - host)))
            continue;
        snprintf(err, errlen,
                 "[intake] listen: \"%s\" may be reached from the network, and publishers do not "
                 "authenticate: anyone could publish as any source system. Set "
                 "curve_secret_key_file and curve_publishers_file, listen on a loopback address "
                 "or ipc:// only, or write allow_unauthenticated = yes",
                 ep);
        rc = -EPERM;
    }
    free(list);
    if (rc == 0 && n == 0) {
        snprintf(err, errlen, "[intake] listen: no endpoint; publishers could not connect");
        rc = -EINVAL;
    }
    return rc;
}

void og_intake_frame_free(Onegrid__V1__Frame **f)
{
    if (*f)
        onegrid__v1__frame__free_unpacked(*f, NULL);
    *f = NULL;
}

/* The engine ---------------------------------------------------------------------------- */

/* Entries of the waiters' table: (connection, tag) pairs waiting for an answer. Far above
 * what publishers running as documented need (a window of distinct events, each waited on
 * by a connection or two); about 100 bytes each. When it is full intake stops reading
 * publishers, as it does when the link to dispatch is full, rather than leave a Submit
 * unanswered. */
#define MAX_WAITERS 100000

/* What intake counts for Prometheus (docs/operating.md, "Metrics"). */
struct intake_metrics {
    struct og_metric *received, *busy, *unroutable, *stored, *duplicate;
    struct og_metric *rejected[OG_METRICS_REASONS]; /* answers: refused, by reason */
    struct og_metric *refused[OG_METRICS_REASONS];  /* refused by intake itself */
    struct og_metric *waiting, *connections, *handshakes_failed, *dropped;
    struct og_metric *answer_seconds;
    struct og_metrics_link link;
};

static void metrics_init(struct intake_metrics *m)
{
    const char *answers = "onegrid_intake_answers_total";
    const char *help = "Answers sent to publishers, by outcome (and reason, for rejected)";
    m->received =
        og_metrics_counter("onegrid_intake_received_total", NULL, "Submits read from publishers");
    m->stored = og_metrics_counter(answers, "outcome=\"stored\"", help);
    m->duplicate = og_metrics_counter(answers, "outcome=\"duplicate\"", help);
    og_metrics_by_reason(m->rejected, answers, "outcome=\"rejected\"", help);
    m->busy = og_metrics_counter("onegrid_intake_busy_total", NULL,
                                 "Submits answered REASON_BUSY (not recorded: sent again later)");
    m->unroutable = og_metrics_counter("onegrid_intake_unroutable_total", NULL,
                                       "Answers not delivered: the publisher was gone");
    og_metrics_by_reason(m->refused, "onegrid_intake_refused_total", NULL,
                         "Events intake itself refused (before dispatch), by reason");
    m->waiting = og_metrics_gauge("onegrid_intake_waiting_submits", NULL,
                                  "Submits waiting for their answer");
    m->connections =
        og_metrics_gauge("onegrid_intake_connections", NULL, "Publisher connections open");
    m->handshakes_failed = og_metrics_counter("onegrid_intake_handshakes_failed_total", NULL,
                                              "Publisher handshakes that failed (CURVE, ZAP)");
    m->dropped = og_metrics_counter("onegrid_intake_connections_dropped_total", NULL,
                                    "Publisher connections intake ended (too many, holding too "
                                    "much)");
    /* What a publisher waits for its answer, as intake sees it: the pipeline's latency
     * (dispatch, archive's batch and commit), the one figure an operator promises. */
    static const double seconds[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                     0.1,   0.25,   0.5,   1,    2.5,   10};
    m->answer_seconds = og_metrics_histogram(
        "onegrid_intake_answer_seconds", NULL,
        "Time from a Submit passed on to dispatch to its answer (identical copies: from the "
        "first)",
        seconds, sizeof(seconds) / sizeof(*seconds));
    og_metrics_link_client_init(&m->link, "dispatch");
}

/* The publisher behind one Submit: its routing id and the Submit's tag. */
struct waiter {
    const uint8_t *route;
    size_t route_len;
    uint8_t tag[OG_MAX_TAG];
    size_t tag_len;
};

struct og_intake {
    struct og_intake_opts opts;
    struct og_zap *zap;     /* CURVE publishers' keys, or NULL */
    struct og_peers *peers; /* the publishers' connections, or NULL */
    void *pub;
    struct og_link_client *dispatch;
    struct og_waiters *waiters;
    bool waiters_full; /* said so in the log; says so again when it is over */
    bool bytes_full;   /* likewise for the bytes in flight */
    struct og_ratelimit *said;
    uint64_t received, answered, unroutable, busy;
    struct intake_metrics m;
};

struct og_intake *og_intake_new(const struct og_intake_opts *o, void *publishers,
                                struct og_zap *zap, struct og_peers *peers,
                                struct og_link_client *dispatch)
{
    struct og_intake *in = calloc(1, sizeof(*in));
    if (!in || !(in->waiters = og_waiters_new(MAX_WAITERS, o->max_unanswered)) ||
        !(in->said = og_ratelimit_new(4096, 30, 60000000))) {
        if (in)
            og_waiters_destroy(&in->waiters);
        free(in);
        return NULL;
    }
    in->opts = *o;
    in->zap = zap;
    in->peers = peers;
    in->pub = publishers;
    in->dispatch = dispatch;
    metrics_init(&in->m);
    return in;
}

/* The gauges, and the counters kept elsewhere: once a loop turn. */
static void metrics_update(struct og_intake *in)
{
    const struct og_peers_stats *ps = in->peers ? og_peers_stats(in->peers) : NULL;
    og_metrics_loop();
    og_metrics_counter_set(in->m.received, in->received);
    og_metrics_counter_set(in->m.busy, in->busy);
    og_metrics_counter_set(in->m.unroutable, in->unroutable);
    og_metrics_set(in->m.waiting, (int64_t)og_waiters_submits(in->waiters));
    if (ps) {
        og_metrics_set(in->m.connections, (int64_t)ps->connections);
        og_metrics_counter_set(in->m.handshakes_failed, ps->refused);
        og_metrics_counter_set(in->m.dropped, ps->dropped);
    }
    og_metrics_link_client_update(&in->m.link, in->dispatch);
}

void og_intake_destroy(struct og_intake **inp)
{
    struct og_intake *in = *inp;
    if (!in)
        return;
    og_waiters_destroy(&in->waiters);
    og_ratelimit_destroy(&in->said);
    free(in);
    *inp = NULL;
}

/* Logs a line that quotes what a publisher sent (event ids, sources, the texts made of
 * them): control characters and invalid UTF-8 are made harmless, so that a publisher
 * cannot forge log lines; the 0x1F inside a key still shows as '/'. */
static void say(int prio, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(int prio, const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    og_safe_vformat(line, sizeof(line), fmt, ap);
    va_end(ap);
    og_log(prio, "%s", line);
}

/* key with its unit separator shown as '/', as og_log shows it. */
static const char *shown_key(const char *key, char *buf, size_t size)
{
    snprintf(buf, size, "%s", key);
    for (char *c = buf; *c; c++)
        if (*c == '\x1f')
            *c = '/';
    return buf;
}

/* Sends r to the publisher at route with tag. 0, or -errno (-EHOSTUNREACH: gone). */
static int reply_to(struct og_intake *in, const struct og_waiter *w, Onegrid__V1__Reply *r)
{
    size_t len;
    uint8_t *buf;
    int rc;

    r->tag.data = (uint8_t *)w->tag;
    r->tag.len = w->tag_len;
    buf = og_pack(&r->base, &len);
    r->tag.data = NULL;
    r->tag.len = 0;
    if (!buf)
        return -ENOMEM;
    const void *parts[] = {w->route, buf};
    size_t sizes[] = {w->route_len, len};
    rc = og_zsend(in->pub, parts, sizes, 2);
    free(buf);
    return rc;
}

struct answering {
    struct og_intake *in;
    Onegrid__V1__Reply *reply;
    Onegrid__V1__Ack__Outcome outcome; /* the answer for the Submit that was forwarded */
    uint8_t tag[OG_MAX_TAG];           /* that Submit's tag */
    size_t tag_len;
    int64_t now_us; /* og_mono_us() as the answer came */
};

/* Answers each Submit an entry holds. The first Submit of an event is the one forwarded;
 * a resend of it (the same tag: the same Submit again, from its connection or, after a
 * reconnect, from a new one) gets the same answer; any other copy that arrived while it
 * was in flight is, to its sender, a duplicate. */
static void answer_waiter(const struct og_waiter *w, bool first, void *arg)
{
    struct answering *a = arg;
    Onegrid__V1__Reply *r = a->reply;
    bool ack = r->result_case == ONEGRID__V1__REPLY__RESULT_ACK;

    if (first && ack) {
        a->outcome = r->ack->outcome;
        a->tag_len = w->tag_len <= sizeof(a->tag) ? w->tag_len : 0;
        if (a->tag_len)
            memcpy(a->tag, w->tag, a->tag_len);
    }
    bool resend = w->tag_len && w->tag_len == a->tag_len && memcmp(w->tag, a->tag, a->tag_len) == 0;
    for (uint32_t i = 0; i < w->copies; i++) {
        if (ack)
            r->ack->outcome = (first && i == 0) || resend
                                  ? a->outcome
                                  : ONEGRID__V1__ACK__OUTCOME__OUTCOME_DUPLICATE;
        int rc = reply_to(a->in, w, r);
        if (rc < 0) {
            /* The publisher went away (or its queue is full): the other copies would
             * fail alike. It keeps the event and resends it, and is answered then. */
            a->in->unroutable += w->copies - i;
            og_debug("%u replies to a publisher not delivered: %s", (unsigned)(w->copies - i),
                     rc == -ENOMEM ? "out of memory" : zmq_strerror(-rc));
            return;
        }
        a->in->answered++;
        if (w->since_us)
            og_metrics_observe(a->in->m.answer_seconds, (double)(a->now_us - w->since_us) / 1e6);
        og_metrics_inc(!ack ? og_metrics_reason(a->in->m.rejected, r->nack->reason)
                       : r->ack->outcome == ONEGRID__V1__ACK__OUTCOME__OUTCOME_STORED
                           ? a->in->m.stored
                           : a->in->m.duplicate);
    }
}

static void on_answer(Onegrid__V1__Frame *f, void *arg)
{
    struct og_intake *in = arg;
    struct answering a = {.in = in, .reply = f->reply, .now_us = og_mono_us()};

    if (f->reply) {
        og_waiters_take(in->waiters, f->key, answer_waiter, &a);
    } else {
        /* Nothing to answer with: forget the Submits; their publishers resend them. */
        char key[300];
        size_t n = og_waiters_take(in->waiters, f->key, NULL, NULL);
        say(LOG_WARNING, "dispatch answered \"%s\" without a reply; %zu publishers will resend it",
            shown_key(f->key, key, sizeof(key)), n);
    }
    onegrid__v1__frame__free_unpacked(f, NULL);
}

/* Answers the Submit REASON_BUSY with text (not recorded: the publisher sends it again). */
static void reply_busy(struct og_intake *in, const struct waiter *wt, const char *text)
{
    Onegrid__V1__Reply r = ONEGRID__V1__REPLY__INIT;
    Onegrid__V1__Nack n = ONEGRID__V1__NACK__INIT;
    struct og_waiter w = {wt->route, wt->route_len, wt->tag, wt->tag_len, 1, 0};

    n.reason = ONEGRID__V1__REASON__REASON_BUSY;
    n.text = (char *)text;
    r.result_case = ONEGRID__V1__REPLY__RESULT_NACK;
    r.nack = &n;
    in->busy++;
    if (reply_to(in, &w, &r) < 0)
        in->unroutable++;
}

/* Answers a Submit that would take its connection over max_unanswered: not a refusal (it
 * goes nowhere and is not recorded), a request to slow down and send it again. */
static void answer_busy(struct og_intake *in, const struct waiter *wt)
{
    char text[160], route[2 * 16 + 1];
    uint64_t repeats, dropped;

    snprintf(text, sizeof(text),
             "intake holds %zu Submits of this connection unanswered, the most it takes: wait "
             "for answers, then send this again",
             in->opts.max_unanswered);
    reply_busy(in, wt, text);
    og_hex(wt->route, wt->route_len < 16 ? wt->route_len : 16, route);
    if (og_ratelimit_allow(in->said, route, og_mono_us(), &repeats, &dropped))
        og_notice("a publisher connection (routing id %s...) has %zu Submits unanswered: "
                  "answering more REASON_BUSY (%llu times since the last such line)",
                  route, in->opts.max_unanswered, (unsigned long long)(repeats + 1));
}

/* Passes f on to dispatch and remembers who waits for its answer; frees f. */
static void submit(struct og_intake *in, Onegrid__V1__Frame *f, const struct waiter *wt)
{
    int rc;
    if (!f) {
        og_err("out of memory handling an event; the publisher will resend it");
        return;
    }
    rc = og_waiters_room(in->waiters, f->key, wt->route, wt->route_len, wt->tag, wt->tag_len);
    if (rc == -EDQUOT) {
        answer_busy(in, wt);
        og_intake_frame_free(&f);
        return;
    }
    if (f->submission->rejection)
        og_metrics_inc(og_metrics_reason(in->m.refused, f->submission->rejection->reason));
    if (f->submission->rejection) {
        /* Named by its key (source and id) when it has one, else by its digest, which is
         * what og.rejection records of it. */
        const Onegrid__V1__Submission *sub = f->submission;
        char hex[17] = "";
        if (sub->raw_sha256.len >= 8)
            og_hex(sub->raw_sha256.data, 8, hex);
        if (sub->event && *sub->event->id)
            say(LOG_INFO, "refusing event \"%s\" of source \"%s\" from %s: %s: %s", sub->event->id,
                sub->source, sub->publisher, og_reason_name(sub->rejection->reason),
                sub->rejection->text);
        else
            say(LOG_INFO, "refusing an event without an id (sha256 %s...) from %s: %s: %s", hex,
                sub->publisher, og_reason_name(sub->rejection->reason), sub->rejection->text);
    }
    /* Already held (1): a copy of an event in flight, answered with the first; but another
     * event under the same source and id (other bytes: a corrected one, say) is not that
     * event, and its answer would not be its own: it waits until the first is answered. */
    const ProtobufCBinaryData *digest = &f->submission->raw_sha256;
    bool known = digest->len == 32;
    if (rc == 0)
        rc = og_link_client_send(in->dispatch, f);
    if (rc == 1 && known && og_waiters_differs(in->waiters, f->key, digest->data)) {
        reply_busy(in, wt,
                   "another event with this source and id, with other content, is being decided: "
                   "wait for its answer, then send this again");
        og_intake_frame_free(&f);
        return;
    }
    bool forwarded = rc == 0;
    if (rc >= 0)
        rc = og_waiters_add(in->waiters, f->key, wt->route, wt->route_len, wt->tag, wt->tag_len,
                            rc == 1 ? 0 : protobuf_c_message_get_packed_size(&f->base));
    if (rc >= 0 && forwarded && known)
        og_waiters_set_digest(in->waiters, f->key, digest->data);
    if (rc < 0)
        og_warn("could not pass an event on (%s); the publisher will resend it", strerror(-rc));
    og_intake_frame_free(&f);
}

static void handle_publisher(struct og_intake *in, struct og_zmsg *m)
{
    struct waiter wt = {0};
    Onegrid__V1__Frame *f;

    if (m->n < 1 || m->size[0] > OG_MAX_ROUTE)
        return;
    wt.route = m->data[0];
    wt.route_len = m->size[0];
    in->received++;
    /* With CURVE the ZAP handler let the publisher in under its name, which fixes the
     * source system its events may claim; without, every publisher is "local". */
    const char *publisher = "local", *auth_source = NULL;
    if (in->zap) {
        auth_source = og_zap_source(in->zap, m->user_id);
        if (!auth_source) { /* cannot happen: ZAP let in only listed keys */
            say(LOG_ERR, "a CURVE publisher without a known name (\"%s\"): ignored", m->user_id);
            return;
        }
        publisher = m->user_id;
    }
    /* The wrapper first: one frame, a Submit with a short tag, nothing unknown in it.
     * A broken one is refused like a broken event (recorded, answered), with an empty
     * tag since none could be read. */
    if (m->n != 2 || m->truncated) {
        char text[96];
        snprintf(text, sizeof(text), "a message must be one frame holding one Submit, not %zu%s",
                 m->n - 1, m->truncated ? " or more" : "");
        submit(in,
               og_intake_refusal(&in->opts, publisher, m->n > 1 ? m->data[1] : (const uint8_t *)"",
                                 m->n > 1 ? m->size[1] : 0, ONEGRID__V1__REASON__REASON_UNDECODABLE,
                                 text, og_now_us()),
               &wt);
        return;
    }
    f = og_intake_submit(&in->opts, publisher, auth_source, m->data[1], m->size[1], og_now_us(),
                         wt.tag, &wt.tag_len);
    submit(in, f, &wt);
}

Onegrid__V1__Frame *og_intake_submit(const struct og_intake_opts *o, const char *publisher,
                                     const char *auth_source, const uint8_t *buf, size_t len,
                                     int64_t now_us, uint8_t tag[OG_MAX_TAG], size_t *tag_len)
{
    struct og_verdict v = {0};
    Onegrid__V1__Submit *sub = NULL;
    Onegrid__V1__Frame *f;

    *tag_len = 0;
    if (og_validate_wire(&onegrid__v1__submit__descriptor, buf, len, &v) < 0 ||
        !(sub = onegrid__v1__submit__unpack(NULL, len, buf)) || sub->tag.len > OG_MAX_TAG) {
        const char *text = sub ? "Submit.tag: longer than 64 bytes"
                               : (*v.text ? v.text : "not a valid onegrid.v1.Submit");
        Onegrid__V1__Reason reason =
            v.reason && !sub ? v.reason : ONEGRID__V1__REASON__REASON_UNDECODABLE;
        if (sub)
            onegrid__v1__submit__free_unpacked(sub, NULL);
        return og_intake_refusal(o, publisher, buf, len, reason, text, now_us);
    }
    if (sub->tag.len) /* an empty tag's data is NULL */
        memcpy(tag, sub->tag.data, sub->tag.len);
    *tag_len = sub->tag.len;
    f = og_intake_frame(o, publisher, auth_source, sub->event.data, sub->event.len, now_us);
    /* The publisher's tag goes with the event: a resend of this Submit carries it again. */
    if (f && sub->tag.len && (f->submission->tag.data = malloc(sub->tag.len))) {
        memcpy(f->submission->tag.data, sub->tag.data, sub->tag.len);
        f->submission->tag.len = sub->tag.len;
    }
    onegrid__v1__submit__free_unpacked(sub, NULL);
    return f;
}

/* True while intake takes no more from publishers. Each publisher frame adds at most one
 * held frame and one waiters' entry, so checking before each read keeps both in bounds. */
static bool busy(struct og_intake *in)
{
    bool full = og_waiters_full(in->waiters);
    bool bytes_full = og_waiters_bytes(in->waiters) >= in->opts.max_inflight_bytes;
    if (full != in->waiters_full) {
        if (full)
            og_warn("%zu Submits await their answers, from %zu publisher connections and tags, "
                    "the most intake keeps: publishers wait until answers come",
                    og_waiters_submits(in->waiters), og_waiters_entries(in->waiters));
        else
            og_notice("answers came: reading publishers again");
        in->waiters_full = full;
    }
    if (bytes_full != in->bytes_full) {
        /* Large events: their bytes, not their number, bound what intake holds. */
        if (bytes_full)
            og_notice("%zu bytes of events await their answers, the most intake holds: "
                      "publishers wait until answers come",
                      og_waiters_bytes(in->waiters));
        in->bytes_full = bytes_full;
    }
    return full || bytes_full || og_link_client_full(in->dispatch);
}

int og_intake_run(struct og_intake *in, int drain_ms)
{
    int64_t drain_until = 0, last_status = 0;
    struct og_daemon_hop hop = {.name = "dispatch", .setting = "[intake] dispatch"};

    for (;;) {
        zmq_pollitem_t items[4] = {
            {og_link_client_socket(in->dispatch), 0, ZMQ_POLLIN, 0},
            {in->zap ? og_zap_socket(in->zap) : NULL, 0, in->zap ? ZMQ_POLLIN : 0, 0},
            {in->peers ? og_peers_socket(in->peers) : NULL, 0, in->peers ? ZMQ_POLLIN : 0, 0},
            {in->pub, 0, ZMQ_POLLIN, 0},
        };
        /* Backpressure: while the link to dispatch holds all it may, or the waiters'
         * table does, publishers wait in their own queues (and then TCP) instead of in
         * our memory. Handshakes (ZAP) and the watch on connections go on meanwhile. */
        int npoll = drain_until || busy(in) ? 3 : 4;
        int64_t now;

        /* Woken often enough to see a connection that holds too much (peers.c): a
         * message that never ends grows at the speed of the network; every 2 ms once
         * resident memory is past half of max_memory_mb. */
        int wait_ms = !in->peers ? 100 : og_peers_pressed(in->peers) ? 2 : 20;
        if (zmq_poll(items, npoll, wait_ms) < 0 && errno != EINTR) {
            og_err("zmq_poll: %s", zmq_strerror(errno));
            return -errno;
        }
        og_daemon_watchdog();
        og_link_client_recv(in->dispatch, on_answer, in);
        og_daemon_watch_hop(&hop, in->dispatch);
        if (in->zap && (items[1].revents & ZMQ_POLLIN))
            og_zap_handle(in->zap, og_mono_us());
        if (in->peers)
            og_peers_events(in->peers, og_mono_us());
        if (npoll == 4 && (items[3].revents & ZMQ_POLLIN)) {
            struct og_zmsg m;
            for (int i = 0; i < BURST && !busy(in); i++) {
                if (og_zrecv(in->pub, &m) < 0)
                    break;
                if (in->peers)
                    og_peers_read(in->peers, m.fd, m.parts - 1, m.bytes - m.size[0], og_mono_us());
                handle_publisher(in, &m);
                og_zmsg_close(&m);
            }
        }
        if (in->peers)
            og_peers_check(in->peers, og_mono_us(),
                           og_waiters_bytes(in->waiters) + og_waiters_entries(in->waiters) * 256);
        og_link_client_tick(in->dispatch);
        metrics_update(in);

        if (og_reload_requested) {
            og_reload_requested = 0;
            og_daemon_reloading();
            og_notice("reload requested: %s has nothing to reload; restart it to apply a "
                      "changed configuration",
                      "onegrid-intake");
            og_daemon_reloaded();
        }
        now = og_mono_us();
        if (og_stop_requested && !drain_until) {
            og_daemon_stopping();
            og_notice("stopping: %zu events in flight, waiting up to %d ms for their answers",
                      og_link_client_held(in->dispatch), drain_ms);
            drain_until = now + (int64_t)drain_ms * 1000;
        }
        if (drain_until && (og_link_client_held(in->dispatch) == 0 || now >= drain_until)) {
            size_t left = og_link_client_held(in->dispatch);
            if (left)
                og_warn("stopped with %zu events unanswered; their publishers will resend them",
                        left);
            og_notice("stopped: received %llu events, answered %llu, %llu answers undeliverable",
                      (unsigned long long)in->received, (unsigned long long)in->answered,
                      (unsigned long long)in->unroutable);
            return 0;
        }
        if (now - last_status > 5000000) {
            const struct og_link_stats *st = og_link_client_stats(in->dispatch);
            const struct og_peers_stats *ps = in->peers ? og_peers_stats(in->peers) : NULL;
            og_daemon_status("received %llu, answered %llu, in flight %zu, awaiting answers "
                             "%zu, resent %llu, busy %llu, connections %zu, refused %llu, "
                             "dropped %llu",
                             (unsigned long long)in->received, (unsigned long long)in->answered,
                             og_link_client_held(in->dispatch), og_waiters_submits(in->waiters),
                             (unsigned long long)st->resent, (unsigned long long)in->busy,
                             ps ? ps->connections : 0, (unsigned long long)(ps ? ps->refused : 0),
                             (unsigned long long)(ps ? ps->dropped : 0));
            last_status = now;
        }
    }
}
