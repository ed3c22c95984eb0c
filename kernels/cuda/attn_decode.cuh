/* kernels/cuda/attn_decode.cuh — the split-KV decode kernel's body, the combine step and the
 * split plan (attn_decode.cu), as templates over the thread context so that
 * tests/attn/attn_kern_host.cu runs them on the host. See attn_decode.cu for the algorithm. */
#ifndef VT_ATTN_DECODE_CUH
#define VT_ATTN_DECODE_CUH

#include <math.h>

#include "attn_common.cuh"

namespace vt_decode {

constexpr int NW = 4, NTH = NW * 32, KT = 32;

/* K/V rows reach the warps two ways: f32/f16/bf16 caches straight from global memory into
 * registers (UB steps' rows in flight per lane); the quantized caches (PIPE) through shared
 * memory, each warp copying its tile's stored K bytes and then its V bytes by cp.async into its
 * own two slots (K, V), so that one half tile is in flight while the other is computed: the V
 * bytes of tile j during its scores, the K bytes of tile j + 1 during its P V. Half the shared
 * memory of whole-tile double buffering for the same bytes in flight per warp, so that twice
 * the CTAs fit on an SM. */
template <int FMT> constexpr bool pipe() {
    return FMT != VT_FMT_F32 && FMT != VT_FMT_F16 && FMT != VT_FMT_BF16;
}

/* Formats whose values are integers times a per-block scale: their scores are integer dot
 * products (dp2a: 16-bit Q x 8-bit K, 4 values per 2 instructions, no conversions) of the K
 * bytes with Q quantized to int16 per block (relative error 2^-16 of the block's largest |Q|),
 * scaled per block at the end. */
template <int FMT> VT_HD constexpr bool ints() {
    return FMT == VT_FMT_Q8_0 || FMT == VT_FMT_Q4_0 || FMT == VT_FMT_INT8;
}
template <int FMT> VT_HD constexpr int iqk() {
    return FMT == VT_FMT_INT8 ? VT_QK_INT8 : 32;
}
template <int FMT> VT_HD constexpr int iblk() {
    return FMT == VT_FMT_Q8_0   ? (int)sizeof(vt_block_q8_0)
           : FMT == VT_FMT_Q4_0 ? (int)sizeof(vt_block_q4_0)
                                : (int)sizeof(vt_block_int8);
}
template <int FMT> VT_HD constexpr int ioff() {
    return FMT == VT_FMT_INT8 ? 4 : 2;
} /* scale bytes */
template <int FMT> VT_HD constexpr int iplanes() {
    return FMT == VT_FMT_Q4_0 ? 2 : 1;
}
template <int D, int FMT> VT_HD constexpr int irow() {
    return D / iqk<FMT>() * iblk<FMT>();
}

/* The value stored at byte x of a row of an integer format, plane pl (q4_0: 0 the low nibble,
 * 1 the high one), or -1 (a scale byte, outside the row). */
template <int D, int FMT> VT_HD constexpr int ielem(int x, int pl) {
    if (x < 0 || x >= irow<D, FMT>()) return -1;
    const int b = x / iblk<FMT>(), o = x % iblk<FMT>() - ioff<FMT>();
    if (o < 0) return -1;
    if (FMT == VT_FMT_Q4_0) return 32 * b + o + 16 * pl;
    return pl ? -1 : iqk<FMT>() * b + o;
}

/* The block whose values lie in word i of a row read from 4-byte-aligned address row - ph
 * (bytes 4i - ph .. 4i - ph + 3; -1: none). With ph 0 or 2 a word never holds values of two
 * blocks: the scale bytes (2 or 4) between two blocks' values are at even offsets. */
template <int D, int FMT> VT_HD constexpr int iword_blk(int i, int ph) {
    for (int j = 0; j < 4; j++) {
        const int e = ielem<D, FMT>(4 * i - ph + j, 0);
        if (e >= 0) return e / iqk<FMT>();
    }
    return -1;
}

template <int D, int RB, int FMT> struct smem {
    static constexpr bool PIPE = pipe<FMT>(), INT = ints<FMT>();
    /* one warp's K or V tile of stored bytes, at its global start's offset within 16 bytes
     * (+ 16: that offset, and the int scorer's word read past a row's end) */
    static constexpr int TB = PIPE ? (KT * vt_kv_row_bytes<FMT>(D) + 31) / 16 * 16 : 16;
    /* int scorer: words of a row read (from 2 bytes before it when it starts at 2 mod 4),
     * Q's int16 per byte of a word and plane, blocks per row */
    static constexpr int NQW = INT ? (vt_kv_row_bytes<FMT>(D) + 5) / 4 : 1;
    static constexpr int NQP = INT ? 2 * iplanes<FMT>() : 1;
    static constexpr int NB = INT ? D / iqk<FMT>() : 1;
    float q[RB][D];
    long long lim[RB];
    float p[NW][RB][KT];
    float wm[NW][RB], wl[NW][RB];
    union {
        float wacc[NW][RB][D];                        /* after the key loop */
        alignas(16) uint8_t kv[PIPE ? NW : 1][2][TB]; /* [warp][K, V] */
    } u;
    /* [row][word][plane pairs]: Q as int16 at the byte positions of the K values they multiply
     * (0 at scale bytes), two per 32-bit word as dp2a takes them */
    alignas(16) uint32_t qi[INT ? RB : 1][NQW][NQP];
    float qd[INT ? RB : 1][NB], qinv[INT ? RB : 1][NB]; /* Q's int16 step per block, 1 / step */
    int qsum[INT ? RB : 1][NB];                         /* sum of a block's int16 Q (q4_0's 8) */
    /* int formats' P V (up to 4 rows; more: the float P V, for registers): [warp][row][block][key]
     * p x the V row's block scale as int16 in steps of the tile's largest (a key pair's two at one
     * 32-bit word, as dp2a takes them) */
    alignas(4) int16_t wq[INT && RB <= 4 ? NW : 1][INT && RB <= 4 ? RB : 1][NB][KT];
    vt_attn_lut lut;
};

/* Lane's share of the warp copying the stored rows [t, t + KT) (those below ks1) of the K or V
 * head at base into one slot, as vt_stage_async(slot, rows, n, 0, n) would (16-byte chunks from
 * the rows' 16-byte-aligned start, bytes outside the rows staged as 0), with the loop unrolled
 * over the tile's chunks and the (at most two) partial edge chunks taken by lanes 0 and 1, so
 * that an interior chunk costs a compare and the cp.async (the loop's bounds checks were as
 * many instructions as the scores). */
#pragma nv_exec_check_disable
template <int D, int FMT, class CX>
VT_HD void issue_half(CX &cx, int lane, uint8_t *slot, const uint8_t *base, long long t,
                      long long ks1) {
    constexpr int RBY = vt_kv_row_bytes<FMT>(D), NCH = (KT * RBY + 15) / 16 + 1;
    const uint32_t n = (uint32_t)((ks1 - t < KT ? ks1 - t : KT) * RBY);
    const uintptr_t a = (uintptr_t)(base + (size_t)t * RBY), a0 = a & ~(uintptr_t)15, e = a + n;
    const int nch = (int)((e - a0 + 15) / 16), cf = (a & 15) != 0, cl = nch - ((e & 15) != 0);
    VT_UNROLL
    for (int i = 0; i < (NCH + 31) / 32; i++) {
        const int c = lane + 32 * i; /* chunks [cf, cl) lie inside the rows */
        if (c >= cf && c < cl) cx.cp16(slot + 16 * c, (const void *)(a0 + 16 * (uintptr_t)c), true);
    }
    if (lane == 0 && cf) *reinterpret_cast<uint4 *>(slot) = vt_stage_ld(a0, a, e);
    if (lane == 1 && cl < nch && !(nch == 1 && cf))
        *reinterpret_cast<uint4 *>(slot + 16 * (nch - 1)) = vt_stage_ld(a0 + 16 * (nch - 1), a, e);
}

/* Values [d0, d0 + 8) of the rows of keys k, k + KPI, ..., k + (UB - 1) KPI of the K or V base
 * (all UB loads issued before any value is used); a key at or past ks1 loads the last valid row
 * (ks1 - 1: the caller's tile starts below ks1) and gets ok[u] = false, to be counted as 0.
 * The body passes keys relative to its tile's first row. */
template <int FMT, int UB, int KPI>
VT_HD void load_steps(const vt_attn_dev_args &a, const uint8_t *base, long long k, long long ks1,
                      int d0, const vt_attn_lut *lut, float out[UB][8], bool ok[UB]) {
    VT_UNROLL
    for (int u = 0; u < UB; u++) {
        const long long k2 = k + u * KPI;
        ok[u] = k2 < ks1;
        vt_deq8<FMT>(base + (size_t)(ok[u] ? k2 : ks1 - 1) * a.row_bytes, d0, a.ts, lut, out[u]);
    }
}

/* The dimension of value e (0..7) of lane slot li (0 .. D/8 - 1) in vraw: q4_0's 4 bytes hold
 * values 4g.. 4g + 3 (low nibbles) and 16 + 4g.. (high) of a block, others 8 in a row. */
template <int FMT> VT_HD int vdim(int li, int e) {
    if (FMT == VT_FMT_Q4_0) return (li / 4) * 32 + (li % 4) * 4 + (e & 3) + (e & 4) * 4;
    return li * 8 + e;
}

/* Lane slot li's 8 values of a stored row (in shared memory) as raw[e] times the returned
 * scale, so that a caller multiplies the scale once into its weight, not into every value. */
template <int FMT>
VT_HD float vraw(const uint8_t *row, int li, float ts, const vt_attn_lut *lut, float raw[8]) {
    if constexpr (FMT == VT_FMT_Q8_0) {
        const uint8_t *b = row + (li / 4) * sizeof(vt_block_q8_0), *qs = b + 2 + (li % 4) * 8;
        VT_UNROLL
        for (int i = 0; i < 4; i++) {
            uint16_t w = vt_ldg_u16(qs + 2 * i);
            raw[2 * i] = (float)(int8_t)(w & 0xff);
            raw[2 * i + 1] = (float)(int8_t)(w >> 8);
        }
        return __half2float(__ushort_as_half(vt_ldg_u16(b)));
    } else if constexpr (FMT == VT_FMT_INT8) {
        const uint8_t *b = row + (li / 8) * sizeof(vt_block_int8);
        const uint32_t *qs = reinterpret_cast<const uint32_t *>(b + 4 + (li % 8) * 8);
        VT_UNROLL
        for (int i = 0; i < 2; i++) {
            uint32_t w = qs[i];
            VT_UNROLL
            for (int k = 0; k < 4; k++) raw[4 * i + k] = (float)(int8_t)(w >> (8 * k));
        }
        return *reinterpret_cast<const float *>(b);
    } else if constexpr (FMT == VT_FMT_Q4_0) {
        const uint8_t *b = row + (li / 4) * sizeof(vt_block_q4_0), *qs = b + 2 + (li % 4) * 4;
        const uint32_t w = vt_ldg_u16(qs) | (uint32_t)vt_ldg_u16(qs + 2) << 16;
        VT_UNROLL
        for (int e = 0; e < 4; e++) {
            raw[e] = (float)((int)((w >> (8 * e)) & 15) - 8);
            raw[e + 4] = (float)((int)((w >> (8 * e + 4)) & 15) - 8);
        }
        return __half2float(__ushort_as_half(vt_ldg_u16(b)));
    } else if constexpr (FMT == VT_FMT_NF4) {
        const uint8_t *b = row + (li / 8) * sizeof(vt_block_nf4);
        const uint32_t w = *reinterpret_cast<const uint32_t *>(b + 4 + (li % 8) * 4);
        VT_UNROLL
        for (int i = 0; i < 4; i++) { /* value 2i in the high nibble */
            const uint32_t byte = (w >> (8 * i)) & 0xff;
            raw[2 * i] = lut->nf4[byte >> 4];
            raw[2 * i + 1] = lut->nf4[byte & 15];
        }
        return *reinterpret_cast<const float *>(b);
    } else {
        vt_deq8<FMT>(row, li * 8, ts, lut, raw);
        return 1.0f;
    }
}

/* Scores (log2 units) of RB Q rows with the K row at row (shared memory, at 4-byte phase PH) of
 * an integer format: per block the dp2a sums of its bytes with sm.qi, times the block's K scale
 * and Q step. One lane per key. */
template <int D, int RB, int FMT, int PH, class S>
VT_HD void score_int(const S &sm, const uint8_t *row, float s[RB]) {
    constexpr int NB = S::NB, NWD = (irow<D, FMT>() + PH + 3) / 4, BB = iblk<FMT>();
    static_assert(NWD <= S::NQW, "the Q image covers the words read");
    const uint32_t *w = reinterpret_cast<const uint32_t *>(row - PH);
    int acc[RB][NB];
    VT_UNROLL
    for (int r = 0; r < RB; r++) VT_UNROLL
    for (int b = 0; b < NB; b++) acc[r][b] = 0;
    /* many rows: a row's sums at a time over the row's words held in registers (fewer live
     * sums); few: the words streamed */
    constexpr bool HOLD = RB >= 8;
    uint32_t wd[HOLD ? NWD : 1];
    if constexpr (HOLD) {
        VT_UNROLL
        for (int i = 0; i < NWD; i++) wd[i] = w[i];
    }
    VT_UNROLL
    for (int r0 = 0; r0 < RB; r0 += HOLD ? 1 : RB) VT_UNROLL
    for (int i = 0; i < NWD; i++) {
        const int b = iword_blk<D, FMT>(i, PH);
        if (b < 0) continue;
        const uint32_t x = HOLD ? wd[i] : w[i];
        VT_UNROLL
        for (int r = r0; r < (HOLD ? r0 + 1 : RB); r++) {
            if constexpr (FMT == VT_FMT_Q4_0) {
                const uint4 q = *reinterpret_cast<const uint4 *>(sm.qi[r][i]);
                const uint32_t lo = x & 0x0f0f0f0fu, hi = (x >> 4) & 0x0f0f0f0fu;
                int c = vt_dp2a_lo(q.x, lo, acc[r][b]);
                c = vt_dp2a_hi(q.y, lo, c);
                c = vt_dp2a_lo(q.z, hi, c);
                acc[r][b] = vt_dp2a_hi(q.w, hi, c);
            } else {
                const uint2 q = *reinterpret_cast<const uint2 *>(sm.qi[r][i]);
                acc[r][b] = vt_dp2a_hi(q.y, x, vt_dp2a_lo(q.x, x, acc[r][b]));
            }
        }
    }
    float dk[NB];
    VT_UNROLL
    for (int b = 0; b < NB; b++) {
        const int at = b * BB + PH; /* the scale's byte in the words read */
        const uint32_t x = w[at / 4];
        if constexpr (FMT == VT_FMT_INT8)
            dk[b] = vt_dev_as_f32(x);
        else
            dk[b] = __half2float(__ushort_as_half((uint16_t)(at % 4 ? x >> 16 : x & 0xffff)));
    }
    VT_UNROLL
    for (int r = 0; r < RB; r++) {
        float t = 0.0f;
        VT_UNROLL
        for (int b = 0; b < NB; b++) {
            const int c = FMT == VT_FMT_Q4_0 ? acc[r][b] - 8 * sm.qsum[r][b] : acc[r][b];
            t += dk[b] * sm.qd[r][b] * (float)c;
        }
        s[r] = t;
    }
}

/* Scores of RB Q rows (sm.q) with a K row of any other quantized format, one lane per key. */
template <int D, int RB, int FMT, class S>
VT_HD void score_gen(const S &sm, const uint8_t *row, float ts, float s[RB]) {
    VT_UNROLL
    for (int r = 0; r < RB; r++) s[r] = 0.0f;
    VT_ATTN_UNROLL(2)
    for (int li = 0; li < D / 8; li++) {
        float v[8];
        const float sc = vraw<FMT>(row, li, ts, &sm.lut, v);
        VT_UNROLL
        for (int r = 0; r < RB; r++) {
            float t = 0.0f;
            VT_UNROLL
            for (int e = 0; e < 8; e++) t += sm.q[r][vdim<FMT>(li, e)] * v[e];
            s[r] += sc * t;
        }
    }
}

/* The int formats' P V of one key pair (rows k0 = 2 pi, k1 = k0 + 1 at r0, r1 of the V slot,
 * both valid rows) for lane slot li: the 8 values of each as bytes (q4_0: nibbles), transposed
 * into 4 words of (k0, k1) byte pairs per two dims, dp2a'd with the pair's int16 weights of
 * every row into ia (value e of vdim order); ws sums the weights (q4_0's 8). */
template <int D, int RB, int FMT, class S>
VT_HD void pv_pair(const S &sm, int warp, const uint8_t *r0, const uint8_t *r1, int li, int pi,
                   int ia[RB][8], int ws[RB]) {
    uint32_t t[4];
    int b;
    if constexpr (FMT == VT_FMT_Q8_0) {
        b = li / 4;
        const int o = b * (int)sizeof(vt_block_q8_0) + 2 + (li % 4) * 8;
        VT_UNROLL
        for (int i = 0; i < 4; i++)
            t[i] = vt_prmt(vt_ldg_u16(r0 + o + 2 * i), vt_ldg_u16(r1 + o + 2 * i), 0x5140);
    } else if constexpr (FMT == VT_FMT_INT8) {
        b = li / 8;
        const int o = b * (int)sizeof(vt_block_int8) + 4 + (li % 8) * 8;
        VT_UNROLL
        for (int i = 0; i < 2; i++) {
            const uint32_t x = *reinterpret_cast<const uint32_t *>(r0 + o + 4 * i);
            const uint32_t y = *reinterpret_cast<const uint32_t *>(r1 + o + 4 * i);
            t[2 * i] = vt_prmt(x, y, 0x5140), t[2 * i + 1] = vt_prmt(x, y, 0x7362);
        }
    } else {
        b = li / 4;
        const int o = b * (int)sizeof(vt_block_q4_0) + 2 + (li % 4) * 4;
        const uint32_t x = vt_ldg_u16(r0 + o) | (uint32_t)vt_ldg_u16(r0 + o + 2) << 16;
        const uint32_t y = vt_ldg_u16(r1 + o) | (uint32_t)vt_ldg_u16(r1 + o + 2) << 16;
        const uint32_t xl = x & 0x0f0f0f0fu, yl = y & 0x0f0f0f0fu;
        const uint32_t xh = (x >> 4) & 0x0f0f0f0fu, yh = (y >> 4) & 0x0f0f0f0fu;
        t[0] = vt_prmt(xl, yl, 0x5140), t[1] = vt_prmt(xl, yl, 0x7362);
        t[2] = vt_prmt(xh, yh, 0x5140), t[3] = vt_prmt(xh, yh, 0x7362);
    }
    VT_UNROLL
    for (int r = 0; r < RB; r++) {
        const uint32_t w = *reinterpret_cast<const uint32_t *>(&sm.wq[warp][r][b][2 * pi]);
        VT_UNROLL
        for (int i = 0; i < 4; i++) {
            ia[r][2 * i] = vt_dp2a_lo(w, t[i], ia[r][2 * i]);
            ia[r][2 * i + 1] = vt_dp2a_hi(w, t[i], ia[r][2 * i + 1]);
        }
        if (FMT == VT_FMT_Q4_0) ws[r] = vt_dp2a_lo(w, 0x0101u, ws[r]);
    }
}

/* The int formats' V scale of block b of a stored row (shared memory). */
template <int FMT> VT_HD float vscale(const uint8_t *row, int b) {
    if constexpr (FMT == VT_FMT_INT8)
        return *reinterpret_cast<const float *>(row + b * (int)sizeof(vt_block_int8));
    else
        return __half2float(__ushort_as_half(vt_ldg_u16(row + b * iblk<FMT>())));
}

/* Quantize Q (sm.q, scaled) to int16 per block of the K format's values into sm.qi at the byte
 * positions of a row starting at 4-byte phase ph, with the steps (qd), their inverses and the
 * blocks' sums of Q's integers (all threads; synchronizes). */
#pragma nv_exec_check_disable
template <int D, int RB, int FMT, class CX>
VT_HD void quantize_q(CX &cx, smem<D, RB, FMT> &sm, int tid, int ph) {
    using S = smem<D, RB, FMT>;
    constexpr int QK = iqk<FMT>();
    for (int idx = tid; idx < RB * S::NB; idx += NTH) {
        const int r = idx / S::NB, b = idx % S::NB;
        float amax = 0.0f;
        for (int j = 0; j < QK; j++) amax = fmaxf(amax, fabsf(sm.q[r][b * QK + j]));
        const float inv = amax > 0.0f ? 32767.0f / amax : 0.0f;
        int sum = 0;
        for (int j = 0; j < QK; j++) sum += vt_rni(sm.q[r][b * QK + j] * inv);
        sm.qd[r][b] = amax / 32767.0f, sm.qinv[r][b] = inv, sm.qsum[r][b] = sum;
    }
    cx.sync();
    for (int idx = tid; idx < RB * S::NQW * 4; idx += NTH) {
        const int r = idx / (S::NQW * 4), i = idx / 4 % S::NQW, j = idx % 4;
        VT_UNROLL
        for (int pl = 0; pl < iplanes<FMT>(); pl++) {
            const int e = ielem<D, FMT>(4 * i + j - ph, pl);
            const int v = e < 0 ? 0 : vt_rni(sm.q[r][e] * sm.qinv[r][e / QK]);
            reinterpret_cast<int16_t *>(sm.qi[r][i])[4 * pl + j] = (int16_t)v;
        }
    }
    cx.sync();
}

/* CTA (split, hk, z): rows [RB z, RB z + RB) of K/V head hk's group x Nq rows, keys
 * [split * chunk, split * chunk + chunk). With ws_o the partial (unnormalised O, max, sum) goes
 * to the workspace, else O and LSE are written. */
/* the host emulation instantiates it with a host-only context */
#pragma nv_exec_check_disable
template <int D, int RB, int FMT, class CX>
VT_HD void body(CX &cx, const vt_attn_dev_args &a, smem<D, RB, FMT> &sm, long long chunk,
                float *ws_o, float *ws_ml, int split, int hk, long long z) {
    constexpr int LPK = D / 8, KPI = 32 / LPK;        /* lanes per key, keys per step */
    constexpr int UB = RB >= 8 ? 2 : RB >= 4 ? 4 : 8; /* steps whose row loads fly together */
    static_assert((KT / KPI) % UB == 0, "a tile is whole batches of steps");
    const int tid = cx.tid(), warp = tid / 32, lane = tid % 32;
    const long long R = (long long)a.group * a.nq, r0 = z * RB;
    const int nr = (int)(R - r0 < RB ? R - r0 : RB);
    vt_attn_lut_load(&sm.lut, tid);

    for (int idx = tid; idx < RB * D / 8; idx += NTH) {
        int ri = idx / (D / 8), c = (idx % (D / 8)) * 8;
        float f[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        if (ri < nr) {
            long long r = r0 + ri, h = (long long)hk * a.group + r / a.nq, i = r % a.nq;
            vt_load_q8(a.q, a.q_dtype, ((size_t)h * a.nq + i) * D + c, f);
        }
        VT_UNROLL
        for (int e = 0; e < 8; e++) sm.q[ri][c + e] = f[e] * a.scale_log2;
    }
    if (tid < RB) sm.lim[tid] = tid < nr ? vt_visible(a, (r0 + tid) % a.nq) : 0;
    cx.sync();

    long long ks0 = (long long)split * chunk, ks1 = ks0 + chunk < a.nk ? ks0 + chunk : a.nk;
    long long maxlim = 0;
    VT_UNROLL
    for (int ri = 0; ri < RB; ri++) maxlim = sm.lim[ri] > maxlim ? sm.lim[ri] : maxlim;
    if (maxlim < ks1) ks1 = maxlim;

    const uint8_t *kb = a.k + (size_t)hk * a.head_stride, *vb = a.v + (size_t)hk * a.head_stride;
    float m[RB], l[RB], acc[RB][8];
    VT_UNROLL
    for (int ri = 0; ri < RB; ri++) {
        m[ri] = -INFINITY, l[ri] = 0.0f;
        VT_UNROLL
        for (int e = 0; e < 8; e++) acc[ri][e] = 0.0f;
    }
    const int sub = lane / LPK, li = lane % LPK, d0 = li * 8;
    constexpr bool PIPE = pipe<FMT>();
    constexpr int RBY = vt_kv_row_bytes<FMT>(D); /* == a.row_bytes (the launcher checks) */

    if constexpr (!PIPE) {
        for (long long t0 = ks0 + (long long)warp * KT; t0 < ks1; t0 += (long long)NW * KT) {
            /* rows of this tile: relative key i at kt + i * row_bytes (and vt) */
            const uint8_t *kt = kb + (size_t)t0 * RBY, *vt = vb + (size_t)t0 * RBY;
            /* Scores of the warp's KT keys with LPK lanes per key (KPI keys per step), each lane
             * 8 values of the row: a key's row is read by consecutive lanes (coalesced). UB
             * steps' rows are loaded before any is used (keys past ks1 load the last valid row
             * and count 0), so UB loads per lane are in flight. The LPK partial dot products
             * meet by shuffles; the scores go through sm.p to the lane-per-key softmax below. */
            for (int kk0 = 0; kk0 < KT; kk0 += UB * KPI) {
                if (t0 + kk0 >= ks1) break; /* warp-uniform */
                float kv[UB][8];
                bool ok[UB];
                load_steps<FMT, UB, KPI>(a, kt, kk0 + sub, ks1 - t0, d0, &sm.lut, kv, ok);
                VT_UNROLL
                for (int u = 0; u < UB; u++) {
                    VT_UNROLL
                    for (int ri = 0; ri < RB; ri++) {
                        float4 qa = *reinterpret_cast<const float4 *>(&sm.q[ri][d0]);
                        float4 qb = *reinterpret_cast<const float4 *>(&sm.q[ri][d0 + 4]);
                        const float *k8 = kv[u];
                        float s = qa.x * k8[0] + qa.y * k8[1] + qa.z * k8[2] + qa.w * k8[3] +
                                  qb.x * k8[4] + qb.y * k8[5] + qb.z * k8[6] + qb.w * k8[7];
                        s = ok[u] ? s : 0.0f;
                        VT_UNROLL
                        for (int off = 1; off < LPK; off *= 2) s += cx.shfl_xor(s, off);
                        if (lane % LPK == 0) sm.p[warp][ri][kk0 + u * KPI + sub] = s;
                    }
                }
            }
            cx.syncwarp();
            const long long key = t0 + lane;
            VT_UNROLL
            for (int ri = 0; ri < RB; ri++) {
                /* a slot past ks1 was never written this tile: masked here before use */
                float sv = (key < ks1 && key < sm.lim[ri]) ? sm.p[warp][ri][lane] : -INFINITY;
                float mx = sv;
                VT_UNROLL
                for (int off = 16; off > 0; off /= 2) mx = fmaxf(mx, cx.shfl_xor(mx, off));
                float mn = fmaxf(m[ri], mx);
                float mu = mn == -INFINITY ? 0.0f : mn;
                float alpha = exp2f(m[ri] - mu), p = exp2f(sv - mu);
                l[ri] = l[ri] * alpha + p; /* lane-partial sum; alpha is warp-uniform */
                m[ri] = mn;
                VT_UNROLL
                for (int e = 0; e < 8; e++) acc[ri][e] *= alpha;
                sm.p[warp][ri][lane] = p;
            }
            cx.syncwarp();
            /* P V, UB steps' V rows loaded before use as above (a key past ks1 adds exactly 0) */
            for (int kk0 = 0; kk0 < KT; kk0 += UB * KPI) {
                if (t0 + kk0 >= ks1) break; /* warp-uniform */
                float vv[UB][8];
                bool ok[UB];
                load_steps<FMT, UB, KPI>(a, vt, kk0 + sub, ks1 - t0, d0, &sm.lut, vv, ok);
                VT_UNROLL
                for (int u = 0; u < UB; u++) {
                    VT_UNROLL
                    for (int e = 0; e < 8; e++) vv[u][e] = ok[u] ? vv[u][e] : 0.0f;
                    VT_UNROLL
                    for (int ri = 0; ri < RB; ri++) {
                        float p = sm.p[warp][ri][kk0 + u * KPI + sub];
                        VT_UNROLL
                        for (int e = 0; e < 8; e++) acc[ri][e] += p * vv[u][e];
                    }
                }
            }
            cx.syncwarp();
        }
    } else {
        /* K rows at 2 mod 4 (q8_0/q4_0 allow 2-byte-aligned caches): the int scorer reads them
         * from 2 bytes before, and Q's image is laid out for that */
        const int ph = FMT == VT_FMT_INT8 ? 0 : (int)((uintptr_t)kb & 2);
        /* groups of this thread's copies, in commit order: K of tile 0 (before the loop, in
         * flight while Q is quantized), then per tile V of tile j, K of tile j + 1; wait_group 1
         * leaves only the newest in flight */
        long long t0 = ks0 + (long long)warp * KT;
        if (t0 < ks1) issue_half<D, FMT>(cx, lane, sm.u.kv[warp][0], kb, t0, ks1);
        cx.commit();
        if constexpr (ints<FMT>()) quantize_q<D, RB, FMT>(cx, sm, tid, ph);
        for (; t0 < ks1; t0 += (long long)NW * KT) {
            const int nv = (int)(ks1 - t0 < KT ? ks1 - t0 : KT); /* keys of this tile */
            /* V of this tile into its slot (read last by the previous tile's P V, which every
             * lane finished at that tile's last syncwarp) */
            issue_half<D, FMT>(cx, lane, sm.u.kv[warp][1], vb, t0, ks1);
            cx.commit();
            cx.template wait<1>(); /* this lane's K copies of this tile have landed */
            cx.syncwarp();         /* ... and the other lanes' */
            const uint8_t *kt = sm.u.kv[warp][0] + ((uintptr_t)(kb + (size_t)t0 * RBY) & 15);
            /* Scores with one lane per key (the row from shared memory; a lane past the tile's
             * keys takes the last valid row, its score masked below) */
            const uint8_t *krow = kt + (size_t)(lane < nv ? lane : nv - 1) * RBY;
            float s[RB];
            if constexpr (FMT == VT_FMT_INT8)
                score_int<D, RB, FMT, 0>(sm, krow, s);
            else if constexpr (ints<FMT>()) {
                if (ph)
                    score_int<D, RB, FMT, 2>(sm, krow, s);
                else
                    score_int<D, RB, FMT, 0>(sm, krow, s);
            } else
                score_gen<D, RB, FMT>(sm, krow, a.ts, s);
            const long long key = t0 + lane;
            float pr[RB]; /* this lane's key's probabilities */
            VT_UNROLL
            for (int ri = 0; ri < RB; ri++) {
                float sv = (lane < nv && key < sm.lim[ri]) ? s[ri] : -INFINITY;
                float mx = sv;
                VT_UNROLL
                for (int off = 16; off > 0; off /= 2) mx = fmaxf(mx, cx.shfl_xor(mx, off));
                float mn = fmaxf(m[ri], mx);
                float mu = mn == -INFINITY ? 0.0f : mn;
                float alpha = exp2f(m[ri] - mu), p = exp2f(sv - mu); /* masked: p 0 */
                l[ri] = l[ri] * alpha + p;
                m[ri] = mn;
                VT_UNROLL
                for (int e = 0; e < 8; e++) acc[ri][e] *= alpha;
                pr[ri] = p;
                if constexpr (!(ints<FMT>() && RB <= 4)) sm.p[warp][ri][lane] = p;
            }
            cx.syncwarp(); /* p written; every lane done with the K slot */
            const long long tn = t0 + (long long)NW * KT;
            if (tn < ks1) issue_half<D, FMT>(cx, lane, sm.u.kv[warp][0], kb, tn, ks1);
            cx.commit();
            cx.template wait<1>(); /* V of this tile */
            cx.syncwarp();
            const uint8_t *vt = sm.u.kv[warp][1] + ((uintptr_t)(vb + (size_t)t0 * RBY) & 15);
            if constexpr (ints<FMT>() && RB <= 4) {
                /* P V in integers: this lane's key's weights p x V block scale as int16 in
                 * steps of the tile's largest (per row: sstep), then lanes along D take key
                 * pairs (KPI pairs per step) by dp2a; a key past the tile's keys has weight 0
                 * and reads the last valid row */
                constexpr int NB = smem<D, RB, FMT>::NB;
                const uint8_t *vrow = vt + (size_t)(lane < nv ? lane : nv - 1) * RBY;
                float dv[NB], sstep[RB];
                VT_UNROLL
                for (int b = 0; b < NB; b++) dv[b] = vscale<FMT>(vrow, b);
                VT_UNROLL
                for (int ri = 0; ri < RB; ri++) {
                    float wmax = 0.0f;
                    VT_UNROLL
                    for (int b = 0; b < NB; b++) wmax = fmaxf(wmax, fabsf(pr[ri] * dv[b]));
                    VT_UNROLL
                    for (int off = 16; off > 0; off /= 2)
                        wmax = fmaxf(wmax, cx.shfl_xor(wmax, off));
                    const float inv = wmax > 0.0f ? 32767.0f / wmax : 0.0f;
                    sstep[ri] = wmax / 32767.0f;
                    VT_UNROLL
                    for (int b = 0; b < NB; b++)
                        sm.wq[warp][ri][b][lane] = (int16_t)vt_rni(pr[ri] * dv[b] * inv);
                }
                cx.syncwarp();
                int ia[RB][8], ws[RB];
                VT_UNROLL
                for (int ri = 0; ri < RB; ri++) {
                    ws[ri] = 0;
                    VT_UNROLL
                    for (int e = 0; e < 8; e++) ia[ri][e] = 0;
                }
                if (nv == KT) { /* a whole tile: unrolled, rows at fixed offsets */
                    VT_UNROLL
                    for (int pp = 0; pp < KT / 2; pp += KPI) {
                        const uint8_t *r0 = vt + (size_t)(2 * (pp + sub)) * RBY;
                        pv_pair<D, RB, FMT>(sm, warp, r0, r0 + RBY, li, pp + sub, ia, ws);
                    }
                } else {
                    for (int pp = 0; 2 * pp < nv; pp += KPI) { /* warp-uniform */
                        const int pi = pp + sub, k0 = 2 * pi < nv ? 2 * pi : nv - 1,
                                  k1 = 2 * pi + 1 < nv ? 2 * pi + 1 : nv - 1;
                        pv_pair<D, RB, FMT>(sm, warp, vt + (size_t)k0 * RBY, vt + (size_t)k1 * RBY,
                                            li, pi, ia, ws);
                    }
                }
                VT_UNROLL
                for (int ri = 0; ri < RB; ri++) VT_UNROLL
                for (int e = 0; e < 8; e++) {
                    const int c = FMT == VT_FMT_Q4_0 ? ia[ri][e] - 8 * ws[ri] : ia[ri][e];
                    acc[ri][e] += sstep[ri] * (float)c;
                }
                cx.syncwarp(); /* every lane done with the V slot and sm.wq */
                continue;
            }
            /* P V with lanes along D (LPK lanes per key, KPI keys per step); a key past the
             * tile's keys reads the last valid row (finite values) with p 0 */
            constexpr int UV = RB >= 8 ? 1 : RB >= 4 ? 2 : 4; /* shared memory: few in flight */
            for (int kk0 = 0; kk0 < nv; kk0 += UV * KPI) {    /* warp-uniform */
                float vv[UV][8], sc[UV];
                VT_UNROLL
                for (int u = 0; u < UV; u++) {
                    const int kk = kk0 + u * KPI + sub;
                    sc[u] = vraw<FMT>(vt + (size_t)(kk < nv ? kk : nv - 1) * RBY, li, a.ts, &sm.lut,
                                      vv[u]);
                }
                VT_UNROLL
                for (int u = 0; u < UV; u++) {
                    VT_UNROLL
                    for (int ri = 0; ri < RB; ri++) {
                        const float w = sm.p[warp][ri][kk0 + u * KPI + sub] * sc[u];
                        VT_UNROLL
                        for (int e = 0; e < 8; e++) acc[ri][e] += w * vv[u][e];
                    }
                }
            }
            cx.syncwarp(); /* every lane done with the V slot and sm.p */
        }
        cx.sync(); /* sm.u.wacc overlays the other warps' slots */
    }

    /* merge the lanes of a warp, then the warps */
    VT_UNROLL
    for (int ri = 0; ri < RB; ri++) {
        VT_UNROLL
        for (int off = LPK; off < 32; off *= 2) VT_UNROLL
        for (int e = 0; e < 8; e++) acc[ri][e] += cx.shfl_xor(acc[ri][e], off);
        VT_UNROLL
        for (int off = 16; off > 0; off /= 2) l[ri] += cx.shfl_xor(l[ri], off);
        if (lane < LPK) VT_UNROLL
        for (int e = 0; e < 8; e++) sm.u.wacc[warp][ri][vdim<FMT>(li, e)] = acc[ri][e];
        if (lane == 0) sm.wm[warp][ri] = m[ri], sm.wl[warp][ri] = l[ri];
    }
    cx.sync();
    for (int idx = tid; idx < RB * D; idx += NTH) {
        int ri = idx / D, d = idx % D;
        if (ri >= nr) continue;
        float M = -INFINITY;
        VT_UNROLL
        for (int w = 0; w < NW; w++) M = fmaxf(M, sm.wm[w][ri]);
        float L = 0.0f, o = 0.0f;
        if (M != -INFINITY) VT_UNROLL
        for (int w = 0; w < NW; w++) {
            float f = exp2f(sm.wm[w][ri] - M);
            L += f * sm.wl[w][ri];
            o += f * sm.u.wacc[w][ri][d];
        }
        long long r = r0 + ri, h = (long long)hk * a.group + r / a.nq, i = r % a.nq;
        size_t row = (size_t)h * a.nq + i;
        if (ws_o) {
            ws_o[((size_t)split * a.H * a.nq + row) * D + d] = o;
            if (d == 0) {
                ws_ml[((size_t)split * a.H * a.nq + row) * 2] = M;
                ws_ml[((size_t)split * a.H * a.nq + row) * 2 + 1] = L;
            }
        } else {
            float x = L > 0.0f ? o / L : 0.0f;
            if (a.o_dtype == 0)
                static_cast<float *>(a.o)[row * D + d] = x;
            else
                static_cast<__half *>(a.o)[row * D + d] = __float2half_rn(x);
            if (d == 0 && a.lse) a.lse[row] = L > 0.0f ? (M + log2f(L)) * VT_LN2 : -INFINITY;
        }
    }
}

/* The combine kernel's thread (row, d): merge the splits' partials of one output value by
 * their log-sum-exp (empty splits carry max -inf, sum 0, O 0). */
VT_HD void combine_one(const vt_attn_dev_args &a, int splits, const float *ws_o, const float *ws_ml,
                       size_t row, int d) {
    const size_t rows = (size_t)a.H * a.nq;
    float M = -INFINITY;
    for (int s = 0; s < splits; s++) M = fmaxf(M, ws_ml[(s * rows + row) * 2]);
    float L = 0.0f, o = 0.0f;
    if (M != -INFINITY)
        for (int s = 0; s < splits; s++) {
            float f = exp2f(ws_ml[(s * rows + row) * 2] - M);
            L += f * ws_ml[(s * rows + row) * 2 + 1];
            o += f * ws_o[(s * rows + row) * a.D + d];
        }
    float x = L > 0.0f ? o / L : 0.0f;
    if (a.o_dtype == VT_DTYPE_F32)
        static_cast<float *>(a.o)[row * a.D + d] = x;
    else
        static_cast<__half *>(a.o)[row * a.D + d] = __float2half_rn(x);
    if (d == 0 && a.lse) a.lse[row] = L > 0.0f ? (M + log2f(L)) * VT_LN2 : -INFINITY;
}

/* The split plan of one decode call: rows per CTA, row chunks, splits and keys per split.
 * bound is the split count before the chunk is rounded to whole tiles (>= splits, and for a
 * fixed shape non-decreasing in nk), which vt_attn_cuda_decode_ws_bytes sizes for. */
struct plan {
    int rb;
    long long zc, splits, chunk, bound;
};

/* CTAs of the quantized-cache kernel that fit an SM: its shared memory on a 228 KB SM
 * (H100/H200; 1 KB reserved per CTA), at most pipe_ctas_max (registers: 64 per thread for one
 * row, 80 for two, 128 for four, 168 for eight). __launch_bounds__ holds the kernel's registers
 * to this many CTAs, and the plan fills one wave of them: a second, partly filled wave costs a
 * whole CTA's time. */
VT_HD constexpr int pipe_ctas_max(int rb) {
    return rb == 1 ? 8 : rb == 2 ? 6 : rb == 4 ? 4 : 3;
}
template <int D, int RB, int FMT> constexpr int qctas() {
    constexpr int n = 233472 / ((int)sizeof(smem<D, RB, FMT>) + 1024);
    return n < 1 ? 1 : n > pipe_ctas_max(RB) ? pipe_ctas_max(RB) : n;
}
/* qctas on an SM of smem_sm bytes of shared memory (the device's: fewer where it has less
 * than an H100's 228 KB, e.g. an A100's 164 KB) */
template <int D, int RB, int FMT> int qctas_on(long long smem_sm) {
    const long long n = smem_sm / ((long long)sizeof(smem<D, RB, FMT>) + 1024);
    return n < 1 ? 1 : n < qctas<D, RB, FMT>() ? (int)n : qctas<D, RB, FMT>();
}
struct qctas_of {
    int D, rb;
    long long smem_sm;
    template <int D_, int FMT> int of() {
        return rb == 1   ? qctas_on<D_, 1, FMT>(smem_sm)
               : rb == 2 ? qctas_on<D_, 2, FMT>(smem_sm)
               : rb == 4 ? qctas_on<D_, 4, FMT>(smem_sm)
                         : qctas_on<D_, 8, FMT>(smem_sm);
    }
    template <int FMT, int BE> int go(int) { return D == 64 ? of<64, FMT>() : of<128, FMT>(); }
};
inline long long pipe_ctas(const vt_attn_dev_args &a, int rb, long long smem_sm) {
    qctas_of f{a.D, rb, smem_sm};
    const int n = vt_attn_fmt_dispatch(a.fmt, f);
    return n > 0 ? n : 4;
}

inline plan plan_splits(const vt_attn_dev_args &a, int num_splits, int sms,
                        long long smem_sm = 233472) {
    plan pl;
    long long R = (long long)a.group * a.nq;
    pl.rb = R >= 8 ? 8 : R >= 4 ? 4 : R >= 2 ? 2 : 1;
    pl.zc = (R + pl.rb - 1) / pl.rb;
    long long nk = a.nk > 0 ? a.nk : 1;
    long long splits = num_splits;
    if (splits <= 0) {
        /* f32/f16/bf16: a wave of CTAs (about 4 per SM), >= 256 keys per split. The quantized
         * caches: >= 512 keys per split, and a wave of the CTAs that fit an SM (nf4 and the other
         * LUT formats, bound by instructions) or of half as many (q8_0/q4_0/int8, bound by
         * DRAM), rounded to nearest. H200 run 6 (docs/BENCHMARKS.md, bench_attn_gpu --splits):
         * at B 1, Nk 4k-32k and B 8, Nk 4k the earlier plan (every format a full wave, >= 256
         * keys) was 2-11% slower for q8_0/q4_0 than these counts, and for nf4 at Nk 8k. */
        long long base = (long long)a.Hkv * pl.zc;
        if (base < 1) base = 1;
        const bool q = a.fmt != VT_FMT_F32 && a.fmt != VT_FMT_F16 && a.fmt != VT_FMT_BF16;
        const bool ints = a.fmt == VT_FMT_Q8_0 || a.fmt == VT_FMT_Q4_0 || a.fmt == VT_FMT_INT8;
        long long keys = 256;
        if (!q)
            splits = (4LL * sms + base - 1) / base;
        else if (ints)
            splits = (pipe_ctas(a, pl.rb, smem_sm) * sms / 2 + base / 2) / base, keys = 512;
        else
            splits = pipe_ctas(a, pl.rb, smem_sm) * sms / base, keys = 512;
        long long by_len = (nk + keys - 1) / keys;
        if (splits > by_len) splits = by_len;
    }
    if (splits < 1) splits = 1;
    if (splits > 1024) splits = 1024;
    pl.bound = splits;
    long long chunk = (nk + splits - 1) / splits;
    pl.chunk = (chunk + KT - 1) / KT * KT;
    pl.splits = (nk + pl.chunk - 1) / pl.chunk;
    return pl;
}

/* Workspace of @p splits splits: [splits][H*nq][D] partial O, then [splits][H*nq][2] (m, l). */
inline size_t ws_bytes(const vt_attn_dev_args &a, long long splits) {
    if (splits <= 1) return 0;
    return (size_t)splits * (size_t)a.H * (size_t)a.nq * ((size_t)a.D + 2) * sizeof(float);
}

/* The plan of a call (no workspace: one split) and the workspace's partial O and (max, sum)
 * arrays (NULL for one split). 0, VT_EUNSUPPORTED (grid) or VT_EBUDGET (workspace too small). */
inline int prepare(const vt_attn_dev_args &a, int num_splits, int sms, plan &pl, float *&wo,
                   float *&wml, long long smem_sm = 233472) {
    /* no workspace: one split, so nothing is allocated here (issue 6: no per-call allocation) */
    pl = plan_splits(a, a.ws ? num_splits : 1, sms, smem_sm);
    wo = wml = nullptr;
    /* grid limits: y = Hkv, z = row chunks, the combine's x = H x Nq rows */
    if (pl.zc > 65535 || a.Hkv > 65535 || (long long)a.H * a.nq > 0x7fffffffLL)
        return vt_fail(VT_EUNSUPPORTED,
                       "attn decode: %lld query rows per K/V head x Hkv %d "
                       "exceed the grid (use the prefill kernel)",
                       (long long)a.group * a.nq, a.Hkv);
    size_t need = ws_bytes(a, pl.splits);
    if (need > (a.ws ? a.ws_bytes : 0))
        return vt_fail(VT_EBUDGET,
                       "attn decode: workspace of %zu bytes < %zu bytes needed for %lld splits "
                       "(size it with vt_attn_workspace_bytes)",
                       a.ws_bytes, need, pl.splits);
    if (pl.splits > 1) {
        wo = static_cast<float *>(a.ws);
        wml = wo + (size_t)pl.splits * a.H * a.nq * a.D;
    }
    return 0;
}

} // namespace vt_decode

#endif
