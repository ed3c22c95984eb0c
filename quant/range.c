/* quant/range.c — which finite inputs a format cannot hold. A format whose values or block scales
 * are f16 (f16, q8_0, q4_0, q4_1, awq_int4), bf16 or e4m3 (nvfp4) has a largest magnitude; beyond
 * it ggml's formulas store Inf (f16, bf16), an Inf block scale that turns the whole block into NaN
 * on dequantization (q8_0, q4_0, q4_1), or clip silently (awq_int4's clamped scale, nvfp4's
 * saturated block scale), or read back past FLT_MAX (awq_int4 with channel scales below 3e-33,
 * nvfp4 with a tensor scale near FLT_MAX). The dispatcher refuses such rows with -ERANGE instead,
 * naming the value (vt_quantize's contract, quant.h). The checks repeat each quantizer's own scale
 * arithmetic, so a row is refused exactly when its stored scale would overflow or saturate: f16 and
 * bf16 round to nearest even, so 65520 is the first value an f16 cannot hold (65504 is the largest
 * finite one) and an e4m3 block scale saturates past 464 (448 the largest, 480 the next step if
 * there were one). int8's f32 scale amax / 127 reads back past FLT_MAX (Inf) for the largest f32
 * values; nf4, nf4_dq (f32 scales) and mxfp4 (E8M0 scales) hold every finite f32. */
#include <float.h>
#include <math.h>

#include "quant_internal.h"

#define F16_INF_FROM  65520.0f /* the smallest f32 that rounds to an f16 Inf */
#define E4M3_SAT_PAST 464.0f   /* e4m3 scales above this saturate to 448 */

/* Index of the largest |x s| in x[0..n) (the first of equals; s NULL: 1). */
static uint64_t argmax_abs(const float *x, const float *s, uint64_t n) {
    uint64_t k = 0;
    for (uint64_t i = 1; i < n; i++)
        if (fabsf(s ? x[i] * s[i] : x[i]) > fabsf(s ? x[k] * s[k] : x[k])) k = i;
    return k;
}

/* One block of n <= be values (the row's last block may be short: the quantizers pad it with
 * zeros); 1 when its scale overflows. s: awq's channel scales of the block, else NULL. */
static int block_bad(uint32_t base, const float *x, uint64_t n, uint64_t be, const float *s,
                     float ts) {
    float amax = 0.0f, mn = n < be ? 0.0f : INFINITY, mx = n < be ? 0.0f : -INFINITY;
    for (uint64_t i = 0; i < n; i++) {
        const float w = s ? x[i] * s[i] : x[i];
        const float a = fabsf(w);
        amax = a > amax ? a : amax;
        mn = w < mn ? w : mn;
        mx = w > mx ? w : mx;
    }
    switch (base) {
    case VT_FMT_Q8_0: /* d = amax / 127 */
        return !(amax / 127 < F16_INF_FROM);
    case VT_FMT_Q4_0: /* d = max / -8 */
        return !(amax / 8 < F16_INF_FROM);
    case VT_FMT_Q4_1: /* d = (max - min) / 15 and min, both f16 */
        return !((mx - mn) / 15 < F16_INF_FROM) || !(fabsf(mn) < F16_INF_FROM);
    case VT_FMT_AWQ_INT4: { /* d = (max(w', 0) - min(w', 0)) / 15; awq.c clamps d to 65504 */
        mn = mn < 0.0f ? mn : 0.0f;
        mx = mx > 0.0f ? mx : 0.0f;
        if (!((mx - mn) / 15.0f <= 65504.0f)) return 1;
        /* read back as (dd (q - z)) / s: past FLT_MAX only for channel scales below
         * 15 x 65504 / FLT_MAX; for those, quantize the group and look */
        int tiny = 0;
        for (uint64_t i = 0; i < n; i++) tiny |= s && s[i] < 1e-32f;
        if (!tiny) return 0;
        vt_quant_params p;
        vt_quant_params_init(&p);
        p.channel_scale = s;
        p.channel_count = n;
        uint8_t q[sizeof(vt_block_awq)];
        float y[VT_QK_AWQ];
        vt_qops_awq.quantize_ref(x, q, n, &p);
        vt_qops_awq.dequantize_ref(q, y, n, &p);
        for (uint64_t i = 0; i < n; i++)
            if (!isfinite(y[i])) return 1;
        return 0;
    }
    case VT_FMT_INT8: /* f32 d = amax / 127, read back as 127 d */
        return !(127.0f * (amax / 127.0f) <= FLT_MAX);
    case VT_FMT_NVFP4: { /* s = e4m3((amax / 6) / tensor_scale) */
        const float v = (amax / 6.0f) / ts;
        if (!(v <= E4M3_SAT_PAST)) return 1;
        /* the block's largest value reads back as (ts e4m3(s)) 6 (code 6 when s does not
         * saturate): past FLT_MAX for a tensor scale near it */
        return !((ts * vt_e4m3_to_f32(vt_f32_to_e4m3(v))) * 6.0f <= FLT_MAX);
    }
    default:
        return 0;
    }
}

