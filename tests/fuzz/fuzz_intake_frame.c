/* libFuzzer target: intake's publisher frame path. The input is one publisher frame, the
 * bytes of a Submit as they arrive on intake's ROUTER; it goes through og_intake_submit
 * (daemons/intake/intake.c), as handle_publisher calls it: the Submit's wire check and
 * decoding, then og_intake_frame on the Envelope it carries (with and without an
 * authenticated source), or og_intake_refusal for a broken Submit.
 *
 * Beyond "no crash, no leak, no undefined behaviour", what intake passes on must be what
 * dispatch takes: the DATA frame packs, decodes again and passes og_frame_check for the
 * intake -> dispatch hop. A frame dispatch drops is never answered, and its publisher
 * resends it for ever. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "frame_check.h"
#include "intake.h"
#include "link.h"
#include "validate.h"

/* Limits as the sample configuration has them, except a smaller max_event_bytes so that
 * the fuzzer reaches REASON_TOO_LARGE with inputs of a sensible size. */
static const struct og_intake_opts opts = {
    .max_event_bytes = 8192,
    .max_rejected_bytes = 4096,
    .max_age = 30 * 86400,
    .max_future = 300,
};

/* 2026-11-20T01:15:00.123456Z, a few days after the sample events: "now" is fixed so that
 * a saved input reproduces. */
#define NOW_US (1795137300LL * 1000000 + 123456)

/* Packs f, decodes it as dispatch's link does, and checks it for the intake -> dispatch
 * hop. Frees f. */
static void passed_on(Onegrid__V1__Frame *f)
{
    size_t len;
    uint8_t *buf;
    Onegrid__V1__Frame *g;
    char why[256];

    if (!f)
        og_fuzz_fail("intake produced no frame (only ENOMEM may do that)");
    buf = og_pack(&f->base, &len);
    og_intake_frame_free(&f);
    if (!buf)
        og_fuzz_fail("could not pack intake's frame");
    g = onegrid__v1__frame__unpack(NULL, len, buf);
    free(buf);
    if (!g)
        og_fuzz_fail("intake's frame does not decode");
    if (og_frame_check(g, OG_FRAME_HOP_INTAKE_DISPATCH, why, sizeof(why)) < 0)
        og_fuzz_fail("dispatch would drop intake's frame for \"%s\": %s", g->key, why);
    onegrid__v1__frame__free_unpacked(g, NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t tag[OG_MAX_TAG];
    size_t tag_len;

    /* As handle_publisher does it, ZeroMQ framing aside. Without CURVE every publisher is
     * "local"; with it, the key's name and source. */
    passed_on(og_intake_submit(&opts, "local", NULL, data, size, NOW_US, tag, &tag_len));
    passed_on(
        og_intake_submit(&opts, "zongzhi-gateway", "zongzhi", data, size, NOW_US, tag, &tag_len));
    return 0;
}
