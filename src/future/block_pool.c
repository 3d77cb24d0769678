/*
 * block_pool.c — the future allocator (see block_pool.h).
 *
 * Memory comes in slabs of SLAB_BYTES, aligned to their size, so a block
 * finds its slab by masking its address. Block 0 holds the slab's header;
 * blocks 1..SLAB_BLOCKS-1 are handed out.
 *
 * A slab is either ATTACHED to one thread (its `current` slab: the only
 * one it allocates from) or DETACHED (owned by nobody, listed in the
 * depot). Each slab keeps two free lists:
 *   - the private list: blocks freed by the owner, popped by the owner;
 *     plain loads and stores, because only the owner touches it;
 *   - the shared stack in `word`: blocks freed by any other thread (and by
 *     the former owner once detached), pushed with a CAS. The owner takes
 *     the whole stack with one exchange when its private list and the
 *     never-used tail (`bump`) are exhausted. Pushes and take-all only, so
 *     there is no ABA problem.
 *
 * `word` packs, so that one CAS decides everything:
 *   bits  0-15  head: index of the newest block on the shared stack (0: none)
 *   bits 16-31  count: blocks on the shared stack
 *   bits 32-47  issued: blocks ever handed out, set when detaching
 *   bit  48     DETACHED
 *   bit  49     DEAD: detached and every issued block is back
 * An attached slab's word has issued = 0 and no flag, so the owner's take
 * is an exchange with 0.
 *
 * A full slab is detached and the thread moves to another. When the last
 * issued block of a detached slab comes back, the thread whose CAS makes
 * count == issued sets DEAD and releases the slab; exactly one CAS can do
 * that. A thread that needs a slab first adopts a detached one with at
 * least ADOPT_MIN free blocks (so memory held by slabs is at most about
 * SLAB_BLOCKS / ADOPT_MIN times the live blocks, after adoption had its
 * chance), then reuses an empty cached slab, then allocates.
 *
 * The depot (a mutex, the detached list, empty slabs and the mappings they
 * are carved from) is touched once per slab, that is once per ~680 blocks,
 * never per block. Address space is kept at its peak. Empty slabs are
 * reused newest first; the pages of one that stayed unused for DECAY_NS
 * are offered back to the kernel (see release), as jemalloc's decay does,
 * so a loop that fills and drains a million futures keeps its memory while
 * a program past its burst gives it back.
 * A thread detaches its current slab when it exits (a pthread key
 * destructor); the main thread never exits that way and keeps it. After
 * that destructor, the thread allocates no more blocks (its futures come
 * from malloc): a slab it took then would stay attached to no thread
 * forever.
 */
#include "future/block_pool.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>

#include "concur/time.h"

#if defined(__SANITIZE_ADDRESS__)
#define BLOCK_POOL_OFF 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define BLOCK_POOL_OFF 1
#endif
#endif

#ifdef BLOCK_POOL_OFF

void *cci_block_alloc(void)
{
    return NULL;
}

void cci_block_free(void *block)
{
    (void)block; /* never handed one out */
    abort();
}

size_t cci_block_trim(void)
{
    return 0;
}

size_t cci_block_slabs_in_use(void)
{
    return 0;
}

#else

#define SLAB_BYTES 65536u
#define SLAB_BLOCKS (SLAB_BYTES / CCI_BLOCK_SIZE)
#define FIRST_BLOCK 2u /* blocks 0 and 1 hold the header */
#define ADOPT_MIN (SLAB_BLOCKS / 8)
#define ADOPT_SCAN 8
#define ARENA_SLABS 64 /* slabs are carved from 4 MiB mappings */
#define HOT_KEEP 4     /* empty slabs never purged by age */
#define DECAY_NS 1000000000LL

#define W_HEAD 0xffffull
#define W_COUNT_SHIFT 16
#define W_ISSUED_SHIFT 32
#define W_DETACHED (1ull << 48)
#define W_DEAD (1ull << 49)

struct slab {
    /* The owner's line. next and prev belong to the depot (under its lock)
     * while the slab is detached. */
    uint16_t priv_head;  /* private free list (0: empty) */
    uint16_t priv_count; /* blocks on it */
    uint16_t bump;       /* blocks [bump, SLAB_BLOCKS) were never handed out */
    struct slab *next, *prev;
    int64_t empty_since; /* while on the hot list: when it got there */
    /* Every freeing thread's line. */
    _Alignas(64) uint64_t word;
};

_Static_assert(sizeof(struct slab) <= FIRST_BLOCK * CCI_BLOCK_SIZE,
               "the header fits before the first block");
_Static_assert(SLAB_BLOCKS <= 0xffff, "indices fit 16 bits");

static __thread struct slab *tls_current;
static __thread bool tls_armed;  /* the exit destructor will run */
static __thread bool tls_exited; /* the exit destructor ran */

