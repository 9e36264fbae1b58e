#include "zsock.h"

#include <errno.h>
#include <net/if.h>
#include <netdb.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <zmq.h>

#include "util.h"

/* Draft in libzmq 4.3.4's header, accepted at run time (PITFALLS.md): refuse CURVE clients
 * when no ZAP handler is bound, instead of letting every key in. */
#ifndef ZMQ_ZAP_ENFORCE_DOMAIN
#define ZMQ_ZAP_ENFORCE_DOMAIN 93
#endif

/* High-water marks far above any window a peer is granted, so that a full queue means a
 * broken peer, not normal load. */
#define HWM 200000

static void common_opts(void *s)
{
    int linger = 1000, hwm = HWM, ivl = 1000, timeout = 5000, ttl = 10000;
    zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof(linger));
    zmq_setsockopt(s, ZMQ_SNDHWM, &hwm, sizeof(hwm));
    zmq_setsockopt(s, ZMQ_RCVHWM, &hwm, sizeof(hwm));
    zmq_setsockopt(s, ZMQ_HEARTBEAT_IVL, &ivl, sizeof(ivl));
    zmq_setsockopt(s, ZMQ_HEARTBEAT_TIMEOUT, &timeout, sizeof(timeout));
    zmq_setsockopt(s, ZMQ_HEARTBEAT_TTL, &ttl, sizeof(ttl));
}

/* libzmq binds an ipc:// path by removing whatever socket file is there: a second daemon
 * started by mistake would silently take the endpoint from the running one. Refuse when
 * something accepts connections on the path. */
static int ipc_in_use(const char *ep)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    int fd, rc;
    if (strncmp(ep, "ipc://", 6) != 0 || strlen(ep + 6) >= sizeof(sa.sun_path))
        return 0;
    strcpy(sa.sun_path, ep + 6);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return 0;
    rc = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
    close(fd);
    return rc;
}

int og_curve_key_check(const char *z85)
{
    uint8_t key[32];
    if (!z85 || strlen(z85) != 40 || !zmq_z85_decode(key, z85))
        return -EINVAL;
    return 0;
}

static int key_read(const char *spec, bool secret, char key[41], char *err, size_t errlen)
{
    char line[128] = "", path[4096];
    if (og_secret_path(spec, path, sizeof(path), err, errlen) < 0)
        return -1;
    FILE *f = fopen(path, "r");
    struct stat st;
    int rc = 0;

    if (!f) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    /* The mode of what was opened, not of what the path names a moment later. */
    if (secret && fstat(fileno(f), &st) == 0 && !og_secret_mode_ok(spec, st.st_mode)) {
        snprintf(err, errlen,
                 "%s: a secret key file its group or others may read (mode %04o): chmod 600 it",
                 path, (unsigned)(st.st_mode & 07777));
        fclose(f);
        return -1;
    }
    if (!fgets(line, sizeof(line), f))
        line[0] = '\0';
    fclose(f);
    line[strcspn(line, " \t\r\n")] = '\0';
    if (og_curve_key_check(line) < 0) {
        snprintf(err, errlen, "%s: the first line is not a 40-character Z85 key", path);
        rc = -1;
    } else {
        memcpy(key, line, 41);
    }
    explicit_bzero(line, sizeof(line)); /* it may hold a secret key */
    return rc;
}

int og_curve_key_read(const char *path, char key[41], char *err, size_t errlen)
{
    return key_read(path, true, key, err, errlen);
}

int og_curve_public_key_read(const char *path, char key[41], char *err, size_t errlen)
{
    return key_read(path, false, key, err, errlen);
}

void *og_router_new(void *ctx, const char *endpoints, int64_t maxmsg, char *err, size_t errlen)
{
    return og_router_new_curve(ctx, endpoints, maxmsg, NULL, NULL, err, errlen);
}

void *og_router_new_curve(void *ctx, const char *endpoints, int64_t maxmsg,
                          const char *server_secret, const char *zap_domain, char *err,
                          size_t errlen)
{
    struct og_router_opts o = {.endpoints = endpoints,
                               .maxmsg = maxmsg,
                               .server_secret = server_secret,
                               .zap_domain = zap_domain};
    return og_router_open(ctx, &o, err, errlen);
}

