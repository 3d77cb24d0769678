/*
 * GThreadPool as a baseline (see baseline_glib.h). Every push hands the
 * pool the same non-NULL pointer (GAsyncQueue refuses NULL); the tasks count
 * down `remaining` and the last one signals the waiting submitter.
 */
#include "baseline_glib.h"

#include <errno.h>
#include <glib.h>
#include <stdio.h>
#include <stdlib.h>

#include "bench.h"

#if defined(__SANITIZE_THREAD__)
/* GLib is not built with ThreadSanitizer: its own synchronization (futexes,
 * uninstrumented atomics) is invisible to TSan, which then reports races
 * between GLib's pool threads and the main thread on memory GLib hands
 * over (seen: free() in a GThreadPool thread against the main thread's
 * earlier write, no concur frame in either stack). Ignore what GLib's code
 * does; concur's own code stays fully checked. TSan reads this hook at
 * start-up, so it holds whatever TSAN_OPTIONS says. */
const char *__tsan_default_suppressions(void);
const char *__tsan_default_suppressions(void)
{
    return "called_from_lib:libglib-2.0.so\n"
           "race:libglib-2.0.so\n";
}
#endif

struct baseline_glib {
    GThreadPool *pool;
    GMutex mutex;
    GCond cond;     /* the last task of a batch signals it */
    gint remaining; /* atomic: tasks of the batch not yet run */
};

static void glib_task(gpointer data, gpointer user_data)
{
    baseline_glib *g = user_data;
    if (g_atomic_int_dec_and_test(&g->remaining)) {
        /* Under the mutex: the waiter tests `remaining` holding it. */
        g_mutex_lock(&g->mutex);
        g_cond_signal(&g->cond);
        g_mutex_unlock(&g->mutex);
    }
}

int baseline_glib_new(baseline_glib **out, unsigned workers)
{
    baseline_glib *g = calloc(1, sizeof *g);
    if (!g)
        return -ENOMEM;
    g_mutex_init(&g->mutex);
    g_cond_init(&g->cond);
    GError *err = NULL;
    g->pool = g_thread_pool_new(glib_task, g, (gint)workers, TRUE, &err);
    if (!g->pool) {
        fprintf(stderr, "concur bench: g_thread_pool_new: %s\n",
                err ? err->message : "failed");
        if (err)
            g_error_free(err);
        g_cond_clear(&g->cond);
        g_mutex_clear(&g->mutex);
        free(g);
        return -EAGAIN;
    }
    *out = g;
    return 0;
}

int64_t baseline_glib_empty_tasks(baseline_glib *g, uint64_t n)
{
    if (n == 0 || n > (uint64_t)G_MAXINT)
        return -EINVAL;
    g_atomic_int_set(&g->remaining, (gint)n);
    int64_t t0 = bench_now_ns();
    for (uint64_t i = 0; i < n; i++) {
        GError *err = NULL;
        /* The task is queued even when push reports an error (it could
         * not start another thread; an exclusive pool never needs to), so
         * the countdown still reaches zero. */
        g_thread_pool_push(g->pool, g, &err);
        if (err)
            g_error_free(err);
    }
    g_mutex_lock(&g->mutex);
    while (g_atomic_int_get(&g->remaining) > 0)
        g_cond_wait(&g->cond, &g->mutex);
    g_mutex_unlock(&g->mutex);
    return bench_now_ns() - t0;
}

void baseline_glib_free(baseline_glib *g)
{
    if (!g)
        return;
    g_thread_pool_free(g->pool, FALSE, TRUE);
    g_cond_clear(&g->cond);
    g_mutex_clear(&g->mutex);
    free(g);
}
