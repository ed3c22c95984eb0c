/* kernels/cuda/cuda_util.cuh — CUDA error to status code, shared by the kernels' .cu files. */
#ifndef VT_CUDA_UTIL_CUH
#define VT_CUDA_UTIL_CUH

#include <cuda_runtime.h>

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

#define VT_CU_TRY(expr, what)                                                                      \
    do {                                                                                           \
        int rc_ = vt_cuda_err((expr), what);                                                       \
        if (rc_) return rc_;                                                                       \
    } while (0)

#endif
