/* Behaviour of concur/future.h: state machine, cancel, result and error with
 * timeouts, ownership of results, callbacks, wait-many, as_completed, the
 * BLOCKED state of waiters, a stress run, bad arguments, and the internal
 * API the executors use. */
#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "future/future_internal.h"
#include "platform/platform.h"

/* ---- helpers ------------------------------------------------------------- */

static cc_future *new_future(void)
{
    cc_future *f = NULL;
    assert_int_equal(cc_future_new(&f), 0);
    assert_non_null(f);
    return f;
}

static cc_thread *spawn(cc_thread_fn fn, void *ctx)
{
    cc_thread *t = NULL;
    assert_int_equal(cc_thread_new(&t, fn, ctx, NULL), 0);
    assert_int_equal(cc_thread_start(t), 0);
    return t;
}

static int join(cc_thread *t)
{
    int status = -1;
    assert_int_equal(cc_thread_join(t, CC_SEC(30)), 0);
    assert_int_equal(cc_thread_status(t, &status), 0);
    cc_thread_unref(t);
    return status;
}

/* Completes a future after a delay, from another thread. */
struct delayed {
    cc_future *f;
    cc_duration delay;
    int error; /* 0: set_result(value), < 0: set_error, 1: cancel */
    void *value;
    cc_thread *completer; /* the thread that completed it */
};

static int complete_later(void *arg)
{
    struct delayed *d = arg;
    d->completer = cc_thread_current();
    cc_sleep(d->delay);
    if (d->error == 1)
        return cc_future_cancel(d->f) ? 0 : -1;
    if (d->error < 0)
        return cc_future_set_error(d->f, d->error, "failed late");
    return cc_future_set_result(d->f, d->value, NULL);
}

static int counting_destructor_calls;

static void counting_destructor(void *value)
{
    (void)value;
    __atomic_fetch_add(&counting_destructor_calls, 1, __ATOMIC_RELAXED);
}

/* Runs fn with stderr redirected into a temporary file; returns its text
 * (malloc'd). */
static char *capture_stderr(void (*fn)(void *), void *ctx)
{
    char path[] = "/tmp/concur-test-future-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    unlink(path);
    (void)fflush(stderr);
    int saved = dup(2);
    assert_true(saved >= 0);
    assert_true(dup2(fd, 2) >= 0);
    fn(ctx);
    (void)fflush(stderr);
    assert_true(dup2(saved, 2) >= 0);
    close(saved);
    off_t size = lseek(fd, 0, SEEK_END);
    char *text = calloc(1, (size_t)size + 1);
    assert_non_null(text);
    assert_int_equal(pread(fd, text, (size_t)size, 0), size);
    close(fd);
    return text;
}

/* ---- state machine ------------------------------------------------------- */

static void test_layout(void **state)
{
    (void)state;
    assert_true(sizeof(struct cc_future) <= 64);
    assert_string_equal(cc_future_state_name(CC_FUTURE_PENDING), "PENDING");
    assert_string_equal(cc_future_state_name(CC_FUTURE_RUNNING), "RUNNING");
    assert_string_equal(cc_future_state_name(CC_FUTURE_FINISHED), "FINISHED");
    assert_string_equal(cc_future_state_name(CC_FUTURE_CANCELLED), "CANCELLED");
    assert_string_equal(cc_future_state_name((cc_future_state)99), "UNKNOWN");
}

static void test_pending_running_finished(void **state)
{
    (void)state;
    cc_future *f = new_future();
    assert_int_equal(cc_future_get_state(f), CC_FUTURE_PENDING);
    assert_false(cc_future_done(f));
    assert_false(cc_future_running(f));
    assert_false(cc_future_cancelled(f));

    assert_int_equal(cc_future_set_running_or_notify_cancel(f), 0);
    assert_int_equal(cc_future_get_state(f), CC_FUTURE_RUNNING);
    assert_true(cc_future_running(f));
    assert_false(cc_future_done(f));
    /* RUNNING -> RUNNING is illegal (Python: RuntimeError). */
    assert_int_equal(cc_future_set_running_or_notify_cancel(f), -EALREADY);
    /* RUNNING cannot be cancelled. */
    assert_false(cc_future_cancel(f));
    assert_int_equal(cc_future_get_state(f), CC_FUTURE_RUNNING);

    assert_int_equal(cc_future_set_result(f, (void *)7, NULL), 0);
    assert_int_equal(cc_future_get_state(f), CC_FUTURE_FINISHED);
    assert_true(cc_future_done(f));
    assert_false(cc_future_running(f));
    /* Final: nothing leaves FINISHED. */
    assert_int_equal(cc_future_set_running_or_notify_cancel(f), -EALREADY);
    assert_false(cc_future_cancel(f));
    assert_false(cc_future_cancelled(f));
    assert_int_equal(cc_future_set_result(f, (void *)8, NULL), -EALREADY);
    void *v = NULL;
    assert_int_equal(cc_future_result(f, CC_NOWAIT, &v), 0);
    assert_ptr_equal(v, (void *)7);
    assert_int_equal(cc_future_error(f, CC_NOWAIT), 0);
    assert_null(cc_future_error_message(f));
    cc_future_unref(f);

    /* PENDING -> FINISHED directly, as Python allows for promises. */
    f = new_future();
    assert_int_equal(cc_future_set_result(f, NULL, NULL), 0);
    assert_int_equal(cc_future_get_state(f), CC_FUTURE_FINISHED);
    assert_int_equal(cc_future_set_running_or_notify_cancel(f), -EALREADY);
    cc_future_unref(f);
}

