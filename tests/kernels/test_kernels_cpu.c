/* tests/kernels/test_kernels_cpu.c — host kernels against the oracle on fresh random inputs:
 * every format (and its 2:4 variant), ragged shapes, batch 1..8; the decoders (scalar and AVX2)
 * against vt_dequantize_ref value by value; the fused GEMV kernel on every row-group size and
 * batch 1..8 with x prepared as vt_gemv does (every format it covers must take it); vt_dequant
 * to f32/f16/bf16; GEMM with f32/f16 X and Y; argument errors and allocation faults. Outputs are
 * poisoned with NaN before every run. */
#include "kern_test_util.h"
#include "kt_gemm_ref.h"
#include "kernels/kern_internal.h"

static const uint64_t shapes[][2] = {{1, 32}, {7, 100}, {33, 1000}, {19, 4100}, {64, 2048}};

static void test_decoders(const kt_weight *k, const char *nm) {
    vt_kdesc d;
    CHECK_RC(vt_kdesc_init(&d, &k->w, "test"));
    float buf[VT_KC];
    for (int fast = 0; fast < 2; fast++) {
        vt_kdecode_fn dec = vt_kdecode_get(&d, fast);
        uint64_t bad = 0;
        for (uint64_t r = 0; r < k->rows; r++)
            for (uint64_t k0 = 0; k0 < k->cols; k0 += VT_KC) {
                uint32_t n = (uint32_t)(k->cols - k0 < VT_KC ? k->cols - k0 : VT_KC);
                kt_poison(buf, VT_KC);
                dec(&d, r, k0, n, buf);
                for (uint32_t i = 0; i < n; i++) {
                    float ref = k->deq[r * k->cols + k0 + i];
                    /* fused multiply-add (q4_1 and awq in AVX2) may differ in the last bit */
                    if (!(fabsf(buf[i] - ref) <= 1e-6f * fabsf(ref))) bad++;
                }
            }
        CHECKF(bad == 0, "%s %llux%llu decoder(fast=%d): %llu values differ from the oracle", nm,
               (unsigned long long)k->rows, (unsigned long long)k->cols, fast,
               (unsigned long long)bad);
    }
}

static void test_dequant(const kt_weight *k, const char *nm) {
    uint64_t n = k->rows * k->cols;
    float *o = malloc(n * 4);
    uint16_t *h = malloc(n * 2);
    kt_poison(o, n);
    CHECK_RC(vt_dequant(&k->w, VT_DTYPE_F32, o, NULL));
    uint64_t bad = 0;
    for (uint64_t i = 0; i < n; i++)
        if (!(fabsf(o[i] - k->deq[i]) <= 1e-6f * fabsf(k->deq[i]))) bad++;
    CHECKF(bad == 0, "%s vt_dequant f32: %llu of %llu differ", nm, (unsigned long long)bad,
           (unsigned long long)n);
    for (int t = 0; t < 2; t++) {
        memset(h, 0xff, n * 2); /* NaN pattern in both f16 and bf16 */
        CHECK_RC(vt_dequant(&k->w, t ? VT_DTYPE_BF16 : VT_DTYPE_F16, h, NULL));
        bad = 0;
        for (uint64_t i = 0; i < n; i++) {
            uint16_t want = t ? vt_f32_to_bf16(k->deq[i]) : vt_f32_to_f16(k->deq[i]);
            float a = t ? vt_bf16_to_f32(h[i]) : vt_f16_to_f32(h[i]);
            float b = t ? vt_bf16_to_f32(want) : vt_f16_to_f32(want);
            if (!(fabsf(a - b) <= 1e-2f * fabsf(b))) bad++; /* one ulp of fma slack at most */
        }
        CHECKF(bad == 0, "%s vt_dequant %s: %llu differ", nm, t ? "bf16" : "f16",
               (unsigned long long)bad);
    }
    free(o);
    free(h);
}

