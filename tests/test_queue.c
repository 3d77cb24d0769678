/*
 * test_queue.c — queue.Queue, LifoQueue and PriorityQueue semantics, with
 * real threads. Timing is judged generously (an expected 0.5 s wait passes
 * between 0.3 s and 5 s) and tests poll instead of sleeping fixed times.
 */
#include "harness.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define ITEM(n) ((void *)(uintptr_t)(n))
#define NUM(p) ((uintptr_t)(p))

/* ---- helpers ------------------------------------------------------------- */

static cc_thread *start(cc_thread_fn fn, void *ctx)
{
    cc_thread *t = NULL;
    assert_int_equal(cc_thread_new(&t, fn, ctx, NULL), 0);
    assert_int_equal(cc_thread_start(t), 0);
    return t;
}

/* Joins t, drops the reference and returns its status. */
static int finish(cc_thread *t)
{
    int status = -1;
    assert_int_equal(cc_thread_join(t, CC_SEC(10)), 0);
    assert_int_equal(cc_thread_status(t, &status), 0);
    cc_thread_unref(t);
    return status;
}

struct probe {
    cc_thread *thread;
    const void *object;
};

static bool blocked_on(void *ctx)
{
    struct probe *p = ctx;
    cc_wait_info info;
    if (cc_thread_get_state(p->thread) != CC_THREAD_BLOCKED)
        return false;
    if (cc_thread_wait_info(p->thread, &info) != 0)
        return false;
    return info.kind == CC_WAIT_QUEUE && info.object == p->object;
}

static void expect_blocked_on_queue(cc_thread *t, cc_queue *q)
{
    struct probe p = {t, q};
    assert_true(cct_wait_until(blocked_on, &p, CC_SEC(5)));
}

static bool is_terminated(void *ctx)
{
    return !cc_thread_is_alive(ctx);
}

static cc_queue *new_queue(cc_queue_kind kind, size_t maxsize)
{
    cc_queue_options o = {.kind = kind, .maxsize = maxsize};
    cc_queue *q = NULL;
    assert_int_equal(cc_queue_new(&q, &o), 0);
    return q;
}

/* A thread that does one get or put and reports what happened. */
struct call {
    cc_queue *q;
    void *item;
    cc_duration timeout;
    int rc;
};

static int do_get(void *ctx)
{
    struct call *c = ctx;
    c->rc = cc_queue_get(c->q, &c->item, c->timeout);
    return 0;
}

static int do_put(void *ctx)
{
    struct call *c = ctx;
    c->rc = cc_queue_put(c->q, c->item, c->timeout);
    return 0;
}

static int do_join(void *ctx)
{
    struct call *c = ctx;
    c->rc = cc_queue_join(c->q, c->timeout);
    return 0;
}

/* ---- order --------------------------------------------------------------- */

static void test_fifo_order(void **state)
{
    (void)state;
    cc_queue *q = NULL;
    assert_int_equal(cc_queue_new(&q, NULL), 0); /* NULL: unbounded FIFO */
    for (uintptr_t i = 0; i < 10; i++)
        assert_int_equal(cc_queue_put(q, ITEM(i), CC_NOWAIT), 0);
    assert_int_equal(cc_queue_qsize(q), 10);
    for (uintptr_t i = 0; i < 10; i++) {
        void *item = NULL;
        assert_int_equal(cc_queue_get(q, &item, CC_NOWAIT), 0);
        assert_int_equal(NUM(item), i);
    }
    assert_true(cc_queue_empty(q));
    cc_queue_free(q);
}

static void test_lifo_order(void **state)
{
    (void)state;
    cc_queue *q = new_queue(CC_QUEUE_LIFO, 0);
    for (uintptr_t i = 0; i < 10; i++)
        assert_int_equal(cc_queue_put(q, ITEM(i), CC_NOWAIT), 0);
    for (uintptr_t i = 10; i-- > 0;) {
        void *item = NULL;
        assert_int_equal(cc_queue_get(q, &item, CC_NOWAIT), 0);
        assert_int_equal(NUM(item), i);
    }
    cc_queue_free(q);
}

/* NULL is an item like any other (Python's None). */
static void test_null_item(void **state)
{
    (void)state;
    cc_queue *q = new_queue(CC_QUEUE_FIFO, 1);
    assert_int_equal(cc_queue_put(q, NULL, CC_NOWAIT), 0);
    void *item = ITEM(1);
    assert_int_equal(cc_queue_get(q, &item, CC_NOWAIT), 0);
    assert_null(item);
    cc_queue_free(q);
}

struct prio_item {
    int prio;
    int id;
};

static int by_prio(const void *a, const void *b, void *ctx)
{
    int *calls = ctx;
    (*calls)++;
    const struct prio_item *x = a, *y = b;
    return (x->prio > y->prio) - (x->prio < y->prio);
}

