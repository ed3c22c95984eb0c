/*
 * vtstore/attn.h — attention forward with K/V kept in a stored format (f16, bf16, q8_0, int8,
 * q4_0, nf4, nvfp4, mxfp4, f32) and dequantized inside the kernel, plus a KV cache that
 * quantizes tokens as they are appended.
 *
 * Shapes (row-major, dims[0] outermost):
 *   Q [H][Nq][D]   (f32, f16 or bf16)        O [H][Nq][D] (f32 or f16)     LSE [H][Nq] (f32)
 *   K, V [Hkv][Nk][D] stored as rows: one row = one token's head vector of D values, quantized
 *   into whole blocks of the format (vt_quant_row_bytes(format, D) bytes, padded with zeros).
 * H must be a multiple of Hkv (GQA/MQA): query head h reads K/V head h / (H / Hkv). A batch is
 * folded into the heads: B sequences of H heads over B caches of Hkv heads are H' = B*H query
 * heads over Hkv' = B*Hkv K/V heads (h' / (H/Hkv) picks the right cache row block).
 *
 * Causal masking is aligned bottom-right: query i may see key j iff j <= i + Nk - Nq. A query
 * that sees no key (causal with Nq > Nk) gets O = 0 and LSE = -inf, never NaN. On the CPU a
 * query that sees a key gets NaN O and LSE from a NaN or Inf in its Q row or a NaN in K at a key
 * it sees (as the plain softmax would); K/V values at keys a query does not see never reach it.
 *
 *     vt_kv_cache_config cc = {.location = VT_LOC_HOST, .format = VT_FMT_Q8_0,
 *                              .n_kv_heads = 8, .head_dim = 128, .capacity = 4096};
 *     vt_kv_cache *kv;
 *     vt_kv_cache_create(&cc, &kv);
 *     vt_kv_cache_append(kv, k_new, v_new, VT_DTYPE_F32, n_new, NULL); // [8][n_new][128] f32
 *     vt_attn_params p;
 *     vt_attn_params_init(&p);
 *     p.q = q; p.n_heads = 32; p.n_q = n_new; p.causal = 1; p.o = o;
 *     vt_kv_cache_view(kv, &p.kv);
 *     int rc = vt_attn_forward(&p);
 *     vt_kv_cache_destroy(kv);
 *
 * GPU: with location VT_LOC_DEVICE every pointer (Q, O, LSE, K, V) is CUDA device memory and
 * the work is queued on p.stream (a cudaStream_t passed as void*; NULL = the legacy default
 * stream); the call returns once the kernels are queued. GPU kernels need D = 64 or 128 and
 * Q in f16, bf16 or f32. The prefill's tensor cores take f16 (Q, K, V rounded to f16, so values
 * must stay within +-65504), except bf16 Q over K/V stored in bf16 or mxfp4, which run in bf16;
 * the decode computes in f32. The GPU path allocates
 * nothing and never synchronizes: the split-KV decode keeps its per-split partial results in a
 * device workspace the caller provides (vt_attn_workspace_bytes says how much), allocated once
 * and reused across calls that are serialized on one stream:
 *
 *     size_t wb = vt_attn_workspace_bytes(&p);   // p with the largest Nk (cache capacity)
 *     vt_dev_malloc(&p.workspace, wb);           // vtstore/device.h; wb may be 0 (NULL)
 *     p.workspace_bytes = wb;
 */
#ifndef VTSTORE_ATTN_H
#define VTSTORE_ATTN_H

#include <stdint.h>

#include "vtstore/core.h"
#include "vtstore/quant.h"
#include "vtstore/weight.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- K/V descriptors ----------------------------------------------------------------------- */

/** K and V tensors in a stored format, borrowed from the caller (or a cache view).
 *  K head h, token j starts at k + h * head_stride + j * vt_attn_row_bytes(format, head_dim);
 *  the same for V. */
typedef struct vt_attn_kv {
    const void *k, *v;    /* [n_kv_heads][>= n_tokens][row bytes] */
    vt_location location; /* where k and v live */
    uint32_t format;      /* f32, f16, bf16, q8_0, int8, q4_0, nf4, nvfp4 or mxfp4 */
    uint32_t n_kv_heads;  /* Hkv */
    uint32_t head_dim;    /* D, 1..VT_ATTN_MAX_HEAD_DIM */
    uint64_t n_tokens;    /* Nk: tokens used */
    uint64_t head_stride; /* bytes between heads (0 = n_tokens rows, tightly packed) */
    float tensor_scale;   /* nvfp4 global scale, finite and >= 0 (0 is taken as 1); ignored by
                             the others */
} vt_attn_kv;

/** Largest head dim vt_attn_forward accepts (the CPU kernels keep a row of D floats on the
 *  stack); the GPU kernels take only 64 and 128. */
#define VT_ATTN_MAX_HEAD_DIM 4096

