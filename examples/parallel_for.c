/*
 * parallel_for.c — computes the Mandelbrot set row by row, once in a plain
 * loop and once with cc_parallel_for on a thread pool, checks that both
 * give the same picture and prints how long each took. This is CPU-bound
 * work: C threads run it on every core at once (there is no GIL), so the
 * parallel loop should be close to N times faster on N free cores.
 *
 * The Python it mirrors (which, because of the GIL, would not run faster
 * with threads; it needs a ProcessPoolExecutor for that):
 *
 *     from concurrent.futures import ThreadPoolExecutor
 *
 *     def row_sum(y):
 *         return sum(escape_time(x, y) for x in range(WIDTH))
 *
 *     sequential = [row_sum(y) for y in range(HEIGHT)]
 *     with ThreadPoolExecutor() as executor:
 *         parallel = list(executor.map(row_sum, range(HEIGHT)))
 *     assert parallel == sequential
 *
 * How it maps: cc_parallel_for(pool, 0, HEIGHT, grain, body, ctx) calls
 * body(lo, hi, ctx) on pieces [lo, hi) of the range, in parallel on the
 * pool's workers and in the calling thread, which helps instead of
 * waiting idle. So a pool of CPUs - 1 workers plus the caller keeps every
 * CPU busy. grain 0 lets it choose the piece size (about 8 pieces per
 * worker, enough to balance rows of uneven cost: rows through the middle
 * of the set cost far more than rows at the edge).
 *
 * Usage: parallel_for [HEIGHT]   rows of the picture (default 900; the
 * width is 1.5 times the height).
 */
#include <concur.h>

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

struct picture {
    size_t width, height;
    int max_iter;
    uint64_t *row_sums; /* escape times summed over each row */
};

/* Iterations before z -> z^2 + c leaves the circle of radius 2. */
static int escape_time(double cr, double ci, int max_iter)
{
    double zr = 0, zi = 0;
    int k = 0;
    while (k < max_iter && zr * zr + zi * zi <= 4.0) {
        double t = zr * zr - zi * zi + cr;
        zi = 2 * zr * zi + ci;
        zr = t;
        k++;
    }
    return k;
}

/* The loop body: rows [lo, hi). Returns 0 (a negative code would stop the
 * parallel-for and come back from it). */
static int compute_rows(size_t lo, size_t hi, void *ctx)
{
    struct picture *p = ctx;
    for (size_t y = lo; y < hi; y++) {
        double ci = -1.25 + 2.5 * (double)y / (double)p->height;
        uint64_t sum = 0;
        for (size_t x = 0; x < p->width; x++) {
            double cr = -2.25 + 3.0 * (double)x / (double)p->width;
            sum += (uint64_t)escape_time(cr, ci, p->max_iter);
        }
        p->row_sums[y] = sum;
    }
    return 0;
}

static void check(int rc, const char *what)
{
    if (rc < 0) {
        fprintf(stderr, "parallel_for: %s: %s\n", what, cc_strerror(rc));
        exit(1);
    }
}

int main(int argc, char **argv)
{
    long height = argc > 1 ? strtol(argv[1], NULL, 10) : 900;
    if (height < 1 || height > 100000) {
        fprintf(stderr, "usage: parallel_for [HEIGHT]\n");
        return 2;
    }
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    if (cpus < 1)
        cpus = 1;

    struct picture seq = {(size_t)height * 3 / 2, (size_t)height, 500, NULL};
    struct picture par = seq;
    seq.row_sums = calloc(seq.height, sizeof *seq.row_sums);
    par.row_sums = calloc(par.height, sizeof *par.row_sums);
    if (!seq.row_sums || !par.row_sums)
        check(-ENOMEM, "calloc");

    int64_t t0 = cc_monotonic_ns();
    compute_rows(0, seq.height, &seq);
    double sequential = (double)(cc_monotonic_ns() - t0) / 1e9;

    /* The calling thread helps, so CPUs - 1 workers fill every CPU. */
    cc_executor *pool;
    cc_thread_pool_options opts = {.max_workers =
                                       cpus > 1 ? (unsigned)cpus - 1 : 1};
    check(cc_thread_pool_new(&pool, &opts), "cc_thread_pool_new");
    t0 = cc_monotonic_ns();
    check(cc_parallel_for(pool, 0, par.height, 0, compute_rows, &par),
          "cc_parallel_for");
    double parallel = (double)(cc_monotonic_ns() - t0) / 1e9;
    cc_executor_free(pool);

    uint64_t total = 0;
    int mismatches = 0;
    for (size_t y = 0; y < seq.height; y++) {
        total += seq.row_sums[y];
        mismatches += seq.row_sums[y] != par.row_sums[y];
    }
    printf("%zux%zu Mandelbrot, %llu iterations in all\n", seq.width,
           seq.height, (unsigned long long)total);
    printf("sequential:   %.3f s\n", sequential);
    printf("parallel_for: %.3f s on %ld CPU%s (%u worker%s + the caller): "
           "%.2fx\n",
           parallel, cpus, cpus == 1 ? "" : "s", opts.max_workers,
           opts.max_workers == 1 ? "" : "s",
           parallel > 0 ? sequential / parallel : 0.0);
    free(seq.row_sums);
    free(par.row_sums);
    if (mismatches) {
        printf("%d rows differ between the two runs\n", mismatches);
        return 1;
    }
    return 0;
}
