/*
 * lockdep.c — lock debugging: which thread holds which Lock and RLock, the
 * lock-order graph, and the watchdog that looks for wait-for cycles.
 *
 * Held locks: a table of (lock, holder, kind, call site, since), one entry
 * per held lock. A Lock may be released by another thread than the one
 * that took it (as in Python), so entries are found by lock address, not
 * per thread; the holder's record is referenced while the entry lives.
 *
 * The lock-order graph (as Linux's lockdep, without lock classes: a node is
 * one lock object): an edge A -> B means some thread acquired B while
 * holding A, remembered with the thread's name and both call sites. A new
 * edge H -> L is added when a thread that holds H starts a blocking acquire
 * of L; if a path L -> ... -> H exists already, the two orders together can
 * deadlock, and the acquisition is reported and handled by the policy
 * before it blocks. Known edges cost one lookup; only new edges search the
 * graph. Try-acquires (CC_NOWAIT) cannot deadlock and add no edge.
 *
 * The watchdog (a plain pthread, invisible to concur's registry) wakes every
 * threshold / 2, takes a snapshot of every thread's wait and of the held
 * table, and follows waits on locks (to the holder) and joins (to the
 * joined thread); a chain that comes back to where it started, with every
 * wait on it older than the threshold, is a deadlock, reported once.
 *
 * Cost: everything here runs only while cci_debug_state != 0, under one
 * mutex (dbg_lock): a debug build of a program, not a production one.
 *
 * Lock order: config_lock -> wd_lock; dbg_lock -> names_lock (names.c).
 * dbg_lock is never held while calling into the thread registry, a report
 * hook, or cc_thread_unref.
 */
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "platform/platform.h"
#include "thread/thread_internal.h"
#include "trace/trace_internal.h"

#define THREAD_NAME_COPY 32

/* ---- configuration ------------------------------------------------------- */

static pthread_mutex_t config_lock = PTHREAD_MUTEX_INITIALIZER;
static uint32_t policy = CC_DEADLOCK_FAIL; /* atomic */
static int64_t threshold_ns = 1000000000;  /* atomic */
/* Set when the environment asked for the watchdog: it starts at the first
 * debug-mode acquire (atomic). */
static uint32_t watchdog_lazy;

static pthread_mutex_t hook_lock = PTHREAD_MUTEX_INITIALIZER;
static cc_debug_report_fn report_fn; /* guarded by hook_lock */
static void *report_ctx;

void cc_debug_set_report_hook(cc_debug_report_fn fn, void *ctx)
{
    pthread_mutex_lock(&hook_lock);
    report_fn = fn;
    report_ctx = ctx;
    pthread_mutex_unlock(&hook_lock);
}

void cci_debug_report(const char *text)
{
    pthread_mutex_lock(&hook_lock);
    cc_debug_report_fn fn = report_fn;
    void *ctx = report_ctx;
    pthread_mutex_unlock(&hook_lock);
    if (fn) {
        fn(text, ctx);
    } else {
        fputs(text, stderr);
        fflush(stderr);
    }
}

int cc_debug_set_deadlock_policy(cc_deadlock_policy p)
{
    if (p != CC_DEADLOCK_FAIL && p != CC_DEADLOCK_ABORT &&
        p != CC_DEADLOCK_REPORT)
        return -EINVAL;
    __atomic_store_n(&policy, (uint32_t)p, __ATOMIC_RELAXED);
    return 0;
}

int cc_debug_set_watchdog_threshold(cc_duration threshold)
{
    if (threshold < CC_MSEC(1))
        return -EINVAL;
    __atomic_store_n(&threshold_ns, threshold, __ATOMIC_RELAXED);
    return 0;
}

unsigned cc_debug_flags(void)
{
    return __atomic_load_n(&cci_debug_state, __ATOMIC_RELAXED);
}

/* ---- call sites ---------------------------------------------------------- */

