/*
 * timeline.c — the trace timeline: per-thread event buffers, written as
 * Chrome trace-event JSON.
 *
 * Recording (the owner thread only): each thread that records gets a buffer
 * of fixed capacity, linked into a global list when it is created. An
 * event is appended between busy = 1 and busy = 0; a full buffer drops the
 * event and counts it. A buffer belongs to one session (gen); the first
 * event of a new session empties it.
 *
 * Stopping (Dekker, both sides seq_cst): stop clears cci_trace_state, then
 * waits for each buffer's busy to be 0. A recorder sets busy, then checks
 * the state: either it sees the state cleared and leaves without touching
 * the buffer, or stop sees busy and waits for it to finish. After that no
 * thread touches a buffer of this session, and stop reads them without
 * locks.
 *
 * Buffers live as long as their thread (a pthread key destructor marks them
 * orphaned at thread exit); stop and start free orphans once their events
 * have been written. The list lock is held while buffers are created,
 * orphaned, written and freed; never on the recording path itself.
 *
 * Cost when not recording: the hooks (cci_block_end, the pools' task runner)
 * test cci_trace_on(), one relaxed load and a predictable branch.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "platform/platform.h"
#include "thread/thread_internal.h"
#include "trace/trace_internal.h"

enum event_type {
    EV_BLOCKED,
    EV_TASK,
    EV_THREAD,        /* an instant: kind 1 start, 0 end with status */
    EV_WORKER_START,  /* a worker process from spawn to ready */
    EV_WORKER_TASK,   /* a task in a worker process */
    EV_WORKER_EXIT,   /* an instant: kind enum cci_worker_end */
    EV_CORO_RUN,      /* a coroutine task ran on the loop thread */
    EV_CORO_LIFE      /* a coroutine task from creation to done */
};

/* 64 bytes: one cache line per event. */
struct event {
    int64_t start_ns;
    int64_t end_ns;
    const void *object; /* the object waited on, the pool, the task */
    union {
        const void *fn; /* EV_CORO_*: the task's function, for its name */
        struct {
            int32_t pid;   /* EV_WORKER_*: the worker process */
            uint32_t slot; /* its place in the pool */
        } worker;
    } u;
    uint16_t type;  /* enum event_type */
    uint16_t kind;  /* cc_wait_kind, enum cci_task_outcome, or
                       enum cci_worker_end */
    int32_t status; /* EV_THREAD end: the thread's status; a task's error
                       code; a worker's exit code; EV_WORKER_START: the
                       pid it replaces */
    char label[24]; /* a name, cut; "" if none */
};

_Static_assert(sizeof(struct event) == 64, "an event is one cache line");

struct buffer {
    struct buffer *next; /* the global list; guarded by list_lock */
    uint32_t busy;       /* 1 while the owner appends (see above) */
    uint32_t orphan;     /* the owner thread has exited; under list_lock */
    uint64_t gen;        /* the session the events belong to */
    size_t count, cap, dropped;
    int64_t tid;
    char thread_name[64];
    struct event *events;
};

static pthread_mutex_t session_lock = PTHREAD_MUTEX_INITIALIZER;
static char *session_path;       /* guarded by session_lock */
static int64_t session_start_ns; /* written before the state is set */
static uint64_t session_gen;     /* atomic */
static size_t session_cap;       /* atomic */

static pthread_mutex_t list_lock = PTHREAD_MUTEX_INITIALIZER;
static struct buffer *buffers; /* guarded by list_lock */

static __thread struct buffer *tls_buffer;
static pthread_key_t orphan_key;
static pthread_once_t orphan_once = PTHREAD_ONCE_INIT;

static void buffer_free(struct buffer *b)
{
    free(b->events);
    free(b);
}

static void orphan_buffer(void *arg)
{
    struct buffer *b = arg;
    pthread_mutex_lock(&list_lock);
    b->orphan = 1;
    pthread_mutex_unlock(&list_lock);
    tls_buffer = NULL;
}

static void orphan_key_init(void)
{
    pthread_key_create(&orphan_key, orphan_buffer);
}

