/*
 * map.c — Executor.map and imap_unordered over any executor.
 *
 * The input is cut into chunks of `chunksize` elements; each chunk is one
 * submitted task that runs fn over its elements in order, storing each
 * result in the map's results array, and stops at the first failure (whose
 * element index it records). Iteration then reads the results in input
 * order (waiting for each chunk's future) or chunk by chunk in completion
 * order (as_completed). As in Python, the first error or the deadline ends
 * the map: chunks that have not started are cancelled.
 */
#include <errno.h>
#include <stdlib.h>

#include "concur/error.h"
#include "executor/executor_internal.h"
#include "executor/future_index.h"
#include "time/deadline.h"

struct chunk {
    struct cc_map *map;
    size_t start, count;
    size_t failed_at; /* index of the failed element, SIZE_MAX if none */
};

struct cc_map {
    cc_task_fn fn;
    void *const *args;
    size_t n;
    void **results;
    struct chunk *chunks;
    cc_future **futures; /* one per chunk */
    size_t nchunks;
    size_t chunksize;
    cci_future_ref *by_future; /* unordered: futures sorted, for lookup */
    int64_t deadline;
    bool unordered;
    bool finished;
    /* ordered: the next element to yield */
    size_t next_index;
    /* unordered: the chunk being yielded and the position in it */
    cc_as_completed *completed;
    struct chunk *current;
    size_t current_pos;
};

static int run_chunk(void *arg, void **unused)
{
    (void)unused;
    struct chunk *c = arg;
    struct cc_map *m = c->map;
    for (size_t i = c->start; i < c->start + c->count; i++) {
        void *result = NULL;
        int status = m->fn(m->args[i], &result);
        if (status < 0) {
            c->failed_at = i;
            return status; /* cc_task_fail's message rides along */
        }
        m->results[i] = result;
    }
    return 0;
}

static void finish(struct cc_map *m)
{
    if (m->finished)
        return;
    m->finished = true;
    cci_futures_cancel(m->futures, m->nchunks);
}

/* as_completed yields futures; this finds their chunk in O(log n). */
static int index_futures(struct cc_map *m)
{
    m->by_future = cci_future_index_new(m->futures, m->nchunks);
    return m->by_future ? 0 : -ENOMEM;
}

int cc_executor_map(cc_executor *ex, cc_task_fn fn, void *const *args,
                    size_t n, const cc_map_options *opts, cc_map **out)
{
    cc_map_options o = CC_MAP_OPTIONS_DEFAULT;
    if (opts)
        o = *opts;
    if (!ex || !fn || !out || (n > 0 && !args) ||
        !cci_duration_valid(o.timeout))
        return -EINVAL;
    size_t chunksize = o.chunksize ? o.chunksize : 1;
    struct cc_map *m = calloc(1, sizeof *m);
    if (!m)
        return -ENOMEM;
    m->fn = fn;
    m->args = args;
    m->n = n;
    m->unordered = o.unordered;
    m->deadline = cci_deadline_after(o.timeout);
    m->chunksize = chunksize;
    m->nchunks = n / chunksize + (n % chunksize != 0);
    m->results = calloc(n ? n : 1, sizeof *m->results);
    m->chunks = calloc(m->nchunks ? m->nchunks : 1, sizeof *m->chunks);
    m->futures = calloc(m->nchunks ? m->nchunks : 1, sizeof *m->futures);
    int rc = (m->results && m->chunks && m->futures) ? 0 : -ENOMEM;
    size_t submitted = 0;
    for (; rc == 0 && submitted < m->nchunks; submitted++) {
        struct chunk *c = &m->chunks[submitted];
        c->map = m;
        c->start = submitted * chunksize;
        c->count = n - c->start < chunksize ? n - c->start : chunksize;
        c->failed_at = SIZE_MAX;
        rc = cc_executor_submit(ex, run_chunk, c, &m->futures[submitted]);
    }
    if (rc == 0 && m->unordered)
        rc = index_futures(m);
    if (rc == 0 && m->unordered)
        rc = cc_as_completed_new(&m->completed, m->futures, m->nchunks,
                                 o.timeout);
    if (rc != 0) {
        /* Nothing may stay behind: cancel what was queued, wait for what
         * already runs (it writes into our arrays), then free. Entries never
         * submitted are NULL. */
        if (!m->futures)
            m->nchunks = 0;
        cc_map_free(m);
        return rc;
    }
    *out = m;
    return 0;
}

/* The chunk a finished future reports on: its error (with the failing
 * index) or 0. */
static int chunk_outcome(struct cc_map *m, size_t k, size_t *failed_at)
{
    int err = cc_future_error(m->futures[k], CC_NOWAIT);
    *failed_at = m->chunks[k].failed_at;
    return err;
}

static int next_ordered(struct cc_map *m, void **result, size_t *index)
{
    size_t i = m->next_index;
    size_t k = i / m->chunksize;
    if (cc_future_wait(m->futures[k], cci_duration_until(m->deadline)) ==
        -ETIMEDOUT) {
        finish(m);
        return -ETIMEDOUT;
    }
    size_t failed_at;
    int err = chunk_outcome(m, k, &failed_at);
    if (err != 0 && (err == -ECANCELED || failed_at == SIZE_MAX ||
                     i >= failed_at)) {
        if (index)
            *index = failed_at == SIZE_MAX ? i : failed_at;
        finish(m);
        return err;
    }
    if (result)
        *result = m->results[i];
    if (index)
        *index = i;
    m->next_index++;
    return 1;
}

static int next_unordered(struct cc_map *m, void **result, size_t *index)
{
    for (;;) {
        struct chunk *c = m->current;
        if (c && m->current_pos < c->count) {
            size_t i = c->start + m->current_pos;
            if (i == c->failed_at) {
                int err = cc_future_error(m->futures[c - m->chunks],
                                          CC_NOWAIT);
                if (index)
                    *index = i;
                finish(m);
                return err;
            }
            m->current_pos++;
            if (result)
                *result = m->results[i];
            if (index)
                *index = i;
            return 1;
        }
        cc_future *f;
        int rc = cc_as_completed_next(m->completed, &f);
        if (rc <= 0) {
            if (rc < 0)
                finish(m);
            return rc;
        }
        size_t k = cci_future_index_find(m->by_future, m->nchunks, f);
        int err = cc_future_error(f, CC_NOWAIT);
        if (err != 0 && m->chunks[k].failed_at == SIZE_MAX) {
            if (index)
                *index = m->chunks[k].start;
            finish(m);
            return err; /* cancelled or broken before it ran */
        }
        m->current = &m->chunks[k];
        m->current_pos = 0;
    }
}

int cc_map_next(cc_map *m, void **result, size_t *index)
{
    if (!m)
        return -EINVAL;
    if (m->finished)
        return 0;
    if (!m->unordered && m->next_index >= m->n)
        return 0;
    int rc = m->unordered ? next_unordered(m, result, index)
                          : next_ordered(m, result, index);
    if (rc == 0)
        m->finished = true;
    return rc;
}

void cc_map_free(cc_map *m)
{
    if (!m)
        return;
    cc_as_completed_free(m->completed);
    cci_futures_release(m->futures, m->nchunks);
    free(m->by_future);
    free(m->futures);
    free(m->chunks);
    free(m->results);
    free(m);
}
