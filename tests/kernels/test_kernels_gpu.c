/* tests/kernels/test_kernels_gpu.c — CUDA kernels against the CPU oracle on fresh random
 * inputs: every format and 2:4 variant, ragged shapes, dequantize to f32/f16/bf16, GEMV batch
 * 1..8, GEMM (both mma.sync kernels and the cuBLAS path, X and Y in f32/f16). Outputs are poisoned
 * (NaN bytes) before each run. Every other shape puts the weight bytes at an odd device address
 * (sub-handles and 2:4 rows start anywhere), and x / the dequantize output off 16-byte alignment
 * (the kernels' scalar paths). An MXFP4 weight with E8M0 scales 0 and 255 checks the FTZ handling.
 * VT_TEST_GPU_QUICK=1 (the compute-sanitizer runs of scripts/gpu_check.sh) runs two shapes and
 * fewer GEMM cases. Exit 77 when there is no CUDA device or the build has no CUDA. */
#include "kern_test_util.h"
#include "kt_gemm_ref.h"
#include "vtstore/device.h"

/* 48: nvfp4 rows end on a half unit; 8240 > 8192: two dequantize tiles per row; 70, 130 rows
 * and M = 70: partial 64 x 64 GEMM tiles */
static const uint64_t shapes[][2] = {{1, 32},    {7, 100},    {3, 48},  {33, 1000},
                                     {70, 4100}, {130, 2048}, {2, 8240}};
static const uint64_t quick_shapes[][2] = {{7, 100}, {70, 300}};
static int quick;
/* VT_TEST_GPU_ONLY=gemv_int: only the integer GEMV kernel's variants at batch 1-2 (a short run
 * for compute-sanitizer's racecheck, which the whole test outlasts) */
static int only_int;

#define DEV_TRY(expr)                                                                              \
    do {                                                                                           \
        int rc__ = (expr);                                                                         \
        if (rc__) {                                                                                \
            fprintf(stderr, "%s:%d: %s: %s %s\n", __FILE__, __LINE__, #expr, vt_strerror(rc__),    \
                    vt_last_error());                                                              \
            exit(1);                                                                               \
        }                                                                                          \
    } while (0)

static void *upload(const void *h, size_t n, void *st) {
    void *d = NULL;
    DEV_TRY(vt_dev_malloc(&d, n ? n : 1));
    if (n) DEV_TRY(vt_dev_memcpy_h2d(d, h, n, st));
    return d;
}

static void *dev_poison(size_t n, void *st) {
    void *d = NULL;
    DEV_TRY(vt_dev_malloc(&d, n));
    DEV_TRY(vt_dev_memset(d, 0xff, n, st)); /* NaN in f32, f16 and bf16 */
    return d;
}

static void download(void *h, const void *d, size_t n, void *st) {
    DEV_TRY(vt_dev_memcpy_d2h(h, d, n, st));
    DEV_TRY(vt_dev_sync(st));
}

/* Upload n bytes at byte offset off of a fresh allocation (freed through *base). */
static void *upload_at(const void *h, size_t n, size_t off, void **base, void *st) {
    uint8_t *d = NULL;
    DEV_TRY(vt_dev_malloc((void **)&d, n + off + 1));
    if (n) DEV_TRY(vt_dev_memcpy_h2d(d + off, h, n, st));
    *base = d;
    return d + off;
}

