/*
 * pool_internal.h — what the process pool's two sides share: the channel
 * layout in shared memory, the worker's configuration, and the worker's
 * entry point.
 *
 * One channel per worker, a sealed memfd of CCI_CHAN_SIZE bytes mapped by
 * the supervisor (parent) and the worker:
 *
 *   parent -> worker: the parent writes an encoded request (wire.h) into
 *     req[], stores req_len, then increments req_seq (release, seq_cst);
 *     if worker_sleeping is set it FUTEX_WAKEs req_seq (pshared).
 *   worker -> parent: the worker writes a response into resp[], stores
 *     resp_len, increments resp_seq; if parent_sleeping is set it writes
 *     the pool's eventfd, which the supervisor polls.
 * Each side sleeps only after announcing it ("sleeping" flag, seq_cst) and
 * re-checking the sequence word, so a wake-up is never lost (the Dekker
 * pattern of platform.h's cci_fence_seq_cst). Only one request is ever in
 * flight per channel, so req[] and resp[] are never written while the
 * other side reads them.
 *
 * Larger payloads go through two more memfds per worker, the input area
 * (written by the parent) and the output area (written by the worker),
 * grown with ftruncate by their writer and sealed against shrinking, so a
 * mapping never loses its pages under the reader (no SIGBUS, whatever the
 * other side does). The parent treats everything the worker wrote as
 * untrusted: it copies the response out of shared memory before decoding
 * it and checks every length against the real size of the area.
 */
#ifndef CCI_POOL_INTERNAL_H
#define CCI_POOL_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "concur/process.h"
#include "process/wire.h"

#define CCI_CHAN_REQ_CAP (CCI_TASK_HEADER + CCI_TASK_NAME_MAX + CC_PROCESS_POOL_INLINE)
#define CCI_CHAN_RESP_CAP (CCI_TASK_HEADER + CCI_MESSAGE_MAX + CC_PROCESS_POOL_INLINE)

struct cci_chan {
    /* parent -> worker; own cache line */
    uint32_t req_seq;
    uint32_t worker_sleeping;
    uint64_t req_len;
    uint8_t pad0[64 - 16];
    /* worker -> parent; own cache line */
    uint32_t resp_seq;
    uint32_t parent_sleeping;
    uint64_t resp_len;
    uint8_t pad1[64 - 16];
    uint8_t req[CCI_CHAN_REQ_CAP];
    uint8_t resp[CCI_CHAN_RESP_CAP];
};

#define CCI_CHAN_SIZE (((sizeof(struct cci_chan)) + 4095) & ~(size_t)4095)

/* The worker's argument bytes: this header, then the initializer's name
 * and argument. */
#define CCI_WORKER_MAGIC 0x4b524f57u /* "WORK" */
struct cci_worker_config {
    uint32_t magic;
    int32_t chan_fd, in_fd, out_fd, event_fd;
    uint32_t init_name_len; /* 0: no initializer */
    uint64_t init_arg_len;
    uint64_t memory_limit;
    uint64_t max_payload;
};

/* The id of the worker's first response: its initializer's outcome. */
#define CCI_READY_ID 0

/* How long each side spins for the next message before sleeping. */
#define CCI_POOL_SPIN_NS (100 * 1000)

int cci_pool_worker_main(void *arg, size_t len);

#endif /* CCI_POOL_INTERNAL_H */
