/*
 * names.c — the table of object names: a chained hash table keyed by
 * address, under one mutex.
 *
 * Names are read on slow paths only (a dump, a report, a traced wait that
 * already slept), and written when objects are created or named, so one
 * mutex is plenty. Entries hold the text inline (CC_NAME_MAX + 1 bytes):
 * one allocation per name. cci_names_used mirrors the entry count for the
 * lock-free "nothing is named" check of cci_object_destroyed.
 *
 * Lock order: names_lock is a leaf; nothing is acquired while it is held.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "trace/trace_internal.h"

struct name_entry {
    struct name_entry *next;
    const void *obj;
    char text[CC_NAME_MAX + 1];
};

static pthread_mutex_t names_lock = PTHREAD_MUTEX_INITIALIZER;
static struct name_entry **buckets; /* guarded by names_lock */
static size_t n_buckets;            /* a power of two, or 0 */
static size_t n_entries;

static size_t bucket_of(const void *obj, size_t n)
{
    /* Fibonacci hashing: objects are at least 4-byte aligned and often
     * 64 apart, so the low bits alone would crowd a few buckets. */
    uint64_t h = (uint64_t)(uintptr_t)obj * UINT64_C(0x9E3779B97F4A7C15);
    return (size_t)(h >> 32) & (n - 1);
}

static struct name_entry **find_locked(const void *obj)
{
    if (n_buckets == 0)
        return NULL;
    struct name_entry **pp = &buckets[bucket_of(obj, n_buckets)];
    while (*pp && (*pp)->obj != obj)
        pp = &(*pp)->next;
    return *pp ? pp : NULL;
}

/* Doubles the table when it is full; failing to grow only makes chains
 * longer. */
static void grow_locked(void)
{
    if (n_entries < n_buckets)
        return;
    size_t n = n_buckets ? n_buckets * 2 : 64;
    struct name_entry **fresh = calloc(n, sizeof *fresh);
    if (!fresh)
        return;
    for (size_t i = 0; i < n_buckets; i++) {
        struct name_entry *e = buckets[i];
        while (e) {
            struct name_entry *next = e->next;
            size_t b = bucket_of(e->obj, n);
            e->next = fresh[b];
            fresh[b] = e;
            e = next;
        }
    }
    free(buckets);
    buckets = fresh;
    n_buckets = n;
}

static void copy_cut(char *dst, const char *src)
{
    size_t len = strnlen(src, CC_NAME_MAX);
    memcpy(dst, src, len);
    dst[len] = '\0';
}

static int set_name(const void *obj, const char *name)
{
    pthread_mutex_lock(&names_lock);
    struct name_entry **pp = find_locked(obj);
    if (pp) {
        copy_cut((*pp)->text, name);
        pthread_mutex_unlock(&names_lock);
        return 0;
    }
    grow_locked();
    struct name_entry *e = n_buckets ? malloc(sizeof *e) : NULL;
    if (!e) {
        pthread_mutex_unlock(&names_lock);
        return -ENOMEM;
    }
    e->obj = obj;
    copy_cut(e->text, name);
    size_t b = bucket_of(obj, n_buckets);
    e->next = buckets[b];
    buckets[b] = e;
    n_entries++;
    __atomic_store_n(&cci_names_used, (uint32_t)n_entries, __ATOMIC_RELAXED);
    pthread_mutex_unlock(&names_lock);
    return 0;
}

int cc_name_set(const void *obj, const char *name)
{
    if (!obj || !name)
        return -EINVAL;
    return set_name(obj, name);
}

void cci_name_set_default(const void *obj, const char *name)
{
    if (obj && name)
        (void)set_name(obj, name);
}

int cc_name_get(const void *obj, char *buf, size_t cap)
{
    if (!obj || (!buf && cap > 0))
        return -EINVAL;
    pthread_mutex_lock(&names_lock);
    struct name_entry **pp = find_locked(obj);
    int len = -ENOENT;
    if (pp) {
        size_t n = strlen((*pp)->text);
        if (cap > 0) {
            size_t k = n < cap - 1 ? n : cap - 1;
            memcpy(buf, (*pp)->text, k);
            buf[k] = '\0';
        }
        len = (int)n;
    }
    pthread_mutex_unlock(&names_lock);
    return len;
}

bool cci_name_lookup(const void *obj, char *buf, size_t cap)
{
    buf[0] = '\0';
    if (!obj || __atomic_load_n(&cci_names_used, __ATOMIC_RELAXED) == 0)
        return false;
    return cc_name_get(obj, buf, cap) >= 0;
}

static bool remove_name(const void *obj)
{
    pthread_mutex_lock(&names_lock);
    struct name_entry **pp = find_locked(obj);
    struct name_entry *gone = NULL;
    if (pp) {
        gone = *pp;
        *pp = gone->next;
        n_entries--;
        __atomic_store_n(&cci_names_used, (uint32_t)n_entries,
                         __ATOMIC_RELAXED);
    }
    pthread_mutex_unlock(&names_lock);
    free(gone);
    return gone != NULL;
}

int cc_name_clear(const void *obj)
{
    if (!obj)
        return -EINVAL;
    return remove_name(obj) ? 0 : -ENOENT;
}

void cci_names_forget(const void *obj)
{
    if (__atomic_load_n(&cci_names_used, __ATOMIC_RELAXED) != 0)
        (void)remove_name(obj);
}

/* fork: the child must not inherit a lock held by a thread it lacks. */
void cci_names_atfork_prepare(void)
{
    pthread_mutex_lock(&names_lock);
}

void cci_names_atfork_parent(void)
{
    pthread_mutex_unlock(&names_lock);
}

void cci_names_atfork_child(void)
{
    pthread_mutex_unlock(&names_lock);
}
