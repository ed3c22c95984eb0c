/* `vtstore attn` end to end: random Q/K/V written as .npy, the CLI run on them ($VT_BIN), its
 * O and LSE read back and compared with the f64 oracle computed here on the same K/V format;
 * usage and shape errors give exit codes 2 and 1 with a message naming the file. */
#include <sys/wait.h>

#include "attn_util.h"
#include "tools/npy_io.h"

static char dir[1024];

static int run(const char *args, const char *errfile) {
    const char *bin = getenv("VT_BIN");
    char cmd[16384];
    snprintf(cmd, sizeof cmd, "'%s' attn %s >'%s/stdout.txt' 2>'%s'", bin, args, dir, errfile);
    int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void write_npy(const char *name, const float *x, uint64_t a, uint64_t b, uint64_t c,
                      int f16) {
    char path[2048];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    uint64_t dims[3] = {a, b, c}, n = a * b * c;
    if (f16) {
        uint16_t *h = malloc(n * 2);
        vt_f32_to_f16_row(x, h, n);
        CHECK_RC(vt_npy_write(path, VT_DTYPE_F16, 3, dims, h));
        free(h);
    } else {
        CHECK_RC(vt_npy_write(path, VT_DTYPE_F32, 3, dims, x));
    }
}

/* One CLI run with --kv-format fmt_name against the oracle on a cache of the same format. */
static void cli_case(uint32_t fmt, const char *fmt_name, int causal, int f16_inputs) {
    uint32_t H = 4, Hkv = 2, D = 64;
    uint64_t nq = 1 + vt_rand_u64() % 40, nk = 1 + vt_rand_u64() % 90;
    float *q = rand_f32((uint64_t)H * nq * D, 1), *k = rand_f32((uint64_t)Hkv * nk * D, 1);
    float *v = rand_f32((uint64_t)Hkv * nk * D, 1);
    if (f16_inputs) /* the CLI sees f16: give the oracle the same rounded values */
        for (uint64_t i = 0; i < (uint64_t)H * nq * D; i++)
            q[i] = vt_f16_to_f32(vt_f32_to_f16(q[i]));
    if (f16_inputs)
        for (uint64_t i = 0; i < (uint64_t)Hkv * nk * D; i++) {
            k[i] = vt_f16_to_f32(vt_f32_to_f16(k[i]));
            v[i] = vt_f16_to_f32(vt_f32_to_f16(v[i]));
        }
    write_npy("q.npy", q, H, nq, D, f16_inputs);
    write_npy("k.npy", k, Hkv, nk, D, f16_inputs);
    write_npy("v.npy", v, Hkv, nk, D, f16_inputs);
    char args[8192], err[2048];
    snprintf(err, sizeof err, "%s/stderr.txt", dir);
    snprintf(
        args, sizeof args,
        "--q '%s/q.npy' --k '%s/k.npy' --v '%s/v.npy' %s%s %s --lse '%s/lse.npy' -o '%s/o.npy'",
        dir, dir, dir, fmt_name ? "--kv-format " : "", fmt_name ? fmt_name : "",
        causal ? "--causal" : "", dir, dir);
    int ec = run(args, err);
    CHECKF(ec == 0, "vtstore attn exited %d (kv %s)", ec, fmt_name ? fmt_name : "as given");
    if (ec) {
        free(q), free(k), free(v);
        return;
    }
    /* the oracle on the same stored K/V */
    vt_kv_cache_config cc = {
        .location = VT_LOC_HOST, .format = fmt, .n_kv_heads = Hkv, .head_dim = D, .capacity = nk};
    if (fmt == VT_FMT_NVFP4) {
        vt_quant_params qp;
        vt_quant_params_init(&qp);
        vt_quant_observe(fmt, &qp, k, (uint64_t)Hkv * nk * D);
        vt_quant_observe(fmt, &qp, v, (uint64_t)Hkv * nk * D);
        cc.tensor_scale = qp.tensor_scale;
    }
    vt_kv_cache *kv;
    CHECK_RC(vt_kv_cache_create(&cc, &kv));
    CHECK_RC(vt_kv_cache_append(kv, k, v, VT_DTYPE_F32, nk, NULL));
    vt_attn_params p;
    vt_attn_params_init(&p);
    float *oref = malloc((uint64_t)H * nq * D * 4), *lref = malloc((uint64_t)H * nq * 4);
    p.q = q;
    p.n_heads = H;
    p.n_q = nq;
    p.causal = causal;
    p.o = oref;
    p.lse = lref;
    p.algo = VT_ATTN_NAIVE_F64;
    vt_kv_cache_view(kv, &p.kv);
    CHECK_RC(vt_attn_forward(&p));
    char path[2048];
    vt_npy o = {0}, l = {0};
    snprintf(path, sizeof path, "%s/o.npy", dir);
    CHECK_RC(vt_npy_read(path, &o));
    snprintf(path, sizeof path, "%s/lse.npy", dir);
    CHECK_RC(vt_npy_read(path, &l));
    CHECK(o.ndim == 3 && o.dims[0] == H && o.dims[1] == nq && o.dims[2] == D &&
          o.dtype == VT_DTYPE_F32);
    CHECK(l.ndim == 2 && l.dims[0] == H && l.dims[1] == nq);
    if (o.data && o.numel == (uint64_t)H * nq * D) {
        double e = rel_err(o.data, VT_DTYPE_F32, oref, o.numel);
        CHECKF(e <= 2e-3, "CLI kv %s: rel err %.3g", fmt_name ? fmt_name : "plain", e);
        printf("  cli kv=%-6s %s Nq %llu Nk %llu: rel err %.2e\n", fmt_name ? fmt_name : "plain",
               causal ? "causal" : "full", (unsigned long long)nq, (unsigned long long)nk, e);
    }
    if (l.data && l.numel == (uint64_t)H * nq)
        for (uint64_t i = 0; i < l.numel; i++) {
            float a = ((float *)l.data)[i], b = lref[i];
            CHECKF((isinf(a) && isinf(b)) || fabsf(a - b) <= 2e-3f, "lse %llu: %g vs %g",
                   (unsigned long long)i, a, b);
        }
    vt_npy_free(&o), vt_npy_free(&l);
    vt_kv_cache_destroy(kv);
    free(q), free(k), free(v), free(oref), free(lref);
}

static int file_has(const char *path, const char *needle) {
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    char buf[8192];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    return strstr(buf, needle) != NULL;
}

int main(void) {
    if (!getenv("VT_BIN")) TEST_SKIP("VT_BIN is not set (run under ctest)");
    vt_test_seed();
    vt_test_tmpdir("attn_cli", dir, sizeof dir);
    cli_case(VT_FMT_F32, NULL, 0, 0);
    cli_case(VT_FMT_F16, NULL, 1, 1); /* f16 inputs without --kv-format: an f16 cache */
    cli_case(VT_FMT_Q8_0, "q8_0", 1, 0);
    cli_case(VT_FMT_NVFP4, "nvfp4", 0, 0);
    cli_case(VT_FMT_NF4, "nf4", 1, 1);

    char err[2048], args[8192];
    snprintf(err, sizeof err, "%s/stderr.txt", dir);
    CHECK(run("--help", err) == 0);
    CHECK(run("--q x.npy", err) == 2);
    CHECK(file_has(err, "required"));
    snprintf(args, sizeof args,
             "--q '%s/q.npy' --k '%s/k.npy' --v '%s/v.npy' -o '%s/o.npy' --kv-format q4_k", dir,
             dir, dir, dir);
    CHECK(run(args, err) == 2);
    CHECK(file_has(err, "q4_k"));
    /* K with another head dim than Q: error naming the files */
    float *x = rand_f32(2 * 3 * 32, 1);
    write_npy("k32.npy", x, 2, 3, 32, 0);
    snprintf(args, sizeof args, "--q '%s/q.npy' --k '%s/k32.npy' --v '%s/k32.npy' -o '%s/o2.npy'",
             dir, dir, dir, dir);
    CHECK(run(args, err) == 1);
    CHECK(file_has(err, "k32.npy"));
    snprintf(args, sizeof args, "--q '%s/missing.npy' --k '%s/k.npy' --v '%s/v.npy' -o '%s/o2.npy'",
             dir, dir, dir, dir);
    CHECK(run(args, err) == 1);
    CHECK(file_has(err, "missing.npy"));
    free(x);
    return vt_test_done("test_attn_cli");
}
