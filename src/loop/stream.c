/*
 * TCP streams and servers on the loop.
 *
 * A stream registers its socket once, edge-triggered for both directions,
 * so a connection costs one epoll_ctl for its whole life instead of two
 * per wait. I/O is always tried first; only EAGAIN makes a task wait, and
 * the next edge (which epoll reports for any new data or room arriving
 * after that attempt) wakes it. Readiness that nobody waits for is simply
 * dropped: the next attempt finds it.
 */
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "concur/error.h"
#include "loop/loop_internal.h"
#include "loop/task_internal.h"
#include "time/deadline.h"

#define HIGH_WATER (64 * 1024)
#define LOW_WATER (16 * 1024)
#define READ_CHUNK (16 * 1024)
#define ACCEPT_BATCH 128

struct cc_stream {
    struct cci_io io;
    cc_loop *loop;
    cc_handle flush; /* sends buffered data when room appears */
    struct cci_task *reader, *writer;
    char *rbuf; /* unread bytes at [rpos, rpos + rlen) */
    size_t rpos, rlen, rcap;
    char *wbuf; /* unsent bytes at [wpos, wpos + wlen) */
    size_t wpos, wlen, wcap;
    int error; /* sticky socket error, 0 if none */
    /* False once a receive came back short or empty-handed: the kernel
     * buffer was drained, so the next read waits for the edge that new
     * data brings instead of paying for a receive that finds nothing.
     * Never false again once the peer hung up: a FIN queued behind the
     * data brings no edge of its own after a short read. */
    bool readable;
    bool hup;
    bool eof;
    bool write_closed;
};

int cc_stream_fd(const cc_stream *s)
{
    return s ? s->io.fd : -1;
}

/* ---- waiting ------------------------------------------------------------- */

static void stream_event(cc_loop *loop, struct cci_io *io, uint32_t events)
{
    cc_stream *s = (cc_stream *)io;
    if (events & CCI_POLL_HUP)
        s->hup = true;
    if (events & CCI_POLL_IN) {
        s->readable = true;
        if (s->reader)
            cci_task_wake(s->reader, 0);
    }
    if (events & CCI_POLL_OUT) {
        if (s->writer)
            cci_task_wake(s->writer, 0);
        else if (s->wlen > 0)
            cci_loop_ready(loop, &s->flush);
    }
}

/* Parks the running task until the socket may be ready in one direction.
 * 0 means "try again" (maybe spuriously). */
static int wait_io(cc_stream *s, bool write, int64_t deadline)
{
    struct cci_task *t = cci_task_running();
    if (!t)
        return -EPERM;
    if (cci_task_cancel_requested(t))
        return -ECANCELED;
    struct cci_task **slot = write ? &s->writer : &s->reader;
    if (*slot)
        return -EBUSY;
    *slot = t;
    cci_task_await(t, CC_WAIT_IO, s, write ? "write" : "read", s->io.fd,
                   deadline);
    int rc = cci_task_suspend(t, deadline, true);
    *slot = NULL;
    if (cci_task_cancel_requested(t))
        return -ECANCELED;
    return rc;
}

/* ---- writing ------------------------------------------------------------- */

/* Sends from buf without waiting; returns bytes sent (maybe 0) or an
 * error, which also becomes the stream's. */