struct slab_list {
    struct slab *head, *tail;
    unsigned n;
};

static struct {
    pthread_mutex_t lock;
    struct slab_list detached; /* scanned from the head for adoption */
    struct slab_list hot;      /* empty, pages in place; newest first */
    struct slab **cold;        /* empty, pages offered back to the kernel */
    size_t n_cold, cap_cold;   /* (an array: their headers may be gone) */
    char *arena;               /* unused part of the newest mapping */
    unsigned arena_left;      /* slabs in it */
    size_t carved;             /* slabs ever taken from mappings */
    pthread_key_t exit_key;
    bool usable;
} depot = {.lock = PTHREAD_MUTEX_INITIALIZER};

static pthread_once_t depot_once = PTHREAD_ONCE_INIT;
static void depot_init(void);

static inline struct slab *slab_of(const void *block)
{
    return (struct slab *)((uintptr_t)block & ~(uintptr_t)(SLAB_BYTES - 1));
}

static inline void *block_at(struct slab *s, unsigned i)
{
    return (char *)s + (size_t)i * CCI_BLOCK_SIZE;
}

static inline unsigned index_of(struct slab *s, const void *block)
{
    return (unsigned)(((uintptr_t)block - (uintptr_t)s) / CCI_BLOCK_SIZE);
}

/* A free block's first two bytes link it to the next one on its list. */
static inline uint16_t link_of(struct slab *s, unsigned i)
{
    return *(uint16_t *)block_at(s, i);
}

static inline void set_link(struct slab *s, unsigned i, unsigned next)
{
    *(uint16_t *)block_at(s, i) = (uint16_t)next;
}

static inline unsigned w_head(uint64_t w)
{
    return (unsigned)(w & W_HEAD);
}

static inline unsigned w_count(uint64_t w)
{
    return (unsigned)((w >> W_COUNT_SHIFT) & 0xffff);
}

static inline unsigned w_issued(uint64_t w)
{
    return (unsigned)((w >> W_ISSUED_SHIFT) & 0xffff);
}

static inline uint64_t w_make(unsigned head, unsigned count, unsigned issued,
                              uint64_t flags)
{
    return (uint64_t)head | (uint64_t)count << W_COUNT_SHIFT |
           (uint64_t)issued << W_ISSUED_SHIFT | flags;
}

/* ---- the depot (its lock held) ------------------------------------------- */

static void list_append(struct slab_list *l, struct slab *s)
{
    s->next = NULL;
    s->prev = l->tail;
    if (l->tail)
        l->tail->next = s;
    else
        l->head = s;
    l->tail = s;
    l->n++;
}

static void list_prepend(struct slab_list *l, struct slab *s)
{
    s->prev = NULL;
    s->next = l->head;
    if (l->head)
        l->head->prev = s;
    else
        l->tail = s;
    l->head = s;
    l->n++;
}

static void list_remove(struct slab_list *l, struct slab *s)
{
    if (s->prev)
        s->prev->next = s->next;
    else
        l->head = s->next;
    if (s->next)
        s->next->prev = s->prev;
    else
        l->tail = s->prev;
    l->n--;
}

/* Keeps s on the cold list; false if the list cannot grow. */
static bool push_cold_locked(struct slab *s)
{
    if (depot.n_cold == depot.cap_cold) {
        size_t cap = depot.cap_cold ? 2 * depot.cap_cold : 64;
        struct slab **a = realloc(depot.cold, cap * sizeof *a);
        if (!a)
            return false;
        depot.cold = a;
        depot.cap_cold = cap;
    }
    depot.cold[depot.n_cold++] = s;
    return true;
}

/* An empty slab goes back to the depot, and the oldest empty slab, if it
 * has gone unused for DECAY_NS, has its pages offered back to the kernel
 * (MADV_FREE: free of charge if the kernel does not take them, a fresh
 * zero page on the next touch if it did). Slabs are never unmapped: their
 * addresses must stay valid for slab_of. Called without the lock, so that
 * the system call stays outside it. */
static void release(struct slab *s)
{
    int64_t now = cc_monotonic_ns();
    pthread_mutex_lock(&depot.lock);
    s->empty_since = now;
    list_prepend(&depot.hot, s);
    struct slab *old = depot.hot.tail;
    if (depot.hot.n > HOT_KEEP && old->empty_since + DECAY_NS < now)
        list_remove(&depot.hot, old);
    else
        old = NULL;
    pthread_mutex_unlock(&depot.lock);
    if (!old)
        return;
    (void)madvise(old, SLAB_BYTES, MADV_FREE);
    pthread_mutex_lock(&depot.lock);
    if (!push_cold_locked(old)) {
        old->empty_since = now; /* whole again once touched: keep it hot */
        list_append(&depot.hot, old);
    }
    pthread_mutex_unlock(&depot.lock);
}

