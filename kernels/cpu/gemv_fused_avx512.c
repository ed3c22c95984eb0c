/* kernels/cpu/gemv_fused_avx512.c — fused AVX-512 GEMV for the 4-bit formats (q4_0, q4_1, q4_k,
 * nf4, nf4_dq, mxfp4, nvfp4, awq_int4), q6_k and the 8-bit q8_0 and int8 (16 codes sign-extended
 * to int32 lanes and converted, no table). Per 16 code bytes: one widening load to 16 int32
 * lanes, and the low and high nibbles index a 16-entry f32 table with one vpermps each (vpermps
 * reads only the low 4 bits of an index, so the low nibble needs no mask). x is prepared once per
 * call (vt_kfused_prep512): the nibble order of the format absorbed (even/odd elements of each
 * group of 32), awq's x divided by its channel scales, and batches interleaved by group of 32
 * and padded to 6 or 8 from 5 or 7, so codes are never shuffled and x is never touched per row.
 * Batch 1 (fused_b1): up to 4 rows share each x load; codes are dotted unscaled and block scales
 * applied once per block (E4M3/E8M0 by table; f16 scales of 8 blocks converted together; q4_k's
 * scale and min folded into the value table). Batches 2-8 (fused): each 32-weight piece of a row
 * is decoded once, its block scale folded into the table (or one multiply), and FMAed against
 * every vector, 4 rows x up to 4 vectors or 2 rows x 6-8 per call, over column chunks whose x
 * stays in L1. Accumulation is f32. Each row prefetches what a later row group will read (from
 * DRAM the hardware prefetchers alone left the kernel at about half the read bandwidth). Whole
 * blocks only: the caller decodes a ragged tail. q4_0 and q4_1 at batches 1-2 run in integers on
 * CPUs with AVX512-VNNI (fusedi512, below; VT_GEMV_CPU_INT=0 keeps the f32 kernel). */
#include <math.h>
#include <string.h>

#include "gemv_fused.h"
#include "kern_internal.h"

/* vt_e4m3_to_f32 / vt_e8m0_to_f32 of every byte (generated from them). */
const float vt_ke4m3_f32[256] = {
    0x0p+0,  0x1p-9,    0x1p-8,    0x1.8p-8,  0x1p-7,    0x1.4p-7,  0x1.8p-7,  0x1.cp-7,
    0x1p-6,  0x1.2p-6,  0x1.4p-6,  0x1.6p-6,  0x1.8p-6,  0x1.ap-6,  0x1.cp-6,  0x1.ep-6,
    0x1p-5,  0x1.2p-5,  0x1.4p-5,  0x1.6p-5,  0x1.8p-5,  0x1.ap-5,  0x1.cp-5,  0x1.ep-5,
    0x1p-4,  0x1.2p-4,  0x1.4p-4,  0x1.6p-4,  0x1.8p-4,  0x1.ap-4,  0x1.cp-4,  0x1.ep-4,
    0x1p-3,  0x1.2p-3,  0x1.4p-3,  0x1.6p-3,  0x1.8p-3,  0x1.ap-3,  0x1.cp-3,  0x1.ep-3,
    0x1p-2,  0x1.2p-2,  0x1.4p-2,  0x1.6p-2,  0x1.8p-2,  0x1.ap-2,  0x1.cp-2,  0x1.ep-2,
    0x1p-1,  0x1.2p-1,  0x1.4p-1,  0x1.6p-1,  0x1.8p-1,  0x1.ap-1,  0x1.cp-1,  0x1.ep-1,
    0x1p+0,  0x1.2p+0,  0x1.4p+0,  0x1.6p+0,  0x1.8p+0,  0x1.ap+0,  0x1.cp+0,  0x1.ep+0,
    0x1p+1,  0x1.2p+1,  0x1.4p+1,  0x1.6p+1,  0x1.8p+1,  0x1.ap+1,  0x1.cp+1,  0x1.ep+1,
    0x1p+2,  0x1.2p+2,  0x1.4p+2,  0x1.6p+2,  0x1.8p+2,  0x1.ap+2,  0x1.cp+2,  0x1.ep+2,
    0x1p+3,  0x1.2p+3,  0x1.4p+3,  0x1.6p+3,  0x1.8p+3,  0x1.ap+3,  0x1.cp+3,  0x1.ep+3,
    0x1p+4,  0x1.2p+4,  0x1.4p+4,  0x1.6p+4,  0x1.8p+4,  0x1.ap+4,  0x1.cp+4,  0x1.ep+4,
    0x1p+5,  0x1.2p+5,  0x1.4p+5,  0x1.6p+5,  0x1.8p+5,  0x1.ap+5,  0x1.cp+5,  0x1.ep+5,
    0x1p+6,  0x1.2p+6,  0x1.4p+6,  0x1.6p+6,  0x1.8p+6,  0x1.ap+6,  0x1.cp+6,  0x1.ep+6,
    0x1p+7,  0x1.2p+7,  0x1.4p+7,  0x1.6p+7,  0x1.8p+7,  0x1.ap+7,  0x1.cp+7,  0x1.ep+7,
    0x1p+8,  0x1.2p+8,  0x1.4p+8,  0x1.6p+8,  0x1.8p+8,  0x1.ap+8,  0x1.cp+8,  NAN,
    -0x0p+0, -0x1p-9,   -0x1p-8,   -0x1.8p-8, -0x1p-7,   -0x1.4p-7, -0x1.8p-7, -0x1.cp-7,
    -0x1p-6, -0x1.2p-6, -0x1.4p-6, -0x1.6p-6, -0x1.8p-6, -0x1.ap-6, -0x1.cp-6, -0x1.ep-6,
    -0x1p-5, -0x1.2p-5, -0x1.4p-5, -0x1.6p-5, -0x1.8p-5, -0x1.ap-5, -0x1.cp-5, -0x1.ep-5,
    -0x1p-4, -0x1.2p-4, -0x1.4p-4, -0x1.6p-4, -0x1.8p-4, -0x1.ap-4, -0x1.cp-4, -0x1.ep-4,
    -0x1p-3, -0x1.2p-3, -0x1.4p-3, -0x1.6p-3, -0x1.8p-3, -0x1.ap-3, -0x1.cp-3, -0x1.ep-3,
    -0x1p-2, -0x1.2p-2, -0x1.4p-2, -0x1.6p-2, -0x1.8p-2, -0x1.ap-2, -0x1.cp-2, -0x1.ep-2,
    -0x1p-1, -0x1.2p-1, -0x1.4p-1, -0x1.6p-1, -0x1.8p-1, -0x1.ap-1, -0x1.cp-1, -0x1.ep-1,
    -0x1p+0, -0x1.2p+0, -0x1.4p+0, -0x1.6p+0, -0x1.8p+0, -0x1.ap+0, -0x1.cp+0, -0x1.ep+0,
    -0x1p+1, -0x1.2p+1, -0x1.4p+1, -0x1.6p+1, -0x1.8p+1, -0x1.ap+1, -0x1.cp+1, -0x1.ep+1,
    -0x1p+2, -0x1.2p+2, -0x1.4p+2, -0x1.6p+2, -0x1.8p+2, -0x1.ap+2, -0x1.cp+2, -0x1.ep+2,
    -0x1p+3, -0x1.2p+3, -0x1.4p+3, -0x1.6p+3, -0x1.8p+3, -0x1.ap+3, -0x1.cp+3, -0x1.ep+3,
    -0x1p+4, -0x1.2p+4, -0x1.4p+4, -0x1.6p+4, -0x1.8p+4, -0x1.ap+4, -0x1.cp+4, -0x1.ep+4,
    -0x1p+5, -0x1.2p+5, -0x1.4p+5, -0x1.6p+5, -0x1.8p+5, -0x1.ap+5, -0x1.cp+5, -0x1.ep+5,
    -0x1p+6, -0x1.2p+6, -0x1.4p+6, -0x1.6p+6, -0x1.8p+6, -0x1.ap+6, -0x1.cp+6, -0x1.ep+6,
    -0x1p+7, -0x1.2p+7, -0x1.4p+7, -0x1.6p+7, -0x1.8p+7, -0x1.ap+7, -0x1.cp+7, -0x1.ep+7,
    -0x1p+8, -0x1.2p+8, -0x1.4p+8, -0x1.6p+8, -0x1.8p+8, -0x1.ap+8, -0x1.cp+8, -NAN,
};
const float vt_ke8m0_f32[256] = {
    0x1p-127, 0x1p-126, 0x1p-125, 0x1p-124, 0x1p-123, 0x1p-122, 0x1p-121, 0x1p-120, 0x1p-119,
    0x1p-118, 0x1p-117, 0x1p-116, 0x1p-115, 0x1p-114, 0x1p-113, 0x1p-112, 0x1p-111, 0x1p-110,
    0x1p-109, 0x1p-108, 0x1p-107, 0x1p-106, 0x1p-105, 0x1p-104, 0x1p-103, 0x1p-102, 0x1p-101,
    0x1p-100, 0x1p-99,  0x1p-98,  0x1p-97,  0x1p-96,  0x1p-95,  0x1p-94,  0x1p-93,  0x1p-92,
    0x1p-91,  0x1p-90,  0x1p-89,  0x1p-88,  0x1p-87,  0x1p-86,  0x1p-85,  0x1p-84,  0x1p-83,
    0x1p-82,  0x1p-81,  0x1p-80,  0x1p-79,  0x1p-78,  0x1p-77,  0x1p-76,  0x1p-75,  0x1p-74,
    0x1p-73,  0x1p-72,  0x1p-71,  0x1p-70,  0x1p-69,  0x1p-68,  0x1p-67,  0x1p-66,  0x1p-65,
    0x1p-64,  0x1p-63,  0x1p-62,  0x1p-61,  0x1p-60,  0x1p-59,  0x1p-58,  0x1p-57,  0x1p-56,
    0x1p-55,  0x1p-54,  0x1p-53,  0x1p-52,  0x1p-51,  0x1p-50,  0x1p-49,  0x1p-48,  0x1p-47,
    0x1p-46,  0x1p-45,  0x1p-44,  0x1p-43,  0x1p-42,  0x1p-41,  0x1p-40,  0x1p-39,  0x1p-38,
    0x1p-37,  0x1p-36,  0x1p-35,  0x1p-34,  0x1p-33,  0x1p-32,  0x1p-31,  0x1p-30,  0x1p-29,
    0x1p-28,  0x1p-27,  0x1p-26,  0x1p-25,  0x1p-24,  0x1p-23,  0x1p-22,  0x1p-21,  0x1p-20,
    0x1p-19,  0x1p-18,  0x1p-17,  0x1p-16,  0x1p-15,  0x1p-14,  0x1p-13,  0x1p-12,  0x1p-11,
    0x1p-10,  0x1p-9,   0x1p-8,   0x1p-7,   0x1p-6,   0x1p-5,   0x1p-4,   0x1p-3,   0x1p-2,
    0x1p-1,   0x1p+0,   0x1p+1,   0x1p+2,   0x1p+3,   0x1p+4,   0x1p+5,   0x1p+6,   0x1p+7,
    0x1p+8,   0x1p+9,   0x1p+10,  0x1p+11,  0x1p+12,  0x1p+13,  0x1p+14,  0x1p+15,  0x1p+16,
    0x1p+17,  0x1p+18,  0x1p+19,  0x1p+20,  0x1p+21,  0x1p+22,  0x1p+23,  0x1p+24,  0x1p+25,
    0x1p+26,  0x1p+27,  0x1p+28,  0x1p+29,  0x1p+30,  0x1p+31,  0x1p+32,  0x1p+33,  0x1p+34,
    0x1p+35,  0x1p+36,  0x1p+37,  0x1p+38,  0x1p+39,  0x1p+40,  0x1p+41,  0x1p+42,  0x1p+43,
    0x1p+44,  0x1p+45,  0x1p+46,  0x1p+47,  0x1p+48,  0x1p+49,  0x1p+50,  0x1p+51,  0x1p+52,
    0x1p+53,  0x1p+54,  0x1p+55,  0x1p+56,  0x1p+57,  0x1p+58,  0x1p+59,  0x1p+60,  0x1p+61,
    0x1p+62,  0x1p+63,  0x1p+64,  0x1p+65,  0x1p+66,  0x1p+67,  0x1p+68,  0x1p+69,  0x1p+70,
    0x1p+71,  0x1p+72,  0x1p+73,  0x1p+74,  0x1p+75,  0x1p+76,  0x1p+77,  0x1p+78,  0x1p+79,
    0x1p+80,  0x1p+81,  0x1p+82,  0x1p+83,  0x1p+84,  0x1p+85,  0x1p+86,  0x1p+87,  0x1p+88,
    0x1p+89,  0x1p+90,  0x1p+91,  0x1p+92,  0x1p+93,  0x1p+94,  0x1p+95,  0x1p+96,  0x1p+97,
    0x1p+98,  0x1p+99,  0x1p+100, 0x1p+101, 0x1p+102, 0x1p+103, 0x1p+104, 0x1p+105, 0x1p+106,
    0x1p+107, 0x1p+108, 0x1p+109, 0x1p+110, 0x1p+111, 0x1p+112, 0x1p+113, 0x1p+114, 0x1p+115,
    0x1p+116, 0x1p+117, 0x1p+118, 0x1p+119, 0x1p+120, 0x1p+121, 0x1p+122, 0x1p+123, 0x1p+124,
    0x1p+125, 0x1p+126, 0x1p+127, NAN,
};
#if defined(__x86_64__)
#include <immintrin.h>

