/* Reference attention (the oracle): per query head, dequantize that head's K and V to f32,
 * materialise the [Nq][Nk] score matrix and apply a plain two-pass softmax, in f32 or f64.
 * Memory per head in flight: Nk*D*8 bytes (K, V as f32) + Nq*Nk*(4 or 8) bytes of scores. */
#include <errno.h>
#include <math.h>
#include <string.h>

#include "attn_internal.h"

typedef struct naive_ctx {
    const vt_attn_params *p;
    int f64;
} naive_ctx;

static float q_at(const vt_attn_params *p, uint64_t idx) {
    switch (p->q_dtype) {
    case VT_DTYPE_F16:
        return vt_f16_to_f32(((const uint16_t *)p->q)[idx]);
    case VT_DTYPE_BF16:
        return vt_bf16_to_f32(((const uint16_t *)p->q)[idx]);
    default:
        return ((const float *)p->q)[idx];
    }
}

static void o_store(const vt_attn_params *p, uint64_t idx, double v) {
    if (p->o_dtype == VT_DTYPE_F16)
        ((uint16_t *)p->o)[idx] = vt_f32_to_f16((float)v);
    else
        ((float *)p->o)[idx] = (float)v;
}

static int naive_head(void *vctx, uint64_t h, int tid) {
    const naive_ctx *c = vctx;
    const vt_attn_params *p = c->p;
    const vt_attn_kv *kv = &p->kv;
    uint32_t D = kv->head_dim;
    uint64_t nq = p->n_q, nk = kv->n_tokens;
    uint32_t hk = (uint32_t)(h / (p->n_heads / kv->n_kv_heads));
    uint64_t hs = vt_attn_kv_head_stride(kv);
    size_t es = c->f64 ? sizeof(double) : sizeof(float);
    float *kf = vt_malloc((size_t)(nk ? nk : 1) * D * sizeof(float) * 2);
    void *s = vt_malloc((size_t)(nq * (nk ? nk : 1)) * es);
    float *qf = vt_malloc((size_t)D * sizeof(float));
    if (!kf || !s || !qf) {
        vt_free(kf);
        vt_free(s);
        vt_free(qf);
        return vt_fail(-ENOMEM, "attn naive: head %llu: out of memory", (unsigned long long)h);
    }
    float *vf = kf + nk * D;
    int rc = vt_attn_kv_dequantize_rows(kv->format, (const uint8_t *)kv->k + hk * hs, nk, D,
                                        kv->tensor_scale, kf);
    if (!rc)
        rc = vt_attn_kv_dequantize_rows(kv->format, (const uint8_t *)kv->v + hk * hs, nk, D,
                                        kv->tensor_scale, vf);
    if (rc) {
        vt_free(kf);
        vt_free(s);
        vt_free(qf);
        return rc;
    }
    double *sd = s;
    float *sf = s;
    for (uint64_t i = 0; i < nq; i++) {
        for (uint32_t d = 0; d < D; d++) qf[d] = q_at(p, (h * nq + i) * D + d);
        /* keys visible to query i: j < lim (bottom-right causal alignment) */
        int64_t lim = p->causal ? (int64_t)i + (int64_t)nk - (int64_t)nq + 1 : (int64_t)nk;
        if (lim > (int64_t)nk) lim = (int64_t)nk;
        if (lim < 0) lim = 0;
        uint64_t obase = (h * nq + i) * D;
        if (lim == 0) {
            for (uint32_t d = 0; d < D; d++) o_store(p, obase + d, 0.0);
            if (p->lse) p->lse[h * nq + i] = -INFINITY;
            continue;
        }
        if (c->f64) {
            double mx = -INFINITY, sum = 0;
            for (int64_t j = 0; j < lim; j++) {
                double acc = 0;
                for (uint32_t d = 0; d < D; d++) acc += (double)qf[d] * kf[j * D + d];
                sd[i * nk + j] = acc * (double)p->scale;
                if (sd[i * nk + j] > mx) mx = sd[i * nk + j];
            }
            for (int64_t j = 0; j < lim; j++) {
                sd[i * nk + j] = exp(sd[i * nk + j] - mx);
                sum += sd[i * nk + j];
            }
            for (uint32_t d = 0; d < D; d++) {
                double acc = 0;
                for (int64_t j = 0; j < lim; j++) acc += sd[i * nk + j] * vf[j * D + d];
                o_store(p, obase + d, acc / sum);
            }
            if (p->lse) p->lse[h * nq + i] = (float)(mx + log(sum));
        } else {
            float mx = -INFINITY, sum = 0;
            for (int64_t j = 0; j < lim; j++) {
                float acc = 0;
                for (uint32_t d = 0; d < D; d++) acc += qf[d] * kf[j * D + d];
                sf[i * nk + j] = acc * p->scale;
                if (sf[i * nk + j] > mx) mx = sf[i * nk + j];
            }
            for (int64_t j = 0; j < lim; j++) {
                sf[i * nk + j] = expf(sf[i * nk + j] - mx);
                sum += sf[i * nk + j];
            }
            for (uint32_t d = 0; d < D; d++) {
                float acc = 0;
                for (int64_t j = 0; j < lim; j++) acc += sf[i * nk + j] * vf[j * D + d];
                o_store(p, obase + d, acc / sum);
            }
            if (p->lse) p->lse[h * nq + i] = mx + logf(sum);
        }
    }
    vt_free(kf);
    vt_free(s);
    vt_free(qf);
    return 0;
}

int vt_attn_cpu_naive(const vt_attn_params *p, int f64) {
    naive_ctx c = {p, f64};
    return vt_parallel_for(p->n_heads, naive_head, &c, p->nthreads);
}