static struct buffer *buffer_new(void)
{
    struct buffer *b = calloc(1, sizeof *b);
    if (!b)
        return NULL;
    pthread_once(&orphan_once, orphan_key_init);
    if (pthread_setspecific(orphan_key, b) != 0) {
        free(b);
        return NULL;
    }
    pthread_mutex_lock(&list_lock);
    b->next = buffers;
    buffers = b;
    pthread_mutex_unlock(&list_lock);
    tls_buffer = b;
    return b;
}

/* The first event of a session in this buffer: empty it and size it. Runs
 * with busy set, so stop is not reading it. */
static bool buffer_reset(struct buffer *b, uint64_t gen)
{
    size_t cap = __atomic_load_n(&session_cap, __ATOMIC_RELAXED);
    if (b->cap != cap) {
        struct event *ev = malloc(cap * sizeof *ev);
        if (!ev)
            return false;
        free(b->events);
        b->events = ev;
        b->cap = cap;
    }
    b->count = 0;
    b->dropped = 0;
    b->gen = gen;
    b->tid = (int64_t)cci_gettid();
    struct cc_thread *self = cci_thread_self();
    if (self)
        snprintf(b->thread_name, sizeof b->thread_name, "%s",
                 cc_thread_name(self));
    else
        snprintf(b->thread_name, sizeof b->thread_name, "thread %lld",
                 (long long)b->tid);
    return true;
}

static void record(const struct event *e)
{
    struct buffer *b = tls_buffer;
    if (!b && !(b = buffer_new()))
        return;
    __atomic_store_n(&b->busy, 1, __ATOMIC_SEQ_CST);
    if (__atomic_load_n(&cci_trace_state, __ATOMIC_SEQ_CST)) {
        uint64_t gen = __atomic_load_n(&session_gen, __ATOMIC_RELAXED);
        if (b->gen == gen || buffer_reset(b, gen)) {
            if (b->count < b->cap)
                b->events[b->count++] = *e;
            else
                b->dropped++;
        }
    }
    __atomic_store_n(&b->busy, 0, __ATOMIC_RELEASE);
}

void cci_trace_blocked(cc_wait_kind kind, const void *obj, int64_t since_ns)
{
    struct event e = {.start_ns = since_ns,
                      .end_ns = cci_now_ns(),
                      .object = obj,
                      .type = EV_BLOCKED,
                      .kind = (uint16_t)kind};
    cci_name_lookup(obj, e.label, sizeof e.label);
    if (kind == CC_WAIT_JOIN && obj && !e.label[0])
        /* The joiner holds a reference to the thread it joins. */
        snprintf(e.label, sizeof e.label, "%s",
                 cc_thread_name((const cc_thread *)obj));
    record(&e);
}

void cci_trace_task(const void *pool, const char *pool_label, int64_t start_ns,
                    enum cci_task_outcome outcome)
{
    struct event e = {.start_ns = start_ns,
                      .end_ns = cci_now_ns(),
                      .object = pool,
                      .type = EV_TASK,
                      .kind = (uint16_t)outcome};
    if (!cci_name_lookup(pool, e.label, sizeof e.label) && pool_label)
        snprintf(e.label, sizeof e.label, "%s", pool_label);
    record(&e);
}

void cci_trace_thread(bool start, int status)
{
    int64_t now = cci_now_ns();
    struct event e = {.start_ns = now,
                      .end_ns = now,
                      .type = EV_THREAD,
                      .kind = start,
                      .status = status};
    record(&e);
}

/* ---- process pool workers ---------------------------------------------------
 * Recorded in the parent, by whichever thread saw the event (the supervisor
 * or a submitting thread), for the worker's own track: the file shows each
 * worker as a process of its own (pid and tid the worker's pid). */

static void worker_event(struct event *e, int pid, unsigned slot)
{
    e->u.worker.pid = pid;
    e->u.worker.slot = slot;
    record(e);
}

void cci_trace_worker_start(const void *pool, int pid, unsigned slot,
                            int replaces, int64_t spawn_ns)
{
    struct event e = {.start_ns = spawn_ns,
                      .end_ns = cci_now_ns(),
                      .object = pool,
                      .type = EV_WORKER_START,
                      .status = replaces};
    cci_name_lookup(pool, e.label, sizeof e.label);
    worker_event(&e, pid, slot);
}

