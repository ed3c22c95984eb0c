/* bench/kernels/bench_kernels.c — kernel benchmarks, each beside a baseline measured in the
 * same run (medians of several runs); prints a table and writes JSON.
 *  CPU: fused GEMV per format vs a threaded memory read (sum over a large array); GB/s counted
 *       on the quantized weight bytes. GEMM (prefill, Y = X W^T, f32 X and Y) per format and M
 *       in GFLOP/s vs OpenBLAS cblas_sgemm on the dequantized f32 weight, when the build found
 *       OpenBLAS (VT_BENCH_OPENBLAS; the library itself never links BLAS).
 *       Dequantize (--dequant-only): vt_dequant to f32 per format in GB/s of f32 output, which
 *       is what the host decoders (kernels/cpu/decode_*.c) deliver to the GEMM and GEMV tails.
 *  GPU (when present): CUDA dequantize vs cudaMemcpy D2D (bytes read + written), fused GEMV vs
 *       cuBLAS f16 GEMV, GEMM (pipelined mma, tile mma and cuBLAS paths) vs cuBLAS f16 GEMM in
 *       TFLOP/s.
 * Entry point vt_bench_kernels_main is shared by the bench_kernels program and
 * `vtstore bench kernels` (tools/cmd_bench.c). Uses only public headers. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../bench_util.h"
#include "vtstore/blocks.h"
#include "vtstore/device.h"
#include "vtstore/kernels.h"

#ifdef VT_BENCH_OPENBLAS
#include <cblas.h>
#endif

typedef struct bk_opts {
    uint64_t rows, cols, mem_mb;
    int runs, batch, gpu, cpu, gemv, gemm, dequant;
    const char *json;
    const char *formats;
    const char *gemm_m, *gemm_formats, *gemm_shapes, *dequant_shape, *gpu_shapes;
} bk_opts;

static float bk_normal(void) {
    double u1 = ((bench_rand() >> 11) + 1) * 0x1.0p-53, u2 = (bench_rand() >> 11) * 0x1.0p-53;
    return (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}

/* rows x cols quantized weight: a quantized tile of `tile` rows (random N(0,1) data; q4_k/q6_k
 * random blocks) repeated, so big matrices are cheap to make. *scales gets awq scales. */
static int make_weight(uint32_t fmt, uint64_t rows, uint64_t cols, uint8_t **out, float **scales,
                       vt_quant_params *p) {
    uint64_t align = vt_quant_row_align(fmt, cols), tile = 64;
    if (align > tile) tile = align;
    tile = (tile + align - 1) / align * align;
    if (rows % tile) rows = (rows + tile - 1) / tile * tile;
    uint64_t tb = vt_quant_bytes(fmt, tile, cols), total = vt_quant_bytes(fmt, rows, cols);
    uint8_t *q = vt_malloc(total);
    float *w = vt_malloc(tile * cols * sizeof(float));
    *scales = NULL;
    vt_quant_params_init(p);
    if (!q || !w) {
        vt_free(q);
        vt_free(w);
        return vt_fail(-ENOMEM, "bench: no memory for a %llu-byte weight",
                       (unsigned long long)total);
    }
    int rc = 0;
    uint32_t base = VT_FMT_BASE(fmt);
    if (base == VT_FMT_Q4_K || base == VT_FMT_Q6_K) {
        for (uint64_t i = 0; i < tb; i++) q[i] = (uint8_t)bench_rand();
        uint32_t bb = base == VT_FMT_Q4_K ? 144 : 210, off = base == VT_FMT_Q4_K ? 0 : 208;
        for (uint64_t b = 0; b < tb / bb; b++) { /* sane f16 scales: d (and dmin) = 2^-8 */
            q[b * bb + off] = 0x00;
            q[b * bb + off + 1] = 0x1c;
            if (base == VT_FMT_Q4_K) {
                q[b * bb + 2] = 0x00;
                q[b * bb + 3] = 0x1c;
            }
        }
    } else {
        for (uint64_t i = 0; i < tile * cols; i++) w[i] = bk_normal();
        if (base == VT_FMT_AWQ_INT4) {
            *scales = vt_malloc(cols * sizeof(float));
            if (!*scales) rc = vt_fail(-ENOMEM, "bench: no memory for awq scales");
            for (uint64_t j = 0; !rc && j < cols; j++)
                (*scales)[j] = 0.5f + (float)(bench_rand() % 1000) / 1000.0f;
            p->channel_scale = *scales;
            p->channel_count = cols;
        }
        if (!rc) rc = vt_quant_observe(fmt, p, w, tile * cols);
        if (!rc) rc = vt_quantize(fmt, p, w, tile, cols, q, 0);
    }
    for (uint64_t r = tile; !rc && r < rows; r += tile) memcpy(q + (r / tile) * tb, q, tb);
    vt_free(w);
    if (rc) {
        vt_free(q);
        vt_free(*scales);
        *scales = NULL;
        return rc;
    }
    *out = q;
    return 0;
}

/* make_weight for a benchmark row: names the format into nm, fills *w; on failure prints the
 * row as skipped (name in a column of @p width) and returns 0, else 1. */
