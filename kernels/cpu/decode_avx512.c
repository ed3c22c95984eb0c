/* kernels/cpu/decode_avx512.c — AVX-512F host decoders for the formats where 16-float vectors
 * beat decode_avx2.c's (bench/kernels/bench_decode_cpu.c; docs/BENCHMARKS.md): half the
 * conversions and stores per block, a 16-entry code table is one vpermps, and awq's divisions
 * run twice as wide. f16 and bf16 gained nothing (a conversion and a store either way) and stay
 * on AVX2. Byte unpacking stays in 128-bit registers, so nothing past AVX-512F is needed. Same
 * values as the scalar decoders to the last bit (same products, nothing fused into an FMA).
 * Selected at run time (vt_kcpu_avx512) before the AVX2 table. */
#include <string.h>

#include "kern_internal.h"

#if defined(__x86_64__)
#include <immintrin.h>

#include "decode_x86.h"
#include "gemv_fused.h"

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("fp-contract=off") /* s * q - m rounds twice, as the reference does */
#endif

#define A512 __attribute__((target("avx512f,avx2,fma,f16c")))

/* 16 bytes -> 16 floats (unsigned / signed values). */
A512 static inline __m512 u8f(__m128i v) {
    return _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(v));
}
A512 static inline __m512 i8f(__m128i v) {
    return _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(v));
}
A512 static inline __m128i ld16(const uint8_t *p) {
    return _mm_loadu_si128((const __m128i *)p);
}
/* Low and high nibbles of 16 bytes. */
A512 static inline __m128i nlo(__m128i q) {
    return _mm_and_si128(q, _mm_set1_epi8(15));
}
A512 static inline __m128i nhi(__m128i q) {
    return _mm_and_si128(_mm_srli_epi16(q, 4), _mm_set1_epi8(15));
}

A512 static void dec_int8(const vt_kdesc *d, uint64_t r, uint64_t k0, uint32_t n, float *o) {
    const uint8_t *p = ROW(d, r) + k0 / 64 * 68;
    for (uint32_t b = 0; b < NBLK(n, 64); b++, p += 68, o += 64) {
        __m512 s = _mm512_set1_ps(ldf32(p));
        for (int h = 0; h < 4; h++)
            _mm512_storeu_ps(o + 16 * h, _mm512_mul_ps(s, i8f(ld16(p + 4 + 16 * h))));
    }
}

A512 static void dec_awq(const vt_kdesc *d, uint64_t r, uint64_t k0, uint32_t n, float *o) {
    const uint8_t *p = ROW(d, r) + k0 / 128 * 68;
    for (uint32_t b = 0; b < NBLK(n, 128); b++, p += 68, o += 128) {
        __m512 s = _mm512_set1_ps(ldf16(p));
        __m512i z = _mm512_set1_epi32(p[2]);
        uint64_t c0 = k0 + (uint64_t)b * 128;
        int full = d->aux && c0 + 128 <= d->cols;
        for (int h = 0; h < 4; h++) {
            __m128i q = ld16(p + 4 + 16 * h);
            __m128i e0 = _mm_unpacklo_epi8(nlo(q), nhi(q)), e1 = _mm_unpackhi_epi8(nlo(q), nhi(q));
            __m512 v0 =
                _mm512_mul_ps(s, _mm512_cvtepi32_ps(_mm512_sub_epi32(_mm512_cvtepu8_epi32(e0), z)));
            __m512 v1 =
                _mm512_mul_ps(s, _mm512_cvtepi32_ps(_mm512_sub_epi32(_mm512_cvtepu8_epi32(e1), z)));
            if (full) {
                v0 = _mm512_div_ps(v0, _mm512_loadu_ps(d->aux + c0 + 32 * h));
                v1 = _mm512_div_ps(v1, _mm512_loadu_ps(d->aux + c0 + 32 * h + 16));
            }
            _mm512_storeu_ps(o + 32 * h, v0);
            _mm512_storeu_ps(o + 32 * h + 16, v1);
        }
        if (d->aux && !full)
            for (uint32_t i = 0; i < 128 && c0 + i < d->cols; i++) o[i] /= d->aux[c0 + i];
    }
}

