/*
 * shm.c — shared memory segments, and the typed Value/Array on top.
 *
 * Anonymous segments are memfds: no name exists at all, so nothing can be
 * opened by anyone who was not handed the descriptor. Named segments are
 * POSIX shm objects named "/concur-" + 128 random bits from getrandom, so
 * a name cannot be guessed, created O_EXCL (nobody can have prepared it)
 * with mode 0600 (nobody else can open it), and opened only under a name
 * of exactly that form.
 */
#include <errno.h>
#include <stdint.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "concur/error.h"
#include "concur/process.h"
#include "platform/process_platform.h"
#include "process/process_internal.h"

struct cc_shm {
    int fd;
    void *data;
    size_t size;
    char name[CC_SHM_NAME_MAX]; /* "" when anonymous */
    bool creator;
    bool unlinked;
};

#define NAME_PREFIX "/concur-"
#define NAME_HEX 32

static int shm_wrap(cc_shm **out, int fd, size_t size)
{
    cc_shm *s = calloc(1, sizeof *s);
    if (!s)
        return -ENOMEM;
    int rc = cci_map_shared(fd, size, &s->data);
    if (rc < 0) {
        free(s);
        return rc;
    }
    s->fd = fd;
    s->size = size;
    *out = s;
    return 0;
}

int cc_shm_new(cc_shm **out, size_t size)
{
    if (!out || size == 0 || size > ((size_t)1 << 40))
        return -EINVAL;
    int fd = cci_memfd("concur-shm", size);
    if (fd < 0)
        return fd;
    int rc = shm_wrap(out, fd, size);
    if (rc < 0)
        close(fd);
    return rc;
}

bool cci_shm_name_valid(const char *name)
{
    size_t plen = strlen(NAME_PREFIX);
    if (strncmp(name, NAME_PREFIX, plen) != 0 ||
        strlen(name) != plen + NAME_HEX)
        return false;
    for (size_t i = plen; name[i]; i++)
        if (!((name[i] >= '0' && name[i] <= '9') ||
              (name[i] >= 'a' && name[i] <= 'f')))
            return false;
    return true;
}

int cc_shm_create(cc_shm **out, size_t size, char *name_out, size_t cap)
{
    if (!out || size == 0 || size > ((size_t)1 << 40) || !name_out ||
        cap < CC_SHM_NAME_MAX)
        return -EINVAL;
    char name[CC_SHM_NAME_MAX];
    int fd = -1;
    /* A collision of 128 random bits does not happen; EEXIST is retried
     * only to be correct, never expected. */
    for (int attempt = 0; attempt < 4 && fd < 0; attempt++) {
        uint8_t rnd[NAME_HEX / 2];
        int rc = cci_random_bytes(rnd, sizeof rnd);
        if (rc < 0)
            return rc;
        int at = snprintf(name, sizeof name, "%s", NAME_PREFIX);
        for (size_t i = 0; i < sizeof rnd; i++)
            at += snprintf(name + at, sizeof name - (size_t)at, "%02x",
                           rnd[i]);
        fd = shm_open(name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd < 0 && errno != EEXIST)
            return -errno;
    }
    if (fd < 0)
        return -EEXIST;
    /* The umask cannot widen 0600, but an odd one could narrow it: the
     * owner needs read and write. */
    if (fchmod(fd, 0600) < 0 || ftruncate(fd, (off_t)size) < 0) {
        int err = -errno;
        close(fd);
        shm_unlink(name);
        return err;
    }
    /* Registered before anyone can learn the name: from here on, the
     * creator's death unlinks it whatever kills it (shm_tracker.c). */
    int rc = cci_shm_track(name);
    if (rc < 0) {
        close(fd);
        shm_unlink(name);
        return rc;
    }
    rc = shm_wrap(out, fd, size);
    if (rc < 0) {
        close(fd);
        shm_unlink(name);
        cci_shm_untrack(name);
        return rc;
    }
    memcpy((*out)->name, name, sizeof name);
    (*out)->creator = true;
    memcpy(name_out, name, strlen(name) + 1);
    return 0;
}

