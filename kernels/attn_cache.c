/* KV cache: K and V storage in a block format, [n_kv_heads][capacity][row bytes], on the host
 * or on a CUDA device; appending quantizes tokens into place. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "attn_internal.h"

int vt_kv_cache_create(const vt_kv_cache_config *cfg, vt_kv_cache **out) {
    if (!cfg || !out) return vt_fail(-EINVAL, "kv cache: NULL argument");
    *out = NULL;
    if (!cfg->n_kv_heads || !cfg->head_dim || !cfg->capacity)
        return vt_fail(-EINVAL, "kv cache: n_kv_heads %u, head_dim %u, capacity %llu must be > 0",
                       cfg->n_kv_heads, cfg->head_dim, (unsigned long long)cfg->capacity);
    if (cfg->head_dim > VT_ATTN_MAX_HEAD_DIM)
        return vt_fail(-EINVAL, "kv cache: head_dim %u above the attention's limit %u",
                       cfg->head_dim, VT_ATTN_MAX_HEAD_DIM);
    if (!vt_attn_kv_format_ok(cfg->format))
        return vt_fail(VT_EUNSUPPORTED,
                       "kv cache: format %s cannot hold K/V (use f32, f16, bf16, q8_0, int8, "
                       "q4_0, nf4, nvfp4 or mxfp4)",
                       vt_attn_fmt_name(cfg->format));
    if (cfg->location != VT_LOC_HOST && cfg->location != VT_LOC_DEVICE)
        return vt_fail(-EINVAL, "kv cache: bad location %d", (int)cfg->location);
    /* before the device's presence: a config no GPU could serve is refused the same way on
     * every build and machine */
    if (cfg->location == VT_LOC_DEVICE && cfg->head_dim != 64 && cfg->head_dim != 128)
        return vt_fail(-EINVAL,
                       "kv cache: head_dim %u on the device: the GPU attention kernels take 64 or "
                       "128 (a host cache takes any up to %u)",
                       cfg->head_dim, VT_ATTN_MAX_HEAD_DIM);
    if (cfg->location == VT_LOC_DEVICE &&
        (cfg->capacity > VT_KV_BAD_MAX_TOKENS || cfg->n_kv_heads > VT_KV_BAD_MAX_HEADS))
        return vt_fail(-EINVAL,
                       "kv cache: capacity %llu, n_kv_heads %u on the device: at most %llu tokens "
                       "and %u heads",
                       (unsigned long long)cfg->capacity, cfg->n_kv_heads,
                       (unsigned long long)VT_KV_BAD_MAX_TOKENS, VT_KV_BAD_MAX_HEADS);
    if (!(cfg->tensor_scale >= 0.0f) || isinf(cfg->tensor_scale))
        return vt_fail(-EINVAL, "kv cache: tensor_scale %g must be finite and >= 0",
                       (double)cfg->tensor_scale);
    uint64_t rb = vt_attn_row_bytes(cfg->format, cfg->head_dim);
    if (cfg->capacity > UINT64_MAX / rb / cfg->n_kv_heads)
        return vt_fail(-EOVERFLOW, "kv cache: size overflows");
    uint64_t bytes = rb * cfg->capacity * cfg->n_kv_heads;
    if (bytes > SIZE_MAX / 2)
        return vt_fail(-ENOMEM, "kv cache: %llu bytes", (unsigned long long)bytes);
    vt_kv_cache *c = vt_calloc(1, sizeof *c);
    if (!c) return vt_fail(-ENOMEM, "kv cache: out of memory");
    c->cfg = *cfg;
    if (c->cfg.tensor_scale == 0.0f) c->cfg.tensor_scale = 1.0f;
    c->row_bytes = rb;
    if (cfg->location == VT_LOC_HOST) {
        c->k = vt_calloc(1, (size_t)bytes);
        c->v = c->k ? vt_calloc(1, (size_t)bytes) : NULL;
        if (!c->k || !c->v) {
            vt_free(c->k);
            vt_free(c);
            return vt_fail(-ENOMEM, "kv cache: cannot allocate 2 x %llu bytes",
                           (unsigned long long)bytes);
        }
    } else {
#ifdef VT_HAVE_CUDA
        int rc = vt_attn_cuda_alloc(&c->k, (size_t)bytes, 0);
        if (!rc) rc = vt_attn_cuda_alloc(&c->v, (size_t)bytes, 0);
        if (!rc) rc = vt_attn_cuda_alloc(&c->bad, sizeof(uint64_t), 0xff); /* VT_KV_BAD_NONE */
        if (rc) {
            vt_attn_cuda_free(c->k);
            vt_attn_cuda_free(c->v);
            vt_free(c);
            return rc;
        }
#else
        vt_free(c);
        return vt_fail(VT_ENODEV, "kv cache: device location but this build has no CUDA");
#endif
    }
    *out = c;
    return 0;
}

