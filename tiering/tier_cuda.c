/* The few CUDA runtime calls the tiers need, behind functions without CUDA types. The tiering
 * library is plain C and does not see the CUDA include path, so the cudart entry points used are
 * declared here with ABI-identical signatures (cudaError_t is an int-sized enum, streams are
 * pointers). Without CUDA every call reports VT_ENODEV. */
#include <errno.h>
#include <stddef.h>

#include "tier_internal.h"

#ifdef VT_HAVE_CUDA

extern int cudaGetDeviceCount(int *n);
extern int cudaSetDevice(int dev);
extern int cudaMemGetInfo(size_t *free_b, size_t *total_b);
extern int cudaMalloc(void **p, size_t n);
extern int cudaFree(void *p);
extern int cudaHostRegister(void *p, size_t n, unsigned flags);
extern int cudaHostUnregister(void *p);
extern int cudaStreamCreateWithFlags(void **s, unsigned flags);
extern int cudaStreamDestroy(void *s);
extern int cudaStreamSynchronize(void *s);
extern int cudaMemcpyAsync(void *dst, const void *src, size_t n, int kind, void *s);
extern int cudaMemcpy(void *dst, const void *src, size_t n, int kind);
extern const char *cudaGetErrorString(int e);
extern int cudaGetLastError(void);
extern int cudaEventCreateWithFlags(void **e, unsigned flags);
extern int cudaEventDestroy(void *e);
extern int cudaEventRecord(void *e, void *s);
extern int cudaEventQuery(void *e);
extern int cudaEventSynchronize(void *e);

#define CUDA_H2D                    1
#define CUDA_D2H                    2
#define CUDA_STREAM_NON_BLOCKING    1u
#define CUDA_HOST_REGISTER_PORTABLE 1u
#define CUDA_EVENT_DISABLE_TIMING   2u
#define CUDA_ERROR_NOT_READY        600

static int cuda_err(int e, const char *what) {
    cudaGetLastError(); /* clear the sticky-free error state */
    return vt_fail(VT_ECUDA, "%s: %s", what, cudaGetErrorString(e));
}

int vt_tcuda_available(int dev) {
    int n = 0;
    if (cudaGetDeviceCount(&n) != 0 || n <= 0) {
        cudaGetLastError();
        return 0;
    }
    if (dev < 0 || dev >= n || cudaSetDevice(dev) != 0) {
        cudaGetLastError();
        return 0;
    }
    return 1;
}

int vt_tcuda_set_device(int dev) {
    int e = cudaSetDevice(dev);
    if (e) return cuda_err(e, "cudaSetDevice");
    return 0;
}

int vt_tcuda_mem_info(uint64_t *free_b, uint64_t *total_b) {
    size_t f = 0, t = 0;
    int e = cudaMemGetInfo(&f, &t);
    if (e) return cuda_err(e, "cudaMemGetInfo");
    *free_b = f;
    *total_b = t;
    return 0;
}

int vt_tcuda_malloc(void **p, uint64_t bytes) {
    int e = cudaMalloc(p, bytes);
    if (e) return cuda_err(e, "cudaMalloc");
    return 0;
}

void vt_tcuda_free(void *p) {
    if (p) cudaFree(p);
}

int vt_tcuda_host_register(void *p, uint64_t bytes) {
    int e = cudaHostRegister(p, bytes, CUDA_HOST_REGISTER_PORTABLE);
    if (e) return cuda_err(e, "cudaHostRegister");
    return 0;
}

void vt_tcuda_host_unregister(void *p) {
    if (p) cudaHostUnregister(p);
}

int vt_tcuda_stream_create(void **s) {
    int e = cudaStreamCreateWithFlags(s, CUDA_STREAM_NON_BLOCKING);
    if (e) return cuda_err(e, "cudaStreamCreate");
    return 0;
}

void vt_tcuda_stream_destroy(void *s) {
    if (s) cudaStreamDestroy(s);
}

int vt_tcuda_h2d_async(void *dst, const void *src, uint64_t n, void *s) {
    int e = cudaMemcpyAsync(dst, src, n, CUDA_H2D, s);
    if (e) return cuda_err(e, "cudaMemcpyAsync H2D");
    return 0;
}

int vt_tcuda_stream_sync(void *s) {
    int e = cudaStreamSynchronize(s);
    if (e) return cuda_err(e, "cudaStreamSynchronize");
    return 0;
}

int vt_tcuda_d2h(void *dst, const void *src, uint64_t n) {
    int e = cudaMemcpy(dst, src, n, CUDA_D2H);
    if (e) return cuda_err(e, "cudaMemcpy D2H");
    return 0;
}

int vt_tcuda_event_create(void **ev) {
    int e = cudaEventCreateWithFlags(ev, CUDA_EVENT_DISABLE_TIMING);
    if (e) return cuda_err(e, "cudaEventCreate");
    return 0;
}

void vt_tcuda_event_destroy(void *ev) {
    if (ev) cudaEventDestroy(ev);
}

int vt_tcuda_event_record(void *ev, void *s) {
    int e = cudaEventRecord(ev, s);
    if (e) return cuda_err(e, "cudaEventRecord");
    return 0;
}

int vt_tcuda_event_query(void *ev) {
    int e = cudaEventQuery(ev);
    if (e == CUDA_ERROR_NOT_READY) {
        cudaGetLastError();
        return 0;
    }
    if (e) return cuda_err(e, "cudaEventQuery");
    return 1;
}

int vt_tcuda_event_sync(void *ev) {
    int e = cudaEventSynchronize(ev);
    if (e) return cuda_err(e, "cudaEventSynchronize");
    return 0;
}

#else /* !VT_HAVE_CUDA */

static int nodev(void) {
    return vt_fail(VT_ENODEV, "built without CUDA");
}
int vt_tcuda_available(int dev) {
    return 0;
}
int vt_tcuda_set_device(int dev) {
    return nodev();
}
int vt_tcuda_mem_info(uint64_t *free_b, uint64_t *total_b) {
    *free_b = *total_b = 0;
    return nodev();
}
int vt_tcuda_malloc(void **p, uint64_t bytes) {
    *p = NULL;
    return nodev();
}
void vt_tcuda_free(void *p) {}
int vt_tcuda_host_register(void *p, uint64_t bytes) {
    return nodev();
}
void vt_tcuda_host_unregister(void *p) {}
int vt_tcuda_stream_create(void **s) {
    *s = NULL;
    return nodev();
}
void vt_tcuda_stream_destroy(void *s) {}
int vt_tcuda_h2d_async(void *dst, const void *src, uint64_t n, void *s) {
    return nodev();
}
int vt_tcuda_stream_sync(void *s) {
    return nodev();
}
int vt_tcuda_d2h(void *dst, const void *src, uint64_t n) {
    return nodev();
}
int vt_tcuda_event_create(void **e) {
    *e = NULL;
    return nodev();
}
void vt_tcuda_event_destroy(void *e) {}
int vt_tcuda_event_record(void *e, void *s) {
    return nodev();
}
int vt_tcuda_event_query(void *e) {
    return nodev();
}
int vt_tcuda_event_sync(void *e) {
    return nodev();
}

#endif
