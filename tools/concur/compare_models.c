/*
 * The models of `concur compare`, run inside the measuring child: the same
 * tasks, spread five ways. What each model does is what a program using it
 * would do, start-up and shutdown included:
 *
 *   sequential    a loop
 *   threads       one cc_thread per task, all started, then all joined
 *   thread_pool   cc_thread_pool_new, one submit per task, then every result
 *   process_pool  cc_process_pool_new, one bytes task per task (its input
 *                 and output copied through the pool), then every result
 *   async         an event loop with one coroutine task per task, awaited
 *                 in order
 *   mpi           the MPI pool of the mpirun job this rank 0 belongs to,
 *                 one bytes task per task as for process_pool
 *
 * The clock runs from the model's first call to the end of its last
 * (threads joined, pool freed, loop closed; for mpi, from a pool already
 * up to the last result: MPI starts once per job). Workload inputs are made
 * before it starts; the fork server the process pool uses is started
 * before it too, as cc_process_init at the top of main would be.
 */
#include "compare.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "concur/error.h"
#include "concur/executor.h"
#include "concur/future.h"
#include "concur/loop.h"
#include "concur/process.h"
#include "concur/thread.h"

int64_t cmp_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* ---- failure messages --------------------------------------------------- */

static _Thread_local char task_message[300];

int cmp_fail(int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(task_message, sizeof task_message, fmt, ap);
    va_end(ap);
    /* In a pool's task this also reaches the future; elsewhere it is
     * dropped, and task_message is what the model reads. */
    return cc_task_fail(code, "%s", task_message);
}

/* ---- one task, wherever it runs ----------------------------------------- */

typedef struct slot {
    const cmp_workload *w;
    const cmp_params *p;
    void *state;
    uint64_t index;
    uint64_t sum;
    int rc;
    char message[300];
} slot;

static void slot_run(slot *s, bool async)
{
    task_message[0] = 0;
    if (async && s->w->run_async)
        s->rc = s->w->run_async(s->state, s->p, s->index, &s->sum);
    else
        s->rc = s->w->run(s->state, s->p, s->index, &s->sum);
    if (s->rc < 0)
        snprintf(s->message, sizeof s->message, "%s", task_message);
}

/* Adds the slots up into r: the checksum, and the first failure. */
static void collect(slot *slots, uint64_t n, cmp_report *r)
{
    for (uint64_t i = 0; i < n; i++) {
        slot *s = &slots[i];
        if (s->rc < 0) {
            if (r->failed_tasks++ == 0) {
                r->status = s->rc;
                snprintf(r->message, sizeof r->message, "task %llu failed: %s",
                         (unsigned long long)i,
                         s->message[0] ? s->message : cc_strerror(s->rc));
            }
            continue;
        }
        r->checksum += s->sum;
    }
}

static void fail(cmp_report *r, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void fail(cmp_report *r, int rc, const char *fmt, ...)
{
    if (r->status < 0)
        return; /* the first failure is the one worth reading */
    r->status = rc < 0 ? rc : CC_EFAILED;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->message, sizeof r->message, fmt, ap);
    va_end(ap);
}

/* ---- sequential --------------------------------------------------------- */

static void run_sequential(slot *slots, uint64_t n, cmp_report *r)
{
    for (uint64_t i = 0; i < n; i++)
        slot_run(&slots[i], false);
    collect(slots, n, r);
    r->workers = 1;
}

/* ---- threads ------------------------------------------------------------ */

static int thread_main(void *ctx)
{
    slot_run(ctx, false);
    /* The outcome is in the slot; a negative status here would also print
     * an excepthook line per failed task. */
    return 0;
}

static void run_threads(slot *slots, uint64_t n, cmp_report *r)
{
    cc_thread **ts = calloc((size_t)n, sizeof *ts);
    if (!ts) {
        fail(r, -ENOMEM, "out of memory for %llu threads",
             (unsigned long long)n);
        return;
    }
    uint64_t started = 0;
    for (; started < n; started++) {
        int rc =
            cc_thread_new(&ts[started], thread_main, &slots[started], NULL);
        if (rc == 0) {
            rc = cc_thread_start(ts[started]);
            if (rc < 0)
                cc_thread_unref(ts[started]);
        }
        if (rc < 0) {
            fail(r, rc,
                 "could not start thread %llu of %llu: %s (one "
                 "thread per task does not scale that far; use "
                 "fewer --tasks)",
                 (unsigned long long)started + 1, (unsigned long long)n,
                 cc_strerror(rc));
            break;
        }
    }
    for (uint64_t i = 0; i < started; i++) {
        cc_thread_join(ts[i], CC_FOREVER);
        cc_thread_unref(ts[i]);
    }
    free(ts);
    if (started == n)
        collect(slots, n, r);
    r->workers = (uint32_t)started;
}

