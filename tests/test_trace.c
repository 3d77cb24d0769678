/* Behaviour of concur/trace.h: names, the thread dump (and SIGQUIT), lock
 * debugging (the lock-order check, the watchdog), pool statistics and the
 * trace timeline. */
#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- helpers ------------------------------------------------------------- */

/* Reports from lock debugging, collected by the hook. A pthread mutex,
 * not a concur Lock: lock debugging would track ours too, and the hook
 * runs in threads that hold the locks being reported. */
static pthread_mutex_t reports_lock = PTHREAD_MUTEX_INITIALIZER;
static char reports[8192];

static void collect_report(const char *text, void *ctx)
{
    (void)ctx;
    pthread_mutex_lock(&reports_lock);
    strncat(reports, text, sizeof reports - strlen(reports) - 1);
    pthread_mutex_unlock(&reports_lock);
}

static void reports_reset(void)
{
    pthread_mutex_lock(&reports_lock);
    reports[0] = '\0';
    pthread_mutex_unlock(&reports_lock);
}

static bool reports_contain(const char *needle)
{
    pthread_mutex_lock(&reports_lock);
    bool found = strstr(reports, needle) != NULL;
    pthread_mutex_unlock(&reports_lock);
    return found;
}

struct blocked_on {
    cc_thread *t;
    cc_wait_kind kind;
};

static bool is_blocked_on(void *ctx)
{
    struct blocked_on *b = ctx;
    cc_wait_info w;
    return cc_thread_get_state(b->t) == CC_THREAD_BLOCKED &&
           cc_thread_wait_info(b->t, &w) == 0 && w.kind == b->kind;
}

static void wait_blocked(cc_thread *t, cc_wait_kind kind)
{
    struct blocked_on b = {t, kind};
    assert_true(cct_wait_until(is_blocked_on, &b, CC_SEC(10)));
}

static int acquire_for_a_while(void *arg)
{
    cc_lock *lock = arg;
    int rc = cc_lock_acquire(lock, CC_SEC(30));
    if (rc == 0)
        cc_lock_release(lock);
    return rc;
}

static cc_thread *start_thread(cc_thread_fn fn, void *arg, const char *name)
{
    cc_thread *t;
    cc_thread_options o = {.name = name};
    assert_int_equal(cc_thread_new(&t, fn, arg, &o), 0);
    assert_int_equal(cc_thread_start(t), 0);
    return t;
}

static int join_status(cc_thread *t)
{
    int status = 0;
    assert_int_equal(cc_thread_join(t, CC_SEC(30)), 0);
    assert_int_equal(cc_thread_status(t, &status), 0);
    cc_thread_unref(t);
    return status;
}

/* ---- names --------------------------------------------------------------- */

