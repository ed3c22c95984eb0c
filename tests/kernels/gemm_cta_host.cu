/* tests/kernels/gemm_cta_host.cu — runs the pipelined MMA GEMM's whole CTAs (kernels/cuda
 * gemm_cta.cuh, the body gemm.cu's gemm_pipe launches) on the host for test_mma_tile_host.c, on
 * the emulated CTA of simt_host.cuh: 256 coroutine threads, __syncthreads, ldmatrix, mma.sync
 * and cp.async per the PTX ISA, the copies landing at issue in odd CTAs and only at the retiring
 * wait_group in even ones, shared memory poisoned (NaN) and guarded. No GPU. */
#include <math.h>

#include "gemm_cta.cuh"
#include "simt_host.cuh"

extern "C" int kt_host_gemm_pipe(const vt_kdesc *d, const uint16_t *X, void *Y, int yh, uint64_t M,
                                 char *why, size_t cap);

namespace {

template <int F, bool SP, bool YH> struct pipe_cta {
    const vt_kp *p;
    const __half *X;
    void *Y;
    uint64_t M, bm, bn;
    bool xa;
    gp_smem<F, SP> *sm;
    cta *c;
    static void run(void *ctx, int tid) {
        auto *s = static_cast<pipe_cta *>(ctx);
        host_cx cx{s->c, tid, {}, {}};
        gp_cta_body<F, SP, YH>(cx, *s->p, s->X, s->Y, s->M, s->xa, *s->sm, s->bm, s->bn);
        if (!cx.cp_idle()) s->c->fail("cp.async copies still in flight when the thread ended");
    }
};

struct host_gemm_pipe {
    const vt_kdesc *d;
    const __half *X;
    void *Y;
    bool yh;
    uint64_t M;
    char *why;
    size_t cap;

    template <int F, bool SP, bool YH> int grid(const vt_kp &p) {
        using SM = gp_smem<F, SP>;
        smem_buf sb(sizeof(SM));
        cta c;
        const bool xa = gp_xa(X, p.cols); /* as gemm.cu */
        uint64_t k = 0;
        for (uint64_t bm = 0; bm < (M + GP_BM - 1) / GP_BM; bm++)
            for (uint64_t bn = 0; bn < (p.rows + GP_BN - 1) / GP_BN; bn++, k++) {
                memset(sb.p, 0xFF, sb.n); /* NaN: what the body reads before writing shows */
                c.smem_lo = sb.p, c.smem_hi = sb.p + sb.n;
                c.cp_late = (k & 1) == 0;
                c.err[0] = 0;
                pipe_cta<F, SP, YH> h{&p, X, Y, M, bm, bn, xa, reinterpret_cast<SM *>(sb.p), &c};
                if (run_cta(c, GP_THREADS, pipe_cta<F, SP, YH>::run, &h, 64 * 1024)) {
                    snprintf(why, cap, "CTA (%llu, %llu) of the pipelined GEMM (%d stages): %s",
                             (unsigned long long)bm, (unsigned long long)bn, gp_geom<F, SP>::S,
                             c.err);
                    return 1;
                }
                if (!sb.guard_ok()) {
                    snprintf(why, cap, "CTA (%llu, %llu) wrote past its shared memory",
                             (unsigned long long)bm, (unsigned long long)bn);
                    return 1;
                }
            }
        return 0;
    }
    template <int F, bool SP> int go(const vt_kp &p) {
        return yh ? grid<F, SP, true>(p) : grid<F, SP, false>(p);
    }
    template <int F> int run() {
        const vt_kp p = vt_kp_from(d);
        if constexpr (F == VT_FMT_NF4_DQ) {
            if (d->sparse) return 77;
            return go<F, false>(p);
        } else {
            return d->sparse ? go<F, true>(p) : go<F, false>(p);
        }
    }
};

} // namespace

/* Y[M][rows] (f32, or f16 bits when yh) = X[M][cols] (f16 bits) W^T by gemm_pipe's CTAs on the
 * host. 0, 77 (no such kernel), 1 with why filled. */
extern "C" int kt_host_gemm_pipe(const vt_kdesc *d, const uint16_t *X, void *Y, int yh, uint64_t M,
                                 char *why, size_t cap) {
    host_gemm_pipe h{d, reinterpret_cast<const __half *>(X), Y, yh != 0, M, why, cap};
    return vt_fmt_dispatch(d->fmt, h);
}
