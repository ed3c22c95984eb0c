/* kernels/cuda/dq_tile.cuh — the dequantize kernels (dequant.cu): the output transpose, the
 * tiles of a CTA, the staged kernel's CTA body (vt_dqk_body) and the f32/f16/bf16 conversion,
 * __host__ __device__ (the body a template over the thread context) so that
 * tests/kernels/test_dequant_dev_host runs them for whole grids on the host.
 *
 * Each thread of dequant_staged decodes one 32-value unit. Stored straight from registers, a
 * warp's 16-byte stores land 64 (f16) or 128 (f32) bytes apart and every store instruction
 * touches 32 sectors half-way (what held the first dequantize at 29-49% of copy speed on an
 * H100). Instead each thread puts its unit's C 16-byte chunks into shared memory, chunk k of
 * unit j at slot C j + (k ^ vt_dqt_swz(j)), and after a barrier the CTA stores the tile's
 * contiguous output range with consecutive threads on consecutive 16 bytes. The swizzle keeps
 * both sides free of bank conflicts: 8 threads writing chunk k of 8 consecutive units, and 8
 * threads reading 8 consecutive chunks, each cover all 8 16-byte bank groups. */
#ifndef VT_DQ_TILE_CUH
#define VT_DQ_TILE_CUH

#include <type_traits>

#include "kparams.cuh" /* vt_kp; includes dequant_dev.cuh */

/* Output type T: 0 f32, 1 f16, 2 bf16; ES bytes per value, C 16-byte chunks per unit. */
template <int T> struct vt_dqt { static constexpr int ES = T == 0 ? 4 : 2, C = 32 * ES / 16; };

VT_HD int vt_dqt_swz(int j, int C) {
    return C == 8 ? (j & 7) : ((j >> 1) & 3);
}

/* Chunk k of a unit's 32 values v as output type T (8 values of f16/bf16, 4 of f32). */
template <int T> VT_HD uint4 vt_dqt_chunk(const float v[32], int k) {
    uint32_t w[4];
    VT_UNROLL
    for (int i = 0; i < 4; i++) {
        if constexpr (T == 0) {
            uint32_t u;
            memcpy(&u, &v[4 * k + i], 4);
            w[i] = u;
        } else {
            using H = typename std::conditional<T == 1, __half, __nv_bfloat16>::type;
            w[i] = vt_pack2<H>(v[8 * k + 2 * i], v[8 * k + 2 * i + 1]);
        }
    }
    uint4 q;
    q.x = w[0], q.y = w[1], q.z = w[2], q.w = w[3];
    return q;
}

/* Thread j's unit (values v) into the tile area so (C x units chunks). */
template <int T> VT_HD void vt_dqt_put(uint4 *so, int j, const float v[32]) {
    constexpr int C = vt_dqt<T>::C;
    const int s = vt_dqt_swz(j, C);
    VT_UNROLL
    for (int k = 0; k < C; k++) so[C * j + (k ^ s)] = vt_dqt_chunk<T>(v, k);
}

/* Thread t of nt's share of storing the tile's first nq chunks (in output order) at dst
 * (16-byte aligned). */
template <int T> VT_HD void vt_dqt_store(uint4 *dst, const uint4 *so, uint32_t nq, int t, int nt) {
    constexpr int C = vt_dqt<T>::C;
    for (uint32_t q = t; q < nq; q += nt) {
        int j = (int)(q / C), k = (int)(q % C);
        dst[q] = so[C * j + (k ^ vt_dqt_swz(j, C))];
    }
}

/* ---- which units a CTA of the dequantize kernel covers --------------------------------------
 * Global unit g is unit g % units of row g / units (units = vt_units(cols)). Row mode: a CTA
 * covers up to `tile` units of one row (tpr CTAs per row), so with 4096 columns (128 units) half
 * of a 256-unit CTA had nothing to do. Flat mode (vt_dqt_flat: whole units per row, rows of
 * whole blocks with no padding) sees the matrix as one run of rows x units units whose bytes and
 * outputs are both contiguous: CTA k covers units [tile k, tile k + tile), across rows. */
struct vt_dqt_span {
    uint64_t g0, g1; /* global units [g0, g1) */
    uint64_t b0, b1; /* their bytes [b0, b1) from the handle's start */
    uint64_t o, n;   /* their n output values from value o (row-major rows x cols) */
};

