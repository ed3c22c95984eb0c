/* tools/cmd_quant.c — `vtstore quant`: quantization report. For each data set (N(0,1), a
 * heavy-tailed distribution with outlier channels, or an f32 .npy file) and each format: bits
 * per weight, compression vs f32 and f16, SQNR, cosine, max error, and quantize / dequantize
 * throughput on 1 thread and on all threads beside memcpy measured in the same run (medians of
 * several runs). Writes JSON on request. bench/quant/bench_quant.c runs the same code. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "store_print.h"
#include "vtstore/core.h"
#include "vtstore/quant.h"

typedef struct qr_opts {
    uint64_t n;
    int dist_normal, dist_heavy;
    const char *file;
    int threads, runs;
    const char *json;
} qr_opts;

typedef struct qr_row {
    char name[32];
    uint32_t fmt;
    double bpw, sqnr, cosine, max_err;
    double q1, qt, d1, dt; /* GB/s: quantize (f32 input bytes), dequantize (f32 output bytes) */
    char range[320];       /* the format cannot hold the data (vt_quantize's -ERANGE): why */
} qr_row;

/* ---- data ---------------------------------------------------------------------------------- */

static uint64_t qr_rng = 0x9E3779B97F4A7C15ull;
static uint64_t qr_next(void) {
    qr_rng ^= qr_rng >> 12, qr_rng ^= qr_rng << 25, qr_rng ^= qr_rng >> 27;
    return qr_rng * 0x2545F4914F6CDD1Dull;
}
static double qr_uniform(void) {
    return ((qr_next() >> 11) + 0.5) * 0x1.0p-53;
}
static float qr_normal(void) {
    return (float)(sqrt(-2.0 * log(qr_uniform())) * cos(6.283185307179586 * qr_uniform()));
}

/* Student-t with 3 degrees of freedom (heavy tails), with 1% of the columns (input channels)
 * scaled by 16 — the shape of real LLM weights that makes per-block absmax formats suffer. */
static void qr_fill_heavy(float *x, uint64_t rows, uint64_t cols) {
    uint8_t *outlier = calloc(cols, 1);
    for (uint64_t j = 0; j < cols; j++) outlier[j] = qr_next() % 100 == 0;
    for (uint64_t i = 0; i < rows * cols; i++) {
        double a = qr_normal(), b = qr_normal(), c = qr_normal(), z = qr_normal();
        float t = (float)(z / sqrt((a * a + b * b + c * c) / 3.0));
        x[i] = outlier[i % cols] ? 16.0f * t : t;
    }
    free(outlier);
}

/* Minimal .npy reader: little-endian f32 (or f16), C order. cols = last dimension. */
static int qr_load_npy(const char *path, float **out, uint64_t *rows, uint64_t *cols) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "vtstore quant: %s: %s\n", path, strerror(errno));
        return -1;
    }
    unsigned char pre[12];
    uint64_t hlen = 0, hoff = 0;
    if (fread(pre, 1, 10, f) != 10 || memcmp(pre, "\x93NUMPY", 6) != 0) goto bad;
    if (pre[6] == 1)
        hlen = pre[8] | (uint64_t)pre[9] << 8, hoff = 10;
    else {
        if (fread(pre + 10, 1, 2, f) != 2) goto bad;
        hlen = pre[8] | (uint64_t)pre[9] << 8 | (uint64_t)pre[10] << 16 | (uint64_t)pre[11] << 24;
        hoff = 12;
    }
    if (hlen == 0 || hlen > 65536) goto bad;
    char *h = calloc(hlen + 1, 1);
    if (!h || fread(h, 1, hlen, f) != hlen) {
        free(h);
        goto bad;
    }
    int f16 = strstr(h, "'<f2'") != NULL;
    if ((!strstr(h, "'<f4'") && !f16) || strstr(h, "True")) {
        fprintf(stderr,
                "vtstore quant: %s: only little-endian f32/f16 C-order arrays (header %s)\n", path,
                h);
        free(h);
        fclose(f);
        return -1;
    }
    char *sh = strstr(h, "'shape':");
    uint64_t dims[8], nd = 0, total = 1;
    if (sh && (sh = strchr(sh, '('))) {
        sh++;
        while (nd < 8) {
            while (*sh == ' ' || *sh == ',') sh++;
            if (*sh < '0' || *sh > '9') break;
            dims[nd] = strtoull(sh, &sh, 10);
            total *= dims[nd++];
        }
    }
    free(h);
    if (!sh || nd == 0 || total == 0) goto bad;
    *cols = dims[nd - 1];
    *rows = total / *cols;
    float *x = malloc(total * sizeof(float));
    size_t es = f16 ? 2 : 4;
    void *raw = f16 ? malloc(total * 2) : x;
    if (!x || !raw || fseek(f, (long)(hoff + hlen), SEEK_SET) ||
        fread(raw, es, total, f) != total) {
        if (raw != x) free(raw);
        free(x);
        goto bad;
    }
    if (f16) {
        vt_f16_to_f32_row(raw, x, total);
        free(raw);
    }
    fclose(f);
    *out = x;
    return 0;
