/*
 * `concur compare`: runs I/O-bound and CPU-bound workloads under every
 * concurrency model concur offers (and, with --python, under Python's) and
 * prints which one wins on this machine, by how much, at what CPU and
 * memory cost. See docs/choosing.md.
 *
 * The parent never starts a thread: it forks one measuring child per model
 * and run (compare_measure.c), which is what isolates crashes and hangs
 * and gives each model its own memory figure.
 */
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "commands.h"
#include "compare.h"
#include "concur/error.h"

typedef struct compare_args {
    bool json, python, list, help, no_progress, stats;
    const char *svg;
    size_t workloads[16]; /* indexes into cmp_workloads(), in order */
    size_t n_workloads;
    bool models[CMP_N_C_MODELS];
    bool models_given;
    uint64_t tasks, size; /* 0: the workload's default */
    int64_t latency_ns;   /* -1: the workload's default */
    unsigned workers;     /* 0: the library's default */
    int repeat, timeout_s;
    const char *task_spec;
    char task_lib[PATH_MAX];
    char task_sym[256];
} compare_args;

static void usage(FILE *f)
{
    fputs(
        "usage: concur compare [--workload LIST] [--model LIST] [--tasks N]\n"
        "                      [--workers N] [--latency MS] [--size N]\n"
        "                      [--repeat N] [--timeout S] [--json] "
        "[--svg FILE]\n"
        "                      [--python] [--task LIB.so:FUNCTION] "
        "[--no-progress]\n"
        "                      [--stats]\n"
        "       concur compare --list\n"
        "\n"
        "Runs each workload under each concurrency model, each model in a "
        "child\nprocess of its own, and prints per workload the wall time, "
        "the speedup over\nsequential, the CPU use, the peak memory and a "
        "verdict. With no options:\nevery workload, every model, sizes for "
        "20-40 s on 2 CPUs.\n"
        "\n"
        "options:\n"
        "  --workload LIST  comma-separated: sleep,tcp,files (I/O-bound),\n"
        "                   primes,mandelbrot,blur (CPU-bound); default all\n"
        "  --model LIST     comma-separated: sequential,threads,thread_pool,\n"
        "                   process_pool,async,mpi; default all. sequential\n"
        "                   always runs: it is the baseline. mpi needs the "
        "tool\n"
        "                   started by mpirun: mpirun -np 3 concur compare\n"
        "  --tasks N        tasks per workload (default: see --list)\n"
        "  --workers N      workers of thread_pool and process_pool (default:\n"
        "                   Python's, min(32, CPUs+4) threads, CPUs "
        "processes)\n"
        "  --latency MS     what each sleep or tcp task waits (default 10)\n"
        "  --size N         the workload's size (see --list for its unit)\n"
        "  --repeat N       runs per model; the median is shown (default 3)\n"
        "  --timeout S      limit per run; a run over it is killed and\n"
        "                   reported (default 120)\n"
        "  --json           JSON on stdout instead of tables (schema:\n"
        "                   docs/choosing.md)\n"
        "  --svg FILE       also write a bar chart of the speedups\n"
        "  --python         add rows for Python's ThreadPoolExecutor,\n"
        "                   ProcessPoolExecutor and asyncio (py_*), run by\n"
        "                   python3 on the same workloads; CPU-bound sizes\n"
        "                   default smaller, as Python is slower\n"
        "  --task LIB.so:FUNCTION\n"
        "                   compare the models on your function\n"
        "                   int FUNCTION(uint64_t index, uint64_t *checksum)\n"
        "                   (see include/concur/compare.h)\n"
        "  --no-progress    no progress bar (drawn on stderr only when it is\n"
        "                   a terminal)\n"
        "  --stats          after each table, the pools' statistics: "
        "tasks\n"
        "                   submitted, completed, failed, cancelled, "
        "stolen,\n"
        "                   the queue's depth, worker restarts (in JSON: "
        "\"stats\")\n"
        "  --list           the workloads and models, with their defaults\n"
        "  --help           this text\n"
        "\n"
        "Exit status: 0 when every run succeeded, 1 when one failed (crash,\n"
        "error, time limit, wrong checksum: reported in its row), 2 for a\n"
        "bad command line (unknown name, bad number, --task not loadable).\n",
        f);
}

