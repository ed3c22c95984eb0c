/* kernels/cuda/gemv_rows.cuh — the register GEMV (gemv.cu gemv_rows) for batch 1-2 on dense
 * rows, as a template over the thread context so that tests/kernels/gemv_cta_host.cu runs its
 * whole CTAs on the host.
 *
 * Why: the staged kernel (gemv_cta.cuh) reads x from shared memory for every weight (4 bytes of
 * shared-memory traffic per weight, 8x the bytes of a 4-bit weight) and decodes its units from
 * staged bytes with byte loads at a unit's stride (several-way bank conflicts); on an H200 it
 * reached 15-33% of copy bandwidth (docs/BENCHMARKS.md). Here a CTA of GVR_W warps takes R rows;
 * its warps split the row's units (warp w takes the 32-unit chunks w, w + GVR_W, ...), lane j
 * unit j of a chunk. A lane loads x for its unit's 32 columns into registers once (AWQ: divided
 * by the channel scales there) and reuses them for all R rows, decoding each row's unit straight
 * from global memory in registers (no shared memory, no barrier in the loop; every row's loads
 * are independent, so R units are in flight per lane). The partial sums end in a shuffle
 * reduction per warp and one sum over the warps through shared memory. */
#ifndef VT_GEMV_ROWS_CUH
#define VT_GEMV_ROWS_CUH

#include "gemv_lane.cuh"

#define GVR_W 4 /* warps per CTA */

/* Rows per CTA: x in registers is 32 x NB floats per lane, so fewer rows at batch 2 */
template <int NB> struct gvr_cfg { static constexpr int R = NB == 1 ? 4 : 2; };

template <int NB> struct gvr_smem {
    float lut[32];
    float red[GVR_W][gvr_cfg<NB>::R * NB];
};

/* x[b][col0 .. col0 + 32) of nb vectors into xr (columns past cols, and vectors past nb, as 0),
 * each divided by aux[col] when aux (AWQ channel scales) is given. */
template <int NB>
VT_HD void gvr_load_x(const float *x, const float *aux, uint64_t cols, uint64_t col0, int nb,
                      bool xvec, float xr[NB][32]) {
    const bool full = col0 + 32 <= cols;
    VT_UNROLL
    for (int b = 0; b < NB; b++) {
        const float *xp = x + (uint64_t)b * cols + col0;
        if (b < nb && xvec && full) {
            VT_UNROLL
            for (int i = 0; i < 8; i++) {
                const float4 q = VT_LDG((const float4 *)xp + i);
                xr[b][4 * i] = q.x, xr[b][4 * i + 1] = q.y, xr[b][4 * i + 2] = q.z;
                xr[b][4 * i + 3] = q.w;
            }
        } else {
            VT_UNROLL
            for (int i = 0; i < 32; i++)
                xr[b][i] = b < nb && col0 + i < cols ? VT_LDG(xp + i) : 0.0f;
        }
        if (aux) {
            VT_UNROLL
            for (int i = 0; i < 32; i++)
                if (col0 + i < cols) xr[b][i] = vt_fdiv_fast(xr[b][i], VT_LDG(aux + col0 + i));
        }
    }
}

/* CTA cta of the register GEMV: y[b][r] for rows r = R cta .. R cta + R - 1. */
#pragma nv_exec_check_disable
template <int F, int NB, class CX>
VT_HD void gvr_cta_body(CX &cx, const vt_kp &p, const float *x, float *y, int nb, bool xvec,
                        gvr_smem<NB> &sm, uint64_t cta) {
    constexpr int R = gvr_cfg<NB>::R;
    const int tid = cx.tid(), warp = tid / 32, lane = tid % 32;
    vt_dq_lut_fill(sm.lut, tid);
    cx.sync(); /* the table visible */
    const uint64_t r0 = cta * R, units = vt_units(p.cols);
    const vt_dq_ctx c = gv_ctx_staged(sm.lut, p); /* AWQ: x divided instead */
    float acc[R][NB];
    VT_UNROLL
    for (int i = 0; i < R; i++) VT_UNROLL
    for (int b = 0; b < NB; b++) acc[i][b] = 0.0f;

    for (uint64_t u = 32 * (uint64_t)warp + lane; u < units; u += 32 * GVR_W) {
        const uint64_t col0 = 32 * u;
        const bool full = col0 + 32 <= p.cols;
        float xr[NB][32];
        gvr_load_x<NB>(x, p.aux, p.cols, col0, nb, xvec, xr);
        VT_UNROLL
        for (int i = 0; i < R; i++) {
            const uint64_t r = r0 + i;
            if (r >= p.rows) break;
            float v[32];
            if constexpr (F == VT_FMT_NF4_DQ)
                vt_dq_unit_nf4dq(p.data, p.bpr, r, u, c, v);
            else
                vt_dq_unit<F>(vt_dq_unit_ptr<F>(p.data + r * p.row_bytes, u), u, col0, c, v);
            if (!full) { /* a block's padding may decode to anything: x is 0 there, v must be */
                VT_UNROLL
                for (int e = 0; e < 32; e++)
                    if (col0 + e >= p.cols) v[e] = 0.0f;
            }
            VT_UNROLL
            for (int b = 0; b < NB; b++) {
                float s0 = 0.0f, s1 = 0.0f; /* two chains: half the FMA latency in the way */
                VT_UNROLL
                for (int e = 0; e < 32; e += 2) {
                    s0 = fmaf(v[e], xr[b][e], s0);
                    s1 = fmaf(v[e + 1], xr[b][e + 1], s1);
                }
                acc[i][b] += s0 + s1;
            }
        }
    }

    VT_UNROLL
    for (int i = 0; i < R; i++) VT_UNROLL
    for (int b = 0; b < NB; b++) {
        float s = acc[i][b];
        VT_UNROLL
        for (int o = 16; o > 0; o >>= 1) s += cx.shfl_xor(s, o);
        if (lane == 0) sm.red[warp][i * NB + b] = s;
    }
    cx.sync(); /* every warp's sums in shared memory */
    if (tid < R * NB) {
        const int i = tid / NB, b = tid % NB;
        const uint64_t r = r0 + i;
        if (r < p.rows && b < nb) {
            float s = 0.0f;
            VT_UNROLL
            for (int w = 0; w < GVR_W; w++) s += sm.red[w][tid];
            y[(uint64_t)b * p.rows + r] = s;
        }
    }
}

#endif
