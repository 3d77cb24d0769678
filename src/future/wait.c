/*
 * Waiting on many futures: cc_future_wait_many and cc_as_completed.
 *
 * ALL_COMPLETED waits on each future in turn with one deadline: no
 * registration, no allocation, and the thread shows which future holds it
 * up. FIRST_COMPLETED, FIRST_EXCEPTION and as_completed register one waiter
 * node per future with a group owned by this thread (future_internal.h) and
 * sleep on the group word. Futures are locked one at a time, never two.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

#include "future/future_internal.h"
#include "platform/platform.h"
#include "thread/blocking.h"
#include "time/deadline.h"

/* Wait-many keeps up to this many waiter nodes on the stack (48 bytes each). */
#define STACK_WAITERS 16

typedef bool (*group_ready_fn)(void *ctx, uint32_t word);
typedef const void *(*group_blocked_on_fn)(void *ctx);

/*
 * Waits until ready(ctx, word) or the deadline. ready is evaluated on a word
 * loaded with acquire, so what completers published before bumping it is
 * visible. Returns 0 or -ETIMEDOUT.
 */
static int group_wait(struct cci_future_group *g, int64_t deadline,
                      group_ready_fn ready, group_blocked_on_fn blocked_on,
                      void *ctx)
{
    if (ready(ctx, atomic_load_explicit(&g->word, memory_order_acquire)))
        return 0;
    if (deadline == 0)
        return -ETIMEDOUT;
    for (unsigned i = cci_future_spin_limit(); i > 0; i--) {
        cci_cpu_relax();
        if (ready(ctx, atomic_load_explicit(&g->word, memory_order_acquire)))
            return 0;
    }
    if (deadline != CCI_NO_DEADLINE && cci_now_ns() >= deadline)
        return -ETIMEDOUT;
    int rc = 0;
    cci_block_token token = cci_block_begin(CC_WAIT_FUTURE, blocked_on(ctx));
    for (;;) {
        uint32_t w = atomic_load_explicit(&g->word, memory_order_acquire);
        if (ready(ctx, w))
            break;
        if (!(w & CCI_FUTURE_GROUP_SLEEPING)) {
            /* Pairs with the completer's fetch_add: one of us sees the
             * other's change to the word. */
            if (!atomic_compare_exchange_weak_explicit(
                    &g->word, &w, w | CCI_FUTURE_GROUP_SLEEPING,
                    memory_order_relaxed, memory_order_relaxed))
                continue;
            w |= CCI_FUTURE_GROUP_SLEEPING;
        }
        if (cci_futex_wait(cci_futex_word(&g->word), w, deadline, false) ==
            -ETIMEDOUT) {
            w = atomic_load_explicit(&g->word, memory_order_acquire);
            rc = ready(ctx, w) ? 0 : -ETIMEDOUT;
            break;
        }
    }
    /* Completions after this need not enter the kernel. */
    atomic_fetch_and_explicit(&g->word, ~CCI_FUTURE_GROUP_SLEEPING,
                              memory_order_relaxed);
    cci_block_end(token);
    return rc;
}

static uint32_t group_fired(uint32_t word)
{
    return word / CCI_FUTURE_GROUP_FIRED;
}

/* ---- wait-many ----------------------------------------------------------- */

static bool condition_holds(cc_future *const *fs, size_t n, cc_return_when when)
{
    size_t done = 0;
    for (size_t i = 0; i < n; i++) {
        if (!cc_future_done(fs[i]))
            continue;
        done++;
        if (when == CC_FIRST_COMPLETED)
            return true;
        if (when == CC_FIRST_EXCEPTION && cci_future_failed(fs[i]))
            return true;
    }
    return done == n;
}

struct first_wait {
    cc_future *const *fs;
    size_t n;
    cc_return_when when;
    size_t done_at_registration;
    bool failed_at_registration;
    struct cci_future_group *group;
};

static bool first_ready(void *ctx, uint32_t word)
{
    struct first_wait *fw = ctx;
    size_t done = fw->done_at_registration + group_fired(word);
    if (done == fw->n)
        return true;
    if (fw->when == CC_FIRST_COMPLETED)
        return done > 0;
    return fw->failed_at_registration ||
           atomic_load_explicit(&fw->group->failed, memory_order_relaxed);
}

