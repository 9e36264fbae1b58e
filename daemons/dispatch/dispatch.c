#include "dispatch.h"

#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uthash.h>
#include <zmq.h>

#include "daemon.h"
#include "db.h"
#include "frame_check.h"
#include "log.h"
#include "metrics.h"
#include "util.h"
#include "validate.h"

#define BURST 512 /* submissions read and checked against the database per turn */
/* How often the database's clock is read (clock.c): while the clocks agree, and while they
 * do not (so that dispatch notices soon when they agree again). */
#define DB_CLOCK_EVERY_US         (10 * 1000000LL)
#define DB_CLOCK_HOLDING_EVERY_US (1000000LL)
/* How often, while decisions wait for archive, the shard's epoch is compared with ours. */
#define EPOCH_CHECK_EVERY_US (5 * 1000000LL)
/* The inbox's check against the database (find_committed, one round trip) begins at most
 * once every INBOX_CHECK_EVERY_US, unless INBOX_CHECK_AT_ONCE submissions are in it; meanwhile
 * intake is not read, and what it sends waits in the socket, to be read just before the
 * next check begins and join it (a burst read at once may reach INBOX_CHECK_AT_ONCE). A check
 * costs dispatch's backend about the same for one submission as for a few dozen (its
 * start-up and its round trip). Checked as soon as one came, at 7,500 events/s (half this
 * 2-core machine's maximum) the inbox held 3 or 4 at each of about 2,000 checks a second,
 * and the backend spent 37 µs an event on them. With this bound the machine's user and
 * system time at 6,000 events/s was 255 µs an event against 300 (ten runs alternated with
 * the code before), and a submission waits at most a millisecond more here. A trickle (one
 * every millisecond or more) is checked at once, as before. archive's batch_wait_ms would
 * hold each burst this sends that finds the database idle: with 5 ms (the default then)
 * the p99 at half load rose, so its default is now 0 (docs/operating.md, limits). */
#define INBOX_CHECK_EVERY_US 1000LL
#define INBOX_CHECK_AT_ONCE  64

/* A submission passed to archive, waiting for its answer. */
struct pending {
    char *key;
    char case_id[32]; /* the case a stored event opened or moved ("" for refusals) */
    bool refusal;
    bool internal;   /* dispatch's own event (an escalation): nobody to answer */
    bool has_digest; /* digest: of the event decided (event_digest), for a publisher's */
    uint8_t digest[crypto_hash_sha256_BYTES];
    char (*held)[32]; /* every case its decisions name, held in memory until answered */
    size_t n_held;
    UT_hash_handle hh;
};

struct inbox_item {
    Onegrid__V1__Frame *frame;
};

/* What dispatch counts for Prometheus (docs/operating.md, "Metrics"). */
struct dispatch_metrics {
    struct og_metric *decided, *duplicate, *refused[OG_METRICS_REASONS], *escalations[4];
    struct og_metric *faults, *db_up, *cases_open, *inbox, *pending, *epoch, *clock_trusted;
    struct og_metric *malformed_intake, *malformed_archive, *scan_seconds, *scan_step_seconds;
    struct og_metric *inbox_checks;
    struct og_metrics_link to_archive, from_intake;
};

static void metrics_init(struct dispatch_metrics *m)
{
    const char *decisions = "onegrid_dispatch_decisions_total";
    const char *help = "Submissions decided, by outcome (and reason, for refused); "
                       "duplicates were answered from the database";
    m->decided = og_metrics_counter(decisions, "outcome=\"accepted\"", help);
    m->duplicate = og_metrics_counter(decisions, "outcome=\"duplicate\"", help);
    og_metrics_by_reason(m->refused, decisions, "outcome=\"refused\"", help);
    for (int level = 1; level <= 3; level++) {
        char labels[32];
        snprintf(labels, sizeof(labels), "level=\"%d\"", level);
        m->escalations[level] = og_metrics_counter(
            "onegrid_dispatch_escalations_total", labels,
            "Overdue cases escalated (督办), by level: 1 community, 2 street, 3 district");
    }
    m->faults = og_metrics_counter("onegrid_database_faults_total", NULL,
                                   "Database faults (unavailable, cancelled, full...): the "
                                   "submissions wait and are tried again");
    m->db_up = og_metrics_gauge("onegrid_database_up", NULL,
                                "1 while the database connection works, 0 while it fails");
    m->cases_open = og_metrics_gauge("onegrid_dispatch_cases_open", NULL,
                                     "Cases held in memory (open ones, and final ones in flight)");
    m->inbox = og_metrics_gauge("onegrid_dispatch_inbox", NULL,
                                "Submissions received and not decided yet");
    m->inbox_checks = og_metrics_counter("onegrid_dispatch_inbox_checks_total", NULL,
                                         "Checks of the inbox against the database (whether "
                                         "its submissions are stored already) begun, failed "
                                         "ones included: at most one a millisecond unless 64 "
                                         "submissions wait");
    m->pending = og_metrics_gauge("onegrid_dispatch_pending", NULL,
                                  "Decisions passed to archive and not answered yet");
    m->epoch = og_metrics_gauge("onegrid_dispatch_epoch", NULL, "The fencing epoch held");
    m->clock_trusted = og_metrics_gauge("onegrid_dispatch_clock_trusted", NULL,
                                        "1 while the wall clock is trusted (0: holding decisions "
                                        "and escalations until the clocks agree)");
    const char *malformed = "onegrid_link_malformed_total";
    help = "Frames from the peer that failed the checks and were dropped";
    m->malformed_intake = og_metrics_counter(malformed, "side=\"server\",peer=\"intake\"", help);
    m->malformed_archive = og_metrics_counter(malformed, "side=\"client\",peer=\"archive\"", help);
    static const double scan_bounds[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1};
    m->scan_seconds = og_metrics_histogram(
        "onegrid_dispatch_escalation_scan_seconds", NULL,
        "Time a pass over the open cases for overdue ones took in all (its steps, with events "
        "decided between them)",
        scan_bounds, sizeof(scan_bounds) / sizeof(*scan_bounds));
    static const double step_bounds[] = {0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05};
    m->scan_step_seconds = og_metrics_histogram(
        "onegrid_dispatch_escalation_scan_step_seconds", NULL,
        "Time a step of that pass took (dispatch decides nothing else meanwhile)", step_bounds,
        sizeof(step_bounds) / sizeof(*step_bounds));
    og_metrics_link_client_init(&m->to_archive, "archive");
    og_metrics_link_server_init(&m->from_intake, "intake");
}

struct og_dispatch {
    struct og_dispatch_opts o;
    PGconn *conn;
    uint64_t epoch;
    int generation; /* the database's, when this dispatch loaded its state (og_db_generation) */
    struct og_registry *reg;
    struct og_cases *cases;
    struct og_decider decider;
    struct og_link_server *in;
    struct og_link_client *out;
    struct pending *pending;
    struct inbox_item inbox[BURST];
    size_t n_inbox;
    int64_t started_us; /* og_mono_us() when the loop began */
    bool said_no_intake;
    bool fenced;
    struct og_backoff db; /* while the database fails */
    bool must_reload;     /* memory disagrees with the database: drain, then exit to reload */
    bool not_stored;      /* archive left a record out: it retires this epoch (og.retire_epoch) */
    int64_t epoch_checked_at; /* og_mono_us() of the last check_epoch */
    int64_t inbox_checked_at; /* og_mono_us() when the last find_committed began */
    uint64_t decided, duplicates, refused;
    struct og_clock clock; /* whether the wall clock may date decisions and escalate */
    int64_t db_clock_at;   /* og_mono_us() of the last reading of the database's clock */
    int64_t clock_lost_at; /* og_mono_us() when the clocks last disagreed */
    bool holding_said;     /* that submissions wait for the clocks was logged */
    struct og_frame_drops bad_from_intake, bad_from_archive;
    char (*fetched)[32]; /* closed cases read for the submission being decided */
    size_t n_fetched, cap_fetched;
    char fetch_err[512]; /* why the last fetch failed */
    int64_t scan_us;     /* the time the pass over the open cases under way took so far */
    struct dispatch_metrics m;
};

