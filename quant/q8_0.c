/* quant/q8_0.c — GGUF Q8_0 (block 32, f16 d = amax/127, q = round(x * (1/d))): the reference
 * follows ggml's quantize_row_q8_0_ref / dequantize_row_q8_0 operation for operation, so the
 * bytes are identical; the AVX2 path keeps the same operations (no FMA) and is bit-identical.
 *
 * One deviation where ggml's formula is undefined: when d is so small (amax < ~3.7e-37) that
 * 1/d overflows to Inf, x * id is Inf/NaN and ggml converts that to int8 (undefined behaviour;
 * 0 on x86). We write 0 codes for such elements explicitly. The stored f16 d is 0 there, so
 * the block dequantizes to zeros either way. */
#include <math.h>

#include "qrow_common.h"

static void q8_0_qblock_ref(const float *x, void *vy) {
    int8_t *qs = (int8_t *)VT_QA_F(vt_block_q8_0, vy, qs);
    float amax = 0.0f;
    for (int j = 0; j < VT_QK8_0; j++) {
        float a = fabsf(x[j]);
        amax = amax > a ? amax : a;
    }
    const float d = amax / 127;
    const float id = d ? 1.0f / d : 0.0f;
    uint16_t dh = vt_f32_to_f16(d);
    memcpy(VT_QA_F(vt_block_q8_0, vy, d), &dh, 2);
    for (int j = 0; j < VT_QK8_0; j++) {
        const float v = x[j] * id;
        qs[j] = isfinite(v) ? (int8_t)roundf(v) : 0;
    }
}

static void q8_0_dqblock_ref(const void *vx, float *y) {
    const int8_t *qs = (const int8_t *)VT_QA_CF(vt_block_q8_0, vx, qs);
    uint16_t dh;
    memcpy(&dh, VT_QA_CF(vt_block_q8_0, vx, d), 2);
    const float d = vt_f16_to_f32(dh);
    for (int j = 0; j < VT_QK8_0; j++) y[j] = qs[j] * d;
}

static void q8_0_quantize_ref(const float *x, void *dst, uint64_t cols, const vt_quant_params *p) {
    vt_qa_quantize_row(x, dst, cols, 0, VT_QK8_0, sizeof(vt_block_q8_0), q8_0_qblock_ref);
}

static void q8_0_dequantize_ref(const void *src, float *y, uint64_t cols,
                                const vt_quant_params *p) {
    vt_qa_dequantize_row(src, y, cols, 0, VT_QK8_0, sizeof(vt_block_q8_0), q8_0_dqblock_ref);
}

#ifdef VT_QA_X86
/* roundf() of 8 floats of magnitude < 2^31: truncate, then step away from zero when the
 * (exact) remainder is at least one half. */
__attribute__((target("avx2"))) static inline __m256i round_away_avx2(__m256 v) {
    __m256i t = _mm256_cvttps_epi32(v);
    __m256 r = _mm256_sub_ps(v, _mm256_cvtepi32_ps(t));
    __m256i up = _mm256_castps_si256(_mm256_cmp_ps(r, _mm256_set1_ps(0.5f), _CMP_GE_OQ));
    __m256i dn = _mm256_castps_si256(_mm256_cmp_ps(r, _mm256_set1_ps(-0.5f), _CMP_LE_OQ));
    return _mm256_add_epi32(_mm256_sub_epi32(t, up), dn); /* masks are -1 */
}