void cci_trace_worker_task(const void *pool, int pid, unsigned slot,
                           const char *task, int64_t start_ns,
                           enum cci_task_outcome outcome, int status)
{
    struct event e = {.start_ns = start_ns,
                      .end_ns = cci_now_ns(),
                      .object = pool,
                      .type = EV_WORKER_TASK,
                      .kind = (uint16_t)outcome,
                      .status = status};
    snprintf(e.label, sizeof e.label, "%s", task ? task : "");
    worker_event(&e, pid, slot);
}

void cci_trace_worker_exit(const void *pool, int pid, unsigned slot,
                           enum cci_worker_end how, int code)
{
    int64_t now = cci_now_ns();
    struct event e = {.start_ns = now,
                      .end_ns = now,
                      .object = pool,
                      .type = EV_WORKER_EXIT,
                      .kind = (uint16_t)how,
                      .status = code};
    worker_event(&e, pid, slot);
}

/* ---- coroutine tasks --------------------------------------------------------
 * Recorded on the loop thread. A task is known by its future's address
 * (its async id in the file) and named by the future's name, if it has
 * one, else by its function's symbol when the file is written. */

static void coro_event(struct event *e, const void *future, const void *fn)
{
    e->object = future;
    e->u.fn = fn;
    cci_name_lookup(future, e->label, sizeof e->label);
    record(e);
}

void cci_trace_coro_run(const void *future, const void *fn, int64_t start_ns)
{
    struct event e = {.start_ns = start_ns,
                      .end_ns = cci_now_ns(),
                      .type = EV_CORO_RUN};
    coro_event(&e, future, fn);
}

void cci_trace_coro_done(const void *future, const void *fn,
                         int64_t created_ns, enum cci_task_outcome outcome)
{
    struct event e = {.start_ns = created_ns,
                      .end_ns = cci_now_ns(),
                      .type = EV_CORO_LIFE,
                      .kind = (uint16_t)outcome};
    coro_event(&e, future, fn);
}

/* ---- writing ------------------------------------------------------------- */

static void json_string(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c < 0x20)
            fprintf(f, "\\u%04x", c);
        else
            fputc(c, f);
    }
    fputc('"', f);
}

static const char *outcome_name(unsigned o)
{
    switch (o) {
    case CCI_TASK_COMPLETED:
        return "completed";
    case CCI_TASK_FAILED:
        return "failed";
    default:
        return "cancelled";
    }
}

/* Microseconds since the session started; a wait that began before it
 * is shown from the start. */
static double micros(int64_t ns)
{
    return ns < session_start_ns ? 0.0 : (double)(ns - session_start_ns) / 1e3;
}

/* Worker processes already named in the file (their "M" events). */
struct named_pids {
    int *pids;
    size_t n, cap;
};

/* Names a worker's track the first time one of its events is written. */
static void name_worker(FILE *f, struct named_pids *named, int pid,
                        unsigned slot)
{
    for (size_t i = 0; i < named->n; i++)
        if (named->pids[i] == pid)
            return;
    if (named->n == named->cap) {
        size_t cap = named->cap ? named->cap * 2 : 16;
        int *p = realloc(named->pids, cap * sizeof *p);
        if (!p)
            return; /* unnamed: shown as "Process PID" */
        named->pids = p;
        named->cap = cap;
    }
    named->pids[named->n++] = pid;
    fprintf(f,
            ",\n{\"ph\":\"M\",\"pid\":%d,\"tid\":%d,\"name\":\"process_name\","
            "\"args\":{\"name\":\"ProcessPoolWorker-%u\"}}"
            ",\n{\"ph\":\"M\",\"pid\":%d,\"tid\":%d,\"name\":\"thread_name\","
            "\"args\":{\"name\":\"worker %d\"}}",
            pid, pid, slot, pid, pid, pid);
}

static const char *worker_end_name(unsigned how)
{
    switch (how) {
    case CCI_WORKER_RETIRED:
        return "worker retired";
    case CCI_WORKER_TIMED_OUT:
        return "worker killed: time limit";
    case CCI_WORKER_KILLED:
        return "worker killed: protocol error";
    default:
        return "worker died";
    }
}

