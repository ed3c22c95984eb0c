/* tests/attn/test_attn_kern_host.c — the GPU attention kernels' code executed on the host
 * (attn_kern_host.cu: every CTA thread a coroutine, warp collectives, ldmatrix and mma.sync
 * emulated from the PTX ISA) against the CPU f64 oracle on fresh random inputs: the prefill body
 * for every K/V format, D 64/128, GQA 1/4/8, causal (bottom-right, Nq != Nk, fully masked rows)
 * and not, ragged Nq/Nk, f16/bf16/f32 Q, f32/f16 O, LSE, a set softmax scale; the split-KV
 * decode body + combine with several splits (planned for a 132-SM and a 4-SM device, and forced
 * counts, in a workspace of the size the plan asks for) against one split. Outputs are
 * poisoned (NaN) before each run. Needs nvcc, not a GPU; what the GPU run adds: real
 * mma/ldmatrix hardware, ex2.approx, timing and memory errors (run test_attn_gpu there). */
#include "attn_util.h"
#include "attn_internal.h"

int akh_prefill(const vt_attn_dev_args *a, char *why, size_t cap);
int akh_decode(const vt_attn_dev_args *a, int num_splits, int sms, int *splits_out, char *why,
               size_t cap);
size_t akh_ws_bytes(const vt_attn_dev_args *a, int num_splits, int sms);
int akh_plan(const vt_attn_dev_args *a, int num_splits, int sms, long long *splits,
             long long *chunk, size_t *need);

/* The split plan over Nk 1..20000 for several shapes, SM counts and asked split counts: every key
 * in exactly one split (chunks of whole 32-key tiles, no empty trailing split), at most the
 * asked count, and the workspace size vt_attn_workspace_bytes reports (akh_ws_bytes) covers the
 * plan and never shrinks as Nk grows (sized once for the cache capacity). */
static void check_plans(void) {
    static const int sms[] = {1, 4, 108, 132};
    uint64_t plans = 0;
    for (int g = 0; g < 3; g++)
        for (int nq = 1; nq <= 3; nq++)
            for (int si = 0; si < 4; si++)
                for (int ns = 0; ns <= 9; ns += 1 + (ns > 3)) {
                    vt_attn_dev_args a = {0};
                    a.Hkv = 2, a.group = g == 0 ? 1 : g == 1 ? 4 : 8, a.H = a.Hkv * a.group;
                    a.D = 128, a.nq = nq;
                    size_t prev = 0;
                    for (long long nk = 1; nk <= 20000; nk += 1 + nk / 16) {
                        a.nk = nk;
                        long long sp, ch;
                        size_t need;
                        akh_plan(&a, ns, sms[si], &sp, &ch, &need);
                        size_t wb = akh_ws_bytes(&a, ns, sms[si]);
                        plans++;
                        int ok = sp >= 1 && ch % 32 == 0 && ch > 0 && (sp - 1) * ch < nk &&
                                 sp * ch >= nk && (ns <= 0 || sp <= ns) && wb >= need &&
                                 wb >= prev && (sp > 1) == (need > 0);
                        CHECKF(ok,
                               "plan: group %d Nq %d SMs %d asked %d Nk %lld: %lld splits of %lld "
                               "keys, workspace %zu (needs %zu, was %zu)",
                               a.group, nq, sms[si], ns, nk, sp, ch, wb, need, prev);
                        if (!ok) return;
                        prev = wb;
                    }
                }
    printf("%llu split plans checked\n", (unsigned long long)plans);
}

static const uint32_t fmts[] = {VT_FMT_F16,  VT_FMT_BF16, VT_FMT_F32,   VT_FMT_Q8_0, VT_FMT_INT8,
                                VT_FMT_Q4_0, VT_FMT_NF4,  VT_FMT_NVFP4, VT_FMT_MXFP4};
static double worst[2][3]; /* [prefill, decode][q dtype f32/f16/bf16] max rel err seen */

/* Run case c through the host-executed kernel (decode: splits, sms; prefill: splits < 0) and
 * check it against the oracle; o1/l1 (decode) receive the output for the split comparison.
 * shift (decode): the K/V heads copied to an address 2 mod 4 (q8_0/q4_0 allow 2-byte-aligned
 * caches; the decode's integer scorer reads such rows from 2 bytes before). */
