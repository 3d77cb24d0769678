/*
 * forkserver.c — the launcher: a single-threaded copy of the program,
 * forked once, that forks children on request.
 *
 * Protocol (SOCK_SEQPACKET, so every request and reply is one datagram;
 * requests are serialised by fs.lock, so replies come back in order):
 *   request  struct fs_request, then arg_len bytes inline (or in a memfd),
 *            with descriptors attached in this order:
 *            status pipe write end, [stdin] [stdout] [stderr] (those the
 *            parent has open, flagged), [arg memfd], pass_fds...
 *   reply    struct fs_reply (pid or -errno), with the child's pidfd.
 * The launcher keeps each child's pidfd and status pipe; when a pidfd
 * becomes readable it reaps the child and writes the 4-byte exit code into
 * the pipe, then closes it. The parent's end of that pipe is the child's
 * sentinel. Everything received is validated before use: a bad request is
 * refused with -EPROTO and its descriptors closed.
 *   tracker  struct cci_track_msg (magic "CCTR"), never answered: the
 *            launcher is also the resource tracker of the named shared
 *            memory the program creates (shm_tracker.c), and unlinks what
 *            is still registered when the socket reaches EOF.
 *
 * Lifetime: the launcher never uses PR_SET_PDEATHSIG (that follows the
 * forking *thread*, and the launcher may be started from any thread).
 * Instead it exits when its socket reports end of file, which happens only
 * when every copy of the parent's end is closed: at the parent's death or
 * cci_forkserver_stop. Its children carry PR_SET_PDEATHSIG on the launcher
 * (single-threaded, so the thread rule is harmless there) and die with it.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "platform/process_platform.h"
#include "process/process_internal.h"

#define FS_MAGIC 0x43434653u /* "CCFS" */
#define FS_VERSION 1u
#define FS_INLINE_MAX ((size_t)32 * 1024)

enum {
    FS_HAS_STDIN = 1u,
    FS_HAS_STDOUT = 2u,
    FS_HAS_STDERR = 4u,
    FS_ARG_MEMFD = 8u,
    FS_ARG_POINTER = 16u, /* len == 0: fn gets NULL */
    FS_KNOWN_FLAGS = 31u
};

struct fs_request {
    uint32_t magic;
    uint32_t version;
    uint64_t fn;
    uint64_t arg_len;
    uint32_t flags;
    uint32_t n_pass;
    int32_t targets[CC_PROCESS_MAX_PASS_FDS];
};

struct fs_reply {
    uint32_t magic;
    int32_t result; /* pid > 0, or -errno */
};

/* The parent's view. owner is the pid that started the launcher: in any
 * other process (a child, a user's own fork) the fields are stale. */
static struct {
    pthread_mutex_t lock;
    int sock;
    pid_t pid;
    pid_t owner;
} fs = {PTHREAD_MUTEX_INITIALIZER, -1, 0, 0};

void cci_forkserver_forget(void)
{
    /* No lock: in a child another thread may have held it at the fork. */
    pthread_mutex_t fresh = PTHREAD_MUTEX_INITIALIZER;
    fs.lock = fresh;
    fs.sock = -1;
    fs.pid = 0;
    fs.owner = 0;
}

/* ---- the launcher ------------------------------------------------------------ */

struct kid {
    pid_t pid;
    int pidfd;
    int status_w;
};

static unsigned popcount3(uint32_t f)
{
    return !!(f & FS_HAS_STDIN) + !!(f & FS_HAS_STDOUT) +
           !!(f & FS_HAS_STDERR);
}

static void close_all(const int *fds, size_t n)
{
    for (size_t i = 0; i < n; i++)
        close(fds[i]);
}

