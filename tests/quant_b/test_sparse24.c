/* test_sparse24: 2:4 structured sparsity over every writable row-blocked base format — fast ==
 * ref, the two largest magnitudes of each group of 4 are kept (checked against an independent
 * selection), the index nibble layout of blocks.h, row bytes, and the public API with threads. */
#include "qb_util.h"

/* Independent selection: sort the 4 indices by (|v| descending, index ascending), keep 2. */
static void select_ref(const float *v, int *a, int *b) {
    int o[4] = {0, 1, 2, 3};
    for (int i = 0; i < 4; i++)
        for (int j = i + 1; j < 4; j++) {
            float fi = fabsf(v[o[i]]), fj = fabsf(v[o[j]]);
            if (fj > fi || (fj == fi && o[j] < o[i])) {
                int t = o[i];
                o[i] = o[j], o[j] = t;
            }
        }
    *a = o[0] < o[1] ? o[0] : o[1];
    *b = o[0] < o[1] ? o[1] : o[0];
}

static void check_f32_exact(uint64_t cols, int pat) {
    uint64_t rb = vt_sparse24_row_bytes(VT_FMT_F32, cols), groups = (cols + 3) / 4;
    CHECK(rb == 8 * groups + (groups + 1) / 2);
    float *x = malloc(cols * sizeof(float)), *y = malloc((cols + 1) * sizeof(float));
    uint8_t *q = malloc(rb);
    qb_fill(x, cols, pat);
    CHECK_RC(vt_sparse24_quantize_row(&vt_qops_f32, VT_FMT_F32, x, q, cols, NULL, 0, NULL));
    y[cols] = 9.5f;
    vt_sparse24_dequantize_row(&vt_qops_f32, VT_FMT_F32, q, y, cols, NULL, 0);
    CHECK(y[cols] == 9.5f);
    const uint8_t *idx = q + 8 * groups;
    for (uint64_t g = 0; g < groups; g++) {
        float v[4] = {0, 0, 0, 0};
        for (int i = 0; i < 4; i++)
            if (4 * g + i < cols) v[i] = x[4 * g + i];
        int a, b;
        select_ref(v, &a, &b);
        int nib = (idx[g / 2] >> ((g % 2) * 4)) & 15;
        CHECKF((nib & 3) == a && (nib >> 2) == b, "group %llu: indices %d,%d expected %d,%d",
               (unsigned long long)g, nib & 3, nib >> 2, a, b);
        float kept[2];
        memcpy(kept, q + 8 * g, sizeof kept);
        CHECK(kept[0] == v[a] && kept[1] == v[b]);
        for (int i = 0; i < 4; i++) {
            if (4 * g + i >= cols) continue;
            float want = (i == a || i == b) ? v[i] : 0.0f;
            CHECKF(y[4 * g + i] == want, "col %llu: %g expected %g",
                   (unsigned long long)(4 * g + i), y[4 * g + i], want);
        }
    }
    if (groups % 2) CHECK((idx[groups / 2] >> 4) == 0);
    free(x), free(y), free(q);
}

static float g_scales[8192];

static void check_fast_eq_ref(uint32_t base) {
    const vt_qrow_ops *ops = vt_qops_get(base);
    CHECK(ops != NULL);
    if (!ops) return;
    vt_quant_params p;
    vt_quant_params_init(&p);
    p.tensor_scale = 0.01f;
    p.channel_scale = g_scales;
    p.channel_count = 8192;
    for (int pat = 0; pat < QB_NPATTERNS; pat++)
        for (size_t ci = 0; ci < QB_NCOLS; ci++) {
            uint64_t cols = (uint64_t)qb_cols[ci], rb = vt_sparse24_row_bytes(base, cols);
            float *x = malloc(cols * sizeof(float)), *y0 = malloc(cols * sizeof(float)),
                  *y1 = malloc(cols * sizeof(float));
            uint8_t *q0 = malloc(rb + 1), *q1 = malloc(rb + 1);
            memset(q0, 0x5a, rb + 1);
            memset(q1, 0xa5, rb + 1);
            qb_fill(x, cols, pat);
            CHECK_RC(vt_sparse24_quantize_row(ops, base, x, q0, cols, &p, 1, NULL));
            CHECK_RC(vt_sparse24_quantize_row(ops, base, x, q1, cols, &p, 0, NULL));
            CHECKF(memcmp(q0, q1, rb) == 0, "2:4 over format %u: fast != ref (cols %llu, %s)", base,
                   (unsigned long long)cols, qb_pattern_name[pat]);
            CHECK(q0[rb] == 0x5a && q1[rb] == 0xa5);
            vt_sparse24_dequantize_row(ops, base, q0, y0, cols, &p, 1);
            vt_sparse24_dequantize_row(ops, base, q0, y1, cols, &p, 0);
            CHECKF(memcmp(y0, y1, cols * sizeof(float)) == 0,
                   "2:4 over format %u: dequantize fast != ref", base);
            /* at most 2 nonzeros per group of 4 */
            for (uint64_t g = 0; g * 4 < cols; g++) {
                int nz = 0;
                for (uint64_t i = 4 * g; i < cols && i < 4 * g + 4; i++) nz += y0[i] != 0.0f;
                CHECK(nz <= 2);
            }
            free(x), free(y0), free(y1), free(q0), free(q1);
        }
}

