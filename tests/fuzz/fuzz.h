/* Helpers shared by the libFuzzer targets in tests/fuzz: failing loudly on a broken
 * invariant (abort, so that libFuzzer keeps the input as a crash), and a private scratch
 * directory for the targets whose input is a file. Header-only, static inline, for the
 * fuzz targets alone. */
#ifndef OG_FUZZ_H
#define OG_FUZZ_H

#include <dirent.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Reports a broken invariant and aborts. */
static inline void og_fuzz_fail(const char *fmt, ...)
    __attribute__((format(printf, 1, 2), noreturn));

static inline void og_fuzz_fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("fuzz invariant broken: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    abort();
}

static char og_fuzz_dir[64];

/* Removes every file of the scratch directory (it holds no subdirectories). */
static inline void og_fuzz_clean(void)
{
    DIR *d = opendir(og_fuzz_dir);
    struct dirent *de;
    char name[512];
    if (!d)
        return;
    while ((de = readdir(d)))
        if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..")) {
            snprintf(name, sizeof(name), "%s/%s", og_fuzz_dir, de->d_name);
            unlink(name);
        }
    closedir(d);
}

static inline void og_fuzz_remove_dir(void)
{
    og_fuzz_clean();
    rmdir(og_fuzz_dir);
}

/* The scratch directory, made on first use under $OG_FUZZ_TMPDIR (tests/fuzz/run sets it
 * and removes it afterwards: a crash skips the atexit handler), else /dev/shm (a memory
 * file system: the targets fsync a lot), else /tmp; removed at exit. */
static inline const char *og_fuzz_scratch(void)
{
    if (!*og_fuzz_dir) {
        const char *base = getenv("OG_FUZZ_TMPDIR");
        if (!base || !*base)
            base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : NULL;
        snprintf(og_fuzz_dir, sizeof(og_fuzz_dir), "%s/og-fuzz.XXXXXX", base ? base : "/tmp");
        if (!mkdtemp(og_fuzz_dir))
            og_fuzz_fail("could not make a scratch directory \"%s\"", og_fuzz_dir);
        atexit(og_fuzz_remove_dir);
    }
    return og_fuzz_dir;
}

/* Empties the scratch directory and writes data to name in it; returns its path (valid
 * until the next call). */
static inline const char *og_fuzz_file(const char *name, const uint8_t *data, size_t size)
{
    static char path[256];
    int fd;

    snprintf(path, sizeof(path), "%s/%s", og_fuzz_scratch(), name);
    og_fuzz_clean();
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0 || (size && write(fd, data, size) != (ssize_t)size) || close(fd) != 0)
        og_fuzz_fail("could not write \"%s\"", path);
    return path;
}

#endif
