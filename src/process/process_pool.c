/*
 * process_pool.c — ProcessPoolExecutor whose workers may die without
 * taking anything else with them.
 *
 * Threads: callers submit; one supervisor thread per pool collects
 * responses, watches worker deaths and time limits, dispatches queued
 * tasks, starts and retires workers. A submit that finds an idle worker
 * (and nothing queued ahead of it) writes its request into that worker's
 * channel itself, so a round trip involves no thread of ours but the
 * supervisor picking up the answer.
 *
 * Worker states (set_wstate asserts the transitions):
 *   EMPTY --spawn--> STARTING --ready--> IDLE --dispatch--> BUSY
 *   BUSY --response--> IDLE | EXITING (retired: max tasks, -ENOMEM)
 *   IDLE --exit request--> EXITING;  STARTING|BUSY --kill--> EXITING
 *   any but EMPTY --its process reaped--> EMPTY
 * Ownership: `lock` guards the queue, the pool state and every worker's
 * state, task, deadline and flags. A caller or the supervisor that moves a
 * worker to BUSY then writes its request without the lock: nobody else
 * touches a BUSY worker's request side. The supervisor alone reads
 * responses and leaves BUSY. Lock order: pool lock, then nothing (futures
 * are completed and processes freed after it is released).
 *
 * Pool states: RUNNING --shutdown--> SHUTDOWN; RUNNING|SHUTDOWN --break-->
 * BROKEN (restart budget spent, initializer failed). Tasks accepted before
 * shutdown still run; after a break queued tasks fail with
 * CC_EBROKEN_EXECUTOR and running ones finish.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "concur/error.h"
#include "concur/process.h"
#include "concur/thread.h"
#include "executor/executor_internal.h"
#include "future/future_internal.h"
#include "platform/platform.h"
#include "platform/process_platform.h"
#include "process/pool_internal.h"
#include "process/process_internal.h"
#include "process/wire.h"
#include "time/deadline.h"
#include "trace/trace_internal.h"

bool cci_task_registered(const cc_task_def *def);

enum pool_state { PP_RUNNING, PP_SHUTDOWN, PP_BROKEN };
enum wstate { W_EMPTY, W_STARTING, W_IDLE, W_BUSY, W_EXITING };

struct ppool;

struct ptask {
    struct ptask *next;
    struct ppool *pool; /* counts the outcome when the task is freed */
    cc_future *future; /* the task's reference */
    const cc_task_def *def;
    uint64_t id;
    size_t len;
    unsigned char *in; /* malloc'd copy while queued; NULL once written */
};

struct area {
    int fd;
    void *map;
    size_t mapped;
};

struct pworker {
    uint32_t state; /* enum wstate; __atomic (the supervisor peeks) */
    unsigned index;
    cc_process *proc;
    pid_t pid;
    int chan_fd;
    struct cci_chan *chan;
    struct area in, out;
    uint32_t seen_resp;  /* supervisor only */
    /* 1 from the claim (under the lock) until the claimer has finished
     * writing the request (release). The supervisor waits for 0 (acquire)
     * before it frees the task or unmaps the channel of a worker that died
     * or ran out of time meanwhile, so the writer never touches freed
     * memory. The acquire also shows ThreadSanitizer an order that really
     * runs through the worker process, which it cannot see. */
    uint32_t writing;
    struct ptask *task;  /* BUSY: the task in flight */
    int64_t deadline;    /* BUSY: time limit; EXITING: when to SIGKILL */
    unsigned tasks_done;
    bool retiring;       /* its exit is expected, not a death */
    bool timed_out;      /* killed for the time limit */
    bool malformed;      /* killed for a malformed response */
    /* For the dump and the trace: when the worker was spawned (supervisor
     * only), when its task started (under the lock), and the pid of the
     * dead worker this slot's next worker replaces (supervisor only). */
    int64_t spawn_ns;
    int64_t task_start_ns;
    pid_t replaces;
};

/* Statistics (cc_pool_stats): relaxed atomic adds. A process pool task
 * costs tens of microseconds, so one shared line costs nothing here. */
struct pp_counts {
    uint64_t submitted, completed, failed, cancelled, restarts;
};

struct ppool {
    cc_executor base;
    pthread_mutex_t lock;
    uint32_t state; /* enum pool_state; __atomic for lock-free reads */
    /* options, immutable */
    unsigned max_workers;
    cc_start_method method;
    char *init_name;
    void *init_arg;
    size_t init_len;
    unsigned max_tasks;
    int64_t time_limit; /* ns, 0 none */
    uint64_t memory_limit;
    unsigned budget;
    int64_t window;
    size_t max_payload;
    /* under lock */
    struct ptask *head, *tail;
    uint32_t queued; /* __atomic: the spinning supervisor reads it */
    struct pworker *workers;
    uint64_t next_id;
    bool sup_sleeping;
    int64_t *deaths; /* ring of budget + 1 death times */
    unsigned death_at;
    char *broken_reason;
    /* the supervisor */
    int event_fd;
    cc_thread *supervisor;
    uint8_t *scratch; /* CCI_CHAN_RESP_CAP bytes, supervisor only */
    struct ppool *next_live;
    pid_t owner; /* the process the pool belongs to */
    struct pp_counts counts;
};

static void count(uint64_t *counter)
{
    __atomic_fetch_add(counter, 1, __ATOMIC_RELAXED);
}

static const struct cci_executor_ops process_pool_ops;

/* ---- states ------------------------------------------------------------------ */

static enum pool_state pool_state(struct ppool *pp)
{
    return (enum pool_state)__atomic_load_n(&pp->state, __ATOMIC_ACQUIRE);
}

static void set_pool_state(struct ppool *pp, enum pool_state to)
{
    enum pool_state from = pool_state(pp);
    if (from == to)
        return;
    if (!((from == PP_RUNNING && (to == PP_SHUTDOWN || to == PP_BROKEN)) ||
          (from == PP_SHUTDOWN && to == PP_BROKEN))) {
        fprintf(stderr, "concur: illegal process pool transition %d -> %d\n",
                from, to);
        abort();
    }
    __atomic_store_n(&pp->state, to, __ATOMIC_RELEASE);
}

static enum wstate wstate(const struct pworker *w)
{
    return (enum wstate)__atomic_load_n(&w->state, __ATOMIC_ACQUIRE);
}

