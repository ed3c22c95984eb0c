/* kernels/cuda/dequant_dev.cuh — per-format device decoders shared by the dequantize, GEMV and
 * GEMM kernels and by the attention kernels (attn_*.cu): decode one "unit" of 32 consecutive
 * values of a row into registers. Same arithmetic as the host decoders (kernels/cpu) and the
 * quantization library's reference dequantizers, except the AWQ channel-scale division, which
 * on the device is within 2 ulp (vt_fdiv_fast; the dequantize kernel multiplies by the scale's
 * correctly rounded reciprocal, vt_frcp_rn: within 1.5 ulp).
 *
 * Usage in a kernel:
 *     __shared__ float lut[32];  vt_dq_lut_init(lut);  __syncthreads();
 *     vt_dq_ctx c = {lut, tensor_scale, channel_scales, cols};
 *     float v[32];
 *     vt_dq_unit<VT_FMT_Q4_0>(vt_dq_unit_ptr<VT_FMT_Q4_0>(row_bytes, u), u, 32 * u, c, v);
 *
 * A unit u of a row covers columns [32u, 32u + 32). Its bytes start at vt_dq_unit_ptr (the
 * containing block; for nvfp4 the first of its two 16-value blocks). Values at columns >= cols
 * are 0 for f32/f16/bf16 (nothing is read there) and the block's padding value otherwise:
 * callers mask them. nf4_dq, whose blocks are not row-local, has vt_dq_unit_nf4dq. */
#ifndef VT_DEQUANT_DEV_CUH
#define VT_DEQUANT_DEV_CUH

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "vtstore/blocks.h"
#include "vtstore/quant.h"

/* The decoders are __host__ __device__ so that a host test (tests/kernels/test_dequant_dev_host)
 * runs them against the reference dequantizers; the device-only intrinsics go through these. */
#define VT_HD __host__ __device__ __forceinline__
#ifdef __CUDA_ARCH__
#define VT_UNROLL _Pragma("unroll")
#else
#define VT_UNROLL /* the host compiler does not know #pragma unroll */
#endif
#ifdef __CUDA_ARCH__
#define VT_RN(op, a, b, dev) dev(a, b)
#else
#define VT_RN(op, a, b, dev) ((a)op(b))
#endif
VT_HD float vt_fmul_rn(float a, float b) {
    return VT_RN(*, a, b, __fmul_rn);
}
VT_HD float vt_fadd_rn(float a, float b) {
    return VT_RN(+, a, b, __fadd_rn);
}
VT_HD float vt_fsub_rn(float a, float b) {
    return VT_RN(-, a, b, __fsub_rn);
}
VT_HD float vt_fdiv_rn(float a, float b) {
    return VT_RN(/, a, b, __fdiv_rn);
}
#undef VT_RN
/* round to nearest even (the quantizers of an int16 Q or x: attn_decode.cuh, gemv_rows.cuh) */
VT_HD int vt_rni(float x) {
#ifdef __CUDA_ARCH__
    return __float2int_rn(x);
#else
    return (int)lrintf(x);
#endif
}

/* c + a.lo16 * b.byte0 + a.hi16 * b.byte1 (lo) or bytes 2, 3 (hi); signed (PTX dp2a) */
VT_HD int vt_dp2a_lo(uint32_t a, uint32_t b, int c) {
#ifdef __CUDA_ARCH__
    return __dp2a_lo((int)a, (int)b, c);
#else
    return c + (int16_t)(a & 0xffff) * (int8_t)(b & 0xff) + (int16_t)(a >> 16) * (int8_t)(b >> 8);
#endif
}
VT_HD int vt_dp2a_hi(uint32_t a, uint32_t b, int c) {
#ifdef __CUDA_ARCH__
    return __dp2a_hi((int)a, (int)b, c);
#else
    return c + (int16_t)(a & 0xffff) * (int8_t)(b >> 16) + (int16_t)(a >> 16) * (int8_t)(b >> 24);
#endif
}