static void run_case_at(const attn_case *c, int splits, int sms, int cmp_one, int shift) {
    char name[200], why[400] = "";
    case_name(c, name, sizeof name);
    const int decode = splits >= 0;
    case_data cd;
    case_data_make(c, &cd);
    const uint64_t nqo = cd.nqo, nl = cd.nl;
    vt_kv_cache *hc =
        case_cache(c, VT_LOC_HOST, 0); /* no spare rows: reads past Nk leave the buffer */
    CHECK_RC(vt_kv_cache_append(hc, cd.k, cd.v, VT_DTYPE_F32, c->nk, NULL));
    vt_attn_params p;
    case_params(c, cd.q, &p);
    p.scale = c->scale;
    vt_kv_cache_view(hc, &p.kv);
    float *oref = malloc(nqo * 4), *lref = malloc(nl * 4);
    p.o = oref, p.lse = lref, p.algo = VT_ATTN_NAIVE_F64;
    CHECK_RC(vt_attn_forward(&p));

    size_t ob = nqo * (c->o_dtype == VT_DTYPE_F32 ? 4 : 2);
    void *o = malloc(ob), *o1 = malloc(ob);
    float *lse = malloc(nl * 4), *lse1 = malloc(nl * 4);
    p.o = o, p.o_dtype = c->o_dtype, p.lse = lse;
    float scale = c->scale != 0.0f ? c->scale : 1.0f / sqrtf((float)c->D);
    vt_attn_dev_args a;
    int nsp = 1, rc;
    uint8_t *kvs = NULL; /* shift: [K heads][V heads] at 2 mod 4 */
    for (int pass = 0; pass < (decode && cmp_one ? 2 : 1); pass++) {
        /* pass 0: the requested run; pass 1 (decode): one split, no workspace */
        void *ws = NULL;
        memset(o, 0xff, ob); /* NaN: every output must be written */
        memset(lse, 0xff, nl * 4);
        vt_attn_dev_args_fill(&p, scale, &a);
        if (shift) {
            const size_t hb = (size_t)a.head_stride * (size_t)a.Hkv;
            if (!kvs) kvs = malloc(2 * hb + 16);
            uint8_t *ks = kvs + 2 + (4 - (uintptr_t)kvs % 4) % 4, *vs = ks + hb;
            memcpy(ks, a.k, hb), memcpy(vs, a.v, hb);
            a.k = ks, a.v = vs;
        }
        if (!decode) {
            rc = akh_prefill(&a, why, sizeof why);
        } else {
            size_t wb = pass ? 0 : akh_ws_bytes(&a, splits, sms);
            if (wb) ws = malloc(wb + 64);
            a.ws = ws, a.ws_bytes = wb;
            if (ws) memset(ws, 0xff, wb); /* NaN partials: the kernels must write all they read */
            rc = akh_decode(&a, pass ? 1 : splits, sms, pass ? &(int){0} : &nsp, why, sizeof why);
        }
        free(ws);
        CHECKF(rc == 0, "%s %s: rc %d: %s %s", name, decode ? "decode" : "prefill", rc, why,
               rc < 0 || rc > 1 ? vt_last_error() : "");
        if (rc) goto out;
        if (pass == 0) memcpy(o1, o, ob), memcpy(lse1, lse, nl * 4);
    }
    int qi = c->q_dtype == VT_DTYPE_F32 ? 0 : c->q_dtype == VT_DTYPE_F16 ? 1 : 2;
    /* pass 0 ran the requested splits into o1; pass 1 (decode) one split into o */
    double e = decode && cmp_one
                   ? check_out(c, "decode", o1, lse1, oref, lref, o, nsp)
                   : check_out(c, decode ? "decode" : "prefill", o1, lse1, oref, lref, NULL, nsp);
    if (e > worst[decode][qi]) worst[decode][qi] = e;
out:
    free(kvs);
    vt_kv_cache_destroy(hc);
    case_data_free(&cd);
    free(oref), free(lref), free(o), free(o1), free(lse), free(lse1);
}