static void test_names(void **state)
{
    (void)state;
    cc_lock lock;
    assert_int_equal(cc_lock_init(&lock, 0), 0);
    char buf[CC_NAME_MAX + 1];
    assert_int_equal(cc_name_get(&lock, buf, sizeof buf), -ENOENT);
    assert_int_equal(cc_name_set(&lock, "config lock"), 0);
    assert_int_equal(cc_name_get(&lock, buf, sizeof buf), 11);
    assert_string_equal(buf, "config lock");
    /* Cut to the buffer, length of the whole. */
    char small[7];
    assert_int_equal(cc_name_get(&lock, small, sizeof small), 11);
    assert_string_equal(small, "config");
    assert_int_equal(cc_name_get(&lock, NULL, 0), 11);
    assert_int_equal(cc_name_set(&lock, "renamed"), 0);
    assert_int_equal(cc_name_get(&lock, buf, sizeof buf), 7);
    /* Long names are cut at CC_NAME_MAX. */
    char longname[200];
    memset(longname, 'x', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    int other;
    assert_int_equal(cc_name_set(&other, longname), 0);
    assert_int_equal(cc_name_get(&other, buf, sizeof buf), CC_NAME_MAX);
    assert_int_equal(cc_name_clear(&other), 0);
    assert_int_equal(cc_name_clear(&other), -ENOENT);
    /* Destroying the object forgets its name. */
    assert_int_equal(cc_lock_destroy(&lock), 0);
    assert_int_equal(cc_name_get(&lock, buf, sizeof buf), -ENOENT);
    /* Errors. */
    assert_int_equal(cc_name_set(NULL, "x"), -EINVAL);
    assert_int_equal(cc_name_set(&lock, NULL), -EINVAL);
    assert_int_equal(cc_name_get(NULL, buf, sizeof buf), -EINVAL);
    assert_int_equal(cc_name_get(&lock, NULL, 4), -EINVAL);
    assert_int_equal(cc_name_clear(NULL), -EINVAL);
    /* Queues and pools are named at creation; freeing forgets. */
    cc_queue *q;
    cc_queue_options qo = {.kind = CC_QUEUE_FIFO, .name = "jobs"};
    assert_int_equal(cc_queue_new(&q, &qo), 0);
    assert_int_equal(cc_name_get(q, buf, sizeof buf), 4);
    assert_string_equal(buf, "jobs");
    cc_queue_free(q);
    cc_executor *ex;
    cc_thread_pool_options po = {.max_workers = 1,
                                 .thread_name_prefix = "namedpool"};
    assert_int_equal(cc_thread_pool_new(&ex, &po), 0);
    assert_int_equal(cc_name_get(ex, buf, sizeof buf), 9);
    assert_string_equal(buf, "namedpool");
    cc_executor_free(ex);
}

/* ---- the dump ------------------------------------------------------------ */

static void test_dump_shows_thread_blocked_on_named_lock(void **state)
{
    (void)state;
    assert_int_equal(cc_dump(NULL), -EINVAL);
    cc_lock lock;
    cc_lock_init(&lock, 0);
    cc_name_set(&lock, "config lock");
    assert_int_equal(cc_lock_acquire(&lock, CC_FOREVER), 0);
    cc_thread *t = start_thread(acquire_for_a_while, &lock, "waiter");
    wait_blocked(t, CC_WAIT_LOCK);

    char *text = cct_dump_text();
    assert_non_null(strstr(text, "concur dump: pid"));
    assert_non_null(strstr(text, "Thread \"waiter\""));
    assert_non_null(strstr(text, "BLOCKED for "));
    assert_non_null(strstr(text, "on lock \"config lock\""));
    assert_non_null(strstr(text, "Thread \"MainThread\""));
    assert_non_null(strstr(text, "holds: unknown (enable CONCUR_DEBUG=locks)"));
    assert_non_null(strstr(text, "end of concur dump"));
    free(text);

    cc_lock_release(&lock);
    assert_int_equal(join_status(t), 0);
    cc_lock_destroy(&lock);
}

static void test_dump_with_lock_tracking_names_the_holder(void **state)
{
    (void)state;
    assert_int_equal(cc_debug_enable(CC_DEBUG_LOCKS), 0);
    assert_int_equal(cc_debug_flags(), CC_DEBUG_LOCKS);
    cc_lock lock;
    cc_rlock rlock;
    cc_lock_init(&lock, 0);
    cc_rlock_init(&rlock, 0);
    cc_name_set(&lock, "config lock");
    cc_name_set(&rlock, "tree rlock");
    assert_int_equal(cc_rlock_acquire(&rlock, CC_FOREVER), 0);
    assert_int_equal(cc_rlock_acquire(&rlock, CC_FOREVER), 0); /* depth 2 */
    assert_int_equal(cc_lock_acquire(&lock, CC_FOREVER), 0);
    cc_thread *t = start_thread(acquire_for_a_while, &lock, "waiter");
    wait_blocked(t, CC_WAIT_LOCK);

    char *text = cct_dump_text();
    assert_non_null(strstr(text, "lock tracking on"));
    assert_non_null(strstr(text, "held by \"MainThread\""));
    assert_non_null(strstr(text, "holds lock \"config lock\""));
    assert_non_null(strstr(text, "holds rlock \"tree rlock\""));
    assert_non_null(strstr(text, "holds no Lock or RLock")); /* the waiter */
    free(text);

    cc_lock_release(&lock);
    assert_int_equal(join_status(t), 0);
    cc_rlock_release(&rlock);
    cc_rlock_release(&rlock);
    text = cct_dump_text();
    assert_null(strstr(text, "holds rlock"));
    assert_null(strstr(text, "holds lock"));
    free(text);
    cc_lock_destroy(&lock);
    cc_rlock_destroy(&rlock);
    assert_int_equal(cc_debug_disable(CC_DEBUG_ALL), 0);
    assert_int_equal(cc_debug_flags(), 0);
}

static int wait_event_task(void *arg, void **result)
{
    (void)result;
    return cc_event_wait(arg, CC_SEC(30));
}

static int nothing_task(void *arg, void **result)
{
    (void)arg;
    (void)result;
    return 0;
}

static void test_dump_shows_pools(void **state)
{
    (void)state;
    cc_executor *ex;
    cc_thread_pool_options o = {.max_workers = 1,
                                .thread_name_prefix = "dumped"};
    assert_int_equal(cc_thread_pool_new(&ex, &o), 0);
    assert_int_equal(cc_name_set(ex, "image pool"), 0);
    cc_event ev;
    cc_event_init(&ev, 0);
    cc_future *fs[4];
    assert_int_equal(cc_executor_submit(ex, wait_event_task, &ev, &fs[0]), 0);
    for (int i = 1; i < 4; i++)
        assert_int_equal(cc_executor_submit(ex, nothing_task, NULL, &fs[i]), 0);
    char *text = cct_dump_text();
    assert_non_null(strstr(text, "Pool \"image pool\""));
    assert_non_null(
        strstr(text, "thread pool), RUNNING: workers 1 started of 1"));
    free(text);
    cc_event_set(&ev);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(cc_future_result(fs[i], CC_SEC(30), NULL), 0);
        cc_future_unref(fs[i]);
    }
    cc_executor_free(ex);
    cc_event_destroy(&ev);
}

struct file_has {
    const char *path;
    const char *needle;
};

static bool file_contains(void *ctx)
{
    struct file_has *fh = ctx;
    FILE *f = fopen(fh->path, "r");
    if (!f)
        return false;
    char buf[16384];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = '\0';
    fclose(f);
    return strstr(buf, fh->needle) != NULL;
}

static void test_sigquit_prints_the_dump(void **state)
{
    (void)state;
    char path[] = "/tmp/concur-sigquit-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    fflush(stderr);
    int saved = dup(STDERR_FILENO);
    assert_true(saved >= 0);
    dup2(fd, STDERR_FILENO);
    close(fd);

    assert_int_equal(cc_dump_on_sigquit(true), 0);
    assert_int_equal(cc_dump_on_sigquit(true), 0); /* idempotent */
    raise(SIGQUIT);
    struct file_has fh = {path, "end of concur dump"};
    bool seen = cct_wait_until(file_contains, &fh, CC_SEC(10));
    assert_int_equal(cc_dump_on_sigquit(false), 0);
    assert_int_equal(cc_dump_on_sigquit(false), 0);

    fflush(stderr);
    dup2(saved, STDERR_FILENO);
    close(saved);
    unlink(path);
    assert_true(seen);
}

/* ---- running loops in the dump ------------------------------------------- */

/* A loop run by its own thread, whose tasks wait on named things while the
 * main thread reads the dump. Everything but `loop` is used on the loop's
 * thread only, after the main thread set it up. */
struct loop_scene {
    cc_loop *loop;
    cc_async_event go;
    cc_async_queue *jobs;
    cc_future *sleeper;
};

static int scene_waiter(void *arg, void **result)
{
    (void)result;
    struct loop_scene *s = arg;
    return cc_async_event_wait(&s->go, CC_FOREVER);
}

static int scene_sleeper(void *arg, void **result)
{
    (void)arg;
    (void)result;
    /* Cancelled when the scene ends: that is its success. */
    return cc_async_sleep(CC_SEC(60)) == -ECANCELED ? 0 : -EPROTO;
}

static int scene_getter(void *arg, void **result)
{
    (void)result;
    struct loop_scene *s = arg;
    void *item;
    return cc_async_queue_get(s->jobs, &item, CC_SEC(60));
}

static int scene_reader(void *arg, void **result)
{
    (void)result;
    char c;
    return cc_stream_read(arg, &c, 1, CC_SEC(60)) == 1 ? 0 : -EPROTO;
}

/* The server's side of the reader's connection: answers when the scene
 * ends. */
