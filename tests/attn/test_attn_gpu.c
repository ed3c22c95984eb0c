/* GPU attention against the CPU f64 oracle on fresh random inputs: the tensor-core prefill
 * kernel and the split-KV decode kernel for every K/V format, D 64/128, GQA, causal with
 * Nq != Nk and masked rows, ragged tiles; the decode with several splits (automatic and forced
 * counts, in a workspace sized by vt_attn_workspace_bytes) against one split (no workspace),
 * and a too small workspace refused with VT_EBUDGET; the GPU append kernel must store exactly the
 * bytes the host cache (vt_quantize) stores. Exit 77 without a CUDA device. */
#include "attn_util.h"
#include "vtstore/device.h"

static const uint32_t fmts[] = {VT_FMT_F16,  VT_FMT_BF16, VT_FMT_F32,   VT_FMT_Q8_0, VT_FMT_INT8,
                                VT_FMT_Q4_0, VT_FMT_NF4,  VT_FMT_NVFP4, VT_FMT_MXFP4};

static void gpu_case(const attn_case *c, vt_attn_algo algo, int splits) {
    char name[200];
    case_name(c, name, sizeof name);
    uint64_t nkv = (uint64_t)c->Hkv * c->nk * c->D, nqo = (uint64_t)c->H * c->nq * c->D;
    uint64_t nl = (uint64_t)c->H * c->nq;
    float *kf = rand_f32(nkv, 1), *vf = rand_f32(nkv, 1), *qf = rand_f32(nqo, 1);
    void *q = make_q(c, qf);
    size_t qb = nqo * (c->q_dtype == VT_DTYPE_F32 ? 4 : 2),
           ob = nqo * (c->o_dtype == VT_DTYPE_F32 ? 4 : 2);
    vt_kv_cache_config cc = {.location = VT_LOC_HOST,
                             .format = c->fmt,
                             .n_kv_heads = c->Hkv,
                             .head_dim = c->D,
                             .capacity = c->nk + 7,
                             .tensor_scale = 0.01f};
    vt_kv_cache *hc = NULL, *dc = NULL;
    CHECK_RC(vt_kv_cache_create(&cc, &hc));
    cc.location = VT_LOC_DEVICE;
    CHECK_RC(vt_kv_cache_create(&cc, &dc));
    void *dk = NULL, *dv = NULL, *dq = NULL, *dout = NULL, *dlse = NULL;
    CHECK_RC(vt_dev_malloc(&dk, nkv * 4 + 4));
    CHECK_RC(vt_dev_malloc(&dv, nkv * 4 + 4));
    CHECK_RC(vt_dev_malloc(&dq, qb));
    CHECK_RC(vt_dev_malloc(&dout, ob));
    CHECK_RC(vt_dev_malloc(&dlse, nl * 4));
    CHECK_RC(vt_dev_memcpy_h2d(dk, kf, nkv * 4, NULL));
    CHECK_RC(vt_dev_memcpy_h2d(dv, vf, nkv * 4, NULL));
    CHECK_RC(vt_dev_memcpy_h2d(dq, q, qb, NULL));
    CHECK_RC(vt_kv_cache_append(hc, kf, vf, VT_DTYPE_F32, c->nk, NULL));
    CHECK_RC(vt_kv_cache_append(dc, dk, dv, VT_DTYPE_F32, c->nk, NULL));

    /* stored bytes: device append == host append */
    vt_attn_kv hv, dvw;
    vt_kv_cache_view(hc, &hv);
    vt_kv_cache_view(dc, &dvw);
    size_t cb = (size_t)hv.head_stride * c->Hkv;
    uint8_t *back = malloc(cb);
    CHECK_RC(vt_dev_memcpy_d2h(back, dvw.k, cb, NULL));
    CHECK_RC(vt_dev_sync(NULL));
    size_t rowb = vt_attn_row_bytes(c->fmt, c->D);
    for (uint32_t h = 0; h < c->Hkv; h++)
        CHECKF(!memcmp(back + h * hv.head_stride, (const uint8_t *)hv.k + h * hv.head_stride,
                       rowb * c->nk),
               "%s: device-appended K head %u differs from the host cache", name, h);
    free(back);

    vt_attn_params p;
    case_params(c, q, &p);
    p.kv = hv;
    float *oref = malloc(nqo * 4), *lref = malloc(nl * 4);
    p.o = oref;
    p.lse = lref;
    p.algo = VT_ATTN_NAIVE_F64;
    CHECK_RC(vt_attn_forward(&p));

    p.q = dq;
    p.kv = dvw;
    p.o = dout;
    p.o_dtype = c->o_dtype;
    p.lse = dlse;
    p.algo = algo;
    const char *path = algo == VT_ATTN_DECODE ? "decode" : "prefill";
    void *o = malloc(ob), *o1 = NULL;
    float *lse = malloc(nl * 4);
    void *ws = NULL;
    if (algo == VT_ATTN_DECODE) {
        /* the single-split result (no workspace needed: a NULL workspace runs one split even
         * when more are asked for) is the baseline the split runs must match */
        p.num_splits = splits > 1 ? splits : 2;
        CHECKF(vt_attn_workspace_bytes(&p) > 0, "%s: %d splits need a workspace", name,
               p.num_splits);
        o1 = malloc(ob);
        CHECK_RC(vt_dev_memset(dout, 0xff, ob, NULL));
        CHECK_RC(vt_attn_forward(&p));
        CHECK_RC(vt_dev_memcpy_d2h(o1, dout, ob, NULL));
        CHECK_RC(vt_dev_sync(NULL));
        p.num_splits = 1;
        CHECK(vt_attn_workspace_bytes(&p) == 0);
        CHECK_RC(vt_dev_memset(dout, 0xff, ob, NULL));
        CHECK_RC(vt_attn_forward(&p));
        CHECK_RC(vt_dev_memcpy_d2h(o, dout, ob, NULL));
        CHECK_RC(vt_dev_sync(NULL));
        CHECKF(!memcmp(o, o1, ob), "%s: a NULL workspace must run exactly one split", name);
        /* the requested split count with a workspace of the size the library asks for */
        p.num_splits = splits;
        size_t wb = vt_attn_workspace_bytes(&p);
        /* the bound grows with the cache, never shrinks: the capacity's size covers this */
        p.kv.n_tokens = c->nk + 7;
        CHECK(vt_attn_workspace_bytes(&p) >= wb);
        p.kv.n_tokens = c->nk;
        if (wb) {
            CHECK_RC(vt_dev_malloc(&ws, wb));
            /* too small: refused with both sizes, nothing queued */
            p.workspace = ws;
            p.workspace_bytes = 16;
            int rc = vt_attn_forward(&p);
            CHECKF(rc == VT_EBUDGET && strstr(vt_last_error(), "workspace of 16 bytes <"),
                   "%s: workspace of 16 bytes: rc %d, %s", name, rc, vt_last_error());
        }
        p.workspace = ws;
        p.workspace_bytes = wb;
    }
    CHECK_RC(vt_dev_memset(dout, 0xff, ob, NULL));
    CHECK_RC(vt_attn_forward(&p));
    CHECK_RC(vt_dev_memcpy_d2h(o, dout, ob, NULL));
    CHECK_RC(vt_dev_memcpy_d2h(lse, dlse, nl * 4, NULL));
    CHECK_RC(vt_dev_sync(NULL));
    /* prefill rounds K, V and P to the MMA type (f16 or bf16); decode computes in f32 */
    double tol = algo == VT_ATTN_DECODE ? 2e-3 : c->q_dtype == VT_DTYPE_BF16 ? 1.6e-2 : 2e-3;
    double e = rel_err(o, c->o_dtype, oref, nqo), le = 0, es = 0;
    if (o1) {
        /* splits > 1 against splits == 1: only the merge order differs (f16 O: one rounding) */
        float *o1f = malloc(nqo * 4);
        for (uint64_t i = 0; i < nqo; i++) o1f[i] = out_at(o1, c->o_dtype, i);
        es = rel_err(o, c->o_dtype, o1f, nqo);
        free(o1f);
        double st = c->o_dtype == VT_DTYPE_F16 ? 1e-3 : 2e-5;
        CHECKF(es <= st, "%s: %d splits vs one split: rel diff %.3g > %g", name, splits, es, st);
    }
    int masked_ok = 1;
    for (uint64_t r = 0; r < nl; r++) {
        if (visible_keys(c, r % c->nq) == 0) {
            masked_ok &= isinf(lse[r]) && lse[r] < 0;
            for (uint32_t d = 0; d < c->D; d++)
                masked_ok &= out_at(o, c->o_dtype, r * c->D + d) == 0;
        } else if (fabs((double)lse[r] - lref[r]) > le) {
            le = fabs((double)lse[r] - lref[r]);
        }
    }
    CHECKF(e <= tol, "%s %s: rel err %.3g > %g", name, path, e, tol);
    CHECKF(le <= 10 * tol, "%s: lse err %.3g", name, le);
    CHECKF(masked_ok, "%s: masked rows must be 0 with LSE -inf", name);
    if (o1)
        printf("  %-7s %-72s splits %d rel err %.2e lse err %.2e vs 1 split %.1e\n", path, name,
               splits, e, le, es);
    else
        printf("  %-7s %-72s rel err %.2e lse err %.2e\n", path, name, e, le);
    vt_dev_free(ws);
    free(o1);
    vt_dev_free(dk), vt_dev_free(dv), vt_dev_free(dq), vt_dev_free(dout), vt_dev_free(dlse);
    vt_kv_cache_destroy(hc);
    vt_kv_cache_destroy(dc);
    free(kf), free(vf), free(qf), free(q), free(oref), free(lref), free(o), free(lse);
}

