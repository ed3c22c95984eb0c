/* tests/kernels/kt_gemm_ref.h — references and error bounds for the GPU GEMV (kt_gemv_err) and
 * for the tensor-core GEMM paths (MMA and cuBLAS), which round each dequantized weight to f16 by
 * design (vtstore/kernels.h). The GEMM checks, like the GEMV one, are safe against cancellation
 * in short dot products (the plain relative error of one output summed from 32 terms is
 * unbounded when the terms nearly cancel):
 *   ||Y - ref16|| <= 1e-3 ||ref16|| + 1e-5 ||absref||  (f32 accumulation, f16 output rounding)
 *   ||Y - ref||   <= 1e-3 ||absref||                   (plus the f16 rounding of each weight,
 *                                                        at most 2^-11 of every |w x| term)
 * with ref16 the f64 product of the f16-rounded weights, ref the exact one, and absref[i] =
 * sum_k |w_ik x_k|. */
#ifndef VT_KT_GEMM_REF_H
#define VT_KT_GEMM_REF_H

#include "kern_test_util.h"

/* y[b][r] = sum_k f16(deq[r][k]) x[b][k] and a[b][r] = sum_k |deq[r][k] x[b][k]|, in f64. */
static inline void kt_ref_gemm_f16w(const kt_weight *k, const float *x, uint64_t batch, double *y,
                                    double *a) {
    float *w = malloc(k->cols * sizeof(float));
    for (uint64_t r = 0; r < k->rows; r++) {
        const float *d = k->deq + r * k->cols;
        for (uint64_t c = 0; c < k->cols; c++) w[c] = vt_f16_to_f32(vt_f32_to_f16(d[c]));
        for (uint64_t b = 0; b < batch; b++) {
            double s = 0, sa = 0;
            for (uint64_t c = 0; c < k->cols; c++) {
                s += (double)w[c] * x[b * k->cols + c];
                sa += fabs((double)d[c] * x[b * k->cols + c]);
            }
            y[b * k->rows + r] = s;
            a[b * k->rows + r] = sa;
        }
    }
    free(w);
}

/* ||y - ref|| (infinite when y has a NaN or Inf) and ||ref|| over n values. */
static inline void kt_err_norms(const float *y, const double *ref, uint64_t n, double *diff,
                                double *norm) {
    double d = 0, r = 0;
    for (uint64_t i = 0; i < n; i++) {
        if (!isfinite(y[i])) d = INFINITY;
        d += (y[i] - ref[i]) * (y[i] - ref[i]);
        r += ref[i] * ref[i];
    }
    *diff = sqrt(d);
    *norm = sqrt(r);
}

/* a[b][r] = sum_k |deq[r][k] x[b][k]| in f64. */
static inline void kt_ref_abs(const kt_weight *k, const float *x, uint64_t batch, double *a) {
    for (uint64_t b = 0; b < batch; b++)
        for (uint64_t r = 0; r < k->rows; r++) {
            double s = 0;
            for (uint64_t c = 0; c < k->cols; c++)
                s += fabs((double)k->deq[r * k->cols + c] * x[b * k->cols + c]);
            a[b * k->rows + r] = s;
        }
}

/* GEMV bound: ||y - ref|| <= 1e-3 ||ref|| + atol ||absref|| (+ ||bi|| when bi, the integer
 * kernel's x-quantization bound of kt_int_bound, is given); returns ||y - ref|| / ||ref|| for the
 * message, or a negative value when the bound fails. */
static inline double kt_gemv_err_tol(const float *y, const double *ref, const double *absref,
                                     const double *bi, uint64_t n, double atol) {
    double d, nr, na = 0, nb = 0;
    kt_err_norms(y, ref, n, &d, &nr);
    for (uint64_t i = 0; i < n; i++) na += absref[i] * absref[i];
    for (uint64_t i = 0; bi && i < n; i++) nb += bi[i] * bi[i];
    double e = nr > 0 ? d / nr : d;
    return d <= 1e-3 * nr + atol * sqrt(na) + sqrt(nb) ? e : -(e > 0 ? e : 1e-300);
}
/* The integer kernel's nf4 (VT_GEMV_LUT=int) takes each NF4 level L as round(16383 L) / 16383,
 * within 2.2e-4 of its value relatively (worst: -0.0911 as -0.09107; 0 and +-1 exact), so each
 * term w x is off by at most 2.2e-4 |w x| and a row by 2.2e-4 sum |w x|: on a short row whose
 * sum cancels (1 x 32) that exceeded the default 1e-5 term (relative error 0.024 with seed
 * 2385049882). */
