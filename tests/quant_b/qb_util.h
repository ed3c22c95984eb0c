/* tests/quant_b/qb_util.h — helpers shared by the quant-B tests: input patterns with the edge
 * cases real weights have, row-op drivers and an independent SQNR (f64, not metrics.c). */
#ifndef VT_TEST_QB_UTIL_H
#define VT_TEST_QB_UTIL_H

#include "quant/quant_internal.h"
#include "vt_test.h"

enum { QB_NORMAL, QB_ZERO_BLOCKS, QB_OUTLIER, QB_DENORMAL, QB_MIXED_SCALE, QB_TIES, QB_NPATTERNS };
static const char *qb_pattern_name[QB_NPATTERNS] = {"normal",   "zero-blocks", "outlier",
                                                    "denormal", "mixed-scale", "ties"};

/* Fill n values with pattern @p pat (fresh random each call). */
static inline void qb_fill(float *x, uint64_t n, int pat) {
    for (uint64_t i = 0; i < n; i++) x[i] = vt_rand_normal();
    switch (pat) {
    case QB_ZERO_BLOCKS: /* runs of zeros of random length at random places (incl. -0.0) */
        for (uint64_t i = 0; i < n; i++)
            if ((i / 16) % 3 == 1 || (i / 64) % 4 == 2) x[i] = (vt_rand_u64() & 1) ? 0.0f : -0.0f;
        break;
    case QB_OUTLIER:
        if (n) x[vt_rand_u64() % n] = (vt_rand_u64() & 1 ? 1 : -1) * 3.0e4f;
        if (n > 1) x[vt_rand_u64() % n] = 1.0e30f;
        break;
    case QB_DENORMAL:
        for (uint64_t i = 0; i < n; i++) x[i] *= 1e-39f; /* subnormal f32 */
        if (n > 3) x[vt_rand_u64() % n] = 1.4e-45f;
        break;
    case QB_MIXED_SCALE: /* each 16-run at a random scale 2^[-30, 30] */
        for (uint64_t i = 0; i < n; i += 16) {
            float s = ldexpf(1.0f, (int)(vt_rand_u64() % 61) - 30);
            for (uint64_t k = i; k < n && k < i + 16; k++) x[k] *= s;
        }
        break;
    case QB_TIES: /* small integers and halves: many exact ties and equal magnitudes */
        for (uint64_t i = 0; i < n; i++) x[i] = (float)((int)(vt_rand_u64() % 25) - 12) * 0.5f;
        break;
    default:
        break;
    }
}

static inline double qb_sqnr(const float *x, const float *y, uint64_t n) {
    double s = 0, e = 0;
    for (uint64_t i = 0; i < n; i++) {
        double d = (double)x[i] - (double)y[i];
        s += (double)x[i] * x[i];
        e += d * d;
    }
    return e == 0 ? INFINITY : 10.0 * log10(s / e);
}

static const int qb_cols[] = {1,  3,   15,  16,  17,  31,  32,  33,  63,   64,
                              65, 127, 128, 129, 200, 255, 256, 257, 1000, 4099};
#define QB_NCOLS (sizeof qb_cols / sizeof qb_cols[0])

/* Compare the fast row ops of @p ops with the reference on every pattern and ragged width:
 * quantized bytes equal, dequantized floats bit-equal, nothing written past cols values. */
