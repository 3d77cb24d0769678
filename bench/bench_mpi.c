/*
 * The mpi suite: concur's MPI pool against mpi4py.futures (Debian
 * python3-mpi4py), each in its own MPI job on the same number of ranks
 * (NP: rank 0 submits, the others serve), on this machine's loopback.
 *
 *   mpi_roundtrip  submit -> result of a tiny task (an 8-byte echo)
 *   mpi_map_tiny   ordered map over tiny tasks, chunks of about a quarter
 *                  of the elements per worker rank on both sides (as
 *                  multiprocessing.Pool chooses)
 *
 * How. `concur bench mpi` runs as an ordinary program and starts two
 * long-lived jobs with mpirun: this same executable with
 * CONCUR_BENCH_MPI_JOB=1 in its environment (rank 0 then serves requests,
 * see run_job) and python3 -m mpi4py.futures with the script below. Each
 * job's rank 0 reads "roundtrip N" or "map N" on stdin (mpirun forwards
 * stdin to rank 0), runs N operations on its warmed-up pool and prints
 * the nanoseconds they took. Start-up stays out of every figure, and the
 * two sides alternate as in every suite. Both jobs sleep between requests:
 * their idle ranks back off to 1 ms polls (concur: mpi_internal.h;
 * mpi4py: its Backoff), so the job that is not measured costs little.
 *
 * Launched under mpirun itself (without the job variable) the suite is
 * skipped: it starts its own jobs. Also skipped: concur built without
 * MPI, no mpirun, no python3 that can import mpi4py.futures.
 */
#include "bench.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "concur/error.h"
#include "concur/executor.h"
#include "concur/future.h"
#include "concur/process.h"

#ifdef CONCUR_BENCH_MPIEXEC
#include "concur/mpi.h"
#endif

#define NP "3"
#define JOB_ENV "CONCUR_BENCH_MPI_JOB"
/* Start-up of a job (mpirun, MPI_Init, importing mpi4py) and one request. */
#define START_TIMEOUT_MS 120000
#define REQUEST_TIMEOUT_MS 600000

/* ---- the task ------------------------------------------------------------ */

/* The output comes from cc_task_output, as the docs advise for small
 * outputs: in a map's chunk it lands in place in the chunk's result. */
static int bench_mpi_echo(const void *in, size_t len, void **out,
                          size_t *out_len)
{
    if (!len)
        return 0;
    void *p = cc_task_output(len);
    if (!p)
        return -ENOMEM;
    memcpy(p, in, len);
    *out = p;
    *out_len = len;
    return 0;
}
CC_TASK_REGISTER(bench_mpi_echo);

#ifdef CONCUR_BENCH_MPIEXEC

/* ---- inside the concur job ----------------------------------------------- */

static int64_t job_roundtrip(cc_executor *ex, uint64_t n)
{
    int64_t t0 = bench_now_ns();
    for (uint64_t i = 0; i < n; i++) {
        cc_future *f;
        int rc = cc_executor_submit_bytes(ex, CC_TASK(bench_mpi_echo), &i,
                                          sizeof i, &f);
        if (rc == 0)
            rc = cc_future_error(f, CC_FOREVER);
        if (rc < 0)
            return rc;
        cc_future_unref(f);
    }
    return bench_now_ns() - t0;
}

static int64_t job_map(cc_executor *ex, uint64_t n)
{
    uint64_t *xs = malloc(n * sizeof *xs);
    const void **ins = malloc(n * sizeof *ins);
    size_t *lens = malloc(n * sizeof *lens);
    int64_t rc = xs && ins && lens ? 0 : -ENOMEM;
    for (uint64_t i = 0; rc == 0 && i < n; i++) {
        xs[i] = i;
        ins[i] = &xs[i];
        lens[i] = sizeof xs[i];
    }
    if (rc == 0) {
        size_t w = cc_executor_max_workers(ex);
        size_t div = 4 * (w ? w : 1);
        cc_map_options o = CC_MAP_OPTIONS_DEFAULT;
        o.chunksize = n / div + (n % div != 0);
        int64_t t0 = bench_now_ns();
        cc_bytes_map *m;
        rc = cc_executor_map_bytes(ex, CC_TASK(bench_mpi_echo), ins, lens, n,
                                   &o, &m);
        if (rc == 0) {
            int r;
            while ((r = cc_bytes_map_next(m, NULL, NULL, NULL)) == 1)
                ;
            cc_bytes_map_free(m);
            rc = r < 0 ? r : bench_now_ns() - t0;
        }
    }
    free(xs);
    free(ins);
    free(lens);
    return rc;
}

