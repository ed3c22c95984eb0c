/*
 * vtstore/quant.h — quantization formats: quantize and dequantize row ranges of a 2-D tensor,
 * measure the error, and choose a format per tensor.
 *
 * A tensor is viewed as rows x cols (cols = last dimension). Each row is quantized
 * independently into whole blocks (padded with zeros, see blocks.h), except nf4_dq whose
 * super-blocks span 256 blocks of the row-major block sequence. Any function taking a row range
 * requires the first row to be a multiple of vt_quant_row_align(fmt, cols).
 *
 *     vt_quant_params p;
 *     vt_quant_params_init(&p);
 *     vt_quant_observe(VT_FMT_NVFP4, &p, w, rows * cols); // sets p.tensor_scale (unset before)
 *     size_t n = vt_quant_bytes(VT_FMT_NVFP4, rows, cols);
 *     void *q = malloc(n);
 *     int rc = vt_quantize(VT_FMT_NVFP4, &p, w, rows, cols, q, 0);     // 0 = all threads
 *     rc = vt_dequantize(VT_FMT_NVFP4, &p, q, rows, cols, back, 0);
 *     vt_metrics m; vt_metrics_compute(w, back, rows * cols, &m);       // m.sqnr_db ~ 20.4
 *
 * A format value is a vt_format optionally OR-ed with VT_FMT_SPARSE24 (2:4 structured
 * sparsity composed with the base format).
 */
#ifndef VTSTORE_QUANT_H
#define VTSTORE_QUANT_H

#include <stddef.h>
#include <stdint.h>

#include "vtstore/core.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum vt_format {
    VT_FMT_F32 = 0,
    VT_FMT_F16 = 1,
    VT_FMT_BF16 = 2,
    VT_FMT_Q8_0 = 3,
    VT_FMT_Q4_0 = 4,
    VT_FMT_Q4_1 = 5,
    VT_FMT_Q4_K = 6,
    VT_FMT_Q6_K = 7,
    VT_FMT_INT8 = 8,
    VT_FMT_NF4 = 9,
    VT_FMT_NF4_DQ = 10,
    VT_FMT_NVFP4 = 11,
    VT_FMT_MXFP4 = 12,
    VT_FMT_AWQ_INT4 = 13,
    VT_FMT_COUNT
} vt_format;

/** Flag OR-ed into a format: 2:4 structured sparsity over the base format. Not available with
 *  nf4_dq (its super-blocks cross rows) — VT_EUNSUPPORTED. */
#define VT_FMT_SPARSE24 0x100u
#define VT_FMT_BASE(f)  ((vt_format)((f)&0xffu))

/** Static description of a base format. */
typedef struct vt_format_info {
    const char *name;       /* "q4_0", "nf4", ... as used on the command line and on disk */
    uint32_t block_elems;   /* elements per block (1 for f32/f16/bf16) */
    uint32_t block_bytes;   /* bytes per block */
    double bits_per_weight; /* block_bytes * 8 / block_elems (nf4_dq: per super-block) */
    int can_quantize;       /* 0 for q4_k/q6_k: read (dequantize) only */
    int needs_params;       /* 1 if vt_quant_params matter (nvfp4 tensor scale, awq scales) */
} vt_format_info;

/** Description of the base of @p fmt, or NULL if out of range. Pointer is static. */
const vt_format_info *vt_format_get(uint32_t fmt);
/** Parse "nf4", "q4_0", "nvfp4+2:4" (sparse suffix "+2:4" or "+sparse"). 0 or -EINVAL. */
int vt_format_from_name(const char *name, uint32_t *fmt);
/** Writes the name of @p fmt ("nf4+2:4") into buf; returns buf. */
const char *vt_format_name(uint32_t fmt, char *buf, size_t cap);
/** Effective bits per weight of @p fmt for a row of @p cols elements (padding and 2:4 index
 *  bits included). */
double vt_format_bpw(uint32_t fmt, uint64_t cols);

