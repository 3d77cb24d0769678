/*
 * mpi_worker.c — a worker rank's loop: receive task requests from rank 0,
 * run them one at a time in arrival order, send each result back.
 *
 * Rank 0 sends up to `window` requests ahead, so the next one is usually
 * here already when a task ends: the loop first receives everything that
 * has arrived (that is also when it sees a SKIP), then runs the oldest
 * request. Results leave with MPI_Isend and the loop goes on to the next
 * task at once; finished sends are collected between tasks. A large output
 * is sent from the task's own buffer (out of line, see mpi_internal.h).
 * With MPI's single-copy transfer (CMA, the default on Linux) rank 0 pulls
 * it while this rank computes; without it (single_copy_mechanism=none) the
 * transfer advances only when this rank calls MPI, between tasks, so a
 * large result of a busy rank may arrive one task late. Waiting for each
 * send instead cost this rank a quarter of its CPU in MPI's spin loop on
 * an oversubscribed machine.
 *
 * Everything that arrives is checked (wire.h's decoder, the size against
 * max_payload) before use; a request that fails the checks is answered
 * with -EPROTO under the id it claims, which rank 0 does not accept
 * either, so the mismatch ends in rank 0 retiring this rank rather than in
 * a wrong result.
 */
#include <errno.h>
#include <sched.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "concur/error.h"
#include "concur/process.h"
#include "mpi/mpi_internal.h"
#include "platform/platform.h"
#include "process/task_internal.h"
#include "process/wire.h"

/* The communicator of the task running in this thread (test hook). */
static __thread MPI_Comm task_comm = MPI_COMM_NULL;

MPI_Comm cci_mpi_worker_comm(void)
{
    return task_comm;
}

struct wmsg {
    struct wmsg *next;
    size_t len;
    uint8_t buf[];
};

struct worker {
    MPI_Comm comm;
    int rank;
    uint64_t max_payload;
    MPI_Request *reqs; /* sends in progress, and their buffers */
    void **bufs;
    size_t nsends, cap;
    struct wmsg *head, *tail;   /* received requests, oldest first */
    struct cci_mpi_cache cache; /* for the wmsg blocks */
    uint64_t skip_through;      /* do not run requests with id <= this */
    bool exit;
    int err; /* -EIO or -ENOMEM once the loop must stop */
};

static int fail_mpi(struct worker *w, int mpi_err, const char *call)
{
    char text[MPI_MAX_ERROR_STRING + 64];
    cci_mpi_describe(mpi_err, call, text, sizeof text);
    fprintf(stderr, "concur: MPI pool, worker rank %d: %s\n", w->rank, text);
    return w->err = -EIO;
}

static uint64_t raw_id(const uint8_t *buf, size_t len)
{
    uint64_t v = 0;
    if (len >= 16)
        for (int i = 15; i >= 8; i--)
            v = v << 8 | buf[i];
    return v;
}

/* Receives one probed message. A message larger than any valid request is
 * received truncated (MPI still removes it) and queued empty, so that it
 * is answered as malformed. */
static int receive(struct worker *w, MPI_Message *m, MPI_Status *st)
{
    int count = 0;
    MPI_Get_count(st, MPI_BYTE, &count);
    size_t limit = CCI_TASK_HEADER + CCI_TASK_NAME_MAX + w->max_payload;
    bool oversized = count < 0 || (size_t)count > limit;
    size_t len = oversized ? 0 : (size_t)count;
    struct wmsg *msg = cci_mpi_buf_alloc(&w->cache, sizeof *msg + len);
    if (!msg) {
        fprintf(stderr,
                "concur: MPI pool, worker rank %d: no memory for "
                "a %d-byte request\n",
                w->rank, count);
        return w->err = -ENOMEM;
    }
    msg->next = NULL;
    msg->len = len;
    int rc = MPI_Mrecv(msg->buf, (int)len, MPI_BYTE, m, MPI_STATUS_IGNORE);
    if (rc != MPI_SUCCESS && !oversized) {
        cci_mpi_buf_free(&w->cache, msg);
        return fail_mpi(w, rc, "MPI_Mrecv");
    }
    if (st->MPI_TAG == CCI_MPI_TAG_CONTROL) {
        uint32_t kind;
        uint64_t id;
        if (cci_mpi_control_decode(msg->buf, msg->len, &kind, &id) == 0 &&
            id > w->skip_through)
            w->skip_through = id;
        /* A malformed control message is dropped: it can only ask to
         * skip work, and a wrong skip would lose results silently. */
        cci_mpi_buf_free(&w->cache, msg);
        return 0;
    }
    if (st->MPI_TAG != CCI_MPI_TAG_TASK)
        msg->len = 0; /* answered as malformed */
    if (w->tail)
        w->tail->next = msg;
    else
        w->head = msg;
    w->tail = msg;
    return 0;
}

