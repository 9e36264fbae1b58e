/* onegrid-dispatch: owns the case state of one shard (a unified-code prefix). It takes a
 * fencing epoch in PostgreSQL, loads the registry and the shard's cases, then decides for
 * each submission from intake: map the source's grid id to the unified grid, open a case
 * and route it, or move an existing case along its lifecycle, or refuse with a reason.
 * Each decision goes to archive with the event; the answer goes back to intake.
 *
 * registry.c   grids, crosswalk, sources, categories, units, routing rules, calendar
 * calendar.c   working days (holidays, make-up days) and deadlines on them
 * lifecycle.c  the case state machine (which step is allowed from which state)
 * cases.c      the shard's open cases in memory, closed ones fetched, case numbering
 * decide.c     one submission -> one decision (no I/O but fetching a closed case)
 * clock.c      whether the wall clock may be trusted to date decisions and escalate
 * dispatch.c   the engine: fencing, loading, duplicate checks, the link both ways
 * main.c       arguments, configuration, sockets, readiness */
#ifndef OG_DISPATCH_H
#define OG_DISPATCH_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "link.h"
#include "onegrid/v1/internal.pb-c.h"

#define OG_CODE_MAX 16 /* unified area codes: 6 to 15 digits */

/* calendar.c */

/* Working days and deadlines. Days are counted in China Standard Time (UTC+8, no DST);
 * a working day is Monday to Friday unless og.calendar_day says otherwise (a public
 * holiday, or a weekend make-up working day, 调休); working hours are 09:00-17:00. */
struct og_calendar;

struct og_calendar *og_calendar_new(void);
void og_calendar_destroy(struct og_calendar **cal);
/* day: days since 1970-01-01 (local). 0 or -ENOMEM. */
int og_calendar_set(struct og_calendar *cal, int64_t day, bool working);
bool og_calendar_working(const struct og_calendar *cal, int64_t day);
/* Days listed as exceptions. */
size_t og_calendar_count(const struct og_calendar *cal);
/* When a stage started at start (seconds) with limit in unit ("hours", "working_hours",
 * "working_days") is due: hours run day and night; working hours count only 09:00-17:00
 * of working days; working days end at 17:00 of the limit-th working day after start. */
int64_t og_calendar_deadline(const struct og_calendar *cal, int64_t start, int limit,
                             const char *unit);
/* start plus seconds of working time (09:00-17:00 of working days). */
int64_t og_calendar_add_working(const struct og_calendar *cal, int64_t start, int64_t seconds);
/* The working time, in seconds, between from and to (0 when to <= from). */
int64_t og_calendar_working_between(const struct og_calendar *cal, int64_t from, int64_t to);
/* A clock paused at paused_at resumes at now: the new deadline leaves the stage the time
 * it had left when paused — working time for "working_hours" and "working_days" limits
 * (the latter due at the close of the working day it falls in), plain time for "hours". */
int64_t og_calendar_resume(const struct og_calendar *cal, int64_t deadline, int64_t paused_at,
                           int64_t now, const char *unit);

/* registry.c */

struct og_rule {
    int64_t id;
    int version;
    char *category; /* NULL: any category */
    char prefix[OG_CODE_MAX];
    char *unit;
    int priority;
    int64_t valid_from, valid_to; /* seconds; INT64_MIN / INT64_MAX for unbounded */
};

struct og_category_info {
    const char *code;
    const char *unit_level;
    int time_limit;
    const char *time_unit;
    bool check_required;
    const char *kind; /* part, event, demand, hazard, dispute, policy (NULL: not known) */
};

struct og_registry;

struct og_registry *og_registry_new(void);
void og_registry_destroy(struct og_registry **r);
/* Loads everything from PostgreSQL (in the caller's transaction). 0 or -EIO with err. */
int og_registry_load(struct og_registry *r, PGconn *c, char *err, size_t errlen);
/* Building blocks, used by the loader and by tests. 0 or -ENOMEM / -EINVAL. */
int og_registry_add_area(struct og_registry *r, const char *code, const char *level,
                         const char *parent, const char *district);
