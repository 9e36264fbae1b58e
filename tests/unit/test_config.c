/* Unit tests for daemons/common/config.c: INI files written to a private temporary
 * directory, read back through og_config_*. */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"
#include "util.h"

static char dir[64];

/* Writes text to dir/name; returns the path in a static buffer. */
static const char *write_file(const char *name, const char *text)
{
    static char path[128];
    FILE *f;
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    f = fopen(path, "w");
    if (!f)
        fail_msg("could not write \"%s\"", path);
    fputs(text, f);
    fclose(f);
    return path;
}

/* Writes len bytes to dir/name (NUL bytes too); returns the path in a static buffer. */
static const char *write_bytes(const char *name, const void *data, size_t len)
{
    static char path[128];
    FILE *f;
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    f = fopen(path, "w");
    if (!f || fwrite(data, 1, len, f) != len)
        fail_msg("could not write \"%s\"", path);
    fclose(f);
    return path;
}

static int setup_dir(void **state)
{
    snprintf(dir, sizeof(dir), "/tmp/og-test-config-XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

/* Removes every file a test wrote (whatever its name), then the directory. */
static int remove_dir(void **state)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char path[PATH_MAX];
    if (d) {
        while ((e = readdir(d)))
            if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) {
                snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
                if (unlink(path) != 0)
                    rmdir(path);
            }
        closedir(d);
    }
    return rmdir(dir);
}

static const char good_ini[] = "; onegrid test configuration\n"
                               "# a hash comment too\n"
                               "[database]\n"
                               "conninfo = dbname=onegrid host=/run/postgresql\n"
                               "\n"
                               "[intake]\n"
                               "bind = tcp://127.0.0.1:5555\n"
                               "max_event_bytes = 65536\n"
                               "max_age_days = 30 ; inline comment\n"
                               "negative = -5\n"
                               "hex = 0x10\n"
                               "word = many\n"
                               "trailing = 12abc\n"
                               "empty =\n"
                               "huge = 99999999999999999999\n"
                               "name = 网格 intake\n"
                               "\n"
                               "[archive]\n"
                               "batch_max = x\n"
                               "batch_size = 100\n"
                               "dup = 2\n";

static struct og_config *load_good(void)
{
    char err[256] = "";
    struct og_config *cfg = og_config_load(write_file("good.ini", good_ini), err, sizeof(err));
    if (!cfg)
        fail_msg("good.ini refused: %s", err);
    return cfg;
}

static void test_get(void **state)
{
    struct og_config *cfg = load_good();
    /* Values keep everything after the first '=', spaces trimmed at both ends. */
    assert_string_equal(og_config_get(cfg, "database", "conninfo"),
                        "dbname=onegrid host=/run/postgresql");
    assert_string_equal(og_config_get(cfg, "intake", "bind"), "tcp://127.0.0.1:5555");
    assert_string_equal(og_config_get(cfg, "intake", "max_age_days"), "30");
    assert_string_equal(og_config_get(cfg, "intake", "name"), "网格 intake");
    assert_string_equal(og_config_get(cfg, "intake", "empty"), "");
    /* (A key set twice is refused: test_repeated_key.) */
    assert_string_equal(og_config_get(cfg, "archive", "dup"), "2");
    /* Absent: key, section, key of another section. */
    assert_null(og_config_get(cfg, "intake", "nope"));
    assert_null(og_config_get(cfg, "dispatch", "bind"));
    assert_null(og_config_get(cfg, "archive", "bind"));
    assert_null(og_config_get(cfg, "database", "batch_size"));
    og_config_destroy(&cfg);
    assert_null(cfg);
    og_config_destroy(&cfg); /* NULL is fine */
}

static void test_str(void **state)
{
    struct og_config *cfg = load_good();
    assert_string_equal(og_config_str(cfg, "intake", "bind", "tcp://*:1"), "tcp://127.0.0.1:5555");
    assert_string_equal(og_config_str(cfg, "intake", "missing", "fallback"), "fallback");
    assert_null(og_config_str(cfg, "intake", "missing", NULL));
    /* Present but empty is not absent. */
    assert_string_equal(og_config_str(cfg, "intake", "empty", "fallback"), "");
    og_config_destroy(&cfg);
}

