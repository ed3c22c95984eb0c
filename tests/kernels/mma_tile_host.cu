/* tests/kernels/mma_tile_host.cu — runs the MMA GEMM kernel's tile code (kernels/cuda
 * mma_tile.cuh: tile fills, fragment gathers, epilogue) on the host for test_mma_tile_host.c,
 * one emulated CTA after another, with mma.sync.m16n8k16 emulated from the PTX ISA's fragment
 * layouts as written in the spec (independently of mma_tile.cuh's helpers). Shared tiles are
 * poisoned with NaN before each K step, so a fragment that reads a slot no thread filled shows
 * up in the result. No GPU needed. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "mma_tile.cuh"

extern "C" int kt_host_gemm_mma(const vt_kdesc *d, const void *X, int xh, void *Y, int yh,
                                uint64_t M, char *why, size_t cap);

namespace {

float h2f(uint16_t h) {
    __half x;
    memcpy(&x, &h, 2);
    return __half2float(x);
}

/* D = A B + C for one warp, with A, B, C gathered from the lanes' registers by the PTX ISA's
 * formulas ("Matrix Fragments for mma.m16n8k16 with floating point type"):
 *   A: row = groupID for ai, 0 <= i < 2 || 4 <= i < 6, else groupID + 8;
 *      col = threadID_in_group * 2 + (i & 1), + 8 for i >= 4
 *   B: row = threadID_in_group * 2 + (i & 1), + 8 for i >= 2; col = groupID
 *   C: row = groupID for ci, i < 2, else groupID + 8; col = threadID_in_group * 2 + (i & 1)
 * Element i of a fragment is half (i & 1) (low first) of register i / 2. Returns 1 when some
 * element of A, B or C is not held by exactly one lane. */
int mma_emulate(const uint32_t a[32][4], const uint32_t b[32][2], float c[32][4]) {
    float A[16][16], B[16][8], C[16][8];
    int na[16][16] = {{0}}, nb[16][8] = {{0}}, nc[16][8] = {{0}};
    for (int lane = 0; lane < 32; lane++) {
        int g = lane >> 2, t = lane % 4;
        for (int i = 0; i < 8; i++) {
            int row = (i < 2 || (4 <= i && i < 6)) ? g : g + 8;
            int col = t * 2 + (i & 1) + (i >= 4 ? 8 : 0);
            A[row][col] = h2f((uint16_t)(a[lane][i / 2] >> (16 * (i & 1))));
            na[row][col]++;
        }
        for (int i = 0; i < 4; i++) {
            int row = t * 2 + (i & 1) + (i >= 2 ? 8 : 0), col = g;
            B[row][col] = h2f((uint16_t)(b[lane][i / 2] >> (16 * (i & 1))));
            nb[row][col]++;
        }
        for (int i = 0; i < 4; i++) {
            int row = i < 2 ? g : g + 8, col = t * 2 + (i & 1);
            C[row][col] = c[lane][i];
            nc[row][col]++;
        }
    }
    for (int r = 0; r < 16; r++)
        for (int k = 0; k < 16; k++)
            if (na[r][k] != 1 || (k < 8 && (nb[r][k] != 1 || nc[r][k] != 1))) return 1;
    for (int lane = 0; lane < 32; lane++) {
        int g = lane >> 2, t = lane % 4;
        for (int i = 0; i < 4; i++) {
            int row = i < 2 ? g : g + 8, col = t * 2 + (i & 1);
            double s = C[row][col];
            for (int k = 0; k < 16; k++) s += (double)A[row][k] * B[k][col];
            c[lane][i] = (float)s;
        }
    }
    return 0;
}

struct host_gemm {
    const vt_kdesc *d;
    const void *X;
    void *Y;
    bool xh, yh;
    uint64_t M;
    char *why;
    size_t cap;
    float lut[32];

