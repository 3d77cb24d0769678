/*
 * loop_internal.h — the loop's layout and the internal API that tasks,
 * streams and the executor bridge build on.
 *
 * Everything here belongs to the loop's thread except where a comment says
 * otherwise: the threadsafe queue's producer side (cci_loop_push_remote),
 * the notified word and remote_refs.
 */
#ifndef CCI_LOOP_INTERNAL_H
#define CCI_LOOP_INTERNAL_H

#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "concur/loop.h"
#include "concur/trace.h"
#include "future/future_internal.h"
#include "loop/task_internal.h"
#include "platform/poller.h"

/* ---- handles ----------------------------------------------------------------
 * A handle is one scheduled call. It sits in at most one of: the ready list
 * (queued), the timer heap (heap_index valid), the threadsafe queue.
 *
 * state says what will happen to it; `queued` says whether it is physically
 * linked in the ready list. They differ for a handle cancelled while queued:
 * it stays linked (a singly linked list cannot unlink in O(1)) and is
 * skipped when reached. An embedded handle revived while still linked just
 * becomes READY again and runs at its old position, so it is never linked
 * twice.
 *
 * Library-allocated handles are reference counted (not atomically: see the
 * thread rule in loop.h): one reference for the loop while scheduled, one
 * for the caller who asked for it. Embedded handles (flag EMBEDDED) live in
 * another object (a task, an fd watcher) and are never freed here.
 */
enum cci_handle_state {
    CCI_H_IDLE,   /* embedded handle at rest */
    CCI_H_READY,  /* will run in the ready list */
    CCI_H_TIMER,  /* in the timer heap */
    CCI_H_REMOTE, /* in the threadsafe queue */
    CCI_H_DONE,   /* ran (or is running) */
    CCI_H_CANCELLED
};

#define CCI_HANDLE_EMBEDDED 1u
/* Runs even when cc_loop_close drops the ready list: internal handles whose
 * function frees their owner (wakers, deferred frees). */
#define CCI_HANDLE_RUN_AT_CLOSE 2u
/* The handle is a block_pool.h block (call_soon from any thread allocates
 * one per call: the producer's own slab, no malloc lock; the loop thread's
 * free is one CAS), not malloc's. */
#define CCI_HANDLE_POOLED 4u

struct cc_handle {
    struct cc_handle *next;                /* ready list */
    struct cc_handle *_Atomic remote_next; /* threadsafe queue */
    cc_loop_fn fn;
    void *ctx;
    cc_loop *loop;
    int64_t when;        /* timers: due time */
    uint64_t seq;        /* timers: FIFO among equal due times */
    uint32_t heap_index; /* timers: position in the heap */
    uint32_t refs;
    uint8_t state;
    uint8_t flags;
    bool queued;
};

/* Prepares an embedded handle (state IDLE). */
void cci_handle_init_embedded(cc_handle *h, cc_loop *loop, cc_loop_fn fn,
                              void *ctx);

/*
 * Calls free_fn(loop, obj) once the ready list no longer links h (an
 * embedded handle inside obj): at once if h is not linked, else when the
 * loop reaches h, which is repurposed for that (also during close). Loop
 * thread.
 */
void cci_loop_free_after(cc_loop *loop, cc_handle *h, void *obj,
                         cc_loop_fn free_fn);

/* Appends h to the ready list (or revives it where it is linked). The
 * handle must be IDLE, CANCELLED or DONE; an embedded one that is already
 * READY is left alone. */
void cci_loop_ready(cc_loop *loop, cc_handle *h);

/* Puts h (embedded, not scheduled) in the timer heap, due at when.
 * Errors: -ENOMEM (the heap could not grow). */
int cci_loop_timer_add(cc_loop *loop, cc_handle *h, int64_t when);
/* Takes a scheduled timer out of the heap (state IDLE); false if h was not
 * in the heap. O(log n). */
bool cci_loop_timer_remove(cc_loop *loop, cc_handle *h);

/* ---- the threadsafe queue (Vyukov's intrusive MPSC queue) -------------------
 * Producers: one exchange on head, one store to link. The consumer (the
 * loop) pops from tail. A producer preempted between its exchange and its
 * link leaves the queue "in transit": the consumer sees that the queue is
 * not empty but cannot reach the node yet; it then polls instead of
 * sleeping until the link appears.
 */
