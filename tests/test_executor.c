/* Behaviour of concur/executor.h on the thread pool: submit, failures,
 * options, shutdown, map, task groups, parallel-for, stress. */
#include "harness.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- tasks ------------------------------------------------------------------ */

static int square(void *arg, void **result)
{
    intptr_t x = (intptr_t)arg;
    *result = (void *)(x * x);
    return 0;
}

static int fail_on_seven(void *arg, void **result)
{
    intptr_t x = (intptr_t)arg;
    if (x == 7)
        return cc_task_fail(-EDOM, "element %d is bad", (int)x);
    *result = (void *)(x + 100);
    return 0;
}

static int wait_event(void *arg, void **result)
{
    (void)result;
    return cc_event_wait(arg, CC_FOREVER);
}

static int report_name(void *arg, void **result)
{
    (void)arg;
    *result = (void *)cc_thread_name(cc_thread_current());
    return 0;
}

static intptr_t result_of(cc_future *f)
{
    void *v = NULL;
    assert_int_equal(cc_future_result(f, CC_SEC(30), &v), 0);
    return (intptr_t)v;
}

/* ---- submit ------------------------------------------------------------------ */

static void test_submit_and_results(void **state)
{
    (void)state;
    cc_executor *ex;
    cc_thread_pool_options o = {.max_workers = 3};
    assert_int_equal(cc_thread_pool_new(&ex, &o), 0);
    assert_string_equal(cc_executor_kind(ex), "thread");
    assert_int_equal(cc_executor_max_workers(ex), 3);
    enum { N = 1000 };
    cc_future *fs[N];
    for (intptr_t i = 0; i < N; i++)
        assert_int_equal(cc_executor_submit(ex, square, (void *)i, &fs[i]), 0);
    for (intptr_t i = 0; i < N; i++) {
        assert_int_equal(result_of(fs[i]), i * i);
        cc_future_unref(fs[i]);
    }
    cc_executor_free(ex);
}

static void test_default_workers_and_errors(void **state)
{
    (void)state;
    cc_executor *ex;
    assert_int_equal(cc_thread_pool_new(&ex, NULL), 0);
    unsigned expected = (unsigned)sysconf(_SC_NPROCESSORS_ONLN) + 4;
    if (expected > 32)
        expected = 32;
    assert_int_equal(cc_executor_max_workers(ex), expected);
    cc_future *f;
    assert_int_equal(cc_executor_submit(ex, NULL, NULL, &f), -EINVAL);
    assert_int_equal(cc_executor_submit(ex, square, NULL, NULL), -EINVAL);
    assert_int_equal(cc_executor_submit(NULL, square, NULL, &f), -EINVAL);
    assert_int_equal(cc_thread_pool_new(NULL, NULL), -EINVAL);
    assert_int_equal(cc_executor_shutdown(NULL, true, false), -EINVAL);
    assert_null(cc_executor_kind(NULL));
    cc_executor_free(ex);
    cc_executor_free(NULL);
}

static void test_task_failure_carries_code_and_message(void **state)
{
    (void)state;
    cc_executor *ex;
    assert_int_equal(cc_thread_pool_new(&ex, NULL), 0);
    cc_future *f;
    assert_int_equal(cc_executor_submit(ex, fail_on_seven, (void *)7, &f), 0);
    assert_int_equal(cc_future_result(f, CC_SEC(30), NULL), -EDOM);
    assert_int_equal(cc_future_error(f, CC_NOWAIT), -EDOM);
    assert_string_equal(cc_future_error_message(f), "element 7 is bad");
    cc_future_unref(f);
    /* Outside a task, cc_task_fail only returns the code. */
    assert_int_equal(cc_task_fail(-EIO, "ignored"), -EIO);
    assert_int_equal(cc_task_fail(3, NULL), CC_EFAILED);
    cc_executor_free(ex);
}

struct worker_probe {
    cc_executor *ex;
    bool seen;
};

static bool workers_idle_and_blocked(void *arg)
{
    struct worker_probe *p = arg;
    cc_thread **list;
    size_t n;
    bool found = false;
    if (cc_thread_enumerate(&list, &n) != 0)
        return false;
    for (size_t i = 0; i < n; i++) {
        cc_wait_info info;
        if (strncmp(cc_thread_name(list[i]), "crunch_", 7) == 0 &&
            cc_thread_get_state(list[i]) == CC_THREAD_BLOCKED &&
            cc_thread_wait_info(list[i], &info) == 0 &&
            info.kind == CC_WAIT_QUEUE && info.object == (void *)p->ex)
            found = true;
    }
    cc_thread_list_free(list, n);
    return found;
}