static int bench_weight(uint32_t fmt, uint64_t rows, uint64_t cols, int width, char nm[48],
                        uint8_t **q, float **sc, vt_quant_params *p, vt_weight *w) {
    vt_format_name(fmt, nm, 48);
    int rc = make_weight(fmt, rows, cols, q, sc, p);
    if (rc) {
        printf("%-*s skipped: %s (%s)\n", width, nm, vt_strerror(rc), vt_last_error());
        return 0;
    }
    vt_weight_host(w, *q, fmt, rows, cols, p);
    return 1;
}

/* ---- CPU ------------------------------------------------------------------------------------ */

typedef struct sum_ctx {
    const float *a;
    uint64_t n, chunk;
    double part[256];
} sum_ctx;

static int sum_task(void *c_, uint64_t i, int tid) {
    sum_ctx *c = c_;
    uint64_t e = (i + 1) * c->chunk < c->n ? (i + 1) * c->chunk : c->n;
    float s0 = 0, s1 = 0, s2 = 0, s3 = 0, s4 = 0, s5 = 0, s6 = 0, s7 = 0;
    uint64_t k = i * c->chunk;
    for (; k + 8 <= e; k += 8) {
        s0 += c->a[k];
        s1 += c->a[k + 1];
        s2 += c->a[k + 2];
        s3 += c->a[k + 3];
        s4 += c->a[k + 4];
        s5 += c->a[k + 5];
        s6 += c->a[k + 6];
        s7 += c->a[k + 7];
    }
    c->part[i % 256] += s0 + s1 + s2 + s3 + s4 + s5 + s6 + s7;
    return 0;
}

/* The read baseline's array: mem_mb MiB of floats (0 or -ENOMEM). */
static int read_setup(sum_ctx *c, uint64_t mem_mb) {
    memset(c, 0, sizeof *c);
    c->n = mem_mb * 1024 * 1024 / 4;
    c->chunk = 1 << 20;
    float *a = vt_malloc(c->n * 4);
    if (!a)
        return vt_fail(-ENOMEM, "bench: no memory for the %llu MiB read baseline",
                       (unsigned long long)mem_mb);
    for (uint64_t i = 0; i < c->n; i++) a[i] = (float)(i & 7);
    c->a = a;
    return 0;
}

/* One threaded sum over the array: read bandwidth in GB/s. */
static double read_once(sum_ctx *c) {
    double t0 = vt_now();
    vt_parallel_for((c->n + c->chunk - 1) / c->chunk, sum_task, c, 0);
    return (double)c->n * 4 / (vt_now() - t0) / 1e9;
}

static FILE *g_json;
static int g_first;
static void json_row(const char *kind, const char *fmt, uint64_t rows, uint64_t cols, uint64_t M,
                     double ms, double value, const char *unit, double base_value, double ratio) {
    if (!g_json) return;
    fprintf(g_json,
            "%s\n    {\"bench\": \"%s\", \"format\": \"%s\", \"rows\": %llu, \"cols\": %llu, "
            "\"m\": %llu, \"ms\": %.4f, \"value\": %.3f, \"unit\": \"%s\", \"baseline\": %.3f, "
            "\"ratio\": %.3f}",
            g_first ? "" : ",", kind, fmt, (unsigned long long)rows, (unsigned long long)cols,
            (unsigned long long)M, ms, value, unit, base_value, ratio);
    g_first = 0;
}

/* Each GEMV run follows a read-baseline run (its own same-moment baseline: on a shared machine
 * the load changes between formats and runs); "vs read" is the median over runs of the GEMV's
 * GB/s over its baseline's. The read pass also evicts the weights, so every GEMV run reads them
 * from DRAM, as when a model's layers stream through. */
static int bench_cpu(const bk_opts *o, uint32_t *fmts, int nf) {
    double l0 = bench_load1(), sink = 0, bw[64];
    sum_ctx c;
    int rc = read_setup(&c, o->mem_mb);
    if (rc) return rc;
    for (int r = 0; r <= o->runs; r++) bw[r] = read_once(&c); /* bw[0] warms up */
    const char *e512 = getenv("VT_KERNELS_AVX512");
    int avx512 = (vt_cpu_features() & VT_CPU_AVX512F) && strcmp(vt_kernels_cpu_isa(), "scalar") &&
                 !(e512 && !strcmp(e512, "0"));
    printf("CPU (%s%s, %d threads): memory read baseline %.2f GB/s (sum over %llu MiB; timed "
           "again before every GEMV run)\n",
           vt_kernels_cpu_isa(), avx512 ? ", avx512f fused gemv" : "", vt_default_threads(),
           bench_median(bw + 1, o->runs), (unsigned long long)o->mem_mb);
    printf("%-12s %6s %6s %5s %10s %10s %10s %8s\n", "format", "rows", "cols", "batch", "ms",
           "GB/s", "read GB/s", "vs read");
    float *x = vt_malloc(o->batch * o->cols * 4), *y = vt_malloc(o->batch * o->rows * 4);
    if (!x || !y) {
        vt_free(x);
        vt_free(y);
        vt_free((void *)c.a);
        return vt_fail(-ENOMEM, "bench: no memory for x/y");
    }
    for (uint64_t i = 0; i < o->batch * o->cols; i++) x[i] = bk_normal();
    for (int f = 0; f < nf; f++) {
        uint8_t *q;
        float *sc;
        vt_quant_params p;
        char nm[48];
        vt_weight w;
        if (!bench_weight(fmts[f], o->rows, o->cols, 12, nm, &q, &sc, &p, &w)) continue;
        double t[64], ratio[64];
        for (int r = 0; r <= o->runs && !rc; r++) {
            bw[r] = read_once(&c);
            double t0 = vt_now();
            rc = vt_gemv(&w, x, y, o->batch, NULL);
            double dt = vt_now() - t0;
            if (r) { /* run 0 warms up */
                t[r - 1] = dt;
                ratio[r - 1] = (double)w.bytes / dt / 1e9 / bw[r];
            }
        }
        if (rc) {
            printf("%-12s failed: %s (%s)\n", nm, vt_strerror(rc), vt_last_error());
            rc = 0;
        } else {
            double s = bench_median(t, o->runs), gbs = (double)w.bytes / s / 1e9;
            double rbw = bench_median(bw + 1, o->runs), ra = bench_median(ratio, o->runs);
            printf("%-12s %6llu %6llu %5d %10.3f %10.2f %10.2f %7.0f%%\n", nm,
                   (unsigned long long)o->rows, (unsigned long long)o->cols, o->batch, s * 1e3, gbs,
                   rbw, 100 * ra);
            json_row("cpu_gemv", nm, o->rows, o->cols, (uint64_t)o->batch, s * 1e3, gbs, "GB/s",
                     rbw, ra);
        }
        vt_free(q);
        vt_free(sc);
    }
    for (int i = 0; i < 256; i++) sink += c.part[i];
    vt_free((void *)c.a);
    vt_free(x);
    vt_free(y);
    double l1 = bench_load1();
    printf("load average (1 min): %.2f at start, %.2f at end\n", l0, l1);
    if (g_json)
        fprintf(g_json, "%s\n    {\"bench\": \"cpu_load\", \"start\": %.2f, \"end\": %.2f}",
                g_first ? "" : ",", l0, l1);
    g_first = 0;
    return sink == -1.0 ? 1 : 0; /* keep the sum alive */
}

