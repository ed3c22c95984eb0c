/* kernels/cuda/attn_common.cuh — helpers shared by the attention kernels: reading 8 consecutive
 * values of a stored K/V row in any K/V format (the formulas of the quant module's reference
 * dequantizers), the one switch over K/V formats,
 * alignment checks and error mapping. What is __host__ __device__ here also runs in the host
 * tests (tests/attn/attn_*_host.cu). Private to kernels/cuda/attn_* and those tests. */
#ifndef VT_ATTN_COMMON_CUH
#define VT_ATTN_COMMON_CUH

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <errno.h>
#include <stdint.h>

#include "attn_internal.h"
#include "cuda_util.cuh"
#include "dequant_dev.cuh"
#include "kparams.cuh" /* vt_stage_async */
#include "simt_dev.cuh"
#include "vtstore/blocks.h"
#include "vtstore/quant.h"

#define VT_LOG2E 1.4426950408889634f
#define VT_LN2   0.6931471805599453f

/* #pragma unroll n in device code (the host compiler of the emulation tests ignores it). */
#define VT_ATTN_PRAGMA(x) _Pragma(#x)
#ifdef __CUDA_ARCH__
#define VT_ATTN_UNROLL(n) VT_ATTN_PRAGMA(unroll n)
#else
#define VT_ATTN_UNROLL(n)
#endif

