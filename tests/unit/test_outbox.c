/* Unit tests for daemons/common/outbox.c: real files in a private mkdtemp directory.
 * Write failures are injected with RLIMIT_FSIZE (a write past the limit fails with EFBIG,
 * as one on a full disk fails with ENOSPC); as root, one test also fills a small tmpfs. */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "outbox.h"

#define MAX_EVENTS 4096
#define HEADER     17

struct fx {
    char dir[64];
    char path[128];
    char mnt[128]; /* a tmpfs mounted by the test, "" if none */
};

/* What og_outbox_open handed back. */
struct seen {
    uint64_t token[MAX_EVENTS];
    size_t n;
    size_t wrong;         /* events whose bytes are not their own */
    uint64_t first_wrong; /* token of the first */
};

/* Each event's bytes follow from its token: a copy of another event's bytes shows. */
static size_t event_len(uint64_t token)
{
    return 40 + (size_t)(token * 37 % 400);
}

static void event_bytes(uint64_t token, uint8_t *buf)
{
    size_t len = event_len(token);
    for (size_t i = 0; i < len; i++)
        buf[i] = (uint8_t)(token * 131 + i * 7 + (i >> 8));
    memcpy(buf, &token, sizeof(token)); /* unique whatever the arithmetic above does */
}

static void collect(uint64_t token, const uint8_t *data, size_t len, void *arg)
{
    struct seen *s = arg;
    uint8_t want[512];
    event_bytes(token, want);
    if (len != event_len(token) || memcmp(data, want, len) != 0) {
        if (s->wrong++ == 0)
            s->first_wrong = token;
    }
    if (s->n < MAX_EVENTS)
        s->token[s->n++] = token;
}

static int add(struct og_outbox *ob, uint64_t token)
{
    uint8_t buf[512];
    event_bytes(token, buf);
    return og_outbox_add(ob, token, buf, event_len(token));
}

static struct og_outbox *open_ok(const char *path, struct seen *s, struct og_outbox_stats *st)
{
    char err[256] = "";
    struct og_outbox *ob;
    memset(s, 0, sizeof(*s));
    ob = og_outbox_open(path, 64u << 20, collect, s, st, err, sizeof(err));
    if (!ob)
        fail_msg("og_outbox_open: %s", err);
    return ob;
}

/* Reopens and checks that exactly the tokens live[] come back, in that order, each with
 * its own bytes. */
static void expect_live(const char *path, const uint64_t *live, size_t n)
{
    struct seen *s = calloc(1, sizeof(*s));
    struct og_outbox_stats st;
    struct og_outbox *ob = open_ok(path, s, &st);
    if (s->wrong)
        fail_msg("%zu events came back with other bytes than their own (first: token %llu)",
                 s->wrong, (unsigned long long)s->first_wrong);
    assert_int_equal(s->n, n);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(s->token[i], live[i]);
    assert_int_equal(st.corrupt_records, 0);
    og_outbox_close(&ob);
    free(s);
}

static int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(p);
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    if (!f)
        return -1;
    snprintf(f->dir, sizeof(f->dir), "/tmp/og-test-outbox-XXXXXX");
    if (!mkdtemp(f->dir)) {
        free(f);
        return -1;
    }
    snprintf(f->path, sizeof(f->path), "%s/p.outbox", f->dir);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    if (f->mnt[0])
        umount2(f->mnt, MNT_DETACH);
    nftw(f->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    free(f);
    return 0;
}

static void set_fsize_limit(rlim_t limit)
{
    struct rlimit rl = {limit, RLIM_INFINITY};
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &rl), 0);
}

static off_t file_size(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 ? sb.st_size : -1;
}

