/* executor.c — the executor interface: dispatch to a back-end, and
 * cc_task_fail. map lives in map.c. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "concur/error.h"
#include "error/error_internal.h"
#include "executor/executor_internal.h"
#include "trace/trace_internal.h"

/* Which message slot is live: only inside a task (depth > 0). */
static __thread char *task_message;
static __thread unsigned task_depth;

cci_task_scope cci_task_message_begin(void)
{
    cci_task_scope scope = {task_message, task_depth};
    task_message = NULL;
    task_depth = 1;
    return scope;
}

char *cci_task_message_end(cci_task_scope scope)
{
    char *m = task_message;
    task_message = scope.outer_message;
    task_depth = scope.outer_depth;
    return m;
}

char *cci_task_message_take(void)
{
    char *m = task_message;
    task_message = NULL;
    return m;
}

int cc_task_fail(int code, const char *fmt, ...)
{
    if (!task_depth)
        return cci_failure_code(code);
    va_list ap;
    va_start(ap, fmt);
    code = cci_failure_record(&task_message, code, fmt, ap);
    va_end(ap);
    return code;
}

int cc_executor_submit(cc_executor *ex, cc_task_fn fn, void *arg,
                       cc_future **out)
{
    if (!ex || !fn || !out)
        return -EINVAL;
    return ex->ops->submit(ex, fn, arg, out);
}

int cc_executor_shutdown(cc_executor *ex, bool wait, bool cancel_futures)
{
    if (!ex)
        return -EINVAL;
    return ex->ops->shutdown(ex, wait, cancel_futures);
}

void cc_executor_free(cc_executor *ex)
{
    if (!ex)
        return;
    int rc = ex->ops->shutdown(ex, true, false);
    if (rc != 0) {
        /* Only -EDEADLK: freed from one of its own tasks, a caller bug.
         * Leaking is the only safe answer; say so. */
        fprintf(stderr, "concur: cc_executor_free: %s; executor not freed\n",
                cc_strerror(rc));
        return;
    }
    cci_object_destroyed(ex); /* its name */
    ex->ops->destroy(ex);
}

const char *cc_executor_kind(const cc_executor *ex)
{
    return ex ? ex->ops->kind : NULL;
}

unsigned cc_executor_max_workers(const cc_executor *ex)
{
    return ex ? ex->ops->max_workers(ex) : 0;
}

int cc_executor_stats(const cc_executor *ex, cc_pool_stats *out)
{
    if (!ex || !out)
        return -EINVAL;
    if (!ex->ops->stats)
        return -ENOTSUP;
    return ex->ops->stats(ex, out);
}

bool cci_mutex_lock_briefly(pthread_mutex_t *m)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_nsec += 100 * 1000 * 1000;
    if (ts.tv_nsec >= 1000000000) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000;
    }
    return pthread_mutex_timedlock(m, &ts) == 0;
}
