/* kernels/cpu/attn_flash_body.h — the tile loop of the CPU flash attention, written once over a
 * small vector vocabulary and included by attn_flash.c once per instruction set (AVX-512,
 * AVX2+FMA, portable 4-float vectors). The includer defines:
 *   ISA_FN        attributes of every function here (a target attribute, or nothing)
 *   FN(name)      the name with the instruction set's suffix
 *   W             floats per vector; VF the vector type, VI the 32-bit integer one
 *   NVS, NVP      vectors per register tile across keys (scores) and across columns (P·V)
 *   VLOAD VSTORE VSET1 VZERO VADD VSUB VMUL VFMA(a, b, c) = a*b + c, VMAX, VHMAX VHSUM
 *   VCVTT (truncating f32 -> i32), VCVTI (i32 -> f32), VIADD, VSLL23 (<< 23), VASF (bits as f32)
 *   TRANSPOSE8    1 when tr8x8 (AVX) may be used for the K transpose
 *   VLOADH(h)     optional: W f16 values at h as a VF (enables pv_f16)
 * and gets them #undef'd at the end.
 * Register tiles are RB query rows x NVS*W keys (S = Q K^T) and RB rows x NVP*W columns (P·V);
 * the callers pad the rows to RB (zero Q rows that see no key) and the V/acc columns to NVP*W. */

#if !defined(TRANSPOSE8) || !defined(NVS) || !defined(NVP)
#error "attn_flash_body.h: the includer defines the vocabulary first"
#endif

/* 2^x for x <= 0 (x = score - running max, log2 units). x is clamped at -127, where the
 * exponent field becomes 0 and the result exactly 0 (so masked keys at -inf give 0); NaN stays
 * NaN (VMAX returns its second operand when either is NaN). Degree-6 Taylor polynomial of 2^f
 * on f in [-0.5, 0.5]: relative error below 2e-7. */
ISA_FN static inline VF FN(vexp2)(VF x) {
    x = VMAX(VSET1(-127.0f), x);
    VI n = VCVTT(VSUB(x, VSET1(0.5f))); /* round to nearest for x <= 0 */
    VF f = VSUB(x, VCVTI(n));
    VF p = VSET1(1.540353e-4f);
    p = VFMA(p, f, VSET1(1.3333558e-3f));
    p = VFMA(p, f, VSET1(9.6181291e-3f));
    p = VFMA(p, f, VSET1(5.55041087e-2f));
    p = VFMA(p, f, VSET1(2.40226507e-1f));
    p = VFMA(p, f, VSET1(6.93147181e-1f));
    p = VFMA(p, f, VSET1(1.0f));
    return VMUL(p, VASF(VSLL23(VIADD(n, 127))));
}

/* kt[d][j] = src[j][d] for j < bn, d < D (src rows of D floats, kt rows of BN). */
ISA_FN static void FN(transpose_k)(const float *restrict src, float *restrict kt, uint32_t bn,
                                   uint32_t D) {
    uint32_t j0 = 0;
#if TRANSPOSE8
    uint32_t d0 = 0;
    for (; j0 + 8 <= bn; j0 += 8)
        for (d0 = 0; d0 + 8 <= D; d0 += 8)
            tr8x8(src + (size_t)j0 * D + d0, D, kt + (size_t)d0 * BN + j0, BN);
    for (uint32_t j = 0; j < j0; j++) /* ragged head dim */
        for (uint32_t d = d0; d < D; d++) kt[(size_t)d * BN + j] = src[(size_t)j * D + d];
#endif
    for (uint32_t j = j0; j < bn; j++)
        for (uint32_t d = 0; d < D; d++) kt[(size_t)d * BN + j] = src[(size_t)j * D + d];
}

#if TRANSPOSE8
/* kt[d][j] = f16 K row j's value d for j < bn (rows of D halves, D a multiple of 8): the K
 * tile converted and transposed in one pass, with no f32 copy of its rows. */