int og_registry_add_source(struct og_registry *r, const char *code);
int og_registry_add_crosswalk(struct og_registry *r, const char *source, const char *grid_id,
                              const char *area);
int og_registry_add_category(struct og_registry *r, const struct og_category_info *c);
int og_registry_add_unit(struct og_registry *r, const char *code, const char *area);
int og_registry_add_rule(struct og_registry *r, const struct og_rule *rule);
int og_registry_add_supervisor(struct og_registry *r, const char *area, const char *unit);
/* The unit supervising an area (community, street or district), or NULL. */
const char *og_registry_supervisor(const struct og_registry *r, const char *area);

bool og_registry_has_source(const struct og_registry *r, const char *source);
bool og_registry_has_unit(const struct og_registry *r, const char *unit);
/* The unified area a source's grid id maps to, or NULL. */
const char *og_registry_map(const struct og_registry *r, const char *source, const char *grid);
/* Adds the boundary of a grid (15 digits): n_points >= 3 WGS 84 vertices as lon, lat
 * pairs (lonlat holds 2 * n_points doubles, copied), the last joining the first. 0, or
 * -EINVAL (a bad code, too few vertices, a coordinate out of range), -EEXIST (the grid has
 * one already), -ENOMEM. */
int og_registry_add_boundary(struct og_registry *r, const char *grid, const double *lonlat,
                             size_t n_points);
/* The grid at or under area (a district, street, community or grid code; a grid counts as
 * under itself) whose boundary contains the point, or NULL: no boundary is known there, the
 * point is in none, or it is in more than one (overlapping grids, or on the border of two
 * neighbours) — never a guess. A point on a boundary is inside it. It never answers a grid
 * outside area, so the crosswalk's answer stays authoritative: a source that names a grid
 * keeps it (NULL when the point is outside it), one that knows only the community or the
 * street is narrowed down to a grid. Even-odd rule on lon/lat taken as a plane (fine
 * within a city). The code returned is the registry's, valid while r lives. */
const char *og_registry_locate(const struct og_registry *r, const char *area, double latitude,
                               double longitude);
/* The district (6-digit county code) of an area, or NULL when unknown. */
const char *og_registry_district(const struct og_registry *r, const char *area);
const struct og_category_info *og_registry_category(const struct og_registry *r, const char *code);
/* The rule for category in area at time t: longest matching prefix, then a rule naming
 * the category over a catch-all, then the higher priority. NULL when none applies. */
const struct og_rule *og_registry_route(const struct og_registry *r, const char *category,
                                        const char *area, int64_t t);
/* The same, among rules that send the case to none of the n_except units in except. */
const struct og_rule *og_registry_route_except(const struct og_registry *r, const char *category,
                                               const char *area, int64_t t, char *const *except,
                                               size_t n_except);
size_t og_registry_count(const struct og_registry *r, const char *what);
/* A time limit for category at a CAP severity (1 extreme .. 4 minor), overriding the
 * category's own; false when the catalogue has none. */
int og_registry_add_severity_limit(struct og_registry *r, const char *category, int severity,
                                   int limit, const char *unit);
bool og_registry_severity_limit(const struct og_registry *r, const char *category, int severity,
                                int *limit, const char **unit);
/* The working-day calendar (owned by the registry). */
struct og_calendar *og_registry_calendar(struct og_registry *r);

/* Who may send what (og.source_unit_grant, og.source_action_grant): a field in the payload
 * never grants a right, the authenticated source system does. Case actions beyond a
 * unit's own status updates, each granted to source systems by name. */
enum og_action {
    OG_ACTION_EVALUATION,         /* 满意度评价 */
    OG_ACTION_MEETING_DECISION,   /* 联席会 decisions */
    OG_ACTION_SPLIT,              /* 拆分 */
    OG_ACTION_MEDIATION,          /* 调解 outcomes (a status update with a mediation) */
    OG_ACTION_EXTENSION_DECISION, /* approving or refusing a pending extension request */
    OG_ACTION_CHECK,              /* 核查: a resolved case checked (passed or failed) */
    OG_ACTION_CLOSE,              /* 结案 and 作废: a case closed or voided */
    OG_ACTION_COUNT
};
/* The action's name as og.source_action_grant.action spells it. */
const char *og_action_name(enum og_action a);
/* Grants source the right to speak for unit_pattern: a unit code, or a prefix ending in
 * '*' ("CGJ-*"). 0, -EINVAL, -ENOMEM. */
