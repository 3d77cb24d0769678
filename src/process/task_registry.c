/*
 * task_registry.c — the name -> function table for tasks that cross a
 * process boundary, running a task as a worker does, and
 * cc_executor_submit_bytes for executors that have no bytes path of their
 * own.
 *
 * The table is a list of the registrations themselves (static storage, so
 * registering never allocates), pushed with a CAS: constructors run before
 * main, but a library loaded later registers while other threads look up.
 * Entries are never removed. A name registered twice marks both entries
 * DUPLICATE, so neither resolves: picking one would run the wrong code in
 * some process.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "concur/error.h"
#include "concur/process.h"
#include "executor/executor_internal.h"
#include "future/future_internal.h"
#include "process/task_internal.h"

enum { DEF_UNREGISTERED = 0, DEF_REGISTERED = 1, DEF_DUPLICATE = 2 };

static cc_task_def *registry; /* newest first; __atomic */

static bool name_ok(const char *name)
{
    if (!name)
        return false;
    size_t n = strnlen(name, CC_TASK_NAME_MAX + 1);
    return n >= 1 && n <= CC_TASK_NAME_MAX;
}

int cc_task_register(cc_task_def *def)
{
    if (!def || def->magic != CCI_TASK_DEF_MAGIC || !def->fn ||
        !name_ok(def->name))
        return -EINVAL;
    uint32_t expect = DEF_UNREGISTERED;
    if (!__atomic_compare_exchange_n(&def->state, &expect, DEF_REGISTERED,
                                     false, __ATOMIC_ACQ_REL,
                                     __ATOMIC_ACQUIRE))
        return expect == DEF_REGISTERED ? 0 : -EEXIST;
    cc_task_def *head = __atomic_load_n(&registry, __ATOMIC_ACQUIRE);
    do {
        def->next = head;
    } while (!__atomic_compare_exchange_n(&registry, &head, def, true,
                                          __ATOMIC_ACQ_REL,
                                          __ATOMIC_ACQUIRE));
    /* Anything older with the same name makes both unusable. Two
     * registrations racing each other both see the other here. */
    int rc = 0;
    for (cc_task_def *d = def->next; d; d = d->next) {
        if (strcmp(d->name, def->name) == 0) {
            __atomic_store_n(&d->state, DEF_DUPLICATE, __ATOMIC_RELEASE);
            __atomic_store_n(&def->state, DEF_DUPLICATE, __ATOMIC_RELEASE);
            rc = -EEXIST;
        }
    }
    if (rc)
        fprintf(stderr,
                "concur: task name '%s' registered twice; it will not "
                "resolve\n",
                def->name);
    return rc;
}

const cc_task_def *cc_task_find(const char *name)
{
    if (!name_ok(name))
        return NULL;
    for (cc_task_def *d = __atomic_load_n(&registry, __ATOMIC_ACQUIRE); d;
         d = d->next)
        if (strcmp(d->name, name) == 0)
            return __atomic_load_n(&d->state, __ATOMIC_ACQUIRE) ==
                           DEF_REGISTERED
                       ? d
                       : NULL;
    return NULL;
}

const char *cc_task_name(const cc_task_def *def)
{
    return def ? def->name : NULL;
}

/* Whether def is one of our registered entries (by identity, so a forged
 * or copied struct is refused) and still unambiguous. */
static bool registered(const cc_task_def *def)
{
    if (!def)
        return false;
    for (cc_task_def *d = __atomic_load_n(&registry, __ATOMIC_ACQUIRE); d;
         d = d->next)
        if (d == def)
            return __atomic_load_n(&d->state, __ATOMIC_ACQUIRE) ==
                   DEF_REGISTERED;
    return false;
}

bool cci_task_registered(const cc_task_def *def);
bool cci_task_registered(const cc_task_def *def)
{
    return registered(def);
}

int cc_task_run(const cc_task_def *def, const void *in, size_t len,
                void **out, size_t *out_len, char **message)
{
    if (message)
        *message = NULL;
    if (!out || !out_len || (len > 0 && !in))
        return -EINVAL;
    *out = NULL;
    *out_len = 0;
    if (!registered(def))
        return CC_ENOT_REGISTERED;
    return cci_task_invoke(def, in, len, out, out_len, message);
}

