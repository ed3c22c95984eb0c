/* CPU attention: the tiled flash kernel (and the f32 naive one) against the f64 oracle on the
 * same dequantized K/V, fresh random inputs; GQA 1/4/8, D 64/128/odd, ragged Nq/Nk, Nq != Nk,
 * fully masked rows, LSE, KV cache contents and error paths. The flash kernel's instruction set
 * is the best the CPU has; CTest re-runs this program with VT_KERNELS_AVX512=0 (AVX2) and
 * VT_KERNELS_SCALAR=1 (portable). Ragged register tiles (rows not a multiple of 4, head dims
 * not a multiple of the P·V tile width) and the decode key split (few K/V heads x query tiles
 * for the threads: keys sliced, partial results combined) have cases of their own, as has the
 * few-rows path that reads K/V where stored (and the shapes and formats it leaves to the tiles). */
#include <errno.h>

#include "attn_util.h"
#include "vtstore/quant.h"

#define TOL 2e-3

static int g_threads;                   /* flash kernel threads (0 = all) */
static double g_worst_err, g_worst_lse; /* over every flash run */

/* Run one case through a cache appended in two pieces; compare flash and naive-f32 with the
 * f64 oracle. */
static void run_case(const attn_case *c) {
    char name[160];
    case_name(c, name, sizeof name);
    uint64_t nkv = (uint64_t)c->Hkv * c->nk * c->D, nqo = (uint64_t)c->H * c->nq * c->D;
    float *kf = rand_f32(nkv, 1.0f), *vf = rand_f32(nkv, 1.0f), *qf = rand_f32(nqo, 1.0f);
    void *q = make_q(c, qf);

    vt_kv_cache_config cc = {.location = VT_LOC_HOST,
                             .format = c->fmt,
                             .n_kv_heads = c->Hkv,
                             .head_dim = c->D,
                             .capacity = c->nk + 5};
    vt_kv_cache *kv = NULL;
    CHECK_RC(vt_kv_cache_create(&cc, &kv));
    if (!kv) return;
    /* append in two pieces: first n1 tokens, then the rest (inputs are [Hkv][n][D]) */
    uint64_t n1 = c->nk / 3, n2 = c->nk - n1;
    float *k1 = malloc((nkv ? nkv : 1) * sizeof(float)),
          *v1 = malloc((nkv ? nkv : 1) * sizeof(float));
    float *k2 = k1 + (uint64_t)c->Hkv * n1 * c->D, *v2 = v1 + (uint64_t)c->Hkv * n1 * c->D;
    for (uint32_t h = 0; h < c->Hkv; h++) {
        memcpy(k1 + (uint64_t)h * n1 * c->D, kf + (uint64_t)h * c->nk * c->D, n1 * c->D * 4);
        memcpy(v1 + (uint64_t)h * n1 * c->D, vf + (uint64_t)h * c->nk * c->D, n1 * c->D * 4);
        memcpy(k2 + (uint64_t)h * n2 * c->D, kf + ((uint64_t)h * c->nk + n1) * c->D, n2 * c->D * 4);
        memcpy(v2 + (uint64_t)h * n2 * c->D, vf + ((uint64_t)h * c->nk + n1) * c->D, n2 * c->D * 4);
    }
    CHECK_RC(vt_kv_cache_append(kv, k1, v1, VT_DTYPE_F32, n1, NULL));
    CHECK_RC(vt_kv_cache_append(kv, k2, v2, VT_DTYPE_F32, n2, NULL));
    CHECK(vt_kv_cache_len(kv) == c->nk);

    /* the cache holds exactly what vt_quantize makes of each head's rows */
    if (c->nk) {
        float *back = malloc(nkv * sizeof(float)), *want = malloc(c->nk * c->D * sizeof(float));
        void *qb = malloc(vt_quant_bytes(c->fmt, c->nk, c->D));
        vt_quant_params qp;
        vt_quant_params_init(&qp);
        vt_attn_kv view;
        vt_kv_cache_view(kv, &view);
        qp.tensor_scale = view.tensor_scale; /* nvfp4: the cache's (config 0 is taken as 1) */
        CHECK_RC(vt_kv_cache_read(kv, 0, c->nk, back, NULL));
        for (uint32_t h = 0; h < c->Hkv; h++) {
            CHECK_RC(vt_quantize(c->fmt, &qp, kf + (uint64_t)h * c->nk * c->D, c->nk, c->D, qb, 1));
            CHECK_RC(vt_dequantize(c->fmt, &qp, qb, c->nk, c->D, want, 1));
            CHECKF(!memcmp(want, back + (uint64_t)h * c->nk * c->D, c->nk * c->D * 4),
                   "%s: cache K head %u differs from vt_quantize", name, h);
        }
        free(back);
        free(want);
        free(qb);
    }

    vt_attn_params p;
    case_params(c, q, &p);
    p.scale = c->scale;
    vt_kv_cache_view(kv, &p.kv);

    uint64_t nl = (uint64_t)c->H * c->nq;
    float *oref = malloc(nqo * sizeof(float)), *lref = malloc(nl * sizeof(float));
    void *o = malloc(nqo * sizeof(float));
    float *lse = malloc(nl * sizeof(float));
    p.o = oref;
    p.lse = lref;
    p.algo = VT_ATTN_NAIVE_F64;
    CHECK_RC(vt_attn_forward(&p));

    const vt_attn_algo algos[] = {VT_ATTN_FLASH, VT_ATTN_NAIVE};
    for (int a = 0; a < 2; a++) {
        memset(o, 0xff, nqo * sizeof(float)); /* NaN pattern: every output must be written */
        memset(lse, 0xff, nl * sizeof(float));
        p.o = o;
        p.o_dtype = a == 0 ? c->o_dtype : VT_DTYPE_F32;
        p.lse = lse;
        p.algo = algos[a];
        p.nthreads = a == 0 ? g_threads : 1;
        CHECK_RC(vt_attn_forward(&p));
        double e = rel_err(o, p.o_dtype, oref, nqo);
        CHECKF(e <= TOL, "%s %s: rel err %.3g > %g", name, a ? "naive" : "flash", e, TOL);
        double le = 0;
        int masked_ok = 1;
        for (uint64_t r = 0; r < nl; r++) {
            uint64_t i = r % c->nq;
            if (visible_keys(c, i) == 0) {
                masked_ok &= isinf(lse[r]) && lse[r] < 0 && isinf(lref[r]) && lref[r] < 0;
                for (uint32_t d = 0; d < c->D; d++)
                    masked_ok &= out_at(o, p.o_dtype, r * c->D + d) == 0.0f;
            } else {
                double dl = fabs((double)lse[r] - lref[r]);
                le = dl > le ? dl : le;
            }
        }
        CHECKF(masked_ok, "%s: fully masked rows must give O = 0 and LSE = -inf", name);
        CHECKF(le <= TOL, "%s %s: LSE abs err %.3g", name, a ? "naive" : "flash", le);
        if (a == 0) {
            printf("  %-72s flash rel err %.2e, lse err %.2e\n", name, e, le);
            g_worst_err = e > g_worst_err ? e : g_worst_err;
            g_worst_lse = le > g_worst_lse ? le : g_worst_lse;
        }
    }
    vt_kv_cache_destroy(kv);
    free(kf), free(vf), free(qf), free(q), free(k1), free(v1), free(oref), free(lref), free(o),
        free(lse);
}

