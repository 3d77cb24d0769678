/* The future allocator (src/future/block_pool.c): blocks are distinct and
 * whole, come back through their owner or through other threads, survive
 * their allocating thread, are adopted again, and stay consistent under a
 * many-thread shuffle. Off under AddressSanitizer, where these tests skip. */
#include "harness.h"

#include <errno.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "future/block_pool.h"

#define MANY 5000 /* several slabs' worth */

/* Skips the test when the pool is off (AddressSanitizer builds). */
static void *first_block_or_skip(void)
{
    void *b = cci_block_alloc();
    if (!b)
        skip();
    return b;
}

static void fill(void *b, unsigned tag)
{
    memset(b, (int)(tag & 0xff), CCI_BLOCK_SIZE);
}

static void check(const void *b, unsigned tag)
{
    const unsigned char *p = b;
    for (size_t i = 0; i < CCI_BLOCK_SIZE; i++)
        assert_int_equal(p[i], tag & 0xff);
}

static int by_address(const void *a, const void *b)
{
    uintptr_t x = (uintptr_t) * (void *const *)a;
    uintptr_t y = (uintptr_t) * (void *const *)b;
    return x < y ? -1 : x > y;
}

/* MANY blocks, each filled with its own tag. */
static void **alloc_many(unsigned n)
{
    void **blocks = calloc(n, sizeof *blocks);
    assert_non_null(blocks);
    for (unsigned i = 0; i < n; i++) {
        blocks[i] = cci_block_alloc();
        assert_non_null(blocks[i]);
        assert_int_equal((uintptr_t)blocks[i] % 32, 0);
        fill(blocks[i], i);
    }
    return blocks;
}

static void check_and_free_all(void **blocks, unsigned n)
{
    for (unsigned i = 0; i < n; i++) {
        check(blocks[i], i);
        cci_block_free(blocks[i]);
    }
}

static void test_blocks_are_distinct_and_whole(void **state)
{
    (void)state;
    cci_block_free(first_block_or_skip());
    void **blocks = alloc_many(MANY);
    for (unsigned i = 0; i < MANY; i++)
        check(blocks[i], i); /* no block overlaps another */
    void **sorted = malloc(MANY * sizeof *sorted);
    assert_non_null(sorted);
    memcpy(sorted, blocks, MANY * sizeof *sorted);
    qsort(sorted, MANY, sizeof *sorted, by_address);
    for (unsigned i = 1; i < MANY; i++)
        assert_true((char *)sorted[i] - (char *)sorted[i - 1] >=
                    CCI_BLOCK_SIZE);
    free(sorted);
    check_and_free_all(blocks, MANY);
    /* The owner's frees are reused at once, newest first. */
    void *a = cci_block_alloc();
    cci_block_free(a);
    assert_ptr_equal(cci_block_alloc(), a);
    cci_block_free(a);
    free(blocks);
}

struct handoff {
    void **blocks;
    unsigned n;
};

static int allocate_and_exit(void *arg)
{
    struct handoff *h = arg;
    h->blocks = alloc_many(h->n);
    return 0; /* exits holding them: its slabs are detached */
}

static int free_all(void *arg)
{
    struct handoff *h = arg;
    check_and_free_all(h->blocks, h->n);
    return 0;
}

static void run_in_thread(cc_thread_fn fn, void *arg)
{
    cc_thread *t = NULL;
    assert_int_equal(cc_thread_new(&t, fn, arg, NULL), 0);
    assert_int_equal(cc_thread_start(t), 0);
    assert_int_equal(cc_thread_join(t, CC_SEC(60)), 0);
    int status = -1;
    assert_int_equal(cc_thread_status(t, &status), 0);
    assert_int_equal(status, 0);
    cc_thread_unref(t);
}

/* Blocks outlive the thread that allocated them, and another thread's
 * frees bring every slab back (the last free of each releases it). */