static void test_worker_names_and_idle_state(void **state)
{
    (void)state;
    cc_executor *ex;
    cc_thread_pool_options o = {.max_workers = 2, .thread_name_prefix = "crunch"};
    assert_int_equal(cc_thread_pool_new(&ex, &o), 0);
    cc_future *f;
    assert_int_equal(cc_executor_submit(ex, report_name, NULL, &f), 0);
    const char *name = (const char *)result_of(f);
    assert_int_equal(strncmp(name, "crunch_", 7), 0);
    cc_future_unref(f);
    /* An idle worker sleeps, shown as BLOCKED on the pool. */
    struct worker_probe p = {ex, false};
    assert_true(cct_wait_until(workers_idle_and_blocked, &p, CC_SEC(10)));
    cc_executor_free(ex);
}

/* Workers start as Python's: a burst of submits larger than the number of
 * idle workers starts new ones (each submit takes one idle token), and
 * fork-join work spawned inside the pool starts a worker to share it. */
static int wait_gate(void *arg, void **result)
{
    (void)result;
    return cc_event_wait(arg, CC_SEC(30));
}

struct running_probe {
    cc_executor *ex;
    uint64_t want;
};

static bool running_reached(void *ctx)
{
    struct running_probe *p = ctx;
    cc_pool_stats s;
    return cc_executor_stats(p->ex, &s) == 0 && s.running == p->want;
}

static void test_burst_after_idle_starts_workers(void **state)
{
    (void)state;
    cc_executor *ex;
    cc_thread_pool_options o = {.max_workers = 4,
                                .thread_name_prefix = "crunch"};
    assert_int_equal(cc_thread_pool_new(&ex, &o), 0);
    cc_future *f;
    assert_int_equal(cc_executor_submit(ex, square, (void *)3, &f), 0);
    result_of(f);
    cc_future_unref(f);
    struct worker_probe idle = {ex, false};
    assert_true(cct_wait_until(workers_idle_and_blocked, &idle, CC_SEC(10)));
    /* One worker, idle. Four tasks that all wait: they can only all run
     * if the burst started three more workers. */
    cc_event gate = CC_EVENT_INIT;
    cc_future *fs[4];
    for (int i = 0; i < 4; i++)
        assert_int_equal(cc_executor_submit(ex, wait_gate, &gate, &fs[i]), 0);
    struct running_probe p = {ex, 4};
    assert_true(cct_wait_until(running_reached, &p, CC_SEC(10)));
    cc_pool_stats s;
    assert_int_equal(cc_executor_stats(ex, &s), 0);
    assert_int_equal(s.workers, 4);
    cc_event_set(&gate);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(cc_future_result(fs[i], CC_SEC(30), NULL), 0);
        cc_future_unref(fs[i]);
    }
    cc_executor_free(ex);
}

/* Two fork-join tasks that must run at the same time (a barrier of two):
 * the root's worker runs one while helping, and only a second worker can
 * run the other. The root is the pool's only submit, so that worker is
 * started by the spawn. */
struct pair_ctx {
    cc_executor *ex;
    cc_barrier barrier;
    int rc[2];
};

static int meet(void *arg)
{
    struct pair_ctx *c = arg;
    int rc = cc_barrier_wait(&c->barrier);
    return rc < 0 ? rc : 0;
}

static int spawn_pair(void *arg, void **result)
{
    (void)result;
    struct pair_ctx *c = arg;
    cc_task_group g;
    int rc = cc_task_group_init(&g, c->ex);
    if (rc < 0)
        return rc;
    c->rc[0] = cc_task_group_spawn(&g, meet, c);
    c->rc[1] = cc_task_group_spawn(&g, meet, c);
    rc = cc_task_group_wait(&g);
    cc_task_group_destroy(&g);
    return rc;
}

static void test_fork_join_starts_a_second_worker(void **state)
{
    (void)state;
    struct pair_ctx c = {0};
    cc_thread_pool_options o = {.max_workers = 2};
    assert_int_equal(cc_thread_pool_new(&c.ex, &o), 0);
    assert_int_equal(
        cc_barrier_init(&c.barrier, 2, NULL, NULL, CC_SEC(20), 0), 0);
    cc_future *f;
    assert_int_equal(cc_executor_submit(c.ex, spawn_pair, &c, &f), 0);
    assert_int_equal(cc_future_result(f, CC_SEC(60), NULL), 0);
    assert_int_equal(c.rc[0], 0);
    assert_int_equal(c.rc[1], 0);
    cc_future_unref(f);
    cc_pool_stats s;
    assert_int_equal(cc_executor_stats(c.ex, &s), 0);
    assert_int_equal(s.workers, 2);
    cc_executor_free(c.ex);
    cc_barrier_destroy(&c.barrier);
}