/* ---- CPU GEMM ------------------------------------------------------------------------------- */

/* Comma-separated format names into fmts; returns the count, or -1 (after a message). */
static int parse_formats(const char *list, uint32_t *fmts, int cap) {
    char buf[512];
    int n = 0;
    snprintf(buf, sizeof buf, "%s", list);
    for (char *s = strtok(buf, ","); s && n < cap; s = strtok(NULL, ",")) {
        if (vt_format_from_name(s, &fmts[n])) {
            fprintf(stderr, "bench kernels: unknown format '%s'\n", s);
            return -1;
        }
        n++;
    }
    return n;
}

/* Comma-separated unsigned numbers (or RxC pairs when @p pairs) into v; returns the count, or -1
 * on a malformed list. */
static int parse_list(const char *s, uint64_t *v, int cap, int pairs) {
    int n = 0;
    while (*s && n < cap) {
        char *e;
        v[n] = strtoull(s, &e, 10);
        if (e == s || !v[n]) return -1;
        if (pairs) {
            if (*e != 'x' || n + 1 >= cap) return -1;
            s = e + 1;
            v[++n] = strtoull(s, &e, 10);
            if (e == s || !v[n]) return -1;
        }
        n++;
        if (*e == ',')
            e++;
        else if (*e)
            return -1;
        s = e;
    }
    return n;
}

/* One format and shape: per M, runs of our vt_gemm and (when built with it) cblas_sgemm on the
 * dequantized f32 weight, alternated so both see the same load; medians. The dequantization to
 * f32 is timed too: what a dequantize-then-sgemm prefill pays per weight on top of sgemm. */
static int bench_gemm_one(const bk_opts *o, uint32_t fmt, uint64_t rows, uint64_t cols,
                          const uint64_t *Ms, int nm) {
    char nm_[48];
    uint8_t *q;
    float *sc;
    vt_quant_params p;
    vt_weight w;
    if (!bench_weight(fmt, rows, cols, 8, nm_, &q, &sc, &p, &w)) return 0;
    int rc = 0;
    uint64_t mmax = 0;
    for (int i = 0; i < nm; i++) mmax = Ms[i] > mmax ? Ms[i] : mmax;
    float *wf = vt_malloc(rows * cols * 4), *X = vt_malloc(mmax * cols * 4);
    float *Y = vt_malloc(mmax * rows * 4);
    if (!wf || !X || !Y) {
        rc = vt_fail(-ENOMEM, "bench: no memory for the GEMM operands");
        goto out;
    }
    for (uint64_t i = 0; i < mmax * cols; i++) X[i] = bk_normal();
    double tdq[64];
    for (int r = 0; r <= o->runs && !rc; r++) {
        double t0 = vt_now();
        rc = vt_dequant(&w, VT_DTYPE_F32, wf, NULL);
        if (r) tdq[r - 1] = vt_now() - t0;
    }
    if (rc) goto out;
    double ms_dq = bench_median(tdq, o->runs) * 1e3;
    for (int mi = 0; mi < nm && !rc; mi++) {
        uint64_t M = Ms[mi];
        double t[64], tb[64], ratio[64], flop = 2.0 * (double)M * rows * cols;
        int have_b = 0;
        for (int r = 0; r <= o->runs && !rc; r++) { /* run 0 warms up */
            double t0 = vt_now();
            rc = vt_gemm(&w, X, VT_DTYPE_F32, Y, VT_DTYPE_F32, M, NULL);
            double dt = vt_now() - t0, db = 0;
#ifdef VT_BENCH_OPENBLAS
            t0 = vt_now();
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)M, (int)rows, (int)cols, 1.0f,
                        X, (int)cols, wf, (int)cols, 0.0f, Y, (int)rows);
            db = vt_now() - t0;
            have_b = 1;
#endif
            if (r) {
                t[r - 1] = dt;
                tb[r - 1] = db;
                ratio[r - 1] = db / dt;
            }
        }
        if (rc) break;
        double ms = bench_median(t, o->runs) * 1e3, gf = flop / ms / 1e6;
        if (have_b) {
            double msb = bench_median(tb, o->runs) * 1e3, gfb = flop / msb / 1e6;
            double ra = bench_median(ratio, o->runs);
            printf("%-8s %6llu %6llu %5llu %9.3f %8.1f %9.3f %8.1f %7.0f%% %9.3f %7.0f%%\n", nm_,
                   (unsigned long long)rows, (unsigned long long)cols, (unsigned long long)M, ms,
                   gf, msb, gfb, 100 * ra, ms_dq, 100 * (msb + ms_dq) / ms);
            json_row("cpu_gemm", nm_, rows, cols, M, ms, gf, "GFLOP/s", gfb, ra);
        } else {
            printf("%-8s %6llu %6llu %5llu %9.3f %8.1f  baseline unavailable (built without "
                   "OpenBLAS) %9.3f\n",
                   nm_, (unsigned long long)rows, (unsigned long long)cols, (unsigned long long)M,
                   ms, gf, ms_dq);
            json_row("cpu_gemm", nm_, rows, cols, M, ms, gf, "GFLOP/s", 0, 0);
        }
    }
