/*
 * Coroutine primitives: asyncio's Lock, Event, Semaphore and Queue. All on
 * the loop's thread, so the state is plain fields; waiting goes through
 * the waiter lists of task.c. A woken waiter re-checks the state (another
 * task may have run first), and one that gives up after being woken passes
 * the wake-up on, so a release is never lost.
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "concur/error.h"
#include "concur/loop.h"
#include "loop/task_internal.h"
#include "platform/platform.h"
#include "time/deadline.h"
#include "trace/trace_internal.h"

_Static_assert(sizeof(cc_async_waitlist) == sizeof(struct cci_waitlist),
               "cc_async_waitlist mirrors struct cci_waitlist");

static struct cci_waitlist *wl(cc_async_waitlist *l)
{
    return (struct cci_waitlist *)l;
}

static bool has_waiters(const cc_async_waitlist *l)
{
    return l->head != NULL;
}

/* The end of a destroy: an object still in use stays; one destroyed
 * forgets its name, which a new object at its address must not inherit. */
static int destroyed(const void *obj, bool busy)
{
    if (busy)
        return -EBUSY;
    cci_object_destroyed(obj);
    return 0;
}

/* The start of every wait: obj and the timeout checked, a cancellation
 * already requested honoured before anything changes, the deadline fixed.
 * Returns 0 or the error the call returns. */
static int wait_begin(const void *obj, cc_duration timeout, int64_t *deadline)
{
    if (!obj || !cci_duration_valid(timeout))
        return -EINVAL;
    struct cci_task *t = cci_task_running();
    if (t && cci_task_cancel_requested(t))
        return -ECANCELED;
    *deadline = cci_deadline_after(timeout);
    return 0;
}

/* One wait for a state change: 0 (re-check), or an error to return.
 * kind, obj and op say what for, in the thread dump. */
static int wait_change(cc_async_waitlist *l, int64_t deadline,
                       cc_wait_kind kind, const void *obj, const char *op)
{
    if (deadline == 0)
        return -ETIMEDOUT;
    return cci_waitlist_wait(wl(l), deadline, kind, obj, op);
}

/* ---- Lock ---------------------------------------------------------------- */

int cc_async_lock_init(cc_async_lock *lock)
{
    if (!lock)
        return -EINVAL;
    memset(lock, 0, sizeof *lock);
    return 0;
}

int cc_async_lock_destroy(cc_async_lock *lock)
{
    if (!lock)
        return -EINVAL;
    return destroyed(lock, lock->locked || has_waiters(&lock->waiters));
}

int cc_async_lock_acquire(cc_async_lock *lock, cc_duration timeout)
{
    int64_t deadline;
    int rc = wait_begin(lock, timeout, &deadline);
    if (rc < 0)
        return rc;
    while (lock->locked) {
        rc = wait_change(&lock->waiters, deadline, CC_WAIT_LOCK, lock, NULL);
        if (rc < 0)
            return rc;
    }
    lock->locked = true;
    return 0;
}

int cc_async_lock_release(cc_async_lock *lock)
{
    if (!lock)
        return -EINVAL;
    if (!lock->locked)
        return -EPERM;
    lock->locked = false;
    cci_waitlist_wake_one(wl(&lock->waiters));
    return 0;
}

bool cc_async_lock_locked(const cc_async_lock *lock)
{
    return lock && lock->locked;
}

/* ---- Event --------------------------------------------------------------- */

int cc_async_event_init(cc_async_event *event)
{
    if (!event)
        return -EINVAL;
    memset(event, 0, sizeof *event);
    return 0;
}

int cc_async_event_destroy(cc_async_event *event)
{
    if (!event)
        return -EINVAL;
    return destroyed(event, has_waiters(&event->waiters));
}

int cc_async_event_set(cc_async_event *event)
{
    if (!event)
        return -EINVAL;
    event->flag = true;
    cci_waitlist_wake_all(wl(&event->waiters));
    return 0;
}

int cc_async_event_clear(cc_async_event *event)
{
    if (!event)
        return -EINVAL;
    event->flag = false;
    return 0;
}

bool cc_async_event_is_set(const cc_async_event *event)
{
    return event && event->flag;
}

int cc_async_event_wait(cc_async_event *event, cc_duration timeout)
{
    int64_t deadline;
    int rc = wait_begin(event, timeout, &deadline);
    if (rc < 0)
        return rc;
    if (event->flag)
        return 0;
    /* Only a set wakes a waiter, and a woken one succeeds even if the flag
     * was cleared again before it ran, as asyncio's does: no loop. */
    return wait_change(&event->waiters, deadline, CC_WAIT_EVENT, event, NULL);
}

/* ---- Semaphore ----------------------------------------------------------- */

int cc_async_semaphore_init(cc_async_semaphore *sem, unsigned value)
{
    if (!sem)
        return -EINVAL;
    memset(sem, 0, sizeof *sem);
    sem->value = value;
    return 0;
}

