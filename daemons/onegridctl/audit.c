/* `onegridctl audit verify|heads` and `onegridctl rebuild-cases` (`audit definitions` is in
 * definitions.c).
 *
 * verify recomputes every link of every hash chain from the records as they are now
 * (deploy/sql/current/og.ledger_canonical.sql gives format 1, og.chain_link.sql format 2),
 * checks each link's Ed25519 signature against the public keys it is given and the heads
 * kept elsewhere it is given, and reports the first broken link of each chain with the
 * records involved. It builds the canonical texts and the hashes itself, reading only the audit
 * views, so it runs as the auditor role and trusts no function stored in the database.
 *
 * The hashes come from one pass over the record (audit_scan.c); a link the pass finds
 * broken, or cannot settle, is recomputed here with per-link queries (link_v1, link_v2),
 * which name the records found. */
#include <errno.h>
#include <getopt.h>
#include <libpq-fe.h>
#include <sodium.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit_scan.h"
#include "chainsig.h"
#include "db.h"
#include "onegridctl.h"
#include "util.h"

#define HASH      crypto_hash_sha256_BYTES
#define MAX_KEYS  16
#define IDS_LEN   256
#define SHARD_PFX "shard:"

static PGconn *connect_or_report(const char *conninfo, const char *what)
{
    char err[1024];
    PGconn *c = og_db_connect(conninfo, what, err, sizeof(err));
    if (!c)
        fprintf(stderr, "onegridctl: %s\n", err);
    return c;
}

static PGresult *query(PGconn *c, const char *sql, int n, const char *const *params)
{
    PGresult *r = PQexecParams(c, sql, n, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK && PQresultStatus(r) != PGRES_COMMAND_OK) {
        char err[1024];
        og_db_error(c, r, err, sizeof(err));
        fprintf(stderr, "onegridctl: %s\n", err);
        PQclear(r);
        return NULL;
    }
    return r;
}

/* bytea in hex output ("\x0a1b...") to bytes; false unless it is exactly len bytes. */
static bool unhex_bytea(const char *s, uint8_t *out, size_t len)
{
    size_t got = 0;
    return strncmp(s, "\\x", 2) == 0 && strlen(s) == 2 + 2 * len &&
           sodium_hex2bin(out, len, s + 2, 2 * len, NULL, &got, NULL) == 0 && got == len;
}

/* Lowercase hex (and nothing else) to exactly len bytes. */
static bool unhex(const char *s, uint8_t *out, size_t len)
{
    size_t got = 0;
    return strlen(s) == 2 * len && strspn(s, "0123456789abcdef") == 2 * len &&
           sodium_hex2bin(out, len, s, 2 * len, NULL, &got, NULL) == 0 && got == len;
}

/* Appends id to a short list of ids for a report ("7,8,9,...": the first eight). */
static void note_id(char *ids, long i, const char *id)
{
    size_t len = strlen(ids);
    if (i < 8)
        snprintf(ids + len, IDS_LEN - len, "%s%s", i ? "," : "", id);
    else if (i == 8)
        snprintf(ids + len, IDS_LEN - len, ",...");
}

/* Format 1 ------------------------------------------------------------------------------ */

static const char SQL_ROWS_V1[] =
    "SELECT ledger_id, trunc(extract(epoch FROM recorded_at) * 1000000), batch_id, "
    "district_code, kind, coalesce(case_id, ''), source_system, source_event_id, event_type, "
    "detail::text, encode(body, 'hex') "
    "FROM audit.ledger WHERE batch_id = $1 AND district_code = $2 ORDER BY ledger_id";

/* Recomputes a format-1 link: SHA-256(prev || SHA-256(row's fields joined by U+001F)...).
 * Returns the number of rows, or -1 on a query error; lists the ids found in ids. */
static long link_v1(PGconn *c, const char *batch, const char *district, const uint8_t prev[HASH],
                    uint8_t out[HASH], char ids[IDS_LEN])
{
    const char *params[] = {batch, district};
    PGresult *r = query(c, SQL_ROWS_V1, 2, params);
    crypto_hash_sha256_state link;
    long n;

    if (!r)
        return -1;
    crypto_hash_sha256_init(&link);
    crypto_hash_sha256_update(&link, prev, HASH);
    n = PQntuples(r);
    ids[0] = '\0';
    for (long i = 0; i < n; i++) {
        crypto_hash_sha256_state row;
        uint8_t digest[HASH];
        crypto_hash_sha256_init(&row);
        for (int col = 0; col < PQnfields(r); col++) {
            if (col > 0)
                crypto_hash_sha256_update(&row, (const uint8_t *)"\x1f", 1);
            crypto_hash_sha256_update(&row, (const uint8_t *)PQgetvalue(r, i, col),
                                      (unsigned long long)PQgetlength(r, i, col));
        }
        crypto_hash_sha256_final(&row, digest);
        crypto_hash_sha256_update(&link, digest, HASH);
        note_id(ids, i, PQgetvalue(r, i, 0));
    }
    crypto_hash_sha256_final(&link, out);
    PQclear(r);
    return n;
}

/* Format 2 ------------------------------------------------------------------------------ */

/* Each query returns a record's fields after its kind, in canonical order. A time is its
 * microseconds since 1970 (og.chain_link casts them to bigint: as numeric here, so that an
 * infinite or far time, which no link archive made can hold, hashes to something else
 * rather than ending verify with an error). */
static const char SQL_ROWS_V2[] =
    "SELECT ledger_id, trunc(extract(epoch FROM recorded_at) * 1000000), batch_id, "
    "district_code, kind, case_id, source_system, source_event_id, event_type, detail::text, "
    "encode(body, 'hex') "
    "FROM audit.ledger WHERE batch_id = $1 AND district_code = $2 ORDER BY ledger_id";
static const char SQL_KEYS_V2[] =
    "SELECT k.source_system, k.source_event_id, k.district_code, k.case_id, k.ledger_id, "
    "trunc(extract(epoch FROM k.stored_at) * 1000000) "
    "FROM audit.ledger l JOIN audit.event_keys k ON k.source_system = l.source_system "
    "AND k.source_event_id = l.source_event_id AND k.ledger_id = l.ledger_id "
    "WHERE l.batch_id = $1 AND l.district_code = $2 AND l.kind = 'event' ORDER BY k.ledger_id";
