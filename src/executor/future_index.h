/*
 * future_index.h — what every chunked map (map.c, process/map_bytes.c)
 * needs over its array of chunk futures: finding a future's position when
 * as_completed hands it back, cancelling them when the map ends early, and
 * letting go of them all.
 */
#ifndef CCI_FUTURE_INDEX_H
#define CCI_FUTURE_INDEX_H

#include <stddef.h>

#include "concur/future.h"

typedef struct cci_future_ref {
    cc_future *future;
    size_t position;
} cci_future_ref;

/* A malloc'd copy of fs[0..n) with positions, sorted by address, for
 * cci_future_index_find; NULL when out of memory. Free with free(). */
cci_future_ref *cci_future_index_new(cc_future *const *fs, size_t n);

/* The position of f, which must be in the index. O(log n). */
size_t cci_future_index_find(const cci_future_ref *index, size_t n,
                             cc_future *f);

/* Cancels what has not started; NULL entries are skipped. */
void cci_futures_cancel(cc_future *const *fs, size_t n);

/* Cancels what has not started, waits for what runs (it may still write
 * into the caller's arrays) and drops the references; NULL entries (never
 * submitted) are skipped. */
void cci_futures_release(cc_future **fs, size_t n);

#endif /* CCI_FUTURE_INDEX_H */
