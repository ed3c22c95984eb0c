/* tests/kernels/dequant_dev_host.cu — runs the CUDA kernels' format decoders (kernels/cuda
 * dequant_dev.cuh and kparams.cuh, __host__ __device__) on the host, for
 * test_dequant_dev_host.c: the direct 64-column decoder of every layout, and the staged path
 * (vt_stage into an aligned buffer of the kernels' shared-memory size, then one unit per
 * "thread") with the dequantize and GEMV kernels' tile sizes, and the dequantize kernel's whole
 * CTA with its output transpose through shared memory (dq_tile.cuh) to f32 and f16. No GPU
 * needed. */
#include <stdio.h>
#include <stdlib.h>

#include "dq_tile.cuh"
#include "kparams.cuh"
#include "simt_host.cuh"

extern "C" int kt_host_decode(const vt_kdesc *d, int mode, float *out, char *why, size_t cap);
extern "C" void kt_host_decode_counts(unsigned long long *multi, unsigned long long *multi_sparse,
                                      unsigned long long *plain_vec);

namespace {

/* grids where a CTA covered several tiles; plain weights converted in 16-byte steps */
unsigned long long n_multi, n_multi_sparse, n_grid_runs, n_plain_vec;

/* The kernels' staging geometry (dequant.cu DQ_THREADS, gemv.cu gv_geom). */
template <int F> struct geom {
    static constexpr int BE = vt_fmt_traits<F>::BE, BB = vt_fmt_traits<F>::BB;
    static constexpr int DQ_UNITS = 256, DQ_SMEM = 256 * 32 / BE * BB + 32;
    static constexpr int TB = 1024 / BE * BB, G = TB >= 2048 ? 1 : 2048 / TB;
    static constexpr int GV_UNITS = 32 * G, GV_SMEM = G * TB + 32;
};

struct host_dec {
    const vt_kdesc *d;
    int mode; /* 0 direct (vt_decode64), 1 staged with dequant's tile, 2 with gemv's tile,
                 3 / 4 dequant's CTA with the output transpose to f32 / f16 (row mode),
                 5 / 6 the same in flat mode (77 where the shape has none) */
    float *out;
    char *why;
    size_t cap;
    float lut[32];

    template <int F> int direct(const vt_kp &p, const vt_dq_ctx &c) {
        for (uint64_t r = 0; r < p.rows; r++)
            for (uint64_t h = 0; h < vt_sparse_units(p.cols); h++) {
                float v[64];
                if (d->sparse)
                    vt_decode64<F, true>(p, c, r, h, v);
                else
                    vt_decode64<F, false>(p, c, r, h, v);
                for (uint64_t i = 0; i < 64 && 64 * h + i < p.cols; i++)
                    out[r * p.cols + 64 * h + i] = v[i];
            }
        return 0;
    }

    template <int F> int staged(const vt_kp &p, const vt_dq_ctx &c, int tile, int smem, int nthr) {
        uint8_t *sm = (uint8_t *)aligned_alloc(16, (size_t)smem + 16);
        if (!sm) return -12;
        const uint64_t units = vt_units(p.cols);
        int rc = 0;
        for (uint64_t r = 0; r < p.rows && !rc; r++)
            for (uint64_t u0 = 0; u0 < units && !rc; u0 += tile) {
                uint64_t b0 = vt_dq_unit_off<F>(u0);
                const uint64_t b1 = vt_units_end<F>(u0 + tile, units, p.row_bytes);
                uintptr_t a = (uintptr_t)(p.data + r * p.row_bytes + b0);
                uint64_t used = ((a & 15) + (b1 - b0) + 15) / 16 * 16;
                if (used > (uint64_t)smem) {
                    snprintf(why, cap, "row %llu unit %llu: staging %llu bytes > smem %d",
                             (unsigned long long)r, (unsigned long long)u0,
                             (unsigned long long)used, smem);
                    rc = 1;
                    break;
                }
                memset(sm, 0xA5, (size_t)smem + 16); /* bytes never staged are garbage */
                uint32_t sh = 0;
                for (int t = 0; t < nthr; t++)
                    sh = vt_stage(sm, p.data, p.bytes, r * p.row_bytes + b0, (uint32_t)(b1 - b0), t,
                                  nthr);
                for (uint64_t u = u0; u < u0 + tile && u < units; u++) {
                    float v[32];
                    vt_dq_unit<F>(sm + sh + (vt_dq_unit_off<F>(u) - b0), u, 32 * u, c, v);
                    for (uint64_t i = 0; i < 32 && 32 * u + i < p.cols; i++)
                        out[r * p.cols + 32 * u + i] = v[i];
                }
            }
        free(sm);
        return rc;
    }

