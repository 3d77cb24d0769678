/*
 * thread_pool_executor.c — a pool of three workers runs task(name) for the
 * names 0, 1 and 2 through map. Each task waits about two seconds (standing
 * in for I/O); the three run at once on the three workers, so the whole run
 * takes about two seconds, not six.
 *
 * The Python it mirrors (concurrent.futures):
 *
 *     from concurrent.futures import ThreadPoolExecutor
 *     import time
 *
 *     def task(name):
 *         print(f"Thread {name} starting")
 *         time.sleep(2)            # simulate I/O
 *         print(f"Thread {name} finished")
 *
 *     with ThreadPoolExecutor(max_workers=3) as executor:
 *         executor.map(task, [0, 1, 2])
 *
 * How it maps:
 *   - ThreadPoolExecutor(max_workers=3)  cc_thread_pool_new with options;
 *   - executor.map(task, [0, 1, 2])      cc_executor_map over an array of
 *     argument pointers (C has no tuples: one struct per call);
 *   - leaving the `with` block           cc_executor_free, which shuts the
 *     pool down and waits for every task, as __exit__ does.
 * Python's map returns a lazy iterator that this program never reads; a
 * task's exception would then be lost silently. Here the results are read
 * with cc_map_next, so a failed task is reported.
 *
 * Usage: thread_pool_executor [SECONDS]   how long each task takes
 * (default 2).
 */
#include <concur.h>

#include <stdio.h>
#include <stdlib.h>

enum { N_TASKS = 3 };

struct task_args {
    int name;
    cc_duration duration;
};

/* An executor task: fn(arg, &result) returns 0 or a negative error code.
 * This one has no result to give (the result stays NULL). */
static int task(void *arg, void **result)
{
    const struct task_args *args = arg;
    printf("Thread %d starting\n", args->name);
    cc_sleep(args->duration); /* simulate I/O */
    printf("Thread %d finished\n", args->name);
    return 0;
}

static void check(int rc, const char *what)
{
    if (rc < 0) {
        fprintf(stderr, "thread_pool_executor: %s: %s\n", what,
                cc_strerror(rc));
        exit(1);
    }
}

int main(int argc, char **argv)
{
    cc_duration duration =
        argc > 1 ? cc_seconds(strtod(argv[1], NULL)) : CC_SEC(2);
    if (duration < 0) {
        fprintf(stderr, "usage: thread_pool_executor [SECONDS]\n");
        return 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    int64_t start = cc_monotonic_ns();

    cc_executor *executor;
    cc_thread_pool_options opts = {.max_workers = 3};
    check(cc_thread_pool_new(&executor, &opts), "cc_thread_pool_new");

    struct task_args args[N_TASKS];
    void *arg_ptrs[N_TASKS];
    for (int i = 0; i < N_TASKS; i++) {
        args[i] = (struct task_args){.name = i, .duration = duration};
        arg_ptrs[i] = &args[i];
    }
    cc_map *map;
    check(cc_executor_map(executor, task, arg_ptrs, N_TASKS, NULL, &map),
          "cc_executor_map");
    int rc;
    size_t index;
    while ((rc = cc_map_next(map, NULL, &index)) == 1)
        ;
    if (rc < 0)
        fprintf(stderr, "task %zu failed: %s\n", index, cc_strerror(rc));
    cc_map_free(map);
    cc_executor_free(executor); /* the end of the `with` block */

    double elapsed = (double)(cc_monotonic_ns() - start) / 1e9;
    double one = (double)duration / 1e9;
    printf("%d tasks of %.2f s each on 3 workers took %.2f s (%.2f s one "
           "after another)\n",
           N_TASKS, one, elapsed, N_TASKS * one);
    if (rc < 0)
        return 1;
    if (duration > 0 && elapsed >= N_TASKS * one) {
        printf("the tasks did not overlap\n");
        return 1;
    }
    return 0;
}