/* The job's program: every rank joins the pool; rank 0 answers requests
 * until stdin closes. Never returns: this process exists only for it. */
static void run_job(void)
{
    cc_executor *ex;
    int rc = cc_mpi_pool_new(&ex, NULL);
    if (rc == CC_MPI_SERVED)
        exit(0);
    if (rc < 0) {
        printf("error %s\n", cc_strerror(rc));
        exit(1);
    }
    /* Warm-up: every rank connected, code and allocator paths hot. */
    if (job_roundtrip(ex, 200) < 0 || job_map(ex, 2000) < 0) {
        printf("error warm-up\n");
        exit(1);
    }
    printf("ready\n");
    fflush(stdout);
    char line[128];
    while (fgets(line, sizeof line, stdin)) {
        char mode[32];
        unsigned long long n;
        int64_t ns = -EINVAL;
        if (sscanf(line, "%31s %llu", mode, &n) == 2)
            ns = strcmp(mode, "map") == 0 ? job_map(ex, n)
                                          : job_roundtrip(ex, n);
        printf("%lld\n", (long long)ns);
        fflush(stdout);
    }
    cc_executor_free(ex);
    exit(0);
}

/* ---- the mpi4py.futures job ---------------------------------------------- */

/* A file, not -c: the worker ranks import the script by path to find
 * echo, as mpi4py.futures does for `python -m mpi4py.futures script.py`. */
static const char python_script[] =
    "import sys, time\n"
    "from mpi4py import MPI\n"
    "from mpi4py.futures import MPIPoolExecutor\n"
    "def echo(x):\n"
    "    return x\n"
    "def main():\n"
    "    w = MPI.COMM_WORLD.Get_size() - 1\n"
    "    with MPIPoolExecutor() as ex:\n"
    "        for i in range(200):\n"
    "            ex.submit(echo, i).result()\n"
    "        list(ex.map(echo, range(2000), chunksize=250))\n"
    "        print('ready', flush=True)\n"
    "        for line in iter(sys.stdin.readline, ''):\n"
    "            mode, n = line.split()\n"
    "            n = int(n)\n"
    "            t0 = time.perf_counter_ns()\n"
    "            if mode == 'map':\n"
    "                cs = max(1, -(-n // (4 * w)))\n"
    "                for _ in ex.map(echo, range(n), chunksize=cs):\n"
    "                    pass\n"
    "            else:\n"
    "                for i in range(n):\n"
    "                    ex.submit(echo, i).result()\n"
    "            print(time.perf_counter_ns() - t0, flush=True)\n"
    "if __name__ == '__main__':\n"
    "    main()\n";

/* ---- driving a job from `concur bench` ----------------------------------- */

typedef struct job {
    pid_t pid;
    int to, from; /* its stdin, its stdout */
    char buf[256];
    size_t len;
} job;

typedef struct mpi_state {
    job concur, python;
    char script[64]; /* the Python script's temporary path */
} mpi_state;

extern char **environ;

/* Reads one line from j into line (without the newline) within timeout_ms.
 * Returns 0, -ETIMEDOUT, or -EPIPE when the job closed its output. */
static int read_line(job *j, char *line, size_t cap, int timeout_ms)
{
    int64_t deadline = bench_now_ns() + (int64_t)timeout_ms * 1000000;
    for (;;) {
        char *nl = memchr(j->buf, '\n', j->len);
        if (nl) {
            size_t n = (size_t)(nl - j->buf);
            size_t take = n < cap - 1 ? n : cap - 1;
            memcpy(line, j->buf, take);
            line[take] = '\0';
            j->len -= n + 1;
            memmove(j->buf, nl + 1, j->len);
            return 0;
        }
        if (j->len == sizeof j->buf)
            j->len = 0; /* an overlong line: drop it */
        int64_t left = (deadline - bench_now_ns()) / 1000000;
        if (left <= 0)
            return -ETIMEDOUT;
        struct pollfd p = {j->from, POLLIN, 0};
        int r = poll(&p, 1, (int)left);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return r == 0 ? -ETIMEDOUT : -errno;
        ssize_t got = read(j->from, j->buf + j->len, sizeof j->buf - j->len);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            return -EPIPE;
        j->len += (size_t)got;
    }
}

