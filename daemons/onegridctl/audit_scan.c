/* The one pass of `onegridctl audit verify` over the record (audit_scan.h).
 *
 * audit.c recomputes a link with a few queries of its own (link_v1, link_v2): that took
 * 2 ms per link, about 37 µs per ledger row, and 54 s for the 1.4 million rows of 100,000
 * cases. Here each view is read once as COPY ... TO STDOUT (FORMAT binary): bigints, times
 * and bytea arrive as numbers and bytes, so the server does not make their text (a time as
 * microseconds in numeric arithmetic, bytea in hex), and the canonical texts are made here
 * instead, exactly as deploy/sql/current/og.chain_link.sql (format 2) and
 * og.ledger_canonical.sql (format 1) describe them, and hashed with OpenSSL's SHA-256
 * (SHA-NI where the CPU has it; libsodium's portable one took 4.4 µs for a ledger row's
 * 700 bytes, more than the server's work for it).
 *
 * Two connections share one snapshot (pg_export_snapshot), so that two backends share the
 * server's work, chiefly making each row's jsonb text. Each reads half the event keys,
 * then ranges of batches of the ledger in turn (CHUNKS ranges of about as many rows, by
 * the rows the links record), so each link's rows come from one stream. A link's rows are
 * kept until as many have come as the link records (rows, records), then hashed and
 * dropped, so memory follows the batches being read, not the record; a row that comes for
 * a link after that, or a link number or batch seen twice, leaves the link unsettled and
 * audit.c recomputes it with its own queries, as it does for every link whose hash or
 * counts differ (to name what it found).
 *
 * The event keys are kept: 56 bytes each (the ledger id, the digest of the key's canonical
 * text, a keyed fingerprint of its source system and event id: SipHash, so that no key can
 * be made to pass for another), and 12 to 20 more to find them by ledger id (keys_merge),
 * since the view cannot give them in the ledger's order without a sort of all of them on
 * the server. */
#include "audit_scan.h"

#include <errno.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <sched.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"

#define HASH           32
#define LINK_HASH      64 /* the longest link hash kept as found (a real one has 32 bytes) */
#define MAX_MATCHES    8  /* event keys of one ledger row kept (a real row has at most one) */
#define EPOCH_2000     946684800000000LL
#define SHARD_PFX      "shard:"
#define NONE           UINT32_MAX
#define CHUNKS         8     /* ranges of the ledger the two streams share out */
#define DENSE_SPAN     4     /* ledger ids per event key, at most, for the keys' dense index */
#define MAX_FIRST_RECS 65536 /* records a link's first block holds at most (it grows) */

enum { PENDING, DONE, UNSURE };

struct chain {
    char *name;
    size_t len;
    bool shard;
};

/* A record's digest, kept until its link is complete. */
struct rec {
    int64_t id;
    uint8_t digest[HASH];
    uint8_t is_key;
};

struct link {
    uint32_t chain;
    int64_t seq, batch;
    uint8_t prev[HASH], hash[LINK_HASH];
    int prev_len, hash_len; /* -1: NULL or too long */
    int32_t rows, records;
    bool records_null;
    int format;
    int state;
    struct rec *recs;
    size_t n_recs, cap;
    int64_t last_id[2]; /* the last row's and the last key's ledger id, as they came */
    bool out_of_order;  /* a row or a key came before one of a lower id */
    long n_rows, n_keys;
    struct og_audit_scan_link out;
};

struct key {
    int64_t ledger_id;
    uint64_t fp;
    uint8_t digest[HASH];
    bool bad; /* a time the digest could not be made of: the link is audit.c's */
    atomic_bool matched;
};

/* Open addressing, linear probing; slots hold an index or NONE. */
struct map {
    uint32_t *slot;
    size_t mask;
};

struct og_audit_scan {
    struct chain *chains;
    size_t n_chains, cap_chains;
    struct map chain_map;
    struct link *links;
    size_t n_links;
    struct map by_batch, by_seq;
    struct key *keys;
    size_t n_keys;
    /* The keys by ledger id (keys_merge): the first key of an id at by_id[id - id_min]
     * (dense), or in key_map (sparse: a slot holds the first key of one id), the others of
     * that id after it in next_key. */
    uint32_t *by_id, *next_key;
    int64_t id_min;
    size_t id_span;
    struct map key_map;
    uint8_t sip[crypto_shorthash_KEYBYTES];
    uint64_t seed; /* the tables' hash by id, this run's: ids chosen to collide cannot be */
    EVP_MD *sha256;
    long stray_rows, stray_keys;
    int64_t bounds[CHUNKS - 1]; /* the ledger's ranges of batches (chunk_bounds) */
    atomic_int next_chunk;
};

struct fld {
    const uint8_t *p;
    int32_t len; /* -1: NULL */
};

struct buf {
    uint8_t *p;
    size_t len, cap;
};

/* Helpers ------------------------------------------------------------------------------ */

static uint64_t mix(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

static int map_init(struct map *m, size_t n)
{
    size_t size = 16;
    while (size < 2 * n)
        size *= 2;
    m->slot = malloc(size * sizeof(*m->slot));
    if (!m->slot)
        return -ENOMEM;
    memset(m->slot, 0xff, size * sizeof(*m->slot));
    m->mask = size - 1;
    return 0;
}

static uint16_t be16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int64_t be64(const uint8_t *p)
{
    return (int64_t)((uint64_t)be32(p) << 32 | be32(p + 4));
}

static bool get_i64(const struct fld *f, int64_t *v)
{
    if (f->len != 8)
        return false;
    *v = be64(f->p);
    return true;
}

static int buf_room(struct buf *b, size_t n)
{
    if (b->len + n <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + n)
        cap *= 2;
    uint8_t *p = realloc(b->p, cap);
    if (!p)
        return -ENOMEM;
    b->p = p;
    b->cap = cap;
    return 0;
}

/* Decimal text of v in tmp (24 bytes); returns its start. */
static char *dec(int64_t v, char tmp[24])
{
    char *p = tmp + 24;
    uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
    do {
        *--p = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0)
        *--p = '-';
    return p;
}

static void put(struct buf *b, const void *p, size_t len)
{
    memcpy(b->p + b->len, p, len);
    b->len += len;
}

/* The netstring of len bytes at p ("5:hello,"); room for len + 22 bytes must be there. */
static void put_ns(struct buf *b, const void *p, size_t len)
{
    char tmp[24], *d = dec((int64_t)len, tmp);
    put(b, d, (size_t)(tmp + 24 - d));
    b->p[b->len++] = ':';
    put(b, p, len);
    b->p[b->len++] = ',';
}

static int ns_text(struct buf *b, const struct fld *f)
{
    if (buf_room(b, (f->len > 0 ? (size_t)f->len : 0) + 24) < 0)
        return -ENOMEM;
    if (f->len < 0)
        b->p[b->len++] = '-';
    else
        put_ns(b, f->p, (size_t)f->len);
    return 0;
}

static int ns_str(struct buf *b, const char *s)
{
    struct fld f = {(const uint8_t *)s, (int32_t)strlen(s)};
    return ns_text(b, &f);
}

static int ns_i64(struct buf *b, int64_t v)
{
    char tmp[24], *d = dec(v, tmp);
    struct fld f = {(const uint8_t *)d, (int32_t)(tmp + 24 - d)};
    return ns_text(b, &f);
}

static void hex_into(uint8_t *out, const uint8_t *p, size_t len)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < len; i++) {
        out[2 * i] = (uint8_t)digits[p[i] >> 4];
        out[2 * i + 1] = (uint8_t)digits[p[i] & 15];
    }
}

