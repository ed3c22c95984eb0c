/* kernels/cuda/dq_tile.cuh — the dequantize kernel's output transpose (dequant.cu), __host__
 * __device__ so that tests/kernels/test_dequant_dev_host runs it for whole CTAs on the host.
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

/* ---- 2:4 layouts (dequant.cu dequant_direct) ----------------------------------------------
 * A CTA covers 128 compressed units (64 dense columns each: 8192 values, the dense tile's size)
 * of one row; thread t < 128 expands unit h0 + t into dense units 2t and 2t + 1 of the tile,
 * and the whole CTA stores the tile as vt_dqt_store does. */
#define VT_DQT_SPARSE_UNITS 128

template <int F, int T>
VT_HD void vt_dqt_put_sparse(const vt_kp &p, const vt_dq_ctx &c, uint64_t r, uint64_t h0, int t,
                             uint4 *so) {
    if (t >= VT_DQT_SPARSE_UNITS || h0 + t >= vt_sparse_units(p.cols)) return;
    float v[64];
    vt_decode64<F, true>(p, c, r, h0 + t, v);
    vt_dqt_put<T>(so, 2 * t, v);
    vt_dqt_put<T>(so, 2 * t + 1, v + 32);
}

#endif