static const char SQL_BATCH_V2[] =
    "SELECT batch_id, shard, epoch, archive, trunc(extract(epoch FROM committed_at) * 1000000) "
    "FROM audit.batches WHERE batch_id = $1";
static const char SQL_REJECTIONS_V2[] =
    "SELECT rejection_id, batch_id, trunc(extract(epoch FROM received_at) * 1000000), "
    "trunc(extract(epoch FROM recorded_at) * 1000000), publisher, source_system, "
    "source_event_id, reason, detail, raw_size, raw_sha256 "
    "FROM audit.rejected_events WHERE batch_id = $1 ORDER BY rejection_id";
static const char SQL_LINKS_V2[] =
    "SELECT district_code, seq, encode(hash, 'hex') FROM audit.chain "
    "WHERE batch_id = $1 AND district_code NOT LIKE 'shard:%' ORDER BY district_code COLLATE \"C\"";

/* A field as a netstring ("5:hello,"), or "-" for NULL. */
static void ns(crypto_hash_sha256_state *st, const char *v, size_t len, bool null)
{
    char num[24];
    if (null) {
        crypto_hash_sha256_update(st, (const uint8_t *)"-", 1);
        return;
    }
    crypto_hash_sha256_update(st, (const uint8_t *)num,
                              (unsigned long long)snprintf(num, sizeof(num), "%zu:", len));
    crypto_hash_sha256_update(st, (const uint8_t *)v, len);
    crypto_hash_sha256_update(st, (const uint8_t *)",", 1);
}

static void ns_str(crypto_hash_sha256_state *st, const char *v)
{
    ns(st, v, strlen(v), false);
}

/* Adds to link the digest of each row of sql (run with params): the kind, then every
 * column as a netstring. Returns the number of rows, or -1 on a query error; lists the
 * first column's values in ids (when not NULL). */
static long add_records(PGconn *c, crypto_hash_sha256_state *link, const char *kind,
                        const char *sql, int n, const char *const *params, char *ids)
{
    PGresult *r = query(c, sql, n, params);
    long rows;

    if (!r)
        return -1;
    rows = PQntuples(r);
    if (ids)
        ids[0] = '\0';
    for (long i = 0; i < rows; i++) {
        crypto_hash_sha256_state rec;
        uint8_t digest[HASH];
        crypto_hash_sha256_init(&rec);
        ns_str(&rec, kind);
        for (int col = 0; col < PQnfields(r); col++)
            ns(&rec, PQgetvalue(r, i, col), (size_t)PQgetlength(r, i, col), PQgetisnull(r, i, col));
        crypto_hash_sha256_final(&rec, digest);
        crypto_hash_sha256_update(link, digest, HASH);
        if (ids)
            note_id(ids, i, PQgetvalue(r, i, 0));
    }
    PQclear(r);
    return rows;
}

/* What a format-2 link covers, as found now. */
struct found {
    long records;
    long rows;       /* ledger rows (a district's link) */
    long keys;       /* event keys (a district's link) */
    long batch;      /* the batch row: 0 or 1 (a shard's link) */
    long rejections; /* (a shard's link) */
    long links;      /* district links of the batch (a shard's link) */
    char ids[IDS_LEN];
};

/* Recomputes a format-2 link (deploy/sql/current/og.chain_link.sql). 0, or -1 on a query error. */
static int link_v2(PGconn *c, const char *chain, const char *seq, const char *batch,
                   const uint8_t prev[HASH], uint8_t out[HASH], struct found *f)
{
    crypto_hash_sha256_state link;
    const char *params[] = {batch, chain};

    memset(f, 0, sizeof(*f));
    crypto_hash_sha256_init(&link);
    crypto_hash_sha256_update(&link, prev, HASH);
    ns_str(&link, "link");
    ns_str(&link, chain);
    ns_str(&link, seq);
    ns_str(&link, batch);
    if (strncmp(chain, SHARD_PFX, strlen(SHARD_PFX)) != 0) {
        if ((f->rows = add_records(c, &link, "ledger", SQL_ROWS_V2, 2, params, f->ids)) < 0 ||
            (f->keys = add_records(c, &link, "event_key", SQL_KEYS_V2, 2, params, NULL)) < 0)
            return -1;
    } else {
        if ((f->batch = add_records(c, &link, "batch", SQL_BATCH_V2, 1, params, NULL)) < 0 ||
            (f->rejections =
                 add_records(c, &link, "rejection", SQL_REJECTIONS_V2, 1, params, f->ids)) < 0 ||
            (f->links = add_records(c, &link, "chain_link", SQL_LINKS_V2, 1, params, NULL)) < 0)
            return -1;
    }
    f->records = f->rows + f->keys + f->batch + f->rejections + f->links;
    crypto_hash_sha256_final(&link, out);
    return 0;
}

/* Verify ------------------------------------------------------------------------------- */

struct verify {
    PGconn *c;
    const char *conninfo;       /* for the pass's second connection */
    struct og_audit_scan *scan; /* the pass's results (NULL: --per-link) */
    bool per_link;
    uint8_t keys[MAX_KEYS][OG_CHAINSIG_PUBLIC_BYTES]; /* trusted public keys */
    size_t n_keys;                                    /* 0: signatures are not checked */
    const char *expect;                               /* --expect-heads FILE */
    long long signed_since;                           /* lowest batch of a signed link, or -1 */
    int broken;
    long links, rows, signed_links;
};

/* A query's single value as a number, or -1 when it is NULL. */
static int scalar(PGconn *c, const char *sql, long long *out)
{
    PGresult *r = query(c, sql, 0, NULL);
    if (!r)
        return -1;
    *out = PQgetisnull(r, 0, 0) ? -1 : strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    return 0;
}

/* Checks the signature of a link (row i of links: the columns of SQL_LINKS). 0 when it is
 * valid and made with a trusted key; 1 when unsigned; -1 when bad (printed). */
