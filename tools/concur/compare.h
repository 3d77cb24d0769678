/*
 * compare.h — the parts of `concur compare` and how they meet.
 *
 *   compare.c            options, the run plan, exit statuses
 *   compare_workloads.c  the six built-in workloads and the --task one
 *   compare_models.c     running a workload under one model, in the
 *                        measuring child; the process pool's bytes task
 *   compare_measure.c    the measuring children (one per model and run),
 *                        the Python runner, the loopback TCP server
 *   compare_report.c     tables, verdicts, JSON, SVG, the progress bar
 *   compare_python.c     the embedded Python script (--python)
 *
 * Every measurement runs in a child process forked from the parent, which
 * stays single-threaded for that reason: a task that crashes takes down
 * only its child (and is reported), a hang is cut off by a time limit, and
 * each model's peak memory is that child's own.
 */
#ifndef CONCUR_TOOL_COMPARE_H
#define CONCUR_TOOL_COMPARE_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* ---- models ------------------------------------------------------------- */

typedef enum cmp_model {
    CMP_SEQUENTIAL,
    CMP_THREADS,
    CMP_THREAD_POOL,
    CMP_PROCESS_POOL,
    CMP_ASYNC,
    CMP_MPI,
    CMP_PY_SEQUENTIAL, /* the rows of --python */
    CMP_PY_THREAD_POOL,
    CMP_PY_PROCESS_POOL,
    CMP_PY_ASYNC,
    CMP_N_MODELS
} cmp_model;

#define CMP_N_C_MODELS (CMP_MPI + 1) /* the ones --model may name */

const char *cmp_model_name(cmp_model m);
bool cmp_model_is_python(cmp_model m);

/* ---- workloads ---------------------------------------------------------- */

/* CMP_USER: the --task function, which may wait or compute. */
typedef enum cmp_kind { CMP_IO_BOUND, CMP_CPU_BOUND, CMP_USER } cmp_kind;

/* "I/O-bound", "CPU-bound", "your function"; and "io", "cpu", "user". */
const char *cmp_kind_text(cmp_kind k);
const char *cmp_kind_json(cmp_kind k);

/* What one run of a workload is given: the same in the parent, the
 * measuring child, the process pool's workers (sent as bytes) and the
 * Python script (sent as arguments). */
typedef struct cmp_params {
    uint32_t workload; /* index into cmp_workloads() */
    uint64_t tasks;
    uint64_t size;      /* meaning per workload; 0 where unused */
    int64_t latency_ns; /* sleep, tcp */
    unsigned workers;   /* pools; 0: the library's default */
    uint16_t port;      /* tcp: the loopback server */
    char dir[PATH_MAX]; /* files: the private directory */
    char lib[PATH_MAX]; /* --task: absolute path of the shared object */
    char sym[256];      /* --task: the function */
} cmp_params;

typedef struct cmp_workload {
    const char *name;
    cmp_kind kind;
    const char *summary;   /* for --list */
    const char *size_unit; /* what --size means here; NULL: not used */
    uint64_t default_tasks;
    uint64_t default_size;
    uint64_t python_size; /* default size with --python (Python is slow) */
    int64_t default_latency_ns; /* 0: no latency */

    /* Parent, once: make the inputs everyone shares (files, server).
     * Returns 0 or a negative code with a message in err. */
    int (*setup)(cmp_params *p, char *err, size_t cap);
    void (*teardown)(cmp_params *p);
    /* Parent, before every measurement (files: evict the page cache). */
    void (*before_each)(const cmp_params *p);
    /* Parent: CPU time used so far by helper processes of the workload
     * (tcp: its server), which are not the measured model's, nor others'.
     * NULL: none. */
    int64_t (*helper_cpu_ns)(void);

    /* Measuring child, before the clock starts: state for run(). */
    int (*prepare)(const cmp_params *p, void **state);
    void (*release)(void *state);
    /* One task, in any thread: 0 with *sum set, or a negative code. */
    int (*run)(void *state, const cmp_params *p, uint64_t i, uint64_t *sum);
    /* The same inside a coroutine of the async model; NULL: run() (CPU
     * work simply runs on the loop's thread, as it would in asyncio). */
    int (*run_async)(void *state, const cmp_params *p, uint64_t i,
                     uint64_t *sum);

    /* Process pool, optional: the bytes sent along with task i (pointing
     * into state), the worker's side, and what the parent does with the
     * output. NULL: nothing sent, the worker calls run() with no state and
     * returns the 8-byte sum. */
    void (*payload)(void *state, const cmp_params *p, uint64_t i,
                    const void **data, size_t *len);
    int (*remote)(const cmp_params *p, uint64_t i, const void *in, size_t len,
                  void **out, size_t *out_len);
    int (*absorb)(void *state, const cmp_params *p, uint64_t i, const void *out,
                  size_t len, uint64_t *sum);
} cmp_workload;

