/* quant/nf4.c — bitsandbytes NF4 (QLoRA): per block of 64, f32 absmax and 4-bit codes that
 * index the 16 NF4 values; element 2i in the high nibble. An all-zero block stores absmax 0 and
 * code 7 (the value 0) everywhere. Fields are accessed with memcpy: blocks may sit at odd
 * offsets inside 2:4 rows. */
#include <stddef.h>
#include <string.h>

#include "nf4_codes.h"
#include "nibble_lut.h"
#include "quant_internal.h"

/* bitsandbytes csrc/kernels.cu nf4_data, rounded to float. */
const float vt_nf4_values[16] = {
    -1.0f,
    -0.6961928009986877f,
    -0.5250730514526367f,
    -0.39491748809814453f,
    -0.28444138169288635f,
    -0.18477343022823334f,
    -0.09105003625154495f,
    0.0f,
    0.07958029955625534f,
    0.16093020141124725f,
    0.24611230194568634f,
    0.33791524171829224f,
    0.44070982933044434f,
    0.5626170039176941f,
    0.7229568362236023f,
    1.0f,
};

/* Store a block's absmax; returns its codes to fill, or NULL for an all-zero block (whose codes
 * are then already 7, the value 0). */
static inline uint8_t *nf4_block_start(uint8_t *out, float amax) {
    memcpy(out, &amax, sizeof amax);
    uint8_t *qs = out + offsetof(vt_block_nf4, qs);
    if (amax != 0.0f) return qs;
    memset(qs, 0x77, VT_QK_NF4 / 2);
    return NULL;
}

typedef float (*absmax_fn)(const float *x, uint64_t n);
typedef void (*codes_fn)(const float *x, float absmax, uint8_t *qs);

static void nf4_quantize_row(const float *x, void *dst, uint64_t cols, absmax_fn amax_f,
                             codes_fn codes_f) {
    uint8_t *out = dst;
    uint64_t nb = (cols + VT_QK_NF4 - 1) / VT_QK_NF4;
    for (uint64_t b = 0; b < nb; b++, out += sizeof(vt_block_nf4)) {
        const float *xb = x + b * VT_QK_NF4;
        float pad[VT_QK_NF4];
        uint64_t left = cols - b * VT_QK_NF4;
        if (left < VT_QK_NF4) {
            memset(pad, 0, sizeof pad);
            memcpy(pad, xb, left * sizeof(float));
            xb = pad;
        }
        float amax = amax_f(xb, VT_QK_NF4);
        uint8_t *qs = nf4_block_start(out, amax);
        if (qs) codes_f(xb, amax, qs);
    }
}

static void nf4_quantize_ref(const float *x, void *dst, uint64_t cols, const vt_quant_params *p) {
    nf4_quantize_row(x, dst, cols, vt_absmax_ref, vt_nf4_block_codes_ref);
}

/* vt_absmax_fast with the operands of max in the reference's order: max(|x|, m) returns m
 * when |x| is NaN, as the reference's `a > m` keeps m (vt_absmax_fast would take the NaN). */
static float nf4_absmax(const float *x, uint64_t n) {
#if defined(__SSE2__)
    return vt_absmax_sse(x, n, 1);
#else
    return vt_absmax_ref(x, n);
#endif
}

static void nf4_quantize_sse(const float *x, void *dst, uint64_t cols) {
    nf4_quantize_row(x, dst, cols, nf4_absmax, vt_nf4_block_codes_fast);
}

#if defined(__x86_64__) && defined(__GNUC__)
/* Full blocks with AVX2 / AVX-512, the rest (a partial last block) through nf4_quantize_row.
 *
 * Bit-identity with the reference: absmax is max(|x|, m) in that operand order, so a NaN is
 * skipped as the reference's `a > m` skips it; the block scale is the same scalar 1/absmax (or
 * a division where that overflows); each x * inv is one IEEE multiply as in the reference; and
 * the code is the reference's decision tree walked as a 4-step binary search with the same
 * strict `>` (_CMP_GT_OQ: false on NaN, as C's `>`): after step k the k high code bits select
 * the next threshold, t7 first, then t3|t11, then t1|t5|t9|t13, then t0|t2|..|t14. */
