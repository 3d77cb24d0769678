/*
 * coro_cross_check — the aarch64 context switch (src/platform/ctx_aarch64.S)
 * proved on an aarch64 machine or under qemu-aarch64, without cmocka (which
 * is not there for the cross compiler): the register contract checked from
 * assembly (regs_aarch64.S), then the library's own coroutines doing what
 * tests/test_coro.c does with them — thousands of sleeping tasks in
 * deadline order, floating point and deep stacks across switches,
 * per-coroutine rounding modes, cancellation, a TCP echo server and its
 * clients on loopback, calls from another thread.
 *
 * Prints one line per check and "N passed, 0 failed"; exits 1 on any
 * failure. Run by the coro_aarch64 test (tests/cross/run.cmake).
 */
#include <errno.h>
#include <fenv.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "concur.h"
#include "loop/coro.h"

#if !defined(__aarch64__)
#error "coro_cross_check is for aarch64: it checks ctx_aarch64.S"
#endif

/* Defined only by the hand-written back-ends: linking fails if CMake
 * picked the ucontext one. */
void cci_ctx_trampoline(void);

int regs_call_check(uint64_t seed, uint64_t fpcr, void (*fn)(void *),
                    void *arg);

static int failures, passes;

#define CHECK(cond)                                                        \
    do {                                                                   \
        if (!(cond)) {                                                     \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__,         \
                    __LINE__, #cond);                                      \
            failures++;                                                    \
            return;                                                        \
        }                                                                  \
    } while (0)

static void run_check(const char *name, void (*fn)(void))
{
    int before = failures;
    fn();
    if (failures == before)
        passes++;
    printf("%-36s %s\n", name, failures == before ? "ok" : "FAILED");
    fflush(stdout);
}

/* ---- the register contract ----------------------------------------------- */

#define FPCR_TOWARD_ZERO (UINT64_C(3) << 22)
#define FPCR_UPWARD (UINT64_C(1) << 22)
#define ROUNDS 200

typedef struct regs_coro {
    struct cci_coro c;
    int bad;
} regs_coro;

static void yield_back(void *arg)
{
    cci_coro_yield(&((regs_coro *)arg)->c);
}

static void resume(void *arg)
{
    cci_coro_resume(&((regs_coro *)arg)->c);
}

/* The coroutine fills the registers with its own values and yields from
 * inside regs_call_check, ROUNDS times; the resumer does the same with
 * other values and another rounding mode around each resume. */
static void regs_body(void *arg)
{
    regs_coro *r = arg;
    for (uint64_t i = 0; i < ROUNDS; i++)
        r->bad += regs_call_check(UINT64_C(0xC0C0000000000000) + (i << 8),
                                  FPCR_UPWARD, yield_back, r);
}

static void check_registers(void)
{
    cci_stack stack;
    CHECK(cci_stack_alloc(&stack, 64 * 1024) == 0);
    regs_coro r = {.bad = 0};
    cci_coro_init(&r.c, stack, regs_body, &r);
    int bad = 0;
    for (uint64_t i = 0; i < ROUNDS; i++)
        bad += regs_call_check(UINT64_C(0x5A5A000000000000) + (i << 8),
                               FPCR_TOWARD_ZERO, resume, &r);
    cci_coro_resume(&r.c); /* the last check in the coroutine returns */
    int done = r.c.done;
    cci_coro_destroy(&r.c);
    cci_stack_free(&stack);
    CHECK(done);
    CHECK(bad == 0);
    CHECK(r.bad == 0);
}

/* ---- the library's coroutines ---------------------------------------------- */

enum { SLEEPERS = 2000 };

typedef struct sleepers {
    int delay_ms[SLEEPERS];
    int64_t due[SLEEPERS]; /* when each asked to wake */
    int order[SLEEPERS];
    int n;
} sleepers;

typedef struct sleeper_arg {
    sleepers *s;
    int id;
} sleeper_arg;

static int sleeper(void *arg, void **result)
{
    (void)result;
    sleeper_arg *a = arg;
    a->s->due[a->id] = cc_monotonic_ns() + CC_MSEC(a->s->delay_ms[a->id]);
    int rc = cc_async_sleep(CC_MSEC(a->s->delay_ms[a->id]));
    if (rc == 0 && cc_monotonic_ns() < a->s->due[a->id])
        return -EPROTO; /* woke early */
    a->s->order[a->s->n++] = a->id;
    return rc;
}

