/* K/V rows in a block format: which formats a KV cache can hold, and quantizing/dequantizing
 * runs of rows through the quant module (vt_quantize / vt_dequantize), so a cache holds exactly
 * the bytes vt_quantize writes for the same rows. The CUDA append kernel mirrors the quant
 * module's reference quantizers operation by operation. */
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif
#include <stdio.h>
#include <string.h>

#include "attn_internal.h"
#include "kern_internal.h"
#include "vtstore/blocks.h"

int vt_attn_kv_format_ok(uint32_t fmt) {
    switch (fmt) {
    case VT_FMT_F32:
    case VT_FMT_F16:
    case VT_FMT_BF16:
    case VT_FMT_Q8_0:
    case VT_FMT_Q4_0:
    case VT_FMT_INT8:
    case VT_FMT_NF4:
    case VT_FMT_NVFP4:
    case VT_FMT_MXFP4:
        return 1;
    default:
        return 0;
    }
}

const char *vt_attn_fmt_name(uint32_t fmt) {
    static _Thread_local char buf[48];
    return vt_format_name(fmt, buf, sizeof buf);
}

uint64_t vt_attn_row_bytes(uint32_t fmt, uint32_t head_dim) {
    return vt_attn_kv_format_ok(fmt) ? vt_quant_row_bytes(fmt, head_dim) : 0;
}

static vt_quant_params kv_params(float tensor_scale) {
    vt_quant_params p;
    vt_quant_params_init(&p);
    p.tensor_scale = tensor_scale > 0.0f ? tensor_scale : 1.0f;
    return p;
}

int vt_attn_kv_quantize_rows(uint32_t fmt, const float *x, uint64_t rows, uint32_t d,
                             float tensor_scale, void *dst) {
    vt_quant_params p = kv_params(tensor_scale);
    return vt_quantize(fmt, &p, x, rows, d, dst, 1);
}

/* Fast decoders for the common cache formats, chosen from the cached kernel checks
 * (vt_kcpu_avx512 / vt_kcpu_avx2: no cpuid per tile, and VT_KERNELS_AVX512=0 /
 * VT_KERNELS_SCALAR=1 select the others). Their values equal vt_dequantize's: one f16->f32
 * conversion of each value or scale and one f32 product, as the reference does. */
#if defined(__x86_64__) || defined(__i386__)
__attribute__((target("avx2,f16c"))) static void f16_rows_f16c(const uint16_t *h, float *y,
                                                               size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(h + i))));
    for (; i < n; i++) y[i] = vt_f16_to_f32(h[i]);
}

__attribute__((target("avx512f,avx2,f16c"))) static void f16_rows_avx512(const uint16_t *h,
                                                                         float *y, size_t n) {
    size_t i = 0;
    for (; i + 16 <= n; i += 16)
        _mm512_storeu_ps(y + i, _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(h + i))));
    f16_rows_f16c(h + i, y + i, n - i);
}

/* Rows of q8_0 / q4_0 through the weight decoders (vt_kdecode_dense: decode_avx512.c or
 * decode_avx2.c), VT_KC values a call; the cache rows are laid out as a weight's. */
static void blocks_kdecode(uint32_t fmt, const void *src, size_t rows, uint32_t d, float *y) {
    vt_kdesc kd = {0};
    kd.data = src;
    kd.fmt = fmt;
    kd.rows = rows;
    kd.cols = d;
    kd.row_bytes = vt_quant_row_bytes(fmt, d);
    vt_kdecode_fn fn = vt_kdecode_dense(fmt, 1);
    for (size_t r = 0; r < rows; r++, y += d)
        for (uint32_t k0 = 0; k0 < d; k0 += VT_KC)
            fn(&kd, r, k0, d - k0 < VT_KC ? d - k0 : VT_KC, y + k0);
}

/* 1 when rows x d of fmt were decoded into y by a fast path. */
static int dequantize_fast(uint32_t fmt, const void *src, size_t n, uint32_t d, float *y) {
    if (!vt_kcpu_avx2()) return 0;
    int w512 = vt_kcpu_avx512();
    switch (fmt) {
    case VT_FMT_F16:
        if (w512)
            f16_rows_avx512(src, y, n);
        else
            f16_rows_f16c(src, y, n);
        return 1;
    case VT_FMT_Q8_0:
    case VT_FMT_Q4_0: /* whole blocks only: the decoders write whole blocks */
        if (d % 32) return 0;
        blocks_kdecode(fmt, src, n / d, d, y);
        return 1;
    default:
        return 0;
    }
}
#else
static int dequantize_fast(uint32_t fmt, const void *src, size_t n, uint32_t d, float *y) {
    (void)fmt, (void)src, (void)n, (void)d, (void)y;
    return 0;
}
#endif

int vt_attn_kv_dequantize_rows(uint32_t fmt, const void *src, uint64_t rows, uint32_t d,
                               float tensor_scale, float *y) {
    if (!rows) return 0;
    if (fmt == VT_FMT_F32) { /* no need for a copy through the dispatcher */
        memcpy(y, src, (size_t)rows * d * sizeof(float));
        return 0;
    }
    size_t n = (size_t)rows * d;
    if (dequantize_fast(fmt, src, n, d, y)) return 0;
    if (fmt == VT_FMT_BF16) { /* bf16 is the upper half of an f32: exact */
        const uint16_t *h = src;
        uint32_t *u = (uint32_t *)y;
        for (size_t i = 0; i < n; i++) u[i] = (uint32_t)h[i] << 16;
        return 0;
    }
    vt_quant_params p = kv_params(tensor_scale);
    return vt_dequantize(fmt, &p, src, rows, d, y, 1);
}
