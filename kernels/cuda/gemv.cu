/* kernels/cuda/gemv.cu — fused dequantize + GEMV, y[b] = W x[b] for batch 1..8.
 * One warp per row. Row-blocked formats (gemv_staged, 8 warps per CTA, fewer for f16/bf16/f32
 * weights at batch 4-8: gv_cta): the warp stages G x 32 units of its row (about 2 KiB) into
 * shared memory with aligned 16-byte loads, several per lane in flight; the CTA loads x 1024
 * columns at a time into shared memory (coalesced, swizzled: gemv_lane.cuh), and each lane
 * decodes whole units in registers and multiplies them with x from there; a shuffle reduction
 * ends the row. nf4_dq (blocks not row-local) runs the same kernel decoding its units from
 * global memory. 2:4 rows (gemv_sparse, 4 warps per CTA) decode from global memory and gather x
 * from L1/L2. */
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

/* Warps (rows) per CTA of the staged kernel: the most of 8, 4, 2, 1 whose row areas and x chunk
 * (4 KiB per vector) fit the 48 KiB of static shared memory: 8 for the quantized formats at
 * every batch; f16/bf16 weights 8 up to batch 4, then 4; f32 8 / 8 / 4 / 2 at batch 1 / 2 / 4 / 8.
 * The warps of a CTA share its x chunk, so more rows per CTA means less x traffic from L2 (x is
 * read once per CTA). */
template <int F, int NB> struct gv_cta {
    static constexpr int fits(int w) {
        return w * gv_geom<F>::AREA + NB * GV_XS * 16 + 128 <= 48 * 1024;
    }
    static constexpr int W = fits(8) ? 8 : fits(4) ? 4 : fits(2) ? 2 : 1;
};

template <int F, int NB>
__global__ void __launch_bounds__(gv_cta<F, NB>::W * 32)
    gemv_staged(vt_kp p, const float *__restrict__ x, float *__restrict__ y, int nb, bool xvec) {
    constexpr int W = gv_cta<F, NB>::W;
    using Gm = gv_geom<F>;
    __shared__ float lut[32];
    __shared__ __align__(16) uint8_t sm[W][Gm::AREA];
    __shared__ float4 sx[NB * GV_XS];
    vt_dq_lut_init(lut); /* visible after the first __syncthreads below */
    int warp = threadIdx.x / 32, lane = threadIdx.x & 31;
    uint64_t r = (uint64_t)blockIdx.x * W + warp;
    /* warp-uniform; a warp past the last row still loads x and meets every barrier */
    const bool live = r < p.rows;
    const vt_dq_ctx c = gv_ctx_staged(lut, p);
    const uint64_t units = vt_units(p.cols), step = 32 * Gm::G;
    float acc[NB];
#pragma unroll
    for (int b = 0; b < NB; b++) acc[b] = 0.0f;
    for (uint64_t u0 = 0; u0 < units; u0 += step) {
        uint64_t b0 = 0;
        uint32_t sh = 0;
        if (F != VT_FMT_NF4_DQ && live) sh = gv_stage_lane<F>(p, r, u0, sm[warp], lane, &b0);
        for (int g = 0; g < Gm::G && u0 + 32 * g < units; g++) {
            __syncthreads(); /* every warp is done with the previous x chunk */
            gv_xstage(x, p.aux, p.cols, u0 + 32 * g, nb, xvec, sx, threadIdx.x, W * 32);
            __syncthreads(); /* x chunk and this step's staged row bytes visible */
            if (live)
                gv_unit_lane<F, NB>(p, c, sx, r, u0 + 32 * g, b0, sm[warp], sh, lane, nb, acc);
        }
        __syncwarp(); /* before the next step overwrites the warp's area */
    }
    if (live) finish_row<NB>(acc, y, p.rows, r, nb);
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
    bool sparse;
    const float *x;
    float *y;
    int nb;
    cudaStream_t st;
    template <int F, int NB> int go() {
        bool xvec = p.cols % 4 == 0 && ((uintptr_t)x & 15) == 0;
        unsigned grid = (unsigned)((p.rows + GV_WARPS - 1) / GV_WARPS);
        constexpr int W = gv_cta<F, NB>::W;
        /* if constexpr: only the kernels a format can reach are instantiated */
        if constexpr (F != VT_FMT_NF4_DQ) {
            if (sparse) {
                gemv_sparse<F, NB><<<grid, GV_WARPS * 32, 0, st>>>(p, x, y, nb);
                return vt_cuda_launch_check("vt_gemv kernel launch");
            }
        }
        gemv_staged<F, NB><<<(unsigned)((p.rows + W - 1) / W), W * 32, 0, st>>>(p, x, y, nb, xvec);
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
