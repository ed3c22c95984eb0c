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

/* Formats gemv.cu gives this kernel: on an H200 (docs/BENCHMARKS.md, 2026-11-26) it was slower
 * than the staged kernel for awq_int4 (x divided by the channel scales per lane and unit: 2x),
 * q6_k (210-byte blocks decoded bytewise from global memory: 1.2x) and int8 (1.07x at
 * 8192 x 28672), and faster for the others (f16 6x, q4_0/q4_1/nf4/q8_0 1.2-1.3x). */
template <int F> constexpr bool gvr_pays() {
    return F != VT_FMT_AWQ_INT4 && F != VT_FMT_Q6_K && F != VT_FMT_INT8;
}

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

/* Integer q (0 <= q < 2^23) as a float minus k, exactly: the bits of 2^23 + q are 0x4B000000 | q
 * (two integer-pipe operations at most, where a conversion instruction runs at a fraction of
 * the FMA rate), then one subtraction (exact: both are integers below 2^24). */
VT_HD float gvr_int_f(uint32_t q, float k) {
    return vt_dev_as_f32(0x4B000000u | q) - (8388608.0f + k);
}

/* The unit's dot products with x for the formats and alignments that allow a cheaper form than
 * decoding 32 values: wide loads (the unit's address checked at run time: the weights may lie
 * at any address), the block scale applied once to the sum instead of to every value, and
 * integer codes turned into floats by gvr_int_f. acc[b] += sum_i v_i x[b][i] for a unit whose
 * 32 columns all lie inside the row (the caller's `full`); false (nothing done) where the
 * general path must run. */
template <int F, int NB>
VT_HD bool gvr_fast_unit(const uint8_t *blk, uint64_t u, const vt_dq_ctx &c, const float xr[NB][32],
                         float acc[NB]) {
    (void)u;
    (void)c;
    if constexpr (F == VT_FMT_F16 || F == VT_FMT_BF16) {
        if ((uintptr_t)blk & 15) return false;
        uint32_t w[16];
        VT_UNROLL
        for (int k = 0; k < 4; k++) {
            const uint4 q = VT_LDG((const uint4 *)blk + k);
            w[4 * k] = q.x, w[4 * k + 1] = q.y, w[4 * k + 2] = q.z, w[4 * k + 3] = q.w;
        }
        VT_UNROLL
        for (int b = 0; b < NB; b++) {
            float s0 = 0.0f, s1 = 0.0f;
            VT_UNROLL
            for (int k = 0; k < 16; k++) {
                float lo, hi;
                if constexpr (F == VT_FMT_F16) {
                    lo = vt_dev_f16((const uint8_t *)&w[k]);
                    hi = vt_dev_f16((const uint8_t *)&w[k] + 2);
                } else {
                    lo = vt_dev_as_f32(w[k] << 16);
                    hi = vt_dev_as_f32(w[k] & 0xFFFF0000u);
                }
                s0 = fmaf(lo, xr[b][2 * k], s0);
                s1 = fmaf(hi, xr[b][2 * k + 1], s1);
            }
            acc[b] += s0 + s1;
        }
        return true;
    } else if constexpr (F == VT_FMT_Q4_0 || F == VT_FMT_Q8_0) {
        /* d (f16), then 16 (q4_0: nibble pairs, low nibbles columns 0-15) or 32 (q8_0) bytes:
         * 2-byte aligned when blk is */
        constexpr int NQ = F == VT_FMT_Q4_0 ? 8 : 16; /* 16-bit words of codes */
        if ((uintptr_t)blk & 1) return false;
        const uint16_t *h = (const uint16_t *)blk;
        const float d = vt_dev_f16(blk);
        uint32_t q[NQ];
        VT_UNROLL
        for (int k = 0; k < NQ; k++) q[k] = VT_LDG(h + 1 + k);
        VT_UNROLL
        for (int b = 0; b < NB; b++) {
            float s0 = 0.0f, s1 = 0.0f;
            VT_UNROLL
            for (int k = 0; k < NQ; k++) {
                if constexpr (F == VT_FMT_Q4_0) { /* bytes 2k, 2k + 1: columns 2k, 2k+1, +16 */
                    s0 = fmaf(gvr_int_f(q[k] & 15, 8.0f), xr[b][2 * k], s0);
                    s1 = fmaf(gvr_int_f((q[k] >> 8) & 15, 8.0f), xr[b][2 * k + 1], s1);
                    s0 = fmaf(gvr_int_f((q[k] >> 4) & 15, 8.0f), xr[b][2 * k + 16], s0);
                    s1 = fmaf(gvr_int_f(q[k] >> 12, 8.0f), xr[b][2 * k + 17], s1);
                } else { /* int8 q + 128 = (q ^ 0x80) as unsigned */
                    s0 = fmaf(gvr_int_f((q[k] & 255) ^ 128, 128.0f), xr[b][2 * k], s0);
                    s1 = fmaf(gvr_int_f((q[k] >> 8) ^ 128, 128.0f), xr[b][2 * k + 1], s1);
                }
            }
            acc[b] = fmaf(d, s0 + s1, acc[b]);
        }
        return true;
    } else if constexpr (F == VT_FMT_NF4) {
        /* absmax (f32) then 32 bytes of code pairs (high nibble first), unit u & 1's 16 */
        if ((uintptr_t)blk & 3) return false;
        const float a = vt_dev_as_f32(VT_LDG((const uint32_t *)blk));
        const uint32_t *qp = (const uint32_t *)(blk + 4 + 16 * (u & 1));
        uint32_t q[4];
        VT_UNROLL
        for (int k = 0; k < 4; k++) q[k] = VT_LDG(qp + k);
        VT_UNROLL
        for (int b = 0; b < NB; b++) {
            float s0 = 0.0f, s1 = 0.0f;
            VT_UNROLL
            for (int k = 0; k < 16; k++) { /* byte k: columns 2k (high), 2k + 1 (low) */
                const uint32_t by = (q[k / 4] >> (8 * (k % 4))) & 255;
                s0 = fmaf(c.lut[by >> 4], xr[b][2 * k], s0);
                s1 = fmaf(c.lut[by & 15], xr[b][2 * k + 1], s1);
            }
            acc[b] = fmaf(a, s0 + s1, acc[b]);
        }
        return true;
    }
    return false;
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
            const uint8_t *blk = vt_dq_unit_ptr<F>(p.data + r * p.row_bytes, u);
            if (full && gvr_fast_unit<F, NB>(blk, u, c, xr, acc[i])) continue;
            float v[32];
            if constexpr (F == VT_FMT_NF4_DQ)
                vt_dq_unit_nf4dq(p.data, p.bpr, r, u, c, v);
            else
                vt_dq_unit<F>(blk, u, col0, c, v);
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
