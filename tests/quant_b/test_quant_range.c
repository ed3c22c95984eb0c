/* tests/quant_b/test_quant_range.c — vt_quantize refuses (-ERANGE, naming value, row and column)
 * finite values a format cannot hold, exactly at the edge of what it can: for each format with a
 * limit (f16, bf16, q8_0, q4_0, q4_1, awq_int4, nvfp4, int8) the largest value below the edge is
 * accepted and reads back finite and close, and the smallest at or past it is refused; the row
 * quantizer itself (no check) shows what the refusal prevents: an f16/bf16 Inf, a q8_0/q4_0/q4_1
 * block that reads back NaN, an awq_int4/nvfp4 value clipped by more than a quantization step.
 * int8's f32 scale has an edge too, just below FLT_MAX. Formats without a limit (nf4, nf4_dq,
 * mxfp4, f32) take the largest finite f32. The check
 * also runs for 2:4-sparse rows (naming the dense column), threaded and single-threaded, and
 * vt_quant_check (the same checks without quantizing) agrees with vt_quantize on every case. */
#include <errno.h>
#include <float.h>

#include "qb_util.h"
#include "quant/quant_fault.h"

#define COLS 256

/* x: COLS values of magnitude <= 2 (bg0: zeros), with x[col] = v */
static void fill(float *x, int col, float v, int bg0) {
    for (int i = 0; i < COLS; i++) x[i] = bg0 ? 0.0f : (float)((i * 7) % 9 - 4) * 0.5f;
    x[col] = v;
}

static vt_quant_params params(uint32_t fmt, float *scales) {
    vt_quant_params p;
    vt_quant_params_init(&p);
    if (VT_FMT_BASE(fmt) == VT_FMT_NVFP4) p.tensor_scale = 1.0f;
    if (VT_FMT_BASE(fmt) == VT_FMT_AWQ_INT4) {
        for (int i = 0; i < COLS; i++) scales[i] = 1.0f;
        p.channel_scale = scales;
        p.channel_count = COLS;
    }
    return p;
}

/* Quantize one row of x into fmt through the public API; 0 or the error. On success y gets the
 * dequantized row. vt_quant_check must give the same answer and message. */
static int roundtrip(uint32_t fmt, const float *x, float *y, int threads) {
    float s[COLS];
    vt_quant_params p = params(fmt, s);
    uint8_t *q = malloc(vt_quant_bytes(fmt, 1, COLS));
    char msg[512];
    const int crc = vt_quant_check(fmt, &p, x, 1, COLS);
    snprintf(msg, sizeof msg, "%s", crc ? vt_last_error() : "");
    int rc = vt_quantize(fmt, &p, x, 1, COLS, q, threads);
    const char *tail = strstr(vt_last_error(), ": value"), *ctail = strstr(msg, ": value");
    CHECKF(crc == rc && (!rc || (tail && ctail && strcmp(tail, ctail) == 0)),
           "vt_quant_check %d (%s) vs vt_quantize %d (%s)", crc, msg, rc,
           rc ? vt_last_error() : "");
    if (!rc) CHECK_RC(vt_dequantize(fmt, &p, q, 1, COLS, y, threads));
    free(q);
    return rc;
}

/* The row quantizer without the dispatcher's check: what would have been stored. */
static void unchecked(uint32_t fmt, const float *x, float *y) {
    float s[COLS];
    vt_quant_params p = params(fmt, s);
    uint8_t q[4 * COLS + 256];
    const vt_qrow_ops *ops = vt_qops_get(fmt);
    ops->quantize_ref(x, q, COLS, &p);
    ops->dequantize_ref(q, y, COLS, &p);
}

/* The edge of a format: values |v| < edge are accepted (edge itself refused); step: how far a
 * dequantized accepted value may be from v. */
