/* kernels/cpu/gemv_fused_avx2x4.c — fused AVX2/FMA GEMV, several rows per x load, for the
 * 4-bit formats (q4_0, q4_1, q4_k, nf4, nf4_dq, mxfp4, nvfp4, awq_int4), q6_k, q8_0 and int8
 * (the last three at batches 1, 2 and 4 per call; their batches 3-8 go in such chunks): the AVX2
 * sibling of
 * gemv_fused_avx512.c. Built for vector-op count, which bounds it (AMD Zen runs 4 vector ops a
 * cycle, converts and shifts on 2 of the pipes, FMAs on 2 others; 8 lanes per op here):
 * - linear codes (q4_0, q4_1, q4_k, awq): 8 code bytes widened to int32 lanes and converted; at
 *   batch 1 the whole byte c is converted, lo * xa + hi * xb = c * xa + (c & 0xf0) * (xb/16 - xa)
 *   (no shift); q4_0's -8 and the minimums go through x sums (q4_1, q4_k: once per 256 columns);
 * - nf4 and e2m1 (mxfp4, nvfp4): the nibbles of 16 code bytes index byte tables of the values'
 *   f32 bits (vpshufb), and unpacks assemble the floats: no convert (e2m1's low two bytes are 0);
 * - the nibble order is absorbed on the x side (permuted x, built once per group and shared by up
 *   to 8 rows); block scales applied once per block (q4_0/q4_1: 8 f16 scales gathered by blends
 *   for one convert; nf4_dq: 16 at once); batches 1 and 2 go 8 rows x 1 vector or 4 x 2 (q4_k
 *   also 4 and 8, as 2 x 4);
 * - batches 3-8 (rows_batch): each piece decoded once per row with its block scale folded in,
 *   then FMAed against every vector, x prepared once per call and kept in L1 by column chunks.
 * f32 accumulation. Whole blocks only: the caller decodes a ragged tail. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
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
AVX INLINE __m256i codes8s(const uint8_t *q) {
    return _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)q));
}
/* q4_k block at p: sc[j] = d * scale_j of the 8 sub-blocks (hi16: odd j also / 16, their codes
 * being taken as c & 0xf0); returns dmin * min_j as a vector over j. */
AVX INLINE __m256 q4k_scales(const uint8_t *p, int hi16, float *sc) {
    uint32_t dm; /* d, dmin */
    memcpy(&dm, p, 4);
    const __m128i deint = _mm_setr_epi8(0, 2, 4, 6, 8, 10, 12, 14, 1, 3, 5, 7, 9, 11, 13, 15);
    __m128i sm = _mm_shuffle_epi8(vt_kq4k_scale_bytes(p), deint); /* 8 scales, 8 mins */
    __m256 f = _mm256_cvtph_ps(_mm_set1_epi32((int)dm));          /* d dmin d dmin ... */
    const float o = hi16 ? 1.0f / 16 : 1.0f;
    __m256 dd = _mm256_mul_ps(_mm256_permute_ps(f, 0x00), _mm256_setr_ps(1, o, 1, o, 1, o, 1, o));
    _mm256_storeu_ps(sc, _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(sm)), dd));
    return _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_srli_si128(sm, 8))),
                         _mm256_permute_ps(f, 0x55));
}
/* The sums of x[g j .. g j + g) for j = 0..7 (g 16 or 32, a constant after inlining), as one
 * vector. */
AVX INLINE __m256 sums8(const float *x, const int g) {
    __m256 v[8];
    _Pragma("GCC unroll 8") for (int j = 0; j < 8; j++) {
        const float *y = x + g * j;
        v[j] = _mm256_add_ps(_mm256_loadu_ps(y), _mm256_loadu_ps(y + 8));
        if (g == 32)
            v[j] = _mm256_add_ps(v[j],
                                 _mm256_add_ps(_mm256_loadu_ps(y + 16), _mm256_loadu_ps(y + 24)));
    }
    __m256 a = _mm256_hadd_ps(_mm256_hadd_ps(v[0], v[1]), _mm256_hadd_ps(v[2], v[3]));
    __m256 b = _mm256_hadd_ps(_mm256_hadd_ps(v[4], v[5]), _mm256_hadd_ps(v[6], v[7]));
    return _mm256_add_ps(_mm256_permute2f128_ps(a, b, 0x20), _mm256_permute2f128_ps(a, b, 0x31));
}

/* 8 f16 block scales as f32: d of the 8 blocks -> out[0..8) (q4_0: 18-byte blocks, d at 0;
 * q4_1: 20-byte blocks, d and m at 0 and 2); returns q4_1's m of the 8 blocks. Block j's scale lies
 * in the 16 bytes at p + 16j (q4_1: p + 16j + 16 * (j >= 4)), at word j (q4_1: dword j % 4), so
 * four 32-byte loads and a few blends gather them for one convert (not a convert and broadcast per
 * block). Reads p[0..144) (q4_0: [0..128)), inside the 8 blocks. */
AVX INLINE __m256 scales8_f16(const uint8_t *p, int q1, float *out) {
    const __m256i *v = (const __m256i *)p;
    if (q1) {
        __m256i a = _mm256_blend_epi32(_mm256_loadu_si256(v), _mm256_loadu_si256(v + 1), 0x84);
        __m256i b = _mm256_blend_epi32(_mm256_loadu_si256((const __m256i *)(p + 80)),
                                       _mm256_loadu_si256((const __m256i *)(p + 112)), 0x84);
        __m256i w = _mm256_blend_epi32(a, _mm256_shuffle_epi32(b, 0xb1), 0x5a);
        /* dwords (d, m) of blocks 0 4 2 6 5 1 7 3 -> 0..7 -> d0..d3 m0..m3 | d4..d7 m4..m7 */
        w = _mm256_permutevar8x32_epi32(w, _mm256_setr_epi32(0, 5, 2, 7, 1, 4, 3, 6));
        w = _mm256_shuffle_epi8(w, _mm256_setr_epi8(0, 1, 4, 5, 8, 9, 12, 13, 2, 3, 6, 7, 10, 11,
                                                    14, 15, 0, 1, 4, 5, 8, 9, 12, 13, 2, 3, 6, 7,
                                                    10, 11, 14, 15));
        w = _mm256_permute4x64_epi64(w, 0xd8); /* d0..d7 | m0..m7 */
        _mm256_storeu_ps(out, _mm256_cvtph_ps(_mm256_castsi256_si128(w)));
        return _mm256_cvtph_ps(_mm256_extracti128_si256(w, 1));
    } else {
        __m256i a = _mm256_blend_epi16(_mm256_loadu_si256(v), _mm256_loadu_si256(v + 1), 0x0c);
        __m256i b = _mm256_blend_epi16(_mm256_loadu_si256(v + 2), _mm256_loadu_si256(v + 3), 0xc0);
        __m256i w = _mm256_blend_epi16(a, b, 0xf0);
        __m128i h =
            _mm_blend_epi16(_mm256_castsi256_si128(w), _mm256_extracti128_si256(w, 1), 0xaa);
        _mm256_storeu_ps(out, _mm256_cvtph_ps(h));
        return _mm256_setzero_ps();
    }
}

/* 16 code bytes (y: in both 128-bit lanes) -> 32 f32 values by byte table lookups (vpshufb), no
 * int->float convert: lane 0 of n gets the low nibbles, lane 1 the high ones; tables t[0..3] hold
 * byte 0..3 of each of the 16 values' f32 bits (tb == 2: only bytes 2 and 3, the low two being
 * zero, as for e2m1). f[v] holds, lanes 0-3, the low nibbles of bytes 4v..4v+3 and, lanes 4-7,
 * their high nibbles. */
