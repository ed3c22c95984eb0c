/* quant/plain.c — the unquantized formats f32, f16 and bf16 as row ops. The references go
 * through the core conversions (round to nearest even, subnormals kept); the fast paths use
 * F16C (f16) and AVX2 integer rounding (bf16), which produce the same bits for every finite
 * input (the dispatcher never passes NaN/Inf to a quantizer). */
#include <string.h>

#include "qrow_common.h"

static void f32_q(const float *x, void *dst, uint64_t cols, const vt_quant_params *p) {
    memcpy(dst, x, cols * sizeof(float));
}
static void f32_dq(const void *src, float *y, uint64_t cols, const vt_quant_params *p) {
    memcpy(y, src, cols * sizeof(float));
}

/* Element loops with memcpy: a 2:4 sparse row can leave the 16-bit values at odd addresses. */
static void f16_q_ref(const float *x, void *dst, uint64_t cols, const vt_quant_params *p) {
    uint8_t *d = dst;
    for (uint64_t i = 0; i < cols; i++) {
        uint16_t h = vt_f32_to_f16(x[i]);
        memcpy(d + 2 * i, &h, 2);
    }
}
static void f16_dq_ref(const void *src, float *y, uint64_t cols, const vt_quant_params *p) {
    const uint8_t *s = src;
    for (uint64_t i = 0; i < cols; i++) {
        uint16_t h;
        memcpy(&h, s + 2 * i, 2);
        y[i] = vt_f16_to_f32(h);
    }
}
static void bf16_q_ref(const float *x, void *dst, uint64_t cols, const vt_quant_params *p) {
    uint8_t *d = dst;
    for (uint64_t i = 0; i < cols; i++) {
        uint16_t h = vt_f32_to_bf16(x[i]);
        memcpy(d + 2 * i, &h, 2);
    }
}
static void bf16_dq_ref(const void *src, float *y, uint64_t cols, const vt_quant_params *p) {
    const uint8_t *s = src;
    for (uint64_t i = 0; i < cols; i++) {
        uint16_t h;
        memcpy(&h, s + 2 * i, 2);
        y[i] = vt_bf16_to_f32(h);
    }
}

#ifdef VT_QA_X86
static int have_f16c(void) {
    int f = vt_cpu_features(); /* cached: cpuid per row cost 39% of an import in a VM */
    return (f & VT_CPU_AVX2) && (f & VT_CPU_F16C);
}

__attribute__((target("avx2,f16c"))) static void
f16_q_fast(const float *x, void *dst, uint64_t cols, const vt_quant_params *p) {
    uint8_t *h = dst;
    uint64_t i = 0;
    for (; i + 8 <= cols; i += 8) {
        __m128i v = _mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT);
        _mm_storeu_si128((__m128i *)(h + 2 * i), v);
    }
    f16_q_ref(x + i, h + 2 * i, cols - i, p);
}

__attribute__((target("avx2,f16c"))) static void
f16_dq_fast(const void *src, float *y, uint64_t cols, const vt_quant_params *p) {
    const uint8_t *h = src;
    uint64_t i = 0;
    const __m128i em = _mm_set1_epi16(0x7e00), inf = _mm_set1_epi16(0x7c00);
    for (; i + 8 <= cols; i += 8) {
        __m128i v = _mm_loadu_si128((const __m128i *)(h + 2 * i));
        /* F16C quiets signalling NaNs; the reference keeps their bits: let it do Inf/sNaN */
        if (_mm_movemask_epi8(_mm_cmpeq_epi16(_mm_and_si128(v, em), inf)))
            f16_dq_ref(h + 2 * i, y + i, 8, p);
        else
            _mm256_storeu_ps(y + i, _mm256_cvtph_ps(v));
    }
    f16_dq_ref(h + 2 * i, y + i, cols - i, p);
}

/* 32 values per step with AVX-512 (one Inf/NaN test per 32); steps holding Inf/NaN and the tail
 * go through the AVX2 path above, so the bits are the same. */
