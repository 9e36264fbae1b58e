/* Writes the seed corpora of the fuzz targets from real inputs, through the code that
 * makes them in production: JSON lines (deploy/sample/events.jsonl and one line of each
 * kind it lacks) parsed with og_pbjson_parse; Submits as libonegrid sends them; the DATA
 * frames og_intake_frame makes of them, dispatch's records and the answers back; outbox
 * files written by og_outbox_add and og_outbox_done, clean, torn and damaged.
 *
 * Usage: fuzz_seeds EVENTS.jsonl CORPUS_DIR (see tests/fuzz/make-corpus, which also
 * copies the configuration seeds). Writes CORPUS_DIR/<target>/<name>; exits non-zero on
 * any failure. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <json-c/json.h>
#include <sodium.h>

#include "intake.h"
#include "link.h"
#include "outbox.h"
#include "pbjson.h"

/* Lines of the kinds the sample file has none of (as tests/integration writes them). */
static const char *const extra_lines[] = {
    "{\"id\":\"st-1\",\"source\":\"zongzhi\",\"type\":\"status\",\"time\":\"2026-11-18T10:00:00+08:"
    "00\","
    "\"status\":{\"case_id\":\"650204-00000003\",\"status\":\"STATUS_RESOLVED\",\"unit\":\"SQ-"
    "650204-003\","
    "\"note\":\"双方签订调解协议\",\"mediation\":{\"parties\":2,\"agreement_sha256\":"
    "\"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08\","
    "\"agreement_date\":\"2026-11-17T16:30:00+08:00\",\"follow_up_days\":14,\"mediator\":\"TJS-"
    "01\"}}}",
    "{\"id\":\"st-2\",\"source\":\"zongzhi\",\"type\":\"status\",\"time\":\"2026-11-18T11:00:00."
    "5Z\","
    "\"status\":{\"case_id\":\"650204-00000004\",\"status\":\"STATUS_EXTENSION_REQUESTED\","
    "\"unit\":\"SQ-650204-003\",\"extension_working_days\":5}}",
    "{\"id\":\"ev-1\",\"source\":\"12345\",\"type\":\"evaluation\",\"time\":\"2026-11-19T09:00:00+"
    "08:00\","
    "\"evaluation\":{\"case_id\":\"650204-00000001\",\"result\":\"RESULT_UNSATISFIED\","
    "\"comment\":\"还是有异味\"}}",
    "{\"id\":\"lxh-1\",\"source\":\"dangjian\",\"type\":\"decision\",\"time\":\"2026-11-19T10:35:"
    "00+08:00\","
    "\"decision\":{\"case_ids\":[\"650204-00000008\",\"650204-00000001\"],\"action\":\"ACTION_"
    "ASSIGN\","
    "\"unit\":\"ZJJ-650204\",\"minutes_ref\":\"白碱滩区联席会纪要 2026年第11期\"}}",
    "{\"id\":\"gc-1\",\"source\":\"zongzhi\",\"type\":\"split\",\"time\":\"2026-11-19T11:00:00+08:"
    "00\","
    "\"split\":{\"case_id\":\"650204-00000006\",\"report_source\":\"12345\","
    "\"report_event_id\":\"rx-20261108-0004\",\"note\":\"核实后为另一处问题\"}}",
    "{\"id\":\"rp-1\",\"source\":\"zongzhi\",\"type\":\"report\",\"time\":\"2026-11-19T12:00:00+08:"
    "00\","
    "\"subject\":\"ZZ-BJT-SP-SP-04\",\"location\":{\"latitude\":45.65735,\"longitude\":85.060304},"
    "\"report\":{\"category\":\"facility.handrail\",\"title\":\"楼道扶手松动\",\"channel\":"
    "\"CHANNEL_APP\","
    "\"severity\":\"SEVERITY_MINOR\",\"handled_on_spot\":true,"
    "\"contact\":{\"name\":\"王阿姨\",\"phone\":\"+86 138-0000-0000\"}}}",
    /* A unit with another action than ACTION_ASSIGN: bounded all the same (validate.c). */
    "{\"id\":\"lxh-2\",\"source\":\"zongzhi\",\"type\":\"decision\",\"time\":\"2026-11-19T10:35:"
    "00+08:00\","
    "\"decision\":{\"case_ids\":[\"650204-00000008\"],\"action\":\"ACTION_CLOSE\","
    "\"unit\":\"GC-650204-0000000000000000000000000000000000000000000000000000000\"}}",
};

#define NOW_US (1795137300LL * 1000000 + 123456)

static const struct og_intake_opts opts = {
    .max_event_bytes = 8192,
    .max_rejected_bytes = 4096,
    .max_age = 30 * 86400,
    .max_future = 300,
};