    /* dequant_staged's grid (dq_tile.cuh vt_dqk_body) on the emulated CTA of simt_host.cuh:
     * `grid` CTAs, each over tiles k0, k0 + grid, ... (row mode, or flat mode across rows),
     * cp.async copies landing at issue in odd CTAs and at the retiring wait_group in even ones,
     * shared memory poisoned and guarded; the output through the tile area when cols % 8 == 0,
     * else each thread's stores. dequant_sparse's tile for 2:4 layouts, dequant_plain's body
     * (16-byte steps when contiguous and aligned, else value by value) for f32/f16/bf16. Output
     * type T; f16 results are widened back to f32 in out. Output poisoned: a value never
     * written shows. */
    template <int F, int T> struct cta_ctx {
        const vt_kp *p;
        bool flat, vec;
        uint64_t tpr, ntiles, k0, grid;
        void *out;
        vt_dqk_smem<F, T> *sm;
        cta *c;
        static void run(void *ctx, int tid) {
            auto *s = static_cast<cta_ctx *>(ctx);
            host_cx cx{s->c, tid, {}, {}};
            vt_dqk_body<F, T>(cx, *s->p, s->flat, s->tpr, s->ntiles, s->k0, s->grid, s->out, s->vec,
                              *s->sm);
            if (!cx.cp_idle()) s->c->fail("cp.async copies still in flight when the thread ended");
        }
    };

    template <int F, int T> struct sparse_ctx {
        const vt_kp *p;
        bool vec;
        uint64_t tpr, ntiles, k0, grid;
        void *out;
        vt_dqs_smem<F, T> *sm;
        cta *c;
        static void run(void *ctx, int tid) {
            auto *s = static_cast<sparse_ctx *>(ctx);
            host_cx cx{s->c, tid, {}, {}};
            vt_dqs_body<F, T>(cx, *s->p, s->tpr, s->ntiles, s->k0, s->grid, s->out, s->vec, *s->sm);
            if (!cx.cp_idle()) s->c->fail("cp.async copies still in flight when the thread ended");
        }
    };

    /* dequant_sparse's grids of 1 and 3 CTAs (fewer when there are fewer tiles) */
    template <int F, int T> int grids_sparse(const vt_kp &p, void *o) {
        using S = vt_dqs_smem<F, T>;
        const uint64_t tpr = (vt_sparse_units(p.cols) + VT_DQS_UNITS - 1) / VT_DQS_UNITS,
                       ntiles = p.rows * tpr;
        for (uint64_t k = 0; k < ntiles; k++) { /* staged bytes + word-load overrun fit */
            uint64_t r, h0, v0, v1, i0, i1;
            vt_dqs_span<F>(p, tpr, k, &r, &h0, &v0, &v1, &i0, &i1);
            uint64_t nv = ((uintptr_t)(p.data + v0) & 15) + (v1 - v0) + 4,
                     ni = ((uintptr_t)(p.data + i0) & 15) + (i1 - i0) + 4;
            if (nv > (uint64_t)S::IOFF || ni > (uint64_t)(S::STAGE - S::IOFF)) {
                snprintf(why, cap, "2:4 tile %llu: staging %llu + %llu bytes > %d + %d",
                         (unsigned long long)k, (unsigned long long)nv, (unsigned long long)ni,
                         S::IOFF, S::STAGE - S::IOFF);
                return 1;
            }
        }
        for (uint64_t grid = 1; grid <= 3; grid += 2) {
            const uint64_t gn = grid < ntiles ? grid : ntiles;
            smem_buf sb(sizeof(S));
            cta cx;
            for (uint64_t k0 = 0; k0 < gn; k0++) {
                memset(sb.p, 0xFF, sb.n);
                cx.smem_lo = sb.p, cx.smem_hi = sb.p + sb.n;
                cx.cp_late = (k0 & 1) == 0;
                cx.err[0] = 0;
                sparse_ctx<F, T> h{
                    &p, p.cols % 8 == 0, tpr, ntiles, k0, gn, o, reinterpret_cast<S *>(sb.p), &cx};
                if (run_cta(cx, 256, sparse_ctx<F, T>::run, &h, 64 * 1024)) {
                    snprintf(why, cap, "2:4 grid %llu CTA %llu: %s", (unsigned long long)gn,
                             (unsigned long long)k0, cx.err);
                    return 1;
                }
                if (!sb.guard_ok()) {
                    snprintf(why, cap, "2:4 grid %llu CTA %llu wrote past its shared memory",
                             (unsigned long long)gn, (unsigned long long)k0);
                    return 1;
                }
            }
            if (gn == grid && grid > 1 && ntiles > grid) n_multi_sparse++;
        }
        return 0;
    }

