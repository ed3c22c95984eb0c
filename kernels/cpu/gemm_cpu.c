/* kernels/cpu/gemm_cpu.c — host GEMM, Y = X W^T with W in any stored format: GEMM_RT weight rows
 * decoded VT_KC columns at a time into a stack buffer and multiplied with GEMM_MC rows of X per
 * task; work is spread over (row tile, X tile) pairs with vt_parallel_for. */
#include <string.h>

#include "kern_internal.h"

#define GEMM_RT 8  /* weight rows decoded together */
#define GEMM_MC 32 /* rows of X per task */

typedef struct gemm_job {
    vt_kdesc d;
    vt_kdecode_fn dec;
    const void *X;
    vt_dtype xt, yt;
    void *Y;
    uint64_t M, ntr, nmc;
} gemm_job;

static int gemm_task(void *ctx, uint64_t t, int tid) {
    gemm_job *j = ctx;
    float buf[GEMM_RT][VT_KC];
    float acc[GEMM_MC][GEMM_RT];
    const uint64_t cols = j->d.cols, rows = j->d.rows;
    uint64_t r0 = (t / j->nmc) * GEMM_RT, m0 = (t % j->nmc) * GEMM_MC;
    uint32_t nr = (uint32_t)(rows - r0 < GEMM_RT ? rows - r0 : GEMM_RT);
    uint32_t nm = (uint32_t)(j->M - m0 < GEMM_MC ? j->M - m0 : GEMM_MC);
    memset(acc, 0, sizeof acc);
    for (uint64_t k0 = 0; k0 < cols; k0 += VT_KC) {
        uint32_t n = (uint32_t)(cols - k0 < VT_KC ? cols - k0 : VT_KC);
        for (uint32_t r = 0; r < nr; r++) j->dec(&j->d, r0 + r, k0, n, buf[r]);
        for (uint32_t m = 0; m < nm; m++) {
            uint64_t xo = (m0 + m) * cols + k0;
            for (uint32_t r = 0; r < nr; r++)
                acc[m][r] += j->xt == VT_DTYPE_F32
                                 ? vt_kdot_f32(buf[r], (const float *)j->X + xo, n)
                                 : vt_kdot_f16(buf[r], (const uint16_t *)j->X + xo, n);
        }
    }
    for (uint32_t m = 0; m < nm; m++)
        for (uint32_t r = 0; r < nr; r++) {
            uint64_t yo = (m0 + m) * rows + r0 + r;
            if (j->yt == VT_DTYPE_F32)
                ((float *)j->Y)[yo] = acc[m][r];
            else
                ((uint16_t *)j->Y)[yo] = vt_f32_to_f16(acc[m][r]);
        }
    return 0;
}

int vt_cpu_gemm(const vt_weight *w, const void *X, vt_dtype xt, void *Y, vt_dtype yt, uint64_t M) {
    gemm_job j;
    int rc = vt_kdesc_init(&j.d, w, "vt_gemm");
    if (rc) return rc;
    j.dec = vt_kdecode_get(&j.d, 1);
    j.X = X;
    j.xt = xt;
    j.yt = yt;
    j.Y = Y;
    j.M = M;
    j.ntr = (j.d.rows + GEMM_RT - 1) / GEMM_RT;
    j.nmc = (M + GEMM_MC - 1) / GEMM_MC;
    return vt_parallel_for(j.ntr * j.nmc, gemm_task, &j, 0);
}
