/* tests/kernels/test_decode_cpu.c — the host row decoders (kernels/cpu/decode_*.c) bit for bit
 * against vt_dequantize_ref, on fresh random blocks of every format and its 2:4 variant:
 *   - block bytes random over their whole range (codes, 6-bit scales, zero points, 2:4 index
 *     nibbles, corrupt ones with two equal positions included), scale fields
 *     random finite values from subnormal to the format's largest, zero and negative included
 *     (no NaN or Inf in the input; the products may overflow to Inf, which must match too);
 *   - every row, every chunk offset k0 (multiples of VT_KC) with the full and a random ragged n,
 *     cols not a multiple of the block, of VT_KC or of 4;
 *   - the fast decoder vt_kdecode_get(d, 1) picks (AVX-512, AVX2 or scalar, by CPU and the
 *     VT_KERNELS_* variables) and the scalar one, nothing written past VT_KC floats;
 *   - vt_dequant to f32 over the whole weight.
 * Prints which formats run without a fast decoder. */
#include <stddef.h>

#include "kern_test_util.h"
#include "kernels/kern_internal.h"

/* A random finite f16 (any sign and exponent but 31: Inf/NaN); sometimes 0 or an extreme. */
static uint16_t rand_f16(int extreme) {
    if (!extreme) return kt_rand_f16(-0.02f, 0.02f);
    switch (vt_rand_u64() % 8) {
    case 0:
        return 0;
    case 1:
        return 0x7bff; /* 65504 */
    case 2:
        return 0x0001; /* smallest subnormal */
    case 3:
        return 0xfbff; /* -65504 */
    default: {
        uint16_t h = (uint16_t)vt_rand_u64();
        return ((h >> 10) & 31) == 31 ? (uint16_t)(h & ~0x0400u) : h;
    }
    }
}

