#include <stdio.h>
#include <string.h>

#include "concur/error.h"

/* strerror is not thread-safe and strerror_r has two incompatible variants;
 * strerrordesc_np (glibc >= 2.32) returns static text and is both. */


const char *cc_strerror(int err)
{
    switch (err) {
    case 0:
        return "success";
    case CC_EBROKEN_BARRIER:
        return "broken barrier";
    case CC_EBROKEN_EXECUTOR:
        return "broken executor";
    case CC_ESHUTDOWN:
        return "shut down";
    case CC_EWORKER_LOST:
        return "worker lost";
    case CC_EEMPTY:
        return "queue empty";
    case CC_EFULL:
        return "queue full";
    case CC_EFAILED:
        return "failed";
    case CC_ENOT_REGISTERED:
        return "function not registered";
    default:
        break;
    }
    if (err < 0 && err > -4096) {
        const char *text = strerrordesc_np(-err);
        if (text)
            return text;
    }
    return "unknown error";
}