static void run_case(const attn_case *c, int splits, int sms, int cmp_one) {
    run_case_at(c, splits, sms, cmp_one, 0);
}

int main(void) {
    vt_test_seed();
    check_plans();
    static const vt_dtype qd[] = {VT_DTYPE_F16, VT_DTYPE_BF16, VT_DTYPE_F32};
    for (size_t f = 0; f < sizeof fmts / sizeof fmts[0]; f++)
        for (int di = 0; di < 2; di++) {
            size_t k = f * 2 + (size_t)di;
            attn_case c = {0};
            c.fmt = fmts[f];
            c.D = di ? 128 : 64;
            /* prefill: GQA 1/4/8 in turn, ragged Nq/Nk (often Nq > Nk: masked rows), 1-3 CTAs */
            c.Hkv = 1 + (uint32_t)(k % 2);
            c.H = c.Hkv * (k % 3 == 0 ? 1 : k % 3 == 1 ? 4 : 8) / (k % 3 == 2 ? c.Hkv : 1);
            c.nq = 1 + vt_rand_u64() % 300; /* the CTA takes 128 queries */
            c.nk = 1 + vt_rand_u64() % 200;
            c.causal = (int)(k % 2 == 0);
            c.q_dtype = qd[k % 3];
            c.o_dtype = k % 4 < 2 ? VT_DTYPE_F32 : VT_DTYPE_F16;
            c.scale = k % 5 == 4 ? 0.3f : 0.0f;
            run_case(&c, -1, 0, 0);
            /* decode: 1-3 queries, group 1/4/8, a longer cache; planned and forced splits */
            c.Hkv = 2;
            c.H = c.Hkv * (k % 3 == 0 ? 1 : k % 3 == 1 ? 4 : 8);
            c.nq = 1 + vt_rand_u64() % 3;
            c.nk = 300 + vt_rand_u64() % 700;
            c.causal = (int)(k % 2);
            c.scale = 0.0f;
            run_case(&c, 0, k % 2 ? 132 : 4, 1);
            run_case(&c, 2 + (int)(vt_rand_u64() % 6), 132, 1);
            if (c.fmt == VT_FMT_Q8_0 || c.fmt == VT_FMT_Q4_0) run_case_at(&c, 0, 132, 1, 2);
        }
    /* the decode shapes of bench_attn_gpu (one query row per K/V head), four rows (the last
     * with the integer P V) and eight (the integer scores' per-row order), for the quantized
     * formats at both K/V phases */
    for (size_t f = 3; f < sizeof fmts / sizeof fmts[0]; f++)
        for (int nq = 1; nq <= 8; nq = nq == 1 ? 4 : 2 * nq) {
            attn_case c = {2, 2, 128, (uint32_t)nq, 0, 0, fmts[f], VT_DTYPE_F16, VT_DTYPE_F32, 0};
            c.nk = 200 + vt_rand_u64() % 900;
            run_case(&c, 0, 132, 1);
            if (c.fmt == VT_FMT_Q8_0 || c.fmt == VT_FMT_Q4_0) run_case_at(&c, 3, 132, 1, 2);
        }
    /* fully masked rows in both kernels: Nq 150 > Nk 40, causal; an empty-split-heavy decode */
    attn_case masked = {4, 1, 128, 150, 40, 1, VT_FMT_Q8_0, VT_DTYPE_F16, VT_DTYPE_F32, 0};
    run_case(&masked, -1, 0, 0);
    run_case(&masked, 3, 132, 1);
    attn_case tiny = {8, 1, 64, 1, 33, 1, VT_FMT_F16, VT_DTYPE_BF16, VT_DTYPE_F16, 0};
    run_case(&tiny, 7, 132, 1); /* 7 splits asked, 33 keys: the plan makes 2 of 32 keys */
    printf("worst rel err (f32 / f16 / bf16 Q): prefill %.2e %.2e %.2e, decode %.2e %.2e %.2e\n",
           worst[0][0], worst[0][1], worst[0][2], worst[1][0], worst[1][1], worst[1][2]);
    return vt_test_done("test_attn_kern_host");
}