#define A512   __attribute__((target("avx512f,avx2,fma,f16c")))
#define INLINE static inline __attribute__((always_inline))
/* Prefetch of what the next row group reads at this point (see pfd in fused). */
#define PF(a) _mm_prefetch((const char *)(a) + pfd, _MM_HINT_T0)
/* The least prefetch distance at batch 1 (fused_b1, fusedi512): one row group ahead is 1440
 * bytes on SmolLM2-135M's 576-column q4_1 rows, too close for DRAM on one thread; 8 KiB took
 * `vtstore run`'s one-thread decode from about 82 to 115 tokens/s (2-CPU Zen 5 VM; 4-16 KiB
 * alike) and leaves 4096-column rows (9-10 KiB a row group) as they were. */
#define PF_MIN 8192

static const float e2m1_tab[16] = {0.0f,  0.5f,  1.0f,  1.5f,  2.0f,  3.0f,  4.0f,  6.0f,
                                   -0.0f, -0.5f, -1.0f, -1.5f, -2.0f, -3.0f, -4.0f, -6.0f};

A512 INLINE float ldh(const uint8_t *p) {
    uint16_t h;
    memcpy(&h, p, 2);
    return _cvtsh_ss(h);
}
A512 INLINE float ldf(const uint8_t *p) {
    float f;
    memcpy(&f, p, 4);
    return f;
}
/* 16 code bytes -> int32 lanes (low nibble usable as a vpermps index as is). */
A512 INLINE __m512i codes16(const uint8_t *q) {
    return _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)q));
}

/* q4_k block at p: out[2j] = d * scale_j, out[2j + 1] = dmin * min_j for the 8 sub-blocks. */
A512 INLINE void q4k_scales(const uint8_t *p, float *out) {
    uint32_t dm; /* d, dmin */
    memcpy(&dm, p, 4);
    __m128i il = vt_kq4k_scale_bytes(p);
    __m512 f = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(il));
    _mm512_storeu_ps(out, _mm512_mul_ps(f, _mm512_cvtph_ps(_mm256_set1_epi32((int)dm))));
}

/* q6_k: the 6-bit codes q = ql nibble | 2 qh bits << 4 of the 16 columns 32m + (0..15) of a
 * 128-column half into q[m], m = 0..3 (ql: its low-bits bytes for these columns, qh: its high-bits
 * bytes). */
A512 INLINE void q6k_codes(const uint8_t *ql, const uint8_t *qh, __m512i *q) {
    const __m512i m15 = _mm512_set1_epi32(15), m48 = _mm512_set1_epi32(48);
    __m512i l0 = codes16(ql), l1 = codes16(ql + 32), hb = codes16(qh);
    q[0] =
        _mm512_or_si512(_mm512_and_si512(l0, m15), _mm512_and_si512(_mm512_slli_epi32(hb, 4), m48));
    q[1] =
        _mm512_or_si512(_mm512_and_si512(l1, m15), _mm512_and_si512(_mm512_slli_epi32(hb, 2), m48));
    q[2] = _mm512_or_si512(_mm512_srli_epi32(l0, 4), _mm512_and_si512(hb, m48));
    q[3] =
        _mm512_or_si512(_mm512_srli_epi32(l1, 4), _mm512_and_si512(_mm512_srli_epi32(hb, 2), m48));
}

/* The f16 scales of the 8 blocks at p as f32: q4_0 (18-byte blocks, d at 0) -> out[0..8);
 * q4_1 (20-byte blocks, d and m at 0 and 2) -> out[0..16) as d0 m0 d1 m1 ... Two 64-byte loads,
 * one dword permute and one convert instead of a scalar convert and broadcast per block. */
A512 INLINE void scales8_f16(const uint8_t *p, int q4_1, float *out) {
    if (q4_1) {
        const __m512i di = _mm512_setr_epi32(0, 5, 10, 15, 16, 21, 26, 31, 0, 0, 0, 0, 0, 0, 0, 0);
        __m512i w =
            _mm512_permutex2var_epi32(_mm512_loadu_si512(p), di, _mm512_loadu_si512(p + 80));
        _mm512_storeu_ps(out, _mm512_cvtph_ps(_mm512_castsi512_si256(w)));
    } else { /* block b's d is the low (b even) or high half of dword 18b / 4 */
        const __m512i di = _mm512_setr_epi32(0, 4, 9, 13, 18, 22, 27, 31, 0, 0, 0, 0, 0, 0, 0, 0);
        const __m512i sh = _mm512_setr_epi32(0, 16, 0, 16, 0, 16, 0, 16, 0, 0, 0, 0, 0, 0, 0, 0);
        __m512i w =
            _mm512_permutex2var_epi32(_mm512_loadu_si512(p), di, _mm512_loadu_si512(p + 64));
        w = _mm512_srlv_epi32(w, sh);
        _mm256_storeu_ps(out, _mm256_cvtph_ps(_mm256_castsi256_si128(_mm512_cvtepi32_epi16(w))));
    }
}

