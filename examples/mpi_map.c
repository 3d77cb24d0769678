/*
 * mpi_map.c — a map over the ranks of an MPI job: rank 0 squares the
 * numbers 0..N-1 on the other ranks, which may be on other machines, and
 * prints each result with the rank and host that computed it.
 *
 * The Python it mirrors (mpi4py.futures, run with
 * `mpirun -np 3 python -m mpi4py.futures squares.py`):
 *
 *     from mpi4py import MPI
 *     from mpi4py.futures import MPIPoolExecutor
 *     import socket
 *
 *     def square(x):
 *         return x * x, MPI.COMM_WORLD.Get_rank(), socket.gethostname()
 *
 *     if __name__ == '__main__':
 *         with MPIPoolExecutor() as executor:
 *             for x, (sq, rank, host) in enumerate(
 *                     executor.map(square, range(10), chunksize=2)):
 *                 print(f"{x}^2 = {sq} (rank {rank} on {host})")
 *
 * Run it under mpirun; every rank runs this same program, rank 0 maps,
 * the others serve until it is done (see docs/mpi.md):
 *
 *     mpirun -np 3 ./mpi_map [N]          (default 10)
 *     mpirun -np 3 --hostfile hosts ./mpi_map 1000     (several machines)
 *
 * Started without mpirun it is an MPI job of one rank: nobody serves, and
 * cc_mpi_pool_new says so (-ECHILD).
 */
#include <concur.h>
#include <concur/mpi.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>

/* What a worker rank sends back for x. */
struct answer {
    int64_t square;
    int32_t rank;
    char host[sizeof(((struct utsname *)0)->nodename)];
};

static int square(const void *in, size_t len, void **out, size_t *out_len)
{
    int64_t x;
    if (len != sizeof x)
        return cc_task_fail(-EINVAL, "expected an int64, got %zu bytes", len);
    memcpy(&x, in, sizeof x);
    /* The output buffer comes from the library: in a chunk of a map it is
     * a slice of the chunk's result, so nothing is copied or freed. */
    struct answer *a = cc_task_output(sizeof *a);
    if (!a)
        return -ENOMEM;
    memset(a, 0, sizeof *a);
    a->square = x * x;
    int rank = -1;
    cc_mpi_launched(&rank, NULL); /* this worker's rank */
    a->rank = rank;
    struct utsname u;
    if (uname(&u) == 0)
        snprintf(a->host, sizeof a->host, "%s", u.nodename);
    *out = a;
    *out_len = sizeof *a;
    return 0;
}
CC_TASK_REGISTER(square);

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 10;
    if (n < 1 || n > 10000000) {
        fprintf(stderr, "usage: mpirun -np RANKS mpi_map [N]\n");
        return 2;
    }
    /* Every rank gets here; only rank 0 comes back with an executor. */
    cc_executor *executor;
    int rc = cc_mpi_pool_new(&executor, NULL);
    if (rc == CC_MPI_SERVED)
        return 0; /* a worker rank: rank 0 has shut the pool down */
    if (rc < 0) {
        fprintf(stderr, "cc_mpi_pool_new: %s%s\n", cc_strerror(rc),
                rc == -ECHILD ? " (start it with mpirun -np 3)" : "");
        return 1;
    }

    int64_t *xs = malloc((size_t)n * sizeof *xs);
    const void **inputs = malloc((size_t)n * sizeof *inputs);
    size_t *lens = malloc((size_t)n * sizeof *lens);
    if (!xs || !inputs || !lens) {
        fprintf(stderr, "out of memory\n");
        return 1;
    }
    for (long i = 0; i < n; i++) {
        xs[i] = i;
        inputs[i] = &xs[i];
        lens[i] = sizeof xs[i];
    }
    /* Two elements per message, like chunksize=2; 0 picks a size that
     * gives each worker rank about four chunks. */
    cc_map_options opts = CC_MAP_OPTIONS_DEFAULT;
    opts.chunksize = n <= 100 ? 2 : 0;
    cc_bytes_map *map = NULL;
    rc = cc_executor_map_bytes(executor, CC_TASK(square), inputs, lens,
                               (size_t)n, &opts, &map);
    long per_rank[1024] = {0};
    const void *data;
    size_t len, index;
    while (rc == 0 && (rc = cc_bytes_map_next(map, &data, &len, &index)) == 1) {
        struct answer a;
        memcpy(&a, data, sizeof a);
        if (n <= 100)
            printf("%zu^2 = %lld (rank %d on %s)\n", index,
                   (long long)a.square, a.rank, a.host);
        if (a.rank >= 0 && a.rank < 1024)
            per_rank[a.rank]++;
        rc = 0; /* next element */
    }
    if (rc < 0)
        fprintf(stderr, "map: %s%s%s\n", cc_strerror(rc),
                map && cc_bytes_map_error_message(map) ? ": " : "",
                map && cc_bytes_map_error_message(map)
                    ? cc_bytes_map_error_message(map)
                    : "");
    for (int r = 1; r < 1024; r++)
        if (per_rank[r])
            printf("rank %d computed %ld of %ld squares\n", r, per_rank[r], n);
    cc_bytes_map_free(map);
    free(xs);
    free(inputs);
    free(lens);
    /* Shuts the pool down: the worker ranks return from cc_mpi_pool_new
     * and MPI is finalized. */
    cc_executor_free(executor);
    return rc < 0 ? 1 : 0;
}