/* Raw descriptors (no cache), packed heads, and the scale parameter. */
static void raw_descriptor_case(void) {
    uint32_t H = 4, Hkv = 2, D = 64;
    uint64_t nq = 9, nk = 70;
    float *kf = rand_f32((uint64_t)Hkv * nk * D, 1), *vf = rand_f32((uint64_t)Hkv * nk * D, 1);
    float *q = rand_f32((uint64_t)H * nq * D, 1);
    float *o1 = malloc((uint64_t)H * nq * D * 4), *o2 = malloc((uint64_t)H * nq * D * 4);
    vt_attn_params p;
    vt_attn_params_init(&p);
    p.q = q;
    p.n_heads = H;
    p.n_q = nq;
    p.kv = (vt_attn_kv){.k = kf,
                        .v = vf,
                        .location = VT_LOC_HOST,
                        .format = VT_FMT_F32,
                        .n_kv_heads = Hkv,
                        .head_dim = D,
                        .n_tokens = nk};
    p.scale = 0.3f;
    p.o = o1;
    p.algo = VT_ATTN_NAIVE_F64;
    CHECK_RC(vt_attn_forward(&p));
    p.o = o2;
    p.algo = VT_ATTN_FLASH;
    CHECK_RC(vt_attn_forward(&p));
    CHECK(rel_err(o2, VT_DTYPE_F32, o1, (uint64_t)H * nq * D) <= TOL);
    /* a different scale must change the answer (the parameter is used) */
    p.scale = 0.0f;
    CHECK_RC(vt_attn_forward(&p));
    CHECK(rel_err(o2, VT_DTYPE_F32, o1, (uint64_t)H * nq * D) > 1e-2);
    free(kf), free(vf), free(q), free(o1), free(o2);
}

