#include "archive.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>
#include <uthash.h>
#include <zmq.h>

#include "daemon.h"
#include "frame_check.h"
#include "log.h"
#include "metrics.h"
#include "util.h"

struct held {
    char *key;
    struct og_store_item item;
    /* Not stored: it names a case or report the database does not have (SQLSTATE OG002),
     * so dispatch decided it against memory that disagrees with the committed state, or
     * dispatch decided it after such a record of its batch (leave_out). It is answered
     * with no reply, which tells dispatch to reload; intake resends the event. */
    bool unstored;
    /* A newer dispatch (a later epoch) sent a record under this key while this one was
     * held, and it was taken as a resend of this one. An answer without a reply (this
     * record not stored: a stale epoch, left out) would reach that dispatch as the answer
     * to its own record and make it reload: none is sent. It resends its record, which
     * is then stored (or answered) on its own. */
    bool superseded;
    UT_hash_handle hh;
};

/* What archive counts for Prometheus (docs/operating.md, "Metrics"). */
struct archive_metrics {
    struct og_metric *stored, *duplicate, *refused[OG_METRICS_REASONS];
    struct og_metric *batches, *batch_size, *commit_seconds, *faults, *storage_refused;
    struct og_metric *stale, *unstored, *held, *db_up, *malformed, *given, *own_digests;
    struct og_metrics_link link;
};

static void metrics_init(struct archive_metrics *m)
{
    static const double sizes[] = {1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000};
    static const double seconds[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                     0.25,  0.5,    1,     2.5,  5,     10};
    const char *records = "onegrid_archive_records_total";
    const char *help = "Records committed, by outcome (and reason, for refused)";
    m->stored = og_metrics_counter(records, "outcome=\"stored\"", help);
    m->duplicate = og_metrics_counter(records, "outcome=\"duplicate\"", help);
    og_metrics_by_reason(m->refused, records, "outcome=\"refused\"", help);
    m->batches = og_metrics_counter("onegrid_archive_batches_total", NULL,
                                    "Batches committed (one transaction each)");
    m->batch_size =
        og_metrics_histogram("onegrid_archive_batch_size", NULL, "Records per committed batch",
                             sizes, sizeof(sizes) / sizeof(*sizes));
    m->commit_seconds = og_metrics_histogram(
        "onegrid_archive_commit_duration_seconds", NULL,
        "Time to commit a batch, from BEGIN to COMMIT, retries of refused records included",
        seconds, sizeof(seconds) / sizeof(*seconds));
    m->faults = og_metrics_counter("onegrid_database_faults_total", NULL,
                                   "Database faults (unavailable, cancelled, full...): the "
                                   "records are held and tried again");
    m->storage_refused = og_metrics_counter(
        "onegrid_archive_storage_refused_total", NULL,
        "Records the database refused for their own content (recorded as refusals instead)");
    m->stale = og_metrics_counter("onegrid_archive_stale_records_total", NULL,
                                  "Records of an older dispatch epoch dropped (fencing, or an "
                                  "epoch retired after a record was left out)");
    m->unstored = og_metrics_counter(
        "onegrid_archive_unstored_records_total", NULL,
        "Records naming a case or report the database does not have, or after one in its "
        "batch: not stored, answered so that dispatch reloads its state");
    m->held = og_metrics_gauge("onegrid_archive_held_records", NULL,
                               "Records received and not committed yet");
    m->db_up = og_metrics_gauge("onegrid_database_up", NULL,
                                "1 while the database connection works, 0 while it fails");
    m->given = og_metrics_counter(
        "onegrid_archive_given_digests_total", NULL,
        "Ledger rows whose hash-chain digests archive made and og.end_batch took");
    m->own_digests = og_metrics_gauge(
        "onegrid_archive_own_digests", NULL,
        "1 while archive makes the digests of the rows it stores set-based, 0 once the "
        "database found one that differs from its own (until archive restarts)");
    og_metrics_set(m->own_digests, 1);
    m->malformed =
        og_metrics_counter("onegrid_link_malformed_total", "side=\"server\",peer=\"dispatch\"",
                           "Frames from the peer that failed the checks and were dropped");
    og_metrics_link_server_init(&m->link, "dispatch");
}

