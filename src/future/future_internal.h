/*
 * future_internal.h — the future's layout and the internal API that the
 * executors (thread pool first) and later the event loop build on.
 *
 * Lock order: each future has one small internal lock (f->lock). It guards
 * the callback list, the waiter list and every transition to a done state.
 * It is a leaf lock: nothing else is acquired while it is held, no user code
 * (callback, destructor) runs under it, and no thread ever holds two
 * futures' locks at once (wait-many and as_completed visit futures one at a
 * time). Hence it cannot take part in a deadlock. The only work done under
 * it besides list updates is waking a wait-many group's owner, which is what
 * keeps the group alive (see struct cci_future_waiter).
 *
 * State word (f->state), one 32-bit futex word:
 *   bits 0-1  cc_future_state
 *   bit 2     SLEEPERS: some thread sleeps (or is about to) on this word in
 *             cc_future_wait; the completer wakes only if it is set
 *   bit 3     BYTES: the result is bytes (u.bytes), not a void * (u.value)
 *   bit 4     POOLED: the memory is a block_pool.h block, not malloc's; set
 *             at creation and kept by every transition
 *   bit 5     LISTENERS: a callback or a wait-many waiter was registered
 *             (set under the lock, with an RMW, before linking it; never
 *             cleared): cci_future_finish_owned then takes the lock
 *   bit 6     OWNED: RUNNING under cci_future_start_owned; its runner may
 *             finish it without the lock, so no other thread may complete
 *             it (they get -EALREADY); dropped on completion
 * PENDING -> RUNNING is a lock-free CAS (the pool's dequeue path); every
 * transition to FINISHED or CANCELLED is a CAS made under the lock, after
 * the result fields were written, with release order so that a reader who
 * sees a done state (acquire) also sees the outcome. One exception: the
 * thread running a task finishes its future without the lock when
 * LISTENERS is clear (cci_future_finish_owned), since there is no list to
 * detach and no other completer. Once done, the outcome
 * fields never change again, so readers never need the lock.
 *
 * Why OWNED: the runner writes its result before its CAS, with no lock, so
 * an outcome written by another completer at the same moment would race
 * with it, and the loser of the two CASes would leave its outcome in the
 * winner's future (a caller's set_result_bytes that lost freed its copy
 * while the future still pointed at it). So a completer of a future that
 * has an executor first sets LISTENERS (which sends a later finish to the
 * lock) and, if the runner already owns the future, gives up.
 */
#ifndef CCI_FUTURE_INTERNAL_H
#define CCI_FUTURE_INTERNAL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "concur/future.h"

#define CCI_FUTURE_STATE_MASK 3u
#define CCI_FUTURE_SLEEPERS 4u
#define CCI_FUTURE_BYTES 8u
#define CCI_FUTURE_POOLED 16u
#define CCI_FUTURE_LISTENERS 32u
#define CCI_FUTURE_OWNED 64u

struct cci_future_callback;
struct cci_future_waiter;

struct cc_future {
    _Atomic uint32_t state; /* see above; futex word for cc_future_wait */
    _Atomic uint32_t lock;  /* 0 free, 1 locked, 2 locked with sleepers */
    _Atomic uint32_t refs;
    int32_t error; /* 0, or the negative code of a failed future */
    union {
        struct {
            void *ptr;
            void (*destructor)(void *);
        } value;
        struct {
            void *data; /* malloc'd, owned */
            size_t len;
        } bytes;
    } u;
    struct cci_future_callback *callbacks; /* newest first; under lock */
    struct cci_future_waiter *waiters;     /* under lock */
    char *message;  /* malloc'd, set with the error, immutable after */
    void *executor; /* opaque binding for executors, NULL for plain futures */
};

/* ---- allocation ------------------------------------------------------------
 * A future with its executor record fits a block_pool.h block when the
 * record is at most CCI_BLOCK_SIZE - 64 bytes (the thread pool's is 32);
 * larger ones and callback records come from cci_future_alloc (malloc).
 */
void *cci_future_alloc(size_t size);
void cci_future_dealloc(void *mem);

/* ---- executor binding ---------------------------------------------------- */

/*
 * Like cc_future_new, but the future records executor (opaque, never
 * dereferenced here) and carries extra_size bytes of storage for the
 * executor's task record in the same allocation (aligned for any type,
 * uninitialised, freed with the future). A pool that keeps its task record
 * there pays one malloc per task: 64 + record bytes (a 24-byte record
 * {next, fn, ctx} makes an 88-byte request, a 96-byte glibc chunk).
 * Errors: -EINVAL (out NULL), -ENOMEM.
 */
int cci_future_new_ex(cc_future **out, void *executor, size_t extra_size);

static inline void *cci_future_executor(const cc_future *f)
{
    return f->executor;
}

/* The extra storage of cci_future_new_ex (undefined for other futures). */
static inline void *cci_future_extra(cc_future *f)
{
    return (char *)f + sizeof(struct cc_future);
}

/*
 * Cancellation needs no executor hook: cancel of a PENDING future only marks
 * it CANCELLED (waking waiters, running callbacks). The pool learns it when
 * it dequeues the task: cc_future_set_running_or_notify_cancel returns
 * -ECANCELED and the task is dropped. That call is one CAS, no lock.
 */