static void test_reopen_hands_back_the_unanswered(void **state)
{
    struct fx *f = *state;
    struct seen s;
    struct og_outbox *ob = open_ok(f->path, &s, NULL);
    uint64_t live[] = {2, 4, 6, 7};

    for (uint64_t t = 1; t <= 7; t++)
        assert_int_equal(add(ob, t), 0);
    for (uint64_t t = 1; t <= 6; t += 2)
        assert_int_equal(og_outbox_done(ob, t), 0);
    assert_int_equal(og_outbox_sync(ob), 0);
    og_outbox_close(&ob);
    expect_live(f->path, live, 4);
}

/* The case: a compaction that fails half-way must leave every offset as it was,
 * or a later compaction copies other events' bytes under these tokens. */
static void test_failed_compaction_changes_nothing(void **state)
{
    struct fx *f = *state;
    struct seen s;
    struct og_outbox *ob = open_ok(f->path, &s, NULL);
    uint64_t live[MAX_EVENTS];
    size_t n = 0, bytes;
    char tmp[160];

    /* 400 events, every other one answered: each live event moves in a compaction. */
    for (uint64_t t = 1; t <= 400; t++)
        assert_int_equal(add(ob, t), 0);
    for (uint64_t t = 1; t <= 400; t++) {
        if (t % 2)
            assert_int_equal(og_outbox_done(ob, t), 0);
        else
            live[n++] = t;
    }
    assert_int_equal(og_outbox_sync(ob), 0);
    bytes = og_outbox_live_bytes(ob);

    /* The new file may grow to half of what it needs: the copy fails in the middle. */
    signal(SIGXFSZ, SIG_IGN);
    set_fsize_limit((rlim_t)(bytes / 2));
    assert_true(og_outbox_compact(ob) < 0);
    set_fsize_limit(RLIM_INFINITY);
    snprintf(tmp, sizeof(tmp), "%s.tmp", f->path);
    assert_int_equal(access(tmp, F_OK), -1);
    assert_int_equal(og_outbox_live_bytes(ob), bytes);

    /* Life goes on: more events and answers, then a compaction that succeeds. */
    for (uint64_t t = 401; t <= 420; t++) {
        assert_int_equal(add(ob, t), 0);
        live[n++] = t;
    }
    assert_int_equal(og_outbox_done(ob, 2), 0);
    memmove(live, live + 1, --n * sizeof(live[0]));
    assert_int_equal(og_outbox_compact(ob), 0);
    off_t want = 0;
    for (size_t i = 0; i < n; i++)
        want += HEADER + (off_t)event_len(live[i]);
    assert_int_equal(file_size(f->path), want);
    /* Appends after the compaction go to the new file. */
    assert_int_equal(add(ob, 421), 0);
    live[n++] = 421;
    og_outbox_close(&ob);
    expect_live(f->path, live, n);
}

/* The same through og_outbox_done's own compaction, on a file system that is really full:
 * a small tmpfs (root only). */