void vt_kv_cache_destroy(vt_kv_cache *c) {
    if (!c) return;
    if (c->cfg.location == VT_LOC_HOST) {
        vt_free(c->k);
        vt_free(c->v);
    }
#ifdef VT_HAVE_CUDA
    else {
        vt_attn_cuda_free(c->k);
        vt_attn_cuda_free(c->v);
        vt_attn_cuda_free(c->bad);
    }
#endif
    vt_free(c->starts);
    vt_free(c);
}

uint64_t vt_kv_cache_len(const vt_kv_cache *c) {
    return c ? c->len : 0;
}

void vt_kv_cache_reset(vt_kv_cache *c) {
    if (!c) return;
    c->len = 0;
    c->epoch++; /* a flag the device set before this is stale */
    c->nstarts = 0;
}

#ifdef VT_HAVE_CUDA
/* Record that an append starts at token @p t (device caches: vt_kv_cache_check cuts back to
 * it). -ENOMEM with nothing recorded. */
static int starts_push(vt_kv_cache *c, uint64_t t) {
    if (c->nstarts == c->capstarts) {
        size_t n = c->capstarts ? 2 * c->capstarts : 16;
        uint64_t *p = vt_realloc(c->starts, n * sizeof *p);
        if (!p) return vt_fail(-ENOMEM, "kv cache append: out of memory");
        c->starts = p;
        c->capstarts = n;
    }
    c->starts[c->nstarts++] = t;
    return 0;
}
#endif

int vt_kv_cache_check(vt_kv_cache *c, void *stream) {
    if (!c) return vt_fail(-EINVAL, "kv cache check: NULL cache");
    if (c->cfg.location != VT_LOC_DEVICE) return 0; /* the host append refuses, nothing to find */
#ifdef VT_HAVE_CUDA
    uint64_t key;
    int rc = vt_attn_cuda_bad_take(c->bad, stream, &key);
    if (rc) return rc;
    const int current = vt_kv_flag_current(key, c->epoch, c->flag_block);
    c->flag_block = c->epoch >> 12; /* the word is all ones now: it holds no block's keys */
    const vt_kv_bad b = vt_kv_bad_decode(key);
    if (!current) { /* none, or before a reset */
        c->nstarts = 0;
        return 0;
    }
    const uint64_t tok = b.token;
    size_t i = c->nstarts; /* the append that stored token tok: the last start at or below it */
    while (i > 0 && c->starts[i - 1] > tok) i--;
    const uint64_t start = i ? c->starts[i - 1] : 0;
    const uint64_t end = i < c->nstarts ? c->starts[i] : c->len;
    const uint64_t was = c->len;
    if (start < c->len) c->len = start;
    c->nstarts = 0;
    if (b.range)
        return vt_fail(-ERANGE,
                       "kv cache check: %s head %u, token %llu, column %u: a finite value the %s "
                       "cache cannot hold; the append of tokens %llu..%llu is dropped (length %llu "
                       "-> %llu)",
                       b.is_v ? "V" : "K", b.head, (unsigned long long)tok, b.col,
                       vt_attn_fmt_name(c->cfg.format), (unsigned long long)start,
                       (unsigned long long)(end - 1), (unsigned long long)was,
                       (unsigned long long)c->len);
    return vt_fail(VT_ENONFINITE,
                   "kv cache check: %s head %u, token %llu, column %u: NaN or infinity; the append "
                   "of tokens %llu..%llu is dropped (length %llu -> %llu)",
                   b.is_v ? "V" : "K", b.head, (unsigned long long)tok, b.col,
                   (unsigned long long)start, (unsigned long long)(end - 1),
                   (unsigned long long)was, (unsigned long long)c->len);
#else
    (void)stream;
    return vt_fail(VT_ENODEV, "kv cache check: no CUDA in this build");
#endif
}

void vt_kv_cache_view(const vt_kv_cache *c, vt_attn_kv *out) {
    memset(out, 0, sizeof *out);
    out->k = c->k;
    out->v = c->v;
    out->location = c->cfg.location;
    out->format = c->cfg.format;
    out->n_kv_heads = c->cfg.n_kv_heads;
    out->head_dim = c->cfg.head_dim;
    out->n_tokens = c->len;
    out->head_stride = c->row_bytes * c->cfg.capacity;
    out->tensor_scale = c->cfg.tensor_scale;
}

/* Host append: quantize each head's new rows straight into the slots after the current length;
 * a failure leaves the length (and so the visible cache) unchanged. */
