/*
 * concur/loop.h — an event loop with stackful coroutines (Python's asyncio).
 *
 * Python                                   concur
 *   asyncio.new_event_loop()               cc_loop_new
 *   loop.close()                           cc_loop_close, cc_loop_free
 *   loop.run_forever() / stop()            cc_loop_run_forever, cc_loop_stop
 *   loop.run_until_complete(fut)           cc_loop_run_until_complete
 *   asyncio.get_running_loop()             cc_loop_current
 *   loop.time()                            cc_loop_time
 *   loop.call_soon(cb)                     cc_loop_call_soon
 *   loop.call_later(delay, cb)             cc_loop_call_later
 *   loop.call_at(when, cb)                 cc_loop_call_at
 *   handle.cancel()                        cc_handle_cancel
 *   loop.call_soon_threadsafe(cb)          cc_loop_call_soon_threadsafe
 *   loop.add_reader / remove_reader        cc_loop_add_reader / _remove_reader
 *   loop.add_writer / remove_writer        cc_loop_add_writer / _remove_writer
 *   loop.add_signal_handler / remove_      cc_loop_add_signal_handler / ...
 *   loop.run_in_executor(ex, fn, arg)      cc_loop_run_in_executor
 *   child watcher (pidfd)                  cc_loop_watch_child
 *
 * Thread rule (an exception to the library-wide rule in concur.h): a loop
 * and everything attached to it belong to the thread that runs it. Only
 * cc_loop_call_soon_threadsafe may be called from other threads (and
 * cc_future_* on futures, which are thread-safe as always). Calls from
 * another thread while the loop runs are refused with -EPERM; calls from
 * several threads while it does not run are a caller bug.
 *
 * Ordering: each iteration of the loop runs exactly the callbacks that were
 * ready when it began (asyncio's rule), in the order they became ready;
 * callbacks scheduled while it runs wait for the next iteration. Timers due
 * at the same time run in the order they were scheduled.
 *
 * Callbacks: a cc_loop_fn runs on the loop's thread with no concur lock
 * held; it may call anything here, including scheduling more callbacks,
 * stopping the loop and cancelling handles. It must not block for long:
 * nothing else on the loop runs meanwhile.
 *
 * Times: delays are cc_duration (nanoseconds; CC_NOWAIT = 0 means "at the
 * next iteration"), absolute times are cc_monotonic_ns() values.
 */
#ifndef CONCUR_LOOP_H
#define CONCUR_LOOP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "concur/executor.h"
#include "concur/future.h"
#include "concur/time.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct cc_loop cc_loop;
typedef struct cc_handle cc_handle;

/* A callback scheduled on a loop. */
typedef void (*cc_loop_fn)(cc_loop *loop, void *ctx);

/* ---- life time ----------------------------------------------------------- */

typedef struct cc_loop_options {
    /* Coroutine stack size in bytes; 0: 256 KiB. Only touched pages cost
     * memory; an overflow hits a guard page and faults. */
    size_t stack_size;
    /* Stacks of finished coroutines kept for reuse; 0: 64. */
    size_t stack_cache;
    /* Executor for cc_loop_run_in_executor with ex NULL (borrowed; must
     * outlive the loop). NULL: a thread pool created on first use and shut
     * down by cc_loop_close. */
    cc_executor *executor;
} cc_loop_options;

/*
 * Creates a loop (opts may be NULL). The loop owns an epoll instance and an
 * eventfd (two file descriptors) and, once a signal handler is added, a
 * pipe. The thread dump (cc_dump, concur/trace.h) lists it, with its tasks
 * and what each awaits, until it is closed; cc_name_set names it there.
 * Errors: -EINVAL (out NULL), -ENOMEM, -EMFILE and other kernel codes.
 */
int cc_loop_new(cc_loop **out, const cc_loop_options *opts);

/*
 * Python's close(), with asyncio.run's clean-up first: cancels the tasks
 * still alive and runs the loop until they have finished, runs the
 * callbacks already scheduled, drops timers and fd watchers, removes signal
 * handlers, waits for run_in_executor calls in flight and shuts down the
 * default executor. Afterwards every call that schedules work fails with
 * CC_ESHUTDOWN. Closing twice is harmless.
 * Errors: -EINVAL (NULL), -EBUSY (the loop is running).
 * Blocks while tasks finish and executor work drains.
 */
int cc_loop_close(cc_loop *loop);

