/*
 * The loop suite: concur's event loop and coroutines against what they
 * replace.
 *
 *   coro_switch           a coroutine resume/yield (concur's switch with its
 *                         bookkeeping) against a bare register swap written
 *                         here: the floor of any context switch.
 *   call_soon_threadsafe  calls from another thread through the lock-free
 *                         queue with coalesced wake-ups, against a mutex
 *                         queue that writes an eventfd per call (what
 *                         asyncio does with its self-pipe).
 *   echo_10conn/100conn   a loopback TCP echo server (64-byte messages)
 *                         against Python's asyncio streams server, both
 *                         pinned to one CPU and driven by the same client
 *                         processes on the others (echo_load.h; python3
 *                         needed at build time).
 *   sleeping_coroutines   resident memory per sleeping coroutine (10000
 *                         of them; 1000 under ThreadSanitizer) against
 *                         per sleeping thread (1000).
 */
#include "bench.h"
#include "echo_load.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "concur/error.h"
#include "concur/loop.h"

/* From src/loop/coro.h: concur's coroutine switch, timed inside the
 * library so the coroutine's layout stays private. */
int64_t cci_coro_bench_roundtrips(uint64_t rounds);

/* ThreadSanitizer keeps a full thread state per coroutine (fiber): ten
 * thousand exhaust its allocator (as in tests/test_coro.c), and its
 * figure means nothing anyway. */
#if defined(__SANITIZE_THREAD__)
#define SLEEPERS 1000
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define SLEEPERS 1000
#endif
#endif
#ifndef SLEEPERS
#define SLEEPERS 10000
#endif
#define SLEEPING_THREADS 1000
/* The case's side names say how many ran: "cc task (10000)". */
#define COUNT_STRING(n) #n
#define COUNT_LABEL(what, n) what " (" COUNT_STRING(n) ")"

typedef struct loop_state {
    /* The concur echo server: a loop on a thread of its own. */
    pthread_t server_thread;
    cc_loop *server_loop;
    cc_server *server; /* its thread only */
    uint16_t cc_port;
    _Atomic int server_ready; /* 1 ready, -1 failed */
    /* Python's server, if python3 was found at build time. */
    pid_t py_pid;
    uint16_t py_port;
    /* The clients both servers face, and what they reported per side
     * (concur, python) and connection count (10, 100). */
    echo_load *load;
    echo_load_stats client[2][2];
    /* Each server's CPU clock (its thread; Python's whole process), and
     * the CPU time and requests summed per side and count as above. */
    clockid_t server_clock[2];
    bool has_clock[2];
    int64_t server_cpu_ns[2][2];
    uint64_t requests[2][2];
    double memory[2]; /* bytes per sleeper: concur, threads; 0 = not yet */
} loop_state;

/* ---- coro_switch --------------------------------------------------------- */

static int64_t cc_coro_switch(void *state, uint64_t iters)
{
    (void)state;
    return cci_coro_bench_roundtrips(iters);
}

#if defined(__x86_64__) || defined(__aarch64__)
#define BENCH_BARE_SWAP 1
void bench_bare_swap(void **save, void *to);
static void bare_entry(void);

#if defined(__x86_64__)
/* The least a switch can do on x86-64: push the callee-saved registers,
 * swap stack pointers, pop. No floating-point control words, no
 * bookkeeping. */
__asm__(".text\n"
        ".globl bench_bare_swap\n"
        ".type bench_bare_swap, @function\n"
        "bench_bare_swap:\n"
        "  pushq %rbp\n  pushq %rbx\n  pushq %r12\n"
        "  pushq %r13\n  pushq %r14\n  pushq %r15\n"
        "  movq %rsp, (%rdi)\n"
        "  movq %rsi, %rsp\n"
        "  popq %r15\n  popq %r14\n  popq %r13\n"
        "  popq %r12\n  popq %rbx\n  popq %rbp\n"
        "  ret\n"
        ".size bench_bare_swap, .-bench_bare_swap\n");

