/*
 * map_bytes.c — Executor.map for bytes tasks, over any executor.
 *
 * With chunks of one element each element is one submitted task. With
 * larger chunks a chunk is one task of the internal "concur.batch" task,
 * which runs the user's task over every element of the chunk in the worker
 * and returns all outputs in one message, stopping at the first failure
 * (whose index, code and message it reports after the outputs that
 * succeeded). So a 100 000-element map of tiny tasks costs a few dozen
 * round trips, not 100 000.
 *
 * Batch input:  u32 magic "CCB1" | u32 name length | u64 count |
 *               name | count x u64 length | the elements, back to back
 * Batch output: u32 magic "CCB2" | i32 status | u64 done | u64 failed_at |
 *               u32 message length | u32 0 | done x u64 length |
 *               the outputs, back to back | message
 * Both are decoded with every length checked against the bytes present.
 *
 * What a tiny element costs (a map of 8-byte tasks on the MPI pool is
 * the benchmark, docs/benchmarks.md): the caller writes each chunk once,
 * straight into the executor's request (submit_bytes_fill); the worker
 * runs every element of a chunk through one task runner and lets each
 * write its output in place at the end of the chunk's output
 * (cc_task_output), which itself may come from the worker's recycled
 * buffers; the caller reads the outputs where they arrived, in place.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "concur/error.h"
#include "concur/process.h"
#include "executor/executor_internal.h"
#include "executor/future_index.h"
#include "process/task_internal.h"
#include "process/wire.h"
#include "time/deadline.h"


#define BATCH_IN_MAGIC CCI_BATCH_IN_MAGIC
#define BATCH_OUT_MAGIC CCI_BATCH_OUT_MAGIC
#define BATCH_IN_HEADER CCI_BATCH_IN_HEADER
#define BATCH_OUT_HEADER CCI_BATCH_OUT_HEADER

static uint64_t rd64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

static uint32_t rd32(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

static void wr64(uint8_t *p, uint64_t v)
{
    memcpy(p, &v, 8);
}

static void wr32(uint8_t *p, uint32_t v)
{
    memcpy(p, &v, 4);
}

/* ---- the batch task (runs in the worker) --------------------------------------- */

/* Room kept free at the end of a batch's output for the next element's
 * output in place; a larger one is malloc'd by cc_task_output and copied. */
#define OUT_ROOM ((size_t)4096)

/* The batch's output buffer: from cc_task_output when the runner offers
 * room (an MPI worker rank recycles it), else malloc'd. */
struct outbuf {
    uint8_t *p;
    size_t cap, used;
    bool given; /* from cc_task_output: never realloc'd nor freed here */
};

/* Grows b to at least need bytes, doubling. Returns 0 or -ENOMEM (b is
 * then unchanged). */
static int grow(struct outbuf *b, size_t need)
{
    size_t ncap = b->cap * 2 > need ? b->cap * 2 : need;
    uint8_t *np;
    if (b->given) {
        np = malloc(ncap);
        if (np)
            memcpy(np, b->p, b->used);
    } else {
        np = realloc(b->p, ncap);
    }
    if (!np)
        return -ENOMEM;
    b->p = np;
    b->cap = ncap;
    b->given = false;
    return 0;
}

static void outbuf_free(struct outbuf *b)
{
    if (!b->given)
        free(b->p);
}

