/*
 * bench/bench.h — what a benchmark suite provides, and the measuring tools
 * every suite shares.
 *
 * A suite is a table of cases. Each case times one operation twice: through
 * concur and through the baseline a C programmer would otherwise use
 * (pthreads, a hand-written pool, Python, ...). Both run in the same process
 * run, interleaved, because these machines are shared and noisy: only the
 * ratio of the two is worth comparing between runs or machines.
 *
 * To add a suite: write bench/bench_NAME.c defining
 *     const bench_suite bench_suite_NAME = { ... };
 * and add one line CONCUR_BENCH_SUITE(NAME) to bench/suites.def. The build
 * and `concur bench` pick it up from there.
 */
#ifndef CONCUR_BENCH_H
#define CONCUR_BENCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* How hard to measure. --quick trades precision for a run short enough for
 * the test suite. */
typedef struct bench_config {
    bool quick;
    int rounds;        /* timed runs per side; the median is reported */
    int64_t target_ns; /* wanted length of one timed run */
} bench_config;

bench_config bench_config_default(bool quick);

/*
 * Runs iters operations and returns the nanoseconds they took, or a negative
 * error code (concur style). Whatever the run needs to set up (threads,
 * objects) stays out of the time it returns. state is the suite's state.
 */
typedef int64_t (*bench_fn)(void *state, uint64_t iters);

typedef struct bench_side {
    const char *name; /* "cc_lock", "pthread_mutex" */
    bench_fn run;
} bench_side;

typedef struct bench_case {
    const char *name;     /* "lock_uncontended" */
    const char *unit;     /* "ns/op", "us/op", "ns/roundtrip" */
    double ns_per_unit;   /* 1 for ns units, 1e3 for us units */
    uint64_t iters_step;  /* iteration counts are multiples of this (>= 1) */
    double budget;        /* the speedup concur must reach (see DESIGN.md) */
    bench_side concur;
    bench_side baseline;
} bench_case;

/* Returned by a suite's setup when it cannot run on this machine (a peer
 * library or a launcher is missing): the suite is skipped, not failed. */
#define BENCH_SKIPPED 1

typedef struct bench_suite {
    const char *name;    /* what `concur bench NAME` selects */
    const char *summary; /* one line for `concur bench --list` */
    const bench_case *cases;
    size_t n_cases;
    /* Optional. setup runs before the first case and passes *state to every
     * run; it returns 0, a negative error code, or BENCH_SKIPPED with a
     * static reason in *skip_reason. teardown runs after the last case. */
    int (*setup)(void **state, const char **skip_reason);
    void (*teardown)(void *state);
} bench_suite;

/* One measured figure. Values are medians in the case's unit; speedup is
 * baseline time / concur time, so > 1 means concur is faster. The two sides
 * of one round run back to back and so share the machine's mood; the
 * lowest and highest of those per-round ratios show how far to trust the
 * speedup. */
typedef struct bench_result {
    const char *name;
    const char *unit;
    const char *baseline_name;
    double concur;
    double baseline;
    double speedup;
    double speedup_low;
    double speedup_high;
    double budget;
} bench_result;

/*
 * Measures one case: calibrates each side to cfg->target_ns per run (the
 * calibration runs double as warm-up), then runs cfg->rounds rounds of both
 * sides, alternating which goes first, and keeps the median of each.
 * Returns 0, or the first negative error a side returned; *failed_side then
 * names that side.
 */
int bench_measure(const bench_config *cfg, const bench_case *c, void *state,
                  bench_result *out, const char **failed_side);

/*
 * For cases that need two threads working against each other: runs
 * worker(ctx, 0) and worker(ctx, 1) on two new threads released together,
 * and returns the nanoseconds from the first start to the last finish, or a
 * negative error code (a worker's, or one from thread creation). The threads
 * are raw pthreads for both sides, so only the measured object differs.
 */
typedef int (*bench_worker)(void *ctx, int index);
int64_t bench_run_pair(bench_worker worker, void *ctx);

/* Runs argv[0] (searched in PATH) with argv, collects at most cap - 1 bytes
 * of its standard output into out (always NUL-terminated) and waits for it.
 * Returns 0 with its waitpid status in *status, or a negative errno when it
 * could not be started or waited for. Used to time peers such as python3. */
int bench_run_capture(char *const argv[], char *out, size_t cap, int *status);

/* Resident memory of this process in bytes, or a negative errno. The
 * memory cases measure growth from bench_memory_start(), which first gives
 * freed memory back to the kernel: malloc's (malloc_trim) and the slabs
 * futures come from (cc_future_trim). */
int64_t bench_resident_bytes(void);
int64_t bench_memory_start(void);

/* CLOCK_MONOTONIC in nanoseconds, read directly rather than through concur
 * so that the clock does not depend on the code being measured. */
int64_t bench_now_ns(void);

/* Every registered suite, declared from the registry. */
#define CONCUR_BENCH_SUITE(name) extern const bench_suite bench_suite_##name;
#include "suites.def"
#undef CONCUR_BENCH_SUITE

#endif /* CONCUR_BENCH_H */
