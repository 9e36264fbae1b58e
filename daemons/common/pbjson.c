#include "pbjson.h"

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "onegrid/v1/event.pb-c.h"
#include "util.h"

#define MEMBER(type, m, off) (*(type *)((uint8_t *)(m) + (off)))

/* The range of onegrid.v1.Timestamp (event.proto): 0001-01-01T00:00:00Z to
 * 9999-12-31T23:59:59Z. RFC 3339 text within those years can fall outside it once its
 * offset is applied ("0001-01-01T00:30:00+01:00"); such a time would render as a year
 * nobody can read back. */

static int fail(char *err, size_t errlen, const char *path, const char *what)
{
    snprintf(err, errlen, "%s: %s", path, what);
    return -EINVAL;
}

static size_t scalar_size(ProtobufCType t)
{
    switch (t) {
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
    case PROTOBUF_C_TYPE_DOUBLE:
        return 8;
    case PROTOBUF_C_TYPE_STRING:
    case PROTOBUF_C_TYPE_MESSAGE:
        return sizeof(void *);
    case PROTOBUF_C_TYPE_BYTES:
        return sizeof(ProtobufCBinaryData);
    case PROTOBUF_C_TYPE_BOOL:
        return sizeof(protobuf_c_boolean);
    default:
        return 4;
    }
}

static int parse_timestamp(json_object *j, const ProtobufCMessageDescriptor *d, void **out,
                           const char *path, char *err, size_t errlen)
{
    Onegrid__V1__Timestamp *t;
    int64_t s;
    int32_t ns;

    if (!json_object_is_type(j, json_type_string) ||
        og_time_parse(json_object_get_string(j), &s, &ns))
        return fail(err, errlen, path,
                    "expected an RFC 3339 time like \"2026-11-20T09:15:00+08:00\"");
    if (s < OG_TIME_MIN || s > OG_TIME_MAX)
        return fail(err, errlen, path,
                    "expected a time from 0001-01-01T00:00:00Z to 9999-12-31T23:59:59Z");
    t = malloc(sizeof(*t));
    if (!t)
        return fail(err, errlen, path, "out of memory");
    onegrid__v1__timestamp__init(t);
    t->seconds = s;
    t->nanos = ns;
    *out = t;
    return 0;
}

static int parse_message(json_object *obj, const ProtobufCMessageDescriptor *d, void **out,
                         const char *path, char *err, size_t errlen);

/* Parses one JSON value into the storage at dst for field f. */
static int parse_value(json_object *j, const ProtobufCFieldDescriptor *f, void *dst,
                       const char *path, char *err, size_t errlen)
{
    json_type jt = json_object_get_type(j);

    switch (f->type) {
    case PROTOBUF_C_TYPE_STRING: {
        if (jt != json_type_string)
            return fail(err, errlen, path, "expected a string");
        size_t n = (size_t)json_object_get_string_len(j);
        char *s;
        /* protobuf-c encodes strings up to their first NUL: refuse rather than truncate. */
        if (memchr(json_object_get_string(j), 0, n))
            return fail(err, errlen, path,
                        "contains a NUL character (\\u0000), which cannot "
                        "be encoded; use raw_base64 to send such bytes");
        s = strdup(json_object_get_string(j));
        if (!s)
            return fail(err, errlen, path, "out of memory");
        *(char **)dst = s;
        return 0;
    }
    case PROTOBUF_C_TYPE_MESSAGE:
        if (jt != json_type_object && f->descriptor != &onegrid__v1__timestamp__descriptor)
            return fail(err, errlen, path, "expected an object");
        return parse_message(j, f->descriptor, (void **)dst, path, err, errlen);
    case PROTOBUF_C_TYPE_ENUM: {
        const ProtobufCEnumValue *ev;
        if (jt == json_type_int) {
            /* json_object_get_int would clamp a larger number to INT32_MAX silently. */
            int64_t x = json_object_get_int64(j);
            if (x < INT32_MIN || x > INT32_MAX)
                return fail(err, errlen, path, "enum number out of range");
            *(int *)dst = (int)x;
            return 0;
        }
        if (jt != json_type_string)
            return fail(err, errlen, path, "expected an enum name or number");
        ev = protobuf_c_enum_descriptor_get_value_by_name(f->descriptor, json_object_get_string(j));
        if (!ev)
            return fail(err, errlen, path, "unknown enum name");
        *(int *)dst = ev->value;
        return 0;
    }
    case PROTOBUF_C_TYPE_BOOL:
        if (jt != json_type_boolean)
            return fail(err, errlen, path, "expected true or false");
        *(protobuf_c_boolean *)dst = json_object_get_boolean(j);
        return 0;
    case PROTOBUF_C_TYPE_DOUBLE:
    case PROTOBUF_C_TYPE_FLOAT: {
        if (jt != json_type_double && jt != json_type_int)
            return fail(err, errlen, path, "expected a number");
        double x = json_object_get_double(j);
        if (f->type == PROTOBUF_C_TYPE_DOUBLE)
            *(double *)dst = x;
        else
            *(float *)dst = (float)x;
        return 0;
    }
    case PROTOBUF_C_TYPE_BYTES:
        return fail(err, errlen, path, "bytes fields are not accepted in JSON input");
    default: {
        if (jt != json_type_int)
            return fail(err, errlen, path, "expected an integer");
        errno = 0;
        int64_t x = json_object_get_int64(j);
        int64_t lo = INT64_MIN, hi = INT64_MAX;
        switch (f->type) {
        case PROTOBUF_C_TYPE_UINT64:
        case PROTOBUF_C_TYPE_FIXED64:
            lo = 0; /* above INT64_MAX json-c cannot give us anyway */
            break;
        case PROTOBUF_C_TYPE_UINT32:
        case PROTOBUF_C_TYPE_FIXED32:
            lo = 0, hi = UINT32_MAX;
            break;
        case PROTOBUF_C_TYPE_INT32:
        case PROTOBUF_C_TYPE_SINT32:
        case PROTOBUF_C_TYPE_SFIXED32:
            lo = INT32_MIN, hi = INT32_MAX;
            break;
        default:
            break;
        }
        if (errno || x < lo || x > hi)
            return fail(err, errlen, path, "integer out of range for the field's type");
        if (scalar_size(f->type) == 8)
            *(int64_t *)dst = x;
        else
            *(uint32_t *)dst = (uint32_t)x;
        return 0;
    }
    }
}