static void test_cancel_rules(void **state)
{
    (void)state;
    cc_future *f = new_future();
    assert_true(cc_future_cancel(f));
    assert_int_equal(cc_future_get_state(f), CC_FUTURE_CANCELLED);
    assert_true(cc_future_cancelled(f));
    assert_true(cc_future_done(f));
    assert_false(cc_future_running(f));
    /* Cancelling again is true, as in Python. */
    assert_true(cc_future_cancel(f));
    /* The producer learns it and skips the work. */
    assert_int_equal(cc_future_set_running_or_notify_cancel(f), -ECANCELED);
    assert_int_equal(cc_future_set_result(f, NULL, NULL), -ECANCELED);
    assert_int_equal(cc_future_set_error(f, -EIO, NULL), -ECANCELED);
    assert_int_equal(cc_future_set_result_bytes(f, "x", 1), -ECANCELED);
    assert_int_equal(cc_future_result(f, CC_FOREVER, NULL), -ECANCELED);
    assert_int_equal(cc_future_error(f, CC_FOREVER), -ECANCELED);
    assert_int_equal(cc_future_wait(f, CC_NOWAIT), 0);
    assert_int_equal(cc_future_get_state(f), CC_FUTURE_CANCELLED);
    cc_future_unref(f);
}

static void test_cancel_wakes_waiter(void **state)
{
    (void)state;
    cc_future *f = new_future();
    struct delayed d = {.f = f, .delay = CC_MSEC(50), .error = 1};
    cc_thread *t = spawn(complete_later, &d);
    assert_int_equal(cc_future_result(f, CC_SEC(10), NULL), -ECANCELED);
    assert_int_equal(join(t), 0);
    cc_future_unref(f);
}

/* ---- result and error ---------------------------------------------------- */

static void test_result_timeout(void **state)
{
    (void)state;
    cc_future *f = new_future();
    assert_int_equal(cc_future_result(f, CC_NOWAIT, NULL), -ETIMEDOUT);
    assert_int_equal(cc_future_error(f, CC_NOWAIT), -ETIMEDOUT);
    assert_int_equal(cc_future_wait(f, CC_NOWAIT), -ETIMEDOUT);

    int64_t start = cc_monotonic_ns();
    void *v = (void *)1;
    assert_int_equal(cc_future_result(f, CC_MSEC(500), &v), -ETIMEDOUT);
    double s = cct_seconds_since(start);
    assert_true(s >= 0.3 && s <= 5.0);
    assert_ptr_equal(v, (void *)1); /* untouched on failure */

    start = cc_monotonic_ns();
    assert_int_equal(cc_future_error(f, CC_MSEC(500)), -ETIMEDOUT);
    s = cct_seconds_since(start);
    assert_true(s >= 0.3 && s <= 5.0);

    /* Still usable after timeouts. */
    assert_int_equal(cc_future_set_result(f, (void *)3, NULL), 0);
    assert_int_equal(cc_future_result(f, CC_NOWAIT, &v), 0);
    assert_ptr_equal(v, (void *)3);
    cc_future_unref(f);
}

static void test_result_from_other_thread(void **state)
{
    (void)state;
    cc_future *f = new_future();
    struct delayed d = {.f = f, .delay = CC_MSEC(100), .value = (void *)99};
    cc_thread *t = spawn(complete_later, &d);
    void *v = NULL;
    assert_int_equal(cc_future_result(f, CC_FOREVER, &v), 0);
    assert_ptr_equal(v, (void *)99);
    assert_int_equal(join(t), 0);
    cc_future_unref(f);

    /* An error travels the same way, and a timed wait sees it too. */
    f = new_future();
    struct delayed e = {.f = f, .delay = CC_MSEC(100), .error = -EPIPE};
    t = spawn(complete_later, &e);
    assert_int_equal(cc_future_error(f, CC_SEC(10)), -EPIPE);
    assert_string_equal(cc_future_error_message(f), "failed late");
    assert_int_equal(join(t), 0);
    cc_future_unref(f);
}

static void test_error_and_message(void **state)
{
    (void)state;
    cc_future *f = new_future();
    assert_null(cc_future_error_message(f));
    assert_int_equal(cc_future_set_running_or_notify_cancel(f), 0);
    assert_int_equal(
        cc_future_set_error(f, -ENOENT, "no file %s (%d)", "a.txt", 3), 0);
    assert_int_equal(cc_future_get_state(f), CC_FUTURE_FINISHED);
    void *v = (void *)5;
    assert_int_equal(cc_future_result(f, CC_NOWAIT, &v), -ENOENT);
    assert_ptr_equal(v, (void *)5);
    assert_int_equal(cc_future_error(f, CC_FOREVER), -ENOENT);
    assert_string_equal(cc_future_error_message(f), "no file a.txt (3)");
    assert_int_equal(cc_future_result_bytes(f, CC_NOWAIT, NULL, NULL), -ENOENT);
    cc_future_unref(f);

    /* Without a message; concur's own codes work as well. */
    f = new_future();
    assert_int_equal(cc_future_set_error(f, CC_EWORKER_LOST, NULL), 0);
    assert_int_equal(cc_future_error(f, CC_NOWAIT), CC_EWORKER_LOST);
    assert_null(cc_future_error_message(f));
    cc_future_unref(f);

    /* A failure is always negative. */
    f = new_future();
    assert_int_equal(cc_future_set_error(f, 0, NULL), -EINVAL);
    assert_int_equal(cc_future_set_error(f, 5, "x"), -EINVAL);
    assert_false(cc_future_done(f));
    cc_future_unref(f);
}

static void test_set_twice_keeps_first(void **state)
{
    (void)state;
    counting_destructor_calls = 0;
    cc_future *f = new_future();
    assert_int_equal(cc_future_set_result(f, (void *)1, counting_destructor),
                     0);
    assert_int_equal(cc_future_set_result(f, (void *)2, counting_destructor),
                     -EALREADY);
    assert_int_equal(cc_future_set_error(f, -EIO, "late %d", 1), -EALREADY);
    assert_int_equal(cc_future_set_result_bytes(f, "ab", 2), -EALREADY);
    char *owned = malloc(4);
    assert_non_null(owned);
    assert_int_equal(cc_future_set_result_bytes_owned(f, owned, 4), -EALREADY);
    free(owned); /* still ours after the refusal */
    void *v = NULL;
    assert_int_equal(cc_future_result(f, CC_NOWAIT, &v), 0);
    assert_ptr_equal(v, (void *)1);
    assert_null(cc_future_error_message(f));
    cc_future_unref(f);
    /* Only the first result's destructor, once. */
    assert_int_equal(counting_destructor_calls, 1);

    f = new_future();
    assert_int_equal(cc_future_set_error(f, -EIO, "first"), 0);
    assert_int_equal(cc_future_set_result(f, (void *)2, NULL), -EALREADY);
    assert_int_equal(cc_future_set_error(f, -EPIPE, "second"), -EALREADY);
    assert_int_equal(cc_future_error(f, CC_NOWAIT), -EIO);
    assert_string_equal(cc_future_error_message(f), "first");
    cc_future_unref(f);
}