void cci_format_site(const void *site, char *buf, size_t cap)
{
    Dl_info info;
    if (!site) {
        snprintf(buf, cap, "?");
        return;
    }
    if (dladdr(site, &info) && info.dli_fname) {
        const char *file = strrchr(info.dli_fname, '/');
        file = file ? file + 1 : info.dli_fname;
        if (info.dli_sname && info.dli_saddr)
            snprintf(buf, cap, "%s+0x%zx (%s)", info.dli_sname,
                     (size_t)((uintptr_t)site - (uintptr_t)info.dli_saddr),
                     file);
        else
            snprintf(buf, cap, "%s+0x%zx", file,
                     (size_t)((uintptr_t)site - (uintptr_t)info.dli_fbase));
        return;
    }
    snprintf(buf, cap, "%p", site);
}

bool cci_function_name(const void *fn, char *buf, size_t cap)
{
    Dl_info info;
    if (!fn || !dladdr(fn, &info) || !info.dli_sname || info.dli_saddr != fn)
        return false;
    snprintf(buf, cap, "%s", info.dli_sname);
    return true;
}

/* ---- the held table and the graph (guarded by dbg_lock) ------------------ */

static pthread_mutex_t dbg_lock = PTHREAD_MUTEX_INITIALIZER;

struct held {
    const void *lock;
    struct cc_thread *holder; /* a reference */
    cc_wait_kind kind;
    const void *site;
    int64_t since_ns;
};

static struct held *held;
static size_t n_held, held_cap;

struct edge {
    struct node *to;
    const void *from_site; /* where the held lock was acquired */
    const void *to_site;   /* where the new one was */
    char thread[THREAD_NAME_COPY];
};

struct node {
    const void *addr;
    cc_wait_kind kind;
    struct node *next; /* hash chain */
    struct edge *edges;
    size_t n_edges, cap;
    uint32_t mark;       /* == search_mark: visited by the current search */
    struct node *parent; /* search tree, for reporting the path */
    struct edge *via;
};

static struct node **nodes;
static size_t n_node_buckets, n_nodes;
static uint32_t search_mark;

static size_t node_bucket(const void *addr, size_t n)
{
    uint64_t h = (uint64_t)(uintptr_t)addr * UINT64_C(0x9E3779B97F4A7C15);
    return (size_t)(h >> 32) & (n - 1);
}

static struct node *node_find(const void *addr)
{
    if (!n_node_buckets)
        return NULL;
    struct node *n = nodes[node_bucket(addr, n_node_buckets)];
    while (n && n->addr != addr)
        n = n->next;
    return n;
}

static void nodes_grow(void)
{
    if (n_nodes < n_node_buckets)
        return;
    size_t size = n_node_buckets ? n_node_buckets * 2 : 64;
    struct node **fresh = calloc(size, sizeof *fresh);
    if (!fresh)
        return;
    for (size_t i = 0; i < n_node_buckets; i++) {
        struct node *n = nodes[i];
        while (n) {
            struct node *next = n->next;
            size_t b = node_bucket(n->addr, size);
            n->next = fresh[b];
            fresh[b] = n;
            n = next;
        }
    }
    free(nodes);
    nodes = fresh;
    n_node_buckets = size;
}

static struct node *node_get(const void *addr, cc_wait_kind kind)
{
    struct node *n = node_find(addr);
    if (n)
        return n;
    nodes_grow();
    if (!n_node_buckets)
        return NULL;
    n = calloc(1, sizeof *n);
    if (!n)
        return NULL;
    n->addr = addr;
    n->kind = kind;
    size_t b = node_bucket(addr, n_node_buckets);
    n->next = nodes[b];
    nodes[b] = n;
    n_nodes++;
    return n;
}

static struct edge *edge_find(struct node *from, struct node *to)
{
    for (size_t i = 0; i < from->n_edges; i++)
        if (from->edges[i].to == to)
            return &from->edges[i];
    return NULL;
}