/* cc_loop_close, then frees the loop (and forgets its name). Must not be
 * called while it runs. Handles you still hold stay valid (cc_handle_unref
 * them). NULL is ignored. */
void cc_loop_free(cc_loop *loop);

/* ---- running ------------------------------------------------------------- */

/*
 * Runs the loop until cc_loop_stop. A stop requested while the loop is not
 * running makes the next run return after one iteration (asyncio's rule).
 * The calling thread is BLOCKED on CC_WAIT_IO with the loop as object while
 * it sleeps waiting for events.
 * Errors: -EINVAL (NULL), -EBUSY (this loop, or another one, is already
 * running in this thread; or this loop runs in another thread),
 * CC_ESHUTDOWN (closed).
 */
int cc_loop_run_forever(cc_loop *loop);

/*
 * Runs the loop until f is done, then returns f's outcome as
 * cc_future_error would: 0 (finished with a result), its error code, or
 * -ECANCELED. Returns -EINTR if the loop was stopped before f was done.
 * Other errors as cc_loop_run_forever, plus -EINVAL (f NULL).
 */
int cc_loop_run_until_complete(cc_loop *loop, cc_future *f);

/* Makes the running loop return once the current iteration ends.
 * Errors: -EINVAL, -EPERM (called from another thread while it runs: use
 * cc_loop_call_soon_threadsafe with a callback that calls this). */
int cc_loop_stop(cc_loop *loop);

bool cc_loop_is_running(const cc_loop *loop);
bool cc_loop_is_closed(const cc_loop *loop);

/* The loop running in the calling thread, or NULL (get_running_loop). */
cc_loop *cc_loop_current(void);

/* The loop's clock: cc_monotonic_ns(). */
int64_t cc_loop_time(const cc_loop *loop);

/* ---- callbacks and timers ------------------------------------------------ */

/*
 * Schedules fn(loop, ctx) for the next iteration. If out is not NULL it
 * receives a reference to a handle that can cancel the call; drop it with
 * cc_handle_unref. Never runs fn in the caller.
 * Errors: -EINVAL, -EPERM (see the thread rule), -ENOMEM, CC_ESHUTDOWN.
 */
int cc_loop_call_soon(cc_loop *loop, cc_loop_fn fn, void *ctx, cc_handle **out);

/*
 * Schedules fn to run once delay has passed (CC_NOWAIT: the next iteration
 * that looks at timers; CC_FOREVER is refused), measured on cc_loop_time.
 * Errors: as cc_loop_call_soon, plus -EINVAL for a negative delay.
 */
int cc_loop_call_later(cc_loop *loop, cc_duration delay, cc_loop_fn fn,
                       void *ctx, cc_handle **out);

/* Like cc_loop_call_later at an absolute cc_loop_time. A time in the past
 * runs at the next iteration. */
int cc_loop_call_at(cc_loop *loop, int64_t when, cc_loop_fn fn, void *ctx,
                    cc_handle **out);

/*
 * Schedules fn(loop, ctx) from any thread, including the loop's own and
 * one that is not a concur thread. Lock-free; the loop is woken only when
 * it goes from nothing pending to something pending, so a burst of calls
 * costs it one wake-up. Calls from one thread run in the order made.
 * Errors: -EINVAL, -ENOMEM, CC_ESHUTDOWN (closed; fn will never run).
 * A call that races cc_loop_close may be refused or may run during it.
 */
int cc_loop_call_soon_threadsafe(cc_loop *loop, cc_loop_fn fn, void *ctx);

/*
 * Cancels the call if it has not started: returns true if this call
 * cancelled it, false if it had already run, was already cancelled, or h is
 * NULL. Cancelling a timer costs O(log n) and frees its slot at once.
 * Loop thread only.
 */
bool cc_handle_cancel(cc_handle *h);
bool cc_handle_cancelled(const cc_handle *h);
/* The time a timer is due (cc_loop_time clock); 0 for a call_soon handle. */
int64_t cc_handle_when(const cc_handle *h);
/* Drops the reference from call_soon/call_later/call_at. Loop thread, or
 * any thread once the loop has stopped. NULL is ignored. */
void cc_handle_unref(cc_handle *h);

/* ---- file descriptors ---------------------------------------------------- */

