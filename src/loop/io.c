/* fd readiness (add_reader/add_writer) and POSIX signals (self-pipe). */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "loop/loop_internal.h"

int cci_loop_io_set(cc_loop *loop, struct cci_io *io, uint32_t events)
{
    int rc = cci_poller_set(loop->poller, io->fd, io->registered, events, io);
    if (rc == 0 || events == 0) {
        if (!io->registered != !events) /* counted for the dump */
            cci_loop_count(&loop->fds_watched,
                           loop->fds_watched + (events ? 1 : -1));
        io->registered = events; /* a failed removal still forgets it */
    }
    return rc;
}

/* ---- readers and writers ------------------------------------------------- */

static void fdw_event(cc_loop *loop, struct cci_io *io, uint32_t events)
{
    struct cci_fdw *w = (struct cci_fdw *)io;
    /* An error or hang-up is reported to both sides, as epoll does. */
    if ((events & CCI_POLL_IN) && w->reader.fn)
        cci_loop_ready(loop, &w->reader);
    if ((events & CCI_POLL_OUT) && w->writer.fn)
        cci_loop_ready(loop, &w->writer);
}

/* The watcher of fd, created on first use. Watchers are kept until the loop
 * closes: a queued reader handle may still point into one, and an fd table
 * sized by the highest fd used is what libuv and asyncio's selectors keep
 * too. */
static struct cci_fdw *fdw_get(cc_loop *loop, int fd, bool create)
{
    if (fd < loop->fds_len && loop->fds[fd])
        return loop->fds[fd];
    if (!create)
        return NULL;
    if (fd >= loop->fds_len) {
        int len = loop->fds_len ? loop->fds_len : 64;
        while (len <= fd)
            len *= 2;
        struct cci_fdw **fds = realloc(loop->fds, (size_t)len * sizeof *fds);
        if (!fds)
            return NULL;
        memset(fds + loop->fds_len, 0,
               (size_t)(len - loop->fds_len) * sizeof *fds);
        loop->fds = fds;
        loop->fds_len = len;
    }
    struct cci_fdw *w = calloc(1, sizeof *w);
    if (!w)
        return NULL;
    w->io.on_event = fdw_event;
    w->io.fd = fd;
    cci_handle_init_embedded(&w->reader, loop, NULL, NULL);
    cci_handle_init_embedded(&w->writer, loop, NULL, NULL);
    loop->fds[fd] = w;
    return w;
}

static uint32_t fdw_wanted(const struct cci_fdw *w)
{
    return (w->reader.fn ? CCI_POLL_IN : 0) | (w->writer.fn ? CCI_POLL_OUT : 0);
}

static int add_watch(cc_loop *loop, int fd, cc_loop_fn fn, void *ctx,
                     bool writer)
{
    if (!loop || fd < 0 || !fn)
        return -EINVAL;
    int rc = cci_loop_check_thread(loop);
    if (rc == 0)
        rc = cci_loop_check_open(loop);
    if (rc < 0)
        return rc;
    struct cci_fdw *w = fdw_get(loop, fd, true);
    if (!w)
        return -ENOMEM;
    cc_handle *h = writer ? &w->writer : &w->reader;
    cc_loop_fn old_fn = h->fn;
    h->fn = fn;
    h->ctx = ctx;
    rc = cci_loop_io_set(loop, &w->io, fdw_wanted(w));
    if (rc < 0)
        h->fn = old_fn;
    return rc;
}

static int remove_watch(cc_loop *loop, int fd, bool writer)
{
    if (!loop || fd < 0)
        return -EINVAL;
    int rc = cci_loop_check_thread(loop);
    if (rc < 0)
        return rc;
    struct cci_fdw *w = fdw_get(loop, fd, false);
    cc_handle *h = w ? (writer ? &w->writer : &w->reader) : NULL;
    if (!h || !h->fn)
        return -ENOENT;
    h->fn = NULL;
    if (h->state == CCI_H_READY)
        h->state = CCI_H_CANCELLED;
    /* Removal is immediate (one epoll_ctl) so that the caller may close
     * the fd right after; an error means the fd is gone already. */
    (void)cci_loop_io_set(loop, &w->io, fdw_wanted(w));
    return 0;
}

int cc_loop_add_reader(cc_loop *loop, int fd, cc_loop_fn fn, void *ctx)
{
    return add_watch(loop, fd, fn, ctx, false);
}

int cc_loop_add_writer(cc_loop *loop, int fd, cc_loop_fn fn, void *ctx)
{
    return add_watch(loop, fd, fn, ctx, true);
}

int cc_loop_remove_reader(cc_loop *loop, int fd)
{
    return remove_watch(loop, fd, false);
}

int cc_loop_remove_writer(cc_loop *loop, int fd)
{
    return remove_watch(loop, fd, true);
}

/* ---- signals ----------------------------------------------------------------
 * Dispositions are process-wide, so the table of which pipe a signal goes
 * to is too: one loop per signal. The handler only writes the signal
 * number to that loop's pipe (async-signal-safe); the loop reads the pipe
 * and queues the handlers. The write end is stored +1 so that the zero
 * initialisation means "none". A handler running in another thread while
 * the pipe is being closed may write to a closed descriptor: the same race
 * Python's set_wakeup_fd has, harmless unless the number is reused at once.
 */
