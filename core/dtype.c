/* dtypes and scalar conversions: f16, bf16, FP8 E4M3, E8M0, FP4 E2M1. All rounding is to
 * nearest, ties to even, under the default floating-point environment. */
#include <errno.h>
#include <math.h>
#include <string.h>

#include "codes_hd.h"
#include "vtstore/core.h"

static const struct {
    const char *name;
    size_t size;
    int is_float;
} dtype_table[VT_DTYPE_COUNT] = {
    [VT_DTYPE_F32] = {"f32", 4, 1},   [VT_DTYPE_F16] = {"f16", 2, 1},
    [VT_DTYPE_BF16] = {"bf16", 2, 1}, [VT_DTYPE_F64] = {"f64", 8, 1},
    [VT_DTYPE_I8] = {"i8", 1, 0},     [VT_DTYPE_U8] = {"u8", 1, 0},
    [VT_DTYPE_I16] = {"i16", 2, 0},   [VT_DTYPE_I32] = {"i32", 4, 0},
    [VT_DTYPE_I64] = {"i64", 8, 0},   [VT_DTYPE_FP8_E4M3] = {"f8_e4m3", 1, 1},
    [VT_DTYPE_U16] = {"u16", 2, 0},   [VT_DTYPE_U32] = {"u32", 4, 0},
    [VT_DTYPE_U64] = {"u64", 8, 0},   [VT_DTYPE_BOOL] = {"bool", 1, 0},
};

size_t vt_dtype_size(vt_dtype t) {
    return (unsigned)t < VT_DTYPE_COUNT ? dtype_table[t].size : 0;
}
const char *vt_dtype_name(vt_dtype t) {
    return (unsigned)t < VT_DTYPE_COUNT ? dtype_table[t].name : "?";
}
int vt_dtype_is_float(vt_dtype t) {
    return (unsigned)t < VT_DTYPE_COUNT ? dtype_table[t].is_float : 0;
}
int vt_dtype_from_name(const char *name, vt_dtype *out) {
    for (int i = 0; i < VT_DTYPE_COUNT; i++)
        if (!strcmp(name, dtype_table[i].name)) {
            *out = (vt_dtype)i;
            return 0;
        }
    return -EINVAL;
}

static inline uint32_t f2u(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}
static inline float u2f(uint32_t u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}

uint16_t vt_f32_to_f16(float f) {
    uint32_t x = f2u(f);
    uint32_t sign = (x >> 16) & 0x8000u;
    uint32_t ax = x & 0x7fffffffu;
    if (ax > 0x7f800000u) return (uint16_t)(sign | 0x7e00u | ((ax >> 13) & 0x3ffu)); /* NaN */
    if (ax >= 0x47800000u) return (uint16_t)(sign | 0x7c00u); /* >= 65536: Inf */
    if (ax < 0x38800000u) {
        /* result is subnormal (or zero): adding 0.5 aligns the value to units of 2^-24 and the
         * FPU rounds to nearest even for us */
        float r = u2f(ax) + 0.5f;
        return (uint16_t)(sign | (f2u(r) - 0x3f000000u));
    }
    uint32_t odd = (ax >> 13) & 1u;
    ax += 0xc8000fffu + odd; /* rebias exponent 127 -> 15 and round to nearest even */
    return (uint16_t)(sign | (ax >> 13));
}

float vt_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t e = (h >> 10) & 0x1fu, m = h & 0x3ffu;
    if (e == 0) {
        float v = (float)m * 0x1p-24f;
        return sign ? -v : v;
    }
    if (e == 31) return u2f(sign | 0x7f800000u | (m << 13));
    return u2f(sign | ((e + 112u) << 23) | (m << 13));
}