static void list(void)
{
    size_t n;
    const cmp_workload *ws = cmp_workloads(&n);
    puts("workloads:");
    for (size_t i = 0; i < cmp_n_builtin(); i++) {
        const cmp_workload *w = &ws[i];
        printf("  %-11s %s: %s\n", w->name, cmp_kind_text(w->kind), w->summary);
        printf("  %-11s default %llu tasks", "",
               (unsigned long long)w->default_tasks);
        if (w->size_unit)
            printf(", size %llu %s (%llu with --python)",
                   (unsigned long long)w->default_size, w->size_unit,
                   (unsigned long long)w->python_size);
        if (w->default_latency_ns)
            printf(", latency %g ms", (double)w->default_latency_ns / 1e6);
        putchar('\n');
    }
    puts("models:\n"
         "  sequential   one task after another in one thread (the "
         "baseline)\n"
         "  threads      one cc_thread per task, all started, then joined\n"
         "  thread_pool  cc_thread_pool_new + one cc_executor_submit per "
         "task\n"
         "  process_pool cc_process_pool_new + one bytes task per task "
         "(inputs and\n"
         "               outputs copied to and from the worker processes)\n"
         "  async        an event loop with one coroutine per task "
         "(cc_loop)\n"
         "  mpi          the MPI pool (cc_mpi_pool_new) of the job when the "
         "tool is\n"
         "               started by mpirun -np N (rank 0 compares, the "
         "others serve);\n"
         "               else listed as unavailable\n"
         "  py_*         with --python: py_sequential, py_thread_pool,\n"
         "               py_process_pool, py_async");
}

/* ---- parsing ------------------------------------------------------------ */

/* A refused command line. Under mpirun every rank parses the same one
 * and refuses it alike: rank 0 alone says so. */
