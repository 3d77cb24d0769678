/*
 * cc_queue: a buffer guarded by one cc_lock, plus three futex words on which
 * threads sleep — "not empty" (getters), "not full" (putters of a bounded
 * queue) and "all tasks done" (joiners).
 *
 * Why not a cc_condition: a thread sleeping in one would show as BLOCKED on
 * the condition, while a user (and a dump) must see it waiting on the queue.
 *
 * Wake-up protocol. Every field of struct waiters is changed only with the
 * queue's lock held. A waiter, under the lock, reads seq and increments
 * waiting, releases the lock and sleeps while seq is unchanged; after waking
 * (for whatever reason) it re-takes the lock, decrements waiting and
 * consumes one pending wake (woken, if non-zero), then re-checks its
 * condition. A waker, under the lock, bumps seq and makes the futex call
 * after releasing the lock (so the woken thread does not run straight into
 * a held lock). Because seq is bumped under the lock, a waiter that
 * registered before the bump either sleeps and is woken, or finds seq
 * changed and does not sleep: no wake-up is lost.
 *
 * woken counts wakes issued that no returning waiter has consumed yet. It
 * never exceeds the number of registered waiters that are awake or will not
 * sleep, so while waiting <= woken every registered waiter is about to
 * re-check and a put need not wake anyone: a producer outrunning a waking
 * consumer makes one FUTEX_WAKE, not one per item. A waiter that leaves
 * without using the resource it was woken for leaves only when the resource
 * is gone (timed out and re-checked) or on shutdown (which wakes everyone),
 * so no item or slot is stranded while someone sleeps.
 *
 * Lock order: the queue's lock is a leaf. Nothing else is locked while it is
 * held, except whatever the user's comparator does; item_free runs after it
 * is released.
 */
#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "concur/error.h"
#include "concur/queue.h"
#include "concur/sync.h"
#include "platform/platform.h"
#include "queue/queue_internal.h"
#include "sync/sync_internal.h"
#include "thread/blocking.h"
#include "time/deadline.h"

struct waiters {
    uint32_t seq;     /* futex word; atomic because the kernel reads it */
    uint32_t waiting; /* registered: asleep or about to sleep */
    uint32_t woken;   /* wakes issued, not yet consumed by a waiter */
};

struct cc_queue {
    cc_lock lock;
    /* shutdown, unfinished and store.count are written under the lock with
     * relaxed __atomic stores so the snapshot calls (qsize, unfinished,
     * is_shutdown) may read them without it; relaxed is enough because a
     * snapshot promises nothing about other fields. */
    bool shutdown;
    size_t maxsize; /* 0: unbounded; constant */
    size_t unfinished;
    cci_qstore store;
    struct waiters not_empty;
    struct waiters not_full;
    struct waiters all_done;
    cc_queue_item_free item_free;
    void *item_free_ctx;
    char *name;
};

/* Numbers the default names "Queue-N"; the only global state, and shared
 * harmlessly. */
static uint64_t queue_counter;

/* ---- the lock and the wake-up protocol ----------------------------------- */

/* A thread that sleeps for the lock itself is waiting to get into the queue,
 * so it shows as BLOCKED on the queue too, not on a lock nobody can name. */
static void lock_queue(cc_queue *q)
{
    int rc =
        cci_lock_acquire_until(&q->lock, CCI_NO_DEADLINE, CC_WAIT_QUEUE, q);
    assert(rc == 0);
    (void)rc;
}

static void unlock_queue(cc_queue *q)
{
    int rc = cc_lock_release(&q->lock);
    assert(rc == 0);
    (void)rc;
}

/* Per-call state of a blocking call. The deadline is computed at the first
 * wait, so the fast path never reads the clock. */
typedef struct wait_state {
    cc_duration timeout;
    int64_t deadline;
    bool started;
    bool timed_out;
    bool marked; /* cci_block_begin called; token valid */
    cci_block_token token;
} wait_state;

/* True if the caller must give up instead of waiting (CC_NOWAIT, or the
 * deadline passed during an earlier wait). */
static bool wait_expired(const wait_state *ws)
{
    return ws->timeout == CC_NOWAIT || ws->timed_out;
}

/* What a waiter on w waits for; read without the lock, only as a hint. */
static bool looks_ready(cc_queue *q, struct waiters *w)
{
    if (__atomic_load_n(&q->shutdown, __ATOMIC_RELAXED))
        return true;
    if (w == &q->not_empty)
        return cci_qstore_count(&q->store) > 0;
    if (w == &q->not_full)
        return cci_qstore_count(&q->store) < q->maxsize;
    return __atomic_load_n(&q->unfinished, __ATOMIC_RELAXED) == 0;
}

/* Waits once on w. Called and returns with the lock held; the caller
 * re-checks its condition afterwards, whatever happened.
 *
 * The first call only spins, with the lock released, for up to QUEUE_SPIN_NS
 * (or the deadline): a sleep and wake-up cost 60-70 us on these machines,
 * while a producer or consumer that is running usually delivers within a
 * few microseconds. Spinning for less than a wake-up costs keeps the waste
 * bounded when nobody comes. */
