/* Tiled flash attention on the CPU. One task = one K/V head x one tile of BM queries, holding
 * the rows of every query head of that K/V head's group (GQA), so each K/V tile is dequantized
 * once per task; with few such tasks (decode: Nq 1..8) each also takes one slice of the keys
 * (flash-decoding) and a combine step merges the slices' partial results. For each tile of BN
 * keys: dequantize K (transposed) and V into small f32 buffers, S = Q K^T, then the online
 * softmax — running max m and sum l per row, the accumulator rescaled by exp(m_old - m_new) —
 * never holding more than one [rows][BN] tile of scores. Memory per task:
 * rows*(D + Dv + BN + 5)*4 + BN*(2D + Dv)*4 bytes (rows padded to a multiple of RB, Dv = D
 * rounded up to the P·V tile width), independent of Nk; a split call adds
 * tasks*slices*rows*(Dv + 2)*4 bytes of partials.
 *
 * The tile loop (attn_flash_body.h) is compiled three times: AVX-512 (16-float vectors),
 * AVX2+FMA (8) and portable 4-float vector extensions, chosen per call from the cached CPU
 * checks (vt_kcpu_avx512 / vt_kcpu_avx2, so VT_KERNELS_AVX512=0 and VT_KERNELS_SCALAR=1 select
 * the others). Register tiles: RB query rows x 64 (AVX-512), 16 (AVX2) or 8 (portable) keys
 * for S, and RB rows x as many columns for P·V; exp2 is a vector polynomial. With few rows
 * (decode; ROWS_MAX) the AVX-512 and AVX2 builds read f16/q8_0/int8/q4_0/nf4/mxfp4 K and V rows
 * where they are stored instead (tiles_rows: K decoded in registers, no transpose, no f32 K/V
 * tiles). */
#include <errno.h>
#include <math.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define VT_ATTN_X86 1
#endif

#include "attn_internal.h"
#include "kern_internal.h"

#define BN          64 /* keys per tile */
#define RB          4  /* query rows per register tile (rows are padded to a multiple) */
#define PF          2 /* K/V tiles prefetched ahead (2 was faster than 0, 1 and 4 for f16 decode) */
#define PV_F16_ROWS 16         /* at most this many rows: P·V reads an f16 V tile as stored */
#define ROWS_MAX    16         /* at most this many rows: K/V read where stored (tiles_rows) */
#define VIS_PAD     UINT32_MAX /* flash_buf.vis of a padded row */

typedef struct flash_buf flash_buf;
typedef struct flash_ctx flash_ctx;
typedef int (*flash_tiles_fn)(const flash_ctx *c, flash_buf *b, uint32_t hk, int64_t k0,
                              int64_t k1);

struct flash_ctx {
    const vt_attn_params *p;
    uint32_t group;       /* query heads per K/V head */
    uint64_t bm;          /* queries per tile */
    uint64_t n_qt;        /* query tiles */
    uint32_t dcol;        /* P·V tile width of the chosen ISA: V/acc rows padded to it */
    flash_tiles_fn tiles; /* tile loop of the chosen ISA */
    uint32_t ns;          /* key slices per (head, query tile); 1 = no combine step */
    int64_t slice;        /* keys per slice (a multiple of BN) */
    uint32_t rows_max;    /* padded rows of the largest task */
    float *ws;            /* ns > 1: [Hkv*n_qt][ns][rows_max*(Dv + 2)] partials (m, l, acc) */
};

/* One task's working set (one allocation). */
struct flash_buf {
    uint32_t rows, rows_p, dv; /* rows of the task, padded to a multiple of RB; V/acc width */
    float *q;                  /* [rows_p][D], pre-scaled by scale*log2(e); padded rows zero */
    float *acc;                /* [rows_p][dv] */
    float *s;                  /* [rows_p][BN] scores, then P */
    float *m, *l;              /* [rows_p] running max (log2 units), running sum */
    float *alpha;              /* [rows_p] this tile's rescale factor */
    int64_t *lim;              /* [rows_p] keys [0, lim) visible to the row */
    uint32_t *vis; /* [rows_p] keys of the current tile visible to the row (VIS_PAD: padding) */
    float *kt;     /* [D][BN] K tile transposed */
    float *v;      /* [BN][dv] V tile, padded columns zero */
    float *tmp;    /* [BN][D] K (and V when dv != D) rows as dequantized */
};