/* ---- pool statistics ---------------------------------------------------- */

/* The queue's depth once every task is submitted (before any wait). */
static void note_queue(cc_executor *ex, cmp_report *r)
{
    cc_pool_stats s;
    if (cc_executor_stats(ex, &s) == 0)
        r->stats.queued_after_submit = s.queued;
}

/* Shuts ex down (waiting: its freeing would anyway) and reads its final,
 * exact statistics. */
static void read_stats(cc_executor *ex, cmp_report *r)
{
    cc_pool_stats s;
    cc_executor_shutdown(ex, true, false);
    if (cc_executor_stats(ex, &s) != 0)
        return;
    r->stats.valid = true;
    r->stats.stealing = strcmp(cc_executor_kind(ex), "thread") == 0;
    r->stats.submitted = s.submitted;
    r->stats.completed = s.completed;
    r->stats.failed = s.failed;
    r->stats.cancelled = s.cancelled;
    r->stats.stolen = s.stolen;
    r->stats.restarts = s.worker_restarts;
}

/* ---- thread pool -------------------------------------------------------- */

static int pool_task(void *arg, void **result)
{
    (void)result;
    slot *s = arg;
    slot_run(s, false);
    return s->rc;
}

static void run_thread_pool(slot *slots, uint64_t n, const cmp_params *p,
                            cmp_report *r)
{
    cc_thread_pool_options o = {.max_workers = p->workers};
    cc_executor *ex;
    int rc = cc_thread_pool_new(&ex, &o);
    if (rc < 0) {
        fail(r, rc, "cc_thread_pool_new: %s", cc_strerror(rc));
        return;
    }
    cc_future **fs = calloc((size_t)n, sizeof *fs);
    uint64_t submitted = 0;
    if (!fs)
        fail(r, -ENOMEM, "out of memory for %llu futures",
             (unsigned long long)n);
    for (; fs && submitted < n; submitted++) {
        rc = cc_executor_submit(ex, pool_task, &slots[submitted],
                                &fs[submitted]);
        if (rc < 0) {
            fail(r, rc, "cc_executor_submit: %s", cc_strerror(rc));
            break;
        }
    }
    note_queue(ex, r);
    /* The slots hold each outcome; waiting on every future is what
     * `[f.result() for f in futures]` does. */
    for (uint64_t i = 0; i < submitted; i++) {
        cc_future_wait(fs[i], CC_FOREVER);
        cc_future_unref(fs[i]);
    }
    free(fs);
    r->workers = cc_executor_max_workers(ex);
    read_stats(ex, r);
    cc_executor_free(ex);
    if (submitted == n)
        collect(slots, n, r);
}

/* ---- process pool ----------------------------------------------------------
 * One registered bytes task serves every workload: its input is a header
 * (the workload, the task's index, the parameters, the strings they
 * carry) followed by the workload's payload; its output is the workload's
 * (the 8-byte sum unless the workload has its own). */

typedef struct wire_head {
    uint32_t magic;
    uint32_t workload;
    uint64_t index, tasks, size;
    int64_t latency_ns;
    uint32_t port, dir_len, lib_len, sym_len;
} wire_head;

#define WIRE_MAGIC 0x4b534154u

static int wire_encode(const cmp_params *p, uint64_t i, const void *payload,
                       size_t plen, void **out, size_t *len)
{
    wire_head h = {WIRE_MAGIC,
                   p->workload,
                   i,
                   p->tasks,
                   p->size,
                   p->latency_ns,
                   p->port,
                   (uint32_t)strlen(p->dir),
                   (uint32_t)strlen(p->lib),
                   (uint32_t)strlen(p->sym)};
    size_t n = sizeof h + h.dir_len + h.lib_len + h.sym_len + plen;
    char *buf = malloc(n);
    if (!buf)
        return -ENOMEM;
    char *q = buf;
    memcpy(q, &h, sizeof h);
    q += sizeof h;
    memcpy(q, p->dir, h.dir_len);
    q += h.dir_len;
    memcpy(q, p->lib, h.lib_len);
    q += h.lib_len;
    memcpy(q, p->sym, h.sym_len);
    q += h.sym_len;
    if (plen)
        memcpy(q, payload, plen);
    *out = buf;
    *len = n;
    return 0;
}

