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

extern "C" int kt_host_decode(const vt_kdesc *d, int mode, float *out, char *why, size_t cap);

namespace {

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

    /* dequant_staged's CTA for every tile (row mode, or flat mode across rows: dq_tile.cuh's
     * vt_dqt_cta, as the kernel), or dequant_sparse's for 2:4 layouts; output type T through
     * the shared-memory transpose (the kernels' path when output rows are 16-byte aligned:
     * cols % 8 == 0); f16 results are widened back to f32 in out. Tile area and output
     * poisoned: a slot or value never written shows. */
    template <int F, int T> int tiled(const vt_kp &p, const vt_dq_ctx &c, bool flat) {
        if (p.cols % 8) return 77;
        if (flat && (d->sparse || !vt_dqt_flat<F>(p))) return 77;
        constexpr int ES = vt_dqt<T>::ES, C = vt_dqt<T>::C;
        const int smem = geom<F>::DQ_SMEM;
        uint8_t *sm = (uint8_t *)aligned_alloc(16, (size_t)smem + 16);
        uint4 *so = (uint4 *)aligned_alloc(16, 256 * C * 16);
        size_t ob = ((size_t)(p.rows * p.cols * ES) + 15) / 16 * 16;
        uint8_t *o = (uint8_t *)aligned_alloc(16, ob ? ob : 16);
        int rc = sm && so && o ? 0 : -12;
        if (!rc) memset(o, 0xFF, ob); /* NaN in f32 and f16 */
        const uint64_t units = vt_units(p.cols), tpr = (units + 255) / 256;
        const uint64_t ctas = flat ? (p.rows * units + 255) / 256 : p.rows * tpr;
        if (d->sparse) { /* dequant_sparse's CTAs: 128 compressed units of a row each */
            if constexpr (F != VT_FMT_NF4_DQ) {
                const uint64_t hn = vt_sparse_units(p.cols);
                for (uint64_t r = 0; r < p.rows && !rc; r++)
                    for (uint64_t h0 = 0; h0 < hn; h0 += VT_DQT_SPARSE_UNITS) {
                        memset(so, 0xEE, 256 * C * 16);
                        for (int t = 0; t < 256; t++) vt_dqt_put_sparse<F, T>(p, c, r, h0, t, so);
                        const uint64_t col0 = 64 * h0,
                                       n = p.cols - col0 < 8192 ? p.cols - col0 : 8192;
                        for (int t = 0; t < 256; t++)
                            vt_dqt_store<T>((uint4 *)(o + (r * p.cols + col0) * ES), so,
                                            (uint32_t)(n * ES / 16), t, 256);
                    }
            }
        }
        for (uint64_t k = 0; k < ctas && !rc && !d->sparse; k++) {
            const vt_dqt_span sp = vt_dqt_cta<F>(p, flat, tpr, k, 256);
            if (F != VT_FMT_NF4_DQ && /* nf4_dq stages nothing */
                ((uintptr_t)(p.data + sp.b0) & 15) + (sp.b1 - sp.b0) > (uint64_t)smem) {
                snprintf(why, cap, "CTA %llu: staging %llu bytes > smem %d", (unsigned long long)k,
                         (unsigned long long)(sp.b1 - sp.b0), smem);
                rc = 1;
                break;
            }
            memset(sm, 0xA5, (size_t)smem + 16);
            uint32_t sh = 0;
            for (int t = 0; t < 256 && F != VT_FMT_NF4_DQ; t++)
                sh = vt_stage(sm, p.data, p.bytes, sp.b0, (uint32_t)(sp.b1 - sp.b0), t, 256);
            memset(so, 0xEE, 256 * C * 16);
            for (int t = 0; t < 256 && sp.g0 + t < sp.g1; t++) {
                float v[32];
                const uint64_t g = sp.g0 + t, r = g / units, u = g % units;
                if constexpr (F == VT_FMT_NF4_DQ) /* as dequant.cu: from global memory */
                    vt_dq_unit_nf4dq(p.data, p.bpr, r, u, c, v);
                else
                    vt_dq_unit<F>(sm + sh + (vt_dqt_boff<F>(p, g) - sp.b0), u, 32 * u, c, v);
                vt_dqt_put<T>(so, t, v);
            }
            for (int t = 0; t < 256; t++)
                vt_dqt_store<T>((uint4 *)(o + sp.o * ES), so, (uint32_t)(sp.n * ES / 16), t, 256);
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
        free(sm), free(so), free(o);
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
