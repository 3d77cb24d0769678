/*
 * dump.c — the thread dump (cc_dump) and its SIGQUIT trigger.
 *
 * The dump reads only what other threads publish for this purpose (state
 * and wait triple under their sequence lock, names, the held-lock table, the
 * pools' counters), holding references to every thread it prints, so a
 * thread that ends meanwhile is printed as it was, never freed under us.
 * Objects a thread waits on are never dereferenced: they are named through
 * the name table, by address, or, for a join, matched against the threads
 * enumerated (whose records we hold).
 *
 * SIGQUIT: the handler does one write(2) to an eventfd (async-signal-safe);
 * a dedicated plain pthread (outside concur's registry, so it never shows in
 * the dump and never counts as a concur thread) reads it and prints.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "concur/executor.h"
#include "executor/executor_internal.h"
#include "loop/loop_internal.h"
#include "platform/platform.h"
#include "trace/trace_internal.h"

void cci_describe_wait(cc_wait_kind kind, const void *obj, char *buf,
                       size_t cap)
{
    char name[CC_NAME_MAX + 1];
    const char *what = cc_wait_kind_name(kind);
    if (!obj)
        snprintf(buf, cap, "%s", what);
    else if (cci_name_lookup(obj, name, sizeof name))
        snprintf(buf, cap, "%s \"%s\" (%p)", what, name, obj);
    else
        snprintf(buf, cap, "%s %p", what, obj);
}

/* ---- threads ------------------------------------------------------------- */

struct dump {
    FILE *out;
    cc_thread **threads;
    size_t n;
    cci_held_info *held;
    size_t n_held;
    bool tracking;
    int64_t now;
};

static int by_ident(const void *a, const void *b)
{
    uint64_t x = cc_thread_ident(*(cc_thread *const *)a);
    uint64_t y = cc_thread_ident(*(cc_thread *const *)b);
    return x < y ? -1 : x > y;
}

static const char *thread_name_of(const struct dump *d, const void *t)
{
    for (size_t i = 0; i < d->n; i++)
        if (d->threads[i] == t)
            return cc_thread_name(d->threads[i]);
    return NULL;
}

static void print_wait(const struct dump *d, const cc_wait_info *w)
{
    double secs = (double)(d->now - w->since_ns) / 1e9;
    const char *joined =
        w->kind == CC_WAIT_JOIN ? thread_name_of(d, w->object) : NULL;
    if (joined) {
        fprintf(d->out, " for %.3f s to join thread \"%s\"\n", secs, joined);
        return;
    }
    char what[160];
    cci_describe_wait(w->kind, w->object, what, sizeof what);
    fprintf(d->out, " for %.3f s on %s\n", secs, what);
    if (!d->tracking || (w->kind != CC_WAIT_LOCK && w->kind != CC_WAIT_RLOCK))
        return;
    for (size_t i = 0; i < d->n_held; i++) {
        if (d->held[i].lock != w->object)
            continue;
        const char *holder = thread_name_of(d, d->held[i].holder);
        char site[160];
        cci_format_site(d->held[i].site, site, sizeof site);
        fprintf(d->out, "      held by \"%s\" for %.3f s, acquired at %s\n",
                holder ? holder : "(a thread that has ended)",
                (double)(d->now - d->held[i].since_ns) / 1e9, site);
    }
}

static void print_holds(const struct dump *d, const cc_thread *t)
{
    if (!d->tracking) {
        fprintf(d->out, "    holds: unknown (enable CONCUR_DEBUG=locks)\n");
        return;
    }
    bool any = false;
    for (size_t i = 0; i < d->n_held; i++) {
        const cci_held_info *h = &d->held[i];
        if (h->holder != t)
            continue;
        char what[160], site[160];
        cci_describe_wait(h->kind, h->lock, what, sizeof what);
        cci_format_site(h->site, site, sizeof site);
        fprintf(d->out, "    holds %s for %.3f s, acquired at %s\n", what,
                (double)(d->now - h->since_ns) / 1e9, site);
        any = true;
    }
    if (!any)
        fprintf(d->out, "    holds no Lock or RLock\n");
}

