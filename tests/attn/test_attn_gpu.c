/* GPU attention against the CPU f64 oracle on fresh random inputs (relative error <= 2e-3 on
 * every path, issue 6): the tensor-core prefill kernel and the split-KV decode kernel for every
 * K/V format, D 64/128, GQA 1/4/8, f16/bf16/f32 Q, f32/f16 O, LSE, a set softmax scale, causal
 * with Nq != Nk and fully masked rows, ragged tiles; the decode with several splits (automatic
 * and forced counts, in a workspace sized by vt_attn_workspace_bytes) against one split (no
 * workspace), and a too small workspace refused with VT_EBUDGET; outputs (O and LSE) poisoned
 * with NaN before every run. The GPU append kernel (two appends, the second at an offset; f32
 * and f16 input) must store exactly the K and V bytes the host cache (vt_quantize) stores.
 * Exit 77 without a CUDA device. VT_TEST_GPU_QUICK=1 runs every other K/V format (for the
 * compute-sanitizer runs). The same kernel code runs on the host, with emulated warps, in
 * test_attn_kern_host and test_attn_quant_host. A head dim other than 64 or 128 is refused: at
 * vt_kv_cache_create for a device cache, by vt_attn_forward for borrowed device K/V.
 * vt_kv_cache_check reports a NaN and an out-of-range value the device append stored (the flag's
 * rules are checked against the host's in test_attn_quant_host) and cuts the cache back, also
 * where resets pass a multiple of 4096 (the flag's epoch field wraps). */
#include <errno.h>

#include "attn_util.h"
#include "vtstore/device.h"

static const uint32_t fmts[] = {VT_FMT_F16,  VT_FMT_BF16, VT_FMT_F32,   VT_FMT_Q8_0, VT_FMT_INT8,
                                VT_FMT_Q4_0, VT_FMT_NF4,  VT_FMT_NVFP4, VT_FMT_MXFP4};

