#include "db.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *og_db_sqlstate(const PGresult *r)
{
    const char *s = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    return s ? s : "";
}

PGresult *og_db_query(PGconn *c, const char *sql, int n, const char *const *params, char *err,
                      size_t errlen)
{
    PGresult *r = PQexecParams(c, sql, n, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        og_db_error(c, r, err, errlen);
        PQclear(r);
        return NULL;
    }
    return r;
}

int og_db_error(PGconn *c, const PGresult *r, char *err, size_t errlen)
{
    const char *msg = r ? PQresultErrorMessage(r) : "";
    size_t n;
    if (!msg || !*msg)
        msg = PQerrorMessage(c);
    snprintf(err, errlen, "%s", msg && *msg ? msg : "unknown error");
    n = strlen(err);
    while (n > 0 && (err[n - 1] == '\n' || err[n - 1] == ' '))
        err[--n] = '\0';
    if (r && *og_db_sqlstate(r))
        snprintf(err + n, errlen - n, " (SQLSTATE %s)", og_db_sqlstate(r));
    return -EIO;
}

int og_db_exec(PGconn *c, const char *sql, char *err, size_t errlen)
{
    PGresult *r = PQexec(c, sql);
    int rc = 0;
    ExecStatusType st = PQresultStatus(r);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
        rc = og_db_error(c, r, err, errlen);
    PQclear(r);
    return rc;
}

size_t og_db_conn_params(const char *conninfo, const char *application_name,
                         const char *keys[OG_DB_CONN_PARAMS], const char *vals[OG_DB_CONN_PARAMS])
{
    /* Before dbname, so that the conninfo's own values win (PQconnectdbParams: a conninfo
     * in dbname overrides the keywords before it, and those after it override the
     * conninfo). A network that drops everything (a cut link, a firewall that lost its
     * state, a host gone) sends no error back: without these a statement waits for the
     * kernel to give up retransmitting (tcp_retries2: about 15 minutes), blocking the
     * daemon's loop until systemd's watchdog kills it. With them a lost connection is an
     * error within 30 s, which takes the outage path (hold, retry, reconnect):
     * - tcp_user_timeout: data unacknowledged for 30 s ends the connection. A busy server
     *   acknowledges what its backend has not read yet; Linux also ends a connection
     *   whose receive window has stayed shut that long (archive's pipelined batch behind
     *   a backend that has not read for 30 s): a fault like any other, retried.
     * - keepalives: an idle connection is probed after 15 s, then every 5 s; with
     *   tcp_user_timeout set, Linux ends it once 30 s pass with probes unanswered.
     * - connect_timeout: a connection attempt (per address) ends after 5 s.
     * Unix-domain sockets ignore all but connect_timeout. WatchdogSec (60 s) is longer
     * than the sum, so the watchdog is left for a process that is truly stuck. */
    static const char *const defaults[][2] = {
        {"connect_timeout", "5"},     {"keepalives", "1"},       {"keepalives_idle", "15"},
        {"keepalives_interval", "5"}, {"keepalives_count", "3"}, {"tcp_user_timeout", "30000"},
    };
    size_t n = 0;
    _Static_assert(sizeof(defaults) / sizeof(defaults[0]) + 4 == OG_DB_CONN_PARAMS,
                   "OG_DB_CONN_PARAMS: the defaults, dbname, application_name, "
                   "client_encoding and the terminating NULL");

    for (size_t i = 0; i < sizeof(defaults) / sizeof(defaults[0]); i++, n++) {
        keys[n] = defaults[i][0];
        vals[n] = defaults[i][1];
    }
    keys[n] = "dbname";
    vals[n++] = conninfo;
    keys[n] = "application_name";
    vals[n++] = application_name;
    /* What onegrid sends and reads is UTF-8 whatever the database's encoding (and
     * onegridctl migrate hashes the SQL files' text as the server gets it). */
    keys[n] = "client_encoding";
    vals[n++] = "UTF8";
    keys[n] = NULL;
    vals[n] = NULL;
    return n;
}

/* The value libpq resolved for keyword key on c, or NULL; *opts is freed by the caller. */
static const char *resolved(PQconninfoOption *opts, const char *key)
{
    for (PQconninfoOption *o = opts; o && o->keyword; o++)
        if (strcmp(o->keyword, key) == 0)
            return o->val && *o->val ? o->val : NULL;
    return NULL;
}

