/*
 * timeline.c — record a trace of a program that uses a thread pool, a
 * process pool (one of whose workers crashes) and coroutines; print each
 * pool's statistics and the thread dump; open the trace in Perfetto.
 *
 * What Python offers nearby: viztracer or `python -X importtime`-style
 * tracing, and faulthandler.dump_traceback() for the dump. Here the
 * timeline is concur's own: cc_trace_start / cc_trace_stop write Chrome
 * trace-event JSON (see docs/observability.md, "Opening it in Perfetto").
 *
 * Usage: timeline [TRACE.json]   (default /tmp/concur-timeline.json)
 * Then open https://ui.perfetto.dev and drop the file on it: one track per
 * thread, one process per pool worker (the crashed one and the one that
 * replaced it), one async track per coroutine.
 */
#include <concur.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- a process pool task: squares its input; 13 crashes its worker ---- */

static int square(const void *in, size_t len, void **out, size_t *out_len)
{
    long v;
    if (len != sizeof v)
        return cc_task_fail(-EINVAL, "expected a long");
    memcpy(&v, in, sizeof v);
    if (v == 13) { /* the pool replaces the worker, fails this task */
        signal(SIGSEGV, SIG_DFL);
        raise(SIGSEGV);
    }
    long *r = malloc(sizeof *r);
    if (!r)
        return -ENOMEM;
    *r = v * v;
    *out = r;
    *out_len = sizeof *r;
    return 0;
}
CC_TASK_REGISTER(square);

/* ---- a thread pool task: a little work under a named lock ------------- */

static cc_lock ledger;

static int add_to_ledger(void *arg, void **result)
{
    (void)result;
    cc_lock_acquire(&ledger, CC_FOREVER);
    cc_sleep(CC_MSEC(2)); /* the others wait: "blocked: lock ledger" */
    (*(long *)arg)++;
    cc_lock_release(&ledger);
    return 0;
}

/* ---- coroutines: two fetchers that sleep (await) between steps -------- */

static int fetch(void *arg, void **result)
{
    (void)arg;
    (void)result;
    for (int step = 0; step < 3; step++)
        cc_async_sleep(CC_MSEC(5));
    return 0;
}

static int fetch_all(void *arg, void **result)
{
    (void)arg;
    (void)result;
    cc_future *a, *b;
    cc_create_task(fetch, NULL, &a);
    cc_create_task(fetch, NULL, &b);
    cc_name_set(a, "fetch page 1"); /* the async tracks' names */
    cc_name_set(b, "fetch page 2");
    int rc = cc_gather((cc_future *[]){a, b}, 2);
    cc_name_clear(a);
    cc_name_clear(b);
    cc_future_unref(a);
    cc_future_unref(b);
    return rc;
}

static void print_stats(cc_executor *ex, const char *what)
{
    cc_pool_stats s;
    if (cc_executor_stats(ex, &s) != 0)
        return;
    printf("%s: submitted %llu, completed %llu, failed %llu, "
           "worker restarts %llu\n",
           what, (unsigned long long)s.submitted,
           (unsigned long long)s.completed, (unsigned long long)s.failed,
           (unsigned long long)s.worker_restarts);
}

int main(int argc, char **argv)
{
    const char *path = argc > 1 ? argv[1] : "/tmp/concur-timeline.json";
    cc_process_init(); /* workers fork from a clean launcher */
    if (cc_trace_start(path, 0) != 0) {
        fprintf(stderr, "timeline: cannot trace to %s\n", path);
        return 1;
    }

    cc_lock_init(&ledger, 0);
    cc_name_set(&ledger, "ledger");
    cc_executor *threads;
    cc_thread_pool_options to = {.max_workers = 3,
                                 .thread_name_prefix = "clerk"};
    cc_thread_pool_new(&threads, &to);
    long total = 0;
    cc_future *fs[12];
    for (int i = 0; i < 12; i++)
        cc_executor_submit(threads, add_to_ledger, &total, &fs[i]);

    cc_executor *procs;
    cc_process_pool_options po = {.max_workers = 2};
    cc_process_pool_new(&procs, &po);
    cc_name_set(procs, "squarers");
    cc_future *ps[16];
    for (long v = 0; v < 16; v++)
        cc_executor_submit_bytes(procs, CC_TASK(square), &v, sizeof v, &ps[v]);

    cc_run(fetch_all, NULL, NULL);

    /* While the pools finish, a snapshot of every thread and pool. */
    cc_dump(stdout);
    for (int i = 0; i < 12; i++) {
        cc_future_wait(fs[i], CC_FOREVER);
        cc_future_unref(fs[i]);
    }
    int lost = 0;
    for (int i = 0; i < 16; i++) {
        lost += cc_future_error(ps[i], CC_FOREVER) == CC_EWORKER_LOST;
        cc_future_unref(ps[i]);
    }
    cc_executor_shutdown(threads, true, false);
    cc_executor_shutdown(procs, true, false);
    printf("ledger total %ld; %d task lost with its worker\n", total, lost);
    print_stats(threads, "thread pool \"clerk\"");
    print_stats(procs, "process pool \"squarers\"");
    cc_executor_free(threads);
    cc_executor_free(procs);
    cc_lock_destroy(&ledger);

    long events = cc_trace_stop();
    printf("trace: %ld events in %s; open it at https://ui.perfetto.dev\n",
           events, path);
    return events > 0 && total == 12 && lost == 1 ? 0 : 1;
}
