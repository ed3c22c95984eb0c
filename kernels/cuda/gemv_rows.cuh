/* kernels/cuda/gemv_rows.cuh — the register GEMV (gemv.cu gemv_rows) for batch 1-2 on dense
 * rows, as a template over the thread context so that tests/kernels/gemv_cta_host.cu runs its
 * whole CTAs on the host.
 *
 * Why: the staged kernel (gemv_cta.cuh) reads x from shared memory for every weight (4 bytes of
 * shared-memory traffic per weight, 8x the bytes of a 4-bit weight) and decodes its units from
 * staged bytes with byte loads at a unit's stride (several-way bank conflicts); on an H200 it
 * reached 15-33% of copy bandwidth (docs/BENCHMARKS.md). Here a CTA of GVR_W warps takes R rows;
 * its warps split the row's units (warp w takes the 32-unit chunks w, w + GVR_W, ...), lane j
 * unit j of a chunk. A lane loads x for its unit's 32 columns into registers once (AWQ: divided
 * by the channel scales there) and reuses them for all R rows, decoding each row's unit straight
 * from global memory in registers (no shared memory, no barrier in the loop; every row's loads
 * are independent, so R units are in flight per lane). The partial sums end in a shuffle
 * reduction per warp and one sum over the warps through shared memory. */
#ifndef VT_GEMV_ROWS_CUH
#define VT_GEMV_ROWS_CUH

#include <float.h>

#include "gemv_lane.cuh"

#define GVR_W 4 /* warps per CTA */

/* Formats gemv.cu gives this kernel: on an H200 (docs/BENCHMARKS.md, 2026-11-26) it was slower
 * than the staged kernel for awq_int4 (x divided by the channel scales per lane and unit: 2x),
 * q6_k (210-byte blocks decoded bytewise from global memory: 1.2x) and int8 (1.07x at
 * 8192 x 28672), and faster for the others (f16 6x, q4_0/q4_1/nf4/q8_0 1.2-1.3x). gemv.cu
 * tries the integer kernel below first; with VT_GEMV_KERNEL=float its formats come here, but
 * int8 (not paying here) goes to the staged kernel, and so does awq_int4 (in the integer kernel
 * by default since 2026-11-27: its per-unit work there is q4_0's plus a zero point). */
template <int F> constexpr bool gvr_pays() {
    return F != VT_FMT_AWQ_INT4 && F != VT_FMT_Q6_K && F != VT_FMT_INT8;
}

/* Rows per CTA: x in registers is 32 x NB floats per lane, so fewer rows at batch 2 */
template <int NB> struct gvr_cfg { static constexpr int R = NB == 1 ? 4 : 2; };

template <int NB> struct gvr_smem {
    float lut[32];
    float red[GVR_W][gvr_cfg<NB>::R * NB];
};

/* x[b][col0 .. col0 + 32) of nb vectors into xr (columns past cols, and vectors past nb, as 0),
 * each divided by aux[col] when aux (AWQ channel scales) is given. */
template <int NB>
VT_HD void gvr_load_x(const float *x, const float *aux, uint64_t cols, uint64_t col0, int nb,
                      bool xvec, float xr[NB][32]) {
    const bool full = col0 + 32 <= cols;
    VT_UNROLL
    for (int b = 0; b < NB; b++) {
        const float *xp = x + (uint64_t)b * cols + col0;
        if (b < nb && xvec && full) {
            VT_UNROLL
            for (int i = 0; i < 8; i++) {
                const float4 q = VT_LDG((const float4 *)xp + i);
                xr[b][4 * i] = q.x, xr[b][4 * i + 1] = q.y, xr[b][4 * i + 2] = q.z;
                xr[b][4 * i + 3] = q.w;
            }
        } else {
            VT_UNROLL
            for (int i = 0; i < 32; i++)
                xr[b][i] = b < nb && col0 + i < cols ? VT_LDG(xp + i) : 0.0f;
        }
        if (aux) {
            VT_UNROLL
            for (int i = 0; i < 32; i++)
                if (col0 + i < cols) xr[b][i] = vt_fdiv_fast(xr[b][i], VT_LDG(aux + col0 + i));
        }
    }
}

/* Integer q (0 <= q < 2^23) as a float minus k, exactly: the bits of 2^23 + q are 0x4B000000 | q
 * (two integer-pipe operations at most, where a conversion instruction runs at a fraction of
 * the FMA rate), then one subtraction (exact: both are integers below 2^24). */
VT_HD float gvr_int_f(uint32_t q, float k) {
    return vt_dev_as_f32(0x4B000000u | q) - (8388608.0f + k);
}

VT_HD float gvr_f16(uint32_t bits) {
    return __half2float(__ushort_as_half((unsigned short)(bits & 0xFFFFu)));
}

/* The fast form of a unit's dot products, for the formats that have one: the unit's stored
 * words loaded with wide loads (load), then acc[b] += sum_i v_i x[b][i] from them (dot) with the
 * block scale applied once to the sum instead of to every value and integer codes turned into
 * floats by gvr_int_f. The body loads the units of all R rows before it computes any (every
 * row's loads in flight together: with a load-compute pair per row, each row waited for its own
 * loads in turn). A: the alignment the loads need of the row data and the row length (checked
 * once per call); XS: dot needs the sums of x over the unit (offset formats). Only for units
 * whose 32 columns all lie inside the row. */
template <int F> struct gvr_raw {
    static constexpr int A = 0; /* no fast form: the general path */
};
/* s[b] = sum_l val(l) x[b][l] over a unit (val: the unit's value l as a float), in two chains */
template <int NB, class V> VT_HD void gvr_dot_fn(const float xr[NB][32], float s[NB], V val) {
    VT_UNROLL
    for (int b = 0; b < NB; b++) {
        float s0 = 0.0f, s1 = 0.0f;
        VT_UNROLL
        for (int l = 0; l < 32; l += 2) {
            s0 = fmaf(val(l), xr[b][l], s0);
            s1 = fmaf(val(l + 1), xr[b][l + 1], s1);
        }
        s[b] = s0 + s1;
    }
}
/* f16 / bf16 (BF): 16 words of value pairs, 16-byte aligned */
template <bool BF> struct gvr_raw_half {
    static constexpr int A = 16;
    static constexpr bool XS = false;
    uint32_t w[16];
    VT_HD void load(const uint8_t *blk, uint64_t) {
        VT_UNROLL
        for (int k = 0; k < 4; k++) {
            const uint4 q = VT_LDG((const uint4 *)blk + k);
            w[4 * k] = q.x, w[4 * k + 1] = q.y, w[4 * k + 2] = q.z, w[4 * k + 3] = q.w;
        }
    }
    static VT_HD float lo(uint32_t v) { return BF ? vt_dev_as_f32(v << 16) : gvr_f16(v); }
    static VT_HD float hi(uint32_t v) {
        return BF ? vt_dev_as_f32(v & 0xFFFF0000u) : gvr_f16(v >> 16);
    }
    template <int NB>
    VT_HD void dot(const vt_dq_ctx &, const float xr[NB][32], const float *, float acc[NB]) const {
        float s[NB];
        gvr_dot_fn<NB>(xr, s, [&](int l) { return l & 1 ? hi(w[l / 2]) : lo(w[l / 2]); });
        VT_UNROLL
        for (int b = 0; b < NB; b++) acc[b] += s[b];
    }
};
template <> struct gvr_raw<VT_FMT_F16> : gvr_raw_half<false> {};
template <> struct gvr_raw<VT_FMT_BF16> : gvr_raw_half<true> {};
/* sum_i q_i xq_i over a unit whose codes are the nibbles of q[4] as gvr_dot_nib's (NF false),
 * x as int16 pairs (columns 2i, 2i + 1 in xw[i]) */
