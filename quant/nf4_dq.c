/* quant/nf4_dq.c — NF4 with QLoRA-style double quantization of the block absmax values.
 *
 * The padded row-major sequence of 64-element blocks (row r, block b of the row is block
 * r * bpr + b, bpr = ceil(cols / 64)) is cut into super-blocks of 256 blocks. Per super-block:
 *   offset      = mean of the absmax values of its real blocks (f64 sum, rounded to f32)
 *   scale       = max |absmax - offset| / 127 (f32)
 *   absmax_q[b] = round-half-even((absmax_b - offset) / scale) clamped to [-127, 127] (0 when
 *                 scale is 0)
 *   absmax'_b   = offset + scale * absmax_q[b]  — the dequantized absmax, the one the element
 *                 codes are computed against (so dequantization reproduces exactly what the
 *                 quantizer chose); a block with absmax'_b <= 0 stores code 7 (zero) everywhere;
 *                 absmax_q[b] is lowered while absmax'_b rounds to Inf (absmax near FLT_MAX).
 * The last super-block is padded with blocks that have absmax_q 0 and codes 0x77; they do not
 * count in offset or scale and are never read back. */
#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <string.h>

#include "nf4_codes.h"
#include "nibble_lut.h"
#include "quant_internal.h"

typedef struct dq_job {
    const float *src;
    float *dst_f;
    const uint8_t *src_q;
    uint8_t *dst_q;
    uint64_t rows, cols, bpr, nblocks;
    int ref;
} dq_job;

uint64_t vt_nf4dq_bytes(uint64_t rows, uint64_t cols) {
    uint64_t bpr = (cols + VT_QK_NF4 - 1) / VT_QK_NF4;
    uint64_t nblocks = rows * bpr;
    return (nblocks + VT_NF4DQ_GROUP - 1) / VT_NF4DQ_GROUP * sizeof(vt_block_nf4_dq);
}

/* The dequantized absmax of a block: the dequantizer uses this same expression. */
static inline float dq_absmax(float offset, float scale, int8_t q) {
    return offset + scale * (float)q;
}

/* Block k of the sequence, zero-padded into buf when ragged; returns the block's data. */
static const float *dq_block_in(const dq_job *j, uint64_t k, float *buf) {
    uint64_t r = k / j->bpr, b = k % j->bpr;
    const float *x = j->src + r * j->cols + b * VT_QK_NF4;
    uint64_t left = j->cols - b * VT_QK_NF4;
    if (left >= VT_QK_NF4) return x;
    memset(buf, 0, VT_QK_NF4 * sizeof(float));
    memcpy(buf, x, left * sizeof(float));
    return buf;
}

static int dq_quantize_group(void *ctx, uint64_t g, int thread_id) {
    const dq_job *j = ctx;
    uint8_t *out = j->dst_q + g * sizeof(vt_block_nf4_dq);
    uint64_t k0 = g * VT_NF4DQ_GROUP;
    uint64_t nreal = j->nblocks - k0 < VT_NF4DQ_GROUP ? j->nblocks - k0 : VT_NF4DQ_GROUP;
    float amax[VT_NF4DQ_GROUP], buf[VT_QK_NF4];
    double sum = 0;
    for (uint64_t b = 0; b < nreal; b++) {
        const float *x = dq_block_in(j, k0 + b, buf);
        amax[b] = j->ref ? vt_absmax_ref(x, VT_QK_NF4) : vt_absmax_fast(x, VT_QK_NF4);
        sum += amax[b];
    }
    float offset = (float)(sum / (double)nreal), maxdev = 0.0f;
    for (uint64_t b = 0; b < nreal; b++) {
        float d = fabsf(amax[b] - offset);
        if (d > maxdev) maxdev = d;
    }
    float scale = maxdev / 127.0f;
    vt_block_nf4_dq *blk = (vt_block_nf4_dq *)out; /* only byte fields are accessed through it */
    memcpy(out + offsetof(vt_block_nf4_dq, offset), &offset, sizeof offset);
    memcpy(out + offsetof(vt_block_nf4_dq, scale), &scale, sizeof scale);
    memset(blk->absmax_q, 0, sizeof blk->absmax_q);
    memset(blk->qs, 0x77, sizeof blk->qs);
    for (uint64_t b = 0; b < nreal; b++) {
        int q = 0;
        if (scale > 0.0f) {
            float t = nearbyintf((amax[b] - offset) / scale);
            q = t > 127.0f ? 127 : (t < -127.0f ? -127 : (int)t);
            /* offset + scale q can round past FLT_MAX for absmax values near it (the block then
             * read back as Inf x code 0 = NaN): the next code down */
            while (q > -127 && !isfinite(dq_absmax(offset, scale, (int8_t)q))) q--;
        }
        blk->absmax_q[b] = (int8_t)q;
        float a = dq_absmax(offset, scale, (int8_t)q);
        if (!(a > 0.0f) || amax[b] == 0.0f) continue; /* codes stay 0x77 */
        const float *x = dq_block_in(j, k0 + b, buf);
        uint8_t *qs = blk->qs + b * (VT_QK_NF4 / 2);
        if (j->ref)
            vt_nf4_block_codes_ref(x, a, qs);
        else
            vt_nf4_block_codes_fast(x, a, qs);
    }
    return 0;
}

