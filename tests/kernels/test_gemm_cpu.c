/* tests/kernels/test_gemm_cpu.c — the host GEMM (kernels/cpu/gemm_cpu.c) on fresh random inputs:
 *   - every microkernel this CPU can run (plain C, AVX2+FMA, AVX-512F) at every tile height,
 *     depths 1..VT_KC, overwrite and accumulate, against an f64 reference; nothing written
 *     outside the tile;
 *   - every weight-panel transpose, value by value, nothing written outside its columns;
 *   - the whole GEMM with each of those kernels on 1 and 2 threads for every format and its 2:4
 *     variant: M from 1 to a few hundred (tile tails included, and more rows than one X chunk),
 *     weight rows not a multiple of the tile or the task block, ragged depths, f32/f16 X and Y,
 *     Y poisoned with NaN first (every element must be written); and through the public vt_gemm;
 *   - allocation failures at every site (-ENOMEM, nothing leaked: the ASan build checks).
 * The GEMM bound is the GEMV one (kt_gemv_err): safe against cancellation in short rows. */
#include "kern_test_util.h"
#include "kernels/cpu/gemm_cpu.h"
#include "kernels/kern_internal.h"
#include "kt_gemm_ref.h"

static int isa_ok(const vt_gemm_isa *isa) {
#if defined(__x86_64__)
    int f = vt_cpu_features();
    if (isa == &vt_gemm_isa_avx512) return (f & VT_CPU_AVX512F) && (f & VT_CPU_FMA);
    if (isa == &vt_gemm_isa_avx2) return (f & VT_CPU_AVX2) && (f & VT_CPU_FMA);
#endif
    return isa == &vt_gemm_isa_c;
}

static const vt_gemm_isa *const g_isas[] = {
    &vt_gemm_isa_c,
#if defined(__x86_64__)
    &vt_gemm_isa_avx2,
    &vt_gemm_isa_avx512,
#endif
};
#define N_ISAS (sizeof g_isas / sizeof g_isas[0])

/* The microkernel at every tile height against f64, c with 3 spare columns and a spare row of
 * sentinels that must survive. */
static void test_ukern(const vt_gemm_isa *isa) {
    const int MR = isa->mr, NR = isa->nr;
    const uint32_t ldc = (uint32_t)NR + 3, kcs[] = {1, 2, 7, 16, 100, VT_KC};
    float *xp = malloc((size_t)VT_KC * MR * 4), *wp = malloc((size_t)VT_KC * NR * 4);
    float *c = malloc((size_t)(MR + 1) * ldc * 4), *c0 = malloc((size_t)(MR + 1) * ldc * 4);
    for (size_t i = 0; i < (size_t)VT_KC * MR; i++) xp[i] = vt_rand_normal();
    for (size_t i = 0; i < (size_t)VT_KC * NR; i++) wp[i] = vt_rand_normal();
    for (int mr = 1; mr <= MR; mr++)
        for (size_t ki = 0; ki < sizeof kcs / sizeof kcs[0]; ki++)
            for (int acc = 0; acc < 2; acc++) {
                uint32_t kc = kcs[ki];
                for (size_t i = 0; i < (size_t)(MR + 1) * ldc; i++)
                    c[i] = c0[i] = acc ? vt_rand_normal() : NAN;
                isa->ukern(mr, kc, xp, wp, c, ldc, acc);
                int bad = 0;
                for (int i = 0; i <= MR; i++)
                    for (uint32_t j = 0; j < ldc; j++) {
                        float got = c[i * ldc + j], was = c0[i * ldc + j];
                        if (i >= mr || j >= (uint32_t)NR) { /* untouched, NaN included */
                            bad += memcmp(&got, &was, 4) != 0;
                            continue;
                        }
                        double s = acc ? was : 0, a = acc ? fabs(was) : 0;
                        for (uint32_t k = 0; k < kc; k++) {
                            s += (double)xp[k * MR + i] * wp[k * NR + j];
                            a += fabs((double)xp[k * MR + i] * wp[k * NR + j]);
                        }
                        bad += !(fabs(got - s) <= 1e-5 * a + 1e-30);
                    }
                CHECKF(bad == 0, "%s ukern mr=%d kc=%u acc=%d: %d values wrong", isa->name, mr, kc,
                       acc, bad);
            }
    free(xp);
    free(wp);
    free(c);
    free(c0);
}

