/* Behaviour of concur/sync.h against Python's threading semantics: Lock,
 * RLock, Condition, Semaphore, BoundedSemaphore, Event, Barrier and Once,
 * within a process and across fork(), plus stress runs of racy scenarios. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "harness.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- helpers ------------------------------------------------------------- */

static cc_thread *spawn(cc_thread_fn fn, void *ctx)
{
    cc_thread *t = NULL;
    assert_int_equal(cc_thread_new(&t, fn, ctx, NULL), 0);
    assert_int_equal(cc_thread_start(t), 0);
    return t;
}

/* Joins t, drops the reference and returns the thread's status. */
static int join(cc_thread *t)
{
    assert_int_equal(cc_thread_join(t, CC_SEC(30)), 0);
    int status = -1;
    assert_int_equal(cc_thread_status(t, &status), 0);
    cc_thread_unref(t);
    return status;
}

struct blocked_query {
    cc_thread *thread;
    cc_wait_kind kind;
    const void *object;
};

static bool blocked_on(cc_thread *t, cc_wait_kind kind, const void *object)
{
    cc_wait_info info;
    return cc_thread_get_state(t) == CC_THREAD_BLOCKED &&
           cc_thread_wait_info(t, &info) == 0 && info.kind == kind &&
           info.object == object;
}

static bool query_blocked(void *arg)
{
    struct blocked_query *q = arg;
    return blocked_on(q->thread, q->kind, q->object);
}

/* Polls until t shows BLOCKED on (kind, object). */
static void assert_blocked_on(cc_thread *t, cc_wait_kind kind,
                              const void *object)
{
    struct blocked_query q = {t, kind, object};
    assert_true(cct_wait_until(query_blocked, &q, CC_SEC(10)));
}

static void assert_all_blocked_on(cc_thread **ts, int n, cc_wait_kind kind,
                                  const void *object)
{
    for (int i = 0; i < n; i++)
        assert_blocked_on(ts[i], kind, object);
}

struct counter_query {
    const int *counter;
    int value;
};

static bool counter_reached(void *arg)
{
    struct counter_query *q = arg;
    return __atomic_load_n(q->counter, __ATOMIC_ACQUIRE) >= q->value;
}

static bool wait_counter(const int *counter, int value, cc_duration timeout)
{
    struct counter_query q = {counter, value};
    return cct_wait_until(counter_reached, &q, timeout);
}

static int load_int(const int *p)
{
    return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}

static void add_int(int *p, int v)
{
    __atomic_add_fetch(p, v, __ATOMIC_ACQ_REL);
}

/* A wait expected to take about 0.5 s passes between 0.3 s and 5 s. */
static void assert_about_half_second(int64_t start)
{
    double s = cct_seconds_since(start);
    assert_true(s >= 0.3);
    assert_true(s < 5.0);
}

/* ---- Lock ---------------------------------------------------------------- */

static void test_lock_basics_and_errors(void **state)
{
    (void)state;
    cc_lock lock = CC_LOCK_INIT;
    assert_false(cc_lock_locked(&lock));
    assert_int_equal(cc_lock_init(NULL, 0), -EINVAL);
    assert_int_equal(cc_lock_init(&lock, 2), -EINVAL);
    assert_int_equal(cc_lock_init(&lock, 0), 0);
    assert_int_equal(cc_lock_acquire(NULL, CC_FOREVER), -EINVAL);
    assert_int_equal(cc_lock_acquire(&lock, -2), -EINVAL);
    assert_int_equal(cc_lock_acquire(&lock, CC_INVALID_DURATION), -EINVAL);
    assert_int_equal(cc_lock_release(NULL), -EINVAL);
    assert_int_equal(cc_lock_destroy(NULL), -EINVAL);
    assert_false(cc_lock_locked(NULL));

    /* Releasing an unlocked lock is Python's RuntimeError. */
    assert_int_equal(cc_lock_release(&lock), -EPERM);
    assert_int_equal(cc_lock_acquire(&lock, CC_NOWAIT), 0);
    assert_true(cc_lock_locked(&lock));
    assert_int_equal(cc_lock_acquire(&lock, CC_NOWAIT), -ETIMEDOUT);
    assert_int_equal(cc_lock_acquire(&lock, CC_MSEC(1)), -ETIMEDOUT);
    assert_int_equal(cc_lock_destroy(&lock), -EBUSY);
    assert_int_equal(cc_lock_release(&lock), 0);
    assert_int_equal(cc_lock_release(&lock), -EPERM);
    assert_false(cc_lock_locked(&lock));
    assert_int_equal(cc_lock_destroy(&lock), 0);
}

struct lock_count {
    cc_lock lock;
    long counter;
    int iterations;
};

static int lock_count_thread(void *arg)
{
    struct lock_count *c = arg;
    for (int i = 0; i < c->iterations; i++) {
        if (cc_lock_acquire(&c->lock, CC_FOREVER) != 0)
            return -1;
        long v = c->counter; /* a non-atomic read-modify-write */
        c->counter = v + 1;
        if (cc_lock_release(&c->lock) != 0)
            return -1;
    }
    return 0;
}

static void test_lock_mutual_exclusion(void **state)
{
    (void)state;
    struct lock_count c = {CC_LOCK_INIT, 0, 50000};
    cc_thread *ts[4];
    for (int i = 0; i < 4; i++)
        ts[i] = spawn(lock_count_thread, &c);
    for (int i = 0; i < 4; i++)
        assert_int_equal(join(ts[i]), 0);
    assert_int_equal(c.counter, 4L * c.iterations);
    assert_int_equal(cc_lock_destroy(&c.lock), 0);
}

struct timed_acquire {
    cc_lock lock;
    cc_duration timeout;
};

static int timed_acquire_thread(void *arg)
{
    struct timed_acquire *t = arg;
    int rc = cc_lock_acquire(&t->lock, t->timeout);
    if (rc == 0)
        rc = cc_lock_release(&t->lock);
    return rc;
}

static void test_lock_timed_acquire_and_blocked_state(void **state)
{
    (void)state;
    struct timed_acquire ta = {CC_LOCK_INIT, CC_FOREVER};
    assert_int_equal(cc_lock_acquire(&ta.lock, CC_FOREVER), 0);

    /* Acquiring a Lock you hold yourself blocks until the timeout. */
    int64_t start = cc_monotonic_ns();
    assert_int_equal(cc_lock_acquire(&ta.lock, CC_MSEC(500)), -ETIMEDOUT);
    assert_about_half_second(start);

    /* Another thread waits, BLOCKED on the lock, until it is released. */
    cc_thread *t = spawn(timed_acquire_thread, &ta);
    assert_blocked_on(t, CC_WAIT_LOCK, &ta.lock);
    assert_int_equal(cc_lock_release(&ta.lock), 0);
    assert_int_equal(join(t), 0);

    /* A timed wait in another thread gives up. */
    assert_int_equal(cc_lock_acquire(&ta.lock, CC_FOREVER), 0);
    ta.timeout = CC_MSEC(500);
    start = cc_monotonic_ns();
    t = spawn(timed_acquire_thread, &ta);
    assert_int_equal(join(t), -ETIMEDOUT);
    assert_about_half_second(start);
    assert_int_equal(cc_lock_release(&ta.lock), 0);
}

static int release_thread(void *arg)
{
    return cc_lock_release(arg);
}

static void test_lock_released_by_other_thread(void **state)
{
    (void)state;
    /* A Lock is not owned: any thread may release it. */
    cc_lock lock = CC_LOCK_INIT;
    assert_int_equal(cc_lock_acquire(&lock, CC_FOREVER), 0);
    assert_int_equal(join(spawn(release_thread, &lock)), 0);
    assert_false(cc_lock_locked(&lock));
    assert_int_equal(join(spawn(release_thread, &lock)), -EPERM);
}

/* ---- RLock --------------------------------------------------------------- */

struct rlock_probe {
    cc_rlock rlock;
    cc_duration timeout;
};

static int rlock_foreign_release(void *arg)
{
    struct rlock_probe *p = arg;
    if (cc_rlock_is_owned(&p->rlock) || cc_rlock_count(&p->rlock) != 0)
        return -1;
    return cc_rlock_release(&p->rlock);
}

