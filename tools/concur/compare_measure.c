/*
 * The measuring children of `concur compare`.
 *
 * Each run of a model is a child process: a fork of the parent (which
 * never starts a thread, so the fork is clean) for the C models, python3
 * for the Python rows. The child times itself and writes a report to a
 * pipe; the parent waits for it to exit, with a time limit, and takes its
 * CPU time from wait4, which covers the child and every descendant it
 * reaped (pool workers, the fork server), so CPU use includes the workers.
 * Each child leads its own process group, so that a time limit or ^C
 * kills whatever it started too.
 */
#include "compare.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "concur/error.h"

volatile int cmp_interrupted;

static const char *const model_names[CMP_N_MODELS] = {
    "sequential",      "threads", "thread_pool",   "process_pool",
    "async",           "mpi",     "py_sequential", "py_thread_pool",
    "py_process_pool", "py_async"};

const char *cmp_model_name(cmp_model m)
{
    return (unsigned)m < CMP_N_MODELS ? model_names[m] : "?";
}

bool cmp_model_is_python(cmp_model m)
{
    return m >= CMP_PY_SEQUENTIAL && m < CMP_N_MODELS;
}

/* ---- python3 ------------------------------------------------------------ */

static bool executable(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode) &&
           access(path, X_OK) == 0;
}

const char *cmp_python_path(void)
{
    static char found[PATH_MAX];
    const char *env = getenv("CONCUR_PYTHON");
    if (env && *env)
        return executable(env) ? env : NULL;
    const char *path = getenv("PATH");
    if (!path)
        return NULL;
    while (*path) {
        size_t len = strcspn(path, ":");
        if (len && len + sizeof "/python3" < sizeof found) {
            memcpy(found, path, len);
            memcpy(found + len, "/python3", sizeof "/python3");
            if (executable(found))
                return found;
        }
        path += len + (path[len] == ':');
    }
    return NULL;
}

/* ---- waiting for a child ------------------------------------------------ */

typedef struct child_run {
    pid_t pid;
    int out_fd; /* the report pipe, read as data arrives */
    char out[4096];
    size_t out_len;
    int status;
    struct rusage ru;
    bool timed_out;
    bool interrupted;
} child_run;

static void drain(child_run *c, bool *eof)
{
    while (c->out_fd >= 0) {
        char buf[1024];
        ssize_t n = read(c->out_fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            if (n == 0 || errno != EAGAIN)
                *eof = true;
            return;
        }
        size_t room = sizeof c->out - 1 - c->out_len;
        size_t take = (size_t)n < room ? (size_t)n : room;
        memcpy(c->out + c->out_len, buf, take);
        c->out_len += take;
        c->out[c->out_len] = 0;
    }
}

static void kill_group(pid_t pid)
{
    kill(-pid, SIGKILL);
    kill(pid, SIGKILL);
}

/*
 * Waits until the child exits, reading its pipe meanwhile (a child that
 * fills the pipe must not block). Kills its process group at the deadline
 * or when the user interrupts us. Never returns before the child is
 * reaped.
 */
static void wait_child(child_run *c, int timeout_s)
{
    fcntl(c->out_fd, F_SETFL, O_NONBLOCK);
    int64_t deadline = cmp_now_ns() + (int64_t)timeout_s * 1000000000;
    /* pidfd_open (Linux 5.3): the exit wakes poll. Without it, poll the
     * pipe and look every 10 ms. */
    int pidfd = (int)syscall(SYS_pidfd_open, c->pid, 0);
    bool eof = false;
    for (;;) {
        pid_t r = wait4(c->pid, &c->status, WNOHANG, &c->ru);
        if (r == c->pid)
            break;
        if (cmp_interrupted || cmp_now_ns() >= deadline) {
            c->interrupted = cmp_interrupted != 0;
            c->timed_out = !c->interrupted;
            kill_group(c->pid);
            while (wait4(c->pid, &c->status, 0, &c->ru) < 0 && errno == EINTR) {
            }
            break;
        }
        struct pollfd fds[2];
        nfds_t n = 0;
        if (!eof)
            fds[n++] = (struct pollfd){c->out_fd, POLLIN, 0};
        if (pidfd >= 0)
            fds[n++] = (struct pollfd){pidfd, POLLIN, 0};
        int64_t left_ms = (deadline - cmp_now_ns()) / 1000000 + 1;
        int wait_ms = pidfd >= 0 ? (left_ms > 1000 ? 1000 : (int)left_ms) : 10;
        poll(fds, n, wait_ms);
        if (!eof)
            drain(c, &eof);
    }
    bool ignored = false;
    drain(c, &ignored);
    if (pidfd >= 0)
        close(pidfd);
    /* Whatever the child left behind (a worker, a launcher) goes too. */
    kill(-c->pid, SIGKILL);
}

