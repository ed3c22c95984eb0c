/* Flash-decoding: attention of a few query rows over a long K/V cache, split along the keys.
 *
 * Grid (split, K/V head, row chunk). A CTA takes up to RB query rows that share one K/V head
 * (the group's query heads x the Nq queries) and the keys of its split; each of its 4 warps
 * walks tiles of 32 keys. Scores: lane = key; the lane reads its K row in the stored format,
 * dequantizes 8 values at a time and accumulates the dot products with all RB rows (Q in shared
 * memory, broadcast reads), so every K byte is read once for the whole group. Online softmax per
 * row across the warp, probabilities through shared memory, then P V with lanes along D (V rows
 * read coalesced in their stored format). The warps' partial (max, sum, accumulator) are merged
 * in shared memory; with several splits each CTA writes its partial to a workspace and a combine
 * kernel merges the splits by their log-sum-exp. The split count comes from the SM count. */
#include <errno.h>
#include <math.h>

#include "attn_common.cuh"

namespace {

constexpr int NW = 4, NTH = NW * 32, KT = 32;

template <int D, int RB> struct decode_smem {
    float q[RB][D];
    long long lim[RB];
    float p[NW][RB][KT];
    float wm[NW][RB], wl[NW][RB];
    float wacc[NW][RB][D];
    vt_attn_lut lut;
};

template <int D, int RB, int FMT>
__global__ void __launch_bounds__(NTH)
    decode_kernel(vt_attn_dev_args a, long long chunk, float *ws_o, float *ws_ml) {
    constexpr int LPK = D / 8, KPI = 32 / LPK; /* P V: lanes per key, keys per step */
    __shared__ __align__(16) decode_smem<D, RB> sm;
    const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32;
    const int split = blockIdx.x, hk = blockIdx.y;
    const long long R = (long long)a.group * a.nq, r0 = (long long)blockIdx.z * RB;
    const int nr = (int)(R - r0 < RB ? R - r0 : RB);
    vt_attn_lut_load(&sm.lut);

    for (int idx = tid; idx < RB * D / 8; idx += NTH) {
        int ri = idx / (D / 8), c = (idx % (D / 8)) * 8;
        float f[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        if (ri < nr) {
            long long r = r0 + ri, h = (long long)hk * a.group + r / a.nq, i = r % a.nq;
            vt_load_q8(a.q, a.q_dtype, ((size_t)h * a.nq + i) * D + c, f);
        }
#pragma unroll
        for (int e = 0; e < 8; e++) sm.q[ri][c + e] = f[e] * a.scale_log2;
    }
    if (tid < RB) sm.lim[tid] = tid < nr ? vt_visible(a, (r0 + tid) % a.nq) : 0;
    __syncthreads();

    long long ks0 = (long long)split * chunk, ks1 = ks0 + chunk < a.nk ? ks0 + chunk : a.nk;
    long long maxlim = 0;
#pragma unroll
    for (int ri = 0; ri < RB; ri++) maxlim = sm.lim[ri] > maxlim ? sm.lim[ri] : maxlim;
    if (maxlim < ks1) ks1 = maxlim;

    const uint8_t *kb = a.k + (size_t)hk * a.head_stride, *vb = a.v + (size_t)hk * a.head_stride;
    float m[RB], l[RB], acc[RB][8];
#pragma unroll
    for (int ri = 0; ri < RB; ri++) {
        m[ri] = -INFINITY, l[ri] = 0.0f;
#pragma unroll
        for (int e = 0; e < 8; e++) acc[ri][e] = 0.0f;
    }
    const int sub = lane / LPK, d0 = (lane % LPK) * 8;

    for (long long t0 = ks0 + (long long)warp * KT; t0 < ks1; t0 += (long long)NW * KT) {
        const long long key = t0 + lane;
        float s[RB];
#pragma unroll
        for (int ri = 0; ri < RB; ri++) s[ri] = 0.0f;
        if (key < ks1) {
            const uint8_t *row = kb + (size_t)key * a.row_bytes;
#pragma unroll 4
            for (int c = 0; c < D; c += 8) {
                float kv[8];
                vt_deq8<FMT>(row, c, a.ts, &sm.lut, kv);
#pragma unroll
                for (int ri = 0; ri < RB; ri++) {
                    float4 qa = *reinterpret_cast<const float4 *>(&sm.q[ri][c]);
                    float4 qb = *reinterpret_cast<const float4 *>(&sm.q[ri][c + 4]);
                    s[ri] += qa.x * kv[0] + qa.y * kv[1] + qa.z * kv[2] + qa.w * kv[3] +
                             qb.x * kv[4] + qb.y * kv[5] + qb.z * kv[6] + qb.w * kv[7];
                }
            }
        }
#pragma unroll
        for (int ri = 0; ri < RB; ri++) {
            float sv = (key < ks1 && key < sm.lim[ri]) ? s[ri] : -INFINITY;
            float mx = sv;
#pragma unroll
            for (int off = 16; off > 0; off /= 2)
                mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, off));
            float mn = fmaxf(m[ri], mx);
            float mu = mn == -INFINITY ? 0.0f : mn;
            float alpha = exp2f(m[ri] - mu), p = exp2f(sv - mu);
            l[ri] = l[ri] * alpha + p; /* lane-partial sum; alpha is warp-uniform */
            m[ri] = mn;
#pragma unroll
            for (int e = 0; e < 8; e++) acc[ri][e] *= alpha;
            sm.p[warp][ri][lane] = p;
        }
        __syncwarp();
#pragma unroll 2
        for (int kk = 0; kk < KT; kk += KPI) {
            long long k2 = t0 + kk + sub;
            if (k2 >= ks1) break;
            float vv[8];
            vt_deq8<FMT>(vb + (size_t)k2 * a.row_bytes, d0, a.ts, &sm.lut, vv);
#pragma unroll
            for (int ri = 0; ri < RB; ri++) {
                float p = sm.p[warp][ri][kk + sub];
#pragma unroll
                for (int e = 0; e < 8; e++) acc[ri][e] += p * vv[e];
            }
        }
        __syncwarp();
    }