AVX INLINE void lut_bytes(__m256i y, const __m256i *t, const int tb, __m256 *f) {
    const __m256i m = _mm256_set1_epi8(15);
    __m256i n = _mm256_and_si256(_mm256_blend_epi32(y, _mm256_srli_epi16(y, 4), 0xf0), m);
    __m256i b2 = _mm256_shuffle_epi8(t[2], n), b3 = _mm256_shuffle_epi8(t[3], n);
    __m256i h0 = _mm256_unpacklo_epi8(b2, b3), h1 = _mm256_unpackhi_epi8(b2, b3), l0, l1;
    if (tb == 2) {
        l0 = l1 = _mm256_setzero_si256();
    } else {
        __m256i b0 = _mm256_shuffle_epi8(t[0], n), b1 = _mm256_shuffle_epi8(t[1], n);
        l0 = _mm256_unpacklo_epi8(b0, b1);
        l1 = _mm256_unpackhi_epi8(b0, b1);
    }
    f[0] = _mm256_castsi256_ps(_mm256_unpacklo_epi16(l0, h0));
    f[1] = _mm256_castsi256_ps(_mm256_unpackhi_epi16(l0, h0));
    f[2] = _mm256_castsi256_ps(_mm256_unpacklo_epi16(l1, h1));
    f[3] = _mm256_castsi256_ps(_mm256_unpackhi_epi16(l1, h1));
}
/* 16 bytes at q in both lanes (a load-only broadcast) */
AVX INLINE __m256i bytes16x2(const uint8_t *q) {
    return _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)q));
}
/* 8 bytes at a then 8 at b, in both lanes: two load-only broadcasts and a blend (any pipe) */
AVX INLINE __m256i bytes8x2x2(const uint8_t *a, const uint8_t *b) {
    long long u, v;
    memcpy(&u, a, 8);
    memcpy(&v, b, 8);
    return _mm256_blend_epi32(_mm256_set1_epi64x(u), _mm256_set1_epi64x(v), 0xcc);
}
/* x[k..k+32) in lut_bytes order: element 2j in the low nibble of byte j (hi_even: the high). */
AVX INLINE void x_lut(const float *x, int hi_even, __m256 *xv) {
    const __m256i ix = hi_even ? _mm256_setr_epi32(1, 3, 5, 7, 0, 2, 4, 6)
                               : _mm256_setr_epi32(0, 2, 4, 6, 1, 3, 5, 7);
    _Pragma("GCC unroll 4") for (int v = 0; v < 4; v++) xv[v] =
        _mm256_permutevar8x32_ps(_mm256_loadu_ps(x + 8 * v), ix);
}
/* The byte tables of 16 f32 values (see lut_bytes). */
AVX INLINE void lut_tables(const float *vals, __m256i *t) {
    uint8_t b[4][16];
    for (int n = 0; n < 16; n++) {
        uint32_t u;
        memcpy(&u, vals + n, 4);
        for (int j = 0; j < 4; j++) b[j][n] = (uint8_t)(u >> 8 * j);
    }
    for (int j = 0; j < 4; j++)
        t[j] = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)b[j]));
}

/* nf4_dq: the absmax of the 16 blocks from *g (one super-block: vt_kdq_run16) into sc[0..16),
 * converted together; returns their codes (32 bytes per block) and advances *g past them. */
AVX INLINE const uint8_t *dq_run16(const vt_kdesc *d, uint64_t *g, float *sc) {
    uint32_t j;
    const uint8_t *sb = vt_kdq_super(d, *g, &j);
    const __m256 a = _mm256_set1_ps(ldf(sb)), m = _mm256_set1_ps(ldf(sb + 4));
    _Pragma("GCC unroll 2") for (int h = 0; h < 2; h++) {
        __m256i c = _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(sb + 8 + j + 8 * h)));
        _mm256_storeu_ps(sc + 8 * h, _mm256_fmadd_ps(m, _mm256_cvtepi32_ps(c), a));
    }
    *g += 16;
    return sb + 264 + 32 * j;
}

#define KB      4 /* batch vectors per call at most */
#define LOOP_R  _Pragma("GCC unroll 8") for (int i = 0; i < R; i++)
#define LOOP_B  _Pragma("GCC unroll 4") for (int b = 0; b < B; b++)
#define XB(off) (x + (uint64_t)b * cols + (off))
/* Prefetch of what the next row group reads at this point (see pfd in fused2). */
#define PF(a) _mm_prefetch((const char *)(a) + pfd, _MM_HINT_T0)

/* Rows r0..r0+R-1 against x[0..B) (stride cols); out[i * ostride + b]; returns the columns
 * covered. R, B, F are constants after inlining.
 * Linear codes (q4_0, q4_1, awq) multiply the whole code byte c: lo * xa + hi * xb =
 * c * xa + (c & 0xf0) * (xb / 16 - xa), the second factor built once per group on the x side:
 * per 8 bytes one widening, one mask, two converts, and no shift (shifts and converts share two
 * of the four vector pipes on AMD Zen; the mask runs on any). */