/* First frame: six zero registers, then bare_entry as the return address
 * and a zero fake return address above it, so bare_entry starts with the
 * stack aligned as after a call. */
static void *bare_first_frame(uint64_t *top)
{
    top[-1] = 0;
    top[-2] = (uint64_t)(uintptr_t)bare_entry;
    for (int i = 3; i <= 8; i++)
        top[-i] = 0;
    return top - 8;
}
#else
/* The least a switch can do on aarch64: store the callee-saved x19-x30
 * and d8-d15, swap stack pointers, load. No FPCR, no bookkeeping. */
__asm__(".text\n"
        ".globl bench_bare_swap\n"
        ".type bench_bare_swap, %function\n"
        "bench_bare_swap:\n"
        "  sub sp, sp, #160\n"
        "  stp x19, x20, [sp, #0]\n  stp x21, x22, [sp, #16]\n"
        "  stp x23, x24, [sp, #32]\n  stp x25, x26, [sp, #48]\n"
        "  stp x27, x28, [sp, #64]\n  stp x29, x30, [sp, #80]\n"
        "  stp d8, d9, [sp, #96]\n  stp d10, d11, [sp, #112]\n"
        "  stp d12, d13, [sp, #128]\n  stp d14, d15, [sp, #144]\n"
        "  mov x9, sp\n  str x9, [x0]\n  mov sp, x1\n"
        "  ldp d14, d15, [sp, #144]\n  ldp d12, d13, [sp, #128]\n"
        "  ldp d10, d11, [sp, #112]\n  ldp d8, d9, [sp, #96]\n"
        "  ldp x29, x30, [sp, #80]\n  ldp x27, x28, [sp, #64]\n"
        "  ldp x25, x26, [sp, #48]\n  ldp x23, x24, [sp, #32]\n"
        "  ldp x21, x22, [sp, #16]\n  ldp x19, x20, [sp, #0]\n"
        "  add sp, sp, #160\n"
        "  ret\n"
        ".size bench_bare_swap, .-bench_bare_swap\n");

/* First frame: 20 zero registers but x30, which `ret` takes to
 * bare_entry; sp ends at the 16-byte aligned top. */
static void *bare_first_frame(uint64_t *top)
{
    uint64_t *sp = top - 20;
    for (int i = 0; i < 20; i++)
        sp[i] = 0;
    sp[11] = (uint64_t)(uintptr_t)bare_entry;
    return sp;
}
#endif

static void *bare_main_sp, *bare_coro_sp;

static void bare_entry(void)
{
    for (;;)
        bench_bare_swap(&bare_coro_sp, bare_main_sp);
}

