#include "db.h"

#include <errno.h>
#include <stdio.h>
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
    const char *keys[] = {"dbname", "application_name", "connect_timeout", NULL};
    const char *vals[] = {conninfo, application_name, "5", NULL};
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
           strncmp(sqlstate, "54", 2) == 0 || strcmp(sqlstate, "OG002") == 0;
}

bool og_db_broken(PGconn *c)
{
    return !c || PQstatus(c) != CONNECTION_OK;
}
