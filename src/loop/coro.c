/*
 * Coroutines (see coro.h). The sanitizer hooks are the only conditional
 * code: each is a no-op unless the matching sanitizer is compiled in.
 *
 * AddressSanitizer must be told before every switch which stack comes next
 * (start_switch_fiber) and after it which stack we came from
 * (finish_switch_fiber), or it reports the first access to the other stack
 * as a stack-buffer-overflow; a coroutine that ends passes NULL so that its
 * fake stack (use-after-return detection) is freed. ThreadSanitizer keeps
 * a shadow call stack and happens-before clock per fiber: switching fibers
 * with flags 0 orders everything before the switch before everything
 * after it, which is what one thread switching stacks means.
 */
#include "loop/coro.h"

#include "platform/platform.h" /* CCI_TSAN */

#if defined(__SANITIZE_ADDRESS__)
#define CCI_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CCI_ASAN 1
#endif
#endif

#ifdef CCI_ASAN
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#define ASAN_START(save, bottom, size)                                         \
    __sanitizer_start_switch_fiber(save, bottom, size)
#define ASAN_FINISH(save, bottom, size)                                        \
    __sanitizer_finish_switch_fiber(save, bottom, size)
#define ASAN_UNPOISON(p, n) __asan_unpoison_memory_region(p, n)
#else
#define ASAN_START(save, bottom, size)                                         \
    ((void)(save), (void)(bottom), (void)(size))
#define ASAN_FINISH(save, bottom, size)                                        \
    ((void)(save), (void)(bottom), (void)(size))
#define ASAN_UNPOISON(p, n) ((void)(p), (void)(n))
#endif

#ifdef CCI_TSAN
#include <sanitizer/tsan_interface.h>
#define TSAN_CREATE() __tsan_create_fiber(0)
#define TSAN_CURRENT() __tsan_get_current_fiber()
#define TSAN_SWITCH(fiber) __tsan_switch_to_fiber(fiber, 0)
#define TSAN_DESTROY(fiber) __tsan_destroy_fiber(fiber)
#else
#define TSAN_CREATE() ((void *)0)
#define TSAN_CURRENT() ((void *)0)
#define TSAN_SWITCH(fiber) ((void)(fiber))
#define TSAN_DESTROY(fiber) ((void)(fiber))
#endif

static void coro_main(void *arg)
{
    struct cci_coro *c = arg;
    /* First arrival: no fake stack of ours to restore yet. */
    ASAN_FINISH(NULL, &c->caller_bottom, &c->caller_size);
    c->fn(c->arg);
    c->done = true;
    /* For good: NULL lets AddressSanitizer drop our fake stack. */
    ASAN_START(NULL, c->caller_bottom, c->caller_size);
    TSAN_SWITCH(c->caller_fiber);
    cci_ctx_switch(&c->sp, c->caller_sp);
    __builtin_unreachable();
}

void cci_coro_init(struct cci_coro *c, cci_stack stack, void (*fn)(void *),
                   void *arg)
{
    c->stack = stack;
    c->fn = fn;
    c->arg = arg;
    c->done = false;
    c->fake_stack = NULL;
    c->caller_fake_stack = NULL;
    c->caller_bottom = NULL;
    c->caller_size = 0;
    c->fiber = TSAN_CREATE();
    c->caller_fiber = NULL;
    cci_ctx_make(&c->sp, &c->caller_sp, stack.base, stack.size, coro_main, c);
}

void cci_coro_resume(struct cci_coro *c)
{
    ASAN_START(&c->caller_fake_stack, c->stack.base, c->stack.size);
    c->caller_fiber = TSAN_CURRENT();
    TSAN_SWITCH(c->fiber);
    cci_ctx_switch(&c->caller_sp, c->sp);
    ASAN_FINISH(c->caller_fake_stack, NULL, NULL);
}

void cci_coro_yield(struct cci_coro *c)
{
    ASAN_START(&c->fake_stack, c->caller_bottom, c->caller_size);
    TSAN_SWITCH(c->caller_fiber);
    cci_ctx_switch(&c->sp, c->caller_sp);
    ASAN_FINISH(c->fake_stack, &c->caller_bottom, &c->caller_size);
}

void cci_coro_destroy(struct cci_coro *c)
{
    if (c->fiber)
        TSAN_DESTROY(c->fiber);
    c->fiber = NULL;
}

void cci_coro_stack_reset(cci_stack *stack)
{
    ASAN_UNPOISON(stack->base, stack->size);
}

/* ---- for `concur bench loop` --------------------------------------------- */

struct bench_coro {
    struct cci_coro c;
    bool stop;
};

static void bench_body(void *arg)
{
    struct bench_coro *b = arg;
    while (!b->stop)
        cci_coro_yield(&b->c);
}

int64_t cci_coro_bench_roundtrips(uint64_t rounds)
{
    cci_stack stack;
    int rc = cci_stack_alloc(&stack, 64 * 1024);
    if (rc < 0)
        return rc;
    struct bench_coro b = {.stop = false};
    cci_coro_init(&b.c, stack, bench_body, &b);
    cci_coro_resume(&b.c); /* first entry: not timed */
    int64_t t0 = cci_now_ns();
    for (uint64_t i = 0; i < rounds; i++)
        cci_coro_resume(&b.c);
    int64_t t = cci_now_ns() - t0;
    b.stop = true;
    cci_coro_resume(&b.c);
    cci_coro_destroy(&b.c);
    cci_stack_free(&stack);
    return t;
}
