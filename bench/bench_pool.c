/*
 * The pool suite: concur's thread pool (submit, fork-join task groups,
 * parallel map) against what a C programmer would otherwise use: a
 * hand-written mutex + condition variable pool (baseline_pool.c), Python's
 * concurrent.futures.ThreadPoolExecutor, OpenMP tasks (baseline_omp.c) and,
 * where installed, GLib's GThreadPool (baseline_glib.c).
 *
 * Which cases exist is decided when the suite is built: the OpenMP cases
 * need OpenMP, pool_vs_python needs python3 and pool_empty_tasks_glib needs
 * glib-2.0 at configure time (CONCUR_BENCH_HAVE_OPENMP, CONCUR_BENCH_PYTHON,
 * CONCUR_BENCH_HAVE_GLIB); setup names on stderr the ones left out.
 *
 * Every timed run starts from a quiet process: it first waits (untimed)
 * until every other thread sleeps, so that workers still spinning after the
 * previous run (concur's searching workers, libgomp's team) do not steal a
 * CPU from the run being timed.
 */
#include "bench.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "baseline_pool.h"
#include "concur/error.h"
#include "concur/executor.h"
#include "concur/future.h"
#include "concur/sync.h"
#ifdef CONCUR_BENCH_HAVE_OPENMP
#include "baseline_omp.h"
#endif
#ifdef CONCUR_BENCH_HAVE_GLIB
#include "baseline_glib.h"
#endif

/* fork-join: fib(FIB_N) spawns one task per call with n >= 2, that is
 * fib(FIB_N + 1) - 1 tasks (checked in setup). */
#define FIB_N 30
#define FIB_TASKS UINT64_C(1346268)
#define FIB_RESULT 832040

/* parallel_map_cpu: MAP_ITEMS elements of about MAP_ITEM_NS of integer work
 * each, on a pool of 2 workers. */
#define MAP_ITEMS 64
#define MAP_ITEM_NS 2000000

/* pool_memory_per_task: pending tasks behind a blocked worker. */
#define MEMORY_TASKS 1000000

typedef struct pool_state {
    unsigned workers;        /* of `pool` and `baseline` */
    cc_executor *pool;       /* throughput, latency, Python */
    baseline_pool *baseline; /* the same number of workers */
    cc_executor *pool1;      /* 1 worker: forkjoin_fib_1t */
    cc_executor *pool2;      /* 2 workers: forkjoin_fib_2t, parallel map */
    uint64_t work_rounds;    /* rounds of integer_work in MAP_ITEM_NS */
    uint64_t map_checksum;   /* of one map, 0 until the first one ran */
    double memory[2];        /* bytes per pending task: concur, baseline;
                                0 until measured */
#ifdef CONCUR_BENCH_HAVE_GLIB
    baseline_glib *glib;
#endif
} pool_state;

/* ---- a quiet process ----------------------------------------------------- */

/* True when no other thread of this process is running or runnable (state
 * R in /proc/self/task/TID/stat); true as well if that cannot be read. */
static bool others_asleep(void)
{
    DIR *dir = opendir("/proc/self/task");
    if (!dir)
        return true;
    pid_t self = gettid();
    bool asleep = true;
    struct dirent *e;
    while (asleep && (e = readdir(dir)) != NULL) {
        if (e->d_name[0] == '.' || atoi(e->d_name) == self)
            continue;
        char path[300], buf[512];
        snprintf(path, sizeof path, "/proc/self/task/%s/stat", e->d_name);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            continue; /* it exited meanwhile */
        ssize_t n = read(fd, buf, sizeof buf - 1);
        close(fd);
        if (n <= 0)
            continue;
        buf[n] = '\0';
        /* "TID (NAME) S ...": the name may hold spaces and parentheses,
         * so the state follows the last ')'. */
        const char *p = strrchr(buf, ')');
        if (p && p[1] == ' ' && p[2] == 'R')
            asleep = false;
    }
    closedir(dir);
    return asleep;
}