/* A random finite f32 over the whole range, or a moderate one. */
static float rand_f32(int extreme) {
    if (!extreme) return (float)(vt_rand_normal() * 0.05);
    uint32_t u = (uint32_t)vt_rand_u64();
    if (((u >> 23) & 255) == 255) u &= ~(1u << 23);
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static void put16(uint8_t *p, uint16_t v) {
    memcpy(p, &v, 2);
}
static void put32f(uint8_t *p, float v) {
    memcpy(p, &v, 4);
}

/* Fill one block (or one nf4_dq super-block) at p with random codes and random finite scales. */
static void rand_block(uint32_t base, uint8_t *p, uint32_t bytes) {
    int ext = vt_rand_u64() % 4 == 0;
    for (uint32_t i = 0; i < bytes; i++) p[i] = (uint8_t)vt_rand_u64();
    switch (base) {
    case VT_FMT_Q8_0:
    case VT_FMT_Q4_0:
        put16(p, rand_f16(ext));
        break;
    case VT_FMT_Q4_1:
        put16(p + offsetof(vt_block_q4_1, d), rand_f16(ext));
        put16(p + offsetof(vt_block_q4_1, m), rand_f16(ext));
        break;
    case VT_FMT_Q4_K:
        put16(p + offsetof(vt_block_q4_k, d), rand_f16(ext));
        put16(p + offsetof(vt_block_q4_k, dmin), rand_f16(ext));
        break;
    case VT_FMT_Q6_K:
        put16(p + offsetof(vt_block_q6_k, d), rand_f16(ext));
        break;
    case VT_FMT_INT8:
    case VT_FMT_NF4:
        put32f(p, rand_f32(ext));
        break;
    case VT_FMT_NF4_DQ:
        put32f(p + offsetof(vt_block_nf4_dq, offset), rand_f32(ext));
        put32f(p + offsetof(vt_block_nf4_dq, scale), rand_f32(ext));
        break;
    case VT_FMT_NVFP4:
        if ((p[0] & 0x7f) == 0x7f) p[0] &= 0xfe; /* E4M3FN NaN */
        break;
    case VT_FMT_MXFP4:
        if (p[0] == 0xff) p[0] = (uint8_t)(vt_rand_u64() % 255); /* E8M0 NaN */
        break;
    case VT_FMT_AWQ_INT4:
        put16(p + offsetof(vt_block_awq, d), rand_f16(ext));
        break;
    }
}

/* Element-wise f16/bf16/f32 rows: random finite bit patterns. */
static void rand_elems(uint32_t base, uint8_t *p, uint64_t n) {
    for (uint64_t i = 0; i < n; i++) {
        if (base == VT_FMT_F32) {
            put32f(p + 4 * i, rand_f32(1));
        } else if (base == VT_FMT_F16) {
            put16(p + 2 * i, rand_f16(1));
        } else {
            uint16_t h = (uint16_t)vt_rand_u64();
            if (((h >> 7) & 255) == 255) h &= ~0x0080u; /* bf16 Inf/NaN */
            put16(p + 2 * i, h);
        }
    }
}

/* Randomize every block of the quantized weight k, and the 2:4 index bytes. */
static void randomize(kt_weight *k) {
    uint32_t base = VT_FMT_BASE(k->fmt);
    const vt_format_info *fi = vt_format_get(base);
    if (base == VT_FMT_NF4_DQ) {
        uint64_t nb = vt_quant_bytes(k->fmt, k->rows, k->cols) / sizeof(vt_block_nf4_dq);
        for (uint64_t b = 0; b < nb; b++)
            rand_block(base, k->q + b * sizeof(vt_block_nf4_dq), sizeof(vt_block_nf4_dq));
        return;
    }
    uint64_t rb = vt_quant_row_bytes(k->fmt, k->cols), vals = k->cols;
    if (k->fmt & VT_FMT_SPARSE24) vals = (k->cols + 3) / 4 * 2;
    for (uint64_t r = 0; r < k->rows; r++) {
        uint8_t *row = k->q + r * rb;
        uint64_t nb = (vals + fi->block_elems - 1) / fi->block_elems;
        if (fi->block_elems == 1)
            rand_elems(base, row, vals);
        else
            for (uint64_t b = 0; b < nb; b++)
                rand_block(base, row + b * fi->block_bytes, fi->block_bytes);
        if (k->fmt & VT_FMT_SPARSE24) /* any nibble, equal positions too (the second value wins) */
            for (uint64_t i = 0; i < (k->cols + 7) / 8; i++)
                row[nb * fi->block_bytes + i] = (uint8_t)vt_rand_u64();
    }
    if (base == VT_FMT_NVFP4) { /* positive and finite (the reference refuses others) */
        float t = fabsf(rand_f32(vt_rand_u64() % 4 == 0));
        k->p.tensor_scale = t > 0 ? t : 1e-30f;
    }
    if (base == VT_FMT_AWQ_INT4)
        for (uint64_t j = 0; j < k->cols; j++) /* positive, some extreme */
            k->scales[j] = vt_rand_u64() % 16 ? (float)(0.25 + 2 * vt_rand_uniform())
                                              : fabsf(rand_f32(1)) + 1e-30f;
}

/* Bitwise equal, or both NaN (payloads may differ between paths only in NaN-producing cases). */
static int same(float a, float b) {
    return memcmp(&a, &b, 4) == 0 || (isnan(a) && isnan(b));
}

static int g_nofast[VT_FMT_COUNT * 2];

/* One decoder over every row and chunk of k against its reference values. */
static void check_decoder(const kt_weight *k, const char *nm, const vt_kdesc *d, vt_kdecode_fn fn,
                          const char *which) {
    float out[VT_KC + 64];
    const float sentinel = -1234.5f;
    int bad = 0;
    for (uint64_t r = 0; r < k->rows && bad < 5; r++)
        for (uint64_t k0 = 0; k0 < k->cols && bad < 5; k0 += VT_KC) {
            uint32_t full = (uint32_t)(k->cols - k0 < VT_KC ? k->cols - k0 : VT_KC);
            uint32_t ns[2] = {full, 1 + (uint32_t)(vt_rand_u64() % full)};
            for (int t = 0; t < 2; t++) {
                uint32_t n = ns[t];
                for (int i = 0; i < VT_KC + 64; i++) out[i] = sentinel;
                fn(d, r, k0, n, out);
                const float *ref = k->deq + r * k->cols + k0;
                for (uint32_t i = 0; i < n && bad < 5; i++)
                    if (!same(out[i], ref[i])) {
                        CHECKF(0,
                               "%s %s decoder %llux%llu row %llu k0 %llu n %u: [%u] = %a, ref %a",
                               nm, which, (unsigned long long)k->rows, (unsigned long long)k->cols,
                               (unsigned long long)r, (unsigned long long)k0, n, i, out[i], ref[i]);
                        bad++;
                    }
                for (int i = VT_KC; i < VT_KC + 64; i++)
                    if (out[i] != sentinel) {
                        CHECKF(0, "%s %s decoder row %llu k0 %llu: wrote out[%d] past VT_KC", nm,
                               which, (unsigned long long)r, (unsigned long long)k0, i);
                        bad++;
                        break;
                    }
            }
        }
}

static void run_one(const kt_weight *k0_, const char *nm, size_t shape, void *ctx) {
    kt_weight *k = (kt_weight *)k0_; /* randomized in place: the blocks, then the oracle */
    randomize(k);
    vt_weight_host(&k->w, k->q, k->fmt, k->rows, k->cols, &k->p);
    CHECK_RC(vt_dequantize_ref(k->fmt, &k->p, k->q, k->rows, k->cols, k->deq));
    vt_kdesc d;
    int rc = vt_kdesc_init(&d, &k->w, "test");
    CHECKF(rc == 0, "%s: vt_kdesc_init: %s", nm, vt_last_error());
    if (rc) return;
    vt_kdecode_fn fast = vt_kdecode_get(&d, 1), ref = vt_kdecode_get(&d, 0);
    /* the 2:4 wrapper is the same function either way; its base decoder tells */
    if (vt_kdecode_dense(d.fmt, 1) == vt_kdecode_dense(d.fmt, 0))
        g_nofast[d.fmt + (d.sparse ? VT_FMT_COUNT : 0)] = 1;
    check_decoder(k, nm, &d, fast, "fast");
    check_decoder(k, nm, &d, ref, "scalar");
    float *out = malloc(k->rows * k->cols * sizeof(float));
    CHECK_RC(vt_dequant(&k->w, VT_DTYPE_F32, out, NULL));
    uint64_t nbad = 0, first = 0;
    for (uint64_t i = 0; i < k->rows * k->cols; i++)
        if (!same(out[i], k->deq[i]) && !nbad++) first = i;
    CHECKF(nbad == 0,
           "%s %llux%llu: vt_dequant differs from the reference at %llu values (first "
           "[%llu] = %a, ref %a)",
           nm, (unsigned long long)k->rows, (unsigned long long)k->cols, (unsigned long long)nbad,
           (unsigned long long)first, out[first], k->deq[first]);
    free(out);
    (void)shape;
    (void)ctx;
}

int main(void) {
    vt_test_seed();
    printf("cpu isa: %s\n", vt_kernels_cpu_isa());
    /* cols: block and chunk tails (1, 63, 1000, 1541), exact chunks (512, 2048), odd 2:4 groups */
    static const uint64_t shapes[][2] = {{3, 1},    {5, 63},   {2, 256},  {3, 512},
                                         {4, 1000}, {3, 1541}, {2, 2048}, {1, 4099}};
    for (int rep = 0; rep < 6; rep++) /* fresh blocks each time */
        kt_for_each_weight(shapes, sizeof shapes / sizeof shapes[0], run_one, NULL);
    if (vt_kcpu_avx2()) {
        char list[512] = "";
        for (uint32_t f = 0; f < 2 * VT_FMT_COUNT; f++)
            if (g_nofast[f]) {
                char nm[48];
                vt_format_name(f % VT_FMT_COUNT | (f >= VT_FMT_COUNT ? VT_FMT_SPARSE24 : 0), nm,
                               sizeof nm);
                snprintf(list + strlen(list), sizeof list - strlen(list), " %s", nm);
            }
        printf("formats decoded by the scalar decoder:%s\n", *list ? list : " none");
    }
    return vt_test_done("test_decode_cpu");
}
