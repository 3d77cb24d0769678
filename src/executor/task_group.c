/*
 * task_group.c — fork-join on the thread pool: task groups and parallel-for.
 *
 * A waiting thread helps: it runs queued tasks of the pool (its own deque
 * first if it is a worker) until its group is done, so nested spawn-and-wait
 * inside tasks needs no extra thread and cannot deadlock, even with a single
 * worker. When it finds nothing to run it sleeps on the pool's event count
 * like an idle worker; the group's last task wakes all sleepers if any
 * waiter of that group sleeps (the high half of group->counts), which costs nothing when
 * nobody does.
 *
 * Task records come from a per-thread cache of fixed-size blocks, so the hot
 * path of spawn (push on the worker's own deque) does not call malloc.
 */
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <pthread.h>
#include <stdlib.h>

#include "concur/error.h"
#include "executor/scheduler.h"
#include "platform/platform.h"
#include "thread/blocking.h"

/* ---- per-thread cache of task records ------------------------------------- */

#define CACHE_LIMIT 1024

struct group_task {
    struct cci_task base;
    cc_task_group *group;
    int (*fn)(void *ctx);
    void *ctx;
    /* parallel-for ranges; unused by plain spawns */
    size_t lo, hi;
};

union cache_block {
    struct group_task task;
    union cache_block *next_free;
};

struct task_cache {
    union cache_block *free;
    unsigned count;
};

static __thread struct task_cache tls_cache;
static pthread_key_t cache_key;
static pthread_once_t cache_once = PTHREAD_ONCE_INIT;

/* Returns a dying thread's blocks to malloc. */
static void cache_release(void *arg)
{
    struct task_cache *c = arg;
    while (c->free) {
        union cache_block *b = c->free;
        c->free = b->next_free;
        free(b);
    }
    c->count = 0;
}

static void cache_key_init(void)
{
    pthread_key_create(&cache_key, cache_release);
}

static struct group_task *task_alloc(void)
{
    struct task_cache *c = &tls_cache;
    union cache_block *b = c->free;
    if (b) {
        c->free = b->next_free;
        c->count--;
        return &b->task;
    }
    return malloc(sizeof(union cache_block));
}

static void task_free(struct group_task *t)
{
    struct task_cache *c = &tls_cache;
    if (c->count >= CACHE_LIMIT) {
        free(t);
        return;
    }
    if (c->count == 0 && !c->free) {
        pthread_once(&cache_once, cache_key_init);
        pthread_setspecific(cache_key, c);
    }
    union cache_block *b = (union cache_block *)t;
    b->next_free = c->free;
    c->free = b;
    c->count++;
}

/* ---- groups ------------------------------------------------------------------ */

static struct cci_pool *group_pool(cc_task_group *g)
{
    return (struct cci_pool *)g->pool;
}

static void record_error(cc_task_group *g, int status)
{
    int32_t none = 0;
    __atomic_compare_exchange_n(&g->first_error, &none, status, false,
                                __ATOMIC_RELAXED, __ATOMIC_RELAXED);
}

#define PENDING_MASK UINT64_C(0xffffffff)
#define ONE_SLEEPER (UINT64_C(1) << 32)

static uint32_t pending_of(const cc_task_group *g)
{
    return (uint32_t)(__atomic_load_n(&g->counts, __ATOMIC_ACQUIRE) &
                      PENDING_MASK);
}

/* One spawned task has finished (or will never run). The decrement is the
 * last access to g: it tells us at once whether a waiter sleeps, and the
 * wake-up goes through the pool, which outlives every group. seq_cst pairs
 * with the waiter's increment of its sleeper count before it re-reads the
 * pending count (Dekker). */
static void group_task_done(cc_task_group *g)
{
    struct cci_pool *pool = group_pool(g);
    uint64_t before = __atomic_fetch_sub(&g->counts, 1, __ATOMIC_SEQ_CST);
    if ((before & PENDING_MASK) == 1 && (before >> 32) > 0)
        cci_pool_wake_all(pool);
}

