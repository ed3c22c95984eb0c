/* kernels/cuda/gemv.cu — fused dequantize + GEMV, y[b] = W x[b] for batch 1..8.
 * One warp per row, 4 warps per CTA. Row-blocked formats: the warp stages G x 32 units of its
 * row (about 2 KiB) into shared memory with aligned 16-byte loads, several per lane in flight,
 * then each lane decodes whole units in registers and multiplies with x (float4 loads, L1/L2
 * resident); a shuffle reduction ends the row. nf4_dq and 2:4 rows decode from global memory. */
#include "cuda_util.cuh"
#include "kparams.cuh"

#define GV_WARPS 4

template <int F> struct gv_geom {
    static constexpr int BE = vt_fmt_traits<F>::BE, BB = vt_fmt_traits<F>::BB;
    static constexpr int TB = 1024 / BE * BB; /* bytes of 32 units */
    static constexpr int G = TB >= 2048 ? 1 : 2048 / TB;
    static constexpr int STAGE = G * TB + 32;
};

/* acc[b] += s for a run-time b, with static indices only (acc stays in registers). */
template <int NB> __device__ __forceinline__ void acc_add(float acc[NB], int b, float s) {
#pragma unroll
    for (int k = 0; k < NB; k++)
        if (k == b) acc[k] += s;
}

/* acc[b] += sum_i v[i] x[b][col0 + i] for the 32 values of a unit (masked past cols). */
template <int NB>
__device__ __forceinline__ void dot32(const float v[32], const float *x, uint64_t cols,
                                      uint64_t col0, int nb, bool xvec, float acc[NB]) {
    if (xvec && col0 + 32 <= cols) {
#pragma unroll
        for (int b = 0; b < NB; b++) {
            if (b >= nb) break;
            const float4 *xp = (const float4 *)(x + b * cols + col0);
            float s = 0.0f;
#pragma unroll
            for (int i = 0; i < 8; i++) {
                float4 q = __ldg(xp + i);
                s = fmaf(v[4 * i], q.x, s);
                s = fmaf(v[4 * i + 1], q.y, s);
                s = fmaf(v[4 * i + 2], q.z, s);
                s = fmaf(v[4 * i + 3], q.w, s);
            }
            acc[b] += s;
        }
    } else {
        /* The i loop fully unrolled with a guard (v indexed at run time would go to local
         * memory); the b loop not unrolled (32 loads in flight, not 32 x NB: unrolled, the batch-8
         * kernels took up to 192 registers), its sum added with static indices only. */
#pragma unroll 1
        for (int b = 0; b < nb; b++) {
            float s = 0.0f;
#pragma unroll
            for (int i = 0; i < 32; i++)
                if (col0 + i < cols) s = fmaf(v[i], __ldg(x + b * cols + col0 + i), s);
            acc_add<NB>(acc, b, s);
        }
    }
}

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
        uint64_t b0 = vt_dq_unit_off<F>(u0);
        uint64_t b1 = u0 + step < units ? vt_dq_unit_off<F>(u0 + step) : p.row_bytes;
        if (b1 > p.row_bytes) b1 = p.row_bytes;
        uint32_t sh = vt_stage(sm[warp], p.data, p.bytes, r * p.row_bytes + b0, (uint32_t)(b1 - b0),
                               lane, 32);
        __syncwarp();
        /* one unit at a time per lane: unrolled, the batch-2..8 kernels took up to 155 registers */
#pragma unroll 1
        for (int g = 0; g < Gm::G; g++) {
            uint64_t u = u0 + 32 * g + lane;
            if (u < units) {
                float v[32];
                vt_dq_unit<F>(sm[warp] + sh + (vt_dq_unit_off<F>(u) - b0), u, 32 * u, c, v);
                dot32<NB>(v, x, p.cols, 32 * u, nb, xvec, acc);
            }
        }
        __syncwarp();
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
    if constexpr (SPARSE) {
        const uint8_t *row = p.data + r * p.row_bytes;
        for (uint64_t h = lane; h < vt_sparse_units(p.cols); h += 32) {
            float v[32];
            uint8_t pos[32];
            vt_dq_unit_sparse<F>(row, row + p.idx_off, h, p.ccols, c, v, pos);
            /* as in dot32's fallback: 32 loads in flight, not 32 x NB */
#pragma unroll 1
            for (int b = 0; b < nb; b++) {
                float s = 0.0f;
#pragma unroll
                for (int i = 0; i < 32; i++) {
                    uint64_t col = 64 * h + pos[i];
                    if (col < p.cols) s = fmaf(v[i], __ldg(x + b * p.cols + col), s);
                }
                acc_add<NB>(acc, b, s);
            }
        }
    } else {
        for (uint64_t u = lane; u < vt_units(p.cols); u += 32) {
            float v[32];
            vt_dq_unit_nf4dq(p.data, p.bpr, r, u, c, v);
            dot32<NB>(v, x, p.cols, 32 * u, nb, xvec, acc);
        }
    }
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
