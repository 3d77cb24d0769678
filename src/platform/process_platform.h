/*
 * process_platform.h — what the process module needs from the kernel, in
 * the same spirit as platform.h: one contract, one implementation file per
 * system (process_linux.c), no #ifdefs in the callers.
 *
 * Every call returns 0 or a value >= 0 on success and a negative errno code
 * on failure; none of them sets errno in a way callers rely on.
 */
#ifndef CCI_PROCESS_PLATFORM_H
#define CCI_PROCESS_PLATFORM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* ---- creating and watching processes ------------------------------------- */

/* fork(2) through glibc, so that its atfork handlers run (malloc and stdio
 * are usable in the child). Returns the child's pid in the parent, 0 in the
 * child, or -errno. */
pid_t cci_fork(void);

/* A pidfd for pid (CLOEXEC). Race-free only while pid cannot be reaped by
 * anyone else: call it for your own unreaped child. Returns fd or -errno. */
int cci_pidfd_open(pid_t pid);

/* cci_pidfd_open for a pid the caller did not fork itself (an event loop
 * asked to watch it): checks first, without reaping, that it is an
 * unreaped child of this process. Returns fd, -ESRCH, -ECHILD (not our
 * child), -ENOSYS (kernel older than 5.3), or -errno. A pidfd becomes
 * readable when the child exits, so a loop can watch it like a socket. */
int cci_pidfd_open_child(pid_t pid);

/* Sends sig through a pidfd, so a recycled pid is never signalled.
 * Returns 0, -ESRCH (already gone, reaped or not), or -errno. */
int cci_pidfd_send_signal(int pidfd, int sig);

/* Reaps the child behind pidfd if it has exited (never blocks). Returns 1
 * with the Python-style exit code in *code (exit status >= 0, or -signal),
 * 0 if it still runs, or -errno (-ECHILD: not our child, or already
 * reaped). */
int cci_pidfd_reap(int pidfd, int *code);

/* The Python-style exit code for a wait status (WIFEXITED/WIFSIGNALED). */
int cci_wait_status_code(int status);

/*
 * In a freshly forked child: asks for sig when the parent thread dies, then
 * checks that the parent is still expected_parent (it may have died between
 * the fork and the prctl, in which case the signal never comes). Returns 0,
 * or -ESRCH when the parent is already gone (the caller must _exit).
 */
int cci_set_parent_death_signal(int sig, pid_t expected_parent);

/* In a child: every signal back to its default action and unblocked, as in
 * a freshly exec'd program. */
void cci_reset_signals(void);

/* Gives the CPU to another runnable thread, if any (sched_yield). Spin
 * loops call it so that a spinner never keeps the thread it waits for off
 * the CPU: on two CPUs, three parties spinning (caller, supervisor,
 * worker) otherwise cost a whole spin window per round trip. */
void cci_yield(void);

/* setrlimit(RLIMIT_AS) to bytes (soft and hard). Returns 0 or -errno. */
int cci_limit_address_space(uint64_t bytes);

/* ---- file descriptors ------------------------------------------------------- */

/*
 * In a child: closes every descriptor >= 3 except the n listed in keep
 * (which must be open, >= 3 and distinct). close_range when the kernel has
 * it, else one close per entry of /proc/self/fd. Returns 0 or -errno.
 */
int cci_close_fds_except(const int *keep, size_t n);

/* Sets or clears FD_CLOEXEC. Returns 0 or -errno. */
int cci_set_cloexec(int fd, bool on);

/* A pipe with both ends CLOEXEC. Returns 0 or -errno. */
int cci_pipe(int fds[2]);

/* A SOCK_SEQPACKET socketpair, both ends CLOEXEC. Returns 0 or -errno. */
int cci_seqpacket_pair(int fds[2]);

/* A SOCK_STREAM socketpair, both ends CLOEXEC. Returns 0 or -errno. */
int cci_stream_pair(int fds[2]);

/* An eventfd (CLOEXEC, non-blocking, counter mode). Returns fd or -errno. */
int cci_eventfd(void);

/*
 * Waits until fd reports one of events (POLLIN, POLLOUT) or the absolute
 * monotonic deadline passes (CCI_NO_DEADLINE: forever; 0: do not wait).
 * Retries on EINTR. Returns the revents (> 0), -ETIMEDOUT, or -errno.
 */
int cci_poll_fd(int fd, short events, int64_t deadline);

/*
 * Sends one datagram (SEQPACKET) or a run of bytes (stream) with up to
 * CCI_MAX_FDS descriptors attached. Retries on EINTR; a stream send is
 * completed in full. Returns 0, -EPIPE (peer gone), or -errno.
 */
#define CCI_MAX_FDS 32
int cci_send_with_fds(int sock, const void *buf, size_t len, const int *fds,
                      size_t nfds);

/*
 * Receives one datagram into buf (cap bytes) and up to max_fds descriptors
 * (CLOEXEC). Returns the datagram length, 0 at end of stream, -EMSGSIZE if
 * the datagram or its descriptors were truncated (every descriptor received
 * is closed then), or -errno. *nfds gets the descriptor count.
 */
ssize_t cci_recv_with_fds(int sock, void *buf, size_t cap, int *fds,
                          size_t max_fds, size_t *nfds);

/* write/read of exactly len bytes on a blocking descriptor, retrying on
 * EINTR and short transfers. read returns 0, -EPIPE on end of file before
 * len bytes (an empty read at the very start included), or -errno. */
int cci_write_all(int fd, const void *buf, size_t len);
int cci_read_all(int fd, void *buf, size_t len);

/* ---- memory ----------------------------------------------------------------- */

/* An anonymous memory file (memfd, CLOEXEC, sealable) of size bytes.
 * Returns fd or -errno. */
int cci_memfd(const char *debug_name, size_t size);

/* Maps size bytes of fd shared, read-write. Returns 0 with *out, or
 * -errno. */
int cci_map_shared(int fd, size_t size, void **out);

/* Fills buf with len bytes from the kernel's CSPRNG (getrandom). */
int cci_random_bytes(void *buf, size_t len);

#endif /* CCI_PROCESS_PLATFORM_H */
