/* quant/fp4.c — 4-bit floating-point formats with E2M1 elements (element 2i in the low nibble).
 *
 * nvfp4 (block 16): block scale s = e4m3((amax / 6) / tensor_scale) (round to nearest even,
 *   saturating at 448), codes = e2m1(x / (tensor_scale * e4m3_to_f32(s))); dequantized
 *   x = (tensor_scale * e4m3_to_f32(s)) * e2m1(code), the product in brackets rounded to f32
 *   first. The row ops take a tensor_scale that is not a positive finite number as 1; the
 *   dispatcher never passes one (it refuses those, the unset NaN included). A block whose
 *   scale decodes to 0 stores code 0.
 *
 * mxfp4 (block 32, OCP MX v1.0 rule): shared exponent E = floor(log2(amax)) - 2 (2 = emax of
 *   E2M1), clamped to [-127, 127] (E8M0 byte E + 127; amax 0 gives -127); codes =
 *   e2m1(x * 2^-E), which saturates at 6 for the values in (6, 8) * 2^E the rule leaves above
 *   the largest element. Both scalings are by powers of two, so x * 2^-E is exact (or rounds
 *   exactly like x / 2^E when it underflows). The OCP rule was checked against the alternative
 *   E = ceil(log2(amax / 6)) (no saturation): on N(0,1) both land near DESIGN.md's 18.8 dB, the
 *   floor rule slightly higher (18.79 vs 18.77 dB on 2^20 values; tests/quant_b/test_fp4.c
 *   prints both each run). */
#include <math.h>
#include <string.h>

#include "nibble_lut.h"
#include "quant_internal.h"

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

/* Bitwise decoders, equal to core's vt_e4m3_to_f32 / vt_e8m0_to_f32 for every finite code (all
 * values are exact in f32) but without ldexpf; NaN codes are never written by the quantizers and
 * decode to a NaN here too. */
static inline float fp4_u2f(uint32_t u) {
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}
static inline float e4m3_dec(uint8_t v) {
    uint32_t s = (uint32_t)(v & 0x80) << 24, e = (v >> 3) & 15, m = v & 7;
    if (e == 15 && m == 7) return fp4_u2f(s | 0x7fc00000u);
    if (e == 0) {
        float r = (float)m * 0x1p-9f;
        return s ? -r : r;
    }
    return fp4_u2f(s | (e + 120) << 23 | m << 20);
}
static inline float e8m0_dec(uint8_t v) {
    if (v == 255) return fp4_u2f(0x7fc00000u);
    return v == 0 ? fp4_u2f(0x00400000u) : fp4_u2f((uint32_t)v << 23);
}

float vt_nvfp4_tensor_scale(const vt_quant_params *p) {
    float ts = p ? p->tensor_scale : 1.0f;
    return (ts > 0.0f && isfinite(ts)) ? ts : 1.0f;
}

/* Copy block b of a row (n elements per block) zero-padded into buf; returns the block's data. */
static const float *block_in(const float *x, uint64_t cols, uint64_t b, int n, float *buf) {
    uint64_t left = cols - b * (uint64_t)n;
    if (left >= (uint64_t)n) return x + b * (uint64_t)n;
    memset(buf, 0, (size_t)n * sizeof(float));
    memcpy(buf, x + b * (uint64_t)n, left * sizeof(float));
    return buf;
}

static float amax_of(const float *x, int n) {
    float m = 0.0f;
    for (int i = 0; i < n; i++) m = fabsf(x[i]) > m ? fabsf(x[i]) : m;
    return m;
}

/* Branch-free e2m1 code for 4 values at once: magnitude code = number of rounding boundaries
 * below |v| (strict at the boundaries that round down to an even code, >= where a tie goes up
 * to the even code), the same function as vt_f32_to_e2m1. Writes 4 codes. */
static inline void e2m1_codes4(const float *v, uint8_t *c) {
#if defined(__SSE2__)
    const __m128 absmask = _mm_castsi128_ps(_mm_set1_epi32(0x7fffffff));
    __m128 x = _mm_loadu_ps(v);
    __m128 a = _mm_and_ps(x, absmask);
    __m128i n = _mm_setzero_si128();
    n = _mm_sub_epi32(n, _mm_castps_si128(_mm_cmpgt_ps(a, _mm_set1_ps(0.25f))));
    n = _mm_sub_epi32(n, _mm_castps_si128(_mm_cmpge_ps(a, _mm_set1_ps(0.75f))));
    n = _mm_sub_epi32(n, _mm_castps_si128(_mm_cmpgt_ps(a, _mm_set1_ps(1.25f))));
    n = _mm_sub_epi32(n, _mm_castps_si128(_mm_cmpge_ps(a, _mm_set1_ps(1.75f))));
    n = _mm_sub_epi32(n, _mm_castps_si128(_mm_cmpgt_ps(a, _mm_set1_ps(2.5f))));
    n = _mm_sub_epi32(n, _mm_castps_si128(_mm_cmpge_ps(a, _mm_set1_ps(3.5f))));
    n = _mm_sub_epi32(n, _mm_castps_si128(_mm_cmpgt_ps(a, _mm_set1_ps(5.0f))));
    n = _mm_or_si128(n, _mm_slli_epi32(_mm_srli_epi32(_mm_castps_si128(x), 31), 3));
    int32_t t[4];
    _mm_storeu_si128((__m128i *)t, n);
    for (int k = 0; k < 4; k++) c[k] = (uint8_t)t[k];
#else
    for (int k = 0; k < 4; k++) {
        float a = fabsf(v[k]);
        int n = (a > 0.25f) + (a >= 0.75f) + (a > 1.25f) + (a >= 1.75f) + (a > 2.5f) + (a >= 3.5f) +
                (a > 5.0f);
        c[k] = (uint8_t)(n | (signbit(v[k]) ? 8 : 0));
    }
#endif
}

