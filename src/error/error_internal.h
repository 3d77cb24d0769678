/* error_internal.h — what cc_task_fail and cc_thread_fail share: the code a
 * failure returns and the message it records. */
#ifndef CCI_ERROR_INTERNAL_H
#define CCI_ERROR_INTERNAL_H

#include <stdarg.h>

#include "concur/error.h"

/* A failure is always negative: a code >= 0 becomes CC_EFAILED. */
static inline int cci_failure_code(int code)
{
    return code < 0 ? code : CC_EFAILED;
}

/* Formats fmt into a new malloc'd message that replaces *slot (freed), and
 * returns cci_failure_code(code). A NULL fmt leaves *slot as it is; out of
 * memory, *slot becomes NULL and the failure stands without its text. */
int cci_failure_record(char **slot, int code, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));

#endif /* CCI_ERROR_INTERNAL_H */
