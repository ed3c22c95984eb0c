/* tests/kernels/test_gemv_lane_host.c — the GEMV kernels' lane code (kernels/cuda
 * gemv_lane.cuh) run on the host for whole warps (tests/kernels/gemv_lane_host.cu), and the
 * staged kernel's whole CTAs in both its variants (gemv_cta.cuh via gemv_cta_host.cu: barriers
 * and cp.async emulated), the register kernel's and the integer kernel's with 1 and 3 row groups
 * per CTA (gemv_rows.cuh, batch 1-2), against the f64
 * reference: every format and 2:4 variant, ragged shapes, batch 1..8 (each batch size template: 1,
 * 2, 4, 8 with fewer vectors), x 16-byte aligned (float4 path) and not (scalar path), weights at an
 * odd address, outputs poisoned, nothing written past the batch; the CTAs' global loads inside
 * the weight's bytes, x and the channel scales (gemv_cta_host.cu). mxfp4/nvfp4 weights with block
 * scales at the ends of their codes (subnormal, NaN), and the integer kernel's NF4 levels exactly.
 * Needs nvcc, not a GPU. */
#include "kern_internal.h"
#include "kern_test_util.h"
#include "kt_gemm_ref.h"

int kt_host_gemv(const vt_kdesc *d, const float *x, float *y, int batch);
int kt_host_gemv_cta(const vt_kdesc *d, const float *x, float *y, int batch, int async, char *why,
                     size_t cap);
void kt_host_nf4_int_levels(int32_t L[16]);

static const uint64_t shapes[][2] = {{1, 32}, {7, 100}, {3, 48}, {33, 1000}, {5, 4100}, {41, 1001}};
/* lane-level runs; whole-CTA runs (sync, async, rows, int G1, int G3, int window, int halves, int
 * lut); runs of the integer kernel on non-finite x */
static uint64_t n_runs, n_cta[8], n_bad;

/* y (poisoned, B x R) against the reference for batch b; what: the path's name; bi, atol: the
 * integer kernel's x-quantization bound (or NULL) and the term for cancellation, times |W| |x|
 * (kt_gemv_err_tol) */
static void check_y_tol(const float *y, const double *ref, const double *ra, const double *bi,
                        uint64_t R, int b, int B, const char *nm, uint64_t C, const char *what,
                        int mis, double atol) {
    double e = kt_gemv_err_tol(y, ref, ra, bi, (uint64_t)b * R, atol); /* < 0: bound failed */
    CHECKF(e >= 0, "%s %llux%llu %s batch %d x %s: rel err %.3g", nm, (unsigned long long)R,
           (unsigned long long)C, what, b, mis ? "unaligned" : "aligned", fabs(e));
    for (uint64_t i = (uint64_t)b * R; i < (uint64_t)B * R; i++)
        if (!isnan(y[i])) {
            CHECKF(0, "%s %s batch %d wrote past its output", nm, what, b);
            break;
        }
}