int cc_async_semaphore_destroy(cc_async_semaphore *sem)
{
    if (!sem)
        return -EINVAL;
    return destroyed(sem, has_waiters(&sem->waiters));
}

int cc_async_semaphore_acquire(cc_async_semaphore *sem, cc_duration timeout)
{
    int64_t deadline;
    int rc = wait_begin(sem, timeout, &deadline);
    if (rc < 0)
        return rc;
    while (sem->value == 0) {
        rc = wait_change(&sem->waiters, deadline, CC_WAIT_SEMAPHORE, sem, NULL);
        if (rc < 0)
            return rc;
    }
    sem->value--;
    return 0;
}

int cc_async_semaphore_release(cc_async_semaphore *sem)
{
    if (!sem)
        return -EINVAL;
    if (sem->value == UINT_MAX)
        return -EOVERFLOW;
    sem->value++;
    cci_waitlist_wake_one(wl(&sem->waiters));
    return 0;
}

unsigned cc_async_semaphore_value(const cc_async_semaphore *sem)
{
    return sem ? sem->value : 0;
}

/* ---- Queue --------------------------------------------------------------- */

struct cc_async_queue {
    void **items; /* ring buffer */
    size_t cap, head, len;
    size_t maxsize; /* 0: unbounded */
    size_t unfinished;
    cc_async_waitlist getters, putters, joiners;
};

int cc_async_queue_new(cc_async_queue **out, size_t maxsize)
{
    if (!out)
        return -EINVAL;
    cc_async_queue *q = calloc(1, sizeof *q);
    if (!q)
        return -ENOMEM;
    q->maxsize = maxsize;
    *out = q;
    return 0;
}

void cc_async_queue_free(cc_async_queue *q)
{
    if (!q)
        return;
    cci_object_destroyed(q); /* its name */
    free(q->items);
    free(q);
}

static int ring_grow(cc_async_queue *q)
{
    size_t cap = q->cap ? q->cap * 2 : 16;
    if (cap > SIZE_MAX / sizeof(void *))
        return -ENOMEM;
    void **items = malloc(cap * sizeof *items);
    if (!items)
        return -ENOMEM;
    for (size_t i = 0; i < q->len; i++)
        items[i] = q->items[(q->head + i) % q->cap];
    free(q->items);
    q->items = items;
    q->cap = cap;
    q->head = 0;
    return 0;
}

/* Own timeout expiring gives the queue's code; a scope's stays -ETIMEDOUT. */
static int timeout_code(int rc, int64_t deadline, int code)
{
    if (rc == -ETIMEDOUT && deadline != CCI_NO_DEADLINE &&
        (deadline == 0 || cci_now_ns() >= deadline))
        return code;
    return rc;
}

int cc_async_queue_put(cc_async_queue *q, void *item, cc_duration timeout)
{
    int64_t deadline;
    int rc = wait_begin(q, timeout, &deadline);
    if (rc < 0)
        return rc;
    while (q->maxsize && q->len >= q->maxsize) {
        rc = wait_change(&q->putters, deadline, CC_WAIT_QUEUE, q, "put");
        if (rc < 0)
            return timeout_code(rc, deadline, CC_EFULL);
    }
    if (q->len == q->cap) {
        rc = ring_grow(q);
        if (rc < 0)
            return rc;
    }
    q->items[(q->head + q->len) % q->cap] = item;
    q->len++;
    q->unfinished++;
    cci_waitlist_wake_one(wl(&q->getters));
    return 0;
}

int cc_async_queue_get(cc_async_queue *q, void **item, cc_duration timeout)
{
    int64_t deadline;
    int rc = wait_begin(q, timeout, &deadline);
    if (rc < 0)
        return rc;
    while (q->len == 0) {
        rc = wait_change(&q->getters, deadline, CC_WAIT_QUEUE, q, "get");
        if (rc < 0)
            return timeout_code(rc, deadline, CC_EEMPTY);
    }
    void *v = q->items[q->head];
    q->head = (q->head + 1) % q->cap;
    q->len--;
    if (item)
        *item = v;
    cci_waitlist_wake_one(wl(&q->putters));
    return 0;
}

size_t cc_async_queue_size(const cc_async_queue *q)
{
    return q ? q->len : 0;
}

int cc_async_queue_task_done(cc_async_queue *q)
{
    if (!q || q->unfinished == 0)
        return -EINVAL;
    if (--q->unfinished == 0)
        cci_waitlist_wake_all(wl(&q->joiners));
    return 0;
}

int cc_async_queue_join(cc_async_queue *q, cc_duration timeout)
{
    int64_t deadline;
    int rc = wait_begin(q, timeout, &deadline);
    if (rc < 0)
        return rc;
    while (q->unfinished > 0) {
        rc = wait_change(&q->joiners, deadline, CC_WAIT_QUEUE, q, "join");
        if (rc < 0)
            return rc;
    }
    return 0;
}