static int ns_hex(struct buf *b, const uint8_t *p, int32_t len)
{
    char tmp[24], *d;
    if (buf_room(b, (len > 0 ? 2 * (size_t)len : 0) + 24) < 0)
        return -ENOMEM;
    if (len < 0) {
        b->p[b->len++] = '-';
        return 0;
    }
    d = dec(2 * (int64_t)len, tmp);
    put(b, d, (size_t)(tmp + 24 - d));
    b->p[b->len++] = ':';
    hex_into(b->p + b->len, p, (size_t)len);
    b->len += 2 * (size_t)len;
    b->p[b->len++] = ',';
    return 0;
}

/* A time (microseconds since 2000) as microseconds since 1970: false for 'infinity',
 * '-infinity' and times too far to count so (og.chain_link cannot hash them: no link
 * archive made holds one, and audit.c names the link). */
static bool unix_us(int64_t v, int64_t *out)
{
    return v != INT64_MIN && v != INT64_MAX && !__builtin_add_overflow(v, EPOCH_2000, out);
}

/* An int8 or a time (as microseconds since 1970) field as a netstring, '-' for NULL;
 * -ERANGE for a time unix_us refuses. */
static int ns_num(struct buf *b, const struct fld *f, bool time)
{
    int64_t v;
    if (f->len < 0)
        return ns_text(b, f);
    if (!get_i64(f, &v))
        return -EPROTO;
    if (time && !unix_us(v, &v))
        return -ERANGE;
    return ns_i64(b, v);
}

static int ns_i32(struct buf *b, const struct fld *f)
{
    if (f->len < 0)
        return ns_text(b, f);
    if (f->len != 4)
        return -EPROTO;
    return ns_i64(b, (int32_t)be32(f->p));
}

/* jsonb in binary: a version byte (1), then the same text as jsonb's text output. */
static bool jsonb_text(const struct fld *f, struct fld *text)
{
    *text = *f;
    if (f->len < 0)
        return true;
    if (f->len < 1 || f->p[0] != 1)
        return false;
    text->p++;
    text->len--;
    return true;
}

static int digest(EVP_MD_CTX *ctx, const EVP_MD *md, const uint8_t *p, size_t len,
                  uint8_t out[HASH])
{
    if (!EVP_DigestInit_ex(ctx, md, NULL) || !EVP_DigestUpdate(ctx, p, len) ||
        !EVP_DigestFinal_ex(ctx, out, NULL))
        return -EIO;
    return 0;
}

/* COPY ... TO STDOUT (FORMAT binary), one row at a time -------------------------------- */

struct reader {
    PGconn *c;
    char *msg;
    bool header;
};

static int rd_open(struct reader *r, PGconn *c, const char *sql, char *err, size_t errlen)
{
    PGresult *res = PQexec(c, sql);
    if (PQresultStatus(res) != PGRES_COPY_OUT) {
        og_db_error(c, res, err, errlen);
        PQclear(res);
        return -EIO;
    }
    PQclear(res);
    r->c = c;
    r->msg = NULL;
    r->header = false;
    return 0;
}

/* 1 with the row's n fields in f (valid until the next call), 0 at the end of a COPY that
 * succeeded, or a negative code with err filled. */
static int rd_next(struct reader *r, struct fld *f, int n, char *err, size_t errlen)
{
    static const uint8_t signature[11] = {'P', 'G', 'C', 'O', 'P', 'Y', '\n', 0xff, '\r', '\n', 0};
    for (;;) {
        const uint8_t *p, *end;
        int len;
        if (r->msg) {
            PQfreemem(r->msg);
            r->msg = NULL;
        }
        len = PQgetCopyData(r->c, &r->msg, 0);
        if (len == -1) {
            PGresult *res = PQgetResult(r->c);
            int rc = 0;
            if (PQresultStatus(res) != PGRES_COMMAND_OK)
                rc = og_db_error(r->c, res, err, errlen);
            PQclear(res);
            while ((res = PQgetResult(r->c)))
                PQclear(res);
            return rc;
        }
        if (len < 0) {
            snprintf(err, errlen, "COPY: %s", PQerrorMessage(r->c));
            return -EIO;
        }
        p = (const uint8_t *)r->msg;
        end = p + len;
        if (!r->header) {
            if (len < 19 || memcmp(p, signature, sizeof(signature)) != 0 ||
                be32(p + 15) > (uint32_t)len - 19)
                goto bad;
            p += 19 + be32(p + 15);
            r->header = true;
        }
        if (p == end)
            continue;
        if (end - p < 2)
            goto bad;
        if ((int16_t)be16(p) == -1)
            continue; /* the trailer: the end comes next */
        if ((int16_t)be16(p) != n)
            goto bad;
        p += 2;
        for (int i = 0; i < n; i++) {
            if (end - p < 4)
                goto bad;
            f[i].len = (int32_t)be32(p);
            f[i].p = p + 4;
            p += 4;
            if (f[i].len < -1 || f[i].len > end - p)
                goto bad;
            if (f[i].len > 0)
                p += f[i].len;
        }
        if (p != end)
            goto bad;
        return 1;
    }
bad:
    snprintf(err, errlen, "COPY: a row that is not %d fields in PostgreSQL's binary format", n);
    return -EPROTO;
}

static void rd_close(struct reader *r)
{
    if (r->msg)
        PQfreemem(r->msg);
    r->msg = NULL;
}

/* Chains and links --------------------------------------------------------------------- */

/* Bytes the record holds (an editor may have chosen them), hashed with this run's SipHash
 * key: no set of values made to collide can make a lookup walk them all. For chains' names
 * and event keys' fingerprints (key_fp). */
static uint64_t keyed_hash(const struct og_audit_scan *s, const uint8_t *p, size_t len)
{
    uint8_t out[crypto_shorthash_BYTES];
    uint64_t h;
    crypto_shorthash(out, p, len, s->sip);
    memcpy(&h, out, sizeof(h));
    return h;
}

/* Whether chain c is the one named name. */
static bool chain_is(const struct og_audit_scan *s, uint32_t c, const uint8_t *name, size_t len)
{
    return s->chains[c].len == len && memcmp(s->chains[c].name, name, len) == 0;
}

static uint32_t chain_find(const struct og_audit_scan *s, const uint8_t *name, size_t len)
{
    for (size_t i = keyed_hash(s, name, len) & s->chain_map.mask;;
         i = (i + 1) & s->chain_map.mask) {
        uint32_t c = s->chain_map.slot[i];
        if (c == NONE || chain_is(s, c, name, len))
            return c;
    }
}

static void chain_put(const struct og_audit_scan *s, struct map *m, uint32_t ch)
{
    size_t i = keyed_hash(s, (const uint8_t *)s->chains[ch].name, s->chains[ch].len) & m->mask;
    while (m->slot[i] != NONE)
        i = (i + 1) & m->mask;
    m->slot[i] = ch;
}

