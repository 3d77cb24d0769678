/* Races against a pool worker's lock-free finish (cci_future_finish_owned):
 * another thread completing the running future, callbacks and wait-many
 * waiters registered while the task ends, and sleepers in cc_future_wait.
 * Each run is bounded in iterations and in time (a loaded machine runs
 * fewer iterations, never a longer test). */
#include "harness.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sched.h>
#include <string.h>

#include "platform/platform.h"
#include "time/deadline.h"

#define WORKER_RESULT ((void *)(uintptr_t)0xbadc0de)

/* Whether the time budget of a stress loop is spent. */
static bool spent(int64_t deadline)
{
    return cci_now_ns() >= deadline;
}

/* ---- another thread completes a RUNNING pool future ---------------------- */

static _Atomic int task_returning;

/* Says it is about to return, then delays its return by arg pauses, so
 * that across iterations the outsider's call sweeps the worker's finish. */
static int return_at_once(void *arg, void **result)
{
    atomic_store_explicit(&task_returning, 1, memory_order_release);
    for (uintptr_t k = (uintptr_t)arg; k > 0; k--)
        cci_cpu_relax();
    *result = WORKER_RESULT;
    return 0;
}

/* A holder of a pool's future may try to complete it: before the worker
 * starts it, that wins; once the worker runs it, the worker owns it and
 * the attempt fails with -EALREADY. Either way the first outcome is kept
 * whole. (Before the OWNED bit, a set_result_bytes that reached the lock
 * while the worker finished without it wrote its bytes into the future,
 * lost the CAS, freed them and returned -EALREADY: the future's result
 * pointed at freed memory.) */
static void test_outsider_completion_is_kept(void **state)
{
    (void)state;
    cc_executor *pool = NULL;
    cc_thread_pool_options o = {.max_workers = 1};
    assert_int_equal(cc_thread_pool_new(&pool, &o), 0);
    int64_t deadline = cci_now_ns() + CC_SEC(3);
    unsigned outsider_won = 0, worker_won = 0;
    for (int i = 0; i < 20000 && !spent(deadline); i++) {
        atomic_store(&task_returning, 0);
        cc_future *f = NULL;
        assert_int_equal(cc_executor_submit(pool, return_at_once,
                                            (void *)(uintptr_t)(i % 97), &f),
                         0);
        /* Odd rounds race the worker's start instead of its finish. */
        while (i % 2 == 0 &&
               !atomic_load_explicit(&task_returning, memory_order_acquire))
            ;
        int rc = cc_future_set_result_bytes(f, "user", 4);
        assert_int_equal(cc_future_wait(f, CC_SEC(30)), 0);
        if (rc == 0) {
            outsider_won++;
            const void *data = NULL;
            size_t len = 0;
            assert_int_equal(cc_future_result_bytes(f, 0, &data, &len), 0);
            assert_int_equal(len, 4);
            assert_memory_equal(data, "user", 4);
        } else {
            assert_int_equal(rc, -EALREADY);
            worker_won++;
            void *v = NULL;
            assert_int_equal(cc_future_result(f, 0, &v), 0);
            assert_ptr_equal(v, WORKER_RESULT);
        }
        cc_future_unref(f);
    }
    cc_executor_free(pool);
    print_message("outsider first %u, worker first %u\n", outsider_won,
                  worker_won);
}

/* ---- callbacks, waiters and sleepers racing the lock-free finish ---------- */

#define LISTEN_ROUNDS 20000
#define LISTENERS 3

/* Each listener's mailbox: a reference to the round's future, handed over
 * by the submitter and taken (set back to NULL) by the listener. */
static _Atomic(cc_future *) mailbox[LISTENERS];
static _Atomic long callbacks_run;
static _Atomic int listener_failed; /* stops the submitter's hand-overs */

static int count_callback(cc_future *f, void *ctx)
{
    (void)ctx;
    if (!cc_future_done(f))
        return -1; /* reported on stderr; the count below then fails */
    atomic_fetch_add(&callbacks_run, 1);
    return 0;
}

static int empty_task(void *arg, void **result)
{
    *result = arg;
    return 0;
}