/* The commit of one batch, made on the committing thread while the main loop goes on
 * receiving (and answering the batch before). recs are the first k held records: they
 * are the thread's from commit_start until the main loop has seen done_fd and taken the
 * result (commit_finish); the main loop touches neither them nor the store meanwhile, but
 * to cancel what the thread runs at stop (og_store_cancel). The thread connects again
 * first when the job says so: the set-up statements can wait like a commit. */
struct job {
    struct held **recs; /* a copy of the batch's first k pointers (batch_max of room) */
    size_t k;
    int rc;
    uint64_t current;       /* -ESTALE: the current epoch */
    size_t refused;         /* records replaced by their refusal */
    bool empty;             /* every record was left out: nothing went to the database */
    bool connect;           /* connect again first (after a fault) */
    bool connected;         /* the store's connection was up after it */
    uint64_t given;         /* og_store_given_rows after it */
    bool own_digests;       /* og_store_own_digests after it */
    int64_t started, ended; /* og_mono_us(): handed to the thread, done on it */
    char err[512];
};

struct og_archive {
    struct og_archive_opts o;
    struct og_link_server *srv;
    struct og_store *store;
    struct held **batch; /* in arrival order; while committing, the job's records first */
    size_t n, cap;
    struct held *by_key;
    int64_t first_at; /* when the oldest held record arrived (monotonic us) */
    /* Group commit: batch_wait holds a record for others to join its batch only while the
     * database is idle. Records that came while a batch was committing have waited for
     * that commit: they go at once (due), together. */
    bool due;             /* the held records go without waiting */
    struct og_backoff db; /* while the database fails */
    uint64_t committed, batches, duplicates, refused_records;
    bool db_up; /* as of the last commit or connection attempt */
    struct og_frame_drops malformed;
    struct archive_metrics m;
    /* The committing thread: started (pending) under mu, done says so on done_fd. */
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int done_fd; /* an eventfd */
    bool pending, quit, thread_started;
    bool committing;     /* a job is the thread's (from commit_start to commit_finish) */
    int64_t drain_until; /* stopping: when to give up committing what is held */
    bool cancelled;      /* stopping: the commit running at drain_until is being cancelled */
    struct job job;
};

static void commit_run(struct og_archive *a, struct job *j);

/* The committing thread: runs each job it is given, then says so on done_fd. */
static void *committer(void *arg)
{
    struct og_archive *a = arg;
    const uint64_t one = 1;

    pthread_mutex_lock(&a->mu);
    for (;;) {
        while (!a->pending && !a->quit)
            pthread_cond_wait(&a->cv, &a->mu);
        if (!a->pending)
            break;
        pthread_mutex_unlock(&a->mu);
        commit_run(a, &a->job);
        pthread_mutex_lock(&a->mu);
        a->pending = false;
        /* Cannot fail: the counter is read (reset) before the next job starts. */
        (void)!write(a->done_fd, &one, sizeof(one));
    }
    pthread_mutex_unlock(&a->mu);
    return NULL;
}

struct og_archive *og_archive_new(const struct og_archive_opts *o, struct og_link_server *srv,
                                  struct og_store *store)
{
    struct og_archive *a = calloc(1, sizeof(*a));
    sigset_t all, old;

    if (!a)
        return NULL;
    a->o = *o;
    a->srv = srv;
    a->store = store;
    a->cap = o->batch_max * 4;
    a->db_up = og_store_connected(store);
    a->done_fd = -1;
    metrics_init(&a->m);
    a->batch = calloc(a->cap, sizeof(*a->batch));
    a->job.recs = calloc(o->batch_max, sizeof(*a->job.recs));
    if (!a->batch || !a->job.recs || pthread_mutex_init(&a->mu, NULL) != 0)
        goto fail;
    if (pthread_cond_init(&a->cv, NULL) != 0) {
        pthread_mutex_destroy(&a->mu);
        goto fail;
    }
    a->done_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    /* Signals are the main loop's (they interrupt its poll): the thread blocks them all. */
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    a->thread_started = a->done_fd >= 0 && pthread_create(&a->thread, NULL, committer, a) == 0;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (a->thread_started)
        return a;
    og_archive_destroy(&a);
    return NULL;
fail:
    free(a->job.recs);
    free(a->batch);
    free(a);
    return NULL;
}

static void held_free(struct held *h)
{
    og_store_item_free(&h->item);
    if (h->item.frame)
        onegrid__v1__frame__free_unpacked(h->item.frame, NULL);
    free(h->key);
    free(h);
}

