/* libFuzzer target: recovering libonegrid's outbox (daemons/common/outbox.c). The input
 * is the content of an outbox file, as a publisher that died may have left it: written
 * to a scratch file and opened with og_outbox_open.
 *
 * Beyond "no crash, no leak, no undefined behaviour", recovery must leave an outbox that
 * works: after the open (which cuts a torn tail and rewrites a damaged file), one event
 * is added and the first recovered one answered; the next open must then find no damage
 * and no torn tail, and hand back exactly the recovered events less the answered one,
 * plus the new one, in order. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "outbox.h"

#define MAX_BYTES (1u << 20)
#define MAX_SEEN  4096

struct seen {
    size_t n;
    uint64_t token[MAX_SEEN];
    size_t len[MAX_SEEN];
    uint64_t hash[MAX_SEEN];
};

static uint64_t fnv1a(const uint8_t *p, size_t n)
{
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 1099511628211ULL;
    return h;
}

static void each(uint64_t token, const uint8_t *data, size_t len, void *arg)
{
    struct seen *s = arg;
    if (s->n == MAX_SEEN)
        og_fuzz_fail("more than %d events recovered", MAX_SEEN);
    s->token[s->n] = token;
    s->len[s->n] = len;
    s->hash[s->n] = fnv1a(data, len);
    s->n++;
}

static int holds(const struct seen *s, uint64_t token)
{
    for (size_t i = 0; i < s->n; i++)
        if (s->token[i] == token)
            return 1;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct seen first, second;
    static const uint8_t event[] = "an event added after recovery";
    struct og_outbox_stats st;
    struct og_outbox *ob;
    char err[512];
    const char *path = og_fuzz_file("outbox", data, size);
    uint64_t token = 0x0123456789abcdefULL;
    size_t recovered, skip;
    int rc;

    first.n = second.n = 0;
    ob = og_outbox_open(path, MAX_BYTES, each, &first, &st, err, sizeof(err));
    if (!ob)
        og_fuzz_fail("og_outbox_open refused a damaged file: %s", err);
    if (st.events != first.n)
        og_fuzz_fail("stats say %zu events, %zu were handed back", st.events, first.n);

    recovered = first.n;
    while (holds(&first, token))
        token++;
    rc = og_outbox_add(ob, token, event, sizeof(event));
    if (rc < 0 && rc != -ENOBUFS)
        og_fuzz_fail("og_outbox_add after recovery: %s", strerror(-rc));
    if (rc == 0 && first.n < MAX_SEEN)
        each(token, event, sizeof(event), &first);
    skip = recovered > 0;
    if (skip && (rc = og_outbox_done(ob, first.token[0])) < 0)
        og_fuzz_fail("og_outbox_done after recovery: %s", strerror(-rc));
    if ((rc = og_outbox_sync(ob)) < 0)
        og_fuzz_fail("og_outbox_sync after recovery: %s", strerror(-rc));
    og_outbox_close(&ob);

    ob = og_outbox_open(path, MAX_BYTES, each, &second, &st, err, sizeof(err));
    if (!ob)
        og_fuzz_fail("og_outbox_open refused the recovered file: %s", err);
    og_outbox_close(&ob);
    if (st.corrupt_records || st.torn_bytes)
        og_fuzz_fail("the recovered file is damaged: %zu damaged records, %llu torn bytes",
                     st.corrupt_records, (unsigned long long)st.torn_bytes);
    if (second.n != first.n - skip)
        og_fuzz_fail("%zu events after recovery, %zu expected", second.n, first.n - skip);
    for (size_t i = 0; i < second.n; i++)
        if (second.token[i] != first.token[i + skip] || second.len[i] != first.len[i + skip] ||
            second.hash[i] != first.hash[i + skip])
            og_fuzz_fail("event %zu differs after recovery (token %llu, expected %llu)", i,
                         (unsigned long long)second.token[i],
                         (unsigned long long)first.token[i + skip]);
    return 0;
}
