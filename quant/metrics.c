/* quant/metrics.c — error metrics of an approximation y of x. Sums in f64; percentiles of
 * |x - y| use linear interpolation between order statistics (numpy's default: the value at
 * rank p * (n - 1)), found with quickselect on a copy; NaN errors count as +Inf. */
#include <errno.h>
#include <math.h>
#include <string.h>

#include "vtstore/quant.h"

/* Partially sort a[lo..hi] so that a[k] is the k-th smallest, smaller left, larger right. */
static void select_k(float *a, uint64_t lo, uint64_t hi, uint64_t k) {
    while (lo < hi) {
        uint64_t mid = lo + (hi - lo) / 2;
        /* median of three as pivot */
        float x = a[lo], y = a[mid], z = a[hi];
        float pv = (x < y) ? ((y < z) ? y : (x < z ? z : x)) : ((x < z) ? x : (y < z ? z : y));
        uint64_t i = lo, j = hi;
        while (i <= j) { /* Hoare partition */
            while (a[i] < pv) i++;
            while (a[j] > pv) j--;
            if (i <= j) {
                float t = a[i];
                a[i] = a[j], a[j] = t;
                i++;
                if (j == 0) break;
                j--;
            }
        }
        if (k <= j)
            hi = j;
        else if (k >= i)
            lo = i;
        else
            return;
    }
}

static float min_of(const float *a, uint64_t lo, uint64_t hi) {
    float m = a[lo];
    for (uint64_t i = lo + 1; i <= hi; i++) m = a[i] < m ? a[i] : m;
    return m;
}

int vt_metrics_compute(const float *x, const float *y, uint64_t n, vt_metrics *out) {
    if (!out || (n && (!x || !y))) return vt_fail(-EINVAL, "vt_metrics_compute: NULL argument");
    memset(out, 0, sizeof *out);
    out->n = n;
    if (n == 0) return 0;
    float *e = vt_malloc(n * sizeof(float));
    if (!e)
        return vt_fail(-ENOMEM, "vt_metrics_compute: no memory for %llu error values",
                       (unsigned long long)n);
    double sx = 0, sy = 0, sxy = 0, se = 0, sa = 0, mx = 0;
    for (uint64_t i = 0; i < n; i++) {
        double a = x[i], b = y[i], d = a - b, ad = fabs(d);
        sx += a * a;
        sy += b * b;
        sxy += a * b;
        se += d * d;
        sa += ad;
        if (ad > mx || isnan(ad)) mx = isnan(ad) ? INFINITY : (ad > mx ? ad : mx);
        e[i] = isnan(ad) ? INFINITY : (float)ad;
    }
    out->mse = se / (double)n;
    out->mae = sa / (double)n;
    out->rmse = sqrt(out->mse);
    out->max_err = mx;
    out->sqnr_db = se == 0 ? INFINITY : 10.0 * log10(sx / se);
    out->cosine = (sx == 0 && sy == 0) ? 1.0 : ((sx == 0 || sy == 0) ? 0.0 : sxy / sqrt(sx * sy));
    double limit = 6.0 * out->rmse;
    uint64_t outl = 0;
    for (uint64_t i = 0; i < n; i++) outl += (double)e[i] > limit;
    out->outlier_frac = (double)outl / (double)n;
    /* ascending percentiles: each selection narrows the range of the next */
    static const double ps[4] = {0.50, 0.90, 0.99, 0.999};
    double *dst[4] = {&out->p50, &out->p90, &out->p99, &out->p999};
    uint64_t lo = 0;
    for (int t = 0; t < 4; t++) {
        double pos = ps[t] * (double)(n - 1);
        uint64_t k = (uint64_t)pos;
        double frac = pos - (double)k;
        select_k(e, lo, n - 1, k);
        double v = e[k];
        if (frac > 0 && k + 1 < n) v += frac * ((double)min_of(e, k + 1, n - 1) - v);
        *dst[t] = v;
        lo = k;
    }
    vt_free(e);
    return 0;
}

double vt_sqnr_theoretical(double bits) {
    return 6.02 * bits + 1.76;
}