static const char *corpus;

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("fuzz_seeds: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

static void put(const char *target, const char *name, const void *data, size_t len)
{
    char path[4096];
    int fd;

    snprintf(path, sizeof(path), "%s/%s", corpus, target);
    if (mkdir(path, 0755) != 0 && errno != EEXIST)
        die("could not make \"%s\": %s", path, strerror(errno));
    snprintf(path, sizeof(path), "%s/%s/%s", corpus, target, name);
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0 || (len && write(fd, data, len) != (ssize_t)len) || close(fd) != 0)
        die("could not write \"%s\"", path);
}

static void put_msg(const char *target, const char *name, const ProtobufCMessage *m)
{
    size_t len;
    uint8_t *buf = og_pack(m, &len);
    if (!buf)
        die("out of memory");
    put(target, name, buf, len);
    free(buf);
}

static Onegrid__V1__Envelope *parse_line(const char *line)
{
    char err[256];
    json_object *obj = json_tokener_parse(line);
    Onegrid__V1__Envelope *e;
    if (!obj)
        die("not JSON: %s", line);
    e = (Onegrid__V1__Envelope *)og_pbjson_parse(obj, &onegrid__v1__envelope__descriptor, err,
                                                 sizeof(err));
    json_object_put(obj);
    if (!e)
        die("%s: %s", err, line);
    return e;
}

/* dispatch's record for intake's frame f: shard, epoch and a decision (an open case for
 * a report or alert, a case update otherwise, the refusal for a refused one). */
static void record(Onegrid__V1__Frame *f, const char *name)
{
    Onegrid__V1__Decision d = ONEGRID__V1__DECISION__INIT, more = ONEGRID__V1__DECISION__INIT;
    Onegrid__V1__Decision *mores[] = {&more};
    Onegrid__V1__Timestamp deadline = {PROTOBUF_C_MESSAGE_INIT(&onegrid__v1__timestamp__descriptor),
                                       1795396500, 0};
    Onegrid__V1__Envelope *e = f->submission->event;
    char *returned[] = {"SQ-650204-002"};
    char file[128], *shard = f->shard;

    f->shard = "6502";
    f->epoch = 3;
    f->decision = &d;
    d.decided = f->submission->received;
    if (f->submission->rejection) {
        d.kind = ONEGRID__V1__DECISION__KIND__KIND_REJECT;
        d.rejection = f->submission->rejection;
    } else if (e->payload_case == ONEGRID__V1__ENVELOPE__PAYLOAD_REPORT ||
               e->payload_case == ONEGRID__V1__ENVELOPE__PAYLOAD_SENSOR_ALERT) {
        d.kind = ONEGRID__V1__DECISION__KIND__KIND_OPEN_CASE;
        d.case_id = "650204-00000009";
        d.district = "650204";
        d.grid = "650204001001001";
        d.category = e->report ? e->report->category : e->sensor_alert->category;
        d.unit = "SQ-650204-003";
        d.rule_id = 12;
        d.rule_version = 2;
        d.state = "DISPATCHED";
        d.deadline = &deadline;
        d.opened = f->submission->received;
        d.contacts = 1;
        d.severity = 3;
    } else {
        d.kind = ONEGRID__V1__DECISION__KIND__KIND_UPDATE_CASE;
        d.case_id = "650204-00000001";
        d.district = "650204";
        d.state = "IN_PROGRESS";
        d.previous_state = "ACCEPTED";
        d.unit = "SQ-650204-003";
        d.deadline = &deadline;
        d.escalation_level = 1;
        d.supervisor = "JD-650204-01";
        d.returned_by = "SQ-650204-002";
        d.returned_units = returned;
        d.n_returned_units = 1;
        if (e->payload_case == ONEGRID__V1__ENVELOPE__PAYLOAD_DECISION) {
            /* A joint meeting acts on a second case too. */
            more.kind = ONEGRID__V1__DECISION__KIND__KIND_UPDATE_CASE;
            more.case_id = "650204-00000008";
            more.district = "650204";
            more.state = "DISPATCHED";
            more.decided = d.decided;
            f->more_decisions = mores;
            f->n_more_decisions = 1;
        }
    }
    snprintf(file, sizeof(file), "record-%s", name);
    put_msg("link_frame", file, &f->base);
    f->shard = shard; /* the frame is freed with free_unpacked: its own pointers back */
    f->epoch = 0;
    f->decision = NULL;
    f->more_decisions = NULL;
    f->n_more_decisions = 0;
}