static int check_signature(struct verify *v, const char *chain, const PGresult *links, int i,
                           long seq)
{
    uint8_t pk[OG_CHAINSIG_PUBLIC_BYTES], sig[OG_CHAINSIG_BYTES], hash[HASH];
    char msg[OG_CHAINSIG_MESSAGE_MAX], hex[2 * OG_CHAINSIG_PUBLIC_BYTES + 1];
    const char *batch = PQgetvalue(links, i, 1);
    bool trusted = false;
    int len;

    if (PQgetisnull(links, i, 9))
        return 1;
    if (!unhex_bytea(PQgetvalue(links, i, 9), pk, sizeof(pk)) ||
        !unhex_bytea(PQgetvalue(links, i, 10), sig, sizeof(sig)) ||
        !unhex_bytea(PQgetvalue(links, i, 3), hash, sizeof(hash))) {
        printf("%s: BROKEN at link %ld (batch %s): its signature is malformed\n", chain, seq,
               batch);
        return -1;
    }
    for (size_t k = 0; k < v->n_keys; k++)
        trusted |= memcmp(v->keys[k], pk, sizeof(pk)) == 0;
    if (!trusted) {
        printf("%s: BROKEN at link %ld (batch %s): signed with key %s, which is not one of the "
               "public keys given\n",
               chain, seq, batch, og_hex(pk, sizeof(pk), hex));
        return -1;
    }
    len = og_chainsig_message(chain, seq, strtoll(batch, NULL, 10), atoi(PQgetvalue(links, i, 7)),
                              hash, msg);
    if (len < 0 ||
        crypto_sign_verify_detached(sig, (const uint8_t *)msg, (unsigned long long)len, pk) != 0) {
        printf("%s: BROKEN at link %ld (batch %s): its signature does not match the link: the "
               "link was changed after archive signed it\n",
               chain, seq, batch);
        return -1;
    }
    return 0;
}

/* The pass found a link broken that the per-link queries find intact: one of them is wrong. */
static void disagree(const char *chain, long seq, const char *batch)
{
    printf("%s: BROKEN at link %ld (batch %s): the pass over the record and the per-link "
           "queries recompute it differently (a fault of onegridctl)\n",
           chain, seq, batch);
}

static const char SQL_LINKS[] =
    "SELECT c.seq, c.batch_id, c.prev_hash, c.hash, c.rows, c.first_ledger_id, "
    "c.last_ledger_id, c.format, c.records, s.public_key, s.signature "
    "FROM audit.chain c LEFT JOIN audit.chain_signatures s "
    "ON s.district_code = c.district_code AND s.seq = c.seq "
    "WHERE c.district_code = $1 ORDER BY c.seq";

/* Walks one chain from its first link to its head. 0 (problems counted in v->broken), or
 * -1 on a query error. */
