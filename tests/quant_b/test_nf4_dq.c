/* test_nf4_dq: NF4 with double-quantized absmax — fast (threaded) == ref bit-identical on ragged
 * shapes and edge cases, super-block fields recomputed here from the data, aligned row chunks
 * quantize to the same bytes as the whole tensor, and SQNR on N(0,1) close to plain nf4. */
#include "qb_util.h"

#include <stddef.h>

static void check_eq(uint64_t rows, uint64_t cols, int pat) {
    uint64_t n = rows * cols, nb = vt_nf4dq_bytes(rows, cols);
    float *x = malloc((n + 1) * sizeof(float)), *y0 = malloc((n + 1) * sizeof(float)),
          *y1 = malloc((n + 1) * sizeof(float));
    uint8_t *q0 = malloc(nb), *q1 = malloc(nb);
    qb_fill(x, n, pat);
    memset(q0, 0x11, nb);
    memset(q1, 0x22, nb);
    CHECK_RC(vt_nf4dq_quantize(x, rows, cols, q0, 1, 1));
    CHECK_RC(vt_nf4dq_quantize(x, rows, cols, q1, 0, 2));
    CHECKF(memcmp(q0, q1, nb) == 0, "nf4_dq fast != ref quantize (%llu x %llu, %s)",
           (unsigned long long)rows, (unsigned long long)cols, qb_pattern_name[pat]);
    y0[n] = y1[n] = 5.5f;
    CHECK_RC(vt_nf4dq_dequantize(q0, rows, cols, y0, 1, 1));
    CHECK_RC(vt_nf4dq_dequantize(q0, rows, cols, y1, 0, 2));
    CHECKF(memcmp(y0, y1, n * sizeof(float)) == 0,
           "nf4_dq fast != ref dequantize (%llu x %llu, %s)", (unsigned long long)rows,
           (unsigned long long)cols, qb_pattern_name[pat]);
    CHECK(y0[n] == 5.5f && y1[n] == 5.5f);
    int finite = 1;
    for (uint64_t i = 0; i < n; i++) finite &= isfinite(y0[i]) != 0;
    CHECKF(finite, "nf4_dq non-finite output (%s)", qb_pattern_name[pat]);

    /* super-block fields recomputed from the data (normal pattern: no degenerate groups) */
    if (pat == QB_NORMAL) {
        uint64_t bpr = (cols + 63) / 64, nblk = rows * bpr;
        for (uint64_t g = 0; g * 256 < nblk; g++) {
            double sum = 0;
            float am[256];
            uint64_t m = nblk - g * 256 < 256 ? nblk - g * 256 : 256;
            for (uint64_t b = 0; b < m; b++) {
                uint64_t k = g * 256 + b, r = k / bpr, c0 = (k % bpr) * 64;
                am[b] = 0;
                for (uint64_t c = c0; c < cols && c < c0 + 64; c++)
                    am[b] = fmaxf(am[b], fabsf(x[r * cols + c]));
                sum += am[b];
            }
            vt_block_nf4_dq blk;
            memcpy(&blk, q0 + g * sizeof blk, sizeof blk);
            CHECKF(blk.offset == (float)(sum / (double)m), "group %llu offset %g, mean %g",
                   (unsigned long long)g, blk.offset, sum / (double)m);
            float dev = 0;
            for (uint64_t b = 0; b < m; b++) dev = fmaxf(dev, fabsf(am[b] - blk.offset));
            CHECK(blk.scale == dev / 127.0f);
            for (uint64_t b = 0; b < m; b++) {
                float back = blk.offset + blk.scale * blk.absmax_q[b];
                CHECKF(fabsf(back - am[b]) <= 0.5f * blk.scale * 1.0001f + 1e-7f,
                       "group %llu block %llu absmax %g stored as %g", (unsigned long long)g,
                       (unsigned long long)b, am[b], back);
            }
            for (uint64_t b = m; b < 256; b++)
                CHECK(blk.absmax_q[b] == 0 && blk.qs[32 * b] == 0x77);
        }
    }
    free(x), free(y0), free(y1), free(q0), free(q1);
}