static int rlock_acquire_thread(void *arg)
{
    struct rlock_probe *p = arg;
    int rc = cc_rlock_acquire(&p->rlock, p->timeout);
    if (rc != 0)
        return rc;
    if (cc_rlock_count(&p->rlock) != 1)
        return -2;
    return cc_rlock_release(&p->rlock);
}

static void test_rlock_recursion_and_ownership(void **state)
{
    (void)state;
    struct rlock_probe p = {CC_RLOCK_INIT, CC_NOWAIT};
    assert_int_equal(cc_rlock_init(NULL, 0), -EINVAL);
    assert_int_equal(cc_rlock_init(&p.rlock, 4), -EINVAL);
    assert_int_equal(cc_rlock_init(&p.rlock, 0), 0);
    assert_int_equal(cc_rlock_acquire(NULL, CC_FOREVER), -EINVAL);
    assert_int_equal(cc_rlock_acquire(&p.rlock, -5), -EINVAL);
    assert_int_equal(cc_rlock_release(NULL), -EINVAL);
    assert_int_equal(cc_rlock_release(&p.rlock), -EPERM);
    assert_false(cc_rlock_is_owned(&p.rlock));

    for (uint32_t i = 1; i <= 3; i++) {
        assert_int_equal(cc_rlock_acquire(&p.rlock, CC_NOWAIT), 0);
        assert_int_equal(cc_rlock_count(&p.rlock), i);
    }
    assert_true(cc_rlock_is_owned(&p.rlock));
    assert_int_equal(cc_rlock_destroy(&p.rlock), -EBUSY);

    /* Another thread neither owns it nor may release it nor take it. */
    assert_int_equal(join(spawn(rlock_foreign_release, &p)), -EPERM);
    assert_int_equal(join(spawn(rlock_acquire_thread, &p)), -ETIMEDOUT);
    p.timeout = CC_MSEC(500);
    int64_t start = cc_monotonic_ns();
    assert_int_equal(join(spawn(rlock_acquire_thread, &p)), -ETIMEDOUT);
    assert_about_half_second(start);

    /* A waiter shows BLOCKED on the RLock and gets it after the last
     * release, not before. */
    p.timeout = CC_FOREVER;
    cc_thread *t = spawn(rlock_acquire_thread, &p);
    assert_blocked_on(t, CC_WAIT_RLOCK, &p.rlock);
    assert_int_equal(cc_rlock_release(&p.rlock), 0);
    assert_int_equal(cc_rlock_release(&p.rlock), 0);
    assert_int_equal(cc_rlock_count(&p.rlock), 1);
    assert_true(blocked_on(t, CC_WAIT_RLOCK, &p.rlock));
    assert_int_equal(cc_rlock_release(&p.rlock), 0);
    assert_int_equal(join(t), 0);
    assert_false(cc_rlock_is_owned(&p.rlock));
    assert_int_equal(cc_rlock_release(&p.rlock), -EPERM);
    assert_int_equal(cc_rlock_destroy(&p.rlock), 0);
}

/* ---- Condition ----------------------------------------------------------- */

struct cond_ctx {
    cc_lock lock;
    cc_condition cond;
    int woken; /* __atomic */
    int ready; /* __atomic: waiters about to wait */
    int state; /* protected by lock */
    cc_duration timeout;
};

static void cond_ctx_init(struct cond_ctx *c)
{
    memset(c, 0, sizeof *c);
    assert_int_equal(cc_lock_init(&c->lock, 0), 0);
    assert_int_equal(cc_condition_init(&c->cond, &c->lock, 0), 0);
    c->timeout = CC_FOREVER;
}

/* Waits once; returns the wait's result. */
static int cond_wait_once(void *arg)
{
    struct cond_ctx *c = arg;
    if (cc_lock_acquire(&c->lock, CC_FOREVER) != 0)
        return -100;
    add_int(&c->ready, 1);
    int rc = cc_condition_wait(&c->cond, c->timeout);
    if (!cc_lock_locked(&c->lock))
        rc = -101; /* the lock must be held again on return */
    add_int(&c->woken, 1);
    cc_lock_release(&c->lock);
    return rc;
}

static void notify(struct cond_ctx *c, unsigned n)
{
    assert_int_equal(cc_lock_acquire(&c->lock, CC_FOREVER), 0);
    assert_int_equal(cc_condition_notify(&c->cond, n), 0);
    assert_int_equal(cc_lock_release(&c->lock), 0);
}

static void test_condition_errors(void **state)
{
    (void)state;
    struct cond_ctx c;
    cond_ctx_init(&c);
    cc_lock shared_lock;
    assert_int_equal(cc_lock_init(&shared_lock, CC_SYNC_PSHARED), 0);
    cc_condition other;
    assert_int_equal(cc_condition_init(NULL, &c.lock, 0), -EINVAL);
    assert_int_equal(cc_condition_init(&other, NULL, 0), -EINVAL);
    assert_int_equal(cc_condition_init(&other, &c.lock, 8), -EINVAL);
    assert_int_equal(cc_condition_init(&other, &shared_lock, 0), -EINVAL);
    assert_int_equal(cc_condition_init(&other, &c.lock, CC_SYNC_PSHARED),
                     -EINVAL);
    assert_int_equal(cc_condition_init_rlock(&other, NULL, 0), -EINVAL);
    assert_int_equal(cc_condition_wait(NULL, CC_FOREVER), -EINVAL);
    assert_int_equal(cc_condition_notify(NULL, 1), -EINVAL);
    assert_int_equal(cc_condition_notify_all(NULL), -EINVAL);
    assert_int_equal(cc_condition_destroy(NULL), -EINVAL);

    /* wait and notify need the lock (Python's RuntimeError). */
    assert_int_equal(cc_condition_wait(&c.cond, CC_NOWAIT), -EPERM);
    assert_int_equal(cc_condition_notify(&c.cond, 1), -EPERM);
    assert_int_equal(cc_condition_notify_all(&c.cond), -EPERM);
    assert_int_equal(cc_lock_acquire(&c.lock, CC_FOREVER), 0);
    assert_int_equal(cc_condition_wait(&c.cond, -3), -EINVAL);
    assert_int_equal(cc_condition_wait_for(&c.cond, NULL, NULL, CC_NOWAIT),
                     -EINVAL);
    /* With nobody waiting, notify does nothing and wait(0) times out with
     * the lock held again. */
    assert_int_equal(cc_condition_notify(&c.cond, 3), 0);
    assert_int_equal(cc_condition_notify(&c.cond, 0), 0);
    assert_int_equal(cc_condition_wait(&c.cond, CC_NOWAIT), -ETIMEDOUT);
    assert_true(cc_lock_locked(&c.lock));
    int64_t start = cc_monotonic_ns();
    assert_int_equal(cc_condition_wait(&c.cond, CC_MSEC(500)), -ETIMEDOUT);
    assert_about_half_second(start);
    assert_true(cc_lock_locked(&c.lock));
    assert_int_equal(cc_lock_release(&c.lock), 0);
    assert_int_equal(cc_condition_destroy(&c.cond), 0);
}

static void test_condition_notify_wakes_exactly_n(void **state)
{
    (void)state;
    struct cond_ctx c;
    cond_ctx_init(&c);
    cc_thread *ts[5];
    for (int i = 0; i < 5; i++)
        ts[i] = spawn(cond_wait_once, &c);
    assert_all_blocked_on(ts, 5, CC_WAIT_CONDITION, &c.cond);
    assert_int_equal(cc_condition_destroy(&c.cond), -EBUSY);

    notify(&c, 2);
    assert_true(wait_counter(&c.woken, 2, CC_SEC(10)));
    /* Give a wrong third wake-up time to show itself. */
    assert_false(wait_counter(&c.woken, 3, CC_MSEC(200)));
    int still = 0;
    for (int i = 0; i < 5; i++)
        still += blocked_on(ts[i], CC_WAIT_CONDITION, &c.cond);
    assert_int_equal(still, 3);

    /* notify(n) with n above the number of waiters wakes them all. */
    notify(&c, 10);
    assert_true(wait_counter(&c.woken, 5, CC_SEC(10)));
    for (int i = 0; i < 5; i++)
        assert_int_equal(join(ts[i]), 0);

    /* notify_all wakes every waiter. */
    c.woken = 0;
    for (int i = 0; i < 4; i++)
        ts[i] = spawn(cond_wait_once, &c);
    assert_all_blocked_on(ts, 4, CC_WAIT_CONDITION, &c.cond);
    assert_int_equal(cc_lock_acquire(&c.lock, CC_FOREVER), 0);
    assert_int_equal(cc_condition_notify_all(&c.cond), 0);
    assert_int_equal(cc_lock_release(&c.lock), 0);
    for (int i = 0; i < 4; i++)
        assert_int_equal(join(ts[i]), 0);
    assert_int_equal(cc_condition_destroy(&c.cond), 0);
}

