/*
 * vtstore/device.h — a small C API over the CUDA runtime with no CUDA types, for tests,
 * benchmarks, the model runner, the VRAM tier and the attention kernels (tiering and attention
 * engineers: use these rather than calling cudart from C files, so builds without CUDA link).
 *
 *     if (!vt_kernels_cuda_available()) skip();            // vtstore/kernels.h
 *     void *d; vt_dev_malloc(&d, n);
 *     vt_dev_memcpy_h2d(d, host, n, NULL);                 // async on the stream
 *     vt_dev_sync(NULL);                                   // wait for the stream
 *     vt_dev_free(d);
 *
 * A stream is `void *` = cudaStream_t; NULL is the legacy default stream. Every function
 * returns 0, VT_ENODEV (build without CUDA or no device) or VT_ECUDA (the CUDA error string is
 * in vt_last_error()). Device allocations count as VT_FAULT_DEVICE for fault injection.
 */
#ifndef VTSTORE_DEVICE_H
#define VTSTORE_DEVICE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Properties of the current device. */
typedef struct vt_dev_props {
    char name[256];                      /* e.g. "NVIDIA H100 80GB HBM3" */
    int sm_count;                        /* streaming multiprocessors */
    int cc_major, cc_minor;              /* compute capability */
    uint64_t total_bytes;                /* global memory */
    uint64_t free_bytes;                 /* free at the time of the call */
    int driver_version, runtime_version; /* as cudaDriverGetVersion / cudaRuntimeGetVersion */
} vt_dev_props;

/** Fill @p out with the current device's properties. */
int vt_dev_info(vt_dev_props *out);
/** Allocate @p n bytes of device memory (n = 0 gives NULL and returns 0). Caller frees. */
int vt_dev_malloc(void **out, size_t n);
/** Free device memory from vt_dev_malloc; NULL is a no-op. Implicitly synchronizes (cudaFree). */
void vt_dev_free(void *p);
/** Asynchronous copies on @p stream (host memory should be pinned for true overlap). */
int vt_dev_memcpy_h2d(void *dst, const void *src, size_t n, void *stream);
int vt_dev_memcpy_d2h(void *dst, const void *src, size_t n, void *stream);
int vt_dev_memcpy_d2d(void *dst, const void *src, size_t n, void *stream);
/** Fill @p n bytes at device @p p with byte @p value, asynchronously on @p stream. */
int vt_dev_memset(void *p, int value, size_t n, void *stream);
/** Wait for all work queued on @p stream. */
int vt_dev_sync(void *stream);
/** Create / destroy a non-blocking stream (destroy(NULL) is a no-op). */
int vt_dev_stream_create(void **out);
void vt_dev_stream_destroy(void *stream);

/** Events for timing: record on a stream, then the milliseconds between two recorded events
 *  (waits for @p end). */
int vt_dev_event_create(void **out);
void vt_dev_event_destroy(void *ev);
int vt_dev_event_record(void *ev, void *stream);
int vt_dev_event_elapsed_ms(void *start, void *end, float *ms);

#ifdef __cplusplus
}
#endif
#endif /* VTSTORE_DEVICE_H */