/* ---- the task's output (cc_task_output) ----------------------------------------
 * While a bytes task runs, its thread points at the slot of its runner
 * (process/task_internal.h; on the runner's stack; tasks nest, so the
 * runner saves and restores the outer one). A batch offers room in its own
 * output buffer (arena), so that a tiny task's output costs neither a
 * malloc, nor a copy, nor a free. */
static __thread struct cci_out_slot *out_slot;

void *cc_task_output(size_t len)
{
    struct cci_out_slot *s = out_slot;
    if (!s || s->used || len == 0)
        return NULL;
    s->used = true;
    void *p = s->arena && len <= s->room ? s->arena : malloc(len);
    s->given = p;
    s->given_len = p ? len : 0;
    return p;
}

/* ---- running tasks: one scope for many ------------------------------------------ */

void cci_task_runner_begin(struct cci_task_runner *r, const cc_task_def *def)
{
    r->def = def;
    r->slot = (struct cci_out_slot){NULL, 0, NULL, 0, false};
    r->outer = out_slot;
    out_slot = &r->slot;
    r->scope = cci_task_message_begin();
}

void cci_task_runner_end(struct cci_task_runner *r)
{
    free(cci_task_message_end(r->scope));
    out_slot = r->outer;
}

/* The rare endings of a task run: a failure, a message recorded by a
 * task that then succeeded, a cc_task_output buffer not returned or
 * overrun. */
static int run_end(const cc_task_def *def, const struct cci_out_slot *slot,
                   int status, void *res, size_t res_len, void **out,
                   size_t *out_len, bool *in_place, char **message)
{
    char *msg = cci_task_message_take();
    uint8_t *arena = slot->arena;
    /* The library owns what cc_task_output gave: release it unless it is
     * the output (an arena slice is never freed). */
    bool given_is_res = slot->given && res == slot->given;
    if (slot->given && !given_is_res && slot->given != arena)
        free(slot->given);
    if (status >= 0 && given_is_res && res_len > slot->given_len) {
        /* The task wrote past its buffer, or misreports its length. */
        if (slot->given != arena)
            free(res);
        free(msg);
        if (message && asprintf(message,
                                "task '%s' returned %zu bytes from a "
                                "%zu-byte cc_task_output buffer",
                                def->name, res_len, slot->given_len) < 0)
            *message = NULL;
        return -EOVERFLOW;
    }
    if (status < 0) {
        /* A task may have allocated before failing. */
        if (res && !(given_is_res && res == arena))
            free(res);
        if (message)
            *message = msg;
        else
            free(msg);
        return status;
    }
    free(msg); /* recorded by a task that then succeeded */
    *in_place = given_is_res && res == arena;
    *out = res;
    *out_len = res ? res_len : 0;
    return 0;
}

int cci_task_runner_run(struct cci_task_runner *r, const void *in, size_t len,
                        uint8_t *arena, size_t room, void **out,
                        size_t *out_len, bool *in_place, char **message)
{
    if (message)
        *message = NULL;
    *in_place = false;
    r->slot = (struct cci_out_slot){arena, room, NULL, 0, false};
    void *res = NULL;
    size_t res_len = 0;
    int status = r->def->fn(in, len, &res, &res_len);
    /* The common ending, once per element of a map: success with a
     * malloc'd output (or none), or with the cc_task_output buffer, and
     * no message recorded. */
    if (status >= 0 &&
        (!r->slot.given ||
         (res == r->slot.given && res_len <= r->slot.given_len))) {
        char *stray = cci_task_message_take();
        if (!stray) {
            *in_place = res && res == arena;
            *out = res;
            *out_len = res ? res_len : 0;
            return 0;
        }
        free(stray); /* cc_task_fail, then success: dropped */
    }
    return run_end(r->def, &r->slot, status, res, res_len, out, out_len,
                   in_place, message);
}

int cci_task_invoke(const cc_task_def *def, const void *in, size_t len,
                    void **out, size_t *out_len, char **message)
{
    struct cci_task_runner r;
    bool in_place;
    cci_task_runner_begin(&r, def);
    int rc = cci_task_runner_run(&r, in, len, NULL, 0, out, out_len,
                                 &in_place, message);
    cci_task_runner_end(&r);
    return rc;
}

/* ---- submit_bytes through a plain executor -------------------------------------
 * The executor runs a void * task; the caller gets a separate promise that
 * the task completes with bytes. Cancelling the promise before the task
 * starts makes the task skip the work. */
