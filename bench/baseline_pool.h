/*
 * bench/baseline_pool.h — the thread pool a C programmer writes by hand, as
 * the baseline of `concur bench pool`.
 *
 * The classic design of C-Thread-Pool and of most hand-written pools: a
 * fixed array of worker pthreads, one linked-list queue under one mutex, one
 * condition variable that idle workers sleep on, and per task a
 * heap-allocated "future" with its own mutex and condition variable that
 * the worker completes and the submitter waits on.
 *
 * It is written to be a fair, competent version of that design, not a
 * strawman: one malloc per task (the queue link lives inside the future, as
 * concur's task record lives inside its future), a worker is signalled only
 * when one is idle, the signal is sent after the queue lock is dropped, and
 * a finished future signals only if somebody waits on it. What it does not
 * do is what distinguishes concur's scheduler: no per-worker queues, no
 * batching, no spinning before sleeping, no lock-free completion.
 */
#ifndef CONCUR_BENCH_BASELINE_POOL_H
#define CONCUR_BENCH_BASELINE_POOL_H

typedef struct baseline_pool baseline_pool;
typedef struct baseline_future baseline_future;

/* A task returns its result. */
typedef void *(*baseline_task_fn)(void *arg);

/* Starts `workers` threads at once. Returns 0 or a negative errno code. */
int baseline_pool_new(baseline_pool **out, unsigned workers);

/*
 * Queues fn(arg) and stores its future in *out; the caller waits on it and
 * frees it. Returns 0 or -ENOMEM.
 */
int baseline_pool_submit(baseline_pool *pool, baseline_task_fn fn, void *arg,
                         baseline_future **out);

/* Blocks until the task has run; returns its result. */
void *baseline_future_wait(baseline_future *f);

/* Frees a future whose task has run (after baseline_future_wait). */
void baseline_future_free(baseline_future *f);

/* Runs every queued task, stops the workers, joins them and frees. */
void baseline_pool_free(baseline_pool *pool);

#endif /* CONCUR_BENCH_BASELINE_POOL_H */
