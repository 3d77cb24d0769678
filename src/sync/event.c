/*
 * Event.
 *
 * word: bit 0 is the flag, bits 1..31 count the set() calls that found the
 * flag clear (wrapping). A waiter remembers the word it saw with the flag
 * clear and sleeps while the word is unchanged; it returns as soon as the
 * flag is set or the count has moved, so a set() immediately undone by
 * clear() still releases everyone who waited through it. Only 2^31 set()
 * calls during one sleep could fool it.
 *
 * waiters lets set() skip FUTEX_WAKE when nobody sleeps, with the same
 * SEQ_CST handshake as the semaphore: the waiter increments waiters, then
 * reads word; set() changes word, then reads waiters. Seeing the flag set is
 * ACQUIRE and setting it RELEASE (inside SEQ_CST), so whatever the setter
 * wrote before set() is visible to a thread that wait() released.
 */
#include "sync/sync_internal.h"

int cc_event_init(cc_event *event, unsigned flags)
{
    if (event == NULL || !cci_sync_flags_valid(flags))
        return -EINVAL;
    event->word = 0;
    event->waiters = 0;
    event->flags = flags;
    return 0;
}

int cc_event_destroy(cc_event *event)
{
    if (event == NULL)
        return -EINVAL;
    if (cci_load_relaxed(&event->waiters) != 0)
        return -EBUSY;
    cci_object_destroyed(event); /* its name */
    return 0;
}

int cc_event_set(cc_event *event)
{
    if (event == NULL)
        return -EINVAL;
    uint32_t w = __atomic_load_n(&event->word, __ATOMIC_RELAXED);
    do {
        if (w & 1)
            return 0;
    } while (!__atomic_compare_exchange_n(&event->word, &w, (w + 2) | 1, true,
                                          __ATOMIC_SEQ_CST, __ATOMIC_RELAXED));
    if (__atomic_load_n(&event->waiters, __ATOMIC_SEQ_CST) > 0)
        cci_futex_wake(&event->word, INT32_MAX, cci_sync_pshared(event->flags));
    return 0;
}

int cc_event_clear(cc_event *event)
{
    if (event == NULL)
        return -EINVAL;
    /* Clearing never wakes anyone and waiters never sleep on a set flag,
     * so RELAXED is enough; the RMW keeps the set count intact. */
    __atomic_fetch_and(&event->word, ~1u, __ATOMIC_RELAXED);
    return 0;
}

bool cc_event_is_set(const cc_event *event)
{
    return event != NULL &&
           (__atomic_load_n(&event->word, __ATOMIC_ACQUIRE) & 1) != 0;
}

int cc_event_wait(cc_event *event, cc_duration timeout)
{
    if (event == NULL || !cci_duration_valid(timeout))
        return -EINVAL;
    uint32_t seen = __atomic_load_n(&event->word, __ATOMIC_ACQUIRE);
    if (seen & 1)
        return 0;
    if (timeout == CC_NOWAIT)
        return -ETIMEDOUT;
    int64_t deadline = cci_deadline_after(timeout);
    bool pshared = cci_sync_pshared(event->flags);

    __atomic_fetch_add(&event->waiters, 1, __ATOMIC_SEQ_CST);
    cci_block_token token = {0};
    bool marked = false;
    int rc = 0;
    /* seen has the flag clear, so any change to the word means a set(). */
    while (__atomic_load_n(&event->word, __ATOMIC_SEQ_CST) == seen) {
        if (!marked) {
            token = cci_block_begin(CC_WAIT_EVENT, event);
            marked = true;
        }
        if (cci_futex_wait(&event->word, seen, deadline, pshared) ==
            -ETIMEDOUT) {
            if (__atomic_load_n(&event->word, __ATOMIC_ACQUIRE) == seen)
                rc = -ETIMEDOUT;
            break;
        }
    }
    __atomic_fetch_sub(&event->waiters, 1, __ATOMIC_RELAXED);
    if (marked)
        cci_block_end(token);
    return rc;
}
