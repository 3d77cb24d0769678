/*
 * scheduler.h — the thread pool's work-stealing scheduler, shared by
 * thread_pool.c (workers, submit, shutdown) and task_group.c (fork-join).
 *
 * Where tasks wait:
 *   - each worker has a Chase-Lev deque: tasks spawned by code running on
 *     that worker (fork-join, nested submits) go there without a lock;
 *   - each worker has an inbox: a lock-free stack where threads outside the
 *     pool put their tasks (one CAS). A submitting thread always uses the
 *     same inbox (chosen by its thread id), so submitters spread over the
 *     inboxes and there is no global lock or counter. A worker takes a
 *     whole inbox with one exchange into its deque (see thread_pool.c for
 *     how submission order is kept).
 * Any worker, and any thread helping in a task-group wait, steals from every
 * deque and inbox when its own are empty.
 *
 * Sleeping and waking (an event count, no lost wake-ups):
 *   a worker that found nothing spins a little as "searching", then
 *   increments `sleepers`, reads `epoch`, looks for work once more and
 *   sleeps on `epoch`. Whoever adds work orders it before a seq_cst look
 *   at the counters (a full fence after a deque push; an inbox push is a
 *   seq_cst CAS, which suffices) and, if no worker is searching and some
 *   sleep, bumps `epoch` and wakes one. That pairs with the sleeper's
 *   seq_cst increment and seq_cst look: either the sleeper's last look
 *   finds the task, or the adder sees the sleeper. A submit into a busy
 *   pool thus costs no system call.
 */
#ifndef CCI_SCHEDULER_H
#define CCI_SCHEDULER_H

#include <stdbool.h>
#include <stdint.h>

#include "concur/sync.h"
#include "concur/thread.h"
#include "executor/deque.h"
#include "executor/executor_internal.h"
#include "trace/trace_internal.h"

struct cci_task;
struct cci_task_counts;

/* What a kind of task does when run, or when it will never run (the pool
 * shut down with cancel_futures, or broke). Both dispose of the record.
 * run says how the task ended, for the statistics and the trace; counts
 * are the running thread's statistics counters (see cci_count_bump),
 * passed down by the loop that found the task, so that counting needs no
 * thread-local lookup per task. */
struct cci_task_ops {
    enum cci_task_outcome (*run)(struct cci_task *task,
                                 struct cci_task_counts *counts);
    void (*discard)(struct cci_task *task, int code);
};

struct cci_task {
    struct cci_task *next; /* inbox link */
    const struct cci_task_ops *ops;
};

enum cci_pool_state {
    CCI_POOL_RUNNING,
    CCI_POOL_SHUTDOWN, /* no new external work; workers drain and exit */
    CCI_POOL_BROKEN    /* an initializer failed; queued work was failed */
};

struct cci_pool;

/* Statistics counters (see cc_pool_stats). Future tasks (submit and map)
 * are counted through their whole life; fork-join tasks only once, when
 * they finish: one increment on counters the caller passes down (a
 * fork-join task costs ~35 ns; a thread-local lookup plus three increments
 * measured +8% on it, this 11 instructions, 2.7% of fib's; see
 * docs/benchmarks.md). STOLEN
 * counts every kind. Every set is written by one thread only, with a
 * relaxed load and store (a plain increment: no locked instruction, on a
 * line no other thread writes): each worker has its own, and so has each
 * outside thread that submits to, helps or shuts down the pool (struct
 * cci_outside_counts). Readers sum the sets with relaxed loads. The pool's
 * shared set takes atomic adds, only from outside threads past
 * OUTSIDE_COUNTS_MAX (see thread_pool.c); they reach cci_count_bump as
 * NULL. */
enum cci_count {
    CCI_COUNT_SUBMITTED,
    CCI_COUNT_TAKEN,     /* taken from a queue, to run or to discard */
    CCI_COUNT_COMPLETED, /* these three follow enum cci_task_outcome */
    CCI_COUNT_FAILED,
    CCI_COUNT_CANCELLED,
    CCI_COUNT_STOLEN,    /* taken from another worker's deque or inbox */
    CCI_COUNT_FORKJOIN,  /* fork-join tasks finished (run or discarded) */
    CCI_COUNT_N
};

struct cci_task_counts {
    uint64_t n[CCI_COUNT_N];
};

/* The counters of one thread outside the pool, on lines of their own. */
struct cci_outside_counts {
    _Alignas(64) struct cci_task_counts counts;
    uint32_t tid; /* the owner's kernel tid */
    struct cci_outside_counts *next;
};

