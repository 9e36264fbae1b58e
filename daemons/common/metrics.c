#include "metrics.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <json-c/json.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "onegrid/v1/event.pb-c.h"
#include "util.h"

enum type { COUNTER, GAUGE, HISTOGRAM };
static const char *const type_names[] = {"counter", "gauge", "histogram"};

#define MAX_BUCKETS 24

struct family {
    char *name, *help;
    enum type type;
    double bounds[MAX_BUCKETS];
    size_t n_bounds;
    struct og_metric *series, *last;
    struct family *next;
};

struct og_metric {
    struct family *family;
    char *labels;
    _Atomic int64_t value; /* counter or gauge */
    /* histogram: counts per bucket (the last: above every bound), and the sum's bits */
    _Atomic uint64_t buckets[MAX_BUCKETS + 1];
    _Atomic uint64_t sum_bits;
    struct og_metric *next;
};

/* The registry: families in the order they were registered. */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct family *families, *last_family;

static _Atomic int64_t loop_at;    /* og_mono_us() of the last og_metrics_loop, or 0 */
static _Atomic int64_t error_time; /* wall-clock seconds of the last og_metrics_error, or 0 */
static char error_text[256];       /* under lock */

static struct family *find_family(const char *name)
{
    for (struct family *f = families; f; f = f->next)
        if (strcmp(f->name, name) == 0)
            return f;
    return NULL;
}

static struct og_metric *add(const char *name, const char *labels, const char *help, enum type type,
                             const double *bounds, size_t n)
{
    struct og_metric *m = NULL;
    struct family *f;

    if (!labels)
        labels = "";
    if (n > MAX_BUCKETS)
        return NULL;
    pthread_mutex_lock(&lock);
    f = find_family(name);
    if (f && f->type != type)
        goto out;
    if (!f) {
        if (!(f = calloc(1, sizeof(*f))) || !(f->name = strdup(name)) ||
            !(f->help = strdup(help ? help : name))) {
            if (f)
                free(f->name);
            free(f);
            goto out;
        }
        f->type = type;
        f->n_bounds = n;
        if (n)
            memcpy(f->bounds, bounds, n * sizeof(*bounds));
        if (last_family)
            last_family->next = f;
        else
            families = f;
        last_family = f;
    }
    for (m = f->series; m; m = m->next)
        if (strcmp(m->labels, labels) == 0)
            goto out;
    if (!(m = calloc(1, sizeof(*m))) || !(m->labels = strdup(labels))) {
        free(m);
        m = NULL;
        goto out;
    }
    m->family = f;
    if (f->last)
        f->last->next = m;
    else
        f->series = m;
    f->last = m;
out:
    pthread_mutex_unlock(&lock);
    return m;
}

struct og_metric *og_metrics_counter(const char *name, const char *labels, const char *help)
{
    return add(name, labels, help, COUNTER, NULL, 0);
}

struct og_metric *og_metrics_gauge(const char *name, const char *labels, const char *help)
{
    return add(name, labels, help, GAUGE, NULL, 0);
}

struct og_metric *og_metrics_histogram(const char *name, const char *labels, const char *help,
                                       const double *bounds, size_t n)
{
    return add(name, labels, help, HISTOGRAM, bounds, n);
}

void og_metrics_inc(struct og_metric *c)
{
    if (c)
        atomic_fetch_add_explicit(&c->value, 1, memory_order_relaxed);
}

void og_metrics_add(struct og_metric *c, uint64_t n)
{
    if (c)
        atomic_fetch_add_explicit(&c->value, (int64_t)n, memory_order_relaxed);
}

void og_metrics_counter_set(struct og_metric *c, uint64_t v)
{
    if (c)
        atomic_store_explicit(&c->value, (int64_t)v, memory_order_relaxed);
}

void og_metrics_set(struct og_metric *g, int64_t v)
{
    if (g)
        atomic_store_explicit(&g->value, v, memory_order_relaxed);
}

int64_t og_metrics_value(const struct og_metric *m)
{
    return m ? atomic_load_explicit(&m->value, memory_order_relaxed) : 0;
}