static void test_full_disk_during_compaction(void **state)
{
    struct fx *f = *state;
    char filler[160], path[160];
    static uint8_t block[65536];
    uint64_t live[MAX_EVENTS];
    size_t n = 0;
    struct seen s;
    struct og_outbox *ob;
    int fd;

    snprintf(f->mnt, sizeof(f->mnt), "%s/fs", f->dir);
    mkdir(f->mnt, 0700);
    if (geteuid() != 0 || mount("tmpfs", f->mnt, "tmpfs", 0, "size=4m") != 0) {
        f->mnt[0] = '\0';
        skip();
    }
    snprintf(path, sizeof(path), "%s/p.outbox", f->mnt);
    snprintf(filler, sizeof(filler), "%s/filler", f->mnt);
    ob = open_ok(path, &s, NULL);
    for (uint64_t t = 1; t <= 5000; t++)
        assert_int_equal(add(ob, t), 0);
    assert_true(file_size(path) > (1 << 20));
    /* Fill the rest, then leave room for the answers (17 bytes each) and 48 KiB, not for a
     * compaction (the 500 survivors alone take 128 KB). */
    fd = open(filler, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    while (write(fd, block, sizeof(block)) > 0)
        ;
    assert_int_equal(errno, ENOSPC);
    assert_int_equal(ftruncate(fd, file_size(filler) - (4500 * HEADER + 49152)), 0);
    close(fd);

    /* Answer 9 of every 10: every survivor moves when the file is compacted. */
    int failed = 0;
    for (uint64_t t = 1; t <= 5000; t++) {
        if (t % 10 == 0) {
            live[n++] = t;
            continue;
        }
        int rc = og_outbox_done(ob, t);
        if (rc == -ENOSPC)
            failed++;
        else
            assert_int_equal(rc, 0);
    }
    assert_true(failed > 0); /* a compaction was tried, and failed */
    assert_int_equal(og_outbox_sync(ob), 0);

    /* Space again: the next compaction must copy each event's own bytes. */
    assert_int_equal(unlink(filler), 0);
    assert_int_equal(og_outbox_compact(ob), 0);
    og_outbox_close(&ob);
    expect_live(path, live, n);
}

/* A write that fails leaves nothing behind, and the next appends are readable. */
static void test_failed_add_leaves_no_partial_record(void **state)
{
    struct fx *f = *state;
    struct seen s;
    struct og_outbox *ob = open_ok(f->path, &s, NULL);
    uint64_t live[] = {1, 2, 4};
    off_t size;

    assert_int_equal(add(ob, 1), 0);
    assert_int_equal(add(ob, 2), 0);
    size = file_size(f->path);
    signal(SIGXFSZ, SIG_IGN);
    set_fsize_limit((rlim_t)size + HEADER + 10); /* the header fits, the payload not */
    assert_int_equal(add(ob, 3), -EFBIG);
    set_fsize_limit(RLIM_INFINITY);
    assert_int_equal(file_size(f->path), size);
    assert_int_equal(add(ob, 4), 0);
    og_outbox_close(&ob);
    expect_live(f->path, live, 3);
}

static void test_limits(void **state)
{
    struct fx *f = *state;
    struct seen s;
    char err[256];
    uint8_t buf[600] = {0};
    struct og_outbox *ob = og_outbox_open(f->path, 1000, collect, &s, NULL, err, sizeof(err));

    assert_non_null(ob);
    assert_int_equal(og_outbox_add(ob, 1, buf, 600), 0);
    /* Live events full: answers make room. */
    assert_int_equal(og_outbox_add(ob, 2, buf, 600), -ENOBUFS);
    /* Larger than the outbox may ever hold: no answer makes room. */
    assert_int_equal(og_outbox_add(ob, 3, buf, 1001), -EMSGSIZE);
    assert_int_equal(og_outbox_done(ob, 1), 0);
    assert_int_equal(og_outbox_add(ob, 2, buf, 600), 0);
    og_outbox_close(&ob);
}

/* Writes n events 1..n with nothing answered; returns each record's offset in off[]. */
static void write_events(const char *path, uint64_t n, off_t *off)
{
    struct seen s;
    struct og_outbox *ob = open_ok(path, &s, NULL);
    for (uint64_t t = 1; t <= n; t++) {
        off[t] = file_size(path);
        assert_int_equal(add(ob, t), 0);
    }
    off[n + 1] = file_size(path);
    og_outbox_close(&ob);
}

static void poke(const char *path, off_t at, uint8_t xor)
{
    int fd = open(path, O_RDWR);
    uint8_t b;
    assert_true(fd >= 0);
    assert_int_equal(pread(fd, &b, 1, at), 1);
    b ^= xor;
    assert_int_equal(pwrite(fd, &b, 1, at), 1);
    close(fd);
}

static char *slurp(const char *path, size_t *len)
{
    FILE *fp = fopen(path, "rb");
    char *buf;
    assert_non_null(fp);
    fseek(fp, 0, SEEK_END);
    *len = (size_t)ftell(fp);
    rewind(fp);
    buf = malloc(*len + 1);
    assert_int_equal(fread(buf, 1, *len, fp), *len);
    fclose(fp);
    return buf;
}

/* One flipped byte in the payload of a record in the middle: that record is skipped,
 * every later one recovered, the original kept as PATH.corrupt, the outbox rewritten. */
static void test_damaged_payload_skips_one_record(void **state)
{
    struct fx *f = *state;
    off_t off[32];
    uint64_t live[] = {1, 2, 3, 4, 6, 7, 8, 9, 10};
    struct og_outbox_stats st;
    struct seen s;
    struct og_outbox *ob;
    char kept[160];
    char *before, *after;
    size_t before_len, after_len;

    write_events(f->path, 10, off);
    poke(f->path, off[5] + HEADER + 3, 0x40);
    before = slurp(f->path, &before_len);

    ob = open_ok(f->path, &s, &st);
    assert_int_equal(s.wrong, 0);
    assert_int_equal(s.n, 9);
    for (size_t i = 0; i < 9; i++)
        assert_int_equal(s.token[i], live[i]);
    assert_int_equal(st.events, 9);
    assert_int_equal(st.corrupt_records, 1);
    assert_int_equal(st.corrupt_bytes, off[6] - off[5]);
    assert_int_equal(st.torn_bytes, 0);
    assert_int_equal(st.keep_error, 0);
    snprintf(kept, sizeof(kept), "%s.corrupt", f->path);
    assert_string_equal(st.kept_as, kept);
    og_outbox_close(&ob);

    after = slurp(kept, &after_len);
    assert_int_equal(after_len, before_len);
    assert_memory_equal(after, before, before_len);
    free(before);
    free(after);
    /* Rewritten: the next open finds no damage. */
    expect_live(f->path, live, 9);
}

/* When the damaged outbox cannot be rewritten, it is left as it is (no PATH.corrupt that
 * would change along with it), and the next open finds the damage again. */
static void test_damage_when_the_rewrite_fails(void **state)
{
    struct fx *f = *state;
    off_t off[32];
    uint64_t live[] = {1, 2, 4, 5, 6, 7};
    struct og_outbox_stats st;
    struct seen s;
    struct og_outbox *ob;
    char kept[160];

    write_events(f->path, 6, off);
    poke(f->path, off[3] + HEADER, 0x01);
    snprintf(kept, sizeof(kept), "%s.corrupt", f->path);

    signal(SIGXFSZ, SIG_IGN);
    set_fsize_limit(100); /* the rewrite cannot write its new file */
    ob = open_ok(f->path, &s, &st);
    set_fsize_limit(RLIM_INFINITY);
    assert_int_equal(s.wrong, 0);
    assert_int_equal(s.n, 5);
    assert_int_equal(st.corrupt_records, 1);
    assert_int_equal(st.keep_error, -EFBIG);
    assert_string_equal(st.kept_as, "");
    assert_int_equal(access(kept, F_OK), -1);
    /* Still usable: an append goes after the last good record. */
    assert_int_equal(add(ob, 7), 0);
    og_outbox_close(&ob);

    ob = open_ok(f->path, &s, &st);
    assert_int_equal(s.n, 6);
    assert_int_equal(st.corrupt_records, 1);
    assert_int_equal(st.keep_error, 0);
    assert_string_equal(st.kept_as, kept);
    og_outbox_close(&ob);
    expect_live(f->path, live, 6);
}

/* A damaged length says nothing of where the next record starts: found by its CRC. */
static void test_damaged_length_is_skipped_to_the_next_good_record(void **state)
{
    struct fx *f = *state;
    off_t off[32];
    uint64_t live[] = {1, 2, 3, 5, 8, 9, 10, 11, 12};
    struct og_outbox_stats st;
    struct seen s;
    struct og_outbox *ob;

    write_events(f->path, 12, off);
    poke(f->path, off[4] + 2, 0x7f); /* length now far beyond the file */
    poke(f->path, off[6] + 8, 0xff); /* and a later record with a bad kind byte */
    poke(f->path, off[7] + 1, 0x01); /* and the one just after it with a wrong length */

    ob = open_ok(f->path, &s, &st);
    assert_int_equal(s.wrong, 0);
    assert_int_equal(s.n, 9);
    for (size_t i = 0; i < 9; i++)
        assert_int_equal(s.token[i], live[i]);
    /* Record 4 alone (the one after it is good), then 6 and 7 as one stretch. */
    assert_int_equal(st.corrupt_records, 2);
    assert_int_equal(st.corrupt_bytes, (off[5] - off[4]) + (off[8] - off[6]));
    og_outbox_close(&ob);
    expect_live(f->path, live, 9);
}

/* Damage followed by a torn tail: the damage is reported, the tail cut silently. */
static void test_damage_then_torn_tail(void **state)
{
    struct fx *f = *state;
    off_t off[32];
    uint64_t live[] = {1, 3, 4};
    struct og_outbox_stats st;
    struct seen s;
    struct og_outbox *ob;
    int fd;

    write_events(f->path, 5, off);
    poke(f->path, off[2] + 5, 0x10); /* CRC of record 2 */
    fd = open(f->path, O_WRONLY);
    assert_int_equal(ftruncate(fd, off[5] + HEADER + 4), 0); /* record 5 torn */
    close(fd);

    ob = open_ok(f->path, &s, &st);
    assert_int_equal(s.n, 3);
    for (size_t i = 0; i < 3; i++)
        assert_int_equal(s.token[i], live[i]);
    assert_int_equal(st.corrupt_records, 1);
    assert_int_equal(st.corrupt_bytes, off[3] - off[2]);
    assert_int_equal(st.torn_bytes, HEADER + 4);
    og_outbox_close(&ob);
    expect_live(f->path, live, 3);
}

/* A crash during an append leaves a torn last record: cut off without a word, as before. */
static void test_torn_tail_is_cut_silently(void **state)
{
    struct fx *f = *state;
    off_t off[32];
    uint64_t live[] = {1, 2, 3};
    struct og_outbox_stats st;
    struct seen s;
    struct og_outbox *ob;
    char kept[160];
    FILE *fp;

    write_events(f->path, 3, off);
    fp = fopen(f->path, "ab");
    fwrite("\x40\x00\x00\x00torn", 1, 8, fp); /* as tests/integration/outbox.sh does */
    fclose(fp);

    ob = open_ok(f->path, &s, &st);
    assert_int_equal(s.n, 3);
    assert_int_equal(st.corrupt_records, 0);
    assert_int_equal(st.torn_bytes, 8);
    assert_int_equal(st.kept_as[0], '\0');
    assert_int_equal(file_size(f->path), off[4]);
    og_outbox_close(&ob);
    snprintf(kept, sizeof(kept), "%s.corrupt", f->path);
    assert_int_equal(access(kept, F_OK), -1);

    /* A whole last record with a bad CRC (its payload half-written) is torn too. */
    poke(f->path, off[3] + HEADER + 1, 0x01);
    ob = open_ok(f->path, &s, &st);
    assert_int_equal(s.n, 2);
    assert_int_equal(st.corrupt_records, 0);
    assert_int_equal(st.torn_bytes, off[4] - off[3]);
    og_outbox_close(&ob);
    expect_live(f->path, live, 2);
}

static void test_one_process_per_outbox(void **state)
{
    struct fx *f = *state;
    struct seen s;
    char err[256] = "", want[256];
    struct og_outbox *ob = open_ok(f->path, &s, NULL), *second;
    pid_t pid;
    int status;

    snprintf(want, sizeof(want), "outbox \"%s\" is in use by another process", f->path);
    /* A second open in this process. */
    second = og_outbox_open(f->path, 1 << 20, collect, &s, NULL, err, sizeof(err));
    assert_null(second);
    assert_string_equal(err, want);

    /* Another process, also after a compaction replaced the file. */
    for (uint64_t t = 1; t <= 3; t++)
        assert_int_equal(add(ob, t), 0);
    assert_int_equal(og_outbox_done(ob, 1), 0);
    assert_int_equal(og_outbox_compact(ob), 0);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct og_outbox *o = og_outbox_open(f->path, 1 << 20, collect, &s, NULL, err, 256);
        _exit(o == NULL && strcmp(err, want) == 0 ? 0 : 1);
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);

    og_outbox_close(&ob);
    ob = open_ok(f->path, &s, NULL); /* free again */
    assert_int_equal(s.n, 2);
    og_outbox_close(&ob);
}

