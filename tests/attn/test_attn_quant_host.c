/* tests/attn/test_attn_quant_host.c — the GPU KV cache append (kernels/cuda/attn_quant.cuh, the
 * append kernel's work items) and the attention kernels' K/V row decoder (vt_deq8) executed on
 * the host: every K/V format, head dims 64/128 and ragged ones (96, 40, 3), f32 and f16 input,
 * two appends at an offset into a cache with spare capacity. The stored bytes must equal the row
 * quantizers' (those behind vt_quantize) byte for byte, and vt_deq8 must decode them exactly as
 * vt_dequantize does. The host cache must hold the same bytes, or refuse (-ERANGE, nothing
 * appended) rows with a value beyond the format's range, which the GPU append saturates. Rows mix
 * scales (1e-3 .. 1e3), all-zero blocks, values on rounding ties and near the formats' saturation
 * points. Needs nvcc, not a GPU; what it cannot see is the device's flush-to-zero of subnormal
 * floats (not produced here). */
#include <errno.h>

#include "attn_util.h"
#include "quant_internal.h" /* the row quantizers, without vt_quantize's range check */

int aqh_append(uint32_t fmt, const void *src, int dtype, void *dst, long long capacity,
               long long len, long long n, int Hkv, int D, long long row_bytes, float ts);
int aqh_deq_row(uint32_t fmt, const void *row, int D, float ts, float *out);

static const uint32_t fmts[] = {VT_FMT_F32,  VT_FMT_F16, VT_FMT_BF16,  VT_FMT_Q8_0, VT_FMT_INT8,
                                VT_FMT_Q4_0, VT_FMT_NF4, VT_FMT_NVFP4, VT_FMT_MXFP4};

/* n values [Hkv][tokens][D]: per token a scale, some zero blocks, some ties and large values. */
static float *kv_values(uint64_t n, uint32_t D) {
    float *x = malloc(n * sizeof(float));
    static const float scales[] = {1.0f, 1e-3f, 1e3f, 0.01f, 37.5f};
    for (uint64_t r = 0; r < n / D; r++) {
        float s = scales[vt_rand_u64() % 5];
        int kind = (int)(vt_rand_u64() % 8);
        for (uint32_t d = 0; d < D; d++) {
            float v = s * vt_rand_normal();
            if (kind == 1 && d < 16) v = 0.0f; /* a zero block (nvfp4: one) */
            if (kind == 2) v = s * (float)((int)(vt_rand_u64() % 33) - 16) * 0.25f; /* ties */
            if (kind == 3 && d % 7 == 0) v = (d % 2 ? -6.5f : 449.0f) * s;          /* saturate */
            if (kind == 4) v = 0.0f;                                                /* zero row */
            x[r * D + d] = v;
        }
    }
    return x;
}

/* The bytes vt_quantize writes for @p rows rows of D values, without its range check: the row
 * quantizer itself, which the GPU append mirrors (saturating where the host cache refuses). */
static void ref_rows(uint32_t fmt, const float *x, uint64_t rows, uint32_t D, float ts,
                     uint8_t *dst, uint64_t rb) {
    vt_quant_params p;
    vt_quant_params_init(&p);
    p.tensor_scale = ts > 0.0f ? ts : 1.0f;
    const vt_qrow_ops *ops = vt_qops_get(fmt);
    for (uint64_t r = 0; r < rows; r++) ops->quantize(x + r * D, dst + r * rb, D, &p);
}

/* 1 when a row of x [rows][D] has a value the host cache refuses (-ERANGE). */
static int out_of_range(uint32_t fmt, const float *x, uint64_t rows, uint32_t D, float ts) {
    vt_quant_params p;
    vt_quant_params_init(&p);
    p.tensor_scale = ts > 0.0f ? ts : 1.0f;
    for (uint64_t r = 0; r < rows; r++)
        if (vt_qrange_first(fmt, x + r * D, D, &p) < D) return 1;
    return 0;
}

