/* kernels/cpu/gemv_fused_avx2x4.c — fused AVX2/FMA GEMV, several rows per x load, for the
 * 4-bit formats (q4_0, q4_1, q4_k, nf4, nf4_dq, mxfp4, nvfp4, awq_int4): the AVX2 sibling of
 * gemv_fused_avx512.c. Per 8 code bytes: one widening load to 8 int32 lanes; linear codes
 * (q4_0, q4_1, q4_k, awq) become floats by integer convert (q4_0's -8 and the minimums go
 * through per-group x sums), nf4 and e2m1 by a 16-entry table (two vpermps and a blend). The
 * nibble order is absorbed on the x side (even/odd lanes of x, shared by the rows). Block scales
 * are applied once per block; f32 accumulation. Whole blocks only. */
#include <string.h>

#include "gemv_fused.h"
#include "kern_internal.h"

#if defined(__x86_64__)
#include <immintrin.h>

#define AVX    __attribute__((target("avx2,fma,f16c")))
#define INLINE static inline __attribute__((always_inline))

static const float e2m1_16[16] = {0.0f,  0.5f,  1.0f,  1.5f,  2.0f,  3.0f,  4.0f,  6.0f,
                                  -0.0f, -0.5f, -1.0f, -1.5f, -2.0f, -3.0f, -4.0f, -6.0f};

AVX INLINE float ldh(const uint8_t *p) {
    uint16_t h;
    memcpy(&h, p, 2);
    return _cvtsh_ss(h);
}
AVX INLINE float ldf(const uint8_t *p) {
    float f;
    memcpy(&f, p, 4);
    return f;
}
AVX INLINE __m256i codes8(const uint8_t *q) {
    return _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)q));
}
/* 16-entry table lookup; idx may carry garbage above bit 3 only when masked by the caller */
AVX INLINE __m256 lut16(__m256 lo8, __m256 hi8, __m256i idx) {
    __m256 a = _mm256_permutevar8x32_ps(lo8, idx), b = _mm256_permutevar8x32_ps(hi8, idx);
    return _mm256_blendv_ps(a, b, _mm256_castsi256_ps(_mm256_slli_epi32(idx, 28)));
}
/* x[k..k+16) -> even and odd elements, each in order */
AVX INLINE void evod(const float *x, __m256 *e, __m256 *o) {
    __m256 x0 = _mm256_loadu_ps(x), x1 = _mm256_loadu_ps(x + 8);
    *e = _mm256_castpd_ps(
        _mm256_permute4x64_pd(_mm256_castps_pd(_mm256_shuffle_ps(x0, x1, 0x88)), 0xd8));
    *o = _mm256_castpd_ps(
        _mm256_permute4x64_pd(_mm256_castps_pd(_mm256_shuffle_ps(x0, x1, 0xdd)), 0xd8));
}
/* q4_k block at p: out[2j] = d * scale_j, out[2j + 1] = dmin * min_j for the 8 sub-blocks. */
AVX INLINE void q4k_scales(const uint8_t *p, float *out) {
    uint32_t dm; /* d, dmin */
    memcpy(&dm, p, 4);
    __m128i il = vt_kq4k_scale_bytes(p);
    __m256 f = _mm256_cvtph_ps(_mm_set1_epi32((int)dm)); /* d dmin d dmin ... */
    _mm256_storeu_ps(out, _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(il)), f));
    _mm256_storeu_ps(
        out + 8, _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_srli_si128(il, 8))), f));
}

#define LOOP_R  _Pragma("GCC unroll 4") for (int i = 0; i < R; i++)
#define LOOP_B  _Pragma("GCC unroll 8") for (int b = 0; b < B; b++)
#define XB(off) (x + (uint64_t)b * cols + (off))
/* Prefetch of what the next row group reads at this point (see pfd in fused2). */
#define PF(a) _mm_prefetch((const char *)(a) + pfd, _MM_HINT_T0)

/* Rows r0..r0+R-1 against x[0..B) (stride cols); out[i * ostride + b]; returns the columns
 * covered. R, B, F are constants after inlining. */
