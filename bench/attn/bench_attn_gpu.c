/* GPU attention benchmark (our kernels; PyTorch SDPA numbers come from sdpa_baseline.py on the
 * same machine, same shapes). Prefill: f16 Q and K/V, D 64/128, N 1k-16k, causal and not,
 * FLOPs = 4*B*H*N^2*D (halved for causal, counted exactly by vt_attn_flops); decode: one query
 * per sequence, B 1 and 8, H 32, D 128, Nk 4k-128k, K/V cache in f16, q8_0, q4_0, nf4 — time,
 * bytes of K/V read and bandwidth. Writes bench_attn_gpu.json. Exits 77 without a GPU.
 * Usage: bench_attn_gpu [max_prefill_N] [max_decode_Nk] [iters]
 *        bench_attn_gpu --splits [iters]   the decode plan's split count beside other counts
 *            (splits_mode below; default 20 iterations)
 *        bench_attn_gpu --memory [max_N]   device memory of the flash prefill (B 1, H 16, D 128,
 *            f16, causal, N 1k..max_N, default 32k): free memory (cudaMemGetInfo) before the
 *            buffers, after them and after the call, beside the formula Q + K + V + O; the naive
 *            side (PyTorch's math backend, which materialises the scores) is
 *            bench/attn/attn_memory.py. Writes bench_attn_memory.json. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vtstore/attn.h"
#include "vtstore/device.h"

#define TRY(x)                                                                                     \
    do {                                                                                           \
        int rc_ = (x);                                                                             \
        if (rc_) {                                                                                 \
            fprintf(stderr, "%s: %s (%s)\n", #x, vt_strerror(rc_), vt_last_error());               \
            exit(1);                                                                               \
        }                                                                                          \
    } while (0)

static FILE *js;
static int first = 1;

/* Cache of H x capacity tokens filled by appending one random chunk repeatedly. */
static vt_kv_cache *make_cache(uint32_t fmt, uint32_t hkv, uint32_t d, uint64_t n) {
    vt_kv_cache_config cc = {.location = VT_LOC_DEVICE,
                             .format = fmt,
                             .n_kv_heads = hkv,
                             .head_dim = d,
                             .capacity = n,
                             .tensor_scale = 0.01f};
    vt_kv_cache *kv;
    TRY(vt_kv_cache_create(&cc, &kv));
    uint64_t chunk = n < 1024 ? n : 1024, el = (uint64_t)hkv * chunk * d;
    float *h = malloc(el * 4);
    for (uint64_t i = 0; i < el; i++) h[i] = (float)rand() / RAND_MAX * 2 - 1;
    void *dk;
    TRY(vt_dev_malloc(&dk, el * 4));
    TRY(vt_dev_memcpy_h2d(dk, h, el * 4, NULL));
    for (uint64_t t = 0; t < n; t += chunk)
        TRY(vt_kv_cache_append(kv, dk, dk, VT_DTYPE_F32, n - t < chunk ? n - t : chunk, NULL));
    TRY(vt_dev_sync(NULL));
    vt_dev_free(dk);
    free(h);
    return kv;
}

static double time_ms(vt_attn_params *p, int iters) {
    void *e0, *e1;
    TRY(vt_dev_event_create(&e0));
    TRY(vt_dev_event_create(&e1));
    TRY(vt_attn_forward(p)); /* warm-up */
    TRY(vt_dev_event_record(e0, NULL));
    for (int i = 0; i < iters; i++) TRY(vt_attn_forward(p));
    TRY(vt_dev_event_record(e1, NULL));
    TRY(vt_dev_sync(NULL));
    float ms;
    TRY(vt_dev_event_elapsed_ms(e0, e1, &ms));
    vt_dev_event_destroy(e0);
    vt_dev_event_destroy(e1);
    return ms / iters;
}

/* An f16 flash prefill of @p heads heads (= K/V heads), N queries over an f16 cache of N keys,
 * head dim d: the cache in *kv, Q (all ~1.0) and O in *q / *o (free all three after use). */
static void prefill_setup(uint32_t heads, uint64_t n, uint32_t d, int causal, vt_kv_cache **kv,
                          void **q, void **o, vt_attn_params *p) {
    size_t qb = (size_t)heads * n * d * 2;
    *kv = make_cache(VT_FMT_F16, heads, d, n);
    TRY(vt_dev_malloc(q, qb));
    TRY(vt_dev_malloc(o, qb));
    TRY(vt_dev_memset(*q, 0x3c, qb, NULL)); /* ~1.0 in f16 */
    vt_attn_params_init(p);
    p->q = *q, p->q_dtype = VT_DTYPE_F16, p->o = *o, p->o_dtype = VT_DTYPE_F16;
    p->n_heads = heads, p->n_q = n, p->causal = causal, p->algo = VT_ATTN_FLASH;
    vt_kv_cache_view(*kv, &p->kv);
}

static uint64_t free_bytes(void) {
    vt_dev_props pr;
    TRY(vt_dev_sync(NULL));
    TRY(vt_dev_info(&pr));
    return pr.free_bytes;
}