/* The least count of a tile's keys the RB rows at vis see (padded rows, VIS_PAD, aside): keys
 * below it go through the register tiles; *hi (may be NULL) gets the largest count. */
static inline uint32_t vis_lo(const uint32_t *vis, uint32_t jn, uint32_t *hi) {
    uint32_t lo = jn, h = 0;
    for (int r = 0; r < RB; r++) {
        if (vis[r] < lo) lo = vis[r];
        if (vis[r] != VIS_PAD && vis[r] > h) h = vis[r];
    }
    if (hi) *hi = h;
    return lo < h ? lo : h;
}

/* The keys [*ja, *jb) of a tile some register tile's rows see and others not; 0 when none. */
static inline int vis_span(const uint32_t *vis, uint32_t rows_p, uint32_t jn, uint32_t *ja,
                           uint32_t *jb) {
    *ja = jn;
    *jb = 0;
    for (uint32_t r0 = 0; r0 < rows_p; r0 += RB) {
        uint32_t hi, lo = vis_lo(vis + r0, jn, &hi);
        if (lo < hi && lo < *ja) *ja = lo;
        if (lo < hi && hi > *jb) *jb = hi;
    }
    return *ja < *jb;
}

#ifdef VT_ATTN_X86
/* dst[c][r] = row r's lane c for 8 rows of 8 floats (dst rows ds floats apart). */
__attribute__((target("avx"))) static inline void tr8x8_store(const __m256 *r, float *dst,
                                                              size_t ds) {
    __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]),
           t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]),
           t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]),
           t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
    __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE),
           u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE),
           u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE),
           u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
    _mm256_storeu_ps(dst, _mm256_permute2f128_ps(u0, u4, 0x20));
    _mm256_storeu_ps(dst + ds, _mm256_permute2f128_ps(u1, u5, 0x20));
    _mm256_storeu_ps(dst + 2 * ds, _mm256_permute2f128_ps(u2, u6, 0x20));
    _mm256_storeu_ps(dst + 3 * ds, _mm256_permute2f128_ps(u3, u7, 0x20));
    _mm256_storeu_ps(dst + 4 * ds, _mm256_permute2f128_ps(u0, u4, 0x31));
    _mm256_storeu_ps(dst + 5 * ds, _mm256_permute2f128_ps(u1, u5, 0x31));
    _mm256_storeu_ps(dst + 6 * ds, _mm256_permute2f128_ps(u2, u6, 0x31));
    _mm256_storeu_ps(dst + 7 * ds, _mm256_permute2f128_ps(u3, u7, 0x31));
}

/* dst[c][r] = src[r][c] for an 8x8 block (row strides ss, ds floats). */
__attribute__((target("avx"))) static inline void tr8x8(const float *src, size_t ss, float *dst,
                                                        size_t ds) {
    __m256 r[8];
    for (int i = 0; i < 8; i++) r[i] = _mm256_loadu_ps(src + i * ss);
    tr8x8_store(r, dst, ds);
}

/* The same from f16 values (F16C: exactly the values the f16 decoder gives). */
__attribute__((target("avx,f16c"))) static inline void tr8x8_h(const uint16_t *src, size_t ss,
                                                               float *dst, size_t ds) {
    __m256 r[8];
    for (int i = 0; i < 8; i++)
        r[i] = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(src + i * ss)));
    tr8x8_store(r, dst, ds);
}

/* The low 8 code bytes of q as 16 bytes of codes in value order: value 2i in byte i's high
 * nibble (hi_first, nf4) or low nibble (e2m1). */