/* ---- what else ran --------------------------------------------------------
 * /proc/stat counts the time every CPU spent busy (steal included: a
 * virtual CPU that the host gave to someone else). Busy time during a run
 * that was not the run's own was taken by other processes, and a CPU-bound
 * speedup measured then reads low. */

typedef struct machine_clock {
    int64_t busy_ns;   /* all CPUs, from /proc/stat; -1 if unknown */
    int64_t self_ns;   /* this process (the parent) */
    int64_t helper_ns; /* the workload's helpers (the tcp server) */
    int64_t at_ns;
} machine_clock;

static int64_t self_cpu_ns(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ((int64_t)ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000000 +
           ((int64_t)ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1000;
}

static int64_t tick_ns(void)
{
    long hz = sysconf(_SC_CLK_TCK);
    return 1000000000 / (hz > 0 ? hz : 100);
}

int64_t cmp_process_cpu_ns(int pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    FILE *f = pid > 0 ? fopen(path, "re") : NULL;
    if (!f)
        return 0;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    /* The command name may hold spaces: fields start after its ')'. */
    const char *p = strrchr(buf, ')');
    unsigned long long utime, stime;
    if (!p ||
        sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu",
               &utime, &stime) != 2)
        return 0;
    return (int64_t)(utime + stime) * tick_ns();
}

static machine_clock machine_now(const cmp_workload *w)
{
    machine_clock c = {-1, self_cpu_ns(),
                       w->helper_cpu_ns ? w->helper_cpu_ns() : 0, cmp_now_ns()};
    FILE *f = fopen("/proc/stat", "re");
    unsigned long long v[8];
    if (f && fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0],
                    &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7]) == 8) {
        /* user nice system [idle iowait] irq softirq steal, in ticks */
        unsigned long long busy = v[0] + v[1] + v[2] + v[5] + v[6] + v[7];
        c.busy_ns = (int64_t)busy * tick_ns();
    }
    if (f)
        fclose(f);
    return c;
}

/*
 * The share of all CPUs that other processes used between a and b, given
 * the CPU time of the measured run itself (all of it, its start and exit
 * included). The parent's and the workload's helpers' time are not
 * others'. /proc/stat counts in ticks (10 ms), so less than 5 ticks per
 * CPU is below what it can tell: reported as 0.
 */
static double others_share(machine_clock a, machine_clock b, int64_t own_ns)
{
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    if (cpus < 1)
        cpus = 1;
    double span = (double)(b.at_ns - a.at_ns) * (double)cpus;
    if (a.busy_ns < 0 || b.busy_ns < 0 || span <= 0)
        return NAN;
    int64_t others = (b.busy_ns - a.busy_ns) - own_ns -
                     (b.self_ns - a.self_ns) - (b.helper_ns - a.helper_ns);
    if (others < 5 * tick_ns() * cpus)
        return 0;
    double share = (double)others / span;
    return share > 1 ? 1 : share;
}

static void child_signals_default(void)
{
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    signal(SIGHUP, SIG_DFL);
}

static int64_t ru_cpu_ns(const struct rusage *ru)
{
    return ((int64_t)ru->ru_utime.tv_sec + ru->ru_stime.tv_sec) * 1000000000 +
           ((int64_t)ru->ru_utime.tv_usec + ru->ru_stime.tv_usec) * 1000;
}

