/* kernels/cpu/decode_x86.h — what the x86 host decoders (decode_avx2.c, decode_avx512.c) share:
 * row addressing, block-scale loads and q6_k's code planes; private to kernels/cpu. */
#ifndef VT_DECODE_X86_H
#define VT_DECODE_X86_H

#if defined(__x86_64__)
#include <immintrin.h>
#include <string.h>

#include "kern_internal.h"

#define ROW(d, r)   ((d)->data + (r) * (d)->row_bytes)
#define NBLK(n, be) (((n) + (be)-1) / (be))

/* An f16 block scale by F16C, inline: a call to vt_f16_to_f32 per block cost q8_0 a third of its
 * speed (the conversion is exact either way, subnormals included). */
__attribute__((target("f16c"))) static inline float ldf16(const uint8_t *p) {
    uint16_t h;
    memcpy(&h, p, 2);
    return _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(h)));
}
static inline float ldf32(const uint8_t *p) {
    float f;
    memcpy(&f, p, 4);
    return f;
}

/* q6_k, one half of a block (128 values): the signed codes of values 32c + l, c = 0..3, as four
 * vectors of 32 bytes: (low or high nibble of ql[l] or ql[32 + l]) | (bits 2c, 2c+1 of qh[l]) << 4,
 * minus 32. */
__attribute__((target("avx2"))) static inline void vt_kq6k_planes(const uint8_t *ql,
                                                                  const uint8_t *qh, __m256i *q1,
                                                                  __m256i *q2, __m256i *q3,
                                                                  __m256i *q4) {
    const __m256i m4 = _mm256_set1_epi8(15), m30 = _mm256_set1_epi8(0x30),
                  k32 = _mm256_set1_epi8(32);
    __m256i l0 = _mm256_loadu_si256((const __m256i *)ql);
    __m256i l1 = _mm256_loadu_si256((const __m256i *)(ql + 32));
    __m256i hb = _mm256_loadu_si256((const __m256i *)qh);
    *q1 =
        _mm256_or_si256(_mm256_and_si256(l0, m4), _mm256_and_si256(_mm256_slli_epi16(hb, 4), m30));
    *q2 =
        _mm256_or_si256(_mm256_and_si256(l1, m4), _mm256_and_si256(_mm256_slli_epi16(hb, 2), m30));
    *q3 =
        _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m4), _mm256_and_si256(hb, m30));
    *q4 = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m4),
                          _mm256_and_si256(_mm256_srli_epi16(hb, 2), m30));
    *q1 = _mm256_sub_epi8(*q1, k32);
    *q2 = _mm256_sub_epi8(*q2, k32);
    *q3 = _mm256_sub_epi8(*q3, k32);
    *q4 = _mm256_sub_epi8(*q4, k32);
}
#endif

#endif