/* acc[i][b] += scale_i * (lut[lo_i] . xa[b] + lut[hi_i] . xb[b]) for one 16-byte code group. */
#define DOT_GROUP(i, q, T)                                                                         \
    do {                                                                                           \
        __m512i c_ = codes16(q);                                                                   \
        __m512 vl_ = _mm512_permutexvar_ps(c_, lut);                                               \
        __m512 vh_ = _mm512_permutexvar_ps(_mm512_srli_epi32(c_, 4), lut);                         \
        _Pragma("GCC unroll 8") for (int b = 0; b < B; b++) T[i][b] =                              \
            _mm512_fmadd_ps(vh_, xb[b], _mm512_fmadd_ps(vl_, xa[b], T[i][b]));                     \
    } while (0)

/* Element k of vector b in the prepared x (vt_kfused_prep512; batches interleaved by 32). */
#define XAT(b, k) (x + ((k) & ~(uint64_t)31) * (uint64_t)B + 32 * (uint64_t)(b) + ((k)&31))
/* x lanes for group [k, k+32) of each batch vector, from the prepared x (nibble order applied,
 * awq's x divided by its scales): xa pairs with the low nibbles, xb with the high ones. */
A512 INLINE void load_x(const float *x, uint64_t k, int B, __m512 *xa, __m512 *xb) {
#pragma GCC unroll 8
    for (int b = 0; b < B; b++) {
        xa[b] = _mm512_loadu_ps(XAT(b, k));
        xb[b] = _mm512_loadu_ps(XAT(b, k) + 16);
    }
}

#define ZERO(T)                                                                                    \
    _Pragma("GCC unroll 4") for (int i = 0; i < R; i++)                                            \
        _Pragma("GCC unroll 8") for (int b = 0; b < B; b++) T[i][b] = _mm512_setzero_ps()

/* Batch 1 (and q6_k at batch 2): rows r0..r0+R-1 against the prepared vectors x[0..B);
 * out[i * ostride + b]. Returns the columns covered. R, B, F are constants after inlining. Codes
 * are dotted with x unscaled into per-block partial sums t, scaled once per block (the kernel
 * that served every batch before the batch kernel fused() came; kept as it was measured). */
A512 INLINE uint64_t fused_b1(const vt_kdesc *d, uint64_t r0, const int R, const int B,
                              const uint32_t F, const float *x, float *out, int ostride) {
    const uint64_t cols = d->cols;
    const uint8_t *p[4];
    uint64_t g[4];
    /* Prefetch distance: the same column R rows on, i.e. the next row group, which the caller
     * runs next, but at least PF_MIN bytes. */
    const uint64_t pfr = d->row_bytes ? (uint64_t)R * d->row_bytes /* nf4_dq: about R rows */
                                      : (uint64_t)R * d->bpr * sizeof(vt_block_nf4_dq) / 256;
    const uint64_t pfd = pfr > PF_MIN ? pfr : PF_MIN;
    for (int i = 0; i < R; i++) {
        p[i] = d->data + (r0 + i) * d->row_bytes;
        g[i] = (r0 + i) * d->bpr;
    }
    __m512 acc[4][VT_GEMV_MAX_BATCH], t[4][VT_GEMV_MAX_BATCH], xa[VT_GEMV_MAX_BATCH],
        xb[VT_GEMV_MAX_BATCH], sx[VT_GEMV_MAX_BATCH];
    ZERO(acc);
    uint64_t k = 0;
    __m512 lut;
    switch (F) {
    case VT_FMT_Q4_0:
    case VT_FMT_Q4_1: { /* q4_1: sum d*q*x + m*x, the m term by the group's x sum */
        const int q1 = F == VT_FMT_Q4_1, bb = q1 ? 20 : 18;
        lut = q1 ? _mm512_setr_ps(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15)
                 : _mm512_setr_ps(-8, -7, -6, -5, -4, -3, -2, -1, 0, 1, 2, 3, 4, 5, 6, 7);
/* One block of row i: scale S, q4_1 minimum M. */
#define Q4_BLOCK(i, S, M)                                                                          \
    do {                                                                                           \
        __m512 s_ = (S), m_ = q1 ? (M) : s_;                                                       \
        PF(p[i]);                                                                                  \
        DOT_GROUP(i, p[i] + 2 + 2 * q1, t);                                                        \
        _Pragma("GCC unroll 8") for (int b = 0; b < B; b++) {                                      \
            acc[i][b] = _mm512_fmadd_ps(t[i][b], s_, acc[i][b]);                                   \
            if (q1) acc[i][b] = _mm512_fmadd_ps(sx[b], m_, acc[i][b]);                             \
        }                                                                                          \
        p[i] += bb;                                                                                \
    } while (0)
#define Q4_X(k_)                                                                                   \
    do {                                                                                           \
        load_x(x, k_, B, xa, xb);                                                                  \
        if (q1)                                                                                    \
            _Pragma("GCC unroll 8") for (int b = 0; b < B; b++) sx[b] =                            \
                _mm512_add_ps(xa[b], xb[b]);                                                       \
        ZERO(t);                                                                                   \
    } while (0)
        for (; k + 256 <= cols; k += 256) { /* runs of 8 blocks: scales converted together */
            float sc[4][16];                /* d of 8 blocks (q4_0), or d, m pairs (q4_1) */
#pragma GCC unroll 4
            for (int i = 0; i < R; i++) scales8_f16(p[i], q1, sc[i]);
            for (int j = 0; j < 8; j++) {
                Q4_X(k + 32 * j);
#pragma GCC unroll 4
                for (int i = 0; i < R; i++)
                    Q4_BLOCK(i, _mm512_set1_ps(sc[i][q1 ? 2 * j : j]),
                             _mm512_set1_ps(sc[i][2 * j + 1]));
            }
        }
        for (; k + 32 <= cols; k += 32) {
            Q4_X(k);
#pragma GCC unroll 4
            for (int i = 0; i < R; i++)
                Q4_BLOCK(i, _mm512_set1_ps(ldh(p[i])), _mm512_set1_ps(ldh(p[i] + 2)));
        }
        break;
#undef Q4_BLOCK
#undef Q4_X
    }
    case VT_FMT_NF4:
    case VT_FMT_NF4_DQ: {
        lut = _mm512_loadu_ps(vt_nf4_values);
        const uint8_t *q[4];
        __m512 s[4];
/* One 64-element block of each row at column k: codes at q[i], scale s[i]. */
#define NF4_STEP()                                                                                 \
    do {                                                                                           \
        ZERO(t);                                                                                   \
        for (int h = 0; h < 2; h++) {                                                              \
            load_x(x, k + 32 * h, B, xa, xb);                                                      \
            _Pragma("GCC unroll 4") for (int i = 0; i < R; i++) DOT_GROUP(i, q[i] + 16 * h, t);    \
        }                                                                                          \
        _Pragma("GCC unroll 4") for (int i = 0; i < R; i++)                                        \
            _Pragma("GCC unroll 8") for (int b = 0; b < B; b++) acc[i][b] =                        \
                _mm512_fmadd_ps(t[i][b], s[i], acc[i][b]);                                         \
    } while (0)
        while (k + 64 <= cols) {
            /* 16 blocks of each row in one super-block: their scales converted together */
            if (F == VT_FMT_NF4_DQ && vt_kdq_run16(g, R, k, cols)) {
                float sc[4][16];
                const uint8_t *qb[4];
#pragma GCC unroll 4
                for (int i = 0; i < R; i++) qb[i] = vt_kdq_next16(d, &g[i], sc[i]);
                for (int bl = 0; bl < 16; bl++, k += 64) {
#pragma GCC unroll 4
                    for (int i = 0; i < R; i++) {
                        q[i] = qb[i] + 32 * bl;
                        s[i] = _mm512_set1_ps(sc[i][bl]);
                        PF(q[i]);
                    }
                    NF4_STEP();
                }
                continue;
            }
#pragma GCC unroll 4
            for (int i = 0; i < R; i++) {
                float a;
                q[i] = vt_knf4_next(d, F == VT_FMT_NF4_DQ, &p[i], &g[i], &a);
                s[i] = _mm512_set1_ps(a);
                PF(q[i]);
            }
            NF4_STEP();
            k += 64;
        }
        break;
#undef NF4_STEP
    }
    case VT_FMT_Q8_0: /* 34-byte blocks: f16 d, 32 int8 */
        for (; k + 32 <= cols; k += 32) {
            load_x(x, k, B, xa, xb); /* x[k, k+16) and x[k+16, k+32) */
#pragma GCC unroll 4
            for (int i = 0; i < R; i++) {
                PF(p[i]);
                __m512 w0 = _mm512_cvtepi32_ps(
                    _mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(p[i] + 2))));
                __m512 w1 = _mm512_cvtepi32_ps(
                    _mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(p[i] + 18))));
                __m512 s = _mm512_set1_ps(ldh(p[i]));