static ssize_t send_some(cc_stream *s, const char *buf, size_t n)
{
    size_t done = 0;
    while (done < n) {
        ssize_t k =
            send(s->io.fd, buf + done, n - done, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (k > 0) {
            done += (size_t)k;
            continue;
        }
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        s->error = k < 0 ? -errno : -EPIPE;
        return s->error;
    }
    return (ssize_t)done;
}

static int flush_some(cc_stream *s)
{
    if (s->wlen == 0)
        return 0;
    ssize_t k = send_some(s, s->wbuf + s->wpos, s->wlen);
    if (k < 0)
        return (int)k;
    s->wpos += (size_t)k;
    s->wlen -= (size_t)k;
    if (s->wlen == 0)
        s->wpos = 0;
    return 0;
}

static void flush_handle(cc_loop *loop, void *ctx)
{
    (void)loop;
    (void)flush_some(ctx); /* an error is kept for the next call */
}

static int wbuf_append(cc_stream *s, const char *data, size_t n)
{
    if (s->wpos > 0 && s->wpos + s->wlen + n > s->wcap) {
        memmove(s->wbuf, s->wbuf + s->wpos, s->wlen);
        s->wpos = 0;
    }
    if (s->wlen + n > s->wcap) {
        size_t cap = s->wcap ? s->wcap : 4096;
        while (cap < s->wlen + n)
            cap *= 2;
        char *b = realloc(s->wbuf, cap);
        if (!b)
            return -ENOMEM;
        s->wbuf = b;
        s->wcap = cap;
    }
    memcpy(s->wbuf + s->wpos + s->wlen, data, n);
    s->wlen += n;
    return 0;
}

int cc_stream_write(cc_stream *s, const void *buf, size_t n)
{
    if (!s || (!buf && n > 0))
        return -EINVAL;
    if (s->write_closed)
        return -EPIPE;
    if (s->error)
        return s->error;
    size_t sent = 0;
    if (s->wlen == 0) {
        ssize_t k = send_some(s, buf, n);
        if (k < 0)
            return (int)k;
        sent = (size_t)k;
    }
    return sent < n ? wbuf_append(s, (const char *)buf + sent, n - sent) : 0;
}

static int drain_until(cc_stream *s, size_t level, int64_t deadline)
{
    for (;;) {
        int rc = flush_some(s);
        if (rc < 0)
            return rc;
        if (s->wlen <= level)
            return 0;
        rc = wait_io(s, true, deadline);
        if (rc < 0)
            return rc;
    }
}

int cc_stream_drain(cc_stream *s, cc_duration timeout)
{
    if (!s || !cci_duration_valid(timeout))
        return -EINVAL;
    if (s->error)
        return s->error;
    /* Like asyncio: nothing to wait for below the high-water mark. */
    if (s->wlen <= HIGH_WATER) {
        int rc = flush_some(s);
        if (rc < 0 || s->wlen <= HIGH_WATER)
            return rc;
    }
    return drain_until(s, LOW_WATER, cci_deadline_after(timeout));
}

int cc_stream_write_eof(cc_stream *s)
{
    if (!s)
        return -EINVAL;
    if (s->write_closed)
        return 0;
    int rc = drain_until(s, 0, CCI_NO_DEADLINE);
    if (rc < 0)
        return rc;
    s->write_closed = true;
    return shutdown(s->io.fd, SHUT_WR) < 0 ? -errno : 0;
}

/* ---- reading ------------------------------------------------------------- */

/* Reads more into the buffer: bytes added, 0 at end of stream, or an
 * error. Waits (in a task) until something arrives. */
static ssize_t fill(cc_stream *s, int64_t deadline)
{
    if (s->eof)
        return 0;
    if (s->rlen == 0)
        s->rpos = 0;
    if (s->rpos + s->rlen + READ_CHUNK > s->rcap) {
        if (s->rpos > 0) {
            memmove(s->rbuf, s->rbuf + s->rpos, s->rlen);
            s->rpos = 0;
        }
        if (s->rlen + READ_CHUNK > s->rcap) {
            size_t cap = s->rcap ? s->rcap * 2 : READ_CHUNK;
            while (cap < s->rlen + READ_CHUNK)
                cap *= 2;
            char *b = realloc(s->rbuf, cap);
            if (!b)
                return -ENOMEM;
            s->rbuf = b;
            s->rcap = cap;
        }
    }
    for (;;) {
        if (!s->readable) {
            int rc = wait_io(s, false, deadline);
            if (rc < 0)
                return rc;
            if (!s->readable)
                continue; /* spurious */
        }
        char *at = s->rbuf + s->rpos + s->rlen;
        size_t room = s->rcap - s->rpos - s->rlen;
        ssize_t k = recv(s->io.fd, at, room, 0);
        if (k > 0) {
            s->rlen += (size_t)k;
            if ((size_t)k < room && !s->hup)
                s->readable = false;
            return k;
        }
        if (k == 0) {
            s->eof = true;
            return 0;
        }
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK)
            return -errno;
        s->readable = false;
    }
}

static void consume(cc_stream *s, void *buf, size_t n)
{
    memcpy(buf, s->rbuf + s->rpos, n);
    s->rpos += n;
    s->rlen -= n;
}