static int verify_chain(struct verify *v, const char *chain)
{
    const char *params[] = {chain};
    PGresult *links = query(v->c, SQL_LINKS, 1, params), *head;
    uint8_t prev[HASH] = {0}, got[HASH], want[HASH], link_prev[HASH], head_hash[HASH];
    char hex[2 * HASH + 1], hex2[2 * HASH + 1];
    bool shard = strncmp(chain, SHARD_PFX, strlen(SHARD_PFX)) == 0, ok = true, seen_signed = false,
         last_signed = false;
    long seq = 0, rows = 0, batches = 0, rejections = 0, signed_links = 0;

    if (!links)
        return -1;
    for (int i = 0; ok && i < PQntuples(links); i++) {
        const char *batch = PQgetvalue(links, i, 1);
        long long batch_id = strtoll(batch, NULL, 10);
        int format = atoi(PQgetvalue(links, i, 7));
        long recorded = strtol(PQgetvalue(links, i, 4), NULL, 10);
        char seq_s[24];

        seq++;
        snprintf(seq_s, sizeof(seq_s), "%ld", seq);
        /* Columns archive never leaves empty (the owner can make them so). */
        if (PQgetisnull(links, i, 0) || PQgetisnull(links, i, 1)) {
            printf("%s: BROKEN at link %ld: a link without its %s\n", chain, seq,
                   PQgetisnull(links, i, 0) ? "number (seq is NULL)" : "batch (batch_id is NULL)");
            ok = false;
            break;
        }
        /* Batches are numbered from 1 (og.batch's identity): a link of batch 0 or below was
         * not made by archive, and is older than any link, so no later link covers it. */
        if (batch_id < 1) {
            printf("%s: BROKEN at link %ld: batch %s, not one archive numbers\n", chain, seq,
                   batch);
            ok = false;
            break;
        }
        if (strtol(PQgetvalue(links, i, 0), NULL, 10) != seq) {
            printf("%s: BROKEN at link %ld: link %s follows link %ld (links missing)\n", chain, seq,
                   PQgetvalue(links, i, 0), seq - 1);
            ok = false;
            break;
        }
        if (!unhex_bytea(PQgetvalue(links, i, 2), link_prev, HASH) ||
            !unhex_bytea(PQgetvalue(links, i, 3), want, HASH) ||
            memcmp(link_prev, prev, HASH) != 0) {
            printf("%s: BROKEN at link %ld (batch %s): its previous hash is not the hash of "
                   "link %ld\n",
                   chain, seq, batch, seq - 1);
            ok = false;
            break;
        }
        if (format == 1 && !shard) {
            char ids[IDS_LEN];
            struct og_audit_scan_link sl;
            bool scanned = og_audit_scan_link(v->scan, chain, seq, batch_id, 1, &sl);
            long found;
            if (scanned && sl.rows == recorded && memcmp(sl.hash, want, HASH) == 0) {
                rows += sl.rows;
                goto link_ok;
            }
            if ((found = link_v1(v->c, batch, chain, prev, got, ids)) < 0)
                goto fail;
            if (scanned && found == recorded && memcmp(got, want, HASH) == 0) {
                disagree(chain, seq, batch);
                ok = false;
                break;
            }
            if (found != recorded || memcmp(got, want, HASH) != 0) {
                printf("%s: BROKEN at link %ld (batch %s): recorded %ld ledger rows, ids %s..%s; "
                       "found %ld (ids %s); they hash to %s, the chain holds %s\n",
                       chain, seq, batch, recorded, PQgetvalue(links, i, 5),
                       PQgetvalue(links, i, 6), found, *ids ? ids : "none", og_hex(got, HASH, hex),
                       og_hex(want, HASH, hex2));
                ok = false;
                break;
            }
            rows += found;
        } else if (format == 2) {
            struct found f;
            struct og_audit_scan_link sl;
            long records = strtol(PQgetvalue(links, i, 8), NULL, 10);
            bool scanned = og_audit_scan_link(v->scan, chain, seq, batch_id, 2, &sl);
            if (scanned && sl.rows + sl.keys + sl.batch + sl.rejections + sl.links == records &&
                sl.rows == recorded && memcmp(sl.hash, want, HASH) == 0 &&
                !PQgetisnull(links, i, 8)) {
                rows += sl.rows;
                batches += sl.batch;
                rejections += sl.rejections;
                goto link_ok;
            }
            if (link_v2(v->c, chain, seq_s, batch, prev, got, &f) < 0)
                goto fail;
            if (scanned && f.records == records && f.rows == recorded &&
                memcmp(got, want, HASH) == 0) {
                disagree(chain, seq, batch);
                ok = false;
                break;
            }
            if (f.records != records || f.rows != recorded || memcmp(got, want, HASH) != 0) {
                if (shard)
                    printf("%s: BROKEN at link %ld (batch %s): recorded %ld records; found "
                           "%ld (batch row: %s; %ld rejections, ids %s; %ld district links); "
                           "they hash to %s, the chain holds %s\n",
                           chain, seq, batch, records, f.records, f.batch ? "present" : "MISSING",
                           f.rejections, *f.ids ? f.ids : "none", f.links, og_hex(got, HASH, hex),
                           og_hex(want, HASH, hex2));
                else
                    printf("%s: BROKEN at link %ld (batch %s): recorded %ld ledger rows, ids "
                           "%s..%s, and %ld records in all; found %ld ledger rows (ids %s) and "
                           "%ld event keys; they hash to %s, the chain holds %s\n",
                           chain, seq, batch, recorded, PQgetvalue(links, i, 5),
                           PQgetvalue(links, i, 6), records, f.rows, *f.ids ? f.ids : "none",
                           f.keys, og_hex(got, HASH, hex), og_hex(want, HASH, hex2));
                ok = false;
                break;
            }
            rows += f.rows;
            batches += f.batch;
            rejections += f.rejections;
        } else {
            printf("%s: BROKEN at link %ld (batch %s): format %d is not a format of %s chain\n",
                   chain, seq, batch, format, shard ? "a shard's" : "a district's");
            ok = false;
            break;
        }
    link_ok:
        if (v->n_keys) {
            int s = check_signature(v, chain, links, i, seq);
            if (s < 0) {
                ok = false;
                break;
            }
            if (s == 1 && (seen_signed || (v->signed_since >= 0 && batch_id >= v->signed_since))) {
                printf("%s: BROKEN at link %ld (batch %s): not signed, though links are signed "
                       "since batch %lld\n",
                       chain, seq, batch, v->signed_since);
                ok = false;
                break;
            }
            seen_signed |= s == 0;
            last_signed = s == 0;
        }
        signed_links += !PQgetisnull(links, i, 9);
        memcpy(prev, want, HASH);
    }
    PQclear(links);
    links = NULL;
    /* A shard's chain covers every batch and, link by link, the district links each batch
     * wrote, and each of its links hashes the one before: with its head signed, all of it is
     * proven, the links from before signing began included. A shard chain whose head is not
     * signed could have been made by the database's owner, districts' links with it (a
     * district chain of batches before signing began, with a shard chain to cover them,
     * passed). */
    if (ok && shard && v->n_keys && seq > 0 && !last_signed) {
        printf("%s: BROKEN: its last link (%ld) is not signed: nothing proves archive wrote this "
               "chain\n",
               chain, seq);
        ok = false;
    }

    head = query(v->c, "SELECT seq, '\\x' || hash FROM audit.chain_heads WHERE district_code = $1",
                 1, params);
    if (!head)
        return -1;
    if (ok && (PQntuples(head) != 1 || strtol(PQgetvalue(head, 0, 0), NULL, 10) != seq ||
               !unhex_bytea(PQgetvalue(head, 0, 1), head_hash, HASH) ||
               memcmp(head_hash, prev, HASH) != 0)) {
        if (PQntuples(head) != 1)
            printf("%s: BROKEN: the chain has no head\n", chain);
        else
            printf("%s: BROKEN: the head (link %s) is not the last link (%ld)\n", chain,
                   PQgetvalue(head, 0, 0), seq);
        ok = false;
    }
    PQclear(head);
    if (ok) {
        char sig_note[64] = "";
        if (signed_links)
            snprintf(sig_note, sizeof(sig_note), " (%ld signed%s)", signed_links,
                     v->n_keys ? "" : ", not checked");
        if (shard)
            printf("%s: %ld links%s, %ld batches, %ld rejections, head %s: intact\n", chain, seq,
                   sig_note, batches, rejections, og_hex(prev, HASH, hex));
        else
            printf("%s: %ld links%s, %ld ledger rows, head %s: intact\n", chain, seq, sig_note,
                   rows, og_hex(prev, HASH, hex));
    }
    v->broken += !ok;
    v->links += seq;
    v->rows += rows;
    v->signed_links += signed_links;
    return 0;
fail:
    PQclear(links);
    return -1;
}

/* Records outside every chain: rows no link covers, event keys that name no stored event,
 * and batches, rejections and district links no shard link covers (all but those of the
 * batches before the first format-2 link, when format-1 links, made before migration 015,
 * are in the record: nothing covered those). The first two are counted by the pass, and
 * asked for only when it saw some. */