/* The decode key split allocates the slices' partials besides each task's buffer: every
 * allocation failure there comes back as -ENOMEM too (one K/V head, 600 keys, 2 threads). */
static void split_alloc_faults(void) {
    uint32_t D = 64;
    uint64_t nk = 600;
    float *kf = rand_f32(nk * D, 1), *q = rand_f32(4 * D, 1), *o = malloc(4 * D * 4);
    vt_attn_params p;
    vt_attn_params_init(&p);
    p.q = q;
    p.n_heads = 4;
    p.n_q = 1;
    p.o = o;
    p.nthreads = 2;
    p.algo = VT_ATTN_FLASH;
    p.kv = (vt_attn_kv){.k = kf,
                        .v = kf,
                        .location = VT_LOC_HOST,
                        .format = VT_FMT_F32,
                        .n_kv_heads = 1,
                        .head_dim = D,
                        .n_tokens = nk};
    vt_fault_arm(VT_FAULT_ALLOC, UINT64_MAX, 0);
    CHECK_RC(vt_attn_forward(&p));
    uint64_t sites = vt_fault_count();
    vt_fault_disarm();
    CHECKF(sites > 2, "split: %llu allocations (partials + one per slice expected)",
           (unsigned long long)sites);
    for (uint64_t n = 1; n <= sites; n++) {
        vt_fault_arm(VT_FAULT_ALLOC, n, -ENOMEM);
        int rc = vt_attn_forward(&p);
        vt_fault_disarm();
        CHECKF(rc == -ENOMEM, "split alloc fault %llu of %llu: rc %d", (unsigned long long)n,
               (unsigned long long)sites, rc);
    }
    free(kf), free(q), free(o);
}

/* NaN and Inf inputs, flash against the naive f32 kernel (the reference: a plain softmax over
 * each row's visible keys) element by element: the same class (NaN, +-Inf, finite) and finite
 * values within 1e-3. Poisoned: V of the last key (causal: only the last query sees it; the
 * others must stay finite, P·V multiplied 0 * Inf for them), K of a middle key (NaN O and LSE
 * for the rows that see it: the exp2 clamp turned a NaN score into 0), one Q row NaN or Inf (that
 * row NaN, also through the split combine, which gave O = 0); rows that see no key keep O = 0
 * and LSE = -inf. f32, f16 and q8_0 (a block scale poisoned) K/V; the tile loop, the few-rows
 * path, rows that see no key (Nq > Nk) and sliced keys. */
typedef struct nf_shape {
    uint32_t H, D, threads;
    uint64_t nq, nk;
} nf_shape;

static int nf_class(float x) {
    return isnan(x) ? 0 : isinf(x) ? (x > 0 ? 1 : 2) : 3;
}