int main(void) {
    if (!vt_attn_cuda_available()) TEST_SKIP("no CUDA device (or a build without CUDA)");
    vt_test_seed();
    for (size_t f = 0; f < sizeof fmts / sizeof fmts[0]; f++)
        for (int di = 0; di < 2; di++) {
            attn_case c = {0};
            c.fmt = fmts[f];
            c.D = di ? 128 : 64;
            /* prefill: GQA 1/4/8 in turn, ragged Nq/Nk, Nq != Nk */
            c.Hkv = 2;
            c.H = c.Hkv * (uint32_t)((f + di) % 3 == 0 ? 1 : (f + di) % 3 == 1 ? 4 : 8);
            c.nq = 65 + vt_rand_u64() % 200;
            c.nk = 1 + vt_rand_u64() % 300;
            c.causal = (int)((f + di) % 2);
            c.q_dtype = f % 3 == 2 ? VT_DTYPE_BF16 : f % 3 == 1 ? VT_DTYPE_F32 : VT_DTYPE_F16;
            c.o_dtype = di ? VT_DTYPE_F16 : VT_DTYPE_F32;
            gpu_case(&c, VT_ATTN_FLASH, 0);
            /* decode: few queries over a longer cache, automatic and forced split counts */
            c.H = c.Hkv * (di ? 8 : 1);
            c.nq = 1 + vt_rand_u64() % 2;
            c.nk = 500 + vt_rand_u64() % 3000;
            c.causal = 1;
            c.q_dtype = VT_DTYPE_F16;
            gpu_case(&c, VT_ATTN_DECODE, 0);
            gpu_case(&c, VT_ATTN_DECODE, 1 + (int)(vt_rand_u64() % 7));
        }
    attn_case masked = {4, 1, 128, 150, 40, 1, VT_FMT_Q8_0, VT_DTYPE_F16, VT_DTYPE_F32, 0};
    gpu_case(&masked, VT_ATTN_FLASH, 0);
    gpu_case(&masked, VT_ATTN_DECODE, 3);
    /* head dims other than 64/128 are refused on the GPU with a clear message */
    vt_kv_cache_config cc = {.location = VT_LOC_DEVICE,
                             .format = VT_FMT_F16,
                             .n_kv_heads = 1,
                             .head_dim = 96,
                             .capacity = 4};
    vt_kv_cache *kv;
    CHECK_RC(vt_kv_cache_create(&cc, &kv));
    vt_attn_params p;
    vt_attn_params_init(&p);
    void *buf;
    CHECK_RC(vt_dev_malloc(&buf, 4096));
    p.q = buf, p.o = buf, p.n_heads = 1, p.n_q = 1;
    vt_kv_cache_view(kv, &p.kv);
    CHECK(vt_attn_forward(&p) == VT_EUNSUPPORTED && strstr(vt_last_error(), "96"));
    vt_dev_free(buf);
    vt_kv_cache_destroy(kv);
    return vt_test_done("test_attn_gpu");
}
