/* quant/kquants.c — GGUF Q4_K and Q6_K (super-blocks of 256), read only: dequantization follows
 * ggml's dequantize_row_q4_K / dequantize_row_q6_K (with get_scale_min_k4) operation for
 * operation, so the values are bit-exact. There is no quantizer: import from GGUF keeps the
 * blocks as they are (vt_quantize returns VT_EUNSUPPORTED). */
#include "qrow_common.h"

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("fp-contract=off") /* d1 * q - m1 rounds twice, as in ggml */
#endif

/* 6-bit scale and min of sub-block j (0..7) from the 12 packed bytes. */
static inline void scale_min_k4(int j, const uint8_t *q, uint8_t *d, uint8_t *m) {
    if (j < 4) {
        *d = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *d = (uint8_t)((q[j + 4] & 0xf) | ((q[j - 4] >> 6) << 4));
        *m = (uint8_t)((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
    }
}

static void q4_k_dqblock(const void *vx, float *y) {
    uint16_t dh, mh;
    memcpy(&dh, VT_QA_CF(vt_block_q4_k, vx, d), 2);
    memcpy(&mh, VT_QA_CF(vt_block_q4_k, vx, dmin), 2);
    const float d = vt_f16_to_f32(dh), min = vt_f16_to_f32(mh);
    const uint8_t *q = VT_QA_CF(vt_block_q4_k, vx, qs);
    for (int j = 0, is = 0; j < VT_QK_K; j += 64, is += 2, q += 32) {
        uint8_t sc, m;
        scale_min_k4(is, VT_QA_CF(vt_block_q4_k, vx, scales), &sc, &m);
        const float d1 = d * sc, m1 = min * m;
        scale_min_k4(is + 1, VT_QA_CF(vt_block_q4_k, vx, scales), &sc, &m);
        const float d2 = d * sc, m2 = min * m;
        for (int l = 0; l < 32; l++) *y++ = d1 * (q[l] & 0xf) - m1;
        for (int l = 0; l < 32; l++) *y++ = d2 * (q[l] >> 4) - m2;
    }
}

static void q6_k_dqblock(const void *vx, float *y) {
    uint16_t dh;
    memcpy(&dh, VT_QA_CF(vt_block_q6_k, vx, d), 2);
    const float d = vt_f16_to_f32(dh);
    const uint8_t *ql = VT_QA_CF(vt_block_q6_k, vx, ql), *qh = VT_QA_CF(vt_block_q6_k, vx, qh);
    const int8_t *sc = (const int8_t *)VT_QA_CF(vt_block_q6_k, vx, scales);
    for (int n = 0; n < VT_QK_K; n += 128, y += 128, ql += 64, qh += 32, sc += 8) {
        for (int l = 0; l < 32; l++) {
            const int is = l / 16;
            const int8_t q1 = (int8_t)((ql[l] & 0xf) | (((qh[l] >> 0) & 3) << 4)) - 32;
            const int8_t q2 = (int8_t)((ql[l + 32] & 0xf) | (((qh[l] >> 2) & 3) << 4)) - 32;
            const int8_t q3 = (int8_t)((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
            const int8_t q4 = (int8_t)((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
            y[l] = d * sc[is] * q1;
            y[l + 32] = d * sc[is + 2] * q2;
            y[l + 64] = d * sc[is + 4] * q3;
            y[l + 96] = d * sc[is + 6] * q4;
        }
    }
}

static void q4_k_dequantize(const void *src, float *y, uint64_t cols, const vt_quant_params *p) {
    vt_qa_dequantize_row(src, y, cols, 0, VT_QK_K, sizeof(vt_block_q4_k), q4_k_dqblock);
}
static void q6_k_dequantize(const void *src, float *y, uint64_t cols, const vt_quant_params *p) {
    vt_qa_dequantize_row(src, y, cols, 0, VT_QK_K, sizeof(vt_block_q6_k), q6_k_dqblock);
}

/* Read-only: no quantizers; the scalar loops are the fast path too. */
const vt_qrow_ops vt_qops_q4_k = {NULL, q4_k_dequantize, NULL, q4_k_dequantize};
const vt_qrow_ops vt_qops_q6_k = {NULL, q6_k_dequantize, NULL, q6_k_dequantize};