out:
    if (rc) printf("%-8s failed: %s (%s)\n", nm_, vt_strerror(rc), vt_last_error());
    vt_free(wf);
    vt_free(X);
    vt_free(Y);
    vt_free(q);
    vt_free(sc);
    return 0;
}

/* ---- CPU dequantize ---------------------------------------------------------------------------
 */

/* vt_dequant to f32 per format: GB/s of f32 output (and of quantized input), medians of runs.
 * The default shape (2048 x 4096: 32 MiB out) keeps the output write in the measure, as a
 * dequantize-then-sgemm caller pays it; the decoders alone run faster from cache. */
static int bench_dequant(const bk_opts *o, uint32_t *fmts, int nf) {
    uint64_t shp[2];
    if (parse_list(o->dequant_shape, shp, 2, 1) != 2) return 2;
    const uint64_t rows = shp[0], cols = shp[1];
    double l0 = bench_load1();
    float *out = vt_malloc(rows * cols * sizeof(float));
    if (!out) return vt_fail(-ENOMEM, "bench: no memory for the dequantize output");
    printf("CPU dequantize to f32 (%s, %d threads), %llux%llu; medians of %d runs\n",
           vt_kernels_cpu_isa(), vt_default_threads(), (unsigned long long)rows,
           (unsigned long long)cols, o->runs);
    printf("%-12s %9s %10s %10s\n", "format", "ms", "out GB/s", "in GB/s");
    for (int f = 0; f < nf; f++) {
        uint8_t *q;
        float *sc;
        vt_quant_params p;
        char nm[48];
        vt_weight w;
        if (!bench_weight(fmts[f], rows, cols, 12, nm, &q, &sc, &p, &w)) continue;
        double t[64];
        int rc = 0;
        for (int r = 0; r <= o->runs && !rc; r++) { /* run 0 warms up */
            double t0 = vt_now();
            rc = vt_dequant(&w, VT_DTYPE_F32, out, NULL);
            if (r) t[r - 1] = vt_now() - t0;
        }
        if (rc) {
            printf("%-12s failed: %s (%s)\n", nm, vt_strerror(rc), vt_last_error());
        } else {
            double s = bench_median(t, o->runs), gbs = (double)rows * cols * 4 / s / 1e9;
            printf("%-12s %9.3f %10.2f %10.2f\n", nm, s * 1e3, gbs, (double)w.bytes / s / 1e9);
            json_row("cpu_dequant", nm, rows, cols, 0, s * 1e3, gbs, "GB/s", 0, 0);
        }
        vt_free(q);
        vt_free(sc);
    }
    vt_free(out);
    double l1 = bench_load1();
    printf("load average (1 min): %.2f at start, %.2f at end\n", l0, l1);
    return 0;
}

