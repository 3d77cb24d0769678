/*
 * The process suite: concur's process pool against Python's
 * concurrent.futures.ProcessPoolExecutor (fork start method), run by
 * python3 as a child process that times itself (start-up excluded).
 *
 *   process_roundtrip      submit -> result of a tiny task, one worker
 *   process_map_tiny       map over tiny tasks, 2 workers, a good chunk
 *                          size on both sides (about 4 chunks per worker)
 *   process_payload_16mib  a 16 MiB argument echoed back, one worker
 *   worker_respawn         a worker crashes, then a task is served by its
 *                          replacement. Python's pool is broken by the
 *                          crash, so its side is what a Python program has
 *                          to do then: a new pool, then the task. Reported;
 *                          no budget.
 *
 * The suite needs python3 (found when concur was built); without it the
 * whole suite is skipped. The fork server is started in setup.
 */
#include "bench.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "concur/error.h"
#include "concur/executor.h"
#include "concur/future.h"
#include "concur/process.h"

#define PAYLOAD (16u << 20)
#define MAP_WORKERS 2

typedef struct process_state {
    cc_executor *one;  /* 1 worker: round trip, payload */
    cc_executor *two;  /* MAP_WORKERS workers: map */
    cc_executor *resp; /* 1 worker: respawn */
    unsigned char *payload;
    int64_t *items;
    const void **ins;
    size_t *lens;
    size_t nitems;
} process_state;

/* ---- the tasks --------------------------------------------------------------- */

static int bench_echo(const void *in, size_t len, void **out, size_t *out_len)
{
    if (!len)
        return 0;
    void *p = malloc(len);
    if (!p)
        return -ENOMEM;
    memcpy(p, in, len);
    *out = p;
    *out_len = len;
    return 0;
}
CC_TASK_REGISTER(bench_echo);

static int bench_crash(const void *in, size_t len, void **out,
                       size_t *out_len)
{
    (void)in;
    (void)len;
    (void)out;
    (void)out_len;
    _exit(1);
}
CC_TASK_REGISTER(bench_crash);

/* ---- concur's sides -------------------------------------------------------------- */

/* Only built with the Python sides: a case needs both. */
#ifdef CONCUR_BENCH_PYTHON

static int roundtrip(cc_executor *ex, const void *in, size_t len)
{
    cc_future *f;
    int rc = cc_executor_submit_bytes(ex, CC_TASK(bench_echo), in, len, &f);
    if (rc < 0)
        return rc;
    const void *data;
    size_t n;
    rc = cc_future_result_bytes(f, CC_FOREVER, &data, &n);
    if (rc == 0 && n != len)
        rc = CC_EFAILED;
    cc_future_unref(f);
    return rc;
}

static int64_t cc_roundtrip(void *state, uint64_t iters)
{
    process_state *st = state;
    int64_t v = 1;
    int64_t t0 = bench_now_ns();
    for (uint64_t i = 0; i < iters; i++) {
        int rc = roundtrip(st->one, &v, sizeof v);
        if (rc < 0)
            return rc;
    }
    return bench_now_ns() - t0;
}

static int grow_items(process_state *st, size_t n)
{
    if (st->nitems >= n)
        return 0;
    int64_t *items = realloc(st->items, n * sizeof *items);
    if (!items)
        return -ENOMEM;
    st->items = items;
    const void **ins = realloc(st->ins, n * sizeof *ins);
    if (!ins)
        return -ENOMEM;
    st->ins = ins;
    size_t *lens = realloc(st->lens, n * sizeof *lens);
    if (!lens)
        return -ENOMEM;
    st->lens = lens;
    for (size_t i = 0; i < n; i++) {
        st->items[i] = (int64_t)i;
        st->ins[i] = &st->items[i];
        st->lens[i] = sizeof st->items[i];
    }
    st->nitems = n;
    return 0;
}

