/*
 * coro.h — stackful coroutines on one thread: the context switch of
 * platform/context.h plus the bookkeeping that keeps AddressSanitizer and
 * ThreadSanitizer correct across switches (and valgrind, through the stack
 * registration in stack_mmap.c).
 *
 * Asymmetric: the loop resumes a coroutine, the coroutine yields back to
 * whoever resumed it. A coroutine runs on the thread that resumes it and is
 * never moved to another one.
 */
#ifndef CCI_CORO_H
#define CCI_CORO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "platform/context.h"

struct cci_coro {
    void *sp;        /* the coroutine's saved context */
    void *caller_sp; /* the resumer's saved context */
    cci_stack stack;
    void (*fn)(void *);
    void *arg;
    bool done; /* fn returned; the coroutine will never run again */
    /* AddressSanitizer: fake-stack handles and the resumer's stack. */
    void *fake_stack;
    void *caller_fake_stack;
    const void *caller_bottom;
    size_t caller_size;
    /* ThreadSanitizer: one fiber per coroutine. */
    void *fiber;
    void *caller_fiber;
};

/* Prepares c to run fn(arg) on stack (owned by the caller, at least 16
 * KiB) at its first resume. Cannot fail. */
void cci_coro_init(struct cci_coro *c, cci_stack stack, void (*fn)(void *),
                   void *arg);
/* Runs c until it yields or fn returns (then c->done is set). */
void cci_coro_resume(struct cci_coro *c);
/* Inside c: back to the resumer; returns at the next resume. */
void cci_coro_yield(struct cci_coro *c);
/* Releases the sanitizer state of a coroutine that is done (or never ran);
 * the stack stays the caller's. */
void cci_coro_destroy(struct cci_coro *c);
/* Marks a stack about to be reused as clean for AddressSanitizer (the
 * frames of a finished coroutine leave poisoned red zones behind). */
void cci_coro_stack_reset(cci_stack *stack);

/* For `concur bench loop` (declared there too): nanoseconds for `rounds`
 * resume/yield round trips (two switches each) with a fresh coroutine, or
 * a negative error code. */
int64_t cci_coro_bench_roundtrips(uint64_t rounds);

#endif /* CCI_CORO_H */