static _Atomic int sig_fd[NSIG];
static cc_loop *_Atomic sig_owner[NSIG];

static void on_signal(int signum)
{
    int saved = errno;
    int fd = atomic_load_explicit(&sig_fd[signum], memory_order_relaxed) - 1;
    if (fd >= 0) {
        unsigned char b = (unsigned char)signum;
        ssize_t rc = write(fd, &b, 1);
        (void)rc; /* a full pipe already says "signals arrived" */
    }
    errno = saved;
}

static void sigpipe_event(cc_loop *loop, struct cci_io *io, uint32_t events)
{
    (void)io;
    (void)events;
    unsigned char buf[64];
    ssize_t n;
    while ((n = read(loop->sigpipe[0], buf, sizeof buf)) > 0) {
        for (ssize_t i = 0; i < n; i++) {
            int s = buf[i];
            if (s > 0 && s < NSIG && loop->sig[s] && loop->sig[s]->active)
                cci_loop_ready(loop, &loop->sig[s]->handle);
        }
    }
}

static int open_sigpipe(cc_loop *loop)
{
    if (loop->sigpipe[0] >= 0)
        return 0;
    if (pipe2(loop->sigpipe, O_CLOEXEC | O_NONBLOCK) < 0) {
        loop->sigpipe[0] = loop->sigpipe[1] = -1;
        return -errno;
    }
    loop->sigio.on_event = sigpipe_event;
    loop->sigio.fd = loop->sigpipe[0];
    loop->sigio.registered = 0;
    int rc = cci_loop_io_set(loop, &loop->sigio, CCI_POLL_IN);
    if (rc < 0) {
        close(loop->sigpipe[0]);
        close(loop->sigpipe[1]);
        loop->sigpipe[0] = loop->sigpipe[1] = -1;
    }
    return rc;
}

int cc_loop_add_signal_handler(cc_loop *loop, int signum, cc_loop_fn fn,
                               void *ctx)
{
    if (!loop || !fn || signum <= 0 || signum >= NSIG || signum == SIGKILL ||
        signum == SIGSTOP)
        return -EINVAL;
    int rc = cci_loop_check_thread(loop);
    if (rc == 0)
        rc = cci_loop_check_open(loop);
    if (rc < 0)
        return rc;
    struct cci_sigwatch *w = loop->sig[signum];
    if (w && w->active) {
        w->handle.fn = fn;
        w->handle.ctx = ctx;
        return 0;
    }
    cc_loop *none = NULL;
    if (!atomic_compare_exchange_strong(&sig_owner[signum], &none, loop))
        return -EBUSY;
    /* Records are kept once made (like fd watchers): a removed handler's
     * handle may still be linked in the ready list. */
    if (!w) {
        w = calloc(1, sizeof *w);
        if (!w) {
            rc = -ENOMEM;
            goto fail;
        }
        cci_handle_init_embedded(&w->handle, loop, fn, ctx);
        loop->sig[signum] = w;
    }
    rc = open_sigpipe(loop);
    if (rc < 0)
        goto fail;
    w->handle.fn = fn;
    w->handle.ctx = ctx;
    atomic_store(&sig_fd[signum], loop->sigpipe[1] + 1);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESTART;
    sigfillset(&sa.sa_mask);
    if (sigaction(signum, &sa, &w->old) < 0) {
        rc = -errno;
        atomic_store(&sig_fd[signum], 0);
        goto fail;
    }
    w->active = true;
    return 0;
fail:
    atomic_store(&sig_owner[signum], NULL);
    return rc;
}

int cc_loop_remove_signal_handler(cc_loop *loop, int signum)
{
    if (!loop || signum <= 0 || signum >= NSIG)
        return -EINVAL;
    int rc = cci_loop_check_thread(loop);
    if (rc < 0)
        return rc;
    struct cci_sigwatch *w = loop->sig[signum];
    if (!w || !w->active)
        return -ENOENT;
    sigaction(signum, &w->old, NULL);
    atomic_store(&sig_fd[signum], 0);
    atomic_store(&sig_owner[signum], NULL);
    w->active = false;
    if (w->handle.state == CCI_H_READY)
        w->handle.state = CCI_H_CANCELLED;
    return 0;
}

void cci_loop_drop_signals(cc_loop *loop)
{
    for (int s = 1; s < NSIG; s++) {
        if (!loop->sig[s])
            continue;
        if (loop->sig[s]->active)
            cc_loop_remove_signal_handler(loop, s);
        free(loop->sig[s]);
        loop->sig[s] = NULL;
    }
    if (loop->sigpipe[0] >= 0) {
        cci_loop_io_set(loop, &loop->sigio, 0);
        close(loop->sigpipe[0]);
        close(loop->sigpipe[1]);
        loop->sigpipe[0] = loop->sigpipe[1] = -1;
    }
}

void cci_loop_drop_fds(cc_loop *loop)
{
    for (int fd = 0; fd < loop->fds_len; fd++) {
        struct cci_fdw *w = loop->fds[fd];
        if (w) {
            cci_loop_io_set(loop, &w->io, 0);
            free(w);
        }
    }
    free(loop->fds);
    loop->fds = NULL;
    loop->fds_len = 0;
}
