/*
 * concur/executor.h — concurrent.futures executors: one interface (submit,
 * map, shutdown, free) with several back-ends; the first is the thread pool.
 * The thread pool also offers fork-join task groups and parallel-for, where
 * the waiting thread helps run tasks.
 *
 * Python                                      concur
 *   ThreadPoolExecutor(max_workers, ...)      cc_thread_pool_new
 *   executor.submit(fn, arg)                  cc_executor_submit
 *   executor.map(fn, args, timeout, chunksize) cc_executor_map + cc_map_next
 *   multiprocessing.pool imap_unordered       cc_map_options.unordered
 *   executor.shutdown(wait, cancel_futures)   cc_executor_shutdown
 *   with ThreadPoolExecutor() as ex: ...      cc_executor_free (shutdown(wait))
 *
 * Tasks: a task is fn(arg, &result). It returns 0 on success, having stored
 * its result (a void *, NULL by default) through the pointer, or a negative
 * error code on failure; cc_task_fail adds a message. The future returned by
 * submit carries the result or the error (see concur/future.h).
 */
#ifndef CONCUR_EXECUTOR_H
#define CONCUR_EXECUTOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "concur/future.h"
#include "concur/time.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct cc_executor cc_executor;

typedef int (*cc_task_fn)(void *arg, void **result);

/*
 * Inside a running task (or a fork-join task): records a failure message
 * (printf format) for the task's future and returns code, so a task can end
 * with `return cc_task_fail(-EIO, "cannot open %s", path);`. A code >= 0 is
 * replaced by CC_EFAILED. Outside a task the message is dropped.
 */