ISA_FN static void FN(transpose_k_f16)(const uint16_t *restrict src, float *restrict kt,
                                       uint32_t bn, uint32_t D) {
    uint32_t j0 = 0;
    for (; j0 + 8 <= bn; j0 += 8)
        for (uint32_t d0 = 0; d0 < D; d0 += 8)
            tr8x8_h(src + (size_t)j0 * D + d0, D, kt + (size_t)d0 * BN + j0, BN);
    for (uint32_t j = j0; j < bn; j++)
        for (uint32_t d = 0; d < D; d++)
            kt[(size_t)d * BN + j] = vt_f16_to_f32(src[(size_t)j * D + d]);
}
#endif

/* s[r][0..BN) = sum_d q[r][d] * kt[d][0..BN) for rows_p rows (a multiple of RB). */
ISA_FN static void FN(scores)(const float *restrict q, const float *restrict kt, float *restrict s,
                              uint32_t rows_p, uint32_t D) {
    for (uint32_t r0 = 0; r0 < rows_p; r0 += RB) {
        const float *q0 = q + (size_t)r0 * D;
        for (uint32_t j0 = 0; j0 < BN; j0 += NVS * W) {
            VF acc[RB][NVS];
#pragma GCC unroll 8
            for (int r = 0; r < RB; r++)
#pragma GCC unroll 8
                for (int i = 0; i < NVS; i++) acc[r][i] = VZERO;
            const float *kd = kt + j0;
            for (uint32_t d = 0; d < D; d++, kd += BN) {
                VF k[NVS];
#pragma GCC unroll 8
                for (int i = 0; i < NVS; i++) k[i] = VLOAD(kd + i * W);
#pragma GCC unroll 8
                for (int r = 0; r < RB; r++) {
                    VF qb = VSET1(q0[(size_t)r * D + d]);
#pragma GCC unroll 8
                    for (int i = 0; i < NVS; i++) acc[r][i] = VFMA(qb, k[i], acc[r][i]);
                }
            }
#pragma GCC unroll 8
            for (int r = 0; r < RB; r++)
#pragma GCC unroll 8
                for (int i = 0; i < NVS; i++)
                    VSTORE(s + (size_t)(r0 + r) * BN + j0 + i * W, acc[r][i]);
        }
    }
}

/* Online softmax over one tile of scores: row r sees keys [0, lim[r] - j0) of the tile (at most
 * bn). s becomes P (0 for keys a row does not see), m/l are updated, alpha[r] is the factor the
 * row's accumulator must be scaled by and vis[r] how many of the tile's keys the row sees
 * (VIS_PAD for padded rows, r >= rows, whose results are never read). A NaN score makes l and m
 * NaN for good. Returns how many keys any row sees (P·V's extent). */
ISA_FN static uint32_t FN(softmax)(float *restrict s, const int64_t *lim, int64_t j0, uint32_t bn,
                                   uint32_t rows, uint32_t rows_p, float *m, float *l, float *alpha,
                                   uint32_t *vis) {
    uint32_t jn = 0;
    for (uint32_t r = 0; r < rows_p; r++) {
        float *sr = s + (size_t)r * BN;
        int64_t v = lim[r] - j0;
        if (v > (int64_t)bn) v = bn;
        if (v <= 0) {
            memset(sr, 0, BN * sizeof(float));
            alpha[r] = 1.0f;
            vis[r] = r < rows ? 0 : VIS_PAD;
            continue;
        }
        vis[r] = (uint32_t)v;
        if ((uint32_t)v > jn) jn = (uint32_t)v;
        for (int64_t j = v; j < BN; j++) sr[j] = -INFINITY;
        VF mx = VLOAD(sr);
        for (int j = W; j < BN; j += W) mx = VMAX(mx, VLOAD(sr + j));
        float mnew = m[r] != m[r] ? m[r] : fmaxf(m[r], VHMAX(mx));
        alpha[r] = exp2f(m[r] - mnew); /* m = -inf before the first visible key: 0 */
        VF mv = VSET1(mnew), sum = VZERO;
        for (int j = 0; j < BN; j += W) {
            VF e = FN(vexp2)(VSUB(VLOAD(sr + j), mv));
            VSTORE(sr + j, e);
            sum = VADD(sum, e);
        }
        l[r] = l[r] * alpha[r] + VHSUM(sum);
        m[r] = l[r] == l[r] ? mnew : NAN; /* the max may have skipped a NaN score; the sum not */
    }
    return jn;
}

