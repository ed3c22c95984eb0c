/* quant/q4.c — GGUF Q4_0 and Q4_1 (block 32, byte j holds element j in the low nibble and
 * element j+16 in the high nibble). The references follow ggml's quantize_row_q4_0_ref,
 * quantize_row_q4_1_ref and dequantize_row_q4_0/_1 operation for operation (bit-exact); the
 * AVX2 paths keep the same operations (no FMA) and are bit-identical to them.
 *
 * As for q8_0 (see q8_0.c), when 1/d overflows to Inf ggml's conversion of Inf/NaN to int8 is
 * undefined (0 on x86); we write code 0 for such elements, and the f16 d stored is 0. */
#include <float.h>
#include <math.h>

#include "qrow_common.h"

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("fp-contract=off") /* x*d + m must round twice, as in ggml */
#endif

static inline uint8_t q4_code(float v, float bias) {
    if (!isfinite(v)) return 0;
    const int8_t q = (int8_t)(v + bias);
    return q < 15 ? (uint8_t)q : 15;
}

static void q4_0_qblock_ref(const float *x, void *vy) {
    float amax = 0.0f, max = 0.0f;
    for (int j = 0; j < VT_QK4_0; j++) {
        if (amax < fabsf(x[j])) {
            amax = fabsf(x[j]);
            max = x[j];
        }
    }
    const float d = max / -8;
    const float id = d ? 1.0f / d : 0.0f;
    uint16_t dh = vt_f32_to_f16(d);
    memcpy(VT_QA_F(vt_block_q4_0, vy, d), &dh, 2);
    for (int j = 0; j < VT_QK4_0 / 2; j++) {
        uint8_t lo = q4_code(x[j] * id, 8.5f), hi = q4_code(x[j + VT_QK4_0 / 2] * id, 8.5f);
        VT_QA_F(vt_block_q4_0, vy, qs)[j] = (uint8_t)(lo | (hi << 4));
    }
}

static void q4_0_dqblock_ref(const void *vx, float *y) {
    uint16_t dh;
    memcpy(&dh, VT_QA_CF(vt_block_q4_0, vx, d), 2);
    const float d = vt_f16_to_f32(dh);
    for (int j = 0; j < VT_QK4_0 / 2; j++) {
        const int x0 = (VT_QA_CF(vt_block_q4_0, vx, qs)[j] & 0x0f) - 8,
                  x1 = (VT_QA_CF(vt_block_q4_0, vx, qs)[j] >> 4) - 8;
        y[j] = x0 * d;
        y[j + VT_QK4_0 / 2] = x1 * d;
    }
}

static void q4_1_qblock_ref(const float *x, void *vy) {
    float min = FLT_MAX, max = -FLT_MAX;
    for (int j = 0; j < VT_QK4_1; j++) {
        if (x[j] < min) min = x[j];
        if (x[j] > max) max = x[j];
    }
    const float d = (max - min) / 15;
    const float id = d ? 1.0f / d : 0.0f;
    uint16_t dh = vt_f32_to_f16(d), mh = vt_f32_to_f16(min);
    memcpy(VT_QA_F(vt_block_q4_1, vy, d), &dh, 2);
    memcpy(VT_QA_F(vt_block_q4_1, vy, m), &mh, 2);
    for (int j = 0; j < VT_QK4_1 / 2; j++) {
        uint8_t lo = q4_code((x[j] - min) * id, 0.5f);
        uint8_t hi = q4_code((x[j + VT_QK4_1 / 2] - min) * id, 0.5f);
        VT_QA_F(vt_block_q4_1, vy, qs)[j] = (uint8_t)(lo | (hi << 4));
    }
}

static void q4_1_dqblock_ref(const void *vx, float *y) {
    uint16_t dh, mh;
    memcpy(&dh, VT_QA_CF(vt_block_q4_1, vx, d), 2);
    memcpy(&mh, VT_QA_CF(vt_block_q4_1, vx, m), 2);
    const float d = vt_f16_to_f32(dh), m = vt_f16_to_f32(mh);
    for (int j = 0; j < VT_QK4_1 / 2; j++) {
        const int x0 = VT_QA_CF(vt_block_q4_1, vx, qs)[j] & 0x0f,
                  x1 = VT_QA_CF(vt_block_q4_1, vx, qs)[j] >> 4;
        y[j] = x0 * d + m;
        y[j + VT_QK4_1 / 2] = x1 * d + m;
    }
}

