/* Import modes through the public API: format AUTO with a target SQNR and with a bits budget
 * (vt_quant_choose), the nvfp4 tensor-scale pass over the whole tensor, 2:4 sparsity, rule
 * precedence (first match wins, before the norm/bias default), and the progress callback
 * (monotonic bytes ending at the total, never concurrent, cancellation). Fresh random data each
 * run: N(0,1) tensors plus a heavy-tailed one (normal times a log-normal scale). */
#include <errno.h>
#include <math.h>
#include <stdatomic.h>

#include "gen.h"
#include "vt_test.h"
#include "vtstore/import.h"

static char dir[4096];

static void pathf(char *out, const char *name) {
    snprintf(out, 4300, "%s/%s", dir, name);
}

static vt_store *open_store(const char *name, uint64_t chunk_bytes) {
    char p[4300];
    pathf(p, name);
    vt_store_options so;
    memset(&so, 0, sizeof so);
    so.chunk_target_bytes = chunk_bytes;
    vt_store *s = NULL;
    int rc = vt_store_open(p, VT_STORE_RDWR | VT_STORE_CREATE, &so, &s);
    CHECKF(rc == 0, "open %s: %s", p, vt_last_error());
    return s;
}

/* A source tensor: f32 values (the reference) and the bytes written to the file. */
typedef struct src_t {
    const char *name;
    const char *dtype; /* "F32", "F16", "I32" */
    uint32_t ndim;
    uint64_t dims[2];
    uint64_t rows, cols;
    float *f;    /* [rows * cols] values as the importer sees them */
    void *bytes; /* file bytes */
    uint64_t nbytes;
} src_t;

enum { GEN_NORMAL, GEN_HEAVY, GEN_INT };

static void src_make(src_t *t, const char *name, const char *dtype, uint64_t rows, uint64_t cols,
                     int one_d, int kind) {
    memset(t, 0, sizeof *t);
    t->name = name;
    t->dtype = dtype;
    t->rows = rows;
    t->cols = cols;
    t->ndim = one_d ? 1 : 2;
    if (one_d)
        t->dims[0] = cols;
    else
        t->dims[0] = rows, t->dims[1] = cols;
    uint64_t n = rows * cols;
    t->f = malloc(n * sizeof(float));
    for (uint64_t i = 0; i < n; i++) {
        float v = vt_rand_normal();
        if (kind == GEN_HEAVY) v *= expf(1.2f * vt_rand_normal());
        if (kind == GEN_INT) v = (float)(int)(v * 1000);
        t->f[i] = v;
    }
    if (!strcmp(dtype, "F16")) {
        uint16_t *h = malloc(n * 2);
        for (uint64_t i = 0; i < n; i++) h[i] = vt_f32_to_f16(t->f[i]);
        vt_convert_to_f32(VT_DTYPE_F16, h, t->f, (size_t)n); /* what the importer reads */
        t->bytes = h;
        t->nbytes = n * 2;
    } else if (!strcmp(dtype, "I32")) {
        int32_t *v = malloc(n * 4);
        for (uint64_t i = 0; i < n; i++) v[i] = (int32_t)t->f[i];
        t->bytes = v;
        t->nbytes = n * 4;
    } else {
        t->bytes = malloc(n * 4);
        memcpy(t->bytes, t->f, n * 4);
        t->nbytes = n * 4;
    }
}

static void src_free(src_t *t, int n) {
    for (int i = 0; i < n; i++) {
        free(t[i].f);
        free(t[i].bytes);
    }
}

static void write_st(const char *file, const src_t *t, int n) {
    gen_st_tensor g[16];
    for (int i = 0; i < n; i++) {
        memset(&g[i], 0, sizeof g[i]);
        g[i].name = t[i].name;
        g[i].dtype = t[i].dtype;
        g[i].ndim = t[i].ndim;
        g[i].dims[0] = t[i].dims[0];
        g[i].dims[1] = t[i].dims[1];
        g[i].data = t[i].bytes;
        g[i].nbytes = t[i].nbytes;
    }
    gbuf b = {0};
    gen_safetensors(&b, g, n, NULL);
    char p[4300];
    pathf(p, file);
    CHECK(gb_write_file(&b, p) == 0);
    gb_free(&b);
}

