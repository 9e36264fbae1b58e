#include "archive.h"

#include <errno.h>
#include <json-c/json.h>
#include <libpq-fe.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chainsig.h"
#include "db.h"
#include "jsonb_text.h"
#include "log.h"
#include "pbjson.h"
#include "records.h"
#include "util.h"
#include "validate.h"

/* The arrays og.store_opened and og.store_moved take, in PostgreSQL's binary array format: one
 * dimension, lower bound 1, each element its length (-1: NULL) and its bytes (jsonb: a version
 * byte, 1, then its text). */
enum { SET_ARGS = 9, CONTACTS = 8 };

struct pgarray {
    uint8_t *buf;
    size_t len, cap;
    uint32_t n;
    bool nulls, oom;
};

/* The most room a store keeps for each of a set-based call's arrays between calls: more than
 * an ordinary batch of 1,000 events needs, so that its call is built into room already
 * there (an array that grew beyond it is given back after its call). 18 MiB at most. */
#define OG_STORE_ARRAY_KEEP (2u << 20)

struct og_store {
    char *conninfo;
    char *name;
    PGconn *conn;
    /* conn's, for og_store_cancel from another thread: set and freed under cancel_mu, which
     * og_store_connect on the committing thread and a cancel at stop both take. */
    PGcancel *cancel;
    pthread_mutex_t cancel_mu;
    bool signing; /* sign each link end_batch appends with sk */
    /* Whether archive makes the digests of the records the set-based calls store, for
     * og.end_batch (given rows), rather than leave them to the database: until og.end_batch
     * finds one that differs from its own (og.given_digests, end_given), or fails. */
    bool own_digests;
    uint64_t given;             /* rows whose digests were given, in committed batches */
    struct og_records *records; /* makes them; NULL: none made */
    unsigned batches;           /* given digests since the connection was made: every
                                 * OG_STORE_CHECK_EVERY-th, the first included, is checked */
    long lock_timeout_ms;
    int generation; /* the database's (og_db_generation) at the last connection */
    uint8_t sk[OG_CHAINSIG_SECRET_BYTES];
    uint8_t pk[OG_CHAINSIG_PUBLIC_BYTES];
    /* The arrays of the last set-based call, kept for the next (up to OG_STORE_ARRAY_KEEP
     * each): a call's megabytes are not allocated, faulted in and given back each time.
     * args[CONTACTS] is wiped after each call: reporters' contacts are kept apart so that
     * they can be erased. */
    struct pgarray args[SET_ARGS];
};

static const char SQL_BEGIN_BATCH[] = "SELECT og.begin_batch($1, $2, $3)";
/* now(), as the ledger rows' recorded_at and the event keys' stored_at are hashed. */
static const char SQL_NOW[] = "SELECT (extract(epoch FROM now()) * 1000000)::bigint";
static const char SQL_RETIRE_EPOCH[] = "SELECT og.retire_epoch($1, $2, $3)";
static const char SQL_STORE_EVENT[] =
    "SELECT outcome, case_id FROM og.store_event($1, $2, $3, $4, $5::jsonb, $6::bytea, "
    "$7::jsonb, $8::bytea, $9::boolean, $10::jsonb)";
/* og.store_opened and og.store_moved take the same arrays and answer alike. */
#define SQL_STORE_SET(fn)                                                                          \
    "SELECT i, outcome, case_id, ledger_id, decision_ledger_id FROM " fn "($1::text[], "           \
    "$2::text[], $3::text[], $4::text[], "                                                         \
    "$5::jsonb[], $6::bytea[], $7::jsonb[], $8::bytea[], $9::jsonb[])"
static const char SQL_STORE_REJECTION[] =
    "SELECT og.store_rejection($1::timestamptz, $2, $3, $4, $5, $6, $7::bytea, $8::integer, "
    "$9::bytea)";
/* The shard's epoch; for a shard the database has none of, the one a dispatch would take
 * first (og.take_epoch): every epoch of a record at or above it is one the database has
 * not given. */
static const char SQL_EPOCH[] =
    "SELECT coalesce((SELECT epoch FROM og.dispatch_epoch WHERE shard = $1), "
    "og.generation_moved('epoch') + 1)";
static const char SQL_STORE_DECISION[] =
    "SELECT og.store_decision($1, $2, $3, $4, $5::jsonb, $6::bytea)";
/* The links the batch appended (deploy/sql/current/og.end_batch.sql), in the columns
 * sign_and_commit reads. */
static const char SQL_END_BATCH[] =
    "SELECT district_code, seq, batch_id, format, encode(hash, 'hex') FROM og.end_batch()";
/* The same, given the digests of the rows the set-based calls stored (send_end_given); then
 * why og.end_batch did not use them, if it did not (NULL when it did). */
static const char SQL_END_BATCH_GIVEN[] =
    "SELECT district_code, seq, batch_id, format, encode(hash, 'hex') FROM og.end_batch("
    "$1::bigint, $2::text[], $3::bytea[], $4::bytea[], $5::integer[], $6::integer[], "
    "$7::bigint[], $8::bigint[], $9::boolean)";
static const char SQL_GIVEN_REFUSED[] = "SELECT current_setting('og.given_digests', true)";
/* og.end_batch compares archive's digests with its own for the first batch on each
 * connection and one in this many after it: a change in how the database hashes a record
 * (a definition archive was not built for is refused at connect, og_db_schema_check)
 * shows at once, for 1/64 of the digests' cost. */
#define OG_STORE_CHECK_EVERY 64u
static const char SQL_SIGN_LINK[] = "SELECT og.sign_link($1, $2::bigint, $3::bytea, $4::bytea)";

struct og_store *og_store_new(const char *conninfo, const char *name)
{
    struct og_store *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    if (pthread_mutex_init(&s->cancel_mu, NULL) != 0) {
        free(s);
        return NULL;
    }
    s->conninfo = strdup(conninfo);
    s->name = strdup(name);
    s->records = og_records_new();
    s->own_digests = s->records != NULL;
    if (!s->conninfo || !s->name)
        og_store_destroy(&s);
    return s;
}

void og_store_destroy(struct og_store **sp)
{
    struct og_store *s = *sp;
    if (!s)
        return;
    if (s->cancel)
        PQfreeCancel(s->cancel);
    if (s->conn)
        PQfinish(s->conn);
    pthread_mutex_destroy(&s->cancel_mu);
    for (int k = 0; k < SET_ARGS; k++) /* args[CONTACTS] was wiped after its call */
        free(s->args[k].buf);
    sodium_memzero(s->sk, sizeof(s->sk));
    og_records_free(s->records);
    free(s->conninfo);
    free(s->name);
    free(s);
    *sp = NULL;
}

static int prepare(PGconn *c, const char *name, const char *sql, char *err, size_t errlen)
{
    PGresult *r = PQprepare(c, name, sql, 0, NULL);
    int rc = PQresultStatus(r) == PGRES_COMMAND_OK ? 0 : og_db_error(c, r, err, errlen);
    PQclear(r);
    return rc;
}

/* Replaces the cancel object og_store_cancel uses by conn's (none: NULL). */
static void set_cancel(struct og_store *s, PGconn *conn)
{
    PGcancel *c = conn ? PQgetCancel(conn) : NULL; /* NULL without memory: no cancel */
    pthread_mutex_lock(&s->cancel_mu);
    PGcancel *old = s->cancel;
    s->cancel = c;
    pthread_mutex_unlock(&s->cancel_mu);
    if (old)
        PQfreeCancel(old);
}

/* The database's notices and warnings on the store's connection, in archive's log (not on
 * its standard error). og.end_batch's OG005 is not: end_given says it. Runs on the thread
 * that commits. */
static void store_notice(void *arg, const PGresult *r)
{
    const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    const char *m = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
    const char *severity = PQresultErrorField(r, PG_DIAG_SEVERITY_NONLOCALIZED);
    char msg[1024];

    (void)arg;
    if (state && strcmp(state, "OG005") == 0)
        return;
    m = m ? m : "";
    og_utf8_safe((const uint8_t *)m, strlen(m), msg, sizeof(msg));
    severity = severity ? severity : "NOTICE";
    og_log(strcmp(severity, "WARNING") == 0 ? LOG_WARNING : LOG_NOTICE, "database %s: %s", severity,
           msg);
}

