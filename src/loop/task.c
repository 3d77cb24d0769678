/*
 * Tasks: a stackful coroutine plus the future it completes.
 *
 * A task's record lives in its future's extra storage (one allocation),
 * tagged through the future's executor binding so that any cc_future can be
 * recognised as a task. The loop holds one reference while the task is
 * alive; the record therefore lives until the task has finished and
 * everyone has dropped the future.
 *
 * States (written on the loop thread only, through set_state):
 *   READY      queued to run (first start, or woken)
 *   RUNNING    on its coroutine now
 *   SUSPENDED  waiting; exactly the wake sources it armed can queue it
 *   DONE       finished; never runs again
 *
 * Wake-ups: a suspended task is resumed by its `step` handle, queued by
 * task_wake(), which sources call with the reason: a timer (-ETIMEDOUT),
 * cancellation (-ECANCELED), a future's waker or a coroutine primitive
 * (0). task_wake ignores tasks that are not SUSPENDED, so the first reason
 * wins and later ones are dropped. Every wait re-checks its own condition
 * after waking, so a wake-up it did not ask for is harmless.
 *
 * Waiting for futures: a wait group arms one waker per future. When the
 * wait ends early (timeout, cancel, FIRST_COMPLETED), the wakers not fired
 * are disarmed; one whose completion is already in flight in another
 * thread cannot be, and stays "orphaned" with a reference on the group
 * (and, for the group embedded in the task, on the task's future) until it
 * arrives. That is what lets a single await use no allocation at all.
 */
#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include "concur/error.h"
#include "concur/thread.h"
#include "executor/executor_internal.h"
#include "loop/coro.h"
#include "loop/loop_internal.h"
#include "loop/task_internal.h"
#include "platform/platform.h"
#include "time/deadline.h"
#include "trace/trace_internal.h"

/* Marks a future as a task's (its executor binding). */
static char task_tag;

enum task_state { T_READY, T_RUNNING, T_SUSPENDED, T_DONE };

/* Internal return_when for gather: stop at the first failure or
 * cancellation. */
#define CCI_GATHER 100

struct cci_task;

struct wait_slot {
    cci_waker w;
    struct wait_group *g;
};

struct wait_group {
    struct cci_task *t;
    struct wait_slot *slots;
    size_t n_slots; /* slots armed, one per future pending at the start */
    size_t total;   /* futures waited for */
    size_t fired;   /* of those, done (at the start, or fired since) */
    int first_error;
    uint32_t refs; /* 1 for the waiting task, + 1 per orphaned slot */
    int return_when;
    bool failed;    /* a future finished with an error */
    bool cancelled; /* a future was cancelled */
    bool closed;    /* the wait is over: fired slots only release */
    bool embedded;  /* t->await_group */
    bool pinned;    /* embedded and holding a reference on t's future */
};

/* What a task waits for, for the thread dump in another thread: a
 * sequence lock as the thread records use (thread.c). Only the loop's
 * thread writes it, once per wait, never on a switch. */
struct await_record {
    uint32_t seq; /* odd while being written */
    struct cci_await a;
    int64_t since_coarse;
    int64_t deadline;
};

struct cci_task {
    struct cci_coro coro;
    cc_loop *loop;
    cc_future *future;
    cc_task_fn fn;
    void *arg;
    void *result;
    int rc;
    char *message;
    cc_handle step;                /* resumes the coroutine */
    cc_handle timer;               /* the deadline of the current wait */
    struct wait_group await_group; /* for single awaits, no allocation */
    struct wait_slot await_slot;
    bool await_busy;
    struct cci_task *prev, *next; /* loop->tasks */
    cc_async_group *group;
    struct cci_task *gprev, *gnext; /* group->children */
    cc_timeout *scopes;             /* innermost first */
    struct cci_waiter waiter;       /* in a coroutine primitive's list */
    int wake_rc;
    int64_t created_ns; /* for the trace; 0 if created while not tracing */
    struct await_record await;
    uint8_t state; /* enum task_state; the dump reads it (relaxed) */
    bool started;
    bool cancel_requested;
    bool wake_pending; /* woken while RUNNING: the next suspend returns */
};

static __thread struct cci_task *tls_task;

static struct cci_task *task_of(const cc_future *f)
{
    if (!f || cci_future_executor(f) != &task_tag)
        return NULL;
    return cci_future_extra((cc_future *)f);
}

/* The task's function, as the trace and the dump name it when the future
 * has none. */
static const void *fn_address(const struct cci_task *t)
{
    return (const void *)(uintptr_t)t->fn;
}

cc_future *cc_task_current(void)
{
    return tls_task ? tls_task->future : NULL;
}

/* ---- stacks -------------------------------------------------------------- */

