/* Properties of quant-A's formats on fresh random data: round-trip error bounds per format,
 * NaN/Inf rejected with VT_ENONFINITE naming row and column, the padding of ragged rows, the
 * format table (names, "+2:4" parsing, byte counts, bits per weight), vt_quant_observe, and
 * argument checks. */
#include <errno.h>

#include "vt_test.h"
#include "vtstore/blocks.h"
#include "vtstore/quant.h"

/* |x - y| <= bound for every element of each block, bounds from the stored scales. */
static void check_roundtrip(uint32_t fmt, uint64_t rows, uint64_t cols) {
    char nb[32];
    vt_format_name(fmt, nb, sizeof nb);
    uint64_t n = rows * cols, bytes = vt_quant_bytes(fmt, rows, cols);
    uint64_t rb = vt_quant_row_bytes(fmt, cols);
    float *x = malloc(n * 4), *y = malloc(n * 4);
    uint8_t *q = malloc(bytes);
    for (uint64_t i = 0; i < n; i++) x[i] = vt_rand_normal() * (float)(1 + (i / 32) % 5);
    CHECK_RC(vt_quantize(fmt, NULL, x, rows, cols, q, 0));
    CHECK_RC(vt_dequantize(fmt, NULL, q, rows, cols, y, 0));
    int bad = 0;
    for (uint64_t r = 0; r < rows && !bad; r++)
        for (uint64_t c = 0; c < cols && !bad; c++) {
            float xv = x[r * cols + c], yv = y[r * cols + c], bound = 0.0f;
            const uint8_t *row = q + r * rb;
            uint16_t h, h2;
            float df;
            switch (fmt) {
            case VT_FMT_F32:
                bound = 0.0f;
                break;
            case VT_FMT_F16:
                bound = fmaxf(fabsf(xv) * 0x1p-11f, 0x1p-25f);
                break;
            case VT_FMT_BF16:
                bound = fabsf(xv) * 0x1p-8f;
                break;
            case VT_FMT_Q8_0: /* q = round(x/d): half a step, plus d's f16 rounding times 127 */
                memcpy(&h, row + (c / 32) * 34, 2);
                df = vt_f16_to_f32(h);
                bound = df * 0.5f + 127.0f * df * 0x1p-11f + 1e-30f;
                break;
            case VT_FMT_Q4_0:
                memcpy(&h, row + (c / 32) * 18, 2);
                df = vt_f16_to_f32(h);
                /* codes run -8..7: values of the sign opposite to the largest-magnitude one
                 * beyond 7.5 steps are clamped to 7 (up to one step off), others round */
                bound = fabsf(df) * (xv / df > 7.49f ? 1.0f : 0.5f) + 8.0f * fabsf(df) * 0x1p-11f +
                        1e-30f;
                break;
            case VT_FMT_Q4_1:
                memcpy(&h, row + (c / 32) * 20, 2);
                memcpy(&h2, row + (c / 32) * 20 + 2, 2);
                df = vt_f16_to_f32(h);
                /* m is f16(min): its rounding shifts every value */
                bound = df * 0.5f + 15.0f * df * 0x1p-11f + fabsf(vt_f16_to_f32(h2)) * 0x1p-11f +
                        1e-30f;
                break;
            case VT_FMT_INT8:
                memcpy(&df, row + (c / 64) * 68, 4);
                bound = df * 0.5f + fabsf(xv) * 0x1p-22f; /* + rounding of q * d */
                break;
            }
            if (!(fabsf(xv - yv) <= bound)) {
                CHECKF(0, "%s: row %llu col %llu x=%g y=%g err %g > bound %g", nb,
                       (unsigned long long)r, (unsigned long long)c, (double)xv, (double)yv,
                       (double)fabsf(xv - yv), (double)bound);
                bad = 1;
            }
        }
    free(x);
    free(y);
    free(q);
}

/* A ragged row quantizes like the row padded with zeros to whole blocks, and dequantizes to
 * exactly cols values (the value after the row is untouched). */
