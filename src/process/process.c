/*
 * process.c — process objects: start, join, signals, exit codes, and what
 * happens at the parent's exit.
 *
 * Life cycle (set_state asserts it): NEW --start--> STARTED --reaped-->
 * EXITED. STARTED means a child exists that we have not reaped (it may
 * already be a zombie); EXITED means its exit code is known and nothing of
 * it remains in the kernel. Transitions happen under p->lock; the state is
 * also read without it (acquire), so a reader that sees EXITED sees the
 * exit code.
 *
 * Reaping: a FORK child is ours, reaped with waitid(P_PIDFD). A fork-server
 * child belongs to the launcher, which reaps it and writes its exit code
 * into the sentinel pipe; end of file without a code means the launcher
 * died, and its children with it (PDEATHSIG SIGKILL), so the code is -9.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "concur/error.h"
#include "concur/sync.h"
#include "platform/platform.h"
#include "platform/process_platform.h"
#include "process/process_internal.h"
#include "thread/blocking.h"
#include "time/deadline.h"

enum process_state { P_NEW, P_STARTED, P_EXITED };

struct cc_process {
    cc_lock lock; /* guards start and reaping */
    uint32_t state; /* enum process_state; __atomic */
    cc_process_fn fn;
    void *arg;      /* a malloc'd copy when len > 0 */
    size_t len;
    char *name;
    bool daemon;
    cc_start_method method;
    int pass_fds[CC_PROCESS_MAX_PASS_FDS];
    size_t n_pass;
    pid_t pid;
    int pidfd;
    int sentinel;
    bool via_launcher;
    int exitcode;
    struct cc_process *prev_live, *next_live; /* under live_lock */
    bool live;
};

/* ---- global state -------------------------------------------------------------
 * live_lock guards the list of started, unreaped children (for the exit
 * handler and cc_process_active_count). Lock order: live_lock before any
 * p->lock. */
static pthread_mutex_t live_lock = PTHREAD_MUTEX_INITIALIZER;
static struct cc_process *live_head;
static pid_t live_owner; /* the process the list belongs to */
static pthread_once_t exit_once = PTHREAD_ONCE_INIT;
static uint32_t default_method = CC_START_FORKSERVER;
static uint32_t name_counter;

void cci_process_forget_parent_state(void)
{
    pthread_mutex_t fresh = PTHREAD_MUTEX_INITIALIZER;
    live_lock = fresh;
    live_head = NULL;
    live_owner = 0;
    exit_once = (pthread_once_t)PTHREAD_ONCE_INIT;
    cci_forkserver_forget();
}

const char *cc_start_method_name(cc_start_method method)
{
    switch (method) {
    case CC_START_DEFAULT:
        return "default";
    case CC_START_FORKSERVER:
        return "forkserver";
    case CC_START_FORK:
        return "fork";
    }
    return NULL;
}

static void at_exit(void);

static void register_exit(void)
{
    atexit(at_exit);
}

void cci_process_register_exit(void)
{
    pthread_once(&exit_once, register_exit);
}

int cc_process_init(void)
{
    pthread_once(&exit_once, register_exit);
    return cci_forkserver_ensure();
}

int cc_process_set_start_method(cc_start_method method)
{
    if (method != CC_START_FORKSERVER && method != CC_START_FORK)
        return -EINVAL;
    __atomic_store_n(&default_method, (uint32_t)method, __ATOMIC_RELAXED);
    return 0;
}

cc_start_method cc_process_get_start_method(void)
{
    return (cc_start_method)__atomic_load_n(&default_method,
                                            __ATOMIC_RELAXED);
}

/* ---- life cycle ------------------------------------------------------------------ */

static enum process_state get_state(const cc_process *p)
{
    return (enum process_state)__atomic_load_n(&p->state, __ATOMIC_ACQUIRE);
}

/* The legal transitions, in one place. Called with p->lock held. */
static void set_state(cc_process *p, enum process_state to)
{
    enum process_state from = get_state(p);
    if (!((from == P_NEW && to == P_STARTED) ||
          (from == P_STARTED && to == P_EXITED))) {
        fprintf(stderr, "concur: illegal process transition %d -> %d\n", from,
                to);
        abort();
    }
    __atomic_store_n(&p->state, (uint32_t)to, __ATOMIC_RELEASE);
}

