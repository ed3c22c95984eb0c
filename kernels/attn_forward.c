/* vt_attn_forward: argument checks shared by every path, then dispatch to the CPU kernels
 * (host K/V) or the CUDA kernels (device K/V). */
#include <errno.h>
#include <math.h>
#include <string.h>

#include "attn_internal.h"

void vt_attn_params_init(vt_attn_params *p) {
    memset(p, 0, sizeof *p);
    p->q_dtype = VT_DTYPE_F32;
    p->o_dtype = VT_DTYPE_F32;
    p->algo = VT_ATTN_AUTO;
}

uint64_t vt_attn_kv_head_stride(const vt_attn_kv *kv) {
    if (kv->head_stride) return kv->head_stride;
    return vt_attn_row_bytes(kv->format, kv->head_dim) * kv->n_tokens;
}

int vt_attn_validate(const vt_attn_params *p) {
    if (!p) return vt_fail(-EINVAL, "attn: NULL params");
    const vt_attn_kv *kv = &p->kv;
    if (!vt_attn_kv_format_ok(kv->format))
        return vt_fail(VT_EUNSUPPORTED,
                       "attn: K/V format %s is not supported (f32, f16, bf16, q8_0, int8, q4_0, "
                       "nf4, nvfp4, mxfp4)",
                       vt_attn_fmt_name(kv->format));
    if (!p->n_heads || !kv->n_kv_heads || !kv->head_dim || !p->n_q)
        return vt_fail(VT_ESHAPE, "attn: H %u, Hkv %u, D %u, Nq %llu must be > 0", p->n_heads,
                       kv->n_kv_heads, kv->head_dim, (unsigned long long)p->n_q);
    if (kv->head_dim > VT_ATTN_MAX_HEAD_DIM)
        return vt_fail(VT_EUNSUPPORTED, "attn: head dim %u is above the limit %u", kv->head_dim,
                       (unsigned)VT_ATTN_MAX_HEAD_DIM);
    if (p->n_heads % kv->n_kv_heads)
        return vt_fail(VT_ESHAPE, "attn: H %u is not a multiple of Hkv %u", p->n_heads,
                       kv->n_kv_heads);
    if (!p->q || !p->o || (kv->n_tokens && (!kv->k || !kv->v)))
        return vt_fail(-EINVAL, "attn: NULL Q, O, K or V");
    if (p->q_dtype != VT_DTYPE_F32 && p->q_dtype != VT_DTYPE_F16 && p->q_dtype != VT_DTYPE_BF16)
        return vt_fail(-EINVAL, "attn: Q dtype %s (want f32, f16 or bf16)",
                       vt_dtype_name(p->q_dtype));
    if (p->o_dtype != VT_DTYPE_F32 && p->o_dtype != VT_DTYPE_F16)
        return vt_fail(-EINVAL, "attn: O dtype %s (want f32 or f16)", vt_dtype_name(p->o_dtype));
    if (kv->head_stride &&
        kv->head_stride < vt_attn_row_bytes(kv->format, kv->head_dim) * kv->n_tokens)
        return vt_fail(VT_ESHAPE, "attn: K/V head stride %llu bytes < %llu tokens of a row",
                       (unsigned long long)kv->head_stride, (unsigned long long)kv->n_tokens);
    if (!(p->scale >= 0.0f) || isinf(p->scale))
        return vt_fail(-EINVAL, "attn: softmax scale %g (want finite, 0 = 1/sqrt(D))",
                       (double)p->scale);
    if (kv->format == VT_FMT_NVFP4 && (!(kv->tensor_scale >= 0.0f) || isinf(kv->tensor_scale)))
        return vt_fail(-EINVAL, "attn: nvfp4 K/V tensor_scale %g (want finite and >= 0, 0 = 1)",
                       (double)kv->tensor_scale);
    if (kv->location != VT_LOC_HOST && kv->location != VT_LOC_DEVICE)
        return vt_fail(-EINVAL, "attn: bad K/V location %d", (int)kv->location);
    return 0;
}

double vt_attn_flops(const vt_attn_params *p) {
    double H = p->n_heads, D = p->kv.head_dim, nq = (double)p->n_q, nk = (double)p->kv.n_tokens;
    if (!p->causal) return 4.0 * H * nq * nk * D;
    /* visible pairs: query i sees min(Nk, max(0, i + Nk - Nq + 1)) keys */
    double pairs = 0;
    for (uint64_t i = 0; i < p->n_q; i++) {
        double lim = (double)i + nk - nq + 1;
        pairs += lim < 0 ? 0 : (lim > nk ? nk : lim);
    }
    return 4.0 * H * pairs * D;
}

int vt_attn_cuda_available(void) {
#ifdef VT_HAVE_CUDA
    return vt_attn_cuda_device_count() > 0;
#else
    return 0;
#endif
}

