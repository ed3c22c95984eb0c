/* kernels/cpu/ref.c — the reference kernels: W is dequantized with the quantization library's
 * scalar oracle (vt_dequantize_ref) a row group at a time, then plain dot products in column
 * order, accumulated in f64 or f32. Slow on purpose; every fast path is tested against these. */
#include <errno.h>

#include "kern_internal.h"

typedef void (*ref_row_fn)(void *ctx, uint64_t row, const float *wrow);

/* Calls fn for each row of W with its dequantized values. */
static int ref_rows(const vt_weight *w, const char *who, ref_row_fn fn, void *ctx) {
    vt_kdesc d;
    int rc = vt_kdesc_init(&d, w, who);
    if (rc) return rc;
    if (w->location != VT_LOC_HOST)
        return vt_fail(-EINVAL, "%s: reference kernels need a host handle", who);
    uint64_t A = vt_quant_row_align(w->format, w->cols);
    if (A == 0) A = 1;
    float *buf = vt_malloc(A * w->cols * sizeof(float));
    if (!buf)
        return vt_fail(-ENOMEM, "%s: no memory for %llu scratch rows", who, (unsigned long long)A);
    vt_quant_params p = vt_weight_params(w);
    for (uint64_t r = 0; r < w->rows && !rc; r += A) {
        uint64_t n = w->rows - r < A ? w->rows - r : A;
        const uint8_t *src = (const uint8_t *)w->data + vt_quant_bytes(w->format, r, w->cols);
        rc = vt_dequantize_ref(w->format, &p, src, n, w->cols, buf);
        for (uint64_t i = 0; i < n && !rc; i++) fn(ctx, r + i, buf + i * w->cols);
    }
    vt_free(buf);
    return rc;
}

typedef struct ref_ctx {
    const float *x; /* [batch][cols] */
    float *y;       /* [batch][rows] */
    uint64_t batch, rows, cols;
    int f64;
} ref_ctx;

static void ref_dot_row(void *ctx, uint64_t r, const float *wr) {
    ref_ctx *c = ctx;
    for (uint64_t b = 0; b < c->batch; b++) {
        const float *x = c->x + b * c->cols;
        if (c->f64) {
            double s = 0.0;
            for (uint64_t k = 0; k < c->cols; k++) s += (double)wr[k] * (double)x[k];
            c->y[b * c->rows + r] = (float)s;
        } else {
            float s = 0.0f;
            for (uint64_t k = 0; k < c->cols; k++) s += wr[k] * x[k];
            c->y[b * c->rows + r] = s;
        }
    }
}

int vt_gemv_ref(const vt_weight *w, const float *x, float *y, int batch, int f64) {
    if (!x || !y || batch < 1)
        return vt_fail(-EINVAL, "vt_gemv_ref: NULL buffer or batch %d", batch);
    ref_ctx c = {x, y, (uint64_t)batch, w ? w->rows : 0, w ? w->cols : 0, f64};
    return ref_rows(w, "vt_gemv_ref", ref_dot_row, &c);
}

int vt_gemm_ref(const vt_weight *w, const float *X, float *Y, uint64_t M, int f64) {
    if (!X || !Y || M < 1) return vt_fail(-EINVAL, "vt_gemm_ref: NULL buffer or M = 0");
    ref_ctx c = {X, Y, M, w ? w->rows : 0, w ? w->cols : 0, f64};
    return ref_rows(w, "vt_gemm_ref", ref_dot_row, &c);
}