static int bench_gemm(const bk_opts *o) {
    uint64_t Ms[16], shp[16];
    uint32_t fmts[32];
    int nm = parse_list(o->gemm_m, Ms, 16, 0), ns = parse_list(o->gemm_shapes, shp, 16, 1), nf = 0;
    if (nm <= 0 || ns <= 0 || (nf = parse_formats(o->gemm_formats, fmts, 32)) < 0) return 2;
    double l0 = bench_load1();
#ifdef VT_BENCH_OPENBLAS
    printf("CPU GEMM Y = X W^T (f32 X, Y; %s, %d threads) vs OpenBLAS %s cblas_sgemm (%s, %d "
           "threads) on the dequantized f32 W; medians of %d runs, alternated\n",
           vt_kernels_cpu_isa(), vt_default_threads(), openblas_get_corename(),
           openblas_get_config(), openblas_get_num_threads(), o->runs);
#else
    printf("CPU GEMM Y = X W^T (f32 X, Y; %s, %d threads); OpenBLAS baseline unavailable (not "
           "found when this binary was built; the bench_kernels program has it)\n",
           vt_kernels_cpu_isa(), vt_default_threads());
#endif
    printf("%-8s %6s %6s %5s %9s %8s %9s %8s %8s %9s %8s\n", "format", "rows", "cols", "M", "ms",
           "GFLOP/s", "blas ms", "GFLOP/s", "vs blas", "deq ms", "vs d+b");
    for (int s = 0; s < ns; s += 2)
        for (int f = 0; f < nf; f++) {
            int rc = bench_gemm_one(o, fmts[f], shp[s], shp[s + 1], Ms, nm);
            if (rc) return rc;
        }
    double l1 = bench_load1();
    printf("(vs blas: median over runs of sgemm time / ours; deq ms: vt_dequant to f32; vs d+b: "
           "(dequant + sgemm) / ours; OPENBLAS_THREAD_TIMEOUT=%s)\nload average (1 min): %.2f at "
           "start, %.2f at end\n",
           getenv("OPENBLAS_THREAD_TIMEOUT") ? getenv("OPENBLAS_THREAD_TIMEOUT") : "unset", l0, l1);
    if (g_json) {
        fprintf(g_json, "%s\n    {\"bench\": \"cpu_gemm_load\", \"start\": %.2f, \"end\": %.2f}",
                g_first ? "" : ",", l0, l1);
        g_first = 0;
    }
    return 0;
}

/* ---- GPU ------------------------------------------------------------------------------------ */

#define GT(expr)                                                                                   \
    do {                                                                                           \
        int rc_ = (expr);                                                                          \
        if (rc_) {                                                                                 \
            fprintf(stderr, "bench kernels: %s: %s (%s)\n", #expr, vt_strerror(rc_),               \
                    vt_last_error());                                                              \
            return rc_;                                                                            \
        }                                                                                          \
    } while (0)

typedef int (*gpu_op)(void *ctx, void *stream);

/* Median milliseconds of op over runs (after one warm-up), timed with events on stream. */
/* Median over runs of the device time of one op, each sample timing reps back-to-back ops
 * between two events (reps: enough for a sample of about 0.5 ms, at most 64), so that the host's
 * time to submit one op, which the GPU waits through after the first event, does not count as
 * kernel time: with one op per sample, calls of a few microseconds on a 4096 x 4096 weight all
 * measured about 17 us on an H200, cuBLAS's included. */
static int time_gpu(gpu_op op, void *ctx, void *st, int runs, double *ms) {
    void *e0, *e1;
    GT(vt_dev_event_create(&e0));
    GT(vt_dev_event_create(&e1));
    GT(op(ctx, st)); /* warm-up */
    float f0;
    GT(vt_dev_event_record(e0, st));
    GT(op(ctx, st));
    GT(vt_dev_event_record(e1, st));
    GT(vt_dev_event_elapsed_ms(e0, e1, &f0));
    int reps = f0 > 0.0f ? (int)(0.5 / f0) + 1 : 64;
    if (reps > 64) reps = 64;
    double t[64];
    for (int r = 0; r < runs; r++) {
        float f;
        GT(vt_dev_event_record(e0, st));
        for (int k = 0; k < reps; k++) GT(op(ctx, st));
        GT(vt_dev_event_record(e1, st));
        GT(vt_dev_event_elapsed_ms(e0, e1, &f));
        t[r] = f / reps;
    }
    vt_dev_event_destroy(e0);
    vt_dev_event_destroy(e1);
    *ms = bench_median(t, runs);
    return 0;
}

typedef struct gctx {
    vt_weight w;
    void *a, *b, *c, *x16, *w16;
    uint64_t n, M;
    vt_kernel_ws *ws;
    vt_gemm_algo algo;
} gctx;

static int op_dequant(void *c_, void *st) {
    gctx *c = c_;
    return vt_dequant(&c->w, VT_DTYPE_F16, c->a, st);
}
static int op_copy(void *c_, void *st) {
    gctx *c = c_;
    return vt_dev_memcpy_d2d(c->a, c->b, c->n, st);
}
static int op_gemv(void *c_, void *st) {
    gctx *c = c_;
    return vt_gemv(&c->w, c->b, c->c, 1, st);
}
static int op_gemm(void *c_, void *st) {
    gctx *c = c_;
    return vt_gemm_ex(&c->w, c->x16, VT_DTYPE_F16, c->c, VT_DTYPE_F32, c->M, c->algo, c->ws, st);
}
static int op_cublas(void *c_, void *st) {
    gctx *c = c_;
    return vt_kernels_cublas_f16(c->ws, c->w16, c->x16, c->c, c->w.rows, c->w.cols, c->M, st);
}