/*
 * Calls fn(loop, ctx) at every iteration while fd is readable (level
 * triggered, as asyncio). Replaces an earlier reader of fd. The fd stays
 * yours: remove the reader before closing it.
 * Errors: -EINVAL (fd < 0, fn NULL), -EPERM, -ENOMEM, CC_ESHUTDOWN, and
 * kernel codes (-EBADF; -EPERM for a regular file, which epoll refuses).
 */
int cc_loop_add_reader(cc_loop *loop, int fd, cc_loop_fn fn, void *ctx);
/* Returns 0 if a reader was removed, -ENOENT if there was none, -EINVAL,
 * -EPERM. A callback already scheduled by readiness does not run. */
int cc_loop_remove_reader(cc_loop *loop, int fd);
int cc_loop_add_writer(cc_loop *loop, int fd, cc_loop_fn fn, void *ctx);
int cc_loop_remove_writer(cc_loop *loop, int fd);

/* ---- signals ------------------------------------------------------------- */

/*
 * Calls fn(loop, ctx) on the loop's thread after signum arrives (from a
 * self-pipe written by the real handler, so fn may do anything). Signals
 * that arrive close together may be reported once. Replaces this loop's
 * earlier handler for signum. One loop per signal in the process.
 * Errors: -EINVAL (bad signum, SIGKILL, SIGSTOP, fn NULL), -EBUSY (another
 * loop handles signum), -EPERM, -ENOMEM, CC_ESHUTDOWN, kernel codes.
 */
int cc_loop_add_signal_handler(cc_loop *loop, int signum, cc_loop_fn fn,
                               void *ctx);
/* Restores the default disposition. Returns 0, -ENOENT (no handler),
 * -EINVAL, -EPERM. */
int cc_loop_remove_signal_handler(cc_loop *loop, int signum);

/* ---- threads and processes ----------------------------------------------- */

/*
 * Python's run_in_executor: submits fn(arg) to ex (NULL: the loop's default
 * executor, see cc_loop_options) and stores in *out a new future that
 * completes on the loop's thread with fn's result or error (message
 * included), so its done callbacks run there and a coroutine can await it
 * cheaply. Cancelling *out cancels the work if it has not started. The loop
 * must run for *out to complete.
 * Errors: -EINVAL, -EPERM, -ENOMEM, CC_ESHUTDOWN, and whatever
 * cc_executor_submit returns.
 */
int cc_loop_run_in_executor(cc_loop *loop, cc_executor *ex, cc_task_fn fn,
                            void *arg, cc_future **out);

/*
 * Watches the child process pid through a pidfd and stores in *out a new
 * future that finishes, on the loop's thread, once the child has exited:
 * its result is (void *)(intptr_t)returncode with Python's meaning (the
 * exit status, or -N after signal N). The child is reaped. Cancelling *out
 * only drops the result: the child is still reaped when it exits while the
 * loop runs; a loop closed first stops watching without reaping.
 * Errors: -EINVAL, -EPERM, -ENOMEM, CC_ESHUTDOWN, -ESRCH (no such process),
 * -ECHILD (not a child of this process), -ENOSYS (kernel before 5.3).
 */
int cc_loop_watch_child(cc_loop *loop, pid_t pid, cc_future **out);

/* ---- tasks: coroutines with a future ----------------------------------------
 *
 * Python                                   concur
 *   asyncio.run(main())                    cc_run
 *   loop.create_task(coro()) / create_task cc_loop_create_task, cc_create_task
 *   await fut                              cc_await
 *   asyncio.wait_for(aw, timeout)          cc_wait_for
 *   asyncio.wait(fs, timeout, return_when) cc_async_wait
 *   asyncio.gather(*fs)                    cc_gather
 *   asyncio.sleep(d) / sleep(0)            cc_async_sleep / cc_async_yield
 *   task.cancel()                          cc_task_cancel
 *   asyncio.current_task()                 cc_task_current
 *   async with asyncio.timeout(d)          cc_timeout_enter / cc_timeout_exit
 *   async with asyncio.TaskGroup() as tg   cc_async_group_init/_spawn/_join
 *   asyncio.Lock/Event/Semaphore/Queue     cc_async_lock, _event, _semaphore,
 *                                          _queue
 *
 * A task runs fn(arg, &result) (the cc_task_fn of concur/executor.h) as a
 * stackful coroutine on the loop's thread: plain sequential C whose waits
 * (cc_await, cc_async_sleep, the cc_async_* primitives, streams) suspend
 * the coroutine and let the loop run others, instead of blocking the
 * thread. The task is a cc_future: it finishes with fn's result (a 0
 * return) or its error (a negative return; cc_task_fail adds a message),
 * so anything that waits on futures (cc_future_wait from another thread,
 * cc_future_add_done_callback, cc_gather) waits on tasks too.
 *
 * Cancellation is sticky and cooperative: cc_task_cancel makes the wait the
 * task is suspended in return -ECANCELED, and so does every later wait of
 * that task, at once, so code that ignores the first one still unwinds.
 * The function then returns (usually -ECANCELED), which is how the task
 * finishes: its future fails with that code. A task cancelled before it
 * started never runs, and its future is CANCELLED. (A future that is
 * RUNNING cannot become CANCELLED, hence the two forms; both give
 * -ECANCELED to whoever awaits them.)
 *
 * Stacks: each task gets its own stack (cc_loop_options.stack_size, 256 KiB
 * by default, of which only touched pages cost memory) with a guard page
 * below it; deep recursion or large arrays on the stack belong in a thread.
 * A coroutine must not block the thread for long (use run_in_executor).
 */