AVX INLINE uint64_t fused2(const vt_kdesc *d, uint64_t r0, const int R, const int B,
                           const uint32_t F, const float *x, float *out, int ostride) {
    const uint64_t cols = d->cols;
    const uint8_t *p[8];
    uint64_t g[8];
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
    const __m256i m240 = _mm256_set1_epi32(0xf0);
    const int w1 = B == 1; /* linear codes by whole byte (see above); batches amortize a shift */
    const __m256 c1_16 = _mm256_set1_ps(1.0f / 16);
    __m256 acc[8]; /* [R][B], R * B <= 8: small enough to live in registers */
    LOOP_R LOOP_B acc[i * B + b] = _mm256_setzero_ps();
    uint64_t k = 0;
    switch (F) {
    case VT_FMT_Q4_0:
    case VT_FMT_Q4_1: { /* byte j: element j (low) and j + 16 (high) */
        const int q1 = F == VT_FMT_Q4_1;
        const uint64_t bb = q1 ? 20 : 18;
        __m256 xa[2][KB], xd[2][KB], sx[KB];
/* x side of the block at column k_: xa, xd = xb / 16 - xa (w1) or xb, sx = sum (q4_0: -8 sum) */
#define Q4_X(k_, need_sx)                                                                          \
    LOOP_B {                                                                                       \
        _Pragma("GCC unroll 2") for (int h = 0; h < 2; h++) {                                      \
            xa[h][b] = _mm256_loadu_ps(XB((k_) + 8 * h));                                          \
            __m256 xb_ = _mm256_loadu_ps(XB((k_) + 16 + 8 * h));                                   \
            xd[h][b] = w1 ? _mm256_fmsub_ps(xb_, c1_16, xa[h][b]) : xb_;                           \
            if (need_sx)                                                                           \
                sx[b] = h ? _mm256_add_ps(sx[b], _mm256_add_ps(xa[h][b], xb_))                     \
                          : _mm256_add_ps(xa[h][b], xb_);                                          \
        }                                                                                          \
        if (!q1) sx[b] = _mm256_mul_ps(sx[b], _mm256_set1_ps(-8.0f));                              \
    }
/* One block of row i, codes at q_, scale S, q4_1 minimum M (when MT) */
#define Q4_BLOCK(i, q_, S, M, MT)                                                                  \
    do {                                                                                           \
        __m256i c0 = codes8(q_), c1 = codes8((q_) + 8);                                            \
        __m256 f0 = _mm256_cvtepi32_ps(w1 ? c0 : _mm256_and_si256(c0, m15));                       \
        __m256 f1 = _mm256_cvtepi32_ps(w1 ? c1 : _mm256_and_si256(c1, m15));                       \
        __m256 h0 =                                                                                \
            _mm256_cvtepi32_ps(w1 ? _mm256_and_si256(c0, m240) : _mm256_srli_epi32(c0, 4));        \
        __m256 h1 =                                                                                \
            _mm256_cvtepi32_ps(w1 ? _mm256_and_si256(c1, m240) : _mm256_srli_epi32(c1, 4));        \
        LOOP_B {                                                                                   \
            __m256 u = q1 ? _mm256_mul_ps(f0, xa[0][b]) : _mm256_fmadd_ps(f0, xa[0][b], sx[b]);    \
            u = _mm256_fmadd_ps(f1, xa[1][b], u);                                                  \
            u = _mm256_fmadd_ps(h0, xd[0][b], u);                                                  \
            u = _mm256_fmadd_ps(h1, xd[1][b], u);                                                  \
            acc[i * B + b] = _mm256_fmadd_ps(u, S, acc[i * B + b]);                                \
            if (q1 && (MT)) acc[i * B + b] = _mm256_fmadd_ps(sx[b], M, acc[i * B + b]);            \
        }                                                                                          \
    } while (0)
        for (; k + 256 <= cols; k += 256) { /* runs of 8 blocks: scales converted together */
            float sc[8][8], mm[8][8];
            __m256 xs[KB]; /* q4_1, w1: x sums of the 8 blocks, for the m terms of a whole run */
            if (q1 && w1) LOOP_B xs[b] = sums8(XB(k), 32);
            LOOP_R {
                __m256 m = scales8_f16(p[i], q1, sc[i]);
                if (q1 && w1) LOOP_B acc[i * B + b] = _mm256_fmadd_ps(m, xs[b], acc[i * B + b]);
                if (q1 && !w1) _mm256_storeu_ps(mm[i], m);
                _Pragma("GCC unroll 4") for (uint64_t o = 0; o < 8 * bb; o += 64) PF(p[i] + o);
                PF(p[i] + 8 * bb - 1);
            }
            for (int j = 0; j < 8; j++) {
                Q4_X(k + 32 * j, !q1 || !w1);
                LOOP_R Q4_BLOCK(i, p[i] + bb * j + 2 + 2 * q1, _mm256_broadcast_ss(&sc[i][j]),
                                _mm256_broadcast_ss(&mm[i][j]), !w1);
            }
            LOOP_R p[i] += 8 * bb;
        }
        for (; k + 32 <= cols; k += 32) {
            Q4_X(k, 1);
            LOOP_R {
                PF(p[i]);
                Q4_BLOCK(i, p[i] + 2 + 2 * q1, _mm256_set1_ps(ldh(p[i])),
                         _mm256_set1_ps(ldh(p[i] + 2)), 1);
                p[i] += bb;
            }
        }
#undef Q4_X
#undef Q4_BLOCK
        break;
    }
    case VT_FMT_NF4:
    case VT_FMT_NF4_DQ: { /* element 2j in the HIGH nibble of byte j */
        __m256i tab[4];
        lut_tables(vt_nf4_values, tab);
        const uint8_t *q[8];
        __m256 s[8];
/* One 64-element block of each row at column k: codes at q[i], scale s[i]. */
#define NF4_STEP()                                                                                 \
    do {                                                                                           \
        __m256 t[8];                                                                               \
        LOOP_R LOOP_B t[i * B + b] = _mm256_setzero_ps();                                          \
        _Pragma("GCC unroll 2") for (int h = 0; h < 2; h++) { /* 16 bytes = 32 elements */         \
            __m256 xv[KB][4];                                                                      \
            LOOP_B x_lut(XB(k + 32 * h), 1, xv[b]);                                                \
            LOOP_R {                                                                               \
                __m256 f[4];                                                                       \
                lut_bytes(bytes16x2(q[i] + 16 * h), tab, 4, f);                                    \
                LOOP_B _Pragma("GCC unroll 4") for (int v = 0; v < 4; v++) t[i * B + b] =          \
                    _mm256_fmadd_ps(f[v], xv[b][v], t[i * B + b]);                                 \
            }                                                                                      \
        }                                                                                          \
        LOOP_R LOOP_B acc[i * B + b] = _mm256_fmadd_ps(t[i * B + b], s[i], acc[i * B + b]);        \
    } while (0)
        while (k + 64 <= cols) {
            /* 16 blocks of each row in one super-block: their scales converted together */
            if (F == VT_FMT_NF4_DQ && vt_kdq_run16(g, R, k, cols)) {
                float sc[8][16];
                const uint8_t *qb[8];
                LOOP_R qb[i] = dq_run16(d, &g[i], sc[i]);
                for (int bl = 0; bl < 16; bl++, k += 64) {
                    LOOP_R {
                        q[i] = qb[i] + 32 * bl;
                        s[i] = _mm256_broadcast_ss(&sc[i][bl]);
                        PF(q[i]);
                    }
                    NF4_STEP();
                }
                continue;
            }
            LOOP_R {
                if (F == VT_FMT_NF4) {
                    PF(p[i]);
                    s[i] = _mm256_set1_ps(ldf(p[i]));
                    q[i] = p[i] + 4;
                    p[i] += 36;
                } else {
                    uint32_t j;
                    const uint8_t *sb = vt_kdq_super(d, g[i], &j);
                    s[i] = _mm256_set1_ps(ldf(sb) + ldf(sb + 4) * (float)(int8_t)sb[8 + j]);
                    q[i] = sb + 264 + 32 * j;
                    PF(q[i]);
                    g[i]++;
                }
            }
            NF4_STEP();
            k += 64;
        }
#undef NF4_STEP
        break;
    }
    case VT_FMT_MXFP4:
    case VT_FMT_NVFP4: { /* element 2j in the LOW nibble; nvfp4 blocks are 16 wide */
        __m256i tab[4];  /* e2m1's low two bytes are zero: only tab[2], tab[3] are used */
        lut_tables(e2m1_16, tab);
        for (; k + 32 <= cols; k += 32) {
            __m256 xv[KB][4];
            LOOP_B x_lut(XB(k), 0, xv[b]);
            LOOP_R {
                __m256 f[4];
                PF(p[i]);
                if (F == VT_FMT_MXFP4) {
                    lut_bytes(bytes16x2(p[i] + 1), tab, 2, f);
                    __m256 s = _mm256_broadcast_ss(&vt_ke8m0_f32[p[i][0]]);
                    LOOP_B {
                        __m256 u = _mm256_mul_ps(f[0], xv[b][0]);
                        _Pragma("GCC unroll 4") for (int v = 1; v < 4; v++) u =
                            _mm256_fmadd_ps(f[v], xv[b][v], u);
                        acc[i * B + b] = _mm256_fmadd_ps(u, s, acc[i * B + b]);
                    }
                    p[i] += 17;
                } else { /* codes of two blocks joined: f[0], f[1] the first, f[2], f[3] the second
                          */
                    lut_bytes(bytes8x2x2(p[i] + 1, p[i] + 10), tab, 2, f);
                    __m256 s0 = _mm256_broadcast_ss(&vt_ke4m3_f32[p[i][0]]);
                    __m256 s1 = _mm256_broadcast_ss(&vt_ke4m3_f32[p[i][9]]);
                    LOOP_B {
                        __m256 u0 = _mm256_fmadd_ps(f[1], xv[b][1], _mm256_mul_ps(f[0], xv[b][0]));
                        __m256 u1 = _mm256_fmadd_ps(f[3], xv[b][3], _mm256_mul_ps(f[2], xv[b][2]));
                        acc[i * B + b] =
                            _mm256_fmadd_ps(u1, s1, _mm256_fmadd_ps(u0, s0, acc[i * B + b]));
                    }
                    p[i] += 18;
                }
            }
        }
        break;
    }
    case VT_FMT_AWQ_INT4: /* d * (sum q x/s - z * sum x/s); element 2j in the LOW nibble; x is
                           * prepared (vt_kfused_prep_avx2) */
        for (; k + 128 <= cols; k += 128) {
            __m256 t[8], sx[KB];
            LOOP_R LOOP_B t[i * B + b] = _mm256_setzero_ps();
            LOOP_B sx[b] = _mm256_setzero_ps();
            for (int h = 0; h < 8; h++) {
                __m256 xe[KB], xd[KB];
                LOOP_B { /* prepared: x/s, each 16 as the 8 even elements then the 8 odd */
                    xe[b] = _mm256_loadu_ps(XB(k + 16 * h));
                    __m256 o = _mm256_loadu_ps(XB(k + 16 * h + 8));
                    sx[b] = _mm256_add_ps(sx[b], _mm256_add_ps(xe[b], o));
                    xd[b] = w1 ? _mm256_fmsub_ps(o, c1_16, xe[b]) : o;
                }
                LOOP_R {
                    if (h % 2 == 0) PF(p[i] + 8 * h);
                    __m256i c = codes8(p[i] + 4 + 8 * h);
                    __m256 vc = _mm256_cvtepi32_ps(w1 ? c : _mm256_and_si256(c, m15));
                    __m256 vh = _mm256_cvtepi32_ps(w1 ? _mm256_and_si256(c, m240)
                                                      : _mm256_srli_epi32(c, 4));
                    LOOP_B t[i * B + b] =
                        _mm256_fmadd_ps(vh, xd[b], _mm256_fmadd_ps(vc, xe[b], t[i * B + b]));
                }
            }
            LOOP_R {
                __m256 s = _mm256_set1_ps(ldh(p[i])), z = _mm256_set1_ps((float)p[i][2]);
                LOOP_B acc[i * B + b] =
                    _mm256_fmadd_ps(_mm256_fnmadd_ps(z, sx[b], t[i * B + b]), s, acc[i * B + b]);
                p[i] += 68;
            }
        }
        break;
    case VT_FMT_Q8_0:
    case VT_FMT_INT8: { /* q8_0: d (f16), 32 int8 codes; int8: d (f32), 64 codes */
        /* per 8 codes one sign-extending load, a convert and an FMA against x read from L1 (no
         * x work to share between the rows), the block scale once per block */
        const int i8 = F == VT_FMT_INT8;
        const uint64_t bb = i8 ? 68 : 34, qk = i8 ? 64 : 32;
        for (; k + qk <= cols; k += qk) {
            LOOP_R {
                const uint8_t *q = p[i] + (i8 ? 4 : 2);
                PF(p[i]);
                PF(p[i] + bb - 1);
                __m256 t[KB][2];
                LOOP_B t[b][0] = t[b][1] = _mm256_setzero_ps();
                _Pragma("GCC unroll 8") for (uint64_t v = 0; v < qk / 8; v++) {
                    const __m256 f = _mm256_cvtepi32_ps(codes8s(q + 8 * v));
                    LOOP_B t[b][v & 1] =
                        _mm256_fmadd_ps(f, _mm256_loadu_ps(XB(k + 8 * v)), t[b][v & 1]);
                }
                const __m256 dd = _mm256_set1_ps(i8 ? ldf(p[i]) : ldh(p[i]));
                LOOP_B acc[i * B + b] =
                    _mm256_fmadd_ps(_mm256_add_ps(t[b][0], t[b][1]), dd, acc[i * B + b]);
                p[i] += bb;
            }
        }
        break;
    }
    case VT_FMT_Q6_K: { /* per 128: q = ql nibble | 2 qh bits << 4, v = d sc_j (q - 32) */
        /* The codes of 32 columns are built at once by byte operations on 32-byte vectors and
         * stored, then widened 8 at a time from memory; the -32 goes in once per block through
         * the x sums of its 16 sub-blocks (d sc_j x -32 sum_j x), shared by the group's rows. */
        const __m256i b15 = _mm256_set1_epi8(15), b48 = _mm256_set1_epi8(48);
        for (; k + 256 <= cols; k += 256) {
            __m256 xs[KB][2]; /* -32 x the sums of x over sub-blocks 0-7, 8-15 */
            LOOP_B _Pragma("GCC unroll 2") for (int n = 0; n < 2; n++) xs[b][n] =
                _mm256_mul_ps(sums8(XB(k + 128 * n), 16), _mm256_set1_ps(-32.0f));
            _Pragma("GCC unroll 1") for (int i = 0; i < R; i++) {
                const uint8_t *q = p[i];
                __m256 ra[KB];
                LOOP_B ra[b] = acc[i * B + b];
                _Pragma("GCC unroll 4") for (int o = 0; o < 210; o += 64) PF(q + o);
                PF(q + 209);
                float sc[16]; /* d x the 16 sub-block scales */
                const __m256 dd = _mm256_set1_ps(ldh(q + 208));
                _Pragma("GCC unroll 2") for (int n = 0; n < 2; n++) {
                    const __m256 s8 =
                        _mm256_mul_ps(_mm256_cvtepi32_ps(codes8s(q + 192 + 8 * n)), dd);
                    _mm256_storeu_ps(sc + 8 * n, s8);
                    LOOP_B ra[b] = _mm256_fmadd_ps(s8, xs[b][n], ra[b]);
                }
                _Pragma("GCC unroll 2") for (int n = 0; n < 2; n++) { /* halves of 128 */
                    const __m256i a = _mm256_loadu_si256((const __m256i *)(q + 64 * n)),
                                  c = _mm256_loadu_si256((const __m256i *)(q + 64 * n + 32)),
                                  h = _mm256_loadu_si256((const __m256i *)(q + 128 + 32 * n));
                    /* cq[m]: the codes of columns 32m .. 32m + 31 of the half */
                    __m256i cq[4];
                    cq[0] = _mm256_or_si256(_mm256_and_si256(a, b15),
                                            _mm256_and_si256(_mm256_slli_epi16(h, 4), b48));
                    cq[1] = _mm256_or_si256(_mm256_and_si256(c, b15),
                                            _mm256_and_si256(_mm256_slli_epi16(h, 2), b48));
                    cq[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(a, 4), b15),
                                            _mm256_and_si256(h, b48));
                    cq[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(c, 4), b15),
                                            _mm256_and_si256(_mm256_srli_epi16(h, 2), b48));
                    _Pragma("GCC unroll 4") for (int m = 0; m < 4; m++)
                        _Pragma("GCC unroll 2") for (int e = 0; e < 2; e++) { /* sub-block */
                        const uint64_t kx = k + 128 * n + 32 * m + 16 * e;
                        const __m128i c16 =
                            e ? _mm256_extracti128_si256(cq[m], 1) : _mm256_castsi256_si128(cq[m]);
                        const __m256 f0 = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(c16));
                        const __m256 f1 =
                            _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_srli_si128(c16, 8)));
                        const __m256 sj = _mm256_broadcast_ss(&sc[8 * n + 2 * m + e]);
                        LOOP_B {
                            __m256 t = _mm256_fmadd_ps(f1, _mm256_loadu_ps(XB(kx + 8)),
                                                       _mm256_mul_ps(f0, _mm256_loadu_ps(XB(kx))));
                            ra[b] = _mm256_fmadd_ps(t, sj, ra[b]);
                        }
                    }
                }
                LOOP_B acc[i * B + b] = ra[b];
                p[i] += 210;
            }
        }
        break;
    }
    case VT_FMT_Q4_K: /* per 64: low nibbles of 32 bytes, then high; d*sc*q - dmin*m */
        for (; k + 256 <= cols; k += 256) {
            float sc[8][8], mv[8][8];
            if (w1) { /* minimums once per block: x sums of the 8 sub-blocks */
                __m256 xs[KB];
                LOOP_B xs[b] = sums8(XB(k), 32);
                LOOP_R {
                    __m256 mn = q4k_scales(p[i], 1, sc[i]);
                    LOOP_B acc[i * B + b] = _mm256_fnmadd_ps(mn, xs[b], acc[i * B + b]);
                }
            } else { /* batches: values d*sc*q - dmin*m built once per row, shared by the vectors */
                LOOP_R _mm256_storeu_ps(mv[i], q4k_scales(p[i], 0, sc[i]));
            }
            for (int j = 0; j < 4; j++) {
                LOOP_R {
                    if (!w1) {
                        const uint8_t *q = p[i] + 16 + 32 * j;
                        PF(q);
                        _Pragma("GCC unroll 4") for (int h = 0; h < 4; h++) { /* bytes 8h.. of 32 */
                            __m256i c = codes8(q + 8 * h);
                            __m256 vl =
                                _mm256_fmsub_ps(_mm256_broadcast_ss(&sc[i][2 * j]),
                                                _mm256_cvtepi32_ps(_mm256_and_si256(c, m15)),
                                                _mm256_broadcast_ss(&mv[i][2 * j]));
                            __m256 vh = _mm256_fmsub_ps(_mm256_broadcast_ss(&sc[i][2 * j + 1]),
                                                        _mm256_cvtepi32_ps(_mm256_srli_epi32(c, 4)),
                                                        _mm256_broadcast_ss(&mv[i][2 * j + 1]));
                            LOOP_B acc[i * B + b] = _mm256_fmadd_ps(
                                vh, _mm256_loadu_ps(XB(k + 64 * j + 32 + 8 * h)),
                                _mm256_fmadd_ps(vl, _mm256_loadu_ps(XB(k + 64 * j + 8 * h)),
                                                acc[i * B + b]));
                        }
                    } else {
                        const uint8_t *q = p[i] + 16 + 32 * j;
                        PF(q);
                        __m256 tl[KB], th[KB];
                        LOOP_B tl[b] = th[b] = _mm256_setzero_ps();
                        _Pragma("GCC unroll 4") for (int h = 0; h < 4; h++) { /* bytes 8h.. of 32 */
                            __m256i c = codes8(q + 8 * h);
                            __m256 vl = _mm256_cvtepi32_ps(_mm256_and_si256(c, m15));
                            __m256 vh = _mm256_cvtepi32_ps(_mm256_and_si256(c, m240));
                            LOOP_B {
                                tl[b] = _mm256_fmadd_ps(vl, _mm256_loadu_ps(XB(k + 64 * j + 8 * h)),
                                                        tl[b]);
                                th[b] = _mm256_fmadd_ps(
                                    vh, _mm256_loadu_ps(XB(k + 64 * j + 32 + 8 * h)), th[b]);
                            }
                        }
                        LOOP_B {
                            __m256 a = _mm256_fmadd_ps(tl[b], _mm256_broadcast_ss(&sc[i][2 * j]),
                                                       acc[i * B + b]);
                            acc[i * B + b] =
                                _mm256_fmadd_ps(th[b], _mm256_broadcast_ss(&sc[i][2 * j + 1]), a);
                        }
                    }
                }
            }
            LOOP_R p[i] += 144;
        }
        break;
    default:
        return 0;
    }
    const float ts = F == VT_FMT_NVFP4 ? d->tensor_scale : 1.0f; /* nvfp4: applied once here */
    LOOP_R LOOP_B { /* unrolled, so acc stays in registers */
        __m256 v = acc[i * B + b];
        __m128 s4 = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
        s4 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
        s4 = _mm_add_ss(s4, _mm_movehdup_ps(s4));
        out[i * ostride + b] = ts * _mm_cvtss_f32(s4);
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
    case VT_FMT_Q6_K:                                                                              \
        return fused2(d, r0, R, B, VT_FMT_Q6_K, x, out, ostride);                                  \
    case VT_FMT_Q8_0:                                                                              \
        return fused2(d, r0, R, B, VT_FMT_Q8_0, x, out, ostride);                                  \
    case VT_FMT_INT8:                                                                              \
        return fused2(d, r0, R, B, VT_FMT_INT8, x, out, ostride);                                  \
    default:                                                                                       \
        return 0;                                                                                  \
    }