/* The chains' table, twice the size (it starts small: a few chains are usual). */
static int chain_map_grow(struct og_audit_scan *s)
{
    struct map m;
    if (map_init(&m, s->chain_map.mask + 1) < 0)
        return -ENOMEM;
    for (uint32_t ch = 0; ch < s->n_chains; ch++)
        chain_put(s, &m, ch);
    free(s->chain_map.slot);
    s->chain_map = m;
    return 0;
}

static size_t batch_slot(const struct og_audit_scan *s, const struct map *m, int64_t batch,
                         uint32_t chain)
{
    return mix(((uint64_t)batch * 31 + chain) ^ s->seed) & m->mask;
}

static uint32_t link_by_batch(const struct og_audit_scan *s, int64_t batch, uint32_t chain)
{
    for (size_t i = batch_slot(s, &s->by_batch, batch, chain);; i = (i + 1) & s->by_batch.mask) {
        uint32_t l = s->by_batch.slot[i];
        if (l == NONE || (s->links[l].batch == batch && s->links[l].chain == chain))
            return l;
    }
}

static uint32_t link_by_seq(const struct og_audit_scan *s, uint32_t chain, int64_t seq)
{
    for (size_t i = batch_slot(s, &s->by_seq, seq, chain);; i = (i + 1) & s->by_seq.mask) {
        uint32_t l = s->by_seq.slot[i];
        if (l == NONE || (s->links[l].seq == seq && s->links[l].chain == chain))
            return l;
    }
}

static void drop_recs(struct link *l)
{
    free(l->recs);
    l->recs = NULL;
    l->n_recs = l->cap = 0;
}

static void unsure(struct link *l)
{
    l->state = UNSURE;
    drop_recs(l);
}

static int add_rec(struct link *l, int64_t id, const uint8_t d[HASH], bool is_key)
{
    if (l->n_recs == l->cap) {
        /* The counts the link records size the first block, within reason: they are what
         * is checked, not to be trusted (a negative count made it 0 bytes once). */
        int32_t most = l->records > l->rows ? l->records : l->rows;
        size_t cap;
        struct rec *r;
        if (l->cap)
            cap = 2 * l->cap;
        else
            cap = (most <= 0 ? 0 : most < MAX_FIRST_RECS ? (size_t)most : MAX_FIRST_RECS) + 16;
        if (cap <= l->cap || cap > SIZE_MAX / sizeof(*r))
            return -ENOMEM;
        r = realloc(l->recs, cap * sizeof(*r));
        if (!r)
            return -ENOMEM;
        l->recs = r;
        l->cap = cap;
    }
    if (id < l->last_id[is_key])
        l->out_of_order = true;
    l->last_id[is_key] = id;
    l->recs[l->n_recs].id = id;
    memcpy(l->recs[l->n_recs].digest, d, HASH);
    l->recs[l->n_recs].is_key = is_key;
    l->n_recs++;
    return 0;
}

static int rec_cmp(const void *a, const void *b)
{
    const struct rec *x = a, *y = b;
    if (x->is_key != y->is_key)
        return x->is_key - y->is_key;
    return x->id < y->id ? -1 : x->id > y->id;
}

/* The start of a link's hash: the previous hash, then 'link', chain, seq, batch. */
static int link_begin(const struct og_audit_scan *s, EVP_MD_CTX *ctx, struct buf *b,
                      const struct link *l)
{
    b->len = 0;
    if (ns_str(b, "link") < 0 || ns_str(b, s->chains[l->chain].name) < 0 || ns_i64(b, l->seq) < 0 ||
        ns_i64(b, l->batch) < 0)
        return -ENOMEM;
    if (!EVP_DigestInit_ex(ctx, s->sha256, NULL) ||
        !EVP_DigestUpdate(ctx, l->prev, (size_t)l->prev_len) ||
        (l->format == 2 && !EVP_DigestUpdate(ctx, b->p, b->len)))
        return -EIO;
    return 0;
}

/* Hashes a district link from the records it collected. */
static int link_finish(const struct og_audit_scan *s, EVP_MD_CTX *ctx, struct buf *b,
                       struct link *l)
{
    if (l->prev_len != HASH) {
        unsure(l);
        return 0;
    }
    /* The records in order: rows, then keys, each by ledger id. They come so, as a rule, but
     * for the keys between the rows: two passes take them in order without a sort. */
    if (l->out_of_order && l->n_recs > 1) /* no record: qsort(NULL, 0) is undefined */
        qsort(l->recs, l->n_recs, sizeof(*l->recs), rec_cmp);
    if (link_begin(s, ctx, b, l) < 0)
        return -EIO;
    for (int key = 0; key < 2; key++)
        for (size_t i = 0; i < l->n_recs; i++)
            if (l->recs[i].is_key == key && !EVP_DigestUpdate(ctx, l->recs[i].digest, HASH))
                return -EIO;
    if (!EVP_DigestFinal_ex(ctx, l->out.hash, NULL))
        return -EIO;
    l->out.rows = l->n_rows;
    l->out.keys = l->n_keys;
    l->state = DONE;
    drop_recs(l);
    return 0;
}

static bool link_complete(const struct link *l)
{
    if (l->n_rows != l->rows)
        return false;
    return l->format == 1 || (!l->records_null && l->n_rows + l->n_keys == l->records);
}