static void nonfinite_case(uint32_t fmt, const nf_shape *sh, int what) {
    static const char *whats[] = {"V NaN", "V Inf", "K NaN", "Q NaN", "Q Inf"};
    const uint32_t H = sh->H, D = sh->D;
    const uint64_t nq = sh->nq, nk = sh->nk, rb = vt_attn_row_bytes(fmt, D);
    const uint64_t jv = nk - 1, jk = nk / 2, iq = nq - 1; /* poisoned key / query row */
    char nm[32], name[160];
    snprintf(name, sizeof name, "%s H %u D %u Nq %llu Nk %llu threads %u: %s",
             vt_format_name(fmt, nm, sizeof nm), H, D, (unsigned long long)nq,
             (unsigned long long)nk, sh->threads, whats[what]);
    float *kf = rand_f32(nk * D, 1), *vf = rand_f32(nk * D, 1), *q = rand_f32(H * nq * D, 1);
    uint8_t *k = malloc(nk * rb), *v = malloc(nk * rb);
    vt_quant_params qp;
    vt_quant_params_init(&qp);
    CHECK_RC(vt_quantize(fmt, &qp, kf, nk, D, k, 1));
    CHECK_RC(vt_quantize(fmt, &qp, vf, nk, D, v, 1));
    float bad = what == 1 || what == 4 ? INFINITY : NAN;
    uint8_t *row = what == 0 || what == 1 ? v + jv * rb : what == 2 ? k + jk * rb : NULL;
    uint32_t col = what == 2 ? 5 : 3;
    if (row && fmt == VT_FMT_F32) memcpy(row + 4 * col, &bad, 4);
    if (row && fmt == VT_FMT_F16) {
        uint16_t h = vt_f32_to_f16(bad);
        memcpy(row + 2 * col, &h, 2);
    }
    if (row && fmt == VT_FMT_Q8_0) { /* the first block's f16 scale */
        uint16_t h = vt_f32_to_f16(bad);
        memcpy(row, &h, 2);
    }
    if (what >= 3) q[iq * D] = bad; /* query head 0 */

    vt_attn_params p;
    vt_attn_params_init(&p);
    p.q = q;
    p.n_heads = H;
    p.n_q = nq;
    p.causal = 1;
    p.kv = (vt_attn_kv){.k = k,
                        .v = v,
                        .location = VT_LOC_HOST,
                        .format = fmt,
                        .n_kv_heads = 1,
                        .head_dim = D,
                        .n_tokens = nk};
    float *o[2], *lse[2];
    for (int a = 0; a < 2; a++) {
        o[a] = malloc(H * nq * D * sizeof(float));
        lse[a] = malloc(H * nq * sizeof(float));
        memset(o[a], 0x55, H * nq * D * sizeof(float));
        memset(lse[a], 0x55, H * nq * sizeof(float));
        p.o = o[a];
        p.lse = lse[a];
        p.algo = a ? VT_ATTN_NAIVE : VT_ATTN_FLASH;
        p.nthreads = a ? 1 : (int)sh->threads;
        CHECK_RC(vt_attn_forward(&p));
    }
    uint64_t bad_rows = 0, wrong_rows = 0;
    for (uint64_t r = 0; r < H * nq; r++) {
        uint64_t h = r / nq, i = r % nq;
        int64_t lim = (int64_t)i + (int64_t)nk - (int64_t)nq + 1;
        uint64_t vis = lim < 0 ? 0 : (uint64_t)lim;
        const float *of = o[0] + r * D, *on = o[1] + r * D;
        int same = nf_class(lse[0][r]) == nf_class(lse[1][r]) &&
                   (!isfinite(lse[1][r]) || fabsf(lse[0][r] - lse[1][r]) <= 1e-3f);
        int nfin = 0, nnan = 0, nzero = 0;
        for (uint32_t d = 0; d < D; d++) {
            same &= nf_class(of[d]) == nf_class(on[d]) &&
                    (!isfinite(on[d]) || fabsf(of[d] - on[d]) <= 1e-3f * (1 + fabsf(on[d])));
            nfin += isfinite(of[d]);
            nnan += isnan(of[d]);
            nzero += of[d] == 0.0f;
        }
        /* what the row must be, whatever the reference says */
        int want;
        if (vis == 0)
            want = nzero == (int)D && isinf(lse[0][r]) && lse[0][r] < 0;
        else if ((what == 0 || what == 1) && vis <= jv)
            want = nfin == (int)D && isfinite(lse[0][r]);
        else if ((what == 2 && vis > jk) || (what >= 3 && h == 0 && i == iq))
            want = nnan == (int)D && isnan(lse[0][r]);
        else if (what >= 2)
            want = nfin == (int)D && isfinite(lse[0][r]);
        else
            want = 1; /* sees the poisoned V: as the reference */
        bad_rows += !want;
        wrong_rows += !same;
        if (!want || !same)
            fprintf(stderr,
                    "  %s: head %llu query %llu (%llu keys): O[0] %g (naive %g), LSE %g "
                    "(naive %g)\n",
                    name, (unsigned long long)h, (unsigned long long)i, (unsigned long long)vis,
                    (double)of[0], (double)on[0], (double)lse[0][r], (double)lse[1][r]);
    }
    CHECKF(bad_rows == 0 && wrong_rows == 0,
           "%s: %llu rows not as they must be, %llu differ from the naive kernel", name,
           (unsigned long long)bad_rows, (unsigned long long)wrong_rows);
    for (int a = 0; a < 2; a++) free(o[a]), free(lse[a]);
    free(kf), free(vf), free(q), free(k), free(v);
}

static void nonfinite_cases(void) {
    const uint32_t fmts[] = {VT_FMT_F32, VT_FMT_F16, VT_FMT_Q8_0};
    const nf_shape shapes[] = {
        {4, 64, 1, 3, 130},   /* 12 rows: f16/q8_0 read where stored (AVX-512, AVX2) */
        {4, 128, 1, 2, 100},  /* 8 rows, D 128 */
        {2, 96, 1, 40, 70},   /* the tile loop, ragged tiles */
        {1, 64, 1, 100, 40},  /* Nq > Nk: 60 rows see no key */
        {24, 64, 1, 1, 90},   /* 24 rows: the tile loop with f16 V converted */
        {4, 128, 3, 2, 700},  /* keys sliced over 3 threads, combined */
        {1, 64, 8, 150, 600}, /* sliced, several query tiles, rows without keys in a slice */
    };
    for (size_t f = 0; f < sizeof fmts / sizeof fmts[0]; f++)
        for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
            for (int what = 0; what < 5; what++) nonfinite_case(fmts[f], &shapes[s], what);
}