static int stack_get(cc_loop *loop, cci_stack *out)
{
    cci_stack *cache = loop->stack_cache;
    if (loop->stack_cache_len > 0) {
        *out = cache[--loop->stack_cache_len];
        cci_coro_stack_reset(out);
        return 0;
    }
    return cci_stack_alloc(out, loop->stack_size);
}

static void stack_put(cc_loop *loop, cci_stack *stack)
{
    if (!loop->stack_cache)
        loop->stack_cache = malloc(loop->stack_cache_max * sizeof(cci_stack));
    cci_stack *cache = loop->stack_cache;
    if (cache && loop->stack_cache_len < loop->stack_cache_max)
        cache[loop->stack_cache_len++] = *stack;
    else
        cci_stack_free(stack);
}

void cci_loop_free_stacks(cc_loop *loop)
{
    cci_stack *cache = loop->stack_cache;
    while (loop->stack_cache_len > 0)
        cci_stack_free(&cache[--loop->stack_cache_len]);
    free(cache);
    loop->stack_cache = NULL;
}

/* ---- state and what the dump sees ---------------------------------------- */

/* Every change of state: the store is atomic (relaxed) because the dump
 * reads it from another thread, and the loop counts its ready tasks. Both
 * are plain moves on x86: a switch pays a compare and a store more. */
static void set_state(struct cci_task *t, enum task_state to)
{
    cc_loop *loop = t->loop;
    if (t->state == T_READY && to != T_READY)
        cci_loop_count(&loop->tasks_ready, loop->tasks_ready - 1);
    else if (t->state != T_READY && to == T_READY)
        cci_loop_count(&loop->tasks_ready, loop->tasks_ready + 1);
    __atomic_store_n(&t->state, (uint8_t)to, __ATOMIC_RELAXED);
}

/* Writer side of the sequence lock. No fences (ThreadSanitizer cannot
 * see them): each field store is a release, so the odd sequence number
 * is visible before any field changes; the reader loads fields with
 * acquire, so its re-check of the sequence cannot move before them. */
void cci_task_await(struct cci_task *t, cc_wait_kind kind, const void *object,
                    const char *op, int64_t number, int64_t deadline)
{
    if (t->scopes && t->scopes->effective < deadline)
        deadline = t->scopes->effective;
    /* The dump must not dereference the future: it may be gone by then. */
    const struct cci_task *awaited =
        kind == CC_WAIT_FUTURE ? task_of(object) : NULL;
    struct await_record *r = &t->await;
    uint32_t seq = r->seq;
    __atomic_store_n(&r->seq, seq + 1, __ATOMIC_RELAXED);
    __atomic_store_n(&r->a.kind, kind, __ATOMIC_RELEASE);
    __atomic_store_n(&r->a.object, object, __ATOMIC_RELEASE);
    __atomic_store_n(&r->a.op, op, __ATOMIC_RELEASE);
    __atomic_store_n(&r->a.number, number, __ATOMIC_RELEASE);
    __atomic_store_n(&r->a.fn, awaited ? fn_address(awaited) : NULL,
                     __ATOMIC_RELEASE);
    __atomic_store_n(&r->since_coarse, cci_now_coarse_ns(), __ATOMIC_RELEASE);
    __atomic_store_n(&r->deadline, deadline, __ATOMIC_RELEASE);
    __atomic_store_n(&r->seq, seq + 2, __ATOMIC_RELEASE);
}

/* Reader side; false if the record kept changing (the loop's thread was
 * preempted in the middle of a write, 1000 times). */
static bool await_read(const struct await_record *r, struct cci_task_info *i)
{
    for (int tries = 0; tries < 1000; tries++) {
        uint32_t s1 = __atomic_load_n(&r->seq, __ATOMIC_ACQUIRE);
        if (s1 & 1) {
            cci_cpu_relax();
            continue;
        }
        i->await.kind = __atomic_load_n(&r->a.kind, __ATOMIC_ACQUIRE);
        i->await.object = __atomic_load_n(&r->a.object, __ATOMIC_ACQUIRE);
        i->await.op = __atomic_load_n(&r->a.op, __ATOMIC_ACQUIRE);
        i->await.number = __atomic_load_n(&r->a.number, __ATOMIC_ACQUIRE);
        i->await.fn = __atomic_load_n(&r->a.fn, __ATOMIC_ACQUIRE);
        i->since_coarse = __atomic_load_n(&r->since_coarse, __ATOMIC_ACQUIRE);
        i->deadline = __atomic_load_n(&r->deadline, __ATOMIC_ACQUIRE);
        if (__atomic_load_n(&r->seq, __ATOMIC_RELAXED) == s1)
            return true;
    }
    return false;
}

/*
 * The latch that keeps the dump's walk and the unlinking of a finished
 * task apart (loop_internal.h): 0 free, 1 held. A spin lock rather than a
 * mutex because it is taken once per task (an exchange and a plain store
 * are a third of what a mutex costs) and its only other holder is a dump,
 * which keeps it while it copies 32 tasks at most: the loop's thread
 * spins, then yields, never sleeps.
 */
