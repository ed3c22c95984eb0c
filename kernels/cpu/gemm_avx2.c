/* kernels/cpu/gemm_avx2.c — the host GEMM's AVX2+FMA microkernel for CPUs without AVX-512: a
 * 6 x 16 tile of Y in 12 ymm accumulators, per k two packed-weight loads and 6 broadcasts of X
 * feeding 12 FMAs (15 of the 16 registers); one specialised copy per tile height. Also the 8 x 8
 * transpose that packs decoded weight rows. */
#include "gemm_cpu.h"

#if defined(__x86_64__)
#include <immintrin.h>

#define AVX    __attribute__((target("avx2,fma")))
#define INLINE static inline __attribute__((always_inline))

enum { MR = 6, NR = 16 };

AVX INLINE void ukern(const int mr, uint32_t kc, const float *xp, const float *wp, float *c,
                      uint32_t ldc, int acc) {
    __m256 a0[MR], a1[MR];
#pragma GCC unroll 6
    for (int i = 0; i < mr; i++) a0[i] = a1[i] = _mm256_setzero_ps();
#pragma GCC unroll 2
    for (uint32_t k = 0; k < kc; k++, xp += MR, wp += NR) {
        __m256 w0 = _mm256_loadu_ps(wp), w1 = _mm256_loadu_ps(wp + 8);
#pragma GCC unroll 6
        for (int i = 0; i < mr; i++) {
            __m256 x = _mm256_broadcast_ss(xp + i);
            a0[i] = _mm256_fmadd_ps(x, w0, a0[i]);
            a1[i] = _mm256_fmadd_ps(x, w1, a1[i]);
        }
    }
#pragma GCC unroll 6
    for (int i = 0; i < mr; i++) {
        float *ci = c + (uint64_t)i * ldc;
        if (acc) {
            a0[i] = _mm256_add_ps(a0[i], _mm256_loadu_ps(ci));
            a1[i] = _mm256_add_ps(a1[i], _mm256_loadu_ps(ci + 8));
        }
        _mm256_storeu_ps(ci, a0[i]);
        _mm256_storeu_ps(ci + 8, a1[i]);
    }
}

#define UK(m)                                                                                      \
    AVX static void uk##m(uint32_t kc, const float *xp, const float *wp, float *c, uint32_t ldc,   \
                          int acc) {                                                               \
        ukern(m, kc, xp, wp, c, ldc, acc);                                                         \
    }
/* clang-format off */
UK(1) UK(2) UK(3) UK(4) UK(5) UK(6)
#undef UK

typedef void (*uk_fn)(uint32_t, const float *, const float *, float *, uint32_t, int);
static const uk_fn uk_tab[MR + 1] = {NULL, uk1, uk2, uk3, uk4, uk5, uk6};
/* clang-format on */

static void ukern_avx2(int mr, uint32_t kc, const float *xp, const float *wp, float *c,
                       uint32_t ldc, int acc) {
    uk_tab[mr](kc, xp, wp, c, ldc, acc);
}

/* 8 rows of 8 values to 8 columns: unpack pairs, 64-bit shuffles, then swap 128-bit halves. */
AVX static void pack8(const float *rows, uint32_t kc, float *wp, uint32_t nr) {
    for (uint32_t k = 0; k < kc; k += 8) {
        __m256 r[8], t[8];
#pragma GCC unroll 16
        for (int i = 0; i < 8; i++) r[i] = _mm256_loadu_ps(rows + (uint64_t)i * VT_KC + k);
#pragma GCC unroll 16
        for (int i = 0; i < 8; i += 2) {
            t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
            t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
        }
#pragma GCC unroll 16
        for (int i = 0; i < 8; i += 4) {
            r[i] = _mm256_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(1, 0, 1, 0));
            r[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(3, 2, 3, 2));
            r[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(1, 0, 1, 0));
            r[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(3, 2, 3, 2));
        }
#pragma GCC unroll 16
        for (int j = 0; j < 4; j++) {
            t[j] = _mm256_permute2f128_ps(r[j], r[4 + j], 0x20);
            t[4 + j] = _mm256_permute2f128_ps(r[j], r[4 + j], 0x31);
        }
#pragma GCC unroll 16
        for (int i = 0; i < 8; i++) _mm256_storeu_ps(wp + (uint64_t)(k + i) * nr, t[i]);
    }
}

const vt_gemm_isa vt_gemm_isa_avx2 = {"avx2+fma 6x16", MR, NR, 8, ukern_avx2, pack8};
#endif