AVX INLINE uint64_t fused2(const vt_kdesc *d, uint64_t r0, const int R, const int B,
                           const uint32_t F, const float *x, float *out, int ostride) {
    const uint64_t cols = d->cols;
    const uint8_t *p[4];
    uint64_t g[4];
    /* Prefetch distance: the same column R rows on, i.e. the next row group, which the caller
     * runs next (from DRAM the hardware prefetchers alone left the kernel at half the read
     * bandwidth). */
    const uint64_t pfd = d->row_bytes ? (uint64_t)R * d->row_bytes /* nf4_dq: about R rows */
                                      : (uint64_t)R * d->bpr * sizeof(vt_block_nf4_dq) / 256;
    for (int i = 0; i < R; i++) {
        p[i] = d->data + (r0 + i) * d->row_bytes;
        g[i] = (r0 + i) * d->bpr;
    }
    const __m256i m15 = _mm256_set1_epi32(15);
    __m256 acc[4][VT_GEMV_MAX_BATCH];
    LOOP_R LOOP_B acc[i][b] = _mm256_setzero_ps();
    uint64_t k = 0;
    switch (F) {
    case VT_FMT_Q4_0:
    case VT_FMT_Q4_1: /* byte j: element j (low) and j + 16 (high) */
        for (; k + 32 <= cols; k += 32) {
            __m256 xa[2][VT_GEMV_MAX_BATCH], xb[2][VT_GEMV_MAX_BATCH], sx[VT_GEMV_MAX_BATCH];
            LOOP_B {
                for (int h = 0; h < 2; h++) {
                    xa[h][b] = _mm256_loadu_ps(XB(k + 8 * h));
                    xb[h][b] = _mm256_loadu_ps(XB(k + 16 + 8 * h));
                }
                sx[b] = _mm256_add_ps(_mm256_add_ps(xa[0][b], xa[1][b]),
                                      _mm256_add_ps(xb[0][b], xb[1][b]));
                if (F == VT_FMT_Q4_0) sx[b] = _mm256_mul_ps(sx[b], _mm256_set1_ps(-8.0f));
            }
            LOOP_R {
                const uint8_t *q = p[i] + (F == VT_FMT_Q4_0 ? 2 : 4);
                PF(p[i]);
                __m256i c0 = codes8(q), c1 = codes8(q + 8);
                __m256 l0 = _mm256_cvtepi32_ps(_mm256_and_si256(c0, m15));
                __m256 l1 = _mm256_cvtepi32_ps(_mm256_and_si256(c1, m15));
                __m256 h0 = _mm256_cvtepi32_ps(_mm256_srli_epi32(c0, 4));
                __m256 h1 = _mm256_cvtepi32_ps(_mm256_srli_epi32(c1, 4));
                __m256 s = _mm256_set1_ps(ldh(p[i]));
                LOOP_B {
                    __m256 u = F == VT_FMT_Q4_0 ? sx[b] : _mm256_setzero_ps();
                    u = _mm256_fmadd_ps(l0, xa[0][b], u);
                    u = _mm256_fmadd_ps(l1, xa[1][b], u);
                    u = _mm256_fmadd_ps(h0, xb[0][b], u);
                    u = _mm256_fmadd_ps(h1, xb[1][b], u);
                    acc[i][b] = _mm256_fmadd_ps(u, s, acc[i][b]);
                    if (F == VT_FMT_Q4_1)
                        acc[i][b] =
                            _mm256_fmadd_ps(sx[b], _mm256_set1_ps(ldh(p[i] + 2)), acc[i][b]);
                }
                p[i] += F == VT_FMT_Q4_0 ? 18 : 20;
            }
        }
        break;
    case VT_FMT_NF4:
    case VT_FMT_NF4_DQ: { /* element 2j in the HIGH nibble of byte j */
        const __m256 lo8 = _mm256_loadu_ps(vt_nf4_values), hi8 = _mm256_loadu_ps(vt_nf4_values + 8);
        for (; k + 64 <= cols; k += 64) {
            const uint8_t *q[4];
            __m256 s[4], t[4][VT_GEMV_MAX_BATCH];
            LOOP_R {
                if (F == VT_FMT_NF4) {
                    PF(p[i]);
                    s[i] = _mm256_set1_ps(ldf(p[i]));
                    q[i] = p[i] + 4;
                    p[i] += 36;
                } else {
                    const uint8_t *sb = d->data + g[i] / 256 * sizeof(vt_block_nf4_dq);
                    uint32_t j = (uint32_t)(g[i] % 256);
                    s[i] = _mm256_set1_ps(ldf(sb) + ldf(sb + 4) * (float)(int8_t)sb[8 + j]);
                    q[i] = sb + 264 + 32 * j;
                    PF(q[i]);
                    g[i]++;
                }
                LOOP_B t[i][b] = _mm256_setzero_ps();
            }
            for (int h = 0; h < 4; h++) { /* 8 bytes = 16 elements each */
                __m256 xe[VT_GEMV_MAX_BATCH], xo[VT_GEMV_MAX_BATCH];
                LOOP_B evod(XB(k + 16 * h), &xe[b], &xo[b]);
                LOOP_R {
                    __m256i c = codes8(q[i] + 8 * h);
                    __m256 vl = lut16(lo8, hi8, c);
                    __m256 vh = lut16(lo8, hi8, _mm256_srli_epi32(c, 4));
                    LOOP_B t[i][b] =
                        _mm256_fmadd_ps(vl, xo[b], _mm256_fmadd_ps(vh, xe[b], t[i][b]));
                }
            }
            LOOP_R LOOP_B acc[i][b] = _mm256_fmadd_ps(t[i][b], s[i], acc[i][b]);
        }
        break;
    }
    case VT_FMT_MXFP4:
    case VT_FMT_NVFP4: { /* element 2j in the LOW nibble; nvfp4 blocks are 16 wide */
        const __m256 lo8 = _mm256_loadu_ps(e2m1_16), hi8 = _mm256_loadu_ps(e2m1_16 + 8);
        const uint64_t bw = F == VT_FMT_MXFP4 ? 32 : 16, bb = F == VT_FMT_MXFP4 ? 17 : 9;
        for (; k + bw <= cols; k += bw) {
            __m256 t[4][VT_GEMV_MAX_BATCH];
            LOOP_R {
                PF(p[i]);
                LOOP_B t[i][b] = _mm256_setzero_ps();
            }
            for (uint64_t h = 0; h < bw / 16; h++) {
                __m256 xe[VT_GEMV_MAX_BATCH], xo[VT_GEMV_MAX_BATCH];
                LOOP_B evod(XB(k + 16 * h), &xe[b], &xo[b]);
                LOOP_R {
                    __m256i c = codes8(p[i] + 1 + 8 * h);
                    __m256 vl = lut16(lo8, hi8, c);
                    __m256 vh = lut16(lo8, hi8, _mm256_srli_epi32(c, 4));
                    LOOP_B t[i][b] =
                        _mm256_fmadd_ps(vh, xo[b], _mm256_fmadd_ps(vl, xe[b], t[i][b]));
                }
            }
            LOOP_R {
                __m256 s =
                    _mm256_set1_ps(F == VT_FMT_MXFP4 ? vt_ke8m0_f32[p[i][0]]
                                                     : d->tensor_scale * vt_ke4m3_f32[p[i][0]]);
                LOOP_B acc[i][b] = _mm256_fmadd_ps(t[i][b], s, acc[i][b]);
                p[i] += bb;
            }
        }
        break;
    }
    case VT_FMT_AWQ_INT4: /* d * (sum q x/s - z * sum x/s); element 2j in the LOW nibble */
        for (; k + 128 <= cols; k += 128) {
            __m256 t[4][VT_GEMV_MAX_BATCH], sx[VT_GEMV_MAX_BATCH];
            LOOP_R LOOP_B t[i][b] = _mm256_setzero_ps();
            LOOP_B sx[b] = _mm256_setzero_ps();
            for (int h = 0; h < 8; h++) {
                __m256 xe[VT_GEMV_MAX_BATCH], xo[VT_GEMV_MAX_BATCH];
                LOOP_B {
                    evod(XB(k + 16 * h), &xe[b], &xo[b]);
                    if (d->aux) {
                        __m256 se, so;
                        evod(d->aux + k + 16 * h, &se, &so);
                        xe[b] = _mm256_div_ps(xe[b], se);
                        xo[b] = _mm256_div_ps(xo[b], so);
                    }
                    sx[b] = _mm256_add_ps(sx[b], _mm256_add_ps(xe[b], xo[b]));
                }
                LOOP_R {
                    if (h % 2 == 0) PF(p[i] + 8 * h);
                    __m256i c = codes8(p[i] + 4 + 8 * h);
                    __m256 vl = _mm256_cvtepi32_ps(_mm256_and_si256(c, m15));
                    __m256 vh = _mm256_cvtepi32_ps(_mm256_srli_epi32(c, 4));
                    LOOP_B t[i][b] =
                        _mm256_fmadd_ps(vh, xo[b], _mm256_fmadd_ps(vl, xe[b], t[i][b]));
                }
            }
            LOOP_R {
                __m256 s = _mm256_set1_ps(ldh(p[i])), z = _mm256_set1_ps((float)p[i][2]);
                LOOP_B acc[i][b] =
                    _mm256_fmadd_ps(_mm256_fnmadd_ps(z, sx[b], t[i][b]), s, acc[i][b]);
                p[i] += 68;
            }
        }
        break;
    case VT_FMT_Q4_K: /* per 64: low nibbles of 32 bytes, then high; d*sc*q - dmin*m */
        for (; k + 256 <= cols; k += 256) {
            float sm[4][16];
            LOOP_R q4k_scales(p[i], sm[i]);
            for (int j = 0; j < 4; j++) {
                LOOP_R PF(p[i] + 16 + 32 * j);
                for (int h = 0; h < 4; h++) { /* bytes 8h..8h+7 of the 32 */
                    __m256 xl[VT_GEMV_MAX_BATCH], xh[VT_GEMV_MAX_BATCH];
                    LOOP_B {
                        xl[b] = _mm256_loadu_ps(XB(k + 64 * j + 8 * h));
                        xh[b] = _mm256_loadu_ps(XB(k + 64 * j + 32 + 8 * h));
                    }
                    LOOP_R {
                        __m256i c = codes8(p[i] + 16 + 32 * j + 8 * h);
                        const float *f = sm[i] + 4 * j;
                        __m256 vl = _mm256_fmsub_ps(_mm256_set1_ps(f[0]),
                                                    _mm256_cvtepi32_ps(_mm256_and_si256(c, m15)),
                                                    _mm256_set1_ps(f[1]));
                        __m256 vh = _mm256_fmsub_ps(_mm256_set1_ps(f[2]),
                                                    _mm256_cvtepi32_ps(_mm256_srli_epi32(c, 4)),
                                                    _mm256_set1_ps(f[3]));
                        LOOP_B acc[i][b] =
                            _mm256_fmadd_ps(vh, xh[b], _mm256_fmadd_ps(vl, xl[b], acc[i][b]));
                    }
                }
            }
            LOOP_R p[i] += 144;
        }
        break;
    default:
        return 0;
    }
    for (int i = 0; i < R; i++)
        for (int b = 0; b < B; b++) {
            __m256 v = acc[i][b];
            __m128 s4 = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
            s4 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
            s4 = _mm_add_ss(s4, _mm_movehdup_ps(s4));
            out[i * ostride + b] = _mm_cvtss_f32(s4);
        }
    return k;
}

