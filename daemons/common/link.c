#include "link.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uthash.h>
#include <zmq.h>

#include "util.h"

/* Frames are small (an event is at most max_event_bytes); this bounds what a link will
 * accept from a peer so a broken one cannot make us allocate without limit. */
#define MAX_FRAME (4 * 1024 * 1024)

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

struct held {
    char *key;
    uint8_t *buf; /* the packed DATA frame */
    size_t len;
    int64_t sent_at; /* monotonic us of the last send; 0 = queued, not sent */
    int tries;       /* sends so far: the wait before the next one doubles, up to 16x */
    bool sent_once;  /* sent at least once (after a reconnect it is queued again) */
    struct held *next_queued;
    UT_hash_handle hh;
};

struct og_link_client {
    void *sock;
    void *monitor; /* PAIR receiving the DEALER's connect and disconnect events */
    bool was_connected;
    char *name;
    struct held *by_key;     /* every held frame, in insertion order */
    struct held *queue_head; /* not yet sent, FIFO */
    struct held *queue_tail;
    size_t held, inflight, max_queue;
    uint32_t credit;
    int64_t resend_us, hello_at;
    struct og_link_stats stats;
};

struct og_link_client *og_link_client_new(void *ctx, const char *endpoint, const char *name,
                                          size_t max_queue, int64_t resend_us, char *err,
                                          size_t errlen)
{
    struct og_link_client *c = calloc(1, sizeof(*c));
    if (!c || !(c->name = strdup(name))) {
        snprintf(err, errlen, "out of memory");
        free(c);
        return NULL;
    }
    c->sock = og_dealer_new(ctx, endpoint, err, errlen);
    if (!c->sock) {
        free(c->name);
        free(c);
        return NULL;
    }
    c->max_queue = max_queue;
    c->resend_us = resend_us;
    /* Reconnects are how a restarted peer shows itself: whatever was in flight to the
     * old one is lost with it, so it is resent at once instead of after a timeout. */
    char addr[64];
    snprintf(addr, sizeof(addr), "inproc://og-link-monitor-%p", (void *)c);
    if (zmq_socket_monitor(c->sock, addr, ZMQ_EVENT_CONNECTED | ZMQ_EVENT_DISCONNECTED) == 0) {
        c->monitor = zmq_socket(ctx, ZMQ_PAIR);
        if (c->monitor && zmq_connect(c->monitor, addr) != 0) {
            zmq_close(c->monitor);
            c->monitor = NULL;
        }
    }
    if (!c->monitor) {
        snprintf(err, errlen, "socket monitor: %s", zmq_strerror(errno));
        zmq_close(c->sock);
        free(c->name);
        free(c);
        return NULL;
    }
    return c;
}

static void held_free(struct held *h)
{
    free(h->key);
    free(h->buf);
    free(h);
}

void og_link_client_drop_all(struct og_link_client *c)
{
    struct held *h, *tmp;
    HASH_ITER(hh, c->by_key, h, tmp)
    {
        HASH_DEL(c->by_key, h);
        held_free(h);
    }
    c->queue_head = c->queue_tail = NULL;
    c->held = c->inflight = 0;
}

void og_link_client_destroy(struct og_link_client **cp)
{
    struct og_link_client *c = *cp;
    if (!c)
        return;
    og_link_client_drop_all(c);
    zmq_socket_monitor(c->sock, NULL, 0);
    zmq_close(c->monitor);
    zmq_close(c->sock);
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
    return c->held;
}

bool og_link_client_full(const struct og_link_client *c)
{
    return c->held >= c->max_queue;
}

size_t og_link_client_room(const struct og_link_client *c)
{
    return c->held < c->max_queue ? c->max_queue - c->held : 0;
}

bool og_link_client_connected(const struct og_link_client *c)
{
    return c->credit > 0;
}

const struct og_link_stats *og_link_client_stats(const struct og_link_client *c)
{
    return &c->stats;
}

int og_link_client_send(struct og_link_client *c, const Onegrid__V1__Frame *f)
{
    struct held *h;

    HASH_FIND_STR(c->by_key, f->key, h);
    if (h)
        return 1;
    if (c->held >= c->max_queue)
        return -ENOBUFS;
    h = calloc(1, sizeof(*h));
    if (!h || !(h->key = strdup(f->key)) || !(h->buf = og_pack(&f->base, &h->len))) {
        if (h)
            free(h->key);
        free(h);
        return -ENOMEM;
    }
    HASH_ADD_KEYPTR(hh, c->by_key, h->key, strlen(h->key), h);
    if (c->queue_tail)
        c->queue_tail->next_queued = h;
    else
        c->queue_head = h;
    c->queue_tail = h;
    c->held++;
    return 0;
}

static int send_held(struct og_link_client *c, struct held *h)
{
    const void *parts[] = {h->buf};
    size_t sizes[] = {h->len};
    int rc = og_zsend(c->sock, parts, sizes, 1);
    if (rc < 0)
        c->stats.send_fail++;
    return rc;
}

static void send_hello(struct og_link_client *c, int64_t now)
{
    Onegrid__V1__Frame f = ONEGRID__V1__FRAME__INIT;
    f.kind = ONEGRID__V1__FRAME__KIND__KIND_HELLO;
    f.sender = c->name;
    /* Fails (EAGAIN) until the connection is up, with ZMQ_IMMEDIATE: not a send failure. */
    if (send_frame(c->sock, NULL, &f) == 0)
        c->hello_at = now;
}