static void gpu_case(const attn_case *c, vt_attn_algo algo, int splits) {
    char name[200];
    case_name(c, name, sizeof name);
    case_data cd;
    case_data_make(c, &cd);
    const uint64_t nkv = cd.nkv, nqo = cd.nqo, nl = cd.nl;
    float *kf = cd.k, *vf = cd.v;
    void *q = cd.q;
    size_t qb = nqo * (c->q_dtype == VT_DTYPE_F32 ? 4 : 2),
           ob = nqo * (c->o_dtype == VT_DTYPE_F32 ? 4 : 2);
    vt_kv_cache *hc = case_cache(c, VT_LOC_HOST, 7), *dc = case_cache(c, VT_LOC_DEVICE, 7);
    void *dk = NULL, *dv = NULL, *dq = NULL, *dout = NULL, *dlse = NULL;
    CHECK_RC(vt_dev_malloc(&dk, nkv * 4 + 4));
    CHECK_RC(vt_dev_malloc(&dv, nkv * 4 + 4));
    CHECK_RC(vt_dev_malloc(&dq, qb));
    CHECK_RC(vt_dev_malloc(&dout, ob));
    CHECK_RC(vt_dev_malloc(&dlse, nl * 4));
    CHECK_RC(vt_dev_memcpy_h2d(dq, q, qb, NULL));
    /* two appends (the second at an offset), f32 or f16 input: [Hkv][n][D] per call */
    const int f16_in = c->D == 128;
    uint64_t n1 = c->nk / 3, n2 = c->nk - n1;
    for (int step = 0; step < 2; step++) {
        uint64_t t0 = step ? n1 : 0, n = step ? n2 : n1, cnt = (uint64_t)c->Hkv * n * c->D;
        if (!n) continue;
        float *ks = malloc(cnt * 4), *vs = malloc(cnt * 4);
        for (uint32_t h = 0; h < c->Hkv; h++) {
            memcpy(ks + (uint64_t)h * n * c->D, kf + ((uint64_t)h * c->nk + t0) * c->D,
                   n * c->D * 4);
            memcpy(vs + (uint64_t)h * n * c->D, vf + ((uint64_t)h * c->nk + t0) * c->D,
                   n * c->D * 4);
        }
        void *hk = ks, *hv2 = vs;
        size_t eb = f16_in ? 2 : 4;
        if (f16_in) {
            uint16_t *k16 = malloc(cnt * 2), *v16 = malloc(cnt * 2);
            vt_f32_to_f16_row(ks, k16, cnt);
            vt_f32_to_f16_row(vs, v16, cnt);
            hk = k16, hv2 = v16;
        }
        CHECK_RC(vt_dev_memcpy_h2d(dk, hk, cnt * eb, NULL));
        CHECK_RC(vt_dev_memcpy_h2d(dv, hv2, cnt * eb, NULL));
        vt_dtype dt = f16_in ? VT_DTYPE_F16 : VT_DTYPE_F32;
        CHECK_RC(vt_kv_cache_append(hc, hk, hv2, dt, n, NULL));
        CHECK_RC(vt_kv_cache_append(dc, dk, dv, dt, n, NULL));
        CHECK_RC(vt_dev_sync(NULL)); /* dk/dv are reused by the next step */
        if (hk != ks) free(hk), free(hv2);
        free(ks), free(vs);
    }
    /* stored bytes: device append == host append, K and V, the unused slots still zero */
    vt_attn_kv hv, dvw;
    vt_kv_cache_view(hc, &hv);
    vt_kv_cache_view(dc, &dvw);
    size_t cb = (size_t)hv.head_stride * c->Hkv;
    uint8_t *back = malloc(cb);
    for (int w = 0; w < 2; w++) {
        CHECK_RC(vt_dev_memcpy_d2h(back, w ? dvw.v : dvw.k, cb, NULL));
        CHECK_RC(vt_dev_sync(NULL));
        const uint8_t *ref = w ? hv.v : hv.k;
        size_t at = 0, ndiff = 0;
        for (size_t i = 0; i < cb; i++)
            if (back[i] != ref[i] && !ndiff++) at = i;
        size_t rb = (size_t)vt_attn_row_bytes(hv.format, c->D);
        CHECKF(!ndiff,
               "%s: device-appended %c (%s input) differs from the host cache: %zu of %zu bytes, "
               "first at byte %zu (token slot %zu, byte %zu of a %zu-byte row): device %02x %02x "
               "%02x %02x host %02x %02x %02x %02x",
               name, w ? 'V' : 'K', f16_in ? "f16" : "f32", ndiff, cb, at, at / rb, at % rb, rb,
               back[at], at + 1 < cb ? back[at + 1] : 0, at + 2 < cb ? back[at + 2] : 0,
               at + 3 < cb ? back[at + 3] : 0, ref[at], at + 1 < cb ? ref[at + 1] : 0,
               at + 2 < cb ? ref[at + 2] : 0, at + 3 < cb ? ref[at + 3] : 0);
    }
    free(back);

    vt_attn_params p;
    case_params(c, q, &p);
    p.kv = hv;
    float *oref = malloc(nqo * 4), *lref = malloc(nl * 4);
    p.o = oref;
    p.lse = lref;
    p.scale = c->scale;
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
        CHECK_RC(vt_dev_memset(dlse, 0xff, nl * 4, NULL));
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
    CHECK_RC(vt_dev_memset(dout, 0xff, ob, NULL)); /* NaN: every output must be written */
    CHECK_RC(vt_dev_memset(dlse, 0xff, nl * 4, NULL));
    CHECK_RC(vt_attn_forward(&p));
    CHECK_RC(vt_dev_memcpy_d2h(o, dout, ob, NULL));
    CHECK_RC(vt_dev_memcpy_d2h(lse, dlse, nl * 4, NULL));
    CHECK_RC(vt_dev_sync(NULL));
    check_out(c, path, o, lse, oref, lref, o1, splits);
    vt_dev_free(ws);
    free(o1);
    vt_dev_free(dk), vt_dev_free(dv), vt_dev_free(dq), vt_dev_free(dout), vt_dev_free(dlse);
    vt_kv_cache_destroy(hc);
    vt_kv_cache_destroy(dc);
    case_data_free(&cd);
    free(oref), free(lref), free(o), free(lse);
}

/* Append @p n tokens of [Hkv][n][D] f32 values @p x to the device cache (through device memory). */
static void dev_append(vt_kv_cache *c, const float *x, uint32_t Hkv, uint64_t n, uint32_t D) {
    void *d = NULL;
    const size_t b = (size_t)Hkv * n * D * 4;
    CHECK_RC(vt_dev_malloc(&d, b));
    if (!d) return;
    CHECK_RC(vt_dev_memcpy_h2d(d, x, b, NULL));
    CHECK_RC(vt_kv_cache_append(c, d, d, VT_DTYPE_F32, n, NULL));
    CHECK_RC(vt_dev_sync(NULL));
    vt_dev_free(d);
}

/* A device q8_0 cache (NULL, counted as a failure, if it cannot be made). */
static vt_kv_cache *q8_cache(uint32_t Hkv, uint32_t D, uint64_t capacity) {
    vt_kv_cache_config cc = {.location = VT_LOC_DEVICE,
                             .format = VT_FMT_Q8_0,
                             .n_kv_heads = Hkv,
                             .head_dim = D,
                             .capacity = capacity};
    vt_kv_cache *c = NULL;
    CHECK_RC(vt_kv_cache_create(&cc, &c));
    return c;
}