/* The thread with kernel id tid, for the loops' lines. */
static const char *thread_named_by_tid(uint32_t tid, void *ctx)
{
    const struct dump *d = ctx;
    for (size_t i = 0; i < d->n; i++)
        if (cc_thread_native_id(d->threads[i]) == (int64_t)tid)
            return cc_thread_name(d->threads[i]);
    return NULL;
}

static void print_thread(const struct dump *d, const cc_thread *t)
{
    cc_thread_state state = cc_thread_get_state(t);
    fprintf(d->out, "Thread \"%s\" ident %llu, native %lld%s, %s",
            cc_thread_name(t), (unsigned long long)cc_thread_ident(t),
            (long long)cc_thread_native_id(t),
            cc_thread_is_daemon(t) ? ", daemon" : "",
            cc_thread_state_name(state));
    cc_wait_info w;
    if (state == CC_THREAD_BLOCKED && cc_thread_wait_info(t, &w) == 0 &&
        w.kind != CC_WAIT_NONE)
        print_wait(d, &w);
    else
        fputc('\n', d->out);
    print_holds(d, t);
}

/* ---- pools --------------------------------------------------------------- */

static void print_pool(cc_executor *ex, void *ctx)
{
    FILE *out = ctx;
    cc_pool_stats s;
    if (cc_executor_stats(ex, &s) != 0)
        return;
    char name[CC_NAME_MAX + 1];
    if (!cci_name_lookup(ex, name, sizeof name))
        snprintf(name, sizeof name, "?");
    fprintf(out,
            "Pool \"%s\" (%p, %s pool), %s: workers %u started of %u, %u "
            "idle; queued %llu, running %llu\n"
            "    submitted %llu, completed %llu, failed %llu, cancelled %llu, "
            "stolen %llu, worker restarts %llu, fork-join tasks %llu\n",
            name, (void *)ex, cc_executor_kind(ex),
            s.broken     ? "BROKEN"
            : s.shutdown ? "SHUTDOWN"
                         : "RUNNING",
            s.workers, s.max_workers, s.idle_workers,
            (unsigned long long)s.queued, (unsigned long long)s.running,
            (unsigned long long)s.submitted, (unsigned long long)s.completed,
            (unsigned long long)s.failed, (unsigned long long)s.cancelled,
            (unsigned long long)s.stolen,
            (unsigned long long)s.worker_restarts,
            (unsigned long long)s.forkjoin_done);
    if (ex->ops->dump_workers)
        ex->ops->dump_workers(ex, out);
}

int cc_dump(FILE *out)
{
    if (!out)
        return -EINVAL;
    struct dump d = {.out = out};
    int rc = cc_thread_enumerate(&d.threads, &d.n);
    if (rc != 0)
        return rc;
    qsort(d.threads, d.n, sizeof *d.threads, by_ident);
    d.tracking = cci_lockdep_on();
    d.held = cci_lockdep_snapshot(&d.n_held);
    d.now = cci_now_ns();

    fprintf(out, "concur dump: pid %d, %zu threads, lock tracking %s\n",
            (int)getpid(), d.n, d.tracking ? "on" : "off");
    for (size_t i = 0; i < d.n; i++)
        print_thread(&d, d.threads[i]);
    if (!cci_thread_pools_foreach(print_pool, out) ||
        !cci_process_pools_foreach(print_pool, out))
        fprintf(out, "Pools: not all shown (a pool list is busy: the "
                     "process is exiting)\n");
    if (!cci_loops_dump(out, thread_named_by_tid, &d))
        fprintf(out, "Loops: not shown (the list of loops stayed busy)\n");
    fprintf(out, "end of concur dump\n");
    fflush(out);

    free(d.held);
    cc_thread_list_free(d.threads, d.n);
    return ferror(out) ? -EIO : 0;
}

