/*
 * pool_worker.c — the loop a process-pool worker runs: wait for a request
 * in its channel, run the named task, post the response. Single-threaded;
 * it never creates a thread (a FORK worker may come from a parent that has
 * many) and leaves with _exit through cci_child_main.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "concur/error.h"
#include "platform/platform.h"
#include "platform/process_platform.h"
#include "process/pool_internal.h"

struct area {
    int fd;
    void *map;
    size_t mapped;
};

struct worker {
    struct cci_chan *chan;
    int event_fd;
    uint32_t last_req;
    struct area in, out;
    uint64_t max_payload;
};

/* Maps at least need bytes of an area whose file is already that big. */
static int area_map(struct area *a, size_t need)
{
    if (a->mapped >= need)
        return 0;
    struct stat st;
    if (fstat(a->fd, &st) < 0)
        return -errno;
    if ((uint64_t)st.st_size < need)
        return -EPROTO;
    if (a->map)
        munmap(a->map, a->mapped);
    a->map = NULL;
    a->mapped = 0;
    void *p = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE,
                   MAP_SHARED, a->fd, 0);
    if (p == MAP_FAILED)
        return -errno;
    a->map = p;
    a->mapped = (size_t)st.st_size;
    return 0;
}

/* Grows the output area to hold need bytes (doubling, so a series of
 * growing results costs few remaps). */
static int area_grow(struct area *a, size_t need)
{
    struct stat st;
    if (fstat(a->fd, &st) < 0)
        return -errno;
    if ((uint64_t)st.st_size < need) {
        size_t size = (size_t)st.st_size * 2;
        if (size < need)
            size = need;
        if (ftruncate(a->fd, (off_t)size) < 0 &&
            ftruncate(a->fd, (off_t)need) < 0)
            return -errno;
    }
    return area_map(a, need);
}

static void post(struct worker *w, size_t len)
{
    struct cci_chan *c = w->chan;
    __atomic_store_n(&c->resp_len, len, __ATOMIC_RELAXED);
    __atomic_fetch_add(&c->resp_seq, 1, __ATOMIC_SEQ_CST);
    if (__atomic_load_n(&c->parent_sleeping, __ATOMIC_SEQ_CST)) {
        uint64_t one = 1;
        (void)!write(w->event_fd, &one, sizeof one);
    }
}

static void respond(struct worker *w, uint64_t id, int status,
                    const char *msg, const void *out, size_t out_len)
{
    struct cci_chan *c = w->chan;
    size_t mlen = msg ? strnlen(msg, CCI_MESSAGE_MAX) : 0;
    if (status >= 0)
        mlen = 0;
    bool ool = status >= 0 && out_len > CC_PROCESS_POOL_INLINE;
    if (ool) {
        int rc = out_len > w->max_payload ? -EMSGSIZE
                                          : area_grow(&w->out, out_len);
        if (rc < 0) {
            status = rc == -EMSGSIZE ? -EMSGSIZE : -ENOMEM;
            msg = rc == -EMSGSIZE ? "task result larger than the pool's "
                                    "max_payload"
                                  : "no memory for the task's result";
            mlen = strlen(msg);
            ool = false;
            out_len = 0;
        } else {
            memcpy(w->out.map, out, out_len);
        }
    }
    long n = cci_result_encode(c->resp, sizeof c->resp, status, id, msg, mlen,
                               ool, status >= 0 ? out : NULL,
                               status >= 0 ? out_len : 0);
    if (n < 0) /* cannot happen: sizes were checked; say so anyway */
        n = cci_result_encode(c->resp, sizeof c->resp, -EPROTO, id, NULL, 0,
                              false, NULL, 0);
    post(w, (size_t)n);
}

/* Waits for the next request: spins briefly (a request arriving within
 * CCI_POOL_SPIN_NS costs no wake-up), then sleeps on req_seq. */
static void wait_request(struct worker *w)
{
    struct cci_chan *c = w->chan;
    for (;;) {
        int64_t spin_until = cci_now_ns() + CCI_POOL_SPIN_NS;
        for (unsigned k = 1;; k++) {
            if (__atomic_load_n(&c->req_seq, __ATOMIC_ACQUIRE) != w->last_req)
                goto arrived;
            cci_cpu_relax();
            if (k % 64 == 0) {
                if (cci_now_ns() >= spin_until)
                    break;
                cci_yield();
            }
        }
        __atomic_store_n(&c->worker_sleeping, 1, __ATOMIC_SEQ_CST);
        if (__atomic_load_n(&c->req_seq, __ATOMIC_SEQ_CST) == w->last_req)
            cci_futex_wait(&c->req_seq, w->last_req, CCI_NO_DEADLINE, true);
        __atomic_store_n(&c->worker_sleeping, 0, __ATOMIC_RELAXED);
    }
arrived:
    w->last_req = __atomic_load_n(&c->req_seq, __ATOMIC_ACQUIRE);
}

