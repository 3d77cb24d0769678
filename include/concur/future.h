/*
 * concur/future.h — the result of work that may not have finished yet
 * (concurrent.futures.Future), waiting for many futures
 * (concurrent.futures.wait) and taking them as they complete
 * (concurrent.futures.as_completed).
 *
 * Life cycle, with the legal transitions (anything else is refused with an
 * error code and changes nothing):
 *
 *   PENDING --set_running_or_notify_cancel--> RUNNING --set_*--> FINISHED
 *   PENDING --set_* (as Python allows)---------------------------> FINISHED
 *   PENDING --cancel--> CANCELLED
 *
 * FINISHED and CANCELLED are final; "done" means one of them. A FINISHED
 * future holds either a result (a void * or bytes) or a failure (a negative
 * error code and an optional message), never both.
 *
 * Two sides, both public. The consumer waits (cc_future_result, _error,
 * _wait), asks (_done, _running, _cancelled) and cancels. The producer (an
 * executor, or any code acting as a promise) calls
 * cc_future_set_running_or_notify_cancel and then one of cc_future_set_result,
 * _set_result_bytes, _set_result_bytes_owned or _set_error.
 *
 * Ownership: futures are reference counted. cc_future_new returns one
 * reference; every call below requires the caller to hold a reference for
 * the whole call, waits included. The result belongs to the future: a void *
 * result's destructor (if given) runs exactly once, when the last reference
 * is dropped; bytes are freed then. Pointers read out of a future (bytes,
 * message) stay valid while the reader holds a reference.
 *
 * Waiting: every call that waits takes a cc_duration (CC_FOREVER, CC_NOWAIT
 * or nanoseconds), spins very briefly, then sleeps with the calling thread
 * BLOCKED on CC_WAIT_FUTURE with the future as object (see concur/thread.h).
 * A call that finds the future done never blocks and never enters the
 * kernel. Completing a future enters the kernel only to wake threads that
 * actually sleep on it.
 *
 * Done callbacks run exactly once, in order of registration, in the thread
 * that completes the future (set_result, set_error or cancel), after waiting
 * threads have been woken; or at once in the registering thread if the future
 * is already done. No concur lock is held while they run, so a callback may
 * call any function here on any future.
 *
 * Error codes used throughout:
 *   -EINVAL     NULL or invalid argument, bad timeout, result of the other
 *               kind (bytes asked of a void * result or the reverse)
 *   -ETIMEDOUT  the timeout expired before the future was done
 *   -ECANCELED  the future was cancelled (Python's CancelledError)
 *   -EALREADY   the future is already finished, or already running for
 *               set_running_or_notify_cancel (Python's InvalidStateError and
 *               RuntimeError); the first result or error is kept. Also for
 *               set_* on a thread pool's future that its worker is running:
 *               the worker completes it (Python would let either win)
 *   -ENOMEM     allocation failed; nothing was changed
 * A failed future reports its own negative code, which may collide with the
 * codes above (a task that itself failed with -ETIMEDOUT); tell them apart
 * with cc_future_done / cc_future_cancelled, or wait with cc_future_wait
 * first.
 *
 * Size: sizeof(struct cc_future) is 64 bytes (one cache line on x86-64) and
 * a future that nobody waits on and nobody attaches a callback or message to
 * never allocates anything else. Callback records (32 bytes each) and error
 * messages are allocated only when used; waiters live on the waiting
 * thread's stack (wait-many allocates only above 16 futures) or inside the
 * as-completed iterator.
 */
#ifndef CONCUR_FUTURE_H
#define CONCUR_FUTURE_H

#include <stdbool.h>
#include <stddef.h>

#include "concur/time.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct cc_future cc_future;

typedef enum cc_future_state {
    CC_FUTURE_PENDING,
    CC_FUTURE_RUNNING,
    CC_FUTURE_FINISHED,
    CC_FUTURE_CANCELLED
} cc_future_state;

/* "PENDING", "RUNNING", "FINISHED", "CANCELLED"; "UNKNOWN" otherwise. */
const char *cc_future_state_name(cc_future_state state);

/* ---- life time ----------------------------------------------------------- */

/*
 * Creates a PENDING future and stores a new reference in *out.
 * Errors: -EINVAL (out NULL), -ENOMEM. Never blocks.
 */
int cc_future_new(cc_future **out);

/* Adds a reference; returns f (NULL for NULL). */
cc_future *cc_future_ref(cc_future *f);

