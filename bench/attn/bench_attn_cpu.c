/* CPU attention, three tables from one run:
 *  1. tiled flash kernel vs the naive f32 kernel (scores materialised), same inputs: time
 *     (median of runs), GFLOP/s, and the peak bytes allocated through vt_malloc during the call
 *     (counted by an allocation hook) beside the formula for each kernel (H 8 = Hkv, f16 K/V);
 *  2. prefill, flash only: H 32, Hkv 8, D 128, f16 K/V, Nq = Nk = 512..max_N, causal and not;
 *  3. decode: Nq 1 and 4, Nk 4k..max_Nk, H 32, Hkv 8, D 128, f16 / q8_0 / q4_0 caches, with the
 *     K/V bytes read per second (decode is bandwidth-bound) beside a plain threaded read of the
 *     same number of bytes in the same run.
 * GFLOP/s are also given as a share of the machine's FMA peak, measured in the same run by a
 * register-only FMA loop on every thread (AVX-512 or AVX2 by the CPU, not by VT_KERNELS_*; on a
 * loaded machine it varies as much as the kernels do). Writes bench_attn_cpu.json.
 * Usage: bench_attn_cpu [max_N] [threads] [runs] [max_decode_Nk]: max_N 0 skips tables 1-2,
 * table 1 stops at 2048, max_decode_Nk below 4096 skips table 3 (decode runs 5x runs).
 * VT_BENCH_KV=f16,int8,nf4,... picks the decode table's caches (default f16, q8_0, q4_0; not nvfp4,
 * whose cache needs a tensor scale). */
#include <errno.h>
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../bench_util.h"
#include "vtstore/attn.h"
#include "vtstore/quant.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

/* allocation accounting: a 16-byte header keeps each block's size */
static _Atomic long long cur_bytes, peak_bytes;
static void *cnt_malloc(size_t n) {
    size_t *p = malloc(n + 16);
    if (!p) return NULL;
    p[0] = n;
    long long c = atomic_fetch_add(&cur_bytes, (long long)n) + (long long)n;
    long long pk = atomic_load(&peak_bytes);
    while (c > pk && !atomic_compare_exchange_weak(&peak_bytes, &pk, c)) {
    }
    return (char *)p + 16;
}
static void *cnt_calloc(size_t n, size_t s) {
    void *p = cnt_malloc(n * s);
    if (p) memset(p, 0, n * s);
    return p;
}
static void cnt_free(void *q) {
    if (!q) return;
    size_t *p = (size_t *)((char *)q - 16);
    atomic_fetch_sub(&cur_bytes, (long long)p[0]);
    free(p);
}
static void *cnt_realloc(void *q, size_t n) {
    void *r = cnt_malloc(n);
    if (r && q) {
        size_t old = ((size_t *)((char *)q - 16))[0];
        memcpy(r, q, old < n ? old : n);
        cnt_free(q);
    }
    return r;
}

/* ---- machine FMA peak: independent FMA chains in registers, one task per thread ---- */
#define PEAK_ITERS 20000000ull
#if defined(__x86_64__)
__attribute__((target("avx512f"))) static float fma_loop512(void) {
    __m512 a[12], x = _mm512_set1_ps(0.999f), y = _mm512_set1_ps(1e-4f);
    for (int i = 0; i < 12; i++) a[i] = _mm512_set1_ps((float)i);
    for (uint64_t it = 0; it < PEAK_ITERS; it++)
#pragma GCC unroll 12
        for (int i = 0; i < 12; i++) a[i] = _mm512_fmadd_ps(a[i], x, y);
    for (int i = 1; i < 12; i++) a[0] = _mm512_add_ps(a[0], a[i]);
    return _mm512_reduce_add_ps(a[0]);
}
__attribute__((target("avx2,fma"))) static float fma_loop256(void) {
    __m256 a[12], x = _mm256_set1_ps(0.999f), y = _mm256_set1_ps(1e-4f);
    for (int i = 0; i < 12; i++) a[i] = _mm256_set1_ps((float)i);
    for (uint64_t it = 0; it < PEAK_ITERS; it++)
#pragma GCC unroll 12
        for (int i = 0; i < 12; i++) a[i] = _mm256_fmadd_ps(a[i], x, y);
    for (int i = 1; i < 12; i++) a[0] = _mm256_add_ps(a[0], a[i]);
    float t[8];
    _mm256_storeu_ps(t, a[0]);
    return t[0];
}
#endif
static int peak_lanes(void) {
#if defined(__x86_64__)
    int f = vt_cpu_features();
    if (f & VT_CPU_AVX512F) return 16;
    if ((f & VT_CPU_AVX2) && (f & VT_CPU_FMA)) return 8;
#endif
    return 0;
}
static volatile float peak_sink;
static int peak_task(void *ctx, uint64_t i, int tid) {
    (void)ctx, (void)i, (void)tid;
#if defined(__x86_64__)
    peak_sink = peak_lanes() == 16 ? fma_loop512() : fma_loop256();
#endif
    return 0;
}
/* GFLOP/s of `threads` threads running FMA chains (0 when the CPU has no AVX2/FMA). */
static double fma_peak(int threads) {
    int lanes = peak_lanes();
    if (!lanes) return 0;
    double t0 = vt_now();
    vt_parallel_for((uint64_t)threads, peak_task, NULL, threads);
    double s = vt_now() - t0;
    return (double)threads * PEAK_ITERS * 12 * lanes * 2 / s / 1e9;
}