/* Why a child ended without a report. */
static void describe_end(const child_run *c, cmp_model m, int timeout_s,
                         char *note, size_t cap)
{
    if (c->timed_out) {
        snprintf(note, cap,
                 "timed out after %d s and was killed (raise "
                 "--timeout, or fewer --tasks)",
                 timeout_s);
    } else if (WIFSIGNALED(c->status)) {
        int sig = WTERMSIG(c->status);
        const char *why = "";
        if (m == CMP_THREADS || m == CMP_THREAD_POOL || m == CMP_ASYNC)
            why = ": a task that crashes takes down its whole process, "
                  "every thread with it; only process_pool isolates it";
        else if (m == CMP_SEQUENTIAL)
            why = ": a task that crashes takes down its process";
        snprintf(note, cap, "crashed: killed by signal %d (%s)%s", sig,
                 strsignal(sig), why);
    } else if (WIFEXITED(c->status) && WEXITSTATUS(c->status) == 127 &&
               cmp_model_is_python(m)) {
        snprintf(note, cap, "could not run python3");
    } else {
        snprintf(note, cap, "exited with status %d without a report%s",
                 WIFEXITED(c->status) ? WEXITSTATUS(c->status) : -1,
                 cmp_model_is_python(m) ? " (see python's message above)"
                                        : " (crashed?)");
    }
}

/* ---- the C models ------------------------------------------------------- */

static int write_report(int fd, const cmp_report *r)
{
    const char *p = (const char *)r;
    size_t left = sizeof *r;
    while (left) {
        ssize_t n = write(fd, p, left);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        p += n;
        left -= (size_t)n;
    }
    return 0;
}

/* Copies a model's report into s, with its CPU time; returns false (the
 * reason in s->note) if the model failed. */
static bool take_report(const cmp_report *r, int64_t cpu_ns, cmp_sample *s)
{
    s->wall_ns = r->wall_ns;
    s->cpu_ns = cpu_ns;
    s->peak_kib = r->peak_kib;
    s->checksum = r->checksum;
    s->workers = r->workers;
    s->stats = r->stats;
    if (r->status < 0) {
        snprintf(s->note, sizeof s->note, "%s",
                 r->message[0] ? r->message : cc_strerror(r->status));
        return false;
    }
    return true;
}

static int run_c(cmp_model m, const cmp_params *p, const cmp_options *o,
                 cmp_sample *s)
{
    size_t nw;
    const cmp_workload *w = &cmp_workloads(&nw)[p->workload];
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) < 0) {
        snprintf(s->note, sizeof s->note, "pipe: %s", strerror(errno));
        return 0;
    }
    pid_t parent = getpid();
    fflush(NULL); /* or the child would print our buffered output again */
    machine_clock before = machine_now(w);
    pid_t pid = fork();
    if (pid < 0) {
        snprintf(s->note, sizeof s->note, "fork: %s", strerror(errno));
        close(fds[0]);
        close(fds[1]);
        return 0;
    }
    if (pid == 0) {
        close(fds[0]);
        setpgid(0, 0);
        child_signals_default();
        signal(SIGPIPE, SIG_IGN);
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(1);
        cmp_report r;
        memset(&r, 0, sizeof r);
        cmp_run_model(m, p, &r);
        int rc = write_report(fds[1], &r);
        close(fds[1]);
        /* exit, not _exit: concur's atexit handler stops the fork server
         * and reaps it, so its CPU time reaches the parent's wait4. */
        exit(rc < 0 ? 1 : 0);
    }
    setpgid(pid, pid); /* also here: whichever runs first */
    close(fds[1]);
    child_run c = {.pid = pid, .out_fd = fds[0]};
    wait_child(&c, o->timeout_s);
    s->others = others_share(before, machine_now(w), ru_cpu_ns(&c.ru));
    close(fds[0]);
    if (c.interrupted)
        return -EINTR;
    cmp_report r;
    if (c.out_len != sizeof r) {
        describe_end(&c, m, o->timeout_s, s->note, sizeof s->note);
        return 0;
    }
    memcpy(&r, c.out, sizeof r);
    r.message[sizeof r.message - 1] = 0;
    if (r.magic != CMP_REPORT_MAGIC) {
        snprintf(s->note, sizeof s->note, "garbled report");
        return 0;
    }
    if (!take_report(&r, ru_cpu_ns(&c.ru) - r.cpu_before_ns, s))
        return 0;
    if (c.timed_out || !WIFEXITED(c.status) || WEXITSTATUS(c.status) != 0) {
        /* Measured, but the exit went wrong: say so rather than hide it. */
        describe_end(&c, m, o->timeout_s, s->note, sizeof s->note);
        return 0;
    }
    s->ok = true;
    return 0;
}