VT_HD int gvr_idot_nib(const uint32_t q[4], const uint32_t xw[16]) {
    int s = 0;
    VT_UNROLL
    for (int j = 0; j < 4; j++) {
        const uint32_t lo = q[j] & 0x0F0F0F0Fu, hi = (q[j] >> 4) & 0x0F0F0F0Fu;
        s = vt_dp2a_lo(xw[2 * j], lo, s);
        s = vt_dp2a_hi(xw[2 * j + 1], lo, s);
        s = vt_dp2a_lo(xw[8 + 2 * j], hi, s);
        s = vt_dp2a_hi(xw[9 + 2 * j], hi, s);
    }
    return s;
}
/* sum_i q_i xq_i over N words of int8 codes (columns 4k .. 4k + 3 in word k: a unit's 8 for
 * q8_0, int8, q4_k's masked nibbles; nvfp4 4 per block), x as int16 pairs (columns 2i, 2i + 1 in
 * xw[i]; pass xw + 8 for the columns from 16) */
template <int N = 8> VT_HD int gvr_idot_b8(const uint32_t c[N], const uint32_t *xw) {
    int s = 0;
    VT_UNROLL
    for (int k = 0; k < N; k++) {
        s = vt_dp2a_lo(xw[2 * k], c[k], s);
        s = vt_dp2a_hi(xw[2 * k + 1], c[k], s);
    }
    return s;
}
/* q4_0 / q8_0: d (f16), then 16 bytes of nibble pairs (low nibbles columns 0-15) / 32 int8 */
template <int NQ> struct gvr_raw_q0 {
    static constexpr int A = 2;
    static constexpr bool XS = false;
    uint32_t d, q[NQ]; /* 16-bit words */
    VT_HD void load(const uint8_t *blk, uint64_t) {
        const uint16_t *h = (const uint16_t *)blk;
        d = VT_LDG(h);
        VT_UNROLL
        for (int k = 0; k < NQ; k++) q[k] = VT_LDG(h + 1 + k);
    }
    template <int NB>
    VT_HD void dot(const vt_dq_ctx &, const float xr[NB][32], const float *, float acc[NB]) const {
        const float df = gvr_f16(d);
        VT_UNROLL
        for (int b = 0; b < NB; b++) {
            float s0 = 0.0f, s1 = 0.0f;
            VT_UNROLL
            for (int k = 0; k < NQ; k++) {
                if constexpr (NQ == 8) { /* bytes 2k, 2k + 1: columns 2k, 2k + 1, +16 */
                    s0 = fmaf(gvr_int_f(q[k] & 15, 8.0f), xr[b][2 * k], s0);
                    s1 = fmaf(gvr_int_f((q[k] >> 8) & 15, 8.0f), xr[b][2 * k + 1], s1);
                    s0 = fmaf(gvr_int_f((q[k] >> 4) & 15, 8.0f), xr[b][2 * k + 16], s0);
                    s1 = fmaf(gvr_int_f(q[k] >> 12, 8.0f), xr[b][2 * k + 17], s1);
                } else { /* int8 q + 128 = (q ^ 0x80) as unsigned */
                    s0 = fmaf(gvr_int_f((q[k] & 255) ^ 128, 128.0f), xr[b][2 * k], s0);
                    s1 = fmaf(gvr_int_f((q[k] >> 8) ^ 128, 128.0f), xr[b][2 * k + 1], s1);
                }
            }
            acc[b] = fmaf(df, s0 + s1, acc[b]);
        }
    }
    /* the integer kernel's dot: x as int16 pairs xw (columns 2i, 2i + 1 in xw[i]) with scale sx
     * and code sum xs; q4_0 codes c - 8 as c (bytes 0..15) less 8 xs, exact in int32 */
    template <int NB>
    VT_HD void idot(const uint32_t xw[NB][16], const float sx[NB], const int xs[NB],
                    float acc[NB]) const {
        uint32_t cw[NQ / 2];
        VT_UNROLL
        for (int j = 0; j < NQ / 2; j++) cw[j] = q[2 * j] | q[2 * j + 1] << 16;
        idot_words<NB>(d, cw, xw, sx, xs, acc);
    }
    /* the same from the f16 scale d16 and the code words cw (code bytes 4j .. 4j + 3 in cw[j]) */
    template <int NB>
    static VT_HD void idot_words(uint32_t d16, const uint32_t cw[NQ / 2], const uint32_t xw[NB][16],
                                 const float sx[NB], const int xs[NB], float acc[NB]) {
        const float df = gvr_f16(d16);
        VT_UNROLL
        for (int b = 0; b < NB; b++) {
            int s;
            if constexpr (NQ == 8)
                s = gvr_idot_nib(cw, xw[b]) - 8 * xs[b];
            else
                s = gvr_idot_b8(cw, xw[b]);
            acc[b] = fmaf(df * sx[b], (float)s, acc[b]);
        }
    }
};
template <> struct gvr_raw<VT_FMT_Q4_0> : gvr_raw_q0<8> {};
template <> struct gvr_raw<VT_FMT_Q8_0> : gvr_raw_q0<16> {};
/* 4-bit codes in 4 words: value i of the unit is nibble i of byte i % 16 (low nibbles columns
 * 0-15, high 16-31; q4_1, q4_k's sub-blocks) or, NF, nibbles of byte i / 2 high first (nf4) */