static bool latch_try(cc_loop *loop)
{
    return __atomic_exchange_n(&loop->tasks_latch, 1, __ATOMIC_ACQUIRE) == 0;
}

/* Takes the latch before the absolute deadline (CCI_NO_DEADLINE: ever). */
static __attribute__((noinline)) bool latch_wait(cc_loop *loop,
                                                 int64_t deadline)
{
    for (unsigned i = 0;; i++) {
        if (__atomic_load_n(&loop->tasks_latch, __ATOMIC_RELAXED) == 0 &&
            latch_try(loop))
            return true;
        if (i < 100) {
            cci_cpu_relax();
            continue;
        }
        if (deadline != CCI_NO_DEADLINE && cci_now_ns() >= deadline)
            return false;
        sched_yield(); /* the holder was preempted */
    }
}

static void latch_release(cc_loop *loop)
{
    __atomic_store_n(&loop->tasks_latch, 0, __ATOMIC_RELEASE);
}

int cci_loop_task_infos(cc_loop *loop, struct cci_task_info *out, int max)
{
    if (!latch_try(loop) && !latch_wait(loop, cci_now_ns() + CC_MSEC(100)))
        return -EBUSY;
    /* Holding the latch, no task we reach can be unlinked (see
     * loop_internal.h); a task linked meanwhile is missed or seen whole.
     * Only fields set before the task was linked are read plainly. */
    int n = 0;
    for (struct cci_task *t = __atomic_load_n(&loop->tasks, __ATOMIC_ACQUIRE);
         t && n < max; t = t->next) {
        struct cci_task_info *i = &out[n++];
        memset(i, 0, sizeof *i);
        i->future = t->future;
        i->fn = fn_address(t);
        cci_name_lookup(t->future, i->name, sizeof i->name);
        uint8_t st = __atomic_load_n(&t->state, __ATOMIC_RELAXED);
        i->state = st == T_RUNNING     ? CCI_TASK_RUNNING
                   : st == T_SUSPENDED ? CCI_TASK_WAITING
                                       : CCI_TASK_READY;
        if (i->state == CCI_TASK_WAITING && !await_read(&t->await, i))
            i->await.kind = CC_WAIT_OTHER; /* unknown: it kept changing */
    }
    latch_release(loop);
    return n;
}

/* ---- wake-ups ------------------------------------------------------------ */

static void task_wake(struct cci_task *t, int rc)
{
    if (t->state == T_SUSPENDED) {
        t->wake_rc = rc;
        set_state(t, T_READY);
        cci_loop_ready(t->loop, &t->step);
    } else if (t->state == T_RUNNING && !t->wake_pending) {
        t->wake_pending = true;
        t->wake_rc = rc;
    }
}

static void task_timer_fired(cc_loop *loop, void *ctx)
{
    (void)loop;
    task_wake(ctx, -ETIMEDOUT);
}

static void mark_scopes(struct cci_task *t, int64_t now)
{
    for (cc_timeout *s = t->scopes; s; s = s->outer)
        if (s->deadline <= now)
            s->expired = true;
}

/*
 * Suspends the running task until a wake source queues it or deadline
 * (absolute; CCI_NO_DEADLINE for none) passes; with `scoped`, the
 * innermost timeout scope's deadline counts too. Returns the wake reason:
 * 0, -ETIMEDOUT, -ECANCELED; or -ENOMEM (timer heap). May return 0
 * spuriously: callers re-check their condition.
 */
static int task_suspend_in_order(struct cci_task *t, int64_t deadline,
                                 bool scoped, bool in_order)
{
    if (t->wake_pending) {
        t->wake_pending = false;
        return t->wake_rc;
    }
    int64_t d = deadline;
    if (scoped && t->scopes && t->scopes->effective < d)
        d = t->scopes->effective;
    if (d != CCI_NO_DEADLINE) {
        int64_t now = cci_now_ns();
        /* in_order (a sleep): its own deadline, even if already passed (the
         * thread was preempted since it was computed), still goes through
         * the timer heap, so the task wakes after every timer due earlier,
         * as asyncio.sleep does, instead of overtaking them. */
        if (d <= now && !(in_order && d == deadline)) {
            if (scoped)
                mark_scopes(t, now);
            return -ETIMEDOUT;
        }
        int rc = cci_loop_timer_add(t->loop, &t->timer, d);
        if (rc < 0)
            return rc;
    }
    set_state(t, T_SUSPENDED);
    t->wake_rc = 0;
    cci_coro_yield(&t->coro);
    /* A timer that fired but whose run is still queued must not wake a
     * later wait: cancel that run. */
    if (t->timer.state == CCI_H_TIMER)
        cci_loop_timer_remove(t->loop, &t->timer);
    else if (t->timer.state == CCI_H_READY)
        t->timer.state = CCI_H_CANCELLED;
    if (t->wake_rc == -ETIMEDOUT && scoped)
        mark_scopes(t, cci_now_ns());
    return t->wake_rc;
}

