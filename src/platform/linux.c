/* Linux implementation of platform.h. */
#include "platform/platform.h"

#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

int64_t cci_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t cci_now_coarse_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int cci_futex_wait(uint32_t *word, uint32_t expected, int64_t deadline,
                   bool pshared)
{
    struct timespec ts, *tsp = NULL;
    if (deadline != CCI_NO_DEADLINE) {
        if (deadline <= cci_now_ns())
            return -ETIMEDOUT;
        ts.tv_sec = deadline / 1000000000;
        ts.tv_nsec = deadline % 1000000000;
        tsp = &ts;
    }
    /* FUTEX_WAIT_BITSET takes an absolute CLOCK_MONOTONIC deadline, so a
     * caller that loops never stretches its total wait. */
    int op = FUTEX_WAIT_BITSET | (pshared ? 0 : FUTEX_PRIVATE_FLAG);
    long rc = syscall(SYS_futex, word, op, expected, tsp, NULL,
                      FUTEX_BITSET_MATCH_ANY);
    if (rc == 0)
        return 0;
    switch (errno) {
    case EAGAIN:
        return -EAGAIN;
    case ETIMEDOUT:
        return -ETIMEDOUT;
    case EINTR:
        return -EINTR;
    default:
        return 0; /* treat as spurious: the caller re-checks */
    }
}

int cci_futex_wake(uint32_t *word, int n, bool pshared)
{
    int op = FUTEX_WAKE | (pshared ? 0 : FUTEX_PRIVATE_FLAG);
    long rc = syscall(SYS_futex, word, op, n, NULL, NULL, 0);
    return rc < 0 ? 0 : (int)rc;
}

static __thread uint32_t tid_cache;
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

static void reset_tid_in_child(void)
{
    /* Only the forking thread survives in the child and its tid changed. */
    tid_cache = 0;
}

static void install_atfork(void)
{
    pthread_atfork(NULL, NULL, reset_tid_in_child);
}

uint32_t cci_gettid(void)
{
    if (__builtin_expect(tid_cache == 0, 0)) {
        pthread_once(&atfork_once, install_atfork);
        tid_cache = (uint32_t)syscall(SYS_gettid);
    }
    return tid_cache;
}

unsigned cci_cpu_count(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1u : (unsigned)n;
}