template <int NB, bool NF>
VT_HD void gvr_dot_nib(const uint32_t q[4], const float *lut, const float xr[NB][32], float s[NB]) {
    VT_UNROLL
    for (int b = 0; b < NB; b++) {
        float s0 = 0.0f, s1 = 0.0f;
        VT_UNROLL
        for (int k = 0; k < 16; k++) {
            const uint32_t by = (q[k / 4] >> (8 * (k % 4))) & 255;
            if constexpr (NF) {
                s0 = fmaf(lut[by >> 4], xr[b][2 * k], s0);
                s1 = fmaf(lut[by & 15], xr[b][2 * k + 1], s1);
            } else {
                s0 = fmaf(gvr_int_f(by & 15, 0.0f), xr[b][k], s0);
                s1 = fmaf(gvr_int_f(by >> 4, 0.0f), xr[b][k + 16], s1);
            }
        }
        s[b] = s0 + s1;
    }
}
/* q4_1: d, m (f16), 16 bytes: v = d q + m, so the dot is d sum q x + m sum x */
template <> struct gvr_raw<VT_FMT_Q4_1> {
    static constexpr int A = 4;
    static constexpr bool XS = true;
    uint32_t dm, q[4];
    VT_HD void load(const uint8_t *blk, uint64_t) {
        const uint32_t *w = (const uint32_t *)blk;
        dm = VT_LDG(w);
        VT_UNROLL
        for (int k = 0; k < 4; k++) q[k] = VT_LDG(w + 1 + k);
    }
    template <int NB>
    VT_HD void dot(const vt_dq_ctx &, const float xr[NB][32], const float *xs,
                   float acc[NB]) const {
        float s[NB];
        gvr_dot_nib<NB, false>(q, nullptr, xr, s);
        const float d = gvr_f16(dm), m = gvr_f16(dm >> 16);
        VT_UNROLL
        for (int b = 0; b < NB; b++) acc[b] = fmaf(d, s[b], fmaf(m, xs[b], acc[b]));
    }
    template <int NB>
    VT_HD void idot(const uint32_t xw[NB][16], const float sx[NB], const int xs[NB],
                    float acc[NB]) const {
        const float d = gvr_f16(dm), m = gvr_f16(dm >> 16);
        VT_UNROLL
        for (int b = 0; b < NB; b++)
            acc[b] = fmaf(d * sx[b], (float)gvr_idot_nib(q, xw[b]),
                          fmaf(m * sx[b], (float)xs[b], acc[b]));
    }
};
/* awq_int4: 128-value blocks of d (f16), the zero point z (byte 2), a pad byte and 64 bytes of
 * codes, column 2i in the low nibble of byte i; unit u % 4 is bytes 16 (u % 4) .. of the codes.
 * v = d (q - z) / s_col: the kernels divide x by the channel scales s when they load or stage it,
 * so the dot here is d sum (q - z) x'. */
template <> struct gvr_raw<VT_FMT_AWQ_INT4> {
    static constexpr int A = 4;
    static constexpr bool XS = false;
    uint32_t dz, q[4];
    VT_HD void load(const uint8_t *blk, uint64_t u) {
        const uint32_t *w = (const uint32_t *)blk;
        dz = VT_LDG(w);
        VT_UNROLL
        for (int k = 0; k < 4; k++) q[k] = VT_LDG(w + 1 + 4 * (u & 3) + k);
    }
    template <int NB>
    VT_HD void dot(const vt_dq_ctx &, const float xr[NB][32], const float *, float acc[NB]) const {
        const float z = (float)((dz >> 16) & 255u);
        float s[NB];
        gvr_dot_fn<NB>(xr, s,
                       [&](int l) { return gvr_int_f((q[l / 8] >> (4 * (l % 8))) & 15, z); });
        VT_UNROLL
        for (int b = 0; b < NB; b++) acc[b] = fmaf(gvr_f16(dz), s[b], acc[b]);
    }
    /* the integer kernel's dot: gvq_cta_body stages this format's x codes in nibble order
     * (position 4j + k holds column 8j + 2k, position 16 + 4j + k column 8j + 2k + 1), as
     * gvr_idot_nib takes them; q - z as q less z times the code sum, exact in int32 */
    template <int NB>
    VT_HD void idot(const uint32_t xw[NB][16], const float sx[NB], const int xs[NB],
                    float acc[NB]) const {
        const float d = gvr_f16(dz);
        const int z = (int)((dz >> 16) & 255u);
        VT_UNROLL
        for (int b = 0; b < NB; b++)
            acc[b] = fmaf(d * sx[b], (float)(gvr_idot_nib(q, xw[b]) - z * xs[b]), acc[b]);
    }
};
/* q4_k: 256-value blocks; unit j = u % 8 is sub-block j, v = d sc_j q - dmin m_j with q the low
 * (even j) or high nibbles of bytes 16 + 32 (j / 2) .. +32 (columns l = 0..31 from byte l) */
template <> struct gvr_raw<VT_FMT_Q4_K> {
    static constexpr int A = 4;
    static constexpr bool XS = true;
    uint32_t dm, q[8];
    float sc, mn;
    VT_HD void load(const uint8_t *blk, uint64_t u) {
        const int j = (int)(u & 7);
        const uint32_t *w = (const uint32_t *)blk;
        dm = VT_LDG(w);
        VT_UNROLL
        for (int k = 0; k < 8; k++) q[k] = VT_LDG(w + 4 + 8 * (j / 2) + k);
        vt_dq_scale_min_k4(j, blk + 4, sc, mn);
        if (j & 1) {
            VT_UNROLL
            for (int k = 0; k < 8; k++) q[k] >>= 4;
        }
    }
    template <int NB>
    VT_HD void dot(const vt_dq_ctx &, const float xr[NB][32], const float *xs,
                   float acc[NB]) const {
        const float d1 = gvr_f16(dm) * sc, m1 = gvr_f16(dm >> 16) * mn;
        VT_UNROLL
        for (int b = 0; b < NB; b++) {
            float s0 = 0.0f, s1 = 0.0f;
            VT_UNROLL
            for (int l = 0; l < 32; l += 2) {
                const uint32_t w = q[l / 4];
                s0 = fmaf(gvr_int_f((w >> (8 * (l % 4))) & 15, 0.0f), xr[b][l], s0);
                s1 = fmaf(gvr_int_f((w >> (8 * (l % 4 + 1))) & 15, 0.0f), xr[b][l + 1], s1);
            }
            acc[b] = fmaf(d1, s0 + s1, fmaf(-m1, xs[b], acc[b]));
        }
    }
    template <int NB>
    VT_HD void idot(const uint32_t xw[NB][16], const float sx[NB], const int xs[NB],
                    float acc[NB]) const {
        const float d1 = gvr_f16(dm) * sc, m1 = gvr_f16(dm >> 16) * mn;
        uint32_t c[8]; /* columns 4k .. 4k + 3 */
        VT_UNROLL
        for (int k = 0; k < 8; k++) c[k] = q[k] & 0x0F0F0F0Fu;
        VT_UNROLL
        for (int b = 0; b < NB; b++)
            acc[b] = fmaf(d1 * sx[b], (float)gvr_idot_b8(c, xw[b]),
                          fmaf(-m1 * sx[b], (float)xs[b], acc[b]));
    }
};
/* Blocks of an f32 scale d and two units' codes, NQ words each (int8, nf4): unit u & 1's */
template <int NQ> struct gvr_raw_f32s {
    static constexpr int A = 4;
    static constexpr bool XS = false;
    uint32_t d, q[NQ];
    VT_HD void load(const uint8_t *blk, uint64_t u) {
        const uint32_t *w = (const uint32_t *)blk;
        d = VT_LDG(w);
        VT_UNROLL
        for (int k = 0; k < NQ; k++) q[k] = VT_LDG(w + 1 + NQ * (u & 1) + k);
    }
};
/* int8: d, 64 int8 codes (columns 4k .. 4k + 3 of the unit in word k) */
template <> struct gvr_raw<VT_FMT_INT8> : gvr_raw_f32s<8> {
    template <int NB>
    VT_HD void dot(const vt_dq_ctx &, const float xr[NB][32], const float *, float acc[NB]) const {
        float s[NB]; /* int8 q + 128 = (q ^ 0x80) as unsigned */
        gvr_dot_fn<NB>(xr, s, [&](int l) {
            return gvr_int_f(((q[l / 4] >> (8 * (l % 4))) & 255) ^ 128, 128.0f);
        });
        VT_UNROLL
        for (int b = 0; b < NB; b++) acc[b] = fmaf(vt_dev_as_f32(d), s[b], acc[b]);
    }
    template <int NB>
    VT_HD void idot(const uint32_t xw[NB][16], const float sx[NB], const int *,
                    float acc[NB]) const {
        VT_UNROLL
        for (int b = 0; b < NB; b++)
            acc[b] = fmaf(vt_dev_as_f32(d) * sx[b], (float)gvr_idot_b8(q, xw[b]), acc[b]);
    }
};
/* Byte i of the result = entry (nibble i of n) of the 16-byte table t0..t3 (entry k at byte
 * k % 4 of word k / 4), for the 4 nibbles in n's low 16 bits: a prmt look-up in each half of the
 * table and a prmt choosing per bit 3 of the nibble. */
