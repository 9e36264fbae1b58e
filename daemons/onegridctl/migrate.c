/* `onegridctl migrate`: brings a database's schema to what a SQL directory describes
 * (deploy/sql; its README.md is the reference), as Flyway does with its versioned and
 * repeatable migrations.
 *
 * Versioned migrations, DIR/NNN_name.sql, are applied once each, in order of NNN, each in
 * its own transaction together with its row in public.onegrid_migration; a recorded file
 * whose text changed since is an error (migrations are history, fixes are new files).
 * NNN_baseline.sql is a baseline: what the migrations up to NNN made, in one file. A new
 * database starts with the highest baseline and the migrations after it; a database that
 * recorded version NNN or a later one has what the baseline holds already.
 *
 * Current definitions, DIR/current/NAME.sql (one function or view, named schema.object),
 * are applied in the order DIR/current/ORDER lists them, as onegrid_owner, whenever the
 * text differs from the one recorded in public.onegrid_repeatable, the object is missing,
 * or a versioned migration was applied in this run (the tables under them may have
 * changed); all of those in one transaction, after the versioned migrations. A line
 * `--@current NAME` in a versioned migration applies current/NAME.sql at that point, in
 * the migration's transaction (a trigger function before the triggers that call it).
 *
 * --status prints the state of every migration and definition, --dry-run what a run
 * would apply; neither changes anything. */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <libpq-fe.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "db.h"
#include "onegridctl.h"
#include "util.h"

#define OWNER     "onegrid_owner"
#define DIRECTIVE "--@current"

struct versioned {
    int version;
    char *name;
    bool baseline;
    char *sql;
    char *sha;         /* of sql */
    const char *state; /* for --status */
    bool pending;
};

struct current {
    char *name; /* schema.object; the file is current/NAME.sql */
    char *sql;
    char *sha;
    char *recorded_sha; /* NULL: never applied */
    char *applied_at;
    bool exists;         /* the object is in the database (before this run) */
    bool applied;        /* in this run */
    unsigned applied_in; /* the run's transaction that applied it (migrate.tx) */
    const char *reason;  /* why it was applied (why()), printed once that commits */
};

struct recorded {
    int version;
    char *name;
    char *sha;
    char *applied_at;
};

struct migrate {
    const char *dir;
    PGconn *conn;
    struct versioned *v;
    size_t nv;
    struct current *c;
    size_t nc;
    struct recorded *r; /* rows of public.onegrid_migration, by version */
    size_t nr;
    char **gone; /* recorded current definitions without a file */
    size_t ngone;
    unsigned tx;                       /* transactions begun so far */
    long lock_wait_ms;                 /* lock_timeout of the next transaction (0: none) */
    long first_wait_ms, later_wait_ms; /* with_lock_retries' (0: not known yet) */
};

/* A DDL statement's lock request queues every later request for that table behind it:
 * waiting for as long as a reader's transaction stays open (an auditor's, idle) held up
 * archive's and dispatch's statements on og.case for as long (review), and archive
 * answered nothing meanwhile. So a statement of a migration waits for a lock at most
 * LOCK_WAIT_MS the first time, LOCK_WAIT_MAX_MS each time after (readers whose
 * transactions are shorter than that let it through, as new ones queue behind it); then
 * the transaction is rolled back and tried again after LOCK_PAUSE_MS. Each wait is at
 * least twice the server's deadlock_timeout: only the deadlock check, after that long,
 * cancels an autovacuum that holds the lock (review: with less, a long vacuum of og.ledger
 * was waited for to its end). */
#define LOCK_WAIT_MS     2000
#define LOCK_WAIT_MAX_MS 5000
#define LOCK_PAUSE_MS    2000
#define LOCK_QUIET_MS    30000 /* at most this long without a word while trying */

/* In with_lock_retries: a lock wait cut short (SQLSTATE 55P03) is its to report. */
static bool retrying;
/* The last statement's error was such a lock wait. */
static bool lock_waited;

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

static char *read_in(const char *dir, const char *sub, const char *name)
{
    char path[4096];
    char *s;
    snprintf(path, sizeof(path), "%s/%s%s", dir, sub, name);
    s = read_file(path);
    if (!s)
        fprintf(stderr, "onegridctl migrate: could not read \"%s\": %s\n", path,
                strerror(errno ? errno : EIO));
    return s;
}

static void report(PGconn *c, const PGresult *r, const char *what)
{
    char err[1024];
    const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    if (retrying && state && strcmp(state, "55P03") == 0) { /* told by with_lock_retries */
        lock_waited = true;
        return;
    }
    og_db_error(c, r, err, sizeof(err));
    fprintf(stderr, "onegridctl migrate: %s: %s\n", what, err);
}

/* Runs SQL text (any number of statements; comments alone are fine). 0 or -1, reported. */
static int run(PGconn *c, const char *sql, const char *what)
{
    PGresult *r = PQexec(c, sql);
    ExecStatusType st = PQresultStatus(r);
    int rc = 0;
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK && st != PGRES_EMPTY_QUERY) {
        report(c, r, what);
        rc = -1;
    }
    PQclear(r);
    return rc;
}

static char *value(PGconn *c, const char *sql, int n, const char *const *params, const char *what);

/* Runs one statement with text parameters. 0 or -1 (reported, as run()). */
static int run_params(PGconn *c, const char *sql, int n, const char *const *params,
                      const char *what)
{
    PGresult *r = PQexecParams(c, sql, n, NULL, params, NULL, NULL, 0);
    ExecStatusType st = PQresultStatus(r);
    int rc = 0;
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        report(c, r, what);
        rc = -1;
    }
    PQclear(r);
    return rc;
}

/* Migration 027 took from PUBLIC the right to make temporary tables in onegrid's database.
 * Database privileges are not in a pg_dump, only in one restored with --create: a copy
 * restored otherwise has the right back (an operator's trial). Each run takes it again,
 * and says so; a role that may not, warns. */
static const char SQL_NO_PUBLIC_TEMPORARY[] =
    "DO $$ BEGIN "
    "IF has_database_privilege('public', current_database(), 'TEMPORARY') THEN "
    "EXECUTE format('REVOKE TEMPORARY ON DATABASE %I FROM PUBLIC', current_database()); "
    "RAISE WARNING 'PUBLIC could make temporary tables in database % again (a copy restored "
    "without pg_restore --create?): revoked, as migration 027 did', current_database(); "
    "END IF; "
    "EXCEPTION WHEN insufficient_privilege THEN "
    "RAISE WARNING 'PUBLIC can make temporary tables in database % (migration 027 took that "
    "right; a copy restored without pg_restore --create has it back), and this role may not "
    "take it: run REVOKE TEMPORARY ON DATABASE % FROM PUBLIC as its owner', "
    "current_database(), current_database(); "
    "END $$";