static void set_wstate(struct pworker *w, enum wstate to)
{
    enum wstate from = wstate(w);
    bool ok = false;
    switch (to) {
    case W_STARTING: ok = from == W_EMPTY; break;
    case W_IDLE: ok = from == W_STARTING || from == W_BUSY; break;
    case W_BUSY: ok = from == W_IDLE; break;
    case W_EXITING: ok = from != W_EMPTY && from != W_EXITING; break;
    case W_EMPTY: ok = from != W_EMPTY; break;
    }
    if (!ok) {
        fprintf(stderr, "concur: illegal worker transition %d -> %d\n", from,
                to);
        abort();
    }
    __atomic_store_n(&w->state, to, __ATOMIC_RELEASE);
}

static void wake_supervisor(struct ppool *pp)
{
    uint64_t one = 1;
    (void)!write(pp->event_fd, &one, sizeof one);
}

/* ---- completing tasks ------------------------------------------------------------ */

/* Every accepted task ends here exactly once, its future settled (a task
 * refused at submit never settles it, and is not counted). */
static void task_free(struct ptask *t)
{
    if (cc_future_done(t->future)) {
        struct pp_counts *c = &t->pool->counts;
        count(cc_future_cancelled(t->future) ? &c->cancelled
              : cci_future_failed(t->future) ? &c->failed
                                             : &c->completed);
    }
    cc_future_unref(t->future);
    free(t->in);
    free(t);
}

static void task_fail(struct ptask *t, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void task_fail(struct ptask *t, int code, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    /* PENDING (queued) or RUNNING (dispatched): finish either way. */
    cc_future_set_running_or_notify_cancel(t->future);
    cci_future_finish(t->future, code, NULL, NULL, msg);
    task_free(t);
}

/* "killed by signal 11 (Segmentation fault)" / "exited with status 99" */
static void describe_exit(int code, char *buf, size_t cap)
{
    if (code < 0) {
        const char *d = sigdescr_np(-code);
        snprintf(buf, cap, "was killed by signal %d (%s)", -code,
                 d ? d : "unknown signal");
    } else {
        snprintf(buf, cap, "exited with status %d", code);
    }
}

/* ---- shared areas ---------------------------------------------------------------- */

static void area_close(struct area *a)
{
    if (a->map)
        munmap(a->map, a->mapped);
    if (a->fd >= 0)
        close(a->fd);
    a->map = NULL;
    a->mapped = 0;
    a->fd = -1;
}

/* Maps the whole current file if less than need bytes are mapped. The file
 * is sealed against shrinking, so the mapping stays backed. */
static int area_map(struct area *a, size_t need)
{
    if (a->mapped >= need)
        return 0;
    struct stat st;
    if (fstat(a->fd, &st) < 0)
        return -errno;
    if ((uint64_t)st.st_size < need)
        return -EPROTO;
    void *p = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE,
                   MAP_SHARED, a->fd, 0);
    if (p == MAP_FAILED)
        return -errno;
    if (a->map)
        munmap(a->map, a->mapped);
    a->map = p;
    a->mapped = (size_t)st.st_size;
    return 0;
}

static int area_grow(struct area *a, size_t need)
{
    struct stat st;
    if (fstat(a->fd, &st) < 0)
        return -errno;
    if ((uint64_t)st.st_size < need) {
        size_t size = (size_t)st.st_size * 2 > need ? (size_t)st.st_size * 2
                                                    : need;
        if (ftruncate(a->fd, (off_t)size) < 0 &&
            ftruncate(a->fd, (off_t)need) < 0)
            return -errno;
    }
    return area_map(a, need);
}

static int sealed_memfd(const char *name, size_t size, unsigned seals)
{
    int fd = cci_memfd(name, size);
    if (fd < 0)
        return fd;
    if (fcntl(fd, F_ADD_SEALS, seals) < 0) {
        int err = -errno;
        close(fd);
        return err;
    }
    return fd;
}

/* ---- requests -------------------------------------------------------------------- */

/*
 * Writes the request for t (input at `in`) into w's channel and wakes the
 * worker. Called by whoever moved w to BUSY, without the lock. Returns 0,
 * or a negative code if the input could not be placed (the caller fails
 * the task and returns the worker to IDLE).
 */
static int send_request(struct pworker *w, const struct ptask *t,
                        const void *in, size_t len)
{
    struct cci_chan *c = w->chan;
    bool ool = len > CC_PROCESS_POOL_INLINE;
    if (ool) {
        int rc = area_grow(&w->in, len);
        if (rc < 0)
            return rc;
        memcpy(w->in.map, in, len);
    }
    const char *name = t->def->name;
    long n = cci_task_encode(c->req, sizeof c->req, CCI_TASK_RUN, t->id, name,
                             strlen(name), ool, ool ? NULL : in, len);
    if (n < 0)
        return (int)n;
    __atomic_store_n(&c->req_len, (uint64_t)n, __ATOMIC_RELAXED);
    __atomic_fetch_add(&c->req_seq, 1, __ATOMIC_SEQ_CST);
    if (__atomic_load_n(&c->worker_sleeping, __ATOMIC_SEQ_CST))
        cci_futex_wake(&c->req_seq, 1, true);
    return 0;
}

/* The claimer is done with w's request side (written or failed). */
static void end_writing(struct pworker *w)
{
    __atomic_store_n(&w->writing, 0, __ATOMIC_RELEASE);
}

/* Supervisor: waits for a claimer still writing into w (bounded: a copy
 * of one input). */
static void wait_writer(struct pworker *w)
{
    while (__atomic_load_n(&w->writing, __ATOMIC_ACQUIRE))
        cci_cpu_relax();
}

static void send_exit(struct pworker *w)
{
    struct cci_chan *c = w->chan;
    long n = cci_task_encode(c->req, sizeof c->req, CCI_TASK_EXIT, 0, NULL, 0,
                             false, NULL, 0);
    __atomic_store_n(&c->req_len, (uint64_t)n, __ATOMIC_RELAXED);
    __atomic_fetch_add(&c->req_seq, 1, __ATOMIC_SEQ_CST);
    if (__atomic_load_n(&c->worker_sleeping, __ATOMIC_SEQ_CST))
        cci_futex_wake(&c->req_seq, 1, true);
}

/* Called with the lock held: takes w (IDLE) for t. The future becomes
 * RUNNING; returns false (and frees t) if it had been cancelled. */
static bool claim_locked(struct ppool *pp, struct pworker *w, struct ptask *t)
{
    if (cc_future_set_running_or_notify_cancel(t->future) != 0) {
        task_free(t);
        return false;
    }
    t->id = ++pp->next_id;
    w->task = t;
    w->task_start_ns = cci_now_ns();
    w->deadline = pp->time_limit ? cci_now_ns() + pp->time_limit : 0;
    __atomic_store_n(&w->writing, 1, __ATOMIC_RELAXED);
    set_wstate(w, W_BUSY);
    return true;
}

