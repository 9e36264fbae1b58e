/* libFuzzer target: the daemons' configuration reader (daemons/common/config.c). The
 * input is the content of a configuration file: written to a scratch file, loaded with
 * og_config_load, then read as the daemons read it (og_config_get, og_config_str,
 * og_config_int, og_config_check_keys on each section they know). */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "fuzz.h"

/* The sections and keys the daemons read (their main.c), and a section none reads. */
static const char *const sections[] = {"database", "intake", "dispatch", "archive", "x"};
static const char *const keys[] = {
    "conninfo",
    "listen",
    "dispatch",
    "archive",
    "shard",
    "name",
    "credit",
    "window",
    "resend_ms",
    "drain_ms",
    "batch_max",
    "batch_wait_ms",
    "max_event_bytes",
    "max_event_age_days",
    "curve_secret_key_file",
    "curve_publishers_file",
    NULL,
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = og_fuzz_file("onegrid.conf", data, size);
    char err[1024] = "";
    struct og_config *cfg = og_config_load(path, err, sizeof(err));
    long n;

    if (!cfg) {
        if (!*err)
            og_fuzz_fail("og_config_load failed without saying why");
        return 0;
    }
    for (size_t s = 0; s < sizeof(sections) / sizeof(sections[0]); s++) {
        for (const char *const *k = keys; *k; k++) {
            const char *v = og_config_get(cfg, sections[s], *k);
            if (v != og_config_str(cfg, sections[s], *k, NULL))
                og_fuzz_fail("og_config_str and og_config_get disagree on [%s] %s", sections[s],
                             *k);
            (void)strlen(v ? v : "");
            err[0] = '\0';
            if (og_config_int(cfg, sections[s], *k, 7, 1, 100000, &n, err, sizeof(err)) == 0 &&
                (n < 1 || n > 100000))
                og_fuzz_fail("og_config_int gave %ld outside 1..100000", n);
        }
        og_config_check_keys(cfg, sections[s], keys, err, sizeof(err));
    }
    og_config_destroy(&cfg);
    if (cfg)
        og_fuzz_fail("og_config_destroy left the pointer set");
    return 0;
}