static inline __m128i kv_nibbles(__m128i q, int hi_first) {
    const __m128i m = _mm_set1_epi8(15), lo = _mm_and_si128(q, m),
                  hi = _mm_and_si128(_mm_srli_epi16(q, 4), m);
    return hi_first ? _mm_unpacklo_epi8(hi, lo) : _mm_unpacklo_epi8(lo, hi);
}

/* 16 stored K/V values (chunk c: columns 16c..16c+15 of a row) as f32 in a register, the same
 * values the row decoders give (one f16 conversion of each value or scale, one f32 product). */
#define DEC_FN __attribute__((target("avx512f,avx2,fma,f16c"))) static inline
DEC_FN __m512 kv16_f16(const uint8_t *row, uint32_t c) {
    return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(row + 32 * c)));
}
DEC_FN __m512 kv16_scale(const uint8_t *b) {
    uint16_t dh;
    memcpy(&dh, b, 2);
    return _mm512_set1_ps(_cvtsh_ss(dh));
}
DEC_FN __m512 kv16_q8_0(const uint8_t *row, uint32_t c) { /* 34-byte blocks of 32 */
    const uint8_t *b = row + (c / 2) * 34;
    __m128i q = _mm_loadu_si128((const __m128i *)(b + 2 + 16 * (c & 1)));
    return _mm512_mul_ps(kv16_scale(b), _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(q)));
}
DEC_FN __m512 kv16_int8(const uint8_t *row, uint32_t c) { /* 68-byte blocks: f32 scale, 64 */
    const uint8_t *b = row + (c / 4) * 68;
    __m128i q = _mm_loadu_si128((const __m128i *)(b + 4 + 16 * (c & 3)));
    float d;
    memcpy(&d, b, 4);
    return _mm512_mul_ps(_mm512_set1_ps(d), _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(q)));
}
DEC_FN __m512 kv16_nf4(const uint8_t *row, uint32_t c) { /* 36-byte blocks: f32 absmax, 64 codes,
                                                           value 2i in byte i's high nibble */
    const uint8_t *b = row + (c / 4) * 36;
    __m128i q = _mm_loadl_epi64((const __m128i *)(b + 4 + 8 * (c & 3)));
    q = kv_nibbles(q, 1);
    float a;
    memcpy(&a, b, 4);
    return _mm512_mul_ps(_mm512_set1_ps(a), _mm512_permutexvar_ps(_mm512_cvtepu8_epi32(q),
                                                                  _mm512_loadu_ps(vt_nf4_values)));
}
/* e2m1 values of the 16 codes (code 8 is -0), as the row decoders take them */
static const float kv_e2m1[16] = {0.0f,  0.5f,  1.0f,  1.5f,  2.0f,  3.0f,  4.0f,  6.0f,
                                  -0.0f, -0.5f, -1.0f, -1.5f, -2.0f, -3.0f, -4.0f, -6.0f};
/* 17-byte blocks: e8m0 scale, 32 codes, value 2i in the low nibble of byte i */
DEC_FN __m512 kv16_mxfp4(const uint8_t *row, uint32_t c) {
    const uint8_t *b = row + (c / 2) * 17;
    __m128i q = _mm_loadl_epi64((const __m128i *)(b + 1 + 8 * (c & 1)));
    q = kv_nibbles(q, 0);
    return _mm512_mul_ps(_mm512_set1_ps(vt_ke8m0_f32[b[0]]),
                         _mm512_permutexvar_ps(_mm512_cvtepu8_epi32(q), _mm512_loadu_ps(kv_e2m1)));
}
DEC_FN __m512 kv16_q4_0(const uint8_t *row, uint32_t c) { /* 18-byte blocks: low nibbles first */
    const uint8_t *b = row + (c / 2) * 18;
    __m128i q = _mm_loadu_si128((const __m128i *)(b + 2));
    if (c & 1) q = _mm_srli_epi16(q, 4);
    q = _mm_sub_epi8(_mm_and_si128(q, _mm_set1_epi8(15)), _mm_set1_epi8(8));
    return _mm512_mul_ps(kv16_scale(b), _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(q)));
}
#undef DEC_FN

