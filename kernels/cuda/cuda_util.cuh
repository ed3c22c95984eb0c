/* kernels/cuda/cuda_util.cuh — CUDA error to status code, shared by the kernels' .cu files. */
#ifndef VT_CUDA_UTIL_CUH
#define VT_CUDA_UTIL_CUH

#include <cuda_runtime.h>

#include <atomic>

#include "vtstore/core.h"

/* Turn a CUDA error into VT_ECUDA with CUDA's name and string in the detail. */
static inline int vt_cuda_err(cudaError_t e, const char *what) {
    if (e == cudaSuccess) return 0;
    return vt_fail(VT_ECUDA, "%s: %s (%s)", what, cudaGetErrorString(e), cudaGetErrorName(e));
}
/* After a launch: launch-configuration errors only (no synchronization). */
static inline int vt_cuda_launch_check(const char *what) {
    return vt_cuda_err(cudaGetLastError(), what);
}

/* The current device's largest opt-in dynamic shared memory per block (queried once per device
 * 0..63), for launchers choosing between kernel variants. */
static inline int vt_cuda_smem_max(size_t *out, const char *who) {
    static std::atomic<int> cache[64];
    int dev = 0, rc = vt_cuda_err(cudaGetDevice(&dev), who);
    if (rc) return rc;
    int v = dev >= 0 && dev < 64 ? cache[dev].load(std::memory_order_relaxed) : 0;
    if (v == 0) {
        rc = vt_cuda_err(cudaDeviceGetAttribute(&v, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev),
                         who);
        if (rc) return rc;
        if (dev >= 0 && dev < 64) cache[dev].store(v, std::memory_order_relaxed);
    }
    *out = (size_t)v;
    return 0;
}

/* Device attribute A of the current device (queried once per device 0..63), @p fallback where
 * CUDA cannot say, for launchers sizing grids to waves or plans to shared memory. */
template <cudaDeviceAttr A> static inline int vt_cuda_attr(int fallback) {
    static std::atomic<int> cache[64];
    int dev = 0;
    if (cudaGetDevice(&dev) != cudaSuccess || dev < 0 || dev >= 64) return fallback;
    int n = cache[dev].load(std::memory_order_relaxed);
    if (!n) {
        if (cudaDeviceGetAttribute(&n, A, dev) != cudaSuccess || n <= 0) n = fallback;
        cache[dev].store(n, std::memory_order_relaxed);
    }
    return n;
}
/* The current device's SM count. */
static inline int vt_cuda_sm_count(int fallback) {
    return vt_cuda_attr<cudaDevAttrMultiProcessorCount>(fallback);
}

/* Dynamic shared memory of @p bytes for kernel instance kern (beyond the 48 KiB default), with
 * the largest carveout, asked once per device (0..63; others on every call) and instance: set
 * holds the devices done. Host code (the launchers). */
template <class K>
inline int vt_cuda_smem_optin(K kern, size_t bytes, std::atomic<unsigned long long> &set,
                              const char *who) {
    int dev = 0;
    int rc = vt_cuda_err(cudaGetDevice(&dev), who);
    if (rc) return rc;
    unsigned long long bit = dev >= 0 && dev < 64 ? 1ULL << dev : 0;
    if (bit && (set.load(std::memory_order_acquire) & bit)) return 0;
    rc = vt_cuda_err(
        cudaFuncSetAttribute(kern, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)bytes), who);
    if (!rc)
        rc = vt_cuda_err(cudaFuncSetAttribute(kern, cudaFuncAttributePreferredSharedMemoryCarveout,
                                              (int)cudaSharedmemCarveoutMaxShared),
                         who);
    if (!rc) set.fetch_or(bit, std::memory_order_release);
    return rc;
}

#define VT_CU_TRY(expr, what)                                                                      \
    do {                                                                                           \
        int rc_ = vt_cuda_err((expr), what);                                                       \
        if (rc_) return rc_;                                                                       \
    } while (0)

#endif