static void check_y(const float *y, const double *ref, const double *ra, uint64_t R, int b, int B,
                    const char *nm, uint64_t C, const char *what, int mis) {
    check_y_tol(y, ref, ra, NULL, R, b, B, nm, C, what, mis, 1e-5);
}

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
    double *ref = malloc(B * R * 8), *ra = malloc(B * R * 8), *bi = malloc(B * R * 8);
    for (int mis = 0; mis < 2 && rc == 0; mis++) {
        float *x = xb + mis; /* mis: x off 16-byte alignment, the scalar path */
        for (uint64_t i = 0; i < B * C; i++) x[i] = vt_rand_normal();
        kt_ref_gemv(k, x, B, ref);
        kt_ref_abs(k, x, B, ra);
        kt_int_bound(k, x, B, bi);
        for (int b = 1; b <= B; b++) {
            kt_poison(y, B * R);
            int r = kt_host_gemv(&d, x, y, b); /* 77: no lane-level path (2:4 rows) */
            CHECKF(r == 0 || r == 77, "%s %llux%llu batch %d: %d %s", nm, (unsigned long long)R,
                   (unsigned long long)C, b, r, vt_last_error());
            if (r != 0 && r != 77) continue;
            if (r == 0) {
                n_runs++;
                check_y(y, ref, ra, R, b, B, nm, C, "host-emulated gemv", mis);
            }
            /* the staged kernel's whole CTAs, both variants (its barriers and cp.async), and
             * the register kernel's (batch 1-2) */
            static const char *vname[8] = {"gemv CTA sync",       "gemv CTA async",
                                           "gemv CTA rows",       "gemv CTA int G1",
                                           "gemv CTA int G3",     "gemv CTA int window",
                                           "gemv CTA int halves", "gemv CTA int lut"};
            for (int async = 0; async < 8; async++) {
                char why[200] = "";
                kt_poison(y, B * R);
                r = kt_host_gemv_cta(&d, x, y, b, async, why, sizeof why);
                if (r == 77) continue;
                CHECKF(r == 0, "%s %llux%llu batch %d %s: %s", nm, (unsigned long long)R,
                       (unsigned long long)C, b, vname[async], why);
                if (r) continue;
                n_cta[async]++;
                check_y_tol(y, ref, ra, async >= 3 ? bi : NULL, R, b, B, nm, C, vname[async], mis,
                            async == 7 && k->fmt == VT_FMT_NF4 ? KT_NF4_LUT_ATOL : 1e-5);
            }
        }
    }
    /* the integer kernel on x with an infinity or a NaN: every row NaN (its unit's scale is
     * NaN), never a finite sum that hides it */
    for (int bad = 0; bad < 2 && rc == 0; bad++) {
        float *x = xb;
        for (uint64_t i = 0; i < C; i++) x[i] = vt_rand_normal();
        x[C / 2] = bad ? NAN : INFINITY;
        char why[200] = "";
        kt_poison(y, B * R);
        for (uint64_t i = 0; i < R; i++) y[i] = 0.0f;
        int r = kt_host_gemv_cta(&d, x, y, 1, 3, why, sizeof why);
        if (r == 77) break;
        CHECKF(r == 0, "%s int kernel, x with %s: %s", nm, bad ? "NaN" : "inf", why);
        uint64_t fin = 0;
        for (uint64_t i = 0; i < R; i++) fin += !isnan(y[i]);
        CHECKF(fin == 0, "%s %llux%llu int kernel, x with %s at column %llu: %llu finite rows", nm,
               (unsigned long long)R, (unsigned long long)C, bad ? "NaN" : "inf",
               (unsigned long long)(C / 2), (unsigned long long)fin);
        n_bad++;
    }
    /* the integer kernel on x of tiny (1e-30) and huge (1e30) magnitudes (its 2^+-64 pre-scale)
     * against the reference */
    for (int t = 0; t < 2 && rc == 0; t++) {
        float *x = xb;
        const float m = t ? 1e30f : 1e-30f;
        for (uint64_t i = 0; i < C; i++) x[i] = m * vt_rand_normal();
        kt_ref_gemv(k, x, 1, ref);
        kt_ref_abs(k, x, 1, ra);
        char why[200] = "";
        kt_poison(y, B * R);
        int r = kt_host_gemv_cta(&d, x, y, 1, t ? 6 : 3, why, sizeof why);
        if (r == 77) break;
        CHECKF(r == 0, "%s int kernel, x of %g: %s", nm, m, why);
        check_y(y, ref, ra, R, 1, B, nm, C, t ? "int kernel, x of 1e30" : "int kernel, x of 1e-30",
                0);
    }
    free(xb);
    free(y);
    free(ref);
    free(ra);
    free(bi);
    free(buf);
}

/* mxfp4 / nvfp4 block scales at the ends of their codes, which the quantizer does not write from
 * N(0,1) data but a stored weight can hold, through every GEMV kernel that takes the weight (the
 * integer kernel's VT_GEMV_LUT=int form included) against the reference of the same bytes.
 * kind 0: every scale tiny (mxfp4 exponents 0, 1 and 2: 2^-127, 2^-126, 2^-125, the first two
 * the integer kernel's subnormal branch and the decoders' 2^-127 case; nvfp4 E4M3 0 and its
 * subnormals, either sign), x of 1e30 for mxfp4 so that the sums are normal floats (on the host:
 * a GPU's flush-to-zero of these products is not emulated). kind 1 (nvfp4): any E4M3 scale but
 * NaN, either sign. kind 2: the quantizer's scales with a NaN scale (mxfp4 255, nvfp4 0x7f /
 * 0xff) in one block of every third row: those rows' sums NaN, the other rows held. */
