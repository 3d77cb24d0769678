/*
 * RLock: a Lock plus the owner's kernel tid and a recursion count.
 *
 * owner is written only by the thread that holds the inner lock (its own
 * tid after acquiring, 0 before releasing) and read by every thread that
 * asks whether it is the owner. A reader that is not the owner may see a
 * stale value, but never its own tid: it cleared owner itself before it
 * last released. Relaxed atomics suffice (the inner lock orders everything
 * else) and keep ThreadSanitizer from flagging the intended race. count is
 * touched only by the owner, so it needs nothing.
 */
#include "sync/sync_internal.h"

int cc_rlock_init(cc_rlock *rlock, unsigned flags)
{
    if (rlock == NULL)
        return -EINVAL;
    int rc = cc_lock_init(&rlock->lock, flags);
    if (rc != 0)
        return rc;
    rlock->owner = 0;
    rlock->count = 0;
    return 0;
}

int cc_rlock_destroy(cc_rlock *rlock)
{
    if (rlock == NULL)
        return -EINVAL;
    return cc_lock_destroy(&rlock->lock);
}

int cc_rlock_acquire(cc_rlock *rlock, cc_duration timeout)
{
    if (CCI_UNLIKELY(rlock == NULL || !cci_duration_valid(timeout)))
        return -EINVAL;
    uint32_t me = cci_gettid();
    if (cci_load_relaxed(&rlock->owner) == me) {
        if (rlock->count == UINT32_MAX)
            return -EOVERFLOW;
        rlock->count++;
        return 0;
    }
    /* Debug mode sees only the first level of an RLock: deeper levels
     * cannot block. Its release is seen by cc_lock_release of the inner
     * lock, which has the RLock's address. */
    bool debug = cci_lockdep_on();
    const void *site = debug ? __builtin_return_address(0) : NULL;
    if (CCI_UNLIKELY(debug)) {
        int rc = cci_lockdep_before(rlock, CC_WAIT_RLOCK, timeout, site);
        if (rc != 0)
            return rc;
    }
    int rc = cci_lock_acquire_until(&rlock->lock, cci_deadline_after(timeout),
                                    CC_WAIT_RLOCK, rlock);
    if (rc != 0)
        return rc;
    cci_store_relaxed(&rlock->owner, me);
    rlock->count = 1;
    if (CCI_UNLIKELY(debug))
        cci_lockdep_acquired(rlock, CC_WAIT_RLOCK, site);
    return 0;
}

int cc_rlock_release(cc_rlock *rlock)
{
    if (CCI_UNLIKELY(rlock == NULL))
        return -EINVAL;
    if (cci_load_relaxed(&rlock->owner) != cci_gettid())
        return -EPERM;
    if (--rlock->count > 0)
        return 0;
    cci_store_relaxed(&rlock->owner, 0);
    return cc_lock_release(&rlock->lock);
}

bool cc_rlock_is_owned(const cc_rlock *rlock)
{
    return rlock != NULL && cci_load_relaxed(&rlock->owner) == cci_gettid();
}

uint32_t cc_rlock_count(const cc_rlock *rlock)
{
    return cc_rlock_is_owned(rlock) ? rlock->count : 0;
}
