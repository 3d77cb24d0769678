/* Run by test_trace with CONCUR_DEBUG, CONCUR_DEADLOCK_POLICY and
 * CONCUR_TRACE in its environment: shows on stdout that the environment
 * turned lock debugging on, and leaves a trace that exit writes. */
#include <stdio.h>

#include "concur.h"

int main(void)
{
    printf("flags %u\n", cc_debug_flags());
    cc_lock a, b;
    cc_lock_init(&a, 0);
    cc_lock_init(&b, 0);
    cc_lock_acquire(&a, CC_FOREVER);
    cc_lock_acquire(&b, CC_FOREVER);
    cc_lock_release(&b);
    cc_lock_release(&a);
    cc_lock_acquire(&b, CC_FOREVER);
    printf("rc %d\n", cc_lock_acquire(&a, CC_FOREVER));
    cc_lock_release(&b);
    cc_sleep(CC_MSEC(1)); /* a span for the trace */
    cc_lock_destroy(&a);
    cc_lock_destroy(&b);
    printf("tracing %d\n", (int)cc_trace_active());
    return 0;
}