static void job_stop(job *j)
{
    if (j->pid <= 0)
        return;
    close(j->to);
    /* Closing stdin ends the job; give it time to shut its pool down. */
    int status;
    for (int i = 0; i < 200; i++) {
        if (waitpid(j->pid, &status, WNOHANG) == j->pid)
            goto reaped;
        usleep(50000);
    }
    kill(j->pid, SIGTERM);
    waitpid(j->pid, &status, 0);
reaped:
    close(j->from);
    j->pid = 0;
}

/* Starts argv (mpirun ...) with pipes for stdin and stdout and waits for
 * its "ready". Returns 0, BENCH_SKIPPED (it could not start) or -errno. */
static int job_start(job *j, char *const argv[], char **envp)
{
    int in[2], out[2];
    if (pipe2(in, O_CLOEXEC) != 0)
        return -errno;
    if (pipe2(out, O_CLOEXEC) != 0) {
        close(in[0]);
        close(in[1]);
        return -errno;
    }
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, in[0], STDIN_FILENO);
    posix_spawn_file_actions_adddup2(&fa, out[1], STDOUT_FILENO);
    int err = posix_spawn(&j->pid, argv[0], &fa, NULL, argv, envp);
    posix_spawn_file_actions_destroy(&fa);
    close(in[0]);
    close(out[1]);
    if (err) {
        close(in[1]);
        close(out[0]);
        j->pid = 0;
        return BENCH_SKIPPED;
    }
    j->to = in[1];
    j->from = out[0];
    j->len = 0;
    char line[128];
    int rc = read_line(j, line, sizeof line, START_TIMEOUT_MS);
    if (rc == 0 && strcmp(line, "ready") == 0)
        return 0;
    fprintf(stderr, "concur bench: mpi: %s did not start (%s)\n", argv[0],
            rc < 0 ? cc_strerror(rc) : line);
    job_stop(j);
    return BENCH_SKIPPED;
}

/* One request; returns the job's nanoseconds or a negative code. */
static int64_t job_run(job *j, const char *mode, uint64_t n)
{
    char req[64], line[128];
    int len =
        snprintf(req, sizeof req, "%s %llu\n", mode, (unsigned long long)n);
    if (write(j->to, req, (size_t)len) != len)
        return -EPIPE;
    int rc = read_line(j, line, sizeof line, REQUEST_TIMEOUT_MS);
    if (rc < 0)
        return rc;
    char *end;
    long long ns = strtoll(line, &end, 10);
    if (end == line || *end)
        return CC_EFAILED;
    return ns > 0 ? ns : ns < 0 ? ns : 1;
}

static int64_t cc_roundtrip(void *state, uint64_t iters)
{
    return job_run(&((mpi_state *)state)->concur, "roundtrip", iters);
}

static int64_t cc_map_tiny(void *state, uint64_t iters)
{
    return job_run(&((mpi_state *)state)->concur, "map", iters);
}

static int64_t py_roundtrip(void *state, uint64_t iters)
{
    return job_run(&((mpi_state *)state)->python, "roundtrip", iters);
}

static int64_t py_map_tiny(void *state, uint64_t iters)
{
    return job_run(&((mpi_state *)state)->python, "map", iters);
}

/* The first python3 that can import mpi4py.futures: the one found when
 * concur was built, then Debian's (python3-mpi4py installs there, while
 * a pyenv python3 may come first on PATH). */
static const char *find_python(void)
{
    static const char *const candidates[] = {
#ifdef CONCUR_BENCH_PYTHON
        CONCUR_BENCH_PYTHON,
#endif
        "/usr/bin/python3"};
    for (size_t i = 0; i < sizeof candidates / sizeof *candidates; i++) {
        char *argv[] = {(char *)candidates[i], (char *)"-c",
                        (char *)"import mpi4py.futures", NULL};
        posix_spawn_file_actions_t fa;
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_addopen(&fa, STDERR_FILENO, "/dev/null",
                                         O_WRONLY, 0);
        pid_t pid;
        int err = posix_spawn(&pid, candidates[i], &fa, NULL, argv, environ);
        posix_spawn_file_actions_destroy(&fa);
        int status;
        if (err == 0 && waitpid(pid, &status, 0) == pid && WIFEXITED(status) &&
            WEXITSTATUS(status) == 0)
            return candidates[i];
    }
    return NULL;
}

static void mpi_teardown(void *state)
{
    mpi_state *st = state;
    if (!st)
        return;
    job_stop(&st->concur);
    job_stop(&st->python);
    if (st->script[0])
        unlink(st->script);
    free(st);
}