/* One instance per rows x batch-vectors shape (R * B <= 8 accumulators). */
#define A2_SHAPE(name, R, B)                                                                       \
    AVX static uint64_t name(const vt_kdesc *d, uint64_t r0, const float *x, float *out,           \
                             int ostride) {                                                        \
        FMT_CASES2(R, B)                                                                           \
    }
A2_SHAPE(a2_r8b1, 8, 1)
A2_SHAPE(a2_r4b1, 4, 1)
A2_SHAPE(a2_r1b1, 1, 1)
A2_SHAPE(a2_r4b2, 4, 2)
A2_SHAPE(a2_r1b2, 1, 2)
A2_SHAPE(a2_r2b4, 2, 4)
A2_SHAPE(a2_r1b4, 1, 4)

/* ---- batches 3-8: each 32-weight piece decoded once, FMAed against every vector ---------------
 * x is prepared (vt_kfused_prep_avx2) interleaved, [cols/G][B][G]: G = 32 in natural order for
 * q4_0, q4_1, q4_k; G = 16 as 8 even then 8 odd elements for the formats whose bytes hold
 * neighbours (nf4, nf4_dq, mxfp4, nvfp4, awq_int4; awq's x also divided by the channel scales).
 * Eight codes (one byte each) give two slices of 8 values, low and high nibbles, each used for
 * every vector at once: B accumulators, the values and a few constants stay in the 16 ymm
 * registers (one row per call; the rows of a group share x through L1, in column chunks). Block
 * scales are folded into the values: linear codes as c * S + O (one FMA per 8 values), table
 * formats by a table scaled once per block (two vpermps and a blend per 8 values). */

