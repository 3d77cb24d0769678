/*
 * thread_states.c — watch a thread go through its life cycle
 *
 *     NEW --start--> RUNNING <--> BLOCKED --> TERMINATED
 *
 * and see what it is blocked on, then watch a failing thread reach the
 * excepthook.
 *
 * The Python it mirrors (threading) — Python shows only part of this, through
 * is_alive() and the excepthook; concur also shows BLOCKED and on what:
 *
 *     import threading
 *
 *     config_lock = threading.Lock()
 *     go = threading.Event()
 *
 *     def worker():
 *         with config_lock:       # blocks: the main thread holds it
 *             pass
 *         go.wait()               # blocks until the main thread sets it
 *
 *     t = threading.Thread(target=worker, name="worker")
 *     print(t.is_alive(), t.ident)          # False None   (NEW)
 *     config_lock.acquire()
 *     t.start()                             # RUNNING, then BLOCKED
 *     config_lock.release()
 *     go.set()
 *     t.join()
 *     print(t.is_alive())                   # False        (TERMINATED)
 *
 *     def hook(args):
 *         print("excepthook:", args.thread.name, args.exc_value)
 *     threading.excepthook = hook
 *
 *     def loader():
 *         raise FileNotFoundError("cannot open settings.ini")
 *     threading.Thread(target=loader, name="loader").start()
 */
#include <concur.h>

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

static cc_lock config_lock = CC_LOCK_INIT;
static cc_event go = CC_EVENT_INIT;

/* The wait info gives the address of the object; give it a name to print. */
static const char *object_name(const void *object)
{
    if (object == &config_lock)
        return "config_lock";
    if (object == &go)
        return "go";
    return "something else";
}

static void show(const char *when, cc_thread *t)
{
    cc_wait_info info;
    cc_thread_wait_info(t, &info);
    cc_thread_state state = cc_thread_get_state(t);
    printf("%-28s %-8s state %-10s alive %-3s ident %llu native id %lld",
           when, cc_thread_name(t), cc_thread_state_name(state),
           cc_thread_is_alive(t) ? "yes" : "no",
           (unsigned long long)cc_thread_ident(t),
           (long long)cc_thread_native_id(t));
    if (info.kind != CC_WAIT_NONE)
        printf(" waiting on %s %s for %.1f ms", cc_wait_kind_name(info.kind),
               object_name(info.object),
               (double)(cc_monotonic_ns() - info.since_ns) / 1e6);
    printf("\n");
}

static void check(int rc, const char *what)
{
    if (rc < 0) {
        fprintf(stderr, "thread_states: %s: %s\n", what, cc_strerror(rc));
        exit(1);
    }
}

/* Polls (never sleeps a fixed time) until t waits on `kind`. */
static void wait_until_blocked_on(cc_thread *t, cc_wait_kind kind)
{
    int64_t deadline = cc_monotonic_ns() + CC_SEC(10);
    cc_wait_info info;
    for (;;) {
        check(cc_thread_wait_info(t, &info), "wait info");
        if (info.kind == kind)
            return;
        if (cc_monotonic_ns() > deadline) {
            fprintf(stderr, "thread_states: %s never blocked on %s\n",
                    cc_thread_name(t), cc_wait_kind_name(kind));
            exit(1);
        }
        cc_sleep(CC_MSEC(1));
    }
}

static int worker(void *ctx)
{
    show("worker, about itself:", cc_thread_current());
    cc_lock_acquire(&config_lock, CC_FOREVER); /* main holds it: BLOCKED */
    cc_lock_release(&config_lock);
    cc_event_wait(&go, CC_FOREVER); /* not set yet: BLOCKED */
    return 0;
}

/* ---- a failing thread and the excepthook --------------------------------- */

static atomic_int hook_calls;

/* Runs in the failing thread, as Python's threading.excepthook does. */
static void excepthook(const cc_thread_failure *failure, void *ctx)
{
    atomic_fetch_add(&hook_calls, 1);
    printf("excepthook: thread %s failed with %d (%s): %s\n",
           cc_thread_name(failure->thread), failure->status,
           cc_strerror(failure->status),
           failure->message ? failure->message : "(no message)");
}

static int loader(void *ctx)
{
    const char *path = ctx;
    /* Records a message and returns -ENOENT: the thread fails. */
    return cc_thread_fail(-ENOENT, "cannot open %s", path);
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    cc_thread *t;
    int status;

    show("main thread:", cc_thread_main());

    check(cc_thread_new(&t, worker, NULL, &(cc_thread_options){.name = "worker"}),
          "new");
    show("created:", t); /* NEW: not alive, ident 0 */

    check(cc_lock_acquire(&config_lock, CC_FOREVER), "acquire");
    check(cc_thread_start(t), "start");
    wait_until_blocked_on(t, CC_WAIT_LOCK);
    show("main holds config_lock:", t);

    check(cc_lock_release(&config_lock), "release");
    wait_until_blocked_on(t, CC_WAIT_EVENT);
    show("main has not set go:", t);

    check(cc_event_set(&go), "set");
    check(cc_thread_join(t, CC_FOREVER), "join");
    check(cc_thread_status(t, &status), "status");
    show("joined:", t);
    printf("worker returned %d\n", status);
    cc_thread_unref(t);

    /* A thread that fails goes through the excepthook, then terminates. */
    cc_thread_set_excepthook(excepthook, NULL);
    check(cc_thread_new(&t, loader, "settings.ini",
                        &(cc_thread_options){.name = "loader"}), "new");
    check(cc_thread_start(t), "start");
    check(cc_thread_join(t, CC_FOREVER), "join");
    check(cc_thread_status(t, &status), "status");
    show("joined:", t);
    const char *message = cc_thread_error_message(t);
    printf("loader returned %d (%s), message \"%s\"\n", status,
           cc_strerror(status), message ? message : "");
    cc_thread_unref(t);
    cc_thread_set_excepthook(NULL, NULL); /* back to the default hook */

    if (status != -ENOENT || atomic_load(&hook_calls) != 1) {
        fprintf(stderr, "thread_states: expected one failure through the "
                        "excepthook\n");
        return 1;
    }
    return 0;
}