static float *rand_buf(uint64_t n) {
    float *x = malloc(n * sizeof(float));
    for (uint64_t i = 0; x && i < n; i++) x[i] = rand() / (float)RAND_MAX - 0.5f;
    return x;
}

/* p: Q [H][nq][D] f32 over the whole of kv, output o, on @p threads threads. */
static void attn_params(vt_attn_params *p, const float *q, uint32_t H, uint64_t nq, int causal,
                        float *o, int threads, vt_kv_cache *kv) {
    vt_attn_params_init(p);
    p->q = q;
    p->n_heads = H;
    p->n_q = nq;
    p->causal = causal;
    p->o = o;
    p->nthreads = threads;
    vt_kv_cache_view(kv, &p->kv);
}

/* Median ms of `runs` calls of vt_attn_forward(p) after one warm-up call; -1 on error. */
static double time_forward(const vt_attn_params *p, int runs) {
    double t[64];
    int nr = runs < 64 ? runs : 64;
    int rc = vt_attn_forward(p);
    for (int r = 0; r < nr && !rc; r++) {
        double t0 = vt_now();
        rc = vt_attn_forward(p);
        t[r] = vt_now() - t0;
    }
    if (rc) {
        fprintf(stderr, "bench: %s: %s\n", vt_strerror(rc), vt_last_error());
        return -1;
    }
    qsort(t, (size_t)nr, sizeof t[0], bench_cmp_d);
    return t[nr / 2] * 1e3;
}

/* ---- plain read baseline: each thread sums its share of a buffer (vector loads) ---- */
typedef struct {
    const uint8_t *buf;
    uint64_t bytes, share; /* share: bytes per task, a multiple of 64 */
    double sum[64];
} read_ctx;
#if defined(__x86_64__)
__attribute__((target("avx2"))) static double read_avx2(const uint8_t *p, uint64_t n) {
    __m256i a0 = _mm256_setzero_si256(), a1 = a0;
    for (uint64_t o = 0; o + 64 <= n; o += 64) {
        a0 = _mm256_add_epi32(a0, _mm256_loadu_si256((const __m256i *)(p + o)));
        a1 = _mm256_add_epi32(a1, _mm256_loadu_si256((const __m256i *)(p + o + 32)));
    }
    int32_t t[8];
    _mm256_storeu_si256((__m256i *)t, _mm256_add_epi32(a0, a1));
    return t[0];
}
#endif
static int read_task(void *vctx, uint64_t i, int tid) {
    (void)tid;
    read_ctx *c = vctx;
    uint64_t o = i * c->share, n = o >= c->bytes             ? 0
                                   : c->bytes - o < c->share ? c->bytes - o
                                                             : c->share;
    double s = 0;
#if defined(__x86_64__)
    if (vt_cpu_features() & VT_CPU_AVX2)
        s = read_avx2(c->buf + o, n);
    else
#endif
        for (uint64_t k = 0; k < n; k += 64) s += c->buf[o + k];
    c->sum[i % 64] += s;
    return 0;
}
/* GB/s reading @p bytes of @p buf on @p threads threads (one share each), median of runs. */
static double read_gbs(const uint8_t *buf, uint64_t bytes, int threads, int runs) {
    read_ctx c = {.buf = buf, .bytes = bytes};
    c.share = (bytes / (uint64_t)threads + 63) / 64 * 64;
    double t[64];
    int nr = runs < 64 ? runs : 64;
    vt_parallel_for((uint64_t)threads, read_task, &c, threads);
    for (int r = 0; r < nr; r++) {
        double t0 = vt_now();
        vt_parallel_for((uint64_t)threads, read_task, &c, threads);
        t[r] = vt_now() - t0;
    }
    return bytes / bench_median(t, nr) / 1e9;
}

