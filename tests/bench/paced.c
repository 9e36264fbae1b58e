/* bench_paced: publishes events at a fixed rate through libonegrid and measures, for each
 * one, the time from when it was due to be sent to its answer (onegrid answers after the
 * commit), for tests/bench/throughput.
 *
 *   bench_paced --endpoint EP --rate EVENTS_PER_S [--window N] [--timeout S]
 *               [--latencies OUT] [--timeline OUT] FILE.jsonl
 *
 * --window: events unanswered at most (default 1000, as tests/bench/throughput publishes at
 * full speed); events due while it is full wait in the publisher, and that wait counts.
 * --latencies: also writes each timed event's latency in ms to OUT, one per line (to
 * merge the runs of several publishers).
 * --timeline: also writes, for each timed event in the order it was due, when it was due
 * (seconds since the schedule's start) and its latency in ms, or "unanswered", or "unsent"
 * (the run timed out first): where a tail comes from.
 *
 * FILE holds events as JSON Lines (onegridctl publish's input; no raw_base64). The first
 * is sent alone and untimed, and the schedule starts once it is answered: the latency
 * measured is a running publisher's, not its connection's set-up (the handshake with
 * intake; measured, the events of the first 0.1 s of a round took 20 to 35 ms while the
 * connection came up, a third to a half of the answers over 25 ms in a 10-second round),
 * nor the first batch's after the pipeline idled (it plans archive's statements again
 * after the ANALYZE the bench runs before a round). Event i (from 1) is due at start +
 * (i - 1) / rate; latency is measured from that moment, not from when it was handed over,
 * so a publisher that falls behind counts the wait (no coordinated omission). --timeout
 * bounds the wait for the first answer and, again, the schedule's. Prints one JSON
 * object: sent, answered, stored, rejected (the first event included), seconds and rate
 * achieved (of the schedule), and latency p50, p90, p99 and max in ms (of the timed
 * events). Exit 0 when every event was answered stored or duplicate, 1 otherwise, 2 on
 * bad usage. */
#include <errno.h>
#include <getopt.h>
#include <json-c/json.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "onegrid/publisher.h"
#include "onegrid/v1/event.pb-c.h"
#include "pbjson.h"

struct event {
    uint8_t *buf;
    size_t len;
};

