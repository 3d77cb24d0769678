/*
 * three_tasks.c — three threads each run task(name), which waits about two
 * seconds (standing in for I/O). Because the waits overlap, the whole run
 * takes about two seconds, not six.
 *
 * The Python it mirrors (threading):
 *
 *     import threading, time
 *
 *     def task(name):
 *         print(f"Thread {name} starting")
 *         time.sleep(2)            # simulate a time-consuming task (I/O)
 *         print(f"Thread {name} finished")
 *
 *     threads = [threading.Thread(target=task, args=(i,)) for i in range(3)]
 *     for t in threads:
 *         t.start()
 *     for t in threads:
 *         t.join()
 *
 * Python's args=(i,) becomes a pointer to a struct holding the arguments;
 * the struct must stay valid until the thread is done with it.
 *
 * Usage: three_tasks [SECONDS]   how long each task takes (default 2).
 */
#include <concur.h>

#include <stdio.h>
#include <stdlib.h>

enum { N_TASKS = 3 };

struct task_args {
    int name;
    cc_duration duration;
};

static int task(void *ctx)
{
    const struct task_args *args = ctx;
    printf("Thread %d starting\n", args->name);
    cc_sleep(args->duration);
    printf("Thread %d finished\n", args->name);
    return 0;
}

static void check(int rc, const char *what)
{
    if (rc < 0) {
        fprintf(stderr, "three_tasks: %s: %s\n", what, cc_strerror(rc));
        exit(1);
    }
}

int main(int argc, char **argv)
{
    cc_duration duration = argc > 1 ? cc_seconds(strtod(argv[1], NULL)) : CC_SEC(2);
    if (duration < 0) {
        fprintf(stderr, "usage: three_tasks [SECONDS]\n");
        return 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);

    struct task_args args[N_TASKS];
    cc_thread *threads[N_TASKS];
    int64_t start = cc_monotonic_ns();

    for (int i = 0; i < N_TASKS; i++) {
        args[i] = (struct task_args){.name = i, .duration = duration};
        check(cc_thread_new(&threads[i], task, &args[i], NULL), "new");
    }
    for (int i = 0; i < N_TASKS; i++)
        check(cc_thread_start(threads[i]), "start");
    for (int i = 0; i < N_TASKS; i++) {
        check(cc_thread_join(threads[i], CC_FOREVER), "join");
        cc_thread_unref(threads[i]);
    }

    double elapsed = (double)(cc_monotonic_ns() - start) / 1e9;
    double one = (double)duration / 1e9;
    printf("%d tasks of %.2f s each took %.2f s in total (%.2f s one after "
           "another)\n", N_TASKS, one, elapsed, N_TASKS * one);

    /* Run one after another they would need N_TASKS * duration at least. */
    if (duration > 0 && elapsed >= N_TASKS * one) {
        printf("the tasks did not overlap\n");
        return 1;
    }
    printf("the tasks overlapped\n");
    return 0;
}
