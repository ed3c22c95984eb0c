/* kernels/cuda/attn_quant.cuh — the KV cache append's block quantizers (attn_append.cu), one
 * block of a K/V row at a time. Each mirrors the quant module's reference quantizer operation for
 * operation with explicitly rounded arithmetic (vt_fdiv_rn, vt_fmul_rn, ...), so that
 * --use_fast_math cannot change a byte. __host__ __device__: tests/attn/test_attn_quant_host runs
 * them on the host against vt_quantize (byte equality on random rows). Private to
 * kernels/cuda/attn_*.cu and that test. */
#ifndef VT_ATTN_QUANT_CUH
#define VT_ATTN_QUANT_CUH

#include <cuda_bf16.h>
#include <math.h>

#include "core/codes_hd.h" /* vt_e2m1_code, vt_nf4_code_ref: the host code searches */
#include "dequant_dev.cuh"
#include "vtstore/core.h"

/* core/dtype.c vt_f32_to_e4m3 (finite input) */
VT_HD uint8_t vt_attn_f32_to_e4m3(float f) {
    uint8_t sign = signbit(f) ? 0x80 : 0;
    float a = fabsf(f);
    if (a >= 448.0f) return sign | 0x7e;
    if (a < 0x1p-6f) return sign | (uint8_t)rintf(vt_fmul_rn(a, 0x1p9f));
    int e;
    float fr = frexpf(a, &e);
    e -= 1;
    int m = (int)rintf(vt_fmul_rn(vt_fsub_rn(vt_fmul_rn(2.0f, fr), 1.0f), 8.0f));
    if (m == 8) m = 0, e++;
    int code = ((e + 7) << 3) | m;
    if (code > 0x7e) code = 0x7e;
    return sign | (uint8_t)code;
}

/* The two bytes of a half (or bf16) little-endian, from a packed pair in a 32-bit register.
 * Not memcpy from a __half: ptxas (CUDA 13.0, sm_90) compiled the PTX `st.global.u8 [p], %rs`
 * of a register written by cvt.rn.f16.f32 into F2I.U8.F16 (a value conversion), so the low byte
 * of every stored half came out 0 or 1 (found by test_attn_gpu on an H100; the SASS showed it).
 * The f16x2 / bf16x2 conversion writes a 32-bit register, which is stored as plain bits. */
VT_HD void vt_attn_put_u32lo(uint8_t *out, uint32_t w) {
    out[0] = (uint8_t)(w & 0xffu);
    out[1] = (uint8_t)((w >> 8) & 0xffu);
}

VT_HD void vt_attn_put_f16(uint8_t *out, float v) {
    vt_attn_put_u32lo(out, vt_pack2<__half>(v, 0.0f)); /* the low half is v */
}

VT_HD void vt_attn_put_bf16(uint8_t *out, float v) {
    vt_attn_put_u32lo(out, vt_pack2<__nv_bfloat16>(v, 0.0f));
}

/* Quantize one block of BE values (x zero-padded past the row's end) of format FMT into out
 * (the block's bytes). ts: nvfp4 tensor scale (> 0). Plain formats are not blocks: see
 * vt_attn_quant_plain. */