static int scene_answer(cc_stream *stream, void *ctx)
{
    struct loop_scene *s = ctx;
    int rc = cc_async_event_wait(&s->go, CC_FOREVER);
    if (rc == 0)
        rc = cc_stream_write(stream, "x", 1);
    return rc < 0 ? rc : cc_stream_drain(stream, CC_SEC(30));
}

static int scene_main(void *arg, void **result)
{
    (void)result;
    struct loop_scene *s = arg;
    cc_server *srv;
    int rc = cc_start_server(NULL, NULL, 0, scene_answer, s, &srv);
    if (rc < 0)
        return rc;
    cc_stream *conn;
    rc =
        cc_open_connection("127.0.0.1", cc_server_port(srv), CC_SEC(30), &conn);
    if (rc < 0) {
        cc_server_free(srv);
        return rc;
    }
    cc_task_fn fns[4] = {scene_waiter, scene_sleeper, scene_getter,
                         scene_reader};
    void *args[4] = {s, s, s, conn};
    const char *names[4] = {"waiter", "sleeper", "getter", "reader"};
    cc_future *fs[4] = {NULL};
    for (int i = 0; i < 4 && rc == 0; i++) {
        rc = cc_create_task(fns[i], args[i], &fs[i]);
        if (rc == 0)
            cc_name_set(fs[i], names[i]);
    }
    s->sleeper = fs[1];
    if (rc == 0)
        rc = cc_gather(fs, 4);
    for (int i = 0; i < 4; i++) {
        if (fs[i]) {
            cc_name_clear(fs[i]);
            cc_future_unref(fs[i]);
        }
    }
    cc_stream_close(conn);
    cc_server_free(srv);
    return rc;
}

/* Scheduled from the main thread: lets every task of the scene finish. */
static void scene_end(cc_loop *loop, void *ctx)
{
    (void)loop;
    struct loop_scene *s = ctx;
    cc_async_event_set(&s->go);
    cc_async_queue_put(s->jobs, s, CC_NOWAIT);
    cc_task_cancel(s->sleeper);
}

struct run_until {
    cc_loop *loop;
    cc_future *f;
};

static int run_until_complete(void *arg)
{
    struct run_until *r = arg;
    return cc_loop_run_until_complete(r->loop, r->f);
}

/* The line of text that starts with prefix, or "" (the caller frees). */
static char *line_of(const char *text, const char *prefix)
{
    for (const char *p = text; p && *p; p = strchr(p, '\n')) {
        if (*p == '\n')
            p++;
        if (strncmp(p, prefix, strlen(prefix)) == 0)
            return strndup(p, strcspn(p, "\n"));
    }
    return strdup("");
}

/* Whether the dump has a line starting with needles[2k] that contains
 * needles[2k + 1], for every k (a NULL-terminated list). */
static bool dump_lines_have(void *ctx)
{
    const char *const *needles = ctx;
    char *text = cct_dump_text();
    bool all = true;
    for (; all && needles[0]; needles += 2) {
        char *line = line_of(text, needles[0]);
        all = strstr(line, needles[1]) != NULL;
        free(line);
    }
    if (!all && getenv("CCT_VERBOSE"))
        fputs(text, stderr);
    free(text);
    return all;
}

static void expect_dump_lines(const char *const *needles)
{
    if (!cct_wait_until(dump_lines_have, (void *)needles, CC_SEC(20))) {
        char *text = cct_dump_text();
        fprintf(stderr, "the dump lacks an expected line:\n%s", text);
        free(text);
        fail();
    }
}

static void test_dump_shows_running_loop(void **state)
{
    (void)state;
    struct loop_scene s = {0};
    assert_int_equal(cc_loop_new(&s.loop, NULL), 0);
    assert_int_equal(cc_async_event_init(&s.go), 0);
    assert_int_equal(cc_async_queue_new(&s.jobs, 0), 0);
    cc_name_set(s.loop, "scene loop");
    cc_name_set(&s.go, "go");
    cc_name_set(s.jobs, "jobs");
    struct run_until r = {s.loop, NULL};
    assert_int_equal(cc_loop_create_task(s.loop, scene_main, &s, &r.f), 0);
    cc_name_set(r.f, "main");

    /* Made here, not yet run. */
    const char *before[] = {"Loop \"scene loop\"",
                            "not running, made by thread \"MainThread\"",
                            "    tasks 1 alive",
                            "tasks 1 alive, 1 ready to run; timers 0",
                            "    Task \"main\" (future ",
                            "): ready to run",
                            NULL};
    expect_dump_lines(before);

    /* Run by another thread: every task waits on something of its own. */
    cc_thread *t = start_thread(run_until_complete, &r, "loop runner");
    const char *running[] = {"Loop \"scene loop\"",
                             "running on thread \"loop runner\" (native ",
                             "    tasks 6 alive",
                             "tasks 6 alive, 0 ready to run; timers 3 pending",
                             "    Task \"main\"",
                             "on gather of 4 futures, first pending future "
                             "\"waiter\"",
                             "    Task \"waiter\"",
                             "on event \"go\" (0x",
                             "    Task \"sleeper\"",
                             "on sleep, due in ",
                             "    Task \"getter\"",
                             "on queue \"jobs\" (0x",
                             "    Task \"getter\"",
                             ", to get, times out in ",
                             "    Task \"reader\"",
                             "on io (read) on fd ",
                             "    Task (function ",
                             "waiting for ", /* the server's handler */
                             NULL};
    expect_dump_lines(running);
    /* How long: the sleeper has waited a while, and its sleep ends later. */
    char *text = cct_dump_text();
    char *line = line_of(text, "    Task \"sleeper\"");
    double waited = -1, due = -1;
    const char *w = strstr(line, "waiting for ");
    const char *d = strstr(line, "due in ");
    assert_non_null(w);
    assert_non_null(d);
    waited = strtod(w + strlen("waiting for "), NULL);
    due = strtod(d + strlen("due in "), NULL);
    assert_true(waited >= 0 && waited < 30);
    assert_true(due > 20 && due <= 60);
    free(line);
    free(text);

    assert_int_equal(cc_loop_call_soon_threadsafe(s.loop, scene_end, &s), 0);
    assert_int_equal(join_status(t), 0);
    assert_int_equal(cc_future_error(r.f, CC_NOWAIT), 0);
    cc_name_clear(r.f);
    cc_future_unref(r.f);
    cc_loop_free(s.loop);
    /* A freed loop is gone from the dump. */
    text = cct_dump_text();
    assert_null(strstr(text, "scene loop"));
    assert_null(strstr(text, "Loop ("));
    free(text);
    /* Destroying forgets the names, as for the threading objects. */
    assert_int_equal(cc_async_event_destroy(&s.go), 0);
    char buf[CC_NAME_MAX + 1];
    assert_int_equal(cc_name_get(&s.go, buf, sizeof buf), -ENOENT);
    cc_async_queue_free(s.jobs);
}

