/* Behaviour of concur/thread.h: life cycle, errors, identity, failure hook,
 * registry, daemon exit semantics, timer, local storage, sleep. */
#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- helpers -------------------------------------------------------------- */

struct gate {
    int open; /* accessed with __atomic */
    int64_t observed_tid;
    cc_thread *observed_self;
};

static int wait_for_gate(void *arg)
{
    struct gate *g = arg;
    g->observed_tid = (int64_t)syscall(SYS_gettid);
    g->observed_self = cc_thread_current();
    while (!__atomic_load_n(&g->open, __ATOMIC_ACQUIRE))
        cc_sleep(CC_MSEC(1));
    return 7;
}

static void open_gate(struct gate *g)
{
    __atomic_store_n(&g->open, 1, __ATOMIC_RELEASE);
}

static int return_zero(void *arg)
{
    (void)arg;
    return 0;
}

static bool is_blocked_on_sleep(void *arg)
{
    cc_wait_info info;
    cc_thread *t = arg;
    return cc_thread_get_state(t) == CC_THREAD_BLOCKED &&
           cc_thread_wait_info(t, &info) == 0 && info.kind == CC_WAIT_SLEEP;
}

/* ---- life cycle ------------------------------------------------------------ */

static void test_life_cycle(void **state)
{
    (void)state;
    struct gate g = {0};
    cc_thread *t;
    assert_int_equal(cc_thread_new(&t, wait_for_gate, &g, NULL), 0);
    assert_int_equal(cc_thread_get_state(t), CC_THREAD_NEW);
    assert_false(cc_thread_is_alive(t));
    assert_int_equal(cc_thread_ident(t), 0);

    assert_int_equal(cc_thread_start(t), 0);
    assert_true(cc_thread_is_alive(t));
    assert_true(cc_thread_ident(t) > 0);
    /* It sleeps in a loop, so it is seen BLOCKED on CC_WAIT_SLEEP. */
    assert_true(cct_wait_until(is_blocked_on_sleep, t, CC_SEC(5)));
    cc_wait_info info;
    assert_int_equal(cc_thread_wait_info(t, &info), 0);
    assert_true(info.since_ns <= cc_monotonic_ns());

    int status = 0;
    assert_int_equal(cc_thread_status(t, &status), -EBUSY);
    open_gate(&g);
    assert_int_equal(cc_thread_join(t, CC_FOREVER), 0);
    assert_int_equal(cc_thread_get_state(t), CC_THREAD_TERMINATED);
    assert_false(cc_thread_is_alive(t));
    assert_int_equal(cc_thread_status(t, &status), 0);
    assert_int_equal(status, 7);
    assert_int_equal(cc_thread_native_id(t), g.observed_tid);
    assert_ptr_equal(g.observed_self, t);
    assert_null(cc_thread_error_message(t));
    /* Joining again is fine. */
    assert_int_equal(cc_thread_join(t, CC_NOWAIT), 0);
    assert_int_equal(cc_thread_wait_info(t, &info), 0);
    assert_int_equal(info.kind, CC_WAIT_NONE);
    cc_thread_unref(t);
}

struct joiner {
    cc_thread *target;
    cc_thread *self;
    int rc;
};

static int join_target(void *arg)
{
    struct joiner *j = arg;
    j->rc = cc_thread_join(j->target, CC_FOREVER);
    return 0;
}

static bool is_blocked_on_join(void *arg)
{
    struct joiner *j = arg;
    cc_wait_info info;
    return cc_thread_get_state(j->self) == CC_THREAD_BLOCKED &&
           cc_thread_wait_info(j->self, &info) == 0 &&
           info.kind == CC_WAIT_JOIN && info.object == j->target;
}

static void test_join_shows_blocked_on_thread(void **state)
{
    (void)state;
    struct gate g = {0};
    struct joiner j = {0};
    assert_int_equal(cc_thread_new(&j.target, wait_for_gate, &g, NULL), 0);
    assert_int_equal(cc_thread_new(&j.self, join_target, &j, NULL), 0);
    assert_int_equal(cc_thread_start(j.target), 0);
    assert_int_equal(cc_thread_start(j.self), 0);
    assert_true(cct_wait_until(is_blocked_on_join, &j, CC_SEC(5)));
    open_gate(&g);
    assert_int_equal(cc_thread_join(j.self, CC_FOREVER), 0);
    assert_int_equal(j.rc, 0);
    cc_thread_unref(j.self);
    cc_thread_unref(j.target);
}

