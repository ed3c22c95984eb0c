/* kernels/cuda_stub.c — the CUDA entry points and device helpers of a build without CUDA:
 * every call answers VT_ENODEV, so callers link and skip cleanly. */
#ifndef VT_HAVE_CUDA
#include "kern_internal.h"
#include "vtstore/device.h"

#define NODEV(who) vt_fail(VT_ENODEV, "%s: this build has no CUDA support (VT_CUDA=OFF)", who)

int vt_cuda_available(void) {
    return 0;
}
int vt_cuda_dequant(const vt_kdesc *d, vt_dtype ot, void *out, void *s) {
    return NODEV("vt_dequant");
}
int vt_cuda_gemv(const vt_kdesc *d, const float *x, float *y, int b, void *s) {
    return NODEV("vt_gemv");
}
int vt_cuda_gemm_mma(const vt_kdesc *d, const void *X, vt_dtype xt, void *Y, vt_dtype yt,
                     uint64_t M, void *s) {
    return NODEV("vt_gemm");
}
int vt_cuda_gemm_cublas(const vt_kdesc *d, const void *X, vt_dtype xt, void *Y, vt_dtype yt,
                        uint64_t M, vt_kernel_ws *ws, void *s) {
    return NODEV("vt_gemm");
}
int vt_cuda_ws_create(uint64_t bytes, vt_kernel_ws **out) {
    return NODEV("vt_kernel_ws_create");
}
void vt_cuda_ws_destroy(vt_kernel_ws *ws) {}
int vt_cuda_cublas_f16(vt_kernel_ws *ws, const uint16_t *W, const uint16_t *X, float *Y,
                       uint64_t rows, uint64_t cols, uint64_t M, void *stream) {
    return NODEV("vt_kernels_cublas_f16");
}

int vt_dev_info(vt_dev_props *out) {
    return NODEV("vt_dev_info");
}
int vt_dev_malloc(void **out, size_t n) {
    if (out) *out = NULL;
    return NODEV("vt_dev_malloc");
}
void vt_dev_free(void *p) {}
int vt_dev_memcpy_h2d(void *d, const void *s, size_t n, void *st) {
    return NODEV("vt_dev_memcpy_h2d");
}
int vt_dev_memcpy_d2h(void *d, const void *s, size_t n, void *st) {
    return NODEV("vt_dev_memcpy_d2h");
}
int vt_dev_memcpy_d2d(void *d, const void *s, size_t n, void *st) {
    return NODEV("vt_dev_memcpy_d2d");
}
int vt_dev_memset(void *p, int v, size_t n, void *st) {
    return NODEV("vt_dev_memset");
}
int vt_dev_sync(void *st) {
    return NODEV("vt_dev_sync");
}
int vt_dev_stream_create(void **out) {
    if (out) *out = NULL;
    return NODEV("vt_dev_stream_create");
}
void vt_dev_stream_destroy(void *st) {}
int vt_dev_event_create(void **out) {
    if (out) *out = NULL;
    return NODEV("vt_dev_event_create");
}
void vt_dev_event_destroy(void *ev) {}
int vt_dev_event_record(void *ev, void *st) {
    return NODEV("vt_dev_event_record");
}
int vt_dev_event_elapsed_ms(void *a, void *b, float *ms) {
    return NODEV("vt_dev_event_elapsed_ms");
}
#else
typedef int vt_cuda_stub_empty; /* ISO C forbids an empty translation unit */
#endif
