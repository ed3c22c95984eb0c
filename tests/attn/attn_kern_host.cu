/* tests/attn/attn_kern_host.cu — runs the attention kernels' bodies (kernels/cuda
 * attn_prefill.cuh, attn_decode.cuh) on the host for test_attn_kern_host.c, every CTA on the
 * emulated CTA of tests/kernels/simt_host.cuh (threads as coroutines; __syncthreads, warp
 * collectives, ldmatrix, mma.sync and cp.async from the PTX ISA's definitions), the prefill's
 * cp.async copies landing early in half of the CTAs and late in the other half. No GPU needed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ucontext.h>

#include <type_traits>
#include <vector>

#include "attn_decode.cuh"
#include "attn_prefill.cuh"
#include "attn_quant.cuh"

extern "C" int akh_prefill(const vt_attn_dev_args *a, char *why, size_t cap);
extern "C" int akh_decode(const vt_attn_dev_args *a, int num_splits, int sms, int *splits_out,
                          char *why, size_t cap);
extern "C" size_t akh_ws_bytes(const vt_attn_dev_args *a, int num_splits, int sms);
extern "C" int akh_plan(const vt_attn_dev_args *a, int num_splits, int sms, long long *splits,
                        long long *chunk, size_t *need);

#include "../kernels/simt_host.cuh"

namespace {

/* ---- prefill ---- */

template <int D, typename T, int FMT, int RM> struct prefill_cta {
    using S = vt_prefill::smem<D, T, FMT, RM>;
    const vt_attn_dev_args *a;
    S *sm;
    long long bx;
    int h;
    cta *c;
    static void run(void *ctx, int tid) {
        auto *s = static_cast<prefill_cta *>(ctx);
        host_cx cx{s->c, tid, {}, {}};
        vt_prefill::body<D, T, FMT, RM>(cx, *s->a, *s->sm, s->bx, s->h);
        if (!cx.cp_idle()) s->c->fail("cp.async copies still in flight when the thread ended");
    }
};

struct prefill_go {
    const vt_attn_dev_args *a;
    char *why;
    size_t cap;
    template <int D, typename T, int FMT, int RM> int grid_rm() {
        using S = typename prefill_cta<D, T, FMT, RM>::S;
        constexpr int BM = vt_prefill::bm<RM>();
        long long nbx = (a->nq + BM - 1) / BM;
        for (int h = 0; h < a->H; h++)
            for (long long bx = 0; bx < nbx; bx++) {
                smem_buf sb(sizeof(S));
                cta c;
                c.smem_lo = sb.p, c.smem_hi = sb.p + sizeof(S);
                c.cp_late = ((bx + h) & 1) != 0; /* both timings over the grid */
                prefill_cta<D, T, FMT, RM> pc{a, reinterpret_cast<S *>(sb.p), bx, h, &c};
                if (run_cta(c, vt_prefill::NTHREADS, prefill_cta<D, T, FMT, RM>::run, &pc)) {
                    snprintf(why, cap, "prefill CTA (%lld, %d), %d row blocks per warp: %s", bx, h,
                             RM, c.err);
                    return 1;
                }
                if (!sb.guard_ok()) {
                    snprintf(why, cap, "prefill CTA (%lld, %d) wrote past its shared memory", bx,
                             h);
                    return 1;
                }
            }
        return 0;
    }
    /* the instances attn_prefill.cu's launcher picks from: RM 2, and at D 128 RM 1 (devices
     * with less shared memory) into a second output, which must match the first bit for bit
     * (the same arithmetic per row in the same order) */
    template <int D, typename T, int FMT> int grid() {
        int rc = grid_rm<D, T, FMT, 2>();
        if (rc || D == 64) return rc;
        const size_t on = (size_t)a->H * a->nq * D * (a->o_dtype == VT_DTYPE_F32 ? 4 : 2);
        const size_t ln = a->lse ? (size_t)a->H * a->nq * 4 : 0;
        std::vector<uint8_t> o2(on), l2(ln);
        memcpy(o2.data(), a->o, on);
        if (ln) memcpy(l2.data(), a->lse, ln);
        if ((rc = grid_rm<D, T, FMT, 1>())) return rc;
        if (memcmp(o2.data(), a->o, on) || (ln && memcmp(l2.data(), a->lse, ln))) {
            snprintf(why, cap, "prefill D 128: one and two row blocks per warp differ");
            return 1;
        }
        return 0;
    }
    /* the kernel instance attn_prefill.cu's launcher picks */
    template <int FMT, int BE> int go(int) {
        if constexpr (FMT == VT_FMT_BF16 || FMT == VT_FMT_MXFP4)
            if (vt_prefill::mma_bf16(a->q_dtype, FMT))
                return a->D == 64 ? grid<64, __nv_bfloat16, FMT>()
                                  : grid<128, __nv_bfloat16, FMT>();
        return a->D == 64 ? grid<64, __half, FMT>() : grid<128, __half, FMT>();
    }
};

