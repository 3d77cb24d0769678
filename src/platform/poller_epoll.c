/* The epoll implementation of poller.h, woken through an eventfd. */
#include "platform/poller.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

/* The eventfd is registered with this address as data; no caller can pass
 * it, so wake-ups are told from fd events without a lookup. */
static char wake_tag;

#define BATCH 256

struct cci_poller {
    int epfd;
    int wakefd;
    bool have_pwait2;
    struct epoll_event buf[BATCH];
};

int cci_poller_new(cci_poller **out)
{
    cci_poller *p = malloc(sizeof *p);
    if (!p)
        return -ENOMEM;
    p->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (p->epfd < 0) {
        int err = -errno;
        free(p);
        return err;
    }
    p->wakefd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (p->wakefd < 0) {
        int err = -errno;
        close(p->epfd);
        free(p);
        return err;
    }
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &wake_tag};
    if (epoll_ctl(p->epfd, EPOLL_CTL_ADD, p->wakefd, &ev) < 0) {
        int err = -errno;
        close(p->wakefd);
        close(p->epfd);
        free(p);
        return err;
    }
    p->have_pwait2 = true;
    *out = p;
    return 0;
}

void cci_poller_free(cci_poller *p)
{
    if (!p)
        return;
    close(p->wakefd);
    close(p->epfd);
    free(p);
}

static uint32_t to_epoll(uint32_t events)
{
    uint32_t e = 0;
    if (events & CCI_POLL_IN)
        e |= EPOLLIN | EPOLLRDHUP;
    if (events & CCI_POLL_OUT)
        e |= EPOLLOUT;
    if (events & CCI_POLL_EDGE)
        e |= EPOLLET;
    return e;
}

int cci_poller_set(cci_poller *p, int fd, uint32_t old, uint32_t events,
                   void *data)
{
    if (old == events)
        return 0;
    struct epoll_event ev = {.events = to_epoll(events), .data.ptr = data};
    int op = !old ? EPOLL_CTL_ADD : !events ? EPOLL_CTL_DEL : EPOLL_CTL_MOD;
    if (epoll_ctl(p->epfd, op, fd, &ev) == 0)
        return 0;
    /* epoll forgets an fd when its last descriptor closes, and a number
     * reused since then may be registered or not: retry the other way
     * before reporting an error. A DEL of a forgotten fd is a success. */
    if (errno == ENOENT && op == EPOLL_CTL_MOD)
        return epoll_ctl(p->epfd, EPOLL_CTL_ADD, fd, &ev) == 0 ? 0 : -errno;
    if (errno == EEXIST && op == EPOLL_CTL_ADD)
        return epoll_ctl(p->epfd, EPOLL_CTL_MOD, fd, &ev) == 0 ? 0 : -errno;
    if (op == EPOLL_CTL_DEL && (errno == ENOENT || errno == EBADF))
        return 0;
    return -errno;
}

static void drain_wakefd(cci_poller *p)
{
    uint64_t v;
    while (read(p->wakefd, &v, sizeof v) == sizeof v)
        ;
}

int cci_poller_wait(cci_poller *p, cci_poll_event *events, int max,
                    int64_t timeout_ns)
{
    if (max > BATCH)
        max = BATCH;
    /* epoll_pwait2 takes nanoseconds, so timers are not rounded to
     * milliseconds; kernels before 5.11 lack it and get epoll_wait with
     * the timeout rounded up (never waking early). */
    struct timespec ts, *tsp = NULL;
    if (timeout_ns >= 0) {
        ts.tv_sec = timeout_ns / 1000000000;
        ts.tv_nsec = timeout_ns % 1000000000;
        tsp = &ts;
    }
    int n = -1;
    if (p->have_pwait2) {
        n = epoll_pwait2(p->epfd, p->buf, max, tsp, NULL);
        if (n < 0 && errno == ENOSYS)
            p->have_pwait2 = false;
    }
    if (!p->have_pwait2) {
        int ms = -1;
        if (timeout_ns >= 0)
            ms = timeout_ns > (int64_t)3600 * 1000000000
                     ? 3600 * 1000 /* the caller loops and recomputes */
                     : (int)((timeout_ns + 999999) / 1000000);
        n = epoll_wait(p->epfd, p->buf, max, ms);
    }
    if (n < 0)
        return errno == EINTR ? -EINTR : -errno;
    int out = 0;
    for (int i = 0; i < n; i++) {
        if (p->buf[i].data.ptr == &wake_tag) {
            drain_wakefd(p);
            continue;
        }
        uint32_t e = p->buf[i].events, r = 0;
        if (e & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
            r |= CCI_POLL_IN;
        if (e & (EPOLLOUT | EPOLLHUP | EPOLLERR))
            r |= CCI_POLL_OUT;
        if (e & (EPOLLHUP | EPOLLERR))
            r |= CCI_POLL_ERR;
        if (e & (EPOLLRDHUP | EPOLLHUP))
            r |= CCI_POLL_HUP;
        events[out].data = p->buf[i].data.ptr;
        events[out].events = r;
        out++;
    }
    return out;
}

void cci_poller_wake(cci_poller *p)
{
    /* write(2) is async-signal-safe and leaves errno to the caller's
     * handler to restore; EAGAIN (counter saturated) still wakes. */
    uint64_t one = 1;
    ssize_t rc = write(p->wakefd, &one, sizeof one);
    (void)rc;
}
