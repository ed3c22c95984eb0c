/* kernels/cpu/gemv_fused_avx512.c — fused AVX-512 GEMV for the 4-bit formats (q4_0, q4_1, q4_k,
 * nf4, nf4_dq, mxfp4, nvfp4, awq_int4), q6_k and the 8-bit q8_0 and int8 (16 codes sign-extended
 * to int32 lanes and converted, no table). Per 16 code bytes: one widening load to 16 int32
 * lanes, and the low and high nibbles index a 16-entry f32 table with one vpermps each (vpermps
 * reads only the low 4 bits of an index, so the low nibble needs no mask). The nibble order of the
 * format is absorbed on the x side (even/odd lanes of x, built once per group and shared by every
 * row), so codes are never shuffled. Up to 4 rows run together to reuse x; block scales are
 * applied once per block (E4M3/E8M0 by table; f16 scales of 8 blocks converted together; q4_k's
 * scale and min folded into the value table); accumulation is f32. Each row prefetches what the
 * next row group will read (from DRAM the hardware prefetchers alone left the kernel at about
 * half the read bandwidth). Whole blocks only: the caller decodes a ragged tail. */
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

/* x lanes for group [k, k+32) of each batch vector: xa pairs with the low nibbles, xb with the
 * high ones. split: the nibbles of byte j are elements 2j and 2j+1 (else j and j+16); hi_even:
 * element 2j is the high nibble (nf4). rs: awq channel scales (x is divided by them) or NULL. */
A512 INLINE void load_x(const float *x, uint64_t cols, uint64_t k, int B, int split, int hi_even,
                        const float *rs, __m512 *xa, __m512 *xb) {
    const __m512i ie = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const __m512i io = _mm512_add_epi32(ie, _mm512_set1_epi32(1));
    __m512 s0 = _mm512_set1_ps(1.0f), s1 = s0;
    if (rs) {
        s0 = _mm512_loadu_ps(rs + k);
        s1 = _mm512_loadu_ps(rs + k + 16);
    }
#pragma GCC unroll 8
    for (int b = 0; b < B; b++) {
        __m512 x0 = _mm512_loadu_ps(x + (uint64_t)b * cols + k);
        __m512 x1 = _mm512_loadu_ps(x + (uint64_t)b * cols + k + 16);
        if (rs) {
            x0 = _mm512_div_ps(x0, s0);
            x1 = _mm512_div_ps(x1, s1);
        }
        if (!split) {
            xa[b] = x0;
            xb[b] = x1;
        } else {
            __m512 e = _mm512_permutex2var_ps(x0, ie, x1), o = _mm512_permutex2var_ps(x0, io, x1);
            xa[b] = hi_even ? o : e;
            xb[b] = hi_even ? e : o;
        }
    }
}

#define ZERO(T)                                                                                    \
    _Pragma("GCC unroll 4") for (int i = 0; i < R; i++)                                            \
        _Pragma("GCC unroll 8") for (int b = 0; b < B; b++) T[i][b] = _mm512_setzero_ps()

/* Rows r0..r0+R-1 against batch vectors x[0..B) (stride cols); out[i * ostride + b]. Returns
 * the columns covered. R, B, F are constants after inlining. */
A512 INLINE uint64_t fused(const vt_kdesc *d, uint64_t r0, const int R, const int B,
                           const uint32_t F, const float *x, float *out, int ostride) {
    const uint64_t cols = d->cols;
    const uint8_t *p[4];
    uint64_t g[4];
    /* Prefetch distance: the same column R rows on, i.e. the next row group, which the caller
     * runs next. */
    const uint64_t pfd = d->row_bytes ? (uint64_t)R * d->row_bytes /* nf4_dq: about R rows */
                                      : (uint64_t)R * d->bpr * sizeof(vt_block_nf4_dq) / 256;
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
        load_x(x, cols, k_, B, 0, 0, NULL, xa, xb);                                                \
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
            load_x(x, cols, k + 32 * h, B, 1, 1, NULL, xa, xb);                                    \
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
                for (int i = 0; i < R; i++) {
                    uint32_t j;
                    const uint8_t *sb = vt_kdq_super(d, g[i], &j);
                    __m512 v = _mm512_cvtepi32_ps(
                        _mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(sb + 8 + j))));
                    _mm512_storeu_ps(sc[i],
                                     _mm512_add_ps(_mm512_set1_ps(ldf(sb)),
                                                   _mm512_mul_ps(_mm512_set1_ps(ldf(sb + 4)), v)));
                    qb[i] = sb + 264 + 32 * j;
                    g[i] += 16;
                }
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
                if (F == VT_FMT_NF4) {
                    PF(p[i]);
                    s[i] = _mm512_set1_ps(ldf(p[i]));
                    q[i] = p[i] + 4;
                    p[i] += 36;
                } else {
                    uint32_t j;
                    const uint8_t *sb = vt_kdq_super(d, g[i], &j);
                    s[i] = _mm512_set1_ps(ldf(sb) + ldf(sb + 4) * (float)(int8_t)sb[8 + j]);
                    q[i] = sb + 264 + 32 * j;
                    PF(q[i]);
                    g[i]++;
                }
            }
            NF4_STEP();
            k += 64;
        }
        break;