static int dq_dequantize_group(void *ctx, uint64_t g, int thread_id) {
    const dq_job *j = ctx;
    const uint8_t *in = j->src_q + g * sizeof(vt_block_nf4_dq);
    const vt_block_nf4_dq *blk = (const vt_block_nf4_dq *)in;
    float offset, scale;
    memcpy(&offset, in + offsetof(vt_block_nf4_dq, offset), sizeof offset);
    memcpy(&scale, in + offsetof(vt_block_nf4_dq, scale), sizeof scale);
    uint64_t k0 = g * VT_NF4DQ_GROUP;
    uint64_t nreal = j->nblocks - k0 < VT_NF4DQ_GROUP ? j->nblocks - k0 : VT_NF4DQ_GROUP;
    for (uint64_t b = 0; b < nreal; b++) {
        uint64_t k = k0 + b, r = k / j->bpr, c0 = (k % j->bpr) * VT_QK_NF4;
        uint64_t n = j->cols - c0 < VT_QK_NF4 ? j->cols - c0 : VT_QK_NF4;
        float a = dq_absmax(offset, scale, blk->absmax_q[b]);
        const uint8_t *qs = blk->qs + b * (VT_QK_NF4 / 2);
        float *y = j->dst_f + r * j->cols + c0;
        if (j->ref) {
            for (uint64_t e = 0; e < n; e++)
                y[e] = a * vt_nf4_values[(e % 2 == 0) ? qs[e / 2] >> 4 : qs[e / 2] & 15];
            continue;
        }
        if (n == VT_QK_NF4) {
            vt_lut16_expand(qs, VT_QK_NF4 / 2, vt_nf4_values, a, y, 1);
        } else {
            for (uint64_t e = 0; e < n; e++)
                y[e] = a * vt_nf4_values[(e % 2 == 0) ? qs[e / 2] >> 4 : qs[e / 2] & 15];
        }
    }
    return 0;
}

static int dq_check(const void *src, const void *dst, uint64_t rows, uint64_t cols) {
    if ((rows && cols) && (!src || !dst))
        return vt_fail(-EINVAL, "nf4_dq: NULL buffer for %llu x %llu values",
                       (unsigned long long)rows, (unsigned long long)cols);
    if (cols && rows > UINT64_MAX / cols)
        return vt_fail(-EINVAL, "nf4_dq: %llu x %llu values overflow", (unsigned long long)rows,
                       (unsigned long long)cols);
    return 0;
}

int vt_nf4dq_quantize(const float *src, uint64_t rows, uint64_t cols, void *dst, int ref,
                      int nthreads) {
    int rc = dq_check(src, dst, rows, cols);
    if (rc || !rows || !cols) return rc;
    dq_job j = {.src = src, .dst_q = dst, .rows = rows, .cols = cols, .ref = ref};
    j.bpr = (cols + VT_QK_NF4 - 1) / VT_QK_NF4;
    j.nblocks = rows * j.bpr;
    uint64_t ngroups = (j.nblocks + VT_NF4DQ_GROUP - 1) / VT_NF4DQ_GROUP;
    return vt_parallel_for(ngroups, dq_quantize_group, &j, ref ? 1 : nthreads);
}

int vt_nf4dq_dequantize(const void *src, uint64_t rows, uint64_t cols, float *dst, int ref,
                        int nthreads) {
    int rc = dq_check(src, dst, rows, cols);
    if (rc || !rows || !cols) return rc;
    dq_job j = {.src_q = src, .dst_f = dst, .rows = rows, .cols = cols, .ref = ref};
    j.bpr = (cols + VT_QK_NF4 - 1) / VT_QK_NF4;
    j.nblocks = rows * j.bpr;
    uint64_t ngroups = (j.nblocks + VT_NF4DQ_GROUP - 1) / VT_NF4DQ_GROUP;
    return vt_parallel_for(ngroups, dq_dequantize_group, &j, ref ? 1 : nthreads);
}