/* Cache of Hkv heads x n tokens of D random values in format fmt, or NULL (message printed). */
static vt_kv_cache *make_cache(uint32_t fmt, uint32_t Hkv, uint32_t D, uint64_t n) {
    uint64_t nkv = (uint64_t)Hkv * n * D;
    float *k = rand_buf(nkv), *v = rand_buf(nkv);
    vt_kv_cache_config cc = {
        .location = VT_LOC_HOST, .format = fmt, .n_kv_heads = Hkv, .head_dim = D, .capacity = n};
    vt_kv_cache *kv = NULL;
    int rc = k && v ? vt_kv_cache_create(&cc, &kv) : -ENOMEM;
    if (!rc) rc = vt_kv_cache_append(kv, k, v, VT_DTYPE_F32, n, NULL);
    if (rc) {
        fprintf(stderr, "bench: cache: %s: %s\n", vt_strerror(rc), vt_last_error());
        vt_kv_cache_destroy(kv);
        kv = NULL;
    }
    free(k), free(v);
    return kv;
}

/* Table 2: prefill with GQA, flash only. */
static int bench_prefill(uint64_t max_n, int threads, int runs, double peak, FILE *js) {
    const uint32_t H = 32, Hkv = 8, D = 128;
    printf("\nprefill: H %u, Hkv %u, D %u, f16 K/V, f32 Q/O, %d threads, median of %d\n", H, Hkv, D,
           threads, runs);
    printf("%6s %6s | %10s %8s %7s\n", "N", "causal", "flash ms", "GFLOP/s", "%peak");
    for (uint64_t n = 512; n <= max_n; n *= 2) {
        vt_kv_cache *kv = make_cache(VT_FMT_F16, Hkv, D, n);
        float *q = rand_buf((uint64_t)H * n * D), *o = malloc((uint64_t)H * n * D * 4);
        if (!kv || !q || !o) return 1;
        for (int causal = 0; causal < 2; causal++) {
            vt_attn_params p;
            attn_params(&p, q, H, n, causal, o, threads, kv);
            double ms = time_forward(&p, runs), fl = vt_attn_flops(&p);
            if (ms < 0) return 1;
            printf("%6llu %6s | %10.2f %8.2f %6.1f%%\n", (unsigned long long)n,
                   causal ? "yes" : "no", ms, fl / ms / 1e6, peak > 0 ? fl / ms / 1e4 / peak : 0);
            if (js)
                fprintf(js,
                        ",\n{\"table\": \"prefill\", \"n\": %llu, \"causal\": %d, \"H\": %u, "
                        "\"Hkv\": %u, \"D\": %u, \"flash_ms\": %.4f, \"flops\": %.0f}",
                        (unsigned long long)n, causal, H, Hkv, D, ms, fl);
        }
        vt_kv_cache_destroy(kv);
        free(q), free(o);
    }
    return 0;
}