static void test_blocks_outlive_their_thread(void **state)
{
    (void)state;
    cci_block_free(first_block_or_skip());
    struct handoff h = {.n = MANY};
    run_in_thread(allocate_and_exit, &h);
    check_and_free_all(h.blocks, h.n);
    free(h.blocks);
    /* And the other way round: allocated here, freed by a thread. */
    h.blocks = alloc_many(MANY);
    run_in_thread(free_all, &h);
    free(h.blocks);
    h.blocks = alloc_many(MANY); /* reuses what came back */
    check_and_free_all(h.blocks, MANY);
    free(h.blocks);
}

/* Half-freed slabs of an exited thread are adopted by the next thread that
 * needs a slab instead of new memory being mapped. */
static void test_detached_slabs_are_adopted(void **state)
{
    (void)state;
    cci_block_free(first_block_or_skip());
    struct handoff h = {.n = MANY};
    run_in_thread(allocate_and_exit, &h);
    /* Free every other block: each slab has half its blocks back. */
    for (unsigned i = 0; i < MANY; i += 2)
        cci_block_free(h.blocks[i]);
    struct handoff again = {.n = MANY / 2};
    run_in_thread(allocate_and_exit, &again);
    unsigned reused = 0;
    for (unsigned i = 0; i < again.n; i++)
        for (unsigned j = 0; j < MANY && !reused; j += 2)
            reused += again.blocks[i] == h.blocks[j];
    assert_true(reused > 0);
    for (unsigned i = 1; i < MANY; i += 2)
        check(h.blocks[i], i);
    for (unsigned i = 1; i < MANY; i += 2)
        cci_block_free(h.blocks[i]);
    check_and_free_all(again.blocks, again.n);
    free(h.blocks);
    free(again.blocks);
}

/* Threads allocate, pass blocks to each other through shared slots and
 * free what they take, for a bounded number of operations; every block
 * keeps the tag it was given until freed. */
#define SHUFFLE_THREADS 4
#define SHUFFLE_SLOTS 1024
#define SHUFFLE_OPS 200000

static _Atomic(uintptr_t) slots[SHUFFLE_SLOTS];

static int shuffle(void *arg)
{
    uint32_t rng = (uint32_t)(uintptr_t)arg * 2654435761u + 1;
    for (int op = 0; op < SHUFFLE_OPS; op++) {
        rng ^= rng << 13;
        rng ^= rng >> 17;
        rng ^= rng << 5;
        unsigned k = rng % SHUFFLE_SLOTS;
        void *mine = NULL;
        if (rng & 0x10000) {
            mine = cci_block_alloc();
            if (!mine)
                return -1;
            fill(mine, k);
        }
        /* Acq_rel: the tag written before the exchange is seen by the
         * thread that takes the block. */
        uintptr_t old = atomic_exchange_explicit(
            &slots[k], (uintptr_t)mine, memory_order_acq_rel);
        if (old) {
            check((void *)old, k);
            cci_block_free((void *)old);
        }
    }
    return 0;
}

static void test_many_threads_shuffle(void **state)
{
    (void)state;
    cci_block_free(first_block_or_skip());
    cc_thread *t[SHUFFLE_THREADS];
    for (uintptr_t i = 0; i < SHUFFLE_THREADS; i++) {
        assert_int_equal(cc_thread_new(&t[i], shuffle, (void *)(i + 1), NULL),
                         0);
        assert_int_equal(cc_thread_start(t[i]), 0);
    }
    for (int i = 0; i < SHUFFLE_THREADS; i++) {
        assert_int_equal(cc_thread_join(t[i], CC_SEC(120)), 0);
        int status = -1;
        assert_int_equal(cc_thread_status(t[i], &status), 0);
        assert_int_equal(status, 0);
        cc_thread_unref(t[i]);
    }
    for (unsigned k = 0; k < SHUFFLE_SLOTS; k++) {
        uintptr_t b = atomic_exchange(&slots[k], 0);
        if (b) {
            check((void *)b, k);
            cci_block_free((void *)b);
        }
    }
}

static long resident_pages(void)
{
    FILE *f = fopen("/proc/self/statm", "re");
    assert_non_null(f);
    long size = 0, resident = 0;
    assert_int_equal(fscanf(f, "%ld %ld", &size, &resident), 2);
    fclose(f);
    return resident;
}