/* Checks everything before use: the bytes come from another process. */
static int wire_decode(const void *in, size_t len, cmp_params *p,
                       uint64_t *index, const void **payload, size_t *plen)
{
    wire_head h;
    size_t nw;
    cmp_workloads(&nw);
    if (len < sizeof h)
        return -EPROTO;
    memcpy(&h, in, sizeof h);
    if (h.magic != WIRE_MAGIC || h.workload >= nw || h.tasks == 0 ||
        h.index >= h.tasks || h.port > 65535 || h.dir_len >= sizeof p->dir ||
        h.lib_len >= sizeof p->lib || h.sym_len >= sizeof p->sym ||
        (size_t)h.dir_len + h.lib_len + h.sym_len > len - sizeof h)
        return -EPROTO;
    memset(p, 0, sizeof *p);
    const char *q = (const char *)in + sizeof h;
    memcpy(p->dir, q, h.dir_len);
    q += h.dir_len;
    memcpy(p->lib, q, h.lib_len);
    q += h.lib_len;
    memcpy(p->sym, q, h.sym_len);
    q += h.sym_len;
    p->workload = h.workload;
    p->tasks = h.tasks;
    p->size = h.size;
    p->latency_ns = h.latency_ns;
    p->port = (uint16_t)h.port;
    *index = h.index;
    *payload = q;
    *plen = len - (size_t)(q - (const char *)in);
    return 0;
}

static int compare_task(const void *in, size_t len, void **out, size_t *out_len)
{
    /* About 8 KiB: fine on a worker's stack, and never shared. */
    cmp_params p;
    uint64_t i;
    const void *payload;
    size_t plen;
    if (wire_decode(in, len, &p, &i, &payload, &plen) < 0)
        return cmp_fail(-EPROTO, "malformed task input (%zu bytes)", len);
    size_t nw;
    const cmp_workload *w = &cmp_workloads(&nw)[p.workload];
    if (w->remote)
        return w->remote(&p, i, payload, plen, out, out_len);
    uint64_t *sum = malloc(sizeof *sum);
    if (!sum)
        return -ENOMEM;
    int rc = w->run(NULL, &p, i, sum);
    if (rc < 0) {
        free(sum);
        return rc;
    }
    *out = sum;
    *out_len = sizeof *sum;
    return 0;
}
CC_TASK_REGISTER_AS(compare_task, "concur_compare_task");

int64_t cmp_proc_kib(const char *pid, const char *key)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%s/status", pid);
    FILE *f = fopen(path, "re");
    if (!f)
        return 0;
    size_t klen = strlen(key);
    long long v = 0;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, key, klen) == 0 && line[klen] == ':') {
            v = strtoll(line + klen + 1, NULL, 10);
            break;
        }
    fclose(f);
    return v;
}

static int64_t workers_peak_kib(cc_executor *ex)
{
    int64_t pids[256];
    int n = cc_process_pool_pids(ex, pids, 256);
    int64_t total = 0;
    for (int k = 0; k < n && k < 256; k++) {
        char pid[32];
        snprintf(pid, sizeof pid, "%lld", (long long)pids[k]);
        total += cmp_proc_kib(pid, "VmHWM");
    }
    return total;
}

/* Every task as a bytes task on ex (the process pool or the MPI pool),
 * then every result; *lost counts the tasks whose worker died or ran out
 * of time. Returns whether every task was submitted. */