template <int F> VT_HD bool vt_dqt_flat(const vt_kp &p) {
    return F != VT_FMT_NF4_DQ && p.cols % 32 == 0 &&
           vt_dq_unit_off<F>(vt_units(p.cols)) == p.row_bytes;
}

/* Byte offset of global unit g's block (for a unit inside a block: the block's start). */
template <int F> VT_HD uint64_t vt_dqt_boff(const vt_kp &p, uint64_t g) {
    const uint64_t units = vt_units(p.cols), r = g / units;
    return r * p.row_bytes + vt_dq_unit_off<F>(g - r * units);
}

template <int F>
VT_HD vt_dqt_span vt_dqt_cta(const vt_kp &p, bool flat, uint64_t tpr, uint64_t k, int tile) {
    const uint64_t units = vt_units(p.cols);
    vt_dqt_span s;
    if (flat) {
        const uint64_t total = p.rows * units;
        s.g0 = k * tile;
        s.g1 = s.g0 + tile < total ? s.g0 + tile : total;
        s.b0 = vt_dqt_boff<F>(p, s.g0);
        s.b1 = vt_dqt_boff<F>(p, s.g1); /* g1 = total: rows x row_bytes */
        s.o = 32 * s.g0;                /* cols = 32 units */
        s.n = 32 * (s.g1 - s.g0);
    } else {
        const uint64_t r = k / tpr, u0 = (k % tpr) * tile;
        s.g0 = r * units + u0;
        s.g1 = r * units + (u0 + tile < units ? u0 + tile : units);
        s.b0 = r * p.row_bytes + vt_dq_unit_off<F>(u0);
        s.b1 = r * p.row_bytes + vt_units_end<F>(u0 + tile, units, p.row_bytes);
        s.o = r * p.cols + 32 * u0;
        s.n = p.cols - 32 * u0 < 32 * (uint64_t)tile ? p.cols - 32 * u0 : 32 * (uint64_t)tile;
    }
    return s;
}

/* ---- the dequantize kernel's CTA (dequant.cu dequant_staged) --------------------------------
 * A template over the thread context (vt_simt_dev on the GPU, tests/kernels/simt_host.cuh's
 * emulated CTA on the host) so that its barriers and cp.async pipeline run in the host tests.
 *
 * The grid is about one wave of CTAs (dequant.cu); CTA k0 covers tiles k0, k0 + kstep, ... of
 * vt_dqt_cta. The bytes of the next tile are in flight as cp.async copies (two stage buffers)
 * while the CTA decodes and stores the current one, so a CTA keeps its loads going instead of
 * waiting for each tile in turn, and a short-lived CTA's start and end no longer come per tile.
 * Per tile: wait for its bytes, barrier A, start the next tile's copies, each thread decodes one
 * unit from shared memory into registers (word loads: vt_dqk_unit), puts it into the tile area,
 * barrier B, the CTA stores the tile (vt_dqt_store). A: the stage buffer refilled now was last
 * read before the previous B, the tile area written now last read before this A. */
#define VT_DQK_THREADS 256

/* N bytes from p (any alignment, shared memory) into w[] as little-endian words: aligned 32-bit
 * loads and funnel shifts instead of N byte loads. Reads up to 4 bytes past p + N (the stage
 * buffers keep 32 bytes of slack after their bytes). */
VT_HD uint32_t vt_dqk_funnel(uint32_t lo, uint32_t hi, uint32_t s) {
#ifdef __CUDA_ARCH__
    return __funnelshift_r(lo, hi, s);
#else
    return s ? (lo >> s) | (hi << (32 - s)) : lo;
#endif
}
template <int N> VT_HD void vt_dqk_ld(const uint8_t *p, uint32_t *w) {
    constexpr int W = (N + 3) / 4;
    /* p - misalignment, not an integer cast: the pointer keeps its shared address space
     * (LDS, not generic loads) */
    const uint32_t m = (uint32_t)((uintptr_t)p & 3), s = 8 * m;
    const uint32_t *q = (const uint32_t *)(p - m);
    uint32_t r[W + 1];
    VT_UNROLL
    for (int i = 0; i <= W; i++) r[i] = q[i];
    VT_UNROLL
    for (int i = 0; i < W; i++) w[i] = vt_dqk_funnel(r[i], r[i + 1], s);
}

