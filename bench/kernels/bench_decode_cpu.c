/* bench/kernels/bench_decode_cpu.c — the host row decoders alone (kernels/cpu/decode_*.c), one
 * thread, as the CPU GEMM calls them: rows of a weight that stays in L2, VT_KC columns at a time
 * into one L1-resident buffer. Per format the decoder vt_kdecode_get(d, 1) picks and the scalar
 * one, alternated run by run (same load), medians; GB/s of f32 output. Internal: includes
 * kernels/kern_internal.h (the public API has no per-chunk decode).
 *   bench_decode_cpu [--formats a,b,...] [--rows N] [--cols N] [--runs N] [--json FILE] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../bench_util.h"
#include "kernels/kern_internal.h"
#include "vtstore/blocks.h"
#include "vtstore/kernels.h"

/* decode_avx2.c's table (not in kern_internal.h: only this benchmark reaches past the selection) */
extern const vt_kdecode_fn vt_kdecode_avx2_table[VT_FMT_COUNT];

static float rnd_normal(void) {
    float s = 0; /* sum of 4 uniforms: bell-shaped enough for quantizer input */
    for (int i = 0; i < 4; i++) s += (float)((bench_rand() >> 40) * 0x1.0p-24) - 0.5f;
    return s;
}

/* rows x cols of fmt: quantized N(0,1)-like data; q4_k / q6_k random blocks with 2^-8 scales. */
static int make(uint32_t fmt, uint64_t rows, uint64_t cols, uint8_t **q, float **sc,
                vt_quant_params *p) {
    uint64_t bytes = vt_quant_bytes(fmt, rows, cols);
    uint32_t base = VT_FMT_BASE(fmt);
    *q = vt_malloc(bytes);
    *sc = NULL;
    vt_quant_params_init(p);
    if (!*q) return -1;
    if (base == VT_FMT_Q4_K || base == VT_FMT_Q6_K) {
        uint32_t bb = base == VT_FMT_Q4_K ? 144 : 210, off = base == VT_FMT_Q4_K ? 0 : 208;
        for (uint64_t i = 0; i < bytes; i++) (*q)[i] = (uint8_t)bench_rand();
        for (uint64_t b = 0; b < bytes / bb; b++) {
            (*q)[b * bb + off] = 0x00, (*q)[b * bb + off + 1] = 0x1c;
            if (base == VT_FMT_Q4_K) (*q)[b * bb + 2] = 0x00, (*q)[b * bb + 3] = 0x1c;
        }
        return 0;
    }
    float *w = vt_malloc(rows * cols * sizeof(float));
    if (!w) return -1;
    for (uint64_t i = 0; i < rows * cols; i++) w[i] = rnd_normal();
    if (base == VT_FMT_AWQ_INT4) {
        *sc = vt_malloc(cols * sizeof(float));
        if (!*sc) {
            vt_free(w);
            return -1;
        }
        for (uint64_t j = 0; j < cols; j++)
            (*sc)[j] = 0.5f + (float)(bench_rand() % 1000) / 1000.0f;
        p->channel_scale = *sc;
        p->channel_count = cols;
    }
    int rc = vt_quant_observe(fmt, p, w, rows * cols);
    if (!rc) rc = vt_quantize(fmt, p, w, rows, cols, *q, 1);
    vt_free(w);
    return rc;
}

/* One pass over every row and chunk; seconds. */
static double pass(const vt_kdesc *d, vt_kdecode_fn fn, float *buf, volatile float *sink) {
    double t0 = vt_now();
    for (uint64_t r = 0; r < d->rows; r++)
        for (uint64_t k0 = 0; k0 < d->cols; k0 += VT_KC) {
            uint32_t n = (uint32_t)(d->cols - k0 < VT_KC ? d->cols - k0 : VT_KC);
            fn(d, r, k0, n, buf);
            *sink += buf[r % n];
        }
    return vt_now() - t0;
}

