/* kernels/cuda/gemv.cu — fused dequantize + GEMV, y[b] = W x[b] for batch 1..8.
 * Batch 1-2 on dense rows: q4_0/q4_1/q4_k/q8_0/int8 (aligned) the integer kernel (gemv_rows.cuh
 * gvq_cta_body: x quantized to int16 codes in shared memory once per CTA, codes dotted with dp2a;
 * VT_GEMV_LOAD=window its units by aligned 16-byte chunk loads, for q4_0/q4_1/q8_0, and q4_k
 * where its data and rows are 16-byte aligned), the other
 * formats but awq_int4 and q6_k (gvr_pays) the register kernel (gemv_rows.cuh: R rows per CTA,
 * x in registers reused across them, units decoded straight from global memory).
 * VT_GEMV_KERNEL=float skips the integer kernel and VT_GEMV_KERNEL=staged gives the staged
 * kernel below instead (the A/B of bench_kernels). Batch 3-8 and 2:4 rows:
 * one warp per row. Row-blocked formats (gemv_staged, up to 8 warps per CTA: gv_cfg): the warp
 * stages G x 32 units of its row (about 2 KiB) into shared memory with aligned 16-byte loads;
 * the CTA loads x 1024 columns at a time into shared memory (coalesced, swizzled:
 * gemv_lane.cuh), and each lane decodes whole units in registers and multiplies them with x from
 * there; a shuffle reduction ends the row. Where two stages of each fit 96 KiB with at least 4
 * warps (every format and batch but f32 weights at batch 8), the next x chunk and row bytes are
 * in flight by cp.async while a chunk is computed (gemv_cta.cuh; VT_GEMV_STAGING=sync turns that
 * off). nf4_dq (blocks not row-local) runs the same kernel decoding its units from global
 * memory. 2:4 rows (gemv_sparse_staged) stage their compressed and index bytes and x in shared
 * memory too (gemv_cta.cuh). */
#include <stdlib.h>
#include <string.h>

#include "cuda_util.cuh"
#include "gemv_cta.cuh"
#include "gemv_rows.cuh"
#include "simt_dev.cuh"

/* The sync variant: static shared memory (<= 48 KiB). */
template <int F, int NB>
__global__ void __launch_bounds__(gv_cfg<F, NB, false>::W * 32)
    gemv_staged_sync(vt_kp p, const float *__restrict__ x, float *__restrict__ y, int nb,
                     bool xvec) {
    static_assert(sizeof(gv_smem<F, NB, false>) <= 48 * 1024, "static shared memory limit");
    __shared__ gv_smem<F, NB, false> sm;
    vt_simt_dev cx;
    gv_cta_body<F, NB, false>(cx, p, x, y, nb, xvec, sm, blockIdx.x);
}

/* The register kernel (batch 1-2, dense rows): static shared memory (the table, the sums). */
template <int F, int NB>
__global__ void __launch_bounds__(GVR_W * 32)
    gemv_rows(vt_kp p, const float *__restrict__ x, float *__restrict__ y, int nb, bool xvec) {
    __shared__ gvr_smem<NB> sm;
    vt_simt_dev cx;
    gvr_cta_body<F, NB>(cx, p, x, y, nb, xvec, sm, blockIdx.x);
}

/* The integer kernel (q4_0/q4_1/q4_k/q8_0/int8 at batch 1-2, dense rows): x's int16 codes in
 * dynamic shared memory (gvq_dyn_bytes), G groups of R rows per CTA, NH halves of GVR_W warps
 * (NH 2: registers held to 128 so that 2 CTAs of 8 warps share an SM). */
template <int F, int NB, int R, bool WIN, int NH>
__global__ void __launch_bounds__(GVR_W * 32 * NH, NH)
    gemv_rows_int(vt_kp p, const float *__restrict__ x, float *__restrict__ y, int nb, bool xvec,
                  int G) {
    __shared__ gvq_smem<NB, R> sm;
    extern __shared__ __align__(16) unsigned char gv_dyn[];
    vt_simt_dev cx;
    gvq_cta_body<F, NB, R, WIN, NH>(cx, p, x, y, nb, xvec, sm, gv_dyn, blockIdx.x, G);
}

/* Row groups per CTA of the integer kernel: VT_GEMV_G=1..4 (the A/B of bench_kernels), else
 * about 2 CTAs of groups per SM (the x quantization amortized over more rows where there are
 * rows to spare: H100, 2026-11-26, 4096 rows of R 4 were fastest at G 2), a multiple of NH. */
static int gvq_groups(uint64_t rows, int R, int NH) {
    const char *e = getenv("VT_GEMV_G");
    if (e && *e >= '1' && *e <= '0' + GVQ_GMAX && !e[1]) return *e - '0';
    const uint64_t grp = (rows + R - 1) / R, per = (uint64_t)vt_cuda_sm_count(132) * 2 * NH;
    const uint64_t g = (grp + per - 1) / per * NH;
    return g < 1 ? 1 : g > GVQ_GMAX ? GVQ_GMAX : (int)g;
}