static int import(vt_store *s, const char *file, const vt_import_options *o,
                  vt_import_summary *sum) {
    char p[4300];
    pathf(p, file);
    return vt_import_file(s, p, o, sum);
}

/* Dequantized rows of @p name (malloc'ed), and its record in *ti; NULL on error. */
static float *read_all(vt_store *s, const char *name, vt_tensor_info *ti) {
    int rc = vt_store_stat(s, name, ti);
    CHECKF(rc == 0, "stat %s: %s", name, vt_last_error());
    if (rc) return NULL;
    size_t n = (size_t)(ti->rows * ti->cols);
    float *y = malloc(n * sizeof(float) + 1);
    rc = vt_store_read_rows(s, name, 0, ti->rows, VT_DTYPE_F32, y, n * sizeof(float));
    CHECKF(rc == 0, "read %s: %s", name, vt_store_errmsg(s));
    if (rc) {
        free(y);
        return NULL;
    }
    return y;
}

/* The recorded metrics equal vt_metrics_compute of the stored rows against the source. */
static void check_metrics(const vt_tensor_info *ti, const src_t *t, const float *y) {
    vt_metrics m;
    CHECK_RC(vt_metrics_compute(t->f, y, t->rows * t->cols, &m));
    CHECKF(isfinite(ti->metrics.sqnr_db) && fabs(ti->metrics.sqnr_db - m.sqnr_db) < 0.01,
           "%s: recorded sqnr %.4f dB, measured %.4f dB", t->name, ti->metrics.sqnr_db, m.sqnr_db);
    CHECKF(fabs(ti->metrics.cosine - m.cosine) < 1e-5, "%s: recorded cosine %.7f, measured %.7f",
           t->name, ti->metrics.cosine, m.cosine);
    CHECKF(fabs(ti->metrics.max_err - m.max_err) <= 1e-6 * (1 + m.max_err),
           "%s: recorded max_err %g, measured %g", t->name, ti->metrics.max_err, m.max_err);
}

/* Stored rows are bit-identical to quantizing the source with @p fmt and params from observing
 * the whole source tensor. */
static void check_equals_quantizer(const vt_tensor_info *ti, const src_t *t, const float *y,
                                   uint32_t fmt) {
    vt_quant_params qp;
    vt_quant_params_init(&qp);
    CHECK_RC(vt_quant_observe(fmt, &qp, t->f, t->rows * t->cols));
    uint64_t nb = vt_quant_bytes(fmt, t->rows, t->cols);
    void *q = malloc(nb + 1);
    float *want = malloc(t->rows * t->cols * sizeof(float) + 1);
    CHECK_RC(vt_quantize(fmt, &qp, t->f, t->rows, t->cols, q, 1));
    CHECK_RC(vt_dequantize(fmt, &qp, q, t->rows, t->cols, want, 1));
    CHECKF(!memcmp(want, y, t->rows * t->cols * sizeof(float)),
           "%s: stored rows differ from the quantizer's", t->name);
    CHECKF(ti->tensor_scale == qp.tensor_scale, "%s: tensor_scale %.9g, want %.9g", t->name,
           (double)ti->tensor_scale, (double)qp.tensor_scale);
    free(q);
    free(want);
}

static const char *fname(uint32_t fmt) {
    static char b[4][32];
    static int k;
    k = (k + 1) % 4;
    if (fmt == VT_STORE_FMT_RAW) return "raw";
    return vt_format_name(fmt, b[k], sizeof b[k]);
}

/* What vt_quant_choose picks for the whole tensor (the import samples up to 256 rows: all rows
 * of these tensors). */
static uint32_t oracle(const src_t *t, double sqnr, double bits) {
    vt_choose_target ct;
    memset(&ct, 0, sizeof ct);
    ct.min_sqnr_db = sqnr;
    ct.max_bits = bits;
    uint32_t f = 0xffff;
    vt_metrics m;
    CHECK_RC(vt_quant_choose(t->f, t->rows, t->cols, &ct, &f, &m));
    return f;
}

/* ---- AUTO ---------------------------------------------------------------------------------- */

