/* The table of Submits waiting for an answer: for each key passed on to dispatch, who sent
 * it (routing id and tag), in the order they came. Every Submit is owed exactly one
 * answer, so nothing here is ever dropped: a copy from the same connection with the same
 * tag (a publisher's resend) costs a counter, any other one an entry, and when max entries
 * are held the caller stops reading publishers until answers free some. One connection
 * may hold at most per_route entries, so that it cannot take the table from the others:
 * beyond, the caller answers its Submits REASON_BUSY instead of passing them on. */
#include "intake.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <uthash.h>

#include "util.h"

struct entry {
    UT_hash_handle hh; /* by id[], within the key; iterated in the order added */
    uint32_t copies;   /* identical Submits in flight, each owed an answer */
    int64_t since_us;  /* og_mono_us() when the first of them came */
    uint16_t route_len;
    uint8_t tag_len;
    uint8_t id[]; /* the hash key: route_len (2 bytes, big-endian), route, tag */
};

struct waiting {
    UT_hash_handle hh; /* by key */
    struct entry *entries;
    size_t bytes; /* what was passed on for the key */
    bool has_digest;
    uint8_t digest[32]; /* of the Submit passed on (og_waiters_set_digest) */
    char key[];
};

struct route { /* entries per routing id */
    UT_hash_handle hh;
    size_t entries;
    uint16_t len;
    uint8_t id[];
};

struct og_waiters {
    struct waiting *by_key;
    struct route *routes;
    size_t entries, submits, bytes, max, per_route;
};

struct og_waiters *og_waiters_new(size_t max, size_t per_route)
{
    struct og_waiters *ws = calloc(1, sizeof(*ws));
    if (ws) {
        ws->max = max;
        ws->per_route = per_route;
    }
    return ws;
}

static struct route *find_route(const struct og_waiters *ws, const uint8_t *id, size_t len)
{
    struct route *r;
    HASH_FIND(hh, ws->routes, id, len, r);
    return r;
}

static void route_less(struct og_waiters *ws, const uint8_t *id, size_t len)
{
    struct route *r = find_route(ws, id, len);
    if (r && --r->entries == 0) {
        HASH_DEL(ws->routes, r);
        free(r);
    }
}

static void free_waiting(struct og_waiters *ws, struct waiting *w)
{
    struct entry *e, *tmp;
    HASH_ITER(hh, w->entries, e, tmp)
    {
        HASH_DEL(w->entries, e);
        route_less(ws, e->id + 2, e->route_len);
        ws->entries--;
        ws->submits -= e->copies;
        free(e);
    }
    ws->bytes -= w->bytes;
    HASH_DEL(ws->by_key, w);
    free(w);
}

void og_waiters_destroy(struct og_waiters **wsp)
{
    struct og_waiters *ws = *wsp;
    struct waiting *w, *tmp;
    if (!ws)
        return;
    HASH_ITER(hh, ws->by_key, w, tmp)
    {
        free_waiting(ws, w);
    }
    free(ws);
    *wsp = NULL;
}

/* The entry's id (route_len, route, tag) into id; its length, or 0 when too long. */
static size_t make_id(uint8_t *id, const uint8_t *route, size_t route_len, const uint8_t *tag,
                      size_t tag_len)
{
    if (route_len > OG_MAX_ROUTE || tag_len > OG_MAX_TAG)
        return 0;
    id[0] = (uint8_t)(route_len >> 8);
    id[1] = (uint8_t)route_len;
    memcpy(id + 2, route, route_len);
    if (tag_len) /* an empty tag may come as NULL */
        memcpy(id + 2 + route_len, tag, tag_len);
    return 2 + route_len + tag_len;
}

/* The entry the Submit would go to, or NULL when it needs a new one; *w its key's. */
static struct entry *find_entry(const struct og_waiters *ws, const char *key, const uint8_t *id,
                                size_t id_len, struct waiting **w)
{
    struct entry *e = NULL;
    HASH_FIND_STR(ws->by_key, key, *w);
    if (*w)
        HASH_FIND(hh, (*w)->entries, id, id_len, e);
    return e;
}

static int room(const struct og_waiters *ws, const struct entry *e, const uint8_t *route,
                size_t route_len)
{
    if (e) /* 4 billion resends in flight: not a publisher */
        return e->copies == UINT32_MAX ? -ENOBUFS : 0;
    if (ws->per_route) {
        const struct route *r = find_route(ws, route, route_len);
        if (r && r->entries >= ws->per_route)
            return -EDQUOT;
    }
    return ws->entries >= ws->max ? -ENOBUFS : 0;
}