static enum cci_task_outcome group_task_run(struct cci_task *task,
                                            struct cci_task_counts *counts)
{
    struct group_task *t = (struct group_task *)task;
    cc_task_group *g = t->group;
    int (*fn)(void *) = t->fn;
    void *ctx = t->ctx;
    task_free(t);
    cci_task_scope scope = cci_task_message_begin();
    int status = fn(ctx);
    free(cci_task_message_end(scope));
    if (status < 0)
        record_error(g, status);
    /* Counted before the group hears of it: once a wait returns, the
     * counters hold every task of its group. */
    cci_count_bump(group_pool(g), counts, CCI_COUNT_FORKJOIN);
    group_task_done(g);
    return status < 0 ? CCI_TASK_FAILED : CCI_TASK_COMPLETED;
}

static void group_task_discard(struct cci_task *task, int code)
{
    struct group_task *t = (struct group_task *)task;
    cc_task_group *g = t->group;
    task_free(t);
    record_error(g, code);
    struct cci_pool *pool = group_pool(g);
    cci_count_bump(pool,
                   cci_pool_counts(pool, cci_pool_current_worker(pool)),
                   CCI_COUNT_FORKJOIN);
    group_task_done(g);
}

static const struct cci_task_ops group_task_ops = {
    .run = group_task_run,
    .discard = group_task_discard,
};

int cc_task_group_init(cc_task_group *group, cc_executor *pool)
{
    if (!group || !cci_is_thread_pool(pool))
        return -EINVAL;
    group->pool = pool;
    group->counts = 0;
    group->first_error = 0;
    group->reserved = 0;
    return 0;
}

static int spawn_task(cc_task_group *g, struct group_task *t)
{
    __atomic_fetch_add(&g->counts, 1, __ATOMIC_RELAXED);
    int rc = cci_pool_push(group_pool(g), &t->base);
    if (rc != 0) {
        task_free(t);
        __atomic_fetch_sub(&g->counts, 1, __ATOMIC_RELAXED);
    }
    return rc;
}

int cc_task_group_spawn(cc_task_group *group, int (*fn)(void *ctx), void *ctx)
{
    if (!group || !group->pool || !fn)
        return -EINVAL;
    struct group_task *t = task_alloc();
    if (!t)
        return -ENOMEM;
    t->base.ops = &group_task_ops;
    t->group = group;
    t->fn = fn;
    t->ctx = ctx;
    return spawn_task(group, t);
}

/* Helps the pool until g has no pending task. */
/* How deep helping may nest in one thread. A helper that takes a task from
 * elsewhere may find that task waiting on a group of its own and helping
 * again; without a bound, a thread outside the pool waiting on fib(30)
 * nests ~90,000 frames and overflows its stack. Past the bound a worker
 * runs only tasks of its own deque (which its current task spawned, so
 * their depth is the program's own recursion) and an outside thread runs
 * none: both then simply wait, which is safe because every task they wait
 * for sits in some worker's deque or inbox, or already runs. */
#define MAX_HELP_DEPTH 64

static __thread unsigned help_depth;

static struct cci_task *find_help(struct cci_pool *pool, struct cci_worker *w)
{
    if (help_depth <= MAX_HELP_DEPTH)
        return cci_pool_find_work(pool, w);
    return w ? cci_deque_pop(&w->deque) : NULL;
}

static void help_until_done(cc_task_group *g)
{
    struct cci_pool *pool = group_pool(g);
    struct cci_worker *w = cci_pool_current_worker(pool);
    /* A worker's own counters without a call: fork-join waits once per
     * spawn (fib) and this is on that path. */
    struct cci_task_counts *counts =
        w ? &w->counts : cci_pool_counts(pool, NULL);
    unsigned idle_rounds = 0;
    help_depth++;
    while (pending_of(g) != 0) {
        struct cci_task *t = find_help(pool, w);
        if (t) {
            cci_pool_run(t, counts, pool);
            idle_rounds = 0;
            continue;
        }
        if (++idle_rounds < 64) {
            for (int k = 0; k < 32; k++)
                cci_cpu_relax();
            continue;
        }
        /* Sleep as an idle worker would, but also for the group's end. */
        __atomic_fetch_add(&g->counts, ONE_SLEEPER, __ATOMIC_SEQ_CST);
        __atomic_fetch_add(&pool->sleepers, 1, __ATOMIC_SEQ_CST);
        uint32_t e = __atomic_load_n(&pool->epoch, __ATOMIC_SEQ_CST);
        if ((__atomic_load_n(&g->counts, __ATOMIC_SEQ_CST) & PENDING_MASK) != 0 &&
            (t = find_help(pool, w)) == NULL) {
            /* Deep helpers leave others' work alone: make sure someone
             * else takes it before we sleep. */
            if (help_depth > MAX_HELP_DEPTH && cci_pool_work_visible(pool))
                cci_pool_wake_one(pool);
            cci_block_token tok = cci_block_begin(CC_WAIT_OTHER, g);
            cci_futex_wait(&pool->epoch, e, CCI_NO_DEADLINE, false);
            cci_block_end(tok);
        }
        __atomic_fetch_sub(&pool->sleepers, 1, __ATOMIC_SEQ_CST);
        __atomic_fetch_sub(&g->counts, ONE_SLEEPER, __ATOMIC_SEQ_CST);
        cci_pool_woke(pool);
        /* A wake-up meant for a worker may have reached us; if we are about
         * to leave (our group is done) without taking the work it was
         * for, pass it on. */
        if (!t && pending_of(g) == 0 && cci_pool_work_visible(pool))
            cci_pool_wake_one(pool);
        if (t)
            cci_pool_run(t, counts, pool);
        idle_rounds = 0;
    }
    help_depth--;
}