int main(int argc, char **argv) {
    const char *formats = "f16,bf16,q8_0,q4_0,q4_1,q4_k,q6_k,int8,nf4,nf4_dq,nvfp4,mxfp4,awq_int4,"
                          "q4_0+2:4,q8_0+2:4";
    uint64_t rows = 64, cols = 4096;
    int runs = 21;
    const char *json = NULL;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--formats"))
            formats = argv[i + 1];
        else if (!strcmp(argv[i], "--rows"))
            rows = strtoull(argv[i + 1], NULL, 0);
        else if (!strcmp(argv[i], "--cols"))
            cols = strtoull(argv[i + 1], NULL, 0);
        else if (!strcmp(argv[i], "--runs"))
            runs = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--json"))
            json = argv[i + 1];
        else {
            fprintf(stderr, "bench_decode_cpu: unknown option '%s'\n", argv[i]);
            return 2;
        }
    }
    if (argc % 2 == 0 || !rows || !cols || runs < 1 || runs > 101) {
        fprintf(stderr, "usage: bench_decode_cpu [--formats a,b,...] [--rows N] [--cols N] "
                        "[--runs 1..101] [--json FILE]\n");
        return 2;
    }
    FILE *js = json ? fopen(json, "w") : NULL;
    if (js)
        fprintf(js, "{\"bench\": \"decode_cpu\", \"isa\": \"%s\", \"results\": [",
                vt_kernels_cpu_isa());
    double l0 = bench_load1();
    printf("host row decoders, 1 thread, %llux%llu weight, VT_KC=%d chunks into an L1 buffer; "
           "fast (%s) vs scalar alternated, medians of %d runs; GB/s of f32 output\n",
           (unsigned long long)rows, (unsigned long long)cols, VT_KC, vt_kernels_cpu_isa(), runs);
    printf("%-12s %9s %9s %9s %9s %9s %9s\n", "format", "fast ms", "fast GB/s", "avx2 GB/s",
           "x avx2", "scal GB/s", "x scalar");
    char buf_[512];
    snprintf(buf_, sizeof buf_, "%s", formats);
    float *buf = vt_malloc(VT_KC * sizeof(float));
    volatile float sink = 0;
    int first = 1, rc = 0;
    for (char *s = strtok(buf_, ","); s && buf; s = strtok(NULL, ",")) {
        uint32_t fmt;
        if (vt_format_from_name(s, &fmt)) {
            fprintf(stderr, "bench_decode_cpu: unknown format '%s'\n", s);
            rc = 2;
            break;
        }
        uint8_t *q;
        float *sc;
        vt_quant_params p;
        vt_weight w;
        vt_kdesc d;
        if (make(fmt, rows, cols, &q, &sc, &p)) {
            printf("%-12s skipped: %s\n", s, vt_last_error());
            vt_free(q);
            vt_free(sc);
            continue;
        }
        vt_weight_host(&w, q, fmt, rows, cols, &p);
        if (vt_kdesc_init(&d, &w, "bench") == 0) {
            vt_kdecode_fn fast = vt_kdecode_get(&d, 1), ref = vt_kdecode_get(&d, 0), a2 = NULL;
            if (!d.sparse && vt_kcpu_avx2() && vt_kdecode_avx2_table[d.fmt] &&
                vt_kdecode_avx2_table[d.fmt] != fast)
                a2 = vt_kdecode_avx2_table[d.fmt];
            double tf[101], tr[101], t2[101];
            pass(&d, fast, buf, &sink); /* warm the weight into cache */
            for (int r = 0; r < runs; r++) {
                tf[r] = pass(&d, fast, buf, &sink);
                t2[r] = a2 ? pass(&d, a2, buf, &sink) : tf[r];
                tr[r] = pass(&d, ref, buf, &sink);
            }
            double mf = bench_median(tf, runs), mr = bench_median(tr, runs),
                   m2 = bench_median(t2, runs);
            double out = (double)rows * cols * 4;
            printf("%-12s %9.4f %9.2f %9.2f %8.2fx %9.2f %8.2fx\n", s, mf * 1e3, out / mf / 1e9,
                   out / m2 / 1e9, m2 / mf, out / mr / 1e9, mr / mf);
            if (js)
                fprintf(js,
                        "%s\n    {\"format\": \"%s\", \"fast_ms\": %.5f, \"fast_gbs\": %.3f, "
                        "\"avx2_gbs\": %.3f, \"scalar_gbs\": %.3f}",
                        first ? "" : ",", s, mf * 1e3, out / mf / 1e9, out / m2 / 1e9,
                        out / mr / 1e9);
            first = 0;
        }
        vt_free(q);
        vt_free(sc);
    }
    printf("load average (1 min): %.2f at start, %.2f at end\n", l0, bench_load1());
    if (js) {
        fprintf(js, "\n]}\n");
        fclose(js);
    }
    vt_free(buf);
    return rc;
}
