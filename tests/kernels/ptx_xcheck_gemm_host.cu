/* tests/kernels/ptx_xcheck_gemm_host.cu — exposes, for test_ptx_emul_xcheck.c, the GEMM test's
 * mma.sync emulator (mma_tile_host.cu's mma_emulate, included here as it is: it lives in an
 * anonymous namespace) and the fragment index helpers, fragment gathers and epilogue of
 * kernels/cuda/mma_tile.cuh. No GPU needed. */
#include "mma_tile_host.cu"

extern "C" {

/* mma_tile_host.cu's D = A B + C for one warp (c in, d out); 1 when its coverage check fails */
int xg_emul_mma(const uint32_t a[32][4], const uint32_t b[32][2], float c[32][4]) {
    return mma_emulate(a, b, c);
}

int xg_sk(void) {
    return VT_MMA_SK;
}

/* mma_tile.cuh's index helpers: A (row, col), B (k, n), C (row, col) of lane's register reg /
 * element e */
void xg_idx(int lane, int reg, int out[6]) {
    out[0] = vt_mma_a_row(lane, reg);
    out[1] = vt_mma_a_col(lane, reg);
    out[2] = reg < 2 ? vt_mma_b_k(lane, reg) : -1;
    out[3] = vt_mma_b_n(lane);
    out[4] = vt_mma_c_row(lane, reg);
    out[5] = vt_mma_c_col(lane, reg);
}

/* mma_tile.cuh's fragment gathers from a [rows][VT_MMA_SK] tile of f16 bits */
void xg_load_a(const uint16_t *Xs, int R, int kk, int lane, uint32_t a[4]) {
    vt_mma_load_a(reinterpret_cast<const __half *>(Xs), R, kk, lane, a);
}
void xg_load_b(const uint16_t *Ws, int N, int kk, int lane, uint32_t b[2]) {
    vt_mma_load_b(reinterpret_cast<const __half *>(Ws), N, kk, lane, b);
}

/* mma_tile.cuh's epilogue (f32 Y[M][rows]) for one lane of warp `warp` */
void xg_store(float *Y, uint64_t M, uint64_t rows, uint64_t m0, uint64_t n0, int warp, int lane,
              const float acc[2][4][4]) {
    vt_mma_store<false>(Y, M, rows, m0, n0, warp, lane,
                        *reinterpret_cast<const float(*)[2][4][4]>(acc));
}

} /* extern "C" */