static void test_destructor_exactly_once(void **state)
{
    (void)state;
    counting_destructor_calls = 0;
    cc_future *f = new_future();
    assert_ptr_equal(cc_future_ref(f), f);
    assert_ptr_equal(cc_future_ref(f), f);
    assert_int_equal(cc_future_set_result(f, (void *)1, counting_destructor),
                     0);
    cc_future_unref(f);
    cc_future_unref(f);
    assert_int_equal(counting_destructor_calls, 0);
    cc_future_unref(f);
    assert_int_equal(counting_destructor_calls, 1);

    /* A real heap value freed by its destructor: LeakSanitizer checks. */
    f = new_future();
    char *s = strdup("heap value");
    assert_non_null(s);
    assert_int_equal(cc_future_set_result(f, s, free), 0);
    void *v = NULL;
    assert_int_equal(cc_future_result(f, CC_NOWAIT, &v), 0);
    assert_string_equal(v, "heap value");
    cc_future_unref(f);

    /* Never completed: nothing to destroy, pending callbacks discarded. */
    f = new_future();
    cc_future_unref(f);
}

static void test_bytes(void **state)
{
    (void)state;
    /* Copied in: the caller's buffer may change afterwards. */
    char buf[6] = "hello";
    cc_future *f = new_future();
    assert_int_equal(cc_future_set_result_bytes(f, buf, 5), 0);
    buf[0] = 'J';
    const void *data = NULL;
    size_t len = 0;
    assert_int_equal(cc_future_result_bytes(f, CC_NOWAIT, &data, &len), 0);
    assert_int_equal(len, 5);
    assert_memory_equal(data, "hello", 5);
    assert_ptr_not_equal(data, buf);
    /* The other kind is refused. */
    assert_int_equal(cc_future_result(f, CC_NOWAIT, NULL), -EINVAL);
    assert_int_equal(cc_future_error(f, CC_NOWAIT), 0);
    cc_future_unref(f);

    /* Handed over: the very buffer, freed by the future. */
    char *heap = malloc(1000);
    assert_non_null(heap);
    memset(heap, 0xab, 1000);
    f = new_future();
    assert_int_equal(cc_future_set_result_bytes_owned(f, heap, 1000), 0);
    assert_int_equal(cc_future_result_bytes(f, CC_FOREVER, &data, &len), 0);
    assert_ptr_equal(data, heap);
    assert_int_equal(len, 1000);
    cc_future_unref(f);

    /* Zero length, NULL allowed. */
    f = new_future();
    assert_int_equal(cc_future_set_result_bytes(f, NULL, 0), 0);
    assert_int_equal(cc_future_result_bytes(f, CC_NOWAIT, NULL, &len), 0);
    assert_int_equal(len, 0);
    cc_future_unref(f);

    /* A void * result is not bytes. */
    f = new_future();
    assert_int_equal(cc_future_set_result(f, NULL, NULL), 0);
    assert_int_equal(cc_future_result_bytes(f, CC_NOWAIT, &data, &len),
                     -EINVAL);
    cc_future_unref(f);

    /* NULL data with a length. */
    f = new_future();
    assert_int_equal(cc_future_set_result_bytes(f, NULL, 3), -EINVAL);
    assert_int_equal(cc_future_set_result_bytes_owned(f, NULL, 3), -EINVAL);
    assert_false(cc_future_done(f));
    cc_future_unref(f);
}

/* ---- callbacks ----------------------------------------------------------- */

struct cb_log {
    int order[8];
    _Atomic int count;
    cc_thread *thread[8];
};

struct cb_arg {
    struct cb_log *log;
    int id;
    int rc;
};

static int logging_callback(cc_future *f, void *ctx)
{
    struct cb_arg *a = ctx;
    assert_true(cc_future_done(f));
    int i = atomic_fetch_add(&a->log->count, 1);
    a->log->order[i] = a->id;
    a->log->thread[i] = cc_thread_current();
    return a->rc;
}

static void test_callbacks_order_and_thread(void **state)
{
    (void)state;
    struct cb_log log = {0};
    struct cb_arg a1 = {&log, 1, 0}, a2 = {&log, 2, 0}, a3 = {&log, 3, 0};
    cc_future *f = new_future();
    assert_int_equal(cc_future_add_done_callback(f, logging_callback, &a1), 0);
    assert_int_equal(cc_future_add_done_callback(f, logging_callback, &a2), 0);
    assert_int_equal(cc_future_add_done_callback(f, logging_callback, &a3), 0);
    assert_int_equal(atomic_load(&log.count), 0);

    struct delayed d = {.f = f, .delay = CC_MSEC(10), .value = NULL};
    cc_thread *t = spawn(complete_later, &d);
    assert_int_equal(cc_future_wait(f, CC_SEC(10)), 0);
    assert_int_equal(join(t), 0);
    assert_int_equal(atomic_load(&log.count), 3);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(log.order[i], i + 1);
        assert_ptr_equal(log.thread[i], d.completer); /* completer's thread */
    }

    /* Already done: runs at once, in the caller. */
    struct cb_arg a4 = {&log, 4, 0};
    assert_int_equal(cc_future_add_done_callback(f, logging_callback, &a4), 0);
    assert_int_equal(atomic_load(&log.count), 4);
    assert_int_equal(log.order[3], 4);
    assert_ptr_equal(log.thread[3], cc_thread_current());
    cc_future_unref(f);

    /* Cancel runs them in the cancelling thread. */
    struct cb_log log2 = {0};
    struct cb_arg b1 = {&log2, 1, 0};
    f = new_future();
    assert_int_equal(cc_future_add_done_callback(f, logging_callback, &b1), 0);
    assert_true(cc_future_cancel(f));
    assert_int_equal(atomic_load(&log2.count), 1);
    assert_ptr_equal(log2.thread[0], cc_thread_current());
    assert_true(cc_future_cancel(f)); /* no second run */
    assert_int_equal(atomic_load(&log2.count), 1);
    cc_future_unref(f);
}