void *og_router_open(void *ctx, const struct og_router_opts *o, char *err, size_t errlen)
{
    void *s = zmq_socket(ctx, ZMQ_ROUTER);
    const char *server_secret = o->server_secret, *zap_domain = o->zap_domain;
    int64_t maxmsg = o->maxmsg;
    int one = 1;

    if (!s) {
        snprintf(err, errlen, "zmq_socket: %s", zmq_strerror(errno));
        return NULL;
    }
    common_opts(s);
    /* HWM counts whole messages per connection: with maxmsg it bounds what one peer can
     * make libzmq hold for it (a message still arriving is bounded by nothing but the
     * connection's end: see intake's peers.c). */
    if (o->rcvhwm > 0) {
        /* Such a connection is left unread once its queue is full. If the peer goes away
         * then, libzmq 4.3.4 aborts the process at the next heartbeat ("Assertion failed:
         * !_io_error (src/stream_engine_base.cpp:331)", libzmq issue 4841): no heartbeats
         * here. A peer that is gone is found by TCP keepalive, or at once over ipc://. */
        int zero = 0, keepalive = 1, idle = 60, intvl = 10, cnt = 3;
        zmq_setsockopt(s, ZMQ_RCVHWM, &o->rcvhwm, sizeof(o->rcvhwm));
        zmq_setsockopt(s, ZMQ_HEARTBEAT_IVL, &zero, sizeof(zero));
        zmq_setsockopt(s, ZMQ_TCP_KEEPALIVE, &keepalive, sizeof(keepalive));
        zmq_setsockopt(s, ZMQ_TCP_KEEPALIVE_IDLE, &idle, sizeof(idle));
        zmq_setsockopt(s, ZMQ_TCP_KEEPALIVE_INTVL, &intvl, sizeof(intvl));
        zmq_setsockopt(s, ZMQ_TCP_KEEPALIVE_CNT, &cnt, sizeof(cnt));
    }
    if (o->handshake_ms > 0)
        zmq_setsockopt(s, ZMQ_HANDSHAKE_IVL, &o->handshake_ms, sizeof(o->handshake_ms));
    zmq_setsockopt(s, ZMQ_ROUTER_MANDATORY, &one, sizeof(one));
    /* A peer that reconnects under the routing id it chose (ZMQ_ROUTING_ID) while its old
     * connection lingers (a frozen process, a half-open TCP connection) takes the id over,
     * and with it the answers still due to it. Without this the new connection is ignored
     * until the old one dies (PITFALLS.md). Peers that choose no id (the links between the
     * daemons, libonegrid) get a new one per connection: for them nothing changes. */
    zmq_setsockopt(s, ZMQ_ROUTER_HANDOVER, &one, sizeof(one));
    zmq_setsockopt(s, ZMQ_MAXMSGSIZE, &maxmsg, sizeof(maxmsg));
    /* Before binding: the options apply to the connections accepted afterwards. */
    if (server_secret && (og_curve_key_check(server_secret) < 0 ||
                          zmq_setsockopt(s, ZMQ_CURVE_SERVER, &one, sizeof(one)) != 0 ||
                          zmq_setsockopt(s, ZMQ_CURVE_SECRETKEY, server_secret, 40) != 0 ||
                          zmq_setsockopt(s, ZMQ_ZAP_DOMAIN, zap_domain ? zap_domain : "",
                                         zap_domain ? strlen(zap_domain) : 0) != 0 ||
                          zmq_setsockopt(s, ZMQ_ZAP_ENFORCE_DOMAIN, &one, sizeof(one)) != 0)) {
        snprintf(err, errlen, "CURVE: the server's secret key is not 40 Z85 characters, or %s",
                 zmq_strerror(errno));
        zmq_close(s);
        return NULL;
    }
    if (o->endpoints && og_router_bind(s, o->endpoints, err, errlen) < 0) {
        zmq_close(s);
        return NULL;
    }
    return s;
}

int og_router_bind(void *s, const char *endpoints, char *err, size_t errlen)
{
    char *list = strdup(endpoints), *save = NULL;
    int rc = 0;

    if (!list) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    for (char *ep = strtok_r(list, OG_ENDPOINT_SEPARATORS, &save); ep && rc == 0;
         ep = strtok_r(NULL, OG_ENDPOINT_SEPARATORS, &save)) {
        if (ipc_in_use(ep)) {
            snprintf(err, errlen, "bind \"%s\": another process is listening there", ep);
            rc = -EADDRINUSE;
        } else if (zmq_bind(s, ep) != 0) {
            rc = -errno;
            snprintf(err, errlen, "bind \"%s\": %s", ep, zmq_strerror(errno));
        }
    }
    free(list);
    return rc;
}

