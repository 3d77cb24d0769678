/*
 * concur/thread.h — threads with an observable life cycle (threading.Thread),
 * thread-local storage (threading.local), sleep, timers (threading.Timer) and
 * the hook for failed threads (threading.excepthook).
 *
 * Life cycle, as in Python:
 *
 *   NEW --start--> RUNNING <--> BLOCKED --> ... --> TERMINATED
 *
 * A thread is NEW from cc_thread_new until cc_thread_start, RUNNING while it
 * executes its function, BLOCKED while it waits inside any blocking concur
 * call (lock, condition, semaphore, event, barrier, once, join, sleep, and in
 * later modules queue, future and I/O waits), and TERMINATED once its function
 * has returned. While BLOCKED, cc_thread_wait_info tells what it waits on.
 * Threads that concur did not start (the main thread, threads made with raw
 * pthread_create) get a record the first time they call into concur in a way
 * that needs one; they show as RUNNING or BLOCKED like any other.
 *
 * Thread objects are reference counted: cc_thread_new returns one reference,
 * cc_thread_ref adds one, cc_thread_unref drops one. A running thread holds a
 * reference to itself, so dropping yours does not stop or free a running
 * thread; it only means you can no longer join it.
 *
 * Daemon threads and process exit: concur registers an atexit handler the
 * first time a thread is started. When the process exits normally (return
 * from main or exit()), that handler joins every non-daemon thread started by
 * concur that is still alive, except the thread calling exit. Daemon threads
 * are not waited for and vanish with the process. _exit(), abort(), a fatal
 * signal or quick_exit() skip atexit handlers and so wait for nothing. The
 * handler runs in the order atexit defines (after handlers registered later).
 */
#ifndef CONCUR_THREAD_H
#define CONCUR_THREAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "concur/time.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct cc_thread cc_thread;

/* The function a thread runs. Its return value is the thread's status:
 * 0 or positive means success, negative means the thread failed (a negative
 * error code by convention). An object method runs concurrently by passing
 * the object as ctx. */
typedef int (*cc_thread_fn)(void *ctx);

typedef enum cc_thread_state {
    CC_THREAD_NEW,
    CC_THREAD_RUNNING,
    CC_THREAD_BLOCKED,
    CC_THREAD_TERMINATED
} cc_thread_state;

/* What a BLOCKED thread waits on. */
typedef enum cc_wait_kind {
    CC_WAIT_NONE,
    CC_WAIT_LOCK,
    CC_WAIT_RLOCK,
    CC_WAIT_CONDITION,
    CC_WAIT_SEMAPHORE,
    CC_WAIT_EVENT,
    CC_WAIT_BARRIER,
    CC_WAIT_ONCE,
    CC_WAIT_JOIN,
    CC_WAIT_SLEEP,
    CC_WAIT_QUEUE,
    CC_WAIT_FUTURE,
    CC_WAIT_IO,
    CC_WAIT_PROCESS,
    CC_WAIT_OTHER
} cc_wait_kind;

typedef struct cc_wait_info {
    cc_wait_kind kind;  /* CC_WAIT_NONE when the thread is not blocked */
    const void *object; /* the lock, event, thread, ... waited on */
    int64_t since_ns;   /* cc_monotonic_ns() when the wait began */
} cc_wait_info;

/* Whether a new thread is a daemon. INHERIT (the zero value) copies the
 * creating thread's flag, as Python does; the main thread is not a daemon. */
typedef enum cc_daemon_mode {
    CC_DAEMON_INHERIT = 0,
    CC_DAEMON_NO,
    CC_DAEMON_YES
} cc_daemon_mode;

typedef struct cc_thread_options {
    const char *name;      /* NULL: "Thread-N"; copied, any length */
    cc_daemon_mode daemon; /* see cc_daemon_mode */
    size_t stack_size;     /* 0: the system default; else at least 16 KiB */
} cc_thread_options;

