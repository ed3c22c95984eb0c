/* kernels/cpu/decode_ref.c — scalar host decoders: whole blocks of one row to f32, per format,
 * with the same arithmetic as the quantization library's reference dequantizers; the 2:4
 * sparse expansion; and the weight-handle to decoder-descriptor step. */
#include <errno.h>
#include <float.h>
#include <math.h>
#include <string.h>

#include "kern_internal.h"

static inline float f16(const uint8_t *p) {
    uint16_t h;
    memcpy(&h, p, 2);
    return vt_f16_to_f32(h);
}
static inline float f32at(const uint8_t *p) {
    float f;
    memcpy(&f, p, 4);
    return f;
}

#define ROW(d, r)   ((d)->data + (r) * (d)->row_bytes)
#define NBLK(n, be) (((n) + (be)-1) / (be))

static void dec_f32(const vt_kdesc *d, uint64_t r, uint64_t k0, uint32_t n, float *o) {
    memcpy(o, ROW(d, r) + k0 * 4, (size_t)n * 4);
}
static void dec_f16(const vt_kdesc *d, uint64_t r, uint64_t k0, uint32_t n, float *o) {
    const uint8_t *p = ROW(d, r) + k0 * 2;
    for (uint32_t i = 0; i < n; i++) o[i] = f16(p + 2 * i);
}
static void dec_bf16(const vt_kdesc *d, uint64_t r, uint64_t k0, uint32_t n, float *o) {
    const uint8_t *p = ROW(d, r) + k0 * 2;
    for (uint32_t i = 0; i < n; i++) {
        uint16_t h;
        memcpy(&h, p + 2 * i, 2);
        o[i] = vt_bf16_to_f32(h);
    }
}

static void dec_q8_0(const vt_kdesc *d, uint64_t r, uint64_t k0, uint32_t n, float *o) {
    const uint8_t *p = ROW(d, r) + k0 / 32 * 34;
    for (uint32_t b = 0; b < NBLK(n, 32); b++, p += 34, o += 32) {
        float s = f16(p);
        for (int i = 0; i < 32; i++) o[i] = s * (float)(int8_t)p[2 + i];
    }
}

static void dec_q4_0(const vt_kdesc *d, uint64_t r, uint64_t k0, uint32_t n, float *o) {
    const uint8_t *p = ROW(d, r) + k0 / 32 * 18;
    for (uint32_t b = 0; b < NBLK(n, 32); b++, p += 18, o += 32) {
        float s = f16(p);
        for (int i = 0; i < 16; i++) {
            o[i] = s * (float)((p[2 + i] & 15) - 8);
            o[i + 16] = s * (float)((p[2 + i] >> 4) - 8);
        }
    }
}

static void dec_q4_1(const vt_kdesc *d, uint64_t r, uint64_t k0, uint32_t n, float *o) {
    const uint8_t *p = ROW(d, r) + k0 / 32 * 20;
    for (uint32_t b = 0; b < NBLK(n, 32); b++, p += 20, o += 32) {
        float s = f16(p), m = f16(p + 2);
        for (int i = 0; i < 16; i++) {
            o[i] = s * (float)(p[4 + i] & 15) + m;
            o[i + 16] = s * (float)(p[4 + i] >> 4) + m;
        }
    }
}