#define NF4_T(i) vt_nf4_thresholds[i]

__attribute__((target("avx2"))) static inline __m256i nf4_codes8_avx2(__m256 v) {
    const __m256 t7 = _mm256_set1_ps(NF4_T(7)), t3 = _mm256_set1_ps(NF4_T(3)),
                 t11 = _mm256_set1_ps(NF4_T(11));
    const __m256 q2 = _mm256_setr_ps(NF4_T(1), NF4_T(5), NF4_T(9), NF4_T(13), 0, 0, 0, 0);
    const __m256 q3 = _mm256_setr_ps(NF4_T(0), NF4_T(2), NF4_T(4), NF4_T(6), NF4_T(8), NF4_T(10),
                                     NF4_T(12), NF4_T(14));
    __m256 m = _mm256_cmp_ps(v, t7, _CMP_GT_OQ);
    __m256i a = _mm256_sub_epi32(_mm256_setzero_si256(), _mm256_castps_si256(m));
    m = _mm256_cmp_ps(v, _mm256_blendv_ps(t3, t11, m), _CMP_GT_OQ);
    a = _mm256_sub_epi32(_mm256_add_epi32(a, a), _mm256_castps_si256(m));
    m = _mm256_cmp_ps(v, _mm256_permutevar8x32_ps(q2, a), _CMP_GT_OQ);
    a = _mm256_sub_epi32(_mm256_add_epi32(a, a), _mm256_castps_si256(m));
    m = _mm256_cmp_ps(v, _mm256_permutevar8x32_ps(q3, a), _CMP_GT_OQ);
    return _mm256_sub_epi32(_mm256_add_epi32(a, a), _mm256_castps_si256(m));
}