static void q4_0_quantize_ref(const float *x, void *dst, uint64_t cols, const vt_quant_params *p) {
    vt_qa_quantize_row(x, dst, cols, 0, VT_QK4_0, sizeof(vt_block_q4_0), q4_0_qblock_ref);
}
static void q4_0_dequantize_ref(const void *src, float *y, uint64_t cols,
                                const vt_quant_params *p) {
    vt_qa_dequantize_row(src, y, cols, 0, VT_QK4_0, sizeof(vt_block_q4_0), q4_0_dqblock_ref);
}
static void q4_1_quantize_ref(const float *x, void *dst, uint64_t cols, const vt_quant_params *p) {
    vt_qa_quantize_row(x, dst, cols, 0, VT_QK4_1, sizeof(vt_block_q4_1), q4_1_qblock_ref);
}
static void q4_1_dequantize_ref(const void *src, float *y, uint64_t cols,
                                const vt_quant_params *p) {
    vt_qa_dequantize_row(src, y, cols, 0, VT_QK4_1, sizeof(vt_block_q4_1), q4_1_dqblock_ref);
}

#ifdef VT_QA_X86
/* MIN(15, (int8_t)v) for v in [0, 17) (the codes' range): truncation and a clamp; NaN (only
 * when max - min overflows in q4_1) becomes 0 as in q4_code. */
__attribute__((target("avx2"))) static inline __m256i q4_trunc_avx2(__m256 v) {
    __m256i t = _mm256_max_epi32(_mm256_cvttps_epi32(v), _mm256_setzero_si256());
    return _mm256_min_epi32(t, _mm256_set1_epi32(15));
}

/* Codes of elements 0..31 in 4 vectors -> 16 bytes, low nibble j, high nibble j+16. */
__attribute__((target("avx2"))) static inline void q4_pack_avx2(__m256i c0, __m256i c1, __m256i c2,
                                                                __m256i c3, uint8_t *qs) {
    __m256i lo = _mm256_or_si256(c0, _mm256_slli_epi32(c2, 4)); /* bytes 0..7 */
    __m256i hi = _mm256_or_si256(c1, _mm256_slli_epi32(c3, 4)); /* bytes 8..15 */
    __m256i w = _mm256_permute4x64_epi64(_mm256_packus_epi32(lo, hi), 0xd8);
    __m128i b = _mm_packus_epi16(_mm256_castsi256_si128(w), _mm256_extracti128_si256(w, 1));
    _mm_storeu_si128((__m128i *)qs, b);
}

/* Index of the first of 32 values whose |x| equals amax. */
__attribute__((target("avx2"))) static inline int first_eq_avx2(__m256 a0, __m256 a1, __m256 a2,
                                                                __m256 a3, float v) {
    const __m256 m = _mm256_set1_ps(v);
    uint32_t bits = (uint32_t)_mm256_movemask_ps(_mm256_cmp_ps(a0, m, _CMP_EQ_OQ)) |
                    (uint32_t)_mm256_movemask_ps(_mm256_cmp_ps(a1, m, _CMP_EQ_OQ)) << 8 |
                    (uint32_t)_mm256_movemask_ps(_mm256_cmp_ps(a2, m, _CMP_EQ_OQ)) << 16 |
                    (uint32_t)_mm256_movemask_ps(_mm256_cmp_ps(a3, m, _CMP_EQ_OQ)) << 24;
    return __builtin_ctz(bits);
}

__attribute__((target("avx2"))) static inline float hmax_avx2(__m256 a) {
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    return _mm_cvtss_f32(_mm_max_ss(m, _mm_shuffle_ps(m, m, 1)));
}
__attribute__((target("avx2"))) static inline float hmin_avx2(__m256 a) {
    __m128 m = _mm_min_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    m = _mm_min_ps(m, _mm_movehl_ps(m, m));
    return _mm_cvtss_f32(_mm_min_ss(m, _mm_shuffle_ps(m, m, 1)));
}