struct failing_run {
    struct cb_log log;
    cc_future *f;
};

static void complete_with_failing_callbacks(void *ctx)
{
    struct failing_run *r = ctx;
    static struct cb_arg args[3];
    args[0] = (struct cb_arg){&r->log, 1, 0};
    args[1] = (struct cb_arg){&r->log, 2, -EIO};
    args[2] = (struct cb_arg){&r->log, 3, 0};
    for (int i = 0; i < 3; i++)
        assert_int_equal(
            cc_future_add_done_callback(r->f, logging_callback, &args[i]), 0);
    assert_int_equal(cc_future_set_result(r->f, NULL, NULL), 0);
    /* After done: the failure is reported, the call still succeeds. */
    static struct cb_arg late = {NULL, 4, -EPIPE};
    late.log = &r->log;
    assert_int_equal(cc_future_add_done_callback(r->f, logging_callback, &late),
                     0);
}

static void test_failing_callback_does_not_stop_others(void **state)
{
    (void)state;
    struct failing_run r = {.f = new_future()};
    char *text = capture_stderr(complete_with_failing_callbacks, &r);
    assert_int_equal(atomic_load(&r.log.count), 4);
    for (int i = 0; i < 4; i++)
        assert_int_equal(r.log.order[i], i + 1);
    assert_non_null(strstr(text, "exception calling callback for <Future at"));
    assert_non_null(strstr(text, "state=FINISHED"));
    assert_non_null(strstr(text, "returned -5"));
    assert_non_null(strstr(text, "returned -32"));
    free(text);
    cc_future_unref(r.f);
}

/* Callbacks added while another thread completes: each runs exactly once. */
#define RACE_FUTURES 2000

struct race {
    cc_future *fs[RACE_FUTURES];
    _Atomic int runs[RACE_FUTURES];
    _Atomic int go;
};

static int count_run(cc_future *f, void *ctx)
{
    (void)f;
    atomic_fetch_add((_Atomic int *)ctx, 1);
    return 0;
}

static int race_adder(void *arg)
{
    struct race *r = arg;
    while (!atomic_load(&r->go))
        cci_cpu_relax();
    for (int i = 0; i < RACE_FUTURES; i++)
        if (cc_future_add_done_callback(r->fs[i], count_run, &r->runs[i]) != 0)
            return -1;
    return 0;
}

static int race_completer(void *arg)
{
    struct race *r = arg;
    while (!atomic_load(&r->go))
        cci_cpu_relax();
    for (int i = 0; i < RACE_FUTURES; i++) {
        int rc = (i % 3 == 0) ? (cc_future_cancel(r->fs[i]) ? 0 : -1)
                              : cc_future_set_result(r->fs[i], NULL, NULL);
        if (rc != 0)
            return -1;
    }
    return 0;
}

static void test_callbacks_concurrent_with_completion(void **state)
{
    (void)state;
    struct race *r = calloc(1, sizeof *r);
    assert_non_null(r);
    for (int i = 0; i < RACE_FUTURES; i++)
        r->fs[i] = new_future();
    cc_thread *a = spawn(race_adder, r);
    cc_thread *c = spawn(race_completer, r);
    atomic_store(&r->go, 1);
    assert_int_equal(join(a), 0);
    assert_int_equal(join(c), 0);
    for (int i = 0; i < RACE_FUTURES; i++) {
        assert_int_equal(atomic_load(&r->runs[i]), 1);
        cc_future_unref(r->fs[i]);
    }
    free(r);
}

/* ---- waiting for many ---------------------------------------------------- */

static void test_wait_all_completed(void **state)
{
    (void)state;
    cc_future *fs[3] = {new_future(), new_future(), new_future()};
    bool done[3];
    assert_int_equal(cc_future_set_result(fs[0], NULL, NULL), 0);
    assert_true(cc_future_cancel(fs[1]));

    /* Times out with the third pending: not an error, the count says. */
    int64_t start = cc_monotonic_ns();
    assert_int_equal(
        cc_future_wait_many(fs, 3, CC_ALL_COMPLETED, CC_MSEC(500), done), 2);
    double s = cct_seconds_since(start);
    assert_true(s >= 0.3 && s <= 5.0);
    assert_true(done[0] && done[1] && !done[2]);
    assert_int_equal(
        cc_future_wait_many(fs, 3, CC_ALL_COMPLETED, CC_NOWAIT, done), 2);

    struct delayed d = {.f = fs[2], .delay = CC_MSEC(50), .error = -EIO};
    cc_thread *t = spawn(complete_later, &d);
    assert_int_equal(
        cc_future_wait_many(fs, 3, CC_ALL_COMPLETED, CC_FOREVER, done), 3);
    assert_true(done[0] && done[1] && done[2]);
    assert_int_equal(join(t), 0);
    /* done may be NULL; n == 0 returns at once. */
    assert_int_equal(
        cc_future_wait_many(fs, 3, CC_ALL_COMPLETED, CC_NOWAIT, NULL), 3);
    assert_int_equal(
        cc_future_wait_many(NULL, 0, CC_ALL_COMPLETED, CC_FOREVER, NULL), 0);
    for (int i = 0; i < 3; i++)
        cc_future_unref(fs[i]);
}

