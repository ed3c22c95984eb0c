/* quant/nf4_codes.h — NF4 code search shared by nf4.c and nf4_dq.c (private).
 *
 * The reference search is bitsandbytes' dQuantizeNF4 decision tree (csrc/kernels.cu): 15
 * thresholds, each the midpoint (computed in double, then rounded to float) of two neighbouring
 * code values; `x > t` picks the upper code, so a value exactly on a midpoint takes the lower
 * one. The fast search counts the thresholds below x, which is the same function because the
 * tree is a binary search over the same sorted thresholds with the same strict comparison. */
#ifndef VT_QUANT_NF4_CODES_H
#define VT_QUANT_NF4_CODES_H

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "core/codes_hd.h" /* vt_nf4_code_ref: bitsandbytes' tree */
#include "vtstore/blocks.h"

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

/* Ascending midpoints between vt_nf4_values[i] and vt_nf4_values[i + 1]. */
static const float vt_nf4_thresholds[15] = {
    -0.8480964004993439f,  -0.6106329262256622f,  -0.4599952697753906f,   -0.33967943489551544f,
    -0.23460740596055984f, -0.13791173323988914f, -0.045525018125772476f, 0.03979014977812767f,
    0.1202552504837513f,   0.2035212516784668f,   0.2920137718319893f,    0.3893125355243683f,
    0.5016634166240692f,   0.6427869200706482f,   0.8614784181118011f,
};

/* Normalisation as bitsandbytes does it: multiply by the float reciprocal of absmax. When the
 * reciprocal overflows (absmax below 2^-128, a subnormal) we divide instead, so zeros stay zero.
 * Returns 0 and sets *inv when multiplying, 1 when the caller must divide. */
static inline int vt_nf4_recip(float absmax, float *inv) {
    *inv = 1.0f / absmax;
    return isinf(*inv);
}

/* Quantize one block of VT_QK_NF4 values (already zero-padded) against @p absmax (> 0) into 32
 * bytes: element 2i in the high nibble of byte i. Reference version. */
static inline void vt_nf4_block_codes_ref(const float *x, float absmax, uint8_t *qs) {
    float inv;
    int div = vt_nf4_recip(absmax, &inv);
    for (int i = 0; i < VT_QK_NF4 / 2; i++) {
        float a = div ? x[2 * i] / absmax : x[2 * i] * inv;
        float b = div ? x[2 * i + 1] / absmax : x[2 * i + 1] * inv;
        qs[i] = (uint8_t)(vt_nf4_code_ref(a) << 4 | vt_nf4_code_ref(b));
    }
}

/* Fast version of vt_nf4_block_codes_ref (bit-identical). */
static inline void vt_nf4_block_codes_fast(const float *x, float absmax, uint8_t *qs) {
    float inv;
    int div = vt_nf4_recip(absmax, &inv);
#if defined(__SSE2__)
    const __m128 vinv = _mm_set1_ps(inv), vabs = _mm_set1_ps(absmax);
    for (int i = 0; i < VT_QK_NF4; i += 16) {
        __m128i c[4];
        for (int k = 0; k < 4; k++) {
            __m128 v = _mm_loadu_ps(x + i + 4 * k);
            v = div ? _mm_div_ps(v, vabs) : _mm_mul_ps(v, vinv);
            __m128i acc = _mm_setzero_si128();
            for (int t = 0; t < 15; t++)
                acc = _mm_sub_epi32(
                    acc, _mm_castps_si128(_mm_cmpgt_ps(v, _mm_set1_ps(vt_nf4_thresholds[t]))));
            c[k] = acc;
        }
        /* 16 codes as bytes, then pairs (even, odd) as 16-bit lanes: even << 4 | odd */
        __m128i w = _mm_packs_epi16(_mm_packs_epi32(c[0], c[1]), _mm_packs_epi32(c[2], c[3]));
        __m128i hi = _mm_and_si128(_mm_slli_epi16(w, 4), _mm_set1_epi16(0xf0));
        __m128i lo = _mm_srli_epi16(w, 8);
        __m128i packed = _mm_packus_epi16(_mm_or_si128(hi, lo), _mm_setzero_si128());
        _mm_storel_epi64((__m128i *)(qs + i / 2), packed);
    }
#else
    for (int i = 0; i < VT_QK_NF4 / 2; i++) {
        uint8_t cc[2];
        for (int h = 0; h < 2; h++) {
            float v = div ? x[2 * i + h] / absmax : x[2 * i + h] * inv;
            int n = 0;
            for (int t = 0; t < 15; t++) n += v > vt_nf4_thresholds[t];
            cc[h] = (uint8_t)n;
        }
        qs[i] = (uint8_t)(cc[0] << 4 | cc[1]);
    }
#endif
}

/* max |x| over n values (n a multiple of 4 for the SSE path). */
static inline float vt_absmax_ref(const float *x, uint64_t n) {
    float m = 0.0f;
    for (uint64_t i = 0; i < n; i++) {
        float a = fabsf(x[i]);
        if (a > m) m = a;
    }
    return m;
}

#if defined(__SSE2__)
/* max |x| over n values, n a multiple of 4. _mm_max_ps returns its second operand when either
 * is NaN: @p ref_nan = 1 computes max(|x|, m), which skips a NaN as vt_absmax_ref's `a > m`
 * does; 0 computes max(m, |x|), which takes it. */
static inline float vt_absmax_sse(const float *x, uint64_t n, int ref_nan) {
    const __m128 mask = _mm_castsi128_ps(_mm_set1_epi32(0x7fffffff));
    __m128 m = _mm_setzero_ps();
    for (uint64_t i = 0; i < n; i += 4) {
        __m128 a = _mm_and_ps(_mm_loadu_ps(x + i), mask);
        m = ref_nan ? _mm_max_ps(a, m) : _mm_max_ps(m, a);
    }
    float t[4];
    _mm_storeu_ps(t, m);
    float r = t[0];
    for (int k = 1; k < 4; k++) r = t[k] > r ? t[k] : r;
    return r;
}
#endif

static inline float vt_absmax_fast(const float *x, uint64_t n) {
#if defined(__SSE2__)
    if (n % 4 == 0) return vt_absmax_sse(x, n, 0);
#endif
    return vt_absmax_ref(x, n);
}

#endif