static void test_condition_late_waiter_not_woken(void **state)
{
    (void)state;
    struct cond_ctx c;
    cond_ctx_init(&c);
    cc_thread *a = spawn(cond_wait_once, &c);
    assert_blocked_on(a, CC_WAIT_CONDITION, &c.cond);

    /* The main thread starts waiting after notify(1): the notification is
     * A's, so the main thread times out and A returns. */
    assert_int_equal(cc_lock_acquire(&c.lock, CC_FOREVER), 0);
    assert_int_equal(cc_condition_notify(&c.cond, 1), 0);
    assert_int_equal(cc_condition_wait(&c.cond, CC_MSEC(300)), -ETIMEDOUT);
    assert_int_equal(cc_lock_release(&c.lock), 0);
    assert_int_equal(join(a), 0);

    /* A, then B and C: notify(1) is for A alone even if B and C start
     * waiting (and a second notify(1) comes) before A has re-taken the
     * lock. Exactly A and one of B, C return. */
    for (int round = 0; round < 5; round++) {
        c.woken = 0;
        c.ready = 0;
        a = spawn(cond_wait_once, &c);
        assert_blocked_on(a, CC_WAIT_CONDITION, &c.cond);
        assert_int_equal(cc_lock_acquire(&c.lock, CC_FOREVER), 0);
        assert_int_equal(cc_condition_notify(&c.cond, 1), 0);
        cc_thread *b = spawn(cond_wait_once, &c);
        cc_thread *d = spawn(cond_wait_once, &c);
        assert_blocked_on(b, CC_WAIT_LOCK, &c.lock);
        assert_blocked_on(d, CC_WAIT_LOCK, &c.lock);
        /* Let A, B and C race for the lock (the main thread waits too, as
         * a late waiter) until B and C wait as well, then notify(1)
         * again, maybe before A has taken its notification. */
        while (load_int(&c.ready) < 3)
            assert_int_equal(cc_condition_wait(&c.cond, CC_MSEC(2)),
                             -ETIMEDOUT);
        assert_int_equal(cc_condition_notify(&c.cond, 1), 0);
        assert_int_equal(cc_lock_release(&c.lock), 0);
        assert_int_equal(join(a), 0);
        assert_true(wait_counter(&c.woken, 2, CC_SEC(10)));
        assert_false(wait_counter(&c.woken, 3, CC_MSEC(50)));
        notify(&c, 1);
        assert_int_equal(join(b), 0);
        assert_int_equal(join(d), 0);
    }
}

static bool state_reached(void *arg)
{
    struct cond_ctx *c = arg;
    return c->state >= 3; /* read with the lock held by wait_for */
}

static int cond_stepper(void *arg)
{
    struct cond_ctx *c = arg;
    for (int i = 0; i < 3; i++) {
        cc_lock_acquire(&c->lock, CC_FOREVER);
        c->state++;
        cc_condition_notify_all(&c->cond);
        cc_lock_release(&c->lock);
        cc_sleep(CC_MSEC(5));
    }
    return 0;
}

static void test_condition_wait_for(void **state)
{
    (void)state;
    struct cond_ctx c;
    cond_ctx_init(&c);
    assert_int_equal(
        cc_condition_wait_for(&c.cond, state_reached, &c, CC_NOWAIT), -EPERM);
    assert_int_equal(cc_lock_acquire(&c.lock, CC_FOREVER), 0);
    int64_t start = cc_monotonic_ns();
    assert_int_equal(
        cc_condition_wait_for(&c.cond, state_reached, &c, CC_MSEC(500)),
        -ETIMEDOUT);
    assert_about_half_second(start);
    assert_int_equal(
        cc_condition_wait_for(&c.cond, state_reached, &c, CC_NOWAIT),
        -ETIMEDOUT);

    /* Several notifications arrive before the predicate holds: wait_for
     * keeps waiting within one total deadline. */
    cc_thread *t = spawn(cond_stepper, &c);
    assert_int_equal(
        cc_condition_wait_for(&c.cond, state_reached, &c, CC_SEC(10)), 0);
    assert_int_equal(c.state, 3);
    assert_true(cc_lock_locked(&c.lock));
    /* True at once: returns without waiting. */
    assert_int_equal(
        cc_condition_wait_for(&c.cond, state_reached, &c, CC_NOWAIT), 0);
    assert_int_equal(cc_lock_release(&c.lock), 0);
    assert_int_equal(join(t), 0);
}

struct rcond_ctx {
    cc_rlock rlock;
    cc_condition cond;
    int flag; /* protected by rlock */
    cc_duration timeout;
};

static int rcond_signaller(void *arg)
{
    struct rcond_ctx *c = arg;
    /* Possible only if the waiter released the RLock completely. */
    if (cc_rlock_acquire(&c->rlock, c->timeout) != 0)
        return -1;
    c->flag = 1;
    int rc = cc_condition_notify(&c->cond, 1);
    cc_rlock_release(&c->rlock);
    return rc;
}

static void test_condition_with_rlock(void **state)
{
    (void)state;
    struct rcond_ctx c;
    memset(&c, 0, sizeof c);
    assert_int_equal(cc_rlock_init(&c.rlock, 0), 0);
    c.timeout = CC_SEC(10);
    assert_int_equal(cc_condition_init_rlock(&c.cond, &c.rlock, 0), 0);
    assert_int_equal(cc_condition_wait(&c.cond, CC_NOWAIT), -EPERM);
    for (int i = 0; i < 3; i++)
        assert_int_equal(cc_rlock_acquire(&c.rlock, CC_FOREVER), 0);
    cc_thread *t = spawn(rcond_signaller, &c);
    while (!c.flag)
        assert_int_equal(cc_condition_wait(&c.cond, CC_SEC(10)), 0);
    assert_int_equal(join(t), 0);
    assert_true(cc_rlock_is_owned(&c.rlock));
    assert_int_equal(cc_rlock_count(&c.rlock), 3);
    /* Owned again by the main thread only. */
    c.timeout = CC_NOWAIT;
    assert_int_equal(join(spawn(rcond_signaller, &c)), -1);
    for (int i = 0; i < 3; i++)
        assert_int_equal(cc_rlock_release(&c.rlock), 0);
    assert_int_equal(join(spawn(rcond_signaller, &c)), 0);
    assert_int_equal(cc_condition_notify(&c.cond, 1), -EPERM);
    assert_int_equal(cc_condition_destroy(&c.cond), 0);
}

/* ---- Semaphore ----------------------------------------------------------- */

struct sem_ctx {
    cc_semaphore sem;
    int done; /* __atomic */
    cc_duration timeout;
};

static int sem_acquire_thread(void *arg)
{
    struct sem_ctx *s = arg;
    int rc = cc_semaphore_acquire(&s->sem, s->timeout);
    add_int(&s->done, 1);
    return rc;
}

