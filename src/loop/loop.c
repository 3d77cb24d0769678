/*
 * The loop core: handles, the ready list, the timer heap, the threadsafe
 * queue, wakers, running and closing. fd watchers and signals are in io.c,
 * the executor and child bridges in bridge.c, tasks in task.c.
 */
#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "concur/error.h"
#include "future/block_pool.h"
#include "loop/loop_internal.h"
#include "platform/platform.h"
#include "thread/blocking.h"
#include "time/deadline.h"
#include "trace/trace_internal.h"

#define DEFAULT_STACK_SIZE ((size_t)256 * 1024)
#define DEFAULT_STACK_CACHE 64
#define EVENT_BATCH 64
#define SPIN_NS 30000

static __thread cc_loop *tls_running;

cc_loop *cci_loop_running(void)
{
    return tls_running;
}

cc_loop *cc_loop_current(void)
{
    return tls_running;
}

int cci_loop_check_thread(const cc_loop *loop)
{
    /* Relaxed: only the running thread writes its own id, so a thread
     * that reads a stale value reads 0 or another thread's id, and either
     * is a correct answer for it. */
    uint32_t t = atomic_load_explicit(&((cc_loop *)loop)->running_tid,
                                      memory_order_relaxed);
    return t == 0 || t == cci_gettid() ? 0 : -EPERM;
}

int cci_loop_check_open(const cc_loop *loop)
{
    int st =
        atomic_load_explicit(&((cc_loop *)loop)->state, memory_order_acquire);
    return st == CCI_LOOP_CLOSED ? CC_ESHUTDOWN : 0;
}

/* Checks every public scheduling call shares. */
static int check_use(const cc_loop *loop)
{
    int rc = cci_loop_check_thread(loop);
    return rc < 0 ? rc : cci_loop_check_open(loop);
}

int64_t cc_loop_time(const cc_loop *loop)
{
    (void)loop;
    return cci_now_ns();
}

bool cc_loop_is_running(const cc_loop *loop)
{
    return loop && atomic_load_explicit(&((cc_loop *)loop)->running_tid,
                                        memory_order_relaxed) != 0;
}

bool cc_loop_is_closed(const cc_loop *loop)
{
    return loop && cci_loop_check_open(loop) < 0;
}

/* ---- handles ------------------------------------------------------------- */

void cci_handle_init_embedded(cc_handle *h, cc_loop *loop, cc_loop_fn fn,
                              void *ctx)
{
    memset(h, 0, sizeof *h);
    atomic_init(&h->remote_next, NULL);
    h->loop = loop;
    h->fn = fn;
    h->ctx = ctx;
    h->heap_index = UINT32_MAX;
    h->state = CCI_H_IDLE;
    h->flags = CCI_HANDLE_EMBEDDED;
}

_Static_assert(sizeof(cc_handle) <= CCI_BLOCK_SIZE,
               "a handle fits a pool block");

static cc_handle *handle_new(cc_loop *loop, cc_loop_fn fn, void *ctx)
{
    uint8_t flags = CCI_HANDLE_POOLED;
    cc_handle *h = cci_block_alloc();
    if (!h) {
        flags = 0;
        if (!(h = malloc(sizeof *h)))
            return NULL;
    }
    cci_handle_init_embedded(h, loop, fn, ctx);
    h->flags = flags;
    h->refs = 1; /* the loop's, while scheduled */
    return h;
}

static void handle_dealloc(cc_handle *h)
{
    if (h->flags & CCI_HANDLE_POOLED)
        cci_block_free(h);
    else
        free(h);
}

static void handle_release(cc_handle *h)
{
    if (h->flags & CCI_HANDLE_EMBEDDED)
        return;
    assert(h->refs > 0);
    if (--h->refs == 0)
        handle_dealloc(h);
}

void cc_handle_unref(cc_handle *h)
{
    if (h)
        handle_release(h);
}

void cci_loop_ready(cc_loop *loop, cc_handle *h)
{
    if (h->state == CCI_H_READY)
        return;
    h->state = CCI_H_READY;
    if (h->queued)
        return; /* cancelled while linked: runs at its old position */
    h->queued = true;
    h->next = NULL;
    if (loop->ready_tail)
        loop->ready_tail->next = h;
    else
        loop->ready_head = h;
    loop->ready_tail = h;
}

