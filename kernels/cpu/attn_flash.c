/* Tiled flash attention on the CPU. One task = one K/V head x one tile of BM queries, holding
 * the rows of every query head of that K/V head's group (GQA), so each K/V tile is dequantized
 * once per task. For each tile of BN keys: dequantize K (transposed) and V into small f32
 * buffers, S = Q K^T, then the online softmax — running max m and sum l per row, the
 * accumulator rescaled by exp(m_old - m_new) — never holding more than one [rows][BN] tile of
 * scores. Memory per task: rows*(2D + BN + 2)*4 + 2*BN*D*4 bytes, independent of Nk. */
#include <errno.h>
#include <math.h>
#include <string.h>

#include "attn_internal.h"

#define BN 64 /* keys per tile */

typedef struct flash_ctx {
    const vt_attn_params *p;
    uint32_t group; /* query heads per K/V head */
    uint64_t bm;    /* queries per tile */
    uint64_t n_qt;  /* query tiles */
} flash_ctx;

static void load_q(const vt_attn_params *p, uint64_t idx, uint32_t D, float mul, float *dst) {
    switch (p->q_dtype) {
    case VT_DTYPE_F16:
        vt_f16_to_f32_row((const uint16_t *)p->q + idx, dst, D);
        break;
    case VT_DTYPE_BF16:
        vt_bf16_to_f32_row((const uint16_t *)p->q + idx, dst, D);
        break;
    default:
        memcpy(dst, (const float *)p->q + idx, (size_t)D * sizeof(float));
        break;
    }
    for (uint32_t d = 0; d < D; d++) dst[d] *= mul;
}

/* 4-float SIMD vectors (SSE2 baseline; GCC/Clang vector extensions), unaligned access. */
typedef float v4 __attribute__((vector_size(16), aligned(4)));

/* s[r][0..BN) = sum_d q[r][d] * kt[d][0..BN): keys along the vector lanes, 32 keys (8 vector
 * accumulators) at a time so the sums stay in registers. */
static void tile_scores(const float *restrict q, const float *restrict kt, float *restrict s,
                        uint32_t rows, uint32_t D) {
    for (uint32_t r = 0; r < rows; r++) {
        const float *qr = q + (size_t)r * D;
        for (int j0 = 0; j0 < BN; j0 += 32) {
            v4 acc[8] = {{0}};
            for (uint32_t d = 0; d < D; d++) {
                const v4 *kd = (const v4 *)(kt + (size_t)d * BN + j0);
                const float qd = qr[d];
                for (int i = 0; i < 8; i++) acc[i] += qd * kd[i];
            }
            v4 *sr = (v4 *)(s + (size_t)r * BN + j0);
            for (int i = 0; i < 8; i++) sr[i] = acc[i];
        }
    }
}

/* ar[0..D) = ar * alpha + sum_j p[j] * v[j][0..D): 32 columns at a time in registers. */
static void tile_pv(float *restrict ar, float alpha, const float *restrict p,
                    const float *restrict vt, int64_t n, uint32_t D) {
    uint32_t d0 = 0;
    for (; d0 + 32 <= D; d0 += 32) {
        v4 *a = (v4 *)(ar + d0);
        v4 acc[8];
        for (int i = 0; i < 8; i++) acc[i] = a[i] * alpha;
        for (int64_t j = 0; j < n; j++) {
            const v4 *vj = (const v4 *)(vt + (size_t)j * D + d0);
            const float pj = p[j];
            for (int i = 0; i < 8; i++) acc[i] += pj * vj[i];
        }
        for (int i = 0; i < 8; i++) a[i] = acc[i];
    }
    for (uint32_t d = d0; d < D; d++) { /* ragged head dim */
        float acc = ar[d] * alpha;
        for (int64_t j = 0; j < n; j++) acc += p[j] * vt[(size_t)j * D + d];
        ar[d] = acc;
    }
}

