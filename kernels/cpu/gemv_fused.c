/* kernels/cpu/gemv_fused.c — choice of the fused GEMV kernel for the 4-bit formats: the AVX-512
 * kernel (gemv_fused_avx512.c, also q6_k, q8_0 and int8) when the CPU has AVX-512F, else the
 * AVX2/FMA one (gemv_fused_avx2x4.c, 4-bit only), else none (the caller decodes and dots); and
 * the per-call preparation of x that the chosen kernel reads (vt_kfused_prep). CPU features come
 * from the cached vt_cpu_features()/vt_kcpu_avx2(), never cpuid per call. */
#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "gemv_fused.h"
#include "kern_internal.h"

int vt_kcpu_avx512(void) {
    /* every thread computes the same answer; atomic so that the check is not a data race */
    static int cached = -1;
    int c = __atomic_load_n(&cached, __ATOMIC_RELAXED);
    if (c < 0) {
        const char *e = getenv("VT_KERNELS_AVX512");
        int off = e && strcmp(e, "0") == 0;
        c = !off && vt_kcpu_avx2() && (vt_cpu_features() & VT_CPU_AVX512F) != 0;
        __atomic_store_n(&cached, c, __ATOMIC_RELAXED);
    }
    return c;
}

/* The fused kernel in use for d, or 0 for none (2:4 layouts, no AVX2). */
static int fused_isa(const vt_kdesc *d) {
    if (d->sparse) return 0;
    return vt_kcpu_avx512() ? 512 : vt_kcpu_avx2() ? 2 : 0;
}

int vt_kfused_prep(const vt_kdesc *d, const float *x, int batch, vt_kx *px) {
    switch (fused_isa(d)) {
    case 512:
        return vt_kfused_prep512(d, x, batch, px);
    case 2:
        return vt_kfused_prep_avx2(d, x, batch, px);
    default:
        *px = (vt_kx){.x = x, .batch = batch, .npad = batch, .mem = NULL};
        return 0;
    }
}

void vt_kfused_unprep(vt_kx *px) {
    vt_free(px->mem);
    px->mem = NULL;
    px->x = NULL;
}

int vt_kx_build(const vt_kdesc *d, const float *x, int batch, int npad, int g, int how, vt_kx *px) {
    const uint64_t cols = d->cols, whole = cols / (uint64_t)g * (uint64_t)g;
    const float *s = d->fmt == VT_FMT_AWQ_INT4 ? d->aux : NULL;
    const int odd = (how & VT_KX_ODD_FIRST) != 0;
    float *o = vt_malloc((size_t)npad * cols * sizeof(float));
    if (!o) return -ENOMEM;
    for (int v = 0; v < npad; v++) {
        const float *xv = x + (uint64_t)v * cols;
        for (uint64_t k = 0; k < cols; k += (uint64_t)g) {
            const int n = cols - k < (uint64_t)g ? (int)(cols - k) : g;
            /* group k of vector v: [k/g][npad][g] when interleaved, the tail after all groups */
            float *ov = how & VT_KX_INTERLEAVE
                            ? o + (k < whole ? k * (uint64_t)npad + (uint64_t)v * (uint64_t)g
                                             : whole * (uint64_t)npad + (uint64_t)v * (uint64_t)n)
                            : o + (uint64_t)v * cols + k;
            float t[64];
            for (int e = 0; e < n; e++)
                t[e] = v >= batch ? 0.0f
                       : s        ? xv[k + (uint64_t)e] / s[k + (uint64_t)e]
                                  : xv[k + (uint64_t)e];
            if (!(how & VT_KX_SPLIT) || n < g) {
                memcpy(ov, t, (size_t)n * sizeof(float));
                continue;
            }
            for (int e = 0; e < g / 2; e++) {
                ov[e] = t[2 * e + odd];
                ov[g / 2 + e] = t[2 * e + 1 - odd];
            }
        }
    }
    *px = (vt_kx){.x = o, .batch = batch, .npad = npad, .mem = o};
    return 0;
}

int vt_kxi_build(const vt_kdesc *d, const float *x, int batch, const uint8_t *perm, int how,
                 vt_kx *px) {
    const uint64_t cols = d->cols, n64 = cols / 64;
    float *m = vt_malloc((size_t)batch * n64 * (sizeof(float) + 64 * sizeof(int16_t)));
    if (!m) return -ENOMEM;
    float *xs = m;
    int16_t *xq = (int16_t *)(m + (size_t)batch * n64);
    for (int b = 0; b < batch; b++)
        for (uint64_t G = 0; G < n64; G++) {
            const float *v = x + (uint64_t)b * cols + 64 * G;
            float am = 0.0f;
            for (int e = 0; e < 64; e++) {
                const float a = fabsf(v[e]);
                if (!(a <= FLT_MAX)) goto fallback;
                am = a > am ? a : am;
            }
            if (am > 0.0f && am < 0x1p-100f) goto fallback;
            const double inv = am > 0.0f ? VT_KXI_Q / am : 0.0;
            xs[(uint64_t)b * n64 + G] = (float)(am / VT_KXI_Q);
            const int pair = (how & VT_KXI_PAIRS) && (G ^ 1) < n64;
            int16_t *o = xq + ((uint64_t)b * n64 + (pair ? G & ~(uint64_t)1 : G)) * 64;
            for (int t = 0; t < 64; t++) {
                long c = lrint(v[perm[t]] * inv);
                o[pair ? 32 * (t / 16) + 16 * (int)(G & 1) + t % 16 : t] =
                    (int16_t)(c > 16384    ? 16384
                              : c < -16384 ? -16384
                                           : c);
            }
        }
    *px = (vt_kx){.x = x, .batch = batch, .npad = batch, .mem = m, .xq = xq, .xs = xs, .n64 = n64};
    return 0;
fallback:
    vt_free(m);
    return 1;
}

int vt_kfused_xint(const vt_kdesc *d, int batch) {
    static int on = -1; /* VT_GEMV_CPU_INT=0: the f32 kernels (A/B, tests); cached */
    int c = __atomic_load_n(&on, __ATOMIC_RELAXED);
    if (c < 0) {
        const char *e = getenv("VT_GEMV_CPU_INT");
        c = !(e && strcmp(e, "0") == 0);
        __atomic_store_n(&on, c, __ATOMIC_RELAXED);
    }
    if (!c || batch < 1 || batch > 2 || d->cols < 64) return 0;
    switch (fused_isa(d)) {
    case 512:
        return vt_kxi_fmt512(d->fmt);
    case 2:
        return vt_kxi_fmt_avx2(d->fmt);
    default:
        return 0;
    }
}

uint64_t vt_kfused_rows(const vt_kdesc *d, uint64_t r0, int nr, const vt_kx *px, float *out) {
    switch (fused_isa(d)) {
    case 512:
        return vt_kfused_rows512(d, r0, nr, px, out);
    case 2:
        return vt_kfused_rows_avx2(d, r0, nr, px, out);
    default:
        return 0;
    }
}