static void test_int(void **state)
{
    struct og_config *cfg = load_good();
    char err[256];
    long v;

    v = -1;
    assert_int_equal(
        og_config_int(cfg, "intake", "max_event_bytes", 1, 1, 1 << 24, &v, err, sizeof(err)), 0);
    assert_int_equal(v, 65536);
    v = -1;
    assert_int_equal(og_config_int(cfg, "intake", "absent", 250, 1, 1000, &v, err, sizeof(err)), 0);
    assert_int_equal(v, 250);
    assert_int_equal(og_config_int(cfg, "intake", "negative", 0, -10, 10, &v, err, sizeof(err)), 0);
    assert_int_equal(v, -5);
    /* The bounds are inclusive. */
    assert_int_equal(og_config_int(cfg, "intake", "max_age_days", 0, 30, 30, &v, err, sizeof(err)),
                     0);
    assert_int_equal(v, 30);
    assert_int_equal(og_config_int(cfg, "intake", "max_age_days", 0, 31, 60, &v, err, sizeof(err)),
                     -EINVAL);
    assert_string_equal(err, "[intake] max_age_days: \"30\" is not an integer in 31..60");
    assert_int_equal(og_config_int(cfg, "intake", "max_age_days", 0, 1, 29, &v, err, sizeof(err)),
                     -EINVAL);
    assert_string_equal(err, "[intake] max_age_days: \"30\" is not an integer in 1..29");

    static const struct {
        const char *section, *key, *value;
    } bad[] = {
        {"archive", "batch_max", "x"},
        {"intake", "word", "many"},
        {"intake", "hex", "0x10"},
        {"intake", "trailing", "12abc"},
        {"intake", "empty", ""},
        {"intake", "huge", "99999999999999999999"},
        {"intake", "bind", "tcp://127.0.0.1:5555"},
    };
    for (size_t i = 0; i < OG_ARRAY_SIZE(bad); i++) {
        char want[256];
        err[0] = '\0';
        if (og_config_int(cfg, bad[i].section, bad[i].key, 5, 1, 100000, &v, err, sizeof(err)) !=
            -EINVAL)
            fail_msg("[%s] %s = \"%s\" taken as an integer", bad[i].section, bad[i].key,
                     bad[i].value);
        snprintf(want, sizeof(want), "[%s] %s: \"%s\" is not an integer in 1..100000",
                 bad[i].section, bad[i].key, bad[i].value);
        assert_string_equal(err, want);
    }
    og_config_destroy(&cfg);
}

static void test_check_keys(void **state)
{
    static const char *const archive_keys[] = {"batch_max", "batch_size", "dup", NULL};
    static const char *const archive_typo[] = {"batch_max", "dup", NULL}; /* batch_size unknown */
    static const char *const intake_keys[] = {
        "bind",     "max_event_bytes", "max_age_days", "negative", "hex", "word",
        "trailing", "empty",           "huge",         "name",     NULL};
    static const char *const none[] = {NULL};
    struct og_config *cfg = load_good();
    char err[256] = "";

    assert_int_equal(og_config_check_keys(cfg, "archive", archive_keys, err, sizeof(err)), 0);
    assert_int_equal(og_config_check_keys(cfg, "intake", intake_keys, err, sizeof(err)), 0);
    /* A section that is not in the file has no unknown keys. */
    assert_int_equal(og_config_check_keys(cfg, "dispatch", none, err, sizeof(err)), 0);

    assert_int_equal(og_config_check_keys(cfg, "archive", archive_typo, err, sizeof(err)), -ENOENT);
    assert_string_equal(err, "[archive] batch_size: unknown setting");
    assert_int_equal(og_config_check_keys(cfg, "database", none, err, sizeof(err)), -ENOENT);
    assert_string_equal(err, "[database] conninfo: unknown setting");
    og_config_destroy(&cfg);

    /* The typo case the check is for: "max_event_byte" for "max_event_bytes". */
    cfg =
        og_config_load(write_file("good.ini", "[intake]\nbind = tcp://*:1\nmax_event_byte = 10\n"),
                       err, sizeof(err));
    assert_non_null(cfg);
    assert_int_equal(og_config_check_keys(cfg, "intake", intake_keys, err, sizeof(err)), -ENOENT);
    assert_non_null(strstr(err, "max_event_byte"));
    og_config_destroy(&cfg);
}