bad:
    fprintf(stderr, "vtstore quant: %s: not a readable .npy file (truncated or bad header)\n",
            path);
    fclose(f);
    return -1;
}

/* ---- timing -------------------------------------------------------------------------------- */

static int qr_cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

typedef struct qr_ctx {
    uint32_t fmt;
    const vt_quant_params *p;
    const float *x;
    float *y;
    void *q;
    uint64_t rows, cols;
    int threads;
} qr_ctx;

static int qr_do_quant(qr_ctx *c) {
    return vt_quantize(c->fmt, c->p, c->x, c->rows, c->cols, c->q, c->threads);
}
static int qr_do_dequant(qr_ctx *c) {
    return vt_dequantize(c->fmt, c->p, c->q, c->rows, c->cols, c->y, c->threads);
}
static int qr_do_memcpy(qr_ctx *c) {
    memcpy(c->y, c->x, c->rows * c->cols * sizeof(float));
    return 0;
}

/* Median seconds of @p runs timed calls (after one untimed warm-up); -1 on error. */
/* Median time of @p runs calls after a warm-up; on failure the call's status code (< 0). */
static double qr_time(int (*fn)(qr_ctx *), qr_ctx *c, int runs) {
    double t[64];
    int rc;
    if (runs > 64) runs = 64;
    if ((rc = fn(c))) return rc;
    for (int r = 0; r < runs; r++) {
        double t0 = vt_now();
        if ((rc = fn(c))) return rc;
        t[r] = vt_now() - t0;
    }
    qsort(t, (size_t)runs, sizeof t[0], qr_cmp_d);
    return t[runs / 2];
}

/* ---- report -------------------------------------------------------------------------------- */

static const char *qr_formats[] = {"f16",      "bf16",    "q8_0",    "int8",  "q4_1",
                                   "q4_0",     "nf4",     "nf4_dq",  "nvfp4", "mxfp4",
                                   "awq_int4", "nf4+2:4", "q4_0+2:4"};