/* 32 codes (int32, 4 vectors in element order) -> 32 bytes of codes in order. */
__attribute__((target("avx2"))) static inline __m256i nf4_pack32_avx2(__m256i a, __m256i b,
                                                                      __m256i c, __m256i d) {
    __m256i r = _mm256_packus_epi16(_mm256_packs_epi32(a, b), _mm256_packs_epi32(c, d));
    return _mm256_permutevar8x32_epi32(r, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

/* 32 code bytes -> 16 bytes, even element in the high nibble (in the low 16-bit half of each
 * 128-bit lane's result after the final packus). */
__attribute__((target("avx2"))) static inline __m256i nf4_pairs_avx2(__m256i c) {
    __m256i t = _mm256_or_si256(_mm256_slli_epi16(c, 4), _mm256_srli_epi16(c, 8));
    return _mm256_and_si256(t, _mm256_set1_epi16(0xff));
}

__attribute__((target("avx2"))) static uint64_t nf4_quantize_avx2(const float *x, uint8_t *out,
                                                                  uint64_t nfull) {
    const __m256 sign = _mm256_set1_ps(-0.0f);
    for (uint64_t b = 0; b < nfull; b++, x += VT_QK_NF4, out += sizeof(vt_block_nf4)) {
        __m256 v[8];
        __m256 m = _mm256_setzero_ps();
        for (int k = 0; k < 8; k++) {
            v[k] = _mm256_loadu_ps(x + 8 * k);
            m = _mm256_max_ps(_mm256_andnot_ps(sign, v[k]), m);
        }
        __m128 h = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
        h = _mm_max_ps(h, _mm_movehl_ps(h, h));
        h = _mm_max_ss(h, _mm_shuffle_ps(h, h, 1));
        float amax = _mm_cvtss_f32(h);
        uint8_t *qs = nf4_block_start(out, amax);
        if (!qs) continue;
        float inv;
        int div = vt_nf4_recip(amax, &inv);
        const __m256 s = _mm256_set1_ps(div ? amax : inv);
        __m256i c[8];
        for (int k = 0; k < 8; k++)
            c[k] = nf4_codes8_avx2(div ? _mm256_div_ps(v[k], s) : _mm256_mul_ps(v[k], s));
        __m256i lo = nf4_pairs_avx2(nf4_pack32_avx2(c[0], c[1], c[2], c[3]));
        __m256i hi = nf4_pairs_avx2(nf4_pack32_avx2(c[4], c[5], c[6], c[7]));
        __m256i r = _mm256_permute4x64_epi64(_mm256_packus_epi16(lo, hi), 0xd8);
        _mm256_storeu_si256((__m256i *)qs, r);
    }
    return nfull;
}

__attribute__((target("avx512f"))) static inline __m512i nf4_codes16_avx512(__m512 v) {
    const __m512 t7 = _mm512_set1_ps(NF4_T(7)), t3 = _mm512_set1_ps(NF4_T(3)),
                 t11 = _mm512_set1_ps(NF4_T(11));
    const __m512 q2 =
        _mm512_setr_ps(NF4_T(1), NF4_T(5), NF4_T(9), NF4_T(13), 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0);
    const __m512 q3 = _mm512_setr_ps(NF4_T(0), NF4_T(2), NF4_T(4), NF4_T(6), NF4_T(8), NF4_T(10),
                                     NF4_T(12), NF4_T(14), 0, 0, 0, 0, 0, 0, 0, 0);
    const __m512i one = _mm512_set1_epi32(1);
    __mmask16 m = _mm512_cmp_ps_mask(v, t7, _CMP_GT_OQ);
    __m512i a = _mm512_maskz_mov_epi32(m, one);
    m = _mm512_cmp_ps_mask(v, _mm512_mask_blend_ps(m, t3, t11), _CMP_GT_OQ);
    a = _mm512_add_epi32(a, a);
    a = _mm512_mask_add_epi32(a, m, a, one);
    m = _mm512_cmp_ps_mask(v, _mm512_permutexvar_ps(a, q2), _CMP_GT_OQ);
    a = _mm512_add_epi32(a, a);
    a = _mm512_mask_add_epi32(a, m, a, one);
    m = _mm512_cmp_ps_mask(v, _mm512_permutexvar_ps(a, q3), _CMP_GT_OQ);
    a = _mm512_add_epi32(a, a);
    return _mm512_mask_add_epi32(a, m, a, one);
}

__attribute__((target("avx512f"))) static uint64_t nf4_quantize_avx512(const float *x, uint8_t *out,
                                                                       uint64_t nfull) {
    for (uint64_t b = 0; b < nfull; b++, x += VT_QK_NF4, out += sizeof(vt_block_nf4)) {
        __m512 v[4];
        __m512 m = _mm512_setzero_ps();
        for (int k = 0; k < 4; k++) {
            v[k] = _mm512_loadu_ps(x + 16 * k);
            m = _mm512_max_ps(_mm512_abs_ps(v[k]), m);
        }
        float amax = _mm512_reduce_max_ps(m);
        uint8_t *qs = nf4_block_start(out, amax);
        if (!qs) continue;
        float inv;
        int div = vt_nf4_recip(amax, &inv);
        const __m512 s = _mm512_set1_ps(div ? amax : inv);
        __m128i p[4];
        for (int k = 0; k < 4; k++) {
            __m512i c = nf4_codes16_avx512(div ? _mm512_div_ps(v[k], s) : _mm512_mul_ps(v[k], s));
            /* (even, odd) int32 pair per 64-bit lane -> one byte even << 4 | odd */
            c = _mm512_or_si512(_mm512_slli_epi64(c, 4), _mm512_srli_epi64(c, 32));
            p[k] = _mm512_cvtepi64_epi8(c);
        }
        _mm_storeu_si128((__m128i *)qs, _mm_unpacklo_epi64(p[0], p[1]));
        _mm_storeu_si128((__m128i *)(qs + 16), _mm_unpacklo_epi64(p[2], p[3]));
    }
    return nfull;
}
#undef NF4_T
#endif

enum { NF4_ISA_SSE = 0, NF4_ISA_AVX2 = 1, NF4_ISA_AVX512 = 2 };

static int nf4_isa_best(void) {
#if defined(__x86_64__) && defined(__GNUC__)
    if (__builtin_cpu_supports("avx512f")) return NF4_ISA_AVX512;
    if (__builtin_cpu_supports("avx2")) return NF4_ISA_AVX2;
#endif
    return NF4_ISA_SSE;
}

static void nf4_quantize_isa(const float *x, void *dst, uint64_t cols, int isa) {
    uint64_t done = 0, nfull = cols / VT_QK_NF4;
#if defined(__x86_64__) && defined(__GNUC__)
    if (isa == NF4_ISA_AVX512)
        done = nf4_quantize_avx512(x, dst, nfull);
    else if (isa == NF4_ISA_AVX2)
        done = nf4_quantize_avx2(x, dst, nfull);
#endif
    nf4_quantize_sse(x + done * VT_QK_NF4, (uint8_t *)dst + done * sizeof(vt_block_nf4),
                     cols - done * VT_QK_NF4);
}

/* Test hook (tests/perf/test_nf4_simd.c declares it): quantize with one instruction set, 0 SSE,
 * 1 AVX2, 2 AVX-512. Returns -1 (and writes nothing) when the CPU lacks it. */
int vt_nf4_quantize_isa_test(const float *x, void *dst, uint64_t cols, int isa);
int vt_nf4_quantize_isa_test(const float *x, void *dst, uint64_t cols, int isa) {
    if (isa < NF4_ISA_SSE || isa > nf4_isa_best()) return -1;
    nf4_quantize_isa(x, dst, cols, isa);
    return 0;
}

static void nf4_quantize_fast(const float *x, void *dst, uint64_t cols, const vt_quant_params *p) {
    nf4_quantize_isa(x, dst, cols, nf4_isa_best());
}

static void nf4_dequantize_ref(const void *src, float *y, uint64_t cols, const vt_quant_params *p) {
    const uint8_t *in = src;
    for (uint64_t j = 0; j < cols; j++) {
        const uint8_t *blk = in + (j / VT_QK_NF4) * sizeof(vt_block_nf4);
        float amax;
        memcpy(&amax, blk, sizeof amax);
        uint64_t e = j % VT_QK_NF4;
        uint8_t byte = blk[offsetof(vt_block_nf4, qs) + e / 2];
        uint8_t code = (e % 2 == 0) ? byte >> 4 : byte & 15;
        y[j] = amax * vt_nf4_values[code];
    }
}

/* Table lookup then one multiply by absmax: the same products as the reference. */
static void nf4_dequantize_fast(const void *src, float *y, uint64_t cols,
                                const vt_quant_params *p) {
    const uint8_t *in = src;
    uint64_t nb = (cols + VT_QK_NF4 - 1) / VT_QK_NF4;
    for (uint64_t b = 0; b < nb; b++, in += sizeof(vt_block_nf4)) {
        float amax;
        memcpy(&amax, in, sizeof amax);
        const uint8_t *qs = in + offsetof(vt_block_nf4, qs);
        float *yb = y + b * VT_QK_NF4;
        uint64_t left = cols - b * VT_QK_NF4;
        if (left >= VT_QK_NF4) {
            vt_lut16_expand(qs, VT_QK_NF4 / 2, vt_nf4_values, amax, yb, 1);
        } else {
            for (uint64_t e = 0; e < left; e++)
                yb[e] = amax * vt_nf4_values[(e % 2 == 0) ? qs[e / 2] >> 4 : qs[e / 2] & 15];
        }
    }
}

const vt_qrow_ops vt_qops_nf4 = {
    .quantize_ref = nf4_quantize_ref,
    .dequantize_ref = nf4_dequantize_ref,
    .quantize = nf4_quantize_fast,
    .dequantize = nf4_dequantize_fast,
};
