/* kernels/cuda/gemv.cu — fused dequantize + GEMV, y[b] = W x[b] for batch 1..8.
 * One warp per row, 4 warps per CTA. Row-blocked formats: the warp stages G x 32 units of its
 * row (about 2 KiB) into shared memory with aligned 16-byte loads, several per lane in flight,
 * then each lane decodes whole units in registers and multiplies with x (float4 loads, L1/L2
 * resident); a shuffle reduction ends the row. nf4_dq and 2:4 rows decode from global memory. */
#include "cuda_util.cuh"
#include "gemv_lane.cuh"

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

template <int F, int NB>
__global__ void __launch_bounds__(GV_WARPS * 32)
    gemv_staged(vt_kp p, const float *__restrict__ x, float *__restrict__ y, int nb, bool xvec) {
    using Gm = gv_geom<F>;
    __shared__ float lut[32];
    __shared__ __align__(16) uint8_t sm[GV_WARPS][Gm::STAGE];
    vt_dq_lut_init(lut);
    __syncthreads();
    int warp = threadIdx.x / 32, lane = threadIdx.x & 31;
    uint64_t r = (uint64_t)blockIdx.x * GV_WARPS + warp;
    if (r >= p.rows) return;
    vt_dq_ctx c = {lut, p.tensor_scale, p.aux, p.cols};
    const uint64_t units = vt_units(p.cols), step = 32 * Gm::G;
    float acc[NB];
#pragma unroll
    for (int b = 0; b < NB; b++) acc[b] = 0.0f;
    for (uint64_t u0 = 0; u0 < units; u0 += step) {
        uint64_t b0;
        uint32_t sh = gv_stage_lane<F>(p, r, u0, sm[warp], lane, &b0);
        __syncwarp();
        gv_staged_lane<F, NB>(p, c, x, u0, b0, sm[warp], sh, lane, nb, xvec, acc);
        __syncwarp(); /* before the next step overwrites the area */
    }
    finish_row<NB>(acc, y, p.rows, r, nb);
}

template <int F, bool SPARSE, int NB>
__global__ void __launch_bounds__(GV_WARPS * 32)
    gemv_direct(vt_kp p, const float *__restrict__ x, float *__restrict__ y, int nb, bool xvec) {
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
    gv_direct_lane<F, SPARSE, NB>(p, c, x, r, lane, nb, xvec, acc);
    finish_row<NB>(acc, y, p.rows, r, nb);
}

struct gv_launch {
    vt_kp p;
    bool sparse;
    const float *x;
    float *y;
    int nb;
    cudaStream_t st;
    template <int F, int NB> int go() {
        bool xvec = p.cols % 4 == 0 && ((uintptr_t)x & 15) == 0;
        unsigned grid = (unsigned)((p.rows + GV_WARPS - 1) / GV_WARPS);
        /* if constexpr: only the kernels a format can reach are instantiated */
        if constexpr (F == VT_FMT_NF4_DQ)
            gemv_direct<F, false, NB><<<grid, GV_WARPS * 32, 0, st>>>(p, x, y, nb, xvec);
        else if (sparse)
            gemv_direct<F, true, NB><<<grid, GV_WARPS * 32, 0, st>>>(p, x, y, nb, xvec);
        else
            gemv_staged<F, NB><<<grid, GV_WARPS * 32, 0, st>>>(p, x, y, nb, xvec);
        return vt_cuda_launch_check("vt_gemv kernel launch");
    }
    template <int F> int run() {
        if (sparse && F == VT_FMT_NF4_DQ) return vt_fail(VT_EUNSUPPORTED, "vt_gemv: nf4_dq+2:4");
        return nb == 1 ? go<F, 1>() : nb == 2 ? go<F, 2>() : nb <= 4 ? go<F, 4>() : go<F, 8>();
    }
};

extern "C" int vt_cuda_gemv(const vt_kdesc *d, const float *x, float *y, int batch, void *stream) {
    gv_launch l;
    l.p = vt_kp_from(d);
    l.sparse = d->sparse != 0;
    l.x = x;
    l.y = y;
    l.nb = batch;
    l.st = (cudaStream_t)stream;
    if ((d->rows + GV_WARPS - 1) / GV_WARPS > 0x7fffffffull)
        return vt_fail(-22, "vt_gemv: %llu rows exceed one launch", (unsigned long long)d->rows);
    return vt_fmt_dispatch(d->fmt, l);
}