/* The gauges, and the counters kept elsewhere: once a loop turn. */
static void metrics_update(struct og_dispatch *d)
{
    og_metrics_loop();
    og_metrics_counter_set(d->m.decided, d->decided);
    og_metrics_counter_set(d->m.duplicate, d->duplicates);
    og_metrics_set(d->m.db_up, !og_db_broken(d->conn) && !d->db.wait);
    og_metrics_set(d->m.cases_open, (int64_t)og_cases_count(d->cases));
    og_metrics_set(d->m.inbox, (int64_t)d->n_inbox);
    og_metrics_set(d->m.pending, (int64_t)HASH_COUNT(d->pending));
    og_metrics_set(d->m.epoch, (int64_t)d->epoch);
    og_metrics_set(d->m.clock_trusted, og_clock_trusted(&d->clock));
    og_metrics_counter_set(d->m.malformed_intake, d->bad_from_intake.total);
    og_metrics_counter_set(d->m.malformed_archive, d->bad_from_archive.total);
    og_metrics_link_client_update(&d->m.to_archive, d->out);
    if (d->in)
        og_metrics_link_server_update(&d->m.from_intake, d->in);
}

static void hold_status(struct og_dispatch *d)
{
    char what[256];
    og_clock_describe(&d->clock, what, sizeof(what));
    og_daemon_status("holding: %s; no decisions and no escalations until the clocks agree "
                     "again; %zu submissions waiting",
                     what, d->n_inbox);
}

/* Logs a change of trust in the wall clock: once when the clocks disagree, once when they
 * agree again. */
static void clock_changed(struct og_dispatch *d, enum og_clock_change c)
{
    char what[256];

    if (c == OG_CLOCK_LOST) {
        og_clock_describe(&d->clock, what, sizeof(what));
        d->clock_lost_at = og_mono_us();
        d->holding_said = false;
        og_err("clock step: %s (more than %lld s); deciding nothing and escalating nothing until "
               "the clocks agree again",
               what, (long long)(d->clock.bound / 1000000));
        hold_status(d);
    } else if (c == OG_CLOCK_REGAINED) {
        og_notice("the clocks agree again after %.0f s: deciding and escalating again (%zu "
                  "submissions held)",
                  (double)(og_mono_us() - d->clock_lost_at) / 1e6, d->n_inbox);
        og_daemon_status("the clocks agree again");
    }
}

/* One reading of the database's clock, between two of the wall clock. A failure says
 * nothing about the clocks (the next use of the database notices an outage). */
static void read_db_clock(struct og_dispatch *d)
{
    int64_t w0, w1;
    PGresult *r;

    d->db_clock_at = og_mono_us();
    if (!d->conn || og_db_broken(d->conn) || !og_backoff_ready(&d->db))
        return;
    w0 = og_now_us();
    r = PQexec(d->conn, "SELECT floor(extract(epoch FROM clock_timestamp()) * 1000000)::bigint");
    w1 = og_now_us();
    if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1)
        clock_changed(
            d, og_clock_observe_db(&d->clock, strtoll(PQgetvalue(r, 0, 0), NULL, 10), w0, w1));
    PQclear(r);
}

static void start_clock(struct og_dispatch *d)
{
    int64_t bound = d->o.max_clock_step_us > 0 ? d->o.max_clock_step_us : 60 * 1000000LL;
    og_clock_init(&d->clock, bound, og_now_us(), og_clock_boot_us());
    read_db_clock(d);
    if (d->clock.db_known && llabs(d->clock.db_ref) > bound)
        og_warn("the wall clock is %.0f s %s the database's; decisions are dated by the wall "
                "clock (check that both hosts keep time); a step of either clock from here on "
                "holds dispatch",
                (double)llabs(d->clock.db_ref) / 1e6, d->clock.db_ref < 0 ? "ahead of" : "behind");
}

/* The wall clock's time in seconds, to date decisions and find overdue cases with, or -1
 * while it is not trusted (clock.c): then nothing may be decided or escalated. Reads the
 * database's clock too when that is due. */
static int64_t trusted_now(struct og_dispatch *d)
{
    int64_t wall = og_now_us();

    /* Boot time first: a step of the wall clock is logged as what it is. */
    clock_changed(d, og_clock_observe(&d->clock, wall, og_clock_boot_us()));
    if (og_mono_us() - d->db_clock_at >=
        (og_clock_trusted(&d->clock) ? DB_CLOCK_EVERY_US : DB_CLOCK_HOLDING_EVERY_US))
        read_db_clock(d);
    return og_clock_trusted(&d->clock) ? wall / 1000000 : -1;
}

/* A frame that fails og_frame_check: counted, logged at most once a minute, dropped. */
/* Drops a malformed frame from a link, and says so (rate-limited). */
static void drop_frame(struct og_frame_drops *drops, const char *from, Onegrid__V1__Frame *f,
                       const char *why)
{
    og_daemon_frame_dropped(drops, from, f->key, why);
    onegrid__v1__frame__free_unpacked(f, NULL);
}

/* Which events of an inbox are committed already (find_committed). The cheap lookup
 * first: og.stored_outcome runs only for the rare stored ones. One primary-key lookup per
 * event (LATERAL ... LIMIT 1): as a join, an inbox of a few hundred events was hash-joined
 * with a sequential scan of every event key stored (at 3,000 events/s into a fresh
 * database, half a core of dispatch's backend), a cost growing with the record. Prepared
 * once per session: under a steady trickle every inbox holds an event or two, and
 * planning the statement again for each (a join over the ledger's partitions) cost more
 * than running it. */
static const char SQL_FIND_COMMITTED[] =
    "SELECT u.n, o.case_id, o.outcome = 'stored', NULL, NULL "
    "FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[]) "
    "WITH ORDINALITY AS u(s, i, r, p, t, n) "
    "CROSS JOIN LATERAL (SELECT k.source_system, k.source_event_id FROM og.event_key k "
    "WHERE k.source_system = u.s AND k.source_event_id = u.i LIMIT 1) k "
    "CROSS JOIN LATERAL og.stored_outcome(u.s, u.i, u.r, u.p, u.t) o "
    /* Not stored, and refused as this very submission (og.refused_outcomes). */
    "UNION ALL "
    "SELECT x.n, NULL, false, x.reason, x.detail "
    "FROM og.refused_outcomes($1::text[], $2::text[], $3::text[], $4::text[]) x "
    /* As above, a lookup per row whatever the estimates (LIMIT 1), not an anti-join. */
    "LEFT JOIN LATERAL (SELECT 1 FROM og.event_key k WHERE k.source_system = x.source_system "
    "AND k.source_event_id = x.source_event_id LIMIT 1) k(stored) ON true "
    "WHERE k.stored IS NULL";

/* The database gives epochs in order and never takes one back: a shard epoch below ours,
 * which we took from it, means it went back to before it gave ours and kept its identity (a
 * snapshot of the data directory put back, a restore into the same database), which
 * og.generation_check cannot see. archive holds the records it gets of our epoch meanwhile
 * (it cannot tell that from a dispatch of another database). og.epoch_went_back opens a new
 * generation, which moves every counter past what the lost time gave and makes our records stale;
 * this dispatch decides nothing more and exits to load the database again. Checked at every
 * reconnection and, while decisions wait for archive, every EPOCH_CHECK_EVERY_US. */