static void test_semaphore_errors(void **state)
{
    (void)state;
    cc_semaphore sem;
    assert_int_equal(cc_semaphore_init(NULL, 0, 0), -EINVAL);
    assert_int_equal(cc_semaphore_init(&sem, -1, 0), -EINVAL);
    assert_int_equal(cc_semaphore_init(&sem, (int64_t)INT32_MAX + 1, 0),
                     -EINVAL);
    assert_int_equal(cc_semaphore_init(&sem, 0, 16), -EINVAL);
    assert_int_equal(cc_semaphore_init_bounded(&sem, -1, 0), -EINVAL);
    assert_int_equal(cc_semaphore_acquire(NULL, CC_NOWAIT), -EINVAL);
    assert_int_equal(cc_semaphore_release(NULL, 1), -EINVAL);
    assert_int_equal(cc_semaphore_destroy(NULL), -EINVAL);

    assert_int_equal(cc_semaphore_init(&sem, INT32_MAX, 0), 0);
    assert_int_equal(cc_semaphore_release(&sem, 1), -EOVERFLOW);
    assert_int_equal(cc_semaphore_value(&sem), INT32_MAX);

    assert_int_equal(cc_semaphore_init(&sem, 1, 0), 0);
    assert_int_equal(cc_semaphore_acquire(&sem, -7), -EINVAL);
    assert_int_equal(cc_semaphore_release(&sem, 0), -EINVAL);
    assert_int_equal(cc_semaphore_acquire(&sem, CC_NOWAIT), 0);
    assert_int_equal(cc_semaphore_acquire(&sem, CC_NOWAIT), -ETIMEDOUT);
    int64_t start = cc_monotonic_ns();
    assert_int_equal(cc_semaphore_acquire(&sem, CC_MSEC(500)), -ETIMEDOUT);
    assert_about_half_second(start);
    /* An unbounded semaphore may go above its initial value. */
    assert_int_equal(cc_semaphore_release(&sem, 5), 0);
    assert_int_equal(cc_semaphore_value(&sem), 5);
    assert_int_equal(cc_semaphore_destroy(&sem), 0);

    /* BoundedSemaphore: releasing past the initial value fails and
     * releases nothing. */
    assert_int_equal(cc_semaphore_init_bounded(&sem, 2, 0), 0);
    assert_int_equal(cc_semaphore_release(&sem, 1), -EOVERFLOW);
    assert_int_equal(cc_semaphore_acquire(&sem, CC_NOWAIT), 0);
    assert_int_equal(cc_semaphore_release(&sem, 2), -EOVERFLOW);
    assert_int_equal(cc_semaphore_value(&sem), 1);
    assert_int_equal(cc_semaphore_release(&sem, 1), 0);
    assert_int_equal(cc_semaphore_value(&sem), 2);
    assert_int_equal(cc_semaphore_release(&sem, 1), -EOVERFLOW);
    assert_int_equal(cc_semaphore_init_bounded(&sem, 0, 0), 0);
    assert_int_equal(cc_semaphore_release(&sem, 1), -EOVERFLOW);
    assert_int_equal(cc_semaphore_value(&sem), 0);
}

static void test_semaphore_release_wakes_n(void **state)
{
    (void)state;
    struct sem_ctx s = {.timeout = CC_FOREVER};
    assert_int_equal(cc_semaphore_init(&s.sem, 0, 0), 0);
    cc_thread *ts[3];
    for (int i = 0; i < 3; i++)
        ts[i] = spawn(sem_acquire_thread, &s);
    assert_all_blocked_on(ts, 3, CC_WAIT_SEMAPHORE, &s.sem);
    assert_int_equal(cc_semaphore_destroy(&s.sem), -EBUSY);

    assert_int_equal(cc_semaphore_release(&s.sem, 2), 0);
    assert_true(wait_counter(&s.done, 2, CC_SEC(10)));
    assert_false(wait_counter(&s.done, 3, CC_MSEC(200)));
    assert_int_equal(cc_semaphore_value(&s.sem), 0);
    assert_int_equal(cc_semaphore_release(&s.sem, 1), 0);
    for (int i = 0; i < 3; i++)
        assert_int_equal(join(ts[i]), 0);
    assert_int_equal(cc_semaphore_destroy(&s.sem), 0);

    /* A timed acquire in another thread gives up. */
    s.timeout = CC_MSEC(500);
    int64_t start = cc_monotonic_ns();
    assert_int_equal(join(spawn(sem_acquire_thread, &s)), -ETIMEDOUT);
    assert_about_half_second(start);
}

/* ---- Event --------------------------------------------------------------- */

struct event_ctx {
    cc_event event;
    cc_duration timeout;
};

static int event_wait_thread(void *arg)
{
    struct event_ctx *e = arg;
    return cc_event_wait(&e->event, e->timeout);
}

static void test_event_basics(void **state)
{
    (void)state;
    cc_event ev = CC_EVENT_INIT;
    assert_int_equal(cc_event_init(NULL, 0), -EINVAL);
    assert_int_equal(cc_event_init(&ev, 3), -EINVAL);
    assert_int_equal(cc_event_init(&ev, 0), 0);
    assert_int_equal(cc_event_set(NULL), -EINVAL);
    assert_int_equal(cc_event_clear(NULL), -EINVAL);
    assert_int_equal(cc_event_wait(NULL, CC_NOWAIT), -EINVAL);
    assert_int_equal(cc_event_wait(&ev, -9), -EINVAL);
    assert_int_equal(cc_event_destroy(NULL), -EINVAL);
    assert_false(cc_event_is_set(NULL));

    assert_false(cc_event_is_set(&ev));
    assert_int_equal(cc_event_wait(&ev, CC_NOWAIT), -ETIMEDOUT);
    int64_t start = cc_monotonic_ns();
    assert_int_equal(cc_event_wait(&ev, CC_MSEC(500)), -ETIMEDOUT);
    assert_about_half_second(start);
    assert_int_equal(cc_event_set(&ev), 0);
    assert_int_equal(cc_event_set(&ev), 0);
    assert_true(cc_event_is_set(&ev));
    assert_int_equal(cc_event_wait(&ev, CC_NOWAIT), 0);
    assert_int_equal(cc_event_wait(&ev, CC_FOREVER), 0);
    assert_int_equal(cc_event_clear(&ev), 0);
    assert_false(cc_event_is_set(&ev));
    assert_int_equal(cc_event_wait(&ev, CC_NOWAIT), -ETIMEDOUT);
    assert_int_equal(cc_event_destroy(&ev), 0);
}

static void test_event_set_then_clear_wakes_waiters(void **state)
{
    (void)state;
    struct event_ctx e = {CC_EVENT_INIT, CC_FOREVER};
    cc_thread *ts[3];
    for (int i = 0; i < 3; i++)
        ts[i] = spawn(event_wait_thread, &e);
    assert_all_blocked_on(ts, 3, CC_WAIT_EVENT, &e.event);
    assert_int_equal(cc_event_destroy(&e.event), -EBUSY);
    /* Every thread waiting during set() returns success although the flag
     * is clear again before any of them runs. */
    assert_int_equal(cc_event_set(&e.event), 0);
    assert_int_equal(cc_event_clear(&e.event), 0);
    for (int i = 0; i < 3; i++)
        assert_int_equal(join(ts[i]), 0);
    assert_false(cc_event_is_set(&e.event));

    /* A later waiter is not released by that old set(). */
    e.timeout = CC_MSEC(500);
    int64_t start = cc_monotonic_ns();
    assert_int_equal(join(spawn(event_wait_thread, &e)), -ETIMEDOUT);
    assert_about_half_second(start);
    assert_int_equal(cc_event_destroy(&e.event), 0);
}

/* ---- Barrier ------------------------------------------------------------- */

#define BARRIER_PARTIES 4
#define BARRIER_ROUNDS 30

struct barrier_ctx {
    cc_barrier barrier;
    int actions;                               /* __atomic */
    int returned;                              /* __atomic */
    int bad_action;                            /* __atomic */
    int seen[BARRIER_ROUNDS][BARRIER_PARTIES]; /* __atomic */
    int action_rc;
    cc_duration timeout;
};

static int counting_action(void *arg)
{
    struct barrier_ctx *b = arg;
    int round = __atomic_fetch_add(&b->actions, 1, __ATOMIC_ACQ_REL);
    /* It runs before anyone of this round is released, and after every
     * thread of the rounds before has returned from its wait. */
    if (load_int(&b->returned) != round * BARRIER_PARTIES)
        add_int(&b->bad_action, 1);
    return b->action_rc;
}

static int barrier_rounds_thread(void *arg)
{
    struct barrier_ctx *b = arg;
    for (int r = 0; r < BARRIER_ROUNDS; r++) {
        int idx = cc_barrier_wait(&b->barrier);
        if (idx < 0 || idx >= BARRIER_PARTIES)
            return idx < 0 ? idx : -1;
        add_int(&b->seen[r][idx], 1);
        add_int(&b->returned, 1);
    }
    return 0;
}

