/*
 * timer.c — threading.Timer: a thread that waits on an event for the delay
 * and runs the function only if the wait timed out (nobody cancelled).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "concur/sync.h"
#include "thread/thread_internal.h"
#include "time/deadline.h"

struct cc_timer {
    cc_thread *thread;
    cc_event cancelled;
    cc_duration delay;
    cc_thread_fn fn;
    void *ctx;
    uint32_t fired;
};

static int timer_main(void *arg)
{
    struct cc_timer *timer = arg;
    if (cc_event_wait(&timer->cancelled, timer->delay) != -ETIMEDOUT)
        return 0;
    __atomic_store_n(&timer->fired, 1, __ATOMIC_RELEASE);
    return timer->fn(timer->ctx);
}

int cc_timer_new(cc_timer **out, cc_duration delay, cc_thread_fn fn,
                 void *ctx, const cc_thread_options *opts)
{
    if (!out || !fn || !cci_duration_valid(delay))
        return -EINVAL;
    struct cc_timer *timer = calloc(1, sizeof *timer);
    if (!timer)
        return -ENOMEM;
    cc_event_init(&timer->cancelled, 0);
    timer->delay = delay;
    timer->fn = fn;
    timer->ctx = ctx;
    cc_thread_options o = opts ? *opts : (cc_thread_options){0};
    char name[32];
    if (!o.name) {
        snprintf(name, sizeof name, "Timer-%lu", cci_thread_next_number());
        o.name = name;
    }
    int rc = cc_thread_new(&timer->thread, timer_main, timer, &o);
    if (rc != 0) {
        free(timer);
        return rc;
    }
    *out = timer;
    return 0;
}

int cc_timer_start(cc_timer *timer)
{
    return timer ? cc_thread_start(timer->thread) : -EINVAL;
}

int cc_timer_cancel(cc_timer *timer)
{
    return timer ? cc_event_set(&timer->cancelled) : -EINVAL;
}

bool cc_timer_fired(const cc_timer *timer)
{
    return timer && __atomic_load_n(&timer->fired, __ATOMIC_ACQUIRE);
}

int cc_timer_join(cc_timer *timer, cc_duration timeout)
{
    return timer ? cc_thread_join(timer->thread, timeout) : -EINVAL;
}

cc_thread *cc_timer_thread(cc_timer *timer)
{
    return timer ? timer->thread : NULL;
}

void cc_timer_free(cc_timer *timer)
{
    if (!timer)
        return;
    cc_timer_cancel(timer);
    if (cc_thread_ident(timer->thread) != 0)
        cc_thread_join(timer->thread, CC_FOREVER);
    cc_thread_unref(timer->thread);
    cc_event_destroy(&timer->cancelled);
    free(timer);
}