static inline void qb_check_fast_eq_ref(const char *name, const vt_qrow_ops *ops,
                                        uint64_t block_elems, uint64_t block_bytes,
                                        const vt_quant_params *p) {
    for (int pat = 0; pat < QB_NPATTERNS; pat++) {
        for (size_t ci = 0; ci < QB_NCOLS; ci++) {
            uint64_t cols = (uint64_t)qb_cols[ci];
            uint64_t nb = (cols + block_elems - 1) / block_elems, nbytes = nb * block_bytes;
            float *x = malloc((cols + 8) * sizeof(float));
            float *y0 = malloc((cols + 8) * sizeof(float)),
                  *y1 = malloc((cols + 8) * sizeof(float));
            uint8_t *q0 = malloc(nbytes + 1), *q1 = malloc(nbytes + 1);
            qb_fill(x, cols, pat);
            memset(q0, 0xAB, nbytes + 1);
            memset(q1, 0xCD, nbytes + 1);
            ops->quantize_ref(x, q0, cols, p);
            ops->quantize(x, q1, cols, p);
            CHECKF(memcmp(q0, q1, nbytes) == 0, "%s: fast quantize != ref (pattern %s, cols %llu)",
                   name, qb_pattern_name[pat], (unsigned long long)cols);
            CHECKF(q0[nbytes] == 0xAB && q1[nbytes] == 0xCD, "%s: quantize wrote past the row",
                   name);
            for (uint64_t i = 0; i < cols + 8; i++) y0[i] = y1[i] = -7.25f;
            ops->dequantize_ref(q0, y0, cols, p);
            ops->dequantize(q0, y1, cols, p);
            CHECKF(memcmp(y0, y1, cols * sizeof(float)) == 0,
                   "%s: fast dequantize != ref (pattern %s, cols %llu)", name, qb_pattern_name[pat],
                   (unsigned long long)cols);
            CHECKF(y0[cols] == -7.25f && y1[cols] == -7.25f, "%s: dequantize wrote past cols",
                   name);
            int finite = 1;
            for (uint64_t i = 0; i < cols; i++) finite &= isfinite(y0[i]) != 0;
            CHECKF(finite, "%s: non-finite output (pattern %s, cols %llu)", name,
                   qb_pattern_name[pat], (unsigned long long)cols);
            free(x), free(y0), free(y1), free(q0), free(q1);
        }
    }
}

/* Dequantize random block bytes (finite scales: @p fix clears NaN scale codes in place) with the
 * fast and the reference path: decoders must agree on every stored value, not only on what the
 * quantizer writes. */
static inline void qb_check_dequant_random(const char *name, const vt_qrow_ops *ops,
                                           uint64_t block_elems, uint64_t block_bytes,
                                           const vt_quant_params *p, void (*fix)(uint8_t *blk)) {
    for (size_t ci = 0; ci < QB_NCOLS; ci++) {
        uint64_t cols = (uint64_t)qb_cols[ci], nb = (cols + block_elems - 1) / block_elems;
        uint8_t *q = malloc(nb * block_bytes);
        float *y0 = malloc(cols * sizeof(float)), *y1 = malloc(cols * sizeof(float));
        for (uint64_t i = 0; i < nb * block_bytes; i++) q[i] = (uint8_t)vt_rand_u64();
        for (uint64_t b = 0; b < nb; b++) fix(q + b * block_bytes);
        ops->dequantize_ref(q, y0, cols, p);
        ops->dequantize(q, y1, cols, p);
        CHECKF(memcmp(y0, y1, cols * sizeof(float)) == 0,
               "%s: fast != ref dequantizing random blocks (cols %llu)", name,
               (unsigned long long)cols);
        free(q), free(y0), free(y1);
    }
}

/* SQNR of the ops' fast path on n N(0,1) values quantized as rows of @p cols. */
static inline double qb_sqnr_normal(const vt_qrow_ops *ops, uint64_t block_elems,
                                    uint64_t block_bytes, const vt_quant_params *p, uint64_t n,
                                    uint64_t cols) {
    uint64_t rows = n / cols, nb = (cols + block_elems - 1) / block_elems;
    float *x = malloc(rows * cols * sizeof(float)), *y = malloc(rows * cols * sizeof(float));
    uint8_t *q = malloc(nb * block_bytes);
    for (uint64_t i = 0; i < rows * cols; i++) x[i] = vt_rand_normal();
    for (uint64_t r = 0; r < rows; r++) {
        ops->quantize(x + r * cols, q, cols, p);
        ops->dequantize(q, y + r * cols, cols, p);
    }
    double s = qb_sqnr(x, y, rows * cols);
    free(x), free(y), free(q);
    return s;
}

#endif