/* Quantizing aligned row chunks one at a time gives the bytes of the whole tensor. */
static void check_chunks(uint64_t rows, uint64_t cols) {
    uint64_t bpr = (cols + 63) / 64, g = 256, b = bpr;
    while (b) { /* gcd(256, bpr) */
        uint64_t t = g % b;
        g = b, b = t;
    }
    uint64_t align = 256 / g, n = rows * cols, nb = vt_nf4dq_bytes(rows, cols);
    float *x = malloc(n * sizeof(float));
    uint8_t *whole = malloc(nb), *parts = malloc(nb);
    qb_fill(x, n, QB_NORMAL);
    CHECK_RC(vt_nf4dq_quantize(x, rows, cols, whole, 0, 0));
    uint64_t off = 0;
    for (uint64_t r = 0; r < rows; r += align) {
        uint64_t nr = rows - r < align ? rows - r : align;
        CHECK_RC(vt_nf4dq_quantize(x + r * cols, nr, cols, parts + off, 0, 1));
        off += vt_nf4dq_bytes(nr, cols);
    }
    CHECK(off == nb);
    CHECKF(memcmp(whole, parts, nb) == 0, "nf4_dq chunks of %llu rows differ from the whole",
           (unsigned long long)align);
    free(x), free(whole), free(parts);
}

int main(void) {
    vt_test_seed();
    static const uint64_t shapes[][2] = {{1, 1},     {3, 100}, {5, 64},   {7, 1000},  {300, 64},
                                         {17, 4099}, {2, 65},  {600, 33}, {1, 16384}, {4, 16448}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        for (int pat = 0; pat < QB_NPATTERNS; pat++) check_eq(shapes[s][0], shapes[s][1], pat);
    check_chunks(40, 200); /* bpr 4: 64-row alignment */
    check_chunks(700, 96); /* bpr 2: 128-row alignment, ragged tail */
    check_chunks(3, 20000);
    CHECK(vt_nf4dq_bytes(0, 64) == 0);
    CHECK(vt_nf4dq_bytes(1, 1) == sizeof(vt_block_nf4_dq));
    CHECK(vt_nf4dq_bytes(256, 64) == sizeof(vt_block_nf4_dq));
    CHECK(vt_nf4dq_bytes(257, 64) == 2 * sizeof(vt_block_nf4_dq));
    double bpw = vt_nf4dq_bytes(4096, 4096) * 8.0 / (4096.0 * 4096.0);
    CHECKF(fabs(bpw - 8456.0 * 8 / 16384) < 1e-12, "bits/weight %g", bpw);

    /* SQNR on N(0,1): the absmax error of double quantization costs little over nf4 */
    enum { ROWS = 256, COLS = 4096 };
    float *x = malloc(ROWS * COLS * sizeof(float)), *y = malloc(ROWS * COLS * sizeof(float));
    uint8_t *q = malloc(vt_nf4dq_bytes(ROWS, COLS));
    for (int i = 0; i < ROWS * COLS; i++) x[i] = vt_rand_normal();
    CHECK_RC(vt_nf4dq_quantize(x, ROWS, COLS, q, 0, 0));
    CHECK_RC(vt_nf4dq_dequantize(q, ROWS, COLS, y, 0, 0));
    double s_dq = qb_sqnr(x, y, ROWS * COLS);
    uint8_t *qp = malloc(COLS / 64 * sizeof(vt_block_nf4));
    for (int r = 0; r < ROWS; r++) {
        vt_qops_nf4.quantize(x + r * COLS, qp, COLS, NULL);
        vt_qops_nf4.dequantize(qp, y + r * COLS, COLS, NULL);
    }
    double s_nf4 = qb_sqnr(x, y, ROWS * COLS);
    printf("SQNR on N(0,1), 2^20 values: nf4_dq %.3f dB, nf4 %.3f dB\n", s_dq, s_nf4);
    CHECKF(s_dq > s_nf4 - 0.1 && s_dq <= s_nf4 + 0.02, "nf4_dq SQNR %.3f vs nf4 %.3f", s_dq, s_nf4);
    free(x), free(y), free(q), free(qp);
    return vt_test_done("test_nf4_dq");
}
