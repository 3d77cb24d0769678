/*
 * mpi_pool.c — the MPI pool: start-up on every rank, and on rank 0 the
 * executor (submit, shutdown) and its communication thread.
 *
 * Threads. cc_mpi_pool_new starts the pool thread, which initializes MPI
 * if needed (so it is MPI's "main thread" and MPI_THREAD_FUNNELED is
 * enough) and makes every MPI call of this process from then on. On a
 * worker rank it runs the worker loop (mpi_worker.c) while the caller
 * waits for it. On rank 0 it is the communication thread below; program
 * threads only touch the submission queue under the pool's lock.
 *
 * A task's life on rank 0: submit encodes the request (one copy of the
 * input), gives it an id and appends it to the queue (PENDING; the
 * future's extra storage holds the record). The comm thread takes it when
 * a worker rank has room in its window, marks it RUNNING (a cancelled one
 * is dropped there), sends it with MPI_Isend and puts it on that worker's
 * in-flight list. Worker ranks answer in order, so a result must carry the
 * id of the oldest in-flight task of its rank, and completes it.
 *
 * Lock order: the pool's lock is a leaf; no MPI call, no future completion
 * and no user code runs under it. Fields are either under the lock, or the
 * comm thread's alone (marked), or set before the pool is published.
 *
 * Waiting: after the last message the comm thread keeps polling for a
 * while (mpi_internal.h); then, with tasks in flight, it polls between
 * sleeps of 10 us doubling to 200 us (a submit ends a sleep at once), and
 * with nothing in flight it sleeps on a condition variable until a submit
 * or a shutdown.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "concur/error.h"
#include "concur/mpi.h"
#include "executor/executor_internal.h"
#include "future/future_internal.h"
#include "mpi/mpi_internal.h"
#include "platform/platform.h"
#include "process/wire.h"
#include "time/deadline.h"

#define DEFAULT_GRACE_NS ((int64_t)10 * 1000000000)
/* Results received per round before the comm thread looks at the queue
 * again, so a flood of results does not starve dispatching. */
#define RESULTS_PER_ROUND 64

enum mp_state { MP_RUNNING, MP_SHUTDOWN, MP_BROKEN };

/* A task, in its future's extra storage; the pool holds one reference to
 * the future from submit until the task is finished or dropped. */
struct mtask {
    struct mtask *next; /* in the queue, then in a worker's in-flight list */
    cc_future *future;
    uint64_t id;
    uint8_t *msg; /* the encoded request, until handed to MPI_Isend */
    size_t msg_len;
    size_t data_len;  /* an out-of-line result: its length */
    const char *name; /* the registration's name (static storage) */
};

/* A worker rank, as the comm thread sees it (comm thread only). */
struct mworker {
    int rank;
    unsigned inflight;
    struct mtask *head, *tail; /* sent, not answered, oldest first */
    /* Answered with an out-of-line result whose data message has not been
     * matched yet, oldest first (the data messages come in this order). */
    struct mtask *await_head, *await_tail;
    uint64_t last_id;    /* the last request sent to it */
    int64_t head_since;  /* when the oldest in-flight task started,
                            at the latest: when it was sent or when
                            its predecessor's result arrived */
    int64_t last_active; /* when it last sent a result */
    bool retired;        /* no more tasks; its messages are dropped */
    bool bye;
};

struct mpool {
    cc_executor base;

    /* Options, set before the pool thread starts. */
    unsigned window_opt;
    uint64_t max_payload_opt;
    int64_t time_limit; /* 0: none */
    int64_t grace;

    pthread_mutex_t lock;
    pthread_cond_t wake;    /* the comm thread sleeps here */
    pthread_cond_t changed; /* started / exited */
    /* Under lock: */
    struct mtask *head, *tail; /* accepted, not yet sent */
    bool comm_sleeping;
    bool started, exited;
    int start_status;
    char broken_msg[256];
    int broken_code;
    /* Written under lock, read without it by the comm thread's polling
     * and submit's early refusal (__atomic). */
    size_t queued;
    int state; /* enum mp_state */

    pthread_t thread;
    /* Set by the pool thread before `started`, read-only afterwards: */
    int rank, size;
    struct cci_mpi_config cfg;
    /* Pool thread only: */
    MPI_Comm comm;
    bool we_initialized, comm_ready, mpi_failed;
    struct mworker *workers;
    unsigned nworkers, live_workers;
    MPI_Request *send_reqs; /* in-progress MPI_Isend, and their buffers */
    uint8_t **send_bufs;    /* from `cache` */
    size_t nsends, sends_cap;
    struct cci_mpi_cache cache; /* the buffers of every send */
    /* Out-of-line results being received (MPI_Imrecv) into the buffers
     * their futures will own. */
    MPI_Request *recv_reqs;
    struct mtask **recv_tasks;
    uint8_t **recv_bufs;
    size_t nrecvs, recvs_cap;
    /* Tasks sent and not finished: in flight, awaiting or receiving
     * their data. */
    size_t outstanding;
    uint64_t next_id; /* under lock */
    int serve_status; /* worker ranks: what the loop returned */
    /* Statistics (cc_pool_stats), relaxed atomics: outcomes counted as a
     * task is dropped; `running` and `busy` mirror the comm thread's
     * `outstanding` and the number of ranks with tasks in flight. An MPI
     * task costs microseconds, so shared lines cost nothing here. */
    uint64_t n_submitted, n_completed, n_failed, n_cancelled;
    size_t running;
    unsigned busy;
};

/* One pool per process at a time: MPI itself is per process, and a worker
 * rank can serve only one pool. Guards creation and the atexit hook. */
static pthread_mutex_t global_lock = PTHREAD_MUTEX_INITIALIZER;
static struct mpool *live_pool;
static bool creating;
static pthread_once_t atexit_once = PTHREAD_ONCE_INIT;

static const struct cci_executor_ops mpi_ops;

static int load_state(struct mpool *mp)
{
    return __atomic_load_n(&mp->state, __ATOMIC_ACQUIRE);
}

static int refusal(int state)
{
    return state == MP_BROKEN ? CC_EBROKEN_EXECUTOR : CC_ESHUTDOWN;
}

/* ---- finishing tasks ----------------------------------------------------- */

static void count(uint64_t *counter)
{
    __atomic_fetch_add(counter, 1, __ATOMIC_RELAXED);
}

/* Outcomes are counted before the future completes, so that the figures
 * are exact as soon as a waiter sees it done (as the process pool's). */
