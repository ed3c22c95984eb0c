/* kernels/cuda/dequant.cu — dequantize a weight handle on the device to f32/f16/bf16.
 * Row-blocked formats (dequant_staged, body in dq_tile.cuh vt_dqk_body): about one wave of CTAs
 * of 256 threads, each over a sequence of tiles of 256 units (8192 values) of one row, or of
 * consecutive rows when rows are whole blocks and units (flat mode). A tile's bytes are staged
 * into shared memory by cp.async one tile ahead (two buffers), each thread decodes one unit
 * from shared memory with word loads into registers, and the decoded tile goes back through
 * shared memory so that the CTA's 16-byte stores are coalesced (when the output rows are 16-byte
 * aligned, else per-thread stores). nf4_dq decodes its units from global memory (its blocks are
 * not row-local). AWQ divides by the channel scales kept per thread in shared memory. f32/f16/
 * bf16 weights are converted (copied for the same type) 16 bytes at a time (dequant_plain).
 * 2:4 layouts decode straight from global memory, 64 columns per thread, and store through the
 * same shared-memory transpose (dequant_sparse). */
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <stdlib.h>

#include <atomic>

#include "cuda_util.cuh"
#include "dq_tile.cuh"
#include "kparams.cuh"
#include "simt_dev.cuh"

#define DQ_THREADS 256

/* Dense quantized layouts: a grid of about one wave of CTAs, each over tiles of 256 units
 * (dq_tile.cuh vt_dqk_body). Dynamic shared memory: with f32 output the q8_0/int8 CTA needs
 * more than 48 KiB. */
template <int F, int T>
__global__ void __launch_bounds__(VT_DQK_THREADS)
    dequant_staged(vt_kp p, uint64_t tpr, uint64_t ntiles, bool flat, void *out, bool vec) {
    extern __shared__ __align__(16) unsigned char dq_dyn[];
    vt_simt_dev cx;
    vt_dqk_body<F, T>(cx, p, flat, tpr, ntiles, blockIdx.x, gridDim.x, out, vec,
                      *reinterpret_cast<vt_dqk_smem<F, T> *>(dq_dyn));
}

/* f32/f16/bf16 weights: a vectorized conversion (a copy for the same type), dq_tile.cuh. */
template <int F, int T>
__global__ void __launch_bounds__(DQ_THREADS) dequant_plain(vt_kp p, void *out, bool vec) {
    vt_dqp_body<F, T>(p, out, vec, (uint64_t)blockIdx.x * DQ_THREADS + threadIdx.x,
                      (uint64_t)gridDim.x * DQ_THREADS);
}

static uint64_t dq_gcd(uint64_t a, uint64_t b) {
    while (b) {
        uint64_t t = a % b;
        a = b, b = t;
    }
    return a;
}

/* 2:4 layouts: the same pipeline over tiles of 128 compressed units of a row (dq_tile.cuh
 * vt_dqs_body). */
template <int F, int T>
__global__ void __launch_bounds__(VT_DQK_THREADS)
    dequant_sparse(vt_kp p, uint64_t tpr, uint64_t ntiles, void *out, bool vec) {
    extern __shared__ __align__(16) unsigned char dq_dyn[];
    vt_simt_dev cx;
    vt_dqs_body<F, T>(cx, p, tpr, ntiles, blockIdx.x, gridDim.x, out, vec,
                      *reinterpret_cast<vt_dqs_smem<F, T> *>(dq_dyn));
}

/* The grid of pipelined kernel kern: about one wave (SMs x CTAs per SM at smem bytes), cached
 * per device and kernel; the dynamic shared memory opted in. */
