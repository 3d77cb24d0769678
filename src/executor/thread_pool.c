/*
 * thread_pool.c — ThreadPoolExecutor on the work-stealing scheduler
 * described in scheduler.h: workers, submit, shutdown, breaking.
 *
 * Pool state machine (set_pool_state asserts it):
 *   RUNNING --shutdown--> SHUTDOWN
 *   RUNNING --initializer failed--> BROKEN --shutdown--> BROKEN
 * A submitted future task lives inside its future's allocation
 * (cci_future_new_ex), so a submit costs one malloc and the task holds a
 * reference to its future until it has been run or discarded.
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "concur/error.h"
#include "executor/scheduler.h"
#include "future/future_internal.h"
#include "platform/platform.h"
#include "thread/blocking.h"
#include "time/deadline.h"

/* Spin rounds of a worker that ran out of work before it sleeps: waking a
 * sleeping thread costs 60-70 us on these machines, a round a few hundred
 * ns, so a short burst of searching keeps a busy pool awake cheaply. */
#define SEARCH_ROUNDS 64

static __thread struct cci_worker *tls_worker;

/* Inlined here; the extern one is for task_group.c (PIC code does not
 * inline calls to extern functions). */
static inline struct cci_worker *current_worker(const struct cci_pool *pool)
{
    struct cci_worker *w = tls_worker;
    return w && w->pool == pool ? w : NULL;
}

struct cci_worker *cci_pool_current_worker(const struct cci_pool *pool)
{
    return current_worker(pool);
}

static enum cci_pool_state pool_state(const struct cci_pool *pool)
{
    return (enum cci_pool_state)__atomic_load_n(&pool->state,
                                                __ATOMIC_ACQUIRE);
}

/* The legal transitions, in one place. Called with admin held. */
static void set_pool_state(struct cci_pool *pool, enum cci_pool_state to)
{
    enum cci_pool_state from = pool_state(pool);
    if (from == to)
        return;
    if (!(from == CCI_POOL_RUNNING &&
          (to == CCI_POOL_SHUTDOWN || to == CCI_POOL_BROKEN))) {
        fprintf(stderr, "concur: illegal pool transition %d -> %d\n", from,
                to);
        abort();
    }
    __atomic_store_n(&pool->state, to, __ATOMIC_SEQ_CST);
}

static int refusal(enum cci_pool_state s)
{
    return s == CCI_POOL_BROKEN ? CC_EBROKEN_EXECUTOR : CC_ESHUTDOWN;
}

/* ---- waking -----------------------------------------------------------------
 * wake_one_if_needed wakes one sleeper if work was added while nobody
 * searches. `wake_pending` is a token: while a woken thread is on its way (a
 * wake-up takes 60-70 us here), later submits do not wake more; the woken
 * thread spends the token when it gets up (cci_pool_woke) and, if it finds
 * more work than it takes, passes the wake-up on (see worker_main). Without
 * it a fast submitter issued a FUTEX_WAKE for almost every task.
 */
static void wake_one_if_needed(struct cci_pool *pool, bool published_sc)
{
    for (;;) {
        /* Pairs with the sleeper's seq_cst increment of sleepers (see
         * scheduler.h): the task must be visible before we look. A task
         * published by a seq_cst RMW (an inbox push) already is, for our
         * seq_cst loads; a deque push is a plain release store and needs
         * the fence (x86: the locked CAS already is one, the fence would
         * cost another ~25 cycles per submit). */
        if (!published_sc)
            cci_fence_seq_cst();
        published_sc = false;
        if (__atomic_load_n(&pool->searching, __ATOMIC_SEQ_CST) != 0 ||
            __atomic_load_n(&pool->sleepers, __ATOMIC_SEQ_CST) == 0 ||
            __atomic_load_n(&pool->wake_pending, __ATOMIC_SEQ_CST) != 0 ||
            __atomic_exchange_n(&pool->wake_pending, 1, __ATOMIC_SEQ_CST) != 0)
            return;
        __atomic_fetch_add(&pool->epoch, 1, __ATOMIC_SEQ_CST);
        if (cci_futex_wake(&pool->epoch, 1, false) > 0)
            return; /* the woken thread spends the token */
        /* Nobody was asleep: the thread counted in `sleepers` had already
         * got up (and spent the token before we set it), or has not gone
         * to sleep yet (its wait fails on the new epoch and it looks
         * again). No thread will spend this token, and a token left set
         * would stop every later submit from waking anyone: put it back.
         * A submit that saw our token meanwhile skipped its own wake-up,
         * so look once more for work that would otherwise wait (its push
         * came before its look at the token, which came before our
         * clear). */
        __atomic_store_n(&pool->wake_pending, 0, __ATOMIC_SEQ_CST);
        cci_fence_seq_cst();
        if (!cci_pool_work_visible(pool))
            return;
    }
}

void cci_pool_wake_one(struct cci_pool *pool)
{
    wake_one_if_needed(pool, false);
}