#define NA 4
static void make_auto_src(src_t *t) {
    src_make(&t[0], "l0.mlp.up_proj.weight", "F32", 128, 256, 0, GEN_NORMAL);
    src_make(&t[1], "l0.mlp.down_proj.weight", "F32", 96, 320, 0, GEN_HEAVY);
    src_make(&t[2], "l0.attn.q_proj.weight", "F16", 64, 192, 0, GEN_NORMAL);
    src_make(&t[3], "l0.attn.o_proj.weight", "F16", 80, 256, 0, GEN_HEAVY);
    write_st("auto.safetensors", t, NA);
}

static void test_auto_sqnr(void) {
    src_t t[NA];
    make_auto_src(t);
    static const double targets[2] = {30.0, 12.0};
    for (int k = 0; k < 2; k++) {
        double target = targets[k];
        char sn[64];
        snprintf(sn, sizeof sn, "auto_sqnr%d.vts", k);
        vt_store *s = open_store(sn, 0);
        if (!s) continue;
        vt_import_options o;
        vt_import_options_init(&o);
        o.format = VT_IMPORT_AUTO;
        o.target_sqnr_db = target;
        vt_import_summary sum;
        int rc = import(s, "auto.safetensors", &o, &sum);
        CHECKF(rc == 0, "auto --target-sqnr %g: %s", target, vt_last_error());
        CHECK(rc || (sum.tensors == NA && sum.quantized == NA));
        for (int i = 0; i < NA && !rc; i++) {
            vt_tensor_info ti;
            float *y = read_all(s, t[i].name, &ti);
            if (!y) continue;
            const vt_format_info *fi = vt_format_get(ti.format);
            double bpw = vt_format_bpw(ti.format, t[i].cols);
            printf("  target %4.1f dB  %-26s -> %-7s %.3f bpw  sqnr %.2f dB\n", target, t[i].name,
                   fname(ti.format), bpw, ti.metrics.sqnr_db);
            CHECKF(fi && !(ti.format & VT_FMT_SPARSE24), "%s: format %#x", t[i].name, ti.format);
            if (target > 20) /* 4-bit formats reach ~20 dB on N(0,1): an 8-bit one is needed */
                CHECKF(ti.format == VT_FMT_Q8_0 || ti.format == VT_FMT_INT8,
                       "%s: target %g dB picked %s, want an 8-bit format", t[i].name, target,
                       fname(ti.format));
            else
                CHECKF(bpw >= 4.0 && bpw <= 4.5 + 1e-9,
                       "%s: target %g dB picked %s (%.3f bpw), want a 4-bit format", t[i].name,
                       target, fname(ti.format), bpw);
            uint32_t want = oracle(&t[i], target, 0);
            CHECKF(ti.format == want, "%s: import chose %s, vt_quant_choose %s", t[i].name,
                   fname(ti.format), fname(want));
            CHECKF(ti.metrics.sqnr_db >= target, "%s: sqnr %.3f dB below the target %g", t[i].name,
                   ti.metrics.sqnr_db, target);
            check_metrics(&ti, &t[i], y);
            check_equals_quantizer(&ti, &t[i], y, ti.format);
            free(y);
        }
        vt_store_close(s);
    }
    src_free(t, NA);
}

