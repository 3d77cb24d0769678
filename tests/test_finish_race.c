/* Races against a pool worker's lock-free finish (cci_future_finish_owned):
 * another thread completing the running future, callbacks and wait-many
 * waiters registered while the task ends, and sleepers in cc_future_wait.
 * Each run is bounded in iterations and in time (a loaded machine runs
 * fewer iterations, never a longer test). */
#include "harness.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        CCT_TEST(test_outsider_completion_is_kept),
    };
    return CCT_RUN(tests);
}