void cci_pool_woke(struct cci_pool *pool)
{
    if (__atomic_load_n(&pool->wake_pending, __ATOMIC_RELAXED))
        __atomic_store_n(&pool->wake_pending, 0, __ATOMIC_SEQ_CST);
}

void cci_pool_wake_all(struct cci_pool *pool)
{
    __atomic_fetch_add(&pool->epoch, 1, __ATOMIC_SEQ_CST);
    if (__atomic_load_n(&pool->sleepers, __ATOMIC_SEQ_CST) > 0)
        cci_futex_wake(&pool->epoch, INT32_MAX, false);
}

/* ---- inboxes ----------------------------------------------------------------
 * An inbox is a lock-free stack (newest first): a submit is one CAS, and a
 * taker empties the whole stack with one exchange. Pushing the taken list
 * into the taker's deque newest first leaves the oldest at the bottom, so
 * the owner, which pops from the bottom, starts tasks in submission order,
 * and thieves take the newest from the top. Taking everything at once is
 * what makes the inbox cheap; other workers balance the load by stealing
 * from the taker's deque.
 */

#define INBOX_CLOSED ((uintptr_t)1)

/* Seq_cst: a sleeper's last look must see a push that did not see it in
 * `sleepers` (see wake_one_if_needed); a plain load on x86. */
static bool inbox_maybe_full(const struct cci_worker *w)
{
    return (__atomic_load_n(&w->inbox, __ATOMIC_SEQ_CST) & ~INBOX_CLOSED) != 0;
}

/* Pushes t unless the inbox is closed (then returns false), or in any case
 * with `force` (tasks an outside helper gives back were already accepted).
 * Closing and pushing are CASes on the same word, so a submit either lands
 * before the close, where shutdown's drain or the workers find it, or is
 * refused: nothing slips in behind the drain. */
static bool inbox_push(struct cci_worker *w, struct cci_task *t, bool force)
{
    /* Acquire on the loads: a pusher that sees the closed bit also sees
     * the pool state set before the close, and so reports the right code. */
    uintptr_t head = __atomic_load_n(&w->inbox, __ATOMIC_ACQUIRE);
    do {
        if ((head & INBOX_CLOSED) && !force)
            return false;
        t->next = (struct cci_task *)(head & ~INBOX_CLOSED);
    } while (!__atomic_compare_exchange_n(
        &w->inbox, &head, (uintptr_t)t | (head & INBOX_CLOSED), true,
        __ATOMIC_SEQ_CST, __ATOMIC_ACQUIRE));
    return true;
}

/* Empties the inbox, keeping its closed bit; returns the list. */
static struct cci_task *inbox_take_all(struct cci_worker *w)
{
    uintptr_t head = __atomic_load_n(&w->inbox, __ATOMIC_RELAXED);
    do {
        if ((head & ~INBOX_CLOSED) == 0)
            return NULL;
    } while (!__atomic_compare_exchange_n(&w->inbox, &head,
                                          head & INBOX_CLOSED, true,
                                          __ATOMIC_ACQUIRE,
                                          __ATOMIC_RELAXED));
    return (struct cci_task *)(head & ~INBOX_CLOSED);
}

static void inbox_close(struct cci_worker *w)
{
    __atomic_fetch_or(&w->inbox, INBOX_CLOSED, __ATOMIC_ACQ_REL);
}

/* Takes victim's inbox for `self` (a worker, or NULL for an outside
 * helper) and returns its oldest task. A worker keeps the rest in its
 * deque; an outside helper has no deque and gives the rest back. */
static struct cci_task *take_from_inbox(struct cci_worker *victim,
                                        struct cci_worker *self)
{
    if (!inbox_maybe_full(victim))
        return NULL;
    struct cci_task *list = inbox_take_all(victim);
    if (!list)
        return NULL;
    struct cci_task *giveback = NULL;
    while (list->next) {
        /* Unlink before pushing: once in the deque, a thief may run and
         * free the task at once, so its `next` must not be read after. */
        struct cci_task *t = list;
        list = t->next;
        if (!self || cci_deque_push(&self->deque, t) != 0) {
            t->next = giveback; /* outside helper, or out of memory */
            giveback = t;
        }
    }
    while (giveback) {
        struct cci_task *t = giveback;
        giveback = t->next;
        inbox_push(victim, t, true);
    }
    return list; /* the oldest */
}

bool cci_pool_work_visible(struct cci_pool *pool)
{
    uint32_t n = __atomic_load_n(&pool->started, __ATOMIC_ACQUIRE);
    for (uint32_t i = 0; i < n; i++) {
        struct cci_worker *v = &pool->workers[i];
        if (inbox_maybe_full(v) || !cci_deque_maybe_empty(&v->deque))
            return true;
    }
    return false;
}

