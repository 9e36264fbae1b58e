/* `onegridctl registry import|export`: the registry (schema og: areas, source systems,
 * crosswalk, categories, units, routing rules, ...) as the files spreadsheets and GIS tools
 * give: one CSV file per table and the grid boundaries as GeoJSON, in one directory.
 *
 * A file is the whole table: import adds the rows it has and the table lacks, changes the
 * rows whose key both have, and removes the rows the file lacks. A table without its file
 * is left alone. Before anything is written it prints, per table, what is added, changed
 * and removed; it then applies everything in one transaction, as onegrid_owner, and
 * commits (or, with --dry-run, rolls back: the database's own checks still run).
 *
 * Routing rules are versioned (og.routing_rule: rule_key, version, valid_from, valid_to)
 * and dispatch records on each case the rule_id and version it followed. routing_rules.csv
 * holds one row per rule_key: the rule as it is to be from the --effective time on (default
 * now). A changed rule closes the version in force then (valid_to) and adds version + 1
 * from that time; a removed one is closed. The version an earlier case followed is never
 * edited: a version is changed in place or deleted only when it starts exactly at
 * --effective and no case or decision names it.
 *
 * export writes the same files: importing them again changes nothing. */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <json-c/json.h>
#include <libpq-fe.h>
#include <csv.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "db.h"
#include "onegridctl.h"

#define OWNER "onegrid_owner"

enum kind { PLAIN, RULES, GRIDS };

struct col {
    const char *name;
    const char *type; /* SQL type of the staging column */
    bool key;
    bool nullable; /* an empty field is NULL */
};

struct table {
    const char *file;  /* in the registry directory */
    const char *name;  /* og.NAME */
    const char *stage; /* temporary table the file is loaded into */
    enum kind kind;
    const struct col *cols;
    int ncols;
};

#define COLS(a) a, (int)(sizeof(a) / sizeof(a[0]))

static const struct col C_SOURCE[] = {
    {"code", "text", true, false}, {"name", "text", false, false}, {"kind", "text", false, false}};
static const struct col C_AREA[] = {{"code", "text", true, false},
                                    {"level", "text", false, false},
                                    {"parent_code", "text", false, true},
                                    {"name", "text", false, false},
                                    {"district_code", "text", false, false}};
static const struct col C_CATEGORY[] = {{"code", "text", true, false},
                                        {"name", "text", false, false},
                                        {"major", "text", false, false},
                                        {"minor", "text", false, false},
                                        {"kind", "text", false, false},
                                        {"unit_level", "text", false, false},
                                        {"time_limit", "integer", false, false},
                                        {"time_unit", "text", false, false},
                                        {"check_required", "boolean", false, false}};
static const struct col C_UNIT[] = {{"code", "text", true, false},
                                    {"name", "text", false, false},
                                    {"kind", "text", false, false},
                                    {"area_code", "text", false, false},
                                    {"district_code", "text", false, false}};
static const struct col C_XWALK[] = {{"source_system", "text", true, false},
                                     {"source_grid_id", "text", true, false},
                                     {"area_code", "text", false, false}};
static const struct col C_SEVERITY[] = {{"category_code", "text", true, false},
                                        {"severity", "integer", true, false},
                                        {"time_limit", "integer", false, false},
                                        {"time_unit", "text", false, false}};
static const struct col C_SUPERVISOR[] = {{"area_code", "text", true, false},
                                          {"unit_code", "text", false, false}};
static const struct col C_RULE[] = {
    {"rule_key", "text", true, false},     {"category_code", "text", false, true},
    {"area_prefix", "text", false, false}, {"unit_code", "text", false, false},
    {"priority", "integer", false, false}, {"note", "text", false, true}};
static const struct col C_CALENDAR[] = {{"day", "date", true, false},
                                        {"working", "boolean", false, false},
                                        {"note", "text", false, false}};
static const struct col C_UNIT_GRANT[] = {{"source_system", "text", true, false},
                                          {"unit_pattern", "text", true, false},
                                          {"note", "text", false, true}};
static const struct col C_ACTION_GRANT[] = {{"source_system", "text", true, false},
                                            {"action", "text", true, false},
                                            {"note", "text", false, true}};
static const struct col C_GRID[] = {{"area_code", "text", true, false},
                                    {"vertices", "double precision[]", false, false}};

/* In the order of their foreign keys: a table comes after those it refers to. Rows are
 * added and changed in this order and removed in the reverse one. */
static const struct table TABLES[] = {
    {"source_systems.csv", "og.source_system", "imp_source_system", PLAIN, COLS(C_SOURCE)},
    {"areas.csv", "og.area", "imp_area", PLAIN, COLS(C_AREA)},
    {"categories.csv", "og.category", "imp_category", PLAIN, COLS(C_CATEGORY)},
    {"units.csv", "og.handling_unit", "imp_handling_unit", PLAIN, COLS(C_UNIT)},
    {"crosswalk.csv", "og.grid_crosswalk", "imp_grid_crosswalk", PLAIN, COLS(C_XWALK)},
    {"severity_limits.csv", "og.severity_limit", "imp_severity_limit", PLAIN, COLS(C_SEVERITY)},
    {"supervisors.csv", "og.supervisor", "imp_supervisor", PLAIN, COLS(C_SUPERVISOR)},
    {"routing_rules.csv", "og.routing_rule", "imp_routing_rule", RULES, COLS(C_RULE)},
    {"calendar.csv", "og.calendar_day", "imp_calendar_day", PLAIN, COLS(C_CALENDAR)},
    {"source_unit_grants.csv", "og.source_unit_grant", "imp_source_unit_grant", PLAIN,
     COLS(C_UNIT_GRANT)},
    {"source_action_grants.csv", "og.source_action_grant", "imp_source_action_grant", PLAIN,
     COLS(C_ACTION_GRANT)},
    {"grids.geojson", "og.grid_boundary", "imp_grid_boundary", GRIDS, COLS(C_GRID)},
};
#define NTABLES ((int)(sizeof(TABLES) / sizeof(TABLES[0])))

/* A growing string. Out of memory ends the program: onegridctl is a command, not a daemon. */
struct sb {
    char *s;
    size_t len, cap;
};

