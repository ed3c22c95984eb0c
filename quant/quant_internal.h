/* quant/quant_internal.h — per-format row operations behind the dispatch in format.c.
 * Not public. Each row-blocked format provides a reference and a fast version of quantizing and
 * dequantizing ONE row of `cols` values (row padded with zeros to whole blocks). The fast
 * versions must produce bit-identical output to the reference ones. Row functions never see
 * NaN/Inf: the dispatcher rejects non-finite input before calling them. */
#ifndef VT_QUANT_INTERNAL_H
#define VT_QUANT_INTERNAL_H

#include "vtstore/blocks.h"
#include "vtstore/quant.h"

typedef void (*vt_qrow_fn)(const float *x, void *dst, uint64_t cols, const vt_quant_params *p);
typedef void (*vt_dqrow_fn)(const void *src, float *y, uint64_t cols, const vt_quant_params *p);

typedef struct vt_qrow_ops {
    vt_qrow_fn quantize_ref; /* NULL for read-only formats (q4_k, q6_k) */
    vt_dqrow_fn dequantize_ref;
    vt_qrow_fn quantize;    /* fast; may equal the ref */
    vt_dqrow_fn dequantize; /* fast; may equal the ref */
} vt_qrow_ops;

/* quant-A (ggml_formats.c, int8.c, plain.c): f32, f16, bf16, q8_0, q4_0, q4_1, q4_k, q6_k, int8 */
extern const vt_qrow_ops vt_qops_f32, vt_qops_f16, vt_qops_bf16, vt_qops_q8_0, vt_qops_q4_0,
    vt_qops_q4_1, vt_qops_q4_k, vt_qops_q6_k, vt_qops_int8;
/* quant-B (nf4.c, fp4.c, awq.c): nf4, nvfp4, mxfp4, awq_int4. awq rows get p->channel_scale
 * and quantize x[j] * s[j]; dequantize returns w'[j] / s[j]. */
extern const vt_qrow_ops vt_qops_nf4, vt_qops_nvfp4, vt_qops_mxfp4, vt_qops_awq;

/* nf4_dq (nf4_dq.c, quant-B): whole row ranges (first row aligned, see vt_quant_row_align). */
int vt_nf4dq_quantize(const float *src, uint64_t rows, uint64_t cols, void *dst, int ref,
                      int nthreads);
int vt_nf4dq_dequantize(const void *src, uint64_t rows, uint64_t cols, float *dst, int ref,
                        int nthreads);
uint64_t vt_nf4dq_bytes(uint64_t rows, uint64_t cols);

/* 2:4 sparsity (sparse24.c, quant-B), over a base row-blocked format's ops. */
uint64_t vt_sparse24_row_bytes(uint32_t base_fmt, uint64_t cols);
/* Returns 0, VT_EUNSUPPORTED, or (when @p bad is not NULL: the range check on) -ERANGE with *bad
 * the dense column of a kept value the base format cannot hold (vt_qrange_first; nothing is set
 * in vt_last_error). */
int vt_sparse24_quantize_row(const vt_qrow_ops *ops, uint32_t base_fmt, const float *x, void *dst,
                             uint64_t cols, const vt_quant_params *p, int ref, uint64_t *bad);
void vt_sparse24_dequantize_row(const vt_qrow_ops *ops, uint32_t base_fmt, const void *src,
                                float *y, uint64_t cols, const vt_quant_params *p, int ref);

/* fp4.c: the nvfp4 tensor scale the row ops use: p's if positive and finite, else 1 (the
 * dispatcher refuses those, so only the row-op tests see it). */
float vt_nvfp4_tensor_scale(const vt_quant_params *p);

/* range.c: the index of the first value in x[0..n) (a run of whole blocks from a block start,
 * in the base format's row layout: awq's x before the channel scales p->channel_scale[0..n)) that
 * @p base cannot hold because its value or block scale would overflow or saturate (the largest
 * |x| of the first such block), or n; and a phrase naming the rule for messages. */
uint64_t vt_qrange_first(uint32_t base, const float *x, uint64_t n, const vt_quant_params *p);
const char *vt_qrange_rule(uint32_t base);
/* 1 when no block of a run whose largest |x| is @p amax can be out of @p base's range (the usual
 * case, so that vt_qrange_first is skipped); awq: smin, smax bound its channel scales. */
int vt_qrange_safe(uint32_t base, float amax, const vt_quant_params *p, float smin, float smax);

/* format.c (quant-A): the ops of a base format, or NULL (nf4_dq has none). */
const vt_qrow_ops *vt_qops_get(uint32_t base_fmt);

#endif