int og_registry_add_unit_grant(struct og_registry *r, const char *source, const char *unit_pattern);
/* Grants source an action by its name. 0, -EINVAL (unknown action), -ENOMEM. */
int og_registry_add_action_grant(struct og_registry *r, const char *source, const char *action);
/* True when source may send status updates for unit. */
bool og_registry_speaks_for(const struct og_registry *r, const char *source, const char *unit);
/* True when source may send action. */
bool og_registry_may(const struct og_registry *r, const char *source, enum og_action a);

/* lifecycle.c */

/* Case states, in lowercase as stored in og.case.state. */
#define OG_STATE_REPORTED    "reported"   /* filed, not yet routed to a unit */
#define OG_STATE_DISPATCHED  "dispatched" /* routed; the unit's clock runs */
#define OG_STATE_ACCEPTED    "accepted"
#define OG_STATE_IN_PROGRESS "in_progress"
#define OG_STATE_RESOLVED    "resolved"
#define OG_STATE_CHECKED     "checked"
#define OG_STATE_CLOSED      "closed"
#define OG_STATE_EVALUATED   "evaluated"
#define OG_STATE_VOIDED      "voided"
#define OG_STATE_RETURNED    "returned"
#define OG_STATE_SHELVED     "shelved" /* in the demand list (需求清单), clock stopped */

/* The state after a unit's status update, or NULL when the step is not allowed from
 * state (why then says so). check_required: the category needs a field check (核查)
 * before closing. */
const char *og_lifecycle_status(const char *state, int status, bool check_required, char *why,
                                size_t whylen);
/* The state after a resident's evaluation, or NULL when not allowed. */
const char *og_lifecycle_evaluation(const char *state, int result, char *why, size_t whylen);
/* True for states that no longer need a unit's work. */
bool og_lifecycle_final(const char *state);

/* dispatch's conclusions on a case, written into each decision (Decision.stage, .clock)
 * and kept by og.case as columns: what the auditor's views, KPIs and the feed read. */
#define OG_STAGE_HANDLING "handling" /* the unit's work: reported to in progress, returned... */
#define OG_STAGE_CHECKING "checking" /* resolved or checked: a check, then closing */
#define OG_STAGE_FINAL    "final"    /* og_lifecycle_final */
#define OG_CLOCK_RUNNING  "running"  /* handling, a deadline, not paused: can be overdue */
#define OG_CLOCK_PAUSED   "paused"   /* handling, an extension request pending */
#define OG_CLOCK_NONE     "none"     /* no deadline, or not handling */
/* What a case in state waits for: OG_STAGE_*. */
const char *og_lifecycle_stage(const char *state);
struct og_case;
/* Case c's clock: OG_CLOCK_*. Only a running clock makes a case overdue, and escalated. */
const char *og_lifecycle_clock(const struct og_case *c);

/* cases.c */

struct og_case {
    char id[32];
    char district[8];
    char area[OG_CODE_MAX];
    char *category;
    char state[16];
    char *unit; /* NULL when not routed */
    int64_t rule_id;
    int rule_version;
    int contacts;
    int64_t opened, deadline, closed; /* seconds; 0 = none */
    int escalation_level;             /* 督办: 0 none, 1 community, 2 street, 3 district */
    char *supervisor;                 /* the unit escalated to, NULL when none */
    int64_t occurred;                 /* when the opening report says it happened */
    bool has_location;                /* the opening report's WGS 84 position */
    double latitude, longitude;
    int severity;          /* CAP severity of the opening report (0 none): sets every clock */
    int64_t paused_at;     /* an extension request is pending since then (0: clock runs) */
    int64_t clock_started; /* when the current clock started (0: none) */
    int64_t lapsed_at;     /* when its last extension request lapsed undecided (0: none) */
    /* The pause that lapse ended: since when, and the deadline it paused (0: unknown). */
    int64_t lapsed_paused_at, lapsed_paused_deadline;
    int extension_days;    /* the working days it asks for */
    char **returned_units; /* units that returned the case (退回), never routed back to */
    size_t n_returned;
};