struct cci_mpsc {
    cc_handle *_Atomic head; /* last pushed; producers */
    cc_handle *tail;         /* next to pop; consumer */
    cc_handle stub;
};

/* Any thread: pushes h (which is no longer touched by the caller after
 * this returns, nor during it once linked) and wakes the loop if it went
 * from nothing pending to something pending. */
void cci_loop_push_remote(cc_loop *loop, cc_handle *h);

/* ---- wakers: foreign future completions brought to the loop thread ----------
 * A waker is a callback node on a future plus an embedded handle. When the
 * future completes, in whatever thread, the handle is queued on the loop
 * (directly if that thread runs the loop, else through the threadsafe
 * queue) and fn(w) later runs on the loop's thread. The caller keeps the
 * future alive while the waker is armed.
 *
 * remote_refs counts armed wakers so that cc_loop_close can wait until no
 * other thread can still touch the loop through one.
 */
typedef struct cci_waker cci_waker;
struct cci_waker {
    struct cci_future_callback node;
    cc_handle handle;
    cc_loop *loop;
    cc_future *future; /* borrowed: the arming code holds a reference */
    /* fired: the future completed. false only when cc_loop_close disarmed
     * the waker by force (the owner then cleans up without an outcome). */
    void (*fn)(cci_waker *w, bool fired);
    cci_waker *prev, *next; /* loop->wakers while armed */
    bool armed;             /* in loop->wakers: fn not yet called */
    bool registered;        /* the node is on the future (or firing) */
};

/* Arms w on f: fn(w, true) will run on the loop thread once f is done (at
 * the next iteration if f is done already). */
void cci_waker_arm(cc_loop *loop, cci_waker *w, cc_future *f,
                   void (*fn)(cci_waker *w, bool fired));
/* Disarms w if f has not fired it yet and returns true (fn will not run).
 * Returns true as well if fn has already run. Returns false when the
 * completion is in flight: fn will still run later, so w must stay valid
 * until then. */
bool cci_waker_disarm(cci_waker *w);

/* ---- fd watchers ------------------------------------------------------------
 * The poller reports an fd with the cci_io registered for it; on_event runs
 * while events are collected, before any callback of the iteration, so it
 * must only queue work, never run user code or free an io.
 */
struct cci_io {
    void (*on_event)(cc_loop *loop, struct cci_io *io, uint32_t events);
    int fd;
    uint32_t registered; /* CCI_POLL_* now registered with the poller */
};

/* Sets the registration of io->fd to events (0: none). Errors: negative
 * errno. */
int cci_loop_io_set(cc_loop *loop, struct cci_io *io, uint32_t events);

struct cci_fdw {
    struct cci_io io;
    cc_handle reader; /* fn NULL: no reader */
    cc_handle writer;
};

/* ---- signals ------------------------------------------------------------- */

struct cci_sigwatch {
    cc_handle handle;
    struct sigaction old;
    bool active;
};

/* For cc_loop_close (io.c): remove every handler and fd watcher. The ready
 * list must be empty: queued handles may point into these records. */
void cci_loop_drop_signals(cc_loop *loop);
void cci_loop_drop_fds(cc_loop *loop);

/* ---- the loop ------------------------------------------------------------ */

/* OPEN -> CLOSING (cc_loop_close running: tasks are cancelled and run to
 * their end, new work is still accepted from them) -> CLOSED (everything
 * that schedules work fails with CC_ESHUTDOWN). Only close moves it. */
enum cci_loop_state { CCI_LOOP_OPEN, CCI_LOOP_CLOSING, CCI_LOOP_CLOSED };
struct cci_child;

struct cci_task;

struct cc_loop {
    cci_poller *poller;

    cc_handle *ready_head, *ready_tail;

    cc_handle **heap; /* min-heap on (when, seq) */
    uint32_t heap_len, heap_cap;
    uint64_t timer_seq;

    struct cci_mpsc remote;
    /* 1 once something was pushed since the loop last looked: producers
     * write the eventfd only when they flip it 0 -> 1 (see push_remote). */
    _Atomic uint32_t notified;
    bool remote_in_transit;
    _Atomic int64_t remote_refs;

    struct cci_fdw **fds; /* indexed by fd */
    int fds_len;

    int sigpipe[2]; /* -1 until a signal handler is added */
    struct cci_io sigio;
    struct cci_sigwatch *sig[NSIG];

