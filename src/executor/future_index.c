#include "executor/future_index.h"

#include <stdlib.h>

static int compare_refs(const void *a, const void *b)
{
    const cci_future_ref *x = a, *y = b;
    return (x->future > y->future) - (x->future < y->future);
}

cci_future_ref *cci_future_index_new(cc_future *const *fs, size_t n)
{
    cci_future_ref *index = malloc((n ? n : 1) * sizeof *index);
    if (!index)
        return NULL;
    for (size_t k = 0; k < n; k++)
        index[k] = (cci_future_ref){fs[k], k};
    qsort(index, n, sizeof *index, compare_refs);
    return index;
}

size_t cci_future_index_find(const cci_future_ref *index, size_t n,
                             cc_future *f)
{
    cci_future_ref key = {f, 0};
    const cci_future_ref *r =
        bsearch(&key, index, n, sizeof key, compare_refs);
    return r->position;
}

void cci_futures_cancel(cc_future *const *fs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (fs[i])
            cc_future_cancel(fs[i]);
}

void cci_futures_release(cc_future **fs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (!fs[i])
            continue;
        cc_future_cancel(fs[i]);
        cc_future_wait(fs[i], CC_FOREVER);
        cc_future_unref(fs[i]);
    }
}