static int64_t cc_map_tiny(void *state, uint64_t iters)
{
    process_state *st = state;
    int rc = grow_items(st, (size_t)iters);
    if (rc < 0)
        return rc;
    int64_t t0 = bench_now_ns();
    cc_bytes_map *m;
    rc = cc_executor_map_bytes(st->two, CC_TASK(bench_echo), st->ins,
                               st->lens, (size_t)iters, NULL, &m);
    if (rc < 0)
        return rc;
    uint64_t got = 0;
    while ((rc = cc_bytes_map_next(m, NULL, NULL, NULL)) == 1)
        got++;
    cc_bytes_map_free(m);
    if (rc < 0)
        return rc;
    if (got != iters)
        return CC_EFAILED;
    return bench_now_ns() - t0;
}

static int64_t cc_payload(void *state, uint64_t iters)
{
    process_state *st = state;
    int64_t t0 = bench_now_ns();
    for (uint64_t i = 0; i < iters; i++) {
        int rc = roundtrip(st->one, st->payload, PAYLOAD);
        if (rc < 0)
            return rc;
    }
    return bench_now_ns() - t0;
}

static int64_t cc_respawn(void *state, uint64_t iters)
{
    process_state *st = state;
    int64_t v = 1;
    int64_t t0 = bench_now_ns();
    for (uint64_t i = 0; i < iters; i++) {
        cc_future *f;
        int rc = cc_executor_submit_bytes(st->resp, CC_TASK(bench_crash), NULL,
                                          0, &f);
        if (rc < 0)
            return rc;
        rc = cc_future_error(f, CC_FOREVER);
        cc_future_unref(f);
        if (rc != CC_EWORKER_LOST)
            return rc < 0 ? rc : CC_EFAILED;
        rc = roundtrip(st->resp, &v, sizeof v);
        if (rc < 0)
            return rc;
    }
    return bench_now_ns() - t0;
}

/* ---- Python's sides ------------------------------------------------------------- */
/* argv: mode, n, workers. Prints the nanoseconds the n operations took,
 * timed inside Python after the pool has started and warmed up. */
static const char python_script[] =
    "import os, sys, time, multiprocessing as mp\n"
    "from concurrent.futures import ProcessPoolExecutor\n"
    "def echo(x):\n"
    "    return x\n"
    "mode, n, w = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])\n"
    "ctx = mp.get_context('fork')\n"
    "if mode == 'respawn':\n"
    "    t0 = time.perf_counter_ns()\n"
    "    for _ in range(n):\n"
    "        with ProcessPoolExecutor(1, mp_context=ctx) as ex:\n"
    "            ex.submit(echo, 1).result()\n"
    "    t1 = time.perf_counter_ns()\n"
    "else:\n"
    "    with ProcessPoolExecutor(w, mp_context=ctx) as ex:\n"
    "        list(ex.map(echo, range(100 * w), chunksize=10))\n"
    "        data = bytes(16 << 20) if mode == 'payload' else 1\n"
    "        t0 = time.perf_counter_ns()\n"
    "        if mode == 'map':\n"
    "            cs = max(1, -(-n // (4 * w)))\n"
    "            for _ in ex.map(echo, range(n), chunksize=cs):\n"
    "                pass\n"
    "        else:\n"
    "            for _ in range(n):\n"
    "                ex.submit(echo, data).result()\n"
    "        t1 = time.perf_counter_ns()\n"
    "print(t1 - t0)\n";

static int64_t run_python(const char *mode, uint64_t n, unsigned workers)
{
    char n_arg[32], w_arg[16];
    snprintf(n_arg, sizeof n_arg, "%llu", (unsigned long long)n);
    snprintf(w_arg, sizeof w_arg, "%u", workers);
    char *argv[] = {(char *)CONCUR_BENCH_PYTHON, (char *)"-c",
                    (char *)python_script, (char *)mode, n_arg, w_arg, NULL};
    char out[64];
    int status;
    int rc = bench_run_capture(argv, out, sizeof out, &status);
    if (rc < 0)
        return rc;
    char *end;
    long long ns = strtoll(out, &end, 10);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || end == out ||
        ns <= 0) {
        fprintf(stderr, "concur bench: %s %s: unexpected output '%s'\n",
                CONCUR_BENCH_PYTHON, mode, out);
        return CC_EFAILED;
    }
    return (int64_t)ns;
}

