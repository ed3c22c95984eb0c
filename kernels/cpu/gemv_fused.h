/* kernels/cpu/gemv_fused.h — scalar helpers shared by the fused GEMV kernels
 * (gemv_fused_avx512.c, gemv_fused_avx2x4.c); private to kernels/cpu. */
#ifndef VT_GEMV_FUSED_H
#define VT_GEMV_FUSED_H

#include <stdint.h>
#include <string.h>

/* The 8 6-bit scales and 8 6-bit mins of the q4_k block at p (ggml's get_scale_min_k4 for all 8
 * sub-blocks at once, with llama.cpp's 32-bit masks): byte j of *sc / *mn is sub-block j's. */
static inline void vt_kq4k_unpack(const uint8_t *p, uint64_t *sc, uint64_t *mn) {
    uint32_t u[3];
    memcpy(u, p + 4, 12);
    *sc = (u[0] & 0x3f3f3f3fu) |
          (uint64_t)((u[2] & 0x0f0f0f0fu) | (((u[0] >> 6) & 0x03030303u) << 4)) << 32;
    *mn = (u[1] & 0x3f3f3f3fu) |
          (uint64_t)(((u[2] >> 4) & 0x0f0f0f0fu) | (((u[1] >> 6) & 0x03030303u) << 4)) << 32;
}

#endif