static void run_one(const kt_weight *k, const char *nm, size_t shape, vt_kernel_ws *ws, void *st) {
    const uint64_t R = k->rows, C = k->cols, n = R * C;
    const int odd = shape & 1; /* odd weight address, unaligned x and dequantize output */
    vt_weight w = k->w;
    void *wbase;
    w.location = VT_LOC_DEVICE;
    w.data = upload_at(k->q, k->w.bytes, odd ? 7 : 0, &wbase, st);
    w.aux = k->scales ? upload(k->scales, C * 4, st) : NULL;

    /* dequantize */
    float *o = malloc(n * 4);
    uint16_t *h = malloc(n * 2);
    /* twice: the full grid, then capped at 3 CTAs (VT_DEQUANT_GRID) so that every CTA of the
     * pipelined kernels runs several tiles (with these shapes a full wave has more CTAs than
     * tiles) */
    for (int t = 0; t < (only_int ? 0 : 6); t++) {
        if (t == 3) setenv("VT_DEQUANT_GRID", "3", 1);
        vt_dtype dt = t % 3 == 0 ? VT_DTYPE_F32 : t % 3 == 1 ? VT_DTYPE_F16 : VT_DTYPE_BF16;
        const size_t es = vt_dtype_size(dt), oo = odd ? 2 : 0; /* elements off alignment */
        uint8_t *dbase = dev_poison((n + oo) * es, st), *dout = dbase + oo * es;
        CHECK_RC(vt_dequant(&w, dt, dout, st));
        uint64_t bad = 0;
        if (t % 3 == 0) {
            download(o, dout, n * 4, st);
            for (uint64_t i = 0; i < n; i++)
                if (!(fabsf(o[i] - k->deq[i]) <= 1e-6f * fabsf(k->deq[i]) + 1e-30f)) bad++;
        } else {
            download(h, dout, n * 2, st);
            for (uint64_t i = 0; i < n; i++) {
                float a = t % 3 == 1 ? vt_f16_to_f32(h[i]) : vt_bf16_to_f32(h[i]);
                float b = t % 3 == 1 ? vt_f16_to_f32(vt_f32_to_f16(k->deq[i]))
                                     : vt_bf16_to_f32(vt_f32_to_bf16(k->deq[i]));
                if (!(fabsf(a - b) <= 1e-2f * fabsf(b))) bad++;
            }
        }
        CHECKF(bad == 0, "%s %llux%llu cuda dequant %s%s: %llu of %llu differ", nm,
               (unsigned long long)R, (unsigned long long)C, vt_dtype_name(dt),
               t >= 3 ? " (grid of 3 CTAs)" : "", (unsigned long long)bad, (unsigned long long)n);
        vt_dev_free(dbase);
    }
    unsetenv("VT_DEQUANT_GRID");

    /* GEMV, batch 1..8 */
    const int B = VT_GEMV_MAX_BATCH;
    float *x = malloc(B * C * 4), *y = malloc(B * R * 4);
    /* yb: the integer kernel's bound (batches 1-2) */
    double *yr = malloc(B * R * 8), *ya = malloc(B * R * 8), *yb = malloc(B * R * 8);
    for (uint64_t i = 0; i < B * C; i++) x[i] = vt_rand_normal();
    kt_ref_gemv(k, x, B, yr);
    kt_ref_abs(k, x, B, ya);
    kt_int_bound(k, x, B, yb);
    void *dxbase;
    void *dx = upload_at(x, B * C * 4, odd ? 4 : 0, &dxbase, st);
    /* every GEMV kernel (gemv.cu): the default (at batch 1-2 the integer kernel for
     * q4_0/q4_1/q4_k/q8_0/int8/awq_int4, the register kernel for the others; the staged kernel's
     * cp.async variant beyond), the integer kernel with its other rows per lane and 3 row groups
     * per CTA (VT_GEMV_R=alt VT_GEMV_G=3), the register kernel's float form (VT_GEMV_KERNEL=float),
     * the staged kernel at every batch (VT_GEMV_KERNEL=staged), its sync variant
     * (VT_GEMV_STAGING=sync), the integer kernel's window loads (VT_GEMV_LOAD=window) with CTAs of
     * one half of warps (VT_GEMV_W=4; the default has two, but for q8_0 at batch 1), nf4, mxfp4
     * and nvfp4 through the integer kernel (VT_GEMV_LUT=int) */
    static const char *const gvar[7] = {"default",      "int R alt G 3",      "float",  "staged",
                                        "sync staging", "int window G 2 W 4", "int lut"};
    for (int var = 0; var < 7; var++) {
        if (only_int && var != 0 && var != 1 && var != 5 && var != 6) continue;
        if (var == 1) setenv("VT_GEMV_R", "alt", 1), setenv("VT_GEMV_G", "3", 1);
        if (var == 2) setenv("VT_GEMV_KERNEL", "float", 1);
        if (var == 3) setenv("VT_GEMV_KERNEL", "staged", 1);
        if (var == 4) setenv("VT_GEMV_STAGING", "sync", 1);
        if (var == 5) /* int8 (no window form): one half of warps per CTA */
            setenv("VT_GEMV_LOAD", "window", 1), setenv("VT_GEMV_G", "2", 1),
                setenv("VT_GEMV_W", "4", 1);
        if (var == 6) setenv("VT_GEMV_LUT", "int", 1); /* nf4/mxfp4/nvfp4: integer kernel */
        for (int b = 1; b <= (only_int ? 2 : B); b++) {
            void *dy = dev_poison(B * R * 4, st);
            CHECK_RC(vt_gemv(&w, dx, dy, b, st));
            download(y, dy, B * R * 4, st);
            /* < 0: bound failed */
            double e = kt_gemv_err_tol(y, yr, ya, b <= 2 ? yb : NULL, (uint64_t)b * R,
                                       var == 6 && k->fmt == VT_FMT_NF4 ? KT_NF4_LUT_ATOL : 1e-5);
            CHECKF(e >= 0, "%s %llux%llu cuda gemv (%s) batch %d: rel err %.3g", nm,
                   (unsigned long long)R, (unsigned long long)C, gvar[var], b, fabs(e));
            for (uint64_t i = (uint64_t)b * R; i < B * R; i++)
                if (!isnan(y[i])) {
                    CHECKF(0, "%s cuda gemv batch %d wrote past its output", nm, b);
                    break;
                }
            vt_dev_free(dy);
        }
        unsetenv("VT_GEMV_KERNEL");
        unsetenv("VT_GEMV_STAGING");
        unsetenv("VT_GEMV_R");
        unsetenv("VT_GEMV_G");
        unsetenv("VT_GEMV_LOAD");
        unsetenv("VT_GEMV_W");
        unsetenv("VT_GEMV_LUT");
    }
    vt_dev_free(dxbase);

    /* GEMM: both algorithms, X and Y in f32 and f16. MMA with f16 X runs the pipelined kernel
     * (X at a 16-byte aligned address, and on odd shapes 2 bytes past one: its register path),
     * then the tile kernel (VT_GEMM_MMA=tile), which f32 X always takes. M = 130: two CTAs of
     * the pipelined kernel in M. */
    const uint64_t Ms[] = {1, 5, 70, 130};
    for (int mi = only_int ? 4 : quick ? 2 : 0; mi < 4; mi++) {
        kt_gemm_case g;
        kt_gemm_case_make(&g, k, Ms[mi]);
        const uint64_t M = g.M;
        void *dXhbase;
        void *dX = upload(g.X, M * C * 4, st);
        void *dXh = upload_at(g.Xh, M * C * 2, odd ? 2 : 0, &dXhbase, st);
        for (int v = 0; v < 3; v++) /* mma, mma with VT_GEMM_MMA=tile, cuBLAS */
            for (int xt = 0; xt < 2; xt++)
                for (int yt = 0; yt < 2; yt++) {
                    if (v == 1 && !xt) continue; /* f32 X: the tile kernel in v 0 already */
                    const vt_gemm_algo algo = v == 2 ? VT_GEMM_CUBLAS : VT_GEMM_MMA;
                    char what[96];
                    void *dY = dev_poison(M * R * (yt ? 2 : 4), st);
                    if (v == 1) setenv("VT_GEMM_MMA", "tile", 1);
                    CHECK_RC(vt_gemm_ex(&w, xt ? dXh : dX, xt ? VT_DTYPE_F16 : VT_DTYPE_F32, dY,
                                        yt ? VT_DTYPE_F16 : VT_DTYPE_F32, M, algo,
                                        algo == VT_GEMM_CUBLAS ? ws : NULL, st));
                    unsetenv("VT_GEMM_MMA");
                    if (yt)
                        download(g.Yh, dY, M * R * 2, st);
                    else
                        download(g.Y, dY, M * R * 4, st);
                    /* W (and X when f32) are rounded to f16 for the tensor cores */
                    snprintf(what, sizeof what, "%s cuda gemm %s X %s%s", nm,
                             v == 0   ? (xt ? "mma (pipelined)" : "mma (tile)")
                             : v == 1 ? "mma (tile)"
                                      : "cublas",
                             xt ? "f16" : "f32", xt && odd ? " (2 bytes off 16)" : "");
                    kt_gemm_case_check(&g, k, yt, what);
                    vt_dev_free(dY);
                }
        vt_dev_free(dX);
        vt_dev_free(dXhbase);
        kt_gemm_case_free(&g);
    }
    vt_dev_free(wbase);
    vt_dev_free((void *)w.aux);
    free(o);
    free(h);
    free(x);
    free(y);
    free(yr);
    free(ya);
    free(yb);
}