#ifndef QUEUE_SPIN_NS
#define QUEUE_SPIN_NS 10000
#endif

static void spin(cc_queue *q, struct waiters *w, int64_t deadline)
{
    int64_t until = 0;
    for (unsigned i = 1; !looks_ready(q, w); i++) {
        cci_cpu_relax();
        if (i % 16 == 0) { /* a clock read costs about as much as a pause */
            int64_t now = cci_now_ns();
            if (until == 0)
                until = deadline - now < QUEUE_SPIN_NS ? deadline
                                                       : now + QUEUE_SPIN_NS;
            else if (now >= until)
                return;
        }
    }
}

static void wait_once(cc_queue *q, struct waiters *w, wait_state *ws)
{
    if (!ws->started) {
        ws->deadline = cci_deadline_after(ws->timeout);
        ws->started = true;
        if (QUEUE_SPIN_NS > 0) {
            unlock_queue(q);
            spin(q, w, ws->deadline);
            lock_queue(q);
            return;
        }
    }
    uint32_t seq = __atomic_load_n(&w->seq, __ATOMIC_RELAXED);
    w->waiting++;
    unlock_queue(q);
    /* Marked outside the lock: recording may take the thread registry's
     * lock, which must never nest inside a queue's. */
    if (!ws->marked) {
        ws->token = cci_block_begin(CC_WAIT_QUEUE, q);
        ws->marked = true;
    }
    if (cci_futex_wait(&w->seq, seq, ws->deadline, false) == -ETIMEDOUT)
        ws->timed_out = true;
    lock_queue(q);
    w->waiting--;
    if (w->woken > 0)
        w->woken--;
}

static void wait_end(wait_state *ws)
{
    if (ws->marked)
        cci_block_end(ws->token);
}

/* Lock held. Returns the number of threads to wake once it is released. */
static int wake_one_later(struct waiters *w)
{
    if (w->waiting <= w->woken)
        return 0;
    w->woken++;
    __atomic_fetch_add(&w->seq, 1, __ATOMIC_RELAXED);
    return 1;
}

static int wake_all_later(struct waiters *w)
{
    if (w->waiting <= w->woken)
        return 0;
    w->woken = w->waiting;
    __atomic_fetch_add(&w->seq, 1, __ATOMIC_RELAXED);
    return INT_MAX;
}

static void wake(struct waiters *w, int n)
{
    if (n > 0)
        cci_futex_wake(&w->seq, n, false);
}

static void set_unfinished(cc_queue *q, size_t n)
{
    __atomic_store_n(&q->unfinished, n, __ATOMIC_RELAXED);
}

/* ---- life cycle ---------------------------------------------------------- */

static int check_options(const cc_queue_options *o)
{
    switch (o->kind) {
    case CC_QUEUE_FIFO:
    case CC_QUEUE_LIFO:
        return o->cmp ? -EINVAL : 0;
    case CC_QUEUE_PRIORITY:
        return o->cmp ? 0 : -EINVAL;
    }
    return -EINVAL;
}

static char *copy_name(const char *name)
{
    char buf[32];
    if (!name) {
        uint64_t n = __atomic_add_fetch(&queue_counter, 1, __ATOMIC_RELAXED);
        snprintf(buf, sizeof buf, "Queue-%llu", (unsigned long long)n);
        name = buf;
    }
    size_t len = strlen(name) + 1;
    char *copy = malloc(len);
    if (copy)
        memcpy(copy, name, len);
    return copy;
}

int cc_queue_new(cc_queue **out, const cc_queue_options *opts)
{
    static const cc_queue_options defaults = {.kind = CC_QUEUE_FIFO};
    if (!out)
        return -EINVAL;
    if (!opts)
        opts = &defaults;
    int rc = check_options(opts);
    if (rc < 0)
        return rc;
    cc_queue *q = calloc(1, sizeof *q);
    if (!q)
        return -ENOMEM;
    q->name = copy_name(opts->name);
    if (!q->name) {
        free(q);
        return -ENOMEM;
    }
    rc = cci_qstore_init(&q->store, opts->kind, opts->maxsize, opts->cmp,
                         opts->cmp_ctx);
    if (rc < 0) {
        cci_qstore_destroy(&q->store, NULL, NULL);
        free(q->name);
        free(q);
        return rc;
    }
    rc = cc_lock_init(&q->lock, 0);
    assert(rc == 0);
    q->maxsize = opts->maxsize;
    q->item_free = opts->item_free;
    q->item_free_ctx = opts->item_free_ctx;
    cci_name_set_default(q, q->name); /* for dumps and traces */
    *out = q;
    return 0;
}

void cc_queue_free(cc_queue *q)
{
    if (!q)
        return;
    assert(q->not_empty.waiting == 0 && q->not_full.waiting == 0 &&
           q->all_done.waiting == 0 && !cc_lock_locked(&q->lock));
    cci_qstore_destroy(&q->store, q->item_free, q->item_free_ctx);
    cc_lock_destroy(&q->lock);
    cci_object_destroyed(q); /* its name */
    free(q->name);
    free(q);
}

