/* `onegridctl status`: each daemon's health, version, uptime, queues, database state and
 * last error, asked from the metrics endpoints the configuration names (metrics_listen,
 * daemons/common/metrics.h), and a check of the whole path from what they say: intake's
 * link to dispatch granted credit, dispatch's link to archive too, archive's database
 * connection up. Nothing is published and nothing written: the wire protocol has no
 * ping, and anything sent to intake is recorded, so the path is judged from the links'
 * state (credit is granted only by a live peer that answered HELLO).
 *
 * Exit status: 0 every daemon healthy; 1 some daemon degraded (database down, next hop not
 * connected, main loop stalled) or not monitored (no metrics_listen); 2 some daemon down
 * (its endpoint does not answer), or bad arguments or configuration. */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <json-c/json.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "onegridctl.h"
#include "util.h"

#define DEFAULT_CONFIG "/etc/onegrid/onegrid.conf"
#define MAX_RESPONSE   (1 << 20)
/* A main loop turns at least every second; this long without a turn means it is stuck. */
#define STALL_S 10

enum state { HEALTHY, DEGRADED, DOWN, UNMONITORED };
static const char *const state_names[] = {"healthy", "degraded", "down", "unmonitored"};

struct daemon_status {
    const char *name;
    const char *listen;
    enum state state;
    char why[600]; /* what makes it degraded or down */
    json_object *health;
    char *metrics;
};

/* "HOST:PORT" or "[V6]:PORT" into an address. 0 or -EINVAL. */
static int parse_address(const char *listen, struct sockaddr_storage *ss, socklen_t *len)
{
    char host[64];
    const char *start = listen, *end, *colon;
    long port;
    char *pe;

    if (*listen == '[') {
        start++;
        if (!(end = strchr(start, ']')) || end[1] != ':')
            return -EINVAL;
        colon = end + 1;
    } else if (!(colon = end = strrchr(listen, ':'))) {
        return -EINVAL;
    }
    if (end == start || (size_t)(end - start) >= sizeof(host))
        return -EINVAL;
    memcpy(host, start, (size_t)(end - start));
    host[end - start] = '\0';
    port = strtol(colon + 1, &pe, 10);
    if (pe == colon + 1 || *pe || port < 1 || port > 65535)
        return -EINVAL;
    memset(ss, 0, sizeof(*ss));
    if (*listen == '[') {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;
        a->sin6_family = AF_INET6;
        a->sin6_port = htons((uint16_t)port);
        *len = sizeof(*a);
        return inet_pton(AF_INET6, host, &a->sin6_addr) == 1 ? 0 : -EINVAL;
    }
    struct sockaddr_in *a = (struct sockaddr_in *)ss;
    a->sin_family = AF_INET;
    a->sin_port = htons((uint16_t)port);
    *len = sizeof(*a);
    return inet_pton(AF_INET, host, &a->sin_addr) == 1 ? 0 : -EINVAL;
}

/* Waits for fd to be ready for events until deadline (og_mono_us). 0, or -ETIMEDOUT. */
static int wait_fd(int fd, short events, int64_t deadline)
{
    for (;;) {
        int64_t left = deadline - og_mono_us();
        struct pollfd p = {fd, events, 0};
        if (left <= 0)
            return -ETIMEDOUT;
        int n = poll(&p, 1, (int)((left + 999) / 1000));
        if (n > 0)
            return 0;
        if (n < 0 && errno != EINTR)
            return -errno;
    }
}

/* GET path from listen over HTTP/1.0 (the server closes the connection after the answer).
 * The body in a new string (free it), or NULL with err filled. */