__attribute__((target("avx512f,avx2,f16c"))) static void
f16_dq_avx512(const void *src, float *y, uint64_t cols, const vt_quant_params *p) {
    const uint8_t *h = src;
    uint64_t i = 0;
    const __m256i em = _mm256_set1_epi16(0x7e00), inf = _mm256_set1_epi16(0x7c00);
    for (; i + 32 <= cols; i += 32) {
        __m256i a = _mm256_loadu_si256((const __m256i *)(h + 2 * i));
        __m256i b = _mm256_loadu_si256((const __m256i *)(h + 2 * i + 32));
        __m256i bad = _mm256_or_si256(_mm256_cmpeq_epi16(_mm256_and_si256(a, em), inf),
                                      _mm256_cmpeq_epi16(_mm256_and_si256(b, em), inf));
        if (!_mm256_testz_si256(bad, bad)) {
            f16_dq_fast(h + 2 * i, y + i, 32, p);
            continue;
        }
        _mm512_storeu_ps(y + i, _mm512_cvtph_ps(a));
        _mm512_storeu_ps(y + i + 16, _mm512_cvtph_ps(b));
    }
    f16_dq_fast(h + 2 * i, y + i, cols - i, p);
}

/* bf16 = upper half of (bits + 0x7fff + lsb of the upper half): round to nearest even. */
__attribute__((target("avx2"))) static void bf16_q_fast(const float *x, void *dst, uint64_t cols,
                                                        const vt_quant_params *p) {
    uint8_t *h = dst;
    const __m256i bias = _mm256_set1_epi32(0x7fff), one = _mm256_set1_epi32(1);
    uint64_t i = 0;
    for (; i + 16 <= cols; i += 16) {
        __m256i a = _mm256_loadu_si256((const __m256i *)(x + i));
        __m256i b = _mm256_loadu_si256((const __m256i *)(x + i + 8));
        a = _mm256_add_epi32(
            a, _mm256_add_epi32(bias, _mm256_and_si256(_mm256_srli_epi32(a, 16), one)));
        b = _mm256_add_epi32(
            b, _mm256_add_epi32(bias, _mm256_and_si256(_mm256_srli_epi32(b, 16), one)));
        __m256i r = _mm256_packus_epi32(_mm256_srli_epi32(a, 16), _mm256_srli_epi32(b, 16));
        _mm256_storeu_si256((__m256i *)(h + 2 * i), _mm256_permute4x64_epi64(r, 0xd8));
    }
    bf16_q_ref(x + i, h + 2 * i, cols - i, p);
}

__attribute__((target("avx2"))) static void bf16_dq_fast(const void *src, float *y, uint64_t cols,
                                                         const vt_quant_params *p) {
    const uint8_t *h = src;
    uint64_t i = 0;
    for (; i + 8 <= cols; i += 8) {
        __m256i v = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(h + 2 * i)));
        _mm256_storeu_si256((__m256i *)(y + i), _mm256_slli_epi32(v, 16));
    }
    bf16_dq_ref(h + 2 * i, y + i, cols - i, p);
}

static void f16_q(const float *x, void *dst, uint64_t cols, const vt_quant_params *p) {
    (have_f16c() ? f16_q_fast : f16_q_ref)(x, dst, cols, p);
}
static void f16_dq(const void *src, float *y, uint64_t cols, const vt_quant_params *p) {
    if (!have_f16c())
        f16_dq_ref(src, y, cols, p);
    else if (vt_cpu_features() & VT_CPU_AVX512F)
        f16_dq_avx512(src, y, cols, p);
    else
        f16_dq_fast(src, y, cols, p);
}
static void bf16_q(const float *x, void *dst, uint64_t cols, const vt_quant_params *p) {
    (vt_qa_have_avx2() ? bf16_q_fast : bf16_q_ref)(x, dst, cols, p);
}
static void bf16_dq(const void *src, float *y, uint64_t cols, const vt_quant_params *p) {
    (vt_qa_have_avx2() ? bf16_dq_fast : bf16_dq_ref)(src, y, cols, p);
}
#else
#define f16_q   f16_q_ref
#define f16_dq  f16_dq_ref
#define bf16_q  bf16_q_ref
#define bf16_dq bf16_dq_ref
#endif

const vt_qrow_ops vt_qops_f32 = {f32_q, f32_dq, f32_q, f32_dq};
const vt_qrow_ops vt_qops_f16 = {f16_q_ref, f16_dq_ref, f16_q, f16_dq};
const vt_qrow_ops vt_qops_bf16 = {bf16_q_ref, bf16_dq_ref, bf16_q, bf16_dq};
