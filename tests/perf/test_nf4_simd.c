/* test_nf4_simd: every NF4 quantize path this CPU has (SSE, AVX2, AVX-512) gives the reference's
 * bytes exactly, on fresh random rows of every edge-case pattern and ragged width, on values
 * placed exactly on each threshold and one ulp either side (ties go to the lower code), on
 * subnormal absmax (the division path), and on NaN/Inf fed to the row op directly. */
#include "quant/nf4_codes.h"
#include "quant_b/qb_util.h"

int vt_nf4_quantize_isa_test(const float *x, void *dst, uint64_t cols, int isa);

static const char *isa_name[3] = {"sse", "avx2", "avx512"};
static int n_isa_run[3];

/* Quantize @p x with the reference and with every available ISA; compare all bytes and the
 * guard byte after the row. */
static void compare(const char *what, const float *x, uint64_t cols) {
    uint64_t nbytes = (cols + VT_QK_NF4 - 1) / VT_QK_NF4 * sizeof(vt_block_nf4);
    uint8_t *q0 = malloc(nbytes + 1), *q1 = malloc(nbytes + 1);
    memset(q0, 0xAB, nbytes + 1);
    vt_qops_nf4.quantize_ref(x, q0, cols, NULL);
    for (int isa = 0; isa < 3; isa++) {
        memset(q1, 0xCD, nbytes + 1);
        if (vt_nf4_quantize_isa_test(x, q1, cols, isa)) continue;
        n_isa_run[isa]++;
        uint64_t i = 0;
        while (i < nbytes && q0[i] == q1[i]) i++;
        CHECKF(i == nbytes, "%s, cols %llu, %s: byte %llu is 0x%02x, reference 0x%02x", what,
               (unsigned long long)cols, isa_name[isa], (unsigned long long)i, q1[i], q0[i]);
        CHECKF(q1[nbytes] == 0xCD, "%s, cols %llu, %s: wrote past the row", what,
               (unsigned long long)cols, isa_name[isa]);
    }
    memset(q1, 0xCD, nbytes + 1);
    vt_qops_nf4.quantize(x, q1, cols, NULL);
    CHECKF(memcmp(q0, q1, nbytes) == 0, "%s, cols %llu: dispatched fast path != reference", what,
           (unsigned long long)cols);
    free(q0), free(q1);
}

static void check_patterns(void) {
    static const uint64_t extra[] = {64 * 97, 64 * 1024 + 5};
    for (int pat = 0; pat < QB_NPATTERNS; pat++) {
        for (size_t ci = 0; ci < QB_NCOLS + 2; ci++) {
            uint64_t cols = ci < QB_NCOLS ? (uint64_t)qb_cols[ci] : extra[ci - QB_NCOLS];
            float *x = malloc(cols * sizeof(float));
            qb_fill(x, cols, pat);
            compare(qb_pattern_name[pat], x, cols);
            free(x);
        }
    }
}

/* Blocks whose absmax is exactly 1 (so x * inv == x) holding every threshold, its neighbours
 * one ulp away, the code values themselves, ±0, and then the same scaled by a power of two
 * (exact), with a random sign pattern on the rest. */
static void check_thresholds(void) {
    enum { NB = 64 };
    static float x[NB * 64];
    for (int rep = 0; rep < 4; rep++) {
        float scale = rep == 0 ? 1.0f : ldexpf(1.0f, (int)(vt_rand_u64() % 200) - 100);
        for (int b = 0; b < NB; b++) {
            float *xb = x + 64 * b;
            for (int i = 0; i < 64; i++) {
                float t = vt_nf4_thresholds[vt_rand_u64() % 15];
                switch (vt_rand_u64() % 5) {
                case 0:
                    xb[i] = t;
                    break;
                case 1:
                    xb[i] = nextafterf(t, 2.0f);
                    break;
                case 2:
                    xb[i] = nextafterf(t, -2.0f);
                    break;
                case 3:
                    xb[i] = vt_nf4_values[vt_rand_u64() % 16];
                    break;
                default:
                    xb[i] = (vt_rand_u64() & 1) ? 0.0f : -0.0f;
                    break;
                }
            }
            xb[vt_rand_u64() % 64] = (vt_rand_u64() & 1) ? 1.0f : -1.0f;
            for (int i = 0; i < 64; i++) xb[i] *= scale;
        }
        compare("thresholds", x, NB * 64);
    }
}

/* Subnormal absmax: 1/absmax overflows and both paths divide. */
static void check_tiny(void) {
    static float x[64 * 32];
    for (int i = 0; i < 64 * 32; i++) x[i] = (float)((int)(vt_rand_u64() % 2001) - 1000) * 1.4e-45f;
    compare("subnormal absmax", x, 64 * 32);
    for (int i = 0; i < 64 * 32; i++) x[i] = ldexpf(vt_rand_normal(), -140);
    compare("subnormal scale", x, 64 * 32);
}

/* The dispatcher rejects non-finite input before the row op runs, but the row ops still agree
 * on it: a NaN is skipped by absmax and codes to 0; an Inf absmax gives inv = 0. */
static void check_nonfinite(void) {
    static float x[64 * 16];
    qb_fill(x, 64 * 16, QB_NORMAL);
    for (int k = 0; k < 40; k++) {
        float v = (vt_rand_u64() & 1) ? NAN : ((vt_rand_u64() & 1) ? INFINITY : -INFINITY);
        x[vt_rand_u64() % (64 * 16)] = v;
    }
    compare("nan/inf", x, 64 * 16);
    for (int i = 0; i < 64; i++) x[i] = NAN;
    compare("all-nan block", x, 64 * 16);
}

int main(void) {
    vt_test_seed();
    check_patterns();
    check_thresholds();
    check_tiny();
    check_nonfinite();
    for (int isa = 0; isa < 3; isa++)
        printf("nf4 %s: %s\n", isa_name[isa], n_isa_run[isa] ? "compared" : "not on this CPU");
    return vt_test_done("test_nf4_simd");
}
