/* kernels/cpu/gemv_fused.h — helpers shared by the fused GEMV kernels
 * (gemv_fused_avx512.c, gemv_fused_avx2x4.c); private to kernels/cpu, x86-64 only. */
#ifndef VT_GEMV_FUSED_H
#define VT_GEMV_FUSED_H

#if defined(__x86_64__)
#include <emmintrin.h>
#include <stdint.h>
#include <string.h>

#include "kern_internal.h"

/* nf4_dq: the super-block holding the tensor's 64-element block g; *j gets g's index in it. */
static inline const uint8_t *vt_kdq_super(const vt_kdesc *d, uint64_t g, uint32_t *j) {
    *j = (uint32_t)(g % 256);
    return d->data + g / 256 * sizeof(vt_block_nf4_dq);
}
/* nf4_dq: 1 when each of the R rows' next 16 blocks (from g[i]) lie in one super-block and 1024
 * columns remain from k, so their 16 scales can be converted together. */
static inline int vt_kdq_run16(const uint64_t *g, int R, uint64_t k, uint64_t cols) {
    int run = k + 1024 <= cols;
    for (int i = 0; i < R; i++) run = run && g[i] % 256 <= 240;
    return run;
}

/* The 6-bit scales and mins of the 8 sub-blocks of the q4_k block at p, as bytes sc0 m0 sc1 m1 ...
 * sc7 m7 (ggml's get_scale_min_k4 for all 8 at once, with llama.cpp's 32-bit masks; SSE2). */
static inline __m128i vt_kq4k_scale_bytes(const uint8_t *p) {
    uint32_t u[3];
    memcpy(u, p + 4, 12);
    uint64_t sc = (u[0] & 0x3f3f3f3fu) |
                  (uint64_t)((u[2] & 0x0f0f0f0fu) | (((u[0] >> 6) & 0x03030303u) << 4)) << 32;
    uint64_t mn = (u[1] & 0x3f3f3f3fu) |
                  (uint64_t)(((u[2] >> 4) & 0x0f0f0f0fu) | (((u[1] >> 6) & 0x03030303u) << 4))
                      << 32;
    return _mm_unpacklo_epi8(_mm_cvtsi64_si128((long long)sc), _mm_cvtsi64_si128((long long)mn));
}
#endif

#endif