/* vt_dq_unit<F> for a block blk in shared memory, bit-identical: the bytes the unit reads are
 * first brought into registers with word loads (vt_dqk_ld) and the decoder runs on that copy
 * (for int8/nf4/awq the block's header and the unit's quants, decoded as the first unit of a
 * block laid out that way; q4_k/q6_k: the decoder's arithmetic on the quants in registers, the
 * few scale bytes from shared memory). A unit's bytes read with byte loads took 18 (q4_0) to
 * 68 (q6_k) shared-memory loads, often bank conflicts, and the shared-memory pipe was what
 * bounded the kernel. AWQ: the channel scales are left out (c.aux ignored; the kernel divides). */
template <int F>
VT_HD void vt_dqk_unit(const uint8_t *blk, uint64_t u, uint64_t col0, const vt_dq_ctx &c0,
                       float v[32]) {
    vt_dq_ctx c = c0;
    c.aux = nullptr;
    if constexpr (F == VT_FMT_Q8_0 || F == VT_FMT_Q4_0 || F == VT_FMT_Q4_1 || F == VT_FMT_MXFP4 ||
                  F == VT_FMT_NVFP4) {
        /* the unit is the block (nvfp4: its two blocks), contiguous */
        constexpr int N = F == VT_FMT_NVFP4 ? 18 : vt_fmt_traits<F>::BB;
        uint32_t w[(N + 3) / 4];
        vt_dqk_ld<N>(blk, w);
        vt_dq_unit<F>((const uint8_t *)w, u, col0, c, v);
    } else if constexpr (F == VT_FMT_INT8 || F == VT_FMT_NF4 || F == VT_FMT_AWQ_INT4) {
        /* header 4 bytes, then the unit's Q quant bytes at 4 + Q (u % S) */
        constexpr int Q = F == VT_FMT_INT8 ? 32 : 16, S = F == VT_FMT_AWQ_INT4 ? 4 : 2;
        uint32_t w[1 + Q / 4];
        vt_dqk_ld<4>(blk, w);
        vt_dqk_ld<Q>(blk + 4 + Q * (u % S), w + 1);
        vt_dq_unit<F>((const uint8_t *)w, u - u % S, col0, c, v);
    } else if constexpr (F == VT_FMT_Q4_K) { /* dequant_dev.cuh's q4_k branch */
        int j = (int)(u & 7);
        float sc, mn;
        vt_dq_scale_min_k4(j, blk + 4, sc, mn);
        float d1 = vt_dev_f16(blk) * sc, m1 = vt_dev_f16(blk + 2) * mn;
        uint32_t w[8];
        vt_dqk_ld<32>(blk + 16 + 32 * (j / 2), w);
        const uint8_t *q = (const uint8_t *)w;
        int sh = (j & 1) * 4;
        VT_UNROLL
        for (int l = 0; l < 32; l++)
            v[l] = vt_fsub_rn(vt_fmul_rn(d1, (float)((q[l] >> sh) & 0xF)), m1);
    } else if constexpr (F == VT_FMT_Q6_K) { /* dequant_dev.cuh's q6_k branch */
        int j = (int)(u & 7), h = j / 4, k = j % 4;
        uint32_t wl[8], wh[8];
        vt_dqk_ld<32>(blk + 64 * h + (k & 1) * 32, wl);
        vt_dqk_ld<32>(blk + 128 + 32 * h, wh);
        vt_dq_q6k_sub((const uint8_t *)wl, (const uint8_t *)wh, blk, j, v);
    } else {
        vt_dq_unit<F>(blk, u, col0, c, v);
    }
}

/* vt_dq_unit_nf4dq (same arithmetic) with the unit's 16 code bytes as two 8-byte global loads
 * when they are 8-byte aligned (super-blocks are 8456 bytes: whenever the handle's data is),
 * instead of 16 byte loads; else byte by byte, as vt_dq_unit_nf4dq. */
