/*
 * concur/sync.h — Lock, RLock, Condition, Semaphore, BoundedSemaphore,
 * Event, Barrier and Once with the semantics of Python's threading module.
 *
 * The caller owns the memory of every object here (embed them in your own
 * structs): initialise with cc_X_init or the static CC_X_INIT, destroy with
 * cc_X_destroy. All of them are built on futexes, never allocate, and never
 * call into the kernel when nobody waits.
 *
 * Every blocking call takes a cc_duration timeout (CC_FOREVER, CC_NOWAIT or a
 * number of nanoseconds) and returns -ETIMEDOUT when it expires, CC_NOWAIT
 * included. While it waits, the calling thread is BLOCKED on the object (see
 * concur/thread.h); a call that succeeds at once never changes the state.
 *
 * Process-shared objects: pass CC_SYNC_PSHARED to init and place the object
 * in memory shared between the processes (MAP_SHARED). The object may be
 * mapped at different addresses in each process. A Condition and the lock it
 * is bound to must then live in the same mapping. A Barrier's action runs in
 * whichever process arrives last, so its function pointer must be valid
 * there (true for fork()ed children of the same program).
 *
 * The struct fields are private: read and change them only through these
 * functions.
 */
#ifndef CONCUR_SYNC_H
#define CONCUR_SYNC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "concur/time.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Flag for every cc_X_init: the object is shared between processes. */
#define CC_SYNC_PSHARED 1u

/* ---- Lock (threading.Lock) ------------------------------------------------
 * Not owned: any thread may release a locked Lock, as in Python. */
typedef struct cc_lock {
    uint32_t word; /* 0 unlocked, 1 locked, 2 locked with possible waiters */
    uint32_t flags;
} cc_lock;

#define CC_LOCK_INIT {0, 0}

/* Errors: -EINVAL (NULL, unknown flag). */
int cc_lock_init(cc_lock *lock, unsigned flags);
/* Errors: -EINVAL, -EBUSY (locked). */
int cc_lock_destroy(cc_lock *lock);
/* Errors: -EINVAL, -ETIMEDOUT. Acquiring a Lock you hold yourself blocks
 * (until the timeout), exactly as in Python. */
int cc_lock_acquire(cc_lock *lock, cc_duration timeout);
/* Errors: -EINVAL, -EPERM (the lock is not locked). */
int cc_lock_release(cc_lock *lock);
bool cc_lock_locked(const cc_lock *lock);

/* ---- RLock (threading.RLock) ----------------------------------------------
 * Owned by the thread that acquired it, re-entrant up to 2^32-1 levels. The
 * owner is the kernel thread id, so ownership also works across processes. */
typedef struct cc_rlock {
    cc_lock lock;
    uint32_t owner; /* kernel tid of the owner, 0 when free */
    uint32_t count; /* recursion depth, touched only by the owner */
} cc_rlock;

#define CC_RLOCK_INIT {CC_LOCK_INIT, 0, 0}

int cc_rlock_init(cc_rlock *rlock, unsigned flags);
/* Errors: -EINVAL, -EBUSY (held). */
int cc_rlock_destroy(cc_rlock *rlock);
/* Errors: -EINVAL, -ETIMEDOUT, -EOVERFLOW (recursion depth exhausted). */
int cc_rlock_acquire(cc_rlock *rlock, cc_duration timeout);
/* Errors: -EINVAL, -EPERM (the calling thread does not own it). */
int cc_rlock_release(cc_rlock *rlock);
/* True if the calling thread owns it. */
bool cc_rlock_is_owned(const cc_rlock *rlock);
/* The recursion count if the calling thread owns it, else 0. */
uint32_t cc_rlock_count(const cc_rlock *rlock);

/* ---- Condition (threading.Condition) ---------------------------------------
 * Bound at init to a Lock or an RLock. wait and notify require the lock to be
 * held (for a Lock: locked; for an RLock: owned by the caller). notify(n)
 * wakes exactly min(n, number of waiting threads) threads that were waiting
 * when it was called; a thread that starts waiting later is never woken by
 * an earlier notify. Wake-up order is not specified. */