__attribute__((target("avx2"))) static void
q4_0_quantize_avx2(const float *x0, void *dst, uint64_t cols, const vt_quant_params *p) {
    uint8_t *y = dst;
    const __m256 sign = _mm256_set1_ps(-0.0f);
    uint64_t nfull = cols / VT_QK4_0;
    for (uint64_t b = 0; b < nfull; b++) {
        const float *x = x0 + b * VT_QK4_0;
        __m256 v0 = _mm256_loadu_ps(x), v1 = _mm256_loadu_ps(x + 8);
        __m256 v2 = _mm256_loadu_ps(x + 16), v3 = _mm256_loadu_ps(x + 24);
        __m256 a0 = _mm256_andnot_ps(sign, v0), a1 = _mm256_andnot_ps(sign, v1);
        __m256 a2 = _mm256_andnot_ps(sign, v2), a3 = _mm256_andnot_ps(sign, v3);
        const float amax = hmax_avx2(_mm256_max_ps(_mm256_max_ps(a0, a1), _mm256_max_ps(a2, a3)));
        /* ggml keeps max = +0.0f when every |x| is 0 (so d = -0.0f) */
        const float max = amax == 0.0f ? 0.0f : x[first_eq_avx2(a0, a1, a2, a3, amax)];
        const float d = max / -8;
        const float id = d ? 1.0f / d : 0.0f;
        uint16_t dh = vt_f32_to_f16(d);
        memcpy(VT_QA_F(vt_block_q4_0, y + b * sizeof(vt_block_q4_0), d), &dh, 2);
        if (isinf(id)) {
            memset(VT_QA_F(vt_block_q4_0, y + b * sizeof(vt_block_q4_0), qs), 0,
                   sizeof(((vt_block_q4_0 *)0)->qs));
            continue;
        }
        const __m256 vid = _mm256_set1_ps(id), bias = _mm256_set1_ps(8.5f);
        q4_pack_avx2(q4_trunc_avx2(_mm256_add_ps(_mm256_mul_ps(v0, vid), bias)),
                     q4_trunc_avx2(_mm256_add_ps(_mm256_mul_ps(v1, vid), bias)),
                     q4_trunc_avx2(_mm256_add_ps(_mm256_mul_ps(v2, vid), bias)),
                     q4_trunc_avx2(_mm256_add_ps(_mm256_mul_ps(v3, vid), bias)),
                     VT_QA_F(vt_block_q4_0, y + b * sizeof(vt_block_q4_0), qs));
    }
    vt_qa_quantize_row(x0, dst, cols, nfull, VT_QK4_0, sizeof(vt_block_q4_0), q4_0_qblock_ref);
}

__attribute__((target("avx2"))) static void
q4_1_quantize_avx2(const float *x0, void *dst, uint64_t cols, const vt_quant_params *p) {
    uint8_t *y = dst;
    uint64_t nfull = cols / VT_QK4_1;
    for (uint64_t b = 0; b < nfull; b++) {
        const float *x = x0 + b * VT_QK4_1;
        __m256 v0 = _mm256_loadu_ps(x), v1 = _mm256_loadu_ps(x + 8);
        __m256 v2 = _mm256_loadu_ps(x + 16), v3 = _mm256_loadu_ps(x + 24);
        float min = hmin_avx2(_mm256_min_ps(_mm256_min_ps(v0, v1), _mm256_min_ps(v2, v3)));
        float max = hmax_avx2(_mm256_max_ps(_mm256_max_ps(v0, v1), _mm256_max_ps(v2, v3)));
        /* ggml keeps the first of equal values: only the sign of a zero can differ */
        if (min == 0.0f || max == 0.0f) {
            const float z0 = x[first_eq_avx2(v0, v1, v2, v3, 0.0f)];
            if (min == 0.0f) min = z0;
            if (max == 0.0f) max = z0;
        }
        const float d = (max - min) / 15;
        const float id = d ? 1.0f / d : 0.0f;
        uint16_t dh = vt_f32_to_f16(d), mh = vt_f32_to_f16(min);
        memcpy(VT_QA_F(vt_block_q4_1, y + b * sizeof(vt_block_q4_1), d), &dh, 2);
        memcpy(VT_QA_F(vt_block_q4_1, y + b * sizeof(vt_block_q4_1), m), &mh, 2);
        if (isinf(id)) {
            memset(VT_QA_F(vt_block_q4_1, y + b * sizeof(vt_block_q4_1), qs), 0,
                   sizeof(((vt_block_q4_1 *)0)->qs));
            continue;
        }
        const __m256 vid = _mm256_set1_ps(id), vmin = _mm256_set1_ps(min);
        const __m256 bias = _mm256_set1_ps(0.5f);
#define Q41(v) q4_trunc_avx2(_mm256_add_ps(_mm256_mul_ps(_mm256_sub_ps(v, vmin), vid), bias))
        q4_pack_avx2(Q41(v0), Q41(v1), Q41(v2), Q41(v3),
                     VT_QA_F(vt_block_q4_1, y + b * sizeof(vt_block_q4_1), qs));
#undef Q41
    }
    vt_qa_quantize_row(x0, dst, cols, nfull, VT_QK4_1, sizeof(vt_block_q4_1), q4_1_qblock_ref);
}

