/*
 * Behaviour of concur/process.h with real child processes: both start
 * methods, exit codes (normal, signals, crashes), join timeouts, signals,
 * descriptors a child keeps, the parent dying, the exit handler, the
 * launcher dying, and arguments refused. After every test: no thread, fd,
 * child or zombie left behind (cct_children_teardown, in the harness).
 */
#include "harness.h"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "process/process_internal.h"

#define PT(fn) CCT_PROCESS_TEST(fn)

/* ---- children of this process ------------------------------------------------ */

/* ---- child functions ------------------------------------------------------------ */

static int child_return(void *arg, size_t len)
{
    int v;
    if (len != sizeof v)
        return 100;
    memcpy(&v, arg, sizeof v);
    return v;
}

static int child_sleep_forever(void *arg, size_t len)
{
    (void)arg;
    (void)len;
    for (;;)
        pause();
    return 0;
}

/* FORK children keep the parent's handlers, and cmocka catches SIGSEGV
 * and SIGABRT: crash with the default action, as a real program would. */
static int child_segfault(void *arg, size_t len)
{
    (void)arg;
    (void)len;
    signal(SIGSEGV, SIG_DFL);
    /* A real fault on a mapped but inaccessible page: no sanitizer claims
     * it first (a NULL store would be UBSan's). */
    volatile int *p = mmap(NULL, 4096, PROT_NONE,
                           MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    *p = 1;
    return 0;
}

static int child_abort(void *arg, size_t len)
{
    (void)arg;
    (void)len;
    signal(SIGABRT, SIG_DFL);
    abort();
}

static int child_exit99(void *arg, size_t len)
{
    (void)arg;
    (void)len;
    _exit(99);
}

static int child_fail(void *arg, size_t len)
{
    (void)arg;
    (void)len;
    return -EIO;
}

/* Checks a big argument arrived intact. */
static int child_check_pattern(void *arg, size_t len)
{
    const unsigned char *b = arg;
    for (size_t i = 0; i < len; i++)
        if (b[i] != (unsigned char)(i * 7 + 3))
            return 2;
    return len == 300000 ? 0 : 3;
}

static int run_child(cc_process_fn fn, const void *arg, size_t len,
                     cc_start_method m, int *code)
{
    cc_process_options o = {.start_method = m};
    cc_process *p;
    int rc = cc_process_new(&p, fn, arg, len, &o);
    if (rc == 0)
        rc = cc_process_start(p);
    if (rc == 0)
        rc = cc_process_join(p, CC_SEC(30));
    if (rc == 0 && cc_process_exitcode(p, code) != 1)
        rc = -1;
    cc_process_free(p);
    return rc;
}

static const cc_start_method methods[] = {CC_START_FORKSERVER,
                                          CC_START_FORK};

/* ---- tests ---------------------------------------------------------------------- */

static void test_exit_codes(void **state)
{
    (void)state;
    for (int m = 0; m < 2; m++) {
        int code = -1000, v = 7;
        assert_int_equal(run_child(child_return, &v, sizeof v, methods[m],
                                   &code), 0);
        assert_int_equal(code, 7);
        v = 0;
        assert_int_equal(run_child(child_return, &v, sizeof v, methods[m],
                                   &code), 0);
        assert_int_equal(code, 0);
        assert_int_equal(run_child(child_segfault, NULL, 0, methods[m],
                                   &code), 0);
        assert_int_equal(code, -SIGSEGV);
        assert_int_equal(run_child(child_abort, NULL, 0, methods[m], &code),
                         0);
        assert_int_equal(code, -SIGABRT);
        assert_int_equal(run_child(child_exit99, NULL, 0, methods[m], &code),
                         0);
        assert_int_equal(code, 99);
        assert_int_equal(run_child(child_fail, NULL, 0, methods[m], &code),
                         0);
        assert_int_equal(code, 1);
    }
}

static void test_big_argument(void **state)
{
    (void)state;
    size_t len = 300000; /* above the inline limit: goes through a memfd */
    unsigned char *buf = malloc(len);
    assert_non_null(buf);
    for (size_t i = 0; i < len; i++)
        buf[i] = (unsigned char)(i * 7 + 3);
    for (int m = 0; m < 2; m++) {
        int code = -1;
        assert_int_equal(run_child(child_check_pattern, buf, len, methods[m],
                                   &code), 0);
        assert_int_equal(code, 0);
    }
    free(buf);
}

static int child_read_pointer(void *arg, size_t len)
{
    (void)len;
    return *(int *)arg;
}

static void test_fork_passes_pointers(void **state)
{
    (void)state;
    int *v = malloc(sizeof *v);
    assert_non_null(v);
    *v = 42;
    int code = -1;
    assert_int_equal(run_child(child_read_pointer, v, 0, CC_START_FORK,
                               &code), 0);
    assert_int_equal(code, 42);
    free(v);
}

static void test_state_and_pid(void **state)
{
    (void)state;
    for (int m = 0; m < 2; m++) {
        cc_process_options o = {.name = "sleeper", .start_method = methods[m]};
        cc_process *p;
        assert_int_equal(cc_process_new(&p, child_sleep_forever, NULL, 0, &o),
                         0);
        assert_string_equal(cc_process_name(p), "sleeper");
        assert_int_equal(cc_process_start_method(p), methods[m]);
        assert_int_equal(cc_process_pid(p), 0);
        assert_false(cc_process_is_alive(p));
        int code;
        assert_int_equal(cc_process_exitcode(p, &code), 0);
        assert_int_equal(cc_process_join(p, 0), -EINVAL);
        assert_int_equal(cc_process_terminate(p), -EINVAL);
        assert_int_equal(cc_process_pidfd(p), -EINVAL);
        assert_int_equal(cc_process_start(p), 0);
        assert_int_equal(cc_process_start(p), -EALREADY);
        assert_true(cc_process_pid(p) > 0);
        assert_true(cc_process_is_alive(p));
        assert_int_equal(cc_process_exitcode(p, &code), 0);
        assert_true(cc_process_active_count() >= 1);

        int64_t t0 = cc_monotonic_ns();
        assert_int_equal(cc_process_join(p, CC_MSEC(200)), -ETIMEDOUT);
        double waited = cct_seconds_since(t0);
        assert_true(waited >= 0.15 && waited < 5);
        assert_int_equal(cc_process_join(p, CC_NOWAIT), -ETIMEDOUT);
        assert_true(cc_process_is_alive(p));

        assert_int_equal(cc_process_terminate(p), 0);
        assert_int_equal(cc_process_join(p, CC_SEC(10)), 0);
        assert_false(cc_process_is_alive(p));
        assert_int_equal(cc_process_exitcode(p, &code), 1);
        assert_int_equal(code, -SIGTERM);
        assert_int_equal(cc_process_join(p, CC_FOREVER), 0);
        assert_int_equal(cc_process_kill(p), 0); /* exited: nothing */
        cc_process_free(p);

        assert_int_equal(cc_process_new(&p, child_sleep_forever, NULL, 0, &o),
                         0);
        assert_int_equal(cc_process_start(p), 0);
        assert_int_equal(cc_process_kill(p), 0);
        assert_int_equal(cc_process_join(p, CC_SEC(10)), 0);
        assert_int_equal(cc_process_exitcode(p, &code), 1);
        assert_int_equal(code, -SIGKILL);
        cc_process_free(p);
    }
}

static void test_sentinel_pollable(void **state)
{
    (void)state;
    for (int m = 0; m < 2; m++) {
        int v = 5;
        cc_process_options o = {.start_method = methods[m]};
        cc_process *p;
        assert_int_equal(cc_process_new(&p, child_return, &v, sizeof v, &o),
                         0);
        assert_int_equal(cc_process_start(p), 0);
        struct pollfd fds[2] = {
            {.fd = cc_process_sentinel(p), .events = POLLIN},
            {.fd = cc_process_pidfd(p), .events = POLLIN},
        };
        assert_true(fds[0].fd >= 0 && fds[1].fd >= 0);
        assert_int_equal(poll(&fds[0], 1, 10000), 1);
        assert_int_equal(poll(&fds[1], 1, 10000), 1);
        int code;
        assert_int_equal(cc_process_exitcode(p, &code), 1);
        assert_int_equal(code, 5);
        cc_process_free(p);
    }
}

/* Writes its pass_fds view into the pipe it was given: how many fds it
 * has open (the /proc listing's own excepted) and whether fd 0-2 exist. */
static int child_report_fds(void *arg, size_t len)
{
    int out;
    memcpy(&out, arg, sizeof out);
    (void)len;
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return 2;
    int n = -1; /* the directory's own fd */
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        n += e->d_name[0] != '.';
    closedir(d);
    char msg[64];
    int k = snprintf(msg, sizeof msg, "fds=%d", n);
    return write(out, msg, (size_t)k) == k ? 0 : 3;
}

static void test_pass_fds_only(void **state)
{
    (void)state;
    for (int m = 0; m < 2; m++) {
        int pfd[2], extra[2];
        assert_int_equal(pipe(pfd), 0);
        /* Descriptors that must not reach the child, inheritable or not. */
        assert_int_equal(pipe(extra), 0);
        int cloexec = open("/dev/null", O_RDONLY | O_CLOEXEC);
        assert_true(cloexec >= 0);
        cc_process_options o = {.start_method = methods[m],
                                .pass_fds = &pfd[1],
                                .n_pass_fds = 1};
        cc_process *p;
        assert_int_equal(cc_process_new(&p, child_report_fds, &pfd[1],
                                        sizeof pfd[1], &o),
                         0);
        assert_int_equal(cc_process_start(p), 0);
        close(pfd[1]);
        char buf[64] = {0};
        ssize_t n = read(pfd[0], buf, sizeof buf - 1);
        assert_true(n > 0);
        /* 0, 1, 2 and the pipe: nothing else. */
        assert_string_equal(buf, "fds=4");
        assert_int_equal(cc_process_join(p, CC_SEC(10)), 0);
        int code;
        assert_int_equal(cc_process_exitcode(p, &code), 1);
        assert_int_equal(code, 0);
        cc_process_free(p);
        close(pfd[0]);
        close(extra[0]);
        close(extra[1]);
        close(cloexec);
    }
}

static void test_bad_arguments(void **state)
{
    (void)state;
    cc_process *p;
    int x = 1;
    assert_int_equal(cc_process_new(NULL, child_return, NULL, 0, NULL),
                     -EINVAL);
    assert_int_equal(cc_process_new(&p, NULL, NULL, 0, NULL), -EINVAL);
    cc_process_options fs = {.start_method = CC_START_FORKSERVER};
    /* A bare pointer means nothing in a fork-server child. */
    assert_int_equal(cc_process_new(&p, child_return, &x, 0, &fs), -EINVAL);
    assert_int_equal(cc_process_new(&p, child_return, NULL, 4, &fs), -EINVAL);
    cc_process_options bad = {.start_method = (cc_start_method)7};
    assert_int_equal(cc_process_new(&p, child_return, NULL, 0, &bad),
                     -EINVAL);
    int low = 2, dup2fds[2] = {5, 5};
    cc_process_options o1 = {.pass_fds = &low, .n_pass_fds = 1};
    assert_int_equal(cc_process_new(&p, child_return, NULL, 0, &o1), -EINVAL);
    cc_process_options o2 = {.pass_fds = dup2fds, .n_pass_fds = 2};
    assert_int_equal(cc_process_new(&p, child_return, NULL, 0, &o2), -EINVAL);
    cc_process_options o3 = {.pass_fds = NULL, .n_pass_fds = 1};
    assert_int_equal(cc_process_new(&p, child_return, NULL, 0, &o3), -EINVAL);
    /* A closed descriptor is refused at start; the object stays NEW. */
    for (int m = 0; m < 2; m++) {
        int closed = 900;
        cc_process_options o4 = {.start_method = methods[m],
                                 .pass_fds = &closed,
                                 .n_pass_fds = 1};
        assert_int_equal(cc_process_new(&p, child_return, NULL, 0, &o4), 0);
        assert_int_equal(cc_process_start(p), -EBADF);
        assert_int_equal(cc_process_pid(p), 0);
        cc_process_free(p);
    }
    assert_int_equal(cc_process_join(NULL, 0), -EINVAL);
    assert_int_equal(cc_process_kill(NULL), -EINVAL);
    assert_int_equal(cc_process_start(NULL), -EINVAL);
    assert_int_equal(cc_process_set_start_method(CC_START_DEFAULT), -EINVAL);
    assert_int_equal(cc_process_get_start_method(), CC_START_FORKSERVER);
    assert_string_equal(cc_start_method_name(CC_START_FORK), "fork");
    assert_false(cc_process_is_alive(NULL));
    cc_process_free(NULL);
}

static void test_free_kills_running_child(void **state)
{
    (void)state;
    for (int m = 0; m < 2; m++) {
        cc_process_options o = {.start_method = methods[m]};
        cc_process *p;
        assert_int_equal(cc_process_new(&p, child_sleep_forever, NULL, 0, &o),
                         0);
        assert_int_equal(cc_process_start(p), 0);
        pid_t pid = (pid_t)cc_process_pid(p);
        cc_process_free(p);
        assert_true(cct_pid_gone(pid));
    }
}

/* ---- the parent dying --------------------------------------------------------- */

struct middle_arg {
    int out; /* pipe to report the grandchild's pid */
    cc_start_method grandchild_method;
};

/* A middle process: starts a grandchild that sleeps forever, reports its
 * pid, then sleeps until killed. */
static int middle_main(void *arg, size_t len)
{
    struct middle_arg a;
    memcpy(&a, arg, sizeof a);
    (void)len;
    cc_process_options o = {.start_method = a.grandchild_method};
    cc_process *p;
    if (cc_process_new(&p, child_sleep_forever, NULL, 0, &o) != 0 ||
        cc_process_start(p) != 0)
        return 2;
    int32_t pids[2] = {(int32_t)cc_process_pid(p),
                       (int32_t)cci_forkserver_pid()};
    if (write(a.out, pids, sizeof pids) != (ssize_t)sizeof pids)
        return 3;
    for (;;)
        pause();
    return 0;
}

static void test_parent_killed_no_survivor(void **state)
{
    (void)state;
    for (int gm = 0; gm < 2; gm++) {
        for (int mm = 0; mm < 2; mm++) {
            int pfd[2];
            assert_int_equal(pipe(pfd), 0);
            struct middle_arg a = {pfd[1], methods[gm]};
            cc_process_options o = {.start_method = methods[mm],
                                    .pass_fds = &pfd[1],
                                    .n_pass_fds = 1};
            cc_process *mid;
            assert_int_equal(cc_process_new(&mid, middle_main, &a, sizeof a,
                                            &o),
                             0);
            assert_int_equal(cc_process_start(mid), 0);
            close(pfd[1]);
            int32_t pids[2];
            assert_int_equal(read(pfd[0], pids, sizeof pids), sizeof pids);
            close(pfd[0]);
            pid_t grandchild = pids[0], launcher = pids[1];
            assert_true(grandchild > 0);
            assert_false(cct_pid_gone(grandchild));
            assert_int_equal(cc_process_kill(mid), 0);
            assert_int_equal(cc_process_join(mid, CC_SEC(10)), 0);
            cc_process_free(mid);
            assert_true(cct_wait_until(cct_pid_gone_pred, &grandchild,
                                       CC_SEC(10)));
            if (launcher > 0)
                assert_true(cct_wait_until(cct_pid_gone_pred, &launcher,
                                           CC_SEC(10)));
        }
    }
}

/* ---- exit handler ------------------------------------------------------------- */

static int child_sleep_then_exit(void *arg, size_t len)
{
    (void)arg;
    (void)len;
    cc_sleep(CC_MSEC(300));
    return 0;
}

/* Starts a daemon child that would run forever and a non-daemon one that
 * takes 0.3 s, reports both pids, then exit()s: the exit handler must kill
 * the first and wait for the second. */
static int exiting_main(void *arg, size_t len)
{
    int out;
    memcpy(&out, arg, sizeof out);
    (void)len;
    cc_process_options od = {.daemon = true};
    cc_process *d, *n;
    if (cc_process_new(&d, child_sleep_forever, NULL, 0, &od) != 0 ||
        cc_process_start(d) != 0 ||
        cc_process_new(&n, child_sleep_then_exit, NULL, 0, NULL) != 0 ||
        cc_process_start(n) != 0)
        return 2;
    int32_t pids[2] = {(int32_t)cc_process_pid(d), (int32_t)cc_process_pid(n)};
    if (write(out, pids, sizeof pids) != (ssize_t)sizeof pids)
        return 3;
    exit(0);
}

static void test_exit_terminates_daemons_joins_others(void **state)
{
    (void)state;
    int pfd[2];
    assert_int_equal(pipe(pfd), 0);
    cc_process_options o = {.start_method = CC_START_FORK,
                            .pass_fds = &pfd[1],
                            .n_pass_fds = 1};
    cc_process *p;
    assert_int_equal(cc_process_new(&p, exiting_main, &pfd[1], sizeof pfd[1],
                                    &o),
                     0);
    int64_t t0 = cc_monotonic_ns();
    assert_int_equal(cc_process_start(p), 0);
    close(pfd[1]);
    int32_t pids[2];
    assert_int_equal(read(pfd[0], pids, sizeof pids), sizeof pids);
    close(pfd[0]);
    assert_int_equal(cc_process_join(p, CC_SEC(20)), 0);
    double took = cct_seconds_since(t0);
    int code;
    assert_int_equal(cc_process_exitcode(p, &code), 1);
    assert_int_equal(code, 0);
    assert_true(took >= 0.2); /* it waited for the non-daemon child */
    cc_process_free(p);
    pid_t d = pids[0], n = pids[1];
    assert_true(cct_wait_until(cct_pid_gone_pred, &d, CC_SEC(10)));
    assert_true(cct_wait_until(cct_pid_gone_pred, &n, CC_SEC(10)));
}

/* ---- the launcher dying ---------------------------------------------------------- */

static void test_launcher_killed(void **state)
{
    (void)state;
    cc_process *p;
    assert_int_equal(cc_process_new(&p, child_sleep_forever, NULL, 0, NULL),
                     0);
    assert_int_equal(cc_process_start(p), 0);
    pid_t launcher = cci_forkserver_pid();
    assert_true(launcher > 0);
    assert_int_equal(kill(launcher, SIGKILL), 0);
    /* Its child dies with it and is reported as killed. */
    assert_int_equal(cc_process_join(p, CC_SEC(10)), 0);
    int code;
    assert_int_equal(cc_process_exitcode(p, &code), 1);
    assert_int_equal(code, -SIGKILL);
    cc_process_free(p);
    /* The next start brings a new launcher. */
    int v = 3;
    assert_int_equal(run_child(child_return, &v, sizeof v,
                               CC_START_FORKSERVER, &code),
                     0);
    assert_int_equal(code, 3);
    assert_true(cci_forkserver_pid() != launcher);
}

/* ---- many at once ------------------------------------------------------------------ */

static int starter(void *ctx)
{
    intptr_t base = (intptr_t)ctx;
    for (int i = 0; i < 8; i++) {
        int v = (int)(base + i), code = -1;
        if (run_child(child_return, &v, sizeof v,
                      methods[(base + i) % 2], &code) != 0 || code != v)
            return -EIO;
    }
    return 0;
}

static void test_threads_start_concurrently(void **state)
{
    (void)state;
    cc_thread *t[4];
    for (int i = 0; i < 4; i++) {
        assert_int_equal(cc_thread_new(&t[i], starter, (void *)(intptr_t)(i * 10),
                                       NULL),
                         0);
        assert_int_equal(cc_thread_start(t[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        int status = -1;
        assert_int_equal(cc_thread_join(t[i], CC_SEC(60)), 0);
        assert_int_equal(cc_thread_status(t[i], &status), 0);
        assert_int_equal(status, 0);
        cc_thread_unref(t[i]);
    }
}

/* ==== IPC ============================================================== */

/* Echoes every message back until the other end closes. */
static int child_echo(void *arg, size_t len)
{
    int fd;
    memcpy(&fd, arg, sizeof fd);
    (void)len;
    cc_conn *c;
    if (cc_conn_from_fd(&c, fd) != 0)
        return 2;
    int rc = 0;
    for (;;) {
        void *data;
        size_t n;
        int r = cc_conn_recv(c, &data, &n, CC_SEC(30));
        if (r == -EPIPE)
            break;
        if (r != 0) {
            rc = 3;
            break;
        }
        r = cc_conn_send(c, data, n);
        free(data);
        if (r != 0) {
            rc = 4;
            break;
        }
    }
    cc_conn_free(c);
    return rc;
}

static void test_pipe_messages_echoed(void **state)
{
    (void)state;
    static const size_t sizes[] = {0, 1, 15, 16, 17, 4096, 100000, 5 << 20};
    for (int m = 0; m < 2; m++) {
        cc_conn *a, *b;
        assert_int_equal(cc_pipe_new(&a, &b, true), 0);
        int fd = cc_conn_fd(b);
        cc_process_options o = {.start_method = methods[m],
                                .pass_fds = &fd,
                                .n_pass_fds = 1};
        cc_process *p;
        assert_int_equal(cc_process_new(&p, child_echo, &fd, sizeof fd, &o),
                         0);
        assert_int_equal(cc_process_start(p), 0);
        cc_conn_free(b);
        for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
            size_t n = sizes[i];
            unsigned char *buf = malloc(n ? n : 1);
            assert_non_null(buf);
            for (size_t k = 0; k < n; k++)
                buf[k] = (unsigned char)(k * 31 + i);
            assert_int_equal(cc_conn_send(a, buf, n), 0);
            void *back;
            size_t blen = 99;
            assert_int_equal(cc_conn_recv(a, &back, &blen, CC_SEC(30)), 0);
            assert_int_equal(blen, n);
            if (n)
                assert_memory_equal(back, buf, n);
            free(back);
            free(buf);
        }
        cc_conn_free(a); /* the child sees end of file and exits 0 */
        assert_int_equal(cc_process_join(p, CC_SEC(30)), 0);
        int code;
        assert_int_equal(cc_process_exitcode(p, &code), 1);
        assert_int_equal(code, 0);
        cc_process_free(p);
    }
}

static void test_pipe_one_way_timeout_eof(void **state)
{
    (void)state;
    cc_conn *r, *w;
    assert_int_equal(cc_pipe_new(&r, &w, false), 0);
    assert_int_equal(cc_conn_send(r, "x", 1), -EPIPE); /* read-only end */
    void *data;
    size_t n;
    int64_t t0 = cc_monotonic_ns();
    assert_int_equal(cc_conn_recv(r, &data, &n, CC_MSEC(100)), -ETIMEDOUT);
    assert_true(cct_seconds_since(t0) >= 0.08);
    assert_int_equal(cc_conn_recv(r, &data, &n, CC_NOWAIT), -ETIMEDOUT);
    assert_int_equal(cc_conn_poll(r, 0), 0);
    assert_int_equal(cc_conn_send(w, "hello", 5), 0);
    assert_int_equal(cc_conn_poll(r, CC_SEC(5)), 1);
    assert_int_equal(cc_conn_recv(r, &data, &n, CC_NOWAIT), 0);
    assert_int_equal(n, 5);
    assert_memory_equal(data, "hello", 5);
    free(data);
    cc_conn_free(w);
    assert_int_equal(cc_conn_recv(r, &data, &n, CC_SEC(5)), -EPIPE);
    cc_conn_free(r);
    /* Bad arguments. */
    assert_int_equal(cc_pipe_new(NULL, &w, true), -EINVAL);
    assert_int_equal(cc_conn_send(NULL, "x", 1), -EINVAL);
    assert_int_equal(cc_conn_recv(NULL, &data, &n, 0), -EINVAL);
    assert_int_equal(cc_conn_from_fd(&r, -1), -EINVAL);
    assert_int_equal(cc_conn_from_fd(&r, 0) == -ENOTSOCK ||
                         cc_conn_from_fd(&r, 0) == -EBADF,
                     1);
}

/* Raw bytes written straight into the socket, as a broken or hostile
 * peer would. */
static void test_pipe_malformed_rejected(void **state)
{
    (void)state;
    void *data;
    size_t n;
    cc_conn *a, *b;
    /* Bad magic. */
    assert_int_equal(cc_pipe_new(&a, &b, true), 0);
    assert_int_equal(write(cc_conn_fd(b), "GARBAGE GARBAGE!", 16), 16);
    assert_int_equal(cc_conn_recv(a, &data, &n, CC_SEC(5)), -EPROTO);
    assert_int_equal(cc_conn_recv(a, &data, &n, CC_SEC(5)), -EPROTO);
    cc_conn_free(a);
    cc_conn_free(b);
    /* Oversized: refused before anything is allocated. */
    assert_int_equal(cc_pipe_new(&a, &b, true), 0);
    assert_int_equal(cc_conn_set_max_message(a, 1000), 0);
    assert_int_equal(cc_conn_send(b, NULL, 0), 0);
    assert_int_equal(cc_conn_recv(a, &data, &n, CC_SEC(5)), 0);
    assert_null(data);
    unsigned char big[1001] = {0};
    assert_int_equal(cc_conn_send(b, big, sizeof big), 0);
    assert_int_equal(cc_conn_recv(a, &data, &n, CC_SEC(5)), -EMSGSIZE);
    cc_conn_free(a);
    cc_conn_free(b);
    /* A header claiming 2^63 bytes. */
    assert_int_equal(cc_pipe_new(&a, &b, true), 0);
    unsigned char hdr[16] = {'C', 'C', 'M', '1', 0, 0, 0, 0,
                             0, 0, 0, 0, 0, 0, 0, 0x80};
    assert_int_equal(write(cc_conn_fd(b), hdr, 16), 16);
    assert_int_equal(cc_conn_recv(a, &data, &n, CC_SEC(5)), -EMSGSIZE);
    cc_conn_free(a);
    cc_conn_free(b);
    /* Truncated: the header promises 100 bytes, the peer sends 10 and
     * closes. A timeout half-way first loses nothing. */
    assert_int_equal(cc_pipe_new(&a, &b, true), 0);
    unsigned char part[16 + 10] = {'C', 'C', 'M', '1', 0, 0, 0, 0, 100};
    assert_int_equal(write(cc_conn_fd(b), part, 7), 7);
    assert_int_equal(cc_conn_recv(a, &data, &n, CC_MSEC(20)), -ETIMEDOUT);
    assert_int_equal(write(cc_conn_fd(b), part + 7, sizeof part - 7),
                     (ssize_t)sizeof part - 7);
    assert_int_equal(cc_conn_recv(a, &data, &n, CC_MSEC(20)), -ETIMEDOUT);
    cc_conn_free(b);
    assert_int_equal(cc_conn_recv(a, &data, &n, CC_SEC(5)), -EPIPE);
    cc_conn_free(a);
}

struct shm_arg {
    int fd;
    char name[CC_SHM_NAME_MAX];
};

static int child_fill_shm(void *arg, size_t len)
{
    struct shm_arg a;
    memcpy(&a, arg, sizeof a);
    (void)len;
    cc_shm *s;
    int rc = a.name[0] ? cc_shm_open(&s, a.name) : cc_shm_from_fd(&s, a.fd);
    if (rc != 0)
        return 2;
    memset(cc_shm_data(s), 0x5a, cc_shm_size(s));
    cc_shm_free(s);
    return 0;
}

static void test_shared_memory_segments(void **state)
{
    (void)state;
    for (int named = 0; named < 2; named++) {
        cc_shm *s;
        struct shm_arg a = {.fd = -1};
        if (named) {
            assert_int_equal(cc_shm_create(&s, 10000, a.name, sizeof a.name),
                             0);
            assert_int_equal(strncmp(a.name, "/concur-", 8), 0);
            assert_int_equal(strlen(a.name), 40);
            assert_string_equal(cc_shm_name(s), a.name);
            struct stat st;
            assert_int_equal(fstat(cc_shm_fd(s), &st), 0);
            assert_int_equal(st.st_mode & 0777, 0600);
        } else {
            assert_int_equal(cc_shm_new(&s, 10000), 0);
            assert_null(cc_shm_name(s));
            a.fd = cc_shm_fd(s);
        }
        assert_int_equal(cc_shm_size(s), 10000);
        unsigned char *d = cc_shm_data(s);
        assert_int_equal(d[0] | d[9999], 0);
        cc_process_options o = {.pass_fds = &a.fd, .n_pass_fds = !named};
        int code = -1;
        cc_process *p;
        assert_int_equal(cc_process_new(&p, child_fill_shm, &a, sizeof a, &o),
                         0);
        assert_int_equal(cc_process_start(p), 0);
        assert_int_equal(cc_process_join(p, CC_SEC(30)), 0);
        assert_int_equal(cc_process_exitcode(p, &code), 1);
        assert_int_equal(code, 0);
        cc_process_free(p);
        assert_int_equal(d[0], 0x5a);
        assert_int_equal(d[9999], 0x5a);
        cc_shm_free(s);
        if (named) {
            /* Unlinked by its creator's free. */
            cc_shm *again;
            assert_int_equal(cc_shm_open(&again, a.name), -ENOENT);
        }
    }
    cc_shm *s;
    char name[CC_SHM_NAME_MAX];
    assert_int_equal(cc_shm_open(&s, "/etc-passwd"), -EINVAL);
    assert_int_equal(cc_shm_open(&s, "/concur-../../x"), -EINVAL);
    assert_int_equal(cc_shm_new(&s, 0), -EINVAL);
    assert_int_equal(cc_shm_create(&s, 10, name, 4), -EINVAL);
    assert_int_equal(cc_shm_create(&s, 10, name, sizeof name), 0);
    assert_int_equal(cc_shm_unlink(s), 0);
    assert_int_equal(cc_shm_unlink(s), 0);
    cc_shm_free(s);
}

static int child_add_counter(void *arg, size_t len)
{
    int fd;
    memcpy(&fd, arg, sizeof fd);
    (void)len;
    cc_shared *v;
    if (cc_shared_from_fd(&v, fd) != 0)
        return 2;
    for (int i = 0; i < 2000; i++)
        if (cc_shared_add_i64(v, 0, 1, NULL) != 0)
            return 3;
    cc_shared_free(v);
    return 0;
}

static void test_shared_value_counter(void **state)
{
    (void)state;
    cc_shared *v;
    assert_int_equal(cc_shared_value_new(&v, CC_TYPE_INT64), 0);
    int fd = cc_shared_fd(v);
    cc_process *p[4];
    for (int i = 0; i < 4; i++) {
        cc_process_options o = {.start_method = methods[i % 2],
                                .pass_fds = &fd,
                                .n_pass_fds = 1};
        assert_int_equal(cc_process_new(&p[i], child_add_counter, &fd,
                                        sizeof fd, &o),
                         0);
        assert_int_equal(cc_process_start(p[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        int code = -1;
        assert_int_equal(cc_process_join(p[i], CC_SEC(60)), 0);
        assert_int_equal(cc_process_exitcode(p[i], &code), 1);
        assert_int_equal(code, 0);
        cc_process_free(p[i]);
    }
    int64_t total;
    assert_int_equal(cc_shared_get_i64(v, 0, &total), 0);
    assert_int_equal(total, 8000);
    assert_int_equal(cc_shared_get_i64(v, 1, &total), -EINVAL);
    cc_shared_free(v);

    cc_shared *arr;
    assert_int_equal(cc_shared_array_new(&arr, CC_TYPE_DOUBLE, 10), 0);
    assert_int_equal(cc_shared_length(arr), 10);
    assert_int_equal(cc_shared_type(arr), CC_TYPE_DOUBLE);
    assert_int_equal(cc_shared_set_double(arr, 9, 2.5), 0);
    double d;
    assert_int_equal(cc_shared_get_double(arr, 9, &d), 0);
    assert_true(d == 2.5);
    assert_true(((double *)cc_shared_data(arr))[9] == 2.5);
    assert_int_equal(cc_shared_set_double(arr, 0, 1e300), 0);
    int64_t i64;
    assert_int_equal(cc_shared_get_i64(arr, 0, &i64), 0);
    assert_true(i64 == INT64_MAX); /* saturated, not undefined */
    assert_non_null(cc_shared_lock(arr));
    cc_shared_free(arr);

    cc_shared *u8;
    assert_int_equal(cc_shared_array_new(&u8, CC_TYPE_UINT8, 3), 0);
    assert_int_equal(cc_shared_set_i64(u8, 2, 300), 0);
    assert_int_equal(cc_shared_get_i64(u8, 2, &i64), 0);
    assert_int_equal(i64, 300 & 0xff);
    cc_shared_free(u8);

    assert_int_equal(cc_shared_array_new(&u8, (cc_ctype)99, 3), -EINVAL);
    assert_int_equal(cc_shared_array_new(&u8, CC_TYPE_INT8, 0), -EINVAL);
    /* A segment that is not an array is refused, and fd stays ours. */
    cc_shm *junk;
    assert_int_equal(cc_shm_new(&junk, 4096), 0);
    memset(cc_shm_data(junk), 0xff, 4096);
    assert_int_equal(cc_shared_from_fd(&u8, cc_shm_fd(junk)), -EPROTO);
    cc_process_queue *q;
    assert_int_equal(cc_process_queue_from_fd(&q, cc_shm_fd(junk)), -EPROTO);
    cc_shm_free(junk);
}

struct producer_arg {
    int fd;
    int id;
    int count;
};

static int child_producer(void *arg, size_t len)
{
    struct producer_arg a;
    memcpy(&a, arg, sizeof a);
    (void)len;
    cc_process_queue *q;
    if (cc_process_queue_from_fd(&q, a.fd) != 0)
        return 2;
    for (int i = 0; i < a.count; i++) {
        /* Items of varying size, so records wrap around the ring. */
        char item[200];
        int n = snprintf(item, sizeof item, "%d:%d:", a.id, i);
        memset(item + n, 'x', (size_t)(i % 100));
        if (cc_process_queue_put(q, item, (size_t)n + (size_t)(i % 100),
                                 CC_SEC(30)) != 0)
            return 3;
    }
    cc_process_queue_free(q);
    return 0;
}

static void test_process_queue_producers(void **state)
{
    (void)state;
    cc_process_queue *q;
    /* Small: producers block on a full queue often. */
    assert_int_equal(cc_process_queue_new(&q, 8, 1024), 0);
    int fd = cc_process_queue_fd(q);
    enum { P = 3, N = 300 };
    cc_process *p[P];
    for (int i = 0; i < P; i++) {
        struct producer_arg a = {fd, i, N};
        cc_process_options o = {.start_method = methods[i % 2],
                                .pass_fds = &fd,
                                .n_pass_fds = 1};
        assert_int_equal(cc_process_new(&p[i], child_producer, &a, sizeof a,
                                        &o),
                         0);
        assert_int_equal(cc_process_start(p[i]), 0);
    }
    int next[P] = {0};
    for (int k = 0; k < P * N; k++) {
        void *data;
        size_t n;
        assert_int_equal(cc_process_queue_get(q, &data, &n, CC_SEC(30)), 0);
        int id, i, used;
        char *text = malloc(n + 1);
        memcpy(text, data, n);
        text[n] = 0;
        assert_int_equal(sscanf(text, "%d:%d:%n", &id, &i, &used), 2);
        assert_true(id >= 0 && id < P);
        assert_int_equal(i, next[id]); /* FIFO per producer */
        next[id]++;
        assert_int_equal(n, (size_t)used + (size_t)(i % 100));
        free(text);
        free(data);
        assert_int_equal(cc_process_queue_task_done(q), 0);
    }
    for (int i = 0; i < P; i++) {
        int code = -1;
        assert_int_equal(cc_process_join(p[i], CC_SEC(30)), 0);
        assert_int_equal(cc_process_exitcode(p[i], &code), 1);
        assert_int_equal(code, 0);
        cc_process_free(p[i]);
    }
    assert_int_equal(cc_process_queue_join(q, 0), 0);
    assert_true(cc_process_queue_empty(q));
    cc_process_queue_free(q);
}

static void test_process_queue_limits(void **state)
{
    (void)state;
    cc_process_queue *q;
    assert_int_equal(cc_process_queue_new(&q, 2, 128), 0);
    assert_int_equal(cc_process_queue_put(q, "a", 1, CC_NOWAIT), 0);
    assert_int_equal(cc_process_queue_put(q, "b", 1, CC_NOWAIT), 0);
    assert_int_equal(cc_process_queue_put(q, "c", 1, CC_NOWAIT), CC_EFULL);
    int64_t t0 = cc_monotonic_ns();
    assert_int_equal(cc_process_queue_put(q, "c", 1, CC_MSEC(100)), CC_EFULL);
    assert_true(cct_seconds_since(t0) >= 0.08);
    assert_int_equal(cc_process_queue_size(q), 2);
    char big[200] = {0};
    assert_int_equal(cc_process_queue_put(q, big, sizeof big, 0), -EMSGSIZE);
    assert_int_equal(cc_process_queue_join(q, CC_MSEC(50)), -ETIMEDOUT);
    void *data;
    size_t n;
    for (int i = 0; i < 2; i++) {
        assert_int_equal(cc_process_queue_get(q, &data, &n, 0), 0);
        assert_int_equal(n, 1);
        assert_int_equal(*(char *)data, 'a' + i);
        free(data);
        assert_int_equal(cc_process_queue_task_done(q), 0);
    }
    assert_int_equal(cc_process_queue_task_done(q), -EINVAL);
    assert_int_equal(cc_process_queue_get(q, &data, &n, CC_NOWAIT), CC_EEMPTY);
    assert_int_equal(cc_process_queue_get(q, &data, &n, CC_MSEC(50)),
                     CC_EEMPTY);
    assert_int_equal(cc_process_queue_join(q, 0), 0);
    /* Empty items are items. */
    assert_int_equal(cc_process_queue_put(q, NULL, 0, 0), 0);
    assert_int_equal(cc_process_queue_get(q, &data, &n, 0), 0);
    assert_int_equal(n, 0);
    assert_null(data);
    assert_int_equal(cc_process_queue_new(&q, 0, 10) , -EINVAL);
    assert_int_equal(cc_process_queue_put(NULL, "a", 1, 0), -EINVAL);
    /* A corrupt record (another process scribbling over the ring) is
     * detected, not followed. The ring is the segment's last 128 bytes. */
    assert_int_equal(cc_process_queue_put(q, "abc", 3, 0), 0);
    cc_shm *view;
    int dupfd = dup(cc_process_queue_fd(q));
    assert_int_equal(cc_shm_from_fd(&view, dupfd), 0);
    memset((char *)cc_shm_data(view) + cc_shm_size(view) - 128, 0xff, 128);
    assert_int_equal(cc_process_queue_get(q, &data, &n, 0), -EPROTO);
    cc_shm_free(view);
    cc_process_queue_free(q);
}

int main(void)
{
    /* Before any thread: the launcher is a single-threaded copy. */
    if (cc_process_init() != 0) {
        fprintf(stderr, "cc_process_init failed\n");
        return 1;
    }
    const struct CMUnitTest tests[] = {
        PT(test_exit_codes),
        PT(test_big_argument),
        PT(test_fork_passes_pointers),
        PT(test_state_and_pid),
        PT(test_sentinel_pollable),
        PT(test_pass_fds_only),
        PT(test_bad_arguments),
        PT(test_free_kills_running_child),
        PT(test_parent_killed_no_survivor),
        PT(test_exit_terminates_daemons_joins_others),
        PT(test_launcher_killed),
        PT(test_threads_start_concurrently),
        PT(test_pipe_messages_echoed),
        PT(test_pipe_one_way_timeout_eof),
        PT(test_pipe_malformed_rejected),
        PT(test_shared_memory_segments),
        PT(test_shared_value_counter),
        PT(test_process_queue_producers),
        PT(test_process_queue_limits),
    };
    return CCT_RUN(tests);
}