/* Migration 018 granted onegrid's roles their rights in the database: CONNECT to each,
 * CREATE and TEMPORARY to onegrid_owner (`registry import` stages its files in temporary
 * tables). A copy restored without pg_restore --create has none of them, and once the
 * right PUBLIC had is taken (above), a login of onegrid_owner's that is not a superuser
 * could no longer import the registry; `audit definitions` names the difference
 * ("CHANGED database"). Each run grants what is missing, and says so. */
static const char SQL_DATABASE_GRANTS[] =
    "DO $$ DECLARE g record; held boolean; granted text; refused text; "
    /* Whether role $1 holds right $2 on this database by a grant of its own. */
    "has_grant constant text := 'SELECT EXISTS (SELECT 1 FROM pg_database d, "
    "aclexplode(coalesce(d.datacl, acldefault(''d'', d.datdba))) a "
    "WHERE d.datname = current_database() AND a.grantee = $1::regrole "
    "AND a.privilege_type = $2)'; "
    "BEGIN "
    "FOR g IN SELECT r.role, r.priv FROM (VALUES ('onegrid_owner', 'CONNECT'), "
    "('onegrid_owner', 'CREATE'), ('onegrid_owner', 'TEMPORARY'), ('onegrid_writer', 'CONNECT'), "
    "('onegrid_reader', 'CONNECT'), ('onegrid_auditor', 'CONNECT'), ('onegrid_feed', 'CONNECT')) "
    "AS r(role, priv) LOOP "
    "EXECUTE has_grant INTO held USING g.role, g.priv; "
    "CONTINUE WHEN held; "
    /* A role that may not grant it gets an error, or only a warning ("no privileges were
     * granted") when it holds some right on the database: the grant is looked for again. */
    "BEGIN "
    "EXECUTE format('GRANT %s ON DATABASE %I TO %I', g.priv, current_database(), g.role); "
    "EXCEPTION WHEN insufficient_privilege THEN NULL; "
    "END; "
    "EXECUTE has_grant INTO held USING g.role, g.priv; "
    "IF held THEN granted := concat_ws(', ', granted, g.priv || ' to ' || g.role); "
    "ELSE refused := concat_ws(', ', refused, g.priv || ' to ' || g.role); "
    "END IF; "
    "END LOOP; "
    "IF granted IS NOT NULL THEN "
    "RAISE WARNING 'database % had lost rights migration 018 granted (a copy restored "
    "without pg_restore --create?): granted % again', current_database(), granted; "
    "END IF; "
    "IF refused IS NOT NULL THEN "
    "RAISE WARNING 'database % lacks rights migration 018 granted (%), and this role may not "
    "grant them: run `onegridctl migrate` again as the database''s owner', "
    "current_database(), refused; "
    "END IF; "
    "END $$";

/* One migrator at a time, for the whole run. Before migration 027 any role could take an
 * advisory lock, the auditors' login too (review: one that held this one kept migrate
 * waiting, unseen); now onegrid_owner's members and the database's owner may. When
 * another session holds it, say which, then wait. 0, or -1 (reported). */
static int take_lock(PGconn *c)
{
    char *got =
        value(c, "SELECT pg_try_advisory_lock(hashtext('onegrid migrate'))", 0, NULL, "lock");
    bool taken = got && strcmp(got, "t") == 0;
    free(got);
    if (!got)
        return -1;
    if (taken)
        return 0;
    char *who = value(
        c,
        "SELECT coalesce(string_agg(format('pid %s (user %s, application \"%s\", connected %s)', "
        "a.pid, a.usename, a.application_name, date_trunc('second', a.backend_start)), '; '), "
        "'a session that has just ended') "
        "FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
        "WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1 "
        "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
        "AND l.classid::bigint = (hashtext('onegrid migrate')::bigint >> 32) & 4294967295 "
        "AND l.objid::bigint = hashtext('onegrid migrate')::bigint & 4294967295",
        0, NULL, "lock");
    fprintf(stderr,
            "onegridctl migrate: another session holds the migration lock: %s; waiting for it "
            "(if it is not a migration, end it: SELECT pg_terminate_backend(PID))\n",
            who ? who : "(unknown)");
    free(who);
    return run(c, "SELECT pg_advisory_lock(hashtext('onegrid migrate'))", "lock");
}

/* The one value of a query with text parameters, strdup'd; NULL (reported) on error. */
static char *value(PGconn *c, const char *sql, int n, const char *const *params, const char *what)
{
    char err[1024];
    PGresult *r = og_db_query(c, sql, n, params, err, sizeof(err));
    char *v = NULL;
    if (!r) {
        fprintf(stderr, "onegridctl migrate: %s: %s\n", what, err);
        return NULL;
    }
    if (PQntuples(r) == 1 && PQnfields(r) == 1)
        v = strdup(PQgetisnull(r, 0, 0) ? "" : PQgetvalue(r, 0, 0));
    else
        fprintf(stderr, "onegridctl migrate: %s: not one value\n", what);
    PQclear(r);
    return v;
}

static char *sha256_of(PGconn *c, const char *text, const char *name)
{
    const char *p[1] = {text};
    return value(c, "SELECT encode(sha256(convert_to($1, 'UTF8')), 'hex')", 1, p, name);
}

/* Whether object NAME (schema.object: a relation or a function) exists; -1 on error. */
static int object_exists(PGconn *c, const char *name)
{
    const char *p[1] = {name};
    char *v = value(c,
                    "SELECT to_regclass($1) IS NOT NULL OR EXISTS ("
                    " SELECT 1 FROM pg_catalog.pg_proc p"
                    "  WHERE p.pronamespace = to_regnamespace(split_part($1, '.', 1))"
                    "    AND p.proname = split_part($1, '.', 2))",
                    1, p, name);
    int rc = v ? v[0] == 't' : -1;
    free(v);
    return rc;
}

static bool valid_name(const char *s)
{
    const char *dot = strchr(s, '.');
    if (!dot || dot == s || !dot[1] || strchr(dot + 1, '.'))
        return false;
    for (const char *p = s; *p; p++)
        if (p != dot && !(islower((unsigned char)*p) || isdigit((unsigned char)*p) || *p == '_'))
            return false;
    return !isdigit((unsigned char)s[0]) && !isdigit((unsigned char)dot[1]);
}