static void test_idle_pool_uses_no_cpu(void **state)
{
    (void)state;
    cc_executor *ex;
    cc_thread_pool_options o = {.max_workers = 4};
    assert_int_equal(cc_thread_pool_new(&ex, &o), 0);
    cc_future *fs[64];
    for (intptr_t i = 0; i < 64; i++)
        assert_int_equal(cc_executor_submit(ex, square, (void *)i, &fs[i]), 0);
    for (int i = 0; i < 64; i++) {
        result_of(fs[i]);
        cc_future_unref(fs[i]);
    }
    cc_sleep(CC_MSEC(100)); /* let the workers finish searching */
    struct rusage before, after;
    getrusage(RUSAGE_SELF, &before);
    cc_sleep(CC_MSEC(500));
    getrusage(RUSAGE_SELF, &after);
    double used = (double)(after.ru_utime.tv_sec - before.ru_utime.tv_sec) +
                  (double)(after.ru_stime.tv_sec - before.ru_stime.tv_sec) +
                  (double)(after.ru_utime.tv_usec - before.ru_utime.tv_usec) / 1e6 +
                  (double)(after.ru_stime.tv_usec - before.ru_stime.tv_usec) / 1e6;
    /* Sleeping workers burn nothing; allow noise far below a busy core. */
    assert_true(used < 0.1);
    cc_executor_free(ex);
}

/* ---- options: initializer, bounded queue ------------------------------------ */

/* Fails once the test has queued its tasks, so they are pending when the
 * pool breaks. */
static int failing_initializer(void *ctx)
{
    cc_event_wait(ctx, CC_FOREVER);
    return -ENOEXEC;
}

static void test_failing_initializer_breaks_pool(void **state)
{
    (void)state;
    cc_event gate;
    cc_event_init(&gate, 0);
    cc_executor *ex;
    cc_thread_pool_options o = {.max_workers = 1,
                                .initializer = failing_initializer,
                                .initializer_ctx = &gate};
    cc_thread_set_excepthook(NULL, NULL);
    assert_int_equal(cc_thread_pool_new(&ex, &o), 0);
    cc_future *fs[5];
    for (intptr_t i = 0; i < 5; i++)
        assert_int_equal(cc_executor_submit(ex, square, (void *)i, &fs[i]), 0);
    cc_event_set(&gate);
    for (int i = 0; i < 5; i++) {
        assert_int_equal(cc_future_result(fs[i], CC_SEC(30), NULL),
                         CC_EBROKEN_EXECUTOR);
        cc_future_unref(fs[i]);
    }
    cc_future *late;
    assert_int_equal(cc_executor_submit(ex, square, NULL, &late),
                     CC_EBROKEN_EXECUTOR);
    cc_executor_free(ex);
    cc_event_destroy(&gate);
}

static int count_init(void *ctx)
{
    __atomic_fetch_add((int *)ctx, 1, __ATOMIC_RELAXED);
    return 0;
}

static void test_initializer_runs_in_each_worker(void **state)
{
    (void)state;
    int inits = 0;
    cc_executor *ex;
    cc_event gate;
    cc_event_init(&gate, 0);
    cc_thread_pool_options o = {.max_workers = 2, .initializer = count_init,
                                .initializer_ctx = &inits};
    assert_int_equal(cc_thread_pool_new(&ex, &o), 0);
    cc_future *a, *b;
    assert_int_equal(cc_executor_submit(ex, wait_event, &gate, &a), 0);
    assert_int_equal(cc_executor_submit(ex, wait_event, &gate, &b), 0);
    cc_event_set(&gate);
    result_of(a);
    result_of(b);
    cc_future_unref(a);
    cc_future_unref(b);
    cc_executor_free(ex);
    assert_int_equal(inits, 2);
    cc_event_destroy(&gate);
}

struct blocked_submit {
    cc_executor *ex;
    cc_thread *thread;
    cc_future *f;
    int rc;
};

static int submit_one(void *arg)
{
    struct blocked_submit *b = arg;
    b->rc = cc_executor_submit(b->ex, square, (void *)3, &b->f);
    return 0;
}

static bool submitter_blocked(void *arg)
{
    struct blocked_submit *b = arg;
    cc_wait_info info;
    return cc_thread_get_state(b->thread) == CC_THREAD_BLOCKED &&
           cc_thread_wait_info(b->thread, &info) == 0 &&
           info.kind == CC_WAIT_QUEUE;
}

