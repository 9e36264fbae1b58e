/* The publishers' connections, as the socket monitor of intake's ROUTER shows them: who
 * connected from where, whose handshake failed and why, and how much each one makes
 * libzmq hold.
 *
 * libzmq bounds a frame (ZMQ_MAXMSGSIZE) and the whole messages queued per connection
 * (ZMQ_RCVHWM), but not a message still arriving: it keeps every part until the last one
 * comes, and one that never comes costs memory without end (PITFALLS.md), in a thread
 * intake cannot see into. Nor does a ROUTER let its owner close one connection. So intake
 * keeps a duplicate of each accepted connection's descriptor (the same socket, whatever
 * libzmq later does with its own descriptor number) and compares what the kernel says
 * libzmq has read from it (TCP_INFO) with what intake has read from it as whole messages.
 * A connection whose difference grows past hold_max, or the one that holds the most when
 * intake's resident memory passes memory_max, is shut down from here: libzmq sees the
 * connection end and frees what it held for it. Unix sockets have no byte counters: the
 * memory bound covers them, dropping the connection that sent no whole message for the
 * longest.
 *
 * Limits: what a message still arriving costs libzmq depends on its frames (a 1-byte
 * frame takes a 64-byte slot), so hold_max in bytes received bounds it only to within
 * about 20 times; memory_max is the bound that holds. A descriptor number libzmq closed
 * and reused before its "accepted" event was read would be taken for the new connection,
 * which is then the one measured: rare, and harmless. */
#include "intake.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/tcp.h>
#include <malloc.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uthash.h>
#include <zmq.h>

#include "log.h"
#include "util.h"

/* Bytes a second a connection may send that never become a message: heartbeats (a PING
 * and a PONG a second, at most about 50 bytes each with CURVE) and what the estimate of
 * the framing misses. */
#define LEAK_PER_S 256
/* How often every connection is looked at; sooner when resident memory grew by GROWTH. */
#define CHECK_US 100000
#define GROWTH   (2u << 20)
/* Not ours to drop for holding when it holds less than this. */
#define HOLD_FLOOR (64u << 10)
/* Per-message framing, estimated high: a frame's header is 2 or 9 bytes, and CURVE wraps
 * each frame in a MESSAGE command (its name, a nonce, a MAC and a flags byte). */
#define FRAME_BYTES       9
#define CURVE_FRAME_BYTES (9 + 8 + 8 + 16 + 1)
/* TCP states (linux/tcp.h does not define them for user space). */
#define ST_ESTABLISHED 1

struct conn {
    UT_hash_handle hh; /* by fd */
    int fd;            /* libzmq's descriptor */
    int own;           /* ours: a duplicate of it */
    bool tcp;
    char addr[64];       /* the peer's address, as the log names it */
    int64_t since;       /* accepted (og_mono_us) */
    int64_t last_msg;    /* the last whole message intake read from it, or since */
    uint64_t consumed;   /* bytes libzmq had read from it at the last check */
    uint64_t delivered;  /* bytes read as whole messages since the last check */
    uint64_t level;      /* read by libzmq, not (yet) delivered, less the leak */
    const char *dropped; /* why intake shut it down, or NULL */
};

struct og_peers {
    struct og_peers_opts o;
    struct og_zmonitor *monitor;
    struct conn *conns;
    struct og_ratelimit *said; /* what was logged about which address */
    /* A handshake failure, for the disconnect of the same connection that follows it. */
    struct og_zevent failure;
    bool have_failure;
    int statm; /* /proc/self/statm, or -1 */
    long page; /* bytes */
    int64_t last_check, last_trim;
    size_t rss_at_check;
    /* A connection dropped for memory: until libzmq has freed what it held (its end is
     * reported) no other is dropped for memory, unless resident memory grew by GROWTH
     * more meanwhile (rss_at_drop); then the freed memory is given back. */
    int64_t freeing_since;
    size_t rss_at_drop;
    bool trim;
    struct og_peers_stats stats;
};

/* Resident memory, from /proc/self/statm (cheap: mallinfo2 walks every free chunk, and
 * took 12 ms with a fragmented heap). 0 when unknown. */