/* Texts for logs and dumps: "NEW", "RUNNING", ...; "lock", "event", ... */
const char *cc_thread_state_name(cc_thread_state state);
const char *cc_wait_kind_name(cc_wait_kind kind);

/*
 * Creates a NEW thread that will run fn(ctx). opts may be NULL for defaults.
 * On success stores a new reference in *out and returns 0.
 * Errors: -EINVAL (out or fn NULL, stack_size below 16 KiB), -ENOMEM.
 * Does not block. Any thread may call it.
 */
int cc_thread_new(cc_thread **out, cc_thread_fn fn, void *ctx,
                  const cc_thread_options *opts);

/*
 * Starts a NEW thread. Returns 0 once the thread exists (it may not have run
 * yet). Errors: -EINVAL (NULL), -EALREADY (started before), -EAGAIN (the
 * system could not create a thread; the thread stays NEW and may be started
 * again later).
 */
int cc_thread_start(cc_thread *t);

/*
 * Waits until t has terminated or the timeout expires. The calling thread is
 * BLOCKED on CC_WAIT_JOIN meanwhile. Joining a terminated thread again
 * returns 0 at once. Errors: -EINVAL (NULL or bad timeout), -ESRCH (not
 * started), -EDEADLK (t is the calling thread), -ETIMEDOUT.
 */
int cc_thread_join(cc_thread *t, cc_duration timeout);

/*
 * After t has terminated: stores its function's return value in *status and
 * returns 0. Errors: -EINVAL (NULL), -EBUSY (not terminated yet).
 */
int cc_thread_status(const cc_thread *t, int *status);

/* After a failed thread has terminated: the message it gave to
 * cc_thread_fail, or NULL. Valid as long as you hold a reference. */
const char *cc_thread_error_message(const cc_thread *t);

/* True from the moment start succeeded until the function has returned. */
bool cc_thread_is_alive(const cc_thread *t);

/* The thread's name; the text stays valid as long as you hold a reference,
 * even if another thread renames it meanwhile (old names are kept until the
 * thread object is freed). Renaming a running thread also renames it for
 * the OS (first 15 bytes, as seen by top and gdb). Errors: -EINVAL,
 * -ENOMEM. */
const char *cc_thread_name(const cc_thread *t);
int cc_thread_set_name(cc_thread *t, const char *name);

bool cc_thread_is_daemon(const cc_thread *t);
/* Errors: -EINVAL (NULL), -EBUSY (already started, as in Python). */
int cc_thread_set_daemon(cc_thread *t, bool daemon);

/* Python's ident: a number unique among all threads this process has had
 * (never reused), 0 before start. */
uint64_t cc_thread_ident(const cc_thread *t);
/* The kernel's thread id (gettid), 0 before the thread runs. */
int64_t cc_thread_native_id(const cc_thread *t);

/* The state now. Any thread may ask at any time; the answer may be stale by
 * the time it is read. */
cc_thread_state cc_thread_get_state(const cc_thread *t);

/* What t waits on now (kind CC_WAIT_NONE if it is not blocked). Returns 0,
 * or -EINVAL for NULL arguments. */
int cc_thread_wait_info(const cc_thread *t, cc_wait_info *out);

/* Adds a reference; returns t. */
cc_thread *cc_thread_ref(cc_thread *t);
/* Drops a reference; the last one frees the thread object (and reaps the OS
 * thread once it has finished). NULL is ignored. */
void cc_thread_unref(cc_thread *t);

/*
 * The calling thread's object (a borrowed reference, valid while the calling
 * thread runs). Threads not started by concur get a record on first call,
 * named "MainThread" for the main thread and "Dummy-N" for others, as in
 * Python. Returns NULL only if that record cannot be allocated.
 */
cc_thread *cc_thread_current(void);

/* The main thread's object (borrowed, valid until process exit). */
cc_thread *cc_thread_main(void);

/* Number of threads alive that concur knows: started by concur and not yet
 * terminated, plus the main thread and foreign threads with a record. */
size_t cc_thread_active_count(void);

