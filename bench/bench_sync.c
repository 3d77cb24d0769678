/*
 * The sync suite: concur's lock, event and thread start-up against the
 * pthread primitives a C programmer would otherwise use.
 *
 * Every case runs with one extra idle thread alive (see sync_setup), so both
 * sides are measured in the multi-threaded mode a concurrent program is in.
 */
#include "bench.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "concur/error.h"
#include "concur/sync.h"
#include "concur/thread.h"

/* ---- the idle thread ----------------------------------------------------- */

/* glibc's pthread mutex takes a cheaper path while the process has a single
 * thread; a real program that wants a lock has more than one. The idle
 * thread sleeps in a condition wait for the whole suite and costs nothing
 * while the cases run. */
typedef struct sync_state {
    pthread_t idle;
    pthread_mutex_t mutex;
    pthread_cond_t cond;
    int stop;
} sync_state;

static void *idle_main(void *arg)
{
    sync_state *st = arg;
    pthread_mutex_lock(&st->mutex);
    while (!st->stop)
        pthread_cond_wait(&st->cond, &st->mutex);
    pthread_mutex_unlock(&st->mutex);
    return NULL;
}

static int sync_setup(void **state, const char **skip_reason)
{
    sync_state *st = calloc(1, sizeof *st);
    if (!st)
        return -ENOMEM;
    pthread_mutex_init(&st->mutex, NULL);
    pthread_cond_init(&st->cond, NULL);
    int err = pthread_create(&st->idle, NULL, idle_main, st);
    if (err) {
        pthread_cond_destroy(&st->cond);
        pthread_mutex_destroy(&st->mutex);
        free(st);
        return -err;
    }
    *state = st;
    return 0;
}

static void sync_teardown(void *state)
{
    sync_state *st = state;
    pthread_mutex_lock(&st->mutex);
    st->stop = 1;
    pthread_cond_signal(&st->cond);
    pthread_mutex_unlock(&st->mutex);
    pthread_join(st->idle, NULL);
    pthread_cond_destroy(&st->cond);
    pthread_mutex_destroy(&st->mutex);
    free(st);
}

/* ---- lock_uncontended ---------------------------------------------------- */

static int64_t cc_lock_uncontended(void *state, uint64_t iters)
{
    cc_lock lock = CC_LOCK_INIT;
    int64_t t0 = bench_now_ns();
    for (uint64_t i = 0; i < iters; i++) {
        int rc = cc_lock_acquire(&lock, CC_FOREVER);
        if (rc < 0)
            return rc;
        rc = cc_lock_release(&lock);
        if (rc < 0)
            return rc;
    }
    int64_t t = bench_now_ns() - t0;
    int rc = cc_lock_destroy(&lock);
    return rc < 0 ? rc : t;
}

static int64_t mutex_uncontended(void *state, uint64_t iters)
{
    pthread_mutex_t mutex = PTHREAD_MUTEX_INITIALIZER;
    int64_t t0 = bench_now_ns();
    for (uint64_t i = 0; i < iters; i++) {
        int err = pthread_mutex_lock(&mutex);
        if (err)
            return -err;
        err = pthread_mutex_unlock(&mutex);
        if (err)
            return -err;
    }
    int64_t t = bench_now_ns() - t0;
    int err = pthread_mutex_destroy(&mutex);
    return err ? -err : t;
}

/* ---- lock_contended ------------------------------------------------------ */

typedef struct contended {
    cc_lock lock;
    pthread_mutex_t mutex;
    uint64_t counter;    /* guarded by whichever lock the side uses */
    uint64_t per_thread;
} contended;

