/*
 * trace_internal.h — the hooks that the lower modules (sync, thread, queue,
 * executor) call into the trace module, and what the trace files share.
 *
 * Every hook sits behind one global switch read with a relaxed load and a
 * __builtin_expect: while a feature is off, a hooked hot path (lock acquire
 * and release, a blocking wait's end, a pool task) pays one load and one
 * predictable branch, nothing else. Relaxed is enough: a switch flipped by
 * another thread is seen a little late at worst, and every slow path
 * re-checks the switch under its own lock before it changes shared state.
 */
#ifndef CCI_TRACE_INTERNAL_H
#define CCI_TRACE_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "concur/thread.h"
#include "concur/time.h"
#include "concur/trace.h"

/* ---- the switches (state.c) ---------------------------------------------- */

/* Hidden: the library's own code reads them PC-relative, one instruction,
 * instead of through the global offset table (PIC objects, which both the
 * shared and the static library are built from). */
#define CCI_HIDDEN __attribute__((visibility("hidden")))

/* cc_debug_flag bits that are on; 0 when lock debugging is off. */
extern CCI_HIDDEN uint32_t cci_debug_state;
/* 1 while a trace is recorded. */
extern CCI_HIDDEN uint32_t cci_trace_state;
/* Number of names in the name table (0: lookups can be skipped). */
extern CCI_HIDDEN uint32_t cci_names_used;

static inline bool cci_lockdep_on(void)
{
    return __builtin_expect(
        __atomic_load_n(&cci_debug_state, __ATOMIC_RELAXED) != 0, 0);
}

static inline bool cci_trace_on(void)
{
    return __builtin_expect(
        __atomic_load_n(&cci_trace_state, __ATOMIC_RELAXED) != 0, 0);
}

/* ---- lock debugging (lockdep.c)
 * ---------------------------------------------- A Lock or RLock acquisition
 * calls, while cci_lockdep_on(): cci_lockdep_before  (may refuse with -EDEADLK,
 * by policy) then the real acquire, then cci_lockdep_acquired with the caller's
 * return address; every release of the underlying cc_lock calls
 * cci_lockdep_released before the lock word is cleared (so a new holder's
 * record can never be removed by the old holder). An RLock is keyed by its
 * address, which is also the address of its inner cc_lock, so the inner release
 * forgets it. */
int cci_lockdep_before(const void *lock, cc_wait_kind kind, cc_duration timeout,
                       const void *site);
void cci_lockdep_acquired(const void *lock, cc_wait_kind kind,
                          const void *site);
void cci_lockdep_released(const void *lock);

/* ---- object destruction
 * --------------------------------------------------------- A destroyed
 * object's name and lock-order node must go, or a new object at the same
 * address would inherit them. Costs two relaxed loads when nothing is named and
 * debugging is off. */
void cci_object_forget_slow(const void *obj);

static inline void cci_object_destroyed(const void *obj)
{
    if (__atomic_load_n(&cci_names_used, __ATOMIC_RELAXED) != 0 ||
        __atomic_load_n(&cci_debug_state, __ATOMIC_RELAXED) != 0)
        cci_object_forget_slow(obj);
}

/* The same for objects that are never locks (futures): only their name can
 * outlive them, so debugging mode costs them nothing. One relaxed load
 * when nothing is named. */
static inline void cci_named_object_destroyed(const void *obj)
{
    if (__atomic_load_n(&cci_names_used, __ATOMIC_RELAXED) != 0)
        cci_object_forget_slow(obj);
}

/* ---- names (names.c) ----------------------------------------------------- */

/* Sets a name that the library chose (a queue's or a pool's); failure to
 * allocate only loses the name. */
void cci_name_set_default(const void *obj, const char *name);
/* Copies obj's name into buf (cap > 0); false (buf "") if it has none. */
bool cci_name_lookup(const void *obj, char *buf, size_t cap);
void cci_names_forget(const void *obj);
void cci_names_atfork_prepare(void);
void cci_names_atfork_parent(void);
void cci_names_atfork_child(void);