VT_HD uint32_t gvr_lut16(uint32_t n, uint32_t t0, uint32_t t1, uint32_t t2, uint32_t t3) {
    const uint32_t sel = n & 0x7777u;
    return vt_prmt(vt_prmt(t0, t1, sel), vt_prmt(t2, t3, sel), 0x3210u | ((n & 0x8888u) >> 1));
}
/* c[2k], c[2k + 1] = the table entries of the nibbles of q[k]'s low and high 16 bits (columns
 * 8k .. 8k + 3, 8k + 4 .. 8k + 7 when column 2i is in the low nibble of byte i) */
template <int NW>
VT_HD void gvr_lut16_words(const uint32_t q[NW], uint32_t c[2 * NW], uint32_t t0, uint32_t t1,
                           uint32_t t2, uint32_t t3) {
    VT_UNROLL
    for (int k = 0; k < NW; k++) {
        c[2 * k] = gvr_lut16(q[k] & 0xFFFFu, t0, t1, t2, t3);
        c[2 * k + 1] = gvr_lut16(q[k] >> 16, t0, t1, t2, t3);
    }
}
/* NF4 levels in the integer kernel (VT_GEMV_LUT=int): L = round(level x 16383) as 128 H + Lo
 * with H, Lo int8 (Lo in 0..127), so that a unit's dot is 128 (x . H) + (x . Lo) by dp2a on two
 * byte planes; L / 16383 is within 2.9e-5 of each level (absolute, levels in [-1, 1]). Entry c
 * of each table at byte c % 4 of word c / 4. */
#define GVR_NF4_S  16383.0f
#define GVR_NF4_H  0xCDBCA680u, 0x00F4E8DBu, 0x2B1F140Au, 0x7F5C4838u
#define GVR_NF4_LO 0x3A667201u, 0x002C2D4Cu, 0x20404D18u, 0x7F440134u
/* nf4: absmax d, 32 bytes of code pairs (high nibble first) */
template <> struct gvr_raw<VT_FMT_NF4> : gvr_raw_f32s<4> {
    template <int NB>
    VT_HD void dot(const vt_dq_ctx &c, const float xr[NB][32], const float *, float acc[NB]) const {
        float s[NB];
        gvr_dot_nib<NB, true>(q, c.lut, xr, s);
        VT_UNROLL
        for (int b = 0; b < NB; b++) acc[b] = fmaf(vt_dev_as_f32(d), s[b], acc[b]);
    }
    /* the integer kernel's dot (VT_GEMV_LUT=int): nibbles swapped into column order (column 2i
     * in the low nibble of byte i), then each code word's two halves through both tables */
    template <int NB>
    VT_HD void idot(const uint32_t xw[NB][16], const float sx[NB], const int *,
                    float acc[NB]) const {
        uint32_t n[4], ch[8], cl[8]; /* columns 4j .. 4j + 3 in word j */
        VT_UNROLL
        for (int k = 0; k < 4; k++) n[k] = (q[k] & 0x0F0F0F0Fu) << 4 | ((q[k] >> 4) & 0x0F0F0F0Fu);
        gvr_lut16_words<4>(n, ch, GVR_NF4_H);
        gvr_lut16_words<4>(n, cl, GVR_NF4_LO);
        const float df = vt_dev_as_f32(d) * (1.0f / GVR_NF4_S);
        VT_UNROLL
        for (int b = 0; b < NB; b++) {
            const float t =
                fmaf(128.0f, (float)gvr_idot_b8(ch, xw[b]), (float)gvr_idot_b8(cl, xw[b]));
            acc[b] = fmaf(df * sx[b], t, acc[b]);
        }
    }
};

/* Whether the format has a fast form (gvr_raw<F>::A > 0) and the weight's data and rows are
 * aligned for its loads: the register kernel's fast form, the integer kernel (checked once per
 * call). */
template <int F> VT_HD bool gvr_aligned(const vt_kp &p) {
    constexpr int A = gvr_raw<F>::A;
    return A > 0 && (uintptr_t)p.data % (A > 0 ? A : 1) == 0 && p.row_bytes % (A > 0 ? A : 1) == 0;
}

/* The warp's sums of acc into red[i NB + b] (lane 0 writes; every lane must call). */
#pragma nv_exec_check_disable
template <int R, int NB, class CX>
VT_HD void gvr_warp_sums(CX &cx, const float acc[R][NB], int lane, float *red) {
    VT_UNROLL
    for (int i = 0; i < R; i++) VT_UNROLL
    for (int b = 0; b < NB; b++) {
        float s = acc[i][b];
        VT_UNROLL
        for (int o = 16; o > 0; o >>= 1) s += cx.shfl_xor(s, o);
        if (lane == 0) red[i * NB + b] = s;
    }
}

/* After the barrier that follows gvr_warp_sums: y[b][r0 + i] = the sum over the warps of
 * red[w][i NB + b], for the CTA's n rows (threads tid < n NB; rows past the matrix and vectors
 * past nb not written). */
template <int NB, int N>
VT_HD void gvr_store_rows(const float (&red)[GVR_W][N], int tid, int n, uint64_t r0, uint64_t rows,
                          int nb, float *y) {
    if (tid >= n * NB) return;
    const int i = tid / NB, b = tid % NB;
    const uint64_t r = r0 + i;
    if (r >= rows || b >= nb) return;
    float s = 0.0f;
    VT_UNROLL
    for (int w = 0; w < GVR_W; w++) s += red[w][tid];
    y[(uint64_t)b * rows + r] = s;
}

