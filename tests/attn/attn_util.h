/* tests/attn/attn_util.h — helpers shared by the attention tests: random K/V/Q, running one
 * configuration through a path, comparing outputs by relative error. */
#ifndef VT_ATTN_TEST_UTIL_H
#define VT_ATTN_TEST_UTIL_H

#include "vt_test.h"
#include "vtstore/attn.h"

typedef struct attn_case {
    uint32_t H, Hkv, D;
    uint64_t nq, nk;
    int causal;
    uint32_t fmt;
    vt_dtype q_dtype, o_dtype;
    float scale; /* 0 = default */
} attn_case;

static inline float *rand_f32(uint64_t n, float sigma) {
    float *x = malloc((n ? n : 1) * sizeof(float));
    for (uint64_t i = 0; i < n; i++) x[i] = sigma * vt_rand_normal();
    return x;
}

/* Q in the case's dtype, from f32 values. */
static inline void *make_q(const attn_case *c, const float *qf) {
    uint64_t n = (uint64_t)c->H * c->nq * c->D;
    if (c->q_dtype == VT_DTYPE_F32) {
        float *q = malloc(n * sizeof(float));
        memcpy(q, qf, n * sizeof(float));
        return q;
    }
    uint16_t *q = malloc(n * sizeof(uint16_t));
    for (uint64_t i = 0; i < n; i++)
        q[i] = c->q_dtype == VT_DTYPE_F16 ? vt_f32_to_f16(qf[i]) : vt_f32_to_bf16(qf[i]);
    return q;
}

/* Output element i as f32. */
static inline float out_at(const void *o, vt_dtype t, uint64_t i) {
    return t == VT_DTYPE_F16 ? vt_f16_to_f32(((const uint16_t *)o)[i]) : ((const float *)o)[i];
}

/* max |a - ref| / max |ref| over n values (a in dtype at, ref f32); NaN in a gives +inf. */
static inline double rel_err(const void *a, vt_dtype at, const float *ref, uint64_t n) {
    double num = 0, den = 0;
    for (uint64_t i = 0; i < n; i++) {
        double x = out_at(a, at, i), r = ref[i];
        if (x != x) return INFINITY;
        if (fabs(x - r) > num) num = fabs(x - r);
        if (fabs(r) > den) den = fabs(r);
    }
    return den > 0 ? num / den : num;
}

/* vt_attn_params for case @p c over the query @p q: heads, queries, q dtype, causal mask; the
 * caller adds K/V, outputs and the path. */
static inline void case_params(const attn_case *c, const void *q, vt_attn_params *p) {
    vt_attn_params_init(p);
    p->q = q;
    p->q_dtype = c->q_dtype;
    p->n_heads = c->H;
    p->n_q = c->nq;
    p->causal = c->causal;
}

/* Visible keys of query i (bottom-right causal). */
static inline uint64_t visible_keys(const attn_case *c, uint64_t i) {
    if (!c->causal) return c->nk;
    int64_t lim = (int64_t)i + (int64_t)c->nk - (int64_t)c->nq + 1;
    return lim < 0 ? 0 : (uint64_t)lim > c->nk ? c->nk : (uint64_t)lim;
}

static inline void case_name(const attn_case *c, char *buf, size_t cap) {
    char fb[32];
    snprintf(buf, cap, "H%u/Hkv%u D%u Nq%llu Nk%llu %s kv=%s q=%s o=%s", c->H, c->Hkv, c->D,
             (unsigned long long)c->nq, (unsigned long long)c->nk, c->causal ? "causal" : "full",
             vt_format_name(c->fmt, fb, sizeof fb), vt_dtype_name(c->q_dtype),
             vt_dtype_name(c->o_dtype));
}

#endif
