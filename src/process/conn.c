/*
 * conn.c — Pipe: whole messages over a Unix stream socket.
 *
 * A stream socket, not a pipe: send(MSG_NOSIGNAL) never raises SIGPIPE,
 * and both directions share one descriptor. Not SOCK_SEQPACKET: a datagram
 * is limited by the socket buffer, a message here is not. Framing is
 * wire.h's 16-byte header, checked before the body is allocated.
 *
 * Receiving is resumable: the partial header and body live in the conn,
 * so a recv that times out loses nothing. Reads use MSG_DONTWAIT after a
 * poll, so the descriptor itself stays blocking for whoever else uses it.
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "concur/error.h"
#include "concur/process.h"
#include "platform/process_platform.h"
#include "process/wire.h"
#include "thread/blocking.h"
#include "time/deadline.h"

struct cc_conn {
    int fd;
    cc_lock send_lock;
    cc_lock recv_lock;
    size_t max;
    /* receive state, under recv_lock */
    uint8_t hdr[CCI_FRAME_HEADER];
    size_t hdr_got;
    uint8_t *body;
    size_t body_len, body_got;
    bool broken; /* framing lost: -EPROTO forever */
};

static int conn_wrap(cc_conn **out, int fd)
{
    cc_conn *c = calloc(1, sizeof *c);
    if (!c)
        return -ENOMEM;
    c->fd = fd;
    c->max = CC_CONN_DEFAULT_MAX;
    cc_lock_init(&c->send_lock, 0);
    cc_lock_init(&c->recv_lock, 0);
    *out = c;
    return 0;
}

int cc_pipe_new(cc_conn **a, cc_conn **b, bool duplex)
{
    if (!a || !b)
        return -EINVAL;
    int sv[2];
    int rc = cci_stream_pair(sv);
    if (rc < 0)
        return rc;
    if (!duplex) {
        shutdown(sv[0], SHUT_WR);
        shutdown(sv[1], SHUT_RD);
    }
    rc = conn_wrap(a, sv[0]);
    if (rc == 0) {
        rc = conn_wrap(b, sv[1]);
        if (rc < 0) {
            cc_conn_free(*a);
            sv[0] = -1;
        }
    }
    if (rc < 0) {
        if (sv[0] >= 0)
            close(sv[0]);
        close(sv[1]);
    }
    return rc;
}

int cc_conn_from_fd(cc_conn **out, int fd)
{
    if (!out || fd < 0)
        return -EINVAL;
    struct stat st;
    if (fstat(fd, &st) < 0)
        return -errno;
    if (!S_ISSOCK(st.st_mode))
        return -ENOTSOCK;
    cci_set_cloexec(fd, true);
    return conn_wrap(out, fd);
}

int cc_conn_fd(const cc_conn *c)
{
    return c ? c->fd : -EINVAL;
}

int cc_conn_set_max_message(cc_conn *c, size_t max)
{
    if (!c || max == 0)
        return -EINVAL;
    cc_lock_acquire(&c->recv_lock, CC_FOREVER);
    c->max = max;
    cc_lock_release(&c->recv_lock);
    return 0;
}

int cc_conn_send(cc_conn *c, const void *data, size_t len)
{
    if (!c || (len > 0 && !data))
        return -EINVAL;
    uint8_t hdr[CCI_FRAME_HEADER];
    cci_frame_encode(hdr, len);
    struct iovec iov[2] = {{hdr, sizeof hdr}, {(void *)data, len}};
    int rc = 0;
    cc_lock_acquire(&c->send_lock, CC_FOREVER);
    cci_block_token tok = cci_block_begin(CC_WAIT_IO, c);
    size_t at = 0; /* bytes of header+body sent */
    size_t total = sizeof hdr + len;
    while (at < total) {
        struct iovec v[2];
        int n = 0;
        if (at < sizeof hdr) {
            v[n++] = (struct iovec){hdr + at, sizeof hdr - at};
            if (len)
                v[n++] = iov[1];
        } else {
            v[n++] = (struct iovec){(char *)data + (at - sizeof hdr),
                                    total - at};
        }
        struct msghdr m = {.msg_iov = v, .msg_iovlen = (size_t)n};
        ssize_t k = sendmsg(c->fd, &m, MSG_NOSIGNAL);
        if (k < 0) {
            if (errno == EINTR)
                continue;
            rc = errno == ECONNRESET ? -EPIPE : -errno;
            break;
        }
        at += (size_t)k;
    }
    cci_block_end(tok);
    cc_lock_release(&c->send_lock);
    return rc;
}