static uint64_t n_scale_runs, n_scale_nan;
static void scale_case(uint32_t fmt, uint64_t R, uint64_t C, int kind, int odd) {
    const int mx = fmt == VT_FMT_MXFP4, B = 4;
    const uint64_t be = mx ? 32 : 16, bb = mx ? 17 : 9, nbr = (C + be - 1) / be, rb = nbr * bb;
    char nm[48];
    vt_format_name(fmt, nm, sizeof nm);
    kt_weight k;
    int rc = kt_make(&k, fmt, R, C);
    CHECKF(rc == 0 && vt_quant_bytes(fmt, R, C) == R * rb, "%s: making test weight: %s", nm,
           vt_last_error());
    if (rc) {
        kt_free(&k);
        return;
    }
    for (uint64_t r = 0; r < R; r++) {
        const uint64_t nanb = vt_rand_u64() % nbr;
        for (uint64_t b = 0; b < nbr; b++) {
            uint8_t *s = k.q + r * rb + b * bb; /* the block's scale byte */
            const uint64_t u = vt_rand_u64();
            if (kind == 0)
                *s = mx ? (uint8_t)(u % 3) : (uint8_t)((u & 7) | (u >> 8 & 0x80));
            else if (kind == 1)
                *s = (uint8_t)((u & 0x7f) == 0x7f ? u & 0x80 : u & 0xff);
            else if (r % 3 == 1 && b == nanb)
                *s = mx ? 255 : (u & 1) ? 0x7f : 0xff;
        }
    }
    CHECK_RC(vt_dequantize_ref(fmt, &k.p, k.q, R, C, k.deq));
    uint8_t *buf = malloc(R * rb + 7); /* at an odd address (mxfp4/nvfp4's byte loads) or not */
    memcpy(buf + 7 * odd, k.q, R * rb);
    vt_weight w = k.w;
    w.data = buf + 7 * odd;
    vt_kdesc d;
    CHECK_RC(vt_kdesc_init(&d, &w, "test"));
    float *x = malloc(B * C * 4), *y = malloc(B * R * 4), *ys = malloc(B * R * 4);
    double *ref = malloc(B * R * 8), *ra = malloc(B * R * 8), *bi = malloc(B * R * 8);
    double *rs = malloc(B * R * 8), *as = malloc(B * R * 8), *bs = malloc(B * R * 8);
    for (uint64_t i = 0; i < B * C; i++) x[i] = (kind == 0 && mx ? 1e30f : 1.0f) * vt_rand_normal();
    kt_ref_gemv(&k, x, B, ref);
    kt_ref_abs(&k, x, B, ra);
    kt_int_bound(&k, x, B, bi);
    static const int batches[] = {1, 2, 4};
    for (size_t bi_ = 0; bi_ < sizeof batches / sizeof batches[0]; bi_++) {
        const int nb = batches[bi_];
        for (int async = 0; async < 8; async++) {
            char why[200] = "";
            kt_poison(y, B * R);
            int r = kt_host_gemv_cta(&d, x, y, nb, async, why, sizeof why);
            if (r == 77) continue;
            CHECKF(r == 0, "%s %llux%llu scales kind %d batch %d kernel %d: %s", nm,
                   (unsigned long long)R, (unsigned long long)C, kind, nb, async, why);
            if (r) continue;
            n_scale_runs++;
            /* rows whose reference is NaN must be NaN; the others within the bound */
            uint64_t n = 0, bad_nan = 0;
            for (uint64_t i = 0; i < (uint64_t)nb * R; i++) {
                if (isnan(ref[i])) {
                    bad_nan += !isnan(y[i]);
                    n_scale_nan++;
                    continue;
                }
                ys[n] = y[i], rs[n] = ref[i], as[n] = ra[i], bs[n] = bi[i], n++;
            }
            CHECKF(bad_nan == 0,
                   "%s %llux%llu scales kind %d batch %d kernel %d: %llu NaN-scale rows not NaN",
                   nm, (unsigned long long)R, (unsigned long long)C, kind, nb, async,
                   (unsigned long long)bad_nan);
            const double e = kt_gemv_err_tol(ys, rs, as, async >= 3 ? bs : NULL, n, 1e-5);
            CHECKF(e >= 0, "%s %llux%llu scales kind %d batch %d kernel %d: rel err %.3g", nm,
                   (unsigned long long)R, (unsigned long long)C, kind, nb, async, fabs(e));
            for (uint64_t i = (uint64_t)nb * R; i < (uint64_t)B * R; i++)
                if (!isnan(y[i])) {
                    CHECKF(0, "%s scales kind %d batch %d kernel %d wrote past its output", nm,
                           kind, nb, async);
                    break;
                }
        }
    }
    free(x), free(y), free(ys), free(ref), free(ra), free(bi), free(rs), free(as), free(bs);
    free(buf);
    kt_free(&k);
}