/* bytes of x (0-3) and y (4-7) picked by the nibbles of sel (PTX prmt, default mode) */
VT_HD uint32_t vt_prmt(uint32_t x, uint32_t y, uint32_t sel) {
#ifdef __CUDA_ARCH__
    return __byte_perm(x, y, sel);
#else
    const uint64_t v = (uint64_t)y << 32 | x;
    uint32_t r = 0;
    for (int i = 0; i < 4; i++)
        r |= (uint32_t)(v >> (8 * ((sel >> (4 * i)) & 7)) & 0xff) << (8 * i);
    return r;
#endif
}

/* a / b within 2 ulp for |b| in [2^-126, 2^126] (__fdividef: one reciprocal and a multiply),
 * for the AWQ channel scales (about 0.5..2) divided into every weight: the IEEE division
 * (vt_fdiv_rn, about ten instructions) would cost more than the rest of a 4-bit decode. */
VT_HD float vt_fdiv_fast(float a, float b) {
#ifdef __CUDA_ARCH__
    return __fdividef(a, b);
#else
    return a / b;
#endif
}
/* 1 / b rounded to nearest (IEEE, also under --use_fast_math): for scales inverted once and
 * then multiplied into many values, within 1.5 ulp of a / b. */
VT_HD float vt_frcp_rn(float b) {
#ifdef __CUDA_ARCH__
    return __frcp_rn(b);
#else
    return 1.0f / b;
#endif
}
VT_HD float vt_dev_as_f32(uint32_t u) {
#ifdef __CUDA_ARCH__
    return __uint_as_float(u);
#else
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
#endif
}

/* Two values rounded to T (__half or __nv_bfloat16), a in the low half: a fragment pair of the
 * attention kernels, two output values of the dequantize, a KV cache element (b = 0). */
template <typename T> VT_HD uint32_t vt_pack2(float a, float b);
template <> VT_HD uint32_t vt_pack2<__half>(float a, float b) {
    __half2 h = __floats2half2_rn(a, b);
    uint32_t u;
    memcpy(&u, &h, 4);
    return u;
}
template <> VT_HD uint32_t vt_pack2<__nv_bfloat16>(float a, float b) {
    __nv_bfloat162 h = __floats2bfloat162_rn(a, b);
    uint32_t u;
    memcpy(&u, &h, 4);
    return u;
}

/* Lookup tables in shared memory: [0,16) NF4 code values, [16,32) signed E2M1 values. */
struct vt_dq_ctx {
    const float *lut;   /* shared memory, 32 floats, filled by vt_dq_lut_init */
    float tensor_scale; /* nvfp4 */
    const float *aux;   /* awq channel scales [cols] (device) or NULL to leave them out */
    uint64_t cols;      /* dense columns of the row (bounds for f32/f16/bf16 and awq) */
};

/* Table entry t of 32: [0,16) NF4 code values, [16,32) signed E2M1 values. A switch and
 * arithmetic rather than local arrays: an array indexed by t lives in local memory (96 bytes of
 * stack in every kernel that fills the table). */
VT_HD float vt_dq_nf4_at(int t) {
    switch (t & 15) {
    case 0:
        return -1.0f;
    case 1:
        return -0.6961928009986877f;
    case 2:
        return -0.5250730514526367f;
    case 3:
        return -0.39491748809814453f;
    case 4:
        return -0.28444138169288635f;
    case 5:
        return -0.18477343022823334f;
    case 6:
        return -0.09105003625154495f;
    case 7:
        return 0.0f;
    case 8:
        return 0.07958029955625534f;
    case 9:
        return 0.16093020141124725f;
    case 10:
        return 0.24611230194568634f;
    case 11:
        return 0.33791524171829224f;
    case 12:
        return 0.44070982933044434f;
    case 13:
        return 0.5626170039176941f;
    case 14:
        return 0.7229568362236023f;
    default:
        return 1.0f;
    }
}
/* E2M1 code c (sign bit 3): exponent bits 2-1, mantissa bit 0; 0, 0.5 (subnormal), 1 .. 6. */
VT_HD float vt_dq_e2m1_at(int c) {
    int e = (c >> 1) & 3, m = c & 1;
    float mag = e == 0 ? 0.5f * (float)m : (float)(2 + m) * (float)(1 << e) * 0.25f;
    return (c & 8) ? -mag : mag;
}
VT_HD float vt_dq_lut_at(int t) {
    return t < 16 ? vt_dq_nf4_at(t) : vt_dq_e2m1_at(t - 16);
}

