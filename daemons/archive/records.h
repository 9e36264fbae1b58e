/* The digests of the records a district's hash-chain link covers, made in archive from the
 * values it stores: the same bytes og.district_records hashes in the database
 * (deploy/sql/current/og.chain_link.sql, "Canonical text, format 2"), so that og.end_batch
 * can take them instead of making them (4.5 µs of the server's time a ledger row).
 * SHA-256 from OpenSSL's libcrypto, which uses the CPU's SHA instructions: 0.55 µs for a
 * kilobyte where libsodium's portable code takes 2.3, while the database waits. */
#ifndef OG_ARCHIVE_RECORDS_H
#define OG_ARCHIVE_RECORDS_H

#include <stddef.h>
#include <stdint.h>

#define OG_RECORD_DIGEST_BYTES 32

/* What makes the digests: one per thread that makes them. NULL without memory, or when
 * libcrypto has no SHA-256. */
struct og_records *og_records_new(void);
void og_records_free(struct og_records *r);

/* A ledger row's digest: SHA-256 of 'ledger', ledger_id, recorded_at (whole microseconds
 * since 1970 UTC), batch_id, district_code, kind, case_id, source_system, source_event_id,
 * event_type, detail (jsonb's text of it: og_jsonb_text) and body (lowercase hex), each a
 * netstring, or '-' for a NULL (case_id, type, detail, body may be NULL). 0, or -EIO when
 * libcrypto failed. */
int og_ledger_digest(struct og_records *r, uint8_t out[OG_RECORD_DIGEST_BYTES], int64_t ledger_id,
                     int64_t recorded_us, int64_t batch_id, const char *district, const char *kind,
                     const char *case_id, const char *source, const char *event_id,
                     const char *type, const char *detail, const uint8_t *body, size_t body_len);

/* An event key's digest: SHA-256 of 'event_key', source_system, source_event_id,
 * district_code, case_id (NULL: '-'), ledger_id, stored_at (microseconds), as netstrings.
 * 0, or -EIO. */
int og_event_key_digest(struct og_records *r, uint8_t out[OG_RECORD_DIGEST_BYTES],
                        const char *source, const char *event_id, const char *district,
                        const char *case_id, int64_t ledger_id, int64_t stored_us);

#endif