VT_HD void vt_dqk_unit_nf4dq(const uint8_t *data, uint64_t bpr, uint64_t r, uint64_t u,
                             const vt_dq_ctx &c, float v[32]) {
    const uint8_t *sb;
    uint32_t j;
    const uint8_t *q = vt_dq_nf4dq_at(data, bpr, r, u, &sb, &j);
    if ((uintptr_t)q & 7) {
        vt_dq_nf4dq_vals(sb, j, q, c, v);
        return;
    }
    uint32_t w[4];
#ifdef __CUDA_ARCH__
    const uint2 lo = __ldg((const uint2 *)q), hi = __ldg((const uint2 *)q + 1);
    w[0] = lo.x, w[1] = lo.y, w[2] = hi.x, w[3] = hi.y;
#else
    memcpy(w, q, 16);
#endif
    vt_dq_nf4dq_vals(sb, j, (const uint8_t *)w, c, v);
}

/* Shared memory of the CTA: two stage buffers of a tile's bytes (+32: misalignment and the word
 * loads' overrun), the output tile (256 units of T), the code table. nf4_dq stages nothing. */
template <int F, int T> struct vt_dqk_smem {
    static constexpr int BE = vt_fmt_traits<F>::BE, BB = vt_fmt_traits<F>::BB;
    static constexpr int STAGE =
        F == VT_FMT_NF4_DQ ? 16 : (VT_DQK_THREADS * 32 / BE * BB + 32 + 15) / 16 * 16;
    alignas(16) uint8_t stage[2][STAGE];
    uint4 tile[VT_DQK_THREADS * vt_dqt<T>::C];
    float lut[32];
    /* AWQ: the reciprocals of each thread's 32 channel scales, taken once per column (a
     * division per weight, even __fdividef's MUFU.RCP, cost a quarter-rate instruction per
     * value), reciprocal i of thread t at [i][t] (no bank conflicts);
     * private to the thread (no barrier). In registers they took the kernel to 118 registers
     * (2 CTAs per SM). */
    float aux[F == VT_FMT_AWQ_INT4 ? 32 : 1][F == VT_FMT_AWQ_INT4 ? VT_DQK_THREADS : 1];
};

/* Scalar stores of n (<= 32) values from out[o] (output rows not 16-byte aligned). */
template <int T> VT_HD void vt_dqk_store_scalar(void *out, uint64_t o, const float *v, uint32_t n) {
    VT_UNROLL
    for (uint32_t i = 0; i < 32; i++) {
        if (i >= n) break;
        if constexpr (T == 0)
            ((float *)out)[o + i] = v[i];
        else if constexpr (T == 1)
            ((__half *)out)[o + i] = __float2half_rn(v[i]);
        else
            ((__nv_bfloat16 *)out)[o + i] = __float2bfloat16_rn(v[i]);
    }
}

/* Start copying tile k's bytes into stage buffer buf (nothing past the last tile; nf4_dq stages
 * nothing) and close the thread's cp.async group. Returns where the first byte lands. */
#pragma nv_exec_check_disable
template <int F, int T, class CX>
VT_HD uint32_t vt_dqk_issue(CX &cx, const vt_kp &p, bool flat, uint64_t tpr, uint64_t k,
                            uint64_t ntiles, vt_dqk_smem<F, T> &sm, int buf) {
    uint32_t sh = 0;
    if (F != VT_FMT_NF4_DQ && k < ntiles) {
        const vt_dqt_span sp = vt_dqt_cta<F>(p, flat, tpr, k, VT_DQK_THREADS);
        sh = vt_stage_async(cx, sm.stage[buf], p.data, p.bytes, sp.b0, (uint32_t)(sp.b1 - sp.b0),
                            cx.tid(), VT_DQK_THREADS);
    }
    cx.commit();
    return sh;
}

/* The CTA's tiles k0, k0 + kstep, ... < ntiles, written to out (vec: cols % 8 == 0 and out
 * 16-byte aligned, stores through the tile area; else each thread stores its unit). */
