#include "executor/deque.h"
#include "platform/platform.h"

#include <errno.h>
#include <stdlib.h>

static struct cci_deque_ring *ring_new(int64_t size)
{
    struct cci_deque_ring *r =
        malloc(sizeof *r + (size_t)size * sizeof(void *));
    if (r) {
        r->mask = size - 1;
        r->older = NULL;
    }
    return r;
}

static inline void *slot_get(struct cci_deque_ring *r, int64_t i)
{
    return __atomic_load_n(&r->slots[i & r->mask], __ATOMIC_RELAXED);
}

static inline void slot_put(struct cci_deque_ring *r, int64_t i, void *v)
{
    __atomic_store_n(&r->slots[i & r->mask], v, __ATOMIC_RELAXED);
}

int cci_deque_init(cci_deque *d, size_t capacity_log2)
{
    d->top = 0;
    d->bottom = 0;
    d->ring = ring_new((int64_t)1 << capacity_log2);
    return d->ring ? 0 : -ENOMEM;
}

void cci_deque_destroy(cci_deque *d)
{
    struct cci_deque_ring *r = d->ring;
    while (r) {
        struct cci_deque_ring *older = r->older;
        free(r);
        r = older;
    }
    d->ring = NULL;
}

static struct cci_deque_ring *grow(cci_deque *d, struct cci_deque_ring *r,
                                   int64_t top, int64_t bottom)
{
    struct cci_deque_ring *bigger = ring_new((r->mask + 1) * 2);
    if (!bigger)
        return NULL;
    for (int64_t i = top; i < bottom; i++)
        slot_put(bigger, i, slot_get(r, i));
    bigger->older = r;
    /* Release: a thief that loads the new ring sees its slots. */
    __atomic_store_n(&d->ring, bigger, __ATOMIC_RELEASE);
    return bigger;
}

int cci_deque_push(cci_deque *d, void *task)
{
    int64_t b = __atomic_load_n(&d->bottom, __ATOMIC_RELAXED);
    int64_t t = __atomic_load_n(&d->top, __ATOMIC_ACQUIRE);
    struct cci_deque_ring *r = __atomic_load_n(&d->ring, __ATOMIC_RELAXED);
    if (b - t > r->mask) {
        r = grow(d, r, t, b);
        if (!r)
            return -ENOMEM;
    }
    slot_put(r, b, task);
    /* Release: the slot is written before thieves can see the new bottom. */
    __atomic_store_n(&d->bottom, b + 1, __ATOMIC_RELEASE);
    return 0;
}

void *cci_deque_pop(cci_deque *d)
{
    int64_t b = __atomic_load_n(&d->bottom, __ATOMIC_RELAXED) - 1;
    struct cci_deque_ring *r = __atomic_load_n(&d->ring, __ATOMIC_RELAXED);
    __atomic_store_n(&d->bottom, b, __ATOMIC_RELAXED);
    /* The store of bottom must be ordered before the load of top, against a
     * thief doing the mirror image: a full fence. */
    cci_fence_seq_cst();
    int64_t t = __atomic_load_n(&d->top, __ATOMIC_RELAXED);
    if (t > b) { /* empty */
        __atomic_store_n(&d->bottom, b + 1, __ATOMIC_RELAXED);
        return NULL;
    }
    void *task = slot_get(r, b);
    if (t == b) {
        /* The last task: race the thieves for it through top. */
        if (!__atomic_compare_exchange_n(&d->top, &t, t + 1, false,
                                         __ATOMIC_SEQ_CST, __ATOMIC_RELAXED))
            task = NULL;
        __atomic_store_n(&d->bottom, b + 1, __ATOMIC_RELAXED);
    }
    return task;
}

void *cci_deque_steal(cci_deque *d)
{
    int64_t t = __atomic_load_n(&d->top, __ATOMIC_ACQUIRE);
    cci_fence_seq_cst();
    int64_t b = __atomic_load_n(&d->bottom, __ATOMIC_ACQUIRE);
    if (t >= b)
        return NULL;
    struct cci_deque_ring *r = __atomic_load_n(&d->ring, __ATOMIC_ACQUIRE);
    void *task = slot_get(r, t);
    if (!__atomic_compare_exchange_n(&d->top, &t, t + 1, false,
                                     __ATOMIC_SEQ_CST, __ATOMIC_RELAXED))
        return NULL;
    return task;
}

bool cci_deque_maybe_empty(const cci_deque *d)
{
    return __atomic_load_n(&d->bottom, __ATOMIC_RELAXED) <=
           __atomic_load_n(&d->top, __ATOMIC_RELAXED);
}
