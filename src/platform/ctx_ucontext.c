/*
 * The portable back-end of context.h on glibc's ucontext. Slow (each switch
 * saves and restores the signal mask with a system call), used only where
 * no assembly back-end exists. Both ucontext_t records live at the top of
 * the coroutine's stack: [0] the coroutine's own, [1] its resumer's.
 */
#include "platform/context.h"

#include <stdint.h>
#include <ucontext.h>

struct pair {
    ucontext_t ctx[2];
    void (*entry)(void *);
    void *arg;
};

/* makecontext passes int arguments only, so the pointer travels in two. */
static void start(unsigned hi, unsigned lo)
{
    struct pair *p = (struct pair *)(((uintptr_t)hi << 32) | lo);
    p->entry(p->arg);
}

void cci_ctx_make(void **coro, void **caller, void *base, size_t size,
                  void (*entry)(void *), void *arg)
{
    uintptr_t top = (uintptr_t)base + size - sizeof(struct pair);
    struct pair *p = (struct pair *)(top & ~(uintptr_t)63);
    p->entry = entry;
    p->arg = arg;
    getcontext(&p->ctx[0]);
    p->ctx[0].uc_stack.ss_sp = base;
    p->ctx[0].uc_stack.ss_size = (size_t)((uintptr_t)p - (uintptr_t)base);
    p->ctx[0].uc_link = NULL;
    uintptr_t v = (uintptr_t)p;
    makecontext(&p->ctx[0], (void (*)(void))start, 2, (unsigned)(v >> 32),
                (unsigned)(v & 0xffffffffu));
    *coro = &p->ctx[0];
    *caller = &p->ctx[1];
}

void cci_ctx_switch(void **save, void *to)
{
    swapcontext((ucontext_t *)*save, (ucontext_t *)to);
}
