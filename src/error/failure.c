/* failure.c — the message of a failed task or thread (error_internal.h). */
#include <stdio.h>
#include <stdlib.h>

#include "error/error_internal.h"

int cci_failure_record(char **slot, int code, const char *fmt, va_list ap)
{
    if (fmt) {
        char *msg = NULL;
        if (vasprintf(&msg, fmt, ap) < 0)
            msg = NULL;
        free(*slot);
        *slot = msg;
    }
    return cci_failure_code(code);
}