/* A request that could not be written: fail the task, free the worker. */
static void unclaim(struct ppool *pp, struct pworker *w, int err)
{
    pthread_mutex_lock(&pp->lock);
    struct ptask *t = w->task;
    w->task = NULL;
    if (wstate(w) == W_BUSY)
        set_wstate(w, W_IDLE);
    pthread_mutex_unlock(&pp->lock);
    if (t)
        task_fail(t, err, "cannot pass %zu bytes to a worker: %s", t->len,
                  cc_strerror(err));
    wake_supervisor(pp);
}

/* ---- submit -------------------------------------------------------------------- */

static int refusal(enum pool_state s)
{
    return s == PP_BROKEN ? CC_EBROKEN_EXECUTOR : CC_ESHUTDOWN;
}

static struct pworker *idle_worker_locked(struct ppool *pp)
{
    for (unsigned i = 0; i < pp->max_workers; i++)
        if (wstate(&pp->workers[i]) == W_IDLE)
            return &pp->workers[i];
    return NULL;
}

static int pp_submit(cc_executor *ex, cc_task_fn fn, void *arg,
                     cc_future **out)
{
    (void)ex;
    (void)fn;
    (void)arg;
    (void)out;
    return -EINVAL; /* a void * means nothing in a worker process */
}

static int pp_submit_bytes(cc_executor *ex, const cc_task_def *def,
                           const void *in, size_t len, cc_future **out)
{
    struct ppool *pp = (struct ppool *)ex;
    if (len > pp->max_payload)
        return -EMSGSIZE;
    enum pool_state s = pool_state(pp);
    if (s != PP_RUNNING)
        return refusal(s);
    struct ptask *t = calloc(1, sizeof *t);
    if (!t)
        return -ENOMEM;
    int rc = cc_future_new(&t->future);
    if (rc < 0) {
        free(t);
        return rc;
    }
    t->pool = pp;
    t->def = def;
    t->len = len;
    cc_future *f = cc_future_ref(t->future); /* the caller's */

    /* Fast path: an idle worker and nothing queued ahead. */
    pthread_mutex_lock(&pp->lock);
    s = pool_state(pp);
    struct pworker *w = NULL;
    if (s == PP_RUNNING && !pp->head)
        w = idle_worker_locked(pp);
    if (w) {
        count(&pp->counts.submitted);
        claim_locked(pp, w, t); /* a fresh future cannot be cancelled */
        bool wake = pp->sup_sleeping;
        pthread_mutex_unlock(&pp->lock);
        rc = send_request(w, t, in, len);
        end_writing(w);
        if (rc < 0)
            unclaim(pp, w, rc);
        else if (wake)
            wake_supervisor(pp);
        *out = f;
        return 0;
    }
    pthread_mutex_unlock(&pp->lock);

    /* Queue a copy of the input. */
    if (len) {
        t->in = malloc(len);
        if (!t->in) {
            cc_future_unref(f);
            task_free(t);
            return -ENOMEM;
        }
        memcpy(t->in, in, len);
    }
    pthread_mutex_lock(&pp->lock);
    s = pool_state(pp);
    if (s != PP_RUNNING) {
        pthread_mutex_unlock(&pp->lock);
        cc_future_unref(f);
        task_free(t);
        return refusal(s);
    }
    if (pp->tail)
        pp->tail->next = t;
    else
        pp->head = t;
    pp->tail = t;
    count(&pp->counts.submitted);
    __atomic_fetch_add(&pp->queued, 1, __ATOMIC_RELEASE);
    bool wake = pp->sup_sleeping;
    pthread_mutex_unlock(&pp->lock);
    if (wake)
        wake_supervisor(pp);
    *out = f;
    return 0;
}

static struct ptask *dequeue_locked(struct ppool *pp)
{
    struct ptask *t = pp->head;
    if (t) {
        pp->head = t->next;
        if (!pp->head)
            pp->tail = NULL;
        t->next = NULL;
        __atomic_fetch_sub(&pp->queued, 1, __ATOMIC_RELEASE);
    }
    return t;
}

/* ---- the supervisor: workers ------------------------------------------------------- */

