/* tests/kernels/gemv_cta_host.cu — runs the staged GEMV kernel's whole CTAs (kernels/cuda
 * gemv_cta.cuh, the body gemv.cu launches) on the host for test_gemv_lane_host.c, on the
 * emulated CTA of simt_host.cuh: every thread a coroutine, __syncthreads/__syncwarp/shuffles and
 * cp.async per the PTX ISA, the cp.async copies landing at issue in odd CTAs and only at the
 * retiring wait_group in even ones, shared memory poisoned and guarded. No GPU. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <type_traits>

/* The kernel bodies' global loads (VT_LDG, gemv_lane.cuh) checked on the host: each must lie
 * inside a buffer the grid was given (the weight's p.bytes at p.data, which kparams.cuh says no
 * load goes past; x's nb vectors; the channel scales). The values alone do not show a load
 * outside: the window loads (gemv_rows.cuh gvw_win) read whole 16-byte chunks and pick the unit's
 * words, so a chunk reaching past the weight's ends changes no sum. The first load outside is
 * kept for the grid runner's report and reads as 0. */
namespace {
struct ldg_span {
    const char *lo, *hi;
};
ldg_span ldg_ok[3];
const void *ldg_bad;
size_t ldg_bad_n;
template <class T> T ldg_checked(const T *p) {
    const char *a = reinterpret_cast<const char *>(p);
    for (const ldg_span &s : ldg_ok)
        if (a >= s.lo && a + sizeof(T) <= s.hi) return *p;
    if (!ldg_bad) ldg_bad = p, ldg_bad_n = sizeof(T);
    return T();
}
} // namespace
#define VT_LDG_HOST(p) ldg_checked(p)

#include "gemv_cta.cuh"
#include "gemv_rows.cuh"
#include "simt_host.cuh"

extern "C" int kt_host_gemv_cta(const vt_kdesc *d, const float *x, float *y, int batch, int async,
                                char *why, size_t cap);
extern "C" void kt_host_nf4_int_levels(int32_t L[16]);

namespace {

/* The kernels' CTA bodies, as one interface for the grid runner below. */
template <int F, int NB, bool ASYNC> struct dense_body {
    using S = gv_smem<F, NB, ASYNC>;
    static constexpr int W = gv_cfg<F, NB, ASYNC>::W, RPC = W; /* warps, rows per CTA */
    static constexpr const char *name = ASYNC ? "async" : "sync";
    static size_t bytes(const vt_kp &) { return sizeof(S); }
    static void call(host_cx &cx, const vt_kp &p, const float *x, float *y, int nb, bool xvec,
                     S &sm, uint64_t k) {
        gv_cta_body<F, NB, ASYNC>(cx, p, x, y, nb, xvec, sm, k);
    }
};
template <int F, int NB> struct sparse_body {
    using S = gvs_smem<F, NB>;
    static constexpr int W = gvs_cfg<F, NB>::W, RPC = W;
    static constexpr const char *name = "2:4";
    static size_t bytes(const vt_kp &) { return sizeof(S); }
    static void call(host_cx &cx, const vt_kp &p, const float *x, float *y, int nb, bool xvec,
                     S &sm, uint64_t k) {
        gvs_cta_body<F, NB>(cx, p, x, y, nb, xvec, sm, k);
    }
};

template <int F, int NB> struct rows_body {
    using S = gvr_smem<NB>;
    static constexpr int W = GVR_W, RPC = gvr_cfg<NB>::R;
    static constexpr const char *name = "rows";
    static size_t bytes(const vt_kp &) { return sizeof(S); }
    static void call(host_cx &cx, const vt_kp &p, const float *x, float *y, int nb, bool xvec,
                     S &sm, uint64_t k) {
        gvr_cta_body<F, NB>(cx, p, x, y, nb, xvec, sm, k);
    }
};

/* the integer kernel with G groups of rows per CTA (G 1: its default R, else its other R; WIN:
 * window loads, default R): its static shared memory, then the x codes, which are poisoned with
 * 0x7F bytes (codes 32639, scales 3.4e38: a code or scale read before written shows) */
template <int F, int NB, int G, bool WIN, int NH = 1> struct int_body {
    static constexpr int R = G == 1 || WIN || NH == 2 ? gvq_cfg<NB>::R : gvq_cfg<NB>::RALT;
    using S = gvq_smem<NB, R>;
    static constexpr int W = GVR_W * NH, RPC = R * G, DPOISON = 0x7F;
    static constexpr const char *name = WIN && NH == 2 ? (G == 4 ? "int fp4 G4" : "int fp4 G3")
                                        : WIN          ? "int window G2"
                                        : NH == 2      ? "int 2 halves G3"
                                        : G == 1       ? "int G1"
                                                       : "int G3 R alt";
    static size_t bytes(const vt_kp &p) { return sizeof(S) + gvq_dyn_bytes(p.cols, NB); }
    static void call(host_cx &cx, const vt_kp &p, const float *x, float *y, int nb, bool xvec,
                     S &sm, uint64_t k) {
        gvq_cta_body<F, NB, R, WIN, NH>(cx, p, x, y, nb, xvec, sm,
                                        reinterpret_cast<unsigned char *>(&sm + 1), k, G);
    }
};
/* the byte the dynamic part of a body's shared memory is poisoned with (-1: as the rest) */
template <class B, class = void> struct dyn_poison { static constexpr int v = -1; };
template <class B> struct dyn_poison<B, std::void_t<decltype(B::DPOISON)>> {
    static constexpr int v = B::DPOISON;
};

template <class B> struct host_cta {
    const vt_kp *p;
    const float *x;
    float *y;
    int nb;
    bool xvec;
    typename B::S *sm;
    uint64_t cta_ix;
    cta *c;
    static void run(void *ctx, int tid) {
        auto *s = static_cast<host_cta *>(ctx);
        host_cx cx{s->c, tid, {}, {}};
        B::call(cx, *s->p, s->x, s->y, s->nb, s->xvec, *s->sm, s->cta_ix);
        if (!cx.cp_idle()) s->c->fail("cp.async copies still in flight when the thread ended");
    }
};

struct host_gemv_cta {
    const vt_kdesc *d;
    const float *x;
    float *y;
    int nb, async;
    char *why;
    size_t cap;