static struct mpool *pool_of(struct mtask *t)
{
    return cci_future_executor(t->future);
}

static void drop_task(struct mtask *t)
{
    if (t->msg)
        cci_mpi_buf_free(&pool_of(t)->cache, t->msg);
    t->msg = NULL;
    cc_future_unref(t->future);
}

/* A queued task that will never run: cancelled by its caller meanwhile,
 * or by a shutdown with cancel_futures (cancel: cancel it here). */
static void drop_cancelled(struct mtask *t, bool cancel)
{
    count(&pool_of(t)->n_cancelled);
    if (cancel)
        cc_future_cancel(t->future);
    drop_task(t);
}

/* The comm thread's `outstanding` changed: publish it for the stats. */
static void set_outstanding(struct mpool *mp, size_t n)
{
    mp->outstanding = n;
    __atomic_store_n(&mp->running, n, __ATOMIC_RELAXED);
}

static void fail_task(struct mtask *t, int code, const char *msg)
{
    /* PENDING (queued) or RUNNING (sent): finish either way; a future
     * cancelled meanwhile keeps its cancellation. */
    if (cc_future_set_running_or_notify_cancel(t->future) == -ECANCELED) {
        drop_cancelled(t, false);
        return;
    }
    count(&pool_of(t)->n_failed);
    cci_future_finish(t->future, code, NULL, NULL, msg);
    drop_task(t);
}

static void fail_list(struct mtask *t, int code, const char *msg)
{
    while (t) {
        struct mtask *next = t->next;
        fail_task(t, code, msg);
        t = next;
    }
}

/* No more tasks can run: fail the queue, refuse later submits. */
static void break_pool(struct mpool *mp, int code, const char *msg)
{
    pthread_mutex_lock(&mp->lock);
    if (load_state(mp) != MP_BROKEN) {
        snprintf(mp->broken_msg, sizeof mp->broken_msg, "%s", msg);
        mp->broken_code = code;
        __atomic_store_n(&mp->state, MP_BROKEN, __ATOMIC_RELEASE);
    }
    struct mtask *list = mp->head;
    mp->head = mp->tail = NULL;
    __atomic_store_n(&mp->queued, 0, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&mp->lock);
    fail_list(list, code, msg);
}

/* ---- MPI calls of the comm thread ---------------------------------------- */

/* An MPI call failed: MPI can no longer be trusted on this rank. Every
 * task fails; the pool thread will neither say goodbye nor finalize (both
 * could wait forever for a dead peer). */
static void mpi_failure(struct mpool *mp, int mpi_err, const char *call)
{
    char text[MPI_MAX_ERROR_STRING + 64];
    cci_mpi_describe(mpi_err, call, text, sizeof text);
    fprintf(stderr, "concur: MPI pool, rank 0: %s\n", text);
    if (mp->mpi_failed)
        return;
    mp->mpi_failed = true;
    char msg[sizeof text + 32];
    snprintf(msg, sizeof msg, "the MPI pool broke: %s", text);
    for (unsigned i = 0; i < mp->nworkers; i++) {
        struct mworker *w = &mp->workers[i];
        fail_list(w->head, CC_EBROKEN_EXECUTOR, msg);
        fail_list(w->await_head, CC_EBROKEN_EXECUTOR, msg);
        w->head = w->tail = w->await_head = w->await_tail = NULL;
        w->inflight = 0;
    }
    __atomic_store_n(&mp->busy, 0, __ATOMIC_RELAXED);
    /* Receives still posted keep their buffers (MPI may write into them);
     * the tasks fail now. */
    for (size_t i = 0; i < mp->nrecvs; i++) {
        mp->recv_tasks[i]->next = NULL;
        fail_list(mp->recv_tasks[i], CC_EBROKEN_EXECUTOR, msg);
    }
    mp->nrecvs = 0;
    set_outstanding(mp, 0);
    break_pool(mp, CC_EBROKEN_EXECUTOR, msg);
}

/* Starts sending buf (from mp->cache; owned by the pool from here on,
 * released when the send completes or on failure). Returns 0, -ENOMEM, or
 * -EIO after an MPI failure. */
static int post_send(struct mpool *mp, uint8_t *buf, size_t len, int rank,
                     int tag)
{
    if (mp->nsends == mp->sends_cap) {
        size_t cap = mp->sends_cap ? mp->sends_cap * 2 : 16;
        MPI_Request *r = realloc(mp->send_reqs, cap * sizeof *r);
        if (r)
            mp->send_reqs = r;
        uint8_t **b = r ? realloc(mp->send_bufs, cap * sizeof *b) : NULL;
        if (b)
            mp->send_bufs = b;
        if (!r || !b) {
            cci_mpi_buf_free(&mp->cache, buf);
            return -ENOMEM;
        }
        mp->sends_cap = cap;
    }
    MPI_Request req;
    int rc = MPI_Isend(buf, (int)len, MPI_BYTE, rank, tag, mp->comm, &req);
    if (rc != MPI_SUCCESS) {
        cci_mpi_buf_free(&mp->cache, buf);
        mpi_failure(mp, rc, "MPI_Isend");
        return -EIO;
    }
    mp->send_reqs[mp->nsends] = req;
    mp->send_bufs[mp->nsends] = buf;
    mp->nsends++;
    return 0;
}

/* Frees the buffers of completed sends. Returns whether any completed. */
static bool test_sends(struct mpool *mp)
{
    if (mp->nsends == 0 || mp->mpi_failed)
        return false;
    int done = 0;
    int idx[64];
    int n = mp->nsends < 64 ? (int)mp->nsends : 64;
    /* The oldest sends are the likeliest to be complete. */
    int rc = MPI_Testsome(n, mp->send_reqs, &done, idx, MPI_STATUSES_IGNORE);
    if (rc != MPI_SUCCESS) {
        mpi_failure(mp, rc, "MPI_Testsome");
        return false;
    }
    if (done == MPI_UNDEFINED || done == 0)
        return false;
    for (int i = 0; i < done; i++) {
        cci_mpi_buf_free(&mp->cache, mp->send_bufs[idx[i]]);
        mp->send_bufs[idx[i]] = NULL;
    }
    size_t k = 0;
    for (size_t i = 0; i < mp->nsends; i++) {
        if (!mp->send_bufs[i] && mp->send_reqs[i] == MPI_REQUEST_NULL)
            continue;
        mp->send_reqs[k] = mp->send_reqs[i];
        mp->send_bufs[k] = mp->send_bufs[i];
        k++;
    }
    mp->nsends = k;
    return true;
}

