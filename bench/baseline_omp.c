/*
 * fib with an OpenMP task per call (see baseline_omp.h). libgomp queues the
 * tasks of a team in one priority queue under one team lock, and runs a new
 * task at once instead of queueing it when the team already has more than
 * 64 per thread queued; both shape its figures (docs/benchmarks.md).
 */
#include "baseline_omp.h"

#include <omp.h>

static int64_t fib(int n)
{
    if (n < 2)
        return n;
    int64_t x, y;
#pragma omp task shared(x)
    x = fib(n - 1);
    y = fib(n - 2);
#pragma omp taskwait
    return x + y;
}

int64_t baseline_omp_fib(int n, int threads)
{
    int64_t result = 0;
    omp_set_num_threads(threads);
#pragma omp parallel
#pragma omp single
    result = fib(n);
    return result;
}
