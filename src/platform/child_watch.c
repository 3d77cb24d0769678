/* child_watch.h on Linux, through raw system calls (glibc wrappers are recent).
 */
#include "platform/child_watch.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef P_PIDFD
#define P_PIDFD 3 /* older headers: the value is kernel ABI */
#endif

int cci_child_watch_open(pid_t pid)
{
    if (pid <= 0)
        return -ESRCH;
    /* pidfd_open accepts any process; waiting works only for children, so
     * ask first (without reaping) to report that early. */
    siginfo_t info;
    memset(&info, 0, sizeof info);
    if (waitid(P_PID, (id_t)pid, &info, WEXITED | WNOHANG | WNOWAIT) < 0)
        return -errno;
    long fd = syscall(SYS_pidfd_open, pid, 0);
    if (fd < 0)
        return -errno;
    /* pidfds are close-on-exec from birth. */
    return (int)fd;
}

int cci_child_watch_reap(int pidfd, int *returncode)
{
    siginfo_t info;
    for (;;) {
        memset(&info, 0, sizeof info);
        if (waitid((idtype_t)P_PIDFD, (id_t)pidfd, &info, WEXITED | WNOHANG) ==
            0)
            break;
        if (errno != EINTR)
            return -errno;
    }
    if (info.si_pid == 0)
        return 0;
    *returncode = info.si_code == CLD_EXITED ? info.si_status : -info.si_status;
    return 1;
}