void cci_loop_free_after(cc_loop *loop, cc_handle *h, void *obj,
                         cc_loop_fn free_fn)
{
    if (!h->queued) {
        free_fn(loop, obj);
        return;
    }
    /* Linked and not reached yet: the handle itself carries the free, and
     * the loop touches nothing of it after calling (see run_ready). */
    h->fn = free_fn;
    h->ctx = obj;
    h->flags |= CCI_HANDLE_RUN_AT_CLOSE;
    h->state = CCI_H_READY;
}

/* ---- the timer heap ---------------------------------------------------------
 * A binary min-heap on (when, seq); every handle knows its index, so a
 * cancel removes it in O(log n) instead of leaving a dead entry behind as
 * asyncio does. */

static bool timer_before(const cc_handle *a, const cc_handle *b)
{
    return a->when < b->when || (a->when == b->when && a->seq < b->seq);
}

static void heap_place(cc_loop *loop, uint32_t i, cc_handle *h)
{
    loop->heap[i] = h;
    h->heap_index = i;
}

static void sift_up(cc_loop *loop, uint32_t i, cc_handle *h)
{
    while (i > 0) {
        uint32_t parent = (i - 1) / 2;
        if (!timer_before(h, loop->heap[parent]))
            break;
        heap_place(loop, i, loop->heap[parent]);
        i = parent;
    }
    heap_place(loop, i, h);
}

static void sift_down(cc_loop *loop, uint32_t i, cc_handle *h)
{
    uint32_t n = loop->heap_len;
    for (;;) {
        uint32_t c = 2 * i + 1;
        if (c >= n)
            break;
        if (c + 1 < n && timer_before(loop->heap[c + 1], loop->heap[c]))
            c++;
        if (!timer_before(loop->heap[c], h))
            break;
        heap_place(loop, i, loop->heap[c]);
        i = c;
    }
    heap_place(loop, i, h);
}

int cci_loop_timer_add(cc_loop *loop, cc_handle *h, int64_t when)
{
    if (loop->heap_len == loop->heap_cap) {
        uint32_t cap = loop->heap_cap ? loop->heap_cap * 2 : 64;
        cc_handle **heap = realloc(loop->heap, cap * sizeof *heap);
        if (!heap)
            return -ENOMEM;
        loop->heap = heap;
        loop->heap_cap = cap;
    }
    h->when = when;
    h->seq = loop->timer_seq++;
    h->state = CCI_H_TIMER;
    uint32_t i = loop->heap_len;
    /* Atomic (relaxed) for the dump, which reads the count. */
    __atomic_store_n(&loop->heap_len, i + 1, __ATOMIC_RELAXED);
    sift_up(loop, i, h);
    return 0;
}

bool cci_loop_timer_remove(cc_loop *loop, cc_handle *h)
{
    if (h->state != CCI_H_TIMER)
        return false;
    uint32_t i = h->heap_index;
    assert(i < loop->heap_len && loop->heap[i] == h);
    uint32_t n = loop->heap_len - 1;
    __atomic_store_n(&loop->heap_len, n, __ATOMIC_RELAXED); /* the dump */
    cc_handle *last = loop->heap[n];
    if (last != h) {
        /* The moved element may belong above or below its new place. */
        if (i > 0 && timer_before(last, loop->heap[(i - 1) / 2]))
            sift_up(loop, i, last);
        else
            sift_down(loop, i, last);
    }
    h->heap_index = UINT32_MAX;
    h->state = CCI_H_IDLE;
    return true;
}

static cc_handle *heap_pop(cc_loop *loop)
{
    cc_handle *h = loop->heap[0];
    cci_loop_timer_remove(loop, h);
    return h;
}

/* ---- the threadsafe queue ------------------------------------------------ */

static void mpsc_init(struct cci_mpsc *q)
{
    atomic_init(&q->stub.remote_next, NULL);
    atomic_init(&q->head, &q->stub);
    q->tail = &q->stub;
}

