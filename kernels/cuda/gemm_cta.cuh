/* kernels/cuda/gemm_cta.cuh — the CTA of the pipelined MMA GEMM (gemm.cu gemm_pipe), Y[M][rows]
 * = X[M][cols] W^T with f16 X, as a template over the thread context (vt_simt_dev on the GPU; the
 * emulated CTA of tests/kernels/simt_host.cuh in tests/kernels/gemm_cta_host.cu), so that its
 * barriers, cp.async pipeline, ldmatrix fragments and mma.sync run on the host too.
 *
 * CTA: 256 threads = 8 warps, a 128 (X rows) x 128 (W rows) output tile; warp w computes the
 * 64 x 32 sub-tile (w >> 2, w & 3) as 4 x 4 mma.sync.m16n8k16 (f16 in, f32 accumulate) per 16
 * columns of K, fragments by ldmatrix. K goes in steps of 64 columns (two 32-value units of W).
 * Per step, S stages deep by cp.async (no registers hold the data in flight):
 *   - the X tile, 128 rows x 64 f16, straight into the stage the MMAs read (rows padded to 72
 *     halves: the 8 rows of an ldmatrix hit 8 different bank groups);
 *   - W's stored bytes of the step's two units, 128 rows (row-blocked formats; nf4_dq and 2:4
 *     rows, whose bytes are not row-local or not unit-contiguous, are decoded from global memory
 *     in the dequantize phase instead).
 * Dequantize phase: thread t decodes unit t & 1 of tile row t >> 1 from the staged bytes (the
 * formats' own decoders, dequant_dev.cuh) into an f16 W tile, double-buffered, so one barrier
 * per step serves all the hazards:
 *
 *   step k: wait (stage k + 1 landed) | barrier | copies of step k + S - 1 into the stage step
 *           k - 1 used | dequantize step k + 1 into W tile (k + 1) & 1 | MMAs of step k on X
 *           stage k and W tile k & 1
 *
 * The old kernel (mma_tile.cuh, gemm.cu gemm_mma) decoded W from global memory per step with no
 * overlap and 64 x 64 tiles: 4-14% of cuBLAS on an H100 (docs/BENCHMARKS.md). */
#ifndef VT_GEMM_CTA_CUH
#define VT_GEMM_CTA_CUH

#include "dq_tile.cuh"  /* vt_dqt_chunk */
#include "mma_tile.cuh" /* vt_mma_st2, vt_mma_st128, vt_mma_row64, vt_mma_store */

#define GP_BM      128 /* X rows per CTA */
#define GP_BN      128 /* W rows per CTA */
#define GP_BK      64  /* K columns per step */
#define GP_SK      72  /* halves per shared tile row (BK + 8) */
#define GP_THREADS 256
/* the largest dynamic shared memory of any sm_80+ part is 227 KiB (sm_90); 4 stages are taken
 * where they fit the A100's 163 KiB */
#define GP_SMEM_4STAGE (163 * 1024)

template <int F, bool SPARSE> struct gp_geom {
    /* W bytes staged per step: F's row-local, unit-contiguous formats */
    static constexpr bool STAGED = !SPARSE && F != VT_FMT_NF4_DQ;
    static constexpr int BE = vt_fmt_traits<F>::BE, BB = vt_fmt_traits<F>::BB;
    /* the bytes of a step's two units (a whole block when blocks hold >= 64 values), plus the
     * misalignment of their first byte, in 16-byte chunks */
    static constexpr int SPAN = BE <= 64 ? 64 / BE * BB : BB;
    static constexpr int RS = STAGED ? (SPAN + 15 + 15) / 16 * 16 : 16;
    static constexpr int XT = GP_BM * GP_SK * 2, WT = GP_BN * GP_SK * 2, WB = GP_BN * RS;
    static constexpr int bytes(int s) { return 128 + s * XT + 2 * WT + (STAGED ? s * WB : 0); }
    static constexpr int S = bytes(4) <= GP_SMEM_4STAGE ? 4 : 3;
};

template <int F, bool SPARSE> struct gp_smem {
    using G = gp_geom<F, SPARSE>;
    float lut[32];
    alignas(16) __half xs[G::S][GP_BM * GP_SK];          /* X stages */
    alignas(16) __half ws[2][GP_BN * GP_SK];             /* dequantized W tiles */
    alignas(16) uint8_t wb[G::STAGED ? G::S : 1][G::WB]; /* W stored bytes stages */
};