static int cmp_for_sort(const void *a, const void *b)
{
    const struct prio_item *x = a, *y = b;
    if (x->prio != y->prio)
        return (x->prio > y->prio) - (x->prio < y->prio);
    return (x->id > y->id) - (x->id < y->id); /* ids are insertion order */
}

static void test_priority_order_stable(void **state)
{
    (void)state;
    enum { N = 2000 };
    int calls = 0;
    cc_queue_options o = {
        .kind = CC_QUEUE_PRIORITY, .cmp = by_prio, .cmp_ctx = &calls};
    cc_queue *q = NULL;
    assert_int_equal(cc_queue_new(&q, &o), 0);
    struct prio_item *items = malloc(N * sizeof *items);
    struct prio_item *sorted = malloc(N * sizeof *sorted);
    assert_non_null(items);
    assert_non_null(sorted);
    srand(12345);
    for (int i = 0; i < N; i++) {
        /* Few distinct priorities, so ties are the common case. */
        items[i].prio = rand() % 7;
        items[i].id = i;
        sorted[i] = items[i];
    }
    qsort(sorted, N, sizeof *sorted, cmp_for_sort);
    /* Interleave puts and gets so the heap is exercised while partly full. */
    int next_put = 0, next_get = 0;
    while (next_put < N / 2)
        assert_int_equal(cc_queue_put(q, &items[next_put++], CC_NOWAIT), 0);
    void *item;
    assert_int_equal(cc_queue_get(q, &item, CC_NOWAIT), 0);
    /* The first half's smallest: the first lowest-priority one put. */
    struct prio_item *first = item;
    for (int i = 0; i < N / 2; i++) {
        if (items[i].prio < first->prio ||
            (items[i].prio == first->prio && items[i].id < first->id))
            fail_msg("priority queue returned %d/%d before %d/%d", first->prio,
                     first->id, items[i].prio, items[i].id);
    }
    while (next_put < N)
        assert_int_equal(cc_queue_put(q, &items[next_put++], CC_NOWAIT), 0);
    /* Now the remaining N-1 items must come out in stable sorted order,
     * skipping the one already taken. */
    for (int i = 0; i < N; i++) {
        if (sorted[i].id == first->id)
            continue;
        assert_int_equal(cc_queue_get(q, &item, CC_NOWAIT), 0);
        struct prio_item *got = item;
        assert_int_equal(got->prio, sorted[i].prio);
        assert_int_equal(got->id, sorted[i].id);
        next_get++;
    }
    assert_int_equal(next_get, N - 1);
    assert_true(cc_queue_empty(q));
    assert_true(calls > 0);
    free(items);
    free(sorted);
    cc_queue_free(q);
}

/* Simple ties: equal priorities leave in insertion order. */
static void test_priority_ties_in_put_order(void **state)
{
    (void)state;
    int calls = 0;
    cc_queue_options o = {.kind = CC_QUEUE_PRIORITY,
                          .cmp = by_prio,
                          .cmp_ctx = &calls,
                          .maxsize = 8};
    cc_queue *q = NULL;
    assert_int_equal(cc_queue_new(&q, &o), 0);
    struct prio_item it[6] = {{5, 0}, {1, 1}, {5, 2}, {1, 3}, {5, 4}, {1, 5}};
    for (int i = 0; i < 6; i++)
        assert_int_equal(cc_queue_put(q, &it[i], CC_NOWAIT), 0);
    int expect[6] = {1, 3, 5, 0, 2, 4};
    for (int i = 0; i < 6; i++) {
        void *item;
        assert_int_equal(cc_queue_get(q, &item, CC_NOWAIT), 0);
        assert_int_equal(((struct prio_item *)item)->id, expect[i]);
    }
    cc_queue_free(q);
}

/* Growth, wrap-around and shrinking of the ring, FIFO and LIFO. */
static void test_unbounded_growth(void **state)
{
    (void)state;
    for (int kind = CC_QUEUE_FIFO; kind <= CC_QUEUE_LIFO; kind++) {
        cc_queue *q = new_queue((cc_queue_kind)kind, 0);
        uintptr_t put = 0, got = 0;
        void *item;
        /* Offset the head so that growth happens with a wrapped ring. */
        for (int i = 0; i < 5; i++)
            assert_int_equal(cc_queue_put(q, ITEM(put++), CC_NOWAIT), 0);
        for (int i = 0; i < 3; i++) {
            assert_int_equal(cc_queue_get(q, &item, CC_NOWAIT), 0);
            if (kind == CC_QUEUE_FIFO)
                assert_int_equal(NUM(item), got++);
        }
        for (int round = 0; round < 3; round++) {
            size_t before = cc_queue_qsize(q);
            for (int i = 0; i < 50000; i++)
                assert_int_equal(cc_queue_put(q, ITEM(put++), CC_NOWAIT), 0);
            assert_int_equal(cc_queue_qsize(q), before + 50000);
            for (int i = 0; i < 49990; i++) {
                assert_int_equal(cc_queue_get(q, &item, CC_NOWAIT), 0);
                if (kind == CC_QUEUE_FIFO)
                    assert_int_equal(NUM(item), got++);
                else
                    assert_int_equal(NUM(item), put - 1 - (uintptr_t)i);
            }
        }
        while (cc_queue_get(q, &item, CC_NOWAIT) == 0)
            if (kind == CC_QUEUE_FIFO)
                assert_int_equal(NUM(item), got++);
        if (kind == CC_QUEUE_FIFO)
            assert_int_equal(got, put);
        assert_int_equal(cc_queue_qsize(q), 0);
        cc_queue_free(q);
    }
}