void og_router_endpoint(void *sock, char *buf, size_t size)
{
    size_t len = size;
    if (zmq_getsockopt(sock, ZMQ_LAST_ENDPOINT, buf, &len) != 0)
        snprintf(buf, size, "?");
}

void *og_dealer_new(void *ctx, const char *endpoint, char *err, size_t errlen)
{
    return og_dealer_new_curve(ctx, endpoint, NULL, NULL, NULL, err, errlen);
}

void *og_dealer_new_curve(void *ctx, const char *endpoint, const char *server_public,
                          const char *public_key, const char *secret_key, char *err, size_t errlen)
{
    void *s = zmq_socket(ctx, ZMQ_DEALER);
    int one = 1, ivl = 100, max = 2000;

    if (!s) {
        snprintf(err, errlen, "zmq_socket: %s", zmq_strerror(errno));
        return NULL;
    }
    common_opts(s);
    if (server_public) {
        const char *bad = og_curve_key_check(server_public) < 0 ? "the server's public key"
                          : og_curve_key_check(public_key) < 0  ? "the client's public key"
                          : og_curve_key_check(secret_key) < 0  ? "the client's secret key"
                                                                : NULL;
        if (bad || zmq_setsockopt(s, ZMQ_CURVE_SERVERKEY, server_public, 40) != 0 ||
            zmq_setsockopt(s, ZMQ_CURVE_PUBLICKEY, public_key, 40) != 0 ||
            zmq_setsockopt(s, ZMQ_CURVE_SECRETKEY, secret_key, 40) != 0) {
            snprintf(err, errlen, "CURVE: %s%s", bad ? bad : zmq_strerror(errno),
                     bad ? " is not 40 Z85 characters" : "");
            zmq_close(s);
            return NULL;
        }
    }
    /* Queue only to completed connections: messages queued to a half-open one can be
     * lost (PITFALLS.md); the link resends anyway, but this keeps resends rare. */
    zmq_setsockopt(s, ZMQ_IMMEDIATE, &one, sizeof(one));
    zmq_setsockopt(s, ZMQ_RECONNECT_IVL, &ivl, sizeof(ivl));
    zmq_setsockopt(s, ZMQ_RECONNECT_IVL_MAX, &max, sizeof(max));
    if (zmq_connect(s, endpoint) != 0) {
        snprintf(err, errlen, "connect \"%s\": %s", endpoint, zmq_strerror(errno));
        zmq_close(s);
        return NULL;
    }
    return s;
}

int og_zsend(void *sock, const void *const *parts, const size_t *sizes, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        int flags = ZMQ_DONTWAIT | (i + 1 < n ? ZMQ_SNDMORE : 0);
        if (zmq_send(sock, parts[i], sizes[i], flags) < 0) {
            /* Only the first part can fail with EAGAIN/EHOSTUNREACH: libzmq accepts the
             * rest of a message once its first part is in. */
            return -errno;
        }
    }
    return 0;
}

int og_zrecv(void *sock, struct og_zmsg *m)
{
    zmq_msg_t *msgs = calloc(OG_MAX_PARTS, sizeof(zmq_msg_t));
    int more = 1;

    memset(m, 0, sizeof(*m));
    m->fd = -1;
    if (!msgs)
        return -ENOMEM;
    m->msgs = msgs;
    while (more) {
        zmq_msg_t scratch, *msg = m->n < OG_MAX_PARTS ? &msgs[m->n] : &scratch;
        zmq_msg_init(msg);
        if (zmq_msg_recv(msg, sock, m->n == 0 ? ZMQ_DONTWAIT : 0) < 0) {
            int e = errno;
            zmq_msg_close(msg);
            og_zmsg_close(m);
            return -e;
        }
        more = zmq_msg_more(msg);
        m->parts++;
        m->bytes += zmq_msg_size(msg);
        if (!more) { /* the peer's identity as the ZAP handler named it (CURVE) */
            const char *uid = zmq_msg_gets(msg, "User-Id");
            snprintf(m->user_id, sizeof(m->user_id), "%s", uid ? uid : "");
            /* Which connection: libzmq 4.3's ZMQ_SRCFD, now a metadata property. */
            const char *fd = zmq_msg_gets(msg, "__fd");
            m->fd = fd ? atoi(fd) : -1;
        }
        if (msg == &scratch) {
            zmq_msg_close(msg);
            m->truncated = 1;
            continue;
        }
        m->data[m->n] = zmq_msg_data(msg);
        m->size[m->n] = zmq_msg_size(msg);
        m->n++;
    }
    return 0;
}

