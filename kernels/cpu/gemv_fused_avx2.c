/* kernels/cpu/gemv_fused_avx2.c — fully fused AVX2/FMA GEMV rows for the 4-bit formats the
 * decode path is slowest on (q4_0, nf4, mxfp4, nvfp4): per block the codes become unscaled
 * values in registers (integer convert or LUT), are multiplied with x, and the block scale is
 * applied once to the block's partial sum, so nothing goes through memory. Whole blocks only:
 * the caller handles a ragged tail with the decoders. */
#include <stdlib.h>
#include <string.h>

#include "kern_internal.h"

#if defined(__x86_64__)
#include <immintrin.h>
#include <string.h>

#define AVX __attribute__((target("avx2,fma,f16c")))

static const float e2m1_vals[8] = {0.0f, 0.5f, 1.0f, 1.5f, 2.0f, 3.0f, 4.0f, 6.0f};

AVX static inline __m256 lut16(__m256 lo8, __m256 hi8, __m256i c) {
    __m256 a = _mm256_permutevar8x32_ps(lo8, c), b = _mm256_permutevar8x32_ps(hi8, c);
    return _mm256_blendv_ps(a, b, _mm256_castsi256_ps(_mm256_slli_epi32(c, 28)));
}
AVX static inline __m256 e2m1(__m256 mag, __m256i c) {
    __m256 v = _mm256_permutevar8x32_ps(mag, c);
    return _mm256_xor_ps(v, _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_srli_epi32(c, 3), 31)));
}
/* 16 bytes -> 32 codes (4 x 8 int32) in element order */
AVX static inline void codes32(__m128i q, int hi_first, __m256i c[4]) {
    const __m128i m4 = _mm_set1_epi8(15);
    __m128i lo = _mm_and_si128(q, m4), hi = _mm_and_si128(_mm_srli_epi16(q, 4), m4);
    __m128i e0 = hi_first ? _mm_unpacklo_epi8(hi, lo) : _mm_unpacklo_epi8(lo, hi);
    __m128i e1 = hi_first ? _mm_unpackhi_epi8(hi, lo) : _mm_unpackhi_epi8(lo, hi);
    c[0] = _mm256_cvtepu8_epi32(e0);
    c[1] = _mm256_cvtepu8_epi32(_mm_srli_si128(e0, 8));
    c[2] = _mm256_cvtepu8_epi32(e1);
    c[3] = _mm256_cvtepu8_epi32(_mm_srli_si128(e1, 8));
}

AVX static inline float hsum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* acc[b] += scale * sum_i v[i] x[b][k + i] for NV vectors v of 8 values. */
#define FUSE(NV)                                                                                   \
    for (int b = 0; b < batch; b++) {                                                              \
        const float *xb = x + (uint64_t)b * cols + k;                                              \
        __m256 t = _mm256_mul_ps(v[0], _mm256_loadu_ps(xb));                                       \
        for (int i = 1; i < (NV); i++) t = _mm256_fmadd_ps(v[i], _mm256_loadu_ps(xb + 8 * i), t);  \
        acc[b] = _mm256_fmadd_ps(s, t, acc[b]);                                                    \
    }