/* ---- non-blocking, bounded, timeouts ------------------------------------- */

static void test_nowait_full_and_empty(void **state)
{
    (void)state;
    cc_queue *q = new_queue(CC_QUEUE_FIFO, 2);
    void *item = ITEM(99);
    assert_int_equal(cc_queue_maxsize(q), 2);
    assert_int_equal(cc_queue_get(q, &item, CC_NOWAIT), CC_EEMPTY);
    assert_int_equal(NUM(item), 99); /* untouched on error */
    assert_int_equal(cc_queue_put(q, ITEM(1), CC_NOWAIT), 0);
    assert_false(cc_queue_full(q));
    assert_int_equal(cc_queue_put(q, ITEM(2), CC_NOWAIT), 0);
    assert_true(cc_queue_full(q));
    assert_int_equal(cc_queue_put(q, ITEM(3), CC_NOWAIT), CC_EFULL);
    assert_int_equal(cc_queue_qsize(q), 2);
    /* A failed put adds no task. */
    assert_int_equal(cc_queue_unfinished(q), 2);
    assert_int_equal(cc_queue_get(q, &item, CC_NOWAIT), 0);
    assert_int_equal(NUM(item), 1);
    assert_int_equal(cc_queue_put(q, ITEM(3), CC_NOWAIT), 0);
    assert_int_equal(cc_queue_get(q, &item, CC_NOWAIT), 0);
    assert_int_equal(NUM(item), 2);
    assert_int_equal(cc_queue_get(q, &item, CC_NOWAIT), 0);
    assert_int_equal(NUM(item), 3);
    assert_int_equal(cc_queue_get(q, &item, CC_NOWAIT), CC_EEMPTY);
    assert_true(cc_queue_empty(q));
    cc_queue_free(q);

    /* An unbounded queue is never full. */
    q = new_queue(CC_QUEUE_LIFO, 0);
    assert_int_equal(cc_queue_maxsize(q), 0);
    assert_false(cc_queue_full(q));
    assert_int_equal(cc_queue_get(q, &item, CC_NOWAIT), CC_EEMPTY);
    cc_queue_free(q);
}

static void test_timeouts(void **state)
{
    (void)state;
    cc_queue *q = new_queue(CC_QUEUE_FIFO, 1);
    void *item;
    int64_t t0 = cc_monotonic_ns();
    assert_int_equal(cc_queue_get(q, &item, CC_MSEC(500)), CC_EEMPTY);
    double s = cct_seconds_since(t0);
    assert_true(s >= 0.3 && s < 5.0);

    assert_int_equal(cc_queue_put(q, ITEM(1), CC_NOWAIT), 0);
    t0 = cc_monotonic_ns();
    assert_int_equal(cc_queue_put(q, ITEM(2), cc_seconds(0.5)), CC_EFULL);
    s = cct_seconds_since(t0);
    assert_true(s >= 0.3 && s < 5.0);

    t0 = cc_monotonic_ns();
    assert_int_equal(cc_queue_join(q, CC_MSEC(500)), -ETIMEDOUT);
    s = cct_seconds_since(t0);
    assert_true(s >= 0.3 && s < 5.0);
    assert_int_equal(cc_queue_join(q, CC_NOWAIT), -ETIMEDOUT);

    /* A timed get that an item arrives for succeeds. */
    assert_int_equal(cc_queue_get(q, &item, CC_MSEC(500)), 0);
    assert_int_equal(NUM(item), 1);
    cc_queue_free(q);
}

static void test_bounded_put_blocks_until_get(void **state)
{
    (void)state;
    cc_queue *q = new_queue(CC_QUEUE_FIFO, 1);
    assert_int_equal(cc_queue_put(q, ITEM(1), CC_NOWAIT), 0);
    struct call c = {q, ITEM(2), CC_FOREVER, 1};
    cc_thread *t = start(do_put, &c);
    expect_blocked_on_queue(t, q);
    assert_int_equal(cc_queue_qsize(q), 1);
    void *item;
    assert_int_equal(cc_queue_get(q, &item, CC_NOWAIT), 0);
    assert_int_equal(NUM(item), 1);
    assert_int_equal(finish(t), 0);
    assert_int_equal(c.rc, 0);
    assert_int_equal(cc_queue_get(q, &item, CC_NOWAIT), 0);
    assert_int_equal(NUM(item), 2);
    cc_queue_free(q);
}

