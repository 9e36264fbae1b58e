/* How often a daemon says the same thing about the same peer: a refused client reconnects
 * every few hundred milliseconds, and an attacker can try a new key or address each time.
 * Each key is logged at most once per interval, with the repeats since counted; the table
 * holds a bounded number of keys and forgets the one seen longest ago to make room; and
 * all keys together get a bounded number of lines per interval, so that a flood of new
 * keys cannot flood the journal either. */
#include "ratelimit.h"

#include <stdlib.h>
#include <string.h>
#include <uthash.h>

struct seen {
    UT_hash_handle hh; /* by key; the table's order is least recently seen first */
    int64_t logged_us;
    uint64_t repeats; /* seen and not logged since logged_us */
    char key[];
};

struct og_ratelimit {
    struct seen *keys;
    size_t max_keys, burst;
    int64_t interval_us;
    int64_t window_us; /* start of the current interval of the global budget */
    size_t lines;      /* lines allowed in it */
    uint64_t dropped;  /* not logged because of the budget, since the last line */
};

struct og_ratelimit *og_ratelimit_new(size_t max_keys, size_t burst, int64_t interval_us)
{
    struct og_ratelimit *rl = calloc(1, sizeof(*rl));
    if (!rl)
        return NULL;
    rl->max_keys = max_keys ? max_keys : 1;
    rl->burst = burst ? burst : 1;
    rl->interval_us = interval_us;
    return rl;
}

void og_ratelimit_destroy(struct og_ratelimit **rlp)
{
    struct og_ratelimit *rl = *rlp;
    struct seen *s, *tmp;
    if (!rl)
        return;
    HASH_ITER(hh, rl->keys, s, tmp)
    {
        HASH_DEL(rl->keys, s);
        free(s);
    }
    free(rl);
    *rlp = NULL;
}

bool og_ratelimit_allow(struct og_ratelimit *rl, const char *key, int64_t now_us, uint64_t *repeats,
                        uint64_t *dropped)
{
    struct seen *s;
    size_t len = strlen(key);

    *repeats = 0;
    *dropped = 0;
    HASH_FIND(hh, rl->keys, key, len, s);
    if (s) {
        /* Most recently seen goes last: eviction takes the first. */
        HASH_DELETE(hh, rl->keys, s);
        HASH_ADD_KEYPTR(hh, rl->keys, s->key, len, s);
        if (now_us - s->logged_us < rl->interval_us) {
            s->repeats++;
            return false;
        }
    } else {
        if (HASH_COUNT(rl->keys) >= rl->max_keys) {
            struct seen *oldest = rl->keys;
            HASH_DELETE(hh, rl->keys, oldest);
            free(oldest);
        }
        s = calloc(1, sizeof(*s) + len + 1);
        if (s) {
            memcpy(s->key, key, len + 1);
            HASH_ADD_KEYPTR(hh, rl->keys, s->key, len, s);
        }
    }
    if (now_us - rl->window_us >= rl->interval_us) {
        rl->window_us = now_us;
        rl->lines = 0;
    }
    if (rl->lines >= rl->burst) {
        /* Over the budget: this key is logged when it next comes after its interval. */
        rl->dropped++;
        if (s)
            s->repeats++;
        return false;
    }
    rl->lines++;
    if (s) {
        *repeats = s->repeats;
        s->repeats = 0;
        s->logged_us = now_us;
    }
    *dropped = rl->dropped;
    rl->dropped = 0;
    return true;
}

size_t og_ratelimit_count(const struct og_ratelimit *rl)
{
    return HASH_COUNT(rl->keys);
}
