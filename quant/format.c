/* quant/format.c — the format table: names, block geometry, byte counts, tensor-level
 * parameters (vt_quant_observe) and the per-format row ops behind the dispatch in
 * quant_dispatch.c. */
#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "quant_internal.h"

#define NF4DQ_BPW (8.0 * (double)sizeof(vt_block_nf4_dq) / (VT_NF4DQ_GROUP * VT_QK_NF4))

/* Indexed by vt_format. */
static const vt_format_info g_formats[VT_FMT_COUNT] = {
    [VT_FMT_F32] = {"f32", 1, 4, 32.0, 1, 0},
    [VT_FMT_F16] = {"f16", 1, 2, 16.0, 1, 0},
    [VT_FMT_BF16] = {"bf16", 1, 2, 16.0, 1, 0},
    [VT_FMT_Q8_0] = {"q8_0", VT_QK8_0, sizeof(vt_block_q8_0), 8.5, 1, 0},
    [VT_FMT_Q4_0] = {"q4_0", VT_QK4_0, sizeof(vt_block_q4_0), 4.5, 1, 0},
    [VT_FMT_Q4_1] = {"q4_1", VT_QK4_1, sizeof(vt_block_q4_1), 5.0, 1, 0},
    [VT_FMT_Q4_K] = {"q4_k", VT_QK_K, sizeof(vt_block_q4_k), 4.5, 0, 0},
    [VT_FMT_Q6_K] = {"q6_k", VT_QK_K, sizeof(vt_block_q6_k), 6.5625, 0, 0},
    [VT_FMT_INT8] = {"int8", VT_QK_INT8, sizeof(vt_block_int8), 8.5, 1, 0},
    [VT_FMT_NF4] = {"nf4", VT_QK_NF4, sizeof(vt_block_nf4), 4.5, 1, 0},
    /* block_elems/bytes of nf4_dq describe its 64-element NF4 blocks; bits per weight is per
     * 256-block super-block (8456 bytes / 16384 weights). */
    [VT_FMT_NF4_DQ] = {"nf4_dq", VT_QK_NF4, VT_QK_NF4 / 2, NF4DQ_BPW, 1, 0},
    [VT_FMT_NVFP4] = {"nvfp4", VT_QK_NVFP4, sizeof(vt_block_nvfp4), 4.5, 1, 1},
    [VT_FMT_MXFP4] = {"mxfp4", VT_QK_MXFP4, sizeof(vt_block_mxfp4), 4.25, 1, 0},
    [VT_FMT_AWQ_INT4] = {"awq_int4", VT_QK_AWQ, sizeof(vt_block_awq), 4.25, 1, 1},
};

static int fmt_valid(uint32_t fmt) {
    return (fmt & ~(0xffu | VT_FMT_SPARSE24)) == 0 && VT_FMT_BASE(fmt) < VT_FMT_COUNT;
}

const vt_format_info *vt_format_get(uint32_t fmt) {
    if (!fmt_valid(fmt)) return NULL;
    return &g_formats[VT_FMT_BASE(fmt)];
}

int vt_format_from_name(const char *name, uint32_t *fmt) {
    if (!name || !fmt) return vt_fail(-EINVAL, "vt_format_from_name: NULL argument");
    size_t len = strlen(name);
    uint32_t flags = 0;
    const char *plus = strchr(name, '+');
    if (plus) {
        if (strcasecmp(plus, "+2:4") != 0 && strcasecmp(plus, "+sparse") != 0)
            return vt_fail(-EINVAL, "format '%s': unknown suffix '%s' (expected +2:4 or +sparse)",
                           name, plus);
        len = (size_t)(plus - name);
        flags = VT_FMT_SPARSE24;
    }
    for (uint32_t f = 0; f < VT_FMT_COUNT; f++) {
        const char *n = g_formats[f].name;
        if (strlen(n) == len && strncasecmp(n, name, len) == 0) {
            if (flags && f == VT_FMT_NF4_DQ)
                return vt_fail(-EINVAL,
                               "format '%s': nf4_dq cannot be combined with 2:4 sparsity "
                               "(its super-blocks cross rows)",
                               name);
            *fmt = f | flags;
            return 0;
        }
    }
    return vt_fail(-EINVAL,
                   "unknown format '%s' (expected f32, f16, bf16, q8_0, q4_0, q4_1, q4_k, q6_k, "
                   "int8, nf4, nf4_dq, nvfp4, mxfp4 or awq_int4, optionally with +2:4)",
                   name);
}

const char *vt_format_name(uint32_t fmt, char *buf, size_t cap) {
    if (!buf || cap == 0) return buf;
    if (!fmt_valid(fmt))
        snprintf(buf, cap, "?");
    else
        snprintf(buf, cap, "%s%s", g_formats[VT_FMT_BASE(fmt)].name,
                 (fmt & VT_FMT_SPARSE24) ? "+2:4" : "");
    return buf;
}

static uint64_t gcd_u64(uint64_t a, uint64_t b) {
    while (b) {
        uint64_t t = a % b;
        a = b;
        b = t;
    }
    return a;
}

uint64_t vt_quant_row_align(uint32_t fmt, uint64_t cols) {
    if (!fmt_valid(fmt) || fmt != VT_FMT_NF4_DQ || cols == 0) return 1;
    uint64_t bpr = (cols + VT_QK_NF4 - 1) / VT_QK_NF4;
    return VT_NF4DQ_GROUP / gcd_u64(VT_NF4DQ_GROUP, bpr);
}

