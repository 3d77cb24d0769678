/*
 * pqueue.c — a bounded queue of byte items between processes.
 *
 * One shared segment: a header with a process-shared lock and three
 * conditions bound to it (all in the same mapping, as cc_condition
 * requires for PSHARED), then a byte ring. An item is a record: its length
 * (u64) then its bytes, padded to 8; a record may wrap around the end of
 * the ring. Every field of the header below `lock` is read and written only
 * with the lock held. Shared state written by another process is checked
 * (head, used, count, each record's length) before it is used: corruption
 * gives -EPROTO, never an out-of-bounds access.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "concur/error.h"
#include "concur/process.h"
#include "platform/process_platform.h"
#include "thread/blocking.h"
#include "time/deadline.h"

#define PQ_MAGIC 0x51504343u /* "CCPQ" */
#define PQ_VERSION 1u
#define PQ_DEFAULT_CAPACITY ((size_t)1 << 20)
#define PQ_MAX_CAPACITY ((size_t)1 << 30)

struct pq_header {
    uint32_t magic;
    uint32_t version;
    uint64_t capacity; /* ring bytes, a multiple of 8 */
    uint64_t maxsize;  /* items; 0: no limit but capacity */
    cc_lock lock;
    cc_condition not_empty;
    cc_condition not_full;
    cc_condition all_done;
    uint64_t head; /* offset of the oldest record */
    uint64_t used; /* bytes of records */
    uint64_t count;
    uint64_t unfinished;
};

struct cc_process_queue {
    cc_shm *shm;
    struct pq_header *h;
    uint8_t *ring;
    uint64_t capacity; /* our checked copy */
    uint64_t maxsize;
};

static uint64_t record_size(uint64_t len)
{
    return 8 + ((len + 7) & ~(uint64_t)7);
}

static void ring_write(cc_process_queue *q, uint64_t at, const void *src,
                       uint64_t n)
{
    uint64_t first = q->capacity - at < n ? q->capacity - at : n;
    memcpy(q->ring + at, src, (size_t)first);
    if (n > first)
        memcpy(q->ring, (const uint8_t *)src + first, (size_t)(n - first));
}

static void ring_read(const cc_process_queue *q, uint64_t at, void *dst,
                      uint64_t n)
{
    uint64_t first = q->capacity - at < n ? q->capacity - at : n;
    memcpy(dst, q->ring + at, (size_t)first);
    if (n > first)
        memcpy((uint8_t *)dst + first, q->ring, (size_t)(n - first));
}

static int wrap(cc_process_queue **out, cc_shm *shm)
{
    cc_process_queue *q = malloc(sizeof *q);
    if (!q)
        return -ENOMEM;
    q->shm = shm;
    q->h = cc_shm_data(shm);
    q->ring = (uint8_t *)q->h + sizeof(struct pq_header);
    q->capacity = __atomic_load_n(&q->h->capacity, __ATOMIC_RELAXED);
    q->maxsize = __atomic_load_n(&q->h->maxsize, __ATOMIC_RELAXED);
    *out = q;
    return 0;
}

int cc_process_queue_new(cc_process_queue **out, size_t maxsize,
                         size_t capacity)
{
    if (!out)
        return -EINVAL;
    if (capacity == 0)
        capacity = PQ_DEFAULT_CAPACITY;
    if (capacity < 64 || capacity > PQ_MAX_CAPACITY)
        return -EINVAL;
    capacity = (capacity + 7) & ~(size_t)7;
    cc_shm *shm;
    int rc = cc_shm_new(&shm, sizeof(struct pq_header) + capacity);
    if (rc < 0)
        return rc;
    struct pq_header *h = cc_shm_data(shm);
    h->magic = PQ_MAGIC;
    h->version = PQ_VERSION;
    h->capacity = capacity;
    h->maxsize = maxsize;
    cc_lock_init(&h->lock, CC_SYNC_PSHARED);
    cc_condition_init(&h->not_empty, &h->lock, CC_SYNC_PSHARED);
    cc_condition_init(&h->not_full, &h->lock, CC_SYNC_PSHARED);
    cc_condition_init(&h->all_done, &h->lock, CC_SYNC_PSHARED);
    rc = wrap(out, shm);
    if (rc < 0)
        cc_shm_free(shm);
    return rc;
}

int cc_process_queue_from_fd(cc_process_queue **out, int fd)
{
    if (!out || fd < 0)
        return -EINVAL;
    cc_shm *shm;
    int rc = cc_shm_from_fd(&shm, fd);
    if (rc < 0)
        return rc;
    const struct pq_header *h = cc_shm_data(shm);
    size_t size = cc_shm_size(shm);
    bool ok = size >= sizeof *h &&
              __atomic_load_n(&h->magic, __ATOMIC_RELAXED) == PQ_MAGIC &&
              __atomic_load_n(&h->version, __ATOMIC_RELAXED) == PQ_VERSION;
    uint64_t cap = ok ? __atomic_load_n(&h->capacity, __ATOMIC_RELAXED) : 0;
    if (!ok || cap < 64 || cap % 8 || cap != size - sizeof *h) {
        munmap(cc_shm_data(shm), size);
        free(shm); /* fd stays the caller's on failure */
        return -EPROTO;
    }
    rc = wrap(out, shm);
    if (rc < 0) {
        munmap(cc_shm_data(shm), size);
        free(shm);
    }
    return rc;
}