/* ---- worker ranks as rank 0 sees them ------------------------------------ */

static struct mtask *pop_inflight(struct mpool *mp, struct mworker *w)
{
    struct mtask *t = w->head;
    w->head = t->next;
    if (!w->head)
        w->tail = NULL;
    t->next = NULL;
    if (--w->inflight == 0)
        __atomic_fetch_sub(&mp->busy, 1, __ATOMIC_RELAXED);
    return t;
}

/* A sent task ends: with an error, or (finish_bytes) with its output,
 * data (malloc'd, len bytes, NULL if 0), which the future then owns. */
static void finish_failed(struct mpool *mp, struct mtask *t, int code,
                          const char *msg)
{
    set_outstanding(mp, mp->outstanding - 1);
    fail_task(t, code, msg);
}

static void finish_bytes(struct mpool *mp, struct mtask *t, void *data,
                         size_t len)
{
    set_outstanding(mp, mp->outstanding - 1);
    count(&mp->n_completed);
    if (cc_future_set_result_bytes_owned(t->future, data, len) != 0)
        free(data);
    drop_task(t);
}

/*
 * Gives up on w: its oldest in-flight task fails with code and the text
 * of fmt, the others with CC_EWORKER_LOST (never started, but they cannot
 * be taken back: a task is never sent twice). The rank is told to skip
 * them if it ever reads its messages again; whatever it sends is dropped.
 */
