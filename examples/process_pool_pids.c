/*
 * process_pool_pids.c — a pool of three worker processes maps a task over
 * [0, 1, 2]; each task prints the PID of the worker running it.
 *
 * The Python it mirrors (concurrent.futures):
 *
 *     from concurrent.futures import ProcessPoolExecutor
 *     import os
 *
 *     def task(name):
 *         print(f"Process {name} running on PID: {os.getpid()}")
 *
 *     with ProcessPoolExecutor(max_workers=3) as executor:
 *         executor.map(task, [0, 1, 2])
 *
 * A task that crosses into another process is identified by a registered
 * name (CC_TASK_REGISTER) and takes and returns bytes — the C counterpart
 * of pickling a function and its argument. Tasks this tiny often all land
 * on the first worker to start, exactly as in Python; pass a number of
 * tasks to see several PIDs.
 *
 * Usage: process_pool_pids [TASKS]   (default 3)
 */
#include <concur.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int task(const void *in, size_t len, void **out, size_t *out_len)
{
    int name;
    if (len != sizeof name)
        return cc_task_fail(-EINVAL, "expected an int, got %zu bytes", len);
    memcpy(&name, in, sizeof name);
    printf("Process %d running on PID: %ld\n", name, (long)getpid());
    fflush(stdout);
    (void)out;
    (void)out_len;
    return 0; /* no result: Python's task returns None */
}
CC_TASK_REGISTER(task);

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 3;
    if (n < 1 || n > 100000) {
        fprintf(stderr, "usage: process_pool_pids [TASKS]\n");
        return 2;
    }
    int rc = cc_process_init(); /* before any thread: see docs/process.md */
    if (rc < 0) {
        fprintf(stderr, "cc_process_init: %s\n", cc_strerror(rc));
        return 1;
    }
    cc_process_pool_options opts = {.max_workers = 3};
    cc_executor *executor;
    if ((rc = cc_process_pool_new(&executor, &opts)) < 0) {
        fprintf(stderr, "cc_process_pool_new: %s\n", cc_strerror(rc));
        return 1;
    }
    int *names = malloc((size_t)n * sizeof *names);
    const void **inputs = malloc((size_t)n * sizeof *inputs);
    size_t *lens = malloc((size_t)n * sizeof *lens);
    if (!names || !inputs || !lens)
        return 1;
    for (int i = 0; i < n; i++) {
        names[i] = i;
        inputs[i] = &names[i];
        lens[i] = sizeof names[i];
    }
    /* One task per element, as Python's default chunksize of 1. */
    cc_map_options mo = CC_MAP_OPTIONS_DEFAULT;
    cc_bytes_map *map;
    rc = cc_executor_map_bytes(executor, CC_TASK(task), inputs, lens,
                               (size_t)n, &mo, &map);
    if (rc < 0) {
        fprintf(stderr, "map: %s\n", cc_strerror(rc));
        return 1;
    }
    size_t index;
    while ((rc = cc_bytes_map_next(map, NULL, NULL, &index)) == 1) {
    }
    if (rc < 0)
        fprintf(stderr, "task %zu failed: %s\n", index, cc_strerror(rc));
    cc_bytes_map_free(map);
    cc_executor_free(executor); /* the end of Python's with-block */
    free(names);
    free(inputs);
    free(lens);
    return rc < 0;
}
