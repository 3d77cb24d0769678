/*
 * sync_internal.h — what the sync objects share inside the library.
 *
 * Every object keeps its futex words as plain uint32_t fields (the public
 * header must stay valid C++, so no _Atomic there) and touches them only
 * through GCC __atomic builtins; each file explains its memory orders.
 */
#ifndef CCI_SYNC_INTERNAL_H
#define CCI_SYNC_INTERNAL_H

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>

#include "concur/error.h"
#include "concur/sync.h"
#include "concur/thread.h"
#include "platform/platform.h"
#include "thread/blocking.h"
#include "time/deadline.h"
#include "trace/trace_internal.h"

#define CCI_LIKELY(x) __builtin_expect(!!(x), 1)
#define CCI_UNLIKELY(x) __builtin_expect(!!(x), 0)

/* Spin iterations (cci_cpu_relax each, a few microseconds in all) before a
 * contended acquire goes to sleep: a sleep and wake-up cost 60-70 us here,
 * most critical sections far less. */
#define CCI_SPIN_COUNT 100

static inline bool cci_sync_flags_valid(unsigned flags)
{
    return (flags & ~CC_SYNC_PSHARED) == 0;
}

static inline bool cci_sync_pshared(uint32_t flags)
{
    return (flags & CC_SYNC_PSHARED) != 0;
}

/* Relaxed accesses for fields that are written under a lock but read
 * without it (destroy checks, snapshots): relaxed keeps them free on x86 and
 * tells ThreadSanitizer the race is intended. */
static inline uint32_t cci_load_relaxed(const uint32_t *p)
{
    return __atomic_load_n(p, __ATOMIC_RELAXED);
}

static inline void cci_store_relaxed(uint32_t *p, uint32_t v)
{
    __atomic_store_n(p, v, __ATOMIC_RELAXED);
}

/*
 * Acquires lock before the absolute deadline (CCI_NO_DEADLINE: forever;
 * 0: one try). While it sleeps the thread is BLOCKED on (kind, object);
 * CC_WAIT_NONE leaves the thread's state alone, for callers that have
 * marked it themselves. Returns 0 or -ETIMEDOUT.
 */
int cci_lock_acquire_until(cc_lock *lock, int64_t deadline, cc_wait_kind kind,
                           const void *object);

/*
 * cc_condition_wait with an absolute deadline. mark false leaves the
 * thread's state alone, both in the wait and in re-acquiring the lock, for
 * objects built on a condition (the barrier) that mark the thread as
 * waiting on themselves. Returns 0, -EPERM or -ETIMEDOUT.
 */
int cci_condition_wait_until(cc_condition *cond, int64_t deadline, bool mark);

#endif /* CCI_SYNC_INTERNAL_H */