static int cci_batch_task(const void *in, size_t len, void **out, size_t *out_len)
{
    const uint8_t *b = in;
    if (len < BATCH_IN_HEADER || rd32(b) != BATCH_IN_MAGIC)
        return cc_task_fail(-EPROTO, "malformed batch");
    uint32_t name_len = rd32(b + 4);
    uint64_t count = rd64(b + 8);
    size_t rest = len - BATCH_IN_HEADER;
    if (name_len == 0 || name_len > CC_TASK_NAME_MAX || name_len > rest ||
        count > (rest - name_len) / 8)
        return cc_task_fail(-EPROTO, "malformed batch");
    char name[CC_TASK_NAME_MAX + 1];
    memcpy(name, b + BATCH_IN_HEADER, name_len);
    name[name_len] = 0;
    const cc_task_def *def = cc_task_find(name);
    if (!def)
        return cc_task_fail(CC_ENOT_REGISTERED,
                            "task '%s' is not registered in this process",
                            name);
    const uint8_t *lens = b + BATCH_IN_HEADER + name_len;
    const uint8_t *data = lens + count * 8;
    size_t avail = rest - name_len - (size_t)count * 8;
    /* Check every length before running anything. */
    size_t sum = 0;
    for (uint64_t i = 0; i < count; i++) {
        uint64_t l = rd64(lens + i * 8);
        if (l > avail - sum)
            return cc_task_fail(-EPROTO, "malformed batch");
        sum += (size_t)l;
    }
    if (sum != avail)
        return cc_task_fail(-EPROTO, "malformed batch");

    /* One output buffer, grown by doubling: the header and the length
     * table first (count is known), the outputs appended as they come.
     * Each element may write its output in place (cc_task_output) into
     * the room left at the end; there is always at least OUT_ROOM. */
    struct outbuf o;
    o.used = BATCH_OUT_HEADER + (size_t)count * 8;
    o.cap = o.used + OUT_ROOM + 16 * (size_t)count;
    o.p = cc_task_output(o.cap);
    o.given = o.p != NULL;
    if (!o.p && !(o.p = malloc(o.cap)))
        return -ENOMEM;
    int status = 0;
    uint64_t done = 0;
    char *msg = NULL;
    size_t at = 0;
    bool oom = false;
    struct cci_task_runner run;
    cci_task_runner_begin(&run, def);
    for (; done < count; done++) {
        uint64_t l = rd64(lens + done * 8);
        void *res;
        size_t res_len;
        bool in_place;
        status = cci_task_runner_run(&run, data + at, (size_t)l,
                                     o.p + o.used, o.cap - o.used, &res,
                                     &res_len, &in_place, &msg);
        at += (size_t)l;
        if (status < 0)
            break;
        wr64(o.p + BATCH_OUT_HEADER + done * 8, res_len);
        if (!in_place) {
            if (res_len > o.cap - o.used &&
                grow(&o, o.used + res_len + OUT_ROOM) < 0) {
                free(res);
                oom = true;
                break;
            }
            if (res_len)
                memcpy(o.p + o.used, res, res_len);
            free(res);
        }
        o.used += res_len;
        if (o.cap - o.used < OUT_ROOM && grow(&o, o.used + OUT_ROOM) < 0) {
            oom = true;
            break;
        }
    }
    cci_task_runner_end(&run);
    size_t mlen = msg ? strlen(msg) : 0;
    if (oom || (mlen > o.cap - o.used && grow(&o, o.used + mlen) < 0)) {
        outbuf_free(&o);
        free(msg);
        return -ENOMEM;
    }
    if (mlen)
        memcpy(o.p + o.used, msg, mlen);
    free(msg);
    /* The outputs follow the table of `done` lengths: close the gap left
     * by the elements that never ran. */
    size_t table_end = BATCH_OUT_HEADER + (size_t)done * 8;
    size_t full_end = BATCH_OUT_HEADER + (size_t)count * 8;
    if (done < count)
        memmove(o.p + table_end, o.p + full_end, o.used + mlen - full_end);
    size_t size = o.used + mlen - (full_end - table_end);
    wr32(o.p, BATCH_OUT_MAGIC);
    wr32(o.p + 4, (uint32_t)status);
    wr64(o.p + 8, done);
    wr64(o.p + 16, status < 0 ? done : UINT64_MAX);
    wr32(o.p + 24, (uint32_t)mlen);
    wr32(o.p + 28, 0);
    *out = o.p;
    *out_len = size;
    return 0;
}

CC_TASK_REGISTER_AS(cci_batch_task, "concur.batch");

/* ---- the map (runs in the caller) -------------------------------------------------- */

struct chunk {
    size_t start, count;
    bool decoded;
    int status;       /* the failing element's code, or 0 */
    size_t failed_at; /* absolute index, SIZE_MAX if none */
    size_t done;      /* outputs available */
    /* Outputs are read in order: the length table and a cursor into the
     * data that follows it (both inside the future's bytes). */
    const uint8_t *lens;
    const uint8_t *cursor;
    const void *single; /* unbatched: the future's bytes (may be NULL) */
    size_t single_len;
    const char *msg; /* points into the future's bytes, not terminated */
    size_t msg_len;
};


struct cc_bytes_map {
    const cc_task_def *def;
    size_t n, chunksize, nchunks;
    bool batched;
    struct chunk *chunks;
    cc_future **futures;
    cci_future_ref *by_future;
    int64_t deadline;
    bool unordered, finished;
    cc_as_completed *completed;
    struct chunk *current; /* the chunk being read, and its next element */
    size_t current_pos;
    char *error_message;
};

static size_t auto_chunksize(cc_executor *ex, size_t n)
{
    /* multiprocessing.Pool: divmod(len, 4 * workers), rounded up. */
    size_t w = cc_executor_max_workers(ex);
    size_t div = 4 * (w ? w : 1);
    size_t c = n / div + (n % div != 0);
    return c ? c : 1;
}

/* What fill_chunk writes: chunk c's batch input. */
struct chunk_input {
    const cc_task_def *def;
    size_t name_len;
    const void *const *inputs;
    const size_t *lens;
    const struct chunk *c;
};