int cc_task_group_wait(cc_task_group *group)
{
    if (!group || !group->pool)
        return -EINVAL;
    help_until_done(group);
    int err = __atomic_exchange_n(&group->first_error, 0, __ATOMIC_RELAXED);
    return err;
}

int cc_task_group_destroy(cc_task_group *group)
{
    if (!group || !group->pool)
        return -EINVAL;
    help_until_done(group);
    group->pool = NULL;
    return 0;
}

/* ---- parallel-for ------------------------------------------------------------- */

struct range_job {
    int (*body)(size_t lo, size_t hi, void *ctx);
    void *ctx;
    size_t grain;
    cc_task_group *group;
};

static int run_range(struct range_job *job, size_t lo, size_t hi);

static enum cci_task_outcome range_task_run(struct cci_task *task,
                                            struct cci_task_counts *counts)
{
    struct group_task *t = (struct group_task *)task;
    struct range_job *job = t->ctx;
    size_t lo = t->lo, hi = t->hi;
    task_free(t);
    int status = run_range(job, lo, hi);
    if (status < 0)
        record_error(job->group, status);
    cci_count_bump(group_pool(job->group), counts, CCI_COUNT_FORKJOIN);
    group_task_done(job->group);
    return status < 0 ? CCI_TASK_FAILED : CCI_TASK_COMPLETED;
}

static const struct cci_task_ops range_task_ops = {
    .run = range_task_run,
    .discard = group_task_discard,
};

/* Splits off the upper halves as tasks (thieves take the biggest first)
 * and runs the last piece here; a piece that cannot be spawned runs here. */
static int run_range(struct range_job *job, size_t lo, size_t hi)
{
    while (hi - lo > job->grain) {
        size_t mid = lo + (hi - lo) / 2;
        struct group_task *t = task_alloc();
        if (!t)
            break;
        t->base.ops = &range_task_ops;
        t->group = job->group;
        t->ctx = job;
        t->lo = mid;
        t->hi = hi;
        if (spawn_task(job->group, t) != 0)
            break;
        hi = mid;
    }
    return job->body(lo, hi, job->ctx);
}

int cc_parallel_for(cc_executor *pool, size_t begin, size_t end, size_t grain,
                    int (*body)(size_t lo, size_t hi, void *ctx), void *ctx)
{
    if (!cci_is_thread_pool(pool) || !body || begin > end)
        return -EINVAL;
    if (begin == end)
        return 0;
    struct cci_pool *p = (struct cci_pool *)pool;
    if (!cci_pool_current_worker(p) &&
        __atomic_load_n(&p->state, __ATOMIC_ACQUIRE) != CCI_POOL_RUNNING)
        return __atomic_load_n(&p->state, __ATOMIC_ACQUIRE) == CCI_POOL_BROKEN
                   ? CC_EBROKEN_EXECUTOR
                   : CC_ESHUTDOWN;
    if (grain == 0) {
        /* About 8 pieces per worker: enough to balance uneven pieces. */
        size_t pieces = (size_t)cc_executor_max_workers(pool) * 8;
        grain = (end - begin + pieces - 1) / pieces;
        if (grain == 0)
            grain = 1;
    }
    cc_task_group group;
    cc_task_group_init(&group, pool);
    struct range_job job = {body, ctx, grain, &group};
    int status = run_range(&job, begin, end);
    if (status < 0)
        record_error(&group, status);
    return cc_task_group_wait(&group);
}
