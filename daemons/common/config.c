#include "config.h"

#include <errno.h>
#include <stdbool.h>
#include <ini.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct entry {
    char *section;
    char *key;
    char *value;
    struct entry *next;
};

struct og_config {
    struct entry *head;
};

static int on_entry(void *user, const char *section, const char *key, const char *value)
{
    struct og_config *cfg = user;
    struct entry *e = calloc(1, sizeof(*e));
    if (!e)
        return 0;
    e->section = strdup(section);
    e->key = strdup(key);
    e->value = strdup(value);
    e->next = cfg->head;
    cfg->head = e;
    return e->section && e->key && e->value;
}

/* libinih as packaged reads at most INI_MAX_LINE (200) bytes of a line and parses the
 * rest as a new line, silently. Refuse such lines instead of misreading them. */
static int check_line_lengths(const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    int c, line = 1;
    long len = 0;
    if (!f)
        return 0; /* ini_parse reports it */
    while ((c = getc(f)) != EOF) {
        if (c == '\n') {
            line++, len = 0;
            continue;
        }
        if (++len >= INI_MAX_LINE - 1) {
            snprintf(err, errlen,
                     "\"%s\" line %d is longer than %d characters, which the configuration "
                     "parser cannot read; shorten it (a long conninfo can name a service in "
                     "pg_service.conf: conninfo = service=onegrid)",
                     path, line, INI_MAX_LINE - 2);
            fclose(f);
            return -E2BIG;
        }
    }
    fclose(f);
    return 0;
}

struct og_config *og_config_load(const char *path, char *err, size_t errlen)
{
    struct og_config *cfg;
    int rc;

    if (check_line_lengths(path, err, errlen) < 0)
        return NULL;
    cfg = calloc(1, sizeof(*cfg));

    if (!cfg) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    rc = ini_parse(path, on_entry, cfg);
    if (rc == 0)
        return cfg;
    if (rc == -1)
        snprintf(err, errlen, "could not open config file \"%s\": %s", path, strerror(errno));
    else if (rc == -2)
        snprintf(err, errlen, "out of memory reading \"%s\"", path);
    else
        snprintf(err, errlen, "syntax error in \"%s\" at line %d", path, rc);
    og_config_destroy(&cfg);
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