/* Head dims above VT_ATTN_MAX_HEAD_DIM are refused (a 2^21 head dim overflowed the stack of the
 * split combine); nvfp4 K/V tensor scales that are negative, NaN or infinite too (0 means 1). */
static void limit_paths(void) {
    float x[4 * 64] = {0}, o[4 * 64];
    vt_attn_params p;
    vt_attn_params_init(&p);
    p.q = x;
    p.o = o;
    p.n_q = 1;
    p.n_heads = 1;
    p.kv = (vt_attn_kv){.k = x,
                        .v = x,
                        .location = VT_LOC_HOST,
                        .format = VT_FMT_F32,
                        .n_kv_heads = 1,
                        .head_dim = VT_ATTN_MAX_HEAD_DIM + 1,
                        .n_tokens = 0};
    CHECK(vt_attn_forward(&p) == VT_EUNSUPPORTED && strstr(vt_last_error(), "head dim"));
    p.kv.head_dim = 1u << 21;
    CHECK(vt_attn_forward(&p) == VT_EUNSUPPORTED);
    float *big = calloc((size_t)VT_ATTN_MAX_HEAD_DIM * 600, sizeof(float));
    float *ob = malloc(VT_ATTN_MAX_HEAD_DIM * sizeof(float));
    p.q = p.kv.k = p.kv.v = big;
    p.o = ob;
    p.kv.head_dim = VT_ATTN_MAX_HEAD_DIM;
    p.kv.n_tokens = 600; /* sliced: the combine's row buffer at the limit */
    p.nthreads = 4;
    CHECK_RC(vt_attn_forward(&p));
    CHECK(ob[0] == 0.0f && ob[VT_ATTN_MAX_HEAD_DIM - 1] == 0.0f);
    free(big), free(ob);

    uint8_t kq[36 * 2] = {0}; /* two nvfp4 rows of 64 (zero codes) */
    p.q = x;
    p.o = o;
    p.nthreads = 0;
    p.kv = (vt_attn_kv){.k = kq,
                        .v = kq,
                        .location = VT_LOC_HOST,
                        .format = VT_FMT_NVFP4,
                        .n_kv_heads = 1,
                        .head_dim = 64,
                        .n_tokens = 1};
    CHECK(vt_attn_row_bytes(VT_FMT_NVFP4, 64) <= sizeof kq);
    const float bad[] = {-1.0f, NAN, INFINITY, -INFINITY};
    for (int i = 0; i < 4; i++) {
        p.kv.tensor_scale = bad[i];
        CHECKF(vt_attn_forward(&p) == -EINVAL && strstr(vt_last_error(), "nvfp4"),
               "nvfp4 tensor_scale %g accepted", (double)bad[i]);
    }
    p.kv.tensor_scale = 0.0f;
    CHECK_RC(vt_attn_forward(&p));
    p.kv.tensor_scale = 2.0f;
    CHECK_RC(vt_attn_forward(&p));
    p.kv.format = VT_FMT_Q8_0; /* ignored by the other formats */
    p.kv.tensor_scale = NAN;
    CHECK_RC(vt_attn_forward(&p));
}

