#include "link.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uthash.h>
#include <zmq.h>

#include "util.h"
#include "window.h"
#include "zap.h"

/* Frames are small (an event is at most max_event_bytes); this bounds what a link will
 * accept from a peer so a broken one cannot make us allocate without limit. */
#define MAX_FRAME OG_LINK_MAX_FRAME

uint8_t *og_pack(const ProtobufCMessage *m, size_t *len)
{
    size_t n = protobuf_c_message_get_packed_size(m);
    uint8_t *buf = malloc(n ? n : 1);
    if (!buf)
        return NULL;
    *len = protobuf_c_message_pack(m, buf);
    return buf;
}

static int send_frame(void *sock, const struct og_route *to, const Onegrid__V1__Frame *f)
{
    size_t len;
    uint8_t *buf = og_pack(&f->base, &len);
    int rc;
    if (!buf)
        return -ENOMEM;
    if (to) {
        const void *parts[] = {to->id, buf};
        size_t sizes[] = {to->len, len};
        rc = og_zsend(sock, parts, sizes, 2);
    } else {
        const void *parts[] = {buf};
        size_t sizes[] = {len};
        rc = og_zsend(sock, parts, sizes, 1);
    }
    free(buf);
    return rc;
}

/* Client ----------------------------------------------------------------------------- */

struct og_link_client {
    void *sock;
    struct og_zmonitor *monitor; /* connects and disconnects of the DEALER */
    char *name;
    struct og_window *window; /* every held frame: queued and unanswered */
    size_t max_queue;
    uint32_t credit;
    int64_t resend_us, hello_at;
    int64_t heard_at;   /* the last frame from the server */
    int64_t busy_since; /* since when something has been held (0: nothing is) */
    struct og_link_stats stats;
};

struct og_link_client *og_link_client_new(void *ctx, const char *endpoint, const char *name,
                                          size_t max_queue, int64_t resend_us,
                                          const struct og_link_keys *keys, char *err, size_t errlen)
{
    struct og_link_client *c = calloc(1, sizeof(*c));
    if (!c || !(c->name = strdup(name)) || !(c->window = og_window_new(max_queue, resend_us))) {
        snprintf(err, errlen, "out of memory");
        if (c)
            free(c->name);
        free(c);
        return NULL;
    }
    bool curve = keys && og_link_keys_client(keys);
    c->sock = og_dealer_new_curve(ctx, endpoint, curve ? keys->server_public : NULL,
                                  curve ? keys->public_key : NULL, curve ? keys->secret : NULL, err,
                                  errlen);
    /* Reconnects are how a restarted peer shows itself: whatever was in flight to the
     * old one is lost with it, so it is resent at once instead of after a timeout. */
    if (!c->sock || !(c->monitor = og_zmonitor_new(ctx, c->sock, err, errlen))) {
        og_link_client_destroy(&c);
        return NULL;
    }
    c->max_queue = max_queue;
    c->resend_us = resend_us;
    return c;
}

int64_t og_link_client_silent_us(const struct og_link_client *c, int64_t now)
{
    if (!c->busy_since || og_window_held(c->window) == 0)
        return 0;
    int64_t since = c->heard_at > c->busy_since ? c->heard_at : c->busy_since;
    return now > since ? now - since : 0;
}

int64_t og_link_client_resend_us(const struct og_link_client *c)
{
    return c->resend_us;
}

void og_link_client_drop_all(struct og_link_client *c)
{
    og_window_clear(c->window);
}

void og_link_client_destroy(struct og_link_client **cp)
{
    struct og_link_client *c = *cp;
    if (!c)
        return;
    og_zmonitor_destroy(&c->monitor, c->sock);
    if (c->sock)
        zmq_close(c->sock);
    og_window_destroy(&c->window);
    free(c->name);
    free(c);
    *cp = NULL;
}

void *og_link_client_socket(struct og_link_client *c)
{
    return c->sock;
}

size_t og_link_client_held(const struct og_link_client *c)
{
    return og_window_held(c->window);
}

bool og_link_client_full(const struct og_link_client *c)
{
    return og_window_held(c->window) >= c->max_queue;
}

size_t og_link_client_room(const struct og_link_client *c)
{
    size_t held = og_window_held(c->window);
    return held < c->max_queue ? c->max_queue - held : 0;
}

bool og_link_client_connected(const struct og_link_client *c)
{
    return c->credit > 0;
}

const struct og_link_stats *og_link_client_stats(const struct og_link_client *c)
{
    return &c->stats;
}

size_t og_link_client_inflight(const struct og_link_client *c)
{
    return og_window_inflight(c->window);
}

uint32_t og_link_client_credit(const struct og_link_client *c)
{
    return c->credit;
}