/* ---- a C model in this process (the mpi row) ------------------------------ */

void cmp_run_inline(cmp_model m, const cmp_params *p,
                    int64_t (*helpers_cpu_ns)(void), cmp_sample *s)
{
    size_t nw;
    const cmp_workload *w = &cmp_workloads(&nw)[p->workload];
    memset(s, 0, sizeof *s);
    if (w->before_each)
        w->before_each(p);
    machine_clock before = machine_now(w);
    int64_t h0 = helpers_cpu_ns ? helpers_cpu_ns() : 0;
    cmp_report r;
    memset(&r, 0, sizeof r);
    cmp_run_model(m, p, &r);
    struct rusage self, kids;
    getrusage(RUSAGE_SELF, &self);
    getrusage(RUSAGE_CHILDREN, &kids);
    int64_t helpers = (helpers_cpu_ns ? helpers_cpu_ns() : 0) - h0;
    /* This process is the run (others_share leaves it out already); the
     * helpers are too. */
    s->others = others_share(before, machine_now(w), helpers);
    s->ok = take_report(&r,
                        ru_cpu_ns(&self) + ru_cpu_ns(&kids) - r.cpu_before_ns +
                            helpers,
                        s);
}

/* ---- the Python rows ---------------------------------------------------- */

static int run_python(cmp_model m, const cmp_params *p, const cmp_options *o,
                      const char *python, cmp_sample *s, char *version,
                      size_t vcap)
{
    static const char *const py_model[] = {"sequential", "thread_pool",
                                           "process_pool", "async"};
    size_t nw;
    const cmp_workload *w = &cmp_workloads(&nw)[p->workload];
    char tasks[32], size[32], latency[32], workers[32], port[32];
    snprintf(tasks, sizeof tasks, "%llu", (unsigned long long)p->tasks);
    snprintf(size, sizeof size, "%llu", (unsigned long long)p->size);
    snprintf(latency, sizeof latency, "%lld", (long long)p->latency_ns);
    snprintf(workers, sizeof workers, "%u", p->workers);
    snprintf(port, sizeof port, "%u", (unsigned)p->port);
    char *argv[] = {(char *)python,
                    "-c",
                    (char *)cmp_python_script,
                    (char *)w->name,
                    (char *)py_model[m - CMP_PY_SEQUENTIAL],
                    tasks,
                    size,
                    latency,
                    workers,
                    port,
                    (char *)(p->dir[0] ? p->dir : "-"),
                    NULL};
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) < 0) {
        snprintf(s->note, sizeof s->note, "pipe: %s", strerror(errno));
        return 0;
    }
    pid_t parent = getpid();
    fflush(NULL);
    machine_clock before = machine_now(w);
    pid_t pid = fork();
    if (pid < 0) {
        snprintf(s->note, sizeof s->note, "fork: %s", strerror(errno));
        close(fds[0]);
        close(fds[1]);
        return 0;
    }
    if (pid == 0) {
        setpgid(0, 0);
        child_signals_default();
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(1);
        int null = open("/dev/null", O_RDONLY);
        if (null >= 0)
            dup2(null, 0);
        dup2(fds[1], 1);
        execv(python, argv);
        _exit(127);
    }
    setpgid(pid, pid);
    close(fds[1]);
    child_run c = {.pid = pid, .out_fd = fds[0]};
    wait_child(&c, o->timeout_s);
    s->others = others_share(before, machine_now(w), ru_cpu_ns(&c.ru));
    close(fds[0]);
    if (c.interrupted)
        return -EINTR;
    /* The script's last line: "concur-compare 1 ok WALL CPU PEAK SUM
     * WORKERS VERSION" or "concur-compare 1 error MESSAGE". The script
     * measures its CPU time itself, after its pool has reaped its workers:
     * the interpreter's exit, which wait4 would add, can outweigh a short
     * run. */
    char *line = strstr(c.out, "concur-compare 1 ");
    if (!line) {
        describe_end(&c, m, o->timeout_s, s->note, sizeof s->note);
        return 0;
    }
    line += strlen("concur-compare 1 ");
    line[strcspn(line, "\n")] = 0;
    if (strncmp(line, "error ", 6) == 0) {
        snprintf(s->note, sizeof s->note, "%s", line + 6);
        return 0;
    }
    long long wall, cpu, peak;
    unsigned long long sum;
    unsigned wk;
    char ver[32] = "";
    if (sscanf(line, "ok %lld %lld %lld %llu %u %31s", &wall, &cpu, &peak, &sum,
               &wk, ver) < 5) {
        snprintf(s->note, sizeof s->note,
                 "unreadable report from python3: "
                 "%.200s",
                 line);
        return 0;
    }
    if (ver[0])
        snprintf(version, vcap, "%s", ver);
    s->wall_ns = wall;
    s->cpu_ns = cpu;
    s->peak_kib = peak;
    s->checksum = sum;
    s->workers = wk;
    if (!WIFEXITED(c.status) || WEXITSTATUS(c.status) != 0) {
        describe_end(&c, m, o->timeout_s, s->note, sizeof s->note);
        return 0;
    }
    s->ok = true;
    return 0;
}

