/* kernels/cuda/gemv.cu — fused dequantize + GEMV, y[b] = W x[b] for batch 1..8.
 * One warp per row. Row-blocked formats (gemv_staged, up to 8 warps per CTA: gv_cfg): the warp
 * stages G x 32 units of its row (about 2 KiB) into shared memory with aligned 16-byte loads;
 * the CTA loads x 1024 columns at a time into shared memory (coalesced, swizzled:
 * gemv_lane.cuh), and each lane decodes whole units in registers and multiplies them with x from
 * there; a shuffle reduction ends the row. Where two stages of each fit with at least 4 warps
 * (every quantized format up to batch 2 or 4), the next x chunk and row bytes are in flight by
 * cp.async while a chunk is computed (gemv_cta.cuh; VT_GEMV_STAGING=sync turns that off). nf4_dq
 * (blocks not row-local) runs the same kernel decoding its units from global memory. 2:4 rows
 * up to batch 4 (gemv_sparse_staged) stage their compressed and index bytes and x in shared
 * memory too (gemv_cta.cuh); at batch 8 (gemv_sparse, 4 warps per CTA) they decode from global
 * memory and gather x from L1/L2. */
#include <stdlib.h>
#include <string.h>

#include "cuda_util.cuh"
#include "gemv_cta.cuh"
#include "simt_dev.cuh"

#define GV_WARPS 4

template <int NB>
__device__ __forceinline__ void finish_row(float acc[NB], float *y, uint64_t rows, uint64_t r,
                                           int nb) {
#pragma unroll
    for (int b = 0; b < NB; b++) {
        float s = acc[b];
#pragma unroll
        for (int o = 16; o > 0; o >>= 1) s += __shfl_xor_sync(0xffffffffu, s, o);
        if ((threadIdx.x & 31) == 0 && b < nb) y[b * rows + r] = s;
    }
}

template <int F, int NB, bool ASYNC>
__global__ void __launch_bounds__(gv_cfg<F, NB, ASYNC>::W * 32)
    gemv_staged(vt_kp p, const float *__restrict__ x, float *__restrict__ y, int nb, bool xvec) {
    static_assert(sizeof(gv_smem<F, NB, ASYNC>) <= 48 * 1024, "static shared memory limit");
    __shared__ gv_smem<F, NB, ASYNC> sm;
    vt_simt_dev cx;
    gv_cta_body<F, NB, ASYNC>(cx, p, x, y, nb, xvec, sm, blockIdx.x);
}

template <int F, int NB>
__global__ void __launch_bounds__(gvs_cfg<F, NB>::W * 32)
    gemv_sparse_staged(vt_kp p, const float *__restrict__ x, float *__restrict__ y, int nb,
                       bool xvec) {
    static_assert(sizeof(gvs_smem<F, NB>) <= 48 * 1024, "static shared memory limit");
    __shared__ gvs_smem<F, NB> sm;
    vt_simt_dev cx;
    gvs_cta_body<F, NB>(cx, p, x, y, nb, xvec, sm, blockIdx.x);
}

template <int F, int NB>
__global__ void __launch_bounds__(GV_WARPS * 32)
    gemv_sparse(vt_kp p, const float *__restrict__ x, float *__restrict__ y, int nb) {
    __shared__ float lut[32];
    vt_dq_lut_init(lut);
    __syncthreads();
    int warp = threadIdx.x / 32, lane = threadIdx.x & 31;
    uint64_t r = (uint64_t)blockIdx.x * GV_WARPS + warp;
    if (r >= p.rows) return;
    vt_dq_ctx c = {lut, p.tensor_scale, p.aux, p.cols};
    float acc[NB];
#pragma unroll
    for (int b = 0; b < NB; b++) acc[b] = 0.0f;
    gv_sparse_lane<F, NB>(p, c, x, r, lane, nb, acc);
    finish_row<NB>(acc, y, p.rows, r, nb);
}

struct gv_launch {
    vt_kp p;
    bool sparse, async;
    const float *x;
    float *y;
    int nb;
    cudaStream_t st;
    template <int F, int NB> int go(const vt_kp &, bool xvec) {
        unsigned grid = (unsigned)((p.rows + GV_WARPS - 1) / GV_WARPS);
        constexpr int W = gv_cfg<F, NB, false>::W;
        /* if constexpr: only the kernels a format can reach are instantiated */
        if constexpr (F != VT_FMT_NF4_DQ) {
            if (sparse) {
                if constexpr (gvs_cfg<F, NB>::W > 0) { /* x in shared memory: up to batch 4 */
                    constexpr int WS = gvs_cfg<F, NB>::W;
                    gemv_sparse_staged<F, NB>
                        <<<(unsigned)((p.rows + WS - 1) / WS), WS * 32, 0, st>>>(p, x, y, nb, xvec);
                } else {
                    gemv_sparse<F, NB><<<grid, GV_WARPS * 32, 0, st>>>(p, x, y, nb);
                }
                return vt_cuda_launch_check("vt_gemv kernel launch");
            }
        }
        if constexpr (gv_cfg<F, NB, true>::W >= 4) {
            if (async) {
                constexpr int WA = gv_cfg<F, NB, true>::W;
                gemv_staged<F, NB, true>
                    <<<(unsigned)((p.rows + WA - 1) / WA), WA * 32, 0, st>>>(p, x, y, nb, xvec);
                return vt_cuda_launch_check("vt_gemv kernel launch");
            }
        }
        gemv_staged<F, NB, false>
            <<<(unsigned)((p.rows + W - 1) / W), W * 32, 0, st>>>(p, x, y, nb, xvec);
        return vt_cuda_launch_check("vt_gemv kernel launch");
    }
    template <int F> int run() {
        if (sparse && F == VT_FMT_NF4_DQ) return vt_fail(VT_EUNSUPPORTED, "vt_gemv: nf4_dq+2:4");
        return gv_batch_dispatch<F>(*this, nb, p, x);
    }
};

extern "C" int vt_cuda_gemv(const vt_kdesc *d, const float *x, float *y, int batch, void *stream) {
    gv_launch l;
    l.p = vt_kp_from(d);
    l.sparse = d->sparse != 0;
    /* VT_GEMV_STAGING=sync: the synchronous staging everywhere (the A/B baseline of
     * bench_kernels and test_kernels_gpu); read per call, it costs a getenv */
    const char *e = getenv("VT_GEMV_STAGING");
    l.async = !(e && !strcmp(e, "sync"));
    l.x = x;
    l.y = y;
    l.nb = batch;
    l.st = (cudaStream_t)stream;
    if ((d->rows + GV_WARPS - 1) / GV_WARPS > 0x7fffffffull)
        return vt_fail(-22, "vt_gemv: %llu rows exceed one launch", (unsigned long long)d->rows);
    return vt_fmt_dispatch(d->fmt, l);
}