static int bad(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int bad(const char *fmt, ...)
{
    if (cmp_mpi_rank() > 0)
        return TOOL_EXIT_USAGE;
    va_list ap;
    va_start(ap, fmt);
    fputs("concur compare: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputs("\nTry 'concur compare --help'.\n", stderr);
    va_end(ap);
    return TOOL_EXIT_USAGE;
}

static int parse_uint(const char *opt, const char *s, uint64_t min,
                      uint64_t max, uint64_t *out)
{
    char *end;
    errno = 0;
    if (!s || !*s || *s == '-')
        return bad("%s needs a whole number, not '%s'", opt, s ? s : "");
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end)
        return bad("%s needs a whole number, not '%s'", opt, s);
    if (v < min || v > max)
        return bad("%s must be between %llu and %llu, not %s", opt,
                   (unsigned long long)min, (unsigned long long)max, s);
    *out = v;
    return TOOL_EXIT_OK;
}

static int add_workload(compare_args *a, size_t index)
{
    for (size_t i = 0; i < a->n_workloads; i++)
        if (a->workloads[i] == index)
            return TOOL_EXIT_OK;
    a->workloads[a->n_workloads++] = index;
    return TOOL_EXIT_OK;
}

static int parse_workloads(compare_args *a, const char *s)
{
    char buf[256];
    snprintf(buf, sizeof buf, "%s", s);
    char *save = NULL;
    int count = 0;
    for (char *t = strtok_r(buf, ",", &save); t;
         t = strtok_r(NULL, ",", &save)) {
        int w = cmp_find_workload(t);
        if (w < 0)
            return bad("unknown workload '%s' (known: sleep, tcp, files, "
                       "primes, mandelbrot, blur)",
                       t);
        add_workload(a, (size_t)w);
        count++;
    }
    if (!count)
        return bad("--workload needs at least one name");
    return TOOL_EXIT_OK;
}

static int parse_models(compare_args *a, const char *s)
{
    char buf[256];
    snprintf(buf, sizeof buf, "%s", s);
    char *save = NULL;
    int count = 0;
    for (char *t = strtok_r(buf, ",", &save); t;
         t = strtok_r(NULL, ",", &save)) {
        int found = -1;
        for (int m = 0; m < CMP_N_C_MODELS; m++)
            if (strcmp(cmp_model_name((cmp_model)m), t) == 0)
                found = m;
        if (found < 0) {
            const char *hint = strncmp(t, "py_", 3) == 0
                                   ? "; Python's rows come with --python"
                                   : "";
            return bad("unknown model '%s' (known: sequential, threads, "
                       "thread_pool, process_pool, async, mpi)%s",
                       t, hint);
        }
        a->models[found] = true;
        count++;
    }
    if (!count)
        return bad("--model needs at least one name");
    a->models_given = true;
    return TOOL_EXIT_OK;
}

static int parse_task(compare_args *a, const char *spec)
{
    const char *colon = strrchr(spec, ':');
    if (!colon || colon == spec || !colon[1])
        return bad("--task needs LIB.so:FUNCTION, not '%s'", spec);
    size_t len = (size_t)(colon - spec);
    if (len >= sizeof a->task_lib || strlen(colon + 1) >= sizeof a->task_sym)
        return bad("--task '%s' is too long", spec);
    memcpy(a->task_lib, spec, len);
    a->task_lib[len] = 0;
    snprintf(a->task_sym, sizeof a->task_sym, "%s", colon + 1);
    a->task_spec = spec;
    return TOOL_EXIT_OK;
}

/* The value of an option: "--opt=VALUE" or "--opt VALUE". */
static const char *value_of(int argc, char **argv, int *i, const char *opt)
{
    const char *arg = argv[*i];
    size_t n = strlen(opt);
    if (strncmp(arg, opt, n) != 0)
        return NULL;
    if (arg[n] == '=')
        return arg + n + 1;
    if (arg[n] != 0)
        return NULL;
    if (*i + 1 >= argc)
        return "";
    return argv[++*i];
}

/* Checks the whole command line before anything runs. */
static int parse(int argc, char **argv, compare_args *a)
{
    a->repeat = 3;
    a->timeout_s = 120;
    a->latency_ns = -1;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i], *v;
        uint64_t n;
        int rc = TOOL_EXIT_OK;
        if (strcmp(arg, "--json") == 0) {
            a->json = true;
        } else if (strcmp(arg, "--python") == 0) {
            a->python = true;
        } else if (strcmp(arg, "--list") == 0) {
            a->list = true;
        } else if (strcmp(arg, "--stats") == 0) {
            a->stats = true;
        } else if (strcmp(arg, "--no-progress") == 0) {
            a->no_progress = true;
        } else if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            a->help = true;
        } else if ((v = value_of(argc, argv, &i, "--workload"))) {
            rc = parse_workloads(a, v);
        } else if ((v = value_of(argc, argv, &i, "--model"))) {
            rc = parse_models(a, v);
        } else if ((v = value_of(argc, argv, &i, "--tasks"))) {
            rc = parse_uint("--tasks", v, 1, 1000000, &a->tasks);
        } else if ((v = value_of(argc, argv, &i, "--workers"))) {
            rc = parse_uint("--workers", v, 1, 1024, &n);
            a->workers = (unsigned)n;
        } else if ((v = value_of(argc, argv, &i, "--latency"))) {
            char *end;
            errno = 0;
            double ms = strtod(v, &end);
            if (!*v || *end || errno || !(ms >= 0 && ms <= 60000))
                return bad("--latency needs milliseconds between 0 and "
                           "60000, not '%s'",
                           v);
            a->latency_ns = (int64_t)llround(ms * 1e6);
        } else if ((v = value_of(argc, argv, &i, "--size"))) {
            rc = parse_uint("--size", v, 1, UINT64_C(1) << 40, &a->size);
        } else if ((v = value_of(argc, argv, &i, "--repeat"))) {
            rc = parse_uint("--repeat", v, 1, 15, &n);
            a->repeat = (int)n;
        } else if ((v = value_of(argc, argv, &i, "--timeout"))) {
            rc = parse_uint("--timeout", v, 1, 86400, &n);
            a->timeout_s = (int)n;
        } else if ((v = value_of(argc, argv, &i, "--svg"))) {
            if (!*v)
                return bad("--svg needs a file name");
            a->svg = v;
        } else if ((v = value_of(argc, argv, &i, "--task"))) {
            rc = parse_task(a, v);
        } else if (arg[0] == '-') {
            return bad("unknown option '%s'", arg);
        } else {
            return bad("unexpected argument '%s' (workloads are chosen with "
                       "--workload)",
                       arg);
        }
        if (rc != TOOL_EXIT_OK)
            return rc;
    }
    if (a->n_workloads == 0 && !a->task_spec)
        for (size_t i = 0; i < cmp_n_builtin(); i++)
            add_workload(a, i);
    if (a->task_spec)
        add_workload(a, cmp_user_workload());
    if (!a->models_given)
        for (int m = 0; m < CMP_N_C_MODELS; m++)
            a->models[m] = true;
    a->models[CMP_SEQUENTIAL] = true;
    return TOOL_EXIT_OK;
}