#pragma nv_exec_check_disable
template <int F, int T, class CX>
VT_HD void vt_dqk_body(CX &cx, const vt_kp &p, bool flat, uint64_t tpr, uint64_t ntiles,
                       uint64_t k0, uint64_t kstep, void *out, bool vec, vt_dqk_smem<F, T> &sm) {
    constexpr int NT = VT_DQK_THREADS;
    const int t = cx.tid();
    vt_dq_lut_fill(sm.lut, t);
    const uint64_t units = vt_units(p.cols);
    const vt_dq_ctx c = {sm.lut, p.tensor_scale, p.aux, p.cols};
    /* AWQ channel scales' reciprocals of the thread's 32 columns (sm.aux), kept while its column
     * stays the same (dequant.cu sizes the grid so that it does): a scale per weight read from
     * global memory in the decode (32 loads per thread, 128 bytes apart across the warp) cost more
     * than the rest of the kernel. */
    constexpr bool AWQ = F == VT_FMT_AWQ_INT4;
    uint64_t au = ~(uint64_t)0;
    /* where each stage buffer's first byte landed (two scalars: an array indexed by b would be
     * local memory) */
    uint32_t sh_cur = vt_dqk_issue<F, T>(cx, p, flat, tpr, k0, ntiles, sm, 0), sh_next = 0;
    int b = 0;
    for (uint64_t k = k0; k < ntiles; k += kstep, b ^= 1, sh_cur = sh_next) {
        cx.template wait<0>();
        cx.sync(); /* A */
        sh_next = vt_dqk_issue<F, T>(cx, p, flat, tpr, k + kstep, ntiles, sm, b ^ 1);
        const vt_dqt_span sp = vt_dqt_cta<F>(p, flat, tpr, k, NT);
        const uint64_t g = sp.g0 + t;
        const bool live = g < sp.g1;
        const uint64_t r = g / units, u = g - r * units;
        float v[32];
        if (live) {
            if constexpr (F == VT_FMT_NF4_DQ)
                vt_dqk_unit_nf4dq(p.data, p.bpr, r, u, c, v);
            else
                vt_dqk_unit<F>(sm.stage[b] + sh_cur + (vt_dqt_boff<F>(p, g) - sp.b0), u, 32 * u, c,
                               v);
            if constexpr (AWQ) {
                if (p.aux) {
                    if (u != au) {
                        au = u;
                        VT_UNROLL
                        for (int i = 0; i < 32; i++)
                            sm.aux[i][t] =
                                32 * u + i < p.cols ? vt_frcp_rn(p.aux[32 * u + i]) : 1.0f;
                    }
                    VT_UNROLL
                    for (int i = 0; i < 32; i++) v[i] *= sm.aux[i][t];
                }
            }
        }
        if (vec) {
            if (live) vt_dqt_put<T>(sm.tile, t, v);
            cx.sync(); /* B */
            vt_dqt_store<T>((uint4 *)((uint8_t *)out + sp.o * vt_dqt<T>::ES), sm.tile,
                            (uint32_t)(sp.n * vt_dqt<T>::ES / 16), t, NT);
        } else if (live) {
            const uint64_t cu = 32 * u;
            vt_dqk_store_scalar<T>(out, r * p.cols + cu, v,
                                   (uint32_t)(p.cols - cu < 32 ? p.cols - cu : 32));
        }
    }
    cx.template wait<0>(); /* the empty groups past the last tile */
}

/* ---- 2:4 layouts (dequant.cu dequant_sparse) ------------------------------------------------
 * The same pipeline as vt_dqk_body over tiles of 128 compressed units (64 dense columns each:
 * 8192 values, the dense tile's size) of one row: a stage buffer holds the tile's base-format
 * bytes and, VT_DQS_IOFF further, its index bytes (8 per unit); thread t < 128 decodes unit
 * h0 + t from shared memory (vt_dqs_unit) and puts dense units 2t and 2t + 1 of the tile; the
 * whole CTA stages and stores. Decoding straight from global memory (byte loads 18 or more bytes
 * apart across a warp, one tile per short-lived CTA) held 2:4 at 24-40% of copy speed. */
#define VT_DQS_UNITS 128

template <int F, int T> struct vt_dqs_smem {
    static constexpr int BE = vt_fmt_traits<F>::BE, BB = vt_fmt_traits<F>::BB;
    /* a tile's base bytes: 128 units from a multiple of 128 (whole blocks for every BE <= 4096),
     * +32 (misalignment, word-load overrun); its index bytes 8 per unit, +32 */
    static constexpr int IOFF = (VT_DQS_UNITS * 32 / BE * BB + 32 + 15) / 16 * 16;
    static constexpr int STAGE = IOFF + 8 * VT_DQS_UNITS + 32;
    alignas(16) uint8_t stage[2][STAGE];
    uint4 tile[VT_DQK_THREADS * vt_dqt<T>::C];
    float lut[32];
};

