/*
 * Barrier: the algorithm of CPython's threading.Barrier on the embedded
 * lock and condition.
 *
 * state (changed only with the lock held):
 *   FILLING   threads arrive; the last one runs the action and starts
 *             DRAINING;
 *   DRAINING  the round's threads leave; newcomers wait until the last one
 *             out turns it back to FILLING;
 *   RESETTING reset() while threads waited: they leave with
 *             CC_EBROKEN_BARRIER, the last one out turns it to FILLING;
 *   BROKEN    a timeout, abort() or a failing action: every wait fails
 *             until reset().
 * count is the number of threads between entering (after any draining or
 * resetting) and leaving, so the last one out can finish a drain or reset.
 *
 * A thread that waits shows BLOCKED on the barrier itself, never on the
 * internal lock or condition: the barrier marks the thread around its own
 * waits and uses the unmarked internal condition wait.
 */
#include "sync/sync_internal.h"

enum { FILLING = 0, DRAINING = 1, RESETTING = -1, BROKEN = -2 };

int cc_barrier_init(cc_barrier *barrier, uint32_t parties,
                    cc_barrier_action action, void *ctx,
                    cc_duration default_timeout, unsigned flags)
{
    /* Indexes are returned as int, so parties must fit in one. */
    if (barrier == NULL || parties == 0 || parties > INT32_MAX ||
        !cci_duration_valid(default_timeout) || !cci_sync_flags_valid(flags))
        return -EINVAL;
    cc_lock_init(&barrier->lock, flags);
    cc_condition_init(&barrier->cond, &barrier->lock, flags);
    barrier->parties = parties;
    barrier->count = 0;
    barrier->state = FILLING;
    barrier->flags = flags;
    barrier->timeout = default_timeout;
    barrier->action = action;
    barrier->action_ctx = ctx;
    return 0;
}

/* Takes the internal lock; a thread that has to sleep for it shows BLOCKED
 * on the barrier (an action runs with the lock held and may take long). */
static void barrier_lock(cc_barrier *barrier)
{
    cci_lock_acquire_until(&barrier->lock, CCI_NO_DEADLINE, CC_WAIT_BARRIER,
                           barrier);
}

static void barrier_unlock(cc_barrier *barrier)
{
    cc_lock_release(&barrier->lock);
}

int cc_barrier_destroy(cc_barrier *barrier)
{
    if (barrier == NULL)
        return -EINVAL;
    if (cc_lock_acquire(&barrier->lock, CC_NOWAIT) != 0)
        return -EBUSY;
    bool busy = barrier->count > 0 || barrier->cond.waiting > 0;
    barrier_unlock(barrier);
    if (busy)
        return -EBUSY;
    /* Its name, and its inner lock's (at the same address). */
    cci_object_destroyed(barrier);
    return 0;
}

/* A wait on the internal condition, with the thread marked as waiting on
 * the barrier from its first sleep until cc_barrier_wait returns. */
struct mark {
    cci_block_token token;
    bool marked;
};

static int wait_cond(cc_barrier *barrier, int64_t deadline, struct mark *m)
{
    if (!m->marked && deadline != 0) {
        m->token = cci_block_begin(CC_WAIT_BARRIER, barrier);
        m->marked = true;
    }
    return cci_condition_wait_until(&barrier->cond, deadline, false);
}

static void break_locked(cc_barrier *barrier)
{
    barrier->state = BROKEN;
    cc_condition_notify_all(&barrier->cond);
}

/* Runs the action and opens the barrier; returns the last arriver's
 * result. */
static int release_locked(cc_barrier *barrier, int index)
{
    if (barrier->action != NULL) {
        int rc = barrier->action(barrier->action_ctx);
        if (rc < 0) {
            break_locked(barrier);
            return rc;
        }
    }
    barrier->state = DRAINING;
    cc_condition_notify_all(&barrier->cond);
    return index;
}

/* Waits to be released by the last arriver; breaks the barrier on
 * timeout. */
static int wait_release_locked(cc_barrier *barrier, int index, int64_t deadline,
                               struct mark *m)
{
    while (barrier->state == FILLING) {
        if (wait_cond(barrier, deadline, m) == -ETIMEDOUT &&
            barrier->state == FILLING) {
            break_locked(barrier);
            return CC_EBROKEN_BARRIER;
        }
    }
    return barrier->state < 0 ? CC_EBROKEN_BARRIER : index;
}

static void exit_locked(cc_barrier *barrier)
{
    barrier->count--;
    if (barrier->count == 0 &&
        (barrier->state == RESETTING || barrier->state == DRAINING)) {
        barrier->state = FILLING;
        cc_condition_notify_all(&barrier->cond);
    }
}

int cc_barrier_wait_timeout(cc_barrier *barrier, cc_duration timeout)
{
    if (barrier == NULL || !cci_duration_valid(timeout))
        return -EINVAL;
    int64_t deadline = cci_deadline_after(timeout);
    struct mark m = {.marked = false};
    int rc;
    barrier_lock(barrier);
    /* Python waits for a drain or reset without a time limit too: both end
     * as soon as the threads already released have left. */
    while (barrier->state == DRAINING || barrier->state == RESETTING)
        wait_cond(barrier, CCI_NO_DEADLINE, &m);
    if (barrier->state < 0) {
        rc = CC_EBROKEN_BARRIER;
    } else {
        int index = (int)barrier->count++;
        if ((uint32_t)index + 1 == barrier->parties)
            rc = release_locked(barrier, index);
        else
            rc = wait_release_locked(barrier, index, deadline, &m);
        exit_locked(barrier);
    }
    barrier_unlock(barrier);
    if (m.marked)
        cci_block_end(m.token);
    return rc;
}

int cc_barrier_wait(cc_barrier *barrier)
{
    if (barrier == NULL)
        return -EINVAL;
    return cc_barrier_wait_timeout(barrier, barrier->timeout);
}

int cc_barrier_reset(cc_barrier *barrier)
{
    if (barrier == NULL)
        return -EINVAL;
    barrier_lock(barrier);
    if (barrier->count > 0) {
        /* Threads still inside: those waiting leave broken, and the last
         * one out makes the barrier usable. A drain in progress simply
         * finishes. */
        if (barrier->state == FILLING || barrier->state == BROKEN)
            barrier->state = RESETTING;
    } else {
        barrier->state = FILLING;
    }
    cc_condition_notify_all(&barrier->cond);
    barrier_unlock(barrier);
    return 0;
}

int cc_barrier_abort(cc_barrier *barrier)
{
    if (barrier == NULL)
        return -EINVAL;
    barrier_lock(barrier);
    break_locked(barrier);
    barrier_unlock(barrier);
    return 0;
}

bool cc_barrier_broken(cc_barrier *barrier)
{
    if (barrier == NULL)
        return false;
    barrier_lock(barrier);
    bool broken = barrier->state == BROKEN;
    barrier_unlock(barrier);
    return broken;
}

uint32_t cc_barrier_parties(const cc_barrier *barrier)
{
    return barrier == NULL ? 0 : barrier->parties;
}

uint32_t cc_barrier_n_waiting(cc_barrier *barrier)
{
    if (barrier == NULL)
        return 0;
    barrier_lock(barrier);
    uint32_t n = barrier->state == FILLING ? barrier->count : 0;
    barrier_unlock(barrier);
    return n;
}
