/* tests/kernels/test_mma_tile_host.c — the MMA GEMM kernel's tile code (kernels/cuda
 * mma_tile.cuh) run on the host with mma.sync emulated from the PTX ISA fragment layouts
 * (tests/kernels/mma_tile_host.cu), against the f64 reference: every format and 2:4 variant,
 * ragged shapes (rows, cols and M not multiples of the 64 x 64 x 64 tile), X and Y in f32 and
 * f16, outputs poisoned. Checks the index math of tile fills, fragment gathers and epilogue
 * before a GPU ever runs them. Needs nvcc, not a GPU. */
#include "kern_internal.h"
#include "kern_test_util.h"
#include "kt_gemm_ref.h"

int kt_host_gemm_mma(const vt_kdesc *d, const void *X, int xh, void *Y, int yh, uint64_t M,
                     char *why, size_t cap);

static const uint64_t shapes[][2] = {{1, 32}, {7, 100}, {33, 1000}, {70, 300}, {130, 2048}};
static const uint64_t Ms[] = {1, 5, 70};
static uint64_t n_runs;

static void check_one(const kt_weight *k, const char *nm, size_t shape, void *ctx) {
    (void)shape;
    (void)ctx;
    const uint64_t R = k->rows, C = k->cols;
    vt_kdesc d;
    int rc = vt_kdesc_init(&d, &k->w, "test");
    CHECKF(rc == 0, "%s: vt_kdesc_init: %s", nm, vt_last_error());
    if (rc) return;
    for (size_t mi = 0; mi < sizeof Ms / sizeof Ms[0]; mi++) {
        kt_gemm_case g;
        kt_gemm_case_make(&g, k, Ms[mi]);
        for (int xt = 0; xt < 2; xt++)
            for (int yt = 0; yt < 2; yt++) {
                char why[160] = "", what[96];
                kt_poison(g.Y, g.M * R);
                memset(g.Yh, 0xff, g.M * R * 2);
                int r = kt_host_gemm_mma(&d, xt ? (const void *)g.Xh : g.X, xt,
                                         yt ? (void *)g.Yh : g.Y, yt, g.M, why, sizeof why);
                if (r == 77) continue;
                CHECKF(r == 0, "%s %llux%llu M=%llu: %s %s", nm, (unsigned long long)R,
                       (unsigned long long)C, (unsigned long long)g.M, why,
                       r > 1 ? vt_last_error() : "");
                if (r) continue;
                n_runs++;
                snprintf(what, sizeof what, "%s host-emulated mma X %s", nm, xt ? "f16" : "f32");
                kt_gemm_case_check(&g, k, yt, what);
            }
        kt_gemm_case_free(&g);
    }
}

int main(void) {
    vt_test_seed();
    kt_for_each_weight(shapes, sizeof shapes / sizeof shapes[0], check_one, NULL);
    printf("%llu emulated GEMMs compared\n", (unsigned long long)n_runs);
    return vt_test_done("test_mma_tile_host");
}