/* Tasks made, switched, named and finished without pause while another
 * thread dumps: what ThreadSanitizer checks the dump's reading against. */
struct churn {
    uint32_t stop;   /* atomic */
    uint32_t rounds; /* atomic */
};

static int churn_child(void *arg, void **result)
{
    (void)arg;
    (void)result;
    int rc = cc_async_sleep(CC_USEC(50));
    return rc < 0 ? rc : cc_async_yield();
}

static int churn_main(void *arg, void **result)
{
    (void)result;
    struct churn *c = arg;
    while (!__atomic_load_n(&c->stop, __ATOMIC_ACQUIRE)) {
        cc_future *fs[8];
        for (int i = 0; i < 8; i++) {
            int rc = cc_create_task(churn_child, NULL, &fs[i]);
            if (rc < 0)
                return rc;
            if (i % 2)
                cc_name_set(fs[i], "churned");
        }
        int rc = cc_gather(fs, 8);
        for (int i = 0; i < 8; i++) {
            cc_name_clear(fs[i]);
            cc_future_unref(fs[i]);
        }
        if (rc < 0)
            return rc;
        __atomic_fetch_add(&c->rounds, 1, __ATOMIC_RELEASE);
    }
    return 0;
}

static int run_churn(void *arg)
{
    return cc_run(churn_main, arg, NULL);
}

static bool churned_once(void *ctx)
{
    return __atomic_load_n(&((struct churn *)ctx)->rounds, __ATOMIC_ACQUIRE) >
           0;
}

static void test_dump_while_loop_churns(void **state)
{
    (void)state;
    struct churn c = {0};
    cc_thread *t = start_thread(run_churn, &c, "churner");
    assert_true(cct_wait_until(churned_once, &c, CC_SEC(20)));
    int seen = 0;
    for (int i = 0; i < 100; i++) {
        char *text = cct_dump_text();
        seen += strstr(text, "running on thread \"churner\"") != NULL;
        assert_non_null(strstr(text, "end of concur dump"));
        free(text);
    }
    __atomic_store_n(&c.stop, 1, __ATOMIC_RELEASE);
    assert_int_equal(join_status(t), 0);
    assert_true(seen > 0);
}

static void test_dump_bounds_a_loops_tasks(void **state)
{
    (void)state;
    cc_loop *loop;
    assert_int_equal(cc_loop_new(&loop, NULL), 0);
    for (int i = 0; i < 40; i++)
        assert_int_equal(cc_loop_create_task(loop, nothing_task, NULL, NULL),
                         0);
    char *text = cct_dump_text();
    char head[64];
    snprintf(head, sizeof head, "Loop (%p), not running", (void *)loop);
    assert_non_null(strstr(text, head));
    assert_non_null(strstr(text, "    tasks 40 alive, 40 ready to run"));
    int shown = 0;
    for (const char *p = text; (p = strstr(p, "\n    Task ")); p++)
        shown++;
    assert_int_equal(shown, 32);
    assert_non_null(strstr(text, "\n    ... 8 more tasks\n"));
    free(text);
    /* Closed (the tasks cancelled): no longer listed, though not freed. */
    assert_int_equal(cc_loop_close(loop), 0);
    text = cct_dump_text();
    assert_null(strstr(text, head));
    free(text);
    cc_loop_free(loop);
}

/* ---- lock-order check ---------------------------------------------------- */

static void test_abba_detected_in_one_thread(void **state)
{
    (void)state;
    cc_debug_set_report_hook(collect_report, NULL);
    reports_reset();
    assert_int_equal(cc_debug_enable(CC_DEBUG_ORDER), 0);
    assert_int_equal(cc_debug_flags(), CC_DEBUG_ORDER | CC_DEBUG_LOCKS);
    cc_lock a, b;
    cc_lock_init(&a, 0);
    cc_lock_init(&b, 0);
    cc_name_set(&a, "accounts");
    cc_name_set(&b, "balances");

    /* A then B: learns the order. Again: known, no report. */
    for (int i = 0; i < 2; i++) {
        assert_int_equal(cc_lock_acquire(&a, CC_FOREVER), 0);
        assert_int_equal(cc_lock_acquire(&b, CC_FOREVER), 0);
        cc_lock_release(&b);
        cc_lock_release(&a);
    }
    assert_string_equal(reports, "");
    /* B then A closes the cycle: refused before blocking. */
    assert_int_equal(cc_lock_acquire(&b, CC_FOREVER), 0);
    assert_int_equal(cc_lock_acquire(&a, CC_SEC(5)), -EDEADLK);
    assert_false(cc_lock_locked(&a));
    assert_true(reports_contain("lock order inversion"));
    assert_true(reports_contain("it acquires lock \"accounts\""));
    assert_true(reports_contain("while holding lock \"balances\""));
    assert_true(reports_contain("thread \"MainThread\" acquired lock "
                                "\"balances\""));
    assert_true(reports_contain("fails with -EDEADLK"));
    /* A try-acquire cannot deadlock: allowed. */
    assert_int_equal(cc_lock_acquire(&a, CC_NOWAIT), 0);
    cc_lock_release(&a);
    cc_lock_release(&b);

    /* Policy "report": reported once, then it goes ahead. */
    assert_int_equal(cc_debug_set_deadlock_policy(CC_DEADLOCK_REPORT), 0);
    reports_reset();
    assert_int_equal(cc_lock_acquire(&b, CC_FOREVER), 0);
    assert_int_equal(cc_lock_acquire(&a, CC_FOREVER), 0);
    cc_lock_release(&a);
    cc_lock_release(&b);
    assert_true(reports_contain("report and go on"));
    reports_reset();
    assert_int_equal(cc_lock_acquire(&b, CC_FOREVER), 0);
    assert_int_equal(cc_lock_acquire(&a, CC_FOREVER), 0);
    cc_lock_release(&a);
    cc_lock_release(&b);
    assert_string_equal(reports, "");
    assert_int_equal(cc_debug_set_deadlock_policy(CC_DEADLOCK_FAIL), 0);
    assert_int_equal(cc_debug_set_deadlock_policy((cc_deadlock_policy)7),
                     -EINVAL);

    /* Destroying a lock forgets its orders: a new lock at the same
     * address starts clean. */
    cc_lock_destroy(&a);
    cc_lock_init(&a, 0);
    assert_int_equal(cc_lock_acquire(&b, CC_FOREVER), 0);
    assert_int_equal(cc_lock_acquire(&a, CC_FOREVER), 0);
    cc_lock_release(&a);
    cc_lock_release(&b);
    cc_lock_destroy(&a);
    cc_lock_destroy(&b);

    assert_int_equal(cc_debug_disable(CC_DEBUG_ALL), 0);
    cc_debug_set_report_hook(NULL, NULL);
    assert_int_equal(cc_debug_enable(1u << 9), -EINVAL);
    assert_int_equal(cc_debug_disable(1u << 9), -EINVAL);
}

