/* libFuzzer target: JSON Lines -> protobuf, as onegridctl publish reads a line
 * (daemons/onegridctl/publish.c, encode_line): json-c's tokenizer, then og_pbjson_parse
 * into an Envelope, then packing. The input is one line of text.
 *
 * Beyond "no crash, no leak, no undefined behaviour": what parses must survive
 * og_pbjson_render and parse back to the same bytes (the round trip test_pbjson.c checks
 * for hand-made events), since archive stores rendered JSON that people read back. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "fuzz.h"
#include "onegrid/v1/event.pb-c.h"
#include "pbjson.h"

static uint8_t *pack(const ProtobufCMessage *m, size_t *len)
{
    uint8_t *buf;
    *len = protobuf_c_message_get_packed_size(m);
    buf = malloc(*len ? *len : 1);
    if (!buf)
        og_fuzz_fail("out of memory");
    protobuf_c_message_pack(m, buf);
    return buf;
}

/* Parses text as publish does; NULL when it is refused. */
static ProtobufCMessage *parse(const char *text, char *err, size_t errlen)
{
    enum json_tokener_error jerr;
    json_object *obj = json_tokener_parse_verbose(text, &jerr);
    ProtobufCMessage *m;

    if (!obj)
        return NULL;
    m = og_pbjson_parse(obj, &onegrid__v1__envelope__descriptor, err, errlen);
    json_object_put(obj);
    return m;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *line = malloc(size + 1), err[512] = "";
    ProtobufCMessage *m, *back;
    json_object *j;
    uint8_t *want, *got;
    size_t want_len, got_len;
    char *text;

    if (!line)
        return 0;
    /* publish reads with getline and passes the line on as a C string. */
    memcpy(line, data, size);
    line[size] = '\0';
    m = parse(line, err, sizeof(err));
    free(line);
    if (!m)
        return 0;
    want = pack(m, &want_len);

    j = og_pbjson_render(m);
    if (!j)
        og_fuzz_fail("og_pbjson_render returned NULL");
    text = strdup(json_object_to_json_string_ext(j, JSON_C_TO_STRING_PLAIN));
    json_object_put(j);
    if (!text)
        og_fuzz_fail("out of memory");
    back = parse(text, err, sizeof(err));
    if (!back)
        og_fuzz_fail("rendered JSON does not parse back (%s): %s", err, text);
    got = pack(back, &got_len);
    if (got_len != want_len || memcmp(got, want, want_len) != 0)
        og_fuzz_fail("the round trip through JSON changed the message: %s", text);

    free(text);
    free(want);
    free(got);
    protobuf_c_message_free_unpacked(back, NULL);
    protobuf_c_message_free_unpacked(m, NULL);
    return 0;
}
