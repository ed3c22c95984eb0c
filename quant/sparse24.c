/* quant/sparse24.c — 2:4 structured sparsity over a row-blocked base format.
 *
 * A row of cols values is padded with zeros to a multiple of 4; in each group of 4 the two
 * largest magnitudes are kept (equal magnitudes: the lower index wins), in index order, giving a
 * compressed row of ccols = 2 * ceil(cols / 4) values that the base format quantizes as one row.
 * The row is stored as the base format's blocks of the compressed row followed by the index
 * bytes (layout in blocks.h). The work runs in chunks of 256 compressed values (every base block
 * size divides 256), so no allocation is needed: the base format is block-local, and for awq the
 * chunk gets the channel scales of the kept columns. */
#include <errno.h>
#include <math.h>
#include <string.h>

#include "quant_internal.h"

#define S24_CHUNK 256 /* compressed values per chunk = 128 groups = 512 input columns */

static int s24_geometry(uint32_t base_fmt, uint64_t *be, uint64_t *bb) {
    base_fmt = VT_FMT_BASE(base_fmt);
    const vt_format_info *fi = vt_format_get(base_fmt);
    if (!fi || base_fmt == VT_FMT_NF4_DQ || fi->block_elems == 0 ||
        S24_CHUNK % fi->block_elems != 0)
        return -1;
    *be = fi->block_elems;
    *bb = fi->block_bytes;
    return 0;
}

static uint64_t s24_base_bytes(uint64_t be, uint64_t bb, uint64_t ccols) {
    return (ccols + be - 1) / be * bb;
}

uint64_t vt_sparse24_row_bytes(uint32_t base_fmt, uint64_t cols) {
    uint64_t be, bb;
    if (s24_geometry(base_fmt, &be, &bb)) return 0;
    uint64_t groups = (cols + 3) / 4;
    return s24_base_bytes(be, bb, 2 * groups) + (groups + 1) / 2;
}

/* Kept pair of one group: the two largest |v| (ties to the lower index), ascending. */
static inline void s24_select(const float *v, int *i0, int *i1) {
    int k = 0, kept[2] = {0, 1};
    for (int i = 0; i < 4 && k < 2; i++) {
        float a = fabsf(v[i]);
        int above = 0;
        for (int j = 0; j < 4; j++) {
            float b = fabsf(v[j]);
            above += (b > a) || (b == a && j < i);
        }
        if (above < 2) kept[k++] = i;
    }
    *i0 = kept[0];
    *i1 = kept[1];
}

/* Group g of the padded row. */
static inline void s24_group(const float *x, uint64_t cols, uint64_t g, float *v) {
    for (int i = 0; i < 4; i++) {
        uint64_t c = 4 * g + (uint64_t)i;
        v[i] = c < cols ? x[c] : 0.0f;
    }
}

