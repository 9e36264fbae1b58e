#include "outbox.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <uthash.h>
#include <zlib.h>

#define KIND_EVENT 1
#define KIND_DONE  2
#define HEADER     (4 + 4 + 1 + 8) /* length, crc, kind, token */
#define MIN_REST   (HEADER - 8)    /* the length field counts kind, token and payload */
#define MAX_RECORD (64u << 20)
/* After a failed compaction (a full disk, mostly), answers to wait for before trying
 * again, rather than copying every live event once per answer. */
#define COMPACT_BACKOFF 1000
/* A lock held by another holder is waited for this long, in steps of LOCK_STEP_MS, before
 * open says the outbox is in use: see open_locked. */
#define LOCK_WAIT_MS 1000
#define LOCK_STEP_MS 2

struct live { /* an unanswered event's place in the file, for compaction */
    uint64_t token;
    uint64_t offset; /* of its record */
    uint64_t moved;  /* its offset in the file compaction is writing */
    uint32_t len;    /* payload */
    UT_hash_handle hh;
};

struct og_outbox {
    char *path;
    int fd;
    uint64_t size; /* of the good records; appends go there */
    size_t max_bytes, live_bytes;
    bool dirty;       /* records appended since the last fdatasync */
    bool dir_pending; /* a compaction's rename is not yet known durable */
    unsigned compact_wait;
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

static int pwrite_all(int fd, const void *buf, size_t len, uint64_t off)
{
    const uint8_t *p = buf;
    while (len > 0) {
        ssize_t n = pwrite(fd, p, len, (off_t)off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        p += n;
        off += (uint64_t)n;
        len -= (size_t)n;
    }
    return 0;
}

/* Writes one record at off. Explicit offsets rather than the file position: after a
 * failed write the next record overwrites the partial one even when cutting it off
 * failed too. */
static int put_record(int fd, uint64_t off, int kind, uint64_t token, const void *data,
                      uint32_t len)
{
    uint8_t h[HEADER];
    uint32_t crc;
    int rc;

    h[8] = (uint8_t)kind;
    put64(h + 9, token);
    crc = (uint32_t)crc32(0L, h + 8, HEADER - 8);
    if (len)
        crc = (uint32_t)crc32(crc, data, len);
    put32(h, MIN_REST + len);
    put32(h + 4, crc);
    if ((rc = pwrite_all(fd, h, sizeof(h), off)) < 0)
        return rc;
    return len ? pwrite_all(fd, data, len, off + HEADER) : 0;
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

static void remember(struct og_outbox *ob, struct live *l, uint64_t token, uint64_t offset,
                     uint32_t len)
{
    forget(ob, token); /* the same token added again replaces the old event */
    l->token = token;
    l->offset = offset;
    l->len = len;
    HASH_ADD(hh, ob->live, token, sizeof(l->token), l);
    ob->live_bytes += len;
}

/* The length of the record at off, if its header is possible: the length in range and
 * the record inside the file. 0 if not. */
static uint32_t plausible_len(const uint8_t *m, uint64_t size, uint64_t off)
{
    uint32_t rest;
    if (off > size || size - off < HEADER)
        return 0;
    rest = get32(m + off);
    if (rest < MIN_REST || rest > MAX_RECORD || rest > size - off - 8)
        return 0;
    return rest;
}

static bool good_at(const uint8_t *m, uint64_t size, uint64_t off)
{
    uint32_t rest = plausible_len(m, size, off);
    return rest && (uint32_t)crc32(0L, m + off + 8, rest) == get32(m + off + 4);
}

/* Where reading resumes after a bad record at off: the next good record, or size when
 * there is none (then the bad record is a torn tail, not damage). */
static uint64_t resync(const uint8_t *m, uint64_t size, uint64_t off)
{
    uint32_t rest = plausible_len(m, size, off);

    /* Damage inside a record usually leaves its length intact: try just after it. */
    if (rest && good_at(m, size, off + 8 + rest))
        return off + 8 + rest;
    /* Otherwise try every byte. Cheap checks first keep the CRCs computed over a damaged
     * stretch rare: a known kind of the right length, then what follows it must be the
     * end of the file, a length in range, or a zero length or a stub (a torn tail). */
    for (uint64_t p = off + 1; p + HEADER <= size; p++) {
        uint32_t r = plausible_len(m, size, p), after;
        if (!r || (m[p + 8] == KIND_DONE ? r != MIN_REST : m[p + 8] != KIND_EVENT))
            continue;
        if (size - (p + 8 + r) >= 4 && (after = get32(m + p + 8 + r)) != 0 &&
            (after < MIN_REST || after > MAX_RECORD))
            continue;
        if ((uint32_t)crc32(0L, m + p + 8, r) == get32(m + p + 4))
            return p;
    }
    return size;
}

/* Reads every good record of the file (mapped at m) into ob->live, skipping damage;
 * *end is where the good records end. */
static int scan(struct og_outbox *ob, const uint8_t *m, uint64_t size, uint64_t *end,
                struct og_outbox_stats *st)
{
    uint64_t off = 0;

    while (off < size) {
        uint32_t rest = plausible_len(m, size, off);
        if (!rest || (uint32_t)crc32(0L, m + off + 8, rest) != get32(m + off + 4)) {
            uint64_t next = resync(m, size, off);
            if (next >= size) {
                st->torn_bytes = size - off;
                break;
            }
            st->corrupt_records++;
            st->corrupt_bytes += next - off;
            off = next;
            continue;
        }
        uint64_t token = get64(m + off + 9);
        if (m[off + 8] == KIND_EVENT) {
            struct live *l = calloc(1, sizeof(*l));
            if (!l)
                return -ENOMEM;
            remember(ob, l, token, off, rest - MIN_REST);
        } else if (m[off + 8] == KIND_DONE) {
            forget(ob, token);
        } /* other kinds: written by a newer version; nothing for us */
        off += 8 + rest;
    }
    *end = off;
    return 0;
}

/* Copies the mapped file to a new file name, for when it cannot be linked. */
static int copy_to(const char *name, const uint8_t *m, uint64_t size)
{
    int fd = open(name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    int rc;
    if (fd < 0)
        return -errno;
    rc = pwrite_all(fd, m, size, 0);
    if (rc == 0 && fsync(fd) != 0)
        rc = -errno;
    close(fd);
    if (rc < 0)
        unlink(name);
    return rc;
}

/* Keeps the damaged file under PATH.corrupt (or .corrupt.1 to .9 when those are taken by
 * other files): a hard link, which needs no space, else a copy. */
static int keep_damaged(struct og_outbox *ob, const uint8_t *m, uint64_t size,
                        struct og_outbox_stats *st)
{
    struct stat self, other;
    int rc = -EEXIST;

    if (fstat(ob->fd, &self) != 0)
        return -errno;
    for (int i = 0; i < 10 && rc == -EEXIST; i++) {
        char *name = st->kept_as;
        size_t cap = sizeof(st->kept_as);
        if ((i ? snprintf(name, cap, "%s.corrupt.%d", ob->path, i)
               : snprintf(name, cap, "%s.corrupt", ob->path)) >= (int)cap)
            rc = -ENAMETOOLONG;
        else if (link(ob->path, name) == 0)
            rc = 0;
        else if (errno == EEXIST)
            /* Kept already by an earlier open that could not rewrite the outbox? */
            rc = lstat(name, &other) == 0 && other.st_dev == self.st_dev &&
                         other.st_ino == self.st_ino
                     ? 0
                     : -EEXIST;
        else
            rc = copy_to(name, m, size);
    }
    /* No fsync of the directory here: the rewrite's, which follows, covers this name too. */
    if (rc < 0)
        st->kept_as[0] = '\0';
    return rc;
}

/* Removes the temporary file a crash during a compaction left behind. We hold the lock,
 * so no process of ours is writing it; unlink removes a symlink rather than following
 * it, and compaction's O_EXCL|O_NOFOLLOW refuses whatever appears meanwhile. */
static int remove_stale_tmp(const struct og_outbox *ob, char *tmp, size_t cap)
{
    if (snprintf(tmp, cap, "%s.tmp", ob->path) >= (int)cap)
        return -ENAMETOOLONG;
    if (unlink(tmp) != 0 && errno != ENOENT)
        return -errno;
    return 0;
}

/* Reads the file; cuts a torn tail; keeps and rewrites a damaged file. */
static int load(struct og_outbox *ob, struct og_outbox_stats *st, char *err, size_t errlen)
{
    struct stat sb;
    uint8_t *m = NULL;
    uint64_t size, end = 0;
    bool rewritten = false;
    int rc = 0;

    if (fstat(ob->fd, &sb) != 0) {
        rc = -errno;
        snprintf(err, errlen, "could not stat outbox \"%s\": %s", ob->path, strerror(-rc));
        return rc;
    }
    size = (uint64_t)sb.st_size;
    if (size > 0) {
        m = mmap(NULL, (size_t)size, PROT_READ, MAP_PRIVATE, ob->fd, 0);
        if (m == MAP_FAILED) {
            rc = -errno;
            snprintf(err, errlen, "could not map outbox \"%s\": %s", ob->path, strerror(-rc));
            return rc;
        }
        rc = scan(ob, m, size, &end, st);
    }
    if (rc == 0 && st->corrupt_records > 0) {
        /* The original first, then the rewrite (which leaves the original untouched). If
         * either fails, the outbox is left as it is, damage and all, to be skipped and
         * tried again on the next open; a link to it would only change along with it. */
        st->keep_error = keep_damaged(ob, m, size, st);
        if (st->keep_error == 0) {
            st->keep_error = og_outbox_compact(ob);
            rewritten = st->keep_error == 0 || ob->dir_pending;
            if (rewritten) {
                st->keep_error = 0;
            } else {
                unlink(st->kept_as);
                st->kept_as[0] = '\0';
            }
        }
    }
    if (m)
        munmap(m, (size_t)size);
    if (rc < 0) {
        snprintf(err, errlen, "reading outbox \"%s\": %s", ob->path, strerror(-rc));
        return rc;
    }
    if (rewritten)
        return 0; /* ob->fd and ob->size are the new file's */
    /* Whatever follows the last good record was being written when the process died. */
    if (end < size && ftruncate(ob->fd, (off_t)end) != 0) {
        rc = -errno;
        snprintf(err, errlen, "truncating outbox \"%s\": %s", ob->path, strerror(-rc));
        return rc;
    }
    ob->size = end;
    return 0;
}

/* Opens path and locks it; retries when the file was replaced (by the previous holder's
 * compaction) between the open and the lock, which would leave us a lock on a file that
 * is no longer the outbox. A held lock is waited for up to LOCK_WAIT_MS: its holder may be
 * exiting (a restart right after it), and the kernel lets a lock go with the last reference
 * to the file, which a mapping unmapped just before the close can leave to an instant
 * later under load (a process reopening the outbox it had just closed, after load's mmap,
 * was refused once in about 800,000 reopens beside stress-ng, and not at the next try). */
static int open_locked(const char *path, char *err, size_t errlen)
{
    int waited_ms = 0;
    for (int tries = 0; tries < 100; tries++) {
        struct stat a, b;
        int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
        if (fd < 0) {
            int e = errno;
            snprintf(err, errlen, "could not open outbox \"%s\": %s", path, strerror(e));
            return -e;
        }
        int locked;
        while ((locked = flock(fd, LOCK_EX | LOCK_NB)) != 0 && errno == EWOULDBLOCK &&
               waited_ms < LOCK_WAIT_MS) {
            struct timespec step = {0, LOCK_STEP_MS * 1000000L};
            nanosleep(&step, NULL);
            waited_ms += LOCK_STEP_MS;
        }
        if (locked != 0) {
            int e = errno;
            close(fd);
            if (e == EWOULDBLOCK) {
                snprintf(err, errlen, "outbox \"%s\" is in use by another process", path);
                return -EBUSY;
            }
            snprintf(err, errlen, "could not lock outbox \"%s\": %s", path, strerror(e));
            return -e;
        }
        if (fstat(fd, &a) == 0 && stat(path, &b) == 0 && a.st_dev == b.st_dev &&
            a.st_ino == b.st_ino)
            return fd;
        close(fd);
    }
    snprintf(err, errlen, "could not open outbox \"%s\": it keeps being replaced", path);
    return -EAGAIN;
}

struct og_outbox *og_outbox_open(const char *path, size_t max_bytes,
                                 void (*each)(uint64_t token, const uint8_t *data, size_t len,
                                              void *arg),
                                 void *arg, struct og_outbox_stats *stats, char *err, size_t errlen)
{
    struct og_outbox *ob = calloc(1, sizeof(*ob));
    struct og_outbox_stats st = {0};
    struct live *l, *t;
    uint8_t *buf = NULL;

    if (!ob || !(ob->path = strdup(path))) {
        snprintf(err, errlen, "out of memory");
        free(ob);
        return NULL;
    }
    ob->max_bytes = max_bytes;
    ob->fd = open_locked(path, err, errlen);
    if (ob->fd < 0) {
        free(ob->path);
        free(ob);
        return NULL;
    }
    /* Early, as it may be what fills the disk; a failure shows in the next compaction. */
    char tmp[4096];
    remove_stale_tmp(ob, tmp, sizeof(tmp));
    if (load(ob, &st, err, errlen) < 0) {
        og_outbox_close(&ob);
        return NULL;
    }
    /* Insertion order of the hash is file order: hand the events back in that order. */
    HASH_ITER(hh, ob->live, l, t)
    {
        uint8_t *b = realloc(buf, l->len ? l->len : 1);
        if (!b || pread(ob->fd, b, l->len, (off_t)(l->offset + HEADER)) != (ssize_t)l->len) {
            snprintf(err, errlen, "reading outbox \"%s\": %s", path,
                     b ? "short read" : "out of memory");
            free(b ? b : buf);
            og_outbox_close(&ob);
            return NULL;
        }
        buf = b;
        each(l->token, buf, l->len, arg);
        st.events++;
    }
    free(buf);
    if (stats)
        *stats = st;
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
        close(ob->fd); /* and with it the lock */
    free(ob->path);
    free(ob);
    *obp = NULL;
}

int og_outbox_compact(struct og_outbox *ob)
{
    char tmp[4096];
    struct live *l, *t;
    uint8_t *buf = NULL;
    uint64_t off = 0;
    int fd, rc = 0;

    if ((rc = remove_stale_tmp(ob, tmp, sizeof(tmp))) < 0)
        return rc;
    fd = open(tmp, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        return -errno;
    /* The hash keeps insertion order, which is file order. Offsets in the new file go to
     * l->moved; l->offset stays valid for the old file until the new one replaced it. */
    HASH_ITER(hh, ob->live, l, t)
    {
        uint8_t *b = realloc(buf, l->len ? l->len : 1);
        if (!b) {
            rc = -ENOMEM;
            break;
        }
        buf = b;
        if (pread(ob->fd, buf, l->len, (off_t)(l->offset + HEADER)) != (ssize_t)l->len) {
            rc = -EIO;
            break;
        }
        if ((rc = put_record(fd, off, KIND_EVENT, l->token, buf, l->len)) < 0)
            break;
        l->moved = off;
        off += HEADER + l->len;
    }
    free(buf);
    if (rc == 0 && fsync(fd) != 0)
        rc = -errno;
    /* Locked before it becomes the outbox: a process opening PATH after the rename must
     * find it held. */
    if (rc == 0 && flock(fd, LOCK_EX | LOCK_NB) != 0)
        rc = -errno;
    if (rc == 0 && rename(tmp, ob->path) != 0)
        rc = -errno;
    if (rc < 0) {
        close(fd);
        unlink(tmp);
        return rc;
    }
    /* PATH is the new file now, whatever happens next: records appended to the old one
     * would be lost. If the directory cannot be synced, a crash could bring the old file
     * back, so nothing counts as durable until og_outbox_sync has synced the directory. */
    HASH_ITER(hh, ob->live, l, t)
    {
        l->offset = l->moved;
    }
    close(ob->fd);
    ob->fd = fd;
    ob->size = off;
    ob->dirty = false;
    ob->dir_pending = true;
    if ((rc = fsync_dir(ob->path)) < 0)
        return rc;
    ob->dir_pending = false;
    return 0;
}

/* Cuts a partially written record off so the file stays readable. Should that fail too,
 * the next record overwrites it (records go at ob->size), and open cuts a torn tail. */
static void cut_back(struct og_outbox *ob)
{
    int rc = ftruncate(ob->fd, (off_t)ob->size);
    (void)rc;
}

int og_outbox_add(struct og_outbox *ob, uint64_t token, const void *data, size_t len)
{
    struct live *l;
    int rc;
    if (len > MAX_RECORD - MIN_REST || len > ob->max_bytes)
        return -EMSGSIZE; /* would never fit */
    if (ob->live_bytes + len > ob->max_bytes)
        return -ENOBUFS;
    if (!(l = calloc(1, sizeof(*l))))
        return -ENOMEM;
    if ((rc = put_record(ob->fd, ob->size, KIND_EVENT, token, data, (uint32_t)len)) < 0) {
        cut_back(ob);
        free(l);
        return rc;
    }
    remember(ob, l, token, ob->size, (uint32_t)len);
    ob->size += HEADER + len;
    ob->dirty = true;
    return 0;
}

int og_outbox_done(struct og_outbox *ob, uint64_t token)
{
    int rc = put_record(ob->fd, ob->size, KIND_DONE, token, NULL, 0);
    /* Forgotten even when the record could not be written: a compaction drops it from the
     * file, and before that a restart sends it again, to be answered again. */
    forget(ob, token);
    if (rc < 0) {
        cut_back(ob);
        return rc;
    }
    ob->size += HEADER;
    ob->dirty = true;
    /* Compact when answered events are most of a file of some size. */
    if (ob->size > (1 << 20) && ob->size > 4 * (ob->live_bytes + 4096)) {
        if (ob->compact_wait > 0) {
            ob->compact_wait--;
            return 0;
        }
        if ((rc = og_outbox_compact(ob)) < 0 && !ob->dir_pending)
            ob->compact_wait = COMPACT_BACKOFF;
        return rc;
    }
    return 0;
}

int og_outbox_sync(struct og_outbox *ob)
{
    int rc;
    if (ob->dir_pending) {
        if ((rc = fsync_dir(ob->path)) < 0)
            return rc;
        ob->dir_pending = false;
    }
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
