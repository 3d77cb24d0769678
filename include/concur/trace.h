/*
 * concur/trace.h — seeing inside a running program: object names, the
 * thread dump, lock debugging with deadlock detection, and the trace
 * timeline (Chrome trace-event JSON that Perfetto opens).
 *
 * Python / elsewhere                          concur
 *   faulthandler.dump_traceback()             cc_dump(stderr)
 *   faulthandler.register(SIGQUIT), Java's    cc_dump_on_sigquit(true) or
 *     kill -3, Go's SIGQUIT traceback           CONCUR_DUMP_ON_SIGQUIT=1
 *   thread names (threading.Thread.name)      cc_name_set for any object
 *   lockdep (Linux), TSan's lock-order check  cc_debug_enable or
 *                                               CONCUR_DEBUG=deadlock
 *   viztracer / chrome://tracing              cc_trace_start or
 *                                               CONCUR_TRACE=out.json
 * Pool statistics are in concur/executor.h (cc_executor_stats).
 *
 * Environment, read once when the library is loaded:
 *   CONCUR_DEBUG=LIST        comma-separated: "locks" (track which locks
 *                            each thread holds), "order" (the lock-order
 *                            check; implies locks), "watchdog" (report
 *                            wait-for cycles among long waits; implies
 *                            locks), "deadlock" (order + watchdog), "all".
 *   CONCUR_DEBUG_WATCHDOG_MS threshold of the watchdog (default 1000).
 *   CONCUR_DEADLOCK_POLICY   "fail" (default), "abort" or "report".
 *   CONCUR_DUMP_ON_SIGQUIT=1 SIGQUIT prints the dump to stderr.
 *   CONCUR_TRACE=FILE.json   record a trace from start-up, written at exit.
 *
 * Cost when off: lock acquire and release load one global flag (relaxed)
 * and branch on it; blocking waits, pool tasks and coroutine switches do the
 * same for tracing.
 * Everything else here costs nothing until it is used.
 */
#ifndef CONCUR_TRACE_H
#define CONCUR_TRACE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "concur/time.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- names -----------------------------------------------------------------
 * Any object may be given a name (a lock, an rlock, a condition, a
 * semaphore, an event, a barrier, a queue, an executor, or anything of your
 * own): dumps, deadlock reports and traces then show the name next to the
 * address. Names are kept in a table keyed by the address; the text is
 * copied. Destroying a concur object (cc_X_destroy, cc_queue_free,
 * cc_executor_free) forgets its name; for other objects call
 * cc_name_clear before the memory is reused. Queues are named at creation
 * (cc_queue_options.name); cc_name_set overrides that for dumps and traces.
 */

/* Longest name kept, in bytes without the NUL; longer names are cut. */
#define CC_NAME_MAX 63

/* Gives obj a name, replacing any earlier one.
 * Errors: -EINVAL (obj or name NULL), -ENOMEM. */
int cc_name_set(const void *obj, const char *name);

/*
 * Copies obj's name into buf (cut to cap - 1 bytes, always NUL-terminated
 * when cap > 0) and returns the full name's length.
 * Errors: -EINVAL (obj NULL, or buf NULL with cap > 0), -ENOENT (no name).
 */
int cc_name_get(const void *obj, char *buf, size_t cap);

/* Forgets obj's name. Errors: -EINVAL (NULL), -ENOENT (it had none). */
int cc_name_clear(const void *obj);

/* ---- the thread dump --------------------------------------------------------
 * cc_dump prints every live concur thread (those concur started, the main
 * thread and other threads that have called into concur): name, ident,
 * native id, daemon flag, state, and, when BLOCKED, on what (kind, name or
 * address) and for how long. With lock tracking on (CC_DEBUG_LOCKS) it also
 * lists the Locks and RLocks each thread holds and who holds the lock a
 * thread waits for; otherwise it says that this is unknown. Then each live
 * pool, thread or process: its state, workers, queue depth and statistics;
 * for a process pool also each worker process (pid, state, the task it
 * runs and for how long).
 *
 * The output is a snapshot taken without stopping anything: a thread may
 * change state while it is printed.
 * Errors: -EINVAL (out NULL), -ENOMEM, -EIO (writing failed).
 * Does not block on any concur object; safe from any thread, not from a
 * signal handler (use cc_dump_on_sigquit for that).
 */
int cc_dump(FILE *out);

/*
 * With enable, SIGQUIT (Ctrl-\ in a terminal, kill -QUIT) prints the dump
 * to stderr and the program goes on. The handler only writes to an
 * eventfd; a dedicated thread (not a concur thread, not in the dump) does
 * the printing. The previous SIGQUIT action is saved and restored when
 * disabled. Errors: -EMFILE/-ENFILE/-ENOMEM/-EAGAIN (no eventfd or
 * thread). Idempotent. Blocks while disabling, until the printing thread
 * has finished any dump in progress.
 */