void og_zmsg_close(struct og_zmsg *m)
{
    zmq_msg_t *msgs = m->msgs;
    if (!msgs)
        return;
    for (size_t i = 0; i < m->n; i++)
        zmq_msg_close(&msgs[i]);
    free(msgs);
    memset(m, 0, sizeof(*m));
    m->fd = -1;
}

struct og_zmonitor {
    void *pair; /* receives the monitored socket's events */
    bool was_connected;
};

struct og_zmonitor *og_zmonitor_new(void *ctx, void *sock, char *err, size_t errlen)
{
    return og_zmonitor_new_events(ctx, sock, ZMQ_EVENT_CONNECTED | ZMQ_EVENT_DISCONNECTED, err,
                                  errlen);
}

struct og_zmonitor *og_zmonitor_new_events(void *ctx, void *sock, int events, char *err,
                                           size_t errlen)
{
    struct og_zmonitor *m = calloc(1, sizeof(*m));
    /* libzmq sends each event with a blocking send from its I/O thread: a full queue
     * stalls every connection until it is read. Events are small; queue many. */
    int hwm = 100000, linger = 0;
    char addr[64];

    if (!m) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    snprintf(addr, sizeof(addr), "inproc://og-monitor-%p", (void *)m);
    if (zmq_socket_monitor(sock, addr, events) == 0 && (m->pair = zmq_socket(ctx, ZMQ_PAIR)) &&
        zmq_setsockopt(m->pair, ZMQ_RCVHWM, &hwm, sizeof(hwm)) == 0 &&
        zmq_setsockopt(m->pair, ZMQ_LINGER, &linger, sizeof(linger)) == 0 &&
        zmq_connect(m->pair, addr) == 0)
        return m;
    snprintf(err, errlen, "socket monitor: %s", zmq_strerror(errno));
    if (m->pair)
        zmq_close(m->pair);
    zmq_socket_monitor(sock, NULL, 0);
    free(m);
    return NULL;
}

void og_zmonitor_destroy(struct og_zmonitor **mp, void *sock)
{
    struct og_zmonitor *m = *mp;
    if (!m)
        return;
    zmq_socket_monitor(sock, NULL, 0);
    zmq_close(m->pair);
    free(m);
    *mp = NULL;
}

int og_zmonitor_poll(struct og_zmonitor *m, uint64_t *disconnects)
{
    struct og_zmsg msg;
    int reconnects = 0;

    while (og_zrecv(m->pair, &msg) == 0) {
        uint16_t event = 0;
        if (msg.n >= 1 && msg.size[0] >= 2)
            memcpy(&event, msg.data[0], sizeof(event));
        og_zmsg_close(&msg);
        /* The monitor is attached after the socket's connect, so the first CONNECTED
         * may come before it listens: a connect after a disconnect is a reconnect too. */
        if (event == ZMQ_EVENT_DISCONNECTED) {
            (*disconnects)++;
            m->was_connected = true;
        } else if (event == ZMQ_EVENT_CONNECTED) {
            reconnects += m->was_connected;
            m->was_connected = true;
        }
    }
    return reconnects;
}

int og_zmonitor_next(struct og_zmonitor *m, struct og_zevent *ev)
{
    struct og_zmsg msg;

    /* Two frames: event (16 bits) and value (32 bits), then the endpoint, which for a
     * bound socket is its own address, not the peer's. */
    while (og_zrecv(m->pair, &msg) == 0) {
        bool ok = msg.n >= 1 && msg.size[0] >= 6;
        if (ok) {
            uint16_t event;
            memcpy(&event, msg.data[0], sizeof(event));
            memcpy(&ev->value, msg.data[0] + 2, sizeof(ev->value));
            ev->event = event;
        }
        og_zmsg_close(&msg);
        if (ok)
            return 1;
    }
    return 0;
}

void *og_zmonitor_socket(const struct og_zmonitor *m)
{
    return m->pair;
}