uint64_t vt_qrange_first(uint32_t base, const float *x, uint64_t n, const vt_quant_params *p) {
    uint64_t be;
    switch (base) {
    case VT_FMT_F16:
        for (uint64_t i = 0; i < n; i++)
            if (!(fabsf(x[i]) < F16_INF_FROM)) return i;
        return n;
    case VT_FMT_BF16:
        for (uint64_t i = 0; i < n; i++) {
            const uint16_t h = vt_f32_to_bf16(x[i]);
            if ((h & 0x7fffu) == 0x7f80u) return i;
        }
        return n;
    case VT_FMT_Q8_0:
    case VT_FMT_Q4_0:
    case VT_FMT_Q4_1:
    case VT_FMT_AWQ_INT4:
    case VT_FMT_NVFP4:
    case VT_FMT_INT8: /* block by block */
        be = vt_format_get(base)->block_elems;
        break;
    default:
        return n;
    }
    const float *s = base == VT_FMT_AWQ_INT4 && p ? p->channel_scale : NULL;
    const float ts = vt_nvfp4_tensor_scale(p);
    for (uint64_t b = 0; b < n; b += be) {
        const uint64_t m = n - b < be ? n - b : be;
        if (block_bad(base, x + b, m, be, s ? s + b : NULL, ts))
            return b + argmax_abs(x + b, s ? s + b : NULL, m);
    }
    return n;
}

/* Each bound below follows from the block's own rule, whose terms only grow with the block's
 * largest |x| (at most amax) and, for awq, |x s| (at most amax smax). */
int vt_qrange_safe(uint32_t base, float amax, const vt_quant_params *p, float smin, float smax) {
    switch (base) {
    case VT_FMT_F16:
    case VT_FMT_Q4_1: /* |min| <= amax, (max - min) / 15 <= 2 amax / 15 */
        return amax < F16_INF_FROM;
    case VT_FMT_BF16:
        return amax <= 0x1.fep127f; /* bf16's largest */
    case VT_FMT_Q8_0:
        return amax / 127 < F16_INF_FROM;
    case VT_FMT_Q4_0:
        return amax / 8 < F16_INF_FROM;
    case VT_FMT_INT8:
        return 127.0f * (amax / 127.0f) <= FLT_MAX;
    case VT_FMT_AWQ_INT4:
        return (2.0f * (amax * smax)) / 15.0f <= 65504.0f && !(smin < 1e-32f);
    case VT_FMT_NVFP4: {
        const float ts = vt_nvfp4_tensor_scale(p);
        return (amax / 6.0f) / ts <= E4M3_SAT_PAST && (ts * 448.0f) * 6.0f <= FLT_MAX;
    }
    default:
        return 1;
    }
}

const char *vt_qrange_rule(uint32_t base) {
    switch (base) {
    case VT_FMT_F16:
        return "f16 holds |x| < 65520; its largest finite value is 65504";
    case VT_FMT_BF16:
        return "bf16 holds |x| up to about 3.39e38";
    case VT_FMT_Q8_0:
        return "a q8_0 block's f16 scale max|x| / 127 must stay below 65520";
    case VT_FMT_Q4_0:
        return "a q4_0 block's f16 scale max|x| / 8 must stay below 65520";
    case VT_FMT_Q4_1:
        return "a q4_1 block's f16 scale (max - min) / 15 and f16 min must stay below 65520";
    case VT_FMT_AWQ_INT4:
        return "an awq_int4 group's f16 scale (max - min) / 15 of x times the channel scales must "
               "not exceed 65504";
    case VT_FMT_INT8:
        return "an int8 block's f32 scale max|x| / 127 must read back as at most FLT_MAX";
    case VT_FMT_NVFP4:
        return "nvfp4 holds |x| <= 2784 x tensor_scale (the e4m3 block scale saturates)";
    default:
        return "the format's range";
    }
}