struct bytes_job {
    const cc_task_def *def;
    cc_future *promise;
    size_t len;
    unsigned char in[]; /* copy of the input */
};

static int run_bytes_job(void *arg, void **unused)
{
    (void)unused;
    struct bytes_job *job = arg;
    cc_future *f = job->promise;
    if (cc_future_set_running_or_notify_cancel(f) == 0) {
        void *out;
        size_t out_len;
        char *msg;
        int st = cc_task_run(job->def, job->in, job->len, &out, &out_len,
                             &msg);
        if (st < 0) {
            cci_future_finish(f, st, NULL, NULL, msg);
            free(msg);
        } else if (cc_future_set_result_bytes_owned(f, out, out_len) != 0) {
            free(out);
        }
    }
    cc_future_unref(f);
    free(job);
    return 0;
}

/* The executor dropped the job without running it (shutdown with
 * cancel_futures, a broken pool): pass that on to the promise. When the job
 * did run, it has freed itself and the inner future finished with 0, so
 * job must not be touched. */
static int inner_done(cc_future *inner, void *ctx)
{
    if (!cc_future_cancelled(inner) && cc_future_error(inner, 0) == 0)
        return 0;
    struct bytes_job *job = ctx;
    if (cc_future_cancelled(inner)) {
        cc_future_cancel(job->promise);
    } else if (cc_future_set_running_or_notify_cancel(job->promise) == 0) {
        int err = cc_future_error(inner, 0);
        cci_future_finish(job->promise, err, NULL, NULL,
                          cc_future_error_message(inner));
    }
    cc_future_unref(job->promise);
    free(job);
    return 0;
}

/* The input comes from in, or from fill(ctx, ...) when fill is set. */
static int submit_bytes_job(cc_executor *ex, const cc_task_def *def,
                            const void *in, size_t len, cci_bytes_fill_fn fill,
                            void *ctx, cc_future **out)
{
    struct bytes_job *job = malloc(sizeof *job + len);
    if (!job)
        return -ENOMEM;
    int rc = cc_future_new(&job->promise);
    if (rc < 0) {
        free(job);
        return rc;
    }
    job->def = def;
    job->len = len;
    if (fill)
        fill(ctx, job->in);
    else if (len)
        memcpy(job->in, in, len);
    cc_future *inner;
    cc_future *promise = cc_future_ref(job->promise); /* the caller's */
    rc = ex->ops->submit(ex, run_bytes_job, job, &inner);
    if (rc < 0) {
        cc_future_unref(promise);
        cc_future_unref(job->promise);
        free(job);
        return rc;
    }
    /* The inner future only tells the executor's story; the promise is
     * the task's. The job holds its own reference to the promise. */
    if (cc_future_add_done_callback(inner, inner_done, job) != 0) {
        /* Without the callback a dropped job would leak and its promise
         * never finish; waiting for the inner future settles it. */
        cc_future_wait(inner, CC_FOREVER);
        inner_done(inner, job);
    }
    cc_future_unref(inner);
    *out = promise;
    return 0;
}

int cc_executor_submit_bytes(cc_executor *ex, const cc_task_def *def,
                             const void *in, size_t len, cc_future **out)
{
    if (!ex || !def || !out || (len > 0 && !in))
        return -EINVAL;
    if (!registered(def))
        return CC_ENOT_REGISTERED;
    if (ex->ops->submit_bytes)
        return ex->ops->submit_bytes(ex, def, in, len, out);
    return submit_bytes_job(ex, def, in, len, NULL, NULL, out);
}

int cci_executor_submit_bytes_fill(cc_executor *ex, const cc_task_def *def,
                                   size_t len, cci_bytes_fill_fn fill,
                                   void *ctx, cc_future **out)
{
    if (!ex || !def || !out || !fill)
        return -EINVAL;
    if (!registered(def))
        return CC_ENOT_REGISTERED;
    if (ex->ops->submit_bytes_fill)
        return ex->ops->submit_bytes_fill(ex, def, len, fill, ctx, out);
    if (!ex->ops->submit_bytes)
        return submit_bytes_job(ex, def, NULL, len, fill, ctx, out);
    /* A bytes path that only copies: write the input for it to copy. */
    uint8_t *b = malloc(len ? len : 1);
    if (!b)
        return -ENOMEM;
    fill(ctx, b);
    int rc = ex->ops->submit_bytes(ex, def, b, len, out);
    free(b);
    return rc;
}
