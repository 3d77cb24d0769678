/*
 * libFuzzer target for every decoder of bytes that cross a process
 * boundary (src/process/wire.c): pool task requests and responses, Pipe
 * message headers, batch outputs. The first input byte picks the decoder;
 * the rest is the message. Besides "never crash, never read out of
 * bounds" (AddressSanitizer watches), it checks that whatever decodes
 * encodes back to the very same bytes, so a decoder cannot accept
 * something the encoder would never produce.
 *
 *   clang -fsanitize=fuzzer,address,undefined -I src fuzz/fuzz_wire.c \
 *         src/process/wire.c -o fuzz_wire && ./fuzz_wire -max_total_time=10
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "process/wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_task(const uint8_t *b, size_t n)
{
    struct cci_task_view t;
    if (cci_task_decode(b, n, (uint64_t)1 << 30, &t) != 0)
        return;
    uint8_t *again = malloc(n ? n : 1);
    long k = cci_task_encode(again, n, t.kind, t.id, t.name, t.name_len,
                             t.out_of_line, t.payload, t.payload_len);
    if (k != (long)n || memcmp(again, b, n) != 0)
        abort();
    free(again);
}

static void check_result(const uint8_t *b, size_t n)
{
    struct cci_result_view r;
    if (cci_result_decode(b, n, (uint64_t)1 << 30, &r) != 0)
        return;
    uint8_t *again = malloc(n ? n : 1);
    long k = cci_result_encode(again, n, r.status, r.id, r.message,
                               r.message_len, r.out_of_line, r.result,
                               r.result_len);
    if (k != (long)n || memcmp(again, b, n) != 0)
        abort();
    free(again);
}

static void check_frame(const uint8_t *b, size_t n)
{
    if (n < CCI_FRAME_HEADER)
        return;
    uint64_t len;
    if (cci_frame_decode(b, 1 << 20, &len) != 0)
        return;
    uint8_t again[CCI_FRAME_HEADER];
    cci_frame_encode(again, len);
    if (memcmp(again, b, CCI_FRAME_HEADER) != 0 || len > (1 << 20))
        abort();
}

static void check_batch(const uint8_t *b, size_t n)
{
    if (n < 2)
        return;
    uint64_t count = (uint64_t)b[0] | (uint64_t)b[1] << 8;
    struct cci_batch_view v;
    if (cci_batch_out_decode(b + 2, n - 2, count, &v) != 0)
        return;
    /* Walk the outputs as the map does: all inside the buffer. */
    const uint8_t *end = b + n, *p = v.data;
    for (uint64_t i = 0; i < v.done; i++) {
        uint64_t l;
        memcpy(&l, v.lens + i * 8, 8);
        if (l > (uint64_t)(end - p))
            abort();
        p += l;
    }
    if (p + v.message_len != end || (const uint8_t *)v.message != p)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    const uint8_t *b = data + 1;
    size_t n = size - 1;
    /* A private copy: decoders must not depend on what follows. */
    uint8_t *copy = malloc(n ? n : 1);
    memcpy(copy, b, n);
    switch (data[0] % 4) {
    case 0:
        check_task(copy, n);
        break;
    case 1:
        check_result(copy, n);
        break;
    case 2:
        check_frame(copy, n);
        break;
    case 3:
        check_batch(copy, n);
        break;
    }
    free(copy);
    return 0;
}