static void test_wait_first_completed(void **state)
{
    (void)state;
    cc_future *fs[3] = {new_future(), new_future(), new_future()};
    bool done[3];
    int64_t start = cc_monotonic_ns();
    assert_int_equal(
        cc_future_wait_many(fs, 3, CC_FIRST_COMPLETED, CC_MSEC(500), done), 0);
    double s = cct_seconds_since(start);
    assert_true(s >= 0.3 && s <= 5.0);
    assert_true(!done[0] && !done[1] && !done[2]);

    struct delayed d = {.f = fs[1], .delay = CC_MSEC(50)};
    cc_thread *t = spawn(complete_later, &d);
    assert_int_equal(
        cc_future_wait_many(fs, 3, CC_FIRST_COMPLETED, CC_SEC(10), done), 1);
    assert_true(!done[0] && done[1] && !done[2]);
    assert_int_equal(join(t), 0);

    /* A cancellation counts as completed. */
    cc_future *two[2] = {fs[0], fs[2]};
    struct delayed c = {.f = fs[2], .delay = CC_MSEC(50), .error = 1};
    t = spawn(complete_later, &c);
    assert_int_equal(
        cc_future_wait_many(two, 2, CC_FIRST_COMPLETED, CC_SEC(10), done), 1);
    assert_true(!done[0] && done[1]);
    assert_int_equal(join(t), 0);

    /* The same future twice: both positions reported. */
    cc_future *dup[2] = {fs[0], fs[0]};
    struct delayed e = {.f = fs[0], .delay = CC_MSEC(20)};
    t = spawn(complete_later, &e);
    assert_int_equal(
        cc_future_wait_many(dup, 2, CC_FIRST_COMPLETED, CC_SEC(10), done), 2);
    assert_true(done[0] && done[1]);
    assert_int_equal(join(t), 0);
    for (int i = 0; i < 3; i++)
        cc_future_unref(fs[i]);
}

static void test_wait_first_exception(void **state)
{
    (void)state;
    cc_future *fs[4] = {new_future(), new_future(), new_future(), new_future()};
    bool done[4];
    assert_int_equal(cc_future_set_result(fs[0], NULL, NULL), 0);
    assert_true(cc_future_cancel(fs[1]));
    /* A result and a cancellation are not exceptions: it waits. */
    int64_t start = cc_monotonic_ns();
    assert_int_equal(
        cc_future_wait_many(fs, 4, CC_FIRST_EXCEPTION, CC_MSEC(500), done), 2);
    double s = cct_seconds_since(start);
    assert_true(s >= 0.3 && s <= 5.0);

    struct delayed d = {.f = fs[2], .delay = CC_MSEC(50), .error = -EIO};
    cc_thread *t = spawn(complete_later, &d);
    assert_int_equal(
        cc_future_wait_many(fs, 4, CC_FIRST_EXCEPTION, CC_SEC(10), done), 3);
    assert_true(done[0] && done[1] && done[2] && !done[3]);
    assert_int_equal(join(t), 0);
    /* Already failed: returns at once. */
    assert_int_equal(
        cc_future_wait_many(fs, 4, CC_FIRST_EXCEPTION, CC_FOREVER, done), 3);

    /* No failure at all: the same as ALL_COMPLETED. */
    cc_future *ok[2] = {fs[0], fs[3]};
    struct delayed e = {.f = fs[3], .delay = CC_MSEC(50)};
    t = spawn(complete_later, &e);
    assert_int_equal(
        cc_future_wait_many(ok, 2, CC_FIRST_EXCEPTION, CC_SEC(10), done), 2);
    assert_true(done[0] && done[1]);
    assert_int_equal(join(t), 0);
    for (int i = 0; i < 4; i++)
        cc_future_unref(fs[i]);
}

/* More futures than fit on the stack: the heap path. */
static void test_wait_many_large(void **state)
{
    (void)state;
    enum { N = 40 };
    cc_future *fs[N];
    bool done[N];
    for (int i = 0; i < N; i++)
        fs[i] = new_future();
    struct delayed d = {.f = fs[37], .delay = CC_MSEC(30), .error = -EIO};
    cc_thread *t = spawn(complete_later, &d);
    assert_int_equal(
        cc_future_wait_many(fs, N, CC_FIRST_EXCEPTION, CC_SEC(10), done), 1);
    for (int i = 0; i < N; i++)
        assert_int_equal(done[i], i == 37);
    assert_int_equal(join(t), 0);
    for (int i = 0; i < N; i++)
        cc_future_unref(fs[i]);
}

/* ---- as_completed -------------------------------------------------------- */

struct two_later {
    cc_future *first, *second;
};

static int complete_two(void *arg)
{
    struct two_later *tl = arg;
    cc_sleep(CC_MSEC(50));
    if (cc_future_set_result(tl->first, NULL, NULL) != 0)
        return -1;
    cc_sleep(CC_MSEC(50));
    return cc_future_set_error(tl->second, -EIO, NULL);
}

static void test_as_completed_duplicates_and_order(void **state)
{
    (void)state;
    cc_future *a = new_future(), *b = new_future(), *c = new_future();
    assert_int_equal(cc_future_set_result(a, NULL, NULL), 0);
    cc_future *fs[5] = {a, b, a, c, b};
    cc_as_completed *it = NULL;
    assert_int_equal(cc_as_completed_new(&it, fs, 5, CC_SEC(10)), 0);
    /* The iterator holds references: the caller may drop its own. */
    cc_future_unref(b);

    struct two_later tl = {c, b};
    cc_thread *t = spawn(complete_two, &tl);
    cc_future *got[3];
    for (int i = 0; i < 3; i++)
        assert_int_equal(cc_as_completed_next(it, &got[i]), 1);
    assert_ptr_equal(got[0], a); /* already done */
    assert_ptr_equal(got[1], c); /* then in completion order */
    assert_ptr_equal(got[2], b);
    assert_int_equal(cc_future_error(got[2], CC_NOWAIT), -EIO);
    assert_int_equal(cc_as_completed_next(it, &got[0]), 0);
    assert_int_equal(cc_as_completed_next(it, &got[0]), 0);
    assert_int_equal(join(t), 0);
    cc_as_completed_free(it);
    cc_future_unref(a);
    cc_future_unref(c);

    /* Nothing to iterate. */
    assert_int_equal(cc_as_completed_new(&it, NULL, 0, CC_FOREVER), 0);
    cc_future *f;
    assert_int_equal(cc_as_completed_next(it, &f), 0);
    cc_as_completed_free(it);
}