static void retire(struct mpool *mp, struct mworker *w, int code,
                   const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static void retire(struct mpool *mp, struct mworker *w, int code,
                   const char *fmt, ...)
{
    char first[400], rest[500];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(first, sizeof first, fmt, ap);
    va_end(ap);
    snprintf(rest, sizeof rest, "not run: worker rank %d was retired (%s)",
             w->rank, first);
    w->retired = true;
    mp->live_workers--;
    /* Results it announced but whose data never came are lost too (those
     * already being received complete normally). */
    while (w->await_head) {
        struct mtask *t = w->await_head;
        w->await_head = t->next;
        finish_failed(mp, t, CC_EWORKER_LOST, rest);
    }
    w->await_tail = NULL;
    bool lead = true;
    while (w->head) {
        struct mtask *t = pop_inflight(mp, w);
        finish_failed(mp, t, lead ? code : CC_EWORKER_LOST,
                      lead ? first : rest);
        lead = false;
    }
    if (w->last_id) {
        uint8_t *b = cci_mpi_buf_alloc(&mp->cache, CCI_MPI_CONTROL_SIZE);
        if (b) {
            cci_mpi_control_encode(b, CCI_MPI_CONTROL_SKIP, w->last_id);
            post_send(mp, b, CCI_MPI_CONTROL_SIZE, w->rank,
                      CCI_MPI_TAG_CONTROL);
        }
    }
    if (mp->live_workers == 0 && !mp->mpi_failed)
        break_pool(mp, CC_EBROKEN_EXECUTOR,
                   "every worker rank of the MPI pool was retired");
}

/* A task that has run past the time limit: MPI cannot stop it, so its
 * rank is retired (see concur/mpi.h). */
static bool check_time_limits(struct mpool *mp, int64_t now)
{
    if (!mp->time_limit || mp->outstanding == 0)
        return false;
    bool any = false;
    for (unsigned i = 0; i < mp->nworkers; i++) {
        struct mworker *w = &mp->workers[i];
        if (w->retired || !w->head || now - w->head_since <= mp->time_limit)
            continue;
        retire(mp, w, -ETIMEDOUT,
               "task '%s' ran longer than its time limit (%.3f s) on rank "
               "%d; the rank was retired",
               w->head->name, (double)mp->time_limit / 1e9, w->rank);
        any = true;
    }
    return any;
}

/* ---- results ------------------------------------------------------------- */

/* An inline result (buf: the whole message, malloc'd). */
static void complete(struct mpool *mp, struct mtask *t,
                     const struct cci_result_view *v, uint8_t *buf)
{
    if (v->status < 0) {
        char *msg = NULL;
        if (v->message_len) {
            msg = malloc((size_t)v->message_len + 1);
            if (msg) {
                memcpy(msg, v->message, v->message_len);
                msg[v->message_len] = '\0';
            }
        }
        free(buf);
        finish_failed(mp, t, v->status, msg);
        free(msg);
        return;
    }
    /* At most CCI_MPI_INLINE_MAX bytes: the output moves to the front of
     * the receive buffer, which the future then owns (no allocation). */
    size_t n = (size_t)v->result_len;
    void *data = NULL;
    if (n) {
        memmove(buf, v->result, n);
        data = buf;
    } else {
        free(buf);
    }
    finish_bytes(mp, t, data, n);
}

static int grow_recvs(struct mpool *mp)
{
    if (mp->nrecvs < mp->recvs_cap)
        return 0;
    size_t cap = mp->recvs_cap ? mp->recvs_cap * 2 : 8;
    MPI_Request *r = realloc(mp->recv_reqs, cap * sizeof *r);
    if (r)
        mp->recv_reqs = r;
    struct mtask **t = r ? realloc(mp->recv_tasks, cap * sizeof *t) : NULL;
    if (t)
        mp->recv_tasks = t;
    uint8_t **b = t ? realloc(mp->recv_bufs, cap * sizeof *b) : NULL;
    if (b)
        mp->recv_bufs = b;
    if (!b)
        return -ENOMEM;
    mp->recvs_cap = cap;
    return 0;
}

/*
 * The data message of w's oldest announced out-of-line result, probed as
 * m (count bytes): received straight into the buffer the future will own,
 * without blocking this thread (the worker may be computing its next task
 * and make MPI progress only between tasks). Anything unexpected is
 * received truncated, to drop it, and retires w.
 */
static void receive_data(struct mpool *mp, struct mworker *w, MPI_Message *m,
                         int count)
{
    struct mtask *t = w->await_head;
    uint8_t *buf = NULL;
    bool ok = !w->retired && t && count >= 0 && (size_t)count == t->data_len;
    if (ok) {
        buf = malloc(t->data_len);
        if (!buf || grow_recvs(mp) < 0) {
            free(buf);
            buf = NULL;
        }
    }
    if (!buf) {
        int rc = MPI_Mrecv(NULL, 0, MPI_BYTE, m, MPI_STATUS_IGNORE);
        (void)rc; /* MPI_ERR_TRUNCATE, expected: the message is gone */
        if (w->retired)
            return;
        if (!ok) {
            retire(mp, w, -EPROTO,
                   "worker rank %d sent %d bytes of data nobody announced",
                   w->rank, count);
            return;
        }
        w->await_head = t->next;
        if (!w->await_head)
            w->await_tail = NULL;
        finish_failed(mp, t, -ENOMEM,
                      "no memory on rank 0 for the task's result");
        return;
    }
    w->await_head = t->next;
    if (!w->await_head)
        w->await_tail = NULL;
    t->next = NULL;
    MPI_Request req;
    int rc = MPI_Imrecv(buf, count, MPI_BYTE, m, &req);
    if (rc != MPI_SUCCESS) {
        free(buf);
        finish_failed(mp, t, CC_EBROKEN_EXECUTOR, "the MPI pool broke");
        mpi_failure(mp, rc, "MPI_Imrecv");
        return;
    }
    mp->recv_reqs[mp->nrecvs] = req;
    mp->recv_tasks[mp->nrecvs] = t;
    mp->recv_bufs[mp->nrecvs] = buf;
    mp->nrecvs++;
}

/* Completes the tasks whose out-of-line data has arrived. */
static bool test_recvs(struct mpool *mp)
{
    if (mp->nrecvs == 0 || mp->mpi_failed)
        return false;
    int done = 0;
    int idx[64];
    int n = mp->nrecvs < 64 ? (int)mp->nrecvs : 64;
    int rc = MPI_Testsome(n, mp->recv_reqs, &done, idx, MPI_STATUSES_IGNORE);
    if (rc != MPI_SUCCESS) {
        mpi_failure(mp, rc, "MPI_Testsome");
        return false;
    }
    if (done == MPI_UNDEFINED || done == 0)
        return false;
    for (int i = 0; i < done; i++) {
        struct mtask *t = mp->recv_tasks[idx[i]];
        finish_bytes(mp, t, mp->recv_bufs[idx[i]], t->data_len);
        mp->recv_tasks[idx[i]] = NULL;
    }
    size_t k = 0;
    for (size_t i = 0; i < mp->nrecvs; i++) {
        if (!mp->recv_tasks[i])
            continue;
        mp->recv_reqs[k] = mp->recv_reqs[i];
        mp->recv_tasks[k] = mp->recv_tasks[i];
        mp->recv_bufs[k] = mp->recv_bufs[i];
        k++;
    }
    mp->nrecvs = k;
    return true;
}

/* Handles one message a worker rank sent (buf: len bytes, malloc'd, or
 * NULL if it could not be received whole). */
static void handle_message(struct mpool *mp, int src, int tag, uint8_t *buf,
                           size_t len, bool whole)
{
    if (src < 1 || src >= mp->size) {
        free(buf);
        return;
    }
    struct mworker *w = &mp->workers[src - 1];
    if (tag == CCI_MPI_TAG_BYE) {
        free(buf);
        w->bye = true;
        if (!w->retired && w->inflight)
            retire(mp, w, CC_EWORKER_LOST,
                   "worker rank %d left the pool with tasks in flight",
                   w->rank);
        return;
    }
    if (w->retired) { /* late answers from a retired rank: not wanted */
        free(buf);
        return;
    }
    struct cci_result_view v;
    if (tag != CCI_MPI_TAG_RESULT || !whole ||
        cci_result_decode(buf, len, mp->cfg.max_payload, &v) < 0 ||
        (v.out_of_line && (v.status < 0 || v.result_len == 0)) || !w->head ||
        v.id != w->head->id) {
        free(buf);
        retire(mp, w, -EPROTO,
               "worker rank %d sent a malformed or unexpected message "
               "(tag %d, %zu bytes)",
               w->rank, tag, len);
        return;
    }
    struct mtask *t = pop_inflight(mp, w);
    w->last_active = cci_now_ns();
    if (w->head)
        w->head_since = w->last_active;
    if (!v.out_of_line) {
        complete(mp, t, &v, buf);
        return;
    }
    /* The output follows in a TAG_DATA message of its own. */
    free(buf);
    t->data_len = (size_t)v.result_len;
    if (w->await_tail)
        w->await_tail->next = t;
    else
        w->await_head = t;
    w->await_tail = t;
}

/* Receives what the worker ranks have sent. Returns whether anything
 * came. */
static bool poll_results(struct mpool *mp)
{
    bool any = false;
    for (int k = 0; k < RESULTS_PER_ROUND && !mp->mpi_failed; k++) {
        int flag = 0;
        MPI_Message m;
        MPI_Status st;
        int rc =
            MPI_Improbe(MPI_ANY_SOURCE, MPI_ANY_TAG, mp->comm, &flag, &m, &st);
        if (rc != MPI_SUCCESS) {
            mpi_failure(mp, rc, "MPI_Improbe");
            break;
        }
        if (!flag)
            break;
        any = true;
        int count = 0;
        MPI_Get_count(&st, MPI_BYTE, &count);
        if (st.MPI_TAG == CCI_MPI_TAG_DATA && st.MPI_SOURCE >= 1 &&
            st.MPI_SOURCE < mp->size) {
            receive_data(mp, &mp->workers[st.MPI_SOURCE - 1], &m, count);
            continue;
        }
        /* Bounded before allocating: a result is at most a header, a
         * message and max_payload bytes. A message that is too big, or
         * that finds no memory, is received truncated (MPI removes it all
         * the same) and treated as unreadable. */
        size_t limit = CCI_TASK_HEADER + CCI_MESSAGE_MAX + mp->cfg.max_payload;
        bool whole = count >= 0 && (size_t)count <= limit;
        size_t len = whole ? (size_t)count : 0;
        uint8_t *buf = malloc(len ? len : 1);
        if (!buf) {
            whole = false;
            len = 0;
        }
        rc = MPI_Mrecv(buf, (int)len, MPI_BYTE, &m, MPI_STATUS_IGNORE);
        if (rc != MPI_SUCCESS && whole) {
            free(buf);
            mpi_failure(mp, rc, "MPI_Mrecv");
            break;
        }
        if (!buf && st.MPI_TAG == CCI_MPI_TAG_RESULT && st.MPI_SOURCE >= 1 &&
            st.MPI_SOURCE < mp->size) {
            /* Out of memory, not a protocol error: only that task fails. */
            struct mworker *w = &mp->workers[st.MPI_SOURCE - 1];
            if (!w->retired && w->head) {
                finish_failed(mp, pop_inflight(mp, w), -ENOMEM,
                              "no memory on rank 0 for the task's result");
                if (w->head)
                    w->head_since = cci_now_ns();
            }
            continue;
        }
        handle_message(mp, st.MPI_SOURCE, st.MPI_TAG, buf, len, whole);
    }
    return any;
}

/* ---- dispatching --------------------------------------------------------- */

/* The live worker with the most room in its window, or NULL if all are
 * full. Among equals, the one heard from last: it is still polling, while
 * one idle for longer has gone to sleep in its back-off (round-robin here
 * cost 3.3 ms per round trip instead of 15 us, each task waking a sleeper).
 * Under load every window fills anyway, so this never starves a rank. */
static struct mworker *pick_worker(struct mpool *mp)
{
    struct mworker *best = NULL;
    for (unsigned i = 0; i < mp->nworkers; i++) {
        struct mworker *w = &mp->workers[i];
        if (w->retired || w->inflight >= mp->cfg.window)
            continue;
        if (!best || w->inflight < best->inflight ||
            (w->inflight == best->inflight &&
             w->last_active > best->last_active))
            best = w;
    }
    return best;
}

static struct mtask *pop_queued(struct mpool *mp)
{
    pthread_mutex_lock(&mp->lock);
    struct mtask *t = mp->head;
    if (t) {
        mp->head = t->next;
        if (!mp->head)
            mp->tail = NULL;
        t->next = NULL;
        __atomic_store_n(&mp->queued, mp->queued - 1, __ATOMIC_RELEASE);
    }
    pthread_mutex_unlock(&mp->lock);
    return t;
}

static bool dispatch(struct mpool *mp)
{
    bool any = false;
    while (!mp->mpi_failed && __atomic_load_n(&mp->queued, __ATOMIC_ACQUIRE)) {
        struct mworker *w = pick_worker(mp);
        if (!w)
            break;
        struct mtask *t = pop_queued(mp);
        if (!t)
            break;
        any = true;
        if (cc_future_set_running_or_notify_cancel(t->future) != 0) {
            drop_cancelled(t, false); /* cancelled while queued */
            continue;
        }
        uint8_t *msg = t->msg;
        t->msg = NULL;
        int rc = post_send(mp, msg, t->msg_len, w->rank, CCI_MPI_TAG_TASK);
        if (rc < 0) {
            fail_task(t, rc == -ENOMEM ? -ENOMEM : CC_EBROKEN_EXECUTOR,
                      rc == -ENOMEM ? "no memory on rank 0 to send the task"
                                    : "the MPI pool broke");
            continue;
        }
        if (w->tail)
            w->tail->next = t;
        else
            w->head = t;
        w->tail = t;
        w->last_id = t->id;
        if (w->inflight++ == 0) {
            w->head_since = cci_now_ns();
            __atomic_fetch_add(&mp->busy, 1, __ATOMIC_RELAXED);
        }
        set_outstanding(mp, mp->outstanding + 1);
    }
    return any;
}

/* ---- the comm thread's loop ---------------------------------------------- */

/* Sleeps until deadline or a submit. A task queued since the last
 * dispatch ends the sleep before it starts — unless every window was full
 * then (room false), when queued tasks must wait for a result anyway:
 * polling then, instead of sleeping, burned a whole CPU while a long queue
 * of slow tasks ran (seen in `concur compare`'s mpi row). */
static void sleep_until(struct mpool *mp, int64_t deadline, bool room)
{
    struct timespec ts = {(time_t)(deadline / 1000000000),
                          (long)(deadline % 1000000000)};
    pthread_mutex_lock(&mp->lock);
    if (!room || !__atomic_load_n(&mp->queued, __ATOMIC_RELAXED)) {
        mp->comm_sleeping = true;
        pthread_cond_timedwait(&mp->wake, &mp->lock, &ts);
        mp->comm_sleeping = false;
    }
    pthread_mutex_unlock(&mp->lock);
}

/* Whether the comm thread is done: shut down (or broken), nothing queued,
 * nothing in flight. Otherwise, with nothing in flight, sleeps until a
 * submit or a shutdown. */
static bool finished_or_idle_wait(struct mpool *mp)
{
    bool done = false;
    pthread_mutex_lock(&mp->lock);
    for (;;) {
        bool empty = !mp->head;
        if (load_state(mp) != MP_RUNNING && empty && mp->outstanding == 0) {
            done = true;
            break;
        }
        if (!empty || mp->outstanding || mp->nsends)
            break;
        mp->comm_sleeping = true;
        pthread_cond_wait(&mp->wake, &mp->lock);
        mp->comm_sleeping = false;
    }
    pthread_mutex_unlock(&mp->lock);
    return done;
}

/* Tells every worker rank to leave and waits for each to say goodbye, so
 * that MPI_Finalize cannot hang on a rank still at work. A rank that does
 * not answer within the grace period is stuck in a task (one past its time
 * limit): MPI cannot stop a single rank, and waiting would hang the job,
 * so the job is aborted, saying why. */
static void goodbye(struct mpool *mp)
{
    for (unsigned i = 0; i < mp->nworkers && !mp->mpi_failed; i++) {
        uint8_t *b = cci_mpi_buf_alloc(&mp->cache, CCI_TASK_HEADER);
        long n = b ? cci_task_encode(b, CCI_TASK_HEADER, CCI_TASK_EXIT, 0, NULL,
                                     0, false, NULL, 0)
                   : -ENOMEM;
        if (n < 0 || post_send(mp, b, (size_t)n, mp->workers[i].rank,
                               CCI_MPI_TAG_TASK) < 0) {
            if (n < 0)
                cci_mpi_buf_free(&mp->cache, b);
            if (!mp->mpi_failed)
                mpi_failure(mp, MPI_ERR_NO_MEM, "sending EXIT");
        }
    }
    int64_t deadline = cci_now_ns() + mp->grace;
    struct cci_mpi_backoff idle;
    cci_mpi_backoff_init(&idle, CCI_MPI_PAUSE_RANK0_NS);
    for (;;) {
        if (mp->mpi_failed)
            return;
        unsigned missing = 0;
        for (unsigned i = 0; i < mp->nworkers; i++)
            missing += !mp->workers[i].bye;
        if (missing == 0 && mp->nsends == 0 && mp->nrecvs == 0)
            return;
        bool progress = poll_results(mp);
        progress |= test_recvs(mp);
        progress |= test_sends(mp);
        int64_t now = cci_now_ns();
        if (missing && now > deadline) {
            fprintf(stderr,
                    "concur: MPI pool: %u worker rank(s) still busy %.1f s "
                    "after the pool's shutdown (first: rank ",
                    missing, (double)mp->grace / 1e9);
            for (unsigned i = 0; i < mp->nworkers; i++)
                if (!mp->workers[i].bye) {
                    fprintf(stderr, "%d", mp->workers[i].rank);
                    break;
                }
            fprintf(stderr, "); MPI cannot stop one rank, so the job is "
                            "aborted with MPI_Abort\n");
            MPI_Abort(mp->comm, 1);
        }
        if (progress) {
            cci_mpi_backoff_reset(&idle, cci_now_ns());
            continue;
        }
        int64_t p = cci_mpi_backoff_next(&idle, now);
        if (p) {
            struct timespec ts = {0, (long)p};
            nanosleep(&ts, NULL);
        }
    }
}

static void run_comm_thread(struct mpool *mp)
{
    struct cci_mpi_backoff idle;
    cci_mpi_backoff_init(&idle, CCI_MPI_PAUSE_RANK0_NS);
    for (;;) {
        bool progress = poll_results(mp);
        progress |= test_recvs(mp);
        progress |= test_sends(mp);
        int64_t now = cci_now_ns();
        progress |= check_time_limits(mp, now);
        progress |= dispatch(mp);
        if (mp->mpi_failed)
            return;
        if (progress) {
            cci_mpi_backoff_reset(&idle, cci_now_ns());
            continue;
        }
        /* Keep polling for a moment even with nothing in flight: a
         * program that submits right after a result then finds this
         * thread awake instead of paying a wake-up (60-70 us here). */
        int64_t p = cci_mpi_backoff_next(&idle, now);
        if (!p) {
            sched_yield();
            continue;
        }
        if (mp->outstanding == 0 && mp->nsends == 0) {
            if (finished_or_idle_wait(mp))
                break;
            cci_mpi_backoff_reset(&idle, cci_now_ns()); /* woken by a submit */
            continue;
        }
        sleep_until(mp, now + p, pick_worker(mp) != NULL);
    }
    goodbye(mp);
}

/* ---- start-up, on every rank --------------------------------------------- */

static int mpi_error(int mpi_err, const char *call)
{
    char text[MPI_MAX_ERROR_STRING + 64];
    cci_mpi_describe(mpi_err, call, text, sizeof text);
    fprintf(stderr, "concur: MPI pool: %s\n", text);
    return -EIO;
}

/* Rank 0's verdict on the job: every hello must match its own. */
static int check_hellos(struct mpool *mp, const uint8_t *all)
{
    if (mp->size < 2)
        return -ECHILD;
    for (int r = 1; r < mp->size; r++)
        if (!cci_mpi_hello_ok(all + (size_t)r * CCI_MPI_HELLO_SIZE)) {
            fprintf(stderr,
                    "concur: MPI pool: rank %d runs a build of "
                    "concur that cannot exchange tasks with rank 0 "
                    "(byte order, word size or protocol)\n",
                    r);
            return -EPROTO;
        }
    mp->workers = calloc((size_t)mp->size - 1, sizeof *mp->workers);
    if (!mp->workers)
        return -ENOMEM;
    mp->nworkers = mp->live_workers = (unsigned)mp->size - 1;
    for (unsigned i = 0; i < mp->nworkers; i++)
        mp->workers[i].rank = (int)i + 1;
    return 0;
}

static int start_mpi(struct mpool *mp)
{
    int flag = 0;
    MPI_Finalized(&flag);
    if (flag)
        return -EALREADY;
    MPI_Initialized(&flag);
    if (!flag) {
        int provided = MPI_THREAD_SINGLE;
        int rc = MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided);
        if (rc != MPI_SUCCESS)
            return mpi_error(rc, "MPI_Init_thread");
        mp->we_initialized = true;
        if (provided < MPI_THREAD_FUNNELED)
            return -ENOTSUP;
    } else {
        /* The program's threads may call MPI while ours does. */
        int provided = MPI_THREAD_SINGLE;
        MPI_Query_thread(&provided);
        if (provided < MPI_THREAD_MULTIPLE)
            return -ENOTSUP;
    }
    int rc = MPI_Comm_dup(MPI_COMM_WORLD, &mp->comm);
    if (rc != MPI_SUCCESS)
        return mpi_error(rc, "MPI_Comm_dup");
    mp->comm_ready = true;
    MPI_Comm_set_errhandler(mp->comm, MPI_ERRORS_RETURN);
    MPI_Comm_rank(mp->comm, &mp->rank);
    MPI_Comm_size(mp->comm, &mp->size);

    uint8_t hello[CCI_MPI_HELLO_SIZE];
    cci_mpi_hello_encode(hello);
    uint8_t *all = NULL;
    if (mp->rank == 0) {
        all = malloc((size_t)mp->size * CCI_MPI_HELLO_SIZE);
        if (!all) {
            /* Every other rank is already in the collective: without a
             * buffer rank 0 cannot take part, and leaving would hang them. */
            fprintf(stderr, "concur: MPI pool: out of memory at start-up\n");
            MPI_Abort(MPI_COMM_WORLD, 1);
        }
    }
    rc = MPI_Gather(hello, CCI_MPI_HELLO_SIZE, MPI_BYTE, all,
                    CCI_MPI_HELLO_SIZE, MPI_BYTE, 0, mp->comm);
    if (rc != MPI_SUCCESS) {
        free(all);
        return mpi_error(rc, "MPI_Gather");
    }
    uint8_t block[CCI_MPI_CONFIG_SIZE];
    if (mp->rank == 0) {
        struct cci_mpi_config c = {check_hellos(mp, all), mp->window_opt,
                                   mp->max_payload_opt};
        cci_mpi_config_encode(block, &c);
    }
    free(all);
    rc = MPI_Bcast(block, CCI_MPI_CONFIG_SIZE, MPI_BYTE, 0, mp->comm);
    if (rc != MPI_SUCCESS)
        return mpi_error(rc, "MPI_Bcast");
    if (cci_mpi_config_decode(block, &mp->cfg) < 0)
        return -EPROTO;
    return mp->cfg.status;
}

