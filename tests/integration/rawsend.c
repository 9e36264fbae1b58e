/* rawsend: a test tool that sends hand-made messages to onegrid-intake, bypassing
 * libonegrid, and prints each answer.
 *
 *   rawsend [--id ID] [--timeout S] [--reconnect MESSAGE] [--then MESSAGE] ENDPOINT MESSAGE...
 *
 * A MESSAGE is hex bytes, with '|' between the frames of a multipart message, or @FILE: the
 * same read from FILE (for messages longer than an argument may be). Prints one
 * line per answer: "tag=<hex> outcome=<stored|duplicate> case=<id>" or "tag=<hex>
 * outcome=rejected reason=<name> text=<text>", and waits for one answer per MESSAGE.
 *   --id ID          the DEALER's routing id (ZMQ_ROUTING_ID), as a publisher may set it
 *   --timeout S      seconds to wait for each answer (default 10); exit 1 when one is late
 *   --reconnect M    after sending, wait for a line on stdin, then connect a second DEALER
 *                    with the same routing id while the first stays connected (it never
 *                    reconnects: a frozen or half-dead old connection), send M on it and
 *                    read every answer there, those to the first socket's messages too
 *   --then M         once every answer came, send M (a one-frame Submit with a non-empty
 *                    tag) and print every answer up to M's own: anything printed between
 *                    is an answer too many */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "onegrid/v1/event.pb-c.h"
#include "util.h"
#include "validate.h"

static size_t unhex(const char *s, size_t n, uint8_t *out)
{
    size_t k = 0;
    for (size_t i = 0; i + 1 < n; i += 2) {
        unsigned v;
        sscanf(s + i, "%2x", &v);
        out[k++] = (uint8_t)v;
    }
    return k;
}

/* MESSAGE itself, or for @FILE what FILE holds (without its line end); free it. */
static char *message_text(const char *arg)
{
    if (arg[0] != '@')
        return strdup(arg);
    FILE *f = fopen(arg + 1, "r");
    char *text = NULL;
    size_t cap = 0;
    if (!f || getdelim(&text, &cap, '\0', f) < 0) {
        fprintf(stderr, "rawsend: cannot read \"%s\"\n", arg + 1);
        exit(2);
    }
    fclose(f);
    text[strcspn(text, "\r\n")] = '\0';
    return text;
}

/* Sends one MESSAGE; fills tag (at most 64 bytes) with its Submit's tag if it is one. */
static void send_message(void *s, const char *arg, uint8_t *tag, size_t *tag_len)
{
    char *text = message_text(arg);
    const char *m = text;
    int first = 1;
    if (tag_len)
        *tag_len = 0;
    while (1) {
        const char *bar = strchr(m, '|');
        size_t n = bar ? (size_t)(bar - m) : strlen(m);
        uint8_t *buf = malloc(n / 2 + 1);
        size_t len = unhex(m, n, buf);
        if (first && !bar && tag) {
            Onegrid__V1__Submit *sub = onegrid__v1__submit__unpack(NULL, len, buf);
            if (sub && sub->tag.len > 0 && sub->tag.len <= 64) {
                memcpy(tag, sub->tag.data, sub->tag.len);
                *tag_len = sub->tag.len;
            }
            if (sub)
                onegrid__v1__submit__free_unpacked(sub, NULL);
        }
        zmq_send(s, buf, len, bar ? ZMQ_SNDMORE : 0);
        free(buf);
        first = 0;
        if (!bar)
            break;
        m = bar + 1;
    }
    free(text);
}

