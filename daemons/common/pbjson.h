/* Conversion between protobuf-c messages and JSON (json-c), driven by the message
 * descriptors, following the proto3 JSON mapping where it matters to people: proto field
 * names as keys, enum values by name, onegrid.v1.Timestamp as an RFC 3339 string, bytes
 * as lowercase hex, fields at their default value left out. */
#ifndef OG_PBJSON_H
#define OG_PBJSON_H

#include <json-c/json.h>
#include <protobuf-c/protobuf-c.h>
#include <stddef.h>

/* Builds a message of type d from a JSON object. Unknown keys, wrong JSON types and
 * unknown enum names are errors (err names the key path). Enum numbers are taken as
 * given, even unknown ones, so that tests can send them. Returns NULL on error; free the
 * result with protobuf_c_message_free_unpacked(m, NULL). */
ProtobufCMessage *og_pbjson_parse(json_object *obj, const ProtobufCMessageDescriptor *d, char *err,
                                  size_t errlen);

/* Whether JSON text has an object with a key twice ({"id": "a", "id": "b"}): json-c keeps
 * the last silently, so that an event would not be what its sender wrote. 1 with the key
 * (as written, escapes included, cut to keylen) in key, 0 when none, -EINVAL when objects
 * nest deeper than 64 (json-c refuses that text anyway), -ENOMEM. Keys are compared as
 * json-c reads them, escapes decoded: "a" and "\u0061" are one key. */
int og_json_duplicate_key(const char *text, char *key, size_t keylen);

/* A new JSON object for m (caller owns it: json_object_put). */
json_object *og_pbjson_render(const ProtobufCMessage *m);

#endif