static size_t resident(struct og_peers *p)
{
    char buf[128];
    unsigned long size, pages;
    ssize_t n = p->statm >= 0 ? pread(p->statm, buf, sizeof(buf) - 1, 0) : -1;
    if (n <= 0)
        return 0;
    buf[n] = '\0';
    if (sscanf(buf, "%lu %lu", &size, &pages) != 2)
        return 0;
    return (size_t)pages * (size_t)p->page;
}

struct og_peers *og_peers_new(void *ctx, void *router, const struct og_peers_opts *o, char *err,
                              size_t errlen)
{
    struct og_peers *p = calloc(1, sizeof(*p));
    int events = ZMQ_EVENT_ACCEPTED | ZMQ_EVENT_DISCONNECTED |
                 ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |
                 ZMQ_EVENT_HANDSHAKE_FAILED_AUTH | ZMQ_EVENT_HANDSHAKE_SUCCEEDED;

    if (!p || !(p->said = og_ratelimit_new(4096, 30, 60000000))) {
        snprintf(err, errlen, "out of memory");
        free(p);
        return NULL;
    }
    p->o = *o;
    p->statm = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
    p->page = sysconf(_SC_PAGESIZE);
    p->monitor = og_zmonitor_new_events(ctx, router, events, err, errlen);
    if (!p->monitor) {
        if (p->statm >= 0)
            close(p->statm);
        og_ratelimit_destroy(&p->said);
        free(p);
        return NULL;
    }
    return p;
}

static void forget(struct og_peers *p, struct conn *c)
{
    HASH_DEL(p->conns, c);
    close(c->own);
    free(c);
}

void og_peers_destroy(struct og_peers **pp, void *router)
{
    struct og_peers *p = *pp;
    struct conn *c, *tmp;
    if (!p)
        return;
    og_zmonitor_destroy(&p->monitor, router);
    HASH_ITER(hh, p->conns, c, tmp)
    {
        forget(p, c);
    }
    og_ratelimit_destroy(&p->said);
    if (p->statm >= 0)
        close(p->statm);
    free(p);
    *pp = NULL;
}

void *og_peers_socket(const struct og_peers *p)
{
    return og_zmonitor_socket(p->monitor);
}

bool og_peers_pressed(const struct og_peers *p)
{
    return p->o.memory_max && p->rss_at_check > p->o.memory_max / 2;
}

const struct og_peers_stats *og_peers_stats(const struct og_peers *p)
{
    return &p->stats;
}

/* Logs (at prio) what happened with the peer at addr, once a minute per (what, addr). */
static void say(struct og_peers *p, int prio, const char *what, const char *addr, int64_t now,
                const char *fmt, ...) __attribute__((format(printf, 6, 7)));
static void say(struct og_peers *p, int prio, const char *what, const char *addr, int64_t now,
                const char *fmt, ...)
{
    char key[128], line[512], more[96] = "";
    uint64_t repeats, dropped;
    va_list ap;

    snprintf(key, sizeof(key), "%s %s", what, addr);
    if (!og_ratelimit_allow(p->said, key, now, &repeats, &dropped))
        return;
    va_start(ap, fmt);
    og_safe_vformat(line, sizeof(line), fmt, ap);
    va_end(ap);
    if (repeats || dropped)
        snprintf(more, sizeof(more), " (%llu more like it since; %llu other lines not logged)",
                 (unsigned long long)repeats, (unsigned long long)dropped);
    og_log(prio, "%s%s", line, more);
}

/* The peer's address for the log and for rate limits: its IP address (a reconnecting
 * peer gets a new port each time), or the local process behind a unix socket. */
static void peer_name(int fd, bool *tcp, char *buf, size_t size)
{
    struct sockaddr_storage sa;
    socklen_t len = sizeof(sa);
    char ip[INET6_ADDRSTRLEN] = "?";

    *tcp = false;
    snprintf(buf, size, "an unknown peer");
    if (getpeername(fd, (struct sockaddr *)&sa, &len) != 0)
        return;
    if (sa.ss_family == AF_INET) {
        inet_ntop(AF_INET, &((struct sockaddr_in *)&sa)->sin_addr, ip, sizeof(ip));
        snprintf(buf, size, "%s", ip);
        *tcp = true;
    } else if (sa.ss_family == AF_INET6) {
        inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&sa)->sin6_addr, ip, sizeof(ip));
        snprintf(buf, size, "%s", ip);
        *tcp = true;
    } else if (sa.ss_family == AF_UNIX) {
        struct ucred cred;
        socklen_t clen = sizeof(cred);
        if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen) == 0)
            snprintf(buf, size, "local process %d (uid %u)", (int)cred.pid, (unsigned)cred.uid);
        else
            snprintf(buf, size, "a local process");
    }
}