static void edge_add(struct node *from, struct node *to, const void *from_site,
                     const void *to_site, const char *thread)
{
    if (from->n_edges == from->cap) {
        size_t cap = from->cap ? from->cap * 2 : 4;
        struct edge *e = realloc(from->edges, cap * sizeof *e);
        if (!e)
            return; /* the order is forgotten: a report may be missed */
        from->edges = e;
        from->cap = cap;
    }
    struct edge *e = &from->edges[from->n_edges++];
    e->to = to;
    e->from_site = from_site;
    e->to_site = to_site;
    snprintf(e->thread, sizeof e->thread, "%s", thread);
}

/* Depth-first search for a path start -> ... -> goal; on success the path
 * is recorded backwards from goal in the parent/via fields. */
static bool path_exists(struct node *start, struct node *goal)
{
    struct node **stack = malloc((n_nodes + 1) * sizeof *stack);
    if (!stack)
        return false;
    if (++search_mark == 0)
        ++search_mark;
    size_t top = 0;
    start->mark = search_mark;
    start->parent = NULL;
    stack[top++] = start;
    bool found = false;
    while (top > 0 && !found) {
        struct node *n = stack[--top];
        for (size_t i = 0; i < n->n_edges; i++) {
            struct node *m = n->edges[i].to;
            if (m->mark == search_mark)
                continue;
            m->mark = search_mark;
            m->parent = n;
            m->via = &n->edges[i];
            if (m == goal) {
                found = true;
                break;
            }
            stack[top++] = m; /* each node is pushed at most once */
        }
    }
    free(stack);
    return found;
}

static void node_free_all(void)
{
    for (size_t i = 0; i < n_node_buckets; i++) {
        struct node *n = nodes[i];
        while (n) {
            struct node *next = n->next;
            free(n->edges);
            free(n);
            n = next;
        }
    }
    free(nodes);
    nodes = NULL;
    n_node_buckets = n_nodes = 0;
}

static void node_remove(const void *addr)
{
    struct node *gone = node_find(addr);
    if (!gone)
        return;
    struct node **pp = &nodes[node_bucket(addr, n_node_buckets)];
    while (*pp != gone)
        pp = &(*pp)->next;
    *pp = gone->next;
    n_nodes--;
    /* O(edges): destroy is rare, and this is debug mode. */
    for (size_t i = 0; i < n_node_buckets; i++) {
        for (struct node *n = nodes[i]; n; n = n->next) {
            size_t k = 0;
            for (size_t j = 0; j < n->n_edges; j++)
                if (n->edges[j].to != gone)
                    n->edges[k++] = n->edges[j];
            n->n_edges = k;
        }
    }
    free(gone->edges);
    free(gone);
}

static struct held *held_find(const void *lock)
{
    for (size_t i = 0; i < n_held; i++)
        if (held[i].lock == lock)
            return &held[i];
    return NULL;
}

/* Empties the held table; returns the holders to unref (caller frees the
 * array after unref'ing them outside dbg_lock). */
static struct held *held_take_all(size_t *count)
{
    struct held *all = held;
    *count = n_held;
    held = NULL;
    n_held = held_cap = 0;
    return all;
}

static void unref_holders(struct held *all, size_t count)
{
    for (size_t i = 0; i < count; i++)
        cc_thread_unref(all[i].holder);
    free(all);
}

/* ---- reports ------------------------------------------------------------- */

static void describe_lock(const void *lock, cc_wait_kind kind, char *buf,
                          size_t cap)
{
    cci_describe_wait(kind, lock, buf, cap);
}

/* The report for a new edge held -> acquiring that closes the cycle found
 * by path_exists(acquiring, held). Called with dbg_lock held. */