/* The built-in workloads in their default order, then the --task one. */
const cmp_workload *cmp_workloads(size_t *n);
size_t cmp_n_builtin(void);
/* Index of the --task workload in cmp_workloads(). */
size_t cmp_user_workload(void);
/* Index of name among the built-in ones, or -1. */
int cmp_find_workload(const char *name);
/* Checks that lib exists and exports sym (dlopen in the parent, which the
 * measuring children inherit). Returns 0 or -1 with a message in err. */
int cmp_user_task_load(const char *lib, const char *sym, char *err, size_t cap);

/* ---- one measurement ---------------------------------------------------- */

/* A pool's statistics (cc_executor_stats) after its run, for --stats:
 * read once the pool has shut down, so they are exact, plus the queue's
 * depth at the moment the last task was submitted. */
typedef struct cmp_pool_stats {
    bool valid; /* the model ran a pool and its figures were read */
    bool stealing; /* stolen applies (the thread pool) */
    uint64_t submitted, completed, failed, cancelled, stolen, restarts;
    uint64_t queued_after_submit;
} cmp_pool_stats;

/* What a measuring child reports through its pipe. */
typedef struct cmp_report {
    uint32_t magic;
    int32_t status; /* 0, or the first task's error */
    int64_t wall_ns;
    int64_t cpu_before_ns; /* the child's CPU time when the clock started */
    int64_t peak_kib;      /* see docs/choosing.md: how memory is measured */
    uint64_t checksum;
    uint64_t failed_tasks;
    uint32_t workers;
    cmp_pool_stats stats;
    char message[400];
} cmp_report;

#define CMP_REPORT_MAGIC 0x504d4343u /* "CCMP" */

/*
 * Inside a task: records a failure message for the calling thread (read
 * back by the model that ran the task) and for the task's future when a
 * pool runs it (cc_task_fail), and returns code.
 */
