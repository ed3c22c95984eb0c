/* quant/nf4.c — bitsandbytes NF4 (QLoRA): per block of 64, f32 absmax and 4-bit codes that
 * index the 16 NF4 values; element 2i in the high nibble. An all-zero block stores absmax 0 and
 * code 7 (the value 0) everywhere. Fields are accessed with memcpy: blocks may sit at odd
 * offsets inside 2:4 rows. */
#include <stddef.h>
#include <string.h>

#include "nf4_codes.h"
#include "nibble_lut.h"
#include "quant_internal.h"

/* bitsandbytes csrc/kernels.cu nf4_data, rounded to float. */
const float vt_nf4_values[16] = {
    -1.0f,
    -0.6961928009986877f,
    -0.5250730514526367f,
    -0.39491748809814453f,
    -0.28444138169288635f,
    -0.18477343022823334f,
    -0.09105003625154495f,
    0.0f,
    0.07958029955625534f,
    0.16093020141124725f,
    0.24611230194568634f,
    0.33791524171829224f,
    0.44070982933044434f,
    0.5626170039176941f,
    0.7229568362236023f,
    1.0f,
};

typedef float (*absmax_fn)(const float *x, uint64_t n);
typedef void (*codes_fn)(const float *x, float absmax, uint8_t *qs);

static void nf4_quantize_row(const float *x, void *dst, uint64_t cols, absmax_fn amax_f,
                             codes_fn codes_f) {
    uint8_t *out = dst;
    uint64_t nb = (cols + VT_QK_NF4 - 1) / VT_QK_NF4;
    for (uint64_t b = 0; b < nb; b++, out += sizeof(vt_block_nf4)) {
        const float *xb = x + b * VT_QK_NF4;
        float pad[VT_QK_NF4];
        uint64_t left = cols - b * VT_QK_NF4;
        if (left < VT_QK_NF4) {
            memset(pad, 0, sizeof pad);
            memcpy(pad, xb, left * sizeof(float));
            xb = pad;
        }
        float amax = amax_f(xb, VT_QK_NF4);
        memcpy(out, &amax, sizeof amax);
        uint8_t *qs = out + offsetof(vt_block_nf4, qs);
        if (amax == 0.0f)
            memset(qs, 0x77, VT_QK_NF4 / 2);
        else
            codes_f(xb, amax, qs);
    }
}

static void nf4_quantize_ref(const float *x, void *dst, uint64_t cols, const vt_quant_params *p) {
    nf4_quantize_row(x, dst, cols, vt_absmax_ref, vt_nf4_block_codes_ref);
}

static void nf4_quantize_fast(const float *x, void *dst, uint64_t cols, const vt_quant_params *p) {
    nf4_quantize_row(x, dst, cols, vt_absmax_fast, vt_nf4_block_codes_fast);
}

static void nf4_dequantize_ref(const void *src, float *y, uint64_t cols, const vt_quant_params *p) {
    const uint8_t *in = src;
    for (uint64_t j = 0; j < cols; j++) {
        const uint8_t *blk = in + (j / VT_QK_NF4) * sizeof(vt_block_nf4);
        float amax;
        memcpy(&amax, blk, sizeof amax);
        uint64_t e = j % VT_QK_NF4;
        uint8_t byte = blk[offsetof(vt_block_nf4, qs) + e / 2];
        uint8_t code = (e % 2 == 0) ? byte >> 4 : byte & 15;
        y[j] = amax * vt_nf4_values[code];
    }
}

/* Table lookup then one multiply by absmax: the same products as the reference. */
static void nf4_dequantize_fast(const void *src, float *y, uint64_t cols,
                                const vt_quant_params *p) {
    const uint8_t *in = src;
    uint64_t nb = (cols + VT_QK_NF4 - 1) / VT_QK_NF4;
    for (uint64_t b = 0; b < nb; b++, in += sizeof(vt_block_nf4)) {
        float amax;
        memcpy(&amax, in, sizeof amax);
        const uint8_t *qs = in + offsetof(vt_block_nf4, qs);
        float *yb = y + b * VT_QK_NF4;
        uint64_t left = cols - b * VT_QK_NF4;
        if (left >= VT_QK_NF4) {
            vt_lut16_expand(qs, VT_QK_NF4 / 2, vt_nf4_values, amax, yb, 1);
        } else {
            for (uint64_t e = 0; e < left; e++)
                yb[e] = amax * vt_nf4_values[(e % 2 == 0) ? qs[e / 2] >> 4 : qs[e / 2] & 15];
        }
    }
}

const vt_qrow_ops vt_qops_nf4 = {
    .quantize_ref = nf4_quantize_ref,
    .dequantize_ref = nf4_dequantize_ref,
    .quantize = nf4_quantize_fast,
    .dequantize = nf4_dequantize_fast,
};