/*
 * Drops a reference. The last one frees the future: the void * result's
 * destructor runs (in this thread), bytes and message are freed, and
 * callbacks still registered on a future that never completed are discarded
 * without being called. NULL is ignored. Dropping the last reference while
 * another thread still uses the future is a caller bug.
 */
void cc_future_unref(cc_future *f);

/*
 * Gives the memory of freed futures back to the kernel now, as malloc_trim
 * does for malloc. Futures come from per-thread slabs of 64 KiB that are
 * kept for reuse when they empty; one left unused for a second has its
 * pages offered back lazily (MADV_FREE, at the allocator's next slab
 * operation), which the resident size only shows under memory pressure.
 * Call this after a burst of many pending futures to see the resident size
 * drop at once. Returns the bytes given back.
 * Any thread; never blocks for long (one system call per empty slab).
 */
size_t cc_future_trim(void);

/* ---- asking -------------------------------------------------------------- */

/* The state now (may be stale when read). NULL gives CC_FUTURE_PENDING. */
cc_future_state cc_future_get_state(const cc_future *f);
/* False for NULL. */
bool cc_future_cancelled(const cc_future *f);
bool cc_future_running(const cc_future *f);
/* True once FINISHED or CANCELLED. */
bool cc_future_done(const cc_future *f);

/*
 * Python's cancel(): a PENDING future becomes CANCELLED, its waiters wake,
 * its callbacks run in the calling thread, and true is returned. True also
 * for a future already CANCELLED; false for a RUNNING or FINISHED one, and
 * for NULL. Never blocks (apart from running callbacks).
 */
bool cc_future_cancel(cc_future *f);

/* ---- consumer: waiting for the outcome ----------------------------------- */

/*
 * Waits until f is done. Returns 0 when done (finished, failed or
 * cancelled). Errors: -EINVAL (NULL, bad timeout), -ETIMEDOUT.
 * Blocks (BLOCKED on CC_WAIT_FUTURE) unless f is already done.
 */
int cc_future_wait(cc_future *f, cc_duration timeout);

/*
 * Python's result(timeout): waits like cc_future_wait, then returns 0 and
 * stores the void * result in *value (value may be NULL to only learn the
 * outcome). Errors: -EINVAL (f NULL, bad timeout, the result is bytes),
 * -ETIMEDOUT, -ECANCELED, or the future's own error code if it failed.
 * *value is written only on success; the pointer stays owned by the future.
 */
int cc_future_result(cc_future *f, cc_duration timeout, void **value);

/*
 * Like cc_future_result for a bytes result: stores a pointer to the bytes,
 * owned by the future and valid while you hold a reference, in *data and
 * their length in *len (either may be NULL). A zero-length result may give a
 * NULL data pointer. Errors: as cc_future_result, with -EINVAL when the
 * result is a void *.
 */
int cc_future_result_bytes(cc_future *f, cc_duration timeout, const void **data,
                           size_t *len);

/*
 * Python's exception(timeout): waits like cc_future_wait, then returns the
 * future's error code if it failed, or 0 if it finished with a result.
 * Errors: -EINVAL (NULL, bad timeout), -ETIMEDOUT, -ECANCELED.
 */
int cc_future_error(cc_future *f, cc_duration timeout);

/*
 * The message given with the error, or NULL (no message, not failed, not
 * done). Never blocks. Valid while you hold a reference.
 */
const char *cc_future_error_message(const cc_future *f);

/* ---- done callbacks ------------------------------------------------------ */

/*
 * A done callback. f is borrowed for the call (take a reference to keep it).
 * A negative return is reported on stderr as
 *     concur: exception calling callback for <Future at 0x... state=...>:
 *     callback returned -5 (Input/output error)
 * and the remaining callbacks still run (Python logs and carries on too).
 */
typedef int (*cc_future_callback)(cc_future *f, void *ctx);

/*
 * Python's add_done_callback: fn(f, ctx) runs once f is done, in the thread
 * that completes it; if f is already done, at once in the calling thread
 * (and the call still returns 0 if fn fails: the failure is reported on
 * stderr). Safe to call while another thread completes f: fn runs exactly
 * once either way. Errors: -EINVAL (NULL f or fn), -ENOMEM (not registered).
 */
int cc_future_add_done_callback(cc_future *f, cc_future_callback fn, void *ctx);

/* ---- producer (promise) side --------------------------------------------- */

