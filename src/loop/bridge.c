/*
 * Bridges from other threads and processes to the loop: run_in_executor
 * (a pool future brought back to the loop's thread) and child watching
 * (a pidfd).
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#include "concur/error.h"
#include "loop/loop_internal.h"
#include "platform/process_platform.h"

/* ---- run_in_executor --------------------------------------------------------
 * The pool's future completes in a worker; a waker brings that to the loop
 * thread, where the outcome is copied into the loop's future. The pool's
 * results are plain pointers without destructors, so copying the pointer
 * is a complete transfer. */
struct bridge {
    cci_waker w;
    cc_future *pool_f;
    cc_future *loop_f;
};

static void bridge_fired(cci_waker *w, bool fired)
{
    struct bridge *b = (struct bridge *)w;
    if (!fired || cc_future_cancelled(b->pool_f)) {
        cc_future_cancel(b->pool_f);
        cc_future_cancel(b->loop_f);
    } else {
        void *value = NULL;
        int rc = cc_future_result(b->pool_f, CC_NOWAIT, &value);
        /* -ECANCELED from set_*: the loop's future was cancelled meanwhile,
         * and its outcome stays that. */
        if (rc >= 0)
            (void)cc_future_set_result(b->loop_f, value, NULL);
        else
            (void)cci_future_finish(b->loop_f, rc, NULL, NULL,
                                    cc_future_error_message(b->pool_f));
    }
    cc_future_unref(b->pool_f);
    cc_future_unref(b->loop_f);
    free(b);
}

/* Cancelling the loop's future cancels the work if it has not started.
 * Runs once, when the loop's future completes, in whatever thread did it. */
static int propagate_cancel(cc_future *loop_f, void *ctx)
{
    cc_future *pool_f = ctx;
    if (cc_future_cancelled(loop_f))
        cc_future_cancel(pool_f);
    cc_future_unref(pool_f);
    return 0;
}

static int default_executor(cc_loop *loop, cc_executor **out)
{
    if (!loop->executor) {
        int rc = cc_thread_pool_new(&loop->executor, NULL);
        if (rc < 0)
            return rc;
        loop->own_executor = true;
    }
    *out = loop->executor;
    return 0;
}

int cc_loop_run_in_executor(cc_loop *loop, cc_executor *ex, cc_task_fn fn,
                            void *arg, cc_future **out)
{
    if (!loop || !fn || !out)
        return -EINVAL;
    int rc = cci_loop_check_thread(loop);
    if (rc == 0)
        rc = cci_loop_check_open(loop);
    if (rc == 0 && !ex)
        rc = default_executor(loop, &ex);
    if (rc < 0)
        return rc;
    struct bridge *b = calloc(1, sizeof *b);
    if (!b)
        return -ENOMEM;
    rc = cc_future_new(&b->loop_f);
    if (rc < 0) {
        free(b);
        return rc;
    }
    rc = cc_executor_submit(ex, fn, arg, &b->pool_f);
    if (rc < 0) {
        cc_future_unref(b->loop_f);
        free(b);
        return rc;
    }
    /* Without the propagation (no memory) the work still completes and
     * the future stays correct; only an early cancel is lost. */
    if (cc_future_add_done_callback(b->loop_f, propagate_cancel,
                                    cc_future_ref(b->pool_f)) < 0)
        cc_future_unref(b->pool_f);
    *out = cc_future_ref(b->loop_f);
    cci_waker_arm(loop, &b->w, b->pool_f, bridge_fired);
    return 0;
}

/* ---- child processes ----------------------------------------------------- */

struct cci_child {
    struct cci_io io; /* the pidfd */
    cc_handle handle; /* reaps on the loop thread */
    cc_future *f;
    struct cci_child *prev, *next;
};

static void child_unlink_free(cc_loop *loop, struct cci_child *c)
{
    cci_loop_io_set(loop, &c->io, 0);
    close(c->io.fd);
    if (c->prev)
        c->prev->next = c->next;
    else
        loop->children = c->next;
    if (c->next)
        c->next->prev = c->prev;
    cc_future_unref(c->f);
    free(c);
}

static void child_reap(cc_loop *loop, void *ctx)
{
    struct cci_child *c = ctx;
    int code = 0;
    int rc = cci_pidfd_reap(c->io.fd, &code);
    if (rc == 0)
        return; /* not yet: level-triggered, we will be back */
    /* Completing runs the future's callbacks (user code): unhook first so
     * that nothing they do can reach this record. */
    cc_future *f = cc_future_ref(c->f);
    child_unlink_free(loop, c);
    if (rc > 0)
        (void)cc_future_set_result(f, (void *)(intptr_t)code, NULL);
    else
        (void)cc_future_set_error(f, rc, "cannot reap the child");
    cc_future_unref(f);
}

static void child_event(cc_loop *loop, struct cci_io *io, uint32_t events)
{
    (void)events;
    struct cci_child *c = (struct cci_child *)io;
    cci_loop_ready(loop, &c->handle);
}

int cc_loop_watch_child(cc_loop *loop, pid_t pid, cc_future **out)
{
    if (!loop || !out || pid <= 0)
        return -EINVAL;
    int rc = cci_loop_check_thread(loop);
    if (rc == 0)
        rc = cci_loop_check_open(loop);
    if (rc < 0)
        return rc;
    struct cci_child *c = calloc(1, sizeof *c);
    if (!c)
        return -ENOMEM;
    rc = cc_future_new(&c->f);
    if (rc < 0) {
        free(c);
        return rc;
    }
    int fd = cci_pidfd_open_child(pid);
    if (fd < 0) {
        cc_future_unref(c->f);
        free(c);
        return fd;
    }
    c->io.on_event = child_event;
    c->io.fd = fd;
    cci_handle_init_embedded(&c->handle, loop, child_reap, c);
    rc = cci_loop_io_set(loop, &c->io, CCI_POLL_IN);
    if (rc < 0) {
        close(fd);
        cc_future_unref(c->f);
        free(c);
        return rc;
    }
    c->next = loop->children;
    if (c->next)
        c->next->prev = c;
    loop->children = c;
    *out = cc_future_ref(c->f);
    return 0;
}

void cci_loop_drop_children(cc_loop *loop)
{
    while (loop->children) {
        struct cci_child *c = loop->children;
        cc_future_cancel(c->f);
        child_unlink_free(loop, c);
    }
}