static char *order_report(const char *thread, struct node *held_node,
                          const void *held_site, struct node *acq,
                          const void *acq_site, cc_deadlock_policy p)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f)
        return NULL;
    char a[160], h[160], s1[160], s2[160];
    describe_lock(acq->addr, acq->kind, a, sizeof a);
    describe_lock(held_node->addr, held_node->kind, h, sizeof h);
    cci_format_site(acq_site, s1, sizeof s1);
    cci_format_site(held_site, s2, sizeof s2);
    fprintf(f,
            "concur: lock order inversion (possible deadlock) in thread "
            "\"%s\"\n"
            "  it acquires %s at %s\n"
            "  while holding %s, acquired at %s;\n"
            "  the opposite order was seen before:\n",
            thread, a, s1, h, s2);
    /* The path acq -> ... -> held, recorded backwards from held. */
    size_t steps = 0;
    for (struct node *n = held_node; n != acq && n->parent; n = n->parent)
        steps++;
    struct edge **path = malloc((steps ? steps : 1) * sizeof *path);
    struct node **from = malloc((steps ? steps : 1) * sizeof *from);
    if (path && from) {
        size_t i = steps;
        for (struct node *n = held_node; n != acq && n->parent; n = n->parent) {
            path[--i] = n->via;
            from[i] = n->parent;
        }
        for (i = 0; i < steps; i++) {
            char x[160], y[160], t1[160], t2[160];
            describe_lock(path[i]->to->addr, path[i]->to->kind, x, sizeof x);
            describe_lock(from[i]->addr, from[i]->kind, y, sizeof y);
            cci_format_site(path[i]->to_site, t1, sizeof t1);
            cci_format_site(path[i]->from_site, t2, sizeof t2);
            fprintf(f,
                    "    thread \"%s\" acquired %s at %s\n"
                    "      while holding %s, acquired at %s\n",
                    path[i]->thread, x, t1, y, t2);
        }
    }
    free(path);
    free(from);
    fprintf(f, "  policy: %s\n",
            p == CC_DEADLOCK_ABORT    ? "abort"
            : p == CC_DEADLOCK_REPORT ? "report and go on"
                                      : "the acquire fails with -EDEADLK");
    fclose(f);
    return text;
}

/* ---- the hooks ----------------------------------------------------------- */

static int watchdog_start(void);

int cci_lockdep_before(const void *lock, cc_wait_kind kind, cc_duration timeout,
                       const void *site)
{
    if (__builtin_expect(__atomic_load_n(&watchdog_lazy, __ATOMIC_RELAXED) != 0,
                         0)) {
        pthread_mutex_lock(&config_lock);
        if (__atomic_load_n(&watchdog_lazy, __ATOMIC_RELAXED)) {
            __atomic_store_n(&watchdog_lazy, 0, __ATOMIC_RELAXED);
            if (__atomic_load_n(&cci_debug_state, __ATOMIC_RELAXED) &
                CC_DEBUG_WATCHDOG)
                (void)watchdog_start();
        }
        pthread_mutex_unlock(&config_lock);
    }
    if (!(__atomic_load_n(&cci_debug_state, __ATOMIC_RELAXED) &
          CC_DEBUG_ORDER) ||
        timeout == CC_NOWAIT)
        return 0;
    struct cc_thread *self = cci_thread_self_or_create();
    if (!self)
        return 0;
    char thread[THREAD_NAME_COPY];
    snprintf(thread, sizeof thread, "%s", cc_thread_name(self));
    cc_deadlock_policy p =
        (cc_deadlock_policy)__atomic_load_n(&policy, __ATOMIC_RELAXED);
    char *report = NULL;

    pthread_mutex_lock(&dbg_lock);
    if (__atomic_load_n(&cci_debug_state, __ATOMIC_RELAXED) & CC_DEBUG_ORDER) {
        for (size_t i = 0; i < n_held; i++) {
            if (held[i].holder != self || held[i].lock == lock)
                continue;
            struct node *from = node_get(held[i].lock, held[i].kind);
            struct node *to = node_get(lock, kind);
            if (!from || !to || edge_find(from, to))
                continue;
            if (path_exists(to, from)) {
                if (!report)
                    report =
                        order_report(thread, from, held[i].site, to, site, p);
                if (p != CC_DEADLOCK_REPORT)
                    break; /* refused: the order is not recorded */
            }
            edge_add(from, to, held[i].site, site, thread);
        }
    }
    pthread_mutex_unlock(&dbg_lock);

    if (!report)
        return 0;
    cci_debug_report(report);
    free(report);
    if (p == CC_DEADLOCK_ABORT)
        abort();
    return p == CC_DEADLOCK_FAIL ? -EDEADLK : 0;
}