static void error_paths(void) {
    vt_kv_cache_config cc = {.location = VT_LOC_HOST,
                             .format = VT_FMT_Q4_1,
                             .n_kv_heads = 2,
                             .head_dim = 64,
                             .capacity = 8};
    vt_kv_cache *kv = NULL;
    CHECK(vt_kv_cache_create(&cc, &kv) == VT_EUNSUPPORTED && !kv);
    CHECK(strstr(vt_last_error(), "q4_1") != NULL);
    cc.format = VT_FMT_Q8_0;
    cc.capacity = 0;
    CHECK(vt_kv_cache_create(&cc, &kv) == -EINVAL);
    cc.capacity = 8;
    cc.head_dim = VT_ATTN_MAX_HEAD_DIM + 1; /* attention would refuse every view of it */
    CHECK(vt_kv_cache_create(&cc, &kv) == -EINVAL && !kv && strstr(vt_last_error(), "4096"));
    cc.head_dim = 64;
    cc.location = VT_LOC_DEVICE;
    int rc = vt_kv_cache_create(&cc, &kv);
    if (!vt_attn_cuda_available()) CHECK(rc == VT_ENODEV && !kv);
    vt_kv_cache_destroy(kv);
    kv = NULL;
    /* a device cache with a head dim the GPU kernels do not take is refused at create, before
     * (and so with or without) a CUDA device; a host cache takes any */
    static const uint32_t bad_d[] = {1, 32, 63, 65, 80, 96, 127, 129, 256};
    for (size_t i = 0; i < sizeof bad_d / sizeof bad_d[0]; i++) {
        char want[32];
        snprintf(want, sizeof want, "head_dim %u", bad_d[i]);
        cc.head_dim = bad_d[i];
        cc.location = VT_LOC_DEVICE;
        rc = vt_kv_cache_create(&cc, &kv);
        CHECKF(rc == -EINVAL && !kv && strstr(vt_last_error(), want) &&
                   strstr(vt_last_error(), "64 or 128"),
               "device head_dim %u: %d %s", bad_d[i], rc, vt_last_error());
        vt_kv_cache_destroy(kv);
        kv = NULL;
        cc.location = VT_LOC_HOST;
        CHECK_RC(vt_kv_cache_create(&cc, &kv));
        vt_kv_cache_destroy(kv);
        kv = NULL;
    }
    cc.head_dim = 128;
    cc.location = VT_LOC_DEVICE;
    /* beyond what vt_kv_cache_check's flag can name: refused the same way, GPU or not */
    cc.capacity = 1ull << 32;
    CHECK(vt_kv_cache_create(&cc, &kv) == -EINVAL && !kv && strstr(vt_last_error(), "4294967296"));
    cc.capacity = 8;
    cc.n_kv_heads = 2049;
    CHECK(vt_kv_cache_create(&cc, &kv) == -EINVAL && !kv && strstr(vt_last_error(), "2048 heads"));
    cc.n_kv_heads = 2;
    rc = vt_kv_cache_create(&cc, &kv);
    CHECKF(vt_attn_cuda_available() ? rc == 0 : rc == VT_ENODEV && !kv, "device D 128: %d %s", rc,
           vt_last_error());
    vt_kv_cache_destroy(kv);
    kv = NULL;
    cc.head_dim = 64;
    cc.location = VT_LOC_HOST;
    CHECK_RC(vt_kv_cache_create(&cc, &kv));
    float *x = rand_f32(2 * 8 * 64, 1);
    CHECK_RC(vt_kv_cache_append(kv, x, x, VT_DTYPE_F32, 6, NULL));
    CHECK(vt_kv_cache_append(kv, x, x, VT_DTYPE_F32, 3, NULL) == VT_EBUDGET);
    CHECK(vt_kv_cache_len(kv) == 6);
    x[64 + 5] = NAN; /* head 0, token 1, column 5 of a 2-token append */
    CHECK(vt_kv_cache_append(kv, x, x, VT_DTYPE_F32, 2, NULL) == VT_ENONFINITE);
    CHECK(vt_kv_cache_len(kv) == 6);
    CHECK(strstr(vt_last_error(), "K head 0") != NULL);
    CHECK_RC(vt_kv_cache_check(kv, NULL)); /* a host cache refused it already: nothing to find */
    CHECK(vt_kv_cache_check(NULL, NULL) == -EINVAL);
    CHECK(vt_kv_cache_append(kv, x, x, VT_DTYPE_I8, 1, NULL) == -EINVAL);
    CHECK(vt_kv_cache_read(kv, 4, 3, x, NULL) == -EINVAL);

    float q[3 * 64], o[3 * 64];
    vt_attn_params p;
    vt_attn_params_init(&p);
    p.q = q;
    p.o = o;
    p.n_q = 1;
    p.n_heads = 3;
    vt_kv_cache_view(kv, &p.kv);
    CHECK(vt_attn_forward(&p) == VT_ESHAPE);
    p.n_heads = 2;
    p.kv.format = VT_FMT_Q4_K;
    CHECK(vt_attn_forward(&p) == VT_EUNSUPPORTED);
    vt_kv_cache_view(kv, &p.kv);
    p.q_dtype = VT_DTYPE_I32;
    CHECK(vt_attn_forward(&p) == -EINVAL);
    p.q_dtype = VT_DTYPE_F32;
    p.kv.location = VT_LOC_DEVICE;
    if (!vt_attn_cuda_available()) CHECK(vt_attn_forward(&p) == VT_ENODEV);
    p.kv.location = VT_LOC_HOST;

    /* allocation failures come back as -ENOMEM, at every site */
    for (int a = 0; a < 2; a++) {
        p.algo = a ? VT_ATTN_NAIVE : VT_ATTN_FLASH;
        p.nthreads = 1;
        vt_fault_arm(VT_FAULT_ALLOC, UINT64_MAX, 0);
        CHECK_RC(vt_attn_forward(&p));
        uint64_t sites = vt_fault_count();
        vt_fault_disarm();
        CHECK(sites > 0);
        for (uint64_t n = 1; n <= sites; n++) {
            vt_fault_arm(VT_FAULT_ALLOC, n, -ENOMEM);
            rc = vt_attn_forward(&p);
            vt_fault_disarm();
            CHECKF(rc == -ENOMEM, "alloc fault %llu of %llu: rc %d", (unsigned long long)n,
                   (unsigned long long)sites, rc);
        }
    }
    vt_kv_cache_destroy(kv);
    vt_kv_cache_destroy(NULL);
    free(x);
}