static void check_padding(uint32_t fmt, uint64_t cols) {
    const vt_format_info *fi = vt_format_get(fmt);
    uint64_t padded = (cols + fi->block_elems - 1) / fi->block_elems * fi->block_elems;
    float *x = calloc(padded, 4), *y = malloc((cols + 1) * 4);
    uint64_t bytes = vt_quant_bytes(fmt, 1, cols);
    CHECK(bytes == vt_quant_bytes(fmt, 1, padded));
    uint8_t *qa = malloc(bytes), *qb = malloc(bytes);
    for (uint64_t i = 0; i < cols; i++) x[i] = vt_rand_normal();
    CHECK_RC(vt_quantize(fmt, NULL, x, 1, cols, qa, 1));
    CHECK_RC(vt_quantize_ref(fmt, NULL, x, 1, padded, qb));
    CHECKF(memcmp(qa, qb, bytes) == 0, "%s cols %llu: padding is not zeros", fi->name,
           (unsigned long long)cols);
    y[cols] = 12345.0f;
    CHECK_RC(vt_dequantize(fmt, NULL, qa, 1, cols, y, 1));
    CHECK(y[cols] == 12345.0f);
    CHECK_RC(vt_dequantize_ref(fmt, NULL, qa, 1, cols, y));
    CHECK(y[cols] == 12345.0f);
    free(x);
    free(y);
    free(qa);
    free(qb);
}

static void check_nonfinite(uint32_t fmt) {
    const uint64_t rows = 9, cols = 77;
    float *x = malloc(rows * cols * 4);
    uint8_t *q = malloc(vt_quant_bytes(fmt, rows, cols));
    const float bad[3] = {NAN, INFINITY, -INFINITY};
    for (int k = 0; k < 3; k++) {
        for (uint64_t i = 0; i < rows * cols; i++) x[i] = vt_rand_normal();
        uint64_t r = vt_rand_u64() % rows, c = vt_rand_u64() % cols;
        x[r * cols + c] = bad[k];
        char want[64];
        snprintf(want, sizeof want, "row %llu, column %llu", (unsigned long long)r,
                 (unsigned long long)c);
        int rc = vt_quantize(fmt, NULL, x, rows, cols, q, 0);
        CHECKF(rc == VT_ENONFINITE, "fmt %u: rc %d", fmt, rc);
        CHECKF(strstr(vt_last_error(), want) != NULL, "message '%s' lacks '%s'", vt_last_error(),
               want);
        rc = vt_quantize_ref(fmt, NULL, x, rows, cols, q);
        CHECKF(rc == VT_ENONFINITE, "fmt %u ref: rc %d", fmt, rc);
        CHECKF(strstr(vt_last_error(), want) != NULL, "ref message '%s' lacks '%s'",
               vt_last_error(), want);
    }
    free(x);
    free(q);
}