void og_link_client_tick(struct og_link_client *c)
{
    int64_t now = og_mono_us();
    struct held *h, *tmp;

    if (c->credit == 0) {
        /* Until the server grants credit, only HELLO goes out (again each resend time). */
        if (c->hello_at == 0 || now - c->hello_at >= c->resend_us)
            send_hello(c, now);
        return;
    }
    /* Resend what has waited too long, oldest first. While a peer stays connected nothing
     * is lost on the way (it is slow, or its database is away), so the wait doubles each
     * time: a stalled peer is not flooded with copies. */
    HASH_ITER(hh, c->by_key, h, tmp)
    {
        if (h->sent_at == 0 || now - h->sent_at < c->resend_us << (h->tries < 5 ? h->tries - 1 : 4))
            continue;
        if (send_held(c, h) < 0)
            break;
        h->sent_at = now;
        h->tries++;
        c->stats.resent++;
    }
    while (c->queue_head && c->inflight < c->credit) {
        h = c->queue_head;
        if (send_held(c, h) < 0)
            break;
        h->sent_at = now;
        h->tries = 1;
        c->queue_head = h->next_queued;
        if (!c->queue_head)
            c->queue_tail = NULL;
        h->next_queued = NULL;
        c->inflight++;
        if (h->sent_once)
            c->stats.resent++;
        else
            c->stats.sent++;
        h->sent_once = true;
    }
}

/* Reads the socket monitor: after a reconnect, asks for credit again and makes every
 * unanswered frame due for resending at once. */
static void watch_connection(struct og_link_client *c)
{
    struct og_zmsg m;
    while (og_zrecv(c->monitor, &m) == 0) {
        uint16_t event = 0;
        if (m.n >= 1 && m.size[0] >= 2)
            memcpy(&event, m.data[0], sizeof(event));
        og_zmsg_close(&m);
        if (event == ZMQ_EVENT_DISCONNECTED) {
            c->stats.disconnects++;
        } else if (event == ZMQ_EVENT_CONNECTED) {
            if (c->was_connected) {
                /* Everything unanswered was lost with the old connection: put it all back
                 * in the queue, in order, to go out within the credit granted anew. */
                struct held *h, *tmp, *prev = NULL;
                c->stats.reconnects++;
                c->credit = 0;
                c->hello_at = 0;
                c->queue_head = NULL;
                HASH_ITER(hh, c->by_key, h, tmp)
                {
                    h->sent_at = 0;
                    h->next_queued = NULL;
                    if (prev)
                        prev->next_queued = h;
                    else
                        c->queue_head = h;
                    prev = h;
                }
                c->queue_tail = prev;
                c->inflight = 0;
            }
            c->was_connected = true;
        }
    }
}

int og_link_client_recv(struct og_link_client *c,
                        void (*on_answer)(Onegrid__V1__Frame *answer, void *arg), void *arg)
{
    int delivered = 0;
    struct og_zmsg m;

    watch_connection(c);
    while (og_zrecv(c->sock, &m) == 0) {
        Onegrid__V1__Frame *f = NULL;
        struct held *h = NULL;
        if (m.n == 1)
            f = onegrid__v1__frame__unpack(NULL, m.size[0], m.data[0]);
        og_zmsg_close(&m);
        if (!f) {
            c->stats.bad_frames++;
            continue;
        }
        switch (f->kind) {
        case ONEGRID__V1__FRAME__KIND__KIND_CREDIT:
            if (c->credit == 0)
                c->hello_at = 0;
            c->credit = f->credit;
            break;
        case ONEGRID__V1__FRAME__KIND__KIND_ANSWER:
            HASH_FIND_STR(c->by_key, f->key, h);
            if (!h || h->sent_at == 0) {
                c->stats.stray++;
                break;
            }
            HASH_DEL(c->by_key, h);
            held_free(h);
            c->held--;
            c->inflight--;
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

struct og_link_server {
    void *sock;
    uint32_t credit;
    struct og_link_stats stats;
};

struct og_link_server *og_link_server_new(void *ctx, const char *endpoints, uint32_t credit,
                                          char *err, size_t errlen)
{
    struct og_link_server *s = calloc(1, sizeof(*s));
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    s->sock = og_router_new(ctx, endpoints, MAX_FRAME, err, errlen);
    if (!s->sock) {
        free(s);
        return NULL;
    }
    s->credit = credit;
    return s;
}

void og_link_server_destroy(struct og_link_server **sp)
{
    struct og_link_server *s = *sp;
    if (!s)
        return;
    zmq_close(s->sock);
    free(s);
    *sp = NULL;
}

void *og_link_server_socket(struct og_link_server *s)
{
    return s->sock;
}

const struct og_link_stats *og_link_server_stats(const struct og_link_server *s)
{
    return &s->stats;
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
        onegrid__v1__frame__free_unpacked(f, NULL);
        return 0;
    }
    if (f->kind != ONEGRID__V1__FRAME__KIND__KIND_DATA || !*f->key) {
        s->stats.bad_frames++;
        onegrid__v1__frame__free_unpacked(f, NULL);
        return 0;
    }
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
