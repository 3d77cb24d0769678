/* mpi_common.c — the handshake and control messages of mpi_internal.h,
 * the polling back-off, and cc_mpi_launched. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "concur/mpi.h"
#include "mpi/mpi_internal.h"
#include "platform/le_bytes.h"

void cci_mpi_hello_encode(uint8_t out[CCI_MPI_HELLO_SIZE])
{
    uint32_t probe = 0x01020304u;
    cci_put32_le(out, CCI_MPI_HELLO_MAGIC);
    cci_put32_le(out + 4, CCI_MPI_PROTOCOL);
    memcpy(out + 8, &probe, 4); /* host order, on purpose */
    cci_put16_le(out + 12, (uint16_t)sizeof(void *));
    cci_put16_le(out + 14, (uint16_t)sizeof(size_t));
}

bool cci_mpi_hello_ok(const uint8_t in[CCI_MPI_HELLO_SIZE])
{
    uint8_t mine[CCI_MPI_HELLO_SIZE];
    cci_mpi_hello_encode(mine);
    return memcmp(in, mine, CCI_MPI_HELLO_SIZE) == 0;
}

void cci_mpi_config_encode(uint8_t out[CCI_MPI_CONFIG_SIZE],
                           const struct cci_mpi_config *c)
{
    cci_put32_le(out, CCI_MPI_CONFIG_MAGIC);
    cci_put32_le(out + 4, (uint32_t)c->status);
    cci_put32_le(out + 8, c->window);
    cci_put32_le(out + 12, 0);
    cci_put64_le(out + 16, c->max_payload);
}

int cci_mpi_config_decode(const uint8_t in[CCI_MPI_CONFIG_SIZE],
                          struct cci_mpi_config *c)
{
    if (cci_get32_le(in) != CCI_MPI_CONFIG_MAGIC || cci_get32_le(in + 12) != 0)
        return -EPROTO;
    int32_t status = (int32_t)cci_get32_le(in + 4);
    uint32_t window = cci_get32_le(in + 8);
    uint64_t max_payload = cci_get64_le(in + 16);
    if (status > 0)
        return -EPROTO;
    if (status == 0 && (window < 1 || window > CC_MPI_WINDOW_MAX ||
                        max_payload < 1 || max_payload > CC_MPI_PAYLOAD_MAX))
        return -EPROTO;
    *c = (struct cci_mpi_config){status, window, max_payload};
    return 0;
}

void cci_mpi_control_encode(uint8_t out[CCI_MPI_CONTROL_SIZE], uint32_t kind,
                            uint64_t id)
{
    cci_put32_le(out, CCI_MPI_CONTROL_MAGIC);
    cci_put32_le(out + 4, kind);
    cci_put64_le(out + 8, id);
}

int cci_mpi_control_decode(const uint8_t *in, size_t len, uint32_t *kind,
                           uint64_t *id)
{
    if (!in || len != CCI_MPI_CONTROL_SIZE ||
        cci_get32_le(in) != CCI_MPI_CONTROL_MAGIC ||
        cci_get32_le(in + 4) != CCI_MPI_CONTROL_SKIP)
        return -EPROTO;
    *kind = cci_get32_le(in + 4);
    *id = cci_get64_le(in + 8);
    return 0;
}

void cci_mpi_request_set_id(uint8_t *request, uint64_t id)
{
    cci_put64_le(request + 8, id);
}

void cci_mpi_describe(int mpi_err, const char *call, char *buf, size_t cap)
{
    char text[MPI_MAX_ERROR_STRING];
    int len = 0;
    if (MPI_Error_string(mpi_err, text, &len) != MPI_SUCCESS || len <= 0)
        snprintf(text, sizeof text, "MPI error %d", mpi_err);
    snprintf(buf, cap, "%s failed: %s", call, text);
}

void cci_mpi_backoff_reset(struct cci_mpi_backoff *b, int64_t now)
{
    if (b->idle_since) {
        /* The larger of the last two gaps: rank 0's gaps alternate
         * between waiting for a result and waiting for the next submit. */
        int64_t last = now - b->idle_since;
        int64_t gap = last > b->last_gap ? last : b->last_gap;
        b->last_gap = last;
        int64_t w = 2 * gap + CCI_MPI_SPIN_MIN_NS;
        b->window = gap > CCI_MPI_SPIN_MAX_NS ? CCI_MPI_SPIN_MIN_NS
                    : w > CCI_MPI_SPIN_MAX_NS ? CCI_MPI_SPIN_MAX_NS
                                              : w;
    }
    b->idle_since = 0;
    b->pause_ns = 0;
}