int main(void) {
    vt_test_seed();
    const uint32_t fmts[] = {VT_FMT_F16,   VT_FMT_Q8_0,  VT_FMT_INT8, VT_FMT_Q4_0, VT_FMT_NF4,
                             VT_FMT_NVFP4, VT_FMT_MXFP4, VT_FMT_BF16, VT_FMT_F32};
    const uint32_t groups[] = {1, 4, 8};
    int n = 0;
    for (int gi = 0; gi < 3; gi++)
        for (int causal = 0; causal < 2; causal++)
            for (int di = 0; di < 2; di++) {
                attn_case c = {0};
                c.Hkv = 1 + (uint32_t)(vt_rand_u64() % 2);
                c.H = c.Hkv * groups[gi];
                c.D = di ? 128 : 64;
                c.nq = 1 + vt_rand_u64() % 150;
                c.nk = 1 + vt_rand_u64() % 200;
                c.causal = causal;
                c.fmt = fmts[n++ % 9];
                c.q_dtype = n % 3 == 0 ? VT_DTYPE_F16 : n % 3 == 1 ? VT_DTYPE_F32 : VT_DTYPE_BF16;
                c.o_dtype = n % 2 ? VT_DTYPE_F16 : VT_DTYPE_F32;
                run_case(&c);
            }
    /* fixed shapes that must be covered every run */
    attn_case fixed[] = {
        {8, 1, 128, 100, 40, 1, VT_FMT_Q8_0, VT_DTYPE_F16, VT_DTYPE_F32,
         0}, /* Nq > Nk: masked rows */
        {4, 4, 37, 65, 129, 1, VT_FMT_F16, VT_DTYPE_F32, VT_DTYPE_F32, 0}, /* odd D */
        {4, 1, 37, 3, 257, 0, VT_FMT_NF4, VT_DTYPE_F32, VT_DTYPE_F32, 0}, /* odd D, padded blocks */
        {8, 2, 64, 1, 300, 1, VT_FMT_NVFP4, VT_DTYPE_F16, VT_DTYPE_F16, 0},     /* decode */
        {4, 4, 64, 64, 64, 1, VT_FMT_MXFP4, VT_DTYPE_F32, VT_DTYPE_F32, 0.05f}, /* exact tiles */
        {2, 1, 64, 5, 0, 0, VT_FMT_INT8, VT_DTYPE_F32, VT_DTYPE_F32, 0},        /* empty cache */
    };
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++) run_case(&fixed[i]);

    /* ragged register tiles: G*bm rows not a multiple of 4, head dims that pad V/acc columns */
    attn_case ragged[] = {
        {3, 1, 96, 50, 130, 0, VT_FMT_F16, VT_DTYPE_F32, VT_DTYPE_F32, 0},
        {6, 2, 80, 7, 333, 1, VT_FMT_Q8_0, VT_DTYPE_F32, VT_DTYPE_F32, 0},
        {5, 5, 16, 23, 70, 1, VT_FMT_Q4_0, VT_DTYPE_BF16, VT_DTYPE_F32, 0},
        {2, 1, 256, 9, 100, 0, VT_FMT_BF16, VT_DTYPE_F32, VT_DTYPE_F16, 0},
        /* f16 V read as stored by P·V (at most 16 rows): 12 and 16 rows, a ragged last tile */
        {4, 1, 64, 3, 130, 1, VT_FMT_F16, VT_DTYPE_F32, VT_DTYPE_F32, 0},
        {16, 1, 128, 1, 77, 0, VT_FMT_F16, VT_DTYPE_F16, VT_DTYPE_F16, 0},
    };
    for (size_t i = 0; i < sizeof ragged / sizeof ragged[0]; i++) run_case(&ragged[i]);

    /* decode (Nq 1..8, long Nk, few K/V heads): the keys are sliced over the threads and the
     * slices combined; 1, 2 and 3 threads give 2, 4 and 6 slices of one K/V head */
    for (int t = 1; t <= 3; t++) {
        g_threads = t;
        for (int k = 0; k < 3; k++) {
            attn_case c = {0};
            c.Hkv = 1;
            c.H = groups[(t + k) % 3];
            c.D = k == 2 ? 64 : 128;
            c.nq = 1 + vt_rand_u64() % 8;
            c.nk = 512 + vt_rand_u64() % 1600;
            c.causal = (t + k) % 2;
            c.fmt = fmts[(3 * t + k) % 9];
            c.q_dtype = VT_DTYPE_F32;
            c.o_dtype = k == 1 ? VT_DTYPE_F16 : VT_DTYPE_F32;
            run_case(&c);
        }
    }
    /* few rows (decode) read K/V where stored (AVX-512 and AVX2: f16, q8_0 and int8 up to 16
     * padded rows, q4_0, nf4 and mxfp4 up to 16 on AVX-512 and 8 on AVX2, D 64 or 128): every such
     * format at 4..16 rows, ragged key counts (last block of 16 and tile of 64 partial), causal and
     * not, one and two threads (sliced keys); then the formats, rows and head dims that take the
     * tile loop instead
     */
    const uint32_t rows_fmts[] = {VT_FMT_F16,  VT_FMT_Q8_0, VT_FMT_Q4_0,
                                  VT_FMT_INT8, VT_FMT_NF4,  VT_FMT_MXFP4};
    for (int f = 0; f < 6; f++)
        for (int k = 0; k < 4; k++) {
            g_threads = 1 + k % 2;
            attn_case c = {0};
            c.Hkv = 1 + (uint32_t)(vt_rand_u64() % 2);
            c.H = c.Hkv * (k < 2 ? 4 : 8);
            c.D = k % 2 ? 64 : 128;
            c.nq = 1 + vt_rand_u64() % (k < 2 ? 4 : 2);
            c.nk = 1 + vt_rand_u64() % 900;
            c.causal = (f + k) % 2;
            c.fmt = rows_fmts[f];
            c.q_dtype = VT_DTYPE_F32;
            c.o_dtype = k == 3 ? VT_DTYPE_F16 : VT_DTYPE_F32;
            run_case(&c);
        }
    g_threads = 0;
    attn_case rows_fallback[] = {
        {4, 1, 128, 1, 333, 1, VT_FMT_BF16, VT_DTYPE_F32, VT_DTYPE_F32, 0}, /* format */
        {4, 1, 128, 3, 300, 1, VT_FMT_NF4, VT_DTYPE_F32, VT_DTYPE_F32, 0},  /* nf4, 12 rows */
        {4, 1, 96, 1, 250, 1, VT_FMT_Q8_0, VT_DTYPE_F32, VT_DTYPE_F32, 0},  /* head dim */
        {4, 1, 128, 3, 200, 1, VT_FMT_Q4_0, VT_DTYPE_F32, VT_DTYPE_F32, 0}, /* q4_0, 12 rows */
        {4, 1, 128, 5, 1000, 1, VT_FMT_F16, VT_DTYPE_F32, VT_DTYPE_F32, 0}, /* 20 rows */
        {4, 1, 64, 1, 17, 0, VT_FMT_Q4_0, VT_DTYPE_F32, VT_DTYPE_F32, 0},   /* one key block */
    };
    for (size_t i = 0; i < sizeof rows_fallback / sizeof rows_fallback[0]; i++)
        run_case(&rows_fallback[i]);

    /* slices with several query tiles (8 threads: 11 and 2 tasks before slicing): causal
     * slices past a tile's last visible key are empty, and with Nq > Nk the first 100 query
     * rows see no key in any slice (O = 0, LSE = -inf after the combine) */
    g_threads = 8;
    attn_case sliced[] = {
        {1, 1, 64, 700, 600, 1, VT_FMT_F16, VT_DTYPE_F32, VT_DTYPE_F32, 0},
        {1, 1, 64, 100, 600, 1, VT_FMT_Q8_0, VT_DTYPE_F32, VT_DTYPE_F32, 0},
    };
    for (size_t i = 0; i < sizeof sliced / sizeof sliced[0]; i++) run_case(&sliced[i]);
    g_threads = 0;
    printf("worst flash rel err %.3e (bound %g), worst LSE abs err %.3e\n", g_worst_err, TOL,
           g_worst_lse);
    raw_descriptor_case();
    split_alloc_faults();
    nonfinite_cases();
    limit_paths();
    error_paths();
    return vt_test_done("test_attn_cpu");
}