/* Public API (quant-A's dispatcher): threaded == ref for the sparse and dense quant-B formats;
 * on N(0,1) 2:4 keeps most of the energy but far from all. */
static void check_public(void) {
    enum { ROWS = 37, COLS = 1000 };
    static float x[ROWS * COLS], y0[ROWS * COLS], y1[ROWS * COLS];
    qb_fill(x, ROWS * COLS, QB_NORMAL);
    const uint32_t fmts[] = {VT_FMT_NF4,      VT_FMT_NVFP4, VT_FMT_MXFP4,
                             VT_FMT_AWQ_INT4, VT_FMT_Q4_0,  VT_FMT_Q8_0};
    for (size_t i = 0; i < 2 * sizeof fmts / sizeof fmts[0] + 1; i++) {
        /* sparse variants, then the dense formats (and nf4_dq) through the same checks */
        size_t nfm = sizeof fmts / sizeof fmts[0];
        int sparse = i < nfm;
        uint32_t base = i == 2 * nfm ? VT_FMT_NF4_DQ : fmts[i % nfm];
        uint32_t f = base | (sparse ? VT_FMT_SPARSE24 : 0);
        vt_quant_params p;
        vt_quant_params_init(&p);
        p.channel_scale = g_scales;
        p.channel_count = COLS;
        CHECK_RC(vt_quant_observe(f, &p, x, ROWS * COLS));
        uint64_t nb = vt_quant_bytes(f, ROWS, COLS);
        if (sparse) CHECK(nb == ROWS * vt_sparse24_row_bytes(base, COLS));
        uint8_t *q0 = malloc(nb), *q1 = malloc(nb);
        CHECK_RC(vt_quantize_ref(f, &p, x, ROWS, COLS, q0));
        CHECK_RC(vt_quantize(f, &p, x, ROWS, COLS, q1, 2));
        CHECKF(memcmp(q0, q1, nb) == 0, "public format %#x: threaded != ref", f);
        CHECK_RC(vt_dequantize_ref(f, &p, q0, ROWS, COLS, y0));
        CHECK_RC(vt_dequantize(f, &p, q0, ROWS, COLS, y1, 2));
        CHECK(memcmp(y0, y1, sizeof y0) == 0);
        /* keeping the 2 largest of 4 Gaussians keeps most of the energy: SQNR well above 0 dB
         * but far below the dense format's (the dropped half dominates the error) */
        double s = qb_sqnr(x, y0, ROWS * COLS);
        if (sparse)
            CHECKF(s > 3.0 && s < 12.0, "format %#x SQNR %.2f dB", f, s);
        else
            CHECKF(s > 15.0, "format %#x SQNR %.2f dB", f, s);
        free(q0), free(q1);
    }
}

int main(void) {
    vt_test_seed();
    for (int i = 0; i < 8192; i++) g_scales[i] = 0.5f + 1.5f * (float)vt_rand_uniform();
    for (int pat = 0; pat < QB_NPATTERNS; pat++)
        for (size_t ci = 0; ci < QB_NCOLS; ci++) check_f32_exact((uint64_t)qb_cols[ci], pat);
    const uint32_t bases[] = {VT_FMT_F32,   VT_FMT_F16,   VT_FMT_BF16,    VT_FMT_Q8_0,
                              VT_FMT_Q4_0,  VT_FMT_Q4_1,  VT_FMT_INT8,    VT_FMT_NF4,
                              VT_FMT_NVFP4, VT_FMT_MXFP4, VT_FMT_AWQ_INT4};
    for (size_t i = 0; i < sizeof bases / sizeof bases[0]; i++) check_fast_eq_ref(bases[i]);
    CHECK(vt_sparse24_row_bytes(VT_FMT_NF4_DQ, 64) == 0);
    CHECK(vt_sparse24_row_bytes(VT_FMT_NF4, 7) == sizeof(vt_block_nf4) + 1);
    CHECK(vt_sparse24_row_bytes(VT_FMT_NF4, 128) == sizeof(vt_block_nf4) + 16);
    check_public();
    return vt_test_done("test_sparse24");
}