/* ---- decode ---- */

template <int D, int RB, int FMT> struct decode_cta {
    const vt_attn_dev_args *a;
    vt_decode::smem<D, RB, FMT> *sm;
    long long chunk;
    float *wo, *wml;
    int split, hk;
    long long z;
    cta *c;
    static void run(void *ctx, int tid) {
        auto *s = static_cast<decode_cta *>(ctx);
        host_cx cx{s->c, tid, {}, {}};
        vt_decode::body<D, RB, FMT>(cx, *s->a, *s->sm, s->chunk, s->wo, s->wml, s->split, s->hk,
                                    s->z);
        if (!cx.cp_idle()) s->c->fail("cp.async copies still in flight when the thread ended");
    }
};

struct decode_go {
    const vt_attn_dev_args *a;
    const vt_decode::plan *pl;
    float *wo, *wml;
    char *why;
    size_t cap;
    template <int D, int RB, int FMT> int grid() {
        using S = vt_decode::smem<D, RB, FMT>;
        for (long long z = 0; z < pl->zc; z++)
            for (int hk = 0; hk < a->Hkv; hk++)
                for (int sp = 0; sp < (int)pl->splits; sp++) {
                    smem_buf sb(sizeof(S));
                    cta c;
                    c.smem_lo = sb.p, c.smem_hi = sb.p + sizeof(S);
                    c.cp_late = ((sp + hk + z) & 1) != 0; /* both timings over the grid */
                    decode_cta<D, RB, FMT> dc{
                        a, reinterpret_cast<S *>(sb.p), pl->chunk, wo, wml, sp, hk, z, &c};
                    if (run_cta(c, vt_decode::NTH, decode_cta<D, RB, FMT>::run, &dc)) {
                        snprintf(why, cap, "decode CTA (%d, %d, %lld): %s", sp, hk, z, c.err);
                        return 1;
                    }
                    if (!sb.guard_ok()) {
                        snprintf(why, cap, "decode CTA (%d, %d, %lld) wrote past its shared memory",
                                 sp, hk, z);
                        return 1;
                    }
                }
        return 0;
    }
    template <int D, int FMT> int rb() {
        switch (pl->rb) {
        case 1:
            return grid<D, 1, FMT>();
        case 2:
            return grid<D, 2, FMT>();
        case 4:
            return grid<D, 4, FMT>();
        default:
            return grid<D, 8, FMT>();
        }
    }
    template <int FMT, int BE> int go(int) { return a->D == 64 ? rb<64, FMT>() : rb<128, FMT>(); }
};

} // namespace

extern "C" int akh_prefill(const vt_attn_dev_args *a, char *why, size_t cap) {
    int rc = vt_attn_check_align(a, "attn prefill");
    if (rc) return rc;
    prefill_go pg{a, why, cap};
    return vt_attn_fmt_dispatch(a->fmt, pg);
}

extern "C" int akh_decode(const vt_attn_dev_args *a, int num_splits, int sms, int *splits_out,
                          char *why, size_t cap) {
    int rc = vt_attn_check_align(a, "attn decode");
    if (rc) return rc;
    vt_decode::plan pl;
    float *wo, *wml;
    rc = vt_decode::prepare(*a, num_splits, sms, pl, wo, wml);
    if (rc) return rc;
    *splits_out = (int)pl.splits;
    decode_go dg{a, &pl, wo, wml, why, cap};
    rc = vt_attn_fmt_dispatch(a->fmt, dg);
    if (rc || pl.splits <= 1) return rc;
    for (size_t row = 0; row < (size_t)a->H * a->nq; row++)
        for (int d = 0; d < a->D; d++) vt_decode::combine_one(*a, (int)pl.splits, wo, wml, row, d);
    return 0;
}

/* vt_attn_cuda_decode_ws_bytes with a given SM count */
extern "C" size_t akh_ws_bytes(const vt_attn_dev_args *a, int num_splits, int sms) {
    return vt_decode::ws_bytes(*a, vt_decode::plan_splits(*a, num_splits, sms).bound);
}

/* The decode's split plan for a workspace of any size: splits, keys per split, the workspace it
 * needs (vt_decode::prepare's check). */
extern "C" int akh_plan(const vt_attn_dev_args *a, int num_splits, int sms, long long *splits,
                        long long *chunk, size_t *need) {
    vt_decode::plan pl = vt_decode::plan_splits(*a, num_splits, sms);
    *splits = pl.splits, *chunk = pl.chunk;
    *need = vt_decode::ws_bytes(*a, pl.splits);
    return 0;
}