/* acc[r][0..Dv) = acc[r] * alpha[r] + sum_{j < lo} p[r][j] * v[j][0..Dv) for rows_p rows (a
 * multiple of RB) and Dv a multiple of NVP*W, lo the least count of keys a row of the register
 * tile sees (vis_lo); LOADV(x) reads W values of v as a VF. Keys some rows of the tile see and
 * others not (the causal diagonal) are left to pv_ragged: multiplying a row's P of 0 by V of a
 * key it does not see makes NaN of an Inf or NaN there. The tile's P·V is summed from zero and
 * acc read after the key loop (reading it first made GCC 12 spill the tile to the stack). */
#define PV_TILES(LOADV)                                                                            \
    for (uint32_t r0 = 0; r0 < rows_p; r0 += RB) {                                                 \
        const float *p0 = p + (size_t)r0 * BN;                                                     \
        /* vis_lo written out: through the function GCC spilled one more V vector (q4_0: +5%) */   \
        uint32_t lo = jn, hi = 0;                                                                  \
        for (int r = 0; r < RB; r++) {                                                             \
            if (vis[r0 + r] < lo) lo = vis[r0 + r];                                                \
            if (vis[r0 + r] != VIS_PAD && vis[r0 + r] > hi) hi = vis[r0 + r];                      \
        }                                                                                          \
        if (lo > hi) lo = hi;                                                                      \
        for (uint32_t d0 = 0; d0 < Dv; d0 += NVP * W) {                                            \
            VF a[RB][NVP];                                                                         \
            _Pragma("GCC unroll 8") for (int r = 0; r < RB; r++)                                   \
                _Pragma("GCC unroll 8") for (int i = 0; i < NVP; i++) a[r][i] = VZERO;             \
            for (uint32_t j = 0; j < lo; j++) {                                                    \
                VF pb[RB]; /* one V vector live at a time: GCC keeps it in a register */           \
                _Pragma("GCC unroll 8") for (int r = 0; r < RB; r++) pb[r] =                       \
                    VSET1(p0[(size_t)r * BN + j]);                                                 \
                _Pragma("GCC unroll 8") for (int i = 0; i < NVP; i++) {                            \
                    VF x = LOADV(v + (size_t)j * Dv + d0 + i * W);                                 \
                    _Pragma("GCC unroll 8") for (int r = 0; r < RB; r++) a[r][i] =                 \
                        VFMA(pb[r], x, a[r][i]);                                                   \
                }                                                                                  \
            }                                                                                      \
            _Pragma("GCC unroll 8") for (int r = 0; r < RB; r++) {                                 \
                float *ar = acc + (size_t)(r0 + r) * Dv + d0;                                      \
                VF al = VSET1(alpha[r0 + r]);                                                      \
                _Pragma("GCC unroll 8") for (int i = 0; i < NVP; i++)                              \
                    VSTORE(ar + i * W, VFMA(VLOAD(ar + i * W), al, a[r][i]));                      \
            }                                                                                      \
        }                                                                                          \
    }

/* The rest of PV_TILES: each row's keys [lo, vis[r]) past its register tile's least count lo,
 * added to acc (rows dv floats apart) from f32 V rows (key j at vf + (j - jv) * vs; D columns).
 * Out of line: the same code inside PV_TILES slowed the q8_0 decode by 8%. */
__attribute__((noinline)) ISA_FN static void FN(pv_ragged)(float *restrict acc, uint32_t dv,
                                                           const float *restrict p,
                                                           const uint32_t *vis, uint32_t rows_p,
                                                           uint32_t jn, const float *restrict vf,
                                                           size_t vs, uint32_t jv, uint32_t D) {
    for (uint32_t r0 = 0; r0 < rows_p; r0 += RB) {
        uint32_t hi;
        const uint32_t lo = vis_lo(vis + r0, jn, &hi);
        for (uint32_t r = r0; r < r0 + RB && lo < hi; r++) {
            if (vis[r] == VIS_PAD) continue;
            float *ar = acc + (size_t)r * dv;
            for (uint32_t j = lo; j < vis[r]; j++) {
                const float *x = vf + (size_t)(j - jv) * vs, pj = p[(size_t)r * BN + j];
                uint32_t d = 0;
                for (; d + W <= D; d += W)
                    VSTORE(ar + d, VFMA(VSET1(pj), VLOAD(x + d), VLOAD(ar + d)));
                for (; d < D; d++) ar[d] += pj * x[d];
            }
        }
    }
}