static void test_as_completed_timeout(void **state)
{
    (void)state;
    cc_future *done_f = new_future(), *pending = new_future();
    assert_true(cc_future_cancel(done_f));
    cc_future *fs[3] = {pending, done_f, pending};
    cc_as_completed *it = NULL;
    int64_t start = cc_monotonic_ns();
    assert_int_equal(cc_as_completed_new(&it, fs, 3, CC_MSEC(500)), 0);
    cc_future *f = NULL;
    assert_int_equal(cc_as_completed_next(it, &f), 1);
    assert_ptr_equal(f, done_f);
    assert_int_equal(cc_as_completed_next(it, &f), -ETIMEDOUT);
    double s = cct_seconds_since(start);
    assert_true(s >= 0.3 && s <= 5.0);
    /* Past the deadline: later completions are still handed out. */
    assert_int_equal(cc_as_completed_next(it, &f), -ETIMEDOUT);
    assert_int_equal(cc_future_set_result(pending, NULL, NULL), 0);
    assert_int_equal(cc_as_completed_next(it, &f), 1);
    assert_ptr_equal(f, pending);
    assert_int_equal(cc_as_completed_next(it, &f), 0);
    cc_as_completed_free(it);

    /* Freed while futures are still pending: they are unhooked. */
    cc_future *p2 = new_future();
    assert_int_equal(cc_as_completed_new(&it, &p2, 1, CC_NOWAIT), 0);
    assert_int_equal(cc_as_completed_next(it, &f), -ETIMEDOUT);
    cc_as_completed_free(it);
    assert_int_equal(cc_future_set_result(p2, NULL, NULL), 0);
    cc_future_unref(p2);
    cc_future_unref(done_f);
    cc_future_unref(pending);
}

/* ---- BLOCKED state ------------------------------------------------------- */

struct blocked_waiter {
    cc_future **fs;
    size_t n;
    int mode; /* 0 result, 1 wait_many FIRST_COMPLETED, 2 as_completed */
    cc_thread *self;
    _Atomic int started;
};

static int block_on_futures(void *arg)
{
    struct blocked_waiter *b = arg;
    b->self = cc_thread_current();
    atomic_store(&b->started, 1);
    if (b->mode == 0)
        return cc_future_result(b->fs[0], CC_SEC(30), NULL);
    if (b->mode == 1)
        return cc_future_wait_many(b->fs, b->n, CC_FIRST_COMPLETED, CC_SEC(30),
                                   NULL) == 1
                   ? 0
                   : -1;
    cc_as_completed *it;
    int rc = cc_as_completed_new(&it, b->fs, b->n, CC_SEC(30));
    if (rc < 0)
        return rc;
    cc_future *f;
    rc = cc_as_completed_next(it, &f);
    cc_as_completed_free(it);
    return rc == 1 ? 0 : -1;
}

struct blocked_probe {
    struct blocked_waiter *b;
    const void *object;
};

static bool blocked_on_future(void *arg)
{
    struct blocked_probe *p = arg;
    if (!atomic_load(&p->b->started))
        return false;
    cc_wait_info info;
    return cc_thread_get_state(p->b->self) == CC_THREAD_BLOCKED &&
           cc_thread_wait_info(p->b->self, &info) == 0 &&
           info.kind == CC_WAIT_FUTURE && info.object == p->object;
}

static void test_waiter_shows_blocked(void **state)
{
    (void)state;
    for (int mode = 0; mode < 3; mode++) {
        cc_future *fs[2] = {new_future(), new_future()};
        struct blocked_waiter b = {.fs = fs, .n = mode ? 2 : 1, .mode = mode};
        cc_thread *t = spawn(block_on_futures, &b);
        struct blocked_probe p = {&b, fs[0]};
        assert_true(cct_wait_until(blocked_on_future, &p, CC_SEC(5)));
        assert_int_equal(cc_future_set_result(fs[0], NULL, NULL), 0);
        assert_int_equal(join(t), 0);
        cc_future_unref(fs[0]);
        cc_future_unref(fs[1]);
    }
}

/* ---- stress -------------------------------------------------------------- */

#define STRESS_FUTURES 3000

struct stress {
    cc_future *fs[STRESS_FUTURES];
    _Atomic int callback_runs[STRESS_FUTURES];
    _Atomic int resolved[STRESS_FUTURES]; /* successful set or cancel */
    _Atomic int go;
    _Atomic unsigned seed;
};

static int stress_completer(void *arg)
{
    struct stress *s = arg;
    while (!atomic_load(&s->go))
        cci_cpu_relax();
    unsigned id = atomic_fetch_add(&s->seed, 1);
    for (int k = 0; k < STRESS_FUTURES; k++) {
        int i = (id & 1) ? STRESS_FUTURES - 1 - k : k;
        cc_future *f = s->fs[i];
        int rc;
        if ((i + (int)id) % 4 == 0) {
            rc = cc_future_set_result(f, NULL, NULL); /* PENDING->FINISHED */
        } else {
            rc = cc_future_set_running_or_notify_cancel(f);
            if (rc == 0)
                rc = (i % 5 == 0) ? cc_future_set_error(f, -EIO, "e%d", i)
                                  : cc_future_set_result(f, NULL, NULL);
        }
        if (rc == 0)
            atomic_fetch_add(&s->resolved[i], 1);
        else if (rc != -EALREADY && rc != -ECANCELED)
            return -1;
    }
    return 0;
}