static int64_t bare_switch(void *state, uint64_t iters)
{
    (void)state;
    size_t size = 64 * 1024;
    char *stack = mmap(NULL, size, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (stack == MAP_FAILED)
        return -errno;
    bare_coro_sp = bare_first_frame((uint64_t *)(stack + size));
    bench_bare_swap(&bare_main_sp, bare_coro_sp); /* first entry */
    int64_t t0 = bench_now_ns();
    for (uint64_t i = 0; i < iters; i++)
        bench_bare_swap(&bare_main_sp, bare_coro_sp);
    int64_t t = bench_now_ns() - t0;
    /* The coroutine is parked in its loop for good: drop its stack. */
    munmap(stack, size);
    return t;
}
#endif

/* ---- call_soon_threadsafe ------------------------------------------------ */

typedef struct ts_run {
    cc_loop *loop;
    uint64_t n;
    uint64_t count; /* loop thread */
    _Atomic int failed;
} ts_run;

static void ts_count(cc_loop *loop, void *ctx)
{
    ts_run *r = ctx;
    if (++r->count == r->n)
        cc_loop_stop(loop);
}

static void *ts_producer(void *arg)
{
    ts_run *r = arg;
    for (uint64_t i = 0; i < r->n; i++)
        if (cc_loop_call_soon_threadsafe(r->loop, ts_count, r) < 0) {
            atomic_store(&r->failed, 1);
            break;
        }
    return NULL;
}

/* Time from the first call to the last callback having run on the loop. */
static int64_t cc_threadsafe(void *state, uint64_t iters)
{
    (void)state;
    ts_run r = {.n = iters};
    int rc = cc_loop_new(&r.loop, NULL);
    if (rc < 0)
        return rc;
    pthread_t th;
    int64_t t0 = bench_now_ns();
    int err = pthread_create(&th, NULL, ts_producer, &r);
    if (err) {
        cc_loop_free(r.loop);
        return -err;
    }
    rc = cc_loop_run_forever(r.loop);
    int64_t t = bench_now_ns() - t0;
    pthread_join(th, NULL);
    cc_loop_free(r.loop);
    if (rc < 0)
        return rc;
    return atomic_load(&r.failed) ? CC_EFAILED : t;
}

/* The baseline: a mutex-protected list and an eventfd written per call;
 * the consumer sleeps in epoll on the eventfd, as a loop would. */
typedef struct naive_call {
    struct naive_call *next;
    uint64_t *counter;
} naive_call;

typedef struct naive_queue {
    pthread_mutex_t mutex;
    naive_call *head, **tail;
    int efd;
    uint64_t n;
    uint64_t count;
} naive_queue;

static void *naive_producer(void *arg)
{
    naive_queue *q = arg;
    for (uint64_t i = 0; i < q->n; i++) {
        naive_call *c = malloc(sizeof *c);
        if (!c)
            abort();
        c->next = NULL;
        c->counter = &q->count;
        pthread_mutex_lock(&q->mutex);
        *q->tail = c;
        q->tail = &c->next;
        pthread_mutex_unlock(&q->mutex);
        uint64_t one = 1;
        if (write(q->efd, &one, sizeof one) != sizeof one)
            abort();
    }
    return NULL;
}

static int64_t eventfd_per_call(void *state, uint64_t iters)
{
    (void)state;
    naive_queue q = {.mutex = PTHREAD_MUTEX_INITIALIZER, .n = iters};
    q.tail = &q.head;
    q.efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    int ep = epoll_create1(EPOLL_CLOEXEC);
    if (q.efd < 0 || ep < 0)
        return -errno;
    struct epoll_event ev = {.events = EPOLLIN};
    epoll_ctl(ep, EPOLL_CTL_ADD, q.efd, &ev);
    pthread_t th;
    int64_t t0 = bench_now_ns();
    int err = pthread_create(&th, NULL, naive_producer, &q);
    if (err)
        return -err;
    while (q.count < iters) {
        struct epoll_event got;
        if (epoll_wait(ep, &got, 1, -1) < 0 && errno != EINTR)
            break;
        uint64_t v;
        if (read(q.efd, &v, sizeof v) < 0 && errno != EAGAIN)
            break;
        pthread_mutex_lock(&q.mutex);
        naive_call *list = q.head;
        q.head = NULL;
        q.tail = &q.head;
        pthread_mutex_unlock(&q.mutex);
        while (list) {
            naive_call *next = list->next;
            ++*list->counter;
            free(list);
            list = next;
        }
    }
    int64_t t = bench_now_ns() - t0;
    pthread_join(th, NULL);
    close(ep);
    close(q.efd);
    return q.count == iters ? t : CC_EFAILED;
}

/* ---- echo servers -------------------------------------------------------- */

static int echo_handler(cc_stream *s, void *ctx)
{
    (void)ctx;
    char buf[ECHO_LOAD_MSG];
    for (;;) {
        ssize_t n = cc_stream_read(s, buf, sizeof buf, CC_FOREVER);
        if (n <= 0)
            return (int)n;
        if (cc_stream_write(s, buf, (size_t)n) < 0 ||
            cc_stream_drain(s, CC_FOREVER) < 0)
            return -EPIPE;
    }
}

static void server_start(cc_loop *loop, void *ctx)
{
    loop_state *st = ctx;
    cc_server *srv;
    if (cc_start_server(loop, NULL, 0, echo_handler, NULL, &srv) < 0) {
        atomic_store(&st->server_ready, -1);
        cc_loop_stop(loop);
        return;
    }
    st->server = srv;
    st->cc_port = cc_server_port(srv);
    atomic_store(&st->server_ready, 1);
}

/* Pins the calling thread to cpu, when there is one to pin to. */
static void pin_to(int cpu)
{
    if (cpu < 0)
        return;
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    pthread_setaffinity_np(pthread_self(), sizeof set, &set);
}

static void *server_main(void *arg)
{
    loop_state *st = arg;
    pin_to(echo_load_server_cpu(st->load));
    cc_loop_run_forever(st->server_loop);
    return NULL;
}

static void server_stop(cc_loop *loop, void *ctx)
{
    loop_state *st = ctx;
    cc_server_free(st->server);
    st->server = NULL;
    cc_loop_stop(loop);
}

#ifdef CONCUR_BENCH_PYTHON
/* argv[1] is the CPU to pin to, -1 for none; argv[2] the pid of this
 * process, whose death ends the server (PR_SET_PDEATHSIG, then a check
 * that it had not died already), so a benchmark killed halfway leaves no
 * server behind. The pinning comes first, so the thread asyncio starts
 * for getaddrinfo inherits it. */
static const char python_echo[] =
    "import asyncio, ctypes, os, signal, sys\n"
    "ctypes.CDLL(None).prctl(1, signal.SIGTERM)\n"
    "if os.getppid() != int(sys.argv[2]):\n"
    "    sys.exit(0)\n"
    "if int(sys.argv[1]) >= 0:\n"
    "    os.sched_setaffinity(0, {int(sys.argv[1])})\n"
    "async def handle(reader, writer):\n"
    "    while True:\n"
    "        data = await reader.read(64)\n"
    "        if not data:\n"
    "            break\n"
    "        writer.write(data)\n"
    "        await writer.drain()\n"
    "    writer.close()\n"
    "async def main():\n"
    "    srv = await asyncio.start_server(handle, '127.0.0.1', 0)\n"
    "    print(srv.sockets[0].getsockname()[1], flush=True)\n"
    "    async with srv:\n"
    "        await srv.serve_forever()\n"
    "asyncio.run(main())\n";

extern char **environ;

static int python_start(loop_state *st)
{
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0)
        return -errno;
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, fds[1], STDOUT_FILENO);
    char cpu[16], parent[16];
    snprintf(cpu, sizeof cpu, "%d", echo_load_server_cpu(st->load));
    snprintf(parent, sizeof parent, "%d", (int)getpid());
    char *argv[] = {(char *)CONCUR_BENCH_PYTHON, (char *)"-c",
                    (char *)python_echo, cpu, parent, NULL};
    int err = posix_spawnp(&st->py_pid, CONCUR_BENCH_PYTHON, &actions, NULL,
                           argv, environ);
    posix_spawn_file_actions_destroy(&actions);
    close(fds[1]);
    if (err) {
        close(fds[0]);
        return -err;
    }
    char line[32] = {0};
    size_t len = 0;
    while (len < sizeof line - 1) {
        ssize_t r = read(fds[0], line + len, 1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0 || line[len] == '\n')
            break;
        len++;
    }
    close(fds[0]);
    int port = atoi(line);
    if (port <= 0) {
        kill(st->py_pid, SIGKILL);
        waitpid(st->py_pid, NULL, 0);
        st->py_pid = 0;
        return CC_EFAILED;
    }
    st->py_port = (uint16_t)port;
    return 0;
}
#endif

