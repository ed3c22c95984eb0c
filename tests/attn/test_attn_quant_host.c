/* tests/attn/test_attn_quant_host.c — the GPU KV cache append (kernels/cuda/attn_quant.cuh, the
 * append kernel's work items) and the attention kernels' K/V row decoder (vt_deq8) executed on
 * the host: every K/V format, head dims 64/128 and ragged ones (96, 40, 3), f32 and f16 input,
 * two appends at an offset into a cache with spare capacity. The stored bytes must equal the row
 * quantizers' (those behind vt_quantize) byte for byte, and vt_deq8 must decode them exactly as
 * vt_dequantize does. The host cache must hold the same bytes, or refuse (-ERANGE, nothing
 * appended) rows with a value beyond the format's range, which the GPU append saturates. Rows mix
 * scales (1e-3 .. 1e3), all-zero blocks, values on rounding ties and near the formats' saturation
 * points. Needs nvcc, not a GPU; what it cannot see is the device's flush-to-zero of subnormal
 * floats (not produced here). The device append's flag for vt_kv_cache_check (the first value
 * the host append would refuse) must equal the host rules' (quant/range.c), on those rows and on
 * rows with NaN, infinities and huge values, and be set exactly when the host cache refuses. */
#include <errno.h>
#include <float.h>

#include "attn_internal.h" /* VT_KV_BAD_KEY */
#include "attn_util.h"
#include "quant_internal.h" /* the row quantizers, without vt_quantize's range check */

int aqh_append(uint32_t fmt, const void *src, int dtype, void *dst, long long capacity,
               long long len, long long n, int Hkv, int D, long long row_bytes, float ts,
               unsigned long long *bad, unsigned epoch, int is_v);
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

/* The device append's flag for x [Hkv][n][D] (K or V) appended at token len, by the host's
 * rules: per block (plain formats: per value) its first NaN/Inf, else, when vt_qrange_first
 * (quant/range.c) refuses the block, the value it names; the smallest key (attn_internal.h). */
static unsigned long long ref_key(uint32_t fmt, const float *x, uint32_t Hkv, uint64_t n,
                                  uint32_t D, uint64_t len, float ts, unsigned epoch, int is_v) {
    vt_quant_params p;
    vt_quant_params_init(&p);
    p.tensor_scale = ts > 0.0f ? ts : 1.0f;
    const int plain = fmt == VT_FMT_F32 || fmt == VT_FMT_F16 || fmt == VT_FMT_BF16;
    const uint32_t be = plain ? 1 : (uint32_t)vt_format_get(fmt)->block_elems;
    unsigned long long best = VT_KV_BAD_NONE;
    for (uint32_t h = 0; h < Hkv; h++)
        for (uint64_t t = 0; t < n; t++)
            for (uint32_t b0 = 0; b0 < D; b0 += be) {
                const float *r = x + ((uint64_t)h * n + t) * D + b0;
                const uint32_t m = D - b0 < be ? D - b0 : be;
                uint32_t col = UINT32_MAX, range = 0;
                for (uint32_t j = 0; j < m && col == UINT32_MAX; j++)
                    if (!isfinite(r[j])) col = b0 + j;
                if (col == UINT32_MAX) {
                    const uint64_t k = vt_qrange_first(fmt, r, m, &p);
                    if (k < m) col = b0 + (uint32_t)k, range = 1;
                }
                if (col == UINT32_MAX) continue;
                const unsigned long long key = VT_KV_BAD_KEY(epoch, len + t, is_v, h, col, range);
                if (key < best) best = key;
            }
    return best;
}

static int n_accepted, n_refused;

static vt_kv_cache *host_cache(uint32_t fmt, uint32_t Hkv, uint32_t D, uint64_t cap, float ts) {
    vt_kv_cache_config cc = {.location = VT_LOC_HOST,
                             .format = fmt,
                             .n_kv_heads = Hkv,
                             .head_dim = D,
                             .capacity = cap,
                             .tensor_scale = ts};
    vt_kv_cache *hc = NULL;
    CHECK_RC(vt_kv_cache_create(&cc, &hc));
    return hc;
}

