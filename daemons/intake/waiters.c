/* The table of Submits waiting for an answer: for each key passed on to dispatch, who sent
 * it (routing id and tag), in the order they came. Every Submit is owed exactly one
 * answer, so nothing here is ever dropped: a copy from the same connection with the same
 * tag (a publisher's resend) costs a counter, any other one an entry, and when max entries
 * are held the caller stops reading publishers until answers free some. */
#include "intake.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <uthash.h>

struct entry {
    UT_hash_handle hh; /* by id[], within the key; iterated in the order added */
    uint32_t copies;   /* identical Submits in flight, each owed an answer */
    uint16_t route_len;
    uint8_t tag_len;
    uint8_t id[]; /* the hash key: route_len (2 bytes, big-endian), route, tag */
};

struct waiting {
    UT_hash_handle hh; /* by key */
    struct entry *entries;
    char key[];
};

struct og_waiters {
    struct waiting *by_key;
    size_t entries, submits, max;
};

struct og_waiters *og_waiters_new(size_t max)
{
    struct og_waiters *ws = calloc(1, sizeof(*ws));
    if (ws)
        ws->max = max;
    return ws;
}

static void free_waiting(struct og_waiters *ws, struct waiting *w)
{
    struct entry *e, *tmp;
    HASH_ITER(hh, w->entries, e, tmp)
    {
        HASH_DEL(w->entries, e);
        ws->entries--;
        ws->submits -= e->copies;
        free(e);
    }
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

int og_waiters_add(struct og_waiters *ws, const char *key, const uint8_t *route, size_t route_len,
                   const uint8_t *tag, size_t tag_len)
{
    uint8_t id[2 + OG_MAX_ROUTE + OG_MAX_TAG];
    size_t id_len = 2 + route_len + tag_len;
    struct waiting *w;
    struct entry *e = NULL;

    if (route_len > OG_MAX_ROUTE || tag_len > OG_MAX_TAG)
        return -EINVAL;
    id[0] = (uint8_t)(route_len >> 8);
    id[1] = (uint8_t)route_len;
    memcpy(id + 2, route, route_len);
    memcpy(id + 2 + route_len, tag, tag_len);

    HASH_FIND_STR(ws->by_key, key, w);
    if (w)
        HASH_FIND(hh, w->entries, id, id_len, e);
    if (e) {
        if (e->copies == UINT32_MAX) /* 4 billion resends in flight: not a publisher */
            return -ENOBUFS;
        e->copies++;
        ws->submits++;
        return 0;
    }
    if (ws->entries >= ws->max)
        return -ENOBUFS;
    if (!w) {
        size_t klen = strlen(key);
        w = calloc(1, sizeof(*w) + klen + 1);
        if (!w)
            return -ENOMEM;
        memcpy(w->key, key, klen + 1);
        HASH_ADD_KEYPTR(hh, ws->by_key, w->key, klen, w);
    }
    e = calloc(1, sizeof(*e) + id_len);
    if (!e) {
        if (!w->entries) {
            HASH_DEL(ws->by_key, w);
            free(w);
        }
        return -ENOMEM;
    }
    e->copies = 1;
    e->route_len = (uint16_t)route_len;
    e->tag_len = (uint8_t)tag_len;
    memcpy(e->id, id, id_len);
    HASH_ADD_KEYPTR(hh, w->entries, e->id, id_len, e);
    ws->entries++;
    ws->submits++;
    return 0;
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
        struct og_waiter v = {e->id + 2, e->route_len, e->id + 2 + e->route_len, e->tag_len,
                              e->copies};
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