ISA_FN static void FN(pv)(float *restrict acc, const float *alpha, const float *restrict p,
                          const uint32_t *vis, const float *restrict v, uint32_t rows_p,
                          uint32_t jn, uint32_t Dv) {
    PV_TILES(VLOAD)
}

#ifdef VLOADH
/* The same with an f16 V tile read where it is stored (v [jn][Dv] halves): with few rows each V
 * value is converted once or a few times, cheaper than converting the tile to f32 first. */
ISA_FN static void FN(pv_f16)(float *restrict acc, const float *alpha, const float *restrict p,
                              const uint32_t *vis, const uint16_t *restrict v, uint32_t rows_p,
                              uint32_t jn, uint32_t Dv) {
    PV_TILES(VLOADH)
}
#endif

#ifdef ROWS_DECODE
/* ---- few rows (decode): K and V read where they are stored, no f32 tiles ----
 * With a few query rows per task the tile loop above is bound by its passes over the K/V tile
 * (convert, transpose, store, reload), not by FMAs. Here each K row is decoded into registers
 * (AVX-512: the whole row, D/16 vectors; AVX2: 8 columns at a time, once per 4 query rows) and
 * dotted with every row's q; a row's partial sums of two keys are folded into one vector at once
 * and the keys of a block (16; AVX2 8) finished together by a transposing reduction (one
 * horizontal sum per key was the cost of a plain per-key dot). P·V decodes pieces of V rows
 * inside the register tile (PV_TILES). The includer gives the decoders of W stored values
 * (KVW_F16, KVW_Q8_0, KVW_Q4_0, KVW_INT8, KVW_NF4, KVW_MXFP4: row, chunk). */
#if W == 16

/* s[r][0..16) from part[r][0..8): part[r][k] holds keys 2k, 2k+1 folded (unpack lo + hi). */
ISA_FN static inline __m512 FN(reduce16)(const __m512 *t) {
    __m512 v[4], w[2];
#pragma GCC unroll 4
    for (int k = 0; k < 4; k++)
        v[k] = _mm512_add_ps(_mm512_shuffle_ps(t[2 * k], t[2 * k + 1], 0x44),
                             _mm512_shuffle_ps(t[2 * k], t[2 * k + 1], 0xEE));
#pragma GCC unroll 2
    for (int k = 0; k < 2; k++)
        w[k] = _mm512_add_ps(_mm512_shuffle_f32x4(v[2 * k], v[2 * k + 1], 0x88),
                             _mm512_shuffle_f32x4(v[2 * k], v[2 * k + 1], 0xDD));
    return _mm512_add_ps(_mm512_shuffle_f32x4(w[0], w[1], 0x88),
                         _mm512_shuffle_f32x4(w[0], w[1], 0xDD));
}

/* Scores of keys [0, bn) of a tile (rows rb bytes apart at kr) for rows_p rows: s[r][j]; keys
 * past bn in the last block of 16 repeat key bn - 1 (the softmax masks them). ND = D / 16. */
#define SCORES_ROWS(name, KLOAD, ND)                                                               \
    ISA_FN static void FN(name)(const float *restrict q, const uint8_t *kr, uint64_t rb,           \
                                uint32_t bn, float *restrict s, uint32_t rows_p) {                 \
        for (uint32_t j0 = 0; j0 < bn; j0 += 16) {                                                 \
            __m512 part[rows_p][8];                                                                \
            for (uint32_t k = 0; k < 8; k++) {                                                     \
                uint32_t ja = j0 + 2 * k, jb = ja + 1;                                             \
                if (ja >= bn) ja = bn - 1;                                                         \
                if (jb >= bn) jb = bn - 1;                                                         \
                const uint8_t *ra = kr + ja * rb, *rbp = kr + jb * rb;                             \
                __m512 ka[ND], kb[ND];                                                             \
                _Pragma("GCC unroll 16") for (int c = 0; c < ND; c++) {                            \
                    ka[c] = KLOAD(ra, c);                                                          \
                    kb[c] = KLOAD(rbp, c);                                                         \
                }                                                                                  \
                _Pragma("GCC unroll 4") for (uint32_t r = 0; r < rows_p; r++) {                    \
                    const float *qr = q + (size_t)r * ND * 16;                                     \
                    __m512 a = _mm512_mul_ps(_mm512_loadu_ps(qr), ka[0]);                          \
                    __m512 b = _mm512_mul_ps(_mm512_loadu_ps(qr), kb[0]);                          \
                    _Pragma("GCC unroll 16") for (int c = 1; c < ND; c++) {                        \
                        __m512 qc = _mm512_loadu_ps(qr + 16 * c);                                  \
                        a = _mm512_fmadd_ps(qc, ka[c], a);                                         \
                        b = _mm512_fmadd_ps(qc, kb[c], b);                                         \
                    }                                                                              \
                    part[r][k] =                                                                   \
                        _mm512_add_ps(_mm512_unpacklo_ps(a, b), _mm512_unpackhi_ps(a, b));         \
                }                                                                                  \
            }                                                                                      \
            for (uint32_t r = 0; r < rows_p; r++)                                                  \
                _mm512_storeu_ps(s + (size_t)r * BN + j0, FN(reduce16)(part[r]));                  \
        }                                                                                          \
    }
