/* kernels/cuda/mma_tile.cuh — the tile and fragment index math of the MMA GEMM (gemm.cu) as
 * __host__ __device__ functions, so that tests/kernels/test_mma_tile_host runs the kernel's own
 * tile loads, fragment gathers and epilogue on the host against the PTX ISA fragment layouts
 * (with an emulated mma.sync) and the f64 reference, without a GPU.
 *
 * CTA: 128 threads = 4 warps, a BM (X rows) x BN (W rows) output tile; warp w computes the
 * 32 x 32 sub-tile (w >> 1, w & 1) as 2 x 4 mma.sync.m16n8k16 (f16 in, f32 accumulate) per 16
 * columns of K. Shared tiles are [BM][SK] and [BN][SK] halves (SK = BK + 8 breaks the bank
 * conflicts of the fragment loads). */
#ifndef VT_MMA_TILE_CUH
#define VT_MMA_TILE_CUH

#include <cuda_fp16.h>
#include <stdint.h>
#include <string.h>

#include "kparams.cuh"

#define VT_MMA_BM      64
#define VT_MMA_BN      64
#define VT_MMA_BK      64
#define VT_MMA_SK      (VT_MMA_BK + 8)
#define VT_MMA_THREADS 128
/* vt_mma_fill's thread mapping: two threads per tile row, a K step of two 32-value units (one
 * 64-column 2:4 piece); the warp tiling: 2 x 2 warps of 32 x 32 */
static_assert(VT_MMA_BM == 64 && VT_MMA_BN == 64 && VT_MMA_BK == 64 && VT_MMA_THREADS == 128,
              "mma_tile.cuh's index math is written for 64 x 64 x 64 tiles and 128 threads");

/* Fragments of mma.m16n8k16 with .f16 inputs (PTX ISA, "Matrix Fragments for mma.m16n8k16 with
 * floating point type"), per lane (groupID = lane >> 2, threadID_in_group = lane & 3). Each
 * 32-bit register holds two consecutive-K halves; these give the row and the first column of
 * register reg's pair.
 *   A (16 x 16, row): reg 0 = (g, 2t), 1 = (g + 8, 2t), 2 = (g, 2t + 8), 3 = (g + 8, 2t + 8)
 *   B (16 x 8, col):  reg 0 = k 2t, reg 1 = k 2t + 8; column n = g
 *   C (16 x 8, f32):  element e = (g + 8 (e >> 1), 2t + (e & 1)) */
VT_HD int vt_mma_a_row(int lane, int reg) {
    return (lane >> 2) + 8 * (reg & 1);
}
VT_HD int vt_mma_a_col(int lane, int reg) {
    return 2 * (lane & 3) + 8 * (reg >> 1);
}
VT_HD int vt_mma_b_k(int lane, int reg) {
    return 2 * (lane & 3) + 8 * reg;
}
VT_HD int vt_mma_b_n(int lane) {
    return lane >> 2;
}
VT_HD int vt_mma_c_row(int lane, int e) {
    return (lane >> 2) + 8 * (e >> 1);
}
VT_HD int vt_mma_c_col(int lane, int e) {
    return 2 * (lane & 3) + (e & 1);
}

/* 32 bits = two halves at p (4-byte aligned: even column, SK even). memcpy on the host, where a
 * uint32_t load of __half storage would break strict aliasing. */
VT_HD uint32_t vt_mma_ld32(const __half *p) {
#ifdef __CUDA_ARCH__
    return *(const uint32_t *)p;
#else
    uint32_t u;
    memcpy(&u, p, 4);
    return u;
#endif
}
VT_HD void vt_mma_st2(__half *p, float a, float b) {
#ifdef __CUDA_ARCH__
    *(__half2 *)p = __floats2half2_rn(a, b);
#else
    p[0] = __float2half_rn(a);
    p[1] = __float2half_rn(b);
#endif
}

/* 16 bytes from global memory (16-byte aligned) and to shared memory (16-byte aligned). */
VT_HD uint4 vt_mma_ld128(const uint8_t *p) {
#ifdef __CUDA_ARCH__
    return __ldg((const uint4 *)p);
#else
    uint4 q;
    memcpy(&q, p, 16);
    return q;
#endif
}
VT_HD void vt_mma_st128(__half *p, uint4 q) {
#ifdef __CUDA_ARCH__
    *(uint4 *)p = q;
#else
    memcpy((void *)p, &q, 16); /* void *: __half is a class to the host compiler */
#endif
}

/* Fragments of the 16 x 16 A block at rows R.. of Xs, columns kk.., and of the 16 x 8 B block
 * of W rows N.. (B[k][n] = W[N + n][kk + k], i.e. X W^T). */
VT_HD void vt_mma_load_a(const __half *Xs, int R, int kk, int lane, uint32_t a[4]) {
    VT_UNROLL
    for (int reg = 0; reg < 4; reg++)
        a[reg] = vt_mma_ld32(Xs + (R + vt_mma_a_row(lane, reg)) * VT_MMA_SK + kk +
                             vt_mma_a_col(lane, reg));
}
VT_HD void vt_mma_load_b(const __half *Ws, int N, int kk, int lane, uint32_t b[2]) {
    VT_UNROLL
    for (int reg = 0; reg < 2; reg++)
        b[reg] = vt_mma_ld32(Ws + (N + vt_mma_b_n(lane)) * VT_MMA_SK + kk + vt_mma_b_k(lane, reg));
}

/* Dense columns [64 h, 64 h + 64) of W row n, decoded from global memory (vt_decode64), as f16
 * at dst; zeros for a row past p.rows. The tile fills' path for nf4_dq and 2:4 rows. */
