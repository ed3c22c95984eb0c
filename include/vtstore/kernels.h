/*
 * vtstore/kernels.h — dequantize and fused quantized matrix products on a weight handle
 * (vtstore/weight.h), on the CPU or a CUDA device, chosen by where the handle's bytes live.
 *
 * W is the handle's rows x cols matrix in any stored format (vtstore/quant.h, 2:4 sparse
 * variants included). Kernels dequantize block by block inside the product, never expanding W
 * in memory, and accumulate in f32.
 *
 *     vt_weight w;
 *     vt_weight_host(&w, q, VT_FMT_Q4_0, rows, cols, NULL);
 *     vt_gemv(&w, x, y, 1, NULL);                          // y[rows] = W x[cols]
 *     vt_gemm(&w, X, VT_DTYPE_F32, Y, VT_DTYPE_F32, M, NULL); // Y[M][rows] = X[M][cols] W^T
 *
 * Streams: a `void *stream` is a cudaStream_t (NULL = the legacy default stream) for device
 * handles and is ignored for host handles. Device calls are asynchronous on that stream and
 * never synchronize; host calls return when the result is written. Buffers passed with a
 * device handle (x, y, X, Y, out) must be device memory (see vtstore/device.h).
 *
 * Errors (all functions): -EINVAL (NULL pointer, zero-sized or mismatched arguments, batch out of
 * range, fewer bytes than the shape needs, scales the quantization library refuses: an nvfp4
 * tensor_scale that is unset (NaN, as vt_weight_host leaves it without the blocks'
 * vt_quant_params) or not in (0, FLT_MAX], or an awq_int4 channel scale (aux) that is not
 * positive and finite; the message names the format, and the column for awq), -EOVERFLOW (rows x
 * cols, as values or as stored bytes, does not fit 64 bits), VT_EUNSUPPORTED (format/dtype
 * combination not served), VT_ENODEV (device handle in a build without CUDA, or no GPU),
 * VT_ECUDA (CUDA error; vt_last_error() has CUDA's string), -ENOMEM (host scratch of the
 * reference kernels). Detail names the format and shape. The awq scales are checked (O(cols)
 * per call) only on host handles: a device handle's aux lives in device memory, and the caller
 * answers for it (device kernels divide by those scales as they are).
 */
#ifndef VTSTORE_KERNELS_H
#define VTSTORE_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#include "vtstore/core.h"
#include "vtstore/weight.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Largest batch vt_gemv accepts. */
#define VT_GEMV_MAX_BATCH 8

/** 1 if this build has CUDA kernels and a CUDA device is usable, else 0. Cheap after the first
 *  call (the answer is cached). */
int vt_kernels_cuda_available(void);

/** Dequantize all of W into @p out ([rows][cols] of @p out_type: VT_DTYPE_F32, F16 or BF16;
 *  f16/bf16 round to nearest even, and a value beyond the type's range becomes +-Inf as IEEE
 *  conversion has it: this is the compute path, unchecked on CPU and GPU alike;
 *  vt_store_read_rows refuses such values instead). Runs where w->data lives; @p out must live
 *  there too. Host: threaded over rows. Returns 0 or an error above. */
int vt_dequant(const vt_weight *w, vt_dtype out_type, void *out, void *stream);

/** y = W x for a batch of vectors: x is [batch][cols] f32, y is [batch][rows] f32, 1 <= batch
 *  <= VT_GEMV_MAX_BATCH. AWQ handles multiply x by 1/s per input channel (w->aux) on the fly.
 *  Device: batch 1-2 on dense rows run the integer kernel for q4_0/q4_1/q4_k/q8_0/int8/awq_int4
 *  with weights at an address and row stride aligned to 2 or 4 bytes (x quantized per CTA to
 *  int16 per 32 columns, for awq_int4 after the division by its channel scales: each x off by at
 *  most 2^-16 of its unit's largest |x|; a unit whose |x| all lie below about 1e-33 counts as 0;
 *  non-finite x gives NaN rows), and the register kernel (R rows per CTA, x in registers) for
 *  the others except q6_k. A/B switches for
 *  benchmarks, in the environment (results agree within rounding): VT_GEMV_KERNEL=float (the
 *  register kernel for the integer kernel's formats too; awq_int4 the staged kernel, where it
 *  ran before 2026-11-27), VT_GEMV_KERNEL=staged (the staged
 *  kernel), VT_GEMV_STAGING=sync (no cp.async pipeline in the staged kernel), VT_GEMV_R=alt and
 *  VT_GEMV_G=1..4 (the integer kernel's rows per lane and row groups per CTA),
 *  VT_GEMV_LOAD=window (its q4_0/q4_1/q8_0 units, and 16-byte aligned q4_k units, by aligned
 *  16-byte chunk loads; q8_0 at batch 1 has them by default), VT_GEMV_LOAD=word (none),
 *  VT_GEMV_W=4 (its CTAs of 4 warps instead of 8), VT_GEMV_LUT=int (nf4, mxfp4 and nvfp4
 *  through the integer kernel: E2M1 codes are integers at twice their value, NF4 levels are
 *  taken at 1/16383 steps, within 2.9e-5 of each; not yet measured on a GPU, so off by default).
 *  Host, on CPUs with AVX2 but not AVX-512 (or VT_KERNELS_AVX512=0): batch 1-2 of nf4, nf4_dq,
 *  mxfp4, nvfp4 and q4_0 run in integers: x quantized once per call to int16 per 64 columns (each x
 *  off by at most 1/32768 of its group's largest |x|), NF4 levels taken at 1/16383 steps as on
 *  the device, E2M1 and q4_0 values exact; x with a NaN or an infinity, or with a 64-column group
 * whose |x| all lie below 2^-100, takes the f32 kernel instead, as does every call under
 *  VT_GEMV_CPU_INT=0 (the A/B switch; the f32 kernel is 1.2-1.8x slower there). On AVX-512
 *  CPUs with VNNI, batch 1-2 of q4_0 and q4_1 run in integers the same way (vpdpwssd; q4_1's
 *  minimum times the quantized x sum; 1.2-1.45x the f32 kernel).
 *  Returns 0 or an error above. */
