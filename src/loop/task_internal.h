/*
 * task_internal.h — what coroutine primitives (async_sync.c, streams) need
 * from tasks: the running task, suspending it and waking it.
 */
#ifndef CCI_TASK_INTERNAL_H
#define CCI_TASK_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "concur/thread.h"

struct cci_task;

/* What a task is about to wait for, as the thread dump shows it. */
struct cci_await {
    cc_wait_kind kind;
    const void *object; /* named through the name table, never dereferenced
                           by the dump; NULL for a sleep */
    const char *op;     /* a string literal ("get", "read", ...) or NULL */
    int64_t number;     /* I/O: the fd; futures: how many (-1: none) */
    const void *fn;     /* awaiting one task: that task's function */
};

/*
 * Records that t (the running task) waits for (kind, object, op, number:
 * the fields of struct cci_await; a future's task function is looked up
 * here) until its next cci_task_await, from now (coarsely) to deadline
 * (absolute; the innermost timeout scope's counts too). Call it once per
 * wait, before the first cci_task_suspend: the dump shows it while t is
 * suspended. Costs a coarse clock read and a few plain stores.
 */
void cci_task_await(struct cci_task *t, cc_wait_kind kind, const void *object,
                    const char *op, int64_t number, int64_t deadline);

/* The task running on this thread, or NULL. */
struct cci_task *cci_task_running(void);

/* Whether cancellation was requested (sticky: every wait must fail). */
bool cci_task_cancel_requested(const struct cci_task *t);

/*
 * Suspends t (the running task) until cci_task_wake, the absolute deadline
 * (CCI_NO_DEADLINE: none) or, with scoped, the innermost timeout scope's
 * deadline. Returns the reason: 0, -ETIMEDOUT, -ECANCELED, or -ENOMEM.
 * May return 0 spuriously; callers re-check their condition.
 */
int cci_task_suspend(struct cci_task *t, int64_t deadline, bool scoped);

/* Queues a suspended t to resume with rc; ignored if t is not suspended
 * (the first reason wins). Loop thread. */
void cci_task_wake(struct cci_task *t, int rc);

/* ---- waiter lists: tasks parked on a coroutine primitive --------------------
 * A node lives in its waiting task (a task waits on one list at a time);
 * everything runs on the loop thread, so no lock is needed. */
struct cci_waiter {
    struct cci_waiter *prev, *next;
    struct cci_task *task;
    bool woken; /* a wake-up was handed to this node */
};

struct cci_waitlist {
    struct cci_waiter *head, *tail;
};

/*
 * Parks the running task on l until woken, the deadline, a scope's
 * deadline, or cancellation; kind, object and op say what it waits for
 * (see cci_task_await).
 * Returns 0 when woken, else -ETIMEDOUT, -ECANCELED, -ENOMEM; -EPERM
 * outside a task. A node that was woken but returns an error passes its
 * wake-up on to the next waiter, so none is lost.
 */
int cci_waitlist_wait(struct cci_waitlist *l, int64_t deadline,
                      cc_wait_kind kind, const void *object, const char *op);
/* Wakes the first waiter (returns whether there was one), or all. */
bool cci_waitlist_wake_one(struct cci_waitlist *l);
void cci_waitlist_wake_all(struct cci_waitlist *l);

#endif /* CCI_TASK_INTERNAL_H */
