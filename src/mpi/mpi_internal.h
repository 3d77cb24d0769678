/*
 * mpi_internal.h — what the two sides of the MPI pool share: the messages
 * on the pool's communicator, the start-up handshake, and the worker loop.
 *
 * Who talks to whom. Rank 0 (the program) owns the futures; its pool
 * thread ("comm thread") makes every MPI call of that rank. Each other
 * rank runs the worker loop in its own pool thread. All traffic goes
 * between rank 0 and one worker, on a duplicate of MPI_COMM_WORLD, so it
 * never mixes with the program's own MPI messages:
 *
 *   rank 0 -> worker  TAG_TASK     a task request of process/wire.h: RUN
 *                                  (id, registered name, input) or EXIT
 *                     TAG_CONTROL  SKIP: u32 "CCX1" | u32 1 | u64 id —
 *                                  do not run requests with id <= this
 *                                  (the rank was retired, see mpi_pool.c)
 *   worker -> rank 0  TAG_RESULT   a result of process/wire.h (id, status,
 *                                  message, output), one per RUN request,
 *                                  in the order the requests came. An
 *                                  output above CCI_MPI_INLINE_MAX is out
 *                                  of line (wire.h's flag): the result
 *                                  carries its length, and
 *                     TAG_DATA     the output itself follows, sent from the
 *                                  task's own buffer and received into the
 *                                  one the future will own (no copy on
 *                                  either side besides MPI's)
 *                     TAG_BYE      empty: the worker saw EXIT and leaves
 *
 * MPI keeps messages between two ranks in order when they can match the
 * same receive; both sides receive with MPI_ANY_TAG, so a SKIP sent after
 * some requests is seen after them, and EXIT after every request.
 *
 * Every message is checked before use: wire.h's decoders bound every
 * length, and rank 0 also checks that a result answers the oldest request
 * it sent to that rank. A rank that sends anything else is retired (its
 * tasks fail with -EPROTO), as a worker process that misbehaves would be.
 * The integers of these messages are little-endian, as wire.h's; the
 * batches that map_bytes.c nests inside them are in host order, which is
 * why the handshake refuses ranks of another byte order.
 */
#ifndef CCI_MPI_INTERNAL_H
#define CCI_MPI_INTERNAL_H

#include <mpi.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CCI_MPI_TAG_TASK 1
#define CCI_MPI_TAG_CONTROL 2
#define CCI_MPI_TAG_RESULT 3
#define CCI_MPI_TAG_BYE 4
#define CCI_MPI_TAG_DATA 5

/* Outputs larger than this go out of line (TAG_DATA). */
#define CCI_MPI_INLINE_MAX ((size_t)64 * 1024)

#define CCI_MPI_CONTROL_MAGIC 0x31584343u /* "CCX1" */
#define CCI_MPI_CONTROL_SKIP 1u
#define CCI_MPI_CONTROL_SIZE 16

/* ---- the start-up handshake -------------------------------------------------
 * Every rank sends rank 0 a hello (MPI_Gather); rank 0 checks them all
 * and broadcasts its verdict and the pool's settings (MPI_Bcast), so every
 * rank returns the same answer from cc_mpi_pool_new.
 *   hello:  u32 "CCH1" | u32 protocol version | u32 0x01020304 in host
 *           order (byte order) | u16 sizeof(void *) | u16 sizeof(size_t)
 *   config: u32 "CCC1" | i32 status (0 or the error every rank returns) |
 *           u32 window | u32 0 | u64 max_payload
 */
#define CCI_MPI_HELLO_MAGIC 0x31484343u  /* "CCH1" */
#define CCI_MPI_CONFIG_MAGIC 0x31434343u /* "CCC1" */
#define CCI_MPI_PROTOCOL 1u
#define CCI_MPI_HELLO_SIZE 16
#define CCI_MPI_CONFIG_SIZE 24

struct cci_mpi_config {
    int32_t status;
    uint32_t window;
    uint64_t max_payload;
};

void cci_mpi_hello_encode(uint8_t out[CCI_MPI_HELLO_SIZE]);
/* Whether a hello comes from a rank that can share tasks with this one. */
bool cci_mpi_hello_ok(const uint8_t in[CCI_MPI_HELLO_SIZE]);
void cci_mpi_config_encode(uint8_t out[CCI_MPI_CONFIG_SIZE],
                           const struct cci_mpi_config *c);
/* Returns 0, or -EPROTO for a malformed block. */
int cci_mpi_config_decode(const uint8_t in[CCI_MPI_CONFIG_SIZE],
                          struct cci_mpi_config *c);

void cci_mpi_control_encode(uint8_t out[CCI_MPI_CONTROL_SIZE], uint32_t kind,
                            uint64_t id);
/* Returns 0 with kind and id, or -EPROTO. */
int cci_mpi_control_decode(const uint8_t *in, size_t len, uint32_t *kind,
                           uint64_t *id);

/* Stores id into an encoded request (wire.h's layout: the u64 at offset
 * 8), which submit encodes before the id is known. */
void cci_mpi_request_set_id(uint8_t *request, uint64_t id);

/* Writes "MPI_Xxx failed: <MPI's text>" into buf. */
void cci_mpi_describe(int mpi_err, const char *call, char *buf, size_t cap);

