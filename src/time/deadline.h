/* Turning a public cc_duration into an internal absolute deadline. */
#ifndef CCI_DEADLINE_H
#define CCI_DEADLINE_H

#include <errno.h>
#include <stdbool.h>

#include "concur/time.h"
#include "platform/platform.h"

/* True for CC_FOREVER and for every duration >= 0. */
static inline bool cci_duration_valid(cc_duration d)
{
    return d >= 0 || d == CC_FOREVER;
}

/*
 * The absolute monotonic deadline d from now: CCI_NO_DEADLINE for
 * CC_FOREVER, saturating instead of overflowing. The caller has checked d
 * with cci_duration_valid. Reads the clock only when d is a real timeout.
 */
static inline int64_t cci_deadline_after(cc_duration d)
{
    if (d == CC_FOREVER)
        return CCI_NO_DEADLINE;
    if (d == 0)
        return 0; /* already expired: callers try once and give up */
    int64_t now = cci_now_ns();
    return d > CCI_NO_DEADLINE - now ? CCI_NO_DEADLINE : now + d;
}

/* The inverse: what is left of deadline as a duration for a call that
 * takes a timeout. CC_FOREVER for CCI_NO_DEADLINE, CC_NOWAIT once passed. */
static inline cc_duration cci_duration_until(int64_t deadline)
{
    if (deadline == CCI_NO_DEADLINE)
        return CC_FOREVER;
    int64_t now = cci_now_ns();
    return deadline > now ? deadline - now : CC_NOWAIT;
}

#endif /* CCI_DEADLINE_H */