static int task_suspend(struct cci_task *t, int64_t deadline, bool scoped)
{
    return task_suspend_in_order(t, deadline, scoped, false);
}

/* ---- running and finishing ----------------------------------------------- */

static void task_main(void *arg)
{
    struct cci_task *t = arg;
    void *result = NULL;
    t->rc = t->fn(t->arg, &result);
    t->result = result;
}

static void group_child_done(struct cci_task *t);

static void release_future(cc_loop *loop, void *f)
{
    (void)loop;
    cc_future_unref(f);
}

static __attribute__((noinline)) void trace_done(const struct cci_task *t)
{
    enum cci_task_outcome o =
        !t->started || t->rc == -ECANCELED ? CCI_TASK_CANCELLED
        : t->rc < 0                         ? CCI_TASK_FAILED
                                            : CCI_TASK_COMPLETED;
    cci_trace_coro_done(t->future, fn_address(t), t->created_ns, o);
}

static void task_finish(struct cci_task *t)
{
    cc_loop *loop = t->loop;
    if (cci_trace_on())
        trace_done(t);
    if (t->coro.stack.base) {
        cci_coro_destroy(&t->coro);
        stack_put(loop, &t->coro.stack);
        t->coro.stack.base = NULL;
    }
    assert(t->timer.state != CCI_H_TIMER);
    if (!latch_try(loop)) /* a dump walks the list */
        latch_wait(loop, CCI_NO_DEADLINE);
    if (t->prev)
        t->prev->next = t->next;
    else
        __atomic_store_n(&loop->tasks, t->next, __ATOMIC_RELEASE);
    if (t->next)
        t->next->prev = t->prev;
    latch_release(loop);
    cci_loop_count(&loop->task_count, loop->task_count - 1);
    set_state(t, T_DONE);
    if (t->group)
        group_child_done(t);
    if (t->started)
        (void)cci_future_finish(t->future, t->rc, t->result, NULL,
                                t->rc < 0 ? t->message : NULL);
    free(t->message);
    t->message = NULL;
    /* The loop's reference, which may free t. A timer that fired in this
     * iteration may still be linked in the batch being run (its run was
     * cancelled when the task resumed): then the reference goes when the
     * loop has passed it. */
    cci_loop_free_after(loop, &t->timer, t->future, release_future);
}

static void task_step(cc_loop *loop, void *ctx)
{
    struct cci_task *t = ctx;
    if (t->state != T_READY)
        return;
    if (!t->started) {
        /* Cancelled (cc_future_cancel, any thread) before it started. */
        if (cc_future_set_running_or_notify_cancel(t->future) < 0) {
            task_finish(t);
            return;
        }
        t->started = true;
        cci_stack stack;
        int rc = stack_get(loop, &stack);
        if (rc < 0) {
            t->rc = rc;
            task_finish(t);
            return;
        }
        cci_coro_init(&t->coro, stack, task_main, t);
    }
    set_state(t, T_RUNNING);
    struct cci_task *outer = tls_task;
    tls_task = t;
    /* cc_task_fail keeps its message per thread: collect it per slice. */
    cci_task_scope scope = cci_task_message_begin();
    /* The trace's running slice: from here to the next switch back. */
    int64_t slice = cci_trace_on() ? cci_now_ns() : 0;
    cci_coro_resume(&t->coro);
    if (slice)
        cci_trace_coro_run(t->future, fn_address(t), slice);
    char *message = cci_task_message_end(scope);
    tls_task = outer;
    if (message) {
        free(t->message);
        t->message = message;
    }
    if (t->coro.done)
        task_finish(t);
}

int cc_loop_create_task(cc_loop *loop, cc_task_fn fn, void *arg,
                        cc_future **out)
{
    if (!loop || !fn)
        return -EINVAL;
    int rc = cci_loop_check_thread(loop);
    if (rc == 0)
        rc = cci_loop_check_open(loop);
    if (rc < 0)
        return rc;
    cc_future *f;
    rc = cci_future_new_ex(&f, &task_tag, sizeof(struct cci_task));
    if (rc < 0)
        return rc;
    struct cci_task *t = cci_future_extra(f);
    memset(t, 0, sizeof *t);
    t->loop = loop;
    t->future = f;
    t->fn = fn;
    t->arg = arg;
    t->state = T_DONE; /* not counted as ready until set_state below */
    if (cci_trace_on())
        t->created_ns = cci_now_ns();
    cci_handle_init_embedded(&t->step, loop, task_step, t);
    cci_handle_init_embedded(&t->timer, loop, task_timer_fired, t);
    set_state(t, T_READY);
    t->next = loop->tasks;
    if (t->next)
        t->next->prev = t;
    /* Release: the dump that finds t finds it initialised. */
    __atomic_store_n(&loop->tasks, t, __ATOMIC_RELEASE);
    cci_loop_count(&loop->task_count, loop->task_count + 1);
    cci_loop_ready(loop, &t->step);
    if (out)
        *out = cc_future_ref(f);
    return 0;
}