static void test_getter_blocked_state(void **state)
{
    (void)state;
    cc_queue *q = new_queue(CC_QUEUE_FIFO, 0);
    struct call c = {q, NULL, CC_FOREVER, 1};
    cc_thread *t = start(do_get, &c);
    expect_blocked_on_queue(t, q);
    cc_wait_info info;
    assert_int_equal(cc_thread_wait_info(t, &info), 0);
    assert_int_equal(info.kind, CC_WAIT_QUEUE);
    assert_ptr_equal(info.object, q);
    assert_true(info.since_ns > 0 && info.since_ns <= cc_monotonic_ns());
    assert_int_equal(cc_queue_put(q, ITEM(7), CC_NOWAIT), 0);
    assert_true(cct_wait_until(is_terminated, t, CC_SEC(5)));
    assert_int_equal(finish(t), 0);
    assert_int_equal(c.rc, 0);
    assert_int_equal(NUM(c.item), 7);
    cc_queue_free(q);
}

/* The main thread's own state: unchanged by calls that do not wait. */
static void test_fast_path_does_not_block(void **state)
{
    (void)state;
    cc_queue *q = new_queue(CC_QUEUE_FIFO, 1);
    void *item;
    assert_int_equal(cc_queue_put(q, ITEM(1), CC_FOREVER), 0);
    assert_int_equal(cc_thread_get_state(cc_thread_current()),
                     CC_THREAD_RUNNING);
    assert_int_equal(cc_queue_get(q, &item, CC_FOREVER), 0);
    assert_int_equal(cc_queue_get(q, &item, CC_MSEC(20)), CC_EEMPTY);
    /* After a real wait, the state is back to RUNNING. */
    assert_int_equal(cc_thread_get_state(cc_thread_current()),
                     CC_THREAD_RUNNING);
    cc_wait_info info;
    assert_int_equal(cc_thread_wait_info(cc_thread_current(), &info), 0);
    assert_int_equal(info.kind, CC_WAIT_NONE);
    cc_queue_free(q);
}

/* Many threads blocked at once: every put (get) must release one getter
 * (putter); none may sleep through its wake-up. */
static void test_many_waiters_all_released(void **state)
{
    (void)state;
    enum { N = 6 };
    cc_queue *q = new_queue(CC_QUEUE_FIFO, 1);
    struct call c[N];
    cc_thread *t[N];
    for (int i = 0; i < N; i++) {
        c[i] = (struct call){q, NULL, CC_SEC(20), 1};
        t[i] = start(do_get, &c[i]);
    }
    for (int i = 0; i < N; i++)
        expect_blocked_on_queue(t[i], q);
    /* Back-to-back puts: the bounded queue makes the main thread wait for
     * each item to be taken, racing with the getters' wake-ups. */
    for (uintptr_t i = 0; i < N; i++)
        assert_int_equal(cc_queue_put(q, ITEM(i + 1), CC_SEC(10)), 0);
    uintptr_t sum = 0;
    for (int i = 0; i < N; i++) {
        assert_int_equal(finish(t[i]), 0);
        assert_int_equal(c[i].rc, 0);
        sum += NUM(c[i].item);
    }
    assert_int_equal(sum, N * (N + 1) / 2);

    /* And the other way: N putters blocked on a full queue. */
    void *item;
    assert_int_equal(cc_queue_put(q, ITEM(100), CC_NOWAIT), 0);
    for (int i = 0; i < N; i++) {
        c[i] = (struct call){q, ITEM(i + 1), CC_SEC(20), 1};
        t[i] = start(do_put, &c[i]);
    }
    for (int i = 0; i < N; i++)
        expect_blocked_on_queue(t[i], q);
    sum = 0;
    for (int i = 0; i < N + 1; i++) {
        assert_int_equal(cc_queue_get(q, &item, CC_SEC(10)), 0);
        sum += NUM(item);
    }
    assert_int_equal(sum, 100 + N * (N + 1) / 2);
    for (int i = 0; i < N; i++) {
        assert_int_equal(finish(t[i]), 0);
        assert_int_equal(c[i].rc, 0);
    }
    cc_queue_free(q);
}

/* ---- tasks --------------------------------------------------------------- */

struct worker {
    cc_queue *q;
    int handled;
};

static int task_worker(void *ctx)
{
    struct worker *w = ctx;
    void *item;
    int rc;
    while ((rc = cc_queue_get(w->q, &item, CC_FOREVER)) == 0) {
        w->handled++;
        if (cc_queue_task_done(w->q) != 0)
            return -1;
    }
    return rc == CC_ESHUTDOWN ? 0 : rc;
}

