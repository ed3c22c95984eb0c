/* quant/int8.c — int8: symmetric absmax per block of 64, f32 d = amax / 127,
 * q = round-half-away-from-zero(x / d) clamped to ±127; a block whose d is 0 stores zeros.
 * The AVX2 path divides exactly as the reference does (IEEE division, no reciprocal), so the
 * codes are bit-identical. */
#include <math.h>

#include "qrow_common.h"

static void int8_qblock_ref(const float *x, void *vy) {
    int8_t *qs = (int8_t *)VT_QA_F(vt_block_int8, vy, qs);
    float amax = 0.0f;
    for (int j = 0; j < VT_QK_INT8; j++) {
        float a = fabsf(x[j]);
        amax = amax > a ? amax : a;
    }
    const float d = amax / 127.0f;
    memcpy(VT_QA_F(vt_block_int8, vy, d), &d, 4);
    for (int j = 0; j < VT_QK_INT8; j++) {
        if (d == 0.0f) {
            qs[j] = 0;
            continue;
        }
        float q = roundf(x[j] / d);
        qs[j] = (int8_t)(q > 127.0f ? 127.0f : q < -127.0f ? -127.0f : q);
    }
}

static void int8_dqblock_ref(const void *vx, float *y) {
    const int8_t *qs = (const int8_t *)VT_QA_CF(vt_block_int8, vx, qs);
    float d;
    memcpy(&d, VT_QA_CF(vt_block_int8, vx, d), 4);
    for (int j = 0; j < VT_QK_INT8; j++) y[j] = qs[j] * d;
}

static void int8_quantize_ref(const float *x, void *dst, uint64_t cols, const vt_quant_params *p) {
    vt_qa_quantize_row(x, dst, cols, 0, VT_QK_INT8, sizeof(vt_block_int8), int8_qblock_ref);
}
static void int8_dequantize_ref(const void *src, float *y, uint64_t cols,
                                const vt_quant_params *p) {
    vt_qa_dequantize_row(src, y, cols, 0, VT_QK_INT8, sizeof(vt_block_int8), int8_dqblock_ref);
}

#ifdef VT_QA_X86
__attribute__((target("avx2"))) static inline __m256i int8_code_avx2(__m256 x, __m256 d) {
    __m256 v = _mm256_div_ps(x, d); /* |v| <= 127 * (1 + eps): no int32 overflow */
    __m256i t = _mm256_cvttps_epi32(v);
    __m256 r = _mm256_sub_ps(v, _mm256_cvtepi32_ps(t));
    __m256i up = _mm256_castps_si256(_mm256_cmp_ps(r, _mm256_set1_ps(0.5f), _CMP_GE_OQ));
    __m256i dn = _mm256_castps_si256(_mm256_cmp_ps(r, _mm256_set1_ps(-0.5f), _CMP_LE_OQ));
    __m256i q = _mm256_add_epi32(_mm256_sub_epi32(t, up), dn);
    q = _mm256_min_epi32(q, _mm256_set1_epi32(127));
    return _mm256_max_epi32(q, _mm256_set1_epi32(-127));
}

__attribute__((target("avx2"))) static void
int8_quantize_avx2(const float *x0, void *dst, uint64_t cols, const vt_quant_params *p) {
    const __m256 sign = _mm256_set1_ps(-0.0f);
    const __m256i perm = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    uint64_t nfull = cols / VT_QK_INT8;
    for (uint64_t b = 0; b < nfull; b++) {
        const float *x = x0 + b * VT_QK_INT8;
        uint8_t *yb = (uint8_t *)dst + b * sizeof(vt_block_int8);
        uint8_t *qs = VT_QA_F(vt_block_int8, yb, qs);
        __m256 v[8], a = _mm256_setzero_ps();
        for (int k = 0; k < 8; k++) {
            v[k] = _mm256_loadu_ps(x + 8 * k);
            a = _mm256_max_ps(a, _mm256_andnot_ps(sign, v[k]));
        }
        __m128 m = _mm_max_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
        m = _mm_max_ps(m, _mm_movehl_ps(m, m));
        const float amax = _mm_cvtss_f32(_mm_max_ss(m, _mm_shuffle_ps(m, m, 1)));
        const float d = amax / 127.0f;
        memcpy(VT_QA_F(vt_block_int8, yb, d), &d, 4);
        if (d == 0.0f) {
            memset(qs, 0, VT_QK_INT8);
            continue;
        }
        const __m256 vd = _mm256_set1_ps(d);
        for (int h = 0; h < 2; h++) {
            __m256i ab =
                _mm256_packs_epi32(int8_code_avx2(v[4 * h], vd), int8_code_avx2(v[4 * h + 1], vd));
            __m256i cd = _mm256_packs_epi32(int8_code_avx2(v[4 * h + 2], vd),
                                            int8_code_avx2(v[4 * h + 3], vd));
            __m256i q = _mm256_permutevar8x32_epi32(_mm256_packs_epi16(ab, cd), perm);
            _mm256_storeu_si256((__m256i *)(qs + 32 * h), q);
        }
    }
    vt_qa_quantize_row(x0, dst, cols, nfull, VT_QK_INT8, sizeof(vt_block_int8), int8_qblock_ref);
}

__attribute__((target("avx2"))) static void
int8_dequantize_avx2(const void *src, float *y, uint64_t cols, const vt_quant_params *p) {
    uint64_t nfull = cols / VT_QK_INT8;
    for (uint64_t b = 0; b < nfull; b++) {
        const uint8_t *xb = (const uint8_t *)src + b * sizeof(vt_block_int8);
        const uint8_t *qs = VT_QA_CF(vt_block_int8, xb, qs);
        float df;
        memcpy(&df, VT_QA_CF(vt_block_int8, xb, d), 4);
        const __m256 d = _mm256_set1_ps(df);
        float *o = y + b * VT_QK_INT8;
        for (int k = 0; k < 8; k++) {
            __m128i q = _mm_loadl_epi64((const __m128i *)(qs + 8 * k));
            _mm256_storeu_ps(o + 8 * k,
                             _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(q)), d));
        }
    }
    vt_qa_dequantize_row(src, y, cols, nfull, VT_QK_INT8, sizeof(vt_block_int8), int8_dqblock_ref);
}
#endif

static void int8_quantize(const float *x, void *dst, uint64_t cols, const vt_quant_params *p) {
#ifdef VT_QA_X86
    if (vt_qa_have_avx2()) {
        int8_quantize_avx2(x, dst, cols, p);
        return;
    }
#endif
    int8_quantize_ref(x, dst, cols, p);
}

static void int8_dequantize(const void *src, float *y, uint64_t cols, const vt_quant_params *p) {
#ifdef VT_QA_X86
    if (vt_qa_have_avx2()) {
        int8_dequantize_avx2(src, y, cols, p);
        return;
    }
#endif
    int8_dequantize_ref(src, y, cols, p);
}

const vt_qrow_ops vt_qops_int8 = {int8_quantize_ref, int8_dequantize_ref, int8_quantize,
                                  int8_dequantize};
