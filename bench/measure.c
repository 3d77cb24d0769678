/*
 * How every case is timed: calibrate, interleave, take the median.
 *
 * The median of a handful of interleaved runs is what survives a shared,
 * noisy virtual machine: a neighbour's burst slows one run of one side, not
 * the median of both, and alternating which side goes first stops either
 * one from always inheriting the other's cache or frequency state.
 */
#include "bench.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_ROUNDS 15
/* Guards the calibration against a side that does nothing per iteration. */
#define MAX_ITERS (UINT64_C(1) << 40)

bench_config bench_config_default(bool quick)
{
    /* Full: 4 cases x 2 sides x 7 runs x 100 ms, plus calibration and a
     * busy machine stretching every run, stays under the 20 s the sync suite
     * may take; quick stays under 1 s. */
    bench_config cfg = {
        .quick = quick,
        .rounds = quick ? 3 : 7,
        .target_ns = quick ? 15 * 1000000LL : 100 * 1000000LL,
    };
    return cfg;
}

int64_t bench_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static uint64_t round_up(uint64_t n, uint64_t step)
{
    if (n < step)
        return step;
    return (n + step - 1) / step * step;
}

/*
 * Grows the iteration count until one run lasts a quarter of the target,
 * then scales it to the whole target. The growing runs are the warm-up:
 * they fault in the stacks, the allocator's arenas and the code.
 */
