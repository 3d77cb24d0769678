/*
 * Task functions for the tests of `concur compare --task` (built as a
 * shared object in the tree, never installed): one that works, and one
 * each that fails, crashes and hangs, so that the tests can check that
 * every one of those is reported and none hangs the tool.
 */
#include <errno.h>
#include <signal.h>
#include <unistd.h>

#include <concur/compare.h>

CC_COMPARE_TASK(spin);
CC_COMPARE_TASK(fail_on_5);
CC_COMPARE_TASK(crash_on_3);
CC_COMPARE_TASK(hang_on_2);

/* A little arithmetic whose result depends on index. */
int spin(uint64_t index, uint64_t *checksum)
{
    uint64_t s = 0;
    for (uint64_t k = 1; k <= 20000; k++)
        s += (index + 1) * k % 7;
    *checksum = s;
    return 0;
}

int fail_on_5(uint64_t index, uint64_t *checksum)
{
    *checksum = index;
    return index == 5 ? -EDOM : 0;
}

/* Unmapped; volatile so that the compiler cannot see the fault coming. */
static volatile int *volatile bad_address;

int crash_on_3(uint64_t index, uint64_t *checksum)
{
    *checksum = index;
    if (index == 3)
        *bad_address = 1; /* SIGSEGV */
    return 0;
}

int hang_on_2(uint64_t index, uint64_t *checksum)
{
    *checksum = index;
    while (index == 2)
        pause();
    return 0;
}