/* Waits up to 200 ms for every other thread to sleep. */
static void wait_until_quiet(void)
{
    int64_t deadline = bench_now_ns() + 200 * 1000000LL;
    while (!others_asleep() && bench_now_ns() < deadline) {
        struct timespec pause = {0, 20 * 1000};
        nanosleep(&pause, NULL);
    }
}

/* ---- pool_empty_tasks ---------------------------------------------------- */

static int empty_task(void *arg, void **result)
{
    return 0;
}

static void *baseline_empty_task(void *arg)
{
    return NULL;
}

/* Room for n pointers, faulted in before the clock starts. */
static void **pointer_array(uint64_t n)
{
    void **a = malloc(n * sizeof *a);
    if (a)
        memset(a, 0, n * sizeof *a);
    return a;
}

/* Submits iters empty tasks from this thread, then waits for each future
 * and drops it: the whole life of a task, as Python's
 * [ex.submit(f) for ...] followed by [f.result() for f in fs]. */
static int64_t cc_empty_tasks(void *state, uint64_t iters)
{
    pool_state *st = state;
    cc_future **fs = (cc_future **)pointer_array(iters);
    if (!fs)
        return -ENOMEM;
    wait_until_quiet();
    int64_t t0 = bench_now_ns();
    int rc = 0;
    uint64_t n = 0;
    for (; n < iters; n++) {
        rc = cc_executor_submit(st->pool, empty_task, NULL, &fs[n]);
        if (rc < 0)
            break;
    }
    for (uint64_t i = 0; i < n; i++) {
        int r = cc_future_result(fs[i], CC_FOREVER, NULL);
        if (r < 0 && rc == 0)
            rc = r;
        cc_future_unref(fs[i]);
    }
    int64_t t = bench_now_ns() - t0;
    free(fs);
    return rc < 0 ? rc : t;
}

static int64_t baseline_empty_tasks(void *state, uint64_t iters)
{
    pool_state *st = state;
    baseline_future **fs = (baseline_future **)pointer_array(iters);
    if (!fs)
        return -ENOMEM;
    wait_until_quiet();
    int64_t t0 = bench_now_ns();
    int rc = 0;
    uint64_t n = 0;
    for (; n < iters; n++) {
        rc = baseline_pool_submit(st->baseline, baseline_empty_task, NULL,
                                  &fs[n]);
        if (rc < 0)
            break;
    }
    for (uint64_t i = 0; i < n; i++) {
        baseline_future_wait(fs[i]);
        baseline_future_free(fs[i]);
    }
    int64_t t = bench_now_ns() - t0;
    free(fs);
    return rc < 0 ? rc : t;
}

#ifdef CONCUR_BENCH_HAVE_GLIB
static int64_t glib_empty_tasks(void *state, uint64_t iters)
{
    pool_state *st = state;
    wait_until_quiet();
    return baseline_glib_empty_tasks(st->glib, iters);
}
#endif

/* ---- pool_vs_python ------------------------------------------------------ */

#ifdef CONCUR_BENCH_PYTHON
/* The same work in Python: argv is N and the number of workers; prints the
 * nanoseconds per task. The workers are started (and the imports done)
 * before the clock starts, as the C sides' pools are. */
static const char python_script[] =
    "import sys, time\n"
    "from concurrent.futures import ThreadPoolExecutor\n"
    "n, workers = int(sys.argv[1]), int(sys.argv[2])\n"
    "def task():\n"
    "    return None\n"
    "with ThreadPoolExecutor(max_workers=workers) as ex:\n"
    "    for f in [ex.submit(task) for _ in range(4 * workers)]:\n"
    "        f.result()\n"
    "    t0 = time.perf_counter_ns()\n"
    "    fs = [ex.submit(task) for _ in range(n)]\n"
    "    for f in fs:\n"
    "        f.result()\n"
    "    t1 = time.perf_counter_ns()\n"
    "print((t1 - t0) / n)\n";

/* Runs the script with n tasks; returns the nanoseconds the n tasks took
 * inside Python (start-up excluded), or a negative error code. */