static void test_bounded_queue(void **state)
{
    (void)state;
    cc_event gate;
    cc_event_init(&gate, 0);
    /* Fail fast: one running, two queued, the fourth is refused. */
    cc_executor *ex;
    cc_thread_pool_options o = {.max_workers = 1, .max_queued = 2,
                                .submit_fails_when_full = true};
    assert_int_equal(cc_thread_pool_new(&ex, &o), 0);
    cc_future *running, *q1, *q2, *refused;
    assert_int_equal(cc_executor_submit(ex, wait_event, &gate, &running), 0);
    assert_true(cct_wait_until((bool (*)(void *))cc_future_running, running,
                               CC_SEC(10)));
    assert_int_equal(cc_executor_submit(ex, square, (void *)1, &q1), 0);
    assert_int_equal(cc_executor_submit(ex, square, (void *)2, &q2), 0);
    assert_int_equal(cc_executor_submit(ex, square, (void *)3, &refused),
                     CC_EFULL);
    cc_event_set(&gate);
    assert_int_equal(result_of(q2), 4);
    cc_future_unref(running);
    cc_future_unref(q1);
    cc_future_unref(q2);
    cc_executor_free(ex);

    /* Blocking: the submitter waits, BLOCKED on the queue, until a slot
     * frees. */
    cc_event_clear(&gate);
    o.submit_fails_when_full = false;
    o.max_queued = 1;
    assert_int_equal(cc_thread_pool_new(&ex, &o), 0);
    assert_int_equal(cc_executor_submit(ex, wait_event, &gate, &running), 0);
    assert_true(cct_wait_until((bool (*)(void *))cc_future_running, running,
                               CC_SEC(10)));
    assert_int_equal(cc_executor_submit(ex, square, (void *)1, &q1), 0);
    struct blocked_submit b = {.ex = ex};
    assert_int_equal(cc_thread_new(&b.thread, submit_one, &b, NULL), 0);
    assert_int_equal(cc_thread_start(b.thread), 0);
    assert_true(cct_wait_until(submitter_blocked, &b, CC_SEC(10)));
    cc_event_set(&gate);
    assert_int_equal(cc_thread_join(b.thread, CC_SEC(30)), 0);
    assert_int_equal(b.rc, 0);
    assert_int_equal(result_of(b.f), 9);
    cc_thread_unref(b.thread);
    cc_future_unref(b.f);
    cc_future_unref(running);
    cc_future_unref(q1);
    cc_executor_free(ex);
    cc_event_destroy(&gate);
}

/* ---- shutdown ------------------------------------------------------------------- */

static void test_shutdown_waits_and_refuses(void **state)
{
    (void)state;
    cc_executor *ex;
    cc_thread_pool_options o = {.max_workers = 2};
    assert_int_equal(cc_thread_pool_new(&ex, &o), 0);
    cc_future *fs[100];
    for (intptr_t i = 0; i < 100; i++)
        assert_int_equal(cc_executor_submit(ex, square, (void *)i, &fs[i]), 0);
    assert_int_equal(cc_executor_shutdown(ex, true, false), 0);
    for (int i = 0; i < 100; i++) {
        assert_true(cc_future_done(fs[i]));
        assert_int_equal(result_of(fs[i]), (intptr_t)i * i);
        cc_future_unref(fs[i]);
    }
    cc_future *f;
    assert_int_equal(cc_executor_submit(ex, square, NULL, &f), CC_ESHUTDOWN);
    assert_int_equal(cc_executor_shutdown(ex, true, false), 0); /* again */
    cc_executor_free(ex);
}

static void test_shutdown_cancels_pending(void **state)
{
    (void)state;
    cc_event gate;
    cc_event_init(&gate, 0);
    cc_executor *ex;
    cc_thread_pool_options o = {.max_workers = 1};
    assert_int_equal(cc_thread_pool_new(&ex, &o), 0);
    cc_future *running;
    assert_int_equal(cc_executor_submit(ex, wait_event, &gate, &running), 0);
    assert_true(cct_wait_until((bool (*)(void *))cc_future_running, running,
                               CC_SEC(10)));
    cc_future *fs[20];
    for (intptr_t i = 0; i < 20; i++)
        assert_int_equal(cc_executor_submit(ex, square, (void *)i, &fs[i]), 0);
    assert_int_equal(cc_executor_shutdown(ex, false, true), 0);
    for (int i = 0; i < 20; i++) {
        assert_true(cc_future_cancelled(fs[i]));
        assert_int_equal(cc_future_result(fs[i], CC_NOWAIT, NULL), -ECANCELED);
        cc_future_unref(fs[i]);
    }
    assert_false(cc_future_done(running));
    cc_event_set(&gate);
    assert_int_equal(cc_executor_shutdown(ex, true, false), 0);
    assert_int_equal(cc_future_result(running, CC_NOWAIT, NULL), 0);
    cc_future_unref(running);
    cc_executor_free(ex);
    cc_event_destroy(&gate);
}

static int shutdown_from_inside(void *arg, void **result)
{
    (void)result;
    return cc_executor_shutdown(arg, true, false);
}

static void test_shutdown_from_own_task_is_deadlock(void **state)
{
    (void)state;
    cc_executor *ex;
    assert_int_equal(cc_thread_pool_new(&ex, NULL), 0);
    cc_future *f;
    assert_int_equal(cc_executor_submit(ex, shutdown_from_inside, ex, &f), 0);
    assert_int_equal(cc_future_result(f, CC_SEC(30), NULL), -EDEADLK);
    cc_future_unref(f);
    cc_executor_free(ex);
}

/* ---- map ------------------------------------------------------------------------ */

static void *args_upto(size_t n, void **storage)
{
    for (size_t i = 0; i < n; i++)
        storage[i] = (void *)(intptr_t)i;
    return storage;
}

