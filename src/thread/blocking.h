/*
 * blocking.h — how every blocking call in concur marks the calling thread
 * BLOCKED and says what it waits on.
 *
 * Call cci_block_begin right before the first real wait (never on a fast path
 * that succeeds at once) and cci_block_end with its result after the wait
 * loop. Calls nest: a condition wait that re-acquires its lock shows the lock
 * while it waits for it and the condition again afterwards.
 */
#ifndef CCI_BLOCKING_H
#define CCI_BLOCKING_H

#include "concur/thread.h"

typedef struct cci_block_token {
    struct cc_thread *thread; /* NULL if the thread has no record */
    cc_wait_kind kind;        /* what was recorded before this wait */
    const void *object;
    int64_t since_ns;
} cci_block_token;

cci_block_token cci_block_begin(cc_wait_kind kind, const void *object);
void cci_block_end(cci_block_token token);

#endif /* CCI_BLOCKING_H */