/* vt_kv_cache_check: a NaN, then a value q8_0 cannot hold, each reported naming K/V, head, token
 * and column, the cache cut back to before the append that stored it (later appends too); a
 * clean cache checks 0; a flag from before a reset is stale. */
static void check_case(void) {
    const uint32_t Hkv = 2, D = 64;
    vt_kv_cache *c = q8_cache(Hkv, D, 32);
    if (!c) return;
    float *x = calloc((size_t)Hkv * 4 * D, sizeof(float));
    for (size_t i = 0; i < (size_t)Hkv * 4 * D; i++) x[i] = vt_rand_normal();
    dev_append(c, x, Hkv, 4, D); /* tokens 0..3 */
    CHECK_RC(vt_kv_cache_check(c, NULL));
    CHECK(vt_kv_cache_len(c) == 4);
    x[((size_t)1 * 3 + 1) * D + 5] = NAN; /* head 1, token 1 of 3: cache token 5, column 5 */
    dev_append(c, x, Hkv, 3, D);          /* tokens 4..6 (K and V alike) */
    x[((size_t)1 * 3 + 1) * D + 5] = 0.5f;
    dev_append(c, x, Hkv, 2, D); /* tokens 7..8 */
    CHECK(vt_kv_cache_check(c, NULL) == VT_ENONFINITE);
    CHECKF(strstr(vt_last_error(), "K head 1, token 5, column 5") &&
               strstr(vt_last_error(), "tokens 4..6"),
           "message: %s", vt_last_error());
    CHECK(vt_kv_cache_len(c) == 4);
    CHECK_RC(vt_kv_cache_check(c, NULL)); /* reported once */
    dev_append(c, x, Hkv, 2, D);          /* tokens 4..5 */
    x[3] = 1e7f;                          /* K and V head 0 token 0, column 3: 1e7 / 127 > 65520 */
    dev_append(c, x, Hkv, 1, D);          /* token 6 */
    x[3] = 0.25f;
    CHECK(vt_kv_cache_check(c, NULL) == -ERANGE);
    CHECKF(strstr(vt_last_error(), "K head 0, token 6, column 3"), "message: %s", vt_last_error());
    CHECK(vt_kv_cache_len(c) == 6);
    x[7] = INFINITY; /* flagged, then the cache is reset: stale */
    dev_append(c, x, Hkv, 1, D);
    x[7] = 0.0f;
    vt_kv_cache_reset(c);
    dev_append(c, x, Hkv, 3, D);
    CHECK_RC(vt_kv_cache_check(c, NULL));
    CHECK(vt_kv_cache_len(c) == 3);
    free(x);
    vt_kv_cache_destroy(c);
}

/* vt_kv_cache_check across blocks of 4096 epochs: a NaN appended at epoch 4095 and left
 * unchecked, a reset into epoch 4096 and a NaN there: the new one is reported (before
 * 2026-11-27 the stale key beat it and nothing was); a NaN, 4096 resets and a check with no
 * append between: nothing (the stale key has the current epoch mod 4096). The protocol's model
 * test without a GPU: test_attn_kv_flag. */
static void wrap_case(void) {
    const uint32_t Hkv = 2, D = 64;
    vt_kv_cache *c = q8_cache(Hkv, D, 16);
    if (!c) return;
    float *x = calloc((size_t)Hkv * 2 * D, sizeof(float));
    for (size_t i = 0; i < (size_t)Hkv * 2 * D; i++) x[i] = vt_rand_normal();
    for (int i = 0; i < 4095; i++) vt_kv_cache_reset(c); /* epoch 4095 */
    x[5] = NAN;
    dev_append(c, x, Hkv, 2, D); /* flagged, never checked */
    x[5] = 0.5f;
    vt_kv_cache_reset(c);                 /* epoch 4096 */
    dev_append(c, x, Hkv, 2, D);          /* tokens 0..1 */
    x[((size_t)1 * 2 + 1) * D + 7] = NAN; /* head 1, token 1 of 2: cache token 3, column 7 */
    dev_append(c, x, Hkv, 2, D);          /* tokens 2..3 */
    x[((size_t)1 * 2 + 1) * D + 7] = 0.5f;
    CHECK(vt_kv_cache_check(c, NULL) == VT_ENONFINITE);
    CHECKF(strstr(vt_last_error(), "K head 1, token 3, column 7") &&
               strstr(vt_last_error(), "tokens 2..3"),
           "message: %s", vt_last_error());
    CHECK(vt_kv_cache_len(c) == 2);
    x[9] = INFINITY;
    dev_append(c, x, Hkv, 2, D); /* flagged at epoch 4096, never checked */
    x[9] = 0.5f;
    for (int i = 0; i < 4096; i++) vt_kv_cache_reset(c); /* epoch 8192: 0 mod 4096 again */
    CHECK_RC(vt_kv_cache_check(c, NULL));
    CHECK(vt_kv_cache_len(c) == 0);
    dev_append(c, x, Hkv, 2, D);
    CHECK_RC(vt_kv_cache_check(c, NULL));
    CHECK(vt_kv_cache_len(c) == 2);
    free(x);
    vt_kv_cache_destroy(c);
}