static void test_order_through_three_rlocks_and_conditions(void **state)
{
    (void)state;
    cc_debug_set_report_hook(collect_report, NULL);
    reports_reset();
    assert_int_equal(cc_debug_enable(CC_DEBUG_ORDER), 0);
    cc_rlock r1, r2;
    cc_lock l3;
    cc_condition cond;
    cc_rlock_init(&r1, 0);
    cc_rlock_init(&r2, 0);
    cc_lock_init(&l3, 0);
    cc_condition_init(&cond, &l3, 0);
    cc_name_set(&r1, "first");
    cc_name_set(&r2, "second");
    cc_name_set(&l3, "third");

    /* r1 -> r2 (with recursion), then r2 -> l3 (with a condition wait,
     * which releases and re-takes l3): no report. */
    assert_int_equal(cc_rlock_acquire(&r1, CC_FOREVER), 0);
    assert_int_equal(cc_rlock_acquire(&r1, CC_FOREVER), 0);
    assert_int_equal(cc_rlock_acquire(&r2, CC_FOREVER), 0);
    cc_rlock_release(&r2);
    cc_rlock_release(&r1);
    cc_rlock_release(&r1);
    assert_int_equal(cc_rlock_acquire(&r2, CC_FOREVER), 0);
    assert_int_equal(cc_lock_acquire(&l3, CC_FOREVER), 0);
    assert_int_equal(cc_condition_wait(&cond, CC_MSEC(1)), -ETIMEDOUT);
    cc_lock_release(&l3);
    cc_rlock_release(&r2);
    assert_string_equal(reports, "");
    /* l3 -> r1 closes r1 -> r2 -> l3 -> r1: the whole path is reported. */
    assert_int_equal(cc_lock_acquire(&l3, CC_FOREVER), 0);
    assert_int_equal(cc_rlock_acquire(&r1, CC_FOREVER), -EDEADLK);
    assert_false(cc_rlock_is_owned(&r1));
    cc_lock_release(&l3);
    assert_true(reports_contain("it acquires rlock \"first\""));
    assert_true(reports_contain("while holding lock \"third\""));
    assert_true(reports_contain("acquired rlock \"second\" ("));
    assert_true(reports_contain("acquired lock \"third\" ("));
    assert_true(reports_contain("while holding rlock \"first\""));
    assert_true(reports_contain("while holding rlock \"second\""));

    cc_condition_destroy(&cond);
    cc_lock_destroy(&l3);
    cc_rlock_destroy(&r1);
    cc_rlock_destroy(&r2);
    assert_int_equal(cc_debug_disable(CC_DEBUG_ALL), 0);
    cc_debug_set_report_hook(NULL, NULL);
}

/* ---- the watchdog -------------------------------------------------------- */

struct crossing {
    cc_lock *mine, *theirs;
    cc_event *ready, *other_ready;
};

/* Takes its own lock, waits until the other thread has its own, then asks
 * for the other's: a real deadlock, ended by the timeout. */
static int cross(void *arg)
{
    struct crossing *c = arg;
    if (cc_lock_acquire(c->mine, CC_FOREVER) != 0)
        return -1;
    cc_event_set(c->ready);
    cc_event_wait(c->other_ready, CC_SEC(30));
    int rc = cc_lock_acquire(c->theirs, CC_MSEC(1500));
    if (rc == 0)
        cc_lock_release(c->theirs);
    cc_lock_release(c->mine);
    /* The first to time out releases its lock, so the other may get it. */
    return rc == -ETIMEDOUT || rc == 0 ? 0 : -1;
}

static bool deadlock_reported(void *ctx)
{
    (void)ctx;
    return reports_contain("concur: deadlock: 2 threads");
}

static void test_watchdog_reports_a_real_deadlock(void **state)
{
    (void)state;
    cc_debug_set_report_hook(collect_report, NULL);
    reports_reset();
    assert_int_equal(cc_debug_set_watchdog_threshold(CC_USEC(10)), -EINVAL);
    assert_int_equal(cc_debug_set_watchdog_threshold(CC_MSEC(100)), 0);
    assert_int_equal(cc_debug_enable(CC_DEBUG_WATCHDOG), 0);
    cc_lock l1, l2;
    cc_event e1, e2;
    cc_lock_init(&l1, 0);
    cc_lock_init(&l2, 0);
    cc_event_init(&e1, 0);
    cc_event_init(&e2, 0);
    cc_name_set(&l1, "left fork");
    cc_name_set(&l2, "right fork");
    struct crossing a = {&l1, &l2, &e1, &e2}, b = {&l2, &l1, &e2, &e1};
    cc_thread *ta = start_thread(cross, &a, "philosopher-A");
    cc_thread *tb = start_thread(cross, &b, "philosopher-B");

    assert_true(cct_wait_until(deadlock_reported, NULL, CC_SEC(10)));
    assert_true(reports_contain("thread \"philosopher-A\""));
    assert_true(reports_contain("thread \"philosopher-B\""));
    assert_true(reports_contain("for lock \"right fork\""));
    assert_true(reports_contain("for lock \"left fork\""));
    assert_true(reports_contain("held by thread \"philosopher-A\""));
    assert_true(reports_contain("held by thread \"philosopher-B\""));
    /* The timeouts end it; the watchdog reported it once. */
    assert_int_equal(join_status(ta), 0);
    assert_int_equal(join_status(tb), 0);
    const char *first = strstr(reports, "concur: deadlock");
    assert_null(strstr(first + 1, "concur: deadlock"));

    assert_int_equal(cc_debug_disable(CC_DEBUG_WATCHDOG), 0);
    assert_int_equal(cc_debug_flags(), CC_DEBUG_LOCKS);
    assert_int_equal(cc_debug_disable(CC_DEBUG_LOCKS), 0);
    cc_lock_destroy(&l1);
    cc_lock_destroy(&l2);
    cc_event_destroy(&e1);
    cc_event_destroy(&e2);
    cc_debug_set_report_hook(NULL, NULL);
    cc_debug_set_watchdog_threshold(CC_SEC(1));
}