/* A holder that lets go a moment later (exiting, as before a restart) is waited for: the
 * open succeeds, where it used to say the outbox was in use. */
static void test_lock_released_soon_is_waited_for(void **state)
{
    struct fx *f = *state;
    struct seen s;
    char err[256] = "", go;
    struct og_outbox *ob;
    int ready[2];
    pid_t pid;
    int status;

    assert_int_equal(pipe(ready), 0);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct og_outbox *o = og_outbox_open(f->path, 1 << 20, collect, &s, NULL, err, 256);
        struct timespec hold = {0, 50 * 1000000L};
        if (!o || write(ready[1], "x", 1) != 1)
            _exit(1);
        nanosleep(&hold, NULL);
        og_outbox_close(&o);
        _exit(0);
    }
    close(ready[1]);
    assert_int_equal(read(ready[0], &go, 1), 1); /* the child holds the lock now */
    ob = og_outbox_open(f->path, 1 << 20, collect, &s, NULL, err, sizeof(err));
    if (!ob)
        fail_msg("refused while the holder was letting go: %s", err);
    og_outbox_close(&ob);
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    close(ready[0]);
}

/* A stale PATH.tmp is removed on open (it may be what fills the disk); one planted later,
 * even a symlink, is removed by the compaction, never written through. */