static char *http_get(const char *listen, const char *path, int timeout_ms, char *err,
                      size_t errlen)
{
    struct sockaddr_storage ss;
    socklen_t sslen;
    int64_t deadline = og_mono_us() + (int64_t)timeout_ms * 1000;
    char req[256], *buf = NULL, *body;
    size_t len = 0;
    int fd = -1, rc, soerr = 0;
    socklen_t solen = sizeof(soerr);

    if (parse_address(listen, &ss, &sslen) < 0) {
        snprintf(err, errlen, "\"%s\" is not ADDRESS:PORT", listen);
        return NULL;
    }
    fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(err, errlen, "socket: %s", strerror(errno));
        return NULL;
    }
    if (connect(fd, (struct sockaddr *)&ss, sslen) < 0 && errno != EINPROGRESS) {
        snprintf(err, errlen, "connect to %s: %s", listen, strerror(errno));
        goto fail;
    }
    if ((rc = wait_fd(fd, POLLOUT, deadline)) < 0 ||
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &solen) < 0 || soerr) {
        snprintf(err, errlen, "connect to %s: %s", listen,
                 strerror(soerr    ? soerr
                          : rc < 0 ? -rc
                                   : errno));
        goto fail;
    }
    int n = snprintf(req, sizeof(req), "GET %s HTTP/1.0\r\nHost: %s\r\n\r\n", path, listen);
    if (send(fd, req, (size_t)n, MSG_NOSIGNAL) != n) {
        snprintf(err, errlen, "send to %s: %s", listen, strerror(errno));
        goto fail;
    }
    if (!(buf = malloc(MAX_RESPONSE + 1))) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    for (;;) {
        if ((rc = wait_fd(fd, POLLIN, deadline)) < 0) {
            snprintf(err, errlen, "%s%s: %s", listen, path, strerror(-rc));
            goto fail;
        }
        ssize_t got = recv(fd, buf + len, MAX_RESPONSE - len, 0);
        if (got < 0 && (errno == EAGAIN || errno == EINTR))
            continue;
        if (got < 0) {
            snprintf(err, errlen, "%s%s: %s", listen, path, strerror(errno));
            goto fail;
        }
        if (got == 0)
            break;
        len += (size_t)got;
        if (len == MAX_RESPONSE) {
            snprintf(err, errlen, "%s%s: answer longer than %d bytes", listen, path, MAX_RESPONSE);
            goto fail;
        }
    }
    buf[len] = '\0';
    if (len < 12 || strncmp(buf, "HTTP/1.", 7) != 0 || strncmp(buf + 8, " 200", 4) != 0 ||
        !(body = strstr(buf, "\r\n\r\n"))) {
        snprintf(err, errlen, "%s%s: not an HTTP 200 answer: %.40s", listen, path, buf);
        goto fail;
    }
    body += 4;
    memmove(buf, body, strlen(body) + 1);
    close(fd);
    return buf;
fail:
    free(buf);
    close(fd);
    return NULL;
}

/* The value of the series name{labels} (labels NULL: the series without labels) in the
 * exposition text. true when found. */
static bool metric(const char *text, const char *name, const char *labels, double *v)
{
    size_t nlen = strlen(name);
    for (const char *line = text; line && *line;
         line = strchr(line, '\n'), line = line ? line + 1 : NULL) {
        if (*line == '#' || strncmp(line, name, nlen) != 0)
            continue;
        const char *p = line + nlen;
        if (labels) {
            size_t llen = strlen(labels);
            if (*p != '{' || strncmp(p + 1, labels, llen) != 0 || p[1 + llen] != '}')
                continue;
            p += llen + 2;
        }
        if (*p != ' ')
            continue;
        *v = strtod(p + 1, NULL);
        return true;
    }
    return false;
}

static double metric_or(const char *text, const char *name, const char *labels, double def)
{
    double v;
    return metric(text, name, labels, &v) ? v : def;
}

static void degrade(struct daemon_status *d, const char *why)
{
    if (d->state == HEALTHY)
        d->state = DEGRADED;
    size_t used = strlen(d->why);
    snprintf(d->why + used, sizeof(d->why) - used, "%s%s", used ? "; " : "", why);
}

/* The next hop of each daemon, named as its link's peer label, or NULL. */
static const char *next_hop(const char *name)
{
    return strcmp(name, "intake") == 0     ? "dispatch"
           : strcmp(name, "dispatch") == 0 ? "archive"
                                           : NULL;
}

static void ask(struct daemon_status *d, int timeout_ms)
{
    char err[512], labels[96], *health;
    const char *hop = next_hop(d->name);

    if (!d->listen) {
        d->state = UNMONITORED;
        snprintf(d->why, sizeof(d->why), "no metrics_listen in [%s]", d->name);
        return;
    }
    if (!(health = http_get(d->listen, "/health", timeout_ms, err, sizeof(err))) ||
        !(d->metrics = http_get(d->listen, "/metrics", timeout_ms, err, sizeof(err)))) {
        free(health);
        d->state = DOWN;
        snprintf(d->why, sizeof(d->why), "%s", err);
        return;
    }
    d->health = json_tokener_parse(health);
    free(health);
    json_object *daemon;
    if (!d->health || !json_object_object_get_ex(d->health, "daemon", &daemon) ||
        !json_object_is_type(daemon, json_type_string) ||
        strcmp(json_object_get_string(daemon), d->name) != 0) {
        d->state = DOWN;
        snprintf(d->why, sizeof(d->why), "%s does not answer as onegrid-%s", d->listen, d->name);
        return;
    }
    d->state = HEALTHY;
    if (metric_or(d->metrics, "onegrid_database_up", NULL, 1) == 0)
        degrade(d, "database unavailable");
    if (hop) {
        snprintf(labels, sizeof(labels), "side=\"client\",peer=\"%s\"", hop);
        if (metric_or(d->metrics, "onegrid_link_connected", labels, 0) == 0) {
            char why[64];
            snprintf(why, sizeof(why), "no credit from %s (not connected)", hop);
            degrade(d, why);
        }
    }
    double stall = metric_or(d->metrics, "onegrid_loop_stall_seconds", NULL, 0);
    if (stall > STALL_S) {
        char why[64];
        snprintf(why, sizeof(why), "main loop stalled for %.0f s", stall);
        degrade(d, why);
    }
}

