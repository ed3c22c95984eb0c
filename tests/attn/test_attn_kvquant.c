/* How much error quantizing K/V adds: attention with K/V stored in each format (CPU flash
 * kernel) against the f64 oracle on the unquantized f32 K/V, fresh N(0,1) inputs. Prints a
 * table (max-norm and RMS relative error of O, max LSE error); checks each format's error is
 * nonzero and under a loose bound, and that 8-bit formats beat every 4-bit one. */
#include "attn_util.h"

typedef struct row {
    uint32_t fmt;
    double bound;
    double max_rel, rms_rel, lse_err;
} row;

int main(void) {
    vt_test_seed();
    const uint32_t H = 8, Hkv = 2, D = 128;
    const uint64_t nq = 64, nk = 512;
    uint64_t nkv = (uint64_t)Hkv * nk * D, nqo = (uint64_t)H * nq * D, nl = (uint64_t)H * nq;
    float *k = rand_f32(nkv, 1), *v = rand_f32(nkv, 1), *q = rand_f32(nqo, 1);
    float *oref = malloc(nqo * 4), *lref = malloc(nl * 4), *o = malloc(nqo * 4),
          *lse = malloc(nl * 4);
    vt_attn_params p;
    vt_attn_params_init(&p);
    p.q = q;
    p.n_heads = H;
    p.n_q = nq;
    p.causal = 1;
    p.kv = (vt_attn_kv){.k = k,
                        .v = v,
                        .location = VT_LOC_HOST,
                        .format = VT_FMT_F32,
                        .n_kv_heads = Hkv,
                        .head_dim = D,
                        .n_tokens = nk};
    p.o = oref;
    p.lse = lref;
    p.algo = VT_ATTN_NAIVE_F64;
    CHECK_RC(vt_attn_forward(&p));
    double ref2 = 0;
    for (uint64_t i = 0; i < nqo; i++) ref2 += (double)oref[i] * oref[i];

    row rows[] = {{VT_FMT_F16, 2e-3, 0, 0, 0},  {VT_FMT_BF16, 2e-2, 0, 0, 0},
                  {VT_FMT_Q8_0, 5e-2, 0, 0, 0}, {VT_FMT_INT8, 5e-2, 0, 0, 0},
                  {VT_FMT_Q4_0, 0.5, 0, 0, 0},  {VT_FMT_NF4, 0.5, 0, 0, 0},
                  {VT_FMT_NVFP4, 0.5, 0, 0, 0}, {VT_FMT_MXFP4, 0.5, 0, 0, 0}};
    const int nrows = sizeof rows / sizeof rows[0];
    printf("K/V quantization error of attention (H %u, Hkv %u, Nq %llu, Nk %llu, D %u, causal, "
           "N(0,1) inputs)\n",
           H, Hkv, (unsigned long long)nq, (unsigned long long)nk, D);
    printf("%-8s %8s %14s %14s %12s\n", "format", "bits", "max rel err", "rms rel err",
           "max |dLSE|");
    for (int r = 0; r < nrows; r++) {
        vt_kv_cache_config cc = {.location = VT_LOC_HOST,
                                 .format = rows[r].fmt,
                                 .n_kv_heads = Hkv,
                                 .head_dim = D,
                                 .capacity = nk};
        if (rows[r].fmt == VT_FMT_NVFP4) {
            vt_quant_params qp;
            vt_quant_params_init(&qp);
            vt_quant_observe(VT_FMT_NVFP4, &qp, k, nkv);
            vt_quant_observe(VT_FMT_NVFP4, &qp, v, nkv);
            cc.tensor_scale = qp.tensor_scale;
        }
        vt_kv_cache *kv;
        CHECK_RC(vt_kv_cache_create(&cc, &kv));
        CHECK_RC(vt_kv_cache_append(kv, k, v, VT_DTYPE_F32, nk, NULL));
        vt_kv_cache_view(kv, &p.kv);
        p.o = o;
        p.lse = lse;
        p.algo = VT_ATTN_FLASH;
        CHECK_RC(vt_attn_forward(&p));
        double e2 = 0, le = 0;
        for (uint64_t i = 0; i < nqo; i++)
            e2 += ((double)o[i] - oref[i]) * ((double)o[i] - oref[i]);
        for (uint64_t i = 0; i < nl; i++)
            if (fabs((double)lse[i] - lref[i]) > le) le = fabs((double)lse[i] - lref[i]);
        rows[r].max_rel = rel_err(o, VT_DTYPE_F32, oref, nqo);
        rows[r].rms_rel = sqrt(e2 / ref2);
        rows[r].lse_err = le;
        char fb[32];
        printf("%-8s %8.3f %14.3e %14.3e %12.3e\n", vt_format_name(rows[r].fmt, fb, sizeof fb),
               vt_format_bpw(rows[r].fmt, D), rows[r].max_rel, rows[r].rms_rel, le);
        CHECKF(rows[r].max_rel > 0 && rows[r].max_rel <= rows[r].bound,
               "%s: max rel err %.3g not in (0, %g]", fb, rows[r].max_rel, rows[r].bound);
        vt_kv_cache_destroy(kv);
    }
    for (int a = 2; a < 4; a++)
        for (int b = 4; b < nrows; b++)
            CHECKF(rows[a].rms_rel < rows[b].rms_rel, "8-bit row %d not better than 4-bit row %d",
                   a, b);
    free(k), free(v), free(q), free(oref), free(lref), free(o), free(lse);
    return vt_test_done("test_attn_kvquant");
}
