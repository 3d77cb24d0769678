#include <math.h>

#include "concur/time.h"
#include "platform/platform.h"

cc_duration cc_seconds(double seconds)
{
    if (isnan(seconds) || seconds < 0)
        return CC_INVALID_DURATION;
    double ns = seconds * 1e9;
    if (ns >= 9.2e18)
        return INT64_MAX;
    return (cc_duration)llround(ns);
}

int64_t cc_monotonic_ns(void)
{
    return cci_now_ns();
}
