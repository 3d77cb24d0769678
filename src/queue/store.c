/*
 * Ring buffer and binary heap behind cc_queue. Called with the queue's lock
 * held; see queue_internal.h.
 *
 * Growth doubles and shrinking halves once the store is a quarter full, so
 * both are amortised O(1) per item and a steady flow allocates nothing; the
 * gap between the two thresholds keeps a queue hovering at a boundary from
 * reallocating on every call.
 */
#include <assert.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "queue/queue_internal.h"

/* Smallest unbounded store: 16 pointers, a cache line or two. */
#define MIN_CAP 16

static void set_count(cci_qstore *s, size_t n)
{
    __atomic_store_n(&s->count, n, __ATOMIC_RELAXED);
}

static size_t round_up_pow2(size_t n)
{
    size_t p = 1;
    while (p < n)
        p <<= 1;
    return p;
}

/* Reallocates the ring to new_cap slots (a power of two >= count), copying
 * the items to the start in order, so head becomes 0. */
static int ring_resize(cci_qstore *s, size_t new_cap)
{
    void **r = malloc(new_cap * sizeof *r);
    if (!r)
        return -ENOMEM;
    size_t mask = s->cap - 1;
    for (size_t i = 0; i < s->count; i++)
        r[i] = s->ring[(s->head + i) & mask];
    free(s->ring);
    s->ring = r;
    s->cap = new_cap;
    s->head = 0;
    return 0;
}

static int heap_resize(cci_qstore *s, size_t new_cap)
{
    cci_qslot *h = realloc(s->heap, new_cap * sizeof *h);
    if (!h)
        return -ENOMEM;
    s->heap = h;
    s->cap = new_cap;
    return 0;
}

static int resize(cci_qstore *s, size_t new_cap)
{
    return s->kind == CC_QUEUE_PRIORITY ? heap_resize(s, new_cap)
                                        : ring_resize(s, new_cap);
}

int cci_qstore_init(cci_qstore *s, cc_queue_kind kind, size_t maxsize,
                    cc_queue_cmp cmp, void *cmp_ctx)
{
    memset(s, 0, sizeof *s);
    s->kind = kind;
    s->fixed = maxsize > 0;
    s->cmp = cmp;
    s->cmp_ctx = cmp_ctx;
    size_t cap = MIN_CAP;
    if (s->fixed) {
        /* The heap needs exactly maxsize slots; the ring a power of two so
         * that wrapping is a mask. Refuse sizes whose byte count overflows. */
        if (maxsize > SIZE_MAX / 2 / sizeof(cci_qslot))
            return -ENOMEM;
        cap = kind == CC_QUEUE_PRIORITY ? maxsize : round_up_pow2(maxsize);
    }
    if (kind == CC_QUEUE_PRIORITY) {
        s->heap = malloc(cap * sizeof *s->heap);
        if (!s->heap)
            return -ENOMEM;
    } else {
        s->ring = malloc(cap * sizeof *s->ring);
        if (!s->ring)
            return -ENOMEM;
    }
    s->cap = cap;
    return 0;
}

/* a strictly before b: smaller by cmp, or equal and put earlier. */
static bool slot_before(const cci_qstore *s, const cci_qslot *a,
                        const cci_qslot *b)
{
    int c = s->cmp(a->item, b->item, s->cmp_ctx);
    return c < 0 || (c == 0 && a->seq < b->seq);
}

int cci_qstore_push(cci_qstore *s, void *item)
{
    if (s->count == s->cap) {
        assert(!s->fixed);
        if (s->cap > SIZE_MAX / 2 / sizeof(cci_qslot))
            return -ENOMEM;
        int rc = resize(s, s->cap * 2);
        if (rc < 0)
            return rc;
    }
    if (s->kind != CC_QUEUE_PRIORITY) {
        s->ring[(s->head + s->count) & (s->cap - 1)] = item;
        set_count(s, s->count + 1);
        return 0;
    }
    /* Sift up with a hole instead of swaps: one write per level. */
    cci_qslot slot = {item, s->next_seq++};
    size_t i = s->count;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!slot_before(s, &slot, &s->heap[parent]))
            break;
        s->heap[i] = s->heap[parent];
        i = parent;
    }
    s->heap[i] = slot;
    set_count(s, s->count + 1);
    return 0;
}

static void *heap_pop(cci_qstore *s)
{
    void *top = s->heap[0].item;
    size_t n = s->count - 1;
    if (n > 0) {
        cci_qslot last = s->heap[n];
        size_t i = 0;
        for (;;) {
            size_t child = 2 * i + 1;
            if (child >= n)
                break;
            if (child + 1 < n &&
                slot_before(s, &s->heap[child + 1], &s->heap[child]))
                child++;
            if (!slot_before(s, &s->heap[child], &last))
                break;
            s->heap[i] = s->heap[child];
            i = child;
        }
        s->heap[i] = last;
    }
    set_count(s, n);
    return top;
}

void *cci_qstore_pop(cci_qstore *s)
{
    assert(s->count > 0);
    void *item;
    if (s->kind == CC_QUEUE_PRIORITY) {
        item = heap_pop(s);
    } else if (s->kind == CC_QUEUE_FIFO) {
        item = s->ring[s->head];
        s->head = (s->head + 1) & (s->cap - 1);
        set_count(s, s->count - 1);
    } else {
        item = s->ring[(s->head + s->count - 1) & (s->cap - 1)];
        set_count(s, s->count - 1);
    }
    /* Shrinking is best effort: if the allocation fails the store simply
     * stays larger. */
    if (!s->fixed && s->cap > MIN_CAP && s->count < s->cap / 4)
        (void)resize(s, s->cap / 2);
    return item;
}

void cci_qstore_detach(cci_qstore *s, cci_qstore *out)
{
    *out = *s;
    s->ring = NULL;
    s->heap = NULL;
    s->cap = 0;
    s->head = 0;
    set_count(s, 0);
}

void cci_qstore_destroy(cci_qstore *s, cc_queue_item_free item_free, void *ctx)
{
    if (item_free) {
        for (size_t i = 0; i < s->count; i++) {
            if (s->kind == CC_QUEUE_PRIORITY)
                item_free(s->heap[i].item, ctx);
            else if (s->kind == CC_QUEUE_FIFO)
                item_free(s->ring[(s->head + i) & (s->cap - 1)], ctx);
            else
                item_free(s->ring[(s->head + s->count - 1 - i) & (s->cap - 1)],
                          ctx);
        }
    }
    free(s->ring);
    free(s->heap);
    s->ring = NULL;
    s->heap = NULL;
    s->cap = 0;
    set_count(s, 0);
}