static void test_join_timeout(void **state)
{
    (void)state;
    struct gate g = {0};
    cc_thread *t;
    assert_int_equal(cc_thread_new(&t, wait_for_gate, &g, NULL), 0);
    assert_int_equal(cc_thread_start(t), 0);
    int64_t start = cc_monotonic_ns();
    assert_int_equal(cc_thread_join(t, CC_MSEC(500)), -ETIMEDOUT);
    double s = cct_seconds_since(start);
    assert_true(s >= 0.3 && s < 5.0);
    assert_int_equal(cc_thread_join(t, CC_NOWAIT), -ETIMEDOUT);
    assert_true(cc_thread_is_alive(t));
    open_gate(&g);
    assert_int_equal(cc_thread_join(t, CC_SEC(30)), 0);
    cc_thread_unref(t);
}

static int join_self(void *arg)
{
    (void)arg;
    return cc_thread_join(cc_thread_current(), CC_FOREVER);
}

static void test_misuse_errors(void **state)
{
    (void)state;
    cc_thread *t;
    assert_int_equal(cc_thread_new(NULL, return_zero, NULL, NULL), -EINVAL);
    assert_int_equal(cc_thread_new(&t, NULL, NULL, NULL), -EINVAL);
    cc_thread_options small = {.stack_size = 1024};
    assert_int_equal(cc_thread_new(&t, return_zero, NULL, &small), -EINVAL);
    cc_thread_options bad_daemon = {.daemon = (cc_daemon_mode)42};
    assert_int_equal(cc_thread_new(&t, return_zero, NULL, &bad_daemon),
                     -EINVAL);
    assert_int_equal(cc_thread_start(NULL), -EINVAL);
    assert_int_equal(cc_thread_join(NULL, CC_FOREVER), -EINVAL);

    assert_int_equal(cc_thread_new(&t, return_zero, NULL, NULL), 0);
    assert_int_equal(cc_thread_join(t, CC_FOREVER), -ESRCH);
    assert_int_equal(cc_thread_join(t, CC_NSEC(-5)), -EINVAL);
    assert_int_equal(cc_thread_set_daemon(t, true), 0);
    assert_true(cc_thread_is_daemon(t));
    assert_int_equal(cc_thread_set_daemon(t, false), 0);
    assert_int_equal(cc_thread_start(t), 0);
    assert_int_equal(cc_thread_start(t), -EALREADY);
    assert_int_equal(cc_thread_set_daemon(t, true), -EBUSY);
    assert_int_equal(cc_thread_join(t, CC_FOREVER), 0);
    assert_int_equal(cc_thread_start(t), -EALREADY);
    cc_thread_unref(t);

    /* Joining yourself is -EDEADLK, as Python's RuntimeError. */
    assert_int_equal(cc_thread_new(&t, join_self, NULL, NULL), 0);
    cc_thread_set_excepthook(NULL, NULL);
    assert_int_equal(cc_thread_start(t), 0);
    assert_int_equal(cc_thread_join(t, CC_FOREVER), 0);
    int status;
    assert_int_equal(cc_thread_status(t, &status), 0);
    assert_int_equal(status, -EDEADLK);
    cc_thread_unref(t);

    /* The main thread (a foreign record) cannot be started. */
    assert_int_equal(cc_thread_start(cc_thread_main()), -EALREADY);
    cc_thread_unref(NULL);
}

static void test_creation_failure_leaves_thread_new(void **state)
{
    (void)state;
    /* A stack no system can give: pthread_create fails, the thread stays
     * NEW and nothing leaks. */
    cc_thread_options huge = {.stack_size = (size_t)1 << 46};
    cc_thread *t;
    assert_int_equal(cc_thread_new(&t, return_zero, NULL, &huge), 0);
    int rc = cc_thread_start(t);
    assert_true(rc == -EAGAIN || rc == -EINVAL);
    assert_int_equal(cc_thread_get_state(t), CC_THREAD_NEW);
    assert_false(cc_thread_is_alive(t));
    assert_int_equal(cc_thread_join(t, CC_NOWAIT), -ESRCH);
    cc_thread_unref(t);
}

