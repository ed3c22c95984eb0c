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

/* Fresh N(0,1) inputs of a case: K, V [Hkv][Nk][D] and Q [H][Nq][D] in f32, Q also in the
 * case's dtype; the element counts. */
typedef struct case_data {
    float *k, *v, *qf;
    void *q;
    uint64_t nkv, nqo, nl; /* K/V values, Q/O values, LSE rows */
} case_data;

static inline void case_data_make(const attn_case *c, case_data *d) {
    d->nkv = (uint64_t)c->Hkv * c->nk * c->D;
    d->nqo = (uint64_t)c->H * c->nq * c->D;
    d->nl = (uint64_t)c->H * c->nq;
    d->k = rand_f32(d->nkv, 1), d->v = rand_f32(d->nkv, 1), d->qf = rand_f32(d->nqo, 1);
    d->q = make_q(c, d->qf);
}

static inline void case_data_free(case_data *d) {
    free(d->k), free(d->v), free(d->qf), free(d->q);
}

/* A cache of the case's format at @p loc with room for Nk + @p spare tokens (nvfp4 tensor
 * scale 0.01, so that block scales use the E4M3 range). */
static inline vt_kv_cache *case_cache(const attn_case *c, vt_location loc, uint64_t spare) {
    vt_kv_cache_config cc = {.location = loc,
                             .format = c->fmt,
                             .n_kv_heads = c->Hkv,
                             .head_dim = c->D,
                             .capacity = c->nk + spare,
                             .tensor_scale = 0.01f};
    vt_kv_cache *kv = NULL;
    int rc = vt_kv_cache_create(&cc, &kv);
    CHECKF(rc == 0, "kv cache create: %s", vt_last_error());
    return kv;
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

static inline void case_name(const attn_case *c, char *buf, size_t cap);

/* Check a GPU path's output @p o (the case's O dtype) and @p lse against the oracle (@p oref,
 * @p lref): relative error <= 2e-3 (issue 6, every path), LSE within 2e-2 where a key is visible,
 * O = 0 and LSE = -inf where none is, no NaN anywhere. With @p o1 (the one-split run of a decode;
 * @p o then ran @p splits splits) the two must agree to the merge order (f16 O: one rounding).
 * Prints one line per case; returns the relative error. */
static inline double check_out(const attn_case *c, const char *path, const void *o,
                               const float *lse, const float *oref, const float *lref,
                               const void *o1, int splits) {
    char name[200];
    case_name(c, name, sizeof name);
    uint64_t nqo = (uint64_t)c->H * c->nq * c->D, nl = (uint64_t)c->H * c->nq;
    const double tol = 2e-3;
    double e = rel_err(o, c->o_dtype, oref, nqo), le = 0, es = 0;
    int masked_ok = 1;
    for (uint64_t r = 0; r < nl; r++) {
        if (visible_keys(c, r % c->nq) == 0) {
            masked_ok &= isinf(lse[r]) && lse[r] < 0;
            for (uint32_t d = 0; d < c->D; d++)
                masked_ok &= out_at(o, c->o_dtype, r * c->D + d) == 0;
        } else if (!(fabs((double)lse[r] - lref[r]) <= le)) { /* NaN too */
            le = fabs((double)lse[r] - lref[r]);
        }
    }
    if (o1) {
        float *o1f = malloc(nqo * 4);
        for (uint64_t i = 0; i < nqo; i++) o1f[i] = out_at(o1, c->o_dtype, i);
        es = rel_err(o, c->o_dtype, o1f, nqo);
        free(o1f);
        double st = c->o_dtype == VT_DTYPE_F16 ? 1e-3 : 2e-5;
        CHECKF(es <= st, "%s: %d splits vs one split: rel diff %.3g > %g", name, splits, es, st);
    }
    CHECKF(e <= tol, "%s %s: rel err %.3g > %g", name, path, e, tol);
    CHECKF(le <= 10 * tol, "%s %s: lse err %.3g", name, path, le);
    CHECKF(masked_ok, "%s %s: masked rows must be 0 with LSE -inf", name, path);
    if (o1)
        printf("  %-7s %-72s splits %2d rel err %.2e lse err %.2e vs 1 split %.1e\n", path, name,
               splits, e, le, es);
    else
        printf("  %-7s %-72s rel err %.2e lse err %.2e\n", path, name, e, le);
    return e;
}

static inline void case_name(const attn_case *c, char *buf, size_t cap) {
    char fb[32];
    snprintf(buf, cap, "H%u/Hkv%u D%u Nq%llu Nk%llu %s kv=%s q=%s o=%s", c->H, c->Hkv, c->D,
             (unsigned long long)c->nq, (unsigned long long)c->nk, c->causal ? "causal" : "full",
             vt_format_name(c->fmt, fb, sizeof fb), vt_dtype_name(c->q_dtype),
             vt_dtype_name(c->o_dtype));
}

#endif