/* The same 8 values at a time (chunk c: columns 8c..8c+7), for the AVX2 build. */
#define DEC_FN __attribute__((target("avx2,fma,f16c"))) static inline
DEC_FN __m256 kv8_f16(const uint8_t *row, uint32_t c) {
    return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(row + 16 * c)));
}
DEC_FN __m256 kv8_scale(const uint8_t *b) {
    uint16_t dh;
    memcpy(&dh, b, 2);
    return _mm256_set1_ps(_cvtsh_ss(dh));
}
DEC_FN __m256 kv8_q8_0(const uint8_t *row, uint32_t c) { /* 34-byte blocks of 32 */
    const uint8_t *b = row + (c / 4) * 34;
    __m128i q = _mm_loadl_epi64((const __m128i *)(b + 2 + 8 * (c & 3)));
    return _mm256_mul_ps(kv8_scale(b), _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(q)));
}
/* 8 values of a 16-entry table t by their codes n (int32 lanes 0..15): codes 0-7 from the low
 * half, 8-15 from the high one (bit 3 moved to the sign for the blend) */
DEC_FN __m256 kv8_lut16(__m256i n, const float *t) {
    return _mm256_blendv_ps(_mm256_permutevar8x32_ps(_mm256_loadu_ps(t), n),
                            _mm256_permutevar8x32_ps(_mm256_loadu_ps(t + 8), n),
                            _mm256_castsi256_ps(_mm256_slli_epi32(n, 28)));
}
DEC_FN __m256 kv8_int8(const uint8_t *row, uint32_t c) { /* 68-byte blocks: f32 scale, 64 */
    const uint8_t *b = row + (c / 8) * 68;
    __m128i q = _mm_loadl_epi64((const __m128i *)(b + 4 + 8 * (c & 7)));
    float d;
    memcpy(&d, b, 4);
    return _mm256_mul_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(q)));
}
DEC_FN __m256 kv8_nf4(const uint8_t *row, uint32_t c) { /* 36-byte blocks, as kv16_nf4 */
    const uint8_t *b = row + (c / 8) * 36;
    int32_t w;
    memcpy(&w, b + 4 + 4 * (c & 7), 4);
    __m128i q = _mm_cvtsi32_si128(w);
    q = kv_nibbles(q, 1);
    float a;
    memcpy(&a, b, 4);
    return _mm256_mul_ps(_mm256_set1_ps(a), kv8_lut16(_mm256_cvtepu8_epi32(q), vt_nf4_values));
}
DEC_FN __m256 kv8_mxfp4(const uint8_t *row, uint32_t c) { /* as kv16_mxfp4 */
    const uint8_t *b = row + (c / 4) * 17;
    int32_t w;
    memcpy(&w, b + 1 + 4 * (c & 3), 4);
    __m128i q = _mm_cvtsi32_si128(w);
    q = kv_nibbles(q, 0);
    return _mm256_mul_ps(_mm256_set1_ps(vt_ke8m0_f32[b[0]]),
                         kv8_lut16(_mm256_cvtepu8_epi32(q), kv_e2m1));
}
DEC_FN __m256 kv8_q4_0(const uint8_t *row, uint32_t c) { /* 18-byte blocks: low nibbles first */
    const uint8_t *b = row + (c / 4) * 18;
    __m128i q = _mm_loadl_epi64((const __m128i *)(b + 2 + 8 * (c & 1)));
    if (c & 2) q = _mm_srli_epi16(q, 4);
    q = _mm_sub_epi8(_mm_and_si128(q, _mm_set1_epi8(15)), _mm_set1_epi8(8));
    return _mm256_mul_ps(kv8_scale(b), _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(q)));
}
#undef DEC_FN