static int64_t python_empty_tasks(void *state, uint64_t iters)
{
    pool_state *st = state;
    char n_arg[32], w_arg[16];
    snprintf(n_arg, sizeof n_arg, "%llu", (unsigned long long)iters);
    snprintf(w_arg, sizeof w_arg, "%u", st->workers);
    char *argv[] = {(char *)CONCUR_BENCH_PYTHON, (char *)"-c",
                    (char *)python_script, n_arg, w_arg, NULL};

    wait_until_quiet();
    char out[128];
    int status;
    int rc = bench_run_capture(argv, out, sizeof out, &status);
    if (rc < 0) {
        fprintf(stderr, "concur bench: cannot run %s\n", CONCUR_BENCH_PYTHON);
        return rc;
    }

    char *end;
    double ns = strtod(out, &end);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || end == out ||
        !(ns > 0)) {
        fprintf(stderr, "concur bench: %s: unexpected output '%s'\n",
                CONCUR_BENCH_PYTHON, out);
        return CC_EFAILED;
    }
    return (int64_t)(ns * (double)iters);
}
#endif

/* ---- forkjoin_fib -------------------------------------------------------- */

typedef struct fib_call {
    cc_executor *pool;
    int n;
    int64_t result;
} fib_call;

/* fib(n) with a task per call: spawn fib(n - 1) into a task group on the
 * stack, compute fib(n - 2) here, wait (helping). No cut-off. */
/* The fork-join figures exist only against OpenMP (left out of
 * ThreadSanitizer builds and where libgomp is missing). */
#ifdef CONCUR_BENCH_HAVE_OPENMP
static int fib_task(void *ctx)
{
    fib_call *c = ctx;
    if (c->n < 2) {
        c->result = c->n;
        return 0;
    }
    fib_call left = {c->pool, c->n - 1, 0};
    fib_call right = {c->pool, c->n - 2, 0};
    cc_task_group group;
    int rc = cc_task_group_init(&group, c->pool);
    if (rc < 0)
        return rc;
    rc = cc_task_group_spawn(&group, fib_task, &left);
    if (rc < 0)
        left.result = 0;
    int inline_rc = fib_task(&right);
    int wait_rc = cc_task_group_wait(&group);
    cc_task_group_destroy(&group);
    c->result = left.result + right.result;
    return rc < 0 ? rc : wait_rc < 0 ? wait_rc : inline_rc;
}

static int fib_root(void *arg, void **result)
{
    return fib_task(arg);
}

/*
 * iters / FIB_TASKS computations of fib(FIB_N) on pool. The root is
 * submitted to the pool and this thread blocks on its future, so exactly
 * as many threads run tasks as the pool has workers, as on the OpenMP side;
 * the thread running the root is a worker and helps in every wait.
 *
 * (Spawning the root from this thread into a task group and helping from
 * cc_task_group_wait here would add this thread as one more helper; it is
 * not done because a helper outside the pool currently nests without bound
 * and overflows its stack on fib(30): see docs/benchmarks.md.)
 */
static int64_t cc_fib(cc_executor *pool, uint64_t iters)
{
    wait_until_quiet();
    int64_t t0 = bench_now_ns();
    for (uint64_t i = 0; i < iters / FIB_TASKS; i++) {
        fib_call root = {pool, FIB_N, 0};
        cc_future *f;
        int rc = cc_executor_submit(pool, fib_root, &root, &f);
        if (rc < 0)
            return rc;
        rc = cc_future_result(f, CC_FOREVER, NULL);
        cc_future_unref(f);
        if (rc < 0)
            return rc;
        if (root.result != FIB_RESULT)
            return CC_EFAILED;
    }
    return bench_now_ns() - t0;
}

static int64_t cc_fib_1t(void *state, uint64_t iters)
{
    return cc_fib(((pool_state *)state)->pool1, iters);
}

static int64_t cc_fib_2t(void *state, uint64_t iters)
{
    return cc_fib(((pool_state *)state)->pool2, iters);
}

static int64_t omp_fib(int threads, uint64_t iters)
{
    wait_until_quiet();
    int64_t t0 = bench_now_ns();
    for (uint64_t i = 0; i < iters / FIB_TASKS; i++)
        if (baseline_omp_fib(FIB_N, threads) != FIB_RESULT)
            return CC_EFAILED;
    return bench_now_ns() - t0;
}