static void fill_chunk(void *ctx, uint8_t *b)
{
    const struct chunk_input *ci = ctx;
    const struct chunk *c = ci->c;
    wr32(b, BATCH_IN_MAGIC);
    wr32(b + 4, (uint32_t)ci->name_len);
    wr64(b + 8, c->count);
    memcpy(b + BATCH_IN_HEADER, ci->def->name, ci->name_len);
    uint8_t *l = b + BATCH_IN_HEADER + ci->name_len, *d = l + c->count * 8;
    const void *const *in = ci->inputs + c->start;
    const size_t *lens = ci->lens + c->start;
    for (size_t i = 0; i < c->count; i++) {
        wr64(l + i * 8, lens[i]);
        /* Tiny elements (the case batching exists for) are copied
         * without a call to memcpy. */
        if (lens[i] == 8)
            memcpy(d, in[i], 8);
        else if (lens[i])
            memcpy(d, in[i], lens[i]);
        d += lens[i];
    }
}

static int submit_chunk(cc_bytes_map *m, cc_executor *ex,
                        const void *const *inputs, const size_t *lens,
                        struct chunk *c, cc_future **f)
{
    if (!m->batched)
        return cc_executor_submit_bytes(ex, m->def, inputs[c->start],
                                        lens[c->start], f);
    struct chunk_input ci = {m->def, strlen(m->def->name), inputs, lens, c};
    size_t size = BATCH_IN_HEADER + ci.name_len + c->count * 8;
    for (size_t i = c->start; i < c->start + c->count; i++) {
        if (lens[i] > SIZE_MAX - size)
            return -EMSGSIZE;
        size += lens[i];
    }
    /* Written once, straight into the executor's request. */
    return cci_executor_submit_bytes_fill(ex, CC_TASK(cci_batch_task), size,
                                          fill_chunk, &ci, f);
}

int cc_executor_map_bytes(cc_executor *ex, const cc_task_def *def,
                          const void *const *inputs, const size_t *lens,
                          size_t n, const cc_map_options *opts,
                          cc_bytes_map **out)
{
    cc_map_options o = {0, CC_FOREVER, false};
    if (opts)
        o = *opts;
    if (!ex || !def || !out || (n > 0 && (!inputs || !lens)) ||
        !cci_duration_valid(o.timeout))
        return -EINVAL;
    for (size_t i = 0; i < n; i++)
        if (lens[i] > 0 && !inputs[i])
            return -EINVAL;
    if (!cc_task_find(def->name) || cc_task_find(def->name) != def)
        return CC_ENOT_REGISTERED;
    cc_bytes_map *m = calloc(1, sizeof *m);
    if (!m)
        return -ENOMEM;
    m->def = def;
    m->n = n;
    m->chunksize = o.chunksize ? o.chunksize : auto_chunksize(ex, n);
    m->batched = m->chunksize > 1;
    m->nchunks = n / m->chunksize + (n % m->chunksize != 0);
    m->unordered = o.unordered;
    m->deadline = cci_deadline_after(o.timeout);
    size_t nc = m->nchunks ? m->nchunks : 1;
    m->chunks = calloc(nc, sizeof *m->chunks);
    m->futures = calloc(nc, sizeof *m->futures);
    int rc = m->chunks && m->futures ? 0 : -ENOMEM;
    for (size_t k = 0; rc == 0 && k < m->nchunks; k++) {
        struct chunk *c = &m->chunks[k];
        c->start = k * m->chunksize;
        c->count = n - c->start < m->chunksize ? n - c->start : m->chunksize;
        c->failed_at = SIZE_MAX;
        rc = submit_chunk(m, ex, inputs, lens, c, &m->futures[k]);
    }
    if (rc == 0 && m->unordered) {
        m->by_future = cci_future_index_new(m->futures, m->nchunks);
        rc = m->by_future ? 0 : -ENOMEM;
        if (rc == 0)
            rc = cc_as_completed_new(&m->completed, m->futures, m->nchunks,
                                     o.timeout);
    }
    if (rc != 0) {
        if (!m->futures)
            m->nchunks = 0;
        cc_bytes_map_free(m);
        return rc;
    }
    *out = m;
    return 0;
}

/* Reads chunk k's finished future into c (once). Returns 0 or a code for
 * the chunk as a whole (cancelled, worker lost, malformed batch output). */