template <int FMT, int BE>
VT_HD void vt_attn_quant_block(const float x[BE], float ts, uint8_t *out) {
    float amax = 0.0f;
    VT_UNROLL
    for (int j = 0; j < BE; j++) amax = fabsf(x[j]) > amax ? fabsf(x[j]) : amax;
    if constexpr (FMT == VT_FMT_Q8_0) {
        float d = vt_fdiv_rn(amax, 127.0f);
        float id = d != 0.0f ? vt_fdiv_rn(1.0f, d) : 0.0f;
        vt_attn_put_f16(out, d);
        VT_UNROLL
        for (int j = 0; j < BE; j++) {
            float v = vt_fmul_rn(x[j], id);
            out[2 + j] = (uint8_t)(isfinite(v) ? (int8_t)roundf(v) : 0);
        }
    } else if constexpr (FMT == VT_FMT_Q4_0) {
        float am = 0.0f, mx = 0.0f;
        VT_UNROLL
        for (int j = 0; j < BE; j++)
            if (am < fabsf(x[j])) am = fabsf(x[j]), mx = x[j];
        float d = vt_fdiv_rn(mx, -8.0f);
        float id = d != 0.0f ? vt_fdiv_rn(1.0f, d) : 0.0f;
        vt_attn_put_f16(out, d);
        VT_UNROLL
        for (int j = 0; j < BE / 2; j++) {
            uint8_t c[2];
            VT_UNROLL
            for (int k = 0; k < 2; k++) {
                float v = vt_fmul_rn(x[j + k * BE / 2], id);
                int q = isfinite(v) ? (int)(int8_t)truncf(vt_fadd_rn(v, 8.5f)) : 0;
                c[k] = (uint8_t)(q < 15 ? q : 15);
            }
            out[2 + j] = (uint8_t)(c[0] | (c[1] << 4));
        }
    } else if constexpr (FMT == VT_FMT_INT8) {
        float d = vt_fdiv_rn(amax, 127.0f);
        memcpy(out, &d, 4);
        VT_UNROLL
        for (int j = 0; j < BE; j++) {
            float q = d == 0.0f ? 0.0f : roundf(vt_fdiv_rn(x[j], d));
            q = q > 127.0f ? 127.0f : (q < -127.0f ? -127.0f : q);
            out[4 + j] = (uint8_t)(int8_t)q;
        }
    } else if constexpr (FMT == VT_FMT_NF4) {
        memcpy(out, &amax, 4);
        float inv = vt_fdiv_rn(1.0f, amax);
        bool div = isinf(inv);
        VT_UNROLL
        for (int i = 0; i < BE / 2; i++) {
            uint8_t c0 = 7, c1 = 7;
            if (amax != 0.0f) {
                float a0 = div ? vt_fdiv_rn(x[2 * i], amax) : vt_fmul_rn(x[2 * i], inv);
                float a1 = div ? vt_fdiv_rn(x[2 * i + 1], amax) : vt_fmul_rn(x[2 * i + 1], inv);
                c0 = vt_nf4_code_ref(a0), c1 = vt_nf4_code_ref(a1);
            }
            out[4 + i] = (uint8_t)(c0 << 4 | c1);
        }
    } else if constexpr (FMT == VT_FMT_NVFP4) {
        uint8_t s = vt_attn_f32_to_e4m3(vt_fdiv_rn(vt_fdiv_rn(amax, 6.0f), ts));
        float denom = vt_fmul_rn(ts, vt_dev_e4m3(s));
        out[0] = s;
        VT_UNROLL
        for (int i = 0; i < BE / 2; i++) {
            uint8_t lo = denom != 0.0f ? vt_e2m1_code(vt_fdiv_rn(x[2 * i], denom)) : 0;
            uint8_t hi = denom != 0.0f ? vt_e2m1_code(vt_fdiv_rn(x[2 * i + 1], denom)) : 0;
            out[1 + i] = (uint8_t)(lo | hi << 4);
        }
    } else if constexpr (FMT == VT_FMT_MXFP4) {
        int E = -127;
        if (amax != 0.0f) {
            int e;
            frexpf(amax, &e);
            E = e - 1 - 2;
            E = E < -127 ? -127 : (E > 127 ? 127 : E);
        }
        float inv = ldexpf(1.0f, -E);
        out[0] = (uint8_t)(E + 127);
        VT_UNROLL
        for (int i = 0; i < BE / 2; i++) {
            uint8_t lo = vt_e2m1_code(vt_fmul_rn(x[2 * i], inv));
            uint8_t hi = vt_e2m1_code(vt_fmul_rn(x[2 * i + 1], inv));
            out[1 + i] = (uint8_t)(lo | hi << 4);
        }
    }
}

/* Element b of a row in a plain format (f32, f16 or bf16) at row (the row's first byte). */
template <int FMT> VT_HD void vt_attn_quant_plain(float x, uint8_t *row, int b) {
    if constexpr (FMT == VT_FMT_F32) {
        memcpy(row + 4 * (size_t)b, &x, 4);
    } else if constexpr (FMT == VT_FMT_F16) {
        vt_attn_put_f16(row + 2 * (size_t)b, x);
    } else {
        vt_attn_put_bf16(row + 2 * (size_t)b, x);
    }
}

/* ---- what the host append refuses (quant/range.c, the same arithmetic) ---------------------- */

/* A finite value that plain format FMT cannot hold (rounds to Inf). */
template <int FMT> VT_HD bool vt_attn_plain_out_of_range(float x) {
    if constexpr (FMT == VT_FMT_F16)
        return !(fabsf(x) < 65520.0f); /* 65520 is the first f32 that rounds to an f16 Inf */
    else if constexpr (FMT == VT_FMT_BF16)
        return !(fabsf(x) < 0x1.ffp127f); /* halfway past bf16's largest, 0x1.fep127 */
    else
        return false;
}

/* A block of finite values, largest |x| amax, whose scale format FMT cannot hold: its f16 scale
 * would overflow (q8_0, q4_0), its f32 one read back past FLT_MAX (int8), its e4m3 one saturate
 * or read back past FLT_MAX (nvfp4, tensor scale ts). nf4 and mxfp4 hold every finite f32. */
