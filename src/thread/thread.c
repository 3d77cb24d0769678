/*
 * thread.c — thread objects and their life cycle.
 *
 * State machine (the only place state changes, see set_state):
 *   NEW --start--> RUNNING <--block/unblock--> BLOCKED
 *   RUNNING --function returned--> TERMINATED
 * A failed pthread_create takes RUNNING back to NEW.
 *
 * Reaping: every started OS thread is either pthread_join'ed (by
 * cc_thread_join, or by the last cc_thread_unref from another thread) or
 * detached (by its own final unref when nobody else holds a reference), and
 * exactly once: whoever flips `reaped` from 0 to 1 does it.
 */
#include <errno.h>
#include <limits.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "concur/error.h"
#include "error/error_internal.h"
#include "platform/platform.h"
#include "thread/blocking.h"
#include "thread/thread_internal.h"
#include "time/deadline.h"
#include "trace/trace_internal.h"

#define MIN_STACK_SIZE (16u * 1024u)

static __thread struct cc_thread *tls_self;

struct cc_thread *cci_thread_self(void)
{
    return tls_self;
}

void cci_thread_set_self(struct cc_thread *t)
{
    tls_self = t;
}

const char *cc_thread_state_name(cc_thread_state state)
{
    switch (state) {
    case CC_THREAD_NEW:
        return "NEW";
    case CC_THREAD_RUNNING:
        return "RUNNING";
    case CC_THREAD_BLOCKED:
        return "BLOCKED";
    case CC_THREAD_TERMINATED:
        return "TERMINATED";
    }
    return "UNKNOWN";
}

const char *cc_wait_kind_name(cc_wait_kind kind)
{
    static const char *const names[] = {
        [CC_WAIT_NONE] = "nothing",      [CC_WAIT_LOCK] = "lock",
        [CC_WAIT_RLOCK] = "rlock",       [CC_WAIT_CONDITION] = "condition",
        [CC_WAIT_SEMAPHORE] = "semaphore", [CC_WAIT_EVENT] = "event",
        [CC_WAIT_BARRIER] = "barrier",   [CC_WAIT_ONCE] = "once",
        [CC_WAIT_JOIN] = "join",         [CC_WAIT_SLEEP] = "sleep",
        [CC_WAIT_QUEUE] = "queue",       [CC_WAIT_FUTURE] = "future",
        [CC_WAIT_IO] = "io",             [CC_WAIT_PROCESS] = "process",
        [CC_WAIT_OTHER] = "other",
    };
    if ((unsigned)kind < sizeof names / sizeof names[0])
        return names[kind];
    return "unknown";
}

/* The legal transitions, asserted in one place. */
static void set_state(struct cc_thread *t, cc_thread_state to)
{
#ifndef NDEBUG
    cc_thread_state from = __atomic_load_n(&t->state, __ATOMIC_RELAXED);
    int legal = (from == CC_THREAD_NEW && to == CC_THREAD_RUNNING) ||
                (from == CC_THREAD_RUNNING && to == CC_THREAD_NEW) ||
                (from == CC_THREAD_RUNNING && to == CC_THREAD_BLOCKED) ||
                (from == CC_THREAD_BLOCKED && to == CC_THREAD_RUNNING) ||
                (from == CC_THREAD_BLOCKED && to == CC_THREAD_BLOCKED) ||
                (from == CC_THREAD_RUNNING && to == CC_THREAD_TERMINATED);
    if (!legal) {
        fprintf(stderr, "concur: illegal thread transition %s -> %s\n",
                cc_thread_state_name(from), cc_thread_state_name(to));
        abort();
    }
#endif
    __atomic_store_n(&t->state, to, __ATOMIC_RELEASE);
}

/* ---- records ------------------------------------------------------------ */

static struct cci_name *name_new(const char *text, struct cci_name *older)
{
    size_t n = strlen(text) + 1;
    struct cci_name *name = malloc(sizeof *name + n);
    if (name) {
        name->older = older;
        memcpy(name->text, text, n);
    }
    return name;
}