/* Error mapping: a failed CUDA call becomes VT_ECUDA with the call and the runtime's words. */
#define VT_CUDA_TRY(call, what)                                                                    \
    do {                                                                                           \
        cudaError_t e_ = (call);                                                                   \
        if (e_ != cudaSuccess)                                                                     \
            return vt_fail(e_ == cudaErrorMemoryAllocation ? -ENOMEM : VT_ECUDA, "%s: %s (%s)",    \
                           what, cudaGetErrorString(e_), #call);                                   \
    } while (0)

/* Look-up values used by the 4-bit decoders (dequant_dev.cuh's table: NF4 values, then signed
 * E2M1 values); kernels keep them in shared memory because the indices differ between threads
 * (constant memory would serialise them). */
struct vt_attn_lut {
    float nf4[16];  /* bitsandbytes NF4 values */
    float e2m1[16]; /* signed E2M1 values by code */
};

/* Fill the tables (threads 0..31 of the CTA; callers __syncthreads before use). */
VT_HD void vt_attn_lut_load(vt_attn_lut *s, int tid) {
    if (tid < 16)
        s->nf4[tid] = vt_dq_lut_at(tid);
    else if (tid < 32)
        s->e2m1[tid - 16] = vt_dq_lut_at(tid);
}

/* 16 bits at p (2-byte aligned). */
VT_HD uint16_t vt_ldg_u16(const uint8_t *p) {
    return *reinterpret_cast<const uint16_t *>(p);
}

/* Values [d0, d0 + 8) of a stored row (d0 a multiple of 8; the head dim a multiple of the block
 * size, true for D = 64 and 128). */
template <int FMT>
VT_HD void vt_deq8(const uint8_t *row, int d0, float ts, const vt_attn_lut *lut, float out[8]) {
    if (FMT == VT_FMT_F32) {
        const float4 *p = reinterpret_cast<const float4 *>(row + (size_t)d0 * 4);
        float4 a = p[0], b = p[1];
        out[0] = a.x, out[1] = a.y, out[2] = a.z, out[3] = a.w;
        out[4] = b.x, out[5] = b.y, out[6] = b.z, out[7] = b.w;
    } else if (FMT == VT_FMT_F16 || FMT == VT_FMT_BF16) {
        uint4 u = *reinterpret_cast<const uint4 *>(row + (size_t)d0 * 2);
        uint32_t w[4] = {u.x, u.y, u.z, u.w};
        VT_UNROLL
        for (int i = 0; i < 4; i++) {
            if (FMT == VT_FMT_F16) {
                out[2 * i] = __half2float(__ushort_as_half((uint16_t)(w[i] & 0xffff)));
                out[2 * i + 1] = __half2float(__ushort_as_half((uint16_t)(w[i] >> 16)));
            } else {
                out[2 * i] = vt_dev_as_f32(w[i] << 16);
                out[2 * i + 1] = vt_dev_as_f32(w[i] & 0xffff0000u);
            }
        }
    } else if (FMT == VT_FMT_Q8_0) {
        const uint8_t *b = row + (d0 / VT_QK8_0) * sizeof(vt_block_q8_0);
        float d = __half2float(__ushort_as_half(vt_ldg_u16(b)));
        const uint8_t *qs = b + 2 + (d0 % VT_QK8_0);
        VT_UNROLL
        for (int i = 0; i < 4; i++) {
            uint16_t w = vt_ldg_u16(qs + 2 * i);
            out[2 * i] = (float)(int8_t)(w & 0xff) * d;
            out[2 * i + 1] = (float)(int8_t)(w >> 8) * d;
        }
    } else if (FMT == VT_FMT_INT8) {
        const uint8_t *b = row + (d0 / VT_QK_INT8) * sizeof(vt_block_int8);
        float d = *reinterpret_cast<const float *>(b);
        const uint32_t *qs = reinterpret_cast<const uint32_t *>(b + 4 + (d0 % VT_QK_INT8));
        VT_UNROLL
        for (int i = 0; i < 2; i++) {
            uint32_t w = qs[i];
            VT_UNROLL
            for (int k = 0; k < 4; k++) out[4 * i + k] = (float)(int8_t)(w >> (8 * k)) * d;
        }
    } else if (FMT == VT_FMT_Q4_0) {
        const uint8_t *b = row + (d0 / VT_QK4_0) * sizeof(vt_block_q4_0);
        float d = __half2float(__ushort_as_half(vt_ldg_u16(b)));
        int j = d0 % VT_QK4_0, hi = j >= 16;
        const uint8_t *qs = b + 2 + (j & 15);
        VT_UNROLL
        for (int i = 0; i < 4; i++) {
            uint16_t w = vt_ldg_u16(qs + 2 * i);
            int c0 = hi ? (w >> 4) & 15 : w & 15, c1 = hi ? (w >> 12) & 15 : (w >> 8) & 15;
            out[2 * i] = (float)(c0 - 8) * d;
            out[2 * i + 1] = (float)(c1 - 8) * d;
        }
    } else if (FMT == VT_FMT_NF4) {
        const uint8_t *b = row + (d0 / VT_QK_NF4) * sizeof(vt_block_nf4);
        float a = *reinterpret_cast<const float *>(b);
        uint32_t w = *reinterpret_cast<const uint32_t *>(b + 4 + (d0 % VT_QK_NF4) / 2);
        VT_UNROLL
        for (int i = 0; i < 4; i++) { /* element 2i in the high nibble */
            uint32_t byte = (w >> (8 * i)) & 0xff;
            out[2 * i] = a * lut->nf4[byte >> 4];
            out[2 * i + 1] = a * lut->nf4[byte & 15];
        }
    } else if (FMT == VT_FMT_NVFP4) {
        const uint8_t *b = row + (d0 / VT_QK_NVFP4) * sizeof(vt_block_nvfp4);
        float s = ts * vt_dev_e4m3(b[0]);
        const uint8_t *qs = b + 1 + (d0 % VT_QK_NVFP4) / 2;
        VT_UNROLL
        for (int i = 0; i < 4; i++) { /* element 2i in the low nibble */
            uint8_t byte = qs[i];
            out[2 * i] = s * lut->e2m1[byte & 15];
            out[2 * i + 1] = s * lut->e2m1[byte >> 4];
        }
    } else if (FMT == VT_FMT_MXFP4) {
        const uint8_t *b = row + (d0 / VT_QK_MXFP4) * sizeof(vt_block_mxfp4);
        /* E8M0 byte 0 is 2^-127, an f32 subnormal that --use_fast_math (FTZ) flushes to 0:
         * 2^-126 times half the element instead, exact whenever the product is normal */
        const uint8_t e = b[0];
        float s = e ? vt_dev_e8m0(e) : vt_dev_as_f32(0x00800000u), k = e ? 1.0f : 0.5f;
        const uint8_t *qs = b + 1 + (d0 % VT_QK_MXFP4) / 2;
        VT_UNROLL
        for (int i = 0; i < 4; i++) {
            uint8_t byte = qs[i];
            out[2 * i] = s * (k * lut->e2m1[byte & 15]);
            out[2 * i + 1] = s * (k * lut->e2m1[byte >> 4]);
        }
    }
}

/* Bytes of a stored K/V row of D values (vt_attn_row_bytes for D 64 and 128, which every
 * format's block size divides). */
template <int FMT> constexpr int vt_kv_row_bytes(int D) {
    return FMT == VT_FMT_F32                         ? 4 * D
           : FMT == VT_FMT_F16 || FMT == VT_FMT_BF16 ? 2 * D
           : FMT == VT_FMT_Q8_0                      ? D / VT_QK8_0 * (int)sizeof(vt_block_q8_0)
           : FMT == VT_FMT_INT8                      ? D / VT_QK_INT8 * (int)sizeof(vt_block_int8)
           : FMT == VT_FMT_Q4_0                      ? D / VT_QK4_0 * (int)sizeof(vt_block_q4_0)
           : FMT == VT_FMT_NF4                       ? D / VT_QK_NF4 * (int)sizeof(vt_block_nf4)
           : FMT == VT_FMT_NVFP4                     ? D / VT_QK_NVFP4 * (int)sizeof(vt_block_nvfp4)
                                 : D / VT_QK_MXFP4 * (int)sizeof(vt_block_mxfp4);
}

/* Q element loads: 8 consecutive values of a Q row in f32, f16 or bf16 (index a multiple of 8). */
VT_HD void vt_load_q8(const void *q, int q_dtype, size_t idx, float out[8]) {
    const uint8_t *p = static_cast<const uint8_t *>(q);
    if (q_dtype == VT_DTYPE_F32)
        vt_deq8<VT_FMT_F32>(p + idx * 4, 0, 1.0f, nullptr, out);
    else if (q_dtype == VT_DTYPE_F16)
        vt_deq8<VT_FMT_F16>(p + idx * 2, 0, 1.0f, nullptr, out);
    else
        vt_deq8<VT_FMT_BF16>(p + idx * 2, 0, 1.0f, nullptr, out);
}

/* Call fn.go<FMT, BE>(block bytes) for a K/V format (plain formats: BE 1, the element size) and
 * return its result; VT_EUNSUPPORTED (no message) for any other format. The one switch over the
 * K/V formats for the kernels' launchers and the host tests. */
template <typename Fn> int vt_attn_fmt_dispatch(uint32_t fmt, Fn &fn) {
    switch (fmt) {
    case VT_FMT_F32:
        return fn.template go<VT_FMT_F32, 1>(4);
    case VT_FMT_F16:
        return fn.template go<VT_FMT_F16, 1>(2);
    case VT_FMT_BF16:
        return fn.template go<VT_FMT_BF16, 1>(2);
    case VT_FMT_Q8_0:
        return fn.template go<VT_FMT_Q8_0, VT_QK8_0>((int)sizeof(vt_block_q8_0));
    case VT_FMT_INT8:
        return fn.template go<VT_FMT_INT8, VT_QK_INT8>((int)sizeof(vt_block_int8));
    case VT_FMT_Q4_0:
        return fn.template go<VT_FMT_Q4_0, VT_QK4_0>((int)sizeof(vt_block_q4_0));
    case VT_FMT_NF4:
        return fn.template go<VT_FMT_NF4, VT_QK_NF4>((int)sizeof(vt_block_nf4));
    case VT_FMT_NVFP4:
        return fn.template go<VT_FMT_NVFP4, VT_QK_NVFP4>((int)sizeof(vt_block_nvfp4));
    case VT_FMT_MXFP4:
        return fn.template go<VT_FMT_MXFP4, VT_QK_MXFP4>((int)sizeof(vt_block_mxfp4));
    default:
        return VT_EUNSUPPORTED;
    }
}

/* The kernels' vector loads need aligned addresses (a misaligned one is a sticky error that
 * ends the CUDA context): K/V bases, head stride and row size a multiple of what vt_deq8 loads
 * at once, Q 16 bytes (8 values per load), O two values (pairs), LSE 4. Returns 0 or -EINVAL. */
static inline int vt_attn_check_align(const vt_attn_dev_args *a, const char *who) {
    uintptr_t kv = a->fmt == VT_FMT_F32 || a->fmt == VT_FMT_F16 || a->fmt == VT_FMT_BF16 ? 16
                   : a->fmt == VT_FMT_INT8 || a->fmt == VT_FMT_NF4                       ? 4
                   : a->fmt == VT_FMT_Q8_0 || a->fmt == VT_FMT_Q4_0                      ? 2
                                                                                         : 1;
    uintptr_t m =
        (uintptr_t)a->k | (uintptr_t)a->v | (uintptr_t)a->head_stride | (uintptr_t)a->row_bytes;
    if (m & (kv - 1))
        return vt_fail(-EINVAL,
                       "%s: K/V pointers %p/%p, head stride %lld must be %u-byte aligned for "
                       "format %u",
                       who, (const void *)a->k, (const void *)a->v, a->head_stride, (unsigned)kv,
                       a->fmt);
    uintptr_t o = a->o_dtype == 0 ? 8 : 4;
    if (((uintptr_t)a->q & 15) || ((uintptr_t)a->o & (o - 1)) || ((uintptr_t)a->lse & 3))
        return vt_fail(-EINVAL, "%s: Q (%p) must be 16-byte, O (%p) %u-byte aligned", who, a->q,
                       a->o, (unsigned)o);
    return 0;
}

/* Keys visible to query i: j < vt_visible(i) (bottom-right causal alignment), clamped to nk. */
VT_HD long long vt_visible(const vt_attn_dev_args &a, long long i) {
    if (!a.causal) return a.nk;
    long long lim = i + a.nk - a.nq + 1;
    return lim < 0 ? 0 : (lim > a.nk ? a.nk : lim);
}

#endif