static struct current *find_current(struct migrate *m, const char *name)
{
    for (size_t i = 0; i < m->nc; i++)
        if (strcmp(m->c[i].name, name) == 0)
            return &m->c[i];
    return NULL;
}

static int by_version(const void *a, const void *b)
{
    const struct versioned *x = a, *y = b;
    return x->version != y->version ? (x->version > y->version) - (x->version < y->version)
                                    : strcmp(x->name, y->name);
}

/* The first `--@current NAME` line of sql: its start, with NAME in name; NULL if none. */
static char *next_directive(const char *sql, char *name, size_t namelen)
{
    size_t skip = strlen(DIRECTIVE);
    for (const char *l = sql; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
        const char *n = l + skip;
        if (strncmp(l, DIRECTIVE, skip) != 0 || (*n != ' ' && *n != '\t'))
            continue;
        n += strspn(n, " \t");
        snprintf(name, namelen, "%.*s", (int)strcspn(n, " \t\r\n"), n);
        return (char *)l;
    }
    return NULL;
}

/* The current definitions a versioned migration applies, as "og.a, og.b" ("" if none). */
static void directives(const char *sql, char *out, size_t outlen)
{
    char name[256];
    size_t n = 0;
    out[0] = '\0';
    for (const char *l = sql; (l = next_directive(l, name, sizeof(name))); l++)
        n += (size_t)snprintf(out + n, n < outlen ? outlen - n : 0, "%s%s", n ? ", " : "", name);
}

/* Reads DIR: the versioned migrations, current/ORDER and its files. 0, or -1 reported. */
static int read_dir(struct migrate *m)
{
    char path[4096];
    DIR *d = opendir(m->dir);
    struct dirent *de;
    FILE *order;
    char line[512];
    int rc = 0;

    if (!d) {
        fprintf(stderr, "onegridctl migrate: could not open \"%s\": %s\n", m->dir, strerror(errno));
        return -1;
    }
    while ((de = readdir(d))) {
        size_t len = strlen(de->d_name);
        struct versioned *v;
        if (len <= 8 || strcmp(de->d_name + len - 4, ".sql") != 0 ||
            strspn(de->d_name, "0123456789") != 3 || de->d_name[3] != '_')
            continue;
        v = realloc(m->v, (m->nv + 1) * sizeof(*m->v));
        if (!v) {
            rc = -1;
            break;
        }
        m->v = v;
        v = &m->v[m->nv++];
        memset(v, 0, sizeof(*v));
        v->version = atoi(de->d_name);
        v->name = strdup(de->d_name);
        v->baseline = strcmp(de->d_name + 3, "_baseline.sql") == 0;
        if (!v->name || !(v->sql = read_in(m->dir, "", v->name)))
            rc = -1;
    }
    closedir(d);
    if (rc)
        return -1;
    qsort(m->v, m->nv, sizeof(*m->v), by_version);
    for (size_t i = 1; i < m->nv; i++)
        if (m->v[i].version == m->v[i - 1].version) {
            fprintf(stderr,
                    "onegridctl migrate: \"%s\" and \"%s\" in \"%s\" are both version %03d (a "
                    "file left over from an older release?)\n",
                    m->v[i - 1].name, m->v[i].name, m->dir, m->v[i].version);
            return -1;
        }

    snprintf(path, sizeof(path), "%s/current/ORDER", m->dir);
    order = fopen(path, "r");
    if (!order) {
        if (errno == ENOENT)
            return 0; /* no current definitions */
        fprintf(stderr, "onegridctl migrate: could not open \"%s\": %s\n", path, strerror(errno));
        return -1;
    }
    while (fgets(line, sizeof(line), order)) {
        char *s = line, *e;
        struct current *c;
        s[strcspn(s, "#")] = '\0';
        while (isspace((unsigned char)*s))
            s++;
        for (e = s + strlen(s); e > s && isspace((unsigned char)e[-1]);)
            *--e = '\0';
        if (!*s)
            continue;
        if (!valid_name(s) || find_current(m, s)) {
            fprintf(stderr, "onegridctl migrate: \"%s\": \"%s\" is %s\n", path, s,
                    valid_name(s) ? "listed twice" : "not a name like og.store_event");
            rc = -1;
            break;
        }
        c = realloc(m->c, (m->nc + 1) * sizeof(*m->c));
        if (!c) {
            rc = -1;
            break;
        }
        m->c = c;
        c = &m->c[m->nc++];
        memset(c, 0, sizeof(*c));
        snprintf(path, sizeof(path), "%s.sql", s);
        if (!(c->name = strdup(s)) || !(c->sql = read_in(m->dir, "current/", path)))
            rc = -1;
        snprintf(path, sizeof(path), "%s/current/ORDER", m->dir);
    }
    fclose(order);
    if (rc)
        return -1;
    /* Every file is listed: one forgotten would never be applied. */
    snprintf(path, sizeof(path), "%s/current", m->dir);
    if (!(d = opendir(path))) {
        fprintf(stderr, "onegridctl migrate: could not open \"%s\": %s\n", path, strerror(errno));
        return -1;
    }
    while ((de = readdir(d))) {
        size_t len = strlen(de->d_name);
        if (len > 4 && strcmp(de->d_name + len - 4, ".sql") == 0) {
            char name[256];
            snprintf(name, sizeof(name), "%.*s", (int)(len - 4), de->d_name);
            if (!find_current(m, name)) {
                fprintf(stderr, "onegridctl migrate: \"%s/%s\" is not listed in \"%s/ORDER\"\n",
                        path, de->d_name, path);
                rc = -1;
            }
        }
    }
    closedir(d);
    for (size_t i = 0; i < m->nv; i++) {
        char name[256];
        for (const char *l = m->v[i].sql; (l = next_directive(l, name, sizeof(name))); l++)
            if (!find_current(m, name)) {
                fprintf(stderr,
                        "onegridctl migrate: \"%s\" applies current definition \"%s\", which "
                        "\"%s/current/ORDER\" does not list\n",
                        m->v[i].name, name, m->dir);
                rc = -1;
            }
    }
    return rc;
}

static int table_exists(PGconn *c, const char *name)
{
    const char *p[1] = {name};
    char *v = value(c, "SELECT to_regclass($1) IS NOT NULL", 1, p, name);
    int rc = v ? v[0] == 't' : -1;
    free(v);
    return rc;
}