static struct cci_name *current_name(const struct cc_thread *t)
{
    return __atomic_load_n(&t->name, __ATOMIC_ACQUIRE);
}

struct cc_thread *cci_thread_alloc(const char *name, enum cci_thread_origin o)
{
    struct cc_thread *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->name = name_new(name, NULL);
    if (!t->name) {
        free(t);
        return NULL;
    }
    t->refs = 1;
    t->state = CC_THREAD_NEW;
    t->origin = o;
    return t;
}

static void free_record(struct cc_thread *t)
{
    free(t->error_message);
    struct cci_name *name = t->name;
    while (name) {
        struct cci_name *older = name->older;
        free(name);
        name = older;
    }
    free(t);
}

cc_thread *cc_thread_ref(cc_thread *t)
{
    if (t)
        __atomic_fetch_add(&t->refs, 1, __ATOMIC_RELAXED);
    return t;
}

void cc_thread_unref(cc_thread *t)
{
    if (!t)
        return;
    /* acq_rel: the last owner must see every write made under the other
     * references before it frees the record. */
    if (__atomic_fetch_sub(&t->refs, 1, __ATOMIC_ACQ_REL) != 1)
        return;
    if (t->origin == CCI_ORIGIN_CONCUR &&
        __atomic_load_n(&t->started, __ATOMIC_ACQUIRE) &&
        __atomic_exchange_n(&t->reaped, 1, __ATOMIC_ACQ_REL) == 0) {
        if (tls_self == t)
            pthread_detach(t->handle); /* its own last reference */
        else
            pthread_join(t->handle, NULL); /* has returned: quick */
    }
    free_record(t);
}

int cc_thread_new(cc_thread **out, cc_thread_fn fn, void *ctx,
                  const cc_thread_options *opts)
{
    if (!out || !fn)
        return -EINVAL;
    cc_thread_options o = opts ? *opts : (cc_thread_options){0};
    if (o.stack_size != 0 && o.stack_size < MIN_STACK_SIZE)
        return -EINVAL;
    if (o.daemon != CC_DAEMON_INHERIT && o.daemon != CC_DAEMON_NO &&
        o.daemon != CC_DAEMON_YES)
        return -EINVAL;

    char fallback[32];
    if (!o.name) {
        snprintf(fallback, sizeof fallback, "Thread-%lu",
                 cci_thread_next_number());
        o.name = fallback;
    }
    struct cc_thread *t = cci_thread_alloc(o.name, CCI_ORIGIN_CONCUR);
    if (!t)
        return -ENOMEM;
    t->fn = fn;
    t->ctx = ctx;
    t->stack_size = o.stack_size;
    if (o.daemon == CC_DAEMON_INHERIT) {
        struct cc_thread *self = cci_thread_self_or_create();
        t->daemon = self ? self->daemon : false;
    } else {
        t->daemon = o.daemon == CC_DAEMON_YES;
    }
    *out = t;
    return 0;
}

/* ---- running ------------------------------------------------------------ */

static pthread_mutex_t hook_lock = PTHREAD_MUTEX_INITIALIZER;
static cc_thread_excepthook hook_fn;
static void *hook_ctx;

static void default_excepthook(const cc_thread_failure *f, void *ctx)
{
    (void)ctx;
    fprintf(stderr, "Exception in thread %s: %s (%s)\n",
            cc_thread_name(f->thread),
            f->message ? f->message : "thread function failed",
            cc_strerror(f->status));
}

void cc_thread_set_excepthook(cc_thread_excepthook hook, void *ctx)
{
    pthread_mutex_lock(&hook_lock);
    hook_fn = hook;
    hook_ctx = ctx;
    pthread_mutex_unlock(&hook_lock);
}

static void report_failure(struct cc_thread *t, int status)
{
    pthread_mutex_lock(&hook_lock);
    cc_thread_excepthook fn = hook_fn ? hook_fn : default_excepthook;
    void *ctx = hook_ctx;
    pthread_mutex_unlock(&hook_lock);
    cc_thread_failure f = {t, status, t->error_message};
    fn(&f, ctx);
}