static int qr_dataset(const qr_opts *o, const char *dname, const float *x, uint64_t rows,
                      uint64_t cols, FILE *js, int first_ds) {
    uint64_t n = rows * cols;
    size_t nf = sizeof qr_formats / sizeof qr_formats[0];
    qr_row *res = calloc(nf, sizeof *res);
    float *y = malloc(n * sizeof(float));
    float *ones = malloc(cols * sizeof(float));
    if (!res || !y || !ones) {
        free(res), free(y), free(ones);
        fprintf(stderr, "vtstore quant: out of memory for %llu values\n", (unsigned long long)n);
        return -1;
    }
    for (uint64_t j = 0; j < cols; j++) ones[j] = 1.0f;
    qr_ctx mc = {.x = x, .y = y, .rows = rows, .cols = cols};
    double tm = qr_time(qr_do_memcpy, &mc, o->runs);
    double mem_gbps = (double)n * 4 / tm / 1e9;
    printf("\n%s: %llu x %llu f32 (%.1f MB); memcpy %.2f GB/s (1 thread); %d threads for 'all'\n",
           dname, (unsigned long long)rows, (unsigned long long)cols, n * 4 / 1e6, mem_gbps,
           o->threads);
    printf("%-9s %6s %6s %6s %8s %9s %9s | %7s %7s | %7s %7s %6s\n", "format", "bits/w", "x f32",
           "x f16", "SQNR dB", "cosine", "max err", "q 1t", "q all", "dq 1t", "dq all", "dq/mem");
    int rc = 0;
    size_t done = 0;
    for (size_t i = 0; i < nf && !rc; i++) {
        qr_row *r = &res[i];
        snprintf(r->name, sizeof r->name, "%s", qr_formats[i]);
        if (vt_format_from_name(qr_formats[i], &r->fmt)) continue;
        vt_quant_params p;
        vt_quant_params_init(&p);
        if (VT_FMT_BASE(r->fmt) == VT_FMT_AWQ_INT4) { /* no activation statistics: s = 1 */
            p.channel_scale = ones;
            p.channel_count = cols;
        }
        if ((rc = vt_quant_observe(r->fmt, &p, x, n))) break;
        uint64_t nb = vt_quant_bytes(r->fmt, rows, cols);
        void *q = malloc(nb ? nb : 1);
        if (!q) {
            rc = -ENOMEM;
            break;
        }
        qr_ctx c = {.fmt = r->fmt, .p = &p, .x = x, .y = y, .q = q, .rows = rows, .cols = cols};
        c.threads = 1;
        double tq1 = qr_time(qr_do_quant, &c, o->runs);
        if (tq1 == -ERANGE) { /* a value beyond the format: a line saying so, then the others */
            snprintf(r->range, sizeof r->range, "%s", vt_last_error());
            printf("%-9s cannot hold these values: %s\n", r->name, r->range);
            free(q);
            done = i + 1;
            continue;
        }
        double td1 = qr_time(qr_do_dequant, &c, o->runs);
        c.threads = o->threads;
        double tqt = qr_time(qr_do_quant, &c, o->runs), tdt = qr_time(qr_do_dequant, &c, o->runs);
        vt_metrics m;
        int mrc = 0;
        if (tq1 < 0 || td1 < 0 || tqt < 0 || tdt < 0 || (mrc = vt_metrics_compute(x, y, n, &m))) {
            rc = tq1 < 0   ? (int)tq1
                 : td1 < 0 ? (int)td1
                 : tqt < 0 ? (int)tqt
                 : tdt < 0 ? (int)tdt
                           : mrc;
            free(q);
            fprintf(stderr, "vtstore quant: %s on %s: %s (%s)\n", r->name, dname,
                    vt_last_error()[0] ? vt_last_error() : "failed", vt_strerror(rc));
            break;
        }
        free(q);
        r->bpw = vt_format_bpw(r->fmt, cols);
        r->sqnr = m.sqnr_db, r->cosine = m.cosine, r->max_err = m.max_err;
        double gb = (double)n * 4 / 1e9;
        r->q1 = gb / tq1, r->qt = gb / tqt, r->d1 = gb / td1, r->dt = gb / tdt;
        printf("%-9s %6.3f %6.2f %6.2f %8.2f %9.6f %9.3g | %7.2f %7.2f | %7.2f %7.2f %5.0f%%\n",
               r->name, r->bpw, 32.0 / r->bpw, 16.0 / r->bpw, r->sqnr, r->cosine, r->max_err, r->q1,
               r->qt, r->d1, r->dt, 100.0 * r->d1 / mem_gbps);
        fflush(stdout);
        done = i + 1;
    }
    if (rc) {
        if (rc != -1)
            fprintf(stderr, "vtstore quant: %s: %s: %s\n", dname, vt_strerror(rc), vt_last_error());
    } else if (js) {
        fprintf(js, "%s    {\"name\": ", first_ds ? "" : ",\n");
        vt_print_json_str(js, dname); /* a --file path: any bytes */
        fprintf(js,
                ", \"rows\": %llu, \"cols\": %llu, \"memcpy_gbps\": %.4f,\n     \"formats\": [\n",
                (unsigned long long)rows, (unsigned long long)cols, mem_gbps);
        for (size_t i = 0; i < done; i++) {
            qr_row *r = &res[i];
            fputs("      {\"format\": ", js);
            vt_print_json_str(js, r->name);
            if (r->range[0]) { /* no figures: the format cannot hold the data */
                fputs(", \"out_of_range\": ", js);
                vt_print_json_str(js, r->range);
                fprintf(js, "}%s\n", i + 1 < done ? "," : "");
                continue;
            }
            fprintf(js,
                    ", \"bits_per_weight\": %.4f, \"compression_vs_f32\": "
                    "%.4f, \"compression_vs_f16\": %.4f, \"sqnr_db\": %.4f, \"cosine\": %.8f, "
                    "\"max_err\": %.6g, \"quantize_gbps_1t\": %.4f, \"quantize_gbps_all\": %.4f, "
                    "\"dequantize_gbps_1t\": %.4f, \"dequantize_gbps_all\": %.4f}%s\n",
                    r->bpw, 32.0 / r->bpw, 16.0 / r->bpw, isinf(r->sqnr) ? 999.0 : r->sqnr,
                    r->cosine, r->max_err, r->q1, r->qt, r->d1, r->dt, i + 1 < done ? "," : "");
        }
        fprintf(js, "     ]}");
    }
    free(res), free(y), free(ones);
    return rc ? -1 : 0;
}