#else /* W == 8 */
/* s[r][0..8) from part[0..4): part[k] holds keys 2k, 2k+1 folded (unpack lo + hi). */
ISA_FN static inline __m256 FN(reduce8)(const __m256 *t) {
    __m256 v[2];
#pragma GCC unroll 2
    for (int k = 0; k < 2; k++)
        v[k] = _mm256_add_ps(_mm256_shuffle_ps(t[2 * k], t[2 * k + 1], 0x44),
                             _mm256_shuffle_ps(t[2 * k], t[2 * k + 1], 0xEE));
    return _mm256_add_ps(_mm256_permute2f128_ps(v[0], v[1], 0x20),
                         _mm256_permute2f128_ps(v[0], v[1], 0x31));
}

/* As above with 8 keys per block and the rows in groups of RB: a key pair's chunks are decoded
 * once per group, dotted with the group's q (2 x RB accumulators and two K chunks stay in the 16
 * registers). ND = D / 8. */
#define SCORES_ROWS(name, KLOAD, ND)                                                               \
    ISA_FN static void FN(name)(const float *restrict q, const uint8_t *kr, uint64_t rb,           \
                                uint32_t bn, float *restrict s, uint32_t rows_p) {                 \
        for (uint32_t j0 = 0; j0 < bn; j0 += 8)                                                    \
            for (uint32_t r0 = 0; r0 < rows_p; r0 += RB) {                                         \
                __m256 part[RB][4];                                                                \
                _Pragma("GCC unroll 4") for (uint32_t k = 0; k < 4; k++) {                         \
                    uint32_t ja = j0 + 2 * k, jb = ja + 1;                                         \
                    if (ja >= bn) ja = bn - 1;                                                     \
                    if (jb >= bn) jb = bn - 1;                                                     \
                    const uint8_t *ra = kr + ja * rb, *rbp = kr + jb * rb;                         \
                    const float *q0 = q + (size_t)r0 * ND * 8;                                     \
                    __m256 a[RB], b[RB];                                                           \
                    _Pragma("GCC unroll 16") for (int c = 0; c < ND; c++) {                        \
                        const __m256 ka = KLOAD(ra, c), kb = KLOAD(rbp, c);                        \
                        _Pragma("GCC unroll 4") for (int r = 0; r < RB; r++) {                     \
                            const __m256 qc = _mm256_loadu_ps(q0 + (size_t)r * ND * 8 + 8 * c);    \
                            a[r] = c ? _mm256_fmadd_ps(qc, ka, a[r]) : _mm256_mul_ps(qc, ka);      \
                            b[r] = c ? _mm256_fmadd_ps(qc, kb, b[r]) : _mm256_mul_ps(qc, kb);      \
                        }                                                                          \
                    }                                                                              \
                    _Pragma("GCC unroll 4") for (int r = 0; r < RB; r++) part[r][k] =              \
                        _mm256_add_ps(_mm256_unpacklo_ps(a[r], b[r]),                              \
                                      _mm256_unpackhi_ps(a[r], b[r]));                             \
                }                                                                                  \
                _Pragma("GCC unroll 4") for (int r = 0; r < RB; r++)                               \
                    _mm256_storeu_ps(s + (size_t)(r0 + r) * BN + j0, FN(reduce8)(part[r]));        \
            }                                                                                      \
    }