static void drop(struct og_peers *p, struct conn *c, const char *why)
{
    shutdown(c->own, SHUT_RDWR);
    c->dropped = why;
    p->stats.dropped++;
}

static void accepted(struct og_peers *p, int fd, int64_t now)
{
    struct conn *c;
    HASH_FIND_INT(p->conns, &fd, c);
    if (c) /* a descriptor number used again: the old connection is gone */
        forget(p, c);
    c = calloc(1, sizeof(*c));
    /* A duplicate made before libzmq could close fd and use its number again would be
     * another connection's: rare (the event comes at once), and then counted for that one. */
    if (!c || (c->own = fcntl(fd, F_DUPFD_CLOEXEC, 0)) < 0) {
        if (c && errno != EBADF) /* EBADF: it is gone already */
            say(p, LOG_WARNING, "untracked", "intake", now,
                "cannot keep track of a publisher connection: %s", strerror(errno));
        free(c);
        return;
    }
    c->fd = fd;
    c->since = c->last_msg = now;
    peer_name(c->own, &c->tcp, c->addr, sizeof(c->addr));
    HASH_ADD_INT(p->conns, fd, c);
    p->stats.connections = HASH_COUNT(p->conns);
    /* Each connection costs libzmq about 25 KiB before it sends anything. Those dropped
     * already (their end not yet reported) do not count. */
    size_t from_addr = 0, open = 0;
    struct conn *o, *tmp;
    HASH_ITER(hh, p->conns, o, tmp)
    {
        open += !o->dropped;
        from_addr += !o->dropped && strcmp(o->addr, c->addr) == 0;
    }
    if (open > p->o.max_connections) {
        drop(p, c, "too many");
        say(p, LOG_WARNING, "connections", c->addr, now,
            "refusing a connection from %s: intake has %zu open, the most it keeps (what "
            "max_memory_mb = %zu holds)",
            c->addr, p->o.max_connections, p->o.memory_mb);
    } else if (c->tcp && from_addr > p->o.max_per_address) {
        drop(p, c, "too many");
        say(p, LOG_WARNING, "connections", c->addr, now,
            "refusing a connection from %s: %zu are open from there, the most intake keeps "
            "from one address",
            c->addr, p->o.max_per_address);
    }
}

/* Why a handshake failed, for the log. NULL: said already (the ZAP handler). */
static const char *failure_text(const struct og_peers *p, const struct og_zevent *f, char *buf,
                                size_t size)
{
    if (f->event == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH)
        return NULL;
    if (f->event == ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL) {
        snprintf(buf, size, "its handshake did not complete (%s)", strerror((int)f->value));
        return buf;
    }
    switch (f->value) {
    case ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH:
        return p->o.curve ? "it does not use CURVE, which intake requires of publishers"
                          : "it asks for a security mechanism (CURVE?) intake does not use";
    case ZMQ_PROTOCOL_ERROR_ZMTP_CRYPTOGRAPHIC:
        return "its CURVE handshake failed (the wrong server key?)";
    default:
        snprintf(buf, size, "ZMTP protocol error 0x%08x in its handshake", (unsigned)f->value);
        return buf;
    }
}