/* The integer kernel's NF4 levels (VT_GEMV_LUT=int) are round(16383 level) of the reference's
 * levels (vt_dequantize_ref of a block of absmax 1 with every code), exactly: a table byte off by
 * a few units stays inside the GEMV bound (KT_NF4_LUT_ATOL; 4 / 16383 on one level: 2.4e-4). */
static void check_nf4_levels(void) {
    vt_block_nf4 blk;
    blk.absmax = 1.0f;
    for (int i = 0; i < VT_QK_NF4 / 2; i++) /* element 2i in the high nibble: codes 0..15 */
        blk.qs[i] = (uint8_t)((2 * i % 16) << 4 | (2 * i + 1) % 16);
    vt_quant_params p;
    vt_quant_params_init(&p);
    float lv[VT_QK_NF4];
    CHECK_RC(vt_dequantize_ref(VT_FMT_NF4, &p, &blk, 1, VT_QK_NF4, lv));
    int32_t L[16];
    kt_host_nf4_int_levels(L);
    for (int c = 0; c < 16; c++)
        CHECKF(L[c] == (int32_t)lrint(16383.0 * lv[c]),
               "nf4 code %d: the integer kernel's level %d / 16383, want round(16383 x %.9g) = %ld",
               c, L[c], lv[c], lrint(16383.0 * lv[c]));
}

int main(void) {
    vt_test_seed();
    check_nf4_levels();
    kt_for_each_weight(shapes, sizeof shapes / sizeof shapes[0], check_one, NULL);
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        for (int kind = 0; kind < 3; kind++) {
            if (kind != 1) scale_case(VT_FMT_MXFP4, shapes[s][0], shapes[s][1], kind, s & 1);
            scale_case(VT_FMT_NVFP4, shapes[s][0], shapes[s][1], kind, s & 1);
        }
    printf("%llu GEMVs of mxfp4/nvfp4 weights with end-of-range scales, %llu NaN rows\n",
           (unsigned long long)n_scale_runs, (unsigned long long)n_scale_nan);
    CHECK(n_scale_runs > 0 && n_scale_nan > 0);
    printf("%llu emulated GEMVs compared (lanes); whole CTAs: %llu sync, %llu async, %llu rows, "
           "%llu + %llu int, %llu int window, %llu int halves, %llu int lut\n",
           (unsigned long long)n_runs, (unsigned long long)n_cta[0], (unsigned long long)n_cta[1],
           (unsigned long long)n_cta[2], (unsigned long long)n_cta[3], (unsigned long long)n_cta[4],
           (unsigned long long)n_cta[5], (unsigned long long)n_cta[6],
           (unsigned long long)n_cta[7]);
    CHECKF(n_cta[0] > 0 && n_cta[1] > 0 && n_cta[2] > 0 && n_cta[3] > 0 && n_cta[4] > 0 &&
               n_cta[5] > 0 && n_cta[6] > 0 && n_cta[7] > 0,
           "a GEMV CTA variant never ran");
    CHECKF(n_bad > 0, "the integer kernel never ran on non-finite x");
    return vt_test_done("test_gemv_lane_host");
}