static int verify_strays(struct verify *v)
{
    long long since, legacy;
    char legacy_s[24];
    const char *params[] = {legacy_s};
    static const struct {
        const char *sql, *what, *ids, *why;
        bool v2;
    } checks[] = {
        {"SELECT count(*), min(ledger_id), max(ledger_id) FROM audit.ledger l "
         "WHERE NOT EXISTS (SELECT 1 FROM audit.chain k WHERE k.batch_id = l.batch_id "
         "AND k.district_code = l.district_code) OR starts_with(l.district_code, 'shard:')",
         "ledger rows", "ids", "belong to no link of any chain", false},
        {"SELECT count(*), min(k.ledger_id), max(k.ledger_id) FROM audit.event_keys k "
         "WHERE NOT EXISTS (SELECT 1 FROM audit.ledger l WHERE l.ledger_id = k.ledger_id "
         "AND l.kind = 'event' AND l.source_system = k.source_system "
         "AND l.source_event_id = k.source_event_id)",
         "event keys", "ledger ids",
         "name no stored event: an event sent with such a key would be answered "
         "\"duplicate\" and never stored",
         false},
        {"SELECT count(*), min(batch_id), max(batch_id) FROM audit.batches b "
         "WHERE (b.batch_id > $1 OR b.batch_id < 1) AND NOT EXISTS (SELECT 1 FROM audit.chain k "
         "WHERE k.batch_id = b.batch_id AND k.district_code = 'shard:' || b.shard)",
         "batches", "ids", "belong to no link of their shard's chain", true},
        {"SELECT count(*), min(rejection_id), max(rejection_id) FROM audit.rejected_events j "
         "WHERE (j.batch_id > $1 OR j.batch_id < 1) AND NOT EXISTS (SELECT 1 FROM audit.chain k "
         "WHERE k.batch_id = j.batch_id AND k.format = 2 AND k.district_code LIKE 'shard:%')",
         "rejections", "ids", "belong to no link of any shard's chain", true},
        {"SELECT count(*), min(d.batch_id), max(d.batch_id) FROM audit.chain d "
         "WHERE d.district_code NOT LIKE 'shard:%' AND (d.batch_id > $1 OR d.batch_id < 1) "
         "AND NOT EXISTS (SELECT 1 FROM audit.chain k WHERE k.batch_id = d.batch_id "
         "AND k.format = 2 AND k.district_code LIKE 'shard:%')",
         "district links", "of batches",
         "belong to no shard's link: no batch of archive's covers them", true},
    };

    if (scalar(v->c, "SELECT min(batch_id) FROM audit.chain WHERE format = 2", &since) < 0)
        return -1;
    /* The batches before the first format-2 link, where the record has format-1 links
     * (from before migration 015): 0 where it has none, as a database made since. */
    if (scalar(v->c,
               "SELECT CASE WHEN EXISTS (SELECT 1 FROM audit.chain WHERE format = 1) "
               "THEN (SELECT min(batch_id) - 1 FROM audit.chain WHERE format = 2) ELSE 0 END",
               &legacy) < 0)
        return -1;
    snprintf(legacy_s, sizeof(legacy_s), "%lld", legacy < 0 ? 0 : legacy);
    for (size_t i = 0; i < OG_ARRAY_SIZE(checks); i++) {
        PGresult *r;
        if (checks[i].v2 && since < 0)
            continue; /* no link of format 2 yet: nothing covers batches and rejections */
        /* The pass counted the first two: the query only names them. */
        if (v->scan && ((i == 0 && og_audit_scan_stray_rows(v->scan) == 0) ||
                        (i == 1 && og_audit_scan_stray_keys(v->scan) == 0)))
            continue;
        r = query(v->c, checks[i].sql, checks[i].v2 ? 1 : 0, checks[i].v2 ? params : NULL);
        if (!r)
            return -1;
        if (strtol(PQgetvalue(r, 0, 0), NULL, 10) > 0) {
            printf("BROKEN: %s %s (%s %s..%s) %s\n", PQgetvalue(r, 0, 0), checks[i].what,
                   checks[i].ids, PQgetvalue(r, 0, 1), PQgetvalue(r, 0, 2), checks[i].why);
            v->broken++;
        }
        PQclear(r);
    }
    return 0;
}

/* What the catalog says of the record's tables, which the auditor can read: row security
 * (a policy can show the views, which read the tables with their owner's rights when it is
 * forced, a record other than the one the daemons keep), rules, and triggers disabled (the
 * append-only guards: the owner is rewriting the record, or left it open). */
static int verify_catalog(struct verify *v)
{
    static const struct {
        const char *sql, *what;
    } checks[] = {
        {"SELECT string_agg(c.oid::regclass::text || ' (' || concat_ws(', ', "
         "CASE WHEN c.relrowsecurity THEN 'row security' END, "
         "CASE WHEN c.relforcerowsecurity THEN 'forced' END, "
         "CASE WHEN c.relhasrules THEN 'rules' END) || ')', ', ' ORDER BY c.oid::regclass::text) "
         "FROM pg_class c WHERE c.relnamespace = 'og'::regnamespace AND c.relkind IN ('r', 'p') "
         "AND (c.relrowsecurity OR c.relforcerowsecurity OR c.relhasrules)",
         "tables of the record can show readers other rows than those stored"},
        {"SELECT string_agg(t.tgrelid::regclass::text || '.' || t.tgname, ', ' "
         "ORDER BY t.tgrelid::regclass::text, t.tgname) "
         "FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
         "WHERE c.relnamespace = 'og'::regnamespace AND NOT t.tgisinternal "
         "AND t.tgparentid = 0 AND t.tgenabled = 'D'",
         "triggers that keep the record append-only are disabled"},
    };
    for (size_t i = 0; i < OG_ARRAY_SIZE(checks); i++) {
        PGresult *r = query(v->c, checks[i].sql, 0, NULL);
        if (!r)
            return -1;
        if (!PQgetisnull(r, 0, 0)) {
            printf("BROKEN: %s: %s\n", checks[i].what, PQgetvalue(r, 0, 0));
            v->broken++;
        }
        PQclear(r);
    }
    return 0;
}

/* Kept heads that no longer match: the database may have been restored from a backup,
 * which looks the same as the newest batches rolled back. Its generations (migration
 * 028) tell the two apart: each restore the daemons found, or an operator declared, since
 * the heads were kept (kept_at: the first "# onegrid chain heads at" line of the file, ""
 * when it has none: then every generation after the first). A generation opens also where
 * nothing was lost (a move, an upgrade, a promotion): its reason says which it was. */