void og_metrics_observe(struct og_metric *h, double v)
{
    size_t i = 0;
    uint64_t old, new;
    double sum;

    if (!h)
        return;
    while (i < h->family->n_bounds && v > h->family->bounds[i])
        i++;
    atomic_fetch_add_explicit(&h->buckets[i], 1, memory_order_relaxed);
    old = atomic_load_explicit(&h->sum_bits, memory_order_relaxed);
    do {
        memcpy(&sum, &old, sizeof(sum));
        sum += v;
        memcpy(&new, &sum, sizeof(new));
    } while (!atomic_compare_exchange_weak_explicit(&h->sum_bits, &old, new, memory_order_relaxed,
                                                    memory_order_relaxed));
}

void og_metrics_by_reason(struct og_metric **out, const char *name, const char *labels,
                          const char *help)
{
    const ProtobufCEnumDescriptor *d = &onegrid__v1__reason__descriptor;

    memset(out, 0, OG_METRICS_REASONS * sizeof(*out));
    for (unsigned i = 0; i < d->n_values; i++) {
        const ProtobufCEnumValue *v = &d->values[i];
        char reason[64], all[256];
        size_t k = 0;
        if (v->value < 0 || v->value >= OG_METRICS_REASONS)
            continue;
        /* REASON_TOO_LARGE -> too_large */
        for (const char *c = v->name + strlen("REASON_"); *c && k + 1 < sizeof(reason); c++)
            reason[k++] = (char)tolower((unsigned char)*c);
        reason[k] = '\0';
        snprintf(all, sizeof(all), "%s%sreason=\"%s\"", labels ? labels : "",
                 labels && *labels ? "," : "", reason);
        out[v->value] = og_metrics_counter(name, all, help);
    }
}

struct og_metric *og_metrics_reason(struct og_metric **out, int r)
{
    return out[r > 0 && r < OG_METRICS_REASONS && out[r] ? r : 0];
}

void og_metrics_loop(void)
{
    atomic_store_explicit(&loop_at, og_mono_us(), memory_order_relaxed);
}

void og_metrics_error(const char *text)
{
    pthread_mutex_lock(&lock);
    /* Served in /health's JSON: cut on a character boundary, not in the middle of one (a
     * database's message in Chinese), and nothing that is not text. */
    og_utf8_safe((const uint8_t *)text, strlen(text), error_text, sizeof(error_text));
    pthread_mutex_unlock(&lock);
    atomic_store_explicit(&error_time, (int64_t)time(NULL), memory_order_relaxed);
}

/* Links ------------------------------------------------------------------------------- */

static struct og_metric *link_metric(bool counter, const char *name, const char *side,
                                     const char *peer, const char *help)
{
    char labels[128];
    snprintf(labels, sizeof(labels), "side=\"%s\",peer=\"%s\"", side, peer);
    return counter ? og_metrics_counter(name, labels, help) : og_metrics_gauge(name, labels, help);
}

static void link_init(struct og_metrics_link *ml, const char *side, const char *peer)
{
    memset(ml, 0, sizeof(*ml));
    ml->credit = link_metric(false, "onegrid_link_credit", side, peer,
                             "Frames a sender may have unanswered on the link (client: granted "
                             "by the server, 0 until it answered HELLO; server: what it grants)");
    ml->bad_frames = link_metric(true, "onegrid_link_bad_frames_total", side, peer,
                                 "Frames received on the link that could not be decoded");
    if (strcmp(side, "client") == 0) {
        ml->queued = link_metric(false, "onegrid_link_queued", side, peer,
                                 "Frames held by the link client and not sent yet");
        ml->in_flight = link_metric(false, "onegrid_link_in_flight", side, peer,
                                    "Frames sent on the link and not answered yet");
        ml->connected = link_metric(false, "onegrid_link_connected", side, peer,
                                    "1 while the server has granted credit (the link is up)");
        ml->sent = link_metric(true, "onegrid_link_sent_total", side, peer,
                               "Frames sent on the link for the first time");
        ml->resent = link_metric(true, "onegrid_link_resent_total", side, peer,
                                 "Frames sent again on the link after a timeout or reconnect");
        ml->send_failures = link_metric(true, "onegrid_link_send_failures_total", side, peer,
                                        "Sends the socket refused (tried again later)");
        ml->reconnects = link_metric(true, "onegrid_link_reconnects_total", side, peer,
                                     "Connections to the server made again");
    } else {
        ml->forgotten = link_metric(true, "onegrid_link_senders_forgotten_total", side, peer,
                                    "Senders of keys the server forgot for room (they resend)");
    }
}

