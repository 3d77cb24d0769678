/*
 * loop_dump.c — running event loops in the thread dump: the registry of
 * live loops and the lines cc_dump prints for each, the counterpart of
 * asyncio.all_tasks() with each task's stack summary.
 *
 * Everything here runs in the dumping thread, not the loop's. It reads
 * only what the loop publishes for it (loop_internal.h): counters written
 * with relaxed atomic stores, and copies of at most TASKS_SHOWN tasks
 * taken by task.c under the list's latch. Objects a task waits on are named
 * through the name table, never dereferenced. The registry's lock is held
 * while a loop is printed, so cc_loop_free (which unlists first) cannot
 * free it under us.
 */
#include <errno.h>
#include <stdlib.h>

#include "concur/error.h"
#include "executor/executor_internal.h"
#include "loop/loop_internal.h"
#include "platform/platform.h"
#include "trace/trace_internal.h"

/* Tasks printed per loop; the rest are counted. */
#define TASKS_SHOWN 32

static pthread_mutex_t live_lock = PTHREAD_MUTEX_INITIALIZER;
static cc_loop *live_loops; /* guarded by live_lock */

void cci_loop_list(cc_loop *loop)
{
    pthread_mutex_lock(&live_lock);
    loop->live_prev = NULL;
    loop->live_next = live_loops;
    if (live_loops)
        live_loops->live_prev = loop;
    live_loops = loop;
    loop->live = true;
    pthread_mutex_unlock(&live_lock);
}

void cci_loop_unlist(cc_loop *loop)
{
    pthread_mutex_lock(&live_lock);
    if (loop->live) {
        if (loop->live_prev)
            loop->live_prev->live_next = loop->live_next;
        else
            live_loops = loop->live_next;
        if (loop->live_next)
            loop->live_next->live_prev = loop->live_prev;
        loop->live = false;
    }
    pthread_mutex_unlock(&live_lock);
}

/* ---- printing ------------------------------------------------------------ */

struct printer {
    FILE *out;
    const char *(*thread_name)(uint32_t tid, void *ctx);
    void *ctx;
    int64_t now, now_coarse;
    struct cci_task_info tasks[TASKS_SHOWN];
};

static void print_thread(const struct printer *p, uint32_t tid)
{
    const char *name = p->thread_name(tid, p->ctx);
    if (name)
        fprintf(p->out, "thread \"%s\" (native %u)", name, (unsigned)tid);
    else
        fprintf(p->out, "native thread %u", (unsigned)tid);
}

/* " (task worker_main)" when the awaited future is a task. */
static void awaited_task(const struct cci_await *a, char *buf, size_t cap)
{
    char fn[96];
    if (!a->fn)
        buf[0] = '\0';
    else if (cci_function_name(a->fn, fn, sizeof fn))
        snprintf(buf, cap, " (task %s)", fn);
    else
        snprintf(buf, cap, " (a task)");
}

/* What a waiting task waits for, in the words of the thread lines. */
static void describe_await(const struct cci_await *a, char *buf, size_t cap)
{
    char what[160], task[112];
    switch (a->kind) {
    case CC_WAIT_IO:
        snprintf(buf, cap, "io (%s) on fd %lld", a->op ? a->op : "?",
                 (long long)a->number);
        return;
    case CC_WAIT_JOIN:
        snprintf(buf, cap, "join of task group %p", a->object);
        return;
    default:
        break;
    }
    cci_describe_wait(a->kind, a->object, what, sizeof what);
    awaited_task(a, task, sizeof task);
    if (a->kind == CC_WAIT_FUTURE && a->number > 1)
        snprintf(buf, cap, "%s of %lld futures, first pending %s%s",
                 a->op ? a->op : "wait", (long long)a->number, what, task);
    else if (a->op)
        snprintf(buf, cap, "%s%s, to %s", what, task, a->op);
    else
        snprintf(buf, cap, "%s%s", what, task);
}