typedef struct edge {
    uint32_t fmt;
    float edge;
    int inclusive; /* 1: edge itself is accepted, the next float up refused */
    float step;
    int bg0;   /* the other values zero (else within +-2) */
    int signs; /* 2: both signs; 1: +edge only; -1: -edge only */
} edge;

static void check_edge(const edge *e, int sign, int col) {
    char nb[32];
    vt_format_name(e->fmt, nb, sizeof nb);
    const float below = e->inclusive ? e->edge : nextafterf(e->edge, 0.0f);
    const float past = e->inclusive ? nextafterf(e->edge, FLT_MAX) : e->edge;
    float x[COLS], y[COLS];
    /* the largest value held: accepted, finite and within a step */
    fill(x, col, sign * below, e->bg0);
    int rc = roundtrip(e->fmt, x, y, 1);
    CHECKF(rc == 0, "%s: %g refused: %s", nb, (double)(sign * below), vt_last_error());
    if (!rc) {
        int fin = 1;
        for (int i = 0; i < COLS; i++) fin &= isfinite(y[i]) != 0;
        CHECKF(fin && fabsf(y[col] - x[col]) <= e->step, "%s: %g reads back as %g", nb,
               (double)x[col], (double)y[col]);
    }
    /* the first value past it: refused, naming value, row and column, threaded or not */
    fill(x, col, sign * past, e->bg0);
    for (int t = 0; t < 2; t++) {
        rc = roundtrip(e->fmt, x, y, t ? 0 : 1);
        char want[64];
        snprintf(want, sizeof want, "row 0, column %d is out of the format's range", col);
        CHECKF(rc == -ERANGE && strstr(vt_last_error(), want), "%s: %g: rc %d (%s)", nb,
               (double)x[col], rc, vt_last_error());
    }
    /* what the refusal prevents: Inf or NaN from the edge on; awq_int4 and nvfp4 clip (by less
     * than a step at the edge, by more at twice it) */
    const uint32_t b = VT_FMT_BASE(e->fmt);
    const int clips = b == VT_FMT_AWQ_INT4 || b == VT_FMT_NVFP4;
    if (clips) fill(x, col, sign * 2.0f * e->edge, e->bg0);
    unchecked(e->fmt, x, y);
    int nonfinite = 0;
    for (int i = 0; i < COLS; i++) nonfinite += !isfinite(y[i]);
    if (clips)
        CHECKF(!nonfinite && fabsf(y[col] - x[col]) > e->step, "%s: unchecked %g -> %g", nb,
               (double)x[col], (double)y[col]);
    else
        CHECKF(nonfinite >= 1, "%s: unchecked %g reads back finite (%g)", nb, (double)x[col],
               (double)y[col]);
}

static void no_limit(uint32_t fmt) {
    char nb[32];
    vt_format_name(fmt, nb, sizeof nb);
    float x[COLS], y[COLS];
    fill(x, 77, -FLT_MAX, 0);
    int rc = roundtrip(fmt, x, y, 0);
    CHECKF(rc == 0 && isfinite(y[77]), "%s: -FLT_MAX: rc %d (%s), reads %g", nb, rc,
           rc ? vt_last_error() : "", rc ? 0.0 : (double)y[77]);
}

/* 2:4: the kept value past the edge is named by its dense column */
static void sparse(uint32_t fmt, float v) {
    char nb[32];
    vt_format_name(fmt | VT_FMT_SPARSE24, nb, sizeof nb);
    float x[COLS], y[COLS];
    fill(x, 131, v, 0);
    int rc = roundtrip(fmt | VT_FMT_SPARSE24, x, y, 0);
    CHECKF(rc == -ERANGE && strstr(vt_last_error(), "column 131 is out"), "%s: rc %d (%s)", nb, rc,
           vt_last_error());
    fill(x, 131, v / 1000.0f, 0);
    CHECKF(roundtrip(fmt | VT_FMT_SPARSE24, x, y, 0) == 0, "%s: %g refused: %s", nb,
           (double)(v / 1000.0f), vt_last_error());
}