/* The environment of the jobs: ours, plus the job marker for concur's. */
static char **job_environment(void)
{
    size_t n = 0;
    while (environ[n])
        n++;
    char **env = calloc(n + 2, sizeof *env);
    if (!env)
        return NULL;
    for (size_t i = 0; i < n; i++)
        env[i] = environ[i];
    env[n] = (char *)JOB_ENV "=1";
    return env;
}

static int mpi_setup(void **state, const char **skip_reason)
{
    if (getenv(JOB_ENV) && cc_mpi_launched(NULL, NULL))
        run_job(); /* does not return */
    if (cc_mpi_launched(NULL, NULL)) {
        *skip_reason = "run 'concur bench mpi' without mpirun: it starts "
                       "its own MPI jobs";
        return BENCH_SKIPPED;
    }
    const char *python = find_python();
    if (!python) {
        *skip_reason = "no python3 can import mpi4py.futures "
                       "(Debian: apt-get install python3-mpi4py)";
        return BENCH_SKIPPED;
    }
    mpi_state *st = calloc(1, sizeof *st);
    char self[4096];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (!st || n <= 0) {
        free(st);
        return st ? -EIO : -ENOMEM;
    }
    self[n] = '\0';
    snprintf(st->script, sizeof st->script, "/tmp/concur-bench-mpi-XXXXXX");
    int fd = mkstemp(st->script);
    if (fd < 0 || write(fd, python_script, sizeof python_script - 1) !=
                      (ssize_t)(sizeof python_script - 1)) {
        if (fd >= 0)
            close(fd);
        st->script[0] = '\0';
        mpi_teardown(st);
        return -EIO;
    }
    close(fd);
    /* Root (containers, CI) must opt in to mpirun; the jobs are this
     * program and a fixed script, so the suite does it for them. */
    char *concur_argv[12], *python_argv[12];
    int a = 0, b = 0;
    concur_argv[a++] = python_argv[b++] = (char *)CONCUR_BENCH_MPIEXEC;
    if (geteuid() == 0)
        concur_argv[a++] = python_argv[b++] = (char *)"--allow-run-as-root";
    concur_argv[a++] = python_argv[b++] = (char *)"--oversubscribe";
    concur_argv[a++] = python_argv[b++] = (char *)"-np";
    concur_argv[a++] = python_argv[b++] = (char *)NP;
    concur_argv[a++] = self;
    concur_argv[a++] = (char *)"bench";
    concur_argv[a++] = (char *)"mpi";
    concur_argv[a] = NULL;
    python_argv[b++] = (char *)python;
    python_argv[b++] = (char *)"-m";
    python_argv[b++] = (char *)"mpi4py.futures";
    python_argv[b++] = st->script;
    python_argv[b] = NULL;
    char **env = job_environment();
    if (!env) {
        mpi_teardown(st);
        return -ENOMEM;
    }
    int rc = job_start(&st->concur, concur_argv, env);
    if (rc == 0)
        rc = job_start(&st->python, python_argv, environ);
    free(env);
    if (rc != 0) {
        mpi_teardown(st);
        *skip_reason = "an MPI job did not start (see above)";
        return rc;
    }
    *state = st;
    return 0;
}

/* Budgets from issue 8: >= 10x mpi4py.futures on both. */
static const bench_case mpi_cases[] = {
    {"mpi_roundtrip",
     "us/op",
     1e3,
     1,
     10.0,
     {"cc_mpi_pool", cc_roundtrip},
     {"mpi4py.futures", py_roundtrip}},
    {"mpi_map_tiny",
     "ns/task",
     1,
     1000,
     10.0,
     {"cc_mpi_pool", cc_map_tiny},
     {"mpi4py.futures", py_map_tiny}},
};
#define N_CASES (sizeof mpi_cases / sizeof mpi_cases[0])

#else /* built without MPI */

static int mpi_setup(void **state, const char **skip_reason)
{
    (void)state;
    *skip_reason = "concur was built without MPI (CONCUR_WITH_MPI=OFF or "
                   "Open MPI not found)";
    return BENCH_SKIPPED;
}

static void mpi_teardown(void *state)
{
    (void)state;
}

static const bench_case mpi_cases[1];
#define N_CASES 0
#endif

const bench_suite bench_suite_mpi = {
    .name = "mpi",
    .summary = "MPI pool against mpi4py.futures (3 ranks, run by mpirun)",
    .cases = mpi_cases,
    .n_cases = N_CASES,
    .setup = mpi_setup,
    .teardown = mpi_teardown,
};
