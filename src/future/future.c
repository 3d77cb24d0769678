/* A single future: state machine, outcome, callbacks, waiting on one. */
#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "concur/error.h"
#include "future/block_pool.h"
#include "future/future_internal.h"
#include "platform/platform.h"
#include "thread/blocking.h"
#include "time/deadline.h"
#include "trace/trace_internal.h"

_Static_assert(sizeof(struct cc_future) <= 64,
               "struct cc_future must fit one cache line (pool task budget)");

/* ---- allocation ---------------------------------------------------------- */

void *cci_future_alloc(size_t size)
{
    return malloc(size);
}

void cci_future_dealloc(void *mem)
{
    free(mem);
}

/* ---- the internal lock -----------------------------------------------------
 * A three-state futex mutex (Drepper's "mutex2"). Not cc_lock: it must fit
 * in 4 bytes of the 64-byte future, and a thread contending for it is not
 * "blocked on a lock" in the user's sense: critical sections are a few list
 * operations long. */

static void lock_slow(cc_future *f)
{
    uint32_t c;
    for (unsigned i = 0; i < 64; i++) {
        c = 0;
        if (atomic_compare_exchange_weak_explicit(
                &f->lock, &c, 1, memory_order_acquire, memory_order_relaxed))
            return;
        cci_cpu_relax();
    }
    c = atomic_exchange_explicit(&f->lock, 2, memory_order_acquire);
    while (c != 0) {
        cci_futex_wait(cci_futex_word(&f->lock), 2, CCI_NO_DEADLINE, false);
        c = atomic_exchange_explicit(&f->lock, 2, memory_order_acquire);
    }
}

static inline void future_lock(cc_future *f)
{
    uint32_t c = 0;
    if (!atomic_compare_exchange_strong_explicit(
            &f->lock, &c, 1, memory_order_acquire, memory_order_relaxed))
        lock_slow(f);
}

static inline void future_unlock(cc_future *f)
{
    /* The caller holds a reference, so f outlives the wake. */
    if (atomic_exchange_explicit(&f->lock, 0, memory_order_release) == 2)
        cci_futex_wake(cci_futex_word(&f->lock), 1, false);
}

/* ---- the state machine ------------------------------------------------------
 * The one place that knows which transitions are legal. Every state change
 * goes through transition(); illegal requests come back as the error code
 * the caller reports and change nothing. */

static const bool legal[4][4] = {
    [CC_FUTURE_PENDING] = {[CC_FUTURE_RUNNING] = true,
                           [CC_FUTURE_FINISHED] = true,
                           [CC_FUTURE_CANCELLED] = true},
    [CC_FUTURE_RUNNING] = {[CC_FUTURE_FINISHED] = true},
};

static int illegal_code(uint32_t from)
{
    return from == CC_FUTURE_CANCELLED ? -ECANCELED : -EALREADY;
}

/* Checks that from -> to is legal without changing anything. */
static int transition_check(cc_future *f, uint32_t to)
{
    uint32_t from = cci_future_load(f) & CCI_FUTURE_STATE_MASK;
    return legal[from][to] ? 0 : illegal_code(from);
}

/*
 * Moves f to state `to`, setting `flags` (BYTES). Transitions to a done state
 * require the lock and clear SLEEPERS (the caller wakes them: *old tells).
 * Returns 0 or the illegal-transition code.
 */
static int transition(cc_future *f, uint32_t to, uint32_t flags, uint32_t *old)
{
    bool to_done = to == CC_FUTURE_FINISHED || to == CC_FUTURE_CANCELLED;
    uint32_t s = atomic_load_explicit(&f->state, memory_order_relaxed);
    for (;;) {
        uint32_t from = s & CCI_FUTURE_STATE_MASK;
        if (!legal[from][to])
            return illegal_code(from);
        assert(!cci_future_word_done(s));
        uint32_t keep = (s & (CCI_FUTURE_POOLED | CCI_FUTURE_LISTENERS)) |
                        (to_done ? 0 : s & CCI_FUTURE_SLEEPERS);
        uint32_t next = to | flags | keep;
        /* Release publishes the outcome written before; acquire pairs with
         * a canceller's release when a RUNNING transition races it. */
        if (atomic_compare_exchange_weak_explicit(&f->state, &s, next,
                                                  memory_order_acq_rel,
                                                  memory_order_relaxed)) {
            if (old)
                *old = s;
            return 0;
        }
    }
}

