/*
 * async_downloads.c — many concurrent "downloads" on one thread: each task
 * sleeps for a while (standing in for network I/O), so the waits overlap
 * and ten downloads of up to a second take about a second, not five.
 *
 * The Python it mirrors (asyncio):
 *
 *     import asyncio, random
 *
 *     async def download(i):
 *         delay = random.uniform(0.1, 1.0)
 *         await asyncio.sleep(delay)          # network I/O
 *         print(f"download {i} done after {delay:.2f}s")
 *         return i * 100                      # bytes "downloaded"
 *
 *     async def main():
 *         sizes = await asyncio.gather(*(download(i) for i in range(10)))
 *         print("total", sum(sizes), "bytes")
 *
 *     asyncio.run(main())
 *
 * A coroutine is a plain C function (a cc_task_fn) run as a task; its
 * waits (cc_async_sleep, cc_await, ...) suspend it and let the others run.
 *
 * Usage: async_downloads [N [MAX_SECONDS]]   (default 10 downloads, 1.0 s)
 */
#include <concur.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

typedef struct job {
    int id;
    double delay;
} job;

static int download(void *arg, void **result)
{
    job *j = arg;
    int rc = cc_async_sleep(cc_seconds(j->delay)); /* await asyncio.sleep */
    if (rc < 0)
        return rc; /* cancelled */
    printf("download %d done after %.2fs\n", j->id, j->delay);
    *result = (void *)(intptr_t)(j->id * 100);
    return 0;
}

typedef struct plan {
    int n;
    double max_seconds;
} plan;

static int main_task(void *arg, void **result)
{
    (void)result;
    plan *p = arg;
    job *jobs = calloc((size_t)p->n, sizeof *jobs);
    cc_future **tasks = calloc((size_t)p->n, sizeof *tasks);
    if (!jobs || !tasks)
        return -ENOMEM;
    srand(42);
    for (int i = 0; i < p->n; i++) {
        jobs[i].id = i;
        jobs[i].delay = 0.1 * p->max_seconds +
                        0.9 * p->max_seconds * rand() / (double)RAND_MAX;
        cc_create_task(download, &jobs[i], &tasks[i]);
    }
    int rc = cc_gather(tasks, (size_t)p->n); /* await asyncio.gather(...) */
    long total = 0;
    for (int i = 0; i < p->n; i++) {
        void *size;
        if (cc_future_result(tasks[i], CC_NOWAIT, &size) == 0)
            total += (long)(intptr_t)size;
        cc_future_unref(tasks[i]);
    }
    printf("total %ld bytes\n", total);
    free(tasks);
    free(jobs);
    return rc;
}

int main(int argc, char **argv)
{
    plan p = {argc > 1 ? atoi(argv[1]) : 10, argc > 2 ? atof(argv[2]) : 1.0};
    int64_t start = cc_monotonic_ns();
    int rc = cc_run(main_task, &p, NULL); /* asyncio.run(main()) */
    printf("%d downloads in %.2fs\n", p.n,
           (double)(cc_monotonic_ns() - start) / 1e9);
    if (rc < 0)
        fprintf(stderr, "failed: %s\n", cc_strerror(rc));
    return rc < 0;
}