/* Values at the far ends of f32 (found by a review's differential fuzzing): each is either
 * refused or reads back finite. */
static void extremes(void) {
    float x[128], y[128], s[128];
    static uint8_t q[16384]; /* nf4_dq: one super-block of 256 blocks */
    CHECK(vt_quant_bytes(VT_FMT_NF4_DQ, 1, 128) <= sizeof q);
    /* nf4_dq: one block at FLT_MAX, one at 0: offset + scale q rounded to Inf, the block read
     * back as NaN; now the next code down */
    for (int i = 0; i < 128; i++) x[i] = 0.0f;
    x[0] = FLT_MAX;
    CHECK_RC(vt_quantize(VT_FMT_NF4_DQ, NULL, x, 1, 128, q, 1));
    CHECK_RC(vt_dequantize(VT_FMT_NF4_DQ, NULL, q, 1, 128, y, 1));
    int fin = 1;
    for (int i = 0; i < 128; i++) fin &= isfinite(y[i]) != 0;
    CHECKF(fin && y[0] > 0.99f * FLT_MAX, "nf4_dq FLT_MAX: y[0] %g, y[1] %g", (double)y[0],
           (double)y[1]);
    /* nvfp4 with a caller's tensor scale near the top: s rounds up, (ts s) 6 past FLT_MAX */
    vt_quant_params p;
    vt_quant_params_init(&p);
    p.tensor_scale = 9.6e35f;
    for (int i = 0; i < 16; i++) x[i] = 0.0f;
    x[0] = 3.4e38f;
    int rc = vt_quantize(VT_FMT_NVFP4, &p, x, 1, 16, q, 1);
    CHECKF(rc == -ERANGE, "nvfp4 ts 9.6e35, x 3.4e38: rc %d", rc);
    x[0] = 2.0e38f; /* within: s does not round past */
    CHECK_RC(vt_quantize(VT_FMT_NVFP4, &p, x, 1, 16, q, 1));
    CHECK_RC(vt_dequantize(VT_FMT_NVFP4, &p, q, 1, 16, y, 1));
    CHECKF(isfinite(y[0]) && fabsf(y[0] - x[0]) < 0.2f * x[0], "nvfp4 2e38 -> %g", (double)y[0]);
    /* awq with channel scales of 2^-126: w' = x s is small, but (dd (q - z)) / s passes FLT_MAX */
    for (int i = 0; i < 128; i++) x[i] = 0.0f, s[i] = 0x1p-126f;
    x[1] = FLT_MAX;
    x[2] = -1e-30f;
    vt_quant_params_init(&p);
    p.channel_scale = s;
    p.channel_count = 128;
    rc = vt_quantize(VT_FMT_AWQ_INT4, &p, x, 1, 128, q, 1);
    CHECKF(rc == -ERANGE && strstr(vt_last_error(), "column 1 "), "awq tiny scales: rc %d (%s)", rc,
           vt_last_error());
    x[1] = 1e36f; /* far from FLT_MAX (and w' = x s well inside f16): held */
    CHECK_RC(vt_quantize(VT_FMT_AWQ_INT4, &p, x, 1, 128, q, 1));
    CHECK_RC(vt_dequantize(VT_FMT_AWQ_INT4, &p, q, 1, 128, y, 1));
    CHECKF(isfinite(y[1]) && fabsf(y[1] - x[1]) < 0.04f * x[1], "awq 1e36 -> %g", (double)y[1]);
    /* The per-block check is skipped when a run's largest |x| (times awq's largest channel
     * scale) cannot be out of range: a bound, so that a run above it is checked block by block
     * and accepted when its blocks hold. awq: a large x under a small scale and a large scale
     * under a small x (amax x smax = 1e12, each w' about 1e3) */
    for (int i = 0; i < 128; i++) x[i] = 0.5f, s[i] = 1.0f;
    x[0] = 1e9f, s[0] = 1e-6f;
    x[1] = 1.0f, s[1] = 1e3f;
    vt_quant_params_init(&p);
    p.channel_scale = s;
    p.channel_count = 128;
    CHECK_RC(vt_quantize(VT_FMT_AWQ_INT4, &p, x, 1, 128, q, 1));
    CHECK_RC(vt_quant_check(VT_FMT_AWQ_INT4, &p, x, 1, 128));
    /* bf16: between its largest value and the first that rounds to Inf */
    for (int i = 0; i < 128; i++) x[i] = 1.0f;
    x[9] = 0x1.fe8p127f;
    CHECK_RC(vt_quantize(VT_FMT_BF16, NULL, x, 1, 128, q, 1));
    /* nvfp4 with the observed tensor scale of a subnormal tensor: amax / 2688 is coarse and
     * did not cover amax (refused); vt_quant_observe now rounds it up */
    static const float tiny[] = {3.9068e-42f, 1e-41f, 5.1e-41f, 1e-40f};
    for (size_t t = 0; t < sizeof tiny / sizeof tiny[0]; t++) {
        for (int i = 0; i < 16; i++) x[i] = 0.0f;
        x[0] = tiny[t];
        vt_quant_params_init(&p);
        CHECK_RC(vt_quant_observe(VT_FMT_NVFP4, &p, x, 16));
        rc = vt_quantize(VT_FMT_NVFP4, &p, x, 1, 16, q, 1);
        CHECKF(rc == 0, "nvfp4 subnormal %g, observed ts %g: rc %d (%s)", (double)tiny[t],
               (double)p.tensor_scale, rc, vt_last_error());
        if (!rc) {
            CHECK_RC(vt_dequantize(VT_FMT_NVFP4, &p, q, 1, 16, y, 1));
            CHECKF(fabsf(y[0] - x[0]) <= 0.25f * x[0], "nvfp4 subnormal %g -> %g", (double)x[0],
                   (double)y[0]);
        }
    }
}

