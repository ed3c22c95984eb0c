/* kernels/cpu/decode_avx2.c — AVX2/FMA/F16C host decoders of every format but f32 (a memcpy).
 * Same values as the scalar decoders (decode_ref.c) and vt_dequantize_ref, to the last bit: the
 * products are formed in the same order (scale * code, q6_k (d * scale) * code) and nothing is
 * fused into an FMA (q4_1 and q4_k round the product and the add/subtract separately, as ggml
 * does). Selected at run time (vt_kcpu_avx2). */
#include <stdlib.h>
#include <string.h>

#include "kern_internal.h"

#if defined(__x86_64__)
#include <immintrin.h>

#include "decode_x86.h"
#include "gemv_fused.h"

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("fp-contract=off") /* s * q + m rounds twice, as the reference does */
#endif

#define AVX __attribute__((target("avx2,fma,f16c")))

/* 16 bytes -> 16 floats of their unsigned values (two ymm). */
AVX static inline void u8x16_to_f32(__m128i v, __m256 *a, __m256 *b) {
    *a = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(v));
    *b = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_srli_si128(v, 8)));
}
/* 16 signed bytes times s -> o[0..16). */
AVX static inline void i8x16_mul_store(__m128i v, __m256 s, float *o) {
    _mm256_storeu_ps(o, _mm256_mul_ps(s, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(v))));
    _mm256_storeu_ps(
        o + 8, _mm256_mul_ps(s, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(v, 8)))));
}

AVX static void dec_f16(const vt_kdesc *d, uint64_t r, uint64_t k0, uint32_t n, float *o) {
    const uint16_t *p = (const uint16_t *)(ROW(d, r) + k0 * 2);
    uint32_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(o + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(p + i))));
    for (; i < n; i++)
        o[i] = ldf16((const uint8_t *)(p + i)); /* rows of 2:4 tensors may be odd-aligned */
}

AVX static void dec_bf16(const vt_kdesc *d, uint64_t r, uint64_t k0, uint32_t n, float *o) {
    const uint16_t *p = (const uint16_t *)(ROW(d, r) + k0 * 2);
    uint32_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256i v = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(p + i)));
        _mm256_storeu_ps(o + i, _mm256_castsi256_ps(_mm256_slli_epi32(v, 16)));
    }
    for (; i < n; i++) {
        uint16_t h;
        memcpy(&h, p + i, 2); /* rows of 2:4 tensors may be odd-aligned */
        o[i] = vt_bf16_to_f32(h);
    }
}

AVX static void dec_q8_0(const vt_kdesc *d, uint64_t r, uint64_t k0, uint32_t n, float *o) {
    const uint8_t *p = ROW(d, r) + k0 / 32 * 34;
    for (uint32_t b = 0; b < NBLK(n, 32); b++, p += 34, o += 32) {
        __m256 s = _mm256_set1_ps(ldf16(p));
        for (int h = 0; h < 2; h++)
            i8x16_mul_store(_mm_loadu_si128((const __m128i *)(p + 2 + 16 * h)), s, o + 16 * h);
    }
}

/* 8 floats f[i] = base * (float)b[i] of 8 bytes (signed when sgn), as the reference's scalar
 * products (vector and scalar single multiplies round alike). */
AVX static inline __m256 scale8(float base, __m128i b, int sgn) {
    __m256i w = sgn ? _mm256_cvtepi8_epi32(b) : _mm256_cvtepu8_epi32(b);
    return _mm256_mul_ps(_mm256_set1_ps(base), _mm256_cvtepi32_ps(w));
}

