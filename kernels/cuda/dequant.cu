/* kernels/cuda/dequant.cu — dequantize a weight handle on the device to f32/f16/bf16.
 * Row-blocked formats: a CTA of 256 threads stages the bytes of 256 units (8192 values) of one
 * row, or of consecutive rows when rows are whole blocks and units (dq_tile.cuh, flat mode),
 * into shared memory with 16-byte loads, each thread decodes one unit in registers, and the
 * decoded tile goes back through shared memory so that the CTA's 16-byte stores are coalesced
 * (dq_tile.cuh; when the output rows are 16-byte aligned, else per-thread stores). nf4_dq runs
 * the same kernel decoding its units from global memory (its blocks are not row-local); 2:4
 * layouts decode straight from global memory, 64 columns per thread, and store through the same
 * shared-memory transpose (dequant_sparse). */
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "cuda_util.cuh"
#include "dq_tile.cuh"
#include "kparams.cuh"

#define DQ_THREADS 256

/* Store n (<= N) values v[0..n) at out[o..]; vector stores when @p vec (o and n multiples of
 * 8, out 16-byte aligned). T: 0 f32, 1 f16, 2 bf16. */
template <int T, int N>
__device__ __forceinline__ void store_vals(void *out, uint64_t o, const float *v, uint32_t n,
                                           bool vec) {
    if (vec && n == N) {
        constexpr int C = vt_dqt<T>::C;
        uint4 *dst = (uint4 *)((uint8_t *)out + o * vt_dqt<T>::ES);
#pragma unroll
        for (int h = 0; h < N / 32; h++)
#pragma unroll
            for (int k = 0; k < C; k++) dst[C * h + k] = vt_dqt_chunk<T>(v + 32 * h, k);
        return;
    }
    /* Unrolled with a guard (not i < n): v indexed at run time would live in local memory. */
#pragma unroll
    for (uint32_t i = 0; i < N; i++) {
        if (i >= n) break;
        if constexpr (T == 0)
            ((float *)out)[o + i] = v[i];
        else if constexpr (T == 1)
            ((__half *)out)[o + i] = __float2half_rn(v[i]);
        else
            ((__nv_bfloat16 *)out)[o + i] = __float2bfloat16_rn(v[i]);
    }
}

/* Shared bytes of dequant_staged: the staged row bytes of 256 units, reused for the output tile
 * (256 units x 32 values of type T) once every thread has decoded its unit. */
template <int F, int T> struct dq_smem_bytes {
    static constexpr int BE = vt_fmt_traits<F>::BE, BB = vt_fmt_traits<F>::BB;
    static constexpr int stage = DQ_THREADS * 32 / BE * BB + 32;
    static constexpr int tile = DQ_THREADS * vt_dqt<T>::C * 16;
    static constexpr int value = stage > tile ? stage : tile;
};

template <int F, int T>
__global__ void __launch_bounds__(DQ_THREADS)
    dequant_staged(vt_kp p, uint64_t tiles_per_row, bool flat, void *out, bool vec) {
    __shared__ float lut[32];
    __shared__ __align__(16) uint8_t sm[dq_smem_bytes<F, T>::value];
    vt_dq_lut_init(lut);
    const vt_dqt_span sp = vt_dqt_cta<F>(p, flat, tiles_per_row, blockIdx.x, DQ_THREADS);
    uint32_t sh = 0;
    if constexpr (F != VT_FMT_NF4_DQ) /* nf4_dq blocks are not row-local: decoded from global */
        sh = vt_stage(sm, p.data, p.bytes, sp.b0, (uint32_t)(sp.b1 - sp.b0), threadIdx.x,
                      DQ_THREADS);
    __syncthreads();
    const uint64_t g = sp.g0 + threadIdx.x, units = vt_units(p.cols);
    const bool live = g < sp.g1;
    const uint64_t r = g / units, u = g - r * units;
    vt_dq_ctx c = {lut, p.tensor_scale, p.aux, p.cols};
    float v[32];
    if (live) {
        if constexpr (F == VT_FMT_NF4_DQ)
            vt_dq_unit_nf4dq(p.data, p.bpr, r, u, c, v);
        else
            vt_dq_unit<F>(sm + sh + (vt_dqt_boff<F>(p, g) - sp.b0), u, 32 * u, c, v);
    }
    if (vec) {
        /* through shared memory (dq_tile.cuh): coalesced stores of the tile's output range */
        __syncthreads(); /* every thread has read its staged bytes */
        if (live) vt_dqt_put<T>((uint4 *)sm, threadIdx.x, v);
        __syncthreads();
        uint32_t nq = (uint32_t)(sp.n * vt_dqt<T>::ES / 16); /* vec: cols % 8 == 0 */
        vt_dqt_store<T>((uint4 *)((uint8_t *)out + sp.o * vt_dqt<T>::ES), (const uint4 *)sm, nq,
                        threadIdx.x, DQ_THREADS);
        return;
    }
    if (!live) return;
    uint64_t cu = 32 * u;
    uint32_t n = (uint32_t)(p.cols - cu < 32 ? p.cols - cu : 32);
    store_vals<T, 32>(out, r * p.cols + cu, v, n, false);
}