/* Sizes that would exhaust memory or never finish are refused up front. */
static int check_params(const cmp_workload *w, const cmp_params *p)
{
    const char *name = w->name;
    if (strcmp(name, "files") == 0 && p->size * p->tasks > (UINT64_C(4) << 20))
        return bad("files: %llu KiB of files is more than this tool writes "
                   "(4 GiB at most)",
                   (unsigned long long)(p->size * p->tasks));
    if ((strcmp(name, "mandelbrot") == 0 || strcmp(name, "blur") == 0) &&
        p->size > 30000)
        return bad("%s: --size %llu is too large (at most 30000 pixels)", name,
                   (unsigned long long)p->size);
    if (strcmp(name, "primes") == 0 && p->size > (UINT64_C(1) << 40))
        return bad("primes: --size %llu is too large",
                   (unsigned long long)p->size);
    return TOOL_EXIT_OK;
}

/* ---- running ------------------------------------------------------------ */

static void on_signal(int sig)
{
    cmp_interrupted = sig;
}

static void install_handlers(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal; /* no SA_RESTART: poll must return */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    /* A closed stdout (| head) must not kill us before the clean-up. */
    signal(SIGPIPE, SIG_IGN);
}

static cmp_params params_for(const compare_args *a, size_t wi)
{
    size_t n;
    const cmp_workload *w = &cmp_workloads(&n)[wi];
    cmp_params p;
    memset(&p, 0, sizeof p);
    p.workload = (uint32_t)wi;
    p.tasks = a->tasks ? a->tasks : w->default_tasks;
    if (w->size_unit)
        p.size = a->size     ? a->size
                 : a->python ? w->python_size
                             : w->default_size;
    if (w->default_latency_ns)
        p.latency_ns =
            a->latency_ns >= 0 ? a->latency_ns : w->default_latency_ns;
    p.workers = a->workers;
    if (wi == cmp_user_workload()) {
        if (!realpath(a->task_lib, p.lib))
            snprintf(p.lib, sizeof p.lib, "%s", a->task_lib);
        snprintf(p.sym, sizeof p.sym, "%s", a->task_sym);
    }
    return p;
}

/* The rows of a workload, in table order. */
static size_t plan_rows(const compare_args *a, cmp_model *rows)
{
    size_t n = 0;
    for (int m = 0; m < CMP_N_C_MODELS; m++)
        if (a->models[m])
            rows[n++] = (cmp_model)m;
    if (a->python) {
        rows[n++] = CMP_PY_SEQUENTIAL;
        if (a->models[CMP_THREAD_POOL])
            rows[n++] = CMP_PY_THREAD_POOL;
        if (a->models[CMP_PROCESS_POOL])
            rows[n++] = CMP_PY_PROCESS_POOL;
        if (a->models[CMP_ASYNC])
            rows[n++] = CMP_PY_ASYNC;
    }
    return n;
}

/* Speedups against sequential, and every checksum against its. Returns
 * true if a row failed. */
static bool settle(cmp_workload_result *wr, bool user_task)
{
    const cmp_result *seq = NULL;
    for (size_t i = 0; i < wr->n_rows; i++)
        if (wr->rows[i].model == CMP_SEQUENTIAL && wr->rows[i].ok)
            seq = &wr->rows[i];
    bool failed = false;
    for (size_t i = 0; i < wr->n_rows; i++) {
        cmp_result *r = &wr->rows[i];
        if (!r->available)
            continue;
        if (!r->ok) {
            failed = true;
            continue;
        }
        if (!seq)
            continue;
        r->speedup = r->wall_s > 0 ? seq->wall_s / r->wall_s : NAN;
        if (r->checksum == seq->checksum)
            continue;
        if (user_task) {
            /* The user's function may be non-deterministic: a warning. */
            snprintf(r->note, sizeof r->note,
                     "warning: checksum %llu differs from sequential's %llu "
                     "(is the task deterministic and thread-safe?)",
                     (unsigned long long)r->checksum,
                     (unsigned long long)seq->checksum);
            continue;
        }
        r->ok = false;
        failed = true;
        snprintf(r->note, sizeof r->note,
                 "wrong result: checksum %llu, sequential's is %llu",
                 (unsigned long long)r->checksum,
                 (unsigned long long)seq->checksum);
    }
    return failed;
}