int vt_sparse24_quantize_row(const vt_qrow_ops *ops, uint32_t base_fmt, const float *x, void *dst,
                             uint64_t cols, const vt_quant_params *p, int ref, uint64_t *bad) {
    uint64_t be, bb;
    if (s24_geometry(base_fmt, &be, &bb) || !ops)
        return vt_fail(VT_EUNSUPPORTED, "2:4 sparsity: base format %u has no row blocks",
                       (unsigned)base_fmt);
    vt_qrow_fn fn = ref ? ops->quantize_ref : ops->quantize;
    if (!fn)
        return vt_fail(VT_EUNSUPPORTED, "2:4 sparsity: base format %u is read-only",
                       (unsigned)base_fmt);
    int awq = VT_FMT_BASE(base_fmt) == VT_FMT_AWQ_INT4 && p && p->channel_scale;
    uint64_t groups = (cols + 3) / 4, ccols = 2 * groups;
    uint8_t *out = dst, *idx = out + s24_base_bytes(be, bb, ccols);
    memset(idx, 0, (groups + 1) / 2);
    for (uint64_t c0 = 0; c0 < ccols; c0 += S24_CHUNK) {
        float cv[S24_CHUNK], cs[S24_CHUNK];
        uint64_t kc[S24_CHUNK]; /* the dense column of each kept value */
        uint64_t n = ccols - c0 < S24_CHUNK ? ccols - c0 : S24_CHUNK;
        for (uint64_t k = 0; k < n; k += 2) {
            uint64_t g = (c0 + k) / 2;
            float v[4];
            int i0, i1;
            s24_group(x, cols, g, v);
            s24_select(v, &i0, &i1);
            cv[k] = v[i0];
            cv[k + 1] = v[i1];
            kc[k] = 4 * g + (uint64_t)i0;
            kc[k + 1] = 4 * g + (uint64_t)i1;
            if (awq) { /* padded columns (beyond cols) hold 0, any scale works: use 1 */
                uint64_t a = 4 * g + (uint64_t)i0, b = 4 * g + (uint64_t)i1;
                cs[k] = a < cols ? p->channel_scale[a] : 1.0f;
                cs[k + 1] = b < cols ? p->channel_scale[b] : 1.0f;
            }
            idx[g / 2] |= (uint8_t)((i0 | i1 << 2) << ((g % 2) * 4));
        }
        vt_quant_params sub;
        const vt_quant_params *pp = p;
        if (awq) {
            sub = *p;
            sub.channel_scale = cs;
            sub.channel_count = n;
            pp = &sub;
        }
        const uint64_t r = bad ? vt_qrange_first(VT_FMT_BASE(base_fmt), cv, n, pp) : n;
        if (r < n) {
            *bad = kc[r];
            return -ERANGE;
        }
        fn(cv, out + c0 / be * bb, n, pp);
    }
    return 0;
}

void vt_sparse24_dequantize_row(const vt_qrow_ops *ops, uint32_t base_fmt, const void *src,
                                float *y, uint64_t cols, const vt_quant_params *p, int ref) {
    uint64_t be, bb;
    vt_dqrow_fn fn = ops ? (ref ? ops->dequantize_ref : ops->dequantize) : NULL;
    if (s24_geometry(base_fmt, &be, &bb) || !fn) { /* the dispatcher checks this first */
        memset(y, 0, cols * sizeof(float));
        return;
    }
    int awq = VT_FMT_BASE(base_fmt) == VT_FMT_AWQ_INT4 && p && p->channel_scale;
    uint64_t groups = (cols + 3) / 4, ccols = 2 * groups;
    const uint8_t *in = src, *idx = in + s24_base_bytes(be, bb, ccols);
    for (uint64_t c0 = 0; c0 < ccols; c0 += S24_CHUNK) {
        float cv[S24_CHUNK], cs[S24_CHUNK];
        uint64_t n = ccols - c0 < S24_CHUNK ? ccols - c0 : S24_CHUNK;
        vt_quant_params sub;
        const vt_quant_params *pp = p;
        if (awq) {
            for (uint64_t k = 0; k < n; k += 2) {
                uint64_t g = (c0 + k) / 2;
                int nib = (idx[g / 2] >> ((g % 2) * 4)) & 15;
                uint64_t a = 4 * g + (uint64_t)(nib & 3), b = 4 * g + (uint64_t)(nib >> 2);
                cs[k] = a < cols ? p->channel_scale[a] : 1.0f;
                cs[k + 1] = b < cols ? p->channel_scale[b] : 1.0f;
            }
            sub = *p;
            sub.channel_scale = cs;
            sub.channel_count = n;
            pp = &sub;
        }
        fn(in + c0 / be * bb, cv, n, pp);
        for (uint64_t k = 0; k < n; k += 2) {
            uint64_t g = (c0 + k) / 2;
            int nib = (idx[g / 2] >> ((g % 2) * 4)) & 15;
            float v[4] = {0.0f, 0.0f, 0.0f, 0.0f};
            v[nib & 3] = cv[k];
            v[nib >> 2] = cv[k + 1]; /* a corrupt nibble with equal indices keeps the second */
            for (int i = 0; i < 4; i++)
                if (4 * g + (uint64_t)i < cols) y[4 * g + (uint64_t)i] = v[i];
        }
    }
}
