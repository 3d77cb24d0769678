/*
 * concur/compare.h — the signature of a user task for
 *
 *     concur compare --task LIB.so:FUNCTION [--tasks N] [--model ...]
 *
 * which runs FUNCTION(0), FUNCTION(1), ... FUNCTION(N-1) under every model
 * (sequential, one thread per task, thread pool, process pool, event loop)
 * and prints how long each took, as for the built-in workloads.
 *
 * Write the function in C, compile it as a shared object, and name both:
 *
 *     #include <concur/compare.h>
 *
 *     CC_COMPARE_TASK(my_task);   // exported, and the signature checked
 *
 *     int my_task(uint64_t index, uint64_t *checksum)
 *     {
 *         uint64_t s = 0;
 *         for (uint64_t k = 0; k < 1000000; k++)
 *             s += (index * k) % 7;
 *         *checksum = s;
 *         return 0;
 *     }
 *
 *     cc -O2 -shared -fPIC my_task.c -o libmytask.so
 *     concur compare --task ./libmytask.so:my_task --tasks 64
 *
 * The contract:
 *   - index runs over [0, --tasks). Each call is one task; the models differ
 *     only in how calls are spread over threads and processes.
 *   - Return 0 on success, with *checksum set to any value that depends on
 *     the work (a count, a sum). The tool adds the checksums of all tasks
 *     and warns when two models disagree, which catches a task that is not
 *     safe to run concurrently. Return a negative errno code on failure.
 *   - The function is called from several threads at once (threads,
 *     thread_pool) and from several processes (process_pool): it must be
 *     thread-safe and must not rely on state set up by another call.
 *   - process_pool workers load the library themselves: each worker calls
 *     dlopen on the same absolute path and dlsym on FUNCTION (once per
 *     worker), so the library must be loadable by path and FUNCTION must be
 *     an exported symbol: not static, and with default visibility even
 *     under -fvisibility=hidden (CC_COMPARE_TASK does both).
 *   - Under async the function runs on the event loop's thread, one call at
 *     a time, as any blocking call would in asyncio: the async row shows
 *     what a plain function costs on an event loop, not a coroutine.
 *   - Each model runs in its own child process, so a task that crashes or
 *     hangs is reported (with --timeout as the limit) instead of taking the
 *     tool down. Under process_pool a crash fails only the task that
 *     crashed; under the in-process models it ends that model's run.
 */
#ifndef CONCUR_COMPARE_H
#define CONCUR_COMPARE_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* What FUNCTION must be. */
typedef int (*cc_compare_task_fn)(uint64_t index, uint64_t *checksum);

/* Declares fn as a task: a definition with another signature is then a
 * compile error (conflicting types), and the symbol is exported. */
#define CC_COMPARE_TASK(fn)                                                    \
    __attribute__((visibility("default"))) int fn(uint64_t index,              \
                                                  uint64_t *checksum)

#ifdef __cplusplus
}
#endif

#endif /* CONCUR_COMPARE_H */