/* 32 int32 (4 vectors, in order) -> 32 int8 with signed saturation. */
__attribute__((target("avx2"))) static inline __m256i pack32_i8_avx2(__m256i a, __m256i b,
                                                                     __m256i c, __m256i d) {
    __m256i ab = _mm256_packs_epi32(a, b), cd = _mm256_packs_epi32(c, d);
    __m256i r = _mm256_packs_epi16(ab, cd);
    return _mm256_permutevar8x32_epi32(r, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

__attribute__((target("avx2"))) static void
q8_0_quantize_avx2(const float *x, void *dst, uint64_t cols, const vt_quant_params *p) {
    uint8_t *yb = dst;
    const __m256 sign = _mm256_set1_ps(-0.0f);
    uint64_t nfull = cols / VT_QK8_0;
    for (uint64_t b = 0; b < nfull; b++, x += VT_QK8_0, yb += sizeof(vt_block_q8_0)) {
        __m256 v0 = _mm256_loadu_ps(x), v1 = _mm256_loadu_ps(x + 8);
        __m256 v2 = _mm256_loadu_ps(x + 16), v3 = _mm256_loadu_ps(x + 24);
        __m256 a =
            _mm256_max_ps(_mm256_max_ps(_mm256_andnot_ps(sign, v0), _mm256_andnot_ps(sign, v1)),
                          _mm256_max_ps(_mm256_andnot_ps(sign, v2), _mm256_andnot_ps(sign, v3)));
        __m128 m = _mm_max_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
        m = _mm_max_ps(m, _mm_movehl_ps(m, m));
        m = _mm_max_ss(m, _mm_shuffle_ps(m, m, 1));
        const float amax = _mm_cvtss_f32(m);
        const float d = amax / 127;
        const float id = d ? 1.0f / d : 0.0f;
        uint16_t dh = vt_f32_to_f16(d);
        memcpy(VT_QA_F(vt_block_q8_0, yb, d), &dh, 2);
        if (isinf(id)) { /* see the file comment */
            memset(VT_QA_F(vt_block_q8_0, yb, qs), 0, VT_QK8_0);
            continue;
        }
        const __m256 vid = _mm256_set1_ps(id);
        __m256i q = pack32_i8_avx2(
            round_away_avx2(_mm256_mul_ps(v0, vid)), round_away_avx2(_mm256_mul_ps(v1, vid)),
            round_away_avx2(_mm256_mul_ps(v2, vid)), round_away_avx2(_mm256_mul_ps(v3, vid)));
        _mm256_storeu_si256((__m256i *)VT_QA_F(vt_block_q8_0, yb, qs), q);
    }
    vt_qa_quantize_row(x - nfull * VT_QK8_0, dst, cols, nfull, VT_QK8_0, sizeof(vt_block_q8_0),
                       q8_0_qblock_ref);
}

__attribute__((target("avx2"))) static void
q8_0_dequantize_avx2(const void *src, float *y, uint64_t cols, const vt_quant_params *p) {
    uint64_t nfull = cols / VT_QK8_0;
    for (uint64_t b = 0; b < nfull; b++) {
        const uint8_t *xb = (const uint8_t *)src + b * sizeof(vt_block_q8_0);
        const uint8_t *qs = VT_QA_CF(vt_block_q8_0, xb, qs);
        uint16_t dh;
        memcpy(&dh, VT_QA_CF(vt_block_q8_0, xb, d), 2);
        const __m256 d = _mm256_set1_ps(vt_f16_to_f32(dh));
        __m128i q0 = _mm_loadu_si128((const __m128i *)qs);
        __m128i q1 = _mm_loadu_si128((const __m128i *)(qs + 16));
        float *o = y + b * VT_QK8_0;
        _mm256_storeu_ps(o, _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(q0)), d));
        _mm256_storeu_ps(
            o + 8,
            _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(q0, 8))), d));
        _mm256_storeu_ps(o + 16, _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(q1)), d));
        _mm256_storeu_ps(
            o + 24,
            _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(q1, 8))), d));
    }
    vt_qa_dequantize_row(src, y, cols, nfull, VT_QK8_0, sizeof(vt_block_q8_0), q8_0_dqblock_ref);
}
#endif

static void q8_0_quantize(const float *x, void *dst, uint64_t cols, const vt_quant_params *p) {
#ifdef VT_QA_X86
    if (vt_qa_have_avx2()) {
        q8_0_quantize_avx2(x, dst, cols, p);
        return;
    }
#endif
    q8_0_quantize_ref(x, dst, cols, p);
}

static void q8_0_dequantize(const void *src, float *y, uint64_t cols, const vt_quant_params *p) {
#ifdef VT_QA_X86
    if (vt_qa_have_avx2()) {
        q8_0_dequantize_avx2(src, y, cols, p);
        return;
    }
#endif
    q8_0_dequantize_ref(src, y, cols, p);
}

const vt_qrow_ops vt_qops_q8_0 = {q8_0_quantize_ref, q8_0_dequantize_ref, q8_0_quantize,
                                  q8_0_dequantize};
