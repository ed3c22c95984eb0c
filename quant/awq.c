/* quant/awq.c — AWQ int4 row ops: per group of 128 along the row, asymmetric 4-bit codes with a
 * zero point on w'_j = w_j * s_j (s = the per-input-channel AWQ scales, p->channel_scale).
 *   range  d = (max(w', 0) - min(w', 0)) / 15: the range always holds 0, so that the zero point
 *          z below lies in 0..15 and no group clips (a group of values in [1, 2] read back as
 *          1.0 everywhere when the range was max - min, as llm-awq's pseudo-quantizer does);
 *          stored as the f16 nearest d, moved up one f16 step when that is below d (clamped
 *          to 65504; the dispatcher refuses rows where it would clamp, quant/range.c), and
 *          the f16 value dd is the one used: 15 steps of dd then cover the range, so the
 *          clamps at 0 and 15 only act on rounding (d rounded down would clip the maximum)
 *   z      = clamp(round(-min w' / dd), 0, 15)                (round: half to even)
 *   q_j    = clamp(round(w'_j / dd) + z, 0, 15)               (w'_j / dd clamped to +-64 first)
 *   w_j    = (dd * (q_j - z)) / s_j                           (dequantized)
 * A group whose dd is 0 (all zero) stores z = 0 and q = 0; a d below the f16 range becomes the
 * smallest f16 subnormal. Padding columns beyond cols are zeros. Element 2i is in the low nibble.
 * Rows without scales (NULL channel_scale) use s = 1; the dispatcher requires them for awq_int4. */
#include <math.h>
#include <string.h>

#include "quant_internal.h"

static inline float awq_scale(const vt_quant_params *p, uint64_t j) {
    return (p && p->channel_scale) ? p->channel_scale[j] : 1.0f;
}

static void awq_quantize_ref(const float *x, void *dst, uint64_t cols, const vt_quant_params *p) {
    uint8_t *out = dst;
    uint64_t nb = (cols + VT_QK_AWQ - 1) / VT_QK_AWQ;
    for (uint64_t b = 0; b < nb; b++, out += sizeof(vt_block_awq)) {
        float w[VT_QK_AWQ];
        uint64_t c0 = b * VT_QK_AWQ;
        for (uint64_t i = 0; i < VT_QK_AWQ; i++)
            w[i] = c0 + i < cols ? x[c0 + i] * awq_scale(p, c0 + i) : 0.0f;
        float mn = 0.0f, mx = 0.0f; /* the range always holds 0: z in 0..15 reaches it */
        for (int i = 0; i < VT_QK_AWQ; i++) {
            mn = w[i] < mn ? w[i] : mn;
            mx = w[i] > mx ? w[i] : mx;
        }
        float d = (mx - mn) / 15.0f;
        if (!(d <= 65504.0f)) d = 65504.0f; /* also catches an Inf range */
        uint16_t d16 = vt_f32_to_f16(d);
        if (vt_f16_to_f32(d16) < d && d16 < 0x7bffu) d16++; /* next f16 up (d is positive) */
        float dd = vt_f16_to_f32(d16);
        uint8_t z = 0, q[VT_QK_AWQ];
        memset(q, 0, sizeof q);
        if (dd > 0.0f) {
            float zf = nearbyintf(-mn / dd);
            z = (uint8_t)(zf < 0.0f ? 0.0f : (zf > 15.0f ? 15.0f : zf));
            for (int i = 0; i < VT_QK_AWQ; i++) {
                float t = w[i] / dd;
                t = t < -64.0f ? -64.0f : (t > 64.0f ? 64.0f : t);
                float v = nearbyintf(t) + (float)z;
                q[i] = (uint8_t)(v < 0.0f ? 0.0f : (v > 15.0f ? 15.0f : v));
            }
        }
        memcpy(out, &d16, sizeof d16);
        out[2] = z;
        out[3] = 0;
        for (int i = 0; i < VT_QK_AWQ / 2; i++)
            out[4 + i] = (uint8_t)(q[2 * i] | q[2 * i + 1] << 4);
    }
}

static void awq_dequantize_ref(const void *src, float *y, uint64_t cols, const vt_quant_params *p) {
    const uint8_t *in = src;
    uint64_t nb = (cols + VT_QK_AWQ - 1) / VT_QK_AWQ;
    for (uint64_t b = 0; b < nb; b++, in += sizeof(vt_block_awq)) {
        uint16_t d16;
        memcpy(&d16, in, sizeof d16);
        float dd = vt_f16_to_f32(d16);
        int z = in[2];
        uint64_t c0 = b * VT_QK_AWQ;
        for (uint64_t i = 0; i < VT_QK_AWQ && c0 + i < cols; i++) {
            int q = (i % 2 == 0) ? in[4 + i / 2] & 15 : in[4 + i / 2] >> 4;
            y[c0 + i] = (dd * (float)(q - z)) / awq_scale(p, c0 + i);
        }
    }
}

/* The fast slots use the reference: AWQ runs once per tensor at import and is not on a
 * throughput goal; bench_quant reports its rate as measured. */
const vt_qrow_ops vt_qops_awq = {
    .quantize_ref = awq_quantize_ref,
    .dequantize_ref = awq_dequantize_ref,
    .quantize = awq_quantize_ref,
    .dequantize = awq_dequantize_ref,
};
