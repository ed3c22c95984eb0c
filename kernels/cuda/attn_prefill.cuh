/* kernels/cuda/attn_prefill.cuh — the body of the tensor-core prefill kernel (attn_prefill.cu),
 * a template over the thread context (vt_simt_dev on the GPU; the host emulation in
 * tests/attn/attn_kern_host.cu). See attn_prefill.cu for the algorithm. */
#ifndef VT_ATTN_PREFILL_CUH
#define VT_ATTN_PREFILL_CUH

#include <math.h>

#include "attn_common.cuh"

namespace vt_prefill {

/* RM m16 row blocks per warp, BM = 64 RM queries per CTA. RM 2 (4 warps x 32 query rows): every
 * K and V fragment a warp loads by ldmatrix feeds two MMAs; with 16 rows per warp (RM 1) the CTA
 * reads 16 bytes of shared memory per 16 f16 FLOPs, the rate an SM's MMAs need (shared-memory
 * bound). RM 1 remains for D 128 where RM 2's shared memory (104 KB) exceeds the device's. */
constexpr int BN = 64, NWARPS = 4, NTHREADS = NWARPS * 32;
template <int RM> constexpr int bm() {
    return 64 * RM;
}

/* The tensor-core type: bf16 for bf16 Q over K/V stored in bf16 or mxfp4 (exact in bf16, and
 * beyond f16's range), f16 otherwise: f16 keeps 11 bits of K, V and P where bf16 keeps 8, which
 * is what holds the error under 2e-3 (bf16 MMAs over f16/q8_0/... K/V reach 4e-3). bf16 Q is
 * then rounded to f16 (exact for normal values up to 65504, like K/V values and f32 Q). */
inline bool mma_bf16(int q_dtype, uint32_t fmt) {
    return q_dtype == VT_DTYPE_BF16 && (fmt == VT_FMT_BF16 || fmt == VT_FMT_MXFP4);
}

/* The bf16 residuals (a - hi.x, b - hi.y) of a pair packed as hi = vt_pack2<bf16>(a, b). */
VT_HD uint32_t vt_bf16_lo2(float a, float b, uint32_t hi) {
    return vt_pack2<__nv_bfloat16>(a - vt_dev_as_f32(hi << 16),
                                   b - vt_dev_as_f32(hi & 0xffff0000u));
}

/* How the K/V tiles reach shared memory:
 *   RAW  (stored in the MMA type): cp.async straight into double-buffered f16/bf16 tiles;
 *   PIPE (the quantized formats, and bf16 under f16 MMAs): cp.async of the tile's stored bytes
 *        into double-buffered byte buffers, dequantized from there into one f16/bf16 tile;
 *   f32: loaded and converted through registers, one tile at a time (its stored tiles would
 *        take 64 KiB a stage at D 128).
 * With RAW and PIPE the loads of tile j+1 are in flight while tile j is computed. */
template <typename T, int FMT> constexpr bool kv_raw() {
    return (FMT == VT_FMT_F16 && std::is_same<T, __half>::value) ||
           (FMT == VT_FMT_BF16 && std::is_same<T, __nv_bfloat16>::value);
}
template <typename T, int FMT> constexpr bool kv_pipe() {
    return !kv_raw<T, FMT>() && FMT != VT_FMT_F32;
}

/* Q fragments held in registers for the whole CTA (D 64), or loaded from shared memory per
 * step (D 128: the 32 rows' fragments would take 64 registers beside 128 of accumulators) */
template <int D, int RM> constexpr bool q_regs() {
    return D == 64 || RM == 1;
}

template <int D, typename T, int FMT, int RM> struct smem {
    static constexpr int LD = D + 8; /* padded row: ldmatrix rows hit distinct banks */
    static constexpr bool RAW = kv_raw<T, FMT>(), PIPE = kv_pipe<T, FMT>();
    static_assert(bm<RM>() <= 2 * BN, "Q (q_regs) is staged in a stage's K and V tiles");
    /* one K or V tile's stored bytes, placed at the offset its global start has within 16 bytes
     * (cp.async copies aligned 16-byte pieces) */
    static constexpr int RAWB = PIPE ? (BN * vt_kv_row_bytes<FMT>(D) + 31) / 16 * 16 : 16;
    T kv[RAW ? 2 : 1][2][BN][LD]; /* [stage][K, V]; q_regs: Q is staged in the last stage first */
    T q[q_regs<D, RM>() ? 1 : bm<RM>()][LD];        /* !q_regs: Q for the whole CTA */
    alignas(16) uint8_t raw[PIPE ? 2 : 1][2][RAWB]; /* [stage][K, V] stored bytes (PIPE) */
    vt_attn_lut lut;
};

/* Thread tid's share of requesting the K/V tile of keys [j0, j0 + BN) (K at kb, V at vb) into
 * stage st (RAW, PIPE; rows past Nk: RAW zero-filled, PIPE not copied). */
#pragma nv_exec_check_disable
template <int D, typename T, int FMT, int RM, class CX>
VT_HD void issue(CX &cx, int tid, const vt_attn_dev_args &a, smem<D, T, FMT, RM> &sm,
                 const uint8_t *kb, const uint8_t *vb, long long j0, int st) {
    constexpr int RB = vt_kv_row_bytes<FMT>(D);
    const long long rows = a.nk - j0 < BN ? a.nk - j0 : BN;
    if constexpr (smem<D, T, FMT, RM>::RAW) {
        VT_ATTN_UNROLL(1) /* unrolled, the addresses take registers the accumulators need */
        for (int idx = tid; idx < BN * D / 8; idx += NTHREADS) {
            const int r = idx / (D / 8), c = (idx % (D / 8)) * 8;
            const bool ok = r < rows;
            const size_t o = ok ? (size_t)(j0 + r) * RB + (size_t)c * 2 : 0;
            cx.cp16(&sm.kv[st][0][r][c], kb + o, ok);
            cx.cp16(&sm.kv[st][1][r][c], vb + o, ok);
        }
    } else if constexpr (smem<D, T, FMT, RM>::PIPE) {
        const uint32_t n = (uint32_t)(rows * RB);
        vt_stage_async(cx, sm.raw[st][0], kb + (size_t)j0 * RB, n, 0, n, tid, NTHREADS);
        vt_stage_async(cx, sm.raw[st][1], vb + (size_t)j0 * RB, n, 0, n, tid, NTHREADS);
    }
}

/* CTA (bx, h): queries [BM bx, BM bx + BM) of head h. */
/* the host emulation instantiates it with a host-only context */
#pragma nv_exec_check_disable
template <int D, typename T, int FMT, int RM, class CX>
VT_HD void body(CX &cx, const vt_attn_dev_args &a, smem<D, T, FMT, RM> &sm, long long bx, int h) {
    constexpr int LD = D + 8, KS = D / 16, NT = BN / 8, DT = D / 8, BM = bm<RM>();
    constexpr bool RAW = smem<D, T, FMT, RM>::RAW, PIPE = smem<D, T, FMT, RM>::PIPE;
    constexpr int RB = vt_kv_row_bytes<FMT>(D); /* == a.row_bytes (the launchers check) */
    /* tile pieces dequantized per thread together (registers): 2, nvfp4 1 (spills at 2) */
    constexpr int PB = FMT == VT_FMT_NVFP4 ? 1 : 2;
    static_assert((BN * D / 8) % (PB * NTHREADS) == 0, "whole batches of tile pieces");

    const int tid = cx.tid(), warp = tid / 32, lane = tid % 32;
    const int g = lane / 4, t4 = lane % 4;
    const int hk = h / a.group;
    const long long q0 = bx * BM;
    vt_attn_lut_load(&sm.lut, tid);

    long long last_q = q0 + BM - 1 < a.nq - 1 ? q0 + BM - 1 : a.nq - 1;
    long long n_end = a.causal ? vt_visible(a, last_q) : a.nk;
    /* tiles starting at or after this key need no causal mask for any row of the block */
    long long diag0 = a.causal ? q0 + a.nk - a.nq + 1 : a.nk;
    const uint8_t *kb = a.k + (size_t)hk * a.head_stride, *vb = a.v + (size_t)hk * a.head_stride;

    if (n_end > 0) issue(cx, tid, a, sm, kb, vb, 0, 0);
    cx.commit();

    /* ---- Q tile -> shared (q_regs: the last stage's K and V tiles, or PIPE/f32 the one
     * stage's, which are written after the sync below; then registers) ---- */
    constexpr bool QR = q_regs<D, RM>();
    T(*Qs)[LD] = QR ? reinterpret_cast<T(*)[LD]>(&sm.kv[RAW ? 1 : 0][0][0][0]) : sm.q;
    for (int idx = tid; idx < BM * D / 8; idx += NTHREADS) {
        int r = idx / (D / 8), c = (idx % (D / 8)) * 8;
        float f[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        if (q0 + r < a.nq) vt_load_q8(a.q, a.q_dtype, ((size_t)h * a.nq + q0 + r) * D + c, f);
        uint4 u = {vt_pack2<T>(f[0], f[1]), vt_pack2<T>(f[2], f[3]), vt_pack2<T>(f[4], f[5]),
                   vt_pack2<T>(f[6], f[7])};
        *reinterpret_cast<uint4 *>(&Qs[r][c]) = u;
    }
    cx.sync();
    /* A fragments of row block i (rows 16 (RM warp + i) .. + 15) at K columns 16 ks.. */
    auto q_at = [&](int i, int ks) {
        return &Qs[16 * (RM * warp + i) + (lane % 16)][ks * 16 + (lane / 16) * 8];
    };
    uint32_t qf[QR ? RM : 1][QR ? KS : 1][4];
    if constexpr (QR) {
        VT_UNROLL
        for (int i = 0; i < RM; i++) VT_UNROLL
        for (int ks = 0; ks < KS; ks++) cx.ldsm_x4(qf[i][ks], q_at(i, ks));
        cx.sync(); /* the stage is free for the K/V tiles */
    }

    /* rows of this thread in row block i: row g (r = 0) and g + 8 (r = 1) */
    long long qr[RM][2], lim[RM][2];
    float m[RM][2], l[RM][2];
    float acc[RM][DT][4];
    VT_UNROLL
    for (int i = 0; i < RM; i++) {
        VT_UNROLL
        for (int r = 0; r < 2; r++) {
            qr[i][r] = q0 + 16 * (RM * warp + i) + g + 8 * r;
            lim[i][r] = vt_visible(a, qr[i][r]);
            m[i][r] = -INFINITY, l[i][r] = 0.0f;
        }
        VT_UNROLL
        for (int d = 0; d < DT; d++)
            acc[i][d][0] = acc[i][d][1] = acc[i][d][2] = acc[i][d][3] = 0.0f;
    }

    int st = 0;
    for (long long j0 = 0; j0 < n_end; j0 += BN, st ^= 1) {
        /* ---- K, V tiles of this step into shared memory as f16/bf16 (rows past Nk: 0) ---- */
        if constexpr (RAW || PIPE) {
            if (j0 + BN < n_end) /* into the stage the last step used */
                issue(cx, tid, a, sm, kb, vb, j0 + BN, st ^ 1);
            cx.commit();
            cx.template wait<1>(); /* this thread's copies of this step's tile have landed */
            cx.sync();             /* ... and every other thread's */
        }
        if constexpr (!RAW) {
            /* PIPE: from the stored bytes in shared memory; f32: from global memory. PB
             * pieces' loads before their stores. */
            const uint8_t *ks = PIPE ? sm.raw[st][0] + ((uintptr_t)kb & 15) : kb + (size_t)j0 * RB;
            const uint8_t *vs = PIPE ? sm.raw[st][1] + ((uintptr_t)vb & 15) : vb + (size_t)j0 * RB;
            for (int idx0 = tid; idx0 < BN * D / 8; idx0 += PB * NTHREADS) {
                float fk[PB][8], fv[PB][8];
                VT_UNROLL
                for (int b = 0; b < PB; b++) {
                    const int idx = idx0 + b * NTHREADS, r = idx / (D / 8), c = (idx % (D / 8)) * 8;
                    if (j0 + r < a.nk) { /* idx < BN * D / 8: PB divides the pieces per thread */
                        vt_deq8<FMT>(ks + (size_t)r * RB, c, a.ts, &sm.lut, fk[b]);
                        vt_deq8<FMT>(vs + (size_t)r * RB, c, a.ts, &sm.lut, fv[b]);
                    } else {
                        VT_UNROLL
                        for (int e = 0; e < 8; e++) fk[b][e] = fv[b][e] = 0.0f;
                    }
                }
                VT_UNROLL
                for (int b = 0; b < PB; b++) {
                    const int idx = idx0 + b * NTHREADS, r = idx / (D / 8), c = (idx % (D / 8)) * 8;
                    const float *k8 = fk[b], *v8 = fv[b];
                    *reinterpret_cast<uint4 *>(&sm.kv[0][0][r][c]) =
                        make_uint4(vt_pack2<T>(k8[0], k8[1]), vt_pack2<T>(k8[2], k8[3]),
                                   vt_pack2<T>(k8[4], k8[5]), vt_pack2<T>(k8[6], k8[7]));
                    *reinterpret_cast<uint4 *>(&sm.kv[0][1][r][c]) =
                        make_uint4(vt_pack2<T>(v8[0], v8[1]), vt_pack2<T>(v8[2], v8[3]),
                                   vt_pack2<T>(v8[4], v8[5]), vt_pack2<T>(v8[6], v8[7]));
                }
            }
            cx.sync();
        }
        T(*Ks)[LD] = sm.kv[RAW ? st : 0][0];
        T(*Vs)[LD] = sm.kv[RAW ? st : 0][1];

        /* ---- S = Q K^T: each K fragment feeds the RM row blocks ---- */
        float s[RM][NT][4];
        VT_UNROLL
        for (int i = 0; i < RM; i++) VT_UNROLL
        for (int n = 0; n < NT; n++) s[i][n][0] = s[i][n][1] = s[i][n][2] = s[i][n][3] = 0.0f;
        VT_UNROLL
        for (int ks = 0; ks < KS; ks++) {
            uint32_t qs[QR ? 1 : RM][4];
            if constexpr (!QR) {
                VT_UNROLL
                for (int i = 0; i < RM; i++) cx.ldsm_x4(qs[i], q_at(i, ks));
            }
            VT_UNROLL
            for (int n2 = 0; n2 < NT / 2; n2++) {
                uint32_t b[4];
                cx.ldsm_x4(
                    b, &Ks[n2 * 16 + (lane / 16) * 8 + (lane % 8)][ks * 16 + ((lane / 8) % 2) * 8]);
                VT_UNROLL
                for (int i = 0; i < RM; i++) {
                    const uint32_t *qa;
                    if constexpr (QR)
                        qa = qf[i][ks];
                    else
                        qa = qs[i];
                    cx.template mma<T>(s[i][2 * n2], qa, b[0], b[1]);
                    cx.template mma<T>(s[i][2 * n2 + 1], qa, b[2], b[3]);
                }
            }
        }

        /* ---- scale, mask (before the max), online softmax (rows g and g+8; a quad shares a
         * row) ---- */
        const bool need_mask = j0 + BN > a.nk || j0 + BN > diag0;
        VT_UNROLL
        for (int i = 0; i < RM; i++) {
            float mx[2] = {m[i][0], m[i][1]};
            VT_UNROLL
            for (int nt = 0; nt < NT; nt++) VT_UNROLL
            for (int e = 0; e < 4; e++) {
                float v = s[i][nt][e] * a.scale_log2;
                if (need_mask) {
                    long long key = j0 + nt * 8 + 2 * t4 + (e & 1);
                    if (key >= lim[i][e >> 1]) v = -INFINITY;
                }
                s[i][nt][e] = v;
                mx[e >> 1] = fmaxf(mx[e >> 1], v);
            }
            float alpha[2], mu[2];
            VT_UNROLL
            for (int r = 0; r < 2; r++) {
                mx[r] = fmaxf(mx[r], cx.shfl_xor(mx[r], 1));
                mx[r] = fmaxf(mx[r], cx.shfl_xor(mx[r], 2));
                mu[r] = mx[r] == -INFINITY ? 0.0f : mx[r]; /* no visible key yet: exp finite */
                alpha[r] = exp2f(m[i][r] - mu[r]);         /* m = -inf: 0, never NaN */
                m[i][r] = mx[r];
                l[i][r] *= alpha[r];
            }
            VT_UNROLL
            for (int nt = 0; nt < NT; nt++) VT_UNROLL
            for (int e = 0; e < 4; e++) {
                float p = exp2f(s[i][nt][e] - mu[e >> 1]);
                s[i][nt][e] = p;
                l[i][e >> 1] += p;
            }
            VT_UNROLL
            for (int dt = 0; dt < DT; dt++) {
                acc[i][dt][0] *= alpha[0], acc[i][dt][1] *= alpha[0];
                acc[i][dt][2] *= alpha[1], acc[i][dt][3] *= alpha[1];
            }
        }

        /* ---- O += P V: the S accumulators (C layout) re-packed as A fragments. bf16 keeps 8
         * bits of P: there P = hi + lo, two bf16 MMAs (V is exact in bf16 on that path) ---- */
        constexpr bool PLO = std::is_same<T, __nv_bfloat16>::value;
        VT_UNROLL
        for (int kk = 0; kk < BN / 16; kk++) {
            uint32_t pa[RM][4], pl[RM][4];
            VT_UNROLL
            for (int i = 0; i < RM; i++) {
                const float *p0 = s[i][2 * kk], *p1 = s[i][2 * kk + 1];
                pa[i][0] = vt_pack2<T>(p0[0], p0[1]), pa[i][1] = vt_pack2<T>(p0[2], p0[3]);
                pa[i][2] = vt_pack2<T>(p1[0], p1[1]), pa[i][3] = vt_pack2<T>(p1[2], p1[3]);
                if constexpr (PLO) {
                    pl[i][0] = vt_bf16_lo2(p0[0], p0[1], pa[i][0]);
                    pl[i][1] = vt_bf16_lo2(p0[2], p0[3], pa[i][1]);
                    pl[i][2] = vt_bf16_lo2(p1[0], p1[1], pa[i][2]);
                    pl[i][3] = vt_bf16_lo2(p1[2], p1[3], pa[i][3]);
                }
            }
            VT_UNROLL
            for (int d2 = 0; d2 < D / 16; d2++) {
                uint32_t b[4];
                cx.ldsm_x4_t(
                    b, &Vs[kk * 16 + ((lane / 8) % 2) * 8 + (lane % 8)][d2 * 16 + (lane / 16) * 8]);
                VT_UNROLL
                for (int i = 0; i < RM; i++) {
                    cx.template mma<T>(acc[i][2 * d2], pa[i], b[0], b[1]);
                    cx.template mma<T>(acc[i][2 * d2 + 1], pa[i], b[2], b[3]);
                    if constexpr (PLO) {
                        cx.template mma<T>(acc[i][2 * d2], pl[i], b[0], b[1]);
                        cx.template mma<T>(acc[i][2 * d2 + 1], pl[i], b[2], b[3]);
                    }
                }
            }
        }
        cx.sync(); /* the next steps overwrite this step's tiles */
    }

    /* ---- epilogue: O / l, LSE (a row without a visible key: O = 0, LSE = -inf) ---- */
    VT_UNROLL
    for (int i = 0; i < RM; i++) VT_UNROLL
    for (int r = 0; r < 2; r++) {
        l[i][r] += cx.shfl_xor(l[i][r], 1);
        l[i][r] += cx.shfl_xor(l[i][r], 2);
    }
    VT_UNROLL
    for (int i = 0; i < RM; i++) VT_UNROLL
    for (int r = 0; r < 2; r++) {
        const long long qi = qr[i][r];
        if (qi >= a.nq) continue;
        float inv = l[i][r] > 0.0f ? 1.0f / l[i][r] : 0.0f;
        size_t ob = ((size_t)h * a.nq + qi) * D;
        VT_UNROLL
        for (int dt = 0; dt < DT; dt++) {
            float x0 = acc[i][dt][2 * r] * inv, x1 = acc[i][dt][2 * r + 1] * inv;
            size_t idx = ob + dt * 8 + 2 * t4;
            if (a.o_dtype == VT_DTYPE_F32)
                *reinterpret_cast<float2 *>(static_cast<float *>(a.o) + idx) = make_float2(x0, x1);
            else
                *reinterpret_cast<__half2 *>(static_cast<__half *>(a.o) + idx) =
                    __floats2half2_rn(x0, x1);
        }
        if (a.lse && t4 == 0)
            a.lse[(size_t)h * a.nq + qi] =
                l[i][r] > 0.0f ? (m[i][r] + log2f(l[i][r])) * VT_LN2 : -INFINITY;
    }
}

} // namespace vt_prefill

#endif