static void stop_mpi(struct mpool *mp)
{
    /* After an MPI failure, freeing the communicator or finalizing could
     * wait forever for a dead peer. The job then ends when this process
     * exits: mpirun reports a rank that exited without MPI_Finalize and
     * stops the others. */
    if (mp->mpi_failed)
        return;
    if (mp->comm_ready)
        MPI_Comm_free(&mp->comm);
    mp->comm_ready = false;
    if (mp->we_initialized)
        MPI_Finalize();
}

static void *pool_thread(void *arg)
{
    struct mpool *mp = arg;
    int rc = start_mpi(mp);
    /* Named after MPI_Init: the threads MPI starts inherit the name of
     * the thread that creates them, and are not ours. */
    pthread_setname_np(pthread_self(), "concur-mpi");
    pthread_mutex_lock(&mp->lock);
    mp->started = true;
    mp->start_status = rc;
    pthread_cond_broadcast(&mp->changed);
    pthread_mutex_unlock(&mp->lock);
    if (rc == 0) {
        if (mp->rank == 0)
            run_comm_thread(mp);
        else
            mp->serve_status = cci_mpi_serve(mp->comm, mp->rank, &mp->cfg);
    }
    stop_mpi(mp);
    pthread_mutex_lock(&mp->lock);
    mp->exited = true;
    pthread_cond_broadcast(&mp->changed);
    pthread_mutex_unlock(&mp->lock);
    return NULL;
}