int cc_create_task(cc_task_fn fn, void *arg, cc_future **out)
{
    cc_loop *loop = cci_loop_running();
    if (!loop)
        return fn ? -EPERM : -EINVAL;
    return cc_loop_create_task(loop, fn, arg, out);
}

bool cc_task_cancel(cc_future *f)
{
    struct cci_task *t = task_of(f);
    if (!t || cci_loop_check_thread(t->loop) < 0)
        return false;
    if (cc_future_cancelled(f))
        return true;
    if (t->state == T_DONE)
        return false;
    if (!t->started)
        return cc_future_cancel(f); /* it will never run */
    t->cancel_requested = true;
    task_wake(t, -ECANCELED);
    return true;
}

bool cc_task_cancelling(const cc_future *f)
{
    struct cci_task *t = task_of(f);
    return t && (t->cancel_requested || cc_future_cancelled(f));
}

void cci_loop_cancel_all_tasks(cc_loop *loop)
{
    for (struct cci_task *t = loop->tasks; t; t = t->next)
        if (!t->cancel_requested)
            cc_task_cancel(t->future);
}

int cc_run(cc_task_fn main, void *arg, void **result)
{
    if (!main)
        return -EINVAL;
    if (cci_loop_running())
        return -EBUSY;
    cc_loop *loop;
    int rc = cc_loop_new(&loop, NULL);
    if (rc < 0)
        return rc;
    cc_future *f;
    rc = cc_loop_create_task(loop, main, arg, &f);
    if (rc == 0) {
        rc = cc_loop_run_until_complete(loop, f);
        if (rc == 0 && result)
            rc = cc_future_result(f, CC_NOWAIT, result);
        cc_future_unref(f);
    }
    cc_loop_free(loop);
    return rc;
}

/* ---- waiting for futures ------------------------------------------------- */

static void group_release(struct wait_group *g)
{
    if (--g->refs > 0)
        return;
    if (!g->embedded) {
        free(g);
        return;
    }
    struct cci_task *t = g->t;
    t->await_busy = false;
    if (g->pinned) {
        g->pinned = false;
        cc_future_unref(t->future); /* may free t, and g with it */
    }
}

static int failure_of(cc_future *f)
{
    if (cc_future_cancelled(f))
        return -ECANCELED;
    return cci_future_failed(f) ? f->error : 0;
}

static bool group_satisfied(const struct wait_group *g)
{
    bool all = g->fired >= g->total;
    switch (g->return_when) {
    case CC_FIRST_COMPLETED:
        return g->fired > 0 || all;
    case CC_FIRST_EXCEPTION:
        return g->failed || all;
    case CCI_GATHER:
        return g->failed || g->cancelled || all;
    default:
        return all;
    }
}

static void slot_fired(cci_waker *w, bool fired)
{
    (void)fired;
    struct wait_slot *s = (struct wait_slot *)w;
    struct wait_group *g = s->g;
    if (g->closed) {
        group_release(g);
        return;
    }
    g->fired++;
    int err = failure_of(w->future);
    if (err == -ECANCELED && cc_future_cancelled(w->future))
        g->cancelled = true;
    else if (err < 0)
        g->failed = true;
    if (err < 0 && g->first_error == 0)
        g->first_error = err;
    if (group_satisfied(g))
        task_wake(g->t, 0);
}

static struct wait_group *group_new(struct cci_task *t, size_t n)
{
    struct wait_group *g;
    if (n == 1 && !t->await_busy) {
        g = &t->await_group;
        memset(g, 0, sizeof *g);
        g->slots = &t->await_slot;
        g->embedded = true;
        t->await_busy = true;
    } else {
        if (n > (SIZE_MAX - sizeof *g) / sizeof(struct wait_slot))
            return NULL;
        g = calloc(1, sizeof *g + n * sizeof(struct wait_slot));
        if (!g)
            return NULL;
        g->slots = (struct wait_slot *)(g + 1);
    }
    g->t = t;
    g->refs = 1;
    return g;
}

/* Ends the wait: disarms what has not fired; orphans keep g alive. */
static void group_close(struct wait_group *g)
{
    g->closed = true;
    for (size_t i = 0; i < g->n_slots; i++) {
        if (!cci_waker_disarm(&g->slots[i].w))
            g->refs++;
    }
    if (g->embedded && g->refs > 1) {
        cc_future_ref(g->t->future); /* the orphans point into the task */
        g->pinned = true;
    }
    group_release(g);
}

