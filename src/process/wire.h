/*
 * wire.h — the byte formats that cross a process boundary, and their
 * decoders. Every decoder takes untrusted bytes (another process may be
 * buggy, crashed half-way, or hostile), checks every length against what
 * is actually there before using it, and never reads out of bounds; the
 * fuzz target in fuzz/ feeds them arbitrary input.
 *
 * Integers are little-endian on the wire (the same byte order on every
 * machine this runs on today; the MPI back-end will need it spelled out).
 */
#ifndef CCI_WIRE_H
#define CCI_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- message frames (cc_conn) ----------------------------------------------
 * 16 bytes: magic "CCM1" (u32), flags (u32, must be 0), length (u64). */
#define CCI_FRAME_MAGIC 0x314d4343u
#define CCI_FRAME_HEADER 16

void cci_frame_encode(uint8_t hdr[CCI_FRAME_HEADER], uint64_t len);
/* Returns 0 with the body length in *len, -EPROTO (bad magic or flags) or
 * -EMSGSIZE (longer than max). */
int cci_frame_decode(const uint8_t hdr[CCI_FRAME_HEADER], uint64_t max,
                     uint64_t *len);

/* ---- task messages (process pool) ---------------------------------------------
 * Request (parent -> worker):
 *   u32 magic "CCT1" | u32 kind (1 = run, 2 = exit) | u64 task id |
 *   u32 name length n (1..CCI_TASK_NAME_MAX) | u32 flags (bit 0: the
 *   payload is in a separate segment, not inline) | u64 payload length |
 *   n name bytes | payload bytes (inline only)
 * Response (worker -> parent):
 *   u32 magic "CCR1" | i32 status (0 or a negative code) | u64 task id |
 *   u32 message length m | u32 flags (bit 0 as above) | u64 result length |
 *   m message bytes | result bytes (inline only)
 */
#define CCI_TASK_MAGIC 0x31544343u
#define CCI_RESULT_MAGIC 0x31524343u
#define CCI_TASK_HEADER 32
#define CCI_TASK_NAME_MAX 128
#define CCI_MESSAGE_MAX 4096
#define CCI_WIRE_OUT_OF_LINE 1u

enum cci_task_kind { CCI_TASK_RUN = 1, CCI_TASK_EXIT = 2 };

struct cci_task_view {
    uint32_t kind;
    uint64_t id;
    const char *name; /* not NUL-terminated: name_len bytes */
    uint32_t name_len;
    bool out_of_line;
    uint64_t payload_len;
    const uint8_t *payload; /* NULL when out of line */
};

struct cci_result_view {
    int32_t status;
    uint64_t id;
    const char *message; /* message_len bytes, may be 0 */
    uint32_t message_len;
    bool out_of_line;
    uint64_t result_len;
    const uint8_t *result; /* NULL when out of line */
};

/* Size of an encoded request/response with these parts inline. */
size_t cci_task_encoded_size(size_t name_len, size_t inline_len);

/* Encodes into buf (cap bytes); returns the size written, or -EMSGSIZE.
 * An inline payload or result given as NULL is left for the caller to
 * write in place (after the header and the name or message). */
long cci_task_encode(uint8_t *buf, size_t cap, uint32_t kind, uint64_t id,
                     const char *name, size_t name_len, bool out_of_line,
                     const void *payload, uint64_t payload_len);
long cci_result_encode(uint8_t *buf, size_t cap, int32_t status, uint64_t id,
                       const char *message, size_t message_len,
                       bool out_of_line, const void *result,
                       uint64_t result_len);

/* Decode len bytes at buf. Return 0, or -EPROTO for anything malformed:
 * bad magic or kind, a length running past len, trailing bytes, a name
 * empty or too long, a status >= 0 with a message, a positive status. An
 * out-of-line payload's length is only bounded by max_payload here. */
int cci_task_decode(const uint8_t *buf, size_t len, uint64_t max_payload,
                    struct cci_task_view *out);
int cci_result_decode(const uint8_t *buf, size_t len, uint64_t max_payload,
                      struct cci_result_view *out);

/* ---- batches (map over bytes; map_bytes.c) ----------------------------------
 * Input:  u32 magic "CCB1" | u32 name length | u64 count |
 *         name | count x u64 length | the elements, back to back
 * Output: u32 magic "CCB2" | i32 status | u64 done | u64 failed_at |
 *         u32 message length | u32 0 | done x u64 length |
 *         the outputs, back to back | message
 * In host byte order, unlike the above: with the MPI pool a batch does
 * cross to other machines, which is why its handshake refuses ranks of
 * another byte order (mpi_internal.h). */
#define CCI_BATCH_IN_MAGIC 0x31424343u
#define CCI_BATCH_OUT_MAGIC 0x32424343u
#define CCI_BATCH_IN_HEADER 16
#define CCI_BATCH_OUT_HEADER 32

struct cci_batch_view {
    int32_t status;      /* 0, or the code of element `done` */
    uint64_t done;       /* outputs present */
    const uint8_t *lens; /* done x u64 */
    const uint8_t *data; /* the outputs, back to back */
    const char *message; /* message_len bytes */
    uint32_t message_len;
};

/* Decodes the output of a batch of count elements. Returns 0 or -EPROTO
 * (bad magic, inconsistent status/done/failed_at, a length running past
 * the end, bytes left over). */
int cci_batch_out_decode(const uint8_t *buf, size_t len, uint64_t count,
                         struct cci_batch_view *out);

#endif /* CCI_WIRE_H */