/* Slice s (0..3, 8 values) of the 32 columns at col, vector b: natural or even/odd per 16. */
#define XS(b, col, s)                                                                              \
    _mm256_loadu_ps(SP ? x + ((col) + 16 * ((s) >> 1)) * (uint64_t)B + 16 * (b) + 8 * ((s)&1)      \
                       : x + (col) * (uint64_t)B + 32 * (b) + 8 * (s))
#define FMA_SLICE(val, col, s)                                                                     \
    _Pragma("GCC unroll 8") for (int b = 0; b < B; b++) acc[(s) % NA * B + b] =                    \
        _mm256_fmadd_ps(val, XS(b, col, s), acc[(s) % NA * B + b])

/* Values of 8 codes (int32 lanes, 0..15) from the table tl (codes 0-7), th (8-15). */
AVX INLINE __m256 lut8(__m256i n, __m256 tl, __m256 th) {
    return _mm256_blendv_ps(_mm256_permutevar8x32_ps(tl, n), _mm256_permutevar8x32_ps(th, n),
                            _mm256_castsi256_ps(_mm256_slli_epi32(n, 28)));
}

/* Row r, whole blocks of columns [k0, k1) (multiples of the block size), against B prepared
 * vectors; adds to accm[0..B) (8 lanes each). B and F are constants after inlining. */
AVX INLINE void fusedb(const vt_kdesc *d, uint64_t r, uint64_t k0, uint64_t k1, const int B,
                       const uint32_t F, const float *x, float *accm, uint64_t pfd) {
    const int SP = !(F == VT_FMT_Q4_0 || F == VT_FMT_Q4_1 || F == VT_FMT_Q4_K);
    const __m256i m15 = _mm256_set1_epi32(15);
    /* NA sets of B accumulators (slice s into set s % NA): enough independent FMA chains to hide
     * the FMA latency (4 cycles, 2 a cycle); with one set, batches 2-4 took the same time, bound
     * by the chains */
    const int NA = B <= 4 ? 2 : 1;
    __m256 acc[8];
    _Pragma("GCC unroll 8") for (int a = 0; a < NA * B; a++) acc[a] =
        a < B ? _mm256_loadu_ps(accm + 8 * a) : _mm256_setzero_ps();
    const uint8_t *p = d->data + r * d->row_bytes;
    switch (F) {
    case VT_FMT_Q4_0:
    case VT_FMT_Q4_1: { /* byte j: element j (low) and j + 16 (high) */
        const int q1 = F == VT_FMT_Q4_1;
        const uint64_t bb = q1 ? 20 : 18;
        p += k0 / 32 * bb;
        for (uint64_t k = k0; k < k1; k += 32, p += bb) {
            PF(p);
            const float dd = ldh(p);
            const __m256 S = _mm256_set1_ps(dd), O = _mm256_set1_ps(q1 ? ldh(p + 2) : -8.0f * dd);
            _Pragma("GCC unroll 2") for (int h = 0; h < 2; h++) {
                __m256i c = codes8(p + 2 + 2 * q1 + 8 * h);
                __m256 lo = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_and_si256(c, m15)), S, O);
                FMA_SLICE(lo, k, h);
                __m256 hi = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_srli_epi32(c, 4)), S, O);
                FMA_SLICE(hi, k, 2 + h);
            }
        }
        break;
    }
    case VT_FMT_Q4_K: /* per 64: low nibbles of 32 bytes (sub-block 2j), then high (2j + 1) */
        p += k0 / 256 * 144;
        for (uint64_t k = k0; k < k1; k += 256, p += 144) {
            float sc[8], mv[8];
            _Pragma("GCC unroll 3") for (int o = 0; o < 144; o += 64) PF(p + o);
            PF(p + 143);
            _mm256_storeu_ps(mv, q4k_scales(p, 0, sc));
            for (int j = 0; j < 4; j++) {
                const __m256 Sl = _mm256_broadcast_ss(&sc[2 * j]),
                             Sh = _mm256_broadcast_ss(&sc[2 * j + 1]);
                const __m256 Ol = _mm256_set1_ps(-mv[2 * j]), Oh = _mm256_set1_ps(-mv[2 * j + 1]);
                _Pragma("GCC unroll 4") for (int h = 0; h < 4; h++) {
                    __m256i c = codes8(p + 16 + 32 * j + 8 * h);
                    __m256 lo =
                        _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_and_si256(c, m15)), Sl, Ol);
                    FMA_SLICE(lo, k + 64 * j, h);
                    __m256 hi =
                        _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_srli_epi32(c, 4)), Sh, Oh);
                    FMA_SLICE(hi, k + 64 * j + 32, h);
                }
            }
        }
        break;
    case VT_FMT_AWQ_INT4: /* d * (q - z) against x/s; element 2j in the LOW nibble */
        p += k0 / 128 * 68;
        for (uint64_t k = k0; k < k1; k += 128, p += 68) {
            PF(p);
            PF(p + 67);
            const float dd = ldh(p);
            const __m256 S = _mm256_set1_ps(dd), O = _mm256_set1_ps(-dd * (float)p[2]);
            _Pragma("GCC unroll 8") for (int h = 0; h < 8; h++) { /* 16 columns each */
                __m256i c = codes8(p + 4 + 8 * h);
                __m256 e = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_and_si256(c, m15)), S, O);
                FMA_SLICE(e, k + 32 * (h >> 1), 2 * (h & 1));
                __m256 o = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_srli_epi32(c, 4)), S, O);
                FMA_SLICE(o, k + 32 * (h >> 1), 2 * (h & 1) + 1);
            }
        }
        break;
    case VT_FMT_NF4:
    case VT_FMT_NF4_DQ: { /* element 2j in the HIGH nibble of byte j */
        const __m256 vl = _mm256_loadu_ps(vt_nf4_values), vh = _mm256_loadu_ps(vt_nf4_values + 8);
        uint64_t g = r * d->bpr + k0 / 64;
        p += k0 / 64 * 36;
        for (uint64_t k = k0; k < k1; k += 64) {
            float a;
            const uint8_t *q = vt_knf4_next(d, F == VT_FMT_NF4_DQ, &p, &g, &a);
            PF(q);
            const __m256 s = _mm256_set1_ps(a), tl = _mm256_mul_ps(vl, s),
                         th = _mm256_mul_ps(vh, s);
            _Pragma("GCC unroll 4") for (int h = 0; h < 4; h++) { /* 16 columns each */
                __m256i c = codes8(q + 8 * h);
                FMA_SLICE(lut8(_mm256_srli_epi32(c, 4), tl, th), k + 32 * (h >> 1), 2 * (h & 1));
                FMA_SLICE(lut8(_mm256_and_si256(c, m15), tl, th), k + 32 * (h >> 1),
                          2 * (h & 1) + 1);
            }
        }
        break;
    }
    case VT_FMT_MXFP4:
    case VT_FMT_NVFP4: { /* element 2j in the LOW nibble; nvfp4: 16-wide blocks, 9 bytes */
        const __m256 vl = _mm256_loadu_ps(e2m1_16), vh = _mm256_loadu_ps(e2m1_16 + 8);
        const int nv = F == VT_FMT_NVFP4;
        __m256 tl = vl, th = vh;
        p += k0 / 32 * (nv ? 18 : 17);
        for (uint64_t k = k0; k < k1; k += 32, p += nv ? 18 : 17) {
            PF(p);
            _Pragma("GCC unroll 2") for (int h = 0; h < 2; h++) { /* 16 columns each */
                const uint8_t *q = nv ? p + 9 * h : p;
                if (nv || h == 0) {
                    const __m256 s =
                        _mm256_broadcast_ss(nv ? &vt_ke4m3_f32[q[0]] : &vt_ke8m0_f32[q[0]]);
                    tl = _mm256_mul_ps(vl, s);
                    th = _mm256_mul_ps(vh, s);
                }
                __m256i c = codes8(q + 1 + (nv ? 0 : 8 * h));
                FMA_SLICE(lut8(_mm256_and_si256(c, m15), tl, th), k, 2 * h);
                FMA_SLICE(lut8(_mm256_srli_epi32(c, 4), tl, th), k, 2 * h + 1);
            }
        }
        break;
    }
    default:
        break;
    }
    _Pragma("GCC unroll 8") for (int a = B; a < NA * B; a++) acc[a % B] =
        _mm256_add_ps(acc[a % B], acc[a]);
    _Pragma("GCC unroll 8") for (int b = 0; b < B; b++) _mm256_storeu_ps(accm + 8 * b, acc[b]);
}
#undef XS
#undef FMA_SLICE

