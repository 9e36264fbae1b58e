/* The daemons' configuration: one INI file (parsed by libinih) shared by all three, with
 * a section per daemon and a [database] section for defaults. The struct owns every
 * string it returns; they live until og_config_destroy(). */
#ifndef OG_CONFIG_H
#define OG_CONFIG_H

#include <stddef.h>

struct og_config;

/* Loads path. Returns NULL and fills err on a missing file or a syntax error (with the
 * line number). */
struct og_config *og_config_load(const char *path, char *err, size_t errlen);
void og_config_destroy(struct og_config **cfg);

/* The value of key in section, or NULL. */
const char *og_config_get(const struct og_config *cfg, const char *section, const char *key);
/* The value, or def when absent. */
const char *og_config_str(const struct og_config *cfg, const char *section, const char *key,
                          const char *def);
/* An integer in [min, max], or def when absent. Returns 0, or -EINVAL with err filled
 * ("[archive] batch_max: \"x\" is not an integer in 1..100000"). */
int og_config_int(const struct og_config *cfg, const char *section, const char *key, long def,
                  long min, long max, long *out, char *err, size_t errlen);
/* Keys of section that are not in the NULL-terminated list known: the first one is
 * written to err and -ENOENT returned, so that a typo is an error, not a silent default. */
int og_config_check_keys(const struct og_config *cfg, const char *section, const char *const *known,
                         char *err, size_t errlen);

/* Sections of the file that are not in the NULL-terminated list known: the first one is
 * written to err ("line 12: [dispach]: unknown section") and -ENOENT returned. A
 * misspelled section would otherwise leave its daemon on defaults without a word. */
int og_config_check_sections(const struct og_config *cfg, const char *const *known, char *err,
                             size_t errlen);

#endif