typedef struct cc_condition {
    /* Waiters form groups: group `epoch` (the newest) cannot be notified
     * yet; notify serves group epoch-1 and, once all of it is notified,
     * makes the newest group the one it serves. Every field is changed only
     * with the bound lock held. */
    uint32_t seq[2];     /* futex words, one per group parity */
    uint32_t epoch;      /* the group new waiters join (wraps) */
    uint32_t waiting;    /* threads in wait, notified or not */
    uint32_t newest;     /* waiters in group epoch */
    uint32_t unsignaled; /* waiters in group epoch-1 not yet notified */
    uint32_t permits;    /* notifications of group epoch-1 not yet taken */
    uint32_t lock_kind;  /* 1 Lock, 2 RLock */
    int64_t lock_offset; /* lock address minus this object's address */
    uint32_t flags;
} cc_condition;

/* Errors: -EINVAL (NULL, unknown flag, PSHARED on one but not the other). */
int cc_condition_init(cc_condition *cond, cc_lock *lock, unsigned flags);
int cc_condition_init_rlock(cc_condition *cond, cc_rlock *rlock,
                            unsigned flags);
/* Errors: -EINVAL, -EBUSY (threads waiting). */
int cc_condition_destroy(cc_condition *cond);
/*
 * Releases the lock (an RLock completely, whatever its recursion count),
 * waits for a notify or the timeout, and re-acquires the lock (restoring the
 * recursion count) before returning, in every case.
 * Returns 0 when notified. Errors: -EINVAL, -EPERM (lock not held),
 * -ETIMEDOUT.
 */
int cc_condition_wait(cc_condition *cond, cc_duration timeout);
/* Waits until pred(ctx) is true (checked first, with the lock held).
 * Returns 0 when pred is true, -ETIMEDOUT if it is still false at the
 * deadline; other errors as cc_condition_wait. */
int cc_condition_wait_for(cc_condition *cond, bool (*pred)(void *ctx),
                          void *ctx, cc_duration timeout);
/* Errors: -EINVAL, -EPERM (lock not held). n == 0 does nothing. */
int cc_condition_notify(cc_condition *cond, unsigned n);
int cc_condition_notify_all(cc_condition *cond);

/* ---- Semaphore and BoundedSemaphore ------------------------------------- */
typedef struct cc_semaphore {
    uint32_t value;   /* futex word */
    uint32_t waiters; /* threads asleep or about to sleep */
    uint32_t bound;   /* the maximum value, if bounded (a flag bit) */
    uint32_t flags;
} cc_semaphore;

/* Errors: -EINVAL (NULL, value < 0, value > INT32_MAX, unknown flag). */
int cc_semaphore_init(cc_semaphore *sem, int64_t value, unsigned flags);
/* A BoundedSemaphore: releasing past the initial value is an error. */
int cc_semaphore_init_bounded(cc_semaphore *sem, int64_t value,
                              unsigned flags);
/* Errors: -EINVAL, -EBUSY (threads waiting). */
int cc_semaphore_destroy(cc_semaphore *sem);
/* Errors: -EINVAL, -ETIMEDOUT. */
int cc_semaphore_acquire(cc_semaphore *sem, cc_duration timeout);
/* Adds n (>= 1) and wakes up to n waiters. Errors: -EINVAL (n == 0),
 * -EOVERFLOW (bounded and value + n would pass the bound, or the value would
 * pass INT32_MAX; nothing is released). */
int cc_semaphore_release(cc_semaphore *sem, uint32_t n);
/* The current value (a snapshot). */
uint32_t cc_semaphore_value(const cc_semaphore *sem);

/* ---- Event (threading.Event) ----------------------------------------------
 * A thread waiting when set() is called wakes with success even if clear()
 * follows at once. */
