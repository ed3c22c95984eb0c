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
 *         AWQ scales to divide, or unaligned, is still loaded synchronously per chunk). Dynamic
 *         shared memory, up to 96 KiB (batch 8).
 * The row's partial sums end in a shuffle reduction. */
#ifndef VT_GEMV_CTA_CUH
#define VT_GEMV_CTA_CUH

#include "gemv_lane.cuh"

/* Warps (rows) per CTA: the most of 8, 4, 2, 1 whose row areas and x chunks (4 KiB per vector)
 * fit the sync kernel's 48 KiB of static shared memory, or, two of each, the async kernel's
 * 96 KiB of dynamic shared memory (gemv.cu opts in beyond 48 KiB); 0 when none does. More rows
 * per CTA means less x traffic from L2 (x is read once per CTA). */
#define GV_ASYNC_SMEM (96 * 1024)
template <int F, int NB, bool ASYNC> struct gv_cfg {
    static constexpr int NBUF = ASYNC ? 2 : 1;
    static constexpr int fits(int w) {
        return NBUF * (w * gv_geom<F>::AREA + NB * GV_XS * 16) + 128 <=
               (ASYNC ? GV_ASYNC_SMEM : 48 * 1024);
    }
    static constexpr int W = fits(8) ? 8 : fits(4) ? 4 : fits(2) ? 2 : fits(1) ? 1 : 0;
};

template <int F, int NB, bool ASYNC> struct gv_smem {
    static constexpr int NBUF = gv_cfg<F, NB, ASYNC>::NBUF, W = gv_cfg<F, NB, ASYNC>::W;
    float lut[32];
    alignas(16) uint8_t area[NBUF][W > 0 ? W : 1][gv_geom<F>::AREA]; /* [stage][warp] row bytes */
    float4 sx[NBUF][NB * GV_XS];                                     /* [stage] x chunk */
};

/* The end of a row: the warp's partial sums reduced by shuffles, lane 0 writes y[b][r]. */
#pragma nv_exec_check_disable
template <int NB, class CX>
VT_HD void gv_finish(CX &cx, const float acc[NB], float *y, uint64_t rows, uint64_t r, int nb,
                     int lane) {
    VT_UNROLL
    for (int b = 0; b < NB; b++) {
        float s = acc[b];
        VT_UNROLL
        for (int o = 16; o > 0; o >>= 1) s += cx.shfl_xor(s, o);
        if (lane == 0 && b < nb) y[b * rows + r] = s;
    }
}

/* CTA cta of the staged GEMV: y[b][r] for rows r = W cta + warp (a warp past the last row
 * still loads x and meets every barrier). */
#pragma nv_exec_check_disable
template <int F, int NB, bool ASYNC, class CX>
VT_HD void gv_cta_body(CX &cx, const vt_kp &p, const float *x, float *y, int nb, bool xvec,
                       gv_smem<F, NB, ASYNC> &sm, uint64_t cta) {
    constexpr int W = gv_cfg<F, NB, ASYNC>::W, G = gv_geom<F>::G;
    static_assert(W > 0, "no CTA of this kernel fits the static shared memory");
    const int tid = cx.tid(), warp = tid / 32, lane = tid % 32;
    vt_dq_lut_fill(sm.lut, tid); /* visible after the first barrier */
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
        if (STAGED && live) gv_stage_lane_async<F>(cx, p, r, 0, sm.area[0][warp], lane);
        if (xa) gv_xstage_async(cx, x, p.cols, 0, nb, sm.sx[0], tid, W * 32);
        cx.commit();
        for (uint64_t k = 0; k < nch; k++) {
            const int xs = (int)(k & 1), ws = (int)((k / G) & 1);
            if (xa && k + 1 < nch) /* into the stage chunk k - 1 used */
                gv_xstage_async(cx, x, p.cols, 32 * (k + 1), nb, sm.sx[xs ^ 1], tid, W * 32);
            if (STAGED && live && k % G == 0 && (k / G + 1) * step < units)
                /* the next step's row bytes into the stage the last step used */
                gv_stage_lane_async<F>(cx, p, r, (k / G + 1) * step, sm.area[ws ^ 1][warp], lane);
            cx.commit();
            if (!xa) gv_xstage(x, p.aux, p.cols, 32 * k, nb, xvec, sm.sx[xs], tid, W * 32);
            cx.template wait<1>(); /* this thread's copies for chunk k have landed */
            cx.sync();             /* ... and every other thread's */
            if (live) {
                uint64_t b0 = 0;
                const uint32_t sh = STAGED ? vt_stage_at<F>(p, r, (k / G) * step, &b0) : 0;
                gv_unit_lane<F, NB>(p, c, sm.sx[xs], r, 32 * k, b0, sm.area[ws][warp], sh, lane, nb,
                                    acc);
            }
            cx.sync(); /* chunk k's stages are free for chunk k + 2's copies */
        }
    }

    if (live) gv_finish<NB>(cx, acc, y, p.rows, r, nb, lane);
}

/* ---- 2:4 rows (gemv.cu gemv_sparse_staged) -------------------------------------------------
 * A chunk is 32 compressed units (2048 dense columns): each warp stages its row's compressed
 * bytes and index bytes of the chunk into shared memory (vt_stage), the CTA stages the chunk's
 * x (AWQ scales divided in) unswizzled, and lane j multiplies unit 32k + j, reading x at its
 * kept columns 64 j + pos from shared memory (before: gathered from L1/L2, 32 cache lines per
 * load instruction). Dynamic shared memory, up to 96 KiB (batch 8: 64 KiB of x). */