/** Tensor-level parameters some formats need besides the blocks. Stored in the tensor record.
 *  nvfp4's tensor_scale has no default: the blocks decode only with the scale they were made
 *  with, so every nvfp4 call refuses it unset (NaN) rather than assume one. Set it from
 *  vt_quant_observe before quantizing, and to that same value (a stored tensor's record has it:
 *  vt_store_tensor_params) for vt_dequantize and the kernels (vt_weight_host). */
typedef struct vt_quant_params {
    float tensor_scale;         /* nvfp4: global f32 scale = amax / (6 * 448), NaN = unset;
                                   ignored by the other formats (vt_quant_observe sets it to 1) */
    float amax;                 /* running max |x| gathered by vt_quant_observe */
    const float *channel_scale; /* awq: [cols] AWQ scales s (borrowed; caller keeps it alive) */
    uint64_t channel_count;     /* awq: cols */
} vt_quant_params;

/** Reset @p p (NULL is a no-op): tensor_scale unset (NaN), amax 0, no channel scales. */
void vt_quant_params_init(vt_quant_params *p);
/** Accumulate statistics of @p n values (call over the whole tensor before quantizing, in any
 *  number of pieces) and update derived fields: tensor_scale, for nvfp4 amax / (6 * 448) (1 when
 *  amax is 0), for the other formats 1. Returns VT_ENONFINITE on NaN/Inf (detail names the
 *  index; @p p is left as it was), -EINVAL (invalid format, NULL). */
int vt_quant_observe(uint32_t fmt, vt_quant_params *p, const float *x, uint64_t n);

/** Row granularity: a row range passed to the functions below must start at a multiple of it
 *  (1 except nf4_dq, where it is 256 / gcd(256, blocks per row)). */
uint64_t vt_quant_row_align(uint32_t fmt, uint64_t cols);
/** Bytes of a row range of @p rows rows starting at an aligned row (for nf4_dq a range that is
 *  not the tensor's end must hold a whole number of super-blocks: pass aligned row counts).
 *  0 when the size does not fit in 64 bits. */
uint64_t vt_quant_bytes(uint32_t fmt, uint64_t rows, uint64_t cols);
/** Bytes of one row for row-blocked formats (0 for nf4_dq). */
uint64_t vt_quant_row_bytes(uint32_t fmt, uint64_t cols);

/** Quantize rows x cols f32 values into @p dst (vt_quant_bytes bytes). Fast path: SIMD where it
 *  pays, threaded over rows/blocks on @p nthreads (0 = all). Bit-identical to the _ref version.
 *  Errors: VT_ENONFINITE (NaN/Inf; detail gives row/col), -ERANGE (a finite value the format
 *  cannot hold, detail gives value, row/col and the rule: f16 |x| >= 65520; bf16 values that round
 *  to Inf; q8_0 / q4_0 / q4_1 blocks whose f16 scale or minimum would overflow, e.g. q8_0 max|x|
 *  >= 65520 x 127, where ggml stores an Inf scale and the block reads back as NaN; awq_int4 groups
 *  whose f16 scale exceeds 65504, or that would read back past FLT_MAX under channel scales
 *  below 3e-33; nvfp4 |x| > 2784 x tensor_scale, where the e4m3 block scale saturates, or a
 *  block that would read back past FLT_MAX; int8 values within about 1e-7 of FLT_MAX, whose f32
 *  scale reads back as Inf; nf4, nf4_dq and mxfp4 hold every finite value). When a call has
 *  both kinds of error the first run of rows (of blocks, for rows of 65536 values and more) that
 *  has one is reported, a NaN/Inf before a range error within it, whatever the threading.
 *  VT_EUNSUPPORTED (read-only format, sparse nf4_dq), -EINVAL (bad arguments, missing params:
 *  awq_int4 without channel scales; nvfp4 with @p p NULL or its tensor_scale unset, i.e. NaN,
 *  or not positive and finite; the message names the parameter), -ENOMEM. */
int vt_quantize(uint32_t fmt, const vt_quant_params *p, const float *src, uint64_t rows,
                uint64_t cols, void *dst, int nthreads);