int64_t cci_mpi_backoff_next(struct cci_mpi_backoff *b, int64_t now)
{
    if (!b->idle_since) {
        b->idle_since = now;
        return 0;
    }
    if (now - b->idle_since < b->window)
        return 0;
    int64_t p = b->pause_ns ? b->pause_ns : CCI_MPI_PAUSE_MIN_NS;
    b->pause_ns = p * 2 > b->pause_max ? b->pause_max : p * 2;
    return p;
}

/* ---- large buffers kept for reuse -------------------------------------------
 * A block is a 16-byte header holding its capacity, then the buffer (16
 * keeps malloc's alignment). */
#define BUF_HEADER 16

static size_t buf_capacity(const void *p)
{
    size_t cap;
    memcpy(&cap, (const char *)p - BUF_HEADER, sizeof cap);
    return cap;
}

void *cci_mpi_buf_alloc(struct cci_mpi_cache *c, size_t size)
{
    if (size >= CCI_MPI_CACHE_MIN) {
        /* The smallest kept buffer that fits, if it is not more than
         * twice what is asked (a huge one stays for a huge request). */
        pthread_mutex_lock(&c->lock);
        int best = -1;
        for (int i = 0; i < CCI_MPI_CACHE_SLOTS; i++) {
            size_t cap = c->slot[i] ? buf_capacity(c->slot[i]) : 0;
            if (cap >= size && cap / 2 <= size &&
                (best < 0 || cap < buf_capacity(c->slot[best])))
                best = i;
        }
        void *p = NULL;
        if (best >= 0) {
            p = c->slot[best];
            c->slot[best] = NULL;
            c->bytes -= buf_capacity(p);
        }
        pthread_mutex_unlock(&c->lock);
        if (p)
            return p;
    }
    if (size > SIZE_MAX - BUF_HEADER)
        return NULL;
    char *raw = malloc(BUF_HEADER + size);
    if (!raw)
        return NULL;
    memcpy(raw, &size, sizeof size);
    return raw + BUF_HEADER;
}

void cci_mpi_buf_free(struct cci_mpi_cache *c, void *p)
{
    if (!p)
        return;
    size_t cap = buf_capacity(p);
    if (cap >= CCI_MPI_CACHE_MIN && cap <= CCI_MPI_CACHE_BYTES) {
        pthread_mutex_lock(&c->lock);
        for (int i = 0; i < CCI_MPI_CACHE_SLOTS; i++) {
            if (!c->slot[i] && c->bytes + cap <= CCI_MPI_CACHE_BYTES) {
                c->slot[i] = p;
                c->bytes += cap;
                p = NULL;
                break;
            }
        }
        pthread_mutex_unlock(&c->lock);
        if (!p)
            return;
    }
    free((char *)p - BUF_HEADER);
}

void cci_mpi_cache_init(struct cci_mpi_cache *c)
{
    memset(c, 0, sizeof *c);
    pthread_mutex_init(&c->lock, NULL);
}

void cci_mpi_cache_destroy(struct cci_mpi_cache *c)
{
    for (int i = 0; i < CCI_MPI_CACHE_SLOTS; i++)
        if (c->slot[i])
            free((char *)c->slot[i] - BUF_HEADER);
    pthread_mutex_destroy(&c->lock);
}

/* ---- cc_mpi_launched ----------------------------------------------------- */

/* A non-negative int from the environment, or -1. */
static int env_int(const char *name)
{
    const char *s = getenv(name);
    if (!s || !*s)
        return -1;
    char *end;
    long v = strtol(s, &end, 10);
    if (*end || v < 0 || v > 0x7fffffff)
        return -1;
    return (int)v;
}

bool cc_mpi_launched(int *rank, int *size)
{
    /* What the launchers set: Open MPI's mpirun, PMIx (Open MPI 5, Slurm
     * with PMIx), MPICH/Intel MPI's Hydra and Slurm with PMI-1/2. */
    static const char *const rank_vars[] = {"OMPI_COMM_WORLD_RANK", "PMIX_RANK",
                                            "PMI_RANK"};
    static const char *const size_vars[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE"};
    int r = -1, s = -1;
    for (size_t i = 0; i < sizeof rank_vars / sizeof *rank_vars && r < 0; i++)
        r = env_int(rank_vars[i]);
    for (size_t i = 0; i < sizeof size_vars / sizeof *size_vars && s < 0; i++)
        s = env_int(size_vars[i]);
    bool launched = r >= 0 || s >= 0 || getenv("PMIX_NAMESPACE") != NULL;
    if (rank)
        *rank = launched ? r : -1;
    if (size)
        *size = launched ? s : -1;
    return launched;
}