/* ---- nvfp4 --------------------------------------------------------------------------------- */

static void nvfp4_quantize_ref(const float *x, void *dst, uint64_t cols, const vt_quant_params *p) {
    float ts = vt_nvfp4_tensor_scale(p);
    uint8_t *out = dst;
    uint64_t nb = (cols + VT_QK_NVFP4 - 1) / VT_QK_NVFP4;
    for (uint64_t b = 0; b < nb; b++, out += sizeof(vt_block_nvfp4)) {
        float buf[VT_QK_NVFP4];
        const float *xb = block_in(x, cols, b, VT_QK_NVFP4, buf);
        uint8_t s = vt_f32_to_e4m3((amax_of(xb, VT_QK_NVFP4) / 6.0f) / ts);
        float denom = ts * vt_e4m3_to_f32(s);
        out[0] = s;
        for (int i = 0; i < VT_QK_NVFP4 / 2; i++) {
            uint8_t lo = denom != 0.0f ? vt_f32_to_e2m1(xb[2 * i] / denom) : 0;
            uint8_t hi = denom != 0.0f ? vt_f32_to_e2m1(xb[2 * i + 1] / denom) : 0;
            out[1 + i] = (uint8_t)(lo | hi << 4);
        }
    }
}

static void nvfp4_quantize_fast(const float *x, void *dst, uint64_t cols,
                                const vt_quant_params *p) {
    float ts = vt_nvfp4_tensor_scale(p);
    uint8_t *out = dst;
    uint64_t nb = (cols + VT_QK_NVFP4 - 1) / VT_QK_NVFP4;
    for (uint64_t b = 0; b < nb; b++, out += sizeof(vt_block_nvfp4)) {
        float buf[VT_QK_NVFP4], q[VT_QK_NVFP4];
        const float *xb = block_in(x, cols, b, VT_QK_NVFP4, buf);
        uint8_t s = vt_f32_to_e4m3((amax_of(xb, VT_QK_NVFP4) / 6.0f) / ts);
        float denom = ts * vt_e4m3_to_f32(s);
        out[0] = s;
        if (denom == 0.0f) {
            memset(out + 1, 0, VT_QK_NVFP4 / 2);
            continue;
        }
        for (int i = 0; i < VT_QK_NVFP4; i++) q[i] = xb[i] / denom;
        uint8_t c[VT_QK_NVFP4];
        for (int i = 0; i < VT_QK_NVFP4; i += 4) e2m1_codes4(q + i, c + i);
        for (int i = 0; i < VT_QK_NVFP4 / 2; i++)
            out[1 + i] = (uint8_t)(c[2 * i] | c[2 * i + 1] << 4);
    }
}

static void nvfp4_dequantize_ref(const void *src, float *y, uint64_t cols,
                                 const vt_quant_params *p) {
    float ts = vt_nvfp4_tensor_scale(p);
    const uint8_t *in = src;
    for (uint64_t j = 0; j < cols; j++) {
        const uint8_t *blk = in + (j / VT_QK_NVFP4) * sizeof(vt_block_nvfp4);
        uint64_t e = j % VT_QK_NVFP4;
        uint8_t byte = blk[1 + e / 2];
        uint8_t code = (e % 2 == 0) ? byte & 15 : byte >> 4;
        y[j] = (ts * vt_e4m3_to_f32(blk[0])) * vt_e2m1_to_f32(code);
    }
}

static void fp4_dequantize_tab(const uint8_t *in, size_t block_bytes, int n, float *y,
                               uint64_t cols, float ts, int mx);

static void nvfp4_dequantize_fast(const void *src, float *y, uint64_t cols,
                                  const vt_quant_params *p) {
    fp4_dequantize_tab(src, sizeof(vt_block_nvfp4), VT_QK_NVFP4, y, cols, vt_nvfp4_tensor_scale(p),
                       0);
}

/* ---- mxfp4 --------------------------------------------------------------------------------- */

static int mx_exponent(float amax) {
    if (amax == 0.0f) return -127;
    int e;
    (void)frexpf(amax, &e); /* amax = f * 2^e, f in [0.5, 1): floor(log2 amax) = e - 1 */
    int E = e - 1 - 2;
    return E < -127 ? -127 : (E > 127 ? 127 : E);
}