/** The checks of vt_quantize without quantizing: 0 when vt_quantize would accept @p src for
 *  @p fmt, else its error (VT_ENONFINITE, -ERANGE naming value, row and column, or the argument
 *  errors). For callers that quantize elsewhere, e.g. before a device KV cache append, which
 *  cannot refuse (attn.h). Single-threaded; no allocation except one row for 2:4 formats. */
int vt_quant_check(uint32_t fmt, const vt_quant_params *p, const float *src, uint64_t rows,
                   uint64_t cols);
/** Scalar reference quantizer (the oracle). Same contract as vt_quantize. */
int vt_quantize_ref(uint32_t fmt, const vt_quant_params *p, const float *src, uint64_t rows,
                    uint64_t cols, void *dst);
/** Dequantize to f32 (exactly cols values per row). Fast path, equal to the _ref version.
 *  Errors: -EINVAL (bad arguments, missing params as for vt_quantize: nvfp4 needs the
 *  tensor_scale the blocks were quantized with and refuses it unset), VT_EUNSUPPORTED, -ENOMEM. */
int vt_dequantize(uint32_t fmt, const vt_quant_params *p, const void *src, uint64_t rows,
                  uint64_t cols, float *dst, int nthreads);
int vt_dequantize_ref(uint32_t fmt, const vt_quant_params *p, const void *src, uint64_t rows,
                      uint64_t cols, float *dst);

/** The 16 NF4 code values (bitsandbytes / QLoRA), ascending, NF4[7] = 0. */
extern const float vt_nf4_values[16];

/* ---- AWQ ---------------------------------------------------------------------------------- */

/** Search AWQ per-input-channel scales for W (rows x cols, f32) given activation statistics
 *  @p act_mean_abs ([cols], mean |x_j| over calibration tokens): s_j = act_j^alpha normalised,
 *  alpha on a grid of @p grid points in [0, 1], minimising the activation-weighted output error
 *  sum_ij (act_j * (W_ij - deq(q(W_ij s_j)) / s_j))^2 over (up to @p max_rows sampled) rows.
 *  Writes scales[cols] and the chosen alpha. */
int vt_awq_search(const float *w, uint64_t rows, uint64_t cols, const float *act_mean_abs, int grid,
                  uint64_t max_rows, float *scales, float *alpha_out);

/* ---- metrics ------------------------------------------------------------------------------ */

typedef struct vt_metrics {
    double mse, mae, rmse;
    double sqnr_db;             /* 10 log10(sum x^2 / sum (x - y)^2); +inf when exact */
    double cosine;              /* cosine similarity of x and y */
    double max_err;             /* max |x - y| */
    double p50, p90, p99, p999; /* percentiles of |x - y| */
    double outlier_frac;        /* fraction of |x - y| > 6 * rmse */
    uint64_t n;
} vt_metrics;

/** Error metrics of approximation @p y against reference @p x (n values; sums in f64). */
int vt_metrics_compute(const float *x, const float *y, uint64_t n, vt_metrics *out);
/** 6.02 * bits + 1.76: SQNR bound of a uniform quantizer on a full-scale sinusoid. */
double vt_sqnr_theoretical(double bits);

/* ---- automatic choice --------------------------------------------------------------------- */

typedef struct vt_choose_target {
    double min_sqnr_db;   /* > 0: cheapest format reaching at least this SQNR */
    double max_bits;      /* > 0: best SQNR within this bits-per-weight budget */
    uint32_t candidates;  /* bit mask of (1u << vt_format) to consider; 0 = all writable */
    uint64_t sample_rows; /* rows sampled for the trial quantizations (0 = all) */
} vt_choose_target;

/** Pick the format for W (rows x cols) that meets @p t; writes the format and the metrics of the
 *  trial. Falls back to f16 (or f32) when nothing quantized meets the SQNR target. */
int vt_quant_choose(const float *w, uint64_t rows, uint64_t cols, const vt_choose_target *t,
                    uint32_t *fmt_out, vt_metrics *metrics_out);

#ifdef __cplusplus
}
#endif
#endif /* VTSTORE_QUANT_H */