static void mpsc_push(struct cci_mpsc *q, cc_handle *h)
{
    atomic_store_explicit(&h->remote_next, NULL, memory_order_relaxed);
    /* seq_cst: the wake-up protocol (push_remote) needs this exchange and
     * the loop's reset of `notified` in one total order. */
    cc_handle *prev =
        atomic_exchange_explicit(&q->head, h, memory_order_seq_cst);
    /* Release publishes h's fields to the consumer that follows the link. */
    atomic_store_explicit(&prev->remote_next, h, memory_order_release);
}

/* Returns the next handle or NULL; *in_transit is set when the queue is
 * not empty but a producer has not linked its node yet. */
static cc_handle *mpsc_pop(struct cci_mpsc *q, bool *in_transit)
{
    cc_handle *tail = q->tail;
    cc_handle *next =
        atomic_load_explicit(&tail->remote_next, memory_order_acquire);
    if (tail == &q->stub) {
        if (!next) {
            if (atomic_load_explicit(&q->head, memory_order_seq_cst) !=
                &q->stub)
                *in_transit = true;
            return NULL;
        }
        q->tail = next;
        tail = next;
        next = atomic_load_explicit(&next->remote_next, memory_order_acquire);
    }
    if (next) {
        q->tail = next;
        return tail;
    }
    if (atomic_load_explicit(&q->head, memory_order_seq_cst) != tail) {
        *in_transit = true;
        return NULL;
    }
    /* tail is the last node: park the stub behind it so tail can go. */
    mpsc_push(q, &q->stub);
    next = atomic_load_explicit(&tail->remote_next, memory_order_acquire);
    if (next) {
        q->tail = next;
        return tail;
    }
    *in_transit = true;
    return NULL;
}

void cci_loop_push_remote(cc_loop *loop, cc_handle *h)
{
    h->state = CCI_H_REMOTE;
    mpsc_push(&loop->remote, h);
    /*
     * Wake-up protocol: the loop resets `notified` to 0 (an exchange) and
     * only then drains the queue. All of these are seq_cst, so either our
     * load/exchange comes after its reset and we see 0 and write the
     * eventfd, or it comes before, and then so does our push, which the
     * drain that follows the reset will see (or find in transit). The plain
     * load first keeps a burst of producers from bouncing the cache line
     * with exchanges: only the first one after a drain writes.
     */
    if (atomic_load_explicit(&loop->notified, memory_order_seq_cst) == 0 &&
        atomic_exchange_explicit(&loop->notified, 1, memory_order_seq_cst) == 0)
        cci_poller_wake(loop->poller);
}

/* Moves everything pushed so far to the ready list. Loop thread. */
static void drain_remote(cc_loop *loop)
{
    if (!loop->remote_in_transit &&
        atomic_load_explicit(&loop->notified, memory_order_seq_cst) == 0)
        return; /* nothing pushed since the last drain (see above) */
    atomic_exchange_explicit(&loop->notified, 0, memory_order_seq_cst);
    bool transit = false;
    cc_handle *h;
    while ((h = mpsc_pop(&loop->remote, &transit)) != NULL) {
        h->state = CCI_H_IDLE;
        cci_loop_ready(loop, h);
    }
    loop->remote_in_transit = transit;
}

int cc_loop_call_soon_threadsafe(cc_loop *loop, cc_loop_fn fn, void *ctx)
{
    if (!loop || !fn)
        return -EINVAL;
    int rc = cci_loop_check_open(loop);
    if (rc < 0)
        return rc;
    cc_handle *h = handle_new(loop, fn, ctx);
    if (!h)
        return -ENOMEM;
    cci_loop_push_remote(loop, h);
    return 0;
}

/* ---- wakers -------------------------------------------------------------- */

static void waker_run(cc_loop *loop, void *ctx)
{
    cci_waker *w = ctx;
    if (!w->armed)
        return;
    w->armed = false;
    if (w->prev)
        w->prev->next = w->next;
    else
        loop->wakers = w->next;
    if (w->next)
        w->next->prev = w->prev;
    w->fn(w, true);
}

/* The future's callback: any thread, possibly before the arming call has
 * returned (the future was already done). */