/* A report that joined an open case by a merge: what a split (拆分) needs to make it a
 * case of its own again. */
struct og_report {
    char *key; /* "source\x1fevent id" */
    char case_id[32];
    char area[OG_CODE_MAX];
    int64_t occurred;
    bool has_location;
    double latitude, longitude;
    int severity;
};

/* What makes a new report the same problem as an open case (最多跑一次). */
struct og_merge_rule {
    int64_t window;    /* seconds between the two reports' times; 0 turns merging off */
    double distance_m; /* when both have coordinates, at most this far apart */
};

/* The shard's cases in memory: every case that is not final (og_lifecycle_final), and a
 * final one only while a decision on it is on its way to archive (og_cases_hold) or while
 * an event that fetched it is decided. PostgreSQL has all the others as last decided: a
 * closed case is read back (og_cases_fetch) on the rare event that touches it. */
struct og_cases;

struct og_cases *og_cases_new(void);
void og_cases_destroy(struct og_cases **cs);
/* Loads the shard's cases that are not final, the reports merged into them, and each
 * district's highest case number, closed cases included (numbering goes on above it). In
 * the caller's transaction; rows are streamed, never all held in one result. 0, or -EIO
 * or -ENOMEM with err filled. */
int og_cases_load(struct og_cases *cs, PGconn *c, const char *shard, char *err, size_t errlen);
/* Reads case id of shard, with its merged reports, from the database into memory (memory
 * holds no final case for long). 1 when found (or already in memory), 0 when the shard
 * has no such case, -EIO with err filled when the database failed (a fault, never an
 * answer: ask again later), -ENOMEM. */
int og_cases_fetch(struct og_cases *cs, PGconn *c, const char *shard, const char *id, char *err,
                   size_t errlen);
struct og_case *og_cases_find(struct og_cases *cs, const char *id);
/* Adds a copy of c (strings duplicated), indexed for merging unless it is final; the
 * numbering of its district goes on above it. The copy, or NULL when memory holds c->id
 * already or on ENOMEM. */
struct og_case *og_cases_put(struct og_cases *cs, const struct og_case *c);
/* A decision on case id goes to archive: memory keeps the case, final or not, until the
 * matching og_cases_release, so that the next event on it sees what the database may not
 * have yet. Unknown ids are ignored. */
void og_cases_hold(struct og_cases *cs, const char *id);
/* Archive answered for a decision on case id: one hold less, then og_cases_evict. */
void og_cases_release(struct og_cases *cs, const char *id);
/* Forgets case id and its merged reports when it is final and no decision on it is in
 * flight; true when it did (pointers to it are invalid then). */
bool og_cases_evict(struct og_cases *cs, const char *id);
/* A new case with the next number of its district ("650204-00000042"); NULL on ENOMEM. */
struct og_case *og_cases_open(struct og_cases *cs, const char *district, const char *area,
                              const char *category);
/* True when a case in state takes reports of its problem (merging): open, and not resolved
 * or checked (its work is done). */
bool og_cases_takes_reports(const char *state);
/* Indexes c for merging (og_cases_open does it, og_cases_put too; twice is harmless). 0
 * or -ENOMEM. */
int og_cases_index(struct og_cases *cs, struct og_case *c);
/* The open case a new report of category in area, which happened at occurred (with its
 * position, if has_location), joins under rule, or NULL: same category, areas nested
 * within one community, the two reports' times within the window, and within distance
 * when both have coordinates. Of several, the one whose report is nearest in time. */
struct og_case *og_cases_find_merge(struct og_cases *cs, const char *category, const char *area,
                                    bool has_location, double latitude, double longitude,
                                    int64_t occurred, const struct og_merge_rule *rule);
/* Great-circle distance in metres between two WGS 84 points. */
double og_distance_m(double lat1, double lon1, double lat2, double lon2);
/* Records that report (source, event_id) joined case_id by a merge; copies r's fields.
 * 0 or -ENOMEM. */
