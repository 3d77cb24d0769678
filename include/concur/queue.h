/*
 * concur/queue.h — FIFO, LIFO and priority queues with the semantics of
 * Python's queue.Queue, queue.LifoQueue and queue.PriorityQueue.
 *
 * A queue holds `void *` items (NULL is a valid item, as None is in Python).
 * It may be bounded (maxsize > 0: put waits while it is full) or unbounded
 * (maxsize 0). The library allocates it: cc_queue_new / cc_queue_free.
 *
 * Ownership: put hands the item to the queue; get hands it to the caller.
 * The queue never frees an item it hands out. Items the queue drops instead
 * of handing out — on cc_queue_shutdown(q, true) and on cc_queue_free — are
 * passed to the options' item_free function, if one was given, so nothing is
 * lost silently.
 *
 * Blocking: put, get and join take a cc_duration timeout (CC_FOREVER,
 * CC_NOWAIT or nanoseconds). While they wait, the calling thread is BLOCKED
 * on CC_WAIT_QUEUE with the queue as the object (see concur/thread.h); a call
 * that succeeds at once never changes the thread's state. Unlike the sync
 * objects, an expired put or get reports what Python raises: CC_EFULL or
 * CC_EEMPTY, never -ETIMEDOUT (join does return -ETIMEDOUT).
 *
 * Tasks: every successful put adds one unfinished task; cc_queue_task_done
 * marks one finished; cc_queue_join waits until none is left. This is how a
 * producer learns that consumers have processed everything it queued.
 *
 * Shutdown (Python 3.13's Queue.shutdown): after cc_queue_shutdown(q, false)
 * every put fails with CC_ESHUTDOWN at once (blocked putters wake and fail),
 * and gets go on returning the items left, then fail with CC_ESHUTDOWN
 * (blocked getters wake and fail once the queue is empty). With immediate =
 * true the items left are also dropped (given to item_free) and counted as
 * done, so join returns once the items already taken are task_done.
 *
 * Cost: put and get take one internal lock and do a few stores (a priority
 * queue: O(log n) comparisons under the lock). An unbounded queue grows its
 * storage by doubling and shrinks it when mostly empty, so it allocates
 * nothing per item in steady state; a bounded queue allocates all maxsize
 * slots in cc_queue_new, so its put never fails for lack of memory. A wake-up
 * system call is made only when a thread actually sleeps.
 *
 * All functions may be called from any thread at once (see concur.h), except
 * that nothing may use the queue during or after cc_queue_free. The
 * comparator runs with the queue's lock held and item_free runs with no
 * queue lock held; neither may call cc_queue_free on the same queue, and the
 * comparator must not call any cc_queue function on it.
 */
#ifndef CONCUR_QUEUE_H
#define CONCUR_QUEUE_H

#include <stdbool.h>
#include <stddef.h>

#include "concur/time.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct cc_queue cc_queue;

typedef enum cc_queue_kind {
    CC_QUEUE_FIFO = 0, /* queue.Queue: first in, first out */
    CC_QUEUE_LIFO,     /* queue.LifoQueue: last in, first out */
    CC_QUEUE_PRIORITY  /* queue.PriorityQueue: smallest first (see cmp) */
} cc_queue_kind;

/*
 * Orders items of a priority queue: negative if a comes before b, 0 if they
 * are equal, positive if a comes after b. a and b are the items themselves
 * (the `void *` values put), not pointers to them. get returns the smallest
 * item; equal items come out in the order they were put (stable, as a
 * PriorityQueue of (priority, counter, item) tuples behaves in Python).
 */
typedef int (*cc_queue_cmp)(const void *a, const void *b, void *ctx);

/* Receives each item the queue drops (immediate shutdown, cc_queue_free). */
typedef void (*cc_queue_item_free)(void *item, void *ctx);

typedef struct cc_queue_options {
    cc_queue_kind kind;
    size_t maxsize;   /* 0: unbounded */
    cc_queue_cmp cmp; /* required for PRIORITY, else NULL */
    void *cmp_ctx;
    cc_queue_item_free item_free; /* NULL: dropped items are not reported */
    void *item_free_ctx;
    const char *name; /* NULL: "Queue-N"; copied */
} cc_queue_options;