static const char *health_str(const struct daemon_status *d, const char *key)
{
    json_object *v;
    const char *s = d->health && json_object_object_get_ex(d->health, key, &v)
                        ? json_object_get_string(v)
                        : NULL;
    return s ? s : ""; /* a JSON null gives NULL */
}

static int64_t health_int(const struct daemon_status *d, const char *key)
{
    json_object *v;
    return d->health && json_object_object_get_ex(d->health, key, &v) ? json_object_get_int64(v)
                                                                      : 0;
}

/* The queue gauges of each daemon: name in the output, metric, labels. */
struct queue {
    const char *daemon, *label, *metric, *labels;
};
static const struct queue queues[] = {
    {"intake", "waiting_submits", "onegrid_intake_waiting_submits", NULL},
    {"intake", "to_dispatch_queued", "onegrid_link_queued", "side=\"client\",peer=\"dispatch\""},
    {"intake", "to_dispatch_in_flight", "onegrid_link_in_flight",
     "side=\"client\",peer=\"dispatch\""},
    {"dispatch", "inbox", "onegrid_dispatch_inbox", NULL},
    {"dispatch", "to_archive_queued", "onegrid_link_queued", "side=\"client\",peer=\"archive\""},
    {"dispatch", "to_archive_in_flight", "onegrid_link_in_flight",
     "side=\"client\",peer=\"archive\""},
    {"dispatch", "cases_open", "onegrid_dispatch_cases_open", NULL},
    {"archive", "held_records", "onegrid_archive_held_records", NULL},
};

static const char *database(const struct daemon_status *d)
{
    double v;
    if (!d->metrics || !metric(d->metrics, "onegrid_database_up", NULL, &v))
        return "-";
    return v ? "up" : "down";
}

static void print_text(const struct daemon_status *ds, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const struct daemon_status *d = &ds[i];
        printf("%-8s %s", d->name, state_names[d->state]);
        if (d->listen)
            printf(" (%s)", d->listen);
        printf("\n");
        if (d->why[0])
            printf("         %s\n", d->why);
        if (!d->metrics)
            continue;
        int64_t up = health_int(d, "uptime_seconds");
        printf("         version %s, pid %lld, up %lldd %02lld:%02lld:%02lld, database %s\n",
               health_str(d, "version"), (long long)health_int(d, "pid"), (long long)up / 86400,
               (long long)(up / 3600) % 24, (long long)(up / 60) % 60, (long long)up % 60,
               database(d));
        printf("         queues:");
        const char *sep = " ";
        for (size_t q = 0; q < sizeof(queues) / sizeof(*queues); q++)
            if (strcmp(queues[q].daemon, d->name) == 0) {
                printf("%s%s %.0f", sep, queues[q].label,
                       metric_or(d->metrics, queues[q].metric, queues[q].labels, 0));
                sep = ", ";
            }
        printf("\n");
        int64_t at = health_int(d, "last_error_time");
        if (at) {
            char when[32];
            time_t t = (time_t)at;
            strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", gmtime(&t));
            printf("         last error %s: %s\n", when, health_str(d, "last_error"));
        } else {
            printf("         last error: none\n");
        }
    }
}