/* Block size of the batch kernel's formats (0: not one). */
static uint64_t fb_block(uint32_t fmt) {
    switch (fmt) {
    case VT_FMT_Q4_0:
    case VT_FMT_Q4_1:
    case VT_FMT_MXFP4:
    case VT_FMT_NVFP4: /* two 16-blocks a step */
        return 32;
    case VT_FMT_NF4:
    case VT_FMT_NF4_DQ:
        return 64;
    case VT_FMT_AWQ_INT4:
        return 128;
    case VT_FMT_Q4_K:
        return 256;
    default:
        return 0;
    }
}

typedef void (*fb_fn)(const vt_kdesc *d, uint64_t r, uint64_t k0, uint64_t k1, const float *x,
                      float *accm, uint64_t pfd);
#define FB_INST(F, B)                                                                              \
    AVX static void fb_##F##_##B(const vt_kdesc *d, uint64_t r, uint64_t k0, uint64_t k1,          \
                                 const float *x, float *accm, uint64_t pfd) {                      \
        fusedb(d, r, k0, k1, B, VT_FMT_##F, x, accm, pfd);                                         \
    }
/* clang-format off: it reflows this macro differently on every pass */
#define FB_FMT(F)                                                                                  \
    FB_INST(F, 3)                                                                                  \
    FB_INST(F, 4)                                                                                  \
    FB_INST(F, 5)                                                                                  \
    FB_INST(F, 6)                                                                                  \
    FB_INST(F, 7)                                                                                  \
    FB_INST(F, 8)                                                                                  \
    static const fb_fn fb_##F[6] = {fb_##F##_3, fb_##F##_4, fb_##F##_5,                            \
                                    fb_##F##_6, fb_##F##_7, fb_##F##_8};
/* clang-format on */
FB_FMT(Q4_0)
FB_FMT(Q4_1)
FB_FMT(Q4_K)
FB_FMT(NF4)
FB_FMT(NF4_DQ)
FB_FMT(MXFP4)
FB_FMT(NVFP4)
FB_FMT(AWQ_INT4)

static fb_fn fb_get(uint32_t fmt, int batch) {
    const fb_fn *t = fmt == VT_FMT_Q4_0       ? fb_Q4_0
                     : fmt == VT_FMT_Q4_1     ? fb_Q4_1
                     : fmt == VT_FMT_Q4_K     ? fb_Q4_K
                     : fmt == VT_FMT_NF4      ? fb_NF4
                     : fmt == VT_FMT_NF4_DQ   ? fb_NF4_DQ
                     : fmt == VT_FMT_MXFP4    ? fb_MXFP4
                     : fmt == VT_FMT_NVFP4    ? fb_NVFP4
                     : fmt == VT_FMT_AWQ_INT4 ? fb_AWQ_INT4
                                              : NULL;
    /* q4_k at batches 4 and 8: the 2 rows x 4 vectors kernel measured faster (1.5 ms against 1.8
     * at batch 4, 2.9-3.0 against 3.0-3.1 at 8; one thread, 4096 x 4096) */
    if (fmt == VT_FMT_Q4_K && batch % 4 == 0) return NULL;
    return t && batch >= 3 && batch <= 8 ? t[batch - 3] : NULL;
}

/* Batches 2-8: rows r0..r0+nr-1 in column chunks whose x (B vectors) stays in L1, all rows of
 * the group per chunk. */
static uint64_t rows_batch(const vt_kdesc *d, uint64_t r0, int nr, const vt_kx *px, float *out) {
    const int B = px->batch;
    const fb_fn fn = fb_get(d->fmt, B);
    const uint64_t blk = fb_block(d->fmt);
    if (!fn || !blk || d->cols < blk) return 0;
    const uint64_t whole = d->cols / blk * blk;
    /* about 32 KiB of x, a multiple of every block size */
    const uint64_t ch = 8192 / (uint64_t)B / 256 * 256;
    /* prefetch distance: the same column nr rows on, i.e. the next row group (see fused2) */
    const uint64_t pfd = d->row_bytes ? (uint64_t)nr * d->row_bytes
                                      : (uint64_t)nr * d->bpr * sizeof(vt_block_nf4_dq) / 256;
    float accm[VT_KFUSE_ROWS][8 * 8] = {{0}};
    for (uint64_t k0 = 0; k0 < whole; k0 += ch) {
        const uint64_t k1 = whole - k0 < ch ? whole : k0 + ch;
        for (int i = 0; i < nr; i++) fn(d, r0 + (uint64_t)i, k0, k1, px->x, accm[i], pfd);
    }
    const float ts = d->fmt == VT_FMT_NVFP4 ? d->tensor_scale : 1.0f;
    for (int i = 0; i < nr; i++)
        for (int b = 0; b < B; b++) {
            float s = 0;
            for (int l = 0; l < 8; l++) s += accm[i][8 * b + l];
            out[i * B + b] = ts * s;
        }
    return whole;
}

/* ---- batches 1-2 of nf4, nf4_dq, mxfp4, nvfp4 and q4_0: integer dots ---------------------------
 * The table formats above build each weight's f32 from four (e2m1: two) byte-table look-ups and
 * their unpacks, about 15 shuffle-class ops per 32 weights, which bound them (two shuffle pipes):
 * 40-47% of the read bandwidth on two Zen 5 threads. Here x is quantized once per call
 * (vt_kfused_prep_avx2: per 64-column group g, codes rint(x 16384 / amax_g), |code| <= 16384,
 * scale amax_g / 16384; every x off by at most amax_g / 32768) and the weights are int16 values
 * from two byte tables (low and high bytes): nf4 round(16383 v) (within 3.1e-5 of each level),
 * e2m1 twice the value, q4_0 c - 8 (exact; q4_0 joined the others as its f32 kernel, with
 * converts instead of look-ups, was 1.2-1.4x slower than this form). 16 code bytes give 32 int16 by
 * two look-ups and two unpacks, and vpmaddwd multiplies them with the x codes, 16 pairs per op: a
 * 64-column group of a row sums in int32 without overflow (8 products of at most 16383 x 16384 per
 * lane) and is converted once. The unpacks' order (per 16 columns the low nibbles' values, then the
 * high ones') is the x codes' order, so nothing is shuffled per row. */
int vt_kxi_fmt_avx2(uint32_t f) {
    return f == VT_FMT_NF4 || f == VT_FMT_NF4_DQ || f == VT_FMT_MXFP4 || f == VT_FMT_NVFP4 ||
           f == VT_FMT_Q4_0;
}

/* 32 code bytes y -> 64 int16 values of tables tl (low bytes) and th (high bytes): w[0] lane 0
 * the values of the low nibbles of bytes 0-7, lane 1 of bytes 16-23; w[1] bytes 8-15 and 24-31;
 * w[2], w[3] the same of the high nibbles. */
AVX INLINE void xi_vals32(__m256i y, __m256i tl, __m256i th, __m256i *w) {
    const __m256i m = _mm256_set1_epi8(15);
    __m256i n0 = _mm256_and_si256(y, m), n1 = _mm256_and_si256(_mm256_srli_epi16(y, 4), m);
    __m256i lo = _mm256_shuffle_epi8(tl, n0), hi = _mm256_shuffle_epi8(th, n0);
    w[0] = _mm256_unpacklo_epi8(lo, hi);
    w[1] = _mm256_unpackhi_epi8(lo, hi);
    lo = _mm256_shuffle_epi8(tl, n1);
    hi = _mm256_shuffle_epi8(th, n1);
    w[2] = _mm256_unpacklo_epi8(lo, hi);
    w[3] = _mm256_unpackhi_epi8(lo, hi);
}
/* sum over 32 columns: values w (xi_vals) times the x codes at q, as 8 int32 lanes */
AVX INLINE __m256i xi_dot32(const __m256i *w, const int16_t *q) {
    return _mm256_add_epi32(_mm256_madd_epi16(w[0], _mm256_loadu_si256((const __m256i *)q)),
                            _mm256_madd_epi16(w[1], _mm256_loadu_si256((const __m256i *)(q + 16))));
}

/* Rows r0..r0+R-1 against the B (1, 2) prepared vectors, out[i * ostride + b]; the columns
 * covered (whole 64-column groups). */
AVX INLINE uint64_t fusedi(const vt_kdesc *d, uint64_t r0, const int R, const int B,
                           const uint32_t F, const vt_kx *px, float *out, int ostride) {
    const uint64_t n64 = px->n64;
    const uint8_t *p[8];
    uint64_t g[8];
    const uint64_t pfd = d->row_bytes ? (uint64_t)R * d->row_bytes /* as fused2 */
                                      : (uint64_t)R * d->bpr * sizeof(vt_block_nf4_dq) / 256;
    for (int i = 0; i < R; i++) {
        p[i] = d->data + (r0 + i) * d->row_bytes;
        g[i] = (r0 + i) * d->bpr;
    }
    const __m256i tl = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)px->itab));
    const __m256i th =
        _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)(px->itab + 16)));
    /* x scale per group; e2m1 values are twice their value, so half of it */
    const float xf = F == VT_FMT_NF4 || F == VT_FMT_NF4_DQ ? 1.0f / 16383.0f
                     : F == VT_FMT_Q4_0                    ? 1.0f
                                                           : 0.5f;
    __m256 acc[8];
    LOOP_R LOOP_B acc[i * B + b] = _mm256_setzero_ps();
    float sc[8][16];      /* nf4_dq: the absmax of 16 blocks per row ... */
    const uint8_t *qb[8]; /* ... and their codes */
    int run = 0;          /* nf4_dq: blocks left in sc */
    for (uint64_t G = 0; G < n64; G++) {
        const int16_t *xq[2];
        __m256 xs[2];
        LOOP_B {
            xq[b] = px->xq + ((uint64_t)b * n64 + G) * 64;
            xs[b] = _mm256_set1_ps(px->xs[(uint64_t)b * n64 + G] * xf);
        }
        if (F == VT_FMT_NF4_DQ && run == 0) {
            if (vt_kdq_run16(g, R, 64 * G, 64 * n64)) { /* as fused2 */
                LOOP_R qb[i] = dq_run16(d, &g[i], sc[i]);
                run = 16;
            }
        }
        LOOP_R {
            __m256i t[2];
            __m256 s; /* the row's block scale(s) applied: u = sum of scaled converted sums */
            __m256 u[2];
            if (F == VT_FMT_NF4 || F == VT_FMT_NF4_DQ) {
                const uint8_t *q;
                float a;
                if (F == VT_FMT_NF4_DQ && run) {
                    q = qb[i] + 32 * (16 - run);
                    a = sc[i][16 - run];
                } else {
                    q = vt_knf4_next(d, F == VT_FMT_NF4_DQ, &p[i], &g[i], &a);
                }
                PF(q);
                __m256i w[4];
                xi_vals32(_mm256_loadu_si256((const __m256i *)q), tl, th, w);
                LOOP_B t[b] = _mm256_add_epi32(xi_dot32(w, xq[b]), xi_dot32(w + 2, xq[b] + 32));
                s = _mm256_set1_ps(a);
                LOOP_B u[b] = _mm256_mul_ps(_mm256_cvtepi32_ps(t[b]), s);
            } else if (F == VT_FMT_MXFP4 || F == VT_FMT_Q4_0) {
                /* two blocks of 32 (mxfp4: an E8M0 scale and 16 code bytes; q4_0: an f16
                 * scale and 16): lanes 0-3 the first */
                const int bb = F == VT_FMT_Q4_0 ? 18 : 17, c0 = bb - 16;
                PF(p[i]);
                __m256i w[4];
                xi_vals32(_mm256_loadu2_m128i((const __m128i *)(p[i] + bb + c0),
                                              (const __m128i *)(p[i] + c0)),
                          tl, th, w);
                if (F == VT_FMT_Q4_0) {
                    uint16_t h0, h1;
                    memcpy(&h0, p[i], 2);
                    memcpy(&h1, p[i] + 18, 2);
                    const __m128 d2 =
                        _mm_cvtph_ps(_mm_cvtsi32_si128((int)(h0 | (uint32_t)h1 << 16)));
                    s = _mm256_permutevar8x32_ps(_mm256_castps128_ps256(d2),
                                                 _mm256_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1));
                } else {
                    s = _mm256_set_m128(_mm_broadcast_ss(&vt_ke8m0_f32[p[i][17]]),
                                        _mm_broadcast_ss(&vt_ke8m0_f32[p[i][0]]));
                }
                LOOP_B u[b] = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_add_epi32(
                                                xi_dot32(w, xq[b]), xi_dot32(w + 2, xq[b] + 32))),
                                            s);
                p[i] += 2 * bb;
            } else { /* nvfp4: four 9-byte blocks A-D of 16; lanes 0-3 A (w[0], w[2]) and B
                      * (w[1], w[3]), 4-7 C and D */
                PF(p[i]);
                const uint8_t *q = p[i];
                __m128i ab = _mm_castpd_si128(
                    _mm_loadh_pd(_mm_castsi128_pd(_mm_loadl_epi64((const __m128i *)(q + 1))),
                                 (const double *)(q + 10)));
                __m128i cd = _mm_castpd_si128(
                    _mm_loadh_pd(_mm_castsi128_pd(_mm_loadl_epi64((const __m128i *)(q + 19))),
                                 (const double *)(q + 28)));
                __m256i w[4];
                xi_vals32(_mm256_set_m128i(cd, ab), tl, th, w);
                const __m256 sac = _mm256_set_m128(_mm_broadcast_ss(&vt_ke4m3_f32[q[18]]),
                                                   _mm_broadcast_ss(&vt_ke4m3_f32[q[0]]));
                const __m256 sbd = _mm256_set_m128(_mm_broadcast_ss(&vt_ke4m3_f32[q[27]]),
                                                   _mm_broadcast_ss(&vt_ke4m3_f32[q[9]]));
                LOOP_B {
                    const __m256i *xv = (const __m256i *)xq[b];
                    __m256i tac =
                        _mm256_add_epi32(_mm256_madd_epi16(w[0], _mm256_loadu_si256(xv)),
                                         _mm256_madd_epi16(w[2], _mm256_loadu_si256(xv + 2)));
                    __m256i tbd =
                        _mm256_add_epi32(_mm256_madd_epi16(w[1], _mm256_loadu_si256(xv + 1)),
                                         _mm256_madd_epi16(w[3], _mm256_loadu_si256(xv + 3)));
                    u[b] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(tbd), sbd,
                                           _mm256_mul_ps(_mm256_cvtepi32_ps(tac), sac));
                }
                p[i] += 36;
            }
            LOOP_B acc[i * B + b] = _mm256_fmadd_ps(u[b], xs[b], acc[i * B + b]);
        }
        if (F == VT_FMT_NF4_DQ && run) run--;
    }
    const float ts = F == VT_FMT_NVFP4 ? d->tensor_scale : 1.0f;
    LOOP_R LOOP_B {
        __m256 v = acc[i * B + b];
        __m128 s4 = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
        s4 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
        s4 = _mm_add_ss(s4, _mm_movehdup_ps(s4));
        out[i * ostride + b] = ts * _mm_cvtss_f32(s4);
    }
    return 64 * n64;
}

