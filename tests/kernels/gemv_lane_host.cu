/* tests/kernels/gemv_lane_host.cu — runs the GEMV kernels' lane code (kernels/cuda
 * gemv_lane.cuh: staging, unit decode, dot products with x) on the host for
 * test_gemv_lane_host.c: for each row, all 32 lanes of the warp stage their chunks into a
 * poisoned warp area of the kernel's size; per 32 units, 256 threads load the x chunk into a
 * NaN-poisoned swizzled area, then the lanes compute; the warp's partial sums are combined
 * with the kernel's butterfly (__shfl_xor_sync 16, 8, 4, 2, 1) and lane 0's sum is y. No GPU. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "gemv_lane.cuh"

extern "C" int kt_host_gemv(const vt_kdesc *d, const float *x, float *y, int batch);

namespace {

struct host_gemv {
    const vt_kdesc *d;
    const float *x;
    float *y;
    int nb;
    float lut[32];

    /* y[b][r] from 32 lanes' accumulators, summed in the order of the kernel's shuffle tree */
    template <int NB> void reduce(float acc[32][NB], uint64_t r, uint64_t rows) {
        for (int o = 16; o > 0; o >>= 1) {
            float nxt[32][NB];
            for (int l = 0; l < 32; l++)
                for (int b = 0; b < NB; b++) nxt[l][b] = acc[l][b] + acc[l ^ o][b];
            memcpy(acc, nxt, sizeof nxt);
        }
        for (int b = 0; b < nb; b++) y[b * rows + r] = acc[0][b];
    }

    template <int F, int NB> int go(const vt_kp &p, bool xvec) {
        vt_dq_ctx c = {lut, p.tensor_scale, p.aux, p.cols};
        const vt_dq_ctx cs = gv_ctx_staged(lut, p); /* the staged kernel's */
        using Gm = gv_geom<F>;
        uint8_t *sm = (uint8_t *)aligned_alloc(16, Gm::STAGE);
        float4 *sx = (float4 *)aligned_alloc(16, NB * GV_XS * sizeof(float4));
        const float nan = nanf("");
        if (!sm || !sx) {
            free(sm), free(sx);
            return -12;
        }
        const uint64_t units = vt_units(p.cols), step = 32 * Gm::G;
        for (uint64_t r = 0; r < p.rows; r++) {
            float acc[32][NB] = {{0}};
            {
                for (uint64_t u0 = 0; u0 < units; u0 += step) {
                    uint64_t b0 = 0;
                    uint32_t sh = 0;
                    memset(sm, 0xA5, Gm::STAGE); /* bytes never staged are garbage */
                    for (int lane = 0; lane < 32 && F != VT_FMT_NF4_DQ; lane++)
                        sh = gv_stage_lane<F>(p, r, u0, sm, lane, &b0);
                    for (int g = 0; g < Gm::G && u0 + 32 * g < units; g++) {
                        /* the CTA's x chunk, loaded by 256 threads (8 warps) as in gemv.cu;
                         * slots never written stay NaN */
                        for (int i = 0; i < NB * GV_XS; i++)
                            sx[i] = make_float4(nan, nan, nan, nan);
                        for (int t = 0; t < 256; t++)
                            gv_xstage(x, p.aux, p.cols, u0 + 32 * g, nb, xvec, sx, t, 256);
                        for (int lane = 0; lane < 32; lane++)
                            gv_unit_lane<F, NB>(p, cs, sx, r, u0 + 32 * g, b0, sm, sh, lane, nb,
                                                acc[lane]);
                    }
                }
            }
            reduce<NB>(acc, r, p.rows);
        }
        free(sm), free(sx);
        return 0;
    }

    template <int F> int run() {
        if (d->sparse) return 77; /* 2:4 rows: whole CTAs in gemv_cta_host.cu */
        return gv_batch_dispatch<F>(*this, nb, vt_kp_from(d), x); /* as gemv.cu */
    }
};

} // namespace

/* y[batch][rows] = W x[batch][cols] the way the GEMV kernels compute it, on the host. */
extern "C" int kt_host_gemv(const vt_kdesc *d, const float *x, float *y, int batch) {
    host_gemv h;
    h.d = d;
    h.x = x;
    h.y = y;
    h.nb = batch;
    for (int t = 0; t < 32; t++) h.lut[t] = vt_dq_lut_at(t);
    return vt_fmt_dispatch(d->fmt, h);
}
