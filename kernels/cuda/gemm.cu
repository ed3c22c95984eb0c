/* kernels/cuda/gemm.cu — fused dequantize + GEMM, Y[M][rows] = X[M][cols] W^T, three kernels:
 *  - pipelined MMA (gemm_pipe, f16 X): 128 x 128 tiles of 8 warps, X and W's stored bytes S
 *    steps ahead by cp.async, W dequantized from shared memory into a double-buffered f16 tile,
 *    fragments by ldmatrix, mma.sync m16n8k16 (gemm_cta.cuh, run on the host by
 *    tests/kernels/test_mma_tile_host). Used for f16 X where its shared memory fits the device
 *    (every format on sm_90; all but f32, q6_k weights on sm_80).
 *  - tile MMA (gemm_mma): the first, correctness-first kernel, for f32 X and where gemm_pipe
 *    does not fit (VT_GEMM_MMA=tile forces it): a CTA of 4 warps computes a 64 x 64 tile, per
 *    64-column K step it converts X to f16 and dequantizes W from global memory into shared
 *    memory, then mma.sync. No overlap of loads and MMAs.
 *    f16 inputs: X values (and dequantized W values) beyond +-65504 become +-inf, as in any f16
 *    GEMM.
 *  - cuBLAS: W is dequantized a row tile at a time into the workspace's f16 buffer (X, if f32,
 *    converted there too), then cublasGemmEx with f32 compute; f16 weights in plain 16-byte
 *    aligned rows go to cublasGemmEx as they are. */
#include <stdlib.h>
#include <string.h>

#include <atomic>

#include <cublas_v2.h>
#include <cuda_fp16.h>

#include "cuda_util.cuh"
#include "gemm_cta.cuh"
#include "kparams.cuh"
#include "mma_tile.cuh"
#include "simt_dev.cuh"

#define BM VT_MMA_BM
#define BN VT_MMA_BN
#define BK VT_MMA_BK
#define SK VT_MMA_SK

struct vt_kernel_ws {
    cublasHandle_t h;
    void *buf;
    uint64_t bytes;
};

__device__ __forceinline__ void mma16816(float c[4], const uint32_t a[4], const uint32_t b[2]) {
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, "
                 "{%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
                 : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}

/* The tile loads, fragment gathers and epilogue are mma_tile.cuh's (run on the host by
 * tests/kernels/test_mma_tile_host); only the barriers and mma.sync are here. */
template <int F, bool SPARSE, bool XH, bool YH>
__global__ void __launch_bounds__(VT_MMA_THREADS, 4) /* <= 128 registers: 4 CTAs per SM */
    gemm_mma(vt_kp p, const void *__restrict__ Xv, void *__restrict__ Yv, uint64_t M) {
    __shared__ float lut[32];
    __shared__ __align__(16) __half Xs[BM * SK];
    __shared__ __align__(16) __half Ws[BN * SK];
    vt_dq_lut_init(lut);
    const int tid = threadIdx.x, warp = tid / 32, lane = tid & 31;
    const int wm = warp >> 1, wn = warp & 1;
    const uint64_t m0 = (uint64_t)blockIdx.y * BM, n0 = (uint64_t)blockIdx.x * BN;
    float acc[2][4][4];
#pragma unroll
    for (int i = 0; i < 2; i++)
#pragma unroll
        for (int j = 0; j < 4; j++)
#pragma unroll
            for (int k = 0; k < 4; k++) acc[i][j][k] = 0.0f;
    __syncthreads(); /* lut */
    vt_dq_ctx c = {lut, p.tensor_scale, p.aux, p.cols};
    for (uint64_t k0 = 0; k0 < p.cols; k0 += BK) {
        vt_mma_fill<F, SPARSE, XH>(p, c, Xv, M, m0, n0, k0, tid, Xs, Ws);
        __syncthreads();
#pragma unroll
        for (int kk = 0; kk < BK; kk += 16) {
            uint32_t a[2][4], b[4][2];
#pragma unroll
            for (int i = 0; i < 2; i++) vt_mma_load_a(Xs, wm * 32 + 16 * i, kk, lane, a[i]);
#pragma unroll
            for (int j = 0; j < 4; j++) vt_mma_load_b(Ws, wn * 32 + 8 * j, kk, lane, b[j]);
#pragma unroll
            for (int i = 0; i < 2; i++)
#pragma unroll
                for (int j = 0; j < 4; j++) mma16816(acc[i][j], a[i], b[j]);
        }
        __syncthreads(); /* before the next step overwrites the tiles */
    }
    vt_mma_store<YH>(Yv, M, p.rows, m0, n0, warp, lane, acc);
}