/* One endpoint of og_endpoint_check: ep[0..n). */
static int endpoint_check(const char *ep, size_t n, bool bind, char *err, size_t errlen)
{
    char buf[512], *host, *port, *end;
    struct stat st;

    if (n >= sizeof(buf)) {
        snprintf(err, errlen, "\"%.64s...\": too long", ep);
        return -EINVAL;
    }
    memcpy(buf, ep, n);
    buf[n] = '\0';
    if (strncmp(buf, "ipc://", 6) == 0) {
        char *path = buf + 6, *slash;
        if (!*path || strlen(path) > 107) {
            snprintf(err, errlen, "\"%s\": a unix socket path is 1..107 bytes", buf);
            return -EINVAL;
        }
        if (*path == '@') /* Linux's abstract namespace: no file */
            return 0;
        if ((slash = strrchr(path, '/')) && slash != path) {
            *slash = '\0';
            int e = stat(path, &st) == 0 ? (S_ISDIR(st.st_mode) ? 0 : ENOTDIR) : errno;
            *slash = '/';
            if (e) {
                snprintf(err, errlen, "\"%s\": directory \"%.*s\": %s", buf, (int)(slash - path),
                         path, strerror(e));
                return -EINVAL;
            }
        }
        if (!bind && stat(path, &st) != 0) {
            snprintf(err, errlen,
                     "\"%s\": no socket there yet (is its daemon up? is the path "
                     "right?)",
                     buf);
            return 1;
        }
        return 0;
    }
    if (strncmp(buf, "tcp://", 6) != 0) {
        snprintf(err, errlen, "\"%s\": not an ipc:// or tcp:// endpoint", buf);
        return -EINVAL;
    }
    host = buf + 6;
    port = strrchr(host, ':');
    if (!port || port == host) {
        snprintf(err, errlen, "\"%s\": expected tcp://HOST:PORT", buf);
        return -EINVAL;
    }
    *port++ = '\0';
    if (bind && (strcmp(port, "*") == 0 || strcmp(port, "0") == 0)) {
        /* the system picks */
    } else {
        errno = 0;
        long p = strtol(port, &end, 10);
        if (errno || end == port || *end || p < 1 || p > 65535) {
            snprintf(err, errlen, "\"%.*s\": the port is not a number in 1..65535", (int)n, ep);
            return -EINVAL;
        }
    }
    if (*host == '[') { /* [IPv6] */
        size_t hl = strlen(host);
        if (hl < 3 || host[hl - 1] != ']') {
            snprintf(err, errlen, "\"%s\": an IPv6 address goes in brackets", buf);
            return -EINVAL;
        }
        host[hl - 1] = '\0';
        host++;
    }
    if (bind && (strcmp(host, "*") == 0 || if_nametoindex(host) != 0))
        return 0;
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai = NULL;
    if (bind)
        hints.ai_flags = AI_NUMERICHOST;
    int rc = getaddrinfo(host, NULL, &hints, &ai);
    if (rc != 0 && !bind) {
        /* A name that does not resolve now may resolve later (DNS at boot, a record being
         * changed): ZeroMQ resolves again at each attempt to connect. Said, not refused. */
        snprintf(err, errlen, "tcp://%s: does not resolve now (%s); trying it anyway", host,
                 gai_strerror(rc));
        return 1;
    }
    if (rc != 0) {
        snprintf(err, errlen, "tcp://%s: not \"*\", an address or an interface: %s", host,
                 gai_strerror(rc));
        return -EINVAL;
    }
    freeaddrinfo(ai);
    return 0;
}

const char *og_endpoint_next(const char *p, size_t *len)
{
    p += strspn(p, OG_ENDPOINT_SEPARATORS);
    if (!*p)
        return NULL;
    *len = strcspn(p, OG_ENDPOINT_SEPARATORS);
    return p;
}

int og_endpoint_check(const char *list, bool bind, char *err, size_t errlen)
{
    const char *p = list;
    size_t n;
    int rc = 0, n_ep = 0;

    for (; (p = og_endpoint_next(p, &n)); p += n) {
        int r = endpoint_check(p, n, bind, err, errlen);
        if (r < 0)
            return r;
        if (r > 0)
            rc = r; /* err keeps the first such note, unless an error follows */
        n_ep++;
    }
    if (!n_ep) {
        snprintf(err, errlen, "no endpoint");
        return -EINVAL;
    }
    return rc;
}