/* ---- AVX-512 ---- */
#define ROWS_DECODE  1 /* K/V read where stored for few rows (tiles_rows) */
#define KVW_F16      kv16_f16
#define KVW_Q8_0     kv16_q8_0
#define KVW_Q4_0     kv16_q4_0
#define KVW_INT8     kv16_int8
#define KVW_NF4      kv16_nf4
#define KVW_MXFP4    kv16_mxfp4
#define ISA_FN       __attribute__((target("avx512f,avx2,fma,f16c")))
#define FN(name)     name##_avx512
#define W            16
#define NVS          4
#define NVP          4
#define TRANSPOSE8   1
#define VF           __m512
#define VI           __m512i
#define VLOAD(p)     _mm512_loadu_ps(p)
#define VSTORE(p, v) _mm512_storeu_ps(p, v)
#define VSET1(x)     _mm512_set1_ps(x)
#define VZERO        _mm512_setzero_ps()
#define VADD         _mm512_add_ps
#define VSUB         _mm512_sub_ps
#define VMUL         _mm512_mul_ps
#define VFMA         _mm512_fmadd_ps
#define VMAX         _mm512_max_ps
#define VHMAX        _mm512_reduce_max_ps
#define VHSUM        _mm512_reduce_add_ps
#define VCVTT        _mm512_cvttps_epi32
#define VCVTI        _mm512_cvtepi32_ps
#define VIADD(n, k)  _mm512_add_epi32(n, _mm512_set1_epi32(k))
#define VSLL23(n)    _mm512_slli_epi32(n, 23)
#define VASF         _mm512_castsi512_ps
#define VLOADH(h)    _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(h)))
#include "attn_flash_body.h"

/* ---- AVX2 + FMA ---- */
#define ISA_FN __attribute__((target("avx2,fma,f16c")))
ISA_FN static inline float hmax256(__m256 v) {
    __m128 x = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    x = _mm_max_ps(x, _mm_movehl_ps(x, x));
    return _mm_cvtss_f32(_mm_max_ss(x, _mm_shuffle_ps(x, x, 1)));
}
ISA_FN static inline float hsum256(__m256 v) {
    __m128 x = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    x = _mm_add_ps(x, _mm_movehl_ps(x, x));
    return _mm_cvtss_f32(_mm_add_ss(x, _mm_shuffle_ps(x, x, 1)));
}
#define ROWS_DECODE  1
#define KVW_F16      kv8_f16
#define KVW_Q8_0     kv8_q8_0
#define KVW_Q4_0     kv8_q4_0
#define KVW_INT8     kv8_int8
#define KVW_NF4      kv8_nf4
#define KVW_MXFP4    kv8_mxfp4
#define FN(name)     name##_avx2
#define W            8
#define NVS          2
#define NVP          2
#define TRANSPOSE8   1
#define VF           __m256
#define VI           __m256i
#define VLOAD(p)     _mm256_loadu_ps(p)
#define VSTORE(p, v) _mm256_storeu_ps(p, v)
#define VSET1(x)     _mm256_set1_ps(x)
#define VZERO        _mm256_setzero_ps()
#define VADD         _mm256_add_ps
#define VSUB         _mm256_sub_ps
#define VMUL         _mm256_mul_ps
#define VFMA         _mm256_fmadd_ps
#define VMAX         _mm256_max_ps
#define VHMAX        hmax256
#define VHSUM        hsum256
#define VCVTT        _mm256_cvttps_epi32
#define VCVTI        _mm256_cvtepi32_ps
#define VIADD(n, k)  _mm256_add_epi32(n, _mm256_set1_epi32(k))
#define VSLL23(n)    _mm256_slli_epi32(n, 23)
#define VASF         _mm256_castsi256_ps
#define VLOADH(h)    _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(h)))
#include "attn_flash_body.h"
#endif /* VT_ATTN_X86 */