static void test_syntax_error(void **state)
{
    char err[256] = "";
    const char *path =
        write_file("syntax.ini", "[intake]\nbind = tcp://*:1\nthis line has no equals sign\n"
                                 "max_age_days = 3\n");
    struct og_config *cfg = og_config_load(path, err, sizeof(err));
    assert_null(cfg);
    assert_non_null(strstr(err, "line 3"));
    assert_non_null(strstr(err, path));
    assert_non_null(strstr(err, "syntax error"));

    path = write_file("section.ini", "; ok\n[intake\nbind = x\n");
    cfg = og_config_load(path, err, sizeof(err));
    assert_null(cfg);
    assert_non_null(strstr(err, "line 2"));

    /* The lines after a header without its "]" still belong to the section before: a key
     * set there again is a later symptom. The error names the broken header's line. */
    path = write_file("header.ini", "[dispatch]\nlisten = a\n[archive\nlisten = b\n");
    cfg = og_config_load(path, err, sizeof(err));
    assert_null(cfg);
    assert_non_null(strstr(err, "syntax error"));
    assert_non_null(strstr(err, "line 3"));
    assert_null(strstr(err, "set twice"));

    /* An empty file is a valid, empty configuration. */
    cfg = og_config_load(write_file("empty.ini", ""), err, sizeof(err));
    assert_non_null(cfg);
    assert_null(og_config_get(cfg, "intake", "bind"));
    og_config_destroy(&cfg);
}

/* libinih as packaged reads lines of at most INI_MAX_LINE (200) bytes and parses the rest
 * of a longer line as a line of its own. A PostgreSQL conninfo with a password and
 * sslrootcert/sslcert/sslkey paths easily runs past 200 characters: it must be read
 * whole, or refused with an error that names the line that is too long. */
/* A key set twice in one section is refused (the old reader silently took the last); in
 * two sections it is two keys. */
static void test_repeated_key(void **state)
{
    char err[256] = "";
    const char *path = write_file("twice.ini", "[archive]\nbatch_wait_ms = 200\nname = a\n"
                                               "batch_wait_ms = 5\n");
    struct og_config *cfg = og_config_load(path, err, sizeof(err));
    assert_null(cfg);
    assert_non_null(strstr(err, "line 4"));
    assert_non_null(strstr(err, "[archive] batch_wait_ms is set twice"));

    cfg = og_config_load(write_file("two.ini", "[intake]\nconninfo = a\n[archive]\nconninfo = b\n"),
                         err, sizeof(err));
    assert_non_null(cfg);
    assert_string_equal(og_config_get(cfg, "intake", "conninfo"), "a");
    assert_string_equal(og_config_get(cfg, "archive", "conninfo"), "b");
    og_config_destroy(&cfg);
}

/* Values reach the logs and the database (archive's name is stored with each batch): a
 * line that is not UTF-8 is refused by its number, in a comment too. */
static void test_not_utf8(void **state)
{
    char err[256] = "";
    struct og_config *cfg = og_config_load(
        write_file("latin1.ini", "[archive]\nbatch_max = 5\nname = caf\xe9\n"), err, sizeof(err));
    assert_null(cfg);
    assert_non_null(strstr(err, "line 3 is not valid UTF-8"));
    cfg = og_config_load(write_file("comment.ini", "# caf\xe9\n[archive]\nbatch_max = 5\n"), err,
                         sizeof(err));
    assert_null(cfg);
    assert_non_null(strstr(err, "line 1 is not valid UTF-8"));

    cfg =
        og_config_load(write_file("utf8.ini", "[archive]\nname = 克拉玛依 é\n"), err, sizeof(err));
    assert_non_null(cfg);
    assert_string_equal(og_config_get(cfg, "archive", "name"), "克拉玛依 é");
    og_config_destroy(&cfg);
}

static void test_long_value(void **state)
{
    char text[1024], value[600], err[256] = "";
    struct og_config *cfg;
    snprintf(value, sizeof(value),
             "host=db1.grid.example port=5432 dbname=onegrid user=onegrid_dispatch "
             "sslmode=verify-full sslrootcert=/etc/onegrid/tls/root-ca.pem "
             "sslcert=/etc/onegrid/tls/onegrid-dispatch.pem "
             "sslkey=/etc/onegrid/tls/onegrid-dispatch.key application_name=onegrid-dispatch "
             "connect_timeout=5");
    assert_true(strlen(value) > 200);
    snprintf(text, sizeof(text), "[database]\nconninfo = %s\nother = 1\n", value);
    cfg = og_config_load(write_file("long.ini", text), err, sizeof(err));
    if (cfg) {
        const char *got = og_config_get(cfg, "database", "conninfo");
        const char *other = og_config_get(cfg, "database", "other");
        bool whole = got && strcmp(got, value) == 0, other_ok = other && !strcmp(other, "1");
        size_t got_len = got ? strlen(got) : 0;
        og_config_destroy(&cfg); /* before any failure: the suite also runs under LSan */
        if (!whole)
            fail_msg("a %zu-character conninfo came back as %zu characters", strlen(value),
                     got_len);
        assert_true(other_ok);
    } else if (!strstr(err, "line 2")) {
        fail_msg("a %zu-character line 2 was refused with \"%s\"", strlen(value) + 11, err);
    }
}