/* The base bytes [*v0, *v1) and index bytes [*i0, *i1) (from the handle's start) of tile k:
 * units [h0, h0 + 128) of row k / tpr. */
template <int F>
VT_HD void vt_dqs_span(const vt_kp &p, uint64_t tpr, uint64_t k, uint64_t *r, uint64_t *h0,
                       uint64_t *v0, uint64_t *v1, uint64_t *i0, uint64_t *i1) {
    const uint64_t hn = vt_sparse_units(p.cols);
    *r = k / tpr;
    *h0 = (k % tpr) * VT_DQS_UNITS;
    const uint64_t rb = *r * p.row_bytes, h1 = *h0 + VT_DQS_UNITS < hn ? *h0 + VT_DQS_UNITS : hn;
    *v0 = rb + vt_dq_unit_off<F>(*h0);
    *v1 = rb + vt_units_end<F>(*h0 + VT_DQS_UNITS, hn, p.idx_off);
    *i0 = rb + p.idx_off + 8 * *h0;
    const uint64_t ie = p.idx_off + 8 * h1;
    *i1 = rb + (ie < p.row_bytes ? ie : p.row_bytes);
}

/* vt_dq_unit_sparse_at (same arithmetic) from shared memory: compressed unit u's 32 kept values
 * cv (AWQ: divided by their dense column's scale) from its base bytes at vp, and its 16 index
 * nibbles (group g's at bits 4g of the 64-bit nw; past the row: 4, columns 0 and 1) from its
 * index bytes at ip. Nibbles, not vt_dq_unit_sparse_at's 32 position bytes: registers. */
template <int F>
VT_HD void vt_dqs_unit(const vt_kp &p, const vt_dq_ctx &c, uint64_t u, const uint8_t *vp,
                       const uint8_t *ip, float cv[32], uint32_t nw[2]) {
    vt_dq_ctx bc = c;
    bc.aux = nullptr;
    bc.cols = p.ccols;
    vt_dqk_unit<F>(vp, u, 32 * u, bc, cv);
    uint32_t iw[2];
    vt_dqk_ld<8>(ip, iw);
    nw[0] = nw[1] = 0;
    VT_UNROLL
    for (int g = 0; g < 16; g++) {
        uint64_t gg = 16 * u + g;
        uint32_t nib = gg < p.ccols / 2 ? (iw[g / 8] >> (4 * (g % 8))) & 15 : 4;
        nw[g / 8] |= nib << (4 * (g % 8));
    }
    if (F == VT_FMT_AWQ_INT4 && c.aux) {
        VT_UNROLL
        for (int i = 0; i < 32; i++) {
            const int g = i / 2;
            const uint32_t nib = (nw[g / 8] >> (4 * (g % 8))) & 15;
            uint64_t col = 64 * u + 4 * g + ((i & 1) ? nib >> 2 : nib & 3);
            if (col < c.cols) cv[i] = vt_fdiv_fast(cv[i], c.aux[col]);
        }
    }
}

/* Dense unit s (0, 1: columns 32 s ..) of compressed unit u as vt_decode64 expands it: kept
 * values by selects (the second kept value wins a tie), zeros elsewhere and past cols. */
VT_HD void vt_dqs_expand(uint64_t cols, uint64_t u, int s, const float cv[32], const uint32_t nw[2],
                         float v[32]) {
    VT_UNROLL
    for (int q = 0; q < 8; q++) {
        const int g = 8 * s + q;
        const uint32_t nib = (nw[s] >> (4 * q)) & 15;
        const int lo = (int)(nib & 3), hi = (int)(nib >> 2);
        VT_UNROLL
        for (int j = 0; j < 4; j++)
            v[4 * q + j] = j == hi ? cv[2 * g + 1] : j == lo ? cv[2 * g] : 0.0f;
    }
    VT_UNROLL
    for (int i = 0; i < 32; i++)
        if (64 * u + 32 * s + i >= cols) v[i] = 0.0f;
}

/* Start copying tile k's base and index bytes into stage buffer buf (nothing past the last
 * tile) and close the group; *shv, *shi: where their first bytes land. */
