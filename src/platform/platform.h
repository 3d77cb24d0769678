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

/* The same clock read coarsely: a few ns instead of 30-50 (no counter
 * read), but only as fine as the kernel's tick (4 ms here) and up to a tick
 * behind cci_now_ns. For "since when" stamps on paths too hot for the fine
 * clock; compare them only with each other. */
int64_t cci_now_coarse_ns(void);

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

/*
 * A full (sequentially consistent) fence, for the Dekker-style checks that
 * avoid lost wake-ups ("publish, fence, look for sleepers"). ThreadSanitizer
 * does not model fences and GCC refuses them under -fsanitize=thread, so
 * there it is a locked read-modify-write, which is a full barrier in the
 * hardware. Data is always published by acquire/release pairs that
 * ThreadSanitizer does see; the fence only orders the wake-up protocol.
 */
#if defined(__SANITIZE_THREAD__)
#define CCI_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define CCI_TSAN 1
#endif
#endif

static inline void cci_fence_seq_cst(void)
{
#ifdef CCI_TSAN
    static uint32_t fence_word;
    __atomic_fetch_add(&fence_word, 0, __ATOMIC_SEQ_CST);
#else
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
#endif
}

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
