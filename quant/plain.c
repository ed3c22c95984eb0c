/* quant/plain.c — the unquantized formats f32, f16 and bf16 as row ops (f16 and bf16 round to
 * nearest even through the core conversions). */
#include <string.h>

#include "quant_internal.h"

static void f32_q(const float *x, void *dst, uint64_t cols, const vt_quant_params *p) {
    memcpy(dst, x, cols * sizeof(float));
}
static void f32_dq(const void *src, float *y, uint64_t cols, const vt_quant_params *p) {
    memcpy(y, src, cols * sizeof(float));
}

static void f16_q(const float *x, void *dst, uint64_t cols, const vt_quant_params *p) {
    vt_f32_to_f16_row(x, dst, cols);
}
static void f16_dq(const void *src, float *y, uint64_t cols, const vt_quant_params *p) {
    vt_f16_to_f32_row(src, y, cols);
}

static void bf16_q(const float *x, void *dst, uint64_t cols, const vt_quant_params *p) {
    vt_f32_to_bf16_row(x, dst, cols);
}
static void bf16_dq(const void *src, float *y, uint64_t cols, const vt_quant_params *p) {
    vt_bf16_to_f32_row(src, y, cols);
}

const vt_qrow_ops vt_qops_f32 = {f32_q, f32_dq, f32_q, f32_dq};
const vt_qrow_ops vt_qops_f16 = {f16_q, f16_dq, f16_q, f16_dq};
const vt_qrow_ops vt_qops_bf16 = {bf16_q, bf16_dq, bf16_q, bf16_dq};
