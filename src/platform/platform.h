/*
 * platform.h — the contract between concur and the operating system.
 *
 * Everything concur needs from the kernel goes through these calls, so a port
 * means another implementation file picked by CMake, not #ifdefs in the
 * library. The Linux implementation is linux.c.
 */
#ifndef CCI_PLATFORM_H
#define CCI_PLATFORM_H

#include <stdbool.h>
#include <stdint.h>

/* An absolute CLOCK_MONOTONIC time in nanoseconds; CCI_NO_DEADLINE means
 * "never". */
#define CCI_NO_DEADLINE INT64_MAX

/* CLOCK_MONOTONIC in nanoseconds. */
int64_t cci_now_ns(void);

/*
 * Sleeps while *word == expected, until woken, until the absolute deadline,
 * or spuriously. pshared selects a futex usable between processes.
 * Returns 0 (woken or spurious: re-check), -EAGAIN (*word != expected on
 * entry), -ETIMEDOUT (deadline passed), -EINTR (a signal arrived: re-check).
 * Callers must always re-check their condition: a return value of 0 proves
 * nothing.
 */
int cci_futex_wait(uint32_t *word, uint32_t expected, int64_t deadline,
                   bool pshared);

/* Wakes up to n threads sleeping on word (INT32_MAX for all). Returns the
 * number woken. Costs a system call (~100 ns) even when nobody sleeps, so
 * callers track waiters and skip it when there are none. */
int cci_futex_wake(uint32_t *word, int n, bool pshared);

/* The calling thread's kernel id. Cached per thread; the cache is reset in
 * a fork()ed child. */
uint32_t cci_gettid(void);

/* Number of online CPUs (at least 1). */
unsigned cci_cpu_count(void);

/* A hint to the CPU inside spin loops. */
static inline void cci_cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield" ::: "memory");
#endif
}

#endif /* CCI_PLATFORM_H */