/* ---- statistics counters ----------------------------------------------------
 * See scheduler.h. An outside thread finds its counters by kernel tid in
 * the pool's list, and caches them in thread-locals for the last pool it
 * used (by pool id, never reused, so a freed pool's block is never
 * touched). A block whose thread has exited passes to a later thread with
 * the same tid, which is safe: the two never run at once. Past
 * OUTSIDE_COUNTS_MAX blocks, further threads share the pool's atomic set.
 * Blocks are freed with the pool. */
#define OUTSIDE_COUNTS_MAX 64

/* Whole lines each (aligned_alloc also wants the size a multiple of 64). */
_Static_assert(sizeof(struct cci_outside_counts) % 64 == 0,
               "outside counters fill whole cache lines");

static __thread uint64_t tls_counts_pool; /* id of the pool cached below */
static __thread struct cci_task_counts *tls_counts;

static __attribute__((noinline)) struct cci_task_counts *
find_outside_counts(struct cci_pool *pool)
{
    uint32_t tid = cci_gettid();
    struct cci_outside_counts *b =
        __atomic_load_n(&pool->outside, __ATOMIC_ACQUIRE);
    while (b && b->tid != tid)
        b = b->next;
    if (!b && __atomic_load_n(&pool->n_outside, __ATOMIC_RELAXED) <
                  OUTSIDE_COUNTS_MAX &&
        (b = aligned_alloc(64, sizeof *b)) != NULL) {
        memset(b, 0, sizeof *b);
        b->tid = tid;
        b->next = __atomic_load_n(&pool->outside, __ATOMIC_RELAXED);
        while (!__atomic_compare_exchange_n(&pool->outside, &b->next, b, true,
                                            __ATOMIC_RELEASE,
                                            __ATOMIC_RELAXED))
            ;
        __atomic_fetch_add(&pool->n_outside, 1, __ATOMIC_RELAXED);
    }
    tls_counts_pool = pool->id;
    tls_counts = b ? &b->counts : NULL;
    return tls_counts;
}

/* Inlined here; cci_pool_counts is for task_group.c. */
static inline struct cci_task_counts *counts_of(struct cci_pool *pool,
                                                struct cci_worker *w)
{
    if (w)
        return &w->counts;
    if (__builtin_expect(tls_counts_pool != pool->id, 0))
        return find_outside_counts(pool);
    return tls_counts;
}

struct cci_task_counts *cci_pool_counts(struct cci_pool *pool,
                                        struct cci_worker *w)
{
    return counts_of(pool, w);
}

static inline void count(struct cci_pool *pool, struct cci_worker *w,
                         enum cci_count which)
{
    cci_count_bump(pool, counts_of(pool, w), which);
}

/* ---- finding work ------------------------------------------------------------ */

static uint32_t next_random(uint32_t *state)
{
    /* xorshift32: enough to spread thieves over victims. */
    uint32_t x = *state ? *state : 0x9e3779b9u;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    *state = x;
    return x;
}

struct cci_task *cci_pool_find_work(struct cci_pool *pool,
                                    struct cci_worker *w)
{
    struct cci_task *t;
    if (w) {
        if ((t = cci_deque_pop(&w->deque)) != NULL)
            return t;
        if ((t = take_from_inbox(w, w)) != NULL)
            return t;
    }
    uint32_t n = __atomic_load_n(&pool->started, __ATOMIC_ACQUIRE);
    if (n == 0)
        return NULL;
    static __thread uint32_t helper_rng;
    uint32_t start = next_random(w ? &w->rng : &helper_rng) % n;
    for (uint32_t i = 0; i < n; i++) {
        struct cci_worker *v = &pool->workers[(start + i) % n];
        if (v == w)
            continue;
        if ((t = cci_deque_steal(&v->deque)) != NULL ||
            (t = take_from_inbox(v, w)) != NULL) {
            if (w)
                count(pool, w, CCI_COUNT_STOLEN);
            return t;
        }
    }
    return NULL;
}

/* A task run while a trace is recorded: its span goes to the timeline.
 * Out of line, so that cci_pool_run needs no extra registers for it. */
static __attribute__((noinline)) enum cci_task_outcome
run_traced(struct cci_task *task, struct cci_task_counts *counts,
           struct cci_pool *pool)
{
    int64_t start = cci_now_ns();
    enum cci_task_outcome o = task->ops->run(task, counts);
    cci_trace_task(pool, pool->prefix, start, o);
    return o;
}

/* One predictable branch on the trace switch, then a tail call with the
 * arguments already in place: 5 instructions. (Anything that may call a
 * function here, such as freeing a bounded queue's place, makes the
 * compiler save registers on every call: future tasks do that
 * themselves.) */
enum cci_task_outcome cci_pool_run(struct cci_task *task,
                                   struct cci_task_counts *counts,
                                   struct cci_pool *pool)
{
    if (__builtin_expect(cci_trace_on(), 0))
        return run_traced(task, counts, pool);
    return task->ops->run(task, counts);
}

/* ---- workers ----------------------------------------------------------------- */

static void break_pool(struct cci_pool *pool);