/* Thread t's share of filling the table: threads 0..31 of the CTA write one entry each
 * (callers __syncthreads before use). */
VT_HD void vt_dq_lut_fill(float *lut, int t) {
    if (t < 32) lut[t] = vt_dq_lut_at(t);
}
__device__ __forceinline__ void vt_dq_lut_init(float *lut) {
    vt_dq_lut_fill(lut, threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z));
}

/* Block geometry per format: BE values per block, BB bytes per block (plain formats: a
 * "block" of 32 values). */
template <int F> struct vt_fmt_traits;
#define VT_TRAITS(F, be, bb)                                                                       \
    template <> struct vt_fmt_traits<F> { static constexpr int BE = be, BB = bb; };
VT_TRAITS(VT_FMT_F32, 32, 128)
VT_TRAITS(VT_FMT_F16, 32, 64)
VT_TRAITS(VT_FMT_BF16, 32, 64)
VT_TRAITS(VT_FMT_Q8_0, 32, 34)
VT_TRAITS(VT_FMT_Q4_0, 32, 18)
VT_TRAITS(VT_FMT_Q4_1, 32, 20)
VT_TRAITS(VT_FMT_Q4_K, 256, 144)
VT_TRAITS(VT_FMT_Q6_K, 256, 210)
VT_TRAITS(VT_FMT_INT8, 64, 68)
VT_TRAITS(VT_FMT_NF4, 64, 36)
VT_TRAITS(VT_FMT_NF4_DQ, 64, 36) /* not row-local: see vt_dq_unit_nf4dq */
VT_TRAITS(VT_FMT_NVFP4, 16, 9)
VT_TRAITS(VT_FMT_MXFP4, 32, 17)
VT_TRAITS(VT_FMT_AWQ_INT4, 128, 68)
#undef VT_TRAITS

/* Byte offset of the block holding unit u within its row. */
template <int F> VT_HD uint64_t vt_dq_unit_off(uint64_t u) {
    constexpr int BE = vt_fmt_traits<F>::BE, BB = vt_fmt_traits<F>::BB;
    return BE >= 32 ? (u * 32 / BE) * BB : u * (32 / BE) * BB;
}
template <int F> VT_HD const uint8_t *vt_dq_unit_ptr(const uint8_t *row, uint64_t u) {
    return row + vt_dq_unit_off<F>(u);
}