const char *cc_future_state_name(cc_future_state state)
{
    switch (state) {
    case CC_FUTURE_PENDING:
        return "PENDING";
    case CC_FUTURE_RUNNING:
        return "RUNNING";
    case CC_FUTURE_FINISHED:
        return "FINISHED";
    case CC_FUTURE_CANCELLED:
        return "CANCELLED";
    }
    return "UNKNOWN";
}

/* ---- life time ----------------------------------------------------------- */

int cci_future_new_ex(cc_future **out, void *executor, size_t extra_size)
{
    if (!out)
        return -EINVAL;
    if (extra_size > SIZE_MAX - sizeof(struct cc_future))
        return -ENOMEM;
    size_t size = sizeof(struct cc_future) + extra_size;
    uint32_t pooled = 0;
    cc_future *f = NULL;
    if (size <= CCI_BLOCK_SIZE && (f = cci_block_alloc()) != NULL)
        pooled = CCI_FUTURE_POOLED;
    else if (!(f = cci_future_alloc(size)))
        return -ENOMEM;
    memset(f, 0, sizeof *f);
    atomic_init(&f->state, CC_FUTURE_PENDING | pooled);
    atomic_init(&f->lock, 0);
    atomic_init(&f->refs, 1);
    f->executor = executor;
    *out = f;
    return 0;
}

size_t cc_future_trim(void)
{
    return cci_block_trim();
}

int cc_future_new(cc_future **out)
{
    return cci_future_new_ex(out, NULL, 0);
}

cc_future *cc_future_ref(cc_future *f)
{
    if (f)
        atomic_fetch_add_explicit(&f->refs, 1, memory_order_relaxed);
    return f;
}

static void free_callbacks(struct cci_future_callback *cb)
{
    while (cb) {
        struct cci_future_callback *next = cb->next;
        if (cb->owned)
            cci_future_dealloc(cb);
        cb = next;
    }
}

void cc_future_unref(cc_future *f)
{
    if (!f)
        return;
    /* acq_rel: our writes happen before the free (release), and the last
     * owner sees everyone's writes before it destroys (acquire). A release
     * decrement plus an acquire fence would be cheaper on weak machines, but
     * ThreadSanitizer does not see fences and reports the free as a race. */
    /* A holder who sees a count of 1 is the only one left (nobody else
     * can take a reference without holding one), so it may skip the
     * atomic decrement; acquire pairs with the last release below. The
     * usual case: a pool's worker has dropped its reference when the
     * submitter, done with the result, drops the last one. */
    if (atomic_load_explicit(&f->refs, memory_order_acquire) != 1 &&
        atomic_fetch_sub_explicit(&f->refs, 1, memory_order_acq_rel) != 1)
        return;
    assert(f->waiters == NULL);
    uint32_t s = atomic_load_explicit(&f->state, memory_order_relaxed);
    if ((s & CCI_FUTURE_STATE_MASK) == CC_FUTURE_FINISHED && f->error == 0) {
        if (s & CCI_FUTURE_BYTES)
            free(f->u.bytes.data);
        else if (f->u.value.destructor)
            f->u.value.destructor(f->u.value.ptr);
    }
    free(f->message);
    free_callbacks(f->callbacks);
    /* Its name must not pass to the next future at this address, which
     * the block pool hands out again at once. */
    cci_named_object_destroyed(f);
    if (s & CCI_FUTURE_POOLED)
        cci_block_free(f);
    else
        cci_future_dealloc(f);
}

/* ---- asking -------------------------------------------------------------- */

cc_future_state cc_future_get_state(const cc_future *f)
{
    if (!f)
        return CC_FUTURE_PENDING;
    return (cc_future_state)(cci_future_load(f) & CCI_FUTURE_STATE_MASK);
}

bool cc_future_cancelled(const cc_future *f)
{
    return f && cc_future_get_state(f) == CC_FUTURE_CANCELLED;
}

bool cc_future_running(const cc_future *f)
{
    return f && cc_future_get_state(f) == CC_FUTURE_RUNNING;
}

bool cc_future_done(const cc_future *f)
{
    return f && cci_future_word_done(cci_future_load(f));
}

/* ---- completion ---------------------------------------------------------- */

static void report_callback_failure(cc_future *f, int rc)
{
    /* Best effort, like Python's logging: nothing to do if stderr fails. */
    (void)fprintf(
        stderr,
        "concur: exception calling callback for <Future at %p state=%s>: "
        "callback returned %d (%s)\n",
        (void *)f, cc_future_state_name(cc_future_get_state(f)), rc,
        cc_strerror(rc));
}