static void test_barrier_rounds(void **state)
{
    (void)state;
    struct barrier_ctx *b = calloc(1, sizeof *b);
    assert_non_null(b);
    assert_int_equal(cc_barrier_init(&b->barrier, BARRIER_PARTIES,
                                     counting_action, b, CC_FOREVER, 0),
                     0);
    assert_int_equal(cc_barrier_parties(&b->barrier), BARRIER_PARTIES);
    cc_thread *ts[BARRIER_PARTIES];
    for (int i = 0; i < BARRIER_PARTIES; i++)
        ts[i] = spawn(barrier_rounds_thread, b);
    for (int i = 0; i < BARRIER_PARTIES; i++)
        assert_int_equal(join(ts[i]), 0);
    assert_int_equal(b->actions, BARRIER_ROUNDS);
    assert_int_equal(b->bad_action, 0);
    for (int r = 0; r < BARRIER_ROUNDS; r++)
        for (int i = 0; i < BARRIER_PARTIES; i++)
            assert_int_equal(b->seen[r][i], 1); /* indexes distinct */
    assert_false(cc_barrier_broken(&b->barrier));
    assert_int_equal(cc_barrier_n_waiting(&b->barrier), 0);
    assert_int_equal(cc_barrier_destroy(&b->barrier), 0);
    free(b);
}

static int barrier_wait_thread(void *arg)
{
    struct barrier_ctx *b = arg;
    return cc_barrier_wait_timeout(&b->barrier, b->timeout);
}

/* Runs a full round with parties-1 helper threads and the caller. */
static void barrier_full_round(struct barrier_ctx *b)
{
    uint32_t n = cc_barrier_parties(&b->barrier);
    cc_thread *ts[8];
    assert_true(n <= 8);
    b->timeout = CC_SEC(10);
    for (uint32_t i = 0; i + 1 < n; i++)
        ts[i] = spawn(barrier_wait_thread, b);
    int idx = cc_barrier_wait_timeout(&b->barrier, CC_SEC(10));
    assert_true(idx >= 0 && idx < (int)n);
    unsigned mask = 1u << idx;
    for (uint32_t i = 0; i + 1 < n; i++) {
        int other = join(ts[i]);
        assert_true(other >= 0 && other < (int)n);
        mask |= 1u << other;
    }
    assert_int_equal(mask, (1u << n) - 1);
}

static void test_barrier_errors(void **state)
{
    (void)state;
    cc_barrier b;
    assert_int_equal(cc_barrier_init(NULL, 2, NULL, NULL, CC_FOREVER, 0),
                     -EINVAL);
    assert_int_equal(cc_barrier_init(&b, 0, NULL, NULL, CC_FOREVER, 0),
                     -EINVAL);
    assert_int_equal(cc_barrier_init(&b, 2, NULL, NULL, -4, 0), -EINVAL);
    assert_int_equal(cc_barrier_init(&b, 2, NULL, NULL, CC_FOREVER, 2),
                     -EINVAL);
    assert_int_equal(cc_barrier_wait(NULL), -EINVAL);
    assert_int_equal(cc_barrier_wait_timeout(NULL, CC_FOREVER), -EINVAL);
    assert_int_equal(cc_barrier_reset(NULL), -EINVAL);
    assert_int_equal(cc_barrier_abort(NULL), -EINVAL);
    assert_int_equal(cc_barrier_destroy(NULL), -EINVAL);
    assert_int_equal(cc_barrier_init(&b, 1, NULL, NULL, CC_FOREVER, 0), 0);
    assert_int_equal(cc_barrier_wait_timeout(&b, -2), -EINVAL);
    /* One party: every wait passes at once with index 0. */
    assert_int_equal(cc_barrier_wait(&b), 0);
    assert_int_equal(cc_barrier_wait_timeout(&b, CC_NOWAIT), 0);
    assert_int_equal(cc_barrier_destroy(&b), 0);
}

static void test_barrier_timeout_breaks_and_reset_repairs(void **state)
{
    (void)state;
    struct barrier_ctx *b = calloc(1, sizeof *b);
    assert_non_null(b);
    assert_int_equal(
        cc_barrier_init(&b->barrier, 3, NULL, NULL, CC_MSEC(500), 0), 0);
    b->timeout = CC_FOREVER;
    cc_thread *t = spawn(barrier_wait_thread, b);
    assert_blocked_on(t, CC_WAIT_BARRIER, &b->barrier);
    assert_int_equal(cc_barrier_n_waiting(&b->barrier), 1);
    assert_int_equal(cc_barrier_destroy(&b->barrier), -EBUSY);

    /* The default timeout of 0.5 s runs out in the main thread: it and the
     * other waiter both get a broken barrier. */
    int64_t start = cc_monotonic_ns();
    assert_int_equal(cc_barrier_wait(&b->barrier), CC_EBROKEN_BARRIER);
    assert_about_half_second(start);
    assert_int_equal(join(t), CC_EBROKEN_BARRIER);
    assert_true(cc_barrier_broken(&b->barrier));
    assert_int_equal(cc_barrier_n_waiting(&b->barrier), 0);
    assert_int_equal(cc_barrier_wait_timeout(&b->barrier, CC_FOREVER),
                     CC_EBROKEN_BARRIER);

    assert_int_equal(cc_barrier_reset(&b->barrier), 0);
    assert_false(cc_barrier_broken(&b->barrier));
    barrier_full_round(b);
    barrier_full_round(b);
    assert_int_equal(cc_barrier_destroy(&b->barrier), 0);
    free(b);
}

static void test_barrier_abort(void **state)
{
    (void)state;
    struct barrier_ctx *b = calloc(1, sizeof *b);
    assert_non_null(b);
    assert_int_equal(cc_barrier_init(&b->barrier, 3, NULL, NULL, CC_FOREVER, 0),
                     0);
    b->timeout = CC_FOREVER;
    cc_thread *ts[2] = {spawn(barrier_wait_thread, b),
                        spawn(barrier_wait_thread, b)};
    assert_all_blocked_on(ts, 2, CC_WAIT_BARRIER, &b->barrier);
    assert_int_equal(cc_barrier_n_waiting(&b->barrier), 2);
    assert_int_equal(cc_barrier_abort(&b->barrier), 0);
    assert_int_equal(join(ts[0]), CC_EBROKEN_BARRIER);
    assert_int_equal(join(ts[1]), CC_EBROKEN_BARRIER);
    assert_true(cc_barrier_broken(&b->barrier));
    assert_int_equal(cc_barrier_wait(&b->barrier), CC_EBROKEN_BARRIER);
    assert_int_equal(cc_barrier_reset(&b->barrier), 0);
    barrier_full_round(b);
    free(b);
}

static void test_barrier_reset_while_waiting(void **state)
{
    (void)state;
    struct barrier_ctx *b = calloc(1, sizeof *b);
    assert_non_null(b);
    assert_int_equal(cc_barrier_init(&b->barrier, 3, NULL, NULL, CC_FOREVER, 0),
                     0);
    b->timeout = CC_FOREVER;
    cc_thread *ts[2] = {spawn(barrier_wait_thread, b),
                        spawn(barrier_wait_thread, b)};
    assert_all_blocked_on(ts, 2, CC_WAIT_BARRIER, &b->barrier);
    /* Waiters at reset time leave broken; the barrier is usable after. */
    assert_int_equal(cc_barrier_reset(&b->barrier), 0);
    assert_int_equal(join(ts[0]), CC_EBROKEN_BARRIER);
    assert_int_equal(join(ts[1]), CC_EBROKEN_BARRIER);
    assert_false(cc_barrier_broken(&b->barrier));
    barrier_full_round(b);
    assert_int_equal(cc_barrier_destroy(&b->barrier), 0);
    free(b);
}

static void test_barrier_failing_action(void **state)
{
    (void)state;
    struct barrier_ctx *b = calloc(1, sizeof *b);
    assert_non_null(b);
    b->action_rc = -EIO;
    assert_int_equal(
        cc_barrier_init(&b->barrier, 2, counting_action, b, CC_FOREVER, 0), 0);
    b->timeout = CC_FOREVER;
    cc_thread *t = spawn(barrier_wait_thread, b);
    assert_blocked_on(t, CC_WAIT_BARRIER, &b->barrier);
    /* The main thread arrives last and runs the action, which fails: it
     * gets the action's error, the other waiter a broken barrier. */
    assert_int_equal(cc_barrier_wait(&b->barrier), -EIO);
    assert_int_equal(join(t), CC_EBROKEN_BARRIER);
    assert_int_equal(b->actions, 1);
    assert_true(cc_barrier_broken(&b->barrier));
    assert_int_equal(cc_barrier_reset(&b->barrier), 0);
    b->action_rc = 0;
    barrier_full_round(b);
    assert_int_equal(b->actions, 2);
    free(b);
}

