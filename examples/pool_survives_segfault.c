/*
 * pool_survives_segfault.c — one task in ten dereferences a bad pointer.
 * Its worker process dies; only that task fails (CC_EWORKER_LOST, with the
 * signal in the message), the worker is replaced, and every other task
 * completes.
 *
 * In Python the same program stops at the first crash:
 *
 *     from concurrent.futures import ProcessPoolExecutor
 *     import ctypes
 *
 *     def task(i):
 *         if i % 10 == 7:
 *             ctypes.string_at(0)          # segfault
 *         return i * i
 *
 *     with ProcessPoolExecutor(2) as ex:
 *         futures = [ex.submit(task, i) for i in range(30)]
 *         for f in futures:
 *             print(f.result())            # BrokenProcessPool for all
 *                                          # futures still pending
 *
 * Usage: pool_survives_segfault [TASKS]   (default 30)
 */
#include <concur.h>

#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Unmapped; volatile so the compiler cannot see the fault coming. */
static volatile uintptr_t bad_address = 16;

static int task(const void *in, size_t len, void **out, size_t *out_len)
{
    long i;
    if (len != sizeof i)
        return cc_task_fail(-EINVAL, "bad input");
    memcpy(&i, in, sizeof i);
    if (i % 10 == 7)
        *(volatile int *)bad_address = 1; /* SIGSEGV: the worker dies */
    long *r = malloc(sizeof *r);
    if (!r)
        return -ENOMEM;
    *r = i * i;
    *out = r;
    *out_len = sizeof *r;
    return 0;
}
CC_TASK_REGISTER(task);

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 30;
    if (n < 1 || n > 10000) {
        fprintf(stderr, "usage: pool_survives_segfault [TASKS]\n");
        return 2;
    }
    cc_process_init();
    cc_process_pool_options opts = {.max_workers = 2};
    cc_executor *ex;
    int rc = cc_process_pool_new(&ex, &opts);
    if (rc < 0) {
        fprintf(stderr, "cc_process_pool_new: %s\n", cc_strerror(rc));
        return 1;
    }
    cc_future **fs = calloc((size_t)n, sizeof *fs);
    if (!fs)
        return 1;
    for (long i = 0; i < n; i++)
        if ((rc = cc_executor_submit_bytes(ex, CC_TASK(task), &i, sizeof i,
                                           &fs[i])) < 0) {
            fprintf(stderr, "submit: %s\n", cc_strerror(rc));
            return 1;
        }
    long ok = 0, lost = 0;
    for (long i = 0; i < n; i++) {
        const void *data;
        size_t len;
        rc = cc_future_result_bytes(fs[i], CC_FOREVER, &data, &len);
        if (rc == 0) {
            long v;
            memcpy(&v, data, sizeof v);
            printf("task %2ld -> %ld\n", i, v);
            ok++;
        } else {
            printf("task %2ld failed: %s: %s\n", i, cc_strerror(rc),
                   cc_future_error_message(fs[i]));
            lost += rc == CC_EWORKER_LOST;
        }
        cc_future_unref(fs[i]);
    }
    free(fs);
    cc_executor_free(ex);
    printf("%ld tasks succeeded, %ld lost with their worker, none hung\n",
           ok, lost);
    return ok + lost == n ? 0 : 1;
}