static int take_briefly(void *arg)
{
    int rc = cc_lock_acquire(arg, CC_MSEC(1500));
    if (rc == 0)
        cc_lock_release(arg);
    return rc == -ETIMEDOUT ? 0 : -1;
}

static bool join_cycle_reported(void *ctx)
{
    (void)ctx;
    return reports_contain("to finish (join)");
}

/* A cycle through a join: the main thread holds a lock and joins a thread
 * that waits for that lock. */
static void test_watchdog_follows_joins(void **state)
{
    (void)state;
    cc_debug_set_report_hook(collect_report, NULL);
    reports_reset();
    assert_int_equal(cc_debug_set_watchdog_threshold(CC_MSEC(100)), 0);
    assert_int_equal(cc_debug_enable(CC_DEBUG_WATCHDOG), 0);
    cc_lock lock;
    cc_lock_init(&lock, 0);
    cc_name_set(&lock, "registry");
    assert_int_equal(cc_lock_acquire(&lock, CC_FOREVER), 0);
    cc_thread *t = start_thread(take_briefly, &lock, "joined");
    assert_int_equal(join_status(t), 0); /* blocked until its timeout */
    cc_lock_release(&lock);
    assert_true(cct_wait_until(join_cycle_reported, NULL, CC_SEC(5)));
    assert_true(reports_contain("for thread \"joined\" to finish (join)"));
    assert_true(reports_contain("for lock \"registry\""));
    assert_true(reports_contain("held by thread \"MainThread\""));
    assert_int_equal(cc_debug_disable(CC_DEBUG_ALL), 0);
    cc_lock_destroy(&lock);
    cc_debug_set_report_hook(NULL, NULL);
    cc_debug_set_watchdog_threshold(CC_SEC(1));
}

/* ---- pool statistics ----------------------------------------------------- */

static int failing_task(void *arg, void **result)
{
    (void)arg;
    (void)result;
    return -EIO;
}

static int group_child(void *ctx)
{
    (void)ctx;
    return 0;
}

static int range_body(size_t lo, size_t hi, void *ctx)
{
    (void)lo;
    (void)hi;
    (void)ctx;
    return 0;
}

struct stats_wait {
    cc_executor *ex;
    uint64_t queued, running, finished;
};

static bool stats_reach(void *ctx)
{
    struct stats_wait *w = ctx;
    cc_pool_stats s;
    cc_executor_stats(w->ex, &s);
    bool ok = s.queued == w->queued && s.running == w->running &&
              s.completed + s.failed + s.cancelled == w->finished;
    if (!ok && getenv("CCT_VERBOSE"))
        fprintf(stderr, "stats: sub %llu q %llu run %llu fin %llu\n",
                (unsigned long long)s.submitted, (unsigned long long)s.queued,
                (unsigned long long)s.running,
                (unsigned long long)(s.completed + s.failed + s.cancelled));
    return ok;
}

static void submit_n(cc_executor *ex, cc_task_fn fn, void *arg, int n,
                     cc_future **out)
{
    for (int i = 0; i < n; i++)
        assert_int_equal(cc_executor_submit(ex, fn, arg, &out[i]), 0);
}

static void unref_n(cc_future **fs, int n)
{
    for (int i = 0; i < n; i++)
        cc_future_unref(fs[i]);
}

static void test_stats_are_exact_for_a_script(void **state)
{
    (void)state;
    cc_executor *ex;
    cc_thread_pool_options o = {.max_workers = 2};
    assert_int_equal(cc_thread_pool_new(&ex, &o), 0);
    cc_pool_stats s;
    assert_int_equal(cc_executor_stats(NULL, &s), -EINVAL);
    assert_int_equal(cc_executor_stats(ex, NULL), -EINVAL);
    assert_int_equal(cc_executor_stats(ex, &s), 0);
    assert_int_equal(s.submitted, 0);
    assert_int_equal(s.max_workers, 2);
    assert_int_equal(s.worker_restarts, 0);
    cc_event ev;
    cc_event_init(&ev, 0);
    struct stats_wait w = {ex, 0, 0, 0};

    /* Two held tasks on a fresh pool start both workers (a worker that has
     * not finished a task yet is not idle); once both run, four wait behind
     * them, all cancelled while they wait. */
    cc_future *held[2], *queued[4];
    submit_n(ex, wait_event_task, &ev, 2, held);
    w.running = 2;
    assert_true(cct_wait_until(stats_reach, &w, CC_SEC(10)));
    submit_n(ex, nothing_task, NULL, 4, queued);
    for (int i = 0; i < 4; i++)
        assert_true(cc_future_cancel(queued[i]));
    w.queued = 4;
    w.running = 2;
    assert_true(cct_wait_until(stats_reach, &w, CC_SEC(10)));
    assert_int_equal(cc_executor_stats(ex, &s), 0);
    assert_int_equal(s.submitted, 6);
    assert_int_equal(s.workers, 2);
    cc_event_set(&ev);
    w.queued = w.running = 0;
    w.finished = 6;
    assert_true(cct_wait_until(stats_reach, &w, CC_SEC(10)));
    unref_n(held, 2);
    unref_n(queued, 4);

    /* 10 successes and 3 failures, one at a time. */
    for (int i = 0; i < 13; i++) {
        cc_future *f;
        submit_n(ex, i < 10 ? nothing_task : failing_task, NULL, 1, &f);
        cc_future_wait(f, CC_SEC(30));
        cc_future_unref(f);
    }
    /* Fork-join tasks are counted apart, when they finish, before their
     * group's wait returns: 5 spawns, then a parallel-for over 8 indexes
     * in pieces of 1 (7 spawned pieces, the last one run by the caller). */
    cc_task_group g;
    cc_task_group_init(&g, ex);
    for (int i = 0; i < 5; i++)
        assert_int_equal(cc_task_group_spawn(&g, group_child, NULL), 0);
    assert_int_equal(cc_task_group_destroy(&g), 0);
    assert_int_equal(cc_executor_stats(ex, &s), 0);
    assert_int_equal(s.forkjoin_done, 5);
    assert_int_equal(cc_parallel_for(ex, 0, 8, 1, range_body, NULL), 0);
    assert_int_equal(cc_executor_stats(ex, &s), 0);
    assert_int_equal(s.forkjoin_done, 5 + 7);
    w.finished = 6 + 13;
    assert_true(cct_wait_until(stats_reach, &w, CC_SEC(10)));

    /* Both workers held again; two more tasks are cancelled by shutdown. */
    cc_event_clear(&ev);
    submit_n(ex, wait_event_task, &ev, 2, held);
    w.running = 2;
    assert_true(cct_wait_until(stats_reach, &w, CC_SEC(10)));
    submit_n(ex, nothing_task, NULL, 2, queued);
    assert_int_equal(cc_executor_shutdown(ex, false, true), 0);
    cc_event_set(&ev);
    assert_int_equal(cc_executor_shutdown(ex, true, false), 0);
    assert_int_equal(cc_executor_stats(ex, &s), 0);
    assert_int_equal(s.submitted, 6 + 13 + 4);
    assert_int_equal(s.completed, 2 + 10 + 2);
    assert_int_equal(s.failed, 3);
    assert_int_equal(s.cancelled, 4 + 2);
    assert_int_equal(s.queued, 0);
    assert_int_equal(s.running, 0);
    assert_true(s.shutdown);
    assert_false(s.broken);
    assert_int_equal(s.workers, 2);
    assert_true(s.stolen <= s.submitted + 5 + 7);
    assert_int_equal(s.forkjoin_done, 5 + 7);
    unref_n(held, 2);
    unref_n(queued, 2);
    cc_executor_free(ex);
    cc_event_destroy(&ev);
}

