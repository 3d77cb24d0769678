/*
 * An outside program using an installed concur's MPI pool (concur/mpi.h),
 * linked through find_package(concur COMPONENTS mpi) or pkg-config
 * concur-mpi. Run under `mpirun -np 3`: rank 0 maps a registered task over
 * the two worker ranks and checks every result; every rank exits 0 only
 * if all is right.
 */
#include <concur.h>
#include <concur/mpi.h>

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

static int triple(const void *in, size_t len, void **out, size_t *out_len)
{
    int64_t x;
    if (len != sizeof x)
        return cc_task_fail(-EINVAL, "expected 8 bytes, got %zu", len);
    memcpy(&x, in, sizeof x);
    int64_t *r = cc_task_output(sizeof *r);
    if (!r)
        return -ENOMEM;
    *r = 3 * x;
    *out = r;
    *out_len = sizeof *r;
    return 0;
}
CC_TASK_REGISTER(triple);

#define CHECK(cond)                                                        \
    do {                                                                   \
        if (!(cond)) {                                                     \
            fprintf(stderr, "mpi consumer: check failed: %s (line %d)\n",  \
                    #cond, __LINE__);                                      \
            return 1;                                                      \
        }                                                                  \
    } while (0)

int main(void)
{
    enum { N = 100 };
    cc_executor *ex;
    int rc = cc_mpi_pool_new(&ex, NULL);
    if (rc == CC_MPI_SERVED)
        return 0;
    CHECK(rc == 0);
    CHECK(cc_executor_max_workers(ex) == 2);
    int64_t xs[N];
    const void *ins[N];
    size_t lens[N];
    for (int i = 0; i < N; i++) {
        xs[i] = i;
        ins[i] = &xs[i];
        lens[i] = sizeof xs[i];
    }
    cc_map_options o = CC_MAP_OPTIONS_DEFAULT;
    o.chunksize = 7;
    cc_bytes_map *m;
    CHECK(cc_executor_map_bytes(ex, CC_TASK(triple), ins, lens, N, &o, &m) ==
          0);
    const void *data;
    size_t len, idx, count = 0;
    while ((rc = cc_bytes_map_next(m, &data, &len, &idx)) == 1) {
        int64_t v;
        CHECK(len == sizeof v && idx == count);
        memcpy(&v, data, sizeof v);
        CHECK(v == 3 * (int64_t)idx);
        count++;
    }
    CHECK(rc == 0 && count == N);
    cc_bytes_map_free(m);
    cc_executor_free(ex);
    printf("mpi consumer: ok\n");
    return 0;
}