/* Receives everything rank 0 has sent so far. */
static int drain(struct worker *w)
{
    for (;;) {
        int flag = 0;
        MPI_Message m;
        MPI_Status st;
        int rc = MPI_Improbe(0, MPI_ANY_TAG, w->comm, &flag, &m, &st);
        if (rc != MPI_SUCCESS)
            return fail_mpi(w, rc, "MPI_Improbe");
        if (!flag)
            return 0;
        if (receive(w, &m, &st) < 0)
            return w->err;
    }
}

/* A buffer being sent is malloc'd, or from the cache (an output written
 * in place in the room handle() offered): the latter are stored with the
 * low bit set (cache buffers are 16-byte aligned). */
static void *untag(void *b)
{
    return (void *)((uintptr_t)b & ~(uintptr_t)1);
}

static void release(struct worker *w, void *tagged)
{
    if ((uintptr_t)tagged & 1)
        cci_mpi_buf_free(&w->cache, untag(tagged));
    else
        free(tagged);
}

static void release_out(struct worker *w, void *out, bool cached)
{
    if (cached)
        cci_mpi_buf_free(&w->cache, out);
    else
        free(out);
}

/* Starts sending buf (malloc'd, or from the cache when cached; owned from
 * here on). */
static int post(struct worker *w, void *buf, bool cached, size_t len, int tag)
{
    if (cached)
        buf = (void *)((uintptr_t)buf | 1);
    if (w->nsends == w->cap) {
        size_t cap = w->cap ? w->cap * 2 : 16;
        MPI_Request *r = realloc(w->reqs, cap * sizeof *r);
        if (r)
            w->reqs = r;
        void **b = r ? realloc(w->bufs, cap * sizeof *b) : NULL;
        if (b)
            w->bufs = b;
        if (!b) {
            release(w, buf);
            fprintf(stderr,
                    "concur: MPI pool, worker rank %d: out of "
                    "memory\n",
                    w->rank);
            return w->err = -ENOMEM;
        }
        w->cap = cap;
    }
    MPI_Request req;
    int rc =
        MPI_Isend(untag(buf), (int)len, MPI_BYTE, 0, tag, w->comm, &req);
    if (rc != MPI_SUCCESS) {
        release(w, buf);
        return fail_mpi(w, rc, "MPI_Isend");
    }
    w->reqs[w->nsends] = req;
    w->bufs[w->nsends] = buf;
    w->nsends++;
    return 0;
}

/* Frees the buffers of the sends that have completed. */
static int test_sends(struct worker *w)
{
    if (w->nsends == 0)
        return 0;
    int done = 0;
    int idx[64];
    int n = w->nsends < 64 ? (int)w->nsends : 64;
    int rc = MPI_Testsome(n, w->reqs, &done, idx, MPI_STATUSES_IGNORE);
    if (rc != MPI_SUCCESS)
        return fail_mpi(w, rc, "MPI_Testsome");
    if (done == MPI_UNDEFINED || done == 0)
        return 0;
    for (int i = 0; i < done; i++) {
        release(w, w->bufs[idx[i]]);
        w->bufs[idx[i]] = NULL;
    }
    size_t k = 0;
    for (size_t i = 0; i < w->nsends; i++) {
        if (!w->bufs[i])
            continue;
        w->reqs[k] = w->reqs[i];
        w->bufs[k] = w->bufs[i];
        k++;
    }
    w->nsends = k;
    return 0;
}

/* Sends the answer to request id. Takes out (malloc'd, from the cache
 * when out_cached, or NULL). */
static int send_result(struct worker *w, uint64_t id, int status,
                       const char *msg, void *out, bool out_cached,
                       size_t out_len)
{
    size_t mlen = msg ? strnlen(msg, CCI_MESSAGE_MAX) : 0;
    if (status >= 0) {
        mlen = 0;
    } else {
        release_out(w, out, out_cached);
        out = NULL;
        out_len = 0;
    }
    bool ool = out_len > CCI_MPI_INLINE_MAX;
    size_t cap = CCI_TASK_HEADER + mlen + (ool ? 0 : out_len);
    uint8_t *b = malloc(cap);
    if (!b && out_len) {
        /* Keep the protocol (one answer per request) even now. */
        release_out(w, out, out_cached);
        return send_result(w, id, -ENOMEM,
                           "no memory on the worker rank for the result", NULL,
                           false, 0);
    }
    if (!b) {
        fprintf(stderr, "concur: MPI pool, worker rank %d: out of memory\n",
                w->rank);
        return w->err = -ENOMEM;
    }
    long n = cci_result_encode(b, cap, status, id, msg, mlen, ool,
                               ool ? NULL : out, out_len);
    if (!ool)
        release_out(w, out, out_cached);
    if (n < 0) { /* cannot happen: cap is what the encoding needs */
        free(b);
        if (ool)
            release_out(w, out, out_cached);
        return fail_mpi(w, MPI_ERR_COUNT, "cci_result_encode");
    }
    int rc = post(w, b, false, (size_t)n, CCI_MPI_TAG_RESULT);
    if (ool) {
        if (rc < 0)
            release_out(w, out, out_cached);
        else
            rc = post(w, out, out_cached, out_len, CCI_MPI_TAG_DATA);
    }
    return rc;
}