static int load_links(struct og_audit_scan *s, PGconn *c, char *err, size_t errlen)
{
    struct reader r;
    struct fld f[8];
    size_t cap = 0;
    int rc;

    if (map_init(&s->chain_map, 64) < 0)
        return -ENOMEM;
    if ((rc = rd_open(&r, c,
                      "COPY (SELECT district_code::text, seq::bigint, batch_id::bigint, prev_hash, "
                      "hash, rows::integer, format::integer, records::integer FROM audit.chain) "
                      "TO STDOUT (FORMAT binary)",
                      err, errlen)) < 0)
        return rc;
    while ((rc = rd_next(&r, f, 8, err, errlen)) > 0) {
        struct link *l;
        uint32_t ch;
        /* A link without its chain, number or batch is no link the walk in audit.c asks
         * for: it names it (as --per-link does). */
        if (f[0].len < 0 || f[1].len != 8 || f[2].len != 8)
            continue;
        if (s->n_links == cap) {
            cap = cap ? 2 * cap : 1024;
            l = realloc(s->links, cap * sizeof(*l));
            if (!l) {
                rc = -ENOMEM;
                break;
            }
            s->links = l;
        }
        ch = chain_find(s, f[0].p, (size_t)f[0].len);
        if (ch == NONE) {
            if (s->n_chains == s->cap_chains) {
                struct chain *n;
                if (s->n_chains >= NONE - 1) {
                    rc = -ENOMEM;
                    break;
                }
                s->cap_chains = s->cap_chains ? 2 * s->cap_chains : 16;
                if (!(n = realloc(s->chains, s->cap_chains * sizeof(*n)))) {
                    rc = -ENOMEM;
                    break;
                }
                s->chains = n;
            }
            if (2 * (s->n_chains + 1) > s->chain_map.mask && (rc = chain_map_grow(s)) < 0)
                break;
            ch = (uint32_t)s->n_chains;
            s->chains[ch].len = (size_t)f[0].len;
            if (!(s->chains[ch].name = malloc((size_t)f[0].len + 1))) {
                rc = -ENOMEM;
                break;
            }
            memcpy(s->chains[ch].name, f[0].p, (size_t)f[0].len);
            s->chains[ch].name[f[0].len] = '\0';
            s->chains[ch].shard = strncmp(s->chains[ch].name, SHARD_PFX, strlen(SHARD_PFX)) == 0;
            chain_put(s, &s->chain_map, ch);
            s->n_chains++;
        }
        l = &s->links[s->n_links++];
        memset(l, 0, sizeof(*l));
        l->last_id[0] = l->last_id[1] = INT64_MIN;
        l->chain = ch;
        l->seq = be64(f[1].p);
        l->batch = be64(f[2].p);
        l->prev_len = f[3].len >= 0 && f[3].len <= HASH ? f[3].len : -1;
        if (l->prev_len > 0)
            memcpy(l->prev, f[3].p, (size_t)l->prev_len);
        l->hash_len = f[4].len >= 0 && f[4].len <= LINK_HASH ? f[4].len : -1;
        if (l->hash_len > 0)
            memcpy(l->hash, f[4].p, (size_t)l->hash_len);
        l->rows = f[5].len == 4 ? (int32_t)be32(f[5].p) : -1;
        l->format = f[6].len == 4 ? (int32_t)be32(f[6].p) : 0;
        l->records_null = f[7].len != 4;
        l->records = l->records_null ? 0 : (int32_t)be32(f[7].p);
        /* A negative or missing count was never recorded by archive: audit.c names the link. */
        l->state = l->rows < 0 || l->records < 0 ? UNSURE : PENDING;
    }
    rd_close(&r);
    if (rc < 0)
        return rc;
    if (s->n_links >= NONE || map_init(&s->by_batch, s->n_links) < 0 ||
        map_init(&s->by_seq, s->n_links) < 0)
        return -ENOMEM;
    /* Two links for one batch of a chain, or with one number: audit.c sorts them out. */
    for (uint32_t i = 0; i < s->n_links; i++) {
        struct link *l = &s->links[i];
        size_t k = batch_slot(s, &s->by_batch, l->batch, l->chain);
        uint32_t o = link_by_batch(s, l->batch, l->chain);
        if (o != NONE) {
            s->links[o].state = l->state = UNSURE;
        } else {
            while (s->by_batch.slot[k] != NONE)
                k = (k + 1) & s->by_batch.mask;
            s->by_batch.slot[k] = i;
        }
        k = batch_slot(s, &s->by_seq, l->seq, l->chain);
        o = link_by_seq(s, l->chain, l->seq);
        if (o != NONE) {
            s->links[o].state = l->state = UNSURE;
        } else {
            while (s->by_seq.slot[k] != NONE)
                k = (k + 1) & s->by_seq.mask;
            s->by_seq.slot[k] = i;
        }
    }
    return 0;
}

/* Event keys --------------------------------------------------------------------------- */

/* One of the two streams: its connection and what it found. */
struct worker {
    struct og_audit_scan *s;
    PGconn *c;
    char where_keys[96];
    EVP_MD_CTX *ctx;
    struct buf b, fpb;
    struct key *keys; /* the event keys it read, until merged into s->keys */
    size_t n_keys;
    long odd_keys; /* keys without a ledger id, source system or event id: join nothing */
    long stray_rows;
    uint32_t last_chain; /* the chain of the last ledger row that had one (NONE: none yet) */
    int rc;
    char err[512];
};

static uint64_t key_fp(const struct og_audit_scan *s, struct buf *b, const struct fld *system,
                       const struct fld *id)
{
    b->len = 0;
    /* Room was made by the caller's canonical text, which holds both fields. */
    put(b, &system->len, sizeof(system->len));
    put(b, system->p, (size_t)system->len);
    put(b, id->p, (size_t)id->len);
    return keyed_hash(s, b->p, b->len);
}

static void *keys_stream(void *arg)
{
    struct worker *w = arg;
    struct og_audit_scan *s = w->s;
    struct reader r;
    struct fld f[6];
    size_t cap = 0;
    char sql[512];
    int rc;

    snprintf(sql, sizeof(sql),
             "COPY (SELECT source_system::text, source_event_id::text, district_code::text, "
             "case_id::text, ledger_id::bigint, stored_at::timestamptz FROM audit.event_keys "
             "WHERE %s) TO STDOUT (FORMAT binary)",
             w->where_keys);
    if ((rc = rd_open(&r, w->c, sql, w->err, sizeof(w->err))) < 0)
        goto out;
    while ((rc = rd_next(&r, f, 6, w->err, sizeof(w->err))) > 0) {
        struct key *k;
        if (f[4].len != 8 || f[0].len < 0 || f[1].len < 0) {
            w->odd_keys++;
            continue;
        }
        if (w->n_keys == cap) {
            cap = cap ? 2 * cap : 65536;
            if (!(k = realloc(w->keys, cap * sizeof(*k)))) {
                rc = -ENOMEM;
                break;
            }
            w->keys = k;
        }
        k = &w->keys[w->n_keys];
        k->ledger_id = be64(f[4].p);
        k->bad = false;
        w->b.len = 0;
        if ((rc = ns_str(&w->b, "event_key")) < 0 || (rc = ns_text(&w->b, &f[0])) < 0 ||
            (rc = ns_text(&w->b, &f[1])) < 0 || (rc = ns_text(&w->b, &f[2])) < 0 ||
            (rc = ns_text(&w->b, &f[3])) < 0 || (rc = ns_num(&w->b, &f[4], false)) < 0 ||
            (rc = ns_num(&w->b, &f[5], true)) < 0 ||
            (rc = digest(w->ctx, s->sha256, w->b.p, w->b.len, k->digest)) < 0) {
            if (rc != -ERANGE)
                break;
            k->bad = true;
            memset(k->digest, 0, HASH);
        }
        if ((rc = buf_room(&w->fpb, (size_t)f[0].len + (size_t)f[1].len + 8)) < 0)
            break;
        k->fp = key_fp(s, &w->fpb, &f[0], &f[1]);
        w->n_keys++;
    }
    rd_close(&r);
out:
    w->rc = rc < 0 ? rc : 0;
    if (rc == -EPROTO && !*w->err)
        snprintf(w->err, sizeof(w->err), "audit.event_keys: a time that is not a timestamp");
    else if (rc == -ENOMEM)
        snprintf(w->err, sizeof(w->err), "out of memory");
    return NULL;
}

static size_t key_slot(const struct og_audit_scan *s, int64_t id)
{
    return mix((uint64_t)id ^ s->seed) & s->key_map.mask;
}