void og_archive_destroy(struct og_archive **ap)
{
    struct og_archive *a = *ap;
    if (!a)
        return;
    /* A job the thread is on is finished first (its records are freed below). */
    pthread_mutex_lock(&a->mu);
    a->quit = true;
    pthread_cond_signal(&a->cv);
    pthread_mutex_unlock(&a->mu);
    if (a->thread_started)
        pthread_join(a->thread, NULL);
    pthread_cond_destroy(&a->cv);
    pthread_mutex_destroy(&a->mu);
    if (a->done_fd >= 0)
        close(a->done_fd);
    free(a->job.recs);
    for (size_t i = 0; i < a->n; i++) {
        HASH_DEL(a->by_key, a->batch[i]);
        held_free(a->batch[i]);
    }
    free(a->batch);
    free(a);
    *ap = NULL;
}

/* Removes the first k held records from the batch (after they were answered, or dropped).
 * The others waited while those went to the database: they are due. */
static void shift(struct og_archive *a, size_t k)
{
    for (size_t i = 0; i < k; i++) {
        HASH_DEL(a->by_key, a->batch[i]);
        held_free(a->batch[i]);
    }
    memmove(a->batch, a->batch + k, (a->n - k) * sizeof(*a->batch));
    a->n -= k;
    a->first_at = a->n ? og_mono_us() : 0;
    a->due = a->n > 0;
}

static void answer(struct og_archive *a, struct held *h, uint64_t epoch)
{
    Onegrid__V1__Frame f = ONEGRID__V1__FRAME__INIT;
    f.kind = ONEGRID__V1__FRAME__KIND__KIND_ANSWER;
    f.key = h->key;
    f.epoch = epoch;
    /* Left out: no reply, whatever an earlier pass over its batch had filled in. */
    f.reply = h->unstored ? NULL : h->item.reply;
    if (!f.reply && h->superseded)
        return;
    /* To whichever dispatch sent the key last (the link server remembers). */
    if (og_link_server_reply(a->srv, &f) < 0)
        og_debug("answer for a record not delivered; dispatch will resend it");
}

/* A frame that fails og_frame_check: counted, logged at most once a minute (with how
 * many since the last line), dropped. Only a faulty or foreign peer sends one. */
static void receive(struct og_archive *a)
{
    char why[128];

    while (a->n < a->cap) {
        struct og_route from;
        Onegrid__V1__Frame *f = NULL;
        struct held *h;
        int rc = og_link_server_recv(a->srv, &from, &f);
        if (rc < 0)
            break;
        if (rc == 0)
            continue;
        if (og_frame_check(f, OG_FRAME_HOP_DISPATCH_ARCHIVE, why, sizeof(why)) < 0) {
            og_daemon_frame_dropped(&a->malformed, "dispatch", f->key, why);
            og_link_server_forget(a->srv, f->key);
            onegrid__v1__frame__free_unpacked(f, NULL);
            continue;
        }
        HASH_FIND_STR(a->by_key, f->key, h);
        if (h) { /* a resend of a record we hold: its answer goes where it came from last */
            if (f->epoch > h->item.frame->epoch && strcmp(f->shard, h->item.frame->shard) == 0)
                h->superseded = true;
            onegrid__v1__frame__free_unpacked(f, NULL);
            continue;
        }
        h = calloc(1, sizeof(*h));
        if (!h || !(h->key = strdup(f->key))) {
            og_err("out of memory; dispatch will resend the record");
            free(h);
            onegrid__v1__frame__free_unpacked(f, NULL);
            break;
        }
        h->item.frame = f;
        og_store_item_prepare(&h->item);
        HASH_ADD_KEYPTR(hh, a->by_key, h->key, strlen(h->key), h);
        if (a->n == 0) { /* the database is idle: it may wait for others */
            a->first_at = og_mono_us();
            a->due = false;
        }
        a->batch[a->n++] = h;
    }
}

/* A fault of the database or its connection: the records stay held and are tried again
 * after a backoff. Logged when a run of faults starts; the STATUS says it while it lasts. */
static void db_failed(struct og_archive *a, const char *err)
{
    og_metrics_inc(a->m.faults);
    og_metrics_error(err);
    if (og_backoff_failed(&a->db))
        og_err("database unavailable, holding %zu records and retrying: %s", a->n, err);
    og_daemon_status("database unavailable, holding %zu records: %s", a->n, err);
}