static void test_map_ordered_with_chunks(void **state)
{
    (void)state;
    cc_executor *ex;
    assert_int_equal(cc_thread_pool_new(&ex, NULL), 0);
    void *args[50];
    args_upto(50, args);
    size_t chunks[] = {1, 3, 50, 64};
    for (size_t c = 0; c < sizeof chunks / sizeof chunks[0]; c++) {
        cc_map_options o = CC_MAP_OPTIONS_DEFAULT;
        o.chunksize = chunks[c];
        cc_map *m;
        assert_int_equal(cc_executor_map(ex, square, args, 50, &o, &m), 0);
        void *r;
        size_t idx, expect = 0;
        int rc;
        while ((rc = cc_map_next(m, &r, &idx)) == 1) {
            assert_int_equal(idx, expect);
            assert_int_equal((intptr_t)r, (intptr_t)(expect * expect));
            expect++;
        }
        assert_int_equal(rc, 0);
        assert_int_equal(expect, 50);
        assert_int_equal(cc_map_next(m, &r, &idx), 0);
        cc_map_free(m);
    }
    /* An empty map ends at once. */
    cc_map *m;
    assert_int_equal(cc_executor_map(ex, square, NULL, 0, NULL, &m), 0);
    assert_int_equal(cc_map_next(m, NULL, NULL), 0);
    cc_map_free(m);
    assert_int_equal(cc_executor_map(ex, square, NULL, 3, NULL, &m), -EINVAL);
    cc_executor_free(ex);
}

static void test_map_error_surfaces_at_its_element(void **state)
{
    (void)state;
    cc_executor *ex;
    assert_int_equal(cc_thread_pool_new(&ex, NULL), 0);
    void *args[20];
    args_upto(20, args);
    for (size_t chunk = 1; chunk <= 4; chunk += 3) {
        cc_map_options o = CC_MAP_OPTIONS_DEFAULT;
        o.chunksize = chunk;
        cc_map *m;
        assert_int_equal(cc_executor_map(ex, fail_on_seven, args, 20, &o, &m), 0);
        void *r;
        size_t idx;
        for (size_t i = 0; i < 7; i++) {
            assert_int_equal(cc_map_next(m, &r, &idx), 1);
            assert_int_equal(idx, i);
            assert_int_equal((intptr_t)r, (intptr_t)i + 100);
        }
        assert_int_equal(cc_map_next(m, &r, &idx), -EDOM);
        assert_int_equal(idx, 7);
        assert_int_equal(cc_map_next(m, &r, &idx), 0); /* finished */
        cc_map_free(m);
    }
    cc_executor_free(ex);
}

static void test_map_timeout_cancels_the_rest(void **state)
{
    (void)state;
    cc_event gate;
    cc_event_init(&gate, 0);
    cc_executor *ex;
    cc_thread_pool_options po = {.max_workers = 1};
    assert_int_equal(cc_thread_pool_new(&ex, &po), 0);
    void *args[10];
    for (int i = 0; i < 10; i++)
        args[i] = &gate;
    cc_map_options o = CC_MAP_OPTIONS_DEFAULT;
    o.timeout = CC_MSEC(500);
    cc_map *m;
    int64_t start = cc_monotonic_ns();
    assert_int_equal(cc_executor_map(ex, wait_event, args, 10, &o, &m), 0);
    assert_int_equal(cc_map_next(m, NULL, NULL), -ETIMEDOUT);
    double s = cct_seconds_since(start);
    assert_true(s >= 0.3 && s < 5.0);
    cc_event_set(&gate);
    cc_map_free(m);
    cc_executor_free(ex);
    cc_event_destroy(&gate);
}

static void test_map_unordered_yields_each_once(void **state)
{
    (void)state;
    cc_executor *ex;
    assert_int_equal(cc_thread_pool_new(&ex, NULL), 0);
    enum { N = 200 };
    void *args[N];
    args_upto(N, args);
    cc_map_options o = CC_MAP_OPTIONS_DEFAULT;
    o.unordered = true;
    o.chunksize = 7;
    cc_map *m;
    assert_int_equal(cc_executor_map(ex, square, args, N, &o, &m), 0);
    bool seen[N] = {false};
    void *r;
    size_t idx;
    int count = 0, rc;
    while ((rc = cc_map_next(m, &r, &idx)) == 1) {
        assert_true(idx < N);
        assert_false(seen[idx]);
        seen[idx] = true;
        assert_int_equal((intptr_t)r, (intptr_t)(idx * idx));
        count++;
    }
    assert_int_equal(rc, 0);
    assert_int_equal(count, N);
    cc_map_free(m);

    /* An error in unordered mode still surfaces with its index. */
    o.chunksize = 1;
    assert_int_equal(cc_executor_map(ex, fail_on_seven, args, 20, &o, &m), 0);
    int errors = 0;
    while ((rc = cc_map_next(m, &r, &idx)) != 0) {
        if (rc < 0) {
            assert_int_equal(rc, -EDOM);
            assert_int_equal(idx, 7);
            errors++;
        }
    }
    assert_int_equal(errors, 1);
    cc_map_free(m);
    cc_executor_free(ex);
}