static void one(uint32_t fmt, uint32_t D, vt_dtype dt) {
    const uint32_t Hkv = 3;
    const uint64_t n1 = 1 + vt_rand_u64() % 9, n2 = 1 + vt_rand_u64() % 9, cap = n1 + n2 + 3;
    const float ts = fmt == VT_FMT_NVFP4 ? 0.37f : 0.0f;
    char fb[32];
    vt_format_name(fmt, fb, sizeof fb);
    vt_kv_cache *hc = host_cache(fmt, Hkv, D, cap, ts);
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
        /* the device append flags what the host cache refuses, at the value the rules name */
        unsigned long long flag = VT_KV_BAD_NONE;
        const unsigned ep = (unsigned)(vt_rand_u64() % 5000);
        CHECK_RC(aqh_append(fmt, ks, (int)dt, dk, (long long)cap, (long long)done, (long long)n,
                            (int)Hkv, (int)D, (long long)rb, ts, &flag, ep, 0));
        CHECK_RC(aqh_append(fmt, vs, (int)dt, dv, (long long)cap, (long long)done, (long long)n,
                            (int)Hkv, (int)D, (long long)rb, ts, &flag, ep, 1));
        unsigned long long want = ref_key(fmt, k, Hkv, n, D, done, ts, ep, 0);
        const unsigned long long wv = ref_key(fmt, v, Hkv, n, D, done, ts, ep, 1);
        want = wv < want ? wv : want;
        CHECKF(flag == want && (flag != VT_KV_BAD_NONE) == refuse,
               "%s D%u %s input: append flag 0x%llx, want 0x%llx (host refuses: %d)", fb, D,
               vt_dtype_name(dt), flag, want, refuse);
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

/* NaN, infinities and huge values at random places, appended at a random offset: the device
 * append's flag names the value the host's rules name first, and the host cache refuses the
 * append with the code of the first row (K, then V) holding one, nothing appended. */
static int n_flagged;
static void flag_case(uint32_t fmt, uint32_t D) {
    /* specials, and each format's range limit with its two neighbours (range.c's thresholds:
     * f16 65520, q8_0 127 x 65520, q4_0 8 x 65520, nvfp4 6 x 464 x ts, bf16 0x1.ffp127, int8
     * FLT_MAX), where a rule written differently would flag a value the host keeps or the
     * reverse */
    static const float lim[] = {
        65520.0f, 127.0f * 65520.0f, 8.0f * 65520.0f, 6.0f * 464.0f * 0.37f, 0x1.ffp127f, FLT_MAX};
    float sp[7 + 3 * sizeof lim / sizeof lim[0]] = {NAN,   INFINITY, -INFINITY, 1e38f,
                                                    -7e4f, 3e5f,     1e6f};
    for (size_t i = 0; i < sizeof lim / sizeof lim[0]; i++) {
        sp[7 + 3 * i] = lim[i];
        sp[8 + 3 * i] = -nextafterf(lim[i], 0.0f);
        sp[9 + 3 * i] = nextafterf(lim[i], INFINITY);
    }
    const uint32_t Hkv = 3;
    const uint64_t n = 1 + vt_rand_u64() % 6, len = vt_rand_u64() % 4, cap = len + n;
    const uint64_t cnt = (uint64_t)Hkv * n * D, rb = vt_attn_row_bytes(fmt, D);
    const float ts = fmt == VT_FMT_NVFP4 ? 0.37f : 0.0f;
    char fb[32];
    vt_format_name(fmt, fb, sizeof fb);
    float *x[2] = {kv_values(cnt, D), kv_values(cnt, D)};
    for (int w = 0; w < 2; w++)
        for (uint64_t i = vt_rand_u64() % 4; i > 0; i--)
            x[w][vt_rand_u64() % cnt] = sp[vt_rand_u64() % (sizeof sp / sizeof sp[0])];
    uint8_t *dst = calloc(1, (size_t)(rb * cap * Hkv) + 16);
    unsigned long long flag = VT_KV_BAD_NONE, want = VT_KV_BAD_NONE;
    const unsigned ep = (unsigned)(vt_rand_u64() % 5000);
    for (int w = 0; w < 2; w++) {
        CHECK_RC(aqh_append(fmt, x[w], VT_DTYPE_F32, dst, (long long)cap, (long long)len,
                            (long long)n, (int)Hkv, (int)D, (long long)rb, ts, &flag, ep, w));
        const unsigned long long k = ref_key(fmt, x[w], Hkv, n, D, len, ts, ep, w);
        want = k < want ? k : want;
    }
    CHECKF(flag == want, "%s D%u: flag 0x%llx, want 0x%llx", fb, D, flag, want);
    int want_rc = 0;
    for (int w = 0; w < 2 && !want_rc; w++) /* rows in order; in a row a NaN/Inf first */
        for (uint64_t row = 0; row < Hkv * n && !want_rc; row++) {
            const float *r = x[w] + row * D;
            for (uint32_t i = 0; i < D && !want_rc; i++)
                if (!isfinite(r[i])) want_rc = VT_ENONFINITE;
            if (!want_rc && out_of_range(fmt, r, 1, D, ts)) want_rc = -ERANGE;
        }
    CHECKF((want_rc != 0) == (want != VT_KV_BAD_NONE), "%s D%u: host rc %d, flag 0x%llx", fb, D,
           want_rc, flag);
    n_flagged += want != VT_KV_BAD_NONE;
    vt_kv_cache *hc = host_cache(fmt, Hkv, D, cap, ts);
    float *z = calloc(1, (size_t)(Hkv * len * D + 1) * sizeof(float));
    if (len) CHECK_RC(vt_kv_cache_append(hc, z, z, VT_DTYPE_F32, len, NULL));
    const int rc = vt_kv_cache_append(hc, x[0], x[1], VT_DTYPE_F32, n, NULL);
    CHECKF(rc == want_rc && vt_kv_cache_len(hc) == (rc ? len : len + n),
           "%s D%u: host append returned %d (%s), want %d", fb, D, rc, vt_last_error(), want_rc);
    vt_kv_cache_destroy(hc);
    free(z), free(dst), free(x[0]), free(x[1]);
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
    for (int rep = 0; rep < 6; rep++)
        for (size_t f = 0; f < sizeof fmts / sizeof fmts[0]; f++)
            for (size_t d = 0; d < sizeof dims / sizeof dims[0]; d++) flag_case(fmts[f], dims[d]);
    printf("%d appends with NaN, infinity or huge values: %d flagged as the host refuses them\n",
           6 * (int)(sizeof fmts / sizeof fmts[0] * sizeof dims / sizeof dims[0]), n_flagged);
    CHECK(n_flagged > 0);
    return vt_test_done("test_attn_quant_host");
}
