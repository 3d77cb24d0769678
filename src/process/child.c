/*
 * child.c — the first thing every child runs, whatever forked it.
 *
 * Order matters: the death signal first (so that nothing below can leave an
 * orphan), then descriptors (before any user code could leak one into an
 * exec), then signals, then the function.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "concur/error.h"
#include "platform/process_platform.h"
#include "process/process_internal.h"

int cci_child_exit_status(int ret)
{
    return ret < 0 ? 1 : (ret & 0xff);
}

/* Async-signal-safe complaint, for the moments before stdio is trusted. */
static void say(const char *what, int err)
{
    char buf[200];
    int n = snprintf(buf, sizeof buf, "concur: child %ld: %s: %s\n",
                     (long)getpid(), what, cc_strerror(err));
    if (n > 0)
        (void)!write(2, buf, (size_t)n < sizeof buf ? (size_t)n : sizeof buf);
}

/*
 * Moves received[i] to targets[i] for every i. A target may be occupied by
 * another received descriptor or by the launcher's own, so every received
 * one is first copied above the highest target, then dup2'ed into place.
 */
static int place_fds(const int *received, const int *targets, size_t n)
{
    int high = 2, tmp[CC_PROCESS_MAX_PASS_FDS];
    for (size_t i = 0; i < n; i++)
        high = targets[i] > high ? targets[i] : high;
    for (size_t i = 0; i < n; i++) {
        if (received[i] == targets[i]) {
            tmp[i] = -1;
            continue;
        }
        tmp[i] = fcntl(received[i], F_DUPFD_CLOEXEC, high + 1);
        if (tmp[i] < 0)
            return -errno;
    }
    for (size_t i = 0; i < n; i++)
        if (tmp[i] >= 0 && dup2(tmp[i], targets[i]) < 0)
            return -errno;
    return 0; /* the temporaries go with close_fds_except */
}

_Noreturn void cci_child_main(const struct cci_child_setup *s)
{
    /* 1. Never outlive the parent. */
    int rc = cci_set_parent_death_signal(SIGKILL, s->parent);
    if (rc == -ESRCH)
        _exit(1); /* the parent is already gone */
    if (rc < 0) {
        say("PR_SET_PDEATHSIG", rc);
        _exit(1);
    }
    cci_process_forget_parent_state();

    /* 2. Descriptors: stdio, the passed ones, nothing else. */
    for (int k = 0; k < 3; k++)
        if (s->stdio[k] >= 0 && s->stdio[k] != k && dup2(s->stdio[k], k) < 0) {
            say("dup2", -errno);
            _exit(1);
        }
    rc = place_fds(s->received, s->targets, s->n_pass);
    if (rc == 0)
        rc = cci_close_fds_except(s->targets, s->n_pass);
    if (rc < 0) {
        say("closing inherited descriptors", rc);
        _exit(1);
    }

    /* 3. Signals. */
    if (s->reset_signals)
        cci_reset_signals();

    /* 4. The function, if it is code this image has. */
    if (s->check_fn_mapped) {
        Dl_info info;
        if (!dladdr((void *)(uintptr_t)s->fn, &info)) {
            say("the function is not mapped in the fork server (loaded "
                "after cc_process_init?)", -EFAULT);
            _exit(127);
        }
    }
    int ret = s->fn(s->arg, s->len);
    if (ret < 0) {
        fflush(stdout);
        fprintf(stderr, "concur: process %ld failed: %s (%d)\n",
                (long)getpid(), cc_strerror(ret), ret);
    }
    fflush(stdout);
    fflush(stderr);
    _exit(cci_child_exit_status(ret));
}