/* Answers the first k held records after their batch committed (those left out as
 * unstored, with no reply). */
static void committed(struct og_archive *a, size_t k, uint64_t epoch)
{
    size_t stored = 0; /* not the records left out (unstored) */

    for (size_t i = 0; i < k; i++) {
        const Onegrid__V1__Reply *r = a->batch[i]->unstored ? NULL : a->batch[i]->item.reply;
        stored += !a->batch[i]->unstored;
        if (r && r->result_case == ONEGRID__V1__REPLY__RESULT_ACK &&
            r->ack->outcome == ONEGRID__V1__ACK__OUTCOME__OUTCOME_DUPLICATE)
            a->duplicates++;
        if (r)
            og_metrics_inc(r->result_case != ONEGRID__V1__REPLY__RESULT_ACK
                               ? og_metrics_reason(a->m.refused, r->nack->reason)
                           : r->ack->outcome == ONEGRID__V1__ACK__OUTCOME__OUTCOME_DUPLICATE
                               ? a->m.duplicate
                               : a->m.stored);
        answer(a, a->batch[i], epoch);
    }
    a->committed += stored;
    og_metrics_add(a->m.unstored, k - stored);
    if (stored > 0) {
        a->batches++;
        og_metrics_inc(a->m.batches);
        og_metrics_observe(a->m.batch_size, (double)stored);
        if (og_backoff_succeeded(&a->db))
            og_notice("database available again");
    }
    shift(a, k);
}

/* The database refused held record h for its own content: it is recorded as refused
 * instead, and if the refusal is refused too, as a minimal refusal (safe values only).
 * -EIO when even that was refused: nothing simpler is left, so it is a fault. */
static int refuse(struct held *h, const char *err)
{
    int rc = og_store_refuse(&h->item, err);
    if (rc == -EEXIST)
        rc = og_store_refuse_minimal(&h->item);
    if (rc == -EEXIST) {
        og_err("the database refused even a minimal refusal of record \"%s\": %s", h->key, err);
        return -EIO;
    }
    if (rc < 0)
        return rc;
    og_err("the database refused record \"%s\"; recording it as %s: %s", h->key,
           h->item.minimal ? "a minimal refusal" : "refused", err);
    return 0;
}

/* The database would not take the job's record i because it names a case or report the
 * database does not have: it is left out of the batch and answered "not stored", and so is
 * every record of the job after it. Whatever dispatch decided after it came from the same
 * memory, which the database contradicts: a later record may carry the left-out one's
 * effect on another case (a joint meeting naming the missing case and a live one, then a
 * status of the live case that only the meeting allows). The later batches of the epoch
 * are refused by the database once commit_run has retired it (og.retire_epoch). */
static void leave_out(struct job *j, size_t i, const char *err)
{
    og_warn("record \"%s\" names a case or report the database does not have; not storing "
            "it, nor what dispatch decided after it: dispatch reloads its state and decides "
            "the events again: %s",
            j->recs[i]->key, err);
    for (; i < j->k; i++)
        j->recs[i]->unstored = true;
}

/* On the committing thread: commits the job's records (one shard and epoch) and fills
 * their replies. A record the database refuses for its own content is named by the store;
 * it is replaced by its refusal and the batch tried again. A record that names a case or
 * report the database does not have is left out with every record after it, and the batch
 * tried again; once it is committed, the epoch is retired. Each pass turns one record into
 * a refusal, a refusal into a minimal one, or leaves at least one out, so there are at most
 * 3k + 1 passes. */