/* The answer that goes back for frame f: from archive (with the epoch) and from dispatch. */
static void answers(const Onegrid__V1__Frame *f, const Onegrid__V1__Envelope *e, const char *name)
{
    Onegrid__V1__Frame a = ONEGRID__V1__FRAME__INIT;
    Onegrid__V1__Reply r = ONEGRID__V1__REPLY__INIT;
    Onegrid__V1__Ack ack = ONEGRID__V1__ACK__INIT;
    char file[128];

    a.kind = ONEGRID__V1__FRAME__KIND__KIND_ANSWER;
    a.key = f->key;
    a.reply = &r;
    r.event_id = e ? e->id : "";
    r.source = f->submission->source;
    r.tag.data = (uint8_t *)"\x01\x00\x00\x00\x00\x00\x00\x07";
    r.tag.len = 8;
    if (f->submission->rejection) {
        r.result_case = ONEGRID__V1__REPLY__RESULT_NACK;
        r.nack = f->submission->rejection;
    } else {
        ack.outcome = ONEGRID__V1__ACK__OUTCOME__OUTCOME_STORED;
        ack.case_id = "650204-00000009";
        r.result_case = ONEGRID__V1__REPLY__RESULT_ACK;
        r.ack = &ack;
    }
    snprintf(file, sizeof(file), "answer-%s", name);
    put_msg("link_frame", file, &a.base);
    a.epoch = 3;
    snprintf(file, sizeof(file), "answer-archive-%s", name);
    put_msg("link_frame", file, &a.base);
}

/* One event: its Submit, intake's frame, the record and the answers. */
static void submit(const uint8_t *event, size_t len, const char *name)
{
    Onegrid__V1__Submit s = ONEGRID__V1__SUBMIT__INIT;
    Onegrid__V1__Frame *f;
    uint8_t tag[8] = {1, 0, 0, 0, 0, 0, 0, 7};
    char file[128];

    s.tag.data = tag;
    s.tag.len = sizeof(tag);
    s.event.data = (uint8_t *)event;
    s.event.len = len;
    put_msg("intake_frame", name, &s.base);
    f = og_intake_frame(&opts, "local", NULL, event, len, NOW_US);
    if (!f)
        die("og_intake_frame: out of memory");
    snprintf(file, sizeof(file), "data-%s", name);
    put_msg("link_frame", file, &f->base);
    record(f, name);
    answers(f, f->submission->event, name);
    og_intake_frame_free(&f);
}

/* One JSON line: the line itself, and what it becomes. The sample's raw_base64 lines
 * (bytes publish sends as they are, for refusals) are Submits only. */
static void line_seeds(const char *line, const char *name)
{
    json_object *obj, *raw;
    Onegrid__V1__Envelope *e;
    uint8_t *buf;
    size_t len;

    if ((obj = json_tokener_parse(line)) && json_object_object_get_ex(obj, "raw_base64", &raw)) {
        const char *b64 = json_object_get_string(raw);
        buf = malloc(strlen(b64) + 1);
        if (!buf || sodium_base642bin(buf, strlen(b64) + 1, b64, strlen(b64), NULL, &len, NULL,
                                      sodium_base64_VARIANT_ORIGINAL) != 0)
            die("raw_base64: not valid base64: %s", line);
        submit(buf, len, name);
        free(buf);
        json_object_put(obj);
        return;
    }
    json_object_put(obj);
    put("pbjson", name, line, strlen(line));
    e = parse_line(line);
    if (!(buf = og_pack(&e->base, &len)))
        die("out of memory");
    submit(buf, len, name);
    free(buf);
    onegrid__v1__envelope__free_unpacked(e, NULL);
}

/* Frames that are not about one event: intake's refusals, HELLO, CREDIT. */
static void link_frames(void)
{
    Onegrid__V1__Frame h = ONEGRID__V1__FRAME__INIT, *f;
    static const uint8_t junk[] = "\x0a\x03"
                                  "abc\x12\xff";
    Onegrid__V1__Submit s = ONEGRID__V1__SUBMIT__INIT;

    h.kind = ONEGRID__V1__FRAME__KIND__KIND_HELLO;
    h.sender = "onegrid-intake@grid1";
    put_msg("link_frame", "hello", &h.base);
    h.kind = ONEGRID__V1__FRAME__KIND__KIND_CREDIT;
    h.sender = "";
    h.credit = 2000;
    put_msg("link_frame", "credit", &h.base);

    f = og_intake_refusal(&opts, "local", junk, sizeof(junk) - 1,
                          ONEGRID__V1__REASON__REASON_UNDECODABLE, "not a valid onegrid.v1.Submit",
                          NOW_US);
    if (!f)
        die("out of memory");
    put_msg("link_frame", "data-refusal-undecodable", &f->base);
    record(f, "refusal-undecodable");
    answers(f, NULL, "refusal-undecodable");
    og_intake_frame_free(&f);

    /* A Submit whose event intake refuses (no payload), and one that is not a Submit. */
    s.event.data = (uint8_t *)"\x0a\x01x\x12\x07zongzhi";
    s.event.len = 11;
    put_msg("intake_frame", "refused-no-payload", &s.base);
    f = og_intake_frame(&opts, "local", NULL, s.event.data, s.event.len, NOW_US);
    if (!f)
        die("out of memory");
    put_msg("link_frame", "data-refusal-missing", &f->base);
    record(f, "refusal-missing");
    og_intake_frame_free(&f);
    put("intake_frame", "not-a-submit", junk, sizeof(junk) - 1);
}

