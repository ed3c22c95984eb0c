/* test_awq: awq_int4 row ops (fields recomputed from the definition, fast == ref on edge cases,
 * per-column scales undone on dequantization) and vt_awq_search on weights whose input channels
 * see outlier activations: the chosen scales must lower the activation-weighted error, measured
 * on all rows, below alpha = 0 (plain group-wise int4). */
#include <errno.h>

#include "qb_util.h"

static float g_s[8192];

static void check_fields(void) {
    enum { COLS = 300 };
    float x[COLS], y[COLS];
    qb_fill(x, COLS, QB_NORMAL);
    vt_quant_params p = {.tensor_scale = 1, .channel_scale = g_s, .channel_count = COLS};
    uint8_t q[3 * sizeof(vt_block_awq)];
    vt_qops_awq.quantize_ref(x, q, COLS, &p);
    vt_qops_awq.dequantize_ref(q, y, COLS, &p);
    for (int b = 0; b < 3; b++) {
        float w[128], mn = 0.0f, mx = 0.0f; /* the range holds 0 */
        for (int i = 0; i < 128; i++) {
            int c = 128 * b + i;
            w[i] = c < COLS ? x[c] * g_s[c] : 0.0f;
            mn = fminf(mn, w[i]), mx = fmaxf(mx, w[i]);
        }
        vt_block_awq blk;
        memcpy(&blk, q + b * sizeof blk, sizeof blk);
        float dd = vt_f16_to_f32(blk.d);
        /* d: the smallest f16 at or above the range / 15 */
        float d = (mx - mn) / 15.0f;
        CHECKF(dd >= d && vt_f16_to_f32((uint16_t)(blk.d - 1)) < d, "block %d d %g range/15 %g", b,
               dd, d);
        CHECK(blk.z == (uint8_t)fminf(15, fmaxf(0, rintf(-mn / dd))));
        CHECK(blk.pad == 0);
        for (int i = 0; i < 128; i++) {
            int code = (i % 2 == 0) ? blk.qs[i / 2] & 15 : blk.qs[i / 2] >> 4;
            int want = (int)fminf(15, fmaxf(0, rintf(w[i] / dd) + blk.z));
            CHECKF(code == want, "block %d elem %d code %d want %d", b, i, code, want);
            int c = 128 * b + i;
            if (c < COLS) {
                CHECK(y[c] == (dd * (float)(code - blk.z)) / g_s[c]);
                /* error bound: half a step of the scaled grid, undone by s */
                CHECKF(fabsf(y[c] - x[c]) <= 0.5f * dd / g_s[c] * 1.001f, "col %d err %g", c,
                       fabsf(y[c] - x[c]));
            }
        }
    }
    /* a group on one side of 0 (values in [1, 2], then [-2, -1]) reads back within half a step
     * of its range with 0 (it read back as 1.0 everywhere when the range was max - min) */
    for (int sign = -1; sign <= 1; sign += 2) {
        float g[128], yg[128];
        for (int i = 0; i < 128; i++) g[i] = (float)sign * (1.0f + (float)i / 127.0f);
        vt_quant_params one1 = {.tensor_scale = 1};
        uint8_t qg[sizeof(vt_block_awq)];
        vt_qops_awq.quantize(g, qg, 128, &one1);
        vt_qops_awq.dequantize(qg, yg, 128, &one1);
        float worst = 0;
        for (int i = 0; i < 128; i++) worst = fmaxf(worst, fabsf(yg[i] - g[i]));
        CHECKF(worst <= 0.5f * (2.0f / 15.0f) * 1.01f, "one-sided group (sign %d): error %g", sign,
               worst);
    }
    /* a constant group keeps its value to f16 precision */
    float c7[128], yc[128];
    for (int i = 0; i < 128; i++) c7[i] = -0.7f;
    vt_quant_params one = {.tensor_scale = 1};
    uint8_t qc[sizeof(vt_block_awq)];
    vt_qops_awq.quantize(c7, qc, 128, &one);
    vt_qops_awq.dequantize(qc, yc, 128, &one);
    for (int i = 0; i < 128; i++) CHECK(fabsf(yc[i] + 0.7f) < 1e-3f);
}

