/*
 * vtstore/weight.h — the weight handle shared by the streamer (tier.h), which produces it, and
 * the kernels (kernels.h), which consume it. A handle describes quantized bytes wherever they
 * live (host or device memory) without owning them.
 *
 *     vt_weight w;
 *     vt_streamer_acquire(st, "blk.0.attn_q.weight", &w);   // w.data in VRAM (or host)
 *     vt_gemv(&w, x, y, 1, stream);                          // runs where w.data lives
 *     vt_streamer_release(st, &w);
 *
 * A handle can also be made by hand over a caller buffer with vt_weight_host().
 */
#ifndef VTSTORE_WEIGHT_H
#define VTSTORE_WEIGHT_H

#include <math.h>
#include <stdint.h>

#include "vtstore/quant.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum vt_location {
    VT_LOC_HOST = 0,   /* ordinary or pinned host memory */
    VT_LOC_DEVICE = 1, /* CUDA device memory (a device tier without a GPU hands out HOST) */
} vt_location;

typedef struct vt_weight {
    const void *data; /* quantized rows [row0, row0 + rows), vt_quant_bytes(format, rows, cols) */
    const float *aux; /* awq: [cols] per-input-channel scales, same location as data; else NULL */
    vt_location location; /* where data and aux live */
    uint32_t format;      /* vt_format, optionally | VT_FMT_SPARSE24 */
    uint64_t rows, cols;  /* rows held by this handle; cols = full row length */
    uint64_t row0;        /* first row of the tensor held (0 unless streamed chunk-wise) */
    uint64_t total_rows;  /* rows of the whole tensor */
    uint64_t bytes;       /* bytes at data */
    float tensor_scale;   /* nvfp4 global scale (NaN: unset, refused; 1 otherwise) */
    uint64_t token;       /* the streamer's opaque name for this acquisition; 0 if hand-made */
} vt_weight;

/** Fill @p w to describe caller-owned host bytes (no copy; @p data must outlive the handle).
 *  @p p may be NULL for formats without tensor parameters. nvfp4 takes p->tensor_scale, the
 *  scale the blocks were quantized with: without it (p NULL, or the unset NaN of
 *  vt_quant_params_init) the handle's tensor_scale is NaN and the kernels refuse it
 *  (-EINVAL naming tensor_scale). */
static inline void vt_weight_host(vt_weight *w, const void *data, uint32_t format, uint64_t rows,
                                  uint64_t cols, const vt_quant_params *p) {
    w->data = data;
    w->aux = p ? p->channel_scale : 0;
    w->location = VT_LOC_HOST;
    w->format = format;
    w->rows = rows;
    w->cols = cols;
    w->row0 = 0;
    w->total_rows = rows;
    w->bytes = vt_quant_bytes(format, rows, cols);
    w->tensor_scale = VT_FMT_BASE(format) != VT_FMT_NVFP4 ? 1.0f : p ? p->tensor_scale : NAN;
    w->token = 0;
}

/** The quantization parameters a handle implies (for vt_dequantize on host data). */
static inline vt_quant_params vt_weight_params(const vt_weight *w) {
    vt_quant_params p;
    vt_quant_params_init(&p);
    p.tensor_scale = w->tensor_scale;
    p.channel_scale = w->aux;
    p.channel_count = w->aux ? w->cols : 0;
    return p;
}

#ifdef __cplusplus
}
#endif
#endif /* VTSTORE_WEIGHT_H */