static int stress_canceller(void *arg)
{
    struct stress *s = arg;
    while (!atomic_load(&s->go))
        cci_cpu_relax();
    for (int i = 0; i < STRESS_FUTURES; i += 2) {
        /* Only the PENDING -> CANCELLED call counts as resolving. */
        if (cc_future_get_state(s->fs[i]) != CC_FUTURE_CANCELLED &&
            cc_future_cancel(s->fs[i]))
            atomic_fetch_add(&s->resolved[i], 1);
    }
    return 0;
}

static int stress_as_completed(void *arg)
{
    struct stress *s = arg;
    cc_future **twice =
        malloc(2 * (size_t)STRESS_FUTURES * sizeof(cc_future *));
    if (!twice)
        return -ENOMEM;
    for (int i = 0; i < STRESS_FUTURES; i++)
        twice[i] = twice[STRESS_FUTURES + i] = s->fs[i];
    cc_as_completed *it;
    int rc =
        cc_as_completed_new(&it, twice, 2 * (size_t)STRESS_FUTURES, CC_SEC(20));
    free(twice);
    if (rc < 0)
        return rc;
    while (!atomic_load(&s->go))
        cci_cpu_relax();
    char *seen = calloc(STRESS_FUTURES, 1);
    int yielded = 0;
    cc_future *f;
    while ((rc = cc_as_completed_next(it, &f)) == 1) {
        if (!cc_future_done(f))
            rc = -1;
        for (int i = 0; i < STRESS_FUTURES; i++)
            if (s->fs[i] == f && seen[i]++)
                rc = -2; /* yielded twice */
        if (rc < 0)
            break;
        yielded++;
    }
    cc_as_completed_free(it);
    free(seen);
    return rc == 0 && yielded == STRESS_FUTURES ? 0 : -1;
}

static int stress_waiter(void *arg)
{
    struct stress *s = arg;
    while (!atomic_load(&s->go))
        cci_cpu_relax();
    /* FIRST_COMPLETED over sliding windows, then everything. */
    for (int i = 0; i + 20 <= STRESS_FUTURES; i += 20) {
        bool done[20];
        int n = cc_future_wait_many(&s->fs[i], 20, CC_FIRST_COMPLETED,
                                    CC_SEC(20), done);
        if (n < 1)
            return -1;
    }
    if (cc_future_wait_many(s->fs, STRESS_FUTURES, CC_ALL_COMPLETED, CC_SEC(20),
                            NULL) != STRESS_FUTURES)
        return -1;
    for (int i = 0; i < STRESS_FUTURES; i += 7) {
        int rc = cc_future_result(s->fs[i], CC_SEC(20), NULL);
        if (rc != 0 && rc != -ECANCELED && rc != -EIO)
            return -1;
    }
    return 0;
}

static void test_stress(void **state)
{
    (void)state;
    struct stress *s = calloc(1, sizeof *s);
    assert_non_null(s);
    for (int i = 0; i < STRESS_FUTURES; i++) {
        s->fs[i] = new_future();
        assert_int_equal(cc_future_add_done_callback(s->fs[i], count_run,
                                                     &s->callback_runs[i]),
                         0);
    }
    int64_t start = cc_monotonic_ns();
    cc_thread *t[6];
    t[0] = spawn(stress_completer, s);
    t[1] = spawn(stress_completer, s);
    t[2] = spawn(stress_canceller, s);
    t[3] = spawn(stress_as_completed, s);
    t[4] = spawn(stress_waiter, s);
    t[5] = spawn(stress_waiter, s);
    atomic_store(&s->go, 1);
    for (int i = 0; i < 6; i++)
        assert_int_equal(join(t[i]), 0);
    assert_true(cct_seconds_since(start) < 5.0);
    for (int i = 0; i < STRESS_FUTURES; i++) {
        assert_true(cc_future_done(s->fs[i]));
        assert_int_equal(atomic_load(&s->resolved[i]), 1);
        assert_int_equal(atomic_load(&s->callback_runs[i]), 1);
        cc_future_unref(s->fs[i]);
    }
    free(s);
}

/* ---- bad arguments ------------------------------------------------------- */

static int never_called(cc_future *f, void *ctx)
{
    (void)f;
    (void)ctx;
    fail();
    return 0;
}

