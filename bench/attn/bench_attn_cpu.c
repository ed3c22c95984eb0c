/* CPU attention: tiled flash kernel vs the naive f32 kernel (scores materialised), same inputs
 * and run. Prints time (median of runs), GFLOP/s, and the peak bytes allocated through
 * vt_malloc during the call (counted by an allocation hook) beside the formula for each
 * kernel; writes bench_attn_cpu.json. Usage: bench_attn_cpu [max_N] [threads] [runs]. */
#include <errno.h>
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vtstore/attn.h"

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

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
    uint64_t max_n = argc > 1 ? strtoull(argv[1], NULL, 0) : 2048;
    int threads = argc > 2 ? atoi(argv[2]) : 0, runs = argc > 3 ? atoi(argv[3]) : 3;
    if (threads <= 0) threads = vt_default_threads();
    const uint32_t H = 8, Hkv = 8, D = 128;
    vt_hooks hk = {cnt_malloc, cnt_calloc, cnt_realloc, cnt_free, NULL, NULL, NULL};
    FILE *js = fopen("bench_attn_cpu.json", "w");
    if (js) fprintf(js, "{\"threads\": %d, \"H\": %u, \"D\": %u, \"results\": [\n", threads, H, D);
    printf("CPU attention, H %u (Hkv %u), D %u, f16 K/V, f32 Q/O, %d threads, median of %d\n", H,
           Hkv, D, threads, runs);
    printf("%6s %6s %7s | %10s %8s %11s %11s | %10s %8s %11s %11s | %7s\n", "N", "causal", "kv",
           "naive ms", "GFLOP/s", "peak MiB", "formula", "flash ms", "GFLOP/s", "peak MiB",
           "formula", "speedup");
    int first = 1;
    for (uint64_t n = 256; n <= max_n; n *= 2)
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
            vt_attn_params_init(&p);
            p.q = q;
            p.n_heads = H;
            p.n_q = n;
            p.causal = causal;
            p.o = o;
            p.nthreads = threads;
            vt_kv_cache_view(kv, &p.kv);
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
                qsort(t, (size_t)nr, sizeof t[0], cmp_d);
                ms[a] = t[nr / 2] * 1e3;
                peak[a] = (double)atomic_load(&peak_bytes);
            }
            /* naive: per head in flight K,V as f32 + the score matrix + one Q row;
             * flash: per task (64 rows of one K/V head) Q, acc, scores, m/l/lim + K^T, V tiles */
            int inflight = threads < (int)H ? threads : (int)H;
            formula[0] = inflight * ((double)n * D * 8 + (double)n * n * 4 + D * 4);
            double rows = 64, tasks = (double)Hkv * ceil((double)n / 64);
            formula[1] = (tasks < threads ? tasks : threads) *
                         (rows * (2.0 * D + 64 + 3) * 4 + 2.0 * 64 * D * 4);
            double fl = vt_attn_flops(&p);
            printf("%6llu %6s %7s | %10.2f %8.2f %11.2f %11.2f | %10.2f %8.2f %11.3f %11.3f | "
                   "%6.2fx\n",
                   (unsigned long long)n, causal ? "yes" : "no", "f16", ms[0], fl / ms[0] / 1e6,
                   peak[0] / 1048576, formula[0] / 1048576, ms[1], fl / ms[1] / 1e6,
                   peak[1] / 1048576, formula[1] / 1048576, ms[0] / ms[1]);
            if (js)
                fprintf(
                    js,
                    "%s{\"n\": %llu, \"causal\": %d, \"naive_ms\": %.4f, \"flash_ms\": %.4f, "
                    "\"naive_peak_bytes\": %.0f, \"naive_formula_bytes\": %.0f, "
                    "\"flash_peak_bytes\": %.0f, \"flash_formula_bytes\": %.0f, \"flops\": %.0f}",
                    first ? "" : ",\n", (unsigned long long)n, causal, ms[0], ms[1], peak[0],
                    formula[0], peak[1], formula[1], fl);
            first = 0;
            vt_kv_cache_destroy(kv);
            free(k), free(v), free(q), free(o);
        }
    if (js) {
        fprintf(js, "\n]}\n");
        fclose(js);
    }
    return 0;
}