static void each(uint64_t token, const uint8_t *data, size_t len, void *arg)
{
}

static uint8_t *slurp(const char *path, size_t *len)
{
    struct stat sb;
    uint8_t *buf;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || fstat(fd, &sb) != 0)
        die("could not read \"%s\"", path);
    buf = malloc((size_t)sb.st_size + 1);
    if (!buf || read(fd, buf, (size_t)sb.st_size) != sb.st_size)
        die("could not read \"%s\"", path);
    close(fd);
    *len = (size_t)sb.st_size;
    return buf;
}

/* Outbox files: three events (Submits of the sample), the second answered; the same with
 * its last record torn; and with a damaged byte in the first record. */
static void outboxes(const char *line1, const char *line2, const char *line3)
{
    char dir[] = "/tmp/og-seeds.XXXXXX", path[64], err[256];
    const char *lines[] = {line1, line2, line3};
    struct og_outbox *ob;
    uint8_t *buf;
    size_t len;

    if (!mkdtemp(dir))
        die("mkdtemp: %s", strerror(errno));
    snprintf(path, sizeof(path), "%s/outbox", dir);
    ob = og_outbox_open(path, 1 << 20, each, NULL, NULL, err, sizeof(err));
    if (!ob)
        die("%s", err);
    for (int i = 0; i < 3; i++) {
        Onegrid__V1__Envelope *e = parse_line(lines[i]);
        uint8_t *ev = og_pack(&e->base, &len);
        if (!ev || og_outbox_add(ob, (uint64_t)i + 1, ev, len) < 0)
            die("og_outbox_add failed");
        free(ev);
        onegrid__v1__envelope__free_unpacked(e, NULL);
    }
    if (og_outbox_done(ob, 2) < 0 || og_outbox_sync(ob) < 0)
        die("og_outbox_done failed");
    og_outbox_close(&ob);
    buf = slurp(path, &len);
    unlink(path);
    rmdir(dir);
    put("outbox", "three-one-answered", buf, len);
    put("outbox", "torn-tail", buf, len - 7);
    buf[30] ^= 0x20; /* inside the first event's payload: its CRC fails */
    put("outbox", "damaged-first", buf, len);
    free(buf);
    put("outbox", "empty", "", 0);
}

int main(int argc, char **argv)
{
    FILE *in;
    char *line = NULL, name[64];
    size_t cap = 0, n_raw = 0, n_report = 0, n_alert = 0, n_status = 0;
    ssize_t len;
    char *first[3] = {NULL, NULL, NULL};

    if (argc != 3) {
        fprintf(stderr, "usage: fuzz_seeds EVENTS.jsonl CORPUS_DIR\n");
        return 2;
    }
    corpus = argv[2];
    if (!(in = fopen(argv[1], "r")))
        die("could not open \"%s\": %s", argv[1], strerror(errno));
    /* A few of each kind: the sample's lines differ in text, not in shape. */
    while ((len = getline(&line, &cap, in)) > 0) {
        size_t *count = strstr(line, "raw_base64")                  ? &n_raw
                        : strstr(line, "\"type\":\"report\"")       ? &n_report
                        : strstr(line, "\"type\":\"sensor_alert\"") ? &n_alert
                                                                    : &n_status;
        if (line[len - 1] == '\n')
            line[--len] = '\0';
        if (*count >= 3)
            continue;
        snprintf(name, sizeof(name), "sample-%s-%zu",
                 count == &n_raw      ? "raw"
                 : count == &n_report ? "report"
                 : count == &n_alert  ? "alert"
                                      : "other",
                 ++*count);
        line_seeds(line, name);
        if (strstr(line, "raw_base64"))
            continue;
        for (int i = 0; i < 3; i++)
            if (!first[i]) {
                first[i] = strdup(line);
                break;
            }
    }
    fclose(in);
    free(line);
    for (size_t i = 0; i < sizeof(extra_lines) / sizeof(extra_lines[0]); i++) {
        snprintf(name, sizeof(name), "extra-%zu", i + 1);
        line_seeds(extra_lines[i], name);
    }
    link_frames();
    if (!first[2])
        die("\"%s\" has fewer than three events", argv[1]);
    outboxes(first[0], first[1], first[2]);
    for (int i = 0; i < 3; i++)
        free(first[i]);
    return 0;
}