/* ---- the trace timeline -------------------------------------------------- */

static int hold_then_release(void *arg)
{
    cc_lock *lock = arg;
    return cc_lock_acquire(lock, CC_SEC(30)) == 0 ? cc_lock_release(lock) : -1;
}

/* Checks the file with Python's json module and the spans expected. */
static const char *check_trace_py =
    "import json, sys\n"
    "doc = json.load(open(sys.argv[1]))\n"
    "ev = doc['traceEvents']\n"
    "names = {e['tid']: e['args']['name'] for e in ev\n"
    "         if e['ph'] == 'M' and e['name'] == 'thread_name'}\n"
    "spans = [e for e in ev if e['ph'] == 'X']\n"
    "for e in spans:\n"
    "    assert e['dur'] >= 0 and e['ts'] >= 0, e\n"
    "blocked = [e for e in spans if e['cat'] == 'blocked'\n"
    "           and e['name'] == 'blocked: lock trace lock'\n"
    "           and names[e['tid']] == 'trace-waiter']\n"
    "assert len(blocked) == 1, blocked\n"
    "assert blocked[0]['dur'] >= 20000, blocked\n"
    "tasks = [e for e in spans if e['cat'] == 'task'\n"
    "         and e['args']['pool'] == 'trace pool']\n"
    "outcomes = sorted(e['args']['outcome'] for e in tasks)\n"
    "assert outcomes == ['completed', 'completed', 'failed'], outcomes\n"
    "assert all(names[e['tid']].startswith('tracer_') for e in tasks)\n"
    "assert doc['otherData']['dropped_events'] == 0\n";

static void test_trace_writes_chrome_json(void **state)
{
    (void)state;
    assert_int_equal(cc_trace_stop(), -ESRCH);
    assert_int_equal(cc_trace_start(NULL, 0), -EINVAL);
    assert_int_equal(cc_trace_start("", 0), -EINVAL);
    char path[] = "/tmp/concur-trace-XXXXXX";
    cct_temp_file(path);
    assert_false(cc_trace_active());
    assert_int_equal(cc_trace_start(path, 0), 0);
    assert_true(cc_trace_active());
    assert_int_equal(cc_trace_start(path, 0), -EALREADY);

    /* A thread blocked 50 ms on a named lock. */
    cc_lock lock;
    cc_lock_init(&lock, 0);
    cc_name_set(&lock, "trace lock");
    cc_lock_acquire(&lock, CC_FOREVER);
    cc_thread *t = start_thread(hold_then_release, &lock, "trace-waiter");
    wait_blocked(t, CC_WAIT_LOCK);
    cc_sleep(CC_MSEC(50));
    cc_lock_release(&lock);
    assert_int_equal(join_status(t), 0);
    /* Three tasks on a named pool, one failing. */
    cc_executor *ex;
    cc_thread_pool_options o = {.max_workers = 1,
                                .thread_name_prefix = "tracer"};
    assert_int_equal(cc_thread_pool_new(&ex, &o), 0);
    cc_name_set(ex, "trace pool");
    for (int i = 0; i < 3; i++) {
        cc_future *f;
        assert_int_equal(
            cc_executor_submit(ex, i == 1 ? failing_task : nothing_task, NULL,
                               &f),
            0);
        cc_future_wait(f, CC_SEC(30));
        cc_future_unref(f);
    }
    /* Stop after the pool is gone: its tasks are all recorded. */
    cc_executor_free(ex);
    long n = cc_trace_stop();
    assert_true(n >= 4);
    assert_false(cc_trace_active());
    cc_lock_destroy(&lock);

    int status = cct_python_check(check_trace_py, path);
    unlink(path);
    assert_int_equal(status, 0);
}

/* Coroutine tasks: a named sleeper that switches out twice, a task that
 * fails, one cancelled before it ever ran, and the main task (unnamed). */
static int sleeper(void *arg, void **result)
{
    (void)arg;
    (void)result;
    for (int i = 0; i < 2; i++)
        if (cc_async_sleep(CC_MSEC(5)) != 0)
            return -EIO;
    return 0;
}

static int failer(void *arg, void **result)
{
    (void)arg;
    (void)result;
    return -EIO;
}