/* Checks a request against its descriptors; returns 0 or -EPROTO. */
static int validate(const struct fs_request *r, size_t got, size_t nfds)
{
    if (got < sizeof *r || r->magic != FS_MAGIC || r->version != FS_VERSION ||
        (r->flags & ~FS_KNOWN_FLAGS) || r->n_pass > CC_PROCESS_MAX_PASS_FDS ||
        r->fn == 0 || r->arg_len > CCI_PROCESS_MAX_ARG)
        return -EPROTO;
    size_t want = 1 + popcount3(r->flags) + !!(r->flags & FS_ARG_MEMFD) +
                  r->n_pass;
    if (nfds != want)
        return -EPROTO;
    if (r->flags & FS_ARG_MEMFD) {
        if (got != sizeof *r)
            return -EPROTO;
    } else if (r->arg_len > FS_INLINE_MAX || got != sizeof *r + r->arg_len) {
        return -EPROTO;
    }
    if ((r->flags & FS_ARG_POINTER) && r->arg_len != 0)
        return -EPROTO;
    for (uint32_t i = 0; i < r->n_pass; i++) {
        if (r->targets[i] < 3)
            return -EPROTO;
        for (uint32_t j = 0; j < i; j++)
            if (r->targets[j] == r->targets[i])
                return -EPROTO;
    }
    return 0;
}

/* Reads a memfd argument into memory of its own. */
static int load_arg(int memfd, size_t len, void **out)
{
    struct stat st;
    if (fstat(memfd, &st) < 0)
        return -errno;
    if ((uint64_t)st.st_size < len)
        return -EPROTO;
    void *p = malloc(len);
    if (!p)
        return -ENOMEM;
    size_t done = 0;
    while (done < len) {
        ssize_t n = pread(memfd, (char *)p + done, len - done, (off_t)done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            free(p);
            return n < 0 ? -errno : -EPROTO;
        }
        done += (size_t)n;
    }
    *out = p;
    return 0;
}

static void reply(int sock, int32_t result, int pidfd)
{
    struct fs_reply rep = {FS_MAGIC, result};
    /* A failed reply means the parent is gone: the main loop sees EOF. */
    (void)cci_send_with_fds(sock, &rep, sizeof rep, &pidfd, pidfd >= 0);
}

/* Handles one request; returns 0, or 1 when the socket reached EOF. */
static int serve_one(int sock, char *buf, struct kid **kids, size_t *nkids,
                     size_t *cap, struct cci_shm_tracker *tracker)
{
    int fds[CCI_MAX_FDS];
    size_t nfds;
    ssize_t got = cci_recv_with_fds(sock, buf, sizeof(struct fs_request) +
                                                   FS_INLINE_MAX,
                                    fds, CCI_MAX_FDS, &nfds);
    if (got == 0)
        return 1;
    if (got < 0) {
        if (got == -EMSGSIZE) {
            /* The datagram's head is in buf: only what claims to be a
             * spawn request is answered (see below). */
            uint32_t magic;
            memcpy(&magic, buf, sizeof magic);
            if (magic == FS_MAGIC)
                reply(sock, -EPROTO, -1);
            return 0;
        }
        return got == -EINTR || got == -EAGAIN ? 0 : 1;
    }
    uint32_t magic = 0;
    memcpy(&magic, buf, (size_t)got < sizeof magic ? (size_t)got
                                                   : sizeof magic);
    if (magic != FS_MAGIC) {
        /* Not a spawn request, so never answered, even when malformed:
         * nobody waits for a reply, and a stray one would be taken for
         * the next spawn's. */
        close_all(fds, nfds);
        if (magic == CCI_TRACK_MAGIC)
            cci_shm_tracker_handle(tracker, buf, (size_t)got, nfds);
        return 0;
    }
    struct fs_request r;
    memcpy(&r, buf, (size_t)got < sizeof r ? (size_t)got : sizeof r);
    int rc = validate(&r, (size_t)got, nfds);
    if (rc < 0) {
        close_all(fds, nfds);
        reply(sock, rc, -1);
        return 0;
    }
    if (*nkids == *cap) {
        size_t ncap = *cap ? *cap * 2 : 16;
        struct kid *k = realloc(*kids, ncap * sizeof *k);
        if (!k) {
            close_all(fds, nfds);
            reply(sock, -ENOMEM, -1);
            return 0;
        }
        *kids = k;
        *cap = ncap;
    }
    /* Unpack the descriptors in their documented order. */
    size_t at = 0;
    int status_w = fds[at++];
    int stdio[3] = {-1, -1, -1};
    static const uint32_t has[3] = {FS_HAS_STDIN, FS_HAS_STDOUT,
                                    FS_HAS_STDERR};
    for (int k = 0; k < 3; k++)
        if (r.flags & has[k])
            stdio[k] = fds[at++];
    void *arg = buf + sizeof r;
    void *owned_arg = NULL;
    if (r.flags & FS_ARG_MEMFD) {
        rc = load_arg(fds[at++], r.arg_len, &owned_arg);
        arg = owned_arg;
    }
    if (r.flags & FS_ARG_POINTER)
        arg = NULL;
    int *received = fds + at;
    int targets[CC_PROCESS_MAX_PASS_FDS];
    for (uint32_t i = 0; i < r.n_pass; i++)
        targets[i] = r.targets[i];

    pid_t self = getpid();
    pid_t pid = rc < 0 ? rc : cci_fork();
    if (pid == 0) {
        close(sock);
        struct cci_child_setup s = {
            .parent = self,
            .stdio = {stdio[0], stdio[1], stdio[2]},
            .received = received,
            .targets = targets,
            .n_pass = r.n_pass,
            .reset_signals = true,
            .check_fn_mapped = true,
            .fn = (cc_process_fn)(uintptr_t)r.fn,
            .arg = arg,
            .len = (size_t)r.arg_len,
        };
        cci_child_main(&s);
    }
    free(owned_arg);
    int pidfd = pid > 0 ? cci_pidfd_open(pid) : -1;
    if (pid > 0 && pidfd < 0) {
        /* Cannot watch it: do not let it run unwatched. */
        kill(pid, SIGKILL);
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {
        }
        rc = pidfd;
    } else {
        rc = pid;
    }
    close_all(fds + 1, nfds - 1);
    if (rc < 0) {
        close(status_w);
        reply(sock, rc, -1);
        return 0;
    }
    (*kids)[(*nkids)++] = (struct kid){pid, pidfd, status_w};
    reply(sock, pid, pidfd);
    return 0;
}