static void mxfp4_quantize_ref(const float *x, void *dst, uint64_t cols, const vt_quant_params *p) {
    uint8_t *out = dst;
    uint64_t nb = (cols + VT_QK_MXFP4 - 1) / VT_QK_MXFP4;
    for (uint64_t b = 0; b < nb; b++, out += sizeof(vt_block_mxfp4)) {
        float buf[VT_QK_MXFP4];
        const float *xb = block_in(x, cols, b, VT_QK_MXFP4, buf);
        int E = mx_exponent(amax_of(xb, VT_QK_MXFP4));
        float inv = ldexpf(1.0f, -E);
        out[0] = (uint8_t)(E + 127);
        for (int i = 0; i < VT_QK_MXFP4 / 2; i++) {
            uint8_t lo = vt_f32_to_e2m1(xb[2 * i] * inv);
            uint8_t hi = vt_f32_to_e2m1(xb[2 * i + 1] * inv);
            out[1 + i] = (uint8_t)(lo | hi << 4);
        }
    }
}

static void mxfp4_quantize_fast(const float *x, void *dst, uint64_t cols,
                                const vt_quant_params *p) {
    uint8_t *out = dst;
    uint64_t nb = (cols + VT_QK_MXFP4 - 1) / VT_QK_MXFP4;
    for (uint64_t b = 0; b < nb; b++, out += sizeof(vt_block_mxfp4)) {
        float buf[VT_QK_MXFP4], q[VT_QK_MXFP4];
        const float *xb = block_in(x, cols, b, VT_QK_MXFP4, buf);
        int E = mx_exponent(amax_of(xb, VT_QK_MXFP4));
        float inv = ldexpf(1.0f, -E);
        out[0] = (uint8_t)(E + 127);
        for (int i = 0; i < VT_QK_MXFP4; i++) q[i] = xb[i] * inv;
        uint8_t c[VT_QK_MXFP4];
        for (int i = 0; i < VT_QK_MXFP4; i += 4) e2m1_codes4(q + i, c + i);
        for (int i = 0; i < VT_QK_MXFP4 / 2; i++)
            out[1 + i] = (uint8_t)(c[2 * i] | c[2 * i + 1] << 4);
    }
}

static void mxfp4_dequantize_ref(const void *src, float *y, uint64_t cols,
                                 const vt_quant_params *p) {
    const uint8_t *in = src;
    for (uint64_t j = 0; j < cols; j++) {
        const uint8_t *blk = in + (j / VT_QK_MXFP4) * sizeof(vt_block_mxfp4);
        uint64_t e = j % VT_QK_MXFP4;
        uint8_t byte = blk[1 + e / 2];
        uint8_t code = (e % 2 == 0) ? byte & 15 : byte >> 4;
        y[j] = vt_e8m0_to_f32(blk[0]) * vt_e2m1_to_f32(code);
    }
}

static void mxfp4_dequantize_fast(const void *src, float *y, uint64_t cols,
                                  const vt_quant_params *p) {
    fp4_dequantize_tab(src, sizeof(vt_block_mxfp4), VT_QK_MXFP4, y, cols, 1.0f, 1);
}

/* Shared fast dequantizer: e2m1 value by table lookup, times the block scale (the same product
 * as the reference). */
static void fp4_dequantize_tab(const uint8_t *in, size_t block_bytes, int n, float *y,
                               uint64_t cols, float ts, int mx) {
    static const float e2m1[16] = {0.0f,  0.5f,  1.0f,  1.5f,  2.0f,  3.0f,  4.0f,  6.0f,
                                   -0.0f, -0.5f, -1.0f, -1.5f, -2.0f, -3.0f, -4.0f, -6.0f};
    uint64_t nb = (cols + (uint64_t)n - 1) / (uint64_t)n;
    for (uint64_t b = 0; b < nb; b++, in += block_bytes) {
        float scale = mx ? e8m0_dec(in[0]) : ts * e4m3_dec(in[0]);
        const uint8_t *qs = in + 1;
        float *yb = y + b * (uint64_t)n;
        uint64_t left = cols - b * (uint64_t)n;
        if (left >= (uint64_t)n) {
            vt_lut16_expand(qs, (uint64_t)n / 2, e2m1, scale, yb, 0);
        } else {
            for (uint64_t e = 0; e < left; e++)
                yb[e] = scale * e2m1[(e % 2 == 0) ? qs[e / 2] & 15 : qs[e / 2] >> 4];
        }
    }
}

const vt_qrow_ops vt_qops_nvfp4 = {
    .quantize_ref = nvfp4_quantize_ref,
    .dequantize_ref = nvfp4_dequantize_ref,
    .quantize = nvfp4_quantize_fast,
    .dequantize = nvfp4_dequantize_fast,
};

const vt_qrow_ops vt_qops_mxfp4 = {
    .quantize_ref = mxfp4_quantize_ref,
    .dequantize_ref = mxfp4_dequantize_ref,
    .quantize = mxfp4_quantize_fast,
    .dequantize = mxfp4_dequantize_fast,
};