#pragma GCC unroll 8
                for (int b = 0; b < B; b++)
                    acc[i][b] = _mm512_fmadd_ps(
                        _mm512_fmadd_ps(w1, xb[b], _mm512_mul_ps(w0, xa[b])), s, acc[i][b]);
                p[i] += 34;
            }
        }
        break;
    case VT_FMT_INT8: /* 68-byte blocks: f32 scale, 64 int8 */
        for (; k + 64 <= cols; k += 64) {
            ZERO(t);
            for (int h = 0; h < 2; h++) {
                load_x(x, k + 32 * h, B, xa, xb);
#pragma GCC unroll 4
                for (int i = 0; i < R; i++) {
                    const uint8_t *q = p[i] + 4 + 32 * h;
                    __m512 w0 = _mm512_cvtepi32_ps(
                        _mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)q)));
                    __m512 w1 = _mm512_cvtepi32_ps(
                        _mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(q + 16))));
#pragma GCC unroll 8
                    for (int b = 0; b < B; b++)
                        t[i][b] = _mm512_fmadd_ps(w1, xb[b], _mm512_fmadd_ps(w0, xa[b], t[i][b]));
                }
            }
#pragma GCC unroll 4
            for (int i = 0; i < R; i++) {
                PF(p[i]);
                PF(p[i] + 64);
                __m512 s = _mm512_set1_ps(ldf(p[i]));
#pragma GCC unroll 8
                for (int b = 0; b < B; b++) acc[i][b] = _mm512_fmadd_ps(t[i][b], s, acc[i][b]);
                p[i] += 68;
            }
        }
        break;
    case VT_FMT_MXFP4:
        lut = _mm512_loadu_ps(e2m1_tab);
        for (; k + 32 <= cols; k += 32) {
            load_x(x, k, B, xa, xb);
            ZERO(t);
#pragma GCC unroll 4
            for (int i = 0; i < R; i++) {
                PF(p[i]);
                DOT_GROUP(i, p[i] + 1, t);
                __m512 s = _mm512_set1_ps(vt_ke8m0_f32[p[i][0]]);
#pragma GCC unroll 8
                for (int b = 0; b < B; b++) acc[i][b] = _mm512_fmadd_ps(t[i][b], s, acc[i][b]);
                p[i] += 17;
            }
        }
        break;
    case VT_FMT_NVFP4: /* two 16-element blocks per group: lanes 0-7 the first, 8-15 the second */
        lut = _mm512_loadu_ps(e2m1_tab);
        for (; k + 32 <= cols; k += 32) {
            load_x(x, k, B, xa, xb);
#pragma GCC unroll 4
            for (int i = 0; i < R; i++) {
                const uint8_t *q = p[i];
                PF(q);
                __m128i qb = _mm_unpacklo_epi64(_mm_loadl_epi64((const __m128i *)(q + 1)),
                                                _mm_loadl_epi64((const __m128i *)(q + 10)));
                __m512i c = _mm512_cvtepu8_epi32(qb);
                __m512 vl = _mm512_permutexvar_ps(c, lut);
                __m512 vh = _mm512_permutexvar_ps(_mm512_srli_epi32(c, 4), lut);
                __m512 s = _mm512_mask_mov_ps(_mm512_set1_ps(vt_ke4m3_f32[q[0]]), 0xff00,
                                              _mm512_set1_ps(vt_ke4m3_f32[q[9]]));
#pragma GCC unroll 8
                for (int b = 0; b < B; b++) {
                    __m512 u = _mm512_fmadd_ps(vh, xb[b], _mm512_mul_ps(vl, xa[b]));
                    acc[i][b] = _mm512_fmadd_ps(u, s, acc[i][b]);
                }
                p[i] += 18;
            }
        }
        break;
    case VT_FMT_AWQ_INT4: /* d * sum (q - z) x/s = d * (sum q x/s - z * sum x/s) */
        lut = _mm512_setr_ps(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
        for (; k + 128 <= cols; k += 128) {
            ZERO(t);
#pragma GCC unroll 8
            for (int b = 0; b < B; b++) sx[b] = _mm512_setzero_ps();
            for (int h = 0; h < 4; h++) {
                load_x(x, k + 32 * h, B, xa, xb);
#pragma GCC unroll 8
                for (int b = 0; b < B; b++)
                    sx[b] = _mm512_add_ps(sx[b], _mm512_add_ps(xa[b], xb[b]));
#pragma GCC unroll 4
                for (int i = 0; i < R; i++) {
                    PF(p[i] + 16 * h);
                    DOT_GROUP(i, p[i] + 4 + 16 * h, t);
                }
            }
#pragma GCC unroll 4
            for (int i = 0; i < R; i++) {
                __m512 s = _mm512_set1_ps(ldh(p[i])), z = _mm512_set1_ps((float)p[i][2]);
#pragma GCC unroll 8
                for (int b = 0; b < B; b++)
                    acc[i][b] = _mm512_fmadd_ps(_mm512_fnmadd_ps(z, sx[b], t[i][b]), s, acc[i][b]);
                p[i] += 68;
            }
        }
        break;
    case VT_FMT_Q4_K: /* per 64: low nibbles of 32 bytes, then high; d*sc*q - dmin*m */
        lut = _mm512_setr_ps(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
        ZERO(t); /* a second accumulator per row (shorter FMA chains), added to acc at the end */
        for (; k + 256 <= cols; k += 256) {
            float sm[4][16];
#pragma GCC unroll 4
            for (int i = 0; i < R; i++) q4k_scales(p[i], sm[i]);
#pragma GCC unroll 4
            for (int j = 0; j < 4; j++) {
                __m512 xq[4][VT_GEMV_MAX_BATCH];
#pragma GCC unroll 8
                for (int b = 0; b < B; b++)
#pragma GCC unroll 4
                    for (int u = 0; u < 4; u++)
                        xq[u][b] = _mm512_loadu_ps(XAT(b, k + 64 * j + 16 * u));
#pragma GCC unroll 4
                for (int i = 0; i < R; i++) {
                    const uint8_t *q = p[i] + 16 + 32 * j;
                    PF(q);
                    const float *f = sm[i] + 4 * j;
                    /* the two sub-blocks' value tables d*sc*q - dmin*m, q = 0..15 */
                    __m512 v1 = _mm512_fmsub_ps(lut, _mm512_set1_ps(f[0]), _mm512_set1_ps(f[1]));
                    __m512 v2 = _mm512_fmsub_ps(lut, _mm512_set1_ps(f[2]), _mm512_set1_ps(f[3]));
                    __m512i c0 = codes16(q), c1 = codes16(q + 16);
                    __m512 l0 = _mm512_permutexvar_ps(c0, v1), l1 = _mm512_permutexvar_ps(c1, v1);
                    __m512 h0 = _mm512_permutexvar_ps(_mm512_srli_epi32(c0, 4), v2);
                    __m512 h1 = _mm512_permutexvar_ps(_mm512_srli_epi32(c1, 4), v2);
#pragma GCC unroll 8
                    for (int b = 0; b < B; b++) {
                        acc[i][b] =
                            _mm512_fmadd_ps(h0, xq[2][b], _mm512_fmadd_ps(l0, xq[0][b], acc[i][b]));
                        t[i][b] =
                            _mm512_fmadd_ps(h1, xq[3][b], _mm512_fmadd_ps(l1, xq[1][b], t[i][b]));
                    }
                }
            }
#pragma GCC unroll 4
            for (int i = 0; i < R; i++) p[i] += 144;
        }
#pragma GCC unroll 4
        for (int i = 0; i < R; i++)
#pragma GCC unroll 8
            for (int b = 0; b < B; b++) acc[i][b] = _mm512_add_ps(acc[i][b], t[i][b]);
        break;
    case VT_FMT_Q6_K: { /* per 128: 6-bit q = ql nibble | 2 qh bits << 4, d*sc*(q - 32), 16 wide */
        const __m512i o32 = _mm512_set1_epi32(32);
        for (; k + 256 <= cols; k += 256) {
            float sc[4][16]; /* d * scale of the 16 sub-blocks of 16 */
#pragma GCC unroll 4
            for (int i = 0; i < R; i++) {
                __m512 f = _mm512_cvtepi32_ps(
                    _mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(p[i] + 192))));
                _mm512_storeu_ps(sc[i], _mm512_mul_ps(f, _mm512_set1_ps(ldh(p[i] + 208))));
            }
            for (int n = 0; n < 2; n++)       /* halves of 128 */
                for (int h = 0; h < 2; h++) { /* bytes 16h..16h+15 of the 32 */
                    const uint64_t kx = k + 128 * n + 16 * h;
                    __m512 xq[4][VT_GEMV_MAX_BATCH]; /* elements kx + 32 m */
#pragma GCC unroll 8
                    for (int b = 0; b < B; b++)
#pragma GCC unroll 4
                        for (int m = 0; m < 4; m++) xq[m][b] = _mm512_loadu_ps(XAT(b, kx + 32 * m));
#pragma GCC unroll 4
                    for (int i = 0; i < R; i++) {
                        const uint8_t *ql = p[i] + 64 * n + 16 * h,
                                      *qh = p[i] + 128 + 32 * n + 16 * h;
                        PF(ql);
                        PF(qh);
                        __m512i q[4];
                        q6k_codes(ql, qh, q);
#pragma GCC unroll 4
                        for (int m = 0; m < 4; m++) {
                            __m512 w =
                                _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(q[m], o32)),
                                              _mm512_set1_ps(sc[i][8 * n + 2 * m + h]));
#pragma GCC unroll 8
                            for (int b = 0; b < B; b++)
                                acc[i][b] = _mm512_fmadd_ps(w, xq[m][b], acc[i][b]);
                        }
                    }
                }