/* ---- failure and the excepthook --------------------------------------------- */

struct hook_record {
    int calls;
    int status;
    char name[64];
    char message[128];
};

static void recording_hook(const cc_thread_failure *f, void *ctx)
{
    struct hook_record *r = ctx;
    r->calls++;
    r->status = f->status;
    snprintf(r->name, sizeof r->name, "%s", cc_thread_name(f->thread));
    snprintf(r->message, sizeof r->message, "%s",
             f->message ? f->message : "(null)");
}

static int failing_thread(void *arg)
{
    (void)arg;
    return cc_thread_fail(-EIO, "could not read %s", "data.bin");
}

static int failing_without_message(void *arg)
{
    (void)arg;
    return -ENOENT;
}

static void test_failure_goes_to_excepthook(void **state)
{
    (void)state;
    struct hook_record r = {0};
    cc_thread_set_excepthook(recording_hook, &r);
    cc_thread_options o = {.name = "loader"};
    cc_thread *t;
    assert_int_equal(cc_thread_new(&t, failing_thread, NULL, &o), 0);
    assert_int_equal(cc_thread_start(t), 0);
    assert_int_equal(cc_thread_join(t, CC_FOREVER), 0);
    /* join returns after the hook ran, as in Python. */
    assert_int_equal(r.calls, 1);
    assert_int_equal(r.status, -EIO);
    assert_string_equal(r.name, "loader");
    assert_string_equal(r.message, "could not read data.bin");
    int status;
    assert_int_equal(cc_thread_status(t, &status), 0);
    assert_int_equal(status, -EIO);
    assert_string_equal(cc_thread_error_message(t), "could not read data.bin");
    cc_thread_unref(t);

    assert_int_equal(cc_thread_new(&t, failing_without_message, NULL, NULL), 0);
    assert_int_equal(cc_thread_start(t), 0);
    assert_int_equal(cc_thread_join(t, CC_FOREVER), 0);
    assert_int_equal(r.calls, 2);
    assert_int_equal(r.status, -ENOENT);
    assert_string_equal(r.message, "(null)");
    cc_thread_unref(t);

    /* A positive status is success: no hook. */
    assert_int_equal(cc_thread_new(&t, return_zero, NULL, NULL), 0);
    assert_int_equal(cc_thread_start(t), 0);
    assert_int_equal(cc_thread_join(t, CC_FOREVER), 0);
    assert_int_equal(r.calls, 2);
    cc_thread_unref(t);
    cc_thread_set_excepthook(NULL, NULL);
    /* cc_thread_fail never returns a non-negative status. */
    assert_int_equal(cc_thread_fail(5, "x"), CC_EFAILED);
}

static void test_default_excepthook_prints(void **state)
{
    (void)state;
    char path[] = "/tmp/concur-test-hook-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    unlink(path);
    fflush(stderr);
    int saved = dup(STDERR_FILENO);
    dup2(fd, STDERR_FILENO);

    cc_thread_set_excepthook(NULL, NULL);
    cc_thread_options o = {.name = "worker-7"};
    cc_thread *t;
    assert_int_equal(cc_thread_new(&t, failing_thread, NULL, &o), 0);
    assert_int_equal(cc_thread_start(t), 0);
    assert_int_equal(cc_thread_join(t, CC_FOREVER), 0);
    cc_thread_unref(t);

    fflush(stderr);
    dup2(saved, STDERR_FILENO);
    close(saved);
    char buf[512] = {0};
    assert_true(pread(fd, buf, sizeof buf - 1, 0) > 0);
    close(fd);
    assert_non_null(strstr(buf, "Exception in thread worker-7: could not read "
                                "data.bin"));
}

/* ---- identity and the registry ---------------------------------------------- */

static bool list_contains(cc_thread **list, size_t n, cc_thread *t)
{
    for (size_t i = 0; i < n; i++)
        if (list[i] == t)
            return true;
    return false;
}