static int waker_fired(cc_future *f, void *ctx)
{
    (void)f;
    cci_waker *w = ctx;
    cc_loop *loop = w->loop;
    if (tls_running == loop) {
        cci_loop_ready(loop, &w->handle);
        atomic_fetch_sub_explicit(&loop->remote_refs, 1, memory_order_release);
        return 0;
    }
    cci_loop_push_remote(loop, &w->handle);
    /* Our last touch of the loop: cc_loop_close waits for the count to
     * drop (acquire) before it can free anything. w is the loop's now. */
    atomic_fetch_sub_explicit(&loop->remote_refs, 1, memory_order_release);
    return 0;
}

void cci_waker_arm(cc_loop *loop, cci_waker *w, cc_future *f,
                   void (*fn)(cci_waker *w, bool fired))
{
    cci_handle_init_embedded(&w->handle, loop, waker_run, w);
    w->handle.flags |= CCI_HANDLE_RUN_AT_CLOSE;
    w->loop = loop;
    w->future = f;
    w->fn = fn;
    w->armed = true;
    w->registered = true;
    w->prev = NULL;
    w->next = loop->wakers;
    if (loop->wakers)
        loop->wakers->prev = w;
    loop->wakers = w;
    w->node.fn = waker_fired;
    w->node.ctx = w;
    atomic_fetch_add_explicit(&loop->remote_refs, 1, memory_order_relaxed);
    /* Cannot fail: f, node and fn are valid. */
    (void)cci_future_add_callback_node(f, &w->node);
}

static void waker_unlink(cci_waker *w)
{
    cc_loop *loop = w->loop;
    w->armed = false;
    if (w->prev)
        w->prev->next = w->next;
    else
        loop->wakers = w->next;
    if (w->next)
        w->next->prev = w->prev;
}

bool cci_waker_disarm(cci_waker *w)
{
    if (!w->armed)
        return true;
    if (w->registered && cci_future_remove_callback_node(w->future, &w->node)) {
        w->registered = false;
        waker_unlink(w);
        atomic_fetch_sub_explicit(&w->loop->remote_refs, 1,
                                  memory_order_relaxed);
        return true;
    }
    return false;
}

/* ---- life time ----------------------------------------------------------- */

int cc_loop_new(cc_loop **out, const cc_loop_options *opts)
{
    if (!out)
        return -EINVAL;
    cc_loop *loop = calloc(1, sizeof *loop);
    if (!loop)
        return -ENOMEM;
    int rc = cci_poller_new(&loop->poller);
    if (rc < 0) {
        free(loop);
        return rc;
    }
    loop->creator_tid = cci_gettid();
    mpsc_init(&loop->remote);
    atomic_init(&loop->notified, 0);
    atomic_init(&loop->remote_refs, 0);
    atomic_init(&loop->running_tid, 0);
    atomic_init(&loop->state, CCI_LOOP_OPEN);
    loop->sigpipe[0] = loop->sigpipe[1] = -1;
    loop->stack_size =
        opts && opts->stack_size ? opts->stack_size : DEFAULT_STACK_SIZE;
    loop->stack_cache_max =
        opts && opts->stack_cache ? opts->stack_cache : DEFAULT_STACK_CACHE;
    loop->executor = opts ? opts->executor : NULL;
    cci_loop_list(loop);
    *out = loop;
    return 0;
}

/* ---- running ------------------------------------------------------------- */

static int run_begin(cc_loop *loop)
{
    if (tls_running)
        return -EBUSY;
    uint32_t expected = 0;
    if (!atomic_compare_exchange_strong_explicit(
            &loop->running_tid, &expected, cci_gettid(), memory_order_acquire,
            memory_order_relaxed))
        return -EBUSY;
    tls_running = loop;
    return 0;
}

static void run_end(cc_loop *loop)
{
    tls_running = NULL;
    atomic_store_explicit(&loop->running_tid, 0, memory_order_release);
}

