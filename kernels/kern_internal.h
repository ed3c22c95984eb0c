/* kernels/kern_internal.h — private interface of the kernels module: the host-side decoder
 * table shared by the CPU kernels, and the C entry points of the CUDA kernels (kernels/cuda)
 * that the dispatcher calls. No CUDA types here: the kernels/cuda .cu files implement these with C
 * linkage. */
#ifndef VT_KERN_INTERNAL_H
#define VT_KERN_INTERNAL_H

#include <stdint.h>

#include "vtstore/blocks.h"
#include "vtstore/kernels.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Host decode granularity: output columns per chunk (a multiple of every block size, and the
 * 2:4 expansion of 256 compressed values). */
#define VT_KC 512

/* What a decoder needs to find row r's bytes. */
typedef struct vt_kdesc {
    const uint8_t *data; /* [rows] rows of row_bytes (nf4_dq: super-blocks) */
    uint32_t fmt;        /* base format */
    int sparse;          /* 2:4 */
    uint64_t rows, cols; /* cols of the dense row */
    uint64_t row_bytes;  /* bytes per row (0 for nf4_dq) */
    uint64_t bpr;        /* nf4_dq: 64-element blocks per row */
    uint64_t ccols;      /* sparse: compressed values per row = ceil(cols/4)*2 */
    uint64_t idx_off;    /* sparse: offset of the index bytes within a row */
    float tensor_scale;  /* nvfp4 */
    const float *aux;    /* awq: [cols] channel scales */
} vt_kdesc;

/* Decode dense values [k0, k0 + n) of row @p row into out[0..n) (f32), k0 a multiple of VT_KC
 * and n <= VT_KC; out must hold VT_KC floats (whole blocks may be written past n). Values are
 * those of vt_dequantize_ref. Sparse rows expand to zeros where nothing is kept. */
typedef void (*vt_kdecode_fn)(const vt_kdesc *d, uint64_t row, uint64_t k0, uint32_t n, float *out);

/** Fill @p d from a weight handle. Returns 0 or -EINVAL (also for an nvfp4 tensor_scale or, on a
 *  host handle, an awq_int4 channel scale that is not positive and finite), -EOVERFLOW (sizes
 *  past 64 bits) or VT_EUNSUPPORTED, with detail. */
int vt_kdesc_init(vt_kdesc *d, const vt_weight *w, const char *who);
/** The decoder of d->fmt: when @p fast, the AVX-512 one (decode_avx512.c, where it beats AVX2 and
 *  vt_kcpu_avx512) or the AVX2+FMA one (vt_kcpu_avx2), else scalar. */
vt_kdecode_fn vt_kdecode_get(const vt_kdesc *d, int fast);
/** Scalar decoder of a base format over a dense (non-sparse) layout; for the sparse wrapper. */
vt_kdecode_fn vt_kdecode_dense(uint32_t base_fmt, int fast);
/** 1 when the AVX2+FMA paths are used (CPU support and not VT_KERNELS_SCALAR). */
int vt_kcpu_avx2(void);

/* Rows a fused call handles together (x loads are shared across them; the AVX2 kernel takes 8 at
 * batch 1, the AVX-512 one up to 4). */
#define VT_KFUSE_ROWS 8
/* The batch vectors as a fused kernel reads them, prepared once per vt_gemv call
 * (vt_kfused_prep): each vector's elements reordered within groups as the kernel consumes the
 * codes (so no shuffles per row), awq's x divided by the channel scales, and the batch padded
 * with zero vectors to one the kernel has a shape for, laid out as that kernel reads it
 * (gemv_fused.h, VT_KX_*). When nothing needs doing, x is the caller's vectors and mem is NULL. */
typedef struct vt_kx {
    const float *x; /* npad vectors of cols: [npad][cols] or interleaved [cols/32][npad][32] */
    int batch;      /* vectors whose outputs are written */
    int npad;       /* vectors in x (>= batch; the extra ones are zero) */
    float *mem;     /* owned buffer behind x (and xq, xs), or NULL */
    /* The integer form (batches 1-2; AVX2: nf4, nf4_dq, mxfp4, nvfp4, q4_0; AVX-512 with VNNI:
     * q4_0, q4_1), else NULL:
     * per vector b and 64-column group g, 64 int16 codes xq[(b n64 + g) 64 ..] in the kernel's
     * order and their scale xs[b n64 + g] (x ~ code xs); itab: the int16 weight values' low bytes,
     * then their high bytes, for the 16 codes. */
    const int16_t *xq;
    const float *xs;
    uint64_t n64;
    uint8_t itab[32];
} vt_kx;
/* Prepare x[batch][cols] for d's fused kernel (the one vt_kfused_rows will use). Returns 0 or
 * -ENOMEM (no buffer: px is then unusable and needs no release). Release with vt_kfused_unprep. */