/* 32 unsigned codes (a ymm of bytes) -> o[0..32) = d * code - m. */
AVX static inline void q4k_32(__m256i q, __m256 d, __m256 m, float *o) {
    __m128i lo = _mm256_castsi256_si128(q), hi = _mm256_extracti128_si256(q, 1);
    __m256 a, b;
    u8x16_to_f32(lo, &a, &b);
    _mm256_storeu_ps(o, _mm256_sub_ps(_mm256_mul_ps(d, a), m));
    _mm256_storeu_ps(o + 8, _mm256_sub_ps(_mm256_mul_ps(d, b), m));
    u8x16_to_f32(hi, &a, &b);
    _mm256_storeu_ps(o + 16, _mm256_sub_ps(_mm256_mul_ps(d, a), m));
    _mm256_storeu_ps(o + 24, _mm256_sub_ps(_mm256_mul_ps(d, b), m));
}

/* q4_k (ggml block_q4_K, 144 bytes per 256): sub-block j of 32 has scale d * sc[j] and min
 * dmin * m[j]; codes of sub-blocks 2i and 2i+1 are the low and high nibbles of qs[32i..32i+32). */
AVX static void dec_q4_k(const vt_kdesc *d, uint64_t r, uint64_t k0, uint32_t n, float *o) {
    const uint8_t *p = ROW(d, r) + k0 / 256 * 144;
    const __m256i m4 = _mm256_set1_epi8(15);
    for (uint32_t b = 0; b < NBLK(n, 256); b++, p += 144, o += 256) {
        __m128i sm = vt_kq4k_scale_bytes(p); /* sc0 m0 sc1 m1 ... sc7 m7 */
        __m128i scb = _mm_shuffle_epi8(
            sm, _mm_setr_epi8(0, 2, 4, 6, 8, 10, 12, 14, 1, 3, 5, 7, 9, 11, 13, 15));
        float ds[8], ms[8];
        _mm256_storeu_ps(ds, scale8(ldf16(p), scb, 0));
        _mm256_storeu_ps(ms, scale8(ldf16(p + 2), _mm_srli_si128(scb, 8), 0));
        const uint8_t *q = p + 16;
        for (int j = 0; j < 8; j += 2, q += 32) {
            __m256i v = _mm256_loadu_si256((const __m256i *)q);
            q4k_32(_mm256_and_si256(v, m4), _mm256_broadcast_ss(ds + j),
                   _mm256_broadcast_ss(ms + j), o + 32 * j);
            q4k_32(_mm256_and_si256(_mm256_srli_epi16(v, 4), m4), _mm256_broadcast_ss(ds + j + 1),
                   _mm256_broadcast_ss(ms + j + 1), o + 32 * j + 32);
        }
    }
}

/* 32 signed codes (a ymm of bytes) -> o[0..16) = s0 * code, o[16..32) = s1 * code. */
AVX static inline void q6k_32(__m256i q, const float *s, float *o) {
    __m128i lo = _mm256_castsi256_si128(q), hi = _mm256_extracti128_si256(q, 1);
    __m256 s0 = _mm256_broadcast_ss(s), s1 = _mm256_broadcast_ss(s + 1);
    i8x16_mul_store(lo, s0, o);
    i8x16_mul_store(hi, s1, o + 16);
}

/* q6_k (ggml block_q6_K, 210 bytes per 256): per half of 128, value 32c + l (c 0..3, l 0..31) is
 * (low or high nibble of ql[l] or ql[32 + l]) | (2 bits c of qh[l]) << 4, minus 32, times
 * d * sc[2c + l / 16]. */
AVX static void dec_q6_k(const vt_kdesc *d, uint64_t r, uint64_t k0, uint32_t n, float *o) {
    const uint8_t *p = ROW(d, r) + k0 / 256 * 210;
    for (uint32_t b = 0; b < NBLK(n, 256); b++, p += 210) {
        float dd = ldf16(p + 208), ds[16];
        __m128i sc = _mm_loadu_si128((const __m128i *)(p + 192));
        _mm256_storeu_ps(ds, scale8(dd, sc, 1));
        _mm256_storeu_ps(ds + 8, scale8(dd, _mm_srli_si128(sc, 8), 1));
        for (int h = 0; h < 2; h++, o += 128) {
            const uint8_t *ql = p + 64 * h, *qh = p + 128 + 32 * h;
            __m256i q1, q2, q3, q4;
            vt_kq6k_planes(ql, qh, &q1, &q2, &q3, &q4);
            const float *s = ds + 8 * h;
            q6k_32(q1, s, o);
            q6k_32(q2, s + 2, o + 32);
            q6k_32(q3, s + 4, o + 64);
            q6k_32(q4, s + 6, o + 96);
        }
    }
}