static int parse_message(json_object *obj, const ProtobufCMessageDescriptor *d, void **out,
                         const char *path, char *err, size_t errlen)
{
    ProtobufCMessage *m;
    char sub[256];

    if (d == &onegrid__v1__timestamp__descriptor)
        return parse_timestamp(obj, d, out, path, err, errlen);
    m = calloc(1, d->sizeof_message);
    if (!m)
        return fail(err, errlen, path, "out of memory");
    d->message_init(m);
    *out = m;
    json_object_object_foreach(obj, key, val)
    {
        const ProtobufCFieldDescriptor *f = protobuf_c_message_descriptor_get_field_by_name(d, key);
        snprintf(sub, sizeof(sub), "%s%s%s", path, *path ? "." : "", key);
        if (!f)
            return fail(err, errlen, sub, "unknown key");
        if (json_object_is_type(val, json_type_null))
            continue;
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t n, size = scalar_size(f->type);
            uint8_t *arr;
            if (!json_object_is_type(val, json_type_array))
                return fail(err, errlen, sub, "expected an array");
            n = json_object_array_length(val);
            arr = calloc(n ? n : 1, size);
            if (!arr)
                return fail(err, errlen, sub, "out of memory");
            MEMBER(void *, m, f->offset) = arr;
            for (size_t i = 0; i < n; i++) {
                /* Count each element before it is parsed: the array is zeroed, so a failure
                 * leaves a NULL or a partial message there, and freeing handles both. */
                MEMBER(size_t, m, f->quantifier_offset) = i + 1;
                if (parse_value(json_object_array_get_idx(val, i), f, arr + i * size, sub, err,
                                errlen))
                    return -EINVAL;
            }
            continue;
        }
        if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
            uint32_t *which = &MEMBER(uint32_t, m, f->quantifier_offset);
            if (*which != 0)
                return fail(err, errlen, sub, "only one member of a oneof may be given");
            *which = f->id;
        }
        if (parse_value(val, f, (uint8_t *)m + f->offset, sub, err, errlen))
            return -EINVAL;
    }
    return 0;
}

ProtobufCMessage *og_pbjson_parse(json_object *obj, const ProtobufCMessageDescriptor *d, char *err,
                                  size_t errlen)
{
    void *m = NULL;
    if (!json_object_is_type(obj, json_type_object)) {
        fail(err, errlen, "(top)", "expected a JSON object");
        return NULL;
    }
    if (parse_message(obj, d, &m, "", err, errlen)) {
        if (m)
            protobuf_c_message_free_unpacked(m, NULL);
        return NULL;
    }
    return m;
}

