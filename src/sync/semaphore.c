/*
 * Semaphore and BoundedSemaphore.
 *
 * value is the futex word: a sleeper waits while it is 0. waiters counts the
 * threads that are asleep or about to sleep, so release skips FUTEX_WAKE
 * when nobody can be asleep. That skip is a Dekker-style handshake: the
 * waiter increments waiters and then reads value, the releaser changes value
 * and then reads waiters, all SEQ_CST, so at least one of them sees the
 * other (the waiter sees the new value, in its own read or in the kernel's
 * re-check inside FUTEX_WAIT, or the releaser sees the waiter). Taking a
 * unit is ACQUIRE and adding one is a SEQ_CST (so also RELEASE) RMW, which
 * makes a semaphore usable to hand data from one thread to another.
 *
 * A bounded semaphore is marked by an internal flag bit, not by bound != 0,
 * so that BoundedSemaphore(0) is bounded at 0 as in Python.
 */
#include "sync/sync_internal.h"

#define SEM_BOUNDED 0x80000000u

static int sem_init(cc_semaphore *sem, int64_t value, unsigned flags,
                    bool bounded)
{
    if (sem == NULL || !cci_sync_flags_valid(flags) || value < 0 ||
        value > INT32_MAX)
        return -EINVAL;
    sem->value = (uint32_t)value;
    sem->waiters = 0;
    sem->bound = bounded ? (uint32_t)value : 0;
    sem->flags = flags | (bounded ? SEM_BOUNDED : 0);
    return 0;
}

int cc_semaphore_init(cc_semaphore *sem, int64_t value, unsigned flags)
{
    return sem_init(sem, value, flags, false);
}

int cc_semaphore_init_bounded(cc_semaphore *sem, int64_t value, unsigned flags)
{
    return sem_init(sem, value, flags, true);
}

int cc_semaphore_destroy(cc_semaphore *sem)
{
    if (sem == NULL)
        return -EINVAL;
    if (cci_load_relaxed(&sem->waiters) != 0)
        return -EBUSY;
    cci_object_destroyed(sem); /* its name */
    return 0;
}

static bool try_down(cc_semaphore *sem)
{
    uint32_t v = __atomic_load_n(&sem->value, __ATOMIC_SEQ_CST);
    while (v > 0) {
        if (__atomic_compare_exchange_n(&sem->value, &v, v - 1, true,
                                        __ATOMIC_ACQUIRE, __ATOMIC_RELAXED))
            return true;
    }
    return false;
}

static int acquire_slow(cc_semaphore *sem, int64_t deadline)
{
    for (int i = 0; i < CCI_SPIN_COUNT; i++) {
        cci_cpu_relax();
        if (__atomic_load_n(&sem->value, __ATOMIC_RELAXED) > 0 && try_down(sem))
            return 0;
    }
    bool pshared = cci_sync_pshared(sem->flags);
    __atomic_fetch_add(&sem->waiters, 1, __ATOMIC_SEQ_CST);
    cci_block_token token = {0};
    bool marked = false;
    int rc;
    for (;;) {
        if (try_down(sem)) {
            rc = 0;
            break;
        }
        if (!marked) {
            token = cci_block_begin(CC_WAIT_SEMAPHORE, sem);
            marked = true;
        }
        if (cci_futex_wait(&sem->value, 0, deadline, pshared) == -ETIMEDOUT) {
            rc = try_down(sem) ? 0 : -ETIMEDOUT;
            break;
        }
    }
    __atomic_fetch_sub(&sem->waiters, 1, __ATOMIC_RELAXED);
    if (marked)
        cci_block_end(token);
    return rc;
}

int cc_semaphore_acquire(cc_semaphore *sem, cc_duration timeout)
{
    if (CCI_UNLIKELY(sem == NULL || !cci_duration_valid(timeout)))
        return -EINVAL;
    if (CCI_LIKELY(try_down(sem)))
        return 0;
    if (timeout == CC_NOWAIT)
        return -ETIMEDOUT;
    return acquire_slow(sem, cci_deadline_after(timeout));
}

int cc_semaphore_release(cc_semaphore *sem, uint32_t n)
{
    if (sem == NULL || n == 0)
        return -EINVAL;
    uint64_t limit = (sem->flags & SEM_BOUNDED) ? sem->bound : INT32_MAX;
    uint32_t v = __atomic_load_n(&sem->value, __ATOMIC_RELAXED);
    uint64_t next;
    do {
        next = (uint64_t)v + n;
        if (next > limit)
            return -EOVERFLOW;
    } while (!__atomic_compare_exchange_n(&sem->value, &v, (uint32_t)next, true,
                                          __ATOMIC_SEQ_CST, __ATOMIC_RELAXED));
    if (__atomic_load_n(&sem->waiters, __ATOMIC_SEQ_CST) > 0)
        cci_futex_wake(&sem->value, n > INT32_MAX ? INT32_MAX : (int)n,
                       cci_sync_pshared(sem->flags));
    return 0;
}

uint32_t cc_semaphore_value(const cc_semaphore *sem)
{
    return sem == NULL ? 0 : __atomic_load_n(&sem->value, __ATOMIC_RELAXED);
}