#pragma GCC unroll 4
            for (int i = 0; i < R; i++) p[i] += 210;
        }
        break;
    }
    default:
        return 0;
    }
    const float ts = F == VT_FMT_NVFP4 ? d->tensor_scale : 1.0f; /* nvfp4: applied once here */
    for (int i = 0; i < R; i++)
        for (int b = 0; b < B; b++) out[i * ostride + b] = ts * _mm512_reduce_add_ps(acc[i][b]);
    return k;
}

/* The prepared x (vt_kfused_prep512) holds, per whole group of 32 elements, the 16 that pair with
 * the low nibbles of 16 code bytes, then the 16 that pair with the high ones: x_order 1 for
 * element 2j in the low nibble of byte j (mxfp4, nvfp4, awq), 2 for the high one (nf4), 0 for the
 * formats read in natural order. */
static int x_order(uint32_t fmt) {
    switch (fmt) {
    case VT_FMT_MXFP4:
    case VT_FMT_NVFP4:
    case VT_FMT_AWQ_INT4:
        return 1;
    case VT_FMT_NF4:
    case VT_FMT_NF4_DQ:
        return 2;
    default:
        return 0;
    }
}
static int has_path(uint32_t fmt) {
    switch (fmt) {
    case VT_FMT_Q4_0:
    case VT_FMT_Q4_1:
    case VT_FMT_Q4_K:
    case VT_FMT_Q6_K:
    case VT_FMT_NF4:
    case VT_FMT_NF4_DQ:
    case VT_FMT_MXFP4:
    case VT_FMT_NVFP4:
    case VT_FMT_AWQ_INT4:
    case VT_FMT_Q8_0:
    case VT_FMT_INT8:
        return 1;
    default:
        return 0;
    }
}

/* ---- batches 1-2 of q4_0 and q4_1: integer dots ------------------------------------------------
 * The f32 kernel above spends about 8 vector ops per 32 weights (a widening load, two vpermps, a
 * shift, two FMAs, the block scale): in `vtstore run`'s decode (one thread) the q4_1 product
 * took half the time. Here, as in the AVX2 kernel's integer form (gemv_fused_avx2x4.c `fusedi`),
 * x is quantized once per call to int16 per 64 columns (vt_kxi_build; each x off by at most
 * 1/32768 of its group's largest |x|) and the codes stay integers: 64 code bytes (four blocks,
 * one per 128-bit lane) give four vectors of 32 int16 values by 16-bit shifts and masks (no
 * shuffles: word m of a block holds columns 2m, 2m + 16, 2m + 1, 2m + 17 in its four nibbles, and
 * x is stored in that order), and vpdpwssd (AVX512-VNNI) sums them against the x codes in int32
 * lanes, four per block, without overflow (8 products of at most 15 x 16384 per lane). Each lane
 * is converted once and scaled by its block's d times its group's x scale. q4_0's -8 is folded
 * into the int32 start value (-8 times the lane's x codes, once per 128 columns for all rows),
 * exactly; q4_1's minimum m multiplies the lane's quantized x sum (so the result is the exact dot
 * product of the dequantized weights with the quantized x, within the same bound as AVX2's). */
#define A512I __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")))

int vt_kxi_fmt512(uint32_t f) {
    static int ok = -1; /* AVX512-BW and -VNNI; cached (no cpuid per call) */
    int c = __atomic_load_n(&ok, __ATOMIC_RELAXED);
    if (c < 0) {
        c = __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vnni");
        __atomic_store_n(&ok, c, __ATOMIC_RELAXED);
    }
    return c && (f == VT_FMT_Q4_0 || f == VT_FMT_Q4_1);
}

/* The code bytes of 4 blocks (half: 2, the other lanes zero), block j's at q + j bb, as the
 * 128-bit lanes of one vector. */
A512I INLINE __m512i xi_codes(const uint8_t *q, int bb, int half) {
    __m512i y = _mm512_zextsi128_si512(_mm_loadu_si128((const __m128i *)q));
    y = _mm512_inserti32x4(y, _mm_loadu_si128((const __m128i *)(q + bb)), 1);
    if (half) return y;
    y = _mm512_inserti32x4(y, _mm_loadu_si128((const __m128i *)(q + 2 * bb)), 2);
    return _mm512_inserti32x4(y, _mm_loadu_si128((const __m128i *)(q + 3 * bb)), 3);
}

/* Rows r0..r0+R-1 against the B (1, 2) prepared vectors, out[i * B + b]; the columns covered
 * (whole 64-column groups). R, B, F are constants after inlining. */
A512I INLINE uint64_t fusedi512(const vt_kdesc *d, uint64_t r0, const int R, const int B,
                                const uint32_t F, const vt_kx *px, float *out) {
    const uint64_t n64 = px->n64, pfr = (uint64_t)R * d->row_bytes; /* as fused_b1 */
    const uint64_t pfd = pfr > PF_MIN ? pfr : PF_MIN;
    const int q1 = F == VT_FMT_Q4_1, bb = q1 ? 20 : 18;
    const uint8_t *p[4];
    for (int i = 0; i < R; i++) p[i] = d->data + (r0 + i) * d->row_bytes;
    const __m512i m15 = _mm512_set1_epi16(15), xw = _mm512_set1_epi16(q1 ? 1 : -8);
    /* block j's d (q4_1: d, m pairs) to the four lanes of lane group j */
    const __m512i dj = q1 ? _mm512_setr_epi32(0, 0, 0, 0, 2, 2, 2, 2, 4, 4, 4, 4, 6, 6, 6, 6)
                          : _mm512_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3);
    const __m512i mj = _mm512_add_epi32(dj, _mm512_set1_epi32(1));
    __m512 acc[4][2];
    for (int i = 0; i < R; i++)
        for (int b = 0; b < B; b++) acc[i][b] = _mm512_setzero_ps();
    for (uint64_t G = 0; G < n64; G += 4) { /* runs of 8 blocks: scales converted together */
        const int ng = n64 - G < 4 ? (int)(n64 - G) : 4;
        float sc[4][16]; /* d of 8 blocks (q4_0), or d, m pairs (q4_1) */
#pragma GCC unroll 4
        for (int i = 0; i < R; i++) {
            if (ng == 4) {
                scales8_f16(p[i], q1, sc[i]);
                continue;
            }
            for (int j = 0; j < 8; j++) {
                const uint8_t *s = p[i] + j * bb;
                const int in = j < 2 * ng;
                if (q1) {
                    sc[i][2 * j] = in ? ldh(s) : 0.0f;
                    sc[i][2 * j + 1] = in ? ldh(s + 2) : 0.0f;
                } else {
                    sc[i][j] = in ? ldh(s) : 0.0f;
                }
            }
        }
        for (int c = 0; c < ng; c += 2) { /* 128 columns (half: the last odd group, 64) */
            const int half = c + 1 == ng;
            const uint64_t G0 = G + (uint64_t)c;
            __m512i xv[2][4], xt[2];
            __m512 xsl[2], sx[2];
#pragma GCC unroll 2
            for (int b = 0; b < B; b++) {
                const int16_t *xq = px->xq + ((uint64_t)b * n64 + G0) * 64;
                const float *xs = px->xs + (uint64_t)b * n64 + G0;
                xt[b] = _mm512_setzero_si512();
#pragma GCC unroll 4
                for (int n = 0; n < 4; n++) {
                    xv[b][n] = half ? _mm512_zextsi256_si512(
                                          _mm256_loadu_si256((const __m256i *)(xq + 16 * n)))
                                    : _mm512_loadu_si512(xq + 32 * n);
                    xt[b] = _mm512_dpwssd_epi32(xt[b], xw, xv[b][n]); /* x code sums (x -8) */
                }
                xsl[b] =
                    half ? _mm512_zextps256_ps512(_mm256_set1_ps(xs[0]))
                         : _mm512_mask_mov_ps(_mm512_set1_ps(xs[0]), 0xff00, _mm512_set1_ps(xs[1]));
                if (q1) {
                    sx[b] = _mm512_mul_ps(_mm512_cvtepi32_ps(xt[b]), xsl[b]);
                    xt[b] = _mm512_setzero_si512();
                }
            }
#pragma GCC unroll 4
            for (int i = 0; i < R; i++) {
                const uint8_t *q = p[i] + 2 * c * bb;
                PF(q);
                PF(q + 64);
                __m512i y = xi_codes(q + 2 + 2 * q1, bb, half);
                __m512i v0 = _mm512_and_si512(y, m15);
                __m512i v1 = _mm512_and_si512(_mm512_srli_epi16(y, 4), m15);
                __m512i v2 = _mm512_and_si512(_mm512_srli_epi16(y, 8), m15);
                __m512i v3 = _mm512_srli_epi16(y, 12);
                const float *s = sc[i] + (q1 ? 4 : 2) * c;
                __m512 sv = _mm512_castps256_ps512(_mm256_loadu_ps(s)); /* reads s[0..8) */
                __m512 dl = _mm512_permutexvar_ps(dj, sv);
#pragma GCC unroll 2
                for (int b = 0; b < B; b++) {
                    __m512i t = _mm512_dpwssd_epi32(xt[b], v0, xv[b][0]);
                    t = _mm512_dpwssd_epi32(t, v1, xv[b][1]);
                    t = _mm512_dpwssd_epi32(t, v2, xv[b][2]);
                    t = _mm512_dpwssd_epi32(t, v3, xv[b][3]);
                    acc[i][b] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(t), _mm512_mul_ps(dl, xsl[b]),
                                                acc[i][b]);
                    if (q1)
                        acc[i][b] =
                            _mm512_fmadd_ps(_mm512_permutexvar_ps(mj, sv), sx[b], acc[i][b]);
                }
            }
        }