static int calibrate(const bench_config *cfg, const bench_side *side,
                     uint64_t step, void *state, uint64_t *iters_out)
{
    uint64_t iters = step;
    int64_t goal = cfg->target_ns / 4;
    for (;;) {
        int64_t t = side->run(state, iters);
        if (t < 0)
            return (int)t;
        if (t >= goal || iters >= MAX_ITERS) {
            double scaled = (double)iters * (double)cfg->target_ns /
                            (double)(t > 0 ? t : 1);
            *iters_out = round_up(scaled < (double)MAX_ITERS
                                      ? (uint64_t)scaled : MAX_ITERS, step);
            return 0;
        }
        /* Aim at twice the goal so that one more run usually suffices,
         * but never grow more than 100x on a run too short to trust. */
        double grow = t > 0 ? 2.0 * (double)goal / (double)t : 100.0;
        if (grow > 100.0)
            grow = 100.0;
        if (grow < 2.0)
            grow = 2.0;
        iters = round_up((uint64_t)((double)iters * grow), step);
    }
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

int bench_measure(const bench_config *cfg, const bench_case *c, void *state,
                  bench_result *out, const char **failed_side)
{
    const bench_side *sides[2] = {&c->concur, &c->baseline};
    uint64_t step = c->iters_step ? c->iters_step : 1;
    uint64_t iters[2];
    double per_op[2][MAX_ROUNDS];
    int rounds = cfg->rounds < 1 ? 1
                 : cfg->rounds > MAX_ROUNDS ? MAX_ROUNDS : cfg->rounds;

    for (int s = 0; s < 2; s++) {
        int rc = calibrate(cfg, sides[s], step, state, &iters[s]);
        if (rc < 0) {
            *failed_side = sides[s]->name;
            return rc;
        }
    }
    for (int r = 0; r < rounds; r++) {
        for (int k = 0; k < 2; k++) {
            int s = (r % 2) ? 1 - k : k;
            int64_t t = sides[s]->run(state, iters[s]);
            if (t < 0) {
                *failed_side = sides[s]->name;
                return (int)t;
            }
            per_op[s][r] = (double)(t > 0 ? t : 1) / (double)iters[s];
        }
    }

    double low = per_op[1][0] / per_op[0][0], high = low;
    for (int r = 1; r < rounds; r++) {
        double ratio = per_op[1][r] / per_op[0][r];
        low = ratio < low ? ratio : low;
        high = ratio > high ? ratio : high;
    }
    double concur_ns = median(per_op[0], rounds);
    double baseline_ns = median(per_op[1], rounds);
    *out = (bench_result){
        .name = c->name,
        .unit = c->unit,
        .baseline_name = c->baseline.name,
        .concur = concur_ns / c->ns_per_unit,
        .baseline = baseline_ns / c->ns_per_unit,
        .speedup = baseline_ns / concur_ns,
        .speedup_low = low,
        .speedup_high = high,
        .budget = c->budget,
    };
    return 0;
}

/* ---- two threads against each other ------------------------------------ */

typedef struct pair {
    bench_worker worker;
    void *ctx;
    pthread_mutex_t mutex;
    pthread_cond_t cond;
    int gate;          /* 0 closed, 1 go, -1 abort: a thread failed to start */
    atomic_int arrived;
} pair;

typedef struct pair_arg {
    pair *p;
    int index;
    int rc;
    int64_t start, end;
} pair_arg;

static void *pair_main(void *arg)
{
    pair_arg *a = arg;
    pair *p = a->p;

    pthread_mutex_lock(&p->mutex);
    while (p->gate == 0)
        pthread_cond_wait(&p->cond, &p->mutex);
    int gate = p->gate;
    pthread_mutex_unlock(&p->mutex);
    if (gate < 0)
        return NULL;

    /* The gate wakes the two threads tens of microseconds apart on a
     * virtual machine; meeting here first keeps one of them from timing
     * work it did alone. Yielding (not pure spinning) lets this work on a
     * single CPU too. */
    atomic_fetch_add(&p->arrived, 1);
    while (atomic_load(&p->arrived) < 2)
        sched_yield();

    a->start = bench_now_ns();
    a->rc = p->worker(p->ctx, a->index);
    a->end = bench_now_ns();
    return NULL;
}

int64_t bench_run_pair(bench_worker worker, void *ctx)
{
    pair p = {.worker = worker, .ctx = ctx};
    pair_arg args[2] = {{.p = &p, .index = 0}, {.p = &p, .index = 1}};
    pthread_t tids[2];
    int started = 0, err = 0;

    pthread_mutex_init(&p.mutex, NULL);
    pthread_cond_init(&p.cond, NULL);
    atomic_init(&p.arrived, 0);
    for (; started < 2; started++) {
        err = pthread_create(&tids[started], NULL, pair_main, &args[started]);
        if (err)
            break;
    }
    pthread_mutex_lock(&p.mutex);
    p.gate = err ? -1 : 1;
    pthread_cond_broadcast(&p.cond);
    pthread_mutex_unlock(&p.mutex);
    for (int i = 0; i < started; i++)
        pthread_join(tids[i], NULL);
    pthread_cond_destroy(&p.cond);
    pthread_mutex_destroy(&p.mutex);

    if (err)
        return -err;
    for (int i = 0; i < 2; i++)
        if (args[i].rc < 0)
            return args[i].rc;
    int64_t start = args[0].start < args[1].start ? args[0].start
                                                  : args[1].start;
    int64_t end = args[0].end > args[1].end ? args[0].end : args[1].end;
    return end - start;
}

extern char **environ;

int bench_run_capture(char *const argv[], char *out, size_t cap, int *status)
{
    if (cap == 0)
        return -EINVAL;
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0)
        return -errno;
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, fds[1], STDOUT_FILENO);
    pid_t pid;
    int err = posix_spawnp(&pid, argv[0], &actions, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&actions);
    close(fds[1]);
    if (err) {
        close(fds[0]);
        return -err;
    }
    /* Read to the end even past cap, so the child never blocks on a full
     * pipe; what does not fit is dropped. */
    size_t len = 0;
    for (;;) {
        char chunk[256];
        ssize_t r = read(fds[0], chunk, sizeof chunk);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        size_t take = (size_t)r < cap - 1 - len ? (size_t)r : cap - 1 - len;
        memcpy(out + len, chunk, take);
        len += take;
    }
    out[len] = '\0';
    close(fds[0]);
    while (waitpid(pid, status, 0) < 0)
        if (errno != EINTR)
            return -errno;
    return 0;
}