static int decode_chunk(cc_bytes_map *m, size_t k)
{
    struct chunk *c = &m->chunks[k];
    if (c->decoded)
        return c->status != 0 && c->failed_at == SIZE_MAX ? c->status : 0;
    c->decoded = true;
    cc_future *f = m->futures[k];
    const void *data;
    size_t len;
    int err = cc_future_result_bytes(f, CC_NOWAIT, &data, &len);
    if (err < 0) {
        c->status = err;
        const char *fm = cc_future_error_message(f);
        c->msg = fm;
        c->msg_len = fm ? strlen(fm) : 0;
        return err;
    }
    if (!m->batched) {
        c->single = data;
        c->single_len = len;
        c->done = 1;
        return 0;
    }
    struct cci_batch_view v;
    if (cci_batch_out_decode(data, len, c->count, &v) < 0)
        return c->status = -EPROTO;
    c->lens = v.lens;
    c->cursor = v.data;
    uint64_t done = v.done;
    int32_t status = v.status;
    c->done = (size_t)done;
    if (status < 0) {
        c->status = status;
        c->failed_at = c->start + (size_t)done;
        c->msg = v.message;
        c->msg_len = v.message_len;
    }
    return 0;
}

static void finish(cc_bytes_map *m)
{
    if (m->finished)
        return;
    m->finished = true;
    cci_futures_cancel(m->futures, m->nchunks);
}

static int fail(cc_bytes_map *m, int err, const struct chunk *c,
                size_t at, size_t *index)
{
    free(m->error_message);
    m->error_message = NULL;
    if (c && c->msg_len) {
        m->error_message = malloc(c->msg_len + 1);
        if (m->error_message) {
            memcpy(m->error_message, c->msg, c->msg_len);
            m->error_message[c->msg_len] = 0;
        }
    }
    if (index)
        *index = at;
    finish(m);
    return err;
}

/* Yields element current_pos of the current chunk, which has its output
 * (current_pos < done): the path every element but a chunk's first takes. */
static inline int take(cc_bytes_map *m, struct chunk *c, const void **data,
                       size_t *len, size_t *index)
{
    size_t pos = m->current_pos++;
    const void *d;
    size_t l;
    if (!m->batched) {
        d = c->single;
        l = c->single_len;
    } else {
        l = (size_t)rd64(c->lens + pos * 8);
        d = c->cursor;
        c->cursor += l;
    }
    if (data)
        *data = l ? d : NULL;
    if (len)
        *len = l;
    if (index)
        *index = c->start + pos;
    return 1;
}

/* The next chunk to read, decoded: in order, waiting for it within the
 * map's timeout, or the next to complete. Returns 1 with m->current set,
 * 0 at the end, or a failure (fail() done). */
static int next_chunk(cc_bytes_map *m, size_t *index)
{
    size_t k;
    if (!m->unordered) {
        k = m->current ? (size_t)(m->current - m->chunks) + 1 : 0;
        if (k >= m->nchunks)
            return 0;
        if (!m->chunks[k].decoded &&
            cc_future_wait(m->futures[k], cci_duration_until(m->deadline)) ==
                -ETIMEDOUT)
            return fail(m, -ETIMEDOUT, NULL, m->chunks[k].start, index);
    } else {
        cc_future *f;
        int rc = cc_as_completed_next(m->completed, &f);
        if (rc <= 0)
            return rc < 0 ? fail(m, rc, NULL, 0, index) : 0;
        k = cci_future_index_find(m->by_future, m->nchunks, f);
    }
    int err = decode_chunk(m, k);
    if (err < 0)
        return fail(m, err, &m->chunks[k], m->chunks[k].start, index);
    m->current = &m->chunks[k];
    m->current_pos = 0;
    return 1;
}

/* Everything but the next element of the current chunk: the end, a
 * failed element, the next chunk. Out of line, so that the common path
 * stays a leaf without a stack frame. */
static __attribute__((noinline)) int next_slow(cc_bytes_map *m,
                                               const void **data, size_t *len,
                                               size_t *index)
{
    if (m->finished)
        return 0;
    struct chunk *c = m->current;
    if (c && m->current_pos < c->count) /* the failed element */
        return fail(m, c->status, c, c->failed_at, index);
    int rc = next_chunk(m, index);
    if (rc == 0)
        m->finished = true;
    if (rc <= 0)
        return rc;
    c = m->current;
    if (m->current_pos < c->done)
        return take(m, c, data, len, index);
    return fail(m, c->status, c, c->failed_at, index);
}

int cc_bytes_map_next(cc_bytes_map *m, const void **data, size_t *len,
                      size_t *index)
{
    if (!m)
        return -EINVAL;
    struct chunk *c = m->current;
    if (c && m->current_pos < c->done && !m->finished)
        return take(m, c, data, len, index);
    return next_slow(m, data, len, index);
}

const char *cc_bytes_map_error_message(const cc_bytes_map *m)
{
    return m ? m->error_message : NULL;
}

void cc_bytes_map_free(cc_bytes_map *m)
{
    if (!m)
        return;
    cc_as_completed_free(m->completed);
    cci_futures_release(m->futures, m->nchunks);
    free(m->by_future);
    free(m->futures);
    free(m->chunks);
    free(m->error_message);
    free(m);
}