/* CTA cta of the register GEMV: y[b][r] for rows r = R cta .. R cta + R - 1. */
#pragma nv_exec_check_disable
template <int F, int NB, class CX>
VT_HD void gvr_cta_body(CX &cx, const vt_kp &p, const float *x, float *y, int nb, bool xvec,
                        gvr_smem<NB> &sm, uint64_t cta) {
    constexpr int R = gvr_cfg<NB>::R;
    const int tid = cx.tid(), warp = tid / 32, lane = tid % 32;
    vt_dq_lut_fill(sm.lut, tid);
    cx.sync(); /* the table visible */
    const uint64_t r0 = cta * R, units = vt_units(p.cols);
    const vt_dq_ctx c = gv_ctx_staged(sm.lut, p); /* AWQ: x divided instead */
    float acc[R][NB];
    VT_UNROLL
    for (int i = 0; i < R; i++) VT_UNROLL
    for (int b = 0; b < NB; b++) acc[i][b] = 0.0f;

    /* the fast form where the format has one and every unit of the rows is aligned for it */
    constexpr int A = gvr_raw<F>::A;
    const bool fast = gvr_aligned<F>(p);
    for (uint64_t u = 32 * (uint64_t)warp + lane; u < units; u += 32 * GVR_W) {
        const uint64_t col0 = 32 * u;
        const bool full = col0 + 32 <= p.cols;
        float xr[NB][32];
        gvr_load_x<NB>(x, p.aux, p.cols, col0, nb, xvec, xr);
        if constexpr (A > 0) {
            if (fast && full) {
                gvr_raw<F> raw[R];
                VT_UNROLL
                for (int i = 0; i < R; i++) /* every row's loads first ... */
                    if (r0 + i < p.rows)
                        raw[i].load(vt_dq_unit_ptr<F>(p.data + (r0 + i) * p.row_bytes, u), u);
                float xs[NB];
                if constexpr (gvr_raw<F>::XS) {
                    VT_UNROLL
                    for (int b = 0; b < NB; b++) {
                        float t = 0.0f;
                        VT_UNROLL
                        for (int e = 0; e < 32; e++) t += xr[b][e];
                        xs[b] = t;
                    }
                }
                VT_UNROLL
                for (int i = 0; i < R; i++) /* ... then the sums */
                    if (r0 + i < p.rows) raw[i].template dot<NB>(c, xr, xs, acc[i]);
                continue;
            }
        }
        VT_UNROLL
        for (int i = 0; i < R; i++) {
            const uint64_t r = r0 + i;
            if (r >= p.rows) break;
            const uint8_t *blk = vt_dq_unit_ptr<F>(p.data + r * p.row_bytes, u);
            float v[32];
            if constexpr (F == VT_FMT_NF4_DQ)
                vt_dq_unit_nf4dq(p.data, p.bpr, r, u, c, v);
            else
                vt_dq_unit<F>(blk, u, col0, c, v);
            if (!full) { /* a block's padding may decode to anything: x is 0 there, v must be */
                VT_UNROLL
                for (int e = 0; e < 32; e++)
                    if (col0 + e >= p.cols) v[e] = 0.0f;
            }
            VT_UNROLL
            for (int b = 0; b < NB; b++) {
                float s0 = 0.0f, s1 = 0.0f; /* two chains: half the FMA latency in the way */
                VT_UNROLL
                for (int e = 0; e < 32; e += 2) {
                    s0 = fmaf(v[e], xr[b][e], s0);
                    s1 = fmaf(v[e + 1], xr[b][e + 1], s1);
                }
                acc[i][b] += s0 + s1;
            }
        }
    }

    gvr_warp_sums<R, NB>(cx, acc, lane, sm.red[warp]);
    cx.sync(); /* every warp's sums in shared memory */
    gvr_store_rows<NB>(sm.red, tid, R, r0, p.rows, nb, y);
}

/* ---- window loads (VT_GEMV_LOAD=window): the integer kernel's q4_0 / q8_0 / q4_1 units by
 * aligned 16-byte loads --------------------------------------------------------------------------
 * A unit of these formats (18 / 34 / 20 bytes at a 2- or 4-byte aligned address) is read by its
 * format's own words above: 9 / 17 / 5 loads of 2 or 4 bytes, and per warp-wide load about 5-9
 * L1 wavefronts (the lanes' units 18-34 bytes apart span 5-9 lines): 45 / 153 / 28 wavefronts
 * per unit and row, against 16 for the 64 bytes of an f16 unit, the format that reaches 95% of
 * copy bandwidth. Here a lane loads the NC 16-byte aligned chunks that hold its unit (2 / 3 / 2
 * loads, about 10 / 27 / 10 wavefronts) and picks the unit's words out in registers by its byte
 * offset s in the first chunk (two select stages for s / 4, one prmt per word for s % 4). A unit
 * whose chunks reach outside the weight's bytes [lo, hi) (the first and last units, when the
 * bytes are not 16-byte aligned at the ends) reads its chunks' words in 2-byte loads of the
 * bytes inside instead. H200 run 6 (docs/BENCHMARKS.md): slower than the word loads for
 * q4_0/q4_1/q4_k, 10% faster for q8_0 at 8192 x 28672, whose batch-1 default they are. */