#define FMT_CASES2(R, B)                                                                           \
    switch (d->fmt) {                                                                              \
    case VT_FMT_Q4_0:                                                                              \
        return fused2(d, r0, R, B, VT_FMT_Q4_0, x, out, ostride);                                  \
    case VT_FMT_Q4_1:                                                                              \
        return fused2(d, r0, R, B, VT_FMT_Q4_1, x, out, ostride);                                  \
    case VT_FMT_Q4_K:                                                                              \
        return fused2(d, r0, R, B, VT_FMT_Q4_K, x, out, ostride);                                  \
    case VT_FMT_NF4:                                                                               \
        return fused2(d, r0, R, B, VT_FMT_NF4, x, out, ostride);                                   \
    case VT_FMT_NF4_DQ:                                                                            \
        return fused2(d, r0, R, B, VT_FMT_NF4_DQ, x, out, ostride);                                \
    case VT_FMT_MXFP4:                                                                             \
        return fused2(d, r0, R, B, VT_FMT_MXFP4, x, out, ostride);                                 \
    case VT_FMT_NVFP4:                                                                             \
        return fused2(d, r0, R, B, VT_FMT_NVFP4, x, out, ostride);                                 \
    case VT_FMT_AWQ_INT4:                                                                          \
        return fused2(d, r0, R, B, VT_FMT_AWQ_INT4, x, out, ostride);                              \
    default:                                                                                       \
        return 0;                                                                                  \
    }