/* ---- fork-join ------------------------------------------------------------------- */

struct fib {
    cc_executor *pool;
    int n;
    long result;
};

static int fib_task(void *arg)
{
    struct fib *f = arg;
    if (f->n < 2) {
        f->result = f->n;
        return 0;
    }
    struct fib a = {f->pool, f->n - 1, 0}, b = {f->pool, f->n - 2, 0};
    cc_task_group g;
    if (cc_task_group_init(&g, f->pool) != 0)
        return -EINVAL;
    int rc = cc_task_group_spawn(&g, fib_task, &a);
    if (rc != 0)
        return rc;
    fib_task(&b);
    rc = cc_task_group_wait(&g);
    cc_task_group_destroy(&g);
    f->result = a.result + b.result;
    return rc;
}

static void test_nested_fork_join_on_one_worker(void **state)
{
    (void)state;
    unsigned workers[] = {1, 2, 4};
    for (size_t w = 0; w < 3; w++) {
        cc_executor *ex;
        cc_thread_pool_options o = {.max_workers = workers[w]};
        assert_int_equal(cc_thread_pool_new(&ex, &o), 0);
        struct fib root = {ex, 20, 0};
        cc_task_group g;
        assert_int_equal(cc_task_group_init(&g, ex), 0);
        assert_int_equal(cc_task_group_spawn(&g, fib_task, &root), 0);
        assert_int_equal(cc_task_group_wait(&g), 0);
        assert_int_equal(cc_task_group_destroy(&g), 0);
        assert_int_equal(root.result, 6765);
        cc_executor_free(ex);
    }
}

/* The main thread, outside the pool, spawns the root and helps while it
 * waits: deep nesting of helping must stay bounded (fib(28) once overflowed
 * the main thread's stack this way). */
static void test_outside_helper_stays_bounded(void **state)
{
    (void)state;
    for (unsigned workers = 1; workers <= 2; workers++) {
        cc_executor *ex;
        cc_thread_pool_options o = {.max_workers = workers};
        assert_int_equal(cc_thread_pool_new(&ex, &o), 0);
        struct fib root = {ex, 28, 0};
        cc_task_group g;
        assert_int_equal(cc_task_group_init(&g, ex), 0);
        assert_int_equal(cc_task_group_spawn(&g, fib_task, &root), 0);
        assert_int_equal(cc_task_group_wait(&g), 0);
        assert_int_equal(cc_task_group_destroy(&g), 0);
        assert_int_equal(root.result, 317811);
        cc_executor_free(ex);
    }
}

/* Nested submit-and-wait through futures inside a task group on one worker:
 * the group's waiter helps, so the inner group's task still runs. */
static int failing_group_task(void *ctx)
{
    (void)ctx;
    return -ERANGE;
}

static void test_task_group_errors_and_misuse(void **state)
{
    (void)state;
    cc_executor *ex;
    assert_int_equal(cc_thread_pool_new(&ex, NULL), 0);
    cc_task_group g;
    assert_int_equal(cc_task_group_init(NULL, ex), -EINVAL);
    assert_int_equal(cc_task_group_init(&g, NULL), -EINVAL);
    assert_int_equal(cc_task_group_init(&g, ex), 0);
    assert_int_equal(cc_task_group_spawn(&g, NULL, NULL), -EINVAL);
    for (int i = 0; i < 10; i++)
        assert_int_equal(cc_task_group_spawn(&g, failing_group_task, NULL), 0);
    assert_int_equal(cc_task_group_wait(&g), -ERANGE);
    /* Reusable after wait, error cleared. */
    assert_int_equal(cc_task_group_wait(&g), 0);
    assert_int_equal(cc_task_group_destroy(&g), 0);
    assert_int_equal(cc_task_group_destroy(&g), -EINVAL);
    cc_executor_shutdown(ex, true, false);
    assert_int_equal(cc_task_group_init(&g, ex), 0);
    assert_int_equal(cc_task_group_spawn(&g, failing_group_task, NULL),
                     CC_ESHUTDOWN);
    cc_task_group_destroy(&g);
    cc_executor_free(ex);
}

struct sum_ctx {
    long *values;
    long total; /* atomic */
};

static int add_range(size_t lo, size_t hi, void *arg)
{
    struct sum_ctx *c = arg;
    long s = 0;
    for (size_t i = lo; i < hi; i++)
        s += c->values[i];
    __atomic_fetch_add(&c->total, s, __ATOMIC_RELAXED);
    return 0;
}

static int fail_in_range(size_t lo, size_t hi, void *arg)
{
    (void)arg;
    return (lo <= 500 && 500 < hi) ? -EOVERFLOW : 0;
}