/* Rendering -------------------------------------------------------------------------- */

static json_object *render_value(const ProtobufCFieldDescriptor *f, const void *src)
{
    char buf[64];
    switch (f->type) {
    case PROTOBUF_C_TYPE_STRING:
        return json_object_new_string(*(const char *const *)src);
    case PROTOBUF_C_TYPE_MESSAGE: {
        const ProtobufCMessage *sub = *(const ProtobufCMessage *const *)src;
        if (sub->descriptor == &onegrid__v1__timestamp__descriptor) {
            const Onegrid__V1__Timestamp *t = (const Onegrid__V1__Timestamp *)sub;
            return json_object_new_string(og_time_format(t->seconds, t->nanos, buf, sizeof(buf)));
        }
        return og_pbjson_render(sub);
    }
    case PROTOBUF_C_TYPE_ENUM: {
        int v = *(const int *)src;
        const ProtobufCEnumValue *ev = protobuf_c_enum_descriptor_get_value(f->descriptor, v);
        return ev ? json_object_new_string(ev->name) : json_object_new_int(v);
    }
    case PROTOBUF_C_TYPE_BOOL:
        return json_object_new_boolean(*(const protobuf_c_boolean *)src);
    case PROTOBUF_C_TYPE_DOUBLE:
        return json_object_new_double(*(const double *)src);
    case PROTOBUF_C_TYPE_FLOAT:
        return json_object_new_double(*(const float *)src);
    case PROTOBUF_C_TYPE_BYTES: {
        const ProtobufCBinaryData *b = src;
        char *hex = malloc(2 * b->len + 1);
        json_object *j;
        if (!hex)
            return NULL;
        j = json_object_new_string(og_hex(b->data, b->len, hex));
        free(hex);
        return j;
    }
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        return json_object_new_int64(*(const uint32_t *)src);
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        /* Above INT64_MAX would wrap; no onegrid field gets there. */
        return json_object_new_int64((int64_t) * (const uint64_t *)src);
    default:
        if (scalar_size(f->type) == 8)
            return json_object_new_int64(*(const int64_t *)src);
        return json_object_new_int(*(const int32_t *)src);
    }
}

static int is_default(const ProtobufCFieldDescriptor *f, const void *src)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_STRING: {
        const char *s = *(const char *const *)src;
        return !s || !*s;
    }
    case PROTOBUF_C_TYPE_MESSAGE:
        return *(const void *const *)src == NULL;
    case PROTOBUF_C_TYPE_BYTES:
        return ((const ProtobufCBinaryData *)src)->len == 0;
    case PROTOBUF_C_TYPE_DOUBLE:
        return *(const double *)src == 0;
    case PROTOBUF_C_TYPE_FLOAT:
        return *(const float *)src == 0;
    case PROTOBUF_C_TYPE_BOOL:
        return !*(const protobuf_c_boolean *)src;
    default:
        return scalar_size(f->type) == 8 ? *(const int64_t *)src == 0 : *(const int32_t *)src == 0;
    }
}

json_object *og_pbjson_render(const ProtobufCMessage *m)
{
    const ProtobufCMessageDescriptor *d = m->descriptor;
    json_object *obj = json_object_new_object();

    if (!obj)
        return NULL;
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        const void *src = (const uint8_t *)m + f->offset;
        json_object *v;
        if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
            if (MEMBER(const uint32_t, m, f->quantifier_offset) != f->id)
                continue;
        } else if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t n = MEMBER(const size_t, m, f->quantifier_offset);
            const uint8_t *arr = *(const uint8_t *const *)src;
            if (n == 0)
                continue;
            v = json_object_new_array();
            for (size_t k = 0; k < n; k++)
                json_object_array_add(v, render_value(f, arr + k * scalar_size(f->type)));
            json_object_object_add(obj, f->name, v);
            continue;
        } else if (is_default(f, src)) {
            continue;
        }
        json_object_object_add(obj, f->name, render_value(f, src));
    }
    return obj;
}

/* Four hex digits at s as a number, or -1. */
static int hex4(const char *s)
{
    int v = 0;
    for (int i = 0; i < 4; i++) {
        char c = s[i];
        int d = c >= '0' && c <= '9'   ? c - '0'
                : c >= 'a' && c <= 'f' ? c - 'a' + 10
                : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                       : -1;
        if (d < 0)
            return -1;
        v = v * 16 + d;
    }
    return v;
}