static void test_auto_bits(void) {
    src_t t[NA];
    make_auto_src(t);
    vt_store *s = open_store("auto_bits.vts", 0);
    if (!s) {
        src_free(t, NA);
        return;
    }
    vt_import_options o;
    vt_import_options_init(&o);
    o.format = VT_IMPORT_AUTO;
    o.max_bits = 4.5;
    int rc = import(s, "auto.safetensors", &o, NULL);
    CHECKF(rc == 0, "auto --bits 4.5: %s", vt_last_error());
    for (int i = 0; i < NA && !rc; i++) {
        vt_tensor_info ti;
        float *y = read_all(s, t[i].name, &ti);
        if (!y) continue;
        double bpw = vt_format_bpw(ti.format, t[i].cols);
        printf("  bits 4.5          %-26s -> %-7s %.3f bpw  sqnr %.2f dB\n", t[i].name,
               fname(ti.format), bpw, ti.metrics.sqnr_db);
        CHECKF(bpw <= 4.5 + 1e-9, "%s: --bits 4.5 picked %s (%.3f bpw)", t[i].name,
               fname(ti.format), bpw);
        uint32_t want = oracle(&t[i], 0, 4.5);
        CHECKF(ti.format == want, "%s: import chose %s, vt_quant_choose %s", t[i].name,
               fname(ti.format), fname(want));
        check_metrics(&ti, &t[i], y);
        check_equals_quantizer(&ti, &t[i], y, ti.format);
        free(y);
    }

    /* both: the cheapest within 9 bits reaching 30 dB is an 8-bit format; 60 dB is out of
     * reach within 9 bits, so the best SQNR within the budget */
    o.max_bits = 9;
    o.target_sqnr_db = 30;
    vt_store *s2 = open_store("auto_both.vts", 0);
    rc = s2 ? import(s2, "auto.safetensors", &o, NULL) : -1;
    CHECKF(rc == 0, "auto --bits 9 --target-sqnr 30: %s", vt_last_error());
    for (int i = 0; i < NA && !rc; i++) {
        vt_tensor_info ti;
        CHECK_RC(vt_store_stat(s2, t[i].name, &ti));
        CHECKF(ti.format == VT_FMT_Q8_0 || ti.format == VT_FMT_INT8, "%s: picked %s", t[i].name,
               fname(ti.format));
        CHECK(ti.format == oracle(&t[i], 30, 9));
        CHECK(ti.metrics.sqnr_db >= 30);
    }
    vt_store_close(s2);

    /* a budget no candidate fits: VT_EBUDGET, the store unchanged */
    o.max_bits = 3.0;
    o.target_sqnr_db = 0;
    rc = import(s, "auto.safetensors", &o, NULL);
    CHECKF(rc == VT_EBUDGET, "--bits 3: rc %d (%s)", rc, vt_last_error());
    vt_tensor_info ti;
    CHECK_RC(vt_store_stat(s, t[0].name, &ti));
    CHECK(vt_format_bpw(ti.format, t[0].cols) <= 4.5);
    vt_store_close(s);
    src_free(t, NA);
}

/* ---- nvfp4 tensor scale -------------------------------------------------------------------- */

static void test_nvfp4(void) {
    /* 1100 rows of 1024: the importer observes 1024 rows at a time, so row 1090 is in its second
     * read, and not among the 256 rows an AUTO/awq sample takes (i * 1100 / 256). */
    src_t t[2];
    src_make(&t[0], "big.weight", "F32", 1100, 1024, 0, GEN_HEAVY);
    src_make(&t[1], "small.weight", "F16", 40, 200, 0, GEN_NORMAL); /* cols % 16 != 0 */
    float amax = 0;
    for (uint64_t i = 0; i < 1100 * 1024; i++) amax = fmaxf(amax, fabsf(t[0].f[i]));
    t[0].f[1090 * 1024 + 77] = ((float *)t[0].bytes)[1090 * 1024 + 77] = -3.0f * amax;
    amax *= 3.0f;
    write_st("nv.safetensors", t, 2);
    vt_store *s = open_store("nv.vts", 0);
    if (!s) {
        src_free(t, 2);
        return;
    }
    vt_import_options o;
    vt_import_options_init(&o);
    o.format = VT_FMT_NVFP4;
    int rc = import(s, "nv.safetensors", &o, NULL);
    CHECKF(rc == 0, "nvfp4: %s", vt_last_error());
    for (int i = 0; i < 2 && !rc; i++) {
        vt_tensor_info ti;
        float *y = read_all(s, t[i].name, &ti);
        if (!y) continue;
        float a = 0;
        for (uint64_t k = 0; k < t[i].rows * t[i].cols; k++) a = fmaxf(a, fabsf(t[i].f[k]));
        if (i == 0) CHECK(a == amax);
        float want = a / (6.0f * 448.0f);
        CHECKF(ti.format == VT_FMT_NVFP4, "%s: %s", t[i].name, fname(ti.format));
        CHECKF(ti.tensor_scale == want, "%s: tensor_scale %.9g, want amax/(6*448) = %.9g",
               t[i].name, (double)ti.tensor_scale, (double)want);
        check_metrics(&ti, &t[i], y);
        check_equals_quantizer(&ti, &t[i], y, VT_FMT_NVFP4);
        /* the outlier maps to the largest code: 6 * 448 * tensor_scale */
        if (i == 0)
            CHECKF(fabsf(y[1090 * 1024 + 77] + amax) <= 1e-6f * amax, "outlier %g -> %g",
                   (double)-amax, (double)y[1090 * 1024 + 77]);
        free(y);
    }
    vt_store_close(s);
    src_free(t, 2);
}