/* Reads what is available into dst (up to want bytes) without blocking.
 * Returns bytes read (> 0), 0 if none yet, -EPIPE at end of file. */
static ssize_t read_some(int fd, void *dst, size_t want)
{
    for (;;) {
        ssize_t n = recv(fd, dst, want, MSG_DONTWAIT);
        if (n > 0)
            return n;
        if (n == 0)
            return -EPIPE;
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            return 0;
        return errno == ECONNRESET ? -EPIPE : -errno;
    }
}

int cc_conn_recv(cc_conn *c, void **data, size_t *len, cc_duration timeout)
{
    if (!c || !data || !len || !cci_duration_valid(timeout))
        return -EINVAL;
    int64_t deadline = cci_deadline_after(timeout);
    if (cc_lock_acquire(&c->recv_lock, timeout) < 0)
        return -ETIMEDOUT;
    int rc = 0;
    bool blocked = false;
    cci_block_token tok = {0};
    for (;;) {
        if (c->broken) {
            rc = -EPROTO;
            break;
        }
        ssize_t n;
        if (c->hdr_got < CCI_FRAME_HEADER) {
            n = read_some(c->fd, c->hdr + c->hdr_got,
                          CCI_FRAME_HEADER - c->hdr_got);
            if (n > 0) {
                c->hdr_got += (size_t)n;
                if (c->hdr_got < CCI_FRAME_HEADER)
                    continue;
                uint64_t blen;
                rc = cci_frame_decode(c->hdr, c->max, &blen);
                if (rc < 0) {
                    c->broken = true;
                    break;
                }
                c->body_len = (size_t)blen;
                c->body_got = 0;
                c->body = blen ? malloc((size_t)blen) : NULL;
                if (blen && !c->body) {
                    /* Keep the header: a later recv may find memory. */
                    c->hdr_got = CCI_FRAME_HEADER;
                    rc = -ENOMEM;
                    break;
                }
            }
        } else if (c->body_len > 0 && !c->body) {
            c->body = malloc(c->body_len);
            if (!c->body) {
                rc = -ENOMEM;
                break;
            }
            continue;
        } else {
            n = c->body_got < c->body_len
                    ? read_some(c->fd, c->body + c->body_got,
                                c->body_len - c->body_got)
                    : 0;
            if (n > 0)
                c->body_got += (size_t)n;
        }
        if (n < 0) {
            rc = (int)n; /* -EPIPE mid-message too: the peer cut it */
            break;
        }
        if (c->hdr_got == CCI_FRAME_HEADER && c->body_got == c->body_len) {
            *data = c->body;
            *len = c->body_len;
            c->body = NULL;
            c->body_len = c->body_got = 0;
            c->hdr_got = 0;
            break;
        }
        if (n > 0)
            continue;
        if (!blocked && deadline != 0) {
            tok = cci_block_begin(CC_WAIT_IO, c);
            blocked = true;
        }
        int p = cci_poll_fd(c->fd, POLLIN, deadline);
        if (p == -ETIMEDOUT) {
            rc = -ETIMEDOUT;
            break;
        }
        if (p < 0) {
            rc = p;
            break;
        }
    }
    if (blocked)
        cci_block_end(tok);
    cc_lock_release(&c->recv_lock);
    return rc;
}

int cc_conn_poll(cc_conn *c, cc_duration timeout)
{
    if (!c || !cci_duration_valid(timeout))
        return -EINVAL;
    int rc = cci_poll_fd(c->fd, POLLIN, cci_deadline_after(timeout));
    if (rc == -ETIMEDOUT)
        return 0;
    return rc < 0 ? rc : 1;
}

void cc_conn_free(cc_conn *c)
{
    if (!c)
        return;
    close(c->fd);
    free(c->body);
    free(c);
}