#define XI_SHAPE(name, R, B)                                                                       \
    AVX static uint64_t name(const vt_kdesc *d, uint64_t r0, const vt_kx *px, float *out) {        \
        switch (d->fmt) {                                                                          \
        case VT_FMT_NF4:                                                                           \
            return fusedi(d, r0, R, B, VT_FMT_NF4, px, out, B);                                    \
        case VT_FMT_NF4_DQ:                                                                        \
            return fusedi(d, r0, R, B, VT_FMT_NF4_DQ, px, out, B);                                 \
        case VT_FMT_MXFP4:                                                                         \
            return fusedi(d, r0, R, B, VT_FMT_MXFP4, px, out, B);                                  \
        case VT_FMT_NVFP4:                                                                         \
            return fusedi(d, r0, R, B, VT_FMT_NVFP4, px, out, B);                                  \
        case VT_FMT_Q4_0:                                                                          \
            return fusedi(d, r0, R, B, VT_FMT_Q4_0, px, out, B);                                   \
        default:                                                                                   \
            return 0;                                                                              \
        }                                                                                          \
    }
XI_SHAPE(xi_r8b1, 8, 1)
XI_SHAPE(xi_r4b1, 4, 1)
XI_SHAPE(xi_r1b1, 1, 1)
XI_SHAPE(xi_r4b2, 4, 2)
XI_SHAPE(xi_r1b2, 1, 2)