static const void *first_pending(cc_future *const *fs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!cc_future_done(fs[i]))
            return fs[i];
    return n ? fs[0] : NULL;
}

static const void *first_blocked_on(void *ctx)
{
    struct first_wait *fw = ctx;
    return first_pending(fw->fs, fw->n);
}

static int wait_first(cc_future *const *fs, size_t n, cc_return_when when,
                      int64_t deadline)
{
    struct cci_future_waiter stack_nodes[STACK_WAITERS];
    struct cci_future_waiter *nodes = stack_nodes;
    if (n > STACK_WAITERS) {
        nodes = malloc(n * sizeof *nodes);
        if (!nodes)
            return -ENOMEM;
    }
    struct cci_future_group group;
    atomic_init(&group.word, 0);
    atomic_init(&group.failed, false);
    atomic_init(&group.fired, NULL);
    struct first_wait fw = {.fs = fs, .n = n, .when = when, .group = &group};
    for (size_t i = 0; i < n; i++) {
        nodes[i].group = &group;
        nodes[i].future = fs[i];
        if (!cci_future_register_waiter(fs[i], &nodes[i])) {
            fw.done_at_registration++;
            if (cci_future_failed(fs[i]))
                fw.failed_at_registration = true;
        }
    }
    /* A timeout is not an error here: the caller reports what is done. */
    group_wait(&group, deadline, first_ready, first_blocked_on, &fw);
    for (size_t i = 0; i < n; i++)
        cci_future_unregister_waiter(fs[i], &nodes[i]);
    if (nodes != stack_nodes)
        free(nodes);
    return 0;
}

int cc_future_wait_many(cc_future *const *fs, size_t n,
                        cc_return_when return_when, cc_duration timeout,
                        bool *done)
{
    if ((!fs && n > 0) || n > INT32_MAX || !cci_duration_valid(timeout))
        return -EINVAL;
    if (return_when != CC_ALL_COMPLETED && return_when != CC_FIRST_COMPLETED &&
        return_when != CC_FIRST_EXCEPTION)
        return -EINVAL;
    for (size_t i = 0; i < n; i++)
        if (!fs[i])
            return -EINVAL;
    int64_t deadline = cci_deadline_after(timeout);
    if (!condition_holds(fs, n, return_when)) {
        if (return_when == CC_ALL_COMPLETED) {
            for (size_t i = 0; i < n; i++)
                if (cci_future_wait_until(fs[i], deadline) < 0)
                    break;
        } else {
            int rc = wait_first(fs, n, return_when, deadline);
            if (rc < 0)
                return rc;
        }
    }
    int count = 0;
    for (size_t i = 0; i < n; i++) {
        bool d = cc_future_done(fs[i]);
        if (done)
            done[i] = d;
        count += d;
    }
    return count;
}

/* ---- as_completed -------------------------------------------------------- */

struct cc_as_completed {
    struct cci_future_group group;
    int64_t deadline;
    size_t n;         /* distinct futures, one node each */
    size_t remaining; /* not yet yielded */
    /* Done and not yet yielded, oldest first, linked by fired_next (which
     * is the owner's once a node is off the group's fired stack). */
    struct cci_future_waiter *ready_head, *ready_tail;
    struct cci_future_waiter nodes[];
};

static void ready_push(cc_as_completed *it, struct cci_future_waiter *w)
{
    w->fired_next = NULL;
    if (it->ready_tail)
        it->ready_tail->fired_next = w;
    else
        it->ready_head = w;
    it->ready_tail = w;
}

/* Moves fired nodes to the ready queue in the order they completed. */
static void take_fired(cc_as_completed *it)
{
    struct cci_future_waiter *w =
        atomic_exchange_explicit(&it->group.fired, NULL, memory_order_acquire);
    struct cci_future_waiter *oldest_first = NULL;
    while (w) {
        struct cci_future_waiter *next = w->fired_next;
        w->fired_next = oldest_first;
        oldest_first = w;
        w = next;
    }
    while (oldest_first) {
        struct cci_future_waiter *next = oldest_first->fired_next;
        ready_push(it, oldest_first);
        oldest_first = next;
    }
}

