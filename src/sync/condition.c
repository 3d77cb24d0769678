/*
 * Condition: Python's notify semantics (notify(n) wakes exactly
 * min(n, waiters not yet notified) threads among those waiting at the time
 * of the call) with counters only, so that the object works in shared
 * memory mapped anywhere.
 *
 * All bookkeeping happens with the user's lock held, which serialises it.
 * Waiters form groups numbered by `epoch` at the time they enter:
 *   - group epoch ("newest"): entered after the last switch; no notify
 *     issued so far may wake them;
 *   - group epoch-1 ("served"): `unsignaled` of them not yet notified,
 *     `permits` notified but not yet returned;
 *   - older groups: every one of them was notified (a switch happens only
 *     once the served group has no unsignaled waiter left) and only has to
 *     return.
 * notify(n) hands out permits to the served group; when that group has no
 * unsignaled waiter left and n is not used up, it switches: the newest
 * group becomes the served one and epoch moves on. Every member of the
 * served group was already waiting when each of its permits was issued
 * (the group was closed at the switch, before any of them), so any member
 * may take any permit, and a thread that starts waiting later can never
 * take one. (A single pool of permits open to every "earlier" waiter is
 * not enough: a notify(1) for thread A, then B and C start waiting and
 * notify(1) again, would let B and C take both permits and leave A, the
 * only thread waiting at the first notify, asleep.)
 *
 * Each group sleeps on seq[group & 1], so a notify wakes only the served
 * group: it bumps that word (a member between releasing the lock and
 * sleeping then does not sleep) and wakes as many sleepers as it issued
 * permits. That is enough: the members that are awake or will re-check
 * are at least as many as the unclaimed permits, because each permit
 * either comes with a wake-up or finds all members awake, and a member
 * only goes back to sleep after seeing no permit left. Members of older
 * groups are all awake by the same count, so sharing a word with them wakes
 * nobody in vain.
 *
 * A waiter whose timeout fires but finds a permit for its group when it has
 * re-taken the lock takes it and returns 0, so no notification is lost to a
 * timeout. epoch wraps after 2^32 switches; a waiter would have to sleep
 * through all of them to be confused.
 */
#include <stdint.h>

#include "sync/sync_internal.h"

enum { BOUND_LOCK = 1, BOUND_RLOCK = 2 };

static cc_lock *bound_lock(const cc_condition *cond)
{
    /* Integer arithmetic: the lock is not part of the condition object, so
     * pointer arithmetic between them would be undefined. */
    return (cc_lock *)((uintptr_t)cond + (uintptr_t)cond->lock_offset);
}

static int init_bound(cc_condition *cond, cc_lock *lock, uint32_t kind,
                      unsigned flags)
{
    if (cond == NULL || lock == NULL || !cci_sync_flags_valid(flags))
        return -EINVAL;
    if (cci_sync_pshared(flags) != cci_sync_pshared(lock->flags))
        return -EINVAL;
    cond->seq[0] = 0;
    cond->seq[1] = 0;
    cond->epoch = 0;
    cond->waiting = 0;
    cond->newest = 0;
    cond->unsignaled = 0;
    cond->permits = 0;
    cond->lock_kind = kind;
    cond->lock_offset = (int64_t)((uintptr_t)lock - (uintptr_t)cond);
    cond->flags = flags;
    return 0;
}

int cc_condition_init(cc_condition *cond, cc_lock *lock, unsigned flags)
{
    return init_bound(cond, lock, BOUND_LOCK, flags);
}

int cc_condition_init_rlock(cc_condition *cond, cc_rlock *rlock, unsigned flags)
{
    return init_bound(cond, rlock ? &rlock->lock : NULL, BOUND_RLOCK, flags);
}

int cc_condition_destroy(cc_condition *cond)
{
    if (cond == NULL)
        return -EINVAL;
    if (cci_load_relaxed(&cond->waiting) != 0)
        return -EBUSY;
    cci_object_destroyed(cond); /* its name */
    return 0;
}

static bool valid(const cc_condition *cond)
{
    return cond != NULL &&
           (cond->lock_kind == BOUND_LOCK || cond->lock_kind == BOUND_RLOCK);
}

static bool lock_held(const cc_condition *cond)
{
    cc_lock *lock = bound_lock(cond);
    if (cond->lock_kind == BOUND_RLOCK)
        return cc_rlock_is_owned((cc_rlock *)lock);
    return cc_lock_locked(lock);
}

/* Releases the bound lock completely; returns the RLock recursion count to
 * restore. */
static uint32_t release_bound(cc_condition *cond)
{
    cc_lock *lock = bound_lock(cond);
    uint32_t saved = 0;
    if (cond->lock_kind == BOUND_RLOCK) {
        cc_rlock *rlock = (cc_rlock *)lock;
        saved = rlock->count;
        rlock->count = 0;
        cci_store_relaxed(&rlock->owner, 0);
    }
    cc_lock_release(lock);
    return saved;
}