static void reap_kid(struct kid *k)
{
    int code = 0;
    if (cci_pidfd_reap(k->pidfd, &code) == 0)
        return; /* spurious readiness: still running */
    int32_t c = code;
    (void)cci_write_all(k->status_w, &c, sizeof c); /* parent may be gone */
    close(k->status_w);
    close(k->pidfd);
    k->pid = 0;
}

/* The program has gone (or stopped us): unlink the shared memory it left
 * registered, then exit; the children die with us (PDEATHSIG). */
static _Noreturn void parent_gone(struct cci_shm_tracker *tracker)
{
    cci_shm_tracker_cleanup(tracker);
    _exit(0);
}

static _Noreturn void launcher_main(int sock)
{
    /* The parent is gone when the socket closes; SIGINT from a terminal
     * and SIGTERM sent to the whole group go to the parent, which decides
     * (Python's resource tracker ignores both too: dying first would leak
     * what the parent leaves registered); a status pipe whose reader has
     * gone must not kill us.
     * SIGINT and SIGTERM are blocked, not ignored: a child inherits the
     * mask and the dispositions, and one terminated before its
     * cci_child_main has reset them would drop an ignored SIGTERM (and
     * live on), while a blocked one stays pending and kills it as soon as
     * the reset unblocks it. */
    cci_reset_signals();
    sigset_t held;
    sigemptyset(&held);
    sigaddset(&held, SIGINT);
    sigaddset(&held, SIGTERM);
    sigprocmask(SIG_BLOCK, &held, NULL);
    signal(SIGPIPE, SIG_IGN);
    struct cci_shm_tracker tracker = {0};
    char *buf = malloc(sizeof(struct fs_request) + FS_INLINE_MAX);
    struct pollfd *pfds = NULL;
    struct kid *kids = NULL;
    size_t nkids = 0, cap = 0, pcap = 0;
    if (!buf)
        _exit(1);
    for (;;) {
        if (pcap < nkids + 1) {
            struct pollfd *np = realloc(pfds, (cap + 1) * sizeof *np);
            if (!np)
                _exit(1); /* children die with us (PDEATHSIG) */
            pfds = np;
            pcap = cap + 1;
        }
        pfds[0] = (struct pollfd){.fd = sock, .events = POLLIN};
        for (size_t i = 0; i < nkids; i++)
            pfds[i + 1] = (struct pollfd){.fd = kids[i].pidfd,
                                          .events = POLLIN};
        int n = poll(pfds, nkids + 1, -1);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            _exit(1);
        }
        size_t live = 0;
        for (size_t i = 0; i < nkids; i++) {
            if (pfds[i + 1].revents)
                reap_kid(&kids[i]);
            if (kids[i].pid)
                kids[live++] = kids[i];
        }
        nkids = live;
        /* POLLIN first: datagrams queued before the hang-up (an
         * unregister sent just before exit) are read before we act on it. */
        if (pfds[0].revents & POLLIN) {
            if (serve_one(sock, buf, &kids, &nkids, &cap, &tracker))
                parent_gone(&tracker);
        } else if (pfds[0].revents & (POLLHUP | POLLERR | POLLNVAL)) {
            parent_gone(&tracker);
        }
    }
}