void cci_lockdep_acquired(const void *lock, cc_wait_kind kind, const void *site)
{
    struct cc_thread *self = cci_thread_self_or_create();
    if (!self)
        return;
    int64_t now = cci_now_ns();
    /* The entry keeps a reference to its holder; `drop` is whichever
     * reference ends up unused. */
    struct cc_thread *drop = cc_thread_ref(self);
    pthread_mutex_lock(&dbg_lock);
    /* Re-checked under the lock: cc_debug_disable empties the table under
     * it, so nothing recorded after that survives. */
    if (__atomic_load_n(&cci_debug_state, __ATOMIC_RELAXED) != 0) {
        struct held fresh = {lock, self, kind, site, now};
        struct held *h = held_find(lock);
        if (h) {
            /* Its release bypassed the hook (cannot happen through the
             * public calls): the new holder replaces the old. */
            drop = h->holder;
            *h = fresh;
        } else {
            if (n_held == held_cap) {
                size_t cap = held_cap ? held_cap * 2 : 16;
                struct held *grown = realloc(held, cap * sizeof *grown);
                if (grown) {
                    held = grown;
                    held_cap = cap;
                }
            }
            if (n_held < held_cap) { /* else out of memory: untracked */
                held[n_held++] = fresh;
                drop = NULL;
            }
        }
    }
    pthread_mutex_unlock(&dbg_lock);
    cc_thread_unref(drop);
}

void cci_lockdep_released(const void *lock)
{
    struct cc_thread *holder = NULL;
    pthread_mutex_lock(&dbg_lock);
    struct held *h = held_find(lock);
    if (h) {
        holder = h->holder;
        *h = held[--n_held];
    }
    pthread_mutex_unlock(&dbg_lock);
    cc_thread_unref(holder);
}

cci_held_info *cci_lockdep_snapshot(size_t *count)
{
    *count = 0;
    if (!cci_lockdep_on())
        return NULL;
    pthread_mutex_lock(&dbg_lock);
    cci_held_info *out = malloc((n_held ? n_held : 1) * sizeof *out);
    if (out) {
        for (size_t i = 0; i < n_held; i++)
            out[i] = (cci_held_info){held[i].lock, held[i].holder, held[i].kind,
                                     held[i].site, held[i].since_ns};
        *count = n_held;
    }
    pthread_mutex_unlock(&dbg_lock);
    return out;
}

void cci_object_forget_slow(const void *obj)
{
    cci_names_forget(obj);
    if (!cci_lockdep_on())
        return;
    pthread_mutex_lock(&dbg_lock);
    node_remove(obj);
    pthread_mutex_unlock(&dbg_lock);
}

/* ---- the watchdog -------------------------------------------------------- */

static pthread_mutex_t wd_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wd_cond; /* CLOCK_MONOTONIC, set up by watchdog_start */
static pthread_t wd_thread;
static bool wd_running; /* guarded by config_lock */
static bool wd_stop;    /* guarded by wd_lock */

/* Cycles already reported: the (ident, since) of the member with the
 * smallest ident stays the same for as long as the deadlock lasts. */
#define REPORTED_MAX 64
static struct {
    uint64_t ident;
    int64_t since;
} reported[REPORTED_MAX]; /* touched only by the watchdog thread */
static unsigned n_reported;