static void check_table(void) {
    static const char *names[] = {"f32",  "f16",  "bf16", "q8_0",   "q4_0",  "q4_1",  "q4_k",
                                  "q6_k", "int8", "nf4",  "nf4_dq", "nvfp4", "mxfp4", "awq_int4"};
    CHECK(sizeof names / sizeof names[0] == VT_FMT_COUNT);
    for (uint32_t f = 0; f < VT_FMT_COUNT; f++) {
        uint32_t got = 999;
        char buf[32];
        CHECK_RC(vt_format_from_name(names[f], &got));
        CHECK(got == f);
        CHECK(strcmp(vt_format_name(f, buf, sizeof buf), names[f]) == 0);
        const vt_format_info *fi = vt_format_get(f);
        CHECK(fi && strcmp(fi->name, names[f]) == 0);
        if (f != VT_FMT_NF4_DQ) {
            char sp[40];
            snprintf(sp, sizeof sp, "%s+2:4", names[f]);
            CHECK_RC(vt_format_from_name(sp, &got));
            CHECK(got == (f | VT_FMT_SPARSE24));
            CHECK(strcmp(vt_format_name(got, buf, sizeof buf), sp) == 0);
            snprintf(sp, sizeof sp, "%s+sparse", names[f]);
            CHECK_RC(vt_format_from_name(sp, &got));
            CHECK(got == (f | VT_FMT_SPARSE24));
            CHECK(fi->bits_per_weight == 8.0 * fi->block_bytes / fi->block_elems);
        }
    }
    uint32_t got;
    CHECK_RC(vt_format_from_name("Q4_K", &got));
    CHECK(got == VT_FMT_Q4_K);
    CHECK(vt_format_from_name("q5_0", &got) == -EINVAL);
    CHECK(strstr(vt_last_error(), "q5_0") != NULL);
    CHECK(vt_format_from_name("q4_0+3:4", &got) == -EINVAL);
    CHECK(vt_format_from_name("nf4_dq+2:4", &got) == -EINVAL);
    CHECK(vt_format_from_name("", &got) == -EINVAL);
    CHECK(vt_format_get(VT_FMT_COUNT) == NULL);
    CHECK(vt_format_get(0x200u) == NULL);
    char buf[8];
    CHECK(strcmp(vt_format_name(77, buf, sizeof buf), "?") == 0);

    /* byte counts: whole blocks per row */
    CHECK(vt_quant_row_bytes(VT_FMT_Q8_0, 33) == 68);
    CHECK(vt_quant_row_bytes(VT_FMT_Q4_0, 32) == 18);
    CHECK(vt_quant_row_bytes(VT_FMT_Q4_1, 1) == 20);
    CHECK(vt_quant_row_bytes(VT_FMT_Q4_K, 257) == 288);
    CHECK(vt_quant_row_bytes(VT_FMT_Q6_K, 256) == 210);
    CHECK(vt_quant_row_bytes(VT_FMT_INT8, 65) == 136);
    CHECK(vt_quant_row_bytes(VT_FMT_F16, 7) == 14);
    CHECK(vt_quant_row_bytes(VT_FMT_F32, 7) == 28);
    CHECK(vt_quant_bytes(VT_FMT_Q4_0, 3, 33) == 3 * 36);
    CHECK(vt_quant_bytes(VT_FMT_BF16, 5, 3) == 30);
    CHECK(vt_quant_row_bytes(VT_FMT_NF4_DQ, 64) == 0);
    /* sizes past 64 bits are 0, never a wrapped count (f32 2^62 + 1 rows x 4 wrapped to 16) */
    CHECK(vt_quant_bytes(VT_FMT_F32, (1ull << 62) + 1, 4) == 0);
    CHECK(vt_quant_bytes(VT_FMT_F32, (1ull << 60) - 1, 4) == ((1ull << 60) - 1) * 16);
    CHECK(vt_quant_bytes(VT_FMT_Q4_0, 1ull << 60, 32) == 0);
    CHECK(vt_quant_bytes(VT_FMT_Q4_0 | VT_FMT_SPARSE24, 1ull << 62, 64) == 0);
    CHECK(vt_quant_bytes(VT_FMT_NF4_DQ, 1ull << 60, 64 * 64) == 0);
    CHECK(vt_quant_bytes(VT_FMT_NF4_DQ, UINT64_MAX, 64) == 0);
    CHECK(vt_quant_bytes(VT_FMT_Q8_0, 1, UINT64_MAX) == 0);
    CHECK(vt_quant_row_bytes(VT_FMT_F32, UINT64_MAX / 2) == 0);
    CHECK(vt_quant_row_bytes(VT_FMT_Q4_0 | VT_FMT_SPARSE24, UINT64_MAX - 1) == 0);
    /* nf4_dq row alignment: 256 / gcd(256, blocks per row) */
    CHECK(vt_quant_row_align(VT_FMT_NF4_DQ, 64) == 256);
    CHECK(vt_quant_row_align(VT_FMT_NF4_DQ, 4096) == 4);
    CHECK(vt_quant_row_align(VT_FMT_NF4_DQ, 64 * 256 * 3) == 1);
    CHECK(vt_quant_row_align(VT_FMT_NF4_DQ, 65) == 128);
    CHECK(vt_quant_row_align(VT_FMT_Q4_0, 65) == 1);
    CHECK(fabs(vt_format_bpw(VT_FMT_Q4_0, 4096) - 4.5) < 1e-12);
    CHECK(fabs(vt_format_bpw(VT_FMT_Q8_0, 48) - 8.0 * 68 / 48) < 1e-12);
    CHECK(fabs(vt_format_bpw(VT_FMT_Q6_K, 256) - 6.5625) < 1e-12);
}