/* A JSON string's text s[0..len) (between its quotes) decoded into out (as many bytes as
 * it holds); its decoded length. Escapes as RFC 8259 has them, \uXXXX to UTF-8 (a
 * surrogate pair to one character); what is not a valid escape is kept as written. */
static size_t json_string_decode(const char *s, size_t len, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] != '\\' || i + 1 == len) {
            out[o++] = s[i];
            continue;
        }
        char c = s[++i];
        const char *simple = strchr("\"\\/bfnrt", c);
        if (c && simple) {
            out[o++] = "\"\\/\b\f\n\r\t"[simple - "\"\\/bfnrt"];
            continue;
        }
        int cp = c == 'u' && i + 4 < len ? hex4(s + i + 1) : -1, lo;
        if (cp < 0) {
            out[o++] = '\\';
            out[o++] = c;
            continue;
        }
        i += 4;
        if (cp >= 0xd800 && cp < 0xdc00 && i + 6 < len && s[i + 1] == '\\' && s[i + 2] == 'u' &&
            (lo = hex4(s + i + 3)) >= 0xdc00 && lo < 0xe000) {
            cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
            i += 6;
        }
        if (cp < 0x80) {
            out[o++] = (char)cp;
        } else if (cp < 0x800) {
            out[o++] = (char)(0xc0 | cp >> 6);
            out[o++] = (char)(0x80 | (cp & 0x3f));
        } else if (cp < 0x10000) {
            out[o++] = (char)(0xe0 | cp >> 12);
            out[o++] = (char)(0x80 | (cp >> 6 & 0x3f));
            out[o++] = (char)(0x80 | (cp & 0x3f));
        } else {
            out[o++] = (char)(0xf0 | cp >> 18);
            out[o++] = (char)(0x80 | (cp >> 12 & 0x3f));
            out[o++] = (char)(0x80 | (cp >> 6 & 0x3f));
            out[o++] = (char)(0x80 | (cp & 0x3f));
        }
    }
    return o;
}

int og_json_duplicate_key(const char *text, char *key, size_t keylen)
{
    /* Per open object or array: whether a key comes next, and the keys seen so far,
     * decoded (so "\u0069d" is "id"). Keys are few per object in practice; a linear
     * search is enough. */
    struct level {
        bool object, expect_key;
        size_t n, cap;
        struct span {
            char *s;
            size_t len;
        } * keys;
    } stack[64];
    int depth = 0, rc = 0;

    for (const char *p = text; *p && rc == 0; p++) {
        struct level *top = depth ? &stack[depth - 1] : NULL;
        switch (*p) {
        case '{':
        case '[':
            if (depth == 64) {
                rc = -EINVAL;
                break;
            }
            stack[depth++] = (struct level){.object = *p == '{', .expect_key = *p == '{'};
            break;
        case '}':
        case ']':
            if (depth) {
                struct level *l = &stack[--depth];
                for (size_t i = 0; i < l->n; i++)
                    free(l->keys[i].s);
                free(l->keys);
            }
            break;
        case ',':
            if (top && top->object)
                top->expect_key = true;
            break;
        case '"': {
            const char *start = ++p;
            while (*p && *p != '"')
                p += (*p == '\\' && p[1]) ? 2 : 1;
            size_t len = (size_t)(p - start);
            if (top && top->object && top->expect_key) {
                top->expect_key = false;
                /* Decoding never lengthens: an escape of 2 to 12 bytes gives 1 to 4. */
                char *k = malloc(len + 1);
                if (!k) {
                    rc = -ENOMEM;
                    break;
                }
                size_t klen = json_string_decode(start, len, k);
                for (size_t i = 0; i < top->n && rc == 0; i++)
                    if (top->keys[i].len == klen && memcmp(top->keys[i].s, k, klen) == 0) {
                        snprintf(key, keylen, "%.*s", (int)len, start);
                        rc = 1;
                    }
                if (rc == 0 && top->n == top->cap) {
                    size_t cap = top->cap ? 2 * top->cap : 8;
                    struct span *ks = realloc(top->keys, cap * sizeof(*ks));
                    if (!ks)
                        rc = -ENOMEM;
                    else {
                        top->keys = ks;
                        top->cap = cap;
                    }
                }
                if (rc == 0)
                    top->keys[top->n++] = (struct span){k, klen};
                else
                    free(k);
            }
            if (!*p)
                p--; /* unterminated: let the loop end */
            break;
        }
        default:
            break;
        }
    }
    while (depth) {
        struct level *l = &stack[--depth];
        for (size_t i = 0; i < l->n; i++)
            free(l->keys[i].s);
        free(l->keys);
    }
    return rc;
}
