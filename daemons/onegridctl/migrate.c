/* `onegridctl migrate`: applies deploy/sql/NNN_name.sql files in order of NNN. Each file
 * runs in its own transaction together with the row that records it, so a file is
 * either wholly applied and recorded or not at all. A recorded file whose text changed
 * since is an error: migrations are history, fixes are new files. */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "onegridctl.h"

#define MAX_FILES 1000

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    long n;
    if (!f)
        return NULL;
    if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0 &&
        (buf = malloc((size_t)n + 1))) {
        if (fread(buf, 1, (size_t)n, f) != (size_t)n) {
            free(buf);
            buf = NULL;
        } else {
            buf[n] = '\0';
        }
    }
    fclose(f);
    return buf;
}

static int exec_or_report(PGconn *c, const char *sql, const char *what)
{
    char err[1024];
    if (og_db_exec(c, sql, err, sizeof(err)) == 0)
        return 0;
    fprintf(stderr, "onegridctl migrate: %s: %s\n", what, err);
    return -1;
}

/* 1 applied now, 0 already applied, -1 error. */
static int apply(PGconn *c, const char *dir, const char *name)
{
    char path[4096], version[16];
    char *sql;
    const char *params[3];
    PGresult *r;
    int rc = -1;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    snprintf(version, sizeof(version), "%.*s", (int)strspn(name, "0123456789"), name);
    sql = read_file(path);
    if (!sql) {
        fprintf(stderr, "onegridctl migrate: could not read \"%s\": %s\n", path, strerror(errno));
        return -1;
    }
    params[0] = version;
    params[1] = sql;
    r = PQexecParams(c,
                     "SELECT name, sha256 = encode(sha256(convert_to($2, 'UTF8')), 'hex') "
                     "FROM public.onegrid_migration WHERE version = $1::integer",
                     2, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        char err[1024];
        og_db_error(c, r, err, sizeof(err));
        fprintf(stderr, "onegridctl migrate: %s\n", err);
        goto out;
    }
    if (PQntuples(r) == 1) {
        if (PQgetvalue(r, 0, 1)[0] != 't') {
            fprintf(stderr,
                    "onegridctl migrate: \"%s\" was applied as version %s but its text has "
                    "changed since; write a new migration instead\n",
                    name, version);
            goto out;
        }
        rc = 0;
        goto out;
    }
    PQclear(r);
    r = NULL;
    if (exec_or_report(c, "BEGIN", "begin") || exec_or_report(c, sql, name) ||
        exec_or_report(c, "RESET ROLE", "reset role")) {
        PQexec(c, "ROLLBACK");
        goto out;
    }
    params[2] = name;
    r = PQexecParams(c,
                     "INSERT INTO public.onegrid_migration (version, name, sha256) "
                     "VALUES ($1::integer, $3, encode(sha256(convert_to($2, 'UTF8')), 'hex'))",
                     3, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_COMMAND_OK || exec_or_report(c, "COMMIT", "commit")) {
        if (PQresultStatus(r) != PGRES_COMMAND_OK) {
            char err[1024];
            og_db_error(c, r, err, sizeof(err));
            fprintf(stderr, "onegridctl migrate: recording %s: %s\n", name, err);
        }
        PQclear(PQexec(c, "ROLLBACK"));
        goto out;
    }
    printf("applied %s\n", name);
    rc = 1;
out:
    PQclear(r);
    free(sql);
    return rc;
}

int og_cmd_migrate(int argc, char **argv)
{
    static const struct option opts[] = {{"db", required_argument, NULL, 'd'},
                                         {"sql-dir", required_argument, NULL, 's'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    const char *conninfo = NULL, *dir = getenv("ONEGRID_SQL_DIR");
    char *files[MAX_FILES], err[1024];
    size_t n = 0;
    int c, applied = 0, rc = OG_EXIT_FAIL;
    DIR *d;
    struct dirent *de;
    PGconn *conn;

    if (!dir)
        dir = ONEGRID_SQL_DIR;
    optind = 1;
    while ((c = getopt_long(argc, argv, "d:s:h", opts, NULL)) != -1) {
        switch (c) {
        case 'd':
            conninfo = optarg;
            break;
        case 's':
            dir = optarg;
            break;
        case 'h':
            printf("usage: onegridctl migrate --db CONNINFO [--sql-dir DIR]\n"
                   "  applies DIR/NNN_*.sql in order, each once (default DIR: %s)\n",
                   ONEGRID_SQL_DIR);
            return OG_EXIT_OK;
        default:
            return OG_EXIT_USAGE;
        }
    }
    if (!conninfo || optind != argc) {
        fprintf(stderr, "usage: onegridctl migrate --db CONNINFO [--sql-dir DIR]\n");
        return OG_EXIT_USAGE;
    }
    d = opendir(dir);
    if (!d) {
        fprintf(stderr, "onegridctl migrate: could not open \"%s\": %s\n", dir, strerror(errno));
        return OG_EXIT_USAGE;
    }
    while ((de = readdir(d)) && n < MAX_FILES) {
        size_t len = strlen(de->d_name);
        if (len > 4 && strcmp(de->d_name + len - 4, ".sql") == 0 &&
            strspn(de->d_name, "0123456789") == 3 && de->d_name[3] == '_')
            files[n++] = strdup(de->d_name);
    }
    closedir(d);
    qsort(files, n, sizeof(files[0]), by_name);

    conn = og_db_connect(conninfo, "onegridctl migrate", err, sizeof(err));
    if (!conn) {
        fprintf(stderr, "onegridctl migrate: %s\n", err);
        goto out;
    }
    /* One migrator at a time, for the whole run; only warnings from the server. */
    if (exec_or_report(conn, "SET client_min_messages = warning", "settings") ||
        exec_or_report(conn, "SELECT pg_advisory_lock(hashtext('onegrid migrate'))", "lock") ||
        exec_or_report(conn,
                       "CREATE TABLE IF NOT EXISTS public.onegrid_migration ("
                       " version integer PRIMARY KEY, name text NOT NULL,"
                       " sha256 text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())",
                       "migration table"))
        goto out;
    for (size_t i = 0; i < n; i++) {
        int r = apply(conn, dir, files[i]);
        if (r < 0)
            goto out;
        applied += r;
    }
    printf("schema up to date: %zu migrations, %d applied now\n", n, applied);
    rc = OG_EXIT_OK;
out:
    if (conn)
        PQfinish(conn);
    for (size_t i = 0; i < n; i++)
        free(files[i]);
    return rc;
}