static uint64_t rows_xi(const vt_kdesc *d, uint64_t r0, int nr, const vt_kx *px, float *out) {
    const int B = px->batch;
    uint64_t kf = 0;
    int i = 0;
    if (B == 1) {
        for (; i + 8 <= nr; i += 8) kf = xi_r8b1(d, r0 + i, px, out + i);
        for (; i + 4 <= nr; i += 4) kf = xi_r4b1(d, r0 + i, px, out + i);
        for (; i < nr; i++) kf = xi_r1b1(d, r0 + i, px, out + i);
    } else {
        for (; i + 4 <= nr; i += 4) kf = xi_r4b2(d, r0 + i, px, out + 2 * i);
        for (; i < nr; i++) kf = xi_r1b2(d, r0 + i, px, out + 2 * i);
    }
    return kf;
}

/* The integer form's x (see above; vt_kxi_build) and weight tables. */
static int xi_prep(const vt_kdesc *d, const float *x, int batch, vt_kx *px) {
    const int nf = d->fmt == VT_FMT_NF4 || d->fmt == VT_FMT_NF4_DQ, q40 = d->fmt == VT_FMT_Q4_0;
    /* position t = 32 n + 16 h + 8 l + e holds the column of nibble n of code byte
     * j = 16 l + 8 h + e (xi_vals32's order): 2 j + n (nf4: 2 j + 1 - n; q4_0, whose
     * 32-column blocks have columns i and i + 16 in byte i: 32 l + 8 h + e + 16 n) */
    uint8_t perm[64];
    for (int t = 0; t < 64; t++) {
        const int n = t / 32, j = 16 * (t / 8 % 2) + 8 * (t / 16 % 2) + t % 8;
        perm[t] = (uint8_t)(q40 ? 32 * (j / 16) + j % 16 + 16 * n : 2 * j + (n ^ nf));
    }
    int rc = vt_kxi_build(d, x, batch, perm, 0, px);
    if (rc) return rc;
    for (int c = 0; c < 16; c++) {
        int v = nf    ? (int)lrintf(vt_nf4_values[c] * 16383.0f)
                : q40 ? c - 8
                      : (int)lrintf(2.0f * e2m1_16[c]);
        px->itab[c] = (uint8_t)(v & 255);
        px->itab[16 + c] = (uint8_t)(((uint32_t)v >> 8) & 255);
    }
    return 0;
}

int vt_kfused_prep_avx2(const vt_kdesc *d, const float *x, int batch, vt_kx *px) {
    if (vt_kfused_xint(d, batch)) {
        int rc = xi_prep(d, x, batch, px);
        if (rc <= 0) return rc; /* else x has values the integer form does not take */
    }
    if (!d->sparse && batch >= 3 && fb_get(d->fmt, batch)) { /* rows_batch's layout */
        const int nat = d->fmt == VT_FMT_Q4_0 || d->fmt == VT_FMT_Q4_1 || d->fmt == VT_FMT_Q4_K;
        return vt_kx_build(d, x, batch, batch, nat ? 32 : 16,
                           VT_KX_INTERLEAVE | (nat ? 0 : VT_KX_SPLIT), px);
    }
    /* batch 1, awq only: x / s once per call instead of a divide per row group */
    if (d->sparse || d->fmt != VT_FMT_AWQ_INT4) {
        *px = (vt_kx){.x = x, .batch = batch, .npad = batch, .mem = NULL};
        return 0;
    }
    return vt_kx_build(d, x, batch, batch, 16, VT_KX_SPLIT, px);
}

uint64_t vt_kfused_rows_avx2(const vt_kdesc *d, uint64_t r0, int nr, const vt_kx *px, float *out) {
    const float *x = px->x;
    const int batch = px->batch;
    if (d->sparse) return 0;
    if (px->xq) return rows_xi(d, r0, nr, px, out);
    if (batch >= 3 && fb_get(d->fmt, batch)) return rows_batch(d, r0, nr, px, out);
    uint64_t kf = 0;
    /* batches 3-8: rows_batch (but q4_k at 4 and 8); the others in chunks of 4, 2, 1 vectors,
     * each against groups of 2, 4, 8 rows (x work shared by the group's rows, decoding by the
     * chunk's vectors); the rows stay in cache between chunks */
    for (int b = 0; b < batch;) {
        const float *xb = x + (uint64_t)b * d->cols;
        float *o = out + b;
        int n = batch - b >= 4 ? 4 : batch - b >= 2 ? 2 : 1, i = 0;
        if (n == 4) {
            for (; i + 2 <= nr; i += 2) kf = a2_r2b4(d, r0 + i, xb, o + i * batch, batch);
            for (; i < nr; i++) kf = a2_r1b4(d, r0 + i, xb, o + i * batch, batch);
        } else if (n == 2) {
            for (; i + 4 <= nr; i += 4) kf = a2_r4b2(d, r0 + i, xb, o + i * batch, batch);
            for (; i < nr; i++) kf = a2_r1b2(d, r0 + i, xb, o + i * batch, batch);
        } else {
#if VT_KFUSE_ROWS >= 8
            for (; i + 8 <= nr; i += 8) kf = a2_r8b1(d, r0 + i, xb, o + i * batch, batch);
#endif
            for (; i + 4 <= nr; i += 4) kf = a2_r4b1(d, r0 + i, xb, o + i * batch, batch);
            for (; i < nr; i++) kf = a2_r1b1(d, r0 + i, xb, o + i * batch, batch);
        }
        b += n;
    }
    return kf;
}
#else
int vt_kxi_fmt_avx2(uint32_t f) {
    return 0;
}
int vt_kfused_prep_avx2(const vt_kdesc *d, const float *x, int batch, vt_kx *px) {
    *px = (vt_kx){.x = x, .batch = batch, .npad = batch, .mem = NULL};
    return 0;
}
uint64_t vt_kfused_rows_avx2(const vt_kdesc *d, uint64_t r0, int nr, const vt_kx *px, float *out) {
    return 0;
}
#endif