/* ---- 2:4 sparsity -------------------------------------------------------------------------- */

/* Checks the 2:4 pattern of @p y; returns the SQNR of pruning alone (the two smallest
 * magnitudes of each group of 4 set to zero): quantizing the kept values only adds error. */
static double check_24(const vt_tensor_info *ti, const src_t *t, const float *y) {
    uint64_t bad = 0, off_top2 = 0;
    double sx2 = 0, se2 = 0;
    for (uint64_t r = 0; r < t->rows; r++)
        for (uint64_t g = 0; g < t->cols; g += 4) {
            const float *yr = y + r * t->cols, *xr = t->f + r * t->cols;
            int nz = 0;
            uint64_t e = g + 4 < t->cols ? g + 4 : t->cols;
            for (uint64_t j = g; j < e; j++) {
                if (yr[j] == 0) continue;
                nz++;
                int bigger = 0; /* a kept value is among the two largest magnitudes */
                for (uint64_t k = g; k < e; k++) bigger += fabsf(xr[k]) > fabsf(xr[j]);
                off_top2 += bigger >= 2;
            }
            for (uint64_t j = g; j < e; j++) {
                int bigger = 0;
                for (uint64_t k = g; k < e; k++)
                    bigger +=
                        fabsf(xr[k]) > fabsf(xr[j]) || (fabsf(xr[k]) == fabsf(xr[j]) && k < j);
                sx2 += (double)xr[j] * xr[j];
                if (bigger >= 2) se2 += (double)xr[j] * xr[j];
            }
            bad += nz > 2;
        }
    CHECKF(bad == 0, "%s (%s): %llu groups of 4 with more than 2 nonzeros", t->name,
           fname(ti->format), (unsigned long long)bad);
    CHECKF(off_top2 == 0, "%s (%s): %llu kept values not among the 2 largest of their group",
           t->name, fname(ti->format), (unsigned long long)off_top2);
    return 10.0 * log10(sx2 / se2);
}