/* The server's end of a TCP connection, given the same limits as ours (the defaults of
 * og_db_conn_params or the conninfo's own), unless the server, the database, the role or
 * PGOPTIONS sets them (pg_settings.source; the values read back are the kernel's while
 * unset). When the network drops everything, our end gives up, but the server's
 * backend would otherwise stay for as long as its kernel keeps the connection (up to
 * about 2 hours idle, 15 minutes with data unacknowledged): in the middle of archive's
 * pipelined batch, inside a transaction, holding its locks and its uncommitted event keys,
 * which the retry of the same batch would then wait for. Over a Unix-domain socket the
 * server ignores these. */
static int limit_server_end(PGconn *c, char *err, size_t errlen)
{
    static const char sql[] =
        "SELECT set_config(v.name, v.value, false) FROM (VALUES ('tcp_keepalives_idle', $1), "
        "('tcp_keepalives_interval', $2), ('tcp_keepalives_count', $3), "
        "('tcp_user_timeout', $4)) v(name, value) JOIN pg_catalog.pg_settings s USING (name) "
        "WHERE v.value IS NOT NULL AND s.source = 'default'";
    PQconninfoOption *opts = PQconninfo(c);
    const char *keepalives, *v[4];
    PGresult *r;

    if (!opts) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    keepalives = resolved(opts, "keepalives");
    bool probes = !keepalives || strcmp(keepalives, "0") != 0;
    v[0] = probes ? resolved(opts, "keepalives_idle") : NULL;
    v[1] = probes ? resolved(opts, "keepalives_interval") : NULL;
    v[2] = probes ? resolved(opts, "keepalives_count") : NULL;
    v[3] = resolved(opts, "tcp_user_timeout");
    r = og_db_query(c, sql, 4, v, err, errlen);
    PQconninfoFree(opts);
    if (!r)
        return -EIO;
    PQclear(r);
    return 0;
}

PGconn *og_db_connect(const char *conninfo, const char *application_name, char *err, size_t errlen)
{
    const char *keys[OG_DB_CONN_PARAMS], *vals[OG_DB_CONN_PARAMS];
    PGconn *c;

    og_db_conn_params(conninfo, application_name, keys, vals);
    c = PQconnectdbParams(keys, vals, 1 /* dbname is a full conninfo */);

    if (!c) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    if (PQstatus(c) != CONNECTION_OK) {
        og_db_error(c, NULL, err, errlen);
        PQfinish(c);
        return NULL;
    }
    /* Acks go out only after COMMIT returns, so the commit must be durable then. */
    if (og_db_exec(c, "SET synchronous_commit = on; SET TIME ZONE 'UTC'", err, errlen) ||
        limit_server_end(c, err, errlen)) {
        PQfinish(c);
        return NULL;
    }
    return c;
}

bool og_db_record_error(const char *sqlstate)
{
    if (!sqlstate || strlen(sqlstate) != 5)
        return false;
    return strncmp(sqlstate, "22", 2) == 0 || strncmp(sqlstate, "23", 2) == 0 ||
           strncmp(sqlstate, "54", 2) == 0;
}

int og_db_limit_lock_waits(PGconn *c, long ms, char *err, size_t errlen)
{
    char sql[128];

    if (ms <= 0)
        return 0;
    snprintf(sql, sizeof(sql),
             "SELECT set_config('lock_timeout', '%ld', false) "
             "WHERE current_setting('lock_timeout') = '0'",
             ms);
    return og_db_exec(c, sql, err, errlen);
}

/* PostgreSQL's server processes allocate through glibc's malloc. A batch of archive's
 * makes its backend allocate and free 12 to 16 MiB (the arrays sent, the statements'
 * tuplestores, sorts and hash tables, the parsed JSON). glibc gives the top of its heap
 * back to the kernel at a free whenever more than its trim threshold lies unused there
 * (brk), and the next batch takes it again, page by page, each page zeroed by the kernel
 * on its first touch: in tests/bench/throughput, 40,000 to 55,000 page faults a second
 * and a tenth of the backend's CPU (throughput 0.42 to 0.45 of COPY's against 0.50 to
 * 0.54 once it stopped), 50 to 100 thousand events long. It stopped when, by chance, a
 * large enough block was freed: glibc's thresholds are dynamic. An allocation above the
 * mmap threshold (128 KiB at first) gets a mapping of its own, and freeing it raises the
 * mmap threshold to its size and the trim threshold to twice that (for sizes up to 32
 * MiB on 64-bit systems; mallopt(3), M_MMAP_THRESHOLD). One such block freed at connect
 * settles them for the session: blocks up to 30 MiB come from the heap, and the heap is
 * trimmed only past 60 MiB unused. The planner folds the constant expression: it makes
 * the 30 MiB text (repeat()'s palloc, a malloc of its own) and frees it when it is done
 * with it, after copying the result (a second 30 MiB mapping, freed when the next
 * statement comes, which changes nothing more). The inner repeat() makes a 1 KiB piece,
 * copied 30,720 times; octet_length() does not count characters: about 35 ms, against
 * 120 to 170 ms for 30 million one-byte copies counted as characters. The cost: that at
 * connect, 60 MiB for a moment, and a backend that keeps the heap its largest batch
 * needed. A server whose malloc thresholds are fixed (GLIBC_TUNABLES,
 * MALLOC_TRIM_THRESHOLD_), a 32-bit one, or one with another allocator only allocates
 * and frees the memory. (The same problem, raised for PostgreSQL itself: pgsql-hackers,
 * "Add GUC to tune glibc's malloc implementation", 2023.) */