/* ---- portable: 4-float GCC/Clang vector extensions, unaligned access ---- */
typedef float v4f __attribute__((vector_size(16), aligned(4)));
typedef int32_t v4i __attribute__((vector_size(16), aligned(4)));
static inline v4f v4_max(v4f a, v4f b) {
    v4i gt = a > b;
    return (v4f)(((v4i)a & gt) | ((v4i)b & ~gt));
}
static inline float v4_hmax(v4f v) {
    return fmaxf(fmaxf(v[0], v[1]), fmaxf(v[2], v[3]));
}
static inline float v4_hsum(v4f v) {
    return (v[0] + v[1]) + (v[2] + v[3]);
}
#define ISA_FN
#define FN(name)      name##_gen
#define W             4
#define NVS           2
#define NVP           2
#define TRANSPOSE8    0
#define VF            v4f
#define VI            v4i
#define VLOAD(p)      (*(const v4f *)(p))
#define VSTORE(p, v)  (*(v4f *)(p) = (v))
#define VSET1(x)      ((v4f){0} + (x))
#define VZERO         ((v4f){0})
#define VADD(a, b)    ((a) + (b))
#define VSUB(a, b)    ((a) - (b))
#define VMUL(a, b)    ((a) * (b))
#define VFMA(a, b, c) ((a) * (b) + (c))
#define VMAX          v4_max
#define VHMAX         v4_hmax
#define VHSUM         v4_hsum
#define VCVTT(x)      __builtin_convertvector(x, v4i)
#define VCVTI(n)      __builtin_convertvector(n, v4f)
#define VIADD(n, k)   ((n) + (k))
#define VSLL23(n)     ((n) << 23)
#define VASF(n)       ((v4f)(n))
#include "attn_flash_body.h"

static void load_q(const vt_attn_params *p, uint64_t idx, uint32_t D, float mul, float *dst) {
    switch (p->q_dtype) {
    case VT_DTYPE_F16:
        vt_f16_to_f32_row((const uint16_t *)p->q + idx, dst, D);
        break;
    case VT_DTYPE_BF16:
        vt_bf16_to_f32_row((const uint16_t *)p->q + idx, dst, D);
        break;
    default:
        memcpy(dst, (const float *)p->q + idx, (size_t)D * sizeof(float));
        break;
    }
    for (uint32_t d = 0; d < D; d++) dst[d] *= mul;
}

/* O and LSE of query head h, query i, from an unnormalised accumulator and (m, l). */
static void store_row(const vt_attn_params *p, uint64_t h, uint64_t i, const float *ar, float m,
                      float l) {
    const uint32_t D = p->kv.head_dim;
    uint64_t ob = (h * p->n_q + i) * D;
    float inv = l > 0.0f ? 1.0f / l : l == 0.0f ? 0.0f : NAN; /* l NaN: a NaN score was seen */
    if (p->o_dtype == VT_DTYPE_F16)
        for (uint32_t d = 0; d < D; d++) ((uint16_t *)p->o)[ob + d] = vt_f32_to_f16(ar[d] * inv);
    else
        for (uint32_t d = 0; d < D; d++) ((float *)p->o)[ob + d] = ar[d] * inv;
    if (p->lse)
        p->lse[h * p->n_q + i] = l > 0.0f    ? (m + log2f(l)) * 0.6931471805599453f
                                 : l == 0.0f ? -INFINITY
                                             : NAN;
}

static uint32_t round_up(uint32_t x, uint32_t m) {
    return (x + m - 1) / m * m;
}

