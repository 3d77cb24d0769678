/*
 * shared_counter.c — several threads add 1 to a shared counter many times,
 * first without a lock (updates get lost), then with a cc_lock (exact).
 *
 * The Python it mirrors (threading):
 *
 *     import threading, time
 *
 *     counter = 0
 *     lock = threading.Lock()
 *
 *     def increment():              # racy: read, add, write back
 *         global counter
 *         for i in range(N):
 *             value = counter
 *             if i % 1000 == 999:
 *                 time.sleep(0)     # let other threads run right here
 *             counter = value + 1
 *
 *     def increment_locked():       # correct
 *         global counter
 *         for i in range(N):
 *             with lock:
 *                 value = counter
 *                 if i % 1000 == 999:
 *                     time.sleep(0)
 *                 counter = value + 1
 *
 *     threads = [threading.Thread(target=increment) for _ in range(4)]
 *     ...start them all, join them all, compare counter with 4 * N...
 *
 * An update is lost when another thread writes between one thread's read and
 * its write. C has no GIL: on idle cores the threads run at the same instant
 * and that happens constantly. On a busy machine, though, the threads may
 * take turns on one core, each finishing its loop before the next starts; so
 * every 1000th increment pauses between its read and its write, as real code
 * does when it works or waits in between, and the race shows every time.
 *
 * About the racy version: a plain `counter++` from several threads is a data
 * race, which C calls undefined behaviour. To keep this program well defined
 * while still losing updates, each increment is a relaxed atomic load
 * followed by a separate relaxed atomic store: two threads can both read
 * 41 and both write 42, exactly like Python's `counter += 1`. It is the
 * read-modify-write that must be atomic, and here it is not. This example is
 * built in every configuration, but `make run` runs it only in the normal
 * build, never under ThreadSanitizer (make test-tsan runs the test suite,
 * not the examples). Keep it that way.
 *
 * Usage: shared_counter [ITERATIONS]   per thread (default 1000000).
 */
#include <concur.h>

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

enum { N_THREADS = 4 };

struct shared {
    long iterations;
    cc_event go; /* set once every thread has started, so they overlap */

    _Atomic long racy; /* updated without a lock */

    cc_lock lock;      /* protects `value` */
    long value;
};

/* Gives other threads the chance to run between a read and its write. */
static void pause_sometimes(long i)
{
    if (i % 1000 == 999)
        cc_sleep(CC_USEC(1));
}

static int increment(void *ctx)
{
    struct shared *s = ctx;
    cc_event_wait(&s->go, CC_FOREVER);
    for (long i = 0; i < s->iterations; i++) {
        long value = atomic_load_explicit(&s->racy, memory_order_relaxed);
        pause_sometimes(i);
        /* Other threads may have stored since our load: their updates are
         * overwritten now. */
        atomic_store_explicit(&s->racy, value + 1, memory_order_relaxed);
    }
    return 0;
}

static int increment_locked(void *ctx)
{
    struct shared *s = ctx;
    cc_event_wait(&s->go, CC_FOREVER);
    for (long i = 0; i < s->iterations; i++) {
        cc_lock_acquire(&s->lock, CC_FOREVER); /* with lock: */
        long value = s->value;
        pause_sometimes(i);
        s->value = value + 1;
        cc_lock_release(&s->lock);
    }
    return 0;
}

static void check(int rc, const char *what)
{
    if (rc < 0) {
        fprintf(stderr, "shared_counter: %s: %s\n", what, cc_strerror(rc));
        exit(1);
    }
}

/* Starts N_THREADS threads running fn(s), lets them go together, joins. */
static void run_threads(cc_thread_fn fn, struct shared *s)
{
    cc_thread *threads[N_THREADS];
    check(cc_event_init(&s->go, 0), "event");
    for (int i = 0; i < N_THREADS; i++) {
        check(cc_thread_new(&threads[i], fn, s, NULL), "new");
        check(cc_thread_start(threads[i]), "start");
    }
    check(cc_event_set(&s->go), "set");
    for (int i = 0; i < N_THREADS; i++) {
        check(cc_thread_join(threads[i], CC_FOREVER), "join");
        cc_thread_unref(threads[i]);
    }
    check(cc_event_destroy(&s->go), "event destroy");
}

int main(int argc, char **argv)
{
    struct shared s = {.iterations = argc > 1 ? atol(argv[1]) : 1000000};
    if (s.iterations <= 0) {
        fprintf(stderr, "usage: shared_counter [ITERATIONS]\n");
        return 2;
    }
    check(cc_lock_init(&s.lock, 0), "lock");
    long expected = N_THREADS * s.iterations;

    run_threads(increment, &s);
    long racy = atomic_load(&s.racy);
    printf("without a lock: expected %ld, got %ld (%ld updates lost)\n",
           expected, racy, expected - racy);
    if (racy == expected)
        printf("  no update was lost this time; the race is still there, "
               "run it again or with more iterations\n");

    run_threads(increment_locked, &s);
    printf("with a cc_lock: expected %ld, got %ld\n", expected, s.value);

    check(cc_lock_destroy(&s.lock), "lock destroy");
    return s.value == expected ? 0 : 1;
}