static bool run_bytes_tasks(cc_executor *ex, slot *slots, uint64_t n,
                            const cmp_params *p, cmp_report *r,
                            uint64_t *lost)
{
    const cmp_workload *w = slots[0].w;
    int rc;
    cc_future **fs = calloc((size_t)n, sizeof *fs);
    uint64_t submitted = 0;
    if (!fs)
        fail(r, -ENOMEM, "out of memory for %llu futures",
             (unsigned long long)n);
    for (; fs && submitted < n; submitted++) {
        const void *payload = NULL;
        size_t plen = 0;
        if (w->payload)
            w->payload(slots[0].state, p, submitted, &payload, &plen);
        void *in;
        size_t len;
        rc = wire_encode(p, submitted, payload, plen, &in, &len);
        if (rc == 0) {
            rc = cc_executor_submit_bytes(ex, CC_TASK(compare_task), in, len,
                                          &fs[submitted]);
            free(in);
        }
        if (rc < 0) {
            fail(r, rc, "cc_executor_submit_bytes: %s", cc_strerror(rc));
            break;
        }
    }
    note_queue(ex, r);
    uint64_t lost_workers = 0;
    for (uint64_t i = 0; i < submitted; i++) {
        slot *s = &slots[i];
        const void *data;
        size_t len;
        s->rc = cc_future_result_bytes(fs[i], CC_FOREVER, &data, &len);
        if (s->rc == 0) {
            task_message[0] = 0;
            if (w->absorb) {
                s->rc = w->absorb(s->state, p, i, data, len, &s->sum);
                if (s->rc < 0)
                    snprintf(s->message, sizeof s->message, "%s", task_message);
            } else if (len == sizeof s->sum) {
                memcpy(&s->sum, data, sizeof s->sum);
            } else {
                s->rc = -EPROTO;
                snprintf(s->message, sizeof s->message,
                         "%zu bytes of output, expected 8", len);
            }
        } else {
            const char *m = cc_future_error_message(fs[i]);
            snprintf(s->message, sizeof s->message, "%s",
                     m ? m : cc_strerror(s->rc));
            lost_workers += s->rc == CC_EWORKER_LOST || s->rc == -ETIMEDOUT;
        }
        cc_future_unref(fs[i]);
    }
    free(fs);
    *lost = lost_workers;
    return submitted == n;
}

/* The tasks failed: say how many, and what the pool did about it. */
static void count_failures(cmp_report *r, uint64_t n, uint64_t lost,
                           const char *after_loss)
{
    if (r->failed_tasks)
        snprintf(r->message + strlen(r->message),
                 sizeof r->message - strlen(r->message),
                 "; %llu of %llu tasks failed%s",
                 (unsigned long long)r->failed_tasks, (unsigned long long)n,
                 lost ? after_loss : "");
}

static void run_process_pool(slot *slots, uint64_t n, const cmp_params *p,
                             cmp_report *r, int64_t *workers_kib)
{
    cc_process_pool_options o = {.max_workers = p->workers};
    cc_executor *ex;
    int rc = cc_process_pool_new(&ex, &o);
    if (rc < 0) {
        fail(r, rc, "cc_process_pool_new: %s", cc_strerror(rc));
        return;
    }
    uint64_t lost;
    bool all = run_bytes_tasks(ex, slots, n, p, r, &lost);
    /* Read while the workers live: their own peaks, not their parent's. */
    *workers_kib = workers_peak_kib(ex);
    r->workers = cc_executor_max_workers(ex);
    read_stats(ex, r);
    cc_executor_free(ex);
    if (all) {
        collect(slots, n, r);
        count_failures(r, n, lost,
                       ", the pool replaced the lost workers and ran the "
                       "other tasks");
    }
}

/* The MPI pool of this rank 0 (compare_mpi.c), started once for the whole
 * comparison: MPI starts once per job. Its clock therefore starts with
 * the pool already up. */
static void run_mpi_pool(slot *slots, uint64_t n, const cmp_params *p,
                         cmp_report *r)
{
    cc_executor *ex = cmp_mpi_executor();
    if (!ex) {
        fail(r, -ENOTSUP, "%s", cmp_mpi_unavailable());
        return;
    }
    uint64_t lost;
    bool all = run_bytes_tasks(ex, slots, n, p, r, &lost);
    r->workers = cc_executor_max_workers(ex);
    if (all) {
        collect(slots, n, r);
        count_failures(r, n, lost,
                       ", their worker ranks were retired (see docs/mpi.md)");
    }
}

/* ---- async -------------------------------------------------------------- */

typedef struct async_run {
    slot *slots;
    uint64_t n;
    uint64_t created;
    int rc;
} async_run;

static int async_task(void *arg, void **result)
{
    (void)result;
    slot *s = arg;
    slot_run(s, true);
    return s->rc;
}

static int async_main(void *arg, void **result)
{
    (void)result;
    async_run *a = arg;
    cc_future **fs = calloc((size_t)a->n, sizeof *fs);
    if (!fs)
        return a->rc = -ENOMEM;
    for (; a->created < a->n; a->created++) {
        int rc =
            cc_create_task(async_task, &a->slots[a->created], &fs[a->created]);
        if (rc < 0) {
            a->rc = rc;
            break;
        }
    }
    /* asyncio.gather without return_exceptions stops at the first error;
     * every task is awaited here so that each outcome is known. */
    for (uint64_t i = 0; i < a->created; i++) {
        cc_await(fs[i], NULL);
        cc_future_unref(fs[i]);
    }
    free(fs);
    return 0;
}

