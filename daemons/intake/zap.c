/* The ZAP handler (ZeroMQ RFC 27) of intake's CURVE publishers' socket: which publisher
 * keys are let in, and as which source system. */
#include "zap.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uthash.h>
#include <zmq.h>

#include "log.h"
#include "zsock.h"

#define ZAP_ENDPOINT "inproc://zeromq.zap.01"

struct key_entry {
    char key[41];    /* Z85 public key */
    char source[65]; /* the source system it publishes for */
    char name[65];   /* what intake calls the publisher (User-Id) */
    UT_hash_handle hh;
};

struct name_entry { /* name -> source, for the messages (their User-Id is the name) */
    char name[65];
    char source[65];
    UT_hash_handle hh;
};

struct denied { /* keys refused, so that a client retrying is logged once a minute */
    char key[41];
    int64_t logged_us;
    UT_hash_handle hh;
};

struct og_zap {
    void *sock;
    struct key_entry *keys;
    struct name_entry *names;
    struct denied *denied;
};

static void free_tables(struct og_zap *z)
{
    struct key_entry *k, *tk;
    struct name_entry *n, *tn;
    struct denied *d, *td;
    HASH_ITER(hh, z->keys, k, tk)
    {
        HASH_DEL(z->keys, k);
        free(k);
    }
    HASH_ITER(hh, z->names, n, tn)
    {
        HASH_DEL(z->names, n);
        free(n);
    }
    HASH_ITER(hh, z->denied, d, td)
    {
        HASH_DEL(z->denied, d);
        free(d);
    }
}

static bool token_ok(const char *s)
{
    if (!*s || strlen(s) > 64)
        return false;
    for (; *s; s++)
        if (*s < 0x21 || *s > 0x7e)
            return false;
    return true;
}

/* One line: KEY SOURCE [NAME]. 0, or -EINVAL with err naming the line. */
static int parse_line(struct og_zap *z, char *line, const char *path, int lineno, char *err,
                      size_t errlen)
{
    char *save = NULL, *key, *source, *name, *extra;
    /* '#' starts a comment only at the start of a field: Z85 keys may contain '#'. */
    for (char *p = line; *p; p++)
        if (*p == '#' && (p == line || p[-1] == ' ' || p[-1] == '\t')) {
            *p = '\0';
            break;
        }
    key = strtok_r(line, " \t\r\n", &save);
    if (!key)
        return 0; /* blank or comment */
    source = strtok_r(NULL, " \t\r\n", &save);
    name = strtok_r(NULL, " \t\r\n", &save);
    extra = strtok_r(NULL, " \t\r\n", &save);
    if (og_curve_key_check(key) < 0 || !source || !token_ok(source) || (name && !token_ok(name)) ||
        extra) {
        snprintf(err, errlen,
                 "%s:%d: expected \"PUBLIC-KEY SOURCE [NAME]\" (a 40-character Z85 key, then "
                 "1..64 printable characters each)",
                 path, lineno);
        return -EINVAL;
    }
    if (!name)
        name = source;
    struct key_entry *k;
    HASH_FIND_STR(z->keys, key, k);
    if (k) {
        snprintf(err, errlen, "%s:%d: key %s is listed twice", path, lineno, key);
        return -EINVAL;
    }
    struct name_entry *n;
    HASH_FIND_STR(z->names, name, n);
    if (n && strcmp(n->source, source) != 0) {
        snprintf(err, errlen, "%s:%d: publisher \"%s\" already publishes for source \"%s\"", path,
                 lineno, name, n->source);
        return -EINVAL;
    }
    k = calloc(1, sizeof(*k));
    if (!k)
        return -ENOMEM;
    snprintf(k->key, sizeof(k->key), "%s", key);
    snprintf(k->source, sizeof(k->source), "%s", source);
    snprintf(k->name, sizeof(k->name), "%s", name);
    HASH_ADD_STR(z->keys, key, k);
    if (!n) {
        n = calloc(1, sizeof(*n));
        if (!n)
            return -ENOMEM;
        snprintf(n->name, sizeof(n->name), "%s", name);
        snprintf(n->source, sizeof(n->source), "%s", source);
        HASH_ADD_STR(z->names, name, n);
    }
    return 0;
}

struct og_zap *og_zap_new(void *ctx, const char *publishers_file, char *err, size_t errlen)
{
    struct og_zap *z = calloc(1, sizeof(*z));
    FILE *f = NULL;
    char line[512];
    int lineno = 0, rc = 0;