static int bench_gpu_shape(const bk_opts *o, uint32_t fmt, uint64_t rows, uint64_t cols, void *st,
                           vt_kernel_ws *ws, int do_gemm) {
    char nm[48];
    uint8_t *q;
    float *sc;
    vt_quant_params p;
    gctx c;
    memset(&c, 0, sizeof c);
    if (!bench_weight(fmt, rows, cols, 10, nm, &q, &sc, &p, &c.w)) return 0;
    c.w.location = VT_LOC_DEVICE;
    void *dq = NULL, *daux = NULL;
    uint64_t Mmax = do_gemm ? 4096 : 1;
    GT(vt_dev_malloc(&dq, c.w.bytes));
    GT(vt_dev_memcpy_h2d(dq, q, c.w.bytes, st));
    if (sc) {
        GT(vt_dev_malloc(&daux, cols * 4));
        GT(vt_dev_memcpy_h2d(daux, sc, cols * 4, st));
    }
    c.w.data = dq;
    c.w.aux = daux;
    c.n = rows * cols * 2;
    GT(vt_dev_malloc(&c.a, c.n));               /* f16 dequant output / copy dst */
    GT(vt_dev_malloc(&c.b, c.n));               /* copy src; x (f32) at its start */
    GT(vt_dev_malloc(&c.c, Mmax * rows * 4));   /* y / Y */
    GT(vt_dev_malloc(&c.x16, Mmax * cols * 2)); /* X f16 */
    GT(vt_dev_memset(c.b, 0, c.n, st));
    GT(vt_dev_memset(c.x16, 0x3c, Mmax * cols * 2, st)); /* 0x3c3c: about 1.06 */
    GT(vt_dequant(&c.w, VT_DTYPE_F16, c.a, st));         /* the f16 baseline matrix */
    c.w16 = c.a;
    c.ws = ws;
    double ms_dq, ms_cp, ms_gv, ms_cb;
    GT(time_gpu(op_dequant, &c, st, o->runs, &ms_dq));
    GT(time_gpu(op_copy, &c, st, o->runs, &ms_cp));
    /* the f16 copy for the cuBLAS baseline must be intact: redo it after the copy test */
    GT(vt_dequant(&c.w, VT_DTYPE_F16, c.a, st));
    GT(time_gpu(op_gemv, &c, st, o->runs, &ms_gv));
    /* the staged GEMV kernel (VT_GEMV_KERNEL=staged), same run: the A/B of gemv.cu's register
     * kernel (batch 1-2 default) against the one it replaced there */
    double ms_gs;
    /* the caller's VT_GEMV_KERNEL (e.g. float, for its own A/B) back afterwards: unsetting it
     * made every later row of such a run measure the default kernel */
    const char *ek = getenv("VT_GEMV_KERNEL");
    char keep[32] = "";
    if (ek) snprintf(keep, sizeof keep, "%s", ek);
    setenv("VT_GEMV_KERNEL", "staged", 1);
    int grc = time_gpu(op_gemv, &c, st, o->runs, &ms_gs);
    if (ek)
        setenv("VT_GEMV_KERNEL", keep, 1);
    else
        unsetenv("VT_GEMV_KERNEL");
    GT(grc);
    c.M = 1;
    GT(time_gpu(op_cublas, &c, st, o->runs, &ms_cb));
    double dq_gbs = (double)(c.w.bytes + c.n) / ms_dq / 1e6, cp_gbs = 2.0 * c.n / ms_cp / 1e6;
    double gv_gbs = (double)c.w.bytes / ms_gv / 1e6;
    printf("%-10s %6llu %6llu  dequant %7.1f GB/s (%3.0f%% of D2D %6.1f)  gemv %7.3f ms %7.1f GB/s "
           "(%3.0f%% of D2D; staged kernel %7.3f ms)  cuBLAS f16 gemv %7.3f ms  speedup %.2fx\n",
           nm, (unsigned long long)rows, (unsigned long long)cols, dq_gbs, 100 * dq_gbs / cp_gbs,
           cp_gbs, ms_gv, gv_gbs, 100 * gv_gbs / cp_gbs, ms_gs, ms_cb, ms_cb / ms_gv);
    json_row("gpu_dequant", nm, rows, cols, 0, ms_dq, dq_gbs, "GB/s", cp_gbs, dq_gbs / cp_gbs);
    json_row("gpu_gemv", nm, rows, cols, 1, ms_gv, gv_gbs, "GB/s", cp_gbs, gv_gbs / cp_gbs);
    json_row("gpu_gemv_staged_kernel", nm, rows, cols, 1, ms_gs, (double)c.w.bytes / ms_gs / 1e6,
             "GB/s", ms_gv, ms_gs / ms_gv);
    json_row("gpu_gemv_vs_cublas_f16", nm, rows, cols, 1, ms_gv, ms_cb / ms_gv, "x", ms_cb,
             ms_cb / ms_gv);
    for (uint64_t M = 512; do_gemm && M <= 4096; M *= 8) {
        c.M = M;
        double flop = 2.0 * (double)M * rows * cols, ms_m, ms_t, ms_c, ms_b;
        c.algo = VT_GEMM_MMA;
        GT(time_gpu(op_gemm, &c, st, o->runs, &ms_m));
        /* the tile kernel (VT_GEMM_MMA=tile), same run: the A/B of gemm.cu's two MMA kernels */
        setenv("VT_GEMM_MMA", "tile", 1);
        int trc = time_gpu(op_gemm, &c, st, o->runs, &ms_t);
        unsetenv("VT_GEMM_MMA");
        GT(trc);
        c.algo = VT_GEMM_CUBLAS;
        /* the cuBLAS path dequantizes into the workspace, which leaves c.a (the f16 copy) alone */
        GT(time_gpu(op_gemm, &c, st, o->runs, &ms_c));
        GT(time_gpu(op_cublas, &c, st, o->runs, &ms_b));
        double tm = flop / ms_m / 1e9, tt = flop / ms_t / 1e9, tc = flop / ms_c / 1e9;
        double tb = flop / ms_b / 1e9;
        printf("%-10s %6llu %6llu  gemm M=%-5llu mma %7.1f TFLOP/s (%3.0f%%; tile kernel %6.1f)  "
               "dequant+cuBLAS %7.1f TFLOP/s (%3.0f%%)  cuBLAS f16 %7.1f TFLOP/s\n",
               nm, (unsigned long long)rows, (unsigned long long)cols, (unsigned long long)M, tm,
               100 * tm / tb, tt, tc, 100 * tc / tb, tb);
        json_row("gpu_gemm_mma", nm, rows, cols, M, ms_m, tm, "TFLOP/s", tb, tm / tb);
        json_row("gpu_gemm_mma_tile", nm, rows, cols, M, ms_t, tt, "TFLOP/s", tb, tt / tb);
        json_row("gpu_gemm_cublas_path", nm, rows, cols, M, ms_c, tc, "TFLOP/s", tb, tc / tb);
    }
    vt_dev_free(dq);
    vt_dev_free(daux);
    vt_dev_free(c.a);
    vt_dev_free(c.b);
    vt_dev_free(c.c);
    vt_dev_free(c.x16);
    vt_free(q);
    vt_free(sc);
    return 0;
}