static int append_host(vt_kv_cache *c, const void *src, vt_dtype dt, uint64_t n, uint8_t *base,
                       const char *which) {
    uint32_t D = c->cfg.head_dim;
    float *tmp = NULL;
    if (dt == VT_DTYPE_F16) {
        tmp = vt_malloc((size_t)n * D * sizeof(float));
        if (!tmp) return vt_fail(-ENOMEM, "kv cache append: out of memory");
    }
    int rc = 0;
    for (uint32_t h = 0; h < c->cfg.n_kv_heads && !rc; h++) {
        const float *x = (const float *)src + (uint64_t)h * n * D;
        if (tmp) {
            vt_f16_to_f32_row((const uint16_t *)src + (uint64_t)h * n * D, tmp, (size_t)n * D);
            x = tmp;
        }
        uint8_t *dst = base + ((uint64_t)h * c->cfg.capacity + c->len) * c->row_bytes;
        rc = vt_attn_kv_quantize_rows(c->cfg.format, x, n, D, c->cfg.tensor_scale, dst);
        if (rc) {
            char msg[512];
            snprintf(msg, sizeof msg, "%s", vt_last_error());
            rc = vt_fail(rc, "kv cache append: %s head %u (new tokens %llu..%llu): %s", which, h,
                         (unsigned long long)c->len, (unsigned long long)(c->len + n - 1), msg);
        }
    }
    vt_free(tmp);
    return rc;
}

int vt_kv_cache_append(vt_kv_cache *c, const void *k, const void *v, vt_dtype dtype,
                       uint64_t n_tokens, void *stream) {
    if (!c || !k || !v) return vt_fail(-EINVAL, "kv cache append: NULL argument");
    if (dtype != VT_DTYPE_F32 && dtype != VT_DTYPE_F16)
        return vt_fail(-EINVAL, "kv cache append: dtype %s (want f32 or f16)",
                       vt_dtype_name(dtype));
    if (n_tokens > c->cfg.capacity - c->len)
        return vt_fail(VT_EBUDGET, "kv cache append: %llu tokens + %llu held > capacity %llu",
                       (unsigned long long)n_tokens, (unsigned long long)c->len,
                       (unsigned long long)c->cfg.capacity);
    if (!n_tokens) return 0;
    if (c->cfg.location == VT_LOC_DEVICE) {
#ifdef VT_HAVE_CUDA
        int rc = 0;
        if (vt_kv_flag_stale(c->epoch, c->flag_block)) { /* keys of another block of epochs */
            rc = vt_attn_cuda_bad_clear(c->bad, stream);
            if (rc) return rc;
            c->flag_block = c->epoch >> 12;
        }
        rc = starts_push(c, c->len);
        if (!rc && (rc = vt_attn_cuda_append(c, k, v, dtype, n_tokens, stream))) c->nstarts--;
        if (!rc) c->len += n_tokens;
        return rc;
#else
        return vt_fail(VT_ENODEV, "kv cache append: no CUDA in this build");
#endif
    }
    int rc = append_host(c, k, dtype, n_tokens, c->k, "K");
    if (!rc) rc = append_host(c, v, dtype, n_tokens, c->v, "V");
    if (!rc) c->len += n_tokens;
    return rc;
}

int vt_kv_cache_read(const vt_kv_cache *c, uint64_t t0, uint64_t n, float *k_out, float *v_out) {
    if (!c) return vt_fail(-EINVAL, "kv cache read: NULL cache");
    if (c->cfg.location != VT_LOC_HOST)
        return vt_fail(VT_EUNSUPPORTED, "kv cache read: device cache (copy it to the host)");
    if (t0 > c->len || n > c->len - t0)
        return vt_fail(-EINVAL, "kv cache read: tokens [%llu, %llu) past length %llu",
                       (unsigned long long)t0, (unsigned long long)(t0 + n),
                       (unsigned long long)c->len);
    uint32_t D = c->cfg.head_dim;
    int rc = 0;
    for (uint32_t h = 0; h < c->cfg.n_kv_heads && !rc; h++) {
        uint64_t src = ((uint64_t)h * c->cfg.capacity + t0) * c->row_bytes;
        uint64_t dst = (uint64_t)h * n * D;
        if (k_out)
            rc = vt_attn_kv_dequantize_rows(c->cfg.format, (const uint8_t *)c->k + src, n, D,
                                            c->cfg.tensor_scale, k_out + dst);
        if (!rc && v_out)
            rc = vt_attn_kv_dequantize_rows(c->cfg.format, (const uint8_t *)c->v + src, n, D,
                                            c->cfg.tensor_scale, v_out + dst);
    }
    return rc;
}