static void break_pool_locked(struct ppool *pp, struct ptask **failed,
                              const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Called with the lock held: marks the pool broken and hands back the
 * queued tasks, to be failed once the lock is released. */
static void break_pool_locked(struct ppool *pp, struct ptask **failed,
                              const char *fmt, ...)
{
    if (pool_state(pp) == PP_BROKEN)
        return;
    set_pool_state(pp, PP_BROKEN);
    va_list ap;
    va_start(ap, fmt);
    if (vasprintf(&pp->broken_reason, fmt, ap) < 0)
        pp->broken_reason = NULL;
    va_end(ap);
    struct ptask *t;
    while ((t = dequeue_locked(pp)) != NULL) {
        t->next = *failed;
        *failed = t;
    }
}

static void fail_broken(struct ppool *pp, struct ptask *list)
{
    while (list) {
        struct ptask *next = list->next;
        task_fail(list, CC_EBROKEN_EXECUTOR, "process pool is broken: %s",
                  pp->broken_reason ? pp->broken_reason : "unknown reason");
        list = next;
    }
}

/* Records a death; returns true if the restart budget is now exceeded.
 * Called with the lock held. */
static bool count_death_locked(struct ppool *pp)
{
    int64_t now = cci_now_ns();
    pp->deaths[pp->death_at] = now;
    pp->death_at = (pp->death_at + 1) % (pp->budget + 1);
    /* The oldest of the last budget+1 deaths: all of them within the
     * window means more than budget deaths in it. */
    int64_t oldest = pp->deaths[pp->death_at];
    return oldest != 0 && now - oldest <= pp->window;
}

static void worker_release(struct pworker *w)
{
    cc_process_free(w->proc); /* reaps (kills first if it still runs) */
    w->proc = NULL;
    if (w->chan)
        munmap(w->chan, CCI_CHAN_SIZE);
    w->chan = NULL;
    if (w->chan_fd >= 0)
        close(w->chan_fd);
    w->chan_fd = -1;
    area_close(&w->in);
    area_close(&w->out);
    w->pid = 0;
}

/* Starts a worker in slot w (EMPTY, marked STARTING by the caller). Runs in
 * the supervisor without the lock. Returns 0 or a negative code. */
static int spawn(struct ppool *pp, struct pworker *w)
{
    w->spawn_ns = cci_now_ns();
    w->chan_fd = sealed_memfd("concur-chan", CCI_CHAN_SIZE,
                              F_SEAL_SHRINK | F_SEAL_GROW);
    w->in.fd = sealed_memfd("concur-in", 0, F_SEAL_SHRINK);
    w->out.fd = sealed_memfd("concur-out", 0, F_SEAL_SHRINK);
    int rc = w->chan_fd < 0 ? w->chan_fd
             : w->in.fd < 0 ? w->in.fd
             : w->out.fd < 0 ? w->out.fd
                             : 0;
    void *map = NULL;
    if (rc == 0)
        rc = cci_map_shared(w->chan_fd, CCI_CHAN_SIZE, &map);
    if (rc < 0) {
        worker_release(w);
        return rc;
    }
    w->chan = map;
    w->seen_resp = 0;
    size_t nlen = pp->init_name ? strlen(pp->init_name) : 0;
    size_t cfg_len = sizeof(struct cci_worker_config) + nlen + pp->init_len;
    unsigned char *cfg = malloc(cfg_len);
    if (!cfg) {
        worker_release(w);
        return -ENOMEM;
    }
    struct cci_worker_config c = {
        .magic = CCI_WORKER_MAGIC,
        .chan_fd = w->chan_fd,
        .in_fd = w->in.fd,
        .out_fd = w->out.fd,
        .event_fd = pp->event_fd,
        .init_name_len = (uint32_t)nlen,
        .init_arg_len = pp->init_len,
        .memory_limit = pp->memory_limit,
        .max_payload = pp->max_payload,
    };
    memcpy(cfg, &c, sizeof c);
    if (nlen)
        memcpy(cfg + sizeof c, pp->init_name, nlen);
    if (pp->init_len)
        memcpy(cfg + sizeof c + nlen, pp->init_arg, pp->init_len);
    int fds[4] = {w->chan_fd, w->in.fd, w->out.fd, pp->event_fd};
    char name[48];
    snprintf(name, sizeof name, "ProcessPoolWorker-%u", w->index);
    cc_process_options o = {
        .name = name,
        .daemon = true,
        .start_method = pp->method,
        .pass_fds = fds,
        .n_pass_fds = 4,
    };
    rc = cc_process_new(&w->proc, cci_pool_worker_main, cfg, cfg_len, &o);
    free(cfg);
    if (rc == 0)
        rc = cc_process_start(w->proc);
    if (rc < 0) {
        worker_release(w);
        return rc;
    }
    w->pid = (pid_t)cc_process_pid(w->proc);
    w->tasks_done = 0;
    w->retiring = w->timed_out = w->malformed = false;
    return 0;
}

/* What a response did to a task, finished by finish_outcome once no lock
 * is held: an error code and message, or the result bytes (malloc'd). */
struct outcome {
    struct ptask *task;
    int status;
    void *data;
    size_t len;
    char *msg;
};

static void kill_worker_locked(struct pworker *w)
{
    cc_process_kill(w->proc);
    w->deadline = 0;
    if (wstate(w) != W_EXITING)
        set_wstate(w, W_EXITING);
}

/*
 * Reads w's response (it has one: resp_seq moved) into oc. Supervisor
 * only; the lock is taken only around the state changes.
 */
static void handle_response(struct ppool *pp, struct pworker *w,
                            struct outcome *oc, struct ptask **broken)
{
    struct cci_chan *c = w->chan;
    wait_writer(w);
    w->seen_resp = __atomic_load_n(&c->resp_seq, __ATOMIC_ACQUIRE);
    size_t n = __atomic_load_n(&c->resp_len, __ATOMIC_RELAXED);
    int rc = n <= CCI_CHAN_RESP_CAP ? 0 : -EPROTO;
    struct cci_result_view v;
    if (rc == 0) {
        /* Copy first: the worker could change the bytes while we check
         * them. Decoding our copy is race-free. */
        memcpy(pp->scratch, c->resp, n);
        rc = cci_result_decode(pp->scratch, n, pp->max_payload, &v);
    }
    pthread_mutex_lock(&pp->lock);
    enum wstate st = wstate(w);
    struct ptask *t = st == W_BUSY ? w->task : NULL;
    if (st == W_EXITING || (st != W_STARTING && st != W_BUSY)) {
        pthread_mutex_unlock(&pp->lock); /* a late answer: ignored */
        return;
    }
    if (rc == 0 && st == W_STARTING && v.id != CCI_READY_ID)
        rc = -EPROTO;
    if (rc == 0 && st == W_BUSY && v.id != t->id)
        rc = -EPROTO;
    if (rc < 0) {
        w->task = NULL;
        w->malformed = true;
        kill_worker_locked(w);
        pthread_mutex_unlock(&pp->lock);
        if (t && cci_trace_on())
            cci_trace_worker_task(pp, w->pid, w->index, t->def->name,
                                  w->task_start_ns, CCI_TASK_FAILED, -EPROTO);
        oc->task = t;
        oc->status = -EPROTO;
        if (asprintf(&oc->msg, "malformed response from worker process %d",
                     (int)w->pid) < 0)
            oc->msg = NULL;
        return;
    }
    if (st == W_STARTING) {
        if (v.status < 0) {
            break_pool_locked(pp, broken,
                              "initializer '%s' failed in worker process "
                              "%d: %s%s%.*s",
                              pp->init_name, (int)w->pid,
                              cc_strerror(v.status),
                              v.message_len ? ": " : "", (int)v.message_len,
                              v.message);
            w->retiring = true;
            set_wstate(w, W_EXITING); /* it exits by itself */
            w->deadline = cci_now_ns() + CC_SEC(5);
        } else {
            set_wstate(w, W_IDLE);
        }
        pthread_mutex_unlock(&pp->lock);
        if (cci_trace_on())
            cci_trace_worker_start(pp, w->pid, w->index, w->replaces,
                                   w->spawn_ns);
        return;
    }
    /* BUSY: the task's outcome. The task stays attached until its result
     * is copied, so a concurrent kill cannot free it under us. */
    w->task = NULL;
    w->tasks_done++;
    bool retire = v.status == -ENOMEM ||
                  (pp->max_tasks && w->tasks_done >= pp->max_tasks);
    pthread_mutex_unlock(&pp->lock);
    if (cci_trace_on())
        cci_trace_worker_task(pp, w->pid, w->index, t->def->name,
                              w->task_start_ns,
                              v.status < 0 ? CCI_TASK_FAILED
                                           : CCI_TASK_COMPLETED,
                              v.status);
    oc->task = t;
    oc->status = v.status;
    if (v.status < 0) {
        if (v.message_len &&
            asprintf(&oc->msg, "%.*s", (int)v.message_len, v.message) < 0)
            oc->msg = NULL;
    } else if (v.result_len > 0) {
        const void *src = v.result;
        int arc = 0;
        if (v.out_of_line) {
            arc = area_map(&w->out, (size_t)v.result_len);
            src = w->out.map;
        }
        oc->data = arc == 0 ? malloc((size_t)v.result_len) : NULL;
        if (!oc->data) {
            oc->status = arc < 0 ? arc : -ENOMEM;
            if (asprintf(&oc->msg, "cannot receive a result of %llu bytes",
                         (unsigned long long)v.result_len) < 0)
                oc->msg = NULL;
        } else {
            memcpy(oc->data, src, (size_t)v.result_len);
            oc->len = (size_t)v.result_len;
        }
    }
    pthread_mutex_lock(&pp->lock);
    if (wstate(w) == W_BUSY) {
        if (retire) {
            w->retiring = true;
            set_wstate(w, W_EXITING);
            w->deadline = cci_now_ns() + CC_SEC(5);
            if (v.status != -ENOMEM)
                send_exit(w); /* after -ENOMEM it exits by itself */
        } else {
            set_wstate(w, W_IDLE);
        }
    }
    pthread_mutex_unlock(&pp->lock);
}

static void finish_outcome(struct outcome *oc)
{
    struct ptask *t = oc->task;
    if (!t)
        return;
    if (oc->status < 0) {
        cci_future_finish(t->future, oc->status, NULL, NULL, oc->msg);
    } else if (cc_future_set_result_bytes_owned(t->future, oc->data,
                                                oc->len) == 0) {
        oc->data = NULL;
    }
    free(oc->data);
    free(oc->msg);
    task_free(t);
    *oc = (struct outcome){0};
}

/* The process behind w has exited (its sentinel fired): reap, fail its
 * task if one was running, count the death. */
static void handle_exit(struct ppool *pp, struct pworker *w,
                        struct ptask **broken)
{
    wait_writer(w);
    /* An answer posted just before dying still counts. */
    if (__atomic_load_n(&w->chan->resp_seq, __ATOMIC_ACQUIRE) != w->seen_resp) {
        struct outcome oc = {0};
        handle_response(pp, w, &oc, broken);
        finish_outcome(&oc);
    }
    int code = 0;
    cc_process_join(w->proc, CC_FOREVER);
    cc_process_exitcode(w->proc, &code);
    char how[96];
    describe_exit(code, how, sizeof how);
    pthread_mutex_lock(&pp->lock);
    struct ptask *t = w->task;
    w->task = NULL;
    bool expected = w->retiring && code == 0;
    bool timed_out = w->timed_out;
    pid_t pid = w->pid;
    bool over = false;
    if (!expected && pool_state(pp) != PP_BROKEN)
        over = count_death_locked(pp);
    if (!expected)
        count(&pp->counts.restarts);
    w->replaces = expected ? 0 : pid;
    if (over)
        break_pool_locked(pp, broken,
                          "more than %u worker deaths within %.1f s (last: "
                          "process %d %s)",
                          pp->budget, (double)pp->window / 1e9, (int)pid, how);
    set_wstate(w, W_EMPTY);
    pthread_mutex_unlock(&pp->lock);
    if (cci_trace_on()) {
        if (t && !timed_out)
            cci_trace_worker_task(pp, pid, w->index, t->def->name,
                                  w->task_start_ns, CCI_TASK_FAILED,
                                  CC_EWORKER_LOST);
        cci_trace_worker_exit(pp, pid, w->index,
                              expected      ? CCI_WORKER_RETIRED
                              : timed_out   ? CCI_WORKER_TIMED_OUT
                              : w->malformed ? CCI_WORKER_KILLED
                                            : CCI_WORKER_DIED,
                              code);
    }
    if (t && !timed_out)
        task_fail(t, CC_EWORKER_LOST,
                  "worker process %d %s while running task '%s'", (int)pid,
                  how, t->def->name);
    else if (t)
        task_free(t);
    worker_release(w);
}

/* ---- the supervisor: the loop -------------------------------------------------------- */

/* Kills workers over their time limit or exit grace. Returns the nearest
 * deadline still ahead (CCI_NO_DEADLINE if none). */
static int64_t check_deadlines(struct ppool *pp)
{
    int64_t now = cci_now_ns(), next = CCI_NO_DEADLINE;
    struct ptask *late[64];
    unsigned nlate = 0;
    pid_t pids[64];
    unsigned slots[64];
    int64_t starts[64];
    pthread_mutex_lock(&pp->lock);
    for (unsigned i = 0; i < pp->max_workers; i++) {
        struct pworker *w = &pp->workers[i];
        enum wstate st = wstate(w);
        if (!w->deadline || (st != W_BUSY && st != W_EXITING))
            continue;
        if (w->deadline > now) {
            next = w->deadline < next ? w->deadline : next;
            continue;
        }
        /* A response that made it in time wins over the limit. */
        if (st == W_BUSY &&
            __atomic_load_n(&w->chan->resp_seq, __ATOMIC_ACQUIRE) !=
                w->seen_resp)
            continue;
        if (st == W_BUSY && nlate < 64) {
            wait_writer(w);
            late[nlate] = w->task;
            slots[nlate] = w->index;
            starts[nlate] = w->task_start_ns;
            pids[nlate++] = w->pid;
            w->timed_out = true; /* the task is failed here, not at exit */
            w->task = NULL;
        }
        kill_worker_locked(w);
    }
    pthread_mutex_unlock(&pp->lock);
    for (unsigned i = 0; i < nlate; i++) {
        if (cci_trace_on())
            cci_trace_worker_task(pp, pids[i], slots[i], late[i]->def->name,
                                  starts[i], CCI_TASK_FAILED, -ETIMEDOUT);
        task_fail(late[i], -ETIMEDOUT,
                  "task '%s' exceeded the time limit of %.3f s; worker "
                  "process %d was killed",
                  late[i]->def->name, (double)pp->time_limit / 1e9,
                  (int)pids[i]);
    }
    return next;
}

/* Collects every posted response. Returns how many. */
static unsigned collect(struct ppool *pp, struct ptask **broken)
{
    unsigned n = 0;
    for (unsigned i = 0; i < pp->max_workers; i++) {
        struct pworker *w = &pp->workers[i];
        enum wstate st = wstate(w);
        if (st == W_EMPTY || st == W_IDLE)
            continue;
        if (__atomic_load_n(&w->chan->resp_seq, __ATOMIC_ACQUIRE) ==
            w->seen_resp)
            continue;
        struct outcome oc = {0};
        handle_response(pp, w, &oc, broken);
        finish_outcome(&oc);
        n++;
    }
    /* A caller just woken by finish_outcome may be queued behind us on
     * this CPU: let it run now rather than after our spin slice. */
    if (n)
        cci_yield();
    return n;
}

/* Hands queued tasks to idle workers; starts a worker if tasks wait and
 * none is idle or starting for them; retires idle workers once shut down.
 * Returns how many things it did. */
static unsigned dispatch(struct ppool *pp, bool *done)
{
    unsigned did = 0;
    for (;;) {
        pthread_mutex_lock(&pp->lock);
        enum pool_state ps = pool_state(pp);
        struct pworker *w = NULL, *empty = NULL;
        struct ptask *t = NULL;
        unsigned starting = 0, live = 0;
        for (unsigned i = 0; i < pp->max_workers; i++) {
            enum wstate st = wstate(&pp->workers[i]);
            starting += st == W_STARTING;
            live += st != W_EMPTY;
            if (st == W_EMPTY && !empty)
                empty = &pp->workers[i];
        }
        if (ps != PP_BROKEN && pp->head && (w = idle_worker_locked(pp))) {
            t = dequeue_locked(pp);
            if (!claim_locked(pp, w, t)) {
                pthread_mutex_unlock(&pp->lock);
                did++;
                continue; /* cancelled while queued */
            }
            pthread_mutex_unlock(&pp->lock);
            int rc = send_request(w, t, t->in, t->len);
            free(t->in);
            t->in = NULL;
            end_writing(w);
            if (rc < 0)
                unclaim(pp, w, rc);
            did++;
            continue;
        }
        if (ps != PP_BROKEN && pp->queued > starting && empty) {
            set_wstate(empty, W_STARTING);
            pthread_mutex_unlock(&pp->lock);
            int rc = spawn(pp, empty);
            struct ptask *broken = NULL;
            pthread_mutex_lock(&pp->lock);
            if (rc < 0) {
                set_wstate(empty, W_EMPTY);
                /* A pool that can never start a worker must not leave
                 * its tasks waiting forever. */
                if (count_death_locked(pp) || live == 0)
                    break_pool_locked(pp, &broken,
                                      "cannot start a worker process: %s",
                                      cc_strerror(rc));
            }
            pthread_mutex_unlock(&pp->lock);
            fail_broken(pp, broken);
            did++;
            continue;
        }
        if (ps != PP_RUNNING && !pp->head) {
            for (unsigned i = 0; i < pp->max_workers; i++) {
                struct pworker *x = &pp->workers[i];
                if (wstate(x) == W_IDLE) {
                    x->retiring = true;
                    set_wstate(x, W_EXITING);
                    x->deadline = cci_now_ns() + CC_SEC(5);
                    send_exit(x);
                    did++;
                }
            }
        }
        *done = ps != PP_RUNNING && !pp->head && live == 0;
        pthread_mutex_unlock(&pp->lock);
        return did;
    }
}

/* Whether dispatch() could do something for a queued task now: hand it
 * to an idle worker, or start a worker for it. Called with the lock. */
static bool work_possible_locked(struct ppool *pp)
{
    if (!pp->head || pool_state(pp) == PP_BROKEN)
        return false;
    unsigned starting = 0;
    bool empty = false;
    for (unsigned i = 0; i < pp->max_workers; i++) {
        enum wstate st = wstate(&pp->workers[i]);
        if (st == W_IDLE)
            return true;
        starting += st == W_STARTING;
        empty |= st == W_EMPTY;
    }
    return empty && pp->queued > starting;
}

/* Sleeps until a response, a death, a submit, or the next deadline. */
static void supervisor_sleep(struct ppool *pp, int64_t deadline,
                             struct ptask **broken)
{
    struct pollfd fds[1 + 1024];
    struct pworker *who[1 + 1024];
    nfds_t n = 0;
    fds[n++] = (struct pollfd){.fd = pp->event_fd, .events = POLLIN};
    pthread_mutex_lock(&pp->lock);
    pp->sup_sleeping = true;
    for (unsigned i = 0; i < pp->max_workers && n < 1 + 1024; i++) {
        struct pworker *w = &pp->workers[i];
        if (wstate(w) == W_EMPTY)
            continue;
        __atomic_store_n(&w->chan->parent_sleeping, 1, __ATOMIC_SEQ_CST);
        who[n] = w;
        fds[n++] = (struct pollfd){.fd = cc_process_sentinel(w->proc),
                                   .events = POLLIN};
    }
    /* A task queued just before sup_sleeping was set saw no sleeper and
     * did not wake us: dispatch must look again if it could act on it. */
    bool queued_work = work_possible_locked(pp);
    pthread_mutex_unlock(&pp->lock);
    /* Announced; now re-check, so that a response posted before a worker
     * could see the flag is not slept through. */
    bool pending = queued_work;
    for (nfds_t k = 1; k < n && !pending; k++)
        pending = __atomic_load_n(&who[k]->chan->resp_seq, __ATOMIC_SEQ_CST) !=
                  who[k]->seen_resp;
    if (!pending) {
        int timeout = -1;
        if (deadline != CCI_NO_DEADLINE) {
            int64_t left = deadline - cci_now_ns();
            timeout = left <= 0 ? 0 : (int)((left + 999999) / 1000000);
        }
        int rc = poll(fds, n, timeout);
        if (rc > 0 && (fds[0].revents & POLLIN)) {
            uint64_t v;
            (void)!read(pp->event_fd, &v, sizeof v);
        }
    }
    pthread_mutex_lock(&pp->lock);
    pp->sup_sleeping = false;
    pthread_mutex_unlock(&pp->lock);
    for (nfds_t k = 1; k < n; k++) {
        __atomic_store_n(&who[k]->chan->parent_sleeping, 0, __ATOMIC_RELAXED);
        if (!pending && (fds[k].revents & (POLLIN | POLLHUP | POLLERR)))
            handle_exit(pp, who[k], broken);
    }
}

/* Between sleeps a cheap check for deaths, so a worker that dies while
 * the supervisor spins is not missed for long. Returns how many exits it
 * handled. */
static unsigned poll_exits(struct ppool *pp, struct ptask **broken)
{
    unsigned n = 0;
    for (unsigned i = 0; i < pp->max_workers; i++) {
        struct pworker *w = &pp->workers[i];
        if (wstate(w) == W_EMPTY)
            continue;
        struct pollfd p = {.fd = cc_process_sentinel(w->proc),
                           .events = POLLIN};
        if (poll(&p, 1, 0) > 0) {
            handle_exit(pp, w, broken);
            n++;
        }
    }
    return n;
}

static int supervisor_main(void *arg)
{
    struct ppool *pp = arg;
    int64_t spin_until = cci_now_ns() + CCI_POOL_SPIN_NS;
    int64_t next_exit_check = 0;
    for (;;) {
        struct ptask *broken = NULL;
        unsigned did = collect(pp, &broken);
        int64_t deadline = check_deadlines(pp);
        bool done = false;
        did += dispatch(pp, &done);
        int64_t now = cci_now_ns();
        /* An exit handled here is progress: it must send us round the
         * loop again, not to sleep. `deadline` and `done` were computed
         * while the worker was still EXITING; once it is EMPTY it has no
         * sentinel in supervisor_sleep's poll set, and nothing else will
         * wake us. If the last retiring workers of a shut-down pool were
         * reaped here just as the spin ran out, the supervisor slept until
         * their stale SIGKILL deadline (5 s) before seeing live == 0. */
        if (now >= next_exit_check) {
            did += poll_exits(pp, &broken);
            next_exit_check = now + CC_MSEC(1);
        }
        fail_broken(pp, broken);
        broken = NULL;
        if (done)
            break;
        if (did) {
            spin_until = now + CCI_POOL_SPIN_NS;
            continue;
        }
        if (now < spin_until) {
            for (int k = 0; k < 64; k++)
                cci_cpu_relax();
            cci_yield();
            continue;
        }
        supervisor_sleep(pp, deadline, &broken);
        fail_broken(pp, broken);
        spin_until = cci_now_ns() + CCI_POOL_SPIN_NS;
    }
    return 0;
}

/* ---- shutdown, exit, free --------------------------------------------------------- */

static pthread_mutex_t live_lock = PTHREAD_MUTEX_INITIALIZER;
static struct ppool *live_pools;
static pid_t exit_registered_by; /* under live_lock */

static int pp_shutdown(cc_executor *ex, bool wait, bool cancel_futures)
{
    struct ppool *pp = (struct ppool *)ex;
    if (wait && cc_thread_current() == pp->supervisor)
        return -EDEADLK; /* from a done callback */
    struct ptask *cancelled = NULL;
    pthread_mutex_lock(&pp->lock);
    if (pool_state(pp) == PP_RUNNING)
        set_pool_state(pp, PP_SHUTDOWN);
    if (cancel_futures) {
        struct ptask *t;
        while ((t = dequeue_locked(pp)) != NULL) {
            t->next = cancelled;
            cancelled = t;
        }
    }
    pthread_mutex_unlock(&pp->lock);
    while (cancelled) {
        struct ptask *next = cancelled->next;
        cc_future_cancel(cancelled->future);
        task_free(cancelled);
        cancelled = next;
    }
    wake_supervisor(pp);
    if (wait)
        cc_thread_join(pp->supervisor, CC_FOREVER);
    return 0;
}

static void shutdown_live_pools(void)
{
    pthread_mutex_lock(&live_lock);
    /* Only our own pools: a forked child that calls exit() inherited a
     * copy of the list but none of the threads or workers. */
    for (struct ppool *p = live_pools; p; p = p->next_live)
        if (p->owner == getpid())
            pp_shutdown(&p->base, true, false);
    pthread_mutex_unlock(&live_lock);
}

/* Once per process, not once per program image: a fork child inherits
 * the parent's atexit list but registers the process module's handler
 * anew (process.c forgets the parent's state), and that handler stops the
 * launcher, killing the workers; ours must come after it in the list so
 * that it runs first and the accepted tasks finish. (With a once-only
 * registration a child that exit()ed with a live pool lost its task
 * whenever the pool's supervisor had started a launcher before exit.) The
 * parent's copy may run too, and finds the pools already shut down. */
static void register_exit(void)
{
    pthread_mutex_lock(&live_lock);
    if (exit_registered_by != getpid() && atexit(shutdown_live_pools) == 0)
        exit_registered_by = getpid();
    pthread_mutex_unlock(&live_lock);
}

static void live_remove(struct ppool *pp)
{
    pthread_mutex_lock(&live_lock);
    struct ppool **pl = &live_pools;
    while (*pl && *pl != pp)
        pl = &(*pl)->next_live;
    if (*pl)
        *pl = pp->next_live;
    pthread_mutex_unlock(&live_lock);
}

static void pp_destroy(cc_executor *ex)
{
    struct ppool *pp = (struct ppool *)ex;
    live_remove(pp);
    cc_thread_unref(pp->supervisor);
    for (unsigned i = 0; i < pp->max_workers; i++)
        if (wstate(&pp->workers[i]) != W_EMPTY)
            worker_release(&pp->workers[i]); /* only if the thread died */
    close(pp->event_fd);
    pthread_mutex_destroy(&pp->lock);
    free(pp->workers);
    free(pp->deaths);
    free(pp->scratch);
    free(pp->init_name);
    free(pp->init_arg);
    free(pp->broken_reason);
    free(pp);
}

static unsigned pp_max_workers(const cc_executor *ex)
{
    return ((const struct ppool *)ex)->max_workers;
}

/* Lock-free reads of atomics; like the thread pool's, a snapshot while
 * busy. Completion counts are read first, so that finished <= submitted
 * in the snapshot. */
static int pp_stats(const cc_executor *ex, cc_pool_stats *out)
{
    struct ppool *pp = (struct ppool *)ex;
    cc_pool_stats s = {0};
    s.completed = __atomic_load_n(&pp->counts.completed, __ATOMIC_RELAXED);
    s.failed = __atomic_load_n(&pp->counts.failed, __ATOMIC_RELAXED);
    s.cancelled = __atomic_load_n(&pp->counts.cancelled, __ATOMIC_RELAXED);
    s.worker_restarts = __atomic_load_n(&pp->counts.restarts,
                                        __ATOMIC_RELAXED);
    s.queued = __atomic_load_n(&pp->queued, __ATOMIC_RELAXED);
    for (unsigned i = 0; i < pp->max_workers; i++) {
        enum wstate st = wstate(&pp->workers[i]);
        s.workers += st != W_EMPTY;
        s.idle_workers += st == W_IDLE;
        s.running += st == W_BUSY;
    }
    s.submitted = __atomic_load_n(&pp->counts.submitted, __ATOMIC_RELAXED);
    s.max_workers = pp->max_workers;
    enum pool_state st = pool_state(pp);
    s.shutdown = st != PP_RUNNING;
    s.broken = st == PP_BROKEN;
    *out = s;
    return 0;
}

static const char *wstate_name(enum wstate st)
{
    static const char *const names[] = {"empty", "starting", "idle", "busy",
                                        "exiting"};
    return names[st];
}

/* One line per worker slot in use, under the lock (held briefly by
 * everyone, never across a blocking call). */
static void pp_dump_workers(const cc_executor *ex, FILE *out)
{
    struct ppool *pp = (struct ppool *)ex;
    int64_t now = cci_now_ns();
    pthread_mutex_lock(&pp->lock);
    for (unsigned i = 0; i < pp->max_workers; i++) {
        struct pworker *w = &pp->workers[i];
        enum wstate st = wstate(w);
        if (st == W_EMPTY)
            continue;
        if (st == W_STARTING) {
            /* The supervisor fills in the slot without the lock. */
            fprintf(out, "    worker %u: starting\n", i);
            continue;
        }
        fprintf(out, "    worker %u: pid %d, %s", i, (int)w->pid,
                wstate_name(st));
        if (st == W_BUSY && w->task)
            fprintf(out, " running task '%s' (%zu bytes in) for %.3f s",
                    w->task->def->name, w->task->len,
                    (double)(now - w->task_start_ns) / 1e9);
        fprintf(out, ", %u tasks done\n", w->tasks_done);
    }
    if (pool_state(pp) == PP_BROKEN && pp->broken_reason)
        fprintf(out, "    broken: %s\n", pp->broken_reason);
    pthread_mutex_unlock(&pp->lock);
}

static const struct cci_executor_ops process_pool_ops = {
    .kind = "process",
    .submit = pp_submit,
    .shutdown = pp_shutdown,
    .destroy = pp_destroy,
    .max_workers = pp_max_workers,
    .submit_bytes = pp_submit_bytes,
    .stats = pp_stats,
    .dump_workers = pp_dump_workers,
};

bool cci_process_pools_foreach(void (*fn)(cc_executor *ex, void *ctx),
                               void *ctx)
{
    /* Timed, as the thread pools' list: the exit handler holds the lock
     * while it waits for the pools to drain. */
    if (!cci_mutex_lock_briefly(&live_lock))
        return false;
    for (struct ppool *p = live_pools; p; p = p->next_live)
        if (p->owner == getpid())
            fn(&p->base, ctx);
    pthread_mutex_unlock(&live_lock);
    return true;
}

int cc_process_pool_pids(cc_executor *ex, int64_t *pids, size_t cap)
{
    if (!ex || ex->ops != &process_pool_ops || (cap > 0 && !pids))
        return -EINVAL;
    struct ppool *pp = (struct ppool *)ex;
    int n = 0;
    pthread_mutex_lock(&pp->lock);
    for (unsigned i = 0; i < pp->max_workers; i++) {
        struct pworker *w = &pp->workers[i];
        enum wstate st = wstate(w);
        if (st == W_EMPTY || st == W_EXITING || st == W_STARTING)
            continue;
        if ((size_t)n < cap)
            pids[n] = w->pid;
        n++;
    }
    pthread_mutex_unlock(&pp->lock);
    return n;
}

/* ---- creation --------------------------------------------------------------------- */

int cc_process_pool_new(cc_executor **out, const cc_process_pool_options *opts)
{
    cc_process_pool_options o = opts ? *opts : (cc_process_pool_options){0};
    if (!out || (o.initializer && !cci_task_registered(o.initializer)) ||
        (o.initializer_len > 0 && !o.initializer_arg) ||
        o.initializer_len > CCI_PROCESS_MAX_ARG / 2 ||
        (o.start_method != CC_START_DEFAULT &&
         o.start_method != CC_START_FORKSERVER &&
         o.start_method != CC_START_FORK) ||
        (o.task_time_limit < 0 && o.task_time_limit != CC_FOREVER) ||
        o.restart_window < 0 || o.max_workers > 1024 ||
        o.max_payload > ((size_t)1 << 40))
        return -EINVAL;
    struct ppool *pp = calloc(1, sizeof *pp);
    if (!pp)
        return -ENOMEM;
    pp->base.ops = &process_pool_ops;
    pthread_mutex_init(&pp->lock, NULL);
    pp->state = PP_RUNNING;
    pp->max_workers = o.max_workers ? o.max_workers : cci_cpu_count();
    pp->method = o.start_method;
    pp->max_tasks = o.max_tasks_per_child;
    pp->time_limit = o.task_time_limit == CC_FOREVER ? 0 : o.task_time_limit;
    pp->memory_limit = o.memory_limit;
    pp->budget = o.restart_budget ? o.restart_budget
                                  : 4 * pp->max_workers + 4;
    pp->window = o.restart_window ? o.restart_window : CC_SEC(10);
    pp->max_payload = o.max_payload ? o.max_payload : ((size_t)1 << 30);
    pp->event_fd = -1;
    pp->workers = calloc(pp->max_workers, sizeof *pp->workers);
    pp->deaths = calloc(pp->budget + 1, sizeof *pp->deaths);
    pp->scratch = malloc(CCI_CHAN_RESP_CAP);
    int rc = pp->workers && pp->deaths && pp->scratch ? 0 : -ENOMEM;
    if (rc == 0 && o.initializer) {
        pp->init_name = strdup(o.initializer->name);
        pp->init_len = o.initializer_len;
        pp->init_arg = o.initializer_len ? malloc(o.initializer_len) : NULL;
        if (!pp->init_name || (o.initializer_len && !pp->init_arg))
            rc = -ENOMEM;
        else if (o.initializer_len)
            memcpy(pp->init_arg, o.initializer_arg, o.initializer_len);
    }
    for (unsigned i = 0; rc == 0 && i < pp->max_workers; i++) {
        struct pworker *w = &pp->workers[i];
        w->index = i;
        w->chan_fd = w->in.fd = w->out.fd = -1;
    }
    if (rc == 0) {
        pp->event_fd = cci_eventfd();
        rc = pp->event_fd < 0 ? pp->event_fd : 0;
    }
    if (rc == 0) {
        cc_thread_options to = {.name = "ProcessPoolSupervisor",
                                .daemon = CC_DAEMON_YES};
        rc = cc_thread_new(&pp->supervisor, supervisor_main, pp, &to);
        if (rc == 0) {
            rc = cc_thread_start(pp->supervisor);
            if (rc < 0) {
                cc_thread_unref(pp->supervisor);
                pp->supervisor = NULL;
            }
        }
    }
    if (rc < 0) {
        if (pp->event_fd >= 0)
            close(pp->event_fd);
        pthread_mutex_destroy(&pp->lock);
        free(pp->workers);
        free(pp->deaths);
        free(pp->scratch);
        free(pp->init_name);
        free(pp->init_arg);
        free(pp);
        return rc;
    }
    pp->owner = getpid();
    /* Dumps and traces show the pool by this name unless renamed. */
    static unsigned long pool_counter;
    char name[48];
    snprintf(name, sizeof name, "ProcessPoolExecutor-%lu",
             __atomic_fetch_add(&pool_counter, 1, __ATOMIC_RELAXED));
    cci_name_set_default(pp, name);
    cci_process_register_exit(); /* first: see process_internal.h */
    register_exit();
    pthread_mutex_lock(&live_lock);
    pp->next_live = live_pools;
    live_pools = pp;
    pthread_mutex_unlock(&live_lock);
    *out = &pp->base;
    return 0;
}