/* Both servers face the same load (echo_load.h): client processes on the
 * CPUs the server does not have. What the clients report is summed per
 * side and connection count, for the note the suite prints at the end. */
static int64_t cpu_clock_ns(const loop_state *st, int side)
{
    struct timespec ts;
    if (!st->has_clock[side] || clock_gettime(st->server_clock[side], &ts))
        return 0;
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int64_t echo_run(loop_state *st, int side, int big, uint16_t port,
                        uint64_t iters)
{
    echo_load_stats stats;
    int64_t cpu0 = cpu_clock_ns(st, side);
    int64_t t = echo_load_run(st->load, port, big ? 100 : 10, iters, &stats);
    if (t >= 0) {
        st->client[side][big].wall_ns += stats.wall_ns;
        st->client[side][big].idle_ns += stats.idle_ns;
        st->server_cpu_ns[side][big] += cpu_clock_ns(st, side) - cpu0;
        st->requests[side][big] += iters;
    }
    return t;
}

static int64_t cc_echo_10(void *state, uint64_t iters)
{
    loop_state *st = state;
    return echo_run(st, 0, 0, st->cc_port, iters);
}

static int64_t cc_echo_100(void *state, uint64_t iters)
{
    loop_state *st = state;
    return echo_run(st, 0, 1, st->cc_port, iters);
}

#ifdef CONCUR_BENCH_PYTHON
static int64_t py_echo_10(void *state, uint64_t iters)
{
    loop_state *st = state;
    return echo_run(st, 1, 0, st->py_port, iters);
}

static int64_t py_echo_100(void *state, uint64_t iters)
{
    loop_state *st = state;
    return echo_run(st, 1, 1, st->py_port, iters);
}
#endif

/* How busy the clients were: far from 100 % means the server, not the
 * load generator, set the pace. And what each server's CPU time came to
 * per request: connection set-up and warm-up included, and for concur
 * the loop's polling before it sleeps (loop.md), so an upper bound. */
static void echo_note(const loop_state *st)
{
    const char *sides[2] = {"concur", "python"};
    const char *sizes[2] = {"10", "100"};
    int cpu = echo_load_server_cpu(st->load);
    fprintf(stderr, "concur bench: echo clients: %d process%s, ",
            echo_load_clients(st->load),
            echo_load_clients(st->load) == 1 ? "" : "es");
    if (cpu >= 0)
        fprintf(stderr, "servers pinned to CPU %d, clients to the others\n",
                cpu);
    else
        fputs("one CPU: nothing pinned\n", stderr);
    for (int big = 0; big < 2; big++)
        for (int side = 0; side < 2; side++) {
            const echo_load_stats *c = &st->client[side][big];
            uint64_t n = st->requests[side][big];
            if (c->wall_ns > 0 && n > 0)
                fprintf(stderr,
                        "concur bench: echo_%sconn, %s server: clients busy "
                        "%.0f%% of their time, server CPU %.2f us/request\n",
                        sizes[big], sides[side],
                        100.0 * (double)(c->wall_ns - c->idle_ns) /
                            (double)c->wall_ns,
                        (double)st->server_cpu_ns[side][big] / 1e3 /
                            (double)n);
        }
}

/* ---- sleeping_coroutines ------------------------------------------------- */

static int sleeper(void *arg, void **result)
{
    (void)arg;
    (void)result;
    return cc_async_sleep(CC_FOREVER);
}

typedef struct sleep_probe {
    int64_t before;
    double per_coroutine;
} sleep_probe;

static int sleep_probe_main(void *arg, void **result)
{
    (void)result;
    sleep_probe *p = arg;
    cc_future **fs = malloc(SLEEPERS * sizeof *fs);
    if (!fs)
        return -ENOMEM;
    int n = 0, rc = 0;
    for (; n < SLEEPERS; n++)
        if ((rc = cc_create_task(sleeper, NULL, &fs[n])) < 0)
            break;
    /* Two turns: every sleeper has started and parked. */
    cc_async_yield();
    cc_async_yield();
    int64_t after = bench_resident_bytes();
    if (rc == 0)
        p->per_coroutine = (double)(after - p->before) / SLEEPERS;
    for (int i = 0; i < n; i++)
        cc_task_cancel(fs[i]);
    cc_async_wait(fs, (size_t)n, CC_ALL_COMPLETED, CC_FOREVER, NULL);
    for (int i = 0; i < n; i++)
        cc_future_unref(fs[i]);
    free(fs);
    return rc;
}

static int measure_coroutines(double *bytes)
{
    /* No stack cache: every sleeper's stack is a fresh mapping, as it is
     * for the first 10k tasks of any program. */
    cc_loop *loop;
    int rc = cc_loop_new(&loop, NULL);
    if (rc < 0)
        return rc;
    sleep_probe p = {.before = bench_memory_start()};
    cc_future *f;
    rc = cc_loop_create_task(loop, sleep_probe_main, &p, &f);
    if (rc == 0) {
        rc = cc_loop_run_until_complete(loop, f);
        cc_future_unref(f);
    }
    cc_loop_free(loop);
    *bytes = p.per_coroutine;
    return rc;
}

typedef struct thread_gate {
    pthread_mutex_t mutex;
    pthread_cond_t cond;
    int parked;
    bool release;
} thread_gate;

static void *sleeping_thread(void *arg)
{
    thread_gate *g = arg;
    pthread_mutex_lock(&g->mutex);
    g->parked++;
    pthread_cond_broadcast(&g->cond);
    while (!g->release)
        pthread_cond_wait(&g->cond, &g->mutex);
    pthread_mutex_unlock(&g->mutex);
    return NULL;
}

static int measure_threads(double *bytes)
{
    thread_gate g = {.mutex = PTHREAD_MUTEX_INITIALIZER,
                     .cond = PTHREAD_COND_INITIALIZER};
    pthread_t *th = malloc(SLEEPING_THREADS * sizeof *th);
    if (!th)
        return -ENOMEM;
    int64_t before = bench_memory_start();
    int n = 0, rc = 0;
    for (; n < SLEEPING_THREADS; n++) {
        int err = pthread_create(&th[n], NULL, sleeping_thread, &g);
        if (err) {
            rc = -err;
            break;
        }
    }
    pthread_mutex_lock(&g.mutex);
    while (g.parked < n)
        pthread_cond_wait(&g.cond, &g.mutex);
    pthread_mutex_unlock(&g.mutex);
    int64_t after = bench_resident_bytes();
    if (rc == 0)
        *bytes = (double)(after - before) / SLEEPING_THREADS;
    pthread_mutex_lock(&g.mutex);
    g.release = true;
    pthread_cond_broadcast(&g.cond);
    pthread_mutex_unlock(&g.mutex);
    for (int i = 0; i < n; i++)
        pthread_join(th[i], NULL);
    free(th);
    return rc;
}

static int64_t memory_figure(loop_state *st, int side, uint64_t iters)
{
    if (st->memory[side] == 0) {
        double bytes = 0;
        int rc =
            side == 0 ? measure_coroutines(&bytes) : measure_threads(&bytes);
        if (rc < 0)
            return rc;
        st->memory[side] = bytes > 0.01 ? bytes : 0.01;
    }
    return (int64_t)(st->memory[side] * (double)iters);
}

static int64_t cc_sleeping_memory(void *state, uint64_t iters)
{
    return memory_figure(state, 0, iters);
}

static int64_t thread_sleeping_memory(void *state, uint64_t iters)
{
    return memory_figure(state, 1, iters);
}

/* ---- set-up -------------------------------------------------------------- */

static void loop_teardown(void *state)
{
    loop_state *st = state;
    if (st->server_loop) {
        cc_loop_call_soon_threadsafe(st->server_loop, server_stop, st);
        pthread_join(st->server_thread, NULL);
        cc_loop_free(st->server_loop);
    }
    if (st->py_pid > 0) {
        kill(st->py_pid, SIGTERM);
        waitpid(st->py_pid, NULL, 0);
    }
    if (st->load) {
        echo_note(st);
        echo_load_stop(st->load);
    }
    free(st);
}

static int loop_setup(void **state, const char **skip_reason)
{
    (void)skip_reason;
    loop_state *st = calloc(1, sizeof *st);
    if (!st)
        return -ENOMEM;
    /* The client processes first, while this process has no thread of its
     * own yet. */
    int rc = echo_load_start(&st->load);
    if (rc < 0) {
        free(st);
        return rc;
    }
    rc = cc_loop_new(&st->server_loop, NULL);
    if (rc < 0) {
        echo_load_stop(st->load);
        free(st);
        return rc;
    }
    cc_loop_call_soon(st->server_loop, server_start, st, NULL);
    int err = pthread_create(&st->server_thread, NULL, server_main, st);
    if (err) {
        cc_loop_free(st->server_loop);
        echo_load_stop(st->load);
        free(st);
        return -err;
    }
    st->has_clock[0] =
        pthread_getcpuclockid(st->server_thread, &st->server_clock[0]) == 0;
    while (atomic_load(&st->server_ready) == 0) {
        struct timespec pause = {0, 100 * 1000};
        nanosleep(&pause, NULL);
    }
    if (atomic_load(&st->server_ready) < 0) {
        loop_teardown(st);
        return CC_EFAILED;
    }
#ifdef CONCUR_BENCH_PYTHON
    rc = python_start(st);
    if (rc < 0) {
        loop_teardown(st);
        return rc;
    }
    st->has_clock[1] = clock_getcpuclockid(st->py_pid, &st->server_clock[1]) == 0;
#else
    fputs("concur bench: echo_10conn and echo_100conn left out: python3 "
          "was not found when building\n",
          stderr);
#endif
    *state = st;
    return 0;
}

/* Budgets from the issue: a coroutine switch within 2x a bare swap,
 * threadsafe calls 5x the eventfd-per-call design, the echo server 5x
 * Python's asyncio. Memory has no budget of its own; at least as lean as
 * threads. */
static const bench_case loop_cases[] = {
#ifdef BENCH_BARE_SWAP
    {"coro_switch",
     "ns/roundtrip",
     1,
     1,
     0.5,
     {"cc coroutine", cc_coro_switch},
     {"bare register swap", bare_switch}},
#endif
    {"call_soon_threadsafe",
     "ns/call",
     1,
     1,
     5.0,
     {"cc_loop_call_soon_ts", cc_threadsafe},
     {"eventfd per call", eventfd_per_call}},
#ifdef CONCUR_BENCH_PYTHON
    {"echo_10conn",
     "us/request",
     1e3,
     10,
     5.0,
     {"cc_start_server", cc_echo_10},
     {"python asyncio", py_echo_10}},
    {"echo_100conn",
     "us/request",
     1e3,
     100,
     5.0,
     {"cc_start_server", cc_echo_100},
     {"python asyncio", py_echo_100}},
#endif
    {"sleeping_coroutines",
     "bytes",
     1,
     1,
     1.0,
     {COUNT_LABEL("cc task", SLEEPERS), cc_sleeping_memory},
     {COUNT_LABEL("pthread", SLEEPING_THREADS), thread_sleeping_memory}},
};

const bench_suite bench_suite_loop = {
    .name = "loop",
    .summary = "coroutine switch, threadsafe calls, TCP echo against Python "
               "asyncio, memory per coroutine",
    .cases = loop_cases,
    .n_cases = sizeof loop_cases / sizeof loop_cases[0],
    .setup = loop_setup,
    .teardown = loop_teardown,
};