#ifdef VT_HAVE_CUDA
void vt_attn_dev_args_fill(const vt_attn_params *p, float scale, vt_attn_dev_args *a) {
    uint64_t rb = vt_attn_row_bytes(p->kv.format, p->kv.head_dim);
    *a = (vt_attn_dev_args){
        .q = p->q,
        .q_dtype = (int)p->q_dtype,
        .k = p->kv.k,
        .v = p->kv.v,
        .head_stride = (long long)(p->kv.head_stride ? p->kv.head_stride : p->kv.n_tokens * rb),
        .row_bytes = (long long)rb,
        .H = (int)p->n_heads,
        .Hkv = (int)p->kv.n_kv_heads,
        .group = (int)(p->n_heads / p->kv.n_kv_heads),
        .D = (int)p->kv.head_dim,
        .fmt = p->kv.format,
        .nq = (long long)p->n_q,
        .nk = (long long)p->kv.n_tokens,
        .causal = p->causal,
        .scale_log2 = scale * 1.4426950408889634f,
        .ts = p->kv.tensor_scale != 0.0f ? p->kv.tensor_scale : 1.0f,
        .o = p->o,
        .o_dtype = (int)p->o_dtype,
        .lse = p->lse,
        .ws = p->workspace,
        .ws_bytes = p->workspace ? p->workspace_bytes : 0,
    };
}

int vt_attn_takes_decode(const vt_attn_params *p) {
    uint64_t group = p->n_heads / p->kv.n_kv_heads;
    return p->algo == VT_ATTN_DECODE || (p->algo == VT_ATTN_AUTO && group * p->n_q <= 16);
}
#endif

size_t vt_attn_workspace_bytes(const vt_attn_params *p) {
#ifdef VT_HAVE_CUDA
    if (!p || p->kv.location != VT_LOC_DEVICE || !p->n_heads || !p->kv.n_kv_heads || !p->n_q ||
        p->n_heads % p->kv.n_kv_heads || (p->kv.head_dim != 64 && p->kv.head_dim != 128) ||
        !vt_attn_takes_decode(p))
        return 0;
    vt_attn_dev_args a;
    vt_attn_dev_args_fill(p, 1.0f, &a);
    return vt_attn_cuda_decode_ws_bytes(&a, p->num_splits);
#else
    (void)p;
    return 0;
#endif
}

int vt_attn_forward(const vt_attn_params *p) {
    int rc = vt_attn_validate(p);
    if (rc) return rc;
    float scale = p->scale != 0.0f ? p->scale : 1.0f / sqrtf((float)p->kv.head_dim);
    if (p->kv.location == VT_LOC_HOST) {
        vt_attn_params q = *p;
        q.scale = scale;
        switch (p->algo) {
        case VT_ATTN_NAIVE:
            return vt_attn_cpu_naive(&q, 0);
        case VT_ATTN_NAIVE_F64:
            return vt_attn_cpu_naive(&q, 1);
        case VT_ATTN_AUTO:
        case VT_ATTN_FLASH:
        case VT_ATTN_DECODE:
            return vt_attn_cpu_flash(&q);
        default:
            return vt_fail(-EINVAL, "attn: unknown algo %d", (int)p->algo);
        }
    }
#ifdef VT_HAVE_CUDA
    if (vt_attn_cuda_device_count() <= 0)
        return vt_fail(VT_ENODEV, "attn: device K/V but no CUDA device is present");
    if (p->kv.head_dim != 64 && p->kv.head_dim != 128)
        return vt_fail(VT_EUNSUPPORTED, "attn: GPU kernels take head dim 64 or 128, not %u",
                       p->kv.head_dim);
    if ((uintptr_t)p->workspace % sizeof(float))
        return vt_fail(-EINVAL, "attn: workspace %p is not %zu-byte aligned", p->workspace,
                       sizeof(float));
    vt_attn_dev_args a;
    vt_attn_dev_args_fill(p, scale, &a);
    switch (p->algo) {
    case VT_ATTN_AUTO:
        return vt_attn_takes_decode(p) ? vt_attn_cuda_decode(&a, p->num_splits, p->stream)
                                       : vt_attn_cuda_prefill(&a, p->stream);
    case VT_ATTN_FLASH:
        return vt_attn_cuda_prefill(&a, p->stream);
    case VT_ATTN_DECODE:
        return vt_attn_cuda_decode(&a, p->num_splits, p->stream);
    case VT_ATTN_NAIVE:
    case VT_ATTN_NAIVE_F64:
        return vt_fail(VT_EUNSUPPORTED, "attn: the naive reference runs on host K/V only");
    default:
        return vt_fail(-EINVAL, "attn: unknown algo %d", (int)p->algo);
    }
#else
    return vt_fail(VT_ENODEV, "attn: device K/V but this build has no CUDA");
#endif
}