static void test_task_done_and_join(void **state)
{
    (void)state;
    cc_queue *q = new_queue(CC_QUEUE_FIFO, 0);
    /* Nothing put: join returns at once; task_done is one too many. */
    assert_int_equal(cc_queue_join(q, CC_NOWAIT), 0);
    assert_int_equal(cc_queue_task_done(q), -EINVAL);
    assert_int_equal(cc_queue_unfinished(q), 0);

    for (uintptr_t i = 0; i < 50; i++)
        assert_int_equal(cc_queue_put(q, ITEM(i), CC_NOWAIT), 0);
    assert_int_equal(cc_queue_unfinished(q), 50);
    assert_int_equal(cc_queue_join(q, CC_NOWAIT), -ETIMEDOUT);

    struct worker w = {q, 0};
    cc_thread *t = start(task_worker, &w);
    assert_int_equal(cc_queue_join(q, CC_SEC(10)), 0);
    assert_int_equal(cc_queue_unfinished(q), 0);
    assert_true(cc_queue_empty(q));
    assert_int_equal(cc_queue_task_done(q), -EINVAL);

    assert_int_equal(cc_queue_shutdown(q, false), 0);
    assert_int_equal(finish(t), 0);
    assert_int_equal(w.handled, 50);
    cc_queue_free(q);

    /* A join that has to sleep shows the queue as what it waits on. */
    q = new_queue(CC_QUEUE_FIFO, 0);
    assert_int_equal(cc_queue_put(q, ITEM(1), CC_NOWAIT), 0);
    struct call c = {q, NULL, CC_FOREVER, 1};
    cc_thread *joiner = start(do_join, &c);
    expect_blocked_on_queue(joiner, q);
    void *item;
    assert_int_equal(cc_queue_get(q, &item, CC_NOWAIT), 0);
    /* Taking the item is not finishing it. */
    assert_true(cc_thread_is_alive(joiner));
    assert_int_equal(cc_queue_unfinished(q), 1);
    assert_int_equal(cc_queue_task_done(q), 0);
    assert_int_equal(finish(joiner), 0);
    assert_int_equal(c.rc, 0);
    cc_queue_free(q);
}

/* ---- shutdown ------------------------------------------------------------ */

struct freed {
    int count;
    uintptr_t order[16];
};

static void record_free(void *item, void *ctx)
{
    struct freed *f = ctx;
    if (f->count < 16)
        f->order[f->count] = NUM(item);
    f->count++;
}

static void test_shutdown_graceful(void **state)
{
    (void)state;
    struct freed f = {0};
    cc_queue_options o = {
        .maxsize = 2, .item_free = record_free, .item_free_ctx = &f};
    cc_queue *q = NULL;
    assert_int_equal(cc_queue_new(&q, &o), 0);
    assert_int_equal(cc_queue_put(q, ITEM(1), CC_NOWAIT), 0);
    assert_int_equal(cc_queue_put(q, ITEM(2), CC_NOWAIT), 0);
    struct call pc = {q, ITEM(3), CC_FOREVER, 1};
    cc_thread *putter = start(do_put, &pc);
    expect_blocked_on_queue(putter, q);

    assert_false(cc_queue_is_shutdown(q));
    assert_int_equal(cc_queue_shutdown(q, false), 0);
    assert_true(cc_queue_is_shutdown(q));
    assert_int_equal(finish(putter), 0);
    assert_int_equal(pc.rc, CC_ESHUTDOWN);
    assert_int_equal(cc_queue_put(q, ITEM(4), CC_NOWAIT), CC_ESHUTDOWN);
    assert_int_equal(cc_queue_put(q, ITEM(4), CC_FOREVER), CC_ESHUTDOWN);
    /* Gets drain what is left, then fail at once, even without a limit. */
    void *item;
    assert_int_equal(cc_queue_get(q, &item, CC_FOREVER), 0);
    assert_int_equal(NUM(item), 1);
    assert_int_equal(cc_queue_get(q, &item, CC_NOWAIT), 0);
    assert_int_equal(NUM(item), 2);
    assert_int_equal(cc_queue_get(q, &item, CC_FOREVER), CC_ESHUTDOWN);
    assert_int_equal(cc_queue_get(q, &item, CC_NOWAIT), CC_ESHUTDOWN);
    /* Items taken still need task_done; shutting down again is fine. */
    assert_int_equal(cc_queue_unfinished(q), 2);
    assert_int_equal(cc_queue_shutdown(q, false), 0);
    assert_int_equal(cc_queue_task_done(q), 0);
    assert_int_equal(cc_queue_task_done(q), 0);
    assert_int_equal(cc_queue_join(q, CC_NOWAIT), 0);
    assert_int_equal(f.count, 0);
    cc_queue_free(q);
    assert_int_equal(f.count, 0);
}