/* The transpose into columns [G, 2G) of a panel of NR (or G = NR: the whole panel). */
static void test_pack(const vt_gemm_isa *isa) {
    const uint32_t G = (uint32_t)isa->g, NR = (uint32_t)isa->nr, kcs[] = {1, 5, 16, 33, VT_KC};
    const uint32_t col = G < NR ? G : 0;
    float *rows = malloc((size_t)G * VT_KC * 4), *wp = malloc((size_t)VT_KC * NR * 4);
    for (size_t i = 0; i < (size_t)G * VT_KC; i++) rows[i] = vt_rand_normal();
    for (size_t ki = 0; ki < sizeof kcs / sizeof kcs[0]; ki++) {
        uint32_t kc = kcs[ki], bad = 0;
        for (size_t i = 0; i < (size_t)VT_KC * NR; i++) wp[i] = -1e30f;
        isa->pack(rows, kc, wp + col, NR);
        for (uint32_t k = 0; k < kc; k++)
            for (uint32_t j = 0; j < NR; j++) {
                float want = j >= col && j < col + G ? rows[(j - col) * VT_KC + k] : -1e30f;
                bad += wp[k * NR + j] != want;
            }
        /* past kc rounded up to G nothing may be written */
        uint32_t kr = (kc + G - 1) / G * G;
        for (uint64_t i = (uint64_t)kr * NR; i < (uint64_t)VT_KC * NR; i++) bad += wp[i] != -1e30f;
        CHECKF(bad == 0, "%s pack kc=%u: %u values wrong", isa->name, kc, bad);
    }
    free(rows);
    free(wp);
}

/* One weight against M rows of X: each available kernel set on 1 and 2 threads (f32 X and Y),
 * the other X/Y type pairs with the kernels vt_gemm uses, then the public vt_gemm. */
static void check_gemm(const kt_weight *k, const char *nm, uint64_t M) {
    const uint64_t R = k->rows, C = k->cols, n = M * R;
    float *X = malloc(M * C * 4), *Y = malloc(n * 4);
    uint16_t *Xh = malloc(M * C * 2), *Yh = malloc(n * 2);
    double *ref = malloc(n * 8), *absref = malloc(n * 8);
    for (uint64_t i = 0; i < M * C; i++) {
        Xh[i] = vt_f32_to_f16(vt_rand_normal());
        X[i] = vt_f16_to_f32(Xh[i]); /* the same values in both input types */
    }
    kt_ref_gemv(k, X, M, ref);
    kt_ref_abs(k, X, M, absref);
    for (size_t s = 0; s < N_ISAS; s++) {
        if (!isa_ok(g_isas[s])) continue;
        for (int th = 1; th <= 2; th++)
            for (int xt = 0; xt < 2; xt++)
                for (int yt = 0; yt < 2; yt++) {
                    if ((xt || yt) && (th == 2 || g_isas[s] != vt_gemm_isa_best())) continue;
                    kt_poison(Y, n);
                    memset(Yh, 0xff, n * 2); /* f16 NaN */
                    CHECK_RC(vt_gemm_cpu_run(g_isas[s], &k->w, xt ? (void *)Xh : (void *)X,
                                             xt ? VT_DTYPE_F16 : VT_DTYPE_F32,
                                             yt ? (void *)Yh : (void *)Y,
                                             yt ? VT_DTYPE_F16 : VT_DTYPE_F32, M, th));
                    if (yt) vt_f16_to_f32_row(Yh, Y, n);
                    /* f16 output adds one rounding of 2^-11 relative: inside the bound */
                    double e = kt_gemv_err(Y, ref, absref, n);
                    CHECKF(e >= 0, "%s %s %llux%llu M=%llu threads=%d X %s Y %s: rel err %.3g",
                           g_isas[s]->name, nm, (unsigned long long)R, (unsigned long long)C,
                           (unsigned long long)M, th, xt ? "f16" : "f32", yt ? "f16" : "f32", -e);
                }
    }
    kt_poison(Y, n);
    CHECK_RC(vt_gemm(&k->w, Xh, VT_DTYPE_F16, Y, VT_DTYPE_F32, M, NULL));
    CHECKF(kt_gemv_err(Y, ref, absref, n) >= 0, "%s vt_gemm M=%llu", nm, (unsigned long long)M);
    free(X);
    free(Y);
    free(Xh);
    free(Yh);
    free(ref);
    free(absref);
}