static double weighted_err(const float *w, uint64_t rows, uint64_t cols, const float *act,
                           const float *s) {
    vt_quant_params p = {.tensor_scale = 1, .channel_scale = s, .channel_count = cols};
    uint8_t *q = malloc((cols + 127) / 128 * sizeof(vt_block_awq));
    float *y = malloc(cols * sizeof(float));
    double e = 0;
    for (uint64_t r = 0; r < rows; r++) {
        vt_qops_awq.quantize(w + r * cols, q, cols, &p);
        vt_qops_awq.dequantize(q, y, cols, &p);
        for (uint64_t j = 0; j < cols; j++) {
            double d = act[j] * ((double)w[r * cols + j] - y[j]);
            e += d * d;
        }
    }
    free(q), free(y);
    return e;
}

static void check_search(void) {
    enum { ROWS = 128, COLS = 1024 };
    float *w = malloc(ROWS * COLS * sizeof(float)), act[COLS], s[COLS], ones[COLS];
    qb_fill(w, ROWS * COLS, QB_NORMAL);
    for (int j = 0; j < COLS; j++) {
        act[j] = fabsf(vt_rand_normal()) + 0.05f;
        ones[j] = 1.0f;
    }
    for (int k = 0; k < 12; k++)
        act[vt_rand_u64() % COLS] = 30.0f + 40.0f * (float)vt_rand_uniform();
    float alpha = -1;
    CHECK_RC(vt_awq_search(w, ROWS, COLS, act, 20, 32, s, &alpha));
    double e0 = weighted_err(w, ROWS, COLS, act, ones), e1 = weighted_err(w, ROWS, COLS, act, s);
    printf("awq search: alpha %.3f, activation-weighted error %.4g -> %.4g (%.1f%% lower)\n", alpha,
           e0, e1, 100.0 * (1.0 - e1 / e0));
    CHECK(alpha > 0.0f && alpha <= 1.0f);
    CHECKF(e1 < 0.9 * e0, "awq scales did not lower the weighted error: %g vs %g", e1, e0);
    /* scales follow act^alpha, normalised by sqrt(max * min) */
    float mx = 0, mn = INFINITY;
    for (int j = 0; j < COLS; j++) mx = fmaxf(mx, s[j]), mn = fminf(mn, s[j]);
    CHECK(fabsf(mx * mn - 1.0f) < 1e-4f);
    for (int j = 1; j < COLS; j++)
        if (act[j] > act[0]) CHECK(s[j] >= s[0]);
    /* uniform activations: nothing to gain, alpha 0 and unit scales */
    for (int j = 0; j < COLS; j++) act[j] = 1.0f;
    CHECK_RC(vt_awq_search(w, ROWS, COLS, act, 11, 0, s, &alpha));
    CHECK(alpha == 0.0f);
    for (int j = 0; j < COLS; j++) CHECK(s[j] == 1.0f);
    CHECK(vt_awq_search(w, ROWS, COLS, act, 0, 0, s, &alpha) == -EINVAL);
    w[5] = NAN;
    CHECK(vt_awq_search(w, ROWS, COLS, act, 5, 0, s, &alpha) == VT_ENONFINITE);
    free(w);
}

int main(void) {
    vt_test_seed();
    for (int i = 0; i < 8192; i++) g_s[i] = 0.25f + 3.0f * (float)vt_rand_uniform();
    check_fields();
    vt_quant_params p = {.tensor_scale = 1, .channel_scale = g_s, .channel_count = 8192};
    qb_check_fast_eq_ref("awq_int4", &vt_qops_awq, VT_QK_AWQ, sizeof(vt_block_awq), &p);
    check_search();
    return vt_test_done("test_awq");
}
