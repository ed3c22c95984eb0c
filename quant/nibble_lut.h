/* quant/nibble_lut.h — expand packed 4-bit codes through a 16-entry float table (private).
 * Used by the fast dequantizers of nf4, nf4_dq, nvfp4 and mxfp4: every output is the product
 * scale * tab[code] that the reference computes (one IEEE multiply: bit-identical). An
 * AVX-512 path (one 16-lane permute) or AVX2 path (two 8-lane permutes and a blend) is chosen
 * at run time; otherwise scalar. */
#ifndef VT_QUANT_NIBBLE_LUT_H
#define VT_QUANT_NIBBLE_LUT_H

#include <stdint.h>
#include <string.h>

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define VT_LUT_X86 1

__attribute__((target("avx2"))) static inline void vt_lut16_avx2(const uint8_t *qs, uint64_t nbytes,
                                                                 const float *tab, float scale,
                                                                 float *y, int hi_first) {
    const __m256 lo = _mm256_loadu_ps(tab), hi = _mm256_loadu_ps(tab + 8);
    const __m256 sc = _mm256_set1_ps(scale);
    const __m256i sh = hi_first ? _mm256_setr_epi32(4, 0, 4, 0, 4, 0, 4, 0)
                                : _mm256_setr_epi32(0, 4, 0, 4, 0, 4, 0, 4);
    const __m256i m15 = _mm256_set1_epi32(15);
    for (uint64_t i = 0; i < nbytes; i += 4) {
        uint32_t w;
        memcpy(&w, qs + i, 4);
        __m128i b = _mm_cvtsi32_si128((int)w);
        b = _mm_unpacklo_epi8(b, b); /* b0 b0 b1 b1 b2 b2 b3 b3 */
        __m256i v = _mm256_and_si256(_mm256_srlv_epi32(_mm256_cvtepu8_epi32(b), sh), m15);
        __m256 r =
            _mm256_blendv_ps(_mm256_permutevar8x32_ps(lo, v), _mm256_permutevar8x32_ps(hi, v),
                             _mm256_castsi256_ps(_mm256_slli_epi32(v, 28)));
        _mm256_storeu_ps(y + 2 * i, _mm256_mul_ps(sc, r));
    }
}

/* 16 outputs per permute: vpermps on a zmm table uses the low 4 index bits only, so the high
 * nibble needs a shift and the low nibble no mask. */
__attribute__((target("avx512f"))) static inline void vt_lut16_avx512(const uint8_t *qs,
                                                                      uint64_t nbytes,
                                                                      const float *tab, float scale,
                                                                      float *y, int hi_first) {
    const __m512 t = _mm512_loadu_ps(tab), sc = _mm512_set1_ps(scale);
    const __m512i sh = hi_first ? _mm512_setr_epi32(4, 0, 4, 0, 4, 0, 4, 0, 4, 0, 4, 0, 4, 0, 4, 0)
                                : _mm512_setr_epi32(0, 4, 0, 4, 0, 4, 0, 4, 0, 4, 0, 4, 0, 4, 0, 4);
    for (uint64_t i = 0; i < nbytes; i += 8) {
        __m128i b = _mm_loadl_epi64((const __m128i *)(qs + i));
        b = _mm_unpacklo_epi8(b, b);
        __m512i v = _mm512_srlv_epi32(_mm512_cvtepu8_epi32(b), sh);
        _mm512_storeu_ps(y + 2 * i, _mm512_mul_ps(sc, _mm512_permutexvar_ps(v, t)));
    }
}
#endif

/* y[0 .. 2*nbytes) = scale * tab[code] from nbytes packed codes (the reference's product);
 * hi_first: element 2i in the high nibble. */
static inline void vt_lut16_expand(const uint8_t *qs, uint64_t nbytes, const float *tab,
                                   float scale, float *y, int hi_first) {
#ifdef VT_LUT_X86
    if (nbytes % 8 == 0 && __builtin_cpu_supports("avx512f")) {
        vt_lut16_avx512(qs, nbytes, tab, scale, y, hi_first);
        return;
    }
    if (nbytes % 4 == 0 && __builtin_cpu_supports("avx2")) {
        vt_lut16_avx2(qs, nbytes, tab, scale, y, hi_first);
        return;
    }
#endif
    for (uint64_t i = 0; i < nbytes; i++) {
        uint8_t a = hi_first ? qs[i] >> 4 : qs[i] & 15, b = hi_first ? qs[i] & 15 : qs[i] >> 4;
        y[2 * i] = scale * tab[a];
        y[2 * i + 1] = scale * tab[b];
    }
}

#endif