static int restores(struct verify *v, const char *kept_at)
{
    long long have;
    if (scalar(v->c, "SELECT (to_regclass('audit.database_generations') IS NOT NULL)::integer",
               &have) < 0)
        return -1;
    if (!have)
        return 0;
    const char *params[] = {kept_at};
    PGresult *r = query(v->c,
                        "SELECT generation, began_at, why FROM audit.database_generations "
                        "WHERE generation > 1 AND ($1 = '' OR began_at > $1::timestamptz) "
                        "ORDER BY generation",
                        1, params);
    if (!r)
        return -1;
    if (PQntuples(r) == 0)
        printf("kept heads differ and the database records no restore since they were kept "
               "(audit.database_generations): the newest batches were rolled back or "
               "rewritten\n");
    for (int i = 0; i < PQntuples(r); i++)
        printf("the database began generation %s at %s: %s; heads kept before then may name "
               "links it no longer has: those of the time a restore lost "
               "(audit.database_generations)\n",
               PQgetvalue(r, i, 0), PQgetvalue(r, i, 1), PQgetvalue(r, i, 2));
    PQclear(r);
    return 0;
}

static int verify_expected(struct verify *v)
{
    FILE *f = fopen(v->expect, "r");
    char line[1024];
    long n = 0, lineno = 0;
    int broken_before = v->broken;
    char kept_at[64] = "";

    if (!f) {
        fprintf(stderr, "onegridctl audit verify: could not open \"%s\": %s\n", v->expect,
                strerror(errno));
        return -2;
    }
    while (fgets(line, sizeof(line), f)) {
        char chain[OG_CHAINSIG_CHAIN_MAX + 1], hash_s[2 * HASH + 1],
            batch_s[24] = "", pk_s[2 * 32 + 1] = "", sig_s[2 * 64 + 1] = "";
        long long seq;
        int format = 0, fields;
        uint8_t hash[HASH];

        lineno++;
        /* A line fgets could not end: longer than the buffer, or a NUL byte before its line
         * break (/dev/zero was read for ever, as empty lines). */
        if (!strchr(line, '\n') && !feof(f)) {
            fprintf(stderr,
                    "onegridctl audit verify: %s:%ld: longer than %zu bytes, or a NUL byte: "
                    "not a file of heads as `audit heads` prints them\n",
                    v->expect, lineno, sizeof(line) - 2);
            fclose(f);
            return -2;
        }
        static const char header[] = "# onegrid chain heads at ";
        const char *end;
        if (!*kept_at && strncmp(line, header, sizeof(header) - 1) == 0 &&
            (end = strstr(line, ": chain,")) && end - line - (sizeof(header) - 1) < 64)
            snprintf(kept_at, sizeof(kept_at), "%.*s", (int)(end - line - (sizeof(header) - 1)),
                     line + sizeof(header) - 1);
        if (line[strspn(line, " \t\r\n")] == '\0' || line[strspn(line, " \t")] == '#')
            continue;
        fields = sscanf(line, "%256s %lld %64s %23s %d %64s %128s", chain, &seq, hash_s, batch_s,
                        &format, pk_s, sig_s);
        if (fields < 3 || !unhex(hash_s, hash, HASH)) {
            fprintf(stderr,
                    "onegridctl audit verify: %s:%ld: not a head (chain, link, SHA-256 in hex, "
                    "as `audit heads` prints)\n",
                    v->expect, lineno);
            fclose(f);
            return -2;
        }
        n++;
        char seq_s[24];
        snprintf(seq_s, sizeof(seq_s), "%lld", seq);
        const char *params[] = {chain, seq_s};
        PGresult *r = query(v->c,
                            "SELECT encode(hash, 'hex') FROM audit.chain "
                            "WHERE district_code = $1 AND seq = $2::bigint",
                            2, params);
        if (!r) {
            fclose(f);
            return -1;
        }
        if (PQntuples(r) == 0) {
            printf("%s: BROKEN: link %lld, a head kept in %s (line %ld), is not in the chain\n",
                   chain, seq, v->expect, lineno);
            v->broken++;
        } else if (strcmp(PQgetvalue(r, 0, 0), hash_s) != 0) {
            printf("%s: BROKEN: link %lld is %s; %s (line %ld) kept it as %s\n", chain, seq,
                   PQgetvalue(r, 0, 0), v->expect, lineno, hash_s);
            v->broken++;
        }
        PQclear(r);
        /* A kept head that carries its signature proves itself with the public key. */
        if (v->n_keys && fields == 7 && strcmp(sig_s, "-") != 0) {
            uint8_t pk[32], sig[64];
            char msg[OG_CHAINSIG_MESSAGE_MAX];
            bool trusted = false;
            int len = -1;
            if (unhex(pk_s, pk, sizeof(pk)) && unhex(sig_s, sig, sizeof(sig))) {
                for (size_t k = 0; k < v->n_keys; k++)
                    trusted |= memcmp(v->keys[k], pk, sizeof(pk)) == 0;
                len =
                    og_chainsig_message(chain, seq, strtoll(batch_s, NULL, 10), format, hash, msg);
            }
            if (!trusted || len < 0 ||
                crypto_sign_verify_detached(sig, (const uint8_t *)msg, (unsigned long long)len,
                                            pk) != 0) {
                printf("%s: BROKEN: the signature kept with link %lld in %s (line %ld) is not a "
                       "signature by a public key given\n",
                       chain, seq, v->expect, lineno);
                v->broken++;
            }
        }
    }
    fclose(f);
    printf("expected heads: %ld read from %s\n", n, v->expect);
    return broken_before < v->broken ? restores(v, kept_at) : 0;
}