/* Reads what the database recorded. The tables may not exist yet (--status, --dry-run). */
static int read_recorded(struct migrate *m)
{
    char err[1024];
    PGresult *r;
    int e;

    if ((e = table_exists(m->conn, "public.onegrid_migration")) < 0)
        return -1;
    if (e) {
        r = og_db_query(m->conn,
                        "SELECT version, name, sha256, applied_at::timestamptz(0) "
                        "FROM public.onegrid_migration ORDER BY version",
                        0, NULL, err, sizeof(err));
        if (!r) {
            fprintf(stderr, "onegridctl migrate: reading public.onegrid_migration: %s\n", err);
            return -1;
        }
        m->nr = (size_t)PQntuples(r);
        m->r = calloc(m->nr ? m->nr : 1, sizeof(*m->r));
        for (size_t i = 0; m->r && i < m->nr; i++) {
            m->r[i].version = atoi(PQgetvalue(r, (int)i, 0));
            m->r[i].name = strdup(PQgetvalue(r, (int)i, 1));
            m->r[i].sha = strdup(PQgetvalue(r, (int)i, 2));
            m->r[i].applied_at = strdup(PQgetvalue(r, (int)i, 3));
        }
        PQclear(r);
        if (!m->r)
            return -1;
    }

    if ((e = table_exists(m->conn, "public.onegrid_repeatable")) <= 0)
        return e;
    r = og_db_query(m->conn,
                    "SELECT name, sha256, applied_at::timestamptz(0) "
                    "FROM public.onegrid_repeatable ORDER BY name",
                    0, NULL, err, sizeof(err));
    if (!r) {
        fprintf(stderr, "onegridctl migrate: reading public.onegrid_repeatable: %s\n", err);
        return -1;
    }
    for (int i = 0; i < PQntuples(r); i++) {
        struct current *c = find_current(m, PQgetvalue(r, i, 0));
        char **g;
        if (c) {
            c->recorded_sha = strdup(PQgetvalue(r, i, 1));
            c->applied_at = strdup(PQgetvalue(r, i, 2));
        } else if ((g = realloc(m->gone, (m->ngone + 1) * sizeof(*g)))) {
            m->gone = g;
            m->gone[m->ngone++] = strdup(PQgetvalue(r, i, 0));
        }
    }
    PQclear(r);
    return 0;
}

static struct recorded *recorded(struct migrate *m, int version)
{
    for (size_t i = 0; i < m->nr; i++)
        if (m->r[i].version == version)
            return &m->r[i];
    return NULL;
}

static bool has_migration(const struct migrate *m, int version)
{
    for (size_t i = 0; i < m->nv; i++)
        if (m->v[i].version == version && !m->v[i].baseline)
            return true;
    return false;
}

/* Decides which versioned migrations are pending. When the database and the directory
 * disagree, says why and returns -1 (the states are all set, for --status). */
static int plan_versioned(struct migrate *m)
{
    int top = m->nr ? m->r[m->nr - 1].version : 0, start = 0, rc = 0;

    for (size_t i = 0; i < m->nv; i++)
        if (m->v[i].baseline && m->nr == 0)
            start = m->v[i].version; /* a new database: the highest baseline */
    for (size_t i = 0; i < m->nv; i++) {
        struct versioned *v = &m->v[i];
        struct recorded *r = recorded(m, v->version);
        int k = top + 1;
        if (!(v->sha = sha256_of(m->conn, v->sql, v->name)))
            return -1;
        if (r && strcmp(r->name, v->name) != 0 && v->baseline) {
            v->state = "baseline: the database has the migrations it stands for";
        } else if (r && strcmp(r->sha, v->sha) != 0) {
            fprintf(stderr,
                    "onegridctl migrate: \"%s\" was applied as version %03d but its text has "
                    "changed since; write a new migration instead\n",
                    v->name, v->version);
            v->state = "CHANGED since it was applied: write a new migration instead";
            rc = -1;
        } else if (r) {
            v->state = "applied";
        } else if (v->version < start || (v->baseline && m->nr == 0 && v->version != start)) {
            v->state = "not needed: older than the baseline this new database starts from";
        } else if (v->baseline && m->nr > 0) {
            /* Recorded up to it, or the migrations it stands for are here (Flyway keeps
             * them): they are applied instead. */
            while (k <= v->version && has_migration(m, k))
                k++;
            if (k > v->version) {
                v->state = "baseline: the database has the migrations it stands for";
                continue;
            }
            fprintf(stderr,
                    "onegridctl migrate: the database is at version %03d (%s); \"%s\" starts "
                    "new databases at %03d and the migrations from %03d to %03d are not in "
                    "\"%s\": bring the database to version %03d first, with the SQL of an "
                    "earlier release (see the README.md of the SQL)\n",
                    top, m->r[m->nr - 1].name, v->name, v->version, top + 1, v->version, m->dir,
                    v->version);
            v->state = "BELOW: the database is older than this baseline (see README.md)";
            rc = -1;
        } else {
            v->state = "pending";
            v->pending = true;
        }
    }
    return rc;
}

static int plan_current(struct migrate *m)
{
    for (size_t i = 0; i < m->nc; i++) {
        struct current *c = &m->c[i];
        int e;
        if (!(c->sha = sha256_of(m->conn, c->sql, c->name)) ||
            (e = object_exists(m->conn, c->name)) < 0)
            return -1;
        c->exists = e;
    }
    return 0;
}

/* Why current definition c is applied in this run; NULL when it is not. forced: a
 * versioned migration was applied (or is pending, for --status and --dry-run). */
static const char *why(const struct current *c, bool exists, bool forced)
{
    if (!c->recorded_sha)
        return exists ? "not recorded yet" : "new";
    if (strcmp(c->recorded_sha, c->sha) != 0)
        return "changed";
    if (!exists)
        return "its object is missing";
    if (forced)
        return "after the versioned migrations";
    return NULL;
}

static bool any_pending(const struct migrate *m)
{
    for (size_t i = 0; i < m->nv; i++)
        if (m->v[i].pending)
            return true;
    return false;
}