    /* every CTA of body B over the rows; odd CTAs land cp.async copies at issue, even ones at
     * the retiring wait_group */
    template <class B> int grid(const vt_kp &p, bool xvec) {
        smem_buf sb(B::bytes(p));
        cta c;
        const char *w = reinterpret_cast<const char *>(p.data);
        ldg_ok[0] = {w, w + p.bytes};
        ldg_ok[1] = {reinterpret_cast<const char *>(x),
                     reinterpret_cast<const char *>(x + (uint64_t)nb * p.cols)};
        ldg_ok[2] = {reinterpret_cast<const char *>(p.aux),
                     reinterpret_cast<const char *>(p.aux ? p.aux + p.cols : nullptr)};
        ldg_bad = nullptr;
        for (uint64_t k = 0; k < (p.rows + B::RPC - 1) / B::RPC; k++) {
            memset(sb.p, 0xFF, sb.n); /* NaN: what the body reads before writing shows */
            if constexpr (dyn_poison<B>::v >= 0)
                memset(sb.p + sizeof(typename B::S), dyn_poison<B>::v,
                       sb.n - sizeof(typename B::S));
            c.smem_lo = sb.p, c.smem_hi = sb.p + sb.n;
            c.cp_late = (k & 1) == 0;
            c.err[0] = 0;
            host_cta<B> h{&p, x, y, nb, xvec, reinterpret_cast<typename B::S *>(sb.p), k, &c};
            if (run_cta(c, B::W * 32, host_cta<B>::run, &h, 64 * 1024)) {
                snprintf(why, cap, "CTA %llu (%s, %d warps): %s", (unsigned long long)k, B::name,
                         B::W, c.err);
                return 1;
            }
            if (!sb.guard_ok()) {
                snprintf(why, cap, "CTA %llu (%s) wrote past its shared memory",
                         (unsigned long long)k, B::name);
                return 1;
            }
            if (ldg_bad) {
                const char *a = reinterpret_cast<const char *>(ldg_bad);
                snprintf(why, cap,
                         "CTA %llu (%s): a %zu-byte global load outside its buffers, at byte %lld "
                         "of the weight's %llu (address %% 16 = %u)",
                         (unsigned long long)k, B::name, ldg_bad_n, (long long)(a - w),
                         (unsigned long long)p.bytes, (unsigned)((uintptr_t)a & 15));
                return 1;
            }
        }
        return 0;
    }
    /* grid<B> on a copy of the weight's bytes at off bytes past a 16-byte aligned address (the
     * test places every other weight at an odd one) */
    template <class B> int grid_at(const vt_kp &p, size_t off, bool xvec) {
        unsigned char *buf = (unsigned char *)aligned_alloc(16, (p.bytes + off + 47) / 16 * 16);
        if (!buf) return 1;
        memcpy(buf + off, p.data, p.bytes);
        vt_kp q = p;
        q.data = buf + off;
        const int rc = grid<B>(q, xvec);
        free(buf);
        return rc;
    }
    /* the kernel gemv.cu launches: variant 2 the register kernel (batch 1-2, dense rows); else
     * async where two stages fit with >= 4 warps; 2:4 rows the staged sparse kernel where it
     * fits (batch <= 4) */
    template <int F, int NB> int go(const vt_kp &p, bool xvec) {
        if (async == 2) {
            if constexpr (NB <= 2)
                if (!d->sparse) return grid<rows_body<F, NB>>(p, xvec);
            return 77;
        }
        if (async == 7) { /* nf4/mxfp4/nvfp4 in the integer kernel (VT_GEMV_LUT=int) */
            if constexpr (NB <= 2 && F == VT_FMT_NF4) { /* word loads: 4-aligned, as gemv.cu */
                if (d->sparse || p.row_bytes % 4) return 77;
                return grid_at<int_body<F, NB, 3, false, 2>>(p, 0, xvec);
            }
            /* mxfp4/nvfp4 (window loads): any address */
            if constexpr (NB <= 2 && (F == VT_FMT_MXFP4 || F == VT_FMT_NVFP4)) {
                if (d->sparse) return 77;
                /* as placed (every other weight at an odd address), and 16-byte aligned */
                const int rc = grid<int_body<F, NB, 3, true, 2>>(p, xvec);
                return rc ? rc : grid_at<int_body<F, NB, 4, true, 2>>(p, 0, xvec);
            }
            return 77;
        }
        if (async >= 3 && async <= 6) { /* the integer kernel: aligned rows only, as gemv.cu */
            if constexpr (NB <= 2 && gvq_fmt<F>()) {
                constexpr int A = gvr_raw<F>::A;
                if (d->sparse || p.row_bytes % A) return 77;
                if (async == 5 && !gvw_raw<F>::HAS) return 77;
                /* the weights copied to an aligned address, for the window loads A bytes past
                 * 16-byte alignment: the first and last units' chunks then reach outside the
                 * bytes (their 2-byte path) */
                size_t off = async == 5 ? A : 0;
                if constexpr (gvw_raw<F>::HAS)
                    if (gvw_raw<F>::A16) { /* gemv.cu: 16-byte aligned weights only */
                        if (async == 5 && p.row_bytes % 16) return 77;
                        off = 0;
                    }
                if (async == 3) return grid_at<int_body<F, NB, 1, false>>(p, off, xvec);
                if (async == 4) return grid_at<int_body<F, NB, 3, false>>(p, off, xvec);
                if (async == 6) /* two halves, G 3: half 0 takes groups 0 and 2, half 1 one */
                    return grid_at<int_body<F, NB, 3, false, 2>>(p, off, xvec);
                if constexpr (gvw_raw<F>::HAS)
                    return grid_at<int_body<F, NB, 2, true>>(p, off, xvec);
                return 77;
            }
            return 77;
        }
        if (d->sparse) {
            if constexpr (F != VT_FMT_NF4_DQ && gvs_cfg<F, NB>::W > 0)
                return async ? 77 : grid<sparse_body<F, NB>>(p, xvec);
            return 77;
        }
        if constexpr (gv_cfg<F, NB, true>::W >= 4)
            if (async) return grid<dense_body<F, NB, true>>(p, xvec);
        if (async) return 77;
        return grid<dense_body<F, NB, false>>(p, xvec);
    }
    template <int F> int run() {
        return gv_batch_dispatch<F>(*this, nb, vt_kp_from(d), x); /* as gemv.cu */
    }
};

} // namespace