ssize_t cc_stream_read(cc_stream *s, void *buf, size_t n, cc_duration timeout)
{
    if (!s || !buf || !cci_duration_valid(timeout))
        return -EINVAL;
    if (n == 0)
        return 0;
    if (s->rlen > 0) {
        size_t k = n < s->rlen ? n : s->rlen;
        consume(s, buf, k);
        return (ssize_t)k;
    }
    if (s->eof)
        return 0;
    /* Nothing buffered: read straight into the caller's memory. */
    int64_t deadline = cci_deadline_after(timeout);
    for (;;) {
        if (!s->readable) {
            int rc = wait_io(s, false, deadline);
            if (rc < 0)
                return rc;
            if (!s->readable)
                continue; /* spurious */
        }
        ssize_t k = recv(s->io.fd, buf, n, 0);
        if (k > 0) {
            if ((size_t)k < n && !s->hup)
                s->readable = false;
            return k;
        }
        if (k == 0) {
            s->eof = true;
            return 0;
        }
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK)
            return -errno;
        s->readable = false;
    }
}

int cc_stream_readexactly(cc_stream *s, void *buf, size_t n,
                          cc_duration timeout)
{
    if (!s || (!buf && n > 0) || !cci_duration_valid(timeout))
        return -EINVAL;
    int64_t deadline = cci_deadline_after(timeout);
    while (s->rlen < n) {
        ssize_t k = fill(s, deadline);
        if (k < 0)
            return (int)k;
        if (k == 0) {
            s->rpos = s->rlen = 0; /* IncompleteReadError drops it */
            return -EPIPE;
        }
    }
    consume(s, buf, n);
    return 0;
}

ssize_t cc_stream_readline(cc_stream *s, char *buf, size_t cap,
                           cc_duration timeout)
{
    if (!s || !buf || cap == 0 || !cci_duration_valid(timeout))
        return -EINVAL;
    int64_t deadline = cci_deadline_after(timeout);
    size_t scanned = 0;
    for (;;) {
        char *start = s->rbuf + s->rpos;
        char *nl = s->rlen > scanned
                       ? memchr(start + scanned, '\n', s->rlen - scanned)
                       : NULL;
        if (nl) {
            size_t len = (size_t)(nl - start) + 1;
            if (len > cap)
                return -EMSGSIZE;
            consume(s, buf, len);
            return (ssize_t)len;
        }
        scanned = s->rlen;
        if (s->rlen >= cap)
            return -EMSGSIZE;
        if (s->eof) {
            size_t len = s->rlen;
            consume(s, buf, len);
            return (ssize_t)len;
        }
        ssize_t k = fill(s, deadline);
        if (k < 0)
            return k;
    }
}

/* ---- life time ----------------------------------------------------------- */

static void set_nodelay(int fd)
{
    int one = 1;
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

/* Wraps a connected (or connecting) non-blocking socket. On failure the
 * fd is still the caller's. */
static int stream_new(cc_loop *loop, int fd, cc_stream **out)
{
    cc_stream *s = calloc(1, sizeof *s);
    if (!s)
        return -ENOMEM;
    s->loop = loop;
    s->readable = true;
    s->io.on_event = stream_event;
    s->io.fd = fd;
    cci_handle_init_embedded(&s->flush, loop, flush_handle, s);
    int rc = cci_loop_io_set(loop, &s->io,
                             CCI_POLL_IN | CCI_POLL_OUT | CCI_POLL_EDGE);
    if (rc < 0) {
        free(s);
        return rc;
    }
    set_nodelay(fd);
    *out = s;
    return 0;
}

static void stream_free(cc_loop *loop, void *obj)
{
    (void)loop;
    free(obj);
}

int cc_stream_close(cc_stream *s)
{
    if (!s)
        return 0;
    if (!s->error)
        (void)flush_some(s);
    cci_loop_io_set(s->loop, &s->io, 0);
    close(s->io.fd);
    free(s->rbuf);
    free(s->wbuf);
    s->rbuf = s->wbuf = NULL;
    cci_loop_free_after(s->loop, &s->flush, s, stream_free);
    return 0;
}

/* ---- connecting ---------------------------------------------------------- */

struct resolve {
    char *host;
    char port[8];
    struct sockaddr_storage addr;
    socklen_t len;
    int error;
};

static void resolve_free(struct resolve *r)
{
    free(r->host);
    free(r);
}

/* Runs in the executor: getaddrinfo blocks. */
static int resolve_task(void *arg, void **result)
{
    (void)result;
    struct resolve *r = arg;
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM};
    struct addrinfo *ai = NULL;
    if (getaddrinfo(r->host, r->port, &hints, &ai) != 0 || !ai) {
        r->error = -EHOSTUNREACH;
        return r->error;
    }
    memcpy(&r->addr, ai->ai_addr, ai->ai_addrlen);
    r->len = ai->ai_addrlen;
    freeaddrinfo(ai);
    return 0;
}