static void test_bad_arguments(void **state)
{
    (void)state;
    assert_int_equal(cc_future_new(NULL), -EINVAL);
    assert_null(cc_future_ref(NULL));
    cc_future_unref(NULL);
    assert_int_equal(cc_future_get_state(NULL), CC_FUTURE_PENDING);
    assert_false(cc_future_done(NULL));
    assert_false(cc_future_running(NULL));
    assert_false(cc_future_cancelled(NULL));
    assert_false(cc_future_cancel(NULL));
    assert_int_equal(cc_future_wait(NULL, CC_FOREVER), -EINVAL);
    assert_int_equal(cc_future_result(NULL, CC_FOREVER, NULL), -EINVAL);
    assert_int_equal(cc_future_result_bytes(NULL, CC_FOREVER, NULL, NULL),
                     -EINVAL);
    assert_int_equal(cc_future_error(NULL, CC_FOREVER), -EINVAL);
    assert_null(cc_future_error_message(NULL));
    assert_int_equal(cc_future_add_done_callback(NULL, never_called, NULL),
                     -EINVAL);
    assert_int_equal(cc_future_set_running_or_notify_cancel(NULL), -EINVAL);
    assert_int_equal(cc_future_set_result(NULL, NULL, NULL), -EINVAL);
    assert_int_equal(cc_future_set_result_bytes(NULL, "x", 1), -EINVAL);
    assert_int_equal(cc_future_set_result_bytes_owned(NULL, NULL, 0), -EINVAL);
    assert_int_equal(cc_future_set_error(NULL, -EIO, NULL), -EINVAL);

    cc_future *f = new_future();
    assert_int_equal(cc_future_add_done_callback(f, NULL, NULL), -EINVAL);
    assert_int_equal(cc_future_wait(f, -5), -EINVAL);
    assert_int_equal(cc_future_result(f, CC_INVALID_DURATION, NULL), -EINVAL);
    assert_int_equal(cc_future_error(f, -2), -EINVAL);
    assert_int_equal(cc_future_result_bytes(f, -2, NULL, NULL), -EINVAL);

    cc_future *fs[2] = {f, NULL};
    bool done[2];
    assert_int_equal(
        cc_future_wait_many(NULL, 1, CC_ALL_COMPLETED, CC_FOREVER, done),
        -EINVAL);
    assert_int_equal(
        cc_future_wait_many(fs, 2, CC_ALL_COMPLETED, CC_FOREVER, done),
        -EINVAL);
    assert_int_equal(
        cc_future_wait_many(fs, 1, (cc_return_when)7, CC_FOREVER, done),
        -EINVAL);
    assert_int_equal(cc_future_wait_many(fs, 1, CC_ALL_COMPLETED, -3, done),
                     -EINVAL);
    assert_int_equal(cc_future_wait_many(fs, (size_t)INT32_MAX + 1,
                                         CC_ALL_COMPLETED, CC_NOWAIT, done),
                     -EINVAL);

    cc_as_completed *it;
    assert_int_equal(cc_as_completed_new(NULL, fs, 1, CC_FOREVER), -EINVAL);
    assert_int_equal(cc_as_completed_new(&it, NULL, 1, CC_FOREVER), -EINVAL);
    assert_int_equal(cc_as_completed_new(&it, fs, 2, CC_FOREVER), -EINVAL);
    assert_int_equal(cc_as_completed_new(&it, fs, 1, -3), -EINVAL);
    assert_int_equal(cc_as_completed_next(NULL, &f), -EINVAL);
    assert_int_equal(cc_as_completed_new(&it, fs, 1, CC_FOREVER), 0);
    assert_int_equal(cc_as_completed_next(it, NULL), -EINVAL);
    cc_as_completed_free(it);
    cc_as_completed_free(NULL);
    cc_future_unref(f);
}

/* ---- internal API for executors ------------------------------------------ */

struct task_record {
    void *next;
    int (*fn)(void *);
    void *arg;
};

static int node_callback(cc_future *f, void *ctx)
{
    (void)f;
    atomic_fetch_add((_Atomic int *)ctx, 1);
    return 0;
}

static void test_internal_api(void **state)
{
    (void)state;
    int pool;
    cc_future *f = NULL;
    assert_int_equal(cci_future_new_ex(NULL, &pool, 0), -EINVAL);
    assert_int_equal(cci_future_new_ex(&f, &pool, sizeof(struct task_record)),
                     0);
    assert_ptr_equal(cci_future_executor(f), &pool);
    struct task_record *rec = cci_future_extra(f);
    assert_int_equal((uintptr_t)rec % _Alignof(max_align_t), 0);
    memset(rec, 0x5a, sizeof *rec); /* ASan: inside the allocation */

    /* Embedded callback records: added, removed, never run. */
    _Atomic int runs = 0;
    struct cci_future_callback n1 = {.fn = node_callback, .ctx = &runs};
    struct cci_future_callback n2 = {.fn = node_callback, .ctx = &runs};
    assert_int_equal(cci_future_add_callback_node(f, &n1), 0);
    assert_int_equal(cci_future_add_callback_node(f, &n2), 0);
    assert_true(cci_future_remove_callback_node(f, &n1));
    assert_false(cci_future_remove_callback_node(f, &n1));

    assert_int_equal(cc_future_set_running_or_notify_cancel(f), 0);
    assert_int_equal(cci_future_finish(f, -EIO, NULL, NULL, "boom"), 0);
    assert_int_equal(atomic_load(&runs), 1);
    assert_false(cci_future_remove_callback_node(f, &n2));
    assert_int_equal(cc_future_error(f, CC_NOWAIT), -EIO);
    assert_string_equal(cc_future_error_message(f), "boom");
    assert_int_equal(cci_future_finish(f, 0, NULL, NULL, NULL), -EALREADY);
    /* Added after done: runs at once. */
    assert_int_equal(cci_future_add_callback_node(f, &n1), 0);
    assert_int_equal(atomic_load(&runs), 2);
    cc_future_unref(f);

    counting_destructor_calls = 0;
    assert_int_equal(cci_future_new_ex(&f, NULL, 0), 0);
    assert_int_equal(
        cci_future_finish(f, 3, (void *)9, counting_destructor, NULL), 0);
    void *v = NULL;
    assert_int_equal(cc_future_result(f, CC_NOWAIT, &v), 0);
    assert_ptr_equal(v, (void *)9);
    cc_future_unref(f);
    assert_int_equal(counting_destructor_calls, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        CCT_TEST(test_layout),
        CCT_TEST(test_pending_running_finished),
        CCT_TEST(test_cancel_rules),
        CCT_TEST(test_cancel_wakes_waiter),
        CCT_TEST(test_result_timeout),
        CCT_TEST(test_result_from_other_thread),
        CCT_TEST(test_error_and_message),
        CCT_TEST(test_set_twice_keeps_first),
        CCT_TEST(test_destructor_exactly_once),
        CCT_TEST(test_bytes),
        CCT_TEST(test_callbacks_order_and_thread),
        CCT_TEST(test_failing_callback_does_not_stop_others),
        CCT_TEST(test_callbacks_concurrent_with_completion),
        CCT_TEST(test_wait_all_completed),
        CCT_TEST(test_wait_first_completed),
        CCT_TEST(test_wait_first_exception),
        CCT_TEST(test_wait_many_large),
        CCT_TEST(test_as_completed_duplicates_and_order),
        CCT_TEST(test_as_completed_timeout),
        CCT_TEST(test_waiter_shows_blocked),
        CCT_TEST(test_stress),
        CCT_TEST(test_bad_arguments),
        CCT_TEST(test_internal_api),
    };
    return CCT_RUN(tests);
}