    if (!z) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    f = fopen(publishers_file, "r");
    if (!f) {
        snprintf(err, errlen, "%s: %s", publishers_file, strerror(errno));
        goto fail;
    }
    while (rc == 0 && fgets(line, sizeof(line), f)) {
        lineno++;
        if (!strchr(line, '\n') && !feof(f)) {
            snprintf(err, errlen, "%s:%d: line too long", publishers_file, lineno);
            rc = -EINVAL;
            break;
        }
        rc = parse_line(z, line, publishers_file, lineno, err, errlen);
        if (rc == -ENOMEM)
            snprintf(err, errlen, "out of memory");
    }
    fclose(f);
    if (rc < 0)
        goto fail;
    z->sock = zmq_socket(ctx, ZMQ_REP);
    int linger = 0;
    if (!z->sock || zmq_setsockopt(z->sock, ZMQ_LINGER, &linger, sizeof(linger)) != 0 ||
        zmq_bind(z->sock, ZAP_ENDPOINT) != 0) {
        snprintf(err, errlen, "ZAP handler: %s", zmq_strerror(errno));
        goto fail;
    }
    return z;
fail:
    og_zap_destroy(&z);
    return NULL;
}

void og_zap_destroy(struct og_zap **zp)
{
    struct og_zap *z = *zp;
    if (!z)
        return;
    if (z->sock)
        zmq_close(z->sock);
    free_tables(z);
    free(z);
    *zp = NULL;
}

void *og_zap_socket(const struct og_zap *z)
{
    return z->sock;
}

size_t og_zap_count(const struct og_zap *z)
{
    return HASH_COUNT(z->keys);
}

const char *og_zap_source(const struct og_zap *z, const char *name)
{
    struct name_entry *n;
    HASH_FIND_STR(z->names, name, n);
    return n ? n->source : NULL;
}

static void reply(struct og_zap *z, const void *request_id, size_t id_len, const char *code,
                  const char *text, const char *user)
{
    const void *parts[6] = {"1.0", request_id, code, text, user, ""};
    size_t sizes[6] = {3, id_len, strlen(code), strlen(text), strlen(user), 0};
    /* A REP socket answers at once or never: ZAP requests come one at a time. */
    for (size_t i = 0; i < 6; i++)
        if (zmq_send(z->sock, parts[i], sizes[i], i + 1 < 6 ? ZMQ_SNDMORE : 0) < 0) {
            og_err("ZAP reply: %s", zmq_strerror(errno));
            return;
        }
}

void og_zap_handle(struct og_zap *z, int64_t now_us)
{
    /* Frames: version, request id, domain, address, routing id, mechanism, credentials
     * (for CURVE the client's 32-byte public key). */
    for (;;) {
        zmq_msg_t parts[8];
        size_t n = 0;
        int more = 1;
        while (more) {
            zmq_msg_t scratch, *msg = n < 8 ? &parts[n] : &scratch;
            zmq_msg_init(msg);
            if (zmq_msg_recv(msg, z->sock, n == 0 ? ZMQ_DONTWAIT : 0) < 0) {
                zmq_msg_close(msg);
                for (size_t i = 0; i < n && i < 8; i++)
                    zmq_msg_close(&parts[i]);
                return;
            }
            more = zmq_msg_more(msg);
            if (msg == &scratch)
                zmq_msg_close(msg);
            n++;
        }
        size_t kept = n < 8 ? n : 8;
        const void *rid = kept > 1 ? zmq_msg_data(&parts[1]) : "";
        size_t rid_len = kept > 1 ? zmq_msg_size(&parts[1]) : 0;
        char key[41] = "";
        bool curve = kept == 7 && zmq_msg_size(&parts[5]) == 5 &&
                     memcmp(zmq_msg_data(&parts[5]), "CURVE", 5) == 0 &&
                     zmq_msg_size(&parts[6]) == 32;
        if (curve)
            zmq_z85_encode(key, zmq_msg_data(&parts[6]), 32);
        struct key_entry *k = NULL;
        if (curve)
            HASH_FIND_STR(z->keys, key, k);
        if (kept < 6 || zmq_msg_size(&parts[0]) != 3 || memcmp(zmq_msg_data(&parts[0]), "1.0", 3))
            reply(z, rid, rid_len, "500", "malformed ZAP request", "");
        else if (!k) {
            char addr[64];
            snprintf(addr, sizeof(addr), "%.*s", (int)zmq_msg_size(&parts[3]),
                     (const char *)zmq_msg_data(&parts[3]));
            reply(z, rid, rid_len, "400", curve ? "unknown publisher key" : "CURVE required", "");
            /* Logged once a minute per key: a refused client keeps reconnecting. */
            struct denied *d;
            bool say = true;
            HASH_FIND_STR(z->denied, key, d);
            if (d)
                say = now_us - d->logged_us > 60000000;
            else if (HASH_COUNT(z->denied) < 1000 && (d = calloc(1, sizeof(*d)))) {
                snprintf(d->key, sizeof(d->key), "%s", key);
                HASH_ADD_STR(z->denied, key, d);
            }
            if (say) {
                og_warn("refusing a publisher from %s: %s%s (not in the publishers file)", addr,
                        curve ? "unknown key " : "no CURVE key", key);
                if (d)
                    d->logged_us = now_us;
            }
        } else {
            reply(z, rid, rid_len, "200", "OK", k->name);
        }
        for (size_t i = 0; i < kept; i++)
            zmq_msg_close(&parts[i]);
    }
}
