/*
 * deadlock.c — two locks taken in opposite orders: the classic deadlock,
 * made on purpose, and what concur's debug mode says about it.
 *
 * Python has no detector for this; its nearest tool is faulthandler, which
 * prints where threads are once the program hangs. concur finds the bug
 * twice over:
 *   1. the lock-order check (CC_DEBUG_ORDER): one thread that takes
 *      A then B, and later B then A, is told at once, before any deadlock
 *      happens, and the second acquire fails with -EDEADLK;
 *   2. the watchdog (CC_DEBUG_WATCHDOG): two threads that really deadlock
 *      are reported once their waits pass a threshold; the thread dump
 *      shows who waits for what and who holds it.
 * The acquires of part 2 have a timeout, so the program ends by itself.
 * Any program gets the same with no code change: CONCUR_DEBUG=deadlock
 * (and CONCUR_DUMP_ON_SIGQUIT=1 for a dump on Ctrl-\); see
 * docs/observability.md.
 */
#include <concur.h>
#include <stdio.h>

static cc_lock accounts, ledger;
static cc_event has_accounts, has_ledger;

static void print_report(const char *report, void *ctx)
{
    (void)ctx;
    printf("%s", report);
    fflush(stdout);
}

/* Takes `first`, waits until the other thread holds its own first lock,
 * then asks for `second`: each waits for the other. */
static int transfer(cc_lock *first, cc_lock *second, cc_event *mine,
                    cc_event *theirs)
{
    cc_lock_acquire(first, CC_FOREVER);
    cc_event_set(mine);
    cc_event_wait(theirs, CC_FOREVER);
    int rc = cc_lock_acquire(second, CC_SEC(2));
    if (rc == 0)
        cc_lock_release(second);
    else
        printf("%s: gave up after 2 s: %s\n",
               cc_thread_name(cc_thread_current()), cc_strerror(rc));
    cc_lock_release(first);
    return 0;
}

static int teller(void *arg)
{
    (void)arg;
    return transfer(&accounts, &ledger, &has_accounts, &has_ledger);
}

static int auditor(void *arg)
{
    (void)arg;
    return transfer(&ledger, &accounts, &has_ledger, &has_accounts);
}

int main(void)
{
    cc_lock_init(&accounts, 0);
    cc_lock_init(&ledger, 0);
    cc_event_init(&has_accounts, 0);
    cc_event_init(&has_ledger, 0);
    cc_name_set(&accounts, "accounts");
    cc_name_set(&ledger, "ledger");
    cc_debug_set_report_hook(print_report, NULL);

    printf("== 1. the lock-order check, one thread ==\n");
    cc_debug_enable(CC_DEBUG_ORDER);
    cc_lock_acquire(&accounts, CC_FOREVER);
    cc_lock_acquire(&ledger, CC_FOREVER); /* learns: accounts -> ledger */
    cc_lock_release(&ledger);
    cc_lock_release(&accounts);
    cc_lock_acquire(&ledger, CC_FOREVER);
    int rc = cc_lock_acquire(&accounts, CC_FOREVER); /* the other order */
    printf("acquire returned %d (%s)\n", rc, cc_strerror(rc));
    cc_lock_release(&ledger);
    cc_debug_disable(CC_DEBUG_ORDER);

    printf("\n== 2. a real deadlock, two threads, and the watchdog ==\n");
    cc_debug_set_watchdog_threshold(CC_MSEC(300));
    cc_debug_enable(CC_DEBUG_WATCHDOG);
    cc_thread *a, *b;
    cc_thread_options oa = {.name = "teller"}, ob = {.name = "auditor"};
    cc_thread_new(&a, teller, NULL, &oa);
    cc_thread_new(&b, auditor, NULL, &ob);
    cc_thread_start(a);
    cc_thread_start(b);
    cc_sleep(CC_SEC(1)); /* the watchdog reports meanwhile */
    printf("\n-- the thread dump while they are stuck --\n");
    cc_dump(stdout);
    cc_thread_join(a, CC_FOREVER);
    cc_thread_join(b, CC_FOREVER);
    cc_thread_unref(a);
    cc_thread_unref(b);
    cc_debug_disable(CC_DEBUG_ALL);

    cc_lock_destroy(&accounts);
    cc_lock_destroy(&ledger);
    cc_event_destroy(&has_accounts);
    cc_event_destroy(&has_ledger);
    return 0;
}