/*
 * Snapshot of the threads counted by cc_thread_active_count. On success
 * stores a malloc'd array of new references in *out and its length in
 * *count; release it with cc_thread_list_free. Errors: -EINVAL, -ENOMEM.
 */
int cc_thread_enumerate(cc_thread ***out, size_t *count);
void cc_thread_list_free(cc_thread **list, size_t count);

/*
 * Records a failure message (printf format) for the calling thread and
 * returns status, so a thread function can end with
 *     return cc_thread_fail(-EIO, "cannot read %s", path);
 * A status >= 0 is replaced by CC_EFAILED: a failure is always negative.
 * When the function returns a negative status, the excepthook is called.
 */
int cc_thread_fail(int status, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* What the excepthook receives (threading.ExceptHookArgs). */
typedef struct cc_thread_failure {
    cc_thread *thread;   /* borrowed for the duration of the call */
    int status;          /* the negative status */
    const char *message; /* cc_thread_fail's message, or NULL */
} cc_thread_failure;

typedef void (*cc_thread_excepthook)(const cc_thread_failure *failure,
                                     void *ctx);

/*
 * Replaces the hook called, in the failing thread, when a thread function
 * returns a negative status. NULL restores the default, which prints
 *     Exception in thread NAME: MESSAGE (STATUS TEXT)
 * to stderr. Thread-safe; a hook already running finishes with the old one.
 */
void cc_thread_set_excepthook(cc_thread_excepthook hook, void *ctx);

/*
 * Sleeps for d. The calling thread is BLOCKED on CC_WAIT_SLEEP meanwhile.
 * Returns 0, or -EINVAL for a negative d (CC_FOREVER included: a thread that
 * must wait forever should wait on something).
 */
int cc_sleep(cc_duration d);

/* ---- thread-local storage (threading.local) ------------------------------
 * Each thread sees its own value, NULL until it sets one. When a thread
 * exits with a non-NULL value, destructor(value) runs in that thread.
 * The number of cc_local objects alive at once is limited by the system
 * (PTHREAD_KEYS_MAX, 1024 on glibc). The caller owns the cc_local memory. */
typedef struct cc_local {
    unsigned int key;
    int initialized;
} cc_local;

/* Errors: -EINVAL, -EAGAIN (no keys left). */
int cc_local_init(cc_local *local, void (*destructor)(void *value));
/* Destructors do not run for values still set; free those first. */
int cc_local_destroy(cc_local *local);
void *cc_local_get(const cc_local *local);
/* Errors: -EINVAL, -ENOMEM. */
int cc_local_set(cc_local *local, void *value);

/* ---- timer (threading.Timer) ---------------------------------------------
 * A thread that waits for a delay and then runs fn(ctx), unless cancelled
 * first. The library allocates it: cc_timer_new / cc_timer_free. */
typedef struct cc_timer cc_timer;

/* Errors: -EINVAL (NULL out/fn, bad delay), -ENOMEM. opts as for threads
 * (NULL: name "Timer-N"). Does not start the timer. */
int cc_timer_new(cc_timer **out, cc_duration delay, cc_thread_fn fn,
                 void *ctx, const cc_thread_options *opts);
/* Errors as cc_thread_start. */
int cc_timer_start(cc_timer *timer);
/* Stops the timer if it is still waiting; returns 0 whether or not fn had
 * already run (as Python does). Errors: -EINVAL. Never blocks. */
int cc_timer_cancel(cc_timer *timer);
/* True once fn has been called (it may still be running). */
bool cc_timer_fired(const cc_timer *timer);
/* Joins the timer's thread; errors as cc_thread_join. */
int cc_timer_join(cc_timer *timer, cc_duration timeout);
/* The timer's thread (borrowed) for state, name and ident. */
cc_thread *cc_timer_thread(cc_timer *timer);
/* Cancels, joins and frees. NULL is ignored. Blocks while fn runs. */
void cc_timer_free(cc_timer *timer);

#ifdef __cplusplus
}
#endif

#endif /* CONCUR_THREAD_H */
