#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <ini.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "util.h"

struct entry {
    char *section;
    char *key;
    char *value;
    struct entry *next;
};

struct og_config {
    struct entry *head;
};

/* One load: the file, what libinih is reading, and the first error found in a callback. */
struct load {
    struct og_config *cfg;
    FILE *f;
    const char *path;
    int line;       /* number of the line last read */
    bool after_key; /* a key was set since the last section line */
    bool continues; /* the line last read continues the value of that key */
    char *err;
    size_t errlen;
    int error;      /* 0, or -errno once err is filled */
    int error_line; /* the line err names */
};

/* libinih's reader: fgets, following each line as libinih (r55, multi-line values on)
 * will take it. check_lines has made sure every line fits, so each call reads one
 * whole line. */
static char *read_line(char *buf, int size, void *arg)
{
    struct load *l = arg;
    char *s = fgets(buf, size, l->f), *start;

    if (!s)
        return NULL;
    l->line++;
    start = s;
    if (l->line == 1 && strncmp(start, "\xEF\xBB\xBF", 3) == 0)
        start += 3;
    while (isspace((unsigned char)*start))
        start++;
    /* Comments and blank lines first; then, with a key set in this section, any indented
     * line continues its value; then sections. */
    l->continues = false;
    if (!*start || strchr(INI_START_COMMENT_PREFIXES, *start))
        return s;
    if (l->after_key && start > s)
        l->continues = true;
    else if (*start == '[')
        l->after_key = false;
    return s;
}

static int out_of_memory(struct load *l)
{
    snprintf(l->err, l->errlen, "out of memory reading \"%s\"", l->path);
    l->error = -ENOMEM;
    return 0;
}

static int on_entry(void *user, const char *section, const char *key, const char *value)
{
    struct load *l = user;
    struct og_config *cfg = l->cfg;
    struct entry *e;
    char *joined;

    if (l->error)
        return 0;
    l->after_key = true;
    /* An indented line continues the value above (as the shipped onegrid.conf says), joined
     * with a space: libinih hands it over as the same key again, which must add to the
     * value, not replace it. */
    if (l->continues && cfg->head) {
        /* libinih r55 ends a value at an inline comment (" ;"), but not a continued one. */
        int n = 0;
        while (value[n] && !(value[n] == ';' && n > 0 && isspace((unsigned char)value[n - 1])))
            n++;
        while (n > 0 && isspace((unsigned char)value[n - 1]))
            n--;
        if (asprintf(&joined, "%s %.*s", cfg->head->value, n, value) < 0)
            return out_of_memory(l);
        free(cfg->head->value);
        cfg->head->value = joined;
        return 1;
    }
    /* A key set twice in one section is a mistake (which value was meant?): refused, not
     * silently the last one. */
    for (e = cfg->head; e; e = e->next)
        if (strcmp(e->section, section) == 0 && strcmp(e->key, key) == 0) {
            snprintf(l->err, l->errlen, "\"%s\" line %d: [%s] %s is set twice", l->path, l->line,
                     section, key);
            l->error = -EINVAL;
            l->error_line = l->line;
            return 0;
        }
    if (!(e = calloc(1, sizeof(*e))))
        return out_of_memory(l);
    e->next = cfg->head;
    cfg->head = e;
    if (!(e->section = strdup(section)) || !(e->key = strdup(key)) || !(e->value = strdup(value)))
        return out_of_memory(l);
    return 1;
}

/* libinih as packaged reads at most INI_MAX_LINE (200) bytes of a line and parses the
 * rest as a new line, silently; and it ends a line at a NUL byte. Refuse such lines
 * instead of misreading them. And the file is UTF-8, comments too: values reach the logs
 * and the database (archive's name is stored with each batch). */
static int check_lines(FILE *f, const char *path, char *err, size_t errlen)
{
    int c, line = 1;
    long len = 0;
    uint8_t text[INI_MAX_LINE];
    for (;;) {
        c = getc(f);
        if (c == '\n' || c == EOF) {
            if (!og_utf8_valid(text, (size_t)len)) {
                snprintf(err, errlen, "\"%s\" line %d is not valid UTF-8", path, line);
                return -EINVAL;
            }
            if (c == EOF)
                break;
            line++, len = 0;
            continue;
        }
        if (c == '\0') {
            snprintf(err, errlen, "\"%s\" line %d contains a NUL byte", path, line);
            return -EINVAL;
        }
        text[len] = (uint8_t)c;
        if (++len >= INI_MAX_LINE - 1) {
            snprintf(err, errlen,
                     "\"%s\" line %d is longer than %d characters, which the configuration "
                     "parser cannot read; shorten it (a long conninfo can name a service in "
                     "pg_service.conf: conninfo = service=onegrid)",
                     path, line, INI_MAX_LINE - 2);
            return -E2BIG;
        }
    }
    return 0;
}

