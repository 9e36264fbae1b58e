#include "window.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <uthash.h>

#define NOT_IN_FLIGHT SIZE_MAX
#define MAX_BACKOFF   4 /* the wait doubles up to 2^4 = 16 times resend_us */

struct msg {
    uint8_t *buf;
    size_t len;
    uint64_t seq;            /* order of adding: a requeue keeps it */
    int64_t due;             /* in flight: when it is resent */
    int tries;               /* sends since it last left the queue */
    bool sent_once;          /* sent at least once (a requeued message counts as a resend) */
    size_t heap_i;           /* its place in the heap, NOT_IN_FLIGHT while queued */
    struct msg *prev, *next; /* the queue, while queued */
    UT_hash_handle hh;       /* by key: hh.key points into the message's own copy */
    uint8_t key[];
};

struct og_window {
    struct msg *by_key;
    struct msg *head, *tail; /* never sent since the last requeue, in order */
    struct msg **heap;       /* in flight, a binary min-heap on due */
    size_t n_heap, cap_heap, held, queued, max_held;
    uint64_t next_seq;
    int64_t resend_us;
};

struct og_window *og_window_new(size_t max_held, int64_t resend_us)
{
    struct og_window *w = calloc(1, sizeof(*w));
    if (!w)
        return NULL;
    w->max_held = max_held;
    w->resend_us = resend_us > 0 ? resend_us : 1;
    return w;
}

static void msg_free(struct msg *m)
{
    free(m->buf);
    free(m);
}

void og_window_clear(struct og_window *w)
{
    struct msg *m, *tmp;
    HASH_ITER(hh, w->by_key, m, tmp)
    {
        HASH_DEL(w->by_key, m);
        msg_free(m);
    }
    w->head = w->tail = NULL;
    w->n_heap = w->held = w->queued = 0;
}

void og_window_destroy(struct og_window **wp)
{
    struct og_window *w = *wp;
    if (!w)
        return;
    og_window_clear(w);
    free(w->heap);
    free(w);
    *wp = NULL;
}

/* The heap ------------------------------------------------------------------------------ */

static void heap_set(struct og_window *w, size_t i, struct msg *m)
{
    w->heap[i] = m;
    m->heap_i = i;
}

static void sift_up(struct og_window *w, size_t i)
{
    struct msg *m = w->heap[i];
    while (i > 0 && w->heap[(i - 1) / 2]->due > m->due) {
        heap_set(w, i, w->heap[(i - 1) / 2]);
        i = (i - 1) / 2;
    }
    heap_set(w, i, m);
}

static void sift_down(struct og_window *w, size_t i)
{
    struct msg *m = w->heap[i];
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= w->n_heap)
            break;
        if (c + 1 < w->n_heap && w->heap[c + 1]->due < w->heap[c]->due)
            c++;
        if (w->heap[c]->due >= m->due)
            break;
        heap_set(w, i, w->heap[c]);
        i = c;
    }
    heap_set(w, i, m);
}

/* Room for one more in the heap, made before a message leaves the queue, so that it
 * never has to go back (and out of order). */
static int heap_reserve(struct og_window *w)
{
    if (w->n_heap == w->cap_heap) {
        size_t cap = w->cap_heap ? 2 * w->cap_heap : 64;
        struct msg **h = realloc(w->heap, cap * sizeof(*h));
        if (!h)
            return -ENOMEM;
        w->heap = h;
        w->cap_heap = cap;
    }
    return 0;
}

static void heap_push(struct og_window *w, struct msg *m)
{
    heap_set(w, w->n_heap++, m);
    sift_up(w, m->heap_i);
}

static void heap_remove(struct og_window *w, struct msg *m)
{
    size_t i = m->heap_i;
    struct msg *last = w->heap[--w->n_heap];
    m->heap_i = NOT_IN_FLIGHT;
    if (last == m)
        return;
    heap_set(w, i, last);
    sift_down(w, i);
    sift_up(w, last->heap_i);
}

/* The queue ----------------------------------------------------------------------------- */

static void queue_unlink(struct og_window *w, struct msg *m)
{
    if (m->prev)
        m->prev->next = m->next;
    else
        w->head = m->next;
    if (m->next)
        m->next->prev = m->prev;
    else
        w->tail = m->prev;
    m->prev = m->next = NULL;
    w->queued--;
}

static void queue_append(struct og_window *w, struct msg *m)
{
    m->prev = w->tail;
    m->next = NULL;
    if (w->tail)
        w->tail->next = m;
    else
        w->head = m;
    w->tail = m;
    w->queued++;
}