/* Futures come from the pool; once freed, cc_future_trim gives their
 * slabs' pages back and the resident size drops. */
static void test_trim_gives_memory_back(void **state)
{
    (void)state;
    cci_block_free(first_block_or_skip());
    enum { N = 40000 }; /* ~60 slabs, under the number kept whole */
    cc_future **fs = malloc(N * sizeof *fs);
    assert_non_null(fs);
    for (int i = 0; i < N; i++) {
        assert_int_equal(cc_future_new(&fs[i]), 0);
        assert_int_equal(cc_future_set_result(fs[i], NULL, NULL), 0);
    }
    for (int i = 0; i < N; i++)
        cc_future_unref(fs[i]);
    free(fs);
    long before = resident_pages();
    size_t released = cc_future_trim();
    long after = resident_pages();
    /* All but the slab this thread still allocates from. */
    assert_true(released >= (size_t)(N / 1000) * 65536);
    assert_true(before - after >= (long)(released / 2 / 4096));
    assert_int_equal(cc_future_trim(), 0); /* nothing left to give */
}

/* The pool hands a freed future's block out again at once: the name of
 * the freed future must not pass to the new one. */
static void test_names_do_not_pass_to_the_next_future(void **state)
{
    (void)state;
    cc_future *a;
    assert_int_equal(cc_future_new(&a), 0);
    assert_int_equal(cc_name_set(a, "download #1"), 0);
    const void *where = a;
    cc_future_unref(a);
    cc_future *b;
    assert_int_equal(cc_future_new(&b), 0);
    char buf[CC_NAME_MAX + 1];
    if ((const void *)b == where) /* pooled: the same block */
        assert_int_equal(cc_name_get(b, buf, sizeof buf), -ENOENT);
    assert_int_equal(cc_name_get(where, buf, sizeof buf), -ENOENT);
    cc_future_unref(b);
}

/* A thread-local destructor that runs after the pool's own exit hook (on
 * glibc's last pass, when keys set again are not visited any more) and
 * allocates a future: its block must not pin a slab forever. */
static cc_local late_local;
static __thread int late_passes;

static void late_destructor(void *value)
{
    if (++late_passes < PTHREAD_DESTRUCTOR_ITERATIONS) {
        (void)cc_local_set(&late_local, value); /* come back next pass */
        return;
    }
    cc_future *f = NULL;
    if (cc_future_new(&f) == 0) {
        (void)cc_future_set_result(f, NULL, NULL);
        cc_future_unref(f);
    }
}

static int set_late_local(void *arg)
{
    (void)arg;
    cci_block_free(cci_block_alloc()); /* the thread has a slab too */
    return cc_local_set(&late_local, &late_local);
}

static void test_late_destructor_pins_no_slab(void **state)
{
    (void)state;
    cci_block_free(first_block_or_skip());
#if defined(__SANITIZE_THREAD__)
    /* ThreadSanitizer finishes the thread in its own last-pass key
     * destructor: instrumented code after it crashes, ours or not. */
    skip();
#endif
    assert_int_equal(cc_local_init(&late_local, late_destructor), 0);
    size_t before = cci_block_slabs_in_use();
    for (int i = 0; i < 3; i++)
        run_in_thread(set_late_local, NULL);
    assert_int_equal(cci_block_slabs_in_use(), before);
    assert_int_equal(cc_local_destroy(&late_local), 0);
}

/* Threads come and go while blocks pass between them: CHURN_LANES threads
 * run at once, each shuffling futures through shared slots for a while and
 * exiting with some still out (its slab detaches with blocks issued, later
 * freed by others, adopted, released); a new thread replaces each. Now and
 * then the main thread forks: the child, with the parent's threads gone
 * mid-operation, frees what the slots hold and allocates and frees several
 * slabs' worth itself. At the end every slab is back in the depot. */
#define CHURN_LANES 3
#define CHURN_SLOTS 512
#define CHURN_OPS 20000

static _Atomic(cc_future *) churn_slots[CHURN_SLOTS];