int og_store_connect(struct og_store *s, char *err, size_t errlen)
{
    set_cancel(s, NULL);
    if (s->conn)
        PQfinish(s->conn);
    s->conn = og_db_connect(s->conninfo, "onegrid-archive", err, errlen);
    if (!s->conn)
        return -EIO;
    PQsetNoticeReceiver(s->conn, store_notice, NULL);
    s->batches = 0;
    /* The set-up below can wait (a lock a migration holds, with no lock_timeout): it can
     * be cancelled at stop like a commit. */
    set_cancel(s, s->conn);
    int rc = -EIO;
    if (og_db_limit_lock_waits(s->conn, s->lock_timeout_ms, err, errlen))
        goto fail;
    /* Only speed depends on it: a refusal (a short statement_timeout, no memory for it) is
     * said and the session goes on as it is. */
    if (og_db_settle_backend_heap(s->conn, err, errlen) < 0) {
        if (og_db_broken(s->conn))
            goto fail;
        og_log(LOG_WARNING,
               "could not raise the malloc thresholds of the database's server process (its "
               "heap may be given back and faulted in again at every batch): %s",
               err);
    }
    /* Stores into a schema this build was not made for could fail, or worse, not. */
    rc = og_db_schema_check(s->conn, err, errlen);
    if (rc < 0)
        goto fail;
    /* A database restored from a backup (or a promoted standby) opens a new generation
     * here, before anything is stored: the fencing epochs move past every one given, so
     * records held for a dispatch of the lost time are dropped as stale (og.begin_batch),
     * never stored with the numbers it gave from memory the database no longer has. */
    int g = og_db_generation(s->conn, err, errlen);
    if (g < 0) {
        rc = g;
        goto fail;
    }
    if (s->generation && g != s->generation)
        og_log(LOG_CRIT,
               "the database is of generation %d, not %d as before: it was restored from a "
               "backup, replaced by a promoted standby, or moved or upgraded "
               "(audit.database_generations); the "
               "records held for dispatch epochs of before are dropped as stale",
               g, s->generation);
    s->generation = g;
    rc = -EIO;
    /* Prepared statements belong to the session: made again after every reconnect. */
    if (prepare(s->conn, "begin_batch", SQL_BEGIN_BATCH, err, errlen) ||
        prepare(s->conn, "now", SQL_NOW, err, errlen) ||
        prepare(s->conn, "end_batch_given", SQL_END_BATCH_GIVEN, err, errlen) ||
        prepare(s->conn, "given_refused", SQL_GIVEN_REFUSED, err, errlen) ||
        prepare(s->conn, "store_event", SQL_STORE_EVENT, err, errlen) ||
        prepare(s->conn, "store_opened", SQL_STORE_SET("og.store_opened"), err, errlen) ||
        prepare(s->conn, "store_moved", SQL_STORE_SET("og.store_moved"), err, errlen) ||
        prepare(s->conn, "store_rejection", SQL_STORE_REJECTION, err, errlen) ||
        prepare(s->conn, "epoch", SQL_EPOCH, err, errlen) ||
        prepare(s->conn, "retire_epoch", SQL_RETIRE_EPOCH, err, errlen) ||
        prepare(s->conn, "end_batch", SQL_END_BATCH, err, errlen) ||
        prepare(s->conn, "sign_link", SQL_SIGN_LINK, err, errlen) ||
        prepare(s->conn, "store_decision", SQL_STORE_DECISION, err, errlen))
        goto fail;
    return 0;
fail:
    set_cancel(s, NULL);
    PQfinish(s->conn);
    s->conn = NULL;
    return rc;
}

int og_store_cancel(struct og_store *s, char *err, size_t errlen)
{
    int rc = -EIO;
    pthread_mutex_lock(&s->cancel_mu);
    if (!s->cancel)
        snprintf(err, errlen, "not connected");
    else if (PQcancel(s->cancel, err, (int)errlen))
        rc = 0;
    pthread_mutex_unlock(&s->cancel_mu);
    return rc;
}

void og_store_lock_timeout(struct og_store *s, long ms)
{
    s->lock_timeout_ms = ms;
}

uint64_t og_store_given_rows(const struct og_store *s)
{
    return s->given;
}

bool og_store_own_digests(const struct og_store *s)
{
    return s->own_digests;
}

bool og_store_connected(const struct og_store *s)
{
    return s->conn && PQstatus(s->conn) == CONNECTION_OK;
}

int og_store_signing_key(struct og_store *s, const char *path, char *err, size_t errlen)
{
    int rc;
    if (sodium_init() < 0) {
        snprintf(err, errlen, "libsodium could not be initialised");
        return -ENOSYS;
    }
    rc = og_chainsig_secret_read(path, s->sk, s->pk, err, errlen);
    s->signing = rc == 0;
    return rc;
}

void og_store_item_clear(struct og_store_item *item)
{
    if (item->reply)
        onegrid__v1__reply__free_unpacked(item->reply, NULL);
    item->reply = NULL;
}

/* Parameters of one statement: text values, except bytea ones sent in binary. */
struct params {
    int n;
    const char *v[12];
    int len[12];
    int fmt[12];
    char *owned[12]; /* freed after sending */
};

static void p_text(struct params *p, const char *s)
{
    p->v[p->n] = s;
    p->len[p->n] = 0;
    p->fmt[p->n] = 0;
    p->n++;
}

static void p_owned(struct params *p, char *s)
{
    p->owned[p->n] = s;
    p_text(p, s);
}

static void p_bytes(struct params *p, const uint8_t *data, size_t len, char *owned)
{
    p->v[p->n] = (const char *)data;
    p->len[p->n] = (int)len;
    p->fmt[p->n] = 1;
    p->owned[p->n] = owned;
    p->n++;
}

/* JSON as the text jsonb gives back for it (og_jsonb_text): what archive hashes of a record
 * is what the database stores. */
static void p_json(struct params *p, json_object *j)
{
    p_owned(p, j ? og_jsonb_text(j, NULL) : NULL);
}

static void p_clear(struct params *p)
{
    for (int i = 0; i < p->n; i++)
        free(p->owned[i]);
    memset(p, 0, sizeof(*p));
}

static char *time_str(const Onegrid__V1__Timestamp *t)
{
    char buf[48];
    return t ? strdup(og_time_format(t->seconds, t->nanos, buf, sizeof(buf))) : NULL;
}

static void add_time(json_object *o, const char *key, const Onegrid__V1__Timestamp *t)
{
    char buf[48];
    if (t)
        json_object_object_add(
            o, key, json_object_new_string(og_time_format(t->seconds, t->nanos, buf, sizeof(buf))));
}

static bool is_refusal(const Onegrid__V1__Decision *d)
{
    return !d || d->kind == ONEGRID__V1__DECISION__KIND__KIND_REJECT;
}

static const Onegrid__V1__Nack *refusal_of(const Onegrid__V1__Frame *f)
{
    const Onegrid__V1__Decision *d = f->decision;
    return d && d->rejection ? d->rejection : f->submission->rejection;
}

/* The statements one item sends: its store_event or store_rejection call, and one
 * store_decision call for each further case an accepted event decides on. */
static size_t statements(const struct og_store_item *it)
{
    return is_refusal(it->frame->decision) ? 1 : 1 + it->frame->n_more_decisions;
}

/* A text parameter made safe to store: valid UTF-8, no control characters, bounded. */
static void p_safe(struct params *p, const char *s, size_t max)
{
    char *buf = malloc(max + 1);
    p_owned(p, buf ? og_utf8_safe((const uint8_t *)s, strlen(s), buf, max + 1) : NULL);
}

/* The event's bytes without the reporter's contact: the permanent record keeps no phone
 * number (og.reporter_contact, which can be erased, keeps it for an accepted event). */
static uint8_t *pack_without_contact(Onegrid__V1__Envelope *e, size_t *len)
{
    Onegrid__V1__Contact *contact = NULL;
    uint8_t *buf;
    if (e->payload_case == ONEGRID__V1__ENVELOPE__PAYLOAD_REPORT && e->report) {
        contact = e->report->contact;
        e->report->contact = NULL;
    }
    buf = og_pack(&e->base, len);
    if (contact)
        e->report->contact = contact;
    return buf;
}

/* Queues the statement for one refusal. The bytes recorded are those intake received
 * (the first max_rejected_bytes of them), or the event as dispatch refused it. A minimal
 * refusal keeps only safe values: the reason, safe identifiers, the size and digest of
 * the bytes, no free text and no bytes. */