int cc_shm_open(cc_shm **out, const char *name)
{
    if (!out || !name || !cci_shm_name_valid(name))
        return -EINVAL;
    int fd = shm_open(name, O_RDWR | O_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    struct stat st;
    if (fstat(fd, &st) < 0 || st.st_size <= 0) {
        int err = st.st_size <= 0 ? -EPROTO : -errno;
        close(fd);
        return err;
    }
    /* Only segments of our own user, private to it. */
    if (st.st_uid != geteuid() || (st.st_mode & 077)) {
        close(fd);
        return -EACCES;
    }
    int rc = shm_wrap(out, fd, (size_t)st.st_size);
    if (rc < 0) {
        close(fd);
        return rc;
    }
    memcpy((*out)->name, name, strlen(name) + 1);
    return 0;
}

int cc_shm_from_fd(cc_shm **out, int fd)
{
    if (!out || fd < 0)
        return -EINVAL;
    struct stat st;
    if (fstat(fd, &st) < 0)
        return -errno;
    if (st.st_size <= 0)
        return -EINVAL;
    cci_set_cloexec(fd, true);
    return shm_wrap(out, fd, (size_t)st.st_size);
}

void *cc_shm_data(const cc_shm *s)
{
    return s ? s->data : NULL;
}

size_t cc_shm_size(const cc_shm *s)
{
    return s ? s->size : 0;
}

int cc_shm_fd(const cc_shm *s)
{
    return s ? s->fd : -EINVAL;
}

const char *cc_shm_name(const cc_shm *s)
{
    return s && s->name[0] ? s->name : NULL;
}

int cc_shm_unlink(cc_shm *s)
{
    if (!s || !s->name[0])
        return -EINVAL;
    if (s->unlinked)
        return 0;
    if (shm_unlink(s->name) < 0 && errno != ENOENT)
        return -errno;
    s->unlinked = true;
    if (s->creator)
        cci_shm_untrack(s->name);
    return 0;
}

void cc_shm_free(cc_shm *s)
{
    if (!s)
        return;
    if (s->creator)
        cc_shm_unlink(s);
    munmap(s->data, s->size);
    close(s->fd);
    free(s);
}

/* ---- Value and Array -------------------------------------------------------------
 * Segment layout: a 64-byte header (so the elements are aligned for any
 * type), then the elements. The header is written once by the creator;
 * a process attaching checks it against the segment's real size. */

#define SHARED_MAGIC 0x52485343u /* "CSHR" */

struct shared_header {
    uint32_t magic;
    uint32_t type;
    uint64_t length;
    cc_lock lock;
    uint8_t pad[64 - 16 - sizeof(cc_lock)];
};

_Static_assert(sizeof(struct shared_header) == 64, "header is 64 bytes");

struct cc_shared {
    cc_shm *shm;
    struct shared_header *hdr;
    cc_ctype type;
    size_t length; /* our checked copy, never re-read from shared memory */
    void *data;
};

static size_t type_size(cc_ctype t)
{
    switch (t) {
    case CC_TYPE_INT8:
    case CC_TYPE_UINT8:
        return 1;
    case CC_TYPE_INT16:
    case CC_TYPE_UINT16:
        return 2;
    case CC_TYPE_INT32:
    case CC_TYPE_UINT32:
    case CC_TYPE_FLOAT:
        return 4;
    case CC_TYPE_INT64:
    case CC_TYPE_UINT64:
    case CC_TYPE_DOUBLE:
        return 8;
    }
    return 0;
}

static int shared_wrap(cc_shared **out, cc_shm *shm, cc_ctype type,
                       size_t length)
{
    cc_shared *s = malloc(sizeof *s);
    if (!s)
        return -ENOMEM;
    s->shm = shm;
    s->hdr = cc_shm_data(shm);
    s->type = type;
    s->length = length;
    s->data = (char *)s->hdr + sizeof(struct shared_header);
    *out = s;
    return 0;
}

int cc_shared_array_new(cc_shared **out, cc_ctype type, size_t n)
{
    size_t es = type_size(type);
    if (!out || es == 0 || n == 0 || n > ((size_t)1 << 36) / es)
        return -EINVAL;
    cc_shm *shm;
    int rc = cc_shm_new(&shm, sizeof(struct shared_header) + n * es);
    if (rc < 0)
        return rc;
    struct shared_header *h = cc_shm_data(shm);
    h->magic = SHARED_MAGIC;
    h->type = (uint32_t)type;
    h->length = n;
    cc_lock_init(&h->lock, CC_SYNC_PSHARED);
    rc = shared_wrap(out, shm, type, n);
    if (rc < 0)
        cc_shm_free(shm);
    return rc;
}

int cc_shared_value_new(cc_shared **out, cc_ctype type)
{
    return cc_shared_array_new(out, type, 1);
}

int cc_shared_from_fd(cc_shared **out, int fd)
{
    if (!out || fd < 0)
        return -EINVAL;
    cc_shm *shm;
    int rc = cc_shm_from_fd(&shm, fd);
    if (rc < 0)
        return rc;
    const struct shared_header *h = cc_shm_data(shm);
    size_t size = cc_shm_size(shm);
    /* Read each field once, then check the copies. */
    uint32_t magic = __atomic_load_n(&h->magic, __ATOMIC_RELAXED);
    cc_ctype type = (cc_ctype)__atomic_load_n(&h->type, __ATOMIC_RELAXED);
    uint64_t length = __atomic_load_n(&h->length, __ATOMIC_RELAXED);
    size_t es = type_size(type);
    if (size < sizeof *h || magic != SHARED_MAGIC || es == 0 ||
        length == 0 || length > (size - sizeof *h) / es) {
        /* Do not take ownership of fd on failure: unwrap without close. */
        munmap(cc_shm_data(shm), size);
        free(shm);
        return -EPROTO;
    }
    rc = shared_wrap(out, shm, type, (size_t)length);
    if (rc < 0) {
        munmap(cc_shm_data(shm), size);
        free(shm);
    }
    return rc;
}

int cc_shared_fd(const cc_shared *s)
{
    return s ? cc_shm_fd(s->shm) : -EINVAL;
}

cc_ctype cc_shared_type(const cc_shared *s)
{
    return s ? s->type : (cc_ctype)0;
}

size_t cc_shared_length(const cc_shared *s)
{
    return s ? s->length : 0;
}

void *cc_shared_data(const cc_shared *s)
{
    return s ? s->data : NULL;
}

cc_lock *cc_shared_lock(const cc_shared *s)
{
    return s ? &s->hdr->lock : NULL;
}

/* double -> int64 without undefined behaviour: NaN gives 0, out-of-range
 * values saturate. */
static int64_t clamp_i64(double d)
{
    if (d != d)
        return 0;
    if (d >= 9223372036854775807.0)
        return INT64_MAX;
    if (d <= -9223372036854775808.0)
        return INT64_MIN;
    return (int64_t)d;
}

/* Element i as int64 / double; caller holds the lock. */
static int64_t load_i64(const cc_shared *s, size_t i)
{
    const void *p = (const char *)s->data + i * type_size(s->type);
    switch (s->type) {
    case CC_TYPE_INT8: return *(const int8_t *)p;
    case CC_TYPE_UINT8: return *(const uint8_t *)p;
    case CC_TYPE_INT16: return *(const int16_t *)p;
    case CC_TYPE_UINT16: return *(const uint16_t *)p;
    case CC_TYPE_INT32: return *(const int32_t *)p;
    case CC_TYPE_UINT32: return *(const uint32_t *)p;
    case CC_TYPE_INT64: return *(const int64_t *)p;
    case CC_TYPE_UINT64: return (int64_t)*(const uint64_t *)p;
    case CC_TYPE_FLOAT: return clamp_i64(*(const float *)p);
    case CC_TYPE_DOUBLE: return clamp_i64(*(const double *)p);
    }
    return 0;
}

static double load_double(const cc_shared *s, size_t i)
{
    const void *p = (const char *)s->data + i * type_size(s->type);
    if (s->type == CC_TYPE_FLOAT)
        return *(const float *)p;
    if (s->type == CC_TYPE_DOUBLE)
        return *(const double *)p;
    if (s->type == CC_TYPE_UINT64)
        return (double)*(const uint64_t *)p;
    return (double)load_i64(s, i);
}

static void store_i64(cc_shared *s, size_t i, int64_t v)
{
    void *p = (char *)s->data + i * type_size(s->type);
    switch (s->type) {
    case CC_TYPE_INT8: *(int8_t *)p = (int8_t)v; break;
    case CC_TYPE_UINT8: *(uint8_t *)p = (uint8_t)v; break;
    case CC_TYPE_INT16: *(int16_t *)p = (int16_t)v; break;
    case CC_TYPE_UINT16: *(uint16_t *)p = (uint16_t)v; break;
    case CC_TYPE_INT32: *(int32_t *)p = (int32_t)v; break;
    case CC_TYPE_UINT32: *(uint32_t *)p = (uint32_t)v; break;
    case CC_TYPE_INT64: *(int64_t *)p = v; break;
    case CC_TYPE_UINT64: *(uint64_t *)p = (uint64_t)v; break;
    case CC_TYPE_FLOAT: *(float *)p = (float)v; break;
    case CC_TYPE_DOUBLE: *(double *)p = (double)v; break;
    }
}

static void store_double(cc_shared *s, size_t i, double v)
{
    void *p = (char *)s->data + i * type_size(s->type);
    if (s->type == CC_TYPE_FLOAT)
        *(float *)p = (float)v;
    else if (s->type == CC_TYPE_DOUBLE)
        *(double *)p = v;
    else
        store_i64(s, i, clamp_i64(v));
}

int cc_shared_get_i64(cc_shared *s, size_t index, int64_t *out)
{
    if (!s || !out || index >= s->length)
        return -EINVAL;
    cc_lock_acquire(&s->hdr->lock, CC_FOREVER);
    *out = load_i64(s, index);
    cc_lock_release(&s->hdr->lock);
    return 0;
}

int cc_shared_set_i64(cc_shared *s, size_t index, int64_t value)
{
    if (!s || index >= s->length)
        return -EINVAL;
    cc_lock_acquire(&s->hdr->lock, CC_FOREVER);
    store_i64(s, index, value);
    cc_lock_release(&s->hdr->lock);
    return 0;
}

int cc_shared_add_i64(cc_shared *s, size_t index, int64_t n, int64_t *out)
{
    if (!s || index >= s->length)
        return -EINVAL;
    cc_lock_acquire(&s->hdr->lock, CC_FOREVER);
    /* Wrap-around as unsigned arithmetic: never signed overflow (UB). */
    int64_t v = (int64_t)((uint64_t)load_i64(s, index) + (uint64_t)n);
    store_i64(s, index, v);
    if (out)
        *out = load_i64(s, index);
    cc_lock_release(&s->hdr->lock);
    return 0;
}

int cc_shared_get_double(cc_shared *s, size_t index, double *out)
{
    if (!s || !out || index >= s->length)
        return -EINVAL;
    cc_lock_acquire(&s->hdr->lock, CC_FOREVER);
    *out = load_double(s, index);
    cc_lock_release(&s->hdr->lock);
    return 0;
}

int cc_shared_set_double(cc_shared *s, size_t index, double value)
{
    if (!s || index >= s->length)
        return -EINVAL;
    cc_lock_acquire(&s->hdr->lock, CC_FOREVER);
    store_double(s, index, value);
    cc_lock_release(&s->hdr->lock);
    return 0;
}

void cc_shared_free(cc_shared *s)
{
    if (!s)
        return;
    cc_shm_free(s->shm);
    free(s);
}