static int cc_contended_worker(void *ctx, int index)
{
    contended *c = ctx;
    for (uint64_t i = 0; i < c->per_thread; i++) {
        int rc = cc_lock_acquire(&c->lock, CC_FOREVER);
        if (rc < 0)
            return rc;
        c->counter++;
        rc = cc_lock_release(&c->lock);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static int mutex_contended_worker(void *ctx, int index)
{
    contended *c = ctx;
    for (uint64_t i = 0; i < c->per_thread; i++) {
        int err = pthread_mutex_lock(&c->mutex);
        if (err)
            return -err;
        c->counter++;
        err = pthread_mutex_unlock(&c->mutex);
        if (err)
            return -err;
    }
    return 0;
}

/* A lost increment means mutual exclusion failed: a bug, not a figure. */
static int64_t check_count(const char *who, const contended *c, int64_t t)
{
    if (t >= 0 && c->counter != 2 * c->per_thread) {
        fprintf(stderr, "concur bench: %s lost increments: %llu of %llu\n",
                who, (unsigned long long)c->counter,
                (unsigned long long)(2 * c->per_thread));
        return CC_EFAILED;
    }
    return t;
}

static int64_t cc_lock_contended(void *state, uint64_t iters)
{
    contended c = {.lock = CC_LOCK_INIT, .per_thread = iters / 2};
    int64_t t = bench_run_pair(cc_contended_worker, &c);
    int rc = cc_lock_destroy(&c.lock);
    return check_count("cc_lock", &c, t < 0 || rc == 0 ? t : rc);
}

static int64_t mutex_contended(void *state, uint64_t iters)
{
    contended c = {.mutex = PTHREAD_MUTEX_INITIALIZER,
                   .per_thread = iters / 2};
    int64_t t = bench_run_pair(mutex_contended_worker, &c);
    int err = pthread_mutex_destroy(&c.mutex);
    return check_count("pthread_mutex", &c, t < 0 || !err ? t : -err);
}

/* ---- event_pingpong ------------------------------------------------------ */

/* Thread 0 serves with ping and waits for pong; thread 1 answers. Each
 * clears the event it waited on before answering, so a set is never lost:
 * the other side sets it again only after receiving the answer. */
typedef struct event_pingpong {
    cc_event ping;
    cc_event pong;
    uint64_t rounds;
} event_pingpong;

static int event_serve(cc_event *send, cc_event *recv)
{
    int rc = cc_event_set(send);
    if (rc == 0)
        rc = cc_event_wait(recv, CC_FOREVER);
    if (rc == 0)
        rc = cc_event_clear(recv);
    return rc;
}

static int event_answer(cc_event *recv, cc_event *send)
{
    int rc = cc_event_wait(recv, CC_FOREVER);
    if (rc == 0)
        rc = cc_event_clear(recv);
    if (rc == 0)
        rc = cc_event_set(send);
    return rc;
}

static int event_worker(void *ctx, int index)
{
    event_pingpong *pp = ctx;
    for (uint64_t i = 0; i < pp->rounds; i++) {
        int rc = index == 0 ? event_serve(&pp->ping, &pp->pong)
                            : event_answer(&pp->ping, &pp->pong);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static int64_t cc_event_pingpong(void *state, uint64_t iters)
{
    event_pingpong pp = {.ping = CC_EVENT_INIT, .pong = CC_EVENT_INIT,
                         .rounds = iters};
    int64_t t = bench_run_pair(event_worker, &pp);
    int rc = cc_event_destroy(&pp.ping);
    if (rc == 0)
        rc = cc_event_destroy(&pp.pong);
    return t < 0 || rc == 0 ? t : rc;
}

/* The textbook condition-variable ping-pong: one mutex, one condvar, and a
 * turn word saying whose move it is. */
typedef struct cond_pingpong {
    pthread_mutex_t mutex;
    pthread_cond_t cond;
    int turn;
    uint64_t rounds;
} cond_pingpong;

static int cond_worker(void *ctx, int index)
{
    cond_pingpong *pp = ctx;
    int mine = index, theirs = 1 - index;
    pthread_mutex_lock(&pp->mutex);
    for (uint64_t i = 0; i < pp->rounds; i++) {
        while (pp->turn != mine)
            pthread_cond_wait(&pp->cond, &pp->mutex);
        pp->turn = theirs;
        pthread_cond_signal(&pp->cond);
    }
    pthread_mutex_unlock(&pp->mutex);
    return 0;
}

static int64_t cond_pingpong_run(void *state, uint64_t iters)
{
    cond_pingpong pp = {.mutex = PTHREAD_MUTEX_INITIALIZER,
                        .cond = PTHREAD_COND_INITIALIZER,
                        .rounds = iters};
    int64_t t = bench_run_pair(cond_worker, &pp);
    pthread_cond_destroy(&pp.cond);
    pthread_mutex_destroy(&pp.mutex);
    return t;
}

/* ---- thread_spawn_join --------------------------------------------------- */

static int empty_thread(void *ctx)
{
    return 0;
}

static void *empty_pthread(void *ctx)
{
    return NULL;
}

static int spawn_join_once(void)
{
    cc_thread *t;
    int rc = cc_thread_new(&t, empty_thread, NULL, NULL);
    if (rc < 0)
        return rc;
    rc = cc_thread_start(t);
    if (rc == 0)
        rc = cc_thread_join(t, CC_FOREVER);
    cc_thread_unref(t);
    return rc;
}

static int64_t cc_thread_spawn_join(void *state, uint64_t iters)
{
    int64_t t0 = bench_now_ns();
    for (uint64_t i = 0; i < iters; i++) {
        int rc = spawn_join_once();
        if (rc < 0)
            return rc;
    }
    return bench_now_ns() - t0;
}

static int64_t pthread_spawn_join(void *state, uint64_t iters)
{
    int64_t t0 = bench_now_ns();
    for (uint64_t i = 0; i < iters; i++) {
        pthread_t tid;
        int err = pthread_create(&tid, NULL, empty_pthread, NULL);
        if (err)
            return -err;
        err = pthread_join(tid, NULL);
        if (err)
            return -err;
    }
    return bench_now_ns() - t0;
}

/* ---- the suite ----------------------------------------------------------- */

/* Budgets from DESIGN.md: an uncontended lock costs at most 1.2x a pthread
 * mutex (speedup >= 1/1.2); everything else is at least on par. */
static const bench_case sync_cases[] = {
    {"lock_uncontended", "ns/op", 1, 1, 0.83,
     {"cc_lock", cc_lock_uncontended},
     {"pthread_mutex", mutex_uncontended}},
    {"lock_contended", "ns/op", 1, 2, 1.0,
     {"cc_lock", cc_lock_contended},
     {"pthread_mutex", mutex_contended}},
    {"event_pingpong", "ns/roundtrip", 1, 1, 1.0,
     {"cc_event", cc_event_pingpong},
     {"pthread_mutex+cond", cond_pingpong_run}},
    {"thread_spawn_join", "us/op", 1e3, 1, 1.0,
     {"cc_thread", cc_thread_spawn_join},
     {"pthread_create+join", pthread_spawn_join}},
};

const bench_suite bench_suite_sync = {
    .name = "sync",
    .summary = "locks, events and thread start-up against pthreads",
    .cases = sync_cases,
    .n_cases = sizeof sync_cases / sizeof sync_cases[0],
    .setup = sync_setup,
    .teardown = sync_teardown,
};