/* The error bound of vt_gemv over batch b of x (outputs [b][rows] as ybi's layout): the AVX2 and
 * AVX-512 kernels' integer forms (vt_kfused_xint) quantize x per 64 columns to at most
 * max |x| / 32768 and take NF4 levels as round(16383 v) / 16383 (kernels.h), so the bound adds
 * those terms;
 * ybi: room for VT_GEMV_MAX_BATCH x rows. Returns the error as kt_gemv_err_tol. */
static double gemv_err_b(const kt_weight *k, const float *x, int b, const float *y,
                         const double *ref, const double *absref, double *ybi) {
    vt_kdesc d;
    if (vt_kdesc_init(&d, &k->w, "test") || !vt_kfused_xint(&d, b))
        return kt_gemv_err(y, ref, absref, (uint64_t)b * k->rows);
    const uint32_t base = VT_FMT_BASE(k->fmt);
    kt_int_bound_g(k, x, (uint64_t)b, ybi, 64, 32767.0);
    return kt_gemv_err_tol(y, ref, absref, ybi, (uint64_t)b * k->rows,
                           base == VT_FMT_NF4 || base == VT_FMT_NF4_DQ ? KT_NF4_LUT_ATOL : 1e-5);
}

static void test_gemv(const kt_weight *k, const char *nm) {
    const int B = VT_GEMV_MAX_BATCH;
    float *x = malloc(B * k->cols * 4), *y = malloc(B * k->rows * 4);
    double *yr = malloc(B * k->rows * 8), *ya = malloc(B * k->rows * 8);
    double *yb = malloc(B * k->rows * 8);
    for (uint64_t i = 0; i < B * k->cols; i++) x[i] = vt_rand_normal();
    kt_ref_gemv(k, x, B, yr);
    kt_ref_abs(k, x, B, ya);
    for (int b = 1; b <= B; b++) {
        kt_poison(y, B * k->rows);
        CHECK_RC(vt_gemv(&k->w, x, y, b, NULL));
        double e = gemv_err_b(k, x, b, y, yr, ya, yb); /* < 0: bound failed */
        CHECKF(e >= 0, "%s %llux%llu gemv batch %d: rel err %.3g", nm, (unsigned long long)k->rows,
               (unsigned long long)k->cols, b, -e);
        for (uint64_t i = (uint64_t)b * k->rows; i < B * k->rows; i++)
            if (!isnan(y[i])) {
                CHECKF(0, "%s gemv batch %d wrote past its output", nm, b);
                break;
            }
    }
    for (int f64 = 0; f64 < 2; f64++) { /* the reference kernels themselves */
        kt_poison(y, B * k->rows);
        CHECK_RC(vt_gemv_ref(&k->w, x, y, 3, f64));
        /* the f32 reference: 1e-4 norm-wise plus a term for cancellation, as kt_gemv_err */
        double d, nr, na = 0;
        kt_err_norms(y, yr, 3 * k->rows, &d, &nr);
        for (uint64_t i = 0; i < 3 * k->rows; i++) na += ya[i] * ya[i];
        CHECKF(d <= (f64 ? 1e-7 * nr : 1e-4 * nr + 1e-6 * sqrt(na)),
               "%s gemv_ref f64=%d: rel err %.3g", nm, f64, nr > 0 ? d / nr : d);
    }
    free(x);
    free(y);
    free(yr);
    free(ya);
    free(yb);
}

/* The fused GEMV kernel itself (vt_kfused_rows) over all rows in groups of nr = 1..VT_KFUSE_ROWS
 * rows (the last group what is left), every batch: vt_gemv's row split depends on the thread
 * count, so it alone may never hand the kernel a full group. Checked over the columns the kernel
 * covers, against f64 sums of the oracle's values, with vt_gemv's norm-wise bound (a single output
 * near zero may have a larger relative error). */