static void run_callback(cc_future *f, struct cci_future_callback *cb)
{
    cc_future_callback fn = cb->fn;
    void *ctx = cb->ctx;
    /* An embedded record may be reused by its owner as soon as its callback
     * starts, so read it first; only our own records are freed here. */
    if (cb->owned)
        cci_future_dealloc(cb);
    int rc = fn(f, ctx);
    if (rc < 0)
        report_callback_failure(f, rc);
}

/* The list is newest first; run oldest first, as registered. */
static void run_callbacks(cc_future *f, struct cci_future_callback *list)
{
    struct cci_future_callback *ordered = NULL;
    while (list) {
        struct cci_future_callback *next = list->next;
        list->next = ordered;
        ordered = list;
        list = next;
    }
    while (ordered) {
        struct cci_future_callback *next = ordered->next;
        run_callback(f, ordered);
        ordered = next;
    }
}

/* Under f->lock: hands every registered waiter its notification. */
static void fire_waiters(cc_future *f, bool failed)
{
    struct cci_future_waiter *w = f->waiters;
    f->waiters = NULL;
    while (w) {
        struct cci_future_waiter *next = w->next;
        struct cci_future_group *g = w->group;
        w->linked = false;
        w->prev = w->next = NULL;
        if (failed)
            atomic_store_explicit(&g->failed, true, memory_order_relaxed);
        struct cci_future_waiter *top =
            atomic_load_explicit(&g->fired, memory_order_relaxed);
        do {
            w->fired_next = top;
        } while (!atomic_compare_exchange_weak_explicit(
            &g->fired, &top, w, memory_order_release, memory_order_relaxed));
        /* The RMW on the word orders against the owner's CAS that sets
         * SLEEPING: either it sees our count change before sleeping, or we
         * see SLEEPING and wake it. Release publishes failed and fired. */
        uint32_t old = atomic_fetch_add_explicit(
            &g->word, CCI_FUTURE_GROUP_FIRED, memory_order_acq_rel);
        if (old & CCI_FUTURE_GROUP_SLEEPING)
            cci_futex_wake(cci_futex_word(&g->word), 1, false);
        w = next;
    }
}

/*
 * Finishes or cancels f. write_outcome (if not NULL) stores the outcome
 * under the lock once the transition is known to be legal; it runs before the
 * state is published. Returns 0 or the illegal-transition code.
 */
struct outcome {
    int error;
    char *message;
    void *ptr;
    void (*destructor)(void *);
    void *data;
    size_t len;
    uint32_t flags;
};

/* Sets LISTENERS (under f->lock), returning the state word before: a
 * lock-free finish that has not published yet then fails its CAS and takes
 * the lock. The RMW orders against that CAS. */
static uint32_t set_listeners(cc_future *f)
{
    return atomic_fetch_or_explicit(&f->state, CCI_FUTURE_LISTENERS,
                                    memory_order_acq_rel);
}

/* Under f->lock, before a thread other than f's runner writes an outcome
 * into a future that has an executor: sets LISTENERS, so that a runner
 * that starts f from now on finishes it under the lock; returns false if a
 * runner owns f already (it may be writing its result this very moment,
 * without the lock). See OWNED in future_internal.h. */
static bool claim_from_runner(cc_future *f)
{
    uint32_t old = set_listeners(f);
    return (old & (CCI_FUTURE_STATE_MASK | CCI_FUTURE_OWNED)) !=
           (CC_FUTURE_RUNNING | CCI_FUTURE_OWNED);
}

/* owner: the caller is the runner that started f with
 * cci_future_start_owned. */