/* ---- lock debugging internals shared with dump.c ------------------------- */

/* One held Lock or RLock, as the dump shows it. */
typedef struct cci_held_info {
    const void *lock;
    const struct cc_thread *holder;
    cc_wait_kind kind;
    const void *site;
    int64_t since_ns;
} cci_held_info;

/* A snapshot of every held lock (malloc'd, caller frees), or NULL with
 * *count 0 when tracking is off or memory ran out. */
cci_held_info *cci_lockdep_snapshot(size_t *count);
/* "main+0x1f (./prog)" for a return address; "?" for NULL. */
void cci_format_site(const void *site, char *buf, size_t cap);
/* The symbol of the function at fn into buf; false if it has none that
 * dladdr can see (exported ones only: link with -rdynamic). */
bool cci_function_name(const void *fn, char *buf, size_t cap);
/* Sends a report to the hook (or stderr). Called with no lock held. */
void cci_debug_report(const char *text);
/* Lock debugging switched on from the environment (state.c): the watchdog,
 * if wanted, starts at the first debug-mode acquire, not at load time. */
void cci_debug_enable_from_env(unsigned flags);
void cci_lockdep_env_settings(void);

/* ---- the dump (dump.c) --------------------------------------------------- */

/* "lock \"config\" (0x1234)" or "lock 0x1234": kind and object. */
void cci_describe_wait(cc_wait_kind kind, const void *obj, char *buf,
                       size_t cap);

/* ---- the timeline (timeline.c) ------------------------------------------- */

/* Records a blocked wait of the calling thread on (kind, obj) from since_ns
 * until now. */
void cci_trace_blocked(cc_wait_kind kind, const void *obj, int64_t since_ns);

/* Records an instant: the calling thread's function starts, or has
 * returned status. */
void cci_trace_thread(bool start, int status);

/* Task outcomes as the pools report them to statistics and the trace. */
enum cci_task_outcome {
    CCI_TASK_COMPLETED,
    CCI_TASK_FAILED,
    CCI_TASK_CANCELLED
};

/* Records a pool task run by the calling thread from start_ns until now. */
void cci_trace_task(const void *pool, const char *pool_label, int64_t start_ns,
                    enum cci_task_outcome outcome);

/* ---- process pool workers (recorded by the parent, on the worker's track,
 * pid = the worker's pid). slot: the worker's place in its pool. */

/* How a worker process ended. */
enum cci_worker_end {
    CCI_WORKER_RETIRED,   /* asked to exit (max tasks, shutdown), exit 0 */
    CCI_WORKER_DIED,      /* crashed, killed from outside, exited on its own */
    CCI_WORKER_TIMED_OUT, /* killed for a task's time limit */
    CCI_WORKER_KILLED     /* killed by the pool for a malformed message */
};

/* The worker started at spawn_ns is ready now; replaces: the pid of the
 * dead worker it replaces, or 0. */
void cci_trace_worker_start(const void *pool, int pid, unsigned slot,
                            int replaces, int64_t spawn_ns);
/* The worker ran task from start_ns until now; status its error code. */
void cci_trace_worker_task(const void *pool, int pid, unsigned slot,
                           const char *task, int64_t start_ns,
                           enum cci_task_outcome outcome, int status);
/* The worker's process has been reaped; code as cc_process_exitcode. */
void cci_trace_worker_exit(const void *pool, int pid, unsigned slot,
                           enum cci_worker_end how, int code);

/* ---- coroutine tasks (recorded on the loop thread). A task is known by
 * its future; fn names it when the future has no name. */

/* The task ran from start_ns until now (one slice between switches). */
void cci_trace_coro_run(const void *future, const void *fn, int64_t start_ns);
/* The task, created at created_ns, is done. */
void cci_trace_coro_done(const void *future, const void *fn,
                         int64_t created_ns, enum cci_task_outcome outcome);

/* Starts a trace from CONCUR_TRACE (state.c); writes it at exit. */
void cci_trace_start_from_env(const char *path);

#endif /* CCI_TRACE_INTERNAL_H */