static bool options_valid(const cc_process_options *o)
{
    if (o->start_method != CC_START_DEFAULT &&
        o->start_method != CC_START_FORKSERVER &&
        o->start_method != CC_START_FORK)
        return false;
    if (o->n_pass_fds > CC_PROCESS_MAX_PASS_FDS ||
        (o->n_pass_fds > 0 && !o->pass_fds))
        return false;
    for (size_t i = 0; i < o->n_pass_fds; i++) {
        if (o->pass_fds[i] < 3)
            return false;
        for (size_t j = 0; j < i; j++)
            if (o->pass_fds[j] == o->pass_fds[i])
                return false;
    }
    return true;
}

int cc_process_new(cc_process **out, cc_process_fn fn, const void *arg,
                   size_t len, const cc_process_options *opts)
{
    cc_process_options o = opts ? *opts : (cc_process_options){0};
    if (!out || !fn || !options_valid(&o) || len > CCI_PROCESS_MAX_ARG ||
        (len > 0 && !arg))
        return -EINVAL;
    cc_start_method method = o.start_method == CC_START_DEFAULT
                                 ? cc_process_get_start_method()
                                 : o.start_method;
    if (method == CC_START_FORKSERVER && len == 0 && arg)
        return -EINVAL;
    cc_process *p = calloc(1, sizeof *p);
    if (!p)
        return -ENOMEM;
    cc_lock_init(&p->lock, 0);
    p->state = P_NEW;
    p->fn = fn;
    p->len = len;
    p->daemon = o.daemon;
    p->method = method;
    p->pidfd = p->sentinel = -1;
    p->n_pass = o.n_pass_fds;
    if (o.n_pass_fds)
        memcpy(p->pass_fds, o.pass_fds, o.n_pass_fds * sizeof(int));
    if (len > 0) {
        p->arg = malloc(len);
        if (p->arg)
            memcpy(p->arg, arg, len);
    } else {
        p->arg = (void *)arg;
    }
    if (o.name) {
        p->name = strdup(o.name);
    } else {
        unsigned n = __atomic_add_fetch(&name_counter, 1, __ATOMIC_RELAXED);
        if (asprintf(&p->name, "Process-%u", n) < 0)
            p->name = NULL;
    }
    if (!p->name || (len > 0 && !p->arg)) {
        if (len > 0)
            free(p->arg);
        free(p->name);
        free(p);
        return -ENOMEM;
    }
    *out = p;
    return 0;
}

static void live_add(cc_process *p)
{
    pthread_once(&exit_once, register_exit);
    pthread_mutex_lock(&live_lock);
    if (live_owner != getpid()) {
        live_head = NULL; /* inherited from a parent: not ours */
        live_owner = getpid();
    }
    p->prev_live = NULL;
    p->next_live = live_head;
    if (live_head)
        live_head->prev_live = p;
    live_head = p;
    p->live = true;
    pthread_mutex_unlock(&live_lock);
}

static void live_remove(cc_process *p)
{
    pthread_mutex_lock(&live_lock);
    if (p->live) {
        if (p->prev_live)
            p->prev_live->next_live = p->next_live;
        else
            live_head = p->next_live;
        if (p->next_live)
            p->next_live->prev_live = p->prev_live;
        p->live = false;
    }
    pthread_mutex_unlock(&live_lock);
}

