/*
 * The hand-written mutex + condition variable pool (see baseline_pool.h).
 *
 * Locks: pool->mutex guards the queue, `idle` and `stop`; each future's own
 * mutex guards its `done`, `waiting` and result. A worker never holds both.
 */
#include "baseline_pool.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>

struct baseline_future {
    baseline_future *next; /* queue link, under pool->mutex */
    baseline_task_fn fn;
    void *arg;
    void *result;
    bool done;    /* under mutex */
    bool waiting; /* under mutex: the submitter sleeps on cond */
    pthread_mutex_t mutex;
    pthread_cond_t cond;
};

struct baseline_pool {
    pthread_mutex_t mutex;
    pthread_cond_t cond; /* idle workers wait here for a task or stop */
    baseline_future *head, *tail;
    unsigned idle; /* workers waiting on cond */
    bool stop;
    unsigned n_workers;
    pthread_t *workers;
};

static void complete(baseline_future *f, void *result)
{
    pthread_mutex_lock(&f->mutex);
    f->result = result;
    f->done = true;
    /* Signalled under the mutex: once it is released, the submitter may
     * free the future, so nothing may touch it afterwards. */
    if (f->waiting)
        pthread_cond_signal(&f->cond);
    pthread_mutex_unlock(&f->mutex);
}

static void *worker_main(void *arg)
{
    baseline_pool *pool = arg;
    pthread_mutex_lock(&pool->mutex);
    for (;;) {
        while (!pool->head && !pool->stop) {
            pool->idle++;
            pthread_cond_wait(&pool->cond, &pool->mutex);
            pool->idle--;
        }
        baseline_future *f = pool->head;
        if (!f)
            break; /* stopped and drained */
        pool->head = f->next;
        if (!pool->head)
            pool->tail = NULL;
        pthread_mutex_unlock(&pool->mutex);
        complete(f, f->fn(f->arg));
        pthread_mutex_lock(&pool->mutex);
    }
    pthread_mutex_unlock(&pool->mutex);
    return NULL;
}

int baseline_pool_new(baseline_pool **out, unsigned workers)
{
    baseline_pool *pool = calloc(1, sizeof *pool);
    if (!pool)
        return -ENOMEM;
    pool->workers = calloc(workers, sizeof *pool->workers);
    if (!pool->workers) {
        free(pool);
        return -ENOMEM;
    }
    pthread_mutex_init(&pool->mutex, NULL);
    pthread_cond_init(&pool->cond, NULL);
    for (; pool->n_workers < workers; pool->n_workers++) {
        int err = pthread_create(&pool->workers[pool->n_workers], NULL,
                                 worker_main, pool);
        if (err) {
            baseline_pool_free(pool);
            return -err;
        }
    }
    *out = pool;
    return 0;
}

int baseline_pool_submit(baseline_pool *pool, baseline_task_fn fn, void *arg,
                         baseline_future **out)
{
    baseline_future *f = malloc(sizeof *f);
    if (!f)
        return -ENOMEM;
    f->next = NULL;
    f->fn = fn;
    f->arg = arg;
    f->result = NULL;
    f->done = false;
    f->waiting = false;
    pthread_mutex_init(&f->mutex, NULL);
    pthread_cond_init(&f->cond, NULL);

    pthread_mutex_lock(&pool->mutex);
    if (pool->tail)
        pool->tail->next = f;
    else
        pool->head = f;
    pool->tail = f;
    bool wake = pool->idle > 0;
    pthread_mutex_unlock(&pool->mutex);
    /* Signalling after the unlock spares the woken worker from blocking
     * on the mutex we still hold; a worker that goes idle meanwhile checks
     * the queue under the mutex first, so no task is stranded. */
    if (wake)
        pthread_cond_signal(&pool->cond);
    *out = f;
    return 0;
}

void *baseline_future_wait(baseline_future *f)
{
    pthread_mutex_lock(&f->mutex);
    while (!f->done) {
        f->waiting = true;
        pthread_cond_wait(&f->cond, &f->mutex);
    }
    void *result = f->result;
    pthread_mutex_unlock(&f->mutex);
    return result;
}

void baseline_future_free(baseline_future *f)
{
    if (!f)
        return;
    pthread_cond_destroy(&f->cond);
    pthread_mutex_destroy(&f->mutex);
    free(f);
}

void baseline_pool_free(baseline_pool *pool)
{
    if (!pool)
        return;
    pthread_mutex_lock(&pool->mutex);
    pool->stop = true;
    pthread_cond_broadcast(&pool->cond);
    pthread_mutex_unlock(&pool->mutex);
    for (unsigned i = 0; i < pool->n_workers; i++)
        pthread_join(pool->workers[i], NULL);
    pthread_cond_destroy(&pool->cond);
    pthread_mutex_destroy(&pool->mutex);
    free(pool->workers);
    free(pool);
}