static void print_json(const struct daemon_status *ds, size_t n, enum state overall)
{
    json_object *o = json_object_new_object(), *arr = json_object_new_array();
    for (size_t i = 0; i < n; i++) {
        const struct daemon_status *d = &ds[i];
        json_object *j = json_object_new_object(), *q = json_object_new_object();
        json_object_object_add(j, "daemon", json_object_new_string(d->name));
        json_object_object_add(j, "state", json_object_new_string(state_names[d->state]));
        json_object_object_add(j, "endpoint", d->listen ? json_object_new_string(d->listen) : NULL);
        json_object_object_add(j, "problem", json_object_new_string(d->why));
        if (d->metrics) {
            json_object_object_add(j, "version", json_object_new_string(health_str(d, "version")));
            json_object_object_add(j, "pid", json_object_new_int64(health_int(d, "pid")));
            json_object_object_add(j, "uptime_seconds",
                                   json_object_new_int64(health_int(d, "uptime_seconds")));
            json_object_object_add(j, "database", json_object_new_string(database(d)));
            for (size_t k = 0; k < sizeof(queues) / sizeof(*queues); k++)
                if (strcmp(queues[k].daemon, d->name) == 0)
                    json_object_object_add(q, queues[k].label,
                                           json_object_new_int64((int64_t)metric_or(
                                               d->metrics, queues[k].metric, queues[k].labels, 0)));
            json_object_object_add(j, "queues", q);
            q = NULL;
            json_object_object_add(j, "last_error",
                                   json_object_new_string(health_str(d, "last_error")));
            json_object_object_add(j, "last_error_time",
                                   json_object_new_int64(health_int(d, "last_error_time")));
        }
        json_object_put(q);
        json_object_array_add(arr, j);
    }
    json_object_object_add(o, "state", json_object_new_string(state_names[overall]));
    json_object_object_add(o, "daemons", arr);
    printf("%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
    json_object_put(o);
}

static void usage(FILE *out)
{
    fprintf(out, "usage: onegridctl status [--config FILE] [--json] [--timeout MS]\n"
                 "  -c, --config FILE   the daemons' configuration (default " DEFAULT_CONFIG ")\n"
                 "                      whose metrics_listen keys name the endpoints to ask\n"
                 "      --json          one JSON object instead of text\n"
                 "  -t, --timeout MS    how long to wait for each endpoint (default 2000)\n"
                 "exit status: 0 all healthy, 1 some daemon degraded or not monitored, 2 some\n"
                 "daemon down (or bad arguments)\n");
}

int og_cmd_status(int argc, char **argv)
{
    static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
                                         {"json", no_argument, NULL, 'j'},
                                         {"timeout", required_argument, NULL, 't'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    struct daemon_status ds[] = {{.name = "intake"}, {.name = "dispatch"}, {.name = "archive"}};
    const size_t n = sizeof(ds) / sizeof(*ds);
    const char *path = DEFAULT_CONFIG;
    bool json = false;
    long timeout_ms = 2000;
    struct og_config *cfg;
    enum state overall = HEALTHY;
    char err[512], *end;
    int c;

    optind = 1;
    while ((c = getopt_long(argc, argv, "c:t:h", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            path = optarg;
            break;
        case 'j':
            json = true;
            break;
        case 't':
            timeout_ms = strtol(optarg, &end, 10);
            if (*end || timeout_ms < 1 || timeout_ms > 600000) {
                fprintf(stderr, "onegridctl status: --timeout: \"%s\" is not 1..600000 ms\n",
                        optarg);
                return OG_EXIT_USAGE;
            }
            break;
        case 'h':
            usage(stdout);
            return OG_EXIT_OK;
        default:
            usage(stderr);
            return OG_EXIT_USAGE;
        }
    }
    if (optind != argc) {
        usage(stderr);
        return OG_EXIT_USAGE;
    }
    if (!(cfg = og_config_load(path, err, sizeof(err)))) {
        fprintf(stderr, "onegridctl status: %s\n", err);
        return OG_EXIT_USAGE;
    }
    for (size_t i = 0; i < n; i++) {
        ds[i].listen = og_config_get(cfg, ds[i].name, "metrics_listen");
        ask(&ds[i], (int)timeout_ms);
        enum state s = ds[i].state == UNMONITORED ? DEGRADED : ds[i].state;
        if (s > overall)
            overall = s;
    }
    if (json) {
        print_json(ds, n, overall);
    } else {
        print_text(ds, n);
        /* The whole path, from what each hop says of the next. */
        printf("path: intake -> dispatch %s, dispatch -> archive %s, archive -> database %s\n",
               ds[0].metrics ? (metric_or(ds[0].metrics, "onegrid_link_connected",
                                          "side=\"client\",peer=\"dispatch\"", 0)
                                    ? "up"
                                    : "DOWN")
                             : "unknown",
               ds[1].metrics ? (metric_or(ds[1].metrics, "onegrid_link_connected",
                                          "side=\"client\",peer=\"archive\"", 0)
                                    ? "up"
                                    : "DOWN")
                             : "unknown",
               ds[2].metrics ? (strcmp(database(&ds[2]), "up") == 0 ? "up" : "DOWN") : "unknown");
        printf("overall: %s\n", state_names[overall]);
    }
    for (size_t i = 0; i < n; i++) {
        json_object_put(ds[i].health);
        free(ds[i].metrics);
    }
    og_config_destroy(&cfg);
    return overall == HEALTHY ? OG_EXIT_OK : overall == DEGRADED ? 1 : 2;
}