/* ---- Once ---------------------------------------------------------------- */

#define ONCE_THREADS 8

struct once_ctx {
    cc_once once;
    cc_event go;
    int runs; /* __atomic */
    int inner_rc;
};

static void once_fn(void *arg)
{
    struct once_ctx *o = arg;
    add_int(&o->runs, 1);
    cc_event_wait(&o->go, CC_SEC(20));
}

static int once_thread(void *arg)
{
    struct once_ctx *o = arg;
    int rc = cc_once_call(&o->once, once_fn, o);
    if (rc == 0 && !cc_once_done(&o->once))
        rc = -1;
    return rc;
}

static void once_recursive_fn(void *arg)
{
    struct once_ctx *o = arg;
    add_int(&o->runs, 1);
    o->inner_rc = cc_once_call(&o->once, once_recursive_fn, o);
}

static void test_once(void **state)
{
    (void)state;
    struct once_ctx o = {CC_ONCE_INIT, CC_EVENT_INIT, 0, 0};
    assert_int_equal(cc_once_init(NULL, 0), -EINVAL);
    assert_int_equal(cc_once_init(&o.once, 5), -EINVAL);
    assert_int_equal(cc_once_call(NULL, once_fn, &o), -EINVAL);
    assert_int_equal(cc_once_call(&o.once, NULL, &o), -EINVAL);
    assert_false(cc_once_done(&o.once));
    assert_false(cc_once_done(NULL));

    /* Many callers: one runs fn (BLOCKED on the event inside it), the
     * others wait BLOCKED on the once. */
    cc_thread *ts[ONCE_THREADS];
    for (int i = 0; i < ONCE_THREADS; i++)
        ts[i] = spawn(once_thread, &o);
    int64_t deadline = cc_monotonic_ns() + CC_SEC(10);
    int on_once = 0, on_event = 0;
    while (cc_monotonic_ns() < deadline) {
        on_once = on_event = 0;
        for (int i = 0; i < ONCE_THREADS; i++) {
            on_once += blocked_on(ts[i], CC_WAIT_ONCE, &o.once);
            on_event += blocked_on(ts[i], CC_WAIT_EVENT, &o.go);
        }
        if (on_once == ONCE_THREADS - 1 && on_event == 1)
            break;
        cc_sleep(CC_MSEC(1));
    }
    assert_int_equal(on_once, ONCE_THREADS - 1);
    assert_int_equal(on_event, 1);
    assert_false(cc_once_done(&o.once));
    assert_int_equal(cc_event_set(&o.go), 0);
    for (int i = 0; i < ONCE_THREADS; i++)
        assert_int_equal(join(ts[i]), 0);
    assert_int_equal(o.runs, 1);
    assert_true(cc_once_done(&o.once));
    assert_int_equal(cc_once_call(&o.once, once_fn, &o), 0);
    assert_int_equal(o.runs, 1);

    /* fn calling the same once again gets -EDEADLK instead of hanging. */
    o.runs = 0;
    assert_int_equal(cc_once_init(&o.once, 0), 0);
    assert_int_equal(cc_once_call(&o.once, once_recursive_fn, &o), 0);
    assert_int_equal(o.inner_rc, -EDEADLK);
    assert_int_equal(o.runs, 1);
    assert_true(cc_once_done(&o.once));
}

/* ---- process-shared objects ---------------------------------------------- */

struct shared {
    cc_lock lock;
    cc_condition cond;
    cc_semaphore sem;
    cc_event event;
    cc_barrier barrier;
    long counter; /* protected by lock */
    int flag;     /* protected by lock */
    int child_index;
};

#define SHARED_INCREMENTS 20000

static int child_main(struct shared *s)
{
    int idx = cc_barrier_wait(&s->barrier);
    if (idx < 0)
        return 10;
    s->child_index = idx;
    for (int i = 0; i < SHARED_INCREMENTS; i++) {
        if (cc_lock_acquire(&s->lock, CC_SEC(10)) != 0)
            return 11;
        s->counter++;
        cc_lock_release(&s->lock);
    }
    if (cc_barrier_wait(&s->barrier) < 0)
        return 12;
    for (int i = 0; i < 5; i++)
        if (cc_semaphore_release(&s->sem, 1) != 0)
            return 13;
    if (cc_event_wait(&s->event, CC_SEC(10)) != 0)
        return 14;
    if (cc_lock_acquire(&s->lock, CC_SEC(10)) != 0)
        return 15;
    while (!s->flag)
        if (cc_condition_wait(&s->cond, CC_SEC(10)) != 0)
            return 16;
    cc_lock_release(&s->lock);
    return 0;
}

/* The parent cannot see the child's thread state; destroy's -EBUSY says a
 * thread is inside wait (these destroy calls change nothing). */
static bool event_has_waiter(void *arg)
{
    return cc_event_destroy(arg) == -EBUSY;
}

static bool condition_has_waiter(void *arg)
{
    return cc_condition_destroy(arg) == -EBUSY;
}