void cci_thread_finish(struct cc_thread *t, int status)
{
    t->status = status;
    cci_registry_remove(t);
    set_state(t, CC_THREAD_TERMINATED);
    /* seq_cst pairs with the joiner's increment of joiners followed by its
     * load of done (Dekker): either it sees done, or we see it waiting. */
    __atomic_store_n(&t->done, 1, __ATOMIC_SEQ_CST);
    if (__atomic_load_n(&t->joiners, __ATOMIC_SEQ_CST) > 0)
        cci_futex_wake(&t->done, INT32_MAX, false);
}

static void *trampoline(void *arg)
{
    struct cc_thread *t = arg;
    tls_self = t;
    __atomic_store_n(&t->native_id, (int64_t)cci_gettid(), __ATOMIC_RELAXED);
    char short_name[16];
    snprintf(short_name, sizeof short_name, "%s", current_name(t)->text);
    pthread_setname_np(pthread_self(), short_name);

    /* The trace timeline marks a thread's start and end (not a hot path). */
    if (cci_trace_on())
        cci_trace_thread(true, 0);
    int status = t->fn(t->ctx);
    if (cci_trace_on())
        cci_trace_thread(false, status);
    if (status < 0)
        report_failure(t, status);
    cci_thread_finish(t, status);
    cc_thread_unref(t); /* the reference start took for the thread */
    return NULL;
}

int cc_thread_start(cc_thread *t)
{
    if (!t)
        return -EINVAL;
    if (t->origin != CCI_ORIGIN_CONCUR)
        return -EALREADY;
    if (__atomic_exchange_n(&t->started, 1, __ATOMIC_ACQ_REL))
        return -EALREADY;

    pthread_attr_t attr;
    pthread_attr_init(&attr);
    if (t->stack_size) {
        long page = sysconf(_SC_PAGESIZE);
        size_t size = (t->stack_size + (size_t)page - 1) & ~((size_t)page - 1);
        if (pthread_attr_setstacksize(&attr, size) != 0) {
            pthread_attr_destroy(&attr);
            __atomic_store_n(&t->started, 0, __ATOMIC_RELEASE);
            return -EINVAL;
        }
    }
    cci_registry_arm_exit_join();
    if (t->ident == 0)
        t->ident = cci_thread_next_ident();
    cc_thread_ref(t); /* held by the thread until its function returns */
    set_state(t, CC_THREAD_RUNNING);
    cci_registry_add(t);
    int rc = pthread_create(&t->handle, &attr, trampoline, t);
    pthread_attr_destroy(&attr);
    if (rc != 0) {
        cci_registry_remove(t);
        set_state(t, CC_THREAD_NEW);
        __atomic_fetch_sub(&t->refs, 1, __ATOMIC_RELAXED);
        __atomic_store_n(&t->started, 0, __ATOMIC_RELEASE);
        return -EAGAIN;
    }
    return 0;
}

int cc_thread_join(cc_thread *t, cc_duration timeout)
{
    if (!t || !cci_duration_valid(timeout))
        return -EINVAL;
    if (!__atomic_load_n(&t->started, __ATOMIC_ACQUIRE))
        return -ESRCH;
    if (t == tls_self)
        return -EDEADLK;
    if (timeout == CC_FOREVER && t->origin == CCI_ORIGIN_CONCUR &&
        __atomic_exchange_n(&t->reaped, 1, __ATOMIC_ACQ_REL) == 0) {
        /* The common join: let pthread_join do the waiting, so the thread
         * need not wake us through `done` (one futex call instead of
         * three). Winning `reaped` makes this the only pthread_join. */
        cci_block_token tok = {0};
        if (!__atomic_load_n(&t->done, __ATOMIC_ACQUIRE))
            tok = cci_block_begin(CC_WAIT_JOIN, t);
        pthread_join(t->handle, NULL);
        cci_block_end(tok);
        return 0;
    }
    if (!__atomic_load_n(&t->done, __ATOMIC_ACQUIRE)) {
        int64_t deadline = cci_deadline_after(timeout);
        cci_block_token tok = cci_block_begin(CC_WAIT_JOIN, t);
        int rc = 0;
        __atomic_fetch_add(&t->joiners, 1, __ATOMIC_SEQ_CST);
        while (!__atomic_load_n(&t->done, __ATOMIC_SEQ_CST)) {
            if (cci_futex_wait(&t->done, 0, deadline, false) == -ETIMEDOUT &&
                !__atomic_load_n(&t->done, __ATOMIC_ACQUIRE)) {
                rc = -ETIMEDOUT;
                break;
            }
        }
        __atomic_fetch_sub(&t->joiners, 1, __ATOMIC_RELAXED);
        cci_block_end(tok);
        if (rc)
            return rc;
    }
    /* done has been seen with acquire (or seq_cst) ordering above. */
    if (t->origin == CCI_ORIGIN_CONCUR &&
        __atomic_exchange_n(&t->reaped, 1, __ATOMIC_ACQ_REL) == 0)
        pthread_join(t->handle, NULL);
    return 0;
}