/** 1 if @p fmt (a vt_format) can hold K/V for attention: f32, f16, bf16, q8_0, int8, q4_0, nf4,
 *  nvfp4, mxfp4 (no 2:4 sparsity, no formats whose blocks cross rows or need channel scales). */
int vt_attn_kv_format_ok(uint32_t fmt);

/** Bytes of one stored row of @p head_dim values (whole blocks; equals vt_quant_row_bytes), or
 *  0 if the format cannot hold K/V. */
uint64_t vt_attn_row_bytes(uint32_t fmt, uint32_t head_dim);

/* ---- KV cache ----------------------------------------------------------------------------- */

typedef struct vt_kv_cache vt_kv_cache;

typedef struct vt_kv_cache_config {
    vt_location location; /* VT_LOC_HOST or VT_LOC_DEVICE (needs a CUDA device, D 64 or 128) */
    uint32_t format;      /* see vt_attn_kv_format_ok */
    uint32_t n_kv_heads;  /* Hkv >= 1 */
    uint32_t head_dim;    /* D, 1..VT_ATTN_MAX_HEAD_DIM */
    uint64_t capacity;    /* tokens the cache can hold */
    float tensor_scale;   /* nvfp4 global scale (0 = 1: block scales alone cover |x| <= 2688) */
} vt_kv_cache_config;

/** Allocate an empty cache: K and V, each [n_kv_heads][capacity][row bytes], zeroed.
 *  Errors: -EINVAL (zero sizes, head_dim above VT_ATTN_MAX_HEAD_DIM, bad location, a device
 *  cache with head_dim other than 64 or 128, which no GPU attention call would take, or with
 *  more than 2^32 - 1 tokens of capacity or 2048 K/V heads (vt_kv_cache_check's limits); checked
 *  before the device, so a build or machine without CUDA gives this error too, not
 *  VT_ENODEV), VT_EUNSUPPORTED (format cannot hold K/V; the message names it), -ENOMEM,
 *  VT_ENODEV (device cache without a CUDA device or build), VT_ECUDA. On success *out is
 *  owned by the caller until vt_kv_cache_destroy. */
int vt_kv_cache_create(const vt_kv_cache_config *cfg, vt_kv_cache **out);

/** Free a cache (NULL is a no-op). A device cache is freed after its stream work: call it only
 *  when no kernel using the cache is still queued, or synchronize first. */
void vt_kv_cache_destroy(vt_kv_cache *c);

/** Quantize @p n_tokens new tokens and append them after the current length. @p k and @p v are
 *  [n_kv_heads][n_tokens][head_dim] of @p dtype (f32 or f16) in the cache's location (device
 *  memory for a device cache, where the append runs on @p stream; the call does not wait).
 *  Errors: VT_EBUDGET (would exceed capacity; nothing appended), -EINVAL (dtype, NULL),
 *  VT_ENONFINITE (host: NaN/Inf in the input) and -ERANGE (host: a finite value the format
 *  cannot hold, vt_quantize's rule: f16 |x| >= 65520, a q8_0/q4_0 block whose f16 scale would
 *  overflow, nvfp4 |x| > 2784 x tensor_scale, ...); for both the message names head, tokens,
 *  row and column and nothing is appended. The device path returns before its kernel has seen
 *  the values: it stores what its quantizer gives (the format's NaN, Inf or saturated encoding)
 *  and flags the first such value for vt_kv_cache_check, which reports it as the host would and
 *  drops that append. VT_ECUDA. */
int vt_kv_cache_append(vt_kv_cache *c, const void *k, const void *v, vt_dtype dtype,
                       uint64_t n_tokens, void *stream);

/** Device caches: wait for @p stream (the stream the appends ran on; the call synchronizes it)
 *  and report the first value that an append since the last check or reset could not hold,
 *  by the host append's rules: VT_ENONFINITE (NaN or infinity) or -ERANGE (a finite value beyond
 *  the format, as vt_quantize refuses), the message naming K or V, head, token, column and the
 *  append. "First": lowest token, then K before V, head, column. The cache is then cut back to
 *  the length before that append (later appends go too), so that no later attention call reads
 *  the bad rows; calls already queued did. 0 when every value was held (a host cache: always 0,
 *  its append refuses instead). VT_ECUDA. Appends queued on other streams are not waited for:
 *  synchronize them first. A device cache holds at most 2^32 - 1 tokens and 2048 K/V heads. */
int vt_kv_cache_check(vt_kv_cache *c, void *stream);

/** Tokens currently held. */
uint64_t vt_kv_cache_len(const vt_kv_cache *c);

/** Forget all tokens (capacity and storage are kept; no data is touched). */
void vt_kv_cache_reset(vt_kv_cache *c);

/** Describe the cache's first vt_kv_cache_len tokens as a K/V descriptor for vt_attn_forward.
 *  The pointers borrow the cache's storage: valid until it is destroyed. */
void vt_kv_cache_view(const vt_kv_cache *c, vt_attn_kv *out);