    template <int F, bool S, bool XH> int go(const vt_kp &p) {
        vt_dq_ctx c = {lut, p.tensor_scale, p.aux, p.cols};
        static __half Xs[VT_MMA_BM * VT_MMA_SK], Ws[VT_MMA_BN * VT_MMA_SK];
        static float acc[VT_MMA_THREADS / 32][32][2][4][4]; /* [warp][lane] */
        const uint16_t nan16 = 0x7e00;
        for (uint64_t m0 = 0; m0 < M; m0 += VT_MMA_BM)
            for (uint64_t n0 = 0; n0 < p.rows; n0 += VT_MMA_BN) {
                memset(acc, 0, sizeof acc);
                for (uint64_t k0 = 0; k0 < p.cols; k0 += VT_MMA_BK) {
                    for (int i = 0; i < VT_MMA_BM * VT_MMA_SK; i++) {
                        memcpy(&Xs[i], &nan16, 2);
                        memcpy(&Ws[i], &nan16, 2);
                    }
                    for (int tid = 0; tid < VT_MMA_THREADS; tid++)
                        vt_mma_fill<F, S, XH>(p, c, X, M, m0, n0, k0, tid, Xs, Ws);
                    for (int warp = 0; warp < VT_MMA_THREADS / 32; warp++) {
                        const int wm = warp >> 1, wn = warp & 1;
                        for (int kk = 0; kk < VT_MMA_BK; kk += 16)
                            for (int i = 0; i < 2; i++)
                                for (int j = 0; j < 4; j++) {
                                    uint32_t a[32][4], b[32][2];
                                    float cf[32][4];
                                    for (int lane = 0; lane < 32; lane++) {
                                        vt_mma_load_a(Xs, wm * 32 + 16 * i, kk, lane, a[lane]);
                                        vt_mma_load_b(Ws, wn * 32 + 8 * j, kk, lane, b[lane]);
                                        memcpy(cf[lane], acc[warp][lane][i][j], sizeof cf[lane]);
                                    }
                                    if (mma_emulate(a, b, cf)) {
                                        snprintf(why, cap,
                                                 "fragment layout does not cover the "
                                                 "16x16 / 16x8 blocks once each");
                                        return 1;
                                    }
                                    for (int lane = 0; lane < 32; lane++)
                                        memcpy(acc[warp][lane][i][j], cf[lane], sizeof cf[lane]);
                                }
                    }
                }
                for (int warp = 0; warp < VT_MMA_THREADS / 32; warp++)
                    for (int lane = 0; lane < 32; lane++) {
                        if (yh)
                            vt_mma_store<true>(Y, M, p.rows, m0, n0, warp, lane, acc[warp][lane]);
                        else
                            vt_mma_store<false>(Y, M, p.rows, m0, n0, warp, lane, acc[warp][lane]);
                    }
            }
        return 0;
    }

    template <int F> int run() {
        vt_kp p = vt_kp_from(d);
        if constexpr (F == VT_FMT_NF4_DQ) {
            if (d->sparse) return 77;
            return xh ? go<F, false, true>(p) : go<F, false, false>(p);
        } else {
            if (d->sparse) return xh ? go<F, true, true>(p) : go<F, true, false>(p);
            return xh ? go<F, false, true>(p) : go<F, false, false>(p);
        }
    }
};

} // namespace

/* Y[M][rows] (f32, or f16 bits when yh) = X[M][cols] (f32, or f16 bits when xh) W^T computed
 * the way gemm_mma does, on the host. Returns 0, 77 (layout without an MMA path), 1 with why
 * filled, or a vt_fail code. */
extern "C" int kt_host_gemm_mma(const vt_kdesc *d, const void *X, int xh, void *Y, int yh,
                                uint64_t M, char *why, size_t cap) {
    host_gemm h;
    h.d = d;
    h.X = X;
    h.Y = Y;
    h.xh = xh != 0;
    h.yh = yh != 0;
    h.M = M;
    h.why = why;
    h.cap = cap;
    for (int t = 0; t < 32; t++) h.lut[t] = vt_dq_lut_at(t);
    return vt_fmt_dispatch(d->fmt, h);
}