template <int NC> struct gvw_win {
    static constexpr bool A16 =
        false; /* true: needs 16-byte aligned data and rows (no 2-byte path) */
    uint32_t w[4 * NC], s;
    /* whether the chunks of the unit at blk lie inside [lo, hi) */
    static VT_HD bool fits(const uint8_t *blk, const uint8_t *lo, const uint8_t *hi) {
        const uintptr_t a = (uintptr_t)blk & ~(uintptr_t)15;
        return a >= (uintptr_t)lo && a + 16 * NC <= (uintptr_t)hi;
    }
    VT_HD void load_vec(const uint8_t *blk, uint64_t, const vt_kp &) {
        const uint4 *c = (const uint4 *)((uintptr_t)blk & ~(uintptr_t)15);
        s = (uint32_t)((uintptr_t)blk & 15);
        VT_UNROLL
        for (int k = 0; k < NC; k++) {
            const uint4 q = VT_LDG(c + k);
            w[4 * k] = q.x, w[4 * k + 1] = q.y, w[4 * k + 2] = q.z, w[4 * k + 3] = q.w;
        }
    }
    /* the chunks' 2-byte words inside [lo, hi) (lo, hi and blk 2-byte aligned), 0 elsewhere */
    VT_HD void load_safe(const uint8_t *blk, const uint8_t *lo, const uint8_t *hi, uint64_t,
                         const vt_kp &) {
        const uintptr_t a = (uintptr_t)blk & ~(uintptr_t)15;
        s = (uint32_t)((uintptr_t)blk & 15);
        VT_UNROLL
        for (int i = 0; i < 8 * NC; i++) {
            const uintptr_t h = a + 2 * (uintptr_t)i;
            const uint32_t v =
                h >= (uintptr_t)lo && h + 2 <= (uintptr_t)hi ? VT_LDG((const uint16_t *)h) : 0u;
            if (i & 1)
                w[i / 2] |= v << 16;
            else
                w[i / 2] = v;
        }
    }
    /* the chunks' bytes inside [lo, hi) by byte loads (any alignment), 0 elsewhere */
    VT_HD void load_bytes(const uint8_t *blk, const uint8_t *lo, const uint8_t *hi) {
        const uintptr_t a = (uintptr_t)blk & ~(uintptr_t)15;
        s = (uint32_t)((uintptr_t)blk & 15);
        VT_UNROLL
        for (int i = 0; i < 4 * NC; i++) w[i] = 0u;
        VT_UNROLL
        for (int i = 0; i < 16 * NC; i++) {
            const uintptr_t h = a + (uintptr_t)i;
            if (h >= (uintptr_t)lo && h < (uintptr_t)hi)
                w[i / 4] |= (uint32_t)VT_LDG((const uint8_t *)h) << (8 * (i % 4));
        }
    }
    /* o[j] = the 4 bytes at s + 4j of the chunks (bytes past them 0) */
    template <int NO> VT_HD void words(uint32_t o[NO]) const {
        static_assert(NO + 2 <= 4 * NC + 2, "window too small");
        const uint32_t k = s >> 2, sel = 0x3210u + 0x1111u * (s & 3);
        uint32_t v[NO + 2];
        VT_UNROLL
        for (int i = 0; i < NO + 2; i++) { /* by 2 words when k & 2 */
            const uint32_t a = i < 4 * NC ? w[i] : 0u, b = i + 2 < 4 * NC ? w[i + 2] : 0u;
            v[i] = k & 2 ? b : a;
        }
        VT_UNROLL
        for (int i = 0; i < NO + 1; i++) v[i] = k & 1 ? v[i + 1] : v[i]; /* by 1 when k & 1 */
        VT_UNROLL
        for (int j = 0; j < NO; j++) o[j] = vt_prmt(v[j], v[j + 1], sel);
    }
};
template <int F> struct gvw_raw { static constexpr bool HAS = false; };
/* q4_0 / q8_0: d then the codes at byte 2: code word j = bytes 2 + 4j of the unit */
template <int NQ, int NC> struct gvw_raw_q0 : gvw_win<NC> {
    static constexpr bool HAS = true;
    template <int NB>
    VT_HD void idot(const uint32_t xw[NB][16], const float sx[NB], const int xs[NB],
                    float acc[NB]) const {
        uint32_t o[NQ / 2 + 1], cw[NQ / 2];
        this->template words<NQ / 2 + 1>(o);
        VT_UNROLL
        for (int j = 0; j < NQ / 2; j++) cw[j] = vt_prmt(o[j], o[j + 1], 0x5432u);
        gvr_raw_q0<NQ>::template idot_words<NB>(o[0] & 0xFFFFu, cw, xw, sx, xs, acc);
    }
};
template <> struct gvw_raw<VT_FMT_Q4_0> : gvw_raw_q0<8, 2> {};
template <> struct gvw_raw<VT_FMT_Q8_0> : gvw_raw_q0<16, 3> {};
/* q4_1: the block's 5 words as gvr_raw<VT_FMT_Q4_1> holds them */
template <> struct gvw_raw<VT_FMT_Q4_1> : gvw_win<2> {
    static constexpr bool HAS = true;
    template <int NB>
    VT_HD void idot(const uint32_t xw[NB][16], const float sx[NB], const int xs[NB],
                    float acc[NB]) const {
        uint32_t o[5];
        this->template words<5>(o);
        gvr_raw<VT_FMT_Q4_1> r;
        r.dm = o[0];
        VT_UNROLL
        for (int k = 0; k < 4; k++) r.q[k] = o[1 + k];
        r.template idot<NB>(xw, sx, xs, acc);
    }
};
/* q4_k (A16: gemv.cu takes it only for 16-byte aligned data and rows, where 144-byte blocks keep
 * every chunk aligned): a unit's three 16-byte chunks, the block's d, dmin and 12 scale bytes and
 * its sub-block pair's 32 code bytes, against 13 word loads and the scale bytes' 3 byte loads of
 * gvr_raw<VT_FMT_Q4_K>; the sub-block's scale and min picked out of the registers. */
template <> struct gvw_raw<VT_FMT_Q4_K> {
    static constexpr bool HAS = true, A16 = true;
    gvr_raw<VT_FMT_Q4_K> r;
    static VT_HD bool fits(const uint8_t *, const uint8_t *, const uint8_t *) { return true; }
    VT_HD void load_vec(const uint8_t *blk, uint64_t u, const vt_kp &) {
        const int j = (int)(u & 7);
        const uint4 *c = (const uint4 *)blk;
        const uint4 h = VT_LDG(c), a = VT_LDG(c + 1 + 2 * (j / 2)), b = VT_LDG(c + 2 + 2 * (j / 2));
        r.dm = h.x;
        r.q[0] = a.x, r.q[1] = a.y, r.q[2] = a.z, r.q[3] = a.w;
        r.q[4] = b.x, r.q[5] = b.y, r.q[6] = b.z, r.q[7] = b.w;
        if (j & 1) {
            VT_UNROLL
            for (int k = 0; k < 8; k++) r.q[k] >>= 4;
        }
        /* scale bytes j, j + 4 (and j - 4, j + 4, j for j >= 4) as vt_dq_scale_min_k4 reads them:
         * byte k of the 12 is byte k % 4 of h's word 1 + k / 4 */
        const int sh = 8 * (j & 3);
        const uint32_t b1 = (h.y >> sh) & 255u, b2 = (h.z >> sh) & 255u, b3 = (h.w >> sh) & 255u;
        if (j < 4) {
            r.sc = (float)(b1 & 63u);
            r.mn = (float)(b2 & 63u);
        } else {
            r.sc = (float)((b3 & 15u) | (b1 >> 6) << 4);
            r.mn = (float)((b3 >> 4) | (b2 >> 6) << 4);
        }
    }
    VT_HD void load_safe(const uint8_t *blk, const uint8_t *, const uint8_t *, uint64_t u,
                         const vt_kp &p) {
        load_vec(blk, u, p); /* not reached: fits() holds for aligned data */
    }
    template <int NB>
    VT_HD void idot(const uint32_t xw[NB][16], const float sx[NB], const int xs[NB],
                    float acc[NB]) const {
        r.template idot<NB>(xw, sx, xs, acc);
    }
};

/* E2M1 codes (sign bit 3) are integers at twice their value: 0, 1, 2, 3, 4, 6, 8, 12 and their
 * negatives, the table below. c[2k], c[2k + 1] = those int8 values of columns 8k .. 8k + 3,
 * 8k + 4 .. 8k + 7 from the code word q[k] (column 2i in the low nibble of byte i), as
 * gvr_idot_b8 takes them */
template <int NW> VT_HD void gvr_e2m1_words(const uint32_t q[NW], uint32_t c[2 * NW]) {
    gvr_lut16_words<NW>(q, c, 0x03020100u, 0x0C080604u, 0xFDFEFF00u, 0xF4F8FAFCu);
}
/* mxfp4 / nvfp4 in the integer kernel (VT_GEMV_LUT=int): byte-aligned blocks (17 / 9 bytes),
 * always by window loads (2 / 3 aligned 16-byte chunks; the units at the weight's ends by byte
 * loads), codes to int8 by gvr_e2m1_words and dotted with dp2a. mxfp4: a unit is a block, scale
 * 2^(e - 128) per unit for the doubled codes (e 255: NaN). nvfp4: a unit is two blocks of 16,
 * each with its E4M3 scale, times the tensor scale; the second block is skipped where the row
 * ends after the first (its bytes are the next row's). */