/*
 * Creates a task running fn(arg, &result) on loop; it starts at a later
 * iteration. If out is not NULL it receives a new reference to the task's
 * future; without it the loop keeps the task alive until it finishes.
 * Errors: -EINVAL, -EPERM (thread rule), -ENOMEM, CC_ESHUTDOWN.
 */
int cc_loop_create_task(cc_loop *loop, cc_task_fn fn, void *arg,
                        cc_future **out);

/* Inside a task or a callback of a running loop: creates a task on the
 * running loop. Errors: as cc_loop_create_task, -EPERM when no loop runs
 * in this thread. */
int cc_create_task(cc_task_fn fn, void *arg, cc_future **out);

/*
 * asyncio.run: creates a loop, runs main(arg, &result) as a task until it
 * finishes, closes the loop (cancelling tasks left behind) and returns
 * main's return value; its result goes to *result (may be NULL).
 * Errors: -EINVAL, -EBUSY (a loop already runs in this thread), and those
 * of cc_loop_new.
 */
int cc_run(cc_task_fn main, void *arg, void **result);

/*
 * Requests the cancellation of a task (see above). Returns true if the
 * request was made (or the task was already cancelled), false if the task
 * has finished, or f is NULL or not a task. Loop thread only; from other
 * threads use cc_loop_call_soon_threadsafe. Never blocks.
 */
bool cc_task_cancel(cc_future *task);

/* Whether cancellation of the task was requested. */
bool cc_task_cancelling(const cc_future *task);

/* The task running in this thread (borrowed), or NULL outside tasks. */
cc_future *cc_task_current(void);

/* ---- waiting inside a task --------------------------------------------------
 * Each of these suspends the calling task until the wait ends. Outside a
 * task they block the calling thread instead, as the cc_future_* calls do;
 * on the thread of a running loop (in a plain callback) that would stall
 * the loop, so they refuse with -EDEADLK there.
 * Deadlines: every wait also ends at the deadline of the innermost
 * enclosing timeout scope, with -ETIMEDOUT.
 */

/*
 * await f: waits until f is done and returns what cc_future_result returns
 * (0 with the void * result in *result, which may be NULL; f's error;
 * -ECANCELED if f was cancelled). Returns -ECANCELED also when the calling
 * task is cancelled (f is left alone: cancel it yourself if you mean to).
 * Awaiting a done future does not suspend. Errors: -EINVAL, -ETIMEDOUT
 * (an enclosing scope expired), -ENOMEM, -EDEADLK.
 */
int cc_await(cc_future *f, void **result);

/*
 * asyncio.wait_for: like cc_await with a time limit. When it expires, f is
 * cancelled (a task through cc_task_cancel, which is then awaited until it
 * has finished; another future through cc_future_cancel) and -ETIMEDOUT is
 * returned. CC_FOREVER waits without limit.
 */
int cc_wait_for(cc_future *f, cc_duration timeout, void **result);

/*
 * asyncio.wait: waits until return_when holds for fs (see
 * cc_future_wait_many) or the timeout passes, then sets done[i] (done may
 * be NULL) and returns how many are done. The timeout passing is not an
 * error. Errors: -EINVAL, -ECANCELED (the caller was cancelled), -ENOMEM,
 * -ETIMEDOUT (an enclosing scope expired), -EDEADLK.
 */
