/* Conversions checked against independent oracles: the compiler's _Float16 for f16, and for
 * every small type a brute-force "nearest representable value, ties to the even code" search
 * over the exhaustive table of the type's values. */
#include <errno.h>
#include <float.h>
#include <math.h>

#include "vt_test.h"
#include "vtstore/core.h"

static float u2f(uint32_t u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* Oracle: nearest among sorted non-negative finite values vals[0..n) (codes codes[]); ties to
 * the even code; beyond the largest value: overflow_code (Inf or saturation) when x >= limit. */
typedef struct {
    double vals[70000];
    uint32_t codes[70000];
    int n;
} table;

static uint32_t nearest(const table *t, double a) {
    int lo = 0, hi = t->n - 1;
    if (a >= t->vals[hi]) return t->codes[hi];
    while (hi - lo > 1) {
        int mid = (lo + hi) / 2;
        if (t->vals[mid] <= a)
            lo = mid;
        else
            hi = mid;
    }
    double dl = a - t->vals[lo], dh = t->vals[hi] - a;
    if (dl < dh) return t->codes[lo];
    if (dh < dl) return t->codes[hi];
    return (t->codes[lo] & 1) ? t->codes[hi] : t->codes[lo];
}

static table tb;

static void test_f16(void) {
    /* decode: all 65536 patterns against _Float16 */
    for (uint32_t h = 0; h < 65536; h++) {
        _Float16 hf;
        uint16_t hh = (uint16_t)h;
        memcpy(&hf, &hh, 2);
        float want = (float)hf, got = vt_f16_to_f32(hh);
        if (isnan(want))
            CHECKF(isnan(got), "f16 %04x", h);
        else
            CHECKF(memcmp(&want, &got, 4) == 0, "f16 %04x -> %g want %g", h, got, want);
    }
    /* encode: every f16 value, the midpoints to its neighbours and one f32 ulp either side */
    tb.n = 0;
    for (uint32_t h = 0; h < 0x7c00; h++) {
        tb.vals[tb.n] = vt_f16_to_f32((uint16_t)h);
        tb.codes[tb.n++] = h;
    }
    int checked = 0;
    for (uint32_t h = 0; h < 0x7c00; h++) {
        double v = vt_f16_to_f32((uint16_t)h);
        double nx = h + 1 < 0x7c00 ? vt_f16_to_f32((uint16_t)(h + 1)) : 65520.0;
        float cands[5] = {(float)v, (float)((v + nx) / 2), nextafterf((float)((v + nx) / 2), 0),
                          nextafterf((float)((v + nx) / 2), INFINITY),
                          nextafterf((float)v, INFINITY)};
        for (int k = 0; k < 5; k++) {
            for (int s = 0; s < 2; s++) {
                float x = s ? -cands[k] : cands[k];
                _Float16 want_h = (_Float16)x;
                uint16_t want;
                memcpy(&want, &want_h, 2);
                uint16_t got = vt_f32_to_f16(x);
                CHECKF(got == want, "f32 %a -> f16 %04x want %04x", x, got, want);
                checked++;
            }
        }
    }
    /* a stride over all f32 bit patterns, NaN and Inf included */
    for (uint64_t u = 0; u < 0x100000000ull; u += 65521) {
        float x = u2f((uint32_t)u);
        _Float16 want_h = (_Float16)x;
        uint16_t want, got = vt_f32_to_f16(x);
        memcpy(&want, &want_h, 2);
        if (isnan(x))
            CHECKF((got & 0x7c00) == 0x7c00 && (got & 0x3ff), "NaN %08x -> %04x", (unsigned)u, got);
        else
            CHECKF(got == want, "f32 %08x -> %04x want %04x", (unsigned)u, got, want);
        checked++;
    }
    printf("f16: 65536 decodes, %d encodes checked\n", checked);
}

static void test_bf16(void) {
    tb.n = 0;
    for (uint32_t h = 0; h < 0x7f80; h++) {
        tb.vals[tb.n] = vt_bf16_to_f32((uint16_t)h);
        tb.codes[tb.n++] = h;
    }
    int checked = 0;
    for (uint64_t u = 0; u < 0x100000000ull; u += 9973) {
        float x = u2f((uint32_t)u);
        uint16_t got = vt_f32_to_bf16(x);
        if (isnan(x)) {
            CHECKF(isnan(vt_bf16_to_f32(got)), "bf16 NaN %08x -> %04x", (unsigned)u, got);
            continue;
        }
        double a = fabs((double)x);
        uint32_t want;
        /* beyond the largest finite bf16 plus half an ulp: Inf */
        if (a >= 0x1.fep127 + 0x1p119)
            want = 0x7f80;
        else
            want = nearest(&tb, a);
        if (signbit(x)) want |= 0x8000;
        CHECKF(got == want, "f32 %08x -> bf16 %04x want %04x", (unsigned)u, got, want);
        checked++;
    }
    CHECK(vt_f32_to_bf16(INFINITY) == 0x7f80);
    CHECK(vt_f32_to_bf16(-INFINITY) == 0xff80);
    printf("bf16: %d encodes checked\n", checked);
}

static void test_e4m3(void) {
    /* decode table from the OCP spec definition */
    tb.n = 0;
    for (uint32_t c = 0; c < 256; c++) {
        float v = vt_e4m3_to_f32((uint8_t)c);
        int e = (c >> 3) & 15, m = c & 7;
        double want = e == 0 ? m / 8.0 * ldexp(1, -6) : (1 + m / 8.0) * ldexp(1, e - 7);
        if (c & 0x80) want = -want;
        if ((c & 0x7f) == 0x7f)
            CHECKF(isnan(v), "e4m3 %02x not NaN", c);
        else
            CHECKF(v == (float)want, "e4m3 %02x -> %g want %g", c, v, want);
        if (c < 0x7f) {
            tb.vals[tb.n] = v;
            tb.codes[tb.n++] = c;
        }
    }
    CHECK(vt_e4m3_to_f32(0x7e) == 448.0f);
    int checked = 0;
    for (uint64_t u = 0; u < 0x100000000ull; u += 4099) {
        float x = u2f((uint32_t)u);
        uint8_t got = vt_f32_to_e4m3(x);
        if (isnan(x) || isinf(x)) {
            CHECK((got & 0x7f) == 0x7f);
            continue;
        }
        uint32_t want = nearest(&tb, fabs((double)x)); /* saturates at 448 */
        if (signbit(x)) want |= 0x80;
        CHECKF(got == want, "f32 %a -> e4m3 %02x want %02x", x, got, want);
        checked++;
    }
    /* every midpoint between neighbours: ties to even */
    for (int i = 0; i + 1 < tb.n; i++) {
        float mid = (float)((tb.vals[i] + tb.vals[i + 1]) / 2);
        uint8_t want = (tb.codes[i] & 1) ? (uint8_t)tb.codes[i + 1] : (uint8_t)tb.codes[i];
        CHECKF(vt_f32_to_e4m3(mid) == want, "e4m3 midpoint %g", mid);
    }
    printf("e4m3: 256 decodes, %d encodes checked\n", checked);
}

static void test_e2m1_e8m0(void) {
    static const float mag[8] = {0, .5f, 1, 1.5f, 2, 3, 4, 6};
    tb.n = 0;
    for (int c = 0; c < 16; c++) {
        float want = (c & 8) ? -mag[c & 7] : mag[c & 7];
        CHECK(vt_e2m1_to_f32((uint8_t)c) == want);
        if (c < 8) {
            tb.vals[tb.n] = mag[c];
            tb.codes[tb.n++] = (uint32_t)c;
        }
    }
    for (int i = -8000; i <= 8000; i++) {
        float x = i / 1000.0f;
        uint32_t want = nearest(&tb, fabs((double)x));
        if (signbit(x)) want |= 8;
        CHECKF(vt_f32_to_e2m1(x) == want, "e2m1(%g) = %d want %u", x, vt_f32_to_e2m1(x), want);
    }
    for (int i = 0; i + 1 < 8; i++) { /* ties */
        float mid = (mag[i] + mag[i + 1]) / 2;
        uint8_t want = (i & 1) ? (uint8_t)(i + 1) : (uint8_t)i;
        CHECKF(vt_f32_to_e2m1(mid) == want, "e2m1 tie %g", mid);
    }
    for (int v = 0; v < 255; v++) CHECK(vt_e8m0_to_f32((uint8_t)v) == ldexpf(1, v - 127));
    CHECK(isnan(vt_e8m0_to_f32(255)));
    CHECK(vt_f32_to_e8m0_ceil(1.0f) == 127);
    CHECK(vt_f32_to_e8m0_ceil(1.5f) == 128);
    CHECK(vt_f32_to_e8m0_ceil(0.25f) == 125);
    CHECK(vt_f32_to_e8m0_ceil(0.3f) == 126);
}

int main(void) {
    test_f16();
    test_bf16();
    test_e4m3();
    test_e2m1_e8m0();
    CHECK(vt_dtype_size(VT_DTYPE_BF16) == 2);
    vt_dtype d;
    CHECK(vt_dtype_from_name("bf16", &d) == 0 && d == VT_DTYPE_BF16);
    CHECK(vt_dtype_from_name("nope", &d) == -EINVAL);
    return vt_test_done("test_dtype");
}