/* Flash prefill device memory: what the call needs beyond its inputs and output (nothing: the
 * prefill takes no workspace and allocates nothing), measured as the change of free memory. */
static int memory_mode(uint64_t max_n) {
    const uint32_t H = 16, D = 128;
    FILE *f = fopen("bench_attn_memory.json", "w");
    if (f) fprintf(f, "{\"h\": %u, \"d\": %u, \"rows\": [\n", H, D);
    printf("flash prefill device memory (B 1, H %u, D %u, f16, causal)\n%6s %12s %12s %12s %12s\n",
           H, D, "N", "buffers MiB", "formula MiB", "call MiB", "workspace");
    for (uint64_t n = 1024; n <= max_n; n *= 2) {
        uint64_t f0 = free_bytes();
        vt_kv_cache *kv;
        void *q, *o;
        vt_attn_params p;
        prefill_setup(H, n, D, 1, &kv, &q, &o, &p);
        size_t qb = (size_t)H * n * D * 2;
        uint64_t ws = vt_attn_workspace_bytes(&p);
        uint64_t f1 = free_bytes();
        TRY(vt_attn_forward(&p));
        uint64_t f2 = free_bytes();
        double mib = 1024.0 * 1024.0, formula = 4.0 * (double)qb;
        printf("%6llu %12.1f %12.1f %12.1f %12llu\n", (unsigned long long)n, (f0 - f1) / mib,
               formula / mib, ((double)f1 - (double)f2) / mib, (unsigned long long)ws);
        if (f)
            fprintf(f,
                    "%s{\"n\": %llu, \"buffers_bytes\": %llu, \"formula_bytes\": %.0f, "
                    "\"call_bytes\": %lld, \"workspace_bytes\": %llu}",
                    n == 1024 ? "" : ",\n", (unsigned long long)n, (unsigned long long)(f0 - f1),
                    formula, (long long)f1 - (long long)f2, (unsigned long long)ws);
        vt_dev_free(q), vt_dev_free(o);
        vt_kv_cache_destroy(kv);
    }
    if (f) {
        fprintf(f, "\n]}\n");
        fclose(f);
    }
    return 0;
}

/* Decode time (ms, mean of iters after a warm-up) of one query per sequence, B sequences, H 32
 * = Hkv, D 128, over a cache of nk tokens in fmt, with the split count splits (0: the plan's
 * choice); *auto_splits gets the plan's count for splits 0 (its pre-rounding bound). */
static double decode_ms(uint32_t fmt, uint32_t b, uint64_t nk, int splits, int iters,
                        long long *auto_splits) {
    uint32_t heads = b * 32;
    vt_kv_cache *kv = make_cache(fmt, heads, 128, nk);
    void *q, *o;
    TRY(vt_dev_malloc(&q, (size_t)heads * 128 * 2));
    TRY(vt_dev_malloc(&o, (size_t)heads * 128 * 4));
    TRY(vt_dev_memset(q, 0x3c, (size_t)heads * 128 * 2, NULL));
    vt_attn_params p;
    vt_attn_params_init(&p);
    p.q = q, p.q_dtype = VT_DTYPE_F16, p.o = o, p.n_heads = heads, p.n_q = 1;
    p.algo = VT_ATTN_DECODE;
    p.num_splits = splits;
    vt_kv_cache_view(kv, &p.kv);
    p.workspace_bytes = vt_attn_workspace_bytes(&p);
    if (auto_splits) /* the workspace: [splits][heads][128 + 2] floats */
        *auto_splits = (long long)(p.workspace_bytes / ((uint64_t)heads * (128 + 2) * 4));
    TRY(vt_dev_malloc(&p.workspace, p.workspace_bytes ? p.workspace_bytes : 4));
    double ms = time_ms(&p, iters);
    vt_dev_free(p.workspace);
    vt_dev_free(q), vt_dev_free(o);
    vt_kv_cache_destroy(kv);
    return ms;
}

/* --splits [iters]: the decode plan's split count against others on the shapes where its goal
 * is close (B 1, Nk 4k-32k; B 8, Nk 4k), for q8_0, q4_0 and nf4 caches: ms at the plan's count
 * (auto), then at half, 3/4, 3/2 and twice it. Writes bench_attn_splits.json. */