static bool waits_on_holder(cc_wait_kind k)
{
    return k == CC_WAIT_LOCK || k == CC_WAIT_RLOCK || k == CC_WAIT_JOIN;
}

struct scan {
    cc_thread **threads;
    cc_wait_info *waits;
    size_t n;
    cci_held_info *held;
    size_t n_held;
};

static long index_of(const struct scan *s, const void *t)
{
    for (size_t i = 0; i < s->n; i++)
        if (s->threads[i] == t)
            return (long)i;
    return -1;
}

static const cci_held_info *holder_entry(const struct scan *s, const void *lk)
{
    for (size_t i = 0; i < s->n_held; i++)
        if (s->held[i].lock == lk)
            return &s->held[i];
    return NULL;
}

/* Who thread i waits for, as an index, or -1. */
static long waits_for(const struct scan *s, size_t i)
{
    const cc_wait_info *w = &s->waits[i];
    if (w->kind == CC_WAIT_JOIN)
        return index_of(s, w->object);
    const cci_held_info *h = holder_entry(s, w->object);
    return h ? index_of(s, h->holder) : -1;
}

static void report_cycle(const struct scan *s, const long *cycle, size_t len,
                         int64_t now, int64_t threshold)
{
    char *text = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&text, &size);
    if (!f)
        return;
    fprintf(f,
            "concur: deadlock: %zu threads wait for each other (watchdog: "
            "waits older than %.3f s)\n",
            len, (double)threshold / 1e9);
    for (size_t k = 0; k < len; k++) {
        size_t i = (size_t)cycle[k];
        size_t j = (size_t)cycle[(k + 1) % len];
        const cc_wait_info *w = &s->waits[i];
        char what[160];
        if (w->kind == CC_WAIT_JOIN)
            snprintf(what, sizeof what, "thread \"%s\" to finish (join)",
                     cc_thread_name(s->threads[j]));
        else
            cci_describe_wait(w->kind, w->object, what, sizeof what);
        fprintf(f,
                "  thread \"%s\" (ident %llu, native %lld) has waited "
                "%.3f s for %s\n",
                cc_thread_name(s->threads[i]),
                (unsigned long long)cc_thread_ident(s->threads[i]),
                (long long)cc_thread_native_id(s->threads[i]),
                (double)(now - w->since_ns) / 1e9, what);
        if (w->kind == CC_WAIT_JOIN)
            continue;
        const cci_held_info *h = holder_entry(s, w->object);
        char site[160];
        cci_format_site(h ? h->site : NULL, site, sizeof site);
        fprintf(f, "    held by thread \"%s\" for %.3f s, acquired at %s\n",
                cc_thread_name(s->threads[j]),
                h ? (double)(now - h->since_ns) / 1e9 : 0.0, site);
    }
    fclose(f);
    cci_debug_report(text);
    free(text);
}

static bool already_reported(uint64_t ident, int64_t since)
{
    unsigned n = n_reported < REPORTED_MAX ? n_reported : REPORTED_MAX;
    for (unsigned i = 0; i < n; i++)
        if (reported[i].ident == ident && reported[i].since == since)
            return true;
    reported[n_reported % REPORTED_MAX].ident = ident;
    reported[n_reported % REPORTED_MAX].since = since;
    n_reported++;
    return false;
}