static void test_fused_rows(const kt_weight *k, const char *nm) {
    vt_kdesc d;
    CHECK_RC(vt_kdesc_init(&d, &k->w, "test"));
    const int B = VT_GEMV_MAX_BATCH;
    float *x = malloc(B * k->cols * 4), *y = malloc(B * k->rows * 4);
    double *ref = malloc(B * k->rows * 8), *ra = malloc(B * k->rows * 8);
    double *bi = malloc(B * k->rows * 8), *bt = malloc(B * k->rows * 8);
    for (uint64_t i = 0; i < B * k->cols; i++) x[i] = vt_rand_normal();
    /* formats the fused kernel in use must cover (whole 256-column blocks at least) */
    const uint32_t base = VT_FMT_BASE(k->fmt);
    const int four = base == VT_FMT_Q4_0 || base == VT_FMT_Q4_1 || base == VT_FMT_Q4_K ||
                     base == VT_FMT_NF4 || base == VT_FMT_NF4_DQ || base == VT_FMT_MXFP4 ||
                     base == VT_FMT_NVFP4 || base == VT_FMT_AWQ_INT4;
    const int eight = base == VT_FMT_Q6_K || base == VT_FMT_Q8_0 || base == VT_FMT_INT8;
    const int want =
        !d.sparse && k->cols >= 256 && (vt_kcpu_avx512() ? four || eight : vt_kcpu_avx2() && four);
    uint64_t kf = 0;
    for (int nr = 1; nr <= VT_KFUSE_ROWS; nr++)
        for (int b = 1; b <= B; b++) {
            float out[VT_KFUSE_ROWS * VT_GEMV_MAX_BATCH];
            vt_kx xp;
            CHECK_RC(vt_kfused_prep(&d, x, b, &xp));
            kt_poison(y, B * k->rows);
            for (uint64_t r0 = 0; r0 < k->rows; r0 += (uint64_t)nr) {
                int n = k->rows - r0 < (uint64_t)nr ? (int)(k->rows - r0) : nr;
                kt_poison(out, VT_KFUSE_ROWS * VT_GEMV_MAX_BATCH);
                uint64_t kg = vt_kfused_rows(&d, r0, n, &xp, out);
                if (!kg) {
                    vt_kfused_unprep(&xp);
                    CHECKF(!want, "%s %llux%llu batch %d: no fused path", nm,
                           (unsigned long long)k->rows, (unsigned long long)k->cols, b);
                    goto done; /* no fused path for this format and CPU */
                }
                CHECKF(r0 == 0 ? kg <= k->cols : kg == kf, "%s fused rows %llu+%d: %llu columns",
                       nm, (unsigned long long)r0, n, (unsigned long long)kg);
                kf = kg;
                memcpy(y + r0 * b, out, (size_t)n * b * 4);
                for (int v = n * b; v < VT_KFUSE_ROWS * VT_GEMV_MAX_BATCH; v++)
                    if (!isnan(out[v])) {
                        CHECKF(0, "%s fused rows batch %d wrote past its output", nm, b);
                        break;
                    }
            }
            vt_kfused_unprep(&xp);
            for (uint64_t r = 0; r < k->rows; r++)
                for (int v = 0; v < b; v++) {
                    double s = 0, a = 0;
                    for (uint64_t c = 0; c < kf; c++) {
                        double t = (double)k->deq[r * k->cols + c] * x[v * k->cols + c];
                        s += t;
                        a += fabs(t);
                    }
                    ref[r * b + v] = s;
                    ra[r * b + v] = a;
                }
            double e;                    /* < 0: bound failed */
            if (vt_kfused_xint(&d, b)) { /* the integer form's terms (gemv_err_b), [r][v] */
                const uint32_t base = VT_FMT_BASE(k->fmt);
                kt_int_bound_g(k, x, (uint64_t)b, bt, 64, 32767.0);
                for (uint64_t r = 0; r < k->rows; r++)
                    for (int v = 0; v < b; v++) bi[r * b + v] = bt[v * k->rows + r];
                e = kt_gemv_err_tol(y, ref, ra, bi, k->rows * b,
                                    base == VT_FMT_NF4 || base == VT_FMT_NF4_DQ ? KT_NF4_LUT_ATOL
                                                                                : 1e-5);
            } else {
                e = kt_gemv_err(y, ref, ra, k->rows * b);
            }
            CHECKF(e >= 0, "%s %llux%llu fused rows in groups of %d, batch %d: rel err %.3g", nm,
                   (unsigned long long)k->rows, (unsigned long long)k->cols, nr, b, -e);
        }
done:
    free(x);
    free(y);
    free(ref);
    free(ra);
    free(bi);
    free(bt);
}