/* The API ------------------------------------------------------------------------------- */

static struct msg *find(const struct og_window *w, const void *key, size_t keylen)
{
    struct msg *m;
    HASH_FIND(hh, w->by_key, key, keylen, m);
    return m;
}

bool og_window_holds(const struct og_window *w, const void *key, size_t keylen)
{
    return find(w, key, keylen) != NULL;
}

int og_window_add(struct og_window *w, const void *key, size_t keylen, uint8_t *buf, size_t len)
{
    struct msg *m;

    if (find(w, key, keylen))
        return 1;
    if (w->held >= w->max_held)
        return -ENOBUFS;
    if (!(m = calloc(1, sizeof(*m) + keylen)))
        return -ENOMEM;
    memcpy(m->key, key, keylen);
    m->buf = buf;
    m->len = len;
    m->seq = w->next_seq++;
    m->heap_i = NOT_IN_FLIGHT;
    HASH_ADD(hh, w->by_key, key, keylen, m);
    queue_append(w, m);
    w->held++;
    return 0;
}

int og_window_answered(struct og_window *w, const void *key, size_t keylen)
{
    struct msg *m = find(w, key, keylen);
    if (!m)
        return -ENOENT;
    if (!m->sent_once)
        return -EAGAIN;
    if (m->heap_i == NOT_IN_FLIGHT)
        queue_unlink(w, m); /* requeued after a reconnect, answered all the same */
    else
        heap_remove(w, m);
    HASH_DEL(w->by_key, m);
    msg_free(m);
    w->held--;
    return 0;
}

size_t og_window_pump(struct og_window *w, size_t credit, int64_t now, og_window_send_fn send,
                      void *arg)
{
    size_t n = 0;

    /* Due first, oldest due first; each resend moves the message's time on, so this ends. */
    while (w->n_heap > 0 && w->heap[0]->due <= now) {
        struct msg *m = w->heap[0];
        if (send(arg, m->buf, m->len, true) < 0)
            return n;
        m->tries++;
        m->due = now + (w->resend_us << (m->tries - 1 < MAX_BACKOFF ? m->tries - 1 : MAX_BACKOFF));
        sift_down(w, 0);
        n++;
    }
    while (w->head && w->n_heap < credit) {
        struct msg *m = w->head;
        /* Out of memory: it stays at the head of the queue, for the next pump. */
        if (heap_reserve(w) < 0 || send(arg, m->buf, m->len, m->sent_once) < 0)
            break;
        queue_unlink(w, m);
        m->sent_once = true;
        m->tries = 1;
        m->due = now + w->resend_us;
        heap_push(w, m);
        n++;
    }
    return n;
}

static int by_seq(const void *a, const void *b)
{
    const struct msg *x = *(struct msg *const *)a, *y = *(struct msg *const *)b;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

void og_window_requeue(struct og_window *w)
{
    /* Every message in flight was added before every queued one (the queue is sent from
     * its head), so the in-flight ones, in order, go in front of the queue. */
    if (w->n_heap == 0) /* nothing in flight (and no heap yet: qsort of NULL is UB) */
        return;
    qsort(w->heap, w->n_heap, sizeof(*w->heap), by_seq);
    for (size_t i = w->n_heap; i-- > 0;) {
        struct msg *m = w->heap[i];
        m->heap_i = NOT_IN_FLIGHT;
        m->prev = NULL;
        m->next = w->head;
        if (w->head)
            w->head->prev = m;
        else
            w->tail = m;
        w->head = m;
        w->queued++;
    }
    w->n_heap = 0;
}

const void *og_window_newest_key(const struct og_window *w, size_t *keylen)
{
    /* Those in flight were all added before those queued. */
    const struct msg *m = w->tail;
    for (size_t i = 0; !w->tail && i < w->n_heap; i++)
        if (!m || w->heap[i]->seq > m->seq)
            m = w->heap[i];
    if (!m)
        return NULL;
    *keylen = m->hh.keylen;
    return m->key;
}

size_t og_window_held(const struct og_window *w)
{
    return w->held;
}

size_t og_window_inflight(const struct og_window *w)
{
    return w->n_heap;
}

size_t og_window_queued(const struct og_window *w)
{
    return w->queued;
}

int64_t og_window_next_due(const struct og_window *w)
{
    return w->n_heap ? w->heap[0]->due : INT64_MAX;
}