int vt_kfused_prep(const vt_kdesc *d, const float *x, int batch, vt_kx *px);
/* Free what vt_kfused_prep allocated; NULL-safe on mem. */
void vt_kfused_unprep(vt_kx *px);
/* Fused GEMV of rows [r0, r0 + nr), nr <= VT_KFUSE_ROWS, over their leading whole blocks, against
 * the prepared vectors: out[i * px->batch + b] = partial sum of row r0 + i against vector b;
 * returns the columns covered (a multiple of the block size, the same for every row) or 0 when
 * there is no fused path. Uses the AVX-512 kernel (q4_0, q4_1, q4_k, q6_k, nf4, nf4_dq, mxfp4,
 * nvfp4, awq_int4, q8_0, int8) when the CPU has AVX-512F, else the AVX2 one (the 4-bit formats
 * only). Dense layouts only. */
uint64_t vt_kfused_rows(const vt_kdesc *d, uint64_t r0, int nr, const vt_kx *px, float *out);
/* The AVX2 multi-row kernel and its preparation (same formats and contract); the caller checks
 * vt_kcpu_avx2. */
uint64_t vt_kfused_rows_avx2(const vt_kdesc *d, uint64_t r0, int nr, const vt_kx *px, float *out);
int vt_kfused_prep_avx2(const vt_kdesc *d, const float *x, int batch, vt_kx *px);
/* 1 when vt_kfused_prep would give d's batch-vector GEMV an integer form (x as int16 codes per
 * 64 columns, kernels.h "CPU GEMV"): batch 1-2, VT_GEMV_CPU_INT not 0, and the AVX2 path with
 * nf4/nf4_dq/mxfp4/nvfp4/q4_0 or the AVX-512 path on a CPU with AVX512-VNNI with q4_0/q4_1. The
 * call still falls back to floats for x with a non-finite value or a 64-column group of magnitude
 * below 2^-100. */
int vt_kfused_xint(const vt_kdesc *d, int batch);
/* The AVX-512 kernel itself and its preparation; the caller checks the CPU (vt_kcpu_avx512). */
uint64_t vt_kfused_rows512(const vt_kdesc *d, uint64_t r0, int nr, const vt_kx *px, float *out);
int vt_kfused_prep512(const vt_kdesc *d, const float *x, int batch, vt_kx *px);
/* vt_e4m3_to_f32 and vt_e8m0_to_f32 of every byte (block scales without a call per block). */
extern const float vt_ke4m3_f32[256], vt_ke8m0_f32[256];
/** 1 when the AVX-512 fused GEMV is used (AVX-512F, the AVX2 paths on, VT_KERNELS_AVX512 not 0). */
int vt_kcpu_avx512(void);

/* f32 dot product used by the host GEMV for columns the fused kernel leaves (AVX2+FMA when
 * available). */
float vt_kdot_f32(const float *a, const float *b, uint32_t n);

/* Host kernels (w->location == VT_LOC_HOST). */
int vt_cpu_dequant(const vt_weight *w, vt_dtype out_type, void *out);
int vt_cpu_gemv(const vt_weight *w, const float *x, float *y, int batch);
int vt_cpu_gemm(const vt_weight *w, const void *X, vt_dtype xt, void *Y, vt_dtype yt, uint64_t M);

/* CUDA entry points (kernels/cuda/ .cu files; stubs in kernels/cuda_stub.c when built without
 * CUDA). Arguments are validated by the dispatcher; these return 0, VT_ECUDA or VT_EUNSUPPORTED. */
int vt_cuda_available(void);
int vt_cuda_dequant(const vt_kdesc *d, vt_dtype out_type, void *out, void *stream);
int vt_cuda_gemv(const vt_kdesc *d, const float *x, float *y, int batch, void *stream);
int vt_cuda_gemm_mma(const vt_kdesc *d, const void *X, vt_dtype xt, void *Y, vt_dtype yt,
                     uint64_t M, void *stream);
int vt_cuda_gemm_cublas(const vt_kdesc *d, const void *X, vt_dtype xt, void *Y, vt_dtype yt,
                        uint64_t M, vt_kernel_ws *ws, void *stream);
int vt_cuda_ws_create(uint64_t bytes, vt_kernel_ws **out);
void vt_cuda_ws_destroy(vt_kernel_ws *ws);
int vt_cuda_cublas_f16(vt_kernel_ws *ws, const uint16_t *W, const uint16_t *X, float *Y,
                       uint64_t rows, uint64_t cols, uint64_t M, void *stream);

#ifdef __cplusplus
}
#endif
#endif