#endif
SCORES_ROWS(scores_f16_128, KVW_F16, 128 / W)
SCORES_ROWS(scores_q8_0_128, KVW_Q8_0, 128 / W)
SCORES_ROWS(scores_q4_0_128, KVW_Q4_0, 128 / W)
SCORES_ROWS(scores_f16_64, KVW_F16, 64 / W)
SCORES_ROWS(scores_q8_0_64, KVW_Q8_0, 64 / W)
SCORES_ROWS(scores_q4_0_64, KVW_Q4_0, 64 / W)
SCORES_ROWS(scores_int8_128, KVW_INT8, 128 / W)
SCORES_ROWS(scores_nf4_128, KVW_NF4, 128 / W)
SCORES_ROWS(scores_int8_64, KVW_INT8, 64 / W)
SCORES_ROWS(scores_nf4_64, KVW_NF4, 64 / W)
SCORES_ROWS(scores_mxfp4_128, KVW_MXFP4, 128 / W)
SCORES_ROWS(scores_mxfp4_64, KVW_MXFP4, 64 / W)
#undef SCORES_ROWS

/* P·V with V rows (rb bytes apart at v) decoded in the register tile; Dv == D. */
#define PV_ROWS(name, VDEC)                                                                        \
    ISA_FN static void FN(name)(float *restrict acc, const float *alpha, const float *restrict p,  \
                                const uint32_t *vis, const uint8_t *v, uint64_t rb,                \
                                uint32_t rows_p, uint32_t jn, uint32_t Dv) {                       \
        PV_TILES(VDEC)                                                                             \
    }
#define VDEC_Q8_0(x)  KVW_Q8_0(v + (size_t)j * rb, (d0 + i * W) / W)
#define VDEC_Q4_0(x)  KVW_Q4_0(v + (size_t)j * rb, (d0 + i * W) / W)
#define VDEC_INT8(x)  KVW_INT8(v + (size_t)j * rb, (d0 + i * W) / W)
#define VDEC_NF4(x)   KVW_NF4(v + (size_t)j * rb, (d0 + i * W) / W)
#define VDEC_MXFP4(x) KVW_MXFP4(v + (size_t)j * rb, (d0 + i * W) / W)
PV_ROWS(pv_q8_0, VDEC_Q8_0)
PV_ROWS(pv_q4_0, VDEC_Q4_0)
PV_ROWS(pv_int8, VDEC_INT8)
PV_ROWS(pv_nf4, VDEC_NF4)
PV_ROWS(pv_mxfp4, VDEC_MXFP4)
#undef VDEC_Q8_0
#undef VDEC_Q4_0
#undef VDEC_INT8
#undef VDEC_NF4
#undef VDEC_MXFP4
#undef PV_ROWS

typedef void (*FN(scores_rows_fn))(const float *restrict, const uint8_t *, uint64_t, uint32_t,
                                   float *restrict, uint32_t);

/* 1 when the task goes through tiles_rows (few rows; f16, q8_0, int8, q4_0, nf4, mxfp4; D 64 or
 * 128). The 4-bit formats, whose V pieces are decoded once per 4 rows, only up to 8 rows on AVX2:
 * at 16 rows there it was about 20% slower than the tile loop, on AVX-512 2-17% faster
 * (2026-11-27; for q4_0 an earlier, loaded run had it 3-5% slower). */
static inline int FN(rows_ok)(uint32_t fmt, uint32_t D, uint32_t rows_p) {
    if (D != 64 && D != 128) return 0;
    if (fmt == VT_FMT_F16 || fmt == VT_FMT_Q8_0 || fmt == VT_FMT_INT8) return rows_p <= ROWS_MAX;
    return (fmt == VT_FMT_Q4_0 || fmt == VT_FMT_NF4 || fmt == VT_FMT_MXFP4) &&
           rows_p <= (W == 16 ? ROWS_MAX : ROWS_MAX / 2);
}