void og_metrics_link_client_init(struct og_metrics_link *ml, const char *peer)
{
    link_init(ml, "client", peer);
}

void og_metrics_link_client_update(struct og_metrics_link *ml, const struct og_link_client *c)
{
    const struct og_link_stats *st = og_link_client_stats(c);
    size_t in_flight = og_link_client_inflight(c);

    og_metrics_set(ml->in_flight, (int64_t)in_flight);
    og_metrics_set(ml->queued, (int64_t)(og_link_client_held(c) - in_flight));
    og_metrics_set(ml->credit, (int64_t)og_link_client_credit(c));
    /* Credit stays granted until the next connection asks again: the connection is up
     * while every disconnect was followed by a reconnect (one endpoint). */
    og_metrics_set(ml->connected, og_link_client_connected(c) && st->disconnects <= st->reconnects);
    og_metrics_counter_set(ml->sent, st->sent);
    og_metrics_counter_set(ml->resent, st->resent);
    og_metrics_counter_set(ml->send_failures, st->send_fail);
    og_metrics_counter_set(ml->reconnects, st->reconnects);
    og_metrics_counter_set(ml->bad_frames, st->bad_frames);
}

void og_metrics_link_server_init(struct og_metrics_link *ml, const char *peer)
{
    link_init(ml, "server", peer);
}

void og_metrics_link_server_update(struct og_metrics_link *ml, const struct og_link_server *s)
{
    const struct og_link_stats *st = og_link_server_stats(s);
    og_metrics_set(ml->credit, og_link_server_credit(s));
    og_metrics_counter_set(ml->bad_frames, st->bad_frames);
    og_metrics_counter_set(ml->forgotten, st->forgotten);
}

/* Rendering --------------------------------------------------------------------------- */

struct buf {
    char *p;
    size_t len, cap;
    bool failed;
};

