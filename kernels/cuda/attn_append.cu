/* KV cache on the GPU: device memory for the cache and the append kernel, which quantizes new
 * tokens' K/V rows into their slots. One thread per stored block (per element for the plain
 * formats). Every operation mirrors the quant module's reference quantizer with explicitly
 * rounded intrinsics (__fdiv_rn, __frcp_rn, __fmul_rn, __fadd_rn), so --use_fast_math cannot
 * change a byte: the stored rows equal vt_quantize's on the host (tests/attn/test_attn_gpu). */
#include <errno.h>
#include <math.h>

#include "attn_common.cuh"

namespace {

__device__ __forceinline__ float load_in(const void *src, int dtype, size_t i) {
    return dtype == VT_DTYPE_F16 ? __half2float(static_cast<const __half *>(src)[i])
                                 : static_cast<const float *>(src)[i];
}

/* core/dtype.c vt_f32_to_e4m3 */
__device__ uint8_t dev_f32_to_e4m3(float f) {
    uint8_t sign = signbit(f) ? 0x80 : 0;
    float a = fabsf(f);
    if (a >= 448.0f) return sign | 0x7e;
    if (a < 0x1p-6f) return sign | (uint8_t)rintf(__fmul_rn(a, 0x1p9f));
    int e;
    float fr = frexpf(a, &e);
    e -= 1;
    int m = (int)rintf(__fmul_rn(__fsub_rn(__fmul_rn(2.0f, fr), 1.0f), 8.0f));
    if (m == 8) m = 0, e++;
    int code = ((e + 7) << 3) | m;
    if (code > 0x7e) code = 0x7e;
    return sign | (uint8_t)code;
}

/* core/dtype.c vt_f32_to_e2m1 */
__device__ uint8_t dev_f32_to_e2m1(float f) {
    uint8_t sign = signbit(f) ? 8 : 0;
    float a = fabsf(f);
    uint8_t c;
    if (!(a > 0.25f))
        c = 0;
    else if (a < 0.75f)
        c = 1;
    else if (a <= 1.25f)
        c = 2;
    else if (a < 1.75f)
        c = 3;
    else if (a <= 2.5f)
        c = 4;
    else if (a < 3.5f)
        c = 5;
    else if (a <= 5.0f)
        c = 6;
    else
        c = 7;
    return sign | c;
}

/* quant/nf4_codes.h vt_nf4_code_ref (bitsandbytes' decision tree) */
__device__ uint8_t dev_nf4_code(float x) {
    if (x > 0.03979014977812767f) {
        if (x > 0.3893125355243683f) {
            if (x > 0.6427869200706482f) return x > 0.8614784181118011f ? 15 : 14;
            return x > 0.5016634166240692f ? 13 : 12;
        }
        if (x > 0.2035212516784668f) return x > 0.2920137718319893f ? 11 : 10;
        return x > 0.1202552504837513f ? 9 : 8;
    }
    if (x > -0.33967943489551544f) {
        if (x > -0.13791173323988914f) return x > -0.045525018125772476f ? 7 : 6;
        return x > -0.23460740596055984f ? 5 : 4;
    }
    if (x > -0.6106329262256622f) return x > -0.4599952697753906f ? 3 : 2;
    return x > -0.8480964004993439f ? 1 : 0;
}

/* Quantize block b of one row: x(j) gives element j of the row (0 past D). */
template <int FMT, int BE>
__device__ void quant_block(const void *src, int dtype, size_t row_off, int D, int b, float ts,
                            uint8_t *out) {
    float x[BE];
#pragma unroll
    for (int j = 0; j < BE; j++) {
        int c = b * BE + j;
        x[j] = c < D ? load_in(src, dtype, row_off + c) : 0.0f;
    }
    float amax = 0.0f;
#pragma unroll
    for (int j = 0; j < BE; j++) amax = fabsf(x[j]) > amax ? fabsf(x[j]) : amax;
    if (FMT == VT_FMT_Q8_0) {
        float d = __fdiv_rn(amax, 127.0f);
        float id = d != 0.0f ? __frcp_rn(d) : 0.0f;
        *reinterpret_cast<__half *>(out) = __float2half_rn(d);
#pragma unroll
        for (int j = 0; j < BE; j++) {
            float v = __fmul_rn(x[j], id);
            out[2 + j] = (uint8_t)(isfinite(v) ? (int8_t)roundf(v) : 0);
        }
    } else if (FMT == VT_FMT_Q4_0) {
        float am = 0.0f, mx = 0.0f;
#pragma unroll
        for (int j = 0; j < BE; j++)
            if (am < fabsf(x[j])) am = fabsf(x[j]), mx = x[j];
        float d = __fdiv_rn(mx, -8.0f);
        float id = d != 0.0f ? __frcp_rn(d) : 0.0f;
        *reinterpret_cast<__half *>(out) = __float2half_rn(d);
#pragma unroll
        for (int j = 0; j < BE / 2; j++) {
            uint8_t c[2];
#pragma unroll
            for (int k = 0; k < 2; k++) {
                float v = __fmul_rn(x[j + k * BE / 2], id);
                int q = isfinite(v) ? (int)(int8_t)truncf(__fadd_rn(v, 8.5f)) : 0;
                c[k] = (uint8_t)(q < 15 ? q : 15);
            }
            out[2 + j] = (uint8_t)(c[0] | (c[1] << 4));
        }
    } else if (FMT == VT_FMT_INT8) {
        float d = __fdiv_rn(amax, 127.0f);
        *reinterpret_cast<float *>(out) = d;
#pragma unroll
        for (int j = 0; j < BE; j++) {
            float q = d == 0.0f ? 0.0f : roundf(__fdiv_rn(x[j], d));
            q = q > 127.0f ? 127.0f : (q < -127.0f ? -127.0f : q);
            out[4 + j] = (uint8_t)(int8_t)q;
        }
    } else if (FMT == VT_FMT_NF4) {
        *reinterpret_cast<float *>(out) = amax;
        float inv = __frcp_rn(amax);
        bool div = isinf(inv);
#pragma unroll
        for (int i = 0; i < BE / 2; i++) {
            uint8_t c0 = 7, c1 = 7;
            if (amax != 0.0f) {
                float a0 = div ? __fdiv_rn(x[2 * i], amax) : __fmul_rn(x[2 * i], inv);
                float a1 = div ? __fdiv_rn(x[2 * i + 1], amax) : __fmul_rn(x[2 * i + 1], inv);
                c0 = dev_nf4_code(a0), c1 = dev_nf4_code(a1);
            }
            out[4 + i] = (uint8_t)(c0 << 4 | c1);
        }
    } else if (FMT == VT_FMT_NVFP4) {
        uint8_t s = dev_f32_to_e4m3(__fdiv_rn(__fdiv_rn(amax, 6.0f), ts));
        float denom = __fmul_rn(ts, vt_dev_e4m3_to_f32(s));
        out[0] = s;
#pragma unroll
        for (int i = 0; i < BE / 2; i++) {
            uint8_t lo = denom != 0.0f ? dev_f32_to_e2m1(__fdiv_rn(x[2 * i], denom)) : 0;
            uint8_t hi = denom != 0.0f ? dev_f32_to_e2m1(__fdiv_rn(x[2 * i + 1], denom)) : 0;
            out[1 + i] = (uint8_t)(lo | hi << 4);
        }
    } else if (FMT == VT_FMT_MXFP4) {
        int E = -127;
        if (amax != 0.0f) {
            int e;
            frexpf(amax, &e);
            E = e - 1 - 2;
            E = E < -127 ? -127 : (E > 127 ? 127 : E);
        }
        float inv = ldexpf(1.0f, -E);
        out[0] = (uint8_t)(E + 127);
#pragma unroll
        for (int i = 0; i < BE / 2; i++) {
            uint8_t lo = dev_f32_to_e2m1(__fmul_rn(x[2 * i], inv));
            uint8_t hi = dev_f32_to_e2m1(__fmul_rn(x[2 * i + 1], inv));
            out[1 + i] = (uint8_t)(lo | hi << 4);
        }
    }
}

struct append_args {
    const void *src;
    int dtype;
    uint8_t *dst; /* cache K or V base */
    long long capacity, len, n;
    int Hkv, D, nb; /* blocks (or elements) per row */
    long long row_bytes;
    int block_bytes;
    float ts;
};

template <int FMT, int BE> __global__ void append_kernel(append_args a) {
    long long total = (long long)a.Hkv * a.n * a.nb;
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < total;
         i += (long long)gridDim.x * blockDim.x) {
        int b = (int)(i % a.nb);
        long long t = (i / a.nb) % a.n, h = i / ((long long)a.nb * a.n);
        size_t src_off = ((size_t)h * a.n + t) * a.D;
        uint8_t *row = a.dst + ((size_t)h * a.capacity + a.len + t) * a.row_bytes;
        if (FMT == VT_FMT_F32)
            reinterpret_cast<float *>(row)[b] = load_in(a.src, a.dtype, src_off + b);
        else if (FMT == VT_FMT_F16)
            reinterpret_cast<__half *>(row)[b] =
                __float2half_rn(load_in(a.src, a.dtype, src_off + b));
        else if (FMT == VT_FMT_BF16)
            reinterpret_cast<__nv_bfloat16 *>(row)[b] =
                __float2bfloat16_rn(load_in(a.src, a.dtype, src_off + b));
        else
            quant_block<FMT, BE>(a.src, a.dtype, src_off, a.D, b, a.ts,
                                 row + (size_t)b * a.block_bytes);
    }
}