/* The keys both streams read, in one table by ledger id. */
static int keys_merge(struct og_audit_scan *s, struct worker w[2])
{
    size_t n = w[0].n_keys + w[1].n_keys;
    struct key *k;

    if (n >= NONE || !(k = realloc(w[0].keys, (n ? n : 1) * sizeof(*k))))
        return -ENOMEM;
    w[0].keys = NULL;
    if (w[1].n_keys)
        memcpy(k + w[0].n_keys, w[1].keys, w[1].n_keys * sizeof(*k));
    free(w[1].keys);
    w[1].keys = NULL;
    s->keys = k;
    s->n_keys = n;
    s->stray_keys = w[0].odd_keys + w[1].odd_keys;
    if (!(s->next_key = malloc((n ? n : 1) * sizeof(*s->next_key))))
        return -ENOMEM;
    /* Ledger ids come from a sequence, so the keys' ids are dense (about two ledger rows per
     * event): then an array indexed by the id finds a key, and the ledger's rows, which come
     * nearly in the order of their ids, read it in order (through the hash table, two reads
     * at random per event row took 15 % of verify's own CPU). Sparse ids (a restore, or a
     * record someone edited) take the hash table. */
    if (n) {
        int64_t lo = INT64_MAX, hi = INT64_MIN;
        for (size_t i = 0; i < n; i++) {
            lo = k[i].ledger_id < lo ? k[i].ledger_id : lo;
            hi = k[i].ledger_id > hi ? k[i].ledger_id : hi;
        }
        /* hi - lo, exact as unsigned (hi >= lo) */
        if ((uint64_t)hi - (uint64_t)lo < DENSE_SPAN * (uint64_t)n) {
            s->id_min = lo;
            s->id_span = (size_t)((uint64_t)hi - (uint64_t)lo) + 1;
            if (!(s->by_id = malloc(s->id_span * sizeof(*s->by_id))))
                return -ENOMEM;
            memset(s->by_id, 0xff, s->id_span * sizeof(*s->by_id));
        }
    }
    if (!s->by_id && map_init(&s->key_map, n) < 0)
        return -ENOMEM;
    /* From the last, so that each id's keys are chained in the order they came. */
    for (uint32_t i = (uint32_t)n; i-- > 0;) {
        uint32_t *head;
        atomic_init(&k[i].matched, false);
        if (s->by_id) {
            head = &s->by_id[(uint64_t)k[i].ledger_id - (uint64_t)s->id_min];
        } else {
            size_t slot = key_slot(s, k[i].ledger_id);
            while (s->key_map.slot[slot] != NONE &&
                   k[s->key_map.slot[slot]].ledger_id != k[i].ledger_id)
                slot = (slot + 1) & s->key_map.mask;
            head = &s->key_map.slot[slot];
        }
        s->next_key[i] = *head;
        *head = i;
    }
    return 0;
}

/* The first event key of ledger id id (NONE for none); the others follow in next_key. */
static uint32_t key_first(const struct og_audit_scan *s, int64_t id)
{
    if (s->by_id) {
        uint64_t at = (uint64_t)id - (uint64_t)s->id_min;
        return at < s->id_span ? s->by_id[at] : NONE;
    }
    for (size_t i = key_slot(s, id);; i = (i + 1) & s->key_map.mask) {
        uint32_t k = s->key_map.slot[i];
        if (k == NONE || s->keys[k].ledger_id == id)
            return k;
    }
}

/* The ledger, by two streams ----------------------------------------------------------- */

/* A ledger row's canonical text in format 2 (og.chain_link) or 1 (og.ledger_canonical). */
static int row_text(struct buf *b, const struct fld *f, int format)
{
    struct fld detail;
    size_t room = 0;
    int rc;

    if (!jsonb_text(&f[9], &detail))
        return -EPROTO;
    for (int i = 0; i < 11; i++)
        room += (f[i].len > 0 ? (size_t)f[i].len : 0) + 24;
    room += f[10].len > 0 ? (size_t)f[10].len : 0;
    b->len = 0;
    if (buf_room(b, room + 64) < 0)
        return -ENOMEM;
    if (format == 2) {
        if ((rc = ns_str(b, "ledger")) < 0 || (rc = ns_num(b, &f[0], false)) < 0 ||
            (rc = ns_num(b, &f[1], true)) < 0 || (rc = ns_num(b, &f[2], false)) < 0)
            return rc;
        for (int i = 3; i <= 8; i++)
            ns_text(b, &f[i]);
        ns_text(b, &detail);
        return ns_hex(b, f[10].p, f[10].len);
    }
    /* Format 1: the fields joined by U+001F; NULL (case_id) as ''. */
    for (int i = 0; i <= 10; i++) {
        char tmp[24], *d;
        int64_t v;
        if (i > 0)
            b->p[b->len++] = 0x1f;
        if (f[i].len < 0)
            continue;
        if (i == 0 || i == 1 || i == 2) {
            if (!get_i64(&f[i], &v))
                return -EPROTO;
            if (i == 1 && !unix_us(v, &v))
                return -ERANGE;
            d = dec(v, tmp);
            put(b, d, (size_t)(tmp + 24 - d));
        } else if (i == 9) {
            put(b, detail.p, (size_t)detail.len);
        } else if (i == 10) {
            hex_into(b->p + b->len, f[i].p, (size_t)f[i].len);
            b->len += 2 * (size_t)f[i].len;
        } else {
            put(b, f[i].p, (size_t)f[i].len);
        }
    }
    return 0;
}

static int ledger_row(struct worker *w, const struct fld *f)
{
    struct og_audit_scan *s = w->s;
    uint32_t matches[MAX_MATCHES], n_matches = 0, ch = NONE, li = NONE;
    bool event = f[4].len == 5 && memcmp(f[4].p, "event", 5) == 0, too_many = false, bad = false;
    int64_t id = 0, batch = 0;
    struct link *l;
    uint8_t d[HASH];
    int rc;

    if (f[0].len >= 0 && !get_i64(&f[0], &id))
        return -EPROTO;
    if (f[2].len >= 0 && !get_i64(&f[2], &batch))
        return -EPROTO;
    if (f[2].len >= 0 && f[3].len >= 0) {
        /* Rows of one district often come together: the last row's chain is tried first. */
        if (w->last_chain != NONE && chain_is(s, w->last_chain, f[3].p, (size_t)f[3].len))
            ch = w->last_chain;
        else if ((ch = chain_find(s, f[3].p, (size_t)f[3].len)) != NONE)
            w->last_chain = ch;
        if (ch != NONE)
            li = link_by_batch(s, batch, ch);
    }
    /* A row of no link, or of a shard's chain (whose links cover batches, no ledger row). */
    if (li == NONE || s->chains[ch].shard)
        w->stray_rows++;
    /* The event keys this row joins (audit.c's SQL_KEYS_V2 and the stray key check). */
    if (event && f[0].len == 8 && f[6].len >= 0 && f[7].len >= 0 && s->n_keys) {
        uint64_t fp;
        if (buf_room(&w->fpb, (size_t)f[6].len + (size_t)f[7].len + 8) < 0)
            return -ENOMEM;
        fp = key_fp(s, &w->fpb, &f[6], &f[7]);
        for (uint32_t k = key_first(s, id); k != NONE; k = s->next_key[k]) {
            struct key *key = &s->keys[k];
            if (key->fp != fp)
                continue;
            atomic_store_explicit(&key->matched, true, memory_order_relaxed);
            bad |= key->bad;
            if (n_matches < MAX_MATCHES)
                matches[n_matches++] = k;
            else
                too_many = true;
        }
    }
    if (li == NONE)
        return 0;
    l = &s->links[li];
    if (s->chains[ch].shard || (l->format != 1 && l->format != 2) || l->state == UNSURE)
        return 0; /* a shard's link covers no ledger row; audit.c refuses other formats */
    if (l->state == DONE || f[0].len != 8 || too_many || (bad && l->format == 2)) {
        unsure(l); /* more rows than the link records, or a time: audit.c names them */
        return 0;
    }
    if ((rc = row_text(&w->b, f, l->format)) == -ERANGE) {
        unsure(l);
        return 0;
    }
    if (rc < 0 || (rc = digest(w->ctx, s->sha256, w->b.p, w->b.len, d)) < 0 ||
        (rc = add_rec(l, id, d, false)) < 0)
        return rc;
    l->n_rows++;
    if (l->format == 2)
        for (uint32_t i = 0; i < n_matches; i++) {
            if ((rc = add_rec(l, s->keys[matches[i]].ledger_id, s->keys[matches[i]].digest, true)) <
                0)
                return rc;
            l->n_keys++;
        }
    if (link_complete(l))
        return link_finish(s, w->ctx, &w->b, l);
    return 0;
}