int cc_thread_status(const cc_thread *t, int *status)
{
    if (!t || !status)
        return -EINVAL;
    if (!__atomic_load_n(&t->done, __ATOMIC_ACQUIRE))
        return -EBUSY;
    *status = t->status;
    return 0;
}

const char *cc_thread_error_message(const cc_thread *t)
{
    if (!t || !__atomic_load_n(&t->done, __ATOMIC_ACQUIRE))
        return NULL;
    return t->error_message;
}

int cc_thread_fail(int status, const char *fmt, ...)
{
    struct cc_thread *t = cci_thread_self_or_create();
    if (!t)
        return cci_failure_code(status);
    va_list ap;
    va_start(ap, fmt);
    status = cci_failure_record(&t->error_message, status, fmt, ap);
    va_end(ap);
    return status;
}

bool cc_thread_is_alive(const cc_thread *t)
{
    return t && __atomic_load_n(&t->started, __ATOMIC_ACQUIRE) &&
           !__atomic_load_n(&t->done, __ATOMIC_ACQUIRE);
}

const char *cc_thread_name(const cc_thread *t)
{
    return t ? current_name(t)->text : NULL;
}

static void rename_os_thread(struct cc_thread *t, void *ctx)
{
    char short_name[16];
    snprintf(short_name, sizeof short_name, "%s", (const char *)ctx);
    pthread_setname_np(t->handle, short_name);
}

int cc_thread_set_name(cc_thread *t, const char *name)
{
    if (!t || !name)
        return -EINVAL;
    /* Renames are rare: a lock keeps the chain of old names consistent. */
    static pthread_mutex_t rename_lock = PTHREAD_MUTEX_INITIALIZER;
    pthread_mutex_lock(&rename_lock);
    struct cci_name *fresh = name_new(name, current_name(t));
    if (fresh)
        __atomic_store_n(&t->name, fresh, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&rename_lock);
    if (!fresh)
        return -ENOMEM;
    if (t == tls_self) {
        char short_name[16];
        snprintf(short_name, sizeof short_name, "%s", name);
        pthread_setname_np(pthread_self(), short_name);
    } else if (t->origin == CCI_ORIGIN_CONCUR) {
        /* Only while registered is the pthread handle sure to be valid. */
        cci_registry_with_live(t, rename_os_thread, fresh->text);
    }
    return 0;
}

bool cc_thread_is_daemon(const cc_thread *t)
{
    return t && t->daemon;
}

int cc_thread_set_daemon(cc_thread *t, bool daemon)
{
    if (!t)
        return -EINVAL;
    if (__atomic_load_n(&t->started, __ATOMIC_ACQUIRE))
        return -EBUSY;
    t->daemon = daemon;
    return 0;
}

uint64_t cc_thread_ident(const cc_thread *t)
{
    if (!t || !__atomic_load_n(&t->started, __ATOMIC_ACQUIRE))
        return 0;
    return t->ident;
}

int64_t cc_thread_native_id(const cc_thread *t)
{
    return t ? __atomic_load_n(&t->native_id, __ATOMIC_RELAXED) : 0;
}

