/*
 * Lock: the three-state futex mutex of Drepper's "Futexes Are Tricky"
 * (mutex #3).
 *
 * word: 0 unlocked, 1 locked and nobody sleeps, 2 locked and somebody may
 * sleep. An uncontended acquire is one CAS 0 -> 1 and a release one
 * exchange to 0; only a release that finds 2 pays for FUTEX_WAKE. A thread
 * that goes to sleep first exchanges 2 in, so the holder's release sees 2
 * and wakes it; a woken thread exchanges 2 in again (it cannot know whether
 * others still sleep), which costs at most one spare wake later.
 *
 * Memory orders: taking the lock (CAS or exchange that finds 0) is ACQUIRE,
 * releasing it (exchange to 0) is RELEASE: that pair is what makes the
 * critical sections happen one after the other. Reads while spinning are
 * RELAXED: they only decide whether to try the CAS.
 */
#include "sync/sync_internal.h"

int cc_lock_init(cc_lock *lock, unsigned flags)
{
    if (lock == NULL || !cci_sync_flags_valid(flags))
        return -EINVAL;
    lock->word = 0;
    lock->flags = flags;
    return 0;
}

int cc_lock_destroy(cc_lock *lock)
{
    if (lock == NULL)
        return -EINVAL;
    if (cci_load_relaxed(&lock->word) != 0)
        return -EBUSY;
    cci_object_destroyed(lock); /* its name and lock-order node */
    return 0;
}

static bool try_take(cc_lock *lock)
{
    uint32_t expected = 0;
    return __atomic_compare_exchange_n(&lock->word, &expected, 1, false,
                                       __ATOMIC_ACQUIRE, __ATOMIC_RELAXED);
}

int cci_lock_acquire_until(cc_lock *lock, int64_t deadline, cc_wait_kind kind,
                           const void *object)
{
    if (try_take(lock))
        return 0;
    if (deadline == 0)
        return -ETIMEDOUT;
    for (int i = 0; i < CCI_SPIN_COUNT; i++) {
        cci_cpu_relax();
        if (__atomic_load_n(&lock->word, __ATOMIC_RELAXED) == 0 &&
            try_take(lock))
            return 0;
    }
    if (__atomic_exchange_n(&lock->word, 2, __ATOMIC_ACQUIRE) == 0)
        return 0;

    bool pshared = cci_sync_pshared(lock->flags);
    cci_block_token token = {0};
    if (kind != CC_WAIT_NONE)
        token = cci_block_begin(kind, object);
    int rc = 0;
    do {
        if (cci_futex_wait(&lock->word, 2, deadline, pshared) == -ETIMEDOUT) {
            /* Leaving 2 behind is safe: the holder's release then wakes
             * one thread in vain, or one that still sleeps. */
            rc = -ETIMEDOUT;
            break;
        }
    } while (__atomic_exchange_n(&lock->word, 2, __ATOMIC_ACQUIRE) != 0);
    if (kind != CC_WAIT_NONE)
        cci_block_end(token);
    return rc;
}

/*
 * The fast paths below are a try and a tail call: everything that needs a
 * stack frame lives in noinline functions, so that the one extra load and
 * branch of lock debugging does not make the compiler set up a frame on
 * the fast path (measured: that frame cost more than the check itself).
 */

/* The acquire of debug mode (see trace/trace_internal.h). */
static __attribute__((noinline)) int acquire_debug(cc_lock *lock,
                                                   cc_duration timeout,
                                                   const void *site)
{
    int rc = cci_lockdep_before(lock, CC_WAIT_LOCK, timeout, site);
    if (rc == 0)
        rc = cci_lock_acquire_until(lock, cci_deadline_after(timeout),
                                    CC_WAIT_LOCK, lock);
    if (rc == 0)
        cci_lockdep_acquired(lock, CC_WAIT_LOCK, site);
    return rc;
}

/* After a failed try: give up, or spin and sleep until the deadline. */
static __attribute__((noinline)) int acquire_slow(cc_lock *lock,
                                                  cc_duration timeout)
{
    if (timeout == CC_NOWAIT)
        return -ETIMEDOUT;
    return cci_lock_acquire_until(lock, cci_deadline_after(timeout),
                                  CC_WAIT_LOCK, lock);
}

int cc_lock_acquire(cc_lock *lock, cc_duration timeout)
{
    if (CCI_UNLIKELY(lock == NULL || !cci_duration_valid(timeout)))
        return -EINVAL;
    /* Lock debugging: the one extra load and branch of the fast path. */
    if (CCI_UNLIKELY(cci_lockdep_on()))
        return acquire_debug(lock, timeout, __builtin_return_address(0));
    if (CCI_LIKELY(try_take(lock)))
        return 0;
    return acquire_slow(lock, timeout);
}

/* A release that did not find 1: misuse, or a sleeper to wake. */
static __attribute__((noinline)) int release_slow(cc_lock *lock,
                                                  uint32_t old)
{
    if (old == 0)
        return -EPERM;
    cci_futex_wake(&lock->word, 1, cci_sync_pshared(lock->flags));
    return 0;
}

static inline int release_word(cc_lock *lock)
{
    /* Exchanging 0 into an unlocked lock changes nothing, so the check for
     * misuse costs no extra atomic on the fast path. */
    uint32_t old = __atomic_exchange_n(&lock->word, 0, __ATOMIC_RELEASE);
    if (CCI_LIKELY(old == 1))
        return 0;
    return release_slow(lock, old);
}

/* Debug mode forgets the holder before the word is cleared: once it is,
 * another thread may acquire the lock and record itself as the holder. */
static __attribute__((noinline)) int release_debug(cc_lock *lock)
{
    cci_lockdep_released(lock);
    return release_word(lock);
}

int cc_lock_release(cc_lock *lock)
{
    if (CCI_UNLIKELY(lock == NULL))
        return -EINVAL;
    if (CCI_UNLIKELY(cci_lockdep_on()))
        return release_debug(lock);
    return release_word(lock);
}

bool cc_lock_locked(const cc_lock *lock)
{
    return lock != NULL && cci_load_relaxed(&lock->word) != 0;
}