static void test_sparse24(void) {
    src_t t[4];
    src_make(&t[0], "s.a.weight", "F32", 64, 256, 0, GEN_NORMAL);
    src_make(&t[1], "s.b.weight", "F16", 48, 200, 0, GEN_HEAVY); /* padded compressed rows */
    src_make(&t[2], "s.c.weight", "F32", 33, 70, 0, GEN_NORMAL); /* cols % 4 != 0 */
    src_make(&t[3], "s.norm", "F32", 1, 64, 1, GEN_NORMAL);      /* stays f32, dense */
    write_st("sp.safetensors", t, 4);
    static const uint32_t fmts[] = {VT_FMT_Q8_0,  VT_FMT_NF4,  VT_FMT_NVFP4, VT_FMT_Q4_0,
                                    VT_FMT_MXFP4, VT_FMT_INT8, VT_FMT_F16};
    for (size_t k = 0; k < sizeof fmts / sizeof fmts[0]; k++) {
        uint32_t fmt = fmts[k] | VT_FMT_SPARSE24;
        char sn[64];
        snprintf(sn, sizeof sn, "sp%zu.vts", k);
        vt_store *s = open_store(sn, 0);
        if (!s) continue;
        vt_import_options o;
        vt_import_options_init(&o);
        o.format = fmt;
        int rc = import(s, "sp.safetensors", &o, NULL);
        CHECKF(rc == 0, "%s: %s", fname(fmt), vt_last_error());
        for (int i = 0; i < 3 && !rc; i++) {
            vt_tensor_info ti;
            float *y = read_all(s, t[i].name, &ti);
            if (!y) continue;
            CHECKF(ti.format == fmt, "%s: stored %s, want %s", t[i].name, fname(ti.format),
                   fname(fmt));
            double prune = check_24(&ti, &t[i], y);
            check_metrics(&ti, &t[i], y);
            check_equals_quantizer(&ti, &t[i], y, fmt);
            /* the error is the pruned values plus the quantization error of the kept ones
             * (under 5% of the signal power even for 4-bit formats on the heavy tail) */
            double e_rel = pow(10, -ti.metrics.sqnr_db / 10), p_rel = pow(10, -prune / 10);
            CHECKF(ti.metrics.sqnr_db <= prune + 0.01 && e_rel < p_rel + 0.05,
                   "%s %s: sqnr %.2f dB, pruning alone %.2f dB", t[i].name, fname(fmt),
                   ti.metrics.sqnr_db, prune);
            if (i < 2)
                printf("  %-9s %s: sqnr %.2f dB (pruning alone %.2f dB), %.3f bpw\n", fname(fmt),
                       t[i].name, ti.metrics.sqnr_db, prune, vt_format_bpw(fmt, t[i].cols));
            free(y);
        }
        vt_tensor_info ti;
        if (!rc && !vt_store_stat(s, "s.norm", &ti)) CHECK(ti.format == VT_FMT_F32);
        vt_store_close(s);
    }

    /* nf4_dq cannot be sparse: refused, nothing written */
    vt_store *s = open_store("sp_dq.vts", 0);
    if (s) {
        vt_import_options o;
        vt_import_options_init(&o);
        o.format = VT_FMT_NF4_DQ | VT_FMT_SPARSE24;
        int rc = import(s, "sp.safetensors", &o, NULL);
        CHECKF(rc == VT_EUNSUPPORTED, "nf4_dq+2:4: rc %d (%s)", rc, vt_last_error());
        vt_tensor_info ti;
        CHECK(vt_store_stat(s, t[0].name, &ti) == VT_ENOTFOUND);
        vt_store_close(s);
    }
    src_free(t, 4);
}

/* ---- rules ---------------------------------------------------------------------------------- */

