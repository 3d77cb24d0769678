/*
 * registry.c — the set of live threads (enumerate, active_count), records
 * for threads concur did not start (MainThread, Dummy-N), the join of
 * non-daemon threads at process exit, and the state of the registry in a
 * fork()ed child.
 *
 * Lock order: the registry lock is a leaf; nothing else is acquired while it
 * is held, except malloc in enumerate.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "platform/platform.h"
#include "thread/thread_internal.h"

static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static struct cc_thread *reg_head; /* guarded by reg_lock */
static size_t reg_count;           /* guarded by reg_lock */
static struct cc_thread *main_record; /* guarded by reg_lock */

static unsigned long name_counter;
static uint64_t ident_counter;

unsigned long cci_thread_next_number(void)
{
    return __atomic_add_fetch(&name_counter, 1, __ATOMIC_RELAXED);
}

uint64_t cci_thread_next_ident(void)
{
    return __atomic_add_fetch(&ident_counter, 1, __ATOMIC_RELAXED);
}

static void add_locked(struct cc_thread *t)
{
    t->prev = NULL;
    t->next = reg_head;
    if (reg_head)
        reg_head->prev = t;
    reg_head = t;
    t->registered = true;
    reg_count++;
}

static void remove_locked(struct cc_thread *t)
{
    if (!t->registered)
        return;
    if (t->prev)
        t->prev->next = t->next;
    else
        reg_head = t->next;
    if (t->next)
        t->next->prev = t->prev;
    t->prev = t->next = NULL;
    t->registered = false;
    reg_count--;
}

void cci_registry_add(struct cc_thread *t)
{
    pthread_mutex_lock(&reg_lock);
    add_locked(t);
    pthread_mutex_unlock(&reg_lock);
}

void cci_registry_remove(struct cc_thread *t)
{
    pthread_mutex_lock(&reg_lock);
    remove_locked(t);
    pthread_mutex_unlock(&reg_lock);
}

bool cci_registry_with_live(struct cc_thread *t,
                            void (*fn)(struct cc_thread *t, void *ctx),
                            void *ctx)
{
    pthread_mutex_lock(&reg_lock);
    bool live = t->registered;
    if (live)
        fn(t, ctx);
    pthread_mutex_unlock(&reg_lock);
    return live;
}

/* ---- foreign threads ----------------------------------------------------- */

static pthread_key_t foreign_key;
static pthread_once_t foreign_once = PTHREAD_ONCE_INIT;

/* Runs when a foreign thread with a record exits. */
static void foreign_exit(void *value)
{
    struct cc_thread *t = value;
    cci_thread_finish(t, 0);
    cci_thread_set_self(NULL);
    cc_thread_unref(t);
}

static void fork_prepare(void)
{
    pthread_mutex_lock(&reg_lock);
}

static void fork_parent(void)
{
    pthread_mutex_unlock(&reg_lock);
}

/* Only the forking thread exists in the child: every other record describes
 * a thread that is gone. Mark them terminated (their memory stays with
 * whoever holds references) so that enumerate, join and the exit handler
 * see the truth, and let the forking thread be the child's main thread. */
static void fork_child(void)
{
    struct cc_thread *self = cci_thread_self();
    struct cc_thread *t = reg_head;
    while (t) {
        struct cc_thread *next = t->next;
        if (t != self) {
            remove_locked(t);
            __atomic_store_n(&t->reaped, 1, __ATOMIC_RELAXED);
            __atomic_store_n(&t->state, CC_THREAD_TERMINATED,
                             __ATOMIC_RELAXED);
            __atomic_store_n(&t->done, 1, __ATOMIC_RELEASE);
        }
        t = next;
    }
    if (self)
        __atomic_store_n(&self->native_id, (int64_t)getpid(),
                         __ATOMIC_RELAXED);
    main_record = self;
    pthread_mutex_unlock(&reg_lock);
}

static void foreign_init(void)
{
    pthread_key_create(&foreign_key, foreign_exit);
    pthread_atfork(fork_prepare, fork_parent, fork_child);
}