/* Sleeps until woken; returns false if the pool stopped and there is no
 * work, true to look again. *found gets a task found on the last look. */
static bool sleep_for_work(struct cci_pool *pool, struct cci_worker *w,
                           struct cci_task **found)
{
    __atomic_fetch_add(&pool->sleepers, 1, __ATOMIC_SEQ_CST);
    uint32_t e = __atomic_load_n(&pool->epoch, __ATOMIC_SEQ_CST);
    *found = cci_pool_find_work(pool, w);
    bool keep_going = true;
    if (!*found) {
        if (pool_state(pool) != CCI_POOL_RUNNING) {
            keep_going = false;
        } else {
            cci_block_token tok = cci_block_begin(CC_WAIT_QUEUE, pool);
            cci_futex_wait(&pool->epoch, e, CCI_NO_DEADLINE, false);
            cci_block_end(tok);
        }
    }
    __atomic_fetch_sub(&pool->sleepers, 1, __ATOMIC_SEQ_CST);
    cci_pool_woke(pool);
    return keep_going;
}

/* A worker went idle after a task. Python releases its semaphore after
 * every task, so tokens pile up and a later burst may queue behind busy
 * workers; here there are never more tokens than workers. */
static void give_idle_token(struct cci_pool *pool)
{
    uint32_t n = __atomic_load_n(&pool->started, __ATOMIC_RELAXED);
    uint32_t t = __atomic_load_n(&pool->idle_tokens, __ATOMIC_RELAXED);
    while (t < n)
        if (__atomic_compare_exchange_n(&pool->idle_tokens, &t, t + 1, true,
                                        __ATOMIC_RELAXED, __ATOMIC_RELAXED))
            return;
}

static int worker_main(void *arg)
{
    struct cci_worker *w = arg;
    struct cci_pool *pool = w->pool;
    tls_worker = w;
    w->rng = (uint32_t)(w->index * 2654435761u + 1);

    if (pool->initializer) {
        int rc = pool->initializer(pool->initializer_ctx);
        if (rc < 0) {
            break_pool(pool);
            tls_worker = NULL;
            return cc_thread_fail(rc, "thread pool initializer failed");
        }
    }
    /* As in Python, a worker counts as idle (so that submits reuse it
     * instead of starting another) only once it has finished a task: a
     * worker that just started has a task on its way. */
    uint32_t idle_mark = 0;
    for (;;) {
        struct cci_task *t = cci_pool_find_work(pool, w);
        if (t) {
            cci_pool_run(t, &w->counts, pool);
            idle_mark = 1;
            continue;
        }
        /* Out of work: search a little, then sleep. At most half of the
         * workers search at once (as Go limits its spinning Ms): more
         * would only take CPU time from the threads producing the work. */
        __atomic_fetch_add(&pool->idle, idle_mark, __ATOMIC_SEQ_CST);
        if (idle_mark)
            give_idle_token(pool);
        uint32_t searchers =
            __atomic_add_fetch(&pool->searching, 1, __ATOMIC_SEQ_CST);
        uint32_t max_searchers =
            (__atomic_load_n(&pool->started, __ATOMIC_RELAXED) + 1) / 2;
        int rounds = searchers <= max_searchers ? SEARCH_ROUNDS : 0;
        for (int round = 0; round < rounds && !t; round++) {
            for (int k = 0; k < 32; k++)
                cci_cpu_relax();
            t = cci_pool_find_work(pool, w);
        }
        __atomic_fetch_sub(&pool->searching, 1, __ATOMIC_SEQ_CST);
        bool stop = false;
        while (!t && !stop) {
            if (pool_state(pool) != CCI_POOL_RUNNING) {
                /* Stopping: drain everything reachable, then exit. */
                t = cci_pool_find_work(pool, w);
                stop = t == NULL;
                break;
            }
            stop = !sleep_for_work(pool, w, &t);
        }
        __atomic_fetch_sub(&pool->idle, idle_mark, __ATOMIC_SEQ_CST);
        if (stop)
            break;
        /* We found work while others sleep: if more is queued anywhere, get
         * help, or it would wait until we finish (submits made while our
         * wake-up was on its way did not wake anyone). */
        if (cci_pool_work_visible(pool))
            cci_pool_wake_one(pool);
        cci_pool_run(t, &w->counts, pool);
        idle_mark = 1;
    }
    tls_worker = NULL;
    return 0;
}

/* Called with admin held. The worker is published in `started` only once
 * it runs: a submit picks its inbox among published workers, and a task in
 * the inbox of a worker that failed to start would never run. */
static int start_worker_locked(struct cci_pool *pool)
{
    uint32_t i = pool->started;
    struct cci_worker *w = &pool->workers[i];
    char name[96];
    snprintf(name, sizeof name, "%s_%u", pool->prefix, i);
    cc_thread_options o = {.name = name, .daemon = CC_DAEMON_YES};
    cc_thread *t;
    int rc = cc_thread_new(&t, worker_main, w, &o);
    if (rc != 0)
        return rc;
    w->thread = t;
    rc = cc_thread_start(t);
    if (rc != 0) {
        w->thread = NULL;
        cc_thread_unref(t);
        return rc;
    }
    __atomic_store_n(&pool->started, i + 1, __ATOMIC_RELEASE);
    return 0;
}