/* An indented line continues the value above (the shipped onegrid.conf says so); each
 * used to replace the value, so "listen = ipc://...,\n    tcp://..." listened on the tcp
 * endpoint only. Found while writing tests/fuzz/fuzz_config.c. */
static void test_continued_value(void **state)
{
    char err[256] = "";
    struct og_config *cfg =
        og_config_load(write_file("more.ini", "[intake]\n"
                                              "listen = ipc:///run/onegrid/intake.sock,\n"
                                              "    tcp://127.0.0.1:7300 ; inline comment\n"
                                              "; a comment does not end it\n"
                                              "\n"
                                              "\ttcp://10.1.2.3:7300\n"
                                              "window = 10\n"
                                              "[dispatch]\n"
                                              "  shard = 6502\n"
                                              "    650204\n"),
                       err, sizeof(err));
    if (!cfg)
        fail_msg("continued values refused: %s", err);
    assert_string_equal(og_config_get(cfg, "intake", "listen"),
                        "ipc:///run/onegrid/intake.sock, tcp://127.0.0.1:7300 tcp://10.1.2.3:7300");
    assert_string_equal(og_config_get(cfg, "intake", "window"), "10");
    /* An indented key right after a section line is a key, not a continuation; the line
     * after it continues it. */
    assert_string_equal(og_config_get(cfg, "dispatch", "shard"), "6502 650204");
    og_config_destroy(&cfg);

    /* After a section line an indented key is a key again, not a continuation: here set
     * a second time in the section, which is refused. */
    cfg = og_config_load(write_file("more.ini", "[a]\nx = 1\n[a]\n  x = 2\n"), err, sizeof(err));
    assert_null(cfg);
    assert_non_null(strstr(err, "[a] x is set twice"));
}

/* fopen takes a directory and reading it fails: it used to load as an empty file, so a
 * daemon started on defaults. A NUL byte ends a line for libinih: refused, not cut. */
static void test_unreadable(void **state)
{
    char err[256] = "", path[128];
    snprintf(path, sizeof(path), "%s/dir.ini", dir);
    assert_int_equal(mkdir(path, 0700), 0);
    assert_null(og_config_load(path, err, sizeof(err)));
    assert_non_null(strstr(err, path));
    assert_non_null(strstr(err, strerror(EISDIR)));

    static const char nul[] = "[intake]\nlisten = a\0b\n";
    assert_null(og_config_load(write_bytes("nul.ini", nul, sizeof(nul) - 1), err, sizeof(err)));
    assert_non_null(strstr(err, "line 2 contains a NUL byte"));
}

static void test_missing_file(void **state)
{
    char err[256] = "", path[128];
    snprintf(path, sizeof(path), "%s/does-not-exist.ini", dir);
    assert_null(og_config_load(path, err, sizeof(err)));
    assert_non_null(strstr(err, path));
    assert_non_null(strstr(err, "could not open"));
    assert_non_null(strstr(err, strerror(ENOENT)));
}

/* A section no daemon reads (a typo: [dispach]) is an error, naming the known ones. */
static void test_check_sections(void **state)
{
    static const char *const known[] = {"database", "intake", "dispatch", "archive", NULL};
    char err[256] = "";
    (void)state;
    struct og_config *cfg = og_config_load(
        write_file("sections.ini", "[database]\nconninfo = x\n[dispatch]\nshard = 6502\n"), err,
        sizeof(err));
    assert_non_null(cfg);
    assert_int_equal(og_config_check_sections(cfg, known, err, sizeof(err)), 0);
    og_config_destroy(&cfg);
    cfg = og_config_load(
        write_file("typo.ini", "[intake]\nlisten = ipc:///x\n[dispach]\nshard = 1\n"), err,
        sizeof(err));
    assert_non_null(cfg);
    assert_int_equal(og_config_check_sections(cfg, known, err, sizeof(err)), -ENOENT);
    assert_string_equal(err, "[dispach]: unknown section (known: [database] [intake] [dispatch] "
                             "[archive])");
    og_config_destroy(&cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_get),
        cmocka_unit_test(test_str),
        cmocka_unit_test(test_int),
        cmocka_unit_test(test_check_keys),
        cmocka_unit_test(test_syntax_error),
        cmocka_unit_test(test_repeated_key),
        cmocka_unit_test(test_long_value),
        cmocka_unit_test(test_continued_value),
        cmocka_unit_test(test_unreadable),
        cmocka_unit_test(test_missing_file),
        cmocka_unit_test(test_check_sections),
        cmocka_unit_test(test_not_utf8),
    };
    return cmocka_run_group_tests(tests, setup_dir, remove_dir);
}