static int send_refusal(struct og_store *s, const struct og_store_item *it)
{
    const Onegrid__V1__Submission *sub = it->frame->submission;
    const Onegrid__V1__Nack *n = refusal_of(it->frame);
    const Onegrid__V1__Timestamp *t = sub->received;
    const uint8_t *raw = sub->raw.data;
    size_t raw_len = sub->raw.len;
    uint8_t *packed = NULL, digest[crypto_hash_sha256_BYTES];
    struct params p = {0};
    char size_s[16], *received;
    int ok;

    if (!sub->rejection && sub->event) /* refused by dispatch: the event as received */
        raw = packed = pack_without_contact(sub->event, &raw_len);
    snprintf(size_s, sizeof(size_s), "%u", sub->raw_size ? sub->raw_size : (unsigned)raw_len);
    /* Years 0001..9999, what PostgreSQL's timestamptz and RFC 3339 share. */
    if (it->minimal && (!t || t->seconds < OG_TIME_MIN || t->seconds > OG_TIME_MAX)) {
        char buf[48];
        int64_t now = og_now_us();
        received = strdup(
            og_time_format(now / 1000000, (int32_t)(now % 1000000) * 1000, buf, sizeof(buf)));
    } else {
        received = time_str(t);
    }
    p_owned(&p, received);
    if (it->minimal) {
        p_safe(&p, sub->publisher, 128);
        p_safe(&p, sub->source, 128);
        p_safe(&p, sub->event ? sub->event->id : "", 128);
        p_text(&p, n->reason == ONEGRID__V1__REASON__REASON_STORAGE_REFUSED ||
                           !protobuf_c_enum_descriptor_get_value(&onegrid__v1__reason__descriptor,
                                                                 n->reason)
                       ? "REASON_STORAGE_REFUSED"
                       : og_reason_name(n->reason));
        p_text(&p, "the database refused this refusal as received: kept are its reason, "
                   "the size and SHA-256 of the bytes, and safe identifiers");
        p_bytes(&p, (const uint8_t *)"", 0, NULL);
        p_text(&p, size_s);
        if (sub->raw_sha256.len == sizeof(digest)) {
            memcpy(digest, sub->raw_sha256.data, sizeof(digest));
        } else {
            crypto_hash_sha256(digest, raw ? raw : (const uint8_t *)"", raw ? raw_len : 0);
        }
        p_bytes(&p, digest, sizeof(digest), NULL);
    } else {
        p_text(&p, sub->publisher);
        p_text(&p, sub->source);
        p_text(&p, sub->event ? sub->event->id : "");
        p_text(&p, og_reason_name(n->reason));
        p_text(&p, n->text);
        p_bytes(&p, raw ? raw : (const uint8_t *)"", raw ? raw_len : 0, NULL);
        p_text(&p, size_s);
        if (sub->raw_sha256.len)
            p_bytes(&p, sub->raw_sha256.data, sub->raw_sha256.len, NULL);
        else
            p_text(&p, NULL);
    }
    ok = PQsendQueryPrepared(s->conn, "store_rejection", p.n, p.v, p.len, p.fmt, 0);
    p_clear(&p);
    free(packed);
    return ok ? 0 : -EIO;
}

/* What an accepted event is stored as: the event and the decision as JSON text and as
 * canonical protobuf bytes (the database takes the case's columns from the decision:
 * og.decision_case, og.case_opening), the reporter's contact (NULL when none). The event is
 * recorded without the contact (kept apart, in og.reporter_contact, so it can be erased). Each
 * pointer is NULL or owned. */
struct og_rendered {
    char *event, *decision, *contact;
    uint8_t *ebody, *dbody;
    size_t elen, dlen;
};

static char *json_text(json_object *j)
{
    char *s = j ? og_jsonb_text(j, NULL) : NULL;
    json_object_put(j);
    return s;
}

static void rendered_clear(struct og_rendered *r)
{
    free(r->event);
    free(r->decision);
    free(r->contact);
    free(r->ebody);
    free(r->dbody);
    memset(r, 0, sizeof(*r));
}

/* 0, or -ENOMEM (r cleared). */
static int render(const struct og_store_item *it, struct og_rendered *r)
{
    const Onegrid__V1__Frame *f = it->frame;
    const Onegrid__V1__Submission *sub = f->submission;
    const Onegrid__V1__Decision *d = f->decision;
    Onegrid__V1__Envelope *e = sub->event;
    Onegrid__V1__Contact *contact = NULL;
    json_object *event_json;

    memset(r, 0, sizeof(*r));
    if (e->payload_case == ONEGRID__V1__ENVELOPE__PAYLOAD_REPORT && e->report->contact) {
        contact = e->report->contact;
        e->report->contact = NULL;
        r->contact = json_text(og_pbjson_render(&contact->base));
    }
    r->ebody = og_pack(&e->base, &r->elen);
    event_json = og_pbjson_render(&e->base);
    if (contact)
        e->report->contact = contact;
    r->dbody = og_pack(&d->base, &r->dlen);
    r->decision = json_text(og_pbjson_render(&d->base));
    if (event_json) {
        json_object_object_add(event_json, "received", NULL);
        add_time(event_json, "received", sub->received);
        json_object_object_add(event_json, "publisher", json_object_new_string(sub->publisher));
        if (sub->tag.len) { /* which Submit carried it: og.stored_outcome knows its resends */
            char tag[2 * 64 + 1];
            json_object_object_add(
                event_json, "tag",
                json_object_new_string(og_hex(sub->tag.data, sub->tag.len, tag)));
        }
    }
    r->event = json_text(event_json);
    if (!r->ebody || !r->dbody || !r->event || !r->decision || (contact && !r->contact)) {
        rendered_clear(r);
        return -ENOMEM;
    }
    return 0;
}

/* What item is stored as: what og_store_item_prepare made, or made now into own (clear it
 * after, when the result is own); NULL without memory. */
static const struct og_rendered *rendered_of(const struct og_store_item *item,
                                             struct og_rendered *own)
{
    if (item->rendered)
        return item->rendered;
    return render(item, own) < 0 ? NULL : own;
}

void og_store_item_prepare(struct og_store_item *item)
{
    struct og_rendered *r;

    if (item->rendered || is_refusal(item->frame->decision) || !(r = malloc(sizeof(*r))))
        return;
    if (render(item, r) < 0) {
        free(r);
        return;
    }
    item->rendered = r;
}

void og_store_item_free(struct og_store_item *item)
{
    og_store_item_clear(item);
    if (item->rendered) {
        rendered_clear(item->rendered);
        free(item->rendered);
        item->rendered = NULL;
    }
}

/* Queues the statements for one item: og.store_event (or og.store_rejection), then
 * og.store_decision for each further case the event decided on. */
static int send_item(struct og_store *s, const struct og_store_item *it)
{
    const Onegrid__V1__Frame *f = it->frame;
    const Onegrid__V1__Submission *sub = f->submission;
    const Onegrid__V1__Decision *d = f->decision;
    struct params p = {0};
    struct og_rendered own;
    const struct og_rendered *r;
    size_t dlen;
    int ok;

    if (is_refusal(d))
        return send_refusal(s, it);
    if (!(r = rendered_of(it, &own)))
        return -ENOMEM;
    p_text(&p, sub->source);
    p_text(&p, sub->event->id);
    p_text(&p, sub->event->type);
    p_text(&p, d->district);
    p_text(&p, r->event);
    p_bytes(&p, r->ebody, r->elen, NULL);
    p_text(&p, r->decision);
    p_bytes(&p, r->dbody, r->dlen, NULL);
    p_text(&p, d->kind == ONEGRID__V1__DECISION__KIND__KIND_OPEN_CASE ? "true" : "false");
    p_text(&p, r->contact);
    ok = PQsendQueryPrepared(s->conn, "store_event", p.n, p.v, p.len, p.fmt, 0);
    p_clear(&p);
    if (r == &own)
        rendered_clear(&own);
    /* Further cases the event decided on (a joint meeting's decision). */
    for (size_t i = 0; ok && i < f->n_more_decisions; i++) {
        const Onegrid__V1__Decision *m = f->more_decisions[i];
        json_object *mj = og_pbjson_render(&m->base);
        uint8_t *mbody = og_pack(&m->base, &dlen);
        p_text(&p, sub->source);
        p_text(&p, sub->event->id);
        p_text(&p, sub->event->type);
        p_text(&p, m->district);
        p_json(&p, mj);
        p_bytes(&p, mbody, dlen, (char *)mbody);
        ok = PQsendQueryPrepared(s->conn, "store_decision", p.n, p.v, p.len, p.fmt, 0);
        p_clear(&p);
        json_object_put(mj);
    }
    return ok ? 0 : -EIO;
}

static void arr_put(struct pgarray *a, const void *data, size_t len)
{
    if (a->oom)
        return;
    if (a->len + len > a->cap) {
        size_t cap = a->cap ? a->cap : 4096;
        while (cap < a->len + len)
            cap *= 2;
        uint8_t *b = realloc(a->buf, cap);
        if (!b) {
            a->oom = true;
            return;
        }
        a->buf = b;
        a->cap = cap;
    }
    memcpy(a->buf + a->len, data, len);
    a->len += len;
}