A512 static void dec_q8_0(const vt_kdesc *d, uint64_t r, uint64_t k0, uint32_t n, float *o) {
    const uint8_t *p = ROW(d, r) + k0 / 32 * 34;
    for (uint32_t b = 0; b < NBLK(n, 32); b++, p += 34, o += 32) {
        __m512 s = _mm512_set1_ps(ldf16(p));
        _mm512_storeu_ps(o, _mm512_mul_ps(s, i8f(ld16(p + 2))));
        _mm512_storeu_ps(o + 16, _mm512_mul_ps(s, i8f(ld16(p + 18))));
    }
}

A512 static void dec_q4_0(const vt_kdesc *d, uint64_t r, uint64_t k0, uint32_t n, float *o) {
    const uint8_t *p = ROW(d, r) + k0 / 32 * 18;
    const __m128i eight = _mm_set1_epi8(8);
    for (uint32_t b = 0; b < NBLK(n, 32); b++, p += 18, o += 32) {
        __m512 s = _mm512_set1_ps(ldf16(p));
        __m128i q = ld16(p + 2);
        _mm512_storeu_ps(o, _mm512_mul_ps(s, i8f(_mm_sub_epi8(nlo(q), eight))));
        _mm512_storeu_ps(o + 16, _mm512_mul_ps(s, i8f(_mm_sub_epi8(nhi(q), eight))));
    }
}

A512 static void dec_q4_1(const vt_kdesc *d, uint64_t r, uint64_t k0, uint32_t n, float *o) {
    const uint8_t *p = ROW(d, r) + k0 / 32 * 20;
    for (uint32_t b = 0; b < NBLK(n, 32); b++, p += 20, o += 32) {
        __m512 s = _mm512_set1_ps(ldf16(p)), m = _mm512_set1_ps(ldf16(p + 2));
        __m128i q = ld16(p + 4);
        _mm512_storeu_ps(o, _mm512_add_ps(_mm512_mul_ps(s, u8f(nlo(q))), m));
        _mm512_storeu_ps(o + 16, _mm512_add_ps(_mm512_mul_ps(s, u8f(nhi(q))), m));
    }
}

/* q4_k: see decode_avx2.c; one 16-float vector per 16 code bytes. */
A512 static void dec_q4_k(const vt_kdesc *d, uint64_t r, uint64_t k0, uint32_t n, float *o) {
    const uint8_t *p = ROW(d, r) + k0 / 256 * 144;
    for (uint32_t b = 0; b < NBLK(n, 256); b++, p += 144, o += 256) {
        __m128i sm = vt_kq4k_scale_bytes(p); /* sc0 m0 sc1 m1 ... sc7 m7 */
        __m512 f = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(sm));
        __m512 dm = _mm512_mul_ps(f, _mm512_setr4_ps(ldf16(p), ldf16(p + 2), ldf16(p),
                                                     ldf16(p + 2))); /* d*sc0 dmin*m0 ... */
        float sc[16];
        _mm512_storeu_ps(sc, dm);
        const uint8_t *q = p + 16;
        for (int j = 0; j < 8; j += 2, q += 32) {
            __m512 d1 = _mm512_set1_ps(sc[2 * j]), m1 = _mm512_set1_ps(sc[2 * j + 1]);
            __m512 d2 = _mm512_set1_ps(sc[2 * j + 2]), m2 = _mm512_set1_ps(sc[2 * j + 3]);
            __m128i a = ld16(q), c = ld16(q + 16);
            float *y = o + 32 * j;
            _mm512_storeu_ps(y, _mm512_sub_ps(_mm512_mul_ps(d1, u8f(nlo(a))), m1));
            _mm512_storeu_ps(y + 16, _mm512_sub_ps(_mm512_mul_ps(d1, u8f(nlo(c))), m1));
            _mm512_storeu_ps(y + 32, _mm512_sub_ps(_mm512_mul_ps(d2, u8f(nhi(a))), m2));
            _mm512_storeu_ps(y + 48, _mm512_sub_ps(_mm512_mul_ps(d2, u8f(nhi(c))), m2));
        }
    }
}

