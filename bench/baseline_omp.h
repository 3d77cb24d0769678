/*
 * bench/baseline_omp.h — OpenMP tasks, the baseline of the fork-join cases
 * of `concur bench pool`. Built from baseline_omp.c with -fopenmp only when
 * CMake finds OpenMP (CONCUR_BENCH_HAVE_OPENMP); everything else in bench/
 * is compiled without it.
 */
#ifndef CONCUR_BENCH_BASELINE_OMP_H
#define CONCUR_BENCH_BASELINE_OMP_H

#include <stdint.h>

/*
 * fib(n) with one OpenMP task per call, as concur's forkjoin_fib does it:
 * `#pragma omp task shared(x)` for fib(n - 1), fib(n - 2) inline, then
 * `#pragma omp taskwait`; no cut-off. Runs in a `parallel` + `single`
 * region of `threads` threads (omp_set_num_threads).
 */
int64_t baseline_omp_fib(int n, int threads);

#endif /* CONCUR_BENCH_BASELINE_OMP_H */