static void qr_usage(FILE *f) {
    fprintf(f,
            "usage: vtstore quant [--n N] [--dist normal|heavy|both] [--file F.npy] [--threads T]\n"
            "                     [--runs R] [--json FILE]\n"
            "Quantization report: for every format, bits/weight, compression vs f32 and f16,\n"
            "SQNR, cosine, max error and quantize/dequantize GB/s (1 thread and T threads) beside\n"
            "memcpy measured in the same run (medians of R runs).\n"
            "  --n N        values per generated data set (default 4194304, rows of 4096)\n"
            "  --dist D     normal: N(0,1); heavy: Student-t(3) with 1%% outlier channels x16;\n"
            "               both (default). Ignored with --file unless given explicitly.\n"
            "  --file F     also report on a little-endian f32/f16 .npy array (cols = last dim)\n"
            "  --threads T  threads for the 'all' columns (default: all online CPUs)\n"
            "  --runs R     timed runs per measurement, median reported (default 5)\n"
            "  --json FILE  write the results as JSON\n");
}

int vt_cmd_quant(int argc, char **argv) {
    qr_opts o = {.n = 4194304, .threads = vt_default_threads(), .runs = 5};
    int dist_given = 0;
    /* -h/--help anywhere wins over every other argument, as in the other subcommands (the loop
     * of vt_cli_wants_help, which is in tools/main.c: bench_quant links this file without it) */
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            qr_usage(stdout);
            return VT_EXIT_OK;
        }
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int takes = !strcmp(a, "--n") || !strcmp(a, "--dist") || !strcmp(a, "--file") ||
                    !strcmp(a, "--threads") || !strcmp(a, "--runs") || !strcmp(a, "--json");
        if (!takes) {
            fprintf(stderr, "vtstore quant: unknown argument '%s'\n", a);
            qr_usage(stderr);
            return VT_EXIT_USAGE;
        }
        if (!v) {
            fprintf(stderr, "vtstore quant: %s needs a value\n", a);
            return VT_EXIT_USAGE;
        }
        i++;
        char *end = NULL;
        if (!strcmp(a, "--n")) {
            errno = 0;
            o.n = strtoull(v, &end, 0);
            if (*end || end == v || *v == '-' || errno == ERANGE || o.n < 4096) {
                fprintf(stderr, "vtstore quant: --n '%s': need an integer >= 4096\n", v);
                return VT_EXIT_USAGE;
            }
        } else if (!strcmp(a, "--dist")) {
            dist_given = 1;
            if (!strcmp(v, "normal"))
                o.dist_normal = 1;
            else if (!strcmp(v, "heavy"))
                o.dist_heavy = 1;
            else if (!strcmp(v, "both"))
                o.dist_normal = o.dist_heavy = 1;
            else {
                fprintf(stderr, "vtstore quant: --dist '%s': expected normal, heavy or both\n", v);
                return VT_EXIT_USAGE;
            }
        } else if (!strcmp(a, "--file")) {
            o.file = v;
        } else if (!strcmp(a, "--threads") || !strcmp(a, "--runs")) {
            long t = strtol(v, &end, 10);
            if (*end || t < 1 || t > 1024) {
                fprintf(stderr, "vtstore quant: %s '%s': need a positive integer\n", a, v);
                return VT_EXIT_USAGE;
            }
            if (a[2] == 't')
                o.threads = (int)t;
            else
                o.runs = (int)t;
        } else {
            o.json = v;
        }
    }
    if (!dist_given && !o.file) o.dist_normal = o.dist_heavy = 1;
    FILE *js = NULL;
    if (o.json && !(js = fopen(o.json, "w"))) {
        fprintf(stderr, "vtstore quant: cannot write %s: %s\n", o.json, strerror(errno));
        return VT_EXIT_ERROR;
    }
    if (js) {
        fputs("{\"tool\": \"vtstore quant\", \"version\": ", js);
        vt_print_json_str(js, vt_version());
        fprintf(js, ", \"threads\": %d, \"runs\": %d,\n \"datasets\": [\n", o.threads, o.runs);
    }
    printf("vtstore quant: throughput in GB/s of f32 (quantize: input, dequantize: output); "
           "medians of %d runs\n",
           o.runs);
    int rc = 0, first = 1;
    const uint64_t cols = 4096;
    uint64_t rows = (o.n + cols - 1) / cols;
    for (int d = 0; d < 2 && !rc; d++) {
        if (!(d == 0 ? o.dist_normal : o.dist_heavy)) continue;
        float *x = malloc(rows * cols * sizeof(float));
        if (!x) {
            fprintf(stderr, "vtstore quant: out of memory for %llu values\n",
                    (unsigned long long)(rows * cols));
            rc = -1;
            break;
        }
        if (d == 0)
            for (uint64_t i = 0; i < rows * cols; i++) x[i] = qr_normal();
        else
            qr_fill_heavy(x, rows, cols);
        rc = qr_dataset(&o, d == 0 ? "normal N(0,1)" : "heavy t(3) + 1% outlier channels x16", x,
                        rows, cols, js, first);
        first = 0;
        free(x);
    }
    if (!rc && o.file) {
        float *x = NULL;
        uint64_t fr = 0, fc = 0;
        rc = qr_load_npy(o.file, &x, &fr, &fc);
        if (!rc) rc = qr_dataset(&o, o.file, x, fr, fc, js, first);
        free(x);
    }
    if (js) {
        fprintf(js, "\n ]}\n");
        if (fclose(js) != 0) {
            fprintf(stderr, "vtstore quant: writing %s: %s\n", o.json, strerror(errno));
            rc = -1;
        }
    }
    return rc ? VT_EXIT_ERROR : VT_EXIT_OK;
}