/* Thread tid's copies of step s: X rows m0.. (f16, 16-byte aligned with cols % 8 == 0 when xa,
 * else loaded and stored through registers), and W's stored bytes of units 2 s, 2 s + 1 of
 * rows n0.. */
#pragma nv_exec_check_disable
template <int F, bool SPARSE, class CX>
VT_HD void gp_issue(CX &cx, const vt_kp &p, const __half *X, uint64_t M, bool xa, uint64_t m0,
                    uint64_t n0, uint64_t s, int tid, gp_smem<F, SPARSE> &sm, int stage) {
    using G = gp_geom<F, SPARSE>;
    { /* X: thread -> row tid / 2, 32 columns = four 16-byte chunks */
        const int xr = tid >> 1, xc = (tid & 1) * 32;
        const uint64_t m = m0 + xr, col = 64 * s + xc;
        __half *dst = sm.xs[stage] + xr * GP_SK + xc;
        const __half *src = X + m * p.cols + col;
        if (xa) {
            VT_UNROLL
            for (int i = 0; i < 4; i++) {
                const bool in = m < M && col + 8 * i < p.cols; /* cols % 8 == 0 */
                cx.cp16(dst + 8 * i, in ? (const void *)(src + 8 * i) : (const void *)X, in);
            }
        } else {
            VT_UNROLL
            for (int i = 0; i < 32; i += 2) {
                const float a = m < M && col + i < p.cols ? __half2float(src[i]) : 0.0f;
                const float b = m < M && col + i + 1 < p.cols ? __half2float(src[i + 1]) : 0.0f;
                vt_mma_st2(dst + i, a, b);
            }
        }
    }
    if constexpr (G::STAGED) { /* W: two threads per tile row */
        const int wr = tid >> 1;
        const uint64_t n = n0 + wr, units = vt_units(p.cols);
        if (n < p.rows && 2 * s < units) {
            const uint64_t b0 = vt_dq_unit_off<F>(2 * s);
            const uint64_t b1 = vt_units_end<F>(2 * s + 2, units, p.row_bytes);
            vt_stage_async(cx, sm.wb[stage] + wr * G::RS, p.data, p.bytes, n * p.row_bytes + b0,
                           (uint32_t)(b1 - b0), tid & 1, 2);
        }
    }
}

/* Thread tid's share of dequantizing step s's W tile (rows n0..) into wt (f16, [BN][SK]):
 * unit tid & 1 of row tid >> 1 from the staged bytes; nf4_dq units and 2:4 rows (the first 128
 * threads, a 64-column piece each) from global memory. Zeros past rows and cols. */
template <int F, bool SPARSE>
VT_HD void gp_dequant(const vt_kp &p, const vt_dq_ctx &c, uint64_t n0, uint64_t s, int tid,
                      const gp_smem<F, SPARSE> &sm, int stage, __half *wt) {
    using G = gp_geom<F, SPARSE>;
    if constexpr (SPARSE) {
        if (tid < GP_BN) vt_mma_row64<F, true>(p, c, n0 + tid, s, wt + tid * GP_SK);
    } else {
        const int wr = tid >> 1, half = tid & 1;
        const uint64_t n = n0 + wr, u = 2 * s + half;
        float v[32];
        if (n < p.rows && 32 * u < p.cols) {
            if constexpr (F == VT_FMT_NF4_DQ) {
                vt_dq_unit_nf4dq(p.data, p.bpr, n, u, c, v);
            } else {
                uint64_t b0;
                const uint32_t sh = vt_stage_at<F>(p, n, 2 * s, &b0);
                vt_dq_unit<F>(sm.wb[stage] + wr * G::RS + sh + (vt_dq_unit_off<F>(u) - b0), u,
                              32 * u, c, v);
            }
            VT_UNROLL
            for (int i = 0; i < 32; i++)
                if (32 * u + i >= p.cols) v[i] = 0.0f; /* a block's padding decodes to anything */
        } else {
            VT_UNROLL
            for (int i = 0; i < 32; i++) v[i] = 0.0f;
        }
        VT_UNROLL
        for (int q = 0; q < 4; q++) /* 16-byte stores: 8 threads cover all 8 bank groups */
            vt_mma_st128(wt + wr * GP_SK + 32 * half + 8 * q, vt_dqt_chunk<1>(v, q));
    }
}

