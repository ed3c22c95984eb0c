/* kernels/dispatch.c — the public kernel entry points: argument checks, then host or device
 * kernels by the handle's location. */
#include <errno.h>

#include "kern_internal.h"

int vt_kernels_cuda_available(void) {
    /* every thread computes the same answer; relaxed atomics keep the race defined */
    static int cached = -1;
    int c = __atomic_load_n(&cached, __ATOMIC_RELAXED);
    if (c < 0) {
        c = vt_cuda_available();
        __atomic_store_n(&cached, c, __ATOMIC_RELAXED);
    }
    return c;
}

const char *vt_kernels_cpu_isa(void) {
    return vt_kcpu_avx512() ? "avx512f" : vt_kcpu_avx2() ? "avx2+fma" : "scalar";
}

static int check_loc(const vt_weight *w, const char *who) {
    if (!w) return vt_fail(-EINVAL, "%s: NULL weight handle", who);
    if (w->location == VT_LOC_HOST) return 0;
    if (w->location != VT_LOC_DEVICE)
        return vt_fail(-EINVAL, "%s: bad weight location %d", who, (int)w->location);
    if (!vt_kernels_cuda_available())
        return vt_fail(VT_ENODEV, "%s: weight %llux%llu is in device memory but %s", who,
                       (unsigned long long)w->rows, (unsigned long long)w->cols,
#ifdef VT_HAVE_CUDA
                       "no CUDA device is usable"
#else
                       "this build has no CUDA kernels"
#endif
        );
    return 0;
}

int vt_dequant(const vt_weight *w, vt_dtype ot, void *out, void *stream) {
    int rc = check_loc(w, "vt_dequant");
    if (rc) return rc;
    if (!out) return vt_fail(-EINVAL, "vt_dequant: NULL output");
    if (ot != VT_DTYPE_F32 && ot != VT_DTYPE_F16 && ot != VT_DTYPE_BF16)
        return vt_fail(VT_EUNSUPPORTED, "vt_dequant: output dtype %s (f32, f16 or bf16)",
                       vt_dtype_name(ot));
    if (w->location == VT_LOC_HOST) return vt_cpu_dequant(w, ot, out);
    vt_kdesc d;
    rc = vt_kdesc_init(&d, w, "vt_dequant");
    return rc ? rc : vt_cuda_dequant(&d, ot, out, stream);
}

int vt_gemv(const vt_weight *w, const float *x, float *y, int batch, void *stream) {
    int rc = check_loc(w, "vt_gemv");
    if (rc) return rc;
    if (!x || !y) return vt_fail(-EINVAL, "vt_gemv: NULL x or y");
    if (batch < 1 || batch > VT_GEMV_MAX_BATCH)
        return vt_fail(-EINVAL, "vt_gemv: batch %d outside 1..%d", batch, VT_GEMV_MAX_BATCH);
    if (w->location == VT_LOC_HOST) return vt_cpu_gemv(w, x, y, batch);
    vt_kdesc d;
    rc = vt_kdesc_init(&d, w, "vt_gemv");
    return rc ? rc : vt_cuda_gemv(&d, x, y, batch, stream);
}

int vt_gemm_ex(const vt_weight *w, const void *X, vt_dtype xt, void *Y, vt_dtype yt, uint64_t M,
               vt_gemm_algo algo, vt_kernel_ws *ws, void *stream) {
    int rc = check_loc(w, "vt_gemm");
    if (rc) return rc;
    if (!X || !Y || M == 0) return vt_fail(-EINVAL, "vt_gemm: NULL X or Y, or M = 0");
    if ((xt != VT_DTYPE_F32 && xt != VT_DTYPE_F16) || (yt != VT_DTYPE_F32 && yt != VT_DTYPE_F16))
        return vt_fail(VT_EUNSUPPORTED, "vt_gemm: X %s, Y %s (f32 or f16 each)", vt_dtype_name(xt),
                       vt_dtype_name(yt));
    if (w->location == VT_LOC_HOST) return vt_cpu_gemm(w, X, xt, Y, yt, M);
    vt_kdesc d;
    rc = vt_kdesc_init(&d, w, "vt_gemm");
    if (rc) return rc;
    if (algo == VT_GEMM_AUTO) algo = ws ? VT_GEMM_CUBLAS : VT_GEMM_MMA;
    if (algo == VT_GEMM_CUBLAS) {
        if (!ws) return vt_fail(-EINVAL, "vt_gemm: the cuBLAS path needs a workspace");
        return vt_cuda_gemm_cublas(&d, X, xt, Y, yt, M, ws, stream);
    }
    if (algo != VT_GEMM_MMA) return vt_fail(-EINVAL, "vt_gemm: unknown algorithm %d", (int)algo);
    return vt_cuda_gemm_mma(&d, X, xt, Y, yt, M, stream);
}

int vt_gemm(const vt_weight *w, const void *X, vt_dtype xt, void *Y, vt_dtype yt, uint64_t M,
            void *stream) {
    return vt_gemm_ex(w, X, xt, Y, yt, M, VT_GEMM_AUTO, NULL, stream);
}

int vt_kernel_ws_create(uint64_t bytes, vt_kernel_ws **out) {
    if (!out) return vt_fail(-EINVAL, "vt_kernel_ws_create: NULL out");
    *out = NULL;
    if (!vt_kernels_cuda_available())
        return vt_fail(VT_ENODEV, "vt_kernel_ws_create: no CUDA device in this build or machine");
    return vt_cuda_ws_create(bytes ? bytes : (64ull << 20), out);
}

void vt_kernel_ws_destroy(vt_kernel_ws *ws) {
    if (ws) vt_cuda_ws_destroy(ws);
}

int vt_kernels_cublas_f16(vt_kernel_ws *ws, const uint16_t *W, const uint16_t *X, float *Y,
                          uint64_t rows, uint64_t cols, uint64_t M, void *stream) {
    if (!ws || !W || !X || !Y || !rows || !cols || !M)
        return vt_fail(-EINVAL, "vt_kernels_cublas_f16: NULL or empty argument");
    if (!vt_kernels_cuda_available())
        return vt_fail(VT_ENODEV, "vt_kernels_cublas_f16: no CUDA device in this build or machine");
    return vt_cuda_cublas_f16(ws, W, X, Y, rows, cols, M, stream);
}