typedef struct gpu_ctx {
    vt_kernel_ws *ws;
    void *st;
} gpu_ctx;

static void run_case(const kt_weight *k, const char *nm, size_t shape, void *ctx) {
    const gpu_ctx *g = ctx;
    run_one(k, nm, shape, g->ws, g->st);
}

/* MXFP4 blocks with E8M0 scale bytes 0 (2^-127, an f32 subnormal), 1, 127, 254 and 255 (NaN):
 * the device decode (built with --use_fast_math, so FTZ) must match the reference wherever the
 * reference value is a normal number or NaN; only results below 2^-126 may flush to 0. */
static void check_e8m0(void *st) {
    const uint8_t es[] = {0, 1, 127, 254, 255};
    const uint64_t C = 32 * sizeof es;
    vt_block_mxfp4 b[sizeof es];
    for (size_t i = 0; i < sizeof es; i++) {
        b[i].e = es[i];
        for (int j = 0; j < 16; j++) b[i].qs[j] = (uint8_t)(j * 17 + i); /* every code */
    }
    float ref[sizeof es * 32], got[sizeof es * 32];
    vt_quant_params qp;
    vt_quant_params_init(&qp);
    CHECK_RC(vt_dequantize_ref(VT_FMT_MXFP4, &qp, b, 1, C, ref));
    vt_weight w;
    vt_weight_host(&w, NULL, VT_FMT_MXFP4, 1, C, NULL);
    w.location = VT_LOC_DEVICE;
    w.data = upload(b, sizeof b, st);
    void *d = dev_poison(sizeof got, st);
    CHECK_RC(vt_dequant(&w, VT_DTYPE_F32, d, st));
    download(got, d, sizeof got, st);
    uint64_t bad = 0;
    for (uint64_t i = 0; i < C; i++) {
        float r = ref[i], g = got[i];
        int ok = isnan(r) ? isnan(g) : fabsf(r) < 0x1p-126f ? (g == r || g == 0.0f) : g == r;
        if (!ok && bad++ < 4)
            fprintf(stderr, "mxfp4 e8m0 %u code %llu: got %a, want %a\n", es[i / 32],
                    (unsigned long long)(i % 32), g, r);
    }
    CHECKF(bad == 0, "mxfp4 with E8M0 scales 0/1/127/254/255: %llu of %llu values differ",
           (unsigned long long)bad, (unsigned long long)C);
    vt_dev_free(d);
    vt_dev_free((void *)w.data);
}