static void test_rules(void) {
    src_t t[9];
    src_make(&t[0], "l0.attn.q_proj", "F32", 32, 128, 0, GEN_NORMAL);
    src_make(&t[1], "l0.attn.k_proj", "F16", 32, 128, 0, GEN_HEAVY);
    src_make(&t[2], "l0.attn_norm", "F32", 1, 128, 1, GEN_NORMAL);
    src_make(&t[3], "l0.mlp.keep", "F32", 16, 96, 0, GEN_NORMAL);
    src_make(&t[4], "l0.mlp.up", "F32", 24, 128, 0, GEN_HEAVY);
    src_make(&t[5], "l0.out.bias", "F32", 1, 96, 1, GEN_NORMAL);
    src_make(&t[6], "l0.ids", "I32", 4, 8, 0, GEN_INT);
    src_make(&t[7], "l0.scale16", "F16", 1, 64, 1, GEN_NORMAL);
    src_make(&t[8], "l0.mlp.auto", "F32", 64, 256, 0, GEN_NORMAL);
    write_st("rules.safetensors", t, 9);
    vt_import_rule rules[] = {
        {"*.attn.*", VT_FMT_Q8_0},     /* wins for q_proj and k_proj */
        {"*.attn.q*", VT_FMT_NF4},     /* shadowed by the first */
        {"*norm*", VT_FMT_Q4_0},       /* a rule beats the norm/bias default */
        {"*keep*", VT_IMPORT_KEEP},    /* copied */
        {"*ids*", VT_FMT_Q8_0},        /* integers are never converted */
        {"*auto*", VT_IMPORT_AUTO},    /* AUTO from a rule (target 30 dB) */
        {"*.attn.q_proj", VT_FMT_F16}, /* shadowed */
        {"*nothing*", VT_FMT_MXFP4},   /* matches nothing */
        {"*", 0x77u},                  /* never reached for the above; invalid elsewhere */
    };
    static const uint32_t want[9] = {VT_FMT_Q8_0,      VT_FMT_Q8_0, VT_FMT_Q4_0,
                                     VT_FMT_F32,       VT_FMT_Q4_1, VT_FMT_F32,
                                     VT_STORE_FMT_RAW, VT_FMT_F16,  0 /* 8-bit */};
    vt_store *s = open_store("rules.vts", 0);
    if (!s) {
        src_free(t, 9);
        return;
    }
    vt_import_options o;
    vt_import_options_init(&o);
    o.format = VT_FMT_Q4_1;
    o.target_sqnr_db = 30;
    o.rules = rules;
    o.n_rules = 8; /* without the catch-all */
    vt_import_summary sum;
    int rc = import(s, "rules.safetensors", &o, &sum);
    CHECKF(rc == 0, "rules: %s", vt_last_error());
    CHECK(rc || (sum.tensors == 9 && sum.quantized == 5 && sum.kept == 4));
    for (int i = 0; i < 9 && !rc; i++) {
        vt_tensor_info ti;
        CHECK_RC(vt_store_stat(s, t[i].name, &ti));
        if (i == 8)
            CHECKF(ti.format == VT_FMT_Q8_0 || ti.format == VT_FMT_INT8, "%s: %s", t[i].name,
                   fname(ti.format));
        else
            CHECKF(ti.format == want[i], "%s: stored %s, want %s", t[i].name, fname(ti.format),
                   fname(want[i]));
        if (ti.format == VT_STORE_FMT_RAW) {
            int32_t got[32];
            CHECK_RC(vt_store_read_tensor_raw(s, t[i].name, got, sizeof got));
            CHECK(!memcmp(got, t[i].bytes, sizeof got));
            continue;
        }
        float *y = read_all(s, t[i].name, &ti);
        if (!y) continue;
        if (i == 3 || i == 5 || i == 7) {
            CHECKF(!memcmp(y, t[i].f, t[i].rows * t[i].cols * 4), "%s not exact", t[i].name);
            CHECK(isinf(ti.metrics.sqnr_db));
        } else {
            check_metrics(&ti, &t[i], y);
            check_equals_quantizer(&ti, &t[i], y, ti.format);
        }
        free(y);
    }
    /* the catch-all rule is reached only by tensors no earlier rule matched: with it last, only
     * l0.mlp.up, l0.out.bias and l0.scale16 would get its invalid format — the import fails on
     * the first of them, and the store is unchanged */
    o.n_rules = 9;
    rc = import(s, "rules.safetensors", &o, NULL);
    CHECKF(rc == -EINVAL && strstr(vt_last_error(), "l0.mlp.up"), "catch-all: rc %d (%s)", rc,
           vt_last_error());
    vt_tensor_info ti;
    CHECK_RC(vt_store_stat(s, "l0.mlp.up", &ti));
    CHECK(ti.format == VT_FMT_Q4_1);
    /* moved first, it shadows everything (an integer tensor still stays raw) */
    vt_import_rule first[2] = {{"*", VT_FMT_Q4_0}, {"*.attn.*", VT_FMT_Q8_0}};
    o.rules = first;
    o.n_rules = 2;
    rc = import(s, "rules.safetensors", &o, NULL);
    CHECKF(rc == 0, "rules (catch-all first): %s", vt_last_error());
    for (int i = 0; i < 9 && !rc; i++) {
        CHECK_RC(vt_store_stat(s, t[i].name, &ti));
        uint32_t w = i == 6 ? VT_STORE_FMT_RAW : VT_FMT_Q4_0;
        CHECKF(ti.format == w, "%s: stored %s, want %s", t[i].name, fname(ti.format), fname(w));
    }
    vt_store_close(s);
    src_free(t, 9);
}

/* ---- progress ------------------------------------------------------------------------------ */

typedef struct prog {
    int calls;
    uint64_t last_bytes, total, tensors_total, last_tensors;
    double last_elapsed;
    int nonmono, total_changed, bad, strict;
    int sleep_us;
    int cancel_at; /* return 1 on this call (1-based); 0 = never */
    atomic_int inside;
    int overlap;
} prog;