static bool fired_ready(void *ctx, uint32_t word)
{
    cc_as_completed *it = ctx;
    return atomic_load_explicit(&it->group.fired, memory_order_acquire) != NULL;
}

static const void *as_completed_blocked_on(void *ctx)
{
    cc_as_completed *it = ctx;
    for (size_t i = 0; i < it->n; i++)
        if (!cc_future_done(it->nodes[i].future))
            return it->nodes[i].future;
    return it->n ? it->nodes[0].future : NULL;
}

struct entry {
    cc_future *f;
    size_t index;
};

static int entry_cmp(const void *a, const void *b)
{
    const struct entry *x = a, *y = b;
    if (x->f != y->f)
        return (uintptr_t)x->f < (uintptr_t)y->f ? -1 : 1;
    return x->index < y->index ? -1 : x->index > y->index;
}

/*
 * Marks keep[i] for the first occurrence of each distinct future and returns
 * how many there are, or -ENOMEM. O(n log n): sorting pointers beats a hash
 * table at the sizes people pass here and needs no tuning.
 */
static int64_t mark_distinct(cc_future *const *fs, size_t n, bool *keep)
{
    if (n == 0)
        return 0;
    struct entry *e = malloc(n * sizeof *e);
    if (!e)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++)
        e[i] = (struct entry){fs[i], i};
    qsort(e, n, sizeof *e, entry_cmp);
    int64_t distinct = 0;
    for (size_t i = 0; i < n; i++) {
        bool first = i == 0 || e[i].f != e[i - 1].f;
        keep[e[i].index] = first;
        distinct += first;
    }
    free(e);
    return distinct;
}

int cc_as_completed_new(cc_as_completed **out, cc_future *const *fs, size_t n,
                        cc_duration timeout)
{
    if (!out || (!fs && n > 0) || n > INT32_MAX || !cci_duration_valid(timeout))
        return -EINVAL;
    for (size_t i = 0; i < n; i++)
        if (!fs[i])
            return -EINVAL;
    int64_t deadline = cci_deadline_after(timeout);
    bool *keep = malloc(n ? n : 1);
    if (!keep)
        return -ENOMEM;
    int64_t distinct = mark_distinct(fs, n, keep);
    if (distinct < 0) {
        free(keep);
        return (int)distinct;
    }
    cc_as_completed *it = malloc(
        sizeof *it + (size_t)distinct * sizeof(struct cci_future_waiter));
    if (!it) {
        free(keep);
        return -ENOMEM;
    }
    atomic_init(&it->group.word, 0);
    atomic_init(&it->group.failed, false);
    atomic_init(&it->group.fired, NULL);
    it->deadline = deadline;
    it->n = (size_t)distinct;
    it->remaining = (size_t)distinct;
    it->ready_head = it->ready_tail = NULL;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (!keep[i])
            continue;
        struct cci_future_waiter *w = &it->nodes[k++];
        w->group = &it->group;
        w->future = cc_future_ref(fs[i]);
        if (!cci_future_register_waiter(fs[i], w))
            ready_push(it, w);
    }
    free(keep);
    *out = it;
    return 0;
}

static int pop_ready(cc_as_completed *it, cc_future **out)
{
    struct cci_future_waiter *w = it->ready_head;
    it->ready_head = w->fired_next;
    if (!it->ready_head)
        it->ready_tail = NULL;
    it->remaining--;
    *out = w->future;
    return 1;
}

int cc_as_completed_next(cc_as_completed *it, cc_future **out)
{
    if (!it || !out)
        return -EINVAL;
    if (!it->ready_head)
        take_fired(it);
    if (it->ready_head)
        return pop_ready(it, out);
    if (it->remaining == 0)
        return 0;
    int rc = group_wait(&it->group, it->deadline, fired_ready,
                        as_completed_blocked_on, it);
    take_fired(it);
    if (it->ready_head)
        return pop_ready(it, out);
    return rc < 0 ? rc : -ETIMEDOUT;
}

void cc_as_completed_free(cc_as_completed *it)
{
    if (!it)
        return;
    for (size_t i = 0; i < it->n; i++) {
        cci_future_unregister_waiter(it->nodes[i].future, &it->nodes[i]);
        cc_future_unref(it->nodes[i].future);
    }
    free(it);
}