int cc_process_queue_fd(const cc_process_queue *q)
{
    return q ? cc_shm_fd(q->shm) : -EINVAL;
}

/* Shared state sane? Called with the lock held. */
static bool state_ok(const cc_process_queue *q)
{
    const struct pq_header *h = q->h;
    return h->head < q->capacity && h->head % 8 == 0 &&
           h->used <= q->capacity && h->used % 8 == 0 &&
           h->count <= h->used / 8;
}

int cc_process_queue_put(cc_process_queue *q, const void *data, size_t len,
                         cc_duration timeout)
{
    if (!q || (len > 0 && !data) || !cci_duration_valid(timeout))
        return -EINVAL;
    if (len > q->capacity || record_size(len) > q->capacity)
        return -EMSGSIZE;
    uint64_t need = record_size(len);
    int64_t deadline = cci_deadline_after(timeout);
    struct pq_header *h = q->h;
    if (cc_lock_acquire(&h->lock, timeout) < 0)
        return CC_EFULL;
    int rc = 0;
    for (;;) {
        if (!state_ok(q)) {
            rc = -EPROTO;
            break;
        }
        bool full = (q->maxsize && h->count >= q->maxsize) ||
                    h->used + need > q->capacity;
        if (!full)
            break;
        if (cc_condition_wait(&h->not_full, cci_duration_until(deadline)) ==
            -ETIMEDOUT) {
            rc = CC_EFULL;
            break;
        }
    }
    if (rc == 0) {
        uint64_t tail = (h->head + h->used) % q->capacity;
        uint64_t len64 = len;
        ring_write(q, tail, &len64, 8);
        if (len)
            ring_write(q, (tail + 8) % q->capacity, data, len);
        h->used += need;
        h->count++;
        h->unfinished++;
        cc_condition_notify(&h->not_empty, 1);
    }
    cc_lock_release(&h->lock);
    return rc;
}

int cc_process_queue_get(cc_process_queue *q, void **data, size_t *len,
                         cc_duration timeout)
{
    if (!q || !data || !len || !cci_duration_valid(timeout))
        return -EINVAL;
    int64_t deadline = cci_deadline_after(timeout);
    struct pq_header *h = q->h;
    if (cc_lock_acquire(&h->lock, timeout) < 0)
        return CC_EEMPTY;
    int rc = 0;
    for (;;) {
        if (!state_ok(q)) {
            rc = -EPROTO;
            break;
        }
        if (h->count > 0)
            break;
        if (cc_condition_wait(&h->not_empty, cci_duration_until(deadline)) ==
            -ETIMEDOUT) {
            rc = CC_EEMPTY;
            break;
        }
    }
    if (rc == 0) {
        uint64_t n;
        ring_read(q, h->head, &n, 8);
        if (n > q->capacity || record_size(n) > h->used) {
            rc = -EPROTO;
        } else {
            void *buf = n ? malloc((size_t)n) : NULL;
            if (n && !buf) {
                rc = -ENOMEM;
            } else {
                if (n)
                    ring_read(q, (h->head + 8) % q->capacity, buf, n);
                h->head = (h->head + record_size(n)) % q->capacity;
                h->used -= record_size(n);
                h->count--;
                *data = buf;
                *len = (size_t)n;
                /* Items differ in size: every putter re-checks. */
                cc_condition_notify_all(&h->not_full);
            }
        }
    }
    cc_lock_release(&h->lock);
    return rc;
}

int cc_process_queue_task_done(cc_process_queue *q)
{
    if (!q)
        return -EINVAL;
    struct pq_header *h = q->h;
    cc_lock_acquire(&h->lock, CC_FOREVER);
    int rc = 0;
    if (h->unfinished == 0) {
        rc = -EINVAL;
    } else if (--h->unfinished == 0) {
        cc_condition_notify_all(&h->all_done);
    }
    cc_lock_release(&h->lock);
    return rc;
}

int cc_process_queue_join(cc_process_queue *q, cc_duration timeout)
{
    if (!q || !cci_duration_valid(timeout))
        return -EINVAL;
    int64_t deadline = cci_deadline_after(timeout);
    struct pq_header *h = q->h;
    if (cc_lock_acquire(&h->lock, timeout) < 0)
        return -ETIMEDOUT;
    int rc = 0;
    while (h->unfinished > 0) {
        if (cc_condition_wait(&h->all_done, cci_duration_until(deadline)) ==
            -ETIMEDOUT) {
            rc = h->unfinished > 0 ? -ETIMEDOUT : 0;
            break;
        }
    }
    cc_lock_release(&h->lock);
    return rc;
}

size_t cc_process_queue_size(cc_process_queue *q)
{
    if (!q)
        return 0;
    cc_lock_acquire(&q->h->lock, CC_FOREVER);
    size_t n = (size_t)q->h->count;
    cc_lock_release(&q->h->lock);
    return n;
}

bool cc_process_queue_empty(cc_process_queue *q)
{
    return cc_process_queue_size(q) == 0;
}

void cc_process_queue_free(cc_process_queue *q)
{
    if (!q)
        return;
    cc_shm_free(q->shm);
    free(q);
}