static int64_t omp_fib_1t(void *state, uint64_t iters)
{
    return omp_fib(1, iters);
}

static int64_t omp_fib_2t(void *state, uint64_t iters)
{
    return omp_fib(2, iters);
}
#endif

/* ---- parallel_map_cpu ---------------------------------------------------- */

/* Pure integer work the compiler cannot shorten: xorshift64 rounds. */
static uint64_t integer_work(uint64_t seed, uint64_t rounds)
{
    uint64_t x = seed | 1;
    for (uint64_t i = 0; i < rounds; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
    }
    return x;
}

typedef struct map_item {
    uint64_t seed, rounds, out;
} map_item;

static int map_task(void *arg, void **result)
{
    map_item *it = arg;
    it->out = integer_work(it->seed, it->rounds);
    return 0;
}

static void map_items_init(const pool_state *st, map_item *items)
{
    for (int i = 0; i < MAP_ITEMS; i++)
        items[i] = (map_item){.seed = (uint64_t)i * 0x9e3779b97f4a7c15u,
                              .rounds = st->work_rounds};
}

/* A wrong result is a bug, not a figure: both sides must agree. */
static int check_map(pool_state *st, const map_item *items)
{
    uint64_t sum = 0;
    for (int i = 0; i < MAP_ITEMS; i++)
        sum += items[i].out;
    if (st->map_checksum == 0)
        st->map_checksum = sum;
    return sum == st->map_checksum ? 0 : CC_EFAILED;
}

static int64_t cc_map_cpu(void *state, uint64_t iters)
{
    pool_state *st = state;
    map_item items[MAP_ITEMS];
    void *args[MAP_ITEMS];
    for (int i = 0; i < MAP_ITEMS; i++)
        args[i] = &items[i];
    wait_until_quiet();
    int64_t total = 0;
    for (uint64_t k = 0; k < iters; k++) {
        map_items_init(st, items);
        int64_t t0 = bench_now_ns();
        cc_map_options opts = CC_MAP_OPTIONS_DEFAULT;
        cc_map *map;
        int rc = cc_executor_map(st->pool2, map_task, args, MAP_ITEMS, &opts,
                                 &map);
        if (rc < 0)
            return rc;
        while ((rc = cc_map_next(map, NULL, NULL)) == 1)
            ;
        cc_map_free(map);
        total += bench_now_ns() - t0;
        if (rc < 0)
            return rc;
        if ((rc = check_map(st, items)) < 0)
            return rc;
    }
    return total;
}

static int64_t sequential_map_cpu(void *state, uint64_t iters)
{
    pool_state *st = state;
    map_item items[MAP_ITEMS];
    wait_until_quiet();
    int64_t total = 0;
    for (uint64_t k = 0; k < iters; k++) {
        map_items_init(st, items);
        int64_t t0 = bench_now_ns();
        for (int i = 0; i < MAP_ITEMS; i++)
            map_task(&items[i], NULL);
        total += bench_now_ns() - t0;
        int rc = check_map(st, items);
        if (rc < 0)
            return rc;
    }
    return total;
}

/* Rounds of integer_work that take about MAP_ITEM_NS here: the fastest of
 * a few probes, so that a busy neighbour does not inflate it. */
static uint64_t calibrate_work(void)
{
    const uint64_t probe = 1u << 18;
    int64_t best = INT64_MAX;
    volatile uint64_t sink;
    for (int i = 0; i < 5; i++) {
        int64_t t0 = bench_now_ns();
        sink = integer_work((uint64_t)i, probe);
        int64_t t = bench_now_ns() - t0;
        if (t > 0 && t < best)
            best = t;
    }
    (void)sink;
    if (best == INT64_MAX)
        best = 1;
    return (uint64_t)((double)probe * MAP_ITEM_NS / (double)best);
}

/* ---- submit_latency ------------------------------------------------------ */

/* One empty task submitted and its result awaited, each time on an idle
 * pool: the workers are asleep (the quiet wait), so the figure includes
 * waking one. Only the round trips are timed. */