/* Launch the integer kernel with R rows in flight per lane; 1 where it does not fit (x's codes
 * past the device's shared memory), else 0 or the launch's error. */
template <int F, int NB, int R, bool WIN, int NH>
static int gvq_launch(const vt_kp &p, const float *x, float *y, int nb, bool xvec,
                      cudaStream_t st) {
    const uint64_t dyn = gvq_dyn_bytes(p.cols, NB);
    size_t cap = 0;
    if (vt_cuda_smem_max(&cap, "vt_gemv") != 0 || dyn + sizeof(gvq_smem<NB, R>) > cap) return 1;
    static std::atomic<unsigned long long> set{0};
    if (dyn + sizeof(gvq_smem<NB, R>) > 48 * 1024) { /* the default limit counts both */
        int rc = vt_cuda_smem_optin(gemv_rows_int<F, NB, R, WIN, NH>, cap - sizeof(gvq_smem<NB, R>),
                                    set, "vt_gemv: shared memory");
        if (rc) return rc;
    }
    const int G = gvq_groups(p.rows, R, NH);
    const uint64_t rpc = (uint64_t)R * G;
    gemv_rows_int<F, NB, R, WIN, NH>
        <<<(unsigned)((p.rows + rpc - 1) / rpc), GVR_W * 32 * NH, dyn, st>>>(p, x, y, nb, xvec, G);
    return vt_cuda_launch_check("vt_gemv kernel launch");
}

/* The async variant and the 2:4 rows: dynamic shared memory (up to GV_ASYNC_SMEM). */
template <int F, int NB>
__global__ void __launch_bounds__(gv_cfg<F, NB, true>::W * 32)
    gemv_staged_async(vt_kp p, const float *__restrict__ x, float *__restrict__ y, int nb,
                      bool xvec) {
    extern __shared__ __align__(16) unsigned char gv_dyn[];
    vt_simt_dev cx;
    gv_cta_body<F, NB, true>(cx, p, x, y, nb, xvec,
                             *reinterpret_cast<gv_smem<F, NB, true> *>(gv_dyn), blockIdx.x);
}

template <int F, int NB>
__global__ void __launch_bounds__(gvs_cfg<F, NB>::W * 32)
    gemv_sparse_staged(vt_kp p, const float *__restrict__ x, float *__restrict__ y, int nb,
                       bool xvec) {
    extern __shared__ __align__(16) unsigned char gv_dyn[];
    vt_simt_dev cx;
    gvs_cta_body<F, NB>(cx, p, x, y, nb, xvec, *reinterpret_cast<gvs_smem<F, NB> *>(gv_dyn),
                        blockIdx.x);
}

/* Launch kern with W warps per CTA over the rows and S's size of dynamic shared memory (opting
 * in once per instance and device beyond 48 KiB). */
template <class S, int W, class K>
static int gv_launch_dyn(K kern, const vt_kp &p, const float *x, float *y, int nb, bool xvec,
                         cudaStream_t st) {
    static std::atomic<unsigned long long> set{0};
    if (sizeof(S) > 48 * 1024) {
        int rc = vt_cuda_smem_optin(kern, sizeof(S), set, "vt_gemv: shared memory");
        if (rc) return rc;
    }
    kern<<<(unsigned)((p.rows + W - 1) / W), W * 32, sizeof(S), st>>>(p, x, y, nb, xvec);
    return vt_cuda_launch_check("vt_gemv kernel launch");
}