int og_db_settle_backend_heap(PGconn *c, char *err, size_t errlen)
{
    return og_db_exec(c, "SELECT octet_length(repeat(repeat('x', 1024), 30720))", err, errlen);
}

bool og_db_broken(PGconn *c)
{
    return !c || PQstatus(c) != CONNECTION_OK;
}

#ifndef OG_SCHEMA_VERSION
#error "OG_SCHEMA_VERSION and OG_SCHEMA_DIGEST come from daemons/common/CMakeLists.txt"
#endif

int og_db_schema_version(void)
{
    return OG_SCHEMA_VERSION;
}

int og_db_schema_check(PGconn *c, char *err, size_t errlen)
{
    /* The digest as CMake computes it: SHA-256 of "NAME SHA256\n" per current definition,
     * in byte order of NAME. */
    static const char sql[] =
        "SELECT (SELECT coalesce(max(version), 0) FROM public.onegrid_migration), "
        "encode(sha256(convert_to(coalesce(string_agg(name || ' ' || sha256 || chr(10), '' "
        "ORDER BY name COLLATE \"C\"), ''), 'UTF8')), 'hex') FROM public.onegrid_repeatable";
    char why[400];
    PGresult *r = og_db_query(c, sql, 0, NULL, why, sizeof(why));
    if (!r) {
        if (strstr(why, "42P01")) {
            snprintf(err, errlen, "the database has no onegrid schema: run onegridctl migrate");
            return -EPROTO;
        }
        if (strstr(why, "42501")) {
            snprintf(err, errlen,
                     "this role may not read the schema version: run onegridctl "
                     "migrate as the database's owner (%s)",
                     why);
            return -EPROTO;
        }
        snprintf(err, errlen, "could not read the schema version: %s", why);
        return -EIO;
    }
    int version = atoi(PQgetvalue(r, 0, 0));
    bool same_defs = strcmp(PQgetvalue(r, 0, 1), OG_SCHEMA_DIGEST) == 0;
    PQclear(r);
    if (version < OG_SCHEMA_VERSION) {
        snprintf(err, errlen,
                 "the database schema is at version %03d and this build needs %03d: run "
                 "onegridctl migrate",
                 version, OG_SCHEMA_VERSION);
        return -EPROTO;
    }
    if (version > OG_SCHEMA_VERSION) {
        snprintf(err, errlen,
                 "the database schema is at version %03d, newer than this build's %03d: "
                 "upgrade onegrid to the release that migrated it",
                 version, OG_SCHEMA_VERSION);
        return -EPROTO;
    }
    if (!same_defs) {
        snprintf(err, errlen,
                 "the database's functions and views (deploy/sql/current) differ from this "
                 "build's at schema version %03d: run this release's onegridctl migrate",
                 version);
        return -EPROTO;
    }
    return 0;
}

int og_db_generation(PGconn *c, char *err, size_t errlen)
{
    PGresult *r = og_db_query(c, "SELECT og.generation_check()", 0, NULL, err, errlen);
    if (!r)
        return -EIO;
    long g = strtol(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    if (g <= 0 || g > INT_MAX) {
        snprintf(err, errlen, "og.generation_check() returned no generation");
        return -EIO;
    }
    return (int)g;
}

int og_db_schema_probe(const char *conninfo, const char *application_name, char *err, size_t errlen)
{
    PGconn *c = og_db_connect(conninfo, application_name, err, errlen);
    if (!c)
        return -EIO;
    int rc = og_db_schema_check(c, err, errlen);
    PQfinish(c);
    return rc;
}