static void watchdog_scan(void)
{
    struct scan s = {0};
    if (cc_thread_enumerate(&s.threads, &s.n) != 0)
        return;
    s.waits = calloc(s.n ? s.n : 1, sizeof *s.waits);
    long *cycle = malloc((s.n ? s.n : 1) * sizeof *cycle);
    char *seen = malloc(s.n ? s.n : 1);
    s.held = cci_lockdep_snapshot(&s.n_held);
    int64_t now = cci_now_ns();
    int64_t threshold = __atomic_load_n(&threshold_ns, __ATOMIC_RELAXED);
    if (!s.waits || !cycle || !seen)
        goto out;
    for (size_t i = 0; i < s.n; i++)
        cc_thread_wait_info(s.threads[i], &s.waits[i]);
    for (size_t i = 0; i < s.n; i++) {
        size_t len = 0;
        long cur = (long)i;
        memset(seen, 0, s.n);
        for (;;) {
            const cc_wait_info *w = &s.waits[cur];
            if (!waits_on_holder(w->kind) || now - w->since_ns < threshold)
                break;
            cycle[len++] = cur;
            seen[cur] = 1;
            long next = waits_for(&s, (size_t)cur);
            if (next < 0 || (next != (long)i && seen[next]))
                break; /* no cycle, or one found from another member */
            if (next == (long)i) {
                /* Dedup by the member with the smallest ident. */
                size_t low = (size_t)cycle[0];
                for (size_t k = 1; k < len; k++)
                    if (cc_thread_ident(s.threads[cycle[k]]) <
                        cc_thread_ident(s.threads[low]))
                        low = (size_t)cycle[k];
                if (!already_reported(cc_thread_ident(s.threads[low]),
                                      s.waits[low].since_ns))
                    report_cycle(&s, cycle, len, now, threshold);
                break;
            }
            cur = next;
        }
    }
out:
    free(seen);
    free(cycle);
    free(s.held);
    free(s.waits);
    cc_thread_list_free(s.threads, s.n);
}

static void *watchdog_main(void *arg)
{
    (void)arg;
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, NULL);
    pthread_mutex_lock(&wd_lock);
    while (!wd_stop) {
        int64_t period = __atomic_load_n(&threshold_ns, __ATOMIC_RELAXED) / 2;
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        int64_t at = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec + period;
        ts.tv_sec = at / 1000000000;
        ts.tv_nsec = at % 1000000000;
        pthread_cond_timedwait(&wd_cond, &wd_lock, &ts);
        if (wd_stop)
            break;
        pthread_mutex_unlock(&wd_lock);
        watchdog_scan();
        pthread_mutex_lock(&wd_lock);
    }
    pthread_mutex_unlock(&wd_lock);
    return NULL;
}

/* Called with config_lock held. */
static int watchdog_start(void)
{
    if (wd_running)
        return 0;
    static bool cond_ready;
    if (!cond_ready) {
        pthread_condattr_t attr;
        pthread_condattr_init(&attr);
        pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
        pthread_cond_init(&wd_cond, &attr);
        pthread_condattr_destroy(&attr);
        cond_ready = true;
    }
    wd_stop = false;
    if (pthread_create(&wd_thread, NULL, watchdog_main, NULL) != 0)
        return -EAGAIN;
    wd_running = true;
    return 0;
}

/* Called with config_lock held. */
static void watchdog_stop(void)
{
    if (!wd_running)
        return;
    pthread_mutex_lock(&wd_lock);
    wd_stop = true;
    pthread_cond_signal(&wd_cond);
    pthread_mutex_unlock(&wd_lock);
    pthread_join(wd_thread, NULL);
    wd_running = false;
}

/* ---- switching on and off ------------------------------------------------ */

static unsigned normalise(unsigned flags)
{
    /* Every feature needs the held table. */
    return flags ? flags | CC_DEBUG_LOCKS : 0;
}

int cc_debug_enable(unsigned flags)
{
    if (flags & ~(unsigned)CC_DEBUG_ALL)
        return -EINVAL;
    pthread_mutex_lock(&config_lock);
    unsigned old = __atomic_load_n(&cci_debug_state, __ATOMIC_RELAXED);
    unsigned now = normalise(old | flags);
    int rc = 0;
    if ((now & CC_DEBUG_WATCHDOG) && !wd_running) {
        rc = watchdog_start();
        if (rc != 0)
            now = normalise(now & ~(unsigned)CC_DEBUG_WATCHDOG) | old;
    }
    __atomic_store_n(&cci_debug_state, now, __ATOMIC_RELAXED);
    pthread_mutex_unlock(&config_lock);
    return rc;
}