static void sb_printf(struct sb *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(struct sb *b, const char *fmt, ...)
{
    va_list ap;
    int n;
    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        abort();
    if (b->len + (size_t)n + 1 > b->cap) {
        size_t cap = (b->len + (size_t)n + 1) * 2;
        char *s = realloc(b->s, cap);
        if (!s) {
            fputs("onegridctl registry: out of memory\n", stderr);
            exit(OG_EXIT_FAIL);
        }
        b->s = s;
        b->cap = cap;
    }
    va_start(ap, fmt);
    vsnprintf(b->s + b->len, b->cap - b->len, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

static void sb_reset(struct sb *b)
{
    b->len = 0;
    if (b->s)
        b->s[0] = '\0';
}

/* Prints a failed statement's error: the server's message, its detail and hint. */
static void report(const char *what, PGconn *c, const PGresult *r)
{
    const char *msg = r ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    const char *detail = r ? PQresultErrorField(r, PG_DIAG_MESSAGE_DETAIL) : NULL;
    const char *hint = r ? PQresultErrorField(r, PG_DIAG_MESSAGE_HINT) : NULL;
    if (!msg) {
        char err[1024];
        og_db_error(c, r, err, sizeof(err));
        fprintf(stderr, "onegridctl registry: %s: %s\n", what, err);
        return;
    }
    fprintf(stderr, "onegridctl registry: %s: %s%s%s%s%s\n", what, msg, detail ? " (" : "",
            detail ? detail : "", detail ? ")" : "", hint ? "" : "");
    if (hint)
        fprintf(stderr, "  hint: %s\n", hint);
}

/* Runs a statement with text parameters; the result (caller PQclears), or NULL reported. */
static PGresult *run(PGconn *c, const char *what, const char *sql, int n, const char *const *p)
{
    PGresult *r = PQexecParams(c, sql, n, NULL, p, NULL, NULL, 0);
    ExecStatusType st = PQresultStatus(r);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        report(what, c, r);
        PQclear(r);
        return NULL;
    }
    return r;
}

static int exec0(PGconn *c, const char *what, const char *sql, int n, const char *const *p)
{
    PGresult *r = run(c, what, sql, n, p);
    if (!r)
        return -1;
    PQclear(r);
    return 0;
}

/* ---------------------------------------------------------------------------------------
 * Reading files into the staging tables */

struct loader {
    const struct table *t;
    const char *path;
    PGconn *conn;
    struct sb sql;    /* the INSERT into the staging table */
    int map[16];      /* file field i holds column map[i] */
    int nfields;      /* fields of the header */
    char *vals[16];   /* the current record's fields, by column */
    int nvals;        /* fields seen in the current record */
    bool header_done; /* the first record was the header */
    long line;        /* physical line being parsed */
    long rows;
    int failed;
};

static void on_field(void *s, size_t len, void *data)
{
    struct loader *L = data;
    if (L->failed)
        return;
    if (L->nvals >= 16) {
        fprintf(stderr, "onegridctl registry: %s line %ld: too many fields\n", L->path, L->line);
        L->failed = 1;
        return;
    }
    /* A NUL would end the value where the database reads it: the rest dropped unseen. */
    if (s && memchr(s, '\0', len)) {
        fprintf(stderr, "onegridctl registry: %s line %ld: a NUL byte in field %d\n", L->path,
                L->line, L->nvals + 1);
        L->failed = 1;
        return;
    }
    char *v = malloc(len + 1);
    if (!v) {
        L->failed = 1;
        return;
    }
    memcpy(v, s ? s : "", len);
    v[len] = '\0';
    if (L->nvals == 0 && !L->header_done && len >= 3 && memcmp(v, "\xEF\xBB\xBF", 3) == 0)
        memmove(v, v + 3, len - 2); /* a byte order mark, as spreadsheets write */
    L->vals[L->nvals++] = v;
}

static void free_vals(struct loader *L)
{
    for (int i = 0; i < L->nvals; i++) {
        free(L->vals[i]);
        L->vals[i] = NULL;
    }
    L->nvals = 0;
}

static void expected_columns(const struct table *t, FILE *out)
{
    for (int i = 0; i < t->ncols; i++)
        fprintf(out, "%s%s", i ? "," : "", t->cols[i].name);
}

static void header(struct loader *L)
{
    const struct table *t = L->t;
    bool seen[16] = {false};
    for (int i = 0; i < L->nvals && !L->failed; i++) {
        int k = -1;
        for (int j = 0; j < t->ncols; j++)
            if (strcmp(L->vals[i], t->cols[j].name) == 0)
                k = j;
        if (k < 0) {
            fprintf(stderr,
                    "onegridctl registry: %s line %ld: unknown column \"%s\" (the columns of "
                    "%s are: ",
                    L->path, L->line, L->vals[i], t->name);
            expected_columns(t, stderr);
            fputs(")\n", stderr);
            L->failed = 1;
        } else if (seen[k]) {
            fprintf(stderr, "onegridctl registry: %s line %ld: column \"%s\" appears twice\n",
                    L->path, L->line, L->vals[i]);
            L->failed = 1;
        } else {
            seen[k] = true;
            L->map[i] = k;
        }
    }
    for (int j = 0; j < t->ncols && !L->failed; j++)
        if (!seen[j]) {
            fprintf(stderr,
                    "onegridctl registry: %s line %ld: column \"%s\" is missing (the "
                    "columns of %s are: ",
                    L->path, L->line, t->cols[j].name, t->name);
            expected_columns(t, stderr);
            fputs(")\n", stderr);
            L->failed = 1;
        }
    L->nfields = L->nvals;
    L->header_done = true;
}

/* Stages one row: line number and the columns in table order. NULL for an empty nullable
 * field; an empty field of a column that may not be empty is refused here. */
static void stage_row(struct loader *L, const char *const *cols)
{
    const struct table *t = L->t;
    char line[32];
    const char *p[17];
    snprintf(line, sizeof(line), "%ld", L->line);
    p[0] = line;
    for (int j = 0; j < t->ncols; j++) {
        const char *v = cols[j];
        if (v && !*v)
            v = NULL;
        if (!v && !t->cols[j].nullable) {
            fprintf(stderr, "onegridctl registry: %s line %ld: column \"%s\" is empty\n", L->path,
                    L->line, t->cols[j].name);
            L->failed = 1;
            return;
        }
        p[j + 1] = v;
    }
    PGresult *r = PQexecParams(L->conn, L->sql.s, t->ncols + 1, NULL, p, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_COMMAND_OK) {
        char what[512];
        snprintf(what, sizeof(what), "%s line %ld", L->path, L->line);
        report(what, L->conn, r);
        L->failed = 1;
    }
    PQclear(r);
    L->rows++;
}

static void on_record(int c, void *data)
{
    struct loader *L = data;
    (void)c;
    if (L->failed) {
        free_vals(L);
        return;
    }
    if (L->nvals == 1 && !*L->vals[0]) {
        free_vals(L); /* an empty line */
        return;
    }
    if (!L->header_done) {
        header(L);
    } else if (L->nvals != L->nfields) {
        fprintf(stderr, "onegridctl registry: %s line %ld: %d fields, the header has %d\n", L->path,
                L->line, L->nvals, L->nfields);
        L->failed = 1;
    } else {
        const char *cols[16];
        for (int i = 0; i < L->nvals; i++)
            cols[L->map[i]] = L->vals[i];
        stage_row(L, cols);
    }
    free_vals(L);
}

static void stage_sql(struct loader *L)
{
    const struct table *t = L->t;
    sb_printf(&L->sql, "INSERT INTO pg_temp.%s VALUES ($1", t->stage);
    for (int j = 0; j < t->ncols; j++)
        sb_printf(&L->sql, ", $%d", j + 2);
    sb_printf(&L->sql, ")");
}

static int load_csv(PGconn *c, const struct table *t, const char *path, long *rows)
{
    struct loader L = {.t = t, .path = path, .conn = c};
    struct csv_parser p;
    FILE *f = fopen(path, "r");
    char *buf = NULL;
    size_t cap = 0;
    ssize_t n;
    int rc = 0;

    if (!f) {
        fprintf(stderr, "onegridctl registry: could not open \"%s\": %s\n", path, strerror(errno));
        return -1;
    }
    if (csv_init(&p, CSV_STRICT | CSV_STRICT_FINI | CSV_APPEND_NULL) != 0) {
        fclose(f);
        return -1;
    }
    stage_sql(&L);
    while (!L.failed && (n = getline(&buf, &cap, f)) > 0) {
        L.line++;
        if (csv_parse(&p, buf, (size_t)n, on_field, on_record, &L) != (size_t)n) {
            fprintf(stderr,
                    "onegridctl registry: %s line %ld: malformed CSV: %s (a quote inside an "
                    "unquoted field, or text after a closing quote)\n",
                    path, L.line, csv_strerror(csv_error(&p)));
            L.failed = 1;
        }
    }
    if (!L.failed && ferror(f)) {
        fprintf(stderr, "onegridctl registry: could not read \"%s\": %s\n", path, strerror(errno));
        L.failed = 1;
    }
    if (!L.failed && csv_fini(&p, on_field, on_record, &L) != 0) {
        fprintf(stderr,
                "onegridctl registry: %s line %ld: malformed CSV: %s (a quoted field is not "
                "closed)\n",
                path, L.line, csv_strerror(csv_error(&p)));
        L.failed = 1;
    }
    if (!L.failed && !L.header_done) {
        fprintf(stderr, "onegridctl registry: %s: no header line (the columns of %s are: ", path,
                t->name);
        expected_columns(t, stderr);
        fputs(")\n", stderr);
        L.failed = 1;
    }
    free_vals(&L);
    csv_free(&p);
    free(buf);
    free(L.sql.s);
    fclose(f);
    if (L.failed)
        rc = -1;
    *rows = L.rows;
    return rc;
}

/* A GeoJSON position: [longitude, latitude] (an altitude after them is ignored). */
static int position(json_object *pos, double *lon, double *lat, char *err, size_t errlen)
{
    json_object *x, *y;
    if (!json_object_is_type(pos, json_type_array) || json_object_array_length(pos) < 2 ||
        json_object_array_length(pos) > 3) {
        snprintf(err, errlen, "a position is not an array of 2 or 3 numbers");
        return -1;
    }
    x = json_object_array_get_idx(pos, 0);
    y = json_object_array_get_idx(pos, 1);
    if (!(json_object_is_type(x, json_type_double) || json_object_is_type(x, json_type_int)) ||
        !(json_object_is_type(y, json_type_double) || json_object_is_type(y, json_type_int))) {
        snprintf(err, errlen, "a position is not an array of numbers");
        return -1;
    }
    *lon = json_object_get_double(x);
    *lat = json_object_get_double(y);
    if (!(*lon >= -180 && *lon <= 180) || !(*lat >= -90 && *lat <= 90)) {
        snprintf(err, errlen, "position [%g, %g] is out of range (longitude first, WGS 84)", *lon,
                 *lat);
        return -1;
    }
    return 0;
}

/* The outer ring of a feature's geometry as a PostgreSQL array text, without the closing
 * position GeoJSON repeats. One area per grid: no holes, one polygon. */
static int ring(json_object *geom, struct sb *out, char *err, size_t errlen)
{
    json_object *type, *coords, *poly, *r;
    const char *ty;
    size_t n;
    double lon0 = 0, lat0 = 0;

    if (!json_object_is_type(geom, json_type_object) ||
        !json_object_object_get_ex(geom, "type", &type) ||
        !json_object_is_type(type, json_type_string) ||
        !json_object_object_get_ex(geom, "coordinates", &coords) ||
        !json_object_is_type(coords, json_type_array)) {
        snprintf(err, errlen, "no geometry with a type and coordinates");
        return -1;
    }
    ty = json_object_get_string(type);
    if (strcmp(ty, "Polygon") == 0) {
        poly = coords;
    } else if (strcmp(ty, "MultiPolygon") == 0) {
        if (json_object_array_length(coords) != 1) {
            snprintf(err, errlen, "a MultiPolygon of %zu polygons: a grid is one polygon",
                     json_object_array_length(coords));
            return -1;
        }
        poly = json_object_array_get_idx(coords, 0);
    } else {
        snprintf(err, errlen, "geometry type \"%s\": a grid boundary is a Polygon", ty);
        return -1;
    }
    if (!json_object_is_type(poly, json_type_array) || json_object_array_length(poly) < 1) {
        snprintf(err, errlen, "a polygon without a ring");
        return -1;
    }
    if (json_object_array_length(poly) > 1) {
        snprintf(err, errlen, "a polygon with holes: a grid boundary has none");
        return -1;
    }
    r = json_object_array_get_idx(poly, 0);
    if (!json_object_is_type(r, json_type_array)) {
        snprintf(err, errlen, "a ring is not an array of positions");
        return -1;
    }
    n = json_object_array_length(r);
    if (n >= 2) {
        double lon, lat;
        if (position(json_object_array_get_idx(r, 0), &lon0, &lat0, err, errlen) ||
            position(json_object_array_get_idx(r, n - 1), &lon, &lat, err, errlen))
            return -1;
        if (lon == lon0 && lat == lat0)
            n--; /* the closing position */
    }
    if (n < 3) {
        snprintf(err, errlen, "a ring of %zu distinct positions: at least 3 are needed", n);
        return -1;
    }
    sb_printf(out, "{");
    for (size_t i = 0; i < n; i++) {
        double lon, lat;
        if (position(json_object_array_get_idx(r, i), &lon, &lat, err, errlen))
            return -1;
        sb_printf(out, "%s{%.17g,%.17g}", i ? "," : "", lon, lat);
    }
    sb_printf(out, "}");
    return 0;
}

/* The JSON of a file, or NULL with the reason printed (where it stopped, by line). */
static json_object *read_json(const char *path)
{
    FILE *f = fopen(path, "r");
    struct sb text = {0};
    char buf[65536];
    size_t n;
    json_tokener *tok;
    json_object *root = NULL;
    enum json_tokener_error jerr;
    size_t end;

    if (!f) {
        fprintf(stderr, "onegridctl registry: could not open \"%s\": %s\n", path, strerror(errno));
        return NULL;
    }
    while ((n = fread(buf, 1, sizeof(buf), f)) > 0) {
        /* "%.*s" stops at a NUL: the rest of the chunk would be dropped unseen. */
        if (memchr(buf, '\0', n)) {
            fprintf(stderr, "onegridctl registry: %s: a NUL byte (not a JSON text)\n", path);
            fclose(f);
            free(text.s);
            return NULL;
        }
        sb_printf(&text, "%.*s", (int)n, buf);
    }
    if (ferror(f)) {
        fprintf(stderr, "onegridctl registry: could not read \"%s\": %s\n", path, strerror(errno));
        fclose(f);
        free(text.s);
        return NULL;
    }
    fclose(f);
    if (!(tok = json_tokener_new())) {
        free(text.s);
        return NULL;
    }
    root = json_tokener_parse_ex(tok, text.s ? text.s : "", (int)text.len);
    jerr = json_tokener_get_error(tok);
    end = json_tokener_get_parse_end(tok);
    while (root && end < text.len && isspace((unsigned char)text.s[end]))
        end++; /* white space after the value */
    if (!root || jerr != json_tokener_success || end < text.len) {
        size_t line = 1;
        for (size_t i = 0; i < end && i < text.len; i++)
            line += text.s[i] == '\n';
        if (root && jerr == json_tokener_success)
            fprintf(stderr,
                    "onegridctl registry: %s line %zu: not valid JSON: text after the "
                    "end\n",
                    path, line);
        else
            fprintf(stderr, "onegridctl registry: %s line %zu: not valid JSON: %s\n", path, line,
                    jerr == json_tokener_continue ? "the file ends inside a value"
                                                  : json_tokener_error_desc(jerr));
        json_object_put(root);
        root = NULL;
    }
    json_tokener_free(tok);
    free(text.s);
    return root;
}

static int load_geojson(PGconn *c, const struct table *t, const char *path, long *rows)
{
    json_object *root, *type, *features;
    struct sb sql = {0}, verts = {0};
    char err[512];
    int rc = -1;
    size_t n;

    *rows = 0;
    if (!(root = read_json(path)))
        return -1;
    if (!json_object_is_type(root, json_type_object) ||
        !json_object_object_get_ex(root, "type", &type) ||
        !json_object_is_type(type, json_type_string) ||
        strcmp(json_object_get_string(type), "FeatureCollection") != 0 ||
        !json_object_object_get_ex(root, "features", &features) ||
        !json_object_is_type(features, json_type_array)) {
        fprintf(stderr,
                "onegridctl registry: %s: not a GeoJSON FeatureCollection with a "
                "\"features\" array\n",
                path);
        goto out;
    }
    sb_printf(&sql, "INSERT INTO pg_temp.%s VALUES ($1, $2, $3)", t->stage);
    n = json_object_array_length(features);
    for (size_t i = 0; i < n; i++) {
        json_object *f = json_object_array_get_idx(features, i), *props, *code, *geom;
        char line[32];
        const char *p[3];
        PGresult *r;
        sb_reset(&verts);
        if (!json_object_is_type(f, json_type_object) ||
            !json_object_object_get_ex(f, "properties", &props) ||
            !json_object_object_get_ex(props, "code", &code) ||
            !json_object_is_type(code, json_type_string)) {
            fprintf(stderr,
                    "onegridctl registry: %s feature %zu: no \"code\" property (the grid's "
                    "15-digit unified code)\n",
                    path, i + 1);
            goto out;
        }
        if (!json_object_object_get_ex(f, "geometry", &geom) ||
            ring(geom, &verts, err, sizeof(err)) != 0) {
            fprintf(stderr, "onegridctl registry: %s feature %zu (grid \"%s\"): %s\n", path, i + 1,
                    json_object_get_string(code),
                    json_object_object_get_ex(f, "geometry", &geom) ? err : "no geometry");
            goto out;
        }
        snprintf(line, sizeof(line), "%zu", i + 1);
        p[0] = line;
        p[1] = json_object_get_string(code);
        p[2] = verts.s;
        r = PQexecParams(c, sql.s, 3, NULL, p, NULL, NULL, 0);
        if (PQresultStatus(r) != PGRES_COMMAND_OK) {
            char what[512];
            snprintf(what, sizeof(what), "%s feature %zu", path, i + 1);
            report(what, c, r);
            PQclear(r);
            goto out;
        }
        PQclear(r);
        (*rows)++;
    }
    rc = 0;
out:
    free(sql.s);
    free(verts.s);
    json_object_put(root);
    return rc;
}

/* ---------------------------------------------------------------------------------------
 * Import */

struct given {
    const char *path;  /* NULL: the table is left alone */
    char *owned;       /* path, when made here */
    const char *where; /* "line" or "feature" */
};

/* SQL pieces over a table's columns: "t.a = i.a AND t.b = i.b" and the like. */
static void keys_equal(struct sb *b, const struct table *t, const char *x, const char *y)
{
    bool first = true;
    for (int j = 0; j < t->ncols; j++)
        if (t->cols[j].key) {
            sb_printf(b, "%s%s.%s = %s.%s", first ? "" : " AND ", x, t->cols[j].name, y,
                      t->cols[j].name);
            first = false;
        }
}

static void key_text(struct sb *b, const struct table *t, const char *x)
{
    sb_printf(b, "concat_ws(' ', ");
    bool first = true;
    for (int j = 0; j < t->ncols; j++)
        if (t->cols[j].key) {
            sb_printf(b, "%s%s.%s::text", first ? "" : ", ", x, t->cols[j].name);
            first = false;
        }
    sb_printf(b, ")");
}

static void values_row(struct sb *b, const struct table *t, const char *x)
{
    bool first = true;
    sb_printf(b, "ROW(");
    for (int j = 0; j < t->ncols; j++)
        if (!t->cols[j].key) {
            sb_printf(b, "%s%s.%s", first ? "" : ", ", x, t->cols[j].name);
            first = false;
        }
    sb_printf(b, ")");
}

/* 'a=1 b=x' for the values of row x. */
static void values_text(struct sb *b, const struct table *t, const char *x)
{
    sb_printf(b, "concat_ws(' '");
    for (int j = 0; j < t->ncols; j++)
        if (!t->cols[j].key)
            sb_printf(b, ", '%s=' || coalesce(%s.%s::text, '')", t->cols[j].name, x,
                      t->cols[j].name);
    sb_printf(b, ")");
}

/* 'a: 1 -> 2, b: x -> y' for the values that differ between rows o and n. */
static void changes_text(struct sb *b, const struct table *t, const char *o, const char *n)
{
    sb_printf(b, "concat_ws(', '");
    for (int j = 0; j < t->ncols; j++)
        if (!t->cols[j].key)
            sb_printf(b,
                      ", CASE WHEN %s.%s IS DISTINCT FROM %s.%s THEN '%s: ' || "
                      "coalesce(%s.%s::text, '(empty)') || ' -> ' || coalesce(%s.%s::text, "
                      "'(empty)') END",
                      o, t->cols[j].name, n, t->cols[j].name, t->cols[j].name, o, t->cols[j].name,
                      n, t->cols[j].name);
    sb_printf(b, ")");
}

struct counts {
    long added, changed, removed, unchanged;
};

/* Prints the rows of r (line, key, text) with a mark; returns how many. */
static long print_rows(PGresult *r, char mark, const struct given *g, bool summary)
{
    long n = PQntuples(r);
    if (summary)
        return n;
    for (long i = 0; i < n; i++) {
        const char *line = PQgetvalue(r, (int)i, 0), *text = PQgetvalue(r, (int)i, 2);
        printf("  %c %s", mark, PQgetvalue(r, (int)i, 1));
        if (*text)
            printf("  %s", text);
        if (*line)
            printf("  (%s %s)", g->where, line);
        putchar('\n');
    }
    return n;
}

static int preview_plain(PGconn *c, const struct table *t, const struct given *g, struct counts *k,
                         bool summary)
{
    struct sb q = {0};
    PGresult *add = NULL, *chg = NULL, *rem = NULL, *same = NULL;
    int rc = -1;

    /* added */
    sb_printf(&q, "SELECT i.line, ");
    key_text(&q, t, "i");
    sb_printf(&q, ", ");
    values_text(&q, t, "i");
    sb_printf(&q, " FROM pg_temp.%s i WHERE NOT EXISTS (SELECT 1 FROM %s t WHERE ", t->stage,
              t->name);
    keys_equal(&q, t, "t", "i");
    sb_printf(&q, ") ORDER BY i.line");
    if (!(add = run(c, t->name, q.s, 0, NULL)))
        goto out;
    /* changed */
    sb_reset(&q);
    sb_printf(&q, "SELECT i.line, ");
    key_text(&q, t, "i");
    sb_printf(&q, ", ");
    changes_text(&q, t, "t", "i");
    sb_printf(&q, " FROM pg_temp.%s i JOIN %s t ON ", t->stage, t->name);
    keys_equal(&q, t, "t", "i");
    sb_printf(&q, " WHERE ");
    values_row(&q, t, "t");
    sb_printf(&q, " IS DISTINCT FROM ");
    values_row(&q, t, "i");
    sb_printf(&q, " ORDER BY i.line");
    if (!(chg = run(c, t->name, q.s, 0, NULL)))
        goto out;
    /* removed */
    sb_reset(&q);
    sb_printf(&q, "SELECT '', ");
    key_text(&q, t, "t");
    sb_printf(&q, ", '' FROM %s t WHERE NOT EXISTS (SELECT 1 FROM pg_temp.%s i WHERE ", t->name,
              t->stage);
    keys_equal(&q, t, "t", "i");
    sb_printf(&q, ") ORDER BY 2");
    if (!(rem = run(c, t->name, q.s, 0, NULL)))
        goto out;
    sb_reset(&q);
    sb_printf(&q, "SELECT count(*) FROM pg_temp.%s i JOIN %s t ON ", t->stage, t->name);
    keys_equal(&q, t, "t", "i");
    sb_printf(&q, " WHERE ");
    values_row(&q, t, "t");
    sb_printf(&q, " IS NOT DISTINCT FROM ");
    values_row(&q, t, "i");
    if (!(same = run(c, t->name, q.s, 0, NULL)))
        goto out;

    k->added = PQntuples(add);
    k->changed = PQntuples(chg);
    k->removed = PQntuples(rem);
    k->unchanged = strtol(PQgetvalue(same, 0, 0), NULL, 10);
    printf("%s (%s): %ld added, %ld changed, %ld removed, %ld unchanged\n", t->name, t->file,
           k->added, k->changed, k->removed, k->unchanged);
    print_rows(add, '+', g, summary);
    print_rows(chg, '~', g, summary);
    print_rows(rem, '-', g, summary);

    rc = 0;
out:
    PQclear(add);
    PQclear(chg);
    PQclear(rem);
    PQclear(same);
    free(q.s);
    return rc;
}

/* Adds the file's rows the table lacks, changes those that differ. */
static void upsert_sql(struct sb *out, const struct table *t)
{
    bool first = true;
    sb_printf(out, "INSERT INTO %s SELECT ", t->name);
    for (int j = 0; j < t->ncols; j++)
        sb_printf(out, "%s%s", j ? ", " : "", t->cols[j].name);
    sb_printf(out, " FROM pg_temp.%s ORDER BY line ON CONFLICT (", t->stage);
    for (int j = 0; j < t->ncols; j++)
        if (t->cols[j].key) {
            sb_printf(out, "%s%s", first ? "" : ", ", t->cols[j].name);
            first = false;
        }
    sb_printf(out, ") DO UPDATE SET ");
    first = true;
    for (int j = 0; j < t->ncols; j++)
        if (!t->cols[j].key) {
            sb_printf(out, "%s%s = EXCLUDED.%s", first ? "" : ", ", t->cols[j].name,
                      t->cols[j].name);
            first = false;
        }
    sb_printf(out, " WHERE ");
    values_row(out, t, t->name);
    sb_printf(out, " IS DISTINCT FROM ");
    values_row(out, t, "EXCLUDED");
}

/* Removes the rows the file lacks. */
static void remove_sql(struct sb *out, const struct table *t)
{
    sb_printf(out, "DELETE FROM %s t WHERE NOT EXISTS (SELECT 1 FROM pg_temp.%s i WHERE ", t->name,
              t->stage);
    keys_equal(out, t, "t", "i");
    sb_printf(out, ")");
}

/* The routing rules' plan: one row per rule_key of the file or in force at $1 (the
 * effective time), with what happens to it:
 *   same     the version in force is what the file says
 *   add      no version in force: version max + 1 from $1
 *   version  changed: the version in force ends at $1, version max + 1 starts there
 *   close    not in the file: the version in force ends at $1
 *   edit     changed, and the version in force starts at $1: changed in place
 *   delete   not in the file, and the version in force starts at $1: deleted
 * (edit and delete only for a version no case or decision names, checked below). */
static const char SQL_RULE_PLAN[] =
    "CREATE TEMP TABLE plan_routing_rule ON COMMIT DROP AS "
    "WITH cur AS (SELECT * FROM og.routing_rule WHERE valid_from <= $1::timestamptz "
    "             AND $1::timestamptz < valid_to), "
    "     top AS (SELECT rule_key, max(version) AS version FROM og.routing_rule GROUP BY 1), "
    "     later AS (SELECT rule_key, min(valid_from) AS at FROM og.routing_rule "
    "               WHERE valid_from > $1::timestamptz GROUP BY 1) "
    "SELECT i.line, coalesce(i.rule_key, c.rule_key) AS rule_key, c.rule_id, "
    "       coalesce(later.at, CASE WHEN c.valid_to <> 'infinity' THEN c.valid_to END) "
    "         AS scheduled, "
    "       c.version AS old_version, coalesce(top.version, 0) + 1 AS new_version, "
    "       CASE WHEN c.rule_id IS NULL THEN 'add' "
    "            WHEN i.rule_key IS NULL THEN CASE WHEN c.valid_from < $1::timestamptz "
    "                                              THEN 'close' ELSE 'delete' END "
    "            WHEN ROW(c.category_code, c.area_prefix, c.unit_code, c.priority, c.note) "
    "                 IS NOT DISTINCT FROM "
    "                 ROW(i.category_code, i.area_prefix, i.unit_code, i.priority, i.note) "
    "                 THEN 'same' "
    "            WHEN c.valid_from < $1::timestamptz THEN 'version' ELSE 'edit' END AS action, "
    "       concat_ws(', ', "
    "         CASE WHEN c.category_code IS DISTINCT FROM i.category_code THEN 'category_code: ' "
    "           || coalesce(c.category_code, '(any)') || ' -> ' "
    "           || coalesce(i.category_code, '(any)') END, "
    "         CASE WHEN c.area_prefix IS DISTINCT FROM i.area_prefix THEN 'area_prefix: ' "
    "           || c.area_prefix || ' -> ' || i.area_prefix END, "
    "         CASE WHEN c.unit_code IS DISTINCT FROM i.unit_code THEN 'unit_code: ' "
    "           || c.unit_code || ' -> ' || i.unit_code END, "
    "         CASE WHEN c.priority IS DISTINCT FROM i.priority THEN 'priority: ' "
    "           || c.priority || ' -> ' || i.priority END, "
    "         CASE WHEN c.note IS DISTINCT FROM i.note THEN 'note: ' "
    "           || coalesce(c.note, '(empty)') || ' -> ' || coalesce(i.note, '(empty)') END) "
    "         AS changes, "
    "       concat_ws(' ', 'category_code=' || coalesce(i.category_code, ''), "
    "         'area_prefix=' || i.area_prefix, 'unit_code=' || i.unit_code, "
    "         'priority=' || i.priority, 'note=' || coalesce(i.note, '')) AS rule_text "
    "  FROM pg_temp.imp_routing_rule i "
    "  FULL JOIN cur c ON c.rule_key = i.rule_key "
    "  LEFT JOIN top ON top.rule_key = coalesce(i.rule_key, c.rule_key) "
    "  LEFT JOIN later ON later.rule_key = coalesce(i.rule_key, c.rule_key)";

static int preview_rules(PGconn *c, const struct table *t, const struct given *g,
                         const char *effective, struct counts *k, bool summary)
{
    const char *p[] = {effective};
    PGresult *r;
    int rc = -1;

    if (exec0(c, t->name, SQL_RULE_PLAN, 1, p))
        return -1;
    /* A rule with a change scheduled after the effective time (a later version, or an end,
     * that an earlier import set): the file says what the rule is from --effective on,
     * not what becomes of that change. Kept as it is, it stays; changed, it is refused. */
    r = run(c, t->name,
            "SELECT rule_key, to_char(scheduled, 'YYYY-MM-DD\"T\"HH24:MI:SSOF'), line "
            "  FROM plan_routing_rule "
            " WHERE scheduled IS NOT NULL AND action <> 'same' ORDER BY rule_key",
            0, NULL);
    if (!r)
        return -1;
    for (int i = 0; i < PQntuples(r); i++)
        fprintf(stderr,
                "onegridctl registry: %s%s%s: routing rule \"%s\" has a change scheduled at %s, "
                "after --effective %s: change it with --effective %s or later\n",
                g->path, *PQgetvalue(r, i, 2) ? " line " : "", PQgetvalue(r, i, 2),
                PQgetvalue(r, i, 0), PQgetvalue(r, i, 1), effective, PQgetvalue(r, i, 1));
    if (PQntuples(r) > 0) {
        PQclear(r);
        return -1;
    }
    PQclear(r);
    /* Versions that would be edited or deleted but that a case or decision followed. */
    r = run(c, t->name,
            "SELECT p.rule_key, p.old_version, p.line, "
            "       (SELECT count(*) FROM og.case WHERE rule_id = p.rule_id) "
            "  FROM plan_routing_rule p "
            " WHERE p.action IN ('edit', 'delete') "
            "   AND (EXISTS (SELECT 1 FROM og.case WHERE rule_id = p.rule_id) "
            "        OR EXISTS (SELECT 1 FROM og.ledger l WHERE l.kind = 'decision' "
            "                   AND l.detail ->> 'rule_id' = p.rule_id::text)) "
            " ORDER BY p.rule_key",
            0, NULL);
    if (!r)
        return -1;
    for (int i = 0; i < PQntuples(r); i++)
        fprintf(stderr,
                "onegridctl registry: %s%s%s: routing rule \"%s\" version %s starts at "
                "--effective %s and cases followed it (%s open or closed now): it cannot be "
                "edited; give a later --effective\n",
                g->path, *PQgetvalue(r, i, 2) ? " line " : "", PQgetvalue(r, i, 2),
                PQgetvalue(r, i, 0), PQgetvalue(r, i, 1), effective, PQgetvalue(r, i, 3));
    if (PQntuples(r) > 0) {
        PQclear(r);
        return -1;
    }
    PQclear(r);

    r = run(c, t->name,
            "SELECT action, coalesce(line::text, ''), rule_key, old_version, new_version, "
            "       changes, rule_text "
            "  FROM plan_routing_rule "
            " ORDER BY CASE action WHEN 'add' THEN 1 WHEN 'version' THEN 2 WHEN 'edit' THEN 2 "
            "          ELSE 3 END, line, rule_key",
            0, NULL);
    if (!r)
        return -1;
    *k = (struct counts){0};
    for (int i = 0; i < PQntuples(r); i++) {
        const char *a = PQgetvalue(r, i, 0);
        if (strcmp(a, "same") == 0)
            k->unchanged++;
        else if (strcmp(a, "add") == 0)
            k->added++;
        else if (strcmp(a, "version") == 0 || strcmp(a, "edit") == 0)
            k->changed++;
        else
            k->removed++;
    }
    printf("%s (%s): %ld added, %ld changed, %ld removed, %ld unchanged (effective %s)\n", t->name,
           t->file, k->added, k->changed, k->removed, k->unchanged, effective);
    for (int i = 0; i < PQntuples(r) && !summary; i++) {
        const char *a = PQgetvalue(r, i, 0), *line = PQgetvalue(r, i, 1);
        const char *key = PQgetvalue(r, i, 2), *ov = PQgetvalue(r, i, 3), *nv = PQgetvalue(r, i, 4);
        if (strcmp(a, "same") == 0)
            continue;
        if (strcmp(a, "add") == 0)
            printf("  + %s  version %s from %s: %s", key, nv, effective, PQgetvalue(r, i, 6));
        else if (strcmp(a, "version") == 0)
            printf("  ~ %s  version %s until %s, version %s from then: %s", key, ov, effective, nv,
                   PQgetvalue(r, i, 5));
        else if (strcmp(a, "edit") == 0)
            printf("  ~ %s  version %s (from %s, no case followed it) changed in place: %s", key,
                   ov, effective, PQgetvalue(r, i, 5));
        else if (strcmp(a, "close") == 0)
            printf("  - %s  version %s ends at %s", key, ov, effective);
        else
            printf("  - %s  version %s (from %s, no case followed it) deleted", key, ov, effective);
        if (*line)
            printf("  (%s %s)", g->where, line);
        putchar('\n');
    }
    PQclear(r);
    rc = 0;
    return rc;
}

static int apply_rules(PGconn *c, const char *effective)
{
    const char *p[] = {effective};
    if (exec0(c, "og.routing_rule",
              "UPDATE og.routing_rule r SET valid_to = $1::timestamptz FROM plan_routing_rule p "
              " WHERE r.rule_id = p.rule_id AND p.action IN ('version', 'close')",
              1, p) ||
        exec0(c, "og.routing_rule",
              "DELETE FROM og.routing_rule r USING plan_routing_rule p "
              " WHERE r.rule_id = p.rule_id AND p.action = 'delete'",
              0, NULL) ||
        exec0(c, "og.routing_rule",
              "UPDATE og.routing_rule r SET category_code = i.category_code, "
              "       area_prefix = i.area_prefix, unit_code = i.unit_code, "
              "       priority = i.priority, note = i.note "
              "  FROM plan_routing_rule p JOIN pg_temp.imp_routing_rule i USING (rule_key) "
              " WHERE r.rule_id = p.rule_id AND p.action = 'edit'",
              0, NULL) ||
        exec0(c, "og.routing_rule",
              "INSERT INTO og.routing_rule (rule_key, version, category_code, area_prefix, "
              "       unit_code, priority, valid_from, note) "
              "SELECT i.rule_key, p.new_version, i.category_code, i.area_prefix, i.unit_code, "
              "       i.priority, $1::timestamptz, i.note "
              "  FROM plan_routing_rule p JOIN pg_temp.imp_routing_rule i USING (rule_key) "
              " WHERE p.action IN ('add', 'version') ORDER BY i.line",
              1, p))
        return -1;
    return 0;
}

/* Checks after the change, inside the transaction: the districts the imported areas and
 * units name exist (og.area's and og.handling_unit's district_code have no foreign key). */
static int check_districts(PGconn *c, const struct given *g)
{
    static const struct {
        int table;               /* index in TABLES */
        const char *what, *area; /* the column holding its area */
    } chk[] = {{1, "area", "code"}, {3, "unit", "area_code"}};
    int bad = 0;
    for (size_t x = 0; x < sizeof(chk) / sizeof(chk[0]); x++) {
        const struct table *t = &TABLES[chk[x].table];
        struct sb q = {0};
        PGresult *r;
        if (!g[chk[x].table].path)
            continue;
        sb_printf(&q,
                  "SELECT i.line, i.%s, i.district_code, "
                  "       NOT EXISTS (SELECT 1 FROM og.area d WHERE d.code = i.district_code "
                  "                   AND d.level IN ('district', 'city')) "
                  "  FROM pg_temp.%s i "
                  " WHERE NOT EXISTS (SELECT 1 FROM og.area d WHERE d.code = i.district_code "
                  "                   AND d.level IN ('district', 'city')) "
                  "    OR (i.%s ~ '^[0-9]' AND left(i.%s, length(i.district_code)) "
                  "        <> i.district_code) "
                  " ORDER BY i.line",
                  "code", t->stage, chk[x].area, chk[x].area);
        r = run(c, t->name, q.s, 0, NULL);
        free(q.s);
        if (!r)
            return -1;
        for (int i = 0; i < PQntuples(r); i++) {
            bool unknown = PQgetvalue(r, i, 3)[0] == 't';
            fprintf(stderr, "onegridctl registry: %s line %s: %s \"%s\": %s district \"%s\"%s\n",
                    g[chk[x].table].path, PQgetvalue(r, i, 0), chk[x].what, PQgetvalue(r, i, 1),
                    unknown ? "unknown" : "not within its", PQgetvalue(r, i, 2),
                    unknown ? " (no area of level district or city has that code)" : "");
            bad++;
        }
        PQclear(r);
    }
    return bad ? -1 : 0;
}

static int find_table(const char *base)
{
    for (int i = 0; i < NTABLES; i++)
        if (strcmp(base, TABLES[i].file) == 0)
            return i;
    return -1;
}

/* Extension requests waiting for a supervisor that supervisors.csv replaces (or removes, or
 * gives an area that had none): the feed told the units registered when the request came,
 * and tells the same units when it ends (og.extension_asked), but dispatch takes a decision
 * from the units registered when it comes: the replaced unit was asked and may no longer
 * decide, the new one may and was never told. Warned of, not refused: the operator may be
 * replacing a unit that is gone. -1 when the query failed. */
static int warn_pending_extensions(PGconn *c, const struct given *g)
{
    int sup = find_table("supervisors.csv");
    PGresult *r;
    if (sup < 0 || !g[sup].path)
        return 0;
    r = run(
        c, "og.supervisor",
        "WITH areas AS ("
        "  SELECT coalesce(o.area_code, i.area_code) AS area_code, o.unit_code AS old_unit, "
        "         i.unit_code AS new_unit "
        "    FROM og.supervisor o FULL JOIN pg_temp.imp_supervisor i ON i.area_code = o.area_code "
        "   WHERE o.unit_code IS DISTINCT FROM i.unit_code) "
        "SELECT k.case_id, a.area_code, coalesce(a.old_unit, 'none'), coalesce(a.new_unit, 'none') "
        "  FROM og.case k JOIN areas a "
        "    ON a.area_code IN (left(k.area_code, 12), left(k.area_code, 9), left(k.area_code, 6)) "
        " WHERE k.paused_at IS NOT NULL "
        " ORDER BY 1, 2",
        0, NULL);
    if (!r)
        return -1;
    for (int i = 0; i < PQntuples(r); i++)
        fprintf(stderr,
                "onegridctl registry: warning: case %s waits for a decision on an extension "
                "request, and %s changes the supervisor of area %s from %s to %s: the feed told "
                "%s of the request, and only %s may decide it from then on; have it decided "
                "first (docs/integrating.md)\n",
                PQgetvalue(r, i, 0), g[sup].path, PQgetvalue(r, i, 1), PQgetvalue(r, i, 2),
                PQgetvalue(r, i, 3), PQgetvalue(r, i, 2), PQgetvalue(r, i, 3));
    PQclear(r);
    return 0;
}

static void known_files(FILE *out)
{
    for (int i = 0; i < NTABLES; i++)
        fprintf(out, "%s%s", i ? ", " : "", TABLES[i].file);
}

/* Which table each argument is: a directory gives every file of TABLES it holds; a file
 * is named after its table. */
static int resolve(int n, char **args, struct given *g)
{
    for (int a = 0; a < n; a++) {
        struct stat st;
        if (stat(args[a], &st) != 0) {
            fprintf(stderr, "onegridctl registry: \"%s\": %s\n", args[a], strerror(errno));
            return -1;
        }
        if (S_ISDIR(st.st_mode)) {
            int found = 0;
            for (int i = 0; i < NTABLES; i++) {
                size_t len = strlen(args[a]) + strlen(TABLES[i].file) + 2;
                char *p = malloc(len);
                if (!p)
                    return -1;
                snprintf(p, len, "%s/%s", args[a], TABLES[i].file);
                if (access(p, F_OK) != 0) {
                    free(p);
                    continue;
                }
                if (g[i].path) {
                    fprintf(stderr, "onegridctl registry: %s given twice\n", TABLES[i].file);
                    free(p);
                    return -1;
                }
                g[i].path = g[i].owned = p;
                found++;
            }
            if (!found) {
                fprintf(stderr, "onegridctl registry: \"%s\" holds none of the registry files (",
                        args[a]);
                known_files(stderr);
                fputs(")\n", stderr);
                return -1;
            }
        } else {
            const char *base = strrchr(args[a], '/');
            int i = find_table(base ? base + 1 : args[a]);
            if (i < 0) {
                fprintf(stderr,
                        "onegridctl registry: \"%s\": a registry file is named after its table: ",
                        args[a]);
                known_files(stderr);
                fputc('\n', stderr);
                return -1;
            }
            if (g[i].path) {
                fprintf(stderr, "onegridctl registry: %s given twice\n", TABLES[i].file);
                return -1;
            }
            g[i].path = args[a];
        }
    }
    return 0;
}

/* Asks dispatch to load the registry again: `systemctl reload onegrid-dispatch`, or
 * SIGHUP to the process a pid file names. */
static int reload(const char *pidfile)
{
    if (pidfile) {
        FILE *f = fopen(pidfile, "r");
        long pid = 0;
        if (!f || fscanf(f, "%ld", &pid) != 1 || pid <= 1) {
            fprintf(stderr, "onegridctl registry: could not read a process id from \"%s\"%s%s\n",
                    pidfile, f ? "" : ": ", f ? "" : strerror(errno));
            if (f)
                fclose(f);
            return -1;
        }
        fclose(f);
        if (kill((pid_t)pid, SIGHUP) != 0) {
            fprintf(stderr, "onegridctl registry: could not signal dispatch (pid %ld): %s\n", pid,
                    strerror(errno));
            return -1;
        }
        printf("sent SIGHUP to dispatch (pid %ld): it logs \"registry reloaded\"\n", pid);
        return 0;
    }
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0) {
        fprintf(stderr, "onegridctl registry: fork: %s\n", strerror(errno));
        return -1;
    }
    if (pid == 0) {
        execlp("systemctl", "systemctl", "reload", "onegrid-dispatch.service", (char *)NULL);
        fprintf(stderr, "onegridctl registry: could not run systemctl: %s\n", strerror(errno));
        _exit(127);
    }
    int st;
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR)
            return -1;
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        fprintf(stderr, "onegridctl registry: `systemctl reload onegrid-dispatch.service` "
                        "failed: the registry is committed; reload dispatch by hand\n");
        return -1;
    }
    printf("reloaded onegrid-dispatch.service: its journal shows \"registry reloaded\"\n");
    return 0;
}