/* Runs the callbacks that were ready when it began, no more. */
static void run_ready(cc_loop *loop)
{
    cc_handle *h = loop->ready_head;
    loop->ready_head = loop->ready_tail = NULL;
    while (h) {
        cc_handle *next = h->next;
        /* An embedded handle's owner may free it in its own callback:
         * nothing of h is touched after the call but what the loop owns. */
        bool embedded = h->flags & CCI_HANDLE_EMBEDDED;
        h->queued = false;
        h->next = NULL;
        if (h->state == CCI_H_READY) {
            h->state = embedded ? CCI_H_IDLE : CCI_H_DONE;
            h->fn(loop, h->ctx);
        } else if (h->state == CCI_H_CANCELLED && embedded) {
            h->state = CCI_H_IDLE;
        }
        if (!embedded)
            handle_release(h);
        h = next;
    }
}

static int64_t poll_timeout(cc_loop *loop)
{
    if (loop->ready_head || loop->stopping || loop->remote_in_transit)
        return 0;
    if (loop->heap_len == 0)
        return -1;
    int64_t d = loop->heap[0]->when - cci_now_ns();
    return d > 0 ? d : 0;
}

static void run_timers(cc_loop *loop)
{
    if (loop->heap_len == 0)
        return;
    int64_t now = cci_now_ns();
    while (loop->heap_len > 0 && loop->heap[0]->when <= now) {
        cc_handle *h = heap_pop(loop);
        cci_loop_ready(loop, h);
    }
}

/* Waits for events (or just looks) and queues what they make ready. */
/*
 * Polls without sleeping for up to limit ns. Returns true when it found
 * events (*n > 0) or a threadsafe wake-up, which the poller consumes
 * without reporting an event, so the queue's flag is what tells.
 */
static bool spin_poll(cc_loop *loop, cci_poll_event *ev, int64_t limit,
                      int64_t *spun, int *n)
{
    int64_t start = cci_now_ns();
    *spun = 0;
    while (*spun < limit) {
        *n = cci_poller_wait(loop->poller, ev, EVENT_BATCH, 0);
        if (*n != 0 ||
            atomic_load_explicit(&loop->notified, memory_order_relaxed))
            return true;
        *spun = cci_now_ns() - start;
    }
    return false;
}

static int poll_events(cc_loop *loop, int64_t timeout)
{
    cci_poll_event ev[EVENT_BATCH];
    int n = 0;
    /* Spin before sleeping, but only right after I/O: a peer that answers
     * within microseconds (a request/response exchange) is caught without
     * paying the 60-70 us it costs to wake a thread on an idle virtual CPU,
     * while an idle loop goes to sleep at once. */
    bool found = false;
    if (timeout != 0 && loop->io_active) {
        int64_t spun;
        int64_t limit = timeout > 0 && timeout < SPIN_NS ? timeout : SPIN_NS;
        found = spin_poll(loop, ev, limit, &spun, &n);
        if (!found && timeout > 0)
            timeout = timeout > spun ? timeout - spun : 1;
    }
    if (found) {
        /* n events (maybe 0 after a wake-up) */
    } else if (timeout != 0) {
        cci_block_token token = cci_block_begin(CC_WAIT_IO, loop);
        n = cci_poller_wait(loop->poller, ev, EVENT_BATCH, timeout);
        cci_block_end(token);
    } else {
        n = cci_poller_wait(loop->poller, ev, EVENT_BATCH, 0);
    }
    if (n == -EINTR)
        return 0;
    if (n < 0)
        return n;
    loop->io_active = n > 0;
    for (int i = 0; i < n; i++) {
        struct cci_io *io = ev[i].data;
        io->on_event(loop, io, ev[i].events);
    }
    return 0;
}

/* One iteration, asyncio's _run_once: poll, collect what is ready (fd
 * events, threadsafe calls, due timers), run exactly that. */
static int run_once(cc_loop *loop)
{
    int rc = poll_events(loop, poll_timeout(loop));
    if (rc < 0)
        return rc;
    drain_remote(loop);
    run_timers(loop);
    run_ready(loop);
    return 0;
}

int cc_loop_run_forever(cc_loop *loop)
{
    if (!loop)
        return -EINVAL;
    int rc = cci_loop_check_open(loop);
    if (rc < 0)
        return rc;
    rc = run_begin(loop);
    if (rc < 0)
        return rc;
    do {
        rc = run_once(loop);
    } while (rc == 0 && !loop->stopping);
    loop->stopping = false;
    run_end(loop);
    return rc;
}