static void test_parallel_for(void **state)
{
    (void)state;
    enum { N = 100000 };
    long *values = malloc(N * sizeof *values);
    for (long i = 0; i < N; i++)
        values[i] = i;
    unsigned workers[] = {1, 3};
    size_t grains[] = {0, 1, 1000, N * 2};
    for (size_t w = 0; w < 2; w++) {
        cc_executor *ex;
        cc_thread_pool_options o = {.max_workers = workers[w]};
        assert_int_equal(cc_thread_pool_new(&ex, &o), 0);
        for (size_t g = 0; g < 4; g++) {
            struct sum_ctx c = {values, 0};
            assert_int_equal(cc_parallel_for(ex, 0, N, grains[g], add_range, &c), 0);
            assert_int_equal(c.total, (long)N * (N - 1) / 2);
        }
        assert_int_equal(cc_parallel_for(ex, 0, 1000, 10, fail_in_range, NULL),
                         -EOVERFLOW);
        assert_int_equal(cc_parallel_for(ex, 5, 5, 1, add_range, NULL), 0);
        assert_int_equal(cc_parallel_for(ex, 6, 5, 1, add_range, NULL), -EINVAL);
        assert_int_equal(cc_parallel_for(ex, 0, 5, 1, NULL, NULL), -EINVAL);
        cc_executor_free(ex);
    }
    free(values);
}

/* ---- stress: submits from several threads, random cancels, shutdown midway ---- */

struct stress {
    cc_executor *ex;
    long resolved;  /* done callbacks run: atomic */
    long accepted;  /* futures handed out: atomic */
    long refused;   /* submits refused after shutdown: atomic */
    int64_t deadline;
    unsigned seed;
};

static int count_resolution(cc_future *f, void *ctx)
{
    (void)f;
    __atomic_fetch_add(&((struct stress *)ctx)->resolved, 1, __ATOMIC_RELAXED);
    return 0;
}

static int empty_task(void *arg, void **result)
{
    (void)arg;
    (void)result;
    return 0;
}

static int stress_submitter(void *arg)
{
    struct stress *s = arg;
    unsigned seed = __atomic_add_fetch(&s->seed, 7919, __ATOMIC_RELAXED);
    for (int i = 0; i < 250000; i++) {
        if ((i & 1023) == 0 && cc_monotonic_ns() > s->deadline)
            break;
        cc_future *f;
        int rc = cc_executor_submit(s->ex, empty_task, NULL, &f);
        if (rc != 0) {
            assert_int_equal(rc, CC_ESHUTDOWN);
            __atomic_fetch_add(&s->refused, 1, __ATOMIC_RELAXED);
            continue;
        }
        __atomic_fetch_add(&s->accepted, 1, __ATOMIC_RELAXED);
        cc_future_add_done_callback(f, count_resolution, s);
        seed = seed * 1103515245u + 12345u;
        if ((seed >> 16) % 8 == 0)
            cc_future_cancel(f);
        cc_future_unref(f);
    }
    return 0;
}

static void test_stress_every_future_resolves_once(void **state)
{
    (void)state;
    struct stress s = {0};
    s.deadline = cc_monotonic_ns() + CC_SEC(4);
    cc_thread_pool_options o = {.max_workers = 3};
    assert_int_equal(cc_thread_pool_new(&s.ex, &o), 0);
    cc_thread *subs[4];
    for (int i = 0; i < 4; i++) {
        assert_int_equal(cc_thread_new(&subs[i], stress_submitter, &s, NULL), 0);
        assert_int_equal(cc_thread_start(subs[i]), 0);
    }
    /* Shut down in the middle, cancelling what has not started. */
    while (__atomic_load_n(&s.accepted, __ATOMIC_RELAXED) < 20000 &&
           cc_monotonic_ns() < s.deadline)
        cc_sleep(CC_MSEC(1));
    assert_int_equal(cc_executor_shutdown(s.ex, false, true), 0);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(cc_thread_join(subs[i], CC_SEC(60)), 0);
        cc_thread_unref(subs[i]);
    }
    assert_int_equal(cc_executor_shutdown(s.ex, true, false), 0);
    long accepted = __atomic_load_n(&s.accepted, __ATOMIC_RELAXED);
    assert_true(accepted > 0);
    assert_int_equal(__atomic_load_n(&s.resolved, __ATOMIC_RELAXED), accepted);
    cc_executor_free(s.ex);
}

/* A worker finishes a future without its lock when nobody listens
 * (cci_future_finish_owned); a waiter or callback registered at the same
 * moment must still be told. Each FIRST_COMPLETED wait and callback races
 * with a task that finishes at once; a lost notification fails the bounded
 * wait instead of hanging. */
static int note_callback(cc_future *f, void *ctx)
{
    (void)f;
    __atomic_fetch_add((int *)ctx, 1, __ATOMIC_RELAXED);
    return 0;
}