static void test_process_shared(void **state)
{
    (void)state;
    struct shared *s = mmap(NULL, sizeof *s, PROT_READ | PROT_WRITE,
                            MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    assert_true(s != MAP_FAILED);
    memset(s, 0, sizeof *s);
    const unsigned ps = CC_SYNC_PSHARED;
    assert_int_equal(cc_lock_init(&s->lock, ps), 0);
    assert_int_equal(cc_condition_init(&s->cond, &s->lock, ps), 0);
    assert_int_equal(cc_semaphore_init(&s->sem, 0, ps), 0);
    assert_int_equal(cc_event_init(&s->event, ps), 0);
    assert_int_equal(
        cc_barrier_init(&s->barrier, 2, NULL, NULL, CC_SEC(10), ps), 0);

    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        _exit(child_main(s));

    int idx = cc_barrier_wait(&s->barrier);
    assert_true(idx == 0 || idx == 1);
    for (int i = 0; i < SHARED_INCREMENTS; i++) {
        assert_int_equal(cc_lock_acquire(&s->lock, CC_SEC(10)), 0);
        s->counter++;
        assert_int_equal(cc_lock_release(&s->lock), 0);
    }
    assert_true(cc_barrier_wait(&s->barrier) >= 0);
    assert_int_equal(s->child_index, 1 - idx);
    assert_int_equal(s->counter, 2L * SHARED_INCREMENTS);
    for (int i = 0; i < 5; i++)
        assert_int_equal(cc_semaphore_acquire(&s->sem, CC_SEC(10)), 0);
    assert_true(cct_wait_until(event_has_waiter, &s->event, CC_SEC(10)));
    assert_int_equal(cc_event_set(&s->event), 0);
    assert_true(cct_wait_until(condition_has_waiter, &s->cond, CC_SEC(10)));
    assert_int_equal(cc_lock_acquire(&s->lock, CC_SEC(10)), 0);
    s->flag = 1;
    assert_int_equal(cc_condition_notify(&s->cond, 1), 0);
    assert_int_equal(cc_lock_release(&s->lock), 0);

    int status = -1;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    assert_int_equal(cc_condition_destroy(&s->cond), 0);
    assert_int_equal(cc_barrier_destroy(&s->barrier), 0);
    munmap(s, sizeof *s);
}

/* The same memory mapped twice at different addresses: the condition
 * finds its lock through an offset, and futexes are keyed by the memory, so
 * a thread using one view and a thread using the other work together. */
struct two_views {
    struct shared *view;
};

static int other_view_waiter(void *arg)
{
    struct shared *s = arg;
    if (cc_lock_acquire(&s->lock, CC_SEC(10)) != 0)
        return -1;
    int rc = 0;
    while (!s->flag && rc == 0)
        rc = cc_condition_wait(&s->cond, CC_SEC(10));
    cc_lock_release(&s->lock);
    if (rc == 0)
        rc = cc_semaphore_acquire(&s->sem, CC_SEC(10));
    return rc;
}

static void test_process_shared_two_mappings(void **state)
{
    (void)state;
    int fd = memfd_create("concur-sync-test", 0);
    assert_true(fd >= 0);
    size_t size = (size_t)sysconf(_SC_PAGESIZE);
    assert_int_equal(ftruncate(fd, (off_t)size), 0);
    struct shared *a =
        mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    struct shared *b =
        mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    assert_true(a != MAP_FAILED && b != MAP_FAILED && a != b);
    const unsigned ps = CC_SYNC_PSHARED;
    assert_int_equal(cc_lock_init(&a->lock, ps), 0);
    assert_int_equal(cc_condition_init(&a->cond, &a->lock, ps), 0);
    assert_int_equal(cc_semaphore_init(&a->sem, 0, ps), 0);

    cc_thread *t = spawn(other_view_waiter, b);
    assert_blocked_on(t, CC_WAIT_CONDITION, &b->cond);
    assert_int_equal(cc_lock_acquire(&a->lock, CC_SEC(10)), 0);
    a->flag = 1;
    assert_int_equal(cc_condition_notify(&a->cond, 1), 0);
    assert_int_equal(cc_lock_release(&a->lock), 0);
    assert_blocked_on(t, CC_WAIT_SEMAPHORE, &b->sem);
    assert_int_equal(cc_semaphore_release(&a->sem, 1), 0);
    assert_int_equal(join(t), 0);
    munmap(a, size);
    munmap(b, size);
}

/* ---- stress -------------------------------------------------------------- */

/* Each stress scenario stops after this long or its iteration count. */
#define STRESS_BUDGET CC_MSEC(700)

struct pingpong {
    cc_event ping, pong;
    int stop; /* __atomic */
    int rounds;
};

static int pong_thread(void *arg)
{
    struct pingpong *p = arg;
    for (;;) {
        if (cc_event_wait(&p->ping, CC_SEC(10)) != 0)
            return -1;
        cc_event_clear(&p->ping);
        bool stop = __atomic_load_n(&p->stop, __ATOMIC_ACQUIRE);
        cc_event_set(&p->pong);
        if (stop)
            return 0;
    }
}

static void test_stress_event_ping_pong(void **state)
{
    (void)state;
    struct pingpong p = {CC_EVENT_INIT, CC_EVENT_INIT, 0, 0};
    cc_thread *t = spawn(pong_thread, &p);
    int64_t end = cc_monotonic_ns() + STRESS_BUDGET;
    for (;;) {
        bool last = p.rounds >= 20000 || cc_monotonic_ns() >= end;
        if (last)
            __atomic_store_n(&p.stop, 1, __ATOMIC_RELEASE);
        assert_int_equal(cc_event_set(&p.ping), 0);
        assert_int_equal(cc_event_wait(&p.pong, CC_SEC(10)), 0);
        assert_int_equal(cc_event_clear(&p.pong), 0);
        p.rounds++;
        if (last)
            break;
    }
    assert_int_equal(join(t), 0);
    assert_true(p.rounds > 1);
}

/* Producer/consumer on a bounded buffer with notify(1) on both sides. */
#define PC_CAPACITY 4
#define PC_ITEMS 100000

struct prodcons {
    cc_lock lock;
    cc_condition not_empty, not_full;
    int buffer[PC_CAPACITY];
    int head, size, produced, consumed;
    long sum;
    int64_t end;
    bool stop;
};

static int producer_thread(void *arg)
{
    struct prodcons *pc = arg;
    for (;;) {
        cc_lock_acquire(&pc->lock, CC_FOREVER);
        while (pc->size == PC_CAPACITY && !pc->stop)
            if (cc_condition_wait(&pc->not_full, CC_SEC(10)) != 0)
                goto fail;
        if (pc->stop || pc->produced == PC_ITEMS ||
            cc_monotonic_ns() >= pc->end) {
            pc->stop = true;
            cc_condition_notify_all(&pc->not_empty);
            cc_condition_notify_all(&pc->not_full);
            cc_lock_release(&pc->lock);
            return 0;
        }
        int item = ++pc->produced;
        pc->buffer[(pc->head + pc->size) % PC_CAPACITY] = item;
        pc->size++;
        cc_condition_notify(&pc->not_empty, 1);
        cc_lock_release(&pc->lock);
    }
fail:
    cc_lock_release(&pc->lock);
    return -1;
}

static int consumer_thread(void *arg)
{
    struct prodcons *pc = arg;
    for (;;) {
        cc_lock_acquire(&pc->lock, CC_FOREVER);
        while (pc->size == 0 && !pc->stop)
            if (cc_condition_wait(&pc->not_empty, CC_SEC(10)) != 0)
                goto fail;
        if (pc->size == 0) {
            cc_lock_release(&pc->lock);
            return 0;
        }
        pc->sum += pc->buffer[pc->head];
        pc->head = (pc->head + 1) % PC_CAPACITY;
        pc->size--;
        pc->consumed++;
        cc_condition_notify(&pc->not_full, 1);
        cc_lock_release(&pc->lock);
    }
fail:
    cc_lock_release(&pc->lock);
    return -1;
}

static void test_stress_condition_producer_consumer(void **state)
{
    (void)state;
    struct prodcons *pc = calloc(1, sizeof *pc);
    assert_non_null(pc);
    assert_int_equal(cc_lock_init(&pc->lock, 0), 0);
    assert_int_equal(cc_condition_init(&pc->not_empty, &pc->lock, 0), 0);
    assert_int_equal(cc_condition_init(&pc->not_full, &pc->lock, 0), 0);
    pc->end = cc_monotonic_ns() + STRESS_BUDGET;
    cc_thread *ts[4] = {spawn(producer_thread, pc), spawn(producer_thread, pc),
                        spawn(consumer_thread, pc), spawn(consumer_thread, pc)};
    for (int i = 0; i < 4; i++)
        assert_int_equal(join(ts[i]), 0);
    long n = pc->produced;
    assert_true(n > 0);
    assert_int_equal(pc->consumed, n);
    assert_int_equal(pc->sum, n * (n + 1) / 2);
    assert_int_equal(cc_condition_destroy(&pc->not_empty), 0);
    assert_int_equal(cc_condition_destroy(&pc->not_full), 0);
    free(pc);
}

/*
 * Checks every wake-up against a model of Python's rule: notify k grants
 * m_k = min(n, waiters not yet notified) wake-ups, each usable only by a
 * thread that was waiting when notify k was called. A thread returning 0
 * claims the earliest unclaimed grant issued after it started waiting
 * (optimal for these "from k on" intervals); finding none means it was
 * woken by a notify that came before it, or one too many were woken. At the
 * end every grant must have been claimed: none lost. Waiters mix short
 * timeouts with unlimited waits.
 */
#define MODEL_MAX_NOTIFIES 200000

struct cond_model {
    cc_lock lock;
    cc_condition cond;
    uint8_t *grants; /* grants[k]: unclaimed wake-ups of notify k */
    int notifies;    /* notify calls so far */
    int first_open;  /* no unclaimed grant below this */
    int waiting;     /* threads inside wait */
    int outstanding; /* grants not claimed */
    int errors;
    int wakeups;
    int timeouts;
    bool stop;
};

static void model_notify(struct cond_model *m, unsigned n)
{
    int unnotified = m->waiting - m->outstanding;
    int g = n < (unsigned)unnotified ? (int)n : unnotified;
    m->notifies++;
    m->grants[m->notifies] = (uint8_t)g; /* g <= the 5 waiters */
    m->outstanding += g;
    if (cc_condition_notify(&m->cond, n) != 0)
        m->errors++;
}

static void model_claim(struct cond_model *m, int entry)
{
    int k = entry + 1 > m->first_open ? entry + 1 : m->first_open;
    for (; k <= m->notifies; k++)
        if (m->grants[k] > 0)
            break;
    if (k > m->notifies) {
        m->errors++;
        return;
    }
    m->grants[k]--;
    m->outstanding--;
    while (m->first_open <= m->notifies && m->grants[m->first_open] == 0)
        m->first_open++;
}

static int model_waiter(void *arg)
{
    struct cond_model *m = arg;
    unsigned seed = (unsigned)(uintptr_t)&seed;
    cc_lock_acquire(&m->lock, CC_FOREVER);
    while (!m->stop) {
        int entry = m->notifies;
        m->waiting++;
        cc_duration timeout =
            rand_r(&seed) % 2 ? CC_FOREVER : CC_USEC(rand_r(&seed) % 500);
        int rc = cc_condition_wait(&m->cond, timeout);
        m->waiting--;
        if (rc == 0) {
            m->wakeups++;
            model_claim(m, entry);
        } else if (rc == -ETIMEDOUT) {
            m->timeouts++;
        } else {
            m->errors++;
        }
    }
    cc_lock_release(&m->lock);
    return 0;
}

static bool model_settled(void *arg)
{
    struct cond_model *m = arg;
    cc_lock_acquire(&m->lock, CC_FOREVER);
    bool settled = m->outstanding == 0;
    cc_lock_release(&m->lock);
    return settled;
}

static void test_stress_condition_model(void **state)
{
    (void)state;
    struct cond_model *m = calloc(1, sizeof *m);
    assert_non_null(m);
    m->grants = calloc(MODEL_MAX_NOTIFIES + 2, 1);
    assert_non_null(m->grants);
    m->first_open = 1;
    assert_int_equal(cc_lock_init(&m->lock, 0), 0);
    assert_int_equal(cc_condition_init(&m->cond, &m->lock, 0), 0);
    cc_thread *ts[5];
    for (int i = 0; i < 5; i++)
        ts[i] = spawn(model_waiter, m);
    int64_t end = cc_monotonic_ns() + STRESS_BUDGET;
    unsigned seed = 42;
    while (cc_monotonic_ns() < end) {
        cc_lock_acquire(&m->lock, CC_FOREVER);
        if (m->notifies >= MODEL_MAX_NOTIFIES - 2) {
            cc_lock_release(&m->lock);
            break;
        }
        model_notify(m, 1 + rand_r(&seed) % 3);
        cc_lock_release(&m->lock);
        if (rand_r(&seed) % 4 == 0)
            cc_sleep(CC_USEC(50));
    }
    /* No grant may be lost: each is claimed by a thread that was
     * waiting when it was issued. */
    assert_true(cct_wait_until(model_settled, m, CC_SEC(10)));
    cc_lock_acquire(&m->lock, CC_FOREVER);
    m->stop = true;
    model_notify(m, UINT32_MAX);
    cc_lock_release(&m->lock);
    for (int i = 0; i < 5; i++)
        assert_int_equal(join(ts[i]), 0);
    assert_int_equal(m->errors, 0);
    assert_int_equal(m->outstanding, 0);
    assert_int_equal(m->waiting, 0);
    assert_true(m->wakeups > 0);
    assert_int_equal(cc_condition_destroy(&m->cond), 0);
    free(m->grants);
    free(m);
}

/* Semaphore as a counter of items, with timed acquires that give up. */
struct sem_stress {
    cc_semaphore sem;
    int64_t end;
    int released; /* __atomic */
    int acquired; /* __atomic */
    int stop;     /* __atomic */
};

static int sem_producer(void *arg)
{
    struct sem_stress *s = arg;
    unsigned seed = 7;
    while (cc_monotonic_ns() < s->end) {
        uint32_t n = 1 + (uint32_t)(rand_r(&seed) % 3);
        if (cc_semaphore_release(&s->sem, n) != 0)
            return -1;
        add_int(&s->released, (int)n);
        if (rand_r(&seed) % 8 == 0)
            cc_sleep(CC_USEC(20));
    }
    return 0;
}

static int sem_consumer(void *arg)
{
    struct sem_stress *s = arg;
    unsigned seed = (unsigned)(uintptr_t)&seed;
    while (!__atomic_load_n(&s->stop, __ATOMIC_ACQUIRE)) {
        int rc = cc_semaphore_acquire(&s->sem, CC_USEC(rand_r(&seed) % 300));
        if (rc == 0)
            add_int(&s->acquired, 1);
        else if (rc != -ETIMEDOUT)
            return -1;
    }
    return 0;
}

static void test_stress_semaphore(void **state)
{
    (void)state;
    struct sem_stress s = {.end = cc_monotonic_ns() + STRESS_BUDGET};
    assert_int_equal(cc_semaphore_init(&s.sem, 0, 0), 0);
    cc_thread *ts[4] = {spawn(sem_producer, &s), spawn(sem_consumer, &s),
                        spawn(sem_consumer, &s), spawn(sem_consumer, &s)};
    assert_int_equal(join(ts[0]), 0);
    __atomic_store_n(&s.stop, 1, __ATOMIC_RELEASE);
    for (int i = 1; i < 4; i++)
        assert_int_equal(join(ts[i]), 0);
    /* Every unit released is either taken or still there. */
    assert_int_equal(s.acquired + (int)cc_semaphore_value(&s.sem), s.released);
    assert_int_equal(cc_semaphore_destroy(&s.sem), 0);
}

/* Lock with timed acquires racing with unlimited ones. */
static int lock_timed_stress_thread(void *arg)
{
    struct lock_count *c = arg;
    unsigned seed = (unsigned)(uintptr_t)&seed;
    int got = 0;
    for (int i = 0; i < c->iterations; i++) {
        cc_duration t =
            rand_r(&seed) % 2 ? CC_FOREVER : CC_USEC(rand_r(&seed) % 50);
        int rc = cc_lock_acquire(&c->lock, t);
        if (rc == -ETIMEDOUT)
            continue;
        if (rc != 0)
            return -1;
        c->counter++;
        got++;
        if (cc_lock_release(&c->lock) != 0)
            return -1;
    }
    return got;
}

static void test_stress_lock_timeouts(void **state)
{
    (void)state;
    struct lock_count c = {CC_LOCK_INIT, 0, 20000};
    cc_thread *ts[4];
    for (int i = 0; i < 4; i++)
        ts[i] = spawn(lock_timed_stress_thread, &c);
    long got = 0;
    for (int i = 0; i < 4; i++) {
        int n = join(ts[i]);
        assert_true(n >= 0);
        got += n;
    }
    assert_int_equal(c.counter, got);
    assert_false(cc_lock_locked(&c.lock));
    assert_int_equal(cc_lock_destroy(&c.lock), 0);
}

/* Thread functions here return the negative results of the calls they
 * make on purpose (timeouts, broken barriers): not failures to report. */
static void quiet_excepthook(const cc_thread_failure *failure, void *ctx)
{
    (void)failure;
    (void)ctx;
}

int main(void)
{
    cc_thread_set_excepthook(quiet_excepthook, NULL);
    const struct CMUnitTest tests[] = {
        CCT_TEST(test_lock_basics_and_errors),
        CCT_TEST(test_lock_mutual_exclusion),
        CCT_TEST(test_lock_timed_acquire_and_blocked_state),
        CCT_TEST(test_lock_released_by_other_thread),
        CCT_TEST(test_rlock_recursion_and_ownership),
        CCT_TEST(test_condition_errors),
        CCT_TEST(test_condition_notify_wakes_exactly_n),
        CCT_TEST(test_condition_late_waiter_not_woken),
        CCT_TEST(test_condition_wait_for),
        CCT_TEST(test_condition_with_rlock),
        CCT_TEST(test_semaphore_errors),
        CCT_TEST(test_semaphore_release_wakes_n),
        CCT_TEST(test_event_basics),
        CCT_TEST(test_event_set_then_clear_wakes_waiters),
        CCT_TEST(test_barrier_errors),
        CCT_TEST(test_barrier_rounds),
        CCT_TEST(test_barrier_timeout_breaks_and_reset_repairs),
        CCT_TEST(test_barrier_abort),
        CCT_TEST(test_barrier_reset_while_waiting),
        CCT_TEST(test_barrier_failing_action),
        CCT_TEST(test_once),
        CCT_TEST(test_process_shared),
        CCT_TEST(test_process_shared_two_mappings),
        CCT_TEST(test_stress_event_ping_pong),
        CCT_TEST(test_stress_condition_producer_consumer),
        CCT_TEST(test_stress_condition_model),
        CCT_TEST(test_stress_semaphore),
        CCT_TEST(test_stress_lock_timeouts),
    };
    return CCT_RUN(tests);
}
