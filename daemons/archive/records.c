#include "records.h"

#include <errno.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct og_records {
    EVP_MD_CTX *ctx;
    EVP_MD *sha256;
    bool failed; /* an update of the digest being made failed */
};

struct og_records *og_records_new(void)
{
    struct og_records *r = calloc(1, sizeof(*r));
    if (!r)
        return NULL;
    r->ctx = EVP_MD_CTX_new();
    r->sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
    if (!r->ctx || !r->sha256) {
        og_records_free(r);
        return NULL;
    }
    return r;
}

void og_records_free(struct og_records *r)
{
    if (!r)
        return;
    EVP_MD_CTX_free(r->ctx);
    EVP_MD_free(r->sha256);
    free(r);
}

static void update(struct og_records *r, const void *data, size_t len)
{
    if (!r->failed && len > 0 && !EVP_DigestUpdate(r->ctx, data, len))
        r->failed = true;
}

/* One field as og.ns writes it: its length in bytes, ':', its bytes, ','; '-' for NULL. */
static void field(struct og_records *r, const void *data, size_t len)
{
    char head[24];
    if (!data) {
        update(r, "-", 1);
        return;
    }
    int n = snprintf(head, sizeof(head), "%zu:", len);
    update(r, head, (size_t)n);
    update(r, data, len);
    update(r, ",", 1);
}

static void text(struct og_records *r, const char *s)
{
    field(r, s, s ? strlen(s) : 0);
}

static void number(struct og_records *r, int64_t v)
{
    char buf[24];
    int n = snprintf(buf, sizeof(buf), "%" PRId64, v);
    field(r, buf, (size_t)n);
}

/* bytea as encode(v, 'hex'): lowercase, two digits a byte, written in pieces. */
static void hex(struct og_records *r, const uint8_t *data, size_t len)
{
    static const char digits[] = "0123456789abcdef";
    char head[24], buf[512];
    if (!data) {
        update(r, "-", 1);
        return;
    }
    int n = snprintf(head, sizeof(head), "%zu:", 2 * len);
    update(r, head, (size_t)n);
    for (size_t i = 0; i < len;) {
        size_t k = 0;
        for (; i < len && k < sizeof(buf); i++) {
            buf[k++] = digits[data[i] >> 4];
            buf[k++] = digits[data[i] & 15];
        }
        update(r, buf, k);
    }
    update(r, ",", 1);
}

static void begin(struct og_records *r, const char *kind)
{
    r->failed = !EVP_DigestInit_ex(r->ctx, r->sha256, NULL);
    text(r, kind);
}

static int finish(struct og_records *r, uint8_t out[OG_RECORD_DIGEST_BYTES])
{
    unsigned int n = 0;
    if (r->failed || !EVP_DigestFinal_ex(r->ctx, out, &n) || n != OG_RECORD_DIGEST_BYTES)
        return -EIO;
    return 0;
}

int og_ledger_digest(struct og_records *r, uint8_t out[OG_RECORD_DIGEST_BYTES], int64_t ledger_id,
                     int64_t recorded_us, int64_t batch_id, const char *district, const char *kind,
                     const char *case_id, const char *source, const char *event_id,
                     const char *type, const char *detail, const uint8_t *body, size_t body_len)
{
    begin(r, "ledger");
    number(r, ledger_id);
    number(r, recorded_us);
    number(r, batch_id);
    text(r, district);
    text(r, kind);
    text(r, case_id);
    text(r, source);
    text(r, event_id);
    text(r, type);
    text(r, detail);
    hex(r, body, body_len);
    return finish(r, out);
}

int og_event_key_digest(struct og_records *r, uint8_t out[OG_RECORD_DIGEST_BYTES],
                        const char *source, const char *event_id, const char *district,
                        const char *case_id, int64_t ledger_id, int64_t stored_us)
{
    begin(r, "event_key");
    text(r, source);
    text(r, event_id);
    text(r, district);
    text(r, case_id);
    number(r, ledger_id);
    number(r, stored_us);
    return finish(r, out);
}
