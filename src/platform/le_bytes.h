/*
 * le_bytes.h — fixed-width little-endian integers in byte buffers, for every
 * message format that crosses a process or a machine boundary (the process
 * pool's wire format, MPI messages). Byte by byte, so alignment and host
 * byte order never matter; compilers turn each into one load or store.
 */
#ifndef CCI_LE_BYTES_H
#define CCI_LE_BYTES_H

#include <stdint.h>

static inline void cci_put16_le(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static inline void cci_put32_le(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static inline void cci_put64_le(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static inline uint16_t cci_get16_le(const uint8_t *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}

static inline uint32_t cci_get32_le(const uint8_t *p)
{
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

static inline uint64_t cci_get64_le(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

#endif /* CCI_LE_BYTES_H */