static void unavailable(cmp_result *r, cmp_model m, const char *why)
{
    memset(r, 0, sizeof *r);
    r->model = m;
    r->speedup = NAN;
    snprintf(r->note, sizeof r->note, "%s", why);
}

/* Why row m of workload wi cannot be measured, or NULL if it can. mpi:
 * whether this is rank 0 of an MPI job (compare.h). */
static const char *why_not(cmp_model m, size_t wi, bool mpi)
{
    if (m == CMP_MPI)
        return mpi ? NULL : cmp_mpi_unavailable();
    if (cmp_model_is_python(m) && wi == cmp_user_workload())
        return "Python rows do not apply to --task";
    if (cmp_model_is_python(m) && !cmp_python_path())
        return "python3 not found";
    return NULL;
}

/* A workload set up ahead of its turn (the mpi phase sets every workload
 * up before MPI starts: set-up may fork, which MPI does not survive). */
typedef struct prepared {
    bool done;
    cmp_params params;
    int rc;
    char err[300];
} prepared;

/* What one invocation runs, and where its results go. */
typedef struct run_plan {
    const compare_args *a;
    cmp_options o;
    cmp_machine machine;
    cmp_model rows[CMP_N_MODELS];
    size_t n_rows;
    cmp_sample *samples; /* n_rows x repeat */
    bool mpi;            /* rank 0 of an MPI job: the mpi row is measured */
    prepared *prep;      /* per workload, in order; NULL without the mpi phase */
    cmp_sample *mpi_samples; /* n_workloads x repeat */
    int *mpi_count;          /* runs of the mpi row per workload */
} run_plan;

static void prepare(const compare_args *a, size_t wi, prepared *pr)
{
    size_t n;
    const cmp_workload *w = &cmp_workloads(&n)[wi];
    pr->params = params_for(a, wi);
    pr->err[0] = 0;
    pr->rc = w->setup ? w->setup(&pr->params, pr->err, sizeof pr->err) : 0;
    pr->done = true;
}

/*
 * The mpi phase (rank 0 of an MPI job): every workload set up, then one
 * MPI pool for all of them, each workload's --repeat runs of the mpi row
 * in this process, the pool freed (the other ranks leave) — all before
 * the first child is forked for the other models.
 */
static void run_mpi_phase(run_plan *rp)
{
    const compare_args *a = rp->a;
    for (size_t i = 0; i < a->n_workloads; i++)
        prepare(a, a->workloads[i], &rp->prep[i]);
    char err[300];
    int rc = cmp_mpi_start(err, sizeof err);
    if (rc < 0) {
        for (size_t i = 0; i < a->n_workloads; i++) {
            cmp_sample *s = &rp->mpi_samples[i * (size_t)a->repeat];
            memset(s, 0, sizeof *s);
            snprintf(s->note, sizeof s->note, "%s", err);
            rp->mpi_count[i] = 1;
        }
        return;
    }
    for (size_t i = 0; i < a->n_workloads && !cmp_interrupted; i++) {
        size_t n;
        const cmp_workload *w = &cmp_workloads(&n)[a->workloads[i]];
        for (int rep = 0; rep < a->repeat && !cmp_interrupted; rep++) {
            cmp_sample *s = &rp->mpi_samples[i * (size_t)a->repeat + (size_t)rep];
            rp->mpi_count[i]++;
            if (rp->prep[i].rc < 0) {
                memset(s, 0, sizeof *s);
                snprintf(s->note, sizeof s->note, "setup failed: %s",
                         rp->prep[i].err);
                break;
            }
            cmp_progress_step(w->name, cmp_model_name(CMP_MPI));
            cmp_mpi_run_once(&rp->prep[i].params, s);
            if (!s->ok)
                break; /* the failure is the row */
        }
    }
    cmp_mpi_stop();
}

/*
 * Measures every row of workload wi into wr: sets the workload up, runs
 * rounds of every model in turn (as `concur bench` interleaves its sides,
 * so that a noisy moment spreads over all models instead of landing on
 * one), reduces each row's runs to the median, and tears down. Returns
 * -EINTR if the user interrupted, else 0.
 */
