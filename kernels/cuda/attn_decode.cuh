/* kernels/cuda/attn_decode.cuh — the split-KV decode kernel's body, the combine step and the
 * split plan (attn_decode.cu), as templates over the thread context so that
 * tests/attn/attn_kern_host.cu runs them on the host. See attn_decode.cu for the algorithm. */
#ifndef VT_ATTN_DECODE_CUH
#define VT_ATTN_DECODE_CUH

#include <math.h>

#include "attn_common.cuh"

namespace vt_decode {

constexpr int NW = 4, NTH = NW * 32, KT = 32;

/* K/V rows reach the warps two ways: f32/f16/bf16 caches straight from global memory into
 * registers (UB steps' rows in flight per lane); the quantized caches (PIPE) through shared
 * memory, each warp copying its tile's stored K and V bytes by cp.async into its own two stages
 * while it computes the previous tile (whole tiles in flight; the decoders then read shared
 * memory, where the 2-byte-aligned q8_0/q4_0 blocks cost nothing extra). */
template <int FMT> constexpr bool pipe() {
    return FMT != VT_FMT_F32 && FMT != VT_FMT_F16 && FMT != VT_FMT_BF16;
}

template <int D, int RB, int FMT> struct smem {
    static constexpr bool PIPE = pipe<FMT>();
    /* one warp's K or V tile of stored bytes, at its global start's offset within 16 bytes */
    static constexpr int TB = PIPE ? (KT * vt_kv_row_bytes<FMT>(D) + 31) / 16 * 16 : 16;
    float q[RB][D];
    long long lim[RB];
    float p[NW][RB][KT];
    float wm[NW][RB], wl[NW][RB];
    float wacc[NW][RB][D];
    alignas(16) uint8_t kv[PIPE ? NW : 1][PIPE ? 2 : 1][2][TB]; /* [warp][stage][K, V] */
    vt_attn_lut lut;
};

/* Lane's share of warp copying the stored K and V rows [t, t + KT) (those below ks1) of the
 * K/V head at kb, vb into stage kv[0] (K), kv[1] (V). */
#pragma nv_exec_check_disable
template <int D, int FMT, class CX>
VT_HD void issue_tile(CX &cx, int lane, uint8_t (*kv)[smem<D, 1, FMT>::TB], const uint8_t *kb,
                      const uint8_t *vb, long long t, long long ks1) {
    constexpr int RBY = vt_kv_row_bytes<FMT>(D);
    const uint32_t n = (uint32_t)((ks1 - t < KT ? ks1 - t : KT) * RBY);
    vt_stage_async(cx, kv[0], kb + (size_t)t * RBY, n, 0, n, lane, 32);
    vt_stage_async(cx, kv[1], vb + (size_t)t * RBY, n, 0, n, lane, 32);
}

/* Values [d0, d0 + 8) of the rows of keys k, k + KPI, ..., k + (UB - 1) KPI of the K or V base
 * (all UB loads issued before any value is used); a key at or past ks1 loads the last valid row
 * (ks1 - 1: the caller's tile starts below ks1) and gets ok[u] = false, to be counted as 0.
 * The body passes keys relative to its tile's first row (base: that row, in global or shared
 * memory). */
template <int FMT, int UB, int KPI>
VT_HD void load_steps(const vt_attn_dev_args &a, const uint8_t *base, long long k, long long ks1,
                      int d0, const vt_attn_lut *lut, float out[UB][8], bool ok[UB]) {
    VT_UNROLL
    for (int u = 0; u < UB; u++) {
        const long long k2 = k + u * KPI;
        ok[u] = k2 < ks1;
        vt_deq8<FMT>(base + (size_t)(ok[u] ? k2 : ks1 - 1) * a.row_bytes, d0, a.ts, lut, out[u]);
    }
}

/* CTA (split, hk, z): rows [RB z, RB z + RB) of K/V head hk's group x Nq rows, keys
 * [split * chunk, split * chunk + chunk). With ws_o the partial (unnormalised O, max, sum) goes
 * to the workspace, else O and LSE are written. */
/* the host emulation instantiates it with a host-only context */
#pragma nv_exec_check_disable
template <int D, int RB, int FMT, class CX>
VT_HD void body(CX &cx, const vt_attn_dev_args &a, smem<D, RB, FMT> &sm, long long chunk,
                float *ws_o, float *ws_ml, int split, int hk, long long z) {
    constexpr int LPK = D / 8, KPI = 32 / LPK;        /* lanes per key, keys per step */
    constexpr int UB = RB >= 8 ? 2 : RB >= 4 ? 4 : 8; /* steps whose row loads fly together */
    static_assert((KT / KPI) % UB == 0, "a tile is whole batches of steps");
    const int tid = cx.tid(), warp = tid / 32, lane = tid % 32;
    const long long R = (long long)a.group * a.nq, r0 = z * RB;
    const int nr = (int)(R - r0 < RB ? R - r0 : RB);
    vt_attn_lut_load(&sm.lut, tid);

    for (int idx = tid; idx < RB * D / 8; idx += NTH) {
        int ri = idx / (D / 8), c = (idx % (D / 8)) * 8;
        float f[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        if (ri < nr) {
            long long r = r0 + ri, h = (long long)hk * a.group + r / a.nq, i = r % a.nq;
            vt_load_q8(a.q, a.q_dtype, ((size_t)h * a.nq + i) * D + c, f);
        }
        VT_UNROLL
        for (int e = 0; e < 8; e++) sm.q[ri][c + e] = f[e] * a.scale_log2;
    }
    if (tid < RB) sm.lim[tid] = tid < nr ? vt_visible(a, (r0 + tid) % a.nq) : 0;
    cx.sync();

    long long ks0 = (long long)split * chunk, ks1 = ks0 + chunk < a.nk ? ks0 + chunk : a.nk;
    long long maxlim = 0;
    VT_UNROLL
    for (int ri = 0; ri < RB; ri++) maxlim = sm.lim[ri] > maxlim ? sm.lim[ri] : maxlim;
    if (maxlim < ks1) ks1 = maxlim;

    const uint8_t *kb = a.k + (size_t)hk * a.head_stride, *vb = a.v + (size_t)hk * a.head_stride;
    float m[RB], l[RB], acc[RB][8];
    VT_UNROLL
    for (int ri = 0; ri < RB; ri++) {
        m[ri] = -INFINITY, l[ri] = 0.0f;
        VT_UNROLL
        for (int e = 0; e < 8; e++) acc[ri][e] = 0.0f;
    }
    const int sub = lane / LPK, d0 = (lane % LPK) * 8;
    constexpr bool PIPE = pipe<FMT>();
    constexpr int RBY = vt_kv_row_bytes<FMT>(D); /* == a.row_bytes (the launcher checks) */

    /* PIPE: group j of this thread's copies (committed at the warp's tile j) holds tile j + 1;
     * the group before the loop tile 0; wait_group 1 at tile j leaves only group j in flight */
    int st = 0;
    if constexpr (PIPE) {
        if (ks0 + (long long)warp * KT < ks1)
            issue_tile<D, FMT>(cx, lane, sm.kv[warp][0], kb, vb, ks0 + (long long)warp * KT, ks1);
        cx.commit();
    }
    for (long long t0 = ks0 + (long long)warp * KT; t0 < ks1; t0 += (long long)NW * KT, st ^= 1) {
        /* rows of this tile: relative key i at kt + i * row_bytes (and vt) */
        const uint8_t *kt, *vt;
        if constexpr (PIPE) {
            const long long tn = t0 + (long long)NW * KT;
            if (tn < ks1) /* into the stage the last tile used */
                issue_tile<D, FMT>(cx, lane, sm.kv[warp][st ^ 1], kb, vb, tn, ks1);
            cx.commit();
            cx.template wait<1>(); /* this lane's copies of this tile have landed */
            cx.syncwarp();         /* ... and the other lanes' */
            kt = sm.kv[warp][st][0] + ((uintptr_t)(kb + (size_t)t0 * RBY) & 15);
            vt = sm.kv[warp][st][1] + ((uintptr_t)(vb + (size_t)t0 * RBY) & 15);
        } else {
            kt = kb + (size_t)t0 * RBY;
            vt = vb + (size_t)t0 * RBY;
        }
        /* Scores of the warp's KT keys with LPK lanes per key (KPI keys per step), each lane 8
         * values of the row: a key's row is read by consecutive lanes (coalesced; lane-per-key
         * reads touched a cache line per lane per load, and 34- or 18-byte q8_0 / q4_0 blocks
         * forced 2-byte loads). UB steps' rows are loaded before any is used (keys past ks1
         * load the last valid row and count 0), so UB loads per lane are in flight. The LPK
         * partial dot products meet by shuffles; the scores go through sm.p to the lane-per-key
         * softmax below. */
        for (int kk0 = 0; kk0 < KT; kk0 += UB * KPI) {
            if (t0 + kk0 >= ks1) break; /* warp-uniform */
            float kv[UB][8];
            bool ok[UB];
            load_steps<FMT, UB, KPI>(a, kt, kk0 + sub, ks1 - t0, d0, &sm.lut, kv, ok);
            VT_UNROLL
            for (int u = 0; u < UB; u++) {
                VT_UNROLL
                for (int ri = 0; ri < RB; ri++) {
                    float4 qa = *reinterpret_cast<const float4 *>(&sm.q[ri][d0]);
                    float4 qb = *reinterpret_cast<const float4 *>(&sm.q[ri][d0 + 4]);
                    const float *k8 = kv[u];
                    float s = qa.x * k8[0] + qa.y * k8[1] + qa.z * k8[2] + qa.w * k8[3] +
                              qb.x * k8[4] + qb.y * k8[5] + qb.z * k8[6] + qb.w * k8[7];
                    s = ok[u] ? s : 0.0f;
                    VT_UNROLL
                    for (int off = 1; off < LPK; off *= 2) s += cx.shfl_xor(s, off);
                    if (lane % LPK == 0) sm.p[warp][ri][kk0 + u * KPI + sub] = s;
                }
            }
        }
        cx.syncwarp();
        const long long key = t0 + lane;
        VT_UNROLL
        for (int ri = 0; ri < RB; ri++) {
            /* a slot past ks1 was never written this tile: masked here before use */
            float sv = (key < ks1 && key < sm.lim[ri]) ? sm.p[warp][ri][lane] : -INFINITY;
            float mx = sv;
            VT_UNROLL
            for (int off = 16; off > 0; off /= 2) mx = fmaxf(mx, cx.shfl_xor(mx, off));
            float mn = fmaxf(m[ri], mx);
            float mu = mn == -INFINITY ? 0.0f : mn;
            float alpha = exp2f(m[ri] - mu), p = exp2f(sv - mu);
            l[ri] = l[ri] * alpha + p; /* lane-partial sum; alpha is warp-uniform */
            m[ri] = mn;
            VT_UNROLL
            for (int e = 0; e < 8; e++) acc[ri][e] *= alpha;
            sm.p[warp][ri][lane] = p;
        }
        cx.syncwarp();
        /* P V, UB steps' V rows loaded before use as above (a key past ks1 adds exactly 0) */
        for (int kk0 = 0; kk0 < KT; kk0 += UB * KPI) {
            if (t0 + kk0 >= ks1) break; /* warp-uniform */
            float vv[UB][8];
            bool ok[UB];
            load_steps<FMT, UB, KPI>(a, vt, kk0 + sub, ks1 - t0, d0, &sm.lut, vv, ok);
            VT_UNROLL
            for (int u = 0; u < UB; u++) {
                VT_UNROLL
                for (int e = 0; e < 8; e++) vv[u][e] = ok[u] ? vv[u][e] : 0.0f;
                VT_UNROLL
                for (int ri = 0; ri < RB; ri++) {
                    float p = sm.p[warp][ri][kk0 + u * KPI + sub];
                    VT_UNROLL
                    for (int e = 0; e < 8; e++) acc[ri][e] += p * vv[u][e];
                }
            }
        }
        cx.syncwarp();
    }

    /* merge the lanes of a warp, then the warps */
    VT_UNROLL
    for (int ri = 0; ri < RB; ri++) {
        VT_UNROLL
        for (int off = LPK; off < 32; off *= 2) VT_UNROLL
        for (int e = 0; e < 8; e++) acc[ri][e] += cx.shfl_xor(acc[ri][e], off);
        VT_UNROLL
        for (int off = 16; off > 0; off /= 2) l[ri] += cx.shfl_xor(l[ri], off);
        if (lane < LPK) VT_UNROLL
        for (int e = 0; e < 8; e++) sm.wacc[warp][ri][d0 + e] = acc[ri][e];
        if (lane == 0) sm.wm[warp][ri] = m[ri], sm.wl[warp][ri] = l[ri];
    }
    cx.sync();
    for (int idx = tid; idx < RB * D; idx += NTH) {
        int ri = idx / D, d = idx % D;
        if (ri >= nr) continue;
        float M = -INFINITY;
        VT_UNROLL
        for (int w = 0; w < NW; w++) M = fmaxf(M, sm.wm[w][ri]);
        float L = 0.0f, o = 0.0f;
        if (M != -INFINITY) VT_UNROLL
        for (int w = 0; w < NW; w++) {
            float f = exp2f(sm.wm[w][ri] - M);
            L += f * sm.wl[w][ri];
            o += f * sm.wacc[w][ri][d];
        }
        long long r = r0 + ri, h = (long long)hk * a.group + r / a.nq, i = r % a.nq;
        size_t row = (size_t)h * a.nq + i;
        if (ws_o) {
            ws_o[((size_t)split * a.H * a.nq + row) * D + d] = o;
            if (d == 0) {
                ws_ml[((size_t)split * a.H * a.nq + row) * 2] = M;
                ws_ml[((size_t)split * a.H * a.nq + row) * 2 + 1] = L;
            }
        } else {
            float x = L > 0.0f ? o / L : 0.0f;
            if (a.o_dtype == 0)
                static_cast<float *>(a.o)[row * D + d] = x;
            else
                static_cast<__half *>(a.o)[row * D + d] = __float2half_rn(x);
            if (d == 0 && a.lse) a.lse[row] = L > 0.0f ? (M + log2f(L)) * VT_LN2 : -INFINITY;
        }
    }
}

/* The combine kernel's thread (row, d): merge the splits' partials of one output value by
 * their log-sum-exp (empty splits carry max -inf, sum 0, O 0). */
VT_HD void combine_one(const vt_attn_dev_args &a, int splits, const float *ws_o, const float *ws_ml,
                       size_t row, int d) {
    const size_t rows = (size_t)a.H * a.nq;
    float M = -INFINITY;
    for (int s = 0; s < splits; s++) M = fmaxf(M, ws_ml[(s * rows + row) * 2]);
    float L = 0.0f, o = 0.0f;
    if (M != -INFINITY)
        for (int s = 0; s < splits; s++) {
            float f = exp2f(ws_ml[(s * rows + row) * 2] - M);
            L += f * ws_ml[(s * rows + row) * 2 + 1];
            o += f * ws_o[(s * rows + row) * a.D + d];
        }
    float x = L > 0.0f ? o / L : 0.0f;
    if (a.o_dtype == VT_DTYPE_F32)
        static_cast<float *>(a.o)[row * a.D + d] = x;
    else
        static_cast<__half *>(a.o)[row * a.D + d] = __float2half_rn(x);
    if (d == 0 && a.lse) a.lse[row] = L > 0.0f ? (M + log2f(L)) * VT_LN2 : -INFINITY;
}

/* The split plan of one decode call: rows per CTA, row chunks, splits and keys per split.
 * bound is the split count before the chunk is rounded to whole tiles (>= splits, and for a
 * fixed shape non-decreasing in nk), which vt_attn_cuda_decode_ws_bytes sizes for. */
struct plan {
    int rb;
    long long zc, splits, chunk, bound;
};

inline plan plan_splits(const vt_attn_dev_args &a, int num_splits, int sms) {
    plan pl;
    long long R = (long long)a.group * a.nq;
    pl.rb = R >= 8 ? 8 : R >= 4 ? 4 : R >= 2 ? 2 : 1;
    pl.zc = (R + pl.rb - 1) / pl.rb;
    long long nk = a.nk > 0 ? a.nk : 1;
    long long splits = num_splits;
    if (splits <= 0) { /* about 4 CTAs per SM, at least 256 keys per split */
        long long base = (long long)a.Hkv * pl.zc;
        if (base < 1) base = 1;
        splits = (4LL * sms + base - 1) / base;
        long long by_len = (nk + 255) / 256;
        if (splits > by_len) splits = by_len;
    }
    if (splits < 1) splits = 1;
    if (splits > 1024) splits = 1024;
    pl.bound = splits;
    long long chunk = (nk + splits - 1) / splits;
    pl.chunk = (chunk + KT - 1) / KT * KT;
    pl.splits = (nk + pl.chunk - 1) / pl.chunk;
    return pl;
}

/* Workspace of @p splits splits: [splits][H*nq][D] partial O, then [splits][H*nq][2] (m, l). */
inline size_t ws_bytes(const vt_attn_dev_args &a, long long splits) {
    if (splits <= 1) return 0;
    return (size_t)splits * (size_t)a.H * (size_t)a.nq * ((size_t)a.D + 2) * sizeof(float);
}

/* The plan of a call (no workspace: one split) and the workspace's partial O and (max, sum)
 * arrays (NULL for one split). 0, VT_EUNSUPPORTED (grid) or VT_EBUDGET (workspace too small). */
inline int prepare(const vt_attn_dev_args &a, int num_splits, int sms, plan &pl, float *&wo,
                   float *&wml) {
    /* no workspace: one split, so nothing is allocated here (issue 6: no per-call allocation) */
    pl = plan_splits(a, a.ws ? num_splits : 1, sms);
    wo = wml = nullptr;
    /* grid limits: y = Hkv, z = row chunks, the combine's x = H x Nq rows */
    if (pl.zc > 65535 || a.Hkv > 65535 || (long long)a.H * a.nq > 0x7fffffffLL)
        return vt_fail(VT_EUNSUPPORTED,
                       "attn decode: %lld query rows per K/V head x Hkv %d "
                       "exceed the grid (use the prefill kernel)",
                       (long long)a.group * a.nq, a.Hkv);
    size_t need = ws_bytes(a, pl.splits);
    if (need > (a.ws ? a.ws_bytes : 0))
        return vt_fail(VT_EBUDGET,
                       "attn decode: workspace of %zu bytes < %zu bytes needed for %lld splits "
                       "(size it with vt_attn_workspace_bytes)",
                       a.ws_bytes, need, pl.splits);
    if (pl.splits > 1) {
        wo = static_cast<float *>(a.ws);
        wml = wo + (size_t)pl.splits * a.H * a.nq * a.D;
    }
    return 0;
}

} // namespace vt_decode

#endif