AVX static uint64_t row_avx2(const vt_kdesc *d, uint64_t r, const float *x, int batch, float *out) {
    const uint64_t cols = d->cols;
    const uint8_t *p = d->data + r * d->row_bytes;
    __m256 acc[VT_GEMV_MAX_BATCH];
    for (int b = 0; b < batch; b++) acc[b] = _mm256_setzero_ps();
    uint64_t k = 0;
    switch (d->fmt) {
    case VT_FMT_Q4_0: {
        const __m128i m4 = _mm_set1_epi8(15), eight = _mm_set1_epi8(8);
        for (; k + 32 <= cols; k += 32, p += 18) {
            uint16_t h;
            memcpy(&h, p, 2);
            __m256 s = _mm256_set1_ps(vt_f16_to_f32(h)), v[4];
            __m128i q = _mm_loadu_si128((const __m128i *)(p + 2));
            __m128i lo = _mm_sub_epi8(_mm_and_si128(q, m4), eight);
            __m128i hi = _mm_sub_epi8(_mm_and_si128(_mm_srli_epi16(q, 4), m4), eight);
            v[0] = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(lo));
            v[1] = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(lo, 8)));
            v[2] = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(hi));
            v[3] = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(hi, 8)));
            FUSE(4)
        }
        break;
    }
    case VT_FMT_NF4: {
        __m256 lo8 = _mm256_loadu_ps(vt_nf4_values), hi8 = _mm256_loadu_ps(vt_nf4_values + 8);
        for (; k + 64 <= cols; k += 64, p += 36) {
            float a;
            memcpy(&a, p, 4);
            __m256 s = _mm256_set1_ps(a), v[8];
            __m256i c[4];
            codes32(_mm_loadu_si128((const __m128i *)(p + 4)), 1, c);
            for (int i = 0; i < 4; i++) v[i] = lut16(lo8, hi8, c[i]);
            codes32(_mm_loadu_si128((const __m128i *)(p + 20)), 1, c);
            for (int i = 0; i < 4; i++) v[4 + i] = lut16(lo8, hi8, c[i]);
            FUSE(8)
        }
        break;
    }
    case VT_FMT_MXFP4: {
        __m256 mag = _mm256_loadu_ps(e2m1_vals);
        for (; k + 32 <= cols; k += 32, p += 17) {
            __m256 s = _mm256_set1_ps(vt_ke8m0_f32[p[0]]), v[4];
            __m256i c[4];
            codes32(_mm_loadu_si128((const __m128i *)(p + 1)), 0, c);
            for (int i = 0; i < 4; i++) v[i] = e2m1(mag, c[i]);
            FUSE(4)
        }
        break;
    }
    case VT_FMT_NVFP4: {
        __m256 mag = _mm256_loadu_ps(e2m1_vals);
        const __m128i m4 = _mm_set1_epi8(15);
        for (; k + 16 <= cols; k += 16, p += 9) {
            __m256 s = _mm256_set1_ps(d->tensor_scale * vt_ke4m3_f32[p[0]]), v[2];
            __m128i q = _mm_loadl_epi64((const __m128i *)(p + 1));
            __m128i e =
                _mm_unpacklo_epi8(_mm_and_si128(q, m4), _mm_and_si128(_mm_srli_epi16(q, 4), m4));
            v[0] = e2m1(mag, _mm256_cvtepu8_epi32(e));
            v[1] = e2m1(mag, _mm256_cvtepu8_epi32(_mm_srli_si128(e, 8)));
            FUSE(2)
        }
        break;
    }
    default:
        return 0;
    }
    for (int b = 0; b < batch; b++) out[b] = hsum(acc[b]);
    return k;
}

uint64_t vt_kfused_row(const vt_kdesc *d, uint64_t r, const float *x, int batch, float *out) {
    if (d->sparse || !vt_kcpu_avx2()) return 0;
    return row_avx2(d, r, x, batch, out);
}
#else
uint64_t vt_kfused_row(const vt_kdesc *d, uint64_t r, const float *x, int batch, float *out) {
    return 0;
}
#endif

int vt_kcpu_avx512(void) {
    static int cached = -1; /* a benign race: every thread computes the same answer */
    if (cached < 0) {
        const char *e = getenv("VT_KERNELS_AVX512");
        int off = e && strcmp(e, "0") == 0;
        cached = !off && vt_kcpu_avx2() && (vt_cpu_features() & VT_CPU_AVX512F) != 0;
    }
    return cached;
}

uint64_t vt_kfused_rows(const vt_kdesc *d, uint64_t r0, int nr, const float *x, int batch,
                        float *out) {
    if (d->sparse) return 0;
    if (vt_kcpu_avx512()) return vt_kfused_rows512(d, r0, nr, x, batch, out);
    uint64_t kf = 0;
    for (int i = 0; i < nr; i++) kf = vt_kfused_row(d, r0 + i, x, batch, out + (uint64_t)i * batch);
    return kf;
}