static int cmd_import(int argc, char **argv)
{
    static const struct option opts[] = {{"db", required_argument, NULL, 'd'},
                                         {"dry-run", no_argument, NULL, 'n'},
                                         {"effective", required_argument, NULL, 'e'},
                                         {"summary", no_argument, NULL, 's'},
                                         {"reload", no_argument, NULL, 'r'},
                                         {"pid-file", required_argument, NULL, 'p'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    static const char usage[] =
        "usage: onegridctl registry import --db CONNINFO [--dry-run] [--effective TIME]\n"
        "           [--summary] [--reload | --pid-file FILE] DIR|FILE...\n"
        "  makes each registry table given (DIR/areas.csv, ... DIR/grids.geojson; or files\n"
        "  named so) what its file says, in one transaction, after printing what is added,\n"
        "  changed and removed\n"
        "  --dry-run          print what would change, write nothing\n"
        "  --effective TIME   changed routing rules take effect at TIME (default now; a\n"
        "                     timestamp like 2027-01-01T00:00:00+08:00, or -infinity)\n"
        "  --summary          counts per table only, not every row\n"
        "  --reload           then `systemctl reload onegrid-dispatch.service`\n"
        "  --pid-file FILE    then send SIGHUP to the dispatch whose process id FILE holds\n";
    const char *conninfo = NULL, *effective_arg = "now", *pidfile = NULL;
    bool dry = false, summary = false, do_reload = false;
    struct given g[NTABLES] = {{0}};
    struct counts k[NTABLES] = {{0}};
    struct sb apply = {0};
    char effective[128], err[1024];
    PGconn *c = NULL;
    PGresult *r;
    int ch, rc = OG_EXIT_FAIL;
    long changes = 0;

    optind = 1;
    while ((ch = getopt_long(argc, argv, "d:ne:srp:h", opts, NULL)) != -1) {
        switch (ch) {
        case 'd':
            conninfo = optarg;
            break;
        case 'n':
            dry = true;
            break;
        case 'e':
            effective_arg = optarg;
            break;
        case 's':
            summary = true;
            break;
        case 'r':
            do_reload = true;
            break;
        case 'p':
            pidfile = optarg;
            break;
        case 'h':
            fputs(usage, stdout);
            return OG_EXIT_OK;
        default:
            fputs(usage, stderr);
            return OG_EXIT_USAGE;
        }
    }
    if (!conninfo || optind >= argc || (do_reload && pidfile)) {
        fputs(usage, stderr);
        return OG_EXIT_USAGE;
    }
    if (resolve(argc - optind, argv + optind, g) != 0) {
        rc = OG_EXIT_USAGE;
        goto out;
    }
    for (int i = 0; i < NTABLES; i++)
        g[i].where = TABLES[i].kind == GRIDS ? "feature" : "line";

    if (!(c = og_db_connect(conninfo, "onegridctl registry", err, sizeof(err)))) {
        fprintf(stderr, "onegridctl registry: %s\n", err);
        goto out;
    }
    if (exec0(c, "begin", "BEGIN", 0, NULL))
        goto out;
    if (exec0(c, "set role " OWNER " (connect as the superuser or a member of " OWNER ")",
              "SET LOCAL ROLE " OWNER, 0, NULL))
        goto out;
    {
        /* One import at a time: a second one waits, then sees what the first committed.
         * dispatch's reads go on (SHARE ROW EXCLUSIVE conflicts with writes only). */
        struct sb q = {0};
        int lrc;
        sb_printf(&q, "LOCK TABLE ");
        for (int i = 0, n = 0; i < NTABLES; i++)
            if (g[i].path)
                sb_printf(&q, "%s%s", n++ ? ", " : "", TABLES[i].name);
        sb_printf(&q, " IN SHARE ROW EXCLUSIVE MODE");
        lrc = exec0(c, "lock", q.s, 0, NULL);
        free(q.s);
        if (lrc)
            goto out;
    }
    {
        const char *p[] = {effective_arg};
        /* Whole seconds: dispatch compares a rule's bounds in seconds. */
        r = run(c, "--effective",
                "SELECT CASE WHEN isfinite(t) THEN to_char(date_trunc('second', t), "
                "'YYYY-MM-DD\"T\"HH24:MI:SSOF') ELSE t::text END "
                "FROM (SELECT $1::timestamptz AS t) x",
                1, p);
        if (!r)
            goto out;
        snprintf(effective, sizeof(effective), "%s", PQgetvalue(r, 0, 0));
        PQclear(r);
        if (strcmp(effective, "infinity") == 0) {
            fprintf(stderr, "onegridctl registry: --effective infinity: a rule would never "
                            "take effect\n");
            rc = OG_EXIT_USAGE;
            goto out;
        }
    }

    /* Stage every file first: a malformed one stops the import before any preview. */
    for (int i = 0; i < NTABLES; i++) {
        const struct table *t = &TABLES[i];
        struct sb q = {0};
        long rows = 0;
        int lrc;
        if (!g[i].path)
            continue;
        sb_printf(&q, "CREATE TEMP TABLE %s (line integer", t->stage);
        for (int j = 0; j < t->ncols; j++)
            sb_printf(&q, ", %s %s", t->cols[j].name, t->cols[j].type);
        sb_printf(&q, ") ON COMMIT DROP");
        lrc = exec0(c, t->name, q.s, 0, NULL);
        free(q.s);
        if (lrc)
            goto out;
        lrc = t->kind == GRIDS ? load_geojson(c, t, g[i].path, &rows)
                               : load_csv(c, t, g[i].path, &rows);
        if (lrc)
            goto out;
        /* The same key twice. */
        q = (struct sb){0};
        sb_printf(&q, "SELECT min(line), max(line), ");
        key_text(&q, t, "i");
        sb_printf(&q, " FROM pg_temp.%s i GROUP BY ", t->stage);
        bool first = true;
        for (int j = 0; j < t->ncols; j++)
            if (t->cols[j].key) {
                sb_printf(&q, "%s%s", first ? "" : ", ", t->cols[j].name);
                first = false;
            }
        sb_printf(&q, " HAVING count(*) > 1 ORDER BY 1 LIMIT 1");
        r = run(c, t->name, q.s, 0, NULL);
        free(q.s);
        if (!r)
            goto out;
        if (PQntuples(r) == 1) {
            fprintf(stderr, "onegridctl registry: %s %s %s: \"%s\" again (first at %s %s)\n",
                    g[i].path, g[i].where, PQgetvalue(r, 0, 1), PQgetvalue(r, 0, 2), g[i].where,
                    PQgetvalue(r, 0, 0));
            PQclear(r);
            goto out;
        }
        PQclear(r);
    }

    /* The preview, before anything is written. */
    for (int i = 0; i < NTABLES; i++) {
        if (!g[i].path)
            continue;
        if (TABLES[i].kind == RULES) {
            if (preview_rules(c, &TABLES[i], &g[i], effective, &k[i], summary))
                goto out;
        } else if (preview_plain(c, &TABLES[i], &g[i], &k[i], summary)) {
            goto out;
        }
        changes += k[i].added + k[i].changed + k[i].removed;
    }
    fflush(stdout);
    if (warn_pending_extensions(c, g))
        goto out;

    /* Added and changed rows in the order of the foreign keys, removed ones in reverse. */
    for (int i = 0; i < NTABLES; i++) {
        if (!g[i].path)
            continue;
        if (TABLES[i].kind == RULES) {
            if (apply_rules(c, effective))
                goto out;
            continue;
        }
        sb_reset(&apply);
        upsert_sql(&apply, &TABLES[i]);
        if (exec0(c, g[i].path, apply.s, 0, NULL))
            goto out;
    }
    for (int i = NTABLES - 1; i >= 0; i--) {
        if (!g[i].path || TABLES[i].kind == RULES)
            continue;
        sb_reset(&apply);
        remove_sql(&apply, &TABLES[i]);
        if (exec0(c, g[i].path, apply.s, 0, NULL))
            goto out;
    }
    if (check_districts(c, g))
        goto out;

    if (dry) {
        exec0(c, "rollback", "ROLLBACK", 0, NULL);
        printf("dry run: %ld change%s checked, nothing written\n", changes,
               changes == 1 ? "" : "s");
        rc = OG_EXIT_OK;
        goto out;
    }
    if (exec0(c, "commit", "COMMIT", 0, NULL))
        goto out;
    printf("committed: %ld change%s\n", changes, changes == 1 ? "" : "s");
    rc = OG_EXIT_OK;
    if (changes > 0 && (do_reload || pidfile) && reload(pidfile) != 0)
        rc = OG_EXIT_FAIL;
    else if (changes == 0 && (do_reload || pidfile))
        printf("nothing changed: dispatch not reloaded\n");
out:
    if (rc != OG_EXIT_OK && c)
        fprintf(stderr, "onegridctl registry: nothing written\n");
    PQfinish(c);
    free(apply.s);
    for (int i = 0; i < NTABLES; i++)
        free(g[i].owned);
    return rc;
}

/* ---------------------------------------------------------------------------------------
 * Export */

/* One CSV field: quoted only when it must be (a comma, quote, line break, or spaces at an
 * end, which a reader would trim). */
static void csv_field(FILE *f, const char *v, bool first)
{
    size_t n = strlen(v);
    if (!first)
        fputc(',', f);
    if (strpbrk(v, ",\"\r\n") ||
        (n && (isspace((unsigned char)v[0]) || isspace((unsigned char)v[n - 1]))))
        csv_fwrite(f, v, n);
    else
        fputs(v, f);
}

static FILE *open_out(const char *dir, const char *file, char *path, size_t len)
{
    FILE *f;
    snprintf(path, len, "%s/%s", dir, file);
    if (!(f = fopen(path, "w")))
        fprintf(stderr, "onegridctl registry: could not create \"%s\": %s\n", path,
                strerror(errno));
    return f;
}

static int close_out(FILE *f, const char *path)
{
    if (ferror(f) | fclose(f)) {
        fprintf(stderr, "onegridctl registry: could not write \"%s\": %s\n", path, strerror(errno));
        return -1;
    }
    return 0;
}

static int export_csv(PGconn *c, const struct table *t, const char *dir, const char *at)
{
    struct sb q = {0};
    char path[4096];
    const char *p[] = {at};
    PGresult *r;
    FILE *f;
    bool first = true;
    int rc;

    sb_printf(&q, "SELECT ");
    for (int j = 0; j < t->ncols; j++)
        sb_printf(&q, "%s%s::text", j ? ", " : "", t->cols[j].name);
    sb_printf(&q, " FROM %s", t->name);
    if (t->kind == RULES)
        sb_printf(&q, " WHERE valid_from <= $1::timestamptz AND $1::timestamptz < valid_to");
    else
        sb_printf(&q, " WHERE $1::text IS NOT NULL");
    sb_printf(&q, " ORDER BY ");
    for (int j = 0; j < t->ncols; j++)
        if (t->cols[j].key) {
            sb_printf(&q, "%s%s%s", first ? "" : ", ", t->cols[j].name,
                      strcmp(t->cols[j].type, "text") == 0 ? " COLLATE \"C\"" : "");
            first = false;
        }
    r = run(c, t->name, q.s, 1, p);
    free(q.s);
    if (!r)
        return -1;
    if (!(f = open_out(dir, t->file, path, sizeof(path)))) {
        PQclear(r);
        return -1;
    }
    for (int j = 0; j < t->ncols; j++)
        csv_field(f, t->cols[j].name, j == 0);
    fputc('\n', f);
    for (int i = 0; i < PQntuples(r); i++) {
        for (int j = 0; j < t->ncols; j++)
            csv_field(f, PQgetisnull(r, i, j) ? "" : PQgetvalue(r, i, j), j == 0);
        fputc('\n', f);
    }
    printf("%s: %d rows of %s\n", path, PQntuples(r), t->name);
    PQclear(r);
    rc = close_out(f, path);
    return rc;
}

/* grids.geojson: one Feature per line, the numbers as PostgreSQL prints them (the shortest
 * text that reads back as the same double). */
static int export_grids(PGconn *c, const struct table *t, const char *dir)
{
    char path[4096];
    PGresult *r;
    FILE *f;
    int n;

    r = run(c, t->name,
            "SELECT b.area_code, a.name, array_to_string(b.vertices, ' ') "
            "  FROM og.grid_boundary b JOIN og.area a ON a.code = b.area_code "
            " ORDER BY b.area_code COLLATE \"C\"",
            0, NULL);
    if (!r)
        return -1;
    if (!(f = open_out(dir, t->file, path, sizeof(path)))) {
        PQclear(r);
        return -1;
    }
    n = PQntuples(r);
    fputs("{\"type\": \"FeatureCollection\", \"features\": [\n", f);
    for (int i = 0; i < n; i++) {
        json_object *feat = json_object_new_object(), *props = json_object_new_object(),
                    *geom = json_object_new_object(), *rings = json_object_new_array(),
                    *ring = json_object_new_array(), *first = NULL;
        char *nums = strdup(PQgetvalue(r, i, 2)), *save = NULL, *x, *y;
        json_object_object_add(feat, "type", json_object_new_string("Feature"));
        json_object_object_add(props, "code", json_object_new_string(PQgetvalue(r, i, 0)));
        json_object_object_add(props, "name", json_object_new_string(PQgetvalue(r, i, 1)));
        json_object_object_add(feat, "properties", props);
        for (x = strtok_r(nums, " ", &save); x && (y = strtok_r(NULL, " ", &save));
             x = strtok_r(NULL, " ", &save)) {
            json_object *pos = json_object_new_array();
            json_object_array_add(pos, json_object_new_double_s(strtod(x, NULL), x));
            json_object_array_add(pos, json_object_new_double_s(strtod(y, NULL), y));
            if (!first)
                first = pos;
            json_object_array_add(ring, pos);
        }
        if (first) /* GeoJSON closes a ring with its first position */
            json_object_array_add(ring, json_object_get(first));
        json_object_array_add(rings, ring);
        json_object_object_add(geom, "type", json_object_new_string("Polygon"));
        json_object_object_add(geom, "coordinates", rings);
        json_object_object_add(feat, "geometry", geom);
        fprintf(f, "%s%s\n",
                json_object_to_json_string_ext(feat, JSON_C_TO_STRING_SPACED |
                                                         JSON_C_TO_STRING_NOSLASHESCAPE),
                i + 1 < n ? "," : "");
        json_object_put(feat);
        free(nums);
    }
    fputs("]}\n", f);
    printf("%s: %d features of %s\n", path, n, t->name);
    PQclear(r);
    return close_out(f, path);
}

static int cmd_export(int argc, char **argv)
{
    static const struct option opts[] = {{"db", required_argument, NULL, 'd'},
                                         {"at", required_argument, NULL, 'a'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    static const char usage[] =
        "usage: onegridctl registry export --db CONNINFO [--at TIME] DIR\n"
        "  writes every registry table to DIR (areas.csv, ... grids.geojson), the files\n"
        "  `onegridctl registry import` reads; routing_rules.csv holds the rules in force\n"
        "  at TIME (default now)\n";
    const char *conninfo = NULL, *at = "now", *dir;
    char err[1024];
    PGconn *c = NULL;
    PGresult *r;
    int ch, rc = OG_EXIT_FAIL;

    optind = 1;
    while ((ch = getopt_long(argc, argv, "d:a:h", opts, NULL)) != -1) {
        switch (ch) {
        case 'd':
            conninfo = optarg;
            break;
        case 'a':
            at = optarg;
            break;
        case 'h':
            fputs(usage, stdout);
            return OG_EXIT_OK;
        default:
            fputs(usage, stderr);
            return OG_EXIT_USAGE;
        }
    }
    if (!conninfo || optind + 1 != argc) {
        fputs(usage, stderr);
        return OG_EXIT_USAGE;
    }
    dir = argv[optind];
    if (mkdir(dir, 0777) != 0 && errno != EEXIST) {
        fprintf(stderr, "onegridctl registry: could not create \"%s\": %s\n", dir, strerror(errno));
        return OG_EXIT_FAIL;
    }
    if (!(c = og_db_connect(conninfo, "onegridctl registry", err, sizeof(err)))) {
        fprintf(stderr, "onegridctl registry: %s\n", err);
        return OG_EXIT_FAIL;
    }
    /* One snapshot for every file; dates and numbers in the forms import reads back. */
    if (exec0(c, "begin", "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", 0, NULL) ||
        exec0(c, "set", "SET LOCAL DateStyle = ISO", 0, NULL) ||
        exec0(c, "set", "SET LOCAL extra_float_digits = 1", 0, NULL))
        goto out;
    for (int i = 0; i < NTABLES; i++) {
        int x = TABLES[i].kind == GRIDS ? export_grids(c, &TABLES[i], dir)
                                        : export_csv(c, &TABLES[i], dir, at);
        if (x)
            goto out;
    }
    {
        const char *p[] = {at};
        r = run(c, "og.routing_rule",
                "SELECT rule_key, version, valid_from FROM og.routing_rule "
                "WHERE valid_from > $1::timestamptz ORDER BY valid_from, rule_key",
                1, p);
        if (!r)
            goto out;
        for (int i = 0; i < PQntuples(r); i++)
            fprintf(stderr,
                    "onegridctl registry: note: routing rule \"%s\" version %s takes effect at "
                    "%s and is not in routing_rules.csv (an import keeps it; changing the "
                    "rule needs an --effective from then)\n",
                    PQgetvalue(r, i, 0), PQgetvalue(r, i, 1), PQgetvalue(r, i, 2));
        PQclear(r);
    }
    rc = OG_EXIT_OK;
out:
    PQfinish(c);
    return rc;
}

int og_cmd_registry(int argc, char **argv)
{
    static const char usage[] =
        "usage: onegridctl registry import --db CONNINFO [--dry-run] [--effective TIME]\n"
        "           [--summary] [--reload | --pid-file FILE] DIR|FILE...\n"
        "       onegridctl registry export --db CONNINFO [--at TIME] DIR\n"
        "Run `onegridctl registry import --help` or `... export --help` for details.\n";
    if (argc >= 2 && strcmp(argv[1], "import") == 0)
        return cmd_import(argc - 1, argv + 1);
    if (argc >= 2 && strcmp(argv[1], "export") == 0)
        return cmd_export(argc - 1, argv + 1);
    if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        fputs(usage, stdout);
        return OG_EXIT_OK;
    }
    fputs(usage, stderr);
    return OG_EXIT_USAGE;
}