/* y[batch][rows] = W x[batch][cols] by the GEMV's CTAs on the host: the staged kernel's sync
 * (async 0) or async (1) variant, the register kernel (2), or the integer kernel with 1 group of
 * its default rows (3), 3 of its other count (4), 2 with window loads (5) or 3 in two halves of
 * warps (6) per CTA, or for nf4/mxfp4/nvfp4 (7: VT_GEMV_LUT=int) 3 groups in two halves (nf4 on
 * an aligned copy; mxfp4/nvfp4 as placed, then 4 groups on a 16-byte aligned copy). 0, 77 (no such
 * kernel for this weight and batch), 1 with why filled. */
extern "C" int kt_host_gemv_cta(const vt_kdesc *d, const float *x, float *y, int batch, int async,
                                char *why, size_t cap) {
    host_gemv_cta h{d, x, y, batch, async, why, cap};
    return vt_fmt_dispatch(d->fmt, h);
}

/* L[c], the integer form of NF4 code c's level in the integer kernel (VT_GEMV_LUT=int), as its
 * dot (gvr_raw<VT_FMT_NF4>::idot: nibble swap, both table look-ups, dp2a) takes it: a unit of
 * code c in every column at absmax 1, dotted with x codes of 1 at scale 1, is 32 L[c] / 16383. */
extern "C" void kt_host_nf4_int_levels(int32_t L[16]) {
    for (int c = 0; c < 16; c++) {
        gvr_raw<VT_FMT_NF4> r;
        r.d = 0x3f800000u; /* 1.0f */
        for (int k = 0; k < 4; k++) r.q[k] = 0x11111111u * (uint32_t)c;
        uint32_t xw[1][16];
        for (int i = 0; i < 16; i++) xw[0][i] = 0x00010001u;
        const float sx[1] = {1.0f};
        const int xs[1] = {32};
        float acc[1] = {0.0f};
        r.idot<1>(xw, sx, xs, acc);
        L[c] = (int32_t)lrint((double)acc[0] * 16383.0 / 32.0);
    }
}