template <int F, bool SPARSE>
VT_HD void vt_mma_row64(const vt_kp &p, const vt_dq_ctx &c, uint64_t n, uint64_t h, __half *dst) {
    float v[64];
    if (n < p.rows) {
        vt_decode64<F, SPARSE>(p, c, n, h, v);
    } else {
        VT_UNROLL
        for (int i = 0; i < 64; i++) v[i] = 0.0f;
    }
    VT_UNROLL
    for (int i = 0; i < 64; i += 2) vt_mma_st2(dst + i, v[i], v[i + 1]);
}

/* Fill the CTA's shared tiles for K step k0 (thread tid of VT_MMA_THREADS): Xs[BM][SK] from X
 * rows m0.. (f16, zeros past M and cols), Ws[BN][SK] from W rows n0.. dequantized (zeros past
 * rows and cols). Columns [BK, SK) are never read. The caller synchronizes afterwards. */
template <int F, bool SPARSE, bool XH>
VT_HD void vt_mma_fill(const vt_kp &p, const vt_dq_ctx &c, const void *Xv, uint64_t M, uint64_t m0,
                       uint64_t n0, uint64_t k0, int tid, __half *Xs, __half *Ws) {
    { /* X: thread -> row tid / 2, 32 columns; 16-byte loads (and, for f16, 16-byte stores)
       * when the 32 columns lie inside X and start 16-byte aligned, else one guarded element at
       * a time */
        const int xr = tid >> 1, xc = (tid & 1) * 32;
        const uint64_t m = m0 + xr, col = k0 + xc;
        __half *dst = Xs + xr * VT_MMA_SK + xc; /* 16-byte aligned: SK * 2 = 144, xc * 2 = 64 */
        const uint8_t *src = (const uint8_t *)Xv + (m * p.cols + col) * (XH ? 2 : 4);
        if (m < M && col + 32 <= p.cols && ((uintptr_t)src & 15) == 0) {
            VT_UNROLL
            for (int i = 0; i < (XH ? 4 : 8); i++) {
                uint4 q = vt_mma_ld128(src + 16 * i);
                if constexpr (XH) {
                    vt_mma_st128(dst + 8 * i, q);
                } else {
                    vt_mma_st2(dst + 4 * i, vt_dev_as_f32(q.x), vt_dev_as_f32(q.y));
                    vt_mma_st2(dst + 4 * i + 2, vt_dev_as_f32(q.z), vt_dev_as_f32(q.w));
                }
            }
        } else {
            VT_UNROLL
            for (int i = 0; i < 32; i += 2) {
                float f[2];
                VT_UNROLL
                for (int e = 0; e < 2; e++) {
                    const uint64_t cc = col + i + e;
                    f[e] = 0.0f;
                    if (m < M && cc < p.cols) {
                        if constexpr (XH)
                            f[e] = __half2float(((const __half *)Xv)[m * p.cols + cc]);
                        else
                            f[e] = ((const float *)Xv)[m * p.cols + cc];
                    }
                }
                vt_mma_st2(dst + i, f[0], f[1]);
            }
        }
    }
    /* W: thread -> W row tid / 2 (64 rows), one 32-column unit; sparse and nf4_dq decode a whole
     * 64-column piece with the first 64 threads. */
    if constexpr (SPARSE || F == VT_FMT_NF4_DQ) {
        if (tid < VT_MMA_BN) vt_mma_row64<F, SPARSE>(p, c, n0 + tid, k0 / 64, Ws + tid * VT_MMA_SK);
    } else {
        const int wr = tid >> 1, half = tid & 1;
        const uint64_t n = n0 + wr, u = k0 / 32 + half;
        float v[32];
        if (n < p.rows && 32 * u < p.cols) {
            vt_dq_unit<F>(vt_dq_unit_ptr<F>(p.data + n * p.row_bytes, u), u, 32 * u, c, v);
            VT_UNROLL
            for (int i = 0; i < 32; i++)
                if (32 * u + i >= p.cols) v[i] = 0.0f;
        } else {
            VT_UNROLL
            for (int i = 0; i < 32; i++) v[i] = 0.0f;
        }
        VT_UNROLL
        for (int i = 0; i < 32; i += 2)
            vt_mma_st2(Ws + wr * VT_MMA_SK + 32 * half + i, v[i], v[i + 1]);
    }
}

/* Write warp w's accumulators acc[i][j][e] (A block i, B block j) to Y[M][rows] rows m0..,
 * columns n0.. (f16 when YH), skipping what lies outside. Warp w computes the 16 MI x 8 NJ
 * sub-tile (w / WN, w % WN) of the CTA's tile (this kernel: 2 x 4 blocks, 2 x 2 warps; the
 * pipelined one, gemm_cta.cuh: 4 x 4 blocks, 2 x 4 warps). */
template <bool YH, int MI = 2, int NJ = 4, int WN = 2>
VT_HD void vt_mma_store(void *Yv, uint64_t M, uint64_t rows, uint64_t m0, uint64_t n0, int warp,
                        int lane, const float (&acc)[MI][NJ][4]) {
    const int wm = warp / WN, wn = warp % WN;
    VT_UNROLL
    for (int i = 0; i < MI; i++) {
        VT_UNROLL
        for (int j = 0; j < NJ; j++) {
            VT_UNROLL
            for (int e = 0; e < 4; e++) {
                const uint64_t m = m0 + wm * 16 * MI + 16 * i + vt_mma_c_row(lane, e);
                const uint64_t n = n0 + wn * 8 * NJ + 8 * j + vt_mma_c_col(lane, e);
                if (m < M && n < rows) {
                    if constexpr (YH)
                        ((__half *)Yv)[m * rows + n] = __float2half_rn(acc[i][j][e]);
                    else
                        ((float *)Yv)[m * rows + n] = acc[i][j][e];
                }
            }
        }
    }
}

#endif