static void test_shutdown_wakes_getters(void **state)
{
    (void)state;
    for (int immediate = 0; immediate <= 1; immediate++) {
        enum { N = 4 };
        cc_queue *q = new_queue(CC_QUEUE_LIFO, 0);
        struct call c[N];
        cc_thread *t[N];
        for (int i = 0; i < N; i++) {
            c[i] = (struct call){q, ITEM(5), CC_FOREVER, 1};
            t[i] = start(do_get, &c[i]);
        }
        for (int i = 0; i < N; i++)
            expect_blocked_on_queue(t[i], q);
        assert_int_equal(cc_queue_shutdown(q, immediate), 0);
        for (int i = 0; i < N; i++) {
            assert_int_equal(finish(t[i]), 0);
            assert_int_equal(c[i].rc, CC_ESHUTDOWN);
            assert_int_equal(NUM(c[i].item), 5);
        }
        cc_queue_free(q);
    }
}

static void test_shutdown_immediate(void **state)
{
    (void)state;
    struct freed f = {0};
    cc_queue_options o = {
        .maxsize = 3, .item_free = record_free, .item_free_ctx = &f};
    cc_queue *q = NULL;
    assert_int_equal(cc_queue_new(&q, &o), 0);
    for (uintptr_t i = 1; i <= 3; i++)
        assert_int_equal(cc_queue_put(q, ITEM(i), CC_NOWAIT), 0);
    void *item;
    assert_int_equal(cc_queue_get(q, &item, CC_NOWAIT), 0); /* 1, in hand */
    assert_int_equal(cc_queue_put(q, ITEM(4), CC_NOWAIT), 0);

    struct call pc = {q, ITEM(5), CC_FOREVER, 1};
    cc_thread *putter = start(do_put, &pc);
    expect_blocked_on_queue(putter, q);
    struct call jc = {q, NULL, CC_FOREVER, 1};
    cc_thread *joiner = start(do_join, &jc);
    expect_blocked_on_queue(joiner, q);

    assert_int_equal(cc_queue_shutdown(q, true), 0);
    assert_int_equal(finish(putter), 0);
    assert_int_equal(pc.rc, CC_ESHUTDOWN); /* item 5 is still the putter's */
    /* 2, 3, 4 dropped, in queue order, and counted as done. */
    assert_int_equal(f.count, 3);
    assert_int_equal(f.order[0], 2);
    assert_int_equal(f.order[1], 3);
    assert_int_equal(f.order[2], 4);
    assert_int_equal(cc_queue_qsize(q), 0);
    assert_int_equal(cc_queue_unfinished(q), 1);
    assert_int_equal(cc_queue_get(q, &item, CC_FOREVER), CC_ESHUTDOWN);
    assert_int_equal(cc_queue_put(q, ITEM(6), CC_FOREVER), CC_ESHUTDOWN);

    /* The item in hand still holds join until it is done. */
    assert_true(cc_thread_is_alive(joiner));
    assert_int_equal(cc_queue_task_done(q), 0);
    assert_int_equal(finish(joiner), 0);
    assert_int_equal(jc.rc, 0);
    assert_int_equal(cc_queue_task_done(q), -EINVAL);

    assert_int_equal(cc_queue_shutdown(q, true), 0); /* again: nothing left */
    assert_int_equal(f.count, 3);
    cc_queue_free(q);
    assert_int_equal(f.count, 3);
}

/* Immediate after graceful drops what the getters had not drained yet;
 * with every item dropped, join returns. */
static void test_shutdown_immediate_after_graceful(void **state)
{
    (void)state;
    struct freed f = {0};
    cc_queue_options o = {
        .kind = CC_QUEUE_LIFO, .item_free = record_free, .item_free_ctx = &f};
    cc_queue *q = NULL;
    assert_int_equal(cc_queue_new(&q, &o), 0);
    for (uintptr_t i = 1; i <= 3; i++)
        assert_int_equal(cc_queue_put(q, ITEM(i), CC_NOWAIT), 0);
    assert_int_equal(cc_queue_shutdown(q, false), 0);
    assert_int_equal(cc_queue_qsize(q), 3);
    assert_int_equal(cc_queue_shutdown(q, true), 0);
    assert_int_equal(f.count, 3);
    assert_int_equal(f.order[0], 3); /* LIFO: get order */
    assert_int_equal(f.order[2], 1);
    assert_int_equal(cc_queue_join(q, CC_NOWAIT), 0);
    cc_queue_free(q);
}

static void free_malloced(void *item, void *ctx)
{
    int *count = ctx;
    (*count)++;
    free(item);
}

/* cc_queue_free hands left items to item_free (ASan checks none leaks),
 * for each kind. */