/* 2:4 layouts: 128 compressed units (8192 values) of one row per CTA (dq_tile.cuh). With
 * 16-byte aligned output rows the tile goes through shared memory for coalesced stores, as in
 * dequant_staged; else threads 0..127 store their 64 values themselves. */
template <int F, int T>
__global__ void __launch_bounds__(DQ_THREADS)
    dequant_sparse(vt_kp p, uint64_t tiles_per_row, void *out, bool vec) {
    __shared__ float lut[32];
    __shared__ __align__(16) uint4 so[DQ_THREADS * vt_dqt<T>::C];
    vt_dq_lut_init(lut);
    __syncthreads();
    const uint64_t r = blockIdx.x / tiles_per_row,
                   h0 = (blockIdx.x % tiles_per_row) * VT_DQT_SPARSE_UNITS;
    vt_dq_ctx c = {lut, p.tensor_scale, p.aux, p.cols};
    const uint64_t col0 = 64 * h0;
    if (vec) {
        vt_dqt_put_sparse<F, T>(p, c, r, h0, threadIdx.x, so);
        __syncthreads();
        uint64_t n =
            p.cols - col0 < 64 * VT_DQT_SPARSE_UNITS ? p.cols - col0 : 64 * VT_DQT_SPARSE_UNITS;
        vt_dqt_store<T>((uint4 *)((uint8_t *)out + (r * p.cols + col0) * vt_dqt<T>::ES), so,
                        (uint32_t)(n * vt_dqt<T>::ES / 16), threadIdx.x, DQ_THREADS);
        return;
    }
    const uint64_t h = h0 + threadIdx.x;
    if (threadIdx.x >= VT_DQT_SPARSE_UNITS || h >= vt_sparse_units(p.cols)) return;
    float v[64];
    vt_decode64<F, true>(p, c, r, h, v);
    uint32_t n = (uint32_t)(p.cols - 64 * h < 64 ? p.cols - 64 * h : 64);
    store_vals<T, 64>(out, r * p.cols + 64 * h, v, n, false);
}

struct dq_launch {
    vt_kp p;
    bool sparse;
    int T;
    void *out;
    cudaStream_t st;
    template <int F, int T> int go() {
        bool vec = p.cols % 8 == 0 && ((uintptr_t)out & 15) == 0;
        /* if constexpr: only the kernels a format can reach are instantiated */
        if constexpr (F != VT_FMT_NF4_DQ) {
            if (sparse) {
                uint64_t tpr =
                    (vt_sparse_units(p.cols) + VT_DQT_SPARSE_UNITS - 1) / VT_DQT_SPARSE_UNITS;
                dequant_sparse<F, T>
                    <<<(unsigned)(p.rows * tpr), DQ_THREADS, 0, st>>>(p, tpr, out, vec);
                return vt_cuda_launch_check("vt_dequant kernel launch");
            }
        }
        uint64_t tpr = (vt_units(p.cols) + DQ_THREADS - 1) / DQ_THREADS;
        const bool flat = vt_dqt_flat<F>(p);
        uint64_t ctas =
            flat ? (p.rows * vt_units(p.cols) + DQ_THREADS - 1) / DQ_THREADS : p.rows * tpr;
        dequant_staged<F, T><<<(unsigned)ctas, DQ_THREADS, 0, st>>>(p, tpr, flat, out, vec);
        return vt_cuda_launch_check("vt_dequant kernel launch");
    }
    template <int F> int run() {
        if (sparse && F == VT_FMT_NF4_DQ) return vt_fail(VT_EUNSUPPORTED, "vt_dequant: nf4_dq+2:4");
        return T == 0 ? go<F, 0>() : T == 1 ? go<F, 1>() : go<F, 2>();
    }
};

extern "C" int vt_cuda_dequant(const vt_kdesc *d, vt_dtype ot, void *out, void *stream) {
    dq_launch l;
    l.p = vt_kp_from(d);
    l.sparse = d->sparse != 0;
    l.T = ot == VT_DTYPE_F32 ? 0 : ot == VT_DTYPE_F16 ? 1 : 2;
    l.out = out;
    l.st = (cudaStream_t)stream;
    uint64_t ctas = d->rows * ((vt_units(d->cols) + DQ_THREADS - 1) / DQ_THREADS);
    if (ctas > 0x7fffffffull)
        return vt_fail(-22, "vt_dequant: %llu x %llu is too large for one launch",
                       (unsigned long long)d->rows, (unsigned long long)d->cols);
    return vt_fmt_dispatch(d->fmt, l);
}