struct og_config *og_config_load(const char *path, char *err, size_t errlen)
{
    struct load l = {.path = path, .err = err, .errlen = errlen};
    int rc;

    if (!(l.f = fopen(path, "r"))) {
        snprintf(err, errlen, "could not open config file \"%s\": %s", path, strerror(errno));
        return NULL;
    }
    if (check_lines(l.f, path, err, errlen) < 0)
        goto fail;
    /* A read error looks like the end of the file to getc and to libinih: a directory
     * (fopen takes one) or an I/O error would read as an empty or cut configuration. */
    if (ferror(l.f) || fseek(l.f, 0, SEEK_SET) != 0) {
        snprintf(err, errlen, "could not read config file \"%s\": %s", path, strerror(errno));
        goto fail;
    }
    if (!(l.cfg = calloc(1, sizeof(*l.cfg)))) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    rc = ini_parse_stream(read_line, &l, on_entry, &l);
    if (ferror(l.f)) {
        snprintf(err, errlen, "could not read config file \"%s\": %s", path, strerror(errno));
        goto fail;
    }
    /* libinih reads on past a line it cannot parse (rc: the first line it failed, ours
     * included, since on_entry returning 0 counts as one), so a later line's error (a key set
     * twice, because the lines after a broken [section] header still belong to the section before)
     * must not hide it. */
    if (rc > 0 && (!l.error || (l.error_line && rc < l.error_line))) {
        snprintf(err, errlen,
                 "syntax error in \"%s\" at line %d: not a [section] header, a key = value, "
                 "a comment or an indented continuation",
                 path, rc);
        goto fail;
    }
    if (l.error)
        goto fail; /* err says why */
    if (rc != 0) {
        snprintf(err, errlen, "syntax error in \"%s\" at line %d", path, rc);
        goto fail;
    }
    fclose(l.f);
    return l.cfg;
fail:
    og_config_destroy(&l.cfg);
    fclose(l.f);
    return NULL;
}

void og_config_destroy(struct og_config **cfgp)
{
    struct og_config *cfg = *cfgp;
    if (!cfg)
        return;
    for (struct entry *e = cfg->head, *next; e; e = next) {
        next = e->next;
        free(e->section);
        free(e->key);
        free(e->value);
        free(e);
    }
    free(cfg);
    *cfgp = NULL;
}

const char *og_config_get(const struct og_config *cfg, const char *section, const char *key)
{
    /* Entries are prepended, so the first match is the last one in the file. */
    for (const struct entry *e = cfg->head; e; e = e->next)
        if (strcmp(e->section, section) == 0 && strcmp(e->key, key) == 0)
            return e->value;
    return NULL;
}

const char *og_config_str(const struct og_config *cfg, const char *section, const char *key,
                          const char *def)
{
    const char *v = og_config_get(cfg, section, key);
    return v ? v : def;
}

int og_config_int(const struct og_config *cfg, const char *section, const char *key, long def,
                  long min, long max, long *out, char *err, size_t errlen)
{
    const char *v = og_config_get(cfg, section, key);
    char *end;
    long n;

    if (!v) {
        *out = def;
        return 0;
    }
    errno = 0;
    n = strtol(v, &end, 10);
    if (errno || end == v || *end != '\0' || n < min || n > max) {
        snprintf(err, errlen, "[%s] %s: \"%s\" is not an integer in %ld..%ld", section, key, v, min,
                 max);
        return -EINVAL;
    }
    *out = n;
    return 0;
}

int og_config_check_keys(const struct og_config *cfg, const char *section, const char *const *known,
                         char *err, size_t errlen)
{
    for (const struct entry *e = cfg->head; e; e = e->next) {
        bool found = false;
        if (strcmp(e->section, section) != 0)
            continue;
        for (const char *const *k = known; *k && !found; k++)
            found = strcmp(*k, e->key) == 0;
        if (!found) {
            snprintf(err, errlen, "[%s] %s: unknown setting", section, e->key);
            return -ENOENT;
        }
    }
    return 0;
}

int og_config_check_sections(const struct og_config *cfg, const char *const *known, char *err,
                             size_t errlen)
{
    for (const struct entry *e = cfg->head; e; e = e->next) {
        size_t i;
        for (i = 0; known[i] && strcmp(known[i], e->section) != 0; i++)
            ;
        if (!known[i]) {
            size_t n = (size_t)snprintf(err, errlen, "[%s]: unknown section (known:", e->section);
            for (i = 0; known[i] && n < errlen; i++)
                n += (size_t)snprintf(err + n, errlen - n, " [%s]", known[i]);
            if (n < errlen)
                snprintf(err + n, errlen - n, ")");
            return -ENOENT;
        }
    }
    return 0;
}