/*
 * The core of every future wait in a task. Returns 0 once return_when
 * holds or the own deadline passed (the caller looks at the futures),
 * -ECANCELED (with `interruptible`, once the task is cancelled),
 * -ETIMEDOUT (a timeout scope expired), or -ENOMEM. *first_error gets the
 * first failure seen (gather).
 */
static int wait_futures(struct cci_task *t, cc_future *const *fs, size_t n,
                        int return_when, int64_t deadline, bool interruptible,
                        int *first_error)
{
    if (interruptible && t->cancel_requested)
        return -ECANCELED;
    struct wait_group probe = {.return_when = return_when, .total = n};
    for (size_t i = 0; i < n; i++) {
        if (!cc_future_done(fs[i]))
            continue;
        probe.fired++;
        int err = failure_of(fs[i]);
        if (err == -ECANCELED && cc_future_cancelled(fs[i]))
            probe.cancelled = true;
        else if (err < 0)
            probe.failed = true;
        if (err < 0 && probe.first_error == 0)
            probe.first_error = err;
    }
    if (first_error)
        *first_error = probe.first_error;
    if (group_satisfied(&probe))
        return 0;
    struct wait_group *g = group_new(t, n);
    if (!g)
        return -ENOMEM;
    g->return_when = return_when;
    g->failed = probe.failed;
    g->cancelled = probe.cancelled;
    g->first_error = probe.first_error;
    /* Futures done already count as fired; arm a slot for each other. */
    g->total = n;
    g->fired = probe.fired;
    for (size_t i = 0; i < n; i++) {
        if (cc_future_done(fs[i]))
            continue;
        struct wait_slot *s = &g->slots[g->n_slots++];
        s->g = g;
        cci_waker_arm(t->loop, &s->w, fs[i], slot_fired);
    }
    /* For the dump: the first future pending, and how many in all. */
    cci_task_await(t, CC_WAIT_FUTURE, g->slots[0].w.future,
                   n == 1                      ? NULL
                   : return_when == CCI_GATHER ? "gather"
                                               : "wait",
                   (int64_t)n, deadline);
    int rc;
    for (;;) {
        rc = task_suspend(t, deadline, interruptible);
        if (interruptible && t->cancel_requested) {
            rc = -ECANCELED;
            break;
        }
        if (group_satisfied(g)) {
            rc = 0;
            break;
        }
        if (rc == -ETIMEDOUT) {
            if (deadline != CCI_NO_DEADLINE && cci_now_ns() >= deadline)
                rc = 0; /* our own limit: the caller reports what is done */
            break;
        }
        if (rc < 0 && rc != -ECANCELED)
            break;
        /* Spurious, or a cancel we were told to ignore: wait on. */
    }
    if (first_error)
        *first_error = g->first_error;
    group_close(g);
    return rc;
}

/* Cancels f and, for a task, waits until it has finished (asyncio's
 * _cancel_and_wait), ignoring the caller's own cancellation meanwhile. */
static void cancel_and_wait(struct cci_task *t, cc_future *f)
{
    if (task_of(f)) {
        cc_task_cancel(f);
        while (!cc_future_done(f))
            if (wait_futures(t, &f, 1, CC_ALL_COMPLETED, CCI_NO_DEADLINE, false,
                             NULL) == -ENOMEM)
                break;
    } else {
        cc_future_cancel(f);
    }
}

/* Outside a task: block the thread, unless it runs a loop. */
static int outside_task_check(void)
{
    return cci_loop_running() ? -EDEADLK : 0;
}

int cc_await(cc_future *f, void **result)
{
    if (!f)
        return -EINVAL;
    struct cci_task *t = tls_task;
    if (!t) {
        if (!cc_future_done(f) && outside_task_check() < 0)
            return -EDEADLK;
        return cc_future_result(f, CC_FOREVER, result);
    }
    if (f == t->future)
        return -EDEADLK;
    int rc =
        wait_futures(t, &f, 1, CC_ALL_COMPLETED, CCI_NO_DEADLINE, true, NULL);
    if (rc < 0)
        return rc;
    return cc_future_result(f, CC_NOWAIT, result);
}

int cc_wait_for(cc_future *f, cc_duration timeout, void **result)
{
    if (!f || !cci_duration_valid(timeout))
        return -EINVAL;
    struct cci_task *t = tls_task;
    if (!t) {
        if (!cc_future_done(f) && outside_task_check() < 0)
            return -EDEADLK;
        return cc_future_result(f, timeout, result);
    }
    if (f == t->future)
        return -EDEADLK;
    int64_t deadline = cci_deadline_after(timeout);
    int rc = wait_futures(t, &f, 1, CC_ALL_COMPLETED, deadline, true, NULL);
    if (rc == -ENOMEM)
        return rc;
    if (rc < 0 || !cc_future_done(f)) {
        /* Our limit, a scope's, or our cancellation: f goes too. */
        cancel_and_wait(t, f);
        return rc < 0 ? rc : -ETIMEDOUT;
    }
    return cc_future_result(f, CC_NOWAIT, result);
}

