/*
 * image_filter.c — a CPU-bound image filter (repeated 3x3 box blur of a
 * grayscale image) cut into horizontal bands, one task per band, run by a
 * pool of worker processes; then the same sequentially, to compare.
 *
 * The Python it mirrors (the seeds' "image processing: multiprocessing"):
 *
 *     def blur_band(args):             # rows with a halo, returns rows
 *         ...
 *     with ProcessPoolExecutor() as ex:
 *         bands = ex.map(blur_band, split(image), chunksize=1)
 *         result = join(bands)
 *
 * Each band travels as bytes: a small header and the band's rows plus
 * `passes` rows of halo on each side (the rows a pass needs from the
 * neighbours), so every band is computed exactly as in the sequential
 * run; the program checks that the two images are identical.
 *
 * In C, threads would do this job as well (no GIL); processes earn their
 * cost when the filter is untrusted, may crash, or needs a time or memory
 * limit. See docs/process.md.
 *
 * Usage: image_filter [SIZE] [PASSES] [BANDS]   (default 1024 8 8)
 */
#include <concur.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct band_header {
    uint32_t width, rows;  /* rows in the buffer, halo included */
    uint32_t skip_top;     /* halo rows above the band */
    uint32_t out_rows;     /* rows to return */
    uint32_t passes;
};

/* passes 3x3 box blurs of a w x h buffer, clamping at its edges. */
static int blur(uint8_t *img, uint32_t w, uint32_t h, uint32_t passes)
{
    uint8_t *tmp = malloc((size_t)w * h);
    if (!tmp)
        return -ENOMEM;
    for (uint32_t p = 0; p < passes; p++) {
        for (uint32_t y = 0; y < h; y++) {
            uint32_t y0 = y ? y - 1 : 0, y1 = y + 1 < h ? y + 1 : y;
            for (uint32_t x = 0; x < w; x++) {
                uint32_t x0 = x ? x - 1 : 0, x1 = x + 1 < w ? x + 1 : x;
                unsigned sum = 0;
                for (uint32_t yy = y0; yy <= y1; yy++)
                    for (uint32_t xx = x0; xx <= x1; xx++)
                        sum += img[(size_t)yy * w + xx];
                tmp[(size_t)y * w + x] =
                    (uint8_t)(sum / ((y1 - y0 + 1) * (x1 - x0 + 1)));
            }
        }
        memcpy(img, tmp, (size_t)w * h);
    }
    free(tmp);
    return 0;
}

static int blur_band(const void *in, size_t len, void **out, size_t *out_len)
{
    struct band_header hd;
    if (len < sizeof hd)
        return cc_task_fail(-EINVAL, "short band");
    memcpy(&hd, in, sizeof hd);
    if (hd.width == 0 || len - sizeof hd != (size_t)hd.width * hd.rows ||
        hd.skip_top + hd.out_rows > hd.rows)
        return cc_task_fail(-EINVAL, "malformed band");
    uint8_t *buf = malloc(len - sizeof hd);
    if (!buf)
        return -ENOMEM;
    memcpy(buf, (const uint8_t *)in + sizeof hd, len - sizeof hd);
    if (blur(buf, hd.width, hd.rows, hd.passes) < 0) {
        free(buf);
        return -ENOMEM;
    }
    /* Keep only the band itself. */
    memmove(buf, buf + (size_t)hd.skip_top * hd.width,
            (size_t)hd.out_rows * hd.width);
    *out = buf;
    *out_len = (size_t)hd.out_rows * hd.width;
    return 0;
}
CC_TASK_REGISTER(blur_band);