static int complete(cc_future *f, uint32_t to, const struct outcome *o,
                    bool owner)
{
    future_lock(f);
    if (o && !owner && f->executor && !claim_from_runner(f)) {
        future_unlock(f);
        return -EALREADY;
    }
    /* Only PENDING -> RUNNING can happen outside the lock (a lock-free
     * finish cannot, past the claim above), and both allow FINISHED, so
     * the outcome may be written before the CAS. */
    int rc = transition_check(f, to);
    if (rc < 0) {
        future_unlock(f);
        return rc;
    }
    if (o) {
        f->error = o->error;
        f->message = o->message;
        if (o->flags & CCI_FUTURE_BYTES) {
            f->u.bytes.data = o->data;
            f->u.bytes.len = o->len;
        } else {
            f->u.value.ptr = o->ptr;
            f->u.value.destructor = o->destructor;
        }
    }
    uint32_t old = 0;
    rc = transition(f, to, o ? o->flags : 0, &old);
    if (rc < 0) {
        /* Only a cancel can lose here, to a lock-free PENDING -> RUNNING;
         * it wrote no outcome. */
        assert(o == NULL);
        future_unlock(f);
        return rc;
    }
    struct cci_future_callback *callbacks = f->callbacks;
    f->callbacks = NULL;
    if (f->waiters)
        fire_waiters(f, o && o->error != 0);
    future_unlock(f);
    /* Waiters first, then callbacks, as Python does. The caller's reference
     * keeps f alive across the wake. */
    if (old & CCI_FUTURE_SLEEPERS)
        cci_futex_wake(cci_futex_word(&f->state), INT_MAX, false);
    if (callbacks)
        run_callbacks(f, callbacks);
    return 0;
}

bool cc_future_cancel(cc_future *f)
{
    if (!f)
        return false;
    uint32_t st = cci_future_load(f) & CCI_FUTURE_STATE_MASK;
    if (st == CC_FUTURE_CANCELLED)
        return true;
    if (st != CC_FUTURE_PENDING)
        return false;
    int rc = complete(f, CC_FUTURE_CANCELLED, NULL, false);
    /* Lost a race: to another cancel (true) or to the producer (false). */
    return rc == 0 || rc == -ECANCELED;
}

int cc_future_set_running_or_notify_cancel(cc_future *f)
{
    if (!f)
        return -EINVAL;
    return transition(f, CC_FUTURE_RUNNING, 0, NULL);
}

int cci_future_start_owned(cc_future *f)
{
    assert(f->executor != NULL); /* others' completions claim by it */
    return transition(f, CC_FUTURE_RUNNING, CCI_FUTURE_OWNED, NULL);
}

int cc_future_set_result(cc_future *f, void *value,
                         void (*destructor)(void *value))
{
    if (!f)
        return -EINVAL;
    struct outcome o = {.ptr = value, .destructor = destructor};
    return complete(f, CC_FUTURE_FINISHED, &o, false);
}

int cc_future_set_result_bytes_owned(cc_future *f, void *data, size_t len)
{
    if (!f || (!data && len > 0))
        return -EINVAL;
    struct outcome o = {.data = data, .len = len, .flags = CCI_FUTURE_BYTES};
    return complete(f, CC_FUTURE_FINISHED, &o, false);
}

int cc_future_set_result_bytes(cc_future *f, const void *data, size_t len)
{
    if (!f || (!data && len > 0))
        return -EINVAL;
    /* Refuse before copying, so a late producer does not pay for a copy. */
    int rc = transition_check(f, CC_FUTURE_FINISHED);
    if (rc < 0)
        return rc;
    void *copy = NULL;
    if (len > 0) {
        copy = malloc(len);
        if (!copy)
            return -ENOMEM;
        memcpy(copy, data, len);
    }
    rc = cc_future_set_result_bytes_owned(f, copy, len);
    if (rc < 0)
        free(copy);
    return rc;
}

static int set_error_message(cc_future *f, int error, char *message,
                             bool owner)
{
    struct outcome o = {.error = error, .message = message};
    int rc = complete(f, CC_FUTURE_FINISHED, &o, owner);
    if (rc < 0)
        free(message);
    return rc;
}

static char *format_message(const char *fmt, va_list ap)
{
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    if (n < 0)
        return NULL;
    char *msg = malloc((size_t)n + 1);
    if (msg)
        (void)vsnprintf(msg, (size_t)n + 1, fmt, ap);
    return msg;
}

int cc_future_set_error(cc_future *f, int error, const char *fmt, ...)
{
    if (!f || error >= 0)
        return -EINVAL;
    int rc = transition_check(f, CC_FUTURE_FINISHED);
    if (rc < 0)
        return rc;
    char *message = NULL;
    if (fmt) {
        va_list ap;
        va_start(ap, fmt);
        message = format_message(fmt, ap);
        va_end(ap);
        if (!message)
            return -ENOMEM;
    }
    return set_error_message(f, error, message, false);
}

/* cci_future_finish, by f's owning runner (owner) or anyone else. */
static int finish(cc_future *f, int status, void *value,
                  void (*destructor)(void *), const char *message, bool owner)
{
    if (status >= 0) {
        struct outcome o = {.ptr = value, .destructor = destructor};
        return complete(f, CC_FUTURE_FINISHED, &o, owner);
    }
    char *copy = message ? strdup(message) : NULL;
    return set_error_message(f, status, copy, owner);
}

