/* KV cache on the GPU: device memory for the cache and the append kernel, which quantizes new
 * tokens' K/V rows into their slots. One thread per stored block (per element for the plain
 * formats). The block quantizers (attn_quant.cuh) mirror the quant module's reference
 * quantizers with explicitly rounded arithmetic, so the stored rows equal vt_quantize's on the
 * host (tests/attn/test_attn_quant_host runs them on the host; test_attn_gpu on the device).
 * A value the host append would refuse (NaN/Inf, or beyond the format's range) is stored as the
 * quantizer gives it and flagged in the cache's device word (attn_internal.h VT_KV_BAD_KEY) for
 * vt_kv_cache_check: the launch cannot fail on data it has not seen. */
#include <errno.h>
#include <math.h>

#include "attn_common.cuh"
#include "attn_quant.cuh"
#include "core/fault_internal.h"

namespace {

template <int FMT, int BE> __global__ void append_kernel(vt_attn_append_args a) {
    long long total = (long long)a.Hkv * a.n * a.nb;
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < total;
         i += (long long)gridDim.x * blockDim.x)
        vt_attn_append_one<FMT, BE>(a, i);
}

template <int FMT, int BE> int run(const vt_attn_append_args &a, cudaStream_t st) {
    long long total = (long long)a.Hkv * a.n * a.nb;
    long long blocks = (total + 255) / 256;
    if (blocks > 65535) blocks = 65535;
    append_kernel<FMT, BE><<<(unsigned)blocks, 256, 0, st>>>(a);
    VT_CUDA_TRY(cudaGetLastError(), "kv cache append: launch");
    return 0;
}

/* vt_attn_fmt_dispatch's callback: sets the block geometry and launches. */
struct launcher {
    vt_attn_append_args a;
    cudaStream_t st;
    template <int FMT, int BE> int go(int block_bytes) {
        a.nb = (a.D + BE - 1) / BE;
        a.block_bytes = block_bytes;
        return run<FMT, BE>(a, st);
    }
};

} // namespace

extern "C" int vt_attn_cuda_device_count(void) {
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
        cudaGetLastError(); /* clear the sticky "no device" error */
        return 0;
    }
    return n;
}

extern "C" int vt_attn_cuda_alloc(void **p, size_t n, int fill) {
    *p = nullptr;
    if (vt_attn_cuda_device_count() <= 0)
        return vt_fail(VT_ENODEV, "kv cache: no CUDA device is present");
    int f = vt_fault_check(VT_FAULT_DEVICE);
    if (f) return vt_fail(f, "kv cache: injected device allocation fault");
    VT_CUDA_TRY(cudaMalloc(p, n), "kv cache: device allocation");
    cudaError_t e = cudaMemset(*p, fill, n);
    if (e != cudaSuccess) {
        cudaFree(*p);
        *p = nullptr;
        return vt_fail(VT_ECUDA, "kv cache: cudaMemset: %s", cudaGetErrorString(e));
    }
    return 0;
}

extern "C" void vt_attn_cuda_free(void *p) {
    if (p) cudaFree(p);
}

extern "C" int vt_attn_cuda_bad_take(void *p, void *stream, uint64_t *key) {
    VT_CUDA_TRY(cudaStreamSynchronize(static_cast<cudaStream_t>(stream)),
                "kv cache check: waiting for the stream");
    unsigned long long k = VT_KV_BAD_NONE;
    VT_CUDA_TRY(cudaMemcpy(&k, p, sizeof k, cudaMemcpyDeviceToHost), "kv cache check: reading");
    if (k != VT_KV_BAD_NONE) { /* all ones again: none, on the appends' stream and waited for
                                * (cudaMemset runs on the legacy default stream, which the
                                * non-blocking streams of the device layer do not wait for: a
                                * later append could flag before the clear and lose its key) */
        int rc = vt_attn_cuda_bad_clear(p, stream);
        if (rc) return rc;
        VT_CUDA_TRY(cudaStreamSynchronize(static_cast<cudaStream_t>(stream)),
                    "kv cache check: clearing the flag word");
    }
    *key = k;
    return 0;
}

extern "C" int vt_attn_cuda_bad_clear(void *p, void *stream) {
    VT_CUDA_TRY(
        cudaMemsetAsync(p, 0xff, sizeof(unsigned long long), static_cast<cudaStream_t>(stream)),
        "kv cache: clearing the flag word");
    return 0;
}

extern "C" int vt_attn_cuda_append(const vt_kv_cache *c, const void *k, const void *v,
                                   vt_dtype dtype, uint64_t n_tokens, void *stream) {
    cudaStream_t st = static_cast<cudaStream_t>(stream);
    vt_attn_append_args a;
    a.dtype = (int)dtype;
    a.capacity = (long long)c->cfg.capacity;
    a.len = (long long)c->len;
    a.n = (long long)n_tokens;
    a.Hkv = (int)c->cfg.n_kv_heads;
    a.D = (int)c->cfg.head_dim;
    a.row_bytes = (long long)c->row_bytes;
    a.ts = c->cfg.tensor_scale > 0.0f ? c->cfg.tensor_scale : 1.0f;
    a.bad = static_cast<unsigned long long *>(c->bad);
    a.epoch = (unsigned)(c->epoch & 4095u);
    for (int which = 0; which < 2; which++) {
        a.is_v = which;
        a.src = which ? v : k;
        a.dst = static_cast<uint8_t *>(which ? c->v : c->k);
        launcher l{a, st};
        int rc = vt_attn_fmt_dispatch(c->cfg.format, l);
        if (rc == VT_EUNSUPPORTED) return vt_fail(rc, "kv cache append: format %u", c->cfg.format);
        if (rc) return rc;
    }
    return 0;
}