/* Takes one idle token if there is one (Python's
 * _idle_semaphore.acquire(timeout=0)). Each submit of a burst takes its
 * own, so a burst that outnumbers the idle workers starts new ones; a check
 * of the idle count alone let every submit of a burst count on the same
 * idle worker, and a pool could stay at one worker for good. */
static bool take_idle_token(struct cci_pool *pool)
{
    uint32_t t = __atomic_load_n(&pool->idle_tokens, __ATOMIC_RELAXED);
    while (t > 0)
        if (__atomic_compare_exchange_n(&pool->idle_tokens, &t, t - 1, true,
                                        __ATOMIC_RELAXED, __ATOMIC_RELAXED))
            return true;
    return false;
}

/* Starts one more worker if the pool runs and has room (checked again
 * under admin: another thread may have started the last one). */
static int start_worker_if_room(struct cci_pool *pool)
{
    cc_lock_acquire(&pool->admin, CC_FOREVER);
    int rc = 0;
    if (pool_state(pool) == CCI_POOL_RUNNING &&
        pool->started < pool->max_workers)
        rc = start_worker_locked(pool);
    cc_lock_release(&pool->admin);
    return rc;
}

/* Python's _adjust_thread_count: start a worker unless an idle one can
 * take the task. Once every worker runs, one load and no write. */
static int maybe_start_worker(struct cci_pool *pool)
{
    uint32_t started = __atomic_load_n(&pool->started, __ATOMIC_ACQUIRE);
    if (started >= pool->max_workers || (started > 0 && take_idle_token(pool)))
        return 0;
    int rc = start_worker_if_room(pool);
    /* With workers already running, failing to add one is not fatal. */
    return __atomic_load_n(&pool->started, __ATOMIC_ACQUIRE) > 0 ? 0 : rc;
}

/* Fork-join work spawned inside the pool: start a worker if there is room
 * and none is idle to steal it. Without this, a pool whose only task so
 * far was a fork-join root ran the whole tree on one worker. Once every
 * worker runs, one load. */
static void maybe_add_thief(struct cci_pool *pool)
{
    if (__atomic_load_n(&pool->started, __ATOMIC_RELAXED) >=
            pool->max_workers ||
        __atomic_load_n(&pool->idle, __ATOMIC_SEQ_CST) > 0)
        return;
    (void)start_worker_if_room(pool); /* failing is not fatal here */
}

int cci_pool_push(struct cci_pool *pool, struct cci_task *task)
{
    struct cci_worker *self = cci_pool_current_worker(pool);
    if (self) {
        /* From inside the pool: no lock, and allowed after shutdown so that
         * running fork-join work can finish (its worker drains its deque
         * before it exits). */
        if (pool_state(pool) == CCI_POOL_BROKEN)
            return CC_EBROKEN_EXECUTOR;
        int rc = cci_deque_push(&self->deque, task);
        if (rc != 0)
            return rc;
        maybe_add_thief(pool);
        wake_one_if_needed(pool, false);
        return 0;
    }
    int rc = maybe_start_worker(pool);
    if (rc != 0)
        return rc;
    uint32_t n = __atomic_load_n(&pool->started, __ATOMIC_ACQUIRE);
    struct cci_worker *w = &pool->workers[cci_gettid() % (n ? n : 1)];
    if (!inbox_push(w, task, false))
        return refusal(pool_state(pool)); /* closed by shutdown or break */
    wake_one_if_needed(pool, true);
    return 0;
}

/* ---- future tasks ---------------------------------------------------------------- */

struct future_task {
    struct cci_task base;
    cc_task_fn fn;
    void *arg;
};

static cc_future *future_of(struct future_task *ft)
{
    return (cc_future *)((char *)ft - sizeof(struct cc_future));
}

/* A bounded pool's queue has one more free place: a future task counts
 * against max_queued until it is taken, to run or to discard. Out of
 * line: most pools are not bounded. */
static __attribute__((noinline, cold)) void queue_slot_freed(
    struct cci_pool *pool)
{
    __atomic_fetch_sub(&pool->queued, 1, __ATOMIC_SEQ_CST);
    if (__atomic_load_n(&pool->queued_waiters, __ATOMIC_SEQ_CST) > 0)
        cci_futex_wake(&pool->queued, 1, false);
}

static inline void release_queue_slot(struct cci_pool *pool)
{
    if (pool->max_queued)
        queue_slot_freed(pool);
}