ISA_FN static int FN(tiles_rows)(const flash_ctx *c, flash_buf *b, uint32_t hk, int64_t k0,
                                 int64_t k1) {
    const vt_attn_kv *kv = &c->p->kv;
    const uint32_t D = kv->head_dim, rows_p = b->rows_p, fmt = kv->format;
    const uint64_t rb = vt_attn_row_bytes(fmt, D), hs = vt_attn_kv_head_stride(kv);
    const uint8_t *kb = (const uint8_t *)kv->k + hk * hs, *vb = (const uint8_t *)kv->v + hk * hs;
    FN(scores_rows_fn)
    sc = fmt == VT_FMT_F16     ? (D == 128 ? FN(scores_f16_128) : FN(scores_f16_64))
         : fmt == VT_FMT_Q8_0  ? (D == 128 ? FN(scores_q8_0_128) : FN(scores_q8_0_64))
         : fmt == VT_FMT_INT8  ? (D == 128 ? FN(scores_int8_128) : FN(scores_int8_64))
         : fmt == VT_FMT_NF4   ? (D == 128 ? FN(scores_nf4_128) : FN(scores_nf4_64))
         : fmt == VT_FMT_MXFP4 ? (D == 128 ? FN(scores_mxfp4_128) : FN(scores_mxfp4_64))
                               : (D == 128 ? FN(scores_q4_0_128) : FN(scores_q4_0_64));
    for (int64_t j0 = k0; j0 < k1; j0 += BN) {
        uint32_t bn = (uint32_t)(k1 - j0 < BN ? k1 - j0 : BN);
        if (j0 + PF * BN < k1) {
            int64_t pj = j0 + PF * BN, nb = (k1 - pj < BN ? k1 - pj : BN) * (int64_t)rb;
            for (int64_t o = 0; o < nb; o += 64) {
                __builtin_prefetch(kb + pj * rb + o);
                __builtin_prefetch(vb + pj * rb + o);
            }
        }
        sc(b->q, kb + j0 * rb, rb, bn, b->s, rows_p);
        uint32_t jn =
            FN(softmax)(b->s, b->lim, j0, bn, b->rows, rows_p, b->m, b->l, b->alpha, b->vis);
        if (!jn) continue;
        const uint8_t *vr = vb + j0 * rb;
        if (fmt == VT_FMT_F16)
            FN(pv_f16)(b->acc, b->alpha, b->s, b->vis, (const uint16_t *)vr, rows_p, jn, D);
        else if (fmt == VT_FMT_Q8_0)
            FN(pv_q8_0)(b->acc, b->alpha, b->s, b->vis, vr, rb, rows_p, jn, D);
        else if (fmt == VT_FMT_INT8)
            FN(pv_int8)(b->acc, b->alpha, b->s, b->vis, vr, rb, rows_p, jn, D);
        else if (fmt == VT_FMT_NF4)
            FN(pv_nf4)(b->acc, b->alpha, b->s, b->vis, vr, rb, rows_p, jn, D);
        else if (fmt == VT_FMT_MXFP4)
            FN(pv_mxfp4)(b->acc, b->alpha, b->s, b->vis, vr, rb, rows_p, jn, D);
        else
            FN(pv_q4_0)(b->acc, b->alpha, b->s, b->vis, vr, rb, rows_p, jn, D);
        uint32_t ja, jb;
        if (vis_span(b->vis, rows_p, jn, &ja, &jb)) {
            int rc =
                vt_attn_kv_dequantize_rows(fmt, vr + ja * rb, jb - ja, D, kv->tensor_scale, b->tmp);
            if (rc) return rc;
            FN(pv_ragged)(b->acc, D, b->s, b->vis, rows_p, jn, b->tmp, D, ja, D);
        }
    }
    return 0;
}
#endif /* ROWS_DECODE */

/* Keys [k0, k1) of one task (see flash_tile): dequantize each BN-key tile, scores, softmax,
 * P·V. Returns 0 or the K/V decoder's code. */