static int verify(struct verify *v)
{
    PGresult *chains, *r;
    char err[1024];

    /* One snapshot for the whole walk, so batches committing meanwhile do not matter. */
    if (!(r = query(v->c, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", 0, NULL)))
        return -1;
    PQclear(r);
    if (scalar(v->c,
               "SELECT min(c.batch_id) FROM audit.chain c JOIN audit.chain_signatures s "
               "ON s.district_code = c.district_code AND s.seq = c.seq",
               &v->signed_since) < 0)
        return -1;
    if (!v->per_link && !(v->scan = og_audit_scan_run(v->c, v->conninfo, err, sizeof(err)))) {
        fprintf(stderr, "onegridctl audit verify: %s\n", err);
        return -1;
    }
    if (v->n_keys && v->signed_since < 0) {
        printf("BROKEN: no link is signed (archive has no signing_key, or every signature was "
               "removed)\n");
        v->broken++;
    }
    /* Every chain that has a link or a head: a chain whose head was removed is still
     * walked. Districts (digits) come before shards. */
    chains = query(v->c,
                   "SELECT name FROM (SELECT district_code FROM audit.chain UNION "
                   "SELECT district_code FROM audit.chain_heads) c(name) "
                   "ORDER BY name COLLATE \"C\"",
                   0, NULL);
    if (!chains)
        return -1;
    for (int i = 0; i < PQntuples(chains); i++) {
        if (PQgetisnull(chains, i, 0)) {
            long long n;
            if (scalar(v->c,
                       "SELECT (SELECT count(*) FROM audit.chain WHERE district_code IS NULL) + "
                       "(SELECT count(*) FROM audit.chain_heads WHERE district_code IS NULL)",
                       &n) < 0) {
                PQclear(chains);
                return -1;
            }
            printf("BROKEN: %lld links or heads without their chain (district_code is NULL)\n", n);
            v->broken++;
            continue;
        }
        if (verify_chain(v, PQgetvalue(chains, i, 0)) < 0) {
            PQclear(chains);
            return -1;
        }
    }
    PQclear(chains);
    if (verify_strays(v) < 0 || verify_catalog(v) < 0)
        return -1;
    if (v->expect) {
        int rc = verify_expected(v);
        if (rc < 0)
            return rc;
    }
    PQclear(PQexec(v->c, "COMMIT"));
    if (v->broken)
        printf("audit verify: FAILED: %d problem(s)\n", v->broken);
    else
        printf("audit verify: passed: %ld links (%ld signed%s), %ld ledger rows\n", v->links,
               v->signed_links,
               v->n_keys         ? ", every signature valid"
               : v->signed_links ? ", signatures not checked: no --public-key"
                                 : "",
               v->rows);
    return v->broken ? 1 : 0;
}

/* Heads, with what a third party needs to check each one's signature offline. */
static int heads(PGconn *c)
{
    PGresult *r = query(
        c,
        "SELECT h.district_code, h.seq, h.hash, k.batch_id, k.format, "
        "coalesce(encode(s.public_key, 'hex'), '-'), coalesce(encode(s.signature, 'hex'), '-'), "
        "now() FROM audit.chain_heads h "
        "LEFT JOIN audit.chain k ON k.district_code = h.district_code AND k.seq = h.seq "
        "LEFT JOIN audit.chain_signatures s ON s.district_code = h.district_code AND s.seq = h.seq "
        "ORDER BY h.district_code COLLATE \"C\"",
        0, NULL);
    if (!r)
        return -1;
    printf("# onegrid chain heads at %s: chain, link, SHA-256, batch, format, Ed25519 public "
           "key, signature ('-': unsigned)\n",
           PQntuples(r) ? PQgetvalue(r, 0, 7) : "(no chain yet)");
    for (int i = 0; i < PQntuples(r); i++)
        printf("%s %s %s %s %s %s %s\n", PQgetvalue(r, i, 0), PQgetvalue(r, i, 1),
               PQgetvalue(r, i, 2), PQgetisnull(r, i, 3) ? "-" : PQgetvalue(r, i, 3),
               PQgetisnull(r, i, 4) ? "-" : PQgetvalue(r, i, 4), PQgetvalue(r, i, 5),
               PQgetvalue(r, i, 6));
    PQclear(r);
    return 0;
}

static int parse_db(int argc, char **argv, const char *usage, const char **conninfo, bool *flag,
                    const char *flag_name)
{
    const struct option opts[] = {{"db", required_argument, NULL, 'd'},
                                  {flag_name, no_argument, NULL, 'f'},
                                  {"help", no_argument, NULL, 'h'},
                                  {NULL, 0, NULL, 0}};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "d:h", opts, NULL)) != -1) {
        switch (c) {
        case 'd':
            *conninfo = optarg;
            break;
        case 'f':
            *flag = true;
            break;
        case 'h':
            printf("%s", usage);
            return 1;
        default:
            fprintf(stderr, "%s", usage);
            return -1;
        }
    }
    if (!*conninfo || optind != argc) {
        fprintf(stderr, "%s", usage);
        return -1;
    }
    return 0;
}