/* kind 0 adds a callback; 1 sleeps in cc_future_wait (SLEEPERS); 2 waits
 * with wait_many (a waiter node: LISTENERS). */
static int listen_rounds(int kind);

static int listener(void *arg)
{
    int rc = listen_rounds((int)(intptr_t)arg);
    if (rc != 0)
        atomic_store(&listener_failed, 1);
    return rc;
}

#define STOP ((cc_future *)1)

/* Spins briefly, then yields: on two cores, spinning listeners would take
 * the time of the worker they wait for. */
static void pause_a_little(unsigned *spins)
{
    if (++*spins < 64)
        cci_cpu_relax();
    else
        sched_yield();
}

static int listen_rounds(int kind)
{
    for (;;) {
        cc_future *f;
        unsigned spins = 0;
        while ((f = atomic_exchange(&mailbox[kind], NULL)) == NULL)
            pause_a_little(&spins);
        if (f == STOP)
            return 0;
        if (kind == 0) {
            if (cc_future_add_done_callback(f, count_callback, NULL) != 0)
                return -1;
        } else if (kind == 1) {
            if (cc_future_wait(f, CC_SEC(30)) != 0)
                return -2;
        } else {
            cc_future *fs[2] = {f, f};
            if (cc_future_wait_many(fs, 2, CC_FIRST_COMPLETED, CC_SEC(30),
                                    NULL) != 2)
                return -3;
        }
        void *v = NULL;
        if (kind != 0 && (cc_future_result(f, 0, &v) != 0 || v != (void *)1))
            return -5;
        cc_future_unref(f);
    }
}

/* Puts f (a reference, or STOP) in listener k's empty mailbox; drops it
 * if that listener has failed and left. */
static void hand_over(int k, cc_future *f)
{
    cc_future *expected = NULL;
    unsigned spins = 0;
    while (!atomic_compare_exchange_weak(&mailbox[k], &expected, f)) {
        expected = NULL;
        if (atomic_load(&listener_failed)) {
            if (f != STOP)
                cc_future_unref(f);
            return;
        }
        pause_a_little(&spins);
    }
}

/* A pool worker finishes each future with its lock-free CAS while other
 * threads register a callback, sleep in cc_future_wait and wait with
 * wait_many on it: every callback runs exactly once, every wait ends and
 * sees the result. */
static void test_listeners_race_the_finish(void **state)
{
    (void)state;
    cc_executor *pool = NULL;
    cc_thread_pool_options o = {.max_workers = 2};
    assert_int_equal(cc_thread_pool_new(&pool, &o), 0);
    atomic_store(&callbacks_run, 0);
    atomic_store(&listener_failed, 0);
    cc_thread *t[LISTENERS];
    for (intptr_t k = 0; k < LISTENERS; k++) {
        assert_int_equal(cc_thread_new(&t[k], listener, (void *)k, NULL), 0);
        assert_int_equal(cc_thread_start(t[k]), 0);
    }
    int64_t deadline = cci_now_ns() + CC_SEC(2);
    long rounds = 0;
    for (; rounds < LISTEN_ROUNDS && !spent(deadline) &&
           !atomic_load(&listener_failed);
         rounds++) {
        cc_future *f = NULL;
        assert_int_equal(cc_executor_submit(pool, empty_task, (void *)1, &f),
                         0);
        for (int k = 0; k < LISTENERS; k++)
            hand_over(k, cc_future_ref(f));
        cc_future_unref(f);
    }
    for (int k = 0; k < LISTENERS; k++)
        hand_over(k, STOP);
    for (int k = 0; k < LISTENERS; k++) {
        assert_int_equal(cc_thread_join(t[k], CC_SEC(60)), 0);
        int status = -1;
        assert_int_equal(cc_thread_status(t[k], &status), 0);
        assert_int_equal(status, 0);
        cc_thread_unref(t[k]);
    }
    cc_executor_free(pool);
    print_message("%ld rounds\n", rounds);
    assert_int_equal(atomic_load(&callbacks_run), rounds);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        CCT_TEST(test_outsider_completion_is_kept),
        CCT_TEST(test_listeners_race_the_finish),
    };
    return CCT_RUN(tests);
}
