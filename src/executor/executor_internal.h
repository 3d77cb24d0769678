/*
 * executor_internal.h — the executor interface as back-ends implement it,
 * and the task records the thread pool schedules.
 */
#ifndef CCI_EXECUTOR_INTERNAL_H
#define CCI_EXECUTOR_INTERNAL_H

#include <stdbool.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdint.h>

#include "concur/executor.h"

struct cc_task_def; /* concur/process.h */

/* One table per back-end; cc_executor_* dispatch through it. */
struct cci_executor_ops {
    const char *kind;
    int (*submit)(cc_executor *ex, cc_task_fn fn, void *arg, cc_future **out);
    int (*shutdown)(cc_executor *ex, bool wait, bool cancel_futures);
    /* Frees the back-end after a successful shutdown(wait = true). */
    void (*destroy)(cc_executor *ex);
    unsigned (*max_workers)(const cc_executor *ex);
    /* Optional (NULL: cc_executor_submit_bytes runs the task through
     * submit, in a thread). Bytes tasks: def is registered, in is copied
     * before return. See concur/process.h. */
    int (*submit_bytes)(cc_executor *ex, const struct cc_task_def *def,
                        const void *in, size_t len, cc_future **out);
    /* Optional: submit_bytes with the input written by fill(ctx, dst)
     * straight into the back-end's own buffer (map_bytes.c's chunks;
     * process/task_internal.h). */
    int (*submit_bytes_fill)(cc_executor *ex, const struct cc_task_def *def,
                             size_t len, void (*fill)(void *ctx, uint8_t *dst),
                             void *ctx, cc_future **out);
    /* Optional (NULL: cc_executor_stats returns -ENOTSUP). */
    int (*stats)(const cc_executor *ex, cc_pool_stats *out);
    /* Optional: the thread dump's lines about each worker (after the
     * pool's statistics). */
    void (*dump_workers)(const cc_executor *ex, FILE *out);
};

struct cc_executor {
    const struct cci_executor_ops *ops;
};

/* Calls fn(ex, ctx) for every live thread pool, for the thread dump, with
 * the list of live pools locked: fn must not create or free a pool. Returns
 * false, having called nothing, if the list stayed busy for 100 ms (the
 * process is exiting and shutting the pools down). */
bool cci_thread_pools_foreach(void (*fn)(cc_executor *ex, void *ctx),
                              void *ctx);
/* The same for every live process pool of this process. */
bool cci_process_pools_foreach(void (*fn)(cc_executor *ex, void *ctx),
                               void *ctx);
/* Locks a list of live pools for those walks, giving up (false) after
 * 100 ms: at exit the list stays locked while the pools are shut down,
 * and a dump asked for by one of their tasks must not wait for that. */
bool cci_mutex_lock_briefly(pthread_mutex_t *m);

/* ---- running tasks ---------------------------------------------------------
 * While a worker runs a task, the task's failure message (cc_task_fail) is
 * kept per thread; the worker takes it when the task returns. Tasks nest (a
 * task waiting on a task group runs other tasks meanwhile), so begin saves
 * the outer task's slot and end restores it. */
typedef struct cci_task_scope {
    char *outer_message;
    unsigned outer_depth;
} cci_task_scope;

cci_task_scope cci_task_message_begin(void);
/* The message recorded inside the scope (caller frees), or NULL. */
char *cci_task_message_end(cci_task_scope scope);
/* Takes the message recorded so far inside the current scope (caller
 * frees), leaving none: for a runner that runs many tasks in one scope
 * (process/task_registry.c's batches). */
char *cci_task_message_take(void);

#endif /* CCI_EXECUTOR_INTERNAL_H */
