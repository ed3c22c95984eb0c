/* `vtstore import` flags map onto vt_import_options as documented: for each flag combination the
 * CLI's store equals a store imported through the library with the equivalent options (same
 * format per tensor, same tensor scale, bit-identical dequantized rows, same SQNR), on fresh
 * random tensors. Bad values (non-numbers, out of range, --target-sqnr without auto, --sparsity
 * other than 2:4 or without a quantized format) exit 2 before the store is created; a --bits
 * budget nothing fits exits 1 and leaves an existing store as it was. */
#include <math.h>
#include <sys/stat.h>

#include "cli_util.h"
#include "gen.h"
#include "vt_test.h"
#include "vtstore/import.h"

enum { NT = 4 };
static const char *names[NT] = {"model.layers.0.mlp.up_proj.weight",
                                "model.layers.1.self_attn.q_proj.weight",
                                "model.layers.1.mlp.down_proj.weight", "model.norm.weight"};

static void write_model(void) {
    static const uint64_t shape[NT][2] = {{64, 256}, {48, 320}, {40, 192}, {1, 256}};
    gen_st_tensor t[NT];
    float *data[NT];
    for (int i = 0; i < NT; i++) {
        uint64_t n = shape[i][0] * shape[i][1];
        data[i] = malloc(n * sizeof(float));
        for (uint64_t k = 0; k < n; k++) {
            float v = vt_rand_normal();
            if (i == 1) v *= expf(1.2f * vt_rand_normal()); /* heavy-tailed */
            data[i][k] = i == 3 ? 1 + 0.1f * v : v;
        }
        t[i] = (gen_st_tensor){names[i], "F32", i == 3 ? 1 : 2, {0}, data[i], n * 4, 0, 0, 0};
        if (i == 3)
            t[i].dims[0] = shape[i][1];
        else
            t[i].dims[0] = shape[i][0], t[i].dims[1] = shape[i][1];
    }
    gbuf b = {0};
    gen_safetensors(&b, t, NT, NULL);
    char p[4300];
    snprintf(p, sizeof p, "%s/m.safetensors", dir);
    CHECK(gb_write_file(&b, p) == 0);
    gb_free(&b);
    for (int i = 0; i < NT; i++) free(data[i]);
}

static vt_store *open_store(const char *name, int create) {
    char p[4300];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    vt_store *s = NULL;
    int rc = vt_store_open(p, create ? VT_STORE_RDWR | VT_STORE_CREATE : VT_STORE_RDONLY, NULL, &s);
    CHECKF(rc == 0, "open %s: %s", p, vt_last_error());
    return rc ? NULL : s;
}

static int exists(const char *name) {
    char p[4300];
    struct stat st;
    snprintf(p, sizeof p, "%s/%s", dir, name);
    return stat(p, &st) == 0;
}

/* Every tensor of the two stores: same format, tensor scale, metrics and dequantized rows. */
static void compare(const char *what, const char *cli_store, const char *lib_store) {
    vt_store *a = open_store(cli_store, 0), *b = open_store(lib_store, 0);
    for (int i = 0; a && b && i < NT; i++) {
        vt_tensor_info ta, tb;
        int ra = vt_store_stat(a, names[i], &ta), rb = vt_store_stat(b, names[i], &tb);
        CHECKF(ra == 0 && rb == 0, "%s: stat %s: %d %d", what, names[i], ra, rb);
        if (ra || rb) continue;
        char fa[32], fb[32];
        CHECKF(ta.format == tb.format, "%s: %s stored as %s by the CLI, %s by the library", what,
               names[i], vt_format_name(ta.format, fa, sizeof fa),
               vt_format_name(tb.format, fb, sizeof fb));
        CHECKF(ta.raw_bytes == tb.raw_bytes && ta.stored_bytes == tb.stored_bytes,
               "%s: %s stored bytes %llu/%llu by the CLI, %llu/%llu by the library", what, names[i],
               (unsigned long long)ta.stored_bytes, (unsigned long long)ta.raw_bytes,
               (unsigned long long)tb.stored_bytes, (unsigned long long)tb.raw_bytes);
        CHECKF(ta.tensor_scale == tb.tensor_scale, "%s: %s tensor scale %g vs %g", what, names[i],
               (double)ta.tensor_scale, (double)tb.tensor_scale);
        CHECKF(ta.metrics.sqnr_db == tb.metrics.sqnr_db ||
                   (isinf(ta.metrics.sqnr_db) && isinf(tb.metrics.sqnr_db)),
               "%s: %s sqnr %.4f vs %.4f", what, names[i], ta.metrics.sqnr_db, tb.metrics.sqnr_db);
        size_t n = (size_t)(ta.rows * ta.cols);
        float *ya = malloc(n * 4 + 1), *yb = malloc(n * 4 + 1);
        CHECK_RC(vt_store_read_rows(a, names[i], 0, ta.rows, VT_DTYPE_F32, ya, n * 4));
        CHECK_RC(vt_store_read_rows(b, names[i], 0, tb.rows, VT_DTYPE_F32, yb, n * 4));
        CHECKF(!memcmp(ya, yb, n * 4), "%s: %s rows differ between CLI and library imports", what,
               names[i]);
        free(ya);
        free(yb);
    }
    if (a) vt_store_close(a);
    if (b) vt_store_close(b);
}