template <int F> struct gvq_fp4 : gvw_win<F == VT_FMT_MXFP4 ? 2 : 3> {
    static constexpr bool HAS = true, A16 = false, MX = F == VT_FMT_MXFP4;
    using win = gvw_win<MX ? 2 : 3>;
    float ts;
    bool two; /* nvfp4: the unit's second block lies inside the row */
    static VT_HD bool fits(const uint8_t *blk, const uint8_t *lo, const uint8_t *hi) {
        return win::fits(blk, lo, hi);
    }
    VT_HD void set(uint64_t u, const vt_kp &p) {
        ts = p.tensor_scale;
        two = 32 * u + 16 < p.cols;
    }
    VT_HD void load_vec(const uint8_t *blk, uint64_t u, const vt_kp &p) {
        win::load_vec(blk, u, p);
        set(u, p);
    }
    VT_HD void load_safe(const uint8_t *blk, const uint8_t *lo, const uint8_t *hi, uint64_t u,
                         const vt_kp &p) {
        this->load_bytes(blk, lo, hi);
        set(u, p);
    }
    template <int NB>
    VT_HD void idot(const uint32_t xw[NB][16], const float sx[NB], const int *,
                    float acc[NB]) const {
        if constexpr (MX) { /* bytes 0: e, 1 .. 16: codes */
            uint32_t o[5], q[4], c[8];
            this->template words<5>(o);
            VT_UNROLL
            for (int k = 0; k < 4; k++) q[k] = vt_prmt(o[k], o[k + 1], 0x4321u);
            gvr_e2m1_words<4>(q, c);
            /* 2^(e - 128); e 0 and 1 give the subnormals 2^-128, 2^-127 (the GPU's FTZ arithmetic
             * flushes their products, the reference keeps them: values below 2^-126) */
            const uint32_t e = o[0] & 0xFFu;
            const float d = e == 255u ? vt_dev_as_f32(0x7fc00000u)
                            : e >= 2u ? vt_dev_as_f32((e - 1u) << 23)
                                      : vt_dev_as_f32(0x00200000u << e);
            VT_UNROLL
            for (int b = 0; b < NB; b++)
                acc[b] = fmaf(d * sx[b], (float)gvr_idot_b8(c, xw[b]), acc[b]);
        } else { /* blocks at bytes 0 and 9: scale, then 8 code bytes */
            uint32_t o[5], q0[2], q1[2], c0[4], c1[4];
            this->template words<5>(o);
            q0[0] = vt_prmt(o[0], o[1], 0x4321u), q0[1] = vt_prmt(o[1], o[2], 0x4321u);
            q1[0] = vt_prmt(o[2], o[3], 0x5432u), q1[1] = vt_prmt(o[3], o[4], 0x5432u);
            gvr_e2m1_words<2>(q0, c0);
            gvr_e2m1_words<2>(q1, c1);
            /* halved codes: ts e4m3 / 2 */
            const float d0 = 0.5f * ts * vt_dev_e4m3((uint8_t)(o[0] & 0xFFu));
            const float d1 = two ? 0.5f * ts * vt_dev_e4m3((uint8_t)((o[2] >> 8) & 0xFFu)) : 0.0f;
            VT_UNROLL
            for (int b = 0; b < NB; b++) {
                float t = d0 * (float)gvr_idot_b8<4>(c0, xw[b]);
                if (two) t = fmaf(d1, (float)gvr_idot_b8<4>(c1, xw[b] + 8), t);
                acc[b] = fmaf(sx[b], t, acc[b]);
            }
        }
    }
};
template <> struct gvw_raw<VT_FMT_MXFP4> : gvq_fp4<VT_FMT_MXFP4> {};
template <> struct gvw_raw<VT_FMT_NVFP4> : gvq_fp4<VT_FMT_NVFP4> {};

/* ---- the integer kernel (gemv.cu gemv_rows_int): q4_0, q4_1, q4_k, q8_0, int8, awq_int4 at
 * batch 1-2 (awq: its x staged divided by the channel scales, in its nibble order) ---
 * The register kernel above measured (H100, 2026-11-26) 28-49% of copy bandwidth on 4-bit rows:
 * about five instructions per weight (nibble extract, int-to-float, FMA) leave the SM's issue
 * slots, not memory, the limit, and every lane loaded x for its unit with 8 strided 16-byte loads
 * for every R rows. Here the CTA first quantizes x once into shared memory: per 32-column unit
 * an int16 code per column (round to nearest at scale amax / 32767: each x off by at most
 * 2^-16 of its unit's largest |x|; on the GPU, whose scales flush to zero below 2^-126, a unit
 * whose |x| all lie below about 1e-33 counts as 0), the scale, and the codes' sum. Then, as in the
 * register kernel, lane j of warp w takes the units j + 32 w, + 32 GVR_W, ... of R rows at a time,
 * loading every row's unit before any sums; a unit's 64 bytes of x come from shared memory in 4
 * conflict-free 16-byte reads (chunk c of every unit together: [c][unit]), and its dot is integer:
 * dp2a (two int16 x int8 products per instruction) on the codes as they are stored, the block scale
 * and offset applied once per unit (q4_0: c - 8 is c less 8 times the code sum). A CTA takes G
 * groups of R rows in turn (G from the launch: the x quantization amortized over R G rows).
 * Non-finite x gives its unit's scale NaN, so the rows' sums are NaN, not a silent number. */
#define GVQ_GMAX 4

template <int F> constexpr bool gvq_fmt() {
    return F == VT_FMT_Q4_0 || F == VT_FMT_Q4_1 || F == VT_FMT_Q4_K || F == VT_FMT_Q8_0 ||
           F == VT_FMT_INT8 || F == VT_FMT_AWQ_INT4;
}

/* the integer kernel's unit loader: the format's words, or (WIN) the window loads */
template <int F, bool WIN> struct gvq_raw_t { using type = gvr_raw<F>; };
template <int F> struct gvq_raw_t<F, true> { using type = gvw_raw<F>; };

/* rows in flight per lane (R, a launch choice: VT_GEMV_R) and the default */
template <int NB> struct gvq_cfg {
    static constexpr int R = NB == 1 ? 8 : 4, RALT = NB == 1 ? 4 : 2;
};
template <int NB, int R> struct gvq_smem { float red[GVR_W][GVQ_GMAX * R * NB]; };

/* Dynamic shared memory of the x codes for cols columns: per vector, 4 x U 16-byte chunks, then
 * U scales and U code sums (U units). */
VT_HD uint64_t gvq_dyn_bytes(uint64_t cols, int nb) {
    return (uint64_t)nb * vt_units(cols) * (64 + 8);
}

/* NH halves: a CTA of NH x GVR_W warps, the x codes shared by NH groups of GVR_W warps, half h
 * taking row groups h, h + NH, ... (NH 2: twice the warps, so twice the weight bytes in flight,
 * per CTA's x codes; H200 run 6's profile of NH 1 found 2 CTAs, 8 warps, per SM, DRAM 32% busy
 * and no eligible warp 73% of the cycles). */