int cc_loop_stop(cc_loop *loop)
{
    if (!loop)
        return -EINVAL;
    int rc = cci_loop_check_thread(loop);
    if (rc < 0)
        return rc;
    loop->stopping = true;
    return 0;
}

/* run_until_complete's waker lives on the heap: when the loop is stopped
 * before the future is done, the completion may be in flight as we leave,
 * and the record must outlive us (it then frees itself). */
struct until_done {
    cci_waker w;
    bool orphan;
};

static void until_done_fired(cci_waker *w, bool fired)
{
    struct until_done *u = (struct until_done *)w;
    if (u->orphan || !fired) {
        free(u);
        return;
    }
    w->loop->stopping = true;
}

static int outcome_of(cc_future *f)
{
    return cc_future_error(f, CC_NOWAIT);
}

int cc_loop_run_until_complete(cc_loop *loop, cc_future *f)
{
    if (!loop || !f)
        return -EINVAL;
    int rc = cci_loop_check_open(loop);
    if (rc < 0)
        return rc;
    if (cc_future_done(f))
        return outcome_of(f);
    struct until_done *u = calloc(1, sizeof *u);
    if (!u)
        return -ENOMEM;
    rc = run_begin(loop);
    if (rc < 0) {
        free(u);
        return rc;
    }
    cc_future_ref(f);
    cci_waker_arm(loop, &u->w, f, until_done_fired);
    do {
        rc = run_once(loop);
    } while (rc == 0 && !loop->stopping);
    loop->stopping = false;
    if (u->w.armed) {
        if (cci_waker_disarm(&u->w))
            free(u);
        else
            u->orphan = true;
    } else {
        free(u);
    }
    run_end(loop);
    if (rc == 0)
        rc = cc_future_done(f) ? outcome_of(f) : -EINTR;
    cc_future_unref(f);
    return rc;
}

/* ---- callbacks and timers ------------------------------------------------ */

static int give_handle(cc_handle *h, cc_handle **out)
{
    if (out) {
        h->refs++;
        *out = h;
    }
    return 0;
}

int cc_loop_call_soon(cc_loop *loop, cc_loop_fn fn, void *ctx, cc_handle **out)
{
    if (!loop || !fn)
        return -EINVAL;
    int rc = check_use(loop);
    if (rc < 0)
        return rc;
    cc_handle *h = handle_new(loop, fn, ctx);
    if (!h)
        return -ENOMEM;
    cci_loop_ready(loop, h);
    return give_handle(h, out);
}

int cc_loop_call_at(cc_loop *loop, int64_t when, cc_loop_fn fn, void *ctx,
                    cc_handle **out)
{
    if (!loop || !fn)
        return -EINVAL;
    int rc = check_use(loop);
    if (rc < 0)
        return rc;
    cc_handle *h = handle_new(loop, fn, ctx);
    if (!h)
        return -ENOMEM;
    rc = cci_loop_timer_add(loop, h, when);
    if (rc < 0) {
        handle_dealloc(h);
        return rc;
    }
    return give_handle(h, out);
}

int cc_loop_call_later(cc_loop *loop, cc_duration delay, cc_loop_fn fn,
                       void *ctx, cc_handle **out)
{
    if (delay < 0)
        return -EINVAL;
    int64_t now = cci_now_ns();
    int64_t when =
        delay > CCI_NO_DEADLINE - now ? CCI_NO_DEADLINE : now + delay;
    return cc_loop_call_at(loop, when, fn, ctx, out);
}

bool cc_handle_cancel(cc_handle *h)
{
    if (!h)
        return false;
    switch (h->state) {
    case CCI_H_READY:
        h->state = CCI_H_CANCELLED; /* skipped (and released) when reached */
        return true;
    case CCI_H_TIMER:
        cci_loop_timer_remove(h->loop, h);
        h->state = CCI_H_CANCELLED;
        handle_release(h); /* the loop's reference */
        return true;
    default:
        return false;
    }
}

bool cc_handle_cancelled(const cc_handle *h)
{
    return h && h->state == CCI_H_CANCELLED;
}

int64_t cc_handle_when(const cc_handle *h)
{
    return h ? h->when : 0; /* call_soon handles keep 0 */
}