static enum cci_task_outcome future_task_run(struct cci_task *task,
                                             struct cci_task_counts *c)
{
    struct future_task *ft = (struct future_task *)task;
    cc_future *f = future_of(ft);
    /* The pool outlives its tasks: counting after the future is released
     * is safe. */
    struct cci_pool *pool = f->executor;
    release_queue_slot(pool);
    cci_count_bump(pool, c, CCI_COUNT_TAKEN);
    enum cci_task_outcome outcome = CCI_TASK_CANCELLED;
    if (cci_future_start_owned(f) == 0) {
        cci_task_scope scope = cci_task_message_begin();
        void *result = NULL;
        int status = ft->fn(ft->arg, &result);
        char *message = cci_task_message_end(scope);
        cci_future_finish_owned(f, status, result, message);
        free(message);
        outcome = status < 0 ? CCI_TASK_FAILED : CCI_TASK_COMPLETED;
    }
    cc_future_unref(f); /* the task's reference */
    cci_count_bump(pool, c, (enum cci_count)(CCI_COUNT_COMPLETED + outcome));
    return outcome;
}

static void future_task_discard(struct cci_task *task, int code)
{
    cc_future *f = future_of((struct future_task *)task);
    struct cci_pool *pool = f->executor;
    release_queue_slot(pool);
    struct cci_worker *w = current_worker(pool);
    count(pool, w, CCI_COUNT_TAKEN);
    count(pool, w,
          code == -ECANCELED ? CCI_COUNT_CANCELLED : CCI_COUNT_FAILED);
    if (code == -ECANCELED)
        cc_future_cancel(f);
    else if (cc_future_set_running_or_notify_cancel(f) == 0)
        cc_future_set_error(f, code, "%s", cc_strerror(code));
    cc_future_unref(f);
}

static const struct cci_task_ops future_task_ops = {
    .run = future_task_run,
    .discard = future_task_discard,
};

/* Reserves a place among max_queued; blocks or fails when full. */
static int reserve_queue_slot(struct cci_pool *pool)
{
    if (!pool->max_queued)
        return 0;
    cci_block_token tok = {0};
    bool blocked = false;
    int rc = 0;
    for (;;) {
        uint32_t q = __atomic_load_n(&pool->queued, __ATOMIC_SEQ_CST);
        if (q < pool->max_queued) {
            if (__atomic_compare_exchange_n(&pool->queued, &q, q + 1, false,
                                            __ATOMIC_SEQ_CST,
                                            __ATOMIC_RELAXED))
                break;
            continue;
        }
        if (pool->fail_when_full) {
            rc = CC_EFULL;
            break;
        }
        if (pool_state(pool) != CCI_POOL_RUNNING) {
            rc = refusal(pool_state(pool));
            break;
        }
        if (!blocked) {
            tok = cci_block_begin(CC_WAIT_QUEUE, pool);
            blocked = true;
        }
        __atomic_fetch_add(&pool->queued_waiters, 1, __ATOMIC_SEQ_CST);
        if (__atomic_load_n(&pool->queued, __ATOMIC_SEQ_CST) == q)
            cci_futex_wait(&pool->queued, q, CCI_NO_DEADLINE, false);
        __atomic_fetch_sub(&pool->queued_waiters, 1, __ATOMIC_SEQ_CST);
    }
    if (blocked)
        cci_block_end(tok);
    return rc;
}

static int pool_submit(cc_executor *ex, cc_task_fn fn, void *arg,
                       cc_future **out)
{
    struct cci_pool *pool = (struct cci_pool *)ex;
    enum cci_pool_state s = pool_state(pool);
    if (s != CCI_POOL_RUNNING)
        return refusal(s);
    int rc = reserve_queue_slot(pool);
    if (rc != 0)
        return rc;
    cc_future *f;
    rc = cci_future_new_ex(&f, pool, sizeof(struct future_task));
    if (rc != 0) {
        release_queue_slot(pool);
        return rc;
    }
    struct future_task *ft = cci_future_extra(f);
    ft->base.ops = &future_task_ops;
    ft->fn = fn;
    ft->arg = arg;
    /* One reference for the caller, one for the task: not shared yet, so a
     * plain store instead of an atomic increment. */
    atomic_store_explicit(&f->refs, 2, memory_order_relaxed);
    struct cci_worker *self = current_worker(pool);
    if (self && pool_state(pool) != CCI_POOL_RUNNING)
        rc = CC_ESHUTDOWN; /* Python refuses submits after shutdown */
    else
        rc = cci_pool_push(pool, &ft->base);
    if (rc != 0) {
        release_queue_slot(pool);
        cc_future_unref(f);
        cc_future_unref(f);
        return rc;
    }
    count(pool, self, CCI_COUNT_SUBMITTED);
    *out = f;
    return 0;
}

/* ---- shutdown and breaking --------------------------------------------------- */

/* After the state left RUNNING: close every inbox to new submits, then, if
 * asked, take every queued task and discard it. */