int og_cmd_audit(int argc, char **argv)
{
    static const char usage[] =
        "usage: onegridctl audit verify --db CONNINFO [--public-key FILE|HEX]...\n"
        "                               [--expect-heads FILE] [--per-link]\n"
        "       onegridctl audit heads --db CONNINFO\n"
        "       onegridctl audit definitions --db CONNINFO [--expect FILE]\n"
        "  verify  recompute every hash chain from the records; exit 0 when intact, 1 naming\n"
        "          the first broken link of each broken chain\n"
        "          --public-key    archive's signing key (PREFIX.sign.public; repeat it for\n"
        "                          keys used before): every link since the first signed one\n"
        "                          must carry a valid signature by one of them\n"
        "          --expect-heads  heads kept elsewhere (lines as `audit heads` prints them):\n"
        "                          each must still be in its chain, unchanged\n"
        "          --per-link      recompute each link with queries of its own instead of\n"
        "                          one pass over the record (slow: to cross-check the pass)\n"
        "  heads   print each chain's head (chain, link, SHA-256, batch, format, public key,\n"
        "          signature) for keeping elsewhere (anchoring)\n"
        "  definitions  list the schema's objects with a digest of each definition, or\n"
        "          compare them with a list (see `onegridctl audit definitions --help`)\n"
        "CONNINFO may log in as the auditor role: only the audit views are read.\n";
    static const struct option opts[] = {{"db", required_argument, NULL, 'd'},
                                         {"public-key", required_argument, NULL, 'k'},
                                         {"expect-heads", required_argument, NULL, 'e'},
                                         {"per-link", no_argument, NULL, 'p'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    struct verify v = {.signed_since = -1};
    const char *conninfo = NULL;
    bool is_verify;
    char err[512];
    int rc, c;

    if (argc >= 2 && strcmp(argv[1], "definitions") == 0)
        return og_cmd_audit_definitions(argc - 1, argv + 1);
    if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        fputs(usage, stdout);
        return OG_EXIT_OK;
    }
    if (argc < 2 || (strcmp(argv[1], "verify") != 0 && strcmp(argv[1], "heads") != 0)) {
        fprintf(stderr, "%s", usage);
        return OG_EXIT_USAGE;
    }
    is_verify = strcmp(argv[1], "verify") == 0;
    if (sodium_init() < 0) {
        fprintf(stderr, "onegridctl audit: libsodium could not be initialised\n");
        return OG_EXIT_FAIL;
    }
    optind = 1;
    while ((c = getopt_long(argc - 1, argv + 1, "d:h", opts, NULL)) != -1) {
        if (c == 'd') {
            conninfo = optarg;
        } else if (c == 'k' && is_verify) {
            if (v.n_keys == MAX_KEYS) {
                fprintf(stderr, "onegridctl audit verify: at most %d public keys\n", MAX_KEYS);
                return OG_EXIT_USAGE;
            }
            if (og_chainsig_public_read(optarg, v.keys[v.n_keys], err, sizeof(err)) < 0) {
                fprintf(stderr, "onegridctl audit verify: %s\n", err);
                return OG_EXIT_USAGE;
            }
            v.n_keys++;
        } else if (c == 'e' && is_verify) {
            v.expect = optarg;
        } else if (c == 'p' && is_verify) {
            v.per_link = true;
        } else {
            fputs(usage, c == 'h' ? stdout : stderr);
            return c == 'h' ? OG_EXIT_OK : OG_EXIT_USAGE;
        }
    }
    if (!conninfo || optind != argc - 1) {
        fputs(usage, stderr);
        return OG_EXIT_USAGE;
    }
    if (!(v.c = connect_or_report(conninfo, "onegridctl audit")))
        return OG_EXIT_FAIL;
    v.conninfo = conninfo;
    rc = is_verify ? verify(&v) : heads(v.c);
    og_audit_scan_free(&v.scan);
    PQfinish(v.c);
    if (rc == -2)
        return OG_EXIT_USAGE;
    return rc < 0 ? OG_EXIT_FAIL : rc;
}

int og_cmd_rebuild_cases(int argc, char **argv)
{
    static const char usage[] =
        "usage: onegridctl rebuild-cases --db CONNINFO [--apply]\n"
        "  compares the case projection (og.case, and each case's reports, og.case_report)\n"
        "  with the one rebuilt from the ledger and prints the differences; exit 0 when they\n"
        "  agree, 1 when not. --apply replaces both with the rebuilt projection (as the owner\n"
        "  role, with the daemons stopped).\n";
    const char *conninfo = NULL;
    bool apply = false;
    PGconn *c;
    PGresult *r;
    int p, rc = OG_EXIT_FAIL;

    p = parse_db(argc, argv, usage, &conninfo, &apply, "apply");
    if (p)
        return p > 0 ? OG_EXIT_OK : OG_EXIT_USAGE;
    if (!(c = connect_or_report(conninfo, "onegridctl rebuild-cases")))
        return OG_EXIT_FAIL;
    if (apply) {
        char err[1024];
        /* Several statements: the simple query protocol, one transaction. */
        if (og_db_exec(c,
                       "BEGIN; LOCK og.case; ALTER TABLE og.case DISABLE TRIGGER feed_opened, "
                       "DISABLE TRIGGER feed_changed; DELETE FROM og.case; "
                       "INSERT INTO og.case SELECT * FROM og.case_rebuilt; ALTER TABLE og.case "
                       "ENABLE TRIGGER feed_opened, ENABLE TRIGGER feed_changed; "
                       "LOCK og.case_report; DELETE FROM og.case_report; "
                       "INSERT INTO og.case_report SELECT * FROM og.case_report_rebuilt; COMMIT",
                       err, sizeof(err)) < 0) {
            fprintf(stderr, "onegridctl rebuild-cases: %s\n", err);
            PQclear(PQexec(c, "ROLLBACK"));
            goto out;
        }
    }
    r = query(c,
              "SELECT side, case_id, state, unit_code, deadline_at, contacts "
              "FROM audit.projection_differences ORDER BY case_id, side",
              0, NULL);
    if (!r)
        goto out;
    for (int i = 0; i < PQntuples(r) && i < 20; i++)
        printf("%-6s %s state=%s unit=%s deadline=%s contacts=%s\n", PQgetvalue(r, i, 0),
               PQgetvalue(r, i, 1), PQgetvalue(r, i, 2), PQgetvalue(r, i, 3), PQgetvalue(r, i, 4),
               PQgetvalue(r, i, 5));
    printf("rebuild-cases: %d rows differ between og.case and the ledger%s\n", PQntuples(r),
           apply ? " after rebuilding" : "");
    rc = PQntuples(r) ? OG_EXIT_FAIL : OG_EXIT_OK;
    PQclear(r);
    /* Each case's reports (audit.case_reports): where each report is now, and how it got
     * there. */
    r = query(c,
              "SELECT side, source_system, source_event_id, case_id, joined, ledger_id "
              "FROM audit.report_projection_differences "
              "ORDER BY source_system, source_event_id, side",
              0, NULL);
    if (!r) {
        rc = OG_EXIT_FAIL;
        goto out;
    }
    for (int i = 0; i < PQntuples(r) && i < 20; i++)
        printf("%-6s report %s/%s case=%s joined=%s ledger_id=%s\n", PQgetvalue(r, i, 0),
               PQgetvalue(r, i, 1), PQgetvalue(r, i, 2), PQgetvalue(r, i, 3), PQgetvalue(r, i, 4),
               PQgetvalue(r, i, 5));
    printf("rebuild-cases: %d rows differ between og.case_report and the ledger%s\n", PQntuples(r),
           apply ? " after rebuilding" : "");
    if (PQntuples(r))
        rc = OG_EXIT_FAIL;
    PQclear(r);
out:
    PQfinish(c);
    return rc;
}
