/* libFuzzer target: what the receiving ends of the internal links do with one Frame. The
 * input is the bytes of one Frame as a link carries it. It is decoded as
 * daemons/common/link.c decodes it, then:
 *  - as a server receives it (og_link_server_recv takes DATA frames with a key):
 *    og_frame_check for the intake -> dispatch hop (dispatch) and for the dispatch ->
 *    archive hop (archive), and for a record archive takes, what store.c does before the
 *    database sees it: render the event, its contact and the decisions as JSON
 *    (og_pbjson_render), format the times, and turn it into a refusal (og_store_refuse,
 *    og_store_refuse_minimal) as a record the database refused;
 *  - as a client receives it (ANSWER and CREDIT frames): og_frame_check for the
 *    archive -> dispatch and dispatch -> intake hops.
 * ZeroMQ itself is not in the loop: the link hands the frame's bytes to protobuf-c as
 * they arrived. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "archive.h"
#include "frame_check.h"
#include "fuzz.h"
#include "pbjson.h"
#include "util.h"

/* Renders m as archive stores it, and drops the text. */
static void render(const ProtobufCMessage *m)
{
    json_object *j = og_pbjson_render(m);
    if (!j)
        og_fuzz_fail("og_pbjson_render returned NULL");
    (void)json_object_to_json_string_ext(j,
                                         JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
    json_object_put(j);
}

static void render_time(const Onegrid__V1__Timestamp *t)
{
    char buf[48];
    if (t)
        og_time_format(t->seconds, t->nanos, buf, sizeof(buf));
}

/* A record archive took (it passed og_frame_check): what store.c computes from it
 * without the database. */
static void archive_record(Onegrid__V1__Frame *f)
{
    struct og_store_item item = {.frame = f};
    const Onegrid__V1__Envelope *e = f->submission->event;
    const Onegrid__V1__Decision *d = f->decision;

    render_time(f->submission->received);
    if (d && d->kind != ONEGRID__V1__DECISION__KIND__KIND_REJECT) {
        /* send_item: the event (its contact apart), the decision, the further ones. */
        if (e->payload_case == ONEGRID__V1__ENVELOPE__PAYLOAD_REPORT && e->report->contact)
            render(&e->report->contact->base);
        render(&e->base);
        render(&d->base);
        render_time(d->deadline);
        render_time(d->closed);
        render_time(d->opened);
        render_time(d->paused_at);
        for (size_t i = 0; i < f->n_more_decisions; i++)
            render(&f->more_decisions[i]->base);
    }
    /* The database refused the record: it is stored as a refusal, then a minimal one. */
    og_store_refuse(&item, "value too long for type character varying(64)");
    og_store_refuse_minimal(&item);
    og_store_item_clear(&item);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    Onegrid__V1__Frame *f = onegrid__v1__frame__unpack(NULL, size, data);
    char why[256];

    if (!f)
        return 0;
    if (f->kind == ONEGRID__V1__FRAME__KIND__KIND_DATA && *f->key) {
        og_frame_check(f, OG_FRAME_HOP_INTAKE_DISPATCH, why, sizeof(why));
        if (og_frame_check(f, OG_FRAME_HOP_DISPATCH_ARCHIVE, why, sizeof(why)) == 0)
            archive_record(f);
    } else {
        og_frame_check(f, OG_FRAME_HOP_ARCHIVE_DISPATCH, why, sizeof(why));
        og_frame_check(f, OG_FRAME_HOP_DISPATCH_INTAKE, why, sizeof(why));
    }
    onegrid__v1__frame__free_unpacked(f, NULL);
    return 0;
}
