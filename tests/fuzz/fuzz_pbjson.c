/* libFuzzer target: JSON Lines -> protobuf, as onegridctl publish reads a line
 * (daemons/onegridctl/publish.c, encode_line): the duplicate-key scan, json-c's tokenizer,
 * then og_pbjson_parse into an Envelope, then packing. The input is one line of text.
 *
 * Beyond "no crash, no leak, no undefined behaviour": what parses must survive
 * og_pbjson_render and parse back to the same bytes (the round trip test_pbjson.c checks
 * for hand-made events), since archive stores rendered JSON that people read back. The
 * whole input is also taken as one time, since times are where the JSON form and the
 * wire form differ most: a time og_pbjson_parse takes must render (og_time_format) as a
 * time it takes back, the same instant. The fuzzer finds such inputs much sooner on
 * their own than inside an event. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "fuzz.h"
#include "onegrid/v1/event.pb-c.h"
#include "pbjson.h"
#include "util.h"

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
    json_object *obj;
    ProtobufCMessage *m;
    char key[80];

    /* publish refuses a key twice in one object before json-c reads the line. */
    if (og_json_duplicate_key(text, key, sizeof(key)) != 0)
        return NULL;
    obj = json_tokener_parse_verbose(text, &jerr);
    if (!obj)
        return NULL;
    m = og_pbjson_parse(obj, &onegrid__v1__envelope__descriptor, err, errlen);
    json_object_put(obj);
    return m;
}

/* A time as a JSON line would give it: rendered and read back, it must not change. */
static void time_round_trip(const char *text)
{
    char line[512], err[512] = "";
    ProtobufCMessage *m;
    const Onegrid__V1__Envelope *e;
    int64_t seconds;
    int32_t nanos;
    char back[64];
    json_object *j;

    j = json_object_new_string(text);
    snprintf(line, sizeof(line), "{\"time\": %s}", json_object_to_json_string(j));
    json_object_put(j);
    if (strlen(text) > 64 || !(m = parse(line, err, sizeof(err))))
        return;
    e = (const Onegrid__V1__Envelope *)m;
    og_time_format(e->time->seconds, e->time->nanos, back, sizeof(back));
    if (og_time_parse(back, &seconds, &nanos) < 0 || seconds != e->time->seconds ||
        nanos != e->time->nanos)
        og_fuzz_fail("time \"%s\" was taken as %lld s %d ns, which renders as \"%s\", which "
                     "is not the same time",
                     text, (long long)e->time->seconds, (int)e->time->nanos, back);
    protobuf_c_message_free_unpacked(m, NULL);
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
    time_round_trip(line);
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