static void print_status(const struct migrate *m)
{
    bool forced = any_pending(m);
    size_t nv = 0, nc = 0;

    printf("versioned migrations (public.onegrid_migration, %s):\n", m->dir);
    for (size_t i = 0, j = 0; i < m->nr || j < m->nv;) {
        /* Recorded rows and files merged by version; a row and its file on one line. */
        const struct recorded *r = i < m->nr ? &m->r[i] : NULL;
        const struct versioned *v = j < m->nv ? &m->v[j] : NULL;
        if (r && (!v || r->version < v->version ||
                  (r->version == v->version && strcmp(r->name, v->name) != 0))) {
            printf("  %03d  %-32s applied %s (no file: history)\n", r->version, r->name,
                   r->applied_at);
            i++;
            continue;
        }
        if (v->state && strcmp(v->state, "applied") == 0)
            printf("  %03d  %-32s applied %s\n", v->version, v->name, r ? r->applied_at : "");
        else
            printf("  %03d  %-32s %s\n", v->version, v->name, v->state);
        nv += v->pending;
        i += r && r->version == v->version;
        j++;
    }
    printf("current definitions (public.onegrid_repeatable, %s/current/ORDER):\n", m->dir);
    for (size_t i = 0; i < m->nc; i++) {
        const struct current *c = &m->c[i];
        const char *w = why(c, c->exists, forced);
        if (w)
            printf("  %-36s to apply: %s\n", c->name, w);
        else
            printf("  %-36s up to date, applied %s\n", c->name, c->applied_at);
        nc += w != NULL;
    }
    for (size_t i = 0; i < m->ngone; i++)
        printf("  %-36s recorded, no file: to forget\n", m->gone[i]);
    printf("to apply: %zu versioned migration%s, %zu current definition%s\n", nv,
           nv == 1 ? "" : "s", nc, nc == 1 ? "" : "s");
}

/* --dry-run: what a run would apply, in the words a run uses. */
static void print_plan(const struct migrate *m)
{
    bool forced = any_pending(m);
    size_t nv = 0, nc = 0;
    char names[4096];

    for (size_t i = 0; i < m->nv; i++) {
        if (!m->v[i].pending)
            continue;
        directives(m->v[i].sql, names, sizeof(names));
        printf("would apply %s%s%s%s\n", m->v[i].name, *names ? " (with current " : "", names,
               *names ? ")" : "");
        nv++;
    }
    for (size_t i = 0; i < m->nc; i++) {
        const char *w = why(&m->c[i], m->c[i].exists, forced);
        if (w) {
            printf("would apply current %s (%s)\n", m->c[i].name, w);
            nc++;
        }
    }
    for (size_t i = 0; i < m->ngone; i++)
        printf("would forget current %s: no file any more\n", m->gone[i]);
    printf("dry run: %zu versioned migration%s and %zu current definition%s to apply; "
           "nothing changed\n",
           nv, nv == 1 ? "" : "s", nc, nc == 1 ? "" : "s");
}

static void print_summary(const struct migrate *m, int applied)
{
    int top = m->nr ? m->r[m->nr - 1].version : 0, n = 0;
    for (size_t i = 0; i < m->nv; i++)
        if (m->v[i].pending && m->v[i].version > top)
            top = m->v[i].version;
    for (size_t i = 0; i < m->nc; i++)
        n += m->c[i].applied;
    printf("schema up to date: version %03d (%d versioned migration%s applied now), %zu current "
           "definitions (%d applied now)\n",
           top, applied, applied == 1 ? "" : "s", m->nc, n);
}

/* Begins one of the run's transactions, its lock waits limited (m->lock_wait_ms). */
static int begin(struct migrate *m)
{
    char set[64];
    m->tx++;
    snprintf(set, sizeof(set), "SET LOCAL lock_timeout = %ld", m->lock_wait_ms);
    return run(m->conn, "BEGIN", "begin") || (m->lock_wait_ms && run(m->conn, set, "begin"));
}

/* Rolls back the open transaction, if any (a failed COMMIT has ended it): the definitions
 * it applied are not. */
static void undo(struct migrate *m)
{
    if (PQtransactionStatus(m->conn) != PQTRANS_IDLE)
        PQclear(PQexec(m->conn, "ROLLBACK"));
    for (size_t i = 0; i < m->nc; i++)
        if (m->c[i].applied && m->c[i].applied_in == m->tx)
            m->c[i].applied = false;
}

/* Applies current definition c in the open transaction, as the owner, and records it
 * (as the session's role: the record is not the owner's); the role in force before is
 * restored. 0 or -1 (reported). */
static int apply_current(struct migrate *m, struct current *c)
{
    const char *p[2] = {c->name, c->sha};
    char what[300], recording[300], *prev, *q = NULL, set[512];
    int rc = -1;

    snprintf(what, sizeof(what), "current/%s.sql", c->name);
    if (!(prev = value(m->conn, "SELECT current_user", 0, NULL, "current role")))
        return -1;
    if (!(q = PQescapeIdentifier(m->conn, prev, strlen(prev)))) {
        fprintf(stderr, "onegridctl migrate: %s", PQerrorMessage(m->conn));
        goto out;
    }
    snprintf(set, sizeof(set), "SET LOCAL ROLE %s", q);
    if (run(m->conn, "SET LOCAL ROLE " OWNER, what) || run(m->conn, c->sql, what) ||
        run(m->conn, "RESET ROLE", what))
        goto out;
    snprintf(recording, sizeof(recording), "recording %s", c->name);
    if (run_params(m->conn,
                   "INSERT INTO public.onegrid_repeatable (name, sha256) VALUES ($1, $2) "
                   "ON CONFLICT (name) DO UPDATE SET sha256 = excluded.sha256, applied_at = now()",
                   2, p, recording))
        goto out;
    if (run(m->conn, set, what))
        goto out;
    c->applied = true;
    c->applied_in = m->tx;
    rc = 0;
out:
    PQfreemem(q);
    free(prev);
    return rc;
}

/* Applies versioned migration v in its own transaction, with the current definitions its
 * --@current lines name, and records them. 0 or -1 (reported, rolled back). */
