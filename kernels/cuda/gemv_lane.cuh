/* kernels/cuda/gemv_lane.cuh — one lane's share of the GEMV kernels (gemv.cu) as __host__
 * __device__ functions: staging a row piece, decoding units and multiplying with x. The kernels
 * add only the barriers (__syncwarp) and the shuffle reduction; tests/kernels/gemv_lane_host.cu
 * runs these for all 32 lanes of a warp on the host. */
#ifndef VT_GEMV_LANE_CUH
#define VT_GEMV_LANE_CUH

#include "kparams.cuh"

#ifdef __CUDA_ARCH__
#define VT_LDG(p) __ldg(p)
#elif defined(VT_LDG_HOST) /* a host emulation's checked load (tests/kernels/gemv_cta_host.cu) */
#define VT_LDG(p) VT_LDG_HOST(p)
#else
#define VT_LDG(p) (*(p))
#endif

/* Staging geometry of a warp: 32 x G units (about 2 KiB) of its row per step, in STAGE bytes of
 * shared memory (a multiple of 16: the warps' areas sit back to back and take 16-byte stores). */
template <int F> struct gv_geom {
    static constexpr int BE = vt_fmt_traits<F>::BE, BB = vt_fmt_traits<F>::BB;
    static constexpr int TB = 1024 / BE * BB; /* bytes of 32 units */
    static constexpr int G = TB >= 2048 ? 1 : 2048 / TB;
    static constexpr int STAGE = G * TB + 32;
    static_assert(STAGE % 16 == 0, "each warp's staging area must stay 16-byte aligned");
    /* shared bytes of a warp's area in the kernel (nf4_dq stages nothing) */
    static constexpr int AREA = F == VT_FMT_NF4_DQ ? 16 : STAGE;
};

/* Whether x takes the float4 path (16-byte aligned vectors of whole float4s). */
VT_HD bool gv_xvec(const float *x, uint64_t cols) {
    return cols % 4 == 0 && ((uintptr_t)x & 15) == 0;
}

/* f.template go<F, NB>(p, xvec) for the batch template (1, 2, 4 or 8 vectors) that covers nb:
 * the kernels' and the host emulations' one choice. */
template <int F, class Fn> int gv_batch_dispatch(Fn &f, int nb, const vt_kp &p, const float *x) {
    const bool xvec = gv_xvec(x, p.cols);
    return nb == 1   ? f.template go<F, 1>(p, xvec)
           : nb == 2 ? f.template go<F, 2>(p, xvec)
           : nb <= 4 ? f.template go<F, 4>(p, xvec)
                     : f.template go<F, 8>(p, xvec);
}

/* Step u0 of a row (G x 32 units): its first byte *b0 in the row; returns its byte end. */
template <int F> VT_HD uint64_t gv_step_range(const vt_kp &p, uint64_t u0, uint64_t *b0) {
    *b0 = vt_dq_unit_off<F>(u0);
    return vt_units_end<F>(u0 + 32 * gv_geom<F>::G, vt_units(p.cols), p.row_bytes);
}

/* Lane @p lane's part of staging step u0 of row r into the warp's area sm: bytes [*b0, end) of
 * the row (gv_step_range). Returns where byte *b0 landed in sm. */
template <int F>
VT_HD uint32_t gv_stage_lane(const vt_kp &p, uint64_t r, uint64_t u0, uint8_t *sm, int lane,
                             uint64_t *b0) {
    const uint64_t b1 = gv_step_range<F>(p, u0, b0);
    return vt_stage(sm, p.data, p.bytes, r * p.row_bytes + *b0, (uint32_t)(b1 - *b0), lane, 32);
}

/* gv_stage_lane by cp.async (vt_stage_async): the step's bytes land by the lane's wait_group,
 * at the offset vt_stage_at gives. */
#pragma nv_exec_check_disable
template <int F, class CX>
VT_HD void gv_stage_lane_async(CX &cx, const vt_kp &p, uint64_t r, uint64_t u0, uint8_t *sm,
                               int lane) {
    uint64_t b0;
    const uint64_t b1 = gv_step_range<F>(p, u0, &b0);
    vt_stage_async(cx, sm, p.data, p.bytes, r * p.row_bytes + b0, (uint32_t)(b1 - b0), lane, 32);
}

/* x in shared memory, 32 units (1024 columns) of each vector at a time: float4 chunk i (0..7) of
 * unit j (0..31) of vector b at sx[b * GV_XS + 8 j + (i ^ (j & 7))]. Lane j multiplies unit j,
 * so a warp's 16-byte reads of chunk i hit 8 different bank groups per 8 lanes (one wavefront
 * each); read from global memory instead, the lanes' units are 128 bytes apart and every load
 * instruction touched 32 cache lines (what held the first GEMV at 3-24% of copy speed on an
 * H100). Columns past cols read as 0. */
#define GV_XS 256 /* float4 per vector */

/* The decoder context of the staged kernel: AWQ's channel scales s are left out of the weights
 * and divided into x instead as it is staged (sum_c (q_c / s_c) x_c = sum_c q_c (x_c / s_c)):
 * one division per column and call instead of one per weight, and no per-lane reads of s. */
