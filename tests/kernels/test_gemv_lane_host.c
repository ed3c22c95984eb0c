/* tests/kernels/test_gemv_lane_host.c — the GEMV kernels' lane code (kernels/cuda
 * gemv_lane.cuh) run on the host for whole warps (tests/kernels/gemv_lane_host.cu) against the
 * f64 reference: every format and 2:4 variant, ragged shapes, batch 1..8 (each batch size
 * template: 1, 2, 4, 8 with fewer vectors), x 16-byte aligned (float4 path) and not (scalar
 * path), weights at an odd address, outputs poisoned, nothing written past the batch. Needs
 * nvcc, not a GPU. */
#include "kern_internal.h"
#include "kern_test_util.h"
#include "kt_gemm_ref.h"

int kt_host_gemv(const vt_kdesc *d, const float *x, float *y, int batch);

static const uint64_t shapes[][2] = {{1, 32}, {7, 100}, {3, 48}, {33, 1000}, {5, 4100}};
static uint64_t n_runs;

static void check_one(const kt_weight *k, const char *nm, size_t shape, void *ctx) {
    (void)ctx;
    const uint64_t R = k->rows, C = k->cols;
    const int B = VT_GEMV_MAX_BATCH;
    size_t bytes = vt_quant_bytes(k->fmt, R, C);
    uint8_t *buf = malloc(bytes + 7); /* odd weight address on every other shape */
    memcpy(buf + (shape & 1) * 7, k->q, bytes);
    vt_weight w = k->w;
    w.data = buf + (shape & 1) * 7;
    vt_kdesc d;
    int rc = vt_kdesc_init(&d, &w, "test");
    CHECKF(rc == 0, "%s: vt_kdesc_init: %s", nm, vt_last_error());
    float *xb = aligned_alloc(16, (B * C + 4) * 4), *y = malloc(B * R * 4);
    double *ref = malloc(B * R * 8), *ra = malloc(B * R * 8);
    for (int mis = 0; mis < 2 && rc == 0; mis++) {
        float *x = xb + mis; /* mis: x off 16-byte alignment, the scalar path */
        for (uint64_t i = 0; i < B * C; i++) x[i] = vt_rand_normal();
        kt_ref_gemv(k, x, B, ref);
        kt_ref_abs(k, x, B, ra);
        for (int b = 1; b <= B; b++) {
            kt_poison(y, B * R);
            int r = kt_host_gemv(&d, x, y, b);
            CHECKF(r == 0, "%s %llux%llu batch %d: %d %s", nm, (unsigned long long)R,
                   (unsigned long long)C, b, r, vt_last_error());
            if (r) continue;
            n_runs++;
            double e = kt_gemv_err(y, ref, ra, (uint64_t)b * R); /* < 0: bound failed */
            CHECKF(e >= 0, "%s %llux%llu host-emulated gemv batch %d x %s: rel err %.3g", nm,
                   (unsigned long long)R, (unsigned long long)C, b, mis ? "unaligned" : "aligned",
                   fabs(e));
            for (uint64_t i = (uint64_t)b * R; i < B * R; i++)
                if (!isnan(y[i])) {
                    CHECKF(0, "%s host-emulated gemv batch %d wrote past its output", nm, b);
                    break;
                }
        }
    }
    free(xb);
    free(y);
    free(ref);
    free(ra);
    free(buf);
}

int main(void) {
    vt_test_seed();
    kt_for_each_weight(shapes, sizeof shapes / sizeof shapes[0], check_one, NULL);
    printf("%llu emulated GEMVs compared\n", (unsigned long long)n_runs);
    return vt_test_done("test_gemv_lane_host");
}