int cmp_fail(int code, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Runs the model in this process (the measuring child) and fills r. */
void cmp_run_model(cmp_model m, const cmp_params *p, cmp_report *r);

/* One row of a table: a measurement (the median of --repeat runs). */
typedef struct cmp_result {
    cmp_model model;
    bool available; /* false: mpi, python3 missing, --python on --task */
    bool ok;        /* measured, every task succeeded, checksum agrees */
    double wall_s;
    double cpu_s;    /* user + system of the child and its descendants */
    double cpu_util; /* cpu_s / (wall_s * cpus) */
    double peak_mib;
    double others;  /* share of all CPUs others used during the run */
    double speedup; /* sequential wall / this wall; NAN if unknown */
    double runs_min_s, runs_max_s; /* wall of the fastest and slowest run */
    unsigned workers;
    uint64_t checksum;
    cmp_pool_stats stats; /* of the median run */
    char note[400]; /* why unavailable or failed; empty when ok */
} cmp_result;

typedef struct cmp_options {
    int timeout_s;
    int repeat;
    bool progress;
    bool stats; /* --stats: the pools' statistics too */
} cmp_options;

/* One run of a model, as the parent saw it. */
typedef struct cmp_sample {
    bool ok;
    int64_t wall_ns, cpu_ns, peak_kib;
    uint64_t checksum;
    uint32_t workers;
    cmp_pool_stats stats;
    double others;  /* share of all CPUs other processes used meanwhile */
    char note[400]; /* why it failed */
} cmp_sample;

/* Runs model m on p once, in a child process (a fork; python3 for the
 * Python rows), after the workload's before_each. Never blocks longer
 * than the time limit. Returns 0 (the outcome is in s), or -EINTR when the
 * user interrupted (SIGINT, SIGTERM, SIGHUP): the child is killed. */
int cmp_run_once(cmp_model m, const cmp_params *p, const cmp_options *o,
                 cmp_sample *s);
/* Runs C model m on p once in this process, with the bookkeeping of
 * cmp_run_once (no isolation: for the mpi row, whose pool lives in this
 * process). helpers_cpu_ns (or NULL) reads the CPU time of the processes
 * that work for the run besides this one. */
void cmp_run_inline(cmp_model m, const cmp_params *p,
                    int64_t (*helpers_cpu_ns)(void), cmp_sample *s);
/* The row from n runs: the run with the median wall time, or the first
 * failure. Sorts runs. */
void cmp_reduce(cmp_model m, cmp_sample *runs, int n, long cpus,
                cmp_result *out);

/* The loopback TCP server of the tcp workload: a child process running a
 * concur event loop that answers each request after latency_ns. */
/* A memory figure of process pid ("self" or a number) from
 * /proc/PID/status in KiB (key: "VmHWM", "VmRSS"), or 0. */
int64_t cmp_proc_kib(const char *pid, const char *key);
/* User + system CPU time of process pid from /proc (10 ms ticks), or 0. */
int64_t cmp_process_cpu_ns(int pid);
int cmp_server_start(int64_t latency_ns, uint16_t *port, int *pid, char *err,
                     size_t cap);
void cmp_server_stop(int pid);

/* Set by the parent's SIGINT/SIGTERM handler. */
extern volatile int cmp_interrupted;

/* The python3 to run (CONCUR_PYTHON or "python3" on PATH), or NULL. */
const char *cmp_python_path(void);
/* Python's version as the last Python row reported it, or "". */
const char *cmp_python_version(void);
extern const char cmp_python_script[];

/* ---- the mpi row (compare_mpi.c; compare_mpi_off.c without MPI) ---------
 * Under `mpirun -np N concur compare ...` every rank runs the tool: rank 0
 * compares, the other ranks serve its MPI pool. Forking after MPI_Init is
 * not safe, so rank 0 measures the mpi row first, in its own process, on
 * one pool started after every workload's set-up (which may fork) and
 * freed before the other models' children are forked. */

/* This process's rank in an MPI job of more than one rank started by a
 * launcher (cc_mpi_launched), else -1 (also without MPI in the build). */
int cmp_mpi_rank(void);
/* A rank other than 0: joins and serves the pool until rank 0 frees it.
 * Returns the tool's exit status. */
int cmp_mpi_serve(void);
/* Rank 0: starts the pool (every rank joins). Returns 0 or a negative
 * code with a message in err. */
int cmp_mpi_start(char *err, size_t cap);
/* Rank 0: frees the pool; the other ranks return from cmp_mpi_serve. */
void cmp_mpi_stop(void);
/* The pool cmp_mpi_start started, or NULL. */
struct cc_executor *cmp_mpi_executor(void);
/* Why there is no mpi row in this run. */
const char *cmp_mpi_unavailable(void);
/* Rank 0, pool started: one run of p on the pool, in this process. CPU
 * and memory count rank 0 and the ranks on this host. */
void cmp_mpi_run_once(const cmp_params *p, cmp_sample *s);

/* ---- reporting ---------------------------------------------------------- */

typedef struct cmp_workload_result {
    const cmp_workload *w;
    cmp_params params;
    cmp_result rows[CMP_N_MODELS];
    size_t n_rows;
    char verdict[600];
} cmp_workload_result;

typedef struct cmp_machine {
    long cpus;
    char cpu_model[128];
    char kernel[256];
    double memory_gib;
    double load_before, load_after; /* 1-minute load average */
} cmp_machine;

void cmp_machine_probe(cmp_machine *m);
/* The 1-minute load average, or NAN. */
double cmp_load_average(void);
/* Fills wr->verdict from the rows. */
void cmp_verdict(cmp_workload_result *wr, long cpus);
/* runs: --repeat; above 1 the table shows each row's fastest and slowest
 * run. */
void cmp_table(FILE *f, const cmp_workload_result *wr, long cpus, int runs);
/* --stats: the statistics of each pool row (nothing if none ran). */
void cmp_stats_table(FILE *f, const cmp_workload_result *wr);
/* What the columns mean, and whether other processes disturbed rows. */
void cmp_table_legend(FILE *f, const cmp_options *o, const cmp_machine *m,
                      const cmp_workload_result *wrs, size_t n);
void cmp_json(FILE *f, const cmp_machine *m, const cmp_options *o,
              const cmp_workload_result *wrs, size_t n);
/* Returns 0 or -errno. */
int cmp_svg(FILE *f, const cmp_machine *m, const cmp_workload_result *wrs,
            size_t n);

/* The progress bar: drawn on stderr only when it is a terminal. */
void cmp_progress_begin(bool enabled, size_t total);
void cmp_progress_step(const char *workload, const char *model);
void cmp_progress_clear(void);

/* Monotonic nanoseconds, read directly (not through concur, which is what
 * is being measured). */
int64_t cmp_now_ns(void);

#endif /* CONCUR_TOOL_COMPARE_H */