/** Copy the stored rows of tokens [t0, t0 + n) of all heads out as f32, [Hkv][n][D] each
 *  (k_out or v_out may be NULL). Host caches only; the device path returns VT_EUNSUPPORTED.
 *  Errors: -EINVAL when the range passes the length. */
int vt_kv_cache_read(const vt_kv_cache *c, uint64_t t0, uint64_t n, float *k_out, float *v_out);

/* ---- attention ----------------------------------------------------------------------------- */

typedef enum vt_attn_algo {
    VT_ATTN_AUTO = 0,     /* CPU: flash; GPU: decode path for Nq*H/Hkv <= 16, prefill otherwise */
    VT_ATTN_FLASH = 1,    /* CPU tiled online softmax / GPU tensor-core prefill kernel */
    VT_ATTN_DECODE = 2,   /* GPU split-KV flash-decoding + combine (CPU: same as flash) */
    VT_ATTN_NAIVE = 3,    /* CPU only: materialise scores [Nq][Nk] per head, f32 accumulation */
    VT_ATTN_NAIVE_F64 = 4 /* CPU only: the oracle, all arithmetic in f64 */
} vt_attn_algo;

typedef struct vt_attn_params {
    const void *q;     /* [n_heads][n_q][D] */
    vt_dtype q_dtype;  /* f32 (default), f16 or bf16 */
    vt_attn_kv kv;     /* K/V; its location decides where the work runs */
    uint32_t n_heads;  /* H, a multiple of kv.n_kv_heads */
    uint64_t n_q;      /* Nq */
    int causal;        /* bottom-right aligned mask */
    float scale;       /* softmax scale; 0 = 1/sqrt(D) */
    void *o;           /* [n_heads][n_q][D] out */
    vt_dtype o_dtype;  /* f32 (default) or f16 */
    float *lse;        /* optional [n_heads][n_q] out: natural log of sum_j exp(scale*q.k_j) */
    vt_attn_algo algo; /* VT_ATTN_AUTO */
    int nthreads;      /* CPU threads (0 = all) */
    int num_splits;    /* GPU decode: 0 = chosen from the SM count */
    void *stream;      /* cudaStream_t for device work */
    /* GPU decode scratch: device memory (4-byte aligned) for the split-KV partials, owned by the
     * caller and not used by concurrent calls on other streams. NULL = no workspace: the decode
     * runs one split (correct, but only Hkv x row-chunk CTAs for the whole cache, so slow for a
     * long cache with few heads). Ignored on the CPU and by the prefill kernel. */
    void *workspace;
    size_t workspace_bytes; /* bytes at workspace */
} vt_attn_params;

/** Defaults: f32 Q and O, scale 0 (1/sqrt(D)), AUTO, everything else 0/NULL. */
void vt_attn_params_init(vt_attn_params *p);

/** Bytes of device workspace vt_attn_forward(p) needs (p->workspace, p->workspace_bytes) to run
 *  the GPU decode with its split count (p->num_splits, or the count chosen from the SM count of
 *  the current device). Reads only p's shapes, K/V location, algo and num_splits (no pointers).
 *  0 when no workspace is needed: host K/V, a call that takes the prefill path (VT_ATTN_FLASH,
 *  or AUTO with more than 16 query rows per K/V head), a single split, a build without CUDA, or
 *  params vt_attn_forward would reject. The value is an upper bound that never decreases as
 *  kv.n_tokens grows (other fields fixed): size it for the cache capacity once and reuse it for
 *  every shorter cache; a smaller Nq can need more, so take the largest over the Nq you use. */
size_t vt_attn_workspace_bytes(const vt_attn_params *p);

/** O = softmax(scale * Q K^T + mask) V per head, optionally LSE. Runs on the CPU for host K/V
 *  (threaded over K/V heads x query tiles, and over key slices with a combine step when those
 *  are fewer than twice the threads, as in decode) and on the GPU for device K/V (asynchronous on
 *  p->stream; no allocation, no synchronization). Errors: -EINVAL (NULL pointers, dtypes, a
 *  misaligned workspace, a negative, NaN or infinite scale or nvfp4 tensor_scale), VT_ESHAPE
 *  (H % Hkv != 0, zero sizes), VT_EUNSUPPORTED (K/V format; a head dim above
 *  VT_ATTN_MAX_HEAD_DIM; on the GPU a head dim other than 64/128 or a naive algo; the message
 *  says which), VT_EBUDGET
 *  (GPU decode: p->workspace_bytes is less than the split count needs; the message gives both
 *  sizes), VT_ENODEV (device K/V without CUDA), -ENOMEM, VT_ECUDA. */
int vt_attn_forward(const vt_attn_params *p);

/** Floating-point operations the call performs by the usual count: 4 * H * Nq * Nk * D, with
 *  only the visible (query, key) pairs counted when causal. */
double vt_attn_flops(const vt_attn_params *p);

/** 1 if this build has CUDA kernels and a CUDA device is present. */
int vt_attn_cuda_available(void);

#ifdef __cplusplus
}
#endif
#endif /* VTSTORE_ATTN_H */
