/* tests/kernels/test_kernels_gpu.c — CUDA kernels against the CPU oracle on fresh random
 * inputs: every format and 2:4 variant, ragged shapes, dequantize to f32/f16/bf16, GEMV batch
 * 1..8, GEMM (mma.sync and cuBLAS paths, X and Y in f32/f16). Outputs are poisoned (NaN bytes)
 * before each run. Exit 77 when there is no CUDA device or the build has no CUDA. */
#include "kern_test_util.h"
#include "vtstore/device.h"

static const uint64_t shapes[][2] = {{1, 32}, {7, 100}, {33, 1000}, {70, 4100}, {130, 2048}};

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

static void run_one(const kt_weight *k, const char *nm, vt_kernel_ws *ws, void *st) {
    const uint64_t R = k->rows, C = k->cols, n = R * C;
    vt_weight w = k->w;
    w.location = VT_LOC_DEVICE;
    w.data = upload(k->q, k->w.bytes, st);
    w.aux = k->scales ? upload(k->scales, C * 4, st) : NULL;

    /* dequantize */
    float *o = malloc(n * 4);
    uint16_t *h = malloc(n * 2);
    for (int t = 0; t < 3; t++) {
        vt_dtype dt = t == 0 ? VT_DTYPE_F32 : t == 1 ? VT_DTYPE_F16 : VT_DTYPE_BF16;
        void *dout = dev_poison(n * vt_dtype_size(dt), st);
        CHECK_RC(vt_dequant(&w, dt, dout, st));
        uint64_t bad = 0;
        if (t == 0) {
            download(o, dout, n * 4, st);
            for (uint64_t i = 0; i < n; i++)
                if (!(fabsf(o[i] - k->deq[i]) <= 1e-6f * fabsf(k->deq[i]) + 1e-30f)) bad++;
        } else {
            download(h, dout, n * 2, st);
            for (uint64_t i = 0; i < n; i++) {
                float a = t == 1 ? vt_f16_to_f32(h[i]) : vt_bf16_to_f32(h[i]);
                float b = t == 1 ? vt_f16_to_f32(vt_f32_to_f16(k->deq[i]))
                                 : vt_bf16_to_f32(vt_f32_to_bf16(k->deq[i]));
                if (!(fabsf(a - b) <= 1e-2f * fabsf(b))) bad++;
            }
        }
        CHECKF(bad == 0, "%s %llux%llu cuda dequant %s: %llu of %llu differ", nm,
               (unsigned long long)R, (unsigned long long)C, vt_dtype_name(dt),
               (unsigned long long)bad, (unsigned long long)n);
        vt_dev_free(dout);
    }

    /* GEMV, batch 1..8 */
    const int B = VT_GEMV_MAX_BATCH;
    float *x = malloc(B * C * 4), *y = malloc(B * R * 4);
    double *yr = malloc(B * R * 8);
    for (uint64_t i = 0; i < B * C; i++) x[i] = vt_rand_normal();
    kt_ref_gemv(k, x, B, yr);
    void *dx = upload(x, B * C * 4, st);
    for (int b = 1; b <= B; b++) {
        void *dy = dev_poison(B * R * 4, st);
        CHECK_RC(vt_gemv(&w, dx, dy, b, st));
        download(y, dy, B * R * 4, st);
        double e = kt_rel_err(y, yr, (uint64_t)b * R);
        CHECKF(e <= 1e-3, "%s %llux%llu cuda gemv batch %d: rel err %.3g", nm,
               (unsigned long long)R, (unsigned long long)C, b, e);
        for (uint64_t i = (uint64_t)b * R; i < B * R; i++)
            if (!isnan(y[i])) {
                CHECKF(0, "%s cuda gemv batch %d wrote past its output", nm, b);
                break;
            }
        vt_dev_free(dy);
    }
    vt_dev_free(dx);

    /* GEMM: both algorithms, X and Y in f32 and f16 */
    const uint64_t Ms[] = {1, 5, 70};
    for (int mi = 0; mi < 3; mi++) {
        uint64_t M = Ms[mi];
        float *X = malloc(M * C * 4), *Y = malloc(M * R * 4);
        uint16_t *Xh = malloc(M * C * 2), *Yh = malloc(M * R * 2);
        double *ref = malloc(M * R * 8);
        for (uint64_t i = 0; i < M * C; i++) {
            Xh[i] = vt_f32_to_f16(vt_rand_normal());
            X[i] = vt_f16_to_f32(Xh[i]);
        }
        kt_ref_gemv(k, X, M, ref);
        void *dX = upload(X, M * C * 4, st), *dXh = upload(Xh, M * C * 2, st);
        for (int algo = VT_GEMM_MMA; algo <= VT_GEMM_CUBLAS; algo++)
            for (int xt = 0; xt < 2; xt++)
                for (int yt = 0; yt < 2; yt++) {
                    void *dY = dev_poison(M * R * (yt ? 2 : 4), st);
                    CHECK_RC(vt_gemm_ex(&w, xt ? dXh : dX, xt ? VT_DTYPE_F16 : VT_DTYPE_F32, dY,
                                        yt ? VT_DTYPE_F16 : VT_DTYPE_F32, M, (vt_gemm_algo)algo,
                                        algo == VT_GEMM_CUBLAS ? ws : NULL, st));
                    if (yt) {
                        download(Yh, dY, M * R * 2, st);
                        vt_f16_to_f32_row(Yh, Y, M * R);
                    } else {
                        download(Y, dY, M * R * 4, st);
                    }
                    /* W (and X when f32) are rounded to f16 for the tensor cores */
                    double e = kt_rel_err(Y, ref, M * R);
                    CHECKF(e <= 1e-3, "%s %llux%llu cuda gemm %s M=%llu X %s Y %s: rel err %.3g",
                           nm, (unsigned long long)R, (unsigned long long)C,
                           algo == VT_GEMM_MMA ? "mma" : "cublas", (unsigned long long)M,
                           xt ? "f16" : "f32", yt ? "f16" : "f32", e);
                    vt_dev_free(dY);
                }
        vt_dev_free(dX);
        vt_dev_free(dXh);
        free(X);
        free(Y);
        free(Xh);
        free(Yh);
        free(ref);
    }
    vt_dev_free((void *)w.data);
    vt_dev_free((void *)w.aux);
    free(o);
    free(h);
    free(x);
    free(y);
    free(yr);
}

typedef struct gpu_ctx {
    vt_kernel_ws *ws;
    void *st;
} gpu_ctx;

static void run_case(const kt_weight *k, const char *nm, size_t shape, void *ctx) {
    (void)shape;
    const gpu_ctx *g = ctx;
    run_one(k, nm, g->ws, g->st);
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