static void test_names_idents_and_registry(void **state)
{
    (void)state;
    cc_thread *main_thread = cc_thread_main();
    assert_non_null(main_thread);
    assert_string_equal(cc_thread_name(main_thread), "MainThread");
    assert_ptr_equal(cc_thread_current(), main_thread);
    assert_false(cc_thread_is_daemon(main_thread));
    assert_true(cc_thread_is_alive(main_thread));
    assert_int_equal(cc_thread_native_id(main_thread), getpid());

    size_t before = cc_thread_active_count();
    assert_true(before >= 1);

    struct gate ga = {0}, gb = {0};
    cc_thread *a, *b;
    assert_int_equal(cc_thread_new(&a, wait_for_gate, &ga, NULL), 0);
    assert_int_equal(strncmp(cc_thread_name(a), "Thread-", 7), 0);
    cc_thread_options o = {.name = "a-rather-long-thread-name-for-the-os"};
    assert_int_equal(cc_thread_new(&b, wait_for_gate, &gb, &o), 0);
    assert_string_equal(cc_thread_name(b), o.name);
    assert_int_equal(cc_thread_start(a), 0);
    assert_int_equal(cc_thread_start(b), 0);
    assert_int_not_equal(cc_thread_ident(a), cc_thread_ident(b));
    assert_int_equal(cc_thread_active_count(), before + 2);
    assert_int_equal(cc_thread_set_name(a, "renamed"), 0);
    assert_string_equal(cc_thread_name(a), "renamed");
    assert_int_equal(cc_thread_set_name(a, NULL), -EINVAL);

    cc_thread **list;
    size_t n;
    assert_int_equal(cc_thread_enumerate(&list, &n), 0);
    assert_int_equal(n, before + 2);
    assert_true(list_contains(list, n, a));
    assert_true(list_contains(list, n, b));
    assert_true(list_contains(list, n, main_thread));
    cc_thread_list_free(list, n);
    assert_int_equal(cc_thread_enumerate(NULL, &n), -EINVAL);

    open_gate(&ga);
    open_gate(&gb);
    assert_int_equal(cc_thread_join(a, CC_FOREVER), 0);
    assert_int_equal(cc_thread_join(b, CC_FOREVER), 0);
    assert_int_equal(cc_thread_active_count(), before);
    assert_int_equal(cc_thread_enumerate(&list, &n), 0);
    assert_false(list_contains(list, n, a));
    cc_thread_list_free(list, n);
    cc_thread_unref(a);
    cc_thread_unref(b);
}

struct foreign_report {
    char name[64];
    bool daemon;
    cc_thread *self;
};

static void *foreign_body(void *arg)
{
    struct foreign_report *r = arg;
    r->self = cc_thread_current();
    snprintf(r->name, sizeof r->name, "%s", cc_thread_name(r->self));
    r->daemon = cc_thread_is_daemon(r->self);
    return NULL;
}

static void test_foreign_thread_gets_dummy_record(void **state)
{
    (void)state;
    size_t before = cc_thread_active_count();
    struct foreign_report r = {0};
    pthread_t p;
    assert_int_equal(pthread_create(&p, NULL, foreign_body, &r), 0);
    assert_int_equal(pthread_join(p, NULL), 0);
    assert_int_equal(strncmp(r.name, "Dummy-", 6), 0);
    assert_true(r.daemon);
    /* The record went away with the thread. */
    assert_int_equal(cc_thread_active_count(), before);
}

struct inherit {
    bool child_daemon;
};

static int spawn_child_and_report(void *arg)
{
    struct inherit *in = arg;
    cc_thread *child;
    if (cc_thread_new(&child, return_zero, NULL, NULL) != 0)
        return -1;
    in->child_daemon = cc_thread_is_daemon(child);
    cc_thread_unref(child);
    return 0;
}

static void test_daemon_is_inherited(void **state)
{
    (void)state;
    struct inherit in = {0};
    cc_thread_options o = {.daemon = CC_DAEMON_YES};
    cc_thread *t;
    assert_int_equal(cc_thread_new(&t, spawn_child_and_report, &in, &o), 0);
    assert_true(cc_thread_is_daemon(t));
    assert_int_equal(cc_thread_start(t), 0);
    assert_int_equal(cc_thread_join(t, CC_FOREVER), 0);
    assert_true(in.child_daemon);
    cc_thread_unref(t);

    /* From the main thread (not a daemon), the default is not a daemon. */
    assert_int_equal(cc_thread_new(&t, return_zero, NULL, NULL), 0);
    assert_false(cc_thread_is_daemon(t));
    cc_thread_unref(t);
}

/* Runs tests/exit_helper: a non-daemon thread must finish (and write its
 * line) before the process exits; a daemon thread sleeping forever must not
 * hold the process. */