AVX static void dec_int8(const vt_kdesc *d, uint64_t r, uint64_t k0, uint32_t n, float *o) {
    const uint8_t *p = ROW(d, r) + k0 / 64 * 68;
    for (uint32_t b = 0; b < NBLK(n, 64); b++, p += 68, o += 64) {
        __m256 s = _mm256_set1_ps(ldf32(p));
        for (int h = 0; h < 4; h++)
            i8x16_mul_store(_mm_loadu_si128((const __m128i *)(p + 4 + 16 * h)), s, o + 16 * h);
    }
}

AVX static void dec_q4_0(const vt_kdesc *d, uint64_t r, uint64_t k0, uint32_t n, float *o) {
    const uint8_t *p = ROW(d, r) + k0 / 32 * 18;
    const __m128i m4 = _mm_set1_epi8(15), eight = _mm_set1_epi8(8);
    for (uint32_t b = 0; b < NBLK(n, 32); b++, p += 18, o += 32) {
        __m256 s = _mm256_set1_ps(ldf16(p));
        __m128i q = _mm_loadu_si128((const __m128i *)(p + 2));
        __m128i lo = _mm_sub_epi8(_mm_and_si128(q, m4), eight);
        __m128i hi = _mm_sub_epi8(_mm_and_si128(_mm_srli_epi16(q, 4), m4), eight);
        i8x16_mul_store(lo, s, o);
        i8x16_mul_store(hi, s, o + 16);
    }
}

AVX static void dec_q4_1(const vt_kdesc *d, uint64_t r, uint64_t k0, uint32_t n, float *o) {
    const uint8_t *p = ROW(d, r) + k0 / 32 * 20;
    const __m128i m4 = _mm_set1_epi8(15);
    for (uint32_t b = 0; b < NBLK(n, 32); b++, p += 20, o += 32) {
        __m256 s = _mm256_set1_ps(ldf16(p)), m = _mm256_set1_ps(ldf16(p + 2)), a, c;
        __m128i q = _mm_loadu_si128((const __m128i *)(p + 4));
        u8x16_to_f32(_mm_and_si128(q, m4), &a, &c);
        _mm256_storeu_ps(o, _mm256_add_ps(_mm256_mul_ps(s, a), m));
        _mm256_storeu_ps(o + 8, _mm256_add_ps(_mm256_mul_ps(s, c), m));
        u8x16_to_f32(_mm_and_si128(_mm_srli_epi16(q, 4), m4), &a, &c);
        _mm256_storeu_ps(o + 16, _mm256_add_ps(_mm256_mul_ps(s, a), m));
        _mm256_storeu_ps(o + 24, _mm256_add_ps(_mm256_mul_ps(s, c), m));
    }
}

/* 16-entry float LUT lookup of 8 int32 codes (0..15). */
AVX static inline __m256 lut16(__m256 lo8, __m256 hi8, __m256i code) {
    __m256 a = _mm256_permutevar8x32_ps(lo8, code), b = _mm256_permutevar8x32_ps(hi8, code);
    return _mm256_blendv_ps(a, b, _mm256_castsi256_ps(_mm256_slli_epi32(code, 28)));
}

