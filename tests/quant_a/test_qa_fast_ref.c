/* Fast (SIMD, threaded) quantize/dequantize equal the scalar references bit for bit, on fresh
 * random inputs of several shapes and distributions: ragged rows (cols not a multiple of the
 * block), all-zero blocks with signed zeros, a huge outlier, denormals, tiny blocks whose 1/d
 * overflows, arbitrary finite bit patterns, rows long enough to be split into block runs across
 * threads. */
#include "vt_test.h"
#include "vtstore/quant.h"

static const uint32_t kFormats[] = {VT_FMT_F32,  VT_FMT_F16,  VT_FMT_BF16, VT_FMT_Q8_0,
                                    VT_FMT_Q4_0, VT_FMT_Q4_1, VT_FMT_INT8};

enum {
    DIST_NORMAL,
    DIST_ZEROS,
    DIST_OUTLIER,
    DIST_DENORMAL,
    DIST_TINY,
    DIST_BITS,
    DIST_MIXED,
    DIST_COUNT
};

static float gen(uint32_t fmt, int dist, uint64_t i) {
    switch (dist) {
    case DIST_NORMAL:
        return vt_rand_normal() * 3.0f;
    case DIST_ZEROS:
        return (vt_rand_u64() & 1) ? -0.0f : 0.0f;
    case DIST_OUTLIER:
        /* f16 and q4_1 (its f16 minimum) hold |x| < 65520 (range.c); the others more */
        if (vt_rand_u64() % 97 == 0) {
            const float v = 6.0e4f * vt_rand_normal();
            if (fmt != VT_FMT_F16 && fmt != VT_FMT_Q4_1) return v;
            return v > 65504.0f ? 65504.0f : v < -65504.0f ? -65504.0f : v;
        }
        return vt_rand_normal() * 1e-3f;
    case DIST_DENORMAL:
        return vt_rand_normal() * 1e-39f;
    case DIST_TINY:
        return vt_rand_normal() * 1e-37f;
    default: { /* blocks of different character along the row */
        uint64_t blk = (i / 32) % 6;
        if (blk == 0) return 0.0f;
        if (blk == 1) return (vt_rand_u64() & 1) ? -0.0f : vt_rand_normal();
        if (blk == 2) return fabsf(vt_rand_normal()) + ((vt_rand_u64() & 7) ? 0.0f : -0.0f);
        if (blk == 3) return -fabsf(vt_rand_normal());
        if (blk == 4) return (float)((int)(vt_rand_u64() % 17) - 8) * 0.25f; /* ties */
        return vt_rand_normal() * 1e-20f;
    }
    }
}

static int bits_equal(const float *a, const float *b, uint64_t n, uint64_t *where) {
    for (uint64_t i = 0; i < n; i++)
        if (memcmp(&a[i], &b[i], 4) != 0) {
            *where = i;
            return 0;
        }
    return 1;
}

static void run_case(uint32_t fmt, uint64_t rows, uint64_t cols, int dist) {
    char nb[32];
    vt_format_name(fmt, nb, sizeof nb);
    uint64_t n = rows * cols, bytes = vt_quant_bytes(fmt, rows, cols);
    float *x = malloc(n * 4 + 4), *y_ref = malloc(n * 4 + 4), *y_fast = malloc(n * 4 + 4);
    uint8_t *q_ref = malloc(bytes + 1), *q_fast = malloc(bytes + 1);
    for (uint64_t i = 0; i < n; i++) x[i] = gen(fmt, dist, i % cols);
    memset(q_ref, 0xa5, bytes);
    memset(q_fast, 0x5a, bytes);
    CHECK_RC(vt_quantize_ref(fmt, NULL, x, rows, cols, q_ref));
    CHECK_RC(vt_quantize(fmt, NULL, x, rows, cols, q_fast, 0));
    CHECKF(memcmp(q_ref, q_fast, bytes) == 0, "%s %llux%llu dist %d: packed bytes differ", nb,
           (unsigned long long)rows, (unsigned long long)cols, dist);
    CHECK_RC(vt_dequantize_ref(fmt, NULL, q_ref, rows, cols, y_ref));
    CHECK_RC(vt_dequantize(fmt, NULL, q_ref, rows, cols, y_fast, 2));
    uint64_t w = 0;
    CHECKF(bits_equal(y_ref, y_fast, n, &w), "%s %llux%llu dist %d: dequantized differ at %llu", nb,
           (unsigned long long)rows, (unsigned long long)cols, dist, (unsigned long long)w);
    /* single-threaded fast path too */
    CHECK_RC(vt_dequantize(fmt, NULL, q_ref, rows, cols, y_fast, 1));
    CHECKF(bits_equal(y_ref, y_fast, n, &w), "%s 1 thread: dequantized differ at %llu", nb,
           (unsigned long long)w);
    free(x);
    free(y_ref);
    free(y_fast);
    free(q_ref);
    free(q_fast);
}

int main(void) {
    vt_test_seed();
    const uint64_t shapes[][2] = {{1, 1},  {3, 31},   {2, 32},  {5, 33},    {4, 64},
                                  {7, 95}, {16, 256}, {3, 257}, {1, 70001}, {33, 4096}};
    for (size_t f = 0; f < sizeof kFormats / sizeof kFormats[0]; f++)
        for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
            for (int d = 0; d < DIST_COUNT; d++)
                run_case(kFormats[f], shapes[s][0], shapes[s][1], d);
    return vt_test_done("test_qa_fast_ref");
}