static void print_task(const struct printer *p, const struct cci_task_info *t)
{
    char fn[96];
    fputs("    Task ", p->out);
    if (t->name[0])
        fprintf(p->out, "\"%s\"", t->name);
    else if (cci_function_name(t->fn, fn, sizeof fn))
        fprintf(p->out, "%s", fn);
    else
        fprintf(p->out, "(function %p)", t->fn);
    fprintf(p->out, " (future %p): ", t->future);
    if (t->state != CCI_TASK_WAITING) {
        fprintf(p->out, "%s\n",
                t->state == CCI_TASK_RUNNING ? "running" : "ready to run");
        return;
    }
    char what[320];
    describe_await(&t->await, what, sizeof what);
    int64_t waited = p->now_coarse - t->since_coarse;
    fprintf(p->out, "waiting for %.3f s on %s",
            (double)(waited > 0 ? waited : 0) / 1e9, what);
    if (t->deadline != CCI_NO_DEADLINE) {
        int64_t left = t->deadline - p->now;
        fprintf(p->out, ", %s in %.3f s",
                t->await.kind == CC_WAIT_SLEEP ? "due" : "times out",
                (double)(left > 0 ? left : 0) / 1e9);
    }
    fputc('\n', p->out);
}

static size_t load_count(const size_t *counter)
{
    return __atomic_load_n(counter, __ATOMIC_RELAXED);
}

static void print_loop(struct printer *p, cc_loop *loop)
{
    char name[CC_NAME_MAX + 1];
    FILE *out = p->out;
    fputs("Loop ", out);
    if (cci_name_lookup(loop, name, sizeof name))
        fprintf(out, "\"%s\" ", name);
    fprintf(out, "(%p), ", (void *)loop);
    uint32_t tid =
        atomic_load_explicit(&loop->running_tid, memory_order_relaxed);
    bool closing = atomic_load_explicit(&loop->state, memory_order_relaxed) !=
                   CCI_LOOP_OPEN;
    if (tid) {
        fputs(closing ? "closing on " : "running on ", out);
        print_thread(p, tid);
    } else {
        fputs("not running, made by ", out);
        print_thread(p, loop->creator_tid);
    }
    size_t alive = load_count(&loop->task_count);
    fprintf(out,
            "\n    tasks %zu alive, %zu ready to run; timers %u pending; "
            "fds %zu watched\n",
            alive, load_count(&loop->tasks_ready),
            (unsigned)__atomic_load_n(&loop->heap_len, __ATOMIC_RELAXED),
            load_count(&loop->fds_watched));
    int n = cci_loop_task_infos(loop, p->tasks, TASKS_SHOWN);
    if (n < 0) {
        fprintf(out, "    tasks not shown (%s)\n", cc_strerror(n));
        return;
    }
    for (int i = 0; i < n; i++)
        print_task(p, &p->tasks[i]);
    /* alive was read before the walk: the difference is approximate. */
    if ((size_t)n == TASKS_SHOWN && alive > TASKS_SHOWN)
        fprintf(out, "    ... %zu more tasks\n", alive - TASKS_SHOWN);
}

bool cci_loops_dump(FILE *out,
                    const char *(*thread_name)(uint32_t tid, void *ctx),
                    void *ctx)
{
    /* The task copies take some 5 KiB: on the heap, not the dumping
     * thread's stack. */
    struct printer *p = malloc(sizeof *p);
    if (!p) {
        fprintf(out, "Loops: not shown (%s)\n", cc_strerror(-ENOMEM));
        return true;
    }
    p->out = out;
    p->thread_name = thread_name;
    p->ctx = ctx;
    if (!cci_mutex_lock_briefly(&live_lock)) {
        free(p);
        return false;
    }
    p->now = cci_now_ns();
    p->now_coarse = cci_now_coarse_ns();
    for (cc_loop *loop = live_loops; loop; loop = loop->live_next)
        print_loop(p, loop);
    pthread_mutex_unlock(&live_lock);
    free(p);
    return true;
}