ISA_FN static int FN(tiles)(const flash_ctx *c, flash_buf *b, uint32_t hk, int64_t k0, int64_t k1) {
    const vt_attn_kv *kv = &c->p->kv;
    const uint32_t D = kv->head_dim, Dv = b->dv, rows_p = b->rows_p;
#ifdef ROWS_DECODE
    if (FN(rows_ok)(kv->format, D, rows_p) && Dv == D) return FN(tiles_rows)(c, b, hk, k0, k1);
#endif
    const uint64_t rb = vt_attn_row_bytes(kv->format, D), hs = vt_attn_kv_head_stride(kv);
    const uint8_t *kb = (const uint8_t *)kv->k + hk * hs, *vb = (const uint8_t *)kv->v + hk * hs;
    for (int64_t j0 = k0; j0 < k1; j0 += BN) {
        uint32_t bn = (uint32_t)(k1 - j0 < BN ? k1 - j0 : BN);
        if (j0 + PF * BN < k1) { /* K/V rows PF tiles ahead: hide the memory latency */
            int64_t pj = j0 + PF * BN, nb = (k1 - pj < BN ? k1 - pj : BN) * (int64_t)rb;
            for (int64_t o = 0; o < nb; o += 64) {
                __builtin_prefetch(kb + pj * rb + o);
                __builtin_prefetch(vb + pj * rb + o);
            }
        }
        int rc = 0;
#if TRANSPOSE8
        if (kv->format == VT_FMT_F16 && D % 8 == 0) {
            FN(transpose_k_f16)((const uint16_t *)(kb + j0 * rb), b->kt, bn, D);
        } else
#endif
        {
            rc = vt_attn_kv_dequantize_rows(kv->format, kb + j0 * rb, bn, D, kv->tensor_scale,
                                            b->tmp);
            if (rc) return rc;
            FN(transpose_k)(b->tmp, b->kt, bn, D);
        }
        FN(scores)(b->q, b->kt, b->s, rows_p, D);
        uint32_t jn =
            FN(softmax)(b->s, b->lim, j0, bn, b->rows, rows_p, b->m, b->l, b->alpha, b->vis);
        if (!jn) continue;
#ifdef VLOADH
        if (kv->format == VT_FMT_F16 && Dv == D && rows_p <= PV_F16_ROWS) {
            const uint8_t *vr = vb + j0 * rb;
            FN(pv_f16)(b->acc, b->alpha, b->s, b->vis, (const uint16_t *)vr, rows_p, jn, D);
            uint32_t ja, jb;
            if (vis_span(b->vis, rows_p, jn, &ja, &jb)) {
                rc = vt_attn_kv_dequantize_rows(kv->format, vr + ja * rb, jb - ja, D,
                                                kv->tensor_scale, b->tmp);
                if (rc) return rc;
                FN(pv_ragged)(b->acc, D, b->s, b->vis, rows_p, jn, b->tmp, D, ja, D);
            }
            continue;
        }
#endif
        if (Dv == D) {
            rc =
                vt_attn_kv_dequantize_rows(kv->format, vb + j0 * rb, jn, D, kv->tensor_scale, b->v);
        } else { /* padded columns stay zero */
            rc = vt_attn_kv_dequantize_rows(kv->format, vb + j0 * rb, jn, D, kv->tensor_scale,
                                            b->tmp);
            for (uint32_t j = 0; j < jn && !rc; j++)
                memcpy(b->v + (size_t)j * Dv, b->tmp + (size_t)j * D, D * sizeof(float));
        }
        if (rc) return rc;
        FN(pv)(b->acc, b->alpha, b->s, b->vis, b->v, rows_p, jn, Dv);
        uint32_t ja, jb;
        if (vis_span(b->vis, rows_p, jn, &ja, &jb))
            FN(pv_ragged)(b->acc, Dv, b->s, b->vis, rows_p, jn, b->v, Dv, 0, D);
    }
    return 0;
}

/* the vocabulary is the includer's for one instruction set only */
#undef ISA_FN
#undef FN
#undef W
#undef NVS
#undef NVP
#undef TRANSPOSE8
#undef VF
#undef VI
#undef VLOAD
#undef VSTORE
#undef VSET1
#undef VZERO
#undef VADD
#undef VSUB
#undef VMUL
#undef VFMA
#undef VMAX
#undef VHMAX
#undef VHSUM
#undef VCVTT
#undef VCVTI
#undef VIADD
#undef VSLL23
#undef VASF
#undef VLOADH
#undef PV_TILES
#undef ROWS_DECODE
#undef KVW_F16
#undef KVW_Q8_0
#undef KVW_Q4_0
#undef KVW_INT8
#undef KVW_NF4
#undef KVW_MXFP4