template <int F, bool SPARSE, bool YH>
__global__ void __launch_bounds__(GP_THREADS, 1)
    gemm_pipe(vt_kp p, const __half *__restrict__ X, void *__restrict__ Y, uint64_t M, bool xa) {
    extern __shared__ __align__(16) unsigned char gp_dyn[];
    vt_simt_dev cx;
    gp_cta_body<F, SPARSE, YH>(cx, p, X, Y, M, xa, *reinterpret_cast<gp_smem<F, SPARSE> *>(gp_dyn),
                               blockIdx.y, blockIdx.x);
}

struct mma_launch {
    vt_kp p;
    bool sparse, xh, yh, tile;
    const void *X;
    void *Y;
    uint64_t M;
    cudaStream_t st;
    template <int F, bool S> int go_tile() {
        dim3 grid((unsigned)((p.rows + BN - 1) / BN), (unsigned)((M + BM - 1) / BM));
        if (xh && yh)
            gemm_mma<F, S, true, true><<<grid, VT_MMA_THREADS, 0, st>>>(p, X, Y, M);
        else if (xh)
            gemm_mma<F, S, true, false><<<grid, VT_MMA_THREADS, 0, st>>>(p, X, Y, M);
        else if (yh)
            gemm_mma<F, S, false, true><<<grid, VT_MMA_THREADS, 0, st>>>(p, X, Y, M);
        else
            gemm_mma<F, S, false, false><<<grid, VT_MMA_THREADS, 0, st>>>(p, X, Y, M);
        return vt_cuda_launch_check("vt_gemm (mma) kernel launch");
    }
    template <int F, bool S, bool YH> int pipe(size_t bytes) {
        static std::atomic<unsigned long long> set{0};
        auto kern = gemm_pipe<F, S, YH>;
        int rc = vt_cuda_smem_optin(kern, bytes, set, "vt_gemm: shared memory");
        if (rc) return rc;
        const bool xa = gp_xa(X, p.cols);
        dim3 grid((unsigned)((p.rows + GP_BN - 1) / GP_BN), (unsigned)((M + GP_BM - 1) / GP_BM));
        kern<<<grid, GP_THREADS, bytes, st>>>(p, (const __half *)X, Y, M, xa);
        return vt_cuda_launch_check("vt_gemm (pipelined mma) kernel launch");
    }
    template <int F, bool S> int go() {
        /* M: vt_cuda_gemm_mma's grid check for the tile kernel's 64 rows covers 128 */
        if (xh && !tile && (p.rows + GP_BN - 1) / GP_BN <= 0x7fffffffull) {
            size_t max = 0, bytes = sizeof(gp_smem<F, S>);
            int rc = vt_cuda_smem_max(&max, "vt_gemm: shared memory per block");
            if (rc) return rc;
            if (bytes <= max) return yh ? pipe<F, S, true>(bytes) : pipe<F, S, false>(bytes);
        }
        return go_tile<F, S>();
    }
    template <int F> int run() {
        if constexpr (F == VT_FMT_NF4_DQ) {
            if (sparse) return vt_fail(VT_EUNSUPPORTED, "vt_gemm: nf4_dq+2:4");
            return go<F, false>();
        } else {
            return sparse ? go<F, true>() : go<F, false>();
        }
    }
};

/* VT_GEMM_MMA=tile: the tile kernel for every call (A/B against gemm_pipe; read per call). */
static bool gemm_force_tile(void) {
    const char *e = getenv("VT_GEMM_MMA");
    return e && !strcmp(e, "tile");
}