static int splits_mode(int iters) {
    const uint32_t fmts[] = {VT_FMT_Q8_0, VT_FMT_Q4_0, VT_FMT_NF4};
    const char *names[] = {"q8_0", "q4_0", "nf4"};
    const double mult[] = {0.5, 0.75, 1.5, 2.0};
    FILE *f = fopen("bench_attn_splits.json", "w");
    if (f) fprintf(f, "{\"iters\": %d, \"rows\": [\n", iters);
    printf("decode split count (H 32 = Hkv, D 128): ms at the plan's count and at others\n"
           "%3s %7s %5s %6s %9s   splits: ms ...\n",
           "B", "Nk", "kv", "auto", "ms");
    int first_row = 1;
    for (int bi = 0; bi < 2; bi++)
        for (uint64_t nk = 4096; nk <= (bi ? 4096u : 32768u); nk *= 2)
            for (int fi = 0; fi < 3; fi++) {
                const uint32_t b = bi ? 8 : 1;
                long long as = 0;
                double ms0 = decode_ms(fmts[fi], b, nk, 0, iters, &as);
                printf("%3u %7llu %5s %6lld %9.4f  ", b, (unsigned long long)nk, names[fi], as,
                       ms0);
                if (f)
                    fprintf(f,
                            "%s{\"b\": %u, \"nk\": %llu, \"kv\": \"%s\", \"auto\": %lld, "
                            "\"auto_ms\": %.5f, \"other\": [",
                            first_row ? "" : ",\n", b, (unsigned long long)nk, names[fi], as, ms0);
                first_row = 0;
                for (int m = 0; m < 4; m++) {
                    int sp = (int)(as * mult[m] + 0.5);
                    if (sp < 1) sp = 1;
                    double ms = decode_ms(fmts[fi], b, nk, sp, iters, NULL);
                    printf(" %d: %.4f", sp, ms);
                    if (f) fprintf(f, "%s{\"splits\": %d, \"ms\": %.5f}", m ? ", " : "", sp, ms);
                }
                printf("\n");
                if (f) fprintf(f, "]}");
            }
    if (f) {
        fprintf(f, "\n]}\n");
        fclose(f);
    }
    return 0;
}

int main(int argc, char **argv) {
    if (!vt_attn_cuda_available()) {
        printf("SKIP: no CUDA device (or a build without CUDA)\n");
        return 77;
    }
    if (argc > 1 && !strcmp(argv[1], "--memory"))
        return memory_mode(argc > 2 ? strtoull(argv[2], NULL, 0) : 32768);
    if (argc > 1 && !strcmp(argv[1], "--splits")) return splits_mode(argc > 2 ? atoi(argv[2]) : 20);
    uint64_t max_n = argc > 1 ? strtoull(argv[1], NULL, 0) : 16384;
    uint64_t max_nk = argc > 2 ? strtoull(argv[2], NULL, 0) : 131072;
    int iters = argc > 3 ? atoi(argv[3]) : 10;
    js = fopen("bench_attn_gpu.json", "w");
    if (js) fprintf(js, "{\"prefill\": [\n");
    const uint32_t B = 2, H = 16; /* prefill: B*H = 32 heads folded */
    printf("prefill (B %u, H %u, f16 Q, f16 K/V)\n%5s %6s %6s %10s %9s\n", B, H, "D", "N", "causal",
           "ms", "TFLOP/s");
    for (uint32_t d = 64; d <= 128; d *= 2)
        for (uint64_t n = 1024; n <= max_n; n *= 2)
            for (int causal = 0; causal < 2; causal++) {
                vt_kv_cache *kv;
                void *q, *o;
                vt_attn_params p;
                prefill_setup(B * H, n, d, causal, &kv, &q, &o, &p);
                double ms = time_ms(&p, iters), tf = vt_attn_flops(&p) / ms / 1e9;
                printf("%5u %6llu %6s %10.3f %9.1f\n", d, (unsigned long long)n,
                       causal ? "yes" : "no", ms, tf);
                if (js)
                    fprintf(js,
                            "%s{\"d\": %u, \"n\": %llu, \"causal\": %d, \"ms\": %.5f, \"tflops\": "
                            "%.3f}",
                            first ? "" : ",\n", d, (unsigned long long)n, causal, ms, tf);
                first = 0;
                vt_dev_free(q), vt_dev_free(o);
                vt_kv_cache_destroy(kv);
            }
    if (js) fprintf(js, "\n], \"decode\": [\n");
    first = 1;
    const uint32_t fmts[] = {VT_FMT_F16, VT_FMT_Q8_0, VT_FMT_Q4_0, VT_FMT_NF4};
    const char *names[] = {"f16", "q8_0", "q4_0", "nf4"};
    printf("\ndecode (H 32 = Hkv, D 128, one query per sequence)\n%3s %8s %6s %10s %12s %9s\n", "B",
           "Nk", "kv", "ms", "KV bytes", "GB/s");
    for (uint32_t b = 1; b <= 8; b *= 8)
        for (uint64_t nk = 4096; nk <= max_nk; nk *= 2)
            for (int f = 0; f < 4; f++) {
                uint32_t heads = b * 32;
                double ms = decode_ms(fmts[f], b, nk, 0, iters, NULL);
                double bytes = 2.0 * heads * nk * (double)vt_attn_row_bytes(fmts[f], 128);
                printf("%3u %8llu %6s %10.4f %12.0f %9.1f\n", b, (unsigned long long)nk, names[f],
                       ms, bytes, bytes / ms / 1e6);
                if (js)
                    fprintf(js,
                            "%s{\"b\": %u, \"nk\": %llu, \"kv\": \"%s\", \"ms\": %.5f, \"bytes\": "
                            "%.0f}",
                            first ? "" : ",\n", b, (unsigned long long)nk, names[f], ms, bytes);
                first = 0;
            }
    if (js) {
        fprintf(js, "\n]}\n");
        fclose(js);
    }
    return 0;
}