static int churn(void *arg)
{
    uint32_t rng = (uint32_t)(uintptr_t)arg * 2654435761u + 7;
    for (int op = 0; op < CHURN_OPS; op++) {
        rng ^= rng << 13;
        rng ^= rng >> 17;
        rng ^= rng << 5;
        cc_future *mine = NULL;
        if ((rng & 0x30000) != 0) {
            if (cc_future_new(&mine) != 0)
                return -1;
            (void)cc_future_set_result(mine, (void *)(uintptr_t)(rng % 251),
                                       NULL);
        }
        cc_future *old = atomic_exchange(&churn_slots[rng % CHURN_SLOTS],
                                         mine);
        if (old) {
            void *v = NULL;
            if (cc_future_result(old, 0, &v) != 0 || (uintptr_t)v > 250)
                return -2;
            cc_future_unref(old);
        }
    }
    return 0;
}

static int drain_churn_slots(void)
{
    for (unsigned k = 0; k < CHURN_SLOTS; k++) {
        cc_future *f = atomic_exchange(&churn_slots[k], NULL);
        if (f) {
            if (!cc_future_done(f))
                return -1;
            cc_future_unref(f);
        }
    }
    return 0;
}

/* In a fork child: uses futures heavily, then reports. */
static int child_uses_futures(void)
{
    if (drain_churn_slots() != 0)
        return 1;
    cc_future **fs = malloc(3000 * sizeof *fs);
    if (!fs)
        return 2;
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < 3000; i++)
            if (cc_future_new(&fs[i]) != 0)
                return 3;
        for (int i = 0; i < 3000; i++)
            cc_future_unref(fs[i]);
    }
    free(fs);
    return 0;
}

static void test_threads_come_and_go_and_fork(void **state)
{
    (void)state;
    cci_block_free(first_block_or_skip());
    size_t before = cci_block_slabs_in_use();
    cc_thread *lane[CHURN_LANES] = {0};
    int64_t deadline = cc_monotonic_ns() + CC_SEC(2);
    unsigned started = 0, forks = 0;
    for (unsigned n = 0; n < 120 && cc_monotonic_ns() < deadline; n++) {
        unsigned k = n % CHURN_LANES;
        if (lane[k]) {
            assert_int_equal(cc_thread_join(lane[k], CC_SEC(60)), 0);
            int status = -1;
            assert_int_equal(cc_thread_status(lane[k], &status), 0);
            assert_int_equal(status, 0);
            cc_thread_unref(lane[k]);
        }
        assert_int_equal(
            cc_thread_new(&lane[k], churn, (void *)(uintptr_t)(n + 1), NULL),
            0);
        assert_int_equal(cc_thread_start(lane[k]), 0);
        started++;
        if (n % 6 == 5) {
            pid_t pid = fork();
            assert_true(pid >= 0);
            if (pid == 0)
                _exit(child_uses_futures());
            int status = 0;
            assert_int_equal(waitpid(pid, &status, 0), pid);
            assert_true(WIFEXITED(status));
            assert_int_equal(WEXITSTATUS(status), 0);
            forks++;
        }
    }
    for (unsigned k = 0; k < CHURN_LANES; k++) {
        if (!lane[k])
            continue;
        assert_int_equal(cc_thread_join(lane[k], CC_SEC(60)), 0);
        int status = -1;
        assert_int_equal(cc_thread_status(lane[k], &status), 0);
        assert_int_equal(status, 0);
        cc_thread_unref(lane[k]);
    }
    assert_int_equal(drain_churn_slots(), 0);
    print_message("%u threads, %u forks\n", started, forks);
    assert_int_equal(cci_block_slabs_in_use(), before);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        CCT_TEST(test_blocks_are_distinct_and_whole),
        CCT_TEST(test_blocks_outlive_their_thread),
        CCT_TEST(test_detached_slabs_are_adopted),
        CCT_TEST(test_many_threads_shuffle),
        CCT_TEST(test_trim_gives_memory_back),
        CCT_TEST(test_names_do_not_pass_to_the_next_future),
        CCT_TEST(test_late_destructor_pins_no_slab),
        CCT_TEST(test_threads_come_and_go_and_fork),
    };
    return CCT_RUN(tests);
}