/* Table 3: decode over long caches. */
static int bench_decode(uint64_t max_nk, int threads, int runs, double peak, FILE *js) {
    const uint32_t H = 32, Hkv = 8, D = 128;
    /* the caches: f16, q8_0, q4_0, or VT_BENCH_KV (a comma-separated list of format names) */
    uint32_t fmts[16] = {VT_FMT_F16, VT_FMT_Q8_0, VT_FMT_Q4_0};
    const char *names[16] = {"f16", "q8_0", "q4_0"};
    int nf = 3;
    static char kvl[256];
    const char *ev = getenv("VT_BENCH_KV");
    if (ev && strlen(ev) < sizeof kvl) {
        strcpy(kvl, ev);
        nf = 0;
        for (char *t = strtok(kvl, ","); t && nf < 16; t = strtok(NULL, ",")) {
            uint32_t f;
            if (vt_format_from_name(t, &f)) {
                fprintf(stderr, "bench_attn_cpu: VT_BENCH_KV: unknown format '%s'\n", t);
                return 1;
            }
            fmts[nf] = f, names[nf++] = t;
        }
    }
    printf("\ndecode: H %u, Hkv %u, D %u, f32 Q/O, causal, %d threads, median of %d\n", H, Hkv, D,
           threads, runs);
    printf("(read: a plain %d-thread read of the same number of bytes, same run)\n", threads);
    printf("%5s %3s %6s | %9s %8s %7s %8s %8s %6s\n", "kv", "Nq", "Nk", "ms", "GFLOP/s", "%peak",
           "KV GB/s", "read", "%read");
    float *q = rand_buf((uint64_t)H * 8 * D), *o = malloc((uint64_t)H * 8 * D * 4);
    uint64_t rmax = 2ull * Hkv * max_nk * vt_attn_row_bytes(VT_FMT_F16, D);
    uint8_t *rbuf = malloc(rmax);
    if (!q || !o || !rbuf) return 1;
    memset(rbuf, 1, rmax);
    for (int f = 0; f < nf; f++) {
        vt_kv_cache *kv = make_cache(fmts[f], Hkv, D, max_nk);
        if (!kv) return 1;
        for (uint64_t nk = 4096; nk <= max_nk; nk *= 2)
            for (uint64_t nq = 1; nq <= 4; nq *= 4) {
                vt_attn_params p;
                attn_params(&p, q, H, nq, 1, o, threads, kv);
                p.kv.n_tokens = nk; /* a prefix of the cache */
                double ms = time_forward(&p, runs), fl = vt_attn_flops(&p);
                if (ms < 0) return 1;
                double bytes = 2.0 * Hkv * nk * (double)vt_attn_row_bytes(fmts[f], D);
                double rd = read_gbs(rbuf, (uint64_t)bytes, threads, runs);
                printf("%5s %3llu %6llu | %9.3f %8.2f %6.1f%% %8.2f %8.2f %5.0f%%\n", names[f],
                       (unsigned long long)nq, (unsigned long long)nk, ms, fl / ms / 1e6,
                       peak > 0 ? fl / ms / 1e4 / peak : 0, bytes / ms / 1e6, rd,
                       100.0 * bytes / ms / 1e6 / rd);
                if (js)
                    fprintf(js,
                            ",\n{\"table\": \"decode\", \"kv\": \"%s\", \"nq\": %llu, "
                            "\"nk\": %llu, \"H\": %u, \"Hkv\": %u, \"D\": %u, \"ms\": %.4f, "
                            "\"flops\": %.0f, \"kv_bytes\": %.0f, \"read_gbs\": %.3f}",
                            names[f], (unsigned long long)nq, (unsigned long long)nk, H, Hkv, D, ms,
                            fl, bytes, rd);
            }
        vt_kv_cache_destroy(kv);
    }
    free(q), free(o), free(rbuf);
    return 0;
}