cc_thread_state cc_thread_get_state(const cc_thread *t)
{
    if (!t)
        return CC_THREAD_NEW;
    return (cc_thread_state)__atomic_load_n(&t->state, __ATOMIC_ACQUIRE);
}

/* ---- what a thread waits on --------------------------------------------- */

/* Writer side of the sequence lock; only the thread itself calls it.
 * No fences (ThreadSanitizer cannot see them): each field store is a
 * release, so the odd sequence number is visible before any field changes;
 * the reader loads fields with acquire, so its re-check of the sequence
 * cannot move before them. */
static void publish_wait(struct cc_thread *t, cc_wait_kind kind,
                         const void *object, int64_t since)
{
    uint32_t seq = __atomic_load_n(&t->wait_seq, __ATOMIC_RELAXED);
    __atomic_store_n(&t->wait_seq, seq + 1, __ATOMIC_RELAXED);
    __atomic_store_n(&t->wait_kind, (uint32_t)kind, __ATOMIC_RELEASE);
    __atomic_store_n(&t->wait_object, object, __ATOMIC_RELEASE);
    __atomic_store_n(&t->wait_since, since, __ATOMIC_RELEASE);
    __atomic_store_n(&t->wait_seq, seq + 2, __ATOMIC_RELEASE);
}

int cc_thread_wait_info(const cc_thread *t, cc_wait_info *out)
{
    if (!t || !out)
        return -EINVAL;
    for (;;) {
        uint32_t s1 = __atomic_load_n(&t->wait_seq, __ATOMIC_ACQUIRE);
        if (s1 & 1) {
            cci_cpu_relax();
            continue;
        }
        out->kind = (cc_wait_kind)__atomic_load_n(&t->wait_kind,
                                                  __ATOMIC_ACQUIRE);
        out->object = __atomic_load_n(&t->wait_object, __ATOMIC_ACQUIRE);
        out->since_ns = __atomic_load_n(&t->wait_since, __ATOMIC_ACQUIRE);
        if (__atomic_load_n(&t->wait_seq, __ATOMIC_RELAXED) == s1)
            return 0;
    }
}

cci_block_token cci_block_begin(cc_wait_kind kind, const void *object)
{
    cci_block_token tok = {0};
    struct cc_thread *t = cci_thread_self_or_create();
    if (!t)
        return tok;
    tok.thread = t;
    tok.kind = (cc_wait_kind)__atomic_load_n(&t->wait_kind, __ATOMIC_RELAXED);
    tok.object = __atomic_load_n(&t->wait_object, __ATOMIC_RELAXED);
    tok.since_ns = __atomic_load_n(&t->wait_since, __ATOMIC_RELAXED);
    publish_wait(t, kind, object, cci_now_ns());
    set_state(t, CC_THREAD_BLOCKED);
    return tok;
}

void cci_block_end(cci_block_token tok)
{
    struct cc_thread *t = tok.thread;
    if (!t)
        return;
    /* The trace timeline: one load and branch when not recording. Our own
     * wait fields, written by this thread, need no ordering. */
    if (__builtin_expect(cci_trace_on(), 0))
        cci_trace_blocked(
            (cc_wait_kind)__atomic_load_n(&t->wait_kind, __ATOMIC_RELAXED),
            __atomic_load_n(&t->wait_object, __ATOMIC_RELAXED),
            __atomic_load_n(&t->wait_since, __ATOMIC_RELAXED));
    publish_wait(t, tok.kind, tok.object, tok.since_ns);
    set_state(t, tok.kind == CC_WAIT_NONE ? CC_THREAD_RUNNING
                                          : CC_THREAD_BLOCKED);
}

/* ---- sleep -------------------------------------------------------------- */

int cc_sleep(cc_duration d)
{
    if (d < 0)
        return -EINVAL;
    if (d == 0) {
        sched_yield();
        return 0;
    }
    int64_t deadline = cci_deadline_after(d);
    struct timespec ts = {.tv_sec = deadline / 1000000000,
                          .tv_nsec = deadline % 1000000000};
    cci_block_token tok = cci_block_begin(CC_WAIT_SLEEP, NULL);
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
        ;
    cci_block_end(tok);
    return 0;
}