static void run_async(slot *slots, uint64_t n, bool big_stacks, cmp_report *r)
{
    /* A user's plain C function may use a thread-sized stack; coroutine
     * stacks cost only the pages touched. */
    cc_loop_options o = {.stack_size = big_stacks ? (size_t)8 << 20 : 0};
    cc_loop *loop;
    int rc = cc_loop_new(&loop, &o);
    if (rc < 0) {
        fail(r, rc, "cc_loop_new: %s", cc_strerror(rc));
        return;
    }
    async_run a = {slots, n, 0, 0};
    cc_future *main_task;
    rc = cc_loop_create_task(loop, async_main, &a, &main_task);
    if (rc == 0) {
        rc = cc_loop_run_until_complete(loop, main_task);
        cc_future_unref(main_task);
    }
    cc_loop_free(loop);
    r->workers = 1;
    if (rc < 0 || a.rc < 0) {
        int e = rc < 0 ? rc : a.rc;
        fail(r, e, "the event loop failed after %llu of %llu tasks: %s",
             (unsigned long long)a.created, (unsigned long long)n,
             cc_strerror(e));
        return;
    }
    collect(slots, n, r);
}

/* ---- the measurement ---------------------------------------------------- */

static int64_t cpu_ns(int who)
{
    struct rusage ru;
    getrusage(who, &ru);
    return ((int64_t)ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000000 +
           ((int64_t)ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1000;
}

/* Linux resets VmHWM to the current RSS on "5" (since 4.0), so that the
 * peak read at the end belongs to the model alone. */
static void reset_peak(void)
{
    FILE *f = fopen("/proc/self/clear_refs", "we");
    if (f) {
        fputs("5", f);
        fclose(f);
    }
}

void cmp_run_model(cmp_model m, const cmp_params *p, cmp_report *r)
{
    size_t nw;
    const cmp_workload *w = &cmp_workloads(&nw)[p->workload];
    r->magic = CMP_REPORT_MAGIC;
    if (m == CMP_PROCESS_POOL) {
        /* Workers are forked from a launcher made now, while this
         * process is small and single-threaded (see concur/process.h). */
        int rc = cc_process_init();
        if (rc < 0) {
            fail(r, rc, "cc_process_init: %s", cc_strerror(rc));
            return;
        }
    }
    void *state = NULL;
    if (w->prepare) {
        int rc = w->prepare(p, &state);
        if (rc < 0) {
            fail(r, rc, "preparing the input: %s", cc_strerror(rc));
            return;
        }
    }
    slot *slots = calloc((size_t)p->tasks, sizeof *slots);
    if (!slots) {
        fail(r, -ENOMEM, "out of memory for %llu tasks",
             (unsigned long long)p->tasks);
        if (w->release)
            w->release(state);
        return;
    }
    for (uint64_t i = 0; i < p->tasks; i++)
        slots[i] = (slot){.w = w, .p = p, .state = state, .index = i};

    reset_peak();
    int64_t rss0 = cmp_proc_kib("self", "VmRSS");
    int64_t workers_kib = 0;
    r->cpu_before_ns = cpu_ns(RUSAGE_SELF) + cpu_ns(RUSAGE_CHILDREN);
    int64_t t0 = cmp_now_ns();
    switch (m) {
    case CMP_SEQUENTIAL:
        run_sequential(slots, p->tasks, r);
        break;
    case CMP_THREADS:
        run_threads(slots, p->tasks, r);
        break;
    case CMP_THREAD_POOL:
        run_thread_pool(slots, p->tasks, p, r);
        break;
    case CMP_PROCESS_POOL:
        run_process_pool(slots, p->tasks, p, r, &workers_kib);
        break;
    case CMP_ASYNC:
        run_async(slots, p->tasks, p->workload == cmp_user_workload(), r);
        break;
    case CMP_MPI:
        run_mpi_pool(slots, p->tasks, p, r);
        break;
    default:
        fail(r, -EINVAL, "%s is not a model this build can run",
             cmp_model_name(m));
        break;
    }
    r->wall_ns = cmp_now_ns() - t0;
    int64_t hwm = cmp_proc_kib("self", "VmHWM");
    r->peak_kib = (hwm > rss0 ? hwm - rss0 : 0) + workers_kib;
    free(slots);
    if (w->release)
        w->release(state);
}