int cci_future_finish_owned(cc_future *f, int status, void *value,
                            const char *message)
{
    uint32_t s = atomic_load_explicit(&f->state, memory_order_relaxed);
    const uint32_t owned = CC_FUTURE_RUNNING | CCI_FUTURE_OWNED;
    /* LISTENERS already: a listener or another completer came before we
     * started, so the outcome must be written under the lock. */
    if (status < 0 || message ||
        (s & (CCI_FUTURE_STATE_MASK | CCI_FUTURE_OWNED |
              CCI_FUTURE_LISTENERS)) != owned)
        return finish(f, status, value, NULL, message,
                      (s & CCI_FUTURE_OWNED) != 0);
    /* Nobody reads the outcome before the state says done, and only this
     * thread completes f (OWNED): write it, then publish with release.
     * error, message and destructor are still zero from creation. */
    f->u.value.ptr = value;
    for (;;) {
        if (s & CCI_FUTURE_LISTENERS)
            return finish(f, status, value, NULL, message, true);
        uint32_t next = CC_FUTURE_FINISHED | (s & CCI_FUTURE_POOLED);
        if (atomic_compare_exchange_weak_explicit(&f->state, &s, next,
                                                  memory_order_release,
                                                  memory_order_relaxed))
            break;
        /* A waiter set SLEEPERS, or an adder or a would-be completer
         * LISTENERS: look again. */
    }
    if (s & CCI_FUTURE_SLEEPERS)
        cci_futex_wake(cci_futex_word(&f->state), INT_MAX, false);
    return 0;
}

int cci_future_finish(cc_future *f, int status, void *value,
                      void (*destructor)(void *), const char *message)
{
    if (!f)
        return -EINVAL;
    return finish(f, status, value, destructor, message, false);
}

/* ---- waiting on one ------------------------------------------------------ */

static _Atomic unsigned spin_limit_cache; /* 0: not computed yet */

unsigned cci_future_spin_limit(void)
{
    /* Computed once: sysconf reads /sys. The value is the same for every
     * thread, so a race only computes it twice. Stored +1 so 0 means unset. */
    unsigned v = atomic_load_explicit(&spin_limit_cache, memory_order_relaxed);
    if (v == 0) {
        v = (cci_cpu_count() > 1 ? 100u : 0u) + 1;
        atomic_store_explicit(&spin_limit_cache, v, memory_order_relaxed);
    }
    return v - 1;
}

int cci_future_wait_until(cc_future *f, int64_t deadline)
{
    if (cc_future_done(f))
        return 0;
    if (deadline == 0)
        return -ETIMEDOUT;
    for (unsigned i = cci_future_spin_limit(); i > 0; i--) {
        cci_cpu_relax();
        if (cc_future_done(f))
            return 0;
    }
    if (deadline != CCI_NO_DEADLINE && cci_now_ns() >= deadline)
        return -ETIMEDOUT;
    int rc = 0;
    cci_block_token token = cci_block_begin(CC_WAIT_FUTURE, f);
    for (;;) {
        uint32_t s = cci_future_load(f);
        if (cci_future_word_done(s))
            break;
        if (!(s & CCI_FUTURE_SLEEPERS)) {
            /* Tell the completer to wake us; a failed CAS means the state
             * moved, so look again. */
            if (!atomic_compare_exchange_weak_explicit(
                    &f->state, &s, s | CCI_FUTURE_SLEEPERS,
                    memory_order_relaxed, memory_order_relaxed))
                continue;
            s |= CCI_FUTURE_SLEEPERS;
        }
        if (cci_futex_wait(cci_futex_word(&f->state), s, deadline, false) ==
            -ETIMEDOUT) {
            rc = cc_future_done(f) ? 0 : -ETIMEDOUT;
            break;
        }
    }
    cci_block_end(token);
    return rc;
}

int cc_future_wait(cc_future *f, cc_duration timeout)
{
    if (!f || !cci_duration_valid(timeout))
        return -EINVAL;
    return cci_future_wait_until(f, cci_deadline_after(timeout));
}

/* Waits, then maps the outcome to the consumer's return code. */
static int wait_outcome(cc_future *f, cc_duration timeout, uint32_t *state)
{
    if (!f || !cci_duration_valid(timeout))
        return -EINVAL;
    int rc = cci_future_wait_until(f, cci_deadline_after(timeout));
    if (rc < 0)
        return rc;
    uint32_t s = cci_future_load(f);
    *state = s;
    if ((s & CCI_FUTURE_STATE_MASK) == CC_FUTURE_CANCELLED)
        return -ECANCELED;
    return f->error;
}