/* 16 packed bytes -> 32 codes in element order; hi_first: element 2i in the high nibble. */
AVX static inline void unpack_nibbles(__m128i q, int hi_first, __m256i c[4]) {
    const __m128i m4 = _mm_set1_epi8(15);
    __m128i lo = _mm_and_si128(q, m4), hi = _mm_and_si128(_mm_srli_epi16(q, 4), m4);
    __m128i e0 = hi_first ? _mm_unpacklo_epi8(hi, lo) : _mm_unpacklo_epi8(lo, hi);
    __m128i e1 = hi_first ? _mm_unpackhi_epi8(hi, lo) : _mm_unpackhi_epi8(lo, hi);
    c[0] = _mm256_cvtepu8_epi32(e0);
    c[1] = _mm256_cvtepu8_epi32(_mm_srli_si128(e0, 8));
    c[2] = _mm256_cvtepu8_epi32(e1);
    c[3] = _mm256_cvtepu8_epi32(_mm_srli_si128(e1, 8));
}

AVX static inline void nf4_32(const uint8_t *qs, __m256 s, __m256 lo8, __m256 hi8, float *o) {
    __m256i c[4];
    unpack_nibbles(_mm_loadu_si128((const __m128i *)qs), 1, c);
    for (int k = 0; k < 4; k++)
        _mm256_storeu_ps(o + 8 * k, _mm256_mul_ps(s, lut16(lo8, hi8, c[k])));
}

AVX static void dec_nf4(const vt_kdesc *d, uint64_t r, uint64_t k0, uint32_t n, float *o) {
    const uint8_t *p = ROW(d, r) + k0 / 64 * 36;
    __m256 lo8 = _mm256_loadu_ps(vt_nf4_values), hi8 = _mm256_loadu_ps(vt_nf4_values + 8);
    for (uint32_t b = 0; b < NBLK(n, 64); b++, p += 36, o += 64) {
        __m256 s = _mm256_set1_ps(ldf32(p));
        nf4_32(p + 4, s, lo8, hi8, o);
        nf4_32(p + 20, s, lo8, hi8, o + 32);
    }
}

AVX static void dec_nf4_dq(const vt_kdesc *d, uint64_t r, uint64_t k0, uint32_t n, float *o) {
    __m256 lo8 = _mm256_loadu_ps(vt_nf4_values), hi8 = _mm256_loadu_ps(vt_nf4_values + 8);
    uint64_t g = r * d->bpr + k0 / 64;
    for (uint32_t b = 0; b < NBLK(n, 64); b++, g++, o += 64) {
        const uint8_t *sb = d->data + g / 256 * sizeof(vt_block_nf4_dq);
        uint32_t j = (uint32_t)(g % 256);
        __m256 s = _mm256_set1_ps(ldf32(sb) + ldf32(sb + 4) * (float)(int8_t)sb[8 + j]);
        nf4_32(sb + 264 + 32 * j, s, lo8, hi8, o);
        nf4_32(sb + 264 + 32 * j + 16, s, lo8, hi8, o + 32);
    }
}

static const float e2m1_pos[8] = {0.0f, 0.5f, 1.0f, 1.5f, 2.0f, 3.0f, 4.0f, 6.0f};

/* e2m1 codes -> values: magnitude from an 8-entry LUT, sign from bit 3. */
AVX static inline __m256 e2m1(__m256 mag8, __m256i code) {
    __m256 v = _mm256_permutevar8x32_ps(mag8, code);
    __m256i sign = _mm256_slli_epi32(_mm256_srli_epi32(code, 3), 31);
    return _mm256_xor_ps(v, _mm256_castsi256_ps(sign));
}