static void reacquire_bound(cc_condition *cond, uint32_t saved, bool mark)
{
    cc_lock *lock = bound_lock(cond);
    bool rlock = cond->lock_kind == BOUND_RLOCK;
    cc_wait_kind kind = CC_WAIT_NONE;
    if (mark)
        kind = rlock ? CC_WAIT_RLOCK : CC_WAIT_LOCK;
    cci_lock_acquire_until(lock, CCI_NO_DEADLINE, kind, lock);
    if (rlock) {
        cc_rlock *r = (cc_rlock *)lock;
        cci_store_relaxed(&r->owner, cci_gettid());
        r->count = saved;
    }
    /* Debug mode saw the release in release_bound (cc_lock_release); the
     * lock is held again, re-taken by the wait (no call site of its own). */
    if (CCI_UNLIKELY(cci_lockdep_on()))
        cci_lockdep_acquired(lock, rlock ? CC_WAIT_RLOCK : CC_WAIT_LOCK, NULL);
}

static void leave(cc_condition *cond)
{
    cci_store_relaxed(&cond->waiting, cond->waiting - 1);
}

int cci_condition_wait_until(cc_condition *cond, int64_t deadline, bool mark)
{
    if (!lock_held(cond))
        return -EPERM;
    bool pshared = cci_sync_pshared(cond->flags);
    uint32_t group = cond->epoch;
    uint32_t *word = &cond->seq[group & 1];
    cci_store_relaxed(&cond->waiting, cond->waiting + 1);
    cond->newest++;

    cci_block_token token = {0};
    bool marked = false;
    int rc;
    for (;;) {
        uint32_t seen = cci_load_relaxed(word);
        uint32_t saved = release_bound(cond);
        int woke = -ETIMEDOUT;
        if (deadline != 0) {
            if (mark && !marked) {
                token = cci_block_begin(CC_WAIT_CONDITION, cond);
                marked = true;
            }
            woke = cci_futex_wait(word, seen, deadline, pshared);
        }
        reacquire_bound(cond, saved, mark);

        uint32_t age = cond->epoch - group; /* 0 newest, 1 served, 2+ older */
        if (age >= 2) {
            rc = 0;
            break;
        }
        if (age == 1 && cond->permits > 0) {
            cond->permits--;
            rc = 0;
            break;
        }
        if (woke == -ETIMEDOUT ||
            (deadline != CCI_NO_DEADLINE && cci_now_ns() >= deadline)) {
            if (age == 0)
                cond->newest--;
            else
                cond->unsignaled--;
            rc = -ETIMEDOUT;
            break;
        }
    }
    leave(cond);
    if (marked)
        cci_block_end(token);
    return rc;
}

int cc_condition_wait(cc_condition *cond, cc_duration timeout)
{
    if (!valid(cond) || !cci_duration_valid(timeout))
        return -EINVAL;
    return cci_condition_wait_until(cond, cci_deadline_after(timeout), true);
}

int cc_condition_wait_for(cc_condition *cond, bool (*pred)(void *ctx),
                          void *ctx, cc_duration timeout)
{
    if (!valid(cond) || pred == NULL || !cci_duration_valid(timeout))
        return -EINVAL;
    if (!lock_held(cond))
        return -EPERM;
    int64_t deadline = cci_deadline_after(timeout);
    while (!pred(ctx)) {
        int rc = cci_condition_wait_until(cond, deadline, true);
        if (rc == -ETIMEDOUT)
            return pred(ctx) ? 0 : -ETIMEDOUT;
        if (rc != 0)
            return rc;
    }
    return 0;
}

/* Issues m permits to the served group (epoch - 1) and wakes m of its
 * sleepers. */
static void grant(cc_condition *cond, uint32_t m, bool pshared)
{
    uint32_t *word = &cond->seq[(cond->epoch - 1) & 1];
    cond->unsignaled -= m;
    cond->permits += m;
    cci_store_relaxed(word, *word + 1);
    cci_futex_wake(word, m > INT32_MAX ? INT32_MAX : (int)m, pshared);
}

static void notify_locked(cc_condition *cond, uint32_t n)
{
    bool pshared = cci_sync_pshared(cond->flags);
    while (n > 0) {
        if (cond->unsignaled == 0) {
            if (cond->newest == 0)
                return;
            /* Switch. The old served group's leftover permits belong to
             * members that are all notified; they return on age alone. */
            cond->unsignaled = cond->newest;
            cond->newest = 0;
            cond->permits = 0;
            cond->epoch++;
        }
        uint32_t m = n < cond->unsignaled ? n : cond->unsignaled;
        grant(cond, m, pshared);
        n -= m;
    }
}

int cc_condition_notify(cc_condition *cond, unsigned n)
{
    if (!valid(cond))
        return -EINVAL;
    if (!lock_held(cond))
        return -EPERM;
    notify_locked(cond, (uint32_t)n);
    return 0;
}

int cc_condition_notify_all(cc_condition *cond)
{
    return cc_condition_notify(cond, UINT32_MAX);
}