/* Warp w's MMAs of one step: X tile xt, W tile wt. */
#pragma nv_exec_check_disable
template <class CX>
VT_HD void gp_mma_step(CX &cx, const __half *xt, const __half *wt, int warp, int lane,
                       float acc[4][4][4]) {
    const int wm = warp >> 2, wn = warp & 3;
    VT_UNROLL
    for (int kk = 0; kk < GP_BK; kk += 16) {
        uint32_t b[2][4]; /* ldmatrix .x4 of two 8-row blocks: (b0, b1) of block 2 jp, 2 jp + 1 */
        VT_UNROLL
        for (int jp = 0; jp < 2; jp++) {
            const int n = wn * 32 + 16 * jp + (lane >> 4) * 8 + (lane & 7);
            cx.ldsm_x4(b[jp], wt + n * GP_SK + kk + ((lane >> 3) & 1) * 8);
        }
        VT_UNROLL
        for (int i = 0; i < 4; i++) {
            uint32_t a[4]; /* rows 0-7 / 8-15 at k 0-7, then at k 8-15: the A fragment order */
            cx.ldsm_x4(a, xt + (wm * 64 + 16 * i + (lane & 15)) * GP_SK + kk + (lane >> 4) * 8);
            VT_UNROLL
            for (int j = 0; j < 4; j++)
                cx.template mma<__half>(acc[i][j], a, b[j >> 1][2 * (j & 1)],
                                        b[j >> 1][2 * (j & 1) + 1]);
        }
    }
}

/* Whether X takes cp.async (gp_issue's xa): 16-byte aligned, cols % 8 == 0. */
VT_HD bool gp_xa(const void *X, uint64_t cols) {
    return cols % 8 == 0 && ((uintptr_t)X & 15) == 0;
}

/* CTA (bm, bn): output rows m0 = 128 bm.., columns n0 = 128 bn... xa: gp_xa(X, cols). */
#pragma nv_exec_check_disable
template <int F, bool SPARSE, bool YH, class CX>
VT_HD void gp_cta_body(CX &cx, const vt_kp &p, const __half *X, void *Y, uint64_t M, bool xa,
                       gp_smem<F, SPARSE> &sm, uint64_t bm, uint64_t bn) {
    constexpr int S = gp_geom<F, SPARSE>::S;
    const int tid = cx.tid(), warp = tid / 32, lane = tid % 32;
    vt_dq_lut_fill(sm.lut, tid); /* visible after the first barrier */
    const uint64_t m0 = bm * GP_BM, n0 = bn * GP_BN, nst = (p.cols + GP_BK - 1) / GP_BK;
    const vt_dq_ctx c = {sm.lut, p.tensor_scale, p.aux, p.cols};
    float acc[4][4][4];
    VT_UNROLL
    for (int i = 0; i < 4; i++) VT_UNROLL
    for (int j = 0; j < 4; j++) VT_UNROLL
    for (int e = 0; e < 4; e++) acc[i][j][e] = 0.0f;

    /* group s of this thread's copies holds step s (empty past the last step, so that the
     * counts below hold to the end) */
    for (int s = 0; s < S - 1; s++) {
        if ((uint64_t)s < nst) gp_issue<F, SPARSE>(cx, p, X, M, xa, m0, n0, s, tid, sm, s);
        cx.commit();
    }
    cx.template wait<S - 2>(); /* step 0 */
    cx.sync();
    gp_dequant<F, SPARSE>(p, c, n0, 0, tid, sm, 0, sm.ws[0]);
    for (uint64_t k = 0; k < nst; k++) {
        cx.template wait<S - 3>(); /* step k + 1 landed (groups k + 2 .. k + S - 2 may not) */
        /* this thread's stores of W tile k and its copies of step k + 1 visible to all; every
         * warp is done with step k - 1's X stage and W tile */
        cx.sync();
        if (k + S - 1 < nst)
            gp_issue<F, SPARSE>(cx, p, X, M, xa, m0, n0, k + S - 1, tid, sm,
                                (int)((k + S - 1) % S));
        cx.commit();
        if (k + 1 < nst)
            gp_dequant<F, SPARSE>(p, c, n0, k + 1, tid, sm, (int)((k + 1) % S), sm.ws[(k + 1) & 1]);
        gp_mma_step(cx, sm.xs[k % S], sm.ws[k & 1], warp, lane, acc);
    }
    vt_mma_store<YH, 4, 4, 4>(Y, M, p.rows, m0, n0, warp, lane, acc);
}

#endif
