/* Run by test_executor: returns from main with tasks still queued in a pool
 * it never shut down. As in Python, exit must wait for every accepted task:
 * all of them print their line. */
#include <stdio.h>

#include "concur.h"

static int slow_print(void *arg, void **result)
{
    (void)result;
    cc_sleep(CC_MSEC(50));
    printf("task %d done\n", (int)(intptr_t)arg);
    fflush(stdout);
    return 0;
}

int main(void)
{
    cc_executor *ex;
    cc_thread_pool_options o = {.max_workers = 2};
    if (cc_thread_pool_new(&ex, &o) != 0)
        return 1;
    for (intptr_t i = 0; i < 6; i++) {
        cc_future *f;
        if (cc_executor_submit(ex, slow_print, (void *)i, &f) != 0)
            return 1;
        cc_future_unref(f);
    }
    printf("main returning\n");
    fflush(stdout);
    return 0;
}