/* q6_k: see decode_avx2.c; each 16 output values share one scale, one vector each. */
A512 static void dec_q6_k(const vt_kdesc *d, uint64_t r, uint64_t k0, uint32_t n, float *o) {
    const uint8_t *p = ROW(d, r) + k0 / 256 * 210;
    for (uint32_t b = 0; b < NBLK(n, 256); b++, p += 210) {
        float ds[16];
        _mm512_storeu_ps(ds, _mm512_mul_ps(_mm512_set1_ps(ldf16(p + 208)), i8f(ld16(p + 192))));
        for (int h = 0; h < 2; h++, o += 128) {
            const uint8_t *ql = p + 64 * h, *qh = p + 128 + 32 * h;
            const float *s = ds + 8 * h;
            __m256i q1, q2, q3, q4;
            vt_kq6k_planes(ql, qh, &q1, &q2, &q3, &q4);
#define Q6_16(v, half, k)                                                                          \
    _mm512_storeu_ps(o + 16 * (k),                                                                 \
                     _mm512_mul_ps(_mm512_set1_ps(s[k]), i8f(_mm256_extracti128_si256(v, half))))
            Q6_16(q1, 0, 0);
            Q6_16(q1, 1, 1);
            Q6_16(q2, 0, 2);
            Q6_16(q2, 1, 3);
            Q6_16(q3, 0, 4);
            Q6_16(q3, 1, 5);
            Q6_16(q4, 0, 6);
            Q6_16(q4, 1, 7);
#undef Q6_16
        }
    }
}

/* 16 code bytes -> 32 floats s * lut[code] in element order (hi_first: element 2i is the high
 * nibble of byte i). */
A512 static inline void lut32(__m128i q, int hi_first, __m512 lut, __m512 s, float *o) {
    __m128i lo = nlo(q), hi = nhi(q);
    __m128i e0 = hi_first ? _mm_unpacklo_epi8(hi, lo) : _mm_unpacklo_epi8(lo, hi);
    __m128i e1 = hi_first ? _mm_unpackhi_epi8(hi, lo) : _mm_unpackhi_epi8(lo, hi);
    _mm512_storeu_ps(o, _mm512_mul_ps(s, _mm512_permutexvar_ps(_mm512_cvtepu8_epi32(e0), lut)));
    _mm512_storeu_ps(o + 16,
                     _mm512_mul_ps(s, _mm512_permutexvar_ps(_mm512_cvtepu8_epi32(e1), lut)));
}

A512 static void dec_nf4(const vt_kdesc *d, uint64_t r, uint64_t k0, uint32_t n, float *o) {
    const uint8_t *p = ROW(d, r) + k0 / 64 * 36;
    __m512 lut = _mm512_loadu_ps(vt_nf4_values);
    for (uint32_t b = 0; b < NBLK(n, 64); b++, p += 36, o += 64) {
        __m512 s = _mm512_set1_ps(ldf32(p));
        lut32(ld16(p + 4), 1, lut, s, o);
        lut32(ld16(p + 20), 1, lut, s, o + 32);
    }
}

A512 static void dec_nf4_dq(const vt_kdesc *d, uint64_t r, uint64_t k0, uint32_t n, float *o) {
    __m512 lut = _mm512_loadu_ps(vt_nf4_values);
    uint64_t g = r * d->bpr + k0 / 64;
    for (uint32_t b = 0; b < NBLK(n, 64); b++, g++, o += 64) {
        const uint8_t *sb = d->data + g / 256 * sizeof(vt_block_nf4_dq);
        uint32_t j = (uint32_t)(g % 256);
        __m512 s = _mm512_set1_ps(ldf32(sb) + ldf32(sb + 4) * (float)(int8_t)sb[8 + j]);
        lut32(ld16(sb + 264 + 32 * j), 1, lut, s, o);
        lut32(ld16(sb + 264 + 32 * j + 16), 1, lut, s, o + 32);
    }
}

/* vt_e2m1_to_f32 of every code (code 8 is -0). */
static const float e2m1_all[16] = {0.0f,  0.5f,  1.0f,  1.5f,  2.0f,  3.0f,  4.0f,  6.0f,
                                   -0.0f, -0.5f, -1.0f, -1.5f, -2.0f, -3.0f, -4.0f, -6.0f};

A512 static void dec_mxfp4(const vt_kdesc *d, uint64_t r, uint64_t k0, uint32_t n, float *o) {
    const uint8_t *p = ROW(d, r) + k0 / 32 * 17;
    __m512 lut = _mm512_loadu_ps(e2m1_all);
    for (uint32_t b = 0; b < NBLK(n, 32); b++, p += 17, o += 32)
        lut32(ld16(p + 1), 0, lut, _mm512_set1_ps(vt_ke8m0_f32[p[0]]), o);
}

