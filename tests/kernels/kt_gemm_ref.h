/* tests/kernels/kt_gemm_ref.h — the f64 reference of the tensor-core GEMM paths (MMA and cuBLAS),
 * which round each dequantized weight to f16 by design (vtstore/kernels.h): compared against it,
 * only f32 accumulation and the output's rounding remain, so a 1e-3 relative bound holds for
 * any shape (against the unrounded reference, a short row with cancellation can exceed it). */
#ifndef VT_KT_GEMM_REF_H
#define VT_KT_GEMM_REF_H

#include "kern_test_util.h"

/* y[b][r] = sum_k f16(deq[r][k]) x[b][k] in f64. */
static inline void kt_ref_gemm_f16w(const kt_weight *k, const float *x, uint64_t batch, double *y) {
    float *w = malloc(k->cols * sizeof(float));
    for (uint64_t r = 0; r < k->rows; r++) {
        for (uint64_t c = 0; c < k->cols; c++)
            w[c] = vt_f16_to_f32(vt_f32_to_f16(k->deq[r * k->cols + c]));
        for (uint64_t b = 0; b < batch; b++) {
            double s = 0;
            for (uint64_t c = 0; c < k->cols; c++) s += (double)w[c] * x[b * k->cols + c];
            y[b * k->rows + r] = s;
        }
    }
    free(w);
}

/* One GEMM case of M rows: X in f32 and f16 (the same f16-representable values), result buffers
 * Y / Yh, the f64 reference and the f16-weight reference. */
typedef struct kt_gemm_case {
    uint64_t M;
    float *X, *Y;      /* [M][cols], [M][rows] */
    uint16_t *Xh, *Yh; /* f16 bits, same shapes */
    double *ref, *ref16;
} kt_gemm_case;

static inline void kt_gemm_case_make(kt_gemm_case *g, const kt_weight *k, uint64_t M) {
    const uint64_t R = k->rows, C = k->cols;
    g->M = M;
    g->X = malloc(M * C * 4);
    g->Y = malloc(M * R * 4);
    g->Xh = malloc(M * C * 2);
    g->Yh = malloc(M * R * 2);
    g->ref = malloc(M * R * 8);
    g->ref16 = malloc(M * R * 8);
    for (uint64_t i = 0; i < M * C; i++) {
        g->Xh[i] = vt_f32_to_f16(vt_rand_normal());
        g->X[i] = vt_f16_to_f32(g->Xh[i]);
    }
    kt_ref_gemv(k, g->X, M, g->ref);
    kt_ref_gemm_f16w(k, g->X, M, g->ref16);
}

static inline void kt_gemm_case_free(kt_gemm_case *g) {
    free(g->X);
    free(g->Y);
    free(g->Xh);
    free(g->Yh);
    free(g->ref);
    free(g->ref16);
}

/* Check the result (in Yh when @p yh, else Y) of a tensor-core GEMM: relative error <= 1e-3
 * against the f16-weight reference and <= 1e-2 against the unrounded one. */
static inline void kt_gemm_case_check(kt_gemm_case *g, const kt_weight *k, int yh,
                                      const char *what) {
    const uint64_t n = g->M * k->rows;
    if (yh) vt_f16_to_f32_row(g->Yh, g->Y, n);
    double e = kt_rel_err(g->Y, g->ref16, n), e0 = kt_rel_err(g->Y, g->ref, n);
    CHECKF(e <= 1e-3 && e0 <= 1e-2,
           "%s %llux%llu M=%llu Y %s: rel err %.3g (%.3g against unrounded weights)", what,
           (unsigned long long)k->rows, (unsigned long long)k->cols, (unsigned long long)g->M,
           yh ? "f16" : "f32", e, e0);
}

#endif