int main(void) {
    if (!vt_attn_cuda_available()) TEST_SKIP("no CUDA device (or a build without CUDA)");
    vt_test_seed();
    /* VT_TEST_GPU_QUICK=1 (the compute-sanitizer runs of scripts/gpu_check.sh): every other
     * format, so each tool finishes within its time limit */
    const char *quick = getenv("VT_TEST_GPU_QUICK");
    size_t fstep = quick && *quick == '1' ? 2 : 1;
    for (size_t f = 0; f < sizeof fmts / sizeof fmts[0]; f += fstep)
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
            c.scale = f % 4 == 3 ? 0.3f : 0.0f;
            gpu_case(&c, VT_ATTN_FLASH, 0);
            /* decode: few queries over a longer cache, automatic and forced split counts */
            c.H = c.Hkv * (uint32_t)((f + di) % 3 == 0 ? 4 : (f + di) % 3 == 1 ? 8 : 1);
            c.nq = 1 + vt_rand_u64() % 2;
            c.nk = 500 + vt_rand_u64() % 3000;
            c.causal = (int)((f + di + 1) % 2);
            c.q_dtype = (f + di) % 3 == 0   ? VT_DTYPE_F16
                        : (f + di) % 3 == 1 ? VT_DTYPE_BF16
                                            : VT_DTYPE_F32;
            gpu_case(&c, VT_ATTN_DECODE, 0);
            gpu_case(&c, VT_ATTN_DECODE, 1 + (int)(vt_rand_u64() % 7));
        }
    attn_case masked = {4, 1, 128, 150, 40, 1, VT_FMT_Q8_0, VT_DTYPE_F16, VT_DTYPE_F32, 0};
    gpu_case(&masked, VT_ATTN_FLASH, 0);
    gpu_case(&masked, VT_ATTN_DECODE, 3);
    /* whole tiles (Nq = Nk = 64 causal: the diagonal tile only), one query over 129 keys */
    attn_case exact = {2, 2, 64, 64, 64, 1, VT_FMT_F16, VT_DTYPE_F16, VT_DTYPE_F32, 0};
    gpu_case(&exact, VT_ATTN_FLASH, 0);
    attn_case one = {8, 1, 128, 1, 129, 0, VT_FMT_BF16, VT_DTYPE_BF16, VT_DTYPE_F16, 0};
    gpu_case(&one, VT_ATTN_FLASH, 0);
    gpu_case(&one, VT_ATTN_DECODE, 0);
    check_case();
    wrap_case();
    /* head dims other than 64/128 are refused on the GPU with a clear message: a device cache
     * at create, borrowed device K/V by the attention call */
    vt_kv_cache_config cc = {.location = VT_LOC_DEVICE,
                             .format = VT_FMT_F16,
                             .n_kv_heads = 1,
                             .head_dim = 96,
                             .capacity = 4};
    vt_kv_cache *kv = NULL;
    CHECK(vt_kv_cache_create(&cc, &kv) == -EINVAL && !kv && strstr(vt_last_error(), "96") &&
          strstr(vt_last_error(), "64 or 128"));
    vt_attn_params p;
    vt_attn_params_init(&p);
    void *buf;
    CHECK_RC(vt_dev_malloc(&buf, 4096));
    p.q = buf, p.o = buf, p.n_heads = 1, p.n_q = 1;
    p.kv.k = buf, p.kv.v = buf, p.kv.location = VT_LOC_DEVICE, p.kv.format = VT_FMT_F16;
    p.kv.n_kv_heads = 1, p.kv.head_dim = 96, p.kv.n_tokens = 4;
    CHECK(vt_attn_forward(&p) == VT_EUNSUPPORTED && strstr(vt_last_error(), "96"));
    vt_dev_free(buf);
    return vt_test_done("test_attn_gpu");
}
