/*
 * The mpi row of `concur compare` in a build without MPI (compare.h): no
 * rank, no pool, and the reason for the row.
 */
#include "commands.h"
#include "compare.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

int cmp_mpi_rank(void)
{
    return -1;
}

int cmp_mpi_serve(void)
{
    return TOOL_EXIT_FAILED;
}

int cmp_mpi_start(char *err, size_t cap)
{
    snprintf(err, cap, "%s", cmp_mpi_unavailable());
    return -ENOTSUP;
}

void cmp_mpi_stop(void)
{
}

struct cc_executor *cmp_mpi_executor(void)
{
    return NULL;
}

const char *cmp_mpi_unavailable(void)
{
    return "concur is built without MPI";
}

void cmp_mpi_run_once(const cmp_params *p, cmp_sample *s)
{
    (void)p;
    memset(s, 0, sizeof *s);
    snprintf(s->note, sizeof s->note, "%s", cmp_mpi_unavailable());
}