typedef struct cc_event {
    uint32_t word;    /* bit 0: the flag; bits 1..31: number of sets */
    uint32_t waiters;
    uint32_t flags;
} cc_event;

#define CC_EVENT_INIT {0, 0, 0}

int cc_event_init(cc_event *event, unsigned flags);
/* Errors: -EINVAL, -EBUSY (threads waiting). */
int cc_event_destroy(cc_event *event);
int cc_event_set(cc_event *event);
int cc_event_clear(cc_event *event);
bool cc_event_is_set(const cc_event *event);
/* Returns 0 once the flag is (or was, during the wait) set.
 * Errors: -EINVAL, -ETIMEDOUT. */
int cc_event_wait(cc_event *event, cc_duration timeout);

/* ---- Barrier (threading.Barrier) ------------------------------------------
 * parties threads meet; each wait returns a distinct index 0..parties-1 in
 * each round. The action (if any) runs once per round, in the last thread to
 * arrive, before anyone is released; a negative return from it breaks the
 * barrier. A timeout in any waiter, cc_barrier_abort, or cc_barrier_reset
 * while threads wait, breaks it: every waiter then gets CC_EBROKEN_BARRIER,
 * and so does every later wait until cc_barrier_reset. */
typedef int (*cc_barrier_action)(void *ctx);

typedef struct cc_barrier {
    cc_lock lock;
    cc_condition cond;
    uint32_t parties;
    uint32_t count;  /* threads inside wait */
    int32_t state;   /* 0 filling, 1 draining, -1 resetting, -2 broken */
    uint32_t flags;
    cc_duration timeout; /* default for cc_barrier_wait */
    cc_barrier_action action;
    void *action_ctx;
} cc_barrier;

/* Errors: -EINVAL (NULL, parties == 0, bad timeout, unknown flag). */
int cc_barrier_init(cc_barrier *barrier, uint32_t parties,
                    cc_barrier_action action, void *ctx,
                    cc_duration default_timeout, unsigned flags);
/* Errors: -EINVAL, -EBUSY (threads waiting). */
int cc_barrier_destroy(cc_barrier *barrier);
/* Waits with the barrier's default timeout. Returns the index (>= 0).
 * Errors: -EINVAL, CC_EBROKEN_BARRIER; the thread whose action failed gets
 * the action's own negative return instead (Python re-raises the action's
 * exception there and BrokenBarrierError in the others). */
int cc_barrier_wait(cc_barrier *barrier);
/* Waits with an explicit timeout (as Python's wait(timeout)). */
int cc_barrier_wait_timeout(cc_barrier *barrier, cc_duration timeout);
/* Back to the empty, unbroken state; threads waiting get
 * CC_EBROKEN_BARRIER. */
int cc_barrier_reset(cc_barrier *barrier);
/* Breaks the barrier. */
int cc_barrier_abort(cc_barrier *barrier);
bool cc_barrier_broken(cc_barrier *barrier);
uint32_t cc_barrier_parties(const cc_barrier *barrier);
/* Threads waiting now. */
uint32_t cc_barrier_n_waiting(cc_barrier *barrier);

/* ---- Once -----------------------------------------------------------------
 * Runs an initialisation exactly once, however many threads ask; the others
 * wait (BLOCKED on CC_WAIT_ONCE) until it has finished. */
typedef struct cc_once {
    uint32_t state; /* 0 not run, 1 running, 2 running with waiters, 3 done */
    uint32_t runner; /* kernel tid of the thread running it */
    uint32_t flags;
} cc_once;

#define CC_ONCE_INIT {0, 0, 0}

int cc_once_init(cc_once *once, unsigned flags);
/* Returns 0 once fn(ctx) has run (here or elsewhere). Errors: -EINVAL,
 * -EDEADLK (called again from inside fn). */
int cc_once_call(cc_once *once, void (*fn)(void *ctx), void *ctx);
bool cc_once_done(const cc_once *once);

#ifdef __cplusplus
}
#endif

#endif /* CONCUR_SYNC_H */
