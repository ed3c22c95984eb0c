/* test_metrics: vt_metrics_compute on hand-computable cases, percentiles against a full sort of
 * fresh random errors (many ties included), and vt_sqnr_theoretical. */
#include <errno.h>

#include "qb_util.h"

#define NEAR(a, b) (fabs((a) - (b)) <= 1e-9 * (1 + fabs(b)))

static int cmp_f(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

static double pct_sorted(const float *s, uint64_t n, double p) {
    double pos = p * (double)(n - 1);
    uint64_t k = (uint64_t)floor(pos);
    return k + 1 < n ? s[k] + (pos - (double)k) * ((double)s[k + 1] - s[k]) : s[k];
}

int main(void) {
    vt_test_seed();
    vt_metrics m;
    /* x = 1,2,3,4; y = 1,2,3,5: errors 0,0,0,1 */
    const float x[4] = {1, 2, 3, 4}, y[4] = {1, 2, 3, 5};
    CHECK_RC(vt_metrics_compute(x, y, 4, &m));
    CHECK(m.n == 4);
    CHECK(NEAR(m.mse, 0.25) && NEAR(m.mae, 0.25) && NEAR(m.rmse, 0.5) && NEAR(m.max_err, 1.0));
    CHECK(NEAR(m.sqnr_db, 10 * log10(30.0)));
    CHECK(NEAR(m.cosine, 34.0 / sqrt(30.0 * 39.0)));
    CHECK(NEAR(m.p50, 0.0) && NEAR(m.p90, 0.7) && NEAR(m.p99, 0.97) && NEAR(m.p999, 0.997));
    CHECK(m.outlier_frac == 0.0);

    /* exact copy: infinite SQNR, cosine 1, no error */
    CHECK_RC(vt_metrics_compute(x, x, 4, &m));
    CHECK(isinf(m.sqnr_db) && m.sqnr_db > 0 && NEAR(m.cosine, 1.0) && m.max_err == 0);
    /* y = -x: cosine -1, SQNR 10 log10(1/4) */
    const float nx[4] = {-1, -2, -3, -4};
    CHECK_RC(vt_metrics_compute(x, nx, 4, &m));
    CHECK(NEAR(m.cosine, -1.0) && NEAR(m.sqnr_db, 10 * log10(0.25)));

    /* outliers: 1000 errors of 0.01 and one of 100; rmse = sqrt((0.1 + 1e4) / 1001) */
    enum { NO = 1001 };
    static float a[NO], b[NO];
    for (int i = 0; i < NO; i++) a[i] = 1.0f, b[i] = 1.0f + (i == 500 ? 100.0f : 0.01f);
    CHECK_RC(vt_metrics_compute(a, b, NO, &m));
    CHECK(fabs(m.outlier_frac - 1.0 / NO) < 1e-12);
    CHECK(fabs(m.rmse - sqrt((1000 * 0.01 * 0.01 + 1e4) / NO)) < 1e-5);
    CHECK(fabs(m.max_err - 100.0) < 1e-4);

    /* percentiles against a sort, on fresh random data with ties */
    const uint64_t sizes[] = {1, 2, 3, 10, 1001, 100003};
    for (size_t si = 0; si < sizeof sizes / sizeof sizes[0]; si++) {
        uint64_t n = sizes[si];
        float *u = malloc(n * sizeof(float)), *v = malloc(n * sizeof(float)),
              *e = malloc(n * sizeof(float));
        for (uint64_t i = 0; i < n; i++) {
            u[i] = vt_rand_normal();
            v[i] = (vt_rand_u64() % 3 == 0) ? u[i] : u[i] + (float)(vt_rand_u64() % 50) * 0.125f;
            e[i] = fabsf(u[i] - v[i]);
        }
        qsort(e, n, sizeof(float), cmp_f);
        CHECK_RC(vt_metrics_compute(u, v, n, &m));
        CHECKF(fabs(m.p50 - pct_sorted(e, n, 0.5)) < 1e-6, "n %llu p50 %g vs %g",
               (unsigned long long)n, m.p50, pct_sorted(e, n, 0.5));
        CHECK(fabs(m.p90 - pct_sorted(e, n, 0.9)) < 1e-6);
        CHECK(fabs(m.p99 - pct_sorted(e, n, 0.99)) < 1e-6);
        CHECK(fabs(m.p999 - pct_sorted(e, n, 0.999)) < 1e-6);
        CHECK(fabs(m.max_err - e[n - 1]) <= 1e-6 * (1 + e[n - 1]));
        free(u), free(v), free(e);
    }
    CHECK_RC(vt_metrics_compute(NULL, NULL, 0, &m));
    CHECK(m.n == 0);
    CHECK(vt_metrics_compute(x, NULL, 4, &m) == -EINVAL);
    CHECK(NEAR(vt_sqnr_theoretical(8), 6.02 * 8 + 1.76));
    CHECK(NEAR(vt_sqnr_theoretical(4.5), 6.02 * 4.5 + 1.76));
    return vt_test_done("test_metrics");
}