static int sleepers_main(void *arg, void **result)
{
    (void)result;
    sleepers *s = arg;
    sleeper_arg *args = calloc(SLEEPERS, sizeof *args);
    cc_future **fs = calloc(SLEEPERS, sizeof *fs);
    if (!args || !fs)
        return -ENOMEM;
    int rc = 0;
    for (int i = 0; i < SLEEPERS && rc == 0; i++) {
        s->delay_ms[i] = 1 + (i * 7919) % 200;
        args[i] = (sleeper_arg){s, i};
        rc = cc_create_task(sleeper, &args[i], &fs[i]);
    }
    if (rc == 0)
        rc = cc_gather(fs, SLEEPERS);
    for (int i = 0; i < SLEEPERS; i++)
        if (fs[i])
            cc_future_unref(fs[i]);
    free(fs);
    free(args);
    return rc;
}

static void check_sleepers(void)
{
    static sleepers s;
    CHECK(cc_run(sleepers_main, &s, NULL) == 0);
    CHECK(s.n == SLEEPERS);
    /* Timers fire in deadline order, give or take the moment between
     * reading the clock here and in the sleep (as in test_coro.c). */
    for (int i = 1; i < SLEEPERS; i++)
        CHECK(s.due[s.order[i - 1]] <= s.due[s.order[i]] + CC_MSEC(5));
}

/* Doubles and integers live across yields, at every depth of a recursion
 * that also uses the coroutine's stack. */
static double deep(int depth, double x)
{
    volatile char pad[256];
    pad[0] = (char)depth;
    if (depth == 0)
        return x;
    double a = x * 1.5 + depth, b = x / 3.0 - depth;
    long k = depth * 7919L;
    if (depth % 16 == 0)
        cc_async_yield();
    double r = deep(depth - 1, a - b);
    return r + a * b + (double)k + pad[0];
}

static int deep_task(void *arg, void **result)
{
    (void)result;
    *(double *)arg = deep(400, (double)(uintptr_t)arg / 1e12);
    return 0;
}

typedef struct deep_run {
    double got[8];
} deep_run;

static int deep_main(void *arg, void **result)
{
    (void)result;
    deep_run *d = arg;
    cc_future *fs[8];
    for (int i = 0; i < 8; i++)
        if (cc_create_task(deep_task, &d->got[i], &fs[i]) < 0)
            return -ENOMEM;
    int rc = cc_gather(fs, 8);
    for (int i = 0; i < 8; i++)
        cc_future_unref(fs[i]);
    return rc;
}

static void check_fp_and_stacks(void)
{
    deep_run d;
    CHECK(cc_run(deep_main, &d, NULL) == 0);
    /* The same computation outside any task, where cc_async_yield fails
     * with -EPERM at once: no switches. Same code, same rounding: the
     * results must be identical to the last bit. */
    for (int i = 0; i < 8; i++)
        CHECK(d.got[i] == deep(400, (double)(uintptr_t)&d.got[i] / 1e12));
}

/* fesetround in one task does not leak into another: FPCR is part of each
 * context. */
static int rounding_up(void *arg, void **result)
{
    (void)result;
    int *ok = arg;
    fesetround(FE_UPWARD);
    cc_async_yield();
    cc_async_yield();
    *ok = fegetround() == FE_UPWARD;
    return 0;
}

static int rounding_default(void *arg, void **result)
{
    (void)result;
    int *ok = arg;
    cc_async_yield();
    *ok = fegetround() == FE_TONEAREST;
    return 0;
}

static int rounding_main(void *arg, void **result)
{
    (void)result;
    int *ok = arg;
    cc_future *fs[2];
    if (cc_create_task(rounding_up, &ok[0], &fs[0]) < 0 ||
        cc_create_task(rounding_default, &ok[1], &fs[1]) < 0)
        return -ENOMEM;
    int rc = cc_gather(fs, 2);
    ok[2] = fegetround() == FE_TONEAREST;
    cc_future_unref(fs[0]);
    cc_future_unref(fs[1]);
    return rc;
}

static void check_rounding_modes(void)
{
    int ok[3] = {0, 0, 0};
    CHECK(cc_run(rounding_main, ok, NULL) == 0);
    CHECK(ok[0] && ok[1] && ok[2]);
    CHECK(fegetround() == FE_TONEAREST);
}

static int forever(void *arg, void **result)
{
    (void)arg;
    (void)result;
    return cc_async_sleep(CC_FOREVER);
}

