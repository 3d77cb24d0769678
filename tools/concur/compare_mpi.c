/*
 * The mpi row of `concur compare` (compare.h): the tool started by
 * `mpirun -np N concur compare ...`, rank 0 comparing, the other ranks
 * serving its MPI pool (concur/mpi.h). Built when concur has MPI;
 * compare_mpi_off.c stands in otherwise.
 *
 * The ranks on this host are rank 0's siblings (mpirun starts them as its
 * own children): their CPU time and peak memory are read from /proc and
 * counted with rank 0's, as the process pool's workers are counted with
 * their parent's. Ranks on other hosts are not seen; docs/choosing.md
 * says so.
 */
#include "commands.h"
#include "compare.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "concur/error.h"
#include "concur/executor.h"
#include "concur/mpi.h"

static cc_executor *pool;

int cmp_mpi_rank(void)
{
    int rank, size;
    if (!cc_mpi_launched(&rank, &size) || rank < 0 || size == 1)
        return -1;
    return rank;
}

int cmp_mpi_serve(void)
{
    int rc = cc_mpi_pool_new(&pool, NULL);
    if (rc == CC_MPI_SERVED)
        return TOOL_EXIT_OK;
    if (rc == 0) { /* cannot happen on a rank other than 0 */
        cc_executor_free(pool);
        pool = NULL;
    }
    fprintf(stderr, "concur compare: MPI rank %d: %s\n", cmp_mpi_rank(),
            rc < 0 ? cc_strerror(rc) : "became rank 0");
    return TOOL_EXIT_FAILED;
}

int cmp_mpi_start(char *err, size_t cap)
{
    int rc = cc_mpi_pool_new(&pool, NULL);
    if (rc == 0)
        return 0;
    pool = NULL;
    snprintf(err, cap, "the MPI pool did not start: %s",
             rc < 0 ? cc_strerror(rc) : "this process is not rank 0");
    return rc < 0 ? rc : -EINVAL;
}

void cmp_mpi_stop(void)
{
    cc_executor_free(pool);
    pool = NULL;
}

cc_executor *cmp_mpi_executor(void)
{
    return pool;
}

const char *cmp_mpi_unavailable(void)
{
    return "needs the tool started by mpirun with 2 ranks or more: "
           "mpirun -np 3 concur compare";
}

/* ---- the ranks on this host --------------------------------------------- */

/* Calls fn for every other child of our parent (the launcher). */
static int64_t sum_siblings(int64_t (*fn)(int pid))
{
    DIR *d = opendir("/proc");
    if (!d)
        return 0;
    pid_t self = getpid(), parent = getppid();
    int64_t total = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        char *end;
        long pid = strtol(e->d_name, &end, 10);
        if (*end || pid <= 0 || pid == self)
            continue;
        char path[64], buf[512];
        snprintf(path, sizeof path, "/proc/%ld/stat", pid);
        FILE *f = fopen(path, "re");
        if (!f)
            continue;
        size_t n = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        buf[n] = 0;
        const char *p = strrchr(buf, ')');
        int ppid;
        if (p && sscanf(p + 1, " %*c %d", &ppid) == 1 && ppid == parent)
            total += fn((int)pid);
    }
    closedir(d);
    return total;
}

static int64_t siblings_cpu_ns(void)
{
    return sum_siblings(cmp_process_cpu_ns);
}

static int64_t peak_kib(int pid)
{
    char name[32];
    snprintf(name, sizeof name, "%d", pid);
    return cmp_proc_kib(name, "VmHWM");
}

void cmp_mpi_run_once(const cmp_params *p, cmp_sample *s)
{
    cmp_run_inline(CMP_MPI, p, siblings_cpu_ns, s);
    s->peak_kib += sum_siblings(peak_kib);
}
