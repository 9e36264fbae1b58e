#include "db.h"

#include <errno.h>
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

PGconn *og_db_connect(const char *conninfo, const char *application_name, char *err, size_t errlen)
{
    /* client_encoding: what onegrid sends and reads is UTF-8 whatever the database's
     * encoding (and onegridctl migrate hashes the SQL files' text as the server gets it). */
    const char *keys[] = {"dbname", "application_name", "connect_timeout", "client_encoding", NULL};
    const char *vals[] = {conninfo, application_name, "5", "UTF8", NULL};
    PGconn *c = PQconnectdbParams(keys, vals, 1 /* dbname is a full conninfo */);

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
    if (og_db_exec(c, "SET synchronous_commit = on; SET TIME ZONE 'UTC'", err, errlen)) {
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

int og_db_schema_probe(const char *conninfo, const char *application_name, char *err, size_t errlen)
{
    PGconn *c = og_db_connect(conninfo, application_name, err, errlen);
    if (!c)
        return -EIO;
    int rc = og_db_schema_check(c, err, errlen);
    PQfinish(c);
    return rc;
}