#pragma nv_exec_check_disable
template <int F, int T, class CX>
VT_HD void vt_dqs_issue(CX &cx, const vt_kp &p, uint64_t tpr, uint64_t k, uint64_t ntiles,
                        vt_dqs_smem<F, T> &sm, int buf, uint32_t *shv, uint32_t *shi) {
    *shv = 0, *shi = 0;
    if (k < ntiles) {
        uint64_t r, h0, v0, v1, i0, i1;
        vt_dqs_span<F>(p, tpr, k, &r, &h0, &v0, &v1, &i0, &i1);
        *shv = vt_stage_async(cx, sm.stage[buf], p.data, p.bytes, v0, (uint32_t)(v1 - v0), cx.tid(),
                              VT_DQK_THREADS);
        *shi = vt_stage_async(cx, sm.stage[buf] + vt_dqs_smem<F, T>::IOFF, p.data, p.bytes, i0,
                              (uint32_t)(i1 - i0), cx.tid(), VT_DQK_THREADS);
    }
    cx.commit();
}

/* The CTA's tiles k0, k0 + kstep, ... < ntiles (tpr per row), as vt_dqk_body. */
#pragma nv_exec_check_disable
template <int F, int T, class CX>
VT_HD void vt_dqs_body(CX &cx, const vt_kp &p, uint64_t tpr, uint64_t ntiles, uint64_t k0,
                       uint64_t kstep, void *out, bool vec, vt_dqs_smem<F, T> &sm) {
    constexpr int NT = VT_DQK_THREADS, ES = vt_dqt<T>::ES;
    const int t = cx.tid();
    vt_dq_lut_fill(sm.lut, t);
    const uint64_t hn = vt_sparse_units(p.cols);
    const vt_dq_ctx c = {sm.lut, p.tensor_scale, p.aux, p.cols};
    uint32_t shv, shi, shv_n = 0, shi_n = 0; /* scalars: see vt_dqk_body */
    vt_dqs_issue<F, T>(cx, p, tpr, k0, ntiles, sm, 0, &shv, &shi);
    int b = 0;
    for (uint64_t k = k0; k < ntiles; k += kstep, b ^= 1, shv = shv_n, shi = shi_n) {
        cx.template wait<0>();
        cx.sync(); /* A */
        vt_dqs_issue<F, T>(cx, p, tpr, k + kstep, ntiles, sm, b ^ 1, &shv_n, &shi_n);
        uint64_t r, h0, v0, v1, i0, i1;
        vt_dqs_span<F>(p, tpr, k, &r, &h0, &v0, &v1, &i0, &i1);
        const uint64_t h = h0 + t, col0 = 64 * h0;
        const bool live = t < VT_DQS_UNITS && h < hn;
        float cv[32];
        uint32_t nw[2];
        if (live) {
            const uint8_t *vp = sm.stage[b] + shv + (vt_dq_unit_off<F>(h) - vt_dq_unit_off<F>(h0));
            const uint8_t *ip = sm.stage[b] + vt_dqs_smem<F, T>::IOFF + shi + 8 * t;
            vt_dqs_unit<F>(p, c, h, vp, ip, cv, nw);
        }
        if (vec) {
            if (live) {
                VT_UNROLL
                for (int s = 0; s < 2; s++) {
                    float v[32];
                    vt_dqs_expand(p.cols, h, s, cv, nw, v);
                    vt_dqt_put<T>(sm.tile, 2 * t + s, v);
                }
            }
            cx.sync(); /* B */
            const uint64_t n =
                p.cols - col0 < 64 * VT_DQS_UNITS ? p.cols - col0 : 64 * VT_DQS_UNITS;
            vt_dqt_store<T>((uint4 *)((uint8_t *)out + (r * p.cols + col0) * ES), sm.tile,
                            (uint32_t)(n * ES / 16), t, NT);
        } else if (live) {
            VT_UNROLL
            for (int s = 0; s < 2; s++) {
                const uint64_t cu = 64 * h + 32 * s;
                if (cu >= p.cols) break;
                float v[32];
                vt_dqs_expand(p.cols, h, s, cv, nw, v);
                vt_dqk_store_scalar<T>(out, r * p.cols + cu, v,
                                       (uint32_t)(p.cols - cu < 32 ? p.cols - cu : 32));
            }
        }
    }
    cx.template wait<0>();
}