/* ---- waiting without MPI's help --------------------------------------------
 * Both sides poll MPI with non-blocking calls: keep polling for a while
 * after the last message (back-to-back tasks never sleep), then sleep with
 * a doubling pause, as mpi4py.futures does, so an idle rank costs little
 * CPU.
 *
 * The polling rounds call sched_yield: ranks are often oversubscribed
 * (more ranks and threads than cores), and a pure spinner there keeps the
 * thread it waits for off the CPU for a whole scheduler slice (measured:
 * 3.3 ms per round trip instead of tens of us).
 *
 * The polling window adapts to the last idle gap (the time from going idle
 * to the next message): about twice the longer of the last two gaps, between
 * CCI_MPI_SPIN_MIN_NS and CCI_MPI_SPIN_MAX_NS, and the minimum after a gap
 * longer than the maximum. Measured on 2 vCPUs: a fixed 100 us window made
 * round trips bistable (15-30 us while every gap stayed under it, 90-170 us
 * once one did not, since each sleep adds its pause plus an idle-vCPU wake-up
 * of 60-70 us to the next gap); a fixed 1 ms window fixed that but stole a
 * fifth of the CPU from a map whose chunks take milliseconds. Short gaps
 * (back-to-back round trips) now keep the thread polling, long ones
 * (chunks of a map) send it to sleep at once. */
struct cci_mpi_backoff {
    int64_t idle_since; /* 0: not idle */
    int64_t pause_ns;
    int64_t pause_max; /* the longest pause */
    int64_t window;    /* how long to poll before the first pause */
    int64_t last_gap;
};

#define CCI_MPI_SPIN_MIN_NS 20000   /* 20 us */
#define CCI_MPI_SPIN_MAX_NS 1000000 /* 1 ms */
#define CCI_MPI_PAUSE_MIN_NS 10000  /* 10 us */
/* An idle worker rank: the first task after a quiet spell waits up to
 * this for the rank to look. */
#define CCI_MPI_PAUSE_WORKER_NS 1000000 /* 1 ms */
/* Rank 0 with tasks in flight: bounds how late a result is picked up. A
 * 1 ms pause here cost a quarter of a 4 ms map; 200 us costs about 5000
 * short wake-ups a second while tasks run. */
#define CCI_MPI_PAUSE_RANK0_NS 200000 /* 200 us */

static inline void cci_mpi_backoff_init(struct cci_mpi_backoff *b,
                                        int64_t pause_max)
{
    b->idle_since = 0;
    b->pause_ns = 0;
    b->pause_max = pause_max;
    b->window = CCI_MPI_SPIN_MAX_NS;
    b->last_gap = 0;
}

/* Something happened at now: the next idle spell starts with polling. */
void cci_mpi_backoff_reset(struct cci_mpi_backoff *b, int64_t now);

/* After a round that found nothing: returns 0 while still polling, or
 * the nanoseconds to pause now (and doubles the next pause). */
int64_t cci_mpi_backoff_next(struct cci_mpi_backoff *b, int64_t now);

/* ---- large buffers kept for reuse -----------------------------------------
 * The buffers each side owns from allocation to free — rank 0's encoded
 * requests, a worker's received requests — are recycled when they are
 * large: a fresh multi-megabyte malloc is a fresh mmap, and touching it
 * costs a page fault and a page clear per 4 KiB (a tenth of rank 0's CPU in
 * a map of tiny tasks, whose chunks are megabytes). Buffers handed to the
 * program (a future's output) are plain malloc'd memory and never come
 * here. At most CCI_MPI_CACHE_BYTES are kept; the cache is thread-safe.
 * Slots: a map has 4 chunks per worker rank, all sent at once with the
 * default window, so rank 0 holds 8 request buffers with 2 workers (4
 * slots let half of them go back to the system after every map: 16 MB of
 * page faults per map of 2 M elements). */
#define CCI_MPI_CACHE_SLOTS 16
#define CCI_MPI_CACHE_MIN ((size_t)256 * 1024)
#define CCI_MPI_CACHE_BYTES ((size_t)64 << 20)

struct cci_mpi_cache {
    pthread_mutex_t lock;
    void *slot[CCI_MPI_CACHE_SLOTS]; /* cci_mpi_buf_alloc blocks, or NULL */
    size_t bytes;                    /* kept in the slots */
};

void cci_mpi_cache_init(struct cci_mpi_cache *c);
/* Frees every kept buffer and the lock. */
void cci_mpi_cache_destroy(struct cci_mpi_cache *c);

/* size bytes (a recycled buffer of at least that size, or a new one), or
 * NULL. Free it only with cci_mpi_buf_free. */
void *cci_mpi_buf_alloc(struct cci_mpi_cache *c, size_t size);
/* Keeps p for reuse, or frees it. NULL is ignored. */
void cci_mpi_buf_free(struct cci_mpi_cache *c, void *p);

/* ---- the worker side (mpi_worker.c) -----------------------------------------
 * Serves tasks from rank 0 on comm until EXIT. Runs in the pool thread of
 * a worker rank, which is the thread that calls MPI there. Returns 0, or
 * -EIO after an MPI call failed (a line went to stderr). */
int cci_mpi_serve(MPI_Comm comm, int rank, const struct cci_mpi_config *cfg);

/* Tests (test_mpi.c) reach the pool's communicator through this to inject
 * malformed messages: only from the thread running a task on a worker rank
 * (the one thread that may call MPI there); MPI_COMM_NULL elsewhere. */
MPI_Comm cci_mpi_worker_comm(void);

#endif /* CCI_MPI_INTERNAL_H */
