#include "records.h"

#include <inttypes.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>

/* One field as og.ns writes it: its length in bytes, ':', its bytes, ','; '-' for NULL. */
static void field(crypto_hash_sha256_state *st, const void *data, size_t len)
{
    char head[24];
    if (!data) {
        crypto_hash_sha256_update(st, (const uint8_t *)"-", 1);
        return;
    }
    int n = snprintf(head, sizeof(head), "%zu:", len);
    crypto_hash_sha256_update(st, (const uint8_t *)head, (unsigned long long)n);
    crypto_hash_sha256_update(st, data, len);
    crypto_hash_sha256_update(st, (const uint8_t *)",", 1);
}

static void text(crypto_hash_sha256_state *st, const char *s)
{
    field(st, s, s ? strlen(s) : 0);
}

static void number(crypto_hash_sha256_state *st, int64_t v)
{
    char buf[24];
    int n = snprintf(buf, sizeof(buf), "%" PRId64, v);
    field(st, buf, (size_t)n);
}

/* bytea as encode(v, 'hex'): lowercase, two digits a byte, written in pieces. */
static void hex(crypto_hash_sha256_state *st, const uint8_t *data, size_t len)
{
    static const char digits[] = "0123456789abcdef";
    char head[24], buf[512];
    if (!data) {
        crypto_hash_sha256_update(st, (const uint8_t *)"-", 1);
        return;
    }
    int n = snprintf(head, sizeof(head), "%zu:", 2 * len);
    crypto_hash_sha256_update(st, (const uint8_t *)head, (unsigned long long)n);
    for (size_t i = 0; i < len;) {
        size_t k = 0;
        for (; i < len && k < sizeof(buf); i++) {
            buf[k++] = digits[data[i] >> 4];
            buf[k++] = digits[data[i] & 15];
        }
        crypto_hash_sha256_update(st, (const uint8_t *)buf, k);
    }
    crypto_hash_sha256_update(st, (const uint8_t *)",", 1);
}

void og_ledger_digest(uint8_t out[OG_RECORD_DIGEST_BYTES], int64_t ledger_id, int64_t recorded_us,
                      int64_t batch_id, const char *district, const char *kind, const char *case_id,
                      const char *source, const char *event_id, const char *type,
                      const char *detail, const uint8_t *body, size_t body_len)
{
    crypto_hash_sha256_state st;
    crypto_hash_sha256_init(&st);
    text(&st, "ledger");
    number(&st, ledger_id);
    number(&st, recorded_us);
    number(&st, batch_id);
    text(&st, district);
    text(&st, kind);
    text(&st, case_id);
    text(&st, source);
    text(&st, event_id);
    text(&st, type);
    text(&st, detail);
    hex(&st, body, body_len);
    crypto_hash_sha256_final(&st, out);
}

void og_event_key_digest(uint8_t out[OG_RECORD_DIGEST_BYTES], const char *source,
                         const char *event_id, const char *district, const char *case_id,
                         int64_t ledger_id, int64_t stored_us)
{
    crypto_hash_sha256_state st;
    crypto_hash_sha256_init(&st);
    text(&st, "event_key");
    text(&st, source);
    text(&st, event_id);
    text(&st, district);
    text(&st, case_id);
    number(&st, ledger_id);
    number(&st, stored_us);
    crypto_hash_sha256_final(&st, out);
}