static int64_t cc_submit_latency(void *state, uint64_t iters)
{
    pool_state *st = state;
    int64_t total = 0;
    for (uint64_t i = 0; i < iters; i++) {
        wait_until_quiet();
        int64_t t0 = bench_now_ns();
        cc_future *f;
        int rc = cc_executor_submit(st->pool, empty_task, NULL, &f);
        if (rc < 0)
            return rc;
        rc = cc_future_result(f, CC_FOREVER, NULL);
        total += bench_now_ns() - t0;
        cc_future_unref(f);
        if (rc < 0)
            return rc;
    }
    return total;
}

static int64_t baseline_submit_latency(void *state, uint64_t iters)
{
    pool_state *st = state;
    int64_t total = 0;
    for (uint64_t i = 0; i < iters; i++) {
        wait_until_quiet();
        int64_t t0 = bench_now_ns();
        baseline_future *f;
        int rc = baseline_pool_submit(st->baseline, baseline_empty_task, NULL,
                                      &f);
        if (rc < 0)
            return rc;
        baseline_future_wait(f);
        total += bench_now_ns() - t0;
        baseline_future_free(f);
    }
    return total;
}

/* ---- pool_memory_per_task ------------------------------------------------ */

/*
 * Bytes of resident memory per pending task: a pool with one worker held
 * in a blocking task, MEMORY_TASKS empty tasks submitted behind it, and the
 * growth of the resident set over the submits divided by their number. The
 * caller's array of futures is allocated inside the measured span: keeping
 * the futures is part of what a pending task costs. bench_memory_start
 * first gives freed heap and future slabs back to the kernel, so the
 * growth is the new memory and not an artefact of what earlier cases left
 * in the allocators.
 */
static int blocking_task(void *arg, void **result)
{
    return cc_event_wait(arg, CC_FOREVER);
}

/* Polls until f runs (its worker is then held), for up to 5 s. */
static int wait_running(cc_future *f)
{
    for (int i = 0; i < 50000 && !cc_future_running(f); i++) {
        struct timespec pause = {0, 100 * 1000};
        nanosleep(&pause, NULL);
    }
    return cc_future_running(f) ? 0 : -ETIMEDOUT;
}

static int measure_cc_memory(double *bytes_per_task)
{
    cc_thread_pool_options o = {.max_workers = 1};
    cc_executor *pool;
    int rc = cc_thread_pool_new(&pool, &o);
    if (rc < 0)
        return rc;
    cc_event gate = CC_EVENT_INIT;
    cc_future *blocker;
    rc = cc_executor_submit(pool, blocking_task, &gate, &blocker);
    if (rc < 0) {
        cc_executor_free(pool);
        return rc;
    }
    rc = wait_running(blocker);

    int64_t before = bench_memory_start();
    cc_future **fs = NULL;
    size_t n = 0;
    if (rc == 0 && before < 0)
        rc = (int)before;
    if (rc == 0 && !(fs = malloc(MEMORY_TASKS * sizeof *fs)))
        rc = -ENOMEM;
    for (; rc == 0 && n < MEMORY_TASKS; n++) {
        rc = cc_executor_submit(pool, empty_task, NULL, &fs[n]);
        if (rc < 0)
            break;
    }
    int64_t after = bench_resident_bytes();
    if (rc == 0 && after < 0)
        rc = (int)after;
    if (rc == 0)
        *bytes_per_task = (double)(after - before) / MEMORY_TASKS;

    /* Let them run: cancelling a million futures costs about as much. */
    cc_event_set(&gate);
    for (size_t i = 0; i < n; i++) {
        cc_future_wait(fs[i], CC_FOREVER);
        cc_future_unref(fs[i]);
    }
    free(fs);
    cc_future_wait(blocker, CC_FOREVER);
    cc_future_unref(blocker);
    cc_executor_free(pool);
    cc_event_destroy(&gate);
    return rc;
}

typedef struct baseline_gate {
    cc_event started;
    cc_event release;
} baseline_gate;