#pragma nv_exec_check_disable
template <int F, int NB, int R, bool WIN, int NH, class CX>
VT_HD void gvq_cta_body(CX &cx, const vt_kp &p, const float *x, float *y, int nb, bool xvec,
                        gvq_smem<NB, R> &sm, unsigned char *dyn, uint64_t cta, int G) {
    static_assert(!WIN || gvw_raw<F>::HAS, "window loads: q4_0, q8_0, q4_1, q4_k, mxfp4, nvfp4");
    static_assert(NH == 1 || NH == 2, "one or two halves");
    const int tid = cx.tid(), lane = tid % 32, half = tid / 32 / GVR_W, warp = tid / 32 % GVR_W;
    const uint64_t U = vt_units(p.cols);
    uint4 *xq = reinterpret_cast<uint4 *>(dyn);              /* [b][c][u] */
    float *xsc = reinterpret_cast<float *>(xq + 4 * NB * U); /* [b][u] */
    int *xsum = reinterpret_cast<int *>(xsc + NB * U);       /* [b][u] */

    /* x to int16 codes: 8 threads per unit, 4 columns each (16 NH units per pass of the CTA) */
    const int part = tid % 8;
    for (uint64_t u0 = 0; u0 < U; u0 += GVR_W * 4 * NH) {
        const uint64_t u = u0 + tid / 8, col = 32 * u + 4 * part;
        VT_UNROLL
        for (int b = 0; b < NB; b++) {
            float v[4] = {0.0f, 0.0f, 0.0f, 0.0f};
            if constexpr (F == VT_FMT_AWQ_INT4) {
                /* awq: this thread's positions 4 part + i hold columns 8 (part % 4) + 2 i +
                 * part / 4 (the nibble order of gvr_raw<AWQ>::idot), divided by their channel
                 * scales */
                VT_UNROLL
                for (int i = 0; i < 4; i++) {
                    const uint64_t c = 32 * u + 8 * (part % 4) + 2 * i + part / 4;
                    if (u < U && b < nb && c < p.cols) {
                        v[i] = VT_LDG(x + (uint64_t)b * p.cols + c);
                        if (p.aux) v[i] = vt_fdiv_fast(v[i], VT_LDG(p.aux + c));
                    }
                }
            } else if (u < U && b < nb) {
                const float *xp = x + (uint64_t)b * p.cols + col;
                if (xvec && col + 4 <= p.cols) {
                    const float4 q = VT_LDG((const float4 *)xp);
                    v[0] = q.x, v[1] = q.y, v[2] = q.z, v[3] = q.w;
                } else {
                    VT_UNROLL
                    for (int i = 0; i < 4; i++)
                        if (col + i < p.cols) v[i] = VT_LDG(xp + i);
                }
            }
            float am = 0.0f; /* max |v|; a NaN counts as infinite (fmaxf would drop it) */
            VT_UNROLL
            for (int i = 0; i < 4; i++)
                am = fmaxf(am, fabsf(v[i]) <= FLT_MAX ? fabsf(v[i]) : INFINITY);
            VT_UNROLL
            for (int o = 1; o < 8; o <<= 1) am = fmaxf(am, cx.shfl_xor(am, o));
            /* codes v 32767 / am, |code| <= 32767, with v and am first brought near 1 by an
             * exact power of two p2 where am is beyond 2^+-64 (32767 / am would overflow for
             * tiny am, and fast-math division gives 0 above 2^126) */
            const bool fin = am <= FLT_MAX, pos = fin && am > 0.0f;
            const float p2 = am > 0x1p64f ? 0x1p-64f : am < 0x1p-64f ? 0x1p64f : 1.0f;
            const float inv = pos ? 32767.0f / (am * p2) : 0.0f;
            int qi[4], s = 0;
            VT_UNROLL
            for (int i = 0; i < 4; i++) {
                const int q = pos ? vt_rni(v[i] * p2 * inv) : 0;
                s += qi[i] = q > 32767 ? 32767 : q < -32767 ? -32767 : q;
            }
            float fs = (float)s; /* |sum| <= 32 x 32767: exact */
            VT_UNROLL
            for (int o = 1; o < 8; o <<= 1) fs += cx.shfl_xor(fs, o);
            if (u < U) {
                uint2 w;
                w.x = ((uint32_t)qi[0] & 0xFFFFu) | (uint32_t)qi[1] << 16;
                w.y = ((uint32_t)qi[2] & 0xFFFFu) | (uint32_t)qi[3] << 16;
                reinterpret_cast<uint2 *>(xq + ((uint64_t)b * 4 + part / 2) * U + u)[part & 1] = w;
                if (part == 0) {
                    xsc[(uint64_t)b * U + u] = fin ? am * (1.0f / 32767.0f) : NAN;
                    xsum[(uint64_t)b * U + u] = (int)fs;
                }
            }
        }
    }
    cx.sync(); /* the codes visible */

    for (int g = half; g < G; g += NH) {
        const uint64_t r0 = (cta * (uint64_t)G + (uint64_t)g) * R;
        if (r0 >= p.rows) break; /* the same for the whole CTA */
        float acc[R][NB];
        VT_UNROLL
        for (int i = 0; i < R; i++) VT_UNROLL
        for (int b = 0; b < NB; b++) acc[i][b] = 0.0f;
        for (uint64_t u = 32 * (uint64_t)warp + lane; u < U; u += 32 * GVR_W) {
            using RAW = typename gvq_raw_t<F, WIN>::type;
            RAW raw[R];
            if constexpr (WIN) { /* aligned chunks where every row's fit, else 2-byte words */
                const uint8_t *hi = p.data + p.bytes;
                bool fit = true;
                VT_UNROLL
                for (int i = 0; i < R; i++)
                    if (r0 + i < p.rows)
                        fit =
                            fit && RAW::fits(vt_dq_unit_ptr<F>(p.data + (r0 + i) * p.row_bytes, u),
                                             p.data, hi);
                VT_UNROLL
                for (int i = 0; i < R; i++) {
                    if (r0 + i >= p.rows) continue;
                    const uint8_t *blk = vt_dq_unit_ptr<F>(p.data + (r0 + i) * p.row_bytes, u);
                    if (fit)
                        raw[i].load_vec(blk, u, p);
                    else
                        raw[i].load_safe(blk, p.data, hi, u, p);
                }
            } else {
                VT_UNROLL
                for (int i = 0; i < R; i++) /* every row's loads first ... */
                    if (r0 + i < p.rows)
                        raw[i].load(vt_dq_unit_ptr<F>(p.data + (r0 + i) * p.row_bytes, u), u);
            }
            uint32_t xw[NB][16];
            float sx[NB];
            int xs[NB];
            VT_UNROLL
            for (int b = 0; b < NB; b++) {
                VT_UNROLL
                for (int c = 0; c < 4; c++) {
                    const uint4 q = xq[((uint64_t)b * 4 + c) * U + u];
                    xw[b][4 * c] = q.x, xw[b][4 * c + 1] = q.y, xw[b][4 * c + 2] = q.z;
                    xw[b][4 * c + 3] = q.w;
                }
                sx[b] = xsc[(uint64_t)b * U + u];
                xs[b] = xsum[(uint64_t)b * U + u];
            }
            VT_UNROLL
            for (int i = 0; i < R; i++) /* ... then the sums */
                if (r0 + i < p.rows) raw[i].template idot<NB>(xw, sx, xs, acc[i]);
        }
        gvr_warp_sums<R, NB>(cx, acc, lane, sm.red[warp] + g * R * NB);
    }
    cx.sync(); /* every warp's sums in shared memory */
    gvr_store_rows<NB>(sm.red, tid, G * R, cta * (uint64_t)G * R, p.rows, nb, y);
}

#endif