static void commit_run(struct og_archive *a, struct job *j)
{
    struct og_store_item *items = calloc(j->k, sizeof(*items));
    size_t *at = calloc(j->k, sizeof(*at)); /* items[i] is j->recs[at[i]]->item */
    const Onegrid__V1__Frame *first = j->recs[0]->item.frame;

    j->rc = -EINVAL;
    j->refused = 0;
    j->empty = false;
    j->err[0] = '\0';
    /* On this thread, not the main loop's: the set-up statements can wait (a lock), and the
     * loop must go on receiving, and hear a stop, meanwhile. */
    if (j->connect) {
        int rc = og_store_connect(a->store, j->err, sizeof(j->err));
        if (rc < 0) {
            free(items);
            free(at);
            j->rc = rc;
            j->connected = false;
            j->given = og_store_given_rows(a->store);
            j->own_digests = og_store_own_digests(a->store);
            j->ended = og_mono_us();
            return;
        }
    }
    if (!items || !at) {
        free(items);
        free(at);
        j->rc = -ENOMEM;
        j->connected = og_store_connected(a->store);
        j->given = og_store_given_rows(a->store);
        j->own_digests = og_store_own_digests(a->store);
        j->ended = og_mono_us();
        return;
    }
    /* A job tried again after a fault holds the records it left out, and may hold records
     * that came after them meanwhile (the epoch is not retired yet): those were decided
     * after the left-out ones too. */
    for (size_t i = 0; i < j->k; i++)
        if (j->recs[i]->unstored) {
            for (; i < j->k; i++)
                j->recs[i]->unstored = true;
            break;
        }
    for (size_t pass = 0; (j->rc == -EINVAL || j->rc == -ENOENT) && pass <= 3 * j->k; pass++) {
        size_t bad = 0, n = 0;
        for (size_t i = 0; i < j->k; i++)
            if (!j->recs[i]->unstored) {
                at[n] = i;
                items[n++] = j->recs[i]->item;
            }
        if (n == 0) { /* every record left out: nothing to commit */
            j->rc = 0;
            j->empty = true;
            break;
        }
        j->rc = og_store_commit(a->store, first->shard, first->epoch, items, n, &j->current, &bad,
                                j->err, sizeof(j->err));
        for (size_t i = 0; i < n; i++)
            j->recs[at[i]]->item.reply = items[i].reply;
        if (j->rc == -EINVAL) {
            if (bad >= n || refuse(j->recs[at[bad]], j->err) < 0)
                j->rc = -EIO;
            else
                j->refused++;
        } else if (j->rc == -ENOENT) {
            if (bad >= n) {
                j->rc = -EIO;
            } else {
                leave_out(j, at[bad], j->err);
            }
        }
    }
    if (j->rc == -ENOENT)
        j->rc = -EIO;
    /* What came before the left-out record is committed; nothing is answered yet. The
     * epoch is retired first, so that no later record of it is stored, whichever archive
     * gets it (after a restart, too). It is retired again if this fails (a fault: the job
     * is tried again, what it committed answered as stored). */
    bool any_left_out = false;
    for (size_t i = 0; i < j->k; i++)
        any_left_out = any_left_out || j->recs[i]->unstored;
    if (j->rc == 0 && any_left_out) {
        int retired =
            og_store_retire_epoch(a->store, first->shard, first->epoch, j->err, sizeof(j->err));
        if (retired < 0)
            j->rc = -EIO;
        else if (retired)
            og_notice("retired dispatch epoch %llu of shard \"%s\": nothing else decided in "
                      "it is stored",
                      (unsigned long long)first->epoch, first->shard);
    }
    free(items);
    free(at);
    j->connected = og_store_connected(a->store);
    j->given = og_store_given_rows(a->store);
    j->own_digests = og_store_own_digests(a->store);
    j->ended = og_mono_us();
}

/* How many of the held records from position from go in one batch: one shard and epoch,
 * at most batch_max. */
static size_t batch_len(const struct og_archive *a, size_t from)
{
    const Onegrid__V1__Frame *first = a->batch[from]->item.frame;
    size_t k = 1;
    while (from + k < a->n && k < a->o.batch_max &&
           strcmp(a->batch[from + k]->item.frame->shard, first->shard) == 0 &&
           a->batch[from + k]->item.frame->epoch == first->epoch)
        k++;
    return k;
}

/* Hands k held records from position from to the committing thread: from is 0, or the
 * length of the batch just committed, whose records shift out before the next is done.
 * connect: the thread connects again first (a fault came before). */
static void commit_start(struct og_archive *a, size_t from, size_t k, bool connect)
{
    struct job *j = &a->job;

    memcpy(j->recs, a->batch + from, k * sizeof(*j->recs));
    j->k = k;
    j->connect = connect;
    j->started = og_mono_us();
    a->committing = true;
    pthread_mutex_lock(&a->mu);
    a->pending = true;
    pthread_cond_signal(&a->cv);
    pthread_mutex_unlock(&a->mu);
}

/* The main loop's end of a job, once done_fd said it is done. A committed batch is
 * answered after the next one is handed to the thread (the records that came while it
 * committed are due), so the database is not idle while the answers go out. */
