/* kernels/cpu/gemm_avx512.c — the host GEMM's AVX-512F microkernel: a 14 x 32 tile of Y in 28
 * zmm accumulators (two vectors of 16 weight rows per X row), per k two packed-weight loads and
 * 14 broadcasts of X feeding 28 FMAs; 30 of the 32 registers. One specialised copy per tile
 * height (the M tail runs without padding). Also the 16 x 16 transpose that packs decoded
 * weight rows. AVX-512 is enabled per function, as in gemv_fused_avx512.c. */
#include "gemm_cpu.h"

#if defined(__x86_64__)
#include <immintrin.h>

#define A512   __attribute__((target("avx512f,avx2,fma,f16c")))
#define INLINE static inline __attribute__((always_inline))

enum { MR = 14, NR = 32 };

A512 INLINE void ukern(const int mr, uint32_t kc, const float *xp, const float *wp, float *c,
                       uint32_t ldc, int acc) {
    __m512 a0[MR], a1[MR];
#pragma GCC unroll 14
    for (int i = 0; i < mr; i++) a0[i] = a1[i] = _mm512_setzero_ps();
#pragma GCC unroll 2
    for (uint32_t k = 0; k < kc; k++, xp += MR, wp += NR) {
        __m512 w0 = _mm512_loadu_ps(wp), w1 = _mm512_loadu_ps(wp + 16);
#pragma GCC unroll 14
        for (int i = 0; i < mr; i++) {
            __m512 x = _mm512_set1_ps(xp[i]);
            a0[i] = _mm512_fmadd_ps(x, w0, a0[i]);
            a1[i] = _mm512_fmadd_ps(x, w1, a1[i]);
        }
    }
#pragma GCC unroll 14
    for (int i = 0; i < mr; i++) {
        float *ci = c + (uint64_t)i * ldc;
        if (acc) {
            a0[i] = _mm512_add_ps(a0[i], _mm512_loadu_ps(ci));
            a1[i] = _mm512_add_ps(a1[i], _mm512_loadu_ps(ci + 16));
        }
        _mm512_storeu_ps(ci, a0[i]);
        _mm512_storeu_ps(ci + 16, a1[i]);
    }
}

#define UK(m)                                                                                      \
    A512 static void uk##m(uint32_t kc, const float *xp, const float *wp, float *c, uint32_t ldc,  \
                           int acc) {                                                              \
        ukern(m, kc, xp, wp, c, ldc, acc);                                                         \
    }
/* clang-format off */
UK(1) UK(2) UK(3) UK(4) UK(5) UK(6) UK(7) UK(8) UK(9) UK(10) UK(11) UK(12) UK(13) UK(14)
#undef UK

typedef void (*uk_fn)(uint32_t, const float *, const float *, float *, uint32_t, int);
static const uk_fn uk_tab[MR + 1] = {NULL, uk1, uk2, uk3, uk4, uk5, uk6, uk7,
                                     uk8, uk9, uk10, uk11, uk12, uk13, uk14};
/* clang-format on */

static void ukern512(int mr, uint32_t kc, const float *xp, const float *wp, float *c, uint32_t ldc,
                     int acc) {
    uk_tab[mr](kc, xp, wp, c, ldc, acc);
}

/* 16 rows of 16 values to 16 columns: unpack pairs, then 64-bit, then 128-bit lanes twice. */
A512 static void pack16(const float *rows, uint32_t kc, float *wp, uint32_t nr) {
    for (uint32_t k = 0; k < kc; k += 16) {
        __m512 r[16], t[16];
#pragma GCC unroll 16
        for (int i = 0; i < 16; i++) r[i] = _mm512_loadu_ps(rows + (uint64_t)i * VT_KC + k);
#pragma GCC unroll 16
        for (int i = 0; i < 16; i += 2) {
            t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
            t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
        }
#pragma GCC unroll 16
        for (int i = 0; i < 16; i += 4) {
            r[i] = _mm512_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(1, 0, 1, 0));
            r[i + 1] = _mm512_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(3, 2, 3, 2));
            r[i + 2] = _mm512_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(1, 0, 1, 0));
            r[i + 3] = _mm512_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(3, 2, 3, 2));
        }
        /* r[4q + j] now holds column j + 4 * lane-block of rows 4q..4q+3, per 128-bit lane */
#pragma GCC unroll 16
        for (int h = 0; h < 16; h += 8)
#pragma GCC unroll 16
            for (int j = 0; j < 4; j++) {
                t[h + j] = _mm512_shuffle_f32x4(r[h + j], r[h + 4 + j], 0x88);
                t[h + 4 + j] = _mm512_shuffle_f32x4(r[h + j], r[h + 4 + j], 0xdd);
            }
#pragma GCC unroll 16
        for (int j = 0; j < 8; j++) {
            r[j] = _mm512_shuffle_f32x4(t[j], t[8 + j], 0x88);
            r[8 + j] = _mm512_shuffle_f32x4(t[j], t[8 + j], 0xdd);
        }
#pragma GCC unroll 16
        for (int i = 0; i < 16; i++) _mm512_storeu_ps(wp + (uint64_t)(k + i) * nr, r[i]);
    }
}

const vt_gemm_isa vt_gemm_isa_avx512 = {"avx512f 14x32", MR, NR, 16, ukern512, pack16};
#endif