extern "C" int vt_cuda_gemm_mma(const vt_kdesc *d, const void *X, vt_dtype xt, void *Y, vt_dtype yt,
                                uint64_t M, void *stream) {
    if ((M + BM - 1) / BM > 65535)
        return vt_fail(-22, "vt_gemm: M = %llu exceeds the grid (%d x 65535)",
                       (unsigned long long)M, BM);
    mma_launch l;
    l.p = vt_kp_from(d);
    l.sparse = d->sparse != 0;
    l.xh = xt == VT_DTYPE_F16;
    l.yh = yt == VT_DTYPE_F16;
    l.tile = gemm_force_tile();
    l.X = X;
    l.Y = Y;
    l.M = M;
    l.st = (cudaStream_t)stream;
    return vt_fmt_dispatch(d->fmt, l);
}

/* ---- cuBLAS path ---------------------------------------------------------------------------- */

static int cublas_err(cublasStatus_t s, const char *what) {
    if (s == CUBLAS_STATUS_SUCCESS) return 0;
    return vt_fail(VT_ECUDA, "%s: cuBLAS status %d (%s)", what, (int)s, cublasGetStatusString(s));
}

__global__ void f32_to_f16_kernel(const float *__restrict__ in, __half *__restrict__ out,
                                  uint64_t n) {
    for (uint64_t i = (uint64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n;
         i += (uint64_t)gridDim.x * blockDim.x)
        out[i] = __float2half_rn(in[i]);
}

extern "C" int vt_cuda_ws_create(uint64_t bytes, vt_kernel_ws **out) {
    vt_kernel_ws *w = (vt_kernel_ws *)vt_calloc(1, sizeof *w);
    if (!w) return vt_fail(-12, "vt_kernel_ws_create: out of memory");
    int rc = cublas_err(cublasCreate(&w->h), "cublasCreate");
    if (!rc) {
        cudaError_t e = cudaMalloc(&w->buf, bytes);
        if (e != cudaSuccess) {
            cudaGetLastError();
            w->buf = NULL;
            rc = vt_fail(VT_ECUDA, "vt_kernel_ws_create: cudaMalloc(%llu): %s",
                         (unsigned long long)bytes, cudaGetErrorString(e));
        }
    }
    if (rc) {
        if (w->h) cublasDestroy(w->h);
        vt_free(w);
        return rc;
    }
    w->bytes = bytes;
    *out = w;
    return 0;
}

extern "C" void vt_cuda_ws_destroy(vt_kernel_ws *w) {
    if (!w) return;
    if (w->buf) cudaFree(w->buf);
    if (w->h) cublasDestroy(w->h);
    vt_free(w);
}

/* C = W X^T for row-major W [n x cols] and X [M x cols] (f16), C stored as cuBLAS's
 * column-major [n x M] with leading dimension ldc (f16 when c16, else f32), f32 compute: the one
 * cublasGemmEx call of this file. */
static int gemm_f16(vt_kernel_ws *ws, const void *W, const void *X, void *C, bool c16, uint64_t n,
                    uint64_t M, uint64_t cols, uint64_t ldc, const char *what) {
    const float alpha = 1.0f, beta = 0.0f;
    return cublas_err(cublasGemmEx(ws->h, CUBLAS_OP_T, CUBLAS_OP_N, (int)n, (int)M, (int)cols,
                                   &alpha, W, CUDA_R_16F, (int)cols, X, CUDA_R_16F, (int)cols,
                                   &beta, C, c16 ? CUDA_R_16F : CUDA_R_32F, (int)ldc,
                                   CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
                      what);
}

extern "C" int vt_cuda_gemm_cublas(const vt_kdesc *d, const void *X, vt_dtype xt, void *Y,
                                   vt_dtype yt, uint64_t M, vt_kernel_ws *ws, void *stream) {
    cudaStream_t st = (cudaStream_t)stream;
    /* X converted to f16 (when f32) at the front, padded to 256 bytes; W row tiles after it */
    uint64_t xbytes = xt == VT_DTYPE_F32 ? (M * d->cols * 2 + 255) / 256 * 256 : 0;
    uint64_t align = d->fmt == VT_FMT_NF4_DQ ? vt_quant_row_align(VT_FMT_NF4_DQ, d->cols) : 1;
    uint64_t row_f16 = d->cols * 2;
    if (d->cols > 0x7fffffffull || M > 0x7fffffffull || d->rows > 0x7fffffffull)
        return vt_fail(-22, "vt_gemm (cuBLAS): %llu x %llu weight, M = %llu: beyond cuBLAS's int",
                       (unsigned long long)d->rows, (unsigned long long)d->cols,
                       (unsigned long long)M);
    if (ws->bytes < xbytes || ws->bytes - xbytes < align * row_f16)
        return vt_fail(-22,
                       "vt_gemm (cuBLAS): workspace of %llu bytes cannot hold X (%llu bytes) and "
                       "%llu rows of W",
                       (unsigned long long)ws->bytes, (unsigned long long)xbytes,
                       (unsigned long long)align);
    int rc = cublas_err(cublasSetStream(ws->h, st), "cublasSetStream");
    if (rc) return rc;
    const __half *Xh = (const __half *)X;
    uint8_t *wbuf = (uint8_t *)ws->buf;
    if (xbytes) {
        f32_to_f16_kernel<<<1024, 256, 0, st>>>((const float *)X, (__half *)wbuf, M * d->cols);
        if ((rc = vt_cuda_launch_check("vt_gemm: X to f16"))) return rc;
        Xh = (const __half *)wbuf;
        wbuf += xbytes;
    }
    const bool c16 = yt == VT_DTYPE_F16;
    /* f16 weights in plain rows are already the matrix cuBLAS takes: no copy (the dequantize
     * into the workspace cost as much as the product at M = 512 on an H200) */
    if (d->fmt == VT_FMT_F16 && !d->sparse && d->row_bytes == d->cols * 2 &&
        ((uintptr_t)d->data & 15) == 0)
        return gemm_f16(ws, d->data, Xh, Y, c16, d->rows, M, d->cols, d->rows,
                        "cublasGemmEx (f16 weights)");
    uint64_t avail = ws->bytes - (uint64_t)(wbuf - (uint8_t *)ws->buf);
    uint64_t rt = avail / row_f16 / align * align;
    if (rt > d->rows) rt = d->rows;
    if (rt == 0) return vt_fail(-22, "vt_gemm (cuBLAS): workspace too small for one row tile");
    for (uint64_t r0 = 0; r0 < d->rows; r0 += rt) {
        uint64_t n = d->rows - r0 < rt ? d->rows - r0 : rt;
        vt_kdesc sub = *d;
        sub.rows = n;
        uint32_t fmt = d->fmt | (d->sparse ? VT_FMT_SPARSE24 : 0u);
        sub.data = d->data + vt_quant_bytes(fmt, r0, d->cols); /* r0 is a multiple of align */
        if ((rc = vt_cuda_dequant(&sub, VT_DTYPE_F16, wbuf, stream))) return rc;
        /* column-major view: Y^T[rows x M] = W_tile[n x cols] * X^T[cols x M] */
        void *C = c16 ? (void *)((__half *)Y + r0) : (void *)((float *)Y + r0);
        rc = gemm_f16(ws, wbuf, Xh, C, c16, n, M, d->cols, d->rows, "cublasGemmEx");
        if (rc) return rc;
    }
    return 0;
}

extern "C" int vt_cuda_cublas_f16(vt_kernel_ws *ws, const uint16_t *W, const uint16_t *X, float *Y,
                                  uint64_t rows, uint64_t cols, uint64_t M, void *stream) {
    int rc = cublas_err(cublasSetStream(ws->h, (cudaStream_t)stream), "cublasSetStream");
    if (rc) return rc;
    return gemm_f16(ws, W, X, Y, false, rows, M, cols, rows, "cublasGemmEx (f16 baseline)");
}
