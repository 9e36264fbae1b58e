/* ZeroMQ socket set-up and multipart send/receive with the options every onegrid socket
 * needs (PITFALLS.md): finite linger, heartbeats, ROUTER_MANDATORY and ROUTER_HANDOVER,
 * high-water marks above any window, and non-blocking sends whose failure is returned,
 * never ignored. */
#ifndef OG_ZSOCK_H
#define OG_ZSOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define OG_MAX_PARTS 4
#define OG_MAX_ROUTE 256

/* A received multipart message: parts[i] point into the zmq_msg_t storage. */
struct og_zmsg {
    size_t n;
    void *msgs; /* zmq_msg_t[OG_MAX_PARTS] */
    const uint8_t *data[OG_MAX_PARTS];
    size_t size[OG_MAX_PARTS];
    int truncated;    /* more parts arrived than OG_MAX_PARTS; they were dropped */
    char user_id[72]; /* the ZAP handler's User-Id for the peer (CURVE), "" without */
    size_t parts;     /* parts received, the dropped ones too */
    size_t bytes;     /* their sizes added up */
    int fd;           /* libzmq's descriptor of the connection it came on, or -1 */
};

/* A ROUTER peer's routing id. */
struct og_route {
    uint8_t id[OG_MAX_ROUTE];
    size_t len;
};

/* A ROUTER socket bound to each endpoint of a comma-separated list. Returns NULL with err
 * filled ("bind \"tcp://...\": Address already in use"). maxmsg bounds a frame's size. A
 * new connection presenting a routing id another one holds takes it over (and what is
 * sent to that id from then on). */
void *og_router_new(void *ctx, const char *endpoints, int64_t maxmsg, char *err, size_t errlen);
/* The same, with CURVE (CurveZMQ: encryption and client keys) when server_secret (the
 * server's secret key, 40 Z85 characters) is not NULL: every peer must then do a CURVE
 * handshake, and the ZAP handler (RFC 27, inproc://zeromq.zap.01, which must be bound
 * first) decides whether its key is let in, under zap_domain; without a handler nobody
 * is (ZMQ_ZAP_ENFORCE_DOMAIN). */
void *og_router_new_curve(void *ctx, const char *endpoints, int64_t maxmsg,
                          const char *server_secret, const char *zap_domain, char *err,
                          size_t errlen);
/* Everything og_router_new_curve takes, and what a socket facing peers nobody vouches for
 * (intake's publishers) needs on top. */
struct og_router_opts {
    const char *endpoints;     /* NULL: bound later, with og_router_bind */
    int64_t maxmsg;            /* a larger frame, handshake frames too, drops the connection */
    int rcvhwm; /* whole messages queued per connection; 0: far above any window. Set, the
                 * socket sends no heartbeats and uses TCP keepalive (og_router_open) */
    int handshake_ms;          /* a connection must finish its handshake in time; 0: 30 s */
    const char *server_secret; /* CURVE, as above; NULL: none */
    const char *zap_domain;
};
void *og_router_open(void *ctx, const struct og_router_opts *o, char *err, size_t errlen);
/* Binds s to each endpoint of a comma-separated list (a socket monitor attached before
 * sees every connection). 0, or -errno with err filled. */
int og_router_bind(void *s, const char *endpoints, char *err, size_t errlen);
/* A DEALER socket connected to endpoint. */
void *og_dealer_new(void *ctx, const char *endpoint, char *err, size_t errlen);
/* The same as a CURVE client when server_public is not NULL: the server's public key and
 * the client's own key pair (40 Z85 characters each). */
void *og_dealer_new_curve(void *ctx, const char *endpoint, const char *server_public,
                          const char *public_key, const char *secret_key, char *err, size_t errlen);
/* A CURVE key in Z85 (40 characters of the Z85 alphabet): 0, or -EINVAL. */
int og_curve_key_check(const char *z85);
/* Reads a secret key file whose first line holds the key (as `onegridctl keygen` writes
 * them); path may be "credential:NAME" (og_secret_path in util.h). A file its group or
 * others may read is refused: chmod 600 it. 0, or -1 with err filled ("PATH: ..."). */
int og_curve_key_read(const char *path, char key[41], char *err, size_t errlen);
/* The same for a public key, which any mode may show. */
int og_curve_public_key_read(const char *path, char key[41], char *err, size_t errlen);
/* Endpoint lists (listen = ...) are separated by commas, spaces or tabs, everywhere. */
#define OG_ENDPOINT_SEPARATORS ", \t"
/* The next endpoint of a list at or after p: its start, and its length in *len; NULL when
 * the list has no more. */
const char *og_endpoint_next(const char *p, size_t *len);
/* Checks each endpoint of a comma-separated list without binding or connecting: ipc://
 * with a path that fits a unix socket in a directory that exists; tcp:// with a port
 * 1..65535 (to bind also "*" or 0: one the system picks) and a host (to bind: "*", an
 * address or an interface; to connect: an address or a name that resolves). Nothing
 * else. 0; 1 when everything is valid but an ipc:// endpoint to connect to has no
 * socket yet (err says so: its daemon is not up, or the path is mistyped); or -EINVAL
 * with err naming the endpoint and what is wrong. */
int og_endpoint_check(const char *list, bool bind, char *err, size_t errlen);
/* Writes the endpoints actually bound (tcp port 0 or * resolved) into buf. */
void og_router_endpoint(void *sock, char *buf, size_t size);

/* A socket's connection monitor: tells a sender that its connection was made again (a
 * restarted peer, a network break), so that what was in flight is resent at once. */
struct og_zmonitor;
/* Monitors sock's connects and disconnects. NULL with err filled. */
struct og_zmonitor *og_zmonitor_new(void *ctx, void *sock, char *err, size_t errlen);
/* Stops monitoring sock and frees; accepts NULL, sets *m to NULL. */
void og_zmonitor_destroy(struct og_zmonitor **m, void *sock);
/* Reads the events so far without blocking: returns how many connections were made again
 * (each connect after the first) and adds the disconnects to *disconnects. */
int og_zmonitor_poll(struct og_zmonitor *m, uint64_t *disconnects);

/* The same monitor for any ZMQ_EVENT_* in events, read one event at a time. */
struct og_zmonitor *og_zmonitor_new_events(void *ctx, void *sock, int events, char *err,
                                           size_t errlen);
/* One event: what (ZMQ_EVENT_*) and its value (ACCEPTED, DISCONNECTED: the connection's
 * file descriptor; HANDSHAKE_FAILED_NO_DETAIL: an errno; _PROTOCOL: a
 * ZMQ_PROTOCOL_ERROR_*; _AUTH: the ZAP status code). */
struct og_zevent {
    unsigned event;
    uint32_t value;
};
/* The next event without blocking: 1 with *ev filled, 0 when there is none. */
int og_zmonitor_next(struct og_zmonitor *m, struct og_zevent *ev);
/* Its socket, to poll for ZMQ_POLLIN. */
void *og_zmonitor_socket(const struct og_zmonitor *m);

/* Sends n parts without blocking. Returns 0, -EAGAIN (queue full: no credit),
 * -EHOSTUNREACH (ROUTER: peer gone) or another -errno. */
int og_zsend(void *sock, const void *const *parts, const size_t *sizes, size_t n);
/* Receives one multipart message without blocking: 0, -EAGAIN, or -errno. */
int og_zrecv(void *sock, struct og_zmsg *m);
void og_zmsg_close(struct og_zmsg *m);

#endif