static void test_listeners_race_with_lock_free_finish(void **state)
{
    (void)state;
    cc_thread_pool_options o = {.max_workers = 2};
    cc_executor *ex;
    assert_int_equal(cc_thread_pool_new(&ex, &o), 0);
    int callbacks = 0;
    const int rounds = 3000;
    for (int i = 0; i < rounds; i++) {
        cc_future *f;
        assert_int_equal(cc_executor_submit(ex, empty_task, NULL, &f), 0);
        if (i & 1) {
            bool done = false;
            assert_int_equal(cc_future_wait_many(&f, 1, CC_FIRST_COMPLETED,
                                                 CC_SEC(10), &done),
                             1);
            assert_true(done);
        } else {
            assert_int_equal(
                cc_future_add_done_callback(f, note_callback, &callbacks), 0);
            assert_int_equal(cc_future_result(f, CC_SEC(10), NULL), 0);
        }
        cc_future_unref(f);
    }
    cc_executor_free(ex); /* waits for the workers: every callback ran */
    assert_int_equal(__atomic_load_n(&callbacks, __ATOMIC_RELAXED),
                     rounds / 2);
}

/* Round trips on a pool whose workers keep falling asleep and waking: the
 * wake-up token must never be left set with nobody to spend it, or a task
 * waits forever (each wait here is bounded, so a lost wake-up fails the
 * test instead of hanging it). */
static void test_no_lost_wakeups(void **state)
{
    (void)state;
    cc_executor *ex;
    cc_thread_pool_options o = {.max_workers = 2};
    assert_int_equal(cc_thread_pool_new(&ex, &o), 0);
    int64_t deadline = cc_monotonic_ns() + CC_SEC(3);
    unsigned seed = 12345;
    int rounds = 0;
    while (rounds < 20000 && cc_monotonic_ns() < deadline) {
        seed = seed * 1103515245u + 12345u;
        int n = 1 + (int)((seed >> 16) % 3);
        cc_future *fs[3];
        for (int i = 0; i < n; i++)
            assert_int_equal(cc_executor_submit(ex, square, (void *)2, &fs[i]), 0);
        for (int i = 0; i < n; i++) {
            void *v = NULL;
            assert_int_equal(cc_future_result(fs[i], CC_SEC(10), &v), 0);
            assert_int_equal((intptr_t)v, 4);
            cc_future_unref(fs[i]);
        }
        /* Now and then let the workers search out and fall asleep. */
        if ((seed >> 8) % 16 == 0)
            cc_sleep(CC_USEC((seed >> 4) % 200));
        rounds++;
    }
    assert_true(rounds > 0);
    cc_executor_free(ex);
}

/* A process that exits with tasks queued in a pool it never shut down
 * still runs them all first, as Python does. */
static void test_exit_waits_for_accepted_tasks(void **state)
{
    (void)state;
    char buf[512];
    int wstatus = cct_run_program(POOL_EXIT_HELPER_PATH, buf, sizeof buf);
    assert_true(wstatus != -1 && WIFEXITED(wstatus));
    assert_int_equal(WEXITSTATUS(wstatus), 0);
    assert_non_null(strstr(buf, "main returning"));
    for (int i = 0; i < 6; i++) {
        char line[32];
        snprintf(line, sizeof line, "task %d done", i);
        assert_non_null(strstr(buf, line));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        CCT_TEST(test_submit_and_results),
        CCT_TEST(test_default_workers_and_errors),
        CCT_TEST(test_task_failure_carries_code_and_message),
        CCT_TEST(test_worker_names_and_idle_state),
        CCT_TEST(test_burst_after_idle_starts_workers),
        CCT_TEST(test_fork_join_starts_a_second_worker),
        CCT_TEST(test_idle_pool_uses_no_cpu),
        CCT_TEST(test_failing_initializer_breaks_pool),
        CCT_TEST(test_initializer_runs_in_each_worker),
        CCT_TEST(test_bounded_queue),
        CCT_TEST(test_shutdown_waits_and_refuses),
        CCT_TEST(test_shutdown_cancels_pending),
        CCT_TEST(test_shutdown_from_own_task_is_deadlock),
        CCT_TEST(test_map_ordered_with_chunks),
        CCT_TEST(test_map_error_surfaces_at_its_element),
        CCT_TEST(test_map_timeout_cancels_the_rest),
        CCT_TEST(test_map_unordered_yields_each_once),
        CCT_TEST(test_nested_fork_join_on_one_worker),
        CCT_TEST(test_outside_helper_stays_bounded),
        CCT_TEST(test_task_group_errors_and_misuse),
        CCT_TEST(test_parallel_for),
        CCT_TEST(test_stress_every_future_resolves_once),
        CCT_TEST(test_no_lost_wakeups),
        CCT_TEST(test_listeners_race_with_lock_free_finish),
        CCT_TEST(test_exit_waits_for_accepted_tasks),
    };
    return CCT_RUN(tests);
}