/*
 * Creates a queue; opts NULL means an unbounded FIFO queue. On success
 * stores it in *out and returns 0. Errors: -EINVAL (out NULL, unknown kind,
 * PRIORITY without cmp, cmp given for FIFO or LIFO), -ENOMEM (including a
 * maxsize whose slots cannot be allocated). Does not block.
 */
int cc_queue_new(cc_queue **out, const cc_queue_options *opts);

/*
 * Frees the queue, first passing every item still in it to item_free (in
 * get order for FIFO and LIFO, in no particular order for PRIORITY). No
 * thread may be inside a call on the queue (asserted in debug builds).
 * NULL is ignored.
 */
void cc_queue_free(cc_queue *q);

/*
 * Adds item. On a full bounded queue, waits for a free slot up to timeout.
 * Returns 0. Errors: -EINVAL (q NULL, bad timeout), CC_EFULL (still full at
 * the deadline, CC_NOWAIT included), CC_ESHUTDOWN (the queue is shut down,
 * or was shut down while waiting), -ENOMEM (an unbounded queue could not
 * grow; nothing was changed). On any error the caller still owns item.
 */
int cc_queue_put(cc_queue *q, void *item, cc_duration timeout);

/*
 * Removes the next item (FIFO: oldest; LIFO: newest; PRIORITY: smallest)
 * and stores it in *item; the caller owns it from then on. On an empty
 * queue, waits for an item up to timeout. Returns 0. Errors: -EINVAL (q or
 * item NULL, bad timeout), CC_EEMPTY (still empty at the deadline, CC_NOWAIT
 * included), CC_ESHUTDOWN (shut down and empty; items left after a graceful
 * shutdown are still returned first). *item is untouched on error.
 */
int cc_queue_get(cc_queue *q, void **item, cc_duration timeout);

/*
 * Marks one task finished (one item taken by get has been processed). When
 * the count of unfinished tasks reaches zero, every thread in cc_queue_join
 * wakes. Returns 0. Errors: -EINVAL (q NULL, or more calls than items put:
 * Python's ValueError "task_done() called too many times"; nothing changes).
 * Never blocks.
 */
int cc_queue_task_done(cc_queue *q);

/*
 * Waits until every item ever put has been marked done by
 * cc_queue_task_done (items dropped by an immediate shutdown count as done).
 * Returns 0 at once if there are no unfinished tasks. Errors: -EINVAL (q
 * NULL, bad timeout), -ETIMEDOUT.
 */
int cc_queue_join(cc_queue *q, cc_duration timeout);

/*
 * Shuts the queue down (see the top of this file). immediate = true also
 * drops the items left, passing each to item_free after the queue's lock is
 * released, in the calling thread. Calling it again is allowed (an
 * immediate shutdown after a graceful one drops what is left). Returns 0.
 * Errors: -EINVAL (q NULL). Does not wait for anything.
 */
int cc_queue_shutdown(cc_queue *q, bool immediate);

/* Snapshots, as Python's qsize(), empty(), full(): stale as soon as they
 * return, so never use them to decide whether put or get will block.
 * A NULL q gives 0, true, false, 0, 0 and false respectively. */
size_t cc_queue_qsize(const cc_queue *q);
bool cc_queue_empty(const cc_queue *q);
/* Always false for an unbounded queue. */
bool cc_queue_full(const cc_queue *q);
/* 0 for an unbounded queue. */
size_t cc_queue_maxsize(const cc_queue *q);
/* Tasks put and not yet marked done (Python's unfinished_tasks). */
size_t cc_queue_unfinished(const cc_queue *q);
bool cc_queue_is_shutdown(const cc_queue *q);

/* The queue's name (valid until cc_queue_free); NULL for a NULL q. */
const char *cc_queue_name(const cc_queue *q);

#ifdef __cplusplus
}
#endif

#endif /* CONCUR_QUEUE_H */