int cc_async_wait(cc_future *const *fs, size_t n, cc_return_when return_when,
                  cc_duration timeout, bool *done);

/*
 * asyncio.gather: waits until every future is done and returns 0, or
 * returns as soon as one fails, with its error code (the others keep
 * running, as in Python). A cancelled future counts as failed with
 * -ECANCELED. If the caller is cancelled meanwhile, every future in fs is
 * cancelled too and -ECANCELED is returned. Results are read from the
 * futures afterwards. Errors: as cc_async_wait.
 */
int cc_gather(cc_future *const *fs, size_t n);

/* asyncio.sleep(d): 0 after d, -ECANCELED, -ETIMEDOUT (a scope ended
 * first), -EINVAL (a negative d other than CC_FOREVER, which sleeps until
 * cancelled). Outside a task this is cc_sleep. */
int cc_async_sleep(cc_duration d);

/* asyncio.sleep(0): lets every other ready task and callback run once.
 * Errors: -ECANCELED; -EPERM outside a task. */
int cc_async_yield(void);

/* ---- timeout scopes (asyncio.timeout) ---------------------------------------
 * Every wait inside the scope ends at its deadline at the latest, with
 * -ETIMEDOUT, and every later wait inside it fails at once; leaving the
 * scope says whether that happened. Scopes nest (the earliest deadline
 * wins) and must be left in reverse order of entering, in the same task.
 * The struct is the caller's, typically on the coroutine's stack; its
 * fields are private.
 */
typedef struct cc_timeout {
    int64_t deadline;
    int64_t effective; /* min of this and the enclosing scopes */
    struct cc_timeout *outer;
    void *task;
    bool expired;
} cc_timeout;

/* Errors: -EINVAL (NULL, bad timeout), -EPERM (not in a task). */
int cc_timeout_enter(cc_timeout *scope, cc_duration timeout);
/* Returns 0, or -ETIMEDOUT if a wait in the scope was cut short by its
 * deadline. Errors: -EINVAL (not the innermost scope of this task). */
int cc_timeout_exit(cc_timeout *scope);

/* ---- task groups (asyncio.TaskGroup) ----------------------------------------
 * Structured concurrency: children spawned in a group, and joining waits
 * for every one of them. When a child fails (returns an error other than
 * -ECANCELED), every other child is cancelled and later spawns are refused;
 * join returns the first such error. If the task that joins is cancelled
 * while it waits, the children are cancelled and join still waits for them
 * (then returns -ECANCELED). The struct is the caller's (on the coroutine's
 * stack is fine) and must not go away before join has returned; its fields
 * are private. Loop thread only.
 */
typedef struct cc_async_group {
    cc_loop *loop;
    void *children; /* live children (struct cci_task) */
    void *joiner;   /* the task waiting in join */
    size_t live;
    int error;
    bool joined;
} cc_async_group;

/* On the thread of a running loop (inside a task or a callback).
 * Errors: -EINVAL, -EPERM (no running loop in this thread). */
int cc_async_group_init(cc_async_group *g);
/* Like cc_create_task, in the group. Errors: as cc_create_task, plus
 * -ECANCELED (a child failed: the group is winding down) and -EINVAL
 * after join. */
int cc_async_group_spawn(cc_async_group *g, cc_task_fn fn, void *arg,
                         cc_future **out);
/* Waits for every child; returns 0, the first child's error, or
 * -ECANCELED. Inside a task only (-EPERM otherwise). */
int cc_async_group_join(cc_async_group *g);

/* ---- coroutine primitives (asyncio.Lock, Event, Semaphore, Queue) -----------
 * Waiting suspends the calling task, never the thread. Like asyncio's, they
 * belong to one loop's thread and are not thread-safe (use the sync module
 * between threads). A wait that would have to suspend outside a task fails
 * with -EPERM; CC_NOWAIT never suspends. Waits end with -ECANCELED when the
 * task is cancelled and -ETIMEDOUT at their timeout or an enclosing scope's
 * deadline. Wake-ups go to the longest waiter first, but a running task may
 * take a freed resource before the woken one runs (fairness is not
 * promised). The structs are the caller's; their fields are private.
 * _destroy returns -EBUSY while tasks wait (or the lock is held); a
 * successful one forgets the object's name (cc_name_set), as
 * cc_async_queue_free does.
 */