typedef struct flags_case {
    const char *args;
    uint32_t format;
    double sqnr, bits;
    int zstd, threads;
    const char *rule_glob[2];
    uint32_t rule_fmt[2];
    uint32_t sparse_expect; /* format bits every 2-D tensor must have (VT_FMT_SPARSE24 or 0) */
} flags_case;

static void run_case(int k, const flags_case *c) {
    char cli[64], lib[64], cmd[1024];
    snprintf(cli, sizeof cli, "cli%d.vts", k);
    snprintf(lib, sizeof lib, "lib%d.vts", k);
    snprintf(cmd, sizeof cmd, "import m.safetensors %s -q %s", cli, c->args);
    int rc = vt(cmd);
    CHECKF(rc == 0, "vtstore %s: exit %d: %s", cmd, rc, slurp("err.txt"));
    vt_store_options so;
    memset(&so, 0, sizeof so);
    so.zstd_level = c->zstd;
    char p[4300];
    snprintf(p, sizeof p, "%s/%s", dir, lib);
    vt_store *s = NULL;
    CHECK_RC(vt_store_open(p, VT_STORE_RDWR | VT_STORE_CREATE, &so, &s));
    vt_import_options o;
    vt_import_options_init(&o);
    o.format = c->format;
    o.target_sqnr_db = c->sqnr;
    o.max_bits = c->bits;
    o.nthreads = c->threads;
    vt_import_rule r[2];
    for (int i = 0; i < 2 && c->rule_glob[i]; i++) {
        r[i].glob = c->rule_glob[i];
        r[i].format = c->rule_fmt[i];
        o.n_rules = (uint32_t)i + 1;
    }
    o.rules = r;
    snprintf(p, sizeof p, "%s/m.safetensors", dir);
    if (s) {
        CHECKF(vt_import_file(s, p, &o, NULL) == 0, "library import for '%s': %s", c->args,
               vt_last_error());
        vt_store_close(s);
    }
    if (rc == 0) compare(c->args, cli, lib);
    if (c->sparse_expect && rc == 0) {
        vt_store *t = open_store(cli, 0);
        for (int i = 0; t && i < NT - 1; i++) {
            vt_tensor_info ti;
            CHECK_RC(vt_store_stat(t, names[i], &ti));
            CHECKF(ti.format & VT_FMT_SPARSE24, "%s: %s not 2:4 sparse", c->args, names[i]);
        }
        if (t) vt_store_close(t);
    }
}