static int coro_main(void *arg, void **result)
{
    (void)arg;
    (void)result;
    cc_future *fs[3];
    if (cc_create_task(sleeper, NULL, &fs[0]) != 0 ||
        cc_create_task(failer, NULL, &fs[1]) != 0 ||
        cc_create_task(sleeper, NULL, &fs[2]) != 0)
        return -ENOMEM;
    cc_name_set(fs[0], "sleeper");
    cc_name_set(fs[1], "failer");
    cc_name_set(fs[2], "never");
    cc_task_cancel(fs[2]);
    int rc = cc_await(fs[0], NULL) == 0 && cc_await(fs[1], NULL) == -EIO &&
                     cc_await(fs[2], NULL) == -ECANCELED
                 ? 0
                 : -EPROTO;
    for (int i = 0; i < 3; i++) {
        cc_name_clear(fs[i]);
        cc_future_unref(fs[i]);
    }
    return rc;
}

static const char *check_coro_trace_py =
    "import json, sys, collections\n"
    "doc = json.load(open(sys.argv[1]))\n"
    "ev = [e for e in doc['traceEvents'] if e.get('cat') == 'coroutine']\n"
    "lives = collections.defaultdict(list)\n"
    "running = collections.Counter()\n"
    "for e in ev:\n"
    "    if e['ph'] in 'be' and e['name'] != 'running':\n"
    "        lives[e['name']].append(e)\n"
    "    elif e['ph'] == 'b':\n"
    "        running[e['id']] += 1\n"
    "def life(name):\n"
    "    b, e = lives[name]\n"
    "    assert (b['ph'], e['ph']) == ('b', 'e') and b['id'] == e['id'], lives\n"
    "    assert e['ts'] >= b['ts'] >= 0\n"
    "    return b['id'], e['args']['outcome']\n"
    "sid, o = life('sleeper')\n"
    "assert o == 'completed' and running[sid] == 3, (o, running)\n"
    "fid, o = life('failer')\n"
    "assert o == 'failed' and running[fid] == 1, (o, running)\n"
    "nid, o = life('never')\n"
    "assert o == 'cancelled' and running[nid] == 0, (o, running)\n"
    "mid, o = life('task')\n"
    "assert o == 'completed' and running[mid] >= 2, (o, running)\n"
    "slices = [e for e in ev if e['ph'] == 'X' and e['name'] == 'sleeper']\n"
    "assert len(slices) == 3 and all(e['dur'] >= 0 for e in slices), slices\n"
    "assert len({e['tid'] for e in ev}) == 1, 'all on the loop thread'\n"
    "ends = sorted(e['ts'] + e['dur'] for e in slices)\n"
    "assert ends[2] - ends[0] >= 9000, ends  # two 5 ms sleeps between\n";

static void test_trace_shows_coroutine_tasks(void **state)
{
    (void)state;
    char path[] = "/tmp/concur-ctrace-XXXXXX";
    cct_temp_file(path);
    assert_int_equal(cc_trace_start(path, 0), 0);
    assert_int_equal(cc_run(coro_main, NULL, NULL), 0);
    assert_true(cc_trace_stop() > 0);
    int status = cct_python_check(check_coro_trace_py, path);
    unlink(path);
    assert_int_equal(status, 0);
}

static void test_trace_buffers_are_bounded(void **state)
{
    (void)state;
    char path[] = "/tmp/concur-trace-XXXXXX";
    cct_temp_file(path);
    assert_int_equal(cc_trace_start(path, 4), 0);
    for (int i = 0; i < 10; i++)
        cc_sleep(CC_USEC(10));
    assert_int_equal(cc_trace_stop(), 4);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char buf[8192];
    size_t len = fread(buf, 1, sizeof buf - 1, f);
    buf[len] = '\0';
    fclose(f);
    assert_non_null(strstr(buf, "\"dropped_events\":6"));
    assert_non_null(strstr(buf, "\"name\":\"blocked: sleep\""));
    unlink(path);
}

/* ---- the environment ---------------------------------------------------- */

static void test_environment_turns_features_on(void **state)
{
    (void)state;
    char path[] = "/tmp/concur-envtrace-XXXXXX";
    cct_temp_file(path);
    setenv("CONCUR_DEBUG", "order", 1);
    setenv("CONCUR_DEADLOCK_POLICY", "fail", 1);
    setenv("CONCUR_TRACE", path, 1);
    char out[512];
    int status = cct_run_program(TRACE_ENV_HELPER_PATH, out, sizeof out);
    unsetenv("CONCUR_DEBUG");
    unsetenv("CONCUR_DEADLOCK_POLICY");
    unsetenv("CONCUR_TRACE");
    assert_int_equal(status, 0);
    char expect[64];
    snprintf(expect, sizeof expect, "flags %u\nrc %d\ntracing 1\n",
             (unsigned)(CC_DEBUG_ORDER | CC_DEBUG_LOCKS), -EDEADLK);
    assert_string_equal(out, expect);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char buf[8192];
    size_t len = fread(buf, 1, sizeof buf - 1, f);
    buf[len] = '\0';
    fclose(f);
    unlink(path);
    assert_non_null(strstr(buf, "\"name\":\"blocked: sleep\""));
    assert_non_null(strstr(buf, "\"dropped_events\":0"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        CCT_TEST(test_names),
        CCT_TEST(test_dump_shows_thread_blocked_on_named_lock),
        CCT_TEST(test_dump_with_lock_tracking_names_the_holder),
        CCT_TEST(test_dump_shows_pools),
        CCT_TEST(test_sigquit_prints_the_dump),
        CCT_TEST(test_dump_shows_running_loop),
        CCT_TEST(test_dump_bounds_a_loops_tasks),
        CCT_TEST(test_dump_while_loop_churns),
        CCT_TEST(test_abba_detected_in_one_thread),
        CCT_TEST(test_order_through_three_rlocks_and_conditions),
        CCT_TEST(test_watchdog_reports_a_real_deadlock),
        CCT_TEST(test_watchdog_follows_joins),
        CCT_TEST(test_stats_are_exact_for_a_script),
        CCT_TEST(test_trace_writes_chrome_json),
        CCT_TEST(test_trace_shows_coroutine_tasks),
        CCT_TEST(test_trace_buffers_are_bounded),
        CCT_TEST(test_environment_turns_features_on),
    };
    return CCT_RUN(tests);
}