static void test_stale_temporary_file(void **state)
{
    struct fx *f = *state;
    char tmp[160], victim[160], *got;
    struct seen s;
    struct og_outbox *ob;
    uint64_t live[] = {2};
    struct stat sb;
    size_t len;
    FILE *fp;

    snprintf(tmp, sizeof(tmp), "%s.tmp", f->path);
    snprintf(victim, sizeof(victim), "%s/victim", f->dir);
    fp = fopen(tmp, "w");
    fputs("left by a crash", fp);
    fclose(fp);
    ob = open_ok(f->path, &s, NULL);
    assert_int_equal(access(tmp, F_OK), -1);

    fp = fopen(victim, "w");
    fputs("precious", fp);
    fclose(fp);
    assert_int_equal(symlink(victim, tmp), 0);
    assert_int_equal(add(ob, 1), 0);
    assert_int_equal(add(ob, 2), 0);
    assert_int_equal(og_outbox_done(ob, 1), 0);
    assert_int_equal(og_outbox_compact(ob), 0);
    og_outbox_close(&ob);

    got = slurp(victim, &len);
    assert_int_equal(len, 8);
    assert_memory_equal(got, "precious", 8);
    free(got);
    assert_int_equal(lstat(f->path, &sb), 0);
    assert_true(S_ISREG(sb.st_mode));
    assert_int_equal(access(tmp, F_OK), -1);
    expect_live(f->path, live, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_reopen_hands_back_the_unanswered, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failed_compaction_changes_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_full_disk_during_compaction, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failed_add_leaves_no_partial_record, setup, teardown),
        cmocka_unit_test_setup_teardown(test_limits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_damaged_payload_skips_one_record, setup, teardown),
        cmocka_unit_test_setup_teardown(test_damaged_length_is_skipped_to_the_next_good_record,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_damage_when_the_rewrite_fails, setup, teardown),
        cmocka_unit_test_setup_teardown(test_damage_then_torn_tail, setup, teardown),
        cmocka_unit_test_setup_teardown(test_torn_tail_is_cut_silently, setup, teardown),
        cmocka_unit_test_setup_teardown(test_one_process_per_outbox, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lock_released_soon_is_waited_for, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stale_temporary_file, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
