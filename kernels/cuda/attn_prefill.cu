/* Flash attention prefill on tensor cores (FlashAttention-2 structure, sm_80+).
 *
 * One CTA = 4 warps = 128 queries of one head; each warp owns 32 query rows (two m16 row blocks,
 * so that each K/V fragment loaded by ldmatrix feeds two MMAs). Q is staged through shared
 * memory into registers (A fragments) once at D 64; at D 128 it stays in shared memory and its
 * fragments are loaded per K step (registers). The K and V tiles of 64 keys come through
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

/* CTAs per SM for the launch bound: D 64 unbounded; D 128 with RM 2: 2 per sm_90 SM (227 KiB of
 * shared memory, 104 KB a CTA with the double-buffered f16 tiles and Q; <= 255 registers, the 32
 * rows' accumulators take 128), 1 on sm_80 (A100: 164 KiB); D 128 with RM 1 (devices with less
 * shared memory): 3 per sm_90 SM (<= 168 registers), 2 on sm_80. */
template <int D, int RM> constexpr int min_ctas() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ < 900
    return D == 64 ? 1 : RM == 2 ? 1 : 2;
#else
    return D == 64 ? 1 : RM == 2 ? 2 : 3;
#endif
}

template <int D, typename T, int FMT, int RM>
__global__ void __launch_bounds__(NTHREADS, min_ctas<D, RM>()) prefill_kernel(vt_attn_dev_args a) {
    extern __shared__ __align__(16) unsigned char smem_raw[];
    vt_simt_dev cx;
    body<D, T, FMT, RM>(cx, a, *reinterpret_cast<smem<D, T, FMT, RM> *>(smem_raw),
                        (long long)blockIdx.x, (int)blockIdx.y);
}

template <int D, typename T, int FMT, int RM>
int launch_rm(const vt_attn_dev_args &a, cudaStream_t st) {
    size_t smem_bytes = sizeof(smem<D, T, FMT, RM>);
    auto kern = prefill_kernel<D, T, FMT, RM>;
    static std::atomic<unsigned long long> attr_set{0};
    int rc = vt_cuda_smem_optin(kern, smem_bytes, attr_set, "attn prefill: shared memory");
    if (rc) return rc;
    dim3 grid((unsigned)((a.nq + bm<RM>() - 1) / bm<RM>()), (unsigned)a.H);
    kern<<<grid, NTHREADS, smem_bytes, st>>>(a);
    VT_CUDA_TRY(cudaGetLastError(), "attn prefill: launch");
    return 0;
}

/* RM 2 where its shared memory fits the device (always at D 64), else RM 1. */
template <int D, typename T, int FMT> int launch(const vt_attn_dev_args &a, cudaStream_t st) {
    if (a.row_bytes != vt_kv_row_bytes<FMT>(D))
        return vt_fail(-EINVAL, "attn prefill: K/V rows of %lld bytes, want %d for D %d",
                       a.row_bytes, vt_kv_row_bytes<FMT>(D), D);
    if constexpr (D == 128) {
        size_t max = 0;
        int rc = vt_cuda_smem_max(&max, "attn prefill: shared memory per block");
        if (rc) return rc;
        if (sizeof(smem<D, T, FMT, 2>) > max) return launch_rm<D, T, FMT, 1>(a, st);
    }
    return launch_rm<D, T, FMT, 2>(a, st);
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
    if (a->nq > 65535ll * bm<1>() || a->H > 65535)
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
