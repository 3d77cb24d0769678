/*
 * A program that uses an installed concur the way any outside project would:
 * only <concur.h>, linked through CMake's find_package(concur) or through
 * pkg-config. Starts a thread, shares a counter under a lock, uses an event
 * to hand over, checks every result and exits 0 only if all are right.
 */
#include <concur.h>

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>

#if CONCUR_VERSION_MAJOR != 0
#error "this consumer test expects concur 0.x"
#endif

enum { ITERATIONS = 10000 };

struct shared {
    cc_lock lock;
    cc_event ready;
    long counter;
};

static int worker(void *ctx)
{
    struct shared *s = ctx;
    for (int i = 0; i < ITERATIONS; i++) {
        if (cc_lock_acquire(&s->lock, CC_FOREVER) != 0)
            return -1;
        s->counter++;
        cc_lock_release(&s->lock);
    }
    return cc_event_set(&s->ready) == 0 ? 7 : -1;
}

#define CHECK(cond)                                                        \
    do {                                                                   \
        if (!(cond)) {                                                     \
            fprintf(stderr, "consumer: check failed: %s (line %d)\n",      \
                    #cond, __LINE__);                                      \
            return 1;                                                      \
        }                                                                  \
    } while (0)

int main(void)
{
    struct shared s = {.counter = 0};
    cc_thread *t = NULL;
    int status = 0;

    CHECK(cc_lock_init(&s.lock, 0) == 0);
    CHECK(cc_event_init(&s.ready, 0) == 0);
    CHECK(cc_event_wait(&s.ready, CC_NOWAIT) == -ETIMEDOUT);
    CHECK(cc_thread_new(&t, worker, &s, &(cc_thread_options){.name = "consumer"}) == 0);
    CHECK(cc_thread_get_state(t) == CC_THREAD_NEW);
    CHECK(cc_thread_start(t) == 0);
    for (int i = 0; i < ITERATIONS; i++) {
        CHECK(cc_lock_acquire(&s.lock, CC_FOREVER) == 0);
        s.counter++;
        CHECK(cc_lock_release(&s.lock) == 0);
    }
    CHECK(cc_event_wait(&s.ready, cc_seconds(30.0)) == 0);
    CHECK(cc_thread_join(t, CC_SEC(30)) == 0);
    CHECK(cc_thread_get_state(t) == CC_THREAD_TERMINATED);
    CHECK(cc_thread_status(t, &status) == 0 && status == 7);
    CHECK(s.counter == 2L * ITERATIONS);
    CHECK(cc_lock_locked(&s.lock) == false);
    cc_thread_unref(t);
    CHECK(cc_event_destroy(&s.ready) == 0);
    CHECK(cc_lock_destroy(&s.lock) == 0);
    CHECK(cc_strerror(CC_EBROKEN_BARRIER) != NULL);

    printf("consumer: ok\n");
    return 0;
}