/* ---- the executor -------------------------------------------------------- */

static int mp_submit(cc_executor *ex, cc_task_fn fn, void *arg, cc_future **out)
{
    (void)ex;
    (void)fn;
    (void)arg;
    (void)out;
    return -EINVAL; /* a void * means nothing on another rank */
}

/* The input is in, or what fill(ctx, ...) writes when fill is set. */
static int submit_encoded(struct mpool *mp, const cc_task_def *def,
                          const void *in, size_t len,
                          void (*fill)(void *ctx, uint8_t *dst), void *ctx,
                          cc_future **out)
{
    if (len > mp->cfg.max_payload)
        return -EMSGSIZE;
    int s = load_state(mp);
    if (s != MP_RUNNING)
        return refusal(s);
    size_t name_len = strlen(def->name);
    size_t cap = cci_task_encoded_size(name_len, len);
    cc_future *f;
    int rc = cci_future_new_ex(&f, mp, sizeof(struct mtask));
    if (rc < 0)
        return rc;
    struct mtask *t = cci_future_extra(f);
    *t = (struct mtask){.future = f, .name = def->name};
    t->msg = cci_mpi_buf_alloc(&mp->cache, cap);
    long n = t->msg ? cci_task_encode(t->msg, cap, CCI_TASK_RUN, 0, def->name,
                                      name_len, false, in, len)
                    : -ENOMEM;
    if (n < 0) {
        drop_task(t);
        return (int)n;
    }
    t->msg_len = (size_t)n;
    if (fill)
        fill(ctx, t->msg + (size_t)n - len);
    cc_future *mine = cc_future_ref(f); /* before the comm thread sees t */
    pthread_mutex_lock(&mp->lock);
    s = load_state(mp);
    if (s != MP_RUNNING) {
        pthread_mutex_unlock(&mp->lock);
        cc_future_unref(mine);
        drop_task(t);
        return refusal(s);
    }
    /* Ids grow in queue order, hence in the order each rank gets them,
     * which the rank's SKIP relies on. */
    t->id = ++mp->next_id;
    cci_mpi_request_set_id(t->msg, t->id);
    if (mp->tail)
        mp->tail->next = t;
    else
        mp->head = t;
    mp->tail = t;
    __atomic_store_n(&mp->queued, mp->queued + 1, __ATOMIC_RELEASE);
    count(&mp->n_submitted);
    if (mp->comm_sleeping)
        pthread_cond_signal(&mp->wake);
    pthread_mutex_unlock(&mp->lock);
    *out = mine;
    return 0;
}

