/* tests/kernels/kern_test_util.h — random quantized weights of every format for the kernel
 * tests, and error measures against an f64 reference. */
#ifndef VT_KERN_TEST_UTIL_H
#define VT_KERN_TEST_UTIL_H

#include <errno.h>

#include "vt_test.h"
#include "vtstore/blocks.h"
#include "vtstore/kernels.h"

/* A quantized weight with its host bytes, params and dequantized values (the oracle). */
typedef struct kt_weight {
    uint32_t fmt;
    uint64_t rows, cols;
    uint8_t *q;    /* vt_quant_bytes */
    float *scales; /* awq channel scales [cols] or NULL */
    float *deq;    /* [rows][cols] from vt_dequantize_ref */
    vt_quant_params p;
    vt_weight w;
} kt_weight;

static inline uint16_t kt_rand_f16(float lo, float hi) {
    return vt_f32_to_f16((float)(lo + (hi - lo) * vt_rand_uniform()));
}

/* q4_k / q6_k cannot be written by the library: fill blocks with random codes and scales. */
static inline void kt_fill_kquant(uint32_t base, uint8_t *q, uint64_t nblocks) {
    for (uint64_t b = 0; b < nblocks; b++) {
        if (base == VT_FMT_Q4_K) {
            vt_block_q4_k *k = (vt_block_q4_k *)q + b;
            k->d = kt_rand_f16(0.001f, 0.01f);
            k->dmin = kt_rand_f16(0.001f, 0.01f);
            for (int i = 0; i < VT_K_SCALE_SIZE; i++) k->scales[i] = (uint8_t)vt_rand_u64();
            for (int i = 0; i < VT_QK_K / 2; i++) k->qs[i] = (uint8_t)vt_rand_u64();
        } else {
            vt_block_q6_k *k = (vt_block_q6_k *)q + b;
            for (int i = 0; i < VT_QK_K / 2; i++) k->ql[i] = (uint8_t)vt_rand_u64();
            for (int i = 0; i < VT_QK_K / 4; i++) k->qh[i] = (uint8_t)vt_rand_u64();
            for (int i = 0; i < VT_QK_K / 16; i++)
                k->scales[i] = (int8_t)(vt_rand_u64() % 255 - 127);
            k->d = kt_rand_f16(0.0005f, 0.002f);
        }
    }
}

/* Make a rows x cols weight of format fmt from N(0,1) data. Returns 0 or an error code. */
static inline int kt_make(kt_weight *k, uint32_t fmt, uint64_t rows, uint64_t cols) {
    memset(k, 0, sizeof *k);
    k->fmt = fmt;
    k->rows = rows;
    k->cols = cols;
    uint32_t base = VT_FMT_BASE(fmt);
    vt_quant_params_init(&k->p);
    uint64_t nb = vt_quant_bytes(fmt, rows, cols);
    k->q = calloc(nb ? nb : 1, 1);
    k->deq = malloc(rows * cols * sizeof(float));
    if (base == VT_FMT_AWQ_INT4) {
        k->scales = malloc(cols * sizeof(float));
        for (uint64_t j = 0; j < cols; j++) k->scales[j] = (float)(0.5 + 1.5 * vt_rand_uniform());
        k->p.channel_scale = k->scales;
        k->p.channel_count = cols;
    }
    int rc = 0;
    if (base == VT_FMT_Q4_K || base == VT_FMT_Q6_K) {
        if (fmt & VT_FMT_SPARSE24) return VT_EUNSUPPORTED;
        kt_fill_kquant(base, k->q, nb / vt_format_get(base)->block_bytes);
    } else {
        float *w = malloc(rows * cols * sizeof(float));
        for (uint64_t i = 0; i < rows * cols; i++) w[i] = vt_rand_normal();
        rc = vt_quant_observe(fmt, &k->p, w, rows * cols);
        if (!rc) rc = vt_quantize_ref(fmt, &k->p, w, rows, cols, k->q);
        free(w);
    }
    if (!rc) rc = vt_dequantize_ref(fmt, &k->p, k->q, rows, cols, k->deq);
    vt_weight_host(&k->w, k->q, fmt, rows, cols, &k->p);
    return rc;
}

static inline void kt_free(kt_weight *k) {
    free(k->q);
    free(k->scales);
    free(k->deq);
}

/* Calls @p fn with a fresh random weight of every format and its 2:4 variant (none for nf4_dq,
 * q4_k, q6_k) at each of @p shapes (rows, cols), with the shape's index; a format the quant
 * library of this tree lacks is reported and skipped. */
typedef void (*kt_case_fn)(const kt_weight *k, const char *nm, size_t shape, void *ctx);
static inline void kt_for_each_weight(const uint64_t (*shapes)[2], size_t nshapes, kt_case_fn fn,
                                      void *ctx) {
    for (uint32_t f = 0; f < VT_FMT_COUNT; f++)
        for (int sp = 0; sp < 2; sp++) {
            uint32_t fmt = f | (sp ? VT_FMT_SPARSE24 : 0);
            if (sp && (f == VT_FMT_NF4_DQ || f == VT_FMT_Q4_K || f == VT_FMT_Q6_K)) continue;
            char nm[48];
            vt_format_name(fmt, nm, sizeof nm);
            for (size_t s = 0; s < nshapes; s++) {
                kt_weight k;
                int rc = kt_make(&k, fmt, shapes[s][0], shapes[s][1]);
                if (rc == VT_EUNSUPPORTED && strstr(vt_last_error(), "not available")) {
                    printf("%s: not available in the quant library, skipped\n", nm);
                    kt_free(&k);
                    break;
                }
                CHECKF(rc == 0, "%s: making test weight: %s %s", nm, vt_strerror(rc),
                       vt_last_error());
                if (rc == 0) fn(&k, nm, s, ctx);
                kt_free(&k);
            }
        }
}

/* y_ref[b][r] = sum_k deq[r][k] x[b][k] in f64. */
static inline void kt_ref_gemv(const kt_weight *k, const float *x, uint64_t batch, double *y) {
    for (uint64_t b = 0; b < batch; b++)
        for (uint64_t r = 0; r < k->rows; r++) {
            double s = 0;
            const float *w = k->deq + r * k->cols;
            for (uint64_t c = 0; c < k->cols; c++) s += (double)w[c] * x[b * k->cols + c];
            y[b * k->rows + r] = s;
        }
}

/* ||y - ref|| / ||ref|| over n values; NaN anywhere gives +inf. */
static inline double kt_rel_err(const float *y, const double *ref, uint64_t n) {
    double num = 0, den = 0;
    for (uint64_t i = 0; i < n; i++) {
        if (!isfinite(y[i])) return INFINITY;
        num += (y[i] - ref[i]) * (y[i] - ref[i]);
        den += ref[i] * ref[i];
    }
    return den > 0 ? sqrt(num / den) : sqrt(num);
}

static inline void kt_poison(float *p, uint64_t n) {
    for (uint64_t i = 0; i < n; i++) p[i] = NAN;
}

#endif
