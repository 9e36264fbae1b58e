#include "outbox.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uthash.h>
#include <zlib.h>

#define KIND_EVENT 1
#define KIND_DONE  2
#define HEADER     (4 + 4 + 1 + 8) /* length, crc, kind, token */
#define MAX_RECORD (64u << 20)

struct live { /* an unanswered event's place in the file, for compaction */
    uint64_t token;
    off_t offset; /* of its record */
    uint32_t len; /* payload */
    UT_hash_handle hh;
};

struct og_outbox {
    char *path;
    int fd;
    off_t size;
    size_t max_bytes, live_bytes;
    bool dirty;
    struct live *live;
};

static void put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get64(const uint8_t *p)
{
    return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32;
}

static int write_all(int fd, const void *buf, size_t len)
{
    const uint8_t *p = buf;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Appends one record to fd at its end. */
static int append(int fd, int kind, uint64_t token, const void *data, uint32_t len)
{
    uint8_t h[HEADER];
    uint32_t crc;
    int rc;

    h[8] = (uint8_t)kind;
    put64(h + 9, token);
    crc = (uint32_t)crc32(0L, h + 8, HEADER - 8);
    if (len)
        crc = (uint32_t)crc32(crc, data, len);
    put32(h, HEADER - 8 + len);
    put32(h + 4, crc);
    if ((rc = write_all(fd, h, sizeof(h))) < 0)
        return rc;
    return len ? write_all(fd, data, len) : 0;
}

static void forget(struct og_outbox *ob, uint64_t token)
{
    struct live *l;
    HASH_FIND(hh, ob->live, &token, sizeof(token), l);
    if (!l)
        return;
    ob->live_bytes -= l->len;
    HASH_DEL(ob->live, l);
    free(l);
}

static int remember(struct og_outbox *ob, uint64_t token, off_t offset, uint32_t len)
{
    struct live *l = calloc(1, sizeof(*l));
    if (!l)
        return -ENOMEM;
    forget(ob, token); /* the same token added again replaces the old event */
    l->token = token;
    l->offset = offset;
    l->len = len;
    HASH_ADD(hh, ob->live, token, sizeof(l->token), l);
    ob->live_bytes += len;
    return 0;
}

/* Reads every good record; cuts a torn tail. */
static int load(struct og_outbox *ob, char *err, size_t errlen)
{
    uint8_t h[HEADER], *buf = NULL;
    off_t off = 0;
    int rc = 0;

    for (;;) {
        ssize_t n = pread(ob->fd, h, sizeof(h), off);
        if (n < (ssize_t)sizeof(h))
            break;
        uint32_t rest = get32(h), len = rest - (HEADER - 8);
        if (rest < HEADER - 8 || rest > MAX_RECORD)
            break;
        uint8_t *b = realloc(buf, len ? len : 1);
        if (!b) {
            rc = -ENOMEM;
            break;
        }
        buf = b;
        if (len && pread(ob->fd, buf, len, off + HEADER) != (ssize_t)len)
            break;
        uint32_t crc = (uint32_t)crc32(0L, h + 8, HEADER - 8);
        if (len)
            crc = (uint32_t)crc32(crc, buf, len);
        if (crc != get32(h + 4))
            break;
        if (h[8] == KIND_EVENT)
            rc = remember(ob, get64(h + 9), off, len);
        else if (h[8] == KIND_DONE)
            forget(ob, get64(h + 9));
        if (rc)
            break;
        off += HEADER + len;
    }
    free(buf);
    if (rc) {
        snprintf(err, errlen, "reading outbox \"%s\": %s", ob->path, strerror(-rc));
        return rc;
    }
    /* Whatever follows the last good record was being written when the process died. */
    if (ftruncate(ob->fd, off) != 0 || lseek(ob->fd, off, SEEK_SET) < 0) {
        snprintf(err, errlen, "truncating outbox \"%s\": %s", ob->path, strerror(errno));
        return -errno;
    }
    ob->size = off;
    return 0;
}

static int fsync_dir(const char *path)
{
    char *copy = strdup(path);
    int fd, rc = 0;
    if (!copy)
        return -ENOMEM;
    fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    free(copy);
    if (fd < 0)
        return -errno;
    if (fsync(fd) != 0)
        rc = -errno;
    close(fd);
    return rc;
}

/* Copies live events into path.tmp in file order, then renames it over path. */
static int compact(struct og_outbox *ob)
{
    char tmp[4096];
    struct live *l, *t;
    uint8_t *buf = NULL;
    int fd, rc = 0;
    off_t off = 0;

    snprintf(tmp, sizeof(tmp), "%s.tmp", ob->path);
    fd = open(tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return -errno;
    /* The hash keeps insertion order, which is file order. */
    HASH_ITER(hh, ob->live, l, t)
    {
        uint8_t *b = realloc(buf, l->len ? l->len : 1);
        if (!b) {
            rc = -ENOMEM;
            break;
        }
        buf = b;
        if (pread(ob->fd, buf, l->len, l->offset + HEADER) != (ssize_t)l->len) {
            rc = -EIO;
            break;
        }
        if ((rc = append(fd, KIND_EVENT, l->token, buf, l->len)) < 0)
            break;
        l->offset = off;
        off += HEADER + l->len;
    }
    free(buf);
    if (rc == 0 && fdatasync(fd) != 0)
        rc = -errno;
    if (rc == 0 && rename(tmp, ob->path) != 0)
        rc = -errno;
    if (rc < 0) {
        close(fd);
        unlink(tmp);
        return rc;
    }
    fsync_dir(ob->path);
    close(ob->fd);
    ob->fd = fd;
    ob->size = off;
    ob->dirty = false;
    return 0;
}

struct og_outbox *og_outbox_open(const char *path, size_t max_bytes,
                                 void (*each)(uint64_t token, const uint8_t *data, size_t len,
                                              void *arg),
                                 void *arg, char *err, size_t errlen)
{
    struct og_outbox *ob = calloc(1, sizeof(*ob));
    struct live *l, *t;
    uint8_t *buf = NULL;

    if (!ob || !(ob->path = strdup(path))) {
        snprintf(err, errlen, "out of memory");
        free(ob);
        return NULL;
    }
    ob->max_bytes = max_bytes;
    ob->fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (ob->fd < 0) {
        snprintf(err, errlen, "could not open outbox \"%s\": %s", path, strerror(errno));
        free(ob->path);
        free(ob);
        return NULL;
    }
    if (load(ob, err, errlen) < 0) {
        og_outbox_close(&ob);
        return NULL;
    }
    /* Insertion order of the hash is file order: hand the events back in that order. */
    HASH_ITER(hh, ob->live, l, t)
    {
        uint8_t *b = realloc(buf, l->len ? l->len : 1);
        if (!b || pread(ob->fd, b, l->len, l->offset + HEADER) != (ssize_t)l->len) {
            snprintf(err, errlen, "reading outbox \"%s\": %s", path,
                     b ? "short read" : "out of memory");
            free(b ? b : buf);
            og_outbox_close(&ob);
            return NULL;
        }
        buf = b;
        each(l->token, buf, l->len, arg);
    }
    free(buf);
    return ob;
}

void og_outbox_close(struct og_outbox **obp)
{
    struct og_outbox *ob = *obp;
    struct live *l, *t;
    if (!ob)
        return;
    og_outbox_sync(ob);
    HASH_ITER(hh, ob->live, l, t)
    {
        HASH_DEL(ob->live, l);
        free(l);
    }
    if (ob->fd >= 0)
        close(ob->fd);
    free(ob->path);
    free(ob);
    *obp = NULL;
}

int og_outbox_add(struct og_outbox *ob, uint64_t token, const void *data, size_t len)
{
    int rc;
    if (len > MAX_RECORD - HEADER || ob->live_bytes + len > ob->max_bytes)
        return -ENOSPC;
    if ((rc = append(ob->fd, KIND_EVENT, token, data, (uint32_t)len)) < 0) {
        /* Cut a partial record off so the file stays readable. */
        if (ftruncate(ob->fd, ob->size) == 0)
            lseek(ob->fd, ob->size, SEEK_SET);
        return rc;
    }
    if ((rc = remember(ob, token, ob->size, (uint32_t)len)) < 0)
        return rc;
    ob->size += HEADER + (off_t)len;
    ob->dirty = true;
    return 0;
}

int og_outbox_done(struct og_outbox *ob, uint64_t token)
{
    int rc = append(ob->fd, KIND_DONE, token, NULL, 0);
    if (rc < 0) {
        if (ftruncate(ob->fd, ob->size) == 0)
            lseek(ob->fd, ob->size, SEEK_SET);
        return rc;
    }
    ob->size += HEADER;
    ob->dirty = true;
    forget(ob, token);
    /* Compact when answered events are most of a file of some size. */
    if (ob->size > (1 << 20) && (size_t)ob->size > 4 * (ob->live_bytes + 4096))
        return compact(ob);
    return 0;
}

int og_outbox_sync(struct og_outbox *ob)
{
    if (!ob->dirty)
        return 0;
    if (fdatasync(ob->fd) != 0)
        return -errno;
    ob->dirty = false;
    return 0;
}

size_t og_outbox_live_bytes(const struct og_outbox *ob)
{
    return ob->live_bytes;
}