template <int FMT, int BE> int run(const append_args &a, cudaStream_t st) {
    long long total = (long long)a.Hkv * a.n * a.nb;
    long long blocks = (total + 255) / 256;
    if (blocks > 65535) blocks = 65535;
    append_kernel<FMT, BE><<<(unsigned)blocks, 256, 0, st>>>(a);
    VT_CUDA_TRY(cudaGetLastError(), "kv cache append: launch");
    return 0;
}

} // namespace

extern "C" int vt_attn_cuda_device_count(void) {
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
        cudaGetLastError(); /* clear the sticky "no device" error */
        return 0;
    }
    return n;
}

extern "C" int vt_attn_cuda_alloc(void **p, size_t n) {
    *p = nullptr;
    if (vt_attn_cuda_device_count() <= 0)
        return vt_fail(VT_ENODEV, "kv cache: no CUDA device is present");
    int f = vt_fault_check(VT_FAULT_DEVICE);
    if (f) return vt_fail(f, "kv cache: injected device allocation fault");
    VT_CUDA_TRY(cudaMalloc(p, n), "kv cache: device allocation");
    cudaError_t e = cudaMemset(*p, 0, n);
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

extern "C" int vt_attn_cuda_append(const vt_kv_cache *c, const void *k, const void *v,
                                   vt_dtype dtype, uint64_t n_tokens, void *stream) {
    cudaStream_t st = static_cast<cudaStream_t>(stream);
    append_args a;
    a.dtype = (int)dtype;
    a.capacity = (long long)c->cfg.capacity;
    a.len = (long long)c->len;
    a.n = (long long)n_tokens;
    a.Hkv = (int)c->cfg.n_kv_heads;
    a.D = (int)c->cfg.head_dim;
    a.row_bytes = (long long)c->row_bytes;
    a.ts = c->cfg.tensor_scale > 0.0f ? c->cfg.tensor_scale : 1.0f;
    for (int which = 0; which < 2; which++) {
        a.src = which ? v : k;
        a.dst = static_cast<uint8_t *>(which ? c->v : c->k);
        int rc;
#define VT_APPEND(F, BE, BB)                                                                       \
    a.nb = (a.D + (BE)-1) / (BE);                                                                  \
    a.block_bytes = (BB);                                                                          \
    rc = run<F, BE>(a, st);                                                                        \
    break;
        switch (c->cfg.format) {
        case VT_FMT_F32:
            VT_APPEND(VT_FMT_F32, 1, 4)
        case VT_FMT_F16:
            VT_APPEND(VT_FMT_F16, 1, 2)
        case VT_FMT_BF16:
            VT_APPEND(VT_FMT_BF16, 1, 2)
        case VT_FMT_Q8_0:
            VT_APPEND(VT_FMT_Q8_0, VT_QK8_0, sizeof(vt_block_q8_0))
        case VT_FMT_INT8:
            VT_APPEND(VT_FMT_INT8, VT_QK_INT8, sizeof(vt_block_int8))
        case VT_FMT_Q4_0:
            VT_APPEND(VT_FMT_Q4_0, VT_QK4_0, sizeof(vt_block_q4_0))
        case VT_FMT_NF4:
            VT_APPEND(VT_FMT_NF4, VT_QK_NF4, sizeof(vt_block_nf4))
        case VT_FMT_NVFP4:
            VT_APPEND(VT_FMT_NVFP4, VT_QK_NVFP4, sizeof(vt_block_nvfp4))
        case VT_FMT_MXFP4:
            VT_APPEND(VT_FMT_MXFP4, VT_QK_MXFP4, sizeof(vt_block_mxfp4))
        default:
            return vt_fail(VT_EUNSUPPORTED, "kv cache append: format %u", c->cfg.format);
        }
#undef VT_APPEND
        if (rc) return rc;
    }
    return 0;
}