int og_cases_add_report(struct og_cases *cs, const char *source, const char *event_id,
                        const struct og_report *r);
/* The merged report (source, event_id), or NULL. */
struct og_report *og_cases_find_report(struct og_cases *cs, const char *source,
                                       const char *event_id);
/* Forgets a merged report (it was split off). */
void og_cases_drop_report(struct og_cases *cs, struct og_report *r);
/* Adds unit to the case's returned units. 0 or -ENOMEM. */
int og_case_add_returned(struct og_case *c, const char *unit);
/* Sets a case's unit (NULL allowed). 0 or -ENOMEM. */
int og_case_set_unit(struct og_case *c, const char *unit);
size_t og_cases_count(const struct og_cases *cs);

/* decide.c */

struct og_decider {
    struct og_registry *reg;
    struct og_cases *cases;
    const char *shard;
    struct og_merge_rule merge;
    /* Working days the supervising units have to decide an extension request; then it
     * lapses and the clock runs again (0: a request waits for its decision for ever). */
    int extension_decision_days;
    /* Brings case id into cases when memory does not hold it (a final case, kept only in
     * the database): 0 whether the case exists or not, negative when it could not be
     * read (-EIO: a fault, never a refusal). NULL: memory holds every case (tests). */
    int (*fetch)(void *fetch_arg, const char *id);
    void *fetch_arg;
    /* Decisions on further cases of the same event (a joint meeting acts on several):
     * og_decide leaves them here; the caller takes them (and sets n_more to 0). */
    Onegrid__V1__Decision **more;
    size_t n_more;
};

/* Fills d (initialised by the caller; strings it sets are malloc'ed, so free d with
 * onegrid__v1__decision__free_unpacked semantics) and updates the in-memory cases. The
 * decision is final: archive stores it as given. Returns 0, -ENOMEM, or what dc->fetch
 * returned when it failed: then nothing is decided and nothing changed but the cases
 * fetched before (final, unchanged, og_cases_evict takes them out again); decide the
 * submission again later. */
int og_decide(struct og_decider *dc, const Onegrid__V1__Submission *s, int64_t now,
              Onegrid__V1__Decision *d);
/* 督办: if open case c is past its deadline and its next escalation level is due at now
 * (level k at deadline + (k - 1) x its time limit, up to 3), raises it one level and fills
 * d (KIND_ESCALATE); returns 1. Returns 0 when nothing is due, -ENOMEM. */
int og_escalate(struct og_decider *dc, struct og_case *c, int64_t now, Onegrid__V1__Decision *d);
/* When the extension request pending on c lapses undecided: at the close of the
 * extension_decision_days-th working day after it was received. 0: none pending, or
 * requests never lapse. */
int64_t og_extension_lapses(const struct og_decider *dc, const struct og_case *c);
/* If c's pending extension request has lapsed at now (og_extension_lapses), resumes its
 * clock as of the moment it lapsed and fills d (KIND_UPDATE_CASE, the state unchanged);
 * returns 1. Returns 0 when nothing lapsed, -ENOMEM. */
int og_lapse(struct og_decider *dc, struct og_case *c, int64_t now, Onegrid__V1__Decision *d);
/* A walk over every case in memory, a step at a time, with other work between the steps
 * (dispatch's scan for overdue cases: a step decides nothing else meanwhile, so each is
 * short). og_cases_walk_begin starts one (over again if one was under way). Each case
 * there when it began and still there when the walk reaches it is visited once; one
 * forgotten (evicted) meanwhile is not, and one added meanwhile is visited unless the
 * walk had already passed the last case (one fetched back after its eviction: again). */
void og_cases_walk_begin(struct og_cases *cs);
/* Whether the walk has cases left to visit. */
bool og_cases_walking(const struct og_cases *cs);
/* Calls fn for the walk's next cases, at most max of them. When fn returns non-zero the
 * step ends there and returns that value, and the next step begins with the same case
 * again (fn waits for something: room on a link); otherwise 0. fn may change, add or
 * forget cases. */
int og_cases_walk(struct og_cases *cs, size_t max, int (*fn)(struct og_case *c, void *arg),
                  void *arg);

