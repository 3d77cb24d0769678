/*
 * The echo load generator (echo_load.h): client processes driven over a
 * SOCK_SEQPACKET pair each, one command and one reply at a time.
 *
 *   parent                          child k
 *   OPEN port, n        ------->    connect n sockets, one warm-up echo each
 *                       <-------    rc
 *   GO (or ABORT)       ------->    round trips until the shared count is
 *                                   used up, then close the sockets
 *                       <-------    rc, start, end, idle, requests done
 *
 * A child that dies closes its end, so the parent's receive returns 0 and
 * the run fails with -ECHILD instead of hanging; the parent closing its end
 * (or dying) ends the child.
 */
#include "echo_load.h"

#include "bench.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_CLIENTS 8
#define SPIN_NS 100000      /* poll this long before sleeping */
#define SILENCE_MS 10000    /* a server quiet this long has failed */
#define EVENTS 128

enum { CMD_OPEN, CMD_GO, CMD_ABORT };

typedef struct command {
    int kind;
    uint16_t port;
    int nconn;
} command;

typedef struct reply {
    int rc;
    int64_t start_ns, end_ns, idle_ns;
    uint64_t requests;
} reply;

/* Shared by the parent and every child (MAP_SHARED): the requests left in
 * the current run. */
typedef struct shared {
    _Atomic int64_t left;
} shared;

struct echo_load {
    shared *sh;
    int server_cpu;
    int n;
    pid_t pid[MAX_CLIENTS];
    int sock[MAX_CLIENTS]; /* the parent's end of each child's pair */
};

/* ---- the child ----------------------------------------------------------- */

typedef struct conn {
    int fd;
    uint32_t got;
    unsigned char buf[ECHO_LOAD_MSG];
} conn;

typedef struct client {
    shared *sh;
    int ep;
    conn *conns;
    int nconn;
    unsigned char msg[ECHO_LOAD_MSG];
    uint64_t requests;
    int64_t idle_ns;
} client;

static int send_msg(client *cl, conn *c)
{
    ssize_t r = send(c->fd, cl->msg, sizeof cl->msg, MSG_NOSIGNAL);
    if (r == (ssize_t)sizeof cl->msg)
        return 0;
    return r < 0 ? -errno : -EIO;
}

/* Takes one request from the run's shared count; false when none is left. */
static bool claim(client *cl)
{
    if (atomic_fetch_sub_explicit(&cl->sh->left, 1, memory_order_relaxed) <= 0)
        return false;
    cl->requests++;
    return true;
}

/* Waits for events: polls for SPIN_NS, then sleeps. The waiting time is
 * idle time. Returns the number of events or a negative error. */
static int wait_events(client *cl, struct epoll_event *evs)
{
    int n = epoll_wait(cl->ep, evs, EVENTS, 0);
    if (n != 0)
        return n < 0 ? -errno : n;
    int64_t t0 = bench_now_ns();
    for (;;) {
        n = epoll_wait(cl->ep, evs, EVENTS, 0);
        if (n != 0)
            break;
        if (bench_now_ns() - t0 > SPIN_NS) {
            n = epoll_wait(cl->ep, evs, EVENTS, SILENCE_MS);
            if (n == 0)
                n = -1, errno = ETIMEDOUT;
            break;
        }
    }
    cl->idle_ns += bench_now_ns() - t0;
    return n < 0 ? -errno : n;
}

/*
 * Runs until `active` connections have no message in flight. Each echo
 * that completes is checked, and with more set the connection sends its
 * next message if the shared count has one left.
 */
static int drive(client *cl, int active, bool more)
{
    struct epoll_event evs[EVENTS];
    while (active > 0) {
        int n = wait_events(cl, evs);
        if (n == -EINTR)
            continue;
        if (n < 0)
            return n;
        for (int k = 0; k < n; k++) {
            conn *c = &cl->conns[evs[k].data.u32];
            ssize_t r = recv(c->fd, c->buf + c->got,
                             sizeof c->buf - c->got, 0);
            if (r < 0 && (errno == EAGAIN || errno == EINTR))
                continue;
            if (r < 0)
                return -errno;
            if (r == 0)
                return -EPIPE;
            c->got += (uint32_t)r;
            if (c->got < sizeof c->buf)
                continue;
            c->got = 0;
            if (memcmp(c->buf, cl->msg, sizeof c->buf) != 0)
                return -EIO;
            if (!more || !claim(cl)) {
                active--;
                continue;
            }
            int rc = send_msg(cl, c);
            if (rc < 0)
                return rc;
        }
    }
    return 0;
}