int main(void) {
    vt_test_seed();
    bin = getenv("VT_BIN");
    if (!bin || access(bin, X_OK)) TEST_SKIP("VT_BIN not set or not executable");
    vt_test_tmpdir("test_cli_import_flags", dir, sizeof dir);
    write_model();

    const uint32_t A = VT_IMPORT_AUTO, K = VT_IMPORT_KEEP;
    const flags_case cases[] = {
        {"--format auto --target-sqnr 30", A, 30, 0, 0, 0, {0}, {0}, 0},
        {"--format auto --target-sqnr 12.5", A, 12.5, 0, 0, 0, {0}, {0}, 0},
        {"--format auto --bits 4.5", A, 0, 4.5, 0, 0, {0}, {0}, 0},
        {"--format auto --bits 9 --target-sqnr 30", A, 30, 9, 0, 0, {0}, {0}, 0},
        {"--format auto", A, 0, 0, 0, 0, {0}, {0}, 0},
        {"--format nf4 --sparsity 2:4",
         VT_FMT_NF4 | VT_FMT_SPARSE24,
         0,
         0,
         0,
         0,
         {0},
         {0},
         VT_FMT_SPARSE24},
        {"--sparsity 2:4 --format q8_0",
         VT_FMT_Q8_0 | VT_FMT_SPARSE24,
         0,
         0,
         0,
         0,
         {0},
         {0},
         VT_FMT_SPARSE24},
        {"--format nvfp4 --threads 1", VT_FMT_NVFP4, 0, 0, 0, 1, {0}, {0}, 0},
        {"--format nf4_dq --zstd 3 --threads 2", VT_FMT_NF4_DQ, 0, 0, 3, 2, {0}, {0}, 0},
        {"--format q4_0 --rule '*up_proj*=auto' --target-sqnr 25",
         VT_FMT_Q4_0,
         25,
         0,
         0,
         0,
         {"*up_proj*", NULL},
         {A, 0},
         0},
        {"--format mxfp4 --rule '*.1.*=q8_0' --rule '*=int8'",
         VT_FMT_MXFP4,
         0,
         0,
         0,
         0,
         {"*.1.*", "*"},
         {VT_FMT_Q8_0, VT_FMT_INT8},
         0},
        {"--rule '*down_proj*=q4_1'", K, 0, 0, 0, 0, {"*down_proj*", NULL}, {VT_FMT_Q4_1, 0}, 0},
    };
    int nc = (int)(sizeof cases / sizeof cases[0]);
    for (int k = 0; k < nc; k++) run_case(k, &cases[k]);

    /* --target-sqnr is passed exactly: a target 0.01 dB under the SQNR that the format chosen for
     * 12.5 dB reaches on the first tensor still picks that format (a target off by a fraction of
     * a dB would not) */
    vt_store *s = open_store("lib1.vts", 0);
    vt_tensor_info t0;
    memset(&t0, 0, sizeof t0);
    if (s) {
        CHECK_RC(vt_store_stat(s, names[0], &t0));
        vt_store_close(s);
    }
    char args[256];
    snprintf(args, sizeof args, "--format auto --target-sqnr %.4f", t0.metrics.sqnr_db - 0.01);
    flags_case edge = {args, A, t0.metrics.sqnr_db - 0.01, 0, 0, 0, {0}, {0}, 0};
    run_case(nc, &edge);
    char edge_store[64];
    snprintf(edge_store, sizeof edge_store, "cli%d.vts", nc);
    s = open_store(edge_store, 0);
    if (s) {
        vt_tensor_info ti;
        CHECK_RC(vt_store_stat(s, names[0], &ti));
        CHECKF(ti.format == t0.format, "%s: %s picked %#x, the 12.5 dB choice was %#x", args,
               names[0], ti.format, t0.format);
        vt_store_close(s);
    }

    /* --zstd reaches the store: the norm (f32 values near 1, a compressible exponent byte) is
     * stored compressed */
    s = open_store("cli8.vts", 0);
    if (s) {
        vt_tensor_info ti;
        CHECK_RC(vt_store_stat(s, names[3], &ti));
        CHECKF(ti.stored_bytes < ti.raw_bytes, "--zstd 3: %s stored %llu of %llu bytes", names[3],
               (unsigned long long)ti.stored_bytes, (unsigned long long)ti.raw_bytes);
        vt_store_close(s);
    }

    /* bad values: exit 2, a message naming the flag, no store created */
    static const char *bad[][2] = {
        {"--format auto --target-sqnr abc", "--target-sqnr"},
        {"--format auto --target-sqnr 0", "--target-sqnr"},
        {"--format auto --target-sqnr 30dB", "--target-sqnr"},
        {"--format auto --bits -1", "--bits"},
        {"--format auto --bits 40", "--bits"},
        {"--format nf4 --zstd 99", "--zstd"},
        {"--format nf4 --zstd -1", "--zstd"},
        {"--format nf4 --zstd x", "--zstd"},
        {"--format nf4 --threads 1.5", "--threads"},
        {"--format nf4 --threads -2", "--threads"},
        {"--format nf4 --sparsity 1:2", "--sparsity"},
        {"--format nf4 --target-sqnr 30", "--format auto"},
        {"--bits 4", "--format auto"},
        {"--sparsity 2:4", "--sparsity 2:4"},
        {"--format auto --sparsity 2:4", "--sparsity 2:4"},
        {"--format nf4 --rule nonsense", "usage:"},
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        char cmd[512];
        snprintf(cmd, sizeof cmd, "import m.safetensors bad.vts -q %s", bad[k][0]);
        int rc = vt(cmd);
        CHECKF(rc == 2, "'%s': exit %d, want 2 (%s)", bad[k][0], rc, slurp("err.txt"));
        CHECKF(strstr(slurp("err.txt"), bad[k][1]), "'%s': stderr does not mention '%s': %s",
               bad[k][0], bad[k][1], slurp("err.txt"));
        CHECKF(!exists("bad.vts"), "'%s' created the store", bad[k][0]);
    }

    /* a budget nothing fits: exit 1, an existing store unchanged */
    CHECK(vt("import m.safetensors cli0.vts -q --format auto --bits 3") == 1);
    CHECKF(strstr(slurp("err.txt"), "store unchanged"), "%s", slurp("err.txt"));
    compare("after a refused --bits 3 import", "cli0.vts", "lib0.vts");
    if (!vt_test_failures) {
        char cmd[4400];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
        if (system(cmd)) fprintf(stderr, "cannot remove %s\n", dir);
    }
    return vt_test_done("test_cli_import_flags");
}