/* A NaN and an out-of-range value in one call: the first unit (row, or run of blocks of a long
 * row) with an error is reported, the NaN first within a unit, the same on 1 or all threads and
 * in vt_quant_check. */
static void error_order(void) {
    const uint64_t rows = 1000, cols = 256;
    float *x = malloc(rows * cols * sizeof(float));
    uint8_t *q = malloc(vt_quant_bytes(VT_FMT_F16, rows, cols));
    static const struct {
        uint64_t big_row, nan_row;
        int want;
    } cases[] = {{3, 900, -ERANGE}, {900, 3, VT_ENONFINITE}, {5, 5, VT_ENONFINITE}};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++)
        for (int rep = 0; rep < 20; rep++) {
            for (uint64_t i = 0; i < rows * cols; i++) x[i] = vt_rand_normal();
            x[cases[c].big_row * cols + 10] = 1e5f;
            x[cases[c].nan_row * cols + 200] = NAN;
            for (int t = 0; t < 3; t++) {
                int rc = t == 2 ? vt_quant_check(VT_FMT_F16, NULL, x, rows, cols)
                                : vt_quantize(VT_FMT_F16, NULL, x, rows, cols, q, t ? 0 : 1);
                char want[48];
                snprintf(want, sizeof want, "row %llu, column %d",
                         (unsigned long long)(cases[c].want == -ERANGE ? cases[c].big_row
                                                                       : cases[c].nan_row),
                         cases[c].want == -ERANGE ? 10 : 200);
                CHECKF(rc == cases[c].want && strstr(vt_last_error(), want),
                       "case %zu, %s: rc %d (%s), want %d at %s", c,
                       t == 2 ? "check"
                       : t    ? "threads"
                              : "1 thread",
                       rc, vt_last_error(), cases[c].want, want);
            }
        }
    free(x);
    free(q);
    /* one long row (units of about 32768 values): a range error in its first unit before a NaN
     * in its second */
    const uint64_t lc = 70001;
    float *l = malloc(lc * sizeof(float));
    uint8_t *lq = malloc(vt_quant_bytes(VT_FMT_F16, 1, lc));
    for (uint64_t i = 0; i < lc; i++) l[i] = vt_rand_normal();
    l[100] = 1e5f;
    l[50000] = NAN;
    for (int t = 0; t < 3; t++) {
        int rc = t == 2 ? vt_quant_check(VT_FMT_F16, NULL, l, 1, lc)
                        : vt_quantize(VT_FMT_F16, NULL, l, 1, lc, lq, t ? 0 : 1);
        CHECKF(rc == -ERANGE && strstr(vt_last_error(), "column 100 "), "long row %d: rc %d (%s)",
               t, rc, vt_last_error());
    }
    free(l);
    free(lq);
}