static void disconnected(struct og_peers *p, int fd, const struct og_zevent *failure, int64_t now)
{
    struct conn *c;
    char buf[160];
    HASH_FIND_INT(p->conns, &fd, c);
    if (failure) {
        /* A handshake that fails at once (a client without CURVE is refused at the
         * greeting, microseconds after the accept) is often over before intake reads the
         * "accepted" event, and its address is lost with it. */
        const char *why = failure_text(p, failure, buf, sizeof(buf));
        const char *addr =
            c ? c->addr : "an address intake did not see (the connection ended at once)";
        p->stats.refused++;
        /* Once a minute per address and kind of failure: a client without CURVE must not
         * hide, for a minute, that a publisher from the same host has the wrong server key
         * (review). */
        char kind[48];
        snprintf(kind, sizeof(kind), "handshake %u %llx", failure->event,
                 (unsigned long long)failure->value);
        if (why)
            say(p, failure->event == ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL ? LOG_INFO : LOG_WARNING,
                kind, c ? c->addr : "?", now, "refusing a connection from %s: %s", addr, why);
    }
    if (!c) {
        /* Gone before intake could track it: libzmq dropped it at once (a loaded intake
         * reads the "accepted" event late, and the descriptor is closed by then). Only a
         * drop does that to a connection intake did not refuse itself. */
        if (!failure) {
            p->stats.dropped++;
            say(p, LOG_WARNING, "ended", "?", now,
                "dropped a connection intake did not get to see: a frame of more than %lld "
                "bytes (max_event_bytes is %zu) or a ZMTP protocol error at once",
                (long long)p->o.maxmsg, p->o.max_event_bytes);
        }
        return;
    }
    if (!failure && !c->dropped && c->tcp) {
        /* Who ended it? While we hold our duplicate, a connection libzmq closed is still
         * established for the kernel unless the peer closed or reset it. */
        struct tcp_info ti;
        socklen_t len = sizeof(ti);
        if (getsockopt(c->own, IPPROTO_TCP, TCP_INFO, &ti, &len) == 0 &&
            ti.tcpi_state == ST_ESTABLISHED) {
            p->stats.dropped++;
            if (ti.tcpi_last_data_recv >= 4500)
                say(p, LOG_WARNING, "silent", c->addr, now,
                    "dropped the connection from %s: nothing came from it for %u s", c->addr,
                    (unsigned)(ti.tcpi_last_data_recv / 1000));
            else
                say(p, LOG_WARNING, "ended", c->addr, now,
                    "dropped the connection from %s: a frame of more than %lld bytes "
                    "(max_event_bytes is %zu), a ZMTP protocol error, or a newer connection "
                    "took its routing id",
                    c->addr, (long long)p->o.maxmsg, p->o.max_event_bytes);
        }
    }
    if (c->dropped) {
        /* What libzmq held for it is freed now: give it back (og_peers_check). */
        p->trim = true;
        if (strcmp(c->dropped, "memory") == 0)
            p->freeing_since = 0;
    }
    forget(p, c);
    p->stats.connections = HASH_COUNT(p->conns);
}

void og_peers_events(struct og_peers *p, int64_t now)
{
    struct og_zevent ev;
    while (og_zmonitor_next(p->monitor, &ev)) {
        /* libzmq reports a failed handshake and then, at once and from the same thread,
         * the end of that connection: the failure belongs to the next event only. */
        bool have = p->have_failure;
        struct og_zevent failure = p->failure;
        p->have_failure = false;
        switch (ev.event) {
        case ZMQ_EVENT_ACCEPTED:
            accepted(p, (int)ev.value, now);
            break;
        case ZMQ_EVENT_DISCONNECTED:
            disconnected(p, (int)ev.value, have ? &failure : NULL, now);
            break;
        case ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL:
        case ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL:
        case ZMQ_EVENT_HANDSHAKE_FAILED_AUTH:
            p->failure = ev;
            p->have_failure = true;
            break;
        default:
            break;
        }
    }
}

void og_peers_read(struct og_peers *p, int fd, size_t parts, size_t bytes, int64_t now)
{
    struct conn *c;
    HASH_FIND_INT(p->conns, &fd, c);
    if (!c)
        return;
    /* The ROUTER's first part (the routing id) never was on the wire. */
    c->delivered += bytes + parts * (p->o.curve ? CURVE_FRAME_BYTES : FRAME_BYTES);
    c->last_msg = now;
}

