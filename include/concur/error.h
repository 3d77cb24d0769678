/*
 * concur/error.h — error codes.
 *
 * Every fallible concur call returns an int: 0 (or a documented non-negative
 * value) on success, a negative code on failure. The codes are negative errno
 * values (-EINVAL, -ETIMEDOUT, -ENOMEM, ...) plus the concur codes below,
 * which live far above any errno value. concur never sets errno.
 * Codes used across the library:
 *   -EINVAL     an argument is invalid (NULL, negative duration, bad flag)
 *   -ETIMEDOUT  a timeout expired, including CC_NOWAIT on a busy object
 *   -EPERM      releasing something the caller does not hold
 *   -EDEADLK    the call would wait for the calling thread itself
 *   -EBUSY      destroying an object that is still in use
 *   -ENOMEM     memory could not be allocated; nothing was changed
 */
#ifndef CONCUR_ERROR_H
#define CONCUR_ERROR_H

/* The errno names (EINVAL, ETIMEDOUT, ...) that concur's codes negate. */
#include <errno.h>

#ifdef __cplusplus
extern "C" {
#endif

enum cc_error {
    /* A barrier was aborted, reset while threads waited, timed out, or its
     * action failed (Python's threading.BrokenBarrierError). */
    CC_EBROKEN_BARRIER = -10001,
    /* An executor can no longer run tasks, e.g. its initializer failed
     * (concurrent.futures' BrokenExecutor). */
    CC_EBROKEN_EXECUTOR = -10002,
    /* The object was shut down: a queue, an executor, a loop. */
    CC_ESHUTDOWN = -10003,
    /* The worker running a task died (crash, kill, exit) before finishing. */
    CC_EWORKER_LOST = -10004,
    /* Non-blocking or timed get on an empty queue (queue.Empty). */
    CC_EEMPTY = -10005,
    /* Non-blocking or timed put on a full queue (queue.Full). */
    CC_EFULL = -10006,
    /* A task or thread failed without giving a more specific code. */
    CC_EFAILED = -10007,
    /* A task function is not registered where it must run. */
    CC_ENOT_REGISTERED = -10008
};

/*
 * Returns a static, human-readable text for an error code: the concur codes
 * above, or strerror's text for -errno values. Unknown codes give
 * "unknown error". Thread-safe; the text must not be freed.
 */
const char *cc_strerror(int err);

#ifdef __cplusplus
}
#endif

#endif /* CONCUR_ERROR_H */