static int cancel_main(void *arg, void **result)
{
    (void)arg;
    (void)result;
    cc_future *f;
    if (cc_create_task(forever, NULL, &f) < 0)
        return -ENOMEM;
    cc_async_sleep(CC_MSEC(5));
    cc_task_cancel(f);
    int rc = cc_await(f, NULL);
    cc_future_unref(f);
    return rc == -ECANCELED ? 0 : -EPROTO;
}

static void check_cancel(void)
{
    CHECK(cc_run(cancel_main, NULL, NULL) == 0);
}

/* ---- TCP on loopback ------------------------------------------------------- */

enum { CLIENTS = 20, LINES = 20 };

static int echo_handler(cc_stream *s, void *ctx)
{
    int *served = ctx;
    char line[128];
    for (;;) {
        ssize_t n = cc_stream_readline(s, line, sizeof line, CC_SEC(30));
        if (n <= 0) {
            ++*served;
            return (int)n;
        }
        if (cc_stream_write(s, line, (size_t)n) < 0)
            return -EPIPE;
    }
}

static int echo_client(void *arg, void **result)
{
    (void)result;
    uint16_t port = *(uint16_t *)arg;
    cc_stream *s;
    int rc = cc_open_connection("127.0.0.1", port, CC_SEC(30), &s);
    if (rc < 0)
        return rc;
    for (int i = 0; i < LINES && rc == 0; i++) {
        char out[64], in[64];
        int len = snprintf(out, sizeof out, "line %d from %p\n", i, arg);
        rc = cc_stream_write(s, out, (size_t)len);
        if (rc == 0)
            rc = cc_stream_drain(s, CC_SEC(30));
        ssize_t n = rc == 0 ? cc_stream_readline(s, in, sizeof in, CC_SEC(30))
                            : rc;
        if (n != len || memcmp(in, out, (size_t)len) != 0)
            rc = n < 0 ? (int)n : -EIO;
    }
    cc_stream_close(s);
    return rc;
}

static int echo_main(void *arg, void **result)
{
    (void)result;
    int *served = arg;
    cc_server *srv;
    int rc = cc_start_server(NULL, NULL, 0, echo_handler, served, &srv);
    if (rc < 0)
        return rc;
    uint16_t port = cc_server_port(srv);
    cc_future *fs[CLIENTS];
    int n = 0;
    for (; n < CLIENTS && rc == 0; n++)
        rc = cc_create_task(echo_client, &port, &fs[n]);
    if (rc < 0)
        n--;
    int gathered = cc_gather(fs, (size_t)n);
    rc = rc < 0 ? rc : gathered;
    for (int k = 0; k < 5000 && *served < CLIENTS; k++)
        cc_async_sleep(CC_MSEC(1));
    for (int i = 0; i < n; i++)
        cc_future_unref(fs[i]);
    cc_server_free(srv);
    return rc;
}

static void check_tcp_echo(void)
{
    int served = 0;
    CHECK(cc_run(echo_main, &served, NULL) == 0);
    CHECK(served == CLIENTS);
}

/* ---- another thread ------------------------------------------------------- */

enum { CALLS = 10000 };

typedef struct remote {
    cc_loop *loop;
    int count;
} remote;

static void count_call(cc_loop *loop, void *ctx)
{
    remote *r = ctx;
    if (++r->count == CALLS)
        cc_loop_stop(loop);
}

static void *caller(void *arg)
{
    remote *r = arg;
    for (int i = 0; i < CALLS; i++)
        if (cc_loop_call_soon_threadsafe(r->loop, count_call, r) < 0)
            abort();
    return NULL;
}

static void check_threadsafe_calls(void)
{
    remote r = {0};
    CHECK(cc_loop_new(&r.loop, NULL) == 0);
    pthread_t th;
    CHECK(pthread_create(&th, NULL, caller, &r) == 0);
    int rc = cc_loop_run_forever(r.loop);
    pthread_join(th, NULL);
    cc_loop_free(r.loop);
    CHECK(rc == 0);
    CHECK(r.count == CALLS);
}

int main(void)
{
    printf("hand-written switch linked: trampoline at %p\n",
           (void *)cci_ctx_trampoline);
    run_check("registers across switches", check_registers);
    run_check("2000 sleepers in deadline order", check_sleepers);
    run_check("floating point and deep stacks", check_fp_and_stacks);
    run_check("rounding mode per coroutine", check_rounding_modes);
    run_check("cancellation", check_cancel);
    run_check("tcp echo, 20 clients", check_tcp_echo);
    run_check("call_soon_threadsafe from a thread", check_threadsafe_calls);
    printf("%d passed, %d failed\n", passes, failures);
    return failures ? 1 : 0;
}