#define GVS_XC 2048 /* dense columns of x per chunk */

template <int F> struct gvs_geom {
    static constexpr int TB = gv_geom<F>::TB;             /* value bytes of 32 units */
    static constexpr int IOFF = (TB + 32 + 15) / 16 * 16; /* index bytes' area in a warp's */
    static constexpr int AREA = IOFF + 256 + 32;          /* 8 index bytes per unit */
};

template <int F, int NB> struct gvs_cfg {
    static constexpr int fits(int w) {
        return w * gvs_geom<F>::AREA + NB * GVS_XC * 4 + 128 <= GV_ASYNC_SMEM;
    }
    static constexpr int W = fits(8) ? 8 : fits(4) ? 4 : fits(2) ? 2 : fits(1) ? 1 : 0;
};

template <int F, int NB> struct gvs_smem {
    static constexpr int W = gvs_cfg<F, NB>::W;
    float lut[32];
    alignas(16) uint8_t area[W > 0 ? W : 1][gvs_geom<F>::AREA];
    alignas(16) float sx[NB][GVS_XC];
};

/* Thread t of nt's share of loading x columns [c0, c0 + GVS_XC) of nb vectors into sx (plain
 * layout; divided by aux[col] when given; columns past cols as 0). */
VT_HD void gvs_xstage(const float *x, const float *aux, uint64_t cols, uint64_t c0, int nb,
                      bool xvec, float *sx, int t, int nt) {
    for (int q = t; q < nb * (GVS_XC / 4); q += nt) {
        const int b = q / (GVS_XC / 4), i4 = q % (GVS_XC / 4);
        const uint64_t col = c0 + 4 * (uint64_t)i4;
        const float *xp = x + (uint64_t)b * cols + col;
        float f[4];
        if (xvec && col + 4 <= cols) {
            float4 q4 = VT_LDG((const float4 *)xp);
            f[0] = q4.x, f[1] = q4.y, f[2] = q4.z, f[3] = q4.w;
        } else {
            VT_UNROLL
            for (int e = 0; e < 4; e++) f[e] = col + e < cols ? VT_LDG(xp + e) : 0.0f;
        }
        if (aux) {
            VT_UNROLL
            for (int e = 0; e < 4; e++)
                if (col + e < cols) f[e] = vt_fdiv_fast(f[e], VT_LDG(aux + col + e));
        }
        *(float4 *)(sx + b * GVS_XC + 4 * i4) = make_float4(f[0], f[1], f[2], f[3]);
    }
}

#pragma nv_exec_check_disable
template <int F, int NB, class CX>
VT_HD void gvs_cta_body(CX &cx, const vt_kp &p, const float *x, float *y, int nb, bool xvec,
                        gvs_smem<F, NB> &sm, uint64_t cta) {
    constexpr int W = gvs_cfg<F, NB>::W, IOFF = gvs_geom<F>::IOFF;
    static_assert(W > 0, "no CTA of this kernel fits the static shared memory");
    const int tid = cx.tid(), warp = tid / 32, lane = tid % 32;
    vt_dq_lut_fill(sm.lut, tid); /* visible after the first barrier */
    const uint64_t r = cta * W + warp;
    const bool live = r < p.rows;                 /* warp-uniform */
    const vt_dq_ctx c = gv_ctx_staged(sm.lut, p); /* AWQ: x divided instead */
    const uint64_t hn = vt_sparse_units(p.cols), ilen = p.row_bytes - p.idx_off;
    float acc[NB];
    VT_UNROLL
    for (int b = 0; b < NB; b++) acc[b] = 0.0f;
    for (uint64_t u0 = 0; u0 < hn; u0 += 32) {
        cx.sync(); /* every warp is done with the previous chunk */
        uint64_t vb0 = vt_dq_unit_off<F>(u0), ib0 = 8 * u0;
        uint32_t vsh = 0, ish = 0;
        if (live) {
            const uint64_t vb1 = vt_units_end<F>(u0 + 32, hn, p.idx_off);
            const uint64_t ib1 = 8 * (u0 + 32) < ilen ? 8 * (u0 + 32) : ilen;
            vsh = vt_stage(sm.area[warp], p.data, p.bytes, r * p.row_bytes + vb0,
                           (uint32_t)(vb1 - vb0), lane, 32);
            ish = vt_stage(sm.area[warp] + IOFF, p.data, p.bytes, r * p.row_bytes + p.idx_off + ib0,
                           (uint32_t)(ib1 - ib0), lane, 32);
        }
        gvs_xstage(x, p.aux, p.cols, 64 * u0, nb, xvec, &sm.sx[0][0], tid, W * 32);
        cx.sync(); /* x and the staged row bytes visible */
        const uint64_t u = u0 + lane;
        if (live && u < hn) {
            float v[32];
            uint8_t pos[32];
            vt_dq_unit_sparse_at<F>(sm.area[warp] + vsh + (vt_dq_unit_off<F>(u) - vb0),
                                    sm.area[warp] + IOFF + ish + (8 * u - ib0), u, p.ccols, c, v,
                                    pos);
            VT_UNROLL
            for (int b = 0; b < NB; b++) {
                if (b >= nb) break;
                const float *xs = sm.sx[b] + 64 * lane;
                float s = 0.0f;
                VT_UNROLL
                for (int i = 0; i < 32; i++)
                    if (64 * u + pos[i] < p.cols) s = fmaf(v[i], xs[pos[i]], s);
                acc[b] += s;
            }
        }
    }
    if (live) gv_finish<NB>(cx, acc, y, p.rows, r, nb, lane);
}

#endif