static int mp_submit_bytes(cc_executor *ex, const cc_task_def *def,
                           const void *in, size_t len, cc_future **out)
{
    return submit_encoded((struct mpool *)ex, def, in, len, NULL, NULL, out);
}

/* A map's chunk, written straight into its request (no copy). */
static int mp_submit_bytes_fill(cc_executor *ex, const cc_task_def *def,
                                size_t len,
                                void (*fill)(void *ctx, uint8_t *dst),
                                void *ctx, cc_future **out)
{
    return submit_encoded((struct mpool *)ex, def, NULL, len, fill, ctx, out);
}

static int mp_shutdown(cc_executor *ex, bool wait, bool cancel_futures)
{
    struct mpool *mp = (struct mpool *)ex;
    /* Done callbacks run in the comm thread; it cannot wait for itself. */
    if (wait && pthread_equal(pthread_self(), mp->thread))
        return -EDEADLK;
    struct mtask *cancelled = NULL;
    pthread_mutex_lock(&mp->lock);
    if (load_state(mp) == MP_RUNNING)
        __atomic_store_n(&mp->state, MP_SHUTDOWN, __ATOMIC_RELEASE);
    if (cancel_futures) {
        cancelled = mp->head;
        mp->head = mp->tail = NULL;
        __atomic_store_n(&mp->queued, 0, __ATOMIC_RELEASE);
    }
    pthread_cond_signal(&mp->wake);
    pthread_mutex_unlock(&mp->lock);
    /* Outside the lock: cancelling runs done callbacks. */
    while (cancelled) {
        struct mtask *next = cancelled->next;
        drop_cancelled(cancelled, true);
        cancelled = next;
    }
    if (wait) {
        pthread_mutex_lock(&mp->lock);
        while (!mp->exited)
            pthread_cond_wait(&mp->changed, &mp->lock);
        pthread_mutex_unlock(&mp->lock);
    }
    return 0;
}

static void pool_free(struct mpool *mp)
{
    free(mp->workers);
    for (size_t i = 0; i < mp->nsends; i++)
        cci_mpi_buf_free(&mp->cache, mp->send_bufs[i]);
    free(mp->send_reqs);
    free(mp->send_bufs);
    for (size_t i = 0; i < mp->nrecvs; i++)
        free(mp->recv_bufs[i]);
    free(mp->recv_reqs);
    free(mp->recv_tasks);
    free(mp->recv_bufs);
    cci_mpi_cache_destroy(&mp->cache);
    pthread_mutex_destroy(&mp->lock);
    pthread_cond_destroy(&mp->wake);
    pthread_cond_destroy(&mp->changed);
    free(mp);
}