/* Above this a row's byte count (at most 4 bytes a value plus 2:4 indices) could overflow
 * 64 bits; such sizes are reported as 0. */
#define VT_QUANT_MAX_COLS (UINT64_MAX / 8)

uint64_t vt_quant_row_bytes(uint32_t fmt, uint64_t cols) {
    if (!fmt_valid(fmt) || cols > VT_QUANT_MAX_COLS) return 0;
    uint32_t base = VT_FMT_BASE(fmt);
    if (base == VT_FMT_NF4_DQ) return 0;
    if (fmt & VT_FMT_SPARSE24) return vt_sparse24_row_bytes(base, cols);
    const vt_format_info *fi = &g_formats[base];
    return (cols + fi->block_elems - 1) / fi->block_elems * fi->block_bytes;
}

uint64_t vt_quant_bytes(uint32_t fmt, uint64_t rows, uint64_t cols) {
    if (!fmt_valid(fmt) || cols > VT_QUANT_MAX_COLS) return 0;
    uint64_t n;
    if (fmt == VT_FMT_NF4_DQ) {
        /* vt_nf4dq_bytes: ceil(rows * blocks / 256) super-blocks of sizeof(vt_block_nf4_dq) */
        uint64_t bpr = (cols + VT_QK_NF4 - 1) / VT_QK_NF4;
        if (__builtin_mul_overflow(rows, bpr, &n) ||
            __builtin_mul_overflow(n / VT_NF4DQ_GROUP + 1, (uint64_t)sizeof(vt_block_nf4_dq), &n))
            return 0;
        return vt_nf4dq_bytes(rows, cols);
    }
    if (__builtin_mul_overflow(rows, vt_quant_row_bytes(fmt, cols), &n)) return 0;
    return n;
}

double vt_format_bpw(uint32_t fmt, uint64_t cols) {
    const vt_format_info *fi = vt_format_get(fmt);
    if (!fi) return 0.0;
    if (cols == 0) return fi->bits_per_weight;
    if (VT_FMT_BASE(fmt) == VT_FMT_NF4_DQ) {
        uint64_t rows = vt_quant_row_align(fmt, cols);
        return 8.0 * (double)vt_nf4dq_bytes(rows, cols) / ((double)rows * (double)cols);
    }
    return 8.0 * (double)vt_quant_row_bytes(fmt, cols) / (double)cols;
}

void vt_quant_params_init(vt_quant_params *p) {
    if (!p) return;
    memset(p, 0, sizeof *p);
    p->tensor_scale = NAN; /* unset: nvfp4 refuses it (quant_dispatch.c), the others ignore it */
}

int vt_quant_observe(uint32_t fmt, vt_quant_params *p, const float *x, uint64_t n) {
    if (!fmt_valid(fmt)) return vt_fail(-EINVAL, "vt_quant_observe: invalid format %#x", fmt);
    if (!p || (!x && n)) return vt_fail(-EINVAL, "vt_quant_observe: NULL argument");
    float amax = p->amax;
    for (uint64_t i = 0; i < n; i++) {
        float a = fabsf(x[i]);
        if (!(a <= 3.402823466e38f))
            return vt_fail(VT_ENONFINITE, "vt_quant_observe: non-finite value %g at index %llu",
                           (double)x[i], (unsigned long long)i);
        if (a > amax) amax = a;
    }
    p->amax = amax;
    if (VT_FMT_BASE(fmt) == VT_FMT_NVFP4) {
        /* amax maps to the largest e2m1 value (6) times the largest e4m3 scale (448) */
        float ts = amax / (6.0f * 448.0f);
        /* a subnormal ts is so coarse that amax's block scale could pass 464, where vt_quantize
         * refuses it (quant/range.c): the next one up until it does not */
        while (ts > 0.0f && ts < FLT_MAX && (amax / 6.0f) / ts > 464.0f)
            ts = nextafterf(ts, FLT_MAX);
        p->tensor_scale = ts > 0.0f ? ts : 1.0f; /* 0 when amax == 0 or underflowed */
    } else {
        p->tensor_scale = 1.0f; /* the other formats have none */
    }
    return 0;
}

const vt_qrow_ops *vt_qops_get(uint32_t base_fmt) {
    switch (base_fmt) {
    case VT_FMT_F32:
        return &vt_qops_f32;
    case VT_FMT_F16:
        return &vt_qops_f16;
    case VT_FMT_BF16:
        return &vt_qops_bf16;
    case VT_FMT_Q8_0:
        return &vt_qops_q8_0;
    case VT_FMT_Q4_0:
        return &vt_qops_q4_0;
    case VT_FMT_Q4_1:
        return &vt_qops_q4_1;
    case VT_FMT_Q4_K:
        return &vt_qops_q4_k;
    case VT_FMT_Q6_K:
        return &vt_qops_q6_k;
    case VT_FMT_INT8:
        return &vt_qops_int8;
    case VT_FMT_NF4:
        return &vt_qops_nf4;
    case VT_FMT_NVFP4:
        return &vt_qops_nvfp4;
    case VT_FMT_MXFP4:
        return &vt_qops_mxfp4;
    case VT_FMT_AWQ_INT4:
        return &vt_qops_awq;
    default:
        return NULL; /* nf4_dq (whole-range functions) or out of range */
    }
}