int og_link_client_send(struct og_link_client *c, const Onegrid__V1__Frame *f)
{
    size_t len;
    uint8_t *buf;
    int rc;

    if (og_window_holds(c->window, f->key, strlen(f->key)))
        return 1;
    if (og_link_client_full(c))
        return -ENOBUFS;
    if (!(buf = og_pack(&f->base, &len)))
        return -ENOMEM;
    rc = og_window_add(c->window, f->key, strlen(f->key), buf, len);
    if (rc != 0)
        free(buf);
    return rc;
}

static int send_data(void *arg, const uint8_t *buf, size_t len, bool resend)
{
    struct og_link_client *c = arg;
    const void *parts[] = {buf};
    size_t sizes[] = {len};
    if (og_zsend(c->sock, parts, sizes, 1) < 0) {
        c->stats.send_fail++;
        return -EAGAIN;
    }
    if (resend)
        c->stats.resent++;
    else
        c->stats.sent++;
    return 0;
}

static void send_hello(struct og_link_client *c, int64_t now)
{
    Onegrid__V1__Frame f = ONEGRID__V1__FRAME__INIT;
    f.kind = ONEGRID__V1__FRAME__KIND__KIND_HELLO;
    f.sender = c->name;
    size_t len = 0;
    const void *k = og_window_newest_key(c->window, &len);
    char *last = k ? malloc(len + 1) : NULL;
    if (last) {
        memcpy(last, k, len);
        last[len] = '\0';
    }
    f.held_last = last ? last : (char *)""; /* out of memory: the server does not wait */
    /* Fails (EAGAIN) until the connection is up, with ZMQ_IMMEDIATE: not a send failure. */
    if (send_frame(c->sock, NULL, &f) == 0)
        c->hello_at = now;
    free(last);
}

/* Reads the socket monitor. Once the connection is lost, nothing more goes out until the
 * server, connected anew, grants credit again (HELLO, CREDIT), and everything unanswered
 * goes back in the queue in front of what was never sent, to go out first, in order.
 *
 * Without this a frame queued while the server was away could reach a restarted server
 * before the older ones lost with the old one: the DEALER takes sends as soon as the new
 * connection is up, the old credit still counted, and the reconnect was seen only at the
 * next look at the monitor. The server then stored a later decision about a case before
 * an earlier one (a status update before the case's opening: refused, "case does not
 * exist"; or an older state left in og.case). */
static void watch_connection(struct og_link_client *c)
{
    uint64_t disconnects = c->stats.disconnects;
    int reconnects = og_zmonitor_poll(c->monitor, &c->stats.disconnects);

    c->stats.reconnects += (uint64_t)reconnects;
    if (reconnects > 0 || c->stats.disconnects != disconnects) {
        c->credit = 0;
        c->hello_at = 0;
        og_window_requeue(c->window);
    }
}

void og_link_client_tick(struct og_link_client *c)
{
    int64_t now = og_mono_us();

    /* Before anything is sent: a connection lost since the last look must not be taken
     * for the one a frame would now go out on (watch_connection). */
    watch_connection(c);
    if (og_window_held(c->window) == 0)
        c->busy_since = 0;
    else if (c->busy_since == 0)
        c->busy_since = now;
    if (c->credit == 0) {
        /* Until the server grants credit, only HELLO goes out (again each resend time). */
        if (c->hello_at == 0 || now - c->hello_at >= c->resend_us)
            send_hello(c, now);
        return;
    }
    og_window_pump(c->window, c->credit, now, send_data, c);
}

int og_link_client_recv(struct og_link_client *c,
                        void (*on_answer)(Onegrid__V1__Frame *answer, void *arg), void *arg)
{
    int delivered = 0;
    struct og_zmsg m;

    watch_connection(c);
    while (og_zrecv(c->sock, &m) == 0) {
        Onegrid__V1__Frame *f = NULL;
        if (m.n == 1)
            f = onegrid__v1__frame__unpack(NULL, m.size[0], m.data[0]);
        og_zmsg_close(&m);
        if (!f) {
            c->stats.bad_frames++;
            continue;
        }
        c->heard_at = og_mono_us();
        switch (f->kind) {
        case ONEGRID__V1__FRAME__KIND__KIND_CREDIT:
            if (c->credit == 0)
                c->hello_at = 0;
            c->credit = f->credit;
            break;
        case ONEGRID__V1__FRAME__KIND__KIND_ANSWER:
            if (og_window_answered(c->window, f->key, strlen(f->key)) < 0) {
                c->stats.stray++;
                break;
            }
            c->stats.answered++;
            delivered++;
            on_answer(f, arg);
            f = NULL;
            break;
        default:
            c->stats.bad_frames++;
            break;
        }
        if (f)
            onegrid__v1__frame__free_unpacked(f, NULL);
    }
    return delivered;
}