/*
 * Called by whoever is about to run the work (an executor worker right after
 * taking the task). Returns 0 when f went PENDING -> RUNNING: run the work
 * and then set its outcome. Returns -ECANCELED when f had been cancelled:
 * skip the work (cancel already woke waiters and ran callbacks).
 * Errors: -EINVAL (NULL), -EALREADY (RUNNING or FINISHED: a bug in the
 * producer; Python raises RuntimeError). Never blocks, never allocates.
 */
int cc_future_set_running_or_notify_cancel(cc_future *f);

/*
 * Finishes f with a void * result. destructor (may be NULL) is called with
 * value exactly once, when the future is freed. Wakes waiters, then runs the
 * done callbacks in the calling thread.
 * Errors: -EINVAL (NULL f), -EALREADY (already finished), -ECANCELED
 * (cancelled). On any error the future keeps its first outcome, destructor is
 * not called and value stays the caller's.
 */
int cc_future_set_result(cc_future *f, void *value,
                         void (*destructor)(void *value));

/*
 * Finishes f with a copy of len bytes at data (data may be NULL only when
 * len is 0). Errors: as cc_future_set_result, plus -EINVAL (data NULL with
 * len > 0) and -ENOMEM.
 */
int cc_future_set_result_bytes(cc_future *f, const void *data, size_t len);

/*
 * Finishes f with bytes handed over: data must come from malloc (or be NULL
 * with len 0); on success the future owns it and frees it with free().
 * On error the caller still owns data. Errors: as cc_future_set_result_bytes
 * without -ENOMEM.
 */
int cc_future_set_result_bytes_owned(cc_future *f, void *data, size_t len);

/*
 * Finishes f as failed with error (must be negative) and, if fmt is not
 * NULL, a printf-style message copied into the future.
 * Errors: -EINVAL (NULL f, error >= 0), -ENOMEM (the message could not be
 * allocated; f is unchanged, so retry with fmt NULL), -EALREADY, -ECANCELED.
 */
int cc_future_set_error(cc_future *f, int error, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ---- waiting for many (concurrent.futures.wait) -------------------------- */

typedef enum cc_return_when {
    CC_ALL_COMPLETED,   /* every future is done */
    CC_FIRST_COMPLETED, /* at least one is done */
    CC_FIRST_EXCEPTION  /* one has failed (cancelled does not count), or all
                           are done */
} cc_return_when;

/*
 * Python's wait(fs, timeout, return_when). Waits until the condition holds
 * or the timeout expires, then reports which are done: done[i] (if done is
 * not NULL) is set for every position, and the number of positions done is
 * returned (n means all). Reaching the timeout is not an error, as in
 * Python: compare the count with n. The same future may appear at several
 * positions; each position is reported. The condition already holding (n ==
 * 0 included) returns at once.
 * Errors: -EINVAL (fs NULL with n > 0, a NULL entry, n > INT32_MAX, unknown
 * return_when, bad timeout), -ENOMEM (FIRST_* with more than 16 futures).
 * Blocks as BLOCKED on CC_WAIT_FUTURE with a future that is not yet done as
 * object. Never holds two futures' locks at once.
 */
int cc_future_wait_many(cc_future *const *fs, size_t n,
                        cc_return_when return_when, cc_duration timeout,
                        bool *done);

/* ---- as completed (concurrent.futures.as_completed) ---------------------- */

typedef struct cc_as_completed cc_as_completed;

/*
 * Starts iterating over fs: each distinct future is yielded once, those
 * already done first (in the order given), the others in the order they
 * complete. The timeout covers the whole iteration and starts now. The
 * iterator holds a reference to each future until cc_as_completed_free.
 * Errors: -EINVAL (out NULL, fs NULL with n > 0, a NULL entry,
 * n > INT32_MAX, bad timeout), -ENOMEM.
 */
int cc_as_completed_new(cc_as_completed **out, cc_future *const *fs, size_t n,
                        cc_duration timeout);

/*
 * Returns 1 and stores the next done future in *out (borrowed: valid until
 * cc_as_completed_free, take a reference to keep it longer); 0 when every
 * future has been yielded; -ETIMEDOUT when the deadline has passed and no
 * future not yet yielded is done (Python raises TimeoutError; here later
 * calls still yield futures that completed meanwhile). Errors: -EINVAL.
 * Blocks as cc_future_wait_many. One thread at a time per iterator.
 */
int cc_as_completed_next(cc_as_completed *it, cc_future **out);

/* Drops the iterator and its references. NULL is ignored. */
void cc_as_completed_free(cc_as_completed *it);

#ifdef __cplusplus
}
#endif

#endif /* CONCUR_FUTURE_H */