int cci_fork_spawn(const struct cci_spawn_request *req,
                   struct cci_spawned *out)
{
    for (size_t i = 0; i < req->n_pass; i++)
        if (fcntl(req->pass_fds[i], F_GETFD) < 0)
            return -EBADF;
    /* Buffered output would otherwise be written twice. */
    fflush(NULL);
    pid_t self = getpid();
    pid_t pid = cci_fork();
    if (pid < 0)
        return pid;
    if (pid == 0) {
        struct cci_child_setup s = {
            .parent = self,
            .stdio = {-1, -1, -1},
            .received = req->pass_fds,
            .targets = req->pass_fds,
            .n_pass = req->n_pass,
            .reset_signals = false,
            .check_fn_mapped = false,
            .fn = req->fn,
            .arg = req->arg,
            .len = req->len,
        };
        cci_child_main(&s);
    }
    /* Race-free: the child is ours and only we reap it. */
    int pidfd = cci_pidfd_open(pid);
    if (pidfd < 0) {
        kill(pid, SIGKILL);
        int st;
        while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
        }
        return pidfd;
    }
    out->pid = pid;
    out->pidfd = pidfd;
    out->sentinel = pidfd;
    out->via_launcher = false;
    return 0;
}

int cc_process_start(cc_process *p)
{
    if (!p)
        return -EINVAL;
    cc_lock_acquire(&p->lock, CC_FOREVER);
    if (get_state(p) != P_NEW) {
        cc_lock_release(&p->lock);
        return -EALREADY;
    }
    struct cci_spawn_request req = {
        .fn = p->fn,
        .arg = p->arg,
        .len = p->len,
        .pass_fds = p->pass_fds,
        .n_pass = p->n_pass,
    };
    struct cci_spawned sp;
    pthread_once(&exit_once, register_exit);
    int rc = p->method == CC_START_FORK ? cci_fork_spawn(&req, &sp)
                                        : cci_forkserver_spawn(&req, &sp);
    if (rc == 0) {
        p->pid = sp.pid;
        p->pidfd = sp.pidfd;
        p->sentinel = sp.sentinel;
        p->via_launcher = sp.via_launcher;
        set_state(p, P_STARTED);
    }
    cc_lock_release(&p->lock);
    if (rc == 0)
        live_add(p);
    return rc;
}

/*
 * Collects the exit code if it is available now. Returns 1 (exited), 0
 * (still running) or -errno. Called with p->lock held.
 */
static int collect_locked(cc_process *p)
{
    if (get_state(p) == P_EXITED)
        return 1;
    int code = 0;
    if (!p->via_launcher) {
        int rc = cci_pidfd_reap(p->pidfd, &code);
        if (rc <= 0)
            return rc;
    } else {
        if (cci_poll_fd(p->sentinel, POLLIN, 0) == -ETIMEDOUT)
            return 0;
        int32_t c;
        ssize_t n;
        do
            n = read(p->sentinel, &c, sizeof c);
        while (n < 0 && errno == EINTR);
        if (n == (ssize_t)sizeof c) {
            code = c;
        } else {
            /* The launcher died before reporting: it took the child with it
             * (PDEATHSIG SIGKILL). Make sure the child is gone first. */
            cci_poll_fd(p->pidfd, POLLIN, cci_now_ns() + CC_SEC(5));
            code = -SIGKILL;
        }
    }
    p->exitcode = code;
    set_state(p, P_EXITED);
    return 1;
}

static int collect(cc_process *p)
{
    if (get_state(p) == P_EXITED)
        return 1;
    cc_lock_acquire(&p->lock, CC_FOREVER);
    int rc = collect_locked(p);
    cc_lock_release(&p->lock);
    if (rc == 1)
        live_remove(p);
    return rc;
}

int cc_process_join(cc_process *p, cc_duration timeout)
{
    if (!p || !cci_duration_valid(timeout) || get_state(p) == P_NEW)
        return -EINVAL;
    int64_t deadline = cci_deadline_after(timeout);
    int rc = collect(p);
    if (rc != 0)
        return rc < 0 ? rc : 0;
    cci_block_token tok = cci_block_begin(CC_WAIT_PROCESS, p);
    for (;;) {
        rc = cci_poll_fd(p->sentinel, POLLIN, deadline);
        if (rc < 0 && rc != -ETIMEDOUT)
            break;
        int c = collect(p);
        if (c != 0) {
            rc = c < 0 ? c : 0;
            break;
        }
        if (rc == -ETIMEDOUT)
            break;
    }
    cci_block_end(tok);
    return rc;
}