/* Receives and prints one answer. 0, or -1 when none came in time. Fills tag. */
static int print_answer(void *s, uint8_t *tag, size_t *tag_len)
{
    zmq_msg_t msg;
    char hex[200];

    zmq_msg_init(&msg);
    if (zmq_msg_recv(&msg, s, 0) < 0) {
        zmq_msg_close(&msg);
        return -1;
    }
    Onegrid__V1__Reply *r =
        onegrid__v1__reply__unpack(NULL, zmq_msg_size(&msg), zmq_msg_data(&msg));
    *tag_len = 0;
    if (!r) {
        printf("undecodable reply\n");
    } else {
        *tag_len = r->tag.len < 64 ? r->tag.len : 64;
        if (*tag_len)
            memcpy(tag, r->tag.data, *tag_len);
        og_hex(r->tag.data, *tag_len, hex);
        if (r->result_case == ONEGRID__V1__REPLY__RESULT_ACK)
            printf("tag=%s outcome=%s case=%s\n", hex,
                   r->ack->outcome == ONEGRID__V1__ACK__OUTCOME__OUTCOME_STORED ? "stored"
                                                                                : "duplicate",
                   r->ack->case_id);
        else
            printf("tag=%s outcome=rejected reason=%s text=%s\n", hex,
                   og_reason_name(r->nack->reason), r->nack->text);
        onegrid__v1__reply__free_unpacked(r, NULL);
    }
    fflush(stdout);
    zmq_msg_close(&msg);
    return 0;
}

static void *dealer(void *ctx, const char *id, int timeout_ms, int may_reconnect)
{
    void *s = zmq_socket(ctx, ZMQ_DEALER);
    int linger = 0, never = -1;
    zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof(linger));
    zmq_setsockopt(s, ZMQ_RCVTIMEO, &timeout_ms, sizeof(timeout_ms));
    if (id)
        zmq_setsockopt(s, ZMQ_ROUTING_ID, id, strlen(id));
    if (!may_reconnect)
        zmq_setsockopt(s, ZMQ_RECONNECT_IVL, &never, sizeof(never));
    return s;
}

int main(int argc, char **argv)
{
    const char *id = NULL, *reconnect = NULL, *then = NULL;
    int timeout_ms = 10000, rc = 0, a = 1;
    void *ctx = zmq_ctx_new(), *s, *old = NULL;
    uint8_t tag[64], want[64];
    size_t tag_len, want_len, expected;

    for (; a + 1 < argc && strncmp(argv[a], "--", 2) == 0; a += 2) {
        if (strcmp(argv[a], "--id") == 0)
            id = argv[a + 1];
        else if (strcmp(argv[a], "--timeout") == 0)
            timeout_ms = atoi(argv[a + 1]) * 1000;
        else if (strcmp(argv[a], "--reconnect") == 0)
            reconnect = argv[a + 1];
        else if (strcmp(argv[a], "--then") == 0)
            then = argv[a + 1];
        else
            break;
    }
    if (argc - a < 2 || timeout_ms <= 0) {
        fprintf(stderr, "usage: rawsend [--id ID] [--timeout S] [--reconnect MESSAGE] "
                        "[--then MESSAGE] ENDPOINT MESSAGE...\n");
        return 2;
    }
    s = dealer(ctx, id, timeout_ms, !reconnect);
    zmq_connect(s, argv[a]);
    for (int i = a + 1; i < argc; i++)
        send_message(s, argv[i], NULL, NULL);
    expected = (size_t)(argc - a - 1);
    if (reconnect) {
        char line[16];
        if (!fgets(line, sizeof(line), stdin)) {
            fprintf(stderr, "rawsend: stdin closed before the reconnect\n");
            return 1;
        }
        old = s;
        s = dealer(ctx, id, timeout_ms, 1);
        zmq_connect(s, argv[a]);
        send_message(s, reconnect, NULL, NULL);
        expected++;
    }
    for (size_t i = 0; i < expected && rc == 0; i++) {
        if (print_answer(s, tag, &tag_len) < 0) {
            fprintf(stderr, "rawsend: answer %zu of %zu did not come within %d s\n", i + 1,
                    expected, timeout_ms / 1000);
            rc = 1;
        }
    }
    if (rc == 0 && then) {
        send_message(s, then, want, &want_len);
        if (want_len == 0) {
            fprintf(stderr, "rawsend: --then needs a one-frame Submit with a tag\n");
            rc = 2;
        }
        while (rc == 0) {
            if (print_answer(s, tag, &tag_len) < 0) {
                fprintf(stderr, "rawsend: the answer to --then did not come within %d s\n",
                        timeout_ms / 1000);
                rc = 1;
            } else if (tag_len == want_len && memcmp(tag, want, want_len) == 0) {
                break;
            }
        }
    }
    if (old)
        zmq_close(old);
    zmq_close(s);
    zmq_ctx_term(ctx);
    return rc;
}