int main(int argc, char **argv)
{
    uint32_t size = argc > 1 ? (uint32_t)atoi(argv[1]) : 1024;
    uint32_t passes = argc > 2 ? (uint32_t)atoi(argv[2]) : 8;
    uint32_t nbands = argc > 3 ? (uint32_t)atoi(argv[3]) : 8;
    if (size < 16 || size > 16384 || passes > 64 || nbands < 1 ||
        nbands > size) {
        fprintf(stderr, "usage: image_filter [SIZE] [PASSES] [BANDS]\n");
        return 2;
    }
    cc_process_init();
    size_t npix = (size_t)size * size;
    uint8_t *image = malloc(npix), *seq = malloc(npix), *par = malloc(npix);
    if (!image || !seq || !par)
        return 1;
    uint32_t r = 12345;
    for (size_t i = 0; i < npix; i++) {
        r = r * 1103515245u + 12345u; /* noise plus a gradient */
        image[i] = (uint8_t)((r >> 16) % 64 + (i % size) * 191 / size);
    }

    /* Sequential. */
    memcpy(seq, image, npix);
    int64_t t0 = cc_monotonic_ns();
    blur(seq, size, size, passes);
    double t_seq = (double)(cc_monotonic_ns() - t0) / 1e9;

    /* Bands over processes. */
    cc_executor *ex;
    int rc = cc_process_pool_new(&ex, NULL);
    if (rc < 0) {
        fprintf(stderr, "cc_process_pool_new: %s\n", cc_strerror(rc));
        return 1;
    }
    /* Timed from the first submit: the workers' start-up counts. */
    cc_future **fs = calloc(nbands, sizeof *fs);
    void **inputs = calloc(nbands, sizeof *inputs);
    size_t *lens = calloc(nbands, sizeof *lens);
    if (!fs || !inputs || !lens)
        return 1;
    t0 = cc_monotonic_ns();
    uint32_t step = (size + nbands - 1) / nbands;
    for (uint32_t b = 0; b < nbands; b++) {
        uint32_t y0 = b * step, y1 = y0 + step < size ? y0 + step : size;
        if (y0 >= y1)
            break;
        uint32_t top = y0 >= passes ? y0 - passes : 0;
        uint32_t bottom = y1 + passes <= size ? y1 + passes : size;
        struct band_header hd = {size, bottom - top, y0 - top, y1 - y0,
                                 passes};
        lens[b] = sizeof hd + (size_t)hd.rows * size;
        inputs[b] = malloc(lens[b]);
        if (!inputs[b])
            return 1;
        memcpy(inputs[b], &hd, sizeof hd);
        memcpy((uint8_t *)inputs[b] + sizeof hd, image + (size_t)top * size,
               (size_t)hd.rows * size);
        rc = cc_executor_submit_bytes(ex, CC_TASK(blur_band), inputs[b],
                                      lens[b], &fs[b]);
        if (rc < 0) {
            fprintf(stderr, "submit: %s\n", cc_strerror(rc));
            return 1;
        }
    }
    for (uint32_t b = 0; b < nbands && fs[b]; b++) {
        const void *data;
        size_t len;
        rc = cc_future_result_bytes(fs[b], CC_FOREVER, &data, &len);
        if (rc < 0) {
            fprintf(stderr, "band %u: %s: %s\n", b, cc_strerror(rc),
                    cc_future_error_message(fs[b]));
            return 1;
        }
        memcpy(par + (size_t)b * step * size, data, len);
        cc_future_unref(fs[b]);
        free(inputs[b]);
    }
    double t_par = (double)(cc_monotonic_ns() - t0) / 1e9;
    int same = memcmp(seq, par, npix) == 0;
    printf("%ux%u image, %u passes of a 3x3 blur, %u bands\n", size, size,
           passes, nbands);
    printf("sequential:          %.3f s\n", t_seq);
    printf("process pool (%u):    %.3f s  (%.2fx, worker start-up "
           "included)\n",
           cc_executor_max_workers(ex), t_par, t_seq / t_par);
    printf("results identical:   %s\n", same ? "yes" : "NO");
    cc_executor_free(ex);
    free(fs);
    free(inputs);
    free(lens);
    free(image);
    free(seq);
    free(par);
    return same ? 0 : 1;
}