static void test_process_exit_waits_for_non_daemon_only(void **state)
{
    (void)state;
    char buf[256];
    int wstatus = cct_run_program(EXIT_HELPER_PATH, buf, sizeof buf);
    assert_true(wstatus != -1 && WIFEXITED(wstatus));
    assert_int_equal(WEXITSTATUS(wstatus), 0);
    assert_non_null(strstr(buf, "main returning"));
    assert_non_null(strstr(buf, "non-daemon finished"));
    /* The non-daemon thread finished after main returned: exit waited. */
    assert_true(strstr(buf, "non-daemon finished") > strstr(buf, "main returning"));
    assert_null(strstr(buf, "daemon woke"));
}

/* ---- timer, local, sleep ----------------------------------------------------- */

static int count_call(void *arg)
{
    __atomic_fetch_add((int *)arg, 1, __ATOMIC_RELAXED);
    return 0;
}

static void test_timer_fires_and_cancels(void **state)
{
    (void)state;
    int calls = 0;
    cc_timer *timer;
    assert_int_equal(cc_timer_new(&timer, CC_MSEC(200), count_call, &calls, NULL), 0);
    assert_int_equal(strncmp(cc_thread_name(cc_timer_thread(timer)), "Timer-", 6), 0);
    int64_t start = cc_monotonic_ns();
    assert_int_equal(cc_timer_start(timer), 0);
    assert_int_equal(cc_timer_join(timer, CC_SEC(30)), 0);
    double s = cct_seconds_since(start);
    assert_true(s >= 0.1 && s < 5.0);
    assert_true(cc_timer_fired(timer));
    assert_int_equal(__atomic_load_n(&calls, __ATOMIC_RELAXED), 1);
    assert_int_equal(cc_timer_cancel(timer), 0); /* too late: harmless */
    cc_timer_free(timer);

    assert_int_equal(cc_timer_new(&timer, CC_SEC(60), count_call, &calls, NULL), 0);
    assert_int_equal(cc_timer_start(timer), 0);
    assert_int_equal(cc_timer_cancel(timer), 0);
    assert_int_equal(cc_timer_join(timer, CC_SEC(30)), 0);
    assert_false(cc_timer_fired(timer));
    assert_int_equal(__atomic_load_n(&calls, __ATOMIC_RELAXED), 1);
    cc_timer_free(timer);

    /* Freed without ever starting. */
    assert_int_equal(cc_timer_new(&timer, CC_SEC(1), count_call, &calls, NULL), 0);
    cc_timer_free(timer);
    assert_int_equal(cc_timer_new(&timer, CC_NSEC(-3), count_call, &calls, NULL), -EINVAL);
    assert_int_equal(cc_timer_new(NULL, CC_SEC(1), count_call, &calls, NULL), -EINVAL);
    assert_int_equal(cc_timer_cancel(NULL), -EINVAL);
}

static int destructor_calls;

static void count_destructor(void *value)
{
    __atomic_fetch_add(&destructor_calls, 1, __ATOMIC_RELAXED);
    free(value);
}

struct local_ctx {
    cc_local *local;
    int seen_before;
    int value_after;
};

static int use_local(void *arg)
{
    struct local_ctx *c = arg;
    c->seen_before = cc_local_get(c->local) != NULL;
    int *v = malloc(sizeof *v);
    *v = 99;
    cc_local_set(c->local, v);
    c->value_after = *(int *)cc_local_get(c->local);
    return 0;
}

static void test_local_is_per_thread(void **state)
{
    (void)state;
    cc_local local;
    assert_int_equal(cc_local_init(&local, count_destructor), 0);
    int mine = 1;
    assert_int_equal(cc_local_set(&local, &mine), 0);
    destructor_calls = 0;
    struct local_ctx c = {.local = &local};
    cc_thread *t;
    assert_int_equal(cc_thread_new(&t, use_local, &c, NULL), 0);
    assert_int_equal(cc_thread_start(t), 0);
    assert_int_equal(cc_thread_join(t, CC_FOREVER), 0);
    cc_thread_unref(t);
    assert_int_equal(c.seen_before, 0);
    assert_int_equal(c.value_after, 99);
    assert_ptr_equal(cc_local_get(&local), &mine);
    assert_int_equal(__atomic_load_n(&destructor_calls, __ATOMIC_RELAXED), 1);
    assert_int_equal(cc_local_set(&local, NULL), 0);
    assert_int_equal(cc_local_destroy(&local), 0);
    assert_int_equal(cc_local_destroy(NULL), -EINVAL);
    assert_int_equal(cc_local_set(NULL, NULL), -EINVAL);
    assert_null(cc_local_get(NULL));
}