AVX static void dec_mxfp4(const vt_kdesc *d, uint64_t r, uint64_t k0, uint32_t n, float *o) {
    const uint8_t *p = ROW(d, r) + k0 / 32 * 17;
    __m256 mag = _mm256_loadu_ps(e2m1_pos);
    for (uint32_t b = 0; b < NBLK(n, 32); b++, p += 17, o += 32) {
        __m256 s = _mm256_set1_ps(vt_ke8m0_f32[p[0]]);
        __m256i c[4];
        unpack_nibbles(_mm_loadu_si128((const __m128i *)(p + 1)), 0, c);
        for (int k = 0; k < 4; k++) _mm256_storeu_ps(o + 8 * k, _mm256_mul_ps(s, e2m1(mag, c[k])));
    }
}

AVX static void dec_nvfp4(const vt_kdesc *d, uint64_t r, uint64_t k0, uint32_t n, float *o) {
    const uint8_t *p = ROW(d, r) + k0 / 16 * 9;
    __m256 mag = _mm256_loadu_ps(e2m1_pos);
    const __m128i m4 = _mm_set1_epi8(15);
    for (uint32_t b = 0; b < NBLK(n, 16); b++, p += 9, o += 16) {
        __m256 s = _mm256_set1_ps(d->tensor_scale * vt_ke4m3_f32[p[0]]);
        __m128i q = _mm_loadl_epi64((const __m128i *)(p + 1));
        __m128i e =
            _mm_unpacklo_epi8(_mm_and_si128(q, m4), _mm_and_si128(_mm_srli_epi16(q, 4), m4));
        __m256i c0 = _mm256_cvtepu8_epi32(e), c1 = _mm256_cvtepu8_epi32(_mm_srli_si128(e, 8));
        _mm256_storeu_ps(o, _mm256_mul_ps(s, e2m1(mag, c0)));
        _mm256_storeu_ps(o + 8, _mm256_mul_ps(s, e2m1(mag, c1)));
    }
}

AVX static void dec_awq(const vt_kdesc *d, uint64_t r, uint64_t k0, uint32_t n, float *o) {
    const uint8_t *p = ROW(d, r) + k0 / 128 * 68;
    for (uint32_t b = 0; b < NBLK(n, 128); b++, p += 68, o += 128) {
        __m256 s = _mm256_set1_ps(ldf16(p));
        __m256i z = _mm256_set1_epi32(p[2]);
        uint64_t c0 = k0 + (uint64_t)b * 128;
        int full = d->aux && c0 + 128 <= d->cols;
        for (int h = 0; h < 4; h++) {
            __m256i c[4];
            unpack_nibbles(_mm_loadu_si128((const __m128i *)(p + 4 + 16 * h)), 0, c);
            for (int k = 0; k < 4; k++) {
                __m256 v = _mm256_mul_ps(s, _mm256_cvtepi32_ps(_mm256_sub_epi32(c[k], z)));
                if (full) v = _mm256_div_ps(v, _mm256_loadu_ps(d->aux + c0 + 32 * h + 8 * k));
                _mm256_storeu_ps(o + 32 * h + 8 * k, v);
            }
        }
        if (d->aux && !full)
            for (uint32_t i = 0; i < 128 && c0 + i < d->cols; i++) o[i] /= d->aux[c0 + i];
    }
}

/* 2:4 expansion (decode_ref.c's dec_sparse): groups [g0, g0 + ng) of a row, g0 even, from their
 * kept values c[2g], c[2g + 1] (c indexed from group g0) and index nibbles (low nibble of byte
 * g / 2 for even g): o[4g + (nib & 3)] = c[2g], o[4g + (nib >> 2)] = c[2g + 1] (the second wins
 * where both name one position, as in the scalar loop), zeros elsewhere. Two groups per vector:
 * each lane picks its value by a permute and a mask. */