static void test_gemm(const kt_weight *k, const char *nm) {
    const uint64_t Ms[] = {1, 5, 37};
    for (int mi = 0; mi < 3; mi++) {
        uint64_t M = Ms[mi];
        float *X = malloc(M * k->cols * 4), *Y = malloc(M * k->rows * 4);
        uint16_t *Xh = malloc(M * k->cols * 2), *Yh = malloc(M * k->rows * 2);
        double *yr = malloc(M * k->rows * 8), *ya = malloc(M * k->rows * 8);
        for (uint64_t i = 0; i < M * k->cols; i++) {
            Xh[i] = vt_f32_to_f16(vt_rand_normal());
            X[i] = vt_f16_to_f32(Xh[i]); /* same values in both input types */
        }
        kt_ref_gemv(k, X, M, yr);
        kt_ref_abs(k, X, M, ya);
        for (int xt = 0; xt < 2; xt++)
            for (int yt = 0; yt < 2; yt++) {
                kt_poison(Y, M * k->rows);
                memset(Yh, 0xff, M * k->rows * 2);
                CHECK_RC(vt_gemm(&k->w, xt ? (void *)Xh : (void *)X,
                                 xt ? VT_DTYPE_F16 : VT_DTYPE_F32, yt ? (void *)Yh : (void *)Y,
                                 yt ? VT_DTYPE_F16 : VT_DTYPE_F32, M, NULL));
                if (yt) vt_f16_to_f32_row(Yh, Y, M * k->rows);
                /* f16 output adds one rounding of 2^-11 relative: inside the bound */
                double e = kt_gemv_err(Y, yr, ya, M * k->rows); /* < 0: bound failed */
                CHECKF(e >= 0, "%s %llux%llu gemm M=%llu X %s Y %s: rel err %.3g", nm,
                       (unsigned long long)k->rows, (unsigned long long)k->cols,
                       (unsigned long long)M, xt ? "f16" : "f32", yt ? "f16" : "f32", -e);
            }
        kt_poison(Y, M * k->rows);
        CHECK_RC(vt_gemm_ref(&k->w, X, Y, M, 1));
        CHECK(kt_rel_err(Y, yr, M * k->rows) <= 1e-7);
        free(X);
        free(Y);
        free(Xh);
        free(Yh);
        free(yr);
        free(ya);
    }
}