/* ---- the parent's side -------------------------------------------------------- */

static int start_locked(void)
{
    int sv[2];
    int rc = cci_seqpacket_pair(sv);
    if (rc < 0)
        return rc;
    /* Buffered output would otherwise be written again by every child. */
    fflush(NULL);
    pid_t pid = cci_fork();
    if (pid < 0) {
        close(sv[0]);
        close(sv[1]);
        return pid;
    }
    if (pid == 0) {
        cci_process_forget_parent_state();
        int keep = sv[1];
        if (cci_close_fds_except(&keep, 1) < 0)
            _exit(1);
        launcher_main(keep);
    }
    close(sv[1]);
    fs.sock = sv[0];
    fs.pid = pid;
    fs.owner = getpid();
    return 0;
}

/* Called with fs.lock held: forget a launcher that died or was stopped. */
static void reap_launcher_locked(void)
{
    if (fs.sock >= 0)
        close(fs.sock);
    if (fs.pid > 0)
        while (waitpid(fs.pid, NULL, 0) < 0 && errno == EINTR) {
        }
    fs.sock = -1;
    fs.pid = 0;
    fs.owner = 0;
}

static int ensure_locked(void)
{
    if (fs.owner == getpid() && fs.sock >= 0)
        return 0;
    if (fs.owner != getpid()) {
        /* Inherited state from another process: not ours to close. */
        fs.sock = -1;
        fs.pid = 0;
    }
    return start_locked();
}

int cci_forkserver_ensure(void)
{
    pthread_mutex_lock(&fs.lock);
    int rc = ensure_locked();
    pthread_mutex_unlock(&fs.lock);
    return rc;
}

pid_t cci_forkserver_pid(void)
{
    pthread_mutex_lock(&fs.lock);
    pid_t pid = fs.owner == getpid() ? fs.pid : 0;
    pthread_mutex_unlock(&fs.lock);
    return pid;
}

void cci_forkserver_stop(void)
{
    pthread_mutex_lock(&fs.lock);
    if (fs.owner == getpid())
        reap_launcher_locked();
    pthread_mutex_unlock(&fs.lock);
}

static bool fd_open(int fd)
{
    return fcntl(fd, F_GETFD) >= 0;
}

/* One round trip; returns the launcher's result (pid or -errno), or
 * -EPIPE when the launcher is gone. */
static int request_locked(const void *msg, size_t len, const int *fds,
                          size_t nfds, int *pidfd)
{
    int rc = cci_send_with_fds(fs.sock, msg, len, fds, nfds);
    if (rc < 0)
        return rc == -EPIPE || rc == -ECONNREFUSED ? -EPIPE : rc;
    struct fs_reply rep;
    int got_fds[CCI_MAX_FDS];
    size_t n;
    ssize_t got = cci_recv_with_fds(fs.sock, &rep, sizeof rep, got_fds, 1, &n);
    if (got == 0)
        return -EPIPE;
    if (got < 0)
        return (int)got;
    if ((size_t)got != sizeof rep || rep.magic != FS_MAGIC ||
        (rep.result > 0) != (n == 1)) {
        close_all(got_fds, n);
        return -EPROTO;
    }
    if (rep.result > 0)
        *pidfd = got_fds[0];
    return rep.result;
}