/* Shapes: rows not a multiple of 16/32 or of the 128-row task block, ragged depths (cols not a
 * multiple of VT_KC, nor of 32 where the format's blocks allow it), one depth over two chunks. */
static const uint64_t shapes[][2] = {{37, 100}, {130, 1000}, {7, 600}};
static const uint64_t Ms[][4] = {{1, 13, 15, 64}, {6, 29, 47, 0}, {300, 0, 0, 0}};

static void run_one(const kt_weight *k, const char *nm, size_t shape, void *ctx) {
    (void)ctx;
    for (int i = 0; i < 4 && Ms[shape][i]; i++) check_gemm(k, nm, Ms[shape][i]);
}

/* More rows of X than one packed chunk (GEMM_MCH, 1024), and one weight-row block with many X
 * panels (the task split over X panels). */
static void test_big_m(void) {
    kt_weight k;
    CHECK_RC(kt_make(&k, VT_FMT_Q4_0, 45, 96));
    check_gemm(&k, "q4_0", 1100);
    kt_free(&k);
    CHECK_RC(kt_make(&k, VT_FMT_Q8_0 | VT_FMT_SPARSE24, 3, 64));
    check_gemm(&k, "q8_0+2:4", 517);
    kt_free(&k);
}

/* Every allocation of a call fails in turn: -ENOMEM each time, nothing leaked. */
static void test_nomem(void) {
    kt_weight k;
    CHECK_RC(kt_make(&k, VT_FMT_NF4, 40, 64));
    float X[20 * 64], Y[20 * 40];
    for (int i = 0; i < 20 * 64; i++) X[i] = vt_rand_normal();
    vt_fault_arm(VT_FAULT_ALLOC, UINT64_MAX, 0);
    CHECK_RC(vt_gemm(&k.w, X, VT_DTYPE_F32, Y, VT_DTYPE_F32, 20, NULL));
    uint64_t sites = vt_fault_count();
    vt_fault_disarm();
    CHECK(sites >= 1);
    for (uint64_t s = 1; s <= sites; s++) {
        vt_fault_arm(VT_FAULT_ALLOC, s, -ENOMEM);
        int rc = vt_gemm(&k.w, X, VT_DTYPE_F32, Y, VT_DTYPE_F32, 20, NULL);
        vt_fault_disarm();
        CHECKF(rc == -ENOMEM, "allocation %llu of %llu failing: rc %d", (unsigned long long)s,
               (unsigned long long)sites, rc);
    }
    kt_free(&k);
}

int main(void) {
    vt_test_seed();
    printf("cpu isa: %s, gemm kernels: %s\n", vt_kernels_cpu_isa(), vt_gemm_isa_best()->name);
    for (size_t s = 0; s < N_ISAS; s++) {
        if (!isa_ok(g_isas[s])) {
            printf("%s: not supported by this CPU, skipped\n", g_isas[s]->name);
            continue;
        }
        test_ukern(g_isas[s]);
        test_pack(g_isas[s]);
    }
    kt_for_each_weight(shapes, sizeof shapes / sizeof shapes[0], run_one, NULL);
    test_big_m();
    test_nomem();
    return vt_test_done("test_gemm_cpu");
}
