/* tests/kernels/test_mma_tile_host.c — both MMA GEMM kernels run on the host against the f64
 * reference: every format and 2:4 variant, ragged shapes (rows, cols and M not multiples of the
 * tiles), outputs poisoned. Needs nvcc, not a GPU.
 *  - the tile kernel's code (kernels/cuda/mma_tile.cuh) with mma.sync emulated from the PTX ISA
 *    fragment layouts (mma_tile_host.cu), X and Y in f32 and f16;
 *  - the pipelined kernel's whole CTAs (kernels/cuda/gemm_cta.cuh) on the emulated CTA of
 *    simt_host.cuh (gemm_cta_host.cu): barriers, cp.async landing early and late, ldmatrix and
 *    mma.sync; X f16 (16-byte aligned, and 2 bytes off it: the register path), Y f32 and f16. */
#include "kern_internal.h"
#include "kern_test_util.h"
#include "kt_gemm_ref.h"

int kt_host_gemm_mma(const vt_kdesc *d, const void *X, int xh, void *Y, int yh, uint64_t M,
                     char *why, size_t cap);
int kt_host_gemm_pipe(const vt_kdesc *d, const uint16_t *X, void *Y, int yh, uint64_t M, char *why,
                      size_t cap);

static const uint64_t shapes[][2] = {{1, 32}, {7, 100}, {33, 1000}, {70, 300}, {130, 2048}};
static const uint64_t Ms[] = {1, 5, 70, 130};
static uint64_t n_pipe;
static uint64_t n_runs;

/* After a host run returned r: whether it ran (then its output is compared); 77 (no such
 * kernel for the layout) is skipped, anything else is a failure reported here. */
static int host_ran(int r, const char *nm, const kt_weight *k, uint64_t M, const char *why) {
    if (r == 77) return 0;
    CHECKF(r == 0, "%s %llux%llu M=%llu: %s %s", nm, (unsigned long long)k->rows,
           (unsigned long long)k->cols, (unsigned long long)M, why, r > 1 ? vt_last_error() : "");
    return r == 0;
}

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
                if (!host_ran(r, nm, k, g.M, why)) continue;
                n_runs++;
                snprintf(what, sizeof what, "%s host-emulated mma X %s", nm, xt ? "f16" : "f32");
                kt_gemm_case_check(&g, k, yt, what);
            }
        /* the pipelined kernel (emulated CTAs of 256 coroutines: slow): M 5 and 70, and 130 on
         * the small weights (2 CTAs in M); Y f32 with X aligned, Y f16 with X unaligned */
        for (int yt = 0; yt < 2 && Ms[mi] > 1 && (Ms[mi] < 130 || R * C <= 70 * 300); yt++) {
            char why[200] = "", what[96];
            /* X 16-byte aligned (cp.async), or 2 bytes past (loaded through registers) */
            uint16_t *xb = malloc((g.M * C + 8) * 2), *x = xb + yt;
            CHECK(xb != NULL);
            if (!xb) continue;
            memcpy(x, g.Xh, g.M * C * 2);
            kt_poison(g.Y, g.M * R);
            memset(g.Yh, 0xff, g.M * R * 2);
            int r = kt_host_gemm_pipe(&d, x, yt ? (void *)g.Yh : g.Y, yt, g.M, why, sizeof why);
            free(xb);
            if (!host_ran(r, nm, k, g.M, why)) continue;
            n_pipe++;
            snprintf(what, sizeof what, "%s host-emulated pipelined mma%s", nm,
                     yt ? " (X unaligned)" : "");
            kt_gemm_case_check(&g, k, yt, what);
        }
        kt_gemm_case_free(&g);
    }
}

int main(void) {
    vt_test_seed();
    kt_for_each_weight(shapes, sizeof shapes / sizeof shapes[0], check_one, NULL);
    printf("%llu emulated tile-kernel GEMMs and %llu pipelined-kernel GEMMs compared\n",
           (unsigned long long)n_runs, (unsigned long long)n_pipe);
    return vt_test_done("test_mma_tile_host");
}
