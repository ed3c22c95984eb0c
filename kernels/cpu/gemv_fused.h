/* kernels/cpu/gemv_fused.h — helpers shared by the fused GEMV kernels
 * (gemv_fused_avx512.c, gemv_fused_avx2x4.c): the x preparation builder, and x86-64 inline
 * helpers; private to kernels/cpu. */
#ifndef VT_GEMV_FUSED_H
#define VT_GEMV_FUSED_H

#include <stdint.h>
#include <string.h>

#include "kern_internal.h"

/* How vt_kx_build lays out x (flags). SPLIT: each whole group of g elements as its even elements
 * then its odd ones (with ODD_FIRST: odd then even). INTERLEAVE: the groups of all vectors side by
 * side, [cols/g][npad][g] (one stream, and no L1 set conflicts between vectors a power-of-two
 * stride apart), the ragged tail after them; else [npad][cols]. */
enum { VT_KX_SPLIT = 1, VT_KX_ODD_FIRST = 2, VT_KX_INTERLEAVE = 4 };
/* Build px for the kernels' preparations (gemv_fused.c): npad vectors of d->cols, vector v < batch
 * a copy of x[v] (awq_int4: divided by the channel scales d->aux), the rest zero, laid out as
 * @p how says with groups of g (<= 64) elements. Returns 0 or -ENOMEM. */
int vt_kx_build(const vt_kdesc *d, const float *x, int batch, int npad, int g, int how, vt_kx *px);

/* The integer kernels' x (px->xq, xs, n64; gemv_fused_avx2x4.c `fusedi`, gemv_fused_avx512.c
 * `fusedi512`): per vector b < batch and whole 64-column group G, codes rint(x VT_KXI_Q / amax_G)
 * (|code| <= 16384, each x off by at most amax_G / 32768) with scale xs = amax_G / VT_KXI_Q;
 * position t of G's 64 codes holds column 64 G + perm[t]. With VT_KXI_PAIRS, groups 2c and 2c + 1
 * alternate by 16 codes (so one 512-bit load holds 16 of each, for four 128-bit lanes of blocks);
 * a last odd group is stored as is. Returns 1 (nothing built: the f32 kernel) when an x is not
 * finite or a group's magnitude is below 2^-100 (its scale would lose precision), else 0 or
 * -ENOMEM; px->itab is left zero. */
#define VT_KXI_Q 16384.0
/* 1 when the AVX-512 / AVX2 kernel has an integer form for format fmt (the CPU allowing). */
int vt_kxi_fmt512(uint32_t fmt);
int vt_kxi_fmt_avx2(uint32_t fmt);
enum { VT_KXI_PAIRS = 1 };
int vt_kxi_build(const vt_kdesc *d, const float *x, int batch, const uint8_t *perm, int how,
                 vt_kx *px);

#if defined(__x86_64__)
#include <emmintrin.h>

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

/* nf4 (dq 0) and nf4_dq (dq 1): the next 64-element block of a row, whose cursor is *p (nf4: the
 * block's bytes) or *g (nf4_dq: its block index); returns the block's 32 code bytes, sets
 * *absmax and advances the cursor. */
static inline const uint8_t *vt_knf4_next(const vt_kdesc *d, int dq, const uint8_t **p, uint64_t *g,
                                          float *absmax) {
    if (!dq) {
        const uint8_t *b = *p;
        memcpy(absmax, b, 4);
        *p += 36;
        return b + 4;
    }
    uint32_t j;
    const uint8_t *sb = vt_kdq_super(d, (*g)++, &j);
    float a, m;
    memcpy(&a, sb, 4);
    memcpy(&m, sb + 4, 4);
    *absmax = a + m * (float)(int8_t)sb[8 + j];
    return sb + 264 + 32 * j;
}
/* nf4_dq: the absmax of the 16 blocks from *g (one super-block: vt_kdq_run16) into sc[0..16);
 * returns their code bytes (32 per block) and advances *g past them. */
static inline const uint8_t *vt_kdq_next16(const vt_kdesc *d, uint64_t *g, float *sc) {
    uint32_t j;
    const uint8_t *sb = vt_kdq_super(d, *g, &j);
    float a, m;
    memcpy(&a, sb, 4);
    memcpy(&m, sb + 4, 4);
    for (int b = 0; b < 16; b++) sc[b] = a + m * (float)(int8_t)sb[8 + j + b];
    *g += 16;
    return sb + 264 + 32 * j;
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