/* Brings c->level up to date; false when the kernel has no counters for it. */
static bool measure(struct og_peers *p, struct conn *c, int64_t dt)
{
    struct tcp_info ti;
    socklen_t len = sizeof(ti);
    int unread = 0;

    if (!c->tcp || getsockopt(c->own, IPPROTO_TCP, TCP_INFO, &ti, &len) != 0 ||
        len < offsetof(struct tcp_info, tcpi_bytes_received) + sizeof(ti.tcpi_bytes_received))
        return false;
    /* What libzmq took: what came in, less what still waits in the kernel's buffer. */
    ioctl(c->own, FIONREAD, &unread);
    if (unread > 0 && (uint64_t)unread > ti.tcpi_bytes_received)
        return true; /* a count that does not add up (the connection is ending): next time */
    uint64_t consumed = ti.tcpi_bytes_received - (unread > 0 ? (uint64_t)unread : 0);
    uint64_t leak = c->delivered + (uint64_t)(LEAK_PER_S * dt / 1000000);
    c->level += consumed > c->consumed ? consumed - c->consumed : 0;
    c->level = c->level > leak ? c->level - leak : 0;
    c->consumed = consumed;
    c->delivered = 0;
    (void)p;
    return true;
}

/* Resident memory past memory_max, beside what intake holds knowingly. */
static bool over_bound(const struct og_peers *p, size_t rss, size_t accounted)
{
    return p->o.memory_max && rss > p->o.memory_max + accounted;
}

void og_peers_check(struct og_peers *p, int64_t now, size_t accounted)
{
    size_t rss = resident(p);
    struct conn *c, *tmp, *most = NULL, *stalest = NULL;
    int64_t dt = now - p->last_check;

    /* What libzmq freed for a dropped connection stays in malloc's free lists, resident,
     * unless given back; malloc_trim walks those lists, so at most 4 times a second, or 50
     * while over the bound: several connections growing at once (six sending 1-byte frames
     * took intake 27 MiB past max_memory_mb) must not wait a quarter of a second each. */
    if (p->trim && now - p->last_trim >= (over_bound(p, rss, accounted) ? 20000 : 250000)) {
        malloc_trim(0);
        p->trim = false;
        p->last_trim = now;
        rss = resident(p);
    }
    /* Judged once what was freed is given back. */
    bool over = over_bound(p, rss, accounted) && !p->trim;
    if (dt < CHECK_US && rss < p->rss_at_check + GROWTH && !over)
        return;
    p->last_check = now;
    p->rss_at_check = rss;
    HASH_ITER(hh, p->conns, c, tmp)
    {
        if (c->dropped)
            continue;
        if (measure(p, c, dt) && c->level > p->o.hold_max) {
            drop(p, c, "holding");
            say(p, LOG_WARNING, "holding", c->addr, now,
                "dropping the connection from %s: it sent %llu bytes that are not a whole "
                "message (at most %llu may wait): a message that never ends, or too many parts",
                c->addr, (unsigned long long)c->level, (unsigned long long)p->o.hold_max);
            continue;
        }
        if (!most || c->level > most->level)
            most = c;
        if (!stalest || c->last_msg < stalest->last_msg)
            stalest = c;
    }
    /* Over the bound: one connection at a time, and the next only once libzmq freed what
     * the last one held (or a second later, if its end is not reported), or at once if
     * memory still grows: others are sending too. */
    if (!over ||
        (p->freeing_since && now - p->freeing_since < 1000000 && rss < p->rss_at_drop + GROWTH))
        return;
    p->freeing_since = 0;
    if (most && most->level >= HOLD_FLOOR) {
        drop(p, most, "memory");
        p->freeing_since = now;
        p->rss_at_drop = rss;
        say(p, LOG_WARNING, "memory", most->addr, now,
            "dropping the connection from %s: intake's resident memory is %zu MiB, over "
            "max_memory_mb (%zu), and it holds the most (%llu bytes that are not a whole message)",
            most->addr, rss >> 20, p->o.memory_max >> 20, (unsigned long long)most->level);
    } else if (stalest && now - stalest->last_msg > 1000000) {
        drop(p, stalest, "memory");
        p->freeing_since = now;
        p->rss_at_drop = rss;
        say(p, LOG_WARNING, "memory", stalest->addr, now,
            "dropping the connection from %s: intake's resident memory is %zu MiB, over "
            "max_memory_mb (%zu), and it sent no whole message for the longest (%lld s)",
            stalest->addr, rss >> 20, p->o.memory_max >> 20,
            (long long)((now - stalest->last_msg) / 1000000));
    } else {
        say(p, LOG_WARNING, "memory", "intake", now,
            "intake's resident memory is %zu MiB, over max_memory_mb (%zu), and no publisher "
            "connection holds much",
            rss >> 20, p->o.memory_max >> 20);
    }
}