/* Server ----------------------------------------------------------------------------- */

/* Who sent a key last: its answer goes there. */
struct sender {
    char *key;
    struct og_route route;
    UT_hash_handle hh;
};

/* A sender catching up: the key of the newest frame it held as it said HELLO, still to
 * come. */
struct catch_up {
    struct og_route route; /* len 0: a free slot */
    char *last;
    int64_t hello_us;
};
#define CATCH_UP_MAX 16 /* senders followed at once; past it the oldest HELLO is dropped */

struct og_link_server {
    void *sock;
    struct og_zap *zap; /* CURVE: who may connect; NULL without */
    uint32_t credit;
    struct sender *senders; /* by key, oldest first */
    size_t n_senders, max_senders;
    struct catch_up catch_up[CATCH_UP_MAX];
    struct og_link_stats stats;
};

static void catch_up_done(struct catch_up *c)
{
    free(c->last);
    c->last = NULL;
    c->route.len = 0;
}

struct og_link_server *og_link_server_new(void *ctx, const char *endpoints, uint32_t credit,
                                          char *err, size_t errlen)
{
    struct og_link_server_opts o = {.endpoints = endpoints, .credit = credit};
    return og_link_server_open(ctx, &o, err, errlen);
}

struct og_link_server *og_link_server_open(void *ctx, const struct og_link_server_opts *o,
                                           char *err, size_t errlen)
{
    struct og_link_server *s = calloc(1, sizeof(*s));
    uint32_t credit = o->credit;
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    bool curve = o->keys && og_link_keys_server(o->keys);
    if (curve) { /* the handler is bound before the socket it vets */
        struct og_zap_opts zo = {.keys_file = o->keys->clients_file,
                                 .domain = OG_LINK_ZAP_DOMAIN,
                                 .peer = "link client",
                                 .log = o->log,
                                 .log_arg = o->log_arg};
        if (!(s->zap = og_zap_new(ctx, &zo, err, errlen))) {
            free(s);
            return NULL;
        }
    }
    s->sock = og_router_new_curve(ctx, o->endpoints, MAX_FRAME, curve ? o->keys->secret : NULL,
                                  curve ? OG_LINK_ZAP_DOMAIN : NULL, err, errlen);
    if (!s->sock) {
        og_zap_destroy(&s->zap);
        free(s);
        return NULL;
    }
    s->credit = credit;
    /* A sender never has more than credit unanswered; the rest of the room is for resends
     * from senders that went away. Past it the oldest is forgotten (it resends). */
    s->max_senders = (size_t)credit * 4 > 1024 ? (size_t)credit * 4 : 1024;
    return s;
}

static void sender_free(struct og_link_server *s, struct sender *e)
{
    HASH_DEL(s->senders, e);
    free(e->key);
    free(e);
    s->n_senders--;
}

void og_link_server_forget(struct og_link_server *s, const char *key)
{
    struct sender *e;
    HASH_FIND_STR(s->senders, key, e);
    if (e)
        sender_free(s, e);
}

/* Remembers that key came from route (a resend from elsewhere moves it there). */
static void remember(struct og_link_server *s, const char *key, const struct og_route *route)
{
    struct sender *e;
    HASH_FIND_STR(s->senders, key, e);
    if (e) { /* newest again: a sender that resends is the last to be forgotten */
        e->route = *route;
        HASH_DEL(s->senders, e);
        HASH_ADD_KEYPTR(hh, s->senders, e->key, strlen(e->key), e);
        return;
    }
    if (s->n_senders >= s->max_senders) {
        sender_free(s, s->senders);
        s->stats.forgotten++;
    }
    if (!(e = calloc(1, sizeof(*e))) || !(e->key = strdup(key))) {
        free(e); /* the answer will find no sender; the frame is resent and remembered then */
        return;
    }
    e->route = *route;
    HASH_ADD_KEYPTR(hh, s->senders, e->key, strlen(e->key), e);
    s->n_senders++;
}

void og_link_server_destroy(struct og_link_server **sp)
{
    struct og_link_server *s = *sp;
    if (!s)
        return;
    while (s->senders)
        sender_free(s, s->senders);
    for (size_t i = 0; i < CATCH_UP_MAX; i++)
        catch_up_done(&s->catch_up[i]);
    zmq_close(s->sock);
    og_zap_destroy(&s->zap);
    free(s);
    *sp = NULL;
}

void *og_link_server_socket(struct og_link_server *s)
{
    return s->sock;
}

void *og_link_server_auth_socket(struct og_link_server *s)
{
    return s->zap ? og_zap_socket(s->zap) : NULL;
}

