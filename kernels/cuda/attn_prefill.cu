/* Flash attention prefill on tensor cores (FlashAttention-2 structure, sm_80+).
 *
 * One CTA = 4 warps = 64 queries of one head; each warp owns 16 query rows. Q is staged through
 * shared memory into registers (A fragments) once. The K and V tiles of 64 keys come through
 * shared memory by cp.async, the next tile's copies in flight while this one is computed: K/V
 * stored in the MMA type straight into double-buffered tiles, other stored formats as their
 * stored bytes (double-buffered), dequantized from shared memory into one f16/bf16 tile (f32 K/V:
 * loaded and converted through registers, no overlap; vt_prefill::smem). Then S = Q K^T (mma.sync
 * m16n8k16, f32 accumulators), the online softmax on the S fragments in registers (running max and
 * sum per row, accumulator rescale), P re-packed as A fragments, O += P V (V fragments by
 * ldmatrix.trans). Causal tiles past the block's last visible key are skipped; masking is applied
 * only on tiles that cross the diagonal or the ragged end (keys past a row's limit are -inf before
 * the row max; K/V rows past Nk are zero-filled, so 0 * garbage cannot make NaN). The tensor-core
 * type is f16 (Q, K, V and P rounded to f16), or bf16 for bf16 Q over K/V stored in bf16 or mxfp4
 * (vt_prefill::mma_bf16). The body is in attn_prefill.cuh, a template over the thread context,
 * which tests/attn/test_attn_kern_host runs on the host with emulated warps. */
#include <errno.h>
#include <math.h>

#include <atomic>

#include "attn_prefill.cuh"

namespace {

using namespace vt_prefill;

/* D 128 on sm_90: at most 168 registers, so that 3 CTAs (12 warps) fit an SM's 64K registers
 * (and its 227 KiB of shared memory: 70 KB a CTA with the double-buffered tiles); unbounded the
 * compiler takes 167-190 and only 2 fit. Before sm_90 at most 2 CTAs fit by shared memory
 * (A100: 164 KiB), so the bound is 2 CTAs and nothing spills. */
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ < 900
#define VT_PREFILL_D128_CTAS 2
#else
#define VT_PREFILL_D128_CTAS 3
#endif
template <int D, typename T, int FMT>
__global__ void __launch_bounds__(NTHREADS, D == 128 ? VT_PREFILL_D128_CTAS : 1)
    prefill_kernel(vt_attn_dev_args a) {
    extern __shared__ __align__(16) unsigned char smem_raw[];
    vt_simt_dev cx;
    body<D, T, FMT>(cx, a, *reinterpret_cast<smem<D, T, FMT> *>(smem_raw), (long long)blockIdx.x,
                    (int)blockIdx.y);
}

template <int D, typename T, int FMT> int launch(const vt_attn_dev_args &a, cudaStream_t st) {
    if (a.row_bytes != vt_kv_row_bytes<FMT>(D))
        return vt_fail(-EINVAL, "attn prefill: K/V rows of %lld bytes, want %d for D %d",
                       a.row_bytes, vt_kv_row_bytes<FMT>(D), D);
    size_t smem_bytes = sizeof(smem<D, T, FMT>);
    auto kern = prefill_kernel<D, T, FMT>;
    /* 3 CTAs of 70 KB per sm_90 SM with the largest carveout */
    static std::atomic<unsigned long long> attr_set{0};
    int rc = vt_cuda_smem_optin(kern, smem_bytes, attr_set, "attn prefill: shared memory");
    if (rc) return rc;
    dim3 grid((unsigned)((a.nq + BM - 1) / BM), (unsigned)a.H);
    kern<<<grid, NTHREADS, smem_bytes, st>>>(a);
    VT_CUDA_TRY(cudaGetLastError(), "attn prefill: launch");
    return 0;
}

/* vt_attn_fmt_dispatch's callback: the kernel instance of a format; bf16 MMAs only where
 * mma_bf16 takes them (bf16 Q over bf16 or mxfp4 K/V), so only those are instantiated. */
template <int D> struct launcher {
    const vt_attn_dev_args &a;
    cudaStream_t st;
    template <int FMT, int BE> int go(int) {
        if constexpr (FMT == VT_FMT_BF16 || FMT == VT_FMT_MXFP4)
            if (mma_bf16(a.q_dtype, FMT)) return launch<D, __nv_bfloat16, FMT>(a, st);
        return launch<D, __half, FMT>(a, st);
    }
};

} // namespace

extern "C" int vt_attn_cuda_prefill(const vt_attn_dev_args *a, void *stream) {
    if (a->nq > 65535ll * BM || a->H > 65535)
        return vt_fail(VT_EUNSUPPORTED, "attn prefill: Nq %lld / H %d exceed the grid", a->nq,
                       a->H);
    int rc = vt_attn_check_align(a, "attn prefill");
    if (rc) return rc;
    cudaStream_t st = static_cast<cudaStream_t>(stream);
    launcher<64> l64{*a, st};
    launcher<128> l128{*a, st};
    rc = a->D == 64 ? vt_attn_fmt_dispatch(a->fmt, l64) : vt_attn_fmt_dispatch(a->fmt, l128);
    if (rc == VT_EUNSUPPORTED) return vt_fail(rc, "attn prefill: K/V format %u", a->fmt);
    return rc;
}