static void drain(struct cci_pool *pool, bool discard_tasks, int code)
{
    for (unsigned i = 0; i < pool->max_workers; i++) {
        struct cci_worker *w = &pool->workers[i];
        inbox_close(w);
        if (!discard_tasks)
            continue;
        struct cci_task *list = inbox_take_all(w);
        while (list) {
            struct cci_task *next = list->next;
            list->ops->discard(list, code);
            list = next;
        }
        if (i < __atomic_load_n(&pool->started, __ATOMIC_ACQUIRE)) {
            struct cci_task *t;
            while ((t = cci_deque_steal(&w->deque)) != NULL)
                t->ops->discard(t, code);
        }
    }
}

static void break_pool(struct cci_pool *pool)
{
    cc_lock_acquire(&pool->admin, CC_FOREVER);
    bool first = pool_state(pool) == CCI_POOL_RUNNING;
    if (first)
        set_pool_state(pool, CCI_POOL_BROKEN);
    cc_lock_release(&pool->admin);
    if (first) {
        drain(pool, true, CC_EBROKEN_EXECUTOR);
        cci_pool_wake_all(pool);
        /* Wake submitters blocked on a full queue: they fail now. */
        cci_futex_wake(&pool->queued, INT32_MAX, false);
    }
}

static int pool_shutdown(cc_executor *ex, bool wait, bool cancel_futures)
{
    struct cci_pool *pool = (struct cci_pool *)ex;
    if (wait && cci_pool_current_worker(pool))
        return -EDEADLK;
    cc_lock_acquire(&pool->admin, CC_FOREVER);
    if (pool_state(pool) == CCI_POOL_RUNNING)
        set_pool_state(pool, CCI_POOL_SHUTDOWN);
    uint32_t started = pool->started;
    cc_lock_release(&pool->admin);

    drain(pool, cancel_futures, -ECANCELED);
    cci_pool_wake_all(pool);
    /* Submitters blocked on a full queue fail now. */
    cci_futex_wake(&pool->queued, INT32_MAX, false);
    if (wait) {
        for (uint32_t i = 0; i < started; i++)
            cc_thread_join(pool->workers[i].thread, CC_FOREVER);
    }
    return 0;
}

/* ---- process exit ----------------------------------------------------------------
 * As Python's concurrent.futures does at interpreter exit, a normal process
 * exit waits for the tasks already accepted by every live pool, so none is
 * silently dropped: live pools are listed, and an atexit handler shuts each
 * down with wait. Workers are daemon threads; this handler is what waits for
 * them. The list lock is held during those shutdowns, so a task must not
 * free a pool while the process exits. */
static pthread_mutex_t live_lock = PTHREAD_MUTEX_INITIALIZER;
static struct cci_pool *live_pools; /* guarded by live_lock */
static pthread_once_t exit_once = PTHREAD_ONCE_INIT;

static void shutdown_live_pools(void)
{
    pthread_mutex_lock(&live_lock);
    for (struct cci_pool *p = live_pools; p; p = p->next_live)
        pool_shutdown(&p->base, cci_pool_current_worker(p) == NULL, false);
    pthread_mutex_unlock(&live_lock);
}

static void register_exit_handler(void)
{
    atexit(shutdown_live_pools);
}

static void live_add(struct cci_pool *pool)
{
    pthread_once(&exit_once, register_exit_handler);
    pthread_mutex_lock(&live_lock);
    pool->next_live = live_pools;
    live_pools = pool;
    pthread_mutex_unlock(&live_lock);
}

static void live_remove(struct cci_pool *pool)
{
    pthread_mutex_lock(&live_lock);
    struct cci_pool **pp = &live_pools;
    while (*pp && *pp != pool)
        pp = &(*pp)->next_live;
    if (*pp)
        *pp = pool->next_live;
    pthread_mutex_unlock(&live_lock);
}

bool cci_thread_pools_foreach(void (*fn)(cc_executor *ex, void *ctx),
                              void *ctx)
{
    if (!cci_mutex_lock_briefly(&live_lock))
        return false;
    for (struct cci_pool *p = live_pools; p; p = p->next_live)
        fn(&p->base, ctx);
    pthread_mutex_unlock(&live_lock);
    return true;
}

static void pool_destroy(cc_executor *ex)
{
    struct cci_pool *pool = (struct cci_pool *)ex;
    live_remove(pool);
    for (unsigned i = 0; i < pool->max_workers; i++) {
        struct cci_worker *w = &pool->workers[i];
        cc_thread_unref(w->thread);
        cci_deque_destroy(&w->deque);
    }
    struct cci_outside_counts *b = pool->outside;
    while (b) {
        struct cci_outside_counts *next = b->next;
        free(b);
        b = next;
    }
    free(pool->workers);
    free(pool->prefix);
    free(pool);
}

static unsigned pool_max_workers(const cc_executor *ex)
{
    return ((const struct cci_pool *)ex)->max_workers;
}