static int flash_task(void *vctx, uint64_t task, int tid) {
    const flash_ctx *c = vctx;
    const vt_attn_params *p = c->p;
    const vt_attn_kv *kv = &p->kv;
    const uint32_t D = kv->head_dim, G = c->group;
    const uint64_t nq = p->n_q, nk = kv->n_tokens;
    const uint32_t hk = (uint32_t)(task / c->n_qt);
    const uint64_t i0 = (task % c->n_qt) * c->bm;
    const uint64_t bm = nq - i0 < c->bm ? nq - i0 : c->bm;
    const uint32_t rows = (uint32_t)(G * bm); /* row r = (g = r / bm, i = i0 + r % bm) */
    const uint64_t rb = vt_attn_row_bytes(kv->format, D), hs = vt_attn_kv_head_stride(kv);
    const float log2e = 1.4426950408889634f;

    size_t nfl = (size_t)rows * (2 * D + BN + 3) + (size_t)2 * BN * D;
    float *buf = vt_malloc(nfl * sizeof(float));
    if (!buf) return vt_fail(-ENOMEM, "attn flash: K/V head %u: out of memory", hk);
    float *q = buf, *acc = q + (size_t)rows * D, *s = acc + (size_t)rows * D;
    float *m = s + (size_t)rows * BN, *l = m + rows, *lim = l + rows;
    float *kt = lim + rows, *vt = kt + (size_t)BN * D;

    /* scores kept in log2 units: q pre-multiplied by scale * log2(e) */
    for (uint32_t r = 0; r < rows; r++) {
        uint64_t h = (uint64_t)hk * G + r / bm, i = i0 + r % bm;
        load_q(p, (h * nq + i) * D, D, p->scale * log2e, q + (size_t)r * D);
        m[r] = -INFINITY;
        l[r] = 0.0f;
        int64_t li = p->causal ? (int64_t)i + (int64_t)nk - (int64_t)nq + 1 : (int64_t)nk;
        lim[r] = (float)(li < 0 ? 0 : li > (int64_t)nk ? (int64_t)nk : li);
    }
    memset(acc, 0, (size_t)rows * D * sizeof(float));

    /* causal tile skipping: no query of this tile sees keys at or past n_end */
    int64_t n_end = (int64_t)nk;
    if (p->causal) {
        int64_t last = (int64_t)(i0 + bm - 1) + (int64_t)nk - (int64_t)nq + 1;
        if (last < n_end) n_end = last < 0 ? 0 : last;
    }
    const uint8_t *kb = (const uint8_t *)kv->k + hk * hs, *vb = (const uint8_t *)kv->v + hk * hs;
    for (int64_t j0 = 0; j0 < n_end; j0 += BN) {
        uint32_t bn = (uint32_t)(n_end - j0 < BN ? n_end - j0 : BN);
        /* the tile's K rows land in vt first, then are transposed into kt */
        int rc = vt_attn_kv_dequantize_rows(kv->format, kb + j0 * rb, bn, D, kv->tensor_scale, vt);
        for (uint32_t j = 0; j < bn && !rc; j++)
            for (uint32_t d = 0; d < D; d++) kt[(size_t)d * BN + j] = vt[(size_t)j * D + d];
        if (!rc)
            rc = vt_attn_kv_dequantize_rows(kv->format, vb + j0 * rb, bn, D, kv->tensor_scale, vt);
        if (rc) {
            vt_free(buf);
            return rc;
        }
        for (uint32_t j = bn; j < BN; j++) /* ragged tile: zero keys, masked below */
            for (uint32_t d = 0; d < D; d++) kt[(size_t)d * BN + j] = 0.0f;
        tile_scores(q, kt, s, rows, D);
        for (uint32_t r = 0; r < rows; r++) {
            float *sr = s + (size_t)r * BN;
            int64_t vis = (int64_t)lim[r] - j0; /* keys of this tile the row sees */
            if (vis > (int64_t)bn) vis = bn;
            if (vis <= 0) continue;
            float mx = m[r];
            for (int64_t j = 0; j < vis; j++) mx = fmaxf(mx, sr[j]);
            float alpha = exp2f(m[r] - mx); /* m = -inf on the first visible tile: 0 */
            float sum = 0.0f;
            for (int64_t j = 0; j < vis; j++) {
                sr[j] = exp2f(sr[j] - mx);
                sum += sr[j];
            }
            l[r] = l[r] * alpha + sum;
            m[r] = mx;
            tile_pv(acc + (size_t)r * D, alpha, sr, vt, vis, D);
        }
    }
    for (uint32_t r = 0; r < rows; r++) {
        uint64_t h = (uint64_t)hk * G + r / bm, i = i0 + r % bm;
        uint64_t ob = (h * nq + i) * D;
        float inv = l[r] > 0.0f ? 1.0f / l[r] : 0.0f;
        float *ar = acc + (size_t)r * D;
        if (p->o_dtype == VT_DTYPE_F16)
            for (uint32_t d = 0; d < D; d++)
                ((uint16_t *)p->o)[ob + d] = vt_f32_to_f16(ar[d] * inv);
        else
            for (uint32_t d = 0; d < D; d++) ((float *)p->o)[ob + d] = ar[d] * inv;
        if (p->lse)
            p->lse[h * nq + i] =
                l[r] > 0.0f ? (m[r] + log2f(l[r])) * 0.6931471805599453f : -INFINITY;
    }
    vt_free(buf);
    return 0;
}

int vt_attn_cpu_flash(const vt_attn_params *p) {
    flash_ctx c;
    c.p = p;
    c.group = p->n_heads / p->kv.n_kv_heads;
    /* about 64 rows per task, at least 4 queries */
    c.bm = 64 / c.group < 4 ? 4 : 64 / c.group;
    if (c.bm > p->n_q) c.bm = p->n_q;
    c.n_qt = (p->n_q + c.bm - 1) / c.bm;
    return vt_parallel_for((uint64_t)p->kv.n_kv_heads * c.n_qt, flash_task, &c, p->nthreads);
}