int cc_dump_on_sigquit(bool enable);

/* ---- lock debugging ------------------------------------------------------ */

typedef enum cc_debug_flag {
    /* Track which Locks and RLocks each thread holds (shown by cc_dump). */
    CC_DEBUG_LOCKS = 1u << 0,
    /* The lock-order graph: an acquisition that would close a cycle of
     * lock orders is reported and handled by the deadlock policy, before
     * it blocks. Implies CC_DEBUG_LOCKS. */
    CC_DEBUG_ORDER = 1u << 1,
    /* A watchdog thread that looks, every threshold / 2, for threads
     * blocked on a Lock, an RLock or a join for longer than the threshold
     * and reports a wait-for cycle among them (a real deadlock) once.
     * Implies CC_DEBUG_LOCKS. */
    CC_DEBUG_WATCHDOG = 1u << 2,
    /* What CONCUR_DEBUG=deadlock turns on. */
    CC_DEBUG_DEADLOCK = CC_DEBUG_ORDER | CC_DEBUG_WATCHDOG,
    CC_DEBUG_ALL = CC_DEBUG_LOCKS | CC_DEBUG_ORDER | CC_DEBUG_WATCHDOG
} cc_debug_flag;

/*
 * Turns debugging features on (flags: an OR of cc_debug_flag). Locks
 * acquired before tracking was on are not known to be held; destroy locks
 * you are done with (cc_lock_destroy) so that their addresses can be
 * reused without false reports. Enabling the watchdog starts its thread.
 * Errors: -EINVAL (unknown bits), -EAGAIN (no watchdog thread).
 */
int cc_debug_enable(unsigned flags);

/*
 * Turns features off. Turning lock tracking off forgets every held lock and
 * the lock-order graph; turning the watchdog off stops and joins its
 * thread. Errors: -EINVAL (unknown bits).
 */
int cc_debug_disable(unsigned flags);

/* The features on now (an OR of cc_debug_flag). */
unsigned cc_debug_flags(void);

typedef enum cc_deadlock_policy {
    CC_DEADLOCK_FAIL,  /* report, then the acquire returns -EDEADLK */
    CC_DEADLOCK_ABORT, /* report, then abort() (for a debugger or core) */
    CC_DEADLOCK_REPORT /* report once per new lock order, then acquire */
} cc_deadlock_policy;

/* What a lock-order violation does (default CC_DEADLOCK_FAIL).
 * Errors: -EINVAL. */
int cc_debug_set_deadlock_policy(cc_deadlock_policy policy);

/* How long a wait must last before the watchdog looks at it (default 1 s;
 * at least 1 ms). Errors: -EINVAL. */
int cc_debug_set_watchdog_threshold(cc_duration threshold);

/*
 * Where reports go: fn(text, ctx) is called with each report, a complete
 * multi-line text, from the thread that found the problem: the acquiring
 * thread (which may hold locks of its own, so the hook should take none of
 * the program's locks) or the watchdog thread. No lock of the debugging
 * machinery is held. NULL restores the default, which writes the text to
 * stderr.
 */
typedef void (*cc_debug_report_fn)(const char *report, void *ctx);
void cc_debug_set_report_hook(cc_debug_report_fn fn, void *ctx);

/* ---- the trace timeline -----------------------------------------------------
 * While a trace is being recorded, concur records, per thread, every blocked
 * wait (what on, from when to when), every task a thread pool runs (which
 * pool, how it ended), the life of every process pool worker (its start,
 * each task it ran, how it exited; recorded by the parent, drawn as a
 * process of its own) and every coroutine task (created, each slice it ran
 * between switches, how it ended; an async track named by its future's
 * name), into bounded per-thread buffers: a thread that fills its buffer
 * records nothing more, and the file says how many events were dropped.
 * cc_trace_stop writes Chrome trace-event JSON, which https://ui.perfetto.dev
 * and chrome://tracing open as a timeline; see docs/observability.md.
 */

/* Events each thread keeps (64 bytes each) when 0 is passed. */
#define CC_TRACE_DEFAULT_EVENTS 16384u

/*
 * Starts recording; the trace is written to path by cc_trace_stop (or at
 * normal process exit, if still recording). events_per_thread 0 means
 * CC_TRACE_DEFAULT_EVENTS. Errors: -EINVAL (path NULL or empty),
 * -EALREADY (already recording), -ENOMEM.
 */
int cc_trace_start(const char *path, size_t events_per_thread);

/*
 * Stops recording and writes the file. Returns the number of events
 * written. Errors: -ESRCH (not recording), -errno of fopen or write
 * (the recording is dropped either way). Blocks until threads recording an
 * event at this moment have finished it.
 */
long cc_trace_stop(void);

/* True while a trace is being recorded. */
bool cc_trace_active(void);

#ifdef __cplusplus
}
#endif

#endif /* CONCUR_TRACE_H */
