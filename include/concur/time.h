/*
 * concur/time.h — the one duration type used by every timeout in concur.
 *
 * A cc_duration is a count of nanoseconds (int64_t). Two values are special:
 *   CC_FOREVER  wait without a time limit;
 *   CC_NOWAIT   do not block at all (a timeout of zero).
 * Any other negative duration is rejected with -EINVAL by every call that
 * takes one. Internally concur turns a duration into an absolute deadline on
 * CLOCK_MONOTONIC once, at the start of a call, so a call that waits several
 * times (a condition re-checked after a spurious wake-up, a queue get that
 * loses a race) never waits longer than asked in total.
 */
#ifndef CONCUR_TIME_H
#define CONCUR_TIME_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Nanoseconds. See the comment above for the two special values. */
typedef int64_t cc_duration;

#define CC_FOREVER ((cc_duration)-1)
#define CC_NOWAIT ((cc_duration)0)

/* Never a valid timeout: what cc_seconds returns for a bad argument. */
#define CC_INVALID_DURATION INT64_MIN

#define CC_NSEC(n) ((cc_duration)(n))
#define CC_USEC(n) ((cc_duration)(n) * INT64_C(1000))
#define CC_MSEC(n) ((cc_duration)(n) * INT64_C(1000000))
#define CC_SEC(n) ((cc_duration)(n) * INT64_C(1000000000))

/*
 * Converts seconds given as a double (Python's way of writing timeouts) to a
 * duration, rounding to the nearest nanosecond and saturating at INT64_MAX.
 * A negative or NaN argument gives CC_INVALID_DURATION, which every call
 * rejects with -EINVAL.
 */
cc_duration cc_seconds(double seconds);

/* Current CLOCK_MONOTONIC time in nanoseconds. Never fails, never blocks. */
int64_t cc_monotonic_ns(void);

#ifdef __cplusplus
}
#endif

#endif /* CONCUR_TIME_H */
