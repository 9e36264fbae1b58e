/* A ZAP handler (ZeroMQ RFC 27): which CURVE client keys are let in, and under which
 * name and source. */
#include "zap.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uthash.h>
#include <zmq.h>

#include "ratelimit.h"
#include "util.h"
#include "validate.h"
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

struct og_zap {
    void *sock;
    char domain[65]; /* the ZAP domain of the socket it vets: requests of any other are denied */
    char peer[32];
    char keys_file[256];
    void (*log)(void *arg, const char *line);
    void *log_arg;
    struct key_entry *keys;
    struct name_entry *names;
    /* Refusals logged, per key and address: a refused client retries every few hundred
     * milliseconds, and an attacker may bring a new key each time. */
    struct og_ratelimit *denied;
};

static void free_tables(struct og_zap *z)
{
    struct key_entry *k, *tk;
    struct name_entry *n, *tn;
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
    og_ratelimit_destroy(&z->denied);
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
    /* The source is what every event of the key is stored under: a code the events and
     * the registry allow (dispatch drops a frame whose source is not one, unanswered). */
    if (!og_source_code_ok(source)) {
        snprintf(err, errlen,
                 "%s:%d: \"%s\" is not a source system code (1..32 of a-z, 0-9, '_', '.', "
                 "'-', starting with a letter or digit, as og.source_system.code)",
                 path, lineno, source);
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

/* Reads the keys file into z's tables. 0, or -errno with err filled. */
static int load_keys(struct og_zap *z, const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    char line[512];
    int lineno = 0, rc = 0;

    if (!f) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -errno;
    }
    while (rc == 0 && fgets(line, sizeof(line), f)) {
        lineno++;
        if (!strchr(line, '\n') && !feof(f)) {
            snprintf(err, errlen, "%s:%d: line too long", path, lineno);
            rc = -EINVAL;
            break;
        }
        rc = parse_line(z, line, path, lineno, err, errlen);
        if (rc == -ENOMEM)
            snprintf(err, errlen, "out of memory");
    }
    fclose(f);
    return rc;
}

int og_zap_keys_check(const char *keys_file, char *err, size_t errlen)
{
    struct og_zap *z = calloc(1, sizeof(*z));
    if (!z) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    int rc = load_keys(z, keys_file, err, errlen);
    og_zap_destroy(&z);
    return rc;
}

struct og_zap *og_zap_new(void *ctx, const struct og_zap_opts *o, char *err, size_t errlen)
{
    const char *publishers_file = o->keys_file, *domain = o->domain;
    struct og_zap *z = calloc(1, sizeof(*z));

    if (!z || !(z->denied = og_ratelimit_new(4096, 30, 60000000))) {
        snprintf(err, errlen, "out of memory");
        free(z);
        return NULL;
    }
    if (!*domain || strlen(domain) >= sizeof(z->domain)) {
        snprintf(err, errlen, "the ZAP domain must be 1..64 characters");
        goto fail;
    }
    snprintf(z->domain, sizeof(z->domain), "%s", domain);
    snprintf(z->peer, sizeof(z->peer), "%s", o->peer ? o->peer : "client");
    snprintf(z->keys_file, sizeof(z->keys_file), "%s", publishers_file);
    z->log = o->log;
    z->log_arg = o->log_arg;
    if (load_keys(z, publishers_file, err, errlen) < 0)
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
            char line[128];
            snprintf(line, sizeof(line), "ZAP reply: %s", zmq_strerror(errno));
            if (z->log)
                z->log(z->log_arg, line);
            return;
        }
}

/* Logs a refusal, once a minute per (what, who). */
static void refused(struct og_zap *z, const char *what, const char *who, int64_t now_us,
                    const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static void refused(struct og_zap *z, const char *what, const char *who, int64_t now_us,
                    const char *fmt, ...)
{
    char key[160], line[512];
    uint64_t repeats, dropped;
    va_list ap;

    snprintf(key, sizeof(key), "%s %s", what, who);
    if (!z->log || !og_ratelimit_allow(z->denied, key, now_us, &repeats, &dropped))
        return;
    va_start(ap, fmt);
    og_safe_vformat(line, sizeof(line), fmt, ap); /* the domain and address are the peer's */
    va_end(ap);
    if (repeats || dropped) {
        size_t len = strlen(line);
        snprintf(line + len, sizeof(line) - len,
                 " (%llu more times since; %llu other refusals not logged)",
                 (unsigned long long)repeats, (unsigned long long)dropped);
    }
    z->log(z->log_arg, line);
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
        char addr[64] = "", domain[72] = "";
        if (kept >= 4) {
            snprintf(domain, sizeof(domain), "%.*s", (int)zmq_msg_size(&parts[2]),
                     (const char *)zmq_msg_data(&parts[2]));
            snprintf(addr, sizeof(addr), "%.*s", (int)zmq_msg_size(&parts[3]),
                     (const char *)zmq_msg_data(&parts[3]));
        }
        if (kept < 6 || zmq_msg_size(&parts[0]) != 3 || memcmp(zmq_msg_data(&parts[0]), "1.0", 3))
            reply(z, rid, rid_len, "500", "malformed ZAP request", "");
        else if (zmq_msg_size(&parts[2]) != strlen(z->domain) ||
                 memcmp(zmq_msg_data(&parts[2]), z->domain, strlen(z->domain)) != 0) {
            /* Another socket of this process asks (another CURVE server, ZAP domain of its
             * own): the publishers' keys are not for it. */
            reply(z, rid, rid_len, "400", "wrong ZAP domain", "");
            refused(z, "domain", domain, now_us,
                    "refusing a connection from %s: ZAP domain \"%s\" is not this socket's "
                    "(\"%s\")",
                    addr, domain, z->domain);
        } else if (!k) {
            char who[128];
            reply(z, rid, rid_len, "400", curve ? "unknown key" : "CURVE required", "");
            snprintf(who, sizeof(who), "%s %s", key, addr);
            refused(z, "key", who, now_us, "refusing a %s from %s: %s%s (not in %s)", z->peer,
                    addr, curve ? "unknown key " : "no CURVE key", key, z->keys_file);
        } else {
            reply(z, rid, rid_len, "200", "OK", k->name);
        }
        for (size_t i = 0; i < kept; i++)
            zmq_msg_close(&parts[i]);
    }
}