static int free_resolve_when_done(cc_future *f, void *ctx)
{
    (void)f;
    resolve_free(ctx);
    return 0;
}

/* Fills addr for a numeric host (or "localhost") without any wait. */
static bool numeric_address(const char *host, uint16_t port,
                            struct sockaddr_storage *addr, socklen_t *len)
{
    memset(addr, 0, sizeof *addr);
    struct sockaddr_in *v4 = (struct sockaddr_in *)addr;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)addr;
    if (strcmp(host, "localhost") == 0)
        host = "127.0.0.1";
    if (inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons(port);
        *len = sizeof *v4;
        return true;
    }
    if (inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons(port);
        *len = sizeof *v6;
        return true;
    }
    return false;
}

static int resolve_host(cc_loop *loop, const char *host, uint16_t port,
                        int64_t deadline, struct sockaddr_storage *addr,
                        socklen_t *len)
{
    if (numeric_address(host, port, addr, len))
        return 0;
    struct resolve *r = calloc(1, sizeof *r);
    if (!r || !(r->host = strdup(host))) {
        free(r);
        return -ENOMEM;
    }
    snprintf(r->port, sizeof r->port, "%u", (unsigned)port);
    cc_future *f;
    int rc = cc_loop_run_in_executor(loop, NULL, resolve_task, r, &f);
    if (rc < 0) {
        resolve_free(r);
        return rc;
    }
    /* Not cc_wait_for: cancelling would not stop a lookup already running
     * in a worker, which still writes into r. Leave it to finish. */
    rc = cc_async_wait(&f, 1, CC_ALL_COMPLETED, cci_duration_until(deadline),
                       NULL);
    if (rc == 1)
        rc = cc_future_error(f, CC_NOWAIT);
    else if (rc == 0)
        rc = -ETIMEDOUT;
    if (rc == 0) {
        memcpy(addr, &r->addr, r->len);
        *len = r->len;
    }
    /* The lookup may still run: free r once its future completes (which
     * the loop's future does only after the worker is done with r). */
    if (cc_future_add_done_callback(f, free_resolve_when_done, r) < 0 &&
        cc_future_done(f))
        resolve_free(r);
    cc_future_unref(f);
    return rc;
}

int cc_open_connection(const char *host, uint16_t port, cc_duration timeout,
                       cc_stream **out)
{
    if (!host || !out || !cci_duration_valid(timeout))
        return -EINVAL;
    cc_loop *loop = cci_loop_running();
    struct cci_task *t = cci_task_running();
    if (!loop || !t)
        return -EPERM;
    if (cci_task_cancel_requested(t))
        return -ECANCELED;
    int64_t deadline = cci_deadline_after(timeout);
    struct sockaddr_storage addr;
    socklen_t len;
    int rc = resolve_host(loop, host, port, deadline, &addr, &len);
    if (rc < 0)
        return rc;
    int fd =
        socket(addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    bool pending = false;
    if (connect(fd, (struct sockaddr *)&addr, len) < 0) {
        if (errno != EINPROGRESS) {
            rc = -errno;
            close(fd);
            return rc;
        }
        pending = true;
    }
    cc_stream *s;
    rc = stream_new(loop, fd, &s);
    if (rc < 0) {
        close(fd);
        return rc;
    }
    while (pending) {
        rc = wait_io(s, true, deadline);
        if (rc < 0)
            break;
        int err = 0;
        socklen_t elen = sizeof err;
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) < 0)
            err = errno;
        if (err) {
            rc = -err;
            break;
        }
        struct sockaddr_storage peer;
        socklen_t plen = sizeof peer;
        if (getpeername(fd, (struct sockaddr *)&peer, &plen) == 0)
            pending = false; /* connected; else a spurious wake-up */
    }
    if (rc < 0) {
        cc_stream_close(s);
        return rc;
    }
    *out = s;
    return 0;
}

/* ---- serving ------------------------------------------------------------- */

struct cc_server {
    struct cci_io io; /* the listening socket, level-triggered */
    cc_handle accept;
    cc_loop *loop;
    cc_stream_handler handler;
    void *ctx;
    uint16_t port;
    bool closed;
};

struct connection {
    cc_stream *stream;
    cc_stream_handler handler;
    void *ctx;
    bool started;
};

