/* `onegridctl audit verify|heads` and `onegridctl rebuild-cases`.
 *
 * verify recomputes every link of every district's hash chain from the ledger rows as
 * they are now (deploy/sql/002_audit.sql gives the canonical form) and reports the first
 * broken link of each chain with the rows involved. It builds the canonical text and the
 * hashes itself, reading only the audit views, so it runs as the auditor role and trusts
 * no function stored in the database. */
#include <getopt.h>
#include <libpq-fe.h>
#include <sodium.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "onegridctl.h"
#include "util.h"

#define HASH crypto_hash_sha256_BYTES

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

/* bytea in hex output ("\x0a1b...") to bytes; false unless it is exactly HASH bytes. */
static bool unhex_hash(const char *s, uint8_t out[HASH])
{
    if (strncmp(s, "\\x", 2) != 0 || strlen(s) != 2 + 2 * HASH)
        return false;
    for (size_t i = 0; i < HASH; i++) {
        unsigned v;
        if (sscanf(s + 2 + 2 * i, "%2x", &v) != 1)
            return false;
        out[i] = (uint8_t)v;
    }
    return true;
}

static const char SQL_ROWS[] =
    "SELECT ledger_id, (extract(epoch FROM recorded_at) * 1000000)::bigint, batch_id, "
    "district_code, kind, coalesce(case_id, ''), source_system, source_event_id, event_type, "
    "detail::text, encode(body, 'hex') "
    "FROM audit.ledger WHERE batch_id = $1 AND district_code = $2 ORDER BY ledger_id";

/* Recomputes one link: SHA-256(prev || SHA-256(canonical row)...). Returns the number of
 * rows, or -1 on a query error; fills first/last ledger ids found. */
static long link_hash(PGconn *c, const char *batch, const char *district, const uint8_t prev[HASH],
                      uint8_t out[HASH], char *ids, size_t idslen)
{
    const char *params[] = {batch, district};
    PGresult *r = query(c, SQL_ROWS, 2, params);
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
        if (i < 8) {
            size_t len = strlen(ids);
            snprintf(ids + len, idslen - len, "%s%s", i ? "," : "", PQgetvalue(r, i, 0));
        } else if (i == 8) {
            strncat(ids, ",...", idslen - strlen(ids) - 1);
        }
    }
    crypto_hash_sha256_final(&link, out);
    PQclear(r);
    return n;
}

