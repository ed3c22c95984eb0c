/* K/V rows in a block format: which formats a KV cache can hold, and quantizing/dequantizing
 * runs of rows through the quant module (vt_quantize / vt_dequantize), so a cache holds exactly
 * the bytes vt_quantize writes for the same rows. The CUDA append kernel mirrors the quant
 * module's reference quantizers operation by operation. */
#include <immintrin.h>
#include <stdio.h>
#include <string.h>

#include "attn_internal.h"

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

/* F16C from the cached core check: the hot loop dequantizes a tile per call and must not pay
 * for cpuid (which traps to the hypervisor in a VM). */
static int have_f16c(void) {
    int f = vt_cpu_features();
    return (f & VT_CPU_AVX2) && (f & VT_CPU_F16C);
}

__attribute__((target("avx2,f16c"))) static void f16_rows_f16c(const uint16_t *h, float *y,
                                                               size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(h + i))));
    for (; i < n; i++) y[i] = vt_f16_to_f32(h[i]);
}

int vt_attn_kv_dequantize_rows(uint32_t fmt, const void *src, uint64_t rows, uint32_t d,
                               float tensor_scale, float *y) {
    if (!rows) return 0;
    if (fmt == VT_FMT_F32) { /* no need for a copy through the dispatcher */
        memcpy(y, src, (size_t)rows * d * sizeof(float));
        return 0;
    }
    size_t n = (size_t)rows * d;
    if (fmt == VT_FMT_F16 && have_f16c()) {
        f16_rows_f16c(src, y, n);
        return 0;
    }
    if (fmt == VT_FMT_BF16) { /* bf16 is the upper half of an f32: exact */
        const uint16_t *h = src;
        uint32_t *u = (uint32_t *)y;
        for (size_t i = 0; i < n; i++) u[i] = (uint32_t)h[i] << 16;
        return 0;
    }
    vt_quant_params p = kv_params(tensor_scale);
    return vt_dequantize(fmt, &p, src, rows, d, y, 1);
}
