/* Building a first frame for ctx_aarch64.S. */
#include "platform/context.h"

#include <stdint.h>

void cci_ctx_trampoline(void);

void cci_ctx_make(void **coro, void **caller, void *base, size_t size,
                  void (*entry)(void *), void *arg)
{
    /* The 22 slots cci_ctx_switch loads (see the frame in the .S file):
     * x19 = entry and x20 = arg for the trampoline, x29 = 0 so frame-pointer
     * walks stop, x30 = the trampoline (where the switch's `ret` goes),
     * FPCR = 0 (round to nearest, no traps: what Linux starts a thread
     * with), everything else zero. The top is 16-byte aligned, so the
     * trampoline starts with the alignment the ABI wants. */
    uint64_t *top =
        (uint64_t *)((uintptr_t)((char *)base + size) & ~(uintptr_t)15);
    uint64_t *sp = top - 22;
    for (int i = 0; i < 22; i++)
        sp[i] = 0;
    sp[0] = (uint64_t)(uintptr_t)entry;              /* x19 */
    sp[1] = (uint64_t)(uintptr_t)arg;                /* x20 */
    sp[11] = (uint64_t)(uintptr_t)cci_ctx_trampoline; /* x30 */
    *coro = sp;
    *caller = NULL;
}
