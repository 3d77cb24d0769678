/*
 * daemon_thread.c — a daemon thread loops forever in the background and
 * does not keep the process alive; a normal (non-daemon) thread is still
 * working when main returns, and the process waits for it before exiting.
 *
 * The Python it mirrors (threading):
 *
 *     import threading, time
 *
 *     def background():                 # never returns
 *         while True:
 *             print("daemon: tick")
 *             time.sleep(0.25)
 *
 *     def worker():
 *         for i in range(3):
 *             print(f"worker: step {i}")
 *             time.sleep(0.5)
 *         print("worker: finished")
 *
 *     threading.Thread(target=background, daemon=True).start()
 *     threading.Thread(target=worker).start()
 *     print("main: returning")
 *     # Python waits for worker here, then exits; background just vanishes.
 *
 * How concur does the same: the first cc_thread_start registers an atexit
 * handler. When main returns (or exit() is called), that handler joins every
 * non-daemon thread concur started that is still alive; daemon threads are
 * not waited for and end with the process. _exit(), abort() and fatal
 * signals skip atexit handlers and so wait for nothing.
 *
 * Usage: daemon_thread [SECONDS]   the worker's step time (default 0.5).
 */
#include <concur.h>

#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

static cc_duration step;
static atomic_long ticks;
static atomic_bool worker_finished;

static int background(void *ctx)
{
    for (;;) {
        printf("daemon: tick %ld\n", atomic_fetch_add(&ticks, 1) + 1);
        cc_sleep(step / 2);
    }
    return 0; /* never reached: a daemon may loop forever */
}

static int worker(void *ctx)
{
    for (int i = 0; i < 3; i++) {
        printf("worker: step %d\n", i);
        cc_sleep(step);
    }
    printf("worker: finished\n");
    atomic_store(&worker_finished, true);
    return 0;
}

/*
 * atexit handlers run in the reverse order of registration. This one is
 * registered before the first thread starts, so it runs after concur's
 * handler has joined the worker: the worker must be finished by now, while
 * the daemon is still alive.
 */
static void at_exit(void)
{
    bool done = atomic_load(&worker_finished);
    printf("at exit: worker finished: %s; daemon still running after %ld "
           "ticks\n", done ? "yes" : "NO", atomic_load(&ticks));
    if (!done)
        _Exit(1);
}

static void check(int rc, const char *what)
{
    if (rc < 0) {
        fprintf(stderr, "daemon_thread: %s: %s\n", what, cc_strerror(rc));
        exit(1);
    }
}

int main(int argc, char **argv)
{
    step = argc > 1 ? cc_seconds(strtod(argv[1], NULL)) : CC_MSEC(500);
    if (step < 0) {
        fprintf(stderr, "usage: daemon_thread [SECONDS]\n");
        return 2;
    }
    /* Unbuffered: the daemon may still be printing while the process exits,
     * and then there is no buffer for exit() to flush under its feet. */
    setvbuf(stdout, NULL, _IONBF, 0);
    atexit(at_exit);

    cc_thread *t;
    cc_thread_options daemon_opts = {.name = "background",
                                     .daemon = CC_DAEMON_YES};
    check(cc_thread_new(&t, background, NULL, &daemon_opts), "daemon");
    check(cc_thread_start(t), "start daemon");
    printf("main: started %s (daemon: %s)\n", cc_thread_name(t),
           cc_thread_is_daemon(t) ? "yes" : "no");
    /* A running thread keeps its own reference: dropping ours neither stops
     * nor frees it, we just can no longer join it. */
    cc_thread_unref(t);

    /* The default, CC_DAEMON_INHERIT, copies the creator's flag; the main
     * thread is not a daemon, so neither is this one. */
    cc_thread_options worker_opts = {.name = "worker"};
    check(cc_thread_new(&t, worker, NULL, &worker_opts), "worker");
    check(cc_thread_start(t), "start worker");
    printf("main: started %s (daemon: %s)\n", cc_thread_name(t),
           cc_thread_is_daemon(t) ? "yes" : "no");
    cc_thread_unref(t);

    printf("main: returning without joining anything\n");
    return 0;
}