int og_waiters_room(const struct og_waiters *ws, const char *key, const uint8_t *route,
                    size_t route_len, const uint8_t *tag, size_t tag_len)
{
    uint8_t id[2 + OG_MAX_ROUTE + OG_MAX_TAG];
    size_t id_len = make_id(id, route, route_len, tag, tag_len);
    struct waiting *w;

    if (!id_len)
        return -EINVAL;
    return room(ws, find_entry(ws, key, id, id_len, &w), route, route_len);
}

int og_waiters_add(struct og_waiters *ws, const char *key, const uint8_t *route, size_t route_len,
                   const uint8_t *tag, size_t tag_len, size_t bytes)
{
    uint8_t id[2 + OG_MAX_ROUTE + OG_MAX_TAG];
    size_t id_len = make_id(id, route, route_len, tag, tag_len);
    struct waiting *w;
    struct entry *e;
    struct route *r;
    int rc;

    if (!id_len)
        return -EINVAL;
    e = find_entry(ws, key, id, id_len, &w);
    if ((rc = room(ws, e, route, route_len)) < 0)
        return rc;
    if (e) {
        e->copies++;
        ws->submits++;
        return 0;
    }
    r = find_route(ws, route, route_len);
    if (!r) {
        if (!(r = calloc(1, sizeof(*r) + route_len)))
            return -ENOMEM;
        r->len = (uint16_t)route_len;
        memcpy(r->id, route, route_len);
        HASH_ADD_KEYPTR(hh, ws->routes, r->id, route_len, r);
    }
    if (!w) {
        size_t klen = strlen(key);
        w = calloc(1, sizeof(*w) + klen + 1);
        if (!w)
            goto nomem;
        memcpy(w->key, key, klen + 1);
        w->bytes = bytes;
        ws->bytes += bytes;
        HASH_ADD_KEYPTR(hh, ws->by_key, w->key, klen, w);
    }
    e = calloc(1, sizeof(*e) + id_len);
    if (!e) {
        if (!w->entries) {
            ws->bytes -= w->bytes;
            HASH_DEL(ws->by_key, w);
            free(w);
        }
        goto nomem;
    }
    e->copies = 1;
    e->since_us = og_mono_us();
    e->route_len = (uint16_t)route_len;
    e->tag_len = (uint8_t)tag_len;
    memcpy(e->id, id, id_len);
    HASH_ADD_KEYPTR(hh, w->entries, e->id, id_len, e);
    r->entries++;
    ws->entries++;
    ws->submits++;
    return 0;
nomem:
    if (r->entries == 0) {
        HASH_DEL(ws->routes, r);
        free(r);
    }
    return -ENOMEM;
}

size_t og_waiters_take(struct og_waiters *ws, const char *key,
                       void (*fn)(const struct og_waiter *w, bool first, void *arg), void *arg)
{
    struct waiting *w;
    struct entry *e;
    size_t n = 0;

    HASH_FIND_STR(ws->by_key, key, w);
    if (!w)
        return 0;
    for (e = w->entries; e; e = e->hh.next) {
        struct og_waiter v = {e->id + 2,  e->route_len, e->id + 2 + e->route_len,
                              e->tag_len, e->copies,    e->since_us};
        if (fn)
            fn(&v, e == w->entries, arg);
        n += e->copies;
    }
    free_waiting(ws, w);
    return n;
}

bool og_waiters_full(const struct og_waiters *ws)
{
    return ws->entries >= ws->max;
}

size_t og_waiters_submits(const struct og_waiters *ws)
{
    return ws->submits;
}

size_t og_waiters_entries(const struct og_waiters *ws)
{
    return ws->entries;
}

size_t og_waiters_bytes(const struct og_waiters *ws)
{
    return ws->bytes;
}

size_t og_waiters_route_entries(const struct og_waiters *ws, const uint8_t *route, size_t route_len)
{
    const struct route *r = find_route(ws, route, route_len);
    return r ? r->entries : 0;
}

void og_waiters_set_digest(struct og_waiters *ws, const char *key, const uint8_t digest[32])
{
    struct waiting *w;
    HASH_FIND_STR(ws->by_key, key, w);
    if (w) {
        memcpy(w->digest, digest, sizeof(w->digest));
        w->has_digest = true;
    }
}

bool og_waiters_differs(const struct og_waiters *ws, const char *key, const uint8_t digest[32])
{
    struct waiting *w;
    HASH_FIND_STR(ws->by_key, key, w);
    return w && w->has_digest && memcmp(w->digest, digest, sizeof(w->digest)) != 0;
}