static void check_epoch(struct og_dispatch *d)
{
    char epoch_s[24], err[256];
    const char *v[] = {d->o.shard, epoch_s, d->o.holder};
    PGresult *r;

    d->epoch_checked_at = og_mono_us();
    if (!d->epoch || d->must_reload || og_db_broken(d->conn))
        return;
    snprintf(epoch_s, sizeof(epoch_s), "%llu", (unsigned long long)d->epoch);
    r = PQexecParams(d->conn,
                     "SELECT e.below, CASE WHEN e.below THEN og.epoch_went_back($1, $2, $3) END "
                     "FROM (SELECT coalesce((SELECT epoch FROM og.dispatch_epoch "
                     "WHERE shard = $1), 0) < $2::bigint AS below) e",
                     3, NULL, v, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1) {
        og_db_error(d->conn, r, err, sizeof(err));
        og_warn("could not compare shard %s's epoch with ours: %s", d->o.shard, err);
    } else if (strcmp(PQgetvalue(r, 0, 0), "t") == 0) {
        /* Whatever generation that makes it (the same backup put back twice opens the
         * same number again), our memory is of the lost time. */
        og_log(LOG_CRIT,
               "the database went back in time and kept its identity (a snapshot put back, a "
               "restore into the same database): shard %s's epoch there is below ours, %llu, "
               "which it gave; it is of generation %s now (audit.database_generations); "
               "deciding nothing more, exiting to load it again",
               d->o.shard, (unsigned long long)d->epoch,
               PQgetisnull(r, 0, 1) ? "?" : PQgetvalue(r, 0, 1));
        d->must_reload = true;
    }
    PQclear(r);
}

/* Connects (again). Lock waits are bounded by lock_timeout_ms once state is loaded (at
 * start, taking the epoch waits for a batch of the previous epoch still committing, and
 * nothing else waits for dispatch then): a connection made after the start at once. */
static int connect_db(struct og_dispatch *d, char *err, size_t errlen)
{
    PGresult *r;

    if (d->conn)
        PQfinish(d->conn);
    d->conn = og_db_connect(d->o.conninfo, "onegrid-dispatch", err, errlen);
    if (!d->conn)
        return -EIO;
    /* Limited before the prepare, which locks og.event_key too. */
    if (d->epoch && og_db_limit_lock_waits(d->conn, d->o.lock_timeout_ms, err, errlen)) {
        PQfinish(d->conn);
        d->conn = NULL;
        return -EIO;
    }
    r = PQprepare(d->conn, "find_committed", SQL_FIND_COMMITTED, 0, NULL);
    if (PQresultStatus(r) != PGRES_COMMAND_OK) {
        og_db_error(d->conn, r, err, errlen);
        PQclear(r);
        PQfinish(d->conn);
        d->conn = NULL;
        return -EIO;
    }
    PQclear(r);
    /* A database restored from a backup, or a promoted standby, has gone back in time:
     * memory holds cases, numbers and an epoch it no longer has. Opened here (before the
     * epoch is taken, at start), it moves every counter past what memory holds; found on
     * a later connection, this dispatch decides nothing more and exits to load the
     * database as it is now. */
    int g = og_db_generation(d->conn, err, errlen);
    if (g < 0) {
        PQfinish(d->conn);
        d->conn = NULL;
        return -EIO;
    }
    if (d->generation && g != d->generation && !d->must_reload) {
        og_log(LOG_CRIT,
               "the database is of generation %d, not %d as when this dispatch loaded its "
               "cases: it was restored from a backup, replaced by a promoted standby, or moved or "
               "upgraded (audit.database_generations); deciding nothing more, exiting to load it "
               "again",
               g, d->generation);
        d->must_reload = true;
    }
    if (!d->generation)
        d->generation = g;
    check_epoch(d);
    return 0;
}

/* Takes the next epoch, then loads registry and cases in one snapshot. Taking the epoch
 * waits for any batch of the previous epoch still committing (og.begin_batch holds a
 * share lock on the epoch row), so the snapshot includes every batch that can commit. */