static void commit_finish(struct og_archive *a)
{
    struct job *j = &a->job;
    uint64_t count;
    size_t k = j->k;
    const Onegrid__V1__Frame *first;

    if (read(a->done_fd, &count, sizeof(count)) != sizeof(count))
        return;                 /* not done yet: its records are the thread's */
    pthread_mutex_lock(&a->mu); /* the job's results, as the thread left them */
    pthread_mutex_unlock(&a->mu);
    first = a->batch[0]->item.frame;
    a->committing = false;
    a->db_up = j->connected;
    a->refused_records += j->refused;
    og_metrics_counter_set(a->m.given, j->given);
    og_metrics_set(a->m.own_digests, j->own_digests);
    /* The loop turned: the commit returned. */
    og_daemon_watchdog();
    og_metrics_loop();

    if (a->cancelled) {
        /* Cancelled at stop: whatever it returned, it is not answered. A COMMIT may
         * complete despite the cancel, but one that was waiting for a synchronous standby
         * then returns OK without the standby's word: not an answer to give. dispatch
         * resends the records; the next archive answers them (as duplicates, if this
         * commit completed), with its own commit's guarantees. */
        og_notice("stopping: the commit cancelled at stop returned (%s); its %zu records "
                  "are left to dispatch to resend",
                  j->rc == 0 ? "completed" : j->err, k);
        return;
    }
    if (j->rc == 0) {
        uint64_t epoch = first->epoch;
        if (!j->empty)
            og_metrics_observe(a->m.commit_seconds, (double)(j->ended - j->started) / 1e6);
        /* The records after the batch move to the front as it is answered (shift): the
         * next job's copy of their pointers stays valid. */
        if (a->n > k && !a->db.wait && !(a->drain_until && og_mono_us() >= a->drain_until))
            commit_start(a, k, batch_len(a, k), false);
        committed(a, k, epoch);
        return;
    }
    if (j->rc == -ESTALE) {
        /* A newer dispatch owns the shard: its predecessor's records are void. Tell the
         * sender (the answer carries the current epoch, and no reply) and drop them. */
        size_t m = 0;
        if (first->epoch >= j->current) {
            /* An epoch the database has not given (the current one is refused only after
             * a dispatch took a newer one meanwhile, which is above it). It went back in
             * time and kept its identity (a snapshot put back), or og.generation_check
             * would have moved its epochs past it: the dispatch that holds the epoch finds
             * out (og.epoch_went_back) and the new generation makes these records stale.
             * Or that dispatch is connected to another database. Held, not stored and not
             * dropped. Said once a run of retries, as db_failed says the rest. */
            if (!a->db.wait)
                og_log(LOG_CRIT,
                       "records of shard \"%s\" epoch %llu, which the database has not given "
                       "(its current epoch: %llu): it went back in time (restored?), or that "
                       "dispatch is connected to another database; holding them",
                       first->shard, (unsigned long long)first->epoch,
                       (unsigned long long)j->current);
            db_failed(a, "a record's epoch is one the database has not given");
            return;
        }
        og_warn("dropping records of shard \"%s\" epoch %llu: current epoch is %llu", first->shard,
                (unsigned long long)first->epoch, (unsigned long long)j->current);
        while (m < a->n && strcmp(a->batch[m]->item.frame->shard, first->shard) == 0 &&
               a->batch[m]->item.frame->epoch < j->current) {
            answer(a, a->batch[m], j->current);
            m++;
        }
        og_metrics_add(a->m.stale, m); /* the first at least: its epoch is below current */
        shift(a, m);
        return;
    }
    if (j->rc == -ENOMEM) {
        og_err("out of memory storing a batch; retrying");
        db_failed(a, "out of memory");
        return;
    }
    db_failed(a, j->rc == -EINVAL ? "records keep being refused" : j->err);
}

/* Hands the held records to the committing thread when they are due (or force: stopping)
 * and it is idle. */
static void commit_ready(struct og_archive *a, bool force)
{
    if (a->committing || a->n == 0 || !og_backoff_ready(&a->db) ||
        (a->drain_until && og_mono_us() >= a->drain_until))
        return;
    if (!force && !a->due && a->n < a->o.batch_max && og_mono_us() - a->first_at < a->o.batch_wait)
        return;
    commit_start(a, 0, batch_len(a, 0), a->db.wait);
}