AVX void vt_ksparse_expand_avx2(const float *c, const uint8_t *idx, uint64_t g0, uint32_t ng,
                                float *o) {
    const uint8_t *ib = idx + g0 / 2;
    const __m256i sh = _mm256_setr_epi32(0, 0, 0, 0, 4, 4, 4, 4);
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 0, 1, 2, 3);
    const __m256i base = _mm256_setr_epi32(0, 0, 0, 0, 2, 2, 2, 2), three = _mm256_set1_epi32(3);
    uint32_t g = 0;
    for (; g + 2 <= ng; g += 2) {
        __m256i nib = _mm256_srlv_epi32(_mm256_set1_epi32(ib[g / 2]), sh);
        __m256i lo = _mm256_cmpeq_epi32(_mm256_and_si256(nib, three), lane);
        __m256i hi = _mm256_cmpeq_epi32(_mm256_and_si256(_mm256_srli_epi32(nib, 2), three), lane);
        __m256i sel = _mm256_sub_epi32(base, hi); /* hi lanes take the group's second value */
        __m256 v = _mm256_permutevar8x32_ps(_mm256_castps128_ps256(_mm_loadu_ps(c + 2 * g)), sel);
        _mm256_storeu_ps(o + 4 * g, _mm256_and_ps(v, _mm256_castsi256_ps(_mm256_or_si256(lo, hi))));
    }
    if (g < ng) {
        uint8_t nib = (uint8_t)(ib[g / 2] & 15);
        _mm_storeu_ps(o + 4 * g, _mm_setzero_ps());
        o[4 * g + (nib & 3)] = c[2 * g];
        o[4 * g + (nib >> 2)] = c[2 * g + 1];
    }
}

/* o[i] /= s[i] for i < n (awq+2:4's channel scales after the expansion; a true division, as in
 * the scalar loop). */
AVX void vt_kdiv_avx2(float *o, const float *s, uint32_t n) {
    uint32_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(o + i, _mm256_div_ps(_mm256_loadu_ps(o + i), _mm256_loadu_ps(s + i)));
    for (; i < n; i++) o[i] /= s[i];
}

const vt_kdecode_fn vt_kdecode_avx2_table[VT_FMT_COUNT] = {
    [VT_FMT_F16] = dec_f16,       [VT_FMT_BF16] = dec_bf16,   [VT_FMT_Q8_0] = dec_q8_0,
    [VT_FMT_Q4_0] = dec_q4_0,     [VT_FMT_Q4_1] = dec_q4_1,   [VT_FMT_INT8] = dec_int8,
    [VT_FMT_Q4_K] = dec_q4_k,     [VT_FMT_Q6_K] = dec_q6_k,   [VT_FMT_NF4] = dec_nf4,
    [VT_FMT_NF4_DQ] = dec_nf4_dq, [VT_FMT_NVFP4] = dec_nvfp4, [VT_FMT_MXFP4] = dec_mxfp4,
    [VT_FMT_AWQ_INT4] = dec_awq,
};

int vt_kcpu_avx2(void) {
    static int cached = -1; /* relaxed atomics: every thread computes the same answer */
    int c = __atomic_load_n(&cached, __ATOMIC_RELAXED);
    if (c < 0) {
        const char *e = getenv("VT_KERNELS_SCALAR");
        int forced = e && *e && strcmp(e, "0") != 0;
        int f = vt_cpu_features();
        c = !forced && (f & VT_CPU_AVX2) && (f & VT_CPU_FMA) && (f & VT_CPU_F16C);
        __atomic_store_n(&cached, c, __ATOMIC_RELAXED);
    }
    return c;
}

#else /* not x86-64: scalar everywhere */
const vt_kdecode_fn vt_kdecode_avx2_table[VT_FMT_COUNT];
void vt_ksparse_expand_avx2(const float *c, const uint8_t *idx, uint64_t g0, uint32_t ng,
                            float *o) {
    (void)c, (void)idx, (void)g0, (void)ng, (void)o; /* never called: vt_kcpu_avx2() is 0 */
}
void vt_kdiv_avx2(float *o, const float *s, uint32_t n) {
    for (uint32_t i = 0; i < n; i++) o[i] /= s[i];
}
int vt_kcpu_avx2(void) {
    return 0;
}
#endif