static void *ledger_stream(void *arg)
{
    struct worker *w = arg;
    struct og_audit_scan *s = w->s;
    struct reader r;
    struct fld f[11];
    char sql[512], where[96];
    int i;

    w->rc = 0;
    while (w->rc >= 0 && (i = atomic_fetch_add(&s->next_chunk, 1)) < CHUNKS) {
        if (i == 0)
            snprintf(where, sizeof(where), "batch_id < %lld", (long long)s->bounds[0]);
        else if (i == CHUNKS - 1)
            snprintf(where, sizeof(where), "batch_id >= %lld", (long long)s->bounds[i - 1]);
        else
            snprintf(where, sizeof(where), "batch_id >= %lld AND batch_id < %lld",
                     (long long)s->bounds[i - 1], (long long)s->bounds[i]);
        snprintf(sql, sizeof(sql),
                 "COPY (SELECT ledger_id::bigint, recorded_at::timestamptz, batch_id::bigint, "
                 "district_code::text, kind::text, case_id::text, source_system::text, "
                 "source_event_id::text, event_type::text, detail::jsonb, body::bytea "
                 "FROM audit.ledger WHERE %s) TO STDOUT (FORMAT binary)",
                 where);
        if ((w->rc = rd_open(&r, w->c, sql, w->err, sizeof(w->err))) < 0)
            return NULL;
        while ((w->rc = rd_next(&r, f, 11, w->err, sizeof(w->err))) > 0)
            if ((w->rc = ledger_row(w, f)) < 0)
                break;
        rd_close(&r);
    }
    if (w->rc == -EPROTO && !*w->err)
        snprintf(w->err, sizeof(w->err),
                 "audit.ledger: a row this verify cannot read (jsonb "
                 "version, or a number or time of the wrong size)");
    else if (w->rc == -ENOMEM)
        snprintf(w->err, sizeof(w->err), "out of memory");
    return NULL;
}

/* Shards' links ------------------------------------------------------------------------ */

struct batch_digest {
    int64_t batch;
    uint8_t digest[HASH];
    bool bad; /* a time the digest could not be made of: the link is audit.c's */
};

static int bd_cmp(const void *a, const void *b)
{
    const struct batch_digest *x = a, *y = b;
    return x->batch < y->batch ? -1 : x->batch > y->batch;
}

/* Links by batch, then shards' by position and districts' by name (byte order). */
static const struct og_audit_scan *sort_scan;
static int link_cmp(const void *a, const void *b)
{
    const struct link *x = &sort_scan->links[*(const uint32_t *)a];
    const struct link *y = &sort_scan->links[*(const uint32_t *)b];
    if (x->batch != y->batch)
        return x->batch < y->batch ? -1 : 1;
    return strcmp(sort_scan->chains[x->chain].name, sort_scan->chains[y->chain].name);
}