static int bench_gpu(const bk_opts *o, uint32_t *fmts, int nf) {
    if (!vt_kernels_cuda_available()) {
        printf("GPU: no CUDA device or no CUDA in this build: GPU benchmarks not run\n");
        return 0;
    }
    vt_dev_props pr;
    GT(vt_dev_info(&pr));
    printf("GPU: %s, %d SMs, cc %d.%d, driver %d, runtime %d\n", pr.name, pr.sm_count, pr.cc_major,
           pr.cc_minor, pr.driver_version, pr.runtime_version);
    void *st;
    vt_kernel_ws *ws;
    GT(vt_dev_stream_create(&st));
    GT(vt_kernel_ws_create(1ull << 30, &ws));
    uint64_t shp[16][2];
    int ns = parse_list(o->gpu_shapes, &shp[0][0], 32, 1) / 2;
    for (int f = 0; f < nf; f++)
        for (int s = 0; s < ns; s++) { /* GEMM (M 512, 4096) at 4096 x 4096 only */
            int rc = bench_gpu_shape(o, fmts[f], shp[s][0], shp[s][1], st, ws,
                                     shp[s][0] == 4096 && shp[s][1] == 4096);
            if (rc) return rc;
        }
    vt_kernel_ws_destroy(ws);
    vt_dev_stream_destroy(st);
    return 0;
}

static void usage(FILE *f) {
    fprintf(
        f, "usage: bench kernels [--rows N] [--cols N] [--batch B] [--runs N] [--mem-mb N]\n"
           "                     [--formats a,b,...] [--cpu-only] [--gpu-only] [--json FILE]\n"
           "                     [--gemm-m M,M,...|none] [--gemm-formats a,b,...]\n"
           "                     [--gemm-shapes RxC,...] [--gemm-only]\n"
           "                     [--dequant-only] [--dequant-shape RxC]\n"
           "                     [--gpu-shapes RxC,...]\n"
           "CPU fused GEMV per format vs a same-run memory read baseline; CPU GEMM (prefill)\n"
           "per format and M vs OpenBLAS sgemm on the dequantized weight (defaults: M\n"
           "32,128,512; f16,q8_0,q4_0,q4_k,nf4; 4096x4096,1024x1024); with a GPU, CUDA\n"
           "dequantize/GEMV/GEMM vs cudaMemcpy D2D and cuBLAS f16. --dequant-only: CPU vt_dequant\n"
           "to f32 per --formats format (default shape 2048x4096). --gpu-shapes: the CUDA\n"
           "benchmarks' shapes (default 4096x4096,8192x28672; GEMM at 4096x4096 only).\n"
           "Medians of --runs runs.\n");
}

#ifdef VT_BENCH_OPENBLAS
/* OpenBLAS's worker threads spin for about 2^28 TSC ticks (0.1 s) after each call unless
 * OPENBLAS_THREAD_TIMEOUT says less, which it reads once, when the library loads. Spinning, they
 * took cores from the vt_gemm and vt_dequant runs alternated with sgemm: with 2 cores some
 * formats' GEMMs then ran on about one thread, twice their time (2026-11-27, AVX2 path: 40-45 ms
 * instead of 21-23 at 4096 x 4096, M 128). So the program runs itself again with the timeout at
 * its minimum (2^4 ticks: OpenBLAS's threads then sleep between calls, as vt_gemm's do), unless
 * the caller set it. */
static void bk_quiet_blas(void) {
    if (getenv("OPENBLAS_THREAD_TIMEOUT")) return;
    static char buf[16384];
    char *args[256];
    FILE *f = fopen("/proc/self/cmdline", "rb");
    size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
    if (f) fclose(f);
    int na = 0;
    for (size_t i = 0; i < n && na < 255; i += strlen(buf + i) + 1) args[na++] = buf + i;
    args[na] = NULL;
    if (n == 0 || n >= sizeof buf - 1 || na == 0 || na == 255 ||
        setenv("OPENBLAS_THREAD_TIMEOUT", "4", 1)) {
        fprintf(stderr, "bench: could not run again with OPENBLAS_THREAD_TIMEOUT=4; the GEMM "
                        "rows may be slowed by OpenBLAS's spinning threads\n");
        return;
    }
    fflush(NULL);
    execv("/proc/self/exe", args);
    fprintf(stderr, "bench: execv /proc/self/exe: %s\n", strerror(errno));
    unsetenv("OPENBLAS_THREAD_TIMEOUT");
}
#endif