#undef NF4_STEP
    }
    case VT_FMT_Q8_0: /* 34-byte blocks: f16 d, 32 int8 */
        for (; k + 32 <= cols; k += 32) {
            load_x(x, cols, k, B, 0, 0, NULL, xa, xb); /* x[k, k+16) and x[k+16, k+32) */
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
                load_x(x, cols, k + 32 * h, B, 0, 0, NULL, xa, xb);
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
            load_x(x, cols, k, B, 1, 0, NULL, xa, xb);
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
            load_x(x, cols, k, B, 1, 0, NULL, xa, xb);
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
                load_x(x, cols, k + 32 * h, B, 1, 0, d->aux, xa, xb);
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
                        xq[u][b] = _mm512_loadu_ps(x + (uint64_t)b * cols + k + 64 * j + 16 * u);
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
        const __m512i m15 = _mm512_set1_epi32(15), m48 = _mm512_set1_epi32(48);
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
                        for (int m = 0; m < 4; m++)
                            xq[m][b] = _mm512_loadu_ps(x + (uint64_t)b * cols + kx + 32 * m);
#pragma GCC unroll 4
                    for (int i = 0; i < R; i++) {
                        const uint8_t *ql = p[i] + 64 * n + 16 * h,
                                      *qh = p[i] + 128 + 32 * n + 16 * h;
                        PF(ql);
                        PF(qh);
                        __m512i l0 = codes16(ql), l1 = codes16(ql + 32), hb = codes16(qh);
                        __m512i q[4];
                        q[0] = _mm512_or_si512(_mm512_and_si512(l0, m15),
                                               _mm512_and_si512(_mm512_slli_epi32(hb, 4), m48));
                        q[1] = _mm512_or_si512(_mm512_and_si512(l1, m15),
                                               _mm512_and_si512(_mm512_slli_epi32(hb, 2), m48));
                        q[2] = _mm512_or_si512(_mm512_srli_epi32(l0, 4), _mm512_and_si512(hb, m48));
                        q[3] = _mm512_or_si512(_mm512_srli_epi32(l1, 4),
                                               _mm512_and_si512(_mm512_srli_epi32(hb, 2), m48));
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

#define FMT_CASES(R, B)                                                                            \
    switch (d->fmt) {                                                                              \
    case VT_FMT_Q4_0:                                                                              \
        return fused(d, r0, R, B, VT_FMT_Q4_0, x, out, ostride);                                   \
    case VT_FMT_Q4_1:                                                                              \
        return fused(d, r0, R, B, VT_FMT_Q4_1, x, out, ostride);                                   \
    case VT_FMT_NF4:                                                                               \
        return fused(d, r0, R, B, VT_FMT_NF4, x, out, ostride);                                    \
    case VT_FMT_NF4_DQ:                                                                            \
        return fused(d, r0, R, B, VT_FMT_NF4_DQ, x, out, ostride);                                 \
    case VT_FMT_MXFP4:                                                                             \
        return fused(d, r0, R, B, VT_FMT_MXFP4, x, out, ostride);                                  \
    case VT_FMT_NVFP4:                                                                             \
        return fused(d, r0, R, B, VT_FMT_NVFP4, x, out, ostride);                                  \
    case VT_FMT_AWQ_INT4:                                                                          \
        return fused(d, r0, R, B, VT_FMT_AWQ_INT4, x, out, ostride);                               \
    case VT_FMT_Q4_K:                                                                              \
        return fused(d, r0, R, B, VT_FMT_Q4_K, x, out, ostride);                                   \
    case VT_FMT_Q6_K:                                                                              \
        return fused(d, r0, R, B, VT_FMT_Q6_K, x, out, ostride);                                   \
    case VT_FMT_Q8_0:                                                                              \
        return fused(d, r0, R, B, VT_FMT_Q8_0, x, out, ostride);                                   \
    case VT_FMT_INT8:                                                                              \
        return fused(d, r0, R, B, VT_FMT_INT8, x, out, ostride);                                   \
    default:                                                                                       \
        return 0;                                                                                  \
    }

A512 static uint64_t rows4_b1(const vt_kdesc *d, uint64_t r0, const float *x, float *out,
                              int ostride){FMT_CASES(4, 1)} A512 static uint64_t
    rows1_b1(const vt_kdesc *d, uint64_t r0, const float *x, float *out,
             int ostride){FMT_CASES(1, 1)} A512 static uint64_t
    rows1_b2(const vt_kdesc *d, uint64_t r0, const float *x, float *out,
             int ostride){FMT_CASES(1, 2)} A512 static uint64_t
    rows1_b4(const vt_kdesc *d, uint64_t r0, const float *x, float *out,
             int ostride){FMT_CASES(1, 4)}

uint64_t vt_kfused_rows512(const vt_kdesc *d, uint64_t r0, int nr, const float *x, int batch,
                           float *out) {
    if (d->sparse) return 0;
    uint64_t kf = 0;
    if (batch == 1) {
        int i = 0;
        for (; i + 4 <= nr; i += 4) kf = rows4_b1(d, r0 + i, x, out + i, 1);
        for (; i < nr; i++) kf = rows1_b1(d, r0 + i, x, out + i, 1);
        return kf;
    }
    /* batch > 1: one row at a time, the batch in chunks of 4, 2, 1 (the row stays in L1) */
    for (int i = 0; i < nr; i++)
        for (int b = 0; b < batch;) {
            const float *xb = x + (uint64_t)b * d->cols;
            float *o = out + (uint64_t)i * batch + b;
            if (batch - b >= 4) {
                kf = rows1_b4(d, r0 + i, xb, o, 1);
                b += 4;
            } else if (batch - b >= 2) {
                kf = rows1_b2(d, r0 + i, xb, o, 1);
                b += 2;
            } else {
                kf = rows1_b1(d, r0 + i, xb, o, 1);
                b += 1;
            }
        }
    return kf;
}
#else
uint64_t vt_kfused_rows512(const vt_kdesc *d, uint64_t r0, int nr, const float *x, int batch,
                           float *out) {
    return 0;
}
#endif