static int shard_links(struct og_audit_scan *s, PGconn *c, EVP_MD_CTX *ctx, struct buf *b,
                       char *err, size_t errlen)
{
    struct batch_digest *batches = NULL, *rej = NULL;
    size_t n_batches = 0, cap = 0, n_rej = 0, cap_rej = 0, n_shard = 0, n_district = 0;
    uint32_t *shard = malloc(s->n_links * sizeof(*shard) + 1);
    uint32_t *district = malloc(s->n_links * sizeof(*district) + 1);
    struct reader r = {0};
    struct fld f[11];
    int64_t rej_batch = 0;
    uint8_t rej_digest[HASH];
    bool rej_open = false, rej_valid = false, rej_bad = false, rejs_bad = false;
    EVP_MD_CTX *rctx = EVP_MD_CTX_new(); /* records' digests, while ctx makes a link's */
    int rc = -ENOMEM;

    if (!shard || !district || !rctx)
        goto out;
    for (uint32_t i = 0; i < s->n_links; i++) {
        if (!s->chains[s->links[i].chain].shard)
            district[n_district++] = i;
        else if (s->links[i].format == 2)
            shard[n_shard++] = i;
    }
    sort_scan = s;
    qsort(shard, n_shard, sizeof(*shard), link_cmp);
    qsort(district, n_district, sizeof(*district), link_cmp);

    /* Batch rows: one per batch, so kept. */
    if ((rc = rd_open(&r, c,
                      "COPY (SELECT batch_id::bigint, shard::text, epoch::bigint, archive::text, "
                      "committed_at::timestamptz FROM audit.batches) TO STDOUT (FORMAT binary)",
                      err, errlen)) < 0)
        goto out;
    while ((rc = rd_next(&r, f, 5, err, errlen)) > 0) {
        if (f[0].len != 8)
            continue;
        if (n_batches == cap) {
            struct batch_digest *n;
            cap = cap ? 2 * cap : 1024;
            if (!(n = realloc(batches, cap * sizeof(*n)))) {
                rc = -ENOMEM;
                break;
            }
            batches = n;
        }
        batches[n_batches].batch = be64(f[0].p);
        batches[n_batches].bad = false;
        b->len = 0;
        if ((rc = ns_str(b, "batch")) < 0 || (rc = ns_num(b, &f[0], false)) < 0 ||
            (rc = ns_text(b, &f[1])) < 0 || (rc = ns_num(b, &f[2], false)) < 0 ||
            (rc = ns_text(b, &f[3])) < 0 || (rc = ns_num(b, &f[4], true)) < 0 ||
            (rc = digest(rctx, s->sha256, b->p, b->len, batches[n_batches].digest)) < 0) {
            if (rc != -ERANGE)
                break;
            batches[n_batches].bad = true;
        }
        rc = 1;
        n_batches++;
    }
    rd_close(&r);
    if (rc < 0)
        goto out;
    if (n_batches > 1)
        qsort(batches, n_batches, sizeof(*batches), bd_cmp);

    /* Rejections, streamed in batch order beside the shards' links. */
    if ((rc = rd_open(&r, c,
                      "COPY (SELECT rejection_id::bigint, batch_id::bigint, "
                      "received_at::timestamptz, recorded_at::timestamptz, publisher::text, "
                      "source_system::text, source_event_id::text, reason::text, detail::text, "
                      "raw_size::integer, raw_sha256::text FROM audit.rejected_events "
                      "WHERE batch_id IS NOT NULL ORDER BY batch_id, rejection_id) "
                      "TO STDOUT (FORMAT binary)",
                      err, errlen)) < 0)
        goto out;
    rej_open = true;
    rc = 0;
    for (size_t i = 0, d = 0; i < n_shard; i++) {
        struct link *l = &s->links[shard[i]];
        size_t lo = 0, hi = n_batches;
        /* The rejections of this batch (kept for the next link if it names the same). */
        if (i == 0 || s->links[shard[i - 1]].batch != l->batch) {
            n_rej = 0;
            rejs_bad = false;
            for (;;) {
                if (!rej_valid) {
                    if (!rej_open || (rc = rd_next(&r, f, 11, err, errlen)) == 0) {
                        rej_open = false;
                        break;
                    }
                    if (rc < 0)
                        goto out;
                    if (f[1].len != 8)
                        goto proto;
                    rej_batch = be64(f[1].p);
                    rej_bad = false;
                    b->len = 0;
                    if ((rc = ns_str(b, "rejection")) < 0 || (rc = ns_num(b, &f[0], false)) < 0 ||
                        (rc = ns_num(b, &f[1], false)) < 0 || (rc = ns_num(b, &f[2], true)) < 0 ||
                        (rc = ns_num(b, &f[3], true)) < 0) {
                        if (rc != -ERANGE)
                            goto out;
                        rej_bad = true;
                    }
                    for (int k = 4; k <= 8; k++)
                        if ((rc = ns_text(b, &f[k])) < 0)
                            goto out;
                    if ((rc = ns_i32(b, &f[9])) < 0 || (rc = ns_text(b, &f[10])) < 0 ||
                        (rc = digest(rctx, s->sha256, b->p, b->len, rej_digest)) < 0)
                        goto out;
                    rej_valid = true;
                }
                if (rej_batch > l->batch)
                    break;
                rej_valid = false;
                if (rej_batch < l->batch)
                    continue; /* no shard's link names its batch: the SQL check names it */
                if (n_rej == cap_rej) {
                    struct batch_digest *n;
                    cap_rej = cap_rej ? 2 * cap_rej : 256;
                    if (!(n = realloc(rej, cap_rej * sizeof(*n)))) {
                        rc = -ENOMEM;
                        goto out;
                    }
                    rej = n;
                }
                rejs_bad |= rej_bad;
                rej[n_rej].batch = rej_batch;
                memcpy(rej[n_rej++].digest, rej_digest, HASH);
            }
            rc = 0;
        }
        if (l->state == UNSURE || l->prev_len != HASH)
            continue;
        /* The batch row(s): one, or audit.c sorts it out. */
        while (lo < hi) {
            size_t mid = (lo + hi) / 2;
            if (batches[mid].batch < l->batch)
                lo = mid + 1;
            else
                hi = mid;
        }
        for (hi = lo; hi < n_batches && batches[hi].batch == l->batch; hi++)
            ;
        if (hi - lo > 1 || (hi > lo && batches[lo].bad) || rejs_bad) {
            l->state = UNSURE;
            continue;
        }
        if ((rc = link_begin(s, ctx, b, l)) < 0)
            goto out;
        if (hi > lo && !EVP_DigestUpdate(ctx, batches[lo].digest, HASH))
            goto evp;
        for (size_t k = 0; k < n_rej; k++)
            if (!EVP_DigestUpdate(ctx, rej[k].digest, HASH))
                goto evp;
        /* The district links of the batch, by chain name. */
        while (d < n_district && s->links[district[d]].batch < l->batch)
            d++;
        l->out.links = 0;
        for (size_t k = d; k < n_district && s->links[district[k]].batch == l->batch; k++) {
            const struct link *x = &s->links[district[k]];
            uint8_t dg[HASH];
            if (x->hash_len < 0 || (k > d && x->chain == s->links[district[k - 1]].chain)) {
                l->state = UNSURE;
                break;
            }
            b->len = 0;
            if ((rc = ns_str(b, "chain_link")) < 0 ||
                (rc = ns_str(b, s->chains[x->chain].name)) < 0 || (rc = ns_i64(b, x->seq)) < 0 ||
                (rc = ns_hex(b, x->hash, x->hash_len)) < 0 ||
                (rc = digest(rctx, s->sha256, b->p, b->len, dg)) < 0)
                goto out;
            if (!EVP_DigestUpdate(ctx, dg, HASH))
                goto evp;
            l->out.links++;
        }
        if (l->state == UNSURE)
            continue;
        if (!EVP_DigestFinal_ex(ctx, l->out.hash, NULL))
            goto evp;
        l->out.batch = (long)(hi - lo);
        l->out.rejections = (long)n_rej;
        l->state = DONE;
    }
    /* Read the rest, so that the connection is free again. */
    while (rej_open && (rc = rd_next(&r, f, 11, err, errlen)) > 0)
        ;
    rej_open = false;
    if (rc > 0)
        rc = 0;
    goto out;
proto:
    snprintf(err, errlen, "audit.rejected_events: a rejection without its batch");
    rc = -EPROTO;
    goto out;
evp:
    snprintf(err, errlen, "SHA-256 failed");
    rc = -EIO;
out:
    if (rc == -EPROTO && !*err)
        snprintf(err, errlen, "a batch or rejection this verify cannot read");
    rd_close(&r);
    free(batches);
    free(rej);
    free(shard);
    free(district);
    EVP_MD_CTX_free(rctx);
    return rc < 0 ? rc : 0;
}

/* The pass ----------------------------------------------------------------------------- */

/* The batches that cut the ledger rows the district links record into CHUNKS parts of
 * about as many rows: bounds[i] is the first batch of part i + 1. */
struct batch_rows {
    int64_t batch;
    long rows;
};

static int br_cmp(const void *a, const void *b)
{
    const struct batch_rows *x = a, *y = b;
    return x->batch < y->batch ? -1 : x->batch > y->batch;
}

static void chunk_bounds(struct og_audit_scan *s)
{
    struct batch_rows *v = malloc((s->n_links + 1) * sizeof(*v));
    long total = 0, acc = 0;
    size_t n = 0;
    int k = 0;

    for (int i = 0; i < CHUNKS - 1; i++)
        s->bounds[i] = INT64_MIN; /* every part but the last empty */
    if (!v)
        return; /* then one stream reads it all: slower, not wrong */
    for (size_t i = 0; i < s->n_links; i++)
        if (!s->chains[s->links[i].chain].shard && s->links[i].state != UNSURE) {
            v[n].batch = s->links[i].batch;
            v[n].rows = s->links[i].rows;
            total += v[n++].rows;
        }
    qsort(v, n, sizeof(*v), br_cmp);
    for (size_t i = 0; i < n && k < CHUNKS - 1; i++) {
        acc += v[i].rows;
        while (k < CHUNKS - 1 && (long long)CHUNKS * acc >= (long long)(k + 1) * total &&
               (i + 1 == n || v[i + 1].batch != v[i].batch))
            s->bounds[k++] = v[i].batch < INT64_MAX ? v[i].batch + 1 : v[i].batch;
    }
    while (k > 0 && k < CHUNKS - 1) {
        s->bounds[k] = s->bounds[k - 1];
        k++;
    }
    free(v);
}

/* The pass is batch work, on the same cores as the two backends it reads, as a rule. A
 * stream that keeps up with its backend waits for each 8 kB the backend sends, and as a
 * normal thread, woken, it preempts the backend making the next rows: in one verify of 1.4
 * million ledger rows on 2 cores, 145,000 context switches, and the CPU the streams saved
 * (keys_merge) spent in the kernel. Under SCHED_BATCH (sched(7): taken for CPU-bound, with
 * a penalty on wakeup; Linux does not let its wakeups preempt; unprivileged), 14,000, and
 * 5 % less time. The calling thread takes it, and the thread it starts inherits it; the
 * caller's policy is given back at the end (if that fails, verify only runs as batch work
 * to its end). A thread under any other policy keeps it. */