    /* merge the lanes of a warp, then the warps */
#pragma unroll
    for (int ri = 0; ri < RB; ri++) {
#pragma unroll
        for (int off = LPK; off < 32; off *= 2)
#pragma unroll
            for (int e = 0; e < 8; e++) acc[ri][e] += __shfl_xor_sync(0xffffffffu, acc[ri][e], off);
#pragma unroll
        for (int off = 16; off > 0; off /= 2) l[ri] += __shfl_xor_sync(0xffffffffu, l[ri], off);
        if (lane < LPK)
#pragma unroll
            for (int e = 0; e < 8; e++) sm.wacc[warp][ri][d0 + e] = acc[ri][e];
        if (lane == 0) sm.wm[warp][ri] = m[ri], sm.wl[warp][ri] = l[ri];
    }
    __syncthreads();
    for (int idx = tid; idx < RB * D; idx += NTH) {
        int ri = idx / D, d = idx % D;
        if (ri >= nr) continue;
        float M = -INFINITY;
#pragma unroll
        for (int w = 0; w < NW; w++) M = fmaxf(M, sm.wm[w][ri]);
        float L = 0.0f, o = 0.0f;
        if (M != -INFINITY)
#pragma unroll
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

/* One CTA per (head, query) row, one thread per output column. */
__global__ void combine_kernel(vt_attn_dev_args a, int splits, const float *ws_o,
                               const float *ws_ml) {
    const size_t row = blockIdx.x, rows = (size_t)a.H * a.nq;
    const int d = threadIdx.x;
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
    if (a.o_dtype == 0)
        static_cast<float *>(a.o)[row * a.D + d] = x;
    else
        static_cast<__half *>(a.o)[row * a.D + d] = __float2half_rn(x);
    if (d == 0 && a.lse) a.lse[row] = L > 0.0f ? (M + log2f(L)) * VT_LN2 : -INFINITY;
}

int sm_count(void) {
    static int cached[64];
    int dev = 0;
    if (cudaGetDevice(&dev) != cudaSuccess || dev < 0 || dev >= 64) return 108;
    if (!cached[dev]) {
        int n = 0;
        if (cudaDeviceGetAttribute(&n, cudaDevAttrMultiProcessorCount, dev) != cudaSuccess ||
            n <= 0)
            n = 108;
        cached[dev] = n;
    }
    return cached[dev];
}

template <int D, int RB, int FMT>
void launch(const vt_attn_dev_args &a, dim3 grid, long long chunk, float *wo, float *wml,
            cudaStream_t st) {
    decode_kernel<D, RB, FMT><<<grid, NTH, 0, st>>>(a, chunk, wo, wml);
}

template <int D, int RB>
int launch_fmt(const vt_attn_dev_args &a, dim3 grid, long long chunk, float *wo, float *wml,
               cudaStream_t st) {
    switch (a.fmt) {
    case VT_FMT_F32:
        launch<D, RB, VT_FMT_F32>(a, grid, chunk, wo, wml, st);
        break;
    case VT_FMT_F16:
        launch<D, RB, VT_FMT_F16>(a, grid, chunk, wo, wml, st);
        break;
    case VT_FMT_BF16:
        launch<D, RB, VT_FMT_BF16>(a, grid, chunk, wo, wml, st);
        break;
    case VT_FMT_Q8_0:
        launch<D, RB, VT_FMT_Q8_0>(a, grid, chunk, wo, wml, st);
        break;
    case VT_FMT_INT8:
        launch<D, RB, VT_FMT_INT8>(a, grid, chunk, wo, wml, st);
        break;
    case VT_FMT_Q4_0:
        launch<D, RB, VT_FMT_Q4_0>(a, grid, chunk, wo, wml, st);
        break;
    case VT_FMT_NF4:
        launch<D, RB, VT_FMT_NF4>(a, grid, chunk, wo, wml, st);
        break;
    case VT_FMT_NVFP4:
        launch<D, RB, VT_FMT_NVFP4>(a, grid, chunk, wo, wml, st);
        break;
    case VT_FMT_MXFP4:
        launch<D, RB, VT_FMT_MXFP4>(a, grid, chunk, wo, wml, st);
        break;
    default:
        return vt_fail(VT_EUNSUPPORTED, "attn decode: K/V format %u", a.fmt);
    }
    return 0;
}

template <int D>
int launch_rb(const vt_attn_dev_args &a, int rb, dim3 grid, long long chunk, float *wo, float *wml,
              cudaStream_t st) {
    switch (rb) {
    case 1:
        return launch_fmt<D, 1>(a, grid, chunk, wo, wml, st);
    case 2:
        return launch_fmt<D, 2>(a, grid, chunk, wo, wml, st);
    case 4:
        return launch_fmt<D, 4>(a, grid, chunk, wo, wml, st);
    default:
        return launch_fmt<D, 8>(a, grid, chunk, wo, wml, st);
    }
}

/* The split plan of one decode call: rows per CTA, row chunks, splits and keys per split.
 * bound is the split count before the chunk is rounded to whole tiles (>= splits, and for a
 * fixed shape non-decreasing in nk), which vt_attn_cuda_decode_ws_bytes sizes for. */
struct decode_plan {
    int rb;
    long long zc, splits, chunk, bound;
};

decode_plan plan_splits(const vt_attn_dev_args &a, int num_splits) {
    decode_plan pl;
    long long R = (long long)a.group * a.nq;
    pl.rb = R >= 8 ? 8 : R >= 4 ? 4 : R >= 2 ? 2 : 1;
    pl.zc = (R + pl.rb - 1) / pl.rb;
    long long nk = a.nk > 0 ? a.nk : 1;
    long long splits = num_splits;
    if (splits <= 0) { /* about 4 CTAs per SM, at least 256 keys per split */
        long long base = (long long)a.Hkv * pl.zc;
        if (base < 1) base = 1;
        splits = (4LL * sm_count() + base - 1) / base;
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
size_t ws_bytes(const vt_attn_dev_args &a, long long splits) {
    if (splits <= 1) return 0;
    return (size_t)splits * (size_t)a.H * (size_t)a.nq * ((size_t)a.D + 2) * sizeof(float);
}

} // namespace

extern "C" size_t vt_attn_cuda_decode_ws_bytes(const vt_attn_dev_args *a, int num_splits) {
    return ws_bytes(*a, plan_splits(*a, num_splits).bound);
}

extern "C" int vt_attn_cuda_decode(const vt_attn_dev_args *a, int num_splits, void *stream) {
    int arc = vt_attn_check_align(a, "attn decode");
    if (arc) return arc;
    cudaStream_t st = static_cast<cudaStream_t>(stream);
    /* no workspace: one split, so nothing is allocated here (issue 6: no per-call allocation) */
    decode_plan pl = plan_splits(*a, a->ws ? num_splits : 1);
    if (pl.zc > 65535 || a->Hkv > 65535)
        return vt_fail(VT_EUNSUPPORTED,
                       "attn decode: %lld query rows per K/V head x Hkv %d "
                       "exceed the grid (use the prefill kernel)",
                       (long long)a->group * a->nq, a->Hkv);
    size_t need = ws_bytes(*a, pl.splits);
    if (need > (a->ws ? a->ws_bytes : 0))
        return vt_fail(VT_EBUDGET,
                       "attn decode: workspace of %zu bytes < %zu bytes needed for %lld splits "
                       "(size it with vt_attn_workspace_bytes)",
                       a->ws_bytes, need, pl.splits);
    dim3 grid((unsigned)pl.splits, (unsigned)a->Hkv, (unsigned)pl.zc);

    float *wo = nullptr, *wml = nullptr;
    size_t rows = (size_t)a->H * a->nq;
    if (pl.splits > 1) {
        wo = static_cast<float *>(a->ws);
        wml = wo + (size_t)pl.splits * rows * a->D;
    }
    int rc = a->D == 64 ? launch_rb<64>(*a, pl.rb, grid, pl.chunk, wo, wml, st)
                        : launch_rb<128>(*a, pl.rb, grid, pl.chunk, wo, wml, st);
    if (rc) return rc;
    cudaError_t e = cudaGetLastError();
    if (pl.splits > 1 && e == cudaSuccess) {
        combine_kernel<<<(unsigned)rows, a->D, 0, st>>>(*a, (int)pl.splits, wo, wml);
        e = cudaGetLastError();
    }
    if (e != cudaSuccess)
        return vt_fail(VT_ECUDA, "attn decode: launch: %s", cudaGetErrorString(e));
    return 0;
}