struct gv_launch {
    vt_kp p;
    bool sparse, async, rowsk, intk, ralt, win, word, w4, luti;
    const float *x;
    float *y;
    int nb;
    cudaStream_t st;
    template <int F, int NB> int go(const vt_kp &, bool xvec) {
        constexpr int W = gv_cfg<F, NB, false>::W;
        /* if constexpr: only the kernels a format can reach are instantiated */
        if constexpr (F != VT_FMT_NF4_DQ) {
            if (sparse) {
                static_assert(gvs_cfg<F, NB>::W > 0, "2:4 rows: no CTA fits");
                return gv_launch_dyn<gvs_smem<F, NB>, gvs_cfg<F, NB>::W>(gemv_sparse_staged<F, NB>,
                                                                         p, x, y, nb, xvec, st);
            }
        }
        if constexpr (NB <= 2 && gvq_fmt<F>()) {
            if (rowsk && intk && !sparse && gvr_aligned<F>(p)) {
                int rc = 1;
                /* window loads (the default R only): asked for, or q8_0 at batch 1 unless word
                 * loads are asked for (H200 run 6: 0.113 against 0.125 ms at 8192 x 28672) */
                if constexpr (gvw_raw<F>::HAS)
                    if ((win || (F == VT_FMT_Q8_0 && NB == 1 && !word)) && !ralt &&
                        (!gvw_raw<F>::A16 ||
                         ((uintptr_t)p.data % 16 == 0 && p.row_bytes % 16 == 0)))
                        rc = gvq_launch<F, NB, gvq_cfg<NB>::R, true, 1>(p, x, y, nb, xvec, st);
                /* two halves of warps per CTA (NH 2) but for q8_0 at batch 1, whose 8 rows in
                 * flight take 198 registers (128, the cap for 2 CTAs of 8 warps, spills) */
                constexpr int R = gvq_cfg<NB>::R, RA = gvq_cfg<NB>::RALT;
                constexpr int NH = F == VT_FMT_Q8_0 && NB == 1 ? 1 : 2;
                if (rc == 1)
                    rc = ralt ? gvq_launch<F, NB, RA, false, 1>(p, x, y, nb, xvec, st)
                         : w4 ? gvq_launch<F, NB, R, false, 1>(p, x, y, nb, xvec, st)
                              : gvq_launch<F, NB, R, false, NH>(p, x, y, nb, xvec, st);
                if (rc != 1) return rc;
            }
        }
        /* VT_GEMV_LUT=int: nf4 (its word loads, 4-aligned) and mxfp4/nvfp4 (window loads)
         * through the integer kernel in two halves; host-tested, not yet measured on a GPU, so
         * off by default */
        if constexpr (NB <= 2 && (F == VT_FMT_MXFP4 || F == VT_FMT_NVFP4)) {
            if (rowsk && intk && luti && !sparse) {
                int rc = gvq_launch<F, NB, gvq_cfg<NB>::R, true, 2>(p, x, y, nb, xvec, st);
                if (rc != 1) return rc;
            }
        }
        if constexpr (NB <= 2 && F == VT_FMT_NF4) {
            if (rowsk && intk && luti && !sparse && gvr_aligned<F>(p)) {
                int rc = gvq_launch<F, NB, gvq_cfg<NB>::R, false, 2>(p, x, y, nb, xvec, st);
                if (rc != 1) return rc;
            }
        }
        if constexpr (NB <= 2 && gvr_pays<F>()) {
            if (rowsk && !sparse) {
                constexpr int R = gvr_cfg<NB>::R;
                gemv_rows<F, NB>
                    <<<(unsigned)((p.rows + R - 1) / R), GVR_W * 32, 0, st>>>(p, x, y, nb, xvec);
                return vt_cuda_launch_check("vt_gemv kernel launch");
            }
        }
        if constexpr (gv_cfg<F, NB, true>::W >= 4) {
            if (async)
                return gv_launch_dyn<gv_smem<F, NB, true>, gv_cfg<F, NB, true>::W>(
                    gemv_staged_async<F, NB>, p, x, y, nb, xvec, st);
        }
        gemv_staged_sync<F, NB>
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
    /* VT_GEMV_KERNEL=staged (or VT_GEMV_STAGING=sync): the staged kernel at batch 1-2 too */
    const char *k = getenv("VT_GEMV_KERNEL");
    l.rowsk = l.async && !(k && !strcmp(k, "staged"));
    /* VT_GEMV_KERNEL=float: the register kernel's float form for the integer kernel's formats */
    l.intk = !(k && !strcmp(k, "float"));
    /* VT_GEMV_R=alt: the integer kernel's other rows-in-flight count (4 at batch 1, 2 at 2) */
    const char *r = getenv("VT_GEMV_R");
    l.ralt = r && !strcmp(r, "alt");
    /* VT_GEMV_LOAD=window: the integer kernel's q4_0/q4_1/q8_0 (and 16-byte aligned q4_k) units by
     * aligned 16-byte loads (q8_0 at batch 1 has them by default) */
    const char *wl = getenv("VT_GEMV_LOAD");
    l.win = wl && !strcmp(wl, "window");
    /* VT_GEMV_LOAD=word: the formats' own word loads everywhere (q8_0 at batch 1 too) */
    l.word = wl && !strcmp(wl, "word");
    /* VT_GEMV_W=4: the integer kernel's CTAs of 4 warps (one half), as before run 7 */
    const char *wn = getenv("VT_GEMV_W");
    l.w4 = wn && !strcmp(wn, "4");
    /* VT_GEMV_LUT=int: nf4/mxfp4/nvfp4 at batch 1-2 through the integer kernel */
    const char *lt = getenv("VT_GEMV_LUT");
    l.luti = lt && !strcmp(lt, "int");
    l.x = x;
    l.y = y;
    l.nb = batch;
    l.st = (cudaStream_t)stream;
    if (d->rows > 0x7fffffffull) /* CTAs of >= 1 row */
        return vt_fail(-22, "vt_gemv: %llu rows exceed one launch", (unsigned long long)d->rows);
    return vt_fmt_dispatch(d->fmt, l);
}