static void test_errors(void) {
    kt_weight k;
    CHECK_RC(kt_make(&k, VT_FMT_Q4_0, 4, 64));
    float x[8 * 64], y[8 * 4];
    memset(x, 0, sizeof x);
    CHECK(vt_gemv(&k.w, x, y, 0, NULL) == -EINVAL);
    CHECK(vt_gemv(&k.w, x, y, 9, NULL) == -EINVAL);
    CHECK(vt_gemv(&k.w, NULL, y, 1, NULL) == -EINVAL);
    CHECK(vt_dequant(&k.w, VT_DTYPE_I8, y, NULL) == VT_EUNSUPPORTED);
    CHECK(vt_gemm(&k.w, x, VT_DTYPE_BF16, y, VT_DTYPE_F32, 1, NULL) == VT_EUNSUPPORTED);
    vt_weight w = k.w;
    w.bytes = 10;
    CHECK(vt_gemv(&w, x, y, 1, NULL) == -EINVAL);
    CHECK(strstr(vt_last_error(), "q4_0") != NULL);
    if (!vt_kernels_cuda_available()) {
        w = k.w;
        w.location = VT_LOC_DEVICE;
        CHECK(vt_gemv(&w, x, y, 1, NULL) == VT_ENODEV);
        vt_kernel_ws *ws = (vt_kernel_ws *)1;
        CHECK(vt_kernel_ws_create(0, &ws) == VT_ENODEV && ws == NULL);
    }
    vt_kernel_ws_destroy(NULL);
    kt_free(&k);

    /* the per-call x preparation (awq: x / s; odd batches: padding) may fail to allocate: -ENOMEM
     * at every site, nothing leaked (ASan) */
    CHECK_RC(kt_make(&k, VT_FMT_AWQ_INT4, 8, 256));
    float xa[3 * 256], ya[3 * 8];
    for (int i = 0; i < 3 * 256; i++) xa[i] = vt_rand_normal();
    vt_fault_arm(VT_FAULT_ALLOC, UINT64_MAX, 0);
    CHECK_RC(vt_gemv(&k.w, xa, ya, 3, NULL));
    uint64_t sites = vt_fault_count();
    vt_fault_disarm();
    CHECK(sites > 0 || !vt_kcpu_avx2()); /* the fused kernels prepare awq's x */
    for (uint64_t n = 1; n <= sites; n++) {
        vt_fault_arm(VT_FAULT_ALLOC, n, -ENOMEM);
        int rc = vt_gemv(&k.w, xa, ya, 3, NULL);
        vt_fault_disarm();
        CHECKF(rc == -ENOMEM, "gemv alloc fault %llu of %llu: rc %d", (unsigned long long)n,
               (unsigned long long)sites, rc);
    }
    kt_free(&k);
}

/* Scales the quantization library refuses (an nvfp4 tensor_scale or an awq channel scale that
 * is 0, negative, NaN or infinite) are refused by every kernel entry, with the format (and the
 * column) named, and nothing written: taken as given they zeroed, negated or NaN'd outputs. */
static void test_bad_scales(void) {
    const float bad[] = {0.0f, -0.0f, -1.0f, NAN, INFINITY, -INFINITY};
    const uint32_t fmts[] = {VT_FMT_NVFP4, VT_FMT_NVFP4 | VT_FMT_SPARSE24, VT_FMT_AWQ_INT4,
                             VT_FMT_AWQ_INT4 | VT_FMT_SPARSE24};
    for (size_t f = 0; f < sizeof fmts / sizeof fmts[0]; f++) {
        kt_weight k;
        CHECK_RC(kt_make(&k, fmts[f], 4, 256));
        char nb[32];
        const char *nm = vt_format_name(fmts[f], nb, sizeof nb);
        int awq = VT_FMT_BASE(fmts[f]) == VT_FMT_AWQ_INT4;
        float x[2 * 256], y[2 * 4], o[4 * 256];
        for (int i = 0; i < 2 * 256; i++) x[i] = vt_rand_normal();
        for (size_t b = 0; b < sizeof bad / sizeof bad[0]; b++) {
            vt_weight w = k.w;
            float keep = awq ? k.scales[77] : 0.0f;
            if (awq)
                k.scales[77] = bad[b];
            else
                w.tensor_scale = bad[b];
            int rc[5];
            for (int i = 0; i < 2 * 4; i++) y[i] = 42.0f;
            o[0] = 42.0f;
            rc[0] = vt_gemv(&w, x, y, 1, NULL);
            rc[1] = vt_gemv(&w, x, y, 2, NULL);
            rc[2] = vt_gemm(&w, x, VT_DTYPE_F32, y, VT_DTYPE_F32, 2, NULL);
            rc[3] = vt_dequant(&w, VT_DTYPE_F32, o, NULL);
            rc[4] = vt_gemv_ref(&w, x, y, 1, 1);
            for (int i = 0; i < 5; i++)
                CHECKF(rc[i] == -EINVAL, "%s scale %g: call %d rc %d", nm, (double)bad[b], i,
                       rc[i]);
            CHECKF(
                strstr(vt_last_error(), VT_FMT_BASE(fmts[f]) == VT_FMT_NVFP4 ? "nvfp4" : "awq") &&
                    (!awq || strstr(vt_last_error(), "column 77")),
                "%s scale %g: message '%s'", nm, (double)bad[b], vt_last_error());
            int touched = o[0] != 42.0f;
            for (int i = 0; i < 2 * 4; i++) touched |= y[i] != 42.0f;
            CHECKF(!touched, "%s scale %g: output written on a refused call", nm, (double)bad[b]);
            if (awq) k.scales[77] = keep;
        }
        /* the largest finite and a tiny positive scale are valid */
        vt_weight w = k.w;
        if (!awq) {
            w.tensor_scale = 3.402823466e38f;
            CHECK_RC(vt_gemv(&w, x, y, 1, NULL));
            w.tensor_scale = 1e-30f;
            CHECK_RC(vt_gemv(&w, x, y, 1, NULL));
        }
        kt_free(&k);
    }
}