static void close_all(client *cl)
{
    for (int i = 0; i < cl->nconn; i++)
        close(cl->conns[i].fd);
    if (cl->ep >= 0)
        close(cl->ep);
    free(cl->conns);
    cl->conns = NULL;
    cl->nconn = 0;
    cl->ep = -1;
}

/* Connects and warms up: one echo per connection, so the server has
 * accepted every one of them before anything is timed. */
static int open_all(client *cl, uint16_t port, int nconn)
{
    cl->ep = epoll_create1(EPOLL_CLOEXEC);
    if (cl->ep < 0)
        return -errno;
    cl->conns = calloc((size_t)nconn, sizeof *cl->conns);
    if (!cl->conns)
        return -ENOMEM;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    for (; cl->nconn < nconn; cl->nconn++) {
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
            return -errno;
        cl->conns[cl->nconn].fd = fd;
        if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
            int err = -errno;
            close(fd);
            return err;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        /* 64 bytes always fit an empty socket buffer: the sends never
         * meet EAGAIN, the receives do. */
        struct epoll_event ev = {.events = EPOLLIN,
                                 .data.u32 = (uint32_t)cl->nconn};
        int rc = fcntl(fd, F_SETFL, O_NONBLOCK) < 0 ||
                         epoll_ctl(cl->ep, EPOLL_CTL_ADD, fd, &ev) < 0
                     ? -errno
                     : send_msg(cl, &cl->conns[cl->nconn]);
        if (rc < 0) {
            close(fd);
            return rc;
        }
    }
    return drive(cl, nconn, false);
}

static int timed_run(client *cl, reply *rep)
{
    cl->requests = 0;
    cl->idle_ns = 0;
    rep->start_ns = bench_now_ns();
    int active = 0, rc = 0;
    for (int i = 0; rc == 0 && i < cl->nconn && claim(cl); i++, active++)
        rc = send_msg(cl, &cl->conns[i]);
    if (rc == 0)
        rc = drive(cl, active, true);
    rep->end_ns = bench_now_ns();
    rep->idle_ns = cl->idle_ns;
    rep->requests = cl->requests;
    return rc;
}

static void child_main(int sock, shared *sh, int cpu)
{
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (cpu >= 0) {
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(cpu, &set);
        sched_setaffinity(0, sizeof set, &set);
    }
    client cl = {.sh = sh, .ep = -1};
    for (int i = 0; i < ECHO_LOAD_MSG; i++)
        cl.msg[i] = (unsigned char)('!' + i);
    for (;;) {
        command cmd;
        if (recv(sock, &cmd, sizeof cmd, 0) != (ssize_t)sizeof cmd)
            _exit(0); /* the parent is done (or gone) */
        reply rep = {0};
        if (cmd.kind == CMD_OPEN) {
            rep.rc = open_all(&cl, cmd.port, cmd.nconn);
        } else if (cmd.kind == CMD_GO) {
            rep.rc = timed_run(&cl, &rep);
            close_all(&cl);
        } else {
            close_all(&cl);
            continue; /* ABORT has no reply */
        }
        if (rep.rc < 0 && cmd.kind == CMD_OPEN)
            close_all(&cl);
        if (send(sock, &rep, sizeof rep, MSG_NOSIGNAL) != (ssize_t)sizeof rep)
            _exit(1);
    }
}

/* ---- the parent ---------------------------------------------------------- */