static void *baseline_blocking_task(void *arg)
{
    baseline_gate *g = arg;
    cc_event_set(&g->started);
    cc_event_wait(&g->release, CC_FOREVER);
    return NULL;
}

static int measure_baseline_memory(double *bytes_per_task)
{
    baseline_pool *pool;
    int rc = baseline_pool_new(&pool, 1);
    if (rc < 0)
        return rc;
    baseline_gate gate = {CC_EVENT_INIT, CC_EVENT_INIT};
    baseline_future *blocker;
    rc = baseline_pool_submit(pool, baseline_blocking_task, &gate, &blocker);
    if (rc < 0) {
        baseline_pool_free(pool);
        return rc;
    }
    rc = cc_event_wait(&gate.started, CC_SEC(5));

    int64_t before = bench_memory_start();
    baseline_future **fs = NULL;
    size_t n = 0;
    if (rc == 0 && before < 0)
        rc = (int)before;
    if (rc == 0 && !(fs = malloc(MEMORY_TASKS * sizeof *fs)))
        rc = -ENOMEM;
    for (; rc == 0 && n < MEMORY_TASKS; n++) {
        rc = baseline_pool_submit(pool, baseline_empty_task, NULL, &fs[n]);
        if (rc < 0)
            break;
    }
    int64_t after = bench_resident_bytes();
    if (rc == 0 && after < 0)
        rc = (int)after;
    if (rc == 0)
        *bytes_per_task = (double)(after - before) / MEMORY_TASKS;

    cc_event_set(&gate.release);
    for (size_t i = 0; i < n; i++) {
        baseline_future_wait(fs[i]);
        baseline_future_free(fs[i]);
    }
    free(fs);
    baseline_future_wait(blocker);
    baseline_future_free(blocker);
    baseline_pool_free(pool);
    cc_event_destroy(&gate.started);
    cc_event_destroy(&gate.release);
    return rc;
}

/*
 * The figure does not vary from run to run the way a time does, so each
 * side is measured once (the first call) and every later call reports the
 * same bytes per task for its iteration count; the framework's calibration
 * and rounds then cost nothing.
 */
static int64_t memory_figure(pool_state *st, int side, uint64_t iters)
{
    if (st->memory[side] == 0) {
        double bytes = 0;
        int rc = side == 0 ? measure_cc_memory(&bytes)
                           : measure_baseline_memory(&bytes);
        if (rc < 0)
            return rc;
        /* Never 0: 0 means "not measured" and is no valid figure. */
        st->memory[side] = bytes > 0.01 ? bytes : 0.01;
    }
    return (int64_t)(st->memory[side] * (double)iters);
}

static int64_t cc_memory(void *state, uint64_t iters)
{
    return memory_figure(state, 0, iters);
}

static int64_t baseline_memory(void *state, uint64_t iters)
{
    return memory_figure(state, 1, iters);
}

/* ---- setup and teardown -------------------------------------------------- */

/* Tasks spawned by fib(n): t(n) = t(n - 1) + t(n - 2) + 1, t(0) = t(1) = 0. */
static uint64_t fib_tasks(int n)
{
    uint64_t a = 0, b = 0; /* t(k - 1), t(k) */
    for (int k = 1; k < n; k++) {
        uint64_t next = a + b + 1;
        a = b;
        b = next;
    }
    return b;
}

static void pool_teardown(void *state)
{
    pool_state *st = state;
    if (!st)
        return;
    cc_executor_free(st->pool);
    cc_executor_free(st->pool1);
    cc_executor_free(st->pool2);
    baseline_pool_free(st->baseline);
#ifdef CONCUR_BENCH_HAVE_GLIB
    baseline_glib_free(st->glib);
#endif
    free(st);
}

static int new_pool(cc_executor **out, unsigned workers)
{
    cc_thread_pool_options o = {.max_workers = workers,
                                .thread_name_prefix = "bench_pool"};
    return cc_thread_pool_new(out, &o);
}