AVX static uint64_t a2_r4b1(const vt_kdesc *d, uint64_t r0, const float *x, float *out,
                            int ostride){FMT_CASES2(4, 1)} AVX static uint64_t
    a2_r1b1(const vt_kdesc *d, uint64_t r0, const float *x, float *out,
            int ostride){FMT_CASES2(1, 1)} AVX static uint64_t
    a2_r1b2(const vt_kdesc *d, uint64_t r0, const float *x, float *out,
            int ostride){FMT_CASES2(1, 2)} AVX static uint64_t
    a2_r1b4(const vt_kdesc *d, uint64_t r0, const float *x, float *out,
            int ostride){FMT_CASES2(1, 4)}

uint64_t vt_kfused_rows_avx2(const vt_kdesc *d, uint64_t r0, int nr, const float *x, int batch,
                             float *out) {
    if (d->sparse) return 0;
    uint64_t kf = 0;
    if (batch == 1) {
        int i = 0;
        for (; i + 4 <= nr; i += 4) kf = a2_r4b1(d, r0 + i, x, out + i, 1);
        for (; i < nr; i++) kf = a2_r1b1(d, r0 + i, x, out + i, 1);
        return kf;
    }
    for (int i = 0; i < nr; i++)
        for (int b = 0; b < batch;) {
            const float *xb = x + (uint64_t)b * d->cols;
            float *o = out + (uint64_t)i * batch + b;
            int n = batch - b >= 4 ? 4 : batch - b >= 2 ? 2 : 1;
            kf = n == 4   ? a2_r1b4(d, r0 + i, xb, o, 1)
                 : n == 2 ? a2_r1b2(d, r0 + i, xb, o, 1)
                          : a2_r1b1(d, r0 + i, xb, o, 1);
            b += n;
        }
    return kf;
}
#else
uint64_t vt_kfused_rows_avx2(const vt_kdesc *d, uint64_t r0, int nr, const float *x, int batch,
                             float *out) {
    return 0;
}
#endif
