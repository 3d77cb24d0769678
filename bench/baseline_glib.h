/*
 * bench/baseline_glib.h — GLib's GThreadPool, a second baseline of
 * `concur bench pool` (pool_empty_tasks_glib). Built from baseline_glib.c
 * only when pkg-config finds glib-2.0 (CONCUR_BENCH_HAVE_GLIB).
 *
 * GThreadPool has no futures: the closest equivalent of "submit N tasks and
 * wait for them" is N pushes and a countdown that the last task signals, so
 * this side does less per task than concur (no future is created, completed
 * or waited on).
 */
#ifndef CONCUR_BENCH_BASELINE_GLIB_H
#define CONCUR_BENCH_BASELINE_GLIB_H

#include <stdint.h>

typedef struct baseline_glib baseline_glib;

/* An exclusive GThreadPool of `workers` threads, all started at once.
 * Returns 0 or a negative errno code. */
int baseline_glib_new(baseline_glib **out, unsigned workers);

/* Pushes n empty tasks, waits until all have run and returns the
 * nanoseconds that took, or a negative errno code. */
int64_t baseline_glib_empty_tasks(baseline_glib *g, uint64_t n);

/* Waits for queued tasks, stops the threads and frees. */
void baseline_glib_free(baseline_glib *g);

#endif /* CONCUR_BENCH_BASELINE_GLIB_H */