/* Task = ((K/V head * query tiles) + query tile) * slices + slice. */
static int flash_task(void *vctx, uint64_t task, int tid) {
    (void)tid;
    const flash_ctx *c = vctx;
    const vt_attn_params *p = c->p;
    const vt_attn_kv *kv = &p->kv;
    const uint32_t D = kv->head_dim, G = c->group;
    const uint64_t nq = p->n_q, nk = kv->n_tokens, t = task / c->ns;
    const uint32_t slice = (uint32_t)(task % c->ns), hk = (uint32_t)(t / c->n_qt);
    const uint64_t i0 = (t % c->n_qt) * c->bm;
    const uint64_t bm = nq - i0 < c->bm ? nq - i0 : c->bm;
    const uint32_t rows = (uint32_t)(G * bm); /* row r = (g = r / bm, i = i0 + r % bm) */
    flash_buf b;
    b.rows = rows;
    b.rows_p = round_up(rows, RB);
    b.dv = round_up(D, c->dcol);

    size_t nfl = (size_t)b.rows_p * (D + b.dv + BN + 3) + (size_t)BN * (2 * D + b.dv);
    float *buf =
        vt_malloc(nfl * sizeof(float) + (size_t)b.rows_p * (sizeof(int64_t) + sizeof(uint32_t)));
    if (!buf) return vt_fail(-ENOMEM, "attn flash: K/V head %u: out of memory", hk);
    b.lim = (int64_t *)buf; /* first: 8-byte aligned */
    b.vis = (uint32_t *)(b.lim + b.rows_p);
    b.q = (float *)(b.vis + b.rows_p);
    b.acc = b.q + (size_t)b.rows_p * D;
    b.s = b.acc + (size_t)b.rows_p * b.dv;
    b.m = b.s + (size_t)b.rows_p * BN;
    b.l = b.m + b.rows_p;
    b.alpha = b.l + b.rows_p;
    b.kt = b.alpha + b.rows_p;
    b.v = b.kt + (size_t)BN * D;
    b.tmp = b.v + (size_t)BN * b.dv;
    /* zero the padding (Q rows, V columns) and K^T columns a ragged tile leaves unwritten */
    memset(b.q, 0, (size_t)b.rows_p * D * sizeof(float));
    memset(b.acc, 0, (size_t)b.rows_p * b.dv * sizeof(float));
    memset(b.kt, 0, (size_t)BN * (D + b.dv) * sizeof(float));

    /* scores kept in log2 units: q pre-multiplied by scale * log2(e) */
    const float log2e = 1.4426950408889634f;
    for (uint32_t r = 0; r < b.rows_p; r++) {
        b.m[r] = -INFINITY;
        b.l[r] = 0.0f;
        b.lim[r] = 0; /* padded rows see nothing */
        if (r >= rows) continue;
        uint64_t h = (uint64_t)hk * G + r / bm, i = i0 + r % bm;
        load_q(p, (h * nq + i) * D, D, p->scale * log2e, b.q + (size_t)r * D);
        int64_t li = p->causal ? (int64_t)i + (int64_t)nk - (int64_t)nq + 1 : (int64_t)nk;
        b.lim[r] = li < 0 ? 0 : li > (int64_t)nk ? (int64_t)nk : li;
    }

    /* this slice's keys; causal tile skipping: no query of the tile sees keys past n_end */
    int64_t k0 = (int64_t)slice * c->slice, k1 = c->ns > 1 ? k0 + c->slice : (int64_t)nk;
    if (k1 > (int64_t)nk) k1 = (int64_t)nk;
    if (p->causal) {
        int64_t last = (int64_t)(i0 + bm - 1) + (int64_t)nk - (int64_t)nq + 1;
        if (last < k1) k1 = last;
    }
    int rc = k0 < k1 ? c->tiles(c, &b, hk, k0, k1) : 0;
    if (!rc && c->ns == 1) {
        for (uint32_t r = 0; r < rows; r++)
            store_row(p, (uint64_t)hk * G + r / bm, i0 + r % bm, b.acc + (size_t)r * b.dv, b.m[r],
                      b.l[r]);
    } else if (!rc) { /* partials for the combine step */
        float *w = c->ws + (size_t)task * c->rows_max * (b.dv + 2);
        memcpy(w, b.m, rows * sizeof(float));
        memcpy(w + c->rows_max, b.l, rows * sizeof(float));
        memcpy(w + 2 * (size_t)c->rows_max, b.acc, (size_t)rows * b.dv * sizeof(float));
    }
    vt_free(buf);
    return rc;
}