bool cc_process_is_alive(cc_process *p)
{
    return p && get_state(p) == P_STARTED && collect(p) == 0;
}

int64_t cc_process_pid(const cc_process *p)
{
    return p && get_state(p) != P_NEW ? p->pid : 0;
}

int cc_process_exitcode(cc_process *p, int *code)
{
    if (!p || !code)
        return -EINVAL;
    if (get_state(p) == P_NEW)
        return 0;
    int rc = collect(p);
    if (rc == 1)
        *code = p->exitcode;
    return rc;
}

int cc_process_signal(cc_process *p, int sig)
{
    if (!p || sig <= 0 || sig >= NSIG)
        return -EINVAL;
    enum process_state s = get_state(p);
    if (s == P_NEW)
        return -EINVAL;
    if (s == P_EXITED)
        return 0;
    /* The pidfd pins the process: even a zombie is still it, never a
     * recycled pid. */
    int rc = cci_pidfd_send_signal(p->pidfd, sig);
    return rc == -ESRCH ? 0 : rc;
}

int cc_process_terminate(cc_process *p)
{
    return cc_process_signal(p, SIGTERM);
}

int cc_process_kill(cc_process *p)
{
    return cc_process_signal(p, SIGKILL);
}

int cc_process_pidfd(const cc_process *p)
{
    return p && get_state(p) != P_NEW ? p->pidfd : -EINVAL;
}

int cc_process_sentinel(const cc_process *p)
{
    return p && get_state(p) != P_NEW ? p->sentinel : -EINVAL;
}

const char *cc_process_name(const cc_process *p)
{
    return p ? p->name : NULL;
}

bool cc_process_is_daemon(const cc_process *p)
{
    return p && p->daemon;
}

cc_start_method cc_process_start_method(const cc_process *p)
{
    return p ? p->method : CC_START_DEFAULT;
}

void cc_process_free(cc_process *p)
{
    if (!p)
        return;
    if (get_state(p) == P_STARTED && collect(p) == 0) {
        cc_process_kill(p);
        cc_process_join(p, CC_FOREVER);
    }
    live_remove(p);
    if (p->sentinel >= 0 && p->sentinel != p->pidfd)
        close(p->sentinel);
    if (p->pidfd >= 0)
        close(p->pidfd);
    if (p->len > 0)
        free(p->arg);
    free(p->name);
    free(p);
}

size_t cc_process_active_count(void)
{
    /* Reap what has exited first, as Python's active_children does. */
    pthread_mutex_lock(&live_lock);
    size_t n = 0;
    if (live_owner == getpid()) {
        struct cc_process *p = live_head;
        while (p) {
            struct cc_process *next = p->next_live;
            cc_lock_acquire(&p->lock, CC_FOREVER);
            int rc = collect_locked(p);
            cc_lock_release(&p->lock);
            if (rc == 1) {
                if (p->prev_live)
                    p->prev_live->next_live = p->next_live;
                else
                    live_head = p->next_live;
                if (p->next_live)
                    p->next_live->prev_live = p->prev_live;
                p->live = false;
            } else {
                n++;
            }
            p = next;
        }
    }
    pthread_mutex_unlock(&live_lock);
    return n;
}

/*
 * Python's _exit_function: terminate daemon children, join the others
 * (and the terminated ones), then stop the launcher. The list lock is held
 * throughout, so a thread that frees a process meanwhile waits; children
 * of this process only (not those of a parent we were forked from).
 */
static void at_exit(void)
{
    pthread_mutex_lock(&live_lock);
    if (live_owner == getpid()) {
        for (struct cc_process *p = live_head; p; p = p->next_live)
            if (p->daemon)
                cc_process_terminate(p);
        for (struct cc_process *p = live_head; p; p = p->next_live) {
            cc_lock_acquire(&p->lock, CC_FOREVER);
            while (collect_locked(p) == 0)
                cci_poll_fd(p->sentinel, POLLIN, CCI_NO_DEADLINE);
            cc_lock_release(&p->lock);
            p->live = false;
        }
        live_head = NULL;
    }
    pthread_mutex_unlock(&live_lock);
    cci_forkserver_stop();
}