int cc_task_fail(int code, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* ---- the thread pool ------------------------------------------------------ */

typedef struct cc_thread_pool_options {
    /* Worker threads; 0 means min(32, CPUs + 4), Python's default. */
    unsigned max_workers;
    /* Workers are named PREFIX_0, PREFIX_1, ...; NULL gives
     * "ThreadPoolExecutor-N", as Python. Copied. */
    const char *thread_name_prefix;
    /* Runs once in each worker before it takes tasks. A negative return
     * breaks the pool: pending futures fail with CC_EBROKEN_EXECUTOR and
     * later submits are refused with it. */
    int (*initializer)(void *ctx);
    void *initializer_ctx;
    /* 0: unbounded. Else at most this many tasks wait to start; submit then
     * blocks (or fails with CC_EFULL if submit_fails_when_full). */
    size_t max_queued;
    bool submit_fails_when_full;
} cc_thread_pool_options;

/*
 * Creates a thread pool. Workers start lazily, as in Python: one more each
 * time a task is submitted while no worker is idle, up to max_workers.
 * opts may be NULL. Errors: -EINVAL, -ENOMEM.
 */
int cc_thread_pool_new(cc_executor **out, const cc_thread_pool_options *opts);

/* ---- the executor interface ----------------------------------------------- */

/*
 * Schedules fn(arg) and stores a new reference to its future in *out (unref
 * it when done). Never runs fn in the caller. Blocks only with a bounded
 * queue that is full (BLOCKED on CC_WAIT_QUEUE).
 * Errors: -EINVAL, -ENOMEM, CC_ESHUTDOWN (after shutdown),
 * CC_EBROKEN_EXECUTOR, CC_EFULL.
 */
int cc_executor_submit(cc_executor *ex, cc_task_fn fn, void *arg,
                       cc_future **out);

/*
 * Stops accepting tasks (later submits fail with CC_ESHUTDOWN). With
 * cancel_futures, tasks that have not started are cancelled. With wait,
 * blocks until every accepted task has finished and the workers have exited.
 * May be called several times. Must not be called from one of the pool's
 * own tasks with wait (-EDEADLK). Errors: -EINVAL, -EDEADLK.
 */
int cc_executor_shutdown(cc_executor *ex, bool wait, bool cancel_futures);

/* shutdown(wait = true, cancel_futures = false), then frees the executor.
 * Futures you hold stay valid. NULL is ignored. */
void cc_executor_free(cc_executor *ex);

/* "thread" for the thread pool, "process" for the process pool. */
const char *cc_executor_kind(const cc_executor *ex);
unsigned cc_executor_max_workers(const cc_executor *ex);

/*
 * Statistics of a pool since its creation. The thread pool keeps its
 * counters per thread (no shared cache line on the hot path) and sums them
 * when read, so while the pool is busy the figures are a snapshot that may
 * be a task or two apart from each other (a task is counted as finished a
 * moment after its future is); once the pool is idle, or after shutdown
 * with wait, they are exact. The process pool counts with atomic adds.
 * submitted ... running count futures (submit and map). Fork-join tasks
 * (task groups, parallel-for pieces) cost ~35 ns each, so they are counted
 * once, as they finish, in forkjoin_done (and in stolen); the group's
 * wait returns only after its tasks are counted.
 */
typedef struct cc_pool_stats {
    uint64_t submitted;  /* tasks accepted */
    uint64_t completed;  /* ran and succeeded */
    uint64_t failed;     /* ran and failed, or failed unrun (pool broken) */
    uint64_t cancelled;  /* never ran: cancelled future, or shutdown with
                            cancel_futures */
    uint64_t stolen;     /* tasks of any kind a worker took from another
                            worker's queue: how much balancing happened
                            (0 for the process pool: one shared queue) */
    uint64_t queued;     /* accepted, not started yet (the queue depth) */
    uint64_t running;    /* started, not finished */
    uint64_t worker_restarts; /* worker processes that died (crash, signal,
                                 time limit...) and are replaced when work
                                 needs them; not retirements. Always 0 for
                                 threads: a thread cannot die alone */
    uint64_t forkjoin_done; /* fork-join tasks finished, whatever their
                               status (0 for pools without fork-join) */
    unsigned workers;      /* workers started (processes alive) */
    unsigned idle_workers; /* workers waiting for a task */
    unsigned max_workers;
    bool shutdown;         /* shutdown was called */
    bool broken;           /* the pool is broken (an initializer failed) */
} cc_pool_stats;

/*
 * Fills *out. Does not block, never allocates, any thread may call it.
 * Errors: -EINVAL (NULL), -ENOTSUP (a back-end without statistics).
 * The MPI pool has no restarts (a rank's death ends the job) and one
 * queue (stolen is 0).
 */
int cc_executor_stats(const cc_executor *ex, cc_pool_stats *out);

/* ---- map -------------------------------------------------------------------- */

typedef struct cc_map cc_map;

typedef struct cc_map_options {
    /* Elements per task; 0 or 1 means one task per element. */
    size_t chunksize;
    /* Total time for the whole iteration, from the call to map, as
     * Python's timeout. CC_FOREVER for none. Start from
     * CC_MAP_OPTIONS_DEFAULT: a zeroed struct means CC_NOWAIT. */
    cc_duration timeout;
    /* Yield results as they complete (imap_unordered) instead of in input
     * order. */
    bool unordered;
} cc_map_options;

#define CC_MAP_OPTIONS_DEFAULT {1, CC_FOREVER, false}

/*
 * Submits fn(args[i]) for i in [0, n) and returns an iterator over the
 * results. opts NULL: chunksize 1, no timeout, ordered. The args array must
 * stay valid until the map is freed.
 * Errors: as cc_executor_submit; on error nothing was submitted.
 */
int cc_executor_map(cc_executor *ex, cc_task_fn fn, void *const *args,
                    size_t n, const cc_map_options *opts, cc_map **out);

/*
 * Waits for the next result. Returns 1 with the result in *result and its
 * element index in *index (either pointer may be NULL); 0 when every result
 * has been returned; or a negative code: the failed element's error
 * (*index set to it), or -ETIMEDOUT when the map's deadline passed. After a
 * negative return the map is finished, as Python's generator: elements not
 * started are cancelled, later calls return 0. The calling thread is BLOCKED
 * on CC_WAIT_FUTURE while it waits.
 */
int cc_map_next(cc_map *map, void **result, size_t *index);

/* Cancels elements not yet started, waits for running ones, frees. */
void cc_map_free(cc_map *map);

/* ---- fork-join (thread pool only) ---------------------------------------- */

/*
 * A task group: spawn tasks, then wait for all of them. The waiting thread
 * runs pending tasks of the pool while it waits, so nested spawn-and-wait
 * inside tasks never deadlocks, even on a pool with one worker. The caller
 * owns the memory (typically on the stack): _init / _destroy.
 */
typedef struct cc_task_group {
    cc_executor *pool;
    /* Low 32 bits: spawned tasks not yet finished; high 32 bits: threads
     * asleep in wait. One word, so that the last task's decrement is also
     * its last access to the group (which may live on the waiter's stack
     * and vanish the moment the waiter sees zero). */
    uint64_t counts;
    int32_t first_error; /* first negative status of a task, else 0 */
    uint32_t reserved;
} cc_task_group;

/* Errors: -EINVAL (NULL, or not a thread pool). */
int cc_task_group_init(cc_task_group *group, cc_executor *pool);
/*
 * Runs fn(ctx) on the pool. A negative return is recorded as the group's
 * error (the first one wins). Does not allocate on the hot path: task
 * records come from a per-thread cache. Errors: -EINVAL, -ENOMEM,
 * CC_ESHUTDOWN.
 */
int cc_task_group_spawn(cc_task_group *group, int (*fn)(void *ctx),
                        void *ctx);
/* Waits (helping) until every spawned task has finished. Returns 0 or the
 * first task error. The group can be reused afterwards. */
int cc_task_group_wait(cc_task_group *group);
/* Waits, then releases the group. Errors: -EINVAL. */
int cc_task_group_destroy(cc_task_group *group);

/*
 * Runs body(lo, hi, ctx) over [begin, end) split into pieces of at most
 * grain indices (0: chosen automatically), in parallel on the pool and in
 * the calling thread, and returns when all have run. Returns 0 or the first
 * negative status of a body. Errors: -EINVAL, CC_ESHUTDOWN.
 */
int cc_parallel_for(cc_executor *pool, size_t begin, size_t end, size_t grain,
                    int (*body)(size_t lo, size_t hi, void *ctx), void *ctx);

#ifdef __cplusplus
}
#endif

#endif /* CONCUR_EXECUTOR_H */