static int connection_main(void *arg, void **result)
{
    (void)result;
    struct connection *c = arg;
    c->started = true;
    int rc = c->handler(c->stream, c->ctx);
    cc_stream_close(c->stream);
    c->stream = NULL;
    return rc;
}

/* Runs when the connection's task is done: frees what a task cancelled
 * before it started (a closing loop) never got to. */
static int connection_done(cc_future *f, void *ctx)
{
    (void)f;
    struct connection *c = ctx;
    if (c->stream)
        cc_stream_close(c->stream);
    free(c);
    return 0;
}

static void start_connection(cc_server *srv, int fd)
{
    struct connection *c = calloc(1, sizeof *c);
    if (!c || stream_new(srv->loop, fd, &c->stream) < 0) {
        free(c);
        close(fd);
        return;
    }
    c->handler = srv->handler;
    c->ctx = srv->ctx;
    cc_future *f;
    if (cc_loop_create_task(srv->loop, connection_main, c, &f) < 0) {
        cc_stream_close(c->stream);
        free(c);
        return;
    }
    if (cc_future_add_done_callback(f, connection_done, c) < 0)
        cc_task_cancel(f); /* cannot clean up after it: do not run it */
    cc_future_unref(f);
}

static void accept_some(cc_loop *loop, void *ctx)
{
    (void)loop;
    cc_server *srv = ctx;
    /* A batch per iteration, so a flood of connections cannot starve the
     * loop; level triggering brings us back for the rest. */
    for (int i = 0; i < ACCEPT_BATCH && !srv->closed; i++) {
        int fd = accept4(srv->io.fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            break; /* EAGAIN; or EMFILE and the like: retried next time */
        }
        start_connection(srv, fd);
    }
}

static void server_event(cc_loop *loop, struct cci_io *io, uint32_t events)
{
    (void)events;
    cc_server *srv = (cc_server *)io;
    cci_loop_ready(loop, &srv->accept);
}

int cc_start_server(cc_loop *loop, const char *host, uint16_t port,
                    cc_stream_handler handler, void *ctx, cc_server **out)
{
    if (!handler || !out)
        return -EINVAL;
    if (!loop)
        loop = cci_loop_running();
    if (!loop)
        return -EPERM;
    int rc = cci_loop_check_thread(loop);
    if (rc == 0)
        rc = cci_loop_check_open(loop);
    if (rc < 0)
        return rc;
    struct sockaddr_storage addr;
    socklen_t len;
    if (!numeric_address(host ? host : "127.0.0.1", port, &addr, &len))
        return -EINVAL;
    int fd =
        socket(addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    int one = 1;
    (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd, (struct sockaddr *)&addr, len) < 0 ||
        listen(fd, SOMAXCONN) < 0 ||
        getsockname(fd, (struct sockaddr *)&addr, &len) < 0) {
        rc = -errno;
        close(fd);
        return rc;
    }
    cc_server *srv = calloc(1, sizeof *srv);
    if (!srv) {
        close(fd);
        return -ENOMEM;
    }
    srv->io.on_event = server_event;
    srv->io.fd = fd;
    srv->loop = loop;
    srv->handler = handler;
    srv->ctx = ctx;
    srv->port = ntohs(addr.ss_family == AF_INET
                          ? ((struct sockaddr_in *)&addr)->sin_port
                          : ((struct sockaddr_in6 *)&addr)->sin6_port);
    cci_handle_init_embedded(&srv->accept, loop, accept_some, srv);
    rc = cci_loop_io_set(loop, &srv->io, CCI_POLL_IN);
    if (rc < 0) {
        close(fd);
        free(srv);
        return rc;
    }
    *out = srv;
    return 0;
}

uint16_t cc_server_port(const cc_server *srv)
{
    return srv ? srv->port : 0;
}

int cc_server_close(cc_server *srv)
{
    if (!srv)
        return -EINVAL;
    if (srv->closed)
        return 0;
    srv->closed = true;
    cci_loop_io_set(srv->loop, &srv->io, 0);
    close(srv->io.fd);
    if (srv->accept.state == CCI_H_READY)
        srv->accept.state = CCI_H_CANCELLED;
    return 0;
}

static void server_free(cc_loop *loop, void *obj)
{
    (void)loop;
    free(obj);
}

void cc_server_free(cc_server *srv)
{
    if (!srv)
        return;
    cc_server_close(srv);
    cci_loop_free_after(srv->loop, &srv->accept, srv, server_free);
}