/*
 * The pool's completion in one call: status >= 0 sets the void * result
 * (value, destructor); status < 0 sets that error with message copied if
 * not NULL (if the copy fails, the error is set without the message, so a
 * future always completes). Returns what set_result / set_error return.
 * Costs one uncontended lock, one CAS and no system call when nobody sleeps
 * on the future and no callback is registered.
 */
int cci_future_finish(cc_future *f, int status, void *value,
                      void (*destructor)(void *), const char *message);

/*
 * cc_future_set_running_or_notify_cancel for a runner that will finish f
 * with cci_future_finish_owned (a pool worker taking its task; f must have
 * an executor): f becomes RUNNING and OWNED, and from then on only this
 * thread can complete it (set_result and set_error from others return
 * -EALREADY). Returns as cc_future_set_running_or_notify_cancel.
 */
int cci_future_start_owned(cc_future *f);

/*
 * cci_future_finish for the thread that started f with
 * cci_future_start_owned: when nobody registered a callback or waiter, the
 * outcome is published with one CAS and no lock (a thread sleeping in
 * cc_future_wait is still woken).
 */
int cci_future_finish_owned(cc_future *f, int status, void *value,
                            const char *message);

/* ---- callback records in the caller's memory (event loop tasks) ----------
 * An awaiting coroutine embeds one record in its task and so awaits without
 * allocating. The record must stay valid until it has run or been removed.
 */
struct cci_future_callback {
    struct cci_future_callback *next;
    cc_future_callback fn;
    void *ctx;
    bool owned; /* allocated by cc_future_add_done_callback: freed when run */
};

/* Registers node (fn and ctx set by the caller; next and owned are the
 * future's); if f is already done runs it at once in this thread.
 * Returns 0, or -EINVAL (NULL f, node or fn). */
int cci_future_add_callback_node(cc_future *f,
                                 struct cci_future_callback *node);
/* Unregisters node if it has not been taken for running; returns whether it
 * was removed (false: it ran or is about to run in the completing thread). */
bool cci_future_remove_callback_node(cc_future *f,
                                     struct cci_future_callback *node);

/* ---- lightweight waiters (wait-many, as_completed) -------------------------
 * A group is owned by one waiting thread; it registers one waiter node per
 * future. The completer, holding the future's lock, unlinks every node,
 * pushes it on the group's fired stack, bumps the group word and wakes the
 * owner if it sleeps. All of that happens under the future's lock, so once
 * the owner has unregistered a node (which takes that lock) no completer
 * touches the node or the group any more: that is what lets both live on
 * the owner's stack or in its iterator.
 *
 * Group word: bit 0 = the owner sleeps (or is about to) on the word; bits
 * 1..31 count fired nodes (at most INT32_MAX nodes per group, so it never
 * wraps).
 */
struct cci_future_group {
    _Atomic uint32_t word;
    _Atomic bool failed; /* a fired future failed (FIRST_EXCEPTION) */
    struct cci_future_waiter *_Atomic fired; /* newest first */
};

struct cci_future_waiter {
    struct cci_future_waiter *prev, *next; /* in f->waiters, under f->lock */
    struct cci_future_waiter *fired_next;  /* in group->fired */
    struct cci_future_group *group;
    cc_future *future;
    bool linked;     /* in f->waiters; under f->lock */
    bool registered; /* register_waiter linked it; owner's field only */
};

#define CCI_FUTURE_GROUP_SLEEPING 1u
#define CCI_FUTURE_GROUP_FIRED 2u

/*
 * Links w (future and group already set) into f's waiters. Returns true if
 * linked; false if f is already done (w not linked: count it yourself).
 */
bool cci_future_register_waiter(cc_future *f, struct cci_future_waiter *w);
/* If w was registered: unlinks it if it is still linked, and in any case
 * synchronises with a completer that fired it, so w and its group may be
 * freed afterwards. Does nothing for a node that was never registered. */
void cci_future_unregister_waiter(cc_future *f, struct cci_future_waiter *w);

/* Waits until f is done or the absolute deadline (0: do not wait) passes.
 * Returns 0 or -ETIMEDOUT. BLOCKED on CC_WAIT_FUTURE with f while asleep. */
int cci_future_wait_until(cc_future *f, int64_t deadline);

/* How many pause instructions a waiter spins before sleeping (0 on a single
 * CPU, where spinning only delays the thread it waits for). */
unsigned cci_future_spin_limit(void);

/* ---- reading the state --------------------------------------------------- */

static inline uint32_t cci_future_load(const cc_future *f)
{
    return atomic_load_explicit(&((cc_future *)f)->state, memory_order_acquire);
}

static inline bool cci_future_word_done(uint32_t s)
{
    uint32_t st = s & CCI_FUTURE_STATE_MASK;
    return st == CC_FUTURE_FINISHED || st == CC_FUTURE_CANCELLED;
}

/* Done and failed with an error (FIRST_EXCEPTION's notion). */
static inline bool cci_future_failed(const cc_future *f)
{
    uint32_t s = cci_future_load(f);
    return (s & CCI_FUTURE_STATE_MASK) == CC_FUTURE_FINISHED && f->error != 0;
}

/* The futex view of an atomic word: _Atomic uint32_t has the size and
 * representation of uint32_t on every Linux ABI and the kernel only reads
 * it. */
static inline uint32_t *cci_futex_word(_Atomic uint32_t *w)
{
    return (uint32_t *)w;
}

#endif /* CCI_FUTURE_INTERNAL_H */