static uint64_t sum_count(const struct cci_pool *pool, uint32_t started,
                          enum cci_count which)
{
    uint64_t n = __atomic_load_n(&pool->shared_counts.n[which],
                                 __ATOMIC_RELAXED);
    for (uint32_t i = 0; i < started; i++)
        n += __atomic_load_n(&pool->workers[i].counts.n[which],
                             __ATOMIC_RELAXED);
    for (const struct cci_outside_counts *b =
             __atomic_load_n(&pool->outside, __ATOMIC_ACQUIRE);
         b; b = b->next)
        n += __atomic_load_n(&b->counts.n[which], __ATOMIC_RELAXED);
    return n;
}

static int pool_stats(const cc_executor *ex, cc_pool_stats *out)
{
    const struct cci_pool *pool = (const struct cci_pool *)ex;
    uint32_t started = __atomic_load_n(&pool->started, __ATOMIC_ACQUIRE);
    cc_pool_stats s = {0};
    /* Read the later stages of a task's life first: each counter only
     * grows, so finished <= taken <= submitted holds in the snapshot
     * except for a task pushed and taken between two reads. */
    s.completed = sum_count(pool, started, CCI_COUNT_COMPLETED);
    s.failed = sum_count(pool, started, CCI_COUNT_FAILED);
    s.cancelled = sum_count(pool, started, CCI_COUNT_CANCELLED);
    s.stolen = sum_count(pool, started, CCI_COUNT_STOLEN);
    s.forkjoin_done = sum_count(pool, started, CCI_COUNT_FORKJOIN);
    uint64_t taken = sum_count(pool, started, CCI_COUNT_TAKEN);
    s.submitted = sum_count(pool, started, CCI_COUNT_SUBMITTED);
    uint64_t finished = s.completed + s.failed + s.cancelled;
    s.queued = s.submitted > taken ? s.submitted - taken : 0;
    s.running = taken > finished ? taken - finished : 0;
    s.worker_restarts = 0;
    s.workers = started;
    s.idle_workers = __atomic_load_n(&pool->idle, __ATOMIC_RELAXED);
    s.max_workers = pool->max_workers;
    enum cci_pool_state st = pool_state(pool);
    s.shutdown = st != CCI_POOL_RUNNING;
    s.broken = st == CCI_POOL_BROKEN;
    *out = s;
    return 0;
}

static const struct cci_executor_ops thread_pool_ops = {
    .kind = "thread",
    .submit = pool_submit,
    .shutdown = pool_shutdown,
    .destroy = pool_destroy,
    .max_workers = pool_max_workers,
    .stats = pool_stats,
};

bool cci_is_thread_pool(const cc_executor *ex)
{
    return ex && ex->ops == &thread_pool_ops;
}

/* ---- creation ------------------------------------------------------------------- */

static unsigned long pool_counter;

int cc_thread_pool_new(cc_executor **out, const cc_thread_pool_options *opts)
{
    if (!out)
        return -EINVAL;
    cc_thread_pool_options o = opts ? *opts : (cc_thread_pool_options){0};
    if (o.max_queued > UINT32_MAX / 2)
        return -EINVAL;
    unsigned max = o.max_workers;
    if (max == 0) {
        max = cci_cpu_count() + 4;
        if (max > 32)
            max = 32;
    }
    if (max > 4096)
        return -EINVAL;

    struct cci_pool *pool = calloc(1, sizeof *pool);
    if (!pool)
        return -ENOMEM;
    pool->base.ops = &thread_pool_ops;
    pool->max_workers = max;
    pool->initializer = o.initializer;
    pool->initializer_ctx = o.initializer_ctx;
    pool->max_queued = o.max_queued;
    pool->fail_when_full = o.submit_fails_when_full;
    cc_lock_init(&pool->admin, 0);
    char fallback[48];
    if (!o.thread_name_prefix) {
        snprintf(fallback, sizeof fallback, "ThreadPoolExecutor-%lu",
                 __atomic_fetch_add(&pool_counter, 1, __ATOMIC_RELAXED));
        o.thread_name_prefix = fallback;
    }
    pool->prefix = strdup(o.thread_name_prefix);
    pool->workers = aligned_alloc(64, sizeof(struct cci_worker) * max);
    if (!pool->prefix || !pool->workers) {
        free(pool->prefix);
        free(pool->workers);
        free(pool);
        return -ENOMEM;
    }
    memset(pool->workers, 0, sizeof(struct cci_worker) * max);
    for (unsigned i = 0; i < max; i++) {
        struct cci_worker *w = &pool->workers[i];
        w->pool = pool;
        w->index = i;
        if (cci_deque_init(&w->deque, 8) != 0) {
            for (unsigned j = 0; j < i; j++)
                cci_deque_destroy(&pool->workers[j].deque);
            free(pool->prefix);
            free(pool->workers);
            free(pool);
            return -ENOMEM;
        }
    }
    static uint64_t pool_ids;
    pool->id = __atomic_add_fetch(&pool_ids, 1, __ATOMIC_RELAXED);
    /* Dumps and traces show the pool by its prefix unless renamed. */
    cci_name_set_default(pool, pool->prefix);
    live_add(pool);
    *out = &pool->base;
    return 0;
}
