/*
 * process_internal.h — what process.c (process objects), forkserver.c (the
 * launcher) and child.c (what every child runs first) share, and what the
 * process pool builds on.
 */
#ifndef CCI_PROCESS_INTERNAL_H
#define CCI_PROCESS_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "concur/process.h"

/* Largest argument a child may receive (a sanity bound, not a buffer). */
#define CCI_PROCESS_MAX_ARG ((size_t)1 << 30)

/* What to run in a new child. */
struct cci_spawn_request {
    cc_process_fn fn;
    void *arg; /* len > 0: bytes to copy; len == 0: a pointer (FORK only) */
    size_t len;
    const int *pass_fds;
    size_t n_pass;
};

/* A started child as the parent sees it. */
struct cci_spawned {
    pid_t pid;
    int pidfd;    /* readable once the child has exited */
    int sentinel; /* readable once the exit code can be collected */
    bool via_launcher; /* the exit code comes through the sentinel */
};

/* Forks the child from the calling thread. Returns 0 or -errno. */
int cci_fork_spawn(const struct cci_spawn_request *req,
                   struct cci_spawned *out);

/* Asks the launcher (starting it if needed) for a child. Returns 0 or
 * -errno. Thread-safe: requests are serialised. */
int cci_forkserver_spawn(const struct cci_spawn_request *req,
                         struct cci_spawned *out);

/* Starts the launcher if it is not running. Returns 0 or -errno. */
int cci_forkserver_ensure(void);

/* Closes the launcher's socket and reaps it (process exit). */
void cci_forkserver_stop(void);

/* The launcher's pid, 0 if none runs (tests). */
pid_t cci_forkserver_pid(void);

/*
 * Sends one datagram that expects no reply (the tracker's messages) to
 * this process's launcher, starting it first if start is set; without
 * start and with no launcher running it does nothing and returns -ESRCH.
 * Returns 0 or -errno. Thread-safe.
 */
int cci_forkserver_notify(const void *msg, size_t len, const int *fds,
                          size_t nfds, bool start);

/* ---- the shared-memory resource tracker (shm_tracker.c) ----------------------
 * A datagram on the launcher's socket, told apart from a spawn request by
 * its magic. The name is NUL-padded to the end. */
#define CCI_TRACK_MAGIC 0x52544343u /* "CCTR" */
enum { CCI_TRACK_REGISTER = 1, CCI_TRACK_UNREGISTER = 2 };
struct cci_track_msg {
    uint32_t magic;
    uint32_t op;
    char name[CC_SHM_NAME_MAX];
};

/* True for a name of exactly the form cc_shm_create makes (shm.c). */
bool cci_shm_name_valid(const char *name);

/* The creator's side: register a new name with this process's launcher
 * (starting it if needed; 0 or -errno), and unregister it once unlinked
 * (never starts a launcher; best effort). */
int cci_shm_track(const char *name);
void cci_shm_untrack(const char *name);

/* The launcher's side: the names still registered. handle() applies one
 * received datagram, dropping anything malformed; cleanup() unlinks what
 * is left (warning on stderr for each name it removed) and empties t. */
struct cci_shm_tracker {
    char (*names)[CC_SHM_NAME_MAX];
    size_t n, cap;
};
void cci_shm_tracker_handle(struct cci_shm_tracker *t, const void *buf,
                            size_t len, size_t nfds);
void cci_shm_tracker_cleanup(struct cci_shm_tracker *t);

/*
 * After any fork made by concur, in the child, before anything else of
 * concur runs: forget the parent's children and launcher. Touches no lock
 * (another thread of the parent may have held one at the fork).
 */
void cci_process_forget_parent_state(void);
void cci_forkserver_forget(void);

/*
 * The common start of every child (any start method): parent-death signal
 * and check, descriptors (stdio, pass_fds placed at their numbers, all
 * others closed), signals when reset_signals, then fn(arg, len), flush and
 * _exit with the status. received[i] holds the descriptor that must end up
 * as targets[i] (equal for FORK children). stdio[k] >= 0 replaces fd k.
 */
struct cci_child_setup {
    pid_t parent;
    int stdio[3];
    const int *received;
    const int *targets;
    size_t n_pass;
    bool reset_signals;
    bool check_fn_mapped;
    cc_process_fn fn;
    void *arg;
    size_t len;
};
_Noreturn void cci_child_main(const struct cci_child_setup *s);

/*
 * Registers the exit handler that terminates daemon children and joins the
 * others (idempotent). The process pool calls it before registering its
 * own handler: atexit runs handlers in reverse, so pools shut down (and
 * finish their accepted tasks) before their daemon workers are terminated.
 */
void cci_process_register_exit(void);

/* Python's exit-status rule: 0..255 as is (masked), negative -> 1. */
int cci_child_exit_status(int ret);

#endif /* CCI_PROCESS_INTERNAL_H */
