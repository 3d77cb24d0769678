/*
 * as_completed_downloads.c — "downloads" of different lengths run on a pool
 * of four workers, and the main thread handles each one as soon as it has
 * finished, whatever the order they were started in. One download fails,
 * to show how an error and its message come back.
 *
 * The Python it mirrors (the concurrent.futures documentation's example):
 *
 *     from concurrent.futures import ThreadPoolExecutor, as_completed
 *
 *     def load_url(url, seconds):
 *         time.sleep(seconds)                  # the network, simulated
 *         if url.endswith("/broken"):
 *             raise ConnectionError(f"connection reset by {url}")
 *         return b"x" * size_of(url)
 *
 *     with ThreadPoolExecutor(max_workers=4) as executor:
 *         future_to_url = {executor.submit(load_url, url, s): url
 *                          for url, s in DOWNLOADS}
 *         for future in as_completed(future_to_url):
 *             url = future_to_url[future]
 *             try:
 *                 data = future.result()
 *             except Exception as exc:
 *                 print(f"{url} generated an exception: {exc}")
 *             else:
 *                 print(f"{url} page is {len(data)} bytes")
 *
 * How it maps:
 *   - executor.submit(fn, args)   cc_executor_submit(ex, fn, &args, &future):
 *     the arguments live in a struct that outlives the task;
 *   - raise in the task           return cc_task_fail(code, fmt, ...): the
 *     future carries the code and the message;
 *   - as_completed(futures)       cc_as_completed_new + _next: each future
 *     is yielded once, in the order the downloads finish;
 *   - future.result()             cc_future_result: 0 and the result, or
 *     the task's error code (cc_future_error_message has its message);
 *   - the dict future -> url      the task's own struct, found by position.
 *
 * Usage: as_completed_downloads [SCALE]   multiplies every duration
 * (default 1: the longest download takes 1.2 s).
 */
#include <concur.h>

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct download {
    const char *url;
    double seconds; /* how long the transfer takes */
    size_t bytes;   /* what it delivers */
};

static struct download downloads[] = {
    {"http://example.com/big-video", 1.2, 48000000},
    {"http://example.com/index.html", 0.2, 1256},
    {"http://example.com/photo.jpg", 0.7, 350000},
    {"http://example.com/broken", 0.4, 0},
    {"http://example.com/style.css", 0.1, 4200},
    {"http://example.com/report.pdf", 0.9, 2100000},
};

enum { N_DOWNLOADS = sizeof downloads / sizeof downloads[0] };

struct job {
    const struct download *download;
    double scale;
};

/* The task: sleeps for the transfer, then returns the size (as the void *
 * result) or fails. */
static int load_url(void *arg, void **result)
{
    struct job *job = arg;
    cc_sleep(cc_seconds(job->download->seconds * job->scale));
    if (strstr(job->download->url, "/broken"))
        return cc_task_fail(-ECONNRESET, "connection reset by %s",
                            job->download->url);
    *result = (void *)(uintptr_t)job->download->bytes;
    return 0;
}

static void check(int rc, const char *what)
{
    if (rc < 0) {
        fprintf(stderr, "as_completed_downloads: %s: %s\n", what,
                cc_strerror(rc));
        exit(1);
    }
}

int main(int argc, char **argv)
{
    double scale = argc > 1 ? strtod(argv[1], NULL) : 1.0;
    if (!(scale >= 0)) {
        fprintf(stderr, "usage: as_completed_downloads [SCALE]\n");
        return 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);

    cc_executor *executor;
    cc_thread_pool_options opts = {.max_workers = 4};
    check(cc_thread_pool_new(&executor, &opts), "cc_thread_pool_new");

    int64_t start = cc_monotonic_ns();
    struct job jobs[N_DOWNLOADS];
    cc_future *futures[N_DOWNLOADS];
    for (int i = 0; i < N_DOWNLOADS; i++) {
        jobs[i] = (struct job){&downloads[i], scale};
        check(cc_executor_submit(executor, load_url, &jobs[i], &futures[i]),
              "cc_executor_submit");
    }

    cc_as_completed *it;
    check(cc_as_completed_new(&it, futures, N_DOWNLOADS, CC_FOREVER),
          "cc_as_completed_new");
    int failures = 0;
    cc_future *done;
    while (cc_as_completed_next(it, &done) == 1) {
        int i = 0;
        while (futures[i] != done) /* the dict lookup of the Python */
            i++;
        double at = (double)(cc_monotonic_ns() - start) / 1e9;
        void *value;
        int rc = cc_future_result(done, CC_NOWAIT, &value);
        if (rc < 0) {
            const char *message = cc_future_error_message(done);
            printf("%5.2f s  %s generated an exception: %s\n", at,
                   downloads[i].url, message ? message : cc_strerror(rc));
            failures++;
        } else {
            printf("%5.2f s  %s page is %zu bytes\n", at, downloads[i].url,
                   (size_t)(uintptr_t)value);
        }
    }
    cc_as_completed_free(it);
    for (int i = 0; i < N_DOWNLOADS; i++)
        cc_future_unref(futures[i]);
    cc_executor_free(executor);

    printf("%d downloads, %d failed, in %.2f s\n", N_DOWNLOADS, failures,
           (double)(cc_monotonic_ns() - start) / 1e9);
    /* Exactly the one broken download fails: anything else is a bug. */
    return failures == 1 ? 0 : 1;
}