static void check_observe(void) {
    vt_quant_params p;
    vt_quant_params_init(&p);
    /* tensor_scale unset (NaN): nvfp4 refuses it (test_fp4); vt_quant_observe sets it */
    CHECK(isnan(p.tensor_scale) && p.amax == 0.0f && !p.channel_scale && p.channel_count == 0);
    float x[100], amax = 0.0f;
    for (int i = 0; i < 100; i++) {
        x[i] = vt_rand_normal();
        amax = fmaxf(amax, fabsf(x[i]));
    }
    CHECK_RC(vt_quant_observe(VT_FMT_NVFP4, &p, x, 50));
    CHECK_RC(vt_quant_observe(VT_FMT_NVFP4, &p, x + 50, 50));
    CHECK(p.amax == amax);
    CHECK(p.tensor_scale == amax / (6.0f * 448.0f));
    vt_quant_params z;
    vt_quant_params_init(&z);
    float zeros[4] = {0};
    CHECK_RC(vt_quant_observe(VT_FMT_NVFP4, &z, zeros, 4));
    CHECK(z.tensor_scale == 1.0f);
    vt_quant_params q;
    vt_quant_params_init(&q);
    CHECK_RC(vt_quant_observe(VT_FMT_Q4_0, &q, x, 100));
    CHECK(q.amax == amax && q.tensor_scale == 1.0f); /* formats without one: 1 */
    x[37] = NAN;
    CHECK(vt_quant_observe(VT_FMT_NVFP4, &p, x, 100) == VT_ENONFINITE);
    CHECK(strstr(vt_last_error(), "index 37") != NULL);
    CHECK(vt_quant_observe(VT_FMT_Q4_0, NULL, x, 100) == -EINVAL);
}

static void check_args(void) {
    float x[64] = {0};
    uint8_t q[256];
    CHECK(vt_quantize(VT_FMT_COUNT, NULL, x, 1, 64, q, 1) == -EINVAL);
    CHECK(vt_quantize(VT_FMT_Q4_0, NULL, NULL, 1, 64, q, 1) == -EINVAL);
    CHECK(vt_dequantize(VT_FMT_Q4_0, NULL, q, 1, 64, NULL, 1) == -EINVAL);
    CHECK(vt_quantize(VT_FMT_NF4_DQ | VT_FMT_SPARSE24, NULL, x, 1, 64, q, 1) == VT_EUNSUPPORTED);
    CHECK(vt_quantize(VT_FMT_Q6_K, NULL, x, 1, 64, q, 1) == VT_EUNSUPPORTED);
    CHECK(strstr(vt_last_error(), "read-only") != NULL);
    CHECK(vt_quantize(VT_FMT_AWQ_INT4, NULL, x, 1, 64, q, 1) == -EINVAL);
    vt_quant_params p;
    vt_quant_params_init(&p);
    float s[64];
    for (int i = 0; i < 64; i++) s[i] = 1.0f;
    p.channel_scale = s;
    p.channel_count = 63;
    CHECK(vt_quantize(VT_FMT_AWQ_INT4, &p, x, 1, 64, q, 1) == -EINVAL);
    CHECK(vt_quantize(VT_FMT_NVFP4, NULL, x, 1, 64, q, 1) == -EINVAL);
    /* empty tensors are fine */
    CHECK_RC(vt_quantize(VT_FMT_Q4_0, NULL, NULL, 0, 64, NULL, 1));
    CHECK_RC(vt_dequantize(VT_FMT_Q8_0, NULL, NULL, 5, 0, NULL, 1));
}

int main(void) {
    vt_test_seed();
    const uint32_t fmts[] = {VT_FMT_F32,  VT_FMT_F16,  VT_FMT_BF16, VT_FMT_Q8_0,
                             VT_FMT_Q4_0, VT_FMT_Q4_1, VT_FMT_INT8};
    for (size_t f = 0; f < sizeof fmts / sizeof fmts[0]; f++) {
        check_roundtrip(fmts[f], 13, 1000);
        check_roundtrip(fmts[f], 1, 100000);
        for (uint64_t cols = 1; cols < 300; cols += 37) check_padding(fmts[f], cols);
        check_nonfinite(fmts[f]);
    }
    check_table();
    check_observe();
    check_args();
    return vt_test_done("test_qa_props");
}