VT_HD vt_dq_ctx gv_ctx_staged(const float *lut, const vt_kp &p) {
    vt_dq_ctx c = {lut, p.tensor_scale, nullptr, p.cols};
    return c;
}

/* Thread t of nt's share of loading the x chunk of units [u, u + 32) of nb vectors into sx, each
 * value divided by aux[col] when aux (AWQ channel scales) is given: consecutive threads take
 * consecutive 16 bytes of a vector (coalesced). */
VT_HD void gv_xstage(const float *x, const float *aux, uint64_t cols, uint64_t u, int nb, bool xvec,
                     float4 *sx, int t, int nt) {
    for (int q = t; q < nb * GV_XS; q += nt) {
        int b = q / GV_XS, k = q % GV_XS, j = k / 8, i = k % 8;
        uint64_t col = 32 * (u + j) + 4 * (uint64_t)i;
        const float *xp = x + (uint64_t)b * cols + col;
        float4 f;
        if (xvec && col + 4 <= cols) {
            f = VT_LDG((const float4 *)xp);
        } else {
            f.x = col < cols ? VT_LDG(xp) : 0.0f;
            f.y = col + 1 < cols ? VT_LDG(xp + 1) : 0.0f;
            f.z = col + 2 < cols ? VT_LDG(xp + 2) : 0.0f;
            f.w = col + 3 < cols ? VT_LDG(xp + 3) : 0.0f;
        }
        if (aux) { /* cols floats; any alignment: scalar loads (still coalesced) */
            const float *sp = aux + col;
            if (col < cols) f.x = vt_fdiv_fast(f.x, VT_LDG(sp));
            if (col + 1 < cols) f.y = vt_fdiv_fast(f.y, VT_LDG(sp + 1));
            if (col + 2 < cols) f.z = vt_fdiv_fast(f.z, VT_LDG(sp + 2));
            if (col + 3 < cols) f.w = vt_fdiv_fast(f.w, VT_LDG(sp + 3));
        }
        sx[b * GV_XS + 8 * j + (i ^ (j & 7))] = f;
    }
}

/* gv_xstage by cp.async, for 16-byte aligned x with cols % 4 == 0 (xvec) and no channel
 * scales to divide by: the same slots, columns past cols zero-filled. */
#pragma nv_exec_check_disable
template <class CX>
VT_HD void gv_xstage_async(CX &cx, const float *x, uint64_t cols, uint64_t u, int nb, float4 *sx,
                           int t, int nt) {
    for (int q = t; q < nb * GV_XS; q += nt) {
        int b = q / GV_XS, k = q % GV_XS, j = k / 8, i = k % 8;
        uint64_t col = 32 * (u + j) + 4 * (uint64_t)i;
        const bool in = col < cols; /* cols % 4 == 0: then all four are */
        cx.cp16(&sx[b * GV_XS + 8 * j + (i ^ (j & 7))], in ? x + (uint64_t)b * cols + col : x, in);
    }
}

/* acc[b] += sum_i v[i] x[b][col0 + i] for the 32 values of unit j of the x chunk in sx (values
 * past cols left out: a block's padding may decode to anything). */
template <int NB>
VT_HD void gv_dot32_sx(const float v[32], const float4 *sx, int j, uint64_t col0, uint64_t cols,
                       int nb, float acc[NB]) {
    const bool full = col0 + 32 <= cols;
    VT_UNROLL
    for (int b = 0; b < NB; b++) {
        if (b >= nb) break;
        const float4 *xp = sx + b * GV_XS + 8 * j;
        float s = 0.0f;
        VT_UNROLL
        for (int i = 0; i < 8; i++) {
            float4 q = xp[i ^ (j & 7)];
            const float xs[4] = {q.x, q.y, q.z, q.w};
            VT_UNROLL
            for (int e = 0; e < 4; e++)
                if (full || col0 + 4 * i + e < cols) s = fmaf(v[4 * i + e], xs[e], s);
        }
        acc[b] += s;
    }
}

/* After the warp staged step u0 of row r (bytes from b0, at sm + sh) and the CTA loaded the x
 * chunk of units [ug, ug + 32) into sx: lane's unit ug + lane. nf4_dq (blocks not row-local,
 * nothing staged) decodes its unit from global memory. */
template <int F, int NB>
VT_HD void gv_unit_lane(const vt_kp &p, const vt_dq_ctx &c, const float4 *sx, uint64_t r,
                        uint64_t ug, uint64_t b0, const uint8_t *sm, uint32_t sh, int lane, int nb,
                        float acc[NB]) {
    uint64_t u = ug + lane;
    if (u < vt_units(p.cols)) {
        float v[32];
        if constexpr (F == VT_FMT_NF4_DQ)
            vt_dq_unit_nf4dq(p.data, p.bpr, r, u, c, v);
        else
            vt_dq_unit<F>(sm + sh + (vt_dq_unit_off<F>(u) - b0), u, 32 * u, c, v);
        gv_dot32_sx<NB>(v, sx, lane, 32 * u, p.cols, nb, acc);
    }
}

#endif