/* ---- put and get --------------------------------------------------------- */

int cc_queue_put(cc_queue *q, void *item, cc_duration timeout)
{
    if (!q || !cci_duration_valid(timeout))
        return -EINVAL;
    wait_state ws = {.timeout = timeout};
    int rc, n = 0;
    lock_queue(q);
    for (;;) {
        if (q->shutdown) {
            rc = CC_ESHUTDOWN;
            break;
        }
        if (q->maxsize == 0 || q->store.count < q->maxsize) {
            rc = cci_qstore_push(&q->store, item);
            if (rc == 0) {
                set_unfinished(q, q->unfinished + 1);
                n = wake_one_later(&q->not_empty);
            }
            break;
        }
        if (wait_expired(&ws)) {
            rc = CC_EFULL;
            break;
        }
        wait_once(q, &q->not_full, &ws);
    }
    unlock_queue(q);
    wake(&q->not_empty, n);
    wait_end(&ws);
    return rc;
}

int cc_queue_get(cc_queue *q, void **item, cc_duration timeout)
{
    if (!q || !item || !cci_duration_valid(timeout))
        return -EINVAL;
    wait_state ws = {.timeout = timeout};
    int rc, n = 0;
    lock_queue(q);
    for (;;) {
        if (q->store.count > 0) {
            *item = cci_qstore_pop(&q->store);
            if (q->maxsize > 0)
                n = wake_one_later(&q->not_full);
            rc = 0;
            break;
        }
        if (q->shutdown) {
            rc = CC_ESHUTDOWN;
            break;
        }
        if (wait_expired(&ws)) {
            rc = CC_EEMPTY;
            break;
        }
        wait_once(q, &q->not_empty, &ws);
    }
    unlock_queue(q);
    wake(&q->not_full, n);
    wait_end(&ws);
    return rc;
}

/* ---- tasks --------------------------------------------------------------- */

int cc_queue_task_done(cc_queue *q)
{
    if (!q)
        return -EINVAL;
    int rc = 0, n = 0;
    lock_queue(q);
    if (q->unfinished == 0) {
        rc = -EINVAL;
    } else {
        set_unfinished(q, q->unfinished - 1);
        if (q->unfinished == 0)
            n = wake_all_later(&q->all_done);
    }
    unlock_queue(q);
    wake(&q->all_done, n);
    return rc;
}

int cc_queue_join(cc_queue *q, cc_duration timeout)
{
    if (!q || !cci_duration_valid(timeout))
        return -EINVAL;
    wait_state ws = {.timeout = timeout};
    int rc;
    lock_queue(q);
    for (;;) {
        if (q->unfinished == 0) {
            rc = 0;
            break;
        }
        if (wait_expired(&ws)) {
            rc = -ETIMEDOUT;
            break;
        }
        wait_once(q, &q->all_done, &ws);
    }
    unlock_queue(q);
    wait_end(&ws);
    return rc;
}

/* ---- shutdown ------------------------------------------------------------ */

int cc_queue_shutdown(cc_queue *q, bool immediate)
{
    if (!q)
        return -EINVAL;
    cci_qstore dropped;
    memset(&dropped, 0, sizeof dropped);
    int n_get, n_put, n_join = 0;
    lock_queue(q);
    __atomic_store_n(&q->shutdown, true, __ATOMIC_RELAXED);
    if (immediate && q->store.count > 0) {
        /* Detached so item_free runs without the lock: it may be slow or
         * call back into the library. */
        cci_qstore_detach(&q->store, &dropped);
        size_t done =
            dropped.count < q->unfinished ? dropped.count : q->unfinished;
        set_unfinished(q, q->unfinished - done);
        if (q->unfinished == 0)
            n_join = wake_all_later(&q->all_done);
    }
    n_get = wake_all_later(&q->not_empty);
    n_put = wake_all_later(&q->not_full);
    unlock_queue(q);
    wake(&q->not_empty, n_get);
    wake(&q->not_full, n_put);
    wake(&q->all_done, n_join);
    cci_qstore_destroy(&dropped, q->item_free, q->item_free_ctx);
    return 0;
}

/* ---- snapshots ----------------------------------------------------------- */

size_t cc_queue_qsize(const cc_queue *q)
{
    return q ? cci_qstore_count(&q->store) : 0;
}

bool cc_queue_empty(const cc_queue *q)
{
    return cc_queue_qsize(q) == 0;
}

bool cc_queue_full(const cc_queue *q)
{
    return q && q->maxsize > 0 && cc_queue_qsize(q) >= q->maxsize;
}

size_t cc_queue_maxsize(const cc_queue *q)
{
    return q ? q->maxsize : 0;
}

size_t cc_queue_unfinished(const cc_queue *q)
{
    return q ? __atomic_load_n(&q->unfinished, __ATOMIC_RELAXED) : 0;
}

bool cc_queue_is_shutdown(const cc_queue *q)
{
    return q && __atomic_load_n(&q->shutdown, __ATOMIC_RELAXED);
}

const char *cc_queue_name(const cc_queue *q)
{
    return q ? q->name : NULL;
}