/* Serves one request. Returns 1 to go on, 0 to exit normally. */
static int serve(struct worker *w)
{
    struct cci_chan *c = w->chan;
    size_t len = __atomic_load_n(&c->req_len, __ATOMIC_RELAXED);
    struct cci_task_view t;
    if (len > sizeof c->req ||
        cci_task_decode(c->req, len, w->max_payload, &t) < 0) {
        respond(w, 0, -EPROTO, "malformed request", NULL, 0);
        return 1;
    }
    if (t.kind == CCI_TASK_EXIT)
        return 0;
    char name[CCI_TASK_NAME_MAX + 1];
    memcpy(name, t.name, t.name_len);
    name[t.name_len] = 0;
    const cc_task_def *def = cc_task_find(name);
    if (!def) {
        char msg[CCI_TASK_NAME_MAX + 80];
        snprintf(msg, sizeof msg, "task '%s' is not registered in worker %ld",
                 name, (long)getpid());
        respond(w, t.id, CC_ENOT_REGISTERED, msg, NULL, 0);
        return 1;
    }
    const void *in = t.payload;
    if (t.out_of_line) {
        int rc = area_map(&w->in, (size_t)t.payload_len);
        if (rc < 0) {
            respond(w, t.id, -EPROTO, "input area smaller than announced",
                    NULL, 0);
            return 1;
        }
        in = w->in.map;
    }
    void *out;
    size_t out_len;
    char *msg;
    int status = cc_task_run(def, in, (size_t)t.payload_len, &out, &out_len,
                             &msg);
    respond(w, t.id, status, msg, out, out_len);
    free(out);
    free(msg);
    /* The supervisor (or the caller it wakes) may be queued on this CPU:
     * hand it over before spinning for the next request. */
    cci_yield();
    /* After -ENOMEM the heap may be exhausted (a memory limit reached):
     * a fresh worker serves the next task. */
    return status == -ENOMEM ? 0 : 1;
}

int cci_pool_worker_main(void *arg, size_t len)
{
    struct cci_worker_config cfg;
    if (len < sizeof cfg)
        return 2;
    memcpy(&cfg, arg, sizeof cfg);
    if (cfg.magic != CCI_WORKER_MAGIC || cfg.init_name_len > CC_TASK_NAME_MAX ||
        cfg.init_arg_len > len - sizeof cfg - cfg.init_name_len)
        return 2;
    if (cfg.memory_limit && cci_limit_address_space(cfg.memory_limit) < 0)
        return 2;
    struct worker w = {
        .event_fd = cfg.event_fd,
        .in = {cfg.in_fd, NULL, 0},
        .out = {cfg.out_fd, NULL, 0},
        .max_payload = cfg.max_payload,
    };
    struct stat st;
    if (fstat(cfg.chan_fd, &st) < 0 || (size_t)st.st_size < CCI_CHAN_SIZE)
        return 2;
    void *p = mmap(NULL, CCI_CHAN_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED,
                   cfg.chan_fd, 0);
    if (p == MAP_FAILED)
        return 2;
    w.chan = p;
    w.last_req = __atomic_load_n(&w.chan->req_seq, __ATOMIC_ACQUIRE);

    /* The initializer's outcome is the first response. */
    int status = 0;
    char *msg = NULL;
    if (cfg.init_name_len) {
        char name[CC_TASK_NAME_MAX + 1];
        memcpy(name, (char *)arg + sizeof cfg, cfg.init_name_len);
        name[cfg.init_name_len] = 0;
        const cc_task_def *def = cc_task_find(name);
        if (!def) {
            status = CC_ENOT_REGISTERED;
        } else {
            void *out;
            size_t out_len;
            status = cc_task_run(def,
                                 (char *)arg + sizeof cfg + cfg.init_name_len,
                                 (size_t)cfg.init_arg_len, &out, &out_len,
                                 &msg);
            free(out);
        }
    }
    respond(&w, CCI_READY_ID, status, msg, NULL, 0);
    free(msg);
    if (status < 0)
        return 3;
    for (;;) {
        wait_request(&w);
        if (!serve(&w))
            return 0;
    }
}