static int send_failure(struct worker *w, uint64_t id, int status,
                        const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int send_failure(struct worker *w, uint64_t id, int status,
                        const char *fmt, ...)
{
    char text[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    return send_result(w, id, status, text, NULL, false, 0);
}

static int handle(struct worker *w, const struct wmsg *m)
{
    struct cci_task_view v;
    if (cci_task_decode(m->buf, m->len, w->max_payload, &v) < 0 ||
        v.out_of_line)
        return send_failure(w, raw_id(m->buf, m->len), -EPROTO,
                            "worker rank %d received a malformed request",
                            w->rank);
    if (v.kind == CCI_TASK_EXIT) {
        w->exit = true;
        return 0;
    }
    if (v.id <= w->skip_through)
        return 0; /* rank 0 gave up on it and expects no answer */
    char name[CC_TASK_NAME_MAX + 1];
    memcpy(name, v.name, v.name_len);
    name[v.name_len] = '\0';
    const cc_task_def *def = cc_task_find(name);
    if (!def)
        return send_failure(w, v.id, CC_ENOT_REGISTERED,
                            "task '%s' is not registered on rank %d", name,
                            w->rank);
    /* A large request (a map's chunk) gets room for its output from the
     * cache (cc_task_output; the batch asks for its whole output there),
     * so that the chunk's output pages are not faulted in afresh every
     * time. */
    size_t room = 0;
    uint8_t *arena = NULL;
    if (v.payload_len >= CCI_MPI_CACHE_MIN / 2 &&
        v.payload_len <= CCI_MPI_CACHE_BYTES / 4) {
        room = 2 * (size_t)v.payload_len + CCI_MPI_INLINE_MAX;
        arena = cci_mpi_buf_alloc(&w->cache, room);
    }
    void *out = NULL;
    size_t out_len = 0;
    char *msg = NULL;
    bool in_place = false;
    struct cci_task_runner run;
    task_comm = w->comm;
    cci_task_runner_begin(&run, def);
    int status = cci_task_runner_run(&run, v.payload, (size_t)v.payload_len,
                                     arena, room, &out, &out_len, &in_place,
                                     &msg);
    cci_task_runner_end(&run);
    task_comm = MPI_COMM_NULL;
    if (arena && !in_place)
        cci_mpi_buf_free(&w->cache, arena);
    int rc;
    if (status >= 0 && out_len > w->max_payload) {
        release_out(w, out, in_place);
        rc = send_failure(w, v.id, -EMSGSIZE,
                          "task '%s' returned %zu bytes, more than the "
                          "pool's max_payload (%llu)",
                          name, out_len, (unsigned long long)w->max_payload);
    } else {
        rc = send_result(w, v.id, status, msg, out, in_place, out_len);
    }
    free(msg);
    return rc;
}

static void pause_ns(int64_t ns)
{
    struct timespec ts = {0, (long)ns};
    nanosleep(&ts, NULL);
}

int cci_mpi_serve(MPI_Comm comm, int rank, const struct cci_mpi_config *cfg)
{
    struct worker w = {
        .comm = comm, .rank = rank, .max_payload = cfg->max_payload};
    cci_mpi_cache_init(&w.cache);
    struct cci_mpi_backoff idle;
    cci_mpi_backoff_init(&idle, CCI_MPI_PAUSE_WORKER_NS);
    while (!w.err) {
        if (drain(&w) < 0 || test_sends(&w) < 0)
            break;
        struct wmsg *m = w.head;
        if (!m) {
            if (w.exit)
                break;
            int64_t p = cci_mpi_backoff_next(&idle, cci_now_ns());
            if (p)
                pause_ns(p);
            else
                sched_yield();
            continue;
        }
        cci_mpi_backoff_reset(&idle, cci_now_ns());
        w.head = m->next;
        if (!w.head)
            w.tail = NULL;
        handle(&w, m);
        cci_mpi_buf_free(&w.cache, m);
    }
    while (w.head) {
        struct wmsg *m = w.head;
        w.head = m->next;
        cci_mpi_buf_free(&w.cache, m);
    }
    int rc = MPI_SUCCESS;
    if (!w.err) {
        /* Rank 0 receives every result before it sends EXIT, so these
         * complete. */
        rc = MPI_Waitall((int)w.nsends, w.reqs, MPI_STATUSES_IGNORE);
        if (rc == MPI_SUCCESS)
            rc = MPI_Send(NULL, 0, MPI_BYTE, 0, CCI_MPI_TAG_BYE, comm);
        if (rc != MPI_SUCCESS)
            fail_mpi(&w, rc, "MPI_Send");
    }
    /* After an MPI failure, sends may still be posted: their buffers stay
     * allocated rather than be freed under MPI. */
    if (!w.err)
        for (size_t i = 0; i < w.nsends; i++)
            release(&w, w.bufs[i]);
    free(w.reqs);
    free(w.bufs);
    cci_mpi_cache_destroy(&w.cache);
    return w.err;
}