void cci_debug_enable_from_env(unsigned flags)
{
    pthread_mutex_lock(&config_lock);
    unsigned now =
        normalise(__atomic_load_n(&cci_debug_state, __ATOMIC_RELAXED) | flags);
    if (now & CC_DEBUG_WATCHDOG)
        __atomic_store_n(&watchdog_lazy, 1, __ATOMIC_RELAXED);
    __atomic_store_n(&cci_debug_state, now, __ATOMIC_RELAXED);
    pthread_mutex_unlock(&config_lock);
}

int cc_debug_disable(unsigned flags)
{
    if (flags & ~(unsigned)CC_DEBUG_ALL)
        return -EINVAL;
    pthread_mutex_lock(&config_lock);
    unsigned old = __atomic_load_n(&cci_debug_state, __ATOMIC_RELAXED);
    unsigned now = old & ~flags;
    if (flags & CC_DEBUG_LOCKS)
        now = 0; /* nothing works without the held table */
    else if (!(now & (CC_DEBUG_ORDER | CC_DEBUG_WATCHDOG)))
        now &= CC_DEBUG_LOCKS;
    now = now ? normalise(now) : 0;
    if (!(now & CC_DEBUG_WATCHDOG)) {
        __atomic_store_n(&watchdog_lazy, 0, __ATOMIC_RELAXED);
        watchdog_stop();
    }
    __atomic_store_n(&cci_debug_state, now, __ATOMIC_RELAXED);
    struct held *gone = NULL;
    size_t n_gone = 0;
    pthread_mutex_lock(&dbg_lock);
    if (!(now & CC_DEBUG_ORDER))
        node_free_all();
    if (now == 0)
        gone = held_take_all(&n_gone);
    pthread_mutex_unlock(&dbg_lock);
    pthread_mutex_unlock(&config_lock);
    unref_holders(gone, n_gone);
    return 0;
}

/* ---- environment and fork ------------------------------------------------ */

void cci_lockdep_env_settings(void)
{
    const char *p = getenv("CONCUR_DEADLOCK_POLICY");
    if (p && strcmp(p, "abort") == 0)
        cc_debug_set_deadlock_policy(CC_DEADLOCK_ABORT);
    else if (p && strcmp(p, "report") == 0)
        cc_debug_set_deadlock_policy(CC_DEADLOCK_REPORT);
    const char *ms = getenv("CONCUR_DEBUG_WATCHDOG_MS");
    if (ms) {
        char *end;
        long long v = strtoll(ms, &end, 10);
        if (end != ms && *end == '\0' && v > 0 && v < INT64_MAX / 1000000)
            cc_debug_set_watchdog_threshold(CC_MSEC(v));
    }
}

void cci_lockdep_atfork_prepare(void);
void cci_lockdep_atfork_parent(void);
void cci_lockdep_atfork_child(void);

void cci_lockdep_atfork_prepare(void)
{
    pthread_mutex_lock(&config_lock);
    pthread_mutex_lock(&dbg_lock);
}

void cci_lockdep_atfork_parent(void)
{
    pthread_mutex_unlock(&dbg_lock);
    pthread_mutex_unlock(&config_lock);
}

/* The watchdog thread does not exist in the child: it starts again at the
 * child's first debug-mode acquire. */
void cci_lockdep_atfork_child(void)
{
    pthread_mutex_unlock(&dbg_lock);
    if (wd_running) {
        wd_running = false;
        pthread_mutex_init(&wd_lock, NULL);
        __atomic_store_n(&watchdog_lazy, 1, __ATOMIC_RELAXED);
    }
    pthread_mutex_unlock(&config_lock);
}