/* vt_quantize_fault (store/import.c names a refused value by the tensor's row with it): the
 * kind, row, column and value of the value vt_quantize's message names, on 1 or all threads, for
 * short and long (segmented) rows, 2:4 rows (the dense column) and nf4_dq; code 0 when nothing
 * or no value was refused. vt_qfault_fail rebuilds the message exactly, and counts the row from
 * a base row under another name. */
typedef struct fault_case {
    uint32_t fmt;
    uint64_t rows, cols;
    uint64_t r1, c1; /* a value past the format's range (f16 / q8_0: 1e9) */
    uint64_t r2, c2; /* a NaN */
    int code;        /* the one reported */
} fault_case;

static void fault_position(void) {
    static const fault_case cases[] = {
        {VT_FMT_F16, 1000, 256, 3, 10, 900, 200, -ERANGE},
        {VT_FMT_F16, 1000, 256, 900, 10, 3, 200, VT_ENONFINITE},
        {VT_FMT_F16, 1000, 256, 517, 255, 517, 0, VT_ENONFINITE}, /* NaN first in its row */
        {VT_FMT_F16, 3, 70001, 1, 100, 1, 50000, -ERANGE},        /* long rows: units of a row */
        {VT_FMT_F16, 3, 70001, 2, 69999, 2, 69998, VT_ENONFINITE},
        {VT_FMT_Q8_0 | VT_FMT_SPARSE24, 40, 256, 37, 131, 39, 7, -ERANGE},
        {VT_FMT_Q8_0, 300, 256, 123, 45, 299, 255, -ERANGE},
        {VT_FMT_NF4_DQ, 128, 256, 0, 0, 77, 201, VT_ENONFINITE}, /* no range limit */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const fault_case *c = &cases[i];
        char nb[32];
        vt_format_name(c->fmt, nb, sizeof nb);
        const uint64_t n = c->rows * c->cols;
        float *x = malloc(n * sizeof(float));
        uint8_t *q = malloc(vt_quant_bytes(c->fmt, c->rows, c->cols));
        for (uint64_t k = 0; k < n; k++) x[k] = vt_rand_normal();
        if (VT_FMT_BASE(c->fmt) != VT_FMT_NF4_DQ) x[c->r1 * c->cols + c->c1] = 1e9f;
        x[c->r2 * c->cols + c->c2] = NAN;
        const int rng = c->code == -ERANGE;
        const uint64_t wr = rng ? c->r1 : c->r2, wc = rng ? c->c1 : c->c2;
        for (int t = 0; t < 2; t++) {
            vt_qfault f = {.code = 12345};
            int rc = vt_quantize_fault(c->fmt, NULL, x, c->rows, c->cols, q, t ? 0 : 1, &f);
            char msg[512];
            snprintf(msg, sizeof msg, "%s", vt_last_error());
            CHECKF(rc == c->code && f.code == c->code && f.row == wr && f.col == wc &&
                       (rng ? f.value == 1e9f : isnan(f.value)),
                   "%s case %zu, %d threads: rc %d, fault %d at row %llu, column %llu, %g; want "
                   "%d at row %llu, column %llu (%s)",
                   nb, i, t ? 0 : 1, rc, f.code, (unsigned long long)f.row,
                   (unsigned long long)f.col, (double)f.value, c->code, (unsigned long long)wr,
                   (unsigned long long)wc, msg);
            if (f.code != c->code) continue;
            CHECK(vt_qfault_fail(&f, "vt_quantize", c->fmt, "", 0, "row") == c->code);
            CHECKF(strcmp(msg, vt_last_error()) == 0, "%s case %zu: '%s' rebuilt as '%s'", nb, i,
                   msg, vt_last_error());
            char want[128];
            snprintf(want, sizeof want,
                     "in t: vt_quantize %s: %svalue %s at tensor row %llu, column %llu", nb,
                     rng ? "" : "non-finite ", rng ? "1e+09" : "nan",
                     (unsigned long long)(wr + 1000), (unsigned long long)wc);
            vt_qfault_fail(&f, "vt_quantize", c->fmt, "in t: ", 1000, "tensor row");
            CHECKF(strstr(vt_last_error(), want) == vt_last_error(), "%s case %zu: '%s', want '%s'",
                   nb, i, vt_last_error(), want);
        }
        free(x);
        free(q);
    }
    /* nothing refused, or not for a value: code 0 */
    float x[64];
    uint8_t q[64 * 4];
    for (int k = 0; k < 64; k++) x[k] = vt_rand_normal();
    vt_qfault f = {.code = 12345};
    CHECK_RC(vt_quantize_fault(VT_FMT_Q4_0, NULL, x, 1, 64, q, 0, &f));
    CHECK(f.code == 0);
    f.code = 12345;
    vt_quant_params p;
    vt_quant_params_init(&p); /* nvfp4 with its scale unset */
    CHECK(vt_quantize_fault(VT_FMT_NVFP4, &p, x, 1, 64, q, 0, &f) == -EINVAL && f.code == 0);
}