/* The 32 nibbles of a block as int32 codes, in element order. */
__attribute__((target("avx2"))) static inline void q4_unpack_avx2(const uint8_t *qs, __m256i *c) {
    __m128i q = _mm_loadu_si128((const __m128i *)qs);
    const __m128i mask = _mm_set1_epi8(0x0f);
    __m128i lo = _mm_and_si128(q, mask), hi = _mm_and_si128(_mm_srli_epi16(q, 4), mask);
    c[0] = _mm256_cvtepu8_epi32(lo);
    c[1] = _mm256_cvtepu8_epi32(_mm_srli_si128(lo, 8));
    c[2] = _mm256_cvtepu8_epi32(hi);
    c[3] = _mm256_cvtepu8_epi32(_mm_srli_si128(hi, 8));
}

__attribute__((target("avx2"))) static void
q4_0_dequantize_avx2(const void *src, float *y, uint64_t cols, const vt_quant_params *p) {
    const uint8_t *x = src;
    const __m256i eight = _mm256_set1_epi32(8);
    uint64_t nfull = cols / VT_QK4_0;
    for (uint64_t b = 0; b < nfull; b++) {
        uint16_t dh;
        memcpy(&dh, VT_QA_CF(vt_block_q4_0, x + b * sizeof(vt_block_q4_0), d), 2);
        const __m256 d = _mm256_set1_ps(vt_f16_to_f32(dh));
        __m256i c[4];
        q4_unpack_avx2(VT_QA_CF(vt_block_q4_0, x + b * sizeof(vt_block_q4_0), qs), c);
        float *o = y + b * VT_QK4_0;
        for (int k = 0; k < 4; k++)
            _mm256_storeu_ps(o + 8 * k,
                             _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(c[k], eight)), d));
    }
    vt_qa_dequantize_row(src, y, cols, nfull, VT_QK4_0, sizeof(vt_block_q4_0), q4_0_dqblock_ref);
}

__attribute__((target("avx2"))) static void
q4_1_dequantize_avx2(const void *src, float *y, uint64_t cols, const vt_quant_params *p) {
    const uint8_t *x = src;
    uint64_t nfull = cols / VT_QK4_1;
    for (uint64_t b = 0; b < nfull; b++) {
        uint16_t dh, mh;
        memcpy(&dh, VT_QA_CF(vt_block_q4_1, x + b * sizeof(vt_block_q4_1), d), 2);
        memcpy(&mh, VT_QA_CF(vt_block_q4_1, x + b * sizeof(vt_block_q4_1), m), 2);
        const __m256 d = _mm256_set1_ps(vt_f16_to_f32(dh)), m = _mm256_set1_ps(vt_f16_to_f32(mh));
        __m256i c[4];
        q4_unpack_avx2(VT_QA_CF(vt_block_q4_1, x + b * sizeof(vt_block_q4_1), qs), c);
        float *o = y + b * VT_QK4_1;
        for (int k = 0; k < 4; k++)
            _mm256_storeu_ps(o + 8 * k,
                             _mm256_add_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(c[k]), d), m));
    }
    vt_qa_dequantize_row(src, y, cols, nfull, VT_QK4_1, sizeof(vt_block_q4_1), q4_1_dqblock_ref);
}
#endif

#ifdef VT_QA_X86
#define VT_PICK(fast, ref) (vt_qa_have_avx2() ? (fast) : (ref))
#else
#define VT_PICK(fast, ref) (ref)
#endif

static void q4_0_quantize(const float *x, void *dst, uint64_t cols, const vt_quant_params *p) {
    VT_PICK(q4_0_quantize_avx2, q4_0_quantize_ref)(x, dst, cols, p);
}
static void q4_0_dequantize(const void *src, float *y, uint64_t cols, const vt_quant_params *p) {
    VT_PICK(q4_0_dequantize_avx2, q4_0_dequantize_ref)(src, y, cols, p);
}
static void q4_1_quantize(const float *x, void *dst, uint64_t cols, const vt_quant_params *p) {
    VT_PICK(q4_1_quantize_avx2, q4_1_quantize_ref)(x, dst, cols, p);
}
static void q4_1_dequantize(const void *src, float *y, uint64_t cols, const vt_quant_params *p) {
    VT_PICK(q4_1_dequantize_avx2, q4_1_dequantize_ref)(src, y, cols, p);
}

const vt_qrow_ops vt_qops_q4_0 = {q4_0_quantize_ref, q4_0_dequantize_ref, q4_0_quantize,
                                  q4_0_dequantize};
const vt_qrow_ops vt_qops_q4_1 = {q4_1_quantize_ref, q4_1_dequantize_ref, q4_1_quantize,
                                  q4_1_dequantize};