/* ---- a measurement ------------------------------------------------------ */

static char python_version[32];

const char *cmp_python_version(void)
{
    return python_version;
}

int cmp_run_once(cmp_model m, const cmp_params *p, const cmp_options *o,
                 cmp_sample *s)
{
    size_t nw;
    const cmp_workload *w = &cmp_workloads(&nw)[p->workload];
    memset(s, 0, sizeof *s);
    if (w->before_each)
        w->before_each(p);
    if (!cmp_model_is_python(m))
        return run_c(m, p, o, s);
    const char *python = cmp_python_path();
    if (!python) {
        snprintf(s->note, sizeof s->note, "python3 not found");
        return 0;
    }
    return run_python(m, p, o, python, s, python_version,
                      sizeof python_version);
}

static int by_wall(const void *a, const void *b)
{
    const cmp_sample *x = a, *y = b;
    return (x->wall_ns > y->wall_ns) - (x->wall_ns < y->wall_ns);
}

void cmp_reduce(cmp_model m, cmp_sample *runs, int n, long cpus,
                cmp_result *out)
{
    memset(out, 0, sizeof *out);
    out->model = m;
    out->available = true;
    out->speedup = NAN;
    for (int k = 0; k < n; k++)
        if (!runs[k].ok) {
            /* A failed run decides the row: it is the news. */
            snprintf(out->note, sizeof out->note, "%s", runs[k].note);
            out->workers = runs[k].workers;
            out->stats = runs[k].stats;
            return;
        }
    if (n == 0) {
        snprintf(out->note, sizeof out->note, "not run");
        return;
    }
    for (int k = 1; k < n; k++)
        if (runs[k].checksum != runs[0].checksum) {
            snprintf(out->note, sizeof out->note,
                     "runs disagree on the checksum (%" PRIu64 " vs %" PRIu64
                     ")",
                     runs[0].checksum, runs[k].checksum);
            return;
        }
    qsort(runs, (size_t)n, sizeof runs[0], by_wall);
    const cmp_sample *mid = &runs[n / 2];
    out->ok = true;
    out->wall_s = mid->wall_ns / 1e9;
    out->cpu_s = mid->cpu_ns > 0 ? mid->cpu_ns / 1e9 : 0;
    out->cpu_util = out->wall_s > 0 && cpus > 0
                        ? out->cpu_s / (out->wall_s * (double)cpus)
                        : NAN;
    out->peak_mib = mid->peak_kib / 1024.0;
    out->workers = mid->workers;
    out->checksum = mid->checksum;
    out->stats = mid->stats;
    out->others = mid->others;
    out->runs_min_s = runs[0].wall_ns / 1e9;
    out->runs_max_s = runs[n - 1].wall_ns / 1e9;
}