uint16_t vt_f32_to_bf16(float f) {
    uint32_t x = f2u(f);
    if ((x & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((x >> 16) | 0x40u);
    x += 0x7fffu + ((x >> 16) & 1u);
    return (uint16_t)(x >> 16);
}

float vt_bf16_to_f32(uint16_t h) {
    return u2f((uint32_t)h << 16);
}

uint8_t vt_f32_to_e4m3(float f) {
    uint8_t sign = signbit(f) ? 0x80 : 0;
    if (isnan(f) || isinf(f)) return sign | 0x7f;
    float a = fabsf(f);
    if (a >= 448.0f) return sign | 0x7e; /* saturate */
    if (a < 0x1p-6f) {
        /* subnormal: steps of 2^-9; q == 8 is the smallest normal, whose code is also 8 */
        return sign | (uint8_t)nearbyintf(a * 0x1p9f);
    }
    int e;
    float fr = frexpf(a, &e); /* a = fr * 2^e, fr in [0.5, 1) */
    e -= 1;                   /* a = (2 fr) * 2^e, 2 fr in [1, 2) */
    int m = (int)nearbyintf((2.0f * fr - 1.0f) * 8.0f);
    if (m == 8) {
        m = 0;
        e++;
    }
    int code = ((e + 7) << 3) | m;
    if (code > 0x7e) code = 0x7e;
    return sign | (uint8_t)code;
}

float vt_e4m3_to_f32(uint8_t v) {
    int s = v >> 7, e = (v >> 3) & 0xf, m = v & 7;
    float r;
    if (e == 15 && m == 7) return s ? -NAN : NAN;
    if (e == 0)
        r = (float)m * 0x1p-9f;
    else
        r = ldexpf(1.0f + (float)m / 8.0f, e - 7);
    return s ? -r : r;
}

uint8_t vt_f32_to_e8m0_ceil(float f) {
    float a = fabsf(f);
    if (isnan(a) || isinf(a)) return 0xff;
    if (a == 0.0f) return 0; /* 2^-127 */
    int e;
    float fr = frexpf(a, &e); /* a = fr * 2^e, fr in [0.5,1): ceil(log2 a) = e, or e-1 if fr==0.5 */
    int c = (fr == 0.5f) ? e - 1 : e;
    if (c < -127) c = -127;
    if (c > 127) c = 127;
    return (uint8_t)(c + 127);
}

float vt_e8m0_to_f32(uint8_t v) {
    if (v == 0xff) return NAN;
    return ldexpf(1.0f, (int)v - 127);
}

static const float e2m1_mag[8] = {0.0f, 0.5f, 1.0f, 1.5f, 2.0f, 3.0f, 4.0f, 6.0f};

uint8_t vt_f32_to_e2m1(float f) {
    return vt_e2m1_code(f); /* core/codes_hd.h, shared with the CUDA kernels */
}

float vt_e2m1_to_f32(uint8_t code) {
    float m = e2m1_mag[code & 7];
    return (code & 8) ? -m : m;
}

void vt_f16_to_f32_row(const uint16_t *src, float *dst, size_t n) {
    for (size_t i = 0; i < n; i++) dst[i] = vt_f16_to_f32(src[i]);
}
void vt_f32_to_f16_row(const float *src, uint16_t *dst, size_t n) {
    for (size_t i = 0; i < n; i++) dst[i] = vt_f32_to_f16(src[i]);
}
void vt_bf16_to_f32_row(const uint16_t *src, float *dst, size_t n) {
    for (size_t i = 0; i < n; i++) dst[i] = vt_bf16_to_f32(src[i]);
}
void vt_f32_to_bf16_row(const float *src, uint16_t *dst, size_t n) {
    for (size_t i = 0; i < n; i++) dst[i] = vt_f32_to_bf16(src[i]);
}

int vt_convert_to_f32(vt_dtype t, const void *src, float *dst, size_t n) {
    switch (t) {
    case VT_DTYPE_F32:
        memmove(dst, src, n * 4);
        return 0;
    case VT_DTYPE_F16:
        vt_f16_to_f32_row(src, dst, n);
        return 0;
    case VT_DTYPE_BF16:
        vt_bf16_to_f32_row(src, dst, n);
        return 0;
#define CONV(T, ty)                                                                                \
    case T: {                                                                                      \
        const ty *s = src;                                                                         \
        for (size_t i = 0; i < n; i++) dst[i] = (float)s[i];                                       \
        return 0;                                                                                  \
    }
        CONV(VT_DTYPE_F64, double)
        CONV(VT_DTYPE_I8, int8_t)
        CONV(VT_DTYPE_U8, uint8_t)
        CONV(VT_DTYPE_BOOL, uint8_t)
        CONV(VT_DTYPE_I16, int16_t)
        CONV(VT_DTYPE_U16, uint16_t)
        CONV(VT_DTYPE_I32, int32_t)
        CONV(VT_DTYPE_U32, uint32_t)
        CONV(VT_DTYPE_I64, int64_t)
        CONV(VT_DTYPE_U64, uint64_t)
#undef CONV
    case VT_DTYPE_FP8_E4M3: {
        const uint8_t *s = src;
        for (size_t i = 0; i < n; i++) dst[i] = vt_e4m3_to_f32(s[i]);
        return 0;
    }
    default:
        return vt_fail(-EINVAL, "unknown dtype %d", (int)t);
    }
}

uint64_t vt_tensor_numel(const vt_tensor_desc *d) {
    uint64_t n = 1;
    for (uint32_t i = 0; i < d->ndim && i < VT_MAX_DIMS; i++) {
        if (d->dims[i] && n > UINT64_MAX / d->dims[i]) {
            vt_fail(-EOVERFLOW, "tensor '%s': element count overflows", d->name);
            return 0;
        }
        n *= d->dims[i];
    }
    return n;
}

void vt_tensor_rows_cols(const vt_tensor_desc *d, uint64_t *rows, uint64_t *cols) {
    if (d->ndim == 0) {
        *rows = 1;
        *cols = 1;
        return;
    }
    uint64_t c = d->dims[d->ndim - 1], r = 1;
    for (uint32_t i = 0; i + 1 < d->ndim; i++) r *= d->dims[i];
    *rows = r;
    *cols = c;
}
