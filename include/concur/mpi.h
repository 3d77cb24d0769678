/*
 * concur/mpi.h — the MPI pool: an executor (concur/executor.h) whose
 * workers are the ranks of an MPI job, possibly on many machines, the way
 * mpi4py.futures serves Python with a static launch:
 *
 *     mpirun -np 4 ./program          # rank 0 submits, ranks 1..3 serve
 *
 * Python (mpi4py.futures)                     concur
 *   python -m mpi4py.futures prog.py          mpirun -np N ./prog, and
 *   with MPICommExecutor() as ex:             cc_mpi_pool_new(&ex, &opts)
 *       if ex is not None: ...                  (CC_MPI_SERVED on workers)
 *   ex.submit(fn, x)                          cc_executor_submit_bytes
 *   ex.map(fn, xs, chunksize=k)               cc_executor_map_bytes
 *   ex.map(..., unordered=True)               cc_map_options.unordered
 *   ex.shutdown(wait, cancel_futures)         cc_executor_shutdown
 *
 * Every rank runs the same program and calls cc_mpi_pool_new at the same
 * point. On rank 0 it returns 0 and an executor; on every other rank it
 * serves tasks until rank 0 shuts the pool down, then returns
 * CC_MPI_SERVED, and the program should exit:
 *
 *     cc_executor *ex;
 *     int rc = cc_mpi_pool_new(&ex, NULL);
 *     if (rc == CC_MPI_SERVED)
 *         return 0;               // a worker rank: its work is done
 *     if (rc < 0) ...             // cc_strerror(rc)
 *     cc_executor_submit_bytes(ex, CC_TASK(square), &x, sizeof x, &f);
 *     ...
 *     cc_executor_free(ex);       // workers return; MPI is finalized
 *
 * Tasks are the bytes tasks of concur/process.h (CC_TASK_REGISTER): they
 * are found by name on the worker rank, which runs the same binary. A
 * void * task (cc_executor_submit) is refused with -EINVAL. Errors come
 * back with their code and cc_task_fail message.
 *
 * MPI and threads: the pool makes every MPI call from one communication
 * thread of its own, so any thread may submit. If MPI is not initialized,
 * that thread initializes it (MPI_THREAD_FUNNELED: only the initializing
 * thread calls MPI) and finalizes it when the pool is freed, so a program
 * gets one pool per run. If the program initialized MPI itself, it must
 * have asked for MPI_THREAD_MULTIPLE (else -ENOTSUP); the pool then works
 * on a duplicate of MPI_COMM_WORLD, never finalizes, and pools can follow
 * one another (every rank calls cc_mpi_pool_new again).
 *
 * Failures: under MPI the death of a rank ends the whole job (mpirun kills
 * every rank); no library inside the job can prevent that. What concur
 * does and does not do is in docs/mpi.md.
 *
 * Build: this header belongs to the concur_mpi library (CMake option
 * CONCUR_WITH_MPI, target concur::concur_mpi), not to libconcur, so that
 * programs that do not use MPI never depend on it. It does not include
 * <mpi.h>.
 */
#ifndef CONCUR_MPI_H
#define CONCUR_MPI_H

#include <stdbool.h>
#include <stddef.h>

#include "concur/executor.h"
#include "concur/process.h"
#include "concur/time.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Returned by cc_mpi_pool_new on a worker rank once the pool is shut
 * down: the rank has served and the program should exit. Positive, so that
 * `rc < 0` checks do not take it for an error and `rc != 0` checks do not
 * take it for an executor. */
#define CC_MPI_SERVED 1

#define CC_MPI_WINDOW_DEFAULT 4u
#define CC_MPI_WINDOW_MAX 1024u

typedef struct cc_mpi_pool_options {
    /* Tasks sent ahead to each worker rank before its earlier ones have
     * returned (0: CC_MPI_WINDOW_DEFAULT; at most CC_MPI_WINDOW_MAX). A
     * worker runs its tasks one at a time, in order; the window hides the
     * round trip to rank 0 between them. 1 behaves as mpi4py.futures. A
     * task counts as RUNNING (it can no longer be cancelled) from the
     * moment it is sent. */
    unsigned window;
    /* Largest input or output of one task, in bytes (0: the most,
     * CC_MPI_PAYLOAD_MAX = 1 GiB, which keeps one task in one MPI message
     * of MPI_BYTE, whose count is an int; more: -EINVAL).
     * Larger inputs are refused with -EMSGSIZE; a larger output fails its
     * task with -EMSGSIZE. */
    size_t max_payload;
    /* A task that runs longer than this on a worker rank fails with
     * -ETIMEDOUT. MPI cannot stop one rank without ending the job, so the
     * rank is retired instead: it gets no more tasks, the tasks already
     * sent to it fail with CC_EWORKER_LOST (it skips them if it ever
     * comes back), and if it is still busy when the pool shuts down,
     * concur ends the job with MPI_Abort after shutdown_grace rather than
     * hang. 0 or CC_FOREVER: no limit. */
    cc_duration task_time_limit;
    /* See task_time_limit. 0: 10 s. */
    cc_duration shutdown_grace;
} cc_mpi_pool_options;

#define CC_MPI_PAYLOAD_MAX ((size_t)1 << 30)

/*
 * Creates the MPI pool: collective over MPI_COMM_WORLD, every rank must
 * call it (each with the same options; rank 0's are the ones used). MPI is
 * initialized if it is not (see above).
 *
 * Rank 0: returns 0 and the executor in *out. Blocks until every rank has
 * joined (MPI start-up).
 * Other ranks: serve tasks in the pool's thread until rank 0 shuts the
 * pool down, then return CC_MPI_SERVED with *out NULL.
 *
 * Errors (every rank returns the same one when the ranks got as far as
 * agreeing): -EINVAL (out NULL, a bad option), -ECHILD (the job has one
 * rank: nobody to serve tasks), -ENOTSUP (MPI was initialized by the
 * program with less than MPI_THREAD_MULTIPLE, or MPI offers less than
 * MPI_THREAD_FUNNELED), -EPROTO (the ranks run different builds: byte
 * order, word size or protocol version differ), -EBUSY (a pool is already
 * live in this process), -EALREADY (concur finalized MPI when an earlier
 * pool was freed; MPI cannot start twice), -EIO (an MPI call failed; a
 * line goes to stderr), -ENOMEM, -errno (thread creation).
 */
int cc_mpi_pool_new(cc_executor **out, const cc_mpi_pool_options *opts);

/*
 * Whether this process was started by an MPI launcher (mpirun, mpiexec,
 * srun with PMIx/PMI), judged from the environment the launcher sets,
 * without initializing MPI. If so, *rank and *size (either may be NULL)
 * get the process's rank and the job's size when the environment says,
 * else -1. For tools (`concur compare`, `concur bench`) that must decide
 * whether to run MPI figures. Never fails; thread-safe.
 */
bool cc_mpi_launched(int *rank, int *size);

#ifdef __cplusplus
}
#endif

#endif /* CONCUR_MPI_H */
