/*
 * thread_internal.h — the thread record shared by thread.c (life cycle),
 * registry.c (the set of live threads, current/main/foreign threads, process
 * exit) and timer.c.
 */
#ifndef CCI_THREAD_INTERNAL_H
#define CCI_THREAD_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "concur/thread.h"

/* Where a record came from. Foreign records describe threads concur did not
 * start (the main thread, raw pthreads); they cannot be started and are
 * never pthread_join'ed by concur. */
enum cci_thread_origin {
    CCI_ORIGIN_CONCUR,
    CCI_ORIGIN_MAIN,
    CCI_ORIGIN_FOREIGN
};

struct cci_name {
    struct cci_name *older;
    char text[];
};

struct cc_thread {
    /* Fields read by other threads at any time: accessed with __atomic. */
    uint32_t refs;
    uint32_t state;   /* cc_thread_state */
    uint32_t done;    /* futex word: 0 until the function has returned */
    uint32_t joiners; /* threads sleeping (or about to) on done */
    uint32_t started; /* 1 once start succeeded (or foreign) */
    uint32_t reaped;  /* 1 once pthread_join or pthread_detach was called */
    int64_t native_id;
    uint64_t ident;

    /* What the thread waits on, written only by the thread itself under a
     * sequence lock (wait_seq odd while it writes) so readers see a
     * consistent triple without taking a lock on the blocking path. */
    uint32_t wait_seq;
    uint32_t wait_kind;
    const void *wait_object;
    int64_t wait_since;

    /* Set before start, read by the thread after pthread_create (which
     * orders them). */
    cc_thread_fn fn;
    void *ctx;
    size_t stack_size;
    bool daemon;
    enum cci_thread_origin origin;
    pthread_t handle;

    /* Written by the thread before done is set, read by others after they
     * saw done == 1 (acquire), so no lock is needed. */
    int status;
    char *error_message;

    /* The current name (atomic pointer). A rename never frees the old
     * text, which a reader may still use: it is kept on the new block's
     * `older` chain until the record is freed. */
    struct cci_name *name;

    /* Registry links, guarded by the registry lock. */
    struct cc_thread *prev, *next;
    bool registered;
};

/* The record of the calling thread, or NULL if it has none yet. */
struct cc_thread *cci_thread_self(void);
/* Makes t the calling thread's record (for foreign threads). */
void cci_thread_set_self(struct cc_thread *t);
/* The record of the calling thread, created for a foreign thread if needed.
 * NULL only when out of memory. */
struct cc_thread *cci_thread_self_or_create(void);

/* Registry (registry.c). The registry holds no reference of its own: a
 * concur thread is registered from start until its function returns, while
 * it holds a reference to itself. */
void cci_registry_add(struct cc_thread *t);
void cci_registry_remove(struct cc_thread *t);
/* Called once by the first successful start: installs the atexit handler
 * that joins non-daemon threads. */
void cci_registry_arm_exit_join(void);
/* Runs fn(t, ctx) with the registry lock held if t is registered; returns
 * whether it was. Used to act on a live thread's pthread handle safely. */
bool cci_registry_with_live(struct cc_thread *t,
                            void (*fn)(struct cc_thread *t, void *ctx),
                            void *ctx);

/* Allocation of a zeroed record with one reference, state NEW. */
struct cc_thread *cci_thread_alloc(const char *name, enum cci_thread_origin o);
/* Numbers for default names: "Thread-N", "Dummy-N", "Timer-N". */
unsigned long cci_thread_next_number(void);
uint64_t cci_thread_next_ident(void);

/* Marks a record TERMINATED with the given status and wakes its joiners. */
void cci_thread_finish(struct cc_thread *t, int status);

#endif /* CCI_THREAD_INTERNAL_H */