static int verify(PGconn *c)
{
    PGresult *heads, *links, *strays;
    int broken = 0;
    long total_links = 0, total_rows = 0;
    char hex[2 * HASH + 1], hex2[2 * HASH + 1];

    /* One snapshot for the whole walk, so batches committing meanwhile do not matter. */
    if (!(heads = query(c, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", 0, NULL)))
        return -1;
    PQclear(heads);
    heads = query(c,
                  "SELECT district_code, seq, '\\x' || hash FROM audit.chain_heads "
                  "ORDER BY district_code",
                  0, NULL);
    if (!heads)
        return -1;
    for (int h = 0; h < PQntuples(heads); h++) {
        const char *district = PQgetvalue(heads, h, 0);
        const char *params[] = {district};
        uint8_t prev[HASH] = {0}, got[HASH], want[HASH], head_hash[HASH];
        long seq = 0, rows = 0;
        bool ok = true;

        links = query(c,
                      "SELECT seq, batch_id, prev_hash, hash, rows, first_ledger_id, "
                      "last_ledger_id FROM audit.chain WHERE district_code = $1 ORDER BY seq",
                      1, params);
        if (!links)
            return -1;
        for (int i = 0; ok && i < PQntuples(links); i++) {
            const char *batch = PQgetvalue(links, i, 1);
            long recorded = strtol(PQgetvalue(links, i, 4), NULL, 10), found;
            uint8_t link_prev[HASH];
            char ids[256];

            seq++;
            if (strtol(PQgetvalue(links, i, 0), NULL, 10) != seq) {
                printf("%s: BROKEN at link %ld: link %s follows link %ld (links missing)\n",
                       district, seq, PQgetvalue(links, i, 0), seq - 1);
                ok = false;
                break;
            }
            if (!unhex_hash(PQgetvalue(links, i, 2), link_prev) ||
                !unhex_hash(PQgetvalue(links, i, 3), want) || memcmp(link_prev, prev, HASH) != 0) {
                printf("%s: BROKEN at link %ld (batch %s): its previous hash is not the hash of "
                       "link %ld\n",
                       district, seq, batch, seq - 1);
                ok = false;
                break;
            }
            found = link_hash(c, batch, district, prev, got, ids, sizeof(ids));
            if (found < 0)
                return -1;
            if (found != recorded || memcmp(got, want, HASH) != 0) {
                printf("%s: BROKEN at link %ld (batch %s): recorded %ld ledger rows, ids %s..%s; "
                       "found %ld (ids %s); they hash to %s, the chain holds %s\n",
                       district, seq, batch, recorded, PQgetvalue(links, i, 5),
                       PQgetvalue(links, i, 6), found, *ids ? ids : "none", og_hex(got, HASH, hex),
                       og_hex(want, HASH, hex2));
                ok = false;
                break;
            }
            memcpy(prev, want, HASH);
            rows += found;
        }
        if (ok && (strtol(PQgetvalue(heads, h, 1), NULL, 10) != seq ||
                   !unhex_hash(PQgetvalue(heads, h, 2), head_hash) ||
                   memcmp(head_hash, prev, HASH) != 0)) {
            printf("%s: BROKEN: the head (link %s) is not the last link (%ld)\n", district,
                   PQgetvalue(heads, h, 1), seq);
            ok = false;
        }
        if (ok)
            printf("%s: %ld links, %ld ledger rows, head %s: intact\n", district, seq, rows,
                   og_hex(prev, HASH, hex));
        broken += !ok;
        total_links += seq;
        total_rows += rows;
        PQclear(links);
    }
    PQclear(heads);

    /* Rows that no link covers were added outside any archive batch. */
    strays = query(c,
                   "SELECT count(*), min(ledger_id), max(ledger_id) FROM audit.ledger l "
                   "WHERE NOT EXISTS (SELECT 1 FROM audit.chain k WHERE k.batch_id = l.batch_id "
                   "AND k.district_code = l.district_code)",
                   0, NULL);
    if (!strays)
        return -1;
    if (strtol(PQgetvalue(strays, 0, 0), NULL, 10) > 0) {
        printf("BROKEN: %s ledger rows (ids %s..%s) belong to no link of any chain\n",
               PQgetvalue(strays, 0, 0), PQgetvalue(strays, 0, 1), PQgetvalue(strays, 0, 2));
        broken++;
    }
    PQclear(strays);
    PQclear(PQexec(c, "COMMIT"));
    if (broken)
        printf("audit verify: FAILED: %d problem(s)\n", broken);
    else
        printf("audit verify: passed: %ld links, %ld ledger rows\n", total_links, total_rows);
    return broken ? 1 : 0;
}

static int heads(PGconn *c)
{
    PGresult *r = query(c,
                        "SELECT district_code, seq, hash, now() FROM audit.chain_heads "
                        "ORDER BY district_code",
                        0, NULL);
    if (!r)
        return -1;
    printf("# onegrid chain heads at %s: district, link, SHA-256\n",
           PQntuples(r) ? PQgetvalue(r, 0, 3) : "(no chain yet)");
    for (int i = 0; i < PQntuples(r); i++)
        printf("%s %s %s\n", PQgetvalue(r, i, 0), PQgetvalue(r, i, 1), PQgetvalue(r, i, 2));
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
        "usage: onegridctl audit verify --db CONNINFO\n"
        "       onegridctl audit heads --db CONNINFO\n"
        "  verify  recompute every district's hash chain from the ledger; exit 0 when intact,\n"
        "          1 naming the first broken link of each broken chain\n"
        "  heads   print each chain's head (district, link number, SHA-256) for anchoring\n"
        "CONNINFO may log in as the auditor role: only the audit views are read.\n";
    const char *conninfo = NULL;
    bool unused = false;
    PGconn *c;
    int rc, p;

    if (argc < 2 || (strcmp(argv[1], "verify") != 0 && strcmp(argv[1], "heads") != 0)) {
        fprintf(stderr, "%s", usage);
        return OG_EXIT_USAGE;
    }
    p = parse_db(argc - 1, argv + 1, usage, &conninfo, &unused, "unused");
    if (p)
        return p > 0 ? OG_EXIT_OK : OG_EXIT_USAGE;
    if (sodium_init() < 0 || !(c = connect_or_report(conninfo, "onegridctl audit")))
        return OG_EXIT_FAIL;
    rc = strcmp(argv[1], "verify") == 0 ? verify(c) : heads(c);
    PQfinish(c);
    return rc < 0 ? OG_EXIT_FAIL : rc;
}

int og_cmd_rebuild_cases(int argc, char **argv)
{
    static const char usage[] =
        "usage: onegridctl rebuild-cases --db CONNINFO [--apply]\n"
        "  compares the case projection (og.case) with the one rebuilt from the ledger and\n"
        "  prints the differences; exit 0 when they agree, 1 when not. --apply replaces\n"
        "  og.case with the rebuilt projection (as the owner role, with the daemons stopped).\n";
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
                       "BEGIN; LOCK og.case; ALTER TABLE og.case DISABLE TRIGGER feed; "
                       "DELETE FROM og.case; INSERT INTO og.case SELECT * FROM og.case_rebuilt; "
                       "ALTER TABLE og.case ENABLE TRIGGER feed; COMMIT",
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
out:
    PQfinish(c);
    return rc;
}
