/*
 * child_watch.h — waiting for a child process through a file descriptor that
 * becomes readable when it exits (Linux 5.3+ pidfd_open, 5.4+ waitid
 * P_PIDFD), so an event loop can watch children like sockets instead of
 * through SIGCHLD.
 */
#ifndef CCI_CHILD_WATCH_H
#define CCI_CHILD_WATCH_H

#include <sys/types.h>

/* Returns a close-on-exec pidfd for pid, or -ESRCH, -ECHILD (pid is not a
 * child of this process), -ENOSYS (old kernel), -EMFILE, ... */
int cci_child_watch_open(pid_t pid);

/* Reaps the child if it has exited: returns 1 and stores its returncode
 * (exit status, or -N after signal N) in *returncode; 0 if it still runs;
 * or a negative errno (-ECHILD: reaped by someone else). Never blocks. */
int cci_child_watch_reap(int pidfd, int *returncode);

#endif /* CCI_CHILD_WATCH_H */