int echo_load_start(echo_load **out)
{
    echo_load *l = calloc(1, sizeof *l);
    if (!l)
        return -ENOMEM;
    l->sh = mmap(NULL, sizeof *l->sh, PROT_READ | PROT_WRITE,
                 MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (l->sh == MAP_FAILED) {
        int err = -errno;
        free(l);
        return err;
    }
    int cpus[MAX_CLIENTS + 1], ncpu = 0;
    cpu_set_t allowed;
    if (sched_getaffinity(0, sizeof allowed, &allowed) == 0)
        for (int c = 0; c < CPU_SETSIZE && ncpu < MAX_CLIENTS + 1; c++)
            if (CPU_ISSET(c, &allowed))
                cpus[ncpu++] = c;
    l->server_cpu = ncpu >= 2 ? cpus[0] : -1;
    int clients = ncpu >= 2 ? ncpu - 1 : 1;

    for (int k = 0; k < clients; k++) {
        int sv[2];
        if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
            int err = -errno;
            echo_load_stop(l);
            return err;
        }
        pid_t pid = fork();
        if (pid == 0) {
            /* Only our own end: a sibling's must reach EOF when the
             * parent closes it. */
            for (int j = 0; j < l->n; j++)
                close(l->sock[j]);
            close(sv[0]);
            child_main(sv[1], l->sh, ncpu >= 2 ? cpus[k + 1] : -1);
        }
        close(sv[1]);
        if (pid < 0) {
            int err = -errno;
            close(sv[0]);
            echo_load_stop(l);
            return err;
        }
        l->pid[l->n] = pid;
        l->sock[l->n++] = sv[0];
    }
    *out = l;
    return 0;
}

int echo_load_server_cpu(const echo_load *l)
{
    return l->server_cpu;
}

int echo_load_clients(const echo_load *l)
{
    return l->n;
}

void echo_load_stop(echo_load *l)
{
    if (!l)
        return;
    for (int k = 0; k < l->n; k++)
        close(l->sock[k]);
    for (int k = 0; k < l->n; k++)
        while (waitpid(l->pid[k], NULL, 0) < 0 && errno == EINTR)
            ;
    munmap(l->sh, sizeof *l->sh);
    free(l);
}

static int tell(echo_load *l, int k, int kind, uint16_t port, int nconn)
{
    command cmd = {.kind = kind, .port = port, .nconn = nconn};
    if (send(l->sock[k], &cmd, sizeof cmd, MSG_NOSIGNAL) != (ssize_t)sizeof cmd)
        return -ECHILD;
    return 0;
}

static int hear(echo_load *l, int k, reply *rep)
{
    ssize_t r;
    do
        r = recv(l->sock[k], rep, sizeof *rep, 0);
    while (r < 0 && errno == EINTR);
    return r == (ssize_t)sizeof *rep ? 0 : -ECHILD;
}

int64_t echo_load_run(echo_load *l, uint16_t port, int nconn,
                      uint64_t requests, echo_load_stats *stats)
{
    if (nconn < 1 || requests > INT64_MAX)
        return -EINVAL;
    int busy = nconn < l->n ? nconn : l->n; /* children with connections */
    atomic_store(&l->sh->left, (int64_t)requests);

    int rc = 0, opened = 0;
    for (int k = 0; k < busy; k++) {
        int share = nconn / busy + (k < nconn % busy);
        if ((rc = tell(l, k, CMD_OPEN, port, share)) < 0)
            break;
        opened++;
    }
    for (int k = 0; k < opened; k++) {
        reply rep;
        int err = hear(l, k, &rep);
        if (rc == 0)
            rc = err < 0 ? err : rep.rc;
    }
    if (rc < 0) {
        /* Every child that answered is told to drop its connections. */
        for (int k = 0; k < opened; k++)
            tell(l, k, CMD_ABORT, 0, 0);
        return rc;
    }

    for (int k = 0; k < busy; k++)
        if ((rc = tell(l, k, CMD_GO, 0, 0)) < 0)
            return rc;
    int64_t start = INT64_MAX, end = 0;
    uint64_t done = 0;
    echo_load_stats st = {0};
    for (int k = 0; k < busy; k++) {
        reply rep;
        int err = hear(l, k, &rep);
        if (err == 0)
            err = rep.rc;
        if (err < 0) {
            rc = rc < 0 ? rc : err;
            continue;
        }
        start = rep.start_ns < start ? rep.start_ns : start;
        end = rep.end_ns > end ? rep.end_ns : end;
        done += rep.requests;
        st.wall_ns += rep.end_ns - rep.start_ns;
        st.idle_ns += rep.idle_ns;
    }
    if (rc < 0)
        return rc;
    if (done != requests)
        return -EIO;
    if (stats)
        *stats = st;
    return end - start;
}