/* nvfp4's tensor scale has no default: a handle made without it (vt_weight_host with no params,
 * or with params fresh from vt_quant_params_init) is refused by every entry, naming
 * tensor_scale, with nothing written (it was taken as 1: values off by the real scale). The
 * handle made with the params that quantized the blocks gives the reference's values; the other
 * formats ignore the unset scale. */
static void test_unset_scale(void) {
    const uint32_t fmts[] = {VT_FMT_NVFP4, VT_FMT_NVFP4 | VT_FMT_SPARSE24};
    float x[2 * 256], y[2 * 4], o[4 * 256];
    for (int i = 0; i < 2 * 256; i++) x[i] = vt_rand_normal();
    vt_quant_params unset;
    vt_quant_params_init(&unset);
    for (size_t f = 0; f < sizeof fmts / sizeof fmts[0]; f++) {
        kt_weight k;
        CHECK_RC(kt_make(&k, fmts[f], 4, 256));
        char nb[32];
        const char *nm = vt_format_name(fmts[f], nb, sizeof nb);
        CHECKF(k.p.tensor_scale != 1.0f, "%s: observed scale is 1, the old default", nm);
        for (int h = 0; h < 2; h++) {
            vt_weight w;
            vt_weight_host(&w, k.q, fmts[f], 4, 256, h ? &unset : NULL);
            CHECKF(isnan(w.tensor_scale), "%s: handle scale %g without params", nm,
                   (double)w.tensor_scale);
            for (int i = 0; i < 2 * 4; i++) y[i] = 42.0f;
            o[0] = 42.0f;
            for (int c = 0; c < 5; c++) {
                int rc = c == 0   ? vt_gemv(&w, x, y, 1, NULL)
                         : c == 1 ? vt_gemv(&w, x, y, 2, NULL)
                         : c == 2 ? vt_gemm(&w, x, VT_DTYPE_F32, y, VT_DTYPE_F32, 2, NULL)
                         : c == 3 ? vt_dequant(&w, VT_DTYPE_F32, o, NULL)
                                  : vt_gemv_ref(&w, x, y, 1, 1);
                CHECKF(rc == -EINVAL && strstr(vt_last_error(), "nvfp4") &&
                           strstr(vt_last_error(), "tensor_scale is unset"),
                       "%s, %s params: call %d rc %d (%s)", nm, h ? "unset" : "no", c, rc,
                       vt_last_error());
            }
            int touched = o[0] != 42.0f;
            for (int i = 0; i < 2 * 4; i++) touched |= y[i] != 42.0f;
            CHECKF(!touched, "%s: output written on a refused call", nm);
        }
        /* explicit: the quantizing params' scale, carried by the handle */
        vt_weight w;
        vt_weight_host(&w, k.q, fmts[f], 4, 256, &k.p);
        CHECK(w.tensor_scale == k.p.tensor_scale);
        CHECK_RC(vt_dequant(&w, VT_DTYPE_F32, o, NULL));
        uint64_t bad = 0;
        for (int i = 0; i < 4 * 256; i++)
            if (!(fabsf(o[i] - k.deq[i]) <= 1e-6f * fabsf(k.deq[i]))) bad++;
        CHECKF(bad == 0, "%s: %llu values differ from vt_dequantize_ref", nm,
               (unsigned long long)bad);
        kt_free(&k);
    }
    kt_weight k;
    CHECK_RC(kt_make(&k, VT_FMT_Q4_0, 4, 256));
    vt_weight w;
    vt_weight_host(&w, k.q, VT_FMT_Q4_0, 4, 256, &unset);
    CHECK(w.tensor_scale == 1.0f);
    CHECK_RC(vt_gemv(&w, x, y, 1, NULL));
    kt_free(&k);
}

