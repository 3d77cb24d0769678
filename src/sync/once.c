/*
 * Once.
 *
 * state: 0 not run, 1 running, 2 running and somebody sleeps (so the runner
 * must wake), 3 done. The winner of the CAS 0 -> 1 runs fn; the others move
 * 1 -> 2 and sleep while the state is 2. Finishing exchanges 3 in with
 * RELEASE and seeing 3 is ACQUIRE, so everything fn wrote is visible to every
 * caller that returns.
 *
 * runner is the runner's kernel tid, written by the runner before fn and
 * read (relaxed) by callers that find fn running: only the runner itself can
 * read its own tid there, which turns a recursive call into -EDEADLK instead
 * of a self-deadlock.
 */
#include "sync/sync_internal.h"

enum { NOT_RUN = 0, RUNNING = 1, RUNNING_WAITED = 2, DONE = 3 };

int cc_once_init(cc_once *once, unsigned flags)
{
    if (once == NULL || !cci_sync_flags_valid(flags))
        return -EINVAL;
    once->state = NOT_RUN;
    once->runner = 0;
    once->flags = flags;
    return 0;
}

static void run(cc_once *once, void (*fn)(void *ctx), void *ctx)
{
    cci_store_relaxed(&once->runner, cci_gettid());
    fn(ctx);
    cci_store_relaxed(&once->runner, 0);
    if (__atomic_exchange_n(&once->state, DONE, __ATOMIC_RELEASE) ==
        RUNNING_WAITED)
        cci_futex_wake(&once->state, INT32_MAX, cci_sync_pshared(once->flags));
}

int cc_once_call(cc_once *once, void (*fn)(void *ctx), void *ctx)
{
    if (once == NULL || fn == NULL)
        return -EINVAL;
    uint32_t s = __atomic_load_n(&once->state, __ATOMIC_ACQUIRE);
    if (CCI_LIKELY(s == DONE))
        return 0;
    if (s == NOT_RUN &&
        __atomic_compare_exchange_n(&once->state, &s, RUNNING, false,
                                    __ATOMIC_ACQUIRE, __ATOMIC_ACQUIRE)) {
        run(once, fn, ctx);
        return 0;
    }
    if (s == DONE)
        return 0;
    if (cci_load_relaxed(&once->runner) == cci_gettid())
        return -EDEADLK;

    bool pshared = cci_sync_pshared(once->flags);
    cci_block_token token = {0};
    bool marked = false;
    while (s != DONE) {
        /* A failed CAS reloads s: the runner may just have finished. */
        if (s == RUNNING && !__atomic_compare_exchange_n(
                                &once->state, &s, RUNNING_WAITED, false,
                                __ATOMIC_ACQUIRE, __ATOMIC_ACQUIRE))
            continue;
        if (!marked) {
            token = cci_block_begin(CC_WAIT_ONCE, once);
            marked = true;
        }
        cci_futex_wait(&once->state, RUNNING_WAITED, CCI_NO_DEADLINE, pshared);
        s = __atomic_load_n(&once->state, __ATOMIC_ACQUIRE);
    }
    if (marked)
        cci_block_end(token);
    return 0;
}

bool cc_once_done(const cc_once *once)
{
    return once != NULL &&
           __atomic_load_n(&once->state, __ATOMIC_ACQUIRE) == DONE;
}