A512 static void dec_nvfp4(const vt_kdesc *d, uint64_t r, uint64_t k0, uint32_t n, float *o) {
    const uint8_t *p = ROW(d, r) + k0 / 16 * 9;
    __m512 lut = _mm512_loadu_ps(e2m1_all);
    for (uint32_t b = 0; b < NBLK(n, 16); b++, p += 9, o += 16) {
        __m512 s = _mm512_set1_ps(d->tensor_scale * vt_ke4m3_f32[p[0]]);
        __m128i q = _mm_loadl_epi64((const __m128i *)(p + 1));
        __m128i e = _mm_unpacklo_epi8(nlo(q), nhi(q));
        _mm512_storeu_ps(o, _mm512_mul_ps(s, _mm512_permutexvar_ps(_mm512_cvtepu8_epi32(e), lut)));
    }
}

void vt_ksparse_expand_avx2(const float *c, const uint8_t *idx, uint64_t g0, uint32_t ng, float *o);

/* vt_ksparse_expand_avx2 four groups per vector (g0 a multiple of 4): lane j of group j / 4 takes
 * the group's second value where the high index names it, else the first where the low one does
 * (masked permute), else 0. The last ng % 4 groups go to the AVX2 one. */
A512 void vt_ksparse_expand_avx512(const float *c, const uint8_t *idx, uint64_t g0, uint32_t ng,
                                   float *o) {
    const uint8_t *ib = idx + g0 / 2;
    const __m512i sh = _mm512_setr_epi32(0, 0, 0, 0, 4, 4, 4, 4, 8, 8, 8, 8, 12, 12, 12, 12);
    const __m512i lane = _mm512_setr_epi32(0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3);
    const __m512i base = _mm512_setr_epi32(0, 0, 0, 0, 2, 2, 2, 2, 4, 4, 4, 4, 6, 6, 6, 6);
    const __m512i three = _mm512_set1_epi32(3), one = _mm512_set1_epi32(1);
    uint32_t g = 0;
    for (; g + 4 <= ng; g += 4) {
        uint16_t w;
        memcpy(&w, ib + g / 2, 2);
        __m512i nib = _mm512_srlv_epi32(_mm512_set1_epi32(w), sh);
        __mmask16 lo = _mm512_cmpeq_epi32_mask(_mm512_and_si512(nib, three), lane);
        __mmask16 hi =
            _mm512_cmpeq_epi32_mask(_mm512_and_si512(_mm512_srli_epi32(nib, 2), three), lane);
        __m512i sel = _mm512_mask_add_epi32(base, hi, base, one);
        __m512 src = _mm512_castps256_ps512(_mm256_loadu_ps(c + 2 * g));
        _mm512_storeu_ps(o + 4 * g, _mm512_maskz_permutexvar_ps(lo | hi, sel, src));
    }
    if (g < ng) vt_ksparse_expand_avx2(c + 2 * g, idx, g0 + g, ng - g, o + 4 * g);
}

const vt_kdecode_fn vt_kdecode_avx512_table[VT_FMT_COUNT] = {
    [VT_FMT_INT8] = dec_int8,   [VT_FMT_AWQ_INT4] = dec_awq, [VT_FMT_Q8_0] = dec_q8_0,
    [VT_FMT_Q4_0] = dec_q4_0,   [VT_FMT_Q4_1] = dec_q4_1,    [VT_FMT_Q4_K] = dec_q4_k,
    [VT_FMT_Q6_K] = dec_q6_k,   [VT_FMT_NF4] = dec_nf4,      [VT_FMT_NF4_DQ] = dec_nf4_dq,
    [VT_FMT_MXFP4] = dec_mxfp4, [VT_FMT_NVFP4] = dec_nvfp4,
};

#else /* not x86-64 */
const vt_kdecode_fn vt_kdecode_avx512_table[VT_FMT_COUNT];
void vt_ksparse_expand_avx512(const float *c, const uint8_t *idx, uint64_t g0, uint32_t ng,
                              float *o) {
    (void)c, (void)idx, (void)g0, (void)ng, (void)o; /* never called: vt_kcpu_avx512() is 0 */
}
#endif