static int run_workload(run_plan *rp, size_t pos, cmp_workload_result *wr)
{
    size_t n, wi = rp->a->workloads[pos];
    int repeat = rp->a->repeat;
    wr->w = &cmp_workloads(&n)[wi];
    wr->n_rows = rp->n_rows;
    prepared local, *pr = rp->prep ? &rp->prep[pos] : &local;
    if (!rp->prep || !pr->done)
        prepare(rp->a, wi, pr);
    wr->params = pr->params;
    int setup_rc = pr->rc;
    const char *setup_err = pr->err;
    int count[CMP_N_MODELS] = {0};
    bool measure[CMP_N_MODELS] = {0};
    for (size_t k = 0; k < rp->n_rows; k++) {
        const char *why = why_not(rp->rows[k], wi, rp->mpi);
        if (why)
            unavailable(&wr->rows[k], rp->rows[k], why);
        measure[k] = !why;
        if (!why && rp->rows[k] == CMP_MPI) {
            /* Measured already, in the mpi phase. */
            count[k] = rp->mpi_count[pos];
            memcpy(&rp->samples[k * (size_t)repeat],
                   &rp->mpi_samples[pos * (size_t)repeat],
                   (size_t)count[k] * sizeof *rp->samples);
            measure[k] = false;
        }
    }
    int rc = 0;
    for (int rep = 0; rep < repeat && rc == 0; rep++)
        for (size_t k = 0; k < rp->n_rows && rc == 0; k++) {
            if (!measure[k])
                continue;
            cmp_sample *s = &rp->samples[k * (size_t)repeat + (size_t)count[k]];
            count[k]++;
            if (setup_rc < 0) {
                memset(s, 0, sizeof *s);
                snprintf(s->note, sizeof s->note, "setup failed: %s",
                         setup_err);
            } else {
                cmp_progress_step(wr->w->name, cmp_model_name(rp->rows[k]));
                rc = cmp_run_once(rp->rows[k], &wr->params, &rp->o, s);
            }
            if (!s->ok)
                measure[k] = false; /* the failure is the row */
        }
    for (size_t k = 0; k < rp->n_rows && rc == 0; k++)
        if (count[k])
            cmp_reduce(rp->rows[k], &rp->samples[k * (size_t)repeat], count[k],
                       rp->machine.cpus, &wr->rows[k]);
    if (setup_rc == 0 && wr->w->teardown)
        wr->w->teardown(&wr->params);
    pr->done = false; /* torn down */
    return rc;
}

/* Writes the chart; returns false if that failed. */
static bool write_svg(FILE *svg, const char *path, const run_plan *rp,
                      const cmp_workload_result *results, size_t n)
{
    int rc = cmp_svg(svg, &rp->machine, results, n);
    if (fclose(svg) != 0 || rc < 0) {
        fprintf(stderr, "concur compare: writing %s failed\n", path);
        return false;
    }
    return true;
}

/* Everything that can be refused before a run starts is refused here. */
static int check_inputs(compare_args *a, FILE **svg)
{
    for (size_t i = 0; i < a->n_workloads; i++) {
        size_t n;
        cmp_params p = params_for(a, a->workloads[i]);
        int rc = check_params(&cmp_workloads(&n)[a->workloads[i]], &p);
        if (rc)
            return rc;
    }
    char err[PATH_MAX + 300];
    if (a->task_spec &&
        cmp_user_task_load(a->task_lib, a->task_sym, err, sizeof err) < 0) {
        fprintf(stderr, "concur compare: --task: %s\n", err);
        return TOOL_EXIT_USAGE;
    }
    /* Opened now so that a bad path costs no run. */
    if (a->svg && !(*svg = fopen(a->svg, "we"))) {
        fprintf(stderr, "concur compare: cannot write %s: %s\n", a->svg,
                strerror(errno));
        return TOOL_EXIT_USAGE;
    }
    if (a->python && !cmp_python_path())
        fputs("concur compare: python3 not found (looked in PATH and "
              "CONCUR_PYTHON): the Python rows are skipped\n",
              stderr);
    return TOOL_EXIT_OK;
}