/* ---- SIGQUIT ------------------------------------------------------------- */

static pthread_mutex_t sig_lock = PTHREAD_MUTEX_INITIALIZER;
static bool sig_enabled;         /* guarded by sig_lock */
static struct sigaction sig_old; /* guarded by sig_lock */
static pthread_t sig_thread;
static int sig_fd = -1;   /* atomic: read by the handler */
static uint32_t sig_stop; /* atomic */

static void on_sigquit(int signo)
{
    (void)signo;
    int saved = errno;
    int fd = __atomic_load_n(&sig_fd, __ATOMIC_RELAXED);
    uint64_t one = 1;
    if (fd >= 0)
        (void)!write(fd, &one, sizeof one);
    errno = saved;
}

static void *dumper_main(void *arg)
{
    int fd = (int)(intptr_t)arg;
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, NULL);
    for (;;) {
        uint64_t v;
        ssize_t n = read(fd, &v, sizeof v);
        if (n < 0 && errno == EINTR)
            continue;
        if (n != (ssize_t)sizeof v ||
            __atomic_load_n(&sig_stop, __ATOMIC_ACQUIRE))
            break;
        cc_dump(stderr);
    }
    return NULL;
}

static int enable_sigquit(void)
{
    int fd = eventfd(0, EFD_CLOEXEC);
    if (fd < 0)
        return -errno;
    __atomic_store_n(&sig_stop, 0, __ATOMIC_RELAXED);
    int err =
        pthread_create(&sig_thread, NULL, dumper_main, (void *)(intptr_t)fd);
    if (err != 0) {
        close(fd);
        return -err;
    }
    __atomic_store_n(&sig_fd, fd, __ATOMIC_RELEASE);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigquit;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    sigaction(SIGQUIT, &sa, &sig_old);
    sig_enabled = true;
    return 0;
}

static void disable_sigquit(void)
{
    sigaction(SIGQUIT, &sig_old, NULL);
    int fd = __atomic_load_n(&sig_fd, __ATOMIC_RELAXED);
    /* A handler still running elsewhere may write once more: harmless,
     * the descriptor is closed only after the thread has been joined. */
    __atomic_store_n(&sig_fd, -1, __ATOMIC_RELAXED);
    __atomic_store_n(&sig_stop, 1, __ATOMIC_RELEASE);
    uint64_t one = 1;
    (void)!write(fd, &one, sizeof one);
    pthread_join(sig_thread, NULL);
    close(fd);
    sig_enabled = false;
}

int cc_dump_on_sigquit(bool enable)
{
    pthread_mutex_lock(&sig_lock);
    int rc = 0;
    if (enable && !sig_enabled)
        rc = enable_sigquit();
    else if (!enable && sig_enabled)
        disable_sigquit();
    pthread_mutex_unlock(&sig_lock);
    return rc;
}

/* fork: the dumper thread does not exist in the child. Give the child the
 * previous SIGQUIT action back, as if the dump had never been enabled
 * there; the eventfd is inherited but unused (closed on exec). */
void cci_dump_atfork_prepare(void);
void cci_dump_atfork_parent(void);
void cci_dump_atfork_child(void);

void cci_dump_atfork_prepare(void)
{
    pthread_mutex_lock(&sig_lock);
}

void cci_dump_atfork_parent(void)
{
    pthread_mutex_unlock(&sig_lock);
}

void cci_dump_atfork_child(void)
{
    if (sig_enabled) {
        sigaction(SIGQUIT, &sig_old, NULL);
        int fd = __atomic_load_n(&sig_fd, __ATOMIC_RELAXED);
        __atomic_store_n(&sig_fd, -1, __ATOMIC_RELAXED);
        if (fd >= 0)
            close(fd);
        sig_enabled = false;
    }
    pthread_mutex_unlock(&sig_lock);
}