int main(void) {
    vt_test_seed();
    /* f16 and bf16 round to nearest even: 65520 is the first f32 that becomes an f16 Inf;
     * 0x1.ffp127 (0x7f7f8000) the first that becomes a bf16 Inf. The block formats' f16 scales
     * overflow from 65520 on: q8_0 at max|x| = 65520 * 127, q4_0 at 65520 * 8, q4_1 at
     * (max - min) = 65520 * 15 and at min = -65520. awq_int4's scale is clamped to 65504, so
     * (max - min) up to 65504 * 15 is held. nvfp4 (tensor scale 1): the e4m3 block scale
     * amax / 6 saturates past 464. */
    const edge edges[] = {
        {VT_FMT_F16, 65520.0f, 0, 16.0f, 0, 2},
        {VT_FMT_BF16, 0x1.ffp127f, 0, 0x1p120f, 0, 2},
        {VT_FMT_Q8_0, 65520.0f * 127.0f, 0, 65536.0f / 2, 0, 2},
        {VT_FMT_Q4_0, 65520.0f * 8.0f, 0, 65536.0f / 2, 0, 2},
        {VT_FMT_Q4_1, 65520.0f, 0, 65536.0f / 2, 0, -1},            /* the f16 minimum */
        {VT_FMT_Q4_1, 65520.0f * 15.0f, 0, 65536.0f / 2, 1, 1},     /* max - min, min 0 */
        {VT_FMT_AWQ_INT4, 65504.0f * 15.0f, 1, 65504.0f / 2, 1, 2}, /* max - min */
        {VT_FMT_NVFP4, 464.0f * 6.0f, 1, 448.0f, 0, 2},
    };
    for (size_t i = 0; i < sizeof edges / sizeof edges[0]; i++)
        for (int sign = -1; sign <= 1; sign += 2)
            if (edges[i].signs == 2 || edges[i].signs == sign)
                check_edge(&edges[i], sign, (int)(i * 37 % COLS));
    /* awq: w' = x * s is what the scale covers: a channel scale can push x out of range */
    {
        float x[COLS], s[COLS];
        uint8_t q[COLS];
        vt_quant_params p = params(VT_FMT_AWQ_INT4, s);
        fill(x, 9, 1000.0f, 0);
        s[9] = 2000.0f;
        int rc = vt_quantize(VT_FMT_AWQ_INT4, &p, x, 1, COLS, q, 0);
        CHECKF(rc == -ERANGE && strstr(vt_last_error(), "column 9 "), "awq scaled: rc %d (%s)", rc,
               vt_last_error());
        s[9] = 500.0f;
        CHECK_RC(vt_quantize(VT_FMT_AWQ_INT4, &p, x, 1, COLS, q, 0));
    }
    /* int8: its f32 scale amax / 127 reads back as 127 x that, past FLT_MAX for the largest f32
     * values; the edge is the largest amax for which it does not */
    {
        float a = FLT_MAX;
        while (!(127.0f * (a / 127.0f) <= FLT_MAX)) a = nextafterf(a, 0.0f);
        CHECKF(a < FLT_MAX && a > 0.999f * FLT_MAX, "int8 edge %g", (double)a);
        check_edge(&(edge){VT_FMT_INT8, a, 1, 0x1p105f, 0, 2}, 1, 200);
        check_edge(&(edge){VT_FMT_INT8, a, 1, 0x1p105f, 0, 2}, -1, 201);
    }
    const uint32_t free_fmts[] = {VT_FMT_F32, VT_FMT_NF4, VT_FMT_NF4_DQ, VT_FMT_MXFP4};
    for (size_t i = 0; i < sizeof free_fmts / sizeof free_fmts[0]; i++) no_limit(free_fmts[i]);
    sparse(VT_FMT_Q8_0, 1e9f);
    sparse(VT_FMT_F16, 1e5f);
    sparse(VT_FMT_NVFP4, 1e4f);
    /* many rows, threaded: the reported position is one that is out of range */
    {
        const uint64_t rows = 300;
        float *x = malloc(rows * COLS * sizeof(float));
        uint8_t *q = malloc(vt_quant_bytes(VT_FMT_Q8_0, rows, COLS));
        for (uint64_t i = 0; i < rows * COLS; i++) x[i] = vt_rand_normal();
        CHECK_RC(vt_quant_check(VT_FMT_Q8_0, NULL, x, rows, COLS));
        x[123 * COLS + 45] = 1e8f;
        int rc = vt_quantize(VT_FMT_Q8_0, NULL, x, rows, COLS, q, 0);
        CHECKF(rc == -ERANGE && strstr(vt_last_error(), "value 1e+08 at row 123, column 45 "),
               "q8_0 threaded: rc %d (%s)", rc, vt_last_error());
        rc = vt_quant_check(VT_FMT_Q8_0, NULL, x, rows, COLS);
        CHECKF(rc == -ERANGE && strstr(vt_last_error(),
                                       "vt_quant_check q8_0: value 1e+08 at row 123, column 45 "),
               "vt_quant_check: rc %d (%s)", rc, vt_last_error());
        x[7 * COLS + 3] = NAN; /* a NaN before it: reported first, as vt_quantize does */
        rc = vt_quant_check(VT_FMT_Q8_0, NULL, x, rows, COLS);
        CHECKF(rc == VT_ENONFINITE && strstr(vt_last_error(), "row 7, column 3"),
               "vt_quant_check NaN: rc %d (%s)", rc, vt_last_error());
        free(x);
        free(q);
    }
    extremes();
    error_order();
    fault_position();
    return vt_test_done("test_quant_range");
}