int vt_bench_kernels_main(int argc, char **argv) {
#ifdef VT_BENCH_OPENBLAS
    bk_quiet_blas();
#endif
    bk_opts o = {.rows = 16384,
                 .cols = 4096,
                 .mem_mb = 512,
                 .runs = 7,
                 .batch = 1,
                 .gpu = 1,
                 .cpu = 1,
                 .gemv = 1,
                 .gemm = 1,
                 .gemm_m = "32,128,512",
                 .gemm_formats = "f16,q8_0,q4_0,q4_k,nf4",
                 .gemm_shapes = "4096x4096,1024x1024",
                 .dequant_shape = "2048x4096",
                 .gpu_shapes = "4096x4096,8192x28672",
                 .formats = "q4_0,q4_1,q4_k,nf4,nf4_dq,nvfp4,mxfp4,awq_int4,q8_0,q6_k,int8,f16"};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "--cpu-only")) {
            o.gpu = 0;
        } else if (!strcmp(a, "--gpu-only")) {
            o.cpu = 0;
        } else if (!strcmp(a, "--gemm-only")) {
            o.gpu = o.gemv = 0;
        } else if (!strcmp(a, "--dequant-only")) {
            o.gpu = o.gemv = o.gemm = 0;
            o.dequant = 1;
        } else if (v && !strcmp(a, "--gpu-shapes")) {
            o.gpu_shapes = v, i++;
        } else if (v && !strcmp(a, "--dequant-shape")) {
            o.dequant_shape = v, i++;
        } else if (v && !strcmp(a, "--gemm-m")) {
            o.gemm = strcmp(v, "none") != 0;
            o.gemm_m = v, i++;
        } else if (v && !strcmp(a, "--gemm-formats")) {
            o.gemm_formats = v, i++;
        } else if (v && !strcmp(a, "--gemm-shapes")) {
            o.gemm_shapes = v, i++;
        } else if (v && !strcmp(a, "--rows")) {
            o.rows = strtoull(v, NULL, 0), i++;
        } else if (v && !strcmp(a, "--cols")) {
            o.cols = strtoull(v, NULL, 0), i++;
        } else if (v && !strcmp(a, "--batch")) {
            o.batch = atoi(v), i++;
        } else if (v && !strcmp(a, "--runs")) {
            o.runs = atoi(v), i++;
        } else if (v && !strcmp(a, "--mem-mb")) {
            o.mem_mb = strtoull(v, NULL, 0), i++;
        } else if (v && !strcmp(a, "--formats")) {
            o.formats = v, i++;
        } else if (v && !strcmp(a, "--json")) {
            o.json = v, i++;
        } else {
            fprintf(stderr, "bench kernels: unknown or incomplete option '%s'\n", a);
            usage(stderr);
            return 2;
        }
    }
    if (!o.rows || !o.cols || o.runs < 1 || o.runs > 64 || o.batch < 1 ||
        o.batch > VT_GEMV_MAX_BATCH || !o.mem_mb) {
        fprintf(stderr,
                "bench kernels: --rows/--cols > 0, --runs 1..64, --batch 1..8, --mem-mb > 0\n");
        return 2;
    }
    uint32_t fmts[64];
    int nf = parse_formats(o.formats, fmts, 64);
    if (nf < 0) return 2;
    {
        uint64_t v[32];
        if (parse_list(o.gpu_shapes, v, 32, 1) <= 0) {
            fprintf(stderr, "bench kernels: bad --gpu-shapes '%s'\n", o.gpu_shapes);
            return 2;
        }
    }
    if (o.gemm) { /* the GEMM lists, checked before anything runs */
        uint64_t v[16];
        uint32_t f[32];
        if (parse_list(o.gemm_m, v, 16, 0) <= 0 || parse_list(o.gemm_shapes, v, 16, 1) <= 0) {
            fprintf(stderr, "bench kernels: bad --gemm-m '%s' or --gemm-shapes '%s'\n", o.gemm_m,
                    o.gemm_shapes);
            return 2;
        }
        if (parse_formats(o.gemm_formats, f, 32) < 0) return 2;
    }
    if (o.json) {
        g_json = fopen(o.json, "w");
        if (!g_json) {
            fprintf(stderr, "bench kernels: cannot write %s: %s\n", o.json, strerror(errno));
            return 1;
        }
        fprintf(g_json,
                "{\"bench\": \"kernels\", \"cpu_isa\": \"%s\", \"threads\": %d, \"results\": [",
                vt_kernels_cpu_isa(), vt_default_threads());
        g_first = 1;
    }
    int rc = 0;
    if (o.cpu && o.gemv) rc = bench_cpu(&o, fmts, nf);
    if (!rc && o.cpu && o.gemm) rc = bench_gemm(&o);
    if (!rc && o.cpu && o.dequant) rc = bench_dequant(&o, fmts, nf);
    if (!rc && o.gpu) rc = bench_gpu(&o, fmts, nf);
    if (g_json) {
        fprintf(g_json, "\n]}\n");
        fclose(g_json);
        g_json = NULL;
    }
    return rc ? 1 : 0;
}
