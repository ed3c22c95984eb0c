/* kernels/cuda/device.cu — vtstore/device.h over the CUDA runtime, and vt_cuda_available. */
#include <cuda_runtime.h>
#include <stdio.h>
#include <string.h>

#include "cuda_util.cuh"
#include "kern_internal.h"
#include "vtstore/device.h"
#include "core/fault_internal.h"

/* A usable device: one present and of compute capability 8.0 or later (the kernels are built
 * for sm_80 / sm_90 with compute_90 PTX, and mma.sync.m16n8k16 needs sm_80: on an older GPU every
 * launch would fail with "no kernel image"). */
extern "C" int vt_cuda_available(void) {
    int n = 0, dev = 0, major = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e == cudaSuccess && n > 0) e = cudaGetDevice(&dev);
    if (e == cudaSuccess && n > 0)
        e = cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev);
    if (e != cudaSuccess) {
        cudaGetLastError(); /* clear the error so later calls start clean */
        return 0;
    }
    return n > 0 && major >= 8;
}

extern "C" int vt_dev_info(vt_dev_props *out) {
    if (!out) return vt_fail(-22, "vt_dev_info: NULL out");
    memset(out, 0, sizeof *out);
    int dev = 0;
    VT_CU_TRY(cudaGetDevice(&dev), "cudaGetDevice");
    cudaDeviceProp p;
    VT_CU_TRY(cudaGetDeviceProperties(&p, dev), "cudaGetDeviceProperties");
    snprintf(out->name, sizeof out->name, "%s", p.name);
    out->sm_count = p.multiProcessorCount;
    out->cc_major = p.major;
    out->cc_minor = p.minor;
    size_t fr = 0, tot = 0;
    VT_CU_TRY(cudaMemGetInfo(&fr, &tot), "cudaMemGetInfo");
    out->total_bytes = tot;
    out->free_bytes = fr;
    VT_CU_TRY(cudaDriverGetVersion(&out->driver_version), "cudaDriverGetVersion");
    VT_CU_TRY(cudaRuntimeGetVersion(&out->runtime_version), "cudaRuntimeGetVersion");
    return 0;
}

extern "C" int vt_dev_malloc(void **out, size_t n) {
    if (!out) return vt_fail(-22, "vt_dev_malloc: NULL out");
    *out = NULL;
    if (n == 0) return 0;
    int f = vt_fault_check(VT_FAULT_DEVICE);
    if (f) return vt_fail(f, "vt_dev_malloc: injected fault (%zu bytes)", n);
    cudaError_t e = cudaMalloc(out, n);
    if (e != cudaSuccess) {
        cudaGetLastError();
        *out = NULL;
        return vt_fail(VT_ECUDA, "vt_dev_malloc(%zu bytes): %s", n, cudaGetErrorString(e));
    }
    return 0;
}

extern "C" void vt_dev_free(void *p) {
    if (p) cudaFree(p);
}

static int copy(void *d, const void *s, size_t n, cudaMemcpyKind k, void *st, const char *who) {
    if (n == 0) return 0;
    return vt_cuda_err(cudaMemcpyAsync(d, s, n, k, (cudaStream_t)st), who);
}
extern "C" int vt_dev_memcpy_h2d(void *d, const void *s, size_t n, void *st) {
    return copy(d, s, n, cudaMemcpyHostToDevice, st, "vt_dev_memcpy_h2d");
}
extern "C" int vt_dev_memcpy_d2h(void *d, const void *s, size_t n, void *st) {
    return copy(d, s, n, cudaMemcpyDeviceToHost, st, "vt_dev_memcpy_d2h");
}
extern "C" int vt_dev_memcpy_d2d(void *d, const void *s, size_t n, void *st) {
    return copy(d, s, n, cudaMemcpyDeviceToDevice, st, "vt_dev_memcpy_d2d");
}
extern "C" int vt_dev_memset(void *p, int v, size_t n, void *st) {
    if (n == 0) return 0;
    return vt_cuda_err(cudaMemsetAsync(p, v, n, (cudaStream_t)st), "vt_dev_memset");
}
extern "C" int vt_dev_sync(void *st) {
    return vt_cuda_err(cudaStreamSynchronize((cudaStream_t)st), "vt_dev_sync");
}
extern "C" int vt_dev_stream_create(void **out) {
    cudaStream_t s = NULL;
    if (!out) return vt_fail(-22, "vt_dev_stream_create: NULL out");
    *out = NULL;
    VT_CU_TRY(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking), "cudaStreamCreate");
    *out = (void *)s;
    return 0;
}
extern "C" void vt_dev_stream_destroy(void *st) {
    if (st) cudaStreamDestroy((cudaStream_t)st);
}
extern "C" int vt_dev_event_create(void **out) {
    cudaEvent_t e = NULL;
    if (!out) return vt_fail(-22, "vt_dev_event_create: NULL out");
    *out = NULL;
    VT_CU_TRY(cudaEventCreate(&e), "cudaEventCreate");
    *out = (void *)e;
    return 0;
}
extern "C" void vt_dev_event_destroy(void *ev) {
    if (ev) cudaEventDestroy((cudaEvent_t)ev);
}
extern "C" int vt_dev_event_record(void *ev, void *st) {
    return vt_cuda_err(cudaEventRecord((cudaEvent_t)ev, (cudaStream_t)st), "cudaEventRecord");
}
extern "C" int vt_dev_event_elapsed_ms(void *a, void *b, float *ms) {
    if (!a || !b || !ms) return vt_fail(-22, "vt_dev_event_elapsed_ms: NULL argument");
    VT_CU_TRY(cudaEventSynchronize((cudaEvent_t)b), "cudaEventSynchronize");
    return vt_cuda_err(cudaEventElapsedTime(ms, (cudaEvent_t)a, (cudaEvent_t)b),
                       "cudaEventElapsedTime");
}