static void put(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(struct buf *b, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (b->failed)
        return;
    for (;;) {
        va_start(ap, fmt);
        n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->failed = true;
            return;
        }
        if ((size_t)n < b->cap - b->len) {
            b->len += (size_t)n;
            return;
        }
        size_t cap = b->cap * 2 + (size_t)n;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->failed = true;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
}

/* A number as the exposition format writes it. */
static void put_double(struct buf *b, double v)
{
    /* The range first: converting NaN or a value beyond int64_t is undefined. */
    if (v < 9e15 && v > -9e15 && v == (double)(int64_t)v)
        put(b, "%lld", (long long)v);
    else
        put(b, "%.15g", v);
}

static void put_series(struct buf *b, const char *name, const char *suffix, const char *labels,
                       const char *extra)
{
    bool any = *labels || (extra && *extra);
    put(b, "%s%s", name, suffix);
    if (any)
        put(b, "{%s%s%s}", labels, *labels && extra && *extra ? "," : "", extra ? extra : "");
    put(b, " ");
}

static void render_histogram(struct buf *b, const struct family *f, struct og_metric *m)
{
    uint64_t total = 0, bits = atomic_load_explicit(&m->sum_bits, memory_order_relaxed);
    char le[48];
    double sum;

    /* Each bucket is read once, and the count is the sum of what was read: the +Inf
     * bucket and _count agree even while the daemon's thread observes. */
    for (size_t i = 0; i <= f->n_bounds; i++) {
        total += atomic_load_explicit(&m->buckets[i], memory_order_relaxed);
        if (i < f->n_bounds)
            snprintf(le, sizeof(le), "le=\"%.15g\"", f->bounds[i]);
        else
            snprintf(le, sizeof(le), "le=\"+Inf\"");
        put_series(b, f->name, "_bucket", m->labels, le);
        put(b, "%llu\n", (unsigned long long)total);
    }
    memcpy(&sum, &bits, sizeof(sum));
    put_series(b, f->name, "_sum", m->labels, NULL);
    put_double(b, sum);
    put(b, "\n");
    put_series(b, f->name, "_count", m->labels, NULL);
    put(b, "%llu\n", (unsigned long long)total);
}

/* Resident and virtual memory from /proc/self/statm (pages). 0 or -errno. */
static int read_statm(uint64_t *rss, uint64_t *vsz)
{
    unsigned long long size, resident;
    long page = sysconf(_SC_PAGESIZE);
    FILE *f = fopen("/proc/self/statm", "re");
    int n;

    if (!f)
        return -errno;
    n = fscanf(f, "%llu %llu", &size, &resident);
    fclose(f);
    if (n != 2 || page <= 0)
        return -EIO;
    *rss = resident * (uint64_t)page;
    *vsz = size * (uint64_t)page;
    return 0;
}

/* Gauges whose value is read when scraped, not set by the daemon. */
static struct og_metric *rss, *vsz, *uptime, *loop_stall, *last_error;
static int64_t started_mono;

static void collect(void)
{
    uint64_t r = 0, v = 0;
    int64_t now = og_mono_us(), at = atomic_load_explicit(&loop_at, memory_order_relaxed);

    if (read_statm(&r, &v) == 0) {
        og_metrics_set(rss, (int64_t)r);
        og_metrics_set(vsz, (int64_t)v);
    }
    og_metrics_set(uptime, (now - started_mono) / 1000000);
    og_metrics_set(loop_stall, at ? (now - at) / 1000000 : 0);
    og_metrics_set(last_error, atomic_load_explicit(&error_time, memory_order_relaxed));
}

char *og_metrics_render(size_t *len)
{
    struct buf b = {.cap = 16384};

    if (!(b.p = malloc(b.cap)))
        return NULL;
    b.p[0] = '\0';
    collect();
    pthread_mutex_lock(&lock);
    for (const struct family *f = families; f; f = f->next) {
        put(&b, "# HELP %s %s\n# TYPE %s %s\n", f->name, f->help, f->name, type_names[f->type]);
        for (struct og_metric *m = f->series; m; m = m->next) {
            if (f->type == HISTOGRAM) {
                render_histogram(&b, f, m);
                continue;
            }
            put_series(&b, f->name, "", m->labels, NULL);
            put(&b, "%lld\n", (long long)atomic_load_explicit(&m->value, memory_order_relaxed));
        }
    }
    pthread_mutex_unlock(&lock);
    if (b.failed) {
        free(b.p);
        return NULL;
    }
    *len = b.len;
    return b.p;
}

/* Server ------------------------------------------------------------------------------ */

/* Connections served at once, and how long one may stay idle: a scraper needs one, and
 * `onegridctl status` another. When they are all taken, the peer address holding the most
 * of them gives up the one whose last request (or connect) came longest ago for a new one
 * (see on_connection): the idle timeout alone does not end one that sends a byte every few
 * seconds, and four of those held the server (review). */
#define MAX_CONNECTIONS 8
#define TIMEOUT_S       5
/* libmicrohttpd's own limit: room for the new connection while the ones made to leave
 * close. */
#define MHD_CONNECTIONS (2 * MAX_CONNECTIONS)

struct slot {
    int fd;           /* -1: free */
    bool leaving;     /* shut down to make room; closes at libmicrohttpd's next turn */
    int64_t since_us; /* accepted, or its last request came */
    uint8_t addr[16]; /* the peer's address (not its port): addr_len bytes */
    uint8_t addr_len;
};

/* The address (IPv4: 4 bytes, IPv6: 16; else none) of a connection's peer into slot t. */
static void peer_address(struct MHD_Connection *conn, struct slot *t)
{
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    const struct sockaddr *sa = info ? info->client_addr : NULL;
    t->addr_len = 0;
    if (sa && sa->sa_family == AF_INET) {
        memcpy(t->addr, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, 4);
        t->addr_len = 4;
    } else if (sa && sa->sa_family == AF_INET6) {
        memcpy(t->addr, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, 16);
        t->addr_len = 16;
    }
}

static bool same_peer(const struct slot *a, const struct slot *b)
{
    return a->addr_len == b->addr_len && memcmp(a->addr, b->addr, a->addr_len) == 0;
}

struct og_metrics_server {
    struct MHD_Daemon *mhd;
    char daemon[32];
    struct slot slots[MHD_CONNECTIONS]; /* only libmicrohttpd's thread touches them */
    struct og_metric *dropped;
};

/* Splits "HOST:PORT" / "[V6]:PORT" into a socket address. 0 or -EINVAL. */
static int parse_listen(const char *listen, struct sockaddr_storage *ss, socklen_t *sslen,
                        bool *loopback)
{
    char host[64];
    const char *colon, *start = listen, *end;
    char *portend;
    long port;

    if (*listen == '[') {
        start = listen + 1;
        if (!(end = strchr(start, ']')) || end[1] != ':')
            return -EINVAL;
        colon = end + 1;
    } else {
        if (!(colon = strrchr(listen, ':')))
            return -EINVAL;
        end = colon;
    }
    if ((size_t)(end - start) >= sizeof(host) || end == start)
        return -EINVAL;
    memcpy(host, start, (size_t)(end - start));
    host[end - start] = '\0';
    errno = 0;
    port = strtol(colon + 1, &portend, 10);
    if (errno || portend == colon + 1 || *portend || port < 1 || port > 65535)
        return -EINVAL;
    memset(ss, 0, sizeof(*ss));
    if (*listen != '[') {
        struct sockaddr_in *in = (struct sockaddr_in *)ss;
        if (inet_pton(AF_INET, host, &in->sin_addr) != 1)
            return -EINVAL;
        in->sin_family = AF_INET;
        in->sin_port = htons((uint16_t)port);
        *sslen = sizeof(*in);
        *loopback = (ntohl(in->sin_addr.s_addr) >> 24) == 127;
    } else {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
        if (inet_pton(AF_INET6, host, &in6->sin6_addr) != 1)
            return -EINVAL;
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons((uint16_t)port);
        *sslen = sizeof(*in6);
        *loopback = IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr);
    }
    return 0;
}