/* A never-used slab from the newest mapping, or a new mapping. */
static struct slab *carve_locked(void)
{
    if (depot.arena_left == 0) {
        size_t len = (size_t)ARENA_SLABS * SLAB_BYTES;
        char *m = mmap(NULL, len + SLAB_BYTES, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (m == MAP_FAILED)
            return NULL;
        /* Keep the SLAB_BYTES-aligned part and give back the rest. */
        char *start = (char *)(((uintptr_t)m + SLAB_BYTES - 1) &
                               ~(uintptr_t)(SLAB_BYTES - 1));
        if (start > m)
            munmap(m, (size_t)(start - m));
        size_t tail = (size_t)(m + len + SLAB_BYTES - (start + len));
        if (tail)
            munmap(start + len, tail);
        depot.arena = start;
        depot.arena_left = ARENA_SLABS;
    }
    struct slab *s = (struct slab *)depot.arena;
    depot.arena += SLAB_BYTES;
    depot.arena_left--;
    depot.carved++;
    return s;
}

/* A detached slab with at least ADOPT_MIN free blocks, now attached to
 * the caller with those blocks on its private list; NULL if none among
 * the first ADOPT_SCAN (the others rotate to the back, so a later search
 * looks at different ones). */
static struct slab *adopt_locked(void)
{
    struct slab_list *l = &depot.detached;
    for (int k = 0; k < ADOPT_SCAN && l->head; k++) {
        struct slab *s = l->head;
        uint64_t w = __atomic_load_n(&s->word, __ATOMIC_ACQUIRE);
        while (!(w & W_DEAD) && w_count(w) >= ADOPT_MIN) {
            /* Acquire: the freed blocks' links were written before their
             * pushes. A push racing with us fails our CAS; we retry. */
            if (__atomic_compare_exchange_n(&s->word, &w, 0, false,
                                            __ATOMIC_ACQUIRE,
                                            __ATOMIC_ACQUIRE)) {
                list_remove(l, s);
                s->priv_head = (uint16_t)w_head(w);
                s->priv_count = (uint16_t)w_count(w);
                return s;
            }
        }
        /* Not worth it yet, or dying (its releaser waits for our lock). */
        if (l->n > 1) {
            list_remove(l, s);
            list_append(l, s);
        }
    }
    return NULL;
}

static struct slab *acquire_slab(void)
{
    pthread_mutex_lock(&depot.lock);
    struct slab *s = adopt_locked();
    if (s) {
        pthread_mutex_unlock(&depot.lock);
        return s;
    }
    if ((s = depot.hot.head) != NULL) {
        list_remove(&depot.hot, s);
    } else if (depot.n_cold > 0) {
        s = depot.cold[--depot.n_cold];
    } else {
        s = carve_locked();
    }
    pthread_mutex_unlock(&depot.lock);
    if (!s)
        return NULL;
    /* An empty slab was DEAD and nobody else can reach it: start afresh. */
    s->priv_head = 0;
    s->priv_count = 0;
    s->bump = FIRST_BLOCK;
    s->next = s->prev = NULL;
    __atomic_store_n(&s->word, 0, __ATOMIC_RELAXED);
    return s;
}

/* The owner lets go of s: its private list joins the shared stack, and it
 * is listed in the depot, or released at once if nothing is out. */
static void detach(struct slab *s)
{
    unsigned issued = s->bump - FIRST_BLOCK;
    unsigned tail = s->priv_head;
    while (tail && link_of(s, tail))
        tail = link_of(s, tail);
    pthread_mutex_lock(&depot.lock);
    /* Listed before it is marked detached: a freer that completes it
     * unlinks it under this lock, so it must already be there. */
    list_append(&depot.detached, s);
    uint64_t old = __atomic_load_n(&s->word, __ATOMIC_ACQUIRE), next;
    do {
        unsigned head = w_head(old);
        if (tail) {
            set_link(s, tail, head);
            head = s->priv_head;
        }
        unsigned count = w_count(old) + s->priv_count;
        next = w_make(head, count, issued,
                      W_DETACHED | (count == issued ? W_DEAD : 0));
    } while (!__atomic_compare_exchange_n(&s->word, &old, next, false,
                                          __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE));
    if (next & W_DEAD)
        list_remove(&depot.detached, s);
    pthread_mutex_unlock(&depot.lock);
    if (next & W_DEAD)
        release(s);
}

size_t cci_block_trim(void)
{
    /* The fork handlers too: a fork while we hold the lock, before any
     * block was ever allocated, must not leave it locked in the child. */
    pthread_once(&depot_once, depot_init);
    size_t released = 0;
    pthread_mutex_lock(&depot.lock);
    struct slab *s;
    while ((s = depot.hot.head) != NULL && push_cold_locked(s)) {
        list_remove(&depot.hot, s);
        (void)madvise(s, SLAB_BYTES, MADV_DONTNEED);
        released += SLAB_BYTES;
    }
    /* Cold slabs may still hold pages the kernel has not taken yet. */
    for (size_t i = 0; i < depot.n_cold; i++)
        (void)madvise(depot.cold[i], SLAB_BYTES, MADV_DONTNEED);
    pthread_mutex_unlock(&depot.lock);
    return released;
}

size_t cci_block_slabs_in_use(void)
{
    pthread_mutex_lock(&depot.lock);
    size_t n = depot.carved - depot.hot.n - depot.n_cold;
    pthread_mutex_unlock(&depot.lock);
    return n;
}

/* ---- threads coming and going --------------------------------------------- */

static void on_thread_exit(void *unused)
{
    (void)unused;
    tls_armed = false;
    tls_exited = true;
    struct slab *s = tls_current;
    tls_current = NULL;
    if (s)
        detach(s);
}

/* A fork child must find the depot unlocked, whatever other threads of
 * the parent were doing. */
static void before_fork(void)
{
    pthread_mutex_lock(&depot.lock);
}

static void after_fork(void)
{
    pthread_mutex_unlock(&depot.lock);
}

static void depot_init(void)
{
    if (pthread_key_create(&depot.exit_key, on_thread_exit) != 0)
        return;
    if (pthread_atfork(before_fork, after_fork, after_fork) != 0)
        return;
    depot.usable = true;
}

/* Makes sure this thread's slab is detached when it exits; false (use
 * malloc) once it has been. Re-arming from a later key destructor would not
 * do: glibc runs destructors again while keys are set, but only for
 * PTHREAD_DESTRUCTOR_ITERATIONS passes, and visits keys in order within a
 * pass, so a block taken in the last pass by a destructor of a later key
 * would pin its slab for ever (test_late_destructor_pins_no_slab). */
static bool arm_thread_exit(void)
{
    if (tls_armed)
        return true;
    if (tls_exited)
        return false;
    pthread_once(&depot_once, depot_init);
    if (!depot.usable ||
        pthread_setspecific(depot.exit_key, &tls_current) != 0)
        return false;
    tls_armed = true;
    return true;
}

/* ---- allocating and freeing ------------------------------------------------ */

static inline void *take_private(struct slab *s)
{
    unsigned i = s->priv_head;
    s->priv_head = link_of(s, i);
    s->priv_count--;
    return block_at(s, i);
}

static __attribute__((noinline)) void *alloc_slow(void)
{
    struct slab *s = tls_current;
    if (s) {
        /* Private list and fresh blocks are used up: take what other
         * threads gave back. */
        uint64_t w = __atomic_exchange_n(&s->word, 0, __ATOMIC_ACQUIRE);
        if (w_head(w)) {
            s->priv_head = (uint16_t)w_head(w);
            s->priv_count = (uint16_t)w_count(w);
            return take_private(s);
        }
        tls_current = NULL;
        detach(s);
    }
    if (!arm_thread_exit())
        return NULL;
    s = acquire_slab();
    if (!s)
        return NULL;
    tls_current = s;
    if (s->priv_head)
        return take_private(s);
    return block_at(s, s->bump++);
}

void *cci_block_alloc(void)
{
    struct slab *s = tls_current;
    if (__builtin_expect(s != NULL, 1)) {
        if (s->priv_head)
            return take_private(s);
        if (s->bump < SLAB_BLOCKS)
            return block_at(s, s->bump++);
    }
    return alloc_slow();
}

static __attribute__((noinline)) void free_shared(struct slab *s, unsigned i)
{
    uint64_t old = __atomic_load_n(&s->word, __ATOMIC_ACQUIRE), next;
    do {
        set_link(s, i, w_head(old));
        unsigned count = w_count(old) + 1;
        uint64_t flags = old & W_DETACHED;
        if (flags && count == w_issued(old))
            flags |= W_DEAD;
        next = w_make(i, count, w_issued(old), flags);
        /* Release: the link (and the block's last use) before the push. */
    } while (!__atomic_compare_exchange_n(&s->word, &old, next, false,
                                          __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE));
    if (next & W_DEAD) {
        pthread_mutex_lock(&depot.lock);
        list_remove(&depot.detached, s);
        pthread_mutex_unlock(&depot.lock);
        release(s);
    }
}

void cci_block_free(void *block)
{
    struct slab *s = slab_of(block);
    unsigned i = index_of(s, block);
    if (s == tls_current) {
        set_link(s, i, s->priv_head);
        s->priv_head = (uint16_t)i;
        s->priv_count++;
        return;
    }
    free_shared(s, i);
}

#endif /* BLOCK_POOL_OFF */
