/*
 * context.h — execution contexts and stacks for stackful coroutines.
 *
 * One back-end per machine, picked by CMake: a hand-written switch where
 * one exists — ctx_x86_64.S (~15 ns) and ctx_aarch64.S — and
 * ctx_ucontext.c (glibc swapcontext, ~250 ns because it saves the signal
 * mask with a system call) elsewhere.
 * Stacks come from stack_mmap.c.
 *
 * A context is named by a void * "slot": for the assembly back-ends the
 * saved stack pointer, for ucontext a ucontext_t it keeps at the top of the
 * coroutine's stack. Switching is asymmetric by use, symmetric by contract:
 * cci_ctx_switch saves the running context into *save and continues the one
 * in `to`, which must have been saved by a switch or made by cci_ctx_make.
 * None of this is thread-safe: a context is resumed on the thread that runs
 * its coroutine, and sanitizer bookkeeping is the caller's (see coro.c).
 */
#ifndef CCI_CONTEXT_H
#define CCI_CONTEXT_H

#include <stddef.h>

/*
 * Prepares a context that, when first switched to, calls entry(arg) on the
 * stack [base, base + size). entry must never return: it ends by switching
 * away for good. Sets *coro to the new context and prepares *caller as the
 * slot that switches into it save to (the ucontext back-end keeps that
 * storage on the same stack). base and size are page-aligned.
 */
void cci_ctx_make(void **coro, void **caller, void *base, size_t size,
                  void (*entry)(void *), void *arg);

/* Saves the running context in *save and continues `to`. Returns when
 * something switches back to *save. */
void cci_ctx_switch(void **save, void *to);

/* ---- stacks ----------------------------------------------------------------
 * A stack is an anonymous private mapping with one inaccessible guard page
 * below it, so an overflow faults at once instead of corrupting the
 * neighbouring memory. Only touched pages cost memory (MAP_NORESERVE);
 * valgrind is told about the stack when its header was found at build time.
 */
typedef struct cci_stack {
    void *base;  /* lowest usable address (just above the guard page) */
    size_t size; /* usable bytes, a multiple of the page size */
    unsigned valgrind_id;
} cci_stack;

/* Rounds size up to whole pages (at least 16 KiB). Errors: -ENOMEM and
 * other negative errno values from mmap/mprotect. */
int cci_stack_alloc(cci_stack *stack, size_t size);
void cci_stack_free(cci_stack *stack);

#endif /* CCI_CONTEXT_H */