int og_metrics_check_listen(const char *listen, bool allow_remote, char *err, size_t errlen)
{
    struct sockaddr_storage ss;
    socklen_t len;
    bool loopback;

    if (parse_listen(listen, &ss, &len, &loopback) < 0) {
        snprintf(err, errlen,
                 "metrics_listen: \"%s\" is not ADDRESS:PORT (127.0.0.1:9731, [::1]:9731)", listen);
        return -EINVAL;
    }
    if (!loopback && !allow_remote) {
        snprintf(err, errlen,
                 "metrics_listen: \"%s\" is not a loopback address; the metrics have no "
                 "authentication: set metrics_allow_remote = yes to serve them there anyway",
                 listen);
        return -EPERM;
    }
    return 0;
}

static enum MHD_Result respond(struct MHD_Connection *conn, unsigned status, const char *type,
                               char *body, size_t len)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(
        len, body, body ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
    enum MHD_Result rc;

    if (!r) {
        free(body);
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
        MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
    rc = MHD_queue_response(conn, status, r);
    MHD_destroy_response(r);
    return rc;
}

static enum MHD_Result respond_text(struct MHD_Connection *conn, unsigned status, const char *text)
{
    char *body = strdup(text);
    return respond(conn, status, "text/plain; charset=utf-8", body, body ? strlen(body) : 0);
}

/* /health: who answers, and the last error. JSON, for onegridctl status and for people. */
static char *health(const struct og_metrics_server *s, size_t *len)
{
    json_object *o = json_object_new_object();
    char *out = NULL;
    int64_t at = atomic_load_explicit(&loop_at, memory_order_relaxed), now = og_mono_us();

    if (!o)
        return NULL;
    pthread_mutex_lock(&lock);
    json_object_object_add(o, "daemon", json_object_new_string(s->daemon));
    json_object_object_add(o, "version", json_object_new_string(ONEGRID_VERSION));
    json_object_object_add(o, "pid", json_object_new_int64(getpid()));
    json_object_object_add(o, "uptime_seconds",
                           json_object_new_int64((now - started_mono) / 1000000));
    json_object_object_add(o, "loop_stall_seconds",
                           json_object_new_int64(at ? (now - at) / 1000000 : 0));
    json_object_object_add(o, "last_error", json_object_new_string(error_text));
    json_object_object_add(
        o, "last_error_time",
        json_object_new_int64(atomic_load_explicit(&error_time, memory_order_relaxed)));
    pthread_mutex_unlock(&lock);
    const char *text = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
    if (text && (out = malloc(strlen(text) + 2))) {
        *len = (size_t)sprintf(out, "%s\n", text);
    }
    json_object_put(o);
    return out;
}

/* libmicrohttpd's thread, as a connection opens and closes. When MAX_CONNECTIONS are
 * open already, one is shut down for the new one: of the peer address that holds the most
 * (the new one counted for its own address), the one that has waited longest since it
 * connected (or since its last request). A peer that opens connections and sends slowly
 * cannot keep a scraper out: it only loses its oldest connection, and one that connects
 * again each time it is closed loses its own again, not the scraper's, as long as the
 * scraper comes from another address (peers sharing the scraper's address still can:
 * docs/operating.md). */
static void on_connection(void *arg, struct MHD_Connection *conn, void **context,
                          enum MHD_ConnectionNotificationCode code)
{
    struct og_metrics_server *s = arg;
    struct slot *slot = *context, *free_slot = NULL, *victim = NULL, fresh = {.fd = -1};
    size_t open = 0, most = 0;

    if (code == MHD_CONNECTION_NOTIFY_CLOSED) {
        if (slot)
            slot->fd = -1;
        *context = NULL;
        return;
    }
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    peer_address(conn, &fresh);
    for (size_t i = 0; i < MHD_CONNECTIONS; i++) {
        struct slot *t = &s->slots[i];
        if (t->fd < 0) {
            if (!free_slot)
                free_slot = t;
            continue;
        }
        if (t->leaving)
            continue;
        open++;
        size_t held = same_peer(t, &fresh); /* this peer's, the new one included */
        for (size_t j = 0; j < MHD_CONNECTIONS; j++)
            held += s->slots[j].fd >= 0 && !s->slots[j].leaving && same_peer(t, &s->slots[j]);
        if (held > most || (held == most && t->since_us < victim->since_us)) {
            victim = t;
            most = held;
        }
    }
    if (open >= MAX_CONNECTIONS && victim) {
        shutdown(victim->fd, SHUT_RDWR);
        victim->leaving = true;
        og_metrics_inc(s->dropped);
    }
    if (!free_slot || !info)
        return; /* not tracked: cannot happen below libmicrohttpd's own limit */
    fresh.fd = info->connect_fd;
    fresh.since_us = og_mono_us();
    *free_slot = fresh;
    *context = free_slot;
}

static enum MHD_Result handle(void *arg, struct MHD_Connection *conn, const char *url,
                              const char *method, const char *version, const char *upload,
                              size_t *upload_len, void **state)
{
    const struct og_metrics_server *s = arg;
    size_t len = 0;
    char *body;

    (void)version;
    (void)upload;
    (void)upload_len;
    (void)state;
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    if (info && info->socket_context)
        ((struct slot *)info->socket_context)->since_us = og_mono_us();
    if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
        return respond_text(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "only GET and HEAD\n");
    if (strcmp(url, "/metrics") == 0) {
        if (!(body = og_metrics_render(&len)))
            return respond_text(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory\n");
        return respond(conn, MHD_HTTP_OK, "text/plain; version=0.0.4; charset=utf-8", body, len);
    }
    if (strcmp(url, "/health") == 0) {
        if (!(body = health(s, &len)))
            return respond_text(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory\n");
        return respond(conn, MHD_HTTP_OK, "application/json", body, len);
    }
    return respond_text(conn, MHD_HTTP_NOT_FOUND, "not found: try /metrics or /health\n");
}

struct og_metrics_server *og_metrics_server_start(const char *listen, bool allow_remote,
                                                  const char *daemon, char *err, size_t errlen)
{
    struct og_metrics_server *s;
    struct sockaddr_storage ss;
    socklen_t sslen;
    sigset_t block, old;
    bool loopback;
    char labels[128];

    if (og_metrics_check_listen(listen, allow_remote, err, errlen) < 0 ||
        parse_listen(listen, &ss, &sslen, &loopback) < 0)
        return NULL;
    if (!(s = calloc(1, sizeof(*s)))) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    snprintf(s->daemon, sizeof(s->daemon), "%s", daemon);
    for (size_t i = 0; i < MHD_CONNECTIONS; i++)
        s->slots[i].fd = -1;
    s->dropped = og_metrics_counter(
        "onegrid_http_connections_dropped_total", NULL,
        "Connections to /metrics and /health closed to make room for a new one (of the peer "
        "address holding the most, the one whose last request, or connection, came longest "
        "ago; more open at once than the server serves)");

    started_mono = og_mono_us();
    snprintf(labels, sizeof(labels), "daemon=\"%s\",version=\"%s\"", daemon, ONEGRID_VERSION);
    og_metrics_set(og_metrics_gauge("onegrid_build_info", labels,
                                    "Always 1: the daemon and the version it runs"),
                   1);
    og_metrics_set(og_metrics_gauge("process_start_time_seconds", NULL,
                                    "Start time of the process since the Unix epoch in seconds"),
                   (int64_t)time(NULL));
    uptime = og_metrics_gauge("onegrid_uptime_seconds", NULL, "Seconds since the daemon started");
    rss = og_metrics_gauge("process_resident_memory_bytes", NULL,
                           "Resident memory size in bytes (/proc/self/statm)");
    vsz = og_metrics_gauge("process_virtual_memory_bytes", NULL,
                           "Virtual memory size in bytes (/proc/self/statm)");
    loop_stall = og_metrics_gauge("onegrid_loop_stall_seconds", NULL,
                                  "Seconds since the daemon's main loop last turned (it turns at "
                                  "least every second; more: stuck in a call)");
    last_error = og_metrics_gauge("onegrid_last_error_timestamp_seconds", NULL,
                                  "When the last error was seen (Unix time; 0: none), its text "
                                  "at /health");

    /* The server's thread must not take the daemon's signals: their handlers only set
     * flags the main loop reads, and it would not wake for them. */
    sigemptyset(&block);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGHUP);
    sigaddset(&block, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &block, &old);
    errno = 0;
    s->mhd = MHD_start_daemon(
        MHD_USE_POLL_INTERNAL_THREAD | (ss.ss_family == AF_INET6 ? MHD_USE_IPv6 : 0), 0, NULL, NULL,
        handle, s, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss, MHD_OPTION_CONNECTION_LIMIT,
        (unsigned)MHD_CONNECTIONS, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)TIMEOUT_S,
        MHD_OPTION_NOTIFY_CONNECTION, on_connection, s,
        /* No MHD_OPTION_LISTENING_ADDRESS_REUSE: with it (SO_REUSEPORT) a second daemon
         * given the same metrics_listen would share the port, and scrapes would reach
         * either at random. */
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)16384, MHD_OPTION_END);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (!s->mhd) {
        snprintf(err, errlen, "metrics_listen: could not serve on %s: %s", listen,
                 errno ? strerror(errno) : "libmicrohttpd refused");
        free(s);
        return NULL;
    }
    return s;
}

