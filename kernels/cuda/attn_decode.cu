/* Flash-decoding: attention of a few query rows over a long K/V cache, split along the keys.
 *
 * Grid (split, K/V head, row chunk). A CTA takes up to RB query rows that share one K/V head
 * (the group's query heads x the Nq queries) and the keys of its split; each of its 4 warps
 * walks tiles of 32 keys, so every K/V byte is read once for the whole group. Online softmax per
 * row with lane = key; the warps' partial (max, sum, accumulator) are merged in shared memory;
 * with several splits each CTA writes its partial to a workspace and a combine kernel merges the
 * splits by their log-sum-exp.
 *
 * f32/f16/bf16 caches (at DRAM bandwidth): rows from global memory into registers, several
 * steps' rows in flight; scores with D/8 consecutive lanes per key (coalesced) meeting by
 * shuffles, probabilities through shared memory, P V with lanes along D. About 4 CTAs per SM.
 *
 * Quantized caches: each warp copies its tile's stored K bytes, then its V bytes, by cp.async
 * into its own K and V slots (one half tile in flight while the other is computed). Scores with
 * one lane per key reading its row from shared memory (no shuffles): q8_0/q4_0/int8 as integer
 * dot products (dp2a) of the stored bytes with Q quantized to int16 per block and laid out at the
 * bytes' positions in the row (q8_0/q4_0 rows may start at 2 mod 4: a second layout), scaled by
 * the K and Q block scales at the end; the LUT formats through their decoders. P V with lanes
 * along D: the integer formats by dp2a of key pairs' byte-transposed values with int16 weights
 * (p x V block scale in steps of the tile's largest), the others in floats with the block scale
 * folded into the weight. The split plan fills one wave of the CTAs that fit an SM (shared
 * memory, registers held by __launch_bounds__), half a wave for the integer-scored caches, which
 * read at DRAM speed with fewer CTAs (attn_decode.cuh plan_splits). The split count comes from
 * the SM count. */
#include <errno.h>
#include <math.h>

#include "attn_decode.cuh"