static int apply_versioned(struct migrate *m, struct versioned *v)
{
    char version[16], names[4096], name[256];
    const char *p[3] = {version, v->name, v->sha};
    char *sql = strdup(v->sql), *seg = sql, *l;
    PGresult *r = NULL;
    int rc = -1;

    snprintf(version, sizeof(version), "%d", v->version);
    if (!sql)
        goto out;
    if (begin(m))
        goto rollback;
    /* The text up to each --@current line, then that definition; then the rest. */
    while ((l = next_directive(seg, name, sizeof(name)))) {
        struct current *c = find_current(m, name);
        int e;
        *l = '\0';
        if (run(m->conn, seg, v->name))
            goto rollback;
        seg = l + 1 + strcspn(l + 1, "\n");
        if (c->applied)
            continue;
        if ((e = object_exists(m->conn, c->name)) < 0 || (why(c, e, false) && apply_current(m, c)))
            goto rollback;
    }
    if (run(m->conn, seg, v->name) || run(m->conn, "RESET ROLE", "reset role"))
        goto rollback;
    directives(v->sql, names, sizeof(names));
    r = PQexecParams(m->conn,
                     "INSERT INTO public.onegrid_migration (version, name, sha256) "
                     "VALUES ($1::integer, $2, $3)",
                     3, NULL, p, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_COMMAND_OK) {
        report(m->conn, r, "recording the migration");
        goto rollback;
    }
    if (run(m->conn, "COMMIT", "commit"))
        goto rollback;
    if (*names)
        printf("applied %s (with current %s)\n", v->name, names);
    else
        printf("applied %s\n", v->name);
    rc = 0;
    goto out;
rollback:
    undo(m);
out:
    PQclear(r);
    free(sql);
    return rc;
}

/* Applies, in one transaction, the current definitions this run must apply (forced: all
 * of them, a versioned migration was applied), and forgets the records of files that are
 * gone. 0, or -1 (reported, rolled back). */
static int apply_currents(struct migrate *m, bool forced)
{
    if (begin(m))
        goto rollback;
    for (size_t i = 0; i < m->nc; i++) {
        struct current *c = &m->c[i];
        const char *w;
        int e;
        if (c->applied) /* by a versioned migration of this run */
            continue;
        /* Asked now: an earlier file of this run may have dropped it (CASCADE). */
        if ((e = object_exists(m->conn, c->name)) < 0)
            goto rollback;
        if (!(w = why(c, e, forced)))
            continue;
        if (apply_current(m, c))
            goto rollback;
        c->reason = w;
    }
    for (size_t i = 0; i < m->ngone; i++) {
        const char *p[1] = {m->gone[i]};
        char what[300];
        snprintf(what, sizeof(what), "forgetting %s", m->gone[i]);
        if (run_params(m->conn, "DELETE FROM public.onegrid_repeatable WHERE name = $1", 1, p,
                       what))
            goto rollback;
    }
    if (run(m->conn, "COMMIT", "commit"))
        goto rollback;
    for (size_t i = 0; i < m->nc; i++)
        if (m->c[i].applied && m->c[i].applied_in == m->tx)
            printf("applied current %s (%s)\n", m->c[i].name, m->c[i].reason);
    for (size_t i = 0; i < m->ngone; i++)
        printf("forgot current %s: no file any more\n", m->gone[i]);
    return 0;
rollback:
    undo(m);
    return -1;
}

/* The sessions of this database, other than ours, that hold a lock on one of onegrid's
 * tables or views, or an advisory lock (those a migration's lock waits are likely behind),
 * the oldest transaction first; $1: only those whose transaction is older than 2 s. */
static const char SQL_LOCK_HOLDERS[] =
    "SELECT coalesce(string_agg(h, '; ' ORDER BY since, pid), '') FROM ("
    "SELECT DISTINCT a.pid, a.xact_start AS since, format('pid %s (%s, application \"%s\", %s, "
    "transaction open since %s)', a.pid, coalesce('user ' || a.usename, a.backend_type), "
    "a.application_name, a.state, date_trunc('second', a.xact_start)) AS h "
    "FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
    "LEFT JOIN pg_class c ON c.oid = l.relation LEFT JOIN pg_namespace n ON n.oid = c.relnamespace "
    "WHERE l.granted AND l.database = (SELECT oid FROM pg_database WHERE datname = "
    "current_database()) AND (n.nspname IN ('og', 'audit', 'feed', 'public') "
    "OR l.locktype = 'advisory') AND a.pid <> pg_backend_pid() "
    "AND (NOT $1::boolean OR a.xact_start < now() - interval '2 seconds')) x";

/* The lock waits of with_lock_retries, from the server's deadlock_timeout (once a run).
 * 0 or -1 (reported). */
static int lock_waits(struct migrate *m)
{
    char *deadlock;
    if (m->first_wait_ms)
        return 0;
    if (!(deadlock =
              value(m->conn, "SELECT setting FROM pg_settings WHERE name = 'deadlock_timeout'", 0,
                    NULL, "deadlock_timeout")))
        return -1;
    m->first_wait_ms = LOCK_WAIT_MS;
    if (2 * atol(deadlock) > m->first_wait_ms)
        m->first_wait_ms = 2 * atol(deadlock);
    m->later_wait_ms = m->first_wait_ms > LOCK_WAIT_MAX_MS ? m->first_wait_ms : LOCK_WAIT_MAX_MS;
    free(deadlock);
    return 0;
}

/* Runs one transaction of the run (apply_versioned or apply_currents, given as step)
 * until it is not cut short by a lock wait (see LOCK_WAIT_MS): each time, names the
 * sessions whose transactions have held locks for a while, when they change (and all
 * holders, at least every LOCK_QUIET_MS), and tries again after LOCK_PAUSE_MS, in which
 * archive's and dispatch's statements that queued behind its lock requests go on.
 * 0 or -1. */
static int with_lock_retries(struct migrate *m, const char *what,
                             int (*step)(struct migrate *, void *), void *arg)
{
    char *told = NULL;
    const char *old_only[1] = {"true"}, *all[1] = {"false"};
    int rc, tries = 0;
    int64_t started = og_mono_us() / 1000, said = started;

    if (lock_waits(m))
        return -1;
    m->lock_wait_ms = m->first_wait_ms;
    for (;;) {
        lock_waited = false;
        retrying = true;
        rc = step(m, arg);
        retrying = false;
        if (rc == 0 || !lock_waited)
            break;
        tries++;
        m->lock_wait_ms = m->later_wait_ms;
        char *who = value(m->conn, SQL_LOCK_HOLDERS, 1, old_only, "lock holders");
        if (!who) {
            rc = -1;
            break;
        }
        int64_t now = og_mono_us() / 1000;
        if (*who && (!told || strcmp(told, who) != 0)) {
            fprintf(stderr,
                    "onegridctl migrate: %s waits for locks other sessions hold: %s; trying "
                    "again every %d s, waiting at most %ld ms each time, so that archive and "
                    "dispatch are not held up behind it (to end a session: SELECT "
                    "pg_terminate_backend(PID))\n",
                    what, who, LOCK_PAUSE_MS / 1000, m->later_wait_ms);
            said = now;
        } else if (now - said >= LOCK_QUIET_MS) {
            char *any = value(m->conn, SQL_LOCK_HOLDERS, 1, all, "lock holders");
            if (!any) {
                free(who);
                rc = -1;
                break;
            }
            fprintf(stderr,
                    "onegridctl migrate: %s still waits for locks, %d tries in %lld s; holding "
                    "locks on onegrid's tables or advisory locks now: %s\n",
                    what, tries, (long long)((now - started) / 1000), *any ? any : "nobody");
            free(any);
            said = now;
        }
        free(told);
        told = who;
        struct timespec pause = {LOCK_PAUSE_MS / 1000, (LOCK_PAUSE_MS % 1000) * 1000000L};
        while (nanosleep(&pause, &pause) < 0 && errno == EINTR)
            ;
    }
    m->lock_wait_ms = 0;
    free(told);
    return rc;
}