template <auto kern> static int dq_wave(size_t smem, uint64_t *grid) {
    static std::atomic<unsigned long long> set;
    static std::atomic<int> occ_cache[64];
    int rc = vt_cuda_smem_optin(kern, smem, set, "vt_dequant: shared memory");
    if (rc) return rc;
    int dev = 0, occ = 0;
    if (cudaGetDevice(&dev) != cudaSuccess || dev < 0 || dev >= 64) dev = -1;
    if (dev >= 0) occ = occ_cache[dev].load(std::memory_order_relaxed);
    if (!occ) {
        if (cudaOccupancyMaxActiveBlocksPerMultiprocessor(&occ, kern, VT_DQK_THREADS, smem) !=
                cudaSuccess ||
            occ <= 0)
            occ = 1;
        if (dev >= 0) occ_cache[dev].store(occ, std::memory_order_relaxed);
    }
    *grid = (uint64_t)vt_cuda_sm_count(132) * (uint64_t)occ;
    /* VT_DEQUANT_GRID=N caps the grid (a test knob: with the test shapes one wave has more CTAs
     * than there are tiles, so only a capped grid runs CTAs over several tiles on the GPU) */
    static const long cap = [] {
        const char *e = getenv("VT_DEQUANT_GRID");
        return e ? atol(e) : 0L;
    }();
    if (cap > 0 && (uint64_t)cap < *grid) *grid = (uint64_t)cap;
    return 0;
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
                using S = vt_dqs_smem<F, T>;
                uint64_t grid;
                int rc = dq_wave<dequant_sparse<F, T>>(sizeof(S), &grid);
                if (rc) return rc;
                const uint64_t tpr = (vt_sparse_units(p.cols) + VT_DQS_UNITS - 1) / VT_DQS_UNITS,
                               ntiles = p.rows * tpr;
                if (grid > ntiles) grid = ntiles;
                if (grid == 0) return 0;
                dequant_sparse<F, T>
                    <<<(unsigned)grid, VT_DQK_THREADS, sizeof(S), st>>>(p, tpr, ntiles, out, vec);
                return vt_cuda_launch_check("vt_dequant kernel launch");
            }
        }
        const int sms = vt_cuda_sm_count(132);
        if constexpr (F == VT_FMT_F32 || F == VT_FMT_F16 || F == VT_FMT_BF16) {
            const uint64_t n = p.rows * p.cols;
            const bool pv = p.row_bytes == p.cols * vt_dqp<F>::IES &&
                            ((uintptr_t)p.data & 15) == 0 && ((uintptr_t)out & 15) == 0;
            /* 8 CTAs of 256 threads per SM, each thread a few 16-byte steps */
            uint64_t ctas = (n / 8 + DQ_THREADS - 1) / DQ_THREADS;
            if (ctas > (uint64_t)sms * 8 * 4) ctas = (uint64_t)sms * 8 * 4;
            if (ctas == 0) ctas = 1;
            dequant_plain<F, T><<<(unsigned)ctas, DQ_THREADS, 0, st>>>(p, out, pv);
            return vt_cuda_launch_check("vt_dequant kernel launch");
        } else {
            using S = vt_dqk_smem<F, T>;
            uint64_t grid;
            int rc = dq_wave<dequant_staged<F, T>>(sizeof(S), &grid);
            if (rc) return rc;
            const uint64_t units = vt_units(p.cols);
            const uint64_t tpr = (units + VT_DQK_THREADS - 1) / VT_DQK_THREADS;
            const bool flat = vt_dqt_flat<F>(p);
            const uint64_t ntiles =
                flat ? (p.rows * units + VT_DQK_THREADS - 1) / VT_DQK_THREADS : p.rows * tpr;
            if (F == VT_FMT_AWQ_INT4 && p.aux) {
                /* a multiple of the period after which a thread's column repeats, so that each
                 * thread loads its 32 channel scales once */
                const uint64_t per = flat ? units / dq_gcd(units, VT_DQK_THREADS) : tpr;
                grid = grid >= per ? grid / per * per : per;
            }
            if (grid > ntiles) grid = ntiles;
            if (grid == 0) return 0;
            dequant_staged<F, T>
                <<<(unsigned)grid, VT_DQK_THREADS, sizeof(S), st>>>(p, tpr, ntiles, flat, out, vec);
            return vt_cuda_launch_check("vt_dequant kernel launch");
        }
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
