/* quant/awq_search.c — AWQ scale search (Lin et al. 2023, auto_scale): for alpha on a grid in
 * [0, 1], s_j = max(act_j, 1e-4)^alpha / sqrt(max_k s_k * min_k s_k) (the normalisation AWQ
 * uses), quantize the sampled rows with awq_int4 under s and keep the alpha with the smallest
 * activation-weighted error sum_ij (act_j * (W_ij - deq_ij))^2. Alpha 0 (s = 1) is always on the
 * grid, so the result is never worse than plain group-wise int4 on the sampled rows; ties keep
 * the smaller alpha. */
#include <errno.h>
#include <math.h>
#include <string.h>

#include "quant_internal.h"

static void awq_scales_for(const float *act, uint64_t cols, float alpha, float *s) {
    float mx = 0.0f, mn = INFINITY;
    for (uint64_t j = 0; j < cols; j++) {
        float a = act[j] > 1e-4f ? act[j] : 1e-4f;
        s[j] = alpha == 0.0f ? 1.0f : powf(a, alpha);
        mx = s[j] > mx ? s[j] : mx;
        mn = s[j] < mn ? s[j] : mn;
    }
    float norm = sqrtf(mx * mn);
    for (uint64_t j = 0; j < cols; j++) s[j] /= norm;
}

int vt_awq_search(const float *w, uint64_t rows, uint64_t cols, const float *act_mean_abs, int grid,
                  uint64_t max_rows, float *scales, float *alpha_out) {
    if (!w || !act_mean_abs || !scales || rows == 0 || cols == 0 || grid < 1)
        return vt_fail(-EINVAL, "vt_awq_search: bad arguments (rows %llu, cols %llu, grid %d)",
                       (unsigned long long)rows, (unsigned long long)cols, grid);
    for (uint64_t j = 0; j < cols; j++)
        if (!(act_mean_abs[j] >= 0.0f && act_mean_abs[j] <= 3.402823466e38f))
            return vt_fail(-EINVAL, "vt_awq_search: activation statistic %g at column %llu",
                           (double)act_mean_abs[j], (unsigned long long)j);
    uint64_t ns = (max_rows == 0 || max_rows >= rows) ? rows : max_rows;
    for (uint64_t i = 0; i < ns; i++) {
        const float *row = w + (i * rows / ns) * cols;
        for (uint64_t j = 0; j < cols; j++)
            if (!isfinite(row[j]))
                return vt_fail(VT_ENONFINITE,
                               "vt_awq_search: non-finite weight at row %llu col %llu",
                               (unsigned long long)(i * rows / ns), (unsigned long long)j);
    }
    uint64_t qbytes = (cols + VT_QK_AWQ - 1) / VT_QK_AWQ * sizeof(vt_block_awq);
    float *s = vt_malloc(cols * sizeof(float)), *y = vt_malloc(cols * sizeof(float));
    uint8_t *q = vt_malloc(qbytes);
    if (!s || !y || !q) {
        vt_free(s), vt_free(y), vt_free(q);
        return vt_fail(-ENOMEM, "vt_awq_search: no memory for %llu columns",
                       (unsigned long long)cols);
    }
    double best = INFINITY;
    float best_alpha = 0.0f;
    for (int gi = 0; gi < grid; gi++) {
        float alpha = grid == 1 ? 0.0f : (float)gi / (float)(grid - 1);
        awq_scales_for(act_mean_abs, cols, alpha, s);
        vt_quant_params p;
        memset(&p, 0, sizeof p);
        p.tensor_scale = 1.0f;
        p.channel_scale = s;
        p.channel_count = cols;
        double err = 0;
        for (uint64_t i = 0; i < ns; i++) {
            const float *row = w + (i * rows / ns) * cols;
            vt_qops_awq.quantize(row, q, cols, &p);
            vt_qops_awq.dequantize(q, y, cols, &p);
            for (uint64_t j = 0; j < cols; j++) {
                double e = (double)act_mean_abs[j] * ((double)row[j] - (double)y[j]);
                err += e * e;
            }
        }
        if (err < best) {
            best = err;
            best_alpha = alpha;
        }
    }
    awq_scales_for(act_mean_abs, cols, best_alpha, scales);
    if (alpha_out) *alpha_out = best_alpha;
    vt_free(s), vt_free(y), vt_free(q);
    return 0;
}