static int check_many(cc_future *const *fs, size_t n)
{
    if ((!fs && n > 0) || n > INT32_MAX)
        return -EINVAL;
    for (size_t i = 0; i < n; i++)
        if (!fs[i])
            return -EINVAL;
    return 0;
}

int cc_async_wait(cc_future *const *fs, size_t n, cc_return_when return_when,
                  cc_duration timeout, bool *done)
{
    int rc = check_many(fs, n);
    if (rc < 0 || !cci_duration_valid(timeout) ||
        (return_when != CC_ALL_COMPLETED && return_when != CC_FIRST_COMPLETED &&
         return_when != CC_FIRST_EXCEPTION))
        return -EINVAL;
    struct cci_task *t = tls_task;
    if (!t) {
        if (timeout != CC_NOWAIT && outside_task_check() < 0)
            return -EDEADLK;
        return cc_future_wait_many(fs, n, return_when, timeout, done);
    }
    rc = wait_futures(t, fs, n, (int)return_when, cci_deadline_after(timeout),
                      true, NULL);
    if (rc < 0)
        return rc;
    int count = 0;
    for (size_t i = 0; i < n; i++) {
        bool d = cc_future_done(fs[i]);
        if (done)
            done[i] = d;
        count += d;
    }
    return count;
}

int cc_gather(cc_future *const *fs, size_t n)
{
    int rc = check_many(fs, n);
    if (rc < 0)
        return rc;
    struct cci_task *t = tls_task;
    if (!t) {
        if (outside_task_check() < 0)
            return -EDEADLK;
        rc = cc_future_wait_many(fs, n, CC_FIRST_EXCEPTION, CC_FOREVER, NULL);
        if (rc < 0)
            return rc;
        for (size_t i = 0; i < n; i++)
            if (cc_future_done(fs[i]) && failure_of(fs[i]) < 0)
                return failure_of(fs[i]);
        return 0;
    }
    int first_error = 0;
    rc =
        wait_futures(t, fs, n, CCI_GATHER, CCI_NO_DEADLINE, true, &first_error);
    if (rc == -ECANCELED) {
        for (size_t i = 0; i < n; i++)
            if (!cc_task_cancel(fs[i]))
                cc_future_cancel(fs[i]);
        return rc;
    }
    if (rc < 0)
        return rc;
    return first_error;
}

int cc_async_sleep(cc_duration d)
{
    if (!cci_duration_valid(d))
        return -EINVAL;
    struct cci_task *t = tls_task;
    if (!t)
        return cc_sleep(d);
    if (d == 0)
        return cc_async_yield();
    if (t->cancel_requested)
        return -ECANCELED;
    int64_t deadline = cci_deadline_after(d);
    cci_task_await(t, CC_WAIT_SLEEP, NULL, NULL, 0, deadline);
    for (;;) {
        int rc = task_suspend_in_order(t, deadline, true, true);
        if (t->cancel_requested)
            return -ECANCELED;
        if (deadline != CCI_NO_DEADLINE && cci_now_ns() >= deadline)
            return 0;
        if (rc == -ETIMEDOUT || rc == -ENOMEM)
            return rc; /* a scope ended first */
    }
}

int cc_async_yield(void)
{
    struct cci_task *t = tls_task;
    if (!t)
        return -EPERM;
    if (t->cancel_requested)
        return -ECANCELED;
    set_state(t, T_READY);
    cci_loop_ready(t->loop, &t->step);
    cci_coro_yield(&t->coro);
    t->wake_pending = false;
    return t->cancel_requested ? -ECANCELED : 0;
}

/* ---- for coroutine primitives (task_internal.h) -------------------------- */

struct cci_task *cci_task_running(void)
{
    return tls_task;
}

bool cci_task_cancel_requested(const struct cci_task *t)
{
    return t->cancel_requested;
}

int cci_task_suspend(struct cci_task *t, int64_t deadline, bool scoped)
{
    return task_suspend(t, deadline, scoped);
}

void cci_task_wake(struct cci_task *t, int rc)
{
    task_wake(t, rc);
}

static void waitlist_unlink(struct cci_waitlist *l, struct cci_waiter *w)
{
    if (w->prev)
        w->prev->next = w->next;
    else
        l->head = w->next;
    if (w->next)
        w->next->prev = w->prev;
    else
        l->tail = w->prev;
    w->prev = w->next = NULL;
}