static void write_worker_event(FILE *f, struct named_pids *named,
                               const struct event *e)
{
    int pid = e->u.worker.pid;
    name_worker(f, named, pid, e->u.worker.slot);
    double ts = micros(e->start_ns);
    if (e->type == EV_WORKER_EXIT) {
        char how[96];
        if (e->status < 0) {
            const char *d = sigdescr_np(-e->status);
            snprintf(how, sizeof how, "killed by signal %d (%s)", -e->status,
                     d ? d : "unknown signal");
        } else {
            snprintf(how, sizeof how, "exited with status %d", e->status);
        }
        fprintf(f,
                ",\n{\"ph\":\"i\",\"s\":\"p\",\"pid\":%d,\"tid\":%d,"
                "\"ts\":%.3f,\"cat\":\"worker\",\"name\":\"%s\","
                "\"args\":{\"pool\":\"%p\",\"exit\":\"%s\"}}",
                pid, pid, ts, worker_end_name(e->kind), e->object, how);
        return;
    }
    fprintf(f,
            ",\n{\"ph\":\"X\",\"pid\":%d,\"tid\":%d,\"ts\":%.3f,"
            "\"dur\":%.3f,",
            pid, pid, ts, micros(e->end_ns) - ts);
    if (e->type == EV_WORKER_START) {
        fprintf(f, "\"cat\":\"worker\",\"name\":\"worker starting\","
                   "\"args\":{\"pool\":");
        json_string(f, e->label);
        fprintf(f, ",\"slot\":%u", e->u.worker.slot);
        if (e->status)
            fprintf(f, ",\"replaces\":%d", (int)e->status);
        fputs("}}", f);
        return;
    }
    char name[64];
    snprintf(name, sizeof name, "task %s", e->label);
    fputs("\"cat\":\"task\",\"name\":", f);
    json_string(f, name);
    fprintf(f, ",\"args\":{\"pool\":\"%p\",\"outcome\":\"%s\"", e->object,
            outcome_name(e->kind));
    if (e->status)
        fprintf(f, ",\"status\":%d", (int)e->status);
    fputs("}}", f);
}

/* A coroutine task's name: the future's name, else its function's symbol
 * (exported ones: link with -rdynamic), else "task". */
static void coro_name(const struct event *e, char *buf, size_t cap)
{
    if (e->label[0])
        snprintf(buf, cap, "%s", e->label);
    else if (!cci_function_name(e->u.fn, buf, cap))
        snprintf(buf, cap, "task");
}

/* A running slice is drawn twice: on the loop thread's track (what ran
 * there) and nested in the task's async track (when the task ran). The
 * async track is keyed by the future's address. */
static void write_coro_event(FILE *f, int pid, const struct buffer *b,
                             const struct event *e)
{
    char name[64];
    coro_name(e, name, sizeof name);
    double ts = micros(e->start_ns), end = micros(e->end_ns);
    if (e->type == EV_CORO_RUN) {
        fprintf(f,
                ",\n{\"ph\":\"X\",\"pid\":%d,\"tid\":%lld,\"ts\":%.3f,"
                "\"dur\":%.3f,\"cat\":\"coroutine\",\"name\":",
                pid, (long long)b->tid, ts, end - ts);
        json_string(f, name);
        fprintf(f, ",\"args\":{\"task\":\"%p\"}}", e->object);
        fprintf(f,
                ",\n{\"ph\":\"b\",\"pid\":%d,\"tid\":%lld,\"ts\":%.3f,"
                "\"cat\":\"coroutine\",\"id\":\"%p\",\"name\":\"running\"}"
                ",\n{\"ph\":\"e\",\"pid\":%d,\"tid\":%lld,\"ts\":%.3f,"
                "\"cat\":\"coroutine\",\"id\":\"%p\",\"name\":\"running\"}",
                pid, (long long)b->tid, ts, e->object, pid, (long long)b->tid,
                end, e->object);
        return;
    }
    fprintf(f,
            ",\n{\"ph\":\"b\",\"pid\":%d,\"tid\":%lld,\"ts\":%.3f,"
            "\"cat\":\"coroutine\",\"id\":\"%p\",\"name\":",
            pid, (long long)b->tid, ts, e->object);
    json_string(f, name);
    fprintf(f,
            "}"
            ",\n{\"ph\":\"e\",\"pid\":%d,\"tid\":%lld,\"ts\":%.3f,"
            "\"cat\":\"coroutine\",\"id\":\"%p\",\"name\":",
            pid, (long long)b->tid, end, e->object);
    json_string(f, name);
    fprintf(f, ",\"args\":{\"outcome\":\"%s\"}}", outcome_name(e->kind));
}