    /* Thread running the loop (kernel id), 0 when not running. Written
     * only by that thread, read by others to refuse them. */
    _Atomic uint32_t running_tid;
    bool stopping;
    bool io_active;    /* the last poll found fd events: spin before sleeping */
    _Atomic int state; /* enum cci_loop_state; read by other threads */

    cc_executor *executor;
    bool own_executor;

    cci_waker *wakers;          /* armed wakers, for cc_loop_close */
    struct cci_child *children; /* watched children (bridge.c) */

    /* Tasks not yet finished (see task.c), newest first. The thread dump
     * walks the list from another thread: a task is linked at the head
     * with a release store of `tasks` (its fields are set before), and
     * unlinked holding tasks_latch, which the dump's walk holds too, so it
     * never reaches a task that is gone. Only a finish takes the latch,
     * never a creation or a switch (task.c). */
    struct cci_task *tasks;
    uint32_t tasks_latch;
    size_t stack_size;
    size_t stack_cache_max;
    void *stack_cache; /* cci_stack[stack_cache_max] of free stacks (task.c) */
    size_t stack_cache_len;

    /* Counters the thread dump reads from other threads (with heap_len
     * and running_tid above). Only the loop's thread writes them, with
     * relaxed atomic stores of plain values (no read-modify-write): on
     * x86 they compile to the plain moves they were, so the hot paths pay
     * nothing; a reader sees each one whole, a moment stale at worst. */
    size_t task_count;    /* tasks not yet finished */
    size_t tasks_ready;   /* of those, queued to run */
    size_t fds_watched;   /* fds registered with the poller */
    uint32_t creator_tid; /* the thread that made the loop */

    /* The registry of live loops (loop_dump.c), guarded by its lock. */
    cc_loop *live_prev, *live_next;
    bool live;
};

/* Owner-thread updates of the counters above. */
static inline void cci_loop_count(size_t *counter, size_t value)
{
    __atomic_store_n(counter, value, __ATOMIC_RELAXED);
}

/* The loop running on this thread, or NULL. */
cc_loop *cci_loop_running(void);

/* 0 if the calling thread may use loop now; -EPERM if another thread runs
 * it. */
int cci_loop_check_thread(const cc_loop *loop);

/* For cc_loop_close (task.c): cancels every task still alive; frees the
 * cached stacks. */
void cci_loop_cancel_all_tasks(cc_loop *loop);
void cci_loop_free_stacks(cc_loop *loop);

/* The registry of live loops, for the thread dump (loop_dump.c): a loop
 * is listed from cc_loop_new until cc_loop_close has closed it. Unlisting
 * is idempotent. */
void cci_loop_list(cc_loop *loop);
void cci_loop_unlist(cc_loop *loop);

/* For cc_dump (trace/dump.c): prints every live loop, its counters and up
 * to 32 of its tasks with what each awaits. thread_name(tid, ctx) names
 * the thread with kernel id tid, or returns NULL. Returns false, having
 * printed nothing, if the list of loops stayed busy for 100 ms. */
bool cci_loops_dump(FILE *out,
                    const char *(*thread_name)(uint32_t tid, void *ctx),
                    void *ctx);

/* One task as the dump prints it: a copy taken under tasks_latch, since
 * the task may finish while the dump prints. */
struct cci_task_info {
    char name[CC_NAME_MAX + 1]; /* the future's name, or "" */
    const void *future;         /* identifies the task; never dereferenced */
    const void *fn;             /* the task's function */
    int state;                  /* enum cci_task_shown */
    struct cci_await await;     /* when WAITING */
    int64_t since_coarse;       /* when the wait began (cci_now_coarse_ns) */
    int64_t deadline;           /* when it times out, or CCI_NO_DEADLINE */
};
enum cci_task_shown { CCI_TASK_READY, CCI_TASK_RUNNING, CCI_TASK_WAITING };

/* Copies up to max of loop's tasks (newest first) into out; returns how
 * many, or -EBUSY if the list stayed busy for 100 ms. Any thread. */
int cci_loop_task_infos(cc_loop *loop, struct cci_task_info *out, int max);

/* For cc_loop_close (bridge.c): drops every watched child. */
void cci_loop_drop_children(cc_loop *loop);

/* 0 when the loop accepts new work, CC_ESHUTDOWN once closed. */
int cci_loop_check_open(const cc_loop *loop);

#endif /* CCI_LOOP_INTERNAL_H */