int cc_future_result(cc_future *f, cc_duration timeout, void **value)
{
    uint32_t s = 0;
    int rc = wait_outcome(f, timeout, &s);
    if (rc < 0)
        return rc;
    if (s & CCI_FUTURE_BYTES)
        return -EINVAL;
    if (value)
        *value = f->u.value.ptr;
    return 0;
}

int cc_future_result_bytes(cc_future *f, cc_duration timeout, const void **data,
                           size_t *len)
{
    uint32_t s = 0;
    int rc = wait_outcome(f, timeout, &s);
    if (rc < 0)
        return rc;
    if (!(s & CCI_FUTURE_BYTES))
        return -EINVAL;
    if (data)
        *data = f->u.bytes.data;
    if (len)
        *len = f->u.bytes.len;
    return 0;
}

int cc_future_error(cc_future *f, cc_duration timeout)
{
    uint32_t s = 0;
    return wait_outcome(f, timeout, &s);
}

const char *cc_future_error_message(const cc_future *f)
{
    if (!f || !cci_future_word_done(cci_future_load(f)))
        return NULL;
    return f->message;
}

/* ---- callbacks ----------------------------------------------------------- */

/* Under f->lock, before linking a callback or waiter, so that the finish
 * finds the node. Returns false if f is done by now (the node must not be
 * linked: nobody would fire it). */
static bool mark_listeners(cc_future *f)
{
    return !cci_future_word_done(set_listeners(f));
}

static int add_callback(cc_future *f, struct cci_future_callback *node)
{
    if (!cc_future_done(f)) {
        future_lock(f);
        /* Re-checked under the lock: completion detaches the list under it,
         * so the node is either in the detached list or runs below. */
        if (mark_listeners(f)) {
            node->next = f->callbacks;
            f->callbacks = node;
            future_unlock(f);
            return 0;
        }
        future_unlock(f);
    }
    run_callback(f, node);
    return 0;
}

int cci_future_add_callback_node(cc_future *f, struct cci_future_callback *node)
{
    if (!f || !node || !node->fn)
        return -EINVAL;
    node->owned = false;
    return add_callback(f, node);
}

bool cci_future_remove_callback_node(cc_future *f,
                                     struct cci_future_callback *node)
{
    if (!f || !node)
        return false;
    bool removed = false;
    future_lock(f);
    for (struct cci_future_callback **p = &f->callbacks; *p; p = &(*p)->next) {
        if (*p == node) {
            *p = node->next;
            removed = true;
            break;
        }
    }
    future_unlock(f);
    return removed;
}

int cc_future_add_done_callback(cc_future *f, cc_future_callback fn, void *ctx)
{
    if (!f || !fn)
        return -EINVAL;
    if (cc_future_done(f)) {
        int rc = fn(f, ctx);
        if (rc < 0)
            report_callback_failure(f, rc);
        return 0;
    }
    struct cci_future_callback *node = cci_future_alloc(sizeof *node);
    if (!node)
        return -ENOMEM;
    node->next = NULL;
    node->fn = fn;
    node->ctx = ctx;
    node->owned = true;
    return add_callback(f, node);
}

/* ---- waiter registration ------------------------------------------------- */

bool cci_future_register_waiter(cc_future *f, struct cci_future_waiter *w)
{
    w->registered = false;
    w->linked = false;
    w->prev = w->next = NULL;
    if (cc_future_done(f))
        return false;
    future_lock(f);
    if (!mark_listeners(f)) {
        future_unlock(f);
        return false;
    }
    w->next = f->waiters;
    if (f->waiters)
        f->waiters->prev = w;
    f->waiters = w;
    w->linked = true;
    w->registered = true;
    future_unlock(f);
    return true;
}

void cci_future_unregister_waiter(cc_future *f, struct cci_future_waiter *w)
{
    if (!w->registered)
        return;
    /* Taken even when w has fired: the completer may still be touching the
     * group under this lock. */
    future_lock(f);
    if (w->linked) {
        if (w->prev)
            w->prev->next = w->next;
        else
            f->waiters = w->next;
        if (w->next)
            w->next->prev = w->prev;
        w->linked = false;
    }
    w->registered = false;
    future_unlock(f);
}
