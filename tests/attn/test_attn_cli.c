/* `vtstore attn` end to end: random Q/K/V written as .npy, the CLI run on them ($VT_BIN), its
 * O and LSE read back and compared with the f64 oracle computed here on the same K/V format;
 * usage and shape errors give exit codes 2 and 1 with a message naming the file. Values that
 * would silently change the result are refused: a --scale that is no normal f32 (1e-50 rounded
 * to 0, which means the default), f64 inputs beyond the f32 range (1e300 became inf) and a Q
 * that is not finite (an infinite Q gave a zero output), naming the file and flat index. */
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

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

/* Q [2, 3, 32] and K/V [1, 4, 32] as f64 (f16 == 2: Q as f16, f16 == 1: Q as f32) with @p bad
 * put at flat index @p at of the array @p which ('q', 'k' or 0 for none). */
static void write_small(char which, uint64_t at, double bad, int qtype) {
    enum { NQ = 2 * 3 * 32, NK = 1 * 4 * 32 };
    double q[NQ], k[NK], v[NK];
    for (int i = 0; i < NQ; i++) q[i] = vt_rand_normal();
    for (int i = 0; i < NK; i++) k[i] = vt_rand_normal(), v[i] = vt_rand_normal();
    if (which == 'q') q[at] = bad;
    if (which == 'k') k[at] = bad;
    uint64_t dq[3] = {2, 3, 32}, dk[3] = {1, 4, 32};
    char path[2048];
    snprintf(path, sizeof path, "%s/sq.npy", dir);
    if (qtype) {
        float f[NQ];
        uint16_t h[NQ];
        for (int i = 0; i < NQ; i++) f[i] = (float)q[i];
        vt_f32_to_f16_row(f, h, NQ);
        CHECK_RC(vt_npy_write(path, qtype == 2 ? VT_DTYPE_F16 : VT_DTYPE_F32, 3, dq,
                              qtype == 2 ? (void *)h : (void *)f));
    } else {
        CHECK_RC(vt_npy_write(path, VT_DTYPE_F64, 3, dq, q));
    }
    snprintf(path, sizeof path, "%s/sk.npy", dir);
    CHECK_RC(vt_npy_write(path, VT_DTYPE_F64, 3, dk, k));
    snprintf(path, sizeof path, "%s/sv.npy", dir);
    CHECK_RC(vt_npy_write(path, VT_DTYPE_F64, 3, dk, v));
}

/* vtstore attn on sq/sk/sv.npy with @p extra options: exit code; stderr in dir/stderr.txt */
static int run_small(const char *extra) {
    char args[8192], err[2048];
    snprintf(err, sizeof err, "%s/stderr.txt", dir);
    snprintf(args, sizeof args, "--q '%s/sq.npy' --k '%s/sk.npy' --v '%s/sv.npy' -o '%s/so.npy' %s",
             dir, dir, dir, dir, extra);
    return run(args, err);
}

static void bad_values(void) {
    char err[2048];
    snprintf(err, sizeof err, "%s/stderr.txt", dir);
    write_small(0, 0, 0, 0);
    CHECKF(run_small("") == 0, "f64 inputs in range"); /* converted to f32 */
    CHECK(run_small("--scale 0") == 0);                /* 0: the default 1/sqrt(D) */
    CHECK(run_small("--scale 1.5e-38") == 0);          /* just above FLT_MIN */
    CHECK(run_small("--scale 3e38") == 0);
    /* rounds to 0 (the default), to a subnormal, to infinity */
    static const char *const scales[] = {"1e-50", "1e-40", "1e39", "3.5e38"};
    for (size_t i = 0; i < sizeof scales / sizeof scales[0]; i++) {
        char o[64];
        snprintf(o, sizeof o, "--scale %s", scales[i]);
        int rc = run_small(o);
        CHECKF(rc == 2 && file_has(err, "--scale") && file_has(err, scales[i]),
               "--scale %s: exit %d", scales[i], rc);
    }
    /* f64 beyond f32 in Q and in K: the file and the flat index are named */
    write_small('q', 37, 1e300, 0);
    CHECKF(run_small("") == 1 && file_has(err, "sq.npy") && file_has(err, "element 37 "),
           "Q f64 1e300");
    write_small('k', 5, -1e39, 0);
    CHECKF(run_small("") == 1 && file_has(err, "sk.npy") && file_has(err, "element 5 "),
           "K f64 -1e39");
    /* a K value the cache format cannot hold: an f32 or q8_0 cache takes 1e5, an f16 one
     * refuses it (it stored Inf), naming the file, head, token and column */
    write_small('k', 5, 1e5, 0);
    CHECK(run_small("") == 0);
    CHECK(run_small("--kv-format q8_0") == 0);
    {
        int rc = run_small("--kv-format f16");
        CHECKF(rc == 1 && file_has(err, "sk.npy") && file_has(err, "out of the format's range") &&
                   file_has(err, "value 100000"),
               "K 1e5 into f16: exit %d", rc);
    }
    /* Q not finite, in f64, f32 and f16 */
    static const struct {
        double x;
        int qtype;
    } nf[] = {{INFINITY, 0}, {NAN, 0}, {-INFINITY, 1}, {NAN, 1}, {INFINITY, 2}, {NAN, 2}};
    for (size_t i = 0; i < sizeof nf / sizeof nf[0]; i++) {
        write_small('q', 100 + i, nf[i].x, nf[i].qtype);
        char want[32];
        snprintf(want, sizeof want, "element %zu ", 100 + i);
        int rc = run_small("");
        CHECKF(rc == 1 && file_has(err, "sq.npy") && file_has(err, want) &&
                   file_has(err, "not finite"),
               "Q %g (type %d) at %zu: exit %d", nf[i].x, nf[i].qtype, 100 + i, rc);
    }
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
    /* the output is written through a temporary of this process's own: a "OUT.tmp" symlink
     * (or another writer's temporary) used to be followed and truncated */
    char victim[2048], link_[2100], outp[2048];
    snprintf(victim, sizeof victim, "%s/victim.txt", dir);
    snprintf(outp, sizeof outp, "%s/o3.npy", dir);
    snprintf(link_, sizeof link_, "%s.tmp", outp);
    FILE *vf = fopen(victim, "w");
    CHECK(vf && fputs("keep", vf) >= 0);
    if (vf) fclose(vf);
    CHECK(symlink(victim, link_) == 0);
    float one[4] = {1, 2, 3, 4};
    write_npy("o3.npy", one, 1, 1, 4, 0);
    CHECK(file_has(victim, "keep"));
    struct stat sb;
    CHECK(lstat(outp, &sb) == 0 && S_ISREG(sb.st_mode) && sb.st_size % 64 == 16);
    bad_values();
    return vt_test_done("test_attn_cli");
}