struct run {
    size_t n;
    double *due;     /* seconds since start */
    double *latency; /* seconds; < 0 until answered */
    size_t answered, stored, duplicate, rejected;
    double start;
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void on_answer(const struct og_answer *a, void *arg)
{
    struct run *r = arg;
    if (a->token >= r->n || r->latency[a->token] >= 0)
        return;
    r->latency[a->token] = now_s() - r->start - r->due[a->token];
    r->answered++;
    if (a->outcome == OG_OUTCOME_STORED)
        r->stored++;
    else if (a->outcome == OG_OUTCOME_DUPLICATE)
        r->duplicate++;
    else {
        r->rejected++;
        if (r->rejected <= 3)
            fprintf(stderr, "bench_paced: \"%s\" rejected: %s %s\n", a->event_id, a->reason_name,
                    a->text);
    }
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Closes out, a file written to path (NULL: it could not be opened). 0, or 1 when it could
 * not be written, said on stderr. */
static int finish(FILE *out, const char *path)
{
    bool bad = !out || ferror(out);
    if ((out && fclose(out) != 0) || bad) {
        fprintf(stderr, "bench_paced: could not write \"%s\": %s\n", path, strerror(errno));
        return 1;
    }
    return 0;
}

/* Reads FILE's events and encodes each as an Envelope. Returns the count, -1 on error. */
static long load(const char *path, struct event **out)
{
    FILE *f = fopen(path, "r");
    char *line = NULL, err[256];
    size_t cap = 0, n = 0, room = 0;
    struct event *ev = NULL;
    ssize_t got;
    long lineno = 0;
    if (!f) {
        fprintf(stderr, "bench_paced: could not open \"%s\": %s\n", path, strerror(errno));
        return -1;
    }
    while ((got = getline(&line, &cap, f)) > 0) {
        lineno++;
        if (got <= 1)
            continue;
        json_object *obj = json_tokener_parse(line);
        Onegrid__V1__Envelope *e =
            obj ? (Onegrid__V1__Envelope *)og_pbjson_parse(obj, &onegrid__v1__envelope__descriptor,
                                                           err, sizeof(err))
                : NULL;
        json_object_put(obj);
        if (!e) {
            fprintf(stderr, "bench_paced: %s:%ld: %s\n", path, lineno, obj ? err : "not JSON");
            goto fail;
        }
        if (n == room) {
            room = room ? room * 2 : 1024;
            struct event *m = realloc(ev, room * sizeof(*ev));
            if (!m) {
                onegrid__v1__envelope__free_unpacked(e, NULL);
                goto fail;
            }
            ev = m;
        }
        ev[n].len = protobuf_c_message_get_packed_size(&e->base);
        ev[n].buf = malloc(ev[n].len ? ev[n].len : 1);
        if (!ev[n].buf) {
            onegrid__v1__envelope__free_unpacked(e, NULL);
            goto fail;
        }
        protobuf_c_message_pack(&e->base, ev[n].buf);
        onegrid__v1__envelope__free_unpacked(e, NULL);
        n++;
    }
    free(line);
    fclose(f);
    *out = ev;
    return (long)n;
fail:
    while (n > 0)
        free(ev[--n].buf);
    free(ev);
    free(line);
    fclose(f);
    return -1;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {{"endpoint", required_argument, NULL, 'e'},
                                         {"rate", required_argument, NULL, 'r'},
                                         {"window", required_argument, NULL, 'w'},
                                         {"timeout", required_argument, NULL, 't'},
                                         {"latencies", required_argument, NULL, 'l'},
                                         {"timeline", required_argument, NULL, 'T'},
                                         {NULL, 0, NULL, 0}};
    const char *endpoint = NULL, *latencies = NULL, *timeline = NULL;
    double rate = 0, timeout = 600;
    unsigned window = 1000;
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'e':
            endpoint = optarg;
            break;
        case 'r':
            rate = strtod(optarg, NULL);
            break;
        case 'w':
            window = (unsigned)strtoul(optarg, NULL, 10);
            break;
        case 't':
            timeout = strtod(optarg, NULL);
            break;
        case 'l':
            latencies = optarg;
            break;
        case 'T':
            timeline = optarg;
            break;
        default:
            return 2;
        }
    }
    if (!endpoint || rate <= 0 || optind != argc - 1 || window == 0) {
        fprintf(stderr, "usage: bench_paced --endpoint EP --rate EVENTS_PER_S [--window N] "
                        "[--timeout S] [--latencies OUT] [--timeline OUT] FILE.jsonl\n");
        return 2;
    }
    struct event *ev = NULL;
    long n = load(argv[optind], &ev);
    if (n < 2) {
        if (n >= 0)
            fprintf(stderr,
                    "bench_paced: \"%s\" holds %ld events: one to send first, untimed, "
                    "and at least one timed\n",
                    argv[optind], n);
        while (n > 0)
            free(ev[--n].buf);
        free(ev);
        return 1;
    }
    struct run r = {.n = (size_t)n};
    r.due = calloc((size_t)n, sizeof(double));
    r.latency = calloc((size_t)n, sizeof(double));
    char err[256];
    struct og_publisher_opts po = {.window = window, .max_held = window + 1000u};
    struct og_publisher *p = og_publisher_new(endpoint, &po, err, sizeof(err));
    if (!r.due || !r.latency || !p) {
        fprintf(stderr, "bench_paced: %s\n", p ? "out of memory" : err);
        return 1;
    }
    for (long i = 0; i < n; i++) {
        r.due[i] = (double)(i > 0 ? i - 1 : 0) / rate;
        r.latency[i] = -1;
    }
    /* The first event, alone; then the schedule, from its answer on. */
    int rc = 0, first = og_publisher_send(p, 0, ev[0].buf, ev[0].len);
    r.start = now_s();
    if (first < 0) {
        fprintf(stderr, "bench_paced: send: %s\n", strerror(-first));
        return 1;
    }
    while (r.answered == 0) {
        if (now_s() - r.start > timeout) {
            fprintf(stderr, "bench_paced: the first event unanswered after %.0f s\n", timeout);
            return 1;
        }
        first = og_publisher_poll(p, 100, on_answer, &r);
        if (first < 0) {
            fprintf(stderr, "bench_paced: poll: %s\n", strerror(-first));
            return 1;
        }
    }
    size_t next = 1;
    r.start = now_s();
    while (r.answered < r.n) {
        double t = now_s() - r.start;
        if (t > timeout) {
            fprintf(stderr, "bench_paced: %zu of %zu unanswered after %.0f s\n", r.n - r.answered,
                    r.n, timeout);
            rc = 1;
            break;
        }
        bool full = false;
        while (next < r.n && r.due[next] <= t) {
            int s = og_publisher_send(p, next, ev[next].buf, ev[next].len);
            if (s == -ENOBUFS) {
                full = true;
                break;
            }
            if (s < 0) {
                fprintf(stderr, "bench_paced: send: %s\n", strerror(-s));
                return 1;
            }
            next++;
        }
        /* Wait for answers until the next event is due (at most 10 ms), rounded up to a
         * whole millisecond: rounded down, a rate above 1,000/s polled with a timeout of 0
         * and the benchmark spun a core of its own, leaving the daemons and PostgreSQL one
         * (events due meanwhile go out together at the next turn, still timed from when
         * they were due; og_publisher_poll waits the whole millisecond, which it did not
         * either until it rounded what is left up). With the window full, an answer makes
         * room: wait for one (with a timeout of 0 the benchmark spun there too, the more
         * the more loaded the daemons, and took the CPU they needed). */
        if (next < r.n && !full && og_publisher_held(p) == 0) {
            /* Nothing in flight: og_publisher_poll would return at once (with nothing to
             * wait for), and the benchmark would spin until the next event is due. */
            double dt = r.due[next] - (now_s() - r.start);
            if (dt > 0) {
                struct timespec ts = {(time_t)dt, (long)((dt - (double)(time_t)dt) * 1e9)};
                nanosleep(&ts, NULL);
            }
            continue;
        }
        int wait_ms = 10;
        if (next < r.n && !full) {
            double dt = r.due[next] - (now_s() - r.start);
            wait_ms = dt <= 0 ? 0 : dt < 0.010 ? (int)(dt * 1000) + 1 : 10;
        }
        int got = og_publisher_poll(p, wait_ms, on_answer, &r);
        if (got < 0) {
            fprintf(stderr, "bench_paced: poll: %s\n", strerror(-got));
            return 1;
        }
    }
    double secs = now_s() - r.start;
    double *lat = malloc(r.n * sizeof(double));
    size_t k = 0;
    for (size_t i = 1; i < r.n; i++)
        if (r.latency[i] >= 0)
            lat[k++] = r.latency[i] * 1000;
    if (timeline) {
        FILE *out = fopen(timeline, "w");
        for (size_t i = 1; out && i < r.n; i++) {
            if (r.latency[i] >= 0)
                fprintf(out, "%.4f %.3f\n", r.due[i], r.latency[i] * 1000);
            else
                fprintf(out, "%.4f %s\n", r.due[i], i < next ? "unanswered" : "unsent");
        }
        rc |= finish(out, timeline);
    }
    qsort(lat, k, sizeof(double), cmp_double);
    if (latencies) {
        FILE *out = fopen(latencies, "w");
        for (size_t i = 0; out && i < k; i++)
            fprintf(out, "%.3f\n", lat[i]);
        rc |= finish(out, latencies);
    }
#define PCT(q) (k ? lat[(size_t)((double)(k - 1) * (q) + 0.5)] : -1.0)
    printf("{\"sent\":%zu,\"answered\":%zu,\"stored\":%zu,\"duplicate\":%zu,\"rejected\":%zu,"
           "\"seconds\":%.3f,\"rate_asked\":%.1f,\"rate\":%.1f,\"p50_ms\":%.2f,\"p90_ms\":%.2f,"
           "\"p99_ms\":%.2f,\"max_ms\":%.2f}\n",
           next, r.answered, r.stored, r.duplicate, r.rejected, secs, rate,
           (double)(r.answered - 1) / secs, PCT(0.50), PCT(0.90), PCT(0.99), PCT(1.0));
    if (r.rejected || r.answered < r.n)
        rc = 1;
    og_publisher_destroy(&p);
    for (long i = 0; i < n; i++)
        free(ev[i].buf);
    free(ev);
    free(lat);
    free(r.due);
    free(r.latency);
    return rc;
}