/* ---- closing ------------------------------------------------------------- */

/* Drops a handle the loop will never run. Wakers always run: their owners
 * free themselves there. */
static void drop_handle(cc_loop *loop, cc_handle *h)
{
    h->queued = false;
    h->next = NULL;
    if ((h->flags & CCI_HANDLE_RUN_AT_CLOSE) && h->state == CCI_H_READY) {
        h->state = CCI_H_IDLE;
        h->fn(loop, h->ctx);
        return;
    }
    if (h->flags & CCI_HANDLE_EMBEDDED)
        h->state = CCI_H_IDLE;
    else
        h->state = CCI_H_CANCELLED;
    handle_release(h);
}

static void drop_ready(cc_loop *loop)
{
    while (loop->ready_head) {
        cc_handle *h = loop->ready_head;
        loop->ready_head = h->next;
        if (!loop->ready_head)
            loop->ready_tail = NULL;
        drop_handle(loop, h);
    }
}

static void drop_remote(cc_loop *loop)
{
    atomic_exchange_explicit(&loop->notified, 0, memory_order_seq_cst);
    for (;;) {
        bool transit = false;
        cc_handle *h;
        while ((h = mpsc_pop(&loop->remote, &transit)) != NULL) {
            h->state = CCI_H_READY;
            drop_handle(loop, h);
        }
        if (!transit)
            break;
        cci_cpu_relax(); /* a producer is between its two steps */
    }
}

/* Waits until no other thread can reach the loop through a waker. */
static void drain_wakers(cc_loop *loop)
{
    for (;;) {
        drop_ready(loop);
        drop_remote(loop);
        if (atomic_load_explicit(&loop->remote_refs, memory_order_acquire) == 0)
            break;
        /* A completion is in flight in another thread: it ends with a push
         * that wakes the poller. */
        cci_poll_event ev[1];
        (void)cci_poller_wait(loop->poller, ev, 0, CC_MSEC(10));
    }
    drop_ready(loop);
    drop_remote(loop);
}

int cc_loop_close(cc_loop *loop)
{
    if (!loop)
        return -EINVAL;
    if (cc_loop_is_closed(loop))
        return 0;
    int rc = run_begin(loop);
    if (rc < 0)
        return rc;
    atomic_store_explicit(&loop->state, CCI_LOOP_CLOSING, memory_order_relaxed);
    loop->stopping = false;
    /* asyncio.run's clean-up: cancel what is alive, let it finish. */
    while (loop->task_count > 0) {
        cci_loop_cancel_all_tasks(loop);
        if (run_once(loop) < 0)
            break;
    }
    run_end(loop);
    if (loop->own_executor) {
        cc_executor_free(loop->executor);
        loop->executor = NULL;
        loop->own_executor = false;
    }
    rc = run_begin(loop);
    assert(rc == 0);
    /* Whatever still waits for a future will not be run again: disarm it
     * (its owner cleans up) or let the completion in flight arrive. */
    for (cci_waker *w = loop->wakers, *next; w; w = next) {
        next = w->next;
        if (cci_waker_disarm(w))
            w->fn(w, false);
    }
    drain_wakers(loop);
    while (loop->heap_len > 0) {
        cc_handle *h = heap_pop(loop);
        h->state = CCI_H_CANCELLED;
        handle_release(h);
    }
    cci_loop_drop_children(loop);
    cci_loop_drop_fds(loop);
    cci_loop_drop_signals(loop);
    cci_loop_free_stacks(loop);
    atomic_store_explicit(&loop->state, CCI_LOOP_CLOSED, memory_order_release);
    run_end(loop);
    cci_loop_unlist(loop);
    return 0;
}

void cc_loop_free(cc_loop *loop)
{
    if (!loop)
        return;
    int rc = cc_loop_close(loop);
    assert(rc == 0);
    (void)rc;
    /* Threadsafe calls that raced the close. */
    drop_remote(loop);
    cci_loop_unlist(loop);      /* done by the close, unless it failed */
    cci_object_destroyed(loop); /* its name */
    free(loop->heap);
    cci_poller_free(loop->poller);
    free(loop);
}