template <int FMT> VT_HD bool vt_attn_block_out_of_range(float amax, float ts) {
    if constexpr (FMT == VT_FMT_Q8_0) {
        return !(vt_fdiv_rn(amax, 127.0f) < 65520.0f);
    } else if constexpr (FMT == VT_FMT_Q4_0) {
        return !(vt_fdiv_rn(amax, 8.0f) < 65520.0f);
    } else if constexpr (FMT == VT_FMT_INT8) {
        return !(vt_fmul_rn(127.0f, vt_fdiv_rn(amax, 127.0f)) <= 0x1.fffffep127f);
    } else if constexpr (FMT == VT_FMT_NVFP4) {
        const float v = vt_fdiv_rn(vt_fdiv_rn(amax, 6.0f), ts);
        if (!(v <= 464.0f)) return true; /* e4m3 scales above 464 saturate to 448 */
        return !(vt_fmul_rn(vt_fmul_rn(ts, vt_dev_e4m3(vt_attn_f32_to_e4m3(v))), 6.0f) <=
                 0x1.fffffep127f);
    } else {
        return false;
    }
}

/* Keep the smaller of the flag and @p key (the device's atomicMin; the host test runs items one
 * at a time). */
VT_HD void vt_attn_flag_min(unsigned long long *f, unsigned long long key) {
#ifdef __CUDA_ARCH__
    if (key < *(volatile unsigned long long *)f) atomicMin(f, key);
#else
    if (key < *f) *f = key;
#endif
}

/* ---- the append kernel's work item ------------------------------------------------------- */

struct vt_attn_append_args {
    const void *src;         /* [Hkv][n][D] f32 or f16 */
    unsigned long long *bad; /* the cache's flag (VT_KV_BAD_KEY), NULL: not checked */
    unsigned epoch;          /* the cache's reset count */
    int is_v;                /* appending V (1) or K (0) */
    int dtype;               /* VT_DTYPE_F32 or VT_DTYPE_F16 */
    uint8_t *dst;            /* cache K or V base: [Hkv][capacity][row_bytes] */
    long long capacity, len, n;
    int Hkv, D, nb; /* nb: blocks (plain formats: elements) per row */
    long long row_bytes;
    int block_bytes;
    float ts; /* nvfp4 tensor scale (> 0) */
};

VT_HD float vt_attn_load_in(const void *src, int dtype, size_t i) {
    return dtype == VT_DTYPE_F16 ? __half2float(static_cast<const __half *>(src)[i])
                                 : static_cast<const float *>(src)[i];
}

/* Item i of Hkv x n x nb: block (or element) b of token t of head h, written at slot len + t. */
template <int FMT, int BE>
VT_HD void vt_attn_append_one(const vt_attn_append_args &a, long long i) {
    int b = (int)(i % a.nb);
    long long t = (i / a.nb) % a.n, h = i / ((long long)a.nb * a.n);
    size_t src_off = ((size_t)h * a.n + t) * a.D;
    uint8_t *row = a.dst + ((size_t)h * a.capacity + a.len + t) * a.row_bytes;
    if constexpr (FMT == VT_FMT_F32 || FMT == VT_FMT_F16 || FMT == VT_FMT_BF16) {
        const float x = vt_attn_load_in(a.src, a.dtype, src_off + b);
        vt_attn_quant_plain<FMT>(x, row, b);
        if (a.bad && (!isfinite(x) || vt_attn_plain_out_of_range<FMT>(x)))
            vt_attn_flag_min(a.bad, VT_KV_BAD_KEY(a.epoch, a.len + t, a.is_v, h, b, isfinite(x)));
    } else {
        float x[BE];
        VT_UNROLL
        for (int j = 0; j < BE; j++) {
            int c = b * BE + j;
            x[j] = c < a.D ? vt_attn_load_in(a.src, a.dtype, src_off + c) : 0.0f;
        }
        vt_attn_quant_block<FMT, BE>(x, a.ts, row + (size_t)b * a.block_bytes);
        if (a.bad) { /* the first NaN/Inf, else the block's first largest |x| if out of range */
            int col = -1, range = 0, k = 0;
            float amax = 0.0f;
            VT_UNROLL
            for (int j = BE - 1; j >= 0; j--) {
                if (!isfinite(x[j])) col = j;
                if (fabsf(x[j]) >= amax) amax = fabsf(x[j]), k = j;
            }
            if (col < 0 && vt_attn_block_out_of_range<FMT>(amax, a.ts)) col = k, range = 1;
            if (col >= 0)
                vt_attn_flag_min(a.bad,
                                 VT_KV_BAD_KEY(a.epoch, a.len + t, a.is_v, h, b * BE + col, range));
        }
    }
}

#endif
