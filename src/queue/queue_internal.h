/*
 * queue_internal.h — the storage behind a cc_queue: a ring buffer for FIFO
 * and LIFO, a binary heap for PRIORITY. No locking here: the queue calls
 * every function with its lock held.
 */
#ifndef CCI_QUEUE_INTERNAL_H
#define CCI_QUEUE_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "concur/queue.h"

/* A heap entry. seq is the put order, so equal items leave in the order they
 * came (a plain binary heap is not stable). 64 bits never wrap in practice. */
typedef struct cci_qslot {
    void *item;
    uint64_t seq;
} cci_qslot;

typedef struct cci_qstore {
    cc_queue_kind kind;
    bool fixed;      /* bounded: allocated once at full size, never resized */
    size_t count;    /* written with __atomic stores so snapshots may read it
                      * without the lock; read plainly under the lock */
    size_t cap;      /* slots allocated; a power of two for the ring */
    size_t head;     /* ring: index of the oldest item */
    void **ring;     /* FIFO/LIFO: items at head .. head+count-1 (mod cap) */
    cci_qslot *heap; /* PRIORITY: a min-heap by (cmp, seq) */
    uint64_t next_seq;
    cc_queue_cmp cmp;
    void *cmp_ctx;
} cci_qstore;

/* maxsize 0: unbounded. Errors: -ENOMEM. */
int cci_qstore_init(cci_qstore *s, cc_queue_kind kind, size_t maxsize,
                    cc_queue_cmp cmp, void *cmp_ctx);
/* The caller has checked that a bounded store has room. Errors: -ENOMEM
 * (an unbounded store could not grow; nothing changed). */
int cci_qstore_push(cci_qstore *s, void *item);
/* The caller has checked count > 0. */
void *cci_qstore_pop(cci_qstore *s);
/* Moves everything (storage included) into *out and leaves s empty with no
 * storage; only cci_qstore_destroy may be called on s afterwards. Lets the
 * queue hand its items to item_free after releasing its lock. */
void cci_qstore_detach(cci_qstore *s, cci_qstore *out);
/* Gives every item left to item_free (if not NULL) — in get order for a
 * ring, in array order for a heap — and frees the storage. */
void cci_qstore_destroy(cci_qstore *s, cc_queue_item_free item_free, void *ctx);

static inline size_t cci_qstore_count(const cci_qstore *s)
{
    return __atomic_load_n(&s->count, __ATOMIC_RELAXED);
}

#endif /* CCI_QUEUE_INTERNAL_H */