static int int_cmp(const void *a, const void *b, void *ctx)
{
    (void)ctx;
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

static void test_free_drops_items(void **state)
{
    (void)state;
    for (int kind = CC_QUEUE_FIFO; kind <= CC_QUEUE_PRIORITY; kind++) {
        int freed = 0;
        cc_queue_options o = {.kind = (cc_queue_kind)kind,
                              .item_free = free_malloced,
                              .item_free_ctx = &freed};
        if (kind == CC_QUEUE_PRIORITY)
            o.cmp = int_cmp;
        cc_queue *q = NULL;
        assert_int_equal(cc_queue_new(&q, &o), 0);
        for (int i = 0; i < 100; i++) {
            int *p = malloc(sizeof *p);
            assert_non_null(p);
            *p = i % 10;
            assert_int_equal(cc_queue_put(q, p, CC_NOWAIT), 0);
        }
        void *item;
        assert_int_equal(cc_queue_get(q, &item, CC_NOWAIT), 0);
        free(item); /* the caller owns what it gets */
        cc_queue_free(q);
        assert_int_equal(freed, 99);
    }
}

/* ---- stress -------------------------------------------------------------- */

enum { PRODUCERS = 4, CONSUMERS = 4, PER_PRODUCER = 20000 };

struct stress {
    cc_queue *q;
    unsigned char *seen; /* PRODUCERS * PER_PRODUCER counters */
    int next_producer;
    int bad;
};

static int stress_producer(void *ctx)
{
    struct stress *s = ctx;
    int p = __atomic_fetch_add(&s->next_producer, 1, __ATOMIC_RELAXED);
    for (uintptr_t i = 0; i < PER_PRODUCER; i++) {
        uintptr_t id = (uintptr_t)p * PER_PRODUCER + i;
        int rc = cc_queue_put(s->q, ITEM(id + 1), CC_SEC(20));
        if (rc != 0)
            return rc;
    }
    return 0;
}

static int stress_consumer(void *ctx)
{
    struct stress *s = ctx;
    void *item;
    int rc;
    while ((rc = cc_queue_get(s->q, &item, CC_SEC(20))) == 0) {
        uintptr_t id = NUM(item);
        if (id == 0 || id > PRODUCERS * PER_PRODUCER) {
            __atomic_store_n(&s->bad, 1, __ATOMIC_RELAXED);
            continue;
        }
        __atomic_fetch_add(&s->seen[id - 1], 1, __ATOMIC_RELAXED);
        cc_queue_task_done(s->q);
    }
    return rc == CC_ESHUTDOWN ? 0 : rc;
}

static int stress_cmp(const void *a, const void *b, void *ctx)
{
    (void)ctx;
    /* Coarse priorities, so ties are frequent. */
    uintptr_t x = NUM(a) % 5, y = NUM(b) % 5;
    return (x > y) - (x < y);
}

static void run_stress(cc_queue_kind kind, size_t maxsize)
{
    cc_queue_options o = {.kind = kind,
                          .maxsize = maxsize,
                          .cmp = kind == CC_QUEUE_PRIORITY ? stress_cmp : NULL};
    struct stress s = {0};
    assert_int_equal(cc_queue_new(&s.q, &o), 0);
    s.seen = calloc(PRODUCERS * PER_PRODUCER, 1);
    assert_non_null(s.seen);
    cc_thread *prod[PRODUCERS], *cons[CONSUMERS];
    int64_t t0 = cc_monotonic_ns();
    for (int i = 0; i < CONSUMERS; i++)
        cons[i] = start(stress_consumer, &s);
    for (int i = 0; i < PRODUCERS; i++)
        prod[i] = start(stress_producer, &s);
    for (int i = 0; i < PRODUCERS; i++)
        assert_int_equal(finish(prod[i]), 0);
    assert_int_equal(cc_queue_join(s.q, CC_SEC(20)), 0);
    assert_int_equal(cc_queue_shutdown(s.q, false), 0);
    for (int i = 0; i < CONSUMERS; i++)
        assert_int_equal(finish(cons[i]), 0);
    double secs = cct_seconds_since(t0);
    assert_false(s.bad);
    for (int i = 0; i < PRODUCERS * PER_PRODUCER; i++)
        if (s.seen[i] != 1)
            fail_msg("item %d received %d times", i + 1, s.seen[i]);
    assert_true(cc_queue_empty(s.q));
    assert_int_equal(cc_queue_unfinished(s.q), 0);
    assert_true(secs < 5.0);
    free(s.seen);
    cc_queue_free(s.q);
}

static void test_stress_bounded_fifo(void **state)
{
    (void)state;
    run_stress(CC_QUEUE_FIFO, 16);
}

static void test_stress_unbounded_lifo(void **state)
{
    (void)state;
    run_stress(CC_QUEUE_LIFO, 0);
}

static void test_stress_bounded_priority(void **state)
{
    (void)state;
    run_stress(CC_QUEUE_PRIORITY, 7);
}

/* ---- arguments and options ----------------------------------------------- */

static void test_bad_arguments(void **state)
{
    (void)state;
    cc_queue *q = NULL;
    void *item;
    cc_queue_options o = {0};
    assert_int_equal(cc_queue_new(NULL, NULL), -EINVAL);
    o.kind = (cc_queue_kind)7;
    assert_int_equal(cc_queue_new(&q, &o), -EINVAL);
    o.kind = CC_QUEUE_PRIORITY; /* without cmp */
    assert_int_equal(cc_queue_new(&q, &o), -EINVAL);
    o.kind = CC_QUEUE_FIFO;
    o.cmp = int_cmp; /* cmp on a FIFO is a mistake */
    assert_int_equal(cc_queue_new(&q, &o), -EINVAL);
    o.kind = CC_QUEUE_LIFO;
    assert_int_equal(cc_queue_new(&q, &o), -EINVAL);
    assert_null(q);
    o.cmp = NULL;
    o.maxsize = SIZE_MAX; /* cannot be allocated */
    assert_int_equal(cc_queue_new(&q, &o), -ENOMEM);
    assert_null(q);

    assert_int_equal(cc_queue_put(NULL, NULL, CC_NOWAIT), -EINVAL);
    assert_int_equal(cc_queue_get(NULL, &item, CC_NOWAIT), -EINVAL);
    assert_int_equal(cc_queue_task_done(NULL), -EINVAL);
    assert_int_equal(cc_queue_join(NULL, CC_NOWAIT), -EINVAL);
    assert_int_equal(cc_queue_shutdown(NULL, false), -EINVAL);
    assert_int_equal(cc_queue_qsize(NULL), 0);
    assert_true(cc_queue_empty(NULL));
    assert_false(cc_queue_full(NULL));
    assert_int_equal(cc_queue_maxsize(NULL), 0);
    assert_int_equal(cc_queue_unfinished(NULL), 0);
    assert_false(cc_queue_is_shutdown(NULL));
    assert_null(cc_queue_name(NULL));
    cc_queue_free(NULL);

    assert_int_equal(cc_queue_new(&q, NULL), 0);
    assert_int_equal(cc_queue_get(q, NULL, CC_NOWAIT), -EINVAL);
    assert_int_equal(cc_queue_put(q, ITEM(1), -5), -EINVAL);
    assert_int_equal(cc_queue_put(q, ITEM(1), CC_INVALID_DURATION), -EINVAL);
    assert_int_equal(cc_queue_get(q, &item, -2), -EINVAL);
    assert_int_equal(cc_queue_join(q, cc_seconds(-1.0)), -EINVAL);
    /* Nothing was changed by the failed calls. */
    assert_int_equal(cc_queue_qsize(q), 0);
    assert_int_equal(cc_queue_unfinished(q), 0);
    cc_queue_free(q);
}

static void test_names(void **state)
{
    (void)state;
    char name[] = "jobs";
    cc_queue_options o = {.name = name};
    cc_queue *a = NULL, *b = NULL;
    assert_int_equal(cc_queue_new(&a, &o), 0);
    name[0] = 'x'; /* copied */
    assert_string_equal(cc_queue_name(a), "jobs");
    assert_int_equal(cc_queue_new(&b, NULL), 0);
    assert_true(strncmp(cc_queue_name(b), "Queue-", 6) == 0);
    cc_queue_free(a);
    cc_queue_free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        CCT_TEST(test_fifo_order),
        CCT_TEST(test_lifo_order),
        CCT_TEST(test_null_item),
        CCT_TEST(test_priority_order_stable),
        CCT_TEST(test_priority_ties_in_put_order),
        CCT_TEST(test_unbounded_growth),
        CCT_TEST(test_nowait_full_and_empty),
        CCT_TEST(test_timeouts),
        CCT_TEST(test_bounded_put_blocks_until_get),
        CCT_TEST(test_getter_blocked_state),
        CCT_TEST(test_fast_path_does_not_block),
        CCT_TEST(test_many_waiters_all_released),
        CCT_TEST(test_task_done_and_join),
        CCT_TEST(test_shutdown_graceful),
        CCT_TEST(test_shutdown_wakes_getters),
        CCT_TEST(test_shutdown_immediate),
        CCT_TEST(test_shutdown_immediate_after_graceful),
        CCT_TEST(test_free_drops_items),
        CCT_TEST(test_stress_bounded_fifo),
        CCT_TEST(test_stress_unbounded_lifo),
        CCT_TEST(test_stress_bounded_priority),
        CCT_TEST(test_bad_arguments),
        CCT_TEST(test_names),
    };
    return CCT_RUN(tests);
}