    template <int F, int T> int tiled(const vt_kp &p, const vt_dq_ctx &c, bool flat) {
        constexpr bool PLAIN = F == VT_FMT_F32 || F == VT_FMT_F16 || F == VT_FMT_BF16;
        if (flat && (d->sparse || PLAIN || !vt_dqt_flat<F>(p))) return 77;
        constexpr int ES = vt_dqt<T>::ES, C = vt_dqt<T>::C;
        uint4 *so = (uint4 *)aligned_alloc(16, 256 * C * 16);
        size_t ob = ((size_t)(p.rows * p.cols * ES) + 15) / 16 * 16;
        uint8_t *o = (uint8_t *)aligned_alloc(16, ob ? ob : 16);
        int rc = so && o ? 0 : -12;
        if (!rc) memset(o, 0xFF, ob); /* NaN in f32 and f16 */
        const uint64_t units = vt_units(p.cols), tpr = (units + 255) / 256;
        if (rc) {
        } else if (d->sparse) { /* dequant_sparse: 128 compressed units of a row per tile */
            if constexpr (F != VT_FMT_NF4_DQ) rc = grids_sparse<F, T>(p, o);
        } else if constexpr (PLAIN) { /* dequant_plain: 5 "threads" (a ragged share each) */
            const bool vec =
                p.row_bytes == p.cols * vt_dqp<F>::IES && ((uintptr_t)p.data & 15) == 0;
            n_plain_vec += vec;
            for (uint64_t t = 0; t < 5; t++) vt_dqp_body<F, T>(p, o, vec, t, 5);
        } else {
            using S = vt_dqk_smem<F, T>;
            const uint64_t ntiles = flat ? (p.rows * units + 255) / 256 : p.rows * tpr;
            /* every tile's staged bytes (with the word loads' 4-byte overrun) fit a buffer */
            for (uint64_t k = 0; k < ntiles && F != VT_FMT_NF4_DQ; k++) {
                const vt_dqt_span sp = vt_dqt_cta<F>(p, flat, tpr, k, 256);
                uint64_t need = ((uintptr_t)(p.data + sp.b0) & 15) + (sp.b1 - sp.b0) + 4;
                if (need > (uint64_t)S::STAGE) {
                    snprintf(why, cap, "tile %llu: staging %llu bytes > stage buffer %d",
                             (unsigned long long)k, (unsigned long long)need, S::STAGE);
                    rc = 1;
                    break;
                }
            }
            /* grids of 1 CTA (all tiles in one) and of 3 (or fewer when there are fewer tiles) */
            for (uint64_t grid = 1; grid <= 3 && !rc; grid += 2) {
                const uint64_t gn = grid < ntiles ? grid : ntiles;
                smem_buf sb(sizeof(S));
                cta cx;
                for (uint64_t k0 = 0; k0 < gn && !rc; k0++) {
                    memset(sb.p, 0xFF, sb.n);
                    cx.smem_lo = sb.p, cx.smem_hi = sb.p + sb.n;
                    cx.cp_late = (k0 & 1) == 0;
                    cx.err[0] = 0;
                    cta_ctx<F, T> h{&p,  flat,   p.cols % 8 == 0,
                                    tpr, ntiles, k0,
                                    gn,  o,      reinterpret_cast<S *>(sb.p),
                                    &cx};
                    if (run_cta(cx, 256, cta_ctx<F, T>::run, &h, 64 * 1024)) {
                        snprintf(why, cap, "grid %llu CTA %llu: %s", (unsigned long long)gn,
                                 (unsigned long long)k0, cx.err);
                        rc = 1;
                    } else if (!sb.guard_ok()) {
                        snprintf(why, cap, "grid %llu CTA %llu wrote past its shared memory",
                                 (unsigned long long)gn, (unsigned long long)k0);
                        rc = 1;
                    }
                }
                n_grid_runs++;
                if (gn == grid && grid > 1 && ntiles > grid) n_multi++;
            }
        }
        for (uint64_t i = 0; !rc && i < p.rows * p.cols; i++) {
            if (T == 0) {
                memcpy(&out[i], o + 4 * i, 4);
            } else {
                uint16_t h;
                memcpy(&h, o + 2 * i, 2);
                out[i] = __half2float(__ushort_as_half(h));
            }
        }
        free(so), free(o);
        return rc;
    }

    template <int F> int run() {
        vt_kp p = vt_kp_from(d);
        vt_dq_ctx c = {lut, p.tensor_scale, p.aux, p.cols};
        if (mode == 0) return direct<F>(p, c);
        if (mode == 3 || mode == 5) return tiled<F, 0>(p, c, mode == 5);
        if (mode == 4 || mode == 6) return tiled<F, 1>(p, c, mode == 6);
        if (d->sparse) return 77;          /* no staged path */
        if (F == VT_FMT_NF4_DQ) return 77; /* nothing to stage */
        using Gm = geom<F>;
        return mode == 1 ? staged<F>(p, c, Gm::DQ_UNITS, Gm::DQ_SMEM, 256)
                         : staged<F>(p, c, Gm::GV_UNITS, Gm::GV_SMEM, 32);
    }
};

} // namespace

/* Decode every value of the weight described by d into out[rows][cols] with the CUDA decoders
 * run on the host. Returns 0, 77 when @p mode has no path for this layout, 1 with why filled,
 * or a vt_fail code. */
extern "C" void kt_host_decode_counts(unsigned long long *multi, unsigned long long *multi_sparse,
                                      unsigned long long *plain_vec) {
    *multi = n_multi;
    *multi_sparse = n_multi_sparse;
    *plain_vec = n_plain_vec;
}

extern "C" int kt_host_decode(const vt_kdesc *d, int mode, float *out, char *why, size_t cap) {
    host_dec h;
    h.d = d;
    h.mode = mode;
    h.out = out;
    h.why = why;
    h.cap = cap;
    for (int t = 0; t < 32; t++) h.lut[t] = vt_dq_lut_at(t);
    return vt_fmt_dispatch(d->fmt, h);
}