static int pool_setup(void **state, const char **skip_reason)
{
    if (fib_tasks(FIB_N) != FIB_TASKS)
        return CC_EFAILED;
#ifndef CONCUR_BENCH_PYTHON
    fputs("concur bench: pool_vs_python left out: python3 was not found "
          "when concur was built\n", stderr);
#endif
#ifndef CONCUR_BENCH_HAVE_OPENMP
    fputs("concur bench: forkjoin_fib_1t, forkjoin_fib_2t left out: built "
          "without OpenMP\n", stderr);
#endif
#ifndef CONCUR_BENCH_HAVE_GLIB
    fputs("concur bench: pool_empty_tasks_glib left out: built without "
          "glib-2.0\n", stderr);
#endif
    pool_state *st = calloc(1, sizeof *st);
    if (!st)
        return -ENOMEM;
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    st->workers = cpus > 2 ? (unsigned)(cpus < 64 ? cpus : 64) : 2;
    st->work_rounds = calibrate_work();
    int rc = new_pool(&st->pool, st->workers);
    if (rc == 0)
        rc = new_pool(&st->pool1, 1);
    if (rc == 0)
        rc = new_pool(&st->pool2, 2);
    if (rc == 0)
        rc = baseline_pool_new(&st->baseline, st->workers);
#ifdef CONCUR_BENCH_HAVE_GLIB
    if (rc == 0)
        rc = baseline_glib_new(&st->glib, st->workers);
#endif
    if (rc < 0) {
        pool_teardown(st);
        return rc;
    }
    *state = st;
    return 0;
}

/* ---- the suite ----------------------------------------------------------- */

/* Budgets from DESIGN.md: >= 5x the hand-written pool and >= 100x Python
 * per empty task; fork-join within 2x of OpenMP on one thread (>= 0.5) and
 * faster on two; a parallel map >= 1.8x sequential on 2 cores. The design
 * sets none for the round trip (reported; >= 1 means on par) nor a ratio
 * for memory: its budget is absolute (<= 128 bytes per pending task),
 * which the table cannot show, so >= 1 here means "no more than the
 * hand-written pool". */
static const bench_case pool_cases[] = {
    {"pool_empty_tasks", "ns/task", 1, 1000, 5.0,
     {"cc_executor_submit", cc_empty_tasks},
     {"mutex+condvar pool", baseline_empty_tasks}},
#ifdef CONCUR_BENCH_HAVE_GLIB
    {"pool_empty_tasks_glib", "ns/task", 1, 1000, 1.0,
     {"cc_executor_submit", cc_empty_tasks},
     {"GThreadPool", glib_empty_tasks}},
#endif
#ifdef CONCUR_BENCH_PYTHON
    {"pool_vs_python", "ns/task", 1, 1000, 100.0,
     {"cc_executor_submit", cc_empty_tasks},
     {"ThreadPoolExecutor", python_empty_tasks}},
#endif
#ifdef CONCUR_BENCH_HAVE_OPENMP
    {"forkjoin_fib_1t", "ns/task", 1, FIB_TASKS, 0.5,
     {"cc_task_group", cc_fib_1t},
     {"OpenMP tasks", omp_fib_1t}},
    {"forkjoin_fib_2t", "ns/task", 1, FIB_TASKS, 1.0,
     {"cc_task_group", cc_fib_2t},
     {"OpenMP tasks", omp_fib_2t}},
#endif
    {"parallel_map_cpu", "ms/map", 1e6, 1, 1.8,
     {"cc_executor_map", cc_map_cpu},
     {"sequential", sequential_map_cpu}},
    {"submit_latency", "us/op", 1e3, 1, 1.0,
     {"cc_executor_submit", cc_submit_latency},
     {"mutex+condvar pool", baseline_submit_latency}},
    {"pool_memory_per_task", "bytes", 1, 1, 1.0,
     {"cc_executor_submit", cc_memory},
     {"mutex+condvar pool", baseline_memory}},
};

const bench_suite bench_suite_pool = {
    .name = "pool",
    .summary = "thread pool, fork-join and parallel map against a "
               "mutex+condvar pool, Python and OpenMP",
    .cases = pool_cases,
    .n_cases = sizeof pool_cases / sizeof pool_cases[0],
    .setup = pool_setup,
    .teardown = pool_teardown,
};