static int versioned_step(struct migrate *m, void *v)
{
    return apply_versioned(m, v);
}

static int currents_step(struct migrate *m, void *forced)
{
    return apply_currents(m, *(bool *)forced);
}

static void migrate_release(struct migrate *m)
{
    for (size_t i = 0; i < m->nv; i++) {
        free(m->v[i].name);
        free(m->v[i].sql);
        free(m->v[i].sha);
    }
    free(m->v);
    for (size_t i = 0; i < m->nc; i++) {
        free(m->c[i].name);
        free(m->c[i].sql);
        free(m->c[i].sha);
        free(m->c[i].recorded_sha);
        free(m->c[i].applied_at);
    }
    free(m->c);
    for (size_t i = 0; i < m->nr; i++) {
        free(m->r[i].name);
        free(m->r[i].sha);
        free(m->r[i].applied_at);
    }
    free(m->r);
    for (size_t i = 0; i < m->ngone; i++)
        free(m->gone[i]);
    free(m->gone);
    if (m->conn)
        PQfinish(m->conn);
}

/* Everything in og, audit and feed, the schemas too, is onegrid_owner's (019): the
 * SECURITY DEFINER functions run with their owner's rights, and migrate applies the
 * current definitions as onegrid_owner, which cannot replace what it does not own. A copy
 * restored without ownership (pg_restore --no-owner, or as a role that took what it made)
 * has another owner for some or all of it: the functions then run with that role's
 * rights, the superuser's often. Each row: what the object is, and the statement that
 * gives it back. Sequences of a column follow their table. */
#define IN_SCHEMAS " IN ('og', 'audit', 'feed')"
static const char SQL_OTHER_OWNERS[] =
    "SELECT format('schema %I (owner %s)', n.nspname, pg_catalog.pg_get_userbyid(n.nspowner)),"
    "       format('ALTER SCHEMA %I OWNER TO " OWNER "', n.nspname)"
    "  FROM pg_catalog.pg_namespace n"
    " WHERE n.nspname" IN_SCHEMAS "   AND pg_catalog.pg_get_userbyid(n.nspowner) <> '" OWNER "'"
    " UNION ALL "
    "SELECT format('%s %s (owner %s)', lower(k), p.oid::regprocedure,"
    "              pg_catalog.pg_get_userbyid(p.proowner)),"
    "       format('ALTER %s %s OWNER TO " OWNER "', k, p.oid::regprocedure)"
    "  FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace,"
    "       LATERAL (SELECT CASE p.prokind WHEN 'a' THEN 'AGGREGATE' WHEN 'p' THEN 'PROCEDURE'"
    "                                      ELSE 'FUNCTION' END) x(k)"
    " WHERE n.nspname" IN_SCHEMAS "   AND pg_catalog.pg_get_userbyid(p.proowner) <> '" OWNER "'"
    " UNION ALL "
    "SELECT format('%s %I.%I (owner %s)', lower(k), n.nspname, c.relname,"
    "              pg_catalog.pg_get_userbyid(c.relowner)),"
    "       format('ALTER %s %I.%I OWNER TO " OWNER "', k, n.nspname, c.relname)"
    "  FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace,"
    "       LATERAL (SELECT CASE c.relkind WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW'"
    "                                      WHEN 'S' THEN 'SEQUENCE' WHEN 'f' THEN 'FOREIGN TABLE'"
    "                                      WHEN 'c' THEN 'TYPE' ELSE 'TABLE' END) x(k)"
    " WHERE n.nspname" IN_SCHEMAS " AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f', 'c')"
    "   AND pg_catalog.pg_get_userbyid(c.relowner) <> '" OWNER "'"
    "   AND NOT (c.relkind = 'S' AND EXISTS (SELECT 1 FROM pg_catalog.pg_depend d"
    "                                         WHERE d.objid = c.oid AND d.deptype IN ('a', 'i')))"
    " UNION ALL "
    "SELECT format('type %s (owner %s)', t.oid::regtype, pg_catalog.pg_get_userbyid(t.typowner)),"
    "       format('ALTER TYPE %s OWNER TO " OWNER "', t.oid::regtype)"
    "  FROM pg_catalog.pg_type t JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace"
    " WHERE n.nspname" IN_SCHEMAS " AND t.typtype IN ('d', 'e', 'r', 'm')"
    "   AND pg_catalog.pg_get_userbyid(t.typowner) <> '" OWNER "'"
    " ORDER BY 1";
#define OWNERS_SHOWN 10

/* Gives back the objects SQL_OTHER_OWNERS found (a PGresult: description, statement), in
 * one transaction. Each ALTER ... OWNER takes its object's strongest lock: on a live
 * database it runs under with_lock_retries, so that archive and dispatch, and the readers
 * of a view, are not queued behind it while another session holds the object. */
static int reassign_step(struct migrate *m, void *arg)
{
    const PGresult *r = arg;
    int rc = begin(m);
    for (int i = 0; rc == 0 && i < PQntuples(r); i++)
        rc = run(m->conn, PQgetvalue(r, i, 1), PQgetvalue(r, i, 0));
    if (rc == 0)
        rc = run(m->conn, "COMMIT", "owners");
    if (rc != 0)
        undo(m);
    return rc;
}

/* Checks the owners (SQL_OTHER_OWNERS), once migration 019 has given everything to
 * onegrid_owner (before, it will). With reassign, gives back what another role owns, in
 * one transaction, as this session's role (the superuser, or a member of both roles), and
 * says what; otherwise names them and how to give them back. 0 when all is
 * onegrid_owner's now, 1 when not, -1 on error (reported). */
