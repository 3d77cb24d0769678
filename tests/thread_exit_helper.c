/* Run by test_thread: returns from main while a non-daemon thread is still
 * sleeping and a daemon thread sleeps forever. concur's exit handler must
 * wait for the first and not for the second. */
#include <stdio.h>

#include "concur.h"

static int finish_late(void *arg)
{
    (void)arg;
    cc_sleep(CC_MSEC(300));
    printf("non-daemon finished\n");
    fflush(stdout);
    return 0;
}

static int sleep_forever(void *arg)
{
    (void)arg;
    for (;;)
        cc_sleep(CC_SEC(1));
    printf("daemon woke\n");
    return 0;
}

int main(void)
{
    cc_thread *worker, *daemon;
    cc_thread_options d = {.name = "forever", .daemon = CC_DAEMON_YES};
    if (cc_thread_new(&worker, finish_late, NULL, NULL) != 0 ||
        cc_thread_new(&daemon, sleep_forever, NULL, &d) != 0 ||
        cc_thread_start(worker) != 0 || cc_thread_start(daemon) != 0)
        return 1;
    cc_thread_unref(worker);
    cc_thread_unref(daemon);
    printf("main returning\n");
    fflush(stdout);
    return 0;
}