int og_metrics_server_config(const struct og_config *cfg, const char *section, bool start,
                             struct og_metrics_server **s, char *err, size_t errlen)
{
    const char *listen = og_config_get(cfg, section, "metrics_listen");
    const char *remote = og_config_str(cfg, section, "metrics_allow_remote", "no");

    *s = NULL;
    if (strcmp(remote, "yes") != 0 && strcmp(remote, "no") != 0) {
        snprintf(err, errlen, "[%s] metrics_allow_remote: \"%s\" is neither yes nor no", section,
                 remote);
        return -EINVAL;
    }
    if (!listen)
        return 0;
    char why[400];
    if (!start) {
        if (og_metrics_check_listen(listen, strcmp(remote, "yes") == 0, why, sizeof(why)) == 0)
            return 0;
        snprintf(err, errlen, "[%s] %s", section, why);
        return -EINVAL;
    }
    if (!(*s = og_metrics_server_start(listen, strcmp(remote, "yes") == 0, section, why,
                                       sizeof(why)))) {
        snprintf(err, errlen, "[%s] %s", section, why);
        return -EINVAL;
    }
    return 0;
}

void og_metrics_server_stop(struct og_metrics_server **sp)
{
    struct og_metrics_server *s = *sp;
    if (!s)
        return;
    MHD_stop_daemon(s->mhd);
    free(s);
    *sp = NULL;
}