static struct cc_thread *make_foreign(enum cci_thread_origin origin,
                                      int64_t native_id)
{
    char name[32];
    if (origin == CCI_ORIGIN_MAIN)
        snprintf(name, sizeof name, "MainThread");
    else
        snprintf(name, sizeof name, "Dummy-%lu", cci_thread_next_number());
    struct cc_thread *t = cci_thread_alloc(name, origin);
    if (!t)
        return NULL;
    /* Python's dummy threads are daemons; its main thread is not. */
    t->daemon = origin == CCI_ORIGIN_FOREIGN;
    t->started = 1;
    t->reaped = 1;
    t->state = CC_THREAD_RUNNING;
    t->native_id = native_id;
    t->ident = cci_thread_next_ident();
    return t;
}

/* Called with reg_lock held. */
static struct cc_thread *main_locked(void)
{
    if (!main_record) {
        main_record = make_foreign(CCI_ORIGIN_MAIN, (int64_t)getpid());
        if (main_record)
            add_locked(main_record);
    }
    return main_record;
}

struct cc_thread *cci_thread_self_or_create(void)
{
    struct cc_thread *t = cci_thread_self();
    if (t)
        return t;
    pthread_once(&foreign_once, foreign_init);
    uint32_t tid = cci_gettid();
    if ((pid_t)tid == getpid()) {
        pthread_mutex_lock(&reg_lock);
        t = main_locked();
        pthread_mutex_unlock(&reg_lock);
        /* The main record lives until exit: no destructor. */
        cci_thread_set_self(t);
        return t;
    }
    t = make_foreign(CCI_ORIGIN_FOREIGN, (int64_t)tid);
    if (!t)
        return NULL;
    if (pthread_setspecific(foreign_key, t) != 0) {
        cc_thread_unref(t);
        return NULL;
    }
    cci_registry_add(t);
    cci_thread_set_self(t);
    return t;
}

cc_thread *cc_thread_current(void)
{
    return cci_thread_self_or_create();
}

cc_thread *cc_thread_main(void)
{
    pthread_once(&foreign_once, foreign_init);
    pthread_mutex_lock(&reg_lock);
    struct cc_thread *t = main_locked();
    pthread_mutex_unlock(&reg_lock);
    return t;
}

size_t cc_thread_active_count(void)
{
    cc_thread_main(); /* Python always counts the main thread */
    pthread_mutex_lock(&reg_lock);
    size_t n = reg_count;
    pthread_mutex_unlock(&reg_lock);
    return n;
}

int cc_thread_enumerate(cc_thread ***out, size_t *count)
{
    if (!out || !count)
        return -EINVAL;
    cc_thread_main();
    pthread_mutex_lock(&reg_lock);
    cc_thread **list = malloc((reg_count ? reg_count : 1) * sizeof *list);
    if (!list) {
        pthread_mutex_unlock(&reg_lock);
        return -ENOMEM;
    }
    size_t n = 0;
    for (struct cc_thread *t = reg_head; t; t = t->next)
        list[n++] = cc_thread_ref(t);
    pthread_mutex_unlock(&reg_lock);
    *out = list;
    *count = n;
    return 0;
}

void cc_thread_list_free(cc_thread **list, size_t count)
{
    if (!list)
        return;
    for (size_t i = 0; i < count; i++)
        cc_thread_unref(list[i]);
    free(list);
}

/* ---- process exit -------------------------------------------------------- */

/* Joins, one at a time, every live non-daemon thread started by concur other
 * than the caller, as Python's threading._shutdown does. A thread started
 * while this runs is found by the next pass. */
static void join_non_daemon_threads(void)
{
    struct cc_thread *self = cci_thread_self();
    for (;;) {
        struct cc_thread *victim = NULL;
        pthread_mutex_lock(&reg_lock);
        for (struct cc_thread *t = reg_head; t; t = t->next) {
            if (t != self && t->origin == CCI_ORIGIN_CONCUR && !t->daemon) {
                victim = cc_thread_ref(t);
                break;
            }
        }
        pthread_mutex_unlock(&reg_lock);
        if (!victim)
            return;
        cc_thread_join(victim, CC_FOREVER);
        cc_thread_unref(victim);
    }
}

static pthread_once_t exit_once = PTHREAD_ONCE_INIT;

static void arm_exit_join(void)
{
    pthread_once(&foreign_once, foreign_init);
    atexit(join_non_daemon_threads);
}

void cci_registry_arm_exit_join(void)
{
    pthread_once(&exit_once, arm_exit_join);
}