VT_HD float vt_dev_f16(const uint8_t *p) {
    uint16_t h = (uint16_t)(p[0] | (p[1] << 8));
    return __half2float(__ushort_as_half(h));
}
VT_HD float vt_dev_f32(const uint8_t *p) {
    uint32_t u =
        (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
    return vt_dev_as_f32(u);
}
/* OCP FP8 E4M3 (fn): no Inf, S.1111.111 is NaN. */
VT_HD float vt_dev_e4m3(uint8_t v) {
    uint32_t s = (uint32_t)(v >> 7) << 31, e = (v >> 3) & 15, m = v & 7;
    if (e == 15 && m == 7) return vt_dev_as_f32(0x7fc00000u | s);
    if (e == 0) {
        float x = (float)m * 0.001953125f; /* subnormal: m * 2^-9 */
        return s ? -x : x;
    }
    return vt_dev_as_f32(s | ((e + 120) << 23) | (m << 20));
}
/* E8M0: 2^(v-127), 255 is NaN. */
VT_HD float vt_dev_e8m0(uint8_t v) {
    if (v == 255) return vt_dev_as_f32(0x7fc00000u);
    if (v == 0) return vt_dev_as_f32(0x00400000u); /* 2^-127, subnormal */
    return vt_dev_as_f32((uint32_t)v << 23);
}

VT_HD void vt_dq_scale_min_k4(int j, const uint8_t *q, float &sc, float &m) {
    if (j < 4) {
        sc = (float)(q[j] & 63);
        m = (float)(q[j + 4] & 63);
    } else {
        sc = (float)((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
        m = (float)((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
    }
}

/* q6_k sub-block j (32 values) of the block at blk, its low-nibble bytes at ql (blk + 64 (j / 4)
 * + 32 (j % 2)) and its high-bit bytes at qh (blk + 128 + 32 (j / 4)), or copies of them. */
VT_HD void vt_dq_q6k_sub(const uint8_t *ql, const uint8_t *qh, const uint8_t *blk, int j,
                         float v[32]) {
    const int h = j / 4, k = j % 4;
    const int8_t *sc = (const int8_t *)(blk + 192) + 8 * h + 2 * k;
    float d = vt_dev_f16(blk + 208);
    int lsh = (k >> 1) * 4, hsh = 2 * k;
    VT_UNROLL
    for (int l = 0; l < 32; l++) {
        int q = (int)(((ql[l] >> lsh) & 0xF) | (((qh[l] >> hsh) & 3) << 4)) - 32;
        v[l] = vt_fmul_rn(vt_fmul_rn(d, (float)sc[l / 16]), (float)q);
    }
}

/* Decode unit u (columns col0 = 32u ...) from blk = vt_dq_unit_ptr<F>(row, u). */
template <int F>
VT_HD void vt_dq_unit(const uint8_t *blk, uint64_t u, uint64_t col0, const vt_dq_ctx &c,
                      float v[32]) {
    if constexpr (F == VT_FMT_F32) {
        VT_UNROLL
        for (int i = 0; i < 32; i++) v[i] = col0 + i < c.cols ? vt_dev_f32(blk + 4 * i) : 0.0f;
    } else if constexpr (F == VT_FMT_F16) {
        VT_UNROLL
        for (int i = 0; i < 32; i++) v[i] = col0 + i < c.cols ? vt_dev_f16(blk + 2 * i) : 0.0f;
    } else if constexpr (F == VT_FMT_BF16) {
        VT_UNROLL
        for (int i = 0; i < 32; i++)
            v[i] = col0 + i < c.cols
                       ? vt_dev_as_f32((uint32_t)(blk[2 * i] | (blk[2 * i + 1] << 8)) << 16)
                       : 0.0f;
    } else if constexpr (F == VT_FMT_Q8_0) {
        float d = vt_dev_f16(blk);
        VT_UNROLL
        for (int i = 0; i < 32; i++) v[i] = d * (float)(int8_t)blk[2 + i];
    } else if constexpr (F == VT_FMT_Q4_0) {
        float d = vt_dev_f16(blk);
        VT_UNROLL
        for (int i = 0; i < 16; i++) {
            v[i] = d * (float)((blk[2 + i] & 15) - 8);
            v[i + 16] = d * (float)((blk[2 + i] >> 4) - 8);
        }
    } else if constexpr (F == VT_FMT_Q4_1) {
        float d = vt_dev_f16(blk), m = vt_dev_f16(blk + 2);
        VT_UNROLL
        for (int i = 0; i < 16; i++) {
            v[i] = vt_fadd_rn(vt_fmul_rn(d, (float)(blk[4 + i] & 15)), m);
            v[i + 16] = vt_fadd_rn(vt_fmul_rn(d, (float)(blk[4 + i] >> 4)), m);
        }
    } else if constexpr (F == VT_FMT_Q4_K) {
        int j = (int)(u & 7); /* 32-value sub-block */
        float sc, mn;
        vt_dq_scale_min_k4(j, blk + 4, sc, mn);
        float d1 = vt_dev_f16(blk) * sc, m1 = vt_dev_f16(blk + 2) * mn;
        const uint8_t *q = blk + 16 + 32 * (j / 2);
        int sh = (j & 1) * 4;
        VT_UNROLL
        for (int l = 0; l < 32; l++)
            v[l] = vt_fsub_rn(vt_fmul_rn(d1, (float)((q[l] >> sh) & 0xF)), m1);
    } else if constexpr (F == VT_FMT_Q6_K) {
        int j = (int)(u & 7), h = j / 4, k = j % 4;
        vt_dq_q6k_sub(blk + 64 * h + (k & 1) * 32, blk + 128 + 32 * h, blk, j, v);
    } else if constexpr (F == VT_FMT_INT8) {
        float d = vt_dev_f32(blk);
        const uint8_t *q = blk + 4 + 32 * (u & 1);
        VT_UNROLL
        for (int i = 0; i < 32; i++) v[i] = d * (float)(int8_t)q[i];
    } else if constexpr (F == VT_FMT_NF4) {
        float a = vt_dev_f32(blk);
        const uint8_t *q = blk + 4 + 16 * (u & 1);
        VT_UNROLL
        for (int i = 0; i < 16; i++) {
            v[2 * i] = a * c.lut[q[i] >> 4];
            v[2 * i + 1] = a * c.lut[q[i] & 15];
        }
    } else if constexpr (F == VT_FMT_NVFP4) {
        VT_UNROLL
        for (int b = 0; b < 2; b++) {
            const uint8_t *p = blk + 9 * b;
            if (b == 1 && col0 + 16 >= c.cols) { /* a row of 16k+16 values ends here */
                VT_UNROLL
                for (int i = 0; i < 16; i++) v[16 + i] = 0.0f;
                break;
            }
            float s = vt_fmul_rn(c.tensor_scale, vt_dev_e4m3(p[0]));
            VT_UNROLL
            for (int i = 0; i < 8; i++) {
                v[16 * b + 2 * i] = s * c.lut[16 + (p[1 + i] & 15)];
                v[16 * b + 2 * i + 1] = s * c.lut[16 + (p[1 + i] >> 4)];
            }
        }
    } else if constexpr (F == VT_FMT_MXFP4) {
        /* E8M0 byte 0 is 2^-127, an f32 subnormal that --use_fast_math (FTZ) would flush to 0
         * before the multiply: use 2^-126 and halve the code instead, so the product is exact
         * whenever it is itself a normal number (as on the host). */
        const uint8_t e = blk[0];
        float s = e ? vt_dev_e8m0(e) : vt_dev_as_f32(0x00800000u), k = e ? 1.0f : 0.5f;
        VT_UNROLL
        for (int i = 0; i < 16; i++) {
            v[2 * i] = s * (k * c.lut[16 + (blk[1 + i] & 15)]);
            v[2 * i + 1] = s * (k * c.lut[16 + (blk[1 + i] >> 4)]);
        }
    } else if constexpr (F == VT_FMT_AWQ_INT4) {
        float d = vt_dev_f16(blk);
        int z = blk[2];
        const uint8_t *q = blk + 4 + 16 * (u & 3);
        VT_UNROLL
        for (int i = 0; i < 16; i++) {
            v[2 * i] = d * (float)((q[i] & 15) - z);
            v[2 * i + 1] = d * (float)((q[i] >> 4) - z);
        }
        if (c.aux) {
            VT_UNROLL
            for (int i = 0; i < 32; i++)
                if (col0 + i < c.cols) v[i] = vt_fdiv_fast(v[i], c.aux[col0 + i]);
        }
    }
}

/* Where unit u of row r of an nf4_dq weight lies: its super-block (*sb), its block's index there
 * (*j); returns the unit's 16 code bytes. */
VT_HD const uint8_t *vt_dq_nf4dq_at(const uint8_t *data, uint64_t bpr, uint64_t r, uint64_t u,
                                    const uint8_t **sb, uint32_t *j) {
    const uint64_t g = r * bpr + u / 2;
    *sb = data + g / 256 * sizeof(vt_block_nf4_dq);
    *j = (uint32_t)(g % 256);
    return *sb + 264 + 32 * *j + 16 * (u & 1);
}
/* The unit's values from its super-block sb, block index j and code bytes q (or a copy). */
VT_HD void vt_dq_nf4dq_vals(const uint8_t *sb, uint32_t j, const uint8_t *q, const vt_dq_ctx &c,
                            float v[32]) {
    float a = vt_fadd_rn(vt_dev_f32(sb), vt_fmul_rn(vt_dev_f32(sb + 4), (float)(int8_t)sb[8 + j]));
    VT_UNROLL
    for (int i = 0; i < 16; i++) {
        v[2 * i] = a * c.lut[q[i] >> 4];
        v[2 * i + 1] = a * c.lut[q[i] & 15];
    }
}
/* nf4_dq: unit u of row r, blocks per row bpr, data = the handle's first super-block. */
VT_HD void vt_dq_unit_nf4dq(const uint8_t *data, uint64_t bpr, uint64_t r, uint64_t u,
                            const vt_dq_ctx &c, float v[32]) {
    const uint8_t *sb;
    uint32_t j;
    const uint8_t *q = vt_dq_nf4dq_at(data, bpr, r, u, &sb, &j);
    vt_dq_nf4dq_vals(sb, j, q, c, v);
}

/* 2:4 sparse, from the unit's own bytes: compressed unit u (compressed values 32u.., dense
 * columns 64u..64u+63) whose base-format bytes start at vp (vt_dq_unit_ptr of the row) and whose
 * 8 index bytes start at ip (the row's index bytes + 8u). Writes the 32 kept values (awq:
 * divided by their dense column's scale when c.aux) and their dense column offsets 0..63. */
template <int F>
VT_HD void vt_dq_unit_sparse_at(const uint8_t *vp, const uint8_t *ip, uint64_t u, uint64_t ccols,
                                const vt_dq_ctx &c, float v[32], uint8_t pos[32]) {
    vt_dq_ctx bc = c;
    bc.aux = nullptr;
    bc.cols = ccols;
    vt_dq_unit<F>(vp, u, 32 * u, bc, v);
    VT_UNROLL
    for (int g = 0; g < 16; g++) {
        uint64_t gg = 16 * u + g;
        uint8_t nib =
            gg < ccols / 2 ? (ip[g / 2] >> ((g & 1) * 4)) & 15 : 4; /* past the row: 0,1 */
        pos[2 * g] = (uint8_t)(4 * g + (nib & 3));
        pos[2 * g + 1] = (uint8_t)(4 * g + (nib >> 2));
    }
    if (F == VT_FMT_AWQ_INT4 && c.aux) {
        VT_UNROLL
        for (int i = 0; i < 32; i++) {
            uint64_t col = 64 * u + pos[i];
            if (col < c.cols) v[i] = vt_fdiv_fast(v[i], c.aux[col]);
        }
    }
}

/* The same for a row whose base blocks start at row and index bytes at idx. */
template <int F>
VT_HD void vt_dq_unit_sparse(const uint8_t *row, const uint8_t *idx, uint64_t u, uint64_t ccols,
                             const vt_dq_ctx &c, float v[32], uint8_t pos[32]) {
    vt_dq_unit_sparse_at<F>(vt_dq_unit_ptr<F>(row, u), idx + 8 * u, u, ccols, c, v, pos);
}

#endif