/* A handle whose byte or element count overflows 64 bits is refused before anything is read (f32
 * 2^62 + 1 rows x 4 had vt_quant_bytes wrap to 16, passing the size check). */
static void test_overflow(void) {
    float data[64] = {0}, x[8 * 64] = {0}, y[8];
    const struct {
        uint32_t fmt;
        uint64_t rows, cols;
    } c[] = {{VT_FMT_F32, (1ull << 62) + 1, 4},
             {VT_FMT_Q4_0, 1ull << 60, 32},
             {VT_FMT_NF4_DQ, 1ull << 60, 64 * 64},
             {VT_FMT_Q4_0, 1ull << 58, 32}, /* bytes fit 64 bits, rows x cols x 4 not */
             {VT_FMT_Q8_0, 1ull << 61, 1}}; /* rows x cols x 4 fits, 34-byte rows do not */
    for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
        vt_weight w;
        vt_weight_host(&w, data, c[i].fmt, c[i].rows, c[i].cols, NULL);
        if (!w.bytes) w.bytes = UINT64_MAX; /* a caller claiming any size */
        int rc = vt_gemv(&w, x, y, 1, NULL);
        CHECKF(rc == -EOVERFLOW && strstr(vt_last_error(), "overflows"),
               "case %zu: vt_gemv rc %d (%s)", i, rc, vt_last_error());
        CHECK(vt_dequant(&w, VT_DTYPE_F32, y, NULL) == -EOVERFLOW);
        CHECK(vt_gemm(&w, x, VT_DTYPE_F32, y, VT_DTYPE_F32, 1, NULL) == -EOVERFLOW);
        CHECK(vt_gemv_ref(&w, x, y, 1, 0) == -EOVERFLOW);
    }
}

/* The integer forms' x (vt_kfused_xint: AVX2 nf4, nf4_dq, mxfp4, nvfp4, q4_0; AVX-512 q4_0,
 * q4_1): taken for ordinary x, not for x with a NaN or an infinity (those must reach the output)
 * or with a 64-column group below 2^-100 in magnitude (the f32 path then); very large and very
 * small x and all-zero groups stay within the bound; its buffer's allocation failure is reported.
 * 320 columns (5 groups: the AVX-512 kernel's last odd group) and 384 (6: a run of 4 and one of
 * 2). Runs on every ISA (elsewhere the form is off and the same checks hold for the f32 paths). */
