/* `onegridctl publish`: reads events as JSON Lines (docs/integrating.md), publishes them
 * with libonegrid, waits for every answer and prints what happened to them. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <stdbool.h>
#include <json-c/json.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

#include "onegrid/publisher.h"
#include "onegrid/v1/event.pb-c.h"
#include "onegridctl.h"
#include "pbjson.h"
#include "util.h"
#include "validate.h"

#define MAX_REASONS 32

struct sent { /* what we know of each event we sent, by token */
    const char *file;
    long line;
    char *id, *source;
    int answered;
};

struct run {
    struct sent *sent;
    size_t n_sent, cap_sent;
    uint64_t base;           /* this run's tokens are base + index into sent */
    unsigned long recovered; /* answers to events recovered from the outbox */
    unsigned long stored, duplicate, rejected, input_errors;
    unsigned long by_reason[MAX_REASONS];
    FILE *results;
    bool progress;      /* standard error is a terminal: a line that keeps count */
    int64_t started_at; /* og_mono_us() */
    int64_t shown_at;   /* when the progress line was last written */
};

/* The progress line, on a terminal, at most once a second (force: now, and end it). */
static void progress(struct run *run, size_t held, bool force)
{
    int64_t now = og_mono_us();
    if (!run->progress || (!force && now - run->shown_at < 1000000))
        return;
    unsigned long answered = run->stored + run->duplicate + run->rejected;
    double secs = (double)(now - run->started_at) / 1e6;
    fprintf(stderr,
            "\r\033[Ksent %zu, answered %lu (stored %lu, duplicate %lu, rejected %lu), "
            "waiting %zu, %.0f answers/s%s",
            run->n_sent, answered, run->stored, run->duplicate, run->rejected, held,
            secs > 0 ? (double)answered / secs : 0.0, force ? "\n" : "");
    run->shown_at = now;
}