/* Merge the slices of each (head, query tile): O = sum_s 2^(m_s - M) acc_s / L. */
static int flash_combine(void *vctx, uint64_t t, int tid) {
    (void)tid;
    const flash_ctx *c = vctx;
    const vt_attn_params *p = c->p;
    const uint32_t D = p->kv.head_dim, G = c->group, dv = round_up(D, c->dcol);
    const uint32_t hk = (uint32_t)(t / c->n_qt);
    const uint64_t i0 = (t % c->n_qt) * c->bm, bm = p->n_q - i0 < c->bm ? p->n_q - i0 : c->bm;
    const size_t stride = (size_t)c->rows_max * (dv + 2);
    const float *w0 = c->ws + (size_t)t * c->ns * stride;
    float o[dv]; /* dv <= VT_ATTN_MAX_HEAD_DIM rounded up (vt_attn_validate) */
    for (uint32_t r = 0; r < G * bm; r++) {
        float M = -INFINITY, L = 0.0f;
        int nan = 0; /* a slice saw a NaN score (its m and l are NaN): the row is NaN */
        for (uint32_t s = 0; s < c->ns; s++) {
            float ms = w0[s * stride + r];
            nan |= ms != ms;
            M = fmaxf(M, ms);
        }
        memset(o, 0, sizeof o);
        if (nan)
            M = L = NAN;
        else if (M > -INFINITY)
            for (uint32_t s = 0; s < c->ns; s++) {
                const float *w = w0 + s * stride;
                float ls = w[c->rows_max + r];
                if (ls <= 0.0f) continue;
                float f = exp2f(w[r] - M);
                L += ls * f;
                const float *a = w + 2 * (size_t)c->rows_max + (size_t)r * dv;
                for (uint32_t d = 0; d < D; d++) o[d] += f * a[d];
            }
        store_row(p, (uint64_t)hk * G + r / bm, i0 + r % bm, o, M, L);
    }
    return 0;
}

int vt_attn_cpu_flash(const vt_attn_params *p) {
    flash_ctx c = {0};
    c.p = p;
    c.group = p->n_heads / p->kv.n_kv_heads;
    /* about 64 rows per task, at least 4 queries */
    c.bm = 64 / c.group < 4 ? 4 : 64 / c.group;
    if (c.bm > p->n_q) c.bm = p->n_q;
    c.n_qt = (p->n_q + c.bm - 1) / c.bm;
    c.tiles = tiles_gen;
    c.dcol = 2 * 4;
#ifdef VT_ATTN_X86
    if (vt_kcpu_avx512()) {
        c.tiles = tiles_avx512;
        c.dcol = 4 * 16;
    } else if (vt_kcpu_avx2()) {
        c.tiles = tiles_avx2;
        c.dcol = 2 * 8;
    }
#endif
    /* Fewer tasks than twice the threads (decode): slice the keys too, at least 4 tiles each. */
    const uint64_t base = (uint64_t)p->kv.n_kv_heads * c.n_qt, nk = p->kv.n_tokens;
    const uint64_t tiles = (nk + BN - 1) / BN;
    const uint64_t T = p->nthreads > 0 ? (uint64_t)p->nthreads : (uint64_t)vt_default_threads();
    c.ns = 1;
    if (base < 2 * T && tiles >= 8) {
        uint64_t ns = (2 * T + base - 1) / base;
        if (ns > tiles / 4) ns = tiles / 4;
        c.ns = (uint32_t)ns;
    }
    if (c.ns == 1) return vt_parallel_for(base, flash_task, &c, p->nthreads);

    c.slice = (int64_t)((tiles + c.ns - 1) / c.ns) * BN;
    c.ns = (uint32_t)((tiles * BN + c.slice - 1) / c.slice); /* no empty trailing slice */
    c.rows_max = round_up((uint32_t)(c.group * c.bm), RB);
    size_t n = (size_t)base * c.ns * c.rows_max * (round_up(p->kv.head_dim, c.dcol) + 2);
    c.ws = vt_malloc(n * sizeof(float));
    if (!c.ws) return vt_fail(-ENOMEM, "attn flash: %zu bytes of split partials", n * 4);
    int rc = vt_parallel_for(base * c.ns, flash_task, &c, p->nthreads);
    if (!rc) rc = vt_parallel_for(base, flash_combine, &c, p->nthreads);
    vt_free(c.ws);
    return rc;
}