#pragma GCC unroll 4
        for (int i = 0; i < R; i++) p[i] += 2 * ng * bb;
    }
    for (int i = 0; i < R; i++)
        for (int b = 0; b < B; b++) out[i * B + b] = _mm512_reduce_add_ps(acc[i][b]);
    return 64 * n64;
}

#define XI512_SHAPE(name, R, B)                                                                    \
    A512I static uint64_t name(const vt_kdesc *d, uint64_t r0, const vt_kx *px, float *out) {      \
        return d->fmt == VT_FMT_Q4_1   ? fusedi512(d, r0, R, B, VT_FMT_Q4_1, px, out)              \
               : d->fmt == VT_FMT_Q4_0 ? fusedi512(d, r0, R, B, VT_FMT_Q4_0, px, out)              \
                                       : 0;                                                        \
    }
XI512_SHAPE(xi_r4b1, 4, 1)
XI512_SHAPE(xi_r1b1, 1, 1)
XI512_SHAPE(xi_r4b2, 4, 2)
XI512_SHAPE(xi_r1b2, 1, 2)

static uint64_t rows_xi512(const vt_kdesc *d, uint64_t r0, int nr, const vt_kx *px, float *out) {
    const int B = px->batch;
    uint64_t kf = 0;
    int i = 0;
    for (; i + 4 <= nr; i += 4) kf = (B == 1 ? xi_r4b1 : xi_r4b2)(d, r0 + i, px, out + B * i);
    for (; i < nr; i++) kf = (B == 1 ? xi_r1b1 : xi_r1b2)(d, r0 + i, px, out + B * i);
    return kf;
}

/* The integer form's x: position t = 16 n + 8 l + m of a group holds the column of nibble n of
 * word m of its block l (xi_codes and the shifts above): 32 l + 2 m + n / 2 + 16 (n % 2). */
static int xi_prep512(const vt_kdesc *d, const float *x, int batch, vt_kx *px) {
    uint8_t perm[64];
    for (int t = 0; t < 64; t++) {
        const int n = t / 16, l = t / 8 % 2, m = t % 8;
        perm[t] = (uint8_t)(32 * l + 2 * m + n / 2 + 16 * (n % 2));
    }
    return vt_kxi_build(d, x, batch, perm, VT_KXI_PAIRS, px);
}

int vt_kfused_prep512(const vt_kdesc *d, const float *x, int batch, vt_kx *px) {
    /* batches 5 and 7 run as 6 and 8 with a zero vector (shapes: 1, 2, 3, 4, 6, 8) */
    const int np = batch <= 4 ? batch : (batch + 1) & ~1, o = x_order(d->fmt);
    if (vt_kfused_xint(d, batch)) {
        int rc = xi_prep512(d, x, batch, px);
        if (rc <= 0) return rc; /* else x has values the integer form does not take */
    }
    if (d->sparse || !has_path(d->fmt) || (!o && np == 1 && d->fmt != VT_FMT_AWQ_INT4)) {
        *px = (vt_kx){.x = x, .batch = batch, .npad = batch, .mem = NULL};
        return 0;
    }
    return vt_kx_build(d, x, batch, np, 32,
                       (o ? VT_KX_SPLIT : 0) | (o == 2 ? VT_KX_ODD_FIRST : 0) |
                           (np > 1 ? VT_KX_INTERLEAVE : 0),
                       px);
}

#define LOOP_R _Pragma("GCC unroll 4") for (int i = 0; i < R; i++)
#define LOOP_B _Pragma("GCC unroll 8") for (int b = 0; b < B; b++)

/* acc[i][b] += v0[i] . x_b[k, k+16) + v1[i] . x_b[k+16, k+32) for every row i and vector b: the
 * 32 (scaled) values of group k of each row against the prepared x. Each x load serves the R
 * rows; with few accumulators the high half goes to acc2 (two FMA chains per output). */
#define DOT32(k_)                                                                                  \
    LOOP_B {                                                                                       \
        const float *xp_ = x + (k_) * (uint64_t)B + 32 * b; /* [k/32][B][32] */                    \
        __m512 xa_ = _mm512_loadu_ps(xp_), xb_ = _mm512_loadu_ps(xp_ + 16);                        \
        if (R > 1) __asm__("" : "+v"(xa_), "+v"(xb_)); /* one load for the R rows, not R */        \
        LOOP_R {                                                                                   \
            acc[i][b] = _mm512_fmadd_ps(v0[i], xa_, acc[i][b]);                                    \
            if (dual)                                                                              \
                acc2[i][b] = _mm512_fmadd_ps(v1[i], xb_, acc2[i][b]);                              \
            else                                                                                   \
                acc[i][b] = _mm512_fmadd_ps(v1[i], xb_, acc[i][b]);                                \
        }                                                                                          \
    }
/* v0[i], v1[i]: the values of 16 code bytes' low and high nibbles from the 16-entry table tb. */
#define LUT16(i, q, tb)                                                                            \
    do {                                                                                           \
        __m512i c_ = codes16(q);                                                                   \
        v0[i] = _mm512_permutexvar_ps(c_, tb);                                                     \
        v1[i] = _mm512_permutexvar_ps(_mm512_srli_epi32(c_, 4), tb);                               \
    } while (0)

/* Rows r0..r0+R-1 over columns [k0, k1) (k0 a multiple of 256) against the prepared vectors
 * x[0..B) (interleaved by 32), added to am[i][b] (vectors of partial sums; the caller reduces
 * them). Returns the column reached: k1 or the last whole block before it. R, B, F are constants
 * after inlining. Block scales go into the values (a scaled table, or a multiply of the decoded
 * vector) once per block and row, so each output takes just two FMAs per 32 columns. pfd: prefetch
 * distance in bytes (see vt_kfused_rows512). */