int vt_gemv(const vt_weight *w, const float *x, float *y, int batch, void *stream);

/** Y = X W^T: X is [M][cols] of @p x_type (VT_DTYPE_F32 or F16), Y is [M][rows] of @p y_type
 *  (VT_DTYPE_F32 or F16). Same as vt_gemm_ex with VT_GEMM_AUTO and no workspace. */
int vt_gemm(const vt_weight *w, const void *X, vt_dtype x_type, void *Y, vt_dtype y_type,
            uint64_t M, void *stream);

/* ---- advanced: GEMM algorithm choice and a reusable workspace ----------------------------- */

typedef enum vt_gemm_algo {
    VT_GEMM_AUTO = 0,   /* device: cuBLAS path when a workspace is given, else MMA; host: CPU */
    VT_GEMM_MMA = 1,    /* device: dequantize tiles into shared memory, tensor-core mma.sync
                           m16n8k16 (f16 inputs, f32 accumulate); X f32 is rounded to f16.
                           f16 X takes the pipelined kernel (128 x 128 tiles, cp.async) where
                           its shared memory fits the device, else (and for f32 X, or with
                           VT_GEMM_MMA=tile in the environment) the 64 x 64 tile kernel */
    VT_GEMM_CUBLAS = 2, /* device: dequantize row tiles of W into the workspace's f16 buffer,
                           then cublasGemmEx (f32 accumulate); needs a workspace */
} vt_gemm_algo;

/** Opaque per-caller workspace: a cuBLAS handle and a device buffer reused by every call (no
 *  allocation per call). One workspace must not be used by two calls at once on different
 *  streams: calls on one stream are ordered, so reuse on a single stream is safe. */
typedef struct vt_kernel_ws vt_kernel_ws;

/** Create a workspace with a device tile buffer of @p device_bytes (0 = 64 MiB). Errors:
 *  VT_ENODEV (no CUDA), VT_ECUDA, -ENOMEM. The caller owns *out; free with
 *  vt_kernel_ws_destroy (which waits for nothing: the caller must have synchronized work that
 *  uses it). */
int vt_kernel_ws_create(uint64_t device_bytes, vt_kernel_ws **out);
/** Free a workspace; NULL is a no-op. */
void vt_kernel_ws_destroy(vt_kernel_ws *ws);

/** vt_gemm with an explicit algorithm and optional workspace (@p ws may be NULL except for
 *  VT_GEMM_CUBLAS). Host handles ignore @p algo and @p ws. Errors as vt_gemm, and -EINVAL when
 *  VT_GEMM_CUBLAS is asked without a workspace or the buffer cannot hold one row of W. */
int vt_gemm_ex(const vt_weight *w, const void *X, vt_dtype x_type, void *Y, vt_dtype y_type,
               uint64_t M, vt_gemm_algo algo, vt_kernel_ws *ws, void *stream);

/** Benchmark baseline: plain cuBLAS on an f16 matrix, Y[M][rows] (f32) = X[M][cols] (f16) W^T
 *  with W [rows][cols] f16, all device memory, cublasGemmEx with f32 compute on the workspace's
 *  handle (M = 1 is the GEMV baseline). Errors: -EINVAL, VT_ENODEV, VT_ECUDA. */
int vt_kernels_cublas_f16(vt_kernel_ws *ws, const uint16_t *W, const uint16_t *X, float *Y,
                          uint64_t rows, uint64_t cols, uint64_t M, void *stream);

/* ---- CPU reference kernels (the oracle of every test) -------------------------------------- */

/** Plain-C reference y = W x on a host handle: each row dequantized with vt_dequantize_ref, then
 *  a dot product accumulated in f64 (@p f64 != 0) or f32 in column order. Same shapes as vt_gemv
 *  (any batch >= 1). Allocates one row of scratch. */
int vt_gemv_ref(const vt_weight *w, const float *x, float *y, int batch, int f64);

/** Plain-C reference Y = X W^T on a host handle (X, Y f32; f64 accumulation when @p f64). */
int vt_gemm_ref(const vt_weight *w, const float *X, float *Y, uint64_t M, int f64);

/** Which CPU instruction set the fast host kernels use on this machine ("avx2+fma" or
 *  "scalar"); a static string. VT_KERNELS_SCALAR=1 in the environment forces "scalar". */
const char *vt_kernels_cpu_isa(void);

#ifdef __cplusplus
}
#endif
#endif /* VTSTORE_KERNELS_H */