#define KT_NF4_LUT_ATOL 2.5e-4
/* The bound for f32 weights and f32 accumulation: atol 1e-5, no bi. */
static inline double kt_gemv_err(const float *y, const double *ref, const double *absref,
                                 uint64_t n) {
    return kt_gemv_err_tol(y, ref, absref, NULL, n, 1e-5);
}
/* An integer GEMV kernel's error from quantizing x (each x off by at most max |x| / div over
 * its group of g columns: the GPU kernel's 32-column units, div 65534 (kernels.h); awq_int4's x
 * divided by its channel scales s first), per vector b and row r: the sum over groups u of
 * max_u |x_i / s_i| / div times sum_u |w_ri s_i|
 * (w x = (w s)(x / s)). A short row whose sum cancels (1 x 32) can exceed the 1e-5 |W| |x| term
 * by this alone (awq_int4, whose x / s spreads wider than x: relative error 0.0043 once in six
 * seeds). */
static inline void kt_int_bound_g(const kt_weight *k, const float *x, uint64_t batch, double *bi,
                                  uint64_t g, double div) {
    const uint64_t R = k->rows, C = k->cols;
    const float *s = VT_FMT_BASE(k->fmt) == VT_FMT_AWQ_INT4 ? k->scales : NULL;
    for (uint64_t b = 0; b < batch; b++)
        for (uint64_t r = 0; r < R; r++) {
            double t = 0;
            for (uint64_t u0 = 0; u0 < C; u0 += g) {
                double am = 0, sw = 0;
                for (uint64_t i = u0; i < u0 + g && i < C; i++) {
                    const double si = s ? s[i] : 1.0;
                    am = fmax(am, fabs(x[b * C + i] / si));
                    sw += fabs((double)k->deq[r * C + i] * si);
                }
                t += am / div * sw;
            }
            bi[b * R + r] = t;
        }
}
/* the GPU integer kernel: 32-column units, each x off by at most 2^-16 of the unit's max */
static inline void kt_int_bound(const kt_weight *k, const float *x, uint64_t batch, double *bi) {
    kt_int_bound_g(k, x, batch, bi, 32, 65534.0);
}

/* One GEMM case of M rows: X in f32 and f16 (the same f16-representable values), result buffers
 * Y / Yh, and the three references. */
typedef struct kt_gemm_case {
    uint64_t M;
    float *X, *Y;      /* [M][cols], [M][rows] */
    uint16_t *Xh, *Yh; /* f16 bits, same shapes */
    double *ref, *ref16, *absref;
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
    g->absref = malloc(M * R * 8);
    for (uint64_t i = 0; i < M * C; i++) {
        g->Xh[i] = vt_f32_to_f16(vt_rand_normal());
        g->X[i] = vt_f16_to_f32(g->Xh[i]);
    }
    kt_ref_gemv(k, g->X, M, g->ref);
    kt_ref_gemm_f16w(k, g->X, M, g->ref16, g->absref);
}

static inline void kt_gemm_case_free(kt_gemm_case *g) {
    free(g->X);
    free(g->Y);
    free(g->Xh);
    free(g->Yh);
    free(g->ref);
    free(g->ref16);
    free(g->absref);
}

/* Check the result (in Yh when @p yh, else Y) of a tensor-core GEMM with the two bounds above. */
static inline void kt_gemm_case_check(kt_gemm_case *g, const kt_weight *k, int yh,
                                      const char *what) {
    const uint64_t n = g->M * k->rows;
    if (yh) vt_f16_to_f32_row(g->Yh, g->Y, n);
    double d16, n16, d0, n0, na = 0;
    kt_err_norms(g->Y, g->ref16, n, &d16, &n16);
    kt_err_norms(g->Y, g->ref, n, &d0, &n0);
    for (uint64_t i = 0; i < n; i++) na += g->absref[i] * g->absref[i];
    na = sqrt(na);
    CHECKF(d16 <= 1e-3 * n16 + 1e-5 * na && d0 <= 1e-3 * na,
           "%s %llux%llu M=%llu Y %s: rel err %.3g against the f16-weight reference, %.3g "
           "against the exact one (%.3g of sum |w x|)",
           what, (unsigned long long)k->rows, (unsigned long long)k->cols, (unsigned long long)g->M,
           yh ? "f16" : "f32", d16 / n16, d0 / n0, d0 / na);
}

#endif
