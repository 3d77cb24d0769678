/* Linux implementation of process_platform.h. */
#include "platform/process_platform.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "platform/platform.h"

#ifndef P_PIDFD
#define P_PIDFD 3 /* older headers: the value is kernel ABI */
#endif

pid_t cci_fork(void)
{
    pid_t pid = fork();
    return pid < 0 ? -errno : pid;
}

int cci_pidfd_open(pid_t pid)
{
    long fd = syscall(SYS_pidfd_open, pid, 0);
    if (fd < 0)
        return -errno;
    /* pidfd_open always sets CLOEXEC on Linux; be sure anyway. */
    cci_set_cloexec((int)fd, true);
    return (int)fd;
}

int cci_pidfd_open_child(pid_t pid)
{
    if (pid <= 0)
        return -ESRCH;
    /* pidfd_open accepts any process; waiting works only for children, so
     * ask first (without reaping) to report that early. */
    siginfo_t info;
    memset(&info, 0, sizeof info);
    if (waitid(P_PID, (id_t)pid, &info, WEXITED | WNOHANG | WNOWAIT) < 0)
        return -errno;
    return cci_pidfd_open(pid);
}

int cci_pidfd_send_signal(int pidfd, int sig)
{
    if (syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, 0) < 0)
        return -errno;
    return 0;
}

int cci_wait_status_code(int status)
{
    if (WIFEXITED(status))
        return WEXITSTATUS(status);
    if (WIFSIGNALED(status))
        return -WTERMSIG(status);
    return -SIGKILL; /* stopped/continued are never asked for */
}

int cci_pidfd_reap(int pidfd, int *code)
{
    siginfo_t info;
    for (;;) {
        memset(&info, 0, sizeof info);
        if (waitid((idtype_t)P_PIDFD, (id_t)pidfd, &info,
                   WEXITED | WNOHANG) == 0)
            break;
        if (errno != EINTR)
            return -errno;
    }
    if (info.si_pid == 0)
        return 0; /* still running */
    switch (info.si_code) {
    case CLD_EXITED:
        *code = info.si_status;
        break;
    default: /* CLD_KILLED, CLD_DUMPED */
        *code = -info.si_status;
        break;
    }
    return 1;
}

int cci_set_parent_death_signal(int sig, pid_t expected_parent)
{
    if (prctl(PR_SET_PDEATHSIG, sig, 0, 0, 0) < 0)
        return -errno;
    /* The parent may have died between fork and prctl: then we were
     * reparented already and the signal will never come. */
    if (getppid() != expected_parent)
        return -ESRCH;
    return 0;
}

void cci_reset_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_DFL;
    sigemptyset(&sa.sa_mask);
    for (int sig = 1; sig < NSIG; sig++)
        if (sig != SIGKILL && sig != SIGSTOP)
            sigaction(sig, &sa, NULL); /* fails harmlessly for 32, 33 */
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
}

void cci_yield(void)
{
    sched_yield();
}

int cci_limit_address_space(uint64_t bytes)
{
    struct rlimit rl = {(rlim_t)bytes, (rlim_t)bytes};
    return setrlimit(RLIMIT_AS, &rl) < 0 ? -errno : 0;
}

/* ---- file descriptors ------------------------------------------------------ */

static int compare_ints(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

/* Closes [lo, hi] (hi may be UINT_MAX). */
static int close_span(unsigned lo, unsigned hi)
{
    if (lo > hi)
        return 0;
    if (syscall(SYS_close_range, lo, hi, 0) == 0)
        return 0;
    if (errno != ENOSYS)
        return -errno;
    /* No close_range: close what /proc says is open. opendir allocates,
     * which is fine in a child forked by glibc's fork. */
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return -errno;
    int dfd = dirfd(d);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        char *end;
        long fd = strtol(e->d_name, &end, 10);
        if (*end || fd == dfd || fd < (long)lo || (unsigned long)fd > hi)
            continue;
        close((int)fd);
    }
    closedir(d);
    return 0;
}

int cci_close_fds_except(const int *keep, size_t n)
{
    int sorted[CCI_MAX_FDS];
    if (n > CCI_MAX_FDS)
        return -EINVAL;
    memcpy(sorted, keep, n * sizeof *keep);
    qsort(sorted, n, sizeof *sorted, compare_ints);
    unsigned lo = 3;
    for (size_t i = 0; i < n; i++) {
        if (sorted[i] < 3)
            return -EINVAL;
        int rc = close_span(lo, (unsigned)sorted[i] - 1);
        if (rc < 0)
            return rc;
        lo = (unsigned)sorted[i] + 1;
    }
    return close_span(lo, UINT_MAX);
}

int cci_set_cloexec(int fd, bool on)
{
    int flags = fcntl(fd, F_GETFD);
    if (flags < 0)
        return -errno;
    flags = on ? flags | FD_CLOEXEC : flags & ~FD_CLOEXEC;
    return fcntl(fd, F_SETFD, flags) < 0 ? -errno : 0;
}

