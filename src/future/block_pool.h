/*
 * block_pool.h — fixed-size blocks for futures, faster than malloc.
 *
 * A pool submit allocates one future (64 bytes plus the task record) and
 * the last unref frees it; with glibc that pair cost ~340 instructions of
 * the submitting thread's ~660 per empty task (callgrind), because a burst
 * of a million pending futures empties malloc's per-thread caches. Here a
 * block comes from the calling thread's current slab: popping a private
 * free list or bumping an index, no atomic operation. A free by the slab's
 * owner is the same in reverse; a free by another thread is one CAS on the
 * slab's shared word. block_pool.c explains slabs, detaching and adoption.
 *
 * Off under AddressSanitizer (cci_block_alloc returns NULL), so that
 * futures keep ASan's use-after-free checks; on under ThreadSanitizer,
 * which checks the pool's own synchronisation.
 */
#ifndef CCI_BLOCK_POOL_H
#define CCI_BLOCK_POOL_H

#include <stddef.h>

#define CCI_BLOCK_SIZE 96

/* A CCI_BLOCK_SIZE-byte block aligned to 32 bytes, or NULL when the pool
 * is off or out of memory (the caller falls back to malloc). Any thread. */
void *cci_block_alloc(void);

/* Gives back a block from cci_block_alloc. Any thread. */
void cci_block_free(void *block);

/* Returns the pages of every empty slab to the kernel at once (they are
 * otherwise kept for reuse, and offered back lazily after a second);
 * returns the bytes of slabs that were still whole. cc_future_trim. */
size_t cci_block_trim(void);

/* Slabs holding blocks or attached to a thread (neither empty in the depot
 * nor never used), for tests. */
size_t cci_block_slabs_in_use(void);

#endif