static int prog_cb(void *ctx, const vt_import_progress *p) {
    prog *g = ctx;
    if (atomic_fetch_add(&g->inside, 1) != 0) g->overlap++;
    g->calls++;
    if (g->calls > 1) {
        g->nonmono += p->bytes_done < g->last_bytes || p->elapsed_s < g->last_elapsed ||
                      p->tensors_done < g->last_tensors;
        g->strict += p->bytes_done > g->last_bytes;
        g->total_changed += p->bytes_total != g->total || p->tensors_total != g->tensors_total;
    }
    g->bad += p->bytes_done > p->bytes_total || p->tensors_done > p->tensors_total || !p->tensor;
    g->last_bytes = p->bytes_done;
    g->total = p->bytes_total;
    g->tensors_total = p->tensors_total;
    g->last_tensors = p->tensors_done;
    g->last_elapsed = p->elapsed_s;
    if (g->sleep_us) usleep((useconds_t)g->sleep_us);
    atomic_fetch_sub(&g->inside, 1);
    return g->cancel_at && g->calls == g->cancel_at;
}

static void test_progress(void) {
    src_t t[4];
    src_make(&t[0], "p.a.weight", "F32", 64, 256, 0, GEN_NORMAL);
    src_make(&t[1], "p.b.weight", "F16", 96, 128, 0, GEN_HEAVY);
    src_make(&t[2], "p.norm", "F32", 1, 128, 1, GEN_NORMAL);
    src_make(&t[3], "p.ids", "I32", 3, 5, 0, GEN_INT);
    write_st("prog.safetensors", t, 4);
    uint64_t total = 0;
    for (int i = 0; i < 4; i++) total += t[i].nbytes;

    for (int pass = 0; pass < 3; pass++) {
        /* pass 0: one thread, a callback slower than the 50 ms interval: called after every
         * chunk. pass 1: all threads, a short sleep (overlap would show). pass 2: cancel. */
        char sn[64];
        snprintf(sn, sizeof sn, "prog%d.vts", pass);
        vt_store *s = open_store(sn, 4096); /* 4 KiB chunks: a few per tensor */
        if (!s) continue;
        prog g;
        memset(&g, 0, sizeof g);
        vt_import_options o;
        vt_import_options_init(&o);
        o.format = VT_FMT_NF4;
        o.progress = prog_cb;
        o.progress_ctx = &g;
        o.nthreads = pass == 0 ? 1 : 0;
        g.sleep_us = pass == 0 ? 55000 : 2000;
        g.cancel_at = pass == 2 ? 2 : 0;
        vt_import_summary sum;
        int rc = import(s, "prog.safetensors", &o, &sum);
        printf("  progress pass %d: %d calls (%d increasing), last %llu of %llu bytes\n", pass,
               g.calls, g.strict, (unsigned long long)g.last_bytes, (unsigned long long)g.total);
        CHECK(g.overlap == 0 && g.nonmono == 0 && g.total_changed == 0 && g.bad == 0);
        if (pass < 2) {
            CHECKF(rc == 0, "progress pass %d: %s", pass, vt_last_error());
            CHECK(g.calls >= 1 && g.total == total && g.last_bytes == total);
            CHECK(g.tensors_total == 4 && g.last_tensors == 4);
            CHECK(sum.bytes_in == total);
            if (pass == 0) { /* every chunk reports, then the end repeats the last count */
                uint64_t chunks = 0;
                for (int i = 0; i < 4; i++) {
                    vt_tensor_info ti;
                    if (!vt_store_stat(s, t[i].name, &ti)) chunks += ti.n_chunks;
                }
                CHECKF((uint64_t)g.calls == chunks + 1 && g.strict == g.calls - 2,
                       "%d calls (%d increasing) for %llu chunks", g.calls, g.strict,
                       (unsigned long long)chunks);
            }
        } else {
            CHECKF(rc == -ECANCELED, "cancel: rc %d (%s)", rc, vt_last_error());
            CHECK(g.calls >= 2);
            vt_tensor_info ti;
            CHECK(vt_store_stat(s, t[0].name, &ti) == VT_ENOTFOUND);
        }
        vt_store_close(s);
    }
    src_free(t, 4);
}

int main(void) {
    vt_test_seed();
    vt_test_tmpdir("test_import_modes", dir, sizeof dir);
    test_auto_sqnr();
    test_auto_bits();
    test_nvfp4();
    test_sparse24();
    test_rules();
    test_progress();
    if (!vt_test_failures) {
        char cmd[4400];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
        if (system(cmd)) {
        }
    }
    return vt_test_done("test_import_modes");
}