A512 INLINE uint64_t fused(const vt_kdesc *d, uint64_t r0, const int R, const int B,
                           const uint32_t F, const float *x, uint64_t k0, uint64_t k1, uint64_t pfd,
                           __m512 (*am)[VT_GEMV_MAX_BATCH]) {
    const uint8_t *p[4];
    uint64_t g[4];
    /* bytes per 256 columns of a row (nf4_dq: 64-element blocks per 256 instead) */
    const uint64_t b256 = F == VT_FMT_Q4_0       ? 8 * 18
                          : F == VT_FMT_Q4_1     ? 8 * 20
                          : F == VT_FMT_Q8_0     ? 8 * 34
                          : F == VT_FMT_INT8     ? 4 * 68
                          : F == VT_FMT_NF4      ? 4 * 36
                          : F == VT_FMT_NF4_DQ   ? 4
                          : F == VT_FMT_MXFP4    ? 8 * 17
                          : F == VT_FMT_NVFP4    ? 16 * 9
                          : F == VT_FMT_AWQ_INT4 ? 2 * 68
                          : F == VT_FMT_Q4_K     ? 144
                                                 : 210;
    for (int i = 0; i < R; i++) {
        p[i] = d->data + (r0 + i) * d->row_bytes + k0 / 256 * b256;
        g[i] = (r0 + i) * d->bpr + k0 / 256 * 4;
    }
    const int dual = R * B <= 8;
    __m512 acc[4][VT_GEMV_MAX_BATCH], acc2[4][VT_GEMV_MAX_BATCH], v0[4], v1[4];
    LOOP_R LOOP_B {
        acc[i][b] = am[i][b];
        acc2[i][b] = _mm512_setzero_ps();
    }
    const __m512 i16 = _mm512_setr_ps(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    uint64_t k = k0;
    switch (F) {
    case VT_FMT_Q4_0:
    case VT_FMT_Q4_1: { /* values d*(q-8), or d*q + m */
        const int q1 = F == VT_FMT_Q4_1, bb = q1 ? 20 : 18;
        const __m512 lut = q1 ? i16 : _mm512_sub_ps(i16, _mm512_set1_ps(8));
/* One block of row i: scale S, q4_1 minimum M. */
#define Q4_BLOCK(i, S, M)                                                                          \
    do {                                                                                           \
        PF(p[i]);                                                                                  \
        LUT16(i, p[i] + 2 + 2 * q1, q1 ? _mm512_fmadd_ps(lut, S, M) : _mm512_mul_ps(lut, S));      \
        p[i] += bb;                                                                                \
    } while (0)
        for (; k + 256 <= k1; k += 256) { /* runs of 8 blocks: scales converted together */
            float sc[4][16];              /* d of 8 blocks (q4_0), or d, m pairs (q4_1) */
            LOOP_R scales8_f16(p[i], q1, sc[i]);
            for (int j = 0; j < 8; j++) {
                LOOP_R Q4_BLOCK(i, _mm512_set1_ps(sc[i][q1 ? 2 * j : j]),
                                _mm512_set1_ps(sc[i][2 * j + 1]));
                DOT32(k + 32 * j);
            }
        }
        for (; k + 32 <= k1; k += 32) {
            LOOP_R Q4_BLOCK(i, _mm512_set1_ps(ldh(p[i])), _mm512_set1_ps(ldh(p[i] + 2)));
            DOT32(k);
        }
        break;
#undef Q4_BLOCK
    }
    case VT_FMT_NF4:
    case VT_FMT_NF4_DQ: {
        const __m512 lut = _mm512_loadu_ps(vt_nf4_values);
        const uint8_t *q[4];
        __m512 tb[4]; /* each row's table scaled by its block's absmax */
/* One 64-element block of each row at column k: codes at q[i]. */
#define NF4_STEP()                                                                                 \
    for (int h = 0; h < 2; h++) {                                                                  \
        LOOP_R LUT16(i, q[i] + 16 * h, tb[i]);                                                     \
        DOT32(k + 32 * h);                                                                         \
    }
        while (k + 64 <= k1) {
            /* 16 blocks of each row in one super-block: their scales converted together */
            if (F == VT_FMT_NF4_DQ && vt_kdq_run16(g, R, k, k1)) {
                float sc[4][16];
                const uint8_t *qb[4];
                LOOP_R qb[i] = vt_kdq_next16(d, &g[i], sc[i]);
                for (int bl = 0; bl < 16; bl++, k += 64) {
                    LOOP_R {
                        q[i] = qb[i] + 32 * bl;
                        tb[i] = _mm512_mul_ps(lut, _mm512_set1_ps(sc[i][bl]));
                        PF(q[i]);
                    }
                    NF4_STEP();
                }
                continue;
            }
            LOOP_R {
                float a;
                q[i] = vt_knf4_next(d, F == VT_FMT_NF4_DQ, &p[i], &g[i], &a);
                tb[i] = _mm512_mul_ps(lut, _mm512_set1_ps(a));
                PF(q[i]);
            }
            NF4_STEP();
            k += 64;
        }
        break;
#undef NF4_STEP
    }
    case VT_FMT_Q8_0: /* 34-byte blocks: f16 d, 32 int8 */
        for (; k + 32 <= k1; k += 32) {
            LOOP_R {
                PF(p[i]);
                __m512 s = _mm512_set1_ps(ldh(p[i]));
                v0[i] = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(
                                          _mm_loadu_si128((const __m128i *)(p[i] + 2)))),
                                      s);
                v1[i] = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(
                                          _mm_loadu_si128((const __m128i *)(p[i] + 18)))),
                                      s);
                p[i] += 34;
            }
            DOT32(k);
        }
        break;
    case VT_FMT_INT8: /* 68-byte blocks: f32 scale, 64 int8 */
        for (; k + 64 <= k1; k += 64) {
            __m512 s[4];
            LOOP_R {
                PF(p[i]);
                PF(p[i] + 64);
                s[i] = _mm512_set1_ps(ldf(p[i]));
            }
            for (int h = 0; h < 2; h++) {
                LOOP_R {
                    const uint8_t *q = p[i] + 4 + 32 * h;
                    v0[i] = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(
                                              _mm_loadu_si128((const __m128i *)q))),
                                          s[i]);
                    v1[i] = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(
                                              _mm_loadu_si128((const __m128i *)(q + 16)))),
                                          s[i]);
                }
                DOT32(k + 32 * h);
            }
            LOOP_R p[i] += 68;
        }
        break;
    case VT_FMT_MXFP4: {
        const __m512 lut = _mm512_loadu_ps(e2m1_tab);
        for (; k + 32 <= k1; k += 32) {
            LOOP_R {
                PF(p[i]);
                LUT16(i, p[i] + 1, _mm512_mul_ps(lut, _mm512_set1_ps(vt_ke8m0_f32[p[i][0]])));
                p[i] += 17;
            }
            DOT32(k);
        }
        break;
    }
    case VT_FMT_NVFP4: { /* two 16-element blocks per group: lanes 0-7 the first, 8-15 the second */
        const __m512 lut = _mm512_loadu_ps(e2m1_tab);
        for (; k + 32 <= k1; k += 32) {
            LOOP_R {
                const uint8_t *q = p[i];
                PF(q);
                __m128i qb = _mm_unpacklo_epi64(_mm_loadl_epi64((const __m128i *)(q + 1)),
                                                _mm_loadl_epi64((const __m128i *)(q + 10)));
                __m512i c = _mm512_cvtepu8_epi32(qb);
                __m512 s = _mm512_mask_mov_ps(_mm512_set1_ps(vt_ke4m3_f32[q[0]]), 0xff00,
                                              _mm512_set1_ps(vt_ke4m3_f32[q[9]]));
                v0[i] = _mm512_mul_ps(_mm512_permutexvar_ps(c, lut), s);
                v1[i] = _mm512_mul_ps(_mm512_permutexvar_ps(_mm512_srli_epi32(c, 4), lut), s);
                p[i] += 18;
            }
            DOT32(k);
        }
        break;
    }
    case VT_FMT_AWQ_INT4: /* values d*q - d*z against x/s (prepared) */
        for (; k + 128 <= k1; k += 128) {
            __m512 tb[4];
            LOOP_R {
                const float dd = ldh(p[i]);
                tb[i] = _mm512_fmsub_ps(i16, _mm512_set1_ps(dd), _mm512_set1_ps(dd * p[i][2]));
            }
            for (int h = 0; h < 4; h++) {
                LOOP_R {
                    PF(p[i] + 16 * h);
                    LUT16(i, p[i] + 4 + 16 * h, tb[i]);
                }
                DOT32(k + 32 * h);
            }
            LOOP_R p[i] += 68;
        }
        break;
    case VT_FMT_Q4_K: /* per 64: low nibbles of 32 bytes, then high; d*sc*q - dmin*m */
        for (; k + 256 <= k1; k += 256) {
            float sm[4][16];
            LOOP_R q4k_scales(p[i], sm[i]);
            for (int j = 0; j < 4; j++) {
                __m512i c0[4], c1[4];
                LOOP_R {
                    const uint8_t *q = p[i] + 16 + 32 * j;
                    const float *f = sm[i] + 4 * j;
                    PF(q);
                    __m512 t = _mm512_fmsub_ps(i16, _mm512_set1_ps(f[0]), _mm512_set1_ps(f[1]));
                    c0[i] = codes16(q);
                    c1[i] = codes16(q + 16);
                    v0[i] = _mm512_permutexvar_ps(c0[i], t);
                    v1[i] = _mm512_permutexvar_ps(c1[i], t);
                }
                DOT32(k + 64 * j);
                LOOP_R {
                    const float *f = sm[i] + 4 * j;
                    __m512 t = _mm512_fmsub_ps(i16, _mm512_set1_ps(f[2]), _mm512_set1_ps(f[3]));
                    v0[i] = _mm512_permutexvar_ps(_mm512_srli_epi32(c0[i], 4), t);
                    v1[i] = _mm512_permutexvar_ps(_mm512_srli_epi32(c1[i], 4), t);
                }
                DOT32(k + 64 * j + 32);
            }
            LOOP_R p[i] += 144;
        }
        break;
    case VT_FMT_Q6_K: { /* per 128: 6-bit q = ql nibble | 2 qh bits << 4, d*sc*(q - 32), 16 wide */
        for (; k + 256 <= k1; k += 256) {
            float sc[4][16]; /* d * scale of the 16 sub-blocks of 16 */
            LOOP_R {
                __m512 f = _mm512_cvtepi32_ps(
                    _mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(p[i] + 192))));
                _mm512_storeu_ps(sc[i], _mm512_mul_ps(f, _mm512_set1_ps(ldh(p[i] + 208))));
            }
            for (int n = 0; n < 2; n++) { /* halves of 128 */
                /* each row's 128 values, decoded 16 at a time as in fused_b1 and staged in L1:
                 * decoding per 32-column group would load and mask every code byte twice */
                float vb[4][128] __attribute__((aligned(64)));
                LOOP_R _Pragma("GCC unroll 2") for (int h = 0; h < 2; h++) {
                    const uint8_t *ql = p[i] + 64 * n + 16 * h, *qh = p[i] + 128 + 32 * n + 16 * h;
                    PF(ql);
                    PF(qh);
                    __m512i q[4];
                    q6k_codes(ql, qh, q);
                    _Pragma("GCC unroll 4") for (int m = 0; m < 4; m++) {
                        const float sm = sc[i][8 * n + 2 * m + h]; /* d * scale, times q - 32 */
                        _mm512_store_ps(vb[i] + 32 * m + 16 * h,
                                        _mm512_fmsub_ps(_mm512_cvtepi32_ps(q[m]),
                                                        _mm512_set1_ps(sm),
                                                        _mm512_set1_ps(32 * sm)));
                    }
                }
                for (int m = 0; m < 4; m++) { /* 32 columns k + 128n + 32m */
                    LOOP_R {
                        v0[i] = _mm512_load_ps(vb[i] + 32 * m);
                        v1[i] = _mm512_load_ps(vb[i] + 32 * m + 16);
                    }
                    DOT32(k + 128 * n + 32 * m);
                }
            }
            LOOP_R p[i] += 210;
        }
        break;
    }
    default:
        return 0;
    }
    LOOP_R LOOP_B am[i][b] = _mm512_add_ps(acc[i][b], acc2[i][b]);
    return k;
}