int og_archive_run(struct og_archive *a, int drain_ms)
{
    int64_t last_status = 0;

    for (;;) {
        /* Handshakes (CURVE: the ZAP handler's requests) go on while draining too. */
        void *auth = og_link_server_auth_socket(a->srv);
        zmq_pollitem_t items[3] = {{og_link_server_socket(a->srv), 0, ZMQ_POLLIN, 0},
                                   {NULL, a->done_fd, ZMQ_POLLIN, 0},
                                   {auth, 0, ZMQ_POLLIN, 0}};
        long timeout = 1000;
        int64_t now = og_mono_us();

        /* Full, or stopping: what dispatch sends waits in the socket, and a socket that is
         * not read must not end the poll at once, turn after turn. */
        if (a->n >= a->cap || a->drain_until)
            items[0].events = 0;
        if (a->n > 0 && !a->committing) {
            int64_t due = a->db.wait ? a->db.until : a->due ? now : a->first_at + a->o.batch_wait;
            timeout = due > now ? (long)((due - now + 999) / 1000) : 0;
        }
        if (a->committing && a->drain_until > now && a->drain_until - now < timeout * 1000)
            timeout = (long)((a->drain_until - now + 999) / 1000); /* then cancel it */
        if (zmq_poll(items, auth ? 3 : 2, timeout) < 0 && errno != EINTR) {
            og_err("zmq_poll: %s", zmq_strerror(errno));
            return -errno;
        }
        og_link_server_auth(a->srv);
        /* What came while a batch committed is taken before its end is seen, so it goes
         * next, at once (due). */
        if (!a->drain_until)
            receive(a);
        if (a->committing)
            commit_finish(a);
        commit_ready(a, a->drain_until != 0);
        /* The loop turns with no commit outstanding (commit_finish says it when one
         * returns): a commit that does not return stops the watchdog and shows as a stall,
         * as when commits were made on this loop. */
        if (!a->committing) {
            og_daemon_watchdog();
            og_metrics_loop();
        }
        og_metrics_set(a->m.held, (int64_t)a->n);
        og_metrics_set(a->m.db_up, a->db_up && !a->db.wait);
        og_metrics_counter_set(a->m.storage_refused, a->refused_records);
        og_metrics_counter_set(a->m.malformed, a->malformed.total);
        og_metrics_link_server_update(&a->m.link, a->srv);

        if (og_reload_requested) {
            og_reload_requested = 0;
            og_daemon_reloading();
            og_notice("reload requested: %s has nothing to reload; restart it to apply a "
                      "changed configuration",
                      "onegrid-archive");
            og_daemon_reloaded();
        }
        now = og_mono_us();
        if (og_stop_requested && !a->drain_until) {
            og_daemon_stopping();
            og_notice("stopping: committing the %zu records held (up to %d ms)", a->n, drain_ms);
            a->drain_until = now + (int64_t)drain_ms * 1000;
            commit_ready(a, true);
        }
        /* drain_ms is over and a commit still runs (a lock, a stuck server): it is
         * cancelled, so that its records are resent to the next archive instead of the
         * stop waiting for it. Again at each turn (a second at most): a cancel that
         * reaches the server between two statements is dropped there. */
        if (a->drain_until && a->committing && now >= a->drain_until) {
            char err[256];
            if (!a->cancelled)
                og_warn("stopping: drain_ms is over; cancelling the commit of %zu records",
                        a->job.k);
            if (og_store_cancel(a->store, err, sizeof(err)) < 0 && !a->cancelled)
                og_warn("could not cancel the commit: %s", err);
            a->cancelled = true;
        }
        if (a->drain_until && !a->committing && (a->n == 0 || now >= a->drain_until)) {
            if (a->n)
                og_warn("stopped with %zu records uncommitted; dispatch will resend them", a->n);
            og_notice("stopped: %llu records committed in %llu batches (%llu duplicates)",
                      (unsigned long long)a->committed, (unsigned long long)a->batches,
                      (unsigned long long)a->duplicates);
            return 0;
        }
        if (now - last_status > 5000000 && !a->db.wait) {
            og_daemon_status("committed %llu records in %llu batches, holding %zu",
                             (unsigned long long)a->committed, (unsigned long long)a->batches,
                             a->n);
            last_status = now;
        }
    }
}