static bool batch_policy(void)
{
    struct sched_param p = {0};
    int policy;
    return pthread_getschedparam(pthread_self(), &policy, &p) == 0 && policy == SCHED_OTHER &&
           pthread_setschedparam(pthread_self(), SCHED_BATCH, &p) == 0;
}

/* Runs fn in both workers, the second in a thread of its own (when it has a connection).
 * 0, or the first error. */
static int both(struct worker w[2], void *(*fn)(void *), char *err, size_t errlen)
{
    pthread_t thread;
    int e;
    if (w[1].c && (e = pthread_create(&thread, NULL, fn, &w[1])) != 0) {
        snprintf(err, errlen, "could not start a thread: %s", strerror(e));
        return -EAGAIN;
    }
    fn(&w[0]);
    if (w[1].c)
        pthread_join(thread, NULL);
    for (int i = 0; i < 2; i++)
        if (w[i].rc < 0) {
            snprintf(err, errlen, "%s", w[i].err);
            return w[i].rc;
        }
    return 0;
}

struct og_audit_scan *og_audit_scan_run(PGconn *c, const char *conninfo, char *err, size_t errlen)
{
    struct og_audit_scan *s = calloc(1, sizeof(*s));
    struct worker w[2] = {0};
    PGconn *c2 = NULL;
    PGresult *res = NULL;
    char snapshot[128], cmd[256];
    bool batch = batch_policy();
    int rc = -ENOMEM;

    *err = '\0';
    if (!s)
        goto fail;
    crypto_shorthash_keygen(s->sip);
    randombytes_buf(&s->seed, sizeof(s->seed));
    if (!(s->sha256 = EVP_MD_fetch(NULL, "SHA256", NULL))) {
        snprintf(err, errlen, "OpenSSL has no SHA-256");
        goto fail;
    }
    for (int i = 0; i < 2; i++) {
        w[i].s = s;
        w[i].last_chain = NONE;
        if (!(w[i].ctx = EVP_MD_CTX_new()))
            goto fail;
    }
    /* JIT compiling the ledger's query cost each stream 250 ms and gained nothing. */
    if ((rc = og_db_exec(c, "SET LOCAL jit = off", err, errlen)) < 0 ||
        (rc = load_links(s, c, err, errlen)) < 0)
        goto fail;
    res = PQexec(c, "SELECT pg_export_snapshot()");
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        rc = og_db_error(c, res, err, errlen);
        goto fail;
    }
    snprintf(snapshot, sizeof(snapshot), "%s", PQgetvalue(res, 0, 0));
    PQclear(res);
    res = NULL;

    /* The second stream: its own connection, in the same snapshot. Without it (a
     * connection limit, say) the first stream reads everything: slower, the same result. */
    snprintf(cmd, sizeof(cmd),
             "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SET TRANSACTION SNAPSHOT '%s'; "
             "SET LOCAL jit = off",
             snapshot);
    if ((c2 = og_db_connect(conninfo, "onegridctl audit", err, errlen)) &&
        og_db_exec(c2, cmd, err, errlen) < 0) {
        PQfinish(c2);
        c2 = NULL;
    }
    *err = '\0';
    w[0].c = c;
    w[1].c = c2;

    /* The event keys: half each, by a hash of the ledger id (the view has no index to split
     * it by; by parity, events and their decisions alternating, one stream had them all). */
    snprintf(w[0].where_keys, sizeof(w[0].where_keys), "%s",
             c2 ? "hashint8(ledger_id) & 1 = 0 OR ledger_id IS NULL" : "true");
    snprintf(w[1].where_keys, sizeof(w[1].where_keys), "hashint8(ledger_id) & 1 <> 0");
    if ((rc = both(w, keys_stream, err, errlen)) < 0 || (rc = keys_merge(s, w)) < 0)
        goto fail;

    /* The ledger: in ranges of batches with about as many rows each, each read through
     * the batch_id index, taken in turn by the two streams (by parity each stream scanned
     * the whole ledger; halves came out unequal on a busy machine). Every link's rows come
     * from one range. A row without a batch belongs to no link: only counted. */
    chunk_bounds(s);
    atomic_init(&s->next_chunk, 0);
    if ((rc = both(w, ledger_stream, err, errlen)) < 0)
        goto fail;
    res = PQexec(c, "SELECT count(*) FROM audit.ledger WHERE batch_id IS NULL");
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        rc = og_db_error(c, res, err, errlen);
        goto fail;
    }
    s->stray_rows = w[0].stray_rows + w[1].stray_rows + strtol(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    res = NULL;

    /* Links whose rows did not all come (or none): hashed from what did. */
    for (size_t i = 0; i < s->n_links; i++) {
        struct link *l = &s->links[i];
        if (l->state == PENDING && !s->chains[l->chain].shard &&
            (l->format == 1 || l->format == 2) && (rc = link_finish(s, w[0].ctx, &w[0].b, l)) < 0)
            goto fail;
    }
    if ((rc = shard_links(s, c, w[0].ctx, &w[0].b, err, errlen)) < 0)
        goto fail;
    for (size_t i = 0; i < s->n_keys; i++)
        s->stray_keys += !atomic_load_explicit(&s->keys[i].matched, memory_order_relaxed);
    rc = 0;
fail:
    PQclear(res);
    if (c2) {
        PQclear(PQexec(c2, "COMMIT"));
        PQfinish(c2);
    }
    for (int i = 0; i < 2; i++) {
        EVP_MD_CTX_free(w[i].ctx);
        free(w[i].b.p);
        free(w[i].fpb.p);
        free(w[i].keys);
    }
    if (batch) {
        struct sched_param p = {0};
        pthread_setschedparam(pthread_self(), SCHED_OTHER, &p);
    }
    if (rc < 0) {
        if (!*err)
            snprintf(err, errlen, "audit verify's pass over the record: %s", strerror(-rc));
        og_audit_scan_free(&s);
    }
    return s;
}

bool og_audit_scan_link(const struct og_audit_scan *s, const char *chain, long long seq,
                        long long batch, int format, struct og_audit_scan_link *out)
{
    uint32_t ch, l;
    if (!s)
        return false;
    ch = chain_find(s, (const uint8_t *)chain, strlen(chain));
    if (ch == NONE || (l = link_by_seq(s, ch, seq)) == NONE)
        return false;
    if (s->links[l].state != DONE || s->links[l].batch != batch || s->links[l].format != format)
        return false;
    *out = s->links[l].out;
    return true;
}

long og_audit_scan_stray_rows(const struct og_audit_scan *s)
{
    return s->stray_rows;
}

long og_audit_scan_stray_keys(const struct og_audit_scan *s)
{
    return s->stray_keys;
}

void og_audit_scan_free(struct og_audit_scan **sp)
{
    struct og_audit_scan *s = *sp;
    if (!s)
        return;
    for (size_t i = 0; i < s->n_chains; i++)
        free(s->chains[i].name);
    for (size_t i = 0; i < s->n_links; i++)
        free(s->links[i].recs);
    free(s->chains);
    free(s->links);
    free(s->chain_map.slot);
    free(s->by_batch.slot);
    free(s->by_seq.slot);
    free(s->keys);
    free(s->key_map.slot);
    free(s->by_id);
    free(s->next_key);
    EVP_MD_free(s->sha256);
    free(s);
    *sp = NULL;
}