static int64_t py_roundtrip(void *state, uint64_t iters)
{
    (void)state;
    return run_python("roundtrip", iters, 1);
}

static int64_t py_map_tiny(void *state, uint64_t iters)
{
    (void)state;
    return run_python("map", iters, MAP_WORKERS);
}

static int64_t py_payload(void *state, uint64_t iters)
{
    (void)state;
    return run_python("payload", iters, 1);
}

static int64_t py_respawn(void *state, uint64_t iters)
{
    (void)state;
    return run_python("respawn", iters, 1);
}
#endif

/* ---- the suite ----------------------------------------------------------------- */

static void process_teardown(void *state)
{
    process_state *st = state;
    cc_executor_free(st->one);
    cc_executor_free(st->two);
    cc_executor_free(st->resp);
    free(st->payload);
    free(st->items);
    free(st->ins);
    free(st->lens);
    free(st);
}

static int process_setup(void **state, const char **skip_reason)
{
#ifndef CONCUR_BENCH_PYTHON
    *skip_reason = "python3 was not found when concur was built";
    (void)state;
    return BENCH_SKIPPED;
#else
    (void)skip_reason;
    int rc = cc_process_init();
    if (rc < 0)
        return rc;
    process_state *st = calloc(1, sizeof *st);
    if (!st)
        return -ENOMEM;
    cc_process_pool_options one = {.max_workers = 1};
    cc_process_pool_options two = {.max_workers = MAP_WORKERS};
    /* The respawn pool crashes on purpose every round: no budget. */
    cc_process_pool_options resp = {.max_workers = 1,
                                    .restart_budget = 1u << 30};
    rc = cc_process_pool_new(&st->one, &one);
    if (rc == 0)
        rc = cc_process_pool_new(&st->two, &two);
    if (rc == 0)
        rc = cc_process_pool_new(&st->resp, &resp);
    st->payload = malloc(PAYLOAD);
    if (rc == 0 && !st->payload)
        rc = -ENOMEM;
    if (rc < 0) {
        process_teardown(st);
        return rc;
    }
    memset(st->payload, 7, PAYLOAD);
    *state = st;
    return 0;
#endif
}

#ifdef CONCUR_BENCH_PYTHON
/* Budgets from the issue: round trip >= 20x Python, map >= 10x, 16 MiB
 * payload >= 10x; respawn is reported only. */
static const bench_case process_cases[] = {
    {"process_roundtrip", "us/op", 1e3, 1, 20.0,
     {"cc_process_pool", cc_roundtrip},
     {"ProcessPoolExecutor", py_roundtrip}},
    {"process_map_tiny", "ns/task", 1, 1000, 10.0,
     {"cc_process_pool", cc_map_tiny},
     {"ProcessPoolExecutor", py_map_tiny}},
    {"process_payload_16mib", "ms/op", 1e6, 1, 10.0,
     {"cc_process_pool", cc_payload},
     {"ProcessPoolExecutor", py_payload}},
    {"worker_respawn", "us/op", 1e3, 1, 0.0,
     {"cc_process_pool", cc_respawn},
     {"new Python pool", py_respawn}},
};
#define N_CASES (sizeof process_cases / sizeof process_cases[0])
#else
static const bench_case process_cases[1];
#define N_CASES 0
#endif

const bench_suite bench_suite_process = {
    .name = "process",
    .summary = "process pool against Python's ProcessPoolExecutor",
    .cases = process_cases,
    .n_cases = N_CASES,
    .setup = process_setup,
    .teardown = process_teardown,
};
