/* rawsend: a test tool that sends hand-made messages to onegrid-intake, bypassing
 * libonegrid, and prints each answer. Usage: rawsend ENDPOINT MESSAGE... where a MESSAGE
 * is hex bytes, with '|' between the frames of a multipart message. Prints one line per
 * answer: "tag=<hex> outcome=<stored|duplicate|rejected> reason=<name> text=<text>".
 * Exits 1 if an answer does not come within 10 s. */
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

int main(int argc, char **argv)
{
    void *ctx = zmq_ctx_new(), *s = zmq_socket(ctx, ZMQ_DEALER);
    int linger = 0, timeout = 10000, rc = 0;

    if (argc < 3) {
        fprintf(stderr, "usage: rawsend ENDPOINT MESSAGE...\n");
        return 2;
    }
    zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof(linger));
    zmq_setsockopt(s, ZMQ_RCVTIMEO, &timeout, sizeof(timeout));
    zmq_connect(s, argv[1]);
    for (int a = 2; a < argc; a++) {
        const char *m = argv[a];
        while (1) {
            const char *bar = strchr(m, '|');
            size_t n = bar ? (size_t)(bar - m) : strlen(m);
            uint8_t *buf = malloc(n / 2 + 1);
            size_t len = unhex(m, n, buf);
            zmq_send(s, buf, len, bar ? ZMQ_SNDMORE : 0);
            free(buf);
            if (!bar)
                break;
            m = bar + 1;
        }
    }
    for (int a = 2; a < argc; a++) {
        zmq_msg_t msg;
        zmq_msg_init(&msg);
        if (zmq_msg_recv(&msg, s, 0) < 0) {
            fprintf(stderr, "rawsend: no answer within 10 s\n");
            rc = 1;
            break;
        }
        Onegrid__V1__Reply *r = onegrid__v1__reply__unpack(NULL, zmq_msg_size(&msg), zmq_msg_data(&msg));
        char hex[200];
        if (!r) {
            printf("undecodable reply\n");
        } else {
            og_hex(r->tag.data, r->tag.len < 64 ? r->tag.len : 64, hex);
            if (r->result_case == ONEGRID__V1__REPLY__RESULT_ACK)
                printf("tag=%s outcome=%s case=%s\n", hex,
                       r->ack->outcome == ONEGRID__V1__ACK__OUTCOME__OUTCOME_STORED ? "stored" : "duplicate",
                       r->ack->case_id);
            else
                printf("tag=%s outcome=rejected reason=%s text=%s\n", hex,
                       og_reason_name(r->nack->reason), r->nack->text);
            onegrid__v1__reply__free_unpacked(r, NULL);
        }
        zmq_msg_close(&msg);
    }
    zmq_close(s);
    zmq_ctx_term(ctx);
    return rc;
}
