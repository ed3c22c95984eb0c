/* kernels/cuda/gemv_cta.cuh — the CTA of the staged GEMV kernel (gemv.cu gemv_staged) as a
 * template over the thread context (vt_simt_dev on the GPU; the emulated CTA of
 * tests/kernels/simt_host.cuh in tests/kernels/gemv_cta_host.cu), so that its barriers and its
 * cp.async pipeline run on the host too.
 *
 * W warps per CTA, one row per warp. The row is cut into chunks of 32 units (1024 columns): the
 * x chunk is the CTA's (shared by its W rows), and the warp stages its row's bytes G chunks
 * (one step, about 2 KiB) at a time. Two variants:
 *   sync  (ASYNC false): per step the warp stages its bytes with loads through registers; per
 *         chunk the CTA loads the x chunk, then computes: every load waited for before use.
 *   async (ASYNC true): two stages of both. While chunk k is computed, the x chunk k + 1 and
 *         (at the first chunk of a step) the next step's row bytes are in flight as cp.async
 *         copies, so the loads overlap the decoding and FMAs instead of waiting in turn (x with
 *         AWQ scales to divide, or unaligned, is still loaded synchronously per chunk).
 * The row's partial sums end in a shuffle reduction. */
#ifndef VT_GEMV_CTA_CUH
#define VT_GEMV_CTA_CUH

#include "gemv_lane.cuh"

/* Warps (rows) per CTA: the most of 8, 4, 2, 1 whose row areas and x chunks (4 KiB per vector),
 * two of each when ASYNC, fit the 48 KiB of static shared memory; 0 when none does (ASYNC is
 * then not offered). More rows per CTA means less x traffic from L2 (x is read once per CTA). */
template <int F, int NB, bool ASYNC> struct gv_cfg {
    static constexpr int NBUF = ASYNC ? 2 : 1;
    static constexpr int fits(int w) {
        return NBUF * (w * gv_geom<F>::AREA + NB * GV_XS * 16) + 128 <= 48 * 1024;
    }
    static constexpr int W = fits(8) ? 8 : fits(4) ? 4 : fits(2) ? 2 : fits(1) ? 1 : 0;
};

template <int F, int NB, bool ASYNC> struct gv_smem {
    static constexpr int NBUF = gv_cfg<F, NB, ASYNC>::NBUF, W = gv_cfg<F, NB, ASYNC>::W;
    float lut[32];
    alignas(16) uint8_t area[NBUF][W > 0 ? W : 1][gv_geom<F>::AREA]; /* [stage][warp] row bytes */
    float4 sx[NBUF][NB * GV_XS];                                     /* [stage] x chunk */
};

/* CTA cta of the staged GEMV: y[b][r] for rows r = W cta + warp (a warp past the last row
 * still loads x and meets every barrier). */
#pragma nv_exec_check_disable
template <int F, int NB, bool ASYNC, class CX>
VT_HD void gv_cta_body(CX &cx, const vt_kp &p, const float *x, float *y, int nb, bool xvec,
                       gv_smem<F, NB, ASYNC> &sm, uint64_t cta) {
    constexpr int W = gv_cfg<F, NB, ASYNC>::W, G = gv_geom<F>::G;
    static_assert(W > 0, "no CTA of this kernel fits the static shared memory");
    const int tid = cx.tid(), warp = tid / 32, lane = tid % 32;
    if (tid < 32) sm.lut[tid] = vt_dq_lut_at(tid); /* visible after the first barrier */
    const uint64_t r = cta * W + warp;
    const bool live = r < p.rows; /* warp-uniform */
    const vt_dq_ctx c = gv_ctx_staged(sm.lut, p);
    const uint64_t units = vt_units(p.cols), step = 32 * (uint64_t)G;
    float acc[NB];
    VT_UNROLL
    for (int b = 0; b < NB; b++) acc[b] = 0.0f;

    if constexpr (!ASYNC) {
        for (uint64_t u0 = 0; u0 < units; u0 += step) {
            uint64_t b0 = 0;
            uint32_t sh = 0;
            if (F != VT_FMT_NF4_DQ && live)
                sh = gv_stage_lane<F>(p, r, u0, sm.area[0][warp], lane, &b0);
            for (int g = 0; g < G && u0 + 32 * g < units; g++) {
                cx.sync(); /* every warp is done with the previous x chunk */
                gv_xstage(x, p.aux, p.cols, u0 + 32 * g, nb, xvec, sm.sx[0], tid, W * 32);
                cx.sync(); /* x chunk and this step's staged row bytes visible */
                if (live)
                    gv_unit_lane<F, NB>(p, c, sm.sx[0], r, u0 + 32 * g, b0, sm.area[0][warp], sh,
                                        lane, nb, acc);
            }
            cx.syncwarp(); /* before the next step overwrites the warp's area */
        }
    } else {
        /* chunk k: units [32 k, 32 k + 32), x stage k & 1, row bytes of step k / G in stage
         * (k / G) & 1. Group k of this thread's copies (committed at chunk k) holds x chunk k + 1
         * and, when k starts a step, the next step's row bytes; group -1 (before the loop) chunk
         * 0's x and step 0. wait_group 1 at chunk k leaves only group k in flight. */
        const bool xa = xvec && !p.aux; /* x by cp.async; else loaded per chunk */
        const uint64_t nch = (units + 31) / 32;
        constexpr bool STAGED = F != VT_FMT_NF4_DQ; /* nf4_dq decodes from global memory */
        uint64_t b0s0 = 0, b0s1 = 0;
        uint32_t shs0 = 0, shs1 = 0;
        if (STAGED && live)
            shs0 = gv_stage_lane_async<F>(cx, p, r, 0, sm.area[0][warp], lane, &b0s0);
        if (xa) gv_xstage_async(cx, x, p.cols, 0, nb, sm.sx[0], tid, W * 32);
        cx.commit();
        for (uint64_t k = 0; k < nch; k++) {
            const int xs = (int)(k & 1), ws = (int)((k / G) & 1);
            if (xa && k + 1 < nch) /* into the stage chunk k - 1 used */
                gv_xstage_async(cx, x, p.cols, 32 * (k + 1), nb, sm.sx[xs ^ 1], tid, W * 32);
            if (STAGED && live && k % G == 0 && (k / G + 1) * step < units) {
                /* the next step's row bytes into the stage the last step used */
                uint64_t nb0 = 0;
                uint32_t nsh = gv_stage_lane_async<F>(cx, p, r, (k / G + 1) * step,
                                                      sm.area[ws ^ 1][warp], lane, &nb0);
                if (ws)
                    b0s0 = nb0, shs0 = nsh;
                else
                    b0s1 = nb0, shs1 = nsh;
            }
            cx.commit();
            if (!xa) gv_xstage(x, p.aux, p.cols, 32 * k, nb, xvec, sm.sx[xs], tid, W * 32);
            cx.template wait<1>(); /* this thread's copies for chunk k have landed */
            cx.sync();             /* ... and every other thread's */
            if (live)
                gv_unit_lane<F, NB>(p, c, sm.sx[xs], r, 32 * k, ws ? b0s1 : b0s0, sm.area[ws][warp],
                                    ws ? shs1 : shs0, lane, nb, acc);
            cx.sync(); /* chunk k's stages are free for chunk k + 2's copies */
        }
    }

    if (!live) return;
    VT_UNROLL
    for (int b = 0; b < NB; b++) {
        float s = acc[b];
        VT_UNROLL
        for (int o = 16; o > 0; o >>= 1) s += cx.shfl_xor(s, o);
        if (lane == 0 && b < nb) y[b * p.rows + r] = s;
    }
}

#endif
