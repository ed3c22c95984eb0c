/* quant/choose.c — automatic per-tensor format choice: trial-quantize a sample of rows with
 * each candidate format and compare the measured SQNR and bits per weight.
 *   min_sqnr_db only: the cheapest candidate (bits per weight at this row width) whose SQNR
 *     reaches the target; none does -> f16 if it does, else f32 (exact).
 *   max_bits only:    the best SQNR among candidates within the budget; none fits ->
 *     VT_EBUDGET.
 *   both:             the cheapest within the budget that reaches the target, else the best
 *     SQNR within the budget.
 * Default candidates: every quantizable format except awq_int4 (it needs activation
 * statistics), plus f16 and bf16. Equal bits per weight: the higher SQNR wins. A candidate that
 * cannot hold the sample's values (vt_quantize's -ERANGE, e.g. f16 for |x| >= 65520) is skipped;
 * rows outside the sample can still be refused when the whole tensor is quantized. */
#include <errno.h>
#include <math.h>
#include <string.h>

#include "vtstore/quant.h"

static int trial(uint32_t fmt, const float *w, uint64_t rows, uint64_t cols, vt_metrics *m) {
    vt_quant_params p;
    vt_quant_params_init(&p);
    int rc = vt_quant_observe(fmt, &p, w, rows * cols);
    if (rc) return rc;
    uint64_t nb = vt_quant_bytes(fmt, rows, cols);
    void *q = vt_malloc(nb ? nb : 1);
    float *y = vt_malloc(rows * cols * sizeof(float));
    if (!q || !y) {
        vt_free(q), vt_free(y);
        return vt_fail(-ENOMEM, "vt_quant_choose: no memory for a %llu x %llu trial",
                       (unsigned long long)rows, (unsigned long long)cols);
    }
    rc = vt_quantize(fmt, &p, w, rows, cols, q, 0);
    if (!rc) rc = vt_dequantize(fmt, &p, q, rows, cols, y, 0);
    if (!rc) rc = vt_metrics_compute(w, y, rows * cols, m);
    vt_free(q), vt_free(y);
    return rc;
}

int vt_quant_choose(const float *w, uint64_t rows, uint64_t cols, const vt_choose_target *t,
                    uint32_t *fmt_out, vt_metrics *metrics_out) {
    if (!w || !t || !fmt_out || rows == 0 || cols == 0 || rows > UINT64_MAX / cols)
        return vt_fail(-EINVAL, "vt_quant_choose: bad arguments (%llu x %llu)",
                       (unsigned long long)rows, (unsigned long long)cols);
    if (!(t->min_sqnr_db > 0) && !(t->max_bits > 0))
        return vt_fail(-EINVAL, "vt_quant_choose: set min_sqnr_db or max_bits");
    uint32_t cand = t->candidates;
    if (!cand) {
        cand = (1u << VT_FMT_F16) | (1u << VT_FMT_BF16);
        for (uint32_t f = 0; f < VT_FMT_COUNT; f++) {
            const vt_format_info *fi = vt_format_get(f);
            if (fi && fi->can_quantize && f != VT_FMT_F32 && f != VT_FMT_AWQ_INT4 &&
                f != VT_FMT_F16 && f != VT_FMT_BF16)
                cand |= 1u << f;
        }
    }
    /* sample of evenly spaced rows */
    const float *s = w;
    float *copy = NULL;
    uint64_t ns = rows;
    if (t->sample_rows && t->sample_rows < rows) {
        ns = t->sample_rows;
        copy = vt_malloc(ns * cols * sizeof(float));
        if (!copy) return vt_fail(-ENOMEM, "vt_quant_choose: no memory for the row sample");
        for (uint64_t i = 0; i < ns; i++)
            memcpy(copy + i * cols, w + (i * rows / ns) * cols, cols * sizeof(float));
        s = copy;
    }
    int rc = 0, have_meet = 0, have_any = 0, n_range = 0;
    uint32_t meet = 0, any = 0;
    double meet_bpw = 0, any_sqnr = 0;
    vt_metrics meet_m, any_m, m;
    memset(&meet_m, 0, sizeof meet_m);
    memset(&any_m, 0, sizeof any_m);
    for (uint32_t f = 0; f < VT_FMT_COUNT && !rc; f++) {
        if (!(cand & (1u << f))) continue;
        const vt_format_info *fi = vt_format_get(f);
        if (!fi || !fi->can_quantize) continue;
        double bpw = vt_format_bpw(f, cols);
        if (t->max_bits > 0 && bpw > t->max_bits) continue;
        rc = trial(f, s, ns, cols, &m);
        if (rc == -ERANGE) { /* the format cannot hold these values: not a candidate */
            rc = 0;
            n_range++;
            continue;
        }
        if (rc) break;
        if (!have_any || m.sqnr_db > any_sqnr) {
            have_any = 1, any = f, any_sqnr = m.sqnr_db, any_m = m;
        }
        if (t->min_sqnr_db > 0 && m.sqnr_db >= t->min_sqnr_db &&
            (!have_meet || bpw < meet_bpw || (bpw == meet_bpw && m.sqnr_db > meet_m.sqnr_db))) {
            have_meet = 1, meet = f, meet_bpw = bpw, meet_m = m;
        }
    }
    if (!rc) {
        if (have_meet) {
            *fmt_out = meet;
            if (metrics_out) *metrics_out = meet_m;
        } else if (t->max_bits > 0) {
            if (!have_any && n_range)
                rc = vt_fail(-ERANGE,
                             "vt_quant_choose: no candidate format within %.3f bits/weight can "
                             "hold the values (%d refused them as out of range)",
                             t->max_bits, n_range);
            else if (!have_any)
                rc = vt_fail(VT_EBUDGET,
                             "vt_quant_choose: no candidate format fits %.3f bits/weight",
                             t->max_bits);
            else {
                *fmt_out = any;
                if (metrics_out) *metrics_out = any_m;
            }
        } else { /* SQNR target missed by every candidate: f16 if it reaches it, else f32 */
            rc = trial(VT_FMT_F16, s, ns, cols, &m);
            if (!rc && m.sqnr_db >= t->min_sqnr_db)
                *fmt_out = VT_FMT_F16;
            else if (!rc || rc == -ERANGE)
                rc = trial(*fmt_out = VT_FMT_F32, s, ns, cols, &m);
            if (!rc && metrics_out) *metrics_out = m;
        }
    }
    vt_free(copy);
    return rc;
}