namespace {

using namespace vt_decode;

template <int D, int RB, int FMT>
__global__ void __launch_bounds__(NTH, RB >= 8 ? 4 : 1) /* 8 rows: 128 registers, as before */
    decode_kernel(vt_attn_dev_args a, long long chunk, float *ws_o, float *ws_ml) {
    extern __shared__ __align__(16) unsigned char smem_raw[];
    vt_simt_dev cx;
    body<D, RB, FMT>(cx, a, *reinterpret_cast<smem<D, RB, FMT> *>(smem_raw), chunk, ws_o, ws_ml,
                     (int)blockIdx.x, (int)blockIdx.y, (long long)blockIdx.z);
}

/* The quantized caches' kernel: registers held to what lets the plan's CTAs share an SM. */
template <int D, int RB, int FMT>
__global__ void __launch_bounds__(NTH, qctas<D, RB, FMT>())
    decode_kernel_q(vt_attn_dev_args a, long long chunk, float *ws_o, float *ws_ml) {
    extern __shared__ __align__(16) unsigned char smem_raw[];
    vt_simt_dev cx;
    body<D, RB, FMT>(cx, a, *reinterpret_cast<smem<D, RB, FMT> *>(smem_raw), chunk, ws_o, ws_ml,
                     (int)blockIdx.x, (int)blockIdx.y, (long long)blockIdx.z);
}

/* One CTA per (head, query) row, one thread per output column. */
__global__ void combine_kernel(vt_attn_dev_args a, int splits, const float *ws_o,
                               const float *ws_ml) {
    combine_one(a, splits, ws_o, ws_ml, blockIdx.x, (int)threadIdx.x);
}

/* The split plan's device facts: SMs, and shared memory per SM (H100/H200: 233472 bytes). */
int sm_count(void) {
    return vt_cuda_sm_count(108);
}
long long smem_per_sm(void) {
    return vt_cuda_attr<cudaDevAttrMaxSharedMemoryPerMultiprocessor>(233472);
}

/* vt_attn_fmt_dispatch's callback: the decode kernel of a format for D and RB rows. */
template <int D, int RB> struct launcher {
    const vt_attn_dev_args &a;
    dim3 grid;
    long long chunk;
    float *wo, *wml;
    cudaStream_t st;
    template <int FMT, int BE> int go(int) {
        if (a.row_bytes != vt_kv_row_bytes<FMT>(D))
            return vt_fail(-EINVAL, "attn decode: K/V rows of %lld bytes, want %d for D %d",
                           a.row_bytes, vt_kv_row_bytes<FMT>(D), D);
        /* quantized caches: 18-37 KB of K/V slots at D 128 (shared memory opt-in) */
        void (*kern)(vt_attn_dev_args, long long, float *, float *);
        if constexpr (pipe<FMT>())
            kern = decode_kernel_q<D, RB, FMT>;
        else
            kern = decode_kernel<D, RB, FMT>;
        const size_t bytes = sizeof(smem<D, RB, FMT>);
        static std::atomic<unsigned long long> attr_set{0};
        int rc = vt_cuda_smem_optin(kern, bytes, attr_set, "attn decode: shared memory");
        if (rc) return rc;
        kern<<<grid, NTH, bytes, st>>>(a, chunk, wo, wml);
        return 0;
    }
};

template <int D>
int launch_rb(const vt_attn_dev_args &a, int rb, dim3 grid, long long chunk, float *wo, float *wml,
              cudaStream_t st) {
    switch (rb) {
    case 1: {
        launcher<D, 1> l{a, grid, chunk, wo, wml, st};
        return vt_attn_fmt_dispatch(a.fmt, l);
    }
    case 2: {
        launcher<D, 2> l{a, grid, chunk, wo, wml, st};
        return vt_attn_fmt_dispatch(a.fmt, l);
    }
    case 4: {
        launcher<D, 4> l{a, grid, chunk, wo, wml, st};
        return vt_attn_fmt_dispatch(a.fmt, l);
    }
    default: {
        launcher<D, 8> l{a, grid, chunk, wo, wml, st};
        return vt_attn_fmt_dispatch(a.fmt, l);
    }
    }
}

} // namespace

extern "C" size_t vt_attn_cuda_decode_ws_bytes(const vt_attn_dev_args *a, int num_splits) {
    return ws_bytes(*a, plan_splits(*a, num_splits, sm_count(), smem_per_sm()).bound);
}

extern "C" int vt_attn_cuda_decode(const vt_attn_dev_args *a, int num_splits, void *stream) {
    int arc = vt_attn_check_align(a, "attn decode");
    if (arc) return arc;
    cudaStream_t st = static_cast<cudaStream_t>(stream);
    plan pl;
    float *wo, *wml;
    int rc = prepare(*a, num_splits, sm_count(), pl, wo, wml, smem_per_sm());
    if (rc) return rc;
    dim3 grid((unsigned)pl.splits, (unsigned)a->Hkv, (unsigned)pl.zc);

    rc = a->D == 64 ? launch_rb<64>(*a, pl.rb, grid, pl.chunk, wo, wml, st)
                    : launch_rb<128>(*a, pl.rb, grid, pl.chunk, wo, wml, st);
    if (rc == VT_EUNSUPPORTED) return vt_fail(rc, "attn decode: K/V format %u", a->fmt);
    if (rc) return rc;
    cudaError_t e = cudaGetLastError();
    if (pl.splits > 1 && e == cudaSuccess) {
        combine_kernel<<<(unsigned)((size_t)a->H * a->nq), a->D, 0, st>>>(*a, (int)pl.splits, wo,
                                                                          wml);
        e = cudaGetLastError();
    }
    if (e != cudaSuccess)
        return vt_fail(VT_ECUDA, "attn decode: launch: %s", cudaGetErrorString(e));
    return 0;
}