static int take_over(struct og_dispatch *d, char *err, size_t errlen)
{
    const char *params[] = {d->o.shard, d->o.holder};
    PGresult *r =
        PQexecParams(d->conn, "SELECT og.take_epoch($1, $2)", 2, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        og_db_error(d->conn, r, err, errlen);
        PQclear(r);
        return -EIO;
    }
    d->epoch = strtoull(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    if (og_db_exec(d->conn, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", err, errlen) ||
        og_registry_load(d->reg, d->conn, err, errlen) ||
        og_cases_load(d->cases, d->conn, d->o.shard, err, errlen) ||
        og_db_exec(d->conn, "COMMIT", err, errlen) ||
        og_db_limit_lock_waits(d->conn, d->o.lock_timeout_ms, err, errlen))
        return -EIO;
    return 0;
}

/* dc->fetch: reads a case memory does not hold (a final one) from the database, and
 * remembers it, to let it go again once the submission is decided (evict_fetched). */
static int fetch_case(void *arg, const char *id)
{
    struct og_dispatch *d = arg;
    char err[480];
    int rc;

    if (d->n_fetched == d->cap_fetched) {
        size_t cap = d->cap_fetched ? 2 * d->cap_fetched : 4;
        char(*v)[32] = realloc(d->fetched, cap * sizeof(*v));
        if (!v)
            return -ENOMEM;
        d->fetched = v;
        d->cap_fetched = cap;
    }
    rc = og_cases_fetch(d->cases, d->conn, d->o.shard, id, err, sizeof(err));
    if (rc > 0)
        snprintf(d->fetched[d->n_fetched++], sizeof(*d->fetched), "%s", id);
    if (rc < 0)
        snprintf(d->fetch_err, sizeof(d->fetch_err), "reading case %s: %s", id, err);
    return rc < 0 ? rc : 0;
}

/* The cases fetched for a submission leave memory again unless its decisions hold them
 * (a reopened case stays: it is open). */
static void evict_fetched(struct og_dispatch *d)
{
    for (size_t i = 0; i < d->n_fetched; i++)
        og_cases_evict(d->cases, d->fetched[i]);
    d->n_fetched = 0;
}

struct og_dispatch *og_dispatch_new(const struct og_dispatch_opts *o,
                                    struct og_link_server *from_intake,
                                    struct og_link_client *to_archive)
{
    struct og_dispatch *d = calloc(1, sizeof(*d));
    char err[512];

    if (!d)
        return NULL;
    d->o = *o;
    d->in = from_intake;
    d->out = to_archive;
    metrics_init(&d->m);
    d->reg = og_registry_new();
    d->cases = og_cases_new();
    if (!d->reg || !d->cases) {
        og_err("out of memory");
        goto fail;
    }
    int64_t t0 = og_mono_us();
    if (connect_db(d, err, sizeof(err)) || take_over(d, err, sizeof(err))) {
        og_err("could not load state from the database (retrying): %s", err);
        og_metrics_error(err);
        goto fail;
    }
    double load_s = (double)(og_mono_us() - t0) / 1e6;
    d->decider.reg = d->reg;
    d->decider.cases = d->cases;
    d->decider.shard = d->o.shard;
    d->decider.merge = d->o.merge;
    d->decider.extension_decision_days = d->o.extension_decision_days;
    d->decider.fetch = fetch_case;
    d->decider.fetch_arg = d;
    start_clock(d);
    og_notice("shard %s epoch %llu: %zu areas, %zu crosswalk entries, %zu sources, "
              "%zu categories, %zu units, %zu rules, %zu supervisors, %zu calendar days, "
              "%zu grid boundaries, %zu cases open (closed ones stay in the database) in %.2f s",
              o->shard, (unsigned long long)d->epoch, og_registry_count(d->reg, "areas"),
              og_registry_count(d->reg, "crosswalk"), og_registry_count(d->reg, "sources"),
              og_registry_count(d->reg, "categories"), og_registry_count(d->reg, "units"),
              og_registry_count(d->reg, "rules"), og_registry_count(d->reg, "supervisors"),
              og_registry_count(d->reg, "calendar"), og_registry_count(d->reg, "boundaries"),
              og_cases_count(d->cases), load_s);
    return d;
fail:
    og_dispatch_destroy(&d);
    return NULL;
}

void og_dispatch_destroy(struct og_dispatch **dp)
{
    struct og_dispatch *d = *dp;
    struct pending *p, *tmp;
    if (!d)
        return;
    HASH_ITER(hh, d->pending, p, tmp)
    {
        HASH_DEL(d->pending, p);
        free(p->key);
        free(p->held);
        free(p);
    }
    free(d->fetched);
    for (size_t i = 0; i < d->n_inbox; i++)
        onegrid__v1__frame__free_unpacked(d->inbox[i].frame, NULL);
    og_registry_destroy(&d->reg);
    og_cases_destroy(&d->cases);
    if (d->conn)
        PQfinish(d->conn);
    free(d);
    *dp = NULL;
}

void og_dispatch_set_intake(struct og_dispatch *d, struct og_link_server *from_intake)
{
    d->in = from_intake;
}

uint64_t og_dispatch_epoch(const struct og_dispatch *d)
{
    return d->epoch;
}

/* Answers key to whichever intake sent it last (the link server remembers). */
static void answer_intake(struct og_dispatch *d, const char *key, Onegrid__V1__Reply *reply)
{
    Onegrid__V1__Frame f = ONEGRID__V1__FRAME__INIT;
    f.kind = ONEGRID__V1__FRAME__KIND__KIND_ANSWER;
    f.key = (char *)key;
    f.reply = reply;
    if (og_link_server_reply(d->in, &f) < 0)
        og_debug("answer for \"%s\" not delivered; intake will resend", key);
}

/* Forgets a submission passed to archive, and (if it was not answered) its sender. Its
 * cases need not stay for it any more: a final one leaves memory once nothing else in
 * flight names it (the database has it now, or dispatch is about to reload). */
static void forget(struct og_dispatch *d, struct pending *p)
{
    og_link_server_forget(d->in, p->key);
    for (size_t i = 0; i < p->n_held; i++)
        og_cases_release(d->cases, p->held[i]);
    HASH_DEL(d->pending, p);
    free(p->key);
    free(p->held);
    free(p);
}

/* Holds case id in memory for p (until its answer). 0 or -ENOMEM. */
static int hold(struct og_dispatch *d, struct pending *p, const char *id)
{
    char(*v)[32];
    if (!id || !*id)
        return 0;
    if (!(v = realloc(p->held, (p->n_held + 1) * sizeof(*v))))
        return -ENOMEM;
    p->held = v;
    snprintf(p->held[p->n_held++], sizeof(*v), "%s", id);
    og_cases_hold(d->cases, id);
    return 0;
}

/* The database's generation when it is no longer the one this dispatch loaded its cases
 * in, else 0 (the same, or the database cannot say now). */
static int generation_changed(struct og_dispatch *d)
{
    char err[256];
    int g;
    if (!d->conn || PQstatus(d->conn) != CONNECTION_OK || !d->generation)
        return 0;
    g = og_db_generation(d->conn, err, sizeof(err));
    return g > 0 && g != d->generation ? g : 0;
}

static void on_archive_answer(Onegrid__V1__Frame *f, void *arg)
{
    struct og_dispatch *d = arg;
    struct pending *p;
    char why[256];

    HASH_FIND_STR(d->pending, f->key, p);
    if (og_frame_check(f, OG_FRAME_HOP_ARCHIVE_DISPATCH, why, sizeof(why)) < 0) {
        /* Not acted on. But the link has let go of the record, nothing resends it, and
         * whether archive committed it is unknown: memory may now disagree with the
         * database. */
        if (p) {
            if (!d->must_reload)
                og_log(LOG_CRIT,
                       "archive's answer for \"%s\" is malformed; finishing what is "
                       "in flight, then exiting to reload state",
                       p->key);
            d->must_reload = true;
            forget(d, p);
        }
        drop_frame(&d->bad_from_archive, "archive", f, why);
        return;
    }
    if (f->epoch > d->epoch) {
        /* Every record in flight comes back like this: one line says it. After archive
         * did not store a record (not_stored), archive retired this epoch itself
         * (og.retire_epoch): expected, and this dispatch is exiting to reload anyway. A
         * new generation (a restore found by another daemon) is said as such. */
        int g = d->fenced || d->not_stored ? 0 : generation_changed(d);
        if (!d->fenced && d->not_stored)
            og_notice("archive answered with epoch %llu, ours is %llu: it retired our epoch "
                      "after a record it did not store; the records still in flight are "
                      "decided again after the reload",
                      (unsigned long long)f->epoch, (unsigned long long)d->epoch);
        else if (g > 0)
            og_log(LOG_CRIT,
                   "archive answered with epoch %llu, ours is %llu: the database is of "
                   "generation %d, not %d as when this dispatch loaded its cases (restored, "
                   "promoted or moved: audit.database_generations); exiting to load it again",
                   (unsigned long long)f->epoch, (unsigned long long)d->epoch, g, d->generation);
        else if (!d->fenced)
            og_log(LOG_CRIT,
                   "fenced: archive answered with epoch %llu, ours is %llu; another "
                   "dispatch owns shard %s",
                   (unsigned long long)f->epoch, (unsigned long long)d->epoch, d->o.shard);
        d->fenced = true;
    } else if (!f->reply) {
        /* archive did not store the record: it named a case or report the database does
         * not have (its decision was made against memory that disagrees with the committed
         * state, as after a refused opening), or a record of an older epoch held under this
         * key (a predecessor's) was dropped and this one with it. Memory holds its decision
         * all the same. intake resends the event: the restarted dispatch decides it again. */
        if (p) {
            if (!d->must_reload)
                og_log(LOG_CRIT,
                       "archive did not store \"%s\" (it names a case the database does not "
                       "have, or an older epoch's record was dropped); finishing what is in "
                       "flight, then exiting to reload state",
                       p->key);
            else
                og_notice("archive did not store \"%s\" either; it is decided again after the "
                          "restart",
                          p->key);
            d->must_reload = true;
            d->not_stored = true;
            forget(d, p);
        }
    } else if (p) {
        const Onegrid__V1__Reply *r = f->reply;
        /* ack and nack share a union (a oneof): test result_case, never the pointers. */
        bool nack = r->result_case != ONEGRID__V1__REPLY__RESULT_ACK;
        if (!p->refusal && (nack || strcmp(r->ack->case_id, p->case_id) != 0)) {
            /* Committed state is not what memory holds: finish what archive already has
             * (those answers are good), then exit so that a restart reloads it. */
            og_log(LOG_CRIT,
                   "archive's answer for \"%s\" (%s) disagrees with the decision (case %s); "
                   "finishing what is in flight, then exiting to reload state",
                   f->key, nack ? "refused" : r->ack->case_id, p->case_id);
            d->must_reload = true;
        } else if (p->internal && !nack &&
                   r->ack->outcome == ONEGRID__V1__ACK__OUTCOME__OUTCOME_DUPLICATE) {
            /* An escalation or lapse of ours whose id was stored before (archive answers
             * our own resend "stored"): this decision was not stored. A case an earlier
             * release left returned to nobody at level 0 under the deadline it had
             * escalated on repeats those levels (their ids name level and deadline); the
             * record has each once already, and the first level not on record is stored
             * with the case's whole state. Said, not reloaded: a reload would load level 0
             * and repeat them again. */
            const char *id = strchr(f->key, '\x1f'); /* the key: source, US, event id */
            og_warn("archive has onegrid/%s already, from an earlier decision: this one was "
                    "not stored (case %s)",
                    id ? id + 1 : f->key, p->case_id);
        }
        if (!p->internal)
            answer_intake(d, p->key, f->reply);
        forget(d, p);
    }
    onegrid__v1__frame__free_unpacked(f, NULL);
}

/* A PostgreSQL text[] literal under construction: {"a","b"}. */
struct arr {
    char *buf;
    size_t len, cap;
    int n;
};

static int arr_put(struct arr *a, const char *s)
{
    size_t need = a->len + 2 * strlen(s) + 5;
    if (need > a->cap) {
        char *b = realloc(a->buf, need * 2);
        if (!b)
            return -ENOMEM;
        a->buf = b;
        a->cap = need * 2;
    }
    a->buf[a->len++] = a->n++ ? ',' : '{';
    a->buf[a->len++] = '"';
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            a->buf[a->len++] = '\\';
        a->buf[a->len++] = *s;
    }
    a->buf[a->len++] = '"';
    a->buf[a->len] = '\0';
    return 0;
}

static const char *arr_close(struct arr *a)
{
    a->buf[a->len++] = '}'; /* arr_put left room for it */
    a->buf[a->len] = '\0';
    return a->buf;
}

/* What find_committed found of an inbox item: stored already (case_id, and stored_once
 * when what was stored is this very submission, resent by a hop after its batch
 * committed: "stored" to its publisher, not "duplicate", og.stored_outcome), or this very
 * submission refused and recorded (reason, text: og.refused_outcomes). */
struct committed {
    char *case_id;
    bool stored_once;
    int reason; /* a Onegrid__V1__Reason; 0: not refused */
    char *text;
};

static void committed_clear(struct committed *c)
{
    free(c->case_id);
    free(c->text);
    memset(c, 0, sizeof(*c));
}

/* Finds the inbox items whose event is committed already, or whose very submission was
 * refused and recorded, and fills found[i] for those. One round trip for the whole
 * inbox. */
static int find_committed(struct og_dispatch *d, struct committed *found, char *err, size_t errlen)
{
    struct arr src = {0}, ids = {0}, received = {0}, publishers = {0}, tags = {0};
    size_t at[BURST]; /* the arrays' k-th submission is the inbox's at[k] */
    PGresult *r;
    int rc = 0;

    for (size_t i = 0; rc == 0 && i < d->n_inbox; i++) {
        const Onegrid__V1__Submission *s = d->inbox[i].frame->submission;
        char t[48] = "";
        if (!s->event || s->rejection)
            continue;
        if (s->received)
            og_time_format(s->received->seconds, s->received->nanos, t, sizeof(t));
        char tag[2 * 64 + 1] = "";
        if (s->tag.len <= 64)
            og_hex(s->tag.data, s->tag.len, tag);
        if (arr_put(&src, s->source) || arr_put(&ids, s->event->id) || arr_put(&received, t) ||
            arr_put(&publishers, s->publisher) || arr_put(&tags, tag))
            rc = -ENOMEM;
        if (rc == 0)
            at[src.n - 1] = i;
    }
    if (rc == 0 && src.n > 0) {
        const char *params[] = {arr_close(&src), arr_close(&ids), arr_close(&received),
                                arr_close(&publishers), arr_close(&tags)};
        r = PQexecPrepared(d->conn, "find_committed", 5, params, NULL, NULL, 0);
        if (PQresultStatus(r) != PGRES_TUPLES_OK) {
            rc = og_db_error(d->conn, r, err, errlen);
        } else {
            /* Each row names the submission it is about by its place in the arrays (two
             * submissions of one event, from two intakes, may share an inbox). */
            for (int row = 0; row < PQntuples(r); row++) {
                long n = strtol(PQgetvalue(r, row, 0), NULL, 10);
                if (n < 1 || n > src.n)
                    continue;
                struct committed *c = &found[at[n - 1]];
                if (c->case_id || c->reason)
                    continue;
                if (!PQgetisnull(r, row, 3)) {
                    const ProtobufCEnumValue *v = protobuf_c_enum_descriptor_get_value_by_name(
                        &onegrid__v1__reason__descriptor, PQgetvalue(r, row, 3));
                    /* A reason this build does not know: decided again. */
                    if (v && v->value != 0 && (c->text = strdup(PQgetvalue(r, row, 4))))
                        c->reason = v->value;
                } else {
                    c->case_id = strdup(PQgetvalue(r, row, 1));
                    c->stored_once = strcmp(PQgetvalue(r, row, 2), "t") == 0;
                }
            }
        }
        PQclear(r);
    }
    free(src.buf);
    free(ids.buf);
    free(received.buf);
    free(publishers.buf);
    free(tags.buf);
    return rc;
}

/* The answer to a resent submission that find_committed found: stored ("stored" when it is
 * the very submission stored, "duplicate" otherwise), or its recorded refusal. NULL
 * without memory. */
static Onegrid__V1__Reply *known_reply(const Onegrid__V1__Submission *s, const struct committed *c)
{
    Onegrid__V1__Reply *r = calloc(1, sizeof(*r));
    char safe[OG_REFUSAL_TEXT_MAX + 1];
    if (!r)
        return NULL;
    onegrid__v1__reply__init(r);
    r->event_id = strdup(s->event->id);
    r->source = strdup(s->source);
    if (c->reason) {
        r->result_case = ONEGRID__V1__REPLY__RESULT_NACK;
        if ((r->nack = calloc(1, sizeof(*r->nack)))) {
            onegrid__v1__nack__init(r->nack);
            r->nack->reason = (Onegrid__V1__Reason)c->reason;
            r->nack->text =
                strdup(og_utf8_safe((const uint8_t *)c->text, strlen(c->text), safe, sizeof(safe)));
        }
    } else {
        r->result_case = ONEGRID__V1__REPLY__RESULT_ACK;
        if ((r->ack = calloc(1, sizeof(*r->ack)))) {
            onegrid__v1__ack__init(r->ack);
            r->ack->outcome = c->stored_once ? ONEGRID__V1__ACK__OUTCOME__OUTCOME_STORED
                                             : ONEGRID__V1__ACK__OUTCOME__OUTCOME_DUPLICATE;
            r->ack->case_id = strdup(c->case_id);
        }
    }
    if (!r->event_id || !r->source ||
        (c->reason ? !r->nack || !r->nack->text : !r->ack || !r->ack->case_id)) {
        onegrid__v1__reply__free_unpacked(r, NULL);
        return NULL;
    }
    return r;
}

/* The digest of the event s carries (its Envelope, packed): another submission under the
 * same key with another digest is another version of the event (a corrected event), not
 * a resend. False when s carries no event (a refusal of intake's, keyed by its bytes'
 * digest already) or memory ran out. */
static bool event_digest(const Onegrid__V1__Submission *s, uint8_t digest[crypto_hash_sha256_BYTES])
{
    size_t len;
    uint8_t *buf;
    if (!s->event || s->rejection || !(buf = og_pack(&s->event->base, &len)))
        return false;
    crypto_hash_sha256(digest, buf, len);
    free(buf);
    return true;
}

/* Answers a submission whose key is in flight with another event REASON_BUSY: not a
 * refusal and not recorded; its publisher sends it again, and once the first version is
 * answered it is decided afresh (a refusal of the first is not its). Before, it was taken
 * for a resend of the first and given the first's answer: with several intakes, a corrected
 * event could be refused for a reason that was not in it. */
static void answer_busy(struct og_dispatch *d, const Onegrid__V1__Frame *f)
{
    Onegrid__V1__Reply r = ONEGRID__V1__REPLY__INIT;
    Onegrid__V1__Nack n = ONEGRID__V1__NACK__INIT;
    r.event_id = f->submission->event->id;
    r.source = f->submission->source;
    n.reason = ONEGRID__V1__REASON__REASON_BUSY;
    n.text = (char *)"another event with this source and id is being decided; send this one "
                     "again once it is answered";
    r.result_case = ONEGRID__V1__REPLY__RESULT_NACK;
    r.nack = &n;
    og_info("answering \"%s\" REASON_BUSY: another version of the event is being decided",
            f->submission->event->id);
    answer_intake(d, f->key, &r);
}

/* Decides and forwards one inbox item that is not yet committed. 0, -ENOMEM, or -EIO when
 * a closed case could not be read from the database (d->fetch_err says why): then nothing
 * was decided and the item is as it came, to be decided again. */
static int forward(struct og_dispatch *d, struct inbox_item *it, int64_t now)
{
    Onegrid__V1__Frame *f = it->frame;
    Onegrid__V1__Decision *dec = calloc(1, sizeof(*dec));
    struct pending *p = calloc(1, sizeof(*p));
    int rc;

    if (!dec || !p || !(p->key = strdup(f->key))) {
        free(dec);
        free(p);
        return -ENOMEM;
    }
    onegrid__v1__decision__init(dec);
    f->decision = dec;
    rc = og_decide(&d->decider, f->submission, now, dec);
    /* Decisions on further cases travel in the same frame (the frame owns them now). */
    f->more_decisions = d->decider.more;
    f->n_more_decisions = d->decider.n_more;
    d->decider.more = NULL;
    d->decider.n_more = 0;
    if (rc < 0) {
        for (size_t i = 0; i < f->n_more_decisions; i++)
            onegrid__v1__decision__free_unpacked(f->more_decisions[i], NULL);
        free(f->more_decisions);
        f->more_decisions = NULL;
        f->n_more_decisions = 0;
        onegrid__v1__decision__free_unpacked(dec, NULL);
        f->decision = NULL;
        evict_fetched(d);
        free(p->key);
        free(p);
        return rc;
    }
    f->epoch = d->epoch;
    free(f->shard != protobuf_c_empty_string ? f->shard : NULL);
    f->shard = strdup(d->o.shard);
    p->refusal = dec->kind == ONEGRID__V1__DECISION__KIND__KIND_REJECT;
    p->has_digest = event_digest(f->submission, p->digest);
    snprintf(p->case_id, sizeof(p->case_id), "%s", dec->case_id ? dec->case_id : "");
    if (p->refusal) {
        d->refused++;
        og_metrics_inc(og_metrics_reason(d->m.refused, dec->rejection ? dec->rejection->reason
                                                       : f->submission->rejection
                                                           ? f->submission->rejection->reason
                                                           : 0));
        if (dec->rejection)
            og_info("refusing \"%s\": %s: %s", f->submission->event ? f->submission->event->id : "",
                    og_reason_name(dec->rejection->reason), dec->rejection->text);
    } else {
        d->decided++;
        /* Until archive answers, the database may not have these decisions: memory keeps
         * their cases, a case made final included, for the next event on them. */
        rc = hold(d, p, dec->case_id);
        for (size_t i = 0; rc == 0 && i < f->n_more_decisions; i++)
            rc = hold(d, p, f->more_decisions[i]->case_id);
    }
    evict_fetched(d);
    if (rc < 0 || !f->shard || og_link_client_send(d->out, f) < 0) {
        /* Cannot happen while credit is respected (the inbox is only filled when the link
         * has room); memory now holds a decision archive never saw: reload. */
        og_log(LOG_CRIT, "could not queue a decision for archive; exiting to reload state");
        d->must_reload = true;
    }
    HASH_ADD_KEYPTR(hh, d->pending, p->key, strlen(p->key), p);
    return 0;
}

static void db_failed(struct og_dispatch *d, const char *err)
{
    og_metrics_inc(d->m.faults);
    og_metrics_error(err);
    if (og_backoff_failed(&d->db))
        og_err("database unavailable, holding %zu submissions: %s", d->n_inbox, err);
    og_daemon_status("database unavailable: %s", err);
}

/* Memory is wrong (must_reload): decide nothing more. intake resends these to the next
 * dispatch. */
static void drop_inbox(struct og_dispatch *d)
{
    for (size_t i = 0; i < d->n_inbox; i++) {
        og_link_server_forget(d->in, d->inbox[i].frame->key);
        onegrid__v1__frame__free_unpacked(d->inbox[i].frame, NULL);
    }
    d->n_inbox = 0;
}

static void process_inbox(struct og_dispatch *d)
{
    struct committed committed[BURST] = {0};
    char err[512];
    int64_t now;
    int rc;

    if (d->must_reload) {
        drop_inbox(d);
        return;
    }
    if (d->n_inbox == 0 || !og_backoff_ready(&d->db))
        return;
    if (og_db_broken(d->conn) && connect_db(d, err, sizeof(err)) < 0) {
        db_failed(d, err);
        return;
    }
    if (d->must_reload) { /* connect_db found the database of another generation */
        drop_inbox(d);
        return;
    }
    /* The batch is decided at one trusted instant; while the clocks disagree it waits
     * (intake waits behind it), and so does every answer to a resend. */
    now = trusted_now(d);
    if (now < 0) {
        if (!d->holding_said)
            og_warn("holding %zu submission%s until the clocks agree again", d->n_inbox,
                    d->n_inbox == 1 ? "" : "s");
        d->holding_said = true;
        return;
    }
    d->inbox_checked_at = og_mono_us();
    og_metrics_add(d->m.inbox_checks, 1);
    rc = find_committed(d, committed, err, sizeof(err));
    if (rc < 0) {
        for (size_t i = 0; i < d->n_inbox; i++)
            committed_clear(&committed[i]);
        if (rc == -EIO)
            db_failed(d, err);
        return;
    }
    size_t i;
    /* Memory went wrong deciding one (a decision archive will not see, a case changed
     * half-way): nothing behind it is decided from that memory, or a later decision about
     * the same case would be stored on top of one that never was, and the first one, resent
     * to the next dispatch, refused for a state it never saw. */
    for (i = 0; i < d->n_inbox && !d->must_reload; i++) {
        struct inbox_item *it = &d->inbox[i];
        struct pending *p;
        HASH_FIND_STR(d->pending, it->frame->key, p);
        uint8_t digest[crypto_hash_sha256_BYTES];
        if (p && p->has_digest && event_digest(it->frame->submission, digest) &&
            memcmp(digest, p->digest, sizeof(digest)) != 0) {
            answer_busy(d, it->frame);
        } else if (p) {
            /* a resend of something we forwarded: its answer goes where it came from last */
        } else if (committed[i].case_id || committed[i].reason) {
            struct committed *c = &committed[i];
            Onegrid__V1__Reply *r = known_reply(it->frame->submission, c);
            d->duplicates += c->case_id && !c->stored_once;
            if (r) {
                answer_intake(d, it->frame->key, r);
                onegrid__v1__reply__free_unpacked(r, NULL);
            }
        } else if ((rc = forward(d, it, now)) == -EIO) {
            break; /* a closed case could not be read: a fault, never a refusal */
        } else if (rc < 0) {
            og_log(LOG_CRIT, "out of memory deciding \"%s\"; exiting to reload state",
                   it->frame->key);
            d->must_reload = true;
        }
        committed_clear(&committed[i]);
        onegrid__v1__frame__free_unpacked(it->frame, NULL);
        it->frame = NULL;
    }
    if (d->must_reload) {
        /* Those behind it: intake resends them to the next dispatch. */
        for (size_t k = i; k < d->n_inbox; k++) {
            committed_clear(&committed[k]);
            og_link_server_forget(d->in, d->inbox[k].frame->key);
            onegrid__v1__frame__free_unpacked(d->inbox[k].frame, NULL);
        }
        d->n_inbox = 0;
        return;
    }
    if (i < d->n_inbox) {
        /* This one and those behind it wait, in order, as when find_committed fails. */
        for (size_t k = i; k < d->n_inbox; k++)
            committed_clear(&committed[k]);
        memmove(d->inbox, d->inbox + i, (d->n_inbox - i) * sizeof(*d->inbox));
        d->n_inbox -= i;
        db_failed(d, d->fetch_err);
        return;
    }
    d->n_inbox = 0;
    if (og_backoff_succeeded(&d->db))
        og_notice("database available again");
}

/* SIGHUP: loads the registry again (grids, crosswalk, sources, categories, units, rules)
 * and switches to it between two submissions; on any error the old one stays. Cases are
 * not reloaded: this dispatch is their only writer. */
static void reload_registry(struct og_dispatch *d)
{
    struct og_registry *fresh = og_registry_new();
    char err[512];

    og_daemon_reloading();
    if (!fresh) {
        og_err("reload: out of memory; keeping the current registry");
    } else if ((og_db_broken(d->conn) && connect_db(d, err, sizeof(err)) < 0) ||
               og_db_exec(d->conn, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", err,
                          sizeof(err)) ||
               og_registry_load(fresh, d->conn, err, sizeof(err)) ||
               og_db_exec(d->conn, "COMMIT", err, sizeof(err))) {
        og_err("reload failed, keeping the current registry: %s", err);
        if (!og_db_broken(d->conn))
            og_db_exec(d->conn, "ROLLBACK", err, sizeof(err));
        og_registry_destroy(&fresh);
    } else {
        og_registry_destroy(&d->reg);
        d->reg = fresh;
        d->decider.reg = fresh;
        og_notice("registry reloaded: %zu areas, %zu crosswalk entries, %zu sources, "
                  "%zu categories, %zu units, %zu rules",
                  og_registry_count(fresh, "areas"), og_registry_count(fresh, "crosswalk"),
                  og_registry_count(fresh, "sources"), og_registry_count(fresh, "categories"),
                  og_registry_count(fresh, "units"), og_registry_count(fresh, "rules"));
    }
    og_daemon_reloaded();
}

/* 督办 ---------------------------------------------------------------------------------- */

/* A pass over the open cases for 督办 (and for extension requests that lapsed) goes in
 * steps of at most SCAN_STEP_CASES cases and SCAN_STEP_DECISIONS decisions, with intake's
 * events decided between them: one pass over every case at once kept them waiting 50 to
 * 60 ms at 200,000 open cases (0.25 us a case), a tail in the latency of every event that
 * came meanwhile. A step takes about a millisecond. */
#define SCAN_STEP_CASES     4096
#define SCAN_STEP_DECISIONS 64

enum scan_stop {
    SCAN_WAIT = 1,  /* no room on the way to archive, or memory is wrong: the pass waits */
    SCAN_STEP_FULL, /* the step made its decisions: the next one goes on from this case */
};

struct scan {
    struct og_dispatch *d;
    int64_t now;
    unsigned decided; /* in this step */
    /* The cases status updates waiting in the inbox name (the database away), sorted:
     * each was received first, and is judged by that (a resolution, an extension request
     * in time); the scan passes over them until they are decided. */
    const char *waiting[BURST];
    size_t n_waiting;
};

static int str_cmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static Onegrid__V1__Timestamp *stamp(int64_t seconds)
{
    Onegrid__V1__Timestamp *t = malloc(sizeof(*t));
    if (t) {
        onegrid__v1__timestamp__init(t);
        t->seconds = seconds;
    }
    return t;
}

/* One escalation: dispatch's own event ("onegrid", "esc-<case>-<level>-<deadline>"), stored
 * like any other; its id makes a second attempt at the same level of the same clock a
 * duplicate, while a case whose supervision started over (returned, reworked: a new clock)
 * escalates again. (With "esc-<case>-<level>" that second escalation was a duplicate of the
 * first and never stored.) Before it, an extension request that lapsed undecided
 * ("lapse-<case>-<received>", of type "extension_lapsed"): its clock runs again, and may
 * make it overdue at a later pass. Returns 0 (the next case), or where the step stops. */
static int escalate_one(struct og_case *c, void *arg)
{
    struct scan *sc = arg;
    struct og_dispatch *d = sc->d;
    Onegrid__V1__Frame f = ONEGRID__V1__FRAME__INIT;
    Onegrid__V1__Submission sub = ONEGRID__V1__SUBMISSION__INIT;
    Onegrid__V1__Envelope e = ONEGRID__V1__ENVELOPE__INIT;
    Onegrid__V1__Decision *dec;
    struct pending *p;
    char id[64], key[96];
    int rc;

    /* The inbox's events were taken against the room on the way to archive (receive):
     * theirs, even while they wait (a case that could not be read from the database). An
     * escalation sent into it left a waiting event no room once the database was back,
     * and dispatch exited to reload its state. The pass waits at this case until archive's
     * answers free room (before, the rest waited for the next pass, escalation_scan_ms
     * later: with 5,000 cases falling due at once and a window of 4,000, a minute). */
    if (og_link_client_room(d->out) <= d->n_inbox)
        return SCAN_WAIT;
    if (sc->decided >= SCAN_STEP_DECISIONS)
        return SCAN_STEP_FULL;
    const char *cid = c->id;
    if (sc->n_waiting && bsearch(&cid, sc->waiting, sc->n_waiting, sizeof(*sc->waiting), str_cmp))
        return 0;
    dec = calloc(1, sizeof(*dec));
    if (!dec)
        return SCAN_WAIT;
    onegrid__v1__decision__init(dec);
    int64_t asked = c->paused_at;
    bool lapsed = false;
    rc = og_lapse(&d->decider, c, sc->now, dec);
    if (rc > 0)
        lapsed = true;
    else if (rc == 0)
        rc = og_escalate(&d->decider, c, sc->now, dec);
    if (rc < 0) {
        /* The case may have changed in memory (resumed, raised a level) with no decision
         * to tell archive: memory is wrong from here. */
        og_log(LOG_CRIT, "out of memory deciding on case %s at a scan; exiting to reload state",
               c->id);
        d->must_reload = true;
    }
    if (rc <= 0) {
        onegrid__v1__decision__free_unpacked(dec, NULL);
        return rc < 0 ? SCAN_WAIT : 0;
    }
    sc->decided++;
    if (lapsed)
        snprintf(id, sizeof(id), "lapse-%s-%lld", c->id, (long long)asked);
    else
        snprintf(id, sizeof(id), "esc-%s-%d-%lld", c->id, c->escalation_level,
                 (long long)c->deadline);
    og_event_key("onegrid", id, key, sizeof(key));
    e.id = id;
    e.source = "onegrid";
    e.type = lapsed ? "extension_lapsed" : "escalation";
    e.time = stamp(sc->now);
    sub.publisher = "onegrid-dispatch";
    sub.source = "onegrid";
    sub.received = stamp(sc->now);
    sub.event = &e;
    f.kind = ONEGRID__V1__FRAME__KIND__KIND_DATA;
    f.key = key;
    f.epoch = d->epoch;
    f.shard = (char *)d->o.shard;
    f.submission = &sub;
    f.decision = dec;
    p = calloc(1, sizeof(*p));
    if (!e.time || !sub.received || !p || !(p->key = strdup(key)) ||
        og_link_client_send(d->out, &f) < 0) {
        og_log(LOG_CRIT, "could not queue %s \"%s\"; exiting to reload state", e.type, id);
        d->must_reload = true;
        if (p)
            free(p->key);
        free(p);
    } else {
        p->internal = true;
        snprintf(p->case_id, sizeof(p->case_id), "%s", c->id);
        if (hold(d, p, c->id) < 0) {
            og_log(LOG_CRIT, "out of memory holding case %s; exiting to reload state", c->id);
            d->must_reload = true;
        }
        HASH_ADD_KEYPTR(hh, d->pending, p->key, strlen(p->key), p);
        if (lapsed) {
            char due[48];
            og_time_format(c->deadline, 0, due, sizeof(due));
            og_notice("延期: case %s: its extension request lapsed, undecided for %d working "
                      "day(s); the clock runs again, due %s",
                      c->id, d->decider.extension_decision_days, due);
            goto queued;
        }
        og_notice("督办: case %s is overdue; escalated to level %d (%s), supervisor %s", c->id,
                  c->escalation_level,
                  c->escalation_level == 1   ? "community"
                  : c->escalation_level == 2 ? "street"
                                             : "district",
                  c->supervisor ? c->supervisor : "(none registered)");
        og_metrics_inc(d->m.escalations[c->escalation_level >= 1 && c->escalation_level <= 3
                                            ? c->escalation_level
                                            : 3]);
    }
queued:
    free(e.time);
    free(sub.received);
    onegrid__v1__decision__free_unpacked(dec, NULL);
    return d->must_reload ? SCAN_WAIT : 0;
}

/* How long escalation scans wait, after dispatch starts, for intake to say HELLO, and for
 * a sender that said it to send what it held then. */
#define CATCH_UP_US (30 * 1000000LL)

/* Whether intake has sent what it held while dispatch was away (or the link was down):
 * until then an extension request or a resolution it received before a deadline may still
 * be on its way, and a scan would escalate a case that, judged by when intake received
 * them, never was overdue (review: a request received at 02:50 for a 03:00 deadline,
 * dispatch back at 04:00, escalated to level 2 first and then paused as of 02:50). At most
 * CATCH_UP_US after the start without intake, or after a HELLO. */
static bool intake_caught_up(struct og_dispatch *d)
{
    if (og_link_server_stats(d->in)->hellos == 0) {
        if (og_mono_us() - d->started_us < CATCH_UP_US)
            return false;
        if (!d->said_no_intake)
            og_notice("no intake has connected in %lld s: scanning for overdue cases without "
                      "the events it may hold",
                      CATCH_UP_US / 1000000);
        d->said_no_intake = true;
    }
    return og_link_server_catching_up(d->in, CATCH_UP_US) == 0;
}

/* One step of the pass under way (og_cases_walk_begin began it), as of now. Returns true
 * when the next step may follow at once: the pass has cases left and did not stop to wait
 * for room on the way to archive. */
static bool scan_step(struct og_dispatch *d, int64_t now)
{
    /* While the link is full dispatch reads nothing from intake, so the room archive's
     * answers free goes to a waiting pass first; with room to spare, the events read in a
     * turn come before the step. */
    if (og_link_client_room(d->out) <= d->n_inbox)
        return false;
    struct scan sc = {.d = d, .now = now};
    int64_t began = og_mono_us();
    for (size_t i = 0; i < d->n_inbox; i++) {
        const Onegrid__V1__Submission *w = d->inbox[i].frame->submission;
        /* payload is a union: test its case, never the pointers (a joint meeting's
         * decision has a count where a status update has its case id). */
        if (w && w->event && w->event->payload_case == ONEGRID__V1__ENVELOPE__PAYLOAD_STATUS)
            sc.waiting[sc.n_waiting++] = w->event->status->case_id;
    }
    if (sc.n_waiting)
        qsort(sc.waiting, sc.n_waiting, sizeof(*sc.waiting), str_cmp);
    int rc = og_cases_walk(d->cases, SCAN_STEP_CASES, escalate_one, &sc);
    int64_t took = og_mono_us() - began;
    d->scan_us += took;
    og_metrics_observe(d->m.scan_step_seconds, (double)took / 1e6);
    if (!og_cases_walking(d->cases))
        og_metrics_observe(d->m.scan_seconds, (double)d->scan_us / 1e6);
    return og_cases_walking(d->cases) && rc != SCAN_WAIT;
}

/* How long the inbox waits for its next check (INBOX_CHECK_EVERY_US); 0: it may be
 * checked now. */
static int64_t inbox_wait_us(const struct og_dispatch *d)
{
    if (d->n_inbox == 0 || d->n_inbox >= INBOX_CHECK_AT_ONCE)
        return 0;
    int64_t left = d->inbox_checked_at + INBOX_CHECK_EVERY_US - og_mono_us();
    return left > 0 ? left : 0;
}

static void receive(struct og_dispatch *d)
{
    /* Every inbox item may become a frame for archive: never take more than fits. */
    while (d->n_inbox < BURST && d->n_inbox < og_link_client_room(d->out)) {
        struct og_route from;
        Onegrid__V1__Frame *f = NULL;
        char why[256];
        int rc = og_link_server_recv(d->in, &from, &f);
        if (rc < 0)
            break;
        if (rc == 0)
            continue;
        if (og_frame_check(f, OG_FRAME_HOP_INTAKE_DISPATCH, why, sizeof(why)) < 0) {
            og_link_server_forget(d->in, f->key);
            drop_frame(&d->bad_from_intake, "intake", f, why);
            continue;
        }
        d->inbox[d->n_inbox].frame = f;
        d->n_inbox++;
    }
}

int og_dispatch_run(struct og_dispatch *d)
{
    int64_t drain_until = 0, last_status = 0;
    bool scan_more = false; /* a step of the pass over the open cases may follow at once */
    struct og_daemon_hop hop = {.name = "archive", .setting = "[dispatch] archive"};

    d->started_us = og_mono_us();
    /* The first pass is due at once (once intake has caught up): og_mono_us counts from
     * the host's boot, and with last_scan = 0 a dispatch started within escalation_scan_ms
     * of it waited that long for its first pass. */
    int64_t last_scan = d->started_us - d->o.escalation_scan_us;

    for (;;) {
        /* Handshakes (CURVE: the ZAP handler's requests) go on whatever else waits. */
        void *auth = og_link_server_auth_socket(d->in);
        zmq_pollitem_t items[3] = {
            {og_link_client_socket(d->out), 0, ZMQ_POLLIN, 0},
            {auth ? auth : og_link_client_socket(d->out), 0, ZMQ_POLLIN, 0},
            {og_link_server_socket(d->in), 0, ZMQ_POLLIN, 0},
        };
        /* Read intake only with room on the way to archive (credit flows backwards), and
         * not while the inbox waits for its next check: what comes meanwhile waits in the
         * socket, and is read when the wait is over, before the check. */
        bool room = !drain_until && d->n_inbox < BURST && d->n_inbox < og_link_client_room(d->out);
        int64_t wait_us = inbox_wait_us(d);
        int n = room && wait_us == 0 ? 3 : 2;
        long timeout = scan_more     ? 0
                       : wait_us > 0 ? (long)((wait_us + 999) / 1000)
                       : d->n_inbox  ? 10
                                     : 100;
        int64_t now;

        if (zmq_poll(items, n, timeout) < 0 && errno != EINTR) {
            og_err("zmq_poll: %s", zmq_strerror(errno));
            return -errno;
        }
        og_daemon_watchdog();
        og_link_server_auth(d->in);
        og_link_client_recv(d->out, on_archive_answer, d);
        og_daemon_watch_hop(&hop, d->out);
        if (d->fenced)
            return -ESTALE;
        if (og_reload_requested) {
            og_reload_requested = 0;
            reload_registry(d);
        }
        /* The inbox's wait is over: what came meanwhile joins this check. Only with the
         * room there was before the poll: room archive's answers free in this turn goes
         * to a pass's step first (scan_step). */
        if (n == 3 || (room && inbox_wait_us(d) == 0))
            receive(d);
        if (inbox_wait_us(d) == 0)
            process_inbox(d);
        if (d->fenced)
            return -ESTALE;
        scan_more = false;
        if (!drain_until && !d->must_reload && !og_cases_walking(d->cases) &&
            og_mono_us() - last_scan >= d->o.escalation_scan_us && intake_caught_up(d)) {
            og_cases_walk_begin(d->cases);
            d->scan_us = 0;
            last_scan = og_mono_us();
            if (!og_cases_walking(d->cases)) /* no open case */
                og_metrics_observe(d->m.scan_seconds, 0);
        }
        if (!drain_until && !d->must_reload && og_cases_walking(d->cases) && intake_caught_up(d)) {
            int64_t now_s = trusted_now(d);
            if (now_s >= 0)
                scan_more = scan_step(d, now_s);
        } else if (!og_clock_trusted(&d->clock) && !drain_until) {
            trusted_now(d); /* notice soon when the clocks agree again */
        }
        if (!drain_until && og_link_client_held(d->out) &&
            og_mono_us() - d->epoch_checked_at >= EPOCH_CHECK_EVERY_US)
            check_epoch(d);
        og_link_client_tick(d->out);
        metrics_update(d);

        now = og_mono_us();
        if ((og_stop_requested || d->must_reload) && !drain_until) {
            og_daemon_stopping();
            og_notice("stopping: %zu decisions waiting for archive (up to %d ms)",
                      og_link_client_held(d->out), d->o.drain_ms);
            drain_until = now + (int64_t)d->o.drain_ms * 1000;
        }
        /* Submissions held for the clocks are not waited for: intake resends them. */
        if (drain_until && ((og_link_client_held(d->out) == 0 &&
                             (d->n_inbox == 0 || !og_clock_trusted(&d->clock))) ||
                            now >= drain_until)) {
            if (og_link_client_held(d->out))
                og_warn("stopped with %zu decisions unanswered; the next dispatch reloads "
                        "what was committed and intake resends the rest",
                        og_link_client_held(d->out));
            og_notice("stopped: %llu decided, %llu refused, %llu duplicates",
                      (unsigned long long)d->decided, (unsigned long long)d->refused,
                      (unsigned long long)d->duplicates);
            return d->must_reload ? -ESTALE : 0;
        }
        if (now - last_status > 5000000 && !d->db.wait) {
            if (!og_clock_trusted(&d->clock))
                hold_status(d);
            else
                og_daemon_status(
                    "epoch %llu: %llu decided, %llu refused, %llu duplicates, %zu cases open, "
                    "%zu waiting for archive, %llu malformed frames dropped",
                    (unsigned long long)d->epoch, (unsigned long long)d->decided,
                    (unsigned long long)d->refused, (unsigned long long)d->duplicates,
                    og_cases_count(d->cases), og_link_client_held(d->out),
                    (unsigned long long)(d->bad_from_intake.total + d->bad_from_archive.total));
            last_status = now;
        }
    }
}