static void arr_u32(struct pgarray *a, uint32_t v)
{
    uint8_t b[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
    arr_put(a, b, sizeof(b));
}

/* Appends one element: len bytes of data, or NULL when data is NULL; jsonb adds the
 * version byte. Elements longer than a field can be are left to the database to refuse
 * (as for og.store_event: the batch is then stored event by event). */
static void arr_add(struct pgarray *a, const void *data, size_t len, bool jsonb)
{
    if (a->len == 0) /* room for the header, written by arr_finish */
        for (int i = 0; i < 5; i++)
            arr_u32(a, 0);
    a->n++;
    if (!data) {
        a->nulls = true;
        arr_u32(a, UINT32_MAX);
        return;
    }
    arr_u32(a, (uint32_t)(len + (jsonb ? 1 : 0)));
    if (jsonb)
        arr_put(a, "\1", 1);
    arr_put(a, data, len);
}

static void arr_text(struct pgarray *a, const char *s, bool jsonb)
{
    arr_add(a, s, s ? strlen(s) : 0, jsonb);
}

/* Empties a for a call, keeping its room (arr_put grows it when a call needs more). */
static void arr_reset(struct pgarray *a)
{
    a->len = 0;
    a->n = 0;
    a->nulls = a->oom = false;
}

/* After a call: a's room is kept for the next, unless a call of unusual size made it larger
 * than OG_STORE_ARRAY_KEEP; wipe: its bytes are zeroed first (contacts). */
static void arr_release(struct pgarray *a, bool wipe)
{
    if (wipe && a->buf)
        sodium_memzero(a->buf, a->len);
    if (a->cap <= OG_STORE_ARRAY_KEEP)
        return;
    free(a->buf);
    a->buf = NULL;
    a->cap = 0;
}

/* Writes the header: ndim 1, the NULL flag, the element type, n elements from 1. */
static void arr_finish(struct pgarray *a, uint32_t oid)
{
    uint32_t h[5] = {1, a->nulls ? 1 : 0, oid, a->n, 1};
    if (a->oom || a->len < sizeof(h))
        return;
    for (int i = 0; i < 5; i++) {
        uint32_t v = h[i];
        uint8_t *b = a->buf + 4 * i;
        b[0] = (uint8_t)(v >> 24), b[1] = (uint8_t)(v >> 16), b[2] = (uint8_t)(v >> 8);
        b[3] = (uint8_t)v;
    }
}

/* Queues one call of statement stmt (store_opened, store_moved) for the items at positions
 * idx[0..m-1]. */
static int send_set(struct og_store *s, const char *stmt, const struct og_store_item *items,
                    const size_t *idx, size_t m)
{
    /* Element types: text 25, bytea 17, jsonb 3802 (pg_type.h). */
    static const uint32_t oid[SET_ARGS] = {25, 25, 25, 25, 3802, 17, 3802, 17, 3802};
    struct pgarray *a = s->args;
    const char *v[SET_ARGS];
    int len[SET_ARGS], fmt[SET_ARGS];
    int rc = 0;

    for (int k = 0; k < SET_ARGS; k++)
        arr_reset(&a[k]);
    for (size_t j = 0; rc == 0 && j < m; j++) {
        const struct og_store_item *it = &items[idx[j]];
        const Onegrid__V1__Submission *sub = it->frame->submission;
        struct og_rendered own;
        const struct og_rendered *r = rendered_of(it, &own);
        if (!r) {
            rc = -ENOMEM;
            break;
        }
        arr_text(&a[0], sub->source, false);
        arr_text(&a[1], sub->event->id, false);
        arr_text(&a[2], sub->event->type, false);
        arr_text(&a[3], it->frame->decision->district, false);
        arr_text(&a[4], r->event, true);
        arr_add(&a[5], r->ebody, r->elen, false);
        arr_text(&a[6], r->decision, true);
        arr_add(&a[7], r->dbody, r->dlen, false);
        arr_text(&a[CONTACTS], r->contact, true);
        if (r == &own)
            rendered_clear(&own);
    }
    for (int k = 0; k < SET_ARGS; k++) {
        arr_finish(&a[k], oid[k]);
        if (a[k].oom || a[k].len > INT32_MAX)
            rc = rc ? rc : -ENOMEM;
        v[k] = (const char *)a[k].buf;
        len[k] = (int)a[k].len;
        fmt[k] = 1;
    }
    if (rc == 0 && !PQsendQueryPrepared(s->conn, stmt, SET_ARGS, v, len, fmt, 0))
        rc = -EIO;
    for (int k = 0; k < SET_ARGS; k++)
        arr_release(&a[k], k == CONTACTS);
    return rc;
}

/* The answer to a committed record; NULL without memory for all of it (archive.c's
 * committed() reads every field). */
static Onegrid__V1__Reply *make_reply(const struct og_store_item *it, const char *outcome,
                                      const char *case_id)
{
    const Onegrid__V1__Frame *f = it->frame;
    const Onegrid__V1__Submission *sub = f->submission;
    Onegrid__V1__Reply *r = calloc(1, sizeof(*r));
    if (!r)
        return NULL;
    onegrid__v1__reply__init(r);
    r->event_id = strdup(sub->event ? sub->event->id : "");
    r->source = strdup(sub->source);
    if (is_refusal(f->decision)) {
        const Onegrid__V1__Nack *n = refusal_of(f);
        r->result_case = ONEGRID__V1__REPLY__RESULT_NACK;
        r->nack = calloc(1, sizeof(*r->nack));
        if (r->nack) {
            onegrid__v1__nack__init(r->nack);
            /* Publishers' protobuf libraries may refuse a string that is not UTF-8. */
            char text[OG_REFUSAL_TEXT_MAX + 1];
            r->nack->reason = n->reason;
            r->nack->text =
                strdup(og_utf8_safe((const uint8_t *)n->text, strlen(n->text), text, sizeof(text)));
        }
    } else {
        r->result_case = ONEGRID__V1__REPLY__RESULT_ACK;
        r->ack = calloc(1, sizeof(*r->ack));
        if (r->ack) {
            onegrid__v1__ack__init(r->ack);
            r->ack->outcome = strcmp(outcome, "stored") == 0
                                  ? ONEGRID__V1__ACK__OUTCOME__OUTCOME_STORED
                                  : ONEGRID__V1__ACK__OUTCOME__OUTCOME_DUPLICATE;
            r->ack->case_id = strdup(case_id ? case_id : "");
        }
    }
    if (!r->event_id || !r->source ||
        (r->result_case == ONEGRID__V1__REPLY__RESULT_NACK ? !r->nack || !r->nack->text
                                                           : !r->ack || !r->ack->case_id)) {
        onegrid__v1__reply__free_unpacked(r, NULL);
        return NULL;
    }
    return r;
}

/* The next result of the pipeline, skipping the NULL that ends each statement's results;
 * NULL (err filled) when the connection is lost. */
static PGresult *next_result(PGconn *c, char *err, size_t errlen)
{
    PGresult *r;
    /* In a pipeline one NULL ends each statement's results, so the next result comes after
     * at most that one (two, to be lenient). More means libpq lost its place: after the
     * server sent an error and closed the connection (an immediate shutdown), libpq 15 was
     * seen returning NULL for ever with the connection still "OK", and this loop spun
     * (chaos_short, CI). A fault: the batch is tried again on a new connection. */
    for (int nulls = 0; !(r = PQgetResult(c)); nulls++)
        if (PQstatus(c) != CONNECTION_OK || nulls >= 2) {
            if (PQstatus(c) == CONNECTION_OK)
                snprintf(err, errlen,
                         "the connection lost its place in a pipelined batch (no result where "
                         "one was due): %s",
                         PQerrorMessage(c));
            else
                og_db_error(c, NULL, err, errlen);
            return NULL;
        }
    return r;
}

/* Reads every result up to the pipeline's sync point, so the connection is usable
 * afterwards whatever happened. */
static void drain(PGconn *c)
{
    PGresult *r;
    for (int nulls = 0; nulls < 2;) {
        r = PQgetResult(c);
        if (!r) {
            nulls++;
            continue;
        }
        nulls = 0;
        ExecStatusType st = PQresultStatus(r);
        PQclear(r);
        if (st == PGRES_PIPELINE_SYNC)
            return;
        if (PQstatus(c) != CONNECTION_OK)
            return;
    }
}

/* Queuing a batch's statements failed (rc: -ENOMEM, or -EIO from libpq): says so in err,
 * and reads what was queued and throws it away (nothing was committed). */
static void queue_failed(PGconn *c, int rc, char *err, size_t errlen)
{
    if (rc == -ENOMEM)
        snprintf(err, errlen, "out of memory");
    else
        og_db_error(c, NULL, err, errlen);
    if (PQpipelineSync(c))
        drain(c);
}

int og_store_retire_epoch(struct og_store *s, const char *shard, uint64_t epoch, char *err,
                          size_t errlen)
{
    char epoch_s[24];
    const char *v[] = {shard, epoch_s, s->name};
    PGresult *r;

    if (og_db_broken(s->conn)) {
        snprintf(err, errlen, "not connected");
        return -EIO;
    }
    snprintf(epoch_s, sizeof(epoch_s), "%llu", (unsigned long long)epoch);
    r = PQexecPrepared(s->conn, "retire_epoch", 3, v, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1) {
        og_db_error(s->conn, r, err, errlen);
        PQclear(r);
        return -EIO;
    }
    int retired = strcmp(PQgetvalue(r, 0, 0), "t") == 0;
    PQclear(r);
    return retired;
}

static int read_epoch(struct og_store *s, const char *shard, uint64_t *current)
{
    const char *v[] = {shard};
    PGresult *r = PQexecPrepared(s->conn, "epoch", 1, v, NULL, NULL, 0);
    int rc = -EIO;
    if (PQresultStatus(r) == PGRES_TUPLES_OK) {
        *current = PQntuples(r) ? strtoull(PQgetvalue(r, 0, 0), NULL, 10) : 0;
        rc = 0;
    }
    PQclear(r);
    return rc;
}

/* The second round trip of a signed batch: signs each link end_batch appended (links:
 * the rows of SQL_END_BATCH), stores the signatures with og.sign_link and commits. The
 * key never leaves this process. Any failure here is a fault (-EIO, err filled), never a
 * record's: the records were all stored by then. */
static int sign_and_commit(struct og_store *s, const PGresult *links, char *err, size_t errlen)
{
    int n = PQntuples(links), rc = 0;

    for (int i = 0; i < n; i++) {
        const char *chain = PQgetvalue(links, i, 0), *seq = PQgetvalue(links, i, 1);
        uint8_t hash[OG_CHAINSIG_HASH_BYTES], sig[OG_CHAINSIG_BYTES];
        char msg[OG_CHAINSIG_MESSAGE_MAX];
        size_t hash_len = 0;
        int len = -EINVAL;

        if (sodium_hex2bin(hash, sizeof(hash), PQgetvalue(links, i, 4),
                           (size_t)PQgetlength(links, i, 4), NULL, &hash_len, NULL) == 0 &&
            hash_len == sizeof(hash))
            len = og_chainsig_message(chain, strtoll(seq, NULL, 10),
                                      strtoll(PQgetvalue(links, i, 2), NULL, 10),
                                      atoi(PQgetvalue(links, i, 3)), hash, msg);
        if (len < 0) {
            snprintf(err, errlen,
                     "og.end_batch returned link %s of chain \"%s\", which cannot "
                     "be signed",
                     seq, chain);
            return -EIO;
        }
        crypto_sign_detached(sig, NULL, (const uint8_t *)msg, (unsigned long long)len, s->sk);
        const char *v[] = {chain, seq, (const char *)s->pk, (const char *)sig};
        const int lens[] = {0, 0, sizeof(s->pk), sizeof(sig)}, fmts[] = {0, 0, 1, 1};
        if (!PQsendQueryPrepared(s->conn, "sign_link", 4, v, lens, fmts, 0))
            rc = -EIO;
    }
    if (rc < 0 || !PQsendQueryParams(s->conn, "COMMIT", 0, NULL, NULL, NULL, NULL, 0) ||
        !PQpipelineSync(s->conn)) {
        og_db_error(s->conn, NULL, err, errlen);
        return -EIO;
    }
    /* n sign_link results, COMMIT's; the caller reads the sync. */
    for (int q = 0; q < n + 1; q++) {
        PGresult *r = next_result(s->conn, err, errlen);
        if (!r)
            return -EIO;
        ExecStatusType st = PQresultStatus(r);
        if (rc == 0 && st == PGRES_FATAL_ERROR) {
            og_db_error(s->conn, r, err, errlen);
            rc = -EIO;
        }
        PQclear(r);
        if (st == PGRES_PIPELINE_SYNC)
            break;
    }
    return rc;
}

/* An event key of a batch (or a case it names: source ""), for finding those that come
 * more than once. */
struct batch_key {
    const char *source, *id;
    size_t pos;
};

static int batch_key_cmp(const void *x, const void *y)
{
    const struct batch_key *a = x, *b = y;
    int c = strcmp(a->source, b->source);
    return c ? c : strcmp(a->id, b->id);
}

/* How a record of a batch is stored (set_items): by one of the two set-based calls, or by
 * its own statements. */
enum { OPENED, MOVED, SETS, ONE_BY_ONE = SETS };

/* Whether og.store_opened may store item i: an accepted event that opens a case of its
 * own (not a split off another case, no decision on a further case). */
static bool opens_alone(const struct og_store_item *it)
{
    const Onegrid__V1__Decision *d = it->frame->decision;
    return !is_refusal(d) && d->kind == ONEGRID__V1__DECISION__KIND__KIND_OPEN_CASE &&
           *d->case_id && !*d->split_from && it->frame->n_more_decisions == 0 &&
           it->frame->submission->event;
}

/* Whether og.store_moved may store item i: an accepted event whose one decision moves an
 * existing case (a status update, an evaluation, an escalation, a report that joins the
 * case: KIND_MERGE), not a split, which moves a second case or report. */
static bool moves_alone(const struct og_store_item *it)
{
    const Onegrid__V1__Decision *d = it->frame->decision;
    return !is_refusal(d) &&
           (d->kind == ONEGRID__V1__DECISION__KIND__KIND_UPDATE_CASE ||
            d->kind == ONEGRID__V1__DECISION__KIND__KIND_ESCALATE ||
            d->kind == ONEGRID__V1__DECISION__KIND__KIND_MERGE) &&
           *d->case_id && !*d->split_from && !*d->split_to && it->frame->n_more_decisions == 0 &&
           it->frame->submission->event;
}

/* The most bytes of events and decisions (packed) one og.store_opened or og.store_moved
 * call takes; the events of a batch beyond it are stored one by one. Their arguments carry
 * each event about three times (JSON, bytes, the decision), and PostgreSQL refuses a
 * message of 1 GB or more by closing the connection: a batch of 1,000 events of 4 MiB sent
 * whole would fail the same way each time it was tried. Ordinary events are a kilobyte or
 * two: a whole batch fits. The sizes are those og_store_item_prepare found when it
 * rendered the record (the event packed without its contact, which validation holds to a
 * few hundred bytes), so that planning a batch does not pack it again. */
#define OG_STORE_SET_BYTES (16u << 20)

/* Says in how[] how each item is stored: OPENED by og.store_opened (opens_alone), MOVED by
 * og.store_moved (moves_alone, and a case no other record of the batch names: its
 * decision's, a split's or a joint meeting's), each with an event key that comes once in
 * the batch (which of two copies is stored, and what the other is answered, is
 * og.store_event's to say, in the batch's order), up to OG_STORE_SET_BYTES per call; else
 * ONE_BY_ONE, by og.store_event, in the batch's order after both calls. Lists the
 * positions of each call's items in idx[OPENED] and idx[MOVED], in order, and their
 * numbers in m[]. Returns -ENOMEM (every item ONE_BY_ONE) when there is no memory to find
 * them. */
static int set_items(const struct og_store_item *items, size_t n, int *how, size_t *idx[],
                     size_t m[])
{
    size_t names = 0, k = 0, c = 0;
    for (size_t i = 0; i < n; i++) {
        const Onegrid__V1__Frame *f = items[i].frame;
        names += 3 + f->n_more_decisions;
    }
    struct batch_key *keys = calloc(n ? n : 1, sizeof(*keys));
    struct batch_key *cases = calloc(names ? names : 1, sizeof(*cases));

    m[OPENED] = m[MOVED] = 0;
    for (size_t i = 0; i < n; i++)
        how[i] = ONE_BY_ONE;
    if (!keys || !cases) {
        free(keys);
        free(cases);
        return -ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        const Onegrid__V1__Frame *f = items[i].frame;
        const Onegrid__V1__Submission *sub = f->submission;
        const Onegrid__V1__Decision *d = f->decision;
        if (sub->event)
            keys[k++] = (struct batch_key){sub->source, sub->event->id, i};
        how[i] = opens_alone(&items[i]) ? OPENED : moves_alone(&items[i]) ? MOVED : ONE_BY_ONE;
        if (is_refusal(d))
            continue;
        const char *named[] = {d->case_id, d->split_from, d->split_to};
        for (size_t j = 0; j < 3; j++)
            if (*named[j])
                cases[c++] = (struct batch_key){"", named[j], i};
        for (size_t j = 0; j < f->n_more_decisions; j++)
            cases[c++] = (struct batch_key){"", f->more_decisions[j]->case_id, i};
    }
    qsort(keys, k, sizeof(*keys), batch_key_cmp);
    for (size_t i = 0; i + 1 < k; i++)
        if (batch_key_cmp(&keys[i], &keys[i + 1]) == 0)
            how[keys[i].pos] = how[keys[i + 1].pos] = ONE_BY_ONE;
    /* A case another record names must be moved in the batch's order: only the MOVED are
     * stored out of it (an OPENED case is opened first, and nothing came before). */
    qsort(cases, c, sizeof(*cases), batch_key_cmp);
    for (size_t i = 0; i + 1 < c; i++)
        if (batch_key_cmp(&cases[i], &cases[i + 1]) == 0 && cases[i].pos != cases[i + 1].pos) {
            if (how[cases[i].pos] == MOVED)
                how[cases[i].pos] = ONE_BY_ONE;
            if (how[cases[i + 1].pos] == MOVED)
                how[cases[i + 1].pos] = ONE_BY_ONE;
        }
    free(keys);
    free(cases);
    size_t bytes[SETS] = {0};
    for (size_t i = 0; i < n; i++) {
        if (how[i] == ONE_BY_ONE)
            continue;
        const Onegrid__V1__Frame *f = items[i].frame;
        const struct og_rendered *r = items[i].rendered;
        size_t size = r ? r->elen + r->dlen /* packed when rendered */
                        : protobuf_c_message_get_packed_size(&f->submission->event->base) +
                              protobuf_c_message_get_packed_size(&f->decision->base);
        int w = how[i];
        if (size > OG_STORE_SET_BYTES - bytes[w]) {
            how[i] = ONE_BY_ONE;
            continue;
        }
        bytes[w] += size;
        idx[w][m[w]++] = i;
    }
    return 0;
}

/* Answers the items a set-based call (stored) stored from its rows (position from 1,
 * outcome, case, the ledger ids of an event stored now and of its decision); the number
 * answered, or -EIO (err filled) for a row that answers nothing true. ids (one pair per item
 * of the batch, or NULL): the ledger ids of each item stored now. */
static int answer_set(const char *stored, struct og_store_item *items, const size_t *idx, size_t m,
                      const PGresult *r, int64_t (*ids)[2], char *err, size_t errlen)
{
    int rows = PQntuples(r);
    for (int j = 0; j < rows; j++) {
        long pos = strtol(PQgetvalue(r, j, 0), NULL, 10);
        if (pos < 1 || (size_t)pos > m || PQgetisnull(r, j, 1) ||
            PQgetisnull(r, j, 3) != PQgetisnull(r, j, 4)) {
            snprintf(err, errlen, "og.%s answered row %d without an outcome", stored, j);
            return -EIO;
        }
        if (ids && !PQgetisnull(r, j, 3)) {
            ids[idx[pos - 1]][0] = strtoll(PQgetvalue(r, j, 3), NULL, 10);
            ids[idx[pos - 1]][1] = strtoll(PQgetvalue(r, j, 4), NULL, 10);
        }
        struct og_store_item *it = &items[idx[pos - 1]];
        og_store_item_clear(it);
        it->reply =
            make_reply(it, PQgetvalue(r, j, 1), PQgetisnull(r, j, 2) ? NULL : PQgetvalue(r, j, 2));
        if (!it->reply)
            return -ENOMEM;
    }
    return rows;
}

static void free_plan(int *how, size_t *idx[SETS])
{
    free(how);
    for (int w = 0; w < SETS; w++)
        free(idx[w]);
}

/* A ledger row a set-based call stored, whose digests archive gives og.end_batch. */
struct given_row {
    const char *district;
    int64_t ledger_id;
    bool event; /* its event key's digest in key */
    uint8_t digest[OG_RECORD_DIGEST_BYTES], key[OG_RECORD_DIGEST_BYTES];
};

static int given_cmp(const void *x, const void *y)
{
    const struct given_row *a = x, *b = y;
    int c = strcmp(a->district, b->district);
    return c ? c : (a->ledger_id > b->ledger_id) - (a->ledger_id < b->ledger_id);
}

static void arr_int(struct pgarray *a, int64_t v, int bytes)
{
    uint8_t b[8];
    for (int i = 0; i < bytes; i++)
        b[i] = (uint8_t)((uint64_t)v >> (8 * (bytes - 1 - i)));
    arr_add(a, b, (size_t)bytes, false);
}

/* Queues og.end_batch given the digests of the rows og.store_opened and og.store_moved
 * stored (ids[i]: item i's event and decision ledger ids, 0 when it was not stored by them),
 * recorded at now_us in batch batch_id (deploy/sql/current/og.end_batch.sql), asking it to
 * compare them all with its own in every OG_STORE_CHECK_EVERY-th batch that gives any; or
 * the plain og.end_batch when they stored nothing. 1 (given), 0 (plain), -ENOMEM, -EIO (not
 * sent). */
static int send_end_given(struct og_store *s, const struct og_store_item *items, size_t n,
                          const int64_t (*ids)[2], int64_t batch_id, int64_t now_us)
{
    enum { DISTRICTS, LEDGER, KEYS, ROWS, EVENTS, FIRSTS, LASTS, ARRAYS };
    static const uint32_t oid[ARRAYS] = {25, 17, 17, 23, 23, 20, 20};
    struct pgarray a[ARRAYS] = {0};
    size_t m = 0, k = 0;
    int64_t upto = 0;
    int rc = 0;

    for (size_t i = 0; i < n; i++)
        m += ids[i][0] > 0 ? 2 : 0;
    if (m == 0) /* they stored nothing new: the plain og.end_batch */
        return PQsendQueryPrepared(s->conn, "end_batch", 0, NULL, NULL, NULL, 0) ? 0 : -EIO;
    bool check = s->batches++ % OG_STORE_CHECK_EVERY == 0;
    struct given_row *g = calloc(m, sizeof(*g));
    uint8_t *buf = malloc(m * OG_RECORD_DIGEST_BYTES);
    if (!g || !buf) {
        free(g);
        free(buf);
        return -ENOMEM;
    }
    for (size_t i = 0; rc == 0 && i < n; i++) {
        if (ids[i][0] <= 0)
            continue;
        const struct og_store_item *it = &items[i];
        const Onegrid__V1__Submission *sub = it->frame->submission;
        const Onegrid__V1__Decision *d = it->frame->decision;
        const char *case_id = *d->case_id ? d->case_id : NULL; /* decision ->> 'case_id' */
        struct og_rendered own;
        const struct og_rendered *r = rendered_of(it, &own);
        if (!r) {
            rc = -ENOMEM;
            break;
        }
        g[k] = (struct given_row){d->district, ids[i][0], true, {0}, {0}};
        g[k + 1] = (struct given_row){d->district, ids[i][1], false, {0}, {0}};
        if (og_ledger_digest(s->records, g[k].digest, ids[i][0], now_us, batch_id, d->district,
                             "event", case_id, sub->source, sub->event->id, sub->event->type,
                             r->event, r->ebody, r->elen) < 0 ||
            og_event_key_digest(s->records, g[k].key, sub->source, sub->event->id, d->district,
                                case_id, ids[i][0], now_us) < 0 ||
            og_ledger_digest(s->records, g[k + 1].digest, ids[i][1], now_us, batch_id, d->district,
                             "decision", case_id, sub->source, sub->event->id, sub->event->type,
                             r->decision, r->dbody, r->dlen) < 0)
            rc = -EPROTO;
        k += 2;
        for (int j = 0; j < 2; j++)
            upto = ids[i][j] > upto ? ids[i][j] : upto;
        if (r == &own)
            rendered_clear(&own);
    }
    if (rc == -EPROTO) { /* libcrypto failed: the database makes them, from now on */
        og_log(LOG_ERR, "libcrypto could not make a record's SHA-256: the database makes every "
                        "digest of the record from now on, until archive restarts");
        s->own_digests = false;
        free(g);
        free(buf);
        return PQsendQueryPrepared(s->conn, "end_batch", 0, NULL, NULL, NULL, 0) ? 0 : -EIO;
    }
    qsort(g, k, sizeof(*g), given_cmp);
    /* One element of each array per district: its rows' digests by ledger_id, then their
     * events' keys'. */
    for (size_t i = 0, j; rc == 0 && i < k; i = j) {
        size_t events = 0, len = 0;
        for (j = i; j < k && strcmp(g[j].district, g[i].district) == 0; j++)
            memcpy(buf + OG_RECORD_DIGEST_BYTES * (j - i), g[j].digest, OG_RECORD_DIGEST_BYTES);
        arr_text(&a[DISTRICTS], g[i].district, false);
        arr_add(&a[LEDGER], buf, OG_RECORD_DIGEST_BYTES * (j - i), false);
        for (size_t x = i; x < j; x++)
            if (g[x].event) {
                memcpy(buf + len, g[x].key, OG_RECORD_DIGEST_BYTES);
                len += OG_RECORD_DIGEST_BYTES;
                events++;
            }
        arr_add(&a[KEYS], buf, len, false);
        arr_int(&a[ROWS], (int64_t)(j - i), 4);
        arr_int(&a[EVENTS], (int64_t)events, 4);
        arr_int(&a[FIRSTS], g[i].ledger_id, 8);
        arr_int(&a[LASTS], g[j - 1].ledger_id, 8);
    }
    char upto_s[24];
    const char *v[ARRAYS + 2];
    int len[ARRAYS + 2], fmt[ARRAYS + 2];
    snprintf(upto_s, sizeof(upto_s), "%lld", (long long)upto);
    v[0] = upto_s, len[0] = 0, fmt[0] = 0;
    v[ARRAYS + 1] = check ? "true" : "false", len[ARRAYS + 1] = 0, fmt[ARRAYS + 1] = 0;
    for (int x = 0; x < ARRAYS; x++) {
        arr_finish(&a[x], oid[x]);
        if (a[x].oom || a[x].len == 0)
            rc = rc ? rc : -ENOMEM;
        v[x + 1] = (const char *)a[x].buf;
        len[x + 1] = (int)a[x].len;
        fmt[x + 1] = 1;
    }
    if (rc == 0 && (!PQsendQueryPrepared(s->conn, "end_batch_given", ARRAYS + 2, v, len, fmt, 0) ||
                    !PQsendQueryPrepared(s->conn, "given_refused", 0, NULL, NULL, NULL, 0)))
        rc = -EIO;
    for (int x = 0; x < ARRAYS; x++)
        free(a[x].buf);
    free(g);
    free(buf);
    return rc < 0 ? rc : 1;
}

/* The second round trip of a batch with own digests: og.end_batch given them (and whether it
 * used them), then COMMIT (not when signing: *links gets end_batch's links to sign), then a
 * sync, read up to it. Any failure is a fault (-EIO, -ENOMEM; err filled), never a
 * record's. *given: whether og.end_batch took archive's digests. archive makes none after
 * og.end_batch did not take them, or failed given them (a failure that would come back
 * with them: the batch is tried again without). */
static int end_given(struct og_store *s, const struct og_store_item *items, size_t n,
                     const int64_t (*ids)[2], int64_t batch_id, int64_t now_us, PGresult **links,
                     bool *given, char *err, size_t errlen)
{
    int sent = send_end_given(s, items, n, ids, batch_id, now_us), rc = sent < 0 ? sent : 0;
    *given = sent == 1;
    if (rc == 0 &&
        ((!s->signing && !PQsendQueryParams(s->conn, "COMMIT", 0, NULL, NULL, NULL, NULL, 0)) ||
         !PQpipelineSync(s->conn)))
        rc = -EIO;
    if (rc < 0) {
        queue_failed(s->conn, rc, err, errlen);
        return rc;
    }
    for (int q = 0;; q++) {
        PGresult *r = next_result(s->conn, err, errlen);
        if (!r)
            return -EIO;
        ExecStatusType st = PQresultStatus(r);
        if (rc == 0 && st == PGRES_FATAL_ERROR) {
            og_db_error(s->conn, r, err, errlen);
            rc = -EIO;
            /* For what it was given (og_db_record_error: the data), not a fault that
             * passes (a cancel, a lock wait, the connection): it would fail again with
             * them, and the batch would never be stored. */
            if (q == 0 && *given && og_db_record_error(og_db_sqlstate(r))) {
                og_log(LOG_ERR,
                       "og.end_batch failed given archive's digests (%s): the database makes "
                       "every digest of the record from now on, until archive restarts",
                       err);
                s->own_digests = false;
            }
        } else if (rc == 0 && q == 1 && *given && st == PGRES_TUPLES_OK && PQntuples(r) == 1 &&
                   !PQgetisnull(r, 0, 0) && *PQgetvalue(r, 0, 0)) {
            char why[256];
            const char *v = PQgetvalue(r, 0, 0);
            og_log(LOG_ERR,
                   "og.end_batch did not take archive's digests of batch %lld, which differ "
                   "from the database's (%s): the database makes every digest of the record "
                   "from now on, until archive restarts",
                   (long long)batch_id,
                   og_utf8_safe((const uint8_t *)v, strlen(v), why, sizeof(why)));
            s->own_digests = false;
            *given = false;
        } else if (rc == 0 && q == 0 && st == PGRES_TUPLES_OK && s->signing) {
            *links = r;
            r = NULL;
        }
        PQclear(r);
        if (st == PGRES_PIPELINE_SYNC)
            return rc;
    }
}

/* One attempt at storing a batch; set_based: the events og.store_opened and og.store_moved
 * can take go to them, one statement each. *bad is SIZE_MAX when one of those statements
 * failed for a record's content (which record is not known: the caller stores the batch
 * event by event). */
static int commit_batch(struct og_store *s, const char *shard, uint64_t epoch,
                        struct og_store_item *items, size_t n, bool set_based, uint64_t *current,
                        size_t *bad, char *err, size_t errlen)
{
    char epoch_s[32];
    const char *bv[] = {shard, epoch_s, s->name};
    static const char *const stmt[SETS] = {"store_opened", "store_moved"};
    PGresult *r, *links = NULL;
    int *how = calloc(n ? n : 1, sizeof(*how));
    size_t *idx[SETS] = {calloc(n ? n : 1, sizeof(size_t)), calloc(n ? n : 1, sizeof(size_t))};
    size_t m[SETS] = {0}, got = 0;
    int calls[SETS], sets = 0; /* the set-based calls sent, in order */
    int rc = 0;
    /* Given digests (own): the ledger ids of each item the set-based calls stored, the
     * batch's id and now(). */
    int64_t(*ids)[2] = NULL, batch_id = 0, now_us = 0;
    bool own = false;

    if (!how || !idx[OPENED] || !idx[MOVED]) {
        free_plan(how, idx);
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    for (size_t i = 0; i < n; i++)
        how[i] = ONE_BY_ONE;
    if (set_based)
        (void)set_items(items, n, how, idx, m); /* no memory: every record one by one */
    /* Without memory for the ids, the database makes every digest. */
    if (s->own_digests && m[OPENED] + m[MOVED] > 0)
        own = (ids = calloc(n, sizeof(*ids))) != NULL;
    snprintf(epoch_s, sizeof(epoch_s), "%llu", (unsigned long long)epoch);
    if (!PQenterPipelineMode(s->conn)) {
        og_db_error(s->conn, NULL, err, errlen);
        free_plan(how, idx);
        free(ids);
        return -EIO;
    }
    /* BEGIN; begin_batch; og.store_opened for the events that each open a case, and
     * og.store_moved for those that each move one, if any; the statements of each other
     * record, in order; end_batch; COMMIT; then one sync:
     * one round trip. When signing, the links end_batch returns must be read first: the
     * first round trip ends after end_batch, the second signs them and commits
     * (sign_and_commit).
     * With own digests, the first round trip also reads now() after begin_batch, and ends
     * after the records' statements: their ledger ids are in the answers of the set-based
     * calls. The second gives end_batch the digests of their rows (send_end_given), and
     * commits. */
    if (!PQsendQueryParams(s->conn, "BEGIN", 0, NULL, NULL, NULL, NULL, 0) ||
        !PQsendQueryPrepared(s->conn, "begin_batch", 3, bv, NULL, NULL, 0) ||
        (own && !PQsendQueryPrepared(s->conn, "now", 0, NULL, NULL, NULL, 0)))
        rc = -EIO;
    for (int w = 0; rc == 0 && w < SETS; w++)
        if (m[w] > 0) {
            rc = send_set(s, stmt[w], items, idx[w], m[w]);
            calls[sets++] = w;
        }
    for (size_t i = 0; rc == 0 && i < n; i++)
        if (how[i] == ONE_BY_ONE)
            rc = send_item(s, &items[i]);
    /* end_batch appends this batch's links to the hash chains of its districts and
     * shard. */
    if (rc == 0 && own && !PQpipelineSync(s->conn))
        rc = -EIO;
    if (rc == 0 && !own &&
        (!PQsendQueryPrepared(s->conn, "end_batch", 0, NULL, NULL, NULL, 0) ||
         (!s->signing && !PQsendQueryParams(s->conn, "COMMIT", 0, NULL, NULL, NULL, NULL, 0)) ||
         !PQpipelineSync(s->conn)))
        rc = -EIO;
    if (rc < 0) {
        queue_failed(s->conn, rc, err, errlen);
        PQexitPipelineMode(s->conn);
        if (PQstatus(s->conn) == CONNECTION_OK && PQtransactionStatus(s->conn) != PQTRANS_IDLE)
            PQclear(PQexec(s->conn, "ROLLBACK"));
        free_plan(how, idx);
        free(ids);
        return rc == -ENOMEM ? -ENOMEM : -EIO;
    }

    /* Results come in order: BEGIN, begin_batch, og.store_opened's and og.store_moved's
     * (those sent), the statements of each other record (its store_event or store_rejection first,
     * then any store_decision calls), end_batch, COMMIT (not when signing), then sync. Each record
     * is answered from its first statement's result, or from its row of a set-based call's.
     * Only a record's own statement failing for its own content makes the record the
     * cause; BEGIN, begin_batch, end_batch, signing and COMMIT failing is never a record's
     * fault. */
    size_t total = 0, item = 0, sub = 0, sets_at = own ? 3 : 2, first = sets_at + (size_t)sets;
    for (size_t i = 0; i < n; i++)
        if (how[i] == ONE_BY_ONE)
            total += statements(&items[i]);
    while (item < n && how[item] != ONE_BY_ONE)
        item++;
    for (size_t q = 0; q < first + total + (own ? 0 : s->signing ? 1 : 2) + 1; q++) {
        bool record = q >= first && q < first + total, set = q >= sets_at && q < first;
        if (!(r = next_result(s->conn, err, errlen))) {
            rc = -EIO; /* connection lost: whatever was read before says nothing */
            break;
        }
        ExecStatusType st = PQresultStatus(r);
        if (rc == 0 && st == PGRES_FATAL_ERROR) {
            const char *state = og_db_sqlstate(r);
            og_db_error(s->conn, r, err, errlen);
            if (strcmp(state, "OG001") == 0) {
                rc = -ESTALE;
            } else if ((record || set) && strcmp(state, "OG002") == 0) {
                rc = -ENOENT;
                *bad = set ? SIZE_MAX : item;
            } else if ((record || set) && og_db_record_error(state)) {
                rc = -EINVAL;
                *bad = set ? SIZE_MAX : item;
            } else {
                rc = -EIO;
            }
        } else if (rc == 0 && own && q < sets_at && q > 0 && st == PGRES_TUPLES_OK) {
            /* begin_batch's batch id, then now() */
            int64_t v = PQntuples(r) == 1 ? strtoll(PQgetvalue(r, 0, 0), NULL, 10) : 0;
            *(q == 1 ? &batch_id : &now_us) = v;
            if (v <= 0) {
                snprintf(err, errlen, "%s answered no value", q == 1 ? "og.begin_batch" : "now()");
                rc = -EIO;
            }
        } else if (rc == 0 && set && st == PGRES_TUPLES_OK) {
            int w = calls[q - sets_at];
            int k = answer_set(stmt[w], items, idx[w], m[w], r, ids, err, errlen);
            if (k < 0)
                rc = k;
            else
                got += (size_t)k;
        } else if (rc == 0 && record && st == PGRES_TUPLES_OK && sub == 0) {
            struct og_store_item *it = &items[item];
            og_store_item_clear(it);
            if (is_refusal(it->frame->decision))
                it->reply = make_reply(it, "stored", NULL);
            else
                it->reply = make_reply(it, PQgetvalue(r, 0, 0),
                                       PQgetisnull(r, 0, 1) ? NULL : PQgetvalue(r, 0, 1));
            /* Without memory to answer, the batch is a fault: stored again, it is
             * answered 'stored' (og.stored_outcome), whether this COMMIT went through
             * or not. */
            if (it->reply)
                got++;
            else
                rc = -ENOMEM;
        } else if (rc == 0 && !own && q == first + total && st == PGRES_TUPLES_OK && s->signing) {
            links = r; /* end_batch's links, signed below */
            r = NULL;
        }
        if (record && ++sub == statements(&items[item])) { /* on to the next record */
            sub = 0;
            for (item++; item < n && how[item] != ONE_BY_ONE; item++)
                ;
        }
        PQclear(r);
        if (st == PGRES_PIPELINE_SYNC)
            break;
    }
    free_plan(how, idx);
    drain(s->conn);
    uint64_t given = 0;
    if (rc == 0 && own) {
        bool took = false;
        rc = end_given(s, items, n, (const int64_t(*)[2])ids, batch_id, now_us, &links, &took, err,
                       errlen);
        for (size_t i = 0; took && i < n; i++)
            given += ids[i][0] > 0 ? 2 : 0;
    }
    free(ids);
    if (rc == 0 && s->signing) {
        if (PQstatus(s->conn) != CONNECTION_OK) {
            og_db_error(s->conn, NULL, err, errlen);
            rc = -EIO;
        } else if (!links) {
            snprintf(err, errlen, "og.end_batch returned no links to sign");
            rc = -EIO;
        } else {
            rc = sign_and_commit(s, links, err, errlen);
            drain(s->conn);
        }
    }
    PQclear(links);
    PQexitPipelineMode(s->conn);
    /* A failed statement makes the pipeline skip the rest, COMMIT included: the session is
     * left inside the aborted transaction until it is rolled back. */
    if (PQstatus(s->conn) == CONNECTION_OK && PQtransactionStatus(s->conn) != PQTRANS_IDLE)
        PQclear(PQexec(s->conn, "ROLLBACK"));
    if (PQstatus(s->conn) != CONNECTION_OK) {
        if (rc == 0) {
            og_db_error(s->conn, NULL, err, errlen);
            rc = -EIO; /* lost around COMMIT: the outcome is unknown */
        }
    }
    if (rc == -ESTALE && read_epoch(s, shard, current) < 0)
        rc = -EIO;
    if (rc == 0 && got == n)
        s->given += given;
    if (rc < 0 || got != n) {
        for (size_t i = 0; i < n; i++)
            og_store_item_clear(&items[i]);
        if (rc == 0) {
            snprintf(err, errlen, "%zu of %zu records answered", got, n);
            rc = -EIO;
        }
    }
    return rc;
}

int og_store_commit(struct og_store *s, const char *shard, uint64_t epoch,
                    struct og_store_item *items, size_t n, uint64_t *current, size_t *bad,
                    char *err, size_t errlen)
{
    int rc;

    if (og_db_broken(s->conn)) {
        snprintf(err, errlen, "not connected");
        return -EIO;
    }
    rc = commit_batch(s, shard, epoch, items, n, true, current, bad, err, errlen);
    /* og.store_opened or og.store_moved refused the events it took for one's content, or
     * found a case one names missing, and cannot say whose:
     * the same batch again, event by event, names it (og.store_event fails for the same
     * content), and the other records of the batch are stored as usual. */
    if ((rc == -EINVAL || rc == -ENOENT) && *bad == SIZE_MAX)
        rc = commit_batch(s, shard, epoch, items, n, false, current, bad, err, errlen);
    if ((rc == -EINVAL || rc == -ENOENT) && *bad >= n) {
        snprintf(err + strlen(err), errlen - strlen(err),
                 " (a set-based call refused it, og.store_event did not)");
        rc = -EIO;
    }
    return rc;
}

int og_store_refuse(struct og_store_item *it, const char *text)
{
    Onegrid__V1__Frame *f = it->frame;
    Onegrid__V1__Decision *d = f->decision;
    Onegrid__V1__Nack *n;
    char safe[OG_REFUSAL_TEXT_MAX + 1];

    if (is_refusal(d))
        return -EEXIST;
    n = calloc(1, sizeof(*n));
    if (!n)
        return -ENOMEM;
    onegrid__v1__nack__init(n);
    n->reason = ONEGRID__V1__REASON__REASON_STORAGE_REFUSED;
    n->text = strdup(og_utf8_safe((const uint8_t *)text, strlen(text), safe, sizeof(safe)));
    if (!n->text) {
        free(n);
        return -ENOMEM;
    }
    if (d->rejection)
        onegrid__v1__nack__free_unpacked(d->rejection, NULL);
    d->rejection = n;
    d->kind = ONEGRID__V1__DECISION__KIND__KIND_REJECT;
    return 0;
}

int og_store_refuse_minimal(struct og_store_item *it)
{
    if (!is_refusal(it->frame->decision))
        return -EINVAL;
    if (it->minimal)
        return -EEXIST;
    it->minimal = true;
    return 0;
}