void og_link_server_auth(struct og_link_server *s)
{
    if (s->zap)
        og_zap_handle(s->zap, og_mono_us());
}

size_t og_link_server_auth_keys(const struct og_link_server *s)
{
    return s->zap ? og_zap_count(s->zap) : 0;
}

const struct og_link_stats *og_link_server_stats(const struct og_link_server *s)
{
    return &s->stats;
}

uint32_t og_link_server_credit(const struct og_link_server *s)
{
    return s->credit;
}

/* A sender said HELLO holding frames up to the one keyed last (again, after a resend time,
 * while it waits for credit: the same frames). */
static void catch_up_hello(struct og_link_server *s, const struct og_route *from, const char *last)
{
    struct catch_up *c = NULL, *oldest = &s->catch_up[0];
    for (size_t i = 0; i < CATCH_UP_MAX && !c; i++) {
        struct catch_up *e = &s->catch_up[i];
        if (e->route.len == from->len && memcmp(e->route.id, from->id, from->len) == 0)
            c = e;
        else if (!e->route.len || (oldest->route.len && e->hello_us < oldest->hello_us))
            oldest = e;
    }
    if (!last || !*last) {
        if (c)
            catch_up_done(c);
        return;
    }
    if (!c) {
        c = oldest;
        catch_up_done(c);
    }
    char *copy = strdup(last);
    if (!copy) { /* not followed: scans do not wait for it */
        catch_up_done(c);
        return;
    }
    free(c->last);
    c->last = copy;
    c->route = *from;
    c->hello_us = og_mono_us();
}

/* The frame keyed key came (from whichever connection: a sender that came back resends it
 * on a new one). */
static void catch_up_data(struct og_link_server *s, const char *key)
{
    for (size_t i = 0; i < CATCH_UP_MAX; i++)
        if (s->catch_up[i].route.len && strcmp(s->catch_up[i].last, key) == 0)
            catch_up_done(&s->catch_up[i]);
}

size_t og_link_server_catching_up(struct og_link_server *s, int64_t expire_us)
{
    int64_t now = og_mono_us();
    size_t n = 0;
    for (size_t i = 0; i < CATCH_UP_MAX; i++) {
        struct catch_up *c = &s->catch_up[i];
        if (c->route.len && now - c->hello_us >= expire_us)
            catch_up_done(c);
        n += c->route.len != 0;
    }
    return n;
}

int og_link_server_recv(struct og_link_server *s, struct og_route *from, Onegrid__V1__Frame **out)
{
    struct og_zmsg m;
    Onegrid__V1__Frame *f = NULL;
    int rc = og_zrecv(s->sock, &m);

    if (rc < 0)
        return rc;
    if (m.n == 2 && m.size[0] <= OG_MAX_ROUTE) {
        memcpy(from->id, m.data[0], m.size[0]);
        from->len = m.size[0];
        f = onegrid__v1__frame__unpack(NULL, m.size[1], m.data[1]);
    }
    og_zmsg_close(&m);
    if (!f) {
        s->stats.bad_frames++;
        return 0;
    }
    if (f->kind == ONEGRID__V1__FRAME__KIND__KIND_HELLO) {
        Onegrid__V1__Frame reply = ONEGRID__V1__FRAME__INIT;
        reply.kind = ONEGRID__V1__FRAME__KIND__KIND_CREDIT;
        reply.credit = s->credit;
        if (send_frame(s->sock, from, &reply) < 0)
            s->stats.send_fail++;
        s->stats.hellos++;
        catch_up_hello(s, from, f->held_last);
        onegrid__v1__frame__free_unpacked(f, NULL);
        return 0;
    }
    if (f->kind != ONEGRID__V1__FRAME__KIND__KIND_DATA || !*f->key) {
        s->stats.bad_frames++;
        onegrid__v1__frame__free_unpacked(f, NULL);
        return 0;
    }
    catch_up_data(s, f->key);
    remember(s, f->key, from);
    *out = f;
    return 1;
}

int og_link_server_answer(struct og_link_server *s, const struct og_route *to,
                          const Onegrid__V1__Frame *answer)
{
    int rc = send_frame(s->sock, to, answer);
    if (rc < 0)
        s->stats.send_fail++;
    else
        s->stats.answered++;
    return rc;
}

int og_link_server_reply(struct og_link_server *s, const Onegrid__V1__Frame *answer)
{
    struct sender *e;
    int rc;
    HASH_FIND_STR(s->senders, answer->key, e);
    if (!e)
        return -ENOENT;
    rc = og_link_server_answer(s, &e->route, answer);
    sender_free(s, e);
    return rc;
}