int main(void) {
    if (!vt_kernels_cuda_available()) TEST_SKIP("no CUDA device (or this build has no CUDA)");
    vt_test_seed();
    vt_dev_props pr;
    DEV_TRY(vt_dev_info(&pr));
    printf("device: %s, %d SMs, cc %d.%d\n", pr.name, pr.sm_count, pr.cc_major, pr.cc_minor);
    void *st = NULL;
    DEV_TRY(vt_dev_stream_create(&st));
    vt_kernel_ws *ws = NULL;
    DEV_TRY(vt_kernel_ws_create(16u << 20, &ws));
    gpu_ctx g = {ws, st};
    const char *q = getenv("VT_TEST_GPU_QUICK");
    quick = q && *q && strcmp(q, "0") != 0;
    const char *only = getenv("VT_TEST_GPU_ONLY");
    only_int = only && !strcmp(only, "gemv_int");
    if (only_int) printf("VT_TEST_GPU_ONLY=gemv_int: the integer GEMV kernel's variants only\n");
    check_e8m0(st);
    if (quick)
        kt_for_each_weight(quick_shapes, sizeof quick_shapes / sizeof quick_shapes[0], run_case,
                           &g);
    else
        kt_for_each_weight(shapes, sizeof shapes / sizeof shapes[0], run_case, &g);
    float dummy[8];
    vt_weight w;
    vt_weight_host(&w, dummy, VT_FMT_F32, 1, 8, NULL);
    w.location = VT_LOC_DEVICE;
    CHECK(vt_gemv(&w, dummy, dummy, 9, st) == -EINVAL);
    CHECK(vt_gemm_ex(&w, dummy, VT_DTYPE_F32, dummy, VT_DTYPE_F32, 1, VT_GEMM_CUBLAS, NULL, st) ==
          -EINVAL);
    vt_kernel_ws_destroy(ws);
    vt_dev_stream_destroy(st);
    return vt_test_done("test_kernels_gpu");
}