static void write_event(FILE *f, int pid, const struct buffer *b,
                        const struct event *e, struct named_pids *named)
{
    double ts = micros(e->start_ns);
    switch (e->type) {
    case EV_WORKER_START:
    case EV_WORKER_TASK:
    case EV_WORKER_EXIT:
        write_worker_event(f, named, e);
        return;
    case EV_CORO_RUN:
    case EV_CORO_LIFE:
        write_coro_event(f, pid, b, e);
        return;
    case EV_THREAD:
        fprintf(f,
                ",\n{\"ph\":\"i\",\"s\":\"t\",\"pid\":%d,\"tid\":%lld,"
                "\"ts\":%.3f,\"cat\":\"thread\",\"name\":\"%s\"",
                pid, (long long)b->tid, ts,
                e->kind ? "thread started" : "thread ended");
        if (!e->kind)
            fprintf(f, ",\"args\":{\"status\":%d}", (int)e->status);
        fputs("}", f);
        return;
    default:
        break;
    }
    fprintf(f,
            ",\n{\"ph\":\"X\",\"pid\":%d,\"tid\":%lld,\"ts\":%.3f,"
            "\"dur\":%.3f,",
            pid, (long long)b->tid, ts, micros(e->end_ns) - ts);
    char name[96];
    if (e->type == EV_TASK) {
        fputs("\"cat\":\"task\",\"name\":\"task\",\"args\":{\"pool\":", f);
        json_string(f, e->label);
        fprintf(f, ",\"outcome\":\"%s\"}}", outcome_name(e->kind));
        return;
    }
    const char *kind = cc_wait_kind_name((cc_wait_kind)e->kind);
    if (e->label[0])
        snprintf(name, sizeof name, "blocked: %s %s", kind, e->label);
    else
        snprintf(name, sizeof name, "blocked: %s", kind);
    fputs("\"cat\":\"blocked\",\"name\":", f);
    json_string(f, name);
    fprintf(f, ",\"args\":{\"kind\":\"%s\"", kind);
    if (e->object)
        fprintf(f, ",\"object\":\"%p\"", e->object);
    if (e->label[0]) {
        fputs(",\"name\":", f);
        json_string(f, e->label);
    }
    fputs("}}", f);
}

/* Writes every buffer of session gen; returns the events written. Called
 * with list_lock held, after every recorder has left. */
static long write_json(FILE *f, uint64_t gen)
{
    int pid = (int)getpid();
    long written = 0;
    size_t dropped = 0;
    struct named_pids named = {0};
    fprintf(f,
            "{\"displayTimeUnit\":\"ms\",\"traceEvents\":[\n"
            "{\"ph\":\"M\",\"pid\":%d,\"tid\":%d,\"name\":\"process_name\","
            "\"args\":{\"name\":",
            pid, pid);
    json_string(f, program_invocation_short_name);
    fputs("}}", f);
    for (struct buffer *b = buffers; b; b = b->next) {
        if (b->gen != gen)
            continue;
        fprintf(f,
                ",\n{\"ph\":\"M\",\"pid\":%d,\"tid\":%lld,"
                "\"name\":\"thread_name\",\"args\":{\"name\":",
                pid, (long long)b->tid);
        json_string(f, b->thread_name);
        fputs("}}", f);
        for (size_t i = 0; i < b->count; i++)
            write_event(f, pid, b, &b->events[i], &named);
        written += (long)b->count;
        dropped += b->dropped;
    }
    free(named.pids);
    fprintf(f,
            "\n],\"otherData\":{\"producer\":\"concur\","
            "\"dropped_events\":%zu}}\n",
            dropped);
    return written;
}

/* Frees the buffers of exited threads and the events of the others (the
 * next session allocates them again); list_lock held, nobody recording. */