static int n_accepted, n_refused;

static void one(uint32_t fmt, uint32_t D, vt_dtype dt) {
    const uint32_t Hkv = 3;
    const uint64_t n1 = 1 + vt_rand_u64() % 9, n2 = 1 + vt_rand_u64() % 9, cap = n1 + n2 + 3;
    const float ts = fmt == VT_FMT_NVFP4 ? 0.37f : 0.0f;
    char fb[32];
    vt_format_name(fmt, fb, sizeof fb);
    vt_kv_cache_config cc = {.location = VT_LOC_HOST,
                             .format = fmt,
                             .n_kv_heads = Hkv,
                             .head_dim = D,
                             .capacity = cap,
                             .tensor_scale = ts};
    vt_kv_cache *hc;
    CHECK_RC(vt_kv_cache_create(&cc, &hc));
    uint64_t rb = vt_attn_row_bytes(fmt, D);
    size_t bytes = (size_t)(rb * cap * Hkv);
    uint8_t *dk = calloc(1, bytes + 16), *dv = calloc(1, bytes + 16);
    uint8_t *rk = calloc(1, bytes + 16), *rv = calloc(1, bytes + 16);
    uint64_t done = 0;
    for (int step = 0; step < 2; step++) {
        uint64_t n = step ? n2 : n1, cnt = (uint64_t)Hkv * n * D;
        float *k = kv_values(cnt, D), *v = kv_values(cnt, D);
        void *ks = k, *vs = v;
        if (dt == VT_DTYPE_F16) { /* f16 input: the host cache converts, the kernel reads f16 */
            uint16_t *kh = malloc(cnt * 2), *vh = malloc(cnt * 2);
            for (uint64_t i = 0; i < cnt; i++) {
                kh[i] = vt_f32_to_f16(k[i] > 6e4f ? 6e4f : k[i] < -6e4f ? -6e4f : k[i]);
                vh[i] = vt_f32_to_f16(v[i] > 6e4f ? 6e4f : v[i] < -6e4f ? -6e4f : v[i]);
                k[i] = vt_f16_to_f32(kh[i]); /* the values the cache quantizes */
                v[i] = vt_f16_to_f32(vh[i]);
            }
            ks = kh, vs = vh;
        }
        /* the host cache: the rows, or -ERANGE with nothing appended when a value is beyond the
         * format's range (vt_quantize's check) */
        const int refuse =
            out_of_range(fmt, k, Hkv * n, D, ts) || out_of_range(fmt, v, Hkv * n, D, ts);
        const uint64_t hl = vt_kv_cache_len(hc);
        int rc = vt_kv_cache_append(hc, ks, vs, dt, n, NULL);
        if (refuse) {
            n_refused++;
            CHECKF(rc == -ERANGE && strstr(vt_last_error(), "out of the format's range") &&
                       vt_kv_cache_len(hc) == hl,
                   "%s D%u: out-of-range rows: append returned %d (%s), length %llu -> %llu", fb, D,
                   rc, vt_last_error(), (unsigned long long)hl,
                   (unsigned long long)vt_kv_cache_len(hc));
        } else {
            n_accepted++;
            CHECK_RC(rc);
        }
        /* the row quantizer's bytes at the same place as the GPU append's */
        for (uint32_t h = 0; h < Hkv; h++) {
            ref_rows(fmt, k + (uint64_t)h * n * D, n, D, ts, rk + (h * cap + done) * rb, rb);
            ref_rows(fmt, v + (uint64_t)h * n * D, n, D, ts, rv + (h * cap + done) * rb, rb);
        }
        if (!refuse && !rc) { /* the host cache holds exactly those bytes */
            vt_attn_kv view;
            vt_kv_cache_view(hc, &view);
            for (uint32_t h = 0; h < Hkv; h++) {
                size_t o = (size_t)((h * cap + hl) * rb), r = (size_t)((h * cap + done) * rb);
                CHECKF(memcmp((const uint8_t *)view.k + o, rk + r, (size_t)(n * rb)) == 0 &&
                           memcmp((const uint8_t *)view.v + o, rv + r, (size_t)(n * rb)) == 0,
                       "%s D%u %s input: host cache head %u differs from the row quantizer", fb, D,
                       vt_dtype_name(dt), h);
            }
        }
        CHECK_RC(aqh_append(fmt, ks, (int)dt, dk, (long long)cap, (long long)done, (long long)n,
                            (int)Hkv, (int)D, (long long)rb, ts));
        CHECK_RC(aqh_append(fmt, vs, (int)dt, dv, (long long)cap, (long long)done, (long long)n,
                            (int)Hkv, (int)D, (long long)rb, ts));
        done += n;
        if (ks != k) free(ks), free(vs);
        free(k), free(v);
    }
    for (int w = 0; w < 2; w++) {
        const uint8_t *got = w ? dv : dk, *want = w ? rv : rk;
        size_t first = bytes;
        for (size_t i = 0; i < bytes; i++)
            if (got[i] != want[i]) {
                first = i;
                break;
            }
        CHECKF(first == bytes,
               "%s D%u %s input: appended %c differs from the row quantizer at byte %zu (head %zu "
               "token %zu byte %zu of the row): 0x%02x, want 0x%02x",
               fb, D, vt_dtype_name(dt), w ? 'V' : 'K', first, first / (size_t)(rb * cap),
               first / (size_t)rb % (size_t)cap, first % (size_t)rb, first < bytes ? got[first] : 0,
               first < bytes ? want[first] : 0);
    }
    /* the attention kernels' decoder on the stored rows (D a multiple of 8 and of the block)
     * against vt_dequantize of the same rows (what vt_kv_cache_read returns) */
    if (D == 64 || D == 128) {
        vt_quant_params p;
        vt_quant_params_init(&p);
        p.tensor_scale = ts > 0.0f ? ts : 1.0f;
        float *ref = malloc(D * 4), *row = malloc(D * 4);
        uint64_t bad = 0;
        for (uint32_t h = 0; h < Hkv; h++)
            for (uint64_t t = 0; t < done; t++) {
                CHECK_RC(vt_dequantize(fmt, &p, rk + (h * cap + t) * rb, 1, D, ref, 1));
                CHECK_RC(aqh_deq_row(fmt, dk + (h * cap + t) * rb, (int)D, ts, row));
                for (uint32_t d = 0; d < D; d++) bad += memcmp(&row[d], &ref[d], 4) != 0;
            }
        CHECKF(bad == 0, "%s D%u: vt_deq8 differs from vt_dequantize in %llu values", fb, D,
               (unsigned long long)bad);
        free(ref), free(row);
    }
    free(dk), free(dv), free(rk), free(rv);
    vt_kv_cache_destroy(hc);
}

int main(void) {
    vt_test_seed();
    static const uint32_t dims[] = {64, 128, 96, 40, 3};
    int cases = 0;
    for (int rep = 0; rep < 4; rep++)
        for (size_t f = 0; f < sizeof fmts / sizeof fmts[0]; f++)
            for (size_t d = 0; d < sizeof dims / sizeof dims[0]; d++)
                for (int dt = 0; dt < 2; dt++, cases++)
                    one(fmts[f], dims[d], dt ? VT_DTYPE_F16 : VT_DTYPE_F32);
    printf("%d append cases (formats x head dims x input dtypes x 4), bytes equal to the row "
           "quantizer; %d appends accepted by the host cache, %d refused as out of range\n",
           cases, n_accepted, n_refused);
    CHECK(n_accepted > 0 && n_refused > 0); /* both kinds of rows were seen */
    return vt_test_done("test_attn_quant_host");
}