static void test_xint(void) {
    const uint32_t fmts[] = {VT_FMT_NF4,   VT_FMT_NF4_DQ, VT_FMT_MXFP4,
                             VT_FMT_NVFP4, VT_FMT_Q4_0,   VT_FMT_Q4_1};
    for (size_t f = 0; f < 2 * sizeof fmts / sizeof fmts[0]; f++) {
        const int C = f % 2 ? 384 : 320;
        kt_weight k;
        CHECK_RC(kt_make(&k, fmts[f / 2], 8, (uint64_t)C));
        char nb[32];
        const char *nm = vt_format_name(fmts[f / 2], nb, sizeof nb);
        vt_kdesc d;
        CHECK_RC(vt_kdesc_init(&d, &k.w, "test"));
        float x[2 * 384], y[2 * 8];
        double yr[2 * 8], ya[2 * 8], yb[2 * 8];
        const float mags[] = {1.0f, 1e30f, 1e-30f, 1e-35f};
        for (int m = 0; m < 5; m++)
            for (int b = 1; b <= 2; b++) {
                for (int i = 0; i < 2 * C; i++)
                    x[i] = m < 4        ? mags[m] * vt_rand_normal()
                           : i % C < 64 ? 0.0f
                                        : vt_rand_normal();
                vt_kx px;
                CHECK_RC(vt_kfused_prep(&d, x, b, &px));
                /* 1e-35 x: groups below 2^-100 (7.9e-31), so the f32 path */
                CHECKF((px.xq != NULL) == (vt_kfused_xint(&d, b) && m != 3),
                       "%s x magnitude case %d batch %d: integer form %s", nm, m, b,
                       px.xq ? "taken" : "not taken");
                vt_kfused_unprep(&px);
                kt_ref_gemv(&k, x, (uint64_t)b, yr);
                kt_ref_abs(&k, x, (uint64_t)b, ya);
                kt_poison(y, 2 * 8);
                CHECK_RC(vt_gemv(&k.w, x, y, b, NULL));
                double e = gemv_err_b(&k, x, b, y, yr, ya, yb);
                CHECKF(e >= 0, "%s x magnitude case %d batch %d: rel err %.3g", nm, m, b, -e);
            }
        for (int nf = 0; nf < 2; nf++) { /* a NaN / an infinity in the second vector */
            for (int i = 0; i < 2 * C; i++) x[i] = vt_rand_normal();
            x[C + 100] = nf ? INFINITY : NAN;
            vt_kx px;
            CHECK_RC(vt_kfused_prep(&d, x, 2, &px));
            CHECKF(px.xq == NULL, "%s: integer form taken for x with %s", nm, nf ? "inf" : "NaN");
            vt_kfused_unprep(&px);
            kt_poison(y, 2 * 8);
            CHECK_RC(vt_gemv(&k.w, x, y, 2, NULL));
            int bad = 0;
            for (int r = 0; r < 8; r++) bad += isfinite(y[r]) == 0 || isfinite(y[8 + r]) != 0;
            CHECKF(bad == 0, "%s: %d outputs wrong with a %s in x", nm, bad, nf ? "inf" : "NaN");
        }
        if (vt_kfused_xint(&d, 1)) { /* the x buffer's allocation */
            for (int i = 0; i < C; i++) x[i] = vt_rand_normal();
            vt_fault_arm(VT_FAULT_ALLOC, 1, -ENOMEM);
            int rc = vt_gemv(&k.w, x, y, 1, NULL);
            vt_fault_disarm();
            CHECKF(rc == -ENOMEM, "%s: gemv with the x buffer's allocation failing: rc %d", nm, rc);
        }
        kt_free(&k);
    }
}

static void run_one(const kt_weight *k, const char *nm, size_t shape, void *ctx) {
    (void)ctx;
    test_decoders(k, nm);
    test_dequant(k, nm);
    test_gemv(k, nm);
    test_fused_rows(k, nm);
    if (shape < 4) test_gemm(k, nm);
}

int main(void) {
    vt_test_seed();
    printf("cpu isa: %s\n", vt_kernels_cpu_isa());
    kt_for_each_weight(shapes, sizeof shapes / sizeof shapes[0], run_one, NULL);
    test_errors();
    test_bad_scales();
    test_unset_scale();
    test_overflow();
    test_xint();
    return vt_test_done("test_kernels_cpu");
}