int cci_forkserver_notify(const void *msg, size_t len, const int *fds,
                          size_t nfds, bool start)
{
    int rc = -ESRCH;
    pthread_mutex_lock(&fs.lock);
    for (int attempt = 0; attempt < 2; attempt++) {
        if (!start && (fs.owner != getpid() || fs.sock < 0))
            break;
        rc = ensure_locked();
        if (rc < 0)
            break;
        rc = cci_send_with_fds(fs.sock, msg, len, fds, nfds);
        if (rc != -EPIPE && rc != -ECONNREFUSED)
            break;
        /* The launcher was killed: whatever it held registered is lost
         * (Python's tracker has the same hole); start a new one. */
        reap_launcher_locked();
        rc = -EPIPE;
    }
    pthread_mutex_unlock(&fs.lock);
    return rc;
}

int cci_forkserver_spawn(const struct cci_spawn_request *req,
                         struct cci_spawned *out)
{
    if (req->n_pass > CC_PROCESS_MAX_PASS_FDS)
        return -EINVAL;
    for (size_t i = 0; i < req->n_pass; i++)
        if (!fd_open(req->pass_fds[i]))
            return -EBADF;
    int status[2];
    int rc = cci_pipe(status);
    if (rc < 0)
        return rc;
    bool inline_arg = req->len <= FS_INLINE_MAX;
    size_t msg_len = sizeof(struct fs_request) + (inline_arg ? req->len : 0);
    char *msg = calloc(1, msg_len);
    int memfd = -1;
    if (!msg) {
        rc = -ENOMEM;
        goto out;
    }
    struct fs_request *r = (struct fs_request *)msg;
    r->magic = FS_MAGIC;
    r->version = FS_VERSION;
    r->fn = (uint64_t)(uintptr_t)req->fn;
    r->arg_len = req->len;
    r->n_pass = (uint32_t)req->n_pass;
    if (req->len == 0)
        r->flags |= FS_ARG_POINTER;
    int fds[CCI_MAX_FDS];
    size_t nfds = 0;
    fds[nfds++] = status[1];
    static const uint32_t has[3] = {FS_HAS_STDIN, FS_HAS_STDOUT,
                                    FS_HAS_STDERR};
    for (int k = 0; k < 3; k++)
        if (fd_open(k)) {
            r->flags |= has[k];
            fds[nfds++] = k;
        }
    if (inline_arg) {
        if (req->len)
            memcpy(msg + sizeof *r, req->arg, req->len);
    } else {
        memfd = cci_memfd("concur-arg", 0);
        if (memfd < 0) {
            rc = memfd;
            goto out;
        }
        rc = cci_write_all(memfd, req->arg, req->len);
        if (rc < 0)
            goto out;
        r->flags |= FS_ARG_MEMFD;
        fds[nfds++] = memfd;
    }
    for (size_t i = 0; i < req->n_pass; i++) {
        r->targets[i] = req->pass_fds[i];
        fds[nfds++] = req->pass_fds[i];
    }

    int pidfd = -1;
    pthread_mutex_lock(&fs.lock);
    for (int attempt = 0; attempt < 2; attempt++) {
        rc = ensure_locked();
        if (rc < 0)
            break;
        rc = request_locked(msg, msg_len, fds, nfds, &pidfd);
        if (rc != -EPIPE)
            break;
        /* The launcher died (killed from outside?): its children died
         * with it. Start a new one and try once more. */
        reap_launcher_locked();
    }
    pthread_mutex_unlock(&fs.lock);
    if (rc > 0) {
        out->pid = rc;
        out->pidfd = pidfd;
        out->sentinel = status[0];
        out->via_launcher = true;
        status[0] = -1;
        rc = 0;
    }
out:
    if (memfd >= 0)
        close(memfd);
    free(msg);
    if (status[0] >= 0)
        close(status[0]);
    close(status[1]);
    return rc;
}