struct cci_worker {
    cci_deque deque;
    /* Lock-free stack of tasks, newest first, as a tagged pointer: bit 0
     * set means closed to new submits (shutdown); see thread_pool.c. */
    _Alignas(64) uintptr_t inbox;
    _Alignas(64) struct cci_pool *pool;
    cc_thread *thread; /* set under the pool's admin lock */
    unsigned index;
    uint32_t rng; /* victim selection; touched only by the worker */
    struct cci_task_counts counts; /* written only by this worker */
};

struct cci_pool {
    cc_executor base; /* first: a cc_executor * is a cci_pool * */
    struct cci_worker *workers; /* max_workers entries, cache aligned */
    unsigned max_workers;
    uint32_t started; /* workers started so far; only grows */
    uint32_t state;   /* enum cci_pool_state */
    cc_lock admin;    /* worker start, shutdown, break */
    char *prefix;
    int (*initializer)(void *ctx);
    void *initializer_ctx;
    size_t max_queued;
    bool fail_when_full;
    struct cci_pool *next_live; /* the list of live pools, for exit */
    uint64_t id; /* unique for the process's life: keys outside counts */
    struct cci_outside_counts *outside; /* lock-free list, only grows */
    uint32_t n_outside;

    /* Hot counters, each on its own line. */
    _Alignas(64) uint32_t epoch; /* futex word of sleeping workers */
    uint32_t sleepers;
    _Alignas(64) uint32_t searching;
    uint32_t wake_pending; /* a wake-up is on its way (see wake_one) */
    _Alignas(64) uint32_t idle; /* workers not running a task */
    uint32_t idle_tokens; /* Python's _idle_semaphore: one per worker that
                             went idle after a task; a submit takes one
                             instead of starting a worker */
    _Alignas(64) uint32_t queued; /* future tasks not yet started */
    uint32_t queued_waiters;
    _Alignas(64) struct cci_task_counts shared_counts; /* atomic adds */
};

static inline void cci_count_bump(struct cci_pool *pool,
                                  struct cci_task_counts *c,
                                  enum cci_count which)
{
    if (__builtin_expect(c == NULL, 0))
        __atomic_fetch_add(&pool->shared_counts.n[which], 1,
                           __ATOMIC_RELAXED);
    else
        __atomic_store_n(&c->n[which],
                         __atomic_load_n(&c->n[which], __ATOMIC_RELAXED) + 1,
                         __ATOMIC_RELAXED);
}

/* The calling thread's counters in pool (w: the calling worker, or NULL
 * for a thread outside the pool); NULL past OUTSIDE_COUNTS_MAX. */
struct cci_task_counts *cci_pool_counts(struct cci_pool *pool,
                                        struct cci_worker *w);

/* The worker the calling thread is, if it is one of pool's, else NULL. */
struct cci_worker *cci_pool_current_worker(const struct cci_pool *pool);

/* True if ex is a thread pool. */
bool cci_is_thread_pool(const cc_executor *ex);

/*
 * Queues a task: on the calling worker's deque if it is one of pool's,
 * else in an inbox (refused with CC_ESHUTDOWN / CC_EBROKEN_EXECUTOR unless
 * the pool runs, or unless from_inside and the pool is only shut down).
 * Starts a worker if fewer than max run and none is idle (from outside:
 * no idle token, as Python's _adjust_thread_count; from inside, a spawn:
 * no idle worker to steal it), then wakes a sleeper if needed. Errors: -ENOMEM, CC_ESHUTDOWN, CC_EBROKEN_EXECUTOR.
 */
int cci_pool_push(struct cci_pool *pool, struct cci_task *task);

/* One task from anywhere in the pool, for a worker (w) or a helping
 * outside thread (w NULL); NULL if none was found. */
struct cci_task *cci_pool_find_work(struct cci_pool *pool,
                                    struct cci_worker *w);

/* Runs a task of pool taken from the queues (recording its span while a
 * trace is recorded) and returns how it ended; counts: the calling
 * thread's counters (cci_pool_counts). The arguments are in the order of
 * task->ops->run's, which cci_pool_run ends by calling: no register
 * shuffle before that tail call. */
enum cci_task_outcome cci_pool_run(struct cci_task *task,
                                   struct cci_task_counts *counts,
                                   struct cci_pool *pool);



/* A thread that slept on the pool's event count got up: the wake-up token
 * is spent (see thread_pool.c). */
void cci_pool_woke(struct cci_pool *pool);

/* Whether any deque or inbox looks non-empty (a racy scan of all workers). */
bool cci_pool_work_visible(struct cci_pool *pool);

/* Wakes one sleeper unless one is searching or already on its way. */
void cci_pool_wake_one(struct cci_pool *pool);

/* Wakes every sleeping worker and helper (group completion, shutdown). */
void cci_pool_wake_all(struct cci_pool *pool);

#endif /* CCI_SCHEDULER_H */