static void test_sleep(void **state)
{
    (void)state;
    assert_int_equal(cc_sleep(CC_FOREVER), -EINVAL);
    assert_int_equal(cc_sleep(CC_NSEC(-2)), -EINVAL);
    assert_int_equal(cc_sleep(0), 0);
    int64_t start = cc_monotonic_ns();
    assert_int_equal(cc_sleep(CC_MSEC(500)), 0);
    double s = cct_seconds_since(start);
    assert_true(s >= 0.45 && s < 5.0);
}

/* ---- stress ---------------------------------------------------------------- */

static int enumerate_repeatedly(void *arg)
{
    int *stop = arg;
    while (!__atomic_load_n(stop, __ATOMIC_ACQUIRE)) {
        cc_thread **list;
        size_t n;
        if (cc_thread_enumerate(&list, &n) == 0) {
            for (size_t i = 0; i < n; i++) {
                cc_wait_info info;
                cc_thread_wait_info(list[i], &info);
                (void)cc_thread_get_state(list[i]);
            }
            cc_thread_list_free(list, n);
        }
    }
    return 0;
}

static void test_stress_spawn_join_while_enumerating(void **state)
{
    (void)state;
    int stop = 0;
    cc_thread *observer;
    assert_int_equal(cc_thread_new(&observer, enumerate_repeatedly, &stop, NULL), 0);
    assert_int_equal(cc_thread_start(observer), 0);
    int64_t deadline = cc_monotonic_ns() + CC_SEC(2);
    int rounds = 0;
    while (rounds < 300 && cc_monotonic_ns() < deadline) {
        cc_thread *batch[4];
        for (int i = 0; i < 4; i++) {
            assert_int_equal(cc_thread_new(&batch[i], return_zero, NULL, NULL), 0);
            assert_int_equal(cc_thread_start(batch[i]), 0);
        }
        /* Half are joined, half only unreferenced: both must reap. */
        for (int i = 0; i < 4; i++) {
            if (i % 2 == 0)
                assert_int_equal(cc_thread_join(batch[i], CC_FOREVER), 0);
            cc_thread_unref(batch[i]);
        }
        rounds++;
    }
    __atomic_store_n(&stop, 1, __ATOMIC_RELEASE);
    assert_int_equal(cc_thread_join(observer, CC_FOREVER), 0);
    cc_thread_unref(observer);
    assert_true(rounds > 0);
}

static void test_state_names(void **state)
{
    (void)state;
    assert_string_equal(cc_thread_state_name(CC_THREAD_BLOCKED), "BLOCKED");
    assert_string_equal(cc_thread_state_name((cc_thread_state)99), "UNKNOWN");
    assert_string_equal(cc_wait_kind_name(CC_WAIT_LOCK), "lock");
    assert_string_equal(cc_wait_kind_name(CC_WAIT_QUEUE), "queue");
    assert_string_equal(cc_wait_kind_name((cc_wait_kind)99), "unknown");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        CCT_TEST(test_life_cycle),
        CCT_TEST(test_join_shows_blocked_on_thread),
        CCT_TEST(test_join_timeout),
        CCT_TEST(test_misuse_errors),
        CCT_TEST(test_creation_failure_leaves_thread_new),
        CCT_TEST(test_failure_goes_to_excepthook),
        CCT_TEST(test_default_excepthook_prints),
        CCT_TEST(test_names_idents_and_registry),
        CCT_TEST(test_foreign_thread_gets_dummy_record),
        CCT_TEST(test_daemon_is_inherited),
        CCT_TEST(test_process_exit_waits_for_non_daemon_only),
        CCT_TEST(test_timer_fires_and_cancels),
        CCT_TEST(test_local_is_per_thread),
        CCT_TEST(test_sleep),
        CCT_TEST(test_stress_spawn_join_while_enumerating),
        CCT_TEST(test_state_names),
    };
    return CCT_RUN(tests);
}
