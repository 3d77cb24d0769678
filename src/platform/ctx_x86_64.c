/* Building a first frame for ctx_x86_64.S. */
#include "platform/context.h"

#include <stdint.h>

void cci_ctx_trampoline(void);

void cci_ctx_make(void **coro, void **caller, void *base, size_t size,
                  void (*entry)(void *), void *arg)
{
    /* What cci_ctx_switch pops, lowest address first: the two control
     * words, r15, r14, r13, r12 (arg), rbx (entry), rbp, then the return
     * address, the trampoline. The top is 16-byte aligned, so after that
     * `ret` the trampoline's call sees the alignment the ABI wants. */
    uint64_t *top =
        (uint64_t *)((uintptr_t)((char *)base + size) & ~(uintptr_t)15);
    uint64_t *sp = top - 8;
    sp[0] = 0x1F80 | ((uint64_t)0x037F << 32); /* MXCSR, x87 CW: defaults */
    sp[1] = 0;                                 /* r15 */
    sp[2] = 0;                                 /* r14 */
    sp[3] = 0;                                 /* r13 */
    sp[4] = (uint64_t)(uintptr_t)arg;          /* r12 */
    sp[5] = (uint64_t)(uintptr_t)entry;        /* rbx */
    sp[6] = 0;                                 /* rbp */
    sp[7] = (uint64_t)(uintptr_t)cci_ctx_trampoline;
    *coro = sp;
    *caller = NULL;
}