int main(int argc, char **argv) {
    uint64_t max_n = argc > 1 ? strtoull(argv[1], NULL, 0) : 2048;
    int threads = argc > 2 ? atoi(argv[2]) : 0, runs = argc > 3 ? atoi(argv[3]) : 3;
    uint64_t max_nk = argc > 4 ? strtoull(argv[4], NULL, 0) : 32768;
    if (threads <= 0) threads = vt_default_threads();
    double fpeak = fma_peak(threads);
    printf("FMA peak, %d threads: %.1f GFLOP/s (register-only FMA chains)\n", threads, fpeak);
    const uint32_t H = 8, Hkv = 8, D = 128;
    vt_hooks hk = {cnt_malloc, cnt_calloc, cnt_realloc, cnt_free, NULL, NULL, NULL};
    FILE *js = fopen("bench_attn_cpu.json", "w");
    if (js)
        fprintf(
            js,
            "{\"threads\": %d, \"fma_peak_gflops\": %.2f, \"H\": %u, \"D\": %u, \"results\": [\n",
            threads, fpeak, H, D);
    printf("CPU attention, H %u (Hkv %u), D %u, f16 K/V, f32 Q/O, %d threads, median of %d\n", H,
           Hkv, D, threads, runs);
    printf("%6s %6s %7s | %10s %8s %11s %11s | %10s %8s %11s %11s | %7s\n", "N", "causal", "kv",
           "naive ms", "GFLOP/s", "peak MiB", "formula", "flash ms", "GFLOP/s", "peak MiB",
           "formula", "speedup");
    int first = 1;
    for (uint64_t n = 256; n <= max_n && n <= 2048; n *= 2)
        for (int causal = 0; causal < 2; causal++) {
            uint64_t nkv = (uint64_t)Hkv * n * D, nqo = (uint64_t)H * n * D;
            float *k = malloc(nkv * 4), *v = malloc(nkv * 4), *q = malloc(nqo * 4),
                  *o = malloc(nqo * 4);
            srand(1);
            for (uint64_t i = 0; i < nkv; i++) k[i] = rand() / (float)RAND_MAX - 0.5f;
            for (uint64_t i = 0; i < nkv; i++) v[i] = rand() / (float)RAND_MAX - 0.5f;
            for (uint64_t i = 0; i < nqo; i++) q[i] = rand() / (float)RAND_MAX - 0.5f;
            vt_kv_cache_config cc = {.location = VT_LOC_HOST,
                                     .format = VT_FMT_F16,
                                     .n_kv_heads = Hkv,
                                     .head_dim = D,
                                     .capacity = n};
            vt_kv_cache *kv;
            if (vt_kv_cache_create(&cc, &kv) ||
                vt_kv_cache_append(kv, k, v, VT_DTYPE_F32, n, NULL)) {
                fprintf(stderr, "bench: %s\n", vt_last_error());
                return 1;
            }
            vt_attn_params p;
            attn_params(&p, q, H, n, causal, o, threads, kv);
            double ms[2], peak[2], formula[2];
            for (int a = 0; a < 2; a++) {
                p.algo = a ? VT_ATTN_FLASH : VT_ATTN_NAIVE;
                double t[16];
                int nr = runs < 16 ? runs : 16;
                for (int r = 0; r < nr; r++) {
                    atomic_store(&cur_bytes, 0);
                    atomic_store(&peak_bytes, 0);
                    vt_hooks_set(&hk);
                    double t0 = vt_now();
                    int rc = vt_attn_forward(&p);
                    t[r] = vt_now() - t0;
                    vt_hooks_set(NULL);
                    if (rc) {
                        fprintf(stderr, "bench: %s: %s\n", vt_strerror(rc), vt_last_error());
                        return 1;
                    }
                }
                qsort(t, (size_t)nr, sizeof t[0], bench_cmp_d);
                ms[a] = t[nr / 2] * 1e3;
                peak[a] = (double)atomic_load(&peak_bytes);
            }
            /* naive: per head in flight K,V as f32 + the score matrix + one Q row;
             * flash: per task (64 rows of one K/V head) Q, acc, scores, m/l/alpha/lim + the
             * K^T, V and K-row tiles (D = 128 is a multiple of every P·V tile width: Dv = D) */
            int inflight = threads < (int)H ? threads : (int)H;
            formula[0] = inflight * ((double)n * D * 8 + (double)n * n * 4 + D * 4);
            double rows = 64, tasks = (double)Hkv * ceil((double)n / 64);
            formula[1] = (tasks < threads ? tasks : threads) *
                         (rows * (2.0 * D + 64 + 5) * 4 + 3.0 * 64 * D * 4);
            double fl = vt_attn_flops(&p);
            printf("%6llu %6s %7s | %10.2f %8.2f %11.2f %11.2f | %10.2f %8.2f %11.3f %11.3f | "
                   "%6.2fx\n",
                   (unsigned long long)n, causal ? "yes" : "no", "f16", ms[0], fl / ms[0] / 1e6,
                   peak[0] / 1048576, formula[0] / 1048576, ms[1], fl / ms[1] / 1e6,
                   peak[1] / 1048576, formula[1] / 1048576, ms[0] / ms[1]);
            if (js)
                fprintf(
                    js,
                    "%s{\"table\": \"naive_vs_flash\", \"n\": %llu, \"causal\": %d, \"naive_ms\": "
                    "%.4f, \"flash_ms\": %.4f, "
                    "\"naive_peak_bytes\": %.0f, \"naive_formula_bytes\": %.0f, "
                    "\"flash_peak_bytes\": %.0f, \"flash_formula_bytes\": %.0f, \"flops\": %.0f}",
                    first ? "" : ",\n", (unsigned long long)n, causal, ms[0], ms[1], peak[0],
                    formula[0], peak[1], formula[1], fl);
            first = 0;
            vt_kv_cache_destroy(kv);
            free(k), free(v), free(q), free(o);
        }
    if (first && js) fprintf(js, "{\"table\": \"none\"}");
    if (max_n && bench_prefill(max_n, threads, runs, fpeak, js)) return 1;
    if (max_nk >= 4096 && bench_decode(max_nk, threads, runs * 5, fpeak, js)) return 1;
    if (js) {
        fprintf(js, "\n]}\n");
        fclose(js);
    }
    return 0;
}