static void mp_destroy(cc_executor *ex)
{
    struct mpool *mp = (struct mpool *)ex;
    pthread_join(mp->thread, NULL);
    pthread_mutex_lock(&global_lock);
    if (live_pool == mp)
        live_pool = NULL;
    pthread_mutex_unlock(&global_lock);
    pool_free(mp);
}

static unsigned mp_max_workers(const cc_executor *ex)
{
    const struct mpool *mp = (const struct mpool *)ex;
    return mp->size > 1 ? (unsigned)mp->size - 1 : 0;
}

/* Lock-free reads, a snapshot while busy (outcomes first, so that
 * finished <= submitted). A rank cannot be restarted (its death ends the
 * job) and there is one queue: restarts and stolen stay 0. */
static int mp_stats(const cc_executor *ex, cc_pool_stats *out)
{
    struct mpool *mp = (struct mpool *)ex;
    cc_pool_stats s = {0};
    s.completed = __atomic_load_n(&mp->n_completed, __ATOMIC_RELAXED);
    s.failed = __atomic_load_n(&mp->n_failed, __ATOMIC_RELAXED);
    s.cancelled = __atomic_load_n(&mp->n_cancelled, __ATOMIC_RELAXED);
    s.running = __atomic_load_n(&mp->running, __ATOMIC_RELAXED);
    s.queued = __atomic_load_n(&mp->queued, __ATOMIC_RELAXED);
    s.submitted = __atomic_load_n(&mp->n_submitted, __ATOMIC_RELAXED);
    s.max_workers = s.workers = mp_max_workers(ex);
    unsigned busy = __atomic_load_n(&mp->busy, __ATOMIC_RELAXED);
    s.idle_workers = busy < s.workers ? s.workers - busy : 0;
    int st = load_state(mp);
    s.shutdown = st != MP_RUNNING;
    s.broken = st == MP_BROKEN;
    *out = s;
    return 0;
}

static const struct cci_executor_ops mpi_ops = {
    .kind = "mpi",
    .submit = mp_submit,
    .shutdown = mp_shutdown,
    .destroy = mp_destroy,
    .max_workers = mp_max_workers,
    .submit_bytes = mp_submit_bytes,
    .submit_bytes_fill = mp_submit_bytes_fill,
    .stats = mp_stats,
};

/* A program that returns from main with the pool still live: as Python
 * does for its executors, wait for the accepted tasks, so that the worker
 * ranks are told to leave and MPI is finalized, instead of mpirun
 * reporting a rank that exited without MPI_Finalize. */
static void shutdown_at_exit(void)
{
    pthread_mutex_lock(&global_lock);
    struct mpool *mp = live_pool;
    pthread_mutex_unlock(&global_lock);
    if (mp && !pthread_equal(pthread_self(), mp->thread))
        mp_shutdown(&mp->base, true, false);
}

static void register_atexit(void)
{
    atexit(shutdown_at_exit);
}

static int init_sync(struct mpool *mp)
{
    pthread_condattr_t ca;
    if (pthread_mutex_init(&mp->lock, NULL) != 0)
        return -ENOMEM;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    int rc = pthread_cond_init(&mp->wake, &ca);
    if (rc == 0 && (rc = pthread_cond_init(&mp->changed, &ca)) != 0)
        pthread_cond_destroy(&mp->wake);
    pthread_condattr_destroy(&ca);
    if (rc != 0) {
        pthread_mutex_destroy(&mp->lock);
        return -rc;
    }
    return 0;
}

static int start_thread(struct mpool *mp)
{
    /* The pool thread takes no asynchronous signals: they belong to the
     * program's threads. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int rc = pthread_create(&mp->thread, NULL, pool_thread, mp);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return -rc;
}

int cc_mpi_pool_new(cc_executor **out, const cc_mpi_pool_options *opts)
{
    if (!out)
        return -EINVAL;
    *out = NULL;
    cc_mpi_pool_options o = {0, 0, 0, 0};
    if (opts)
        o = *opts;
    if (o.window > CC_MPI_WINDOW_MAX || o.max_payload > CC_MPI_PAYLOAD_MAX ||
        !cci_duration_valid(o.task_time_limit) ||
        !cci_duration_valid(o.shutdown_grace))
        return -EINVAL;

    pthread_mutex_lock(&global_lock);
    bool busy = live_pool || creating;
    creating = !busy;
    pthread_mutex_unlock(&global_lock);
    if (busy)
        return -EBUSY;

    int rc = -ENOMEM;
    struct mpool *mp = calloc(1, sizeof *mp);
    if (mp && (rc = init_sync(mp)) != 0) {
        free(mp);
        mp = NULL;
    }
    if (mp)
        cci_mpi_cache_init(&mp->cache);
    if (mp) {
        mp->base.ops = &mpi_ops;
        mp->window_opt = o.window ? o.window : CC_MPI_WINDOW_DEFAULT;
        mp->max_payload_opt =
            o.max_payload ? o.max_payload : CC_MPI_PAYLOAD_MAX;
        mp->time_limit =
            o.task_time_limit == CC_FOREVER ? 0 : o.task_time_limit;
        mp->grace = o.shutdown_grace
                        ? (o.shutdown_grace == CC_FOREVER ? INT64_MAX / 2
                                                          : o.shutdown_grace)
                        : DEFAULT_GRACE_NS;
        mp->state = MP_RUNNING;
        rc = start_thread(mp);
    }
    if (rc < 0) {
        if (mp)
            pool_free(mp);
        pthread_mutex_lock(&global_lock);
        creating = false;
        pthread_mutex_unlock(&global_lock);
        return rc;
    }

    pthread_mutex_lock(&mp->lock);
    while (!mp->started)
        pthread_cond_wait(&mp->changed, &mp->lock);
    rc = mp->start_status;
    pthread_mutex_unlock(&mp->lock);
    if (rc < 0 || mp->rank != 0) {
        /* A worker rank: the pool thread serves until rank 0 shuts the
         * pool down. */
        pthread_join(mp->thread, NULL);
        if (rc == 0)
            rc = mp->serve_status < 0 ? mp->serve_status : CC_MPI_SERVED;
        pool_free(mp);
        pthread_mutex_lock(&global_lock);
        creating = false;
        pthread_mutex_unlock(&global_lock);
        return rc;
    }
    pthread_mutex_lock(&global_lock);
    live_pool = mp;
    creating = false;
    pthread_mutex_unlock(&global_lock);
    pthread_once(&atexit_once, register_atexit);
    *out = &mp->base;
    return 0;
}