/* return CALL(F) for d's format as the constant F (one inlined kernel per format) */
#define FMT_SWITCH(CALL)                                                                           \
    switch (d->fmt) {                                                                              \
    case VT_FMT_Q4_0:                                                                              \
        return CALL(VT_FMT_Q4_0);                                                                  \
    case VT_FMT_Q4_1:                                                                              \
        return CALL(VT_FMT_Q4_1);                                                                  \
    case VT_FMT_NF4:                                                                               \
        return CALL(VT_FMT_NF4);                                                                   \
    case VT_FMT_NF4_DQ:                                                                            \
        return CALL(VT_FMT_NF4_DQ);                                                                \
    case VT_FMT_MXFP4:                                                                             \
        return CALL(VT_FMT_MXFP4);                                                                 \
    case VT_FMT_NVFP4:                                                                             \
        return CALL(VT_FMT_NVFP4);                                                                 \
    case VT_FMT_AWQ_INT4:                                                                          \
        return CALL(VT_FMT_AWQ_INT4);                                                              \
    case VT_FMT_Q4_K:                                                                              \
        return CALL(VT_FMT_Q4_K);                                                                  \
    case VT_FMT_Q6_K:                                                                              \
        return CALL(VT_FMT_Q6_K);                                                                  \
    case VT_FMT_Q8_0:                                                                              \
        return CALL(VT_FMT_Q8_0);                                                                  \
    case VT_FMT_INT8:                                                                              \
        return CALL(VT_FMT_INT8);                                                                  \
    default:                                                                                       \
        return 0;                                                                                  \
    }
#define CALL_B1(F) fused_b1(d, r0, R_, 1, F, x, out, 1)
#define CALL_BN(F) fused(d, r0, R_, B_, F, x, k0, k1, pfd, am)

/* Batch 1, R rows. */
#define SHAPE_B1(name, R)                                                                          \
    A512 static uint64_t name(const vt_kdesc *d, uint64_t r0, const float *x, float *out) {        \
        enum { R_ = R };                                                                           \
        FMT_SWITCH(CALL_B1)                                                                        \
    }
SHAPE_B1(r4b1, 4)
SHAPE_B1(r1b1, 1)
/* q6_k at batch 2: fused_b1's decoding, one row and both vectors at a time, measured faster
 * (4.6 against 5.9 ms on one thread, 16384 x 4096) than fused()'s, whose values go through an L1
 * buffer. */
A512 static uint64_t q6k_r1b2(const vt_kdesc *d, uint64_t r0, const float *x, float *out) {
    return fused_b1(d, r0, 1, 2, VT_FMT_Q6_K, x, out, 2);
}

typedef uint64_t (*shape_fn)(const vt_kdesc *d, uint64_t r0, const float *x, uint64_t k0,
                             uint64_t k1, uint64_t pfd, __m512 (*am)[VT_GEMV_MAX_BATCH]);
/* Batches: one instance per rows x vectors shape, R * B accumulators, 2R value vectors and the
 * x temporaries within the 32 registers. */
#define SHAPE(name, R, B)                                                                          \
    A512 static uint64_t name(const vt_kdesc *d, uint64_t r0, const float *x, uint64_t k0,         \
                              uint64_t k1, uint64_t pfd, __m512(*am)[VT_GEMV_MAX_BATCH]) {         \
        enum { R_ = R, B_ = B };                                                                   \
        FMT_SWITCH(CALL_BN)                                                                        \
    }
SHAPE(r4b2, 4, 2)
SHAPE(r1b2, 1, 2)
SHAPE(r4b3, 4, 3)
SHAPE(r1b3, 1, 3)
SHAPE(r4b4, 4, 4)
SHAPE(r1b4, 1, 4)
SHAPE(r2b6, 2, 6)
SHAPE(r1b6, 1, 6)
SHAPE(r2b8, 2, 8)
SHAPE(r1b8, 1, 8)

A512 uint64_t vt_kfused_rows512(const vt_kdesc *d, uint64_t r0, int nr, const vt_kx *px,
                                float *out) {
    static const struct {
        int R;
        shape_fn many, one;
    } shapes[VT_GEMV_MAX_BATCH + 1] = {
        [2] = {4, r4b2, r1b2}, [3] = {4, r4b3, r1b3}, [4] = {4, r4b4, r1b4},
        [6] = {2, r2b6, r1b6}, [8] = {2, r2b8, r1b8},
    };
    const int B = px->npad, nb = px->batch;
    if (d->sparse || B < 1 || B > VT_GEMV_MAX_BATCH || (B > 1 && !shapes[B].R))
        return 0; /* an unprepared odd batch: the caller decodes */
    uint64_t kf = 0;
    int i = 0;
    if (px->xq) return rows_xi512(d, r0, nr, px, out);
    if (B == 1) {
        for (; i + 4 <= nr; i += 4) kf = r4b1(d, r0 + i, px->x, out + i);
        for (; i < nr; i++) kf = r1b1(d, r0 + i, px->x, out + i);
        return kf;
    }
    if (B == 2 && nb == 2 && d->fmt == VT_FMT_Q6_K) {
        for (; i < nr; i++) kf = q6k_r1b2(d, r0 + i, px->x, out + 2 * i);
        return kf;
    }
    /* Batches: the columns in chunks whose x (B vectors, 32 KiB) stays in L1 while every row group
     * of the nr rows passes over it (at batch 8, 10% less time than whole rows, x then coming
     * from L2); each row prefetches what the row nr rows on (the caller's next call) reads at the
     * same column. */
    const int R = shapes[B].R;
    const uint64_t cols = d->cols;
    const uint64_t ck = 32768 / 4 / (uint64_t)B / 256 * 256; /* 4096 at batch 2, 1024 at 8 */
    const uint64_t rb = d->row_bytes ? d->row_bytes : d->bpr * sizeof(vt_block_nf4_dq) / 256;
    const uint64_t pfd = (uint64_t)nr * rb;
    __m512 am[VT_KFUSE_ROWS][VT_GEMV_MAX_BATCH];
    for (i = 0; i < nr; i++)
        for (int b = 0; b < B; b++) am[i][b] = _mm512_setzero_ps();
    for (uint64_t k0 = 0; k0 < cols; k0 += ck) {
        const uint64_t k1 = cols - k0 < ck ? cols : k0 + ck;
        for (i = 0; i + R <= nr; i += R) kf = shapes[B].many(d, r0 + i, px->x, k0, k1, pfd, am + i);
        for (; i < nr; i++) kf = shapes[B].one(d, r0 + i, px->x, k0, k1, pfd, am + i);
        if (kf < k1) break; /* a ragged tail the caller decodes */
    }
    const float ts = d->fmt == VT_FMT_NVFP4 ? d->tensor_scale : 1.0f; /* nvfp4: applied here */
    for (i = 0; i < nr; i++)
        for (int b = 0; b < nb; b++) out[i * nb + b] = ts * _mm512_reduce_add_ps(am[i][b]);
    return kf;
}
#else
int vt_kxi_fmt512(uint32_t f) {
    return 0;
}
int vt_kfused_prep512(const vt_kdesc *d, const float *x, int batch, vt_kx *px) {
    *px = (vt_kx){.x = x, .batch = batch, .npad = batch, .mem = NULL};
    return 0;
}
uint64_t vt_kfused_rows512(const vt_kdesc *d, uint64_t r0, int nr, const vt_kx *px, float *out) {
    return 0;
}
#endif
