/* tests/kernels/test_dequant_dev_host.c — the CUDA kernels' per-format decoders
 * (kernels/cuda/dequant_dev.cuh, kparams.cuh) executed on the host against vt_dequantize_ref:
 * every format and 2:4 variant, ragged shapes, nf4_dq rows crossing super-blocks, nvfp4 rows of
 * an odd number of 16-value blocks, weights at odd addresses; the direct decoder and the
 * staged path with the dequantize and GEMV kernels' tile sizes, the dequantize kernel's grid
 * (CTAs over several tiles, cp.async double buffering, emulated CTAs) and its f32/f16/bf16
 * conversion. Needs nvcc, not a GPU. */
#include "kern_internal.h"
#include "kern_test_util.h"

int kt_host_decode(const vt_kdesc *d, int mode, float *out, char *why, size_t cap);
void kt_host_decode_counts(unsigned long long *multi, unsigned long long *multi_sparse,
                           unsigned long long *plain_vec);

/* 48 and 8240 = 16 * odd: nvfp4 rows end on a half unit; 9 x 2000: nf4_dq rows cross
 * super-blocks; 8240 > 8192: two dequantize tiles per row; 7 x 1536 (48 units, 6 q4_k
 * super-blocks) and 11 x 96: the dequantize's flat mode, CTAs of 256 units starting mid-row. */
static const uint64_t shapes[][2] = {{3, 48},   {5, 100}, {4, 257},  {9, 2000},
                                     {2, 8240}, {6, 130}, {7, 1536}, {11, 96}};
static uint64_t n_checked; /* values compared, all modes */
static const char *mode_name[] = {"direct",
                                  "staged (dequant tile)",
                                  "staged (gemv tile)",
                                  "dequant CTA, f32 out",
                                  "dequant CTA, f16 out",
                                  "dequant CTA flat, f32 out",
                                  "dequant CTA flat, f16 out"};
static uint64_t n_flat, n_sparse; /* weights checked in flat mode, 2:4 through the tile */

static void check_one(const kt_weight *k, const char *nm, size_t shape, void *ctx) {
    (void)shape;
    (void)ctx;
    uint64_t n = k->rows * k->cols;
    size_t bytes = vt_quant_bytes(k->fmt, k->rows, k->cols);
    float *out = malloc(n * sizeof(float));
    for (int shift = 0; shift < 2; shift++) {
        /* the bytes at an odd address (sub-handles and 2:4 rows can start anywhere) */
        uint8_t *buf = malloc(bytes + 7);
        memcpy(buf + 7 * shift, k->q, bytes);
        vt_weight w = k->w;
        w.data = buf + 7 * shift;
        vt_kdesc d;
        int rc = vt_kdesc_init(&d, &w, "test");
        CHECKF(rc == 0, "%s: vt_kdesc_init: %s", nm, vt_last_error());
        for (int mode = 0; mode < 7 && rc == 0; mode++) {
            char why[160] = "";
            kt_poison(out, n);
            int r = kt_host_decode(&d, mode, out, why, sizeof why);
            if (r == 77) continue;
            CHECKF(r == 0, "%s %llux%llu %s: %s %s", nm, (unsigned long long)k->rows,
                   (unsigned long long)k->cols, mode_name[mode], why, r > 1 ? vt_last_error() : "");
            if (r) continue;
            n_flat += mode == 5;
            n_sparse += mode == 3 && d.sparse;
            uint64_t bad = 0, inexact = 0, first = 0;
            n_checked += n;
            for (uint64_t i = 0; i < n; i++) {
                float a = out[i], b = k->deq[i];
                int ok;
                if (mode == 4 || mode == 6) {
                    /* f16 output: the reference rounded to f16, or the f16 of any value within
                     * the f32 tolerance of it (AWQ's division is within 1.5 ulp in f32, which
                     * can round to the neighbouring f16) */
                    float r[3] = {b - 1e-6f * fabsf(b), b, b + 1e-6f * fabsf(b)};
                    uint16_t h[3];
                    vt_f32_to_f16_row(r, h, 3);
                    vt_f16_to_f32_row(h, r, 3);
                    b = r[1];
                    ok = a >= r[0] && a <= r[2];
                } else
                    ok = fabsf(a - b) <= 1e-6f * fabsf(b) + 1e-30f;
                if (memcmp(&a, &b, sizeof a)) inexact++;
                if (!ok) {
                    if (!bad) first = i;
                    bad++;
                }
            }
            CHECKF(bad == 0,
                   "%s %llux%llu %s, base+%d: %llu of %llu values differ; first at row %llu col "
                   "%llu: %g, want %g",
                   nm, (unsigned long long)k->rows, (unsigned long long)k->cols, mode_name[mode],
                   7 * shift, (unsigned long long)bad, (unsigned long long)n,
                   (unsigned long long)(first / k->cols), (unsigned long long)(first % k->cols),
                   out[first], k->deq[first]);
            if (!bad && inexact)
                printf("%s %llux%llu %s: %llu values within 1e-6 but not bit-equal\n", nm,
                       (unsigned long long)k->rows, (unsigned long long)k->cols, mode_name[mode],
                       (unsigned long long)inexact);
        }
        free(buf);
    }
    free(out);
}

int main(void) {
    vt_test_seed();
    kt_for_each_weight(shapes, sizeof shapes / sizeof shapes[0], check_one, NULL);
    printf("%llu decoded values compared; %llu weights in the dequantize's flat mode\n",
           (unsigned long long)n_checked, (unsigned long long)n_flat);
    CHECKF(n_flat > 0, "no shape exercised the flat mode");
    CHECKF(n_sparse > 0, "no 2:4 weight went through the dequantize's tile");
    unsigned long long multi = 0, multi_sparse = 0, plain_vec = 0;
    kt_host_decode_counts(&multi, &multi_sparse, &plain_vec);
    printf("%llu dequantize grids with CTAs over several tiles; %llu plain weights in 16-byte "
           "steps\n",
           multi, plain_vec);
    CHECKF(multi > 0, "no dequantize grid had a CTA over several tiles");
    CHECKF(multi_sparse > 0, "no 2:4 dequantize grid had a CTA over several tiles");
    CHECKF(plain_vec > 0, "no f32/f16/bf16 weight took the 16-byte conversion");
    return vt_test_done("test_dequant_dev_host");
}