static int check_owners(struct migrate *m, bool reassign)
{
    char err[1024];
    if (!recorded(m, 19))
        return 0;
    PGresult *r = og_db_query(m->conn, SQL_OTHER_OWNERS, 0, NULL, err, sizeof(err));
    if (!r) {
        fprintf(stderr, "onegridctl migrate: owners: %s\n", err);
        return -1;
    }
    int n = PQntuples(r), rc = 0;
    if (n > 0 && reassign) {
        rc = with_lock_retries(m, "giving the owners back", reassign_step, r);
        if (rc == 0)
            printf("gave %d object%s of og, audit and feed back to " OWNER ":\n", n,
                   n == 1 ? "" : "s");
        for (int i = 0; rc == 0 && i < n; i++)
            printf("  %s\n", PQgetvalue(r, i, 0));
    } else if (n > 0) {
        fprintf(stderr,
                "onegridctl migrate: %d object%s of og, audit and feed belong%s to another role "
                "than " OWNER " (a copy restored without its owners?):\n",
                n, n == 1 ? "" : "s", n == 1 ? "s" : "");
        for (int i = 0; i < n && i < OWNERS_SHOWN; i++)
            fprintf(stderr, "  %s\n", PQgetvalue(r, i, 0));
        if (n > OWNERS_SHOWN)
            fprintf(stderr, "  and %d more\n", n - OWNERS_SHOWN);
        fprintf(stderr,
                "onegridctl migrate: their SECURITY DEFINER functions run with that role's rights, "
                "and migrate cannot replace them, so it applies nothing until they are given back: "
                "run it again with --reassign-owners, as the superuser\n");
        rc = 1;
    }
    PQclear(r);
    return rc;
}

static void usage(FILE *out)
{
    fprintf(out,
            "usage: onegridctl migrate --db CONNINFO [--sql-dir DIR]\n"
            "                          [--status | --dry-run | --reassign-owners]\n"
            "  applies the versioned migrations DIR/NNN_*.sql not applied yet, in order, then\n"
            "  the current definitions DIR/current/*.sql whose text changed, in the order of\n"
            "  DIR/current/ORDER (default DIR: %s)\n"
            "  --status   print the state of each migration and definition, change nothing\n"
            "  --dry-run  print what would be applied, change nothing\n"
            "  --reassign-owners\n"
            "             first give back to onegrid_owner whatever of og, audit and feed\n"
            "             another role owns (a copy restored without its owners), as the\n"
            "             superuser; without it, migrate names them and applies nothing\n",
            ONEGRID_SQL_DIR);
}

int og_cmd_migrate(int argc, char **argv)
{
    static const struct option opts[] = {{"db", required_argument, NULL, 'd'},
                                         {"sql-dir", required_argument, NULL, 's'},
                                         {"status", no_argument, NULL, 'S'},
                                         {"dry-run", no_argument, NULL, 'n'},
                                         {"reassign-owners", no_argument, NULL, 'R'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    struct migrate m = {.dir = getenv("ONEGRID_SQL_DIR")};
    const char *conninfo = NULL;
    char err[1024];
    int c, rc = OG_EXIT_FAIL, applied = 0, planned;
    bool status = false, dry_run = false, reassign = false;

    if (!m.dir)
        m.dir = ONEGRID_SQL_DIR;
    optind = 1;
    while ((c = getopt_long(argc, argv, "d:s:h", opts, NULL)) != -1) {
        switch (c) {
        case 'd':
            conninfo = optarg;
            break;
        case 's':
            m.dir = optarg;
            break;
        case 'S':
            status = true;
            break;
        case 'n':
            dry_run = true;
            break;
        case 'R':
            reassign = true;
            break;
        case 'h':
            usage(stdout);
            return OG_EXIT_OK;
        default:
            return OG_EXIT_USAGE;
        }
    }
    if (!conninfo || optind != argc || (status && dry_run) || (reassign && (status || dry_run))) {
        usage(stderr);
        return OG_EXIT_USAGE;
    }
    if (read_dir(&m)) {
        migrate_release(&m);
        return OG_EXIT_USAGE;
    }
    m.conn = og_db_connect(conninfo, "onegridctl migrate", err, sizeof(err));
    if (!m.conn) {
        fprintf(stderr, "onegridctl migrate: %s\n", err);
        goto out;
    }
    /* One migrator at a time, for the whole run; only warnings from the server. */
    if (run(m.conn, "SET client_min_messages = warning", "settings"))
        goto out;
    if (!status && !dry_run &&
        (take_lock(m.conn) ||
         run(m.conn,
             "CREATE TABLE IF NOT EXISTS public.onegrid_migration ("
             " version integer PRIMARY KEY, name text NOT NULL,"
             " sha256 text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now());"
             "CREATE TABLE IF NOT EXISTS public.onegrid_repeatable ("
             " name text PRIMARY KEY, sha256 text NOT NULL,"
             " applied_at timestamptz NOT NULL DEFAULT now());"
             /* The daemons compare it with the schema they were built for. */
             "DO $$ BEGIN GRANT SELECT ON public.onegrid_migration, public.onegrid_repeatable"
             " TO PUBLIC; EXCEPTION WHEN insufficient_privilege THEN NULL; END $$",
             "migration tables")))
        goto out;
    if (read_recorded(&m))
        goto out;
    planned = plan_versioned(&m);
    if (plan_current(&m))
        goto out;
    int owners = check_owners(&m, reassign);
    if (owners < 0)
        goto out;
    if (status) {
        print_status(&m);
        rc = planned || owners ? OG_EXIT_FAIL : OG_EXIT_OK;
        goto out;
    }
    if (planned || owners)
        goto out;
    if (dry_run) {
        print_plan(&m);
        rc = OG_EXIT_OK;
        goto out;
    }
    for (size_t i = 0; i < m.nv; i++) {
        if (!m.v[i].pending)
            continue;
        if (with_lock_retries(&m, m.v[i].name, versioned_step, &m.v[i]))
            goto out;
        applied++;
    }
    bool forced = applied > 0;
    if (with_lock_retries(&m, "the current definitions", currents_step, &forced) ||
        run(m.conn, SQL_NO_PUBLIC_TEMPORARY, "PUBLIC's right to temporary tables") ||
        run(m.conn, SQL_DATABASE_GRANTS, "onegrid's rights in the database"))
        goto out;
    print_summary(&m, applied);
    rc = OG_EXIT_OK;
out:
    migrate_release(&m);
    return rc;
}
