/* The dispatcher (quant_dispatch.c) over every format that can quantize, quant-B's included:
 * threaded vt_quantize/vt_dequantize equal the single-threaded _ref on fresh random data for
 * shapes that exercise its work split (many short rows per task, one row split into runs of
 * whole blocks across tasks, with AWQ channel scales offset per run), the 2:4 sparse variants,
 * and NaN/Inf found by a worker thread reported with the right row and column. A format whose
 * code is not in the build (VT_EUNSUPPORTED) is reported and skipped. */
#include "vt_test.h"
#include "vtstore/quant.h"

static void run(uint32_t fmt, uint64_t rows, uint64_t cols, const float *x, const float *s) {
    char nb[32];
    vt_format_name(fmt, nb, sizeof nb);
    uint64_t n = rows * cols, bytes = vt_quant_bytes(fmt, rows, cols);
    if (bytes == 0) {
        printf("skip %s: not in this build\n", nb);
        return;
    }
    vt_quant_params p;
    vt_quant_params_init(&p);
    p.channel_scale = s;
    p.channel_count = cols;
    CHECK_RC(vt_quant_observe(fmt, &p, x, n));
    uint8_t *qr = malloc(bytes), *qf = malloc(bytes);
    float *yr = malloc(n * 4), *yf = malloc(n * 4);
    memset(qr, 0x11, bytes);
    memset(qf, 0x22, bytes);
    int rc = vt_quantize_ref(fmt, &p, x, rows, cols, qr);
    if (rc == VT_EUNSUPPORTED) {
        printf("skip %s: %s\n", nb, vt_last_error());
        goto out;
    }
    CHECK_RC(rc);
    for (int th = 0; th <= 2; th++) {
        CHECK_RC(vt_quantize(fmt, &p, x, rows, cols, qf, th));
        CHECKF(memcmp(qr, qf, bytes) == 0, "%s %llux%llu threads %d: bytes differ from ref", nb,
               (unsigned long long)rows, (unsigned long long)cols, th);
    }
    CHECK_RC(vt_dequantize_ref(fmt, &p, qr, rows, cols, yr));
    for (int th = 0; th <= 2; th++) {
        CHECK_RC(vt_dequantize(fmt, &p, qr, rows, cols, yf, th));
        CHECKF(memcmp(yr, yf, n * 4) == 0, "%s %llux%llu threads %d: values differ from ref", nb,
               (unsigned long long)rows, (unsigned long long)cols, th);
    }
out:
    free(qr);
    free(qf);
    free(yr);
    free(yf);
}

int main(void) {
    vt_test_seed();
    const uint64_t shapes[][2] = {{1, 200003}, {3, 70000}, {37, 257}, {256, 64}};
    for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++) {
        uint64_t rows = shapes[si][0], cols = shapes[si][1], n = rows * cols;
        float *x = malloc(n * 4), *s = malloc(cols * 4);
        for (uint64_t i = 0; i < n; i++) x[i] = vt_rand_normal() * (float)(1 + (i % 7));
        for (uint64_t c = 0; c < cols; c++) s[c] = 0.5f + (float)vt_rand_uniform();
        for (uint32_t f = 0; f < VT_FMT_COUNT; f++) {
            if (!vt_format_get(f)->can_quantize) continue;
            run(f, rows, cols, x, s);
            if (f != VT_FMT_NF4_DQ) run(f | VT_FMT_SPARSE24, rows, cols, x, s);
        }
        free(x);
        free(s);
    }

    /* a NaN deep in a row that is split across tasks */
    uint64_t cols = 300000;
    float *x = malloc(cols * 4);
    uint8_t *q = malloc(vt_quant_bytes(VT_FMT_Q8_0, 1, cols));
    for (uint64_t i = 0; i < cols; i++) x[i] = vt_rand_normal();
    uint64_t c1 = 100000 + vt_rand_u64() % 150000, c2 = c1 + 1 + vt_rand_u64() % 40000;
    x[c2] = INFINITY;
    x[c1] = NAN;
    char want[64];
    snprintf(want, sizeof want, "row 0, column %llu", (unsigned long long)c1);
    CHECK(vt_quantize(VT_FMT_Q8_0, NULL, x, 1, cols, q, 2) == VT_ENONFINITE);
    CHECKF(strstr(vt_last_error(), want) != NULL, "'%s' lacks '%s'", vt_last_error(), want);
    free(x);
    free(q);
    return vt_test_done("test_qa_dispatch");
}