typedef struct cc_async_waitlist {
    void *head, *tail;
} cc_async_waitlist;

typedef struct cc_async_lock {
    cc_async_waitlist waiters;
    bool locked;
} cc_async_lock;

int cc_async_lock_init(cc_async_lock *lock);
int cc_async_lock_destroy(cc_async_lock *lock);
/* Errors: -EINVAL, -ETIMEDOUT, -ECANCELED, -EPERM, -ENOMEM. */
int cc_async_lock_acquire(cc_async_lock *lock, cc_duration timeout);
/* Errors: -EINVAL, -EPERM (not locked: Python's RuntimeError). */
int cc_async_lock_release(cc_async_lock *lock);
bool cc_async_lock_locked(const cc_async_lock *lock);

typedef struct cc_async_event {
    cc_async_waitlist waiters;
    bool flag;
} cc_async_event;

int cc_async_event_init(cc_async_event *event);
int cc_async_event_destroy(cc_async_event *event);
/* Wakes every waiting task. */
int cc_async_event_set(cc_async_event *event);
int cc_async_event_clear(cc_async_event *event);
bool cc_async_event_is_set(const cc_async_event *event);
/* 0 once set. Errors: -EINVAL, -ETIMEDOUT, -ECANCELED, -EPERM, -ENOMEM. */
int cc_async_event_wait(cc_async_event *event, cc_duration timeout);

typedef struct cc_async_semaphore {
    cc_async_waitlist waiters;
    unsigned value;
} cc_async_semaphore;

int cc_async_semaphore_init(cc_async_semaphore *sem, unsigned value);
int cc_async_semaphore_destroy(cc_async_semaphore *sem);
/* Errors: -EINVAL, -ETIMEDOUT, -ECANCELED, -EPERM, -ENOMEM. */
int cc_async_semaphore_acquire(cc_async_semaphore *sem, cc_duration timeout);
/* Errors: -EINVAL, -EOVERFLOW (value at UINT_MAX). */
int cc_async_semaphore_release(cc_async_semaphore *sem);
unsigned cc_async_semaphore_value(const cc_async_semaphore *sem);

/* asyncio.Queue: FIFO of void * items, bounded (maxsize > 0) or not. */
typedef struct cc_async_queue cc_async_queue;

/* Errors: -EINVAL, -ENOMEM. */
int cc_async_queue_new(cc_async_queue **out, size_t maxsize);
/* NULL is ignored. Must not be called while tasks wait on it. */
void cc_async_queue_free(cc_async_queue *q);
/* Waits for room. Errors: -EINVAL, CC_EFULL (full at the timeout,
 * CC_NOWAIT included), -ETIMEDOUT (a scope), -ECANCELED, -EPERM, -ENOMEM. */
int cc_async_queue_put(cc_async_queue *q, void *item, cc_duration timeout);
/* Waits for an item. Errors: -EINVAL, CC_EEMPTY (empty at the timeout),
 * -ETIMEDOUT (a scope), -ECANCELED, -EPERM, -ENOMEM. */
int cc_async_queue_get(cc_async_queue *q, void **item, cc_duration timeout);
size_t cc_async_queue_size(const cc_async_queue *q);
/* Errors: -EINVAL (NULL, or more calls than items put: ValueError). */
int cc_async_queue_task_done(cc_async_queue *q);
/* Waits until every item put has been marked done. Errors: as _get with
 * -ETIMEDOUT for the timeout. */
int cc_async_queue_join(cc_async_queue *q, cc_duration timeout);

/* ---- TCP streams (asyncio.open_connection, start_server) --------------------
 *
 * Python                                   concur
 *   await open_connection(host, port)      cc_open_connection
 *   await start_server(cb, host, port)     cc_start_server
 *   await reader.read(n)                   cc_stream_read
 *   await reader.readexactly(n)            cc_stream_readexactly
 *   await reader.readline()                cc_stream_readline
 *   writer.write(data)                     cc_stream_write
 *   await writer.drain()                   cc_stream_drain
 *   writer.write_eof()                     cc_stream_write_eof
 *   writer.close()                         cc_stream_close
 *   server.close()                         cc_server_close, cc_server_free
 *
 * A stream is one connected TCP socket (reader and writer in one object),
 * used by tasks of one loop. Its waits suspend the calling task and take a
 * timeout (and honour enclosing scopes); they fail with -ETIMEDOUT,
 * -ECANCELED, or the socket's error (-ECONNRESET, -EPIPE, ...), and, like
 * every wait, -EPERM outside a task. One task may read while another
 * writes; two tasks reading (or writing) at once get -EBUSY. Closing a
 * stream while a task waits on it is a caller bug. Writes never block:
 * data the kernel does not take at once is buffered and sent as the
 * socket allows; drain waits until the buffer is small again (flow
 * control). Sockets have TCP_NODELAY set, as asyncio does.
 */