/* ggml get_scale_min_k4 */
static inline void scale_min_k4(int j, const uint8_t *q, uint8_t *sc, uint8_t *m) {
    if (j < 4) {
        *sc = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *sc = (uint8_t)((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
        *m = (uint8_t)((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
    }
}

static void dec_q4_k(const vt_kdesc *d, uint64_t r, uint64_t k0, uint32_t n, float *o) {
    const uint8_t *p = ROW(d, r) + k0 / 256 * 144;
    for (uint32_t b = 0; b < NBLK(n, 256); b++, p += 144) {
        float dd = f16(p), dmin = f16(p + 2);
        const uint8_t *sc = p + 4, *q = p + 16;
        for (int j = 0; j < 8; j += 2, q += 32) {
            uint8_t s1, m1, s2, m2;
            scale_min_k4(j, sc, &s1, &m1);
            scale_min_k4(j + 1, sc, &s2, &m2);
            float d1 = dd * s1, mm1 = dmin * m1, d2 = dd * s2, mm2 = dmin * m2;
            for (int l = 0; l < 32; l++) *o++ = d1 * (float)(q[l] & 0xF) - mm1;
            for (int l = 0; l < 32; l++) *o++ = d2 * (float)(q[l] >> 4) - mm2;
        }
    }
}

static void dec_q6_k(const vt_kdesc *d, uint64_t r, uint64_t k0, uint32_t n, float *o) {
    const uint8_t *p = ROW(d, r) + k0 / 256 * 210;
    for (uint32_t b = 0; b < NBLK(n, 256); b++, p += 210) {
        const uint8_t *ql = p, *qh = p + 128;
        const int8_t *sc = (const int8_t *)(p + 192);
        float dd = f16(p + 208);
        for (int h = 0; h < 2; h++, ql += 64, qh += 32, sc += 8, o += 128) {
            for (int l = 0; l < 32; l++) {
                int is = l / 16;
                int q1 = (int)((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
                int q2 = (int)((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
                int q3 = (int)((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
                int q4 = (int)((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
                o[l] = dd * (float)sc[is] * (float)q1;
                o[l + 32] = dd * (float)sc[is + 2] * (float)q2;
                o[l + 64] = dd * (float)sc[is + 4] * (float)q3;
                o[l + 96] = dd * (float)sc[is + 6] * (float)q4;
            }
        }
    }
}

static void dec_int8(const vt_kdesc *d, uint64_t r, uint64_t k0, uint32_t n, float *o) {
    const uint8_t *p = ROW(d, r) + k0 / 64 * 68;
    for (uint32_t b = 0; b < NBLK(n, 64); b++, p += 68, o += 64) {
        float s = f32at(p);
        for (int i = 0; i < 64; i++) o[i] = s * (float)(int8_t)p[4 + i];
    }
}

static void nf4_codes(const uint8_t *qs, float amax, float *o) {
    for (int i = 0; i < 32; i++) {
        o[2 * i] = amax * vt_nf4_values[qs[i] >> 4];
        o[2 * i + 1] = amax * vt_nf4_values[qs[i] & 15];
    }
}

static void dec_nf4(const vt_kdesc *d, uint64_t r, uint64_t k0, uint32_t n, float *o) {
    const uint8_t *p = ROW(d, r) + k0 / 64 * 36;
    for (uint32_t b = 0; b < NBLK(n, 64); b++, p += 36, o += 64) nf4_codes(p + 4, f32at(p), o);
}

static void dec_nf4_dq(const vt_kdesc *d, uint64_t r, uint64_t k0, uint32_t n, float *o) {
    uint64_t g = r * d->bpr + k0 / 64;
    for (uint32_t b = 0; b < NBLK(n, 64); b++, g++, o += 64) {
        const uint8_t *sb = d->data + g / 256 * sizeof(vt_block_nf4_dq);
        uint32_t j = (uint32_t)(g % 256);
        float amax = f32at(sb) + f32at(sb + 4) * (float)(int8_t)sb[8 + j];
        nf4_codes(sb + 8 + 256 + 32 * j, amax, o);
    }
}

static void dec_nvfp4(const vt_kdesc *d, uint64_t r, uint64_t k0, uint32_t n, float *o) {
    const uint8_t *p = ROW(d, r) + k0 / 16 * 9;
    for (uint32_t b = 0; b < NBLK(n, 16); b++, p += 9, o += 16) {
        float s = d->tensor_scale * vt_e4m3_to_f32(p[0]);
        for (int i = 0; i < 8; i++) {
            o[2 * i] = s * vt_e2m1_to_f32(p[1 + i] & 15);
            o[2 * i + 1] = s * vt_e2m1_to_f32(p[1 + i] >> 4);
        }
    }
}

static void dec_mxfp4(const vt_kdesc *d, uint64_t r, uint64_t k0, uint32_t n, float *o) {
    const uint8_t *p = ROW(d, r) + k0 / 32 * 17;
    for (uint32_t b = 0; b < NBLK(n, 32); b++, p += 17, o += 32) {
        float s = vt_e8m0_to_f32(p[0]);
        for (int i = 0; i < 16; i++) {
            o[2 * i] = s * vt_e2m1_to_f32(p[1 + i] & 15);
            o[2 * i + 1] = s * vt_e2m1_to_f32(p[1 + i] >> 4);
        }
    }
}

/* w = d (q - z) / s[col]; with aux == NULL (sparse base decode) the scale is left out. */
static void dec_awq(const vt_kdesc *d, uint64_t r, uint64_t k0, uint32_t n, float *o) {
    const uint8_t *p = ROW(d, r) + k0 / 128 * 68;
    for (uint32_t b = 0; b < NBLK(n, 128); b++, p += 68, o += 128) {
        float s = f16(p);
        int z = p[2];
        for (int i = 0; i < 64; i++) {
            o[2 * i] = s * (float)((p[4 + i] & 15) - z);
            o[2 * i + 1] = s * (float)((p[4 + i] >> 4) - z);
        }
        if (d->aux) {
            uint64_t c = k0 + (uint64_t)b * 128;
            for (uint32_t i = 0; i < 128 && c + i < d->cols; i++) o[i] /= d->aux[c + i];
        }
    }
}

static const vt_kdecode_fn g_scalar[VT_FMT_COUNT] = {
    [VT_FMT_F32] = dec_f32,     [VT_FMT_F16] = dec_f16,       [VT_FMT_BF16] = dec_bf16,
    [VT_FMT_Q8_0] = dec_q8_0,   [VT_FMT_Q4_0] = dec_q4_0,     [VT_FMT_Q4_1] = dec_q4_1,
    [VT_FMT_Q4_K] = dec_q4_k,   [VT_FMT_Q6_K] = dec_q6_k,     [VT_FMT_INT8] = dec_int8,
    [VT_FMT_NF4] = dec_nf4,     [VT_FMT_NF4_DQ] = dec_nf4_dq, [VT_FMT_NVFP4] = dec_nvfp4,
    [VT_FMT_MXFP4] = dec_mxfp4, [VT_FMT_AWQ_INT4] = dec_awq,
};

/* AVX-512F decoders (decode_avx512.c, the formats where they beat AVX2) and AVX2 ones
 * (decode_avx2.c); NULL entries fall back to the next. */
extern const vt_kdecode_fn vt_kdecode_avx512_table[VT_FMT_COUNT];
extern const vt_kdecode_fn vt_kdecode_avx2_table[VT_FMT_COUNT];
/* dec_sparse's expansion and awq division with AVX2 (decode_avx2.c; groups from an even g0). */
void vt_ksparse_expand_avx2(const float *c, const uint8_t *idx, uint64_t g0, uint32_t ng, float *o);
void vt_kdiv_avx2(float *o, const float *s, uint32_t n);
/* The expansion four groups per AVX-512 vector (decode_avx512.c; g0 a multiple of 4). */
void vt_ksparse_expand_avx512(const float *c, const uint8_t *idx, uint64_t g0, uint32_t ng,
                              float *o);

vt_kdecode_fn vt_kdecode_dense(uint32_t base, int fast) {
    if (base >= VT_FMT_COUNT) return NULL;
    if (fast && vt_kcpu_avx512() && vt_kdecode_avx512_table[base])
        return vt_kdecode_avx512_table[base];
    if (fast && vt_kcpu_avx2() && vt_kdecode_avx2_table[base]) return vt_kdecode_avx2_table[base];
    return g_scalar[base];
}

/* 2:4: decode 256 compressed values (k0/2 ...) with the base decoder over the compressed row,
 * then scatter each group's two kept values to their positions. */
static void dec_sparse(const vt_kdesc *d, uint64_t r, uint64_t k0, uint32_t n, int fast, float *o) {
    float c[VT_KC / 2];
    vt_kdesc bd = *d;
    bd.sparse = 0;
    bd.cols = d->ccols;
    bd.aux = NULL; /* awq scales belong to the dense columns: applied after the scatter */
    uint64_t kc0 = k0 / 2;
    uint32_t nc = (uint32_t)((n + 3) / 4 * 2);
    vt_kdecode_dense(d->fmt, fast)(&bd, r, kc0, nc, c);
    const uint8_t *idx = d->data + r * d->row_bytes + d->idx_off;
    if (fast && vt_kcpu_avx512()) {
        vt_ksparse_expand_avx512(c, idx, k0 / 4, (n + 3) / 4, o);
    } else if (fast && vt_kcpu_avx2()) {
        vt_ksparse_expand_avx2(c, idx, k0 / 4, (n + 3) / 4, o);
    } else {
        memset(o, 0, (size_t)VT_KC * sizeof(float));
        for (uint32_t g = 0; g < (n + 3) / 4; g++) {
            uint64_t gg = k0 / 4 + g;
            uint8_t nib = (uint8_t)((idx[gg / 2] >> ((gg & 1) * 4)) & 15);
            o[4 * g + (nib & 3)] = c[2 * g];
            o[4 * g + (nib >> 2)] = c[2 * g + 1];
        }
    }
    if (d->aux && d->fmt == VT_FMT_AWQ_INT4) {
        if (fast && vt_kcpu_avx2())
            vt_kdiv_avx2(o, d->aux + k0, n);
        else
            for (uint32_t i = 0; i < n; i++) o[i] /= d->aux[k0 + i];
    }
}
static void dec_sparse_ref(const vt_kdesc *d, uint64_t r, uint64_t k0, uint32_t n, float *o) {
    dec_sparse(d, r, k0, n, 0, o);
}
static void dec_sparse_fast(const vt_kdesc *d, uint64_t r, uint64_t k0, uint32_t n, float *o) {
    dec_sparse(d, r, k0, n, 1, o);
}

vt_kdecode_fn vt_kdecode_get(const vt_kdesc *d, int fast) {
    if (d->sparse) return fast ? dec_sparse_fast : dec_sparse_ref;
    return vt_kdecode_dense(d->fmt, fast);
}

int vt_kdesc_init(vt_kdesc *d, const vt_weight *w, const char *who) {
    memset(d, 0, sizeof *d);
    if (!w || !w->data) return vt_fail(-EINVAL, "%s: NULL weight handle or data", who);
    uint32_t base = VT_FMT_BASE(w->format);
    char nm[48];
    if (base >= VT_FMT_COUNT || (w->format & ~(0xffu | VT_FMT_SPARSE24)))
        return vt_fail(-EINVAL, "%s: invalid format %#x", who, w->format);
    if (w->rows == 0 || w->cols == 0)
        return vt_fail(-EINVAL, "%s: empty weight (%llu x %llu)", who, (unsigned long long)w->rows,
                       (unsigned long long)w->cols);
    uint64_t n;
    if (__builtin_mul_overflow(w->rows, w->cols, &n) || n > UINT64_MAX / sizeof(float))
        return vt_fail(-EOVERFLOW, "%s: %s weight %llu x %llu: its size overflows 64 bits", who,
                       vt_format_name(w->format, nm, sizeof nm), (unsigned long long)w->rows,
                       (unsigned long long)w->cols);
    d->data = w->data;
    d->fmt = base;
    d->sparse = (w->format & VT_FMT_SPARSE24) != 0;
    d->rows = w->rows;
    d->cols = w->cols;
    d->tensor_scale = base == VT_FMT_NVFP4 ? w->tensor_scale : 1.0f; /* others: any, unset too */
    d->aux = w->aux;
    if (base == VT_FMT_AWQ_INT4 && !w->aux)
        return vt_fail(-EINVAL, "%s: awq_int4 weight %llux%llu without channel scales (aux)", who,
                       (unsigned long long)w->rows, (unsigned long long)w->cols);
    /* The quantization library refuses these scales; the kernels would divide by them or scale
     * by them and return zeros, negated or NaN columns. Device aux is not readable here. */
    if (base == VT_FMT_AWQ_INT4 && w->location == VT_LOC_HOST)
        for (uint64_t c = 0; c < w->cols; c++)
            if (!(w->aux[c] > 0.0f && w->aux[c] <= FLT_MAX))
                return vt_fail(-EINVAL,
                               "%s: awq_int4 weight %llux%llu: channel scale %g at column %llu is "
                               "not a positive finite number",
                               who, (unsigned long long)w->rows, (unsigned long long)w->cols,
                               (double)w->aux[c], (unsigned long long)c);
    if (base == VT_FMT_NVFP4 && isnan(w->tensor_scale)) /* 1 here once: silently wrong */
        return vt_fail(-EINVAL,
                       "%s: nvfp4 weight %llux%llu: tensor_scale is unset (NaN): the handle needs "
                       "the scale its blocks were quantized with (vt_weight_host with those "
                       "vt_quant_params, or a stored tensor's from its record)",
                       who, (unsigned long long)w->rows, (unsigned long long)w->cols);
    if (base == VT_FMT_NVFP4 && !(w->tensor_scale > 0.0f && w->tensor_scale <= FLT_MAX))
        return vt_fail(-EINVAL,
                       "%s: nvfp4 weight %llux%llu: tensor_scale %g is not a positive finite "
                       "number",
                       who, (unsigned long long)w->rows, (unsigned long long)w->cols,
                       (double)w->tensor_scale);
    if (base == VT_FMT_NF4_DQ) {
        if (d->sparse) return vt_fail(VT_EUNSUPPORTED, "%s: nf4_dq+2:4 does not exist", who);
        uint64_t align = vt_quant_row_align(base, w->cols);
        if (align && w->row0 % align)
            return vt_fail(-EINVAL, "%s: nf4_dq handle starts at row %llu, not a multiple of %llu",
                           who, (unsigned long long)w->row0, (unsigned long long)align);
        d->bpr = (w->cols + 63) / 64;
    } else {
        d->row_bytes = vt_quant_row_bytes(w->format, w->cols);
        if (d->sparse) {
            d->ccols = (w->cols + 3) / 4 * 2;
            const vt_format_info *fi = vt_format_get(base);
            d->idx_off = (d->ccols + fi->block_elems - 1) / fi->block_elems * fi->block_bytes;
        }
    }
    uint64_t need = vt_quant_bytes(w->format, w->rows, w->cols);
    if (need == 0) /* rows, cols > 0 and a valid format: only an overflow gives 0 */
        return vt_fail(-EOVERFLOW, "%s: %s weight %llu x %llu: its byte size overflows 64 bits",
                       who, vt_format_name(w->format, nm, sizeof nm), (unsigned long long)w->rows,
                       (unsigned long long)w->cols);
    if (w->bytes < need)
        return vt_fail(-EINVAL, "%s: %s weight %llux%llu holds %llu bytes, needs %llu", who,
                       vt_format_name(w->format, nm, sizeof nm), (unsigned long long)w->rows,
                       (unsigned long long)w->cols, (unsigned long long)w->bytes,
                       (unsigned long long)need);
    return 0;
}