static void on_answer(const struct og_answer *a, void *arg)
{
    struct run *run = arg;
    static const char *names[] = {"", "stored", "duplicate", "rejected"};
    static struct sent from_outbox = {"(outbox)", 0, "", "", 0};
    struct sent *s = &from_outbox;
    json_object *o;

    if (a->token >= run->base && a->token - run->base < run->n_sent)
        s = &run->sent[a->token - run->base];
    else
        run->recovered++; /* sent by an earlier run that did not live to see its answer */
    s->answered = 1;
    if (a->outcome == OG_OUTCOME_STORED)
        run->stored++;
    else if (a->outcome == OG_OUTCOME_DUPLICATE)
        run->duplicate++;
    else {
        run->rejected++;
        if (a->reason >= 0 && a->reason < MAX_REASONS)
            run->by_reason[a->reason]++;
    }
    if (!run->results)
        return;
    o = json_object_new_object();
    json_object_object_add(o, "file", json_object_new_string(s->file));
    json_object_object_add(o, "line", json_object_new_int64(s->line));
    json_object_object_add(o, "id", json_object_new_string(*a->event_id ? a->event_id : s->id));
    json_object_object_add(o, "source", json_object_new_string(*a->source ? a->source : s->source));
    json_object_object_add(o, "outcome", json_object_new_string(names[a->outcome]));
    if (*a->case_id)
        json_object_object_add(o, "case_id", json_object_new_string(a->case_id));
    if (a->outcome == OG_OUTCOME_REJECTED) {
        json_object_object_add(o, "reason", json_object_new_string(a->reason_name));
        json_object_object_add(o, "text", json_object_new_string(a->text));
    }
    fprintf(
        run->results, "%s\n",
        json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
    json_object_put(o);
}

/* The one JSON value of a line of line_len bytes (its newline included), or NULL with err
 * filled: a line holds one event, and anything after its value (a second object, text) or
 * a NUL byte in it would otherwise be dropped without a word. */
static json_object *parse_line(const char *line, size_t line_len, char *err, size_t errlen)
{
    json_tokener *tok;
    json_object *obj;
    size_t end;

    if (strlen(line) != line_len) {
        snprintf(err, errlen, "a NUL byte at column %zu", strlen(line) + 1);
        return NULL;
    }
    if (line_len > INT_MAX) {
        snprintf(err, errlen, "a line of more than %d bytes", INT_MAX);
        return NULL;
    }
    if (!(tok = json_tokener_new())) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    obj = json_tokener_parse_ex(tok, line, (int)line_len);
    if (!obj || json_tokener_get_error(tok) != json_tokener_success) {
        enum json_tokener_error jerr = json_tokener_get_error(tok);
        snprintf(err, errlen, "not JSON: %s",
                 json_tokener_error_desc(
                     jerr == json_tokener_continue ? json_tokener_error_parse_eof : jerr));
        json_object_put(obj);
        json_tokener_free(tok);
        return NULL;
    }
    end = json_tokener_get_parse_end(tok);
    json_tokener_free(tok);
    if (line[end + strspn(line + end, " \t\r\n")] != '\0') {
        snprintf(err, errlen, "more after the JSON value at column %zu (one event per line)",
                 end + 1);
        json_object_put(obj);
        return NULL;
    }
    return obj;
}

/* Turns one JSON line (line_len bytes) into Envelope bytes. Returns 0 (and *buf, *len,
 * *id, *source), or -EINVAL with err filled. */
static int encode_line(const char *line, size_t line_len, int64_t shift, uint8_t **buf, size_t *len,
                       char **id, char **source, char *err, size_t errlen)
{
    json_object *obj, *raw;
    Onegrid__V1__Envelope *e;
    int rc = -EINVAL;
    char key[80];

    /* json-c would keep the last value silently: which one did the writer mean? */
    if (og_json_duplicate_key(line, key, sizeof(key)) == 1) {
        snprintf(err, errlen, "key \"%s\" is given twice in one object", key);
        return -EINVAL;
    }
    if (!(obj = parse_line(line, line_len, err, errlen)))
        return -EINVAL;
    if (json_object_object_get_ex(obj, "raw_base64", &raw)) {
        if (!json_object_is_type(raw, json_type_string)) {
            snprintf(err, errlen, "raw_base64: not a string of base64");
            json_object_put(obj);
            return -EINVAL;
        }
        const char *b64 = json_object_get_string(raw);
        size_t cap = strlen(b64) + 1, n = 0;
        *buf = malloc(cap);
        if (!*buf || sodium_base642bin(*buf, cap, b64, strlen(b64), " \n", &n, NULL,
                                       sodium_base64_VARIANT_ORIGINAL) != 0) {
            snprintf(err, errlen, "raw_base64: not valid base64");
            free(*buf);
            *buf = NULL;
        } else {
            *len = n;
            *id = strdup("");
            *source = strdup("");
            rc = 0;
        }
        json_object_put(obj);
        return rc;
    }
    e = (Onegrid__V1__Envelope *)og_pbjson_parse(obj, &onegrid__v1__envelope__descriptor, err,
                                                 errlen);
    json_object_put(obj);
    if (!e)
        return -EINVAL;
    if (e->time)
        e->time->seconds += shift;
    *len = protobuf_c_message_get_packed_size(&e->base);
    *buf = malloc(*len ? *len : 1);
    if (*buf)
        protobuf_c_message_pack(&e->base, *buf);
    *id = strdup(e->id);
    *source = strdup(e->source);
    onegrid__v1__envelope__free_unpacked(e, NULL);
    return *buf ? 0 : -ENOMEM;
}

static int add_sent(struct run *run, const char *file, long line, char *id, char *source)
{
    if (run->n_sent == run->cap_sent) {
        size_t cap = run->cap_sent ? run->cap_sent * 2 : 1024;
        struct sent *s = realloc(run->sent, cap * sizeof(*s));
        if (!s)
            return -ENOMEM;
        run->sent = s;
        run->cap_sent = cap;
    }
    run->sent[run->n_sent++] = (struct sent){file, line, id, source, 0};
    return 0;
}

/* Hands the last event read to the publisher. A full queue or outbox (-ENOBUFS) drains
 * as answers come. A full file system under the outbox may take long, or forever: say
 * so once, keep trying, and return -ENOSPC or -EDQUOT when wait_s seconds have passed.
 * Other errors are final. */
static int send_waiting(struct og_publisher *p, struct run *run, const uint8_t *buf, size_t len,
                        const char *outbox, long wait_s)
{
    int64_t since = 0;
    int rc, n;

    for (;;) {
        rc = og_publisher_send(p, run->base + run->n_sent - 1, buf, len);
        if (rc != -ENOBUFS && rc != -ENOSPC && rc != -EDQUOT)
            break;
        n = og_publisher_poll(p, 100, on_answer, run);
        if (n == -ENOSPC || n == -EDQUOT) { /* the outbox could not be synced */
            rc = n;
            poll(NULL, 0, 100);
        } else if (n < 0) {
            rc = n;
            break;
        }
        if (rc == -ENOBUFS)
            continue;
        if (!since) {
            since = og_mono_us();
            fprintf(stderr,
                    "onegridctl publish: outbox \"%s\": %s; waiting for space (%zu events "
                    "waiting)\n",
                    outbox, rc == -ENOSPC ? "no space left on device" : "disk quota exceeded",
                    og_publisher_held(p));
        } else if (og_mono_us() - since > (int64_t)wait_s * 1000000) {
            return rc;
        }
    }
    if (since && rc == 0)
        fprintf(stderr, "onegridctl publish: outbox \"%s\": space again after %.1f s\n", outbox,
                (double)(og_mono_us() - since) / 1e6);
    return rc;
}

/* --dry-run: each line of each file encoded and checked as intake checks an event (its
 * default limits; the registry is dispatch's and not consulted). Prints the lines that
 * would be refused and a count; the exit status as publish's. */
static int dry_run_files(int n, char **files, int64_t shift)
{
    struct og_limits lim = {
        .max_bytes = 65536, .now = og_now_us() / 1000000, .max_age = 30 * 86400, .max_future = 300};
    unsigned long valid = 0, refused = 0, bad = 0;
    char err[512], *line = NULL;
    size_t cap = 0;

    for (int i = 0; i < n; i++) {
        FILE *f = strcmp(files[i], "-") == 0 ? stdin : fopen(files[i], "r");
        long lineno = 0;
        if (!f) {
            fprintf(stderr, "onegridctl publish: could not open \"%s\": %s\n", files[i],
                    strerror(errno));
            bad++;
            continue;
        }
        ssize_t got;
        while ((got = getline(&line, &cap, f)) > 0) {
            uint8_t *buf = NULL;
            size_t len = 0;
            char *id = NULL, *source = NULL;
            struct og_verdict v = {0};
            lineno++;
            if (line[strspn(line, " \t\r\n")] == '\0')
                continue;
            if (encode_line(line, (size_t)got, shift, &buf, &len, &id, &source, err, sizeof(err)) <
                0) {
                fprintf(stderr, "%s:%ld: %s\n", files[i], lineno, err);
                free(buf);
                free(id);
                free(source);
                bad++;
                continue;
            }
            Onegrid__V1__Envelope *e = og_validate_envelope(buf, len, &lim, &v);
            if (e) {
                valid++;
                onegrid__v1__envelope__free_unpacked(e, NULL);
            } else {
                refused++;
                printf("%s:%ld: \"%s\": would be refused: %s: %s\n", files[i], lineno, id,
                       og_reason_name(v.reason), v.text);
            }
            free(buf);
            free(id);
            free(source);
        }
        if (f != stdin)
            fclose(f);
    }
    free(line);
    printf("checked %lu events: %lu valid, %lu would be refused by intake (the registry is "
           "dispatch's and was not consulted)%s\n",
           valid + refused, valid, refused,
           bad ? "; some lines could not be read (see above)" : "");
    return bad ? OG_EXIT_USAGE : refused ? OG_EXIT_REJECTED : OG_EXIT_OK;
}

static void usage(FILE *out)
{
    fprintf(
        out,
        "usage: onegridctl publish --endpoint EP [options] [FILE...]\n"
        "       onegridctl publish --dry-run FILE...\n"
        "  -e, --endpoint EP        onegrid-intake's endpoint (tcp://HOST:PORT, ipc://PATH)\n"
        "  -w, --window N           events unanswered at most (default 500)\n"
        "  -t, --timeout S          give up when no answer came for S seconds (default 60)\n"
        "  -r, --results FILE       write one JSON line per event with its answer\n"
        "      --rebase-time TIME   shift every event's time by (now - TIME), to replay\n"
        "                           sample data recorded at TIME (RFC 3339)\n"
        "  -o, --outbox FILE        keep events in FILE until answered; events an earlier\n"
        "                           run left unanswered there are sent again first\n"
        "      --wait-space S       when the outbox's file system is full, say so, keep trying\n"
        "                           and give up (exit status 5) after S seconds (default 300)\n"
        "      --curve-server-key K intake's CURVE public key (the key, or a file holding it)\n"
        "      --curve-key FILE     this publisher's CURVE secret key file (onegridctl keygen);\n"
        "                           both when intake requires CURVE\n"
        "  -n, --dry-run            publish nothing: check each line as intake would (with its\n"
        "                           default limits) and say which would be refused; no\n"
        "                           --endpoint needed. The registry is not consulted.\n"
        "FILE is JSON Lines (docs/integrating.md), - for standard input. With --outbox and no\n"
        "FILE, only what an earlier run left in the outbox is sent.\n"
        "On a terminal a progress line on standard error keeps count.\n"
        "exit status: 0 all stored or duplicate (--dry-run: valid), 3 some rejected (would\n"
        "             be), 4 some unanswered,\n"
        "             2 bad arguments or input lines, 5 no space for the outbox\n");
}

int og_cmd_publish(int argc, char **argv)
{
    static const struct option opts[] = {{"endpoint", required_argument, NULL, 'e'},
                                         {"window", required_argument, NULL, 'w'},
                                         {"timeout", required_argument, NULL, 't'},
                                         {"results", required_argument, NULL, 'r'},
                                         {"rebase-time", required_argument, NULL, 'b'},
                                         {"outbox", required_argument, NULL, 'o'},
                                         {"wait-space", required_argument, NULL, 'W'},
                                         {"curve-server-key", required_argument, NULL, 'S'},
                                         {"curve-key", required_argument, NULL, 'K'},
                                         {"dry-run", no_argument, NULL, 'n'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    struct og_publisher_opts po = {0};
    struct og_publisher *p = NULL;
    struct run run = {0};
    const char *endpoint = NULL;
    int64_t shift = 0, last_answer;
    long timeout_s = 60, wait_space_s = 300;
    char err[512], *line = NULL;
    size_t line_cap = 0;
    int c, rc = OG_EXIT_FAIL;
    char server_key[41] = "", client_secret[41] = "", client_public[41] = "";

    optind = 1;
    bool dry_run = false;
    while ((c = getopt_long(argc, argv, "e:w:t:r:o:nh", opts, NULL)) != -1) {
        switch (c) {
        case 'n':
            dry_run = true;
            break;
        case 'S':
        case 'K':
            if (og_read_key(optarg, c == 'K', c == 'S' ? server_key : client_secret, err,
                            sizeof(err)) < 0) {
                fprintf(stderr, "onegridctl publish: %s: %s\n",
                        c == 'S' ? "--curve-server-key" : "--curve-key", err);
                return OG_EXIT_USAGE;
            }
            break;
        case 'o':
            po.outbox_path = optarg;
            break;
        case 'e':
            endpoint = optarg;
            break;
        case 'w':
        case 't':
        case 'W': {
            long long v;
            if (og_cli_integer("publish",
                               c == 'w'   ? "--window"
                               : c == 't' ? "--timeout"
                                          : "--wait-space",
                               optarg, c == 'W' ? 0 : 1, c == 'w' ? 1000000 : 86400 * 365,
                               &v) < 0) {
                if (run.results)
                    fclose(run.results);
                return OG_EXIT_USAGE;
            }
            if (c == 'w')
                po.window = (unsigned)v;
            else if (c == 't')
                timeout_s = (long)v;
            else
                wait_space_s = (long)v;
            break;
        }
        case 'r':
            run.results = fopen(optarg, "w");
            if (!run.results) {
                fprintf(stderr, "onegridctl publish: could not open \"%s\": %s\n", optarg,
                        strerror(errno));
                return OG_EXIT_USAGE;
            }
            break;
        case 'b': {
            int64_t ref;
            int32_t ns;
            if (og_time_parse(optarg, &ref, &ns)) {
                fprintf(stderr,
                        "onegridctl publish: --rebase-time: \"%s\" is not an RFC 3339 time\n",
                        optarg);
                return OG_EXIT_USAGE;
            }
            shift = og_now_us() / 1000000 - ref;
            break;
        }
        case 'h':
            usage(stdout);
            return OG_EXIT_OK;
        default:
            usage(stderr);
            return OG_EXIT_USAGE;
        }
    }
    if (dry_run) { /* publishes nothing: no endpoint, no outbox, no results */
        if (run.results)
            fclose(run.results);
        if (optind == argc || po.outbox_path) {
            fprintf(stderr, "onegridctl publish: --dry-run checks FILEs and publishes nothing: "
                            "give FILEs, and no --outbox\n");
            return OG_EXIT_USAGE;
        }
        return dry_run_files(argc - optind, argv + optind, shift);
    }
    if (!endpoint || (optind == argc && !po.outbox_path) || timeout_s < 1 || wait_space_s < 0) {
        usage(stderr);
        if (run.results)
            fclose(run.results);
        return OG_EXIT_USAGE;
    }
    if (sodium_init() < 0) {
        fprintf(stderr, "onegridctl publish: libsodium could not be initialised\n");
        goto out;
    }
    if (!*server_key != !*client_secret) {
        fprintf(stderr, "onegridctl publish: --curve-server-key and --curve-key go together\n");
        rc = OG_EXIT_USAGE;
        goto out;
    }
    if (*server_key) {
        if (zmq_curve_public(client_public, client_secret) != 0) {
            fprintf(stderr, "onegridctl publish: --curve-key: %s\n", zmq_strerror(errno));
            goto out;
        }
        po.curve_server_key = server_key;
        po.curve_public_key = client_public;
        po.curve_secret_key = client_secret;
    }
    err[0] = '\0';
    p = og_publisher_new(endpoint, &po, err, sizeof(err));
    if (!p) {
        fprintf(stderr, "onegridctl publish: %s\n", err);
        goto out;
    }
    if (*err) /* a warning: damage found in the outbox */
        fprintf(stderr, "onegridctl publish: warning: %s\n", err);
    if (og_publisher_held(p))
        printf("outbox: %zu events of an earlier run not yet answered, sending them again\n",
               og_publisher_held(p));
    /* Tokens from the clock: never equal to those of an earlier run left in the outbox. */
    run.base = (uint64_t)og_now_us() << 8;
    run.progress = isatty(STDERR_FILENO) == 1;
    run.started_at = og_mono_us();

    for (int i = optind; i < argc; i++) {
        const char *name = argv[i];
        FILE *f = strcmp(name, "-") == 0 ? stdin : fopen(name, "r");
        long lineno = 0;
        if (!f) {
            fprintf(stderr, "onegridctl publish: could not open \"%s\": %s\n", name,
                    strerror(errno));
            run.input_errors++;
            continue;
        }
        ssize_t got;
        while ((got = getline(&line, &line_cap, f)) > 0) {
            uint8_t *buf = NULL;
            size_t len = 0;
            char *id = NULL, *source = NULL;
            lineno++;
            if (line[strspn(line, " \t\r\n")] == '\0')
                continue;
            if (encode_line(line, (size_t)got, shift, &buf, &len, &id, &source, err, sizeof(err)) <
                0) {
                fprintf(stderr, "%s:%ld: %s\n", name, lineno, err);
                free(buf);
                free(id);
                free(source);
                run.input_errors++;
                continue;
            }
            if (add_sent(&run, name, lineno, id, source) < 0) {
                fprintf(stderr, "onegridctl publish: out of memory\n");
                free(buf);
                goto out;
            }
            int src = send_waiting(p, &run, buf, len, po.outbox_path, wait_space_s);
            free(buf);
            if (src == -ENOSPC || src == -EDQUOT) {
                fprintf(stderr,
                        "onegridctl publish: outbox \"%s\": still no space after %ld s, giving "
                        "up; %s:%ld and the lines after it were not published\n",
                        po.outbox_path, wait_space_s, name, lineno);
                rc = OG_EXIT_NO_SPACE;
                goto out;
            }
            if (src == -EMSGSIZE) { /* no answer will make room for it */
                fprintf(stderr,
                        "%s:%ld: the event (%zu bytes) is larger than the outbox may hold\n", name,
                        lineno, len);
                run.n_sent--;
                free(run.sent[run.n_sent].id);
                free(run.sent[run.n_sent].source);
                run.input_errors++;
                continue;
            }
            if (src < 0) {
                fprintf(stderr, "onegridctl publish: %s:%ld: %s\n", name, lineno, strerror(-src));
                goto out;
            }
            /* Keep what is held bounded while reading a large file. */
            while (og_publisher_held(p) >= 10000)
                if (og_publisher_poll(p, 100, on_answer, &run) < 0)
                    break;
            progress(&run, og_publisher_held(p), false);
        }
        if (f != stdin)
            fclose(f);
    }

    last_answer = og_mono_us();
    while (og_publisher_held(p) > 0) {
        int n = og_publisher_poll(p, 200, on_answer, &run);
        if (n < 0) {
            fprintf(stderr, "onegridctl publish: %s\n", strerror(-n));
            break;
        }
        if (n > 0)
            last_answer = og_mono_us();
        else if (og_mono_us() - last_answer > timeout_s * 1000000)
            break;
        progress(&run, og_publisher_held(p), false);
    }
    progress(&run, og_publisher_held(p), true);

    size_t unanswered = og_publisher_held(p);
    printf("published %zu events: stored %lu, duplicate %lu, rejected %lu, unanswered %zu\n",
           run.n_sent + run.recovered, run.stored, run.duplicate, run.rejected, unanswered);
    if (run.rejected) {
        printf("rejected by reason:\n");
        for (int r = 0; r < MAX_REASONS; r++)
            if (run.by_reason[r])
                printf("  %-28s %lu\n", og_reason_name(r), run.by_reason[r]);
    }
    if (run.recovered)
        printf("of these answers, %lu were for events recovered from the outbox\n", run.recovered);
    if (run.input_errors)
        printf("input lines not published: %lu (see the messages above)\n", run.input_errors);
    if (unanswered) {
        for (size_t i = 0; i < run.n_sent; i++)
            if (!run.sent[i].answered)
                fprintf(stderr, "%s:%ld: no answer for \"%s\"\n", run.sent[i].file,
                        run.sent[i].line, run.sent[i].id);
        rc = OG_EXIT_UNANSWERED;
    } else if (run.input_errors) {
        rc = OG_EXIT_USAGE;
    } else {
        rc = run.rejected ? OG_EXIT_REJECTED : OG_EXIT_OK;
    }
out:
    og_publisher_destroy(&p);
    sodium_memzero(client_secret, sizeof(client_secret));
    for (size_t i = 0; i < run.n_sent; i++) {
        free(run.sent[i].id);
        free(run.sent[i].source);
    }
    free(run.sent);
    free(line);
    if (run.results)
        fclose(run.results);
    return rc;
}