typedef struct cc_stream cc_stream;
typedef struct cc_server cc_server;

/*
 * Connects to host:port (a numeric IPv4/IPv6 address or a name, resolved
 * in the loop's default executor). Inside a task. Stores a new stream in
 * *out (close it with cc_stream_close).
 * Errors: -EINVAL, -EPERM, -ETIMEDOUT, -ECANCELED, -ECONNREFUSED and other
 * socket codes, -EHOSTUNREACH (the name did not resolve), -ENOMEM.
 */
int cc_open_connection(const char *host, uint16_t port, cc_duration timeout,
                       cc_stream **out);

/*
 * The function a server runs for each connection, as a task of its own:
 * the stream is the connection's; it is closed when the function returns.
 * Its return value is the task's (errors are not reported elsewhere).
 */
typedef int (*cc_stream_handler)(cc_stream *stream, void *ctx);

/*
 * Listens on host:port (host NULL: 127.0.0.1; port 0: a free port, see
 * cc_server_port) and runs handler(stream, ctx) for each connection on
 * loop (NULL: the loop running in this thread). Loop thread.
 * Errors: -EINVAL, -EPERM, -EADDRINUSE and other socket codes, -ENOMEM,
 * CC_ESHUTDOWN.
 */
int cc_start_server(cc_loop *loop, const char *host, uint16_t port,
                    cc_stream_handler handler, void *ctx, cc_server **out);

/* The port the server listens on (0 for NULL). */
uint16_t cc_server_port(const cc_server *server);
/* Stops accepting and closes the listening socket; connections already
 * accepted go on. Returns 0; -EINVAL. */
int cc_server_close(cc_server *server);
/* cc_server_close, then frees. NULL is ignored. Loop thread. */
void cc_server_free(cc_server *server);

/*
 * Reads up to n bytes (n > 0), waiting until at least one is available.
 * Returns the count, 0 at end of stream, or a negative error.
 */
ssize_t cc_stream_read(cc_stream *s, void *buf, size_t n, cc_duration timeout);

/*
 * Reads exactly n bytes. Returns 0, -EPIPE if the stream ended first
 * (asyncio's IncompleteReadError; the partial data is dropped), or another
 * error (on a timeout the bytes read so far stay buffered for the next
 * read).
 */
int cc_stream_readexactly(cc_stream *s, void *buf, size_t n,
                          cc_duration timeout);

/*
 * Reads a line ending in '\n' into buf (cap bytes) and returns its length,
 * newline included; at the end of the stream returns what is left (without
 * newline), then 0. Errors: -EMSGSIZE (no newline within cap bytes; the
 * data stays buffered), and those of cc_stream_read.
 */
ssize_t cc_stream_readline(cc_stream *s, char *buf, size_t cap,
                           cc_duration timeout);

/* Queues n bytes for sending (copies them); never waits. Errors: -EINVAL,
 * -EPIPE (write_eof or close happened, or the peer is gone), -ENOMEM, and
 * socket errors. */
int cc_stream_write(cc_stream *s, const void *buf, size_t n);

/* Waits until the send buffer has drained below its low-water mark
 * (16 KiB; the high-water mark is 64 KiB). Errors: as cc_stream_read. */
int cc_stream_drain(cc_stream *s, cc_duration timeout);

/* Sends what is buffered (waiting for the kernel if needed: inside a task
 * only) and then shuts down the sending side. Errors: as cc_stream_drain. */
int cc_stream_write_eof(cc_stream *s);

/* Closes the connection and frees s. Data still buffered is sent if the
 * kernel takes it at once, else dropped: drain first to be sure. NULL is
 * ignored. Returns 0. */
int cc_stream_close(cc_stream *s);

/* The socket (for setsockopt and the like; do not read or close it). */
int cc_stream_fd(const cc_stream *s);

#ifdef __cplusplus
}
#endif

#endif /* CONCUR_LOOP_H */