/* ---- f32/f16/bf16 weights (dequant.cu dequant_plain) -----------------------------------------
 * A conversion, not a decode: rows x cols values of IES bytes at rows of row_bytes. Contiguous
 * (row_bytes = cols x IES) with input and output 16-byte aligned: thread t of nt converts 16-byte
 * input chunks t, t + nt, ... (the output's chunk is 16 x ES / IES bytes; the tail of fewer than
 * a chunk's values by thread 0); else value by value. Same conversions as vt_dq_unit's plain
 * branches and vt_dqt_chunk (through f32, round to nearest even). */
template <int F> struct vt_dqp { static constexpr int IES = F == VT_FMT_F32 ? 4 : 2; };

template <int F> VT_HD float vt_dqp_val(const uint8_t *p) {
    if constexpr (F == VT_FMT_F32)
        return vt_dev_f32(p);
    else if constexpr (F == VT_FMT_F16)
        return vt_dev_f16(p);
    else
        return vt_dev_as_f32((uint32_t)(p[0] | (p[1] << 8)) << 16);
}
template <int T> VT_HD void vt_dqp_put(void *out, uint64_t i, float x) {
    if constexpr (T == 0)
        ((float *)out)[i] = x;
    else if constexpr (T == 1)
        ((__half *)out)[i] = __float2half_rn(x);
    else
        ((__nv_bfloat16 *)out)[i] = __float2bfloat16_rn(x);
}

template <int F, int T>
VT_HD void vt_dqp_body(const vt_kp &p, void *out, bool vec, uint64_t t, uint64_t nt) {
    /* a step: V values, V IES / 16 input chunks and V ES / 16 output chunks */
    constexpr int IES = vt_dqp<F>::IES, ES = vt_dqt<T>::ES;
    constexpr int V = 16 / IES > 16 / ES ? 16 / IES : 16 / ES, NI = V * IES / 16, NO = V * ES / 16;
    const uint64_t n = p.rows * p.cols;
    if (vec) {
        const uint64_t ns = n / V;
        for (uint64_t q = t; q < ns; q += nt) {
            const uint4 *src = (const uint4 *)p.data + q * NI;
            uint4 *dst = (uint4 *)out + q * NO;
            if constexpr ((F == VT_FMT_F32 && T == 0) || (F == VT_FMT_F16 && T == 1) ||
                          (F == VT_FMT_BF16 && T == 2)) {
#ifdef __CUDA_ARCH__
                *dst = __ldg(src); /* same type: a copy (through f32 it is the identity) */
#else
                *dst = *src;
#endif
            } else {
                uint32_t xw[4 * NI];
                VT_UNROLL
                for (int h = 0; h < NI; h++) {
#ifdef __CUDA_ARCH__
                    const uint4 x = __ldg(src + h);
#else
                    const uint4 x = src[h];
#endif
                    xw[4 * h] = x.x, xw[4 * h + 1] = x.y, xw[4 * h + 2] = x.z, xw[4 * h + 3] = x.w;
                }
                float f[V];
                VT_UNROLL
                for (int i = 0; i < V; i++) f[i] = vt_dqp_val<F>((const uint8_t *)xw + IES * i);
                uint32_t ow[4 * NO];
                VT_UNROLL
                for (int i = 0; i < 4 * NO; i++) {
                    if constexpr (T == 0)
                        memcpy(&ow[i], &f[i], 4);
                    else if constexpr (T == 1)
                        ow[i] = vt_pack2<__half>(f[2 * i], f[2 * i + 1]);
                    else
                        ow[i] = vt_pack2<__nv_bfloat16>(f[2 * i], f[2 * i + 1]);
                }
                VT_UNROLL
                for (int h = 0; h < NO; h++) {
                    uint4 o;
                    o.x = ow[4 * h], o.y = ow[4 * h + 1], o.z = ow[4 * h + 2], o.w = ow[4 * h + 3];
                    dst[h] = o;
                }
            }
        }
        if (t == 0) /* the last n % V values */
            for (uint64_t i = ns * V; i < n; i++)
                vt_dqp_put<T>(out, i, vt_dqp_val<F>(p.data + IES * i));
        return;
    }
    const bool contig = p.row_bytes == p.cols * IES;
    for (uint64_t i = t; i < n; i += nt) {
        uint64_t off = IES * i;
        if (!contig) {
            const uint64_t r = i / p.cols;
            off = r * p.row_bytes + IES * (i - r * p.cols);
        }
        vt_dqp_put<T>(out, i, vt_dqp_val<F>(p.data + off));
    }
}

#endif