static void free_idle_buffers(void)
{
    struct buffer **pp = &buffers;
    while (*pp) {
        struct buffer *b = *pp;
        if (b->orphan) {
            *pp = b->next;
            buffer_free(b);
            continue;
        }
        free(b->events);
        b->events = NULL;
        b->cap = b->count = 0;
        b->gen = 0;
        pp = &b->next;
    }
}

int cc_trace_start(const char *path, size_t events_per_thread)
{
    if (!path || !*path)
        return -EINVAL;
    if (events_per_thread == 0)
        events_per_thread = CC_TRACE_DEFAULT_EVENTS;
    if (events_per_thread > SIZE_MAX / sizeof(struct event))
        return -EINVAL;
    pthread_mutex_lock(&session_lock);
    if (session_path) {
        pthread_mutex_unlock(&session_lock);
        return -EALREADY;
    }
    session_path = strdup(path);
    if (!session_path) {
        pthread_mutex_unlock(&session_lock);
        return -ENOMEM;
    }
    pthread_mutex_lock(&list_lock);
    free_idle_buffers();
    pthread_mutex_unlock(&list_lock);
    __atomic_store_n(&session_cap, events_per_thread, __ATOMIC_RELAXED);
    session_start_ns = cci_now_ns();
    __atomic_add_fetch(&session_gen, 1, __ATOMIC_RELAXED);
    /* Release: a recorder that sees the state also sees gen and cap. */
    __atomic_store_n(&cci_trace_state, 1, __ATOMIC_SEQ_CST);
    pthread_mutex_unlock(&session_lock);
    return 0;
}

long cc_trace_stop(void)
{
    pthread_mutex_lock(&session_lock);
    if (!session_path) {
        pthread_mutex_unlock(&session_lock);
        return -ESRCH;
    }
    __atomic_store_n(&cci_trace_state, 0, __ATOMIC_SEQ_CST);
    uint64_t gen = __atomic_load_n(&session_gen, __ATOMIC_RELAXED);
    pthread_mutex_lock(&list_lock);
    for (struct buffer *b = buffers; b; b = b->next)
        while (__atomic_load_n(&b->busy, __ATOMIC_SEQ_CST))
            sched_yield();
    long rc;
    FILE *f = fopen(session_path, "w");
    if (!f) {
        rc = -errno;
    } else {
        rc = write_json(f, gen);
        if (ferror(f))
            rc = -EIO;
        if (fclose(f) != 0 && rc >= 0)
            rc = -errno;
    }
    free_idle_buffers();
    pthread_mutex_unlock(&list_lock);
    free(session_path);
    session_path = NULL;
    pthread_mutex_unlock(&session_lock);
    return rc;
}

bool cc_trace_active(void)
{
    return __atomic_load_n(&cci_trace_state, __ATOMIC_RELAXED) != 0;
}

static void stop_at_exit(void)
{
    long rc = cc_trace_stop();
    if (rc < 0 && rc != -ESRCH)
        fprintf(stderr, "concur: CONCUR_TRACE: cannot write the trace: %s\n",
                strerror((int)-rc));
}

void cci_trace_start_from_env(const char *path)
{
    int rc = cc_trace_start(path, 0);
    if (rc != 0) {
        fprintf(stderr, "concur: CONCUR_TRACE=%s: %s\n", path, strerror(-rc));
        return;
    }
    atexit(stop_at_exit);
}

/* fork: a child records nothing of its parent's session. */
void cci_timeline_atfork_prepare(void);
void cci_timeline_atfork_parent(void);
void cci_timeline_atfork_child(void);

void cci_timeline_atfork_prepare(void)
{
    pthread_mutex_lock(&session_lock);
    pthread_mutex_lock(&list_lock);
}

void cci_timeline_atfork_parent(void)
{
    pthread_mutex_unlock(&list_lock);
    pthread_mutex_unlock(&session_lock);
}

void cci_timeline_atfork_child(void)
{
    __atomic_store_n(&cci_trace_state, 0, __ATOMIC_RELAXED);
    free(session_path);
    session_path = NULL;
    pthread_mutex_unlock(&list_lock);
    pthread_mutex_unlock(&session_lock);
}