int cci_pipe(int fds[2])
{
    return pipe2(fds, O_CLOEXEC) < 0 ? -errno : 0;
}

int cci_seqpacket_pair(int fds[2])
{
    return socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, fds) < 0
               ? -errno
               : 0;
}

int cci_stream_pair(int fds[2])
{
    return socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) < 0
               ? -errno
               : 0;
}

int cci_eventfd(void)
{
    int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    return fd < 0 ? -errno : fd;
}

int cci_poll_fd(int fd, short events, int64_t deadline)
{
    for (;;) {
        struct pollfd p = {.fd = fd, .events = events};
        struct timespec ts, *tsp = NULL;
        if (deadline != CCI_NO_DEADLINE) {
            int64_t left = deadline - cci_now_ns();
            if (left < 0)
                left = 0;
            ts.tv_sec = left / 1000000000;
            ts.tv_nsec = left % 1000000000;
            tsp = &ts;
        }
        int rc = ppoll(&p, 1, tsp, NULL);
        if (rc > 0)
            return p.revents;
        if (rc == 0)
            return -ETIMEDOUT;
        if (errno != EINTR)
            return -errno;
    }
}

int cci_send_with_fds(int sock, const void *buf, size_t len, const int *fds,
                      size_t nfds)
{
    if (nfds > CCI_MAX_FDS)
        return -EINVAL;
    union {
        struct cmsghdr align;
        char buf[CMSG_SPACE(sizeof(int) * CCI_MAX_FDS)];
    } control;
    const char *p = buf;
    size_t left = len;
    bool first = true;
    do {
        struct iovec iov = {.iov_base = (void *)p, .iov_len = left};
        struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};
        if (first && nfds > 0) {
            memset(&control, 0, sizeof control);
            msg.msg_control = control.buf;
            msg.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
            struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
            c->cmsg_level = SOL_SOCKET;
            c->cmsg_type = SCM_RIGHTS;
            c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
            memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
        }
        ssize_t n = sendmsg(sock, &msg, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return errno == ECONNRESET ? -EPIPE : -errno;
        }
        first = false;
        p += n;
        left -= (size_t)n;
    } while (left > 0);
    return 0;
}

ssize_t cci_recv_with_fds(int sock, void *buf, size_t cap, int *fds,
                          size_t max_fds, size_t *nfds)
{
    union {
        struct cmsghdr align;
        char buf[CMSG_SPACE(sizeof(int) * CCI_MAX_FDS)];
    } control;
    *nfds = 0;
    if (max_fds > CCI_MAX_FDS)
        max_fds = CCI_MAX_FDS;
    struct iovec iov = {.iov_base = buf, .iov_len = cap};
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};
    ssize_t n;
    for (;;) {
        memset(&control, 0, sizeof control);
        msg.msg_control = control.buf;
        /* Room for CCI_MAX_FDS even when fewer are wanted, so that a peer
         * sending too many is detected (and its descriptors closed) instead
         * of silently truncated by the kernel. */
        msg.msg_controllen = sizeof control.buf;
        n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
        if (n >= 0 || errno != EINTR)
            break;
    }
    if (n < 0)
        return errno == ECONNRESET ? 0 : -errno;
    size_t got = 0;
    bool too_many = false;
    int all[CCI_MAX_FDS];
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
            continue;
        size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t i = 0; i < k; i++) {
            int fd;
            memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
            if (got < CCI_MAX_FDS)
                all[got++] = fd;
            else
                close(fd);
        }
    }
    if (got > max_fds)
        too_many = true;
    if (too_many || (msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC))) {
        for (size_t i = 0; i < got; i++)
            close(all[i]);
        return -EMSGSIZE;
    }
    memcpy(fds, all, got * sizeof(int));
    *nfds = got;
    return n;
}

int cci_write_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

int cci_read_all(int fd, void *buf, size_t len)
{
    char *p = buf;
    while (len > 0) {
        ssize_t n = read(fd, p, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (n == 0)
            return -EPIPE;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* ---- memory --------------------------------------------------------------- */

int cci_memfd(const char *debug_name, size_t size)
{
    int fd = (int)syscall(SYS_memfd_create, debug_name,
                          MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (fd < 0)
        return -errno;
    if (ftruncate(fd, (off_t)size) < 0) {
        int err = -errno;
        close(fd);
        return err;
    }
    return fd;
}

int cci_map_shared(int fd, size_t size, void **out)
{
    void *p = mmap(NULL, size ? size : 1, PROT_READ | PROT_WRITE, MAP_SHARED,
                   fd, 0);
    if (p == MAP_FAILED)
        return -errno;
    *out = p;
    return 0;
}

int cci_random_bytes(void *buf, size_t len)
{
    char *p = buf;
    while (len > 0) {
        ssize_t n = getrandom(p, len, 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}