int cmd_compare(int argc, char **argv)
{
    compare_args a;
    memset(&a, 0, sizeof a);
    /* Under mpirun every rank runs this with the same command line: rank
     * 0 compares, the others serve its MPI pool (compare.h). */
    int mpi_rank = cmp_mpi_rank();
    int rc = parse(argc, argv, &a);
    if (rc != TOOL_EXIT_OK)
        return rc;
    if (a.help || a.list) {
        if (mpi_rank > 0)
            return TOOL_EXIT_OK; /* rank 0 prints it */
        if (a.help)
            usage(stdout);
        else
            list();
        return TOOL_EXIT_OK;
    }
    if (mpi_rank > 0)
        return cmp_mpi_serve();
    FILE *svg = NULL;
    /* A refusal here on rank 0 exits non-zero, which makes mpirun end the
     * waiting ranks too. */
    if ((rc = check_inputs(&a, &svg)) != TOOL_EXIT_OK)
        return rc;

    install_handlers();
    run_plan rp = {.a = &a,
                   .o = {.timeout_s = a.timeout_s,
                         .repeat = a.repeat,
                         .progress = !a.no_progress,
                         .stats = a.stats}};
    cmp_machine_probe(&rp.machine);
    rp.n_rows = plan_rows(&a, rp.rows);
    rp.mpi = mpi_rank == 0;
    size_t total = 0;
    for (size_t i = 0; i < a.n_workloads; i++)
        for (size_t k = 0; k < rp.n_rows; k++)
            total += why_not(rp.rows[k], a.workloads[i], rp.mpi)
                         ? 0
                         : (size_t)a.repeat;
    cmp_progress_begin(rp.o.progress, total);

    cmp_workload_result *results = calloc(a.n_workloads, sizeof *results);
    rp.samples = calloc(rp.n_rows * (size_t)a.repeat, sizeof *rp.samples);
    bool failed = false;
    size_t done = 0;
    if (rp.mpi) {
        rp.prep = calloc(a.n_workloads, sizeof *rp.prep);
        rp.mpi_samples =
            calloc(a.n_workloads * (size_t)a.repeat, sizeof *rp.mpi_samples);
        rp.mpi_count = calloc(a.n_workloads, sizeof *rp.mpi_count);
        failed = !rp.prep || !rp.mpi_samples || !rp.mpi_count;
    }
    if (!results || !rp.samples || failed) {
        fputs("concur compare: out of memory\n", stderr);
        failed = true;
    }
    if (rp.mpi && !failed) {
        /* Without an mpi row the pool still starts and stops at once:
         * the other ranks wait for it to leave. */
        if (!a.models[CMP_MPI]) {
            char err[300];
            if (cmp_mpi_start(err, sizeof err) == 0)
                cmp_mpi_stop();
        } else {
            run_mpi_phase(&rp); /* an interruption is reported below */
        }
    }
    for (; !failed && !cmp_interrupted && done < a.n_workloads; done++) {
        cmp_workload_result *wr = &results[done];
        size_t wi = a.workloads[done];
        if (run_workload(&rp, done, wr) == -EINTR)
            break;
        failed |= settle(wr, wi == cmp_user_workload());
        cmp_verdict(wr, rp.machine.cpus);
        if (!a.json) {
            cmp_progress_clear();
            cmp_table(stdout, wr, rp.machine.cpus, a.repeat);
            if (a.stats)
                cmp_stats_table(stdout, wr);
        }
    }
    cmp_progress_clear();
    rp.machine.load_after = cmp_load_average();
    if (cmp_interrupted) {
        fprintf(stderr,
                "concur compare: interrupted (%s); stopped the "
                "measurement and removed its files\n",
                strsignal(cmp_interrupted));
        rc = 128 + cmp_interrupted;
    } else if (results && rp.samples) {
        if (a.json)
            cmp_json(stdout, &rp.machine, &rp.o, results, done);
        else
            cmp_table_legend(stdout, &rp.o, &rp.machine, results, done);
        if (svg && !write_svg(svg, a.svg, &rp, results, done))
            failed = true;
        svg = NULL;
        rc = failed ? TOOL_EXIT_FAILED : TOOL_EXIT_OK;
    } else {
        rc = TOOL_EXIT_FAILED;
    }
    if (svg)
        fclose(svg);
    /* Workloads set up by the mpi phase and never reached. */
    for (size_t i = 0; rp.prep && i < a.n_workloads; i++) {
        size_t n;
        const cmp_workload *w = &cmp_workloads(&n)[a.workloads[i]];
        if (rp.prep[i].done && rp.prep[i].rc == 0 && w->teardown)
            w->teardown(&rp.prep[i].params);
    }
    free(rp.prep);
    free(rp.mpi_samples);
    free(rp.mpi_count);
    free(results);
    free(rp.samples);
    return rc;
}