int cci_waitlist_wait(struct cci_waitlist *l, int64_t deadline,
                      cc_wait_kind kind, const void *object, const char *op)
{
    struct cci_task *t = tls_task;
    if (!t)
        return -EPERM;
    if (t->cancel_requested)
        return -ECANCELED;
    /* A task waits on one list at a time, so its node lives in it. */
    struct cci_waiter *w = &t->waiter;
    *w = (struct cci_waiter){.prev = l->tail, .task = t};
    if (l->tail)
        l->tail->next = w;
    else
        l->head = w;
    l->tail = w;
    cci_task_await(t, kind, object, op, 0, deadline);
    int rc;
    for (;;) {
        rc = task_suspend(t, deadline, true);
        if (t->cancel_requested)
            rc = -ECANCELED;
        else if (w->woken)
            rc = 0;
        if (w->woken || rc < 0)
            break;
    }
    if (!w->woken)
        waitlist_unlink(l, w);
    else if (rc < 0)
        cci_waitlist_wake_one(l); /* do not swallow the wake-up */
    return rc;
}

bool cci_waitlist_wake_one(struct cci_waitlist *l)
{
    struct cci_waiter *w = l->head;
    if (!w)
        return false;
    waitlist_unlink(l, w);
    w->woken = true;
    task_wake(w->task, 0);
    return true;
}

void cci_waitlist_wake_all(struct cci_waitlist *l)
{
    while (cci_waitlist_wake_one(l))
        ;
}

/* ---- timeout scopes ------------------------------------------------------ */

int cc_timeout_enter(cc_timeout *s, cc_duration timeout)
{
    if (!s || !cci_duration_valid(timeout))
        return -EINVAL;
    struct cci_task *t = tls_task;
    if (!t)
        return -EPERM;
    s->deadline = cci_deadline_after(timeout);
    s->outer = t->scopes;
    s->effective = s->deadline;
    if (s->outer && s->outer->effective < s->effective)
        s->effective = s->outer->effective;
    s->task = t;
    s->expired = false;
    t->scopes = s;
    return 0;
}

int cc_timeout_exit(cc_timeout *s)
{
    struct cci_task *t = tls_task;
    if (!s || !t || t->scopes != s)
        return -EINVAL;
    t->scopes = s->outer;
    return s->expired ? -ETIMEDOUT : 0;
}

/* ---- task groups --------------------------------------------------------- */

int cc_async_group_init(cc_async_group *g)
{
    if (!g)
        return -EINVAL;
    cc_loop *loop = cci_loop_running();
    if (!loop)
        return -EPERM;
    memset(g, 0, sizeof *g);
    g->loop = loop;
    return 0;
}

static void group_cancel_children(cc_async_group *g)
{
    for (struct cci_task *c = g->children; c; c = c->gnext)
        cc_task_cancel(c->future);
}

int cc_async_group_spawn(cc_async_group *g, cc_task_fn fn, void *arg,
                         cc_future **out)
{
    if (!g || !fn || !g->loop || g->joined)
        return -EINVAL;
    if (g->error)
        return -ECANCELED;
    cc_future *f;
    int rc = cc_loop_create_task(g->loop, fn, arg, &f);
    if (rc < 0)
        return rc;
    struct cci_task *t = task_of(f);
    t->group = g;
    t->gnext = g->children;
    if (t->gnext)
        t->gnext->gprev = t;
    g->children = t;
    g->live++;
    if (out)
        *out = f;
    else
        cc_future_unref(f);
    return 0;
}

static void group_child_done(struct cci_task *t)
{
    cc_async_group *g = t->group;
    t->group = NULL;
    if (t->gprev)
        t->gprev->gnext = t->gnext;
    else
        g->children = t->gnext;
    if (t->gnext)
        t->gnext->gprev = t->gprev;
    g->live--;
    if (t->started && t->rc < 0 && t->rc != -ECANCELED && g->error == 0) {
        g->error = t->rc;
        group_cancel_children(g);
    }
    if (g->live == 0 && g->joiner)
        task_wake(g->joiner, 0);
}

int cc_async_group_join(cc_async_group *g)
{
    if (!g || !g->loop || g->joined)
        return -EINVAL;
    struct cci_task *t = tls_task;
    if (!t)
        return -EPERM;
    int stop = 0; /* why the children were cancelled by us */
    if (t->cancel_requested) {
        stop = -ECANCELED;
        group_cancel_children(g);
    }
    g->joiner = t;
    cci_task_await(t, CC_WAIT_JOIN, g, NULL, 0, CCI_NO_DEADLINE);
    while (g->live > 0) {
        int rc = task_suspend(t, CCI_NO_DEADLINE, stop == 0);
        if (stop == 0 &&
            (rc == -ECANCELED || rc == -ETIMEDOUT || t->cancel_requested)) {
            stop = t->cancel_requested ? -ECANCELED : rc;
            group_cancel_children(g);
        }
    }
    g->joiner = NULL;
    g->joined = true;
    return g->error ? g->error : stop;
}