/* clock.c */

/* Whether dispatch may trust its wall clock (CLOCK_REALTIME), which dates every decision
 * and decides when a case is overdue. Two witnesses: the boot-time clock (monotonic,
 * counting suspend), which the wall clock must follow since their last agreement, and
 * the database's clock, whose difference from the wall clock must stay what it was at
 * their last agreement (learnt at start: a dispatch whose clock differs from the
 * database's by a constant is trusted, e.g. one run under faketime). A difference beyond
 * the bound either way is a step: the clock is not trusted until both agree again.
 * Within the bound, each agreement becomes the new reference, so drift and an operator's
 * small correction are absorbed. Readings are passed in, so tests give their own; nothing
 * here logs. */
struct og_clock {
    int64_t bound;              /* us */
    int64_t wall_ref, boot_ref; /* wall and boot time at the last agreement */
    bool wall_off;              /* the wall clock disagrees with boot time */
    int64_t wall_step;          /* then: how far it is from the reckoning (+: ahead) */
    bool db_known;              /* db_ref was learnt */
    int64_t db_ref;             /* database's clock minus the wall clock, last agreement */
    bool db_off;                /* that difference moved beyond the bound */
    int64_t db_step;            /* then: by how much */
};

enum og_clock_change {
    OG_CLOCK_UNCHANGED,
    OG_CLOCK_LOST,     /* the clocks disagreed just now */
    OG_CLOCK_REGAINED, /* they agree again */
};

/* CLOCK_BOOTTIME in microseconds. */
int64_t og_clock_boot_us(void);
/* Starts trusting: wall_us and boot_us were read together. */
void og_clock_init(struct og_clock *k, int64_t bound_us, int64_t wall_us, int64_t boot_us);
/* A wall clock reading and a boot-time reading taken together. */
enum og_clock_change og_clock_observe(struct og_clock *k, int64_t wall_us, int64_t boot_us);
/* The database's clock db_us, read between wall readings wall0_us and wall1_us. The first
 * reading (while the wall clock agrees with boot time) sets the reference; a round trip
 * over half the bound tells nothing and is ignored. */
enum og_clock_change og_clock_observe_db(struct og_clock *k, int64_t db_us, int64_t wall0_us,
                                         int64_t wall1_us);
bool og_clock_trusted(const struct og_clock *k);
/* What disagrees, by how much, in words ("the wall clock is 2592000 s (30.0 days) ahead
 * of the boot-time clock's reckoning"). */
void og_clock_describe(const struct og_clock *k, char *buf, size_t len);

/* dispatch.c */

struct og_dispatch_opts {
    const char *shard;
    const char *conninfo;
    const char *holder; /* who takes the epoch, for og.dispatch_epoch.holder */
    int drain_ms;
    int64_t escalation_scan_us; /* how often open cases are checked for 督办 */
    int64_t max_clock_step_us;  /* a larger step of the wall clock is not trusted (clock.c) */
    /* How long a statement may wait for a lock once state is loaded (0: no limit): one
     * that waits longer (for a lock an operator holds) is then cancelled by the server, a
     * fault that is retried, and the loop goes on (watchdog, escalations, links) instead of
     * hanging in libpq. */
    long lock_timeout_ms;
    struct og_merge_rule merge;
    int extension_decision_days; /* og_decider's */
};

struct og_dispatch;

/* Connects, takes the epoch and loads state. NULL (logged) on failure. */
struct og_dispatch *og_dispatch_new(const struct og_dispatch_opts *o,
                                    struct og_link_server *from_intake,
                                    struct og_link_client *to_archive);
void og_dispatch_destroy(struct og_dispatch **d);
uint64_t og_dispatch_epoch(const struct og_dispatch *d);
/* Sets the server intake connects to (made after state is loaded). */
void og_dispatch_set_intake(struct og_dispatch *d, struct og_link_server *from_intake);
/* Runs until stopped or fenced. 0 on a clean stop, -ESTALE when fenced by a newer epoch
 * or when committed state disagreed with memory (a restart reloads it). */
int og_dispatch_run(struct og_dispatch *d);

#endif
